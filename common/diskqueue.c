/*
 * diskqueue: segment files + metadata file, byte-compatible with spec/storage.md, with all file
 * I/O on the diskqueue_service threads.
 *
 * Two sides share a queue:
 *   - the owner thread: put appends "<int32 BE length><payload>" to `pending` (exactly the on-disk
 *     record form), pop takes records from the read-ahead ring `ra`;
 *   - the queue's run on an I/O thread (never two at once, see diskqueue_service.h): swaps
 *     `pending` out and writes it in as few write calls as the rolling rule allows, deletes fully
 *     consumed segments, refills `ra`, handles corruption and syncs.
 *
 * This file holds the run (one I/O pass over a queue), the housekeeping of consumed and damaged
 * segments (tail check, empty) and the owner-side API. Writing is in diskqueue_write.c, reading in
 * diskqueue_read.c; the structure, the positions and the locking rules are described in
 * diskqueue_internal.h.
 */
#include "diskqueue_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "diskqueue_meta.h"
#include "nsq_time.h"

static void dq_close_files(struct diskqueue *dq)
{
    dq_close_fd(&dq->wr_fd);
    dq_close_fd(&dq->rd_fd);
    dq->rd_fd_file = -1;
    dq->rd_size = -1;
}

static void waiter_complete(struct dq_waiter *w, int rc)
{
    pthread_mutex_lock(&w->mu);
    w->rc = rc;
    w->done = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* ---------------------------------------------------------------- housekeeping (I/O side) */

static void dq_unlink_segment(struct diskqueue *dq, int64_t file, int *first_err)
{
    dq_seg_path(dq, dq->path_a, file, false);
    if (unlink(dq->path_a) != 0 && errno != ENOENT) {
        int e = errno;
        DQ_LOG(dq, DQ_LOG_ERROR, "DISKQUEUE(%s) failed to remove data file - %s", dq->name,
               strerror(e));
        if (first_err && *first_err == 0)
            *first_err = -e;
    }
}

/* Deletes the segments numbered from..to (none if to < from). */
static void dq_unlink_range(struct diskqueue *dq, int64_t from, int64_t to, int *first_err)
{
    if (to < from)
        return;
    if (dq_range_wider_than(from, to, DQ_SCAN_GAP)) {
        int64_t low;
        dq_scan_segments(dq, from, to, true, &low, NULL, first_err);
        return;
    }
    for (int64_t i = from;; i++) {
        dq_unlink_segment(dq, i, first_err);
        if (i == to)
            break;
    }
}

/* Deletes segments the consumer has moved past. Returns true if any was (storage.md §2.2). */
static bool dq_delete_consumed(struct diskqueue *dq)
{
    pthread_mutex_lock(&dq->mu);
    int64_t cf = dq->cons_file;
    pthread_mutex_unlock(&dq->mu);
    if (dq->del_file >= cf)
        return false;
    dq_unlink_range(dq, dq->del_file, cf - 1, NULL);
    dq->del_file = cf;
    return true;
}

/* Closes files, deletes segments from..wr_file, moves everything to a fresh segment. */
static int dq_skip_to_next_file(struct diskqueue *dq, int64_t from)
{
    int rc = 0;
    dq_close_files(dq);
    dq_unlink_range(dq, from, dq->wr_file, &rc);
    dq->wr_file++;
    dq->wr_pos = 0;
    dq->rd_file = dq->wr_file;
    dq->rd_pos = 0;
    dq->del_file = dq->wr_file;
    pthread_mutex_lock(&dq->mu);
    dq->cons_file = dq->wr_file;
    dq->cons_pos = 0;
    dq->wr_file_pub = dq->wr_file;
    dq->wr_pos_pub = 0;
    dq->depth = dq->unwritten;
    pthread_mutex_unlock(&dq->mu);
    return rc;
}

/* storage.md §4.2: once the reader has caught up, depth must match; a reader beyond the writer
   means broken metadata. Returns true if a sync is needed. */
static bool dq_check_tail(struct diskqueue *dq)
{
    bool caught = !dq_data_available(dq);
    bool beyond =
            dq->rd_file > dq->wr_file || (dq->rd_file == dq->wr_file && dq->rd_pos > dq->wr_pos);
    if (!caught)
        return false;

    pthread_mutex_lock(&dq->mu);
    bool ra_empty = dq->ra_count == 0;
    int64_t depth = dq->depth, expect = dq->unwritten;
    if (ra_empty && depth != expect)
        dq->depth = expect;
    pthread_mutex_unlock(&dq->mu);
    if (!ra_empty)
        return false;

    bool need_sync = false;
    if (depth != expect) {
        if (depth < expect)
            DQ_LOG(dq, DQ_LOG_ERROR,
                   "DISKQUEUE(%s) negative depth at tail (%" PRId64
                   "), metadata corruption, resetting 0...",
                   dq->name, depth - expect);
        else
            DQ_LOG(dq, DQ_LOG_ERROR,
                   "DISKQUEUE(%s) positive depth at tail (%" PRId64 "), data loss, resetting 0...",
                   dq->name, depth - expect);
        need_sync = true;
    }
    if (beyond) {
        DQ_LOG(dq, DQ_LOG_ERROR,
               "DISKQUEUE(%s) readFileNum > writeFileNum or readPos > writePos, "
               "corruption, skipping to next writeFileNum and resetting 0...",
               dq->name);
        dq_skip_to_next_file(dq, dq->rd_file);
        need_sync = true;
    }
    return need_sync;
}

/* Releases every read-ahead record (mu held). */
static void dq_drop_ra_locked(struct diskqueue *dq)
{
    size_t n = dq->ra_count;
    dq->ra_count = 0; /* a chunk released now is not kept as spare */
    for (size_t i = 0; i < n; i++)
        dq_chunk_unref_locked(dq, dq->ra[(dq->ra_head + i) % dq->ra_cap].chunk);
    dq->ra_head = dq->ra_bytes = 0;
}

/* storage.md §3.3 Empty; also drops what is pending or read ahead. */
static int dq_do_empty(struct diskqueue *dq)
{
    pthread_mutex_lock(&dq->mu);
    dq_drop_ra_locked(dq);
    dq->reader_blocked = false;
    dq->error_wait = false;
    dq->pending.len = 0;
    dq->unwritten = 0;
    dq->unwritten_bytes = 0;
    dq->write_sched = false;
    dq->err = 0;
    dq->count = 0;
    dq->depth = 0;
    uint64_t accepted = dq->put_seq;
    pthread_cond_broadcast(&dq->space_cv);
    pthread_mutex_unlock(&dq->mu);
    /* every record accepted so far is gone: none is left to wait for */
    dq->written_seq = accepted;
    dq_publish_synced(dq, accepted);

    dq->batch.len = 0; /* records kept from a failed write */
    dq->batch_off = 0;
    int rc = dq_skip_to_next_file(dq, dq->del_file);
    if (unlink(dq->meta_path) != 0 && errno != ENOENT) {
        int e = errno;
        DQ_LOG(dq, DQ_LOG_ERROR, "DISKQUEUE(%s) failed to remove metadata file - %s", dq->name,
               strerror(e));
        if (rc == 0)
            rc = -e;
    }
    return rc;
}

/* ---------------------------------------------------------------- the run */

/* Close/delete: both tasks retire; the waiter `w` gets `rc` once both have (dq_task_retired). */
static int dq_retire(struct diskqueue *dq, struct dq_waiter *w, int rc)
{
    dq->retire_waiter = w;
    dq->retire_rc = rc;
    pthread_mutex_lock(&dq->mu);
    dq->sync_retire = true;
    pthread_mutex_unlock(&dq->mu);
    dqs_schedule(dq->svc, &dq->sync_task);
    return DQS_RUN_RETIRE;
}

static int dq_run(struct dqs_task *t, uint8_t *scratch, size_t scratch_len, bool timer_fired)
{
    struct diskqueue *dq = DQ_CONTAINER_OF(t, struct diskqueue, task);

    pthread_mutex_lock(&dq->mu);
    enum dq_request req = dq->req;
    struct dq_waiter *w = dq->waiter;
    dq->req = REQ_NONE;
    dq->waiter = NULL;
    pthread_mutex_unlock(&dq->mu);

    if (req == REQ_EMPTY || req == REQ_DELETE) {
        dq_sync_discard(dq); /* no metadata may be stored after the empty removed it */
        int rc = dq_do_empty(dq);
        if (req == REQ_DELETE) {
            dq_close_files(dq);
            return dq_retire(dq, w, rc);
        }
        waiter_complete(w, rc);
        return DQS_RUN_KEEP;
    }

    int wrc = dq_write_pending(dq);
    bool need_sync = false, became_ready = false;

    if (req == REQ_CLOSE) {
        dq_delete_consumed(dq);
        dq_check_tail(dq);
        int rc = dq_sync(dq);
        dq_close_files(dq);
        return dq_retire(dq, w, wrc != 0 ? wrc : rc);
    }

    need_sync |= dq_fill(dq, &became_ready);
    need_sync |= dq_delete_consumed(dq);
    need_sync |= dq_check_tail(dq);

    pthread_mutex_lock(&dq->mu);
    int64_t count = dq->count;
    pthread_mutex_unlock(&dq->mu);
    if ((dq->sync_every > 0 && count >= dq->sync_every) || (timer_fired && count > 0) ||
        req == REQ_FLUSH)
        need_sync = true;
    if (need_sync && req == REQ_FLUSH) {
        dq_sync(dq);
        /* The owner kept popping during the fsync: top the read-ahead up again now rather than
           on the next run. A corruption met here is handled (and synced) by that run. */
        if (dq_fill(dq, &became_ready))
            dqs_schedule(dq->svc, t);
    } else if (need_sync) {
        /* fsync and metadata on the sync task: this queue's reads and writes go on meanwhile,
           and syncs requested while one is under way are merged into the next */
        dq_sync_async(dq);
    }

    if (became_ready && dq->ready)
        dq->ready(dq->ready_arg);
    if (req == REQ_FLUSH)
        waiter_complete(w, wrc);

    pthread_mutex_lock(&dq->mu);
    count = dq->count;
    int err = dq->err;
    pthread_mutex_unlock(&dq->mu);
    int64_t now = nsq_mono_ns();
    if (count > 0)
        dqs_arm(dq->svc, t, now + dq->sync_timeout_ns);
    if (err != 0)
        dqs_arm(dq->svc, t, now + DISKQUEUE_WRITE_RETRY_NS);
    return DQS_RUN_KEEP;
}

/* Called by each of the two tasks once the service has forgotten it; the last one wakes the
   closing thread, which frees dq (so nothing of dq is touched after the decrement). */
static void dq_task_retired(struct diskqueue *dq)
{
    struct dq_waiter *w = dq->retire_waiter;
    int rc = dq->retire_rc;
    if (atomic_fetch_sub(&dq->retire_left, 1) == 1)
        waiter_complete(w, rc);
}

static void dq_retired(struct dqs_task *t)
{
    dq_task_retired(DQ_CONTAINER_OF(t, struct diskqueue, task));
}

static void dq_sync_retired(struct dqs_task *t)
{
    dq_task_retired(DQ_CONTAINER_OF(t, struct diskqueue, sync_task));
}

/* ---------------------------------------------------------------- owner-side API */

static void dq_free(struct diskqueue *dq)
{
    if (!dq)
        return;
    dq_close_files(dq);
    dq_drop_ra_locked(dq); /* no other thread is left */
    dq_chunk_unref_locked(dq, dq->view);
    free(dq->spare);
    free(dq->ra);
    dq_buf_release(&dq->pending);
    dq_buf_release(&dq->batch);
    for (size_t i = 0; i < dq->sync_nfds; i++)
        close(dq->sync_fds[i]);
    pthread_cond_destroy(&dq->sync_cv);
    pthread_cond_destroy(&dq->space_cv);
    pthread_mutex_destroy(&dq->mu);
    free(dq->name);
    free(dq->base);
    free(dq->meta_path);
    free(dq->dir);
    free(dq->prefix);
    free(dq->path_a);
    free(dq->path_b);
    free(dq);
}

static char *str_concat3(const char *a, const char *b, const char *c)
{
    size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
    char *s = malloc(la + lb + lc + 1);
    if (!s)
        return NULL;
    memcpy(s, a, la);
    memcpy(s + la, b, lb);
    memcpy(s + la + lb, c, lc + 1);
    return s;
}

static char *build_base(const char *data_path, const char *name)
{
    if (!data_path || !data_path[0])
        return str_concat3("", name, ".diskqueue");
    size_t dl = strlen(data_path);
    while (dl > 1 && data_path[dl - 1] == '/')
        dl--;
    char *dir = strndup(data_path, dl);
    if (!dir)
        return NULL;
    char *prefix = str_concat3(dir, strcmp(dir, "/") == 0 ? "" : "/", name);
    free(dir);
    if (!prefix)
        return NULL;
    char *base = str_concat3(prefix, ".diskqueue", "");
    free(prefix);
    return base;
}

/* Negative positions or numbers near the int64 limit cannot come from a real queue. */
static bool meta_sane(const struct diskqueue_meta *m)
{
    int64_t v[] = {m->read_file, m->read_pos, m->write_file, m->write_pos};
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
        if (v[i] < 0 || v[i] > DQ_META_LIMIT)
            return false;
    return m->depth >= -DQ_META_LIMIT && m->depth <= DQ_META_LIMIT;
}

/* The segment after `file` that may hold records, up to `to` (to + 1 when none is left). */
static int64_t dq_next_existing(struct diskqueue *dq, int64_t file, int64_t to)
{
    if (file >= to || !dq_range_wider_than(file + 1, to, DQ_SCAN_GAP))
        return file + 1;
    int64_t low;
    return dq_scan_segments(dq, file + 1, to, false, &low, NULL, NULL) ? low : to + 1;
}

/*
 * Sets the positions from the metadata `m` and recovers records written after the last sync
 * (storage.md §3.1): while segment writeFileNum is longer than writePos, writing moves on to a new
 * segment and the reader reads the old one to its real end. The records found that way are added
 * to depth, so that depth counts every record the reader will hand out (an owner may rely on
 * depth > 0 to start reading).
 *
 * Without a metadata file the queue is fresh, unless segments of it exist: a crash before the
 * first sync, or after an Empty (which removes the metadata file) and new writes. Reading then
 * starts at the lowest existing segment and writing goes after the highest, so that no record is
 * skipped or overwritten, and every record found is counted.
 */
static void dq_recover(struct diskqueue *dq, struct diskqueue_meta *m, bool no_meta)
{
    int64_t low, high;
    if (no_meta && dq_scan_segments(dq, 0, DQ_META_LIMIT, false, &low, &high, NULL)) {
        m->read_file = low;
        m->write_file = high;
        DQ_LOG(dq, DQ_LOG_WARN,
               "DISKQUEUE(%s) no metadata file, recovering segments %" PRId64 "-%" PRId64, dq->name,
               low, high);
    }
    dq->depth = m->depth;
    dq->cons_file = dq->rd_file = dq->del_file = m->read_file;
    dq->cons_pos = dq->rd_pos = m->read_pos;
    dq->wr_file = m->write_file;
    dq->wr_pos = m->write_pos;

    /* Repeated while the next segment already holds data (only possible when the metadata was
       lost or damaged), so existing records are never overwritten. */
    struct stat st;
    for (;;) {
        dq_seg_path(dq, dq->path_a, dq->wr_file, false);
        if (stat(dq->path_a, &st) != 0 || st.st_size <= dq->wr_pos)
            break;
        DQ_LOG(dq, DQ_LOG_WARN,
               "DISKQUEUE(%s) %s metadata writePos %" PRId64 " < file size of %" PRId64
               ", skipping to new file",
               dq->name, dq->path_a, dq->wr_pos, (int64_t)st.st_size);
        dq->wr_file++;
        dq->wr_pos = 0;
    }

    /* Records the metadata does not count: those of every segment without metadata, else those
       after the old writePos. */
    int64_t from = no_meta ? m->read_file : m->write_file;
    int64_t found = 0;
    for (int64_t f = from; f < dq->wr_file; f = dq_next_existing(dq, f, dq->wr_file - 1)) {
        if (f < m->read_file)
            continue;
        int64_t start = f == m->write_file ? m->write_pos : 0;
        if (f == m->read_file && m->read_pos > start)
            start = m->read_pos;
        found += dq_count_records(dq, f, start);
    }
    if (found > 0) {
        DQ_LOG(dq, DQ_LOG_WARN,
               "DISKQUEUE(%s) %" PRId64
               " records after the metadata's write position, depth %" PRId64 " -> %" PRId64,
               dq->name, found, dq->depth, dq->depth + found);
        dq->depth += found;
    }
}

struct diskqueue *diskqueue_open(struct diskqueue_service *s, const struct diskqueue_options *o,
                                 diskqueue_ready_fn ready, void *arg)
{
    if (!s || !o || !o->name || !o->name[0] || o->max_bytes_per_file <= 0 || o->min_msg_size < 0 ||
        o->max_msg_size < o->min_msg_size)
        return NULL;
    struct diskqueue *dq = calloc(1, sizeof(*dq));
    if (!dq)
        return NULL;
    pthread_mutex_init(&dq->mu, NULL);
    pthread_cond_init(&dq->space_cv, NULL);
    pthread_cond_init(&dq->sync_cv, NULL);
    atomic_init(&dq->retire_left, 2);
    dq->wr_fd = dq->rd_fd = -1;
    dq->rd_fd_file = -1;
    dq->rd_size = -1;
    dq->sealed_file = -1;
    dq->svc = s;
    dq->ready = ready;
    dq->ready_arg = arg;
    dq->synced_fn = o->synced;
    dq->synced_arg = o->synced_arg;
    atomic_init(&dq->synced_seq, 0);
    dq->max_bytes_per_file = o->max_bytes_per_file;
    dq->min_msg_size = o->min_msg_size;
    dq->max_msg_size = o->max_msg_size;
    dq->sync_every = o->sync_every;
    dq->sync_timeout_ns = o->sync_timeout_ns > 0 ? o->sync_timeout_ns : DQ_DEFAULT_SYNC_TIMEOUT_NS;
    dqs_task_init(&dq->task, dq_run, dq_retired);
    dqs_task_init(&dq->sync_task, dq_sync_task_run, dq_sync_retired);

    dq->name = strdup(o->name);
    dq->base = build_base(o->data_path, o->name);
    if (!dq->name || !dq->base)
        goto err;
    dq->meta_path = str_concat3(dq->base, ".meta.dat", "");
    dq->prefix = str_concat3(o->name, ".diskqueue.", "");
    dq->dir = strdup(o->data_path && o->data_path[0] ? o->data_path : ".");
    dq->path_cap = strlen(dq->base) + DQ_PATH_SUFFIX_MAX;
    dq->path_a = malloc(dq->path_cap);
    dq->path_b = malloc(dq->path_cap);
    if (!dq->meta_path || !dq->prefix || !dq->dir || !dq->path_a || !dq->path_b)
        goto err;

    struct diskqueue_meta m;
    int rc = diskqueue_meta_load(dq->meta_path, &m);
    if (rc != 0 && rc != -ENOENT)
        DQ_LOG(dq, DQ_LOG_ERROR, "DISKQUEUE(%s) failed to retrieveMetaData - %s", dq->name,
               rc == -EINVAL ? "unexpected content" : strerror(-rc));
    if (!meta_sane(&m)) {
        DQ_LOG(dq, DQ_LOG_ERROR, "DISKQUEUE(%s) metadata out of range, starting from 0", dq->name);
        memset(&m, 0, sizeof(m));
    }
    dq_recover(dq, &m, rc == -ENOENT);
    dq->wr_file_pub = dq->wr_file;
    dq->wr_pos_pub = dq->wr_pos;

    dqs_schedule(s, &dq->task); /* first run: read ahead, tail check */
    return dq;

err:
    dq_free(dq);
    return NULL;
}

int diskqueue_putv(struct diskqueue *dq, const struct iovec *iov, int iovcnt)
{
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++)
        total += iov[i].iov_len;
    if (total < (size_t)dq->min_msg_size || total > (size_t)dq->max_msg_size)
        return -EINVAL;
    size_t rec = DQ_LEN_BYTES + total;

    pthread_mutex_lock(&dq->mu);
    while (dq->err == 0 && dq->unwritten_bytes > 0 &&
           dq->unwritten_bytes + rec > DISKQUEUE_MAX_PENDING_BYTES)
        pthread_cond_wait(&dq->space_cv, &dq->mu);
    int rc = dq->err;
    if (rc == 0)
        rc = dq_buf_reserve(&dq->pending, dq->pending.len + rec);
    if (rc != 0) {
        pthread_mutex_unlock(&dq->mu);
        return rc;
    }
    uint8_t *p = dq->pending.p + dq->pending.len;
    nsq_put_be32(p, (uint32_t)total);
    p += DQ_LEN_BYTES;
    for (int i = 0; i < iovcnt; i++) {
        if (iov[i].iov_len)
            memcpy(p, iov[i].iov_base, iov[i].iov_len);
        p += iov[i].iov_len;
    }
    dq->pending.len += rec;
    dq->unwritten_bytes += rec;
    dq->unwritten++;
    dq->put_seq++;
    dq->depth++;
    bool sched = !dq->write_sched;
    dq->write_sched = true;
    pthread_mutex_unlock(&dq->mu);

    if (sched)
        dqs_schedule(dq->svc, &dq->task);
    return 0;
}

uint64_t diskqueue_put_seq(struct diskqueue *dq)
{
    return dq->put_seq; /* written by this (the owner) thread only */
}

uint64_t diskqueue_synced_seq(struct diskqueue *dq)
{
    return atomic_load(&dq->synced_seq);
}

int diskqueue_put(struct diskqueue *dq, const void *data, size_t len)
{
    struct iovec iov = {.iov_base = (void *)data, .iov_len = len};
    return diskqueue_putv(dq, &iov, 1);
}

/*
 * Takes the head record out of the ring and moves the consumer position past it (mu held,
 * ra_count > 0). The record's chunk reference passes to the caller. Returns true if the I/O side
 * must run (segment finished, sync due, refill, error or tail handling).
 */
static bool dq_take_locked(struct diskqueue *dq, struct dq_rec *out)
{
    struct dq_rec rec = dq->ra[dq->ra_head];
    dq->ra_head = (dq->ra_head + 1) % dq->ra_cap;
    dq->ra_count--;
    dq->ra_bytes -= rec.len;

    /* a segment fully consumed: the run deletes it and syncs */
    bool sched = rec.next_file != dq->cons_file;
    dq->cons_file = rec.next_file;
    dq->cons_pos = rec.next_pos;
    dq->depth--;
    dq->count++;
    /* count == 1: the run arms the sync timer; sync_every: the run syncs */
    if (dq->count == 1 || dq->count == dq->sync_every)
        sched = true;
    if (dq->error_wait && dq->ra_count == 0) {
        dq->error_wait = false;
        sched = true;
    }
    if (dq->reader_blocked && dq->ra_count <= DQ_RA_LOW_RECORDS &&
        dq->ra_bytes <= DQ_RA_LOW_BYTES) {
        dq->reader_blocked = false;
        sched = true;
    }
    /* caught up with a depth that does not add up: the run corrects it (tail check) */
    if (dq->ra_count == 0 && dq->cons_file == dq->wr_file_pub && dq->cons_pos == dq->wr_pos_pub &&
        dq->depth != dq->unwritten)
        sched = true;
    *out = rec;
    return sched;
}

/* The ring went empty: an idle queue keeps no spare buffer (returned for the caller to free). */
static struct dq_chunk *dq_idle_spare_locked(struct diskqueue *dq)
{
    struct dq_chunk *c = NULL;
    if (dq->ra_count == 0) {
        c = dq->spare;
        dq->spare = NULL;
    }
    return c;
}

int diskqueue_pop(struct diskqueue *dq, uint8_t **data, size_t *len)
{
    pthread_mutex_lock(&dq->mu);
    if (dq->ra_count == 0) {
        pthread_mutex_unlock(&dq->mu);
        return 0;
    }
    const struct dq_rec *head = &dq->ra[dq->ra_head];
    uint8_t *copy = malloc(head->len > 0 ? head->len : 1);
    if (!copy) {
        pthread_mutex_unlock(&dq->mu);
        return 0; /* out of memory: the record stays at the head */
    }
    memcpy(copy, head->data, head->len);
    struct dq_rec rec;
    bool sched = dq_take_locked(dq, &rec);
    dq_chunk_unref_locked(dq, rec.chunk);
    struct dq_chunk *idle = dq_idle_spare_locked(dq);
    pthread_mutex_unlock(&dq->mu);

    free(idle);
    if (sched)
        dqs_schedule(dq->svc, &dq->task);
    *data = copy;
    *len = rec.len;
    return 1;
}

int diskqueue_pop_view(struct diskqueue *dq, const uint8_t **data, size_t *len)
{
    pthread_mutex_lock(&dq->mu);
    dq_chunk_unref_locked(dq, dq->view);
    dq->view = NULL;
    if (dq->ra_count == 0) {
        struct dq_chunk *idle = dq_idle_spare_locked(dq);
        pthread_mutex_unlock(&dq->mu);
        free(idle);
        return 0;
    }
    struct dq_rec rec;
    bool sched = dq_take_locked(dq, &rec);
    dq->view = rec.chunk;
    pthread_mutex_unlock(&dq->mu);

    if (sched)
        dqs_schedule(dq->svc, &dq->task);
    *data = rec.data;
    *len = rec.len;
    return 1;
}

void diskqueue_release_view(struct diskqueue *dq)
{
    pthread_mutex_lock(&dq->mu);
    dq_chunk_unref_locked(dq, dq->view);
    dq->view = NULL;
    struct dq_chunk *idle = dq_idle_spare_locked(dq);
    pthread_mutex_unlock(&dq->mu);
    free(idle);
}

int64_t diskqueue_depth(struct diskqueue *dq)
{
    pthread_mutex_lock(&dq->mu);
    int64_t d = dq->depth;
    pthread_mutex_unlock(&dq->mu);
    return d;
}

int diskqueue_health(struct diskqueue *dq, char *buf, size_t len)
{
    pthread_mutex_lock(&dq->mu);
    int err = dq->err;
    if (err != 0 && buf && len > 0)
        snprintf(buf, len, "%s", dq->errmsg);
    pthread_mutex_unlock(&dq->mu);
    return err != 0 ? -1 : 0;
}

/* Hands a request to the I/O side and waits for it. */
static int dq_request(struct diskqueue *dq, enum dq_request req)
{
    struct dq_waiter w = {.done = false, .rc = 0};
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);

    pthread_mutex_lock(&dq->mu);
    dq->req = req;
    dq->waiter = &w;
    pthread_mutex_unlock(&dq->mu);
    dqs_schedule(dq->svc, &dq->task);

    pthread_mutex_lock(&w.mu);
    while (!w.done)
        pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    pthread_cond_destroy(&w.cv);
    pthread_mutex_destroy(&w.mu);
    return w.rc;
}

int diskqueue_flush(struct diskqueue *dq)
{
    return dq_request(dq, REQ_FLUSH);
}

int diskqueue_empty(struct diskqueue *dq)
{
    return dq_request(dq, REQ_EMPTY);
}

int diskqueue_close(struct diskqueue *dq)
{
    if (!dq)
        return 0;
    int rc = dq_request(dq, REQ_CLOSE);
    dq_free(dq);
    return rc;
}

int diskqueue_delete(struct diskqueue *dq)
{
    if (!dq)
        return 0;
    int rc = dq_request(dq, REQ_DELETE);
    dq_free(dq);
    return rc;
}
