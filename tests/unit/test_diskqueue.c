/*
 * test_diskqueue: the diskqueue against real files in a temporary directory: record format,
 * rolling, metadata text, restart, crash recovery, each kind of corruption, empty/delete, write
 * errors, a hand-made test vector (tests/unit/data/diskqueue/) and the data directory written by
 * the reference nsqd (shared testdata), both read and re-written byte for byte.
 */
#include <check.h>
#include <cjson/cJSON.h>
#include <dirent.h>
#include <pthread.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "diskqueue.h"
#include "diskqueue_meta.h"
#include "nsq_time.h"

#define MIN_MSG      26
#define MAX_MSG      (1024 * 1024 + 26)
#define WAIT_MS      10000
#define UPSTREAM_DIR NSQ_TESTDATA_DIR "/upstream-v1.3.0"
#define VECTOR_DIR   NSQ_SOURCE_DIR "/tests/unit/data/diskqueue"

static struct diskqueue_service *svc;
static char tmpdir[256];
static char crashdir[256]; /* copy of tmpdir made by crash_copy, removed by teardown */

/* ------------------------------------------------------------------ helpers */

static int64_t now_ms(void)
{
    return nsq_mono_ns() / NSQ_NS_PER_MS;
}

static void short_wait(void)
{
    struct timespec ts = {0, 1000 * 1000};
    nanosleep(&ts, NULL);
}

static void rm_rf(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char p[1024];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            rm_rf(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static void setup(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_diskqueue.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    svc = diskqueue_service_new(2);
    ck_assert_ptr_nonnull(svc);
}

static void teardown(void)
{
    diskqueue_service_free(svc);
    svc = NULL;
    rm_rf(tmpdir);
    if (crashdir[0])
        rm_rf(crashdir);
    crashdir[0] = 0;
}

static struct diskqueue_options opts(const char *name, int64_t max_bytes)
{
    struct diskqueue_options o = {
            .name = name,
            .data_path = tmpdir,
            .max_bytes_per_file = max_bytes,
            .min_msg_size = MIN_MSG,
            .max_msg_size = MAX_MSG,
            .sync_every = 2500,
            .sync_timeout_ns = 2000LL * 1000 * 1000,
    };
    return o;
}

static struct diskqueue *open_q(const char *name, int64_t max_bytes)
{
    struct diskqueue_options o = opts(name, max_bytes);
    struct diskqueue *dq = diskqueue_open(svc, &o, NULL, NULL);
    ck_assert_ptr_nonnull(dq);
    return dq;
}

static char *qpath(const char *name, const char *suffix)
{
    static char p[2][1024];
    static int which;
    which ^= 1;
    snprintf(p[which], sizeof(p[which]), "%s/%s.diskqueue%s", tmpdir, name, suffix);
    return p[which];
}

static char *seg(const char *name, int n)
{
    char suffix[64];
    snprintf(suffix, sizeof(suffix), ".%06d.dat", n);
    return qpath(name, suffix);
}

static bool exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

static long file_size(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 ? (long)st.st_size : -1;
}

/* Reads a whole file (malloc'd, NUL-terminated); NULL if missing. */
static char *slurp(const char *p, size_t *len)
{
    FILE *f = fopen(p, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(fread(b, 1, (size_t)n, f), (size_t)n);
    b[n] = 0;
    fclose(f);
    if (len)
        *len = (size_t)n;
    return b;
}

static void spit(const char *p, const void *data, size_t len)
{
    FILE *f = fopen(p, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    fclose(f);
}

static void spit_str(const char *p, const char *text)
{
    spit(p, text, strlen(text));
}

static void assert_file_text(const char *p, const char *want)
{
    char *got = slurp(p, NULL);
    ck_assert_msg(got != NULL, "missing %s", p);
    ck_assert_str_eq(got, want);
    free(got);
}

static void assert_files_equal(const char *a, const char *b)
{
    size_t la, lb;
    char *da = slurp(a, &la), *db = slurp(b, &lb);
    ck_assert_msg(da && db, "missing %s or %s", a, b);
    ck_assert_msg(la == lb, "%s: %zu bytes, %s: %zu bytes", a, la, b, lb);
    ck_assert_msg(memcmp(da, db, la) == 0, "%s differs from %s", a, b);
    free(da);
    free(db);
}

/* Copies every regular file of src into dst (mode 0600). */
static void copy_dir(const char *src, const char *dst)
{
    DIR *d = opendir(src);
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    char a[1024], b[1024];
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(a, sizeof(a), "%s/%s", src, e->d_name);
        snprintf(b, sizeof(b), "%s/%s", dst, e->d_name);
        size_t n;
        char *data = slurp(a, &n);
        if (!data)
            continue;
        spit(b, data, n);
        chmod(b, 0600);
        free(data);
    }
    closedir(d);
}

/* A payload of exactly `len` (>= 26) bytes: 26-byte header with `seq` in the ID, then filler. */
static size_t make_payload(uint8_t *out, size_t len, uint32_t seq)
{
    memset(out, 0, len);
    char id[17];
    snprintf(id, sizeof(id), "%016x", seq);
    memcpy(out + 10, id, 16);
    for (size_t i = 26; i < len; i++)
        out[i] = (uint8_t)('a' + (seq + i) % 26);
    return len;
}

static uint32_t payload_seq(const uint8_t *p)
{
    char id[17];
    memcpy(id, p + 10, 16);
    id[16] = 0;
    return (uint32_t)strtoul(id, NULL, 16);
}

static void put_seq(struct diskqueue *dq, uint32_t seq, size_t len)
{
    uint8_t buf[4096];
    ck_assert_uint_le(len, sizeof(buf));
    make_payload(buf, len, seq);
    ck_assert_int_eq(diskqueue_put(dq, buf, len), 0);
}

/* Polls pop until a record arrives or the deadline passes. Returns 1 or 0. */
static int pop_wait(struct diskqueue *dq, uint8_t **data, size_t *len)
{
    int64_t deadline = now_ms() + WAIT_MS;
    for (;;) {
        if (diskqueue_pop(dq, data, len))
            return 1;
        if (now_ms() > deadline)
            return 0;
        short_wait();
    }
}

static void expect_seq(struct diskqueue *dq, uint32_t seq, size_t len)
{
    uint8_t *d;
    size_t n;
    ck_assert_msg(pop_wait(dq, &d, &n), "record %u not popped", seq);
    ck_assert_uint_eq(n, len);
    uint8_t want[4096];
    make_payload(want, len, seq);
    ck_assert_msg(memcmp(d, want, len) == 0, "record %u: got seq %u", seq, payload_seq(d));
    free(d);
}

/* Asserts that nothing more arrives for a moment (the queue is drained). */
static void expect_none(struct diskqueue *dq)
{
    uint8_t *d;
    size_t n;
    int64_t until = now_ms() + 100;
    while (now_ms() < until) {
        ck_assert_msg(!diskqueue_pop(dq, &d, &n), "unexpected record");
        short_wait();
    }
}

static bool wait_depth(struct diskqueue *dq, int64_t want)
{
    int64_t deadline = now_ms() + WAIT_MS;
    while (diskqueue_depth(dq) != want) {
        if (now_ms() > deadline)
            return false;
        short_wait();
    }
    return true;
}

static bool wait_exists(const char *p)
{
    int64_t deadline = now_ms() + WAIT_MS;
    while (!exists(p)) {
        if (now_ms() > deadline)
            return false;
        short_wait();
    }
    return true;
}

static bool wait_gone(const char *p)
{
    int64_t deadline = now_ms() + WAIT_MS;
    while (exists(p)) {
        if (now_ms() > deadline)
            return false;
        short_wait();
    }
    return true;
}

/* ------------------------------------------------------------------ metadata */

START_TEST(test_meta_format_parse)
{
    struct diskqueue_meta m = {1500, 3, 40960, 5, 1024}, p;
    char buf[DISKQUEUE_META_MAX_TEXT];
    size_t n = diskqueue_meta_format(&m, buf);
    ck_assert_str_eq(buf, "1500\n3,40960\n5,1024\n");
    ck_assert_int_eq(diskqueue_meta_parse(buf, n, &p), 0);
    ck_assert_int_eq(memcmp(&m, &p, sizeof(m)), 0);

    /* partial: positions scanned before the failure are kept, depth is not */
    ck_assert_int_eq(diskqueue_meta_parse("7\n2,9\nx", 7, &p), -EINVAL);
    ck_assert_int_eq(p.depth, 0);
    ck_assert_int_eq(p.read_file, 2);
    ck_assert_int_eq(p.read_pos, 9);
    ck_assert_int_eq(p.write_file, 0);
    ck_assert_int_eq(diskqueue_meta_parse("garbage", 7, &p), -EINVAL);
    ck_assert_int_eq(p.read_file, 0);
    /* negative depth is valid text */
    ck_assert_int_eq(diskqueue_meta_parse("-3\n0,0\n1,5\n", 11, &p), 0);
    ck_assert_int_eq(p.depth, -3);
    ck_assert_int_eq(p.write_pos, 5);
}
END_TEST

START_TEST(test_meta_store_atomic)
{
    struct diskqueue_meta m = {0, 0, 0, 0, 0};
    char p[1024];
    snprintf(p, sizeof(p), "%s/x.diskqueue.meta.dat", tmpdir);
    ck_assert_int_eq(diskqueue_meta_store(p, &m), 0);
    assert_file_text(p, "0\n0,0\n0,0\n");
    struct stat st;
    ck_assert_int_eq(stat(p, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    /* no tmp file left behind */
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    int files = 0;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            files++;
    closedir(d);
    ck_assert_int_eq(files, 1);
}
END_TEST

/* ------------------------------------------------------------------ basic behaviour */

START_TEST(test_round_trip)
{
    struct diskqueue *dq = open_q("t", 1024 * 1024);
    for (uint32_t i = 0; i < 100; i++)
        put_seq(dq, i, 26 + i);
    ck_assert_int_eq(diskqueue_depth(dq), 100);
    for (uint32_t i = 0; i < 100; i++)
        expect_seq(dq, i, 26 + i);
    ck_assert_int_eq(diskqueue_depth(dq), 0);
    char msg[64];
    ck_assert_int_eq(diskqueue_health(dq, msg, sizeof(msg)), 0);
    ck_assert_int_eq(diskqueue_close(dq), 0);
    /* 100 records of 4 + 26..125 bytes: 7950 bytes, all consumed */
    assert_file_text(qpath("t", ".meta.dat"), "0\n0,7950\n0,7950\n");
}
END_TEST

START_TEST(test_size_limits)
{
    struct diskqueue *dq = open_q("t", 1024);
    uint8_t small[25] = {0};
    ck_assert_int_eq(diskqueue_put(dq, small, sizeof(small)), -EINVAL);
    uint8_t *big = calloc(1, MAX_MSG + 1);
    ck_assert_int_eq(diskqueue_put(dq, big, MAX_MSG + 1), -EINVAL);
    ck_assert_int_eq(diskqueue_put(dq, big, MAX_MSG), 0); /* larger than a segment: alone */
    ck_assert_int_eq(diskqueue_depth(dq), 1);
    uint8_t *d;
    size_t n;
    ck_assert(pop_wait(dq, &d, &n));
    ck_assert_uint_eq(n, MAX_MSG);
    free(d);
    free(big);
    ck_assert_int_eq(diskqueue_close(dq), 0);
}
END_TEST

START_TEST(test_never_used_meta)
{
    struct diskqueue *dq = open_q("idle:ch", 1024);
    ck_assert_int_eq(diskqueue_close(dq), 0);
    assert_file_text(qpath("idle:ch", ".meta.dat"), "0\n0,0\n0,0\n");
    ck_assert(!exists(seg("idle:ch", 0)));
    struct stat st;
    ck_assert_int_eq(stat(qpath("idle:ch", ".meta.dat"), &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
}
END_TEST

/* storage.md §2.1: a record starts a new segment when it would not fit; one larger than the
   limit is written alone at offset 0. */
START_TEST(test_rolling_placement)
{
    struct diskqueue *dq = open_q("r", 100);
    put_seq(dq, 0, 40);  /* 000000: 0..44 */
    put_seq(dq, 1, 40);  /* 000000: 44..88 */
    put_seq(dq, 2, 26);  /* 88+30 = 118 > 100: 000001: 0..30 */
    put_seq(dq, 3, 66);  /* 30+70 = 100 <= 100: 000001: 30..100 */
    put_seq(dq, 4, 200); /* 000002 alone: 0..204 */
    put_seq(dq, 5, 26);  /* 000003: 0..30 */
    ck_assert_int_eq(diskqueue_close(dq), 0);

    ck_assert_int_eq(file_size(seg("r", 0)), 88);
    ck_assert_int_eq(file_size(seg("r", 1)), 100);
    ck_assert_int_eq(file_size(seg("r", 2)), 204);
    ck_assert_int_eq(file_size(seg("r", 3)), 30);
    struct stat st;
    ck_assert_int_eq(stat(seg("r", 0), &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    assert_file_text(qpath("r", ".meta.dat"), "6\n0,0\n3,30\n");

    /* record 3 sits at 000001:30 with its big-endian length */
    size_t n;
    uint8_t *b = (uint8_t *)slurp(seg("r", 1), &n);
    ck_assert_int_eq(b[30], 0);
    ck_assert_int_eq(b[31], 0);
    ck_assert_int_eq(b[32], 0);
    ck_assert_int_eq(b[33], 66);
    ck_assert_uint_eq(payload_seq(b + 34), 3);
    free(b);

    dq = open_q("r", 100);
    ck_assert_int_eq(diskqueue_depth(dq), 6);
    expect_seq(dq, 0, 40);
    expect_seq(dq, 1, 40);
    expect_seq(dq, 2, 26);
    expect_seq(dq, 3, 66);
    expect_seq(dq, 4, 200);
    expect_seq(dq, 5, 26);
    /* consumed segments are deleted, the current write segment stays */
    ck_assert(wait_gone(seg("r", 2)));
    ck_assert(!exists(seg("r", 0)));
    ck_assert(!exists(seg("r", 1)));
    ck_assert(exists(seg("r", 3)));
    ck_assert_int_eq(diskqueue_close(dq), 0);
    assert_file_text(qpath("r", ".meta.dat"), "0\n3,30\n3,30\n");
}
END_TEST

START_TEST(test_restart_mid_file)
{
    struct diskqueue *dq = open_q("m", 1000);
    for (uint32_t i = 0; i < 50; i++)
        put_seq(dq, i, 30); /* 34 bytes each: 29 per segment */
    for (uint32_t i = 0; i < 10; i++)
        expect_seq(dq, i, 30);
    ck_assert_int_eq(diskqueue_depth(dq), 40);
    ck_assert_int_eq(diskqueue_close(dq), 0);
    /* read position is after record 10 (unpopped read-ahead is not consumed) */
    assert_file_text(qpath("m", ".meta.dat"), "40\n0,340\n1,714\n");

    dq = open_q("m", 1000);
    ck_assert_int_eq(diskqueue_depth(dq), 40);
    for (uint32_t i = 10; i < 35; i++)
        expect_seq(dq, i, 30);
    put_seq(dq, 50, 30);
    ck_assert_int_eq(diskqueue_close(dq), 0);

    dq = open_q("m", 1000);
    ck_assert_int_eq(diskqueue_depth(dq), 16);
    for (uint32_t i = 35; i <= 50; i++)
        expect_seq(dq, i, 30);
    expect_none(dq);
    ck_assert_int_eq(diskqueue_depth(dq), 0);
    ck_assert_int_eq(diskqueue_close(dq), 0);
}
END_TEST

/* storage.md §3.1: a segment longer than the metadata's writePos (crash after unsynced writes):
   writing moves to a new segment, every record is still read, depth is corrected at the tail. */
START_TEST(test_restart_after_crash)
{
    struct diskqueue *dq = open_q("c", 10000);
    for (uint32_t i = 0; i < 5; i++)
        put_seq(dq, i, 40);
    ck_assert_int_eq(diskqueue_close(dq), 0);
    assert_file_text(qpath("c", ".meta.dat"), "5\n0,0\n0,220\n");

    /* two more records reached the segment, the metadata did not */
    dq = open_q("c", 10000);
    put_seq(dq, 5, 40);
    put_seq(dq, 6, 40);
    ck_assert_int_eq(diskqueue_close(dq), 0);
    spit_str(qpath("c", ".meta.dat"), "5\n0,0\n0,220\n");

    dq = open_q("c", 10000);
    ck_assert_int_eq(diskqueue_depth(dq), 7); /* the two records found after writePos count */
    put_seq(dq, 7, 40);
    for (uint32_t i = 0; i <= 7; i++)
        expect_seq(dq, i, 40);
    ck_assert(wait_depth(dq, 0));
    ck_assert_int_eq(diskqueue_close(dq), 0);
    ck_assert(!exists(seg("c", 0)));
    ck_assert_int_eq(file_size(seg("c", 1)), 44);
    assert_file_text(qpath("c", ".meta.dat"), "0\n1,44\n1,44\n");
}
END_TEST

/* ------------------------------------------------------------------ crash recovery (§3.1) */

/* A queue that never syncs by itself (sync-every and sync-timeout out of reach). */
static struct diskqueue *open_nosync(const char *dir, const char *name, int64_t max_bytes)
{
    struct diskqueue_options o = opts(name, max_bytes);
    o.data_path = dir;
    o.sync_every = 1000000;
    o.sync_timeout_ns = 3600LL * NSQ_NS_PER_SEC;
    struct diskqueue *dq = diskqueue_open(svc, &o, NULL, NULL);
    ck_assert_ptr_nonnull(dq);
    return dq;
}

static bool wait_size(const char *p, long want)
{
    int64_t deadline = now_ms() + WAIT_MS;
    while (file_size(p) != want) {
        if (now_ms() > deadline)
            return false;
        short_wait();
    }
    return true;
}

/* The state a SIGKILL leaves: the files of tmpdir as they are now (records written, metadata as
   of the last sync) copied to a fresh directory, which the caller reopens. */
static char *crash_copy(void)
{
    if (crashdir[0])
        rm_rf(crashdir);
    snprintf(crashdir, sizeof(crashdir), "/tmp/test_diskqueue_crash.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(crashdir));
    copy_dir(tmpdir, crashdir);
    return crashdir;
}

static char *path_in(const char *dir, const char *name, const char *suffix)
{
    static char p[1024];
    snprintf(p, sizeof(p), "%s/%s.diskqueue%s", dir, name, suffix);
    return p;
}

/* Killed before the first metadata sync: segment 0 holds two records, there is no metadata file.
   Both records are counted and read; writing continues in a new segment. */
START_TEST(test_crash_before_first_sync)
{
    struct diskqueue *dq = open_nosync(tmpdir, "k", 1000);
    put_seq(dq, 0, 27);
    put_seq(dq, 1, 27);
    ck_assert(wait_size(seg("k", 0), 62));
    char *dir = crash_copy();
    ck_assert(!exists(path_in(dir, "k", ".meta.dat")));

    struct diskqueue *r = open_nosync(dir, "k", 1000);
    ck_assert_int_eq(diskqueue_depth(r), 2);
    put_seq(r, 2, 27);
    ck_assert_int_eq(diskqueue_depth(r), 3);
    for (uint32_t i = 0; i <= 2; i++)
        expect_seq(r, i, 27);
    expect_none(r);
    ck_assert(wait_depth(r, 0));
    ck_assert_int_eq(diskqueue_close(r), 0);
    assert_file_text(path_in(dir, "k", ".meta.dat"), "0\n1,31\n1,31\n");
    ck_assert(!exists(path_in(dir, "k", ".000000.dat")));
    ck_assert(!exists(path_in(dir, "k", ".000000.dat.bad")));
    ck_assert_int_eq(diskqueue_close(dq), 0);
}
END_TEST

/* Records appended after the last sync (stale metadata), across a roll: every record is read, in
   order, and depth counts them all from the start. */
START_TEST(test_crash_stale_meta)
{
    struct diskqueue *dq = open_nosync(tmpdir, "s", 200);
    for (uint32_t i = 0; i < 3; i++)
        put_seq(dq, i, 40);
    ck_assert_int_eq(diskqueue_flush(dq), 0);
    assert_file_text(qpath("s", ".meta.dat"), "3\n0,0\n0,132\n");
    expect_seq(dq, 0, 40); /* consumed, but not synced */
    put_seq(dq, 3, 40);
    ck_assert(wait_size(seg("s", 0), 176));
    char *dir = crash_copy();
    assert_file_text(path_in(dir, "s", ".meta.dat"), "3\n0,0\n0,132\n");

    struct diskqueue *r = open_nosync(dir, "s", 200);
    ck_assert_int_eq(diskqueue_depth(r), 4);
    put_seq(r, 4, 40);
    for (uint32_t i = 0; i <= 4; i++) /* record 0 again: its pop was not synced */
        expect_seq(r, i, 40);
    expect_none(r);
    ck_assert(wait_depth(r, 0));
    ck_assert_int_eq(diskqueue_close(r), 0);
    assert_file_text(path_in(dir, "s", ".meta.dat"), "0\n1,44\n1,44\n");
    ck_assert_int_eq(diskqueue_close(dq), 0);
}
END_TEST

/* Empty removes the metadata file; records put afterwards go to the next segment number. A crash
   before the next sync leaves that segment without metadata: it is found, counted and read. */
START_TEST(test_crash_after_empty)
{
    struct diskqueue *dq = open_nosync(tmpdir, "y", 1000);
    put_seq(dq, 0, 40);
    ck_assert_int_eq(diskqueue_flush(dq), 0);
    ck_assert_int_eq(diskqueue_empty(dq), 0);
    ck_assert(!exists(qpath("y", ".meta.dat")));
    put_seq(dq, 1, 40);
    put_seq(dq, 2, 40);
    ck_assert(wait_size(seg("y", 1), 88));
    char *dir = crash_copy();
    ck_assert(!exists(path_in(dir, "y", ".meta.dat")));

    struct diskqueue *r = open_nosync(dir, "y", 1000);
    ck_assert_int_eq(diskqueue_depth(r), 2);
    put_seq(r, 3, 40);
    for (uint32_t i = 1; i <= 3; i++)
        expect_seq(r, i, 40);
    expect_none(r);
    ck_assert(wait_depth(r, 0));
    ck_assert_int_eq(diskqueue_close(r), 0);
    assert_file_text(path_in(dir, "y", ".meta.dat"), "0\n2,44\n2,44\n");
    ck_assert_int_eq(diskqueue_close(dq), 0);
}
END_TEST

/* A record cut short by the crash ends the count; the records before it are read, the damaged
   tail is set aside (§4.1). */
START_TEST(test_crash_torn_record)
{
    struct diskqueue *dq = open_nosync(tmpdir, "t", 1000);
    put_seq(dq, 0, 40);
    put_seq(dq, 1, 40);
    ck_assert(wait_size(seg("t", 0), 88));
    char *dir = crash_copy();
    ck_assert_int_eq(truncate(path_in(dir, "t", ".000000.dat"), 80), 0);

    struct diskqueue *r = open_nosync(dir, "t", 1000);
    ck_assert_int_eq(diskqueue_depth(r), 1);
    expect_seq(r, 0, 40);
    expect_none(r);
    ck_assert(wait_depth(r, 0));
    ck_assert_int_eq(diskqueue_close(r), 0);
    ck_assert(exists(path_in(dir, "t", ".000000.dat.bad")));
    ck_assert_int_eq(diskqueue_close(dq), 0);
}
END_TEST

/* storage.md §4.1 note: EOF exactly at the end of a completed segment is normal advancement. */
START_TEST(test_caught_up_then_roll)
{
    struct diskqueue *dq = open_q("e", 100);
    put_seq(dq, 0, 60);
    expect_seq(dq, 0, 60);
    put_seq(dq, 1, 60); /* rolls: segment 0 is complete and fully consumed */
    expect_seq(dq, 1, 60);
    ck_assert(wait_gone(seg("e", 0)));
    ck_assert(!exists(qpath("e", ".000000.dat.bad")));
    ck_assert_int_eq(diskqueue_close(dq), 0);
    assert_file_text(qpath("e", ".meta.dat"), "0\n1,64\n1,64\n");

    /* the same situation found on disk (reader at the end of a completed segment) */
    spit_str(qpath("e", ".meta.dat"), "1\n1,64\n2,0\n");
    dq = open_q("e", 100);
    put_seq(dq, 2, 30);
    expect_seq(dq, 2, 30);
    ck_assert(wait_gone(seg("e", 1)));
    ck_assert(!exists(qpath("e", ".000001.dat.bad")));
    ck_assert_int_eq(diskqueue_close(dq), 0);
    assert_file_text(qpath("e", ".meta.dat"), "0\n2,34\n2,34\n");
}
END_TEST

START_TEST(test_depth_after_restart)
{
    struct diskqueue *dq = open_q("d", 500);
    for (uint32_t i = 0; i < 30; i++)
        put_seq(dq, i, 50);
    for (uint32_t i = 0; i < 12; i++)
        expect_seq(dq, i, 50);
    ck_assert_int_eq(diskqueue_close(dq), 0);
    dq = open_q("d", 500);
    ck_assert_int_eq(diskqueue_depth(dq), 18);
    ck_assert_int_eq(diskqueue_close(dq), 0);
    dq = open_q("d", 500);
    ck_assert_int_eq(diskqueue_depth(dq), 18);
    expect_seq(dq, 12, 50);
    ck_assert_int_eq(diskqueue_depth(dq), 17);
    ck_assert_int_eq(diskqueue_close(dq), 0);
}
END_TEST

/* ------------------------------------------------------------------ corruption (§4) */

/* Builds segments 0 and 1 of queue `name` (5 records of 40 bytes each, seq 0-4 and 5-9) and
   metadata "10\n0,0\n1,220\n"; returns nothing, the caller damages files afterwards. */
static void make_two_segments(const char *name)
{
    struct diskqueue *dq = open_q(name, 220);
    for (uint32_t i = 0; i < 10; i++)
        put_seq(dq, i, 40);
    ck_assert_int_eq(diskqueue_close(dq), 0);
    ck_assert_int_eq(file_size(seg(name, 0)), 220);
    ck_assert_int_eq(file_size(seg(name, 1)), 220);
    assert_file_text(qpath(name, ".meta.dat"), "10\n0,0\n1,220\n");
}

START_TEST(test_corrupt_bad_length)
{
    make_two_segments("b");
    /* record 2 of segment 0 gets length 5 (< 26) */
    int fd = open(seg("b", 0), O_WRONLY);
    uint8_t len[4] = {0, 0, 0, 5};
    ck_assert_int_eq(pwrite(fd, len, 4, 88), 4);
    close(fd);

    struct diskqueue *dq = open_q("b", 220);
    expect_seq(dq, 0, 40);
    expect_seq(dq, 1, 40);
    for (uint32_t i = 5; i < 10; i++)
        expect_seq(dq, i, 40);
    expect_none(dq);
    ck_assert(exists(qpath("b", ".000000.dat.bad")));
    ck_assert(!exists(seg("b", 0)));
    ck_assert(wait_depth(dq, 0)); /* 3 lost records corrected at the tail */
    ck_assert_int_eq(diskqueue_close(dq), 0);
    assert_file_text(qpath("b", ".meta.dat"), "0\n1,220\n1,220\n");
}
END_TEST

/* Records read before a damaged one are not lost when the queue closes before they are popped. */
START_TEST(test_corrupt_close_before_pop)
{
    make_two_segments("cb");
    int fd = open(seg("cb", 0), O_WRONLY);
    uint8_t len[4] = {0, 0, 0, 5};
    ck_assert_int_eq(pwrite(fd, len, 4, 88), 4);
    close(fd);

    struct diskqueue *dq = open_q("cb", 220);
    ck_assert_int_eq(diskqueue_flush(dq), 0); /* records 0 and 1 read ahead, then the damage */
    ck_assert_int_eq(diskqueue_close(dq), 0);
    ck_assert(exists(seg("cb", 0)));
    ck_assert(!exists(qpath("cb", ".000000.dat.bad")));

    dq = open_q("cb", 220);
    expect_seq(dq, 0, 40);
    expect_seq(dq, 1, 40);
    for (uint32_t i = 5; i < 10; i++)
        expect_seq(dq, i, 40);
    expect_none(dq);
    ck_assert(exists(qpath("cb", ".000000.dat.bad")));
    ck_assert_int_eq(diskqueue_close(dq), 0);
}
END_TEST

/* Damage found in the write segment while earlier records wait to be popped: records put from
   then on go to a new segment and survive. */
START_TEST(test_corrupt_write_segment_then_put)
{
    make_two_segments("ws");
    int fd = open(seg("ws", 1), O_WRONLY);
    uint8_t len[4] = {0, 0, 0, 5};
    ck_assert_int_eq(pwrite(fd, len, 4, 88), 4); /* record 7 */
    close(fd);

    struct diskqueue *dq = open_q("ws", 10000); /* room left in the write segment */
    ck_assert_int_eq(diskqueue_flush(dq), 0);   /* 0..6 read ahead, then the damage */
    put_seq(dq, 100, 40);
    put_seq(dq, 101, 40);
    for (uint32_t i = 0; i < 7; i++)
        expect_seq(dq, i, 40);
    expect_seq(dq, 100, 40);
    expect_seq(dq, 101, 40);
    expect_none(dq);
    ck_assert(exists(qpath("ws", ".000001.dat.bad")));
    ck_assert(wait_depth(dq, 0));
    ck_assert_int_eq(diskqueue_close(dq), 0);
    assert_file_text(qpath("ws", ".meta.dat"), "0\n2,88\n2,88\n");
}
END_TEST

START_TEST(test_corrupt_huge_length)
{
    make_two_segments("h");
    int fd = open(seg("h", 1), O_WRONLY);
    uint8_t len[4] = {0x7f, 0xff, 0xff, 0xff};
    ck_assert_int_eq(pwrite(fd, len, 4, 0), 4);
    close(fd);

    struct diskqueue *dq = open_q("h", 220);
    for (uint32_t i = 0; i < 5; i++)
        expect_seq(dq, i, 40);
    expect_none(dq);
    /* the write segment was bad: writing moved on */
    ck_assert(exists(qpath("h", ".000001.dat.bad")));
    put_seq(dq, 42, 40);
    expect_seq(dq, 42, 40);
    ck_assert(wait_depth(dq, 0));
    ck_assert_int_eq(diskqueue_close(dq), 0);
    assert_file_text(qpath("h", ".meta.dat"), "0\n2,44\n2,44\n");
}
END_TEST

START_TEST(test_corrupt_truncated)
{
    make_two_segments("tr");
    /* segment 0 loses the last 10 bytes: record 4 is cut short */
    ck_assert_int_eq(truncate(seg("tr", 0), 210), 0);
    struct diskqueue *dq = open_q("tr", 220);
    for (uint32_t i = 0; i < 4; i++)
        expect_seq(dq, i, 40);
    for (uint32_t i = 5; i < 10; i++)
        expect_seq(dq, i, 40);
    expect_none(dq);
    ck_assert(exists(qpath("tr", ".000000.dat.bad")));
    ck_assert(wait_depth(dq, 0));
    ck_assert_int_eq(diskqueue_close(dq), 0);
}
END_TEST

START_TEST(test_corrupt_missing_segment)
{
    struct diskqueue *dq = open_q("ms", 220);
    for (uint32_t i = 0; i < 15; i++)
        put_seq(dq, i, 40);
    ck_assert_int_eq(diskqueue_close(dq), 0);
    assert_file_text(qpath("ms", ".meta.dat"), "15\n0,0\n2,220\n");
    ck_assert_int_eq(unlink(seg("ms", 1)), 0);

    dq = open_q("ms", 220);
    for (uint32_t i = 0; i < 5; i++)
        expect_seq(dq, i, 40);
    for (uint32_t i = 10; i < 15; i++)
        expect_seq(dq, i, 40);
    expect_none(dq);
    ck_assert(wait_depth(dq, 0));
    ck_assert_int_eq(diskqueue_close(dq), 0);
}
END_TEST

START_TEST(test_corrupt_meta_garbage)
{
    make_two_segments("g");
    spit_str(qpath("g", ".meta.dat"), "garbage\n");
    /* unparsable metadata: positions 0; existing data is kept, read and counted, new writes go
       to a fresh segment */
    struct diskqueue *dq = open_q("g", 220);
    ck_assert_int_eq(diskqueue_depth(dq), 10);
    put_seq(dq, 100, 40);
    for (uint32_t i = 0; i < 10; i++)
        expect_seq(dq, i, 40);
    expect_seq(dq, 100, 40);
    expect_none(dq);
    ck_assert(wait_depth(dq, 0));
    ck_assert_int_eq(diskqueue_close(dq), 0);
    assert_file_text(qpath("g", ".meta.dat"), "0\n2,44\n2,44\n");
    ck_assert(exists(seg("g", 2)));
}
END_TEST

START_TEST(test_corrupt_read_beyond_write)
{
    make_two_segments("rb");
    spit_str(qpath("rb", ".meta.dat"), "3\n1,400\n1,220\n");
    struct diskqueue *dq = open_q("rb", 220);
    ck_assert(wait_depth(dq, 0));
    expect_none(dq);
    ck_assert(wait_gone(seg("rb", 1)));
    put_seq(dq, 7, 40);
    expect_seq(dq, 7, 40);
    ck_assert_int_eq(diskqueue_close(dq), 0);
    assert_file_text(qpath("rb", ".meta.dat"), "0\n2,44\n2,44\n");
}
END_TEST

/* Metadata naming a far-away write segment: missing numbers are skipped by listing the directory,
   not one by one; out-of-range numbers count as unparsable. */
START_TEST(test_corrupt_meta_far_segment)
{
    struct diskqueue *dq = open_q("far", 220);
    for (uint32_t i = 0; i < 5; i++)
        put_seq(dq, i, 40);
    ck_assert_int_eq(diskqueue_close(dq), 0);
    spit_str(qpath("far", ".meta.dat"), "5\n0,0\n1000000000000,0\n");

    dq = open_q("far", 220);
    for (uint32_t i = 0; i < 5; i++)
        expect_seq(dq, i, 40);
    put_seq(dq, 5, 40);
    expect_seq(dq, 5, 40);
    ck_assert_int_eq(diskqueue_flush(dq), 0);
    ck_assert(exists(qpath("far", ".1000000000000.dat")));
    ck_assert(!exists(seg("far", 0)));
    ck_assert_int_eq(diskqueue_empty(dq), 0);
    ck_assert(!exists(qpath("far", ".1000000000000.dat")));
    ck_assert_int_eq(diskqueue_close(dq), 0);
    assert_file_text(qpath("far", ".meta.dat"), "0\n1000000000001,0\n1000000000001,0\n");

    spit_str(qpath("far", ".meta.dat"), "5\n0,-4\n-1,0\n");
    dq = open_q("far", 220);
    ck_assert_int_eq(diskqueue_depth(dq), 0);
    ck_assert_int_eq(diskqueue_close(dq), 0);
    assert_file_text(qpath("far", ".meta.dat"), "0\n0,0\n0,0\n");
}
END_TEST

START_TEST(test_flush)
{
    struct diskqueue *dq = open_q("fl", 1000);
    for (uint32_t i = 0; i < 300; i++)
        put_seq(dq, i, 30);
    ck_assert_int_eq(diskqueue_flush(dq), 0);
    assert_file_text(qpath("fl", ".meta.dat"), "300\n0,0\n10,340\n");
    /* flush + pop until a pass yields nothing: every record, in order */
    uint8_t *d;
    size_t n;
    uint32_t got = 0, before;
    do {
        before = got;
        ck_assert_int_eq(diskqueue_flush(dq), 0);
        while (diskqueue_pop(dq, &d, &n)) {
            ck_assert_uint_eq(payload_seq(d), got++);
            free(d);
        }
    } while (got != before);
    ck_assert_uint_eq(got, 300);
    ck_assert_int_eq(diskqueue_close(dq), 0);
}
END_TEST

/* ------------------------------------------------------------------ empty / delete / errors */

START_TEST(test_empty)
{
    make_two_segments("em");
    spit_str(qpath("em", ".000099.dat.bad"), "x");
    struct diskqueue *dq = open_q("em", 220);
    expect_seq(dq, 0, 40);
    put_seq(dq, 10, 40); /* rolls to segment 2 */
    ck_assert(wait_exists(seg("em", 2)));
    ck_assert_int_eq(diskqueue_empty(dq), 0);
    ck_assert_int_eq(diskqueue_depth(dq), 0);
    ck_assert(!exists(seg("em", 0)));
    ck_assert(!exists(seg("em", 1)));
    ck_assert(!exists(seg("em", 2)));
    ck_assert(!exists(qpath("em", ".meta.dat")));
    ck_assert(exists(qpath("em", ".000099.dat.bad")));
    expect_none(dq);
    /* usable afterwards, numbering continues */
    put_seq(dq, 11, 40);
    expect_seq(dq, 11, 40);
    ck_assert_int_eq(diskqueue_close(dq), 0);
    assert_file_text(qpath("em", ".meta.dat"), "0\n3,44\n3,44\n");
}
END_TEST

START_TEST(test_delete)
{
    make_two_segments("dl");
    spit_str(qpath("dl", ".000000.dat.bad"), "x");
    struct diskqueue *dq = open_q("dl", 220);
    put_seq(dq, 10, 40);
    ck_assert_int_eq(diskqueue_delete(dq), 0);
    ck_assert(!exists(seg("dl", 0)));
    ck_assert(!exists(seg("dl", 1)));
    ck_assert(!exists(seg("dl", 2)));
    ck_assert(!exists(qpath("dl", ".meta.dat")));
    ck_assert(exists(qpath("dl", ".000000.dat.bad")));
}
END_TEST

START_TEST(test_write_error_health)
{
    /* a directory where the segment should be makes every write fail */
    struct diskqueue *dq = open_q("we", 1000);
    ck_assert_int_eq(mkdir(seg("we", 0), 0700), 0);
    put_seq(dq, 0, 40); /* accepted, then the write fails */
    char msg[128] = "";
    int64_t deadline = now_ms() + WAIT_MS;
    while (diskqueue_health(dq, msg, sizeof(msg)) == 0 && now_ms() < deadline)
        short_wait();
    ck_assert_int_eq(diskqueue_health(dq, msg, sizeof(msg)), -1);
    ck_assert_str_eq(msg, strerror(EISDIR));
    uint8_t buf[40];
    make_payload(buf, sizeof(buf), 1);
    ck_assert_int_eq(diskqueue_put(dq, buf, sizeof(buf)), -EISDIR);
    ck_assert_int_eq(diskqueue_depth(dq), 1);

    /* the disk recovers: the retry writes the kept record, health clears */
    ck_assert_int_eq(rmdir(seg("we", 0)), 0);
    deadline = now_ms() + WAIT_MS;
    while (diskqueue_health(dq, msg, sizeof(msg)) != 0 && now_ms() < deadline)
        short_wait();
    ck_assert_int_eq(diskqueue_health(dq, msg, sizeof(msg)), 0);
    put_seq(dq, 2, 40);
    expect_seq(dq, 0, 40);
    expect_seq(dq, 2, 40);
    ck_assert_int_eq(diskqueue_close(dq), 0);
}
END_TEST

/* A write failing after part of a batch went out (at a roll): the rest is kept, in order, and
   written to the same places once the disk recovers. */
/* A task that occupies a service worker until released (then retires). */
struct worker_blocker {
    struct dqs_task task;
    int started, release;
};

static int blocker_run(struct dqs_task *t, uint8_t *scratch, size_t len, bool timer_fired)
{
    struct worker_blocker *b = (struct worker_blocker *)t;
    __atomic_store_n(&b->started, 1, __ATOMIC_SEQ_CST);
    while (!__atomic_load_n(&b->release, __ATOMIC_SEQ_CST))
        short_wait();
    return DQS_RUN_RETIRE;
}

static void blocker_retired(struct dqs_task *t)
{
    (void)t;
}

START_TEST(test_write_error_mid_batch)
{
    struct diskqueue *dq = open_q("wm", 100);
    ck_assert_int_eq(mkdir(seg("wm", 1), 0700), 0);
    /* both workers held: the five records form one batch, whatever the scheduling */
    ck_assert_int_eq(diskqueue_flush(dq), 0);
    struct worker_blocker b[2];
    memset(b, 0, sizeof(b));
    for (int i = 0; i < 2; i++) {
        dqs_task_init(&b[i].task, blocker_run, blocker_retired);
        dqs_schedule(svc, &b[i].task);
    }
    for (int i = 0; i < 2; i++)
        while (!__atomic_load_n(&b[i].started, __ATOMIC_SEQ_CST))
            short_wait();
    for (uint32_t i = 0; i < 5; i++)
        put_seq(dq, i, 60); /* 64 bytes each: one record per segment */
    for (int i = 0; i < 2; i++)
        __atomic_store_n(&b[i].release, 1, __ATOMIC_SEQ_CST);
    char msg[128];
    int64_t deadline = now_ms() + WAIT_MS;
    while (diskqueue_health(dq, msg, sizeof(msg)) == 0 && now_ms() < deadline)
        short_wait();
    ck_assert_int_eq(diskqueue_health(dq, msg, sizeof(msg)), -1);
    ck_assert_int_eq(file_size(seg("wm", 0)), 64);
    expect_seq(dq, 0, 60);
    ck_assert_int_eq(diskqueue_depth(dq), 4);

    ck_assert_int_eq(rmdir(seg("wm", 1)), 0);
    for (uint32_t i = 1; i < 5; i++)
        expect_seq(dq, i, 60);
    ck_assert_int_eq(diskqueue_health(dq, msg, sizeof(msg)), 0);
    put_seq(dq, 5, 60);
    expect_seq(dq, 5, 60);
    ck_assert_int_eq(diskqueue_close(dq), 0);
    ck_assert_int_eq(file_size(seg("wm", 5)), 64);
    assert_file_text(qpath("wm", ".meta.dat"), "0\n5,64\n5,64\n");
}
END_TEST

static int ready_calls;
static void on_ready(void *arg)
{
    (void)arg;
    __atomic_add_fetch(&ready_calls, 1, __ATOMIC_SEQ_CST);
}

START_TEST(test_ready_and_sync_timeout)
{
    struct diskqueue_options o = opts("rt", 1000);
    o.sync_every = 1000000;
    o.sync_timeout_ns = 50LL * 1000 * 1000;
    struct diskqueue *dq = diskqueue_open(svc, &o, on_ready, NULL);
    ck_assert_ptr_nonnull(dq);
    put_seq(dq, 0, 30);
    int64_t deadline = now_ms() + WAIT_MS;
    while (__atomic_load_n(&ready_calls, __ATOMIC_SEQ_CST) == 0 && now_ms() < deadline)
        short_wait();
    ck_assert_int_gt(__atomic_load_n(&ready_calls, __ATOMIC_SEQ_CST), 0);
    /* the sync timer writes the metadata without any further activity */
    deadline = now_ms() + WAIT_MS;
    char *m = NULL;
    while (now_ms() < deadline) {
        m = slurp(qpath("rt", ".meta.dat"), NULL);
        if (m)
            break;
        short_wait();
    }
    ck_assert_ptr_nonnull(m);
    ck_assert_str_eq(m, "1\n0,0\n0,34\n");
    free(m);
    expect_seq(dq, 0, 30);
    ck_assert_int_eq(diskqueue_close(dq), 0);
}
END_TEST

/* ------------------------------------------------------------------ volume */

/* Pops a record in place; checks it is record `seq` of `len` bytes. The view stays valid until
   the next pop_view/release. */
static const uint8_t *expect_view(struct diskqueue *dq, uint32_t seq, size_t len)
{
    const uint8_t *v = NULL;
    size_t n = 0;
    int64_t deadline = now_ms() + WAIT_MS;
    while (!diskqueue_pop_view(dq, &v, &n)) {
        ck_assert_msg(now_ms() < deadline, "record %u not popped", seq);
        short_wait();
    }
    ck_assert_uint_eq(n, len);
    ck_assert_uint_eq(payload_seq(v), seq);
    uint8_t *want = malloc(len);
    ck_assert_ptr_nonnull(want);
    make_payload(want, len, seq);
    ck_assert_msg(memcmp(v, want, len) == 0, "record %u: bytes differ", seq);
    free(want);
    return v;
}

static void put_big(struct diskqueue *dq, uint32_t seq, size_t len)
{
    uint8_t *buf = malloc(len);
    ck_assert_ptr_nonnull(buf);
    make_payload(buf, len, seq);
    ck_assert_int_eq(diskqueue_put(dq, buf, len), 0);
    free(buf);
}

/* diskqueue_pop_view: records popped in place, mixed with diskqueue_pop, across segments and
   read chunks, including records larger than a read chunk; a view stays intact while later
   records are read ahead, put, and the queue is emptied; close releases an outstanding view. */
START_TEST(test_pop_view)
{
    enum { SMALL = 3000, BIG = 1024 * 1024 + 26 };
    struct diskqueue *dq = open_q("v", 2 * 1024 * 1024);
    uint32_t seq = 0;
    for (; seq < SMALL; seq++)
        put_seq(dq, seq, 26 + seq % 300);
    put_big(dq, seq++, BIG);
    put_seq(dq, seq++, 100);
    put_big(dq, seq++, BIG - 1);
    uint32_t total = seq;
    ck_assert_int_eq(diskqueue_depth(dq), total);

    const uint8_t *keep = expect_view(dq, 0, 26);
    uint8_t first[26];
    memcpy(first, keep, sizeof(first));
    uint8_t *d;
    size_t n;
    ck_assert(pop_wait(dq, &d, &n)); /* pop does not release the view */
    ck_assert_uint_eq(payload_seq(d), 1);
    free(d);
    for (uint32_t i = 0; i < 50; i++)
        put_seq(dq, total + i, 40);
    ck_assert(memcmp(keep, first, sizeof(first)) == 0);
    for (uint32_t i = 2; i < SMALL; i++) {
        if (i % 3 == 0) {
            ck_assert(pop_wait(dq, &d, &n));
            ck_assert_uint_eq(payload_seq(d), i);
            ck_assert_uint_eq(n, 26 + i % 300);
            free(d);
        } else {
            expect_view(dq, i, 26 + i % 300);
        }
    }
    keep = expect_view(dq, SMALL, BIG);
    expect_view(dq, SMALL + 1, 100);
    expect_view(dq, SMALL + 2, BIG - 1);
    diskqueue_release_view(dq);
    diskqueue_release_view(dq); /* no view: no-op */
    ck_assert_int_eq(diskqueue_depth(dq), 50);

    keep = expect_view(dq, total, 40);
    memcpy(first, keep, sizeof(first));
    ck_assert_int_eq(diskqueue_empty(dq), 0);
    ck_assert(memcmp(keep, first, sizeof(first)) == 0);
    ck_assert_int_eq(diskqueue_depth(dq), 0);
    const uint8_t *v;
    ck_assert(!diskqueue_pop_view(dq, &v, &n));

    put_seq(dq, 7, 30);
    expect_view(dq, 7, 30); /* left outstanding: close releases it */
    ck_assert_int_eq(diskqueue_close(dq), 0);
}
END_TEST

/* A backlog far larger than the read-ahead bounds (records and bytes) is read in order, the
   reader resuming each time the owner has drained half of it. */
START_TEST(test_read_ahead_refill)
{
    enum { N = 3 * DISKQUEUE_READ_AHEAD_RECORDS + 17 };
    struct diskqueue *dq = open_q("ra", 1024 * 1024);
    for (uint32_t i = 0; i < N; i++)
        put_seq(dq, i, 26 + i % 50);
    ck_assert_int_eq(diskqueue_flush(dq), 0);
    for (uint32_t i = 0; i < N; i++)
        expect_view(dq, i, 26 + i % 50);
    for (uint32_t i = 0; i < 2000; i++) /* records of 4 KiB: the byte bound applies */
        put_big(dq, N + i, 4096);
    for (uint32_t i = 0; i < 2000; i++)
        expect_view(dq, N + i, 4096);
    expect_none(dq);
    ck_assert(wait_depth(dq, 0));
    ck_assert_int_eq(diskqueue_close(dq), 0);
}
END_TEST

static bool wait_file_text(const char *p, const char *want)
{
    int64_t deadline = now_ms() + WAIT_MS;
    for (;;) {
        char *got = slurp(p, NULL);
        bool same = got && strcmp(got, want) == 0;
        free(got);
        if (same)
            return true;
        if (now_ms() > deadline)
            return false;
        short_wait();
    }
}

/* Syncs run beside the reads and writes (sync task): with sync-every 10 the metadata follows the
   consumer and the writer without any flush, across rolls, and close still writes the final
   state. */
START_TEST(test_sync_in_background)
{
    struct diskqueue_options o = opts("bg", 200);
    o.sync_every = 10;
    o.sync_timeout_ns = 100LL * NSQ_NS_PER_MS;
    struct diskqueue *dq = diskqueue_open(svc, &o, NULL, NULL);
    ck_assert_ptr_nonnull(dq);
    for (uint32_t i = 0; i < 25; i++)
        put_seq(dq, i, 30); /* 5 records of 34 bytes per segment */
    for (uint32_t i = 0; i < 12; i++)
        expect_seq(dq, i, 30);
    ck_assert(wait_file_text(qpath("bg", ".meta.dat"), "13\n2,68\n4,170\n"));
    ck_assert(wait_gone(seg("bg", 1)));
    for (uint32_t i = 12; i < 25; i++)
        expect_seq(dq, i, 30);
    ck_assert(wait_file_text(qpath("bg", ".meta.dat"), "0\n4,170\n4,170\n"));
    put_seq(dq, 25, 30);
    ck_assert_int_eq(diskqueue_close(dq), 0);
    dq = diskqueue_open(svc, &o, NULL, NULL);
    ck_assert_int_eq(diskqueue_depth(dq), 1);
    expect_seq(dq, 25, 30);
    ck_assert_int_eq(diskqueue_close(dq), 0);
    assert_file_text(qpath("bg", ".meta.dat"), "0\n5,34\n5,34\n");
}
END_TEST

START_TEST(test_million_records)
{
    enum { N = 1000000 };
    struct diskqueue *dq = open_q("big", 1024 * 1024);
    uint8_t buf[32];
    uint32_t next = 0;
    for (uint32_t i = 0; i < N; i++) {
        make_payload(buf, 26 + (i % 7), i);
        ck_assert_int_eq(diskqueue_put(dq, buf, 26 + (i % 7)), 0);
        /* consume as we go, like nsqd */
        uint8_t *d;
        size_t n;
        while (diskqueue_pop(dq, &d, &n)) {
            ck_assert_uint_eq(payload_seq(d), next);
            ck_assert_uint_eq(n, 26 + next % 7);
            next++;
            free(d);
        }
    }
    ck_assert_int_eq(diskqueue_depth(dq), N - next);
    while (next < N) {
        uint8_t *d;
        size_t n;
        ck_assert(pop_wait(dq, &d, &n));
        ck_assert_uint_eq(payload_seq(d), next);
        next++;
        free(d);
    }
    ck_assert_int_eq(diskqueue_depth(dq), 0);
    ck_assert_int_eq(diskqueue_close(dq), 0);
}
END_TEST

/* Random puts, pops, flushes and restarts against a model FIFO: order and depth always agree. */
START_TEST(test_random_model)
{
    static const int64_t sizes[] = {64, 100, 1000, 100000};
    unsigned seed = 12345u + (unsigned)_i;
    enum { OPS = 1500, MAXQ = OPS };
    uint32_t *model = malloc(MAXQ * sizeof(*model));
    size_t *lens = malloc(MAXQ * sizeof(*lens));
    ck_assert(model && lens);
    size_t head = 0, tail = 0;
    uint32_t next_seq = 0;
    int64_t max_bytes = sizes[rand_r(&seed) % 4];
    struct diskqueue *dq = open_q("rm", max_bytes);

    for (int op = 0; op < OPS; op++) {
        int r = rand_r(&seed) % 100;
        if (r < 50) {
            size_t len = 26 + (size_t)(rand_r(&seed) % 100);
            put_seq(dq, next_seq, len);
            model[tail] = next_seq++;
            lens[tail++] = len;
        } else if (r < 88) {
            uint8_t *d;
            size_t n;
            if (diskqueue_pop(dq, &d, &n)) {
                ck_assert_uint_lt(head, tail);
                ck_assert_uint_eq(payload_seq(d), model[head]);
                ck_assert_uint_eq(n, lens[head]);
                head++;
                free(d);
            }
        } else if (r < 93) {
            ck_assert_int_eq(diskqueue_flush(dq), 0);
        } else if (r < 97) {
            ck_assert_int_eq(diskqueue_close(dq), 0);
            dq = open_q("rm", max_bytes);
        } else {
            ck_assert_int_eq(diskqueue_depth(dq), (int64_t)(tail - head));
        }
    }
    ck_assert_int_eq(diskqueue_depth(dq), (int64_t)(tail - head));
    while (head < tail) {
        expect_seq(dq, model[head], lens[head]);
        head++;
    }
    expect_none(dq);
    ck_assert_int_eq(diskqueue_depth(dq), 0);
    ck_assert_int_eq(diskqueue_close(dq), 0);
    free(model);
    free(lens);
}
END_TEST

/* ------------------------------------------------------------------ hand-made vector */

static const uint8_t vec_r1[] = {0x18, 0xea, 0x3e, 0x32, 0xd7, 0x91, 0x60, 0x39, 0x00,
                                 0x00, '1',  '8',  'a',  '3',  'd',  '5',  '8',  'a',
                                 'c',  'a',  '6',  '6',  '9',  '0',  '0',  '0',  'd',
                                 'e',  'f',  'e',  'r',  'r',  'e',  'd'};
static const uint8_t vec_r2[] = {0,   0,   0,   0,   0,   0,   0,   1,   0,   3,   '0', '0', '0',
                                 '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '1'};
static const uint8_t vec_r3[] = {0,   0,   0,   0,   0,   0,   0,   2,   0,   1,
                                 '0', '0', '0', '0', '0', '0', '0', '0', '0', '0',
                                 '0', '0', '0', '0', '0', '2', 'a', 'b', 'c'};

START_TEST(test_vector_read)
{
    copy_dir(VECTOR_DIR, tmpdir);
    struct diskqueue *dq = open_q("vec", 64);
    ck_assert_int_eq(diskqueue_depth(dq), 3);
    const uint8_t *want[] = {vec_r1, vec_r2, vec_r3};
    size_t wlen[] = {sizeof(vec_r1), sizeof(vec_r2), sizeof(vec_r3)};
    for (int i = 0; i < 3; i++) {
        uint8_t *d;
        size_t n;
        ck_assert(pop_wait(dq, &d, &n));
        ck_assert_uint_eq(n, wlen[i]);
        ck_assert_int_eq(memcmp(d, want[i], n), 0);
        free(d);
    }
    expect_none(dq);
    ck_assert_int_eq(diskqueue_close(dq), 0);
    assert_file_text(qpath("vec", ".meta.dat"), "0\n1,63\n1,63\n");
}
END_TEST

START_TEST(test_vector_write)
{
    struct diskqueue *dq = open_q("vec", 64);
    ck_assert_int_eq(diskqueue_put(dq, vec_r1, sizeof(vec_r1)), 0);
    ck_assert_int_eq(diskqueue_put(dq, vec_r2, sizeof(vec_r2)), 0);
    ck_assert_int_eq(diskqueue_put(dq, vec_r3, sizeof(vec_r3)), 0);
    ck_assert_int_eq(diskqueue_close(dq), 0);
    const char *files[] = {".000000.dat", ".000001.dat", ".meta.dat"};
    for (int i = 0; i < 3; i++) {
        char want[1024];
        snprintf(want, sizeof(want), "%s/vec.diskqueue%s", VECTOR_DIR, files[i]);
        assert_files_equal(qpath("vec", files[i]), want);
    }
}
END_TEST

/* ------------------------------------------------------------------ reference data directory */

static cJSON *load_manifest(void)
{
    char *text = slurp(UPSTREAM_DIR "/datadir-manifest.json", NULL);
    ck_assert_ptr_nonnull(text);
    cJSON *j = cJSON_Parse(text);
    free(text);
    ck_assert_ptr_nonnull(j);
    return j;
}

/* Pops every record of queue `name` and compares the message bodies (after the 26-byte header:
   8-byte timestamp, 2-byte attempts, 16-byte ID) with the manifest's list. */
static void expect_bodies(const char *name, const cJSON *bodies, bool first_segment_consumed)
{
    struct diskqueue *dq = open_q(name, 20000);
    ck_assert_int_eq(diskqueue_depth(dq), cJSON_GetArraySize(bodies));
    const cJSON *b;
    cJSON_ArrayForEach(b, bodies)
    {
        uint8_t *d;
        size_t n;
        ck_assert_msg(pop_wait(dq, &d, &n), "%s: missing %s", name, b->valuestring);
        ck_assert_uint_ge(n, 26);
        size_t blen = strlen(b->valuestring);
        ck_assert_msg(n - 26 == blen && memcmp(d + 26, b->valuestring, blen) == 0,
                      "%s: want %s, got %.*s", name, b->valuestring, (int)(n - 26), d + 26);
        ck_assert_int_eq(d[8], 0); /* attempts 0 */
        ck_assert_int_eq(d[9], 0);
        free(d);
    }
    expect_none(dq);
    ck_assert_int_eq(diskqueue_depth(dq), 0);
    ck_assert_int_eq(diskqueue_close(dq), 0);
    ck_assert(exists(seg(name, 0)) != first_segment_consumed);
    ck_assert(!exists(qpath(name, ".000000.dat.bad")));
}

START_TEST(test_upstream_datadir_read)
{
    copy_dir(UPSTREAM_DIR "/datadir", tmpdir);
    cJSON *man = load_manifest();
    cJSON *chans = cJSON_GetObjectItem(cJSON_GetObjectItem(man, "orders"), "channels");
    expect_bodies("orders:billing",
                  cJSON_GetObjectItem(cJSON_GetObjectItem(chans, "billing"), "bodies"), true);
    expect_bodies("orders:audit",
                  cJSON_GetObjectItem(cJSON_GetObjectItem(chans, "audit"), "bodies"), true);
    /* events: one segment, still the write segment, so it stays */
    expect_bodies("events", cJSON_GetObjectItem(cJSON_GetObjectItem(man, "events"), "bodies"),
                  false);
    assert_file_text(qpath("events", ".meta.dat"), "0\n0,1890\n0,1890\n");
    cJSON_Delete(man);

    assert_file_text(qpath("orders:billing", ".meta.dat"), "0\n1,6372\n1,6372\n");
    /* topic "orders": everything consumed; its .bad file is left alone */
    struct diskqueue *dq = open_q("orders", 20000);
    ck_assert_int_eq(diskqueue_depth(dq), 0);
    expect_none(dq);
    ck_assert_int_eq(diskqueue_close(dq), 0);
    ck_assert(exists(qpath("orders", ".000000.dat.bad")));
    assert_file_text(qpath("orders", ".meta.dat"), "0\n1,6372\n1,6372\n");
}
END_TEST

/* Re-writing the reference queue's records with the same max-bytes-per-file gives the same files.
 */
START_TEST(test_upstream_datadir_rewrite)
{
    char src[1024];
    snprintf(src, sizeof(src), "%s/src", tmpdir);
    ck_assert_int_eq(mkdir(src, 0700), 0);
    copy_dir(UPSTREAM_DIR "/datadir", src);

    struct diskqueue_options o = opts("orders:billing", 20000);
    o.data_path = src;
    struct diskqueue *in = diskqueue_open(svc, &o, NULL, NULL);
    ck_assert_ptr_nonnull(in);
    struct diskqueue *out = open_q("orders:billing", 20000);
    for (int i = 0; i < 300; i++) {
        uint8_t *d;
        size_t n;
        ck_assert(pop_wait(in, &d, &n));
        ck_assert_int_eq(diskqueue_put(out, d, n), 0);
        free(d);
    }
    ck_assert_int_eq(diskqueue_close(in), 0);
    ck_assert_int_eq(diskqueue_close(out), 0);

    const char *files[] = {".000000.dat", ".000001.dat", ".meta.dat"};
    for (int i = 0; i < 3; i++) {
        char want[1024];
        snprintf(want, sizeof(want), "%s/datadir/orders:billing.diskqueue%s", UPSTREAM_DIR,
                 files[i]);
        assert_files_equal(qpath("orders:billing", files[i]), want);
    }
}
END_TEST

/* ------------------------------------------------------------------ the I/O service */

struct svc_probe {
    struct dqs_task task; /* first member: the run recovers the probe from the task */
    int runs, fired;      /* written by the runs, read after they are over */
    int64_t due_ns, fired_ns;
    int block_first; /* the first run waits until `release` is set */
    int release, in_run;
};

static int probe_run(struct dqs_task *t, uint8_t *scratch, size_t len, bool timer_fired)
{
    struct svc_probe *p = (struct svc_probe *)t;
    __atomic_store_n(&p->in_run, 1, __ATOMIC_SEQ_CST);
    if (__atomic_add_fetch(&p->runs, 1, __ATOMIC_SEQ_CST) == 1 && p->block_first)
        while (!__atomic_load_n(&p->release, __ATOMIC_SEQ_CST))
            short_wait();
    if (timer_fired) {
        __atomic_store_n(&p->fired_ns, nsq_mono_ns(), __ATOMIC_SEQ_CST);
        __atomic_add_fetch(&p->fired, 1, __ATOMIC_SEQ_CST);
    }
    __atomic_store_n(&p->in_run, 0, __ATOMIC_SEQ_CST);
    return DQS_RUN_KEEP;
}

static void probe_retired(struct dqs_task *t)
{
    (void)t;
}

static bool wait_atomic(int *v, int want)
{
    int64_t deadline = now_ms() + WAIT_MS;
    while (__atomic_load_n(v, __ATOMIC_SEQ_CST) < want) {
        if (now_ms() > deadline)
            return false;
        short_wait();
    }
    return true;
}

/* Many timers in the heap, armed out of order and re-armed earlier: each fires once, not before
   its deadline. */
START_TEST(test_service_timers)
{
    enum { N = 300 };
    struct svc_probe *p = calloc(N, sizeof(*p));
    ck_assert_ptr_nonnull(p);
    int64_t now = nsq_mono_ns();
    for (int i = 0; i < N; i++) {
        dqs_task_init(&p[i].task, probe_run, probe_retired);
        p[i].due_ns = now + (int64_t)((i * 7919) % 200) * 1000 * 1000;
        dqs_arm(svc, &p[i].task, p[i].due_ns + 50LL * 1000 * 1000);
        dqs_arm(svc, &p[i].task, p[i].due_ns + 100LL * 1000 * 1000); /* later: ignored */
    }
    for (int i = 0; i < N; i += 2)
        dqs_arm(svc, &p[i].task, p[i].due_ns); /* earlier: moves up */
    for (int i = 0; i < N; i++) {
        ck_assert(wait_atomic(&p[i].fired, 1));
        int64_t want = p[i].due_ns + (i % 2 ? 50LL * 1000 * 1000 : 0);
        ck_assert_int_ge(__atomic_load_n(&p[i].fired_ns, __ATOMIC_SEQ_CST), want);
    }
    int64_t until = now_ms() + 200;
    while (now_ms() < until)
        short_wait();
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(__atomic_load_n(&p[i].fired, __ATOMIC_SEQ_CST), 1);
        ck_assert_int_eq(__atomic_load_n(&p[i].runs, __ATOMIC_SEQ_CST), 1);
    }
    diskqueue_service_free(svc); /* workers joined: the tasks can go */
    svc = NULL;
    free(p);
}
END_TEST

/* A task scheduled while it runs runs once more afterwards, never twice at once. */
START_TEST(test_service_schedule_while_running)
{
    struct svc_probe p = {.block_first = 1};
    dqs_task_init(&p.task, probe_run, probe_retired);
    dqs_schedule(svc, &p.task);
    ck_assert(wait_atomic(&p.in_run, 1));
    dqs_schedule(svc, &p.task);
    dqs_schedule(svc, &p.task);
    int64_t until = now_ms() + 50;
    while (now_ms() < until)
        short_wait();
    ck_assert_int_eq(__atomic_load_n(&p.runs, __ATOMIC_SEQ_CST), 1);
    __atomic_store_n(&p.release, 1, __ATOMIC_SEQ_CST);
    ck_assert(wait_atomic(&p.runs, 2));
    until = now_ms() + 50;
    while (now_ms() < until)
        short_wait();
    ck_assert_int_eq(__atomic_load_n(&p.runs, __ATOMIC_SEQ_CST), 2);
    diskqueue_service_free(svc); /* workers joined before p goes out of scope */
    svc = NULL;
}
END_TEST

/* Back-pressure: with the I/O thread busy elsewhere, put waits once DISKQUEUE_MAX_PENDING_BYTES
   are pending, and goes on when the queue's data has been written. */
struct putter {
    struct diskqueue *dq;
    int done; /* records put so far */
};

static void *putter_main(void *arg)
{
    struct putter *pt = arg;
    size_t len = MAX_MSG;
    uint8_t *buf = calloc(1, len);
    ck_assert_ptr_nonnull(buf);
    int n = DISKQUEUE_MAX_PENDING_BYTES / MAX_MSG + 2;
    for (int i = 0; i < n; i++) {
        buf[0] = (uint8_t)i;
        ck_assert_int_eq(diskqueue_put(pt->dq, buf, len), 0);
        __atomic_add_fetch(&pt->done, 1, __ATOMIC_SEQ_CST);
    }
    free(buf);
    return NULL;
}

START_TEST(test_pending_bound)
{
    diskqueue_service_free(svc);
    svc = diskqueue_service_new(1);
    ck_assert_ptr_nonnull(svc);
    struct svc_probe blocker = {.block_first = 1};
    dqs_task_init(&blocker.task, probe_run, probe_retired);

    struct diskqueue *dq = open_q("pb", 100 * 1024 * 1024);
    ck_assert_int_eq(diskqueue_flush(dq), 0); /* the queue's first run is over */
    dqs_schedule(svc, &blocker.task);         /* occupies the only I/O thread */
    ck_assert(wait_atomic(&blocker.in_run, 1));

    struct putter pt = {.dq = dq};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, putter_main, &pt), 0);
    int limit = DISKQUEUE_MAX_PENDING_BYTES / (MAX_MSG + 4);
    ck_assert(wait_atomic(&pt.done, limit));
    int64_t until = now_ms() + 200;
    while (now_ms() < until)
        short_wait();
    ck_assert_int_eq(__atomic_load_n(&pt.done, __ATOMIC_SEQ_CST), limit); /* waiting */

    __atomic_store_n(&blocker.release, 1, __ATOMIC_SEQ_CST);
    int total = DISKQUEUE_MAX_PENDING_BYTES / MAX_MSG + 2;
    ck_assert(wait_atomic(&pt.done, total));
    pthread_join(th, NULL);
    for (int i = 0; i < total; i++) {
        uint8_t *d;
        size_t n;
        ck_assert(pop_wait(dq, &d, &n));
        ck_assert_uint_eq(n, MAX_MSG);
        ck_assert_int_eq(d[0], (uint8_t)i);
        free(d);
    }
    ck_assert_int_eq(diskqueue_close(dq), 0);
    diskqueue_service_free(svc); /* workers joined before blocker goes out of scope */
    svc = NULL;
}
END_TEST

/* Peek: collects the sequence numbers of the records it is shown, checking each record's bytes. */
struct peek_seen {
    uint32_t seq[256];
    size_t n;
    size_t stop_after; /* 0 = never stop */
    bool bad;
};

static int peek_collect(const uint8_t *data, size_t len, void *arg)
{
    struct peek_seen *ps = arg;
    uint32_t seq = payload_seq(data);
    uint8_t want[4096];
    if (len > sizeof(want) || make_payload(want, len, seq) != len || memcmp(want, data, len) != 0)
        ps->bad = true;
    if (ps->n < sizeof(ps->seq) / sizeof(ps->seq[0]))
        ps->seq[ps->n] = seq;
    ps->n++;
    return ps->stop_after && ps->n >= ps->stop_after;
}

/* Peeks until `want` records are visible (the reader catches up in the background). */
static void peek_wait(struct diskqueue *dq, size_t max, size_t want, struct peek_seen *ps)
{
    int64_t deadline = now_ms() + WAIT_MS;
    for (;;) {
        memset(ps, 0, sizeof(*ps));
        size_t got = diskqueue_peek(dq, max, peek_collect, ps);
        ck_assert_uint_eq(got, ps->n);
        if (got >= want)
            return;
        ck_assert_msg(now_ms() < deadline, "only %zu of %zu records peeked", got, want);
        short_wait();
    }
}

/* diskqueue_peek shows the next records in pop order across segments, after partial
   consumption, without changing depth or what pop returns; max and an early stop bound it. */
START_TEST(test_peek_order)
{
    enum { TOTAL = 100, POPPED = 10, PEEK = 50 };
    struct diskqueue *dq = open_q("pk", 1024); /* a few records per segment */
    for (uint32_t i = 0; i < TOTAL; i++)
        put_seq(dq, i, 26 + i % 90);
    for (uint32_t i = 0; i < POPPED; i++)
        expect_seq(dq, i, 26 + i % 90);

    struct peek_seen ps;
    peek_wait(dq, PEEK, PEEK, &ps);
    ck_assert_uint_eq(ps.n, PEEK);
    ck_assert(!ps.bad);
    for (uint32_t i = 0; i < PEEK; i++)
        ck_assert_uint_eq(ps.seq[i], POPPED + i);
    ck_assert_int_eq(diskqueue_depth(dq), TOTAL - POPPED);

    memset(&ps, 0, sizeof(ps));
    ck_assert_uint_eq(diskqueue_peek(dq, 0, peek_collect, &ps), 0);
    ps.stop_after = 3;
    ck_assert_uint_eq(diskqueue_peek(dq, PEEK, peek_collect, &ps), 3);
    ck_assert_uint_eq(ps.seq[2], POPPED + 2);

    peek_wait(dq, TOTAL, TOTAL - POPPED, &ps); /* more than are left: all of them */
    ck_assert_uint_eq(ps.n, TOTAL - POPPED);
    for (uint32_t i = POPPED; i < TOTAL; i++)
        expect_seq(dq, i, 26 + i % 90);
    ck_assert_int_eq(diskqueue_depth(dq), 0);
    memset(&ps, 0, sizeof(ps));
    ck_assert_uint_eq(diskqueue_peek(dq, PEEK, peek_collect, &ps), 0);
    ck_assert_int_eq(diskqueue_close(dq), 0);
}
END_TEST

/* Peeking while records are being put and written: every answer is the head of the queue in
   order (never a gap, never a record twice), and peeking moves nothing on disk: after a
   restart the same records come out. */
START_TEST(test_peek_while_writing)
{
    enum { TOTAL = 2000, PEEK = 200 };
    struct diskqueue *dq = open_q("pw", 64 * 1024);
    for (uint32_t i = 0; i < TOTAL; i++) {
        put_seq(dq, i, 26 + i % 200);
        struct peek_seen ps = {0};
        size_t got = diskqueue_peek(dq, PEEK, peek_collect, &ps);
        ck_assert(!ps.bad);
        ck_assert_uint_le(got, i + 1);
        for (size_t k = 0; k < got; k++)
            ck_assert_uint_eq(ps.seq[k], k);
    }
    struct peek_seen ps;
    peek_wait(dq, PEEK, PEEK, &ps);
    ck_assert_int_eq(diskqueue_depth(dq), TOTAL);
    ck_assert_int_eq(diskqueue_close(dq), 0);

    dq = open_q("pw", 64 * 1024);
    ck_assert_int_eq(diskqueue_depth(dq), TOTAL);
    peek_wait(dq, PEEK, PEEK, &ps);
    ck_assert_uint_eq(ps.seq[0], 0);
    ck_assert_uint_eq(ps.seq[PEEK - 1], PEEK - 1);
    for (uint32_t i = 0; i < TOTAL; i++)
        expect_seq(dq, i, 26 + i % 200);
    ck_assert_int_eq(diskqueue_close(dq), 0);
}
END_TEST

/* ------------------------------------------------------------------ completion sequence */

static void synced_cb(void *arg)
{
    __atomic_add_fetch((int *)arg, 1, __ATOMIC_SEQ_CST);
}

static bool wait_synced(struct diskqueue *dq, uint64_t want)
{
    int64_t deadline = now_ms() + WAIT_MS;
    while (diskqueue_synced_seq(dq) < want) {
        if (now_ms() > deadline)
            return false;
        short_wait();
    }
    return true;
}

START_TEST(test_synced_seq)
{
    int calls = 0;
    struct diskqueue_options o = opts("ss", 200);
    o.sync_every = 1;
    o.synced = synced_cb;
    o.synced_arg = &calls;
    struct diskqueue *dq = diskqueue_open(svc, &o, NULL, NULL);
    ck_assert_ptr_nonnull(dq);
    ck_assert_uint_eq(diskqueue_put_seq(dq), 0);
    ck_assert_uint_eq(diskqueue_synced_seq(dq), 0);
    /* across segment rolls (44-byte records, 200-byte segments) */
    for (uint32_t i = 0; i < 10; i++)
        put_seq(dq, i, 40);
    ck_assert_uint_eq(diskqueue_put_seq(dq), 10);
    ck_assert(wait_synced(dq, 10));
    ck_assert_uint_eq(diskqueue_synced_seq(dq), 10); /* never beyond what was put */
    ck_assert_int_gt(__atomic_load_n(&calls, __ATOMIC_SEQ_CST), 0);
    /* synced means in the files: a copy of the directory taken now holds every record */
    char *copy = crash_copy();
    struct diskqueue *cq = open_nosync(copy, "ss", 200);
    for (uint32_t i = 0; i < 10; i++)
        expect_seq(cq, i, 40);
    ck_assert_int_eq(diskqueue_close(cq), 0);
    /* an empty leaves nothing to wait for */
    put_seq(dq, 10, 40);
    ck_assert_int_eq(diskqueue_empty(dq), 0);
    ck_assert_uint_eq(diskqueue_synced_seq(dq), 11);
    ck_assert_int_eq(diskqueue_close(dq), 0);
}
END_TEST

START_TEST(test_synced_seq_sync_every)
{
    /* sync-every 3: records are durable in steps of the policy (or at the sync timeout) */
    struct diskqueue_options o = opts("sn", 1000);
    o.sync_every = 3;
    o.sync_timeout_ns = 60LL * 1000 * 1000 * 1000;
    struct diskqueue *dq = diskqueue_open(svc, &o, NULL, NULL);
    ck_assert_ptr_nonnull(dq);
    put_seq(dq, 0, 40);
    ck_assert_int_eq(diskqueue_flush(dq), 0); /* a flush syncs */
    ck_assert_uint_eq(diskqueue_synced_seq(dq), 1);
    for (uint32_t i = 1; i < 4; i++)
        put_seq(dq, i, 40);
    ck_assert(wait_synced(dq, 4));
    ck_assert_int_eq(diskqueue_close(dq), 0);
}
END_TEST

/* Records accepted but not yet written are shown after the read-ahead ones when nothing lies
   between them: here the I/O threads are held, so the new records stay pending. */
START_TEST(test_peek_pending)
{
    enum { WRITTEN = 3, PENDING = 4 };
    struct diskqueue *dq = open_q("pp", 64 * 1024);
    for (uint32_t i = 0; i < WRITTEN; i++)
        put_seq(dq, i, 40);
    ck_assert_int_eq(diskqueue_flush(dq), 0);
    struct peek_seen ps;
    peek_wait(dq, 16, WRITTEN, &ps);

    struct worker_blocker b[2];
    memset(b, 0, sizeof(b));
    for (int i = 0; i < 2; i++) {
        dqs_task_init(&b[i].task, blocker_run, blocker_retired);
        dqs_schedule(svc, &b[i].task);
    }
    for (int i = 0; i < 2; i++)
        while (!__atomic_load_n(&b[i].started, __ATOMIC_SEQ_CST))
            short_wait();
    for (uint32_t i = WRITTEN; i < WRITTEN + PENDING; i++)
        put_seq(dq, i, 40);
    memset(&ps, 0, sizeof(ps));
    ck_assert_uint_eq(diskqueue_peek(dq, 16, peek_collect, &ps), WRITTEN + PENDING);
    ck_assert(!ps.bad);
    for (uint32_t i = 0; i < WRITTEN + PENDING; i++)
        ck_assert_uint_eq(ps.seq[i], i);
    memset(&ps, 0, sizeof(ps));
    ck_assert_uint_eq(diskqueue_peek(dq, WRITTEN + 1, peek_collect, &ps), WRITTEN + 1);
    for (int i = 0; i < 2; i++)
        __atomic_store_n(&b[i].release, 1, __ATOMIC_SEQ_CST);

    for (uint32_t i = 0; i < WRITTEN + PENDING; i++)
        expect_seq(dq, i, 40);
    ck_assert_int_eq(diskqueue_close(dq), 0);
    diskqueue_service_free(svc); /* workers joined before the blockers go out of scope */
    svc = NULL;
}
END_TEST

static Suite *diskqueue_suite(void)
{
    Suite *s = suite_create("diskqueue");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300); /* the million-record test under ThreadSanitizer */
    tcase_add_test(tc, test_meta_format_parse);
    tcase_add_test(tc, test_meta_store_atomic);
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_size_limits);
    tcase_add_test(tc, test_never_used_meta);
    tcase_add_test(tc, test_rolling_placement);
    tcase_add_test(tc, test_restart_mid_file);
    tcase_add_test(tc, test_restart_after_crash);
    tcase_add_test(tc, test_crash_before_first_sync);
    tcase_add_test(tc, test_crash_stale_meta);
    tcase_add_test(tc, test_crash_after_empty);
    tcase_add_test(tc, test_crash_torn_record);
    tcase_add_test(tc, test_caught_up_then_roll);
    tcase_add_test(tc, test_depth_after_restart);
    tcase_add_test(tc, test_corrupt_bad_length);
    tcase_add_test(tc, test_corrupt_close_before_pop);
    tcase_add_test(tc, test_corrupt_write_segment_then_put);
    tcase_add_test(tc, test_corrupt_huge_length);
    tcase_add_test(tc, test_corrupt_truncated);
    tcase_add_test(tc, test_corrupt_missing_segment);
    tcase_add_test(tc, test_corrupt_meta_garbage);
    tcase_add_test(tc, test_corrupt_read_beyond_write);
    tcase_add_test(tc, test_corrupt_meta_far_segment);
    tcase_add_test(tc, test_flush);
    tcase_add_test(tc, test_empty);
    tcase_add_test(tc, test_delete);
    tcase_add_test(tc, test_write_error_health);
    tcase_add_test(tc, test_write_error_mid_batch);
    tcase_add_test(tc, test_ready_and_sync_timeout);
    tcase_add_test(tc, test_million_records);
    tcase_add_test(tc, test_pop_view);
    tcase_add_test(tc, test_read_ahead_refill);
    tcase_add_test(tc, test_sync_in_background);
    tcase_add_loop_test(tc, test_random_model, 0, 4);
    tcase_add_test(tc, test_vector_read);
    tcase_add_test(tc, test_vector_write);
    tcase_add_test(tc, test_upstream_datadir_read);
    tcase_add_test(tc, test_upstream_datadir_rewrite);
    tcase_add_test(tc, test_service_timers);
    tcase_add_test(tc, test_service_schedule_while_running);
    tcase_add_test(tc, test_pending_bound);
    tcase_add_test(tc, test_peek_order);
    tcase_add_test(tc, test_peek_while_writing);
    tcase_add_test(tc, test_synced_seq);
    tcase_add_test(tc, test_synced_seq_sync_every);
    tcase_add_test(tc, test_peek_pending);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(diskqueue_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
