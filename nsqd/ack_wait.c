/*
 * ack_wait: publishes waiting for their diskqueue records to be synced (see ack_wait.h).
 *
 * A waiting publish keeps one (queue, sequence number) pair per queue it wrote to: sequence
 * numbers grow per queue, so the last record put on a queue stands for all earlier ones. The
 * number of waiting publishes is bounded by the connections (one each) plus the HTTP requests in
 * progress, so each wake-up simply checks them all.
 */
#include "ack_wait.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "diskqueue.h"
#include "options.h"

/* Initial room of the collection (queues written by one publish: a topic and its channels). */
#define ACK_WAIT_INITIAL_CAP 8
/* Room for a queue's error text. */
#define ACK_WAIT_ERR_MAX 256

struct ack_entry {
    struct diskqueue *dq; /* NULL once forgotten (done) */
    uint64_t seq;
};

/* One held acknowledgement; owned by the list until fn or drop has run. */
struct ack_waiter {
    struct ack_waiter *next;
    ack_wait_fn fn;
    void (*drop)(void *arg);
    void *arg;
    size_t n;
    struct ack_entry e[];
};

struct ack_wait {
    struct event *ev; /* activated by the queues' synced callback */
    struct ack_waiter *head;
    /* the collection of the publish in progress */
    bool collecting;
    struct ack_entry *cur;
    size_t ncur, cap;
    size_t hint; /* where the next note probably goes (channels are written in a fixed order) */
};

bool ack_wait_enabled(const struct nsqd_options *o)
{
    return o->sync_every == 1;
}

static bool entry_done(const struct ack_entry *e)
{
    return !e->dq || diskqueue_synced_seq(e->dq) >= e->seq;
}

/* Drops the entries that are done; true when none is left. With err, a queue of a remaining
   entry that reports a write error fills err and makes it return true as well. */
static bool entries_compact(struct ack_entry *e, size_t *n, char *err, size_t errlen)
{
    size_t k = 0;
    for (size_t i = 0; i < *n; i++) {
        if (entry_done(&e[i]))
            continue;
        if (err && diskqueue_health(e[i].dq, err, errlen) != 0) {
            if (!err[0])
                snprintf(err, errlen, "write error");
            return true;
        }
        e[k++] = e[i];
    }
    *n = k;
    return k == 0;
}

/* Loop thread: runs the publishes whose records are all durable now. A callback may start (and
   register) another publish; the list is re-read after each one. */
static void ack_wait_check(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct ack_wait *w = arg;
    struct ack_waiter **pp = &w->head;
    char err[ACK_WAIT_ERR_MAX];
    while (*pp) {
        struct ack_waiter *x = *pp;
        err[0] = '\0';
        if (!entries_compact(x->e, &x->n, err, sizeof(err))) {
            pp = &x->next;
            continue;
        }
        *pp = x->next;
        x->fn(x->arg, err[0] ? err : NULL);
        free(x);
    }
}

void ack_wait_synced_cb(void *arg)
{
    struct ack_wait *w = arg;
    event_active(w->ev, EV_READ, 0);
}

struct ack_wait *ack_wait_new(struct event_base *base)
{
    struct ack_wait *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->ev = event_new(base, -1, 0, ack_wait_check, w);
    if (!w->ev) {
        free(w);
        return NULL;
    }
    return w;
}

void ack_wait_free(struct ack_wait *w)
{
    if (!w)
        return;
    while (w->head) {
        struct ack_waiter *x = w->head;
        w->head = x->next;
        if (x->drop)
            x->drop(x->arg);
        free(x);
    }
    event_free(w->ev);
    free(w->cur);
    free(w);
}

void ack_wait_begin(struct ack_wait *w)
{
    w->collecting = true;
    w->ncur = 0;
    w->hint = 0;
}

void ack_wait_note(struct ack_wait *w, struct diskqueue *dq)
{
    if (!w || !w->collecting)
        return;
    uint64_t seq = diskqueue_put_seq(dq);
    if (w->hint >= w->ncur)
        w->hint = 0;
    if (w->hint < w->ncur && w->cur[w->hint].dq == dq) {
        w->cur[w->hint++].seq = seq;
        return;
    }
    for (size_t i = 0; i < w->ncur; i++) {
        if (w->cur[i].dq == dq) {
            w->cur[i].seq = seq;
            w->hint = i + 1;
            return;
        }
    }
    if (w->ncur == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : ACK_WAIT_INITIAL_CAP;
        struct ack_entry *p = realloc(w->cur, cap * sizeof(*p));
        if (!p)
            return; /* out of memory: this record is not waited for */
        w->cur = p;
        w->cap = cap;
    }
    w->cur[w->ncur++] = (struct ack_entry){.dq = dq, .seq = seq};
    w->hint = w->ncur;
}

bool ack_wait_end(struct ack_wait *w, ack_wait_fn fn, void (*drop)(void *arg), void *arg)
{
    w->collecting = false;
    if (entries_compact(w->cur, &w->ncur, NULL, 0))
        return false;
    struct ack_waiter *x = malloc(sizeof(*x) + w->ncur * sizeof(x->e[0]));
    if (!x)
        return false;
    x->fn = fn;
    x->drop = drop;
    x->arg = arg;
    x->n = w->ncur;
    memcpy(x->e, w->cur, w->ncur * sizeof(x->e[0]));
    x->next = w->head;
    w->head = x;
    w->ncur = 0;
    /* No wake-up can be missed: a sync completing after the check above activates the event. */
    return true;
}

void ack_wait_abort(struct ack_wait *w)
{
    w->collecting = false;
    w->ncur = 0;
}

void ack_wait_forget(struct ack_wait *w, struct diskqueue *dq)
{
    if (!w || !dq)
        return;
    bool any = false;
    for (struct ack_waiter *x = w->head; x; x = x->next) {
        for (size_t i = 0; i < x->n; i++) {
            if (x->e[i].dq == dq) {
                x->e[i].dq = NULL;
                any = true;
            }
        }
    }
    for (size_t i = 0; i < w->ncur; i++)
        if (w->cur[i].dq == dq)
            w->cur[i].dq = NULL;
    if (any)
        event_active(w->ev, EV_READ, 0);
}
