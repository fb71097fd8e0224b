/*
 * test_nsqd_ttl: message time-to-live and per-topic maximum depth (docs/ttl-and-depth.md),
 * through a real nsqd: per-publish TTL over TCP and HTTP, a topic TTL applied to messages on disk
 * and across a restart, the per-publish TTL lost on a spill to disk, max_depth with the reject and
 * drop_oldest policies in memory and on disk, the counters in /stats (JSON and text) and /metrics,
 * persistence in nsqd.dat, and nothing new in /stats or nsqd.dat while the features are off.
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

#define WAIT_MS 10000
/* A TTL short enough to pass quickly, and the wall-clock margin waited beyond it. */
#define SHORT_TTL_MS  1
#define TTL_MARGIN_MS 50
/* A TTL that never passes during a test. */
#define LONG_TTL_MS 600000
#define DEPTH_MAX   3
#define DGRAM_MAX   65536

static void post_ok(int port, const char *path)
{
    char *body = NULL;
    long st = itest_http("POST", port, path, NULL, &body);
    ck_assert_msg(st == 200, "POST %s: %ld %s", path, st, body ? body : "");
    free(body);
}

/* Creates topic and its channel "c". */
static void make_channel(int port, const char *topic)
{
    char path[256];
    snprintf(path, sizeof(path), "/topic/create?topic=%s", topic);
    post_ok(port, path);
    snprintf(path, sizeof(path), "/channel/create?topic=%s&channel=c", topic);
    post_ok(port, path);
}

/* Waits (polling the wall clock) until ms have passed since start_ms. */
static void wait_past(int64_t start_ms, int64_t ms)
{
    while (harness_now_ms() < start_ms + ms)
        usleep(5000);
}

struct stat_cond {
    int port;
    const char *topic, *channel, *key;
    int64_t want;
};

static bool stat_reached(void *arg)
{
    struct stat_cond *c = arg;
    return itest_stats_int(c->port, c->topic, c->channel, c->key) == c->want;
}

static void wait_stat(int port, const char *topic, const char *channel, const char *key,
                      int64_t want)
{
    struct stat_cond c = {port, topic, channel, key, want};
    ck_assert_msg(harness_wait_until(stat_reached, &c, WAIT_MS), "%s/%s %s = %lld, want %lld",
                  topic, channel ? channel : "-", key,
                  (long long)itest_stats_int(port, topic, channel, key), (long long)want);
}

/* PUB with a trailing TTL parameter (ms). */
static int pub_ttl(int fd, const char *topic, const char *body, int ttl_ms)
{
    char line[256];
    snprintf(line, sizeof(line), "PUB %s %d\n", topic, ttl_ms);
    if (harness_tcp_send_str(fd, line) != 0 || harness_tcp_send_sized(fd, body, strlen(body)) != 0)
        return -1;
    return itest_expect_response(fd, "OK");
}

/* MPUB of n copies of body, with a trailing TTL (ms) when ttl_ms >= 0. Sends only. */
static void mpub_send(int fd, const char *topic, const char *body, int n, int ttl_ms)
{
    char line[256];
    size_t blen = strlen(body), len = 4 + (size_t)n * (4 + blen);
    uint8_t *buf = malloc(len), *p = buf;
    uint32_t v = htonl((uint32_t)n);
    memcpy(p, &v, 4);
    p += 4;
    for (int i = 0; i < n; i++) {
        v = htonl((uint32_t)blen);
        memcpy(p, &v, 4);
        memcpy(p + 4, body, blen);
        p += 4 + blen;
    }
    if (ttl_ms >= 0)
        snprintf(line, sizeof(line), "MPUB %s %d\n", topic, ttl_ms);
    else
        snprintf(line, sizeof(line), "MPUB %s\n", topic);
    ck_assert_int_eq(harness_tcp_send_str(fd, line), 0);
    ck_assert_int_eq(harness_tcp_send_sized(fd, buf, len), 0);
    free(buf);
}

/* Expects an error frame starting with prefix. */
static void expect_error(int fd, const char *prefix)
{
    int32_t type;
    char *data = NULL;
    size_t len;
    ck_assert_int_eq(itest_read_frame(fd, &type, &data, &len, ITEST_IO_MS), 0);
    ck_assert_msg(type == ITEST_FRAME_ERROR && len >= strlen(prefix) &&
                          memcmp(data, prefix, strlen(prefix)) == 0,
                  "got frame %d \"%.*s\", want error %s", type, (int)len, data, prefix);
    free(data);
}

/* Subscribes a consumer with RDY n. */
static int consumer(int tcp, const char *topic, const char *channel, int n)
{
    int fd = itest_v2_connect(tcp);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(itest_sub(fd, topic, channel), 0);
    ck_assert_int_eq(itest_rdy(fd, n), 0);
    return fd;
}

/* Reads one message, checks its body, FINs it. */
static void expect_msg(int fd, const char *want)
{
    struct itest_msg m;
    ck_assert_int_eq(itest_read_msg(fd, &m, ITEST_IO_MS), 0);
    ck_assert_str_eq(m.body, want);
    ck_assert_int_eq(itest_fin(fd, m.id), 0);
    free(m.body);
}

/* GET /stats?format=text (malloc'd). */
static char *stats_text(int port)
{
    char *body = NULL;
    ck_assert_int_eq(itest_http("GET", port, "/stats?format=text", NULL, &body), 200);
    ck_assert_ptr_nonnull(body);
    return body;
}

static bool file_contains(const char *dir, const char *name, const char *needle)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    char *s = itest_read_file(path, NULL);
    bool r = s && strstr(s, needle);
    free(s);
    return r;
}

/* Per-publish TTL over TCP: expired messages are dropped before delivery and counted. */
START_TEST(test_ttl_tcp)
{
    struct itest_node n = {0};
    itest_node_start(&n, NULL);
    make_channel(n.http, "tt");
    int p = itest_v2_connect(n.tcp);
    ck_assert_int_ge(p, 0);
    int64_t t0 = harness_now_ms();
    ck_assert_int_eq(pub_ttl(p, "tt", "gone1", SHORT_TTL_MS), 0);
    mpub_send(p, "tt", "gone2", 2, SHORT_TTL_MS);
    ck_assert_int_eq(itest_expect_response(p, "OK"), 0);
    ck_assert_int_eq(pub_ttl(p, "tt", "long", LONG_TTL_MS), 0);
    ck_assert_int_eq(itest_pub(p, "tt", "plain", 5), 0);
    wait_past(t0, SHORT_TTL_MS + TTL_MARGIN_MS);

    int c = consumer(n.tcp, "tt", "c", 10);
    expect_msg(c, "long");
    expect_msg(c, "plain");
    wait_stat(n.http, "tt", "c", "expired_count", 3);
    wait_stat(n.http, "tt", "c", "depth", 0);
    ck_assert_int_eq(itest_stats_int(n.http, "tt", NULL, "expired_count"), 0);

    char *metrics = NULL;
    ck_assert_int_eq(itest_http("GET", n.http, "/metrics", NULL, &metrics), 200);
    ck_assert_ptr_nonnull(
            strstr(metrics, "nsqd_channel_expired_total{topic=\"tt\",channel=\"c\"} 3"));
    free(metrics);

    /* A parameter that is not a number is ignored, as upstream ignores extra parameters; a
       number out of range is E_INVALID (fatal, as for DPUB's timeout). */
    ck_assert_int_eq(harness_tcp_send_str(p, "PUB tt abc\n"), 0);
    ck_assert_int_eq(harness_tcp_send_sized(p, "extra", 5), 0);
    ck_assert_int_eq(itest_expect_response(p, "OK"), 0);
    expect_msg(c, "extra");
    ck_assert_int_eq(harness_tcp_send_str(p, "PUB tt 4294967296\n"), 0);
    expect_error(p, "E_INVALID PUB ttl 4294967296 out of range 0-4294967295");
    close(p);
    close(c);
    (void)itest_node_free(&n);
}
END_TEST

/* Per-publish TTL over HTTP (/pub and /mpub ttl=<Go duration>). */
START_TEST(test_ttl_http)
{
    struct itest_node n = {0};
    itest_node_start(&n, NULL);
    make_channel(n.http, "th");
    int64_t t0 = harness_now_ms();
    char *body = NULL;
    ck_assert_int_eq(itest_http("POST", n.http, "/pub?topic=th&ttl=1ms", "gone", NULL), 200);
    ck_assert_int_eq(itest_http("POST", n.http, "/mpub?topic=th&ttl=1ms", "g1\ng2\n", NULL), 200);
    ck_assert_int_eq(itest_http("POST", n.http, "/pub?topic=th&ttl=10m", "long", NULL), 200);
    ck_assert_int_eq(itest_http("POST", n.http, "/pub?topic=th", "plain", NULL), 200);
    ck_assert_int_eq(itest_http("POST", n.http, "/pub?topic=th&ttl=bad", "x", &body), 400);
    ck_assert_ptr_nonnull(strstr(body, "INVALID_TTL"));
    free(body);
    wait_past(t0, SHORT_TTL_MS + TTL_MARGIN_MS);

    int c = consumer(n.tcp, "th", "c", 10);
    expect_msg(c, "long");
    expect_msg(c, "plain");
    wait_stat(n.http, "th", "c", "expired_count", 3);
    close(c);
    (void)itest_node_free(&n);
}
END_TEST

/* Expired messages leave memory queues that nobody reads (periodic sweep of queue heads): a
   channel's and a topic's without channels. */
START_TEST(test_ttl_sweep_idle)
{
    struct itest_node n = {0};
    itest_node_start(&n, NULL);
    make_channel(n.http, "ts");
    ck_assert_int_eq(itest_http("POST", n.http, "/pub?topic=ts&ttl=1ms", "a", NULL), 200);
    ck_assert_int_eq(itest_http("POST", n.http, "/pub?topic=ts&ttl=1ms", "b", NULL), 200);
    ck_assert_int_eq(itest_http("POST", n.http, "/pub?topic=tn&ttl=1ms", "c", NULL), 200);
    wait_stat(n.http, "ts", "c", "expired_count", 2);
    ck_assert_int_eq(itest_stats_int(n.http, "ts", "c", "depth"), 0);
    wait_stat(n.http, "tn", NULL, "expired_count", 1);
    ck_assert_int_eq(itest_stats_int(n.http, "tn", NULL, "depth"), 0);
    (void)itest_node_free(&n);
}
END_TEST

/* A UDP socket on 127.0.0.1, ephemeral port into *port. */
static int udp_listen(int *port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    *port = ntohs(sin.sin_port);
    return fd;
}

/* Sums the statsd counter lines ending in `suffix` ("<...><suffix>:<v>|c") until the sum reaches
   want or WAIT_MS pass; returns the sum. */
static int64_t statsd_counter_until(int fd, const char *suffix, int64_t want)
{
    int64_t sum = 0, deadline = harness_now_ms() + WAIT_MS;
    static char d[DGRAM_MAX];
    while (sum < want && harness_now_ms() < deadline) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t n = recv(fd, d, sizeof(d) - 1, 0);
        if (n <= 0)
            continue;
        d[n] = '\0';
        for (char *line = strtok(d, "\n"); line; line = strtok(NULL, "\n")) {
            char *colon = strchr(line, ':');
            size_t sl = strlen(suffix);
            if (colon && (size_t)(colon - line) >= sl && memcmp(colon - sl, suffix, sl) == 0 &&
                strstr(colon, "|c"))
                sum += strtoll(colon + 1, NULL, 10);
        }
    }
    return sum;
}

/* statsd carries the expired counter of a channel using TTLs. */
START_TEST(test_ttl_statsd)
{
    int uport;
    int ufd = udp_listen(&uport);
    char addr[64];
    snprintf(addr, sizeof(addr), "--statsd-address=127.0.0.1:%d", uport);
    const char *const flags[] = {addr, "--statsd-interval=1s", NULL};
    struct itest_node n = {0};
    itest_node_start(&n, flags);
    make_channel(n.http, "tq");
    ck_assert_int_eq(itest_http("POST", n.http, "/pub?topic=tq&ttl=1ms", "a", NULL), 200);
    ck_assert_int_eq(itest_http("POST", n.http, "/pub?topic=tq&ttl=1ms", "b", NULL), 200);
    wait_stat(n.http, "tq", "c", "expired_count", 2);
    ck_assert_int_eq(statsd_counter_until(ufd, ".topic.tq.channel.c.expired_count", 2), 2);
    close(ufd);
    (void)itest_node_free(&n);
}
END_TEST

/* A topic TTL is checked against the timestamp: it drops messages already on disk, and both the
   TTL and the drop survive a restart. */
START_TEST(test_topic_ttl_disk_restart)
{
    static const char *const flags[] = {"--mem-queue-size=0", NULL};
    struct itest_node n = {0};
    itest_node_start(&n, flags);
    make_channel(n.http, "td");
    int p = itest_v2_connect(n.tcp);
    int64_t t0 = harness_now_ms();
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(itest_pub(p, "td", "old", 3), 0);
    close(p);
    wait_stat(n.http, "td", "c", "backend_depth", 3);
    post_ok(n.http, "/topic/ttl?topic=td&ttl=300ms");
    ck_assert_int_eq(itest_stats_int(n.http, "td", NULL, "ttl"), 300000000);
    itest_node_stop(&n);
    ck_assert(file_contains(n.dir, "nsqd.dat", "\"msg_ttl_ns\":300000000"));
    wait_past(t0, 300 + TTL_MARGIN_MS);

    itest_node_start(&n, flags);
    ck_assert_int_eq(itest_stats_int(n.http, "td", NULL, "ttl"), 300000000);
    int c = consumer(n.tcp, "td", "c", 10);
    wait_stat(n.http, "td", "c", "expired_count", 3);
    wait_stat(n.http, "td", "c", "depth", 0);
    /* A longer TTL, so that a loaded machine cannot expire the next message before delivery. */
    post_ok(n.http, "/topic/ttl?topic=td&ttl=1h");
    ck_assert_int_eq(itest_http("POST", n.http, "/pub?topic=td", "fresh", NULL), 200);
    expect_msg(c, "fresh");
    close(c);
    (void)itest_node_free(&n);
}
END_TEST

/* With the in-flight journal on (durable mode), an expired deferred message (journaled) and an
   expired queued one are dropped, and a later message is delivered. */
START_TEST(test_ttl_journal_mode)
{
    static const char *const flags[] = {"--mem-queue-size=0", "--sync-every=1", NULL};
    struct itest_node n = {0};
    itest_node_start(&n, flags);
    make_channel(n.http, "tj");
    post_ok(n.http, "/topic/ttl?topic=tj&ttl=100ms");
    int64_t t0 = harness_now_ms();
    ck_assert_int_eq(itest_http("POST", n.http, "/pub?topic=tj&defer=200", "deferred", NULL), 200);
    ck_assert_int_eq(itest_http("POST", n.http, "/pub?topic=tj", "queued", NULL), 200);
    wait_past(t0, 100 + TTL_MARGIN_MS);
    int c = consumer(n.tcp, "tj", "c", 10);
    wait_stat(n.http, "tj", "c", "expired_count", 2);
    post_ok(n.http, "/topic/ttl?topic=tj&ttl=1h");
    ck_assert_int_eq(itest_http("POST", n.http, "/pub?topic=tj", "fresh", NULL), 200);
    expect_msg(c, "fresh");
    close(c);
    itest_node_stop(&n);
    (void)itest_node_free(&n);
}
END_TEST

/* The on-disk record is upstream's (no TTL field): a per-publish TTL does not survive a spill. */
START_TEST(test_msg_ttl_lost_on_disk)
{
    static const char *const flags[] = {"--mem-queue-size=0", NULL};
    struct itest_node n = {0};
    itest_node_start(&n, flags);
    make_channel(n.http, "tl");
    int64_t t0 = harness_now_ms();
    ck_assert_int_eq(itest_http("POST", n.http, "/pub?topic=tl&ttl=1ms", "spilled", NULL), 200);
    wait_past(t0, SHORT_TTL_MS + TTL_MARGIN_MS);
    int c = consumer(n.tcp, "tl", "c", 10);
    expect_msg(c, "spilled");
    ck_assert_int_eq(itest_stats_int(n.http, "tl", "c", "expired_count"), 0);
    close(c);
    (void)itest_node_free(&n);
}
END_TEST

/* reject: a full topic refuses PUB (non-fatal error), MPUB as a whole and HTTP with 503;
   what was accepted stays. */
static void check_reject(const char *const *flags)
{
    struct itest_node n = {0};
    itest_node_start(&n, flags);
    post_ok(n.http, "/topic/create?topic=tr");
    post_ok(n.http, "/topic/max_depth?topic=tr&max_depth=3&policy=reject");
    int p = itest_v2_connect(n.tcp);
    ck_assert_int_eq(itest_pub(p, "tr", "1", 1), 0);
    ck_assert_int_eq(itest_pub(p, "tr", "2", 1), 0);
    mpub_send(p, "tr", "m", 2, -1); /* 2 + 2 > 3: refused whole */
    expect_error(p, "E_MPUB_FAILED");
    ck_assert_int_eq(itest_pub(p, "tr", "3", 1), 0);
    ck_assert_int_eq(harness_tcp_send_str(p, "PUB tr\n"), 0);
    ck_assert_int_eq(harness_tcp_send_sized(p, "4", 1), 0);
    expect_error(p, "E_PUB_FAILED");
    char *body = NULL;
    ck_assert_int_eq(itest_http("POST", n.http, "/pub?topic=tr", "5", &body), 503);
    ck_assert_ptr_nonnull(strstr(body, "TOPIC_FULL"));
    free(body);
    ck_assert_int_eq(itest_http("POST", n.http, "/mpub?topic=tr", "6\n7", NULL), 503);
    /* The connection is still usable. */
    ck_assert_int_eq(itest_pub(p, "other", "x", 1), 0);
    ck_assert_int_eq(itest_stats_int(n.http, "tr", NULL, "depth"), 3);
    ck_assert_int_eq(itest_stats_int(n.http, "tr", NULL, "message_count"), 3);

    /* The bound applies to channel depth too. */
    int c = consumer(n.tcp, "tr", "c", 0);
    wait_stat(n.http, "tr", "c", "depth", 3);
    ck_assert_int_eq(itest_http("POST", n.http, "/pub?topic=tr", "8", NULL), 503);
    ck_assert_int_eq(itest_rdy(c, 10), 0);
    expect_msg(c, "1");
    expect_msg(c, "2");
    expect_msg(c, "3");
    ck_assert_int_eq(itest_http("POST", n.http, "/pub?topic=tr", "9", NULL), 200);
    expect_msg(c, "9");
    close(c);
    close(p);
    (void)itest_node_free(&n);
}

START_TEST(test_max_depth_reject_memory)
{
    check_reject(NULL);
}
END_TEST

START_TEST(test_max_depth_reject_disk)
{
    static const char *const flags[] = {"--mem-queue-size=0", NULL};
    check_reject(flags);
}
END_TEST

/* drop_oldest: the oldest queued messages give way, in the topic's queue and a channel's. */
static void check_drop_oldest(const char *const *flags)
{
    struct itest_node n = {0};
    char body[16];
    itest_node_start(&n, flags);
    post_ok(n.http, "/topic/create?topic=to");
    post_ok(n.http, "/topic/max_depth?topic=to&max_depth=3&policy=drop_oldest");
    for (int i = 1; i <= 5; i++) {
        snprintf(body, sizeof(body), "%d", i);
        ck_assert_int_eq(itest_http("POST", n.http, "/pub?topic=to", body, NULL), 200);
    }
    ck_assert_int_eq(itest_stats_int(n.http, "to", NULL, "depth"), 3);
    ck_assert_int_eq(itest_stats_int(n.http, "to", NULL, "dropped_count"), 2);

    /* The topic's survivors (3, 4, 5) move to the new channel; the channel then drops too. */
    make_channel(n.http, "to");
    wait_stat(n.http, "to", "c", "depth", 3);
    for (int i = 6; i <= 7; i++) {
        snprintf(body, sizeof(body), "%d", i);
        ck_assert_int_eq(itest_http("POST", n.http, "/pub?topic=to", body, NULL), 200);
    }
    ck_assert_int_eq(itest_stats_int(n.http, "to", "c", "depth"), 3);
    ck_assert_int_eq(itest_stats_int(n.http, "to", "c", "dropped_count"), 2);
    int c = consumer(n.tcp, "to", "c", 10);
    expect_msg(c, "5");
    expect_msg(c, "6");
    expect_msg(c, "7");
    wait_stat(n.http, "to", "c", "depth", 0);
    close(c);
    (void)itest_node_free(&n);
}

START_TEST(test_max_depth_drop_oldest_memory)
{
    check_drop_oldest(NULL);
}
END_TEST

START_TEST(test_max_depth_drop_oldest_disk)
{
    static const char *const flags[] = {"--mem-queue-size=0", NULL};
    check_drop_oldest(flags);
}
END_TEST

/* Limits persist in nsqd.dat and come back after a restart; bad arguments are 400. */
START_TEST(test_limits_persist)
{
    struct itest_node n = {0};
    char *body = NULL;
    itest_node_start(&n, NULL);
    post_ok(n.http, "/topic/create?topic=tp");
    post_ok(n.http, "/topic/max_depth?topic=tp&max_depth=7&policy=drop_oldest");
    ck_assert_int_eq(
            itest_http("POST", n.http, "/topic/max_depth?topic=tp&max_depth=x", NULL, &body), 400);
    ck_assert_ptr_nonnull(strstr(body, "INVALID_MAX_DEPTH"));
    free(body);
    ck_assert_int_eq(itest_http("POST", n.http, "/topic/max_depth?topic=tp&max_depth=1&policy=no",
                                NULL, NULL),
                     400);
    ck_assert_int_eq(itest_http("POST", n.http, "/topic/ttl?topic=tp&ttl=1", NULL, NULL), 400);
    ck_assert_int_eq(itest_http("POST", n.http, "/topic/ttl?topic=missing&ttl=1s", NULL, NULL),
                     404);
    itest_node_stop(&n);
    ck_assert(file_contains(n.dir, "nsqd.dat", "\"max_depth\":7"));
    ck_assert(file_contains(n.dir, "nsqd.dat", "\"overflow_policy\":\"drop_oldest\""));
    itest_node_start(&n, NULL);
    ck_assert_int_eq(itest_stats_int(n.http, "tp", NULL, "max_depth"), 7);
    cJSON *root = itest_stats(n.http, NULL);
    cJSON *t = itest_stats_find(root, "tp", NULL);
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(t, "overflow_policy")->valuestring,
                     "drop_oldest");
    cJSON_Delete(root);
    char *text = stats_text(n.http);
    ck_assert_msg(strstr(text, " max-depth: 7 policy: drop_oldest expired: 0 dropped: 0\n"), "%s",
                  text);
    free(text);
    (void)itest_node_free(&n);
}
END_TEST

/* Off by default: /stats and nsqd.dat carry no new keys. */
START_TEST(test_off_by_default)
{
    struct itest_node n = {0};
    itest_node_start(&n, NULL);
    make_channel(n.http, "tz");
    ck_assert_int_eq(itest_http("POST", n.http, "/pub?topic=tz", "x", NULL), 200);
    char *stats = NULL;
    ck_assert_int_eq(itest_http("GET", n.http, "/stats?format=json", NULL, &stats), 200);
    ck_assert_ptr_null(strstr(stats, "expired_count"));
    ck_assert_ptr_null(strstr(stats, "max_depth"));
    free(stats);
    stats = stats_text(n.http);
    ck_assert_msg(!strstr(stats, "expired:") && !strstr(stats, "max-depth:"), "%s", stats);
    free(stats);
    itest_node_stop(&n);
    ck_assert(!file_contains(n.dir, "nsqd.dat", "max_depth"));
    ck_assert(!file_contains(n.dir, "nsqd.dat", "msg_ttl_ns"));
    (void)itest_node_free(&n);
}
END_TEST

/* --msg-ttl gives every topic a TTL (not written to nsqd.dat: it is the flag's). */
START_TEST(test_msg_ttl_flag)
{
    static const char *const flags[] = {"--msg-ttl=1ms", NULL};
    struct itest_node n = {0};
    itest_node_start(&n, flags);
    make_channel(n.http, "tf");
    int64_t t0 = harness_now_ms();
    ck_assert_int_eq(itest_http("POST", n.http, "/pub?topic=tf", "gone", NULL), 200);
    wait_past(t0, SHORT_TTL_MS + TTL_MARGIN_MS);
    int c = consumer(n.tcp, "tf", "c", 10);
    wait_stat(n.http, "tf", "c", "expired_count", 1);
    ck_assert_int_eq(itest_stats_int(n.http, "tf", NULL, "ttl"), 1000000);
    char *text = stats_text(n.http);
    ck_assert_msg(strstr(text, " ttl: 1ms expired: 0 dropped: 0\n"), "%s", text);
    ck_assert_msg(strstr(text, " expired: 1 dropped: 0\n"), "%s", text);
    free(text);
    close(c);
    (void)itest_node_free(&n);
}
END_TEST

static Suite *ttl_suite(void)
{
    Suite *s = suite_create("nsqd_ttl");
    TCase *tc = tcase_create("ttl");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_ttl_tcp);
    tcase_add_test(tc, test_ttl_http);
    tcase_add_test(tc, test_ttl_sweep_idle);
    tcase_add_test(tc, test_ttl_statsd);
    tcase_add_test(tc, test_topic_ttl_disk_restart);
    tcase_add_test(tc, test_msg_ttl_lost_on_disk);
    tcase_add_test(tc, test_ttl_journal_mode);
    tcase_add_test(tc, test_msg_ttl_flag);
    suite_add_tcase(s, tc);
    tc = tcase_create("max_depth");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_max_depth_reject_memory);
    tcase_add_test(tc, test_max_depth_reject_disk);
    tcase_add_test(tc, test_max_depth_drop_oldest_memory);
    tcase_add_test(tc, test_max_depth_drop_oldest_disk);
    tcase_add_test(tc, test_limits_persist);
    tcase_add_test(tc, test_off_by_default);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(ttl_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
