/*
 * msg_ring: packed FIFO of queued messages in a chain of byte chunks (see msg_ring.h).
 *
 * Record layout (host byte order, unaligned, never leaves the process):
 *   [u32 body_len][u8 flags][u16 attempts][i64 timestamp][id][i64 deferral ns, only with
 *   MSG_REC_DEFERRED][u32 TTL ms, only with MSG_REC_TTL][body]
 * The id is kept as 8 bytes when it is 16 lowercase hex digits (every ID nsqd generates, and
 * upstream's), else as the 16 bytes given (MSG_REC_RAW_ID).
 */
#include "msg_ring.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "message.h"

/* Smallest and largest chunk; a chunk is sized after the bytes already queued, so a ring holding a
   few messages stays small and a deep one allocates rarely. A record larger than the maximum gets
   a chunk of its own size. */
#define MSG_RING_CHUNK_MIN 512
#define MSG_RING_CHUNK_MAX (1024 * 1024)
/* A drained ring keeps its last chunk up to this size for the next push. */
#define MSG_RING_KEEP_MAX (8 * 1024)

#define MSG_REC_DEFERRED  0x01
#define MSG_REC_RAW_ID    0x02
#define MSG_REC_TTL       0x04
#define MSG_REC_HDR_LEN   (4 + 1 + 2 + 8) /* before the id */
#define MSG_REC_ID_PACKED (NSQ_MSG_ID_LEN / 2)
#define MSG_REC_DEF_LEN   8
#define MSG_REC_TTL_LEN   4

struct msg_ring_chunk {
    struct msg_ring_chunk *next;
    size_t cap; /* bytes in data */
    size_t wr;  /* bytes written */
    uint8_t data[];
};

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Packs a lowercase hex id into 8 bytes. Returns false if it is not one. */
static bool id_pack(const char id[NSQ_MSG_ID_LEN], uint8_t out[MSG_REC_ID_PACKED])
{
    for (int i = 0; i < MSG_REC_ID_PACKED; i++) {
        int hi = hex_value(id[2 * i]), lo = hex_value(id[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

static void id_unpack(const uint8_t in[MSG_REC_ID_PACKED], char id[NSQ_MSG_ID_LEN])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < MSG_REC_ID_PACKED; i++) {
        id[2 * i] = digits[in[i] >> 4];
        id[2 * i + 1] = digits[in[i] & 0xf];
    }
}

static void chunk_free(struct msg_ring *r, struct msg_ring_chunk *c)
{
    size_t size = sizeof(*c) + c->cap;
    r->bytes -= size;
    nsqd_message_bytes_sub(size);
    free(c);
}

/* Appends a chunk with room for at least need bytes. Returns it or NULL. */
static struct msg_ring_chunk *chunk_append(struct msg_ring *r, size_t need)
{
    if (!r->len)
        msg_ring_release(r); /* a kept chunk too small for this record: no empty chunk ahead */
    size_t cap = r->bytes;
    if (cap < MSG_RING_CHUNK_MIN)
        cap = MSG_RING_CHUNK_MIN;
    if (cap > MSG_RING_CHUNK_MAX)
        cap = MSG_RING_CHUNK_MAX;
    if (cap < need)
        cap = need;
    struct msg_ring_chunk *c = malloc(sizeof(*c) + cap);
    if (!c)
        return NULL;
    c->next = NULL;
    c->cap = cap;
    c->wr = 0;
    r->bytes += sizeof(*c) + cap;
    nsqd_message_bytes_add(sizeof(*c) + cap);
    if (r->tail)
        r->tail->next = c;
    else
        r->head = c;
    r->tail = c;
    return c;
}

int msg_ring_push(struct msg_ring *r, struct nsqd_message *m)
{
    uint8_t packed[MSG_REC_ID_PACKED];
    uint8_t flags = (m->deferred ? MSG_REC_DEFERRED : 0) | (m->ttl_ms ? MSG_REC_TTL : 0);
    if (!id_pack(m->id, packed))
        flags |= MSG_REC_RAW_ID;
    size_t id_len = flags & MSG_REC_RAW_ID ? NSQ_MSG_ID_LEN : MSG_REC_ID_PACKED;
    size_t def_len = flags & MSG_REC_DEFERRED ? MSG_REC_DEF_LEN : 0;
    size_t ttl_len = flags & MSG_REC_TTL ? MSG_REC_TTL_LEN : 0;
    size_t need = MSG_REC_HDR_LEN + id_len + def_len + ttl_len + m->body_len;
    struct msg_ring_chunk *c = r->tail;
    if (!c || c->cap - c->wr < need) {
        c = chunk_append(r, need);
        if (!c)
            return -ENOMEM;
    }
    uint8_t *p = c->data + c->wr;
    memcpy(p, &m->body_len, 4);
    p[4] = flags;
    memcpy(p + 5, &m->attempts, 2);
    memcpy(p + 7, &m->timestamp, 8);
    p += MSG_REC_HDR_LEN;
    memcpy(p, flags & MSG_REC_RAW_ID ? (const void *)m->id : packed, id_len);
    p += id_len;
    memcpy(p, &m->deferred, def_len);
    p += def_len;
    memcpy(p, &m->ttl_ms, ttl_len);
    memcpy(p + ttl_len, m->body, m->body_len);
    c->wr += need;
    r->len++;
    nsqd_message_free(m);
    return 0;
}

/* Length of the record at p. */
static size_t record_size(const uint8_t *p)
{
    uint32_t len;
    memcpy(&len, p, 4);
    uint8_t flags = p[4];
    return MSG_REC_HDR_LEN + (flags & MSG_REC_RAW_ID ? NSQ_MSG_ID_LEN : MSG_REC_ID_PACKED) +
           (flags & MSG_REC_DEFERRED ? MSG_REC_DEF_LEN : 0) +
           (flags & MSG_REC_TTL ? MSG_REC_TTL_LEN : 0) + len;
}

/* Builds a message object from the record at p and sets *size to the record's length. NULL when
   out of memory. */
static struct nsqd_message *record_decode(const uint8_t *p, size_t *size)
{
    uint32_t len, ttl_ms = 0;
    uint16_t attempts;
    int64_t timestamp, deferred = 0;
    memcpy(&len, p, 4);
    uint8_t flags = p[4];
    memcpy(&attempts, p + 5, 2);
    memcpy(&timestamp, p + 7, 8);
    size_t off = MSG_REC_HDR_LEN;
    char id[NSQ_MSG_ID_LEN];
    if (flags & MSG_REC_RAW_ID) {
        memcpy(id, p + off, NSQ_MSG_ID_LEN);
        off += NSQ_MSG_ID_LEN;
    } else {
        id_unpack(p + off, id);
        off += MSG_REC_ID_PACKED;
    }
    if (flags & MSG_REC_DEFERRED) {
        memcpy(&deferred, p + off, MSG_REC_DEF_LEN);
        off += MSG_REC_DEF_LEN;
    }
    if (flags & MSG_REC_TTL) {
        memcpy(&ttl_ms, p + off, MSG_REC_TTL_LEN);
        off += MSG_REC_TTL_LEN;
    }
    struct nsqd_message *m = nsqd_message_new(id, timestamp, p + off, len);
    if (!m)
        return NULL;
    m->attempts = attempts;
    m->deferred = deferred;
    m->ttl_ms = ttl_ms;
    *size = off + len;
    return m;
}

/* Moves the read position past a consumed record of size n; frees what is no longer needed. */
static void consume(struct msg_ring *r, size_t n)
{
    struct msg_ring_chunk *c = r->head;
    r->head_off += n;
    r->len--;
    if (r->head_off < c->wr)
        return;
    r->head_off = 0;
    if (c->next) {
        r->head = c->next;
        chunk_free(r, c);
    } else if (c->cap <= MSG_RING_KEEP_MAX) {
        c->wr = 0; /* drained: keep the small chunk for the next push */
    } else {
        msg_ring_release(r);
    }
}

struct nsqd_message *msg_ring_pop(struct msg_ring *r)
{
    if (!r->len)
        return NULL;
    size_t size;
    struct nsqd_message *m = record_decode(r->head->data + r->head_off, &size);
    if (m)
        consume(r, size);
    return m;
}

struct nsqd_message *msg_ring_peek(const struct msg_ring *r)
{
    size_t size;
    return r->len ? record_decode(r->head->data + r->head_off, &size) : NULL;
}

bool msg_ring_drop(struct msg_ring *r)
{
    if (!r->len)
        return false;
    consume(r, record_size(r->head->data + r->head_off));
    return true;
}

void msg_ring_iter_init(const struct msg_ring *r, struct msg_ring_iter *it)
{
    it->c = r->head;
    it->off = r->head_off;
    it->left = r->len;
}

struct nsqd_message *msg_ring_iter_next(struct msg_ring_iter *it)
{
    if (!it->left)
        return NULL;
    if (it->off == it->c->wr) { /* chunks in use are never empty: the next one holds it */
        it->c = it->c->next;
        it->off = 0;
    }
    size_t size;
    struct nsqd_message *m = record_decode(it->c->data + it->off, &size);
    if (m) {
        it->off += size;
        it->left--;
    }
    return m;
}

void msg_ring_release(struct msg_ring *r)
{
    while (r->head) {
        struct msg_ring_chunk *c = r->head;
        r->head = c->next;
        chunk_free(r, c);
    }
    r->tail = NULL;
    r->head_off = 0;
    r->len = 0;
}
