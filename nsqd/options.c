/*
 * options: the nsqd option table (flags.md §2) and startup validation.
 */
#include "options.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <openssl/ssl.h>

#include "nsq_guid.h"
#include "nsq_log.h"
#include "topology.h"
#include "nsq_names.h"

static int render_int(const void *target, struct evbuffer *out)
{
    return evbuffer_add_printf(out, "%d", *(const int *)target) < 0 ? -ENOMEM : 0;
}

/* --tls-required: true/false/tcp-https (bool-like: "--tls-required" alone is true). */
static int parse_tls_required(const char *text, void *target)
{
    int *v = target;
    if (strcmp(text, "tcp-https") == 0) {
        *v = NSQD_TLS_REQUIRED_EXCEPT_HTTP;
        return 0;
    }
    bool b;
    if (nsq_parse_bool(text, &b) != 0)
        return -EINVAL;
    *v = b ? NSQD_TLS_REQUIRED : NSQD_TLS_NOT_REQUIRED;
    return 0;
}

/* --tls-min-version: tls1.0..tls1.3; empty keeps the default. */
static int parse_tls_min_version(const char *text, void *target)
{
    static const struct {
        const char *name;
        int code;
    } versions[] = {
            {"tls1.0", TLS1_VERSION},
            {"tls1.1", TLS1_1_VERSION},
            {"tls1.2", TLS1_2_VERSION},
            {"tls1.3", TLS1_3_VERSION},
    };
    if (!*text)
        return 0;
    for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
        if (strcasecmp(text, versions[i].name) == 0) {
            *(int *)target = versions[i].code;
            return 0;
        }
    }
    return -EINVAL;
}

/* Room for every flag; nsqd_options_table checks at compile time that its entries fit. */
#define NSQD_OPTIONS_CAP 128
static struct nsq_opt table[NSQD_OPTIONS_CAP];
static size_t table_len;

#define OPT(f, c, t, tgt, d, h)                                                                    \
    (struct nsq_opt)                                                                               \
    {                                                                                              \
        .flag = f, .cfg = c, .type = t, .target = tgt, .defval = d, .help = h                      \
    }

const struct nsq_opt *nsqd_options_table(struct nsqd_options *o, size_t *n)
{
    static char node_id_default[24];
    snprintf(node_id_default, sizeof(node_id_default), "%lld", (long long)nsq_default_node_id());
    const struct nsq_opt entries[] = {
            NSQ_OPT_LOG_LEVEL_ENTRY(&o->log_level),
            OPT("log-prefix", NULL, NSQ_OPT_STRING, &o->log_prefix, "[nsqd] ",
                "log message prefix"),
            OPT("verbose", "", NSQ_OPT_BOOL, &o->verbose, "false",
                "[deprecated] has no effect, use --log-level"),
            OPT("node-id", "id", NSQ_OPT_INT64, &o->id, node_id_default,
                "unique part for message IDs, (int) in range [0,1024) (default is hash of "
                "hostname)"),
            OPT("worker-id", "", NSQ_OPT_BOOL, &o->worker_id, "false",
                "[deprecated] use --node-id"),
            OPT("https-address", NULL, NSQ_OPT_STRING, &o->https_address, "0.0.0.0:4152",
                "<addr>:<port> to listen on for HTTPS clients"),
            OPT("http-address", NULL, NSQ_OPT_STRING, &o->http_address, "0.0.0.0:4151",
                "<addr>:<port> to listen on for HTTP clients"),
            OPT("tcp-address", NULL, NSQ_OPT_STRING, &o->tcp_address, "0.0.0.0:4150",
                "<addr>:<port> to listen on for TCP clients"),
            OPT("broadcast-address", NULL, NSQ_OPT_STRING, &o->broadcast_address, NULL,
                "address that will be registered with lookupd (defaults to the OS hostname)"),
            OPT("broadcast-tcp-port", NULL, NSQ_OPT_INT, &o->broadcast_tcp_port, "0",
                "TCP port that will be registered with lookupd (defaults to the TCP port that "
                "this nsqd is listening on)"),
            OPT("broadcast-http-port", NULL, NSQ_OPT_INT, &o->broadcast_http_port, "0",
                "HTTP port that will be registered with lookupd (defaults to the HTTP port "
                "that this nsqd is listening on)"),
            OPT("lookupd-tcp-address", "nsqlookupd_tcp_addresses", NSQ_OPT_STRING_LIST,
                &o->nsqlookupd_tcp_addresses, NULL,
                "lookupd TCP address (may be given multiple times)"),
            OPT("auth-http-address", "auth_http_addresses", NSQ_OPT_STRING_LIST,
                &o->auth_http_addresses, NULL,
                "<addr>:<port> or a full url to query auth server (may be given multiple "
                "times)"),
            OPT("auth-http-request-method", NULL, NSQ_OPT_STRING, &o->auth_http_request_method,
                "get", "HTTP method to use for auth server requests (get or post)"),
            OPT("http-client-connect-timeout", NULL, NSQ_OPT_DURATION,
                &o->http_client_connect_timeout, "2s", "timeout for HTTP connect"),
            OPT("http-client-request-timeout", NULL, NSQ_OPT_DURATION,
                &o->http_client_request_timeout, "5s", "timeout for HTTP request"),
            OPT("topology-region", NULL, NSQ_OPT_STRING, &o->topology_region, "",
                "A region represents a larger domain, made up of one or more zones for "
                "preferring closer consumer"),
            OPT("topology-zone", NULL, NSQ_OPT_STRING, &o->topology_zone, "",
                "A zone represents a logical failure domain for preferring closer consumer"),
            OPT("data-path", NULL, NSQ_OPT_STRING, &o->data_path, "",
                "path to store disk-backed messages"),
            OPT("mem-queue-size", NULL, NSQ_OPT_INT64, &o->mem_queue_size, "10000",
                "number of messages to keep in memory (per topic/channel)"),
            OPT("max-bytes-per-file", NULL, NSQ_OPT_INT64, &o->max_bytes_per_file, "104857600",
                "number of bytes per diskqueue file before rolling"),
            OPT("sync-every", NULL, NSQ_OPT_INT64, &o->sync_every, "2500",
                "number of messages per diskqueue fsync"),
            OPT("sync-timeout", NULL, NSQ_OPT_DURATION, &o->sync_timeout, "2s",
                "duration of time per diskqueue fsync"),
            OPT("queue-scan-worker-pool-max", NULL, NSQ_OPT_INT, &o->queue_scan_worker_pool_max,
                "4", "max concurrency for checking in-flight and deferred message timeouts"),
            OPT("queue-scan-selection-count", NULL, NSQ_OPT_INT, &o->queue_scan_selection_count,
                "20",
                "number of channels to check per cycle (every 100ms) for in-flight and "
                "deferred timeouts"),
            OPT("msg-timeout", NULL, NSQ_OPT_DURATION, &o->msg_timeout, "1m0s",
                "default duration to wait before auto-requeing a message"),
            OPT("max-msg-timeout", NULL, NSQ_OPT_DURATION, &o->max_msg_timeout, "15m0s",
                "maximum duration before a message will timeout"),
            OPT("max-msg-size", NULL, NSQ_OPT_INT64, &o->max_msg_size, "1048576",
                "maximum size of a single message in bytes"),
            OPT("max-req-timeout", NULL, NSQ_OPT_DURATION, &o->max_req_timeout, "1h0m0s",
                "maximum requeuing timeout for a message"),
            OPT("max-defer-timeout", NULL, NSQ_OPT_DURATION, &o->max_defer_timeout, "0s",
                "maximum deferral of a DPUB or /pub?defer= message (0 = --max-req-timeout)"),
            OPT("msg-ttl", NULL, NSQ_OPT_DURATION, &o->msg_ttl, "0s",
                "time-to-live of messages of topics without their own TTL (0 = none); "
                "expired messages are dropped before delivery"),
            OPT("max-body-size", NULL, NSQ_OPT_INT64, &o->max_body_size, "5242880",
                "maximum size of a single command body"),
            OPT("max-heartbeat-interval", NULL, NSQ_OPT_DURATION, &o->max_heartbeat_interval,
                "1m0s", "maximum client configurable duration of time between client heartbeats"),
            OPT("max-rdy-count", NULL, NSQ_OPT_INT64, &o->max_rdy_count, "2500",
                "maximum RDY count for a client"),
            OPT("max-output-buffer-size", NULL, NSQ_OPT_INT64, &o->max_output_buffer_size, "65536",
                "maximum client configurable size (in bytes) for a client output "
                "buffer"),
            OPT("max-output-buffer-timeout", NULL, NSQ_OPT_DURATION, &o->max_output_buffer_timeout,
                "30s", "maximum client configurable duration of time between flushing to a client"),
            OPT("min-output-buffer-timeout", NULL, NSQ_OPT_DURATION, &o->min_output_buffer_timeout,
                "25ms",
                "minimum client configurable duration of time between flushing to a client"),
            OPT("output-buffer-timeout", NULL, NSQ_OPT_DURATION, &o->output_buffer_timeout, "250ms",
                "default duration of time between flushing data to clients"),
            OPT("max-channel-consumers", NULL, NSQ_OPT_INT, &o->max_channel_consumers, "0",
                "maximum channel consumer connection count per nsqd instance (default 0, "
                "i.e., unlimited)"),
            OPT("max-attempts", NULL, NSQ_OPT_INT64, &o->max_attempts, "0",
                "deliveries after which a returned (REQ or timed out) message goes to the "
                "dead-letter topic instead of being requeued (0 = never)"),
            OPT("dead-letter-suffix", NULL, NSQ_OPT_STRING, &o->dead_letter_suffix, ".dead",
                "suffix appended to a topic's name to name its dead-letter topic"),
            OPT("statsd-address", NULL, NSQ_OPT_STRING, &o->statsd_address, "",
                "UDP <addr>:<port> of a statsd daemon for pushing stats"),
            OPT("statsd-interval", NULL, NSQ_OPT_DURATION, &o->statsd_interval, "1m0s",
                "duration between pushing to statsd"),
            OPT("statsd-mem-stats", NULL, NSQ_OPT_BOOL, &o->statsd_mem_stats, "true",
                "toggle sending memory and GC stats to statsd"),
            OPT("statsd-prefix", NULL, NSQ_OPT_STRING, &o->statsd_prefix, "nsq.%s",
                "prefix used for keys sent to statsd (%s for host replacement)"),
            OPT("statsd-udp-packet-size", NULL, NSQ_OPT_INT, &o->statsd_udp_packet_size, "508",
                "the size in bytes of statsd UDP packets"),
            OPT("statsd-exclude-ephemeral", NULL, NSQ_OPT_BOOL, &o->statsd_exclude_ephemeral,
                "false", "Skip ephemeral topics and channels when sending stats to statsd"),
            OPT("e2e-processing-latency-percentile", "e2e_processing_latency_percentiles",
                NSQ_OPT_FLOAT_LIST, &o->e2e_processing_latency_percentiles, NULL,
                "message processing time percentiles (as float (0, 1.0]) to track (can be "
                "specified multiple times or comma separated '1.0,0.99,0.95', default none)"),
            OPT("e2e-processing-latency-window-time", NULL, NSQ_OPT_DURATION,
                &o->e2e_processing_latency_window_time, "10m0s",
                "calculate end to end latency quantiles for this duration of time (ie: 60s "
                "would only show quantile calculations from the past 60 seconds)"),
            OPT("tls-cert", NULL, NSQ_OPT_STRING, &o->tls_cert, "", "path to certificate file"),
            OPT("tls-key", NULL, NSQ_OPT_STRING, &o->tls_key, "", "path to key file"),
            OPT("tls-client-auth-policy", NULL, NSQ_OPT_STRING, &o->tls_client_auth_policy, "",
                "client certificate auth policy ('require' or 'require-verify')"),
            OPT("tls-root-ca-file", NULL, NSQ_OPT_STRING, &o->tls_root_ca_file, "",
                "path to certificate CA file"),
            {.flag = "tls-required",
             .type = NSQ_OPT_CUSTOM,
             .target = &o->tls_required,
             .defval = "false",
             .help = "require TLS for client connections (true, false, "
                     "tcp-https)",
             .parse = parse_tls_required,
             .render = render_int,
             .bool_like = true},
            {.flag = "tls-min-version",
             .type = NSQ_OPT_CUSTOM,
             .target = &o->tls_min_version,
             .defval = "tls1.0",
             .help = "minimum SSL/TLS version acceptable ('ssl3.0', "
                     "'tls1.0', 'tls1.1', 'tls1.2' or 'tls1.3')",
             .parse = parse_tls_min_version,
             .render = render_int},
            OPT("deflate", NULL, NSQ_OPT_BOOL, &o->deflate, "true",
                "enable deflate feature negotiation (client compression)"),
            OPT("max-deflate-level", NULL, NSQ_OPT_INT, &o->max_deflate_level, "6",
                "max deflate compression level a client can negotiate (> values == better "
                "compression, > cpu usage)"),
            OPT("snappy", NULL, NSQ_OPT_BOOL, &o->snappy, "true",
                "enable snappy feature negotiation (client compression)"),
            OPT("http-peek", NULL, NSQ_OPT_BOOL, &o->http_peek, "false",
                "serve GET /channel/peek: a channel's next messages, not consumed (not in "
                "upstream nsqd)"),
            OPT("enable-experiment", NULL, NSQ_OPT_STRING_LIST, &o->enable_experiment, NULL,
                "enable experimental feature (may be given multiple times) (valid options: "
                "\"" NSQD_EXPERIMENT_TOPOLOGY "\")"),
    };
    _Static_assert(sizeof(entries) / sizeof(entries[0]) <= NSQD_OPTIONS_CAP,
                   "NSQD_OPTIONS_CAP is smaller than the option table");
    memcpy(table, entries, sizeof(entries));
    table_len = sizeof(entries) / sizeof(entries[0]);
    *n = table_len;
    return table;
}

int nsqd_options_parse(struct nsqd_options *o, int argc, char **argv)
{
    size_t n;
    const struct nsq_opt *t = nsqd_options_table(o, &n);
    char err[1024];
    int rc = nsq_options_parse(t, n, "nsqd", argc, argv, err, sizeof(err));
    if (rc == NSQ_OPTIONS_FLAG_ERROR) {
        fprintf(stderr, "%s\n", err);
        nsq_options_usage(t, n, "nsqd", stderr);
        return -1;
    }
    if (rc == NSQ_OPTIONS_CONFIG_ERROR) {
        nsq_log_init("[nsqd] ", NSQ_LOG_INFO);
        nsq_fatal("%s", err);
        return -2;
    }
    return rc;
}

void nsqd_options_free(struct nsqd_options *o)
{
    size_t n;
    const struct nsq_opt *t = nsqd_options_table(o, &n);
    nsq_options_free(t, n);
}

bool nsqd_dead_letter_suffix_valid(const char *suffix)
{
    size_t len = suffix ? strlen(suffix) : 0;
    if (len == 0 || len > NSQD_DEAD_LETTER_SUFFIX_MAX)
        return false;
    /* Valid after a one-character topic name, without making the dead topic ephemeral. */
    char name[NSQD_DEAD_LETTER_SUFFIX_MAX + 2];
    snprintf(name, sizeof(name), "t%s", suffix);
    return nsq_topic_name_valid(name, len + 1) && !strchr(suffix, '#');
}

int nsqd_options_validate(struct nsqd_options *o, char *err, size_t errlen)
{
    if (o->max_deflate_level < 1 || o->max_deflate_level > 9) {
        snprintf(err, errlen, "--max-deflate-level must be [1,9]");
        return -EINVAL;
    }
    if (o->id < 0 || o->id >= 1024) {
        snprintf(err, errlen, "--node-id must be [0,1024)");
        return -EINVAL;
    }
    if (o->tls_client_auth_policy && *o->tls_client_auth_policy &&
        o->tls_required == NSQD_TLS_NOT_REQUIRED)
        o->tls_required = NSQD_TLS_REQUIRED;
    bool have_tls = o->tls_cert && *o->tls_cert && o->tls_key && *o->tls_key;
    if (o->tls_required != NSQD_TLS_NOT_REQUIRED && !have_tls) {
        snprintf(err, errlen, "cannot require TLS client connections without TLS key and cert");
        return -EINVAL;
    }
    if (strcmp(o->auth_http_request_method ? o->auth_http_request_method : "", "get") != 0 &&
        strcmp(o->auth_http_request_method ? o->auth_http_request_method : "", "post") != 0) {
        snprintf(err, errlen, "--auth-http-request-method must be post or get");
        return -EINVAL;
    }
    if (topology_validate_experiments(o, err, errlen) != 0)
        return -EINVAL;
    if (o->max_attempts < 0 || o->max_attempts > NSQD_MAX_ATTEMPTS_LIMIT) {
        snprintf(err, errlen, "--max-attempts must be [0,%d]", NSQD_MAX_ATTEMPTS_LIMIT);
        return -EINVAL;
    }
    if (o->max_defer_timeout < 0) {
        snprintf(err, errlen, "--max-defer-timeout must not be negative");
        return -EINVAL;
    }
    if (!nsqd_dead_letter_suffix_valid(o->dead_letter_suffix)) {
        snprintf(err, errlen,
                 "--dead-letter-suffix must be 1-%d characters of [.a-zA-Z0-9_-] (not #ephemeral)",
                 NSQD_DEAD_LETTER_SUFFIX_MAX);
        return -EINVAL;
    }
    for (size_t i = 0; i < o->e2e_processing_latency_percentiles.len; i++) {
        double p = o->e2e_processing_latency_percentiles.items[i];
        if (!(p > 0 && p <= 1)) {
            char buf[64];
            nsq_options_format_float(p, buf, sizeof(buf));
            snprintf(err, errlen, "invalid E2E processing latency percentile: %s", buf);
            return -EINVAL;
        }
    }
    return 0;
}
