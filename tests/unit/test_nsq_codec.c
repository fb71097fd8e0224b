/* Unit tests for common/nsq_codec.c: codec bufferevent filters over a socketpair, with the peer
 * speaking the stream transforms directly. */
#include <check.h>
#include <stdio.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include <event2/bufferevent_ssl.h>
#include <openssl/ssl.h>

#include "nsq_codec.h"
#include "nsq_tls.h"

#define DEADLINE_SEC 10

/* One connection: side A filtered, side B plain with manual encoding/decoding. */
struct pair {
    struct event_base *base;
    int kind;
    struct bufferevent *under; /* A's socket bufferevent (owned by the filter once made) */
    struct bufferevent *a;     /* the filter */
    struct bufferevent *b;
    struct evbuffer *got_a, *got_b; /* decoded data received by each side */
    struct nsq_snappy_writer *sw;
    struct nsq_snappy_reader *sr;
    struct nsq_deflate_writer *dw;
    struct nsq_deflate_reader *dr;
    short a_events;
    int a_errno; /* EVUTIL_SOCKET_ERROR() seen by the event callback */
    bool b_failed;
    bool drain_in_readcb; /* A's read callback moves all input to got_a */
    size_t a_max_input;   /* largest input buffer seen by A's read callback */
};

static void a_read(struct bufferevent *bev, void *arg)
{
    struct pair *p = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    if (evbuffer_get_length(in) > p->a_max_input)
        p->a_max_input = evbuffer_get_length(in);
    evbuffer_add_buffer(p->got_a, in);
}

static void a_event(struct bufferevent *bev, short what, void *arg)
{
    struct pair *p = arg;
    p->a_events |= what;
    p->a_errno = EVUTIL_SOCKET_ERROR();
}

static void b_read(struct bufferevent *bev, void *arg)
{
    struct pair *p = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    int rc = p->kind == NSQ_CODEC_SNAPPY ? nsq_snappy_read(p->sr, in, p->got_b)
                                         : nsq_deflate_read_max(p->dr, in, p->got_b, SIZE_MAX);
    if (rc < 0)
        p->b_failed = true;
}

/* Peer B sends data encoded. */
static void b_send(struct pair *p, const void *data, size_t len)
{
    struct evbuffer *tmp = evbuffer_new();
    evbuffer_add(tmp, data, len);
    int rc = p->kind == NSQ_CODEC_SNAPPY
                     ? nsq_snappy_write(p->sw, tmp, bufferevent_get_output(p->b))
                     : nsq_deflate_write(p->dw, tmp, bufferevent_get_output(p->b));
    ck_assert_int_eq(rc, 0);
    evbuffer_free(tmp);
}

static void pair_make_filter(struct pair *p)
{
    p->a = nsq_codec_filter_new(p->under, p->kind, 6, BEV_OPT_CLOSE_ON_FREE);
    ck_assert_ptr_nonnull(p->a);
    bufferevent_setcb(p->a, a_read, NULL, a_event, p);
    bufferevent_enable(p->a, EV_READ | EV_WRITE);
}

static void pair_init(struct pair *p, int kind, bool filter_now)
{
    int fds[2];
    memset(p, 0, sizeof(*p));
    p->kind = kind;
    p->base = event_base_new();
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    evutil_make_socket_nonblocking(fds[0]);
    evutil_make_socket_nonblocking(fds[1]);
    p->under = bufferevent_socket_new(p->base, fds[0], BEV_OPT_CLOSE_ON_FREE);
    p->b = bufferevent_socket_new(p->base, fds[1], BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(p->b, b_read, NULL, NULL, p);
    bufferevent_enable(p->b, EV_READ | EV_WRITE);
    p->got_a = evbuffer_new();
    p->got_b = evbuffer_new();
    p->sw = nsq_snappy_writer_new();
    p->sr = nsq_snappy_reader_new();
    p->dw = nsq_deflate_writer_new(6);
    p->dr = nsq_deflate_reader_new();
    if (filter_now)
        pair_make_filter(p);
}

static void pair_free(struct pair *p)
{
    if (p->a)
        bufferevent_free(p->a);
    else
        bufferevent_free(p->under);
    bufferevent_free(p->b);
    evbuffer_free(p->got_a);
    evbuffer_free(p->got_b);
    nsq_snappy_writer_free(p->sw);
    nsq_snappy_reader_free(p->sr);
    nsq_deflate_writer_free(p->dw);
    nsq_deflate_reader_free(p->dr);
    event_base_free(p->base);
}

/* Runs the loop until cond holds or the deadline passes; returns cond. */
static bool run_until(struct pair *p, bool (*cond)(struct pair *, size_t), size_t arg)
{
    struct timeval start, now;
    evutil_gettimeofday(&start, NULL);
    while (!cond(p, arg)) {
        struct timeval tick = {0, 50000};
        event_base_loopexit(p->base, &tick);
        event_base_loop(p->base, EVLOOP_ONCE);
        evutil_gettimeofday(&now, NULL);
        if (now.tv_sec - start.tv_sec > DEADLINE_SEC)
            return cond(p, arg);
    }
    return true;
}

static bool a_has(struct pair *p, size_t n)
{
    return evbuffer_get_length(p->got_a) >= n;
}

static bool b_has(struct pair *p, size_t n)
{
    return evbuffer_get_length(p->got_b) >= n || p->b_failed;
}

static bool a_error(struct pair *p, size_t unused)
{
    return (p->a_events & BEV_EVENT_ERROR) != 0;
}

static uint8_t *make_data(size_t n, unsigned seed)
{
    uint8_t *d = malloc(n ? n : 1);
    srand(seed);
    for (size_t i = 0; i < n; i++)
        d[i] = (uint8_t)(i % 3 ? 'a' + rand() % 4 : rand());
    return d;
}

static const int kinds[2] = {NSQ_CODEC_SNAPPY, NSQ_CODEC_DEFLATE};

START_TEST(test_messages_both_ways)
{
    struct pair p;
    pair_init(&p, kinds[_i], true);
    static const size_t sizes[] = {1, 10, 1000, 65536, 65537, 300000};

    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        uint8_t *d = make_data(sizes[i], (unsigned)i);
        /* A → B: each write is encoded and sent at once. */
        bufferevent_write(p.a, d, sizes[i]);
        ck_assert(run_until(&p, b_has, sizes[i]));
        ck_assert(!p.b_failed);
        ck_assert_uint_eq(evbuffer_get_length(p.got_b), sizes[i]);
        ck_assert_mem_eq(evbuffer_pullup(p.got_b, -1), d, sizes[i]);
        evbuffer_drain(p.got_b, sizes[i]);
        /* B → A */
        b_send(&p, d, sizes[i]);
        ck_assert(run_until(&p, a_has, sizes[i]));
        ck_assert_uint_eq(evbuffer_get_length(p.got_a), sizes[i]);
        ck_assert_mem_eq(evbuffer_pullup(p.got_a, -1), d, sizes[i]);
        evbuffer_drain(p.got_a, sizes[i]);
        free(d);
    }
    ck_assert_int_eq(p.a_events, 0);
    pair_free(&p);
}
END_TEST

/* Many small writes in one loop turn arrive intact and in order. */
START_TEST(test_many_small_writes)
{
    struct pair p;
    pair_init(&p, kinds[_i], true);
    struct evbuffer *want = evbuffer_new();
    char line[64];

    for (int i = 0; i < 500; i++) {
        int n = snprintf(line, sizeof(line), "PUB topic%d\n", i);
        bufferevent_write(p.a, line, (size_t)n);
        evbuffer_add(want, line, (size_t)n);
        b_send(&p, line, (size_t)n);
    }
    size_t len = evbuffer_get_length(want);
    ck_assert(run_until(&p, b_has, len));
    ck_assert(run_until(&p, a_has, len));
    ck_assert_mem_eq(evbuffer_pullup(p.got_a, -1), evbuffer_pullup(want, -1), len);
    ck_assert_mem_eq(evbuffer_pullup(p.got_b, -1), evbuffer_pullup(want, -1), len);
    evbuffer_free(want);
    pair_free(&p);
}
END_TEST

/* The upgrade point: B sends a plain-text line and, right behind it, encoded bytes. A reads the
 * line on the plain bufferevent, then switches; the encoded bytes already received must be
 * decoded. */
static void plain_read(struct bufferevent *bev, void *arg)
{
    struct pair *p = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    char *line = evbuffer_readln(in, NULL, EVBUFFER_EOL_LF);
    if (!line)
        return;
    evbuffer_add(p->got_a, line, strlen(line));
    free(line);
    bufferevent_write(bev, "{\"snappy\":true}\n", 16); /* the last plain-text reply */
    pair_make_filter(p);
    nsq_codec_filter_resume(p->a);
}

static bool plain_done(struct pair *p, size_t n)
{
    return evbuffer_get_length(p->got_a) >= n;
}

START_TEST(test_live_switch)
{
    struct pair p;
    pair_init(&p, kinds[_i], false);
    bufferevent_setcb(p.under, plain_read, NULL, NULL, &p);
    bufferevent_enable(p.under, EV_READ | EV_WRITE);

    /* Plain line and encoded data in a single send. */
    struct evbuffer *out = bufferevent_get_output(p.b);
    evbuffer_add(out, "IDENTIFY\n", 9);
    b_send(&p, "after upgrade", 13);
    ck_assert(run_until(&p, plain_done, 8 + 13));
    ck_assert_uint_eq(evbuffer_get_length(p.got_a), 8 + 13);
    ck_assert_mem_eq(evbuffer_pullup(p.got_a, -1), "IDENTIFYafter upgrade", 21);

    /* B receives the plain reply first, then encoded data. Stop B's automatic decoding to read
     * the plain line. */
    bufferevent_setcb(p.b, NULL, NULL, NULL, &p);
    bufferevent_write(p.a, "OK", 2);
    struct evbuffer *bin = bufferevent_get_input(p.b);
    struct timeval start, now;
    evutil_gettimeofday(&start, NULL);
    while (evbuffer_get_length(bin) < 16 + 1) {
        event_base_loop(p.base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        evutil_gettimeofday(&now, NULL);
        ck_assert_int_le(now.tv_sec - start.tv_sec, DEADLINE_SEC);
    }
    char *line = evbuffer_readln(bin, NULL, EVBUFFER_EOL_LF);
    ck_assert_str_eq(line, "{\"snappy\":true}");
    free(line);
    bufferevent_setcb(p.b, b_read, NULL, NULL, &p);
    b_read(p.b, &p);
    ck_assert(run_until(&p, b_has, 2));
    ck_assert_mem_eq(evbuffer_pullup(p.got_b, -1), "OK", 2);
    pair_free(&p);
}
END_TEST

START_TEST(test_corrupt_input_reports_error)
{
    struct pair p;
    pair_init(&p, kinds[_i], true);
    /* Neither a snappy stream identifier nor valid deflate. */
    bufferevent_write(p.b, "\x07\x07\x07\x07\x07\x07\x07\x07", 8);
    ck_assert(run_until(&p, a_error, 0));
    ck_assert(p.a_events & BEV_EVENT_READING);
    ck_assert_int_eq(p.a_errno, EBADMSG);
    /* Nothing more is decoded after the error. */
    ck_assert_uint_eq(evbuffer_get_length(p.got_a), 0);
    pair_free(&p);
}
END_TEST

/* With a read high watermark on the filter, a highly compressible burst is delivered in bounded
 * slices and completely. */
START_TEST(test_watermark_bounds_decoded_input)
{
    enum { LEN = 4 * 1024 * 1024, HIGH = 32768 };
    struct pair p;
    pair_init(&p, kinds[_i], true);
    bufferevent_setwatermark(p.a, EV_READ, 0, HIGH);
    uint8_t *zeros = calloc(1, LEN);
    b_send(&p, zeros, LEN);
    ck_assert(run_until(&p, a_has, LEN));
    ck_assert_uint_eq(evbuffer_get_length(p.got_a), LEN);
    /* A snappy step may finish the block it started. */
    ck_assert_uint_le(p.a_max_input, HIGH + NSQ_SNAPPY_MAX_BLOCK);
    free(zeros);
    pair_free(&p);
}
END_TEST

START_TEST(test_bad_arguments)
{
    struct pair p;
    pair_init(&p, NSQ_CODEC_SNAPPY, false);
    ck_assert_ptr_null(nsq_codec_filter_new(p.under, 3, 6, 0));
    ck_assert_ptr_null(nsq_codec_filter_new(p.under, NSQ_CODEC_DEFLATE, 0, 0));
    ck_assert_ptr_null(nsq_codec_filter_new(p.under, NSQ_CODEC_DEFLATE, 10, 0));
    pair_free(&p);
}
END_TEST

/* Both ends stacked as nsqd and its clients do it: socket, TLS, then the codec filter. */
struct stacked {
    struct evbuffer *got;
    short events;
};

static void stacked_read(struct bufferevent *bev, void *arg)
{
    struct stacked *s = arg;
    evbuffer_add_buffer(s->got, bufferevent_get_input(bev));
}

static void stacked_event(struct bufferevent *bev, short what, void *arg)
{
    struct stacked *s = arg;
    s->events |= what;
}

static bool stacked_wait(struct event_base *base, struct stacked *s, size_t n)
{
    struct timeval start, now;
    evutil_gettimeofday(&start, NULL);
    while (evbuffer_get_length(s->got) < n && !(s->events & (BEV_EVENT_ERROR | BEV_EVENT_EOF))) {
        struct timeval tick = {0, 50000};
        event_base_loopexit(base, &tick);
        event_base_loop(base, EVLOOP_ONCE);
        evutil_gettimeofday(&now, NULL);
        if (now.tv_sec - start.tv_sec > DEADLINE_SEC)
            break;
    }
    return evbuffer_get_length(s->got) >= n;
}

START_TEST(test_over_tls)
{
    char dir[] = "/tmp/nsq_codec_tls_XXXXXX", cmd[512], cert[64], key[64], err[256];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout %s -out %s -days 1 -subj /CN=localhost >%s/log 2>&1",
             key, cert, dir);
    ck_assert_int_eq(system(cmd), 0);
    SSL_CTX *sctx =
            nsq_tls_server_ctx(cert, key, NULL, NSQ_TLS_NO_CLIENT_CERT, 0, err, sizeof(err));
    ck_assert_msg(sctx != NULL, "%s", err);
    SSL_CTX *cctx = nsq_tls_client_ctx(NULL, NULL, NULL, true, 0, err, sizeof(err));
    ck_assert_msg(cctx != NULL, "%s", err);

    struct event_base *base = event_base_new();
    int fds[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    evutil_make_socket_nonblocking(fds[0]);
    evutil_make_socket_nonblocking(fds[1]);
    struct bufferevent *ta = bufferevent_openssl_socket_new(
            base, fds[0], SSL_new(sctx), BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
    struct bufferevent *tb = bufferevent_openssl_socket_new(
            base, fds[1], SSL_new(cctx), BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
    ck_assert(ta && tb);
    struct bufferevent *fa = nsq_codec_filter_new(ta, kinds[_i], 3, BEV_OPT_CLOSE_ON_FREE);
    struct bufferevent *fb = nsq_codec_filter_new(tb, kinds[_i], 9, BEV_OPT_CLOSE_ON_FREE);
    ck_assert(fa && fb);
    struct stacked sa = {evbuffer_new(), 0}, sb = {evbuffer_new(), 0};
    bufferevent_setcb(fa, stacked_read, NULL, stacked_event, &sa);
    bufferevent_setcb(fb, stacked_read, NULL, stacked_event, &sb);
    bufferevent_enable(fa, EV_READ | EV_WRITE);
    bufferevent_enable(fb, EV_READ | EV_WRITE);

    enum { LEN = 300000 };
    uint8_t *d = make_data(LEN, 17);
    /* Written before the handshake has finished: the TLS layer holds it until then. */
    bufferevent_write(fb, "IDENTIFY\n", 9);
    bufferevent_write(fb, d, LEN);
    ck_assert(stacked_wait(base, &sa, 9 + LEN));
    ck_assert_mem_eq(evbuffer_pullup(sa.got, 9), "IDENTIFY\n", 9);
    ck_assert_mem_eq(evbuffer_pullup(sa.got, -1) + 9, d, LEN);
    bufferevent_write(fa, d, LEN);
    ck_assert(stacked_wait(base, &sb, LEN));
    ck_assert_mem_eq(evbuffer_pullup(sb.got, -1), d, LEN);
    ck_assert_int_eq(sa.events & BEV_EVENT_ERROR, 0);
    ck_assert_int_eq(sb.events & BEV_EVENT_ERROR, 0);
    ck_assert_str_eq(nsq_tls_version_name(bufferevent_openssl_get_ssl(ta)), "TLS1.3");

    free(d);
    bufferevent_free(fa);
    bufferevent_free(fb);
    evbuffer_free(sa.got);
    evbuffer_free(sb.got);
    event_base_free(base);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("nsq_codec");
    TCase *tc = tcase_create("filters");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_messages_both_ways, 0, 2);
    tcase_add_loop_test(tc, test_many_small_writes, 0, 2);
    tcase_add_loop_test(tc, test_live_switch, 0, 2);
    tcase_add_loop_test(tc, test_corrupt_input_reports_error, 0, 2);
    tcase_add_loop_test(tc, test_watermark_bounds_decoded_input, 0, 2);
    tcase_add_test(tc, test_bad_arguments);
    tcase_add_loop_test(tc, test_over_tls, 0, 2);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
