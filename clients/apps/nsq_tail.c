/*
 * nsq_tail: prints the messages of one or more topics to stdout (body + "\n", optionally prefixed
 * with "<topic> | "). One consumer per topic on an ephemeral channel by default; -n N exits after N
 * messages. SIGINT/SIGTERM stop the consumers gracefully.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "app.h"
#include "nsq.h"
#include "nsq_time.h"

#define TAIL_CHANNEL_FMT "tail%06d#ephemeral"

struct tail {
    struct event_base *base;
    struct nsq_consumer **consumers;
    char **topics;
    size_t n;
    bool print_topic;
    long limit;
    long seen;
    bool stopping;
    size_t stopped;
};

struct tail_handler {
    struct tail *t;
    const char *topic;
};

static void on_stopped(void *arg)
{
    struct tail *t = arg;
    if (++t->stopped == t->n)
        event_base_loopexit(t->base, NULL);
}

static void stop_all(void *arg)
{
    struct tail *t = arg;
    if (t->stopping)
        return;
    t->stopping = true;
    for (size_t i = 0; i < t->n; i++)
        nsq_consumer_stop(t->consumers[i], on_stopped, t);
}

static int handle(struct nsq_message *msg, void *arg)
{
    struct tail_handler *h = arg;
    struct tail *t = h->t;
    if (t->limit > 0 && t->seen >= t->limit)
        return 0; /* already done; answer what is still arriving */
    if (t->print_topic) {
        fputs(h->topic, stdout);
        fputs(" | ", stdout);
    }
    fwrite(msg->body, 1, msg->body_len, stdout);
    fputc('\n', stdout);
    fflush(stdout);
    if (t->limit > 0 && ++t->seen >= t->limit)
        stop_all(t);
    return 0;
}

int main(int argc, char **argv)
{
    char *channel = NULL;
    struct nsq_strlist topics = {0}, nsqd = {0}, lookupd = {0}, copts = {0};
    int max_in_flight = 200, total = 0;
    bool print_topic = false;
    const struct nsq_opt table[] = {
            NSQ_OPT_ENTRY("channel", "", NSQ_OPT_STRING, &channel, "", "NSQ channel"),
            NSQ_OPT_ENTRY("max-in-flight", "", NSQ_OPT_INT, &max_in_flight, "200",
                          "max number of messages to allow in flight"),
            NSQ_OPT_ENTRY("n", "", NSQ_OPT_INT, &total, "0",
                          "total messages to show (will wait if starved)"),
            NSQ_OPT_ENTRY("print-topic", "", NSQ_OPT_BOOL, &print_topic, "false",
                          "print topic name where message was received"),
            NSQ_OPT_ENTRY("topic", "", NSQ_OPT_STRING_LIST, &topics, NULL,
                          "NSQ topic (may be given multiple times)"),
            NSQ_OPT_ENTRY("nsqd-tcp-address", "", NSQ_OPT_STRING_LIST, &nsqd, NULL,
                          "nsqd TCP address (may be given multiple times)"),
            NSQ_OPT_ENTRY("lookupd-http-address", "", NSQ_OPT_STRING_LIST, &lookupd, NULL,
                          "lookupd HTTP address (may be given multiple times)"),
            NSQ_OPT_ENTRY("consumer-opt", "", NSQ_OPT_STRING_LIST, &copts, NULL,
                          "option to passthrough to nsq.Consumer (may be given multiple times)"),
    };
    const size_t ntable = sizeof(table) / sizeof(table[0]);
    app_parse_options(table, ntable, "nsq_tail", argc, argv);

    char default_channel[64];
    if (channel[0] == '\0') {
        srandom((unsigned)(nsq_now_ns() ^ getpid()));
        snprintf(default_channel, sizeof(default_channel), TAIL_CHANNEL_FMT,
                 (int)(random() % 1000000));
        free(channel);
        channel = strdup(default_channel);
    }
    if (total > 0 && total < max_in_flight)
        max_in_flight = total;
    if (topics.len == 0)
        app_fatal("--topic required");
    app_check_sources(&nsqd, &lookupd);

    struct nsq_config *cfg = nsq_config_new();
    app_set_user_agent(cfg, "nsq_tail");
    app_apply_opts(cfg, &copts, "consumer-opt");
    char mif[32];
    snprintf(mif, sizeof(mif), "%d", max_in_flight);
    nsq_config_set(cfg, "max_in_flight", mif);

    struct tail t = {
            .base = event_base_new(), .n = topics.len, .print_topic = print_topic, .limit = total};
    t.consumers = calloc(t.n, sizeof(*t.consumers));
    struct tail_handler *handlers = calloc(t.n, sizeof(*handlers));
    for (size_t i = 0; i < t.n; i++) {
        handlers[i] = (struct tail_handler){.t = &t, .topic = topics.items[i]};
        t.consumers[i] =
                nsq_consumer_new(t.base, topics.items[i], channel, cfg, handle, &handlers[i]);
        if (!t.consumers[i])
            app_fatal("invalid topic or channel name (%s, %s)", topics.items[i], channel);
        app_connect_sources(t.consumers[i], &nsqd, &lookupd);
    }
    struct app_signals *sig = app_signals_new(t.base, stop_all, NULL, &t);
    event_base_dispatch(t.base);
    app_signals_free(sig);
    for (size_t i = 0; i < t.n; i++)
        nsq_consumer_free(t.consumers[i]);
    free(t.consumers);
    free(handlers);
    event_base_free(t.base);
    nsq_config_free(cfg);
    nsq_options_free(table, ntable);
    return 0;
}
