/* Unit tests for common/nsq_http_server.c: routing rules and encoders against a real evhttp on
   127.0.0.1, driven by the blocking client nsq_http_fetch_full. */
#include <sys/queue.h>

#include "nsq_http_client.h"
#include "nsq_http_server.h"
#include "nsq_net.h"

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/thread.h>

static void h_ping(struct nsq_http_call *c)
{
    nsq_http_reply_plain(c->req, 200, "OK");
}

static void h_info(struct nsq_http_call *c)
{
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_printf(b, "{\"a\":1}");
    nsq_http_reply_json(c->req, 200, b);
    evbuffer_free(b);
}

static void h_pub(struct nsq_http_call *c)
{
    if (!nsq_http_require_query(c))
        return;
    const char *t = nsq_http_query(c, "topic");
    if (!t) {
        nsq_http_reply_error(c->req, 400, "MISSING_ARG_TOPIC");
        return;
    }
    char out[256];
    snprintf(out, sizeof(out), "%s|%d", t, nsq_http_query_bool(c, "binary", 7));
    nsq_http_reply_text(c->req, 200, out, strlen(out));
}

static void h_empty(struct nsq_http_call *c)
{
    nsq_http_reply_text(c->req, 200, NULL, 0);
}

static void h_config_get(struct nsq_http_call *c)
{
    nsq_http_reply_text(c->req, 200, c->params[0], strlen(c->params[0]));
}

static void h_config_put(struct nsq_http_call *c)
{
    struct evbuffer *body;
    if (nsq_http_body(c->req, 8, &body) == -E2BIG) {
        nsq_http_reply_error(c->req, 413, "INVALID_VALUE");
        return;
    }
    char out[256];
    int n = snprintf(out, sizeof(out), "put:%s:%zu", c->params[0], evbuffer_get_length(body));
    nsq_http_reply_text(c->req, 200, out, (size_t)n);
}

static void h_two(struct nsq_http_call *c)
{
    char out[256];
    int n = snprintf(out, sizeof(out), "%zu:%s:%s", c->nparams, c->params[0], c->params[1]);
    nsq_http_reply_text(c->req, 200, out, (size_t)n);
}

static void h_static(struct nsq_http_call *c)
{
    nsq_http_reply_plain(c->req, 200, c->params[0]);
}

static void h_escape(struct nsq_http_call *c)
{
    nsq_http_reply_error(c->req, 500, "a\"b<c>&\n");
}

static const struct nsq_http_route routes[] = {
        {"/ping", EVHTTP_REQ_GET, h_ping},
        {"/info", EVHTTP_REQ_GET, h_info},
        {"/pub", EVHTTP_REQ_GET | EVHTTP_REQ_POST, h_pub},
        {"/empty", EVHTTP_REQ_POST, h_empty},
        {"/config/:opt", EVHTTP_REQ_GET, h_config_get},
        {"/config/:opt", EVHTTP_REQ_PUT, h_config_put},
        {"/a/:x/b/:y", EVHTTP_REQ_DELETE, h_two},
        {"/static/*asset", EVHTTP_REQ_GET, h_static},
        {"/escape", EVHTTP_REQ_GET, h_escape},
        {"/", EVHTTP_REQ_GET, h_ping},
};

struct server {
    struct event_base *base;
    struct evhttp *http;
    struct nsq_http_router *router;
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

static void server_start(struct server *s, const char *base_path)
{
    evthread_use_pthreads();
    s->base = event_base_new();
    s->http = evhttp_new(s->base);
    s->stop = event_new(s->base, -1, 0, stop_cb, s->base);
    s->router = nsq_http_router_new(base_path, routes, sizeof(routes) / sizeof(routes[0]), NULL);
    ck_assert_ptr_nonnull(s->router);
    nsq_http_router_attach(s->router, s->http);
    int fd = nsq_listen("127.0.0.1:0", 0, &s->port);
    ck_assert_int_ge(fd, 0);
    ck_assert_ptr_nonnull(evhttp_accept_socket_with_handle(s->http, fd));
    ck_assert_int_eq(pthread_create(&s->thread, NULL, server_main, s), 0);
}

static void server_stop(struct server *s)
{
    /* an activated event survives until the loop runs, unlike a loopbreak issued before it */
    event_active(s->stop, 0, 0);
    pthread_join(s->thread, NULL);
    event_free(s->stop);
    evhttp_free(s->http);
    nsq_http_router_free(s->router);
    event_base_free(s->base);
}

static struct server srv;

static struct nsq_http_result *req(const char *method, const char *path, const char *body)
{
    char url[512];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", srv.port, path);
    struct nsq_http_result *r = NULL;
    int rc = nsq_http_fetch_full(method, url, body, body ? strlen(body) : 0, NULL, NULL, &r);
    ck_assert_msg(rc == 0, "%s %s: %d %s", method, path, rc, r ? r->resp.error : "");
    return r;
}

static void expect(const char *method, const char *path, long status, const char *body)
{
    struct nsq_http_result *r = req(method, path, NULL);
    ck_assert_msg(r->resp.status == status, "%s %s: status %ld", method, path, r->resp.status);
    if (body)
        ck_assert_str_eq(r->resp.body, body);
    nsq_http_result_free(r);
}

static void expect_header(const struct nsq_http_result *r, const char *name, const char *value)
{
    char buf[256];
    if (!value) {
        ck_assert_msg(nsq_http_response_header(&r->resp, name, buf, sizeof(buf)) == -ENOENT,
                      "unexpected %s: %s", name, buf);
        return;
    }
    ck_assert_msg(nsq_http_response_header(&r->resp, name, buf, sizeof(buf)) == 0, "no %s", name);
    ck_assert_str_eq(buf, value);
}

static void setup(void)
{
    server_start(&srv, NULL);
}

static void teardown(void)
{
    server_stop(&srv);
}

START_TEST(test_encoders)
{
    struct nsq_http_result *r = req("GET", "/ping", NULL);
    ck_assert_int_eq(r->resp.status, 200);
    ck_assert_str_eq(r->resp.body, "OK");
    expect_header(r, "Content-Type", "text/plain; charset=utf-8");
    expect_header(r, "X-NSQ-Content-Type", NULL);
    nsq_http_result_free(r);

    r = req("GET", "/info", NULL);
    ck_assert_int_eq(r->resp.status, 200);
    ck_assert_str_eq(r->resp.body, "{\"a\":1}");
    expect_header(r, "Content-Type", "application/json; charset=utf-8");
    expect_header(r, "X-NSQ-Content-Type", "nsq; version=1.0");
    nsq_http_result_free(r);

    r = req("GET", "/pub?topic=t", NULL);
    ck_assert_str_eq(r->resp.body, "t|7");
    expect_header(r, "Content-Type", "text/plain; charset=utf-8");
    expect_header(r, "X-NSQ-Content-Type", "nsq; version=1.0");
    nsq_http_result_free(r);

    r = req("POST", "/empty", "");
    ck_assert_int_eq(r->resp.status, 200);
    ck_assert_uint_eq(r->resp.body_len, 0);
    expect_header(r, "Content-Type", NULL);
    expect_header(r, "X-NSQ-Content-Type", "nsq; version=1.0");
    nsq_http_result_free(r);

    r = req("GET", "/escape", NULL);
    ck_assert_int_eq(r->resp.status, 500);
    ck_assert_str_eq(r->resp.body, "{\"message\":\"a\\\"b\\u003cc\\u003e\\u0026\\n\"}");
    expect_header(r, "Content-Type", "application/json; charset=utf-8");
    nsq_http_result_free(r);
}
END_TEST

START_TEST(test_not_found_and_methods)
{
    struct nsq_http_result *r = req("GET", "/nope", NULL);
    ck_assert_int_eq(r->resp.status, 404);
    ck_assert_str_eq(r->resp.body, "{\"message\":\"NOT_FOUND\"}");
    expect_header(r, "X-NSQ-Content-Type", "nsq; version=1.0");
    nsq_http_result_free(r);

    r = req("POST", "/ping", "");
    ck_assert_int_eq(r->resp.status, 405);
    ck_assert_str_eq(r->resp.body, "{\"message\":\"METHOD_NOT_ALLOWED\"}");
    expect_header(r, "Allow", "GET, OPTIONS");
    nsq_http_result_free(r);

    r = req("HEAD", "/ping", NULL);
    ck_assert_int_eq(r->resp.status, 405);
    expect_header(r, "Allow", "GET, OPTIONS");
    nsq_http_result_free(r);

    r = req("DELETE", "/config/x", NULL);
    ck_assert_int_eq(r->resp.status, 405);
    expect_header(r, "Allow", "GET, OPTIONS, PUT");
    nsq_http_result_free(r);

    r = req("OPTIONS", "/pub", NULL);
    ck_assert_int_eq(r->resp.status, 200);
    ck_assert_uint_eq(r->resp.body_len, 0);
    expect_header(r, "Allow", "GET, OPTIONS, POST");
    nsq_http_result_free(r);

    expect("OPTIONS", "/nope", 404, "{\"message\":\"NOT_FOUND\"}");
    expect("PATCH", "/nope", 404, "{\"message\":\"NOT_FOUND\"}");
    expect("POST", "/ping/", 404, "{\"message\":\"NOT_FOUND\"}");
}
END_TEST

START_TEST(test_redirects)
{
    struct nsq_http_result *r = req("GET", "/ping/", NULL);
    ck_assert_int_eq(r->resp.status, 301);
    expect_header(r, "Location", "/ping");
    expect_header(r, "Content-Type", "text/html; charset=utf-8");
    ck_assert_str_eq(r->resp.body, "<a href=\"/ping\">Moved Permanently</a>.\n\n");
    nsq_http_result_free(r);

    r = req("POST", "/pub/?topic=a&b=c", "");
    ck_assert_int_eq(r->resp.status, 307);
    expect_header(r, "Location", "/pub?topic=a&b=c");
    ck_assert_uint_eq(r->resp.body_len, 0);
    nsq_http_result_free(r);

    r = req("GET", "/PING", NULL);
    ck_assert_int_eq(r->resp.status, 301);
    expect_header(r, "Location", "/ping");
    nsq_http_result_free(r);

    r = req("GET", "/Config/SomeOpt/", NULL);
    ck_assert_int_eq(r->resp.status, 301);
    expect_header(r, "Location", "/config/SomeOpt");
    nsq_http_result_free(r);

    r = req("GET", "//info", NULL);
    ck_assert_int_eq(r->resp.status, 301);
    expect_header(r, "Location", "/info");
    nsq_http_result_free(r);

    /* redirects only within the request method's routes */
    expect("PUT", "/PING", 404, NULL);

    struct nsq_http_client_options o = {.follow_redirects = true};
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/Ping/", srv.port);
    long status = 0;
    char *body = NULL;
    ck_assert_int_eq(nsq_http_fetch("GET", url, NULL, 0, &o, &status, &body, NULL), 0);
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(body, "OK");
    free(body);
}
END_TEST

START_TEST(test_params_and_query)
{
    expect("GET", "/config/mem_queue_size", 200, "mem_queue_size");
    expect("GET", "/config/", 404, NULL);
    expect("GET", "/config/a/b", 404, NULL);
    struct nsq_http_result *r = req("PUT", "/config/log_level", "debug");
    ck_assert_str_eq(r->resp.body, "put:log_level:5");
    nsq_http_result_free(r);
    r = req("PUT", "/config/log_level", "much too long");
    ck_assert_int_eq(r->resp.status, 413);
    nsq_http_result_free(r);
    expect("DELETE", "/a/1/b/2", 200, "2:1:2");
    expect("GET", "/static/js/app.js", 200, "/js/app.js");
    expect("GET", "/static/", 200, "/");
    /* routing sees the decoded path, as upstream */
    expect("GET", "/config/a%2Fb", 404, NULL);
    expect("GET", "/config/a%20b", 200, "a b");

    expect("GET", "/pub?topic=x&topic=y", 200, "x|7");
    expect("GET", "/pub?topic=a+b%21&binary=true", 200, "a b!|1");
    expect("GET", "/pub?binary=0&topic=z", 200, "z|0");
    expect("GET", "/pub?binary=maybe&topic=z", 200, "z|7");
    expect("GET", "/pub?topic&x=1", 200, "|7");
    expect("GET", "/pub?&&topic=q&", 200, "q|7");
    expect("GET", "/pub", 400, "{\"message\":\"MISSING_ARG_TOPIC\"}");
    expect("GET", "/pub?topic=%zz", 400, "{\"message\":\"INVALID_REQUEST\"}");
    expect("GET", "/pub?topic=a;b=c", 400, "{\"message\":\"INVALID_REQUEST\"}");
    expect("GET", "/pub?topic=a%", 400, "{\"message\":\"INVALID_REQUEST\"}");
    /* /ping ignores a malformed query */
    expect("GET", "/ping?%zz", 200, "OK");
    expect("GET", "/", 200, "OK");
}
END_TEST

START_TEST(test_base_path)
{
    struct server s2 = srv;
    server_stop(&srv);
    server_start(&srv, "/admin/");
    expect("GET", "/admin/ping", 200, "OK");
    expect("GET", "/admin", 200, "OK");
    expect("GET", "/ping", 404, NULL);
    struct nsq_http_result *r = req("GET", "/Admin/Ping", NULL);
    ck_assert_int_eq(r->resp.status, 301);
    expect_header(r, "Location", "/admin/ping");
    nsq_http_result_free(r);
    (void)s2;
}
END_TEST

START_TEST(test_parse_query)
{
    struct evkeyvalq q;
    TAILQ_INIT(&q);
    ck_assert_int_eq(nsq_http_parse_query("a=1&b=%41&a=2&c", &q), 0);
    ck_assert_str_eq(evhttp_find_header(&q, "a"), "1");
    ck_assert_str_eq(evhttp_find_header(&q, "b"), "A");
    ck_assert_str_eq(evhttp_find_header(&q, "c"), "");
    evhttp_clear_headers(&q);
    ck_assert_int_eq(nsq_http_parse_query("a=1;b=2&c=%0A", &q), -EINVAL);
    ck_assert_ptr_null(evhttp_find_header(&q, "a"));
    ck_assert_str_eq(evhttp_find_header(&q, "c"), "\n");
    evhttp_clear_headers(&q);
    ck_assert_int_eq(nsq_http_parse_query(NULL, &q), 0);
    ck_assert_str_eq(nsq_http_method_name(EVHTTP_REQ_DELETE), "DELETE");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("nsq_http_server");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_encoders);
    tcase_add_test(tc, test_not_found_and_methods);
    tcase_add_test(tc, test_redirects);
    tcase_add_test(tc, test_params_and_query);
    tcase_add_test(tc, test_base_path);
    tcase_add_test(tc, test_parse_query);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
