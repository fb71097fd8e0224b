/*
 * nsq_deflate_stream: raw DEFLATE over evbuffers on zlib.
 *
 * Input is read in place from src's chains (evbuffer_peek) and output is written in place into
 * space reserved in dst, so apart from zlib's own state nothing is copied or buffered here.
 */
#include "nsq_deflate_stream.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <event2/buffer.h>

#define OUT_RESERVE 16384 /* bytes of dst reserved per zlib call */
#define PEEK_BATCH  8     /* src chains inspected per evbuffer_peek */

struct nsq_deflate_writer {
    z_stream zs;
    int err;
};

struct nsq_deflate_reader {
    z_stream zs;
    bool ended; /* the final block was seen; any further byte is an error */
    int err;
};

struct nsq_deflate_writer *nsq_deflate_writer_new(int level)
{
    if (level < NSQ_DEFLATE_LEVEL_MIN || level > NSQ_DEFLATE_LEVEL_MAX)
        return NULL;
    struct nsq_deflate_writer *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    if (deflateInit2(&w->zs, level, Z_DEFLATED, NSQ_DEFLATE_WINDOW_BITS, NSQ_DEFLATE_MEM_LEVEL,
                     Z_DEFAULT_STRATEGY) != Z_OK) {
        free(w);
        return NULL;
    }
    return w;
}

void nsq_deflate_writer_free(struct nsq_deflate_writer *w)
{
    if (!w)
        return;
    deflateEnd(&w->zs);
    free(w);
}

struct nsq_deflate_reader *nsq_deflate_reader_new(void)
{
    struct nsq_deflate_reader *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    if (inflateInit2(&r->zs, NSQ_DEFLATE_WINDOW_BITS) != Z_OK) {
        free(r);
        return NULL;
    }
    return r;
}

void nsq_deflate_reader_free(struct nsq_deflate_reader *r)
{
    if (!r)
        return;
    inflateEnd(&r->zs);
    free(r);
}

/* Runs deflate with `flush` until it has taken all of next_in and, for a flush, emitted all. */
static int deflate_pump(struct nsq_deflate_writer *w, int flush, struct evbuffer *dst)
{
    z_stream *zs = &w->zs;

    do {
        struct evbuffer_iovec v;
        if (evbuffer_reserve_space(dst, OUT_RESERVE, &v, 1) != 1)
            return -ENOMEM;
        zs->next_out = v.iov_base;
        zs->avail_out = (uInt)v.iov_len;
        int ret = deflate(zs, flush);
        v.iov_len -= zs->avail_out;
        if (evbuffer_commit_space(dst, &v, 1) != 0)
            return -ENOMEM;
        if (ret == Z_BUF_ERROR)
            break; /* no progress possible: nothing left to do */
        if (ret != Z_OK)
            return -EIO;
    } while (zs->avail_in > 0 || zs->avail_out == 0);
    return 0;
}

int nsq_deflate_write(struct nsq_deflate_writer *w, struct evbuffer *src, struct evbuffer *dst)
{
    if (w->err)
        return w->err;
    if (evbuffer_get_length(src) == 0)
        return 0;

    int rc = 0;
    while (rc == 0 && evbuffer_get_length(src) > 0) {
        struct evbuffer_iovec vec[PEEK_BATCH];
        int n = evbuffer_peek(src, -1, NULL, vec, PEEK_BATCH);
        size_t consumed = 0;
        for (int i = 0; i < n && i < PEEK_BATCH && rc == 0; i++) {
            w->zs.next_in = vec[i].iov_base;
            w->zs.avail_in = (uInt)vec[i].iov_len;
            rc = deflate_pump(w, Z_NO_FLUSH, dst);
            consumed += vec[i].iov_len - w->zs.avail_in;
        }
        evbuffer_drain(src, consumed);
    }
    w->zs.next_in = NULL;
    w->zs.avail_in = 0;
    if (rc == 0)
        rc = deflate_pump(w, Z_SYNC_FLUSH, dst);
    if (rc < 0)
        w->err = rc;
    return rc;
}

/* One inflate call into at most `room` bytes of fresh dst space; adds the output to *produced. */
static int inflate_step(struct nsq_deflate_reader *r, struct evbuffer *dst, size_t room,
                        size_t *produced)
{
    struct evbuffer_iovec v;
    z_stream *zs = &r->zs;

    if (room > OUT_RESERVE)
        room = OUT_RESERVE;
    if (evbuffer_reserve_space(dst, (ev_ssize_t)room, &v, 1) != 1)
        return -ENOMEM;
    if (v.iov_len > room)
        v.iov_len = room;
    zs->next_out = v.iov_base;
    zs->avail_out = (uInt)v.iov_len;
    int ret = inflate(zs, Z_SYNC_FLUSH);
    v.iov_len -= zs->avail_out;
    *produced += v.iov_len;
    if (evbuffer_commit_space(dst, &v, 1) != 0)
        return -ENOMEM;
    switch (ret) {
    case Z_OK:
    case Z_BUF_ERROR: /* no progress possible without more input */
        return 0;
    case Z_STREAM_END:
        r->ended = true;
        return 0;
    case Z_MEM_ERROR:
        return -ENOMEM;
    default:
        return -EBADMSG;
    }
}

/* Empties what inflate still holds once its input is used up: the rest of a match and the symbols
 * in its bit buffer (bounded by NSQ_DEFLATE_READ_OVERSHOOT). Without this, output stuck inside
 * inflate would wait for input that may never come. */
static int inflate_drain_pending(struct nsq_deflate_reader *r, struct evbuffer *dst,
                                 size_t *produced)
{
    int rc;
    do {
        r->zs.next_in = NULL;
        r->zs.avail_in = 0;
        rc = inflate_step(r, dst, OUT_RESERVE, produced);
    } while (rc == 0 && r->zs.avail_out == 0 && !r->ended);
    return rc;
}

int nsq_deflate_read_max(struct nsq_deflate_reader *r, struct evbuffer *src, struct evbuffer *dst,
                         size_t max_out)
{
    size_t produced = 0;
    bool pending_out = false; /* inflate may hold output: the last step filled its space */
    int rc = 0;

    if (r->err)
        return r->err;
    if (max_out == 0)
        max_out = 1;
    while (rc == 0 && evbuffer_get_length(src) > 0) {
        if (r->ended) {
            rc = -EBADMSG;
            break;
        }
        if (produced >= max_out) {
            rc = NSQ_DEFLATE_MORE;
            break;
        }
        struct evbuffer_iovec vec[PEEK_BATCH];
        int n = evbuffer_peek(src, -1, NULL, vec, PEEK_BATCH);
        size_t consumed = 0;
        for (int i = 0; i < n && i < PEEK_BATCH && rc == 0; i++) {
            r->zs.next_in = vec[i].iov_base;
            r->zs.avail_in = (uInt)vec[i].iov_len;
            while (rc == 0 && r->zs.avail_in > 0 && produced < max_out && !r->ended) {
                uInt before = r->zs.avail_in;
                size_t before_out = produced;
                rc = inflate_step(r, dst, max_out - produced, &produced);
                pending_out = r->zs.avail_out == 0;
                if (rc == 0 && before == r->zs.avail_in && before_out == produced)
                    rc = -EBADMSG; /* inflate stalled with input and room */
            }
            consumed += vec[i].iov_len - r->zs.avail_in;
            if (r->zs.avail_in > 0)
                break;
        }
        evbuffer_drain(src, consumed);
    }
    if (rc == 0 && pending_out && !r->ended)
        rc = inflate_drain_pending(r, dst, &produced);
    r->zs.next_in = NULL;
    r->zs.avail_in = 0;
    if (rc < 0)
        r->err = rc;
    return rc;
}

int nsq_deflate_read(struct nsq_deflate_reader *r, struct evbuffer *src, struct evbuffer *dst)
{
    return nsq_deflate_read_max(r, src, dst, NSQ_DEFLATE_READ_MAX_DEFAULT);
}
