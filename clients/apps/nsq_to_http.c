/*
 * nsq_to_http: POSTs (or GETs) every message of a topic to HTTP endpoints.
 *
 * --post URL sends the body as the request body; --get URL replaces the one "%s" in the URL by
 * the query-escaped body. With --mode round-robin, hostpool or epsilon-greedy each message goes to
 * one endpoint chosen by hostpool.h's rules (in turn; in turn skipping endpoints marked dead by a
 * failure until their retry time; mostly the fastest recently); any other mode sends it to every
 * endpoint. A message is finished once its request(s)
 * succeeded (2xx for POST, 200 for GET) and requeued with backoff otherwise. At most -n requests
 * run at once; --sample sends only that fraction of the messages (the others are finished).
 *
 * Requests use libevent's HTTP client, one connection per request. https:// endpoints go through
 * bufferevent_openssl; the server certificate is verified against the system's roots (OpenSSL's
 * default paths, so SSL_CERT_FILE / SSL_CERT_DIR apply) and the URL's host.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "app.h"
#include "hostpool.h"
#include "nsq.h"
#include "nsq_time.h"
#include "nsq_tls.h"
#include "nsq_version.h"

#define DEFAULT_CONTENT_TYPE "application/octet-stream"
#define HTTP_PORT            80
#define HTTPS_PORT           443
/* stands for "%s" while a GET URL is parsed (a bare "%s" is not a valid URI) */
#define BODY_TOKEN "__NSQ_TO_HTTP_BODY__"

struct endpoint {
    char *url;
    struct evhttp_uri *uri;
    size_t index; /* in the host pool */
    bool tls;
};

struct job {
    TAILQ_ENTRY(job) link;
    struct nsq_message *msg;
    int outstanding; /* requests still running */
    bool failed;
};
TAILQ_HEAD(job_list, job);

struct app {
    struct event_base *base;
    struct nsq_consumer *consumer;
    struct endpoint *eps;
    size_t neps;
    bool post, fanout;
    struct hostpool *pool; /* NULL when fanning out */
    SSL_CTX *ssl_ctx;      /* for https:// endpoints */
    const char *content_type;
    struct nsq_strlist *headers;
    int64_t request_timeout;
    int concurrency, running;
    struct job_list queue;
    double sample;
    int status_every;
    uint64_t done, ok;
    int64_t total_ns;
    bool stopping;
};

struct request {
    struct app *a;
    struct job *job;
    struct endpoint *ep;
    struct evhttp_connection *conn;
    int64_t start_ns;
};

static void start_jobs(struct app *a);

static void free_conn_cb(evutil_socket_t fd, short what, void *arg)
{
    evhttp_connection_free(arg);
}

static void job_finished(struct app *a, struct job *j)
{
    if (j->failed)
        nsq_message_requeue(j->msg, -1);
    else
        nsq_message_finish(j->msg);
    free(j);
}

static void request_done(struct evhttp_request *req, void *arg)
{
    struct request *r = arg;
    struct app *a = r->a;
    int code = req ? evhttp_request_get_response_code(req) : 0;
    bool ok = a->post ? (code >= 200 && code < 300) : code == 200;
    int64_t now = nsq_mono_ns();
    if (a->pool)
        hostpool_mark(a->pool, r->ep->index, ok, now - r->start_ns, now);
    if (!ok) {
        app_log("ERROR: %s %s - status code %d", a->post ? "POST" : "GET", r->ep->url, code);
        r->job->failed = true;
    }
    a->done++;
    a->ok += ok;
    a->total_ns += now - r->start_ns;
    if (a->status_every > 0 && a->done % (uint64_t)a->status_every == 0)
        app_log("%llu requests, %llu ok, avg %.3fms", (unsigned long long)a->done,
                (unsigned long long)a->ok, (double)a->total_ns / 1e6 / (double)a->done);
    a->running--;
    if (--r->job->outstanding == 0)
        job_finished(a, r->job);
    /* evhttp still uses the connection after this callback */
    event_base_once(a->base, -1, EV_TIMEOUT, free_conn_cb, r->conn, NULL);
    free(r);
    start_jobs(a);
}

static int send_request(struct app *a, struct job *j, struct endpoint *ep)
{
    const char *host = evhttp_uri_get_host(ep->uri);
    int port = evhttp_uri_get_port(ep->uri);
    char target[8192], hosthdr[512], ua[64];
    struct request *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->a = a;
    r->job = j;
    r->ep = ep;
    r->start_ns = nsq_mono_ns();
    unsigned short dport = (unsigned short)(port > 0 ? port : ep->tls ? HTTPS_PORT : HTTP_PORT);
    if (ep->tls) {
        SSL *ssl = SSL_new(a->ssl_ctx);
        struct bufferevent *bev = NULL;
        if (ssl && nsq_tls_client_set_host(ssl, host) == 0)
            bev = bufferevent_openssl_socket_new(a->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                                 BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
        else if (ssl)
            SSL_free(ssl);
        if (bev) {
            bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
            r->conn = evhttp_connection_base_bufferevent_new(a->base, NULL, bev, host, dport);
            if (!r->conn)
                bufferevent_free(bev);
        }
    } else {
        r->conn = evhttp_connection_base_new(a->base, NULL, host, dport);
    }
    struct evhttp_request *req = evhttp_request_new(request_done, r);
    if (!r->conn || !req) {
        if (r->conn)
            evhttp_connection_free(r->conn);
        if (req)
            evhttp_request_free(req);
        free(r);
        return -ENOMEM;
    }
    if (a->request_timeout > 0) {
        struct timeval tv = {a->request_timeout / NSQ_NS_PER_SEC,
                             (a->request_timeout % NSQ_NS_PER_SEC) / 1000};
        evhttp_connection_set_timeout_tv(r->conn, &tv);
    }
    const char *path = evhttp_uri_get_path(ep->uri);
    const char *query = evhttp_uri_get_query(ep->uri);
    snprintf(target, sizeof(target), "%s%s%s", path && path[0] ? path : "/", query ? "?" : "",
             query ? query : "");
    if (!a->post) {
        /* replace "%s" by the escaped body */
        char *esc = evhttp_uriencode((const char *)j->msg->body, (ssize_t)j->msg->body_len, 1);
        char *p = strstr(target, BODY_TOKEN);
        char tmp[8192];
        if (!esc || !p) {
            free(esc);
            evhttp_request_free(req);
            evhttp_connection_free(r->conn);
            free(r);
            return -EINVAL;
        }
        snprintf(tmp, sizeof(tmp), "%.*s%s%s", (int)(p - target), target, esc,
                 p + strlen(BODY_TOKEN));
        snprintf(target, sizeof(target), "%s", tmp);
        free(esc);
    }
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    snprintf(hosthdr, sizeof(hosthdr), port > 0 ? "%s:%d" : "%s", host, port);
    snprintf(ua, sizeof(ua), "nsq_to_http v%s", NSQ_VERSION);
    evhttp_add_header(h, "Host", hosthdr);
    evhttp_add_header(h, "User-Agent", ua);
    for (size_t i = 0; i < a->headers->len; i++) {
        char name[256];
        const char *hv = a->headers->items[i];
        const char *colon = strchr(hv, ':');
        snprintf(name, sizeof(name), "%.*s", (int)(colon - hv), hv);
        const char *value = colon + 1;
        while (*value == ' ')
            value++;
        evhttp_add_header(h, name, value);
    }
    if (a->post) {
        evhttp_add_header(h, "Content-Type", a->content_type);
        evbuffer_add(evhttp_request_get_output_buffer(req), j->msg->body, j->msg->body_len);
    }
    if (evhttp_make_request(r->conn, req, a->post ? EVHTTP_REQ_POST : EVHTTP_REQ_GET, target) < 0) {
        evhttp_connection_free(r->conn);
        free(r);
        return -EIO;
    }
    a->running++;
    j->outstanding++;
    return 0;
}

static struct endpoint *pick(struct app *a)
{
    return &a->eps[hostpool_pick(a->pool, nsq_mono_ns())];
}

static void start_jobs(struct app *a)
{
    struct job *j;
    while ((j = TAILQ_FIRST(&a->queue)) != NULL && a->running < a->concurrency) {
        TAILQ_REMOVE(&a->queue, j, link);
        if (a->fanout) {
            for (size_t i = 0; i < a->neps; i++)
                if (send_request(a, j, &a->eps[i]) < 0)
                    j->failed = true;
        } else if (send_request(a, j, pick(a)) < 0) {
            j->failed = true;
        }
        if (j->outstanding == 0)
            job_finished(a, j);
    }
}

static int handle(struct nsq_message *m, void *arg)
{
    struct app *a = arg;
    if (a->sample < 1.0 && (double)random() / ((double)RAND_MAX + 1.0) >= a->sample)
        return 0;
    struct job *j = calloc(1, sizeof(*j));
    if (!j)
        return -1;
    j->msg = m;
    nsq_message_disable_auto_response(m);
    TAILQ_INSERT_TAIL(&a->queue, j, link);
    start_jobs(a);
    return 0;
}

static void on_stopped(void *arg)
{
    event_base_loopexit(((struct app *)arg)->base, NULL);
}

static void stop_all(void *arg)
{
    struct app *a = arg;
    if (a->stopping)
        return;
    a->stopping = true;
    nsq_consumer_stop(a->consumer, on_stopped, a);
}

int main(int argc, char **argv)
{
    char *topic = NULL, *channel = NULL, *content_type = NULL, *mode = NULL;
    struct nsq_strlist posts = {0}, gets = {0}, headers = {0}, nsqd = {0}, lookupd = {0},
                       copts = {0};
    int max_in_flight = 200, concurrency = 100, status_every = 250;
    double sample = 1.0;
    int64_t connect_timeout = 0, request_timeout = 0;
    const struct nsq_opt table[] = {
            NSQ_OPT_ENTRY("topic", "", NSQ_OPT_STRING, &topic, "", "nsq topic"),
            NSQ_OPT_ENTRY("channel", "", NSQ_OPT_STRING, &channel, "nsq_to_http", "nsq channel"),
            NSQ_OPT_ENTRY("max-in-flight", "", NSQ_OPT_INT, &max_in_flight, "200",
                          "max number of messages to allow in flight"),
            NSQ_OPT_ENTRY("n", "", NSQ_OPT_INT, &concurrency, "100",
                          "number of concurrent publishers"),
            NSQ_OPT_ENTRY("post", "", NSQ_OPT_STRING_LIST, &posts, NULL,
                          "HTTP address to make a POST request to.  data will be in the body "
                          "(may be given multiple times)"),
            NSQ_OPT_ENTRY("get", "", NSQ_OPT_STRING_LIST, &gets, NULL,
                          "HTTP address to make a GET request to. '%s' will be printf replaced "
                          "with data (may be given multiple times)"),
            NSQ_OPT_ENTRY("header", "", NSQ_OPT_STRING_LIST, &headers, NULL,
                          "Custom header for HTTP requests (may be given multiple times)"),
            NSQ_OPT_ENTRY("content-type", "", NSQ_OPT_STRING, &content_type, DEFAULT_CONTENT_TYPE,
                          "the Content-Type used for POST requests"),
            NSQ_OPT_ENTRY("mode", "", NSQ_OPT_STRING, &mode, "hostpool",
                          "the upstream request mode options: round-robin, hostpool (default), "
                          "epsilon-greedy"),
            {.flag = "sample",
             .cfg = "",
             .type = NSQ_OPT_CUSTOM,
             .target = &sample,
             .defval = "1.0",
             .help = "% of messages to publish (float b/w 0 -> 1)",
             .parse = app_parse_double,
             .usage_default = "1"},
            NSQ_OPT_ENTRY("http-client-connect-timeout", "", NSQ_OPT_DURATION, &connect_timeout,
                          "2s", "timeout for HTTP connect"),
            NSQ_OPT_ENTRY("http-client-request-timeout", "", NSQ_OPT_DURATION, &request_timeout,
                          "20s", "timeout for HTTP request"),
            NSQ_OPT_ENTRY("status-every", "", NSQ_OPT_INT, &status_every, "250",
                          "the # of requests between logging status (per handler), 0 disables"),
            NSQ_OPT_ENTRY("nsqd-tcp-address", "", NSQ_OPT_STRING_LIST, &nsqd, NULL,
                          "nsqd TCP address (may be given multiple times)"),
            NSQ_OPT_ENTRY("lookupd-http-address", "", NSQ_OPT_STRING_LIST, &lookupd, NULL,
                          "lookupd HTTP address (may be given multiple times)"),
            NSQ_OPT_ENTRY("consumer-opt", "", NSQ_OPT_STRING_LIST, &copts, NULL,
                          "option to passthrough to nsq.Consumer (may be given multiple times)"),
    };
    const size_t ntable = sizeof(table) / sizeof(table[0]);
    app_parse_options(table, ntable, "nsq_to_http", argc, argv);

    if (!topic[0] || !channel[0])
        app_fatal("--topic and --channel are required");
    app_check_sources(&nsqd, &lookupd);
    if (posts.len == 0 && gets.len == 0)
        app_fatal("--get or --post required");
    if (posts.len > 0 && gets.len > 0)
        app_fatal("use --get or --post not both");
    if (strcmp(content_type, DEFAULT_CONTENT_TYPE) != 0 && posts.len == 0)
        app_fatal("--content-type only used with --post");
    if (sample > 1.0 || sample < 0.0)
        app_fatal("ERROR: --sample must be between 0.0 and 1.0");
    if (concurrency < 1)
        concurrency = 1;
    for (size_t i = 0; i < headers.len; i++)
        if (!strchr(headers.items[i], ':') || headers.items[i][0] == ':')
            app_fatal("invalid header: %s", headers.items[i]);

    struct app a = {.post = posts.len > 0,
                    .content_type = content_type,
                    .headers = &headers,
                    .request_timeout = request_timeout,
                    .concurrency = concurrency,
                    .sample = sample,
                    .status_every = status_every};
    struct nsq_strlist *urls = a.post ? &posts : &gets;
    enum hostpool_mode pool_mode;
    a.fanout = hostpool_parse_mode(mode, &pool_mode) < 0;
    a.neps = urls->len;
    a.eps = calloc(a.neps, sizeof(*a.eps));
    if (!a.fanout)
        a.pool = hostpool_new(pool_mode, a.neps, (uint64_t)nsq_now_ns() ^ (uint64_t)getpid());
    if (!a.eps || (!a.fanout && !a.pool))
        app_fatal("out of memory");
    for (size_t i = 0; i < a.neps; i++) {
        a.eps[i].url = urls->items[i];
        a.eps[i].index = i;
        if (!a.post) {
            const char *first = strstr(urls->items[i], "%s");
            if (!first || strstr(first + 2, "%s"))
                app_fatal("invalid GET address - must be a printf string");
        }
        char parsed[4096];
        snprintf(parsed, sizeof(parsed), "%s", urls->items[i]);
        char *tok = strstr(parsed, "%s");
        if (tok) {
            char rest[4096];
            snprintf(rest, sizeof(rest), "%s", tok + 2);
            snprintf(tok, sizeof(parsed) - (size_t)(tok - parsed), "%s%s", BODY_TOKEN, rest);
        }
        a.eps[i].uri = evhttp_uri_parse(parsed);
        const char *scheme = a.eps[i].uri ? evhttp_uri_get_scheme(a.eps[i].uri) : NULL;
        if (!a.eps[i].uri || !evhttp_uri_get_host(a.eps[i].uri) || !scheme ||
            (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0))
            app_fatal("invalid address %s", urls->items[i]);
        a.eps[i].tls = !strcmp(scheme, "https");
        if (a.eps[i].tls && !a.ssl_ctx) {
            char err[256] = "";
            a.ssl_ctx = nsq_tls_client_ctx(NULL, NULL, NULL, false, 0, err, sizeof(err));
            if (!a.ssl_ctx)
                app_fatal("cannot set up TLS: %s", err);
        }
    }
    TAILQ_INIT(&a.queue);
    srandom((unsigned)(nsq_now_ns() ^ getpid()));

    a.base = event_base_new();
    struct nsq_config *cfg = nsq_config_new();
    app_set_user_agent(cfg, "nsq_to_http");
    app_apply_opts(cfg, &copts, "consumer-opt");
    char mif[32];
    snprintf(mif, sizeof(mif), "%d", max_in_flight);
    nsq_config_set(cfg, "max_in_flight", mif);
    a.consumer = nsq_consumer_new(a.base, topic, channel, cfg, handle, &a);
    if (!a.consumer)
        app_fatal("invalid topic or channel name (%s, %s)", topic, channel);
    app_connect_sources(a.consumer, &nsqd, &lookupd);
    struct app_signals *sig = app_signals_new(a.base, stop_all, NULL, &a);
    event_base_dispatch(a.base);
    app_signals_free(sig);
    nsq_consumer_free(a.consumer);
    for (size_t i = 0; i < a.neps; i++)
        evhttp_uri_free(a.eps[i].uri);
    free(a.eps);
    hostpool_free(a.pool);
    if (a.ssl_ctx)
        SSL_CTX_free(a.ssl_ctx);
    nsq_config_free(cfg);
    event_base_free(a.base);
    nsq_options_free(table, ntable);
    return 0;
}
