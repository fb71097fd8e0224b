/*
 * clusterinfo: fan-out queries to nsqlookupd/nsqd and the aggregation of their answers into
 * nsqadmin's shapes (see clusterinfo.h for the contract).
 *
 * A query is a small chain of steps; each step is one ci_fanout (all requests in parallel) whose
 * completion callback parses the answers with cJSON into arena objects and either finishes the
 * query or starts the next step. Aggregation follows upstream's Add methods, including their
 * quirks that show in the JSON (an aggregate's "hostname" is "", a topic aggregate's channel
 * list starts from the first node's channel objects), but never modifies a per-node object in
 * place: an aggregate that starts from a node's object starts from a copy of it.
 */
#include "clusterinfo.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include "nsq_goquote.h"
#include "nsq_http_client.h"
#include "nsq_json.h"

/* ---- arena ---- */

struct ci_block {
    struct ci_block *next;
    max_align_t data[];
};

struct ci_arena {
    struct ci_block *blocks;
};

struct ci_arena *ci_arena_new(void)
{
    return calloc(1, sizeof(struct ci_arena));
}

void ci_arena_free(struct ci_arena *a)
{
    if (a == NULL)
        return;
    struct ci_block *b = a->blocks;
    while (b != NULL) {
        struct ci_block *next = b->next;
        free(b);
        b = next;
    }
    free(a);
}

void *ci_alloc(struct ci_arena *a, size_t n)
{
    struct ci_block *b = calloc(1, sizeof(*b) + n);
    if (b == NULL)
        return NULL;
    b->next = a->blocks;
    a->blocks = b;
    return b->data;
}

char *ci_strdup(struct ci_arena *a, const char *s)
{
    if (s == NULL)
        s = "";
    size_t n = strlen(s);
    char *d = ci_alloc(a, n + 1);
    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

__attribute__((format(printf, 2, 0))) static char *ci_vsprintf(struct ci_arena *a,
                                                              const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return NULL;
    char *d = ci_alloc(a, (size_t)n + 1);
    if (d != NULL)
        vsnprintf(d, (size_t)n + 1, fmt, ap);
    return d;
}

char *ci_sprintf(struct ci_arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *d = ci_vsprintf(a, fmt, ap);
    va_end(ap);
    return d;
}

#define CI_VEC_MIN_CAP 8

int ci_vec_push(struct ci_arena *a, struct ci_vec *vec, void *item)
{
    if (vec->n == vec->cap) {
        size_t cap = vec->cap == 0 ? CI_VEC_MIN_CAP : vec->cap * 2;
        void **v = ci_alloc(a, cap * sizeof(*v));
        if (v == NULL)
            return -ENOMEM;
        if (vec->n > 0)
            memcpy(v, vec->v, vec->n * sizeof(*v));
        vec->v = v;
        vec->cap = cap;
    }
    vec->v[vec->n++] = item;
    vec->set = true;
    return 0;
}

/* Stable insertion sort: the vectors here are short (nodes, clients of one channel). */
static void vec_sort(struct ci_vec *vec, int (*cmp)(const void *, const void *))
{
    for (size_t i = 1; i < vec->n; i++) {
        void *x = vec->v[i];
        size_t k = i;
        while (k > 0 && cmp(vec->v[k - 1], x) > 0) {
            vec->v[k] = vec->v[k - 1];
            k--;
        }
        vec->v[k] = x;
    }
}

const char *ci_errors_join(struct ci_arena *a, const struct ci_errors *e)
{
    size_t len = 1;
    for (size_t i = 0; i < e->items.n; i++)
        len += strlen(e->items.v[i]) + 1;
    char *s = ci_alloc(a, len);
    if (s == NULL)
        return "";
    for (size_t i = 0; i < e->items.n; i++) {
        if (i > 0)
            strcat(s, "\n");
        strcat(s, e->items.v[i]);
    }
    return s;
}

char *ci_query_escape(struct ci_arena *a, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    char *d = ci_alloc(a, n * 3 + 1);
    if (d == NULL)
        return NULL;
    char *o = d;
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        unsigned char c = *p;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            *o++ = (char)c;
        } else if (c == ' ') {
            *o++ = '+';
        } else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o = '\0';
    return d;
}

/* ---- service ---- */

struct clusterinfo {
    struct event_base *base;
    struct nsq_http_client *http;
    struct clusterinfo_sources src;
    bool closing; /* set at shutdown: completions release memory only */
};

struct clusterinfo *clusterinfo_new(struct event_base *base, struct nsq_http_client *http,
                                    const struct clusterinfo_sources *src)
{
    struct clusterinfo *ci = calloc(1, sizeof(*ci));
    if (ci == NULL)
        return NULL;
    ci->base = base;
    ci->http = http;
    ci->src = *src;
    return ci;
}

void clusterinfo_close(struct clusterinfo *ci)
{
    if (ci != NULL)
        ci->closing = true;
}

void clusterinfo_free(struct clusterinfo *ci)
{
    free(ci);
}

struct event_base *clusterinfo_base(struct clusterinfo *ci)
{
    return ci->base;
}

struct nsq_http_client *clusterinfo_http(struct clusterinfo *ci)
{
    return ci->http;
}

size_t clusterinfo_lookupd_count(struct clusterinfo *ci)
{
    return *ci->src.n_lookupd;
}

const char *clusterinfo_lookupd(struct clusterinfo *ci, size_t i)
{
    return (*ci->src.lookupd)[i];
}

size_t clusterinfo_nsqd_count(struct clusterinfo *ci)
{
    return *ci->src.n_nsqd;
}

const char *clusterinfo_nsqd(struct clusterinfo *ci, size_t i)
{
    return (*ci->src.nsqd)[i];
}

/* ---- fan-out ---- */

struct fanout {
    struct clusterinfo *ci;
    struct ci_arena *arena;
    const char *method;
    struct ci_reply *replies;
    size_t n, done_count;
    bool launching;
    ci_fanout_fn done;
    void *arg;
};

/* One request of a fan-out. malloc'd (not in the arena) so that a completion arriving after
   shutdown, when the arena may be gone, can still be recognised and released. */
struct fanout_req {
    struct clusterinfo *ci;
    struct fanout *f;
    size_t i;
};

static void fanout_finish(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct fanout *f = arg;
    f->done(f->replies, f->n, f->arg);
}

static void fanout_complete_one(struct fanout *f)
{
    f->done_count++;
    if (f->done_count == f->n && !f->launching)
        fanout_finish(-1, 0, f);
}

/* Go's http client error wording: `Get "<url>": <reason>`. */
/* "404 Not Found": the status as Go's HTTP client prints it (code and reason phrase). Codes
   without a listed phrase come back as the bare number (thread-local storage). */
static const char *status_line(long status)
{
    static const struct {
        long code;
        const char *line;
    } known[] = {
            {400, "400 Bad Request"},         {401, "401 Unauthorized"},
            {403, "403 Forbidden"},           {404, "404 Not Found"},
            {405, "405 Method Not Allowed"},  {413, "413 Request Entity Too Large"},
            {500, "500 Internal Server Error"}, {502, "502 Bad Gateway"},
            {503, "503 Service Unavailable"}, {504, "504 Gateway Timeout"},
    };
    static _Thread_local char other[24];

    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (known[i].code == status)
            return known[i].line;
    snprintf(other, sizeof(other), "%ld", status);
    return other;
}

static const char *method_word(const char *method)
{
    if (strcmp(method, "GET") == 0)
        return "Get";
    if (strcmp(method, "POST") == 0)
        return "Post";
    return method;
}

static void fanout_on_reply(const struct nsq_http_response *resp, void *arg)
{
    struct fanout_req *r = arg;
    if (r->ci->closing) {
        /* shutting down: the query's owner (and arena) may be gone */
        free(r);
        return;
    }
    struct fanout *f = r->f;
    struct ci_reply *rep = &f->replies[r->i];
    rep->status = resp->status;
    rep->body = ci_alloc(f->arena, resp->body_len + 1);
    if (rep->body != NULL && resp->body_len > 0)
        memcpy((char *)rep->body, resp->body, resp->body_len);
    rep->body_len = rep->body != NULL ? resp->body_len : 0;
    if (rep->body == NULL)
        rep->body = "";
    if (resp->error != NULL) {
        rep->error = ci_sprintf(f->arena, "%s \"%s\": %s", method_word(f->method), rep->url,
                                resp->error);
    } else if (resp->status != HTTP_OK) {
        struct evbuffer *q = evbuffer_new();
        if (q != NULL) {
            nsq_goquote(q, rep->body, rep->body_len);
            evbuffer_add(q, "", 1);
            rep->error = ci_sprintf(f->arena, "got response %s %s", status_line(resp->status),
                                    (const char *)evbuffer_pullup(q, -1));
            evbuffer_free(q);
        }
        if (rep->error == NULL)
            rep->error = "error";
    }
    free(r);
    fanout_complete_one(f);
}

int ci_fanout(struct clusterinfo *ci, struct ci_arena *a, const char *method, char **urls, size_t n,
              const char *body, size_t body_len, ci_fanout_fn done, void *arg)
{
    struct fanout *f = ci_alloc(a, sizeof(*f));
    if (f == NULL)
        return -ENOMEM;
    f->ci = ci;
    f->arena = a;
    f->method = method;
    f->n = n;
    f->done = done;
    f->arg = arg;
    f->replies = ci_alloc(a, (n + 1) * sizeof(*f->replies));
    if (f->replies == NULL)
        return -ENOMEM;
    f->launching = true;
    for (size_t i = 0; i < n; i++) {
        struct ci_reply *rep = &f->replies[i];
        rep->url = urls[i];
        rep->body = "";
        struct fanout_req *r = malloc(sizeof(*r));
        int rc = -ENOMEM;
        if (r != NULL) {
            r->ci = ci;
            r->f = f;
            r->i = i;
            rc = nsq_http_client_request(ci->http, method, urls[i], body, body_len,
                                         body != NULL ? "application/json" : NULL, fanout_on_reply,
                                         r);
        }
        if (rc != 0) {
            free(r);
            rep->error =
                    ci_sprintf(a, "%s \"%s\": %s", method_word(method), urls[i], strerror(-rc));
            f->done_count++;
        }
    }
    f->launching = false;
    if (f->done_count == n) {
        /* nothing left in flight: finish from the loop, never from inside the caller */
        const struct timeval now = {0, 0};
        if (event_base_once(ci->base, -1, EV_TIMEOUT, fanout_finish, f, &now) != 0)
            return -ENOMEM;
    }
    return 0;
}

/* ---- JSON parsing helpers ---- */

static const char *jstr(struct ci_arena *a, const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return ci_strdup(a, cJSON_IsString(v) ? v->valuestring : "");
}

static int64_t jint(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
}

static double jdouble(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static bool jbool(const cJSON *o, const char *key)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, key));
}

static int add_error(struct ci_arena *a, struct ci_errors *e, const char *text)
{
    return ci_vec_push(a, &e->items, (void *)ci_strdup(a, text));
}

/* ---- semver (out_of_date) ---- */

struct semver {
    long major, minor, patch;
    bool pre;
    bool ok;
};

static struct semver semver_parse(const char *s)
{
    struct semver v = {0};
    char *end;
    v.major = strtol(s, &end, 10);
    if (end == s || *end != '.')
        return v;
    s = end + 1;
    v.minor = strtol(s, &end, 10);
    if (end == s || *end != '.')
        return v;
    s = end + 1;
    v.patch = strtol(s, &end, 10);
    if (end == s)
        return v;
    v.pre = *end == '-';
    v.ok = true;
    return v;
}

static int semver_cmp(struct semver x, struct semver y)
{
    if (x.major != y.major)
        return x.major < y.major ? -1 : 1;
    if (x.minor != y.minor)
        return x.minor < y.minor ? -1 : 1;
    if (x.patch != y.patch)
        return x.patch < y.patch ? -1 : 1;
    if (x.pre != y.pre)
        return x.pre ? -1 : 1;
    return 0;
}

/* ---- producers ---- */

static int cmp_producer_host(const void *x, const void *y)
{
    const struct ci_producer *a = x, *b = y;
    return strcmp(a->hostname, b->hostname);
}

static int cmp_producer_topic(const void *x, const void *y)
{
    const struct ci_producer_topic *a = x, *b = y;
    return strcmp(a->topic, b->topic);
}

static int cmp_str(const void *x, const void *y)
{
    return strcmp(x, y);
}

struct producers_query {
    struct clusterinfo *ci;
    struct ci_arena *a;
    struct ci_vec producers;
    struct ci_result res;
    const char *topic;
    char **lookupds; /* the lookupds asked (a snapshot: the option may change meanwhile) */
    size_t n_nodes;  /* nsqd mode: nodes asked */
    ci_producers_fn done;
    void *arg;
};

static struct ci_producer *find_producer(struct ci_vec *ps, const char *broadcast, int port,
                                         bool by_tcp)
{
    for (size_t i = 0; i < ps->n; i++) {
        struct ci_producer *p = ps->v[i];
        if (strcmp(p->broadcast_address, broadcast) == 0 &&
            (by_tcp ? p->tcp_port : p->http_port) == port)
            return p;
    }
    return NULL;
}

static struct ci_producer *producer_from_peer(struct ci_arena *a, const cJSON *o)
{
    struct ci_producer *p = ci_alloc(a, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->remote_address = jstr(a, o, "remote_address");
    p->hostname = jstr(a, o, "hostname");
    p->broadcast_address = jstr(a, o, "broadcast_address");
    p->tcp_port = (int)jint(o, "tcp_port");
    p->http_port = (int)jint(o, "http_port");
    p->version = jstr(a, o, "version");
    p->http_addr = ci_sprintf(a, "%s:%d", p->broadcast_address, p->http_port);
    return p;
}

static int producer_add_topic(struct ci_arena *a, struct ci_producer *p, const char *topic,
                              bool tombstoned)
{
    for (size_t i = 0; i < p->topics.n; i++) {
        struct ci_producer_topic *t = p->topics.v[i];
        if (strcmp(t->topic, topic) == 0) {
            if (tombstoned)
                t->tombstoned = true;
            return 0;
        }
    }
    struct ci_producer_topic *t = ci_alloc(a, sizeof(*t));
    if (t == NULL)
        return -ENOMEM;
    t->topic = ci_strdup(a, topic);
    t->tombstoned = tombstoned;
    return ci_vec_push(a, &p->topics, t);
}

static void producers_finish(struct producers_query *q)
{
    struct semver newest = {0};
    for (size_t i = 0; i < q->producers.n; i++) {
        struct ci_producer *p = q->producers.v[i];
        struct semver v = semver_parse(p->version);
        if (v.ok && (!newest.ok || semver_cmp(v, newest) > 0))
            newest = v;
        vec_sort(&p->topics, cmp_producer_topic);
    }
    for (size_t i = 0; i < q->producers.n; i++) {
        struct ci_producer *p = q->producers.v[i];
        struct semver v = semver_parse(p->version);
        p->out_of_date = newest.ok && (!v.ok || semver_cmp(v, newest) < 0);
    }
    vec_sort(&q->producers, cmp_producer_host);
    q->done(&q->producers, &q->res, q->arg);
}

static void fail_all(struct producers_query *q, const char *what)
{
    q->res.failed = true;
    q->res.fail_text = ci_sprintf(q->a, "failed to query any %s: %s", what,
                                  ci_errors_join(q->a, &q->res.errs));
}

/* lookupd /nodes or /lookup answers */
static void on_lookupd_producers(struct ci_reply *replies, size_t n, void *arg)
{
    struct producers_query *q = arg;
    size_t failed = 0;
    for (size_t i = 0; i < n; i++) {
        cJSON *doc = replies[i].error == NULL ? cJSON_Parse(replies[i].body) : NULL;
        if (doc == NULL) {
            add_error(q->a, &q->res.errs,
                      replies[i].error != NULL ? replies[i].error : "invalid JSON answer");
            failed++;
            continue;
        }
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(doc, "producers");
        const cJSON *o;
        cJSON_ArrayForEach(o, list)
        {
            const char *bcast = jstr(q->a, o, "broadcast_address");
            int tcp = (int)jint(o, "tcp_port");
            struct ci_producer *p = find_producer(&q->producers, bcast, tcp, true);
            if (p == NULL) {
                p = producer_from_peer(q->a, o);
                if (p == NULL || ci_vec_push(q->a, &q->producers, p) != 0)
                    continue;
            }
            if (q->topic == NULL) {
                /* "<lookupd>/<remote_address>" */
                const char *lookupd = q->lookupds[i];
                ci_vec_push(q->a, &p->remote_addresses,
                            ci_sprintf(q->a, "%s/%s", lookupd, jstr(q->a, o, "remote_address")));
                const cJSON *topics = cJSON_GetObjectItemCaseSensitive(o, "topics");
                const cJSON *tombs = cJSON_GetObjectItemCaseSensitive(o, "tombstones");
                int k = 0;
                const cJSON *t;
                cJSON_ArrayForEach(t, topics)
                {
                    if (cJSON_IsString(t))
                        producer_add_topic(q->a, p, t->valuestring,
                                           cJSON_IsTrue(cJSON_GetArrayItem(tombs, k)));
                    k++;
                }
                p->topics.set = true;
            }
        }
        cJSON_Delete(doc);
    }
    if (failed == n)
        fail_all(q, "nsqlookupd");
    producers_finish(q);
}

/* nsqd mode: replies are [info_0, stats_0, info_1, stats_1, ...] */
static void on_nsqd_producers(struct ci_reply *replies, size_t n, void *arg)
{
    struct producers_query *q = arg;
    size_t failed = 0;
    for (size_t i = 0; i + 1 < n; i += 2) {
        const struct ci_reply *ri = &replies[i], *rs = &replies[i + 1];
        const char *err = ri->error != NULL ? ri->error : rs->error;
        cJSON *info = err == NULL ? cJSON_Parse(ri->body) : NULL;
        cJSON *stats = err == NULL ? cJSON_Parse(rs->body) : NULL;
        if (info == NULL || stats == NULL) {
            add_error(q->a, &q->res.errs, err != NULL ? err : "invalid JSON answer");
            failed++;
            cJSON_Delete(info);
            cJSON_Delete(stats);
            continue;
        }
        bool has_topic = false;
        struct ci_producer *p = producer_from_peer(q->a, info);
        if (p != NULL) {
            p->remote_address = "";
            const cJSON *t;
            cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(stats, "topics"))
            {
                const char *name = jstr(q->a, t, "topic_name");
                if (q->topic != NULL && strcmp(name, q->topic) == 0)
                    has_topic = true;
                producer_add_topic(q->a, p, name, false);
            }
            p->topics.set = true;
            if ((q->topic == NULL || has_topic) &&
                find_producer(&q->producers, p->broadcast_address, p->http_port, false) == NULL)
                ci_vec_push(q->a, &q->producers, p);
        }
        cJSON_Delete(info);
        cJSON_Delete(stats);
    }
    if (failed == n / 2)
        fail_all(q, "nsqd");
    producers_finish(q);
}

static int producers_start(struct clusterinfo *ci, struct ci_arena *a, const char *topic,
                           bool lookupd_only, ci_producers_fn done, void *arg)
{
    struct producers_query *q = ci_alloc(a, sizeof(*q));
    if (q == NULL)
        return -ENOMEM;
    q->ci = ci;
    q->a = a;
    q->topic = topic;
    q->done = done;
    q->arg = arg;
    size_t nl = clusterinfo_lookupd_count(ci), nn = clusterinfo_nsqd_count(ci);
    const char *etopic = topic != NULL ? ci_query_escape(a, topic) : NULL;
    if (nl > 0 || lookupd_only) {
        char **urls = ci_alloc(a, (nl + 1) * sizeof(*urls));
        if (urls == NULL)
            return -ENOMEM;
        q->lookupds = ci_alloc(a, (nl + 1) * sizeof(*q->lookupds));
        if (q->lookupds == NULL)
            return -ENOMEM;
        for (size_t i = 0; i < nl; i++) {
            q->lookupds[i] = ci_strdup(a, clusterinfo_lookupd(ci, i));
            urls[i] = topic != NULL ? ci_sprintf(a, "http://%s/lookup?topic=%s",
                                                 clusterinfo_lookupd(ci, i), etopic)
                                    : ci_sprintf(a, "http://%s/nodes", clusterinfo_lookupd(ci, i));
        }
        return ci_fanout(ci, a, "GET", urls, nl, NULL, 0, on_lookupd_producers, q);
    }
    q->n_nodes = nn;
    char **urls = ci_alloc(a, (2 * nn + 1) * sizeof(*urls));
    if (urls == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < nn; i++) {
        const char *addr = clusterinfo_nsqd(ci, i);
        urls[2 * i] = ci_sprintf(a, "http://%s/info", addr);
        urls[2 * i + 1] =
                topic != NULL
                        ? ci_sprintf(a,
                                     "http://%s/stats?format=json&topic=%s&include_clients=false",
                                     addr, etopic)
                        : ci_sprintf(a, "http://%s/stats?format=json&include_clients=false", addr);
    }
    return ci_fanout(ci, a, "GET", urls, 2 * nn, NULL, 0, on_nsqd_producers, q);
}

int ci_get_producers(struct clusterinfo *ci, struct ci_arena *a, ci_producers_fn done, void *arg)
{
    return producers_start(ci, a, NULL, false, done, arg);
}

int ci_get_topic_producers(struct clusterinfo *ci, struct ci_arena *a, const char *topic,
                           bool lookupd_only, ci_producers_fn done, void *arg)
{
    return producers_start(ci, a, topic, lookupd_only, done, arg);
}

/* ---- topics ---- */

struct topics_query {
    struct ci_arena *a;
    struct ci_vec names;
    struct ci_result res;
    bool lookupd;
    ci_strings_fn done;
    void *arg;
};

static void add_name_unique(struct ci_arena *a, struct ci_vec *v, const char *name)
{
    for (size_t i = 0; i < v->n; i++)
        if (strcmp(v->v[i], name) == 0)
            return;
    ci_vec_push(a, v, ci_strdup(a, name));
}

static void on_topics(struct ci_reply *replies, size_t n, void *arg)
{
    struct topics_query *q = arg;
    size_t failed = 0;
    for (size_t i = 0; i < n; i++) {
        cJSON *doc = replies[i].error == NULL ? cJSON_Parse(replies[i].body) : NULL;
        if (doc == NULL) {
            add_error(q->a, &q->res.errs,
                      replies[i].error != NULL ? replies[i].error : "invalid JSON answer");
            failed++;
            continue;
        }
        const cJSON *t;
        cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(doc, "topics"))
        {
            if (cJSON_IsString(t))
                add_name_unique(q->a, &q->names, t->valuestring);
            else if (cJSON_IsObject(t))
                add_name_unique(q->a, &q->names, jstr(q->a, t, "topic_name"));
        }
        cJSON_Delete(doc);
    }
    if (failed == n) {
        q->res.failed = true;
        q->res.fail_text =
                ci_sprintf(q->a, "failed to query any %s: %s", q->lookupd ? "nsqlookupd" : "nsqd",
                           ci_errors_join(q->a, &q->res.errs));
    }
    vec_sort(&q->names, cmp_str);
    q->names.set = true;
    q->done(&q->names, &q->res, q->arg);
}

int ci_get_topics(struct clusterinfo *ci, struct ci_arena *a, ci_strings_fn done, void *arg)
{
    struct topics_query *q = ci_alloc(a, sizeof(*q));
    if (q == NULL)
        return -ENOMEM;
    q->a = a;
    q->done = done;
    q->arg = arg;
    size_t nl = clusterinfo_lookupd_count(ci), nn = clusterinfo_nsqd_count(ci);
    q->lookupd = nl > 0;
    size_t n = q->lookupd ? nl : nn;
    char **urls = ci_alloc(a, (n + 1) * sizeof(*urls));
    if (urls == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        urls[i] = q->lookupd ? ci_sprintf(a, "http://%s/topics", clusterinfo_lookupd(ci, i))
                             : ci_sprintf(a, "http://%s/stats?format=json&include_clients=false",
                                          clusterinfo_nsqd(ci, i));
    return ci_fanout(ci, a, "GET", urls, n, NULL, 0, on_topics, q);
}

/* ---- stats parsing ---- */

static void parse_latency(struct ci_arena *a, const cJSON *o, struct ci_latency *l)
{
    l->topic = l->channel = l->host = "";
    l->count = jint(o, "count");
    const cJSON *ps = cJSON_GetObjectItemCaseSensitive(o, "percentiles");
    if (!cJSON_IsArray(ps))
        return;
    l->p_set = true;
    int n = cJSON_GetArraySize(ps);
    l->p = ci_alloc(a, ((size_t)n + 1) * sizeof(*l->p));
    if (l->p == NULL)
        return;
    const cJSON *p;
    cJSON_ArrayForEach(p, ps)
    {
        struct ci_percentile *d = &l->p[l->np++];
        d->quantile = jdouble(p, "quantile");
        d->value = d->min = d->max = d->average = jdouble(p, "value");
        d->count = (double)l->count;
    }
}

static struct ci_client *parse_client(struct ci_arena *a, const cJSON *o, const char *node)
{
    struct ci_client *c = ci_alloc(a, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->node = node;
    c->remote_address = jstr(a, o, "remote_address");
    c->version = jstr(a, o, "version");
    c->client_id = jstr(a, o, "client_id");
    c->hostname = jstr(a, o, "hostname");
    c->user_agent = jstr(a, o, "user_agent");
    c->connect_ts = jint(o, "connect_ts");
    c->in_flight_count = jint(o, "in_flight_count");
    c->ready_count = jint(o, "ready_count");
    c->finish_count = jint(o, "finish_count");
    c->requeue_count = jint(o, "requeue_count");
    c->message_count = jint(o, "message_count");
    c->sample_rate = jint(o, "sample_rate");
    c->deflate = jbool(o, "deflate");
    c->snappy = jbool(o, "snappy");
    c->authed = jbool(o, "authed");
    c->auth_identity = jstr(a, o, "auth_identity");
    c->auth_identity_url = jstr(a, o, "auth_identity_url");
    c->tls = jbool(o, "tls");
    c->tls_cipher_suite = jstr(a, o, "tls_cipher_suite");
    c->tls_version = jstr(a, o, "tls_version");
    c->tls_negotiated_protocol = jstr(a, o, "tls_negotiated_protocol");
    c->tls_negotiated_protocol_is_mutual = jbool(o, "tls_negotiated_protocol_is_mutual");
    c->topology_region = jstr(a, o, "topology_region");
    c->topology_zone = jstr(a, o, "topology_zone");
    return c;
}

static struct ci_channel *parse_channel(struct ci_arena *a, const cJSON *o, const char *node,
                                        const char *hostname, const char *topic_name, int64_t now_s)
{
    struct ci_channel *c = ci_alloc(a, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->node = node;
    c->hostname = hostname;
    c->topic_name = topic_name;
    c->channel_name = jstr(a, o, "channel_name");
    c->depth = jint(o, "depth");
    c->backend_depth = jint(o, "backend_depth");
    c->memory_depth = c->depth - c->backend_depth;
    c->in_flight_count = jint(o, "in_flight_count");
    c->deferred_count = jint(o, "deferred_count");
    c->requeue_count = jint(o, "requeue_count");
    c->timeout_count = jint(o, "timeout_count");
    c->message_count = jint(o, "message_count");
    c->zone_local_msg_count = jint(o, "zone_local_msg_count");
    c->region_local_msg_count = jint(o, "region_local_msg_count");
    c->global_msg_count = jint(o, "global_msg_count");
    c->client_count = jint(o, "client_count");
    c->has_dead_letter = cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(o, "dead_letter_count"));
    c->dead_letter_count = jint(o, "dead_letter_count");
    c->has_limits = cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(o, "expired_count"));
    c->expired_count = jint(o, "expired_count");
    c->dropped_count = jint(o, "dropped_count");
    c->paused = jbool(o, "paused");
    parse_latency(a, cJSON_GetObjectItemCaseSensitive(o, "e2e_processing_latency"), &c->e2e);
    const cJSON *clients = cJSON_GetObjectItemCaseSensitive(o, "clients");
    if (cJSON_IsArray(clients)) {
        c->clients.set = true;
        const cJSON *cl;
        cJSON_ArrayForEach(cl, clients)
        {
            struct ci_client *x = parse_client(a, cl, node);
            if (x != NULL) {
                x->connected = (now_s - x->connect_ts) * 1000000000LL;
                ci_vec_push(a, &c->clients, x);
            }
        }
    }
    return c;
}

static struct ci_topic *parse_topic(struct ci_arena *a, const cJSON *o, const char *node,
                                    const char *hostname, int64_t now_s)
{
    struct ci_topic *t = ci_alloc(a, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->node = node;
    t->hostname = hostname;
    t->topic_name = jstr(a, o, "topic_name");
    t->depth = jint(o, "depth");
    t->backend_depth = jint(o, "backend_depth");
    t->memory_depth = t->depth - t->backend_depth;
    t->message_count = jint(o, "message_count");
    t->has_limits = cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(o, "expired_count"));
    t->limits_agree = t->has_limits;
    t->expired_count = jint(o, "expired_count");
    t->dropped_count = jint(o, "dropped_count");
    t->ttl_ns = jint(o, "ttl");
    t->max_depth = jint(o, "max_depth");
    t->overflow_policy = jstr(a, o, "overflow_policy");
    t->paused = jbool(o, "paused");
    parse_latency(a, cJSON_GetObjectItemCaseSensitive(o, "e2e_processing_latency"), &t->e2e);
    const cJSON *chans = cJSON_GetObjectItemCaseSensitive(o, "channels");
    if (cJSON_IsArray(chans)) {
        t->channels.set = true;
        const cJSON *c;
        cJSON_ArrayForEach(c, chans)
        {
            struct ci_channel *x = parse_channel(a, c, node, hostname, t->topic_name, now_s);
            if (x == NULL)
                continue;
            ci_vec_push(a, &t->channels, x);
            t->dead_letter_count += x->dead_letter_count;
            t->has_dead_letter |= x->has_dead_letter;
        }
    }
    return t;
}

/* ---- aggregation ---- */

static int cmp_percentile_desc(const void *x, const void *y)
{
    const struct ci_percentile *a = x, *b = y;
    return a->quantile < b->quantile ? 1 : a->quantile > b->quantile ? -1 : 0;
}

static void latency_add(struct ci_arena *a, struct ci_latency *e, const struct ci_latency *o)
{
    e->host = "*";
    e->aggregated = true;
    e->count += o->count;
    for (size_t k = 0; k < o->np; k++) {
        const struct ci_percentile *v = &o->p[k];
        struct ci_percentile *d = NULL;
        for (size_t i = 0; i < e->np; i++)
            if (e->p[i].quantile == v->quantile)
                d = &e->p[i];
        if (d == NULL) {
            struct ci_percentile *np = ci_alloc(a, (e->np + 1) * sizeof(*np));
            if (np == NULL)
                return;
            if (e->np > 0)
                memcpy(np, e->p, e->np * sizeof(*np));
            e->p = np;
            d = &e->p[e->np++];
            *d = *v;
            e->p_set = true;
            continue;
        }
        if (v->max > d->max)
            d->max = v->max;
        if (v->min < d->min)
            d->min = v->min;
        d->count += v->count;
        if (d->count == 0) {
            d->average = 0;
            continue;
        }
        d->average += (v->average - d->average) * v->count / d->count;
    }
    if (e->np > 1)
        qsort(e->p, e->np, sizeof(*e->p), cmp_percentile_desc);
}

static int cmp_channel_host(const void *x, const void *y)
{
    return strcmp(((const struct ci_channel *)x)->hostname,
                  ((const struct ci_channel *)y)->hostname);
}

static int cmp_topic_host(const void *x, const void *y)
{
    return strcmp(((const struct ci_topic *)x)->hostname, ((const struct ci_topic *)y)->hostname);
}

static int cmp_client_host(const void *x, const void *y)
{
    return strcmp(((const struct ci_client *)x)->hostname, ((const struct ci_client *)y)->hostname);
}

static int channel_add(struct ci_arena *a, struct ci_channel *c, struct ci_channel *n)
{
    c->node = "*";
    c->depth += n->depth;
    c->memory_depth += n->memory_depth;
    c->backend_depth += n->backend_depth;
    c->in_flight_count += n->in_flight_count;
    c->deferred_count += n->deferred_count;
    c->requeue_count += n->requeue_count;
    c->timeout_count += n->timeout_count;
    c->message_count += n->message_count;
    c->zone_local_msg_count += n->zone_local_msg_count;
    c->region_local_msg_count += n->region_local_msg_count;
    c->global_msg_count += n->global_msg_count;
    c->client_count += n->client_count;
    c->dead_letter_count += n->dead_letter_count;
    c->has_dead_letter |= n->has_dead_letter;
    c->expired_count += n->expired_count;
    c->dropped_count += n->dropped_count;
    c->has_limits |= n->has_limits;
    if (n->paused)
        c->paused = true;
    if (ci_vec_push(a, &c->nodes, n) != 0)
        return -ENOMEM;
    vec_sort(&c->nodes, cmp_channel_host);
    /* c started as a copy of the first node's channel, whose latency names no topic or channel:
       the sum keeps them empty, as upstream's does */
    latency_add(a, &c->e2e, &n->e2e);
    for (size_t i = 0; i < n->clients.n; i++)
        if (ci_vec_push(a, &c->clients, n->clients.v[i]) != 0)
            return -ENOMEM;
    vec_sort(&c->clients, cmp_client_host);
    return 0;
}

static struct ci_channel *channel_copy(struct ci_arena *a, const struct ci_channel *c)
{
    struct ci_channel *d = ci_alloc(a, sizeof(*d));
    if (d == NULL)
        return NULL;
    *d = *c;
    /* the copy owns its own vectors and percentiles */
    memset(&d->clients, 0, sizeof(d->clients));
    for (size_t i = 0; i < c->clients.n; i++)
        ci_vec_push(a, &d->clients, c->clients.v[i]);
    d->clients.set = c->clients.set;
    memset(&d->nodes, 0, sizeof(d->nodes));
    for (size_t i = 0; i < c->nodes.n; i++)
        ci_vec_push(a, &d->nodes, c->nodes.v[i]);
    d->nodes.set = c->nodes.set;
    d->e2e.p = ci_alloc(a, (c->e2e.np + 1) * sizeof(*d->e2e.p));
    if (d->e2e.p == NULL)
        return NULL;
    if (c->e2e.np > 0)
        memcpy(d->e2e.p, c->e2e.p, c->e2e.np * sizeof(*d->e2e.p));
    return d;
}

struct ci_topic *ci_topic_aggregate_new(struct ci_arena *a, const char *topic_name)
{
    struct ci_topic *t = ci_alloc(a, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->node = "";
    t->hostname = "";
    t->topic_name = ci_strdup(a, topic_name);
    t->e2e.topic = t->topic_name;
    t->e2e.channel = "";
    t->e2e.host = "";
    return t;
}

/* Adds node topic n's limits to aggregate t: counters sum; the configuration is kept while every
   node reporting one reports the same. */
static void topic_limits_add(struct ci_topic *t, const struct ci_topic *n)
{
    t->expired_count += n->expired_count;
    t->dropped_count += n->dropped_count;
    if (!n->has_limits)
        return;
    if (!t->has_limits) {
        t->ttl_ns = n->ttl_ns;
        t->max_depth = n->max_depth;
        t->overflow_policy = n->overflow_policy;
        t->has_limits = t->limits_agree = true;
    } else if (t->ttl_ns != n->ttl_ns || t->max_depth != n->max_depth ||
               strcmp(t->overflow_policy, n->overflow_policy) != 0) {
        t->limits_agree = false;
    }
}

int ci_topic_add(struct ci_arena *a, struct ci_topic *t, struct ci_topic *n)
{
    t->node = "*";
    topic_limits_add(t, n);
    t->depth += n->depth;
    t->memory_depth += n->memory_depth;
    t->backend_depth += n->backend_depth;
    t->message_count += n->message_count;
    t->dead_letter_count += n->dead_letter_count;
    t->has_dead_letter |= n->has_dead_letter;
    if (n->paused)
        t->paused = true;
    for (size_t i = 0; i < n->channels.n; i++) {
        struct ci_channel *nc = n->channels.v[i];
        bool found = false;
        for (size_t k = 0; k < t->channels.n; k++) {
            struct ci_channel *tc = t->channels.v[k];
            if (strcmp(tc->channel_name, nc->channel_name) == 0) {
                found = true;
                if (channel_add(a, tc, nc) != 0)
                    return -ENOMEM;
            }
        }
        if (!found) {
            struct ci_channel *copy = channel_copy(a, nc);
            if (copy == NULL || ci_vec_push(a, &t->channels, copy) != 0)
                return -ENOMEM;
        }
    }
    if (ci_vec_push(a, &t->nodes, n) != 0)
        return -ENOMEM;
    vec_sort(&t->nodes, cmp_topic_host);
    latency_add(a, &t->e2e, &n->e2e);
    return 0;
}

/* ---- stats query ---- */

struct stats_query {
    struct ci_arena *a;
    struct ci_vec *producers;
    const char *topic, *channel;
    struct ci_stats stats;
    struct ci_result res;
    ci_stats_fn done;
    void *arg;
};

static struct ci_channel *stats_channel_for(struct stats_query *q, const char *key,
                                            const struct ci_channel *c)
{
    for (size_t i = 0; i < q->stats.channel_keys.n; i++)
        if (strcmp(q->stats.channel_keys.v[i], key) == 0)
            return q->stats.channels.v[i];
    struct ci_channel *agg = ci_alloc(q->a, sizeof(*agg));
    if (agg == NULL)
        return NULL;
    agg->node = c->node;
    agg->hostname = "";
    agg->topic_name = c->topic_name;
    agg->channel_name = c->channel_name;
    agg->e2e.topic = c->topic_name;
    agg->e2e.channel = c->channel_name;
    agg->e2e.host = "*";
    /* keep keys sorted: insert in place */
    size_t pos = 0;
    while (pos < q->stats.channel_keys.n && strcmp(q->stats.channel_keys.v[pos], key) < 0)
        pos++;
    if (ci_vec_push(q->a, &q->stats.channel_keys, NULL) != 0 ||
        ci_vec_push(q->a, &q->stats.channels, NULL) != 0)
        return NULL;
    for (size_t i = q->stats.channel_keys.n - 1; i > pos; i--) {
        q->stats.channel_keys.v[i] = q->stats.channel_keys.v[i - 1];
        q->stats.channels.v[i] = q->stats.channels.v[i - 1];
    }
    q->stats.channel_keys.v[pos] = ci_strdup(q->a, key);
    q->stats.channels.v[pos] = agg;
    return agg;
}

static void on_stats(struct ci_reply *replies, size_t n, void *arg)
{
    struct stats_query *q = arg;
    size_t failed = 0;
    int64_t now_s = (int64_t)time(NULL);
    for (size_t i = 0; i < n; i++) {
        struct ci_producer *p = q->producers->v[i];
        cJSON *doc = replies[i].error == NULL ? cJSON_Parse(replies[i].body) : NULL;
        if (doc == NULL) {
            add_error(q->a, &q->res.errs,
                      replies[i].error != NULL ? replies[i].error : "invalid JSON answer");
            failed++;
            continue;
        }
        const cJSON *o;
        cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(doc, "topics"))
        {
            struct ci_topic *t = parse_topic(q->a, o, p->http_addr, p->hostname, now_s);
            if (t == NULL)
                continue;
            if (q->topic != NULL && strcmp(t->topic_name, q->topic) != 0)
                continue;
            ci_vec_push(q->a, &q->stats.topics, t);
            for (size_t k = 0; k < t->channels.n; k++) {
                struct ci_channel *c = t->channels.v[k];
                const char *key = q->topic != NULL ? c->channel_name
                                                   : ci_sprintf(q->a, "%s:%s", t->topic_name,
                                                                c->channel_name);
                struct ci_channel *agg = stats_channel_for(q, key, c);
                if (agg != NULL)
                    channel_add(q->a, agg, c);
            }
        }
        cJSON_Delete(doc);
    }
    if (failed == n) {
        q->res.failed = true;
        q->res.fail_text = ci_sprintf(q->a, "failed to query any nsqd: %s",
                                      ci_errors_join(q->a, &q->res.errs));
    }
    q->done(&q->stats, &q->res, q->arg);
}

int ci_get_stats(struct clusterinfo *ci, struct ci_arena *a, struct ci_vec *producers,
                 const char *topic, const char *channel, bool include_clients, ci_stats_fn done,
                 void *arg)
{
    struct stats_query *q = ci_alloc(a, sizeof(*q));
    if (q == NULL)
        return -ENOMEM;
    q->a = a;
    q->producers = producers;
    q->topic = topic;
    q->channel = channel;
    q->done = done;
    q->arg = arg;
    char **urls = ci_alloc(a, (producers->n + 1) * sizeof(*urls));
    if (urls == NULL)
        return -ENOMEM;
    const char *qs = "";
    if (topic != NULL) {
        qs = ci_sprintf(a, "&topic=%s", ci_query_escape(a, topic));
        if (channel != NULL)
            qs = ci_sprintf(a, "%s&channel=%s", qs, ci_query_escape(a, channel));
    }
    for (size_t i = 0; i < producers->n; i++) {
        struct ci_producer *p = producers->v[i];
        urls[i] = ci_sprintf(a, "http://%s/stats?format=json%s&include_clients=%s", p->http_addr,
                             qs, include_clients ? "true" : "false");
    }
    return ci_fanout(ci, a, "GET", urls, producers->n, NULL, 0, on_stats, q);
}

/* ---- JSON writers ---- */

static void json_latency(struct nsq_json *j, const struct ci_latency *l)
{
    nsq_json_object_begin(j);
    nsq_json_kv_int(j, "count", l->count);
    nsq_json_key(j, "percentiles");
    if (!l->p_set) {
        nsq_json_null(j);
    } else {
        nsq_json_array_begin(j);
        for (size_t i = 0; i < l->np; i++) {
            const struct ci_percentile *p = &l->p[i];
            /* a map in upstream: keys sorted */
            nsq_json_object_begin(j);
            nsq_json_kv_double(j, "average", p->average);
            nsq_json_kv_double(j, "count", p->count);
            nsq_json_kv_double(j, "max", p->max);
            nsq_json_kv_double(j, "min", p->min);
            nsq_json_kv_double(j, "quantile", p->quantile);
            if (!l->aggregated)
                nsq_json_kv_double(j, "value", p->value);
            nsq_json_object_end(j);
        }
        nsq_json_array_end(j);
    }
    nsq_json_kv_string(j, "topic", l->topic);
    nsq_json_kv_string(j, "channel", l->channel);
    nsq_json_kv_string(j, "host", l->host);
    nsq_json_object_end(j);
}

void ci_json_vec(struct nsq_json *j, const struct ci_vec *vec, ci_json_item_fn write_item)
{
    if (!vec->set) {
        nsq_json_null(j);
        return;
    }
    nsq_json_array_begin(j);
    for (size_t i = 0; i < vec->n; i++)
        write_item(j, vec->v[i]);
    nsq_json_array_end(j);
}

void ci_json_string_item(struct nsq_json *j, const void *s)
{
    nsq_json_string(j, s);
}

static void json_client_item(struct nsq_json *j, const void *c)
{
    ci_json_client(j, c);
}

static void json_channel_item(struct nsq_json *j, const void *c)
{
    ci_json_channel(j, c);
}

static void json_topic_item(struct nsq_json *j, const void *t)
{
    ci_json_topic(j, t);
}

/* A producer's topic entry: {"topic":..., "tombstoned":...}. */
static void json_producer_topic_item(struct nsq_json *j, const void *item)
{
    const struct ci_producer_topic *t = item;
    nsq_json_object_begin(j);
    nsq_json_kv_string(j, "topic", t->topic);
    nsq_json_kv_bool(j, "tombstoned", t->tombstoned);
    nsq_json_object_end(j);
}

void ci_json_client(struct nsq_json *j, const struct ci_client *c)
{
    nsq_json_object_begin(j);
    nsq_json_kv_string(j, "node", c->node);
    nsq_json_kv_string(j, "remote_address", c->remote_address);
    nsq_json_kv_string(j, "version", c->version);
    nsq_json_kv_string(j, "client_id", c->client_id);
    nsq_json_kv_string(j, "hostname", c->hostname);
    nsq_json_kv_string(j, "user_agent", c->user_agent);
    nsq_json_kv_int(j, "connect_ts", c->connect_ts);
    nsq_json_kv_int(j, "connected", c->connected);
    nsq_json_kv_int(j, "in_flight_count", c->in_flight_count);
    nsq_json_kv_int(j, "ready_count", c->ready_count);
    nsq_json_kv_int(j, "finish_count", c->finish_count);
    nsq_json_kv_int(j, "requeue_count", c->requeue_count);
    nsq_json_kv_int(j, "message_count", c->message_count);
    nsq_json_kv_int(j, "sample_rate", c->sample_rate);
    nsq_json_kv_bool(j, "deflate", c->deflate);
    nsq_json_kv_bool(j, "snappy", c->snappy);
    nsq_json_kv_bool(j, "authed", c->authed);
    nsq_json_kv_string(j, "auth_identity", c->auth_identity);
    nsq_json_kv_string(j, "auth_identity_url", c->auth_identity_url);
    /* upstream's topology experiment: omitted when empty */
    if (c->topology_region && c->topology_region[0])
        nsq_json_kv_string(j, "topology_region", c->topology_region);
    if (c->topology_zone && c->topology_zone[0])
        nsq_json_kv_string(j, "topology_zone", c->topology_zone);
    nsq_json_kv_bool(j, "tls", c->tls);
    nsq_json_kv_string(j, "tls_cipher_suite", c->tls_cipher_suite);
    nsq_json_kv_string(j, "tls_version", c->tls_version);
    nsq_json_kv_string(j, "tls_negotiated_protocol", c->tls_negotiated_protocol);
    nsq_json_kv_bool(j, "tls_negotiated_protocol_is_mutual", c->tls_negotiated_protocol_is_mutual);
    nsq_json_object_end(j);
}

/* Deliveries by consumer locality, as upstream's topology experiment names them: the total
   (delivery_msg_count) and each class, all omitted when zero. */
static void json_channel_locality(struct nsq_json *j, const struct ci_channel *c)
{
    int64_t total = c->zone_local_msg_count + c->region_local_msg_count + c->global_msg_count;
    if (total == 0)
        return;
    nsq_json_kv_int(j, "delivery_msg_count", total);
    if (c->zone_local_msg_count)
        nsq_json_kv_int(j, "zone_local_msg_count", c->zone_local_msg_count);
    if (c->region_local_msg_count)
        nsq_json_kv_int(j, "region_local_msg_count", c->region_local_msg_count);
    if (c->global_msg_count)
        nsq_json_kv_int(j, "global_msg_count", c->global_msg_count);
}

void ci_json_channel_members(struct nsq_json *j, const struct ci_channel *c)
{
    nsq_json_kv_string(j, "node", c->node);
    nsq_json_kv_string(j, "hostname", c->hostname);
    nsq_json_kv_string(j, "topic_name", c->topic_name);
    nsq_json_kv_string(j, "channel_name", c->channel_name);
    nsq_json_kv_int(j, "depth", c->depth);
    nsq_json_kv_int(j, "memory_depth", c->memory_depth);
    nsq_json_kv_int(j, "backend_depth", c->backend_depth);
    nsq_json_kv_int(j, "in_flight_count", c->in_flight_count);
    nsq_json_kv_int(j, "deferred_count", c->deferred_count);
    nsq_json_kv_int(j, "requeue_count", c->requeue_count);
    nsq_json_kv_int(j, "timeout_count", c->timeout_count);
    if (c->has_dead_letter)
        nsq_json_kv_int(j, "dead_letter_count", c->dead_letter_count);
    if (c->has_limits) {
        nsq_json_kv_int(j, "expired_count", c->expired_count);
        nsq_json_kv_int(j, "dropped_count", c->dropped_count);
    }
    nsq_json_kv_int(j, "message_count", c->message_count);
    json_channel_locality(j, c);
    nsq_json_kv_int(j, "client_count", c->client_count);
    nsq_json_key(j, "nodes");
    ci_json_vec(j, &c->nodes, json_channel_item);
    nsq_json_key(j, "clients");
    ci_json_vec(j, &c->clients, json_client_item);
    nsq_json_kv_bool(j, "paused", c->paused);
    nsq_json_key(j, "e2e_processing_latency");
    json_latency(j, &c->e2e);
}

void ci_json_channel(struct nsq_json *j, const struct ci_channel *c)
{
    nsq_json_object_begin(j);
    ci_json_channel_members(j, c);
    nsq_json_object_end(j);
}

void ci_json_topic_members(struct nsq_json *j, const struct ci_topic *t)
{
    nsq_json_kv_string(j, "node", t->node);
    nsq_json_kv_string(j, "hostname", t->hostname);
    nsq_json_kv_string(j, "topic_name", t->topic_name);
    nsq_json_kv_int(j, "depth", t->depth);
    nsq_json_kv_int(j, "memory_depth", t->memory_depth);
    nsq_json_kv_int(j, "backend_depth", t->backend_depth);
    nsq_json_kv_int(j, "message_count", t->message_count);
    if (t->has_dead_letter)
        nsq_json_kv_int(j, "dead_letter_count", t->dead_letter_count);
    if (t->has_limits) {
        nsq_json_kv_int(j, "expired_count", t->expired_count);
        nsq_json_kv_int(j, "dropped_count", t->dropped_count);
    }
    if (t->limits_agree) {
        nsq_json_kv_int(j, "ttl", t->ttl_ns);
        nsq_json_kv_int(j, "max_depth", t->max_depth);
        nsq_json_kv_string(j, "overflow_policy", t->overflow_policy);
    }
    nsq_json_key(j, "nodes");
    ci_json_vec(j, &t->nodes, json_topic_item);
    nsq_json_key(j, "channels");
    ci_json_vec(j, &t->channels, json_channel_item);
    nsq_json_kv_bool(j, "paused", t->paused);
    nsq_json_key(j, "e2e_processing_latency");
    json_latency(j, &t->e2e);
}

void ci_json_topic(struct nsq_json *j, const struct ci_topic *t)
{
    nsq_json_object_begin(j);
    ci_json_topic_members(j, t);
    nsq_json_object_end(j);
}

void ci_json_producer(struct nsq_json *j, const struct ci_producer *p)
{
    nsq_json_object_begin(j);
    nsq_json_key(j, "remote_addresses");
    ci_json_vec(j, &p->remote_addresses, ci_json_string_item);
    nsq_json_kv_string(j, "remote_address", p->remote_address);
    nsq_json_kv_string(j, "hostname", p->hostname);
    nsq_json_kv_string(j, "broadcast_address", p->broadcast_address);
    nsq_json_kv_int(j, "tcp_port", p->tcp_port);
    nsq_json_kv_int(j, "http_port", p->http_port);
    nsq_json_kv_string(j, "version", p->version);
    nsq_json_key(j, "topics");
    ci_json_vec(j, &p->topics, json_producer_topic_item);
    nsq_json_kv_bool(j, "out_of_date", p->out_of_date);
    nsq_json_object_end(j);
}
