/*
 * metrics: renders a /stats snapshot as a Prometheus text exposition. See metrics.h for the
 * families. Per-topic and per-channel families are table driven: one row names the family and
 * reads its value from a snapshot element, so adding a figure is adding a row.
 */
#include "metrics.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "nsq_json.h"
#include "stats.h"

#define NS_PER_SEC 1e9

/* Renders into an evbuffer, remembering whether any append failed. */
struct out {
    struct evbuffer *b;
    int err;
};

static void put(struct out *o, const char *s)
{
    if (evbuffer_add(o->b, s, strlen(s)) != 0)
        o->err = -ENOMEM;
}

static void putf_i64(struct out *o, int64_t v)
{
    if (evbuffer_add_printf(o->b, "%lld", (long long)v) < 0)
        o->err = -ENOMEM;
}

static void putf_u64(struct out *o, uint64_t v)
{
    if (evbuffer_add_printf(o->b, "%llu", (unsigned long long)v) < 0)
        o->err = -ENOMEM;
}

/* Shortest round-trip form ("0.99", not "0.98999999999999999"). */
static void putf_double(struct out *o, double v)
{
    char buf[NSQ_JSON_FLOAT_BUFLEN];
    int rc;
    if (isnan(v))
        rc = evbuffer_add_printf(o->b, "NaN");
    else if (isinf(v))
        rc = evbuffer_add_printf(o->b, v > 0 ? "+Inf" : "-Inf");
    else
        rc = evbuffer_add(o->b, buf, nsq_json_format_double(buf, v));
    if (rc < 0)
        o->err = -ENOMEM;
}

int nsqd_metrics_escape(struct evbuffer *out, const char *s)
{
    for (const char *p = s; *p; p++) {
        const char *esc = NULL;
        if (*p == '\\')
            esc = "\\\\";
        else if (*p == '"')
            esc = "\\\"";
        else if (*p == '\n')
            esc = "\\n";
        int rc = esc ? evbuffer_add(out, esc, 2) : evbuffer_add(out, p, 1);
        if (rc != 0)
            return -ENOMEM;
    }
    return 0;
}

static void header(struct out *o, const char *name, const char *type, const char *help)
{
    put(o, "# HELP ");
    put(o, name);
    put(o, " ");
    put(o, help);
    put(o, "\n# TYPE ");
    put(o, name);
    put(o, " ");
    put(o, type);
    put(o, "\n");
}

/* Writes `name{topic="..",channel=".."` (channel may be NULL); the caller closes the braces. */
static void labels_open(struct out *o, const char *name, const char *topic, const char *channel)
{
    put(o, name);
    put(o, "{topic=\"");
    if (nsqd_metrics_escape(o->b, topic) != 0)
        o->err = -ENOMEM;
    put(o, "\"");
    if (channel) {
        put(o, ",channel=\"");
        if (nsqd_metrics_escape(o->b, channel) != 0)
            o->err = -ENOMEM;
        put(o, "\"");
    }
}

/* ---- per-topic and per-channel rows ---- */

struct topic_family {
    const char *name, *type, *help;
    int64_t (*get)(const struct nsqd_topic_stats *t);
};

struct channel_family {
    const char *name, *type, *help;
    int64_t (*get)(const struct nsqd_channel_stats *c);
};

static int64_t t_depth(const struct nsqd_topic_stats *t)
{
    return t->depth;
}
static int64_t t_backend(const struct nsqd_topic_stats *t)
{
    return t->backend_depth;
}
static int64_t t_messages(const struct nsqd_topic_stats *t)
{
    return (int64_t)t->message_count;
}
static int64_t t_bytes(const struct nsqd_topic_stats *t)
{
    return (int64_t)t->message_bytes;
}
static int64_t t_paused(const struct nsqd_topic_stats *t)
{
    return t->paused;
}
static int64_t t_channels(const struct nsqd_topic_stats *t)
{
    return (int64_t)t->n_channels;
}
static int64_t t_expired(const struct nsqd_topic_stats *t)
{
    return (int64_t)t->expired_count;
}
static int64_t t_dropped(const struct nsqd_topic_stats *t)
{
    return (int64_t)t->dropped_count;
}

static const struct topic_family topic_families[] = {
        {"nsqd_topic_depth", "gauge", "Messages queued in the topic (memory and disk).", t_depth},
        {"nsqd_topic_backend_depth", "gauge", "Messages queued in the topic's disk queue.",
         t_backend},
        {"nsqd_topic_messages_total", "counter", "Messages published to the topic.", t_messages},
        {"nsqd_topic_message_bytes_total", "counter", "Body bytes published to the topic.",
         t_bytes},
        {"nsqd_topic_paused", "gauge", "1 if the topic is paused.", t_paused},
        {"nsqd_topic_channels", "gauge", "Channels of the topic.", t_channels},
        {"nsqd_topic_expired_total", "counter",
         "Messages whose TTL passed in the topic's own queue (dropped).", t_expired},
        {"nsqd_topic_dropped_total", "counter",
         "Messages evicted from the topic's own queue by max_depth (drop_oldest).", t_dropped},
};

static int64_t c_depth(const struct nsqd_channel_stats *c)
{
    return c->depth;
}
static int64_t c_backend(const struct nsqd_channel_stats *c)
{
    return c->backend_depth;
}
static int64_t c_in_flight(const struct nsqd_channel_stats *c)
{
    return c->in_flight_count;
}
static int64_t c_deferred(const struct nsqd_channel_stats *c)
{
    return c->deferred_count;
}
static int64_t c_messages(const struct nsqd_channel_stats *c)
{
    return (int64_t)c->message_count;
}
static int64_t c_requeued(const struct nsqd_channel_stats *c)
{
    return (int64_t)c->requeue_count;
}
static int64_t c_timed_out(const struct nsqd_channel_stats *c)
{
    return (int64_t)c->timeout_count;
}
static int64_t c_dead_lettered(const struct nsqd_channel_stats *c)
{
    return (int64_t)c->dead_letter_count;
}
static int64_t c_clients(const struct nsqd_channel_stats *c)
{
    return c->client_count;
}
static int64_t c_paused(const struct nsqd_channel_stats *c)
{
    return c->paused;
}
static int64_t c_expired(const struct nsqd_channel_stats *c)
{
    return (int64_t)c->expired_count;
}
static int64_t c_dropped(const struct nsqd_channel_stats *c)
{
    return (int64_t)c->dropped_count;
}

static const struct channel_family channel_families[] = {
        {"nsqd_channel_depth", "gauge", "Messages queued in the channel (memory and disk).",
         c_depth},
        {"nsqd_channel_backend_depth", "gauge", "Messages queued in the channel's disk queue.",
         c_backend},
        {"nsqd_channel_in_flight", "gauge", "Messages delivered and not yet finished.",
         c_in_flight},
        {"nsqd_channel_deferred", "gauge", "Deferred messages waiting for their time.", c_deferred},
        {"nsqd_channel_messages_total", "counter", "Messages put into the channel.", c_messages},
        {"nsqd_channel_requeued_total", "counter", "Messages requeued by consumers.", c_requeued},
        {"nsqd_channel_timed_out_total", "counter", "In-flight messages that timed out.",
         c_timed_out},
        {"nsqd_channel_dead_lettered_total", "counter",
         "Messages moved to the dead-letter topic after --max-attempts deliveries.",
         c_dead_lettered},
        {"nsqd_channel_clients", "gauge", "Consumers subscribed to the channel.", c_clients},
        {"nsqd_channel_paused", "gauge", "1 if the channel is paused.", c_paused},
        {"nsqd_channel_expired_total", "counter",
         "Messages whose TTL passed before delivery (dropped).", c_expired},
        {"nsqd_channel_dropped_total", "counter",
         "Messages evicted by the topic's max_depth (drop_oldest).", c_dropped},
};

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* Quantile samples and _count of one latency stream. */
static void summary_samples(struct out *o, const char *name, const char *topic, const char *channel,
                            const struct nsq_quantile_result *e2e)
{
    size_t n = e2e->n < NELEMS(e2e->quantile) ? e2e->n : NELEMS(e2e->quantile);
    for (size_t i = 0; i < n; i++) {
        labels_open(o, name, topic, channel);
        put(o, ",quantile=\"");
        putf_double(o, e2e->quantile[i]);
        put(o, "\"} ");
        /* An empty window has no quantile: NaN, as Prometheus clients write it. */
        putf_double(o, e2e->count ? e2e->value[i] / NS_PER_SEC : NAN);
        put(o, "\n");
    }
    char count_name[128];
    snprintf(count_name, sizeof(count_name), "%s_count", name);
    labels_open(o, count_name, topic, channel);
    put(o, "} ");
    putf_u64(o, e2e->count);
    put(o, "\n");
}

static void render_topics(struct out *o, const struct nsqd_stats *s)
{
    for (size_t f = 0; f < NELEMS(topic_families); f++) {
        const struct topic_family *tf = &topic_families[f];
        header(o, tf->name, tf->type, tf->help);
        for (size_t i = 0; i < s->n_topics; i++) {
            labels_open(o, tf->name, s->topics[i].topic_name, NULL);
            put(o, "} ");
            putf_i64(o, tf->get(&s->topics[i]));
            put(o, "\n");
        }
    }
    static const char topic_e2e[] = "nsqd_topic_e2e_processing_latency_seconds";
    header(o, topic_e2e, "summary", "End-to-end processing latency over the topic's channels.");
    for (size_t i = 0; i < s->n_topics; i++)
        summary_samples(o, topic_e2e, s->topics[i].topic_name, NULL, &s->topics[i].e2e);
}

static void render_channels(struct out *o, const struct nsqd_stats *s)
{
    for (size_t f = 0; f < NELEMS(channel_families); f++) {
        const struct channel_family *cf = &channel_families[f];
        header(o, cf->name, cf->type, cf->help);
        for (size_t i = 0; i < s->n_topics; i++) {
            const struct nsqd_topic_stats *t = &s->topics[i];
            for (size_t k = 0; k < t->n_channels; k++) {
                labels_open(o, cf->name, t->topic_name, t->channels[k].channel_name);
                put(o, "} ");
                putf_i64(o, cf->get(&t->channels[k]));
                put(o, "\n");
            }
        }
    }
    static const char chan_e2e[] = "nsqd_channel_e2e_processing_latency_seconds";
    header(o, chan_e2e, "summary", "End-to-end processing latency of the channel.");
    for (size_t i = 0; i < s->n_topics; i++) {
        const struct nsqd_topic_stats *t = &s->topics[i];
        for (size_t k = 0; k < t->n_channels; k++)
            summary_samples(o, chan_e2e, t->topic_name, t->channels[k].channel_name,
                            &t->channels[k].e2e);
    }
}

static bool channel_has_topology(const struct nsqd_channel_stats *c)
{
    return c->zone_local_msg_count || c->region_local_msg_count || c->global_msg_count;
}

/* Deliveries by locality class (topology.h): only channels that have any, so that the family is
   absent while the topology experiment is off. */
static void render_channel_topology(struct out *o, const struct nsqd_stats *s)
{
    static const char name[] = "nsqd_channel_delivered_by_locality_total";
    bool any = false;
    for (size_t i = 0; i < s->n_topics; i++) {
        const struct nsqd_topic_stats *t = &s->topics[i];
        for (size_t k = 0; k < t->n_channels; k++) {
            const struct nsqd_channel_stats *c = &t->channels[k];
            if (!channel_has_topology(c))
                continue;
            if (!any)
                header(o, name, "counter",
                       "Messages delivered by the consumer's locality (zone_local, "
                       "region_local, global).");
            any = true;
            const struct {
                const char *locality;
                uint64_t v;
            } rows[] = {{"zone_local", c->zone_local_msg_count},
                        {"region_local", c->region_local_msg_count},
                        {"global", c->global_msg_count}};
            for (size_t r = 0; r < NELEMS(rows); r++) {
                labels_open(o, name, t->topic_name, c->channel_name);
                put(o, ",locality=\"");
                put(o, rows[r].locality);
                put(o, "\"} ");
                putf_u64(o, rows[r].v);
                put(o, "\n");
            }
        }
    }
}

static void gauge(struct out *o, const char *name, const char *help, int64_t v)
{
    header(o, name, "gauge", help);
    put(o, name);
    put(o, " ");
    putf_i64(o, v);
    put(o, "\n");
}

static void render_clients(struct out *o, const struct nsqd_stats *s)
{
    int64_t consumers = 0, in_flight = 0, ready = 0;
    for (size_t i = 0; i < s->n_topics; i++) {
        const struct nsqd_topic_stats *t = &s->topics[i];
        for (size_t k = 0; k < t->n_channels; k++) {
            const struct nsqd_channel_stats *c = &t->channels[k];
            consumers += c->client_count;
            for (size_t m = 0; m < c->n_clients; m++) {
                in_flight += c->clients[m].in_flight_count;
                ready += c->clients[m].ready_count;
            }
        }
    }
    static const char conn[] = "nsqd_client_connections";
    header(o, conn, "gauge", "Client connections by role (subscribed consumers, producers).");
    put(o, conn);
    put(o, "{role=\"consumer\"} ");
    putf_i64(o, consumers);
    put(o, "\n");
    put(o, conn);
    put(o, "{role=\"producer\"} ");
    putf_i64(o, (int64_t)s->n_producers);
    put(o, "\n");
    gauge(o, "nsqd_client_in_flight", "Messages in flight over all consumers.", in_flight);
    gauge(o, "nsqd_client_ready", "Sum of the RDY counts of all consumers.", ready);
}

static void render_memory(struct out *o, const struct nsqd_stats *s)
{
    if (!s->has_memory)
        return;
    gauge(o, "nsqd_memory_heap_in_use_bytes", "Bytes in allocated heap chunks.",
          (int64_t)s->memory.heap_in_use_bytes);
    gauge(o, "nsqd_memory_heap_idle_bytes", "Free bytes held by the allocator.",
          (int64_t)s->memory.heap_idle_bytes);
    gauge(o, "nsqd_memory_heap_released_bytes", "Releasable bytes at the top of the heap.",
          (int64_t)s->memory.heap_released_bytes);
}

int nsqd_metrics_render(const struct nsqd_stats *s, struct evbuffer *out)
{
    struct out o = {.b = out, .err = 0};
    header(&o, "nsqd_info", "gauge", "Build information.");
    put(&o, "nsqd_info{version=\"");
    if (nsqd_metrics_escape(out, s->version ? s->version : "") != 0)
        o.err = -ENOMEM;
    put(&o, "\"} 1\n");
    gauge(&o, "nsqd_health", "1 if healthy, 0 after a failed disk write.",
          s->health && strcmp(s->health, "OK") == 0);
    gauge(&o, "process_start_time_seconds", "Start time of the process (Unix seconds).",
          s->start_time);
    render_topics(&o, s);
    render_channels(&o, s);
    render_channel_topology(&o, s);
    render_clients(&o, s);
    render_memory(&o, s);
    return o.err;
}
