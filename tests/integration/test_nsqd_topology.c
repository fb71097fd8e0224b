/*
 * test_nsqd_topology: topology-aware consumption (docs/topology.md). Three consumers of one channel
 * sit in nsqd's zone, in its region, and elsewhere: with the experiment on, messages go to the
 * zone first, then the region, then the rest once the nearer ones are not ready, and /stats counts
 * them by class (JSON, text, /metrics). Without the experiment delivery stays round robin and the
 * answers keep upstream's fields only. nsqd registers its zone and region with nsqlookupd.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "nsqd_itest.h"

#define TOPIC       "topo"
#define CHANNEL     "ch"
#define CONSUMERS   3
#define RDY_EACH    4
#define READY_WAIT  10000
#define QUIET_MS    300
#define EXPERIMENT  "--enable-experiment=topology-aware-consumption"
#define NSQD_ZONE   "--topology-zone=z1"
#define NSQD_REGION "--topology-region=r1"

/* Consumers in the same zone, the same region (another zone), and elsewhere. */
static const char *const identify_bodies[CONSUMERS] = {
        "{\"client_id\":\"zone\",\"topology_zone\":\"z1\",\"topology_region\":\"r1\"}",
        "{\"client_id\":\"region\",\"topology_zone\":\"z2\",\"topology_region\":\"r1\"}",
        "{\"client_id\":\"global\",\"topology_zone\":\"z9\",\"topology_region\":\"r9\"}",
};

struct ready_wait {
    int http_port;
    int64_t rdy;
};

/* True when the channel has CONSUMERS clients, each with RDY w->rdy and nothing in flight. */
static bool all_ready(void *arg)
{
    const struct ready_wait *w = arg;
    cJSON *root = itest_stats(w->http_port, NULL);
    const cJSON *ch = root ? itest_stats_find(root, TOPIC, CHANNEL) : NULL;
    const cJSON *clients = ch ? cJSON_GetObjectItemCaseSensitive(ch, "clients") : NULL;
    bool ok = cJSON_GetArraySize(clients) == CONSUMERS;
    const cJSON *cl;
    cJSON_ArrayForEach(cl, clients)
    {
        const cJSON *rdy = cJSON_GetObjectItemCaseSensitive(cl, "ready_count");
        const cJSON *inf = cJSON_GetObjectItemCaseSensitive(cl, "in_flight_count");
        ok = ok && cJSON_IsNumber(rdy) && (int64_t)rdy->valuedouble == w->rdy &&
             cJSON_IsNumber(inf) && inf->valuedouble == 0;
    }
    cJSON_Delete(root);
    return ok;
}

struct in_flight_wait {
    int http_port;
    int64_t want;
};

static bool in_flight_is(void *arg)
{
    const struct in_flight_wait *w = arg;
    return itest_stats_int(w->http_port, TOPIC, CHANNEL, "in_flight_count") == w->want;
}

/* Connects the three consumers (IDENTIFY, SUB, RDY rdy) and waits until nsqd has them ready. */
static void connect_consumers(struct harness_proc *p, int fds[CONSUMERS], int rdy)
{
    for (int i = 0; i < CONSUMERS; i++) {
        fds[i] = itest_v2_connect(harness_port(p, "TCP"));
        ck_assert_int_ge(fds[i], 0);
        ck_assert_int_eq(itest_identify(fds[i], identify_bodies[i]), 0);
        ck_assert_int_eq(itest_sub(fds[i], TOPIC, CHANNEL), 0);
        ck_assert_int_eq(itest_rdy(fds[i], rdy), 0);
    }
    struct ready_wait w = {harness_port(p, "HTTP"), rdy};
    ck_assert_msg(harness_wait_until(all_ready, &w, READY_WAIT), "consumers never became ready");
}

static void publish(int fd, int seq)
{
    char body[32];
    int n = snprintf(body, sizeof(body), "m%d", seq);
    ck_assert_int_eq(itest_pub(fd, TOPIC, body, (size_t)n), 0);
}

/* Reads `count` messages on fd; each body must be "m<first + i>". */
static void expect_messages(int fd, int first, int count, const char *who)
{
    for (int i = 0; i < count; i++) {
        struct itest_msg m;
        char want[32];
        snprintf(want, sizeof(want), "m%d", first + i);
        ck_assert_msg(itest_read_msg(fd, &m, ITEST_IO_MS) == 0, "%s: no message %s", who, want);
        ck_assert_msg(strcmp(m.body, want) == 0, "%s got %s, want %s", who, m.body, want);
        free(m.body);
    }
}

/* Nothing more arrives on fd for a short while. */
static void expect_quiet(int fd, const char *who)
{
    struct itest_msg m;
    int rc = itest_read_msg(fd, &m, QUIET_MS);
    if (rc == 0) {
        ck_abort_msg("%s got an unexpected message %s", who, m.body);
        free(m.body);
    }
}

static int64_t json_int(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : -1;
}

static const char *json_string(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* IDENTIFY with feature negotiation; returns the parsed answer (caller deletes). */
static cJSON *identify_negotiated(int port)
{
    int fd = itest_v2_connect(port);
    ck_assert_int_ge(fd, 0);
    const char *body = "{\"feature_negotiation\":true,\"topology_zone\":\"z1\"}";
    ck_assert_int_eq(harness_tcp_send_str(fd, "IDENTIFY\n"), 0);
    ck_assert_int_eq(harness_tcp_send_sized(fd, body, strlen(body)), 0);
    int32_t type;
    char *data = NULL;
    size_t len;
    ck_assert_int_eq(itest_read_frame(fd, &type, &data, &len, ITEST_IO_MS), 0);
    ck_assert_int_eq(type, ITEST_FRAME_RESP);
    cJSON *j = cJSON_ParseWithLength(data, len);
    ck_assert_ptr_nonnull(j);
    free(data);
    close(fd);
    return j;
}

/* Zone first, then region, then global, as each nearer class runs out of RDY. */
START_TEST(topology_prefers_zone_then_region)
{
    char *dir = harness_tmpdir();
    const char *flags[] = {EXPERIMENT, NSQD_ZONE, NSQD_REGION, NULL};
    struct harness_proc *p = itest_nsqd_start(dir, flags);
    ck_assert_ptr_nonnull(p);
    int pub = itest_v2_connect(harness_port(p, "TCP"));
    ck_assert_int_ge(pub, 0);
    int fds[CONSUMERS];
    connect_consumers(p, fds, RDY_EACH);
    for (int i = 0; i < CONSUMERS * RDY_EACH; i++)
        publish(pub, i);
    expect_messages(fds[0], 0, RDY_EACH, "zone consumer");
    expect_messages(fds[1], RDY_EACH, RDY_EACH, "region consumer");
    expect_messages(fds[2], 2 * RDY_EACH, RDY_EACH, "global consumer");
    for (int i = 0; i < CONSUMERS; i++)
        expect_quiet(fds[i], identify_bodies[i]);

    cJSON *root = itest_stats(harness_port(p, "HTTP"), NULL);
    const cJSON *ch = itest_stats_find(root, TOPIC, CHANNEL);
    ck_assert_ptr_nonnull(ch);
    ck_assert_int_eq(json_int(ch, "zone_local_msg_count"), RDY_EACH);
    ck_assert_int_eq(json_int(ch, "region_local_msg_count"), RDY_EACH);
    ck_assert_int_eq(json_int(ch, "global_msg_count"), RDY_EACH);
    const cJSON *zone =
            itest_find_named(cJSON_GetObjectItemCaseSensitive(ch, "clients"), "client_id", "zone");
    ck_assert_ptr_nonnull(zone);
    ck_assert_int_eq(json_int(zone, "zone_local_msg_count"), RDY_EACH);
    ck_assert_int_eq(json_int(zone, "global_msg_count"), -1);
    ck_assert_str_eq(json_string(zone, "topology_zone"), "z1");
    ck_assert_str_eq(json_string(zone, "topology_region"), "r1");
    cJSON_Delete(root);

    char *text = NULL;
    ck_assert_int_eq(itest_http("GET", harness_port(p, "HTTP"), "/stats", NULL, &text), 200);
    ck_assert_msg(strstr(text, "zone-local: 4 region-local: 4 global: 4") != NULL, "text: %s",
                  text);
    free(text);
    ck_assert_int_eq(itest_http("GET", harness_port(p, "HTTP"), "/metrics", NULL, &text), 200);
    ck_assert_msg(strstr(text, "nsqd_channel_delivered_by_locality_total{topic=\"topo\",channel="
                               "\"ch\",locality=\"region_local\"} 4") != NULL,
                  "metrics: %s", text);
    free(text);

    for (int i = 0; i < CONSUMERS; i++)
        close(fds[i]);
    close(pub);
    ck_assert_int_eq(harness_stop(p, 0), 0);
    harness_rmdir(dir);
    free(dir);
}
END_TEST

/* A freed zone consumer takes the next message again, ahead of ready consumers further away. */
START_TEST(topology_zone_wins_when_ready_again)
{
    char *dir = harness_tmpdir();
    const char *flags[] = {EXPERIMENT, NSQD_ZONE, NSQD_REGION, NULL};
    struct harness_proc *p = itest_nsqd_start(dir, flags);
    ck_assert_ptr_nonnull(p);
    int pub = itest_v2_connect(harness_port(p, "TCP"));
    ck_assert_int_ge(pub, 0);
    int fds[CONSUMERS];
    connect_consumers(p, fds, 1);
    publish(pub, 0);
    struct itest_msg m;
    ck_assert_int_eq(itest_read_msg(fds[0], &m, ITEST_IO_MS), 0);
    ck_assert_str_eq(m.body, "m0");
    publish(pub, 1); /* zone consumer busy: region */
    expect_messages(fds[1], 1, 1, "region consumer");
    ck_assert_int_eq(itest_fin(fds[0], m.id), 0);
    free(m.body);
    /* Once the FIN is through (only the region's message left in flight) the zone consumer is
       ready again and wins over the ready global one. */
    struct in_flight_wait w = {harness_port(p, "HTTP"), 1};
    ck_assert_msg(harness_wait_until(in_flight_is, &w, READY_WAIT), "FIN not seen");
    publish(pub, 2);
    expect_messages(fds[0], 2, 1, "zone consumer");
    expect_quiet(fds[2], "global consumer");
    for (int i = 0; i < CONSUMERS; i++)
        close(fds[i]);
    close(pub);
    ck_assert_int_eq(harness_stop(p, 0), 0);
    harness_rmdir(dir);
    free(dir);
}
END_TEST

/* Topology flags without the experiment: round robin over all consumers, no counters; /info and
   IDENTIFY show the node's topology as upstream's experiment does. */
START_TEST(topology_without_experiment_is_round_robin)
{
    char *dir = harness_tmpdir();
    const char *flags[] = {NSQD_ZONE, NSQD_REGION, NULL};
    struct harness_proc *p = itest_nsqd_start(dir, flags);
    ck_assert_ptr_nonnull(p);
    int pub = itest_v2_connect(harness_port(p, "TCP"));
    ck_assert_int_ge(pub, 0);
    int fds[CONSUMERS];
    connect_consumers(p, fds, RDY_EACH);
    /* Round robin in the order the consumers became ready, although the zone consumer could take
       them all. */
    for (int i = 0; i < CONSUMERS; i++)
        publish(pub, i);
    for (int i = 0; i < CONSUMERS; i++)
        expect_messages(fds[i], i, 1, identify_bodies[i]);

    cJSON *root = itest_stats(harness_port(p, "HTTP"), NULL);
    const cJSON *ch = itest_stats_find(root, TOPIC, CHANNEL);
    ck_assert_ptr_nonnull(ch);
    ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(ch, "zone_local_msg_count"));
    ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(ch, "global_msg_count"));
    const cJSON *cl = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(ch, "clients"), 0);
    ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(cl, "topology_zone"));
    cJSON_Delete(root);

    cJSON *info = itest_http_json("GET", harness_port(p, "HTTP"), "/info", NULL, NULL);
    ck_assert_str_eq(json_string(info, "topology_zone"), "z1");
    ck_assert_str_eq(json_string(info, "topology_region"), "r1");
    cJSON_Delete(info);
    cJSON *id = identify_negotiated(harness_port(p, "TCP"));
    ck_assert_str_eq(json_string(id, "topology_zone"), "z1");
    ck_assert_str_eq(json_string(id, "topology_region"), "r1");
    cJSON_Delete(id);

    for (int i = 0; i < CONSUMERS; i++)
        close(fds[i]);
    close(pub);
    ck_assert_int_eq(harness_stop(p, 0), 0);
    harness_rmdir(dir);
    free(dir);
}
END_TEST

/* No topology flags: /info and IDENTIFY carry upstream v1.3.0's fields only. */
START_TEST(topology_absent_keeps_upstream_answers)
{
    char *dir = harness_tmpdir();
    struct harness_proc *p = itest_nsqd_start(dir, NULL);
    ck_assert_ptr_nonnull(p);
    cJSON *info = itest_http_json("GET", harness_port(p, "HTTP"), "/info", NULL, NULL);
    ck_assert_ptr_nonnull(info);
    ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(info, "topology_zone"));
    cJSON_Delete(info);
    cJSON *id = identify_negotiated(harness_port(p, "TCP"));
    ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(id, "topology_zone"));
    ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(id, "topology_region"));
    cJSON_Delete(id);
    ck_assert_int_eq(harness_stop(p, 0), 0);
    harness_rmdir(dir);
    free(dir);
}
END_TEST

/* An experiment nsqd does not know stops it at startup. */
START_TEST(topology_unknown_experiment_rejected)
{
    char *dir = harness_tmpdir();
    char cmd[4400];
    snprintf(cmd, sizeof(cmd),
             "%s --enable-experiment=no-such-thing --tcp-address=127.0.0.1:0 "
             "--http-address=127.0.0.1:0 --data-path=%s 2>&1",
             NSQD_BIN, dir);
    FILE *f = popen(cmd, "r");
    ck_assert_ptr_nonnull(f);
    char out[4096];
    size_t n = fread(out, 1, sizeof(out) - 1, f);
    out[n] = '\0';
    int st = pclose(f);
    ck_assert_msg(st != 0, "nsqd started with an unknown experiment");
    ck_assert_msg(strstr(out, "invalid experiment \"no-such-thing\"") != NULL, "output: %s", out);
    harness_rmdir(dir);
    free(dir);
}
END_TEST

struct lookupd_wait {
    int http_port;
    const char *want; /* text expected in /nodes */
};

static bool lookupd_nodes_have(void *arg)
{
    const struct lookupd_wait *w = arg;
    char *body = NULL;
    bool ok = itest_http("GET", w->http_port, "/nodes", NULL, &body) == 200 && body != NULL &&
              strstr(body, w->want) != NULL;
    free(body);
    return ok;
}

/* nsqd registers its zone and region with nsqlookupd, which lists them in /nodes and /lookup. */
START_TEST(topology_registered_with_lookupd)
{
    const char *largs[] = {"--tcp-address=127.0.0.1:0", "--http-address=127.0.0.1:0", NULL};
    struct harness_proc *l = harness_start(NSQLOOKUPD_BIN, largs, 2);
    ck_assert_ptr_nonnull(l);
    char lflag[64];
    snprintf(lflag, sizeof(lflag), "--lookupd-tcp-address=127.0.0.1:%d", harness_port(l, "TCP"));
    char *dir = harness_tmpdir();
    const char *flags[] = {lflag, "--broadcast-address=127.0.0.1", NSQD_ZONE, NSQD_REGION, NULL};
    struct harness_proc *p = itest_nsqd_start(dir, flags);
    ck_assert_ptr_nonnull(p);
    struct lookupd_wait w = {harness_port(l, "HTTP"),
                             "\"topology_zone\":\"z1\",\"topology_region\":\"r1\""};
    ck_assert_msg(harness_wait_until(lookupd_nodes_have, &w, READY_WAIT), "not in /nodes");
    ck_assert_int_eq(harness_stop(p, 0), 0);
    ck_assert_int_eq(harness_stop(l, 0), 0);
    harness_rmdir(dir);
    free(dir);
}
END_TEST

static Suite *topology_suite(void)
{
    Suite *s = suite_create("nsqd_topology");
    TCase *tc = tcase_create("topology");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, topology_prefers_zone_then_region);
    tcase_add_test(tc, topology_zone_wins_when_ready_again);
    tcase_add_test(tc, topology_without_experiment_is_round_robin);
    tcase_add_test(tc, topology_absent_keeps_upstream_answers);
    tcase_add_test(tc, topology_unknown_experiment_rejected);
#ifdef NSQLOOKUPD_BIN
    tcase_add_test(tc, topology_registered_with_lookupd);
#endif
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(topology_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
