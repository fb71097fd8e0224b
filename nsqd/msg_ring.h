/*
 * msg_ring: a FIFO of messages, the memory queue of a topic or channel.
 *
 * A queued message needs only its ID, timestamp, attempts, deferral, TTL and body, so the ring
 * keeps them packed back to back in a chain of byte chunks (a 23-byte header, the hex ID packed to
 * 8 bytes, instead of a message object with its in-flight bookkeeping and malloc overhead): a full
 * mem-queue-size of 1,000,000 16-byte messages costs 39 MB instead of about 120. Push encodes the
 * message and frees the object; pop builds a fresh object (from the message block cache, see
 * message.h). Pointer identity is therefore not preserved across the ring.
 *
 * Chunks grow with the amount queued (up to MSG_RING_CHUNK_MAX) and are freed as soon as they are
 * consumed; a drained ring keeps at most one small chunk, so 10,000 idle channels cost nothing
 * and a steady trickle through the ring does not allocate per message. Chunk bytes are counted in
 * nsqd_message_live_bytes (memory housekeeping). Capacity (mem-queue-size) is enforced by the
 * owner. Loop thread only.
 */
#ifndef NSQD_MSG_RING_H
#define NSQD_MSG_RING_H

#include <stdbool.h>
#include <stddef.h>

struct nsqd_message;
struct msg_ring_chunk;

struct msg_ring_iter {
    const struct msg_ring_chunk *c;
    size_t off;
    size_t left; /* messages not yet returned */
};

struct msg_ring {
    struct msg_ring_chunk *head; /* oldest chunk, read from head_off */
    struct msg_ring_chunk *tail; /* newest chunk, appended to */
    size_t head_off;
    size_t len;   /* messages queued */
    size_t bytes; /* chunk bytes allocated */
};

static inline size_t msg_ring_len(const struct msg_ring *r)
{
    return r->len;
}
/* Appends m. Returns 0 (m was consumed and freed) or -ENOMEM (m is still the caller's). */
int msg_ring_push(struct msg_ring *r, struct nsqd_message *m);
/* Removes the oldest and returns it as a new message object (caller owns it), or NULL if the ring
   is empty or no memory is left for the object (the message then stays queued). */
struct nsqd_message *msg_ring_pop(struct msg_ring *r);
/* A copy of the oldest as a new object (caller frees), left queued; NULL if empty or out of
   memory. */
struct nsqd_message *msg_ring_peek(const struct msg_ring *r);
/* Removes the oldest without building an object. Returns false if the ring is empty. */
bool msg_ring_drop(struct msg_ring *r);
/* Walks the queued messages, oldest first, without removing them. The ring must not change while
   an iterator is in use. */
void msg_ring_iter_init(const struct msg_ring *r, struct msg_ring_iter *it);
/* The next message as a new object (caller frees), or NULL at the end or out of memory. */
struct nsqd_message *msg_ring_iter_next(struct msg_ring_iter *it);
/* Frees the storage, dropping any messages still queued. */
void msg_ring_release(struct msg_ring *r);

#endif
