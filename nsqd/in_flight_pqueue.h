/*
 * in_flight_pqueue: a binary min-heap of messages by nsqd_message.pri (in-flight deadline or
 * deferred due time). Each message records its index (heap_index) so removal by pointer (FIN, REQ,
 * TOUCH) is O(log n). Storage grows by doubling and shrinks when sparse.
 */
#ifndef NSQD_IN_FLIGHT_PQUEUE_H
#define NSQD_IN_FLIGHT_PQUEUE_H

#include <stddef.h>
#include <stdint.h>

struct nsqd_message;

struct in_flight_pqueue {
    struct nsqd_message **items;
    size_t len, cap;
};

static inline size_t pq_len(const struct in_flight_pqueue *q)
{
    return q->len;
}
/* Returns 0 or -ENOMEM. */
int pq_push(struct in_flight_pqueue *q, struct nsqd_message *m);
/* Smallest element or NULL. */
static inline struct nsqd_message *pq_peek(const struct in_flight_pqueue *q)
{
    return q->len ? q->items[0] : NULL;
}
/* Removes and returns the smallest if its pri <= max, else NULL. */
struct nsqd_message *pq_pop_if(struct in_flight_pqueue *q, int64_t max);
void pq_remove(struct in_flight_pqueue *q, struct nsqd_message *m);
/* Restores order after m->pri changed. */
void pq_update(struct in_flight_pqueue *q, struct nsqd_message *m);
void pq_release(struct in_flight_pqueue *q);

#endif
