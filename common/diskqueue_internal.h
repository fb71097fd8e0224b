/*
 * diskqueue_internal: the queue structure shared by diskqueue.c (the run, housekeeping and the
 * owner-side API), diskqueue_write.c (writing, rolling, sync) and diskqueue_read.c (read-ahead and
 * corruption handling). Not part of the public API.
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
 * Locking: `mu` guards the fields marked (mu). I/O-side fields are touched only inside a run (one
 * worker at a time, handed over through the service mutex) and by open/free, when no run can
 * happen. The service mutex is never taken while `mu` is held.
 */
#ifndef DISKQUEUE_INTERNAL_H
#define DISKQUEUE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include "diskqueue.h"
#include "diskqueue_meta.h"
#include "nsq_frame.h" /* nsq_put_be32 / nsq_get_be32 */

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
/* Largest read chunk (one pread), unless a single record is larger. */
#define DQ_CHUNK_BYTES (1024 * 1024)
/* Files (segments finished since) a posted sync may hold; beyond, the run fsyncs itself. */
#define DQ_SYNC_FDS 8
/* A write buffer larger than this is released after its batch is written. */
#define DQ_BUF_KEEP_BYTES          (1024 * 1024)
#define DQ_DEFAULT_SYNC_TIMEOUT_NS (2000LL * 1000 * 1000)
/* Segment number ranges wider than this are handled by listing the directory instead of trying
   every number (a corrupt metadata file may name segment 10^15). */
#define DQ_SCAN_GAP 64
/* Read size used to count the records found after the metadata's write position at open. */
#define DQ_COUNT_CHUNK (256 * 1024)
/* Metadata numbers beyond this are treated as corrupt, so arithmetic on them cannot overflow. */
#define DQ_META_LIMIT (INT64_MAX / 4)

#define DQ_CONTAINER_OF(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

enum dq_request { REQ_NONE, REQ_FLUSH, REQ_EMPTY, REQ_CLOSE, REQ_DELETE };

struct dq_buf {
    uint8_t *p;
    size_t len, cap;
};

/*
 * A block of segment bytes read by one pread; read-ahead records point into it. `refs` (mu): one
 * per record of it in `ra`, one for the owner's current view (diskqueue_pop_view), one while the
 * reader is still parsing it. The last reference frees it, or keeps it as the queue's `spare`
 * for the next read while records keep flowing.
 */
struct dq_chunk {
    size_t refs;
    size_t cap;
    uint8_t data[];
};

/* One read-ahead record: `len` payload bytes at `data`, inside `chunk`. */
struct dq_rec {
    struct dq_chunk *chunk;
    const uint8_t *data;
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
    void (*synced_fn)(void *arg);
    void *synced_arg;

    pthread_mutex_t mu;
    pthread_cond_t space_cv; /* signalled when pending bytes were written or an error appeared */

    /* (mu) write side */
    struct dq_buf pending;
    size_t unwritten_bytes; /* bytes in pending + the batch being written */
    int64_t unwritten;      /* records in pending + the batch being written */
    bool write_sched;       /* a run will pick up pending */
    uint64_t put_seq;       /* records accepted by put since open */
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
    struct dq_chunk *view;  /* chunk of the record last returned by diskqueue_pop_view */
    struct dq_chunk *spare; /* a released chunk kept for the reader's next read */

    /* (mu) the sync slot: what the sync task fsyncs (fds, owned) and then stores (sync_meta) */
    struct dqs_task sync_task; /* scheduling state: service mutex */
    pthread_cond_t sync_cv;    /* signalled when sync_busy goes false */
    bool sync_posted;
    bool sync_busy;   /* the sync task is fsyncing / storing */
    bool sync_retire; /* close/delete: the sync task retires on its next run */
    struct diskqueue_meta sync_meta;
    uint64_t sync_written; /* written_seq when sync_meta was taken: durable after the sync */
    int sync_fds[DQ_SYNC_FDS];
    int64_t sync_fd_file[DQ_SYNC_FDS];
    size_t sync_nfds;

    /* records durable (see diskqueue_synced_seq); only grows, written by I/O threads */
    _Atomic uint64_t synced_seq;

    /* (mu) accounting and requests */
    int64_t depth;
    int64_t count; /* writes + records handed out since the last sync */
    enum dq_request req;
    struct dq_waiter *waiter;

    /* I/O side: touched only inside a run (and by open/free, when no run can happen) */
    struct dq_buf batch; /* records being written; kept after a failed write */
    size_t batch_off;    /* start of the records of batch not yet written */
    int wr_fd;
    bool wr_dirty; /* written since the last fsync */
    int64_t wr_file, wr_pos;
    uint64_t written_seq; /* records written to their segment (or dropped by an empty) */
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
    atomic_int retire_left; /* tasks (run, sync) still to retire at close/delete */
    char *path_a, *path_b;
};

#define DQ_LOG(dq, level, ...) diskqueue_service_logf((dq)->svc, (level), __VA_ARGS__)

static inline void dq_close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* True while the read cursor is before the write position. */
static inline bool dq_data_available(const struct diskqueue *dq)
{
    return dq->rd_file < dq->wr_file || (dq->rd_file == dq->wr_file && dq->rd_pos < dq->wr_pos);
}

/* --- diskqueue_write.c --- */
/* Grows b to hold `need` bytes. Returns 0 or -ENOMEM. */
int dq_buf_reserve(struct dq_buf *b, size_t need);
void dq_buf_release(struct dq_buf *b);
/* "<base>.%06d.dat" (or ".dat.bad") into out (dq->path_cap bytes). */
void dq_seg_path(const struct diskqueue *dq, char *out, int64_t file, bool bad);
/* Publishes wr_file/wr_pos to the owner side (for pop's catch-up test). */
void dq_publish_write_pos(struct diskqueue *dq);
/* Synchronous sync (storage.md §3.2): waits for the sync task to be idle, fsyncs what it was
   given and the write segment if it changed, then stores the metadata. Returns 0 or -errno. */
int dq_sync(struct diskqueue *dq);
/* The same, handed to the sync task: the run does not wait for the fsyncs. */
void dq_sync_async(struct diskqueue *dq);
/* Waits for the sync task to be idle and drops what was posted (files closed unsynced). */
void dq_sync_discard(struct diskqueue *dq);
/* The sync task's run (see diskqueue_service.h). */
int dq_sync_task_run(struct dqs_task *t, uint8_t *scratch, size_t scratch_len, bool timer_fired);
/* Raises synced_seq to `seq` (never lowers it) and calls the synced callback if it advanced. */
void dq_publish_synced(struct diskqueue *dq, uint64_t seq);
/* Writes everything pending (storage.md §2.1). Returns 0 or the write error (sticky). */
int dq_write_pending(struct diskqueue *dq);

/* --- diskqueue_read.c --- */
/* Refills the read-ahead ring; *became_ready when it went non-empty. True if a sync is needed. */
bool dq_fill(struct diskqueue *dq, bool *became_ready);
/* Drops one reference to c (mu held; NULL is a no-op). */
void dq_chunk_unref_locked(struct diskqueue *dq, struct dq_chunk *c);
/* Existing segments numbered in [from, to], found by listing the directory: the lowest and
   highest one (*lowest, *highest if not NULL; returns true if any); with `remove`, deletes them
   all. */
bool dq_scan_segments(struct diskqueue *dq, int64_t from, int64_t to, bool remove, int64_t *lowest,
                      int64_t *highest, int *first_err);
/* Number of whole, valid records in segment `file` from byte `pos` to its end, stopping at the
   first invalid length or truncated record (the reader sets the rest aside, storage.md §4.1).
   Reads only the length fields. 0 if the segment is missing. */
int64_t dq_count_records(struct diskqueue *dq, int64_t file, int64_t pos);
/* True if to - from > gap (without overflow). */
bool dq_range_wider_than(int64_t from, int64_t to, uint64_t gap);

#endif
