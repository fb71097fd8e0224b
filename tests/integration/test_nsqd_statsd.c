/*
 * test_nsqd_statsd: nsqd pushing metrics to a UDP socket owned by the test (http-api.md §7):
 * prefix expansion, counters as differences between pushes, gauges, mem.* metrics, datagram size
 * limit and --statsd-exclude-ephemeral.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "nsqd_itest.h"

#define PACKET_SIZE   200
#define PUSH_WAIT_MS  5000
#define DGRAM_MAX     65536
#define LINES_MAX     (1 << 20)
#define PUSH_END      "mem.gc_runs:"
#define SPREAD_TOPICS 20
#define SPREAD_MIN_MS 500

static int udp_listen(int *port)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    ck_assert_int_ge(fd, 0);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    *port = ntohs(sin.sin_port);
    return fd;
}

/* Collects datagrams until one contains `until` (a full line) or the wait ends. Appends every
   datagram's text to buf. Returns true if `until` was seen. Checks the size limit. */
static bool collect_until(int fd, const char *until, char *buf, size_t cap)
{
    int64_t deadline = harness_now_ms() + PUSH_WAIT_MS;
    size_t used = strlen(buf);
    char d[DGRAM_MAX];
    while (harness_now_ms() < deadline) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        ssize_t n;
        if (poll(&p, 1, 100) <= 0)
            continue;
        n = recv(fd, d, sizeof(d) - 1, 0);
        if (n <= 0)
            continue;
        d[n] = '\0';
        ck_assert_msg(n <= PACKET_SIZE, "datagram of %zd bytes > %d", n, PACKET_SIZE);
        ck_assert_msg(d[n - 1] == '\n', "datagram does not end with a full line");
        if (used + (size_t)n + 1 < cap) {
            memcpy(buf + used, d, (size_t)n + 1);
            used += (size_t)n;
        }
        if (strstr(d, until) != NULL)
            return true;
    }
    return false;
}

/* Sum of the values of every "<name>:<v>|c" line in buf. */
static int64_t counter_sum(const char *buf, const char *name)
{
    int64_t sum = 0;
    size_t n = strlen(name);
    for (const char *q = strstr(buf, name); q != NULL; q = strstr(q + 1, name)) {
        if ((q == buf || q[-1] == '\n') && q[n] == ':')
            sum += strtoll(q + n + 1, NULL, 10);
    }
    return sum;
}

/* Collects whole pushes (mem.gc_runs is the last metric of one) until the counter `name` sums
   to want. */
static bool collect_counter(int fd, const char *name, int64_t want, char *buf, size_t cap)
{
    while (counter_sum(buf, name) < want)
        if (!collect_until(fd, PUSH_END, buf, cap))
            return false;
    return counter_sum(buf, name) == want;
}

START_TEST(push_metrics)
{
    int uport, ufd = udp_listen(&uport);
    char addr[64], *dir = harness_tmpdir(), *out = NULL;
    char prefix[128], line[256];
    char *buf = calloc(1, LINES_MAX);
    const char *extra[] = {addr,
                           "--statsd-interval=1s",
                           "--statsd-prefix=nsq.%s",
                           "--statsd-udp-packet-size=200",
                           "--statsd-exclude-ephemeral",
                           "--broadcast-address=127.0.0.1",
                           "--e2e-processing-latency-percentile=0.99",
                           NULL};
    struct harness_proc *p;
    int http;

    snprintf(addr, sizeof(addr), "--statsd-address=127.0.0.1:%d", uport);
    p = itest_nsqd_start(dir, extra);
    ck_assert_ptr_nonnull(p);
    http = harness_port(p, "HTTP");
    snprintf(prefix, sizeof(prefix), "nsq.127_0_0_1_%d.", http);

    ck_assert_int_eq(itest_http("POST", http, "/channel/create?topic=st&channel=ch", NULL, &out),
                     404);
    free(out);
    ck_assert_int_eq(itest_http("POST", http, "/topic/create?topic=st", NULL, &out), 200);
    free(out);
    ck_assert_int_eq(itest_http("POST", http, "/channel/create?topic=st&channel=ch", NULL, &out),
                     200);
    free(out);
    ck_assert_int_eq(itest_http("POST", http, "/channel/create?topic=st&channel=tmp%23ephemeral",
                                NULL, &out),
                     200);
    free(out);
    ck_assert_int_eq(itest_http("POST", http, "/topic/create?topic=eph%23ephemeral", NULL, &out),
                     200);
    free(out);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(itest_http("POST", http, "/pub?topic=st", "abcd", &out), 200);
        free(out);
    }

    /* Counters carry differences: over the pushes so far they add up to the totals. */
    snprintf(line, sizeof(line), "%stopic.st.message_count", prefix);
    ck_assert_msg(collect_counter(ufd, line, 3, buf, LINES_MAX), "%s: %s", line, buf);
    snprintf(line, sizeof(line), "%stopic.st.message_bytes", prefix);
    ck_assert_int_eq(counter_sum(buf, line), 12);
    snprintf(line, sizeof(line), "%stopic.st.channel.ch.message_count", prefix);
    ck_assert_msg(counter_sum(buf, line) == 3, "%s: %s", line, buf);
    snprintf(line, sizeof(line), "%stopic.st.depth:0|g\n", prefix);
    ck_assert_msg(strstr(buf, line) != NULL, "no '%s' in: %s", line, buf);
    snprintf(line, sizeof(line), "%stopic.st.channel.ch.depth:3|g\n", prefix);
    ck_assert_msg(strstr(buf, line) != NULL, "no '%s' in: %s", line, buf);
    snprintf(line, sizeof(line), "%stopic.st.channel.ch.clients:0|g\n", prefix);
    ck_assert_msg(strstr(buf, line) != NULL, "no '%s' in: %s", line, buf);
    snprintf(line, sizeof(line), "%stopic.st.channel.ch.e2e_processing_latency_99:0|g\n", prefix);
    ck_assert_msg(strstr(buf, line) != NULL, "no '%s' in: %s", line, buf);
    snprintf(line, sizeof(line), "%smem.heap_in_use_bytes:", prefix);
    ck_assert_msg(strstr(buf, line) != NULL, "no '%s' in: %s", line, buf);
    ck_assert_ptr_null(strstr(buf, "ephemeral"));

    /* The next pushes: nothing new was published, so the counter deltas are 0. */
    buf[0] = '\0';
    ck_assert(collect_until(ufd, PUSH_END, buf, LINES_MAX));
    snprintf(line, sizeof(line), "%stopic.st.message_count:0|c\n", prefix);
    ck_assert_msg(strstr(buf, line) != NULL, "no '%s' in: %s", line, buf);

    ck_assert_int_eq(harness_stop(p, SIGTERM), 0);
    close(ufd);
    harness_rmdir(dir);
    free(dir);
    free(buf);
}
END_TEST

/* With an interval of 2 s, the datagrams of one push are spread over about 1 s. */
START_TEST(datagrams_spread)
{
    int uport, ufd = udp_listen(&uport);
    char addr[64], *dir = harness_tmpdir(), *out = NULL;
    const char *extra[] = {addr, "--statsd-interval=2s", "--statsd-udp-packet-size=100", NULL};
    struct harness_proc *p;
    int http, datagrams = 0;
    int64_t first = 0, last = 0, deadline;
    char d[DGRAM_MAX];

    snprintf(addr, sizeof(addr), "--statsd-address=127.0.0.1:%d", uport);
    p = itest_nsqd_start(dir, extra);
    ck_assert_ptr_nonnull(p);
    http = harness_port(p, "HTTP");
    for (int i = 0; i < SPREAD_TOPICS; i++) {
        char path[64];
        snprintf(path, sizeof(path), "/topic/create?topic=spread%02d", i);
        ck_assert_int_eq(itest_http("POST", http, path, NULL, &out), 200);
        free(out);
    }
    /* Skip a push that may have started before the topics existed: use the first push whose
       first datagram arrives after they do, and follow it to its last metric. */
    deadline = harness_now_ms() + 3 * PUSH_WAIT_MS;
    while (harness_now_ms() < deadline) {
        struct pollfd pf = {.fd = ufd, .events = POLLIN};
        ssize_t n;
        if (poll(&pf, 1, 100) <= 0)
            continue;
        n = recv(ufd, d, sizeof(d) - 1, 0);
        if (n <= 0)
            continue;
        d[n] = '\0';
        if (datagrams == 0 && strstr(d, "topic.spread00.message_count:") == NULL)
            continue;
        if (datagrams++ == 0)
            first = harness_now_ms();
        last = harness_now_ms();
        if (strstr(d, PUSH_END) != NULL)
            break;
    }
    ck_assert_int_gt(datagrams, SPREAD_TOPICS);
    ck_assert_msg(last - first >= SPREAD_MIN_MS, "%d datagrams within %lld ms", datagrams,
                  (long long)(last - first));
    ck_assert_int_eq(harness_stop(p, SIGTERM), 0);
    close(ufd);
    harness_rmdir(dir);
    free(dir);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("nsqd_statsd");
    TCase *tc = tcase_create("statsd");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, push_metrics);
    tcase_add_test(tc, datagrams_spread);
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
