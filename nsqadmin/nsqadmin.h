/*
 * nsqadmin: the daemon object. Owns the options (flags.md §4), the event loop, the outbound HTTP
 * client, the clusterinfo service, the HTTP server (http.c), the rate sampler (rates.c) and the
 * admin-action notification sender; exits on SIGINT/SIGTERM.
 *
 * Threads: everything runs on the one loop thread.
 */
#ifndef NSQADMIN_NSQADMIN_H
#define NSQADMIN_NSQADMIN_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nsq_log.h"
#include "nsq_net.h"
#include "nsq_options.h"

struct event;
struct event_base;
struct evbuffer;
struct nsq_http_client;
struct nsq_http_client_options;
struct clusterinfo;
struct clusterinfo_sources;
struct admin_http;
struct rates;

/* Options of flags.md §4; string targets are malloc'd by nsq_options_parse. */
struct nsqadmin_options {
    enum nsq_log_level log_level;
    char *log_prefix;
    bool verbose;
    char *http_address;
    char *base_path;
    char *dev_static_dir;
    char *graphite_url;
    bool proxy_graphite;
    char *statsd_counter_format;
    char *statsd_gauge_format;
    char *statsd_prefix;
    int64_t statsd_interval;
    char *notification_http_endpoint;
    int64_t http_client_connect_timeout;
    int64_t http_client_request_timeout;
    bool http_client_tls_insecure_skip_verify;
    char *http_client_tls_root_ca_file;
    char *http_client_tls_cert;
    char *http_client_tls_key;
    char *allow_config_from_cidr;
    char *acl_http_header;
    struct nsq_strlist lookupd_http_addresses;
    struct nsq_strlist nsqd_http_addresses;
    struct nsq_strlist admin_users;
};

#define NSQADMIN_NUM_OPTIONS 32

/* Fills t (NSQADMIN_NUM_OPTIONS entries at most) with the option table bound to o; returns the
   number of entries. */
size_t nsqadmin_options_table(struct nsqadmin_options *o, struct nsq_opt *t);

/* How often nsqadmin samples node /stats for its own rate history (GET /api/rates), and how many
   samples it keeps per topic and channel. */
#define NSQADMIN_RATES_INTERVAL_NS (10LL * 1000000000LL)
#define NSQADMIN_RATES_SAMPLES     60

struct nsqadmin {
    struct nsqadmin_options *opts;
    const struct nsq_opt *table; /* for GET/PUT /config */
    size_t n_table;
    struct event_base *base;
    struct nsq_http_client *http_client;
    struct clusterinfo *ci;
    struct admin_http *http;
    struct rates *rates;
    struct event *sigint, *sigterm;
    char hostname[NSQ_NET_ADDRSTRLEN];
    char http_addr[NSQ_NET_ADDRSTRLEN];
    int http_port;
    char base_path[NSQ_NET_ADDRSTRLEN]; /* normalised: "/" or "/x/y" */
    /* --allow-config-from-cidr, parsed */
    int cidr_family;
    uint8_t cidr_addr[16];
    int cidr_bits;
    bool closing; /* shutting down: outbound completions only release memory */
};

/* Validates the options and opens the listener. NULL with err set ("--nsqd-http-address or
   --lookupd-http-address required", "listen (<addr>) failed - <err>", ...). */
struct nsqadmin *nsqadmin_new(struct nsqadmin_options *opts, const struct nsq_opt *table,
                              size_t n_table, char *err, size_t errlen);
/* Runs the loop until nsqadmin_exit; returns 0. */
int nsqadmin_main(struct nsqadmin *a);
void nsqadmin_exit(struct nsqadmin *a);
void nsqadmin_free(struct nsqadmin *a);

/* Validation shared with the command-line mode: the exactly-one-source and TLS pair rules.
   Returns 0 or -EINVAL with err set. */
int nsqadmin_check_sources(const struct nsqadmin_options *o, char *err, size_t errlen);
/* HTTP client options from the --http-client-* flags (strings point into o). */
void nsqadmin_client_options(const struct nsqadmin_options *o, struct nsq_http_client_options *out);
/* The cluster's address lists for clusterinfo: pointers into o, so that lists changed later
   (PUT /config) are seen by the next query. */
void nsqadmin_cluster_sources(struct nsqadmin_options *o, struct clusterinfo_sources *out);

/* POSTs body (a JSON object, drained) to --notification-http-endpoint without waiting; a failure
   is logged. No-op when the endpoint is not set. */
void nsqadmin_notify(struct nsqadmin *a, struct evbuffer *body);

/* True if the remote IP text is inside --allow-config-from-cidr; -EINVAL if it is not an IP. */
int nsqadmin_config_allowed(struct nsqadmin *a, const char *ip);

#endif
