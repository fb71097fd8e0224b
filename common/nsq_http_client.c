/*
 * nsq_http_client: curl's socket interface mapped onto libevent. curl tells us (socket_cb) which
 * fds to watch and (timer_cb) when to call back; we hand readiness and timeouts to
 * curl_multi_socket_action and collect finished transfers from curl_multi_info_read.
 *
 * Re-entrancy: done callbacks run from collect_done(), never from inside a curl callback, so they
 * may start new requests or free the client (the free is then deferred to the end of dispatch).
 */
#include "nsq_http_client.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>

#define NS_PER_MS          1000000LL
#define HTTPS_RETRY_LIMIT  1
#define RESPONSE_MAX_BYTES (64u << 20) /* refuse absurd answers rather than exhaust memory */

struct buf {
    char *d;
    size_t len, cap;
};

struct request {
    struct nsq_http_client *c;
    CURL *easy;
    struct curl_slist *headers;
    char *method, *url, *content_type;
    char *body;
    size_t body_len;
    struct buf resp, hdrs;
    nsq_http_done_fn done;
    void *arg;
    int https_retries;
    char errbuf[CURL_ERROR_SIZE];
    struct request *prev, *next;
};

struct nsq_http_client {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
    struct nsq_http_client_options o;
    char *ca_file, *cert_file, *key_file;
    struct request *head;
    size_t pending;
    int dispatching;    /* >0 while done callbacks may run */
    bool free_deferred; /* nsq_http_client_free called during dispatch */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int buf_add(struct buf *b, const void *d, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 1024;
        while (nc < b->len + n + 1)
            nc *= 2;
        char *nd = realloc(b->d, nc);
        if (!nd)
            return -ENOMEM;
        b->d = nd;
        b->cap = nc;
    }
    memcpy(b->d + b->len, d, n);
    b->len += n;
    b->d[b->len] = '\0';
    return 0;
}

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct request *rq = userdata;
    size_t n = size * nmemb;
    if (rq->resp.len + n > RESPONSE_MAX_BYTES || buf_add(&rq->resp, ptr, n) < 0)
        return 0; /* aborts the transfer */
    return n;
}

static size_t header_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct request *rq = userdata;
    size_t n = size * nmemb;
    /* keep only the last response's headers (after redirects or 100-continue) */
    if (n >= 5 && strncmp(ptr, "HTTP/", 5) == 0)
        rq->hdrs.len = 0;
    if (buf_add(&rq->hdrs, ptr, n) < 0)
        return 0;
    return n;
}

static void request_free(struct request *rq)
{
    if (!rq)
        return;
    if (rq->easy)
        curl_easy_cleanup(rq->easy);
    curl_slist_free_all(rq->headers);
    free(rq->method);
    free(rq->url);
    free(rq->content_type);
    free(rq->body);
    free(rq->resp.d);
    free(rq->hdrs.d);
    free(rq);
}

static void unlink_request(struct nsq_http_client *c, struct request *rq)
{
    if (rq->prev)
        rq->prev->next = rq->next;
    else
        c->head = rq->next;
    if (rq->next)
        rq->next->prev = rq->prev;
    rq->prev = rq->next = NULL;
    c->pending--;
}

/* Configures rq->easy for the current url; adds it to the multi handle. */
static int request_start(struct nsq_http_client *c, struct request *rq)
{
    CURL *e = curl_easy_init();
    if (!e)
        return -ENOMEM;
    rq->easy = e;
    rq->resp.len = 0;
    rq->hdrs.len = 0;
    rq->errbuf[0] = '\0';
    curl_easy_setopt(e, CURLOPT_URL, rq->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, rq);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, rq->errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, rq);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, rq);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, rq->headers);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, c->o.follow_redirects ? 1L : 0L);
    if (c->o.connect_timeout_ns > 0)
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                         (long)((c->o.connect_timeout_ns + NS_PER_MS - 1) / NS_PER_MS));
    if (c->o.request_timeout_ns > 0)
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
                         (long)((c->o.request_timeout_ns + NS_PER_MS - 1) / NS_PER_MS));
    if (c->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file);
    if (c->cert_file)
        curl_easy_setopt(e, CURLOPT_SSLCERT, c->cert_file);
    if (c->key_file)
        curl_easy_setopt(e, CURLOPT_SSLKEY, c->key_file);
    if (c->o.insecure_skip_verify) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (strcmp(rq->method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (rq->body || strcmp(rq->method, "POST") == 0 || strcmp(rq->method, "PUT") == 0) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, rq->body ? rq->body : "");
        if (strcmp(rq->method, "POST") != 0)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, rq->method);
    } else if (strcmp(rq->method, "GET") != 0) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, rq->method);
    }
    if (curl_multi_add_handle(c->multi, e) != CURLM_OK) {
        curl_easy_cleanup(e);
        rq->easy = NULL;
        return -ENOMEM;
    }
    return 0;
}

/* "http://host:port/path" + https_port → "https://host:<https_port>/path". */
static char *https_url(const char *url, long port)
{
    const char *rest = strncasecmp(url, "http://", 7) == 0 ? url + 7 : url;
    if (strstr(rest, "://"))
        return NULL;
    const char *slash = strchr(rest, '/');
    size_t hl = slash ? (size_t)(slash - rest) : strlen(rest);
    char host[512];
    if (hl >= sizeof(host))
        return NULL;
    memcpy(host, rest, hl);
    host[hl] = '\0';
    /* strip the port, keeping [v6] brackets */
    char *close = strrchr(host, ']');
    char *colon = strrchr(host, ':');
    if (colon && (!close || colon > close))
        *colon = '\0';
    size_t len = strlen(host) + strlen(slash ? slash : "") + 32;
    char *out = malloc(len);
    if (out)
        snprintf(out, len, "https://%s:%ld%s", host, port, slash ? slash : "");
    return out;
}

/* On 403 from plain http, the JSON body's "https_port" names where to retry. */
static bool maybe_retry_https(struct nsq_http_client *c, struct request *rq, long status)
{
    if (status != 403 || rq->https_retries >= HTTPS_RETRY_LIMIT ||
        strncasecmp(rq->url, "https://", 8) == 0 || !rq->resp.d)
        return false;
    cJSON *j = cJSON_Parse(rq->resp.d);
    const cJSON *p = j ? cJSON_GetObjectItemCaseSensitive(j, "https_port") : NULL;
    long port = cJSON_IsNumber(p) ? (long)p->valuedouble : 0;
    cJSON_Delete(j);
    if (port <= 0)
        return false;
    char *nu = https_url(rq->url, port);
    if (!nu)
        return false;
    free(rq->url);
    rq->url = nu;
    rq->https_retries++;
    curl_multi_remove_handle(c->multi, rq->easy);
    curl_easy_cleanup(rq->easy);
    rq->easy = NULL;
    return request_start(c, rq) == 0;
}

static void finish(struct nsq_http_client *c, struct request *rq, CURLcode res,
                   const char *force_error)
{
    struct nsq_http_response r;
    memset(&r, 0, sizeof(r));
    if (force_error) {
        r.error = force_error;
    } else if (res != CURLE_OK) {
        r.error = rq->errbuf[0] ? rq->errbuf : curl_easy_strerror(res);
    } else {
        curl_easy_getinfo(rq->easy, CURLINFO_RESPONSE_CODE, &r.status);
    }
    r.body = rq->resp.d ? rq->resp.d : "";
    r.body_len = rq->resp.len;
    r.headers = rq->hdrs.d ? rq->hdrs.d : "";
    r.headers_len = rq->hdrs.len;
    if (rq->easy)
        curl_multi_remove_handle(c->multi, rq->easy);
    unlink_request(c, rq);
    c->dispatching++;
    rq->done(&r, rq->arg);
    c->dispatching--;
    request_free(rq);
}

static void collect_done(struct nsq_http_client *c)
{
    CURLMsg *msg;
    int left;
    c->dispatching++;
    while (!c->free_deferred && (msg = curl_multi_info_read(c->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        struct request *rq = NULL;
        CURLcode res = msg->data.result;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&rq);
        if (!rq)
            continue;
        long status = 0;
        if (res == CURLE_OK)
            curl_easy_getinfo(rq->easy, CURLINFO_RESPONSE_CODE, &status);
        if (res == CURLE_OK && maybe_retry_https(c, rq, status))
            continue;
        finish(c, rq, res, NULL);
    }
    c->dispatching--;
    if (c->dispatching == 0 && c->free_deferred)
        nsq_http_client_free(c);
}

static void socket_event_cb(evutil_socket_t fd, short what, void *arg)
{
    struct nsq_http_client *c = arg;
    int flags = 0, running = 0;
    if (what & EV_READ)
        flags |= CURL_CSELECT_IN;
    if (what & EV_WRITE)
        flags |= CURL_CSELECT_OUT;
    curl_multi_socket_action(c->multi, fd, flags, &running);
    collect_done(c);
}

static void timer_event_cb(evutil_socket_t fd, short what, void *arg)
{
    struct nsq_http_client *c = arg;
    int running = 0;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    collect_done(c);
}

/* curl: watch (or stop watching) fd. The per-socket event is stored with curl_multi_assign. */
static int socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    struct nsq_http_client *c = userp;
    struct event *ev = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (ev) {
            event_free(ev);
            curl_multi_assign(c->multi, s, NULL);
        }
        return 0;
    }
    short kind = EV_PERSIST;
    if (what & CURL_POLL_IN)
        kind |= EV_READ;
    if (what & CURL_POLL_OUT)
        kind |= EV_WRITE;
    if (ev) {
        event_del(ev);
        event_assign(ev, c->base, s, kind, socket_event_cb, c);
    } else {
        ev = event_new(c->base, s, kind, socket_event_cb, c);
        if (!ev)
            return -1;
        curl_multi_assign(c->multi, s, ev);
    }
    event_add(ev, NULL);
    return 0;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    struct nsq_http_client *c = userp;
    if (timeout_ms < 0) {
        evtimer_del(c->timer);
        return 0;
    }
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    evtimer_add(c->timer, &tv);
    return 0;
}

struct nsq_http_client *nsq_http_client_new(struct event_base *base,
                                            const struct nsq_http_client_options *o)
{
    pthread_once(&curl_once, curl_init);
    struct nsq_http_client *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->base = base;
    if (o)
        c->o = *o;
    if ((c->o.ca_file && c->o.ca_file[0] && !(c->ca_file = strdup(c->o.ca_file))) ||
        (c->o.cert_file && c->o.cert_file[0] && !(c->cert_file = strdup(c->o.cert_file))) ||
        (c->o.key_file && c->o.key_file[0] && !(c->key_file = strdup(c->o.key_file))))
        goto err;
    c->o.ca_file = c->o.cert_file = c->o.key_file = NULL;
    c->multi = curl_multi_init();
    c->timer = evtimer_new(base, timer_event_cb, c);
    if (!c->multi || !c->timer)
        goto err;
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    return c;
err:
    nsq_http_client_free(c);
    return NULL;
}

void nsq_http_client_free(struct nsq_http_client *c)
{
    if (!c)
        return;
    if (c->dispatching > 0) {
        c->free_deferred = true;
        return;
    }
    c->dispatching++; /* callbacks below may call free again: defer nothing, just ignore */
    while (c->head)
        finish(c, c->head, CURLE_OK, "canceled");
    if (c->multi)
        curl_multi_cleanup(c->multi); /* removes sockets: socket_cb frees their events */
    if (c->timer)
        event_free(c->timer);
    free(c->ca_file);
    free(c->cert_file);
    free(c->key_file);
    free(c);
}

size_t nsq_http_client_pending(const struct nsq_http_client *c)
{
    return c ? c->pending : 0;
}

int nsq_http_client_request(struct nsq_http_client *c, const char *method, const char *url,
                            const void *body, size_t body_len, const char *content_type,
                            nsq_http_done_fn done, void *arg)
{
    if (!c || !url || !done || c->free_deferred)
        return -EINVAL;
    struct request *rq = calloc(1, sizeof(*rq));
    if (!rq)
        return -ENOMEM;
    rq->c = c;
    rq->done = done;
    rq->arg = arg;
    rq->method = strdup(method ? method : "GET");
    rq->url = strdup(url);
    if (!rq->method || !rq->url)
        goto err;
    if (body) {
        rq->body = malloc(body_len ? body_len : 1);
        if (!rq->body)
            goto err;
        memcpy(rq->body, body, body_len);
        rq->body_len = body_len;
    }
    struct curl_slist *h = curl_slist_append(NULL, "Accept: " NSQ_HTTP_ACCEPT_V1);
    if (!h)
        goto err;
    rq->headers = h;
    /* no "Expect: 100-continue" round trip for bodies */
    if (!(h = curl_slist_append(rq->headers, "Expect:")))
        goto err;
    /* without a type, stop curl from announcing form data for a body */
    char line[256];
    snprintf(line, sizeof(line), "Content-Type:%s%s", content_type ? " " : "",
             content_type ? content_type : "");
    if (!(h = curl_slist_append(rq->headers, line)))
        goto err;
    if (request_start(c, rq) < 0)
        goto err;
    rq->next = c->head;
    if (c->head)
        c->head->prev = rq;
    c->head = rq;
    c->pending++;
    return 0;
err:
    request_free(rq);
    return -ENOMEM;
}

int nsq_http_response_header(const struct nsq_http_response *r, const char *name, char *buf,
                             size_t len)
{
    size_t nl = strlen(name);
    const char *p = r->headers, *end = r->headers + r->headers_len;
    while (p && p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *le = eol ? eol : end;
        if ((size_t)(le - p) > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (v < le && (*v == ' ' || *v == '\t'))
                v++;
            const char *ve = le;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' '))
                ve--;
            snprintf(buf, len, "%.*s", (int)(ve - v), v);
            return 0;
        }
        p = eol ? eol + 1 : end;
    }
    return -ENOENT;
}

/* ---- blocking form ------------------------------------------------------------------------ */

struct fetch_state {
    bool done;
    struct nsq_http_result *res;
};

static void fetch_done(const struct nsq_http_response *resp, void *arg)
{
    struct fetch_state *st = arg;
    st->done = true;
    struct nsq_http_result *res = calloc(1, sizeof(*res));
    if (!res)
        return;
    size_t el = resp->error ? strlen(resp->error) + 1 : 0;
    res->store = malloc(resp->body_len + 1 + resp->headers_len + 1 + el);
    if (!res->store) {
        free(res);
        return;
    }
    char *p = res->store;
    memcpy(p, resp->body, resp->body_len);
    p[resp->body_len] = '\0';
    res->resp.body = p;
    res->resp.body_len = resp->body_len;
    p += resp->body_len + 1;
    memcpy(p, resp->headers, resp->headers_len);
    p[resp->headers_len] = '\0';
    res->resp.headers = p;
    res->resp.headers_len = resp->headers_len;
    p += resp->headers_len + 1;
    if (resp->error) {
        memcpy(p, resp->error, el);
        res->resp.error = p;
    }
    res->resp.status = resp->status;
    st->res = res;
}

static int error_code(const char *err)
{
    if (!err)
        return 0;
    if (strcasestr(err, "timed out") || strcasestr(err, "timeout"))
        return -ETIMEDOUT;
    if (strcasestr(err, "refused") || strcasestr(err, "couldn't connect") ||
        strcasestr(err, "could not connect") || strcasestr(err, "failed to connect"))
        return -ECONNREFUSED;
    return -EIO;
}

int nsq_http_fetch_full(const char *method, const char *url, const void *body, size_t len,
                        const char *content_type, const struct nsq_http_client_options *o,
                        struct nsq_http_result **out)
{
    *out = NULL;
    struct event_base *base = event_base_new();
    if (!base)
        return -ENOMEM;
    struct nsq_http_client *c = nsq_http_client_new(base, o);
    struct fetch_state st = {false, NULL};
    int rc = c ? nsq_http_client_request(c, method, url, body, len, content_type, fetch_done, &st)
               : -ENOMEM;
    while (rc == 0 && !st.done)
        event_base_loop(base, EVLOOP_ONCE);
    nsq_http_client_free(c);
    event_base_free(base);
    if (rc)
        return rc;
    if (!st.res)
        return -ENOMEM;
    *out = st.res;
    return error_code(st.res->resp.error);
}

void nsq_http_result_free(struct nsq_http_result *r)
{
    if (!r)
        return;
    free(r->store);
    free(r);
}

int nsq_http_fetch(const char *method, const char *url, const void *body, size_t len,
                   const struct nsq_http_client_options *o, long *status, char **resp_body,
                   size_t *resp_len)
{
    struct nsq_http_result *r = NULL;
    int rc = nsq_http_fetch_full(method, url, body, len, NULL, o, &r);
    if (rc == 0) {
        if (status)
            *status = r->resp.status;
        if (resp_body) {
            *resp_body = malloc(r->resp.body_len + 1);
            if (!*resp_body) {
                nsq_http_result_free(r);
                return -ENOMEM;
            }
            memcpy(*resp_body, r->resp.body, r->resp.body_len + 1);
        }
        if (resp_len)
            *resp_len = r->resp.body_len;
    }
    nsq_http_result_free(r);
    return rc;
}
