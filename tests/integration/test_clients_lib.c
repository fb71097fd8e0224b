/*
 * test_clients_lib: the client library (libnsq) against real nsqd processes: synchronous and
 * asynchronous publishing, error reporting and reconnection, consumption, RDY distribution over
 * three nsqds within max_in_flight, requeue with backoff, max_attempts, the negotiated
 * transports (snappy, deflate, TLS), and publishing with a message time-to-live.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>

#include "harness.h"
#include "nsq.h"
#include "nsqd_itest.h"

#define WAIT_MS 15000
/* Message time-to-live test: a TTL that passes at once, one that never passes during the test,
   and the wall-clock margin waited beyond the short one. */
#define SHORT_TTL_MS  1
#define LONG_TTL_MS   600000
#define TTL_MARGIN_MS 50
#define DEFER_MS      20

/* ---- helpers ---- */

struct nsqd {
    struct harness_proc *p;
    char *dir;
    char tcp[64];
};

static void nsqd_start(struct nsqd *d, const char *const *extra)
{
    char data[512];
    const char *args[16] = {"--tcp-address=127.0.0.1:0", "--http-address=127.0.0.1:0"};
    int n = 2;
    d->dir = harness_tmpdir();
    snprintf(data, sizeof(data), "--data-path=%s", d->dir);
    args[n++] = data;
    int listeners = 2;
    for (int i = 0; extra && extra[i]; i++) {
        args[n++] = extra[i];
        if (!strncmp(extra[i], "--https-address", 15))
            listeners++;
    }
    args[n] = NULL;
    d->p = harness_start(NSQD_BIN, args, listeners);
    ck_assert_ptr_nonnull(d->p);
    snprintf(d->tcp, sizeof(d->tcp), "127.0.0.1:%d", harness_port(d->p, "TCP"));
}

static void nsqd_stop(struct nsqd *d)
{
    ck_assert_int_eq(harness_stop(d->p, 0), 0);
    harness_rmdir(d->dir);
    free(d->dir);
}

struct waiter {
    struct event_base *base;
    bool (*cond)(void *);
    void *arg;
};

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct waiter *w = arg;
    if (w->cond(w->arg))
        event_base_loopbreak(w->base);
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    event_base_loopbreak(arg);
}

/* Runs base until cond(arg) holds or timeout_ms passes; returns cond(arg). */
static bool run_until(struct event_base *base, bool (*cond)(void *), void *arg, int timeout_ms)
{
    struct waiter w = {base, cond, arg};
    if (cond(arg))
        return true;
    struct event *tick = event_new(base, -1, EV_PERSIST, tick_cb, &w);
    struct event *deadline = evtimer_new(base, deadline_cb, base);
    struct timeval t = {0, 2000}, d = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    event_add(tick, &t);
    evtimer_add(deadline, &d);
    event_base_dispatch(base);
    event_free(tick);
    event_free(deadline);
    return cond(arg);
}

static struct nsq_config *config(const char *const *kv)
{
    struct nsq_config *cfg = nsq_config_new();
    ck_assert_ptr_nonnull(cfg);
    for (int i = 0; kv && kv[i]; i += 2)
        ck_assert_int_eq(nsq_config_set(cfg, kv[i], kv[i + 1]), 0);
    return cfg;
}

static void publish_n(const char *addr, const char *topic, int n, const char *prefix)
{
    struct nsq_producer *p = nsq_producer_new(NULL, addr, NULL);
    char body[64];
    ck_assert_ptr_nonnull(p);
    for (int i = 0; i < n; i++) {
        snprintf(body, sizeof(body), "%s%d", prefix, i);
        ck_assert_int_eq(nsq_producer_publish(p, topic, body, strlen(body)), 0);
    }
    nsq_producer_free(p);
}

/* A consumer's view: received bodies and counters. */
struct sink {
    struct event_base *base;
    struct nsq_consumer *c;
    int received;
    int expected;
    char bodies[512][64];
    int fail_first;  /* requeue messages on their first attempt */
    int always_fail; /* requeue everything */
    int max_attempts_seen;
    int hold_ms; /* keep messages this long before FIN */
    int held, max_held;
    bool stopped;
};

static bool sink_done(void *arg)
{
    struct sink *s = arg;
    return s->received >= s->expected;
}

struct held {
    struct sink *s;
    struct nsq_message *m;
    struct event *ev;
};

static void release_cb(evutil_socket_t fd, short what, void *arg)
{
    struct held *h = arg;
    h->s->held--;
    nsq_message_finish(h->m);
    event_free(h->ev);
    free(h);
}

static int sink_handle(struct nsq_message *m, void *arg)
{
    struct sink *s = arg;
    if (m->attempts > s->max_attempts_seen)
        s->max_attempts_seen = m->attempts;
    if (s->always_fail) {
        s->received++;
        return -1;
    }
    if (s->fail_first && m->attempts == 1)
        return -1;
    if (s->received < 512)
        snprintf(s->bodies[s->received], sizeof(s->bodies[0]), "%.*s", (int)m->body_len,
                 (const char *)m->body);
    s->received++;
    if (s->hold_ms > 0) {
        struct held *h = calloc(1, sizeof(*h));
        struct timeval tv = {0, s->hold_ms * 1000};
        h->s = s;
        h->m = m;
        h->ev = evtimer_new(s->base, release_cb, h);
        evtimer_add(h->ev, &tv);
        nsq_message_disable_auto_response(m);
        if (++s->held > s->max_held)
            s->max_held = s->held;
    }
    return 0;
}

static bool has_body(const struct sink *s, const char *body)
{
    for (int i = 0; i < s->received && i < 512; i++)
        if (!strcmp(s->bodies[i], body))
            return true;
    return false;
}

static void on_stopped(void *arg)
{
    ((struct sink *)arg)->stopped = true;
}

static bool sink_stopped(void *arg)
{
    return ((struct sink *)arg)->stopped;
}

static void sink_stop(struct sink *s)
{
    nsq_consumer_stop(s->c, on_stopped, s);
    ck_assert(run_until(s->base, sink_stopped, s, WAIT_MS));
    nsq_consumer_free(s->c);
    event_base_free(s->base);
}

/* ---- tests ---- */

START_TEST(test_publish_forms_and_consume)
{
    struct nsqd d;
    nsqd_start(&d, NULL);
    struct nsq_producer *p = nsq_producer_new(NULL, d.tcp, NULL);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(nsq_producer_publish(p, "lib", "one", 3), 0);
    const void *bodies[] = {"two", "three"};
    size_t lens[] = {3, 5};
    ck_assert_int_eq(nsq_producer_multi_publish(p, "lib", bodies, lens, 2), 0);
    ck_assert_int_eq(nsq_producer_deferred_publish(p, "lib", 50, "four", 4), 0);

    /* a fatal error is reported with nsqd's text; the next publish reconnects */
    ck_assert_int_eq(nsq_producer_publish(p, "bad!topic", "x", 1), -NSQ_ESERVER);
    ck_assert_str_eq(nsq_producer_last_error(p),
                     "E_BAD_TOPIC PUB topic name \"bad!topic\" is not valid");
    ck_assert_int_eq(nsq_producer_publish(p, "lib", "five", 4), 0);
    ck_assert_str_eq(nsq_producer_last_error(p), "");
    nsq_producer_free(p);

    struct sink s = {.base = event_base_new(), .expected = 5};
    struct nsq_config *cfg = config((const char *const[]){"max_in_flight", "10", NULL});
    s.c = nsq_consumer_new(s.base, "lib", "ch", cfg, sink_handle, &s);
    ck_assert_ptr_nonnull(s.c);
    ck_assert_int_eq(nsq_consumer_connect_nsqd(s.c, d.tcp), 0);
    ck_assert(run_until(s.base, sink_done, &s, WAIT_MS));
    ck_assert_int_eq(s.received, 5);
    const char *want[] = {"one", "two", "three", "four", "five"};
    for (int i = 0; i < 5; i++)
        ck_assert_msg(has_body(&s, want[i]), "missing %s", want[i]);
    struct nsq_consumer_stats st;
    nsq_consumer_get_stats(s.c, &st);
    ck_assert_int_eq(st.connections, 1);
    ck_assert_uint_eq(st.messages_received, 5);
    sink_stop(&s);
    nsq_config_free(cfg);
    nsqd_stop(&d);
}
END_TEST

struct async_state {
    int ok, failed;
};

static void async_done(int err, const char *text, void *arg)
{
    struct async_state *a = arg;
    if (err == 0)
        a->ok++;
    else
        a->failed++;
}

static bool async_all(void *arg)
{
    struct async_state *a = arg;
    return a->ok + a->failed >= 200;
}

static bool async_all_one(void *arg)
{
    struct async_state *a = arg;
    return a->ok + a->failed >= 1;
}

static bool async_all_two(void *arg)
{
    struct async_state *a = arg;
    return a->ok + a->failed >= 2;
}

START_TEST(test_async_publish)
{
    struct nsqd d;
    nsqd_start(&d, NULL);
    struct event_base *base = event_base_new();
    struct nsq_producer *p = nsq_producer_new(base, d.tcp, NULL);
    struct async_state a = {0};
    char body[32];
    for (int i = 0; i < 200; i++) {
        snprintf(body, sizeof(body), "m%d", i);
        ck_assert_int_eq(nsq_producer_publish_async(p, "async", body, strlen(body), async_done, &a),
                         0);
    }
    ck_assert(run_until(base, async_all, &a, WAIT_MS));
    ck_assert_int_eq(a.ok, 200);
    ck_assert_uint_eq(nsq_producer_pending(p), 0);
    nsq_producer_free(p);

    struct sink s = {.base = base, .expected = 200};
    struct nsq_config *cfg = config((const char *const[]){"max_in_flight", "50", NULL});
    s.c = nsq_consumer_new(base, "async", "ch", cfg, sink_handle, &s);
    nsq_consumer_connect_nsqd(s.c, d.tcp);
    ck_assert(run_until(base, sink_done, &s, WAIT_MS));
    ck_assert(has_body(&s, "m0") && has_body(&s, "m199"));
    sink_stop(&s);
    nsq_config_free(cfg);
    nsqd_stop(&d);
}
END_TEST

/* nsq_producer_set_msg_ttl: every publish form, synchronous and asynchronous, carries the TTL;
   expired messages are never delivered, those without a TTL (or with a TTL not yet passed) are. */
START_TEST(test_publish_ttl)
{
    struct nsqd d;
    nsqd_start(&d, NULL);
    int http = harness_port(d.p, "HTTP");
    ck_assert_int_eq(itest_http("POST", http, "/topic/create?topic=ttl", NULL, NULL), 200);
    ck_assert_int_eq(itest_http("POST", http, "/channel/create?topic=ttl&channel=ch", NULL, NULL),
                     200);
    struct event_base *base = event_base_new();
    struct nsq_producer *p = nsq_producer_new(base, d.tcp, NULL);
    struct async_state a = {0};
    const void *gone[] = {"gone-m1", "gone-m2"}, *live[] = {"live-m1", "live-m2"};
    size_t lens[] = {7, 7};
    ck_assert_int_eq(nsq_producer_set_msg_ttl(p, -1), -EINVAL);
    ck_assert_int_eq(nsq_producer_set_msg_ttl(p, 4294967296LL), -EINVAL);

    int64_t t0 = harness_now_ms();
    ck_assert_int_eq(nsq_producer_set_msg_ttl(p, SHORT_TTL_MS), 0);
    ck_assert_int_eq(nsq_producer_publish(p, "ttl", "gone-pub", 8), 0);
    ck_assert_int_eq(nsq_producer_multi_publish(p, "ttl", gone, lens, 2), 0);
    ck_assert_int_eq(nsq_producer_deferred_publish(p, "ttl", DEFER_MS, "gone-dpub", 9), 0);
    ck_assert_int_eq(nsq_producer_publish_async(p, "ttl", "gone-async", 10, async_done, &a), 0);
    ck_assert(run_until(base, async_all_one, &a, WAIT_MS));
    ck_assert_int_eq(a.ok, 1);
    while (harness_now_ms() < t0 + SHORT_TTL_MS + TTL_MARGIN_MS)
        usleep(5000);

    ck_assert_int_eq(nsq_producer_set_msg_ttl(p, 0), 0);
    ck_assert_int_eq(nsq_producer_publish(p, "ttl", "live-pub", 8), 0);
    ck_assert_int_eq(nsq_producer_multi_publish(p, "ttl", live, lens, 2), 0);
    ck_assert_int_eq(nsq_producer_deferred_publish(p, "ttl", DEFER_MS, "live-dpub", 9), 0);
    ck_assert_int_eq(nsq_producer_set_msg_ttl(p, LONG_TTL_MS), 0);
    ck_assert_int_eq(nsq_producer_publish_async(p, "ttl", "live-async", 10, async_done, &a), 0);
    ck_assert(run_until(base, async_all_two, &a, WAIT_MS));
    ck_assert_int_eq(a.ok, 2);
    nsq_producer_free(p);

    struct sink s = {.base = base, .expected = 5};
    struct nsq_config *cfg = config((const char *const[]){"max_in_flight", "20", NULL});
    s.c = nsq_consumer_new(base, "ttl", "ch", cfg, sink_handle, &s);
    ck_assert_int_eq(nsq_consumer_connect_nsqd(s.c, d.tcp), 0);
    ck_assert_msg(run_until(base, sink_done, &s, WAIT_MS), "received %d of 5", s.received);
    /* all 10 messages are accounted for (5 expired, 5 received): nothing else can arrive */
    struct itest_expired_wait w = {http, "ttl", "ch", 5};
    ck_assert_msg(harness_wait_until(itest_expired_reached, &w, WAIT_MS),
                  "expired: topic %lld channel %lld",
                  (long long)itest_stats_int(http, "ttl", NULL, "expired_count"),
                  (long long)itest_stats_int(http, "ttl", "ch", "expired_count"));
    ck_assert_int_eq(s.received, 5);
    const char *want[] = {"live-pub", "live-m1", "live-m2", "live-dpub", "live-async"};
    for (int i = 0; i < 5; i++)
        ck_assert_msg(has_body(&s, want[i]), "missing %s", want[i]);
    sink_stop(&s);
    nsq_config_free(cfg);
    nsqd_stop(&d);
}
END_TEST

/* max_in_flight across three nsqds: never more messages held than the budget, and every nsqd's
   messages are consumed (no connection starves), with fewer and with more connections than
   budget. */
static void rdy_distribution(int max_in_flight)
{
    struct nsqd d[3];
    char prefix[8];
    for (int i = 0; i < 3; i++) {
        nsqd_start(&d[i], NULL);
        snprintf(prefix, sizeof(prefix), "n%d-", i);
        publish_n(d[i].tcp, "rdy", 20, prefix);
    }
    char mif[16];
    snprintf(mif, sizeof(mif), "%d", max_in_flight);
    /* a connection dropped under a loaded machine is redialed quickly (the default waits for
       the lookupd poll interval, a minute) so that its requeued messages still arrive */
    struct nsq_config *cfg = config((const char *const[]){
            "max_in_flight", mif, "rdy_redistribute_interval", "20ms", "low_rdy_idle_timeout",
            "50ms", "low_rdy_timeout", "100ms", "lookupd_poll_interval", "100ms", NULL});
    struct sink s = {.base = event_base_new(), .expected = 60, .hold_ms = 3};
    s.c = nsq_consumer_new(s.base, "rdy", "ch", cfg, sink_handle, &s);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(nsq_consumer_connect_nsqd(s.c, d[i].tcp), 0);
    bool done = run_until(s.base, sink_done, &s, 30000);
    struct nsq_consumer_stats st;
    nsq_consumer_get_stats(s.c, &st);
    ck_assert_msg(done, "received %d of 60 (%d connections subscribed, %d held, backoff %d)",
                  s.received, st.connections, st.in_flight, st.backoff_level);
    ck_assert_int_le(s.max_held, max_in_flight);
    ck_assert_int_ge(s.max_held, 1);
    for (int i = 0; i < 3; i++) {
        char body[16];
        snprintf(body, sizeof(body), "n%d-19", i);
        ck_assert_msg(has_body(&s, body), "nsqd %d starved", i);
    }
    sink_stop(&s);
    nsq_config_free(cfg);
    for (int i = 0; i < 3; i++)
        nsqd_stop(&d[i]);
}

START_TEST(test_rdy_fewer_conns_than_budget)
{
    rdy_distribution(7);
}
END_TEST

START_TEST(test_rdy_more_conns_than_budget)
{
    rdy_distribution(2);
}
END_TEST

START_TEST(test_requeue_and_backoff)
{
    struct nsqd d;
    nsqd_start(&d, NULL);
    publish_n(d.tcp, "req", 5, "r");
    struct nsq_config *cfg = config((const char *const[]){
            "max_in_flight", "5", "default_requeue_delay", "0s", "backoff_multiplier", "10ms",
            "max_backoff_duration", "100ms", NULL});
    struct sink s = {.base = event_base_new(), .expected = 5, .fail_first = 1};
    s.c = nsq_consumer_new(s.base, "req", "ch", cfg, sink_handle, &s);
    nsq_consumer_connect_nsqd(s.c, d.tcp);
    ck_assert(run_until(s.base, sink_done, &s, WAIT_MS));
    ck_assert_int_eq(s.max_attempts_seen, 2);
    struct nsq_consumer_stats st;
    nsq_consumer_get_stats(s.c, &st);
    ck_assert_uint_eq(st.messages_requeued, 5);
    ck_assert_uint_eq(st.messages_finished, 5);
    sink_stop(&s);
    nsq_config_free(cfg);
    nsqd_stop(&d);
}
END_TEST

static bool backoff_raised(void *arg)
{
    struct sink *s = arg;
    struct nsq_consumer_stats st;
    nsq_consumer_get_stats(s->c, &st);
    return st.backoff_level > 0;
}

static bool finished_one(void *arg)
{
    struct sink *s = arg;
    struct nsq_consumer_stats st;
    nsq_consumer_get_stats(s->c, &st);
    return st.messages_finished >= 1;
}

START_TEST(test_max_attempts)
{
    struct nsqd d;
    nsqd_start(&d, NULL);
    publish_n(d.tcp, "att", 1, "a");
    struct nsq_config *cfg = config((const char *const[]){
            "max_attempts", "3", "default_requeue_delay", "0s", "backoff_multiplier", "5ms",
            "max_backoff_duration", "20ms", NULL});
    /* the handler fails every time: it is called for attempts 1..3, then the message is
       finished without it */
    struct sink s = {.base = event_base_new(), .expected = 3, .always_fail = 1};
    s.c = nsq_consumer_new(s.base, "att", "ch", cfg, sink_handle, &s);
    nsq_consumer_connect_nsqd(s.c, d.tcp);
    ck_assert(run_until(s.base, backoff_raised, &s, WAIT_MS));
    ck_assert(run_until(s.base, sink_done, &s, WAIT_MS));
    struct nsq_consumer_stats st;
    ck_assert(run_until(s.base, finished_one, &s, WAIT_MS));
    nsq_consumer_get_stats(s.c, &st);
    ck_assert_uint_eq(st.messages_finished, 1);
    ck_assert_int_eq(s.received, 3);
    ck_assert_int_eq(s.max_attempts_seen, 3);
    sink_stop(&s);
    nsq_config_free(cfg);
    nsqd_stop(&d);
}
END_TEST

/* Round trip of 100 larger messages with the given client options (both sides). */
static void transport_roundtrip(struct nsqd *d, const char *const *kv)
{
    struct nsq_config *cfg = config(kv);
    nsq_config_set(cfg, "max_in_flight", "20");
    struct nsq_producer *p = nsq_producer_new(NULL, d->tcp, cfg);
    char body[2048];
    for (int i = 0; i < 100; i++) {
        memset(body, 'a' + i % 26, sizeof(body));
        int n = snprintf(body, sizeof(body), "t%d-", i);
        body[n] = '-';
        ck_assert_msg(nsq_producer_publish(p, "tr", body, sizeof(body)) == 0, "%s",
                      nsq_producer_last_error(p));
    }
    nsq_producer_free(p);
    struct sink s = {.base = event_base_new(), .expected = 100};
    s.c = nsq_consumer_new(s.base, "tr", "ch", cfg, sink_handle, &s);
    nsq_consumer_connect_nsqd(s.c, d->tcp);
    ck_assert_msg(run_until(s.base, sink_done, &s, WAIT_MS), "received %d", s.received);
    /* bodies are "t<i>-" then the letter of i repeated (the sink keeps the first 63 bytes) */
    ck_assert(has_body(&s, "t0--aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
    ck_assert(has_body(&s, "t99--vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv"));
    sink_stop(&s);
    nsq_config_free(cfg);
}

START_TEST(test_snappy_and_deflate)
{
    struct nsqd d;
    nsqd_start(&d, NULL);
    transport_roundtrip(&d, (const char *const[]){"snappy", "true", NULL});
    transport_roundtrip(&d, (const char *const[]){"deflate", "true", "deflate_level", "3", NULL});
    nsqd_stop(&d);
}
END_TEST

START_TEST(test_tls)
{
    char *dir = harness_tmpdir();
    char cmd[2048], cert[600], key[600], certf[700], keyf[700];
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey rsa:2048 -nodes -keyout %s -out %s -days 1 "
             "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>/dev/null",
             key, cert);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(certf, sizeof(certf), "--tls-cert=%s", cert);
    snprintf(keyf, sizeof(keyf), "--tls-key=%s", key);
    struct nsqd d;
    nsqd_start(&d, (const char *const[]){certf, keyf, "--https-address=127.0.0.1:0", NULL});
    transport_roundtrip(&d,
                        (const char *const[]){"tls_v1", "true", "tls_root_ca_file", cert, NULL});
    transport_roundtrip(&d, (const char *const[]){"tls_v1", "true", "tls_insecure_skip_verify",
                                                  "true", "snappy", "true", NULL});
    /* a server certificate the client does not trust fails the connection */
    struct nsq_config *cfg = config((const char *const[]){"tls_v1", "true", NULL});
    struct nsq_producer *p = nsq_producer_new(NULL, d.tcp, cfg);
    ck_assert_int_lt(nsq_producer_publish(p, "tr", "x", 1), 0);
    nsq_producer_free(p);
    nsq_config_free(cfg);
    nsqd_stop(&d);
    harness_rmdir(dir);
    free(dir);
}
END_TEST

START_TEST(test_config_errors)
{
    struct nsq_config *cfg = nsq_config_new();
    ck_assert_int_eq(nsq_config_set(cfg, "no_such_option", "1"), -ENOENT);
    ck_assert_int_eq(nsq_config_set(cfg, "max_in_flight", "x"), -EINVAL);
    ck_assert_int_eq(nsq_config_set(cfg, "deflate_level", "10"), -EINVAL);
    ck_assert_int_eq(nsq_config_set(cfg, "read_timeout", "5"), -EINVAL);
    ck_assert_int_eq(nsq_config_set_opt(cfg, "snappy"), 0);
    ck_assert_int_eq(nsq_config_set_opt(cfg, "max_in_flight,100"), 0);
    ck_assert_int_eq(nsq_config_set_opt(cfg, "backoff_strategy,full_jitter"), 0);
    ck_assert_ptr_null(nsq_producer_new(NULL, "no-port", cfg));
    struct event_base *base = event_base_new();
    ck_assert_ptr_null(nsq_consumer_new(base, "bad topic", "ch", cfg, sink_handle, NULL));
    event_base_free(base);
    nsq_config_free(cfg);
}
END_TEST

static bool never(void *arg)
{
    return false;
}

/* With a 1 s heartbeat nsqd drops a silent client after 2 s: the library must answer them. */
START_TEST(test_heartbeats_answered)
{
    struct nsqd d;
    nsqd_start(&d, NULL);
    struct nsq_config *cfg = config((const char *const[]){"heartbeat_interval", "1s", NULL});
    struct sink s = {.base = event_base_new(), .expected = 1};
    s.c = nsq_consumer_new(s.base, "hb", "ch", cfg, sink_handle, &s);
    nsq_consumer_connect_nsqd(s.c, d.tcp);
    run_until(s.base, never, NULL, 3500);
    struct nsq_consumer_stats st;
    nsq_consumer_get_stats(s.c, &st);
    ck_assert_int_eq(st.connections, 1);
    struct nsq_producer *p = nsq_producer_new(s.base, d.tcp, cfg);
    ck_assert_int_eq(nsq_producer_publish_async(p, "hb", "alive", 5, NULL, NULL), 0);
    ck_assert(run_until(s.base, sink_done, &s, WAIT_MS));
    ck_assert(has_body(&s, "alive"));
    /* the producer connection idles through heartbeats too */
    run_until(s.base, never, NULL, 2500);
    ck_assert_int_eq(nsq_producer_publish_async(p, "hb", "again", 5, NULL, NULL), 0);
    s.expected = 2;
    ck_assert(run_until(s.base, sink_done, &s, WAIT_MS));
    nsq_producer_free(p);
    sink_stop(&s);
    nsq_config_free(cfg);
    nsqd_stop(&d);
}
END_TEST

/* ---- AUTH: an auth server in a thread grants topic "secret" to the secret "letmein" ---- */

struct auth_server {
    pthread_t thread;
    struct event_base *base;
    struct evhttp *http;
    int port;
};

static void auth_cb(struct evhttp_request *req, void *arg)
{
    struct evkeyvalq q;
    const char *uri = evhttp_request_get_uri(req);
    const char *qs = strchr(uri, '?');
    evhttp_parse_query_str(qs ? qs + 1 : "", &q);
    const char *secret = evhttp_find_header(&q, "secret");
    struct evbuffer *out = evbuffer_new();
    if (secret && !strcmp(secret, "letmein")) {
        evbuffer_add_printf(out,
                            "{\"ttl\":3600,\"identity\":\"tester\",\"identity_url\":\"\","
                            "\"authorizations\":[{\"topic\":\"^secret$\",\"channels\":[\".*\"],"
                            "\"permissions\":[\"subscribe\",\"publish\"]}]}");
        evhttp_send_reply(req, 200, "OK", out);
    } else {
        evhttp_send_reply(req, 403, "Forbidden", out);
    }
    evbuffer_free(out);
    evhttp_clear_headers(&q);
}

static void *auth_main(void *arg)
{
    event_base_dispatch(((struct auth_server *)arg)->base);
    return NULL;
}

START_TEST(test_auth)
{
    struct auth_server a;
    evthread_use_pthreads();
    a.base = event_base_new();
    a.http = evhttp_new(a.base);
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(a.http, "127.0.0.1", 0);
    ck_assert_ptr_nonnull(bs);
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sa, &sl);
    a.port = ntohs(sa.sin_port);
    evhttp_set_gencb(a.http, auth_cb, &a);
    pthread_create(&a.thread, NULL, auth_main, &a);

    char authf[64];
    snprintf(authf, sizeof(authf), "--auth-http-address=127.0.0.1:%d", a.port);
    struct nsqd d;
    nsqd_start(&d, (const char *const[]){authf, NULL});

    /* no secret: refused before anything is sent */
    struct nsq_producer *p = nsq_producer_new(NULL, d.tcp, NULL);
    ck_assert_int_eq(nsq_producer_publish(p, "secret", "x", 1), -EACCES);
    nsq_producer_free(p);
    /* wrong secret: nsqd's answer */
    struct nsq_config *bad = config((const char *const[]){"auth_secret", "guess", NULL});
    p = nsq_producer_new(NULL, d.tcp, bad);
    ck_assert_int_eq(nsq_producer_publish(p, "secret", "x", 1), -NSQ_ESERVER);
    ck_assert_str_eq(nsq_producer_last_error(p), "E_AUTH_FAILED AUTH failed");
    nsq_producer_free(p);
    nsq_config_free(bad);

    struct nsq_config *cfg = config((const char *const[]){"auth_secret", "letmein", NULL});
    p = nsq_producer_new(NULL, d.tcp, cfg);
    ck_assert_int_eq(nsq_producer_publish(p, "secret", "granted", 7), 0);
    ck_assert_int_eq(nsq_producer_publish(p, "other", "x", 1), -NSQ_ESERVER);
    ck_assert_str_eq(nsq_producer_last_error(p),
                     "E_UNAUTHORIZED AUTH failed for PUB on \"other\" \"\"");
    nsq_producer_free(p);

    struct sink s = {.base = event_base_new(), .expected = 1};
    s.c = nsq_consumer_new(s.base, "secret", "ch", cfg, sink_handle, &s);
    nsq_consumer_connect_nsqd(s.c, d.tcp);
    ck_assert(run_until(s.base, sink_done, &s, WAIT_MS));
    ck_assert(has_body(&s, "granted"));
    sink_stop(&s);
    nsq_config_free(cfg);
    nsqd_stop(&d);
    event_base_loopbreak(a.base);
    pthread_join(a.thread, NULL);
    evhttp_free(a.http);
    event_base_free(a.base);
}
END_TEST

/* ---- discovery through nsqlookupd ---- */

struct lookup_wait {
    int http_port;
    const char *topic;
    int producers;
};

static bool lookupd_has(void *arg)
{
    struct lookup_wait *w = arg;
    struct harness_response r;
    char path[256];
    int count = 0;
    snprintf(path, sizeof(path), "/lookup?topic=%s", w->topic);
    if (harness_http("GET", w->http_port, path, NULL, 0, &r) != 0)
        return false;
    for (const char *p = r.body; r.status == 200 && (p = strstr(p, "\"tcp_port\"")); p++)
        count++;
    harness_response_free(&r);
    return count >= w->producers;
}

/* The consumer's topology_zone / topology_region reach nsqd in IDENTIFY: an nsqd in the same zone
   (topology experiment on) counts its deliveries as zone-local and shows the fields. */
START_TEST(test_topology_sent)
{
    const char *flags[] = {"--enable-experiment=topology-aware-consumption", "--topology-zone=z1",
                           "--topology-region=r1", NULL};
    struct nsqd d;
    nsqd_start(&d, flags);
    publish_n(d.tcp, "topo", 1, "t-");
    struct sink s = {.base = event_base_new(), .expected = 1};
    struct nsq_config *cfg =
            config((const char *const[]){"topology_zone", "z1", "topology_region", "r1", NULL});
    s.c = nsq_consumer_new(s.base, "topo", "ch", cfg, sink_handle, &s);
    ck_assert_ptr_nonnull(s.c);
    ck_assert_int_eq(nsq_consumer_connect_nsqd(s.c, d.tcp), 0);
    ck_assert(run_until(s.base, sink_done, &s, WAIT_MS));
    struct harness_response r;
    ck_assert_int_eq(
            harness_http("GET", harness_port(d.p, "HTTP"), "/stats?format=json", NULL, 0, &r), 0);
    ck_assert_msg(strstr(r.body, "\"zone_local_msg_count\":1") != NULL, "stats: %s", r.body);
    ck_assert_msg(strstr(r.body, "\"topology_zone\":\"z1\",\"topology_region\":\"r1\"") != NULL,
                  "stats: %s", r.body);
    harness_response_free(&r);
    sink_stop(&s);
    nsq_config_free(cfg);
    nsqd_stop(&d);
}
END_TEST

START_TEST(test_lookupd_discovery)
{
    const char *largs[] = {"--tcp-address=127.0.0.1:0", "--http-address=127.0.0.1:0",
                           "--broadcast-address=127.0.0.1", NULL};
    struct harness_proc *l = harness_start(NSQLOOKUPD_BIN, largs, 2);
    ck_assert_ptr_nonnull(l);
    char laddr[64], lhttp[64];
    snprintf(laddr, sizeof(laddr), "--lookupd-tcp-address=127.0.0.1:%d", harness_port(l, "TCP"));
    snprintf(lhttp, sizeof(lhttp), "http://127.0.0.1:%d", harness_port(l, "HTTP"));
    const char *nargs[] = {laddr, "--broadcast-address=127.0.0.1", NULL};
    struct nsqd d[2];
    nsqd_start(&d[0], nargs);
    publish_n(d[0].tcp, "disc", 3, "first-");
    struct lookup_wait w = {harness_port(l, "HTTP"), "disc", 1};
    ck_assert(harness_wait_until(lookupd_has, &w, WAIT_MS));

    struct nsq_config *cfg = config(
            (const char *const[]){"max_in_flight", "10", "lookupd_poll_interval", "100ms", NULL});
    struct sink s = {.base = event_base_new(), .expected = 3};
    s.c = nsq_consumer_new(s.base, "disc", "ch", cfg, sink_handle, &s);
    ck_assert_int_eq(nsq_consumer_connect_lookupd(s.c, lhttp), 0);
    ck_assert_int_eq(nsq_consumer_connect_lookupd(s.c, lhttp), -EEXIST);
    ck_assert(run_until(s.base, sink_done, &s, WAIT_MS));
    ck_assert(has_body(&s, "first-2"));

    /* a producer appearing later is found by the periodic poll */
    nsqd_start(&d[1], nargs);
    publish_n(d[1].tcp, "disc", 3, "second-");
    s.expected = 6;
    ck_assert_msg(run_until(s.base, sink_done, &s, WAIT_MS), "received %d", s.received);
    ck_assert(has_body(&s, "second-0") && has_body(&s, "second-2"));
    struct nsq_consumer_stats st;
    nsq_consumer_get_stats(s.c, &st);
    ck_assert_int_eq(st.connections, 2);
    sink_stop(&s);
    nsq_config_free(cfg);
    nsqd_stop(&d[0]);
    nsqd_stop(&d[1]);
    ck_assert_int_eq(harness_stop(l, 0), 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("clients_lib");
    TCase *tc = tcase_create("lib");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_config_errors);
    tcase_add_test(tc, test_publish_forms_and_consume);
    tcase_add_test(tc, test_async_publish);
    tcase_add_test(tc, test_publish_ttl);
    tcase_add_test(tc, test_rdy_fewer_conns_than_budget);
    tcase_add_test(tc, test_rdy_more_conns_than_budget);
    tcase_add_test(tc, test_requeue_and_backoff);
    tcase_add_test(tc, test_max_attempts);
    tcase_add_test(tc, test_snappy_and_deflate);
    tcase_add_test(tc, test_tls);
    tcase_add_test(tc, test_lookupd_discovery);
    tcase_add_test(tc, test_topology_sent);
    tcase_add_test(tc, test_heartbeats_answered);
    tcase_add_test(tc, test_auth);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
