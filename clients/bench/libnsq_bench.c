/*
 * libnsq_bench: throughput of the client library itself (not of nsqd).
 *
 *   libnsq_bench consumer [flags]   one nsq_consumer on --topic/--channel whose handler only
 *                                   FINs (returns 0); reports messages/s
 *   libnsq_bench producer [flags]   one nsq_producer publishing --size byte messages, as MPUB
 *                                   batches of --batch-size (1 = PUB), asynchronously with up to
 *                                   --pipeline commands unanswered; reports messages/s
 *
 * Flags: --nsqd-tcp-address=ADDR (127.0.0.1:4150), --topic=NAME (sub_bench), --channel=NAME (ch),
 * --max-in-flight=N (2500), --size=N (200), --batch-size=N (200), --pipeline=N (4),
 * --runfor=DURATION (10s, Go syntax), --count=N (0: no limit), --opt=key,value (any library option, repeatable).
 *
 * The clock starts at the first message (consumer) or the first publish (producer). The last
 * line is "RESULT label=... mode=... msgs=... secs=... msgs_per_sec=... mb_per_sec=..." for scripts
 * (bench/run.sh); --label=TEXT names the run.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "nsq.h"
#include "nsq_options.h"
#include "nsq_time.h"

#define BENCH_MAX_BATCH 100000
#define BENCH_MAX_OPTS  32

struct bench {
    struct event_base *base;
    const char *addr, *topic, *channel, *label;
    long max_in_flight, size, batch, pipeline, count;
    double runfor;
    /* consumer */
    struct nsq_consumer *consumer;
    /* producer */
    struct nsq_producer *producer;
    const void **bodies;
    size_t *lens;
    long outstanding;
    bool failed;
    /* both */
    uint64_t done;
    int64_t start_ns, end_ns;
    struct event *timer;
    struct event *nothing;
};

static void finish_run(struct bench *b)
{
    if (b->end_ns == 0)
        b->end_ns = nsq_mono_ns();
    event_base_loopbreak(b->base);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    finish_run(arg);
}

/* A consumer that got nothing within --runfor gives up (no topic, or nsqd refused the client). */
static void nothing_cb(evutil_socket_t fd, short what, void *arg)
{
    struct bench *b = arg;
    if (b->done == 0) {
        fprintf(stderr, "no message within --runfor\n");
        b->failed = true;
        finish_run(b);
    }
}

static void start_clock(struct bench *b)
{
    struct timeval tv = {.tv_sec = (time_t)b->runfor,
                         .tv_usec = (suseconds_t)((b->runfor - (double)(time_t)b->runfor) * 1e6)};
    b->start_ns = nsq_mono_ns();
    evtimer_add(b->timer, &tv);
}

static int fin_handler(struct nsq_message *msg, void *arg)
{
    struct bench *b = arg;
    (void)msg;
    if (b->done++ == 0)
        start_clock(b);
    if (b->count > 0 && (long)b->done >= b->count)
        finish_run(b);
    return 0;
}

static void publish_more(struct bench *b);

static void published(int err, const char *text, void *arg)
{
    struct bench *b = arg;
    b->outstanding--;
    if (err < 0) {
        fprintf(stderr, "publish failed: %s\n", text);
        b->failed = true;
        finish_run(b);
        return;
    }
    b->done += (uint64_t)b->batch;
    if (b->count > 0 && (long)b->done >= b->count) {
        finish_run(b);
        return;
    }
    if (b->end_ns == 0)
        publish_more(b);
}

static void publish_more(struct bench *b)
{
    while (b->outstanding < b->pipeline) {
        int rc;
        if (b->batch == 1)
            rc = nsq_producer_publish_async(b->producer, b->topic, b->bodies[0], b->lens[0],
                                            published, b);
        else
            rc = nsq_producer_multi_publish_async(b->producer, b->topic, b->bodies, b->lens,
                                                  (size_t)b->batch, published, b);
        if (rc < 0) {
            fprintf(stderr, "publish: %s\n", nsq_strerror(rc));
            b->failed = true;
            finish_run(b);
            return;
        }
        b->outstanding++;
    }
}

static const char *flag_value(const char *arg, const char *name)
{
    size_t n = strlen(name);
    if (strncmp(arg, name, n) == 0 && arg[n] == '=')
        return arg + n + 1;
    return NULL;
}

int main(int argc, char **argv)
{
    struct bench b = {.addr = "127.0.0.1:4150",
                      .topic = "sub_bench",
                      .channel = "ch",
                      .max_in_flight = 2500,
                      .size = 200,
                      .batch = 200,
                      .pipeline = 4,
                      .label = "",
                      .runfor = 10};
    if (argc < 2 || (strcmp(argv[1], "consumer") && strcmp(argv[1], "producer"))) {
        fprintf(stderr,
                "usage: %s consumer|producer [--nsqd-tcp-address=ADDR] [--topic=NAME] "
                "[--channel=NAME] [--max-in-flight=N] [--size=N] [--batch-size=N] "
                "[--pipeline=N] [--runfor=DURATION] [--count=N] [--opt=key,value]\n",
                argv[0]);
        return 2;
    }
    bool consumer = !strcmp(argv[1], "consumer");
    const char *opts[BENCH_MAX_OPTS];
    int nopts = 0;
    for (int i = 2; i < argc; i++) {
        const char *v;
        if ((v = flag_value(argv[i], "--nsqd-tcp-address")))
            b.addr = v;
        else if ((v = flag_value(argv[i], "--topic")))
            b.topic = v;
        else if ((v = flag_value(argv[i], "--channel")))
            b.channel = v;
        else if ((v = flag_value(argv[i], "--max-in-flight")))
            b.max_in_flight = atol(v);
        else if ((v = flag_value(argv[i], "--size")))
            b.size = atol(v);
        else if ((v = flag_value(argv[i], "--batch-size")))
            b.batch = atol(v);
        else if ((v = flag_value(argv[i], "--pipeline")))
            b.pipeline = atol(v);
        else if ((v = flag_value(argv[i], "--runfor"))) {
            int64_t ns;
            if (nsq_parse_duration(v, &ns) < 0) {
                fprintf(stderr, "invalid --runfor %s\n", v);
                return 2;
            }
            b.runfor = (double)ns / 1e9;
        } else if ((v = flag_value(argv[i], "--label")))
            b.label = v;
        else if ((v = flag_value(argv[i], "--count")))
            b.count = atol(v);
        else if ((v = flag_value(argv[i], "--opt")) && nopts < BENCH_MAX_OPTS)
            opts[nopts++] = v;
        else {
            fprintf(stderr, "unknown flag %s\n", argv[i]);
            return 2;
        }
    }
    if (b.batch < 1 || b.batch > BENCH_MAX_BATCH || b.size < 0 || b.pipeline < 1 || b.runfor <= 0) {
        fprintf(stderr, "invalid flag value\n");
        return 2;
    }
    b.base = event_base_new();
    b.timer = evtimer_new(b.base, timer_cb, &b);
    b.nothing = evtimer_new(b.base, nothing_cb, &b);
    struct nsq_config *cfg = nsq_config_new();
    char mif[32];
    snprintf(mif, sizeof(mif), "%ld", b.max_in_flight);
    nsq_config_set(cfg, "max_in_flight", mif);
    for (int i = 0; i < nopts; i++) {
        if (nsq_config_set_opt(cfg, opts[i]) < 0) {
            fprintf(stderr, "invalid --opt %s\n", opts[i]);
            return 2;
        }
    }
    char *body = NULL;
    int rc = 0;
    if (consumer) {
        b.consumer = nsq_consumer_new(b.base, b.topic, b.channel, cfg, fin_handler, &b);
        if (!b.consumer || nsq_consumer_connect_nsqd(b.consumer, b.addr) < 0) {
            fprintf(stderr, "cannot create the consumer\n");
            return 1;
        }
        struct timeval tv = {.tv_sec = (time_t)b.runfor + 1};
        evtimer_add(b.nothing, &tv);
    } else {
        body = malloc((size_t)b.size + 1);
        b.bodies = calloc((size_t)b.batch, sizeof(*b.bodies));
        b.lens = calloc((size_t)b.batch, sizeof(*b.lens));
        b.producer = nsq_producer_new(b.base, b.addr, cfg);
        if (!body || !b.bodies || !b.lens || !b.producer) {
            fprintf(stderr, "cannot create the producer\n");
            return 1;
        }
        memset(body, 'a', (size_t)b.size);
        for (long i = 0; i < b.batch; i++) {
            b.bodies[i] = body;
            b.lens[i] = (size_t)b.size;
        }
        start_clock(&b);
        publish_more(&b);
    }
    event_base_dispatch(b.base);
    if (b.end_ns == 0)
        b.end_ns = nsq_mono_ns();
    double secs = b.start_ns ? (double)(b.end_ns - b.start_ns) / 1e9 : 0;
    double rate = secs > 0 ? (double)b.done / secs : 0;
    printf("%s: %" PRIu64 " messages in %.3fs = %.0f msgs/s\n", argv[1], b.done, secs, rate);
    printf("RESULT label=%s mode=%s msgs=%" PRIu64 " secs=%.3f msgs_per_sec=%.1f mb_per_sec=%.3f\n",
           b.label, argv[1], b.done, secs, rate, rate * (double)b.size / (1024.0 * 1024.0));
    if (b.failed)
        rc = 1;
    nsq_consumer_free(b.consumer);
    nsq_producer_free(b.producer);
    event_free(b.timer);
    event_free(b.nothing);
    nsq_config_free(cfg);
    event_base_free(b.base);
    free(body);
    free(b.bodies);
    free(b.lens);
    return rc;
}
