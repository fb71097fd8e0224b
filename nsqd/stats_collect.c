/*
 * stats_collect: fills a struct nsqd_stats snapshot from the live topics, channels and clients
 * (stats.h), on the loop thread. Applies the topic=/channel=/include_clients filters, sorts topics
 * and channels by name and reproduces upstream's single pub_counts entry.
 */
#include "stats.h"

#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "channel.h"
#include "dead_letter.h"
#include "client.h"
#include "name_map.h"
#include "nsq_time.h"
#include "nsq_tls.h"
#include "nsq_version.h"
#include "nsqd.h"
#include "topic.h"

static int cmp_topic(const void *a, const void *b)
{
    return strcmp((*(struct topic *const *)a)->name, (*(struct topic *const *)b)->name);
}

static int cmp_channel(const void *a, const void *b)
{
    return strcmp((*(struct channel *const *)a)->name, (*(struct channel *const *)b)->name);
}

static char *dup_or_empty(const char *s)
{
    return strdup(s ? s : "");
}

/* One pub_counts entry: the one for `topic` if given, else the first. Returns false if the client
   has none to report. */
static bool client_fill(struct nsqd_client_stats *cs, const struct client *c, const char *topic)
{
    cs->client_id = dup_or_empty(c->client_id);
    cs->hostname = dup_or_empty(c->hostname);
    cs->version = strdup("V2");
    cs->remote_address = dup_or_empty(c->remote_addr);
    cs->state = c->state;
    cs->ready_count = c->rdy;
    cs->in_flight_count = c->in_flight;
    cs->message_count = c->message_count;
    if (c->channel && c->channel->topology_aware) {
        cs->topology = true;
        cs->zone_local_msg_count = c->topology_msg_count[TOPOLOGY_ZONE_LOCAL];
        cs->region_local_msg_count = c->topology_msg_count[TOPOLOGY_REGION_LOCAL];
        cs->global_msg_count = c->topology_msg_count[TOPOLOGY_GLOBAL];
        cs->topology_zone = dup_or_empty(c->topology_zone);
        cs->topology_region = dup_or_empty(c->topology_region);
    }
    cs->finish_count = c->finish_count;
    cs->requeue_count = c->requeue_count;
    cs->connect_ts = c->connect_ts;
    cs->sample_rate = c->sample_rate;
    cs->deflate = c->deflate;
    cs->snappy = c->snappy;
    cs->user_agent = dup_or_empty(c->user_agent);
    if (c->auth) {
        cs->authed = true;
        cs->auth_identity = strdup(c->auth->identity);
        cs->auth_identity_url = strdup(c->auth->identity_url);
    }
    cs->tls = c->tls;
    cs->tls_cipher_suite = strdup(c->ssl ? nsq_tls_cipher_name(c->ssl) : "");
    cs->tls_version = strdup(c->ssl ? nsq_tls_version_name(c->ssl) : "");
    cs->tls_negotiated_protocol = strdup("");
    cs->tls_negotiated_protocol_is_mutual = c->tls; /* always true in Go for a TLS session */
    const struct client_pub_count *pc = NULL;
    for (size_t i = 0; i < c->npub_counts; i++) {
        if (!topic || strcmp(c->pub_counts[i].topic, topic) == 0) {
            pc = &c->pub_counts[i];
            break;
        }
    }
    if (pc) {
        cs->pub_counts = calloc(1, sizeof(*cs->pub_counts));
        if (cs->pub_counts) {
            cs->pub_counts[0].topic = strdup(pc->topic);
            cs->pub_counts[0].count = pc->count;
            cs->n_pub_counts = 1;
        }
    }
    return pc != NULL;
}

static void e2e_result(const struct channel *c, int64_t now_ns, struct nsq_quantile_result *out)
{
    memset(out, 0, sizeof(*out));
    if (c->e2e)
        nsq_quantile_result(c->e2e, now_ns, out);
}

static void channel_fill(struct nsqd_channel_stats *cs, struct channel *c, bool include_clients,
                         int64_t now_ns)
{
    cs->channel_name = strdup(c->name);
    cs->depth = channel_depth(c);
    cs->backend_depth = channel_backend_depth(c);
    cs->in_flight_count = (int64_t)channel_in_flight_count(c);
    cs->deferred_count = (int64_t)channel_deferred_count(c);
    cs->message_count = c->message_count;
    cs->zone_local_msg_count = c->topology_msg_count[TOPOLOGY_ZONE_LOCAL];
    cs->region_local_msg_count = c->topology_msg_count[TOPOLOGY_REGION_LOCAL];
    cs->global_msg_count = c->topology_msg_count[TOPOLOGY_GLOBAL];
    cs->requeue_count = c->requeue_count;
    cs->timeout_count = c->timeout_count;
    cs->max_attempts = dead_letter_max_attempts(c);
    cs->dead_letter_count = c->dead_letter_count;
    cs->dead_letter = cs->max_attempts > 0 || cs->dead_letter_count > 0;
    cs->client_count = (int64_t)c->client_count;
    cs->paused = c->paused;
    cs->expired_count = c->drops.expired;
    cs->dropped_count = c->drops.dropped;
    e2e_result(c, now_ns, &cs->e2e);
    if (!include_clients) {
        cs->clients_null = true;
        return;
    }
    cs->clients = calloc(c->client_count ? c->client_count : 1, sizeof(*cs->clients));
    if (!cs->clients)
        return;
    for (struct client *cl = c->clients; cl; cl = cl->ch_next)
        client_fill(&cs->clients[cs->n_clients++], cl, NULL);
}

/* Returns false when the channel filter excludes the topic. */
static bool topic_fill(struct nsqd_topic_stats *ts, struct topic *t, const char *channel,
                       bool include_clients, int64_t now_ns)
{
    struct channel **chans = calloc(t->nchans ? t->nchans : 1, sizeof(*chans));
    if (!chans)
        return false;
    size_t n = 0;
    for (size_t i = 0; i < t->nchans; i++)
        if (!channel || strcmp(t->chans[i]->name, channel) == 0)
            chans[n++] = t->chans[i];
    if (channel && n == 0) {
        free(chans);
        return false;
    }
    qsort(chans, n, sizeof(*chans), cmp_channel);
    ts->topic_name = strdup(t->name);
    ts->depth = topic_depth(t);
    ts->backend_depth = topic_backend_depth(t);
    ts->message_count = t->message_count;
    ts->message_bytes = t->message_bytes;
    ts->paused = t->paused;
    ts->limits_shown = topic_limits_shown(t);
    ts->ttl_ns = t->limits.ttl_ns;
    ts->max_depth = t->limits.max_depth;
    ts->overflow_policy = topic_overflow_name(t->limits.policy);
    ts->expired_count = t->drops.expired;
    ts->dropped_count = t->drops.dropped;
    ts->channels = calloc(n ? n : 1, sizeof(*ts->channels));
    if (ts->channels) {
        for (size_t i = 0; i < n; i++)
            channel_fill(&ts->channels[ts->n_channels++], chans[i], include_clients, now_ns);
        for (size_t i = 0; i < ts->n_channels; i++)
            ts->channels[i].limits_shown = ts->limits_shown;
    }
    /* The topic's latency merges every channel's. */
    memset(&ts->e2e, 0, sizeof(ts->e2e));
    for (size_t i = 0; i < t->nchans; i++) {
        struct nsq_quantile_result r;
        e2e_result(t->chans[i], now_ns, &r);
        if (r.n == 0)
            continue;
        if (ts->e2e.n == 0)
            ts->e2e = r;
        else
            nsq_quantile_merge(&ts->e2e, &r);
    }
    free(chans);
    return true;
}

struct collect_ctx {
    struct topic **topics;
    size_t n;
};

static void collect_topic(struct topic *t, void *arg)
{
    struct collect_ctx *ctx = arg;
    ctx->topics[ctx->n++] = t;
}

struct nsqd_stats *nsqd_stats_collect(struct nsqd *n, const char *topic, const char *channel,
                                      bool include_clients, bool include_mem)
{
    struct nsqd_stats *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    char health[512];
    nsqd_health_string(n, health, sizeof(health));
    s->version = strdup(NSQ_VERSION);
    s->health = strdup(health);
    s->start_time = n->start_time;
    s->start_ns = n->start_time * NSQ_NS_PER_SEC;
    s->now_ns = nsq_now_ns();

    size_t total = name_map_len(n->topics);
    struct collect_ctx ctx = {.topics = calloc(total ? total : 1, sizeof(struct topic *))};
    if (!ctx.topics) {
        nsqd_stats_free(s);
        return NULL;
    }
    if (topic) {
        struct topic *t = nsqd_find_topic(n, topic);
        if (t)
            ctx.topics[ctx.n++] = t;
        else
            s->topics_null = true;
    } else {
        nsqd_foreach_topic(n, collect_topic, &ctx);
        qsort(ctx.topics, ctx.n, sizeof(*ctx.topics), cmp_topic);
    }
    s->topics = calloc(ctx.n ? ctx.n : 1, sizeof(*s->topics));
    if (s->topics) {
        for (size_t i = 0; i < ctx.n; i++) {
            struct nsqd_topic_stats *ts = &s->topics[s->n_topics];
            if (topic_fill(ts, ctx.topics[i], channel, include_clients, s->now_ns))
                s->n_topics++;
            else
                nsqd_topic_stats_clear(ts);
        }
    }
    free(ctx.topics);

    if (include_mem) {
        s->has_memory = true;
        nsqd_stats_memory_collect(&s->memory);
    }
    if (include_clients) {
        size_t cap = n->client_count ? n->client_count : 1;
        s->producers = calloc(cap, sizeof(*s->producers));
        for (struct client *c = n->clients; s->producers && c; c = c->all_next) {
            if (c->npub_counts == 0)
                continue;
            struct nsqd_client_stats *cs = &s->producers[s->n_producers];
            if (client_fill(cs, c, topic))
                s->n_producers++;
            else
                nsqd_client_stats_clear(cs);
        }
    }
    return s;
}
