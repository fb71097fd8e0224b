/*
 * clusterinfo: what nsqadmin knows about a cluster, gathered on demand from the nsqlookupd and
 * nsqd HTTP APIs (http-api.md §4, §1-§2) and aggregated into the shapes of nsqadmin's JSON API
 * (http-api.md §5.2: Producer, TopicStats, ChannelStats, ClientStats, aggregate e2e latency).
 *
 * Every query fans out to all the nodes concerned at once through the evented HTTP client
 * (libcurl multi on the daemon's loop), so a slow or dead node costs at most one request timeout
 * and never blocks the loop. A query completes once every request has answered or failed; the
 * nodes that failed are reported as error texts next to what the others returned (a "partial
 * error"); when every node failed, or there was no node to ask, the query has failed as a whole.
 *
 * Memory: everything a query returns (producers, stats, strings) lives in the caller's
 * struct ci_arena and is released at once by ci_arena_free. Aggregates point at per-node objects
 * of the same arena; nothing is reference counted.
 *
 * Threads: a clusterinfo belongs to the thread running its event base.
 */
#ifndef NSQADMIN_CLUSTERINFO_H
#define NSQADMIN_CLUSTERINFO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct nsq_http_client;
struct nsq_json;

/* ---- arena ---- */

struct ci_arena; /* a bag of allocations released together */
struct ci_arena *ci_arena_new(void);
void ci_arena_free(struct ci_arena *a);
/* Zeroed memory owned by the arena; NULL when out of memory. */
void *ci_alloc(struct ci_arena *a, size_t n);
char *ci_strdup(struct ci_arena *a, const char *s); /* NULL s → "" */
char *ci_sprintf(struct ci_arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A growable array of pointers in an arena. `set` mirrors Go's nil slice: a vector that never
   received an element (and was not parsed from a JSON array) is encoded as null. */
struct ci_vec {
    void **v;
    size_t n, cap;
    bool set;
};
int ci_vec_push(struct ci_arena *a, struct ci_vec *vec, void *item);

/* ---- shapes ---- */

struct ci_percentile {
    double quantile, value, min, max, average, count;
};

/* E2eProcessingLatencyAggregate. Per-node entries carry "value"; aggregated ones do not. */
struct ci_latency {
    int64_t count;
    struct ci_percentile *p;
    size_t np;
    bool p_set;      /* false → "percentiles":null */
    bool aggregated; /* percentiles written without "value" */
    const char *topic, *channel, *host;
};

struct ci_client {
    const char *node, *remote_address, *version, *client_id, *hostname, *user_agent;
    int64_t connect_ts, connected, in_flight_count, ready_count, finish_count, requeue_count,
            message_count, sample_rate;
    bool deflate, snappy, authed, tls, tls_negotiated_protocol_is_mutual;
    const char *auth_identity, *auth_identity_url, *tls_cipher_suite, *tls_version,
            *tls_negotiated_protocol;
    const char *topology_region, *topology_zone; /* "" when nsqd reports none */
};

struct ci_channel {
    const char *node, *hostname, *topic_name, *channel_name;
    int64_t depth, memory_depth, backend_depth, in_flight_count, deferred_count, requeue_count,
            timeout_count, message_count, client_count;
    /* Deliveries by consumer locality (nsqd's topology experiment; 0 without it). */
    int64_t zone_local_msg_count, region_local_msg_count, global_msg_count;
    /* Dead-lettering (nsqd docs/dead-letter.md): present only when an nsqd reported it, so the
       JSON stays upstream's when no node has it on. */
    int64_t dead_letter_count;
    bool has_dead_letter;
    /* TTL and depth limits (nsqd docs/ttl-and-depth.md): the channel's expired and dropped
       messages, present only when an nsqd reported them. */
    int64_t expired_count, dropped_count;
    bool has_limits;
    struct ci_vec nodes;   /* struct ci_channel * */
    struct ci_vec clients; /* struct ci_client * */
    bool paused;
    struct ci_latency e2e;
};

struct ci_topic {
    const char *node, *hostname, *topic_name;
    int64_t depth, memory_depth, backend_depth, message_count;
    int64_t dead_letter_count; /* sum over its channels, rendered when has_dead_letter */
    bool has_dead_letter;
    /* TTL and depth limits (nsqd docs/ttl-and-depth.md), present only when an nsqd reported
       them: the topic's own queue's expired and dropped counts (summed over nodes), and its
       configuration (ttl in ns, 0 = none; max_depth 0 = unbounded; overflow_policy in the arena),
       which an aggregate carries only when every node reporting it agrees (limits_agree). */
    int64_t expired_count, dropped_count, ttl_ns, max_depth;
    const char *overflow_policy;
    bool has_limits, limits_agree;
    struct ci_vec nodes;    /* struct ci_topic * */
    struct ci_vec channels; /* struct ci_channel * */
    bool paused;
    struct ci_latency e2e;
};

struct ci_producer_topic {
    const char *topic;
    bool tombstoned;
};

struct ci_producer {
    struct ci_vec remote_addresses; /* char * */
    const char *remote_address, *hostname, *broadcast_address, *version;
    int tcp_port, http_port;
    struct ci_vec topics; /* struct ci_producer_topic *, sorted by topic */
    bool out_of_date;
    const char *http_addr; /* "<broadcast_address>:<http_port>" */
};

/* Aggregated stats of a set of nodes (upstream's GetNSQDStats). */
struct ci_stats {
    struct ci_vec topics;       /* per-node struct ci_topic *, in node then topic order */
    struct ci_vec channels;     /* aggregated struct ci_channel *, keyed as below, sorted by key */
    struct ci_vec channel_keys; /* char *: "<channel>" with a selected topic, else "<t>:<c>" */
};

/* ---- the service ---- */

/* What a query reports besides its result: error texts of the nodes that failed. */
struct ci_errors {
    struct ci_vec items; /* char * */
};
/* "a\nb" joined error list in the arena (Go's ErrList.Error()). */
const char *ci_errors_join(struct ci_arena *a, const struct ci_errors *e);

struct clusterinfo;

/* Addresses are read through these pointers at every query, so an option change (PUT
   /config/nsqlookupd_http_addresses) applies to the next query. The lists stay the caller's. */
struct clusterinfo_sources {
    char ***lookupd; /* "host:port" HTTP addresses */
    size_t *n_lookupd;
    char ***nsqd;
    size_t *n_nsqd;
};

/* http is the daemon's client (kept by the caller, outliving the clusterinfo). */
struct clusterinfo *clusterinfo_new(struct event_base *base, struct nsq_http_client *http,
                                    const struct clusterinfo_sources *src);
/* Marks the service as shutting down: requests that complete (or are canceled) from now on no
   longer call their owners back nor touch their arenas, so the owners may free the arenas of
   queries still in flight. Call before freeing those arenas and the HTTP client. */
void clusterinfo_close(struct clusterinfo *ci);
void clusterinfo_free(struct clusterinfo *ci);
struct event_base *clusterinfo_base(struct clusterinfo *ci);
struct nsq_http_client *clusterinfo_http(struct clusterinfo *ci);
size_t clusterinfo_lookupd_count(struct clusterinfo *ci);
const char *clusterinfo_lookupd(struct clusterinfo *ci, size_t i);
size_t clusterinfo_nsqd_count(struct clusterinfo *ci);
const char *clusterinfo_nsqd(struct clusterinfo *ci, size_t i);

/* ---- fan-out of raw requests ---- */

struct ci_reply {
    const char *url;
    long status;      /* 0 on transport failure */
    const char *body; /* NUL-terminated, in the arena */
    size_t body_len;
    const char *error; /* why the request failed (transport, or non-200): NULL when it did not */
};
/* Called once all requests have completed, always from the loop (never from inside
   ci_fanout). replies[i] answers urls[i]. */
typedef void (*ci_fanout_fn)(struct ci_reply *replies, size_t n, void *arg);
/* Sends method to every url at once (body may be NULL). Returns 0, or -ENOMEM (done not called). */
int ci_fanout(struct clusterinfo *ci, struct ci_arena *a, const char *method, char **urls, size_t n,
              const char *body, size_t body_len, ci_fanout_fn done, void *arg);

/* ---- queries ---- */

/* Result of a query: `failed` means no node answered (the caller replies 502
   "UPSTREAM_ERROR: <fail_text>"); otherwise errs lists the nodes that failed. */
struct ci_result {
    bool failed;
    const char *fail_text;
    struct ci_errors errs;
};

typedef void (*ci_producers_fn)(struct ci_vec *producers, struct ci_result *res, void *arg);
/* All nsqd nodes: lookupd /nodes (deduplicated, out_of_date set, sorted by hostname) or the
   --nsqd-http-address nodes' /info and /stats. */
int ci_get_producers(struct clusterinfo *ci, struct ci_arena *a, ci_producers_fn done, void *arg);
/* Producers of one topic: lookupd /lookup, or the nsqd nodes whose /stats lists it. With
   lookupd_only, ask lookupds only (no lookupd → failed, "failed to query any nsqlookupd: "). */
int ci_get_topic_producers(struct clusterinfo *ci, struct ci_arena *a, const char *topic,
                           bool lookupd_only, ci_producers_fn done, void *arg);

typedef void (*ci_stats_fn)(struct ci_stats *stats, struct ci_result *res, void *arg);
/* /stats?format=json of every producer, optionally restricted to topic (and channel), aggregated
   as upstream: zero producers is a failure ("failed to query any nsqd: "). */
int ci_get_stats(struct clusterinfo *ci, struct ci_arena *a, struct ci_vec *producers,
                 const char *topic, const char *channel, bool include_clients, ci_stats_fn done,
                 void *arg);

typedef void (*ci_strings_fn)(struct ci_vec *strings, struct ci_result *res, void *arg);
/* Sorted, deduplicated topic names of the cluster (lookupd /topics or nsqd /stats). */
int ci_get_topics(struct clusterinfo *ci, struct ci_arena *a, ci_strings_fn done, void *arg);

/* ---- aggregation (upstream's TopicStats.Add / ChannelStats.Add) ---- */

/* A fresh aggregate for topic_name that the per-node topics are added to. */
struct ci_topic *ci_topic_aggregate_new(struct ci_arena *a, const char *topic_name);
int ci_topic_add(struct ci_arena *a, struct ci_topic *t, struct ci_topic *node);

/* ---- JSON ---- */

/* Writes one element of a ci_vec. */
typedef void (*ci_json_item_fn)(struct nsq_json *j, const void *item);
/* Writes vec as a JSON array of write_item(element), or null when the vector is unset (a Go nil
   slice). */
void ci_json_vec(struct nsq_json *j, const struct ci_vec *vec, ci_json_item_fn write_item);
/* An item writer for vectors of C strings. */
void ci_json_string_item(struct nsq_json *j, const void *s);

void ci_json_topic(struct nsq_json *j, const struct ci_topic *t);
void ci_json_channel(struct nsq_json *j, const struct ci_channel *c);
void ci_json_client(struct nsq_json *j, const struct ci_client *c);
void ci_json_producer(struct nsq_json *j, const struct ci_producer *p);
/* Members of a topic/channel object without the braces (for answers that add "message"). */
void ci_json_topic_members(struct nsq_json *j, const struct ci_topic *t);
void ci_json_channel_members(struct nsq_json *j, const struct ci_channel *c);

/* Percent-encodes s for a query string value (Go's url.QueryEscape), in the arena. */
char *ci_query_escape(struct ci_arena *a, const char *s);

#endif
