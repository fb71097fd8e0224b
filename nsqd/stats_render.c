/*
 * stats_render: GET /stats bodies from a snapshot (stats.h), byte for byte as upstream writes them.
 *
 * JSON (http-api.md §2.1) goes through nsq_json, which reproduces Go's encoder (escaping, float
 * form); this file only fixes the key order, the null-versus-[] choices and the fields upstream
 * omits when empty. The text format (§2.2) reproduces Go's fmt padding, which counts runes, not
 * bytes, hence the UTF-8 aware padding helper below.
 *
 * Also here: freeing snapshots and reading the allocator figures for the memory section, so that
 * everything a snapshot needs besides the live objects sits next to its consumers.
 */
#include "stats.h"

#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "nsq_json.h"
#include "nsq_options.h"
#include "nsq_version.h"

#define NS_PER_SEC   1000000000LL
#define NS_PER_MSEC  1000000.0
#define NS_PER_USEC  1000.0
#define DURATION_LEN 64

/* ---- freeing ---- */

void nsqd_client_stats_clear(struct nsqd_client_stats *c)
{
    if (c == NULL)
        return;
    free(c->client_id);
    free(c->hostname);
    free(c->version);
    free(c->remote_address);
    free(c->user_agent);
    free(c->topology_zone);
    free(c->topology_region);
    free(c->auth_identity);
    free(c->auth_identity_url);
    for (size_t i = 0; i < c->n_pub_counts; i++)
        free(c->pub_counts[i].topic);
    free(c->pub_counts);
    free(c->tls_cipher_suite);
    free(c->tls_version);
    free(c->tls_negotiated_protocol);
    memset(c, 0, sizeof(*c));
}

void nsqd_channel_stats_clear(struct nsqd_channel_stats *c)
{
    if (c == NULL)
        return;
    free(c->channel_name);
    for (size_t i = 0; i < c->n_clients; i++)
        nsqd_client_stats_clear(&c->clients[i]);
    free(c->clients);
    memset(c, 0, sizeof(*c));
}

void nsqd_topic_stats_clear(struct nsqd_topic_stats *t)
{
    if (t == NULL)
        return;
    free(t->topic_name);
    for (size_t i = 0; i < t->n_channels; i++)
        nsqd_channel_stats_clear(&t->channels[i]);
    free(t->channels);
    memset(t, 0, sizeof(*t));
}

void nsqd_stats_free(struct nsqd_stats *s)
{
    if (s == NULL)
        return;
    free(s->version);
    free(s->health);
    for (size_t i = 0; i < s->n_topics; i++)
        nsqd_topic_stats_clear(&s->topics[i]);
    free(s->topics);
    for (size_t i = 0; i < s->n_producers; i++)
        nsqd_client_stats_clear(&s->producers[i]);
    free(s->producers);
    free(s);
}

/* ---- memory ---- */

void nsqd_stats_memory_collect(struct nsqd_memory_stats *m)
{
    memset(m, 0, sizeof(*m));
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    struct mallinfo2 mi = mallinfo2();
    m->heap_idle_bytes = mi.fordblks;
    m->heap_in_use_bytes = mi.uordblks + mi.hblkhd;
    m->heap_released_bytes = mi.keepcost;
#endif
}

/* ---- JSON ---- */

static const char *str_or_empty(const char *s)
{
    return s ? s : "";
}

static void json_kv_str(struct nsq_json *j, const char *key, const char *v)
{
    nsq_json_key(j, key);
    nsq_json_string(j, str_or_empty(v));
}

static void json_kv_int(struct nsq_json *j, const char *key, int64_t v)
{
    nsq_json_key(j, key);
    nsq_json_int(j, v);
}

static void json_kv_uint(struct nsq_json *j, const char *key, uint64_t v)
{
    nsq_json_key(j, key);
    nsq_json_uint(j, v);
}

static void json_kv_bool(struct nsq_json *j, const char *key, bool v)
{
    nsq_json_key(j, key);
    nsq_json_bool(j, v);
}

static void render_latency_json(struct nsq_json *j, const struct nsq_quantile_result *r)
{
    nsq_json_object_begin(j);
    json_kv_uint(j, "count", r->count);
    nsq_json_key(j, "percentiles");
    if (r->n == 0) {
        nsq_json_null(j);
    } else {
        nsq_json_array_begin(j);
        for (size_t i = 0; i < r->n; i++) {
            nsq_json_object_begin(j);
            nsq_json_key(j, "quantile");
            nsq_json_double(j, r->quantile[i]);
            nsq_json_key(j, "value");
            nsq_json_double(j, r->value[i]);
            nsq_json_object_end(j);
        }
        nsq_json_array_end(j);
    }
    nsq_json_object_end(j);
}

/* Deliveries by locality class (topology.h), each only when non-zero (upstream's omitempty). */
static void render_topology_counts_json(struct nsq_json *j, uint64_t zone, uint64_t region,
                                        uint64_t global)
{
    if (zone > 0)
        json_kv_uint(j, "zone_local_msg_count", zone);
    if (region > 0)
        json_kv_uint(j, "region_local_msg_count", region);
    if (global > 0)
        json_kv_uint(j, "global_msg_count", global);
}

static void render_client_json(struct nsq_json *j, const struct nsqd_client_stats *c)
{
    nsq_json_object_begin(j);
    json_kv_str(j, "client_id", c->client_id);
    json_kv_str(j, "hostname", c->hostname);
    json_kv_str(j, "version", c->version);
    json_kv_str(j, "remote_address", c->remote_address);
    json_kv_int(j, "state", c->state);
    json_kv_int(j, "ready_count", c->ready_count);
    json_kv_int(j, "in_flight_count", c->in_flight_count);
    json_kv_uint(j, "message_count", c->message_count);
    render_topology_counts_json(j, c->zone_local_msg_count, c->region_local_msg_count,
                                c->global_msg_count);
    json_kv_uint(j, "finish_count", c->finish_count);
    json_kv_uint(j, "requeue_count", c->requeue_count);
    json_kv_int(j, "connect_ts", c->connect_ts);
    json_kv_int(j, "sample_rate", c->sample_rate);
    json_kv_bool(j, "deflate", c->deflate);
    json_kv_bool(j, "snappy", c->snappy);
    json_kv_str(j, "user_agent", c->user_agent);
    if (c->authed)
        json_kv_bool(j, "authed", true);
    if (c->auth_identity != NULL && c->auth_identity[0] != '\0')
        json_kv_str(j, "auth_identity", c->auth_identity);
    if (c->auth_identity_url != NULL && c->auth_identity_url[0] != '\0')
        json_kv_str(j, "auth_identity_url", c->auth_identity_url);
    if (c->topology) {
        json_kv_str(j, "topology_zone", c->topology_zone);
        json_kv_str(j, "topology_region", c->topology_region);
    }
    if (c->n_pub_counts > 0) {
        nsq_json_key(j, "pub_counts");
        nsq_json_array_begin(j);
        for (size_t i = 0; i < c->n_pub_counts; i++) {
            nsq_json_object_begin(j);
            json_kv_str(j, "topic", c->pub_counts[i].topic);
            json_kv_uint(j, "count", c->pub_counts[i].count);
            nsq_json_object_end(j);
        }
        nsq_json_array_end(j);
    }
    json_kv_bool(j, "tls", c->tls);
    json_kv_str(j, "tls_cipher_suite", c->tls_cipher_suite);
    json_kv_str(j, "tls_version", c->tls_version);
    json_kv_str(j, "tls_negotiated_protocol", c->tls_negotiated_protocol);
    json_kv_bool(j, "tls_negotiated_protocol_is_mutual", c->tls_negotiated_protocol_is_mutual);
    nsq_json_object_end(j);
}

static void render_channel_json(struct nsq_json *j, const struct nsqd_channel_stats *c)
{
    nsq_json_object_begin(j);
    json_kv_str(j, "channel_name", c->channel_name);
    json_kv_int(j, "depth", c->depth);
    json_kv_int(j, "backend_depth", c->backend_depth);
    json_kv_int(j, "in_flight_count", c->in_flight_count);
    json_kv_int(j, "deferred_count", c->deferred_count);
    json_kv_uint(j, "message_count", c->message_count);
    render_topology_counts_json(j, c->zone_local_msg_count, c->region_local_msg_count,
                                c->global_msg_count);
    json_kv_uint(j, "requeue_count", c->requeue_count);
    json_kv_uint(j, "timeout_count", c->timeout_count);
    if (c->dead_letter) {
        json_kv_int(j, "max_attempts", c->max_attempts);
        json_kv_uint(j, "dead_letter_count", c->dead_letter_count);
    }
    json_kv_int(j, "client_count", c->client_count);
    nsq_json_key(j, "clients");
    if (c->clients_null) {
        nsq_json_null(j);
    } else {
        nsq_json_array_begin(j);
        for (size_t i = 0; i < c->n_clients; i++)
            render_client_json(j, &c->clients[i]);
        nsq_json_array_end(j);
    }
    json_kv_bool(j, "paused", c->paused);
    nsq_json_key(j, "e2e_processing_latency");
    render_latency_json(j, &c->e2e);
    if (c->limits_shown) {
        json_kv_uint(j, "expired_count", c->expired_count);
        json_kv_uint(j, "dropped_count", c->dropped_count);
    }
    nsq_json_object_end(j);
}

static void render_topic_json(struct nsq_json *j, const struct nsqd_topic_stats *t)
{
    nsq_json_object_begin(j);
    json_kv_str(j, "topic_name", t->topic_name);
    nsq_json_key(j, "channels");
    nsq_json_array_begin(j);
    for (size_t i = 0; i < t->n_channels; i++)
        render_channel_json(j, &t->channels[i]);
    nsq_json_array_end(j);
    json_kv_int(j, "depth", t->depth);
    json_kv_int(j, "backend_depth", t->backend_depth);
    json_kv_uint(j, "message_count", t->message_count);
    json_kv_uint(j, "message_bytes", t->message_bytes);
    json_kv_bool(j, "paused", t->paused);
    nsq_json_key(j, "e2e_processing_latency");
    render_latency_json(j, &t->e2e);
    if (t->limits_shown) {
        json_kv_int(j, "ttl", t->ttl_ns);
        json_kv_int(j, "max_depth", t->max_depth);
        json_kv_str(j, "overflow_policy", t->overflow_policy);
        json_kv_uint(j, "expired_count", t->expired_count);
        json_kv_uint(j, "dropped_count", t->dropped_count);
    }
    nsq_json_object_end(j);
}

/* The memory keys in upstream's order, shared by the JSON and the text renderer. */
struct mem_field {
    const char *name;
    size_t offset;
};

static const struct mem_field mem_fields[] = {
        {"heap_objects", offsetof(struct nsqd_memory_stats, heap_objects)},
        {"heap_idle_bytes", offsetof(struct nsqd_memory_stats, heap_idle_bytes)},
        {"heap_in_use_bytes", offsetof(struct nsqd_memory_stats, heap_in_use_bytes)},
        {"heap_released_bytes", offsetof(struct nsqd_memory_stats, heap_released_bytes)},
        {"gc_pause_usec_100", offsetof(struct nsqd_memory_stats, gc_pause_usec_100)},
        {"gc_pause_usec_99", offsetof(struct nsqd_memory_stats, gc_pause_usec_99)},
        {"gc_pause_usec_95", offsetof(struct nsqd_memory_stats, gc_pause_usec_95)},
        {"next_gc_bytes", offsetof(struct nsqd_memory_stats, next_gc_bytes)},
        {"gc_total_runs", offsetof(struct nsqd_memory_stats, gc_total_runs)},
};

static uint64_t mem_value(const struct nsqd_memory_stats *m, const struct mem_field *f)
{
    uint64_t v;
    memcpy(&v, (const char *)m + f->offset, sizeof(v));
    return v;
}

void nsqd_stats_render_json(const struct nsqd_stats *s, bool include_mem, struct evbuffer *out)
{
    struct nsq_json j;
    nsq_json_init(&j, out);
    nsq_json_object_begin(&j);
    json_kv_str(&j, "version", s->version ? s->version : NSQ_VERSION);
    json_kv_str(&j, "health", s->health ? s->health : "OK");
    json_kv_int(&j, "start_time", s->start_time);
    nsq_json_key(&j, "topics");
    if (s->topics_null) {
        nsq_json_null(&j);
    } else {
        nsq_json_array_begin(&j);
        for (size_t i = 0; i < s->n_topics; i++)
            render_topic_json(&j, &s->topics[i]);
        nsq_json_array_end(&j);
    }
    if (include_mem && s->has_memory) {
        nsq_json_key(&j, "memory");
        nsq_json_object_begin(&j);
        for (size_t i = 0; i < sizeof(mem_fields) / sizeof(mem_fields[0]); i++)
            json_kv_uint(&j, mem_fields[i].name, mem_value(&s->memory, &mem_fields[i]));
        nsq_json_object_end(&j);
    }
    nsq_json_key(&j, "producers");
    if (s->n_producers == 0) {
        nsq_json_null(&j);
    } else {
        nsq_json_array_begin(&j);
        for (size_t i = 0; i < s->n_producers; i++)
            render_client_json(&j, &s->producers[i]);
        nsq_json_array_end(&j);
    }
    nsq_json_object_end(&j);
}

/* ---- text ---- */

/* Number of runes (UTF-8 code points, invalid bytes counting one each), as Go's fmt width counts.
 */
static size_t rune_count(const char *s)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p & 0xC0) != 0x80)
            n++;
    return n;
}

/* "%-<width>s" with Go's rune-counted width. */
static void add_padded(struct evbuffer *out, const char *s, size_t width)
{
    s = str_or_empty(s);
    evbuffer_add(out, s, strlen(s));
    for (size_t n = rune_count(s); n < width; n++)
        evbuffer_add(out, " ", 1);
}

/* Latency text: each value as %.1f plus unit, joined by ", " (empty without percentiles). */
static void add_latency_text(struct evbuffer *out, const struct nsq_quantile_result *r)
{
    for (size_t i = 0; i < r->n; i++) {
        double v = r->value[i];
        if (i > 0)
            evbuffer_add(out, ", ", 2);
        if (v > (double)NS_PER_SEC)
            evbuffer_add_printf(out, "%.1fs", v / (double)NS_PER_SEC);
        else if (v > NS_PER_MSEC)
            evbuffer_add_printf(out, "%.1fms", v / NS_PER_MSEC);
        else if (v > NS_PER_USEC)
            evbuffer_add_printf(out, "%.1fus", v / NS_PER_USEC);
        else
            evbuffer_add_printf(out, "%.1fns", v);
    }
}

/* Go's time.Since(time.Unix(connect_ts, 0)).Truncate(time.Second).String(). */
static void format_connected(const struct nsqd_stats *s, int64_t connect_ts, char *buf, size_t len)
{
    int64_t d = s->now_ns - connect_ts * NS_PER_SEC;
    d -= d % NS_PER_SEC;
    nsq_format_duration(d, buf, len);
}

/* The port part of "ip:port" ("" if none). */
static const char *remote_port(const char *addr)
{
    const char *colon = addr ? strrchr(addr, ':') : NULL;
    return colon ? colon + 1 : "";
}

/* One client as upstream's ClientV2Stats.String(): producer form when it has pub_counts. */
static void add_client_text(struct evbuffer *out, const struct nsqd_stats *s,
                            const struct nsqd_client_stats *c)
{
    char connected[DURATION_LEN];
    struct evbuffer *id = evbuffer_new();
    char *idstr;
    size_t idlen;

    if (id == NULL)
        return;
    format_connected(s, c->connect_ts, connected, sizeof(connected));
    evbuffer_add_printf(id, "%s:%s %s", str_or_empty(c->hostname), remote_port(c->remote_address),
                        str_or_empty(c->user_agent));
    idlen = evbuffer_get_length(id);
    evbuffer_add(id, "", 1);
    idstr = (char *)evbuffer_pullup(id, -1);

    evbuffer_add_printf(out, "[%s ", str_or_empty(c->version));
    add_padded(out, idlen > 0 ? idstr : "", 21);
    if (c->n_pub_counts > 0) {
        uint64_t total = 0;
        for (size_t i = 0; i < c->n_pub_counts; i++)
            total += c->pub_counts[i].count;
        evbuffer_add_printf(out, "] msgs: %-8" PRIu64 " topics: ", total);
        for (size_t i = 0; i < c->n_pub_counts; i++)
            evbuffer_add_printf(out, "%s%s=%" PRIu64, i > 0 ? "," : "",
                                str_or_empty(c->pub_counts[i].topic), c->pub_counts[i].count);
        evbuffer_add_printf(out, " connected: %s", connected);
    } else {
        evbuffer_add_printf(out,
                            "] state: %d inflt: %-4" PRId64 " rdy: %-4" PRId64 " fin: %-8" PRIu64
                            " re-q: %-8" PRIu64 " msgs: %-8" PRIu64 " connected: %s",
                            (int)c->state, c->in_flight_count, c->ready_count, c->finish_count,
                            c->requeue_count, c->message_count, connected);
    }
    evbuffer_free(id);
}

/* A channel's deliveries by locality class (topology.h), only once there are any, so that the
   line is upstream's while the experiment is off. */
static void add_topology_text(struct evbuffer *out, const struct nsqd_channel_stats *c)
{
    if (c->zone_local_msg_count == 0 && c->region_local_msg_count == 0 && c->global_msg_count == 0)
        return;
    evbuffer_add_printf(out, " zone-local: %" PRIu64 " region-local: %" PRIu64 " global: %" PRIu64,
                        c->zone_local_msg_count, c->region_local_msg_count, c->global_msg_count);
}

/* A topic's TTL and depth limits and its own counters, only where limits are shown (upstream's
   line otherwise): " ttl: 30s max-depth: 100 policy: reject expired: 2 dropped: 0", the ttl and
   max-depth parts only when set. */
static void add_topic_limits_text(struct evbuffer *out, const struct nsqd_topic_stats *t)
{
    char ttl[DURATION_LEN];
    if (!t->limits_shown)
        return;
    if (t->ttl_ns > 0) {
        nsq_format_duration(t->ttl_ns, ttl, sizeof(ttl));
        evbuffer_add_printf(out, " ttl: %s", ttl);
    }
    if (t->max_depth > 0)
        evbuffer_add_printf(out, " max-depth: %" PRId64 " policy: %s", t->max_depth,
                            t->overflow_policy);
    evbuffer_add_printf(out, " expired: %" PRIu64 " dropped: %" PRIu64, t->expired_count,
                        t->dropped_count);
}

/* A channel's TTL and depth counters, only where its topic's limits are shown. */
static void add_channel_limits_text(struct evbuffer *out, const struct nsqd_channel_stats *c)
{
    if (c->limits_shown)
        evbuffer_add_printf(out, " expired: %" PRIu64 " dropped: %" PRIu64, c->expired_count,
                            c->dropped_count);
}

/* Go's time.Format(time.RFC3339) in local time: "2006-01-02T15:04:05Z07:00". */
static void add_rfc3339(struct evbuffer *out, int64_t unix_ns)
{
    time_t t = (time_t)(unix_ns / NS_PER_SEC);
    struct tm tm;
    char buf[64];
    long off;

    if (unix_ns < 0 && unix_ns % NS_PER_SEC != 0)
        t--;
    localtime_r(&t, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    evbuffer_add(out, buf, strlen(buf));
    off = tm.tm_gmtoff;
    if (off == 0) {
        evbuffer_add(out, "Z", 1);
    } else {
        char sign = off < 0 ? '-' : '+';
        if (off < 0)
            off = -off;
        evbuffer_add_printf(out, "%c%02ld:%02ld", sign, off / 3600, (off / 60) % 60);
    }
}

void nsqd_stats_render_text(const struct nsqd_stats *s, bool include_mem, struct evbuffer *out)
{
    char uptime[DURATION_LEN];

    nsq_format_duration(s->now_ns - s->start_ns, uptime, sizeof(uptime));
    evbuffer_add_printf(out, "%s\n", nsq_version_string("nsqd"));
    evbuffer_add(out, "start_time ", 11);
    add_rfc3339(out, s->start_ns);
    evbuffer_add_printf(out, "\nuptime %s\n", uptime);
    evbuffer_add_printf(out, "\nHealth: %s\n", s->health ? s->health : "OK");

    if (include_mem && s->has_memory) {
        evbuffer_add(out, "\nMemory:\n", 9);
        for (size_t i = 0; i < sizeof(mem_fields) / sizeof(mem_fields[0]); i++)
            evbuffer_add_printf(out, "   %-25s\t%" PRIu64 "\n", mem_fields[i].name,
                                mem_value(&s->memory, &mem_fields[i]));
    }

    if (s->n_topics == 0)
        evbuffer_add_printf(out, "\nTopics: None\n");
    else
        evbuffer_add_printf(out, "\nTopics:");

    for (size_t i = 0; i < s->n_topics; i++) {
        const struct nsqd_topic_stats *t = &s->topics[i];
        evbuffer_add_printf(out, "\n%s[", t->paused ? "*P " : "   ");
        add_padded(out, t->topic_name, 15);
        evbuffer_add_printf(
                out, "] depth: %-5" PRId64 " be-depth: %-5" PRId64 " msgs: %-8" PRIu64 " e2e%%: ",
                t->depth, t->backend_depth, t->message_count);
        add_latency_text(out, &t->e2e);
        add_topic_limits_text(out, t);
        evbuffer_add(out, "\n", 1);
        for (size_t k = 0; k < t->n_channels; k++) {
            const struct nsqd_channel_stats *c = &t->channels[k];
            evbuffer_add_printf(out, "%s[", c->paused ? "   *P " : "      ");
            add_padded(out, c->channel_name, 25);
            evbuffer_add_printf(out,
                                "] depth: %-5" PRId64 " be-depth: %-5" PRId64 " inflt: %-4" PRId64
                                " def: %-4" PRId64 " re-q: %-5" PRIu64 " timeout: %-5" PRIu64
                                " msgs: %-8" PRIu64 " e2e%%: ",
                                c->depth, c->backend_depth, c->in_flight_count, c->deferred_count,
                                c->requeue_count, c->timeout_count, c->message_count);
            add_latency_text(out, &c->e2e);
            add_topology_text(out, c);
            if (c->dead_letter)
                evbuffer_add_printf(out, " max-attempts: %" PRId64 " dead: %" PRIu64,
                                    c->max_attempts, c->dead_letter_count);
            add_channel_limits_text(out, c);
            evbuffer_add(out, "\n", 1);
            for (size_t m = 0; m < c->n_clients; m++) {
                evbuffer_add(out, "        ", 8);
                add_client_text(out, s, &c->clients[m]);
                evbuffer_add(out, "\n", 1);
            }
        }
    }

    if (s->n_producers == 0) {
        evbuffer_add_printf(out, "\nProducers: None\n");
    } else {
        evbuffer_add_printf(out, "\nProducers:\n");
        for (size_t i = 0; i < s->n_producers; i++) {
            evbuffer_add(out, "   ", 3);
            add_client_text(out, s, &s->producers[i]);
            evbuffer_add(out, "\n", 1);
        }
    }
}
