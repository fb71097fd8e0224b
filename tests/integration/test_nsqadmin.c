/*
 * test_nsqadmin: nsqadmin against a real cluster on loopback (our nsqlookupd and two nsqd, plus an
 * address where nothing listens): every /api answer compared in shape with upstream's recorded
 * answers, each admin action checked on nsqd, ACL refusals, notifications received by an evhttp
 * listener, partial and total upstream failures, /config, compression, base path, the rate
 * history, startup errors, the command-line mode (output, --json, exit codes), and the TTL and
 * depth-limit fields aggregated over two nsqds.
 */
#include <check.h>
#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "harness.h"
#include "nsqd_itest.h"

#define WAIT_MS      5000
#define DOWN_ADDR    "127.0.0.1:1" /* nothing listens on port 1 */
#define CLI_OUT_MAX  65536
#define NOTIFY_MAX   8
#define GZIP_WBITS   (15 + 16)
#define INFLATE_BUF  (1 << 20)
#define CONSUMER_RDY 5
#define FIXTURE_FINS 3

/* g_admin: lookupd mode; g_admin_nsqd: nsqd mode with both nodes and a dead one; g_admin1: nsqd
   mode with nsqd1 only (the recorded answers were taken from a one-node cluster) */
static struct harness_proc *g_lookupd, *g_nsqd1, *g_nsqd2, *g_admin, *g_admin_nsqd, *g_admin1;
static char *g_dir1, *g_dir2;
static int g_lookupd_http, g_lookupd_tcp, g_http1, g_http2, g_tcp1, g_admin_port, g_admin_nsqd_port,
        g_admin1_port;
static char g_lookupd_flag[128], g_node1[64], g_node2[64];

/* ---- cluster ---- */

static struct harness_proc *start_admin(const char *const *extra)
{
    const char *args[ITEST_MAX_ARGS];
    int n = 0;
    args[n++] = "--http-address=127.0.0.1:0";
    for (int i = 0; extra != NULL && extra[i] != NULL && n < ITEST_MAX_ARGS - 1; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    return harness_start(NSQADMIN_BIN, args, 1);
}

static struct harness_proc *start_nsqd(char **dir)
{
    static char lookupd_tcp[64];
    snprintf(lookupd_tcp, sizeof(lookupd_tcp), "--lookupd-tcp-address=127.0.0.1:%d", g_lookupd_tcp);
    const char *const extra[] = {"--broadcast-address=127.0.0.1", lookupd_tcp,
                                 "--e2e-processing-latency-percentile=0.99,0.5", NULL};
    *dir = harness_tmpdir();
    return itest_nsqd_start(*dir, extra);
}

static long post(int port, const char *path, const char *body)
{
    return itest_http("POST", port, path, body, NULL);
}

static bool lookupd_has_two_producers(void *arg)
{
    long st;
    char path[256];
    snprintf(path, sizeof(path), "/lookup?topic=%s", (const char *)arg);
    cJSON *j = itest_http_json("GET", g_lookupd_http, path, NULL, &st);
    bool ok =
            st == 200 && cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "producers")) == 2;
    cJSON_Delete(j);
    return ok;
}

/* The recorded upstream fixture's layout: "events" (no channel) and "orders" with "audit"
   (paused) and "billing" on nsqd1; "orders"/"billing" on nsqd2 too. */
static void populate(void)
{
    ck_assert_int_eq(post(g_http1, "/pub?topic=events", "e1"), 200);
    ck_assert_int_eq(post(g_http1, "/topic/create?topic=orders", NULL), 200);
    ck_assert_int_eq(post(g_http1, "/channel/create?topic=orders&channel=audit", NULL), 200);
    ck_assert_int_eq(post(g_http1, "/channel/create?topic=orders&channel=billing", NULL), 200);
    ck_assert_int_eq(post(g_http1, "/channel/pause?topic=orders&channel=audit", NULL), 200);
    ck_assert_int_eq(post(g_http1, "/pub?topic=orders", "o1"), 200);
    ck_assert_int_eq(post(g_http2, "/topic/create?topic=orders", NULL), 200);
    ck_assert_int_eq(post(g_http2, "/channel/create?topic=orders&channel=billing", NULL), 200);
    ck_assert_int_eq(post(g_http2, "/pub?topic=orders", "o2"), 200);
    ck_assert(harness_wait_until(lookupd_has_two_producers, "orders", WAIT_MS));
}

static void cluster_up(void)
{
    static const char *const lookupd_args[] = {"--tcp-address=127.0.0.1:0",
                                               "--http-address=127.0.0.1:0", NULL};
    g_lookupd = harness_start(NSQLOOKUPD_BIN, lookupd_args, 2);
    ck_assert_ptr_nonnull(g_lookupd);
    g_lookupd_http = harness_port(g_lookupd, "HTTP");
    g_lookupd_tcp = harness_port(g_lookupd, "TCP");
    g_nsqd1 = start_nsqd(&g_dir1);
    g_nsqd2 = start_nsqd(&g_dir2);
    ck_assert_ptr_nonnull(g_nsqd1);
    ck_assert_ptr_nonnull(g_nsqd2);
    g_http1 = harness_port(g_nsqd1, "HTTP");
    g_http2 = harness_port(g_nsqd2, "HTTP");
    g_tcp1 = harness_port(g_nsqd1, "TCP");
    snprintf(g_node1, sizeof(g_node1), "127.0.0.1:%d", g_http1);
    snprintf(g_node2, sizeof(g_node2), "127.0.0.1:%d", g_http2);
    snprintf(g_lookupd_flag, sizeof(g_lookupd_flag), "--lookupd-http-address=127.0.0.1:%d",
             g_lookupd_http);
    populate();

    const char *const admin_args[] = {g_lookupd_flag, NULL};
    g_admin = start_admin(admin_args);
    ck_assert_ptr_nonnull(g_admin);
    g_admin_port = harness_port(g_admin, "HTTP");

    char n1[96], n2[96];
    snprintf(n1, sizeof(n1), "--nsqd-http-address=%s", g_node1);
    snprintf(n2, sizeof(n2), "--nsqd-http-address=%s", g_node2);
    const char *const nsqd_mode[] = {n1, n2, "--nsqd-http-address=" DOWN_ADDR, NULL};
    g_admin_nsqd = start_admin(nsqd_mode);
    ck_assert_ptr_nonnull(g_admin_nsqd);
    g_admin_nsqd_port = harness_port(g_admin_nsqd, "HTTP");
    const char *const one_node[] = {n1, NULL};
    g_admin1 = start_admin(one_node);
    ck_assert_ptr_nonnull(g_admin1);
    g_admin1_port = harness_port(g_admin1, "HTTP");
}

static void cluster_down(void)
{
    ck_assert_int_eq(harness_stop(g_admin, SIGTERM), 0);
    ck_assert_int_eq(harness_stop(g_admin_nsqd, SIGINT), 0);
    ck_assert_int_eq(harness_stop(g_admin1, SIGTERM), 0);
    harness_stop(g_nsqd1, SIGTERM);
    harness_stop(g_nsqd2, SIGTERM);
    harness_stop(g_lookupd, SIGTERM);
    harness_rmdir(g_dir1);
    harness_rmdir(g_dir2);
    free(g_dir1);
    free(g_dir2);
}

/* ---- helpers ---- */

static cJSON *admin_json(int port, const char *method, const char *path, const char *body,
                         long *status)
{
    return itest_http_json(method, port, path, body, status);
}

static void assert_shape(const cJSON *got, const char *recorded)
{
    char path[512];
    snprintf(path, sizeof(path), "%s%s", ITEST_HTTP_DIR, recorded);
    char *text = itest_read_file(path, NULL);
    ck_assert_ptr_nonnull(text);
    cJSON *want = cJSON_Parse(text);
    free(text);
    ck_assert_ptr_nonnull(want);
    char err[1024] = "";
    bool same = itest_json_shape_diff(got, want, "$", err, sizeof(err));
    if (!same) {
        char *g = cJSON_PrintUnformatted(got);
        fprintf(stderr, "%s: %s\nours: %s\n", recorded, err, g);
        free(g);
    }
    cJSON_Delete(want);
    ck_assert_msg(same, "%s: %s", recorded, err);
}

static const char *jstr(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void assert_shape_at(int port, const char *path, const char *recorded)
{
    long st;
    cJSON *j = admin_json(port, "GET", path, NULL, &st);
    ck_assert_int_eq(st, 200);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(jstr(j, "message"), "");
    assert_shape(j, recorded);
    cJSON_Delete(j);
}

static void assert_shape_of(const char *path, const char *recorded)
{
    assert_shape_at(g_admin_port, path, recorded);
}

/* ---- shapes ---- */

START_TEST(api_topics_shape)
{
    assert_shape_of("/api/topics", "nsqadmin-topics.json");
    long st;
    cJSON *j = admin_json(g_admin_port, "GET", "/api/topics", NULL, &st);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "topics");
    ck_assert_int_eq(cJSON_GetArraySize(t), 2);
    ck_assert_str_eq(cJSON_GetArrayItem(t, 0)->valuestring, "events");
    ck_assert_str_eq(cJSON_GetArrayItem(t, 1)->valuestring, "orders");
    cJSON_Delete(j);
}
END_TEST

START_TEST(api_topic_shape)
{
    /* one node, as recorded: an aggregate channel that is the node's own has "nodes":null */
    assert_shape_at(g_admin1_port, "/api/topics/orders", "nsqadmin-topic.json");
    long st;
    cJSON *j = admin_json(g_admin_port, "GET", "/api/topics/orders", NULL, &st);
    ck_assert_str_eq(jstr(j, "node"), "*");
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "nodes")), 2);
    ck_assert_int_eq((int)cJSON_GetObjectItemCaseSensitive(j, "message_count")->valuedouble, 2);
    /* two nodes: the channel aggregates carry their nodes */
    const cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "channels"), 1);
    ck_assert_str_eq(jstr(ch, "channel_name"), "billing");
    ck_assert_str_eq(jstr(ch, "node"), "*");
    ck_assert_int_eq((int)cJSON_GetObjectItemCaseSensitive(ch, "depth")->valuedouble, 2);
    /* its latency sum names no topic or channel, only the aggregate host */
    const cJSON *e2e = cJSON_GetObjectItemCaseSensitive(ch, "e2e_processing_latency");
    ck_assert_str_eq(jstr(e2e, "topic"), "");
    ck_assert_str_eq(jstr(e2e, "channel"), "");
    ck_assert_str_eq(jstr(e2e, "host"), "*");
    cJSON_Delete(j);
}
END_TEST

START_TEST(api_channel_shape)
{
    assert_shape_of("/api/topics/orders/billing", "nsqadmin-channel.json");
    long st;
    cJSON *j = admin_json(g_admin_port, "GET", "/api/topics/orders/billing", NULL, &st);
    ck_assert_int_eq((int)cJSON_GetObjectItemCaseSensitive(j, "depth")->valuedouble, 2);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "nodes")), 2);
    cJSON_Delete(j);
    /* an unknown channel answers only the message */
    j = admin_json(g_admin_port, "GET", "/api/topics/orders/nope", NULL, &st);
    ck_assert_int_eq(st, 200);
    ck_assert_int_eq(cJSON_GetArraySize(j), 1);
    ck_assert_str_eq(jstr(j, "message"), "");
    cJSON_Delete(j);
}
END_TEST

START_TEST(api_nodes_shape)
{
    assert_shape_of("/api/nodes", "nsqadmin-nodes.json");
    char path[128];
    snprintf(path, sizeof(path), "/api/nodes/%s", g_node1);
    assert_shape_of(path, "nsqadmin-node.json");
    long st;
    cJSON *j = admin_json(g_admin_port, "GET", "/api/nodes/127.0.0.1:9", NULL, &st);
    ck_assert_int_eq(st, 404);
    ck_assert_str_eq(jstr(j, "message"), "NODE_NOT_FOUND");
    cJSON_Delete(j);
}
END_TEST

START_TEST(api_counter_shape)
{
    /* "stats" is a map keyed by node addresses: compare its entries' shape */
    long st;
    cJSON *j = admin_json(g_admin_port, "GET", "/api/counter", NULL, &st);
    ck_assert_int_eq(st, 200);
    char *text = itest_read_file(ITEST_HTTP_DIR "nsqadmin-counter.json", NULL);
    cJSON *want = cJSON_Parse(text);
    free(text);
    const cJSON *stats = cJSON_GetObjectItemCaseSensitive(j, "stats");
    char err[512] = "";
    ck_assert_msg(itest_json_shape_diff(stats->child,
                                        cJSON_GetObjectItemCaseSensitive(want, "stats")->child,
                                        "$.stats[0]", err, sizeof(err)),
                  "%s", err);
    ck_assert_str_eq(j->child->string, "stats");
    ck_assert_str_eq(j->child->next->string, "message");
    ck_assert_ptr_null(j->child->next->next);
    cJSON_Delete(want);
    /* audit and billing on both nodes (nsqd2 learnt audit from lookupd), keys sorted */
    ck_assert_int_eq(cJSON_GetArraySize(stats), 4);
    for (const cJSON *k = stats->child; k != NULL && k->next != NULL; k = k->next)
        ck_assert(strcmp(k->string, k->next->string) < 0);
    char key[128];
    snprintf(key, sizeof(key), "orders:billing:%s", g_node2);
    ck_assert_ptr_nonnull(cJSON_GetObjectItemCaseSensitive(stats, key));
    cJSON_Delete(j);
}
END_TEST

START_TEST(api_shapes_with_client)
{
    int fd = itest_v2_connect(g_tcp1);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(itest_identify(fd, "{\"client_id\":\"fixture-consumer\",\"hostname\":"
                                        "\"fixture-host\",\"user_agent\":\"fixture/1.0\"}"),
                     0);
    ck_assert_int_eq(itest_sub(fd, "orders", "billing"), 0);
    ck_assert_int_eq(itest_rdy(fd, CONSUMER_RDY), 0);
    for (int i = 0; i < FIXTURE_FINS; i++)
        ck_assert_int_eq(post(g_http1, "/pub?topic=orders", "more"), 200);
    for (int i = 0; i < FIXTURE_FINS; i++) {
        struct itest_msg m;
        ck_assert_int_eq(itest_read_msg(fd, &m, WAIT_MS), 0);
        ck_assert_int_eq(itest_fin(fd, m.id), 0);
        free(m.body);
    }
    /* one more in flight */
    ck_assert_int_eq(post(g_http1, "/pub?topic=orders", "held"), 200);
    struct itest_msg m;
    ck_assert_int_eq(itest_read_msg(fd, &m, WAIT_MS), 0);
    free(m.body);

    assert_shape_of("/api/topics/orders/billing", "nsqadmin-channel-clients.json");
    char path[128];
    snprintf(path, sizeof(path), "/api/nodes/%s", g_node1);
    assert_shape_of(path, "nsqadmin-node-clients.json");
    long st;
    cJSON *j = admin_json(g_admin_port, "GET", path, NULL, &st);
    ck_assert_int_eq((int)cJSON_GetObjectItemCaseSensitive(j, "total_clients")->valuedouble, 1);
    cJSON_Delete(j);
    j = admin_json(g_admin_port, "GET", "/api/topics/orders/billing", NULL, &st);
    const cJSON *c = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "clients"), 0);
    ck_assert_str_eq(jstr(c, "client_id"), "fixture-consumer");
    ck_assert_str_eq(jstr(c, "node"), g_node1);
    cJSON_Delete(j);
    close(fd);
}
END_TEST

/* An nsqd with topology-aware consumption: the channel answer carries the deliveries by locality
   (delivery_msg_count and the classes, as upstream's experiment) and the consumer's zone. */
START_TEST(api_channel_topology)
{
    char *dir = harness_tmpdir();
    const char *const flags[] = {"--enable-experiment=topology-aware-consumption",
                                 "--topology-zone=z1", "--topology-region=r1", NULL};
    struct harness_proc *nsqd = itest_nsqd_start(dir, flags);
    ck_assert_ptr_nonnull(nsqd);
    int fd = itest_v2_connect(harness_port(nsqd, "TCP"));
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(itest_identify(fd, "{\"topology_zone\":\"z1\",\"topology_region\":\"r1\"}"),
                     0);
    ck_assert_int_eq(itest_sub(fd, "topo", "ch"), 0);
    ck_assert_int_eq(itest_rdy(fd, CONSUMER_RDY), 0);
    ck_assert_int_eq(post(harness_port(nsqd, "HTTP"), "/pub?topic=topo", "one"), 200);
    struct itest_msg m;
    ck_assert_int_eq(itest_read_msg(fd, &m, WAIT_MS), 0);
    free(m.body);
    char node[96];
    snprintf(node, sizeof(node), "--nsqd-http-address=127.0.0.1:%d", harness_port(nsqd, "HTTP"));
    const char *const admin_flags[] = {node, NULL};
    struct harness_proc *admin = start_admin(admin_flags);
    ck_assert_ptr_nonnull(admin);
    long st;
    cJSON *j = admin_json(harness_port(admin, "HTTP"), "GET", "/api/topics/topo/ch", NULL, &st);
    ck_assert_int_eq(st, 200);
    ck_assert_int_eq((int)cJSON_GetObjectItemCaseSensitive(j, "delivery_msg_count")->valuedouble,
                     1);
    ck_assert_int_eq((int)cJSON_GetObjectItemCaseSensitive(j, "zone_local_msg_count")->valuedouble,
                     1);
    ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(j, "global_msg_count"));
    const cJSON *c = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "clients"), 0);
    ck_assert_str_eq(jstr(c, "topology_zone"), "z1");
    ck_assert_str_eq(jstr(c, "topology_region"), "r1");
    cJSON_Delete(j);
    close(fd);
    ck_assert_int_eq(harness_stop(admin, 0), 0);
    ck_assert_int_eq(harness_stop(nsqd, 0), 0);
    harness_rmdir(dir);
    free(dir);
}
END_TEST

/* ---- TTL and depth limits ---- */

#define LIMITS_WAIT_MS 15000 /* nsqd's memory sweep drops expired messages every 2 s */
#define ONE_MS_NS      1000000

struct limits_cond {
    int http;
    const char *key;
    int64_t want;
};

/* A topic's and its channel's counter, summed: where a message expires or is evicted (topic
   backlog or channel) depends on the timing of nsqd's topic pump. */
static bool limits_sum_reached(void *arg)
{
    struct limits_cond *c = arg;
    int64_t t = itest_stats_int(c->http, "lim", NULL, c->key);
    int64_t ch = itest_stats_int(c->http, "lim", "c", c->key);
    return t >= 0 && ch >= 0 && t + ch == c->want;
}

static int64_t jnum(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    ck_assert_msg(cJSON_IsNumber(v), "no number %s", key);
    return (int64_t)v->valuedouble;
}

/* The node entry of an aggregate whose "node" (<broadcast address>:<port>) has HTTP port port. */
static const cJSON *node_entry(const cJSON *agg, int port)
{
    const cJSON *n;
    char suffix[16];
    snprintf(suffix, sizeof(suffix), ":%d", port);
    cJSON_ArrayForEach(n, cJSON_GetObjectItemCaseSensitive(agg, "nodes"))
    {
        const char *node = jstr(n, "node");
        size_t len = strlen(node), slen = strlen(suffix);
        if (len > slen && strcmp(node + len - slen, suffix) == 0)
            return n;
    }
    ck_abort_msg("node with port %d missing", port);
    return NULL;
}

START_TEST(api_ttl_and_depth)
{
    char *dir[2], path[256], flag[2][96], node[2][64];
    struct harness_proc *nsqd[2];
    int http[2];
    for (int i = 0; i < 2; i++) {
        dir[i] = harness_tmpdir();
        nsqd[i] = itest_nsqd_start(dir[i], NULL);
        ck_assert_ptr_nonnull(nsqd[i]);
        http[i] = harness_port(nsqd[i], "HTTP");
        snprintf(node[i], sizeof(node[i]), "127.0.0.1:%d", http[i]);
        snprintf(flag[i], sizeof(flag[i]), "--nsqd-http-address=%s", node[i]);
        ck_assert_int_eq(post(http[i], "/topic/create?topic=lim", NULL), 200);
        ck_assert_int_eq(post(http[i], "/channel/create?topic=lim&channel=c", NULL), 200);
    }
    const char *const admin_flags[] = {flag[0], flag[1], NULL};
    struct harness_proc *admin = start_admin(admin_flags);
    ck_assert_ptr_nonnull(admin);
    int port = harness_port(admin, "HTTP");
    long st;

    /* no limits: none of the fields */
    cJSON *j = admin_json(port, "GET", "/api/topics/lim", NULL, &st);
    ck_assert_int_eq(st, 200);
    const char *absent[] = {"expired_count", "dropped_count", "ttl", "max_depth",
                            "overflow_policy"};
    for (size_t i = 0; i < sizeof(absent) / sizeof(absent[0]); i++) {
        ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(j, absent[i]));
        ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(
                cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "channels"), 0), absent[i]));
    }
    cJSON_Delete(j);

    /* node 0: a 1 ms TTL, two messages expire; node 1: max depth 1 evicting, two evicted */
    ck_assert_int_eq(post(http[0], "/topic/ttl?topic=lim&ttl=1ms", NULL), 200);
    ck_assert_int_eq(
            post(http[1], "/topic/max_depth?topic=lim&max_depth=1&policy=drop_oldest", NULL), 200);
    for (int k = 0; k < 3; k++) {
        if (k < 2)
            ck_assert_int_eq(post(http[0], "/pub?topic=lim", "x"), 200);
        ck_assert_int_eq(post(http[1], "/pub?topic=lim", "y"), 200);
    }
    struct limits_cond expired = {http[0], "expired_count", 2},
                       dropped = {http[1], "dropped_count", 2};
    ck_assert(harness_wait_until(limits_sum_reached, &expired, LIMITS_WAIT_MS));
    ck_assert(harness_wait_until(limits_sum_reached, &dropped, LIMITS_WAIT_MS));

    j = admin_json(port, "GET", "/api/topics/lim", NULL, &st);
    ck_assert_int_eq(st, 200);
    const cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "channels"), 0);
    ck_assert_str_eq(jstr(ch, "channel_name"), "c");
    ck_assert_int_eq(jnum(j, "expired_count") + jnum(ch, "expired_count"), 2);
    ck_assert_int_eq(jnum(j, "dropped_count") + jnum(ch, "dropped_count"), 2);
    /* the nodes disagree: the aggregate has no configuration, each node its own */
    ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(j, "ttl"));
    ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(j, "max_depth"));
    const cJSON *n0 = node_entry(j, http[0]), *n1 = node_entry(j, http[1]);
    ck_assert_int_eq(jnum(n0, "ttl"), ONE_MS_NS);
    ck_assert_int_eq(jnum(n0, "max_depth"), 0);
    ck_assert_str_eq(jstr(n0, "overflow_policy"), "reject");
    ck_assert_int_eq(jnum(n1, "ttl"), 0);
    ck_assert_int_eq(jnum(n1, "max_depth"), 1);
    ck_assert_str_eq(jstr(n1, "overflow_policy"), "drop_oldest");
    int64_t ch_expired = jnum(ch, "expired_count"), ch_dropped = jnum(ch, "dropped_count");
    cJSON_Delete(j);

    snprintf(path, sizeof(path), "/api/topics/lim/c");
    j = admin_json(port, "GET", path, NULL, &st);
    ck_assert_int_eq(st, 200);
    ck_assert_int_eq(jnum(j, "expired_count"), ch_expired);
    ck_assert_int_eq(jnum(j, "dropped_count"), ch_dropped);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "nodes")), 2);
    cJSON_Delete(j);

    /* the same configuration on both nodes: the aggregate shows it */
    ck_assert_int_eq(
            post(http[0], "/topic/max_depth?topic=lim&max_depth=1&policy=drop_oldest", NULL), 200);
    ck_assert_int_eq(post(http[1], "/topic/ttl?topic=lim&ttl=1ms", NULL), 200);
    j = admin_json(port, "GET", "/api/topics/lim", NULL, &st);
    ck_assert_int_eq(jnum(j, "ttl"), ONE_MS_NS);
    ck_assert_int_eq(jnum(j, "max_depth"), 1);
    ck_assert_str_eq(jstr(j, "overflow_policy"), "drop_oldest");
    cJSON_Delete(j);

    ck_assert_int_eq(harness_stop(admin, 0), 0);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(harness_stop(nsqd[i], 0), 0);
        harness_rmdir(dir[i]);
        free(dir[i]);
    }
}
END_TEST

/* ---- actions ---- */

static bool nsqd_has(int port, const char *topic, const char *channel)
{
    cJSON *root = itest_stats(port, "");
    bool found = itest_stats_find(root, topic, channel) != NULL;
    cJSON_Delete(root);
    return found;
}

static bool nsqd_paused(int port, const char *topic, const char *channel)
{
    cJSON *root = itest_stats(port, "");
    const cJSON *o = itest_stats_find(root, topic, channel);
    bool paused = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "paused"));
    cJSON_Delete(root);
    return paused;
}

static void action(const char *method, const char *path, const char *body, const char *want_msg)
{
    long st;
    cJSON *j = admin_json(g_admin_port, method, path, body, &st);
    ck_assert_msg(st == 200, "%s %s: %ld", method, path, st);
    ck_assert_ptr_nonnull(j);
    if (want_msg != NULL)
        ck_assert_str_eq(jstr(j, "message"), want_msg);
    cJSON_Delete(j);
}

START_TEST(actions_take_effect)
{
    ck_assert_int_eq(post(g_http1, "/topic/create?topic=act", NULL), 200);
    ck_assert_int_eq(post(g_http2, "/topic/create?topic=act", NULL), 200);
    ck_assert(harness_wait_until(lookupd_has_two_producers, "act", WAIT_MS));

    action("POST", "/api/topics", "{\"topic\":\"act\",\"channel\":\"ch\"}", "");
    ck_assert(nsqd_has(g_http1, "act", "ch"));
    ck_assert(nsqd_has(g_http2, "act", "ch"));

    action("POST", "/api/topics/act", "{\"action\":\"pause\"}", "");
    ck_assert(nsqd_paused(g_http1, "act", NULL));
    ck_assert(nsqd_paused(g_http2, "act", NULL));
    action("POST", "/api/topics/act", "{\"action\":\"unpause\"}", "");
    ck_assert(!nsqd_paused(g_http1, "act", NULL));

    action("POST", "/api/topics/act/ch", "{\"action\":\"pause\"}", "");
    ck_assert(nsqd_paused(g_http2, "act", "ch"));
    action("POST", "/api/topics/act/ch", "{\"action\":\"unpause\"}", "");
    ck_assert(!nsqd_paused(g_http2, "act", "ch"));

    ck_assert_int_eq(post(g_http1, "/pub?topic=act", "x"), 200);
    ck_assert_int_eq(itest_stats_int(g_http1, "act", "ch", "depth"), 1);
    action("POST", "/api/topics/act/ch", "{\"action\":\"empty\"}", "");
    ck_assert_int_eq(itest_stats_int(g_http1, "act", "ch", "depth"), 0);

    action("DELETE", "/api/topics/act/ch", NULL, NULL);
    ck_assert(!nsqd_has(g_http1, "act", "ch"));
    ck_assert(!nsqd_has(g_http2, "act", "ch"));

    /* tombstone the topic's producer nsqd2: the topic goes from that node only */
    char path[128];
    snprintf(path, sizeof(path), "/api/nodes/%s", g_node2);
    action("DELETE", path, "{\"topic\":\"act\"}", "");
    ck_assert(!nsqd_has(g_http2, "act", NULL));
    ck_assert(nsqd_has(g_http1, "act", NULL));

    action("DELETE", "/api/topics/act", NULL, NULL);
    ck_assert(!nsqd_has(g_http1, "act", NULL));
    long st;
    cJSON *j = itest_http_json("GET", g_lookupd_http, "/lookup?topic=act", NULL, &st);
    ck_assert_int_eq(st, 404);
    cJSON_Delete(j);
}
END_TEST

START_TEST(action_errors)
{
    long st;
    cJSON *j = admin_json(g_admin_port, "POST", "/api/topics", "{\"topic\":\"bad topic\"}", &st);
    ck_assert_int_eq(st, 400);
    ck_assert_str_eq(jstr(j, "message"), "INVALID_TOPIC");
    cJSON_Delete(j);
    j = admin_json(g_admin_port, "POST", "/api/topics",
                   "{\"topic\":\"ok\",\"channel\":\"bad channel\"}", &st);
    ck_assert_int_eq(st, 400);
    ck_assert_str_eq(jstr(j, "message"), "INVALID_CHANNEL");
    cJSON_Delete(j);
    j = admin_json(g_admin_port, "POST", "/api/topics", "", &st);
    ck_assert_int_eq(st, 400);
    ck_assert_str_eq(jstr(j, "message"), "EOF");
    cJSON_Delete(j);
    j = admin_json(g_admin_port, "POST", "/api/topics/orders", "{\"action\":\"explode\"}", &st);
    ck_assert_int_eq(st, 400);
    ck_assert_str_eq(jstr(j, "message"), "INVALID_ACTION");
    cJSON_Delete(j);
    j = admin_json(g_admin_port, "DELETE", "/api/nodes/x:1", "nope", &st);
    ck_assert_int_eq(st, 400);
    ck_assert_str_eq(jstr(j, "message"), "INVALID_BODY");
    cJSON_Delete(j);
    /* no producer: total failure of the stats step */
    j = admin_json(g_admin_port, "GET", "/api/topics/unknown_topic", NULL, &st);
    ck_assert_int_eq(st, 502);
    ck_assert(strncmp(jstr(j, "message"), "UPSTREAM_ERROR: ", 16) == 0);
    cJSON_Delete(j);
}
END_TEST

/* ---- ACL and notifications ---- */

struct notify_sink {
    struct event_base *base;
    struct evhttp *http;
    int port;
    char *bodies[NOTIFY_MAX];
    char *ctypes[NOTIFY_MAX];
    int n;
};

static void on_notify(struct evhttp_request *req, void *arg)
{
    struct notify_sink *s = arg;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    if (s->n < NOTIFY_MAX) {
        char *b = malloc(len + 1);
        evbuffer_copyout(in, b, len);
        b[len] = '\0';
        const char *ct = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
        s->ctypes[s->n] = strdup(ct != NULL ? ct : "");
        s->bodies[s->n++] = b;
    }
    evhttp_send_reply(req, 200, "OK", NULL);
}

static void sink_open(struct notify_sink *s)
{
    memset(s, 0, sizeof(*s));
    s->base = event_base_new();
    s->http = evhttp_new(s->base);
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(s->http, "127.0.0.1", 0);
    ck_assert_ptr_nonnull(bs);
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sin, &sl);
    s->port = ntohs(sin.sin_port);
    evhttp_set_gencb(s->http, on_notify, s);
}

/* Runs the sink's loop until it holds n notifications or WAIT_MS pass. */
static bool sink_wait(struct notify_sink *s, int n)
{
    int64_t deadline = harness_now_ms() + WAIT_MS;
    while (s->n < n && harness_now_ms() < deadline) {
        struct timeval tv = {0, 20000};
        event_base_loopexit(s->base, &tv);
        event_base_dispatch(s->base);
    }
    return s->n >= n;
}

static void sink_close(struct notify_sink *s)
{
    for (int i = 0; i < s->n; i++) {
        free(s->bodies[i]);
        free(s->ctypes[i]);
    }
    evhttp_free(s->http);
    event_base_free(s->base);
}

START_TEST(acl_and_notifications)
{
    struct notify_sink sink;
    sink_open(&sink);
    char ep[128];
    snprintf(ep, sizeof(ep), "--notification-http-endpoint=http://127.0.0.1:%d/notify", sink.port);
    const char *const args[] = {g_lookupd_flag, "--admin-user=alice", "--admin-user=carol", ep,
                                NULL};
    struct harness_proc *a = start_admin(args);
    ck_assert_ptr_nonnull(a);
    int port = harness_port(a, "HTTP");

    static const char *const refused[][3] = {
            {"POST", "/api/topics", "{\"topic\":\"acl\"}"},
            {"POST", "/api/topics/orders", "{\"action\":\"pause\"}"},
            {"POST", "/api/topics/orders/billing", "{\"action\":\"pause\"}"},
            {"DELETE", "/api/topics/orders", NULL},
            {"DELETE", "/api/topics/orders/billing", NULL},
            {"DELETE", "/api/nodes/127.0.0.1:1", "{\"topic\":\"orders\"}"},
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        for (int who = 0; who < 2; who++) {
            struct harness_response r;
            const char *body = refused[i][2];
            ck_assert_int_eq(harness_http_hdr(refused[i][0], port, refused[i][1], body,
                                              body != NULL ? strlen(body) : 0,
                                              who == 0 ? NULL : "X-Forwarded-User: bob", &r),
                             0);
            ck_assert_int_eq(r.status, 403);
            ck_assert_str_eq(r.body, "{\"message\":\"FORBIDDEN\"}");
            harness_response_free(&r);
        }
    }
    /* reads stay open */
    struct harness_response r;
    ck_assert_int_eq(harness_http("GET", port, "/api/topics", NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 200);
    harness_response_free(&r);

    /* an admin creates a topic with a channel: two notifications */
    const char *body = "{\"topic\":\"acl\",\"channel\":\"c\"}";
    ck_assert_int_eq(harness_http_hdr("POST", port, "/api/topics", body, strlen(body),
                                      "X-Forwarded-User: carol", &r),
                     0);
    ck_assert_int_eq(r.status, 200);
    harness_response_free(&r);
    ck_assert(sink_wait(&sink, 2));
    /* two separate posts: either may arrive first */
    int first = strstr(sink.bodies[0], "create_topic") != NULL ? 0 : 1;
    cJSON *n0 = cJSON_Parse(sink.bodies[first]);
    cJSON *n1 = cJSON_Parse(sink.bodies[1 - first]);
    ck_assert_ptr_nonnull(n0);
    ck_assert_ptr_nonnull(n1);
    ck_assert_str_eq(sink.ctypes[first], "application/json");
    /* keys in upstream's order; channel and node omitted when empty, no user without basic auth */
    static const char *const keys0[] = {"action",     "topic", "timestamp", "remote_ip",
                                        "user_agent", "url",   "via"};
    const cJSON *k = n0->child;
    for (size_t i = 0; i < sizeof(keys0) / sizeof(keys0[0]); i++, k = k->next) {
        ck_assert_ptr_nonnull(k);
        ck_assert_str_eq(k->string, keys0[i]);
    }
    ck_assert_ptr_null(k);
    ck_assert_str_eq(jstr(n0, "action"), "create_topic");
    ck_assert_str_eq(jstr(n0, "topic"), "acl");
    ck_assert(strncmp(jstr(n0, "remote_ip"), "127.0.0.1:", 10) == 0);
    ck_assert(strstr(jstr(n0, "url"), "/api/topics") != NULL);
    ck_assert(strncmp(jstr(n0, "url"), "http://", 7) == 0);
    ck_assert_str_eq(jstr(n1, "action"), "create_channel");
    ck_assert_str_eq(jstr(n1, "channel"), "c");
    cJSON_Delete(n0);
    cJSON_Delete(n1);

    /* basic-auth user, user agent and X-Scheme reach the notification */
    char req[512];
    snprintf(req, sizeof(req),
             "POST /api/topics/orders/audit HTTP/1.1\r\nHost: admin.example:%d\r\n"
             "X-Forwarded-User: alice\r\nAuthorization: Basic YWxpY2U6c2VjcmV0\r\n"
             "X-Scheme: https\r\nUser-Agent: itest/1\r\nContent-Length: 18\r\n"
             "Connection: close\r\n\r\n{\"action\":\"pause\"}",
             port);
    int fd = harness_connect(port);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(harness_tcp_send_str(fd, req), 0);
    ck_assert(harness_tcp_wait_closed(fd, WAIT_MS));
    close(fd);
    ck_assert(sink_wait(&sink, 3));
    cJSON *n2 = cJSON_Parse(sink.bodies[2]);
    ck_assert_str_eq(jstr(n2, "action"), "pause_channel");
    ck_assert_str_eq(jstr(n2, "topic"), "orders");
    ck_assert_str_eq(jstr(n2, "channel"), "audit");
    ck_assert_str_eq(jstr(n2, "user"), "alice");
    ck_assert_str_eq(jstr(n2, "user_agent"), "itest/1");
    char url[128];
    snprintf(url, sizeof(url), "https://admin.example:%d/api/topics/orders/audit", port);
    ck_assert_str_eq(jstr(n2, "url"), url);
    cJSON_Delete(n2);
    ck_assert(nsqd_paused(g_http1, "orders", "audit"));
    ck_assert_int_eq(harness_stop(a, SIGTERM), 0);
    sink_close(&sink);
}
END_TEST

/* ---- partial and total failures ---- */

START_TEST(partial_failures)
{
    long st;
    /* nsqd mode with one node down */
    cJSON *j = admin_json(g_admin_nsqd_port, "GET", "/api/topics", NULL, &st);
    ck_assert_int_eq(st, 200);
    ck_assert(strncmp(jstr(j, "message"), "WARNING: ", 9) == 0);
    ck_assert(strstr(jstr(j, "message"), DOWN_ADDR) != NULL);
    ck_assert_int_ge(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "topics")), 2);
    cJSON_Delete(j);
    j = admin_json(g_admin_nsqd_port, "GET", "/api/topics/orders", NULL, &st);
    ck_assert_int_eq(st, 200);
    ck_assert(strncmp(jstr(j, "message"), "WARNING: ", 9) == 0);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "nodes")), 2);
    cJSON_Delete(j);
    j = admin_json(g_admin_nsqd_port, "GET", "/api/nodes", NULL, &st);
    ck_assert_int_eq(st, 200);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "nodes")), 2);
    cJSON_Delete(j);
    /* nsqd mode: creating a topic alone asks nobody and succeeds; with a channel it needs lookupd */
    j = admin_json(g_admin_nsqd_port, "POST", "/api/topics", "{\"topic\":\"t\"}", &st);
    ck_assert_int_eq(st, 200);
    ck_assert_str_eq(jstr(j, "message"), "");
    cJSON_Delete(j);
    j = admin_json(g_admin_nsqd_port, "POST", "/api/topics", "{\"topic\":\"t\",\"channel\":\"c\"}",
                   &st);
    ck_assert_int_eq(st, 502);
    ck_assert_str_eq(jstr(j, "message"), "UPSTREAM_ERROR: failed to query any nsqlookupd: ");
    cJSON_Delete(j);
    j = admin_json(g_admin_nsqd_port, "GET", "/api/topics?inactive=true", NULL, &st);
    ck_assert_int_eq(st, 200);
    ck_assert(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(j, "topics")));
    cJSON_Delete(j);

    /* lookupd mode with one lookupd down, and with every lookupd down */
    const char *const some[] = {g_lookupd_flag, "--lookupd-http-address=" DOWN_ADDR,
                                "--http-client-connect-timeout=500ms", NULL};
    struct harness_proc *a = start_admin(some);
    ck_assert_ptr_nonnull(a);
    j = admin_json(harness_port(a, "HTTP"), "GET", "/api/nodes", NULL, &st);
    ck_assert_int_eq(st, 200);
    ck_assert(strncmp(jstr(j, "message"), "WARNING: ", 9) == 0);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "nodes")), 2);
    cJSON_Delete(j);
    ck_assert_int_eq(harness_stop(a, SIGTERM), 0);

    const char *const none[] = {"--lookupd-http-address=" DOWN_ADDR, NULL};
    a = start_admin(none);
    ck_assert_ptr_nonnull(a);
    j = admin_json(harness_port(a, "HTTP"), "GET", "/api/topics", NULL, &st);
    ck_assert_int_eq(st, 502);
    ck_assert(strncmp(jstr(j, "message"), "UPSTREAM_ERROR: failed to query any nsqlookupd: ", 48) ==
              0);
    cJSON_Delete(j);
    j = admin_json(harness_port(a, "HTTP"), "GET", "/api/counter", NULL, &st);
    ck_assert_int_eq(st, 502);
    cJSON_Delete(j);
    ck_assert_int_eq(harness_stop(a, SIGTERM), 0);
}
END_TEST

/* ---- server details ---- */

START_TEST(config_endpoint)
{
    struct harness_response r;
    ck_assert_int_eq(harness_http("GET", g_admin_port, "/config/log_level", NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "2");
    harness_response_free(&r);
    ck_assert_int_eq(harness_http("GET", g_admin_port, "/config/acl_http_header", NULL, 0, &r), 0);
    ck_assert_str_eq(r.body, "X-Forwarded-User");
    harness_response_free(&r);
    ck_assert_int_eq(harness_http("GET", g_admin_port, "/config/nope", NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 400);
    ck_assert_str_eq(r.body, "{\"message\":\"INVALID_OPTION\"}");
    harness_response_free(&r);
    ck_assert_int_eq(harness_http("PUT", g_admin_port, "/config/log_level", "debug", 5, &r), 0);
    ck_assert_str_eq(r.body, "1");
    harness_response_free(&r);
    ck_assert_int_eq(harness_http("PUT", g_admin_port, "/config/log_level", "info", 4, &r), 0);
    harness_response_free(&r);
    ck_assert_int_eq(harness_http("PUT", g_admin_port, "/config/log_level", "", 0, &r), 0);
    ck_assert_int_eq(r.status, 413);
    harness_response_free(&r);
    ck_assert_int_eq(harness_http("PUT", g_admin_port, "/config/acl_http_header", "x", 1, &r), 0);
    ck_assert_int_eq(r.status, 400);
    harness_response_free(&r);
    char addrs[128];
    snprintf(addrs, sizeof(addrs), "[\"127.0.0.1:%d\"]", g_lookupd_http);
    ck_assert_int_eq(harness_http("PUT", g_admin_port, "/config/nsqlookupd_http_addresses", addrs,
                                  strlen(addrs), &r),
                     0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, addrs);
    harness_response_free(&r);

    const char *const args[] = {g_lookupd_flag, "--allow-config-from-cidr=10.0.0.0/8", NULL};
    struct harness_proc *a = start_admin(args);
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(harness_http("GET", harness_port(a, "HTTP"), "/config/log_level", NULL, 0, &r),
                     0);
    ck_assert_int_eq(r.status, 403);
    ck_assert_str_eq(r.body, "{\"message\":\"FORBIDDEN\"}");
    harness_response_free(&r);
    ck_assert_int_eq(harness_stop(a, SIGTERM), 0);
}
END_TEST

static char *gunzip(const char *data, size_t len)
{
    char *out = calloc(1, INFLATE_BUF);
    z_stream zs = {0};
    inflateInit2(&zs, GZIP_WBITS);
    zs.next_in = (Bytef *)data;
    zs.avail_in = (uInt)len;
    zs.next_out = (Bytef *)out;
    zs.avail_out = INFLATE_BUF - 1;
    int rc = inflate(&zs, Z_FINISH);
    inflateEnd(&zs);
    if (rc != Z_STREAM_END) {
        free(out);
        return NULL;
    }
    return out;
}

START_TEST(compression_and_routes)
{
    struct harness_response plain, gz;
    ck_assert_int_eq(harness_http("GET", g_admin_port, "/api/topics", NULL, 0, &plain), 0);
    ck_assert_int_eq(harness_http_hdr("GET", g_admin_port, "/api/topics", NULL, 0,
                                      "Accept-Encoding: br, gzip;q=0.5, deflate", &gz),
                     0);
    char *enc = harness_response_header(&gz, "Content-Encoding");
    ck_assert_ptr_nonnull(enc);
    ck_assert_str_eq(enc, "gzip");
    free(enc);
    char *inflated = gunzip(gz.body, gz.body_len);
    ck_assert_ptr_nonnull(inflated);
    ck_assert_str_eq(inflated, plain.body);
    free(inflated);
    char *ct = harness_response_header(&plain, "Content-Type");
    ck_assert_str_eq(ct, "application/json; charset=utf-8");
    free(ct);
    harness_response_free(&plain);
    harness_response_free(&gz);

    struct harness_response r;
    ck_assert_int_eq(harness_http("GET", g_admin_port, "/ping", NULL, 0, &r), 0);
    ck_assert_str_eq(r.body, "OK");
    harness_response_free(&r);
    ck_assert_int_eq(harness_http("GET", g_admin_port, "/api/nope", NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 404);
    harness_response_free(&r);
    ck_assert_int_eq(harness_http("PUT", g_admin_port, "/api/counter", NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 405);
    harness_response_free(&r);
    ck_assert_int_eq(harness_http("GET", g_admin_port, "/api/graphite?metric=x", NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 400);
    ck_assert_str_eq(r.body, "{\"message\":\"INVALID_ARG_METRIC\"}");
    harness_response_free(&r);
    ck_assert_int_eq(harness_http("GET", g_admin_port, "/api/graphite?metric=rate", NULL, 0, &r),
                     0);
    ck_assert_str_eq(r.body, "{\"message\":\"INVALID_ARG_TARGET\"}");
    harness_response_free(&r);

    const char *const args[] = {g_lookupd_flag, "--base-path=admin/", NULL};
    struct harness_proc *a = start_admin(args);
    ck_assert_ptr_nonnull(a);
    int port = harness_port(a, "HTTP");
    ck_assert_int_eq(harness_http("GET", port, "/admin/api/topics", NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 200);
    harness_response_free(&r);
    ck_assert_int_eq(harness_http("GET", port, "/api/topics", NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 404);
    harness_response_free(&r);
    ck_assert_int_eq(harness_stop(a, SIGTERM), 0);
}
END_TEST

static bool rates_ready(void *arg)
{
    (void)arg;
    long st;
    cJSON *j =
            admin_json(g_admin_port, "GET", "/api/rates?topic=orders&channel=billing", NULL, &st);
    bool ok = st == 200 && cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "samples")) > 0;
    cJSON_Delete(j);
    return ok;
}

START_TEST(rates_history)
{
    ck_assert(harness_wait_until(rates_ready, NULL, WAIT_MS));
    long st;
    cJSON *j =
            admin_json(g_admin_port, "GET", "/api/rates?topic=orders&channel=billing", NULL, &st);
    ck_assert_str_eq(jstr(j, "topic"), "orders");
    ck_assert_str_eq(jstr(j, "channel"), "billing");
    const cJSON *s = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "samples"), 0);
    ck_assert(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(s, "message_count")));
    ck_assert(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(s, "depth")));
    ck_assert(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(s, "rate")));
    cJSON_Delete(j);
    j = admin_json(g_admin_port, "GET", "/api/rates", NULL, &st);
    ck_assert_int_eq(st, 400);
    cJSON_Delete(j);
}
END_TEST

/* ---- graphite ---- */

#define GRAPHITE_ANSWER "[{\"target\":\"x\",\"datapoints\":[[120.0,1700000000]]}]"

/* The fake graphite runs in a child process (the test blocks in its HTTP calls); it writes each
   request URI it serves to a pipe. */
static void on_render(struct evhttp_request *req, void *arg)
{
    int fd = *(int *)arg;
    char line[512];
    int n = snprintf(line, sizeof(line), "%s\n", evhttp_request_get_uri(req));
    if (write(fd, line, (size_t)n) < 0)
        _exit(1);
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_printf(b, "%s", GRAPHITE_ANSWER);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evhttp_send_reply(req, 200, "OK", b);
    evbuffer_free(b);
}

/* Reads one line from fd into buf (NUL-terminated, without the newline). */
static void read_line(int fd, char *buf, size_t len)
{
    size_t n = 0;
    char c;
    while (n + 1 < len && read(fd, &c, 1) == 1 && c != '\n')
        buf[n++] = c;
    buf[n] = '\0';
}

START_TEST(graphite)
{
    struct event_base *base = event_base_new();
    struct evhttp *http = evhttp_new(base);
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(http, "127.0.0.1", 0);
    ck_assert_ptr_nonnull(bs);
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sin, &sl);
    int gport = ntohs(sin.sin_port);
    int uris[2];
    ck_assert_int_eq(pipe(uris), 0);
    pid_t child = fork();
    if (child == 0) {
        close(uris[0]);
        event_reinit(base);
        evhttp_set_gencb(http, on_render, &uris[1]);
        event_base_dispatch(base);
        _exit(0);
    }
    close(uris[1]);

    char url[96], uri[512];
    snprintf(url, sizeof(url), "--graphite-url=http://127.0.0.1:%d", gport);
    const char *const args[] = {g_lookupd_flag, url, "--proxy-graphite", "--statsd-interval=60s",
                                NULL};
    struct harness_proc *a = start_admin(args);
    ck_assert_ptr_nonnull(a);
    int port = harness_port(a, "HTTP");
    struct harness_response r;
    ck_assert_int_eq(
            harness_http("GET", port, "/api/graphite?metric=rate&target=sum(x)", NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "{\"rate\":\"2.00\"}");
    harness_response_free(&r);
    read_line(uris[0], uri, sizeof(uri));
    ck_assert_str_eq(uri, "/render?format=json&from=-120sec&target=sum%28x%29&until=-60sec");
    ck_assert_int_eq(harness_http("GET", port, "/render?target=y&format=json", NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, GRAPHITE_ANSWER);
    harness_response_free(&r);
    read_line(uris[0], uri, sizeof(uri));
    ck_assert_str_eq(uri, "/render?target=y&format=json");
    ck_assert_int_eq(harness_stop(a, SIGTERM), 0);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    close(uris[0]);
    evhttp_free(http);
    event_base_free(base);
}
END_TEST

/* A node that accepts connections and never answers costs one request timeout, never a hang. */
START_TEST(silent_node_times_out)
{
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(ls, (struct sockaddr *)&sin, sizeof(sin)), 0);
    ck_assert_int_eq(listen(ls, 16), 0);
    socklen_t sl = sizeof(sin);
    getsockname(ls, (struct sockaddr *)&sin, &sl);
    char silent[96], n1[96];
    snprintf(silent, sizeof(silent), "--nsqd-http-address=127.0.0.1:%d", ntohs(sin.sin_port));
    snprintf(n1, sizeof(n1), "--nsqd-http-address=%s", g_node1);
    const char *const args[] = {silent, n1, "--http-client-request-timeout=300ms", NULL};
    struct harness_proc *a = start_admin(args);
    ck_assert_ptr_nonnull(a);
    int64_t t0 = harness_now_ms();
    long st;
    cJSON *j = admin_json(harness_port(a, "HTTP"), "GET", "/api/topics", NULL, &st);
    ck_assert_int_lt(harness_now_ms() - t0, 3000);
    ck_assert_int_eq(st, 200);
    ck_assert(strncmp(jstr(j, "message"), "WARNING: ", 9) == 0);
    ck_assert_int_ge(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "topics")), 2);
    cJSON_Delete(j);
    ck_assert_int_eq(harness_stop(a, SIGTERM), 0);
    close(ls);
}
END_TEST

START_TEST(inactive_topics)
{
    /* a topic known to lookupd with no producer */
    ck_assert_int_eq(post(g_lookupd_http, "/channel/create?topic=ghost&channel=c2", NULL), 200);
    ck_assert_int_eq(post(g_lookupd_http, "/channel/create?topic=ghost&channel=c1", NULL), 200);
    long st;
    cJSON *j = admin_json(g_admin_port, "GET", "/api/topics?inactive=true", NULL, &st);
    ck_assert_int_eq(st, 200);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "topics");
    ck_assert(cJSON_IsObject(t));
    ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(t, "orders"));
    const cJSON *ghost = cJSON_GetObjectItemCaseSensitive(t, "ghost");
    ck_assert_int_eq(cJSON_GetArraySize(ghost), 2);
    ck_assert_str_eq(cJSON_GetArrayItem(ghost, 0)->valuestring, "c1");
    ck_assert_str_eq(cJSON_GetArrayItem(ghost, 1)->valuestring, "c2");
    ck_assert_str_eq(jstr(j, "message"), "");
    cJSON_Delete(j);
    ck_assert_int_eq(post(g_lookupd_http, "/topic/delete?topic=ghost", NULL), 200);
}
END_TEST

/* ---- processes: startup errors and the command line ---- */

/* Runs nsqadmin with args (NULL-terminated); stdout and stderr into out/err. Returns the exit
   status. */
static int run_nsqadmin(const char *const *args, char *out, char *err)
{
    int po[2], pe[2];
    ck_assert_int_eq(pipe(po), 0);
    ck_assert_int_eq(pipe(pe), 0);
    pid_t pid = fork();
    if (pid == 0) {
        const char *argv[ITEST_MAX_ARGS];
        int n = 0;
        argv[n++] = NSQADMIN_BIN;
        for (int i = 0; args[i] != NULL && n < ITEST_MAX_ARGS - 1; i++)
            argv[n++] = args[i];
        argv[n] = NULL;
        dup2(po[1], 1);
        dup2(pe[1], 2);
        close(po[0]);
        close(pe[0]);
        execv(NSQADMIN_BIN, (char *const *)argv);
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    size_t no = 0, ne = 0;
    ssize_t k;
    while ((k = read(po[0], out + no, CLI_OUT_MAX - 1 - no)) > 0)
        no += (size_t)k;
    while ((k = read(pe[0], err + ne, CLI_OUT_MAX - 1 - ne)) > 0)
        ne += (size_t)k;
    out[no] = '\0';
    err[ne] = '\0';
    close(po[0]);
    close(pe[0]);
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

START_TEST(startup_errors)
{
    static char out[CLI_OUT_MAX], err[CLI_OUT_MAX];
    const char *const none[] = {"--http-address=127.0.0.1:0", NULL};
    ck_assert_int_eq(run_nsqadmin(none, out, err), 1);
    ck_assert(strstr(err, "failed to instantiate nsqadmin - --nsqd-http-address or "
                          "--lookupd-http-address required") != NULL);
    const char *const both[] = {"--http-address=127.0.0.1:0", g_lookupd_flag,
                                "--nsqd-http-address=127.0.0.1:4151", NULL};
    ck_assert_int_eq(run_nsqadmin(both, out, err), 1);
    ck_assert(strstr(err, "use --nsqd-http-address or --lookupd-http-address not both") != NULL);
    const char *const cert[] = {"--http-address=127.0.0.1:0", g_lookupd_flag,
                                "--http-client-tls-cert=/nonexistent", NULL};
    ck_assert_int_eq(run_nsqadmin(cert, out, err), 1);
    ck_assert(strstr(err, "--http-client-tls-key must be specified with --http-client-tls-cert") !=
              NULL);
    const char *const cidr[] = {"--http-address=127.0.0.1:0", g_lookupd_flag,
                                "--allow-config-from-cidr=nonsense", NULL};
    ck_assert_int_eq(run_nsqadmin(cidr, out, err), 1);
    ck_assert(strstr(err, "failed to parse --allow-config-from-cidr (nonsense)") != NULL);
    char busy[64];
    snprintf(busy, sizeof(busy), "--http-address=127.0.0.1:%d", g_admin_port);
    const char *const listen_fail[] = {busy, g_lookupd_flag, NULL};
    ck_assert_int_eq(run_nsqadmin(listen_fail, out, err), 1);
    ck_assert(strstr(err, "listen (127.0.0.1:") != NULL);
    const char *const help[] = {"--help", NULL};
    ck_assert_int_eq(run_nsqadmin(help, out, err), 0);
    ck_assert(strstr(err, "Exit codes:") != NULL);
    ck_assert(strstr(err, "-lookupd-http-address") != NULL);
}
END_TEST

START_TEST(cli_commands)
{
    static char out[CLI_OUT_MAX], err[CLI_OUT_MAX];
    const char *const topics[] = {"topics", g_lookupd_flag, NULL};
    ck_assert_int_eq(run_nsqadmin(topics, out, err), 0);
    ck_assert(strstr(out, "events\n") != NULL);
    ck_assert(strstr(out, "orders\n") != NULL);

    const char *const json[] = {g_lookupd_flag, "topics", "--json", NULL};
    ck_assert_int_eq(run_nsqadmin(json, out, err), 0);
    cJSON *j = cJSON_Parse(out);
    ck_assert_ptr_nonnull(j);
    assert_shape(j, "nsqadmin-topics.json");
    cJSON_Delete(j);

    const char *const nodes[] = {"nodes", g_lookupd_flag, NULL};
    ck_assert_int_eq(run_nsqadmin(nodes, out, err), 0);
    char port[16];
    snprintf(port, sizeof(port), "%d", g_http1);
    ck_assert(strstr(out, port) != NULL);

    const char *const stats[] = {
            "stats", "orders", "billing", g_lookupd_flag, "--rate-interval=100ms", NULL};
    ck_assert_int_eq(run_nsqadmin(stats, out, err), 0);
    ck_assert(strstr(out, "IN_FLIGHT") != NULL);
    ck_assert(strstr(out, "MSGS/S") != NULL);
    ck_assert(strstr(out, g_node1) != NULL);
    ck_assert(strstr(out, g_node2) != NULL);
    ck_assert(strstr(out, "TOTAL") != NULL);

    const char *const channels[] = {"channels", "orders", g_lookupd_flag, NULL};
    ck_assert_int_eq(run_nsqadmin(channels, out, err), 0);
    ck_assert(strstr(out, "audit") != NULL);
    ck_assert(strstr(out, "billing") != NULL);

    /* actions take effect */
    const char *const create[] = {"create", "clitopic", g_lookupd_flag, NULL};
    ck_assert_int_eq(run_nsqadmin(create, out, err), 0);
    long st;
    cJSON *l = itest_http_json("GET", g_lookupd_http, "/lookup?topic=clitopic", NULL, &st);
    ck_assert_int_eq(st, 200);
    cJSON_Delete(l);
    const char *const pause[] = {"pause", "orders", "billing", g_lookupd_flag, NULL};
    ck_assert_int_eq(run_nsqadmin(pause, out, err), 0);
    ck_assert(nsqd_paused(g_http1, "orders", "billing"));
    ck_assert(nsqd_paused(g_http2, "orders", "billing"));
    const char *const unpause[] = {"unpause", "orders", "billing", g_lookupd_flag, NULL};
    ck_assert_int_eq(run_nsqadmin(unpause, out, err), 0);
    ck_assert(!nsqd_paused(g_http1, "orders", "billing"));

    /* partial failure: 2; total failure: 1; usage: 64 */
    const char *const partial[] = {"topics", g_lookupd_flag, "--lookupd-http-address=" DOWN_ADDR,
                                   NULL};
    ck_assert_int_eq(run_nsqadmin(partial, out, err), 2);
    ck_assert(strstr(err, "WARNING: ") != NULL);
    ck_assert(strstr(out, "orders\n") != NULL);
    const char *const failed[] = {"topics", "--lookupd-http-address=" DOWN_ADDR, NULL};
    ck_assert_int_eq(run_nsqadmin(failed, out, err), 1);
    ck_assert(strstr(err, "UPSTREAM_ERROR") != NULL);
    const char *const nsqd_down[] = {"stats", "orders", "--nsqd-http-address=" DOWN_ADDR,
                                     "--rate-interval=0", NULL};
    char n1[96];
    snprintf(n1, sizeof(n1), "--nsqd-http-address=%s", g_node1);
    const char *const nsqd_ok[] = {"stats", "orders", n1, "--rate-interval=0", NULL};
    ck_assert_int_eq(run_nsqadmin(nsqd_ok, out, err), 0);
    ck_assert_int_eq(run_nsqadmin(nsqd_down, out, err), 1);
    static const char *const usage[][4] = {
            {"stats", NULL, NULL, NULL},
            {"bogus", NULL, NULL, NULL},
            {"create", "bad topic", NULL, NULL},
            {"topics", "--no-such-flag", NULL, NULL},
    };
    for (size_t i = 0; i < sizeof(usage) / sizeof(usage[0]); i++) {
        const char *args[6];
        int n = 0;
        for (int k = 0; k < 4 && usage[i][k] != NULL; k++)
            args[n++] = usage[i][k];
        args[n++] = g_lookupd_flag;
        args[n] = NULL;
        ck_assert_int_eq(run_nsqadmin(args, out, err), 64);
    }
    const char *const no_source[] = {"topics", NULL};
    ck_assert_int_eq(run_nsqadmin(no_source, out, err), 64);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("nsqadmin");
    TCase *tc = tcase_create("cluster");
    tcase_set_timeout(tc, 120);
    tcase_add_unchecked_fixture(tc, cluster_up, cluster_down);
    tcase_add_test(tc, api_topics_shape);
    tcase_add_test(tc, api_topic_shape);
    tcase_add_test(tc, api_channel_shape);
    tcase_add_test(tc, api_nodes_shape);
    tcase_add_test(tc, api_counter_shape);
    tcase_add_test(tc, rates_history);
    tcase_add_test(tc, api_shapes_with_client);
    tcase_add_test(tc, api_channel_topology);
    tcase_add_test(tc, api_ttl_and_depth);
    tcase_add_test(tc, actions_take_effect);
    tcase_add_test(tc, action_errors);
    tcase_add_test(tc, acl_and_notifications);
    tcase_add_test(tc, partial_failures);
    tcase_add_test(tc, config_endpoint);
    tcase_add_test(tc, compression_and_routes);
    tcase_add_test(tc, graphite);
    tcase_add_test(tc, inactive_topics);
    tcase_add_test(tc, silent_node_times_out);
    tcase_add_test(tc, startup_errors);
    tcase_add_test(tc, cli_commands);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
