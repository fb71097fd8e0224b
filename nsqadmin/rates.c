/*
 * rates: periodic sampler of cluster-wide counters (see rates.h). A poll is one producers query
 * followed by one stats query; a poll still running when the timer fires is not overlapped (the
 * tick is skipped), so a slow cluster costs at most one poll in flight.
 */
#include "rates.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "clusterinfo.h"
#include "nsq_json.h"
#include "nsq_time.h"

#define NS_PER_SEC   1000000000LL
#define NS_PER_USEC  1000LL
#define NS_PER_SEC_D 1e9

struct rate_sample {
    int64_t ts_ns;
    int64_t message_count;
    int64_t depth;
};

struct series {
    struct series *next;
    char *key; /* "<topic>" or "<topic>:<channel>" (':' cannot occur in names) */
    struct rate_sample *ring;
    size_t head, count;             /* head: index of the oldest sample */
    int64_t poll_count, poll_depth; /* sums of the poll in progress */
    bool seen;
};

struct rates {
    struct clusterinfo *ci;
    int64_t interval_ns;
    size_t samples;
    struct event *timer;
    struct series *series;
    struct ci_arena *poll; /* non-NULL while a poll is in flight */
};

static struct series *series_get(struct rates *r, const char *key, bool create)
{
    for (struct series *s = r->series; s != NULL; s = s->next)
        if (strcmp(s->key, key) == 0)
            return s;
    if (!create)
        return NULL;
    struct series *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->key = strdup(key);
    s->ring = calloc(r->samples, sizeof(*s->ring));
    if (s->key == NULL || s->ring == NULL) {
        free(s->key);
        free(s->ring);
        free(s);
        return NULL;
    }
    s->next = r->series;
    r->series = s;
    return s;
}

static void series_free(struct series *s)
{
    free(s->key);
    free(s->ring);
    free(s);
}

static void series_account(struct rates *r, const char *key, int64_t count, int64_t depth)
{
    struct series *s = series_get(r, key, true);
    if (s == NULL)
        return;
    if (!s->seen) {
        s->seen = true;
        s->poll_count = s->poll_depth = 0;
    }
    s->poll_count += count;
    s->poll_depth += depth;
}

static void on_stats(struct ci_stats *stats, struct ci_result *res, void *arg)
{
    struct rates *r = arg;
    int64_t now = nsq_now_ns();
    if (!res->failed) {
        for (struct series *s = r->series; s != NULL; s = s->next)
            s->seen = false;
        for (size_t i = 0; i < stats->topics.n; i++) {
            const struct ci_topic *t = stats->topics.v[i];
            series_account(r, t->topic_name, t->message_count, t->depth);
            for (size_t k = 0; k < t->channels.n; k++) {
                const struct ci_channel *c = t->channels.v[k];
                size_t len = strlen(t->topic_name) + strlen(c->channel_name) + 2;
                char *key = malloc(len);
                if (key == NULL)
                    continue;
                snprintf(key, len, "%s:%s", t->topic_name, c->channel_name);
                series_account(r, key, c->message_count, c->depth);
                free(key);
            }
        }
        struct series **pp = &r->series;
        while (*pp != NULL) {
            struct series *s = *pp;
            if (s->seen) {
                size_t idx = (s->head + s->count) % r->samples;
                if (s->count == r->samples)
                    s->head = (s->head + 1) % r->samples;
                else
                    s->count++;
                s->ring[idx] = (struct rate_sample){now, s->poll_count, s->poll_depth};
            }
            const struct rate_sample *last =
                    s->count > 0 ? &s->ring[(s->head + s->count - 1) % r->samples] : NULL;
            if (last == NULL || now - last->ts_ns > (int64_t)r->samples * r->interval_ns) {
                *pp = s->next;
                series_free(s);
                continue;
            }
            pp = &s->next;
        }
    }
    ci_arena_free(r->poll);
    r->poll = NULL;
}

static void on_producers(struct ci_vec *producers, struct ci_result *res, void *arg)
{
    struct rates *r = arg;
    if (res->failed || producers->n == 0 ||
        ci_get_stats(r->ci, r->poll, producers, NULL, NULL, false, on_stats, r) != 0) {
        ci_arena_free(r->poll);
        r->poll = NULL;
    }
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct rates *r = arg;
    if (r->poll != NULL)
        return;
    r->poll = ci_arena_new();
    if (r->poll == NULL)
        return;
    if (ci_get_producers(r->ci, r->poll, on_producers, r) != 0) {
        ci_arena_free(r->poll);
        r->poll = NULL;
    }
}

struct rates *rates_new(struct clusterinfo *ci, int64_t interval_ns, size_t samples)
{
    struct rates *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->ci = ci;
    r->interval_ns = interval_ns;
    r->samples = samples > 0 ? samples : 1;
    r->timer = event_new(clusterinfo_base(ci), -1, EV_PERSIST, on_tick, r);
    struct timeval tv = {(time_t)(interval_ns / NS_PER_SEC),
                         (suseconds_t)(interval_ns % NS_PER_SEC / NS_PER_USEC)};
    if (r->timer == NULL || event_add(r->timer, &tv) != 0) {
        rates_free(r);
        return NULL;
    }
    /* first sample right away */
    event_active(r->timer, EV_TIMEOUT, 0);
    return r;
}

void rates_free(struct rates *r)
{
    if (r == NULL)
        return;
    if (r->timer != NULL)
        event_free(r->timer);
    while (r->series != NULL) {
        struct series *s = r->series;
        r->series = s->next;
        series_free(s);
    }
    /* a poll in flight: the clusterinfo is closing (see rates.h), its callbacks will not come */
    ci_arena_free(r->poll);
    free(r);
}

void rates_json(struct rates *r, const char *topic, const char *channel, struct nsq_json *j)
{
    char key[1024];
    if (channel != NULL)
        snprintf(key, sizeof(key), "%s:%s", topic, channel);
    else
        snprintf(key, sizeof(key), "%s", topic);
    const struct series *s = series_get(r, key, false);
    nsq_json_object_begin(j);
    nsq_json_kv_string(j, "topic", topic);
    nsq_json_kv_string(j, "channel", channel != NULL ? channel : "");
    nsq_json_kv_int(j, "interval", r->interval_ns);
    nsq_json_key(j, "samples");
    nsq_json_array_begin(j);
    for (size_t i = 0; s != NULL && i < s->count; i++) {
        const struct rate_sample *x = &s->ring[(s->head + i) % r->samples];
        nsq_json_object_begin(j);
        nsq_json_kv_int(j, "timestamp", x->ts_ns / NS_PER_SEC);
        nsq_json_kv_int(j, "message_count", x->message_count);
        nsq_json_kv_int(j, "depth", x->depth);
        if (i == 0) {
            nsq_json_kv_null(j, "rate");
        } else {
            const struct rate_sample *p = &s->ring[(s->head + i - 1) % r->samples];
            double dt = (double)(x->ts_ns - p->ts_ns) / NS_PER_SEC_D;
            int64_t dc = x->message_count - p->message_count;
            nsq_json_kv_double(j, "rate", dt > 0 && dc > 0 ? (double)dc / dt : 0);
        }
        nsq_json_object_end(j);
    }
    nsq_json_array_end(j);
    nsq_json_object_end(j);
}
