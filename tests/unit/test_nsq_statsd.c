/* Unit tests for common/nsq_statsd.c: line format and packing into datagrams received by a UDP
   socket in the test; prefix construction. */
#include "nsq_statsd.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int rx_fd;
static char addr[64];

static void setup(void)
{
    rx_fd = socket(AF_INET, SOCK_DGRAM, 0);
    ck_assert_int_ge(rx_fd, 0);
    int big = 1 << 20;
    setsockopt(rx_fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(rx_fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    socklen_t sl = sizeof(sin);
    getsockname(rx_fd, (struct sockaddr *)&sin, &sl);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", ntohs(sin.sin_port));
}

static void teardown(void)
{
    close(rx_fd);
}

/* Receives datagrams until `want` bytes arrived or 2 s pass; checks each against max. */
static size_t receive(char *out, size_t cap, size_t want, size_t max, int *ndgrams)
{
    size_t got = 0;
    *ndgrams = 0;
    while (got < want) {
        struct pollfd p = {.fd = rx_fd, .events = POLLIN};
        if (poll(&p, 1, 2000) <= 0)
            break;
        ssize_t n = recv(rx_fd, out + got, cap - got - 1, 0);
        ck_assert_int_gt(n, 0);
        ck_assert_msg((size_t)n <= max, "datagram of %zd bytes", n);
        ck_assert_int_eq(out[got + (size_t)n - 1], '\n'); /* lines never split */
        got += (size_t)n;
        (*ndgrams)++;
    }
    out[got] = '\0';
    return got;
}

START_TEST(test_lines)
{
    struct nsq_statsd *s = nsq_statsd_new(addr, "nsq.host_4151.", 508);
    ck_assert_ptr_nonnull(s);
    nsq_statsd_counter(s, "topic.t.message_count", 12);
    nsq_statsd_gauge(s, "topic.t.depth", -3);
    ck_assert_int_eq(nsq_statsd_flush(s), 0);
    char buf[2048];
    int n;
    const char *want =
            "nsq.host_4151.topic.t.message_count:12|c\nnsq.host_4151.topic.t.depth:-3|g\n";
    receive(buf, sizeof(buf), strlen(want), 508, &n);
    ck_assert_str_eq(buf, want);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(nsq_statsd_flush(s), 0); /* nothing left */
    nsq_statsd_free(s);
    nsq_statsd_free(NULL);
}
END_TEST

START_TEST(test_packing)
{
    const size_t packet = 100;
    struct nsq_statsd *s = nsq_statsd_new(addr, "p.", packet);
    char expect[65536];
    size_t el = 0;
    for (int i = 0; i < 300; i++) {
        char name[64];
        snprintf(name, sizeof(name), "topic.t%d.channel.c.depth", i);
        nsq_statsd_gauge(s, name, i * 1000);
        el += (size_t)snprintf(expect + el, sizeof(expect) - el, "p.%s:%d|g\n", name, i * 1000);
    }
    nsq_statsd_finish(s);
    size_t pending = nsq_statsd_pending(s);
    ck_assert_uint_gt(pending, 100);
    /* spread sending: one at a time */
    int sent = 0;
    while (nsq_statsd_pending(s)) {
        ck_assert_int_eq(nsq_statsd_send_one(s), 1);
        sent++;
    }
    ck_assert_int_eq(nsq_statsd_send_one(s), 0);
    static char buf[65536];
    int n;
    receive(buf, sizeof(buf), el, packet, &n);
    ck_assert_int_eq(n, sent);
    ck_assert_str_eq(buf, expect);
    nsq_statsd_free(s);
}
END_TEST

START_TEST(test_long_line_alone)
{
    struct nsq_statsd *s = nsq_statsd_new(addr, "", 40);
    char longname[100];
    memset(longname, 'x', 60);
    longname[60] = '\0';
    nsq_statsd_counter(s, "a", 1);
    nsq_statsd_counter(s, longname, 2);
    nsq_statsd_counter(s, "b", 3);
    ck_assert_int_eq(nsq_statsd_flush(s), 0);
    char buf[1024];
    int n;
    char want[256];
    snprintf(want, sizeof(want), "a:1|c\n%s:2|c\nb:3|c\n", longname);
    receive(buf, sizeof(buf), strlen(want), 1000, &n);
    ck_assert_str_eq(buf, want);
    ck_assert_int_eq(n, 3);
    nsq_statsd_free(s);
}
END_TEST

START_TEST(test_bad_address)
{
    ck_assert_ptr_null(nsq_statsd_new("no-port", "", 508));
    ck_assert_ptr_null(nsq_statsd_new("no.such.host.invalid:8125", "", 508));
}
END_TEST

START_TEST(test_prefix)
{
    char out[128];
    ck_assert_int_eq(nsq_statsd_build_prefix("nsq.%s", "host.example.com", 4151, out, sizeof(out)),
                     0);
    ck_assert_str_eq(out, "nsq.host_example_com_4151.");
    ck_assert_int_eq(nsq_statsd_build_prefix("a.%s.b.%s.", "10.0.0.1", 80, out, sizeof(out)), 0);
    ck_assert_str_eq(out, "a.10_0_0_1_80.b.10_0_0_1_80.");
    ck_assert_int_eq(nsq_statsd_build_prefix("", "h", 1, out, sizeof(out)), 0);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(nsq_statsd_build_prefix("x", "::1", 4151, out, sizeof(out)), 0);
    ck_assert_str_eq(out, "x.");
    ck_assert_int_eq(nsq_statsd_build_prefix("%s", "::1", 4151, out, sizeof(out)), 0);
    ck_assert_str_eq(out, "[__1]_4151.");
    ck_assert_int_eq(nsq_statsd_build_prefix("nsq.%s", "host", 4151, out, 8), -ENAMETOOLONG);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("nsq_statsd");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_lines);
    tcase_add_test(tc, test_packing);
    tcase_add_test(tc, test_long_line_alone);
    tcase_add_test(tc, test_bad_address);
    tcase_add_test(tc, test_prefix);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
