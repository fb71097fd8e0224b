/*
 * config: the library's option set (struct nsq_config, opaque to users) with the names and
 * defaults of the reference Go client. Internal: producer, consumer and conn read the fields.
 */
#ifndef NSQ_LIB_CONFIG_H
#define NSQ_LIB_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "nsq.h"

#define NSQ_CFG_STR 256

enum nsq_backoff_strategy { NSQ_BACKOFF_EXPONENTIAL, NSQ_BACKOFF_FULL_JITTER };

struct nsq_config {
    int64_t dial_timeout; /* ns */
    int64_t read_timeout;
    int64_t write_timeout;
    char local_addr[NSQ_CFG_STR];
    int64_t lookupd_poll_interval;
    double lookupd_poll_jitter;
    int64_t lookupd_poll_timeout;
    int64_t max_requeue_delay;
    int64_t default_requeue_delay;
    enum nsq_backoff_strategy backoff_strategy;
    int64_t max_backoff_duration;
    int64_t backoff_multiplier;
    int max_attempts;
    int64_t low_rdy_idle_timeout;
    int64_t low_rdy_timeout;
    int64_t rdy_redistribute_interval;
    char client_id[NSQ_CFG_STR];
    char hostname[NSQ_CFG_STR];
    char user_agent[NSQ_CFG_STR];
    int64_t heartbeat_interval; /* ns; < 0 disables */
    int sample_rate;
    bool tls_v1;
    char tls_root_ca_file[NSQ_CFG_STR];
    bool tls_insecure_skip_verify;
    char tls_cert[NSQ_CFG_STR];
    char tls_key[NSQ_CFG_STR];
    int tls_min_version; /* TLS*_VERSION code, 0 = library default */
    bool deflate;
    int deflate_level;
    bool snappy;
    int64_t output_buffer_size;    /* bytes; -1 disables buffering */
    int64_t output_buffer_timeout; /* ns; < 0 disables */
    int max_in_flight;
    int64_t msg_timeout; /* ns; 0 = server default */
    char auth_secret[NSQ_CFG_STR];
    char topology_region[NSQ_CFG_STR]; /* sent in IDENTIFY when set (nsqd's topology experiment) */
    char topology_zone[NSQ_CFG_STR];
};

/* Fills cfg with the defaults. */
void nsq_config_defaults(struct nsq_config *cfg);

#endif
