/*
 * test_nsqd_load: 1,000 concurrent V2 connections against one nsqd, half publishing and half
 * consuming at the same time on two channels; every message must reach each channel exactly once,
 * with the default memory queues and with tiny ones that push traffic through the diskqueues.
 *
 * The client side is one libevent loop driving every connection (pipelined PUBs, FIN per message),
 * so the test itself needs no threads. RLIMIT_NOFILE is raised before nsqd starts so that both
 * this process and nsqd (which inherits it) can hold all the sockets.
 */
#include <arpa/inet.h>
#include <check.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "harness.h"
#include "nsqd_itest.h"

#define N_PRODUCERS    500
#define N_CONSUMERS    500
#define N_CHANNELS     2
#define MSGS_PER_PROD  20
#define TOTAL_MSGS     (N_PRODUCERS * MSGS_PER_PROD)
#define CONSUMER_RDY   10
#define NOFILE_WANT    4096
#define LOAD_TIMEOUT_S 120
#define TOPIC          "load"

static const char *const channels[N_CHANNELS] = {"c0", "c1"};

enum conn_kind { PRODUCER, CONSUMER };

struct conn {
    struct bufferevent *bev;
    enum conn_kind kind;
    int idx;
    int oks; /* producer: OK frames received; consumer: SUB acknowledged */
    int channel;
};

struct load {
    struct event_base *base;
    struct conn conns[N_PRODUCERS + N_CONSUMERS];
    unsigned char seen[N_CHANNELS][TOTAL_MSGS];
    int received[N_CHANNELS];
    int duplicates;
    int producers_done;
    int errors;
    char first_error[256];
};

static void load_fail(struct load *L, const char *what)
{
    if (L->errors++ == 0)
        snprintf(L->first_error, sizeof(L->first_error), "%s", what);
    event_base_loopbreak(L->base);
}

static bool finished(const struct load *L)
{
    if (L->producers_done < N_PRODUCERS)
        return false;
    for (int c = 0; c < N_CHANNELS; c++)
        if (L->received[c] < TOTAL_MSGS)
            return false;
    return true;
}

static uint32_t get32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static struct load *g_load;

static void handle_frame(struct load *L, struct conn *c, int32_t type, const char *data, size_t len)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);

    if (type == ITEST_FRAME_RESP && len == 11 && memcmp(data, "_heartbeat_", 11) == 0) {
        evbuffer_add(out, "NOP\n", 4);
        return;
    }
    if (type == ITEST_FRAME_ERROR) {
        char msg[200];
        snprintf(msg, sizeof(msg), "error frame: %.*s", (int)(len > 150 ? 150 : len), data);
        load_fail(L, msg);
        return;
    }
    if (type == ITEST_FRAME_RESP) {
        if (len != 2 || memcmp(data, "OK", 2) != 0) {
            load_fail(L, "unexpected response");
            return;
        }
        if (c->kind == PRODUCER && ++c->oks == MSGS_PER_PROD)
            L->producers_done++;
        else if (c->kind == CONSUMER)
            c->oks++;
        return;
    }
    if (type == ITEST_FRAME_MSG && c->kind == CONSUMER && len > ITEST_MSG_HDR) {
        int p, k;
        char body[64];
        size_t blen = len - ITEST_MSG_HDR;
        if (blen >= sizeof(body)) {
            load_fail(L, "unexpected body");
            return;
        }
        memcpy(body, data + ITEST_MSG_HDR, blen);
        body[blen] = '\0';
        if (sscanf(body, "m-%d-%d", &p, &k) != 2 || p < 0 || p >= N_PRODUCERS || k < 0 ||
            k >= MSGS_PER_PROD) {
            load_fail(L, "unexpected body");
            return;
        }
        if (L->seen[c->channel][p * MSGS_PER_PROD + k]++ == 0)
            L->received[c->channel]++;
        else
            L->duplicates++;
        evbuffer_add(out, "FIN ", 4);
        evbuffer_add(out, data + 10, ITEST_ID_LEN);
        evbuffer_add(out, "\n", 1);
        return;
    }
    load_fail(L, "unexpected frame");
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    struct load *L = g_load;
    struct evbuffer *in = bufferevent_get_input(bev);
    for (;;) {
        uint8_t hdr[8];
        uint32_t size;
        uint8_t *frame;
        if (evbuffer_get_length(in) < 8)
            break;
        evbuffer_copyout(in, hdr, 8);
        size = get32(hdr);
        if (size < 4 || size > (1u << 20)) {
            load_fail(L, "bad frame size");
            return;
        }
        if (evbuffer_get_length(in) < 4 + (size_t)size)
            break;
        frame = evbuffer_pullup(in, 4 + (ssize_t)size);
        handle_frame(L, c, (int32_t)get32(frame + 4), (const char *)frame + 8, size - 4);
        evbuffer_drain(in, 4 + (size_t)size);
    }
    if (finished(L))
        event_base_loopbreak(L->base);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        load_fail(g_load,
                  (what & BEV_EVENT_EOF) ? "connection closed by nsqd" : "connection error");
}

static void timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    load_fail(arg, "timeout");
}

static void start_conn(struct load *L, struct conn *c, int port)
{
    struct sockaddr_in sin;
    struct evbuffer *out;

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c->bev = bufferevent_socket_new(L->base, -1, BEV_OPT_CLOSE_ON_FREE);
    ck_assert_ptr_nonnull(c->bev);
    bufferevent_setcb(c->bev, read_cb, NULL, event_cb, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    ck_assert_int_eq(bufferevent_socket_connect(c->bev, (struct sockaddr *)&sin, sizeof(sin)), 0);
    out = bufferevent_get_output(c->bev);
    evbuffer_add(out, "  V2", 4);
    if (c->kind == CONSUMER) {
        evbuffer_add_printf(out, "SUB %s %s\nRDY %d\n", TOPIC, channels[c->channel], CONSUMER_RDY);
    } else {
        for (int k = 0; k < MSGS_PER_PROD; k++) {
            char body[64];
            int n = snprintf(body, sizeof(body), "m-%d-%d", c->idx, k);
            uint32_t be = htonl((uint32_t)n);
            evbuffer_add_printf(out, "PUB %s\n", TOPIC);
            evbuffer_add(out, &be, 4);
            evbuffer_add(out, body, (size_t)n);
        }
    }
}

static void run_load(const char *const *nsqd_extra)
{
    struct rlimit rl;
    struct load *L = calloc(1, sizeof(*L));
    char *dir = harness_tmpdir();
    struct harness_proc *p;
    struct event *timer;
    struct timeval tv = {.tv_sec = LOAD_TIMEOUT_S, .tv_usec = 0};
    int tcp, http, n = 0;
    char *out = NULL;

    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < NOFILE_WANT) {
        rl.rlim_cur = rl.rlim_max < NOFILE_WANT ? rl.rlim_max : NOFILE_WANT;
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    }
    ck_assert_msg(rl.rlim_cur >= 2 * (N_PRODUCERS + N_CONSUMERS) + 64, "RLIMIT_NOFILE %llu too low",
                  (unsigned long long)rl.rlim_cur);

    p = itest_nsqd_start(dir, nsqd_extra);
    ck_assert_ptr_nonnull(p);
    tcp = harness_port(p, "TCP");
    http = harness_port(p, "HTTP");
    ck_assert_int_eq(itest_http("POST", http, "/topic/create?topic=" TOPIC, NULL, &out), 200);
    free(out);
    for (int c = 0; c < N_CHANNELS; c++) {
        char path[128];
        snprintf(path, sizeof(path), "/channel/create?topic=%s&channel=%s", TOPIC, channels[c]);
        ck_assert_int_eq(itest_http("POST", http, path, NULL, &out), 200);
        free(out);
    }

    g_load = L;
    L->base = event_base_new();
    ck_assert_ptr_nonnull(L->base);
    /* Interleave consumers and producers so both kinds are active from the start. */
    for (int i = 0; i < N_PRODUCERS + N_CONSUMERS; i++) {
        struct conn *c = &L->conns[n++];
        c->kind = (i % 2 == 0) ? CONSUMER : PRODUCER;
        c->idx = i / 2;
        c->channel = c->idx % N_CHANNELS;
        start_conn(L, c, tcp);
    }
    timer = evtimer_new(L->base, timeout_cb, L);
    evtimer_add(timer, &tv);
    event_base_dispatch(L->base);

    ck_assert_msg(L->errors == 0, "%d errors, first: %s (producers done %d, received %d/%d)",
                  L->errors, L->first_error, L->producers_done, L->received[0], L->received[1]);
    ck_assert_int_eq(L->producers_done, N_PRODUCERS);
    for (int c = 0; c < N_CHANNELS; c++)
        ck_assert_int_eq(L->received[c], TOTAL_MSGS);
    ck_assert_int_eq(L->duplicates, 0);
    ck_assert_int_eq(itest_stats_int(http, TOPIC, NULL, "message_count"), TOTAL_MSGS);
    for (int c = 0; c < N_CHANNELS; c++) {
        ck_assert_int_eq(itest_stats_int(http, TOPIC, channels[c], "message_count"), TOTAL_MSGS);
        ck_assert_int_eq(itest_stats_int(http, TOPIC, channels[c], "client_count"),
                         N_CONSUMERS / N_CHANNELS);
    }

    for (int i = 0; i < n; i++)
        bufferevent_free(L->conns[i].bev);
    event_free(timer);
    event_base_free(L->base);
    ck_assert_int_eq(harness_stop(p, SIGTERM), 0);
    harness_rmdir(dir);
    free(dir);
    free(L);
}

START_TEST(thousand_connections)
{
    run_load(NULL);
}
END_TEST

/* Same with tiny memory queues: most messages pass through the topic and channel diskqueues. */
START_TEST(thousand_connections_disk_overflow)
{
    static const char *const extra[] = {"--mem-queue-size=10", "--max-bytes-per-file=65536", NULL};
    run_load(extra);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("nsqd_load");
    TCase *tc = tcase_create("load");
    tcase_set_timeout(tc, LOAD_TIMEOUT_S + 60);
    tcase_add_test(tc, thousand_connections);
    tcase_add_test(tc, thousand_connections_disk_overflow);
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
