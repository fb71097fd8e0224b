/*
 * diskqueue_read: the I/O side's reader. Fills the read-ahead ring from the segments
 * (storage.md §2.2), treats the end of a completed segment as normal advancement, and sets damaged
 * segments aside as .bad (§4.1) once the records read before the damage have been popped. See
 * diskqueue_internal.h for the structure, the positions and locking.
 */
#include "diskqueue_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Moves the read cursor to the start of `file`; cons follows through the last read-ahead record,
   or directly when nothing is read ahead (see diskqueue_internal.h). */
static void dq_reader_jump(struct diskqueue *dq, int64_t file)
{
    dq_close_fd(&dq->rd_fd);
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

bool dq_scan_segments(struct diskqueue *dq, int64_t from, int64_t to, bool remove, int64_t *lowest,
                      int64_t *highest, int *first_err)
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
        if (highest && (!found || n > *highest))
            *highest = n;
        found = true;
        if (remove) {
            dq_seg_path(dq, dq->path_b, n, false);
            if (unlink(dq->path_b) != 0 && errno != ENOENT && first_err && *first_err == 0)
                *first_err = -errno;
        }
    }
    closedir(d);
    return found;
}

int64_t dq_count_records(struct diskqueue *dq, int64_t file, int64_t pos)
{
    dq_seg_path(dq, dq->path_b, file, false);
    int fd = open(dq->path_b, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    struct stat st;
    uint8_t *buf = malloc(DQ_COUNT_CHUNK);
    if (!buf || fstat(fd, &st) != 0) {
        free(buf);
        close(fd);
        return 0;
    }
    int64_t size = st.st_size, n = 0;
    int64_t cpos = 0, clen = 0; /* buf holds bytes [cpos, cpos + clen) of the file */
    while (pos + DQ_LEN_BYTES <= size) {
        if (pos < cpos || pos + DQ_LEN_BYTES > cpos + clen) {
            int64_t want = size - pos < DQ_COUNT_CHUNK ? size - pos : DQ_COUNT_CHUNK;
            ssize_t r = pread(fd, buf, (size_t)want, (off_t)pos);
            if (r < DQ_LEN_BYTES)
                break;
            cpos = pos;
            clen = r;
        }
        int32_t len = (int32_t)nsq_get_be32(buf + (pos - cpos));
        if (len < dq->min_msg_size || len > dq->max_msg_size || pos + DQ_LEN_BYTES + len > size)
            break;
        pos += DQ_LEN_BYTES + len;
        n++;
    }
    free(buf);
    close(fd);
    return n;
}

bool dq_range_wider_than(int64_t from, int64_t to, uint64_t gap)
{
    return to > from && (uint64_t)to - (uint64_t)from > gap;
}

/* storage.md §4.1: set segment rd_file aside as .bad and continue with the next one. */
static void dq_read_error(struct diskqueue *dq, const char *why, int64_t at, bool missing)
{
    int64_t bad = dq->rd_file;
    DQ_LOG(dq, DQ_LOG_ERROR, "DISKQUEUE(%s) reading at %s.%06" PRId64 ".dat:%" PRId64 " - %s",
           dq->name, dq->base, bad, at, why);
    dq_close_fd(&dq->rd_fd);
    dq_seg_path(dq, dq->path_a, bad, false);
    dq_seg_path(dq, dq->path_b, bad, true);
    if (rename(dq->path_a, dq->path_b) != 0)
        DQ_LOG(dq, DQ_LOG_ERROR, "DISKQUEUE(%s) failed to rename bad diskqueue file %s to %s - %s",
               dq->name, dq->path_a, dq->path_b, strerror(errno));
    else
        DQ_LOG(dq, DQ_LOG_WARN, "DISKQUEUE(%s) jump to next file and saving bad file as %s",
               dq->name, dq->path_b);

    int64_t next = bad + 1;
    if (missing && dq_range_wider_than(next, dq->wr_file, DQ_SCAN_GAP)) {
        /* a long run of missing segments: go straight to the next one that exists */
        int64_t low;
        next = dq_scan_segments(dq, next, dq->wr_file, false, &low, NULL, NULL) ? low : dq->wr_file;
    }
    dq_reader_jump(dq, next);
}

/*
 * A read error in segment rd_file (storage.md §4.1). If it is the write segment, writing moves to
 * a new one at once, so that records put from now on do not land in a segment about to be set
 * aside. The rest is handled only once every record read before the error has been popped:
 * renaming the segment while good records of it are still in `ra` would lose them if the queue
 * were closed before they are popped (the metadata would point into the renamed file). Returns
 * true if handling must wait (pop schedules a run when `ra` becomes empty; the error is met again
 * from rd), false once the segment has been set aside.
 */
static bool dq_read_failed(struct diskqueue *dq, const char *why, int64_t at, bool missing)
{
    if (dq->rd_file == dq->wr_file) {
        dq->sealed_file = dq->wr_file; /* the reader's end stays the old write position */
        dq->sealed_size = dq->wr_pos;
        dq_close_fd(&dq->wr_fd);
        dq->wr_file++;
        dq->wr_pos = 0;
        dq_publish_write_pos(dq);
    }
    pthread_mutex_lock(&dq->mu);
    bool defer = dq->ra_count > 0;
    dq->error_wait = defer;
    pthread_mutex_unlock(&dq->mu);
    if (!defer)
        dq_read_error(dq, why, at, missing);
    return defer;
}

static int dq_open_read(struct diskqueue *dq)
{
    if (dq->rd_fd >= 0 && dq->rd_fd_file == dq->rd_file)
        return 0;
    dq_close_fd(&dq->rd_fd);
    dq->rd_size = -1;
    dq_seg_path(dq, dq->path_a, dq->rd_file, false);
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

/* Reads n bytes at off. Returns 0, -ENODATA when the file ends first (*got tells how many bytes
   were read), or -errno. */
static int pread_full(int fd, uint8_t *p, size_t n, int64_t off, size_t *got)
{
    *got = 0;
    while (*got < n) {
        ssize_t r = pread(fd, p + *got, n - *got, (off_t)(off + (int64_t)*got));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            return -ENODATA;
        *got += (size_t)r;
    }
    return 0;
}

/* Appends records to the ring (mu held); each takes a reference on its chunk. Returns 0 or
   -ENOMEM. */
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
        recs[i].chunk->refs++;
        dq->ra_count++;
        dq->ra_bytes += recs[i].len;
    }
    return 0;
}

void dq_chunk_unref_locked(struct diskqueue *dq, struct dq_chunk *c)
{
    if (!c || --c->refs > 0)
        return;
    /* keep one buffer for the next read while records keep flowing */
    if (!dq->spare && dq->ra_count > 0) {
        dq->spare = c;
        return;
    }
    free(c);
}

/* A chunk of at least `size` bytes with one reference (the caller's): the spare one when large
   enough, else a new allocation. NULL when out of memory. */
static struct dq_chunk *dq_chunk_get(struct diskqueue *dq, size_t size)
{
    pthread_mutex_lock(&dq->mu);
    struct dq_chunk *c = dq->spare;
    dq->spare = NULL;
    pthread_mutex_unlock(&dq->mu);
    if (c && c->cap < size) {
        free(c);
        c = NULL;
    }
    if (!c) {
        c = malloc(sizeof(*c) + size);
        if (!c)
            return NULL;
        c->cap = size;
    }
    c->refs = 1;
    return c;
}

/* The chunk the reader is parsing: bytes [pos, pos + len) of segment `file`. */
struct rd_chunk {
    struct dq_chunk *buf; /* the reader's reference, NULL when none is loaded */
    int64_t file, pos;
    size_t len;
    size_t need; /* after a record was cut by the chunk's end: bytes the next load must hold */
};

static void rd_chunk_drop(struct diskqueue *dq, struct rd_chunk *c)
{
    if (c->buf) {
        pthread_mutex_lock(&dq->mu);
        dq_chunk_unref_locked(dq, c->buf);
        pthread_mutex_unlock(&dq->mu);
    }
    c->buf = NULL;
    c->file = -1;
}

/* How much to read for the next chunk: about what the ring has room for (judged from the
   recent record size) but at most DQ_CHUNK_BYTES, at least `need` (one whole record), at most
   the data available. */
static size_t dq_chunk_size(const struct diskqueue *dq, const struct rd_chunk *c, size_t room_n,
                            int64_t end)
{
    size_t want = room_n * dq->rd_avg_rec + DQ_RD_MIN_CHUNK;
    if (want > DQ_CHUNK_BYTES)
        want = DQ_CHUNK_BYTES;
    if (want < c->need)
        want = c->need;
    if ((int64_t)want > end - dq->rd_pos)
        want = (size_t)(end - dq->rd_pos);
    return want;
}

/*
 * Refills the read-ahead ring from rd up to its bounds (storage.md §2.2), handling the end of
 * completed segments and corruption (§4.1). Segment bytes are read by large preads into
 * reference-counted chunks; the records parsed out of a chunk point into it (no copy, no
 * allocation per record), so the owner can pop them in place (diskqueue_pop_view). A record
 * larger than a chunk gets a chunk of its own. Sets *became_ready when the ring went from empty to
 * non-empty. Returns true when a sync is needed.
 */
static bool dq_fill_chunks(struct diskqueue *dq, struct rd_chunk *c, bool *became_ready)
{
    bool need_sync = false;
    struct dq_rec recs[DQ_RD_BATCH];

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
            if (dq_read_failed(dq, strerror(-rc), dq->rd_pos, rc == -ENOENT))
                return need_sync;
            need_sync = true;
            continue;
        }
        if (dq->rd_file < dq->wr_file && dq->rd_pos >= end) {
            if (dq->rd_pos == end) {
                /* EOF exactly at the end of a completed segment: normal advancement. */
                dq_reader_jump(dq, dq->rd_file + 1);
            } else {
                if (dq_read_failed(dq, "read position beyond end of file", dq->rd_pos, false))
                    return need_sync;
                need_sync = true;
            }
            continue;
        }

        if (!c->buf || c->file != dq->rd_file || dq->rd_pos < c->pos ||
            dq->rd_pos >= c->pos + (int64_t)c->len) {
            size_t want = dq_chunk_size(dq, c, room_n, end);
            rd_chunk_drop(dq, c);
            c->buf = dq_chunk_get(dq, want);
            if (!c->buf)
                return need_sync; /* out of memory: try again on the next run */
            size_t got;
            rc = pread_full(dq->rd_fd, c->buf->data, want, dq->rd_pos, &got);
            if (rc == -ENODATA && got > 0) {
                /* The segment ends before its recorded end (truncated): the whole records in what
                   was read are still handed out; the damage is met, and handled (§4.1), after them. */
                want = got;
                end = dq->rd_pos + (int64_t)got;
                rc = 0;
            }
            if (rc != 0) {
                rd_chunk_drop(dq, c);
                if (dq_read_failed(dq, rc == -ENODATA ? "EOF" : strerror(-rc), dq->rd_pos, false))
                    return need_sync;
                need_sync = true;
                continue;
            }
            c->file = dq->rd_file;
            c->pos = dq->rd_pos;
            c->len = want;
            c->need = 0;
        }

        /* Parse whole records out of the chunk, starting at rd. */
        const uint8_t *buf = c->buf->data;
        size_t n = 0, bytes = 0, off = (size_t)(dq->rd_pos - c->pos), start = off;
        const char *why = NULL;
        int64_t why_at = 0;
        bool cut = false;
        while (n < DQ_RD_BATCH && n < room_n && (bytes < room_b || (ra_empty && n == 0))) {
            int64_t pos = c->pos + (int64_t)off;
            if (pos >= end)
                break;
            if (pos + DQ_LEN_BYTES > end) {
                why = "EOF";
                why_at = pos;
                break;
            }
            if (off + DQ_LEN_BYTES > c->len) {
                cut = true; /* length field cut by the chunk */
                c->need = DQ_LEN_BYTES;
                break;
            }
            int32_t len = (int32_t)nsq_get_be32(buf + off);
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
            if (body_off + (size_t)len > c->len) {
                cut = true; /* load a chunk that starts with this record and holds it whole */
                c->need = (size_t)len + DQ_LEN_BYTES;
                break;
            }
            recs[n].chunk = c->buf;
            recs[n].data = buf + body_off;
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
            c->file = -1; /* reload from the cut record */

        if (n > 0) {
            dq->rd_avg_rec = (off - start) / n;
            pthread_mutex_lock(&dq->mu);
            bool was_empty = dq->ra_count == 0;
            rc = ra_append_locked(dq, recs, n);
            if (rc == 0 && was_empty)
                *became_ready = true;
            pthread_mutex_unlock(&dq->mu);
            if (rc != 0)
                return need_sync; /* out of memory: try again on the next run */
            struct dq_rec *last = &recs[n - 1];
            if (last->next_file != dq->rd_file) {
                dq_close_fd(&dq->rd_fd);
                dq->rd_fd_file = -1;
                dq->rd_size = -1;
            }
            dq->rd_file = last->next_file;
            dq->rd_pos = last->next_pos;
        }
        if (why) {
            if (dq_read_failed(dq, why, why_at, false))
                return need_sync;
            need_sync = true;
            continue;
        }
        if (n == 0 && !cut)
            return need_sync;
    }
}

bool dq_fill(struct diskqueue *dq, bool *became_ready)
{
    struct rd_chunk c = {.buf = NULL, .file = -1};
    bool need_sync = dq_fill_chunks(dq, &c, became_ready);
    rd_chunk_drop(dq, &c);
    return need_sync;
}
