/*
 * journal: per-channel durable record of in-flight and deferred messages, written by one
 * background thread (see journal.h; file format in docs/durability.md).
 */
#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "diskqueue.h"
#include "message.h"
#include "msg_table.h"
#include "nsq_crc32c.h"
#include "nsq_file.h"
#include "nsq_log.h"
#include "nsq_time.h"
#include "options.h"

#define JOURNAL_MAGIC     "NSQJRN01"
#define JOURNAL_MAGIC_LEN 8
/* Record: uint32 payload length, uint32 CRC-32C of the payload, payload (all big-endian). */
#define JOURNAL_REC_HDR 8
/* Payload: type(1) id(16) [due unix ns(8) message(26-byte header + body)] */
#define JOURNAL_ID_OFF   1
#define JOURNAL_DUE_OFF  (1 + NSQ_MSG_ID_LEN)
#define JOURNAL_MSG_OFF  (JOURNAL_DUE_OFF + 8)
#define JOURNAL_DONE_LEN (1 + NSQ_MSG_ID_LEN)
/* Largest payload replay accepts (guards against a corrupt length). */
#define JOURNAL_MAX_PAYLOAD (256 * 1024 * 1024)

enum { JREC_DELIVER = 1, JREC_DEFER = 2, JREC_DONE = 3 };
enum { OP_APPEND, OP_REPLACE, OP_CLOSE };

struct journal_op {
    struct journal_op *next;
    struct journal *j;
    int kind;
    bool to_backend; /* APPEND: flush j's diskqueue before writing */
    bool remove;     /* CLOSE: unlink the file */
    uint64_t seq;
    size_t len;
    uint8_t *data; /* owned by the op */
};

struct journal_waiter {
    struct journal_waiter *next;
    uint64_t seq;
    const void *key;
    journal_done_fn fn;
    void (*drop)(void *arg);
    void *arg;
};

struct journal_writer {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t work_cv; /* ops queued or stop */
    pthread_cond_t done_cv; /* done_seq advanced */
    /* Guarded by mu. */
    struct journal_op *head, *tail;
    uint64_t done_seq;
    bool stop;
    /* Loop thread only. */
    uint64_t next_seq; /* last sequence number handed out */
    struct event *done_ev;
    struct journal_waiter *wait_head, *wait_tail;
};

struct journal {
    struct journal_writer *w;
    char *path;
    char *tmp_path;
    char *dir;
    struct diskqueue *dq;
    /* Writer thread (set before the first op is queued). */
    int fd;
    bool dirty;
    bool need_dq_flush;
    /* Loop thread. */
    uint64_t last_seq;
    int64_t bytes;      /* file size estimate */
    int64_t compact_at; /* wants compaction past this size */
    uint8_t *snap;      /* snapshot being built */
    size_t snap_len, snap_cap;
};

bool journal_enabled(const struct nsqd_options *o)
{
    return o->sync_every == 1 && o->mem_queue_size == 0;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be64(uint8_t *p, uint64_t v)
{
    put_be32(p, (uint32_t)(v >> 32));
    put_be32(p + 4, (uint32_t)v);
}

static uint64_t get_be64(const uint8_t *p)
{
    return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

/* ---- writer thread ---- */

static int open_for_append(struct journal *j)
{
    if (j->fd >= 0)
        return 0;
    int fd = open(j->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) == 0 && st.st_size == 0 &&
        nsq_write_all(fd, JOURNAL_MAGIC, JOURNAL_MAGIC_LEN) != 0) {
        close(fd);
        return -EIO;
    }
    j->fd = fd;
    return 0;
}

static void sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* Writes data as the whole new content of j's file: temporary file, fsync, rename. Nothing live
   (len 0): the file is removed (the next append creates it again). */
static int replace_file(struct journal *j, const uint8_t *data, size_t len)
{
    if (len == 0) {
        if (j->fd >= 0)
            close(j->fd);
        j->fd = -1;
        j->dirty = false;
        if (unlink(j->path) != 0 && errno != ENOENT)
            return -errno;
        sync_dir(j->dir);
        return 0;
    }
    int fd = open(j->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    int rc = nsq_write_all(fd, JOURNAL_MAGIC, JOURNAL_MAGIC_LEN);
    if (!rc)
        rc = nsq_write_all(fd, data, len);
    if (!rc && fsync(fd) != 0)
        rc = -errno;
    if (!rc && rename(j->tmp_path, j->path) != 0)
        rc = -errno;
    if (rc) {
        close(fd);
        unlink(j->tmp_path);
        return rc;
    }
    sync_dir(j->dir);
    if (j->fd >= 0)
        close(j->fd);
    /* The new file is appended to from now on (O_APPEND is not needed: one writer). */
    lseek(fd, 0, SEEK_END);
    j->fd = fd;
    j->dirty = false;
    return 0;
}

static void journal_release(struct journal *j)
{
    free(j->path);
    free(j->tmp_path);
    free(j->dir);
    free(j->snap);
    free(j);
}

static void log_io_error(const struct journal *j, const char *what, int rc)
{
    nsq_error("JOURNAL(%s): failed to %s - %s", j->path, what, strerror(-rc));
}

/* Runs one batch of ops in queue order; fsyncs every file written. */
static void writer_run_batch(struct journal_op *ops)
{
    /* A record handing a message to the diskqueue is written only after the diskqueue wrote what
       it was given before: flush each such queue once, first. */
    for (struct journal_op *op = ops; op; op = op->next) {
        /* The loop quiesces j before a synchronous diskqueue request and closes the journal
           before its diskqueue goes, so the queue is valid for every append of the batch. */
        if (op->kind == OP_APPEND && op->to_backend && op->j->dq)
            op->j->need_dq_flush = true;
    }
    for (struct journal_op *op = ops; op; op = op->next) {
        if (op->kind == OP_APPEND && op->j->need_dq_flush) {
            op->j->need_dq_flush = false;
            diskqueue_flush(op->j->dq);
        }
    }
    /* Journals written in this batch, fsynced at its end. */
    struct journal *dirty[64];
    size_t ndirty = 0;
    while (ops) {
        struct journal_op *op = ops;
        ops = op->next;
        struct journal *j = op->j;
        int rc;
        switch (op->kind) {
        case OP_APPEND:
            rc = open_for_append(j);
            if (!rc)
                rc = nsq_write_all(j->fd, op->data, op->len);
            if (rc) {
                log_io_error(j, "write", rc);
            } else if (!j->dirty) {
                j->dirty = true;
                if (ndirty < sizeof(dirty) / sizeof(dirty[0])) {
                    dirty[ndirty++] = j;
                } else if (fsync(j->fd) == 0) {
                    j->dirty = false;
                }
            }
            break;
        case OP_REPLACE:
            rc = replace_file(j, op->data, op->len);
            if (rc)
                log_io_error(j, "rewrite", rc);
            break;
        case OP_CLOSE:
            for (size_t i = 0; i < ndirty; i++)
                if (dirty[i] == j)
                    dirty[i] = NULL;
            if (j->fd >= 0) {
                if (j->dirty)
                    fsync(j->fd);
                close(j->fd);
            }
            if (op->remove) {
                unlink(j->path);
                sync_dir(j->dir);
            }
            journal_release(j);
            break;
        }
        free(op->data);
        free(op);
    }
    for (size_t i = 0; i < ndirty; i++) {
        struct journal *j = dirty[i];
        if (j && j->dirty) {
            if (fsync(j->fd) != 0)
                log_io_error(j, "sync", -errno);
            j->dirty = false;
        }
    }
}

static void *writer_main(void *arg)
{
    struct journal_writer *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->head && !w->stop)
            pthread_cond_wait(&w->work_cv, &w->mu);
        if (!w->head && w->stop)
            break;
        struct journal_op *ops = w->head;
        w->head = w->tail = NULL;
        pthread_mutex_unlock(&w->mu);
        uint64_t last = 0;
        for (struct journal_op *op = ops; op; op = op->next)
            last = op->seq;
        writer_run_batch(ops);
        pthread_mutex_lock(&w->mu);
        w->done_seq = last;
        pthread_cond_broadcast(&w->done_cv);
        pthread_mutex_unlock(&w->mu);
        event_active(w->done_ev, EV_READ, 0);
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* ---- loop side ---- */

static void writer_done_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct journal_writer *w = arg;
    pthread_mutex_lock(&w->mu);
    uint64_t done = w->done_seq;
    pthread_mutex_unlock(&w->mu);
    while (w->wait_head && w->wait_head->seq <= done) {
        struct journal_waiter *x = w->wait_head;
        w->wait_head = x->next;
        if (!w->wait_head)
            w->wait_tail = NULL;
        x->fn(x->arg);
        free(x);
    }
}

struct journal_writer *journal_writer_new(struct event_base *base)
{
    struct journal_writer *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->work_cv, NULL);
    pthread_cond_init(&w->done_cv, NULL);
    w->done_ev = event_new(base, -1, 0, writer_done_cb, w);
    if (!w->done_ev || pthread_create(&w->thread, NULL, writer_main, w) != 0)
        goto err;
    return w;
err:
    if (w->done_ev)
        event_free(w->done_ev);
    pthread_cond_destroy(&w->done_cv);
    pthread_cond_destroy(&w->work_cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
    return NULL;
}

void journal_writer_free(struct journal_writer *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_signal(&w->work_cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    while (w->wait_head) {
        struct journal_waiter *x = w->wait_head;
        w->wait_head = x->next;
        if (x->drop)
            x->drop(x->arg);
        free(x);
    }
    event_free(w->done_ev);
    pthread_cond_destroy(&w->done_cv);
    pthread_cond_destroy(&w->work_cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

/* Queues op (taking ownership) and returns its sequence number. */
static uint64_t journal_submit(struct journal *j, struct journal_op *op)
{
    struct journal_writer *w = j->w;
    op->j = j;
    uint64_t seq = ++w->next_seq;
    op->seq = seq;
    j->last_seq = seq;
    pthread_mutex_lock(&w->mu); /* from here on op belongs to the writer */
    if (w->tail)
        w->tail->next = op;
    else
        w->head = op;
    w->tail = op;
    pthread_cond_signal(&w->work_cv);
    pthread_mutex_unlock(&w->mu);
    return seq;
}

static size_t record_len(const struct nsqd_message *m)
{
    return JOURNAL_REC_HDR + JOURNAL_MSG_OFF + NSQ_MSG_HEADER_LEN + (m ? m->body_len : 0);
}

/* Encodes one record at p (record_len(m) bytes, or JOURNAL_REC_HDR + JOURNAL_DONE_LEN for DONE). */
static size_t encode_record(uint8_t *p, int type, const char *id, const struct nsqd_message *m,
                            int64_t due_unix)
{
    uint8_t *pl = p + JOURNAL_REC_HDR;
    size_t plen = JOURNAL_DONE_LEN;
    pl[0] = (uint8_t)type;
    memcpy(pl + JOURNAL_ID_OFF, id, NSQ_MSG_ID_LEN);
    if (m) {
        put_be64(pl + JOURNAL_DUE_OFF, (uint64_t)due_unix);
        nsq_message_encode_header(pl + JOURNAL_MSG_OFF, m->id, m->timestamp, m->attempts);
        memcpy(pl + JOURNAL_MSG_OFF + NSQ_MSG_HEADER_LEN, m->body, m->body_len);
        plen = JOURNAL_MSG_OFF + NSQ_MSG_HEADER_LEN + m->body_len;
    }
    put_be32(p, (uint32_t)plen);
    put_be32(p + 4, nsq_crc32c(pl, plen));
    return JOURNAL_REC_HDR + plen;
}

static int64_t mono_to_unix(int64_t due_mono)
{
    return nsq_now_ns() + (due_mono - nsq_mono_ns());
}

static uint64_t journal_append(struct journal *j, int type, const char *id,
                               const struct nsqd_message *m, int64_t due_unix, bool to_backend)
{
    struct journal_op *op = calloc(1, sizeof(*op));
    size_t cap = m ? record_len(m) : JOURNAL_REC_HDR + JOURNAL_DONE_LEN;
    uint8_t *buf = malloc(cap);
    if (!op || !buf) {
        free(op);
        free(buf);
        return 0;
    }
    op->kind = OP_APPEND;
    op->to_backend = to_backend;
    op->data = buf;
    op->len = encode_record(buf, type, id, m, due_unix);
    j->bytes += (int64_t)op->len;
    return journal_submit(j, op);
}

uint64_t journal_deliver(struct journal *j, const struct nsqd_message *m)
{
    return journal_append(j, JREC_DELIVER, m->id, m, 0, false);
}

uint64_t journal_defer(struct journal *j, const struct nsqd_message *m, int64_t due_mono_ns)
{
    return journal_append(j, JREC_DEFER, m->id, m, mono_to_unix(due_mono_ns), false);
}

uint64_t journal_done(struct journal *j, const char *id, bool to_backend)
{
    return journal_append(j, JREC_DONE, id, NULL, 0, to_backend);
}

bool journal_wants_compact(const struct journal *j)
{
    return j->bytes > j->compact_at;
}

void journal_snapshot_begin(struct journal *j)
{
    j->snap_len = 0;
}

void journal_snapshot_add(struct journal *j, const struct nsqd_message *m, int64_t due_mono_ns)
{
    size_t need = record_len(m);
    if (j->snap_len + need > j->snap_cap) {
        size_t cap = j->snap_cap ? j->snap_cap : 4096;
        while (cap < j->snap_len + need)
            cap *= 2;
        uint8_t *p = realloc(j->snap, cap);
        if (!p)
            return; /* the commit then keeps the old file (see journal_snapshot_commit) */
        j->snap = p;
        j->snap_cap = cap;
    }
    j->snap_len += encode_record(j->snap + j->snap_len, due_mono_ns ? JREC_DEFER : JREC_DELIVER,
                                 m->id, m, due_mono_ns ? mono_to_unix(due_mono_ns) : 0);
}

uint64_t journal_snapshot_commit(struct journal *j)
{
    struct journal_op *op = calloc(1, sizeof(*op));
    uint8_t *data = j->snap_len ? malloc(j->snap_len) : NULL;
    if (!op || (j->snap_len && !data)) {
        free(op);
        free(data);
        return 0;
    }
    if (j->snap_len)
        memcpy(data, j->snap, j->snap_len);
    op->kind = OP_REPLACE;
    op->data = data;
    op->len = j->snap_len;
    j->bytes = JOURNAL_MAGIC_LEN + (int64_t)j->snap_len;
    j->compact_at = j->bytes +
                    (j->bytes > JOURNAL_COMPACT_MIN_BYTES ? j->bytes : JOURNAL_COMPACT_MIN_BYTES);
    /* Keep the snapshot buffer only while it is small. */
    if (j->snap_cap > JOURNAL_COMPACT_MIN_BYTES) {
        free(j->snap);
        j->snap = NULL;
        j->snap_cap = 0;
    }
    j->snap_len = 0;
    return journal_submit(j, op);
}

void journal_quiesce(struct journal *j)
{
    struct journal_writer *w = j->w;
    pthread_mutex_lock(&w->mu);
    while (w->done_seq < j->last_seq)
        pthread_cond_wait(&w->done_cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
}

static void drop_waiters(struct journal_writer *w, const void *key)
{
    struct journal_waiter **pp = &w->wait_head, *prev = NULL;
    while (*pp) {
        struct journal_waiter *x = *pp;
        if (x->key == key) {
            *pp = x->next;
            if (x->drop)
                x->drop(x->arg);
            free(x);
        } else {
            prev = x;
            pp = &x->next;
        }
    }
    w->wait_tail = prev;
}

void journal_close(struct journal *j, bool remove)
{
    if (!j)
        return;
    drop_waiters(j->w, j);
    struct journal_op *op = calloc(1, sizeof(*op));
    if (!op) {
        /* Out of memory: wait for the writer to be idle on j and finish it here. */
        journal_quiesce(j);
        if (j->fd >= 0)
            close(j->fd);
        if (remove)
            unlink(j->path);
        journal_release(j);
        return;
    }
    op->kind = OP_CLOSE;
    op->remove = remove;
    journal_submit(j, op);
}

uint64_t journal_last_seq(const struct journal_writer *w)
{
    return w->next_seq;
}

int journal_when_done(struct journal_writer *w, uint64_t seq, const void *key, journal_done_fn fn,
                      void *arg, void (*drop)(void *arg))
{
    struct journal_waiter *x = calloc(1, sizeof(*x));
    if (!x)
        return -ENOMEM;
    x->seq = seq;
    x->key = key;
    x->fn = fn;
    x->drop = drop;
    x->arg = arg;
    if (w->wait_tail)
        w->wait_tail->next = x;
    else
        w->wait_head = x;
    w->wait_tail = x;
    /* Already durable: run on the next loop iteration (never from inside the caller). */
    pthread_mutex_lock(&w->mu);
    bool done = w->done_seq >= seq;
    pthread_mutex_unlock(&w->mu);
    if (done)
        event_active(w->done_ev, EV_READ, 0);
    return 0;
}

/* ---- open and replay ---- */

/* Replays the file content into fn; returns the number of live messages handed over. Stops at the
   first torn or corrupt record (a crash while appending leaves at most a torn tail). */
static size_t journal_replay(struct journal *j, const uint8_t *p, size_t len, journal_replay_fn fn,
                             void *arg, size_t *valid)
{
    *valid = 0;
    if (len < JOURNAL_MAGIC_LEN || memcmp(p, JOURNAL_MAGIC, JOURNAL_MAGIC_LEN) != 0) {
        if (len > 0)
            nsq_warn("JOURNAL(%s): not a journal file, ignored", j->path);
        return 0;
    }
    struct msg_table live = {0};
    size_t off = JOURNAL_MAGIC_LEN;
    while (off < len) {
        if (len - off < JOURNAL_REC_HDR)
            break;
        uint32_t plen = get_be32(p + off);
        uint32_t crc = get_be32(p + off + 4);
        if (plen < JOURNAL_DONE_LEN || plen > JOURNAL_MAX_PAYLOAD ||
            plen > len - off - JOURNAL_REC_HDR)
            break;
        const uint8_t *pl = p + off + JOURNAL_REC_HDR;
        if (nsq_crc32c(pl, plen) != crc)
            break;
        off += JOURNAL_REC_HDR + plen;
        int type = pl[0];
        const char *id = (const char *)pl + JOURNAL_ID_OFF;
        struct nsqd_message *old = msg_table_find(&live, id);
        if (old) {
            msg_table_remove(&live, old);
            nsqd_message_free(old);
        }
        if (type == JREC_DONE)
            continue;
        if ((type != JREC_DELIVER && type != JREC_DEFER) ||
            plen < JOURNAL_MSG_OFF + NSQ_MSG_HEADER_LEN)
            break;
        struct nsqd_message *m = nsqd_message_decode(pl + JOURNAL_MSG_OFF, plen - JOURNAL_MSG_OFF);
        if (!m)
            break;
        m->deferred = type == JREC_DEFER ? (int64_t)get_be64(pl + JOURNAL_DUE_OFF) : 0;
        if (type == JREC_DEFER && m->deferred == 0)
            m->deferred = 1;
        if (msg_table_insert(&live, m) != 0) {
            nsqd_message_free(m);
            break;
        }
    }
    if (off < len)
        nsq_warn("JOURNAL(%s): ignoring %zu bytes of a torn or corrupt tail", j->path, len - off);
    *valid = off;
    size_t n = live.count;
    for (size_t b = 0; b < live.nbuckets; b++) {
        struct nsqd_message *m = live.buckets[b];
        while (m) {
            struct nsqd_message *next = m->hnext;
            m->hnext = NULL;
            int64_t due = m->deferred;
            m->deferred = 0;
            fn(arg, m, due);
            m = next;
        }
        live.buckets[b] = NULL;
    }
    live.count = 0;
    msg_table_release(&live);
    return n;
}

static int read_whole(const char *path, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    size_t size = (size_t)st.st_size;
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    size_t got = 0;
    while (got < size) {
        ssize_t n = read(fd, buf + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    *out = buf;
    *len = got;
    return 0;
}

struct journal *journal_open(struct journal_writer *w, const char *data_path, const char *name,
                             struct diskqueue *dq, journal_replay_fn fn, void *arg)
{
    struct journal *j = calloc(1, sizeof(*j));
    if (!j)
        return NULL;
    j->w = w;
    j->dq = dq;
    j->fd = -1;
    const char *dir = data_path && data_path[0] ? data_path : ".";
    size_t plen = strlen(dir) + 1 + strlen(name) + sizeof(JOURNAL_SUFFIX) + sizeof(".tmp");
    j->path = malloc(plen);
    j->tmp_path = malloc(plen);
    j->dir = strdup(dir);
    if (!j->path || !j->tmp_path || !j->dir)
        goto err;
    snprintf(j->path, plen, "%s/%s%s", dir, name, JOURNAL_SUFFIX);
    snprintf(j->tmp_path, plen, "%s/%s%s.tmp", dir, name, JOURNAL_SUFFIX);
    uint8_t *data;
    size_t len;
    int rc = read_whole(j->path, &data, &len);
    if (rc) {
        log_io_error(j, "read", rc);
        goto err;
    }
    j->bytes = (int64_t)len;
    j->compact_at = JOURNAL_COMPACT_MIN_BYTES;
    if (data) {
        size_t valid;
        size_t live = journal_replay(j, data, len, fn, arg, &valid);
        free(data);
        if (live == 0) {
            /* Nothing to keep (all done, or no valid record): start without a file. */
            unlink(j->path);
            j->bytes = 0;
        } else if (valid < len) {
            /* Records appended after a torn tail would never be read: cut it off now. */
            if (truncate(j->path, (off_t)valid) != 0)
                log_io_error(j, "truncate", -errno);
            j->bytes = (int64_t)valid;
        }
    }
    return j;
err:
    journal_release(j);
    return NULL;
}
