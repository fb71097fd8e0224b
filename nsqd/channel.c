/*
 * channel: delivery, in-flight tracking, requeue and deferral for one consumer group (see
 * channel.h).
 */
#include "channel.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "ack_wait.h"
#include "client.h"
#include "dead_letter.h"
#include "diskqueue.h"
#include "journal.h"
#include "message.h"
#include "nsq_log.h"
#include "nsq_names.h"
#if __has_include("nsq_quantile.h")
#include "nsq_quantile.h"
#define CHANNEL_HAVE_E2E 1
#endif
#include "nsq_time.h"
#include "nsqd.h"
#include "options.h"
#include "topic.h"

/* Messages delivered per pump run, and timeouts handled per timer run, before yielding. */
#define CHANNEL_PUMP_BATCH   1024
#define CHANNEL_EXPIRE_BATCH 16384
/* Initial room for IDs awaiting a dead-letter sync (journal mode). */
#define CHANNEL_DL_BATCH_MIN 64

static void channel_pump_cb(evutil_socket_t fd, short what, void *arg);
static void channel_timer_cb(evutil_socket_t fd, short what, void *arg);
static void channel_arm_timer(struct channel *c, int64_t at);
static void channel_journal_open(struct channel *c, const char *qname);
static void channel_journal_appended(struct channel *c);
static void channel_put_tracked(struct channel *c, struct nsqd_message *m);

static void channel_dq_ready(void *arg)
{
    struct channel *c = arg;
    /* I/O thread: only wake the loop. */
    event_active(c->pump_ev, EV_READ, 0);
}

struct channel *channel_new(struct topic *t, const char *name)
{
    struct nsqd *n = t->n;
    struct channel *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->topic = t;
    c->name = strdup(name);
    c->timer = evtimer_new(n->base, channel_timer_cb, c);
    c->pump_ev = event_new(n->base, -1, 0, channel_pump_cb, c);
    if (!c->name || !c->timer || !c->pump_ev)
        goto err;
    c->ephemeral = nsq_name_is_ephemeral(name, strlen(name));
    c->topology_aware = topology_aware(n->opts);
    c->mem_cap = n->opts->mem_queue_size > 0 ? (size_t)n->opts->mem_queue_size : 0;
#ifdef CHANNEL_HAVE_E2E
    if (n->opts->e2e_processing_latency_percentiles.len > 0) {
        c->e2e = nsq_quantile_new(n->opts->e2e_processing_latency_window_time,
                                  n->opts->e2e_processing_latency_percentiles.items,
                                  n->opts->e2e_processing_latency_percentiles.len);
    }
#endif
    if (!c->ephemeral) {
        size_t qlen = strlen(t->name) + 1 + strlen(name) + 1;
        char *qname = malloc(qlen);
        if (!qname)
            goto err;
        snprintf(qname, qlen, "%s:%s", t->name, name);
        struct diskqueue_options o = {
                .name = qname,
                .data_path = n->data_path,
                .max_bytes_per_file = n->opts->max_bytes_per_file,
                .min_msg_size = NSQ_MSG_HEADER_LEN,
                .max_msg_size = (int32_t)(n->opts->max_msg_size + NSQ_MSG_HEADER_LEN),
                .sync_every = n->opts->sync_every,
                .sync_timeout_ns = n->opts->sync_timeout,
                .synced = n->ack_wait ? ack_wait_synced_cb : NULL,
                .synced_arg = n->ack_wait,
        };
        c->dq = diskqueue_open(n->dqs, &o, channel_dq_ready, c);
        if (c->dq && n->journal)
            channel_journal_open(c, qname);
        free(qname);
        if (!c->dq)
            goto err;
    }
    return c;
err:
    if (c->timer)
        event_free(c->timer);
    if (c->pump_ev)
        event_free(c->pump_ev);
#ifdef CHANNEL_HAVE_E2E
    nsq_quantile_free(c->e2e);
#endif
    free(c->name);
    free(c);
    return NULL;
}

/* ---- ready list (round-robin over clients that can take a message) ---- */

static void ready_remove(struct channel *c, struct client *cl)
{
    if (!cl->in_ready_list)
        return;
    int k = cl->topology_class;
    if (cl->rdy_prev)
        cl->rdy_prev->rdy_next = cl->rdy_next;
    else
        c->ready_head[k] = cl->rdy_next;
    if (cl->rdy_next)
        cl->rdy_next->rdy_prev = cl->rdy_prev;
    else
        c->ready_tail[k] = cl->rdy_prev;
    cl->rdy_next = cl->rdy_prev = NULL;
    cl->in_ready_list = false;
}

static void ready_append(struct channel *c, struct client *cl)
{
    int k = cl->topology_class;
    cl->rdy_next = NULL;
    cl->rdy_prev = c->ready_tail[k];
    if (c->ready_tail[k])
        c->ready_tail[k]->rdy_next = cl;
    else
        c->ready_head[k] = cl;
    c->ready_tail[k] = cl;
    cl->in_ready_list = true;
}

/* The client to deliver to next: the head of the nearest class with a ready client, or NULL. A
   client's class is fixed while it is subscribed, so the lists never need re-sorting. */
static struct client *ready_next(const struct channel *c)
{
    for (int k = 0; k < TOPOLOGY_CLASSES; k++) {
        if (c->ready_head[k])
            return c->ready_head[k];
    }
    return NULL;
}

static bool channel_backlog_empty(const struct channel *c)
{
    return msg_ring_len(&c->memq) == 0 && (!c->dq || diskqueue_depth(c->dq) == 0);
}

static void channel_schedule_pump(struct channel *c)
{
    if (ready_next(c) && !c->paused && !c->exiting && !channel_backlog_empty(c))
        event_active(c->pump_ev, EV_READ, 0);
}

void channel_client_ready_changed(struct channel *c, struct client *cl)
{
    bool ready = cl->channel == c && client_is_ready(cl);
    if (ready && !cl->in_ready_list) {
        ready_append(c, cl);
        channel_schedule_pump(c);
    } else if (!ready && cl->in_ready_list) {
        ready_remove(c, cl);
    }
}

/* ---- timer: in-flight deadlines and deferred due times ---- */

static void channel_arm_timer(struct channel *c, int64_t at)
{
    if (c->timer_at != 0 && c->timer_at <= at)
        return;
    int64_t delta = at - nsq_mono_ns();
    if (delta < 0)
        delta = 0;
    struct timeval tv = {.tv_sec = delta / NSQ_NS_PER_SEC,
                         .tv_usec = (delta % NSQ_NS_PER_SEC) / NSQ_NS_PER_USEC};
    evtimer_add(c->timer, &tv);
    c->timer_at = at;
}

static void channel_rearm(struct channel *c)
{
    struct nsqd_message *a = in_flight_peek(&c->inflight), *b = pq_peek(&c->deferred_pq);
    if (!a && !b)
        return;
    int64_t at = a ? a->pri : b->pri;
    if (a && b && b->pri < at)
        at = b->pri;
    channel_arm_timer(c, at);
}

static void channel_push_deferred(struct channel *c, struct nsqd_message *m, int64_t due)
{
    m->pri = due;
    m->client = NULL;
    if (pq_push(&c->deferred_pq, m) != 0) {
        /* Out of memory: deliver now rather than lose it. */
        channel_put_tracked(c, m);
        return;
    }
    if (c->journal) {
        journal_defer(c->journal, m, due);
        channel_journal_appended(c);
    }
    channel_arm_timer(c, due);
}

/* ---- journal (durable in-flight and deferred messages) ---- */

/* Journal mode: the messages dead-lettered since the last call sit in the dead-letter topic's
   diskqueue; once it is synced the journal may forget them here (a crash before that yields a
   duplicate, never a loss). One sync covers every message of the batch. */
static void channel_dead_letter_sync(struct channel *c)
{
    if (c->dl_n == 0)
        return;
    if (dead_letter_sync(c) == 0)
        for (size_t i = 0; i < c->dl_n; i++)
            journal_done(c->journal, c->dl_ids + i * NSQ_MSG_ID_LEN, false);
    c->dl_n = 0;
}

/* Rewrites the journal with the live state: every in-flight and deferred message. */
static void channel_journal_compact(struct channel *c)
{
    struct journal *j = c->journal;
    channel_dead_letter_sync(c); /* the snapshot no longer holds them */
    journal_snapshot_begin(j);
    for (size_t b = 0; b < c->in_flight.nbuckets; b++)
        for (struct nsqd_message *m = c->in_flight.buckets[b]; m; m = m->hnext)
            journal_snapshot_add(j, m, 0);
    for (size_t i = 0; i < pq_len(&c->deferred_pq); i++)
        journal_snapshot_add(j, c->deferred_pq.items[i].m, c->deferred_pq.items[i].pri);
    journal_snapshot_commit(j);
}

static void channel_journal_appended(struct channel *c)
{
    if (journal_wants_compact(c->journal))
        channel_journal_compact(c);
}

struct channel_replay {
    struct channel *c;
    size_t requeued, deferred;
};

static void channel_replay_cb(void *arg, struct nsqd_message *m, int64_t due_unix_ns)
{
    struct channel_replay *r = arg;
    struct channel *c = r->c;
    if (due_unix_ns > 0) {
        int64_t left = due_unix_ns - nsq_now_ns();
        m->pri = nsq_mono_ns() + (left > 0 ? left : 0);
        m->client = NULL;
        if (pq_push(&c->deferred_pq, m) == 0) {
            channel_arm_timer(c, m->pri);
            r->deferred++;
            return;
        }
    }
    /* Was in flight (or no memory to defer it): back to the queue with its attempts. */
    if (nsqd_message_write_disk(c->dq, m) == 0)
        r->requeued++;
    else
        nsq_error("CHANNEL(%s) ERROR: failed to requeue journaled message %.16s", c->name, m->id);
    nsqd_message_free(m);
}

/* Opens and replays the journal of a durable channel (c->dq is open). */
static void channel_journal_open(struct channel *c, const char *qname)
{
    struct nsqd *n = c->topic->n;
    struct channel_replay r = {.c = c};
    c->journal = journal_open(n->journal, n->data_path, qname, c->dq, channel_replay_cb, &r);
    if (!c->journal) {
        nsq_error("CHANNEL(%s) ERROR: failed to open the in-flight journal", c->name);
        return;
    }
    if (r.requeued > 0) {
        /* Requeued messages must be in the queue's files before the journal forgets them. */
        int rc = diskqueue_flush(c->dq);
        if (rc)
            nsq_error("CHANNEL(%s) ERROR: failed to flush backend - %s", c->name, strerror(-rc));
    }
    if (r.requeued > 0 || r.deferred > 0) {
        nsq_info("CHANNEL(%s): recovered %zu in-flight and %zu deferred messages from the journal",
                 c->name, r.requeued, r.deferred);
        channel_journal_compact(c); /* the file now holds the deferred messages only */
    }
}

struct channel_held_frame {
    struct channel *c;
    struct client *cl;
    char id[NSQ_MSG_ID_LEN];
    uint16_t attempts;
};

/* The delivery record of a held frame is on disk: send it if that delivery still stands (not
   timed out, not emptied). cl is only used when the message still names it as its owner, which
   keeps it allocated. */
static void channel_held_frame_send(void *arg)
{
    struct channel_held_frame *h = arg;
    struct nsqd_message *m = msg_table_find(&h->c->in_flight, h->id);
    if (m && m->client == h->cl && m->attempts == h->attempts)
        client_send_message(h->cl, m);
    free(h);
}

/* Sends m's frame to cl, or, with the journal on, records the delivery and sends the frame once
   the record is on disk. */
static void channel_send(struct channel *c, struct client *cl, struct nsqd_message *m)
{
    if (!c->journal) {
        client_send_message(cl, m);
        return;
    }
    uint64_t seq = journal_deliver(c->journal, m);
    struct channel_held_frame *h = seq ? malloc(sizeof(*h)) : NULL;
    if (h) {
        h->c = c;
        h->cl = cl;
        memcpy(h->id, m->id, NSQ_MSG_ID_LEN);
        h->attempts = m->attempts;
        if (journal_when_done(c->topic->n->journal, seq, c->journal, channel_held_frame_send, h,
                              free) != 0) {
            free(h);
            h = NULL;
        }
    }
    if (!h) {
        nsq_error("CHANNEL(%s): out of memory journaling a delivery", c->name);
        client_send_message(cl, m);
    }
    channel_journal_appended(c);
}

/* Puts back a message that was in flight or deferred. With the journal on, a message that does
   not go straight to a client (which records a new delivery) is recorded as handed to the
   diskqueue. */
static void channel_put_tracked(struct channel *c, struct nsqd_message *m)
{
    if (!c->journal) {
        channel_put(c, m);
        return;
    }
    char id[NSQ_MSG_ID_LEN];
    memcpy(id, m->id, NSQ_MSG_ID_LEN);
    bool direct = ready_next(c) && !c->paused && !c->exiting && channel_backlog_empty(c);
    channel_put(c, m);
    if (!direct && !c->exiting) {
        journal_done(c->journal, id, true);
        channel_journal_appended(c);
    }
}

static void channel_dead_letter_cb(evutil_socket_t fd, short what, void *arg)
{
    struct channel *c = arg;
    channel_dead_letter_sync(c);
    channel_journal_appended(c);
}

/* Journal mode: id was dead-lettered; its "done" record waits for the sync at the end of this
   loop iteration (at once when out of memory). */
static void channel_dead_letter_pending(struct channel *c, const char *id)
{
    if (!c->dl_ev)
        c->dl_ev = event_new(c->topic->n->base, -1, 0, channel_dead_letter_cb, c);
    if (c->dl_n == c->dl_cap) {
        size_t cap = c->dl_cap ? c->dl_cap * 2 : CHANNEL_DL_BATCH_MIN;
        char *ids = realloc(c->dl_ids, cap * NSQ_MSG_ID_LEN);
        if (ids) {
            c->dl_ids = ids;
            c->dl_cap = cap;
        }
    }
    if (!c->dl_ev || c->dl_n == c->dl_cap) {
        channel_dead_letter_sync(c);
        if (dead_letter_sync(c) == 0)
            journal_done(c->journal, id, false);
        channel_journal_appended(c);
        return;
    }
    memcpy(c->dl_ids + c->dl_n++ * NSQ_MSG_ID_LEN, id, NSQ_MSG_ID_LEN);
    if (c->dl_n == 1)
        event_active(c->dl_ev, EV_READ, 0);
}

/* A message back from flight (REQ or timeout) whose attempts are used up goes to the dead-letter
   topic instead of back into c. With the journal on it is on disk there before the journal
   forgets it here (channel_dead_letter_sync). Returns true when m left the channel. */
static bool channel_dead_letter(struct channel *c, struct nsqd_message *m)
{
    if (!dead_letter_due(c, m))
        return false;
    char id[NSQ_MSG_ID_LEN];
    memcpy(id, m->id, NSQ_MSG_ID_LEN);
    if (!dead_letter_send(c, m, c->journal != NULL))
        return false;
    if (c->journal)
        channel_dead_letter_pending(c, id);
    return true;
}

/* ---- delivery ---- */

static void channel_deliver(struct channel *c, struct client *cl, struct nsqd_message *m)
{
    if (topic_limits_expired(&c->topic->limits, m)) {
        c->drops.expired++;
        if (c->journal)
            journal_done(c->journal, m->id, false);
        nsqd_message_free(m);
        return;
    }
    if (cl->sample_rate > 0 && rand() % 100 > cl->sample_rate) {
        if (c->journal)
            journal_done(c->journal, m->id, false);
        nsqd_message_free(m); /* sampled out: consumed, never delivered */
        return;
    }
    int64_t now = nsq_mono_ns();
    m->attempts++;
    m->client = cl;
    m->delivered = now;
    m->pri = now + cl->msg_timeout_ns;
    if (msg_table_insert(&c->in_flight, m) != 0 ||
        in_flight_add(&c->inflight, m, cl->msg_timeout_ns) != 0) {
        if (m->hnext || msg_table_find(&c->in_flight, m->id) == m)
            msg_table_remove(&c->in_flight, m);
        m->attempts--;
        m->client = NULL;
        nsq_error("CHANNEL(%s): out of memory tracking in-flight message", c->name);
        if (msg_ring_push(&c->memq, m) != 0)
            nsqd_message_free(m);
        return;
    }
    channel_arm_timer(c, m->pri);
    cl->in_flight++;
    cl->message_count++;
    if (c->topology_aware) {
        c->topology_msg_count[cl->topology_class]++;
        cl->topology_msg_count[cl->topology_class]++;
    }
    channel_send(c, cl, m);
    /* Round-robin: the client goes to the back of the ready list, or leaves it. */
    ready_remove(c, cl);
    if (client_is_ready(cl))
        ready_append(c, cl);
}

int channel_put(struct channel *c, struct nsqd_message *m)
{
    if (c->exiting) {
        nsqd_message_free(m);
        return -ESHUTDOWN;
    }
    if (ready_next(c) && !c->paused && channel_backlog_empty(c)) {
        channel_deliver(c, ready_next(c), m);
        return 0;
    }
    if (topic_limits_dropping(&c->topic->limits))
        queue_make_room(c->topic, &c->memq, c->dq, &c->drops, channel_depth(c));
    if (msg_ring_len(&c->memq) < c->mem_cap && msg_ring_push(&c->memq, m) == 0) {
        channel_schedule_pump(c);
        return 0;
    }
    if (!c->dq) {
        nsqd_message_free(m); /* ephemeral overflow is dropped */
        return 0;
    }
    int rc = nsqd_message_write_disk(c->dq, m);
    nsqd_message_free(m);
    struct nsqd *n = c->topic->n;
    if (rc == 0)
        ack_wait_note(n->ack_wait, c->dq); /* a publish in progress waits for this record */
    if (rc) {
        char err[256];
        if (diskqueue_health(c->dq, err, sizeof(err)) == 0)
            snprintf(err, sizeof(err), "%s", strerror(-rc));
        nsq_error("CHANNEL(%s) ERROR: failed to write message to backend - %s", c->name, err);
        nsqd_set_health(n, err);
        return rc;
    }
    nsqd_set_health(n, NULL);
    channel_schedule_pump(c);
    return 0;
}

void channel_receive(struct channel *c, struct nsqd_message *m)
{
    c->message_count++;
    int64_t d = m->deferred;
    m->deferred = 0;
    if (d > 0 && !c->exiting)
        channel_push_deferred(c, m, nsq_mono_ns() + d);
    else
        channel_put(c, m);
}

static void channel_pump_cb(evutil_socket_t fd, short what, void *arg)
{
    struct channel *c = arg;
    int budget = CHANNEL_PUMP_BATCH;
    while (ready_next(c) && !c->paused && !c->exiting) {
        if (budget-- <= 0) {
            event_active(c->pump_ev, EV_READ, 0);
            return;
        }
        struct nsqd_message *m = msg_ring_pop(&c->memq);
        if (!m && c->dq) {
            const uint8_t *data; /* in the read-ahead buffer until the next pop_view */
            size_t len;
            if (diskqueue_pop_view(c->dq, &data, &len) != 1)
                return; /* the ready callback wakes us */
            if (queue_skip_popped(&c->drops))
                continue;
            m = nsqd_message_decode(data, len);
            if (!m) {
                nsq_error("CHANNEL(%s) ERROR: failed to decode message - invalid length", c->name);
                continue;
            }
        }
        if (!m)
            return;
        channel_deliver(c, ready_next(c), m);
    }
}

/* An in-flight message leaves flight: unlink it and update its owner. */
static void channel_unflight(struct channel *c, struct nsqd_message *m)
{
    msg_table_remove(&c->in_flight, m);
    in_flight_remove(&c->inflight, m);
}

static void channel_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct channel *c = arg;
    int64_t now = nsq_mono_ns();
    int budget = CHANNEL_EXPIRE_BATCH;
    c->timer_at = 0;
    struct nsqd_message *m;
    while (budget > 0 && (m = in_flight_pop_if(&c->inflight, now))) {
        budget--;
        msg_table_remove(&c->in_flight, m);
        c->timeout_count++;
        struct client *cl = m->client;
        m->client = NULL;
        nsq_debug("CHANNEL(%s): msg %.16s timed out", c->name, m->id);
        if (!channel_dead_letter(c, m))
            channel_put_tracked(c, m);
        if (cl) {
            cl->in_flight--;
            client_in_flight_done(cl);
        }
    }
    while (budget > 0 && (m = pq_pop_if(&c->deferred_pq, now))) {
        budget--;
        channel_put_tracked(c, m);
    }
    channel_rearm(c);
}

/* ---- subscription ---- */

int channel_add_client(struct channel *c, struct client *cl)
{
    if (c->exiting)
        return -ESHUTDOWN;
    int max = c->topic->n->opts->max_channel_consumers;
    if (max > 0 && c->client_count >= (size_t)max)
        return -EUSERS;
    cl->ch_prev = NULL;
    cl->ch_next = c->clients;
    if (c->clients)
        c->clients->ch_prev = cl;
    c->clients = cl;
    c->client_count++;
    cl->channel = c;
    channel_client_ready_changed(c, cl);
    return 0;
}

struct ephemeral_delete {
    struct nsqd *n;
    char *topic;
    char *channel;
};

static void channel_ephemeral_delete_cb(evutil_socket_t fd, short what, void *arg)
{
    struct ephemeral_delete *d = arg;
    struct topic *t = nsqd_find_topic(d->n, d->topic);
    if (t) {
        struct channel *c = topic_find_channel(t, d->channel);
        if (c && c->client_count == 0 && !c->exiting)
            topic_delete_channel(t, d->channel);
    }
    free(d->topic);
    free(d->channel);
    free(d);
}

void channel_remove_client(struct channel *c, struct client *cl)
{
    if (cl->channel != c)
        return;
    ready_remove(c, cl);
    if (cl->ch_prev)
        cl->ch_prev->ch_next = cl->ch_next;
    else
        c->clients = cl->ch_next;
    if (cl->ch_next)
        cl->ch_next->ch_prev = cl->ch_prev;
    cl->ch_next = cl->ch_prev = NULL;
    c->client_count--;
    cl->channel = NULL;
    if (c->ephemeral && c->client_count == 0 && !c->exiting && !c->topic->n->exiting) {
        /* Deleted from the loop, not from inside the client's callbacks. */
        struct ephemeral_delete *d = calloc(1, sizeof(*d));
        if (d) {
            d->n = c->topic->n;
            d->topic = strdup(c->topic->name);
            d->channel = strdup(c->name);
            if (!d->topic || !d->channel ||
                event_base_once(d->n->base, -1, EV_TIMEOUT, channel_ephemeral_delete_cb, d, NULL) !=
                        0) {
                free(d->topic);
                free(d->channel);
                free(d);
            }
        }
    }
}

/* ---- FIN / REQ / TOUCH ---- */

static struct nsqd_message *channel_owned(struct channel *c, struct client *cl, const char *id,
                                          int *err)
{
    struct nsqd_message *m = msg_table_find(&c->in_flight, id);
    if (!m) {
        *err = -ENOENT;
        return NULL;
    }
    if (m->client != cl) {
        *err = -EPERM;
        return NULL;
    }
    return m;
}

int channel_finish(struct channel *c, struct client *cl, const char *id)
{
    int err;
    struct nsqd_message *m = channel_owned(c, cl, id, &err);
    if (!m)
        return err;
    channel_unflight(c, m);
    if (c->journal) {
        journal_done(c->journal, m->id, false);
        channel_journal_appended(c);
    }
#ifdef CHANNEL_HAVE_E2E
    if (c->e2e) {
        int64_t now = nsq_now_ns();
        nsq_quantile_insert(c->e2e, now, (double)(now - m->timestamp));
    }
#endif
    nsqd_message_free(m);
    cl->in_flight--;
    cl->finish_count++;
    client_in_flight_done(cl);
    return 0;
}

int channel_requeue(struct channel *c, struct client *cl, const char *id, int64_t timeout_ns)
{
    if (c->exiting)
        return -ESHUTDOWN;
    int err;
    struct nsqd_message *m = channel_owned(c, cl, id, &err);
    if (!m)
        return err;
    channel_unflight(c, m);
    m->client = NULL;
    c->requeue_count++;
    cl->requeue_count++;
    cl->in_flight--;
    /* Used-up attempts go to the dead-letter topic; otherwise upstream's requeue. */
    if (!channel_dead_letter(c, m)) {
        if (timeout_ns > 0)
            channel_push_deferred(c, m, nsq_mono_ns() + timeout_ns);
        else
            channel_put_tracked(c, m);
    }
    client_in_flight_done(cl);
    return 0;
}

int channel_touch(struct channel *c, struct client *cl, const char *id, int64_t msg_timeout_ns)
{
    int err;
    struct nsqd_message *m = channel_owned(c, cl, id, &err);
    if (!m)
        return err;
    int64_t deadline = nsq_mono_ns() + msg_timeout_ns;
    int64_t cap = m->delivered + c->topic->n->opts->max_msg_timeout;
    if (deadline > cap)
        deadline = cap;
    in_flight_remove(&c->inflight, m);
    m->pri = deadline;
    if (in_flight_add(&c->inflight, m, msg_timeout_ns) != 0) {
        /* Out of memory: let it time out now rather than lose track of it. */
        msg_table_remove(&c->in_flight, m);
        c->timeout_count++;
        m->client = NULL;
        channel_put_tracked(c, m);
        cl->in_flight--;
        client_in_flight_done(cl);
        return 0;
    }
    channel_arm_timer(c, deadline);
    return 0;
}

int channel_set_max_attempts(struct channel *c, int64_t n)
{
    char name[NSQ_NAME_MAX_LEN + 1];
    if (n < 0 || n > NSQD_MAX_ATTEMPTS_LIMIT)
        return -EINVAL;
    if (n > 0 && dead_letter_topic_name(c->topic->n->opts, c->topic->name, name, sizeof(name)) != 0)
        return -EINVAL;
    c->max_attempts = n;
    return 0;
}

const char *channel_strerror(int err)
{
    switch (err) {
    case -ENOENT:
        return "ID not in flight";
    case -EPERM:
        return "client does not own message";
    case -ESHUTDOWN:
        return "exiting";
    case -EEXIST:
        return "ID already deferred";
    default:
        return strerror(-err);
    }
}

/* ---- admin ---- */

void channel_pause(struct channel *c, bool paused)
{
    c->paused = paused;
    channel_schedule_pump(c);
}

/* Drops every in-flight and deferred message (out = NULL) or writes them to out's diskqueue. */
static void channel_drain_tables(struct channel *c, bool to_disk)
{
    struct nsqd_message *m;
    while ((m = in_flight_pop_if(&c->inflight, INT64_MAX))) {
        msg_table_remove(&c->in_flight, m);
        struct client *cl = m->client;
        if (to_disk && c->dq)
            nsqd_message_write_disk(c->dq, m);
        nsqd_message_free(m);
        if (cl) {
            cl->in_flight--;
            client_in_flight_done(cl);
        }
    }
    while ((m = pq_pop_if(&c->deferred_pq, INT64_MAX))) {
        if (to_disk && c->dq)
            nsqd_message_write_disk(c->dq, m);
        nsqd_message_free(m);
    }
    in_flight_release(&c->inflight);
    pq_release(&c->deferred_pq);
    msg_table_release(&c->in_flight);
    evtimer_del(c->timer);
    c->timer_at = 0;
}

static void channel_drain_memq(struct channel *c, bool to_disk)
{
    struct nsqd_message *m;
    while ((m = msg_ring_pop(&c->memq))) {
        if (to_disk && c->dq)
            nsqd_message_write_disk(c->dq, m);
        nsqd_message_free(m);
        if (to_disk)
            nsqd_message_flushed();
    }
    msg_ring_release(&c->memq);
}

int channel_empty(struct channel *c)
{
    if (c->journal)
        channel_dead_letter_sync(c); /* before the journal is emptied below */
    channel_drain_memq(c, false);
    channel_drain_tables(c, false);
    for (struct client *cl = c->clients; cl; cl = cl->ch_next)
        channel_client_ready_changed(c, cl);
    if (c->journal)
        journal_quiesce(c->journal); /* no writer flush of dq during the empty */
    int rc = c->dq ? diskqueue_empty(c->dq) : 0;
    c->drops.disk_skip = 0;
    if (c->journal) {
        journal_snapshot_begin(c->journal);
        journal_snapshot_commit(c->journal);
    }
    return rc;
}

int64_t channel_depth(const struct channel *c)
{
    return (int64_t)msg_ring_len(&c->memq) + channel_backend_depth(c);
}

int64_t channel_backend_depth(const struct channel *c)
{
    return c->dq ? diskqueue_depth(c->dq) - c->drops.disk_skip : 0;
}

size_t channel_in_flight_count(const struct channel *c)
{
    return in_flight_len(&c->inflight);
}

size_t channel_deferred_count(const struct channel *c)
{
    return pq_len(&c->deferred_pq);
}

void channel_close_clients(struct channel *c)
{
    while (c->clients)
        client_close(c->clients);
}

static void channel_release(struct channel *c)
{
    event_free(c->timer);
    event_free(c->pump_ev);
    /* Pending dead-letter "done" records are dropped: a clean close removes the journal, and a
       deletion removes the channel with it. */
    if (c->dl_ev)
        event_free(c->dl_ev);
    free(c->dl_ids);
#ifdef CHANNEL_HAVE_E2E
    nsq_quantile_free(c->e2e);
#endif
    free(c->name);
    free(c);
}

void channel_close(struct channel *c)
{
    c->exiting = true;
    nsq_info("CHANNEL(%s): closing ... msgs", c->name);
    channel_close_clients(c);
    channel_drain_memq(c, true);
    channel_drain_tables(c, true);
    if (c->journal)
        journal_quiesce(c->journal);
    if (c->dq) {
        ack_wait_forget(c->topic->n->ack_wait, c->dq);
        int rc = diskqueue_close(c->dq);
        if (rc)
            nsq_error("CHANNEL(%s) ERROR: failed to close backend - %s", c->name, strerror(-rc));
        /* Everything the journal held is in the closed (synced) queue now, unless it failed. */
        journal_close(c->journal, rc == 0);
    }
    channel_release(c);
}

void channel_delete(struct channel *c)
{
    c->exiting = true;
    nsq_info("CHANNEL(%s): deleting", c->name);
    channel_close_clients(c);
    channel_drain_memq(c, false);
    channel_drain_tables(c, false);
    if (c->journal)
        journal_quiesce(c->journal);
    if (c->dq) {
        ack_wait_forget(c->topic->n->ack_wait, c->dq);
        diskqueue_delete(c->dq);
    }
    journal_close(c->journal, true);
    channel_release(c);
}
