/*
 * consumer: the smallest useful libnsq consumer.
 *
 *   consumer <topic> <channel> <nsqd host:port | http://lookupd host:port>... [-n count]
 *
 * Prints each message body on its own line and finishes it; after `count` messages (0 = forever)
 * it stops gracefully (CLS, drain) and exits. SIGINT/SIGTERM also stop it.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "nsq.h"

struct state {
    struct nsq_consumer *consumer;
    struct event_base *base;
    long limit;
    long seen;
};

static void stopped(void *arg)
{
    event_base_loopbreak(((struct state *)arg)->base);
}

static int handle(struct nsq_message *msg, void *arg)
{
    struct state *s = arg;
    fwrite(msg->body, 1, msg->body_len, stdout);
    fputc('\n', stdout);
    fflush(stdout);
    if (s->limit > 0 && ++s->seen == s->limit)
        nsq_consumer_stop(s->consumer, stopped, s);
    return 0;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct state *s = arg;
    nsq_consumer_stop(s->consumer, stopped, s);
}

int main(int argc, char **argv)
{
    struct state s = {0};
    if (argc < 4) {
        fprintf(stderr, "usage: %s <topic> <channel> <nsqd|http://lookupd>... [-n count]\n",
                argv[0]);
        return 2;
    }
    s.base = event_base_new();
    struct nsq_config *cfg = nsq_config_new();
    nsq_config_set(cfg, "max_in_flight", "100");
    s.consumer = nsq_consumer_new(s.base, argv[1], argv[2], cfg, handle, &s);
    if (!s.consumer) {
        fprintf(stderr, "invalid topic or channel\n");
        return 1;
    }
    for (int i = 3; i < argc; i++) {
        int rc;
        if (!strcmp(argv[i], "-n") && i + 1 < argc) {
            s.limit = atol(argv[++i]);
            continue;
        }
        if (!strncmp(argv[i], "http://", 7))
            rc = nsq_consumer_connect_lookupd(s.consumer, argv[i]);
        else
            rc = nsq_consumer_connect_nsqd(s.consumer, argv[i]);
        if (rc < 0) {
            fprintf(stderr, "%s: %s\n", argv[i], nsq_strerror(rc));
            return 1;
        }
    }
    struct event *sigint = evsignal_new(s.base, SIGINT, on_signal, &s);
    struct event *sigterm = evsignal_new(s.base, SIGTERM, on_signal, &s);
    event_add(sigint, NULL);
    event_add(sigterm, NULL);
    event_base_dispatch(s.base);
    event_free(sigint);
    event_free(sigterm);
    nsq_consumer_free(s.consumer);
    nsq_config_free(cfg);
    event_base_free(s.base);
    return 0;
}
