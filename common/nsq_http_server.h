/*
 * nsq_http_server: upstream's HTTP routing rules and response encoders (http-api.md §0) on top
 * of libevent's evhttp.
 *
 * A router holds a static table of routes ("/topic/create", "/config/:opt", "/static/" followed by
 * "*asset") and is attached to an evhttp as its generic callback. For a request it applies, in
 * order (as httprouter does): a route for the path and method → handler; else for a method that has
 * routes, a path that matches after adding/removing a trailing slash, or after cleaning the path
 * and ignoring letter case → redirect (301 for GET, 307 otherwise, query kept); else OPTIONS on a
 * known path → 200 with Allow; else known path with other methods → 405 METHOD_NOT_ALLOWED with
 * Allow ("GET, OPTIONS", sorted); else 404 NOT_FOUND. HEAD is routed like any other method (so a
 * GET-only path answers HEAD with 405, as upstream).
 *
 * Lifetime: the nsq_http_call passed to a handler (and its params and query) is valid only during
 * the handler call. A handler may reply later: call->req stays valid until a reply is sent on it.
 */
#ifndef NSQ_HTTP_SERVER_H
#define NSQ_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#define NSQ_HTTP_MAX_PARAMS 4

struct evbuffer;

struct nsq_http_call {
    struct evhttp_request *req;
    void *ctx;                               /* the router's ctx */
    const char *params[NSQ_HTTP_MAX_PARAMS]; /* route parameters, in path order */
    size_t nparams;
    struct evkeyvalq query; /* decoded query parameters, in order */
    bool query_ok;          /* false if the query string was malformed (Go's url.ParseQuery) */
};

typedef void (*nsq_http_handler)(struct nsq_http_call *call);

struct nsq_http_route {
    const char *path; /* may contain ":name" segments and one trailing "*name" */
    int methods;      /* EVHTTP_REQ_* mask */
    nsq_http_handler fn;
};

/* Methods evhttp lets through to the router (set by nsq_http_router_attach). */
#define NSQ_HTTP_ALLOWED_METHODS                                                                   \
    (EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |  \
     EVHTTP_REQ_HEAD | EVHTTP_REQ_PATCH)

/* base_path ("" or "/" for none, e.g. "/nsqadmin") is prepended to every route. routes are copied.
   Returns NULL on allocation failure or a route with more than NSQ_HTTP_MAX_PARAMS params. */
struct nsq_http_router *nsq_http_router_new(const char *base_path,
                                            const struct nsq_http_route *routes, size_t n,
                                            void *ctx);
void nsq_http_router_free(struct nsq_http_router *r);
/* Installs the router as http's generic callback, lets the methods above through and turns off
   evhttp's default Content-Type. The router must outlive http's use of it. */
void nsq_http_router_attach(struct nsq_http_router *r, struct evhttp *http);

/* First value of a query parameter, or NULL. */
const char *nsq_http_query(struct nsq_http_call *c, const char *key);
/* "true"/"1" → 1, "false"/"0" → 0, absent or anything else → def. */
int nsq_http_query_bool(struct nsq_http_call *c, const char *key, int def);
/* Replies 400 INVALID_REQUEST and returns false if the query string was malformed. */
bool nsq_http_require_query(struct nsq_http_call *c);

/* Go's url.ParseQuery into q (appended, in order). Returns 0, or -EINVAL if any pair was
   malformed (the well-formed pairs are still added), or -ENOMEM. */
int nsq_http_parse_query(const char *query, struct evkeyvalq *q);

/* Sends the reply with body (may be NULL; drained). Every reply goes through here: a response to
   HEAD carries the body's Content-Length and no body, as HTTP requires (evhttp would send the
   body). */
void nsq_http_send(struct evhttp_request *req, int code, const char *reason, struct evbuffer *body);

/* V1 encoder, string/bytes result: 200-style reply with raw body (Content-Type text/plain;
   charset=utf-8 when non-empty) and X-NSQ-Content-Type. */
void nsq_http_reply_text(struct evhttp_request *req, int code, const char *text, size_t len);
/* V1 encoder, object result: body is compact JSON (drained). */
void nsq_http_reply_json(struct evhttp_request *req, int code, struct evbuffer *body);
/* V1 encoder, error: {"message":"<message>"}. */
void nsq_http_reply_error(struct evhttp_request *req, int code, const char *message);
/* PlainText encoder: raw text, no X-NSQ-Content-Type. */
void nsq_http_reply_plain(struct evhttp_request *req, int code, const char *text);

/* The request body (evhttp's input buffer, not a copy) in *out_ref. Returns 0, or -E2BIG when it
   is longer than max bytes. */
int nsq_http_body(struct evhttp_request *req, size_t max, struct evbuffer **out_ref);

/* "GET", "POST", ... for an EVHTTP_REQ_* value ("" if unknown). */
const char *nsq_http_method_name(int method);

#endif
