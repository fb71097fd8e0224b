/*
 * diskqueue: a FIFO of byte records persisted in segment files, byte-compatible with the reference
 * nsqd's data directory (spec/storage.md §1-§4).
 *
 * Threading: the owner is one thread (an event loop) calling put/pop/depth at high rates. Those
 * calls never touch the disk: put copies the record into a pending write buffer, pop takes a record
 * from a read-ahead list. All file I/O (open, write, read, fsync, rename, unlink) runs on the
 * threads of a shared diskqueue_service, which writes pending records in batches, refills the
 * read-ahead list and calls `ready` when it goes from empty to non-empty. Only diskqueue_open
 * (reads the metadata file) and the rare synchronous empty/close/delete (they wait for an I/O
 * thread to do the work) block the caller.
 *
 * Memory is bounded: pending writes by DISKQUEUE_MAX_PENDING_BYTES (put then waits for the disk,
 * see diskqueue_putv), read-ahead by DISKQUEUE_READ_AHEAD_BYTES / DISKQUEUE_READ_AHEAD_RECORDS.
 *
 * Durability: put returns once the record is in memory; it reaches the file on the next I/O pass
 * and is durable after the next sync (sync-every / sync-timeout / roll / close, storage.md §3.2).
 * A write error is reported by the following puts (sticky error) and by diskqueue_health. An owner
 * that must know when a record is durable compares diskqueue_put_seq (taken after the put) with
 * diskqueue_synced_seq, and may be told through the `synced` callback when the latter advances.
 *
 * depth = records accepted by put (plus the depth found on disk at open) minus records popped;
 * records in the pending buffer and in the read-ahead list are counted.
 */
#ifndef DISKQUEUE_H
#define DISKQUEUE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "diskqueue_service.h"

struct diskqueue;

/* Put waits once this many bytes are accepted but not yet written. The I/O thread writes one batch
   while the next fills, so this only has to cover a batch's write (and an fsync): a larger bound
   adds resident memory for every queue that overflows to disk without adding throughput. */
#define DISKQUEUE_MAX_PENDING_BYTES (16 * 1024 * 1024)
/* The I/O thread reads ahead at most this much (at least one record, whatever its size). Large
   enough that a consumer popping at memory speed does not drain it while the I/O thread is busy
   with an fsync (a sync costs a few ms; 16K records of 200 bytes last ~10 ms at 1.5M/s). */
#define DISKQUEUE_READ_AHEAD_BYTES   (8 * 1024 * 1024)
#define DISKQUEUE_READ_AHEAD_RECORDS 16384
/* Retry interval for writes after a write error. */
#define DISKQUEUE_WRITE_RETRY_NS (1000LL * 1000 * 1000)

struct diskqueue_options {
    const char *name;      /* "<topic>" or "<topic>:<channel>" */
    const char *data_path; /* directory; "" or NULL = current directory */
    int64_t max_bytes_per_file;
    int32_t min_msg_size; /* 26 */
    int32_t max_msg_size; /* max-msg-size + 26 */
    int64_t sync_every;
    int64_t sync_timeout_ns;
    /* Optional (NULL = none): called from an I/O thread each time diskqueue_synced_seq advances,
       and after each failed write (diskqueue_health then reports it). Like `ready`, it must only
       wake the owner's loop. */
    void (*synced)(void *arg);
    void *synced_arg;
};

/*
 * Called from an I/O thread when the queue goes from "nothing to pop" to "records ready". The owner
 * must only wake its own loop (e.g. event_active) from here. The first call may come before
 * diskqueue_open has returned (the queue starts reading existing data at once); none comes after
 * diskqueue_close/diskqueue_delete has returned. After a call, pop until it returns 0.
 */
typedef void (*diskqueue_ready_fn)(void *arg);

/*
 * Opens (or creates, lazily) the queue described by `o` (strings are copied). Reads the metadata
 * file; a missing or unparsable one is not an error (storage.md §3.1). Returns NULL on bad options
 * or out of memory. Release with diskqueue_close or diskqueue_delete.
 *
 * Crash recovery: records written after the last metadata sync (segment longer than writePos, or
 * segments and no metadata file at all) are read like the others and counted in depth from the
 * start; to count them, open reads their length fields (only after a crash).
 */
struct diskqueue *diskqueue_open(struct diskqueue_service *s, const struct diskqueue_options *o,
                                 diskqueue_ready_fn ready, void *arg);

/*
 * Appends one record (the iovecs concatenated = the payload). Never blocks on disk I/O: the data is
 * copied to the queue's pending buffer and written by the service. Returns 0, -EINVAL (size out of
 * range) or the sticky write error (-errno) while the disk is failing (the record is then refused).
 * If DISKQUEUE_MAX_PENDING_BYTES are already waiting to be written, put waits until the I/O thread
 * has written a batch: back-pressure on a disk that cannot keep up, instead of unbounded memory.
 */
int diskqueue_putv(struct diskqueue *dq, const struct iovec *iov, int iovcnt);
int diskqueue_put(struct diskqueue *dq, const void *data, size_t len);

/* Non-blocking read of the next record: returns 1 and a malloc'd payload (caller frees) or 0. */
int diskqueue_pop(struct diskqueue *dq, uint8_t **data, size_t *len);

/*
 * Zero-copy form of diskqueue_pop: returns 1 and points *data at the next record's payload inside
 * the queue's read-ahead buffer (no allocation, no copy), or 0. The record is consumed exactly as
 * by diskqueue_pop. The bytes stay valid and unchanged until the next diskqueue_pop_view or
 * diskqueue_release_view on this queue, or its close/delete (whichever comes first); the caller
 * must not free or modify them. Only one view is outstanding at a time: each call releases the
 * previous one. diskqueue_pop may be mixed with it and does not release the view.
 */
int diskqueue_pop_view(struct diskqueue *dq, const uint8_t **data, size_t *len);
/* Releases the view of the last diskqueue_pop_view (no-op if none). */
void diskqueue_release_view(struct diskqueue *dq);

int64_t diskqueue_depth(struct diskqueue *dq);

/*
 * Called by diskqueue_peek for each record, in pop order, with the queue's lock held: copy what
 * is needed and return quickly; never call into the queue. Return 0 to go on, non-zero to stop.
 */
typedef int (*diskqueue_peek_fn)(const uint8_t *data, size_t len, void *arg);

/*
 * Non-destructive, non-blocking read of the next records: calls fn for up to `max` records in the
 * order pop would return them, without moving the consumer position, the depth or the metadata
 * and without any file I/O. It sees the read-ahead list, then (only when the reader has caught up
 * with every record written and no write batch is in flight, so that the order is certain) the
 * records accepted by put but not yet written. Records written but not yet read ahead (the reader
 * is behind, or the read-ahead byte bound was reached) are not seen: the result is then a prefix
 * of the queue, shorter than min(max, depth). Returns the number of records passed to fn
 * (including the one that stopped it).
 */
size_t diskqueue_peek(struct diskqueue *dq, size_t max, diskqueue_peek_fn fn, void *arg);

/*
 * Completion sequence numbers. diskqueue_put_seq (owner thread) is the number of records accepted
 * by put since open. diskqueue_synced_seq (any thread) is the number of those that are durable: the
 * I/O side wrote them and a later fsync of their segment succeeded (or an empty dropped them, after
 * which there is nothing left to wait for). Record k (1-based, in put order) is durable once
 * synced_seq >= k. How soon that happens is the sync policy's (sync_every / sync_timeout_ns).
 */
uint64_t diskqueue_put_seq(struct diskqueue *dq);
uint64_t diskqueue_synced_seq(struct diskqueue *dq);

/*
 * Synchronous, for tests and tools: one I/O pass (writes everything pending, refills the read-ahead
 * list, deletes consumed segments, syncs). Returns 0 or the write error. After it, pop returns
 * every record readable so far unless the read-ahead bound was reached (then pop and flush again).
 */
int diskqueue_flush(struct diskqueue *dq);

/*
 * Synchronous: drops pending and read-ahead records, deletes the segments and the metadata file
 * (storage.md §3.3), clears a write error. Returns 0 or the first -errno met.
 */
int diskqueue_empty(struct diskqueue *dq);

/*
 * Synchronous: writes everything pending, fsyncs, writes the metadata file, closes and frees dq.
 * Returns 0 or -errno (dq is freed in every case). NULL is a no-op.
 */
int diskqueue_close(struct diskqueue *dq);

/* Synchronous: empty (removes every segment and the metadata file, not .bad files), then frees. */
int diskqueue_delete(struct diskqueue *dq);

/* 0 if the last write succeeded, else copies the error text ("<errno text>") and returns -1. */
int diskqueue_health(struct diskqueue *dq, char *buf, size_t len);

#endif
