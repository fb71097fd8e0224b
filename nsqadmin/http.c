/*
 * http: nsqadmin's routes and handlers (see http.h).
 *
 * API handlers check authorization and arguments here, then run an api_call and answer from its
 * completion callback; the evhttp request stays valid until that answer. Admin actions that
 * completed (fully or partly) post their notification from the same callback.
 */
#include "http.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/evp.h>
#include <zlib.h>

#include "api.h"
#ifndef NSQADMIN_NO_ASSETS
#include "assets.h"
#endif
#include "clusterinfo.h"
#include "nsq_http_client.h"
#include "nsq_http_server.h"
#include "nsq_json.h"
#include "nsq_log.h"
#include "nsq_names.h"
#include "nsq_version.h"
#include "nsqadmin.h"
#include "rates.h"

#define CT_JSON             "application/json; charset=utf-8"
#define CT_TEXT             "text/plain; charset=utf-8"
#define CT_HTML             "text/html; charset=utf-8"
#define V1_HEADER           "X-NSQ-Content-Type"
#define V1_VALUE            "nsq; version=1.0"
#define CONFIG_MAX_BODY     (1024 * 1024) /* PUT /config body limit */
#define ACTION_MAX_BODY     (1024 * 1024) /* JSON bodies of admin actions */
#define GZIP_WINDOW_BITS    (15 + 16)
#define DEFLATE_WINDOW_BITS (-15)
#define ZLIB_MEM_LEVEL      8
#define NS_PER_SEC          1000000000LL
#define DECODE_ERR_LEN      256                      /* a JSON decoder error message */
#define HTTP_FORBIDDEN      403                      /* not among libevent's HTTP_* codes */
#define CONFIG_PLACEHOLDER  "<!--NSQADMIN_CONFIG-->" /* where index.html takes its configuration */
/* GET .../peek: messages asked of each nsqd by default and at most (nsqd/peek.h has the same) */
#define ADMIN_PEEK_DEFAULT 10
#define ADMIN_PEEK_MAX     1000

struct http_op;

struct admin_http {
    struct evhttp *http;
    struct nsq_http_router *router;
    struct http_op *ops; /* API calls in flight (released at shutdown) */
};

/* evbuffer_free that accepts NULL (libevent's does not). */
static void buf_free(struct evbuffer *b)
{
    if (b != NULL)
        evbuffer_free(b);
}

static struct nsqadmin *admin_of(struct nsq_http_call *call)
{
    return call->ctx;
}

/* ---- compressed replies ---- */

enum reply_kind { REPLY_V1_JSON, REPLY_V1_TEXT, REPLY_PLAIN, REPLY_RAW };

/* 1 gzip, 2 deflate, 0 none: the first of the two named in Accept-Encoding. */
static int pick_encoding(struct evhttp_request *req)
{
    const char *ae = evhttp_find_header(evhttp_request_get_input_headers(req), "Accept-Encoding");
    if (ae == NULL)
        return 0;
    const char *p = ae;
    while (*p != '\0') {
        while (*p == ' ' || *p == ',')
            p++;
        const char *tok = p;
        while (*p != '\0' && *p != ',' && *p != ';' && *p != ' ')
            p++;
        size_t n = (size_t)(p - tok);
        if (n == 4 && strncasecmp(tok, "gzip", 4) == 0)
            return 1;
        if (n == 7 && strncasecmp(tok, "deflate", 7) == 0)
            return 2;
        while (*p != '\0' && *p != ',')
            p++;
    }
    return 0;
}

/* Compresses body into a new buffer; NULL on failure. */
static struct evbuffer *compress_body(struct evbuffer *body, int enc)
{
    size_t len = evbuffer_get_length(body);
    const unsigned char *in = evbuffer_pullup(body, -1);
    z_stream zs = {0};
    if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED,
                     enc == 1 ? GZIP_WINDOW_BITS : DEFLATE_WINDOW_BITS, ZLIB_MEM_LEVEL,
                     Z_DEFAULT_STRATEGY) != Z_OK)
        return NULL;
    uLong bound = deflateBound(&zs, (uLong)len);
    struct evbuffer *out = evbuffer_new();
    struct evbuffer_iovec v;
    if (out == NULL || evbuffer_reserve_space(out, (ev_ssize_t)bound, &v, 1) < 1) {
        deflateEnd(&zs);
        buf_free(out);
        return NULL;
    }
    zs.next_in = (Bytef *)(in != NULL ? in : (const unsigned char *)"");
    zs.avail_in = (uInt)len;
    zs.next_out = v.iov_base;
    zs.avail_out = (uInt)v.iov_len;
    int rc = deflate(&zs, Z_FINISH);
    v.iov_len = v.iov_len - zs.avail_out;
    deflateEnd(&zs);
    if (rc != Z_STREAM_END) {
        buf_free(out);
        return NULL;
    }
    evbuffer_commit_space(out, &v, 1);
    return out;
}

/* Sends body (drained; may be NULL) with the headers of kind; content_type for REPLY_RAW. */
static void reply(struct evhttp_request *req, int code, enum reply_kind kind, struct evbuffer *body,
                  const char *content_type)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    size_t len = body != NULL ? evbuffer_get_length(body) : 0;
    switch (kind) {
    case REPLY_V1_JSON:
        evhttp_add_header(h, "Content-Type", CT_JSON);
        evhttp_add_header(h, V1_HEADER, V1_VALUE);
        break;
    case REPLY_V1_TEXT:
        if (len > 0)
            evhttp_add_header(h, "Content-Type", CT_TEXT);
        evhttp_add_header(h, V1_HEADER, V1_VALUE);
        break;
    case REPLY_PLAIN:
        if (len > 0)
            evhttp_add_header(h, "Content-Type", CT_TEXT);
        break;
    case REPLY_RAW:
        if (content_type != NULL)
            evhttp_add_header(h, "Content-Type", content_type);
        break;
    }
    int enc = pick_encoding(req);
    struct evbuffer *z = enc != 0 && body != NULL ? compress_body(body, enc) : NULL;
    if (z != NULL) {
        evhttp_add_header(h, "Content-Encoding", enc == 1 ? "gzip" : "deflate");
        evhttp_add_header(h, "Vary", "Accept-Encoding");
        nsq_http_send(req, code, NULL, z);
        buf_free(z);
        if (body != NULL)
            evbuffer_drain(body, len);
        return;
    }
    nsq_http_send(req, code, NULL, body);
}

static void reply_error(struct evhttp_request *req, int code, const char *message)
{
    struct evbuffer *b = evbuffer_new();
    if (b != NULL) {
        struct nsq_json j;
        nsq_json_init(&j, b);
        nsq_json_object_begin(&j);
        nsq_json_kv_string(&j, "message", message);
        nsq_json_object_end(&j);
    }
    reply(req, code, REPLY_V1_JSON, b, NULL);
    buf_free(b);
}

static void reply_text(struct evhttp_request *req, int code, enum reply_kind kind, const char *s,
                       size_t len)
{
    struct evbuffer *b = evbuffer_new();
    if (b != NULL && len > 0)
        evbuffer_add(b, s, len);
    reply(req, code, kind, b, NULL);
    buf_free(b);
}

/* ---- request helpers ---- */

static const char *req_header(struct evhttp_request *req, const char *name)
{
    return evhttp_find_header(evhttp_request_get_input_headers(req), name);
}

static bool is_admin(struct nsqadmin *a, struct evhttp_request *req)
{
    const struct nsq_strlist *users = &a->opts->admin_users;
    if (users->len == 0)
        return true;
    const char *user = req_header(req, a->opts->acl_http_header);
    if (user == NULL)
        user = "";
    for (size_t i = 0; i < users->len; i++)
        if (strcmp(users->items[i], user) == 0)
            return true;
    return false;
}

/* "ip:port" of the peer as Go's RemoteAddr. */
static void remote_addr(struct evhttp_request *req, char *ip, size_t iplen, char *out,
                        size_t outlen)
{
    struct evhttp_connection *conn = evhttp_request_get_connection(req);
    const char *host = NULL;
    ev_uint16_t port = 0;
    if (conn != NULL)
        evhttp_connection_get_peer(conn, (char **)&host, &port);
    snprintf(ip, iplen, "%s", host != NULL ? host : "");
    if (host != NULL && strchr(host, ':') != NULL)
        snprintf(out, outlen, "[%s]:%u", host, port);
    else
        snprintf(out, outlen, "%s:%u", host != NULL ? host : "", port);
}

/* Reads the JSON body as Go's json.Decoder.Decode into an object would; on failure copies the
   decoder's error text into err. Caller deletes the result. */
static cJSON *decode_body(struct evhttp_request *req, char *err, size_t errlen)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    if (len > ACTION_MAX_BODY) {
        snprintf(err, errlen, "http: request body too large");
        return NULL;
    }
    char *text = malloc(len + 1);
    if (text == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    evbuffer_copyout(in, text, len);
    text[len] = '\0';
    const char *p = text;
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
        p++;
    cJSON *doc = NULL;
    if (*p == '\0') {
        snprintf(err, errlen, "EOF");
    } else if (strchr("{[\"-0123456789tfn", *p) == NULL) {
        snprintf(err, errlen, "invalid character '%c' looking for beginning of value", *p);
    } else {
        const char *end = NULL;
        doc = cJSON_ParseWithOpts(p, &end, false);
        if (doc == NULL) {
            snprintf(err, errlen, "unexpected EOF");
        } else if (!cJSON_IsObject(doc) && !cJSON_IsNull(doc)) {
            snprintf(err, errlen, "json: cannot unmarshal %s into Go value of type struct",
                     cJSON_IsArray(doc)    ? "array"
                     : cJSON_IsString(doc) ? "string"
                     : cJSON_IsNumber(doc) ? "number"
                                           : "bool");
            cJSON_Delete(doc);
            doc = NULL;
        }
    }
    free(text);
    return doc;
}

/* A string member of a decoded body: NULL if absent/null, "" + *bad if of another type. */
static const char *body_string(const cJSON *doc, const char *key, const char **bad_key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, key);
    if (v == NULL || cJSON_IsNull(v))
        return NULL;
    if (!cJSON_IsString(v)) {
        *bad_key = key;
        return NULL;
    }
    return v->valuestring;
}

/* ---- notifications (http-api.md §5.3) ---- */

static const char *basic_auth_user(struct evhttp_request *req, char *buf, size_t len)
{
    const char *h = req_header(req, "Authorization");
    if (h == NULL || strncasecmp(h, "Basic ", 6) != 0)
        return NULL;
    const char *b64 = h + 6;
    unsigned char dec[512];
    size_t in = strlen(b64);
    if (in == 0 || in % 4 != 0 || in / 4 * 3 >= sizeof(dec))
        return NULL;
    int n = EVP_DecodeBlock(dec, (const unsigned char *)b64, (int)in);
    if (n < 0)
        return NULL;
    /* EVP_DecodeBlock counts the padding as zero bytes */
    for (size_t i = in; i > 0 && b64[i - 1] == '='; i--)
        n--;
    dec[n] = '\0';
    char *colon = strchr((char *)dec, ':');
    if (colon == NULL)
        return NULL;
    *colon = '\0';
    size_t user_len = (size_t)(colon - (char *)dec);
    if (user_len >= len)
        return NULL;
    memcpy(buf, dec, user_len + 1);
    return buf;
}

static void notify(struct nsqadmin *a, struct evhttp_request *req, const char *action,
                   const char *topic, const char *channel, const char *node)
{
    if (a->opts->notification_http_endpoint == NULL ||
        a->opts->notification_http_endpoint[0] == '\0')
        return;
    struct evbuffer *b = evbuffer_new();
    if (b == NULL)
        return;
    char ip[NSQ_NET_ADDRSTRLEN], raddr[NSQ_NET_ADDRSTRLEN], user[256];
    remote_addr(req, ip, sizeof(ip), raddr, sizeof(raddr));
    const char *u = basic_auth_user(req, user, sizeof(user));
    const char *scheme = "http";
    const char *xs = req_header(req, "X-Scheme");
    if (xs != NULL && strcmp(xs, "https") == 0)
        scheme = "https";
    const char *host = req_header(req, "Host");
    const char *ua = req_header(req, "User-Agent");
    struct nsq_json j;
    nsq_json_init(&j, b);
    nsq_json_object_begin(&j);
    nsq_json_kv_string(&j, "action", action);
    nsq_json_kv_string(&j, "topic", topic);
    if (channel != NULL && channel[0] != '\0')
        nsq_json_kv_string(&j, "channel", channel);
    if (node != NULL && node[0] != '\0')
        nsq_json_kv_string(&j, "node", node);
    nsq_json_kv_int(&j, "timestamp", (int64_t)time(NULL));
    if (u != NULL && u[0] != '\0')
        nsq_json_kv_string(&j, "user", u);
    nsq_json_kv_string(&j, "remote_ip", raddr);
    nsq_json_kv_string(&j, "user_agent", ua != NULL ? ua : "");
    struct evbuffer *url = evbuffer_new();
    if (url != NULL) {
        evbuffer_add_printf(url, "%s://%s%s", scheme, host != NULL ? host : "",
                            evhttp_request_get_uri(req));
        evbuffer_add(url, "", 1);
        nsq_json_kv_string(&j, "url", (const char *)evbuffer_pullup(url, -1));
        buf_free(url);
    }
    nsq_json_kv_string(&j, "via", a->hostname);
    nsq_json_object_end(&j);
    nsqadmin_notify(a, b);
    buf_free(b);
}

/* ---- API calls ---- */

/* An API call answering an HTTP request; lives in the call's arena, linked in admin_http.ops. */
struct http_op {
    struct nsqadmin *admin;
    struct evhttp_request *req;
    struct api_call *call;
    struct http_op *prev, *next;
    const char *notify_action[2]; /* sent on success (NULL: none) */
};

static void op_unlink(struct http_op *op)
{
    struct admin_http *h = op->admin->http;
    if (op->prev != NULL)
        op->prev->next = op->next;
    else
        h->ops = op->next;
    if (op->next != NULL)
        op->next->prev = op->prev;
}

static void on_api_done(struct api_call *call)
{
    struct http_op *op = call->arg;
    op_unlink(op);
    if (call->status == HTTP_OK) {
        for (size_t i = 0; i < 2; i++)
            if (op->notify_action[i] != NULL)
                notify(op->admin, op->req, op->notify_action[i], call->topic,
                       strstr(op->notify_action[i], "channel") != NULL ? call->channel : NULL,
                       call->node);
        reply(op->req, HTTP_OK, REPLY_V1_JSON, call->body, NULL);
    } else {
        if (call->status == 502)
            nsq_error("%s", call->error_text);
        reply_error(op->req, call->status, call->error_text);
    }
    api_call_free(call);
}

/* Starts op with its arguments (copied into the call's arena); peek_n for API_CHANNEL_PEEK. */
static void run_api_n(struct nsq_http_call *c, enum api_op op, const char *topic,
                      const char *channel, const char *node, const char *action, bool inactive,
                      const char *notify1, const char *notify2, int peek_n)
{
    struct nsqadmin *a = admin_of(c);
    struct api_call *call = api_call_new(a->ci, op);
    struct http_op *hop = call != NULL ? ci_alloc(call->a, sizeof(*hop)) : NULL;
    if (hop == NULL) {
        api_call_free(call);
        reply_error(c->req, HTTP_INTERNAL, "INTERNAL_ERROR");
        return;
    }
    hop->admin = a;
    hop->req = c->req;
    hop->call = call;
    hop->notify_action[0] = notify1;
    hop->notify_action[1] = notify2;
    call->topic = topic != NULL ? ci_strdup(call->a, topic) : NULL;
    call->channel = channel != NULL ? ci_strdup(call->a, channel) : NULL;
    call->node = node != NULL ? ci_strdup(call->a, node) : NULL;
    call->action = action != NULL ? ci_strdup(call->a, action) : NULL;
    call->inactive = inactive;
    call->peek_n = peek_n;
    if (api_call_start(call, on_api_done, hop) != 0) {
        api_call_free(call);
        reply_error(c->req, HTTP_INTERNAL, "INTERNAL_ERROR");
        return;
    }
    hop->next = a->http->ops;
    if (hop->next != NULL)
        hop->next->prev = hop;
    a->http->ops = hop;
}

static void run_api(struct nsq_http_call *c, enum api_op op, const char *topic, const char *channel,
                    const char *node, const char *action, bool inactive, const char *notify1,
                    const char *notify2)
{
    run_api_n(c, op, topic, channel, node, action, inactive, notify1, notify2, 0);
}

/* ---- handlers: pages and assets ---- */

static void do_ping(struct nsq_http_call *c)
{
    reply_text(c->req, HTTP_OK, REPLY_PLAIN, "OK", 2);
}

static const char *content_type_for(const char *path)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
            {".html", CT_HTML},
            {".js", "application/javascript"},
            {".css", "text/css; charset=utf-8"},
            {".png", "image/png"},
            {".svg", "image/svg+xml"},
            {".ico", "image/x-icon"},
            {".woff", "font/woff"},
            {".woff2", "font/woff2"},
            {".ttf", "font/ttf"},
            {".eot", "application/vnd.ms-fontobject"},
            {".json", "application/json"},
            {".map", "application/json"},
    };
    const char *dot = strrchr(path, '.');
    for (size_t i = 0; dot != NULL && i < sizeof(types) / sizeof(types[0]); i++)
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].type;
    return "application/octet-stream";
}

/* Reads <dev-static-dir>/<path> (development mode) into a new buffer; NULL if missing. */
static struct evbuffer *dev_static(struct nsqadmin *a, const char *path)
{
    if (a->opts->dev_static_dir == NULL || a->opts->dev_static_dir[0] == '\0' ||
        strstr(path, "..") != NULL)
        return NULL;
    char full[4096];
    snprintf(full, sizeof(full), "%s/%s", a->opts->dev_static_dir, path);
    FILE *f = fopen(full, "rb");
    if (f == NULL)
        return NULL;
    struct evbuffer *b = evbuffer_new();
    char chunk[8192];
    size_t n;
    while (b != NULL && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        evbuffer_add(b, chunk, n);
    fclose(f);
    return b;
}

/* Finds an asset (development directory first); *data/len into a new buffer. */
static struct evbuffer *find_asset(struct nsqadmin *a, const char *path, const char **ctype)
{
    struct evbuffer *b = dev_static(a, path);
    if (b != NULL) {
        *ctype = content_type_for(path);
        return b;
    }
#ifdef NSQADMIN_NO_ASSETS
    return NULL;
#else
    const uint8_t *data;
    size_t len;
    if (!nsqadmin_asset_find(path, &data, &len, ctype))
        return NULL;
    b = evbuffer_new();
    if (b != NULL)
        evbuffer_add_reference(b, data, len, NULL, NULL);
    return b;
#endif
}

static void write_js_string(struct evbuffer *out, const char *s)
{
    /* JSON string escaping (with <, >, & escaped) is safe inside a script element */
    nsq_json_escape(out, s != NULL ? s : "", s != NULL ? strlen(s) : 0);
}

/* The page's configuration (what upstream's template receives), as script globals. */
static void page_config(struct nsqadmin *a, struct evhttp_request *req, struct evbuffer *out)
{
    const struct nsqadmin_options *o = a->opts;
    bool graph = o->graphite_url != NULL && o->graphite_url[0] != '\0';
    evbuffer_add_printf(out, "<script>\nvar VERSION = ");
    write_js_string(out, NSQ_VERSION);
    evbuffer_add_printf(out, ";\nvar BASE_PATH = ");
    write_js_string(out, a->base_path);
    evbuffer_add_printf(out,
                        ";\nvar PROXY_GRAPHITE = %s;\nvar GRAPH_ENABLED = %s;\n"
                        "var GRAPHITE_URL = ",
                        o->proxy_graphite ? "true" : "false", graph ? "true" : "false");
    write_js_string(out, o->graphite_url);
    evbuffer_add_printf(out, ";\nvar STATSD_INTERVAL = %lld;\nvar STATSD_COUNTER_FORMAT = ",
                        (long long)(o->statsd_interval / NS_PER_SEC));
    write_js_string(out, o->statsd_counter_format);
    evbuffer_add_printf(out, ";\nvar STATSD_GAUGE_FORMAT = ");
    write_js_string(out, o->statsd_gauge_format);
    evbuffer_add_printf(out, ";\nvar STATSD_PREFIX = ");
    write_js_string(out, o->statsd_prefix);
    evbuffer_add_printf(out, ";\nvar NSQLOOKUPD = [");
    for (size_t i = 0; i < o->lookupd_http_addresses.len; i++) {
        if (i > 0)
            evbuffer_add(out, ",", 1);
        write_js_string(out, o->lookupd_http_addresses.items[i]);
    }
    evbuffer_add_printf(out, "];\nvar IS_ADMIN = %s;\n</script>",
                        is_admin(a, req) ? "true" : "false");
}

/* index.html with the configuration in place of CONFIG_PLACEHOLDER (or before </head>). */
static void do_index(struct nsq_http_call *c)
{
    struct nsqadmin *a = admin_of(c);
    const char *ctype = CT_HTML;
    struct evbuffer *page = find_asset(a, "index.html", &ctype);
    if (page == NULL) {
        reply_error(c->req, HTTP_NOTFOUND, "NOT_FOUND");
        return;
    }
    struct evbuffer *out = evbuffer_new();
    if (out == NULL) {
        buf_free(page);
        reply_error(c->req, HTTP_INTERNAL, "INTERNAL_ERROR");
        return;
    }
    struct evbuffer_ptr at =
            evbuffer_search(page, CONFIG_PLACEHOLDER, strlen(CONFIG_PLACEHOLDER), NULL);
    size_t skip = strlen(CONFIG_PLACEHOLDER);
    if (at.pos < 0) {
        at = evbuffer_search(page, "</head>", strlen("</head>"), NULL);
        skip = 0;
    }
    if (at.pos >= 0) {
        evbuffer_remove_buffer(page, out, (size_t)at.pos);
        evbuffer_drain(page, skip);
        page_config(a, c->req, out);
    }
    evbuffer_add_buffer(out, page);
    reply(c->req, HTTP_OK, REPLY_RAW, out, CT_HTML);
    buf_free(out);
    buf_free(page);
}

static void serve_asset(struct nsq_http_call *c, const char *prefix)
{
    struct nsqadmin *a = admin_of(c);
    const char *asset = c->nparams > 0 ? c->params[0] : "";
    char path[1024];
    snprintf(path, sizeof(path), "%s%s", prefix, asset);
    const char *ctype = NULL;
    struct evbuffer *b = asset[0] != '\0' ? find_asset(a, path, &ctype) : NULL;
    if (b == NULL) {
        reply_text(c->req, HTTP_NOTFOUND, REPLY_PLAIN, "NOT_FOUND", strlen("NOT_FOUND"));
        return;
    }
    reply(c->req, HTTP_OK, REPLY_RAW, b, ctype);
    buf_free(b);
}

static void do_static(struct nsq_http_call *c)
{
    serve_asset(c, "");
}

static void do_fonts(struct nsq_http_call *c)
{
    serve_asset(c, "fonts/");
}

/* ---- handlers: read API ---- */

static void do_topics(struct nsq_http_call *c)
{
    if (!nsq_http_require_query(c))
        return;
    bool inactive = nsq_http_query_bool(c, "inactive", 0) == 1;
    run_api(c, API_TOPICS, NULL, NULL, NULL, NULL, inactive, NULL, NULL);
}

static void do_topic(struct nsq_http_call *c)
{
    run_api(c, API_TOPIC, c->params[0], NULL, NULL, NULL, false, NULL, NULL);
}

static void do_channel(struct nsq_http_call *c)
{
    run_api(c, API_CHANNEL, c->params[0], c->params[1], NULL, NULL, false, NULL, NULL);
}

/* GET /api/topics/:topic/:channel/peek?n= (not upstream: docs/peek.md). n as nsqd checks it.
   It shows message bodies: with --admin-user, admins only, as for the actions. */
static void do_channel_peek(struct nsq_http_call *c)
{
    if (!is_admin(admin_of(c), c->req)) {
        reply_error(c->req, HTTP_FORBIDDEN, "FORBIDDEN");
        return;
    }
    int n = ADMIN_PEEK_DEFAULT;
    const char *v = nsq_http_query(c, "n");
    if (v != NULL) {
        char *end;
        errno = 0;
        long long x = strtoll(v, &end, 10);
        if (end == v || *end != '\0' || errno != 0 || x < 1 || x > ADMIN_PEEK_MAX) {
            reply_error(c->req, HTTP_BADREQUEST, "INVALID_ARG_N");
            return;
        }
        n = (int)x;
    }
    run_api_n(c, API_CHANNEL_PEEK, c->params[0], c->params[1], NULL, NULL, false, NULL, NULL, n);
}

static void do_nodes(struct nsq_http_call *c)
{
    run_api(c, API_NODES, NULL, NULL, NULL, NULL, false, NULL, NULL);
}

static void do_node(struct nsq_http_call *c)
{
    run_api(c, API_NODE, NULL, NULL, c->params[0], NULL, false, NULL, NULL);
}

static void do_counter(struct nsq_http_call *c)
{
    run_api(c, API_COUNTER, NULL, NULL, NULL, NULL, false, NULL, NULL);
}

static void do_rates(struct nsq_http_call *c)
{
    if (!nsq_http_require_query(c))
        return;
    const char *topic = nsq_http_query(c, "topic");
    const char *channel = nsq_http_query(c, "channel");
    if (topic == NULL) {
        reply_error(c->req, HTTP_BADREQUEST, "MISSING_ARG_TOPIC");
        return;
    }
    struct evbuffer *b = evbuffer_new();
    if (b == NULL) {
        reply_error(c->req, HTTP_INTERNAL, "INTERNAL_ERROR");
        return;
    }
    struct nsq_json j;
    nsq_json_init(&j, b);
    rates_json(admin_of(c)->rates, topic, channel, &j);
    reply(c->req, HTTP_OK, REPLY_V1_JSON, b, NULL);
    buf_free(b);
}

/* ---- handlers: admin actions ---- */

static bool require_admin(struct nsq_http_call *c)
{
    if (!is_admin(admin_of(c), c->req)) {
        reply_error(c->req, HTTP_FORBIDDEN, "FORBIDDEN");
        return false;
    }
    return true;
}

/* The JSON body of an admin action that requires it to be a valid document; NULL after replying
   403 (not an admin) or 400 (the decoder's error). Caller deletes the result. */
static cJSON *admin_action_body(struct nsq_http_call *c)
{
    if (!require_admin(c))
        return NULL;
    char err[DECODE_ERR_LEN];
    cJSON *doc = decode_body(c->req, err, sizeof(err));
    if (doc == NULL)
        reply_error(c->req, HTTP_BADREQUEST, err);
    return doc;
}

static void do_create(struct nsq_http_call *c)
{
    cJSON *doc = admin_action_body(c);
    if (doc == NULL)
        return;
    const char *bad = NULL;
    const char *topic = body_string(doc, "topic", &bad);
    const char *channel = body_string(doc, "channel", &bad);
    if (bad != NULL) {
        char err[DECODE_ERR_LEN];
        snprintf(err, sizeof(err),
                 "json: cannot unmarshal value into Go struct field .%s of "
                 "type string",
                 bad);
        reply_error(c->req, HTTP_BADREQUEST, err);
    } else if (topic == NULL || !nsq_topic_name_valid(topic, strlen(topic))) {
        reply_error(c->req, HTTP_BADREQUEST, "INVALID_TOPIC");
    } else if (channel != NULL && channel[0] != '\0' &&
               !nsq_channel_name_valid(channel, strlen(channel))) {
        reply_error(c->req, HTTP_BADREQUEST, "INVALID_CHANNEL");
    } else {
        bool ch = channel != NULL && channel[0] != '\0';
        run_api(c, API_CREATE, topic, ch ? channel : NULL, NULL, NULL, false, "create_topic",
                ch ? "create_channel" : NULL);
    }
    cJSON_Delete(doc);
}

/* The notification name of a topic or channel action ("pause_topic", ...): a static string, or
   NULL when action is not one nsqadmin knows. */
static const char *action_notification(const char *action, bool channel)
{
    static const struct {
        const char *action, *topic_note, *channel_note;
    } notes[] = {
            {"pause", "pause_topic", "pause_channel"},
            {"unpause", "unpause_topic", "unpause_channel"},
            {"empty", "empty_topic", "empty_channel"},
    };
    for (size_t i = 0; action != NULL && i < sizeof(notes) / sizeof(notes[0]); i++)
        if (strcmp(action, notes[i].action) == 0)
            return channel ? notes[i].channel_note : notes[i].topic_note;
    return NULL;
}

/* POST /api/topics/:topic[/:channel] {"action":...} */
static void topic_channel_action(struct nsq_http_call *c, const char *topic, const char *channel)
{
    cJSON *doc = admin_action_body(c);
    if (doc == NULL)
        return;
    const char *bad = NULL;
    const char *action = body_string(doc, "action", &bad);
    const char *note = action_notification(action, channel != NULL);
    if (note == NULL) {
        reply_error(c->req, HTTP_BADREQUEST, "INVALID_ACTION");
        cJSON_Delete(doc);
        return;
    }
    run_api(c, channel != NULL ? API_CHANNEL_ACTION : API_TOPIC_ACTION, topic, channel, NULL,
            action, false, note, NULL);
    cJSON_Delete(doc);
}

static void do_topic_action(struct nsq_http_call *c)
{
    topic_channel_action(c, c->params[0], NULL);
}

static void do_channel_action(struct nsq_http_call *c)
{
    topic_channel_action(c, c->params[0], c->params[1]);
}

static void do_topic_delete(struct nsq_http_call *c)
{
    if (require_admin(c))
        run_api(c, API_TOPIC_DELETE, c->params[0], NULL, NULL, NULL, false, "delete_topic", NULL);
}

static void do_channel_delete(struct nsq_http_call *c)
{
    if (require_admin(c))
        run_api(c, API_CHANNEL_DELETE, c->params[0], c->params[1], NULL, NULL, false,
                "delete_channel", NULL);
}

static void do_tombstone(struct nsq_http_call *c)
{
    if (!require_admin(c))
        return;
    char err[DECODE_ERR_LEN];
    cJSON *doc = decode_body(c->req, err, sizeof(err));
    const char *bad = NULL;
    const char *topic = doc != NULL ? body_string(doc, "topic", &bad) : NULL;
    if (doc == NULL || bad != NULL) {
        reply_error(c->req, HTTP_BADREQUEST, "INVALID_BODY");
    } else if (topic == NULL || !nsq_topic_name_valid(topic, strlen(topic))) {
        reply_error(c->req, HTTP_BADREQUEST, "INVALID_TOPIC");
    } else {
        run_api(c, API_TOMBSTONE, topic, NULL, c->params[0], NULL, false,
                "tombstone_topic_producer", NULL);
    }
    cJSON_Delete(doc);
}

/* ---- graphite ---- */

struct graphite_req {
    struct nsqadmin *admin;
    struct evhttp_request *req;
    bool proxy;
};

static void on_graphite(const struct nsq_http_response *resp, void *arg)
{
    struct graphite_req *g = arg;
    if (g->admin->closing) {
        free(g);
        return;
    }
    if (g->proxy) {
        if (resp->error != NULL) {
            reply_text(g->req, 502, REPLY_PLAIN, resp->error, strlen(resp->error));
        } else {
            char ctype[256];
            bool has_ct = nsq_http_response_header(resp, "Content-Type", ctype, sizeof(ctype)) == 0;
            struct evbuffer *b = evbuffer_new();
            if (b != NULL)
                evbuffer_add(b, resp->body, resp->body_len);
            reply(g->req, (int)resp->status, REPLY_RAW, b, has_ct ? ctype : NULL);
            buf_free(b);
        }
        free(g);
        return;
    }
    cJSON *doc = resp->error == NULL && resp->status == HTTP_OK ? cJSON_Parse(resp->body) : NULL;
    const cJSON *dp = cJSON_GetArrayItem(
            cJSON_GetArrayItem(
                    cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(doc, 0), "datapoints"), 0),
            0);
    if (!cJSON_IsNumber(dp)) {
        if (resp->error != NULL || resp->status != HTTP_OK)
            nsq_error("graphite request failed - %s",
                      resp->error != NULL ? resp->error : "unexpected status");
        reply_error(g->req, HTTP_INTERNAL, "INTERNAL_ERROR");
    } else {
        char rate[64];
        int64_t secs = g->admin->opts->statsd_interval / NS_PER_SEC;
        if (dp->valuedouble < 0 || secs <= 0)
            snprintf(rate, sizeof(rate), "N/A");
        else
            snprintf(rate, sizeof(rate), "%.2f", dp->valuedouble / (double)secs);
        struct evbuffer *b = evbuffer_new();
        if (b != NULL) {
            struct nsq_json j;
            nsq_json_init(&j, b);
            nsq_json_object_begin(&j);
            nsq_json_kv_string(&j, "rate", rate);
            nsq_json_object_end(&j);
        }
        reply(g->req, HTTP_OK, REPLY_V1_JSON, b, NULL);
        buf_free(b);
    }
    cJSON_Delete(doc);
    free(g);
}

static void graphite_get(struct nsq_http_call *c, const char *url, bool proxy)
{
    struct nsqadmin *a = admin_of(c);
    struct graphite_req *g = calloc(1, sizeof(*g));
    if (g == NULL) {
        reply_error(c->req, HTTP_INTERNAL, "INTERNAL_ERROR");
        return;
    }
    g->admin = a;
    g->req = c->req;
    g->proxy = proxy;
    if (nsq_http_client_request(a->http_client, "GET", url, NULL, 0, NULL, on_graphite, g) != 0) {
        free(g);
        reply_error(c->req, HTTP_INTERNAL, "INTERNAL_ERROR");
    }
}

static void do_graphite(struct nsq_http_call *c)
{
    if (!nsq_http_require_query(c))
        return;
    const char *metric = nsq_http_query(c, "metric");
    const char *target = nsq_http_query(c, "target");
    if (metric == NULL || strcmp(metric, "rate") != 0) {
        reply_error(c->req, HTTP_BADREQUEST, "INVALID_ARG_METRIC");
        return;
    }
    if (target == NULL) {
        reply_error(c->req, HTTP_BADREQUEST, "INVALID_ARG_TARGET");
        return;
    }
    struct nsqadmin *a = admin_of(c);
    struct ci_arena *ar = ci_arena_new();
    if (ar == NULL) {
        reply_error(c->req, HTTP_INTERNAL, "INTERNAL_ERROR");
        return;
    }
    int64_t secs = a->opts->statsd_interval / NS_PER_SEC;
    /* url.Values.Encode: keys sorted */
    const char *url =
            ci_sprintf(ar, "%s/render?format=json&from=-%lldsec&target=%s&until=-%lldsec",
                       a->opts->graphite_url != NULL ? a->opts->graphite_url : "",
                       (long long)(secs * 2), ci_query_escape(ar, target), (long long)secs);
    graphite_get(c, url, false);
    ci_arena_free(ar);
}

static void do_render(struct nsq_http_call *c)
{
    struct nsqadmin *a = admin_of(c);
    if (!a->opts->proxy_graphite) {
        reply_error(c->req, HTTP_NOTFOUND, "NOT_FOUND");
        return;
    }
    const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(c->req));
    struct ci_arena *ar = ci_arena_new();
    if (ar == NULL) {
        reply_error(c->req, HTTP_INTERNAL, "INTERNAL_ERROR");
        return;
    }
    graphite_get(c,
                 ci_sprintf(ar, "%s/render%s%s", a->opts->graphite_url, q != NULL ? "?" : "",
                            q != NULL ? q : ""),
                 true);
    ci_arena_free(ar);
}

/* ---- /config ---- */

static int set_lookupd_addresses(struct nsqadmin *a, const char *text)
{
    cJSON *doc = cJSON_Parse(text);
    if (!cJSON_IsArray(doc) && !cJSON_IsNull(doc)) {
        cJSON_Delete(doc);
        return -EINVAL;
    }
    const cJSON *v;
    cJSON_ArrayForEach(v, doc)
    {
        if (!cJSON_IsString(v)) {
            cJSON_Delete(doc);
            return -EINVAL;
        }
    }
    size_t n = (size_t)cJSON_GetArraySize(doc);
    char **items = calloc(n + 1, sizeof(*items));
    if (items == NULL) {
        cJSON_Delete(doc);
        return -ENOMEM;
    }
    size_t i = 0;
    cJSON_ArrayForEach(v, doc)
    {
        items[i] = strdup(v->valuestring);
        if (items[i++] == NULL) {
            for (size_t k = 0; k < i; k++)
                free(items[k]);
            free(items);
            cJSON_Delete(doc);
            return -ENOMEM;
        }
    }
    cJSON_Delete(doc);
    struct nsq_strlist *l = &a->opts->lookupd_http_addresses;
    for (size_t k = 0; k < l->len; k++)
        free(l->items[k]);
    free(l->items);
    l->items = items;
    l->len = n;
    return 0;
}

static void do_config(struct nsq_http_call *c)
{
    struct nsqadmin *a = admin_of(c);
    const char *opt = c->params[0];
    if (a->cidr_family != 0) {
        char ip[NSQ_NET_ADDRSTRLEN], raddr[NSQ_NET_ADDRSTRLEN];
        remote_addr(c->req, ip, sizeof(ip), raddr, sizeof(raddr));
        int ok = nsqadmin_config_allowed(a, ip);
        if (ok < 0) {
            reply_error(c->req, HTTP_BADREQUEST, "INVALID_REMOTE_ADDR");
            return;
        }
        if (!ok) {
            reply_error(c->req, HTTP_FORBIDDEN, "FORBIDDEN");
            return;
        }
    }
    if (evhttp_request_get_command(c->req) == EVHTTP_REQ_PUT) {
        struct evbuffer *in = evhttp_request_get_input_buffer(c->req);
        size_t len = evbuffer_get_length(in);
        if (len == 0 || len > CONFIG_MAX_BODY) {
            reply_error(c->req, HTTP_ENTITYTOOLARGE, "INVALID_VALUE");
            return;
        }
        char *text = malloc(len + 1);
        if (text == NULL) {
            reply_error(c->req, HTTP_INTERNAL, "INTERNAL_ERROR");
            return;
        }
        evbuffer_copyout(in, text, len);
        text[len] = '\0';
        int rc = 0;
        if (strcmp(opt, "nsqlookupd_http_addresses") == 0) {
            rc = set_lookupd_addresses(a, text);
        } else if (strcmp(opt, "log_level") == 0) {
            enum nsq_log_level l;
            rc = nsq_log_parse_level(text, &l);
            if (rc == 0) {
                a->opts->log_level = l;
                nsq_log_set_level(l);
            }
        } else {
            free(text);
            reply_error(c->req, HTTP_BADREQUEST, "INVALID_OPTION");
            return;
        }
        free(text);
        if (rc != 0) {
            reply_error(c->req, HTTP_BADREQUEST, "INVALID_VALUE");
            return;
        }
    }
    const struct nsq_opt *o = nsq_options_find_cfg(a->table, a->n_table, opt);
    struct evbuffer *b = o != NULL ? evbuffer_new() : NULL;
    if (o == NULL || b == NULL || nsq_options_render(o, b) != 0) {
        buf_free(b);
        reply_error(c->req, HTTP_BADREQUEST, "INVALID_OPTION");
        return;
    }
    reply(c->req, HTTP_OK, o->type == NSQ_OPT_STRING ? REPLY_V1_TEXT : REPLY_V1_JSON, b, NULL);
    buf_free(b);
}

/* ---- routes ---- */

#define GET    EVHTTP_REQ_GET
#define POST   EVHTTP_REQ_POST
#define PUT    EVHTTP_REQ_PUT
#define DELETE EVHTTP_REQ_DELETE

static const struct nsq_http_route admin_routes[] = {
        {"/ping", GET, do_ping},
        {"/", GET, do_index},
        {"/topics", GET, do_index},
        {"/topics/:topic", GET, do_index},
        {"/topics/:topic/:channel", GET, do_index},
        {"/nodes", GET, do_index},
        {"/nodes/:node", GET, do_index},
        {"/counter", GET, do_index},
        {"/lookup", GET, do_index},
        {"/static/:asset", GET, do_static},
        {"/fonts/:asset", GET, do_fonts},
        {"/render", GET, do_render},
        {"/api/topics", GET, do_topics},
        {"/api/topics", POST, do_create},
        {"/api/topics/:topic", GET, do_topic},
        {"/api/topics/:topic", POST, do_topic_action},
        {"/api/topics/:topic", DELETE, do_topic_delete},
        {"/api/topics/:topic/:channel", GET, do_channel},
        {"/api/topics/:topic/:channel", POST, do_channel_action},
        {"/api/topics/:topic/:channel", DELETE, do_channel_delete},
        {"/api/topics/:topic/:channel/peek", GET, do_channel_peek},
        {"/api/nodes", GET, do_nodes},
        {"/api/nodes/:node", GET, do_node},
        {"/api/nodes/:node", DELETE, do_tombstone},
        {"/api/counter", GET, do_counter},
        {"/api/graphite", GET, do_graphite},
        {"/api/rates", GET, do_rates},
        {"/config/:opt", GET | PUT, do_config},
};

struct admin_http *admin_http_new(struct nsqadmin *a, evutil_socket_t fd)
{
    struct admin_http *h = calloc(1, sizeof(*h));
    if (h == NULL)
        goto err;
    h->http = evhttp_new(a->base);
    if (h->http == NULL)
        goto err;
    h->router = nsq_http_router_new(a->base_path, admin_routes,
                                    sizeof(admin_routes) / sizeof(admin_routes[0]), a);
    if (h->router == NULL)
        goto err;
    nsq_http_router_attach(h->router, h->http);
    if (evhttp_accept_socket_with_handle(h->http, fd) == NULL)
        goto err;
    return h;
err:
    close(fd);
    admin_http_free(h);
    return NULL;
}

void admin_http_free(struct admin_http *h)
{
    if (h == NULL)
        return;
    /* the clusterinfo is closing: abandoned calls get no completion, release them here */
    while (h->ops != NULL) {
        struct http_op *op = h->ops;
        h->ops = op->next;
        api_call_free(op->call);
    }
    if (h->http != NULL)
        evhttp_free(h->http);
    nsq_http_router_free(h->router);
    free(h);
}
