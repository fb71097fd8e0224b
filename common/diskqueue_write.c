/*
 * diskqueue_write: the I/O side's writer. Pending records go out in as few pwrite calls as the
 * rolling rule of storage.md §2.1 allows, so the files are identical to those written one record
 * at a time; a failed write keeps the records pending and sets the queue's sticky error. Also the
 * sync of §3.2 (fsync + metadata file). See diskqueue_internal.h for the structure and locking.
 */
#include "diskqueue_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diskqueue_meta.h"

int dq_buf_reserve(struct dq_buf *b, size_t need)
{
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < need)
        cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p)
        return -ENOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

void dq_buf_release(struct dq_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

void dq_seg_path(const struct diskqueue *dq, char *out, int64_t file, bool bad)
{
    snprintf(out, dq->path_cap, "%s.%06" PRId64 ".dat%s", dq->base, file, bad ? ".bad" : "");
}

static void errno_text(int err, char *buf, size_t len)
{
    /* _GNU_SOURCE: the GNU strerror_r, which may return a static string instead of filling buf */
    char tmp[DQ_ERRMSG_MAX];
    const char *s = strerror_r(err, tmp, sizeof(tmp));
    snprintf(buf, len, "%s", s);
}

/* ---------------------------------------------------------------- sync */

void dq_publish_synced(struct diskqueue *dq, uint64_t seq)
{
    uint64_t cur = atomic_load(&dq->synced_seq);
    while (cur < seq && !atomic_compare_exchange_weak(&dq->synced_seq, &cur, seq)) {
    }
    if (cur < seq && dq->synced_fn)
        dq->synced_fn(dq->synced_arg);
}

/* fsyncs and closes fds taken from the sync slot. Returns 0 or the first -errno. */
static int dq_fsync_fds(struct diskqueue *dq, const int *fds, size_t n)
{
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (fsync(fds[i]) != 0 && rc == 0) {
            rc = -errno;
            DQ_LOG(dq, DQ_LOG_ERROR, "DISKQUEUE(%s) failed to sync - %s", dq->name, strerror(-rc));
        }
        close(fds[i]);
    }
    return rc;
}

/* The metadata as of now (mu held); starts a new sync-every count. */
static void dq_meta_snapshot_locked(struct diskqueue *dq, struct diskqueue_meta *m)
{
    m->depth = dq->depth - dq->unwritten;
    m->read_file = dq->cons_file;
    m->read_pos = dq->cons_pos;
    m->write_file = dq->wr_file;
    m->write_pos = dq->wr_pos;
    dq->count = 0;
}

/* Waits until the sync task is idle and takes what was posted for it (mu held). The fds taken go
   to fds/nfds (the caller fsyncs or closes them). */
static void dq_sync_quiesce_locked(struct diskqueue *dq, int *fds, size_t *nfds)
{
    while (dq->sync_busy)
        pthread_cond_wait(&dq->sync_cv, &dq->mu);
    memcpy(fds, dq->sync_fds, dq->sync_nfds * sizeof(int));
    *nfds = dq->sync_nfds;
    dq->sync_nfds = 0;
    dq->sync_posted = false;
}

void dq_sync_discard(struct diskqueue *dq)
{
    int fds[DQ_SYNC_FDS];
    size_t n;
    pthread_mutex_lock(&dq->mu);
    dq_sync_quiesce_locked(dq, fds, &n);
    pthread_mutex_unlock(&dq->mu);
    for (size_t i = 0; i < n; i++)
        close(fds[i]);
}

int dq_sync(struct diskqueue *dq)
{
    int fds[DQ_SYNC_FDS];
    size_t n;
    uint64_t written = dq->written_seq; /* the run's own field: nothing is written meanwhile */
    pthread_mutex_lock(&dq->mu);
    dq_sync_quiesce_locked(dq, fds, &n);
    pthread_mutex_unlock(&dq->mu);
    int rc = dq_fsync_fds(dq, fds, n);

    if (dq->wr_fd >= 0 && dq->wr_dirty && fsync(dq->wr_fd) != 0) {
        if (rc == 0)
            rc = -errno;
        DQ_LOG(dq, DQ_LOG_ERROR, "DISKQUEUE(%s) failed to sync - %s", dq->name, strerror(errno));
    } else {
        dq->wr_dirty = false;
    }
    if (rc == 0)
        dq_publish_synced(dq, written);
    struct diskqueue_meta m;
    pthread_mutex_lock(&dq->mu);
    dq_meta_snapshot_locked(dq, &m);
    pthread_mutex_unlock(&dq->mu);

    int mrc = diskqueue_meta_store(dq->meta_path, &m);
    if (mrc != 0) {
        DQ_LOG(dq, DQ_LOG_ERROR, "DISKQUEUE(%s) failed to sync - %s", dq->name, strerror(-mrc));
        if (rc == 0)
            rc = mrc;
    }
    return rc;
}

/*
 * Hands a sync to the sync task: `fd` (owned, segment `file`; -1 for none) joins the files to
 * fsync, the metadata as of now replaces any snapshot not yet stored. When the slot has no room
 * for another file, that file is fsynced here instead.
 */
static void dq_sync_post_fd(struct diskqueue *dq, int fd, int64_t file)
{
    bool sync_here = false;
    pthread_mutex_lock(&dq->mu);
    if (fd >= 0) {
        bool have = false;
        for (size_t i = 0; i < dq->sync_nfds; i++)
            have |= dq->sync_fd_file[i] == file;
        if (have) {
            /* another descriptor of the same file is queued: its fsync covers this one's data */
        } else if (dq->sync_nfds < DQ_SYNC_FDS) {
            dq->sync_fds[dq->sync_nfds] = fd;
            dq->sync_fd_file[dq->sync_nfds] = file;
            dq->sync_nfds++;
            fd = -1;
        } else {
            sync_here = true;
        }
    }
    pthread_mutex_unlock(&dq->mu);
    if (fd >= 0) {
        if (sync_here)
            dq_fsync_fds(dq, &fd, 1);
        else
            close(fd);
    }
    pthread_mutex_lock(&dq->mu);
    dq_meta_snapshot_locked(dq, &dq->sync_meta);
    dq->sync_written = dq->written_seq;
    dq->sync_posted = true;
    pthread_mutex_unlock(&dq->mu);
    dqs_schedule(dq->svc, &dq->sync_task);
}

void dq_sync_async(struct diskqueue *dq)
{
    int fd = -1;
    if (dq->wr_fd >= 0 && dq->wr_dirty) {
        fd = fcntl(dq->wr_fd, F_DUPFD_CLOEXEC, 0);
        if (fd < 0) {
            dq_sync(dq); /* no descriptor to spare: sync here */
            return;
        }
        dq->wr_dirty = false;
    }
    dq_sync_post_fd(dq, fd, dq->wr_file);
}

int dq_sync_task_run(struct dqs_task *t, uint8_t *scratch, size_t scratch_len, bool timer_fired)
{
    struct diskqueue *dq = DQ_CONTAINER_OF(t, struct diskqueue, sync_task);
    int fds[DQ_SYNC_FDS];
    size_t n;
    struct diskqueue_meta m;
    uint64_t written = 0;

    pthread_mutex_lock(&dq->mu);
    bool posted = dq->sync_posted;
    if (posted) {
        memcpy(fds, dq->sync_fds, dq->sync_nfds * sizeof(int));
        n = dq->sync_nfds;
        m = dq->sync_meta;
        written = dq->sync_written;
        dq->sync_nfds = 0;
        dq->sync_posted = false;
        dq->sync_busy = true;
    }
    pthread_mutex_unlock(&dq->mu);

    if (posted) {
        /* the records are durable once their segments are (the metadata only speeds recovery) */
        if (dq_fsync_fds(dq, fds, n) == 0)
            dq_publish_synced(dq, written);
        int mrc = diskqueue_meta_store(dq->meta_path, &m);
        if (mrc != 0)
            DQ_LOG(dq, DQ_LOG_ERROR, "DISKQUEUE(%s) failed to sync - %s", dq->name, strerror(-mrc));
    }

    pthread_mutex_lock(&dq->mu);
    dq->sync_busy = false;
    pthread_cond_broadcast(&dq->sync_cv);
    bool retire = dq->sync_retire;
    pthread_mutex_unlock(&dq->mu);
    return retire ? DQS_RUN_RETIRE : DQS_RUN_KEEP;
}

/* ---------------------------------------------------------------- writing */

void dq_publish_write_pos(struct diskqueue *dq)
{
    pthread_mutex_lock(&dq->mu);
    dq->wr_file_pub = dq->wr_file;
    dq->wr_pos_pub = dq->wr_pos;
    pthread_mutex_unlock(&dq->mu);
}

/* Writes n bytes at wr_pos of the write segment (opened on demand). On error the file is closed so
   that the next attempt re-opens it (storage.md §2.1 step 5). */
static int dq_write_bytes(struct diskqueue *dq, const uint8_t *p, size_t n)
{
    if (dq->wr_fd < 0) {
        dq_seg_path(dq, dq->path_a, dq->wr_file, false);
        dq->wr_fd = open(dq->path_a, O_RDWR | O_CREAT | O_CLOEXEC, DQ_FILE_MODE);
        if (dq->wr_fd < 0)
            return -errno;
    }
    off_t off = (off_t)dq->wr_pos;
    while (n > 0) {
        ssize_t w = pwrite(dq->wr_fd, p, n, off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            int rc = -errno;
            dq_close_fd(&dq->wr_fd);
            return rc;
        }
        p += w;
        n -= (size_t)w;
        off += w;
    }
    return 0;
}

/* Writes one run of records that all belong to the current segment, in one call. */
static int dq_commit_group(struct diskqueue *dq, const uint8_t *p, size_t n, int64_t recs)
{
    if (n == 0)
        return 0;
    int rc = dq_write_bytes(dq, p, n);
    if (rc != 0)
        return rc;
    dq->wr_pos += (int64_t)n;
    dq->wr_dirty = true;
    dq->written_seq += (uint64_t)recs;
    pthread_mutex_lock(&dq->mu);
    dq->unwritten -= recs;
    dq->unwritten_bytes -= n;
    dq->count += recs;
    dq->wr_file_pub = dq->wr_file;
    dq->wr_pos_pub = dq->wr_pos;
    pthread_mutex_unlock(&dq->mu);
    return 0;
}

/* Finishes the write segment (storage.md §2.1 step 1): next number, sync, close the old file. */
static void dq_roll(struct diskqueue *dq)
{
    dq->sealed_file = dq->wr_file;
    dq->sealed_size = dq->wr_pos;
    if (dq->rd_fd >= 0 && dq->rd_fd_file == dq->wr_file)
        dq->rd_size = dq->wr_pos;
    int64_t old_file = dq->wr_file;
    int old_fd = dq->wr_fd;
    bool dirty = dq->wr_dirty;
    dq->wr_fd = -1;
    dq->wr_dirty = false;
    dq->wr_file++;
    dq->wr_pos = 0;
    dq_publish_write_pos(dq);
    /* the finished segment is fsynced (by the sync task) before the metadata naming the new one
       is stored */
    if (old_fd >= 0 && !dirty) {
        close(old_fd);
        old_fd = -1;
    }
    dq_sync_post_fd(dq, old_fd, old_file);
}

/* Records a write error: sticky until a write succeeds, reported by put and diskqueue_health. */
static void dq_set_error(struct diskqueue *dq, int rc)
{
    pthread_mutex_lock(&dq->mu);
    if (dq->err == 0)
        DQ_LOG(dq, DQ_LOG_ERROR, "DISKQUEUE(%s) writing to %s.%06" PRId64 ".dat - %s", dq->name,
               dq->base, dq->wr_file, strerror(-rc));
    dq->err = rc;
    errno_text(-rc, dq->errmsg, sizeof(dq->errmsg));
    pthread_cond_broadcast(&dq->space_cv);
    pthread_mutex_unlock(&dq->mu);
    /* whoever waits for records to be synced learns that they may not be */
    if (dq->synced_fn)
        dq->synced_fn(dq->synced_arg);
}

/*
 * Writes batch[batch_off..]: consecutive records that fit in the current segment go out in one
 * pwrite; the rolling rule of storage.md §2.1 is applied record by record, so the files are the
 * same as if each record had been written alone. On error batch_off stays at the first record not
 * written. Returns 0 or -errno.
 */
static int dq_write_batch(struct diskqueue *dq)
{
    const uint8_t *p = dq->batch.p;
    size_t off = dq->batch_off, gstart = off;
    int64_t grecs = 0, gpos = dq->wr_pos;
    while (off < dq->batch.len) {
        int64_t rec = DQ_LEN_BYTES + (int64_t)nsq_get_be32(p + off);
        if (gpos > 0 && gpos + rec > dq->max_bytes_per_file) {
            int rc = dq_commit_group(dq, p + gstart, off - gstart, grecs);
            if (rc != 0)
                return rc;
            dq->batch_off = gstart = off;
            grecs = 0;
            dq_roll(dq);
            gpos = 0;
        }
        off += (size_t)rec;
        gpos += rec;
        grecs++;
    }
    int rc = dq_commit_group(dq, p + gstart, off - gstart, grecs);
    if (rc == 0)
        dq->batch_off = off;
    return rc;
}

/*
 * Writes everything pending. Records kept from a failed write go first, then what was put since.
 * A failure keeps the unwritten records (in order, ahead of later puts) for the next run, which
 * the retry timer schedules. Returns 0 or the write error.
 */
int dq_write_pending(struct diskqueue *dq)
{
    bool retry = dq->batch.len > 0;
    if (!retry) {
        pthread_mutex_lock(&dq->mu);
        struct dq_buf t = dq->pending;
        dq->pending = dq->batch;
        dq->batch = t;
        dq->pending.len = 0;
        dq->write_sched = false;
        pthread_mutex_unlock(&dq->mu);
        dq->batch_off = 0;
        if (dq->batch.len == 0)
            return 0;
    }

    int rc = dq_write_batch(dq);
    if (rc != 0) {
        dq_set_error(dq, rc);
        return rc;
    }
    dq->batch.len = 0;
    dq->batch_off = 0;
    if (dq->batch.cap > DQ_BUF_KEEP_BYTES)
        dq_buf_release(&dq->batch);
    pthread_mutex_lock(&dq->mu);
    if (dq->err != 0)
        DQ_LOG(dq, DQ_LOG_INFO, "DISKQUEUE(%s) writes succeed again", dq->name);
    dq->err = 0;
    pthread_cond_broadcast(&dq->space_cv);
    pthread_mutex_unlock(&dq->mu);
    return retry ? dq_write_pending(dq) : 0;
}
