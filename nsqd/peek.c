/*
 * peek: renders the next messages of a channel without consuming them (see peek.h).
 *
 * Memory-ring messages are decoded one at a time (msg_ring_iter), rendered and freed. Diskqueue
 * records are copied (decoded into message objects) inside diskqueue_peek's callback, which runs
 * under the queue's lock, and rendered after it returns, so the I/O thread waits for memcpy only,
 * never for the JSON encoding; the copies belong to channel_peek_render and are freed before it
 * returns. The in-flight and deferred lists (include flags) are read in place from the channel's
 * loop-thread structures.
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
#include "nsq_time.h"

#define B64_IN_GROUP  3
#define B64_OUT_GROUP 4
#define B64_CHUNK     (B64_IN_GROUP * 1024) /* input bytes encoded per append */
#define NS_PER_MS     1000000LL

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

/* Opens the message's object and writes its fields; the caller may add more, then closes it. */
static void render_message_open(struct nsq_json *j, const struct nsqd_message *m)
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
}

static void render_message(struct nsq_json *j, const struct nsqd_message *m)
{
    render_message_open(j, m);
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

/*
 * The n messages with the smallest pri (in-flight deadline or deferred due time), kept in a
 * binary max-heap of n pointers while scanning all k candidates: O(k log n) time, O(n) memory,
 * whatever the number of in-flight or deferred messages. Sorted ascending at the end.
 */
struct pri_select {
    const struct nsqd_message **v;
    size_t n, cap;
};

static void sel_swap(struct pri_select *s, size_t a, size_t b)
{
    const struct nsqd_message *t = s->v[a];
    s->v[a] = s->v[b];
    s->v[b] = t;
}

static void sel_down(struct pri_select *s, size_t i, size_t len)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < len && s->v[l]->pri > s->v[m]->pri)
            m = l;
        if (r < len && s->v[r]->pri > s->v[m]->pri)
            m = r;
        if (m == i)
            return;
        sel_swap(s, i, m);
        i = m;
    }
}

static void sel_offer(struct pri_select *s, const struct nsqd_message *m)
{
    if (s->n < s->cap) {
        size_t i = s->n++;
        s->v[i] = m;
        while (i > 0 && s->v[(i - 1) / 2]->pri < s->v[i]->pri) {
            sel_swap(s, i, (i - 1) / 2);
            i = (i - 1) / 2;
        }
    } else if (s->cap > 0 && m->pri < s->v[0]->pri) {
        s->v[0] = m;
        sel_down(s, 0, s->n);
    }
}

/* Heap sort in place: ascending pri. */
static void sel_sort(struct pri_select *s)
{
    for (size_t end = s->n; end > 1; end--) {
        sel_swap(s, 0, end - 1);
        sel_down(s, 0, end - 1);
    }
}

/* "<key>": [messages with "<due_key>": ms from now (negative when overdue)], earliest first. */
static void render_selected(struct nsq_json *j, const char *key, const char *due_key,
                            struct pri_select *s)
{
    int64_t now = nsq_mono_ns();
    sel_sort(s);
    nsq_json_key(j, key);
    nsq_json_array_begin(j);
    size_t bytes = 0;
    for (size_t i = 0; i < s->n && (i == 0 || bytes < NSQD_PEEK_MAX_BYTES); i++) {
        const struct nsqd_message *m = s->v[i];
        bytes += m->body_len;
        render_message_open(j, m);
        nsq_json_kv_int(j, due_key, (m->pri - now) / NS_PER_MS);
        nsq_json_object_end(j);
    }
    nsq_json_array_end(j);
}

static int render_in_flight(struct nsq_json *j, const struct channel *c, size_t n)
{
    struct pri_select s = {.cap = n};
    s.v = calloc(n, sizeof(*s.v));
    if (!s.v)
        return -ENOMEM;
    const struct msg_table *t = &c->in_flight;
    for (size_t b = 0; b < t->nbuckets; b++)
        for (const struct nsqd_message *m = t->buckets[b]; m; m = m->hnext)
            sel_offer(&s, m);
    render_selected(j, "in_flight", "expires_in_ms", &s);
    free(s.v);
    return 0;
}

static int render_deferred(struct nsq_json *j, const struct channel *c, size_t n)
{
    struct pri_select s = {.cap = n};
    s.v = calloc(n, sizeof(*s.v));
    if (!s.v)
        return -ENOMEM;
    for (size_t i = 0; i < pq_len(&c->deferred_pq); i++)
        sel_offer(&s, c->deferred_pq.items[i].m);
    render_selected(j, "deferred", "due_in_ms", &s);
    free(s.v);
    return 0;
}

int channel_peek_render(struct channel *c, size_t n, unsigned include, struct evbuffer *out)
{
    struct nsq_json j;
    nsq_json_init(&j, out);
    nsq_json_object_begin(&j);
    nsq_json_key(&j, "messages");
    nsq_json_array_begin(&j);

    struct peek_copy pc = {0};
    size_t shown = 0;
    struct msg_ring_iter it;
    msg_ring_iter_init(&c->memq, &it);
    struct nsqd_message *m;
    while (shown < n && (shown == 0 || pc.bytes < NSQD_PEEK_MAX_BYTES) &&
           (m = msg_ring_iter_next(&it))) {
        render_message(&j, m);
        pc.bytes += m->body_len;
        shown++;
        nsqd_message_free(m);
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
    if ((include & PEEK_INCLUDE_IN_FLIGHT) && render_in_flight(&j, c, n) != 0)
        return -ENOMEM;
    if ((include & PEEK_INCLUDE_DEFERRED) && render_deferred(&j, c, n) != 0)
        return -ENOMEM;
    nsq_json_object_end(&j);
    return 0;
}
