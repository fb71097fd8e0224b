/*
 * in_flight: a channel's in-flight messages ordered by deadline.
 *
 * Deliveries of one client get deadlines now + msg_timeout, so for each distinct msg_timeout the
 * deadlines arrive in non-decreasing order: a FIFO ring keeps them sorted for free, and a FIN is
 * O(1) (the slot becomes a tombstone; the head skips tombstones; the ring is compacted when they
 * dominate). A few such rings serve the usual handful of timeout values; anything out of order (a
 * TOUCH capped by --max-msg-timeout, more distinct timeouts than rings) goes to a heap. The
 * earliest deadline is the smallest of the ring heads and the heap top.
 *
 * A message records where it is in nsqd_message.heap_index: the top bits name the structure
 * (0 = heap, k + 1 = ring k), the rest its position. Loop thread only.
 */
#ifndef NSQD_IN_FLIGHT_H
#define NSQD_IN_FLIGHT_H

#include <stddef.h>
#include <stdint.h>

#include "in_flight_pqueue.h"

struct nsqd_message;

#define IN_FLIGHT_RINGS 4

struct deadline_ring {
    int64_t timeout; /* the msg_timeout whose deliveries this ring holds (when len > 0) */
    struct pq_item *slots;
    uint32_t cap, head, len, live; /* len counts tombstones between head and tail */
};

struct in_flight_index {
    struct deadline_ring rings[IN_FLIGHT_RINGS];
    struct in_flight_pqueue heap;
    size_t count;
};

/* Adds m (m->pri = its deadline) delivered with timeout_ns. Returns 0 or -ENOMEM. */
int in_flight_add(struct in_flight_index *x, struct nsqd_message *m, int64_t timeout_ns);
void in_flight_remove(struct in_flight_index *x, struct nsqd_message *m);
/* The message with the earliest deadline, or NULL. */
struct nsqd_message *in_flight_peek(const struct in_flight_index *x);
/* Removes and returns the earliest if its deadline <= max, else NULL. */
struct nsqd_message *in_flight_pop_if(struct in_flight_index *x, int64_t max);
static inline size_t in_flight_len(const struct in_flight_index *x)
{
    return x->count;
}
void in_flight_release(struct in_flight_index *x);

#endif
