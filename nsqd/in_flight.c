/*
 * in_flight: deadline rings plus a fallback heap (see in_flight.h).
 */
#include "in_flight.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "message.h"

#define TAG_SHIFT    29
#define POS_MASK     ((1u << TAG_SHIFT) - 1)
#define RING_MIN_CAP 16
#define RING_MAX_CAP (1u << TAG_SHIFT)
/* Compact when fewer than 1/COMPACT_RATIO of the occupied slots are live. */
#define COMPACT_RATIO 4

static uint32_t ring_slot(const struct deadline_ring *r, uint32_t k)
{
    return (r->head + k) & (r->cap - 1);
}

/* Copies the live entries, in order, into a new array of cap slots and re-indexes them. */
static int ring_rebuild(struct deadline_ring *r, uint32_t cap, uint32_t tag)
{
    struct pq_item *slots = malloc((size_t)cap * sizeof(*slots));
    if (!slots)
        return -ENOMEM;
    uint32_t n = 0;
    for (uint32_t k = 0; k < r->len; k++) {
        struct pq_item it = r->slots[ring_slot(r, k)];
        if (!it.m)
            continue;
        it.m->heap_index = tag | n;
        slots[n++] = it;
    }
    free(r->slots);
    r->slots = slots;
    r->cap = cap;
    r->head = 0;
    r->len = n;
    r->live = n;
    return 0;
}

static int ring_push(struct deadline_ring *r, struct nsqd_message *m, uint32_t tag)
{
    if (r->len == r->cap) {
        uint32_t cap = r->cap ? r->cap : RING_MIN_CAP;
        if (r->live * 2 > r->len || !r->cap)
            cap = r->cap ? r->cap * 2 : RING_MIN_CAP;
        if (cap > RING_MAX_CAP)
            return -ENOMEM;
        int rc = ring_rebuild(r, cap, tag);
        if (rc)
            return rc;
    }
    uint32_t s = ring_slot(r, r->len);
    r->slots[s] = (struct pq_item){.pri = m->pri, .m = m};
    m->heap_index = tag | s;
    r->len++;
    r->live++;
    return 0;
}

static void ring_remove(struct deadline_ring *r, struct nsqd_message *m, uint32_t tag)
{
    uint32_t s = m->heap_index & POS_MASK;
    if (s >= r->cap || r->slots[s].m != m)
        return;
    r->slots[s].m = NULL;
    r->live--;
    while (r->len && !r->slots[r->head].m) {
        r->head = (r->head + 1) & (r->cap - 1);
        r->len--;
    }
    if (!r->len) {
        r->head = 0;
        if (r->cap > RING_MIN_CAP * 64) {
            free(r->slots);
            r->slots = NULL;
            r->cap = 0;
        }
    } else if (r->len > RING_MIN_CAP && r->live * COMPACT_RATIO < r->len) {
        uint32_t cap = r->cap;
        while (cap > RING_MIN_CAP && r->live * 4 < cap)
            cap /= 2;
        ring_rebuild(r, cap, tag); /* failure keeps the sparse ring */
    }
}

static bool ring_accepts(const struct deadline_ring *r, int64_t timeout, int64_t pri)
{
    if (!r->len)
        return true;
    return r->timeout == timeout && r->slots[ring_slot(r, r->len - 1)].pri <= pri;
}

int in_flight_add(struct in_flight_index *x, struct nsqd_message *m, int64_t timeout_ns)
{
    /* The ring already serving this timeout, else an empty one. */
    int pick = -1;
    for (int k = 0; k < IN_FLIGHT_RINGS; k++) {
        struct deadline_ring *r = &x->rings[k];
        if (r->len && r->timeout == timeout_ns) {
            pick = ring_accepts(r, timeout_ns, m->pri) ? k : -1;
            break;
        }
        if (!r->len && pick < 0)
            pick = k;
    }
    if (pick >= 0) {
        struct deadline_ring *r = &x->rings[pick];
        r->timeout = timeout_ns;
        if (ring_push(r, m, (uint32_t)(pick + 1) << TAG_SHIFT) == 0) {
            x->count++;
            return 0;
        }
    }
    int rc = pq_push(&x->heap, m);
    if (rc == 0)
        x->count++;
    return rc;
}

void in_flight_remove(struct in_flight_index *x, struct nsqd_message *m)
{
    uint32_t tag = m->heap_index >> TAG_SHIFT;
    if (tag == 0) {
        size_t before = pq_len(&x->heap);
        pq_remove(&x->heap, m);
        if (pq_len(&x->heap) != before)
            x->count--;
        return;
    }
    struct deadline_ring *r = &x->rings[tag - 1];
    uint32_t live = r->live;
    ring_remove(r, m, tag << TAG_SHIFT);
    if (r->live != live)
        x->count--;
}

/* Index of the structure holding the earliest deadline: ring k (0..) or IN_FLIGHT_RINGS for the
   heap; -1 when empty. */
static int earliest(const struct in_flight_index *x, int64_t *pri)
{
    int best = -1;
    for (int k = 0; k < IN_FLIGHT_RINGS; k++) {
        const struct deadline_ring *r = &x->rings[k];
        if (r->len && (best < 0 || r->slots[r->head].pri < *pri)) {
            best = k;
            *pri = r->slots[r->head].pri;
        }
    }
    const struct nsqd_message *h = pq_peek(&x->heap);
    if (h && (best < 0 || x->heap.items[0].pri < *pri)) {
        best = IN_FLIGHT_RINGS;
        *pri = x->heap.items[0].pri;
    }
    return best;
}

struct nsqd_message *in_flight_peek(const struct in_flight_index *x)
{
    int64_t pri = 0;
    int k = earliest(x, &pri);
    if (k < 0)
        return NULL;
    if (k == IN_FLIGHT_RINGS)
        return pq_peek(&x->heap);
    return x->rings[k].slots[x->rings[k].head].m;
}

struct nsqd_message *in_flight_pop_if(struct in_flight_index *x, int64_t max)
{
    int64_t pri = 0;
    int k = earliest(x, &pri);
    if (k < 0 || pri > max)
        return NULL;
    struct nsqd_message *m =
            k == IN_FLIGHT_RINGS ? pq_peek(&x->heap) : x->rings[k].slots[x->rings[k].head].m;
    in_flight_remove(x, m);
    return m;
}

void in_flight_release(struct in_flight_index *x)
{
    for (int k = 0; k < IN_FLIGHT_RINGS; k++) {
        free(x->rings[k].slots);
        x->rings[k] = (struct deadline_ring){0};
    }
    pq_release(&x->heap);
    x->count = 0;
}
