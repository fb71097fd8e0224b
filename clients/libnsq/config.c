/*
 * config: option table of the client library. Each option has a name, a type, a field and bounds;
 * nsq_config_set parses text into the field, rejecting values outside the bounds the reference Go
 * client enforces.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include "config.h"
#include "nsq_net.h"
#include "nsq_options.h"
#include "nsq_time.h"
#include "nsq_tls.h"

enum cfg_type { CFG_DURATION, CFG_INT, CFG_INT64, CFG_BOOL, CFG_STRING, CFG_FLOAT, CFG_CUSTOM };

struct cfg_opt {
    const char *name;
    enum cfg_type type;
    size_t offset;
    double min, max; /* bounds (durations in ns); min > max: unbounded */
};

#define OPT(n, t, f, lo, hi)                                                                       \
    {                                                                                              \
        n, t, offsetof(struct nsq_config, f), lo, hi                                               \
    }
#define SEC 1e9

static const struct cfg_opt cfg_opts[] = {
        OPT("dial_timeout", CFG_DURATION, dial_timeout, 1, 0),
        OPT("read_timeout", CFG_DURATION, read_timeout, 0.1 * SEC, 5 * 60 * SEC),
        OPT("write_timeout", CFG_DURATION, write_timeout, 0.1 * SEC, 5 * 60 * SEC),
        OPT("local_addr", CFG_STRING, local_addr, 1, 0),
        OPT("lookupd_poll_interval", CFG_DURATION, lookupd_poll_interval, 0.01 * SEC, 5 * 60 * SEC),
        OPT("lookupd_poll_jitter", CFG_FLOAT, lookupd_poll_jitter, 0, 1),
        OPT("lookupd_poll_timeout", CFG_DURATION, lookupd_poll_timeout, 1, 0),
        OPT("max_requeue_delay", CFG_DURATION, max_requeue_delay, 0, 60 * 60 * SEC),
        OPT("default_requeue_delay", CFG_DURATION, default_requeue_delay, 0, 60 * 60 * SEC),
        OPT("backoff_strategy", CFG_CUSTOM, backoff_strategy, 1, 0),
        OPT("max_backoff_duration", CFG_DURATION, max_backoff_duration, 0, 60 * 60 * SEC),
        OPT("backoff_multiplier", CFG_DURATION, backoff_multiplier, 0, 60 * 60 * SEC),
        OPT("max_attempts", CFG_INT, max_attempts, 0, 65535),
        OPT("low_rdy_idle_timeout", CFG_DURATION, low_rdy_idle_timeout, 0.001 * SEC, 5 * 60 * SEC),
        OPT("low_rdy_timeout", CFG_DURATION, low_rdy_timeout, 0.001 * SEC, 5 * 60 * SEC),
        OPT("rdy_redistribute_interval", CFG_DURATION, rdy_redistribute_interval, 0.001 * SEC,
            5 * SEC),
        OPT("client_id", CFG_STRING, client_id, 1, 0),
        OPT("hostname", CFG_STRING, hostname, 1, 0),
        OPT("user_agent", CFG_STRING, user_agent, 1, 0),
        OPT("heartbeat_interval", CFG_DURATION, heartbeat_interval, 1, 0),
        OPT("sample_rate", CFG_INT, sample_rate, 0, 99),
        OPT("tls_v1", CFG_BOOL, tls_v1, 1, 0),
        OPT("tls_root_ca_file", CFG_STRING, tls_root_ca_file, 1, 0),
        OPT("tls_insecure_skip_verify", CFG_BOOL, tls_insecure_skip_verify, 1, 0),
        OPT("tls_cert", CFG_STRING, tls_cert, 1, 0),
        OPT("tls_key", CFG_STRING, tls_key, 1, 0),
        OPT("tls_min_version", CFG_CUSTOM, tls_min_version, 1, 0),
        OPT("deflate", CFG_BOOL, deflate, 1, 0),
        OPT("deflate_level", CFG_INT, deflate_level, 1, 9),
        OPT("snappy", CFG_BOOL, snappy, 1, 0),
        OPT("output_buffer_size", CFG_INT64, output_buffer_size, 1, 0),
        OPT("output_buffer_timeout", CFG_DURATION, output_buffer_timeout, 1, 0),
        OPT("max_in_flight", CFG_INT, max_in_flight, 0, 1e9),
        OPT("msg_timeout", CFG_DURATION, msg_timeout, 0, 60 * 60 * SEC),
        OPT("auth_secret", CFG_STRING, auth_secret, 1, 0),
        OPT("topology_region", CFG_STRING, topology_region, 1, 0),
        OPT("topology_zone", CFG_STRING, topology_zone, 1, 0),
};

void nsq_config_defaults(struct nsq_config *cfg)
{
    char host[NSQ_CFG_STR];
    memset(cfg, 0, sizeof(*cfg));
    cfg->dial_timeout = 1 * NSQ_NS_PER_SEC;
    cfg->read_timeout = 60 * NSQ_NS_PER_SEC;
    cfg->write_timeout = 1 * NSQ_NS_PER_SEC;
    cfg->lookupd_poll_interval = 60 * NSQ_NS_PER_SEC;
    cfg->lookupd_poll_jitter = 0.3;
    cfg->lookupd_poll_timeout = 60 * NSQ_NS_PER_SEC;
    cfg->max_requeue_delay = 15 * 60 * NSQ_NS_PER_SEC;
    cfg->default_requeue_delay = 90 * NSQ_NS_PER_SEC;
    cfg->backoff_strategy = NSQ_BACKOFF_EXPONENTIAL;
    cfg->max_backoff_duration = 2 * 60 * NSQ_NS_PER_SEC;
    cfg->backoff_multiplier = 1 * NSQ_NS_PER_SEC;
    cfg->max_attempts = 5;
    cfg->low_rdy_idle_timeout = 10 * NSQ_NS_PER_SEC;
    cfg->low_rdy_timeout = 30 * NSQ_NS_PER_SEC;
    cfg->rdy_redistribute_interval = 5 * NSQ_NS_PER_SEC;
    nsq_hostname(host, sizeof(host));
    strcpy(cfg->hostname, host);
    char *dot = strchr(host, '.');
    if (dot)
        *dot = '\0';
    strcpy(cfg->client_id, host);
    strcpy(cfg->user_agent, "libnsq/" NSQ_LIB_VERSION);
    cfg->heartbeat_interval = 30 * NSQ_NS_PER_SEC;
    cfg->deflate_level = 6;
    cfg->output_buffer_size = 16384;
    cfg->output_buffer_timeout = 250 * NSQ_NS_PER_MS;
    cfg->max_in_flight = 1;
}

struct nsq_config *nsq_config_new(void)
{
    struct nsq_config *cfg = malloc(sizeof(*cfg));
    if (cfg)
        nsq_config_defaults(cfg);
    return cfg;
}

void nsq_config_free(struct nsq_config *cfg)
{
    free(cfg);
}

static bool in_bounds(const struct cfg_opt *o, double v)
{
    return o->min > o->max || (v >= o->min && v <= o->max);
}

static int set_custom(struct nsq_config *cfg, const char *key, const char *value)
{
    if (!strcmp(key, "backoff_strategy")) {
        if (!strcmp(value, "exponential") || value[0] == '\0')
            cfg->backoff_strategy = NSQ_BACKOFF_EXPONENTIAL;
        else if (!strcmp(value, "full_jitter"))
            cfg->backoff_strategy = NSQ_BACKOFF_FULL_JITTER;
        else
            return -EINVAL;
        return 0;
    }
    /* tls_min_version */
    return nsq_tls_parse_min_version(value, &cfg->tls_min_version);
}

int nsq_config_set(struct nsq_config *cfg, const char *key, const char *value)
{
    for (size_t i = 0; i < sizeof(cfg_opts) / sizeof(cfg_opts[0]); i++) {
        const struct cfg_opt *o = &cfg_opts[i];
        if (strcmp(o->name, key) != 0)
            continue;
        char *field = (char *)cfg + o->offset;
        char *end;
        switch (o->type) {
        case CFG_DURATION: {
            int64_t ns;
            if (nsq_parse_duration(value, &ns) < 0 || !in_bounds(o, (double)ns))
                return -EINVAL;
            *(int64_t *)(void *)field = ns;
            return 0;
        }
        case CFG_INT:
        case CFG_INT64: {
            errno = 0;
            long long v = strtoll(value, &end, 10);
            if (errno || *value == '\0' || *end || !in_bounds(o, (double)v))
                return -EINVAL;
            if (o->type == CFG_INT)
                *(int *)(void *)field = (int)v;
            else
                *(int64_t *)(void *)field = v;
            return 0;
        }
        case CFG_FLOAT: {
            double v = strtod(value, &end);
            if (*value == '\0' || *end || !in_bounds(o, v))
                return -EINVAL;
            *(double *)(void *)field = v;
            return 0;
        }
        case CFG_BOOL:
            return nsq_parse_bool(value, (bool *)(void *)field);
        case CFG_STRING:
            if (strlen(value) >= NSQ_CFG_STR)
                return -EINVAL;
            strcpy(field, value);
            return 0;
        case CFG_CUSTOM:
            return set_custom(cfg, key, value);
        }
    }
    return -ENOENT;
}

int nsq_config_set_opt(struct nsq_config *cfg, const char *kv)
{
    const char *comma = strchr(kv, ',');
    char key[64];
    if (!comma)
        return nsq_config_set(cfg, kv, "true");
    size_t kl = (size_t)(comma - kv);
    if (kl >= sizeof(key))
        return -ENOENT;
    memcpy(key, kv, kl);
    key[kl] = '\0';
    return nsq_config_set(cfg, key, comma + 1);
}

const char *nsq_strerror(int err)
{
    switch (-err) {
    case 0:
        return "success";
    case NSQ_ESERVER:
        return "nsqd returned an error";
    case ECANCELED:
        return "canceled";
    case ENOTCONN:
        return "not connected";
    case ECONNRESET:
        return "connection closed";
    case ETIMEDOUT:
        return "timed out";
    default:
        return strerror(-err);
    }
}
