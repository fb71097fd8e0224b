/*
 * nsq_to_nsq: relays topics to other nsqds.
 *
 * One consumer per source topic; every message is published asynchronously to one destination
 * nsqd chosen by --mode with hostpool.h's rules (round-robin; hostpool: in turn, skipping
 * destinations marked dead by a failed publish until their retry time; epsilon-greedy: mostly the
 * one answering fastest recently; another name acts as hostpool) and finished when the publish
 * succeeds, requeued (with backoff) when it fails. Optional JSON filters: --require-json-field
 * [--require-json-value] and --whitelist-json-field (the relayed message keeps only those fields,
 * re-encoded with sorted keys). Non-JSON messages are dropped when a JSON option is used.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <event2/event.h>

#include "app.h"
#include "hostpool.h"
#include "nsq.h"
#include "nsq_time.h"

struct relay {
    struct event_base *base;
    struct nsq_producer **producers;
    struct hostpool *pool;
    size_t nproducers;
    const char *dest_topic;
    const char *require_field;
    const char *require_value;
    struct nsq_strlist *whitelist;
    int status_every;
    uint64_t relayed;
    struct nsq_consumer **consumers;
    size_t nconsumers;
    size_t stopped;
    bool stopping;
};

struct source {
    struct relay *r;
    const char *topic;
};

struct pending {
    struct relay *r;
    struct nsq_message *msg;
    size_t producer;
    int64_t start_ns;
};

static void on_stopped(void *arg)
{
    struct relay *r = arg;
    if (++r->stopped == r->nconsumers)
        event_base_loopexit(r->base, NULL);
}

static void stop_all(void *arg)
{
    struct relay *r = arg;
    if (r->stopping)
        return;
    r->stopping = true;
    for (size_t i = 0; i < r->nconsumers; i++)
        nsq_consumer_stop(r->consumers[i], on_stopped, r);
}

static void published(int err, const char *text, void *arg)
{
    struct pending *p = arg;
    struct relay *r = p->r;
    int64_t now = nsq_mono_ns();
    hostpool_mark(r->pool, p->producer, err == 0, now - p->start_ns, now);
    if (err == 0) {
        nsq_message_finish(p->msg);
        if (r->status_every > 0 && ++r->relayed % (uint64_t)r->status_every == 0)
            app_log("%llu messages relayed", (unsigned long long)r->relayed);
    } else {
        app_log("publish failed: %s", text);
        nsq_message_requeue(p->msg, -1);
    }
    free(p);
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Whether the JSON value matches --require-json-value (as a string, or as a number when the
   wanted value parses as one). */
static bool value_matches(const cJSON *v, const char *want)
{
    if (cJSON_IsString(v))
        return strcmp(v->valuestring, want) == 0;
    if (cJSON_IsNumber(v)) {
        char *end;
        double d = strtod(want, &end);
        return *want && !*end && d == v->valuedouble;
    }
    return false;
}

/* Applies the JSON options. Returns 1 to relay (*out set when re-encoded, caller frees), 0 to drop
   (finish), -1 to requeue. */
static int filter_json(struct relay *r, const struct nsq_message *msg, char **out)
{
    *out = NULL;
    if (!r->require_field[0] && r->whitelist->len == 0)
        return 1;
    cJSON *root = cJSON_ParseWithLength((const char *)msg->body, msg->body_len);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return 0;
    }
    int verdict = 1;
    if (r->require_field[0]) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, r->require_field);
        if (!v)
            verdict = r->require_value[0] ? -1 : 0;
        else if (r->require_value[0] && !value_matches(v, r->require_value))
            verdict = 0;
    }
    if (verdict == 1 && r->whitelist->len > 0) {
        char **keys = calloc(r->whitelist->len, sizeof(*keys));
        memcpy(keys, r->whitelist->items, r->whitelist->len * sizeof(*keys));
        qsort(keys, r->whitelist->len, sizeof(*keys), compare_strings);
        cJSON *kept = cJSON_CreateObject();
        for (size_t i = 0; i < r->whitelist->len; i++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, keys[i]);
            if (v && !cJSON_GetObjectItemCaseSensitive(kept, keys[i]))
                cJSON_AddItemToObject(kept, keys[i], cJSON_Duplicate(v, 1));
        }
        *out = cJSON_PrintUnformatted(kept);
        cJSON_Delete(kept);
        free(keys);
    }
    cJSON_Delete(root);
    return verdict;
}

static int handle(struct nsq_message *msg, void *arg)
{
    struct source *s = arg;
    struct relay *r = s->r;
    char *body = NULL;
    int verdict = filter_json(r, msg, &body);
    if (verdict == 0)
        return 0;
    if (verdict < 0)
        return -1;
    struct pending *p = malloc(sizeof(*p));
    if (!p) {
        free(body);
        return -1;
    }
    p->r = r;
    p->msg = msg;
    p->start_ns = nsq_mono_ns();
    p->producer = hostpool_pick(r->pool, p->start_ns);
    const char *topic = r->dest_topic[0] ? r->dest_topic : s->topic;
    int rc = nsq_producer_publish_async(r->producers[p->producer], topic,
                                        body ? (const void *)body : msg->body,
                                        body ? strlen(body) : msg->body_len, published, p);
    cJSON_free(body);
    if (rc < 0) {
        hostpool_mark(r->pool, p->producer, false, 0, nsq_mono_ns());
        free(p);
        return -1;
    }
    nsq_message_disable_auto_response(msg);
    return 0;
}

int main(int argc, char **argv)
{
    char *channel = NULL, *dest_topic = NULL, *mode = NULL, *req_field = NULL, *req_value = NULL;
    struct nsq_strlist topics = {0}, dests = {0}, nsqd = {0}, lookupd = {0}, copts = {0},
                       popts = {0}, whitelist = {0};
    int max_in_flight = 200, status_every = 250;
    const struct nsq_opt table[] = {
            NSQ_OPT_ENTRY("topic", "", NSQ_OPT_STRING_LIST, &topics, NULL,
                          "nsq topic (may be given multiple times)"),
            NSQ_OPT_ENTRY("channel", "", NSQ_OPT_STRING, &channel, "nsq_to_nsq", "nsq channel"),
            NSQ_OPT_ENTRY("destination-topic", "", NSQ_OPT_STRING, &dest_topic, "",
                          "use this destination topic for all consumed topics (default is "
                          "consumed topic name)"),
            NSQ_OPT_ENTRY("destination-nsqd-tcp-address", "", NSQ_OPT_STRING_LIST, &dests, NULL,
                          "destination nsqd TCP address (may be given multiple times)"),
            NSQ_OPT_ENTRY("max-in-flight", "", NSQ_OPT_INT, &max_in_flight, "200",
                          "max number of messages to allow in flight"),
            NSQ_OPT_ENTRY("mode", "", NSQ_OPT_STRING, &mode, "hostpool",
                          "the upstream request mode options: round-robin, hostpool (default), "
                          "epsilon-greedy"),
            NSQ_OPT_ENTRY("status-every", "", NSQ_OPT_INT, &status_every, "250",
                          "the # of requests between logging status (per destination), 0 disables"),
            NSQ_OPT_ENTRY("require-json-field", "", NSQ_OPT_STRING, &req_field, "",
                          "for JSON messages: only pass messages that contain this field"),
            NSQ_OPT_ENTRY("require-json-value", "", NSQ_OPT_STRING, &req_value, "",
                          "for JSON messages: only pass messages in which the required field has "
                          "this value"),
            NSQ_OPT_ENTRY("whitelist-json-field", "", NSQ_OPT_STRING_LIST, &whitelist, NULL,
                          "for JSON messages: pass this field (may be given multiple times)"),
            NSQ_OPT_ENTRY("nsqd-tcp-address", "", NSQ_OPT_STRING_LIST, &nsqd, NULL,
                          "nsqd TCP address (may be given multiple times)"),
            NSQ_OPT_ENTRY("lookupd-http-address", "", NSQ_OPT_STRING_LIST, &lookupd, NULL,
                          "lookupd HTTP address (may be given multiple times)"),
            NSQ_OPT_ENTRY("consumer-opt", "", NSQ_OPT_STRING_LIST, &copts, NULL,
                          "option to passthrough to nsq.Consumer (may be given multiple times)"),
            NSQ_OPT_ENTRY("producer-opt", "", NSQ_OPT_STRING_LIST, &popts, NULL,
                          "option to passthrough to nsq.Producer (may be given multiple times)"),
    };
    const size_t ntable = sizeof(table) / sizeof(table[0]);
    app_parse_options(table, ntable, "nsq_to_nsq", argc, argv);

    if (topics.len == 0 || channel[0] == '\0')
        app_fatal("--topic and --channel are required");
    if (dests.len == 0)
        app_fatal("--destination-nsqd-tcp-address required");
    app_check_sources(&nsqd, &lookupd);
    if (req_value[0] && !req_field[0])
        app_fatal("--require-json-value requires --require-json-field");

    struct nsq_config *ccfg = nsq_config_new(), *pcfg = nsq_config_new();
    app_set_user_agent(ccfg, "nsq_to_nsq");
    app_set_user_agent(pcfg, "nsq_to_nsq");
    app_apply_opts(ccfg, &copts, "consumer-opt");
    app_apply_opts(pcfg, &popts, "producer-opt");
    char mif[32];
    snprintf(mif, sizeof(mif), "%d", max_in_flight);
    nsq_config_set(ccfg, "max_in_flight", mif);

    struct relay r = {.base = event_base_new(),
                      .dest_topic = dest_topic,
                      .require_field = req_field,
                      .require_value = req_value,
                      .whitelist = &whitelist,
                      .status_every = status_every};
    r.nproducers = dests.len;
    r.producers = calloc(dests.len, sizeof(*r.producers));
    enum hostpool_mode pool_mode = HOSTPOOL_STANDARD;
    hostpool_parse_mode(mode, &pool_mode);
    r.pool = hostpool_new(pool_mode, dests.len, (uint64_t)nsq_now_ns() ^ (uint64_t)getpid());
    if (!r.producers || !r.pool)
        app_fatal("out of memory");
    for (size_t i = 0; i < dests.len; i++) {
        r.producers[i] = nsq_producer_new(r.base, dests.items[i], pcfg);
        if (!r.producers[i])
            app_fatal("failed creating producer %s - invalid address", dests.items[i]);
    }
    r.nconsumers = topics.len;
    r.consumers = calloc(topics.len, sizeof(*r.consumers));
    struct source *sources = calloc(topics.len, sizeof(*sources));
    for (size_t i = 0; i < topics.len; i++) {
        sources[i] = (struct source){.r = &r, .topic = topics.items[i]};
        r.consumers[i] =
                nsq_consumer_new(r.base, topics.items[i], channel, ccfg, handle, &sources[i]);
        if (!r.consumers[i])
            app_fatal("invalid topic or channel name (%s, %s)", topics.items[i], channel);
        app_connect_sources(r.consumers[i], &nsqd, &lookupd);
    }
    struct app_signals *sig = app_signals_new(r.base, stop_all, NULL, &r);
    event_base_dispatch(r.base);
    app_signals_free(sig);
    for (size_t i = 0; i < topics.len; i++)
        nsq_consumer_free(r.consumers[i]);
    for (size_t i = 0; i < dests.len; i++)
        nsq_producer_free(r.producers[i]);
    free(r.consumers);
    free(r.producers);
    hostpool_free(r.pool);
    free(sources);
    event_base_free(r.base);
    nsq_config_free(ccfg);
    nsq_config_free(pcfg);
    nsq_options_free(table, ntable);
    return 0;
}
