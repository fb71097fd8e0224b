/*
 * test_nsqd_dead_letter: dead-lettering (--max-attempts, --dead-letter-suffix, the per-channel
 * /channel/max_attempts setting) and --max-defer-timeout, through real nsqd (and nsqadmin)
 * processes: a REQ loop and a timeout end in "<topic>.dead" with the body, ID and attempts kept;
 * the channel setting persists across a restart; /stats (JSON and text), /metrics and nsqadmin's
 * JSON API report the count; with the in-flight journal a dead-lettered message survives a crash
 * in the dead-letter topic and is not redelivered on its channel; DPUB and /pub?defer= obey
 * --max-defer-timeout. With none of the flags, nothing changes.
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

/* Generous: the suite runs on a loaded 2-core machine, often under sanitizers. */
#define WAIT_MS     15000
#define POLL_US     20000
#define BODY        "poison pill"
#define BODY_LEN    (sizeof(BODY) - 1)
#define MAX_ATTEM   3
#define CRASH_BATCH 20

static char *g_dir;
static struct harness_proc *g_nsqd;
static int g_tcp, g_http;

static void start(const char *const *extra)
{
    g_nsqd = itest_nsqd_start(g_dir, extra);
    ck_assert_ptr_nonnull(g_nsqd);
    g_tcp = harness_port(g_nsqd, "TCP");
    g_http = harness_port(g_nsqd, "HTTP");
}

static void setup(void)
{
    g_dir = harness_tmpdir();
    g_nsqd = NULL;
}

static void teardown(void)
{
    /* A clean exit: also how a sanitizer report (non-zero exit status) fails the test. */
    int rc = g_nsqd ? harness_stop(g_nsqd, 0) : 0;
    g_nsqd = NULL;
    harness_rmdir(g_dir);
    free(g_dir);
    ck_assert_int_eq(rc, 0);
}

/* A consumer of topic/channel with RDY 1 (and an IDENTIFY body). */
static int consumer(const char *topic, const char *channel, const char *identify)
{
    int fd = itest_v2_connect(g_tcp);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(itest_identify(fd, identify), 0);
    ck_assert_int_eq(itest_sub(fd, topic, channel), 0);
    ck_assert_int_eq(itest_rdy(fd, 1), 0);
    return fd;
}

static void publish(const char *topic)
{
    int fd = itest_v2_connect(g_tcp);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(itest_pub(fd, topic, BODY, BODY_LEN), 0);
    close(fd);
}

static void req(int fd, const char *id)
{
    char line[64];
    snprintf(line, sizeof(line), "REQ %.16s 0\n", id);
    ck_assert_int_eq(harness_tcp_send_str(fd, line), 0);
}

/* Polls until the integer stats field reaches want (or the deadline); returns the last value. */
static int64_t await_stat(const char *topic, const char *channel, const char *key, int64_t want)
{
    int64_t deadline = harness_now_ms() + WAIT_MS, v;
    while ((v = itest_stats_int(g_http, topic, channel, key)) != want &&
           harness_now_ms() < deadline)
        usleep(POLL_US);
    return v;
}

/* Receives the dead-lettered message from "<topic>.dead" and checks body, ID and attempts. */
static void expect_dead(const char *topic, const char *id, int attempts)
{
    char dead[128];
    snprintf(dead, sizeof(dead), "%s.dead", topic);
    int fd = consumer(dead, "ops", "{}");
    struct itest_msg m;
    ck_assert_int_eq(itest_read_msg(fd, &m, WAIT_MS), 0);
    ck_assert_str_eq(m.body, BODY);
    ck_assert_str_eq(m.id, id);
    ck_assert_int_eq(m.attempts, attempts);
    ck_assert_int_eq(itest_fin(fd, m.id), 0);
    free(m.body);
    close(fd);
}

static char *get_text(const char *path)
{
    char *body = NULL;
    ck_assert_int_eq(itest_http("GET", g_http, path, NULL, &body), 200);
    ck_assert_ptr_nonnull(body);
    return body;
}

START_TEST(test_req_loop_ends_in_dead_topic)
{
    const char *const flags[] = {"--max-attempts=3", NULL};
    start(flags);
    int fd = consumer("orders", "billing", "{}");
    publish("orders");
    char id[ITEST_ID_LEN + 1] = "";
    for (int i = 1; i <= MAX_ATTEM; i++) {
        struct itest_msg m;
        ck_assert_int_eq(itest_read_msg(fd, &m, WAIT_MS), 0);
        ck_assert_int_eq(m.attempts, i);
        ck_assert_str_eq(m.body, BODY);
        if (i == 1)
            memcpy(id, m.id, sizeof(id));
        ck_assert_str_eq(m.id, id);
        req(fd, m.id);
        free(m.body);
    }
    ck_assert_int_eq(await_stat("orders", "billing", "dead_letter_count", 1), 1);
    /* Not requeued: nothing more arrives on the channel. */
    ck_assert_int_eq(itest_stats_int(g_http, "orders", "billing", "depth"), 0);
    ck_assert_int_eq(itest_stats_int(g_http, "orders", "billing", "in_flight_count"), 0);
    ck_assert_int_eq(itest_stats_int(g_http, "orders", "billing", "deferred_count"), 0);
    ck_assert_int_eq(itest_stats_int(g_http, "orders", "billing", "requeue_count"), MAX_ATTEM);
    ck_assert_int_eq(itest_stats_int(g_http, "orders", "billing", "max_attempts"), MAX_ATTEM);
    ck_assert_int_eq(itest_stats_int(g_http, "orders.dead", NULL, "message_count"), 1);
    expect_dead("orders", id, MAX_ATTEM);
    /* The dead-letter topic's channels do not inherit --max-attempts (no fields shown). */
    ck_assert_int_eq(itest_stats_int(g_http, "orders.dead", "ops", "max_attempts"), -1);
    ck_assert_int_eq(itest_stats_int(g_http, "orders.dead", "ops", "dead_letter_count"), -1);

    char *text = get_text("/stats?format=text");
    ck_assert_msg(strstr(text, "max-attempts: 3 dead: 1") != NULL, "%s", text);
    free(text);
    text = get_text("/metrics");
    ck_assert_msg(strstr(text, "nsqd_channel_dead_lettered_total{topic=\"orders\","
                               "channel=\"billing\"} 1\n") != NULL,
                  "%s", text);
    free(text);
    close(fd);
}
END_TEST

START_TEST(test_timeout_ends_in_dead_topic)
{
    const char *const flags[] = {"--max-attempts=1", NULL};
    start(flags);
    int fd = consumer("jobs", "worker", "{\"msg_timeout\":1000}");
    publish("jobs");
    struct itest_msg m;
    ck_assert_int_eq(itest_read_msg(fd, &m, WAIT_MS), 0);
    ck_assert_int_eq(m.attempts, 1);
    /* No FIN: the in-flight timeout returns it, and its one attempt is used up. */
    ck_assert_int_eq(await_stat("jobs", "worker", "dead_letter_count", 1), 1);
    ck_assert_int_eq(itest_stats_int(g_http, "jobs", "worker", "timeout_count"), 1);
    ck_assert_int_eq(itest_stats_int(g_http, "jobs", "worker", "depth"), 0);
    expect_dead("jobs", m.id, 1);
    free(m.body);
    close(fd);
}
END_TEST

START_TEST(test_off_by_default)
{
    start(NULL);
    int fd = consumer("plain", "c", "{}");
    publish("plain");
    for (int i = 1; i <= MAX_ATTEM + 2; i++) {
        struct itest_msg m;
        ck_assert_int_eq(itest_read_msg(fd, &m, WAIT_MS), 0);
        ck_assert_int_eq(m.attempts, i);
        req(fd, m.id);
        free(m.body);
    }
    ck_assert_int_eq(itest_stats_int(g_http, "plain", "c", "dead_letter_count"), -1);
    ck_assert_int_eq(itest_stats_int(g_http, "plain", "c", "max_attempts"), -1);
    ck_assert_int_eq(itest_stats_int(g_http, "plain.dead", NULL, "message_count"), -1);
    close(fd);
}
END_TEST

static void expect_http_body(const char *method, const char *path, const char *send, long status,
                             const char *body_part)
{
    char *body = NULL;
    long st = itest_http(method, g_http, path, send, &body);
    ck_assert_msg(st == status, "%s %s: %ld %s", method, path, st, body ? body : "");
    if (body_part)
        ck_assert_msg(body && strstr(body, body_part), "%s: %s", path, body ? body : "");
    free(body);
}

static void expect_http(const char *method, const char *path, long status, const char *body_part)
{
    expect_http_body(method, path, NULL, status, body_part);
}

START_TEST(test_channel_setting_persists)
{
    start(NULL);
    expect_http("POST", "/topic/create?topic=mail", 200, NULL);
    expect_http("POST", "/channel/create?topic=mail&channel=send", 200, NULL);
    expect_http("POST", "/channel/max_attempts?topic=mail&channel=send", 400,
                "MISSING_ARG_MAX_ATTEMPTS");
    expect_http("POST", "/channel/max_attempts?topic=mail&channel=send&max_attempts=-1", 400,
                "INVALID_MAX_ATTEMPTS");
    expect_http("POST", "/channel/max_attempts?topic=mail&channel=send&max_attempts=x", 400,
                "INVALID_MAX_ATTEMPTS");
    expect_http("POST", "/channel/max_attempts?topic=mail&channel=nope&max_attempts=2", 404,
                "CHANNEL_NOT_FOUND");
    /* A topic whose "<name>.dead" would exceed 64 characters cannot have a limit. */
    char longname[65], path[256];
    memset(longname, 'l', 62);
    longname[62] = '\0';
    snprintf(path, sizeof(path), "/topic/create?topic=%s", longname);
    expect_http("POST", path, 200, NULL);
    snprintf(path, sizeof(path), "/channel/create?topic=%s&channel=c", longname);
    expect_http("POST", path, 200, NULL);
    snprintf(path, sizeof(path), "/channel/max_attempts?topic=%s&channel=c&max_attempts=2",
             longname);
    expect_http("POST", path, 400, "INVALID_MAX_ATTEMPTS");

    expect_http("POST", "/channel/max_attempts?topic=mail&channel=send&max_attempts=2", 200, NULL);
    ck_assert_int_eq(itest_stats_int(g_http, "mail", "send", "max_attempts"), 2);
    ck_assert_int_eq(itest_stats_int(g_http, "mail", "send", "dead_letter_count"), 0);

    /* Persisted in nsqd.dat as an extra channel field, and reloaded. */
    ck_assert_int_eq(harness_stop(g_nsqd, 0), 0);
    g_nsqd = NULL;
    char dat[4200];
    snprintf(dat, sizeof(dat), "%s/nsqd.dat", g_dir);
    char *meta = itest_read_file(dat, NULL);
    ck_assert_ptr_nonnull(meta);
    ck_assert_msg(strstr(meta, "\"max_attempts\":2") != NULL, "%s", meta);
    free(meta);
    start(NULL);
    ck_assert_int_eq(itest_stats_int(g_http, "mail", "send", "max_attempts"), 2);

    int fd = consumer("mail", "send", "{}");
    publish("mail");
    char id[ITEST_ID_LEN + 1] = "";
    for (int i = 1; i <= 2; i++) {
        struct itest_msg m;
        ck_assert_int_eq(itest_read_msg(fd, &m, WAIT_MS), 0);
        memcpy(id, m.id, sizeof(id));
        req(fd, m.id);
        free(m.body);
    }
    ck_assert_int_eq(await_stat("mail", "send", "dead_letter_count", 1), 1);
    expect_dead("mail", id, 2);

    /* 0 = inherit (here: off); the count stays visible. */
    expect_http("POST", "/channel/max_attempts?topic=mail&channel=send&max_attempts=0", 200, NULL);
    ck_assert_int_eq(itest_stats_int(g_http, "mail", "send", "max_attempts"), 0);
    ck_assert_int_eq(itest_stats_int(g_http, "mail", "send", "dead_letter_count"), 1);
    close(fd);
}
END_TEST

START_TEST(test_journal_crash_keeps_dead_letter)
{
    const char *const flags[] = {"--max-attempts=1", "--sync-every=1", "--mem-queue-size=0", NULL};
    start(flags);
    int fd = itest_v2_connect(g_tcp);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(itest_identify(fd, "{}"), 0);
    ck_assert_int_eq(itest_sub(fd, "pay", "settle"), 0);
    ck_assert_int_eq(itest_rdy(fd, CRASH_BATCH), 0);
    /* A batch of REQs in one write: the dead-letter topic is synced once for all of them. */
    char body[CRASH_BATCH * (BODY_LEN + 1)];
    for (int i = 0; i < CRASH_BATCH; i++)
        memcpy(body + i * (BODY_LEN + 1), BODY "\n", BODY_LEN + 1);
    body[sizeof(body) - 1] = '\0';
    expect_http_body("POST", "/mpub?topic=pay", body, 200, "OK");
    char reqs[CRASH_BATCH * 32] = "", id0[ITEST_ID_LEN + 1] = "";
    for (int i = 0; i < CRASH_BATCH; i++) {
        struct itest_msg m;
        ck_assert_int_eq(itest_read_msg(fd, &m, WAIT_MS), 0);
        if (i == 0)
            memcpy(id0, m.id, sizeof(id0));
        snprintf(reqs + strlen(reqs), sizeof(reqs) - strlen(reqs), "REQ %.16s 0\n", m.id);
        free(m.body);
    }
    ck_assert_int_eq(harness_tcp_send_str(fd, reqs), 0);
    ck_assert_int_eq(await_stat("pay", "settle", "dead_letter_count", CRASH_BATCH), CRASH_BATCH);
    /* Barrier: a later delivery's frame is sent only once its journal record, queued after the
       dead-letter records, is on disk. */
    publish("pay");
    struct itest_msg barrier;
    ck_assert_int_eq(itest_read_msg(fd, &barrier, WAIT_MS), 0);
    ck_assert_str_eq(barrier.body, BODY);
    free(barrier.body);
    /* Crash: the journal must not hand the dead-lettered messages back to their channel (only the
       barrier, still in flight, returns), and the dead-letter topic must hold every one. */
    harness_kill(g_nsqd);
    g_nsqd = NULL;
    close(fd);
    start(flags);
    ck_assert_int_eq(itest_stats_int(g_http, "pay", "settle", "depth"), 1);
    ck_assert_int_eq(itest_stats_int(g_http, "pay", "settle", "in_flight_count"), 0);
    ck_assert_int_eq(itest_stats_int(g_http, "pay.dead", NULL, "depth"), CRASH_BATCH);
    expect_dead("pay", id0, 1);
}
END_TEST

START_TEST(test_nsqadmin_shows_count)
{
    const char *const flags[] = {"--max-attempts=1", NULL};
    start(flags);
    int fd = consumer("feed", "index", "{}");
    publish("feed");
    struct itest_msg m;
    ck_assert_int_eq(itest_read_msg(fd, &m, WAIT_MS), 0);
    req(fd, m.id);
    free(m.body);
    ck_assert_int_eq(await_stat("feed", "index", "dead_letter_count", 1), 1);
    close(fd);

    char node[64];
    snprintf(node, sizeof(node), "--nsqd-http-address=127.0.0.1:%d", g_http);
    const char *const args[] = {"--http-address=127.0.0.1:0", node, NULL};
    struct harness_proc *admin = harness_start(NSQADMIN_BIN, args, 1);
    ck_assert_ptr_nonnull(admin);
    int port = harness_port(admin, "HTTP");
    long st;
    cJSON *t = itest_http_json("GET", port, "/api/topics/feed", NULL, &st);
    ck_assert_int_eq(st, 200);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(t, "dead_letter_count");
    ck_assert_msg(cJSON_IsNumber(v) && v->valuedouble == 1, "topic: %s", cJSON_Print(t));
    const cJSON *c = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(t, "channels"), 0);
    v = cJSON_GetObjectItemCaseSensitive(c, "dead_letter_count");
    ck_assert(cJSON_IsNumber(v) && v->valuedouble == 1);
    cJSON_Delete(t);
    cJSON *ch = itest_http_json("GET", port, "/api/topics/feed/index", NULL, &st);
    ck_assert_int_eq(st, 200);
    v = cJSON_GetObjectItemCaseSensitive(ch, "dead_letter_count");
    ck_assert(cJSON_IsNumber(v) && v->valuedouble == 1);
    cJSON_Delete(ch);
    /* A topic without dead-lettering keeps upstream's fields only. */
    cJSON *d = itest_http_json("GET", port, "/api/topics/feed.dead", NULL, &st);
    ck_assert_int_eq(st, 200);
    ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(d, "dead_letter_count"));
    cJSON_Delete(d);
    ck_assert_int_eq(harness_stop(admin, 0), 0);
}
END_TEST

/* Two channels dead-letter the same message: the dead-letter topic gets a copy from each, and
   every channel of it sees the attempts count (copies keep it). */
START_TEST(test_two_channels_and_dead_channels)
{
    const char *const flags[] = {"--max-attempts=1", NULL};
    start(flags);
    expect_http("POST", "/topic/create?topic=fan", 200, NULL);
    expect_http("POST", "/channel/create?topic=fan&channel=a", 200, NULL);
    expect_http("POST", "/channel/create?topic=fan&channel=b", 200, NULL);
    expect_http("POST", "/topic/create?topic=fan.dead", 200, NULL);
    expect_http("POST", "/channel/create?topic=fan.dead&channel=x", 200, NULL);
    expect_http("POST", "/channel/create?topic=fan.dead&channel=y", 200, NULL);
    int a = consumer("fan", "a", "{}"), b = consumer("fan", "b", "{}");
    publish("fan");
    struct itest_msg ma, mb;
    ck_assert_int_eq(itest_read_msg(a, &ma, WAIT_MS), 0);
    ck_assert_int_eq(itest_read_msg(b, &mb, WAIT_MS), 0);
    ck_assert_str_eq(ma.id, mb.id);
    req(a, ma.id);
    req(b, mb.id);
    ck_assert_int_eq(await_stat("fan", "a", "dead_letter_count", 1), 1);
    ck_assert_int_eq(await_stat("fan", "b", "dead_letter_count", 1), 1);
    ck_assert_int_eq(await_stat("fan.dead", NULL, "message_count", 2), 2);
    const char *chans[] = {"x", "y"};
    for (size_t c = 0; c < 2; c++) {
        int fd = consumer("fan.dead", chans[c], "{}");
        for (int i = 0; i < 2; i++) {
            struct itest_msg m;
            ck_assert_int_eq(itest_read_msg(fd, &m, WAIT_MS), 0);
            ck_assert_str_eq(m.id, ma.id);
            ck_assert_str_eq(m.body, BODY);
            ck_assert_int_eq(m.attempts, 1);
            ck_assert_int_eq(itest_fin(fd, m.id), 0);
            free(m.body);
        }
        close(fd);
    }
    free(ma.body);
    free(mb.body);
    close(a);
    close(b);
}
END_TEST

/* A bound UDP socket on loopback; its port into *port. */
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

/* True once a datagram holding `line` arrives (before the deadline). */
static bool udp_wait_line(int fd, const char *line)
{
    int64_t deadline = harness_now_ms() + WAIT_MS;
    char d[65536];
    while (harness_now_ms() < deadline) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t n = recv(fd, d, sizeof(d) - 1, 0);
        if (n <= 0)
            continue;
        d[n] = '\0';
        if (strstr(d, line))
            return true;
    }
    return false;
}

START_TEST(test_statsd_counter)
{
    int uport, ufd = udp_listen(&uport);
    char addr[64];
    snprintf(addr, sizeof(addr), "--statsd-address=127.0.0.1:%d", uport);
    const char *const flags[] = {"--max-attempts=1", addr, "--statsd-interval=1s", NULL};
    start(flags);
    int fd = consumer("st", "c", "{}");
    publish("st");
    struct itest_msg m;
    ck_assert_int_eq(itest_read_msg(fd, &m, WAIT_MS), 0);
    req(fd, m.id);
    free(m.body);
    ck_assert_int_eq(await_stat("st", "c", "dead_letter_count", 1), 1);
    /* A counter: the push after the move carries it. */
    ck_assert(udp_wait_line(ufd, ".topic.st.channel.c.dead_letter_count:1|c\n"));
    close(fd);
    close(ufd);
}
END_TEST

/* Sends DPUB and returns the reply frame's text (caller frees). An out-of-range timeout is
   refused (and the connection closed) on the command line, before the body: pass ok = false not
   to send one. */
static char *dpub(int fd, int64_t ms, bool ok)
{
    char line[128];
    snprintf(line, sizeof(line), "DPUB later %lld\n", (long long)ms);
    ck_assert_int_eq(harness_tcp_send_str(fd, line), 0);
    if (ok)
        ck_assert_int_eq(harness_tcp_send_sized(fd, BODY, BODY_LEN), 0);
    int32_t type;
    char *data = NULL;
    size_t len;
    ck_assert_int_eq(itest_read_frame(fd, &type, &data, &len, WAIT_MS), 0);
    char *s = malloc(len + 1);
    memcpy(s, data, len);
    s[len] = '\0';
    free(data);
    return s;
}

START_TEST(test_max_defer_timeout)
{
    const char *const flags[] = {"--max-defer-timeout=2s", NULL};
    start(flags);
    int fd = itest_v2_connect(g_tcp);
    ck_assert_int_eq(itest_identify(fd, "{}"), 0);
    char *r = dpub(fd, 2000, true);
    ck_assert_str_eq(r, "OK");
    free(r);
    r = dpub(fd, 2001, false);
    ck_assert_str_eq(r, "E_INVALID DPUB timeout 2001 out of range 0-2000");
    free(r);
    close(fd);
    expect_http_body("POST", "/pub?topic=later&defer=2000", BODY, 200, "OK");
    expect_http_body("POST", "/pub?topic=later&defer=2001", BODY, 400, "INVALID_DEFER");
    ck_assert_int_eq(itest_stats_int(g_http, "later", NULL, "message_count"), 2);
}
END_TEST

START_TEST(test_max_defer_timeout_above_req)
{
    const char *const flags[] = {"--max-req-timeout=1s", "--max-defer-timeout=3s", NULL};
    start(flags);
    int fd = itest_v2_connect(g_tcp);
    ck_assert_int_eq(itest_identify(fd, "{}"), 0);
    char *r = dpub(fd, 3000, true);
    ck_assert_str_eq(r, "OK");
    free(r);
    r = dpub(fd, 3001, false);
    ck_assert_str_eq(r, "E_INVALID DPUB timeout 3001 out of range 0-3000");
    free(r);
    close(fd);
}
END_TEST

START_TEST(test_default_defer_bound_is_req_timeout)
{
    const char *const flags[] = {"--max-req-timeout=1s", NULL};
    start(flags);
    int fd = itest_v2_connect(g_tcp);
    ck_assert_int_eq(itest_identify(fd, "{}"), 0);
    char *r = dpub(fd, 1001, false);
    ck_assert_str_eq(r, "E_INVALID DPUB timeout 1001 out of range 0-1000");
    free(r);
    close(fd);
    expect_http_body("POST", "/pub?topic=later&defer=1001", BODY, 400, "INVALID_DEFER");
}
END_TEST

/* The config-file keys: max_attempts, dead_letter_suffix, max_defer_timeout. */
START_TEST(test_config_file_keys)
{
    char path[4200], flag[4300];
    snprintf(path, sizeof(path), "%s/nsqd.cfg", g_dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("max_attempts = 4\ndead_letter_suffix = \"_dlq\"\nmax_defer_timeout = \"5s\"\n", f);
    fclose(f);
    snprintf(flag, sizeof(flag), "--config=%s", path);
    const char *const flags[] = {flag, NULL};
    start(flags);
    expect_http("GET", "/config/max_attempts", 200, "4");
    expect_http("POST", "/topic/create?topic=cfg", 200, NULL);
    expect_http("POST", "/channel/create?topic=cfg&channel=c", 200, NULL);
    ck_assert_int_eq(itest_stats_int(g_http, "cfg", "c", "max_attempts"), 4);
    /* cfg_dlq's channels are dead-letter channels: they do not inherit the limit. */
    expect_http("POST", "/topic/create?topic=cfg_dlq", 200, NULL);
    expect_http("POST", "/channel/create?topic=cfg_dlq&channel=c", 200, NULL);
    ck_assert_int_eq(itest_stats_int(g_http, "cfg_dlq", "c", "max_attempts"), -1);
    int fd = itest_v2_connect(g_tcp);
    ck_assert_int_eq(itest_identify(fd, "{}"), 0);
    char *r = dpub(fd, 5001, false);
    ck_assert_str_eq(r, "E_INVALID DPUB timeout 5001 out of range 0-5000");
    free(r);
    close(fd);
}
END_TEST

START_TEST(test_invalid_settings_refused)
{
    static const char *const bad[][2] = {
            {"--dead-letter-suffix=/x", NULL},
            {"--dead-letter-suffix=#ephemeral", NULL},
            {"--max-attempts=-1", NULL},
            {"--max-attempts=70000", NULL},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct harness_proc *p = itest_nsqd_start(g_dir, bad[i]);
        ck_assert_msg(p == NULL, "%s accepted", bad[i][0]);
    }
}
END_TEST

static Suite *dead_letter_suite(void)
{
    Suite *s = suite_create("nsqd_dead_letter");
    TCase *tc = tcase_create("dead_letter");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_req_loop_ends_in_dead_topic);
    tcase_add_test(tc, test_timeout_ends_in_dead_topic);
    tcase_add_test(tc, test_off_by_default);
    tcase_add_test(tc, test_channel_setting_persists);
    tcase_add_test(tc, test_journal_crash_keeps_dead_letter);
    tcase_add_test(tc, test_two_channels_and_dead_channels);
    tcase_add_test(tc, test_statsd_counter);
#ifdef NSQADMIN_BIN
    tcase_add_test(tc, test_nsqadmin_shows_count);
#endif
    tcase_add_test(tc, test_max_defer_timeout);
    tcase_add_test(tc, test_max_defer_timeout_above_req);
    tcase_add_test(tc, test_default_defer_bound_is_req_timeout);
    tcase_add_test(tc, test_config_file_keys);
    tcase_add_test(tc, test_invalid_settings_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(dead_letter_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
