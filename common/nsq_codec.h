/*
 * nsq_codec: the stream compressions negotiated by IDENTIFY (snappy framing, raw deflate) as
 * libevent bufferevent filters. The stream transforms themselves live in nsq_snappy_stream.h and
 * nsq_deflate_stream.h, included here for convenience.
 *
 * A filter decodes everything arriving on the underlying bufferevent into its own input buffer and
 * encodes everything written to its own output buffer, at once: each time the owner adds to the
 * filter's output (each evbuffer_add / evbuffer_add_buffer call), that data is compressed and
 * handed to the underlying bufferevent as its own snappy chunk(s) or deflate sync-flushed segment.
 * To send several pieces as one segment, assemble them in a separate evbuffer and move it with one
 * evbuffer_add_buffer.
 *
 * Switching a live connection (e.g. nsqd after its IDENTIFY reply):
 *   1. write the last plain-text bytes to `under` (they are encoded by nothing);
 *   2. f = nsq_codec_filter_new(under, kind, level, BEV_OPT_CLOSE_ON_FREE);
 *      from now on use f, never `under` directly (the filter owns under's callbacks);
 *   3. bufferevent_setcb(f, ...); bufferevent_enable(f, EV_READ | EV_WRITE);
 *   4. nsq_codec_filter_resume(f): bytes the peer sent after the upgrade point that already sit in
 *      under's input buffer are decoded now (the filter handles whatever arrives afterwards).
 * Stacks: a filter may sit on a TLS bufferevent (bufferevent_openssl) as well as on a socket.
 *
 * Memory: a read high watermark on the filter (bufferevent_setwatermark(f, EV_READ, 0, high))
 * bounds how much decoded data is queued; undecoded input then waits in under's buffer. Without
 * one, each decode step is capped at NSQ_CODEC_FILTER_READ_MAX bytes and the steps repeat while
 * input remains.
 *
 * Corrupt input: the filter stops decoding and reports BEV_EVENT_READING | BEV_EVENT_ERROR to the
 * filter's event callback (deferred, so the callback may free the filter), with
 * EVUTIL_SOCKET_ERROR() == EBADMSG inside the callback.
 */
#ifndef NSQ_CODEC_H
#define NSQ_CODEC_H

#include "nsq_deflate_stream.h"
#include "nsq_snappy_stream.h"

struct bufferevent;

enum nsq_codec_kind {
    NSQ_CODEC_SNAPPY = 1,
    NSQ_CODEC_DEFLATE = 2,
};

#define NSQ_CODEC_FILTER_READ_MAX (256 * 1024) /* decode cap per step without a watermark */

/*
 * Wraps `under` in a filter applying `kind` both ways; `level` (1..9) is the deflate level, ignored
 * for snappy. bev_options as for bufferevent_filter_new (BEV_OPT_CLOSE_ON_FREE frees `under` with
 * the filter). Returns NULL on a bad kind/level or allocation failure (under is then untouched).
 */
struct bufferevent *nsq_codec_filter_new(struct bufferevent *under, int kind, int level,
                                         int bev_options);

/* Decodes what is already waiting in the underlying input buffer (see "Switching" above). */
void nsq_codec_filter_resume(struct bufferevent *filter);

#endif
