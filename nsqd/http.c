/*
 * http: nsqd's HTTP endpoints (http-api.md §1-§2). Status codes and messages are upstream's, in
 * upstream's order of checks.
 */
#include "http.h"

#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <event2/http.h>

#include "ack_wait.h"
#include "channel.h"
#include "journal.h"
#include "nsq_command.h"
#include "nsq_http_server.h"
#include "nsq_json.h"
#include "nsq_log.h"
#include "nsq_names.h"
#include "nsq_options.h"
#include "nsq_time.h"
#include "nsq_version.h"
#include "nsqd.h"
#include "peek.h"
#include "topic.h"
#include "topology.h"
#ifdef NSQD_HAVE_LOOKUP
#include "lookup.h"
#endif
#ifdef NSQD_HAVE_STATS
#include "stats.h"
#endif
#ifdef NSQD_HAVE_METRICS
#include "metrics.h"
#endif

struct nsqd_http {
    struct nsqd *n;
    struct nsq_http_router *router;
    /* Go tells a never-set list (null) from one set to [] by PUT: remember the latter. */
    bool lookupd_set_null; /* PUT null: upstream then reports null instead of [] */
};

static struct nsqd *call_nsqd(struct nsq_http_call *c)
{
    return ((struct nsqd_http *)c->ctx)->n;
}

static void reply_empty(struct nsq_http_call *c)
{
    nsq_http_reply_text(c->req, 200, "", 0);
}

static void reply_ok(struct nsq_http_call *c)
{
    nsq_http_reply_text(c->req, 200, "OK", 2);
}

/* Content-Length header value, or -1. */
static long long content_length(struct nsq_http_call *c)
{
    const char *v = evhttp_find_header(evhttp_request_get_input_headers(c->req), "Content-Length");
    if (!v)
        return -1;
    char *end;
    long long n = strtoll(v, &end, 10);
    return *end ? -1 : n;
}

/* ---- /ping, /info ---- */

static void h_ping(struct nsq_http_call *c)
{
    struct nsqd *n = call_nsqd(c);
    char buf[512];
    nsqd_health_string(n, buf, sizeof(buf));
    nsq_http_reply_plain(c->req, nsqd_is_healthy(n) ? 200 : 500, buf);
}

static void h_info(struct nsq_http_call *c)
{
    struct nsqd *n = call_nsqd(c);
    struct evbuffer *out = evbuffer_new();
    if (!out) {
        nsq_http_reply_error(c->req, 500, "INTERNAL_ERROR");
        return;
    }
    struct nsq_json j;
    nsq_json_init(&j, out);
    nsq_json_object_begin(&j);
    nsq_json_kv_string(&j, "version", NSQ_VERSION);
    nsq_json_kv_string(&j, "broadcast_address", nsqd_broadcast_address(n));
    nsq_json_kv_string(&j, "hostname", n->hostname);
    nsq_json_kv_int(&j, "http_port", n->http_port);
    nsq_json_kv_int(&j, "tcp_port", n->tcp_port);
    nsq_json_kv_int(&j, "start_time", n->start_time);
    nsq_json_kv_int(&j, "max_heartbeat_interval", n->opts->max_heartbeat_interval);
    nsq_json_kv_int(&j, "max_output_buffer_size", n->opts->max_output_buffer_size);
    nsq_json_kv_int(&j, "max_output_buffer_timeout", n->opts->max_output_buffer_timeout);
    nsq_json_kv_int(&j, "max_deflate_level", n->opts->max_deflate_level);
    if (topology_configured(n->opts)) { /* upstream's topology experiment adds these */
        nsq_json_kv_string(&j, "topology_zone", n->opts->topology_zone);
        nsq_json_kv_string(&j, "topology_region", n->opts->topology_region);
    }
    nsq_json_object_end(&j);
    nsq_http_reply_json(c->req, 200, out);
    evbuffer_free(out);
}

/* ---- publishing ---- */

/* Query checks shared by /pub and /mpub; returns the topic name or NULL after replying. */
static const char *pub_topic_arg(struct nsq_http_call *c)
{
    if (!nsq_http_require_query(c))
        return NULL;
    const char *t = nsq_http_query(c, "topic");
    if (!t) {
        nsq_http_reply_error(c->req, 400, "MISSING_ARG_TOPIC");
        return NULL;
    }
    if (!nsq_topic_name_valid(t, strlen(t))) {
        nsq_http_reply_error(c->req, 400, "INVALID_TOPIC");
        return NULL;
    }
    return t;
}

/* Go's strconv.ParseInt(s, 10, 64). */
static bool parse_int64(const char *s, int64_t *out)
{
    if (!*s)
        return false;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*end || errno || s[0] == ' ' || s[0] == '\t' || s[0] == '\n')
        return false;
    *out = v;
    return true;
}

/* A publish is answered once what it wrote is on disk: its diskqueue records with --sync-every=1
   (ack_wait.h), then its journal records (journal.h: messages a durable channel delivered or
   deferred). The same rule as for TCP, so a 200 promises what an OK frame does. libevent keeps an
   unanswered request alive when its client goes away (the reply then just frees it); at shutdown
   the server frees pending requests itself, so dropping one does nothing. */
static void pub_durable_done(void *arg)
{
    nsq_http_reply_text(arg, 200, "OK", 2);
}

static void pub_durable_drop(void *arg)
{
    (void)arg;
}

/* ttl= of /pub and /mpub: a Go duration, 0 = none (topic_limits.h). Replies 400 INVALID_TTL and
   returns false when it is not one, is negative or exceeds TOPIC_MAX_MSG_TTL_MS. */
static bool pub_ttl_arg(struct nsq_http_call *c, uint32_t *ttl_ms)
{
    *ttl_ms = 0;
    const char *s = nsq_http_query(c, "ttl");
    if (!s)
        return true;
    int64_t ns;
    if (nsq_parse_duration(s, &ns) != 0 || ns < 0 ||
        ns / NSQ_NS_PER_MS > (int64_t)TOPIC_MAX_MSG_TTL_MS) {
        nsq_http_reply_error(c->req, 400, "INVALID_TTL");
        return false;
    }
    *ttl_ms = (uint32_t)((ns + NSQ_NS_PER_MS - 1) / NSQ_NS_PER_MS); /* never rounds to "none" */
    return true;
}

/* A failed publish: the topic is at its max_depth (policy reject), or nsqd is exiting. */
static void reply_pub_failed(struct nsq_http_call *c, int rc)
{
    nsq_http_reply_error(c->req, 503, rc == -ENOSPC ? "TOPIC_FULL" : "EXITING");
}

/* A reply waiting for its diskqueue records, then for its journal records. Owned by the wait. */
struct held_reply {
    struct nsqd *n;
    struct evhttp_request *req;
    uint64_t journal_seq; /* 0: none */
};

/* ack_wait_fn: synced, or a queue failed to write (a failed put: 503 EXITING, as upstream). */
static void held_reply_synced(void *arg, const char *err)
{
    struct held_reply *h = arg;
    if (err)
        nsq_http_reply_error(h->req, 503, "EXITING");
    else if (!h->journal_seq || journal_when_done(h->n->journal, h->journal_seq, NULL,
                                                  pub_durable_done, h->req, pub_durable_drop) != 0)
        pub_durable_done(h->req);
    free(h);
}

static void held_reply_drop(void *arg)
{
    free(arg);
}

/* Starts a publish: collects the records it will write. Returns the journal position before it. */
static uint64_t pub_begin(struct nsqd *n)
{
    if (n->ack_wait)
        ack_wait_begin(n->ack_wait);
    return n->journal ? journal_last_seq(n->journal) : 0;
}

/* A failed publish: nothing to wait for. */
static void pub_abort(struct nsqd *n)
{
    if (n->ack_wait)
        ack_wait_abort(n->ack_wait);
}

/* Ends a successful publish (journal_seq0 from pub_begin): true when the reply is held until its
   records are durable, false to reply at once. */
static bool pub_hold_reply(struct nsqd *n, struct evhttp_request *req, uint64_t journal_seq0)
{
    uint64_t jseq = n->journal ? journal_last_seq(n->journal) : 0;
    if (jseq == journal_seq0)
        jseq = 0;
    if (n->ack_wait) {
        struct held_reply *h = malloc(sizeof(*h));
        if (!h) {
            ack_wait_abort(n->ack_wait);
        } else {
            *h = (struct held_reply){.n = n, .req = req, .journal_seq = jseq};
            if (ack_wait_end(n->ack_wait, held_reply_synced, held_reply_drop, h))
                return true;
            free(h);
        }
    }
    return jseq &&
           journal_when_done(n->journal, jseq, NULL, pub_durable_done, req, pub_durable_drop) == 0;
}

static void h_pub(struct nsq_http_call *c)
{
    struct nsqd *n = call_nsqd(c);
    int64_t max = n->opts->max_msg_size;
    if (content_length(c) > max) {
        nsq_http_reply_error(c->req, 413, "MSG_TOO_BIG");
        return;
    }
    struct evbuffer *body;
    if (nsq_http_body(c->req, (size_t)max, &body) != 0) {
        nsq_http_reply_error(c->req, 413, "MSG_TOO_BIG");
        return;
    }
    size_t len = evbuffer_get_length(body);
    if (len == 0) {
        nsq_http_reply_error(c->req, 400, "MSG_EMPTY");
        return;
    }
    const char *tname = pub_topic_arg(c);
    if (!tname)
        return;
    struct topic *t = nsqd_get_topic(n, tname);
    int64_t defer_ns = 0;
    const char *d = nsq_http_query(c, "defer");
    if (d) {
        int64_t ms;
        if (!parse_int64(d, &ms) || ms < 0 ||
            ms > nsqd_max_defer_timeout(n->opts) / NSQ_NS_PER_MS) {
            nsq_http_reply_error(c->req, 400, "INVALID_DEFER");
            return;
        }
        defer_ns = ms * NSQ_NS_PER_MS;
    }
    uint32_t ttl_ms;
    if (!pub_ttl_arg(c, &ttl_ms))
        return;
    const void *data = evbuffer_pullup(body, -1);
    uint64_t seq0 = pub_begin(n);
    int64_t now = 0;
    int rc = t ? topic_publish_ttl(t, data, len, defer_ns, ttl_ms, &now) : -ESHUTDOWN;
    if (rc != 0) {
        pub_abort(n);
        reply_pub_failed(c, rc);
        return;
    }
    if (pub_hold_reply(n, c->req, seq0))
        return;
    reply_ok(c);
}

static void h_mpub(struct nsq_http_call *c)
{
    struct nsqd *n = call_nsqd(c);
    const struct nsqd_options *o = n->opts;
    if (content_length(c) > o->max_body_size) {
        nsq_http_reply_error(c->req, 413, "BODY_TOO_BIG");
        return;
    }
    const char *tname = pub_topic_arg(c);
    if (!tname)
        return;
    uint32_t ttl_ms;
    if (!pub_ttl_arg(c, &ttl_ms))
        return;
    struct topic *t = nsqd_get_topic(n, tname);
    const char *b = nsq_http_query(c, "binary");
    bool binary = b && !(strcmp(b, "false") == 0 || strcmp(b, "0") == 0);
    struct evbuffer *body;
    if (nsq_http_body(c->req, (size_t)o->max_body_size, &body) != 0) {
        nsq_http_reply_error(c->req, 413, "BODY_TOO_BIG");
        return;
    }
    size_t len = evbuffer_get_length(body);
    const uint8_t *data = len ? evbuffer_pullup(body, -1) : (const uint8_t *)"";
    struct iovec *msgs = NULL;
    size_t nmsgs = 0;
    if (binary) {
        struct nsq_mpub_iter it;
        int rc = nsq_mpub_validate(&it, data, len, o->max_body_size, o->max_msg_size);
        if (rc) {
            nsq_http_reply_error(c->req, 413,
                                 rc == NSQ_MPUB_ERR_COUNT_READ || rc == NSQ_MPUB_ERR_COUNT_INVALID
                                         ? "BAD_BODY"
                                         : "BAD_MESSAGE");
            return;
        }
        msgs = calloc((size_t)it.count, sizeof(*msgs));
        if (!msgs) {
            nsq_http_reply_error(c->req, 500, "INTERNAL_ERROR");
            return;
        }
        nsq_mpub_begin(&it, data, len, o->max_body_size, o->max_msg_size);
        const uint8_t *m;
        size_t mlen;
        while (nsq_mpub_next(&it, &m, &mlen) == 1) {
            msgs[nmsgs].iov_base = (void *)m;
            msgs[nmsgs].iov_len = mlen;
            nmsgs++;
        }
    } else {
        struct nsq_mpub_lines it;
        nsq_mpub_lines_begin(&it, data, len, o->max_msg_size);
        size_t cap = 0;
        const uint8_t *m;
        size_t mlen;
        int r;
        while ((r = nsq_mpub_lines_next(&it, &m, &mlen)) == 1) {
            if (nmsgs == cap) {
                cap = cap ? cap * 2 : 64;
                struct iovec *a = realloc(msgs, cap * sizeof(*a));
                if (!a) {
                    free(msgs);
                    nsq_http_reply_error(c->req, 500, "INTERNAL_ERROR");
                    return;
                }
                msgs = a;
            }
            msgs[nmsgs].iov_base = (void *)m;
            msgs[nmsgs].iov_len = mlen;
            nmsgs++;
        }
        if (r < 0) {
            free(msgs);
            nsq_http_reply_error(c->req, 413, "MSG_TOO_BIG");
            return;
        }
    }
    uint64_t seq0 = pub_begin(n);
    int rc = t ? topic_publish_many_ttl(t, msgs, nmsgs, ttl_ms) : -ESHUTDOWN;
    free(msgs);
    if (rc) {
        pub_abort(n);
        reply_pub_failed(c, rc);
        return;
    }
    if (pub_hold_reply(n, c->req, seq0))
        return;
    reply_ok(c);
}

/* ---- topic administration ---- */

/* require_valid: also 400 INVALID_TOPIC for a bad name. Returns the name or NULL after replying. */
static const char *topic_arg(struct nsq_http_call *c, bool require_valid)
{
    if (!nsq_http_require_query(c))
        return NULL;
    const char *t = nsq_http_query(c, "topic");
    if (!t) {
        nsq_http_reply_error(c->req, 400, "MISSING_ARG_TOPIC");
        return NULL;
    }
    if (require_valid && !nsq_topic_name_valid(t, strlen(t))) {
        nsq_http_reply_error(c->req, 400, "INVALID_TOPIC");
        return NULL;
    }
    return t;
}

static void h_topic_create(struct nsq_http_call *c)
{
    const char *name = topic_arg(c, true);
    if (!name)
        return;
    nsqd_get_topic(call_nsqd(c), name);
    reply_empty(c);
}

static void h_topic_delete(struct nsq_http_call *c)
{
    const char *name = topic_arg(c, false);
    if (!name)
        return;
    if (nsqd_delete_topic(call_nsqd(c), name) != 0) {
        nsq_http_reply_error(c->req, 404, "TOPIC_NOT_FOUND");
        return;
    }
    reply_empty(c);
}

static void h_topic_empty(struct nsq_http_call *c)
{
    const char *name = topic_arg(c, true);
    if (!name)
        return;
    struct topic *t = nsqd_find_topic(call_nsqd(c), name);
    if (!t) {
        nsq_http_reply_error(c->req, 404, "TOPIC_NOT_FOUND");
        return;
    }
    if (topic_empty(t) != 0) {
        nsq_http_reply_error(c->req, 500, "INTERNAL_ERROR");
        return;
    }
    reply_empty(c);
}

static void topic_pause_common(struct nsq_http_call *c, bool pause)
{
    struct nsqd *n = call_nsqd(c);
    const char *name = topic_arg(c, false);
    if (!name)
        return;
    struct topic *t = nsqd_find_topic(n, name);
    if (!t) {
        nsq_http_reply_error(c->req, 404, "TOPIC_NOT_FOUND");
        return;
    }
    topic_pause(t, pause);
    if (nsqd_persist_metadata(n) != 0) {
        nsq_http_reply_error(c->req, 500, "INTERNAL_ERROR");
        return;
    }
    reply_empty(c);
}

static void h_topic_pause(struct nsq_http_call *c)
{
    topic_pause_common(c, true);
}

static void h_topic_unpause(struct nsq_http_call *c)
{
    topic_pause_common(c, false);
}

/* ---- topic limits (topic_limits.h) ---- */

/* The existing topic named by topic=, or NULL after replying. */
static struct topic *limits_topic_arg(struct nsq_http_call *c)
{
    const char *name = topic_arg(c, true);
    if (!name)
        return NULL;
    struct topic *t = nsqd_find_topic(call_nsqd(c), name);
    if (!t)
        nsq_http_reply_error(c->req, 404, "TOPIC_NOT_FOUND");
    return t;
}

static void limits_persist_reply(struct nsq_http_call *c, struct topic *t)
{
    if (!t->ephemeral && nsqd_persist_metadata(call_nsqd(c)) != 0) {
        nsq_http_reply_error(c->req, 500, "INTERNAL_ERROR");
        return;
    }
    reply_empty(c);
}

/* POST /topic/ttl?topic=&ttl=<Go duration>: the topic's TTL, 0 = none. */
static void h_topic_ttl(struct nsq_http_call *c)
{
    struct topic *t = limits_topic_arg(c);
    if (!t)
        return;
    const char *s = nsq_http_query(c, "ttl");
    int64_t ns;
    if (!s) {
        nsq_http_reply_error(c->req, 400, "MISSING_ARG_TTL");
        return;
    }
    if (nsq_parse_duration(s, &ns) != 0 || ns < 0) {
        nsq_http_reply_error(c->req, 400, "INVALID_TTL");
        return;
    }
    t->limits.ttl_ns = ns;
    t->limits.ttl_set = true;
    limits_persist_reply(c, t);
}

/* POST /topic/max_depth?topic=&max_depth=N[&policy=reject|drop_oldest]: 0 = unbounded; the
   policy is kept when not given. */
static void h_topic_max_depth(struct nsq_http_call *c)
{
    struct topic *t = limits_topic_arg(c);
    if (!t)
        return;
    const char *s = nsq_http_query(c, "max_depth");
    const char *p = nsq_http_query(c, "policy");
    int64_t max;
    enum topic_overflow policy = t->limits.policy;
    if (!s) {
        nsq_http_reply_error(c->req, 400, "MISSING_ARG_MAX_DEPTH");
        return;
    }
    if (!parse_int64(s, &max) || max < 0) {
        nsq_http_reply_error(c->req, 400, "INVALID_MAX_DEPTH");
        return;
    }
    if (p && topic_overflow_parse(p, &policy) != 0) {
        nsq_http_reply_error(c->req, 400, "INVALID_POLICY");
        return;
    }
    t->limits.max_depth = max;
    t->limits.policy = policy;
    limits_persist_reply(c, t);
}

/* ---- channel administration ---- */

/* §0.3 argument checks, then the topic must exist. Returns it or NULL after replying. */
static struct topic *channel_args(struct nsq_http_call *c, const char **channel)
{
    if (!nsq_http_require_query(c))
        return NULL;
    const char *t = nsq_http_query(c, "topic");
    if (!t) {
        nsq_http_reply_error(c->req, 400, "MISSING_ARG_TOPIC");
        return NULL;
    }
    if (!nsq_topic_name_valid(t, strlen(t))) {
        nsq_http_reply_error(c->req, 400, "INVALID_ARG_TOPIC");
        return NULL;
    }
    const char *ch = nsq_http_query(c, "channel");
    if (!ch) {
        nsq_http_reply_error(c->req, 400, "MISSING_ARG_CHANNEL");
        return NULL;
    }
    if (!nsq_channel_name_valid(ch, strlen(ch))) {
        nsq_http_reply_error(c->req, 400, "INVALID_ARG_CHANNEL");
        return NULL;
    }
    struct topic *topic = nsqd_find_topic(call_nsqd(c), t);
    if (!topic) {
        nsq_http_reply_error(c->req, 404, "TOPIC_NOT_FOUND");
        return NULL;
    }
    *channel = ch;
    return topic;
}

/* The existing channel named by the call's topic and channel, or NULL after replying 400/404. */
static struct channel *existing_channel(struct nsq_http_call *c)
{
    const char *ch;
    struct topic *t = channel_args(c, &ch);
    if (!t)
        return NULL;
    struct channel *chan = topic_find_channel(t, ch);
    if (!chan)
        nsq_http_reply_error(c->req, 404, "CHANNEL_NOT_FOUND");
    return chan;
}

static void h_channel_create(struct nsq_http_call *c)
{
    const char *ch;
    struct topic *t = channel_args(c, &ch);
    if (!t)
        return;
    topic_get_channel(t, ch);
    reply_empty(c);
}

static void h_channel_delete(struct nsq_http_call *c)
{
    const char *ch;
    struct topic *t = channel_args(c, &ch);
    if (!t)
        return;
    if (topic_delete_channel(t, ch) != 0) {
        nsq_http_reply_error(c->req, 404, "CHANNEL_NOT_FOUND");
        return;
    }
    reply_empty(c);
}

static void h_channel_empty(struct nsq_http_call *c)
{
    struct channel *chan = existing_channel(c);
    if (!chan)
        return;
    if (channel_empty(chan) != 0) {
        nsq_http_reply_error(c->req, 500, "INTERNAL_ERROR");
        return;
    }
    reply_empty(c);
}

/* ---- /channel/peek (--http-peek, not in upstream: docs/peek.md) ---- */

/* The optional count "n": NSQD_PEEK_DEFAULT when absent. Returns 0, or -EINVAL. */
static int peek_count_arg(struct nsq_http_call *c, size_t *n)
{
    const char *v = nsq_http_query(c, "n");
    *n = NSQD_PEEK_DEFAULT;
    if (!v)
        return 0;
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (end == v || *end || errno != 0 || x < 1 || x > NSQD_PEEK_MAX)
        return -EINVAL;
    *n = (size_t)x;
    return 0;
}

/* The optional "include": a comma-separated list of "inflight" and "deferred" (PEEK_INCLUDE_*).
   Returns 0, or -EINVAL for any other word. */
static int peek_include_arg(struct nsq_http_call *c, unsigned *include)
{
    static const struct {
        const char *word;
        unsigned bit;
    } words[] = {{"inflight", PEEK_INCLUDE_IN_FLIGHT}, {"deferred", PEEK_INCLUDE_DEFERRED}};
    const char *v = nsq_http_query(c, "include");
    *include = 0;
    while (v && *v) {
        size_t len = strcspn(v, ",");
        size_t i = 0;
        while (i < sizeof(words) / sizeof(words[0]) &&
               (strlen(words[i].word) != len || strncmp(words[i].word, v, len) != 0))
            i++;
        if (i == sizeof(words) / sizeof(words[0]))
            return -EINVAL;
        *include |= words[i].bit;
        v += len + (v[len] == ',');
    }
    return 0;
}

static void h_channel_peek(struct nsq_http_call *c)
{
    struct channel *chan = existing_channel(c);
    if (!chan)
        return;
    size_t n;
    if (peek_count_arg(c, &n) != 0) {
        nsq_http_reply_error(c->req, 400, "INVALID_ARG_N");
        return;
    }
    unsigned include;
    if (peek_include_arg(c, &include) != 0) {
        nsq_http_reply_error(c->req, 400, "INVALID_ARG_INCLUDE");
        return;
    }
    struct evbuffer *out = evbuffer_new();
    if (!out || channel_peek_render(chan, n, include, out) != 0) {
        if (out)
            evbuffer_free(out);
        nsq_http_reply_error(c->req, 500, "INTERNAL_ERROR");
        return;
    }
    nsq_http_reply_json(c->req, 200, out);
    evbuffer_free(out);
}

static void channel_pause_common(struct nsq_http_call *c, bool pause)
{
    struct channel *chan = existing_channel(c);
    if (!chan)
        return;
    channel_pause(chan, pause);
    if (nsqd_persist_metadata(call_nsqd(c)) != 0) {
        nsq_http_reply_error(c->req, 500, "INTERNAL_ERROR");
        return;
    }
    reply_empty(c);
}

static void h_channel_pause(struct nsq_http_call *c)
{
    channel_pause_common(c, true);
}

static void h_channel_unpause(struct nsq_http_call *c)
{
    channel_pause_common(c, false);
}

/* POST /channel/max_attempts?topic=&channel=&max_attempts=N: the channel's own dead-letter limit
   (docs/dead-letter.md), 0 = inherit --max-attempts. Persisted in nsqd.dat. */
static void h_channel_max_attempts(struct nsq_http_call *c)
{
    const char *ch;
    struct topic *t = channel_args(c, &ch);
    if (!t)
        return;
    const char *v = nsq_http_query(c, "max_attempts");
    if (!v) {
        nsq_http_reply_error(c->req, 400, "MISSING_ARG_MAX_ATTEMPTS");
        return;
    }
    struct channel *chan = topic_find_channel(t, ch);
    if (!chan) {
        nsq_http_reply_error(c->req, 404, "CHANNEL_NOT_FOUND");
        return;
    }
    int64_t max;
    if (!parse_int64(v, &max) || channel_set_max_attempts(chan, max) != 0) {
        nsq_http_reply_error(c->req, 400, "INVALID_MAX_ATTEMPTS");
        return;
    }
    if (nsqd_persist_metadata(call_nsqd(c)) != 0) {
        nsq_http_reply_error(c->req, 500, "INTERNAL_ERROR");
        return;
    }
    reply_empty(c);
}

/* ---- /config/:opt ---- */

static void config_reply(struct nsq_http_call *c, const struct nsq_opt *opt)
{
    struct evbuffer *out = evbuffer_new();
    if (!out || nsq_options_render(opt, out) != 0) {
        if (out)
            evbuffer_free(out);
        nsq_http_reply_error(c->req, 500, "INTERNAL_ERROR");
        return;
    }
    if (opt->type == NSQ_OPT_STRING) {
        size_t len = evbuffer_get_length(out);
        nsq_http_reply_text(c->req, 200, len ? (const char *)evbuffer_pullup(out, -1) : "", len);
    } else {
        nsq_http_reply_json(c->req, 200, out);
    }
    evbuffer_free(out);
}

static int config_set_lookupd(struct nsqd *n, const char *body, size_t len)
{
    cJSON *root = cJSON_ParseWithLength(body, len);
    if (!root || !(cJSON_IsArray(root) || cJSON_IsNull(root))) {
        cJSON_Delete(root);
        return -EINVAL;
    }
    size_t count = (size_t)cJSON_GetArraySize(root);
    char **items = calloc(count ? count : 1, sizeof(*items));
    if (!items) {
        cJSON_Delete(root);
        return -ENOMEM;
    }
    size_t i = 0;
    const cJSON *e;
    int rc = 0;
    cJSON_ArrayForEach(e, root)
    {
        if (!cJSON_IsString(e) || !(items[i] = strdup(e->valuestring))) {
            rc = -EINVAL;
            break;
        }
        i++;
    }
    cJSON_Delete(root);
    if (rc) {
        for (size_t k = 0; k < i; k++)
            free(items[k]);
        free(items);
        return rc;
    }
    struct nsq_strlist *l = &n->opts->nsqlookupd_tcp_addresses;
    for (size_t k = 0; k < l->len; k++)
        free(l->items[k]);
    free(l->items);
    l->items = items;
    l->len = i;
#ifdef NSQD_HAVE_LOOKUP
    if (n->lookup)
        nsqd_lookup_set_addresses(n->lookup, l);
#endif
    return 0;
}

static void h_config(struct nsq_http_call *c)
{
    struct nsqd *n = call_nsqd(c);
    const char *name = c->nparams > 0 ? c->params[0] : "";
    size_t nopts;
    const struct nsq_opt *table = nsqd_options_table(n->opts, &nopts);
    if (evhttp_request_get_command(c->req) == EVHTTP_REQ_PUT) {
        struct evbuffer *body;
        size_t max = (size_t)n->opts->max_msg_size;
        if (nsq_http_body(c->req, max, &body) != 0 || evbuffer_get_length(body) == 0) {
            nsq_http_reply_error(c->req, 413, "INVALID_VALUE");
            return;
        }
        size_t len = evbuffer_get_length(body);
        const char *data = (const char *)evbuffer_pullup(body, -1);
        if (strcmp(name, "nsqlookupd_tcp_addresses") == 0) {
            if (config_set_lookupd(n, data, len) != 0) {
                nsq_http_reply_error(c->req, 400, "INVALID_VALUE");
                return;
            }
            ((struct nsqd_http *)c->ctx)->lookupd_set_null =
                    n->opts->nsqlookupd_tcp_addresses.len == 0 && len == 4 &&
                    !memcmp(data, "null", 4);
        } else if (strcmp(name, "log_level") == 0) {
            char lvl[32];
            enum nsq_log_level l;
            if (len >= sizeof(lvl)) {
                nsq_http_reply_error(c->req, 400, "INVALID_VALUE");
                return;
            }
            memcpy(lvl, data, len);
            lvl[len] = '\0';
            if (nsq_log_parse_level(lvl, &l) != 0) {
                nsq_http_reply_error(c->req, 400, "INVALID_VALUE");
                return;
            }
            n->opts->log_level = l;
            nsq_log_set_level(l);
        } else {
            nsq_http_reply_error(c->req, 400, "INVALID_OPTION");
            return;
        }
    }
    const struct nsq_opt *opt = nsq_options_find_cfg(table, nopts, name);
    if (!opt) {
        nsq_http_reply_error(c->req, 400, "INVALID_OPTION");
        return;
    }
    /* Both address lists start as empty lists (rendered []), not as null. */
    bool empty_lookupd = strcmp(name, "nsqlookupd_tcp_addresses") == 0 &&
                         n->opts->nsqlookupd_tcp_addresses.len == 0 &&
                         !((struct nsqd_http *)c->ctx)->lookupd_set_null;
    bool empty_auth =
            strcmp(name, "auth_http_addresses") == 0 && n->opts->auth_http_addresses.len == 0;
    if (empty_lookupd || empty_auth) {
        struct evbuffer *out = evbuffer_new();
        if (out) {
            evbuffer_add(out, "[]", 2);
            nsq_http_reply_json(c->req, 200, out);
            evbuffer_free(out);
        }
        return;
    }
    config_reply(c, opt);
}

/* ---- /stats ---- */

static void h_stats(struct nsq_http_call *c)
{
#ifdef NSQD_HAVE_STATS
    struct nsqd *n = call_nsqd(c);
    if (!nsq_http_require_query(c))
        return;
    const char *format = nsq_http_query(c, "format");
    const char *topic = nsq_http_query(c, "topic");
    const char *channel = nsq_http_query(c, "channel");
    bool include_clients = nsq_http_query_bool(c, "include_clients", 1);
    bool include_mem = nsq_http_query_bool(c, "include_mem", 1);
    struct nsqd_stats *s = nsqd_stats_collect(n, topic, channel, include_clients, include_mem);
    struct evbuffer *out = evbuffer_new();
    if (!s || !out) {
        nsqd_stats_free(s);
        if (out)
            evbuffer_free(out);
        nsq_http_reply_error(c->req, 500, "INTERNAL_ERROR");
        return;
    }
    if (format && strcmp(format, "json") == 0) {
        nsqd_stats_render_json(s, include_mem, out);
        nsq_http_reply_json(c->req, 200, out);
    } else {
        nsqd_stats_render_text(s, include_mem, out);
        size_t len = evbuffer_get_length(out);
        nsq_http_reply_text(c->req, 200, (const char *)evbuffer_pullup(out, -1), len);
    }
    evbuffer_free(out);
    nsqd_stats_free(s);
#else
    nsq_http_reply_error(c->req, 500, "INTERNAL_ERROR");
#endif
}

/* ---- /metrics: Prometheus exposition of the same snapshot ---- */

#ifdef NSQD_HAVE_METRICS
static void h_metrics(struct nsq_http_call *c)
{
    struct nsqd_stats *s = nsqd_stats_collect(call_nsqd(c), NULL, NULL, true, true);
    struct evbuffer *out = evbuffer_new();
    if (!s || !out || nsqd_metrics_render(s, out) != 0) {
        nsqd_stats_free(s);
        if (out)
            evbuffer_free(out);
        nsq_http_reply_error(c->req, 500, "INTERNAL_ERROR");
        return;
    }
    nsqd_stats_free(s);
    evhttp_add_header(evhttp_request_get_output_headers(c->req), "Content-Type",
                      NSQD_METRICS_CONTENT_TYPE);
    nsq_http_send(c->req, 200, "OK", out);
    evbuffer_free(out);
}
#endif

/* ---- /debug ---- */

static void h_freememory(struct nsq_http_call *c)
{
    malloc_trim(0);
    nsq_http_reply_plain(c->req, 200, "");
}

static void h_setblockrate(struct nsq_http_call *c)
{
    const char *r = nsq_http_query(c, "rate");
    int64_t v;
    if (!r || !parse_int64(r, &v)) {
        char buf[256];
        snprintf(buf, sizeof(buf),
                 "invalid block rate : strconv.Atoi: parsing \"%s\": invalid syntax", r ? r : "");
        nsq_http_reply_plain(c->req, 400, buf);
        return;
    }
    nsq_http_reply_plain(c->req, 200, "");
}

static const struct nsq_http_route routes[] = {
        {"/ping", EVHTTP_REQ_GET, h_ping},
        {"/info", EVHTTP_REQ_GET, h_info},
        {"/pub", EVHTTP_REQ_POST, h_pub},
        {"/mpub", EVHTTP_REQ_POST, h_mpub},
        {"/stats", EVHTTP_REQ_GET, h_stats},
#ifdef NSQD_HAVE_METRICS
        {"/metrics", EVHTTP_REQ_GET, h_metrics},
#endif
        {"/topic/create", EVHTTP_REQ_POST, h_topic_create},
        {"/topic/delete", EVHTTP_REQ_POST, h_topic_delete},
        {"/topic/empty", EVHTTP_REQ_POST, h_topic_empty},
        {"/topic/pause", EVHTTP_REQ_POST, h_topic_pause},
        {"/topic/unpause", EVHTTP_REQ_POST, h_topic_unpause},
        {"/topic/ttl", EVHTTP_REQ_POST, h_topic_ttl},
        {"/topic/max_depth", EVHTTP_REQ_POST, h_topic_max_depth},
        {"/channel/create", EVHTTP_REQ_POST, h_channel_create},
        {"/channel/delete", EVHTTP_REQ_POST, h_channel_delete},
        {"/channel/empty", EVHTTP_REQ_POST, h_channel_empty},
        {"/channel/pause", EVHTTP_REQ_POST, h_channel_pause},
        {"/channel/unpause", EVHTTP_REQ_POST, h_channel_unpause},
        {"/channel/max_attempts", EVHTTP_REQ_POST, h_channel_max_attempts},
        {"/config/:opt", EVHTTP_REQ_GET | EVHTTP_REQ_PUT, h_config},
        {"/debug/setblockrate", EVHTTP_REQ_PUT, h_setblockrate},
        {"/debug/freememory", EVHTTP_REQ_POST, h_freememory},
        /* last: left out of the router unless --http-peek */
        {"/channel/peek", EVHTTP_REQ_GET, h_channel_peek},
};

/* --tls-required=true on the plain listener: the literal body upstream writes by hand. */
static void tls_required_cb(struct evhttp_request *req, void *arg)
{
    struct nsqd_http *h = arg;
    struct evbuffer *out = evbuffer_new();
    if (!out) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    evbuffer_add_printf(out, "{\"message\": \"TLS_REQUIRED\", \"https_port\": %d}",
                        h->n->https_port);
    struct evkeyvalq *hdr = evhttp_request_get_output_headers(req);
    evhttp_add_header(hdr, "X-NSQ-Content-Type", "nsq; version=1.0");
    evhttp_add_header(hdr, "Content-Type", "application/json; charset=utf-8");
    nsq_http_send(req, 403, "Forbidden", out);
    evbuffer_free(out);
}

struct nsqd_http *nsqd_http_new(struct nsqd *n, struct evhttp *http, bool is_tls)
{
    struct nsqd_http *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->n = n;
    size_t nroutes = sizeof(routes) / sizeof(routes[0]);
    if (!n->opts->http_peek)
        nroutes--;
    h->router = nsq_http_router_new("", routes, nroutes, h);
    if (!h->router) {
        free(h);
        return NULL;
    }
    nsq_http_router_attach(h->router, http);
    if (!is_tls && n->opts->tls_required == NSQD_TLS_REQUIRED)
        evhttp_set_gencb(http, tls_required_cb, h);
    return h;
}

void nsqd_http_free(struct nsqd_http *h)
{
    if (!h)
        return;
    nsq_http_router_free(h->router);
    free(h);
}
