/*
 * options: every nsqd flag of flags.md §2 as one struct, filled by an nsq_options table (command
 * line > config file > default). Field names follow the flags ('-' -> '_'); durations are int64
 * nanoseconds. The struct is owned by main() and read on the loop thread; /config PUT changes
 * log_level and nsqlookupd_tcp_addresses at runtime (on the loop thread).
 */
#ifndef NSQD_OPTIONS_H
#define NSQD_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nsq_log.h"
#include "nsq_options.h"

/* --tls-required values as /config/tls_required reports them. */
enum nsqd_tls_required {
    NSQD_TLS_NOT_REQUIRED = 0,
    NSQD_TLS_REQUIRED_EXCEPT_HTTP = 1, /* "tcp-https" */
    NSQD_TLS_REQUIRED = 2,
};

/* Fixed internals (flags.md §2, "no flag"). */
#define NSQD_CLIENT_TIMEOUT_NS        (60LL * 1000000000LL) /* default heartbeat = half of it */
#define NSQD_DEFAULT_OUTPUT_BUF_SIZE  16384
#define NSQD_DEFAULT_DEFLATE_LEVEL    6
#define NSQD_TLS_HANDSHAKE_TIMEOUT_NS (5LL * 1000000000LL)

/* Dead-lettering (docs/dead-letter.md): attempts is a 16-bit wire field, and a suffix must leave
   room for a topic name in the 64 characters of a name. */
#define NSQD_MAX_ATTEMPTS_LIMIT     65535
#define NSQD_DEAD_LETTER_SUFFIX_MAX 32

struct nsqd_options {
    enum nsq_log_level log_level;
    char *log_prefix;
    bool verbose;
    int64_t id; /* --node-id, cfg "id" */
    bool worker_id;

    char *tcp_address;
    char *http_address;
    char *https_address;
    char *broadcast_address;
    int broadcast_tcp_port;
    int broadcast_http_port;
    struct nsq_strlist nsqlookupd_tcp_addresses;
    struct nsq_strlist auth_http_addresses;
    char *auth_http_request_method; /* "get" or "post" */
    int64_t http_client_connect_timeout;
    int64_t http_client_request_timeout;
    char *topology_region; /* "" = not set (topology.h) */
    char *topology_zone;

    char *data_path;
    int64_t mem_queue_size;
    int64_t max_bytes_per_file;
    int64_t sync_every;
    int64_t sync_timeout;

    int queue_scan_worker_pool_max;
    int queue_scan_selection_count;

    int64_t msg_timeout;
    int64_t max_msg_timeout;
    int64_t max_msg_size;
    int64_t max_req_timeout;
    int64_t max_defer_timeout; /* 0 = max_req_timeout (see nsqd_max_defer_timeout) */
    int64_t msg_ttl;           /* default topic TTL (topic_limits.h), 0 = none */
    int64_t max_body_size;
    int64_t max_heartbeat_interval;
    int64_t max_rdy_count;
    int64_t max_output_buffer_size;
    int64_t max_output_buffer_timeout;
    int64_t min_output_buffer_timeout;
    int64_t output_buffer_timeout;
    int max_channel_consumers;
    int64_t max_attempts;     /* 0 = no dead-lettering (docs/dead-letter.md) */
    char *dead_letter_suffix; /* "<topic><suffix>" receives dead-lettered messages */

    char *statsd_address;
    int64_t statsd_interval;
    bool statsd_mem_stats;
    char *statsd_prefix;
    int statsd_udp_packet_size;
    bool statsd_exclude_ephemeral;

    struct nsq_floatlist e2e_processing_latency_percentiles;
    int64_t e2e_processing_latency_window_time;

    char *tls_cert;
    char *tls_key;
    char *tls_client_auth_policy;
    char *tls_root_ca_file;
    int tls_required;    /* enum nsqd_tls_required */
    int tls_min_version; /* TLS1_VERSION .. TLS1_3_VERSION */
    bool deflate;
    int max_deflate_level;
    bool snappy;
    bool http_peek; /* GET /channel/peek (peek.h) */

    struct nsq_strlist enable_experiment; /* experimental features by name (topology.h) */
};

/* Largest DPUB / pub?defer= deferral: --max-defer-timeout, else --max-req-timeout. */
static inline int64_t nsqd_max_defer_timeout(const struct nsqd_options *o)
{
    return o->max_defer_timeout > 0 ? o->max_defer_timeout : o->max_req_timeout;
}

/* The option table bound to `o` (static storage; one instance per process). */
const struct nsq_opt *nsqd_options_table(struct nsqd_options *o, size_t *n);

/* Parses argv into o. Returns 0, 1 (exit 0 requested: --help/--version) or -1 (error printed,
   exit 2). */
int nsqd_options_parse(struct nsqd_options *o, int argc, char **argv);
void nsqd_options_free(struct nsqd_options *o);

/* True when suffix can name dead-letter topics (non-empty, name characters, no '#'). */
bool nsqd_dead_letter_suffix_valid(const char *suffix);

/* Startup validation of flags.md §2 and derived settings (tls-required implied by a client auth
   policy). Returns 0 or -EINVAL with err = upstream's message (without the "failed to instantiate
   nsqd - " prefix). */
int nsqd_options_validate(struct nsqd_options *o, char *err, size_t errlen);

#endif
