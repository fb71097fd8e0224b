/*
 * lookup: the set of lookupd peers of one nsqd, the 15 s PING timer, REGISTER/UNREGISTER fan-out
 * and the HTTP channel query used for channel pre-creation. See lookup.h.
 *
 * Peers are kept in an array in the order of --lookupd-tcp-address. A peer does its own connection
 * management (lookup_peer.h); this module supplies what the peer sends on every (re)connect:
 * IDENTIFY with this nsqd's addresses, then one REGISTER per current topic/channel.
 */
#include "lookup.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <event2/dns.h>
#include <event2/event.h>

#include "lookup_peer.h"
#include "nsq_http_client.h"
#include "nsq_json.h"
#include "nsq_log.h"
#include "nsq_net.h"
#include "nsq_options.h"
#include "nsq_version.h"
#include "nsqd.h"
#include "topology.h"

#define URL_LEN 2048
/* --max-body-size default, bounding a lookupd reply when the option is unset. */
#define DEFAULT_MAX_REPLY (5 * 1024 * 1024)

struct channel_query;

struct nsqd_lookup {
    struct nsqd *n;
    struct event_base *base;
    struct evdns_base *dns;
    struct lookup_peer **peers; /* owned */
    size_t n_peers;
    struct event *ping_ev;
    struct nsq_http_client *http;  /* created on the first channel query */
    struct channel_query *queries; /* outstanding queries (linked) */
    bool closing;                  /* inside nsqd_lookup_free */
};

/* One nsqd_lookup_query_channels call: the union of the answers collected so far. */
struct channel_query {
    struct nsqd_lookup *l; /* owner (NULL when none was given) */
    struct channel_query *next;
    int remaining;
    char **names;
    size_t n_names, cap;
    void (*done)(const struct nsq_strlist *channels, void *arg);
    void *arg;
};

/* ---- peers ---- */

static void register_one(const char *topic, const char *channel, void *arg)
{
    struct lookup_peer *p = arg;
    nsq_debug("LOOKUPD(%s): REGISTER %s %s", lookup_peer_addr(p), topic, channel ? channel : "");
    lookup_peer_command(p, "REGISTER", topic, channel);
}

/* Builds {"broadcast_address":..,"hostname":..,"http_port":..,"tcp_port":..,"version":..}, plus
   "topology_zone" and "topology_region" when set. */
static void identify_body(struct nsqd *n, struct evbuffer *out)
{
    struct nsq_json j;
    nsq_json_init(&j, out);
    nsq_json_object_begin(&j);
    nsq_json_key(&j, "broadcast_address");
    nsq_json_string(&j, nsqd_broadcast_address(n));
    nsq_json_key(&j, "hostname");
    nsq_json_string(&j, nsqd_hostname(n));
    nsq_json_key(&j, "http_port");
    nsq_json_int(&j, nsqd_broadcast_http_port(n));
    nsq_json_key(&j, "tcp_port");
    nsq_json_int(&j, nsqd_broadcast_tcp_port(n));
    nsq_json_key(&j, "version");
    nsq_json_string(&j, NSQ_VERSION);
    if (topology_configured(n->opts)) { /* as upstream's topology experiment */
        nsq_json_kv_string(&j, "topology_zone", n->opts->topology_zone);
        nsq_json_kv_string(&j, "topology_region", n->opts->topology_region);
    }
    nsq_json_object_end(&j);
}

static void peer_connected(struct lookup_peer *p, void *arg)
{
    struct nsqd_lookup *l = arg;
    struct evbuffer *body = evbuffer_new();
    size_t len;

    if (body == NULL)
        return;
    identify_body(l->n, body);
    len = evbuffer_get_length(body);
    lookup_peer_identify(p, (const char *)evbuffer_pullup(body, -1), len);
    evbuffer_free(body);
    nsqd_foreach_registration(l->n, register_one, p);
}

static const struct lookup_peer_callbacks peer_cbs = {
        .connected = peer_connected,
        .identified = NULL,
};

static size_t max_reply_size(struct nsqd_lookup *l)
{
    const struct nsqd_options *o = nsqd_opts(l->n);
    return o->max_body_size > 0 ? (size_t)o->max_body_size : (size_t)DEFAULT_MAX_REPLY;
}

static void ping_cb(evutil_socket_t fd, short what, void *arg)
{
    struct nsqd_lookup *l = arg;
    for (size_t i = 0; i < l->n_peers; i++)
        lookup_peer_command(l->peers[i], "PING", NULL, NULL);
}

int nsqd_lookup_set_addresses(struct nsqd_lookup *l, const struct nsq_strlist *addrs)
{
    struct lookup_peer **next;
    size_t n_next = 0;
    int rc = 0;

    next = calloc(addrs->len ? addrs->len : 1, sizeof(*next));
    if (next == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < addrs->len; i++) {
        const char *a = addrs->items[i];
        struct lookup_peer *p = NULL;
        bool dup = false;
        for (size_t k = 0; k < n_next; k++)
            if (strcmp(lookup_peer_addr(next[k]), a) == 0)
                dup = true;
        if (dup)
            continue;
        for (size_t k = 0; k < l->n_peers; k++) {
            if (l->peers[k] != NULL && strcmp(lookup_peer_addr(l->peers[k]), a) == 0) {
                p = l->peers[k];
                l->peers[k] = NULL; /* moved */
            }
        }
        if (p == NULL) {
            char host[LOOKUP_PEER_HOST_LEN];
            int port;
            if (nsq_split_host_port(a, host, sizeof(host), &port) < 0 || port == 0) {
                /* Skipped; the other addresses still count. */
                nsq_error("LOOKUP(%s): invalid address", a);
                rc = -EINVAL;
                continue;
            }
            nsq_info("LOOKUP(%s): adding peer", a);
            p = lookup_peer_new(l->base, l->dns, a, max_reply_size(l), &peer_cbs, l);
            if (p == NULL)
                rc = -ENOMEM;
        }
        if (p != NULL)
            next[n_next++] = p;
    }
    for (size_t k = 0; k < l->n_peers; k++) {
        if (l->peers[k] != NULL) {
            nsq_info("LOOKUP(%s): removing peer", lookup_peer_addr(l->peers[k]));
            lookup_peer_free(l->peers[k]);
        }
    }
    free(l->peers);
    l->peers = next;
    l->n_peers = n_next;
    return rc;
}

struct nsqd_lookup *nsqd_lookup_new(struct nsqd *n)
{
    struct nsqd_lookup *l = calloc(1, sizeof(*l));
    struct timeval ping = {.tv_sec = NSQD_LOOKUP_PING_INTERVAL_NS / 1000000000LL, .tv_usec = 0};

    if (l == NULL)
        return NULL;
    l->n = n;
    l->base = nsqd_base(n);
    l->dns = evdns_base_new(l->base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
    /* Without a resolver configuration, names are resolved by blocking getaddrinfo (dns NULL). */
    l->ping_ev = event_new(l->base, -1, EV_PERSIST, ping_cb, l);
    if (l->ping_ev == NULL)
        goto err;
    event_add(l->ping_ev, &ping);
    if (nsqd_lookup_set_addresses(l, &nsqd_opts(n)->nsqlookupd_tcp_addresses) == -ENOMEM)
        goto err;
    return l;
err:
    nsqd_lookup_free(l);
    return NULL;
}

void nsqd_lookup_free(struct nsqd_lookup *l)
{
    if (l == NULL)
        return;
    /* Cancelling the HTTP client completes every pending query (done gets what was collected). */
    l->closing = true;
    nsq_http_client_free(l->http);
    l->http = NULL;
    for (size_t i = 0; i < l->n_peers; i++)
        lookup_peer_free(l->peers[i]);
    free(l->peers);
    if (l->ping_ev != NULL)
        event_free(l->ping_ev);
    if (l->dns != NULL)
        evdns_base_free(l->dns, 0);
    free(l);
}

void nsqd_lookup_notify(struct nsqd_lookup *l, const char *topic, const char *channel,
                        bool registered)
{
    const char *cmd = registered ? "REGISTER" : "UNREGISTER";
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->n_peers; i++) {
        nsq_info("LOOKUPD(%s): %s %s %s %s", lookup_peer_addr(l->peers[i]),
                 channel ? "channel" : "topic", cmd, topic, channel ? channel : "");
        lookup_peer_command(l->peers[i], cmd, topic, channel);
    }
}

int nsqd_lookup_count(const struct nsqd_lookup *l)
{
    return l ? (int)l->n_peers : 0;
}

int nsqd_lookup_known_count(const struct nsqd_lookup *l)
{
    int k = 0;
    for (size_t i = 0; l != NULL && i < l->n_peers; i++)
        if (lookup_peer_info(l->peers[i]) != NULL)
            k++;
    return k;
}

/* ---- channel queries ---- */

static void query_add_name(struct channel_query *q, const char *name)
{
    for (size_t i = 0; i < q->n_names; i++)
        if (strcmp(q->names[i], name) == 0)
            return;
    if (q->n_names == q->cap) {
        size_t ncap = q->cap ? q->cap * 2 : 8;
        char **nn = realloc(q->names, ncap * sizeof(*nn));
        if (nn == NULL)
            return;
        q->names = nn;
        q->cap = ncap;
    }
    q->names[q->n_names] = strdup(name);
    if (q->names[q->n_names] != NULL)
        q->n_names++;
}

static void query_unlink(struct channel_query *q)
{
    if (q->l == NULL)
        return;
    for (struct channel_query **pp = &q->l->queries; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == q) {
            *pp = q->next;
            break;
        }
    }
}

/* Calls done and frees q. */
static void query_finish(struct channel_query *q)
{
    struct nsq_strlist list = {.items = q->names, .len = q->n_names};
    query_unlink(q);
    q->done(&list, q->arg);
    for (size_t i = 0; i < q->n_names; i++)
        free(q->names[i]);
    free(q->names);
    free(q);
}

/* Collects the names of {"channels":[...]} (or the legacy {"data":{"channels":[...]}}). */
static void query_parse(struct channel_query *q, const char *body, size_t len)
{
    cJSON *root = cJSON_ParseWithLength(body, len);
    const cJSON *chans, *it;

    if (root == NULL)
        return;
    chans = cJSON_GetObjectItemCaseSensitive(root, "channels");
    if (chans == NULL) {
        const cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
        chans = cJSON_GetObjectItemCaseSensitive(data, "channels");
    }
    cJSON_ArrayForEach(it, chans)
    {
        if (cJSON_IsString(it) && it->valuestring != NULL)
            query_add_name(q, it->valuestring);
    }
    cJSON_Delete(root);
}

static void query_done(const struct nsq_http_response *resp, void *arg)
{
    struct channel_query *q = arg;
    if (resp->error != NULL) {
        if (q->l == NULL || !q->l->closing)
            nsq_error("LOOKUPD: failed to query channels - %s", resp->error);
    } else if (resp->status != 200)
        nsq_error("LOOKUPD: failed to query channels - got response %ld", resp->status);
    else
        query_parse(q, resp->body, resp->body_len);
    if (--q->remaining == 0)
        query_finish(q);
}

/* Percent-encodes s for a query value (names only hold [.a-zA-Z0-9_#-]). */
static void url_escape(const char *s, char *out, size_t len)
{
    size_t o = 0;
    for (; *s != '\0' && o + 4 < len; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '.' || c == '_' || c == '-')
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, len - o, "%%%02X", c);
    }
    out[o] = '\0';
}

static struct nsq_http_client *lookup_http(struct nsqd_lookup *l)
{
    if (l->http == NULL) {
        const struct nsqd_options *o = nsqd_opts(l->n);
        struct nsq_http_client_options ho = {
                .connect_timeout_ns = o->http_client_connect_timeout,
                .request_timeout_ns = o->http_client_request_timeout,
        };
        l->http = nsq_http_client_new(l->base, &ho);
    }
    return l->http;
}

void nsqd_lookup_query_channels(struct nsqd_lookup *l, const char *topic,
                                void (*done)(const struct nsq_strlist *channels, void *arg),
                                void *arg)
{
    struct channel_query *q = calloc(1, sizeof(*q));
    struct nsq_http_client *http;
    char escaped[URL_LEN / 2];

    if (q == NULL) {
        struct nsq_strlist empty = {0};
        done(&empty, arg);
        return;
    }
    q->l = l;
    q->done = done;
    q->arg = arg;
    q->remaining = 1; /* held by this function until every request is issued */
    if (l != NULL) {
        q->next = l->queries;
        l->queries = q;
    }
    if (l != NULL && l->n_peers > 0 && nsqd_lookup_known_count(l) == 0)
        nsq_error("no available nsqlookupd to query for channels to pre-create for topic %s",
                  topic);
    http = (l != NULL && nsqd_lookup_known_count(l) > 0) ? lookup_http(l) : NULL;
    url_escape(topic, escaped, sizeof(escaped));
    for (size_t i = 0; http != NULL && i < l->n_peers; i++) {
        const struct lookup_peer_info *info = lookup_peer_info(l->peers[i]);
        char hostport[LOOKUP_PEER_HOST_LEN + 16];
        char url[URL_LEN];
        if (info == NULL)
            continue;
        if (nsq_join_host_port(info->broadcast_address, info->http_port, hostport,
                               sizeof(hostport)) < 0)
            continue;
        snprintf(url, sizeof(url), "http://%s/channels?topic=%s", hostport, escaped);
        q->remaining++;
        if (nsq_http_client_request(http, "GET", url, NULL, 0, NULL, query_done, q) < 0) {
            nsq_error("LOOKUPD(%s): failed to query channels", lookup_peer_addr(l->peers[i]));
            q->remaining--;
        }
    }
    if (--q->remaining == 0)
        query_finish(q);
}
