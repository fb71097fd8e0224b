/*
 * journal: the durable record of a channel's in-flight and deferred messages (docs/durability.md).
 *
 * Upstream keeps in-flight and deferred messages in memory only: a crash loses them. With the
 * journal on (--sync-every=1 and --mem-queue-size=0, see journal_enabled), each durable channel
 * appends to "<topic>:<channel>.inflight.dat" in the data path one record per state change of a
 * message outside the diskqueue: delivered (in flight), deferred (with its due time), done
 * (finished, or handed back to the diskqueue). Replaying the file at startup yields the messages
 * whose last record is "delivered" or "deferred"; they go back to the channel.
 *
 * Threads: one journal_writer per daemon owns a background thread that writes (and fsyncs) every
 * record; the loop thread never touches the disk after journal_open. Each append gets a sequence
 * number; journal_when_done runs a callback on the loop once every record up to a sequence number
 * is on disk (the writer wakes the loop with event_active), which is how a message frame or a DPUB
 * OK is held until its record is durable. A record that hands a message back to the channel's
 * diskqueue is written only after the diskqueue has written what it was given before it.
 *
 * Ownership: a journal belongs to its channel (loop thread) until journal_close, after which the
 * writer frees it. Fields are annotated with the thread that owns them.
 */
#ifndef NSQD_JOURNAL_H
#define NSQD_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct diskqueue;
struct nsqd_message;
struct nsqd_options;
struct journal;
struct journal_writer;

/* File name suffix after "<topic>:<channel>". */
#define JOURNAL_SUFFIX ".inflight.dat"
/* A journal is compacted once it holds this many bytes more than its live content (and at least
   as many bytes again as the live content). */
#define JOURNAL_COMPACT_MIN_BYTES (4 * 1024 * 1024)

/* The rule: journaling is on exactly when every publish reaches the disk at once (sync-every 1,
   no memory queue), the only configuration where the rest of the data is crash-safe too. */
bool journal_enabled(const struct nsqd_options *o);

/* Starts the writer thread; completions are delivered on base. NULL on failure. */
struct journal_writer *journal_writer_new(struct event_base *base);
/* Writes what is queued, stops and joins the thread, drops pending callbacks. Every journal must
   have been closed. NULL is a no-op. */
void journal_writer_free(struct journal_writer *w);

/* Called with each message still live in the file (ownership passes to the callee): due_unix_ns
   is its due time for a deferred message, 0 for one that was in flight. */
typedef void (*journal_replay_fn)(void *arg, struct nsqd_message *m, int64_t due_unix_ns);

/* Opens (creating lazily) the journal of queue `name` ("<topic>:<channel>") and replays an existing
   file through fn (synchronously, on the calling thread, before returning). dq is the channel's
   diskqueue (flushed by the writer before a record that hands a message to it). The caller must
   then call journal_replace with the live state. NULL on out of memory or an unreadable file. */
struct journal *journal_open(struct journal_writer *w, const char *data_path, const char *name,
                             struct diskqueue *dq, journal_replay_fn fn, void *arg);

/* Appends records (loop thread). Each returns the record's sequence number, 0 on out of memory.
   journal_deliver: m was delivered (attempts as sent). journal_defer: m waits until due_mono_ns
   (nsq_mono_ns clock). journal_done: the message left the channel's memory (FIN), or, with
   to_backend, was handed to the diskqueue. */
uint64_t journal_deliver(struct journal *j, const struct nsqd_message *m);
uint64_t journal_defer(struct journal *j, const struct nsqd_message *m, int64_t due_mono_ns);
uint64_t journal_done(struct journal *j, const char *id, bool to_backend);

/* Compaction: true when the file has grown enough that rewriting its live content pays. */
bool journal_wants_compact(const struct journal *j);
/* Snapshot building (loop thread): journal_snapshot_begin, then journal_snapshot_add for every
   live message (due_mono_ns 0 = in flight), then journal_snapshot_commit, which replaces the file
   atomically (temporary file, fsync, rename) through the writer. */
void journal_snapshot_begin(struct journal *j);
void journal_snapshot_add(struct journal *j, const struct nsqd_message *m, int64_t due_mono_ns);
uint64_t journal_snapshot_commit(struct journal *j);

/* Blocks until every record of j queued so far is on disk (rare: before a synchronous diskqueue
   empty/close/delete, which must not overlap the writer's diskqueue flush). */
void journal_quiesce(struct journal *j);
/* Ends j: the writer closes the file and, with remove, deletes it, then frees j. Callbacks
   registered with key j are dropped (see journal_when_done). */
void journal_close(struct journal *j, bool remove);

/* Sequence number of the last record queued on any journal of w (0 = none yet). */
uint64_t journal_last_seq(const struct journal_writer *w);

/* Runs fn(arg) on the loop once every record up to seq is on disk. key identifies the owner
   (a journal, or NULL): journal_close(key) drops its callbacks without running them, after which
   the caller still owns arg. Returns 0 or -ENOMEM. */
typedef void (*journal_done_fn)(void *arg);
int journal_when_done(struct journal_writer *w, uint64_t seq, const void *key, journal_done_fn fn,
                      void *arg, void (*drop)(void *arg));

#endif
