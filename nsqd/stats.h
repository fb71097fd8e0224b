/*
 * stats: a plain snapshot of nsqd's state for GET /stats and the statsd pusher.
 *
 * The snapshot holds copies only: no pointer in it refers to a live topic, channel or client, so it
 * can be rendered, diffed (statsd) or handed to another thread after the loop has moved on. Every
 * string in it is malloc'd and owned by the snapshot; nsqd_stats_free() releases the whole tree.
 *
 * Who does what:
 *   - stats_collect.c (the daemon core) walks topics/channels/clients on the nsqd loop and fills a
 *     struct nsqd_stats; it applies the topic=/channel=/include_clients= filters of http-api.md §2
 *     and the upstream "one pub_counts entry" rule, and sorts topics and channels by name.
 *   - stats_render.c turns a snapshot into the JSON or text body of GET /stats (http-api.md §2.1,
 *     §2.2), byte for byte as upstream writes it, and reads this process's allocator figures for
 *     the memory section (nsqd_stats_memory_collect).
 *
 * Null versus empty (JSON):
 *   - topics_null → "topics":null (the topic= filter named a missing topic); else an array, [] when
 *     n_topics == 0.
 *   - channel clients_null → "clients":null (include_clients=false); else an array.
 *   - producers: "producers":null when n_producers == 0 (none, or include_clients=false).
 *   - e2e latency with n == 0 (no percentiles configured, or a topic without channels) →
 *     {"count":<count>,"percentiles":null}.
 */
#ifndef NSQD_STATS_H
#define NSQD_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nsq_quantile.h"

struct evbuffer;
struct nsqd;

/* One entry of a client's "pub_counts": messages this connection published to `topic`. */
struct nsqd_pub_count {
    char *topic; /* owned */
    uint64_t count;
};

/* A V2 connection (http-api.md §2.1 "Client"), keys in the same order as the JSON. */
struct nsqd_client_stats {
    char *client_id;      /* owned; IDENTIFY client_id, default remote IP */
    char *hostname;       /* owned; IDENTIFY hostname, default remote IP */
    char *version;        /* owned; "V2" */
    char *remote_address; /* owned; "ip:port" */
    int32_t state;        /* tcp-protocol.md §3.1 */
    int64_t ready_count;
    int64_t in_flight_count;
    uint64_t message_count;
    /* Topology experiment (topology.h): rendered only when `topology` (the experiment is on);
       the counts only when non-zero (upstream's omitempty). */
    bool topology;
    uint64_t zone_local_msg_count;
    uint64_t region_local_msg_count;
    uint64_t global_msg_count;
    char *topology_zone;   /* owned; "" when not sent */
    char *topology_region; /* owned; "" when not sent */
    uint64_t finish_count;
    uint64_t requeue_count;
    int64_t connect_ts; /* Unix seconds */
    int32_t sample_rate;
    bool deflate;
    bool snappy;
    char *user_agent; /* owned; "" when not sent */

    bool authed;             /* rendered only when true */
    char *auth_identity;     /* owned or NULL; rendered only when non-empty */
    char *auth_identity_url; /* owned or NULL; rendered only when non-empty */

    struct nsqd_pub_count *pub_counts; /* owned array; rendered only when n_pub_counts > 0 */
    size_t n_pub_counts;

    bool tls;
    char *tls_cipher_suite;        /* owned; "" without TLS */
    char *tls_version;             /* owned; "" without TLS */
    char *tls_negotiated_protocol; /* owned; "" usually */
    bool tls_negotiated_protocol_is_mutual;
};

struct nsqd_channel_stats {
    char *channel_name; /* owned */
    int64_t depth;      /* memory + disk (excludes in-flight and deferred) */
    int64_t backend_depth;
    int64_t in_flight_count;
    int64_t deferred_count;
    uint64_t message_count;
    /* Deliveries by the consumer's locality class (topology.h), each rendered when non-zero. */
    uint64_t zone_local_msg_count;
    uint64_t region_local_msg_count;
    uint64_t global_msg_count;
    uint64_t requeue_count;
    uint64_t timeout_count;
    /* Dead-lettering (docs/dead-letter.md): rendered only when dead_letter is set (a limit is in
       force or messages were moved), so /stats is upstream's byte for byte when the feature is
       off. max_attempts is the limit in force (0 = none). */
    bool dead_letter;
    int64_t max_attempts;
    uint64_t dead_letter_count;
    int64_t client_count;              /* always rendered */
    struct nsqd_client_stats *clients; /* owned array of n_clients */
    size_t n_clients;
    bool clients_null; /* include_clients=false → "clients":null */
    bool paused;
    struct nsq_quantile_result e2e; /* n == 0 → "percentiles":null */
    /* TTL and depth limits (topic_limits.h): rendered after the upstream keys, only when
       limits_shown (the topic's limits are configured or were used). */
    bool limits_shown;
    uint64_t expired_count;
    uint64_t dropped_count;
};

struct nsqd_topic_stats {
    char *topic_name;                    /* owned */
    struct nsqd_channel_stats *channels; /* owned array, sorted by name; [] when none */
    size_t n_channels;
    int64_t depth; /* memory + disk */
    int64_t backend_depth;
    uint64_t message_count;
    uint64_t message_bytes;
    bool paused;
    struct nsq_quantile_result e2e; /* merged from the channels; n == 0 without channels */
    /* As for channels; the counts are those of the topic's own queue. */
    bool limits_shown;
    int64_t ttl_ns;              /* 0 = none */
    int64_t max_depth;           /* 0 = unbounded */
    const char *overflow_policy; /* static string: "reject" / "drop_oldest" */
    uint64_t expired_count;
    uint64_t dropped_count;
};

/*
 * The "memory" section (Go runtime field names). Mapping from this process's allocator, filled by
 * nsqd_stats_memory_collect() from glibc's mallinfo2():
 *   heap_objects        0 (the allocator does not count live objects)
 *   heap_idle_bytes     fordblks: free bytes held by the allocator
 *   heap_in_use_bytes   uordblks + hblkhd: bytes in allocated chunks, incl. mmap'd ones
 *   heap_released_bytes keepcost: releasable top-of-heap bytes (what malloc_trim could return)
 *   gc_pause_usec_*     0 (no garbage collector)
 *   next_gc_bytes       0
 *   gc_total_runs       0
 */
struct nsqd_memory_stats {
    uint64_t heap_objects;
    uint64_t heap_idle_bytes;
    uint64_t heap_in_use_bytes;
    uint64_t heap_released_bytes;
    uint64_t gc_pause_usec_100;
    uint64_t gc_pause_usec_99;
    uint64_t gc_pause_usec_95;
    uint64_t next_gc_bytes;
    uint64_t gc_total_runs;
};

struct nsqd_stats {
    char *version;      /* owned; "1.3.0" */
    char *health;       /* owned; "OK" or "NOK - <err>" */
    int64_t start_time; /* Unix seconds (JSON start_time) */
    int64_t start_ns;   /* Unix nanoseconds of the start (text start_time / uptime) */
    int64_t now_ns;     /* Unix nanoseconds when the snapshot was taken (text uptime, connected) */

    struct nsqd_topic_stats *topics; /* owned array, sorted by name */
    size_t n_topics;
    bool topics_null; /* topic= filter named a topic that does not exist */

    bool has_memory; /* memory was collected (include_mem) */
    struct nsqd_memory_stats memory;

    struct nsqd_client_stats *producers; /* owned array: connections that published (pub_counts) */
    size_t n_producers;
};

/*
 * Collects a snapshot on the nsqd loop thread (implemented by the daemon core in stats_collect.c).
 * topic / channel: filters, NULL for all. include_clients=false leaves every channel's clients
 * null and producers empty. include_mem fills the memory section. Returns a snapshot the caller
 * frees with nsqd_stats_free(), or NULL on allocation failure.
 */
struct nsqd_stats *nsqd_stats_collect(struct nsqd *n, const char *topic, const char *channel,
                                      bool include_clients, bool include_mem);

/* Frees a snapshot allocated with calloc/malloc and everything it owns. NULL is a no-op. */
void nsqd_stats_free(struct nsqd_stats *s);
/* Frees what one element owns (not the element itself); for collectors building arrays. */
void nsqd_client_stats_clear(struct nsqd_client_stats *c);
void nsqd_channel_stats_clear(struct nsqd_channel_stats *c);
void nsqd_topic_stats_clear(struct nsqd_topic_stats *t);

/* Reads this process's allocator figures (mapping above). */
void nsqd_stats_memory_collect(struct nsqd_memory_stats *m);

/*
 * Renders GET /stats?format=json (http-api.md §2.1) into out. include_mem=false omits "memory"
 * (as does a snapshot without has_memory).
 */
void nsqd_stats_render_json(const struct nsqd_stats *s, bool include_mem, struct evbuffer *out);
/* Renders the text format of GET /stats (http-api.md §2.2) into out. */
void nsqd_stats_render_text(const struct nsqd_stats *s, bool include_mem, struct evbuffer *out);

#endif
