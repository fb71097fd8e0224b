/*
 * test_nsqd_upstream_data: nsqd started on a copy of a data directory written by upstream nsqd
 * v1.3.0 (nsqd.dat, diskqueue segments and metadata, a stray .bad file) restores the paused state
 * and depths, and delivers every body listed in datadir-manifest.json exactly once.
 */
#include <check.h>
#include <cjson/cJSON.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "nsqd_itest.h"

#define RDY_COUNT 100
#define QUIET_MS  300
/* Message ID layout (storage.md §6): node id bits. */
#define GUID_NODE_SHIFT 12
#define GUID_NODE_MASK  0x3ffu
#define MANIFEST        NSQ_TESTDATA_DIR "/upstream-v1.3.0/datadir-manifest.json"

static struct harness_proc *g_nsqd;
static char *g_dir;
static int g_http, g_tcp;
static cJSON *g_manifest;

static void copy_file(const char *from, const char *to)
{
    size_t len;
    char *data = itest_read_file(from, &len);
    FILE *f;
    ck_assert_msg(data != NULL, "read %s", from);
    f = fopen(to, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fwrite(data, 1, len, f), len);
    fclose(f);
    free(data);
}

static void copy_datadir(const char *to)
{
    DIR *d = opendir(ITEST_DATADIR);
    struct dirent *e;
    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL) {
        char src[4096], dst[4096];
        if (e->d_name[0] == '.')
            continue;
        snprintf(src, sizeof(src), "%s/%s", ITEST_DATADIR, e->d_name);
        snprintf(dst, sizeof(dst), "%s/%s", to, e->d_name);
        copy_file(src, dst);
    }
    closedir(d);
}

static void start(void)
{
    static const char *const extra[] = {"--node-id=7", "--mem-queue-size=10000", NULL};
    char *text = itest_read_file(MANIFEST, NULL);
    ck_assert_ptr_nonnull(text);
    g_manifest = cJSON_Parse(text);
    free(text);
    ck_assert_ptr_nonnull(g_manifest);
    g_dir = harness_tmpdir();
    copy_datadir(g_dir);
    g_nsqd = itest_nsqd_start(g_dir, extra);
    ck_assert_ptr_nonnull(g_nsqd);
    g_http = harness_port(g_nsqd, "HTTP");
    g_tcp = harness_port(g_nsqd, "TCP");
}

static void stop(void)
{
    if (g_nsqd != NULL)
        harness_stop(g_nsqd, SIGTERM);
    g_nsqd = NULL;
    harness_rmdir(g_dir);
    free(g_dir);
    cJSON_Delete(g_manifest);
}

static const cJSON *manifest_channel(const char *topic, const char *channel)
{
    const cJSON *t = cJSON_GetObjectItem(g_manifest, topic);
    return cJSON_GetObjectItem(cJSON_GetObjectItem(t, "channels"), channel);
}

/* A record of an upstream diskqueue segment: the message as it was written. */
struct disk_msg {
    int64_t ts;
    char id[ITEST_ID_LEN + 1];
    char *body;
};

static int64_t be64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return (int64_t)v;
}

/* Reads every record of queue `name` from the pristine data directory (segments 0.., until one
   is missing). Returns the count; *out is malloc'd. */
static size_t read_queue(const char *name, struct disk_msg **out)
{
    size_t n = 0, cap = 0;
    *out = NULL;
    for (int seg = 0;; seg++) {
        char path[4096];
        size_t len, off = 0;
        unsigned char *d;
        snprintf(path, sizeof(path), "%s/%s.diskqueue.%06d.dat", ITEST_DATADIR, name, seg);
        d = (unsigned char *)itest_read_file(path, &len);
        if (d == NULL)
            break;
        while (off + 4 <= len) {
            uint32_t rl = ((uint32_t)d[off] << 24) | ((uint32_t)d[off + 1] << 16) |
                          ((uint32_t)d[off + 2] << 8) | d[off + 3];
            struct disk_msg *m;
            ck_assert_uint_ge(rl, ITEST_MSG_HDR);
            ck_assert_uint_le(off + 4 + rl, len);
            if (n == cap) {
                cap = cap ? cap * 2 : 64;
                *out = realloc(*out, cap * sizeof(**out));
            }
            m = &(*out)[n++];
            m->ts = be64(d + off + 4);
            memcpy(m->id, d + off + 4 + 10, ITEST_ID_LEN);
            m->id[ITEST_ID_LEN] = '\0';
            m->body = strndup((const char *)d + off + 4 + ITEST_MSG_HDR, rl - ITEST_MSG_HDR);
            off += 4 + rl;
        }
        free(d);
    }
    return n;
}

/* Consumes `want` (a JSON array of bodies) from topic/channel and checks that each arrives exactly
   once and nothing else follows. */
static void consume_all(const char *topic, const char *channel, const char *queue,
                        const cJSON *want)
{
    int n = cJSON_GetArraySize(want);
    struct disk_msg *disk;
    size_t n_disk = read_queue(queue, &disk);
    char *seen = calloc((size_t)n + 1, 1);
    int fd = itest_v2_connect(g_tcp);
    struct itest_msg m;

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(itest_sub(fd, topic, channel), 0);
    ck_assert_int_eq(itest_rdy(fd, RDY_COUNT), 0);
    for (int got = 0; got < n; got++) {
        bool found = false;
        ck_assert_msg(itest_read_msg(fd, &m, ITEST_IO_MS) == 0, "%s/%s: only %d of %d messages",
                      topic, channel, got, n);
        ck_assert_int_eq(m.attempts, 1);
        for (int i = 0; i < n && !found; i++) {
            const cJSON *b = cJSON_GetArrayItem(want, i);
            if (!seen[i] && strcmp(b->valuestring, m.body) == 0) {
                seen[i] = 1;
                found = true;
            }
        }
        ck_assert_msg(found, "%s/%s: unexpected or duplicate body '%s'", topic, channel, m.body);
        /* ID and publish time are those upstream wrote. */
        for (size_t i = 0; i < n_disk; i++) {
            if (strcmp(disk[i].body, m.body) == 0) {
                ck_assert_str_eq(m.id, disk[i].id);
                ck_assert_int_eq(m.ts, disk[i].ts);
                break;
            }
        }
        ck_assert_int_eq(itest_fin(fd, m.id), 0);
        free(m.body);
    }
    /* Nothing more may arrive. */
    ck_assert_int_ne(itest_read_msg(fd, &m, QUIET_MS), 0);
    close(fd);
    free(seen);
    ck_assert_uint_ge(n_disk, (size_t)n);
    for (size_t i = 0; i < n_disk; i++)
        free(disk[i].body);
    free(disk);
}

START_TEST(restored_state)
{
    cJSON *root = itest_stats(g_http, NULL);
    cJSON *t, *c;
    ck_assert_ptr_nonnull(root);

    t = itest_stats_find(root, "orders", NULL);
    ck_assert_ptr_nonnull(t);
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(t, "paused")));
    ck_assert_int_eq(cJSON_GetObjectItem(t, "depth")->valueint, 0);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(t, "channels")), 2);

    c = itest_stats_find(root, "orders", "audit");
    ck_assert_ptr_nonnull(c);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(c, "paused")));
    ck_assert_int_eq(cJSON_GetObjectItem(c, "depth")->valueint, 300);
    ck_assert_int_eq(cJSON_GetObjectItem(c, "backend_depth")->valueint, 300);

    c = itest_stats_find(root, "orders", "billing");
    ck_assert_ptr_nonnull(c);
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(c, "paused")));
    ck_assert_int_eq(cJSON_GetObjectItem(c, "depth")->valueint, 300);

    t = itest_stats_find(root, "events", NULL);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(cJSON_GetObjectItem(t, "depth")->valueint,
                     cJSON_GetObjectItem(cJSON_GetObjectItem(g_manifest, "events"), "topic_depth")
                             ->valueint);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(t, "channels")), 0);
    cJSON_Delete(root);
}
END_TEST

START_TEST(consume_billing)
{
    const cJSON *ch = manifest_channel("orders", "billing");
    consume_all("orders", "billing", "orders:billing", cJSON_GetObjectItem(ch, "bodies"));
    ck_assert_int_eq(itest_stats_int(g_http, "orders", "billing", "depth"), 0);
}
END_TEST

START_TEST(consume_audit_after_unpause)
{
    const cJSON *ch = manifest_channel("orders", "audit");
    int fd = itest_v2_connect(g_tcp);
    struct itest_msg m;
    char *body = NULL;

    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(ch, "paused")));
    /* Paused: a ready subscriber gets nothing. */
    ck_assert_int_eq(itest_sub(fd, "orders", "audit"), 0);
    ck_assert_int_eq(itest_rdy(fd, RDY_COUNT), 0);
    ck_assert_int_ne(itest_read_msg(fd, &m, QUIET_MS), 0);
    close(fd);

    ck_assert_int_eq(
            itest_http("POST", g_http, "/channel/unpause?topic=orders&channel=audit", NULL, &body),
            200);
    free(body);
    consume_all("orders", "audit", "orders:audit", cJSON_GetObjectItem(ch, "bodies"));
    ck_assert_int_eq(itest_stats_int(g_http, "orders", "audit", "depth"), 0);
}
END_TEST

START_TEST(consume_events_with_new_channel)
{
    const cJSON *ev = cJSON_GetObjectItem(g_manifest, "events");
    char *body = NULL;
    ck_assert_int_eq(
            itest_http("POST", g_http, "/channel/create?topic=events&channel=reader", NULL, &body),
            200);
    free(body);
    consume_all("events", "reader", "events", cJSON_GetObjectItem(ev, "bodies"));
    ck_assert_int_eq(itest_stats_int(g_http, "events", NULL, "depth"), 0);
}
END_TEST

START_TEST(restart_keeps_consumed_state)
{
    static const char *const extra[] = {"--node-id=7", NULL};
    cJSON *root;
    char *body = NULL;
    ck_assert_int_eq(harness_stop(g_nsqd, SIGTERM), 0);
    g_nsqd = itest_nsqd_start(g_dir, extra);
    ck_assert_ptr_nonnull(g_nsqd);
    g_http = harness_port(g_nsqd, "HTTP");
    g_tcp = harness_port(g_nsqd, "TCP");
    root = itest_stats(g_http, NULL);
    ck_assert_int_eq(
            cJSON_GetObjectItem(itest_stats_find(root, "orders", "billing"), "depth")->valueint, 0);
    ck_assert_int_eq(
            cJSON_GetObjectItem(itest_stats_find(root, "orders", "audit"), "depth")->valueint, 0);
    ck_assert(cJSON_IsFalse(
            cJSON_GetObjectItem(itest_stats_find(root, "orders", "audit"), "paused")));
    ck_assert_int_eq(cJSON_GetObjectItem(itest_stats_find(root, "events", NULL), "depth")->valueint,
                     0);
    ck_assert_ptr_nonnull(itest_stats_find(root, "events", "reader"));
    cJSON_Delete(root);

    /* New IDs carry --node-id=7 (storage.md §6) and are newer than upstream's. */
    {
        int fd = itest_v2_connect(g_tcp);
        struct itest_msg m;
        uint64_t id;
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(itest_sub(fd, "orders", "billing"), 0);
        ck_assert_int_eq(itest_rdy(fd, 1), 0);
        ck_assert_int_eq(itest_http("POST", g_http, "/pub?topic=orders", "fresh", &body), 200);
        free(body);
        ck_assert_int_eq(itest_read_msg(fd, &m, ITEST_IO_MS), 0);
        ck_assert_str_eq(m.body, "fresh");
        id = strtoull(m.id, NULL, 16);
        ck_assert_uint_eq((id >> GUID_NODE_SHIFT) & GUID_NODE_MASK, 7);
        ck_assert_str_gt(m.id, "18a3d562c7807000");
        ck_assert_int_eq(itest_fin(fd, m.id), 0);
        free(m.body);
        close(fd);
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("nsqd_upstream_data");
    TCase *tc = tcase_create("datadir");
    tcase_add_unchecked_fixture(tc, start, stop);
    tcase_set_timeout(tc, 120);
    /* In order: each test continues from the state the previous one left. */
    tcase_add_test(tc, restored_state);
    tcase_add_test(tc, consume_billing);
    tcase_add_test(tc, consume_audit_after_unpause);
    tcase_add_test(tc, consume_events_with_new_channel);
    tcase_add_test(tc, restart_keeps_consumed_state);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    int failed;
    /* The tests share one daemon and build on each other's state. */
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
