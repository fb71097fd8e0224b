/* Unit tests for common/nsq_http_client.c: asynchronous requests on a libevent base against an
   evhttp server running in a thread; timeouts, cancellation, the https retry on 403. */
#include "nsq_http_client.h"
#include "nsq_net.h"

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>

/* ---- server (its own thread) -------------------------------------------------------------- */

static int refused_port;

static void server_cb(struct evhttp_request *req, void *arg)
{
    const char *uri = evhttp_request_get_uri(req);
    struct evbuffer *b = evbuffer_new();
    if (strcmp(uri, "/slow") == 0) {
        /* never answered: the connection is dropped when the client gives up */
        evbuffer_free(b);
        return;
    }
    if (strcmp(uri, "/forbidden") == 0) {
        evbuffer_add_printf(b, "{\"message\":\"TLS_REQUIRED\",\"https_port\":%d}", refused_port);
        evhttp_send_reply(req, 403, "Forbidden", b);
    } else if (strcmp(uri, "/forbidden-plain") == 0) {
        evbuffer_add_printf(b, "{\"message\":\"NO\"}");
        evhttp_send_reply(req, 403, "Forbidden", b);
    } else {
        /* echo: method, uri, Accept, Content-Type, body */
        const char *accept = evhttp_find_header(evhttp_request_get_input_headers(req), "Accept");
        const char *ct = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        evbuffer_add_printf(b, "%d %s|%s|%s|", (int)evhttp_request_get_command(req), uri,
                            accept ? accept : "", ct ? ct : "");
        evbuffer_add_buffer(b, in);
        evhttp_send_reply(req, 200, "OK", b);
    }
    evbuffer_free(b);
}

struct server {
    struct event_base *base;
    struct evhttp *http;
    struct event *stop;
    pthread_t thread;
    int port;
};

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
    event_base_loopbreak(arg);
}

static void *server_main(void *arg)
{
    struct server *s = arg;
    event_base_dispatch(s->base);
    return NULL;
}

static struct server srv;

static void setup(void)
{
    evthread_use_pthreads();
    srv.base = event_base_new();
    srv.http = evhttp_new(srv.base);
    evhttp_set_allowed_methods(srv.http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
                                                 EVHTTP_REQ_DELETE);
    srv.stop = event_new(srv.base, -1, 0, stop_cb, srv.base);
    evhttp_set_gencb(srv.http, server_cb, NULL);
    int fd = nsq_listen("127.0.0.1:0", 0, &srv.port);
    ck_assert_int_ge(fd, 0);
    ck_assert_ptr_nonnull(evhttp_accept_socket_with_handle(srv.http, fd));
    /* a port nobody listens on */
    int tmp = nsq_listen("127.0.0.1:0", 0, &refused_port);
    close(tmp);
    ck_assert_int_eq(pthread_create(&srv.thread, NULL, server_main, &srv), 0);
}

static void teardown(void)
{
    event_active(srv.stop, 0, 0);
    pthread_join(srv.thread, NULL);
    event_free(srv.stop);
    evhttp_free(srv.http);
    event_base_free(srv.base);
}

/* ---- client side -------------------------------------------------------------------------- */

struct result {
    int calls;
    long status;
    char body[512];
    char error[256];
    struct nsq_http_client *free_me;
};

static void done_cb(const struct nsq_http_response *r, void *arg)
{
    struct result *res = arg;
    res->calls++;
    res->status = r->status;
    snprintf(res->body, sizeof(res->body), "%.*s", (int)r->body_len, r->body);
    snprintf(res->error, sizeof(res->error), "%s", r->error ? r->error : "");
    if (res->free_me)
        nsq_http_client_free(res->free_me);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs base until all results have a call or the deadline passes. */
static void run_until(struct event_base *base, struct result *res, size_t n, int timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;
    for (;;) {
        size_t done = 0;
        for (size_t i = 0; i < n; i++)
            done += res[i].calls > 0;
        if (done == n || mono_ms() > deadline)
            return;
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        usleep(1000);
    }
}

static char url_buf[256];
static const char *url(const char *path)
{
    snprintf(url_buf, sizeof(url_buf), "http://127.0.0.1:%d%s", srv.port, path);
    return url_buf;
}

START_TEST(test_concurrent)
{
    struct event_base *base = event_base_new();
    struct nsq_http_client *c = nsq_http_client_new(base, NULL);
    enum { N = 20 };
    struct result res[N];
    memset(res, 0, sizeof(res));
    for (int i = 0; i < N; i++) {
        char path[64];
        snprintf(path, sizeof(path), "/echo?i=%d", i);
        if (i % 2)
            ck_assert_int_eq(nsq_http_client_request(c, "POST", url(path), "body", 4,
                                                     "application/octet-stream", done_cb, &res[i]),
                             0);
        else
            ck_assert_int_eq(
                    nsq_http_client_request(c, "GET", url(path), NULL, 0, NULL, done_cb, &res[i]),
                    0);
    }
    ck_assert_uint_eq(nsq_http_client_pending(c), N);
    run_until(base, res, N, 10000);
    for (int i = 0; i < N; i++) {
        char expect[256];
        if (i % 2)
            snprintf(expect, sizeof(expect),
                     "%d /echo?i=%d|application/vnd.nsq; version=1.0|application/octet-stream|body",
                     EVHTTP_REQ_POST, i);
        else
            snprintf(expect, sizeof(expect), "%d /echo?i=%d|application/vnd.nsq; version=1.0||",
                     EVHTTP_REQ_GET, i);
        ck_assert_int_eq(res[i].calls, 1);
        ck_assert_int_eq(res[i].status, 200);
        ck_assert_str_eq(res[i].error, "");
        ck_assert_str_eq(res[i].body, expect);
    }
    ck_assert_uint_eq(nsq_http_client_pending(c), 0);
    nsq_http_client_free(c);
    event_base_free(base);
}
END_TEST

START_TEST(test_put_delete)
{
    struct event_base *base = event_base_new();
    struct nsq_http_client *c = nsq_http_client_new(base, NULL);
    struct result res[2];
    memset(res, 0, sizeof(res));
    ck_assert_int_eq(nsq_http_client_request(c, "PUT", url("/p"), "xyz", 3, NULL, done_cb, &res[0]),
                     0);
    ck_assert_int_eq(
            nsq_http_client_request(c, "DELETE", url("/d"), NULL, 0, NULL, done_cb, &res[1]), 0);
    run_until(base, res, 2, 10000);
    char expect[128];
    snprintf(expect, sizeof(expect), "%d /p|application/vnd.nsq; version=1.0||xyz", EVHTTP_REQ_PUT);
    ck_assert_str_eq(res[0].body, expect);
    snprintf(expect, sizeof(expect), "%d /d|application/vnd.nsq; version=1.0||", EVHTTP_REQ_DELETE);
    ck_assert_str_eq(res[1].body, expect);
    nsq_http_client_free(c);
    event_base_free(base);
}
END_TEST

START_TEST(test_request_timeout)
{
    struct event_base *base = event_base_new();
    struct nsq_http_client_options o = {.connect_timeout_ns = 2000000000LL,
                                        .request_timeout_ns = 200000000LL};
    struct nsq_http_client *c = nsq_http_client_new(base, &o);
    struct result res[2];
    memset(res, 0, sizeof(res));
    int64_t start = mono_ms();
    ck_assert_int_eq(
            nsq_http_client_request(c, "GET", url("/slow"), NULL, 0, NULL, done_cb, &res[0]), 0);
    /* the loop keeps serving other requests meanwhile */
    ck_assert_int_eq(
            nsq_http_client_request(c, "GET", url("/fast"), NULL, 0, NULL, done_cb, &res[1]), 0);
    run_until(base, &res[1], 1, 5000);
    ck_assert_int_eq(res[1].status, 200);
    ck_assert_int_eq(res[0].calls, 0);
    run_until(base, res, 1, 5000);
    int64_t took = mono_ms() - start;
    ck_assert_int_eq(res[0].calls, 1);
    ck_assert_int_eq(res[0].status, 0);
    ck_assert_msg(strstr(res[0].error, "imed out") != NULL, "error: %s", res[0].error);
    ck_assert_int_ge(took, 190);
    ck_assert_int_lt(took, 3000);
    nsq_http_client_free(c);
    event_base_free(base);

    long status;
    ck_assert_int_eq(nsq_http_fetch("GET", url("/slow"), NULL, 0, &o, &status, NULL, NULL),
                     -ETIMEDOUT);
}
END_TEST

START_TEST(test_connect_refused)
{
    char u[128];
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/x", refused_port);
    long status;
    ck_assert_int_eq(nsq_http_fetch("GET", u, NULL, 0, NULL, &status, NULL, NULL), -ECONNREFUSED);
}
END_TEST

START_TEST(test_cancel_on_free)
{
    struct event_base *base = event_base_new();
    struct nsq_http_client *c = nsq_http_client_new(base, NULL);
    struct result res[2];
    memset(res, 0, sizeof(res));
    ck_assert_int_eq(
            nsq_http_client_request(c, "GET", url("/slow"), NULL, 0, NULL, done_cb, &res[0]), 0);
    ck_assert_int_eq(
            nsq_http_client_request(c, "GET", url("/slow"), NULL, 0, NULL, done_cb, &res[1]), 0);
    for (int i = 0; i < 20; i++)
        event_base_loop(base, EVLOOP_NONBLOCK);
    nsq_http_client_free(c);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(res[i].calls, 1);
        ck_assert_str_eq(res[i].error, "canceled");
    }
    event_base_free(base);
}
END_TEST

START_TEST(test_free_from_callback)
{
    struct event_base *base = event_base_new();
    struct nsq_http_client *c = nsq_http_client_new(base, NULL);
    struct result res[2];
    memset(res, 0, sizeof(res));
    res[0].free_me = c;
    ck_assert_int_eq(nsq_http_client_request(c, "GET", url("/a"), NULL, 0, NULL, done_cb, &res[0]),
                     0);
    ck_assert_int_eq(
            nsq_http_client_request(c, "GET", url("/slow"), NULL, 0, NULL, done_cb, &res[1]), 0);
    run_until(base, res, 1, 5000);
    ck_assert_int_eq(res[0].status, 200);
    ck_assert_int_eq(res[1].calls, 1);
    ck_assert_str_eq(res[1].error, "canceled");
    event_base_free(base);
}
END_TEST

START_TEST(test_https_retry)
{
    /* 403 with https_port: retried on https://127.0.0.1:<https_port>, where nothing listens */
    struct nsq_http_result *r = NULL;
    int rc = nsq_http_fetch_full("GET", url("/forbidden"), NULL, 0, NULL, NULL, &r);
    ck_assert_int_eq(rc, -ECONNREFUSED);
    ck_assert_int_eq(r->resp.status, 0);
    nsq_http_result_free(r);
    /* 403 without https_port is returned as is */
    long status = 0;
    char *body = NULL;
    ck_assert_int_eq(
            nsq_http_fetch("GET", url("/forbidden-plain"), NULL, 0, NULL, &status, &body, NULL), 0);
    ck_assert_int_eq(status, 403);
    ck_assert_str_eq(body, "{\"message\":\"NO\"}");
    free(body);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("nsq_http_client");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_concurrent);
    tcase_add_test(tc, test_put_delete);
    tcase_add_test(tc, test_request_timeout);
    tcase_add_test(tc, test_connect_refused);
    tcase_add_test(tc, test_cancel_on_free);
    tcase_add_test(tc, test_free_from_callback);
    tcase_add_test(tc, test_https_retry);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
