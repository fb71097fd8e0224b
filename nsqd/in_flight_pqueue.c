/*
 * in_flight_pqueue: indexed binary min-heap (see in_flight_pqueue.h).
 */
#include "in_flight_pqueue.h"

#include <errno.h>
#include <stdlib.h>

#include "message.h"

#define PQ_MIN_CAP 16

static void pq_set(struct in_flight_pqueue *q, size_t i, struct nsqd_message *m)
{
    q->items[i] = m;
    m->heap_index = (uint32_t)i;
}

static void pq_up(struct in_flight_pqueue *q, size_t i)
{
    struct nsqd_message *m = q->items[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (q->items[p]->pri <= m->pri)
            break;
        pq_set(q, i, q->items[p]);
        i = p;
    }
    pq_set(q, i, m);
}

static void pq_down(struct in_flight_pqueue *q, size_t i)
{
    struct nsqd_message *m = q->items[i];
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= q->len)
            break;
        size_t s = l;
        if (l + 1 < q->len && q->items[l + 1]->pri < q->items[l]->pri)
            s = l + 1;
        if (q->items[s]->pri >= m->pri)
            break;
        pq_set(q, i, q->items[s]);
        i = s;
    }
    pq_set(q, i, m);
}

static void pq_resize(struct in_flight_pqueue *q, size_t cap)
{
    struct nsqd_message **items = realloc(q->items, cap * sizeof(*items));
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
    q->len++;
    pq_set(q, q->len - 1, m);
    pq_up(q, q->len - 1);
    return 0;
}

void pq_remove(struct in_flight_pqueue *q, struct nsqd_message *m)
{
    size_t i = m->heap_index;
    if (i >= q->len || q->items[i] != m)
        return;
    q->len--;
    if (i != q->len) {
        pq_set(q, i, q->items[q->len]);
        pq_down(q, i);
        pq_up(q, q->items[i]->heap_index);
    }
    if (q->cap > PQ_MIN_CAP * 4 && q->len < q->cap / 8)
        pq_resize(q, q->cap / 4);
}

struct nsqd_message *pq_pop_if(struct in_flight_pqueue *q, int64_t max)
{
    if (!q->len || q->items[0]->pri > max)
        return NULL;
    struct nsqd_message *m = q->items[0];
    pq_remove(q, m);
    return m;
}

void pq_update(struct in_flight_pqueue *q, struct nsqd_message *m)
{
    size_t i = m->heap_index;
    pq_down(q, i);
    pq_up(q, m->heap_index);
}

void pq_release(struct in_flight_pqueue *q)
{
    free(q->items);
    q->items = NULL;
    q->len = q->cap = 0;
}
