/*
 * nsq_codec: bufferevent filters over the snappy and deflate stream transforms.
 *
 * libevent calls the input filter repeatedly while it returns BEV_OK and underlying input remains,
 * so the filter returns BEV_OK only when it made progress; otherwise BEV_NEED_MORE. libevent
 * ignores BEV_ERROR from an input filter, so corruption is reported through a deferred event.
 */
#include "nsq_codec.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

struct codec_filter {
    int kind;
    struct bufferevent *bev;   /* the filter itself, for error reporting */
    struct bufferevent *under; /* the bufferevent it wraps */
    struct evbuffer_cb_entry *inbuf_cb;
    bool failed;
    struct nsq_snappy_writer *sw;
    struct nsq_snappy_reader *sr;
    struct nsq_deflate_writer *dw;
    struct nsq_deflate_reader *dr;
};

static void codec_filter_free(void *arg)
{
    struct codec_filter *c = arg;
    if (!c)
        return;
    if (c->inbuf_cb)
        evbuffer_remove_cb_entry(bufferevent_get_input(c->bev), c->inbuf_cb);
    nsq_snappy_writer_free(c->sw);
    nsq_snappy_reader_free(c->sr);
    nsq_deflate_writer_free(c->dw);
    nsq_deflate_reader_free(c->dr);
    free(c);
}

static void codec_filter_fail(struct codec_filter *c, short what, int err)
{
    if (c->failed)
        return;
    c->failed = true;
    /* A deferred event callback sees this as EVUTIL_SOCKET_ERROR(). */
    errno = -err;
    if (c->bev)
        bufferevent_trigger_event(c->bev, what | BEV_EVENT_ERROR, BEV_TRIG_DEFER_CALLBACKS);
}

static enum bufferevent_filter_result codec_filter_in(struct evbuffer *src, struct evbuffer *dst,
                                                      ev_ssize_t dst_limit,
                                                      enum bufferevent_flush_mode mode, void *ctx)
{
    struct codec_filter *c = ctx;
    size_t src_before = evbuffer_get_length(src);
    size_t dst_before = evbuffer_get_length(dst);
    size_t max_out = NSQ_CODEC_FILTER_READ_MAX;
    int rc;

    if (c->failed)
        return BEV_ERROR;
    if (dst_limit >= 0 && (size_t)dst_limit < max_out)
        max_out = dst_limit > 0 ? (size_t)dst_limit : 1;
    if (c->kind == NSQ_CODEC_SNAPPY)
        rc = nsq_snappy_read_max(c->sr, src, dst, max_out);
    else
        rc = nsq_deflate_read_max(c->dr, src, dst, max_out);
    if (rc < 0) {
        codec_filter_fail(c, BEV_EVENT_READING, rc);
        return BEV_ERROR;
    }
    if (evbuffer_get_length(src) != src_before || evbuffer_get_length(dst) != dst_before)
        return BEV_OK;
    return BEV_NEED_MORE;
}

static enum bufferevent_filter_result codec_filter_out(struct evbuffer *src, struct evbuffer *dst,
                                                       ev_ssize_t dst_limit,
                                                       enum bufferevent_flush_mode mode, void *ctx)
{
    struct codec_filter *c = ctx;
    int rc;

    if (c->failed)
        return BEV_ERROR;
    if (evbuffer_get_length(src) == 0)
        return BEV_NEED_MORE;
    /* Everything is encoded at once whatever the mode: every write the owner makes must reach the
     * peer promptly, and the encoders keep nothing back. */
    if (c->kind == NSQ_CODEC_SNAPPY)
        rc = nsq_snappy_write(c->sw, src, dst);
    else
        rc = nsq_deflate_write(c->dw, src, dst);
    if (rc < 0) {
        codec_filter_fail(c, BEV_EVENT_WRITING, rc);
        return BEV_ERROR;
    }
    return BEV_OK;
}

/*
 * libevent stops decoding when the filter's input reaches its read high watermark and resumes when
 * the owner drains it, but only if the owner drains it after libevent has noticed the watermark.
 * An owner draining from inside its read callback (the common case) does so before, and undecoded
 * input would then sit in the underlying buffer until more bytes arrive. This callback closes that
 * gap: whenever the owner removes decoded data and undecoded input waits below the watermark, a
 * decode pass is scheduled (deferred, so passes never nest).
 */
static void codec_filter_inbuf_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info,
                                  void *arg)
{
    struct codec_filter *c = arg;
    size_t high = 0;

    if (info->n_deleted == 0 || c->failed)
        return;
    if (bufferevent_getwatermark(c->bev, EV_READ, NULL, &high) != 0 || high == 0)
        return;
    if (evbuffer_get_length(buf) < high && evbuffer_get_length(bufferevent_get_input(c->under)) > 0)
        bufferevent_trigger(c->under, EV_READ,
                            BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
}

struct bufferevent *nsq_codec_filter_new(struct bufferevent *under, int kind, int level,
                                         int bev_options)
{
    struct codec_filter *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->kind = kind;
    switch (kind) {
    case NSQ_CODEC_SNAPPY:
        c->sw = nsq_snappy_writer_new();
        c->sr = nsq_snappy_reader_new();
        if (!c->sw || !c->sr)
            goto err;
        break;
    case NSQ_CODEC_DEFLATE:
        c->dw = nsq_deflate_writer_new(level);
        c->dr = nsq_deflate_reader_new();
        if (!c->dw || !c->dr)
            goto err;
        break;
    default:
        goto err;
    }
    struct bufferevent *f = bufferevent_filter_new(under, codec_filter_in, codec_filter_out,
                                                   bev_options, codec_filter_free, c);
    if (!f)
        goto err;
    c->bev = f;
    c->under = under;
    /* Without memory for the callback the filter still works; resuming after a full watermark
     * then waits for the next bytes to arrive. */
    c->inbuf_cb = evbuffer_add_cb(bufferevent_get_input(f), codec_filter_inbuf_cb, c);
    return f;
err:
    codec_filter_free(c);
    return NULL;
}

void nsq_codec_filter_resume(struct bufferevent *filter)
{
    struct bufferevent *under = bufferevent_get_underlying(filter);
    if (under && evbuffer_get_length(bufferevent_get_input(under)) > 0)
        bufferevent_trigger(under, EV_READ, BEV_TRIG_IGNORE_WATERMARKS);
}
