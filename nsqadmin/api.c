/*
 * api: the steps of each nsqadmin API operation over clusterinfo queries (see api.h).
 *
 * Error reporting follows upstream: a query step that partly failed adds one warning entry (its
 * node errors joined by "\n"); an admin action collects the errors of all its steps into one
 * entry; a step that failed entirely ends the operation with 502 UPSTREAM_ERROR.
 */
#include "api.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <event2/http.h>

#include "nsq_json.h"

struct api_call *api_call_new(struct clusterinfo *ci, enum api_op op)
{
    struct ci_arena *a = ci_arena_new();
    if (a == NULL)
        return NULL;
    struct api_call *call = ci_alloc(a, sizeof(*call));
    if (call == NULL) {
        ci_arena_free(a);
        return NULL;
    }
    call->ci = ci;
    call->a = a;
    call->op = op;
    return call;
}

void api_call_free(struct api_call *call)
{
    if (call == NULL)
        return;
    if (call->body != NULL)
        evbuffer_free(call->body);
    ci_arena_free(call->a);
}

const char *api_call_message(struct api_call *call)
{
    if (call->messages.n == 0)
        return "";
    size_t len = sizeof("WARNING: ");
    for (size_t i = 0; i < call->messages.n; i++)
        len += strlen(call->messages.v[i]) + 2;
    char *s = ci_alloc(call->a, len);
    if (s == NULL)
        return "WARNING: ";
    strcpy(s, "WARNING: ");
    for (size_t i = 0; i < call->messages.n; i++) {
        if (i > 0)
            strcat(s, "; ");
        strcat(s, call->messages.v[i]);
    }
    return s;
}

/* ---- completion ---- */

static void finish_error(struct api_call *call, int status, const char *text)
{
    call->status = status;
    call->error_text = text;
    call->done(call);
}

static void finish_upstream(struct api_call *call, const char *fail_text)
{
    finish_error(call, 502, ci_sprintf(call->a, "UPSTREAM_ERROR: %s", fail_text));
}

/* Starts the JSON answer object; NULL (after finishing with 500) when out of memory. */
static struct evbuffer *answer_begin(struct api_call *call, struct nsq_json *j)
{
    call->body = evbuffer_new();
    if (call->body == NULL) {
        finish_error(call, HTTP_INTERNAL, "INTERNAL_ERROR");
        return NULL;
    }
    nsq_json_init(j, call->body);
    nsq_json_object_begin(j);
    return call->body;
}

static void answer_end(struct api_call *call, struct nsq_json *j)
{
    nsq_json_kv_string(j, "message", api_call_message(call));
    nsq_json_object_end(j);
    call->status = HTTP_OK;
    call->done(call);
}

/* Records a query step's outcome. Returns false (after finishing with 502) on total failure. */
static bool step_ok(struct api_call *call, struct ci_result *res)
{
    if (res->failed) {
        finish_upstream(call, res->fail_text);
        return false;
    }
    if (res->errs.items.n > 0)
        ci_vec_push(call->a, &call->messages, (void *)ci_errors_join(call->a, &res->errs));
    return true;
}

static void start_failed(struct api_call *call, int rc)
{
    if (rc != 0)
        finish_error(call, HTTP_INTERNAL, "INTERNAL_ERROR");
}

/* ---- GET /api/topics ---- */

static void on_topics(struct ci_vec *names, struct ci_result *res, void *arg)
{
    struct api_call *call = arg;
    if (!step_ok(call, res))
        return;
    struct nsq_json j;
    if (answer_begin(call, &j) == NULL)
        return;
    nsq_json_key(&j, "topics");
    nsq_json_array_begin(&j);
    for (size_t i = 0; i < names->n; i++)
        nsq_json_string(&j, names->v[i]);
    nsq_json_array_end(&j);
    answer_end(call, &j);
}

/* inactive=true: topics with no producer on any lookupd → their channels (a map: sorted keys) */
static int cmp_cstr(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

static void on_inactive_channels(struct ci_reply *replies, size_t n, void *arg)
{
    struct api_call *call = arg;
    size_t nl = call->pending; /* lookupds asked per topic */
    struct nsq_json j;
    if (answer_begin(call, &j) == NULL)
        return;
    nsq_json_key(&j, "topics");
    nsq_json_object_begin(&j);
    for (size_t t = 0; t < call->inactive_topics.n; t++) {
        struct ci_vec chans = {0};
        for (size_t l = 0; l < nl && t * nl + l < n; l++) {
            cJSON *doc = cJSON_Parse(replies[t * nl + l].body);
            const cJSON *c;
            cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(doc, "channels"))
            {
                bool dup = false;
                for (size_t k = 0; cJSON_IsString(c) && k < chans.n; k++)
                    dup = dup || strcmp(chans.v[k], c->valuestring) == 0;
                if (cJSON_IsString(c) && !dup)
                    ci_vec_push(call->a, &chans, ci_strdup(call->a, c->valuestring));
            }
            cJSON_Delete(doc);
        }
        /* sorted like upstream's channel lists */
        if (chans.n > 1)
            qsort(chans.v, chans.n, sizeof(*chans.v), cmp_cstr);
        nsq_json_key(&j, call->inactive_topics.v[t]);
        ci_json_vec(&j, &chans, ci_json_string_item);
    }
    nsq_json_object_end(&j);
    answer_end(call, &j);
}

static void on_inactive_lookups(struct ci_reply *replies, size_t n, void *arg)
{
    struct api_call *call = arg;
    size_t nl = call->pending;
    for (size_t t = 0; t < call->lookupd_topics.n; t++) {
        size_t producers = 0;
        for (size_t l = 0; l < nl && t * nl + l < n; l++) {
            if (replies[t * nl + l].error != NULL)
                continue;
            cJSON *doc = cJSON_Parse(replies[t * nl + l].body);
            producers +=
                    (size_t)cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(doc, "producers"));
            cJSON_Delete(doc);
        }
        if (producers == 0)
            ci_vec_push(call->a, &call->inactive_topics, call->lookupd_topics.v[t]);
    }
    size_t total = call->inactive_topics.n * nl;
    char **urls = ci_alloc(call->a, (total + 1) * sizeof(*urls));
    if (urls == NULL) {
        finish_error(call, HTTP_INTERNAL, "INTERNAL_ERROR");
        return;
    }
    /* the same lookupds as the step before, even if the option changed meanwhile */
    for (size_t t = 0; t < call->inactive_topics.n; t++)
        for (size_t l = 0; l < nl; l++)
            urls[t * nl + l] = ci_sprintf(call->a, "http://%s/channels?topic=%s", call->lookupds[l],
                                          ci_query_escape(call->a, call->inactive_topics.v[t]));
    start_failed(call, ci_fanout(call->ci, call->a, "GET", urls, total, NULL, 0,
                                 on_inactive_channels, call));
}

static void on_inactive_topics(struct ci_vec *names, struct ci_result *res, void *arg)
{
    struct api_call *call = arg;
    if (!step_ok(call, res))
        return;
    call->lookupd_topics = *names;
    size_t nl = clusterinfo_lookupd_count(call->ci);
    size_t total = names->n * nl;
    char **urls = ci_alloc(call->a, (total + 1) * sizeof(*urls));
    call->lookupds = ci_alloc(call->a, (nl + 1) * sizeof(*call->lookupds));
    call->pending = nl;
    for (size_t l = 0; call->lookupds != NULL && l < nl; l++)
        call->lookupds[l] = ci_strdup(call->a, clusterinfo_lookupd(call->ci, l));
    if (urls == NULL || call->lookupds == NULL) {
        finish_error(call, HTTP_INTERNAL, "INTERNAL_ERROR");
        return;
    }
    for (size_t t = 0; t < names->n; t++)
        for (size_t l = 0; l < nl; l++)
            urls[t * nl + l] = ci_sprintf(call->a, "http://%s/lookup?topic=%s",
                                          clusterinfo_lookupd(call->ci, l),
                                          ci_query_escape(call->a, names->v[t]));
    start_failed(call, ci_fanout(call->ci, call->a, "GET", urls, total, NULL, 0,
                                 on_inactive_lookups, call));
}

static int start_topics(struct api_call *call)
{
    if (!call->inactive)
        return ci_get_topics(call->ci, call->a, on_topics, call);
    if (clusterinfo_lookupd_count(call->ci) == 0) {
        /* nothing to ask: answer from the loop like every other operation */
        call->inactive_topics.n = 0;
        return ci_fanout(call->ci, call->a, "GET", NULL, 0, NULL, 0, on_inactive_channels, call);
    }
    return ci_get_topics(call->ci, call->a, on_inactive_topics, call);
}

/* ---- GET /api/topics/:topic and /api/topics/:topic/:channel ---- */

static void on_topic_stats(struct ci_stats *stats, struct ci_result *res, void *arg)
{
    struct api_call *call = arg;
    if (!step_ok(call, res))
        return;
    struct nsq_json j;
    if (call->op == API_TOPIC) {
        struct ci_topic *agg = ci_topic_aggregate_new(call->a, call->topic);
        if (agg == NULL) {
            finish_error(call, HTTP_INTERNAL, "INTERNAL_ERROR");
            return;
        }
        for (size_t i = 0; i < stats->topics.n; i++)
            ci_topic_add(call->a, agg, stats->topics.v[i]);
        if (answer_begin(call, &j) == NULL)
            return;
        ci_json_topic_members(&j, agg);
        answer_end(call, &j);
        return;
    }
    if (answer_begin(call, &j) == NULL)
        return;
    for (size_t i = 0; i < stats->channels.n; i++)
        if (strcmp(stats->channel_keys.v[i], call->channel) == 0)
            ci_json_channel_members(&j, stats->channels.v[i]);
    answer_end(call, &j);
}

static void on_topic_producers(struct ci_vec *producers, struct ci_result *res, void *arg)
{
    struct api_call *call = arg;
    if (!step_ok(call, res))
        return;
    call->producers = producers;
    bool channel = call->op == API_CHANNEL;
    start_failed(call, ci_get_stats(call->ci, call->a, producers, call->topic,
                                    channel ? call->channel : NULL, channel, on_topic_stats, call));
}

/* ---- GET /api/nodes, /api/nodes/:node, /api/counter ---- */

static void on_node_stats(struct ci_stats *stats, struct ci_result *res, void *arg)
{
    struct api_call *call = arg;
    if (!step_ok(call, res))
        return;
    struct nsq_json j;
    if (answer_begin(call, &j) == NULL)
        return;
    int64_t total_messages = 0, total_clients = 0;
    nsq_json_kv_string(&j, "node", call->node);
    nsq_json_key(&j, "topics");
    if (!stats->topics.set) {
        nsq_json_null(&j);
    } else {
        nsq_json_array_begin(&j);
        for (size_t i = 0; i < stats->topics.n; i++) {
            const struct ci_topic *t = stats->topics.v[i];
            ci_json_topic(&j, t);
            total_messages += t->message_count;
            for (size_t k = 0; k < t->channels.n; k++)
                total_clients += (int64_t)((struct ci_channel *)t->channels.v[k])->clients.n;
        }
        nsq_json_array_end(&j);
    }
    nsq_json_kv_int(&j, "total_messages", total_messages);
    nsq_json_kv_int(&j, "total_clients", total_clients);
    answer_end(call, &j);
}

static void on_counter_stats(struct ci_stats *stats, struct ci_result *res, void *arg)
{
    struct api_call *call = arg;
    if (!step_ok(call, res))
        return;
    /* a Go map keyed "<topic>:<channel>:<node>": keys sorted */
    struct ci_vec keys = {0}, nodes = {0};
    for (size_t i = 0; i < stats->channels.n; i++) {
        const struct ci_channel *c = stats->channels.v[i];
        for (size_t k = 0; k < c->nodes.n; k++) {
            const struct ci_channel *nc = c->nodes.v[k];
            char *key = ci_sprintf(call->a, "%s:%s:%s", c->topic_name, c->channel_name, nc->node);
            /* store "key\0" then remember the node object through a parallel lookup */
            ci_vec_push(call->a, &keys, key);
            ci_vec_push(call->a, &nodes, (void *)nc);
        }
    }
    /* sort indexes by key */
    size_t *idx = ci_alloc(call->a, (keys.n + 1) * sizeof(*idx));
    char **sorted = ci_alloc(call->a, (keys.n + 1) * sizeof(*sorted));
    if (idx == NULL || sorted == NULL) {
        finish_error(call, HTTP_INTERNAL, "INTERNAL_ERROR");
        return;
    }
    for (size_t i = 0; i < keys.n; i++)
        sorted[i] = keys.v[i];
    qsort(sorted, keys.n, sizeof(*sorted), cmp_cstr);
    struct nsq_json j;
    if (answer_begin(call, &j) == NULL)
        return;
    nsq_json_key(&j, "stats");
    nsq_json_object_begin(&j);
    for (size_t s = 0; s < keys.n; s++) {
        for (size_t i = 0; i < keys.n; i++) {
            if (keys.v[i] != sorted[s])
                continue;
            const struct ci_channel *nc = nodes.v[i];
            nsq_json_key(&j, sorted[s]);
            nsq_json_object_begin(&j);
            nsq_json_kv_string(&j, "node", nc->node);
            nsq_json_kv_string(&j, "topic_name", nc->topic_name);
            nsq_json_kv_string(&j, "channel_name", nc->channel_name);
            nsq_json_kv_int(&j, "message_count", nc->message_count);
            nsq_json_object_end(&j);
        }
    }
    nsq_json_object_end(&j);
    answer_end(call, &j);
}

static void on_producers(struct ci_vec *producers, struct ci_result *res, void *arg)
{
    struct api_call *call = arg;
    if (!step_ok(call, res))
        return;
    call->producers = producers;
    struct nsq_json j;
    switch (call->op) {
    case API_NODES:
        if (answer_begin(call, &j) == NULL)
            return;
        nsq_json_key(&j, "nodes");
        nsq_json_array_begin(&j);
        for (size_t i = 0; i < producers->n; i++)
            ci_json_producer(&j, producers->v[i]);
        nsq_json_array_end(&j);
        answer_end(call, &j);
        return;
    case API_NODE: {
        struct ci_vec *one = ci_alloc(call->a, sizeof(*one));
        for (size_t i = 0; one != NULL && i < producers->n; i++) {
            struct ci_producer *p = producers->v[i];
            if (strcmp(p->http_addr, call->node) == 0) {
                ci_vec_push(call->a, one, p);
                break;
            }
        }
        if (one == NULL || one->n == 0) {
            finish_error(call, one == NULL ? HTTP_INTERNAL : HTTP_NOTFOUND,
                         one == NULL ? "INTERNAL_ERROR" : "NODE_NOT_FOUND");
            return;
        }
        start_failed(call,
                     ci_get_stats(call->ci, call->a, one, NULL, NULL, true, on_node_stats, call));
        return;
    }
    case API_COUNTER:
        start_failed(call, ci_get_stats(call->ci, call->a, producers, NULL, NULL, false,
                                        on_counter_stats, call));
        return;
    default:
        finish_error(call, HTTP_INTERNAL, "INTERNAL_ERROR");
    }
}

/* ---- admin actions ---- */

/* The errors of all steps of an action, reported as one warning entry (upstream's ErrList). */
static struct ci_errors *action_errors(struct api_call *call)
{
    return ci_alloc(call->a, sizeof(struct ci_errors));
}

static void action_answer(struct api_call *call, struct ci_errors *errs)
{
    if (errs != NULL && errs->items.n > 0)
        ci_vec_push(call->a, &call->messages, (void *)ci_errors_join(call->a, errs));
    struct nsq_json j;
    if (answer_begin(call, &j) == NULL)
        return;
    answer_end(call, &j);
}

struct action_state {
    struct api_call *call;
    struct ci_errors *errs;
    bool create_channel_on_producers;
};

static void on_action_posts(struct ci_reply *replies, size_t n, void *arg);

static void add_reply_errors(struct action_state *st, struct ci_reply *replies, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (replies[i].error != NULL)
            ci_vec_push(st->call->a, &st->errs->items, (void *)replies[i].error);
}

/* POSTs path?qs to every lookupd (when to_lookupds) and every producer, then answers. */
static void action_post(struct action_state *st, const char *path, const char *qs, bool to_lookupds,
                        struct ci_vec *producers, const char *extra_url)
{
    struct api_call *call = st->call;
    size_t nl = to_lookupds ? clusterinfo_lookupd_count(call->ci) : 0;
    size_t np = producers != NULL ? producers->n : 0;
    char **urls = ci_alloc(call->a, (nl + np + 2) * sizeof(*urls));
    if (urls == NULL) {
        finish_error(call, HTTP_INTERNAL, "INTERNAL_ERROR");
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < nl; i++)
        urls[n++] =
                ci_sprintf(call->a, "http://%s%s?%s", clusterinfo_lookupd(call->ci, i), path, qs);
    for (size_t i = 0; i < np; i++)
        urls[n++] = ci_sprintf(call->a, "http://%s%s?%s",
                               ((struct ci_producer *)producers->v[i])->http_addr, path, qs);
    if (extra_url != NULL)
        urls[n++] = (char *)extra_url;
    start_failed(call, ci_fanout(call->ci, call->a, "POST", urls, n, NULL, 0, on_action_posts, st));
}

static void on_action_posts(struct ci_reply *replies, size_t n, void *arg)
{
    struct action_state *st = arg;
    add_reply_errors(st, replies, n);
    action_answer(st->call, st->errs);
}

static const char *topic_qs(struct api_call *call)
{
    return ci_sprintf(call->a, "topic=%s", ci_query_escape(call->a, call->topic));
}

static const char *channel_qs(struct api_call *call)
{
    return ci_sprintf(call->a, "topic=%s&channel=%s", ci_query_escape(call->a, call->topic),
                      ci_query_escape(call->a, call->channel));
}

static void on_action_producers(struct ci_vec *producers, struct ci_result *res, void *arg)
{
    struct action_state *st = arg;
    struct api_call *call = st->call;
    if (res->failed) {
        finish_upstream(call, res->fail_text);
        return;
    }
    for (size_t i = 0; i < res->errs.items.n; i++)
        ci_vec_push(call->a, &st->errs->items, res->errs.items.v[i]);
    switch (call->op) {
    case API_CREATE:
        action_post(st, "/channel/create", channel_qs(call), false, producers, NULL);
        return;
    case API_TOPIC_ACTION:
        action_post(st, ci_sprintf(call->a, "/topic/%s", call->action), topic_qs(call), false,
                    producers, NULL);
        return;
    case API_CHANNEL_ACTION:
        action_post(st, ci_sprintf(call->a, "/channel/%s", call->action), channel_qs(call), false,
                    producers, NULL);
        return;
    case API_TOPIC_DELETE:
        action_post(st, "/topic/delete", topic_qs(call), true, producers, NULL);
        return;
    case API_CHANNEL_DELETE:
        action_post(st, "/channel/delete", channel_qs(call), true, producers, NULL);
        return;
    default:
        finish_error(call, HTTP_INTERNAL, "INTERNAL_ERROR");
    }
}

/* create: topic (and channel) on every lookupd, then the channel on the topic's producers */
static void on_create_lookupds(struct ci_reply *replies, size_t n, void *arg)
{
    struct action_state *st = arg;
    add_reply_errors(st, replies, n);
    if (st->call->channel == NULL) {
        action_answer(st->call, st->errs);
        return;
    }
    start_failed(st->call, ci_get_topic_producers(st->call->ci, st->call->a, st->call->topic, true,
                                                  on_action_producers, st));
}

static int start_action(struct api_call *call)
{
    struct action_state *st = ci_alloc(call->a, sizeof(*st));
    if (st == NULL)
        return -ENOMEM;
    st->call = call;
    st->errs = action_errors(call);
    if (st->errs == NULL)
        return -ENOMEM;
    size_t nl = clusterinfo_lookupd_count(call->ci);
    switch (call->op) {
    case API_CREATE: {
        size_t per = call->channel != NULL ? 2 : 1;
        char **urls = ci_alloc(call->a, (nl * per + 1) * sizeof(*urls));
        if (urls == NULL)
            return -ENOMEM;
        size_t n = 0;
        for (size_t i = 0; i < nl; i++) {
            const char *l = clusterinfo_lookupd(call->ci, i);
            urls[n++] = ci_sprintf(call->a, "http://%s/topic/create?%s", l, topic_qs(call));
            if (call->channel != NULL)
                urls[n++] = ci_sprintf(call->a, "http://%s/channel/create?%s", l, channel_qs(call));
        }
        return ci_fanout(call->ci, call->a, "POST", urls, n, NULL, 0, on_create_lookupds, st);
    }
    case API_TOMBSTONE: {
        const char *qs =
                ci_sprintf(call->a, "topic=%s&node=%s", ci_query_escape(call->a, call->topic),
                           ci_query_escape(call->a, call->node));
        const char *del =
                ci_sprintf(call->a, "http://%s/topic/delete?%s", call->node, topic_qs(call));
        action_post(st, "/topic/tombstone", qs, true, NULL, del);
        return 0;
    }
    default:
        return ci_get_topic_producers(call->ci, call->a, call->topic, false, on_action_producers,
                                      st);
    }
}

/* ---- GET /api/topics/:topic/:channel/peek (not upstream: docs/peek.md) ---- */

/* A node that does not have the topic or the channel is left out of the answer. */
static bool peek_lacks_channel(const struct ci_reply *r)
{
    return r->status == HTTP_NOTFOUND && r->body != NULL &&
           (strstr(r->body, "\"CHANNEL_NOT_FOUND\"") != NULL ||
            strstr(r->body, "\"TOPIC_NOT_FOUND\"") != NULL);
}

/* {"nodes": [{"node", "peek": <the nsqd's answer>} or {"node", "error"}], "message"} */
static void on_peek_replies(struct ci_reply *replies, size_t n, void *arg)
{
    struct api_call *call = arg;
    struct nsq_json j;
    if (answer_begin(call, &j) == NULL)
        return;
    nsq_json_key(&j, "nodes");
    nsq_json_array_begin(&j);
    for (size_t i = 0; i < n; i++) {
        const struct ci_reply *r = &replies[i];
        if (peek_lacks_channel(r))
            continue;
        nsq_json_object_begin(&j);
        nsq_json_kv_string(&j, "node", ((struct ci_producer *)call->producers->v[i])->http_addr);
        cJSON *doc = r->error == NULL ? cJSON_ParseWithLength(r->body, r->body_len) : NULL;
        if (cJSON_IsObject(doc)) {
            nsq_json_key(&j, "peek");
            nsq_json_raw(&j, r->body, r->body_len); /* valid JSON: passed on as the node wrote it */
        } else {
            nsq_json_kv_string(&j, "error", r->error != NULL ? r->error : "invalid JSON answer");
        }
        cJSON_Delete(doc);
        nsq_json_object_end(&j);
    }
    nsq_json_array_end(&j);
    answer_end(call, &j);
}

static void on_peek_producers(struct ci_vec *producers, struct ci_result *res, void *arg)
{
    struct api_call *call = arg;
    if (!step_ok(call, res))
        return;
    call->producers = producers;
    char **urls = ci_alloc(call->a, (producers->n + 1) * sizeof(*urls));
    if (urls == NULL) {
        finish_error(call, HTTP_INTERNAL, "INTERNAL_ERROR");
        return;
    }
    for (size_t i = 0; i < producers->n; i++)
        urls[i] = ci_sprintf(call->a, "http://%s/channel/peek?%s&n=%d",
                             ((struct ci_producer *)producers->v[i])->http_addr, channel_qs(call),
                             call->peek_n);
    start_failed(call, ci_fanout(call->ci, call->a, "GET", urls, producers->n, NULL, 0,
                                 on_peek_replies, call));
}

int api_call_start(struct api_call *call, api_done_fn done, void *arg)
{
    call->done = done;
    call->arg = arg;
    switch (call->op) {
    case API_TOPICS:
        return start_topics(call);
    case API_TOPIC:
    case API_CHANNEL:
        return ci_get_topic_producers(call->ci, call->a, call->topic, false, on_topic_producers,
                                      call);
    case API_NODES:
    case API_NODE:
    case API_COUNTER:
        return ci_get_producers(call->ci, call->a, on_producers, call);
    case API_CHANNEL_PEEK:
        return ci_get_topic_producers(call->ci, call->a, call->topic, false, on_peek_producers,
                                      call);
    default:
        return start_action(call);
    }
}
