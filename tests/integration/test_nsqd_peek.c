/*
 * test_nsqd_peek: GET /channel/peek (docs/peek.md) against a real nsqd: messages from the memory
 * queue and from the diskqueue, in delivery order, after a partial consumption; peeking changes
 * nothing (depth, attempts, in-flight) and a consumer then receives exactly the peeked messages
 * with attempts 1; bad input and the endpoint's absence without --http-peek.
 */
#include <check.h>
#include <cjson/cJSON.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "nsqd_itest.h"

#define WAIT_MS   20000
#define POLL_US   20000
#define MAX_PEEK  64
#define TOPIC     "pk"
#define CHANNEL   "ch"
#define PEEK_PATH "/channel/peek?topic=" TOPIC "&channel=" CHANNEL

static struct itest_node g_node;

static void start_nsqd(const char *const *extra)
{
    itest_node_start(&g_node, extra);
}

static void teardown(void)
{
    ck_assert_int_eq(itest_node_free(&g_node), 0);
}

/* Creates the topic and the channel, then publishes "m<i>" for i in [from, to) over HTTP. */
static void publish(int from, int to)
{
    ck_assert_int_eq(itest_http("POST", g_node.http, "/topic/create?topic=" TOPIC, NULL, NULL),
                     200);
    ck_assert_int_eq(itest_http("POST", g_node.http,
                                "/channel/create?topic=" TOPIC "&channel=" CHANNEL, NULL, NULL),
                     200);
    for (int i = from; i < to; i++) {
        char body[32];
        snprintf(body, sizeof(body), "m%d", i);
        ck_assert_int_eq(itest_http("POST", g_node.http, "/pub?topic=" TOPIC, body, NULL), 200);
    }
}

/* One peek answer, parsed. */
struct peeked {
    cJSON *root;
    int count;
    char ids[MAX_PEEK][ITEST_ID_LEN + 1];
    char bodies[MAX_PEEK][32];
    int attempts[MAX_PEEK];
    int64_t depth, in_flight;
};

static void peek(int n, struct peeked *p)
{
    char path[256];
    long st;
    snprintf(path, sizeof(path), PEEK_PATH "&n=%d", n);
    memset(p, 0, sizeof(*p));
    p->root = itest_http_json("GET", g_node.http, path, NULL, &st);
    ck_assert_int_eq(st, 200);
    ck_assert_ptr_nonnull(p->root);
    const cJSON *msgs = cJSON_GetObjectItem(p->root, "messages");
    ck_assert(cJSON_IsArray(msgs));
    p->count = cJSON_GetArraySize(msgs);
    ck_assert_int_le(p->count, MAX_PEEK);
    for (int i = 0; i < p->count; i++) {
        const cJSON *m = cJSON_GetArrayItem(msgs, i);
        const cJSON *id = cJSON_GetObjectItem(m, "id");
        const cJSON *body = cJSON_GetObjectItem(m, "body");
        ck_assert(cJSON_IsString(id) && strlen(id->valuestring) == ITEST_ID_LEN);
        ck_assert(cJSON_IsString(body));
        ck_assert(cJSON_IsNumber(cJSON_GetObjectItem(m, "timestamp")));
        if (!cJSON_GetObjectItem(m, "encoding"))
            ck_assert_int_eq(cJSON_GetObjectItem(m, "size")->valueint, strlen(body->valuestring));
        snprintf(p->ids[i], sizeof(p->ids[i]), "%s", id->valuestring);
        snprintf(p->bodies[i], sizeof(p->bodies[i]), "%s", body->valuestring);
        p->attempts[i] = cJSON_GetObjectItem(m, "attempts")->valueint;
    }
    p->depth = (int64_t)cJSON_GetObjectItem(p->root, "depth")->valuedouble;
    p->in_flight = (int64_t)cJSON_GetObjectItem(p->root, "in_flight_count")->valuedouble;
    ck_assert(cJSON_IsNumber(cJSON_GetObjectItem(p->root, "deferred_count")));
}

static void peeked_free(struct peeked *p)
{
    cJSON_Delete(p->root);
    p->root = NULL;
}

/* Peeks until `want` messages are shown (the topic hands messages to the channel, and the
   diskqueue reads ahead, in the background). */
static void peek_wait(int n, int want, struct peeked *p)
{
    int64_t deadline = harness_now_ms() + WAIT_MS;
    for (;;) {
        peek(n, p);
        if (p->count >= want)
            return;
        ck_assert_msg(harness_now_ms() < deadline, "peek shows %d of %d", p->count, want);
        peeked_free(p);
        usleep(POLL_US);
    }
}

/* The peeked messages are "m<from>".."m<from+count-1>", never delivered. */
static void expect_bodies(const struct peeked *p, int from, int count)
{
    ck_assert_int_eq(p->count, count);
    for (int i = 0; i < count; i++) {
        char want[32];
        snprintf(want, sizeof(want), "m%d", from + i);
        ck_assert_str_eq(p->bodies[i], want);
        ck_assert_int_eq(p->attempts[i], 0);
    }
}

/* A consumer with RDY n receives exactly the first n peeked messages, in order, attempts 1; then
   RDY 0 and FIN each. */
static void consume_expect(int fd, const struct peeked *p, int n)
{
    ck_assert_int_eq(itest_rdy(fd, n), 0);
    char ids[MAX_PEEK][ITEST_ID_LEN + 1];
    for (int i = 0; i < n; i++) {
        struct itest_msg m;
        ck_assert_int_eq(itest_read_msg(fd, &m, WAIT_MS), 0);
        ck_assert_str_eq(m.id, p->ids[i]);
        ck_assert_str_eq(m.body, p->bodies[i]);
        ck_assert_int_eq(m.attempts, 1);
        memcpy(ids[i], m.id, sizeof(ids[i]));
        free(m.body);
    }
    ck_assert_int_eq(itest_rdy(fd, 0), 0);
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(itest_fin(fd, ids[i]), 0);
}

static int subscribe(void)
{
    int fd = itest_v2_connect(g_node.tcp);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(itest_sub(fd, TOPIC, CHANNEL), 0);
    return fd;
}

static void run_peek_consume(int total, int first_batch)
{
    publish(0, total);
    struct peeked a, b;
    peek_wait(total, total, &a);
    expect_bodies(&a, 0, total);
    ck_assert_int_eq(a.depth, total);
    ck_assert_int_eq(a.in_flight, 0);

    peek(total, &b); /* peeking again: the same messages, nothing moved */
    ck_assert_int_eq(b.count, total);
    for (int i = 0; i < total; i++)
        ck_assert_str_eq(b.ids[i], a.ids[i]);
    ck_assert_int_eq(b.depth, total);
    peeked_free(&b);
    ck_assert_int_eq(itest_stats_int(g_node.http, TOPIC, CHANNEL, "depth"), total);

    int fd = subscribe();
    consume_expect(fd, &a, first_batch);
    peeked_free(&a);

    /* after a partial consumption: the rest, still in order */
    int64_t deadline = harness_now_ms() + WAIT_MS;
    for (;;) {
        peek(total, &a);
        if (a.in_flight == 0 && a.count == total - first_batch)
            break;
        ck_assert_msg(harness_now_ms() < deadline, "peek after consumption: %d shown", a.count);
        peeked_free(&a);
        usleep(POLL_US);
    }
    expect_bodies(&a, first_batch, total - first_batch);
    ck_assert_int_eq(a.depth, total - first_batch);
    consume_expect(fd, &a, total - first_batch);
    peeked_free(&a);
    close(fd);
}

START_TEST(test_peek_memory)
{
    static const char *const extra[] = {"--http-peek", NULL};
    start_nsqd(extra);
    run_peek_consume(12, 5);
}
END_TEST

START_TEST(test_peek_disk)
{
    static const char *const extra[] = {"--http-peek", "--mem-queue-size=0", NULL};
    start_nsqd(extra);
    run_peek_consume(30, 7);
}
END_TEST

/* Memory queue first, then the diskqueue: publish order is delivery order. */
START_TEST(test_peek_memory_then_disk)
{
    static const char *const extra[] = {"--http-peek", "--mem-queue-size=4", NULL};
    start_nsqd(extra);
    run_peek_consume(20, 6);
}
END_TEST

/* n bounds the answer; a body that is not UTF-8 comes as base64. */
START_TEST(test_peek_count_and_binary)
{
    static const char *const extra[] = {"--http-peek", NULL};
    start_nsqd(extra);
    publish(0, 5);
    static const char bin[] = {'\xff', '\0', 'a', 'b', 'c'};
    struct harness_response r;
    memset(&r, 0, sizeof(r));
    ck_assert_int_eq(harness_http("POST", g_node.http, "/pub?topic=" TOPIC, bin, sizeof(bin), &r),
                     0);
    ck_assert_int_eq(r.status, 200);
    harness_response_free(&r);

    struct peeked p;
    peek_wait(MAX_PEEK, 6, &p);
    ck_assert_int_eq(p.count, 6);
    const cJSON *last = cJSON_GetArrayItem(cJSON_GetObjectItem(p.root, "messages"), 5);
    ck_assert_str_eq(cJSON_GetObjectItem(last, "body")->valuestring, "/wBhYmM=");
    ck_assert_str_eq(cJSON_GetObjectItem(last, "encoding")->valuestring, "base64");
    ck_assert_int_eq(cJSON_GetObjectItem(last, "size")->valueint, sizeof(bin));
    ck_assert_ptr_null(cJSON_GetObjectItem(
            cJSON_GetArrayItem(cJSON_GetObjectItem(p.root, "messages"), 0), "encoding"));
    peeked_free(&p);

    peek(2, &p);
    expect_bodies(&p, 0, 2);
    peeked_free(&p);

    /* no n: the default count */
    long st;
    cJSON *j = itest_http_json("GET", g_node.http, PEEK_PATH, NULL, &st);
    ck_assert_int_eq(st, 200);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "messages")), 6);
    cJSON_Delete(j);
}
END_TEST

/* include=inflight,deferred also lists the messages in flight and deferred, earliest first and
   at most n of each, with what they would be delivered as; the queued ones are unchanged. */
START_TEST(test_peek_include_in_flight_deferred)
{
    enum { TOTAL = 6, TAKEN = 4 };
    static const int req_ms[TAKEN] = {0, 60000, 30000, 45000}; /* m0 stays in flight */
    static const char *const extra[] = {"--http-peek", NULL};
    start_nsqd(extra);
    publish(0, TOTAL);
    struct peeked p;
    peek_wait(TOTAL, TOTAL, &p);
    peeked_free(&p);

    int fd = subscribe();
    ck_assert_int_eq(itest_rdy(fd, TAKEN), 0);
    struct itest_msg m[TAKEN];
    for (int i = 0; i < TAKEN; i++)
        ck_assert_int_eq(itest_read_msg(fd, &m[i], WAIT_MS), 0);
    ck_assert_int_eq(itest_rdy(fd, 0), 0);
    for (int i = 1; i < TAKEN; i++) {
        char req[64];
        snprintf(req, sizeof(req), "REQ %s %d\n", m[i].id, req_ms[i]);
        ck_assert_int_eq(harness_tcp_send_str(fd, req), 0);
    }

    cJSON *j = NULL;
    int64_t deadline = harness_now_ms() + WAIT_MS;
    for (;;) {
        long st;
        j = itest_http_json("GET", g_node.http, PEEK_PATH "&n=2&include=inflight,deferred", NULL,
                            &st);
        ck_assert_int_eq(st, 200);
        if (cJSON_GetObjectItem(j, "deferred_count")->valueint == TAKEN - 1)
            break;
        ck_assert_msg(harness_now_ms() < deadline, "REQ not applied");
        cJSON_Delete(j);
        usleep(POLL_US);
    }
    const cJSON *msgs = cJSON_GetObjectItem(j, "messages");
    ck_assert_int_eq(cJSON_GetArraySize(msgs), 2);
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(msgs, 0), "body")->valuestring, "m4");
    const cJSON *inf = cJSON_GetObjectItem(j, "in_flight");
    ck_assert_int_eq(cJSON_GetArraySize(inf), 1);
    const cJSON *a = cJSON_GetArrayItem(inf, 0);
    ck_assert_str_eq(cJSON_GetObjectItem(a, "id")->valuestring, m[0].id);
    ck_assert_str_eq(cJSON_GetObjectItem(a, "body")->valuestring, "m0");
    ck_assert_int_eq(cJSON_GetObjectItem(a, "attempts")->valueint, 1);
    ck_assert_int_gt(cJSON_GetObjectItem(a, "expires_in_ms")->valueint, 0);
    /* deferred by due time, the two earliest: m2 (30 s) then m3 (45 s) */
    const cJSON *def = cJSON_GetObjectItem(j, "deferred");
    ck_assert_int_eq(cJSON_GetArraySize(def), 2);
    for (int k = 0; k < 2; k++) {
        const cJSON *d = cJSON_GetArrayItem(def, k);
        ck_assert_str_eq(cJSON_GetObjectItem(d, "id")->valuestring, m[2 + k].id);
        ck_assert_int_eq(cJSON_GetObjectItem(d, "attempts")->valueint, 1);
        int due = cJSON_GetObjectItem(d, "due_in_ms")->valueint;
        ck_assert(due > 0 && due <= req_ms[2 + k]);
    }
    cJSON_Delete(j);

    /* without include: no such lists */
    peek(TOTAL, &p);
    ck_assert_ptr_null(cJSON_GetObjectItem(p.root, "in_flight"));
    ck_assert_ptr_null(cJSON_GetObjectItem(p.root, "deferred"));
    expect_bodies(&p, TAKEN, TOTAL - TAKEN);
    peeked_free(&p);
    for (int i = 0; i < TAKEN; i++)
        free(m[i].body);
    close(fd);
}
END_TEST

static void expect_err(const char *method, const char *path, long status, const char *msg)
{
    char *got = NULL;
    char want[128];
    snprintf(want, sizeof(want), "{\"message\":\"%s\"}", msg);
    long st = itest_http(method, g_node.http, path, NULL, &got);
    ck_assert_msg(st == status && got && strcmp(got, want) == 0, "%s: %ld %s, want %ld %s", path,
                  st, got ? got : "", status, want);
    free(got);
}

START_TEST(test_peek_errors)
{
    static const char *const extra[] = {"--http-peek", NULL};
    start_nsqd(extra);
    expect_err("GET", "/channel/peek?topic=nope&channel=" CHANNEL, 404, "TOPIC_NOT_FOUND");
    publish(0, 1);
    expect_err("GET", "/channel/peek?topic=" TOPIC "&channel=nope", 404, "CHANNEL_NOT_FOUND");
    expect_err("GET", "/channel/peek", 400, "MISSING_ARG_TOPIC");
    expect_err("GET", "/channel/peek?topic=" TOPIC, 400, "MISSING_ARG_CHANNEL");
    expect_err("GET", "/channel/peek?topic=a*b&channel=" CHANNEL, 400, "INVALID_ARG_TOPIC");
    static const char *const bad_n[] = {"0", "-1", "1001", "abc", "5x", "", "99999999999999999999"};
    for (size_t i = 0; i < sizeof(bad_n) / sizeof(bad_n[0]); i++) {
        char path[128];
        snprintf(path, sizeof(path), PEEK_PATH "&n=%s", bad_n[i]);
        expect_err("GET", path, 400, "INVALID_ARG_N");
    }
    expect_err("POST", PEEK_PATH, 405, "METHOD_NOT_ALLOWED");
    expect_err("GET", PEEK_PATH "&include=bogus", 400, "INVALID_ARG_INCLUDE");
    expect_err("GET", PEEK_PATH "&include=inflight,,deferred", 400, "INVALID_ARG_INCLUDE");
    struct peeked p;
    peek_wait(1000, 1, &p); /* the largest count is accepted */
    peeked_free(&p);
}
END_TEST

/* Off by default: the path is unknown, as on upstream nsqd. */
START_TEST(test_peek_off_by_default)
{
    start_nsqd(NULL);
    publish(0, 1);
    expect_err("GET", PEEK_PATH, 404, "NOT_FOUND");
}
END_TEST

static Suite *peek_suite(void)
{
    Suite *s = suite_create("nsqd_peek");
    TCase *tc = tcase_create("peek");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_peek_memory);
    tcase_add_test(tc, test_peek_disk);
    tcase_add_test(tc, test_peek_memory_then_disk);
    tcase_add_test(tc, test_peek_count_and_binary);
    tcase_add_test(tc, test_peek_include_in_flight_deferred);
    tcase_add_test(tc, test_peek_errors);
    tcase_add_test(tc, test_peek_off_by_default);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(peek_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
