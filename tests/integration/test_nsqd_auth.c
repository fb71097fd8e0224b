/*
 * test_nsqd_auth: AUTH and the authorization checks (tcp-protocol.md §4.2) against an auth server
 * run by the test itself (evhttp on 127.0.0.1:0 in a thread, http-api.md §6). The server answers
 * by secret and counts the requests it received, so expiry and re-query are observable.
 */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "harness.h"
#include "nsqd_itest.h"

#define QUERY_LEN 1024
#define AWAIT_MS  5000
#define ALLOWED_REPLY                                                                              \
    "{\"identity\":\"alice\",\"identity_url\":\"https://example.com/"                              \
    "alice\",\"permission_count\":1}"

/* ---- the auth server ---- */

struct auth_server {
    struct event_base *base;
    struct evhttp *http;
    pthread_t thread;
    int port;
    atomic_int requests;       /* every request */
    atomic_int short_requests; /* requests with secret "short" */
    atomic_int once_requests;  /* requests with secret "once" */
    pthread_mutex_t lock;
    char last_query[QUERY_LEN]; /* guarded by lock */
};

static const struct {
    const char *secret;
    int status;
    const char *body;
} replies[] = {
        {"allowed", 200,
         "{\"ttl\":3600,\"identity\":\"alice\",\"identity_url\":\"https://example.com/alice\","
         "\"authorizations\":[{\"topic\":\"^allowed\",\"channels\":[\".*\"],"
         "\"permissions\":[\"subscribe\",\"publish\"]}]}"},
        {"pubonly", 200,
         "{\"ttl\":3600,\"identity\":\"bob\",\"authorizations\":[{\"topic\":\"^allowed\\\\d$\","
         "\"channels\":[\".*\"],\"permissions\":[\"publish\"]}]}"},
        {"none", 200, "{\"ttl\":3600,\"identity\":\"carol\",\"authorizations\":[]}"},
        {"short", 200,
         "{\"ttl\":1,\"identity\":\"dave\",\"authorizations\":[{\"topic\":\".*\","
         "\"channels\":[\".*\"],\"permissions\":[\"publish\"]}]}"},
        {"once", 200,
         "{\"ttl\":1,\"identity\":\"fred\",\"authorizations\":[{\"topic\":\".*\","
         "\"channels\":[\".*\"],\"permissions\":[\"publish\"]}]}"},
        {"zero_ttl", 200,
         "{\"ttl\":0,\"identity\":\"eve\",\"authorizations\":[{\"topic\":\".*\","
         "\"channels\":[\".*\"],\"permissions\":[\"publish\"]}]}"},
        {"bad_perm", 200,
         "{\"ttl\":60,\"authorizations\":[{\"topic\":\".*\",\"channels\":[\".*\"],"
         "\"permissions\":[\"admin\"]}]}"},
        {"error", 500, "{\"message\":\"boom\"}"},
};

static void auth_cb(struct evhttp_request *req, void *arg)
{
    struct auth_server *s = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *query = evhttp_uri_get_query(uri);
    bool post = evhttp_request_get_command(req) == EVHTTP_REQ_POST;
    char form[QUERY_LEN / 2] = ""; /* room left in last_query for the method and path */
    struct evkeyvalq q;
    const char *secret = NULL;
    if (post) { /* --auth-http-request-method=post: the parameters are the form body */
        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        size_t n = evbuffer_get_length(in);
        evbuffer_copyout(in, form, n < sizeof(form) - 1 ? n : sizeof(form) - 1);
        query = form;
    }
    atomic_fetch_add(&s->requests, 1);
    pthread_mutex_lock(&s->lock);
    snprintf(s->last_query, sizeof(s->last_query), "%s%s %s", post ? "POST " : "",
             evhttp_uri_get_path(uri), query ? query : "");
    pthread_mutex_unlock(&s->lock);
    if (query && evhttp_parse_query_str(query, &q) == 0) {
        secret = evhttp_find_header(&q, "secret");
        for (size_t i = 0; secret && i < sizeof(replies) / sizeof(replies[0]); i++) {
            if (strcmp(secret, replies[i].secret) != 0)
                continue;
            if (strcmp(secret, "short") == 0)
                atomic_fetch_add(&s->short_requests, 1);
            /* "once": a short-lived grant, then the server fails every re-query. */
            if (strcmp(secret, "once") == 0 && atomic_fetch_add(&s->once_requests, 1) > 0) {
                evhttp_send_error(req, 500, NULL);
                evhttp_clear_headers(&q);
                return;
            }
            struct evbuffer *b = evbuffer_new();
            evbuffer_add(b, replies[i].body, strlen(replies[i].body));
            evhttp_send_reply(req, replies[i].status, "X", b);
            evbuffer_free(b);
            evhttp_clear_headers(&q);
            return;
        }
        evhttp_clear_headers(&q);
    }
    evhttp_send_error(req, 404, NULL);
}

static void *auth_thread(void *arg)
{
    struct auth_server *s = arg;
    event_base_dispatch(s->base);
    return NULL;
}

static void auth_server_start(struct auth_server *s)
{
    memset(s, 0, sizeof(*s));
    evthread_use_pthreads();
    pthread_mutex_init(&s->lock, NULL);
    s->base = event_base_new();
    s->http = evhttp_new(s->base);
    evhttp_set_gencb(s->http, auth_cb, s);
    struct evhttp_bound_socket *h = evhttp_bind_socket_with_handle(s->http, "127.0.0.1", 0);
    ck_assert_ptr_nonnull(h);
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    ck_assert_int_eq(getsockname(evhttp_bound_socket_get_fd(h), (struct sockaddr *)&sin, &len), 0);
    s->port = ntohs(sin.sin_port);
    ck_assert_int_eq(pthread_create(&s->thread, NULL, auth_thread, s), 0);
}

static void auth_server_stop(struct auth_server *s)
{
    event_base_loopbreak(s->base);
    pthread_join(s->thread, NULL);
    evhttp_free(s->http);
    event_base_free(s->base);
    pthread_mutex_destroy(&s->lock);
}

/* ---- nsqd ---- */

struct auth_nsqd {
    char *dir;
    struct harness_proc *p;
    int tcp, http;
};

/* Starts nsqd with one or two --auth-http-address values (addr2 may be NULL). */
/* Starts nsqd asking the auth servers addr1 (and addr2), with one more flag if `flag` is set. */
static void auth_nsqd_start_flag(struct auth_nsqd *t, const char *addr1, const char *addr2,
                                 const char *flag)
{
    char a1[256], a2[256];
    const char *extra[5] = {NULL};
    int n = 0;
    if (addr1) {
        snprintf(a1, sizeof(a1), "--auth-http-address=%s", addr1);
        extra[n++] = a1;
    }
    if (addr2) {
        snprintf(a2, sizeof(a2), "--auth-http-address=%s", addr2);
        extra[n++] = a2;
    }
    extra[n++] = "--http-client-request-timeout=2s";
    if (flag)
        extra[n++] = flag;
    t->dir = harness_tmpdir();
    t->p = itest_nsqd_start(t->dir, extra);
    ck_assert_ptr_nonnull(t->p);
    t->tcp = harness_port(t->p, "TCP");
    t->http = harness_port(t->p, "HTTP");
}

static void auth_nsqd_start(struct auth_nsqd *t, const char *addr1, const char *addr2)
{
    auth_nsqd_start_flag(t, addr1, addr2, NULL);
}

static void auth_nsqd_stop(struct auth_nsqd *t)
{
    ck_assert_int_eq(harness_stop(t->p, 0), 0);
    harness_rmdir(t->dir);
    free(t->dir);
}

static void addr_of(const struct auth_server *s, char *buf, size_t len)
{
    snprintf(buf, len, "127.0.0.1:%d", s->port);
}

/* ---- protocol helpers ---- */

static int connect_identified(int port)
{
    int fd = itest_v2_connect(port);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(itest_identify(fd, "{\"client_id\":\"auth-test\"}"), 0);
    return fd;
}

static void send_auth(int fd, const char *secret)
{
    ck_assert_int_eq(harness_tcp_send_str(fd, "AUTH\n"), 0);
    ck_assert_int_eq(harness_tcp_send_sized(fd, secret, strlen(secret)), 0);
}

static void expect_frame(int fd, int32_t want_type, const char *want)
{
    int32_t type = -1;
    char *data = NULL;
    size_t len = 0;
    ck_assert_msg(itest_read_frame(fd, &type, &data, &len, AWAIT_MS) == 0, "no frame, want %s",
                  want);
    ck_assert_msg(type == want_type && strcmp(data, want) == 0, "got %d \"%s\", want %d \"%s\"",
                  type, data, want_type, want);
    free(data);
}

/* A fatal error: the frame, then the connection closes. */
static void expect_fatal(int fd, const char *want)
{
    expect_frame(fd, ITEST_FRAME_ERROR, want);
    ck_assert(harness_tcp_wait_closed(fd, AWAIT_MS));
    close(fd);
}

static void send_pub(int fd, const char *topic, const char *body)
{
    char line[128];
    snprintf(line, sizeof(line), "PUB %s\n", topic);
    ck_assert_int_eq(harness_tcp_send_str(fd, line), 0);
    ck_assert_int_eq(harness_tcp_send_sized(fd, body, strlen(body)), 0);
}

/* ---- tests ---- */

START_TEST(auth_allowed)
{
    struct auth_server s;
    struct auth_nsqd t;
    char addr[64];
    auth_server_start(&s);
    addr_of(&s, addr, sizeof(addr));
    auth_nsqd_start(&t, addr, NULL);

    /* IDENTIFY announces that AUTH is required. */
    int fd = itest_v2_connect(t.tcp);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(harness_tcp_send_str(fd, "IDENTIFY\n"), 0);
    const char *id = "{\"feature_negotiation\":true}";
    ck_assert_int_eq(harness_tcp_send_sized(fd, id, strlen(id)), 0);
    int32_t type;
    char *data = NULL;
    size_t len;
    ck_assert_int_eq(itest_read_frame(fd, &type, &data, &len, AWAIT_MS), 0);
    cJSON *j = cJSON_Parse(data);
    free(data);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(j, "auth_required")));
    cJSON_Delete(j);

    send_auth(fd, "allowed");
    expect_frame(fd, ITEST_FRAME_RESP, ALLOWED_REPLY);
    pthread_mutex_lock(&s.lock);
    ck_assert_str_eq(s.last_query,
                     "/auth common_name=&remote_ip=127.0.0.1&secret=allowed&tls=false");
    pthread_mutex_unlock(&s.lock);
    ck_assert_int_eq(itest_pub(fd, "allowed_topic", "m1", 2), 0);
    ck_assert_int_eq(itest_sub(fd, "allowed_topic", "ch"), 0);
    ck_assert_int_eq(itest_rdy(fd, 1), 0);
    struct itest_msg m;
    ck_assert_int_eq(itest_read_msg(fd, &m, AWAIT_MS), 0);
    ck_assert_str_eq(m.body, "m1");
    free(m.body);

    /* /stats shows the identity. */
    cJSON *root = itest_stats(t.http, NULL);
    cJSON *ch = itest_stats_find(root, "allowed_topic", "ch");
    ck_assert_ptr_nonnull(ch);
    cJSON *cl = cJSON_GetArrayItem(cJSON_GetObjectItem(ch, "clients"), 0);
    ck_assert_ptr_nonnull(cl);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(cl, "authed")));
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(cl, "auth_identity")), "alice");
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(cl, "auth_identity_url")),
                     "https://example.com/alice");
    cJSON_Delete(root);
    close(fd);

    /* A second AUTH on an authorized connection. */
    fd = connect_identified(t.tcp);
    send_auth(fd, "allowed");
    expect_frame(fd, ITEST_FRAME_RESP, ALLOWED_REPLY);
    send_auth(fd, "allowed");
    expect_fatal(fd, "E_INVALID AUTH already set");

    auth_nsqd_stop(&t);
    auth_server_stop(&s);
}
END_TEST

/* --auth-http-request-method=post sends the same parameters as a form body. */
START_TEST(auth_post_method)
{
    struct auth_server s;
    struct auth_nsqd t;
    char addr[64];
    auth_server_start(&s);
    addr_of(&s, addr, sizeof(addr));
    auth_nsqd_start_flag(&t, addr, NULL, "--auth-http-request-method=post");

    int fd = connect_identified(t.tcp);
    send_auth(fd, "allowed");
    expect_frame(fd, ITEST_FRAME_RESP, ALLOWED_REPLY);
    pthread_mutex_lock(&s.lock);
    ck_assert_str_eq(s.last_query,
                     "POST /auth common_name=&remote_ip=127.0.0.1&secret=allowed&tls=false");
    pthread_mutex_unlock(&s.lock);
    ck_assert_int_eq(itest_pub(fd, "allowed_topic", "m1", 2), 0);
    close(fd);

    auth_nsqd_stop(&t);
    auth_server_stop(&s);
}
END_TEST

START_TEST(auth_denied)
{
    struct auth_server s;
    struct auth_nsqd t;
    char addr[64];
    auth_server_start(&s);
    addr_of(&s, addr, sizeof(addr));
    auth_nsqd_start(&t, addr, NULL);

    int fd = connect_identified(t.tcp);
    send_auth(fd, "allowed");
    expect_frame(fd, ITEST_FRAME_RESP, ALLOWED_REPLY);
    send_pub(fd, "other", "x");
    expect_fatal(fd, "E_UNAUTHORIZED AUTH failed for PUB on \"other\" \"\"");

    /* Publish-only: PUB to a matching topic (\d rewritten for POSIX), SUB refused. */
    fd = connect_identified(t.tcp);
    send_auth(fd, "pubonly");
    expect_frame(fd, ITEST_FRAME_RESP,
                 "{\"identity\":\"bob\",\"identity_url\":\"\",\"permission_count\":1}");
    ck_assert_int_eq(itest_pub(fd, "allowed1", "x", 1), 0);
    ck_assert_int_eq(harness_tcp_send_str(fd, "SUB allowed1 ch\n"), 0);
    expect_fatal(fd, "E_UNAUTHORIZED AUTH failed for SUB on \"allowed1\" \"ch\"");

    fd = connect_identified(t.tcp);
    send_auth(fd, "none");
    expect_fatal(fd, "E_UNAUTHORIZED AUTH no authorizations found");

    auth_nsqd_stop(&t);
    auth_server_stop(&s);
}
END_TEST

START_TEST(auth_first_and_invalid_replies)
{
    struct auth_server s;
    struct auth_nsqd t;
    char addr[64];
    auth_server_start(&s);
    addr_of(&s, addr, sizeof(addr));
    auth_nsqd_start(&t, addr, NULL);

    int fd = connect_identified(t.tcp);
    send_pub(fd, "allowed_t", "x");
    expect_fatal(fd, "E_AUTH_FIRST AUTH required before PUB");
    fd = connect_identified(t.tcp);
    ck_assert_int_eq(harness_tcp_send_str(fd, "SUB allowed_t ch\n"), 0);
    expect_fatal(fd, "E_AUTH_FIRST AUTH required before SUB");

    const char *bad[] = {"zero_ttl", "bad_perm", "error", "unknown"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        fd = connect_identified(t.tcp);
        send_auth(fd, bad[i]);
        expect_fatal(fd, "E_AUTH_FAILED AUTH failed");
    }
    auth_nsqd_stop(&t);
    auth_server_stop(&s);
}
END_TEST

struct requery {
    int fd;
    struct auth_server *s;
};

/* Publishes once; true once the auth server has been asked again. */
static bool pub_until_requeried(void *arg)
{
    struct requery *r = arg;
    if (itest_pub(r->fd, "short_topic", "x", 1) != 0)
        return true; /* let the assertion below report it */
    return atomic_load(&r->s->short_requests) >= 2;
}

START_TEST(auth_expiry_requery)
{
    struct auth_server s;
    struct auth_nsqd t;
    char addr[64];
    auth_server_start(&s);
    addr_of(&s, addr, sizeof(addr));
    auth_nsqd_start(&t, addr, NULL);

    int fd = connect_identified(t.tcp);
    send_auth(fd, "short");
    expect_frame(fd, ITEST_FRAME_RESP,
                 "{\"identity\":\"dave\",\"identity_url\":\"\",\"permission_count\":1}");
    ck_assert_int_eq(atomic_load(&s.short_requests), 1);
    /* ttl=1: once it has passed, the next PUB asks the server again and still succeeds. */
    struct requery r = {.fd = fd, .s = &s};
    ck_assert(harness_wait_until(pub_until_requeried, &r, AWAIT_MS));
    ck_assert_int_ge(atomic_load(&s.short_requests), 2);
    ck_assert_int_eq(itest_pub(fd, "short_topic", "y", 1), 0);
    close(fd);

    /* Expired, and the re-query fails: E_AUTH_FAILED. A "short" probe authorized after the
       "once" connection tells when the latter's grant has expired too. */
    int once = connect_identified(t.tcp);
    send_auth(once, "once");
    expect_frame(once, ITEST_FRAME_RESP,
                 "{\"identity\":\"fred\",\"identity_url\":\"\",\"permission_count\":1}");
    fd = connect_identified(t.tcp);
    send_auth(fd, "short");
    expect_frame(fd, ITEST_FRAME_RESP,
                 "{\"identity\":\"dave\",\"identity_url\":\"\",\"permission_count\":1}");
    r.fd = fd;
    atomic_store(&s.short_requests, 1); /* the probe's AUTH; the next one is its re-query */
    ck_assert(harness_wait_until(pub_until_requeried, &r, AWAIT_MS));
    close(fd);
    send_pub(once, "short_topic", "z");
    expect_fatal(once, "E_AUTH_FAILED AUTH failed");
    ck_assert_int_eq(atomic_load(&s.once_requests), 2);
    auth_nsqd_stop(&t);
    auth_server_stop(&s);
}
END_TEST

START_TEST(auth_server_down)
{
    struct auth_nsqd t;
    /* A port nothing listens on: bind one and close it. */
    int probe = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    ck_assert_int_eq(bind(probe, (struct sockaddr *)&sin, sizeof(sin)), 0);
    ck_assert_int_eq(getsockname(probe, (struct sockaddr *)&sin, &len), 0);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", ntohs(sin.sin_port));
    close(probe);

    auth_nsqd_start(&t, addr, NULL);
    int fd = connect_identified(t.tcp);
    send_auth(fd, "allowed");
    expect_fatal(fd, "E_AUTH_FAILED AUTH failed");
    /* nsqd keeps serving. */
    char *body = NULL;
    ck_assert_int_eq(itest_http("GET", t.http, "/ping", NULL, &body), 200);
    free(body);
    fd = connect_identified(t.tcp);
    ck_assert_int_eq(harness_tcp_send_str(fd, "NOP\n"), 0);
    send_pub(fd, "t", "x");
    expect_fatal(fd, "E_AUTH_FIRST AUTH required before PUB");

    /* With a working second server, AUTH succeeds whichever one is tried first. */
    auth_nsqd_stop(&t);
    struct auth_server s;
    auth_server_start(&s);
    char good[64];
    addr_of(&s, good, sizeof(good));
    auth_nsqd_start(&t, addr, good);
    for (int i = 0; i < 4; i++) {
        fd = connect_identified(t.tcp);
        send_auth(fd, "allowed");
        expect_frame(fd, ITEST_FRAME_RESP, ALLOWED_REPLY);
        close(fd);
    }
    auth_nsqd_stop(&t);
    auth_server_stop(&s);
}
END_TEST

START_TEST(auth_disabled)
{
    struct auth_nsqd t;
    auth_nsqd_start(&t, NULL, NULL);
    int fd = connect_identified(t.tcp);
    send_auth(fd, "anything");
    expect_fatal(fd, "E_AUTH_DISABLED AUTH disabled");
    /* Without auth, publishing needs nothing. */
    fd = connect_identified(t.tcp);
    ck_assert_int_eq(itest_pub(fd, "free_topic", "x", 1), 0);
    close(fd);
    auth_nsqd_stop(&t);
}
END_TEST

static Suite *auth_suite(void)
{
    Suite *s = suite_create("nsqd_auth");
    TCase *tc = tcase_create("auth");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, auth_allowed);
    tcase_add_test(tc, auth_post_method);
    tcase_add_test(tc, auth_denied);
    tcase_add_test(tc, auth_first_and_invalid_replies);
    tcase_add_test(tc, auth_expiry_requery);
    tcase_add_test(tc, auth_server_down);
    tcase_add_test(tc, auth_disabled);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(auth_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
