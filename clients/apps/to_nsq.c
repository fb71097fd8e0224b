/*
 * to_nsq: publishes stdin to a topic on one or more nsqds.
 *
 * Input is cut at --delimiter; each chunk loses its last byte (the delimiter, or the last byte of
 * a final chunk without one, as upstream does) and empty chunks are skipped. Every message is
 * published synchronously to every --nsqd-tcp-address; a publish error is fatal. --rate bounds
 * messages per second with a token bucket holding at most one second of tokens. --ttl (not an
 * upstream flag) gives every message a time-to-live on nsqds that support it
 * (docs/ttl-and-depth.md).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app.h"
#include "nsq.h"
#include "nsq_names.h"
#include "nsq_time.h"

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    g_stop = 1;
}

struct token_bucket {
    double rate, tokens;
    int64_t last_ns;
};

static void take_token(struct token_bucket *tb)
{
    if (tb->rate <= 0)
        return;
    for (;;) {
        int64_t now = nsq_mono_ns();
        tb->tokens += (double)(now - tb->last_ns) / 1e9 * tb->rate;
        if (tb->tokens > tb->rate)
            tb->tokens = tb->rate; /* at most one second of burst */
        tb->last_ns = now;
        if (tb->tokens >= 1) {
            tb->tokens -= 1;
            return;
        }
        double wait = (1 - tb->tokens) / tb->rate;
        struct timespec ts = {.tv_sec = (time_t)wait,
                              .tv_nsec = (long)((wait - (double)(time_t)wait) * 1e9)};
        nanosleep(&ts, NULL);
    }
}

int main(int argc, char **argv)
{
    char *topic = NULL, *delimiter = NULL;
    struct nsq_strlist nsqd = {0}, popts = {0};
    int rate = 0;
    int64_t ttl_ns = 0;
    const struct nsq_opt table[] = {
            NSQ_OPT_ENTRY("topic", "", NSQ_OPT_STRING, &topic, "", "NSQ topic to publish to"),
            NSQ_OPT_ENTRY("delimiter", "", NSQ_OPT_STRING, &delimiter, "\n",
                          "character to split input from stdin"),
            NSQ_OPT_ENTRY("nsqd-tcp-address", "", NSQ_OPT_STRING_LIST, &nsqd, NULL,
                          "destination nsqd TCP address (may be given multiple times)"),
            NSQ_OPT_ENTRY("producer-opt", "", NSQ_OPT_STRING_LIST, &popts, NULL,
                          "option to passthrough to nsq.Producer (may be given multiple times)"),
            NSQ_OPT_ENTRY("rate", "", NSQ_OPT_INT, &rate, "0",
                          "Throttle messages to n/second. 0 to disable"),
            NSQ_OPT_ENTRY("ttl", "", NSQ_OPT_DURATION, &ttl_ns, "0s",
                          "message time-to-live (e.g. 30s), 0 for none (not in upstream NSQ; "
                          "needs an nsqd with message TTL support)"),
    };
    const size_t ntable = sizeof(table) / sizeof(table[0]);
    app_parse_options(table, ntable, "to_nsq", argc, argv);

    if (topic[0] == '\0')
        app_fatal("--topic required");
    if (strlen(delimiter) != 1)
        app_fatal("--delimiter must be a single byte");
    if (nsqd.len == 0)
        app_fatal("--nsqd-tcp-address required");
    if (!nsq_topic_name_valid(topic, strlen(topic)))
        app_fatal("invalid topic name %s", topic);
    /* whole milliseconds on the wire; a positive TTL below 1 ms becomes 1 ms rather than none */
    int64_t ttl_ms = (ttl_ns + NSQ_NS_PER_MS - 1) / NSQ_NS_PER_MS;
    if (ttl_ns < 0 || ttl_ms > UINT32_MAX)
        app_fatal("--ttl must be between 0 and 4294967295ms");

    struct nsq_config *cfg = nsq_config_new();
    app_set_user_agent(cfg, "to_nsq");
    app_apply_opts(cfg, &popts, "producer-opt");
    struct nsq_producer **producers = calloc(nsqd.len, sizeof(*producers));
    for (size_t i = 0; i < nsqd.len; i++) {
        producers[i] = nsq_producer_new(NULL, nsqd.items[i], cfg);
        if (!producers[i])
            app_fatal("failed to create nsq.Producer - invalid address %s", nsqd.items[i]);
        nsq_producer_set_msg_ttl(producers[i], ttl_ms);
    }

    struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: reads return EINTR */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    struct token_bucket tb = {.rate = rate, .tokens = rate, .last_ns = nsq_mono_ns()};
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int status = 0;
    while (!g_stop && (n = getdelim(&line, &cap, (unsigned char)delimiter[0], stdin)) > 0) {
        size_t len = (size_t)n - 1; /* drop the delimiter (or the final byte) */
        if (len == 0)
            continue;
        take_token(&tb);
        for (size_t i = 0; i < nsqd.len; i++) {
            int rc = nsq_producer_publish(producers[i], topic, line, len);
            if (rc < 0) {
                app_log("%s", nsq_producer_last_error(producers[i]));
                status = 1;
                g_stop = 1;
                break;
            }
        }
    }
    free(line);
    for (size_t i = 0; i < nsqd.len; i++)
        nsq_producer_free(producers[i]);
    free(producers);
    nsq_config_free(cfg);
    nsq_options_free(table, ntable);
    return status;
}
