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
 * Positions. The writer's position (wr_file, wr_pos) and the read-ahead cursor (rd_file, rd_pos)
 * belong to the I/O side. The consumer position (cons_file, cons_pos) is what the reference
 * implementation calls readFileNum/readPos: the position after the last record handed out by pop.
 * It is what the metadata file stores, so records read ahead but not popped are read again after a
 * restart. Each read-ahead record carries the position that follows it; pop moves cons there.
 * Invariant: cons <= rd <= wr, and cons == rd whenever `ra` is empty. When the reader jumps to the
 * next segment (end of a completed segment, or corruption) the jump is attached to the last record
 * in `ra`, or applied to cons directly when `ra` is empty, so that cons always names a real record
 * boundary.
 *
 * Locking: `mu` guards the fields marked (mu). I/O-side fields are touched only inside a run. The
 * service mutex is never taken while `mu` is held.
 */
#include "diskqueue.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <dirent.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "diskqueue_meta.h"

#define DQ_FILE_MODE 0600
#define DQ_LEN_BYTES 4
/* Room for ".%06d.dat.bad" with any int64 file number. */
#define DQ_PATH_SUFFIX_MAX 40
#define DQ_ERRMSG_MAX      128
/* Read-ahead refill starts again once the ring is down to half. */
#define DQ_RA_LOW_RECORDS (DISKQUEUE_READ_AHEAD_RECORDS / 2)
#define DQ_RA_LOW_BYTES   (DISKQUEUE_READ_AHEAD_BYTES / 2)
#define DQ_RA_INITIAL_CAP 16
/* Records parsed from one read chunk before they are handed to the ring under the lock. */
#define DQ_RD_BATCH 64
/* Smallest read chunk (the record count bound alone would read too little for small records). */
#define DQ_RD_MIN_CHUNK 4096
/* A write buffer larger than this is released after its batch is written. */
#define DQ_BUF_KEEP_BYTES          (1024 * 1024)
#define DQ_DEFAULT_SYNC_TIMEOUT_NS (2000LL * 1000 * 1000)
/* Segment number ranges wider than this are handled by listing the directory instead of trying
   every number (a corrupt metadata file may name segment 10^15). */
#define DQ_SCAN_GAP 64
/* Metadata numbers beyond this are treated as corrupt, so arithmetic on them cannot overflow. */
#define DQ_META_LIMIT (INT64_MAX / 4)

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

enum dq_request { REQ_NONE, REQ_FLUSH, REQ_EMPTY, REQ_CLOSE, REQ_DELETE };

struct dq_buf {
    uint8_t *p;
    size_t len, cap;
};

/* One read-ahead record; `data` is malloc'd and handed to the popper. */
struct dq_rec {
    uint8_t *data;
    size_t len;
    int64_t next_file, next_pos;
};

/* A synchronous request's rendezvous, on the requesting thread's stack. */
struct dq_waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    int rc;
};

struct diskqueue {
    struct dqs_task task; /* scheduling state: service mutex */
    struct diskqueue_service *svc;

    /* immutable after open */
    char *name;
    char *base;      /* "<data_path>/<name>.diskqueue" */
    char *meta_path; /* base + ".meta.dat" */
    char *dir;       /* directory holding the files ("." for the current one) */
    char *prefix;    /* "<name>.diskqueue.": segment file names start with it */
    size_t path_cap;
    int64_t max_bytes_per_file;
    int32_t min_msg_size, max_msg_size;
    int64_t sync_every, sync_timeout_ns;
    diskqueue_ready_fn ready;
    void *ready_arg;

    pthread_mutex_t mu;
    pthread_cond_t space_cv; /* signalled when pending bytes were written or an error appeared */

    /* (mu) write side */
    struct dq_buf pending;
    size_t unwritten_bytes; /* bytes in pending + the batch being written */
    int64_t unwritten;      /* records in pending + the batch being written */
    bool write_sched;       /* a run will pick up pending */
    int64_t wr_file_pub;    /* copy of wr_file/wr_pos for pop's catch-up test */
    int64_t wr_pos_pub;
    int err; /* sticky write error (-errno), 0 when the last write succeeded */
    char errmsg[DQ_ERRMSG_MAX];

    /* (mu) read side */
    struct dq_rec *ra;
    size_t ra_cap, ra_head, ra_count, ra_bytes;
    bool reader_blocked; /* the reader stopped because ra was full */
    bool error_wait;     /* the reader met a read error: handle it once ra is empty */
    int64_t cons_file, cons_pos;

    /* (mu) accounting and requests */
    int64_t depth;
    int64_t count; /* writes + records handed out since the last sync */
    enum dq_request req;
    struct dq_waiter *waiter;

    /* I/O side: touched only inside a run (and by open/free, when no run can happen) */
    struct dq_buf batch;
    int wr_fd;
    bool wr_dirty; /* written since the last fsync */
    int64_t wr_file, wr_pos;
    int rd_fd;
    int64_t rd_fd_file; /* segment rd_fd is open on */
    int64_t rd_size;    /* size of that segment once it is completed, -1 unknown */
    int64_t rd_file, rd_pos;
    int64_t sealed_file; /* last segment this process rolled away from, and its end */
    int64_t sealed_size;
    int64_t del_file;  /* lowest segment number not yet deleted after consumption */
    size_t rd_avg_rec; /* on-disk size of recently read records, to size read chunks */
    struct dq_waiter *retire_waiter;
    int retire_rc;
    char *path_a, *path_b;
};

/* ---------------------------------------------------------------- helpers */

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static int buf_reserve(struct dq_buf *b, size_t need)
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

static void buf_release(struct dq_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

static void seg_path(const struct diskqueue *dq, char *out, int64_t file, bool bad)
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

#define DQ_LOG(dq, level, ...) diskqueue_service_logf((dq)->svc, (level), __VA_ARGS__)

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void dq_close_files(struct diskqueue *dq)
{
    close_fd(&dq->wr_fd);
    close_fd(&dq->rd_fd);
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

/* ---------------------------------------------------------------- sync (I/O side) */

/* fsync the write segment, then persist the metadata (storage.md §3.2). */
static int dq_sync(struct diskqueue *dq)
{
    int rc = 0;
    if (dq->wr_fd >= 0 && dq->wr_dirty && fsync(dq->wr_fd) != 0) {
        rc = -errno;
        DQ_LOG(dq, DQ_LOG_ERROR, "DISKQUEUE(%s) failed to sync - %s", dq->name, strerror(-rc));
    }
    if (rc == 0)
        dq->wr_dirty = false;
    struct diskqueue_meta m;
    pthread_mutex_lock(&dq->mu);
    m.depth = dq->depth - dq->unwritten;
    m.read_file = dq->cons_file;
    m.read_pos = dq->cons_pos;
    dq->count = 0;
    pthread_mutex_unlock(&dq->mu);
    m.write_file = dq->wr_file;
    m.write_pos = dq->wr_pos;

    int mrc = diskqueue_meta_store(dq->meta_path, &m);
    if (mrc != 0) {
        DQ_LOG(dq, DQ_LOG_ERROR, "DISKQUEUE(%s) failed to sync - %s", dq->name, strerror(-mrc));
        if (rc == 0)
            rc = mrc;
    }
    return rc;
}

/* ---------------------------------------------------------------- writing (I/O side) */

static void dq_publish_write_pos(struct diskqueue *dq)
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
        seg_path(dq, dq->path_a, dq->wr_file, false);
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
            close_fd(&dq->wr_fd);
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
    dq->wr_file++;
    dq->wr_pos = 0;
    dq_publish_write_pos(dq);
    dq_sync(dq);
    close_fd(&dq->wr_fd);
}

/* Puts the unwritten tail of the batch back in front of pending and records the error. */
static void dq_write_failed(struct diskqueue *dq, size_t from, int rc)
{
    size_t rem = dq->batch.len - from;
    memmove(dq->batch.p, dq->batch.p + from, rem);
    dq->batch.len = rem;

    pthread_mutex_lock(&dq->mu);
    if (dq->pending.len > 0) {
        if (buf_reserve(&dq->batch, rem + dq->pending.len) == 0) {
            memcpy(dq->batch.p + rem, dq->pending.p, dq->pending.len);
            dq->batch.len += dq->pending.len;
        } else {
            DQ_LOG(dq, DQ_LOG_ERROR, "DISKQUEUE(%s) out of memory keeping failed writes", dq->name);
        }
    }
    struct dq_buf t = dq->pending;
    dq->pending = dq->batch;
    dq->batch = t;
    dq->batch.len = 0;
    if (dq->err == 0)
        DQ_LOG(dq, DQ_LOG_ERROR, "DISKQUEUE(%s) writing to %s.%06" PRId64 ".dat - %s", dq->name,
               dq->base, dq->wr_file, strerror(-rc));
    dq->err = rc;
    errno_text(-rc, dq->errmsg, sizeof(dq->errmsg));
    pthread_cond_broadcast(&dq->space_cv);
    pthread_mutex_unlock(&dq->mu);
}

/*
 * Writes everything pending. Consecutive records that fit in the current segment go out in one
 * pwrite; the rolling rule of storage.md §2.1 is applied record by record, so the files are the
 * same as if each record had been written alone. Returns 0 or the write error.
 */
static int dq_write_pending(struct diskqueue *dq)
{
    pthread_mutex_lock(&dq->mu);
    struct dq_buf t = dq->pending;
    dq->pending = dq->batch;
    dq->batch = t;
    dq->pending.len = 0;
    dq->write_sched = false;
    pthread_mutex_unlock(&dq->mu);

    if (dq->batch.len == 0)
        return 0;

    const uint8_t *p = dq->batch.p;
    size_t off = 0, gstart = 0;
    int64_t grecs = 0, gpos = dq->wr_pos;
    int rc = 0;
    while (off < dq->batch.len) {
        int64_t rec = DQ_LEN_BYTES + (int64_t)get_be32(p + off);
        if (gpos > 0 && gpos + rec > dq->max_bytes_per_file) {
            rc = dq_commit_group(dq, p + gstart, off - gstart, grecs);
            if (rc != 0)
                break;
            gstart = off;
            grecs = 0;
            dq_roll(dq);
            gpos = 0;
        }
        off += (size_t)rec;
        gpos += rec;
        grecs++;
    }
    if (rc == 0) {
        rc = dq_commit_group(dq, p + gstart, off - gstart, grecs);
        if (rc == 0)
            gstart = off;
    }

    if (rc != 0) {
        dq_write_failed(dq, gstart, rc);
        return rc;
    }
    dq->batch.len = 0;
    if (dq->batch.cap > DQ_BUF_KEEP_BYTES)
        buf_release(&dq->batch);
    pthread_mutex_lock(&dq->mu);
    if (dq->err != 0)
        DQ_LOG(dq, DQ_LOG_INFO, "DISKQUEUE(%s) writes succeed again", dq->name);
    dq->err = 0;
    pthread_cond_broadcast(&dq->space_cv);
    pthread_mutex_unlock(&dq->mu);
    return 0;
}

/* ---------------------------------------------------------------- reading (I/O side) */

static bool dq_data_available(const struct diskqueue *dq)
{
    return dq->rd_file < dq->wr_file || (dq->rd_file == dq->wr_file && dq->rd_pos < dq->wr_pos);
}

/* Moves the read cursor to the start of `file`; cons follows through the last read-ahead record,
   or directly when nothing is read ahead (see the file comment). */
static void dq_reader_jump(struct diskqueue *dq, int64_t file)
{
    close_fd(&dq->rd_fd);
    dq->rd_fd_file = -1;
    dq->rd_size = -1;
    dq->rd_file = file;
    dq->rd_pos = 0;
    pthread_mutex_lock(&dq->mu);
    if (dq->ra_count > 0) {
        struct dq_rec *last = &dq->ra[(dq->ra_head + dq->ra_count - 1) % dq->ra_cap];
        last->next_file = file;
        last->next_pos = 0;
    } else {
        dq->cons_file = file;
        dq->cons_pos = 0;
    }
    pthread_mutex_unlock(&dq->mu);
}

/* The segment number of a directory entry of this queue ("<prefix><n>.dat"), or false. */
static bool dq_parse_segment_name(const struct diskqueue *dq, const char *fname, int64_t *n)
{
    size_t pl = strlen(dq->prefix);
    if (strncmp(fname, dq->prefix, pl) != 0)
        return false;
    const char *p = fname + pl;
    char *end;
    errno = 0;
    long long v = strtoll(p, &end, 10);
    if (end == p || errno != 0 || strcmp(end, ".dat") != 0)
        return false;
    *n = v;
    return true;
}

/* Lists the directory for existing segments numbered in [from, to]: finds the lowest (*lowest,
   returns true if any) and, with `remove`, deletes them all. */
static bool dq_scan_segments(struct diskqueue *dq, int64_t from, int64_t to, bool remove,
                             int64_t *lowest, int *first_err)
{
    DIR *d = opendir(dq->dir);
    if (!d) {
        if (first_err && *first_err == 0)
            *first_err = -errno;
        return false;
    }
    bool found = false;
    struct dirent *e;
    while ((e = readdir(d))) {
        int64_t n;
        if (!dq_parse_segment_name(dq, e->d_name, &n) || n < from || n > to)
            continue;
        if (!found || n < *lowest)
            *lowest = n;
        found = true;
        if (remove) {
            seg_path(dq, dq->path_b, n, false);
            if (unlink(dq->path_b) != 0 && errno != ENOENT && first_err && *first_err == 0)
                *first_err = -errno;
        }
    }
    closedir(d);
    return found;
}

static bool range_wider_than(int64_t from, int64_t to, uint64_t gap)
{
    return to > from && (uint64_t)to - (uint64_t)from > gap;
}

/* storage.md §4.1: set the segment aside as .bad and continue with the next one. */
static void dq_read_error(struct diskqueue *dq, const char *why, int64_t at, bool missing)
{
    int64_t bad = dq->rd_file;
    DQ_LOG(dq, DQ_LOG_ERROR, "DISKQUEUE(%s) reading at %s.%06" PRId64 ".dat:%" PRId64 " - %s",
           dq->name, dq->base, bad, at, why);
    if (dq->rd_file == dq->wr_file) {
        close_fd(&dq->wr_fd);
        dq->wr_file++;
        dq->wr_pos = 0;
        dq_publish_write_pos(dq);
    }
    close_fd(&dq->rd_fd);
    seg_path(dq, dq->path_a, bad, false);
    seg_path(dq, dq->path_b, bad, true);
    if (rename(dq->path_a, dq->path_b) != 0)
        DQ_LOG(dq, DQ_LOG_ERROR, "DISKQUEUE(%s) failed to rename bad diskqueue file %s to %s - %s",
               dq->name, dq->path_a, dq->path_b, strerror(errno));
    else
        DQ_LOG(dq, DQ_LOG_WARN, "DISKQUEUE(%s) jump to next file and saving bad file as %s",
               dq->name, dq->path_b);

    int64_t next = bad + 1;
    if (missing && range_wider_than(next, dq->wr_file, DQ_SCAN_GAP)) {
        /* a long run of missing segments: go straight to the next one that exists */
        int64_t low;
        next = dq_scan_segments(dq, next, dq->wr_file, false, &low, NULL) ? low : dq->wr_file;
    }
    dq_reader_jump(dq, next);
}

/*
 * A read error is handled only once every record read before it has been popped: setting the
 * segment aside while good records of it are still in `ra` would lose them if the queue were
 * closed before they are popped (the metadata would point into the renamed file). Returns true
 * if the error must wait; pop schedules a run when `ra` becomes empty.
 */
static bool dq_defer_read_error(struct diskqueue *dq)
{
    pthread_mutex_lock(&dq->mu);
    bool defer = dq->ra_count > 0;
    dq->error_wait = defer;
    pthread_mutex_unlock(&dq->mu);
    return defer;
}

static int dq_open_read(struct diskqueue *dq)
{
    if (dq->rd_fd >= 0 && dq->rd_fd_file == dq->rd_file)
        return 0;
    close_fd(&dq->rd_fd);
    dq->rd_size = -1;
    seg_path(dq, dq->path_a, dq->rd_file, false);
    dq->rd_fd = open(dq->path_a, O_RDONLY | O_CLOEXEC);
    if (dq->rd_fd < 0)
        return -errno;
    dq->rd_fd_file = dq->rd_file;
    return 0;
}

/* End of readable data in segment rd_file: its size once completed, else the write position. */
static int dq_read_end(struct diskqueue *dq, int64_t *end)
{
    if (dq->rd_file == dq->wr_file) {
        *end = dq->wr_pos;
        return 0;
    }
    if (dq->rd_size < 0) {
        if (dq->rd_file == dq->sealed_file) {
            dq->rd_size = dq->sealed_size;
        } else {
            struct stat st;
            if (fstat(dq->rd_fd, &st) != 0)
                return -errno;
            dq->rd_size = st.st_size;
        }
    }
    *end = dq->rd_size;
    return 0;
}

static int pread_full(int fd, uint8_t *p, size_t n, int64_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, p + got, n - got, (off_t)(off + (int64_t)got));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            return -ENODATA;
        got += (size_t)r;
    }
    return 0;
}

static void free_recs(struct dq_rec *recs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(recs[i].data);
}

/* Appends records to the ring (mu held). Returns 0 or -ENOMEM. */
static int ra_append_locked(struct diskqueue *dq, const struct dq_rec *recs, size_t n)
{
    if (dq->ra_count + n > dq->ra_cap) {
        size_t cap = dq->ra_cap ? dq->ra_cap : DQ_RA_INITIAL_CAP;
        while (cap < dq->ra_count + n)
            cap *= 2;
        struct dq_rec *r = malloc(cap * sizeof(*r));
        if (!r)
            return -ENOMEM;
        for (size_t i = 0; i < dq->ra_count; i++)
            r[i] = dq->ra[(dq->ra_head + i) % dq->ra_cap];
        free(dq->ra);
        dq->ra = r;
        dq->ra_cap = cap;
        dq->ra_head = 0;
    }
    for (size_t i = 0; i < n; i++) {
        dq->ra[(dq->ra_head + dq->ra_count) % dq->ra_cap] = recs[i];
        dq->ra_count++;
        dq->ra_bytes += recs[i].len;
    }
    return 0;
}

/* File bytes held in the worker's scratch buffer during one dq_fill: [pos, pos + len) of `file`. */
struct rd_chunk {
    int64_t file, pos;
    size_t len;
    size_t need; /* after a record was cut by the chunk's end: bytes the next load must hold */
};

/* How much to read for the next chunk: about what the ring has room for (judged from the
   recent record size), at least `need`, at most the scratch buffer and the data available. */
static size_t dq_chunk_size(const struct diskqueue *dq, const struct rd_chunk *c, size_t room_n,
                            int64_t end, size_t scratch_len)
{
    size_t want = room_n * dq->rd_avg_rec + DQ_RD_MIN_CHUNK;
    if (want < c->need)
        want = c->need;
    if (want > scratch_len)
        want = scratch_len;
    if ((int64_t)want > end - dq->rd_pos)
        want = (size_t)(end - dq->rd_pos);
    return want;
}

/*
 * Refills the read-ahead ring from rd up to its bounds (storage.md §2.2), handling the end of
 * completed segments and corruption (§4.1). Records are parsed out of chunks read into the worker's
 * scratch buffer; a record larger than the buffer is read straight into its own allocation. Sets
 * *became_ready when the ring went from empty to non-empty. Returns true when a sync is needed.
 */
static bool dq_fill(struct diskqueue *dq, uint8_t *scratch, size_t scratch_len, bool *became_ready)
{
    bool need_sync = false;
    struct dq_rec recs[DQ_RD_BATCH];
    struct rd_chunk c = {.file = -1};

    for (;;) {
        pthread_mutex_lock(&dq->mu);
        size_t room_n = DISKQUEUE_READ_AHEAD_RECORDS - dq->ra_count;
        size_t room_b = dq->ra_bytes < DISKQUEUE_READ_AHEAD_BYTES
                                ? DISKQUEUE_READ_AHEAD_BYTES - dq->ra_bytes
                                : 0;
        bool ra_empty = dq->ra_count == 0;
        bool full = room_n == 0 || (room_b == 0 && !ra_empty);
        if (full)
            dq->reader_blocked = true;
        pthread_mutex_unlock(&dq->mu);
        if (full || !dq_data_available(dq))
            return need_sync;

        int64_t end = 0;
        int rc = dq_open_read(dq);
        if (rc == 0)
            rc = dq_read_end(dq, &end);
        if (rc != 0) {
            if (dq_defer_read_error(dq))
                return need_sync;
            dq_read_error(dq, strerror(-rc), dq->rd_pos, rc == -ENOENT);
            need_sync = true;
            continue;
        }
        if (dq->rd_file < dq->wr_file && dq->rd_pos >= end) {
            if (dq->rd_pos == end) {
                /* EOF exactly at the end of a completed segment: normal advancement. */
                dq_reader_jump(dq, dq->rd_file + 1);
            } else {
                if (dq_defer_read_error(dq))
                    return need_sync;
                dq_read_error(dq, "read position beyond end of file", dq->rd_pos, false);
                need_sync = true;
            }
            continue;
        }

        if (c.file != dq->rd_file || dq->rd_pos < c.pos || dq->rd_pos >= c.pos + (int64_t)c.len) {
            size_t want = dq_chunk_size(dq, &c, room_n, end, scratch_len);
            rc = pread_full(dq->rd_fd, scratch, want, dq->rd_pos);
            if (rc != 0) {
                c.file = -1;
                if (dq_defer_read_error(dq))
                    return need_sync;
                dq_read_error(dq, rc == -ENODATA ? "EOF" : strerror(-rc), dq->rd_pos, false);
                need_sync = true;
                continue;
            }
            c.file = dq->rd_file;
            c.pos = dq->rd_pos;
            c.len = want;
            c.need = 0;
        }

        /* Parse whole records out of the chunk, starting at rd. */
        size_t n = 0, bytes = 0, off = (size_t)(dq->rd_pos - c.pos), start = off;
        const char *why = NULL;
        int64_t why_at = 0;
        bool cut = false, oom = false;
        while (n < DQ_RD_BATCH && n < room_n && (bytes < room_b || (ra_empty && n == 0))) {
            int64_t pos = c.pos + (int64_t)off;
            if (pos >= end)
                break;
            if (pos + DQ_LEN_BYTES > end) {
                why = "EOF";
                why_at = pos;
                break;
            }
            if (off + DQ_LEN_BYTES > c.len) {
                cut = true; /* length field cut by the chunk */
                c.need = DQ_LEN_BYTES;
                break;
            }
            int32_t len = (int32_t)get_be32(scratch + off);
            if (len < dq->min_msg_size || len > dq->max_msg_size) {
                why = "invalid message read size";
                why_at = pos;
                break;
            }
            int64_t rec_end = pos + DQ_LEN_BYTES + len;
            if (rec_end > end) {
                why = "EOF";
                why_at = pos;
                break;
            }
            size_t body_off = off + DQ_LEN_BYTES;
            bool whole = body_off + (size_t)len <= c.len;
            if (!whole && (size_t)len + DQ_LEN_BYTES <= scratch_len) {
                cut = true; /* fits in a chunk: load one that starts with it */
                c.need = (size_t)len + DQ_LEN_BYTES;
                break;
            }
            uint8_t *data = malloc(len > 0 ? (size_t)len : 1);
            if (!data) {
                oom = true;
                break;
            }
            if (whole) {
                memcpy(data, scratch + body_off, (size_t)len);
            } else {
                /* larger than a chunk: copy what we have, read the rest straight in */
                size_t have = c.len - body_off;
                memcpy(data, scratch + body_off, have);
                rc = pread_full(dq->rd_fd, data + have, (size_t)len - have,
                                pos + DQ_LEN_BYTES + (int64_t)have);
                if (rc != 0) {
                    free(data);
                    why = rc == -ENODATA ? "EOF" : strerror(-rc);
                    why_at = pos;
                    break;
                }
            }
            recs[n].data = data;
            recs[n].len = (size_t)len;
            recs[n].next_file = dq->rd_file;
            recs[n].next_pos = rec_end;
            if (dq->rd_file < dq->wr_file && rec_end >= end) {
                recs[n].next_file = dq->rd_file + 1;
                recs[n].next_pos = 0;
            }
            n++;
            bytes += (size_t)len;
            off += DQ_LEN_BYTES + (size_t)len;
        }
        if (cut)
            c.file = -1; /* reload from the cut record */

        if (n > 0) {
            dq->rd_avg_rec = (off - start) / n;
            pthread_mutex_lock(&dq->mu);
            bool was_empty = dq->ra_count == 0;
            rc = ra_append_locked(dq, recs, n);
            if (rc == 0 && was_empty)
                *became_ready = true;
            pthread_mutex_unlock(&dq->mu);
            if (rc != 0) {
                free_recs(recs, n);
                return need_sync; /* out of memory: try again on the next run */
            }
            struct dq_rec *last = &recs[n - 1];
            if (last->next_file != dq->rd_file) {
                close_fd(&dq->rd_fd);
                dq->rd_fd_file = -1;
                dq->rd_size = -1;
            }
            dq->rd_file = last->next_file;
            dq->rd_pos = last->next_pos;
        }
        if (why) {
            if (dq_defer_read_error(dq))
                return need_sync; /* met again from rd on a later run */
            dq_read_error(dq, why, why_at, false);
            need_sync = true;
            continue;
        }
        if (oom || (n == 0 && !cut))
            return need_sync; /* out of memory: try again on the next run */
    }
}

/* ---------------------------------------------------------------- housekeeping (I/O side) */

static void dq_unlink_segment(struct diskqueue *dq, int64_t file, int *first_err)
{
    seg_path(dq, dq->path_a, file, false);
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
    if (range_wider_than(from, to, DQ_SCAN_GAP)) {
        int64_t low;
        dq_scan_segments(dq, from, to, true, &low, first_err);
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

/* storage.md §3.3 Empty; also drops what is pending or read ahead. */
static int dq_do_empty(struct diskqueue *dq)
{
    pthread_mutex_lock(&dq->mu);
    for (size_t i = 0; i < dq->ra_count; i++)
        free(dq->ra[(dq->ra_head + i) % dq->ra_cap].data);
    dq->ra_count = dq->ra_head = dq->ra_bytes = 0;
    dq->reader_blocked = false;
    dq->error_wait = false;
    dq->pending.len = 0;
    dq->unwritten = 0;
    dq->unwritten_bytes = 0;
    dq->write_sched = false;
    dq->err = 0;
    dq->count = 0;
    dq->depth = 0;
    pthread_cond_broadcast(&dq->space_cv);
    pthread_mutex_unlock(&dq->mu);

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

static int dq_run(struct dqs_task *t, uint8_t *scratch, size_t scratch_len, bool timer_fired)
{
    struct diskqueue *dq = container_of(t, struct diskqueue, task);

    pthread_mutex_lock(&dq->mu);
    enum dq_request req = dq->req;
    struct dq_waiter *w = dq->waiter;
    dq->req = REQ_NONE;
    dq->waiter = NULL;
    pthread_mutex_unlock(&dq->mu);

    if (req == REQ_EMPTY || req == REQ_DELETE) {
        int rc = dq_do_empty(dq);
        if (req == REQ_DELETE) {
            dq_close_files(dq);
            dq->retire_waiter = w;
            dq->retire_rc = rc;
            return DQS_RUN_RETIRE;
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
        dq->retire_waiter = w;
        dq->retire_rc = wrc != 0 ? wrc : rc;
        return DQS_RUN_RETIRE;
    }

    need_sync |= dq_fill(dq, scratch, scratch_len, &became_ready);
    need_sync |= dq_delete_consumed(dq);
    need_sync |= dq_check_tail(dq);

    pthread_mutex_lock(&dq->mu);
    int64_t count = dq->count;
    pthread_mutex_unlock(&dq->mu);
    if ((dq->sync_every > 0 && count >= dq->sync_every) || (timer_fired && count > 0) ||
        req == REQ_FLUSH)
        need_sync = true;
    if (need_sync)
        dq_sync(dq);

    if (became_ready && dq->ready)
        dq->ready(dq->ready_arg);
    if (req == REQ_FLUSH)
        waiter_complete(w, wrc);

    pthread_mutex_lock(&dq->mu);
    count = dq->count;
    int err = dq->err;
    pthread_mutex_unlock(&dq->mu);
    int64_t now = dqs_now_ns();
    if (count > 0)
        dqs_arm(dq->svc, t, now + dq->sync_timeout_ns);
    if (err != 0)
        dqs_arm(dq->svc, t, now + DISKQUEUE_WRITE_RETRY_NS);
    return DQS_RUN_KEEP;
}

static void dq_retired(struct dqs_task *t)
{
    struct diskqueue *dq = container_of(t, struct diskqueue, task);
    waiter_complete(dq->retire_waiter, dq->retire_rc);
}

/* ---------------------------------------------------------------- owner-side API */

static void dq_free(struct diskqueue *dq)
{
    if (!dq)
        return;
    dq_close_files(dq);
    for (size_t i = 0; i < dq->ra_count; i++)
        free(dq->ra[(dq->ra_head + i) % dq->ra_cap].data);
    free(dq->ra);
    buf_release(&dq->pending);
    buf_release(&dq->batch);
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
    dq->wr_fd = dq->rd_fd = -1;
    dq->rd_fd_file = -1;
    dq->rd_size = -1;
    dq->sealed_file = -1;
    dq->svc = s;
    dq->ready = ready;
    dq->ready_arg = arg;
    dq->max_bytes_per_file = o->max_bytes_per_file;
    dq->min_msg_size = o->min_msg_size;
    dq->max_msg_size = o->max_msg_size;
    dq->sync_every = o->sync_every;
    dq->sync_timeout_ns = o->sync_timeout_ns > 0 ? o->sync_timeout_ns : DQ_DEFAULT_SYNC_TIMEOUT_NS;
    dqs_task_init(&dq->task, dq_run, dq_retired);

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
    dq->depth = m.depth;
    dq->cons_file = dq->rd_file = dq->del_file = m.read_file;
    dq->cons_pos = dq->rd_pos = m.read_pos;
    dq->wr_file = m.write_file;
    dq->wr_pos = m.write_pos;

    /* Data written after the last metadata sync (crash): keep it for the reader, write anew
       (storage.md §3.1). Also done when the metadata was missing or unreadable, and repeated
       while the next segment already holds data (only possible when the metadata was lost), so
       existing records are never overwritten. */
    struct stat st;
    for (;;) {
        seg_path(dq, dq->path_a, dq->wr_file, false);
        if (stat(dq->path_a, &st) != 0 || st.st_size <= dq->wr_pos)
            break;
        DQ_LOG(dq, DQ_LOG_WARN,
               "DISKQUEUE(%s) %s metadata writePos %" PRId64 " < file size of %" PRId64
               ", skipping to new file",
               dq->name, dq->path_a, dq->wr_pos, (int64_t)st.st_size);
        dq->wr_file++;
        dq->wr_pos = 0;
    }
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
        rc = buf_reserve(&dq->pending, dq->pending.len + rec);
    if (rc != 0) {
        pthread_mutex_unlock(&dq->mu);
        return rc;
    }
    uint8_t *p = dq->pending.p + dq->pending.len;
    put_be32(p, (uint32_t)total);
    p += DQ_LEN_BYTES;
    for (int i = 0; i < iovcnt; i++) {
        if (iov[i].iov_len)
            memcpy(p, iov[i].iov_base, iov[i].iov_len);
        p += iov[i].iov_len;
    }
    dq->pending.len += rec;
    dq->unwritten_bytes += rec;
    dq->unwritten++;
    dq->depth++;
    bool sched = !dq->write_sched;
    dq->write_sched = true;
    pthread_mutex_unlock(&dq->mu);

    if (sched)
        dqs_schedule(dq->svc, &dq->task);
    return 0;
}

int diskqueue_put(struct diskqueue *dq, const void *data, size_t len)
{
    struct iovec iov = {.iov_base = (void *)data, .iov_len = len};
    return diskqueue_putv(dq, &iov, 1);
}

int diskqueue_pop(struct diskqueue *dq, uint8_t **data, size_t *len)
{
    pthread_mutex_lock(&dq->mu);
    if (dq->ra_count == 0) {
        pthread_mutex_unlock(&dq->mu);
        return 0;
    }
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
    pthread_mutex_unlock(&dq->mu);

    if (sched)
        dqs_schedule(dq->svc, &dq->task);
    *data = rec.data;
    *len = rec.len;
    return 1;
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
