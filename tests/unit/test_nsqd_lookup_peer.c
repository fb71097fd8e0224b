/*
 * test_nsqd_lookup_peer: nsqd/lookup_peer.c against a scripted lookupd inside the test: magic and
 * IDENTIFY on connect, pipelined commands, the lookupd's self-description, reconnection after a
 * close, E_INVALID / non-JSON IDENTIFY replies, oversized replies and the reply deadline.
 *
 * The peer runs on a libevent loop that the test pumps while it plays the lookupd with plain
 * sockets, so everything happens on one thread.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lookup_peer.h"
#include "nsq_log.h"

#define WAIT_MS   5000
#define MAX_REPLY 1024
#define IDENTIFY_BODY                                                                              \
    "{\"broadcast_address\":\"n\",\"hostname\":\"n\",\"http_port\":1,\"tcp_port\":2,\"version\":"  \
    "\"1.3.0\"}"
#define LOOKUPD_REPLY                                                                              \
    "{\"broadcast_address\":\"lookupd.example\",\"hostname\":\"lh\",\"http_port\":4161,\"tcp_"     \
    "port\":4160,\"version\":\"1.3.0\"}"

static struct event_base *g_base;
static int g_connected, g_identified;
static bool g_send_register;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pump(void)
{
    event_base_loop(g_base, EVLOOP_NONBLOCK);
}

static void on_connected(struct lookup_peer *p, void *arg)
{
    g_connected++;
    ck_assert_int_eq(lookup_peer_identify(p, IDENTIFY_BODY, strlen(IDENTIFY_BODY)), 0);
    if (g_send_register)
        ck_assert_int_eq(lookup_peer_command(p, "REGISTER", "t", "c"), 0);
}

static void on_identified(struct lookup_peer *p, void *arg)
{
    g_identified++;
}

static const struct lookup_peer_callbacks cbs = {.connected = on_connected,
                                                 .identified = on_identified};

static int listen_any(int *port)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    ck_assert_int_ge(fd, 0);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    ck_assert_int_eq(listen(fd, 8), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    *port = ntohs(sin.sin_port);
    return fd;
}

/* Accepts one connection while pumping the loop; -1 on timeout. */
static int accept_pumping(int lfd, int timeout_ms)
{
    int64_t end = now_ms() + timeout_ms;
    while (now_ms() < end) {
        struct pollfd p = {.fd = lfd, .events = POLLIN};
        pump();
        if (poll(&p, 1, 1) == 1)
            return accept(lfd, NULL, NULL);
    }
    return -1;
}

/* Reads exactly n bytes while pumping; 0, or -1 on EOF/timeout. */
static int read_pumping(int fd, void *buf, size_t n, int timeout_ms)
{
    int64_t end = now_ms() + timeout_ms;
    size_t got = 0;
    while (got < n && now_ms() < end) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        pump();
        if (poll(&p, 1, 1) == 1) {
            ssize_t r = read(fd, (char *)buf + got, n - got);
            if (r <= 0)
                return -1;
            got += (size_t)r;
        }
    }
    return got == n ? 0 : -1;
}

/* True if the peer closes fd within timeout_ms (pending input is discarded). */
static bool closed_pumping(int fd, int timeout_ms)
{
    int64_t end = now_ms() + timeout_ms;
    char buf[256];
    while (now_ms() < end) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        pump();
        if (poll(&p, 1, 1) == 1 && read(fd, buf, sizeof(buf)) <= 0)
            return true;
    }
    return false;
}

static void expect_bytes(int fd, const char *want)
{
    size_t n = strlen(want);
    char *got = calloc(1, n + 1);
    ck_assert_int_eq(read_pumping(fd, got, n, WAIT_MS), 0);
    ck_assert_str_eq(got, want);
    free(got);
}

/* Reads the magic and the IDENTIFY command with its body. */
static void expect_handshake(int fd)
{
    uint32_t be;
    char body[256] = "";
    expect_bytes(fd, "  V1");
    expect_bytes(fd, "IDENTIFY\n");
    ck_assert_int_eq(read_pumping(fd, &be, 4, WAIT_MS), 0);
    ck_assert_uint_eq(ntohl(be), strlen(IDENTIFY_BODY));
    ck_assert_int_eq(read_pumping(fd, body, ntohl(be), WAIT_MS), 0);
    ck_assert_str_eq(body, IDENTIFY_BODY);
}

static void reply(int fd, const char *data)
{
    uint32_t be = htonl((uint32_t)strlen(data));
    ck_assert_int_eq(write(fd, &be, 4), 4);
    ck_assert_int_eq(write(fd, data, strlen(data)), (ssize_t)strlen(data));
}

static void wait_for(const int *counter, int want)
{
    int64_t end = now_ms() + WAIT_MS;
    while (*counter < want && now_ms() < end) {
        pump();
        usleep(1000);
    }
    ck_assert_int_ge(*counter, want);
}

static void setup(void)
{
    nsq_log_init("[test] ", NSQ_LOG_FATAL);
    g_base = event_base_new();
    g_connected = 0;
    g_identified = 0;
    g_send_register = false;
}

static void teardown(void)
{
    event_base_free(g_base);
}

START_TEST(handshake_commands_and_info)
{
    int port, lfd = listen_any(&port), fd;
    char addr[64];
    struct lookup_peer *p;
    const struct lookup_peer_info *info;

    g_send_register = true;
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    p = lookup_peer_new(g_base, NULL, addr, MAX_REPLY, &cbs, NULL);
    ck_assert_ptr_nonnull(p);
    ck_assert_str_eq(lookup_peer_addr(p), addr);
    ck_assert_ptr_null(lookup_peer_info(p));
    fd = accept_pumping(lfd, WAIT_MS);
    ck_assert_int_ge(fd, 0);
    expect_handshake(fd);
    expect_bytes(fd, "REGISTER t c\n");
    ck_assert(lookup_peer_connected(p));

    /* Pipelined: both commands leave before any reply. */
    ck_assert_int_eq(lookup_peer_command(p, "UNREGISTER", "t", NULL), 0);
    ck_assert_int_eq(lookup_peer_command(p, "PING", NULL, NULL), 0);
    expect_bytes(fd, "UNREGISTER t\nPING\n");

    reply(fd, LOOKUPD_REPLY);
    wait_for(&g_identified, 1);
    info = lookup_peer_info(p);
    ck_assert_ptr_nonnull(info);
    ck_assert_str_eq(info->broadcast_address, "lookupd.example");
    ck_assert_str_eq(info->hostname, "lh");
    ck_assert_int_eq(info->http_port, 4161);
    ck_assert_int_eq(info->tcp_port, 4160);
    reply(fd, "OK");
    reply(fd, "E_INVALID something"); /* an error reply is logged, the connection stays */
    reply(fd, "OK");
    ck_assert(!closed_pumping(fd, 200));
    ck_assert(lookup_peer_connected(p));

    lookup_peer_free(p);
    ck_assert(closed_pumping(fd, WAIT_MS));
    close(fd);
    close(lfd);
}
END_TEST

START_TEST(reconnects_and_resyncs_after_close)
{
    int port, lfd = listen_any(&port), fd;
    char addr[64];
    struct lookup_peer *p;

    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    p = lookup_peer_new(g_base, NULL, addr, MAX_REPLY, &cbs, NULL);
    fd = accept_pumping(lfd, WAIT_MS);
    expect_handshake(fd);
    reply(fd, LOOKUPD_REPLY);
    wait_for(&g_identified, 1);
    close(fd); /* lookupd goes away */

    fd = accept_pumping(lfd, WAIT_MS);
    ck_assert_int_ge(fd, 0);
    expect_handshake(fd);
    ck_assert_int_eq(g_connected, 2);
    /* The last description is kept while the new one is pending. */
    ck_assert_ptr_nonnull(lookup_peer_info(p));
    lookup_peer_free(p);
    close(fd);
    close(lfd);
}
END_TEST

static void bad_identify_reply_closes(const char *bad)
{
    int port, lfd = listen_any(&port), fd;
    char addr[64];
    struct lookup_peer *p;

    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    p = lookup_peer_new(g_base, NULL, addr, MAX_REPLY, &cbs, NULL);
    fd = accept_pumping(lfd, WAIT_MS);
    expect_handshake(fd);
    reply(fd, bad);
    ck_assert(closed_pumping(fd, WAIT_MS));
    ck_assert_int_eq(g_identified, 0);
    ck_assert_ptr_null(lookup_peer_info(p));
    close(fd);
    /* ... and it comes back by itself. */
    fd = accept_pumping(lfd, WAIT_MS);
    ck_assert_int_ge(fd, 0);
    close(fd);
    lookup_peer_free(p);
    close(lfd);
}

START_TEST(identify_e_invalid_closes)
{
    bad_identify_reply_closes("E_INVALID");
}
END_TEST

START_TEST(identify_not_json_closes)
{
    bad_identify_reply_closes("E_BAD_BODY IDENTIFY missing fields");
}
END_TEST

START_TEST(oversized_reply_closes)
{
    int port, lfd = listen_any(&port), fd;
    char addr[64];
    uint32_t be = htonl(MAX_REPLY + 1);
    struct lookup_peer *p;

    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    p = lookup_peer_new(g_base, NULL, addr, MAX_REPLY, &cbs, NULL);
    fd = accept_pumping(lfd, WAIT_MS);
    expect_handshake(fd);
    ck_assert_int_eq(write(fd, &be, 4), 4);
    ck_assert(closed_pumping(fd, WAIT_MS));
    close(fd);
    lookup_peer_free(p);
    close(lfd);
}
END_TEST

START_TEST(silent_lookupd_times_out)
{
    int port, lfd = listen_any(&port), fd;
    char addr[64];
    int64_t t0;
    struct lookup_peer *p;

    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    p = lookup_peer_new(g_base, NULL, addr, MAX_REPLY, &cbs, NULL);
    fd = accept_pumping(lfd, WAIT_MS);
    expect_handshake(fd);
    t0 = now_ms();
    /* No reply to IDENTIFY: the 1 s read deadline closes the connection. */
    ck_assert(closed_pumping(fd, WAIT_MS));
    ck_assert_int_ge(now_ms() - t0, LOOKUP_PEER_IO_TIMEOUT_NS / 1000000 - 100);
    ck_assert(!lookup_peer_connected(p));
    /* While down, commands are dropped (the next sync covers them). */
    ck_assert_int_eq(lookup_peer_command(p, "REGISTER", "t", NULL), -ENOTCONN);
    close(fd);
    lookup_peer_free(p);
    close(lfd);
}
END_TEST

START_TEST(idle_connection_stays_open)
{
    int port, lfd = listen_any(&port), fd;
    char addr[64];
    struct lookup_peer *p;

    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    p = lookup_peer_new(g_base, NULL, addr, MAX_REPLY, &cbs, NULL);
    fd = accept_pumping(lfd, WAIT_MS);
    expect_handshake(fd);
    reply(fd, LOOKUPD_REPLY);
    wait_for(&g_identified, 1);
    /* Nothing outstanding: no deadline applies. */
    ck_assert(!closed_pumping(fd, (int)(LOOKUP_PEER_IO_TIMEOUT_NS / 1000000) + 500));
    ck_assert(lookup_peer_connected(p));
    lookup_peer_free(p);
    close(fd);
    close(lfd);
}
END_TEST

START_TEST(bad_address)
{
    ck_assert_ptr_null(lookup_peer_new(g_base, NULL, "no-port", MAX_REPLY, &cbs, NULL));
    ck_assert_ptr_null(lookup_peer_new(g_base, NULL, "127.0.0.1:0", MAX_REPLY, &cbs, NULL));
    lookup_peer_free(NULL);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("nsqd_lookup_peer");
    TCase *tc = tcase_create("peer");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, handshake_commands_and_info);
    tcase_add_test(tc, reconnects_and_resyncs_after_close);
    tcase_add_test(tc, identify_e_invalid_closes);
    tcase_add_test(tc, identify_not_json_closes);
    tcase_add_test(tc, oversized_reply_closes);
    tcase_add_test(tc, silent_lookupd_times_out);
    tcase_add_test(tc, idle_connection_stays_open);
    tcase_add_test(tc, bad_address);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
