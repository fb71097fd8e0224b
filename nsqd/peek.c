/*
 * peek: renders the next messages of a channel without consuming them (see peek.h).
 *
 * Memory-ring messages are rendered in place. Diskqueue records are copied (decoded into message
 * objects) inside diskqueue_peek's callback, which runs under the queue's lock, and rendered after
 * it returns, so the I/O thread waits for memcpy only, never for the JSON encoding.
 *
 * Bodies: a body that is valid UTF-8 is a JSON string (escaped as the rest of nsqd's JSON);
 * any other body is base64 (RFC 4648, padded) with "encoding": "base64" beside it.
 */
#include "peek.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include <event2/buffer.h>

#include "channel.h"
#include "diskqueue.h"
#include "message.h"
#include "nsq_goquote.h"
#include "nsq_json.h"

#define B64_IN_GROUP  3
#define B64_OUT_GROUP 4
#define B64_CHUNK     (B64_IN_GROUP * 1024) /* input bytes encoded per append */

/* True if s is entirely valid UTF-8. The decoder returns U+FFFD and 1 byte for an invalid
   sequence; a real U+FFFD is 3 bytes. */
static bool body_is_utf8(const uint8_t *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint32_t r;
        size_t k = nsq_utf8_decode(s + i, len - i, &r);
        if (r == NSQ_RUNE_ERROR && k == 1)
            return false;
        i += k;
    }
    return true;
}

/* Appends the base64 of p as a JSON string (the alphabet needs no escaping). */
static void json_base64(struct nsq_json *j, const uint8_t *p, size_t len)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char out[B64_CHUNK / B64_IN_GROUP * B64_OUT_GROUP];
    nsq_json_raw(j, "\"", 1);
    while (len > 0) {
        size_t take = len < B64_CHUNK ? len : B64_CHUNK, o = 0;
        for (size_t i = 0; i < take; i += B64_IN_GROUP) {
            size_t rest = take - i;
            uint32_t v = (uint32_t)p[i] << 16;
            if (rest > 1)
                v |= (uint32_t)p[i + 1] << 8;
            if (rest > 2)
                v |= p[i + 2];
            out[o++] = tab[(v >> 18) & 63];
            out[o++] = tab[(v >> 12) & 63];
            out[o++] = rest > 1 ? tab[(v >> 6) & 63] : '=';
            out[o++] = rest > 2 ? tab[v & 63] : '=';
        }
        evbuffer_add(j->out, out, o);
        p += take;
        len -= take;
    }
    evbuffer_add(j->out, "\"", 1);
}

static void render_message(struct nsq_json *j, const struct nsqd_message *m)
{
    nsq_json_object_begin(j);
    nsq_json_kv_string_len(j, "id", m->id, NSQ_MSG_ID_LEN);
    nsq_json_kv_int(j, "timestamp", m->timestamp);
    nsq_json_kv_int(j, "attempts", m->attempts);
    nsq_json_kv_uint(j, "size", m->body_len);
    if (body_is_utf8(m->body, m->body_len)) {
        nsq_json_kv_string_len(j, "body", (const char *)m->body, m->body_len);
    } else {
        nsq_json_key(j, "body");
        json_base64(j, m->body, m->body_len);
        nsq_json_kv_string(j, "encoding", "base64");
    }
    nsq_json_object_end(j);
}

/* Diskqueue records copied by the peek callback, in order. Owns the messages. */
struct peek_copy {
    struct nsqd_message **v;
    size_t n, cap;
    size_t bytes; /* body bytes shown so far, memory ring included */
};

static int peek_copy_record(const uint8_t *data, size_t len, void *arg)
{
    struct peek_copy *pc = arg;
    struct nsqd_message *m = nsqd_message_decode(data, len);
    if (!m)
        return 0; /* too short to be a message (the pump skips it too) or out of memory */
    pc->v[pc->n++] = m;
    pc->bytes += m->body_len;
    return pc->bytes >= NSQD_PEEK_MAX_BYTES;
}

int channel_peek_render(struct channel *c, size_t n, struct evbuffer *out)
{
    struct nsq_json j;
    nsq_json_init(&j, out);
    nsq_json_object_begin(&j);
    nsq_json_key(&j, "messages");
    nsq_json_array_begin(&j);

    struct peek_copy pc = {0};
    size_t shown = 0;
    size_t mem = msg_ring_len(&c->memq);
    for (size_t i = 0; i < mem && shown < n; i++) {
        if (shown > 0 && pc.bytes >= NSQD_PEEK_MAX_BYTES)
            break;
        const struct nsqd_message *m = msg_ring_at(&c->memq, i);
        render_message(&j, m);
        pc.bytes += m->body_len;
        shown++;
    }
    if (c->dq && shown < n && pc.bytes < NSQD_PEEK_MAX_BYTES) {
        pc.cap = n - shown;
        pc.v = calloc(pc.cap, sizeof(*pc.v));
        if (!pc.v)
            return -ENOMEM;
        pc.n = 0;
        diskqueue_peek(c->dq, pc.cap, peek_copy_record, &pc);
        for (size_t i = 0; i < pc.n; i++) {
            render_message(&j, pc.v[i]);
            nsqd_message_free(pc.v[i]);
        }
        free(pc.v);
    }

    nsq_json_array_end(&j);
    nsq_json_kv_int(&j, "depth", channel_depth(c));
    nsq_json_kv_uint(&j, "in_flight_count", channel_in_flight_count(c));
    nsq_json_kv_uint(&j, "deferred_count", channel_deferred_count(c));
    nsq_json_object_end(&j);
    return 0;
}
