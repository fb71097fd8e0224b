/*
 * msg_ring: a FIFO of message pointers, the memory queue of a topic or channel.
 *
 * Capacity is enforced by the owner (mem-queue-size); storage grows by doubling on demand and
 * shrinks back when the ring drains, so 10,000 idle channels cost nothing and a full
 * mem-queue-size of 1,000,000 costs 8 MB of pointers only while it is full.
 */
#ifndef NSQD_MSG_RING_H
#define NSQD_MSG_RING_H

#include <stddef.h>

struct nsqd_message;

struct msg_ring {
    struct nsqd_message **slots;
    size_t cap;  /* allocated slots (power of two or 0) */
    size_t head; /* index of the oldest */
    size_t len;
};

static inline size_t msg_ring_len(const struct msg_ring *r)
{
    return r->len;
}
/* Appends m. Returns 0 or -ENOMEM. */
int msg_ring_push(struct msg_ring *r, struct nsqd_message *m);
/* The i-th oldest message (i < len), left in place. */
static inline struct nsqd_message *msg_ring_at(const struct msg_ring *r, size_t i)
{
    return r->slots[(r->head + i) & (r->cap - 1)];
}
/* The oldest, left in place, or NULL. */
static inline struct nsqd_message *msg_ring_peek(const struct msg_ring *r)
{
    return r->len ? r->slots[r->head] : NULL;
}
/* Removes and returns the oldest, or NULL. */
struct nsqd_message *msg_ring_pop(struct msg_ring *r);
/* Frees the storage (not the messages). */
void msg_ring_release(struct msg_ring *r);

#endif
