/*
 * libFuzzer target for the diskqueue reader: arbitrary metadata and segment files, as a crash or a
 * damaged disk could leave them, must never crash, hang or lose the queue's own later writes.
 *
 * Input: byte 0 holds options (bit 0-1: number of segment files, bit 2-3: max-bytes-per-file,
 * bit 4: no metadata file, bit 5: sync after every write). The rest is split on the marker
 * "|SEG|": part 0 is the metadata text, parts 1.. are segments 000000, 000001, ...
 *
 * Each input: the files are laid out in a scratch directory, the queue is opened and drained
 * (every record must have a valid size, at most one record per 30 bytes of data), then records of
 * our own are put and must come back exactly, in order, with depth 0 afterwards; finally the queue
 * is closed and reopened and must be empty. Any violation aborts.
 */
#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "diskqueue.h"

#define FUZZ_MIN_MSG  26
#define FUZZ_MAX_MSG  (26 + 256)
#define FUZZ_OWN_RECS 5
#define FUZZ_MARKER   "|SEG|"
#define FUZZ_MAX_SEGS 3

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

static const int64_t max_bytes_choices[] = {64, 128, 1000, 100 * 1024 * 1024};

static struct diskqueue_service *svc;
static char dir[64];

static void clear_dir(void)
{
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    struct dirent *e;
    char p[512];
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2])))
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
}

static void write_file(const char *name, const uint8_t *p, size_t n)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    CHECK(fwrite(p, 1, n, f) == n);
    fclose(f);
}

/* Pops until a full I/O pass yields nothing; returns the number of records. */
static size_t drain(struct diskqueue *dq, const uint8_t *expect_seq_base, size_t expect_n)
{
    size_t got = 0, before;
    do {
        before = got;
        diskqueue_flush(dq);
        uint8_t *rec;
        size_t len;
        while (diskqueue_pop(dq, &rec, &len)) {
            CHECK(len >= FUZZ_MIN_MSG && len <= FUZZ_MAX_MSG);
            if (expect_seq_base) {
                CHECK(got < expect_n);
                CHECK(len == FUZZ_MIN_MSG + got);
                CHECK(rec[0] == expect_seq_base[0] && rec[1] == (uint8_t)got);
            }
            free(rec);
            got++;
        }
    } while (got != before);
    return got;
}

static void remove_dir(void)
{
    clear_dir();
    rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!svc) {
        snprintf(dir, sizeof(dir), "/tmp/fuzz_diskqueue.XXXXXX");
        CHECK(mkdtemp(dir) != NULL);
        atexit(remove_dir);
        svc = diskqueue_service_new(2);
        CHECK(svc != NULL);
    }
    if (size < 1)
        return 0;
    uint8_t flags = data[0];
    size_t nsegs = flags & 3;
    int64_t max_bytes = max_bytes_choices[(flags >> 2) & 3];
    bool no_meta = flags & 0x10;
    bool sync_each = flags & 0x20;
    data++;
    size--;

    clear_dir();
    /* split into metadata and segments */
    const uint8_t *parts[FUZZ_MAX_SEGS + 1];
    size_t lens[FUZZ_MAX_SEGS + 1], nparts = 0, seg_bytes = 0;
    const uint8_t *p = data, *end = data + size;
    size_t ml = strlen(FUZZ_MARKER);
    while (nparts <= nsegs) {
        const uint8_t *m = NULL;
        for (const uint8_t *q = p; q + ml <= end; q++)
            if (memcmp(q, FUZZ_MARKER, ml) == 0) {
                m = q;
                break;
            }
        const uint8_t *stop = m ? m : end;
        parts[nparts] = p;
        lens[nparts] = (size_t)(stop - p);
        nparts++;
        if (!m)
            break;
        p = m + ml;
    }
    if (!no_meta && nparts > 0)
        write_file("f.diskqueue.meta.dat", parts[0], lens[0]);
    for (size_t i = 1; i < nparts; i++) {
        char name[64];
        snprintf(name, sizeof(name), "f.diskqueue.%06zu.dat", i - 1);
        write_file(name, parts[i], lens[i]);
        seg_bytes += lens[i];
    }

    struct diskqueue_options o = {
            .name = "f",
            .data_path = dir,
            .max_bytes_per_file = max_bytes,
            .min_msg_size = FUZZ_MIN_MSG,
            .max_msg_size = FUZZ_MAX_MSG,
            .sync_every = sync_each ? 1 : 2500,
            .sync_timeout_ns = 2000LL * 1000 * 1000,
    };
    struct diskqueue *dq = diskqueue_open(svc, &o, NULL, NULL);
    CHECK(dq != NULL);
    size_t n = drain(dq, NULL, 0);
    CHECK(n <= seg_bytes / (4 + FUZZ_MIN_MSG));
    CHECK(diskqueue_depth(dq) == 0);

    /* our own records always come back, in order */
    uint8_t rec[FUZZ_MIN_MSG + FUZZ_OWN_RECS];
    memset(rec, 0xab, sizeof(rec));
    for (size_t i = 0; i < FUZZ_OWN_RECS; i++) {
        rec[1] = (uint8_t)i;
        CHECK(diskqueue_put(dq, rec, FUZZ_MIN_MSG + i) == 0);
    }
    CHECK(diskqueue_depth(dq) == FUZZ_OWN_RECS);
    CHECK(drain(dq, rec, FUZZ_OWN_RECS) == FUZZ_OWN_RECS);
    CHECK(diskqueue_depth(dq) == 0);
    CHECK(diskqueue_close(dq) == 0);

    /* drained stays drained across a restart */
    dq = diskqueue_open(svc, &o, NULL, NULL);
    CHECK(dq != NULL);
    CHECK(diskqueue_depth(dq) == 0);
    CHECK(drain(dq, NULL, 0) == 0);
    CHECK(diskqueue_close(dq) == 0);
    return 0;
}
