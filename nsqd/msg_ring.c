/*
 * msg_ring: growable FIFO of message pointers (see msg_ring.h).
 */
#include "msg_ring.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MSG_RING_MIN_CAP 16

static int msg_ring_resize(struct msg_ring *r, size_t cap)
{
    struct nsqd_message **slots = malloc(cap * sizeof(*slots));
    if (!slots)
        return -ENOMEM;
    for (size_t i = 0; i < r->len; i++)
        slots[i] = r->slots[(r->head + i) & (r->cap - 1)];
    free(r->slots);
    r->slots = slots;
    r->cap = cap;
    r->head = 0;
    return 0;
}

int msg_ring_push(struct msg_ring *r, struct nsqd_message *m)
{
    if (r->len == r->cap) {
        int rc = msg_ring_resize(r, r->cap ? r->cap * 2 : MSG_RING_MIN_CAP);
        if (rc)
            return rc;
    }
    r->slots[(r->head + r->len) & (r->cap - 1)] = m;
    r->len++;
    return 0;
}

struct nsqd_message *msg_ring_pop(struct msg_ring *r)
{
    if (!r->len)
        return NULL;
    struct nsqd_message *m = r->slots[r->head];
    r->head = (r->head + 1) & (r->cap - 1);
    r->len--;
    if (!r->len) {
        r->head = 0;
        /* Give back large storage once drained. */
        if (r->cap > MSG_RING_MIN_CAP * 64)
            msg_ring_release(r);
    } else if (r->cap > MSG_RING_MIN_CAP * 64 && r->len < r->cap / 8) {
        msg_ring_resize(r, r->cap / 4); /* failure keeps the larger ring */
    }
    return m;
}

void msg_ring_release(struct msg_ring *r)
{
    free(r->slots);
    r->slots = NULL;
    r->cap = 0;
    r->head = 0;
    r->len = 0;
}
