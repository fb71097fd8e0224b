/*
 * in_flight_pqueue: a 4-ary min-heap of messages by nsqd_message.pri (in-flight deadline or
 * deferred due time). Each message records its index (heap_index) so removal by pointer (FIN, REQ,
 * TOUCH) is O(log n). The priority is copied next to the pointer in the heap array, so sifting
 * compares contiguous memory instead of chasing a pointer per child (the dominant cost of FIN
 * otherwise). Storage grows by doubling and shrinks when sparse.
 */
#ifndef NSQD_IN_FLIGHT_PQUEUE_H
#define NSQD_IN_FLIGHT_PQUEUE_H

#include <stddef.h>
#include <stdint.h>

struct nsqd_message;

struct pq_item {
    int64_t pri; /* copy of m->pri */
    struct nsqd_message *m;
};

struct in_flight_pqueue {
    struct pq_item *items;
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
    return q->len ? q->items[0].m : NULL;
}
/* Removes and returns the smallest if its pri <= max, else NULL. */
struct nsqd_message *pq_pop_if(struct in_flight_pqueue *q, int64_t max);
void pq_remove(struct in_flight_pqueue *q, struct nsqd_message *m);
/* Restores order after m->pri changed. */
void pq_update(struct in_flight_pqueue *q, struct nsqd_message *m);
void pq_release(struct in_flight_pqueue *q);

#endif
