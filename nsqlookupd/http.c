/*
 * http: handlers of nsqlookupd's HTTP API. Each handler reads query parameters through the
 * router's call object, queries registration_db and writes a Go-compatible JSON answer (field
 * order as upstream's structs, sorted keys where upstream encodes a map).
 *
 * Upstream treats "*" in a topic or channel query as a wildcard by accident of its lookup
 * helpers; here names are always matched literally.
 */
#include "http.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "nsq_http_server.h"
#include "nsq_json.h"
#include "nsq_log.h"
#include "nsq_names.h"
#include "nsq_time.h"
#include "nsq_version.h"
#include "nsqlookupd.h"
#include "registration_db.h"

/* Go's zero time.Time as UnixNano(): what /debug reports for a never-tombstoned producer. */
#define GO_ZERO_TIME_UNIX_NANO (-6795364578871345152LL)
#define DEBUG_KEYS_INITIAL_CAP 16
#define NODE_PORT_SUFFIX_LEN   32 /* ":<port>" after a broadcast address */

struct lookup_http {
    struct evhttp *http;
    struct evconnlistener *listener; /* owned by http */
    struct nsq_http_router *router;
};

static struct nsqlookupd *ld_of(struct nsq_http_call *call)
{
    return call->ctx;
}

/* Sends the JSON in body (drained) as a V1 answer; frees body. */
static void reply_json(struct nsq_http_call *call, struct evbuffer *body)
{
    nsq_http_reply_json(call->req, HTTP_OK, body);
    evbuffer_free(body);
}

/* Starts a JSON answer; NULL after replying 500 when out of memory. */
static struct evbuffer *json_begin(struct nsq_http_call *call, struct nsq_json *j)
{
    struct evbuffer *body = evbuffer_new();
    if (body == NULL) {
        nsq_http_reply_error(call->req, HTTP_INTERNAL, "INTERNAL_ERROR");
        return NULL;
    }
    nsq_json_init(j, body);
    return body;
}

/* Endpoints built on upstream's NewReqParams reject a malformed query string. */
static bool params_ok(struct nsq_http_call *call)
{
    return nsq_http_require_query(call);
}

static void write_peer(struct nsq_json *j, const struct lookup_peer *p)
{
    nsq_json_kv_string(j, "remote_address", p->remote_address);
    nsq_json_kv_string(j, "hostname", p->hostname);
    nsq_json_kv_string(j, "broadcast_address", p->broadcast_address);
    nsq_json_kv_int(j, "tcp_port", p->tcp_port);
    nsq_json_kv_int(j, "http_port", p->http_port);
    nsq_json_kv_string(j, "version", p->version);
    /* nsqd's topology (upstream's topology experiment), only when it sent one */
    if (p->topology_zone && p->topology_zone[0])
        nsq_json_kv_string(j, "topology_zone", p->topology_zone);
    if (p->topology_region && p->topology_region[0])
        nsq_json_kv_string(j, "topology_region", p->topology_region);
}

static void append_string(const char *s, void *arg)
{
    nsq_json_string(arg, s);
}

/* ---- handlers ---- */

/* The "topic" query argument; with must_be_valid, also a valid topic name. NULL after replying 400
   (MISSING_ARG_TOPIC or INVALID_ARG_TOPIC). The string belongs to call. */
static const char *topic_arg(struct nsq_http_call *call, bool must_be_valid)
{
    const char *topic = nsq_http_query(call, "topic");
    if (topic == NULL) {
        nsq_http_reply_error(call->req, HTTP_BADREQUEST, "MISSING_ARG_TOPIC");
        return NULL;
    }
    if (must_be_valid && !nsq_topic_name_valid(topic, strlen(topic))) {
        nsq_http_reply_error(call->req, HTTP_BADREQUEST, "INVALID_ARG_TOPIC");
        return NULL;
    }
    return topic;
}

static void do_ping(struct nsq_http_call *call)
{
    nsq_http_reply_plain(call->req, HTTP_OK, "OK");
}

static void do_info(struct nsq_http_call *call)
{
    struct nsq_json j;
    struct evbuffer *body = json_begin(call, &j);
    if (body == NULL)
        return;
    nsq_json_object_begin(&j);
    nsq_json_kv_string(&j, "version", NSQ_VERSION);
    nsq_json_object_end(&j);
    reply_json(call, body);
}

static void do_topics(struct nsq_http_call *call)
{
    struct nsq_json j;
    struct evbuffer *body = json_begin(call, &j);
    if (body == NULL)
        return;
    nsq_json_object_begin(&j);
    nsq_json_key(&j, "topics");
    nsq_json_array_begin(&j);
    registration_db_each_topic(ld_of(call)->db, append_string, &j);
    nsq_json_array_end(&j);
    nsq_json_object_end(&j);
    reply_json(call, body);
}

static void do_channels(struct nsq_http_call *call)
{
    if (!params_ok(call))
        return;
    const char *topic = topic_arg(call, false);
    if (topic == NULL)
        return;
    struct nsq_json j;
    struct evbuffer *body = json_begin(call, &j);
    if (body == NULL)
        return;
    nsq_json_object_begin(&j);
    nsq_json_key(&j, "channels");
    nsq_json_array_begin(&j);
    registration_db_each_channel(ld_of(call)->db, topic, append_string, &j);
    nsq_json_array_end(&j);
    nsq_json_object_end(&j);
    reply_json(call, body);
}

static void do_lookup(struct nsq_http_call *call)
{
    struct nsqlookupd *ld = ld_of(call);
    if (!params_ok(call))
        return;
    const char *topic = topic_arg(call, false);
    if (topic == NULL)
        return;
    if (!registration_db_has_key(ld->db, REG_TOPIC, topic, "")) {
        nsq_http_reply_error(call->req, HTTP_NOTFOUND, "TOPIC_NOT_FOUND");
        return;
    }
    struct nsq_json j;
    struct evbuffer *body = json_begin(call, &j);
    if (body == NULL)
        return;
    int64_t now = nsq_now_ns();
    nsq_json_object_begin(&j);
    nsq_json_key(&j, "channels");
    nsq_json_array_begin(&j);
    registration_db_each_channel(ld->db, topic, append_string, &j);
    nsq_json_array_end(&j);
    nsq_json_key(&j, "producers");
    nsq_json_array_begin(&j);
    for (struct lookup_producer *p = registration_db_producers(ld->db, REG_TOPIC, topic, "");
         p != NULL; p = p->reg_next) {
        if (!lookup_producer_is_active(p, now, ld->opts->inactive_producer_timeout,
                                       ld->opts->tombstone_lifetime))
            continue;
        nsq_json_object_begin(&j);
        write_peer(&j, p->peer);
        nsq_json_object_end(&j);
    }
    nsq_json_array_end(&j);
    nsq_json_object_end(&j);
    reply_json(call, body);
}

static void do_nodes(struct nsq_http_call *call)
{
    struct nsqlookupd *ld = ld_of(call);
    struct nsq_json j;
    struct evbuffer *body = json_begin(call, &j);
    if (body == NULL)
        return;
    int64_t now = nsq_now_ns();
    nsq_json_object_begin(&j);
    nsq_json_key(&j, "producers");
    nsq_json_array_begin(&j);
    for (struct lookup_producer *c = registration_db_producers(ld->db, REG_CLIENT, "", "");
         c != NULL; c = c->reg_next) {
        /* tombstones do not hide a node, only inactivity does */
        if (!lookup_producer_is_active(c, now, ld->opts->inactive_producer_timeout, 0))
            continue;
        const struct lookup_peer *peer = c->peer;
        nsq_json_object_begin(&j);
        write_peer(&j, peer);
        /* the peer's topic producers, in registration order: tombstones[] parallels topics[] */
        nsq_json_key(&j, "tombstones");
        nsq_json_array_begin(&j);
        for (const struct lookup_producer *p = peer->first; p != NULL; p = p->peer_next)
            if (lookup_producer_category(p) == REG_TOPIC)
                nsq_json_bool(&j,
                              lookup_producer_is_tombstoned(p, now, ld->opts->tombstone_lifetime));
        nsq_json_array_end(&j);
        nsq_json_key(&j, "topics");
        nsq_json_array_begin(&j);
        for (const struct lookup_producer *p = peer->first; p != NULL; p = p->peer_next)
            if (lookup_producer_category(p) == REG_TOPIC)
                nsq_json_string(&j, lookup_producer_key(p));
        nsq_json_array_end(&j);
        nsq_json_object_end(&j);
    }
    nsq_json_array_end(&j);
    nsq_json_object_end(&j);
    reply_json(call, body);
}

/* /debug: collect the keys, sort them (Go encodes the map with sorted keys), then write. */
struct debug_key {
    char *name; /* "category:key:subkey" */
    struct lookup_producer *first;
};

struct debug_keys {
    struct debug_key *items;
    size_t len, cap;
    bool oom;
};

static void collect_key(enum reg_category cat, const char *key, const char *subkey,
                        struct lookup_producer *first, void *arg)
{
    struct debug_keys *k = arg;
    if (k->oom)
        return;
    if (k->len == k->cap) {
        size_t ncap = k->cap == 0 ? DEBUG_KEYS_INITIAL_CAP : k->cap * 2;
        struct debug_key *n = realloc(k->items, ncap * sizeof(*n));
        if (n == NULL) {
            k->oom = true;
            return;
        }
        k->items = n;
        k->cap = ncap;
    }
    char *name = NULL;
    if (asprintf(&name, "%s:%s:%s", registration_category_name(cat), key, subkey) < 0) {
        k->oom = true;
        return;
    }
    k->items[k->len].name = name;
    k->items[k->len].first = first;
    k->len++;
}

static int cmp_key(const void *a, const void *b)
{
    return strcmp(((const struct debug_key *)a)->name, ((const struct debug_key *)b)->name);
}

static void do_debug(struct nsq_http_call *call)
{
    struct nsqlookupd *ld = ld_of(call);
    struct debug_keys keys = {0};
    registration_db_each_key(ld->db, collect_key, &keys);
    struct nsq_json j;
    struct evbuffer *body = keys.oom ? NULL : json_begin(call, &j);
    if (body == NULL) {
        if (keys.oom)
            nsq_http_reply_error(call->req, HTTP_INTERNAL, "INTERNAL_ERROR");
        goto out;
    }
    if (keys.len > 1)
        qsort(keys.items, keys.len, sizeof(*keys.items), cmp_key);
    nsq_json_object_begin(&j);
    for (size_t i = 0; i < keys.len; i++) {
        nsq_json_key(&j, keys.items[i].name);
        nsq_json_array_begin(&j);
        for (const struct lookup_producer *p = keys.items[i].first; p != NULL; p = p->reg_next) {
            const struct lookup_peer *peer = p->peer;
            nsq_json_object_begin(&j);
            nsq_json_kv_string(&j, "broadcast_address", peer->broadcast_address);
            nsq_json_kv_string(&j, "hostname", peer->hostname);
            nsq_json_kv_int(&j, "http_port", peer->http_port);
            nsq_json_kv_string(&j, "id", peer->id);
            nsq_json_kv_int(&j, "last_update", peer->last_update_ns);
            nsq_json_kv_int(&j, "tcp_port", peer->tcp_port);
            nsq_json_kv_bool(&j, "tombstoned", p->tombstoned);
            nsq_json_kv_int(&j, "tombstoned_at",
                            p->tombstoned ? p->tombstoned_at_ns : GO_ZERO_TIME_UNIX_NANO);
            nsq_json_kv_string(&j, "version", peer->version);
            nsq_json_object_end(&j);
        }
        nsq_json_array_end(&j);
    }
    nsq_json_object_end(&j);
    reply_json(call, body);
out:
    for (size_t i = 0; i < keys.len; i++)
        free(keys.items[i].name);
    free(keys.items);
}

/* Empty 200 answer of the V1 encoder. */
static void reply_empty(struct nsq_http_call *call)
{
    nsq_http_reply_text(call->req, HTTP_OK, "", 0);
}

static void reply_oom(struct nsq_http_call *call)
{
    nsq_http_reply_error(call->req, HTTP_INTERNAL, "INTERNAL_ERROR");
}

static void do_topic_create(struct nsq_http_call *call)
{
    struct nsqlookupd *ld = ld_of(call);
    if (!params_ok(call))
        return;
    const char *topic = topic_arg(call, true);
    if (topic == NULL)
        return;
    nsq_info("DB: adding topic(%s)", topic);
    if (registration_db_add_key(ld->db, REG_TOPIC, topic, "") != 0) {
        reply_oom(call);
        return;
    }
    reply_empty(call);
}

static void do_topic_delete(struct nsq_http_call *call)
{
    if (!params_ok(call))
        return;
    const char *topic = topic_arg(call, false);
    if (topic == NULL)
        return;
    nsq_info("DB: removing topic(%s) and its channels", topic);
    registration_db_remove_topic(ld_of(call)->db, topic);
    reply_empty(call);
}

static void do_topic_tombstone(struct nsq_http_call *call)
{
    struct nsqlookupd *ld = ld_of(call);
    if (!params_ok(call))
        return;
    const char *topic = topic_arg(call, false);
    if (topic == NULL)
        return;
    const char *node = nsq_http_query(call, "node");
    if (node == NULL) {
        nsq_http_reply_error(call->req, HTTP_BADREQUEST, "MISSING_ARG_NODE");
        return;
    }
    nsq_info("DB: setting tombstone for producer@%s of topic(%s)", node, topic);
    int64_t now = nsq_now_ns();
    for (struct lookup_producer *p = registration_db_producers(ld->db, REG_TOPIC, topic, "");
         p != NULL; p = p->reg_next) {
        char this_node[NSQ_NET_ADDRSTRLEN + NODE_PORT_SUFFIX_LEN];
        snprintf(this_node, sizeof(this_node), "%s:%lld", p->peer->broadcast_address,
                 (long long)p->peer->http_port);
        if (strcmp(this_node, node) == 0)
            lookup_producer_tombstone(p, now);
    }
    reply_empty(call);
}

/* http-api.md §0.3: topic then channel, present and valid. */
static bool topic_channel_args(struct nsq_http_call *call, const char **topic, const char **channel)
{
    *topic = topic_arg(call, true);
    if (*topic == NULL)
        return false;
    *channel = nsq_http_query(call, "channel");
    if (*channel == NULL) {
        nsq_http_reply_error(call->req, HTTP_BADREQUEST, "MISSING_ARG_CHANNEL");
        return false;
    }
    if (!nsq_channel_name_valid(*channel, strlen(*channel))) {
        nsq_http_reply_error(call->req, HTTP_BADREQUEST, "INVALID_ARG_CHANNEL");
        return false;
    }
    return true;
}

static void do_channel_create(struct nsq_http_call *call)
{
    struct nsqlookupd *ld = ld_of(call);
    const char *topic, *channel;
    if (!params_ok(call) || !topic_channel_args(call, &topic, &channel))
        return;
    nsq_info("DB: adding channel(%s) in topic(%s)", channel, topic);
    if (registration_db_add_key(ld->db, REG_CHANNEL, topic, channel) != 0 ||
        registration_db_add_key(ld->db, REG_TOPIC, topic, "") != 0) {
        reply_oom(call);
        return;
    }
    reply_empty(call);
}

static void do_channel_delete(struct nsq_http_call *call)
{
    struct nsqlookupd *ld = ld_of(call);
    const char *topic, *channel;
    if (!params_ok(call) || !topic_channel_args(call, &topic, &channel))
        return;
    if (!registration_db_remove_key(ld->db, REG_CHANNEL, topic, channel)) {
        nsq_http_reply_error(call->req, HTTP_NOTFOUND, "CHANNEL_NOT_FOUND");
        return;
    }
    nsq_info("DB: removing channel(%s) from topic(%s)", channel, topic);
    reply_empty(call);
}

static const struct nsq_http_route lookup_routes[] = {
        {"/ping", EVHTTP_REQ_GET, do_ping},
        {"/info", EVHTTP_REQ_GET, do_info},
        {"/debug", EVHTTP_REQ_GET, do_debug},
        {"/lookup", EVHTTP_REQ_GET, do_lookup},
        {"/topics", EVHTTP_REQ_GET, do_topics},
        {"/channels", EVHTTP_REQ_GET, do_channels},
        {"/nodes", EVHTTP_REQ_GET, do_nodes},
        {"/topic/create", EVHTTP_REQ_POST, do_topic_create},
        {"/topic/delete", EVHTTP_REQ_POST, do_topic_delete},
        {"/channel/create", EVHTTP_REQ_POST, do_channel_create},
        {"/channel/delete", EVHTTP_REQ_POST, do_channel_delete},
        {"/topic/tombstone", EVHTTP_REQ_POST, do_topic_tombstone},
};

struct lookup_http *lookup_http_new(struct nsqlookupd *ld, evutil_socket_t fd)
{
    struct lookup_http *h = calloc(1, sizeof(*h));
    if (h == NULL)
        goto err;
    h->http = evhttp_new(ld->base);
    if (h->http == NULL)
        goto err;
    h->router = nsq_http_router_new("", lookup_routes,
                                    sizeof(lookup_routes) / sizeof(lookup_routes[0]), ld);
    if (h->router == NULL)
        goto err;
    nsq_http_router_attach(h->router, h->http);
    evhttp_set_max_body_size(h->http, NSQLOOKUPD_HTTP_MAX_BODY);
    evhttp_set_max_headers_size(h->http, NSQLOOKUPD_HTTP_MAX_HEADERS);
    struct evhttp_bound_socket *bound = evhttp_accept_socket_with_handle(h->http, fd);
    if (bound == NULL)
        goto err;
    h->listener = evhttp_bound_socket_get_listener(bound);
    if (nsqlookupd_guard_listener(ld, h->listener) != 0) {
        h->listener = NULL;
        lookup_http_free(h); /* closes fd with the bound socket */
        return NULL;
    }
    return h;
err:
    close(fd); /* never bound to the server */
    lookup_http_free(h);
    return NULL;
}

void lookup_http_free(struct lookup_http *h)
{
    if (h == NULL)
        return;
    nsqlookupd_unguard_listener(h->listener);
    if (h->http != NULL)
        evhttp_free(h->http);
    nsq_http_router_free(h->router);
    free(h);
}
