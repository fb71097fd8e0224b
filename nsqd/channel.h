/*
 * channel: one consumer group of a topic (behaviour.md §1, §4-§8).
 *
 * Owned by the loop thread. Holds the memory ring (capacity mem-queue-size, grown lazily), the
 * diskqueue (none for ephemeral channels: overflow dropped), the in-flight table (hash by ID +
 * deadline heap), the deferred heap, the subscribed clients and the subset of them ready for a
 * message (in round-robin order, nearest locality class first: topology.h).
 *
 * One timer per channel is armed for the earliest in-flight deadline or deferred due time; it is
 * re-armed only when a new earliest appears or after it fired. The pump event pulls from the ring,
 * then the diskqueue, while a ready client exists (bounded batches).
 *
 * With the journal on (journal.h) every change of a message's in-flight/deferred state is
 * recorded: delivered, deferred, done (FIN, or handed back to the diskqueue). A delivered message
 * is in the in-flight table at once (FIN/timeouts work as usual), but its frame is sent only when
 * its record is on disk. channel_new replays the journal: deferred messages keep what remains of
 * their deferral, in-flight ones go back to the diskqueue with their attempts.
 */
#ifndef NSQD_CHANNEL_H
#define NSQD_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "in_flight.h"
#include "in_flight_pqueue.h"
#include "msg_ring.h"
#include "msg_table.h"
#include "topic_limits.h"
#include "topology.h"

struct topic;
struct client;
struct diskqueue;
struct journal;
struct event;
struct nsqd_message;
struct nsq_quantile;

struct channel {
    struct topic *topic;
    char *name;
    bool ephemeral;
    bool paused;
    bool exiting;
    struct msg_ring memq;
    size_t mem_cap;
    struct diskqueue *dq;    /* NULL when ephemeral */
    struct journal *journal; /* durable in-flight/deferred record, NULL when off or ephemeral */

    struct msg_table in_flight;          /* id -> message */
    struct in_flight_index inflight;     /* by deadline */
    struct in_flight_pqueue deferred_pq; /* by due time */
    struct event *timer;
    int64_t timer_at; /* monotonic ns the timer is armed for, 0 = not armed */

    struct event *pump_ev;
    bool pump_scheduled;

    struct client *clients; /* subscribed clients (client->ch_next) */
    size_t client_count;
    /* Clients with in_flight < rdy (client->rdy_next/rdy_prev), one round-robin list per
       locality class (topology.h): delivery takes the head of the nearest non-empty list. Without
       topology every client is global: one list. */
    struct client *ready_head[TOPOLOGY_CLASSES];
    struct client *ready_tail[TOPOLOGY_CLASSES];
    bool topology_aware; /* count deliveries per class (the experiment is enabled) */

    uint64_t message_count;
    uint64_t requeue_count;
    uint64_t timeout_count;
    uint64_t topology_msg_count[TOPOLOGY_CLASSES]; /* deliveries by class, when topology_aware */
    int64_t max_attempts;       /* own dead-letter limit, 0 = inherit (dead_letter.h) */
    uint64_t dead_letter_count; /* messages moved to the dead-letter topic */
    bool dead_letter_warned;    /* "no valid dead-letter topic" was logged */
    /* Journal mode: IDs (NSQ_MSG_ID_LEN bytes each) dead-lettered since the dead-letter topic's
       diskqueue was last synced; their "done" records follow the next sync (once per loop
       iteration, dl_ev, created on first use). */
    char *dl_ids;
    size_t dl_n, dl_cap;
    struct event *dl_ev;
    struct queue_drops drops; /* expired (TTL) and evicted (max_depth) messages */
    struct nsq_quantile *e2e; /* NULL when no percentiles are configured */
};

/* Creates a channel of t (no side effects on lookupd/metadata). NULL on failure. */
struct channel *channel_new(struct topic *t, const char *name);

/* Takes ownership of m (from the topic): deferred if m->deferred > 0, else put. Counts
   message_count. */
void channel_receive(struct channel *c, struct nsqd_message *m);
/* Queues m for delivery: a ready client, else the memory ring, else the diskqueue (ephemeral:
   dropped). Takes ownership. Returns 0 or a diskqueue error. */
int channel_put(struct channel *c, struct nsqd_message *m);

/* Subscription. Returns 0, -ESHUTDOWN (exiting) or -EUSERS (max-channel-consumers reached). */
int channel_add_client(struct channel *c, struct client *cl);
/* Unsubscribes; an ephemeral channel left without clients is deleted (deferred to the loop). */
void channel_remove_client(struct channel *c, struct client *cl);
/* Re-evaluates whether cl may receive messages (after RDY/FIN/REQ/timeout/CLS) and wakes the pump
   when it can. */
void channel_client_ready_changed(struct channel *c, struct client *cl);

/* FIN/REQ/TOUCH. Return 0, -ENOENT ("ID not in flight"), -EPERM ("client does not own message"),
   -ESHUTDOWN ("exiting"). id is NSQ_MSG_ID_LEN bytes. */
int channel_finish(struct channel *c, struct client *cl, const char *id);
int channel_requeue(struct channel *c, struct client *cl, const char *id, int64_t timeout_ns);
int channel_touch(struct channel *c, struct client *cl, const char *id, int64_t msg_timeout_ns);
/* Sets c's own dead-letter limit (0 = inherit --max-attempts). Returns 0, or -EINVAL when n is
   out of range or n > 0 and the topic has no valid dead-letter name. */
int channel_set_max_attempts(struct channel *c, int64_t n);
/* Text of a FIN/REQ/TOUCH error code. */
const char *channel_strerror(int err);

void channel_pause(struct channel *c, bool paused);
/* Drops memory ring, diskqueue, in-flight and deferred; resets clients' in-flight counts. */
int channel_empty(struct channel *c);

int64_t channel_depth(const struct channel *c);
int64_t channel_backend_depth(const struct channel *c); /* disk, minus evicted records */
size_t channel_in_flight_count(const struct channel *c);
size_t channel_deferred_count(const struct channel *c);

/* Closes every client connection of the channel. */
void channel_close_clients(struct channel *c);
/* Shutdown: closes clients, writes ring + in-flight + deferred to the diskqueue, closes it, frees
 * c. */
void channel_close(struct channel *c);
/* Deletion: closes clients, empties, deletes queue files, frees c (caller removed it from the
   topic already). */
void channel_delete(struct channel *c);

#endif
