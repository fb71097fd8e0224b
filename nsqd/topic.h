/*
 * topic: a named stream of messages fanned out to its channels (behaviour.md §1-§3, §8).
 *
 * Owned by the loop thread. A topic distributes immediately when it is started, unpaused, has at
 * least one channel and no backlog; otherwise messages wait in its memory ring (capacity
 * mem-queue-size; deferred messages always try the ring) and overflow to its diskqueue (none for
 * an ephemeral topic: overflow is dropped). The pump event drains the backlog in bounded batches.
 *
 * Lifetime: created by nsqd_get_topic (or metadata load), removed by nsqd_delete_topic or
 * shutdown. The channel array is the distribution list; it changes between messages only.
 */
#ifndef NSQD_TOPIC_H
#define NSQD_TOPIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nsq_guid.h"
#include "msg_ring.h"
#include "topic_limits.h"

struct nsqd;
struct channel;
struct diskqueue;
struct event;
struct nsqd_message;
struct name_map;
struct iovec;

struct topic {
    struct nsqd *n;
    char *name;
    bool ephemeral;
    bool paused;
    bool exiting;
    bool started;              /* pump may run (after lookupd channel pre-creation) */
    struct name_map *channels; /* name -> struct channel * */
    struct channel **chans;    /* distribution list, nchans entries */
    size_t nchans, chans_cap;
    struct msg_ring memq;
    size_t mem_cap;
    struct diskqueue *dq; /* NULL when ephemeral */
    struct event *pump_ev;
    bool pump_scheduled;
    struct nsq_guid_factory guid;
    uint64_t message_count;
    uint64_t message_bytes;
    bool had_channel;           /* ephemeral topic: deleted when its last channel goes */
    struct topic_limits limits; /* TTL and max depth (topic_limits.h) */
    struct queue_drops drops;   /* what the topic's own queue expired or evicted */
};

/* Creates a topic (not started, not registered anywhere). NULL on failure. */
struct topic *topic_new(struct nsqd *n, const char *name);
/* Allows distribution (and drains what accumulated). */
void topic_start(struct topic *t);

/* Publishes a body: assigns a new ID and timestamp, then puts it. defer_ns > 0 = deferred.
   Returns 0, -ESHUTDOWN (exiting) or a diskqueue error (-errno, health updated). */
int topic_publish(struct topic *t, const void *body, size_t len, int64_t defer_ns);
/* topic_publish with a clock reading shared by a batch: *now = 0 reads the clock, and *now keeps
   the reading used (pass it to the next message of the same MPUB: one clock read per batch). */
int topic_publish_at(struct topic *t, const void *body, size_t len, int64_t defer_ns, int64_t *now);
/* Publishes n bodies in order (MPUB); stops at the first failure. Counts only the successes. */
int topic_publish_many(struct topic *t, const struct iovec *bodies, size_t n);
/* The forms above with a per-publish TTL (ttl_ms, 0 = none; topic_limits.h). With a reject
   max_depth they fail with -ENOSPC, before publishing anything, when the messages do not fit. */
int topic_publish_ttl(struct topic *t, const void *body, size_t len, int64_t defer_ns,
                      uint32_t ttl_ms, int64_t *now);
int topic_publish_many_ttl(struct topic *t, const struct iovec *bodies, size_t n, uint32_t ttl_ms);
/* topic_publish_ttl without the max_depth check, for each message of a batch that topic_admit
   accepted as a whole (one depth computation per batch, not per message). */
int topic_publish_admitted(struct topic *t, const void *body, size_t len, int64_t defer_ns,
                           uint32_t ttl_ms, int64_t *now);

/* Puts an existing message into t as a publish would (ID, timestamp and attempts kept) and counts
   it. to_disk: straight into t's diskqueue, not distributed (the caller syncs t->dq with
   diskqueue_flush before a journal record that depends on it). Takes ownership. Returns 0,
   -ESHUTDOWN or a diskqueue error. */
int topic_put_message(struct topic *t, struct nsqd_message *m, bool to_disk);

/* Channel lookup and creation (creation notifies lookupd, rewrites metadata). */
struct channel *topic_find_channel(struct topic *t, const char *name);
struct channel *topic_get_channel(struct topic *t, const char *name);
/* Deletes a channel (behaviour.md §8). Returns 0 or -ENOENT. May delete an ephemeral topic that
   is left without channels (then t is freed). */
int topic_delete_channel(struct topic *t, const char *name);
void topic_foreach_channel(struct topic *t, void (*fn)(struct channel *c, void *arg), void *arg);

void topic_pause(struct topic *t, bool paused);
/* Drops the topic's own queue (memory + disk); channels untouched. Returns 0 or -errno. */
int topic_empty(struct topic *t);

int64_t topic_depth(const struct topic *t);         /* memory + disk */
int64_t topic_backend_depth(const struct topic *t); /* disk only (minus evicted records) */

/* Shutdown: closes every channel (flushing its messages to disk), writes the memory ring to the
   diskqueue, closes the queue and frees t. */
void topic_close(struct topic *t);
/* Deletion: marks exiting, deletes every channel and the queue files, frees t. The caller has
   already removed t from the nsqd map. */
void topic_delete(struct topic *t);

/* Internal: wake the pump (called when a channel appears or a diskqueue has data). */
void topic_schedule_pump(struct topic *t);

#endif
