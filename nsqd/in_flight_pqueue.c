/*
 * in_flight_pqueue: indexed 4-ary min-heap (see in_flight_pqueue.h).
 */
#include "in_flight_pqueue.h"

#include <errno.h>
#include <stdlib.h>

#include "message.h"

#define PQ_MIN_CAP 16
/* A 4-ary heap: half the depth of a binary one, so a removal moves (and re-indexes, which touches
   each moved message) half as many elements; the four children sit in one cache line. */
#define PQ_ARITY 4

static void pq_set(struct in_flight_pqueue *q, size_t i, struct pq_item it)
{
    q->items[i] = it;
    it.m->heap_index = (uint32_t)i;
}

static size_t pq_up(struct in_flight_pqueue *q, size_t i)
{
    struct pq_item it = q->items[i];
    while (i > 0) {
        size_t p = (i - 1) / PQ_ARITY;
        if (q->items[p].pri <= it.pri)
            break;
        pq_set(q, i, q->items[p]);
        i = p;
    }
    pq_set(q, i, it);
    return i;
}

static void pq_down(struct in_flight_pqueue *q, size_t i)
{
    struct pq_item it = q->items[i];
    for (;;) {
        size_t first = PQ_ARITY * i + 1;
        if (first >= q->len)
            break;
        size_t last = first + PQ_ARITY < q->len ? first + PQ_ARITY : q->len;
        size_t s = first;
        for (size_t k = first + 1; k < last; k++)
            if (q->items[k].pri < q->items[s].pri)
                s = k;
        if (q->items[s].pri >= it.pri)
            break;
        pq_set(q, i, q->items[s]);
        i = s;
    }
    pq_set(q, i, it);
}

static void pq_resize(struct in_flight_pqueue *q, size_t cap)
{
    struct pq_item *items = realloc(q->items, cap * sizeof(*items));
    if (items) {
        q->items = items;
        q->cap = cap;
    }
}

int pq_push(struct in_flight_pqueue *q, struct nsqd_message *m)
{
    if (q->len == q->cap) {
        pq_resize(q, q->cap ? q->cap * 2 : PQ_MIN_CAP);
        if (q->len == q->cap)
            return -ENOMEM;
    }
    q->items[q->len] = (struct pq_item){.pri = m->pri, .m = m};
    q->len++;
    pq_up(q, q->len - 1);
    return 0;
}

void pq_remove(struct in_flight_pqueue *q, struct nsqd_message *m)
{
    size_t i = m->heap_index;
    if (i >= q->len || q->items[i].m != m)
        return;
    q->len--;
    if (i != q->len) {
        q->items[i] = q->items[q->len];
        if (pq_up(q, i) == i)
            pq_down(q, i);
    }
    if (q->cap > PQ_MIN_CAP * 4 && q->len < q->cap / 8)
        pq_resize(q, q->cap / 4);
}

struct nsqd_message *pq_pop_if(struct in_flight_pqueue *q, int64_t max)
{
    if (!q->len || q->items[0].pri > max)
        return NULL;
    struct nsqd_message *m = q->items[0].m;
    pq_remove(q, m);
    return m;
}

void pq_update(struct in_flight_pqueue *q, struct nsqd_message *m)
{
    size_t i = m->heap_index;
    if (i >= q->len || q->items[i].m != m)
        return;
    q->items[i].pri = m->pri;
    if (pq_up(q, i) == i)
        pq_down(q, i);
}

void pq_release(struct in_flight_pqueue *q)
{
    free(q->items);
    q->items = NULL;
    q->len = q->cap = 0;
}
