/*
 * message: allocation, copy and disk encoding of nsqd messages (see message.h).
 */
#include "message.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "diskqueue.h"

/* Bytes held by live message objects and memory rings, and their high-water mark (loop thread
   only). */
static size_t live_bytes, peak_bytes;

size_t nsqd_message_live_bytes(void)
{
    return live_bytes;
}

void nsqd_message_bytes_add(size_t n)
{
    live_bytes += n;
    if (live_bytes > peak_bytes)
        peak_bytes = live_bytes;
}

void nsqd_message_bytes_sub(size_t n)
{
    live_bytes -= n;
}

size_t nsqd_message_take_peak(void)
{
    size_t p = peak_bytes;
    peak_bytes = live_bytes;
    return p;
}

/*
 * Freed message blocks are kept for reuse, per size class, up to MSG_CACHE_MAX_BYTES: in a steady
 * publish/consume flow every FIN's block serves the next publish, so the hot path does no
 * malloc/free. Sizes are rounded to malloc's own 16-byte granularity, so this costs no memory.
 * Loop thread only (diskqueue threads never touch messages).
 */
#define MSG_CACHE_GRAIN     16
#define MSG_CACHE_MAX_BLOCK 4096
#define MSG_CACHE_CLASSES   (MSG_CACHE_MAX_BLOCK / MSG_CACHE_GRAIN + 1)
#define MSG_CACHE_MAX_BYTES (8u * 1024 * 1024)

static struct nsqd_message *cache[MSG_CACHE_CLASSES]; /* chained through hnext */
static size_t cache_bytes;

static size_t block_size(size_t body_len)
{
    return (sizeof(struct nsqd_message) + body_len + MSG_CACHE_GRAIN - 1) &
           ~(size_t)(MSG_CACHE_GRAIN - 1);
}

void nsqd_message_cache_release(void)
{
    for (size_t i = 0; i < MSG_CACHE_CLASSES; i++) {
        while (cache[i]) {
            struct nsqd_message *m = cache[i];
            cache[i] = m->hnext;
            free(m);
        }
    }
    cache_bytes = 0;
}

/* Writing a full memory queue to disk at shutdown frees messages while the diskqueue buffers the
   same bytes: give the freed heap back every so often so the two do not add up. */
#define MSG_FLUSH_TRIM_EVERY 65536

void nsqd_message_flushed(void)
{
    static unsigned flushed;
    if (++flushed % MSG_FLUSH_TRIM_EVERY == 0) {
        nsqd_message_cache_release();
        malloc_trim(0);
    }
}

struct nsqd_message *nsqd_message_new(const char id[NSQ_MSG_ID_LEN], int64_t timestamp,
                                      const void *body, size_t body_len)
{
    size_t size = block_size(body_len);
    struct nsqd_message *m = NULL;
    if (size <= MSG_CACHE_MAX_BLOCK && cache[size / MSG_CACHE_GRAIN]) {
        m = cache[size / MSG_CACHE_GRAIN];
        cache[size / MSG_CACHE_GRAIN] = m->hnext;
        cache_bytes -= size;
    } else {
        m = malloc(size);
    }
    if (!m)
        return NULL;
    nsqd_message_bytes_add(sizeof(*m) + body_len);
    m->hnext = NULL;
    m->client = NULL;
    m->pri = 0;
    m->deferred = 0;
    m->timestamp = timestamp;
    m->heap_index = 0;
    m->body_len = (uint32_t)body_len;
    m->attempts = 0;
    m->ttl_ms = 0;
    memcpy(m->id, id, NSQ_MSG_ID_LEN);
    memcpy(m->body, body, body_len);
    return m;
}

struct nsqd_message *nsqd_message_copy(const struct nsqd_message *m)
{
    struct nsqd_message *c = nsqd_message_new(m->id, m->timestamp, m->body, m->body_len);
    if (c) {
        c->deferred = m->deferred;
        c->attempts = m->attempts;
        c->ttl_ms = m->ttl_ms;
    }
    return c;
}

struct nsqd_message *nsqd_message_decode(const uint8_t *data, size_t len)
{
    struct nsq_message_view v;
    if (nsq_message_decode(data, len, &v) != 0)
        return NULL;
    struct nsqd_message *m = nsqd_message_new(v.id, v.timestamp, v.body, v.body_len);
    if (m)
        m->attempts = v.attempts;
    return m;
}

int nsqd_message_write_disk(struct diskqueue *dq, const struct nsqd_message *m)
{
    uint8_t hdr[NSQ_MSG_HEADER_LEN];
    nsq_message_encode_header(hdr, m->id, m->timestamp, m->attempts);
    struct iovec iov[2] = {
            {.iov_base = hdr, .iov_len = sizeof(hdr)},
            {.iov_base = (void *)m->body, .iov_len = m->body_len},
    };
    return diskqueue_putv(dq, iov, 2);
}

void nsqd_message_free(struct nsqd_message *m)
{
    if (!m)
        return;
    live_bytes -= sizeof(*m) + m->body_len;
    size_t size = block_size(m->body_len);
    if (size <= MSG_CACHE_MAX_BLOCK && cache_bytes + size <= MSG_CACHE_MAX_BYTES) {
        m->hnext = cache[size / MSG_CACHE_GRAIN];
        cache[size / MSG_CACHE_GRAIN] = m;
        cache_bytes += size;
        return;
    }
    free(m);
}
