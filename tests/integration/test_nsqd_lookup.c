/*
 * test_nsqd_lookup: nsqd registering with a real nsqlookupd (behaviour.md §2, §9): topics and
 * channels appear in /lookup, /channels, /debug; deletions unregister; a restarted lookupd is
 * re-synced within seconds; a topic created on a new nsqd gets the channels lookupd knows; the
 * lookupd list can change at run time; dead lookupds never stall the daemon.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <cjson/cJSON.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "nsqd_itest.h"

#define RESYNC_MS       15000
#define REGISTER_MS     5000
#define STALL_PUBS      20
#define STALL_BUDGET_MS 2000
#define SILENT_BACKLOG  16

struct lookupd {
    struct harness_proc *p;
    int tcp, http;
};

static void lookupd_start(struct lookupd *l, int tcp_port)
{
    char tcp[64];
    const char *args[] = {tcp, "--http-address=127.0.0.1:0", "--broadcast-address=127.0.0.1", NULL};
    snprintf(tcp, sizeof(tcp), "--tcp-address=127.0.0.1:%d", tcp_port);
    l->p = harness_start(NSQLOOKUPD_BIN, args, 2);
    ck_assert_ptr_nonnull(l->p);
    l->tcp = harness_port(l->p, "TCP");
    l->http = harness_port(l->p, "HTTP");
}

struct nsqd {
    struct harness_proc *p;
    char *dir;
    int tcp, http;
};

static void nsqd_start(struct nsqd *n, const struct lookupd *l)
{
    char lookup[64];
    const char *with[] = {"--broadcast-address=127.0.0.1", lookup, NULL};
    const char *without[] = {"--broadcast-address=127.0.0.1", NULL};
    snprintf(lookup, sizeof(lookup), "--lookupd-tcp-address=127.0.0.1:%d", l ? l->tcp : 0);
    n->dir = harness_tmpdir();
    n->p = itest_nsqd_start(n->dir, l ? with : without);
    ck_assert_ptr_nonnull(n->p);
    n->tcp = harness_port(n->p, "TCP");
    n->http = harness_port(n->p, "HTTP");
}

static void nsqd_stop(struct nsqd *n)
{
    ck_assert_int_eq(harness_stop(n->p, SIGTERM), 0);
    harness_rmdir(n->dir);
    free(n->dir);
}

static void post(int port, const char *path, const char *body, long want)
{
    char *out = NULL;
    long st = itest_http("POST", port, path, body, &out);
    ck_assert_msg(st == want, "POST %s: %ld (%s), want %ld", path, st, out ? out : "", want);
    free(out);
}

/* ---- conditions on the lookupd ---- */

struct cond {
    const struct lookupd *l;
    const char *topic;
    const char *channel;
    const char *key;
    int tcp_port;
};

static bool array_has_port(const cJSON *arr, int tcp_port)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        const cJSON *p = cJSON_GetObjectItem(it, "tcp_port");
        if (cJSON_IsNumber(p) && p->valueint == tcp_port)
            return true;
    }
    return false;
}

/* /lookup?topic=T lists the nsqd with tcp_port among its producers. */
static bool lookup_has_producer(void *arg)
{
    struct cond *c = arg;
    char path[256];
    long st;
    cJSON *j;
    bool r;
    snprintf(path, sizeof(path), "/lookup?topic=%s", c->topic);
    j = itest_http_json("GET", c->l->http, path, NULL, &st);
    r = st == 200 && array_has_port(cJSON_GetObjectItem(j, "producers"), c->tcp_port);
    cJSON_Delete(j);
    return r;
}

static bool lookup_lacks_producer(void *arg)
{
    struct cond *c = arg;
    char path[256];
    long st;
    cJSON *j;
    bool r;
    snprintf(path, sizeof(path), "/lookup?topic=%s", c->topic);
    j = itest_http_json("GET", c->l->http, path, NULL, &st);
    r = (st == 200 || st == 404) &&
        !array_has_port(cJSON_GetObjectItem(j, "producers"), c->tcp_port);
    cJSON_Delete(j);
    return r;
}

/* /debug has registration key `key` with the nsqd among its producers. */
static bool debug_has(void *arg)
{
    struct cond *c = arg;
    long st;
    cJSON *j = itest_http_json("GET", c->l->http, "/debug", NULL, &st);
    bool r = st == 200 && array_has_port(cJSON_GetObjectItem(j, c->key), c->tcp_port);
    cJSON_Delete(j);
    return r;
}

static bool debug_lacks(void *arg)
{
    struct cond *c = arg;
    long st;
    cJSON *j = itest_http_json("GET", c->l->http, "/debug", NULL, &st);
    bool r = st == 200 && !array_has_port(cJSON_GetObjectItem(j, c->key), c->tcp_port);
    cJSON_Delete(j);
    return r;
}

static bool channels_has(const struct lookupd *l, const char *topic, const char *channel)
{
    char path[256];
    long st;
    const cJSON *it;
    bool r = false;
    cJSON *j;
    snprintf(path, sizeof(path), "/channels?topic=%s", topic);
    j = itest_http_json("GET", l->http, path, NULL, &st);
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(j, "channels"))
    {
        if (cJSON_IsString(it) && strcmp(it->valuestring, channel) == 0)
            r = true;
    }
    cJSON_Delete(j);
    return r;
}

static bool channels_lacks_cond(void *arg)
{
    struct cond *c = arg;
    return !channels_has(c->l, c->topic, c->channel);
}

static bool nodes_has(void *arg)
{
    struct cond *c = arg;
    long st;
    cJSON *j = itest_http_json("GET", c->l->http, "/nodes", NULL, &st);
    bool r = st == 200 && array_has_port(cJSON_GetObjectItem(j, "producers"), c->tcp_port);
    cJSON_Delete(j);
    return r;
}

START_TEST(register_and_unregister)
{
    struct lookupd l;
    struct nsqd n;
    struct cond c;
    char path[256];
    long st;
    cJSON *j, *p;

    lookupd_start(&l, 0);
    nsqd_start(&n, &l);
    c = (struct cond){.l = &l, .topic = "lt", .tcp_port = n.tcp};

    post(n.http, "/topic/create?topic=lt", NULL, 200);
    ck_assert_msg(harness_wait_until(lookup_has_producer, &c, REGISTER_MS), "topic not registered");
    snprintf(path, sizeof(path), "/lookup?topic=lt");
    j = itest_http_json("GET", l.http, path, NULL, &st);
    p = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "producers"), 0);
    ck_assert_str_eq(cJSON_GetObjectItem(p, "broadcast_address")->valuestring, "127.0.0.1");
    ck_assert_int_eq(cJSON_GetObjectItem(p, "http_port")->valueint, n.http);
    ck_assert_str_eq(cJSON_GetObjectItem(p, "version")->valuestring, "1.3.0");
    cJSON_Delete(j);
    ck_assert(harness_wait_until(nodes_has, &c, REGISTER_MS));

    post(n.http, "/channel/create?topic=lt&channel=lc", NULL, 200);
    c.key = "channel:lt:lc";
    ck_assert_msg(harness_wait_until(debug_has, &c, REGISTER_MS), "channel not registered");
    ck_assert(channels_has(&l, "lt", "lc"));

    post(n.http, "/channel/create?topic=lt&channel=le%23ephemeral", NULL, 200);
    c.key = "channel:lt:le#ephemeral";
    ck_assert(harness_wait_until(debug_has, &c, REGISTER_MS));
    ck_assert(channels_has(&l, "lt", "le#ephemeral"));
    post(n.http, "/channel/delete?topic=lt&channel=le%23ephemeral", NULL, 200);
    c.channel = "le#ephemeral";
    ck_assert_msg(harness_wait_until(channels_lacks_cond, &c, REGISTER_MS),
                  "ephemeral channel not unregistered");

    post(n.http, "/channel/delete?topic=lt&channel=lc", NULL, 200);
    c.key = "channel:lt:lc";
    ck_assert_msg(harness_wait_until(debug_lacks, &c, REGISTER_MS), "channel not unregistered");
    c.key = "topic:lt:";
    ck_assert(debug_has(&c)); /* the topic stays registered */

    post(n.http, "/topic/delete?topic=lt", NULL, 200);
    ck_assert_msg(harness_wait_until(lookup_lacks_producer, &c, REGISTER_MS),
                  "topic not unregistered");
    ck_assert(harness_wait_until(debug_lacks, &c, REGISTER_MS));

    nsqd_stop(&n);
    harness_stop(l.p, SIGTERM);
}
END_TEST

START_TEST(lookupd_restart_resyncs)
{
    struct lookupd l;
    struct nsqd n;
    struct cond c;
    int port;

    lookupd_start(&l, 0);
    port = l.tcp;
    nsqd_start(&n, &l);
    post(n.http, "/topic/create?topic=rt", NULL, 200);
    post(n.http, "/channel/create?topic=rt&channel=rc", NULL, 200);
    post(n.http, "/topic/create?topic=rt2", NULL, 200);
    c = (struct cond){.l = &l, .topic = "rt", .key = "channel:rt:rc", .tcp_port = n.tcp};
    ck_assert(harness_wait_until(debug_has, &c, REGISTER_MS));

    harness_kill(l.p);
    lookupd_start(&l, port);
    ck_assert_int_eq(l.tcp, port);
    c.l = &l;
    ck_assert_msg(harness_wait_until(lookup_has_producer, &c, RESYNC_MS), "no re-registration");
    ck_assert(harness_wait_until(debug_has, &c, REGISTER_MS));
    c.topic = "rt2";
    ck_assert(harness_wait_until(lookup_has_producer, &c, REGISTER_MS));

    nsqd_stop(&n);
    harness_stop(l.p, SIGTERM);
}
END_TEST

struct depth_cond {
    int http;
    const char *topic, *channel;
    int64_t want;
};

static bool depth_is(void *arg)
{
    struct depth_cond *d = arg;
    return itest_stats_int(d->http, d->topic, d->channel, "depth") == d->want;
}

START_TEST(channel_precreation)
{
    struct lookupd l;
    struct nsqd a, b;
    struct cond c;
    struct depth_cond d;
    cJSON *root;

    lookupd_start(&l, 0);
    nsqd_start(&a, &l);
    post(a.http, "/topic/create?topic=pc", NULL, 200);
    post(a.http, "/channel/create?topic=pc&channel=keep", NULL, 200);
    post(a.http, "/channel/create?topic=pc&channel=tmp%23ephemeral", NULL, 200);
    c = (struct cond){.l = &l, .topic = "pc", .key = "channel:pc:keep", .tcp_port = a.tcp};
    ck_assert(harness_wait_until(debug_has, &c, REGISTER_MS));
    c.key = "channel:pc:tmp#ephemeral";
    ck_assert(harness_wait_until(debug_has, &c, REGISTER_MS));

    nsqd_start(&b, &l);
    c.tcp_port = b.tcp;
    ck_assert(harness_wait_until(nodes_has, &c, REGISTER_MS));

    /* The topic appears on b through a publish: it gets lookupd's non-ephemeral channels, and the
       message published while they were being created reaches them. */
    post(b.http, "/pub?topic=pc", "hello", 200);
    d = (struct depth_cond){.http = b.http, .topic = "pc", .channel = "keep", .want = 1};
    ck_assert_msg(harness_wait_until(depth_is, &d, REGISTER_MS), "channel not pre-created");
    root = itest_stats(b.http, NULL);
    ck_assert_ptr_null(itest_stats_find(root, "pc", "tmp#ephemeral"));
    ck_assert_int_eq(cJSON_GetObjectItem(itest_stats_find(root, "pc", NULL), "depth")->valueint, 0);
    cJSON_Delete(root);

    nsqd_stop(&b);
    nsqd_stop(&a);
    harness_stop(l.p, SIGTERM);
}
END_TEST

START_TEST(runtime_addresses)
{
    struct lookupd l;
    struct nsqd n;
    struct cond c;
    char body[128], *out = NULL;

    lookupd_start(&l, 0);
    nsqd_start(&n, NULL);
    post(n.http, "/topic/create?topic=ra", NULL, 200);
    c = (struct cond){.l = &l, .topic = "ra", .tcp_port = n.tcp};

    /* An unusable entry does not keep the others from being used. */
    snprintf(body, sizeof(body), "[\"no-port\",\"127.0.0.1:%d\"]", l.tcp);
    ck_assert_int_eq(itest_http("PUT", n.http, "/config/nsqlookupd_tcp_addresses", body, &out),
                     200);
    ck_assert_str_eq(out, body);
    free(out);
    ck_assert_msg(harness_wait_until(lookup_has_producer, &c, REGISTER_MS),
                  "not registered after adding the lookupd");

    ck_assert_int_eq(itest_http("PUT", n.http, "/config/nsqlookupd_tcp_addresses", "[]", &out),
                     200);
    free(out);
    ck_assert_msg(harness_wait_until(lookup_lacks_producer, &c, REGISTER_MS),
                  "still registered after removing the lookupd");

    nsqd_stop(&n);
    harness_stop(l.p, SIGTERM);
}
END_TEST

/* A TCP listener that never accepts nor answers: connects succeed, replies never come. */
static int silent_listener(int *port)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    ck_assert_int_eq(listen(fd, SILENT_BACKLOG), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    *port = ntohs(sin.sin_port);
    return fd;
}

START_TEST(dead_lookupd_does_not_stall)
{
    /* A refusing port, an unroutable address (connects hang until the deadline) and a lookupd
       that accepts but never answers (replies time out). */
    int silent_port, silent = silent_listener(&silent_port);
    char silent_arg[64];
    const char *extra[] = {"--lookupd-tcp-address=127.0.0.1:1",
                           "--lookupd-tcp-address=10.255.255.1:4160", silent_arg, NULL};
    char *dir = harness_tmpdir();
    struct harness_proc *p;
    int http;
    int64_t t0;
    char path[64];

    snprintf(silent_arg, sizeof(silent_arg), "--lookupd-tcp-address=127.0.0.1:%d", silent_port);
    p = itest_nsqd_start(dir, extra);
    ck_assert_ptr_nonnull(p);
    http = harness_port(p, "HTTP");
    t0 = harness_now_ms();
    for (int i = 0; i < STALL_PUBS; i++) {
        snprintf(path, sizeof(path), "/pub?topic=stall%d", i);
        post(http, path, "x", 200);
    }
    ck_assert_msg(harness_now_ms() - t0 < STALL_BUDGET_MS, "%d publishes took %lld ms", STALL_PUBS,
                  (long long)(harness_now_ms() - t0));
    /* Still responsive once the silent lookupd's reply deadline has passed. */
    ck_assert(harness_log_wait(p, "i/o timeout", RESYNC_MS));
    t0 = harness_now_ms();
    post(http, "/pub?topic=stall_after", "x", 200);
    ck_assert_int_lt(harness_now_ms() - t0, STALL_BUDGET_MS);
    ck_assert_int_eq(harness_stop(p, SIGTERM), 0);
    close(silent);
    harness_rmdir(dir);
    free(dir);
}
END_TEST

/* A lookupd that answers IDENTIFY and commands over TCP but names, as its HTTP port, a listener
   that never answers: channel queries hang until nsqd's HTTP client gives up. */
struct fake_lookupd {
    int lfd, port;
    int http_port; /* the silent listener */
    pthread_t thread;
    atomic_int commands; /* written by the fake's thread, read by the test */
};

static int read_full(int fd, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

static void send_v1(int fd, const char *data)
{
    uint32_t be = htonl((uint32_t)strlen(data));
    if (write(fd, &be, 4) != 4 || write(fd, data, strlen(data)) != (ssize_t)strlen(data))
        return;
}

static void *fake_lookupd_run(void *arg)
{
    struct fake_lookupd *f = arg;
    int fd = accept(f->lfd, NULL, NULL);
    char line[512], reply[256];
    size_t len = 0;
    if (fd < 0)
        return NULL;
    if (read_full(fd, line, 4) != 0)
        goto out;
    for (;;) {
        if (read_full(fd, line + len, 1) != 0)
            break;
        if (line[len] != '\n') {
            if (len + 1 < sizeof(line))
                len++;
            continue;
        }
        line[len] = '\0';
        len = 0;
        if (strcmp(line, "IDENTIFY") == 0) {
            uint32_t be;
            char body[1024];
            if (read_full(fd, &be, 4) != 0 || ntohl(be) >= sizeof(body) ||
                read_full(fd, body, ntohl(be)) != 0)
                break;
            snprintf(reply, sizeof(reply),
                     "{\"broadcast_address\":\"127.0.0.1\",\"hostname\":\"fake\","
                     "\"http_port\":%d,\"tcp_port\":%d,\"version\":\"1.3.0\"}",
                     f->http_port, f->port);
            send_v1(fd, reply);
        } else {
            send_v1(fd, "OK");
        }
        atomic_fetch_add(&f->commands, 1);
    }
out:
    close(fd);
    return NULL;
}

static bool fake_identified(void *arg)
{
    struct fake_lookupd *f = arg;
    return atomic_load(&f->commands) > 0;
}

START_TEST(shutdown_with_pending_channel_query)
{
    struct fake_lookupd f = {0};
    int silent = silent_listener(&f.http_port);
    char *dir = harness_tmpdir(), arg[64];
    const char *extra[] = {arg, "--http-client-request-timeout=30s", NULL};
    struct harness_proc *p;
    int http;
    int64_t t0;

    f.lfd = silent_listener(&f.port);
    ck_assert_int_eq(pthread_create(&f.thread, NULL, fake_lookupd_run, &f), 0);
    snprintf(arg, sizeof(arg), "--lookupd-tcp-address=127.0.0.1:%d", f.port);
    p = itest_nsqd_start(dir, extra);
    ck_assert_ptr_nonnull(p);
    http = harness_port(p, "HTTP");
    ck_assert(harness_wait_until(fake_identified, &f, REGISTER_MS));

    /* The topic's channel query now hangs on the silent HTTP port; publishing does not. */
    t0 = harness_now_ms();
    post(http, "/pub?topic=pending", "x", 200);
    post(http, "/pub?topic=pending", "y", 200);
    ck_assert_int_lt(harness_now_ms() - t0, STALL_BUDGET_MS);
    ck_assert_int_eq(itest_stats_int(http, "pending", NULL, "depth"), 2);

    /* A clean, prompt exit with the query still pending. */
    t0 = harness_now_ms();
    ck_assert_int_eq(harness_stop(p, SIGTERM), 0);
    ck_assert_int_lt(harness_now_ms() - t0, STALL_BUDGET_MS);
    pthread_join(f.thread, NULL);
    close(f.lfd);
    close(silent);
    harness_rmdir(dir);
    free(dir);
}
END_TEST

START_TEST(broadcast_overrides)
{
    struct lookupd l;
    struct cond c;
    char arg[64], *dir = harness_tmpdir();
    const char *extra[] = {arg, "--broadcast-address=nsqd.example", "--broadcast-tcp-port=7777",
                           "--broadcast-http-port=7778", NULL};
    struct harness_proc *p;
    cJSON *j, *node;
    long st;

    lookupd_start(&l, 0);
    snprintf(arg, sizeof(arg), "--lookupd-tcp-address=127.0.0.1:%d", l.tcp);
    p = itest_nsqd_start(dir, extra);
    ck_assert_ptr_nonnull(p);
    c = (struct cond){.l = &l, .tcp_port = 7777};
    ck_assert(harness_wait_until(nodes_has, &c, REGISTER_MS));
    j = itest_http_json("GET", l.http, "/nodes", NULL, &st);
    node = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "producers"), 0);
    ck_assert_str_eq(cJSON_GetObjectItem(node, "broadcast_address")->valuestring, "nsqd.example");
    ck_assert_int_eq(cJSON_GetObjectItem(node, "http_port")->valueint, 7778);
    {
        char host[256];
        gethostname(host, sizeof(host));
        host[sizeof(host) - 1] = '\0';
        ck_assert_str_eq(cJSON_GetObjectItem(node, "hostname")->valuestring, host);
    }
    cJSON_Delete(j);
    ck_assert_int_eq(harness_stop(p, SIGTERM), 0);
    harness_stop(l.p, SIGTERM);
    harness_rmdir(dir);
    free(dir);
}
END_TEST

/* /lookup?topic=T answers 404 (the registration key is gone). */
static bool topic_gone(void *arg)
{
    struct cond *c = arg;
    char path[256];
    snprintf(path, sizeof(path), "/lookup?topic=%s", c->topic);
    return itest_http("GET", c->l->http, path, NULL, NULL) == 404;
}

/* An ephemeral channel disappears with its last consumer, and so does its registration. */
START_TEST(ephemeral_channel_follows_consumer)
{
    struct lookupd l;
    struct nsqd n;
    struct cond c;
    int fd;

    lookupd_start(&l, 0);
    nsqd_start(&n, &l);
    fd = itest_v2_connect(n.tcp);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(itest_sub(fd, "et", "gone#ephemeral"), 0);
    c = (struct cond){.l = &l,
                      .topic = "et",
                      .key = "channel:et:gone#ephemeral",
                      .channel = "gone#ephemeral",
                      .tcp_port = n.tcp};
    ck_assert(harness_wait_until(debug_has, &c, REGISTER_MS));
    ck_assert(channels_has(&l, "et", "gone#ephemeral"));
    close(fd);
    ck_assert_msg(harness_wait_until(channels_lacks_cond, &c, REGISTER_MS),
                  "ephemeral channel still registered after its last consumer left");
    c.key = "topic:et:";
    ck_assert(debug_has(&c));

    /* An ephemeral topic goes with its last (ephemeral) channel, registration included. */
    fd = itest_v2_connect(n.tcp);
    ck_assert_int_eq(itest_sub(fd, "tt#ephemeral", "cc#ephemeral"), 0);
    c = (struct cond){.l = &l, .topic = "tt%23ephemeral", .tcp_port = n.tcp};
    ck_assert(harness_wait_until(lookup_has_producer, &c, REGISTER_MS));
    close(fd);
    ck_assert_msg(harness_wait_until(topic_gone, &c, REGISTER_MS),
                  "ephemeral topic still known to lookupd");
    nsqd_stop(&n);
    harness_stop(l.p, SIGTERM);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("nsqd_lookup");
    TCase *tc = tcase_create("lookup");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, register_and_unregister);
    tcase_add_test(tc, lookupd_restart_resyncs);
    tcase_add_test(tc, channel_precreation);
    tcase_add_test(tc, runtime_addresses);
    tcase_add_test(tc, dead_lookupd_does_not_stall);
    tcase_add_test(tc, shutdown_with_pending_channel_query);
    tcase_add_test(tc, broadcast_overrides);
    tcase_add_test(tc, ephemeral_channel_follows_consumer);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
