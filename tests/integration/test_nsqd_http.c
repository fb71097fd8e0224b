/*
 * test_nsqd_http: every nsqd HTTP endpoint and its errors (http-api.md §0-§2) against a real nsqd,
 * and /stats, /info compared in shape with upstream's recorded answers.
 */
#include <check.h>
#include <cjson/cJSON.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "harness.h"
#include "nsqd_itest.h"

#define MAX_MSG_SIZE  100
#define MAX_BODY_SIZE 1000

static struct itest_node g_node;

/* Sends request on a fresh connection to the HTTP port and returns everything read until the
   server closes (malloc'd, NUL-terminated), or NULL. */
static char *raw_http_exchange(const char *request)
{
    int fd = harness_connect(g_node.http);
    if (fd < 0)
        return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (!buf || harness_tcp_send_str(fd, request) != 0) {
        free(buf);
        close(fd);
        return NULL;
    }
    while (len + 1 < cap && harness_tcp_read_n(fd, buf + len, 1, 5000) == 0)
        len++;
    buf[len] = '\0';
    close(fd);
    return buf;
}

static void start_nsqd(void)
{
    static const char *const extra[] = {"--max-msg-size=100",
                                        "--max-body-size=1000",
                                        "--max-req-timeout=10s",
                                        "--broadcast-address=127.0.0.1",
                                        "--e2e-processing-latency-percentile=0.99",
                                        NULL};
    itest_node_start(&g_node, extra);
}

static void stop_nsqd(void)
{
    ck_assert_int_eq(itest_node_free(&g_node), 0);
}

/* Sends a request and checks status and body (body NULL = not checked). */
static void expect(const char *method, const char *path, const char *body, long status,
                   const char *want_body)
{
    char *got = NULL;
    long st = itest_http(method, g_node.http, path, body, &got);
    ck_assert_msg(st == status, "%s %s: status %ld, want %ld (body %s)", method, path, st, status,
                  got ? got : "");
    if (want_body != NULL)
        ck_assert_msg(got != NULL && strcmp(got, want_body) == 0, "%s %s: body '%s', want '%s'",
                      method, path, got ? got : "(null)", want_body);
    free(got);
}

/* Error answers are {"message":"<text>"}. */
static void expect_err(const char *method, const char *path, const char *body, long status,
                       const char *msg)
{
    char want[256];
    snprintf(want, sizeof(want), "{\"message\":\"%s\"}", msg);
    expect(method, path, body, status, want);
}

static char *header_of(const char *method, const char *path, const char *body, const char *name,
                       long *status)
{
    struct harness_response r;
    char *h;
    memset(&r, 0, sizeof(r));
    ck_assert_int_eq(harness_http(method, g_node.http, path, body, body ? strlen(body) : 0, &r), 0);
    h = harness_response_header(&r, name);
    if (status)
        *status = r.status;
    harness_response_free(&r);
    return h;
}

START_TEST(ping)
{
    long st;
    char *h;
    expect("GET", "/ping", NULL, 200, "OK");
    h = header_of("GET", "/ping", NULL, "X-NSQ-Content-Type", &st);
    ck_assert_ptr_null(h); /* PlainText encoder */
}
END_TEST

START_TEST(info)
{
    char *want_text = itest_read_file(ITEST_HTTP_DIR "nsqd-info.json", NULL);
    cJSON *want = cJSON_Parse(want_text);
    long st;
    cJSON *got = itest_http_json("GET", g_node.http, "/info", NULL, &st);
    char err[512];
    char *ct, *xct;

    ck_assert_int_eq(st, 200);
    ck_assert_ptr_nonnull(got);
    ck_assert_msg(itest_json_shape_diff(got, want, "$", err, sizeof(err)), "%s", err);
    ck_assert_str_eq(cJSON_GetObjectItem(got, "version")->valuestring, "1.3.0");
    ck_assert_str_eq(cJSON_GetObjectItem(got, "broadcast_address")->valuestring, "127.0.0.1");
    ck_assert_int_eq(cJSON_GetObjectItem(got, "http_port")->valueint, g_node.http);
    ck_assert_int_eq(cJSON_GetObjectItem(got, "tcp_port")->valueint, g_node.tcp);
    ck_assert_double_eq(cJSON_GetObjectItem(got, "max_heartbeat_interval")->valuedouble,
                        60000000000.0);
    ck_assert_int_eq(cJSON_GetObjectItem(got, "max_output_buffer_size")->valueint, 65536);
    ck_assert_int_eq(cJSON_GetObjectItem(got, "max_deflate_level")->valueint, 6);
    ct = header_of("GET", "/info", NULL, "Content-Type", &st);
    xct = header_of("GET", "/info", NULL, "X-NSQ-Content-Type", &st);
    ck_assert_ptr_nonnull(ct);
    ck_assert_str_eq(ct, "application/json; charset=utf-8");
    ck_assert_ptr_nonnull(xct);
    ck_assert_str_eq(xct, "nsq; version=1.0");
    free(ct);
    free(xct);
    cJSON_Delete(got);
    cJSON_Delete(want);
    free(want_text);
}
END_TEST

START_TEST(routing)
{
    long st;
    char *allow;
    expect_err("GET", "/nope", NULL, 404, "NOT_FOUND");
    expect_err("POST", "/ping", NULL, 405, "METHOD_NOT_ALLOWED");
    expect_err("GET", "/pub?topic=x", NULL, 405, "METHOD_NOT_ALLOWED");
    allow = header_of("POST", "/info", NULL, "Allow", &st);
    ck_assert_int_eq(st, 405);
    ck_assert_ptr_nonnull(allow);
    ck_assert_ptr_nonnull(strstr(allow, "GET"));
    free(allow);
    allow = header_of("OPTIONS", "/stats", NULL, "Allow", &st);
    ck_assert_int_eq(st, 200);
    ck_assert_ptr_nonnull(allow);
    free(allow);
    expect("HEAD", "/ping", NULL, 405, NULL);
    {
        /* on the wire: HEAD gets the error's Content-Length and no body */
        char *raw =
                raw_http_exchange("HEAD /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        ck_assert_ptr_nonnull(raw);
        ck_assert_msg(strncmp(raw, "HTTP/1.1 405 ", 13) == 0, "%s", raw);
        ck_assert_msg(strcasestr(raw, "\r\nContent-Length: 32\r\n") != NULL, "%s", raw);
        size_t n = strlen(raw);
        ck_assert_msg(n >= 4 && strcmp(raw + n - 4, "\r\n\r\n") == 0, "body after HEAD: %s", raw);
        free(raw);
    }
    {
        char *xct = header_of("GET", "/nope", NULL, "X-NSQ-Content-Type", &st);
        ck_assert_ptr_nonnull(xct);
        ck_assert_str_eq(xct, "nsq; version=1.0");
        free(xct);
    }
    expect("GET", "/ping/", NULL, 301, NULL);
    expect("POST", "/pub/?topic=x", "x", 307, NULL);
}
END_TEST

START_TEST(pub_errors)
{
    char *recorded = itest_read_file(ITEST_HTTP_DIR "nsqd-pub-missing-topic.json", NULL);
    char big[MAX_MSG_SIZE + 2];
    ck_assert_ptr_nonnull(recorded);
    expect("POST", "/pub", "x", 400, recorded);
    free(recorded);
    expect_err("POST", "/pub?topic=bad!", "x", 400, "INVALID_TOPIC");
    expect_err("POST", "/pub?topic=pubtest", "", 400, "MSG_EMPTY");
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    expect_err("POST", "/pub?topic=pubtest", big, 413, "MSG_TOO_BIG");
    big[MAX_MSG_SIZE] = '\0';
    expect("POST", "/pub?topic=pubtest", big, 200, "OK");
    expect_err("POST", "/pub?topic=pubtest&defer=abc", "x", 400, "INVALID_DEFER");
    expect_err("POST", "/pub?topic=pubtest&defer=-1", "x", 400, "INVALID_DEFER");
    expect_err("POST", "/pub?topic=pubtest&defer=10001", "x", 400, "INVALID_DEFER");
    expect("POST", "/pub?topic=pubtest&defer=10000", "x", 200, "OK");
    expect_err("POST", "/pub?topic=%zz", "x", 400, "INVALID_REQUEST");
}
END_TEST

START_TEST(pub_ok)
{
    long st;
    char *xct = header_of("POST", "/pub?topic=pubok", "hello", "X-NSQ-Content-Type", &st);
    ck_assert_int_eq(st, 200);
    ck_assert_ptr_nonnull(xct);
    ck_assert_str_eq(xct, "nsq; version=1.0");
    free(xct);
    expect("POST", "/pub?topic=pubok&defer=0", "hello", 200, "OK");
    ck_assert_int_eq(itest_stats_int(g_node.http, "pubok", NULL, "message_count"), 2);
    ck_assert_int_eq(itest_stats_int(g_node.http, "pubok", NULL, "message_bytes"), 10);
    ck_assert_int_eq(itest_stats_int(g_node.http, "pubok", NULL, "depth"), 2);
}
END_TEST

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static long post_raw(const char *path, const void *body, size_t len, char **out)
{
    struct harness_response r;
    long st;
    memset(&r, 0, sizeof(r));
    ck_assert_int_eq(harness_http("POST", g_node.http, path, body, len, &r), 0);
    st = r.status;
    *out = r.body;
    r.body = NULL;
    harness_response_free(&r);
    return st;
}

START_TEST(mpub)
{
    uint8_t bin[64];
    char *out;
    char big[MAX_BODY_SIZE + 10];

    expect("POST", "/mpub?topic=mpubt", "a\nbb\n\nccc\r\n", 200, "OK");
    ck_assert_int_eq(itest_stats_int(g_node.http, "mpubt", NULL, "message_count"), 3);
    /* "a", "bb", "ccc\r" */
    ck_assert_int_eq(itest_stats_int(g_node.http, "mpubt", NULL, "message_bytes"), 7);
    expect("POST", "/mpub?topic=mpubt", "\n\n", 200, "OK");
    ck_assert_int_eq(itest_stats_int(g_node.http, "mpubt", NULL, "message_count"), 3);

    /* binary: 2 messages */
    put32(bin, 2);
    put32(bin + 4, 3);
    memcpy(bin + 8, "abc", 3);
    put32(bin + 11, 1);
    bin[15] = 'z';
    ck_assert_int_eq(post_raw("/mpub?topic=mpubt&binary=true", bin, 16, &out), 200);
    ck_assert_str_eq(out, "OK");
    free(out);
    ck_assert_int_eq(itest_stats_int(g_node.http, "mpubt", NULL, "message_count"), 5);

    put32(bin, 0);
    ck_assert_int_eq(post_raw("/mpub?topic=mpubt&binary=1", bin, 4, &out), 413);
    ck_assert_str_eq(out, "{\"message\":\"BAD_BODY\"}");
    free(out);
    put32(bin, 1);
    put32(bin + 4, 0);
    ck_assert_int_eq(post_raw("/mpub?topic=mpubt&binary=true", bin, 8, &out), 413);
    ck_assert_str_eq(out, "{\"message\":\"BAD_MESSAGE\"}");
    free(out);
    put32(bin, 1);
    put32(bin + 4, MAX_MSG_SIZE + 1);
    ck_assert_int_eq(post_raw("/mpub?topic=mpubt&binary=true", bin, 8, &out), 413);
    ck_assert_str_eq(out, "{\"message\":\"BAD_MESSAGE\"}");
    free(out);
    ck_assert_int_eq(itest_stats_int(g_node.http, "mpubt", NULL, "message_count"), 5);

    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    expect_err("POST", "/mpub?topic=mpubt", big, 413, "BODY_TOO_BIG");
    big[MAX_MSG_SIZE + 1] = '\0';
    expect_err("POST", "/mpub?topic=mpubt", big, 413, "MSG_TOO_BIG");
    expect_err("POST", "/mpub", "a\n", 400, "MISSING_ARG_TOPIC");
    expect_err("POST", "/mpub?topic=b@d", "a\n", 400, "INVALID_TOPIC");
}
END_TEST

START_TEST(topic_endpoints)
{
    static const char *const ops[] = {"create", "delete", "empty", "pause", "unpause"};
    char path[128];
    cJSON *root, *t;

    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        snprintf(path, sizeof(path), "/topic/%s", ops[i]);
        expect_err("POST", path, NULL, 400, "MISSING_ARG_TOPIC");
        expect_err("GET", path, NULL, 405, "METHOD_NOT_ALLOWED");
        if (strcmp(ops[i], "create") != 0) {
            snprintf(path, sizeof(path), "/topic/%s?topic=missing", ops[i]);
            expect_err("POST", path, NULL, 404, "TOPIC_NOT_FOUND");
        }
    }
    expect_err("POST", "/topic/create?topic=bad!", NULL, 400, "INVALID_TOPIC");
    expect_err("POST", "/topic/empty?topic=bad!", NULL, 400, "INVALID_TOPIC");
    expect_err("POST", "/topic/delete?topic=bad!", NULL, 404, "TOPIC_NOT_FOUND");
    expect_err("POST", "/topic/create?topic=%zz", NULL, 400, "INVALID_REQUEST");

    expect("POST", "/topic/create?topic=tadmin", NULL, 200, "");
    expect("POST", "/topic/create?topic=tadmin", NULL, 200, "");
    expect("POST", "/pub?topic=tadmin", "m1", 200, "OK");
    expect("POST", "/pub?topic=tadmin", "m2", 200, "OK");
    ck_assert_int_eq(itest_stats_int(g_node.http, "tadmin", NULL, "depth"), 2);
    expect("POST", "/topic/pause?topic=tadmin", NULL, 200, "");
    root = itest_stats(g_node.http, NULL);
    t = itest_stats_find(root, "tadmin", NULL);
    ck_assert_ptr_nonnull(t);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(t, "paused")));
    cJSON_Delete(root);
    expect("POST", "/topic/unpause?topic=tadmin", NULL, 200, "");
    root = itest_stats(g_node.http, NULL);
    t = itest_stats_find(root, "tadmin", NULL);
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(t, "paused")));
    cJSON_Delete(root);
    expect("POST", "/topic/empty?topic=tadmin", NULL, 200, "");
    ck_assert_int_eq(itest_stats_int(g_node.http, "tadmin", NULL, "depth"), 0);
    expect("POST", "/topic/delete?topic=tadmin", NULL, 200, "");
    ck_assert_int_eq(itest_stats_int(g_node.http, "tadmin", NULL, "depth"), -1);
    expect_err("POST", "/topic/delete?topic=tadmin", NULL, 404, "TOPIC_NOT_FOUND");
}
END_TEST

START_TEST(channel_endpoints)
{
    static const char *const ops[] = {"create", "delete", "empty", "pause", "unpause"};
    char path[160];
    cJSON *root, *c;

    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        snprintf(path, sizeof(path), "/channel/%s", ops[i]);
        expect_err("POST", path, NULL, 400, "MISSING_ARG_TOPIC");
        snprintf(path, sizeof(path), "/channel/%s?topic=bad!&channel=c", ops[i]);
        expect_err("POST", path, NULL, 400, "INVALID_ARG_TOPIC");
        snprintf(path, sizeof(path), "/channel/%s?topic=cadmin", ops[i]);
        expect_err("POST", path, NULL, 400, "MISSING_ARG_CHANNEL");
        snprintf(path, sizeof(path), "/channel/%s?topic=cadmin&channel=bad!", ops[i]);
        expect_err("POST", path, NULL, 400, "INVALID_ARG_CHANNEL");
        snprintf(path, sizeof(path), "/channel/%s?topic=nosuchtopic&channel=c", ops[i]);
        expect_err("POST", path, NULL, 404, "TOPIC_NOT_FOUND");
    }
    expect("POST", "/topic/create?topic=cadmin", NULL, 200, "");
    for (size_t i = 1; i < sizeof(ops) / sizeof(ops[0]); i++) {
        snprintf(path, sizeof(path), "/channel/%s?topic=cadmin&channel=nosuch", ops[i]);
        expect_err("POST", path, NULL, 404, "CHANNEL_NOT_FOUND");
    }
    expect("POST", "/channel/create?topic=cadmin&channel=ch", NULL, 200, "");
    expect("POST", "/pub?topic=cadmin", "m", 200, "OK");
    expect("POST", "/channel/pause?topic=cadmin&channel=ch", NULL, 200, "");
    root = itest_stats(g_node.http, NULL);
    c = itest_stats_find(root, "cadmin", "ch");
    ck_assert_ptr_nonnull(c);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(c, "paused")));
    cJSON_Delete(root);
    expect("POST", "/channel/unpause?topic=cadmin&channel=ch", NULL, 200, "");
    ck_assert_int_eq(itest_stats_int(g_node.http, "cadmin", "ch", "depth"), 1);
    expect("POST", "/channel/empty?topic=cadmin&channel=ch", NULL, 200, "");
    ck_assert_int_eq(itest_stats_int(g_node.http, "cadmin", "ch", "depth"), 0);
    expect("POST", "/channel/delete?topic=cadmin&channel=ch", NULL, 200, "");
    ck_assert_int_eq(itest_stats_int(g_node.http, "cadmin", "ch", "depth"), -1);
}
END_TEST

START_TEST(config)
{
    expect("GET", "/config/log_level", NULL, 200, "2");
    expect("GET", "/config/broadcast_address", NULL, 200, "127.0.0.1");
    expect("GET", "/config/msg_timeout", NULL, 200, "60000000000");
    expect("GET", "/config/max_msg_size", NULL, 200, "100");
    /* As upstream, the statsd prefix is shown expanded with the broadcast address and HTTP port. */
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "nsq.127_0_0_1_%d.", g_node.http);
    expect("GET", "/config/statsd_prefix", NULL, 200, prefix);
    /* Unset broadcast ports show the listeners' ports, as upstream. */
    char port[16];
    snprintf(port, sizeof(port), "%d", g_node.http);
    expect("GET", "/config/broadcast_http_port", NULL, 200, port);
    expect_err("GET", "/config/nope", NULL, 400, "INVALID_OPTION");
    expect_err("PUT", "/config/msg_timeout", "1s", 400, "INVALID_OPTION");
    expect_err("PUT", "/config/nope", "1", 400, "INVALID_OPTION");

    expect("PUT", "/config/log_level", "debug", 200, "1");
    expect("GET", "/config/log_level", NULL, 200, "1");
    expect("PUT", "/config/log_level", "INFO", 200, "2");
    expect_err("PUT", "/config/log_level", "loud", 400, "INVALID_VALUE");
    expect_err("PUT", "/config/log_level", "", 413, "INVALID_VALUE");
    {
        char big[MAX_MSG_SIZE + 2];
        memset(big, 'd', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        expect_err("PUT", "/config/log_level", big, 413, "INVALID_VALUE");
    }
    expect("GET", "/config/log_level", NULL, 200, "2");

    /* Both address lists start as empty lists. */
    expect("GET", "/config/nsqlookupd_tcp_addresses", NULL, 200, "[]");
    expect("GET", "/config/auth_http_addresses", NULL, 200, "[]");
    expect("GET", "/config/auth_http_request_method", NULL, 200, "get");
    expect("PUT", "/config/nsqlookupd_tcp_addresses", "[\"127.0.0.1:1\"]", 200,
           "[\"127.0.0.1:1\"]");
    expect("GET", "/config/nsqlookupd_tcp_addresses", NULL, 200, "[\"127.0.0.1:1\"]");
    expect_err("PUT", "/config/nsqlookupd_tcp_addresses", "127.0.0.1:1", 400, "INVALID_VALUE");
    expect("PUT", "/config/nsqlookupd_tcp_addresses", "[]", 200, "[]");
    expect("PUT", "/config/nsqlookupd_tcp_addresses", "null", 200, "null");
    expect_err("POST", "/config/log_level", "debug", 405, "METHOD_NOT_ALLOWED");
}
END_TEST

/* Builds the state of the recorded *-clients answers: topic events (50 messages, no channel),
   topic orders with channels audit (paused) and billing, one consumer on orders/billing with
   RDY 5 and three FINs, and one producer. Returns the two connection fds. */
static void build_fixture_state(int *consumer, int *producer)
{
    char lines[50 * 16] = "";
    struct itest_msg m[8];

    for (int i = 0; i < 50; i++) {
        char l[16];
        snprintf(l, sizeof(l), "event-%02d\n", i);
        strcat(lines, l);
    }
    expect("POST", "/mpub?topic=events", lines, 200, "OK");
    expect("POST", "/channel/create?topic=orders&channel=audit", NULL, 404, NULL);
    expect("POST", "/topic/create?topic=orders", NULL, 200, "");
    expect("POST", "/channel/create?topic=orders&channel=audit", NULL, 200, "");
    expect("POST", "/channel/create?topic=orders&channel=billing", NULL, 200, "");
    expect("POST", "/channel/pause?topic=orders&channel=audit", NULL, 200, "");
    for (int i = 0; i < 20; i++)
        expect("POST", "/pub?topic=orders", "order-xxxx", 200, "OK");

    *consumer = itest_v2_connect(g_node.tcp);
    ck_assert_int_ge(*consumer, 0);
    ck_assert_int_eq(itest_identify(*consumer, "{\"client_id\":\"fixture-consumer\","
                                               "\"hostname\":\"fixture-host\","
                                               "\"user_agent\":\"fixture/1.0\"}"),
                     0);
    ck_assert_int_eq(itest_sub(*consumer, "orders", "billing"), 0);
    ck_assert_int_eq(itest_rdy(*consumer, 5), 0);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(itest_read_msg(*consumer, &m[i], ITEST_IO_MS), 0);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(itest_fin(*consumer, m[i].id), 0);
        free(m[i].body);
    }
    free(m[3].body);
    free(m[4].body);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(itest_read_msg(*consumer, &m[i], ITEST_IO_MS), 0);
        free(m[i].body);
    }

    *producer = itest_v2_connect(g_node.tcp);
    ck_assert_int_ge(*producer, 0);
    ck_assert_int_eq(itest_identify(*producer, "{\"client_id\":\"fixture-producer\","
                                               "\"hostname\":\"fixture-host\","
                                               "\"user_agent\":\"fixture/1.0\"}"),
                     0);
    ck_assert_int_eq(itest_pub(*producer, "orders", "test", 4), 0);
}

struct inflight_arg {
    int want;
};

static bool billing_has_inflight(void *arg)
{
    struct inflight_arg *a = arg;
    return itest_stats_int(g_node.http, "orders", "billing", "in_flight_count") == a->want;
}

/* Normalises a text /stats answer: numbers → 9, e2e values dropped, runs of spaces → one, the
   first three lines reduced to their first word. */
static char *normalise_text(const char *in)
{
    char *out = malloc(strlen(in) + 1), *o = out;
    int line = 0;
    const char *p = in;
    while (*p) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        if (line < 3) {
            const char *sp = memchr(p, ' ', len);
            size_t keep = sp ? (size_t)(sp - p) : len;
            memcpy(o, p, keep);
            o += keep;
        } else {
            const char *e2e = NULL;
            for (size_t i = 0; i + 5 <= len; i++)
                if (memcmp(p + i, "e2e%:", 5) == 0)
                    e2e = p + i + 5;
            for (const char *q = p; q < p + len; q++) {
                if (e2e != NULL && q == e2e)
                    break;
                if (*q >= '0' && *q <= '9') {
                    if (o == out || o[-1] != '9')
                        *o++ = '9';
                } else if (*q == ' ') {
                    if (o == out || o[-1] != ' ')
                        *o++ = ' ';
                } else {
                    *o++ = *q;
                }
            }
        }
        *o++ = '\n';
        line++;
        p += len + (eol ? 1 : 0);
    }
    *o = '\0';
    return out;
}

START_TEST(stats_shapes)
{
    int consumer, producer;
    struct inflight_arg ia = {.want = 5};
    char err[512];
    long st;
    char *want_text, *got_text, *nw, *ng;
    cJSON *want, *got, *t, *c;

    build_fixture_state(&consumer, &producer);
    ck_assert(harness_wait_until(billing_has_inflight, &ia, ITEST_IO_MS));

    /* JSON with clients: same shape as upstream's recorded answer. */
    want_text = itest_read_file(ITEST_HTTP_DIR "nsqd-stats-clients.json", NULL);
    want = cJSON_Parse(want_text);
    got = itest_stats(g_node.http, NULL);
    ck_assert_ptr_nonnull(got);
    t = itest_stats_find(got, "orders", NULL);
    ck_assert_ptr_nonnull(t);
    /* Only the recorded topics, so that arrays line up by their first element. */
    ck_assert_msg(itest_json_shape_diff(got, want, "$", err, sizeof(err)), "%s", err);
    c = itest_stats_find(got, "orders", "billing");
    ck_assert_int_eq(cJSON_GetObjectItem(c, "client_count")->valueint, 1);
    ck_assert_int_eq(cJSON_GetObjectItem(c, "in_flight_count")->valueint, 5);
    {
        cJSON *cl = cJSON_GetArrayItem(cJSON_GetObjectItem(c, "clients"), 0);
        ck_assert_str_eq(cJSON_GetObjectItem(cl, "client_id")->valuestring, "fixture-consumer");
        ck_assert_int_eq(cJSON_GetObjectItem(cl, "state")->valueint, 3);
        ck_assert_int_eq(cJSON_GetObjectItem(cl, "ready_count")->valueint, 5);
        ck_assert_int_eq(cJSON_GetObjectItem(cl, "finish_count")->valueint, 3);
        ck_assert_int_eq(cJSON_GetObjectItem(cl, "message_count")->valueint, 8);
    }
    {
        cJSON *p = cJSON_GetArrayItem(cJSON_GetObjectItem(got, "producers"), 0);
        cJSON *pc = cJSON_GetArrayItem(cJSON_GetObjectItem(p, "pub_counts"), 0);
        ck_assert_str_eq(cJSON_GetObjectItem(p, "client_id")->valuestring, "fixture-producer");
        ck_assert_str_eq(cJSON_GetObjectItem(pc, "topic")->valuestring, "orders");
        ck_assert_int_eq(cJSON_GetObjectItem(pc, "count")->valueint, 1);
    }
    ck_assert(
            cJSON_IsTrue(cJSON_GetObjectItem(itest_stats_find(got, "orders", "audit"), "paused")));
    ck_assert_int_eq(cJSON_GetObjectItem(itest_stats_find(got, "events", NULL), "depth")->valueint,
                     50);
    cJSON_Delete(got);
    cJSON_Delete(want);
    free(want_text);

    /* Text: same lines once numbers are masked. */
    want_text = itest_read_file(ITEST_HTTP_DIR "nsqd-stats-clients.txt", NULL);
    st = itest_http("GET", g_node.http, "/stats", NULL, &got_text);
    ck_assert_int_eq(st, 200);
    nw = normalise_text(want_text);
    ng = normalise_text(got_text);
    ck_assert_str_eq(ng, nw);
    free(nw);
    free(ng);
    free(got_text);
    free(want_text);
    st = itest_http("GET", g_node.http, "/stats?format=text", NULL, &got_text);
    ck_assert_int_eq(st, 200);
    ck_assert(strncmp(got_text, "nsqd v1.3.0 (built w/", 21) == 0);
    free(got_text);

    /* Filters. */
    got = itest_stats(g_node.http, "&include_clients=false");
    c = itest_stats_find(got, "orders", "billing");
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(c, "clients")));
    ck_assert_int_eq(cJSON_GetObjectItem(c, "client_count")->valueint, 1);
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(got, "producers")));
    cJSON_Delete(got);

    got = itest_stats(g_node.http, "&include_mem=false");
    ck_assert_ptr_null(cJSON_GetObjectItem(got, "memory"));
    ck_assert_ptr_nonnull(cJSON_GetObjectItem(got, "producers"));
    cJSON_Delete(got);
    st = itest_http("GET", g_node.http, "/stats?include_mem=false", NULL, &got_text);
    ck_assert_ptr_null(strstr(got_text, "Memory:"));
    free(got_text);

    /* Unrecognised boolean values fall back to the defaults; any format but json is text. */
    got = itest_stats(g_node.http, "&include_clients=maybe&include_mem=maybe");
    ck_assert(cJSON_IsArray(
            cJSON_GetObjectItem(itest_stats_find(got, "orders", "billing"), "clients")));
    ck_assert_ptr_nonnull(cJSON_GetObjectItem(got, "memory"));
    cJSON_Delete(got);
    st = itest_http("GET", g_node.http, "/stats?format=JSON", NULL, &got_text);
    ck_assert(strncmp(got_text, "nsqd v1.3.0", 11) == 0);
    free(got_text);
    st = itest_http("GET", g_node.http, "/stats?format=text&include_clients=false", NULL,
                    &got_text);
    ck_assert_ptr_nonnull(strstr(got_text, "\nProducers: None\n"));
    ck_assert_ptr_null(strstr(got_text, "fixture-host"));
    free(got_text);

    got = itest_stats(g_node.http, "&topic=nosuch");
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(got, "topics")));
    cJSON_Delete(got);

    got = itest_stats(g_node.http, "&topic=orders&channel=billing");
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(got, "topics")), 1);
    t = itest_stats_find(got, "orders", NULL);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(t, "channels")), 1);
    ck_assert_ptr_nonnull(itest_stats_find(got, "orders", "billing"));
    cJSON_Delete(got);

    /* Topics sorted by name. */
    got = itest_stats(g_node.http, NULL);
    {
        cJSON *it;
        const char *prev = "";
        cJSON_ArrayForEach(it, cJSON_GetObjectItem(got, "topics"))
        {
            const char *name = cJSON_GetObjectItem(it, "topic_name")->valuestring;
            ck_assert_msg(strcmp(prev, name) < 0, "topics not sorted: %s before %s", prev, name);
            prev = name;
        }
    }
    cJSON_Delete(got);
    close(consumer);
    close(producer);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("nsqd_http");
    TCase *tc = tcase_create("endpoints");
    TCase *ts = tcase_create("stats");

    tcase_add_unchecked_fixture(tc, start_nsqd, stop_nsqd);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, ping);
    tcase_add_test(tc, info);
    tcase_add_test(tc, routing);
    tcase_add_test(tc, pub_errors);
    tcase_add_test(tc, pub_ok);
    tcase_add_test(tc, mpub);
    tcase_add_test(tc, topic_endpoints);
    tcase_add_test(tc, channel_endpoints);
    tcase_add_test(tc, config);
    suite_add_tcase(s, tc);

    /* A fresh nsqd holding only the recorded fixture's topics. */
    tcase_add_unchecked_fixture(ts, start_nsqd, stop_nsqd);
    tcase_set_timeout(ts, 120);
    tcase_add_test(ts, stats_shapes);
    suite_add_tcase(s, ts);
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
