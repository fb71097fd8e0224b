/*
 * nsqd: the daemon object. Owns the event loop, the listeners, the topic map, the metadata file
 * (nsqd.dat), the data-path lock and the shutdown sequence.
 *
 * Architecture
 * ------------
 * One libevent loop thread owns every topic, channel, client and the HTTP server. Nothing on the
 * message path takes a lock: a publish, a delivery, a FIN are plain function calls on that thread.
 *
 *  - Disk I/O runs on the diskqueue service threads. A queue's `ready` callback (called on an
 *    I/O thread) only wakes the owning topic/channel through event_active(); the loop then pops
 *    the records (diskqueue_pop never blocks). evthread_use_pthreads() makes that cross-thread
 *    wakeup safe.
 *  - Outbound HTTP (lookupd channel queries, auth servers) goes through nsq_http_client, i.e. curl
 *    multi on the same loop. A connection waiting for its auth server is paused (no reading) and
 *    resumes with the command that needed the answer.
 *  - A client connection is one bufferevent. Frames are appended to its output buffer and
 *    libevent writes when the socket is writable, so all frames produced during one loop
 *    iteration leave in one write (no syscall per message). The bufferevent is replaceable: TLS
 *    (bufferevent_openssl) and then snappy/deflate (nsq_codec filter) are layered on after the
 *    IDENTIFY reply. output_buffer_size/timeout are validated and reported as upstream does, but
 *    data is flushed every loop iteration: lower latency, and under load the same batching (a
 *    busy iteration produces many frames per write). This is deliberate. A client that does not
 *    read its replies stops being read once 4 MiB of output wait (back-pressure).
 *  - Publish path: PUB/MPUB/HTTP -> topic_publish. A started, unpaused topic with channels and an
 *    empty backlog hands the message straight to each channel (no intermediate queue).
 *    channel_put delivers it at once to a ready client (round-robin over the channel's ready
 *    list), else keeps it in the channel's memory ring (capacity mem-queue-size), else appends it
 *    to the channel's diskqueue. A topic that cannot distribute (no channels, paused, not started)
 *    keeps messages in its own ring / diskqueue; its pump drains them in bounded batches,
 *    re-scheduling itself through event_active so the loop never stalls.
 *  - Delivery path: whenever a client becomes ready (RDY, FIN, REQ, timeout) the channel's pump
 *    event is activated; it pulls from the memory ring first, then the diskqueue, in bounded
 *    batches.
 *  - Messages: one allocation per message copy (header + body, struct nsqd_message). The first
 *    channel gets the topic's object, every further channel a copy (per-channel attempts and
 *    in-flight state; no reference counts on the hot path). A memory ring stores no objects: it
 *    packs the fields a queued message needs into byte chunks (msg_ring.h), about a third of the
 *    memory for small messages. After large drains the freed heap is
 *    handed back to the OS (malloc_trim from a 2 s housekeeping timer).
 *  - In flight: per channel a hash by the 16-byte ID and a deadline index (in_flight.h): one FIFO
 *    ring per msg_timeout value, which keeps deliveries sorted for free and makes FIN/TOUCH O(1),
 *    plus a heap for out-of-order deadlines; deferred messages sit in a min-heap by due time. One
 *    timer per channel is armed for the earliest deadline and re-armed only when that earliest
 *    moves earlier (or after firing), which keeps 10,000 channels and millions of in-flight
 *    messages cheap. This replaces upstream's probabilistic queue scan (the --queue-scan-* flags
 *    are accepted and have no effect): timeouts fire on time instead of 0-100 ms late.
 *  - Freed message blocks are reused (a bounded per-size cache), so a steady publish/consume flow
 *    does no malloc/free per message.
 *  - Durable in-flight and deferred messages (journal.h, docs/durability.md): with --sync-every=1
 *    and --mem-queue-size=0 each channel journals deliveries, deferrals and their completion
 *    through a background writer; a message frame (and the OK of a deferred publish) is held
 *    until its record is on disk. The journal is replayed at startup and removed on a clean
 *    shutdown.
 *  - With --sync-every=1 a publish that put records on a diskqueue is acknowledged only once they
 *    are synced (ack_wait.h); the loop is woken by the queues' I/O threads, never waits on disk.
 *  - A client that disconnects with messages in flight stays allocated (closed, no socket) until
 *    the last of its messages is finished or timed out, so every in-flight message can point at
 *    its owner without lookups.
 */
#ifndef NSQD_NSQD_H
#define NSQD_NSQD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "options.h"

struct event_base;
struct event;
struct evconnlistener;
struct evhttp;
struct diskqueue_service;
struct journal_writer;
struct ack_wait;
struct nsq_http_client;
struct topic;
struct client;
struct name_map;
struct ssl_ctx_st;

/* nsqd.dat inside the data path. */
#define NSQD_METADATA_FILE "nsqd.dat"
#define NSQD_METADATA_FILE_MODE 0600

/* Upper bound of a hostname / address string kept in struct nsqd. */
#define NSQD_ADDR_LEN 256

struct nsqd {
    struct nsqd_options *opts;           /* owned by main(); read-only except /config PUT */
    struct event_base *base;             /* the one loop */
    struct diskqueue_service *dqs;       /* I/O threads for every diskqueue */
    struct journal_writer *journal;      /* in-flight/deferred journal writer, NULL when off */
    struct ack_wait *ack_wait;           /* publishes held until synced, NULL when off */
    struct nsq_http_client *http_client; /* outbound HTTP (may be NULL) */
    struct name_map *topics;             /* name -> struct topic * */

    char hostname[NSQD_ADDR_LEN];
    char data_path[4096]; /* resolved --data-path ("." when empty) */
    int lock_fd;          /* flock'ed data directory, -1 when not held */

    int tcp_port; /* real listen ports: -1 unix socket, 0 disabled */
    int http_port;
    int https_port;
    int64_t start_time;           /* Unix seconds */
    char tcp_name[NSQD_ADDR_LEN]; /* bound listener addresses as logged ("ip:port" or path) */
    char http_name[NSQD_ADDR_LEN];

    struct evconnlistener *tcp_listener;
    struct evhttp *http;
    struct nsqd_http *http_api;
    struct evhttp *https; /* only with --tls-cert and --tls-key */
    struct nsqd_http *https_api;
    char https_name[NSQD_ADDR_LEN];
    struct ssl_ctx_st *tls_ctx; /* server TLS context (SSL_CTX), NULL without cert+key */

    struct client *clients; /* every live connection (doubly linked via client->all_next) */
    size_t client_count;
    uint64_t next_client_id;

    struct nsqd_lookup *lookup; /* lookupd peers, NULL when not built in */
    struct nsqd_statsd *statsd;

    char health_err[256]; /* "" = OK; else last disk write error text */
    bool exiting;
    bool loading; /* true while nsqd.dat is being loaded */
    int exit_code;

    struct event *trim_ev; /* memory housekeeping timer */
    size_t trim_peak;      /* message bytes at the last peak */
    struct event *sigint_ev;
    struct event *sigterm_ev;
};

/* Creates the daemon from parsed options (not taking ownership of opts): validates them, takes the
   data-path lock, opens the listeners and loads nsqd.dat. On failure returns NULL and writes the
   message to log as "failed to instantiate nsqd - <err>" (caller exits 1). */
struct nsqd *nsqd_new(struct nsqd_options *opts, char *err, size_t errlen);
/* Runs the loop until SIGINT/SIGTERM (or a fatal runtime error), then performs the clean shutdown.
   Returns the exit status. */
int nsqd_main(struct nsqd *n);
void nsqd_free(struct nsqd *n);

/* Topic lookup/creation. nsqd_get_topic creates a missing topic with every runtime side effect
   (lookupd notification, metadata rewrite, channel pre-creation from lookupd). Returns NULL only
   if the daemon is exiting. */
struct topic *nsqd_get_topic(struct nsqd *n, const char *name);
struct topic *nsqd_find_topic(struct nsqd *n, const char *name);
/* Deletes a topic (behaviour.md §8). Returns 0 or -ENOENT. */
int nsqd_delete_topic(struct nsqd *n, const char *name);

/* Calls fn for every topic (order unspecified). fn must not create or delete topics. */
void nsqd_foreach_topic(struct nsqd *n, void (*fn)(struct topic *t, void *arg), void *arg);
/* Every registration lookupd must know: (topic, NULL) for a topic without channels, (topic,
   channel) for every channel, ephemeral included. */
void nsqd_foreach_registration(struct nsqd *n,
                               void (*fn)(const char *topic, const char *channel, void *arg),
                               void *arg);

/* Rewrites nsqd.dat (storage.md §5). Returns 0 or -errno (logged by the caller). No-op while
   loading. */
int nsqd_persist_metadata(struct nsqd *n);

/* Called on topic/channel creation and deletion (channel NULL for a topic): notifies lookupd
   (REGISTER / UNREGISTER), then rewrites nsqd.dat unless the object is ephemeral. Call after the
   object entered / left its map. Does nothing while nsqd.dat is being loaded. */
void nsqd_notify(struct nsqd *n, const char *topic, const char *channel, bool ephemeral,
                 bool registered);
/* The lookupd half of nsqd_notify alone (used while a whole topic is being deleted). */
void nsqd_notify_lookup(struct nsqd *n, const char *topic, const char *channel, bool registered);

/* Records the result of a disk write: err NULL = healthy. */
void nsqd_set_health(struct nsqd *n, const char *err);
bool nsqd_is_healthy(const struct nsqd *n);
/* "OK" or "NOK - <err>" into buf. */
void nsqd_health_string(const struct nsqd *n, char *buf, size_t len);

/* Accessors for the services (lookup, statsd). */
static inline struct event_base *nsqd_base(struct nsqd *n)
{
    return n->base;
}
static inline const struct nsqd_options *nsqd_opts(const struct nsqd *n)
{
    return n->opts;
}
static inline const char *nsqd_hostname(const struct nsqd *n)
{
    return n->hostname;
}
/* --broadcast-address (defaults to the hostname). */
const char *nsqd_broadcast_address(const struct nsqd *n);
/* Ports registered with lookupd: --broadcast-*-port, else the real listen ports. */
int nsqd_broadcast_tcp_port(const struct nsqd *n);
int nsqd_broadcast_http_port(const struct nsqd *n);

/* Starts the clean shutdown from inside the loop (signal handler, fatal listener error). */
void nsqd_exit(struct nsqd *n, int code);

#endif
