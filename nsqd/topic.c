/*
 * topic: fan-out of published messages to channels (see topic.h).
 */
#include "topic.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

#include <event2/event.h>

#include "ack_wait.h"
#include "channel.h"
#include "diskqueue.h"
#include "message.h"
#include "name_map.h"
#include "nsq_log.h"
#include "nsq_names.h"
#include "nsq_time.h"
#include "nsqd.h"

/* Messages moved per pump run before yielding to the loop. */
#define TOPIC_PUMP_BATCH 4096
/* Wait between GUID retries (storage.md §6). */
#define TOPIC_GUID_RETRY_NS  1000000L
#define TOPIC_GUID_LOG_EVERY 10000

static void topic_dq_ready(void *arg)
{
    struct topic *t = arg;
    /* I/O thread: only wake the loop. */
    event_active(t->pump_ev, EV_READ, 0);
}

static void topic_pump_cb(evutil_socket_t fd, short what, void *arg);

struct topic *topic_new(struct nsqd *n, const char *name)
{
    struct topic *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->n = n;
    t->name = strdup(name);
    t->channels = name_map_new();
    t->pump_ev = event_new(n->base, -1, 0, topic_pump_cb, t);
    if (!t->name || !t->channels || !t->pump_ev)
        goto err;
    t->ephemeral = nsq_name_is_ephemeral(name, strlen(name));
    t->mem_cap = n->opts->mem_queue_size > 0 ? (size_t)n->opts->mem_queue_size : 0;
    topic_limits_init(&t->limits, n->opts);
    nsq_guid_factory_init(&t->guid, n->opts->id);
    if (!t->ephemeral) {
        struct diskqueue_options o = {
                .name = name,
                .data_path = n->data_path,
                .max_bytes_per_file = n->opts->max_bytes_per_file,
                .min_msg_size = NSQ_MSG_HEADER_LEN,
                .max_msg_size = (int32_t)(n->opts->max_msg_size + NSQ_MSG_HEADER_LEN),
                .sync_every = n->opts->sync_every,
                .sync_timeout_ns = n->opts->sync_timeout,
                .synced = n->ack_wait ? ack_wait_synced_cb : NULL,
                .synced_arg = n->ack_wait,
        };
        t->dq = diskqueue_open(n->dqs, &o, topic_dq_ready, t);
        if (!t->dq)
            goto err;
    }
    return t;
err:
    if (t->pump_ev)
        event_free(t->pump_ev);
    name_map_free(t->channels);
    free(t->name);
    free(t);
    return NULL;
}

static bool topic_can_distribute(const struct topic *t)
{
    return t->started && !t->paused && !t->exiting && t->nchans > 0;
}

static bool topic_backlog_empty(const struct topic *t)
{
    return msg_ring_len(&t->memq) == 0 && (!t->dq || diskqueue_depth(t->dq) == 0);
}

void topic_schedule_pump(struct topic *t)
{
    if (topic_can_distribute(t) && !topic_backlog_empty(t))
        event_active(t->pump_ev, EV_READ, 0);
}

void topic_start(struct topic *t)
{
    t->started = true;
    topic_schedule_pump(t);
}

/* Hands m to every channel: further channels get copies, the first the object itself. */
static void topic_distribute(struct topic *t, struct nsqd_message *m)
{
    for (size_t i = t->nchans; i-- > 1;) {
        struct nsqd_message *c = nsqd_message_copy(m);
        if (!c) {
            nsq_error("TOPIC(%s): out of memory copying message", t->name);
            continue;
        }
        channel_receive(t->chans[i], c);
    }
    channel_receive(t->chans[0], m);
}

/* Takes ownership of m. */
static int topic_put(struct topic *t, struct nsqd_message *m)
{
    if (topic_can_distribute(t) && topic_backlog_empty(t)) {
        topic_distribute(t, m);
        return 0;
    }
    if (topic_limits_dropping(&t->limits))
        queue_make_room(t, &t->memq, t->dq, &t->drops, topic_depth(t));
    if (msg_ring_len(&t->memq) < t->mem_cap && msg_ring_push(&t->memq, m) == 0) {
        topic_schedule_pump(t);
        return 0;
    }
    if (!t->dq) {
        nsqd_message_free(m); /* ephemeral overflow is dropped */
        return 0;
    }
    int rc = nsqd_message_write_disk(t->dq, m);
    nsqd_message_free(m);
    if (rc) {
        char err[256];
        if (diskqueue_health(t->dq, err, sizeof(err)) == 0)
            snprintf(err, sizeof(err), "%s", strerror(-rc));
        nsq_error("TOPIC(%s) ERROR: failed to write message to backend - %s", t->name, err);
        nsqd_set_health(t->n, err);
        return rc;
    }
    ack_wait_note(t->n->ack_wait, t->dq); /* the publish in progress waits for this record */
    nsqd_set_health(t->n, NULL);
    topic_schedule_pump(t);
    return 0;
}

/* Writes m to t's diskqueue (bypassing the memory ring and the channels). Frees m. */
static int topic_put_disk(struct topic *t, struct nsqd_message *m)
{
    int rc = nsqd_message_write_disk(t->dq, m);
    nsqd_message_free(m);
    if (rc)
        nsq_error("TOPIC(%s) ERROR: failed to write message to backend - %s", t->name,
                  strerror(-rc));
    else
        topic_schedule_pump(t);
    return rc;
}

int topic_put_message(struct topic *t, struct nsqd_message *m, bool to_disk)
{
    if (t->exiting) {
        nsqd_message_free(m);
        return -ESHUTDOWN;
    }
    size_t len = m->body_len;
    int rc = to_disk && t->dq ? topic_put_disk(t, m) : topic_put(t, m);
    if (rc == 0) {
        t->message_count++;
        t->message_bytes += len;
    }
    return rc;
}

/* Assigns the next ID made from the clock reading *now (read first when 0, and again after a
   GUID error); *now keeps the reading used, which is also the message timestamp. */
static void topic_next_id(struct topic *t, char id[NSQ_MSG_ID_LEN], int64_t *now)
{
    uint64_t guid;
    unsigned failures = 0;
    int rc;
    if (!*now)
        *now = nsq_now_ns();
    while ((rc = nsq_guid_next(&t->guid, *now, &guid)) != 0) {
        if (failures++ % TOPIC_GUID_LOG_EVERY == 0)
            nsq_error("TOPIC(%s): failed to create guid - %s", t->name, nsq_guid_strerror(rc));
        struct timespec ts = {0, TOPIC_GUID_RETRY_NS};
        nanosleep(&ts, NULL);
        *now = nsq_now_ns();
    }
    nsq_guid_to_hex(guid, id);
}

int topic_publish_ttl(struct topic *t, const void *body, size_t len, int64_t defer_ns,
                      uint32_t ttl_ms, int64_t *now)
{
    if (!t->exiting && topic_limits_rejecting(&t->limits) && topic_admit(t, 1) != 0)
        return -ENOSPC;
    return topic_publish_admitted(t, body, len, defer_ns, ttl_ms, now);
}

int topic_publish_admitted(struct topic *t, const void *body, size_t len, int64_t defer_ns,
                           uint32_t ttl_ms, int64_t *now)
{
    if (t->exiting)
        return -ESHUTDOWN;
    char id[NSQ_MSG_ID_LEN];
    topic_next_id(t, id, now);
    struct nsqd_message *m = nsqd_message_new(id, *now, body, len);
    if (!m)
        return -ENOMEM;
    m->deferred = defer_ns > 0 ? defer_ns : 0;
    m->ttl_ms = ttl_ms;
    if (ttl_ms)
        t->limits.seen_msg_ttl = true;
    int rc = topic_put(t, m);
    if (rc == 0) {
        t->message_count++;
        t->message_bytes += len;
    }
    return rc;
}

int topic_publish_at(struct topic *t, const void *body, size_t len, int64_t defer_ns, int64_t *now)
{
    return topic_publish_ttl(t, body, len, defer_ns, 0, now);
}

int topic_publish(struct topic *t, const void *body, size_t len, int64_t defer_ns)
{
    int64_t now = 0;
    return topic_publish_at(t, body, len, defer_ns, &now);
}

int topic_publish_many(struct topic *t, const struct iovec *bodies, size_t n)
{
    return topic_publish_many_ttl(t, bodies, n, 0);
}

int topic_publish_many_ttl(struct topic *t, const struct iovec *bodies, size_t n, uint32_t ttl_ms)
{
    if (!t->exiting && topic_admit(t, n) != 0)
        return -ENOSPC;
    int64_t now = 0;
    for (size_t i = 0; i < n; i++) {
        int rc = topic_publish_admitted(t, bodies[i].iov_base, bodies[i].iov_len, 0, ttl_ms, &now);
        if (rc)
            return rc;
    }
    return 0;
}

/* Drains the backlog into the channels, TOPIC_PUMP_BATCH messages at a time. */
static void topic_pump_cb(evutil_socket_t fd, short what, void *arg)
{
    struct topic *t = arg;
    int budget = TOPIC_PUMP_BATCH;
    while (budget-- > 0 && topic_can_distribute(t)) {
        struct nsqd_message *m = msg_ring_pop(&t->memq);
        if (!m && t->dq) {
            const uint8_t *data; /* in the read-ahead buffer until the next pop_view */
            size_t len;
            if (diskqueue_pop_view(t->dq, &data, &len) != 1)
                return; /* the ready callback wakes us */
            if (queue_skip_popped(&t->drops))
                continue;
            m = nsqd_message_decode(data, len);
            if (!m) {
                nsq_error("TOPIC(%s) ERROR: failed to decode message - invalid length", t->name);
                continue;
            }
        }
        if (!m)
            return;
        if (topic_limits_expired(&t->limits, m)) {
            t->drops.expired++;
            nsqd_message_free(m);
            continue;
        }
        topic_distribute(t, m);
    }
    topic_schedule_pump(t);
}

struct channel *topic_find_channel(struct topic *t, const char *name)
{
    return name_map_get(t->channels, name);
}

struct channel *topic_get_channel(struct topic *t, const char *name)
{
    struct channel *c = name_map_get(t->channels, name);
    if (c)
        return c;
    if (t->exiting)
        return NULL;
    if (t->nchans == t->chans_cap) {
        size_t cap = t->chans_cap ? t->chans_cap * 2 : 4;
        struct channel **a = realloc(t->chans, cap * sizeof(*a));
        if (!a)
            return NULL;
        t->chans = a;
        t->chans_cap = cap;
    }
    c = channel_new(t, name);
    if (!c)
        return NULL;
    if (name_map_put(t->channels, name, c) != 0) {
        channel_delete(c);
        return NULL;
    }
    t->chans[t->nchans++] = c;
    t->had_channel = true;
    nsq_info("TOPIC(%s): new channel(%s)", t->name, name);
    nsqd_notify(t->n, t->name, name, c->ephemeral, true);
    topic_schedule_pump(t);
    return c;
}

static void topic_unlist_channel(struct topic *t, struct channel *c)
{
    for (size_t i = 0; i < t->nchans; i++) {
        if (t->chans[i] == c) {
            memmove(&t->chans[i], &t->chans[i + 1], (t->nchans - i - 1) * sizeof(*t->chans));
            t->nchans--;
            break;
        }
    }
}

int topic_delete_channel(struct topic *t, const char *name)
{
    struct channel *c = name_map_del(t->channels, name);
    if (!c)
        return -ENOENT;
    topic_unlist_channel(t, c);
    c->exiting = true;
    nsq_info("TOPIC(%s): deleting channel %s", t->name, name);
    bool ephemeral = c->ephemeral;
    char *cname = strdup(name);
    channel_delete(c);
    if (cname) {
        if (!t->exiting)
            nsqd_notify(t->n, t->name, cname, ephemeral, false);
        free(cname);
    }
    if (t->ephemeral && t->nchans == 0 && !t->exiting)
        nsqd_delete_topic(t->n, t->name);
    return 0;
}

void topic_foreach_channel(struct topic *t, void (*fn)(struct channel *c, void *arg), void *arg)
{
    for (size_t i = 0; i < t->nchans; i++)
        fn(t->chans[i], arg);
}

void topic_pause(struct topic *t, bool paused)
{
    t->paused = paused;
    topic_schedule_pump(t);
}

static void topic_drop_memq(struct topic *t)
{
    struct nsqd_message *m;
    while ((m = msg_ring_pop(&t->memq)))
        nsqd_message_free(m);
    msg_ring_release(&t->memq);
}

int topic_empty(struct topic *t)
{
    topic_drop_memq(t);
    t->drops.disk_skip = 0;
    return t->dq ? diskqueue_empty(t->dq) : 0;
}

int64_t topic_depth(const struct topic *t)
{
    return (int64_t)msg_ring_len(&t->memq) + topic_backend_depth(t);
}

int64_t topic_backend_depth(const struct topic *t)
{
    return t->dq ? diskqueue_depth(t->dq) - t->drops.disk_skip : 0;
}

static void topic_release(struct topic *t)
{
    event_free(t->pump_ev);
    name_map_free(t->channels);
    free(t->chans);
    free(t->name);
    free(t);
}

void topic_close(struct topic *t)
{
    t->exiting = true;
    nsq_info("TOPIC(%s): closing ... msgs", t->name);
    while (t->nchans > 0) {
        struct channel *c = t->chans[--t->nchans];
        name_map_del(t->channels, c->name);
        channel_close(c);
    }
    struct nsqd_message *m;
    while ((m = msg_ring_pop(&t->memq))) {
        if (t->dq) {
            int rc = nsqd_message_write_disk(t->dq, m);
            if (rc)
                nsq_error("TOPIC(%s) ERROR: failed to write message to backend - %s", t->name,
                          strerror(-rc));
        }
        nsqd_message_free(m);
        nsqd_message_flushed();
    }
    msg_ring_release(&t->memq);
    if (t->dq) {
        ack_wait_forget(t->n->ack_wait, t->dq);
        int rc = diskqueue_close(t->dq);
        if (rc)
            nsq_error("TOPIC(%s) ERROR: failed to close backend - %s", t->name, strerror(-rc));
    }
    topic_release(t);
}

void topic_delete(struct topic *t)
{
    t->exiting = true;
    nsq_info("TOPIC(%s): deleting", t->name);
    while (t->nchans > 0) {
        struct channel *c = t->chans[t->nchans - 1];
        char *cname = strdup(c->name);
        name_map_del(t->channels, c->name);
        t->nchans--;
        c->exiting = true;
        channel_delete(c);
        if (cname) {
            nsqd_notify_lookup(t->n, t->name, cname, false);
            free(cname);
        }
    }
    topic_drop_memq(t);
    if (t->dq) {
        ack_wait_forget(t->n->ack_wait, t->dq);
        diskqueue_delete(t->dq);
    }
    topic_release(t);
}
