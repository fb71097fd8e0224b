/*
 * ack_wait: holds the acknowledgement of a publish until every diskqueue record it produced is
 * durable (docs/durability.md).
 *
 * With --sync-every=1 a publish promises that what went to disk survives a crash. A diskqueue put
 * only copies the record to the queue's pending buffer; the I/O threads write and fsync it later.
 * So a publish (PUB, MPUB, DPUB, HTTP /pub, /mpub) collects, while it runs, the (queue, put
 * sequence number) of each record it hands to a topic or channel diskqueue; if there are any, its
 * OK is held and sent from the loop once every queue's synced sequence number has caught up
 * (diskqueue_synced_seq). The loop never blocks: the queues' `synced` callback wakes it (one event
 * for the whole daemon), and it then checks the waiting publishes. Messages that stay in memory
 * produce no record and are acknowledged at once, as upstream does. If a queue reports a write
 * error while a record is not synced, the publish fails instead (E_PUB_FAILED, HTTP 503): the
 * record stays queued and is written when the disk recovers, so the producer's retry may deliver
 * it twice (at least once, never an OK for a record that may be lost).
 *
 * Order: a TCP connection stops reading while its OK is held (as for AUTH), so its responses stay
 * in command order; different connections wait independently.
 *
 * Threads: everything here runs on the loop thread except ack_wait_synced_cb (an I/O thread; it
 * only activates the event). Ownership: the daemon owns the struct (ack_wait_new/ack_wait_free);
 * a queue whose records are awaited must be released with ack_wait_forget before it is closed or
 * deleted.
 */
#ifndef NSQD_ACK_WAIT_H
#define NSQD_ACK_WAIT_H

#include <stdbool.h>

struct ack_wait;
struct diskqueue;
struct event_base;
struct nsqd_options;

/* The rule: acknowledgements wait for the disk exactly when every record is to be synced. */
bool ack_wait_enabled(const struct nsqd_options *o);

/* Completions are delivered on base. NULL on out of memory. */
struct ack_wait *ack_wait_new(struct event_base *base);
/* Drops the waiting publishes (their `drop` functions run). NULL is a no-op. */
void ack_wait_free(struct ack_wait *w);

/* The diskqueue_options.synced callback for every queue of the daemon (arg = the ack_wait). */
void ack_wait_synced_cb(void *arg);

/* Starts collecting the records of one publish (discarding any earlier collection). */
void ack_wait_begin(struct ack_wait *w);
/* Called after each successful put on dq: notes it while a collection is open. NULL w: no-op. */
void ack_wait_note(struct ack_wait *w, struct diskqueue *dq);
/*
 * Called on the loop when the publish's records are all durable (err NULL), or when a queue failed
 * to write one of them (err: the queue's error text, valid during the call).
 */
typedef void (*ack_wait_fn)(void *arg, const char *err);

/*
 * Ends the collection. If a collected record is not durable yet, registers fn(arg, ...) to run on
 * the loop once they all are and returns true (the caller holds its OK); drop(arg) runs instead if
 * the daemon shuts down first. Returns false when there is nothing to wait for (or no memory to
 * wait with): acknowledge at once.
 */
bool ack_wait_end(struct ack_wait *w, ack_wait_fn fn, void (*drop)(void *arg), void *arg);

/* Ends the collection without waiting (the publish failed: no OK is sent). */
void ack_wait_abort(struct ack_wait *w);

/* dq is about to be closed (which syncs it) or deleted (its records are gone): no publish waits
   for it any longer. */
void ack_wait_forget(struct ack_wait *w, struct diskqueue *dq);

#endif
