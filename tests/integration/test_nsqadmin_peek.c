/*
 * test_nsqadmin_peek: nsqadmin's GET /api/topics/<topic>/<channel>/peek (docs/peek.md) over three
 * real nsqd nodes: one with --http-peek and the channel (its messages are listed, nothing is
 * consumed), one with --http-peek and the topic but not the channel (left out), one without
 * --http-peek (listed with its error); and the count's validation.
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
#define NODES     3
#define MESSAGES  4
#define API_PEEK  "/api/topics/orders/billing/peek"
#define PEEK_NODE 0 /* --http-peek, has the channel */
#define BARE_NODE 1 /* --http-peek, topic only */
#define OLD_NODE  2 /* no --http-peek, has the channel */

static struct harness_proc *g_nsqd[NODES], *g_admin;
static char *g_dir[NODES];
static int g_http[NODES], g_admin_port;
static char g_node[NODES][64];

static long post(int port, const char *path, const char *body)
{
    return itest_http("POST", port, path, body, NULL);
}

static void cluster_up(void)
{
    static const char *const with_peek[] = {"--http-peek", "--broadcast-address=127.0.0.1", NULL};
    static const char *const without[] = {"--broadcast-address=127.0.0.1", NULL};
    char flags[NODES][96];
    const char *admin_args[NODES + 2];
    int na = 0;
    admin_args[na++] = "--http-address=127.0.0.1:0";
    for (int i = 0; i < NODES; i++) {
        g_dir[i] = harness_tmpdir();
        ck_assert_ptr_nonnull(g_dir[i]);
        g_nsqd[i] = itest_nsqd_start(g_dir[i], i == OLD_NODE ? without : with_peek);
        ck_assert_ptr_nonnull(g_nsqd[i]);
        g_http[i] = harness_port(g_nsqd[i], "HTTP");
        snprintf(g_node[i], sizeof(g_node[i]), "127.0.0.1:%d", g_http[i]);
        snprintf(flags[i], sizeof(flags[i]), "--nsqd-http-address=%s", g_node[i]);
        admin_args[na++] = flags[i];
        ck_assert_int_eq(post(g_http[i], "/topic/create?topic=orders", NULL), 200);
        if (i != BARE_NODE)
            ck_assert_int_eq(post(g_http[i], "/channel/create?topic=orders&channel=billing", NULL),
                             200);
    }
    admin_args[na] = NULL;
    for (int k = 0; k < MESSAGES; k++) {
        char body[16];
        snprintf(body, sizeof(body), "o%d", k);
        ck_assert_int_eq(post(g_http[PEEK_NODE], "/pub?topic=orders", body), 200);
    }
    g_admin = harness_start(NSQADMIN_BIN, admin_args, 1);
    ck_assert_ptr_nonnull(g_admin);
    g_admin_port = harness_port(g_admin, "HTTP");
}

static void cluster_down(void)
{
    ck_assert_int_eq(harness_stop(g_admin, SIGTERM), 0);
    for (int i = 0; i < NODES; i++) {
        harness_stop(g_nsqd[i], SIGTERM);
        harness_rmdir(g_dir[i]);
        free(g_dir[i]);
    }
}

static const cJSON *node_entry(const cJSON *nodes, const char *addr)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, nodes)
    {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(e, "node");
        if (cJSON_IsString(n) && strcmp(n->valuestring, addr) == 0)
            return e;
    }
    return NULL;
}

/* The peek node's entry lists `want` messages (the topic hands them to the channel in the
   background: polled). Returns the answer (caller deletes). */
static cJSON *admin_peek_wait(const char *query, int want)
{
    char path[128];
    snprintf(path, sizeof(path), API_PEEK "%s", query);
    int64_t deadline = harness_now_ms() + WAIT_MS;
    for (;;) {
        long st;
        cJSON *j = itest_http_json("GET", g_admin_port, path, NULL, &st);
        ck_assert_int_eq(st, 200);
        ck_assert_ptr_nonnull(j);
        const cJSON *e =
                node_entry(cJSON_GetObjectItemCaseSensitive(j, "nodes"), g_node[PEEK_NODE]);
        const cJSON *peek = cJSON_GetObjectItemCaseSensitive(e, "peek");
        if (cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(peek, "messages")) == want)
            return j;
        ck_assert_msg(harness_now_ms() < deadline, "nsqadmin peek: not %d messages", want);
        cJSON_Delete(j);
        usleep(20000);
    }
}

START_TEST(peek_fans_out)
{
    cJSON *j = admin_peek_wait("", MESSAGES);
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(j, "message")->valuestring, "");
    const cJSON *nodes = cJSON_GetObjectItemCaseSensitive(j, "nodes");
    ck_assert_int_eq(cJSON_GetArraySize(nodes), 2); /* the node without the channel is left out */
    ck_assert_ptr_null(node_entry(nodes, g_node[BARE_NODE]));

    const cJSON *peek =
            cJSON_GetObjectItemCaseSensitive(node_entry(nodes, g_node[PEEK_NODE]), "peek");
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(peek, "messages");
    for (int k = 0; k < MESSAGES; k++) {
        char want[16];
        snprintf(want, sizeof(want), "o%d", k);
        const cJSON *m = cJSON_GetArrayItem(msgs, k);
        ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(m, "body")->valuestring, want);
        ck_assert_int_eq(cJSON_GetObjectItemCaseSensitive(m, "attempts")->valueint, 0);
    }
    ck_assert_int_eq(cJSON_GetObjectItemCaseSensitive(peek, "depth")->valueint, MESSAGES);

    const cJSON *old = node_entry(nodes, g_node[OLD_NODE]);
    ck_assert_ptr_nonnull(old);
    ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(old, "peek"));
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(old, "error");
    ck_assert(cJSON_IsString(err) && strstr(err->valuestring, "404") != NULL);
    cJSON_Delete(j);

    /* n is passed on; nothing was consumed */
    j = admin_peek_wait("?n=2", 2);
    cJSON_Delete(j);
    ck_assert_int_eq(itest_stats_int(g_http[PEEK_NODE], "orders", "billing", "depth"), MESSAGES);
}
END_TEST

START_TEST(peek_bad_count)
{
    static const char *const bad[] = {"0", "1001", "x", "-3"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char path[128], *body = NULL;
        snprintf(path, sizeof(path), API_PEEK "?n=%s", bad[i]);
        ck_assert_int_eq(itest_http("GET", g_admin_port, path, NULL, &body), 400);
        ck_assert_ptr_nonnull(body);
        ck_assert_ptr_nonnull(strstr(body, "INVALID_ARG_N"));
        free(body);
    }
    long st;
    cJSON *j = itest_http_json("GET", g_admin_port, "/api/topics/nosuch/billing/peek", NULL, &st);
    ck_assert_int_eq(st, 200);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "nodes")), 0);
    cJSON_Delete(j);
}
END_TEST

/* With --admin-user, only the named users may peek (bodies can be sensitive). */
START_TEST(peek_admin_only)
{
    char node[96];
    snprintf(node, sizeof(node), "--nsqd-http-address=%s", g_node[PEEK_NODE]);
    const char *const args[] = {"--http-address=127.0.0.1:0", node, "--admin-user=alice", NULL};
    struct harness_proc *admin = harness_start(NSQADMIN_BIN, args, 1);
    ck_assert_ptr_nonnull(admin);
    int port = harness_port(admin, "HTTP");
    struct harness_response r;
    memset(&r, 0, sizeof(r));
    ck_assert_int_eq(harness_http("GET", port, API_PEEK, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 403);
    harness_response_free(&r);
    memset(&r, 0, sizeof(r));
    ck_assert_int_eq(
            harness_http_hdr("GET", port, API_PEEK, NULL, 0, "X-Forwarded-User: alice", &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, "\"o0\""));
    harness_response_free(&r);
    ck_assert_int_eq(harness_stop(admin, SIGTERM), 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("nsqadmin_peek");
    TCase *tc = tcase_create("peek");
    tcase_add_unchecked_fixture(tc, cluster_up, cluster_down);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, peek_fans_out);
    tcase_add_test(tc, peek_bad_count);
    tcase_add_test(tc, peek_admin_only);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
