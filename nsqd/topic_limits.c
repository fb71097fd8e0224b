/*
 * topic_limits: TTL expiry, depth admission and eviction, and their nsqd.dat keys (see
 * topic_limits.h).
 */
#include "topic_limits.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "channel.h"
#include "diskqueue.h"
#include "message.h"
#include "msg_ring.h"
#include "nsq_json.h"
#include "nsq_time.h"
#include "nsqd.h"
#include "topic.h"

/* nsqd.dat keys (ignored by upstream's loader). */
#define LIMITS_KEY_TTL       "msg_ttl_ns"
#define LIMITS_KEY_MAX_DEPTH "max_depth"
#define LIMITS_KEY_POLICY    "overflow_policy"

void topic_limits_init(struct topic_limits *l, const struct nsqd_options *o)
{
    memset(l, 0, sizeof(*l));
    l->ttl_ns = o->msg_ttl > 0 ? o->msg_ttl : 0;
}

static bool queue_drops_any(const struct queue_drops *d)
{
    return d->expired || d->dropped;
}

bool topic_limits_shown(const struct topic *t)
{
    const struct topic_limits *l = &t->limits;
    if (l->ttl_ns || l->ttl_set || l->max_depth || l->seen_msg_ttl || queue_drops_any(&t->drops))
        return true;
    for (size_t i = 0; i < t->nchans; i++)
        if (queue_drops_any(&t->chans[i]->drops))
            return true;
    return false;
}

bool topic_limits_expired_at(const struct topic_limits *l, const struct nsqd_message *m)
{
    int64_t ttl = l->ttl_ns;
    if (m->ttl_ms) {
        int64_t own = (int64_t)m->ttl_ms * NSQ_NS_PER_MS;
        if (!ttl || own < ttl)
            ttl = own;
    }
    return ttl && nsq_now_ns() - m->timestamp >= ttl;
}

int topic_admit(const struct topic *t, uint64_t n)
{
    const struct topic_limits *l = &t->limits;
    if (!topic_limits_rejecting(l))
        return 0;
    uint64_t max = (uint64_t)l->max_depth;
    if (n > max || (uint64_t)topic_depth(t) > max - n)
        return -ENOSPC;
    for (size_t i = 0; i < t->nchans; i++)
        if ((uint64_t)channel_depth(t->chans[i]) > max - n)
            return -ENOSPC;
    return 0;
}

/* Evicts the oldest message: the ring's head, else the next disk record (or, when none is read
   back yet, one more record of skip debt). Returns false when the queue holds nothing. */
static bool queue_evict_oldest(struct msg_ring *r, struct diskqueue *dq, struct queue_drops *d)
{
    if (!msg_ring_drop(r)) {
        if (!dq || diskqueue_depth(dq) <= d->disk_skip)
            return false;
        const uint8_t *data;
        size_t len;
        if (d->disk_skip == 0 && diskqueue_pop_view(dq, &data, &len) == 1)
            diskqueue_release_view(dq);
        else
            d->disk_skip++;
    }
    d->dropped++;
    return true;
}

void queue_make_room(const struct topic *t, struct msg_ring *r, struct diskqueue *dq,
                     struct queue_drops *d, int64_t depth)
{
    const struct topic_limits *l = &t->limits;
    if (!topic_limits_dropping(l))
        return;
    while (depth >= l->max_depth && queue_evict_oldest(r, dq, d))
        depth--;
}

/* Expired head messages dropped per memory queue and sweep: bounds the time one sweep takes. */
#define LIMITS_SWEEP_BATCH 65536

static void ring_drop_expired_heads(const struct topic_limits *l, struct msg_ring *r,
                                    struct queue_drops *d)
{
    struct nsqd_message *m;
    for (int budget = LIMITS_SWEEP_BATCH; budget > 0 && (m = msg_ring_peek(r)); budget--) {
        bool expired = topic_limits_expired(l, m);
        nsqd_message_free(m);
        if (!expired)
            break;
        msg_ring_drop(r);
        d->expired++;
    }
}

void topic_limits_sweep(struct topic *t, void *arg)
{
    (void)arg;
    const struct topic_limits *l = &t->limits;
    if ((!l->ttl_ns && !l->seen_msg_ttl) || t->exiting)
        return;
    ring_drop_expired_heads(l, &t->memq, &t->drops);
    for (size_t i = 0; i < t->nchans; i++)
        ring_drop_expired_heads(l, &t->chans[i]->memq, &t->chans[i]->drops);
}

const char *topic_overflow_name(enum topic_overflow p)
{
    return p == TOPIC_OVERFLOW_DROP_OLDEST ? "drop_oldest" : "reject";
}

int topic_overflow_parse(const char *s, enum topic_overflow *p)
{
    if (strcmp(s, "reject") == 0)
        *p = TOPIC_OVERFLOW_REJECT;
    else if (strcmp(s, "drop_oldest") == 0)
        *p = TOPIC_OVERFLOW_DROP_OLDEST;
    else
        return -EINVAL;
    return 0;
}

void topic_limits_write_json(const struct topic *t, struct nsq_json *j)
{
    const struct topic_limits *l = &t->limits;
    if (l->ttl_set)
        nsq_json_kv_int(j, LIMITS_KEY_TTL, l->ttl_ns);
    if (l->max_depth) {
        nsq_json_kv_int(j, LIMITS_KEY_MAX_DEPTH, l->max_depth);
        nsq_json_kv_string(j, LIMITS_KEY_POLICY, topic_overflow_name(l->policy));
    }
}

void topic_limits_read_json(struct topic *t, const struct cJSON *jt)
{
    struct topic_limits *l = &t->limits;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(jt, LIMITS_KEY_TTL);
    if (cJSON_IsNumber(v) && v->valuedouble >= 0) {
        l->ttl_ns = (int64_t)v->valuedouble;
        l->ttl_set = true;
    }
    v = cJSON_GetObjectItemCaseSensitive(jt, LIMITS_KEY_MAX_DEPTH);
    if (cJSON_IsNumber(v) && v->valuedouble > 0)
        l->max_depth = (int64_t)v->valuedouble;
    v = cJSON_GetObjectItemCaseSensitive(jt, LIMITS_KEY_POLICY);
    if (cJSON_IsString(v))
        topic_overflow_parse(v->valuestring, &l->policy);
}
