/*
 * topic_limits: message time-to-live and bounded depth of a topic (docs/ttl-and-depth.md).
 *
 * Both are off by default and cost one branch per message when off.
 *
 * Time-to-live. A topic TTL (POST /topic/ttl, default --msg-ttl) is measured from the message
 * timestamp, so it applies to every copy wherever it waits, disk included, and a change applies to
 * messages already queued. A per-publish TTL (HTTP ttl=, TCP trailing PUB/MPUB/DPUB parameter)
 * lives in the message object only (nsqd_message.ttl_ms): upstream's disk record has no room for
 * it, so it is lost when the message is written to a diskqueue; the topic TTL still applies there.
 * The effective TTL is the shorter of the two. Expiry is checked when a message reaches the head
 * of a queue: when the topic hands it to its channels and when a channel is about to deliver it
 * (each attempt, requeues included), and at the head of memory queues by a periodic sweep. There
 * is no timer per message; an expired message waiting behind others, or on disk in a queue nobody
 * reads, stays counted in depth until it reaches the head.
 *
 * Bounded depth. max_depth bounds the topic's depth and every channel's depth (memory + disk, as
 * upstream defines depth; in-flight and deferred messages are not counted). Policy reject: a
 * publish that would take any of them above max_depth fails as a whole (topic_admit). Policy
 * drop_oldest: a queue at max_depth evicts its oldest message (memory ring first, then disk)
 * before taking a new one. A disk record that is not yet read back cannot be removed at once: it
 * becomes skip debt (queue_drops.disk_skip), subtracted from depth and discarded when popped. The
 * debt is not persisted: after a restart those records count (and are delivered) again.
 *
 * Loop thread only, like the topic and channels that embed these structs.
 */
#ifndef NSQD_TOPIC_LIMITS_H
#define NSQD_TOPIC_LIMITS_H

#include <stdbool.h>
#include <stdint.h>

#include "message.h"

struct topic;
struct msg_ring;
struct diskqueue;
struct nsq_json;
struct nsqd_options;
struct cJSON;

/* Largest per-publish TTL (it is kept as milliseconds in 32 bits, ~49 days). */
#define TOPIC_MAX_MSG_TTL_MS UINT32_MAX

enum topic_overflow {
    TOPIC_OVERFLOW_REJECT = 0,
    TOPIC_OVERFLOW_DROP_OLDEST = 1,
};

/* What one queue (a topic's own, or a channel's) discarded. */
struct queue_drops {
    uint64_t expired;  /* TTL passed before delivery */
    uint64_t dropped;  /* evicted by max_depth with drop_oldest */
    int64_t disk_skip; /* evicted records still in the diskqueue: the next pops discard them */
};

struct topic_limits {
    int64_t ttl_ns;    /* 0 = none */
    bool ttl_set;      /* set through the API (then persisted), else --msg-ttl */
    int64_t max_depth; /* 0 = unbounded */
    enum topic_overflow policy;
    bool seen_msg_ttl; /* a per-publish TTL was used: /stats shows the counters */
};

void topic_limits_init(struct topic_limits *l, const struct nsqd_options *o);

/* Whether /stats, /metrics and statsd show the TTL and depth fields of t (any limit configured or
   used); false keeps their output identical to upstream's. */
bool topic_limits_shown(const struct topic *t);

/*
 * The per-message checks are inline and test the limits before anything else, so that a topic
 * without limits pays a load and a branch per message, not a call, a clock read or a depth
 * computation (a diskqueue's depth takes its lock).
 */

/* Whether m's effective TTL (of topic limits l) has passed. */
bool topic_limits_expired_at(const struct topic_limits *l, const struct nsqd_message *m);
static inline bool topic_limits_expired(const struct topic_limits *l, const struct nsqd_message *m)
{
    return (l->ttl_ns || m->ttl_ms) && topic_limits_expired_at(l, m);
}

static inline bool topic_limits_rejecting(const struct topic_limits *l)
{
    return l->max_depth && l->policy == TOPIC_OVERFLOW_REJECT;
}

static inline bool topic_limits_dropping(const struct topic_limits *l)
{
    return l->max_depth && l->policy == TOPIC_OVERFLOW_DROP_OLDEST;
}

/* Policy reject: 0 if n more messages fit in the topic and every channel, else -ENOSPC. Always 0
   without a bound or with drop_oldest. */
int topic_admit(const struct topic *t, uint64_t n);

/* Policy drop_oldest: while depth >= max_depth, evicts the oldest message of the queue (ring r,
   then dq, which may be NULL) and counts it in d. Call when topic_limits_dropping. */
void queue_make_room(const struct topic *t, struct msg_ring *r, struct diskqueue *dq,
                     struct queue_drops *d, int64_t depth);

/* Called for each record popped from a diskqueue: true if it is evicted debt to discard. */
static inline bool queue_skip_popped(struct queue_drops *d)
{
    if (d->disk_skip <= 0)
        return false;
    d->disk_skip--;
    return true;
}

/* Housekeeping (nsqd's memory timer, every few seconds): drops the expired messages at the head
   of the memory queues of t and its channels, so that queues nobody reads do not keep them in
   memory and in depth. Disk records wait for a reader (a diskqueue cannot be peeked). A
   nsqd_foreach_topic callback; arg is unused. */
void topic_limits_sweep(struct topic *t, void *arg);

/* "reject" / "drop_oldest". */
const char *topic_overflow_name(enum topic_overflow p);
/* Returns 0 or -EINVAL. */
int topic_overflow_parse(const char *s, enum topic_overflow *p);

/* nsqd.dat: writes the limits set through the API as extra keys of the topic object (nothing when
   none is set: the file stays upstream's), and reads them back. */
void topic_limits_write_json(const struct topic *t, struct nsq_json *j);
void topic_limits_read_json(struct topic *t, const struct cJSON *jt);

#endif
