/*
 * statsd: the periodic statsd push of nsqd (http-api.md §7). See statsd.h.
 *
 * The previous snapshot is kept whole; its topics and channels are sorted by name (stats.h), so the
 * counterpart of each current topic/channel is found by binary search. A topic or channel that is
 * new since the last push reports its full counters, as upstream does.
 */
#include "statsd.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "nsq_log.h"
#include "nsq_names.h"
#include "nsq_statsd.h"
#include "nsqd.h"
#include "stats.h"

#define STATSD_PREFIX_LEN 512
#define STATSD_NAME_LEN   1024
/* Datagrams of one push are spread over the interval minus this margin. */
#define STATSD_SPREAD_MARGIN_NS (1000000000LL)

struct nsqd_statsd {
    struct nsqd *n;
    struct nsq_statsd *sink;
    struct event *timer;
    struct event *spread_ev;  /* sends the queued datagrams one by one */
    struct timeval spread_tv; /* gap between two datagrams of one push */
    struct nsqd_stats *last;  /* previous snapshot, owned */
};

static bool is_ephemeral(const char *name)
{
    return nsq_name_is_ephemeral(name, strlen(name));
}

static const struct nsqd_topic_stats *find_topic(const struct nsqd_stats *s, const char *name)
{
    size_t lo = 0, hi = s ? s->n_topics : 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(s->topics[mid].topic_name, name);
        if (c == 0)
            return &s->topics[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    /* Fall back to a scan in case a collector did not sort. */
    for (size_t i = 0; s != NULL && i < s->n_topics; i++)
        if (strcmp(s->topics[i].topic_name, name) == 0)
            return &s->topics[i];
    return NULL;
}

static const struct nsqd_channel_stats *find_channel(const struct nsqd_topic_stats *t,
                                                     const char *name)
{
    for (size_t i = 0; t != NULL && i < t->n_channels; i++)
        if (strcmp(t->channels[i].channel_name, name) == 0)
            return &t->channels[i];
    return NULL;
}

static void emit_latency(struct nsq_statsd *sink, const char *base,
                         const struct nsq_quantile_result *r)
{
    char name[STATSD_NAME_LEN];
    for (size_t i = 0; i < r->n; i++) {
        snprintf(name, sizeof(name), "%s.e2e_processing_latency_%.0f", base,
                 r->quantile[i] * 100.0);
        nsq_statsd_gauge(sink, name, (int64_t)r->value[i]);
    }
}

/* Deliveries by locality class (topology.h), once the channel has any (none while the topology
   experiment is off). */
static void emit_topology(struct nsq_statsd *sink, const char *base,
                          const struct nsqd_channel_stats *c, const struct nsqd_channel_stats *lc)
{
    const struct {
        const char *key;
        uint64_t cur, last;
    } rows[] = {
            {"zone_local_msg_count", c->zone_local_msg_count, lc ? lc->zone_local_msg_count : 0},
            {"region_local_msg_count", c->region_local_msg_count,
             lc ? lc->region_local_msg_count : 0},
            {"global_msg_count", c->global_msg_count, lc ? lc->global_msg_count : 0},
    };
    if (!c->zone_local_msg_count && !c->region_local_msg_count && !c->global_msg_count)
        return;
    char name[STATSD_NAME_LEN + 64];
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        snprintf(name, sizeof(name), "%s.%s", base, rows[i].key);
        nsq_statsd_counter(sink, name, (int64_t)(rows[i].cur - rows[i].last));
    }
}

/* TTL and max_depth counters (topic_limits.h), only for topics that show them in /stats. */
static void emit_drops(struct nsq_statsd *sink, const char *base, uint64_t expired,
                       uint64_t last_expired, uint64_t dropped, uint64_t last_dropped)
{
    char name[STATSD_NAME_LEN + 64];
    snprintf(name, sizeof(name), "%s.expired_count", base);
    nsq_statsd_counter(sink, name, (int64_t)(expired - last_expired));
    snprintf(name, sizeof(name), "%s.dropped_count", base);
    nsq_statsd_counter(sink, name, (int64_t)(dropped - last_dropped));
}

static void emit_channel(struct nsq_statsd *sink, const char *topic,
                         const struct nsqd_channel_stats *c, const struct nsqd_channel_stats *lc)
{
    char base[STATSD_NAME_LEN];
    char name[STATSD_NAME_LEN + 64];

    snprintf(base, sizeof(base), "topic.%s.channel.%s", topic, c->channel_name);
    snprintf(name, sizeof(name), "%s.message_count", base);
    nsq_statsd_counter(sink, name, (int64_t)(c->message_count - (lc ? lc->message_count : 0)));
    snprintf(name, sizeof(name), "%s.depth", base);
    nsq_statsd_gauge(sink, name, c->depth);
    snprintf(name, sizeof(name), "%s.backend_depth", base);
    nsq_statsd_gauge(sink, name, c->backend_depth);
    snprintf(name, sizeof(name), "%s.in_flight_count", base);
    nsq_statsd_gauge(sink, name, c->in_flight_count);
    snprintf(name, sizeof(name), "%s.deferred_count", base);
    nsq_statsd_gauge(sink, name, c->deferred_count);
    snprintf(name, sizeof(name), "%s.requeue_count", base);
    nsq_statsd_counter(sink, name, (int64_t)(c->requeue_count - (lc ? lc->requeue_count : 0)));
    snprintf(name, sizeof(name), "%s.timeout_count", base);
    nsq_statsd_counter(sink, name, (int64_t)(c->timeout_count - (lc ? lc->timeout_count : 0)));
    if (c->dead_letter) { /* only with dead-lettering in force: upstream's keys otherwise */
        snprintf(name, sizeof(name), "%s.dead_letter_count", base);
        nsq_statsd_counter(sink, name,
                           (int64_t)(c->dead_letter_count - (lc ? lc->dead_letter_count : 0)));
    }
    snprintf(name, sizeof(name), "%s.clients", base);
    nsq_statsd_gauge(sink, name, c->client_count);
    emit_topology(sink, base, c, lc);
    emit_latency(sink, base, &c->e2e);
    if (c->limits_shown)
        emit_drops(sink, base, c->expired_count, lc ? lc->expired_count : 0, c->dropped_count,
                   lc ? lc->dropped_count : 0);
}

void nsqd_statsd_emit(struct nsq_statsd *sink, const struct nsqd_stats *cur,
                      const struct nsqd_stats *last, bool exclude_ephemeral, bool mem)
{
    char base[STATSD_NAME_LEN];
    char name[STATSD_NAME_LEN + 64];

    for (size_t i = 0; i < cur->n_topics; i++) {
        const struct nsqd_topic_stats *t = &cur->topics[i];
        const struct nsqd_topic_stats *lt;

        if (exclude_ephemeral && is_ephemeral(t->topic_name))
            continue;
        lt = find_topic(last, t->topic_name);
        snprintf(base, sizeof(base), "topic.%s", t->topic_name);
        snprintf(name, sizeof(name), "%s.message_count", base);
        nsq_statsd_counter(sink, name, (int64_t)(t->message_count - (lt ? lt->message_count : 0)));
        snprintf(name, sizeof(name), "%s.message_bytes", base);
        nsq_statsd_counter(sink, name, (int64_t)(t->message_bytes - (lt ? lt->message_bytes : 0)));
        snprintf(name, sizeof(name), "%s.depth", base);
        nsq_statsd_gauge(sink, name, t->depth);
        snprintf(name, sizeof(name), "%s.backend_depth", base);
        nsq_statsd_gauge(sink, name, t->backend_depth);
        emit_latency(sink, base, &t->e2e);
        if (t->limits_shown)
            emit_drops(sink, base, t->expired_count, lt ? lt->expired_count : 0, t->dropped_count,
                       lt ? lt->dropped_count : 0);

        for (size_t k = 0; k < t->n_channels; k++) {
            const struct nsqd_channel_stats *c = &t->channels[k];
            if (exclude_ephemeral && is_ephemeral(c->channel_name))
                continue;
            emit_channel(sink, t->topic_name, c, find_channel(lt, c->channel_name));
        }
    }

    if (mem && cur->has_memory) {
        const struct nsqd_memory_stats *m = &cur->memory;
        uint64_t last_runs = (last != NULL && last->has_memory) ? last->memory.gc_total_runs : 0;
        nsq_statsd_gauge(sink, "mem.heap_objects", (int64_t)m->heap_objects);
        nsq_statsd_gauge(sink, "mem.heap_idle_bytes", (int64_t)m->heap_idle_bytes);
        nsq_statsd_gauge(sink, "mem.heap_in_use_bytes", (int64_t)m->heap_in_use_bytes);
        nsq_statsd_gauge(sink, "mem.heap_released_bytes", (int64_t)m->heap_released_bytes);
        nsq_statsd_gauge(sink, "mem.gc_pause_usec_100", (int64_t)m->gc_pause_usec_100);
        nsq_statsd_gauge(sink, "mem.gc_pause_usec_99", (int64_t)m->gc_pause_usec_99);
        nsq_statsd_gauge(sink, "mem.gc_pause_usec_95", (int64_t)m->gc_pause_usec_95);
        nsq_statsd_gauge(sink, "mem.next_gc_bytes", (int64_t)m->next_gc_bytes);
        nsq_statsd_counter(sink, "mem.gc_runs", (int64_t)(m->gc_total_runs - last_runs));
    }
}

static void spread_cb(evutil_socket_t fd, short what, void *arg)
{
    struct nsqd_statsd *s = arg;
    if (nsq_statsd_send_one(s->sink) < 0)
        nsq_error("STATSD: failed to send to %s", nsqd_opts(s->n)->statsd_address);
    if (nsq_statsd_pending(s->sink) > 0)
        evtimer_add(s->spread_ev, &s->spread_tv);
}

/*
 * One push: collect, emit, then send the datagrams spread evenly over (interval - 1 s) as upstream
 * does, so that a large nsqd does not burst hundreds of datagrams at the statsd server at once.
 */
static void push_cb(evutil_socket_t fd, short what, void *arg)
{
    struct nsqd_statsd *s = arg;
    const struct nsqd_options *o = nsqd_opts(s->n);
    struct nsqd_stats *cur = nsqd_stats_collect(s->n, NULL, NULL, false, o->statsd_mem_stats);
    size_t pending;
    int64_t spread_ns;

    if (cur == NULL)
        return;
    /* Whatever the previous push did not send yet goes now. */
    evtimer_del(s->spread_ev);
    while (nsq_statsd_pending(s->sink) > 0)
        nsq_statsd_send_one(s->sink);

    nsqd_statsd_emit(s->sink, cur, s->last, o->statsd_exclude_ephemeral, o->statsd_mem_stats);
    nsq_statsd_finish(s->sink);
    nsqd_stats_free(s->last);
    s->last = cur;

    pending = nsq_statsd_pending(s->sink);
    spread_ns = o->statsd_interval - STATSD_SPREAD_MARGIN_NS;
    if (pending <= 1 || spread_ns <= 0) {
        if (nsq_statsd_flush(s->sink) < 0)
            nsq_error("STATSD: failed to send to %s", o->statsd_address);
        return;
    }
    spread_ns /= (int64_t)pending;
    s->spread_tv.tv_sec = spread_ns / 1000000000LL;
    s->spread_tv.tv_usec = (spread_ns % 1000000000LL) / 1000;
    spread_cb(-1, 0, s);
}

struct nsqd_statsd *nsqd_statsd_new(struct nsqd *n)
{
    const struct nsqd_options *o = nsqd_opts(n);
    struct nsqd_statsd *s;
    char prefix[STATSD_PREFIX_LEN];
    struct timeval tv;

    if (o->statsd_address == NULL || o->statsd_address[0] == '\0' || o->statsd_interval <= 0)
        return NULL;
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->n = n;
    if (nsq_statsd_build_prefix(o->statsd_prefix, nsqd_broadcast_address(n),
                                nsqd_broadcast_http_port(n), prefix, sizeof(prefix)) < 0) {
        nsq_error("STATSD: prefix too long: %s", o->statsd_prefix);
        goto err;
    }
    s->sink =
            nsq_statsd_new(o->statsd_address, prefix,
                           o->statsd_udp_packet_size > 0 ? (size_t)o->statsd_udp_packet_size
                                                         : (size_t)NSQ_STATSD_DEFAULT_PACKET_SIZE);
    if (s->sink == NULL) {
        nsq_error("STATSD: failed to create client for %s", o->statsd_address);
        goto err;
    }
    s->timer = event_new(nsqd_base(n), -1, EV_PERSIST, push_cb, s);
    s->spread_ev = evtimer_new(nsqd_base(n), spread_cb, s);
    if (s->timer == NULL || s->spread_ev == NULL)
        goto err;
    tv.tv_sec = o->statsd_interval / 1000000000LL;
    tv.tv_usec = (o->statsd_interval % 1000000000LL) / 1000;
    event_add(s->timer, &tv);
    nsq_info("STATSD: pushing to %s every %lld ms with prefix '%s'", o->statsd_address,
             (long long)(o->statsd_interval / 1000000LL), prefix);
    return s;
err:
    nsqd_statsd_free(s);
    return NULL;
}

void nsqd_statsd_free(struct nsqd_statsd *s)
{
    if (s == NULL)
        return;
    if (s->timer != NULL)
        event_free(s->timer);
    if (s->spread_ev != NULL)
        event_free(s->spread_ev);
    nsq_statsd_free(s->sink);
    nsqd_stats_free(s->last);
    free(s);
}
