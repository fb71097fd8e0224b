/*
 * nsq_http_server: a linear route table. Daemons have a few dozen routes, so matching each
 * request against every route costs less than building a radix tree would save; the table is
 * split into path segments once, at construction.
 */
#include <sys/queue.h>

#include "nsq_http_server.h"
#include "nsq_json.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/http.h>

#define MAX_SEGMENTS 64 /* deeper request paths are answered 404 */
#define MAX_PATH     4096

static const char *const V1_HEADER_NAME = "X-NSQ-Content-Type";
static const char *const V1_HEADER_VALUE = "nsq; version=1.0";
static const char *const CT_JSON = "application/json; charset=utf-8";
static const char *const CT_TEXT = "text/plain; charset=utf-8";
static const char *const CT_HTML = "text/html; charset=utf-8";

struct route {
    char *path;  /* full path incl. base, owned */
    char **segs; /* pointers into segbuf */
    char *segbuf;
    size_t nsegs;
    bool catch_all; /* last segment is "*name" */
    int methods;
    nsq_http_handler fn;
};

struct nsq_http_router {
    struct route *routes;
    size_t n;
    int all_methods; /* union of the routes' methods */
    void *ctx;
};

static const struct {
    int method;
    const char *name;
} method_names[] = {
        /* sorted by name: the Allow header lists methods in this order */
        {EVHTTP_REQ_CONNECT, "CONNECT"}, {EVHTTP_REQ_DELETE, "DELETE"},
        {EVHTTP_REQ_GET, "GET"},         {EVHTTP_REQ_HEAD, "HEAD"},
        {EVHTTP_REQ_OPTIONS, "OPTIONS"}, {EVHTTP_REQ_PATCH, "PATCH"},
        {EVHTTP_REQ_POST, "POST"},       {EVHTTP_REQ_PUT, "PUT"},
        {EVHTTP_REQ_TRACE, "TRACE"},
};
#define NMETHODS (sizeof(method_names) / sizeof(method_names[0]))

const char *nsq_http_method_name(int method)
{
    for (size_t i = 0; i < NMETHODS; i++)
        if (method_names[i].method == method)
            return method_names[i].name;
    return "";
}

/* ---- path segments ------------------------------------------------------------------------ */

/* Splits "/a/b/" into {"a","b",""} in place (path must start with '/'). Returns the count or -1
   when there are too many. */
static int split_path(char *path, char **segs, size_t max)
{
    size_t n = 0;
    char *p = path + 1;
    for (;;) {
        if (n == max)
            return -1;
        segs[n++] = p;
        char *slash = strchr(p, '/');
        if (!slash)
            break;
        *slash = '\0';
        p = slash + 1;
    }
    return (int)n;
}

static void route_free(struct route *rt)
{
    free(rt->path);
    free(rt->segs);
    free(rt->segbuf);
}

struct nsq_http_router *
nsq_http_router_new(const char *base_path, const struct nsq_http_route *routes, size_t n, void *ctx)
{
    struct nsq_http_router *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->ctx = ctx;
    r->routes = calloc(n ? n : 1, sizeof(*r->routes));
    if (!r->routes)
        goto err;
    /* base "/" or "" means none; otherwise "/x" without a trailing slash (Go's path.Join) */
    const char *base = base_path ? base_path : "";
    while (*base == '/')
        base++;
    size_t blen = strlen(base);
    while (blen > 0 && base[blen - 1] == '/')
        blen--;
    for (size_t i = 0; i < n; i++) {
        struct route *rt = &r->routes[i];
        const char *p = routes[i].path;
        while (*p == '/')
            p++;
        size_t plen = strlen(p);
        rt->path = malloc(blen + plen + 3);
        r->n = i + 1;
        if (!rt->path)
            goto err;
        if (blen == 0)
            snprintf(rt->path, plen + 2, "/%s", p);
        else if (plen == 0)
            snprintf(rt->path, blen + 2, "/%.*s", (int)blen, base);
        else
            snprintf(rt->path, blen + plen + 3, "/%.*s/%s", (int)blen, base, p);
        rt->segbuf = strdup(rt->path);
        rt->segs = calloc(MAX_SEGMENTS, sizeof(char *));
        if (!rt->segbuf || !rt->segs)
            goto err;
        int ns = split_path(rt->segbuf, rt->segs, MAX_SEGMENTS);
        if (ns < 0)
            goto err;
        rt->nsegs = (size_t)ns;
        size_t nparams = 0;
        for (size_t s = 0; s < rt->nsegs; s++) {
            if (rt->segs[s][0] == ':' || rt->segs[s][0] == '*')
                nparams++;
            if (rt->segs[s][0] == '*') {
                if (s != rt->nsegs - 1)
                    goto err;
                rt->catch_all = true;
            }
        }
        if (nparams > NSQ_HTTP_MAX_PARAMS)
            goto err;
        rt->methods = routes[i].methods;
        rt->fn = routes[i].fn;
        r->all_methods |= rt->methods;
    }
    r->n = n;
    return r;
err:
    nsq_http_router_free(r);
    return NULL;
}

void nsq_http_router_free(struct nsq_http_router *r)
{
    if (!r)
        return;
    for (size_t i = 0; r->routes && i < r->n; i++)
        route_free(&r->routes[i]);
    free(r->routes);
    free(r);
}

/* Matches split request segments against a route. Params are written to pbuf (NUL-separated) and
   pointed to by params; the canonical path (route's letters, request's param values) to fixed. */
struct match {
    const char *params[NSQ_HTTP_MAX_PARAMS];
    size_t nparams;
    char pbuf[MAX_PATH + NSQ_HTTP_MAX_PARAMS + 2];
    char fixed[MAX_PATH + 2];
};

static bool route_match(const struct route *rt, char **segs, size_t nsegs, bool ci, struct match *m)
{
    size_t pw = 0, fw = 0;
    m->nparams = 0;
    for (size_t i = 0; i < rt->nsegs; i++) {
        const char *rs = rt->segs[i];
        if (rs[0] == '*') {
            if (i >= nsegs)
                return false;
            m->params[m->nparams++] = m->pbuf + pw;
            for (size_t j = i; j < nsegs; j++) {
                size_t l = strlen(segs[j]);
                if (pw + l + 2 > sizeof(m->pbuf) || fw + l + 2 > sizeof(m->fixed))
                    return false;
                m->pbuf[pw++] = '/';
                memcpy(m->pbuf + pw, segs[j], l);
                pw += l;
                m->fixed[fw++] = '/';
                memcpy(m->fixed + fw, segs[j], l);
                fw += l;
            }
            m->pbuf[pw++] = '\0';
            m->fixed[fw] = '\0';
            return true;
        }
        if (i >= nsegs)
            return false;
        const char *text;
        if (rs[0] == ':') {
            if (segs[i][0] == '\0')
                return false;
            text = segs[i];
            size_t l = strlen(text);
            if (pw + l + 1 > sizeof(m->pbuf))
                return false;
            m->params[m->nparams++] = m->pbuf + pw;
            memcpy(m->pbuf + pw, text, l + 1);
            pw += l + 1;
        } else {
            if (ci ? strcasecmp(rs, segs[i]) != 0 : strcmp(rs, segs[i]) != 0)
                return false;
            text = rs;
        }
        size_t l = strlen(text);
        if (fw + l + 2 > sizeof(m->fixed))
            return false;
        m->fixed[fw++] = '/';
        memcpy(m->fixed + fw, text, l);
        fw += l;
    }
    m->fixed[fw] = '\0';
    return nsegs == rt->nsegs;
}

/* Finds a route for path (exact or case-insensitive) with one of `methods`. */
static const struct route *find_route(const struct nsq_http_router *r, const char *path,
                                      int methods, bool ci, struct match *m)
{
    char buf[MAX_PATH + 2];
    char *segs[MAX_SEGMENTS];
    size_t len = strlen(path);
    if (len == 0 || len > MAX_PATH || path[0] != '/')
        return NULL;
    memcpy(buf, path, len + 1);
    int ns = split_path(buf, segs, MAX_SEGMENTS);
    if (ns < 0)
        return NULL;
    for (size_t i = 0; i < r->n; i++) {
        const struct route *rt = &r->routes[i];
        if ((rt->methods & methods) && route_match(rt, segs, (size_t)ns, ci, m))
            return rt;
    }
    return NULL;
}

/* Path with a trailing slash added or removed (into out). */
static void toggle_slash(const char *path, char *out, size_t outlen)
{
    size_t l = strlen(path);
    if (l > 1 && path[l - 1] == '/')
        snprintf(out, outlen, "%.*s", (int)(l - 1), path);
    else
        snprintf(out, outlen, "%s/", path);
}

/* httprouter's CleanPath: leading '/', no "//", "." or "..", trailing slash kept. */
static void clean_path(const char *in, char *out, size_t outlen)
{
    char buf[MAX_PATH + 2];
    char *segs[MAX_SEGMENTS];
    size_t keep = 0;
    snprintf(buf, sizeof(buf), "/%s", in);
    int ns = split_path(buf, segs, MAX_SEGMENTS);
    if (ns < 0) {
        snprintf(out, outlen, "%s", in);
        return;
    }
    for (int i = 0; i < ns; i++) {
        if (segs[i][0] == '\0' || strcmp(segs[i], ".") == 0)
            continue;
        if (strcmp(segs[i], "..") == 0) {
            if (keep)
                keep--;
            continue;
        }
        segs[keep++] = segs[i];
    }
    size_t w = 0;
    out[0] = '\0';
    for (size_t i = 0; i < keep && w + 1 < outlen; i++)
        w += (size_t)snprintf(out + w, outlen - w, "/%s", segs[i]);
    size_t inl = strlen(in);
    bool trailing =
            inl > 0 &&
            (in[inl - 1] == '/' ||
             (inl >= 2 && in[inl - 1] == '.' &&
              (in[inl - 2] == '/' || (inl >= 3 && in[inl - 2] == '.' && in[inl - 3] == '/'))));
    if (w == 0 || (trailing && w + 1 < outlen))
        snprintf(out + w, outlen - w, "/");
}

/* Methods other than `except` (and OPTIONS) with a route for path, as an Allow header value. */
static bool allowed(const struct nsq_http_router *r, const char *path, int except, char *out,
                    size_t outlen)
{
    struct match *m = malloc(sizeof(*m));
    size_t w = 0;
    bool any = false;
    out[0] = '\0';
    if (!m)
        return false;
    for (size_t i = 0; i < NMETHODS && !any; i++) {
        int meth = method_names[i].method;
        any = meth != EVHTTP_REQ_OPTIONS && meth != except && (r->all_methods & meth) &&
              find_route(r, path, meth, false, m);
    }
    if (any) {
        for (size_t i = 0; i < NMETHODS; i++) {
            int meth = method_names[i].method;
            bool include =
                    meth == EVHTTP_REQ_OPTIONS || (meth != except && (r->all_methods & meth) &&
                                                   find_route(r, path, meth, false, m));
            if (include)
                w += (size_t)snprintf(out + w, w < outlen ? outlen - w : 0, "%s%s", w ? ", " : "",
                                      method_names[i].name);
        }
    }
    free(m);
    return any;
}

/* ---- query strings ------------------------------------------------------------------------ */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Go's url.QueryUnescape (plus_space) / PathUnescape: returns a malloc'd string or NULL with
 *bad set on a malformed escape. */
static char *unescape(const char *s, size_t len, bool plus_space, bool *bad)
{
    char *out = malloc(len + 1);
    size_t w = 0;
    *bad = false;
    if (!out)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '%') {
            if (i + 2 >= len || hexval(s[i + 1]) < 0 || hexval(s[i + 2]) < 0) {
                free(out);
                *bad = true;
                return NULL;
            }
            out[w++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else if (s[i] == '+' && plus_space) {
            out[w++] = ' ';
        } else {
            out[w++] = s[i];
        }
    }
    out[w] = '\0';
    return out;
}

static int kv_append(struct evkeyvalq *q, char *key, char *value)
{
    struct evkeyval *kv = calloc(1, sizeof(*kv));
    if (!kv) {
        free(key);
        free(value);
        return -ENOMEM;
    }
    kv->key = key;
    kv->value = value;
    TAILQ_INSERT_TAIL(q, kv, next);
    return 0;
}

int nsq_http_parse_query(const char *query, struct evkeyvalq *q)
{
    int rc = 0;
    const char *p = query ? query : "";
    while (*p) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        const char *next = amp ? amp + 1 : p + len;
        if (memchr(p, ';', len)) {
            rc = -EINVAL; /* "invalid semicolon separator in query" */
        } else if (len > 0) {
            const char *eq = memchr(p, '=', len);
            size_t klen = eq ? (size_t)(eq - p) : len;
            bool bad1, bad2 = false;
            char *key = unescape(p, klen, true, &bad1);
            char *value =
                    key ? (eq ? unescape(eq + 1, len - klen - 1, true, &bad2) : strdup("")) : NULL;
            if (bad1 || bad2) {
                free(key);
                free(value);
                rc = -EINVAL;
            } else if (!key || !value) {
                free(key);
                free(value);
                return -ENOMEM;
            } else if (kv_append(q, key, value) < 0) {
                return -ENOMEM;
            }
        }
        p = next;
    }
    return rc;
}

const char *nsq_http_query(struct nsq_http_call *c, const char *key)
{
    return evhttp_find_header(&c->query, key);
}

int nsq_http_query_bool(struct nsq_http_call *c, const char *key, int def)
{
    const char *v = nsq_http_query(c, key);
    if (!v)
        return def;
    if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
        return 1;
    if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
        return 0;
    return def;
}

bool nsq_http_require_query(struct nsq_http_call *c)
{
    if (c->query_ok)
        return true;
    nsq_http_reply_error(c->req, HTTP_BADREQUEST, "INVALID_REQUEST");
    return false;
}

/* ---- encoders ----------------------------------------------------------------------------- */

void nsq_http_send(struct evhttp_request *req, int code, const char *reason, struct evbuffer *body)
{
    if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
        char len[24];
        size_t n = body ? evbuffer_get_length(body) : 0;
        snprintf(len, sizeof(len), "%zu", n);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Length", len);
        if (body)
            evbuffer_drain(body, n);
    }
    evhttp_send_reply(req, code, reason, body);
}

static void send_reply(struct evhttp_request *req, int code, struct evbuffer *body)
{
    nsq_http_send(req, code, NULL, body);
}

void nsq_http_reply_text(struct evhttp_request *req, int code, const char *text, size_t len)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    struct evbuffer *b = evbuffer_new();
    if (len > 0)
        evhttp_add_header(h, "Content-Type", CT_TEXT);
    evhttp_add_header(h, V1_HEADER_NAME, V1_HEADER_VALUE);
    if (b && len)
        evbuffer_add(b, text, len);
    send_reply(req, code, b);
    evbuffer_free(b);
}

void nsq_http_reply_json(struct evhttp_request *req, int code, struct evbuffer *body)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", CT_JSON);
    evhttp_add_header(h, V1_HEADER_NAME, V1_HEADER_VALUE);
    send_reply(req, code, body);
}

void nsq_http_reply_error(struct evhttp_request *req, int code, const char *message)
{
    struct evbuffer *b = evbuffer_new();
    if (b) {
        evbuffer_add(b, "{\"message\":", 11);
        const char *m = message ? message : "";
        nsq_json_escape(b, m, strlen(m));
        evbuffer_add(b, "}", 1);
    }
    nsq_http_reply_json(req, code, b);
    evbuffer_free(b);
}

void nsq_http_reply_plain(struct evhttp_request *req, int code, const char *text)
{
    struct evbuffer *b = evbuffer_new();
    size_t len = text ? strlen(text) : 0;
    if (len > 0)
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", CT_TEXT);
    if (b && len)
        evbuffer_add(b, text, len);
    send_reply(req, code, b);
    evbuffer_free(b);
}

int nsq_http_body(struct evhttp_request *req, size_t max, struct evbuffer **out_ref)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    *out_ref = in;
    return evbuffer_get_length(in) > max ? -E2BIG : 0;
}

/* ---- dispatch ----------------------------------------------------------------------------- */

/* Go's URL.EscapedPath for a decoded path. */
static void escape_path(struct evbuffer *out, const char *path)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        unsigned char c = *p;
        bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     strchr("-_.~$&+,/:;=@", c);
        if (plain) {
            evbuffer_add(out, p, 1);
        } else {
            char esc[3] = {'%', hex[c >> 4], hex[c & 0xf]};
            evbuffer_add(out, esc, 3);
        }
    }
}

/* Go's http.Redirect: Location, and for GET a small HTML body. */
static void redirect(struct evhttp_request *req, const char *path, const char *raw_query)
{
    int method = (int)evhttp_request_get_command(req);
    int code = method == EVHTTP_REQ_GET ? HTTP_MOVEPERM : 307;
    struct evbuffer *loc = evbuffer_new();
    struct evbuffer *body = evbuffer_new();
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    if (!loc || !body)
        goto out;
    escape_path(loc, path);
    if (raw_query && raw_query[0])
        evbuffer_add_printf(loc, "?%s", raw_query);
    evbuffer_add(loc, "", 1);
    const char *url = (const char *)evbuffer_pullup(loc, -1);
    evhttp_add_header(h, "Location", url);
    if (method == EVHTTP_REQ_GET || method == EVHTTP_REQ_HEAD)
        evhttp_add_header(h, "Content-Type", CT_HTML);
    if (method == EVHTTP_REQ_GET) {
        evbuffer_add(body, "<a href=\"", 9);
        for (const char *c = url; *c; c++) {
            switch (*c) {
            case '<':
                evbuffer_add(body, "&lt;", 4);
                break;
            case '>':
                evbuffer_add(body, "&gt;", 4);
                break;
            case '&':
                evbuffer_add(body, "&amp;", 5);
                break;
            case '\'':
                evbuffer_add(body, "&#39;", 5);
                break;
            case '"':
                evbuffer_add(body, "&#34;", 5);
                break;
            default:
                evbuffer_add(body, c, 1);
            }
        }
        evbuffer_add_printf(body, "\">%s</a>.\n\n",
                            code == HTTP_MOVEPERM ? "Moved Permanently" : "Temporary Redirect");
    }
    nsq_http_send(req, code, NULL, body);
out:
    evbuffer_free(loc);
    evbuffer_free(body);
}

/* Splits the request target into its raw path (absolute-form "http://host/path" reduced to
   "/path") and raw query (a fragment is dropped). Both malloc'd; *query NULL when there is none.
   Returns 0 or -ENOMEM. */
static int split_target(const char *uri, char **rawpath, char **query)
{
    const char *q = strchr(uri, '?');
    const char *hash = strchr(uri, '#');
    size_t plen = q ? (size_t)(q - uri) : hash ? (size_t)(hash - uri) : strlen(uri);
    *query = NULL;
    if (q) {
        size_t ql = hash && hash > q ? (size_t)(hash - q - 1) : strlen(q + 1);
        if (!(*query = strndup(q + 1, ql)))
            return -ENOMEM;
    }
    if (!(*rawpath = strndup(uri, plen))) {
        free(*query);
        *query = NULL;
        return -ENOMEM;
    }
    if ((*rawpath)[0] != '/') {
        const char *s = strstr(*rawpath, "://");
        const char *slash = s ? strchr(s + 3, '/') : NULL;
        const char *tail = slash ? slash : "/";
        memmove(*rawpath, tail, strlen(tail) + 1);
    }
    return 0;
}

/* Runs the handler of a matched route with its parameters and parsed query. */
static void call_route(struct nsq_http_router *r, const struct route *rt, const struct match *m,
                       struct evhttp_request *req, const char *query)
{
    struct nsq_http_call call;
    memset(&call, 0, sizeof(call));
    call.req = req;
    call.ctx = r->ctx;
    call.nparams = m->nparams;
    for (size_t i = 0; i < m->nparams; i++)
        call.params[i] = m->params[i];
    TAILQ_INIT(&call.query);
    call.query_ok = nsq_http_parse_query(query, &call.query) == 0;
    rt->fn(&call);
    evhttp_clear_headers(&call.query);
}

/* Redirects, as upstream's router does, a path that matches a route once its trailing slash is
   toggled (301 for GET, 307 otherwise) or once it is cleaned ("//", "/./", "/../").
   Returns true if a redirect was sent. */
static bool try_redirect(struct nsq_http_router *r, struct evhttp_request *req, const char *path,
                         int method, const char *query, struct match *m)
{
    if (!(r->all_methods & method) || strcmp(path, "/") == 0)
        return false;
    char alt[MAX_PATH + 4];
    toggle_slash(path, alt, sizeof(alt));
    if (find_route(r, alt, method, false, m)) {
        redirect(req, alt, query);
        return true;
    }
    char cleaned[MAX_PATH + 4];
    clean_path(path, cleaned, sizeof(cleaned));
    if (find_route(r, cleaned, method, true, m)) {
        redirect(req, m->fixed, query);
        return true;
    }
    toggle_slash(cleaned, alt, sizeof(alt));
    if (find_route(r, alt, method, true, m)) {
        redirect(req, m->fixed, query);
        return true;
    }
    return false;
}

/* No route for this method: OPTIONS lists the allowed methods, another method on a known path
   gets 405 with Allow, anything else 404. */
static void reply_unrouted(struct nsq_http_router *r, struct evhttp_request *req, const char *path,
                           int method)
{
    char allow[128];
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    if (method == EVHTTP_REQ_OPTIONS) {
        if (allowed(r, path, EVHTTP_REQ_OPTIONS, allow, sizeof(allow))) {
            evhttp_add_header(h, "Allow", allow);
            nsq_http_send(req, HTTP_OK, NULL, NULL);
            return;
        }
    } else if (allowed(r, path, method, allow, sizeof(allow))) {
        evhttp_add_header(h, "Allow", allow);
        nsq_http_reply_error(req, HTTP_BADMETHOD, "METHOD_NOT_ALLOWED");
        return;
    }
    nsq_http_reply_error(req, HTTP_NOTFOUND, "NOT_FOUND");
}

static void router_cb(struct evhttp_request *req, void *arg)
{
    struct nsq_http_router *r = arg;
    int method = (int)evhttp_request_get_command(req);
    char *rawpath = NULL, *path = NULL, *query = NULL;
    struct match *m = malloc(sizeof(*m));
    bool bad = false;

    if (!m || split_target(evhttp_request_get_uri(req), &rawpath, &query) != 0) {
        nsq_http_reply_error(req, HTTP_INTERNAL, "INTERNAL_ERROR");
        goto out;
    }
    path = unescape(rawpath, strlen(rawpath), false, &bad);
    if (bad || !path || strlen(path) > MAX_PATH) {
        nsq_http_reply_plain(req, HTTP_BADREQUEST, "400 Bad Request");
        goto out;
    }
    const struct route *rt = find_route(r, path, method, false, m);
    if (rt)
        call_route(r, rt, m, req, query);
    else if (!try_redirect(r, req, path, method, query, m))
        reply_unrouted(r, req, path, method);
out:
    free(m);
    free(rawpath);
    free(path);
    free(query);
}

void nsq_http_router_attach(struct nsq_http_router *r, struct evhttp *http)
{
    evhttp_set_allowed_methods(http, NSQ_HTTP_ALLOWED_METHODS);
    evhttp_set_default_content_type(http, NULL);
    evhttp_set_gencb(http, router_cb, r);
}
