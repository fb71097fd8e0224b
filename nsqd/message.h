/*
 * message: nsqd's in-memory message. One allocation holds the bookkeeping header and the body.
 *
 * A message object belongs to exactly one place at a time: a topic (being distributed), a
 * channel's in-flight table + heap, or a channel's deferred heap. Memory rings do not hold objects:
 * they keep the message's fields packed (msg_ring.h) and build a new object when it leaves. Each
 * channel owns its own copy (attempts and in-flight state are per channel), so there is no
 * reference count. The fields used while in flight (owner, deadline, heap index, hash link) are
 * meaningless elsewhere.
 */
#ifndef NSQD_MESSAGE_H
#define NSQD_MESSAGE_H

#include <stddef.h>
#include <stdint.h>

#include "nsq_message.h"

struct client;
struct diskqueue;

struct nsqd_message {
    struct nsqd_message *hnext; /* in-flight hash chain */
    struct client *client;      /* owner while in flight */
    int64_t pri;                /* in flight: deadline; deferred: due time (monotonic ns) */
    union {
        int64_t deferred;  /* before reaching a channel: requested deferral (ns), 0 = none */
        int64_t delivered; /* in flight: delivery time (monotonic ns), caps TOUCH */
    };
    int64_t timestamp;   /* publish time, Unix ns (never changes) */
    uint32_t heap_index; /* position in the in-flight or deferred heap */
    uint32_t body_len;
    uint16_t attempts;
    uint32_t ttl_ms; /* per-publish time-to-live from timestamp, 0 = none; not kept on disk */
    char id[NSQ_MSG_ID_LEN];
    uint8_t body[];
};

/* New message with attempts 0; body copied. NULL on allocation failure. Caller owns it. */
struct nsqd_message *nsqd_message_new(const char id[NSQ_MSG_ID_LEN], int64_t timestamp,
                                      const void *body, size_t body_len);
/* Copy with the same id, timestamp, body, deferral, TTL and attempts (0 for published messages; a
   dead-lettered message keeps its count, docs/dead-letter.md). */
struct nsqd_message *nsqd_message_copy(const struct nsqd_message *m);
/* From a diskqueue record (storage.md §2; no TTL: upstream's record has no room for it); NULL if
   shorter than the header or out of memory. */
struct nsqd_message *nsqd_message_decode(const uint8_t *data, size_t len);
/* Appends the disk record form (header + body, attempts as now) to dq. Returns diskqueue_putv's
   result. */
int nsqd_message_write_disk(struct diskqueue *dq, const struct nsqd_message *m);
void nsqd_message_free(struct nsqd_message *m);
/* Bytes currently held by message objects (header + body) and by memory rings' chunks, for memory
   housekeeping. */
size_t nsqd_message_live_bytes(void);
/* Memory rings report the chunks they allocate and free here. */
void nsqd_message_bytes_add(size_t n);
void nsqd_message_bytes_sub(size_t n);
/* Called after each message written to disk and freed during a shutdown flush; trims the heap
   now and then. */
void nsqd_message_flushed(void);
/* Frees the blocks kept for reuse (before trimming the heap, and at exit). */
void nsqd_message_cache_release(void);
/* The high-water mark of nsqd_message_live_bytes since the previous call. */
size_t nsqd_message_take_peak(void);

#endif
