/*
 * Cluster tests: three nsqd and two nsqlookupd on 127.0.0.1, every nsqd registered with both
 * lookupds. Covers discovery (/lookup, /nodes), a consumer that finds a topic spread over three
 * nsqds through a lookupd and receives every message, topic/channel creation and deletion seen by
 * every lookupd, an nsqd killed with SIGKILL leaving /nodes, and a restarted lookupd being
 * repopulated by the nsqds (they reconnect on their next periodic PING, within ~15 s).
 */
#include <arpa/inet.h>
#include <check.h>
#include <cjson/cJSON.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define NUM_NSQD       3
#define NUM_LOOKUPD    2
#define AWAIT_MS       10000
#define REREGISTER_MS  40000 /* nsqd PINGs every 15 s; a dropped peer reconnects on the next one */
#define MSGS_PER_NSQD  50
#define IO_MS          HARNESS_IO_TIMEOUT_MS
#define MSG_HEADER_LEN 26 /* timestamp(8) attempts(2) id(16) */
#define MSG_ID_LEN     16

struct cluster {
    struct harness_proc *lookupd[NUM_LOOKUPD];
    struct harness_proc *nsqd[NUM_NSQD];
    char *data_dir[NUM_NSQD];
    int lookupd_tcp_port[NUM_LOOKUPD];
};

static struct harness_proc *start_lookupd_on(int tcp_port)
{
    char tcp[64];
    snprintf(tcp, sizeof(tcp), "--tcp-address=127.0.0.1:%d", tcp_port);
    const char *args[] = {tcp, "--http-address=127.0.0.1:0", "--broadcast-address=127.0.0.1", NULL};
    struct harness_proc *p = harness_start(NSQLOOKUPD_BIN, args, 2);
    ck_assert_msg(p != NULL, "nsqlookupd did not start");
    return p;
}

static void cluster_start(struct cluster *c)
{
    memset(c, 0, sizeof(*c));
    for (int i = 0; i < NUM_LOOKUPD; i++) {
        c->lookupd[i] = start_lookupd_on(0);
        c->lookupd_tcp_port[i] = harness_port(c->lookupd[i], "TCP");
    }
    for (int i = 0; i < NUM_NSQD; i++) {
        c->data_dir[i] = harness_tmpdir();
        ck_assert_ptr_nonnull(c->data_dir[i]);
        char data[512], l0[64], l1[64];
        snprintf(data, sizeof(data), "--data-path=%s", c->data_dir[i]);
        snprintf(l0, sizeof(l0), "--lookupd-tcp-address=127.0.0.1:%d", c->lookupd_tcp_port[0]);
        snprintf(l1, sizeof(l1), "--lookupd-tcp-address=127.0.0.1:%d", c->lookupd_tcp_port[1]);
        const char *args[] = {"--tcp-address=127.0.0.1:0",
                              "--http-address=127.0.0.1:0",
                              "--broadcast-address=127.0.0.1",
                              data,
                              l0,
                              l1,
                              NULL};
        c->nsqd[i] = harness_start(NSQD_BIN, args, 2);
        ck_assert_msg(c->nsqd[i] != NULL, "nsqd %d did not start", i);
    }
}

static void cluster_stop(struct cluster *c)
{
    for (int i = 0; i < NUM_NSQD; i++) {
        if (c->nsqd[i] != NULL)
            ck_assert_int_eq(harness_stop(c->nsqd[i], SIGTERM), 0);
        harness_rmdir(c->data_dir[i]);
        free(c->data_dir[i]);
    }
    for (int i = 0; i < NUM_LOOKUPD; i++)
        if (c->lookupd[i] != NULL)
            ck_assert_int_eq(harness_stop(c->lookupd[i], SIGTERM), 0);
}

/* POST to an nsqd's HTTP API; asserts 200. */
static void nsqd_post(struct harness_proc *n, const char *path, const char *body)
{
    struct harness_response r;
    ck_assert_int_eq(harness_http("POST", harness_port(n, "HTTP"), path, body,
                                  body != NULL ? strlen(body) : 0, &r),
                     0);
    ck_assert_msg(r.status == 200, "POST %s: %ld %s", path, r.status, r.body);
    harness_response_free(&r);
}

/* GET a lookupd JSON document (NULL unless 200). */
static cJSON *lookupd_get(struct harness_proc *l, const char *path)
{
    struct harness_response r;
    ck_assert_int_eq(harness_http("GET", harness_port(l, "HTTP"), path, NULL, 0, &r), 0);
    cJSON *j = r.status == 200 ? cJSON_Parse(r.body) : NULL;
    harness_response_free(&r);
    return j;
}

/* Number of producers of topic on lookupd l whose tcp_port is one of the running nsqds. */
struct lookup_cond {
    struct cluster *c;
    struct harness_proc *l;
    const char *path;  /* "/lookup?topic=..." or "/nodes" */
    int want;          /* producers expected */
    const char *debug; /* or: a /debug key that must be present (want 1) or absent (want 0) */
};

static int count_producers(struct harness_proc *l, const char *path)
{
    cJSON *j = lookupd_get(l, path);
    if (j == NULL)
        return -1;
    int n = cJSON_GetArraySize(cJSON_GetObjectItem(j, "producers"));
    cJSON_Delete(j);
    return n;
}

static bool producers_are(void *arg)
{
    struct lookup_cond *lc = arg;
    return count_producers(lc->l, lc->path) == lc->want;
}

static bool debug_key_is(void *arg)
{
    struct lookup_cond *lc = arg;
    cJSON *j = lookupd_get(lc->l, "/debug");
    bool present = j != NULL && cJSON_GetObjectItemCaseSensitive(j, lc->debug) != NULL;
    cJSON_Delete(j);
    return present == (lc->want != 0);
}

static void await_producers(struct harness_proc *l, const char *path, int want, int timeout_ms)
{
    struct lookup_cond lc = {.l = l, .path = path, .want = want};
    ck_assert_msg(harness_wait_until(producers_are, &lc, timeout_ms),
                  "%s never had %d producers (has %d)", path, want, count_producers(l, path));
}

static void await_debug_key(struct harness_proc *l, const char *key, bool present)
{
    struct lookup_cond lc = {.l = l, .debug = key, .want = present};
    ck_assert_msg(harness_wait_until(debug_key_is, &lc, AWAIT_MS), "/debug key %s never %s", key,
                  present ? "appeared" : "went away");
}

static bool array_has(const cJSON *arr, const char *value)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) if (cJSON_IsString(e) &&
                                   strcmp(e->valuestring, value) == 0) return true;
    return false;
}

struct channels_cond {
    struct harness_proc *l;
    const char *topic, *channel;
};

static bool channel_listed(void *arg)
{
    struct channels_cond *cc = arg;
    char path[256];
    snprintf(path, sizeof(path), "/channels?topic=%s", cc->topic);
    cJSON *j = lookupd_get(cc->l, path);
    bool ok = j != NULL && array_has(cJSON_GetObjectItem(j, "channels"), cc->channel);
    cJSON_Delete(j);
    return ok;
}

/* ---- tests ---- */

START_TEST(test_producers_found_via_lookup)
{
    struct cluster c;
    cluster_start(&c);
    /* every nsqd identifies with both lookupds */
    for (int l = 0; l < NUM_LOOKUPD; l++)
        await_producers(c.lookupd[l], "/nodes", NUM_NSQD, AWAIT_MS);
    /* a topic on two of the three nsqds */
    nsqd_post(c.nsqd[0], "/pub?topic=spread", "hello");
    nsqd_post(c.nsqd[2], "/topic/create?topic=spread", NULL);
    for (int l = 0; l < NUM_LOOKUPD; l++) {
        await_producers(c.lookupd[l], "/lookup?topic=spread", 2, AWAIT_MS);
        cJSON *j = lookupd_get(c.lookupd[l], "/lookup?topic=spread");
        ck_assert_ptr_nonnull(j);
        const cJSON *p;
        int seen = 0;
        cJSON_ArrayForEach(p, cJSON_GetObjectItem(j, "producers"))
        {
            ck_assert_str_eq(cJSON_GetObjectItem(p, "broadcast_address")->valuestring, "127.0.0.1");
            int tcp = cJSON_GetObjectItem(p, "tcp_port")->valueint;
            int http = cJSON_GetObjectItem(p, "http_port")->valueint;
            for (int i = 0; i < NUM_NSQD; i++)
                if (tcp == harness_port(c.nsqd[i], "TCP")) {
                    ck_assert_int_eq(http, harness_port(c.nsqd[i], "HTTP"));
                    ck_assert(i == 0 || i == 2);
                    seen |= 1 << i;
                }
        }
        ck_assert_int_eq(seen, 0x5);
        cJSON_Delete(j);
        /* /nodes lists the topic under the two nodes that have it */
        j = lookupd_get(c.lookupd[l], "/nodes");
        int with_topic = 0;
        cJSON_ArrayForEach(p, cJSON_GetObjectItem(j, "producers"))
        {
            if (array_has(cJSON_GetObjectItem(p, "topics"), "spread"))
                with_topic++;
        }
        ck_assert_int_eq(with_topic, 2);
        cJSON_Delete(j);
    }
    cluster_stop(&c);
}
END_TEST

/* Reads V2 frames until `want` messages arrived on fd, FINs each, records bodies in seen[]. */
static void consume(int fd, int want, int nsqd_index, bool seen[NUM_NSQD][MSGS_PER_NSQD])
{
    int got = 0;
    while (got < want) {
        int32_t type;
        char *data;
        size_t len;
        int rc = harness_tcp_read_frame(fd, &type, &data, &len, IO_MS);
        ck_assert_msg(rc == 0, "consumer of nsqd %d: no frame after %d messages", nsqd_index, got);
        if (type == 0 && strcmp(data, "_heartbeat_") == 0) {
            harness_tcp_send_str(fd, "NOP\n");
        } else {
            ck_assert_msg(type == 2, "unexpected frame %d: %s", type, data);
            ck_assert_int_gt(len, MSG_HEADER_LEN);
            int from, idx;
            char body[64];
            size_t blen = len - MSG_HEADER_LEN < sizeof(body) - 1 ? len - MSG_HEADER_LEN
                                                                  : sizeof(body) - 1;
            memcpy(body, data + MSG_HEADER_LEN, blen);
            body[blen] = '\0';
            ck_assert_msg(sscanf(body, "n%d-m%d", &from, &idx) == 2, "body %s", body);
            ck_assert_int_eq(from, nsqd_index);
            ck_assert(idx >= 0 && idx < MSGS_PER_NSQD);
            ck_assert_msg(!seen[from][idx], "duplicate %s", body);
            seen[from][idx] = true;
            char fin[4 + MSG_ID_LEN + 1];
            memcpy(fin, "FIN ", 4);
            memcpy(fin + 4, data + 10, MSG_ID_LEN);
            fin[4 + MSG_ID_LEN] = '\n';
            ck_assert_int_eq(harness_tcp_send(fd, fin, sizeof(fin)), 0);
            got++;
        }
        free(data);
    }
}

START_TEST(test_consumer_gets_every_message)
{
    struct cluster c;
    cluster_start(&c);
    /* publish MSGS_PER_NSQD messages to the topic on every nsqd (one /mpub each) */
    for (int i = 0; i < NUM_NSQD; i++) {
        char body[MSGS_PER_NSQD * 16] = "";
        size_t off = 0;
        for (int m = 0; m < MSGS_PER_NSQD; m++)
            off += (size_t)snprintf(body + off, sizeof(body) - off, "%sn%d-m%d", m > 0 ? "\n" : "",
                                    i, m);
        nsqd_post(c.nsqd[i], "/mpub?topic=orders", body);
    }
    for (int l = 0; l < NUM_LOOKUPD; l++)
        await_producers(c.lookupd[l], "/lookup?topic=orders", NUM_NSQD, AWAIT_MS);

    /* a consumer discovers the producers through the second lookupd, as go-nsq does */
    cJSON *j = lookupd_get(c.lookupd[1], "/lookup?topic=orders");
    ck_assert_ptr_nonnull(j);
    static bool seen[NUM_NSQD][MSGS_PER_NSQD];
    memset(seen, 0, sizeof(seen));
    const cJSON *p;
    int connected = 0;
    cJSON_ArrayForEach(p, cJSON_GetObjectItem(j, "producers"))
    {
        int port = cJSON_GetObjectItem(p, "tcp_port")->valueint;
        int idx = -1;
        for (int i = 0; i < NUM_NSQD; i++)
            if (harness_port(c.nsqd[i], "TCP") == port)
                idx = i;
        ck_assert_int_ge(idx, 0);
        int fd = harness_connect(port);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(harness_tcp_send_str(fd, "  V2SUB orders archive\n"), 0);
        int32_t type;
        char *data;
        size_t len;
        ck_assert_int_eq(harness_tcp_read_frame(fd, &type, &data, &len, IO_MS), 0);
        ck_assert_int_eq(type, 0);
        ck_assert_str_eq(data, "OK");
        free(data);
        ck_assert_int_eq(harness_tcp_send_str(fd, "RDY 100\n"), 0);
        consume(fd, MSGS_PER_NSQD, idx, seen);
        harness_tcp_send_str(fd, "CLS\n");
        close(fd);
        connected++;
    }
    cJSON_Delete(j);
    ck_assert_int_eq(connected, NUM_NSQD);
    for (int i = 0; i < NUM_NSQD; i++)
        for (int m = 0; m < MSGS_PER_NSQD; m++)
            ck_assert_msg(seen[i][m], "message n%d-m%d never delivered", i, m);
    cluster_stop(&c);
}
END_TEST

START_TEST(test_create_delete_seen_by_every_lookupd)
{
    struct cluster c;
    cluster_start(&c);
    nsqd_post(c.nsqd[1], "/topic/create?topic=events", NULL);
    nsqd_post(c.nsqd[1], "/channel/create?topic=events&channel=audit", NULL);
    nsqd_post(c.nsqd[1], "/channel/create?topic=events&channel=tmp%23ephemeral", NULL);
    for (int l = 0; l < NUM_LOOKUPD; l++) {
        await_producers(c.lookupd[l], "/lookup?topic=events", 1, AWAIT_MS);
        struct channels_cond cc = {c.lookupd[l], "events", "audit"};
        ck_assert(harness_wait_until(channel_listed, &cc, AWAIT_MS));
        cc.channel = "tmp#ephemeral";
        ck_assert(harness_wait_until(channel_listed, &cc, AWAIT_MS));
        await_debug_key(c.lookupd[l], "channel:events:audit", true);
    }
    /* channel deletion unregisters the nsqd from it (an ephemeral channel key goes away) */
    nsqd_post(c.nsqd[1], "/channel/delete?topic=events&channel=audit", NULL);
    nsqd_post(c.nsqd[1], "/channel/delete?topic=events&channel=tmp%23ephemeral", NULL);
    for (int l = 0; l < NUM_LOOKUPD; l++) {
        await_debug_key(c.lookupd[l], "channel:events:audit", false);
        await_debug_key(c.lookupd[l], "channel:events:tmp#ephemeral", false);
        struct channels_cond cc = {c.lookupd[l], "events", "tmp#ephemeral"};
        ck_assert(!channel_listed(&cc));
    }
    /* topic deletion: the producer leaves the topic in every lookupd */
    nsqd_post(c.nsqd[1], "/topic/delete?topic=events", NULL);
    for (int l = 0; l < NUM_LOOKUPD; l++) {
        await_producers(c.lookupd[l], "/lookup?topic=events", 0, AWAIT_MS);
        await_debug_key(c.lookupd[l], "topic:events:", false);
    }
    cluster_stop(&c);
}
END_TEST

START_TEST(test_killed_nsqd_leaves_nodes)
{
    struct cluster c;
    cluster_start(&c);
    nsqd_post(c.nsqd[0], "/topic/create?topic=t", NULL);
    nsqd_post(c.nsqd[1], "/topic/create?topic=t", NULL);
    for (int l = 0; l < NUM_LOOKUPD; l++) {
        await_producers(c.lookupd[l], "/nodes", NUM_NSQD, AWAIT_MS);
        await_producers(c.lookupd[l], "/lookup?topic=t", 2, AWAIT_MS);
    }
    harness_kill(c.nsqd[0]);
    c.nsqd[0] = NULL;
    /* the closed connection drops it at once from every lookupd */
    for (int l = 0; l < NUM_LOOKUPD; l++) {
        await_producers(c.lookupd[l], "/nodes", NUM_NSQD - 1, AWAIT_MS);
        await_producers(c.lookupd[l], "/lookup?topic=t", 1, AWAIT_MS);
    }
    cluster_stop(&c);
}
END_TEST

START_TEST(test_restarted_lookupd_repopulated)
{
    struct cluster c;
    cluster_start(&c);
    nsqd_post(c.nsqd[0], "/topic/create?topic=durable", NULL);
    nsqd_post(c.nsqd[2], "/topic/create?topic=durable", NULL);
    nsqd_post(c.nsqd[2], "/channel/create?topic=durable&channel=ch", NULL);
    await_producers(c.lookupd[1], "/lookup?topic=durable", 2, AWAIT_MS);

    ck_assert_int_eq(harness_stop(c.lookupd[1], SIGTERM), 0);
    c.lookupd[1] = start_lookupd_on(c.lookupd_tcp_port[1]);
    /* empty after the restart; the nsqds reconnect on their next PING and re-sync */
    await_producers(c.lookupd[1], "/nodes", NUM_NSQD, REREGISTER_MS);
    await_producers(c.lookupd[1], "/lookup?topic=durable", 2, AWAIT_MS);
    struct channels_cond cc = {c.lookupd[1], "durable", "ch"};
    ck_assert(harness_wait_until(channel_listed, &cc, AWAIT_MS));
    /* the other lookupd was not disturbed */
    ck_assert_int_eq(count_producers(c.lookupd[0], "/lookup?topic=durable"), 2);
    cluster_stop(&c);
}
END_TEST

/* nsqadmin's way to retire a topic from one node: tombstone it in every lookupd, then delete it
   on that nsqd. Consumers stop discovering the node at once; the other nodes stay. */
START_TEST(test_tombstone_then_delete_on_one_node)
{
    struct cluster c;
    cluster_start(&c);
    for (int i = 0; i < NUM_NSQD; i++)
        nsqd_post(c.nsqd[i], "/topic/create?topic=retire", NULL);
    for (int l = 0; l < NUM_LOOKUPD; l++)
        await_producers(c.lookupd[l], "/lookup?topic=retire", NUM_NSQD, AWAIT_MS);
    char path[128];
    snprintf(path, sizeof(path), "/topic/tombstone?topic=retire&node=127.0.0.1:%d",
             harness_port(c.nsqd[0], "HTTP"));
    for (int l = 0; l < NUM_LOOKUPD; l++) {
        struct harness_response r;
        ck_assert_int_eq(
                harness_http("POST", harness_port(c.lookupd[l], "HTTP"), path, NULL, 0, &r), 0);
        ck_assert_int_eq(r.status, 200);
        harness_response_free(&r);
        ck_assert_int_eq(count_producers(c.lookupd[l], "/lookup?topic=retire"), NUM_NSQD - 1);
    }
    nsqd_post(c.nsqd[0], "/topic/delete?topic=retire", NULL);
    for (int l = 0; l < NUM_LOOKUPD; l++) {
        await_producers(c.lookupd[l], "/lookup?topic=retire", NUM_NSQD - 1, AWAIT_MS);
        /* the node itself stays, without the topic */
        cJSON *j = lookupd_get(c.lookupd[l], "/nodes");
        const cJSON *p;
        int with_topic = 0;
        cJSON_ArrayForEach(p, cJSON_GetObjectItem(j, "producers"))
        {
            if (array_has(cJSON_GetObjectItem(p, "topics"), "retire"))
                with_topic++;
        }
        ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "producers")), NUM_NSQD);
        ck_assert_int_eq(with_topic, NUM_NSQD - 1);
        cJSON_Delete(j);
    }
    cluster_stop(&c);
}
END_TEST

static Suite *cluster_suite(void)
{
    Suite *s = suite_create("cluster");
    TCase *tc = tcase_create("cluster");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_producers_found_via_lookup);
    tcase_add_test(tc, test_consumer_gets_every_message);
    tcase_add_test(tc, test_create_delete_seen_by_every_lookupd);
    tcase_add_test(tc, test_killed_nsqd_leaves_nodes);
    tcase_add_test(tc, test_restarted_lookupd_repopulated);
    tcase_add_test(tc, test_tombstone_then_delete_on_one_node);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(cluster_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
