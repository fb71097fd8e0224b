/*
 * lookup_peer: one nsqd → nsqlookupd connection; see lookup_peer.h for the protocol, the deadlines
 * and the reconnect policy.
 */
#include "lookup_peer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>

#include "nsq_log.h"
#include "nsq_net.h"

#define LOOKUP_MAGIC_V1 "  V1"
#define REPLY_SIZE_LEN  4
#define REPLY_FIFO_INIT 16
#define LOG_REPLY_MAX   256

enum peer_state { PEER_IDLE, PEER_CONNECTING, PEER_CONNECTED };

/* What an outstanding reply answers; IDENTIFY replies carry the lookupd's self-description. */
enum reply_kind { REPLY_IDENTIFY, REPLY_OTHER };

struct lookup_peer {
    struct event_base *base;
    struct evdns_base *dns;
    char *addr; /* "host:port" as configured */
    char host[LOOKUP_PEER_HOST_LEN];
    int port;
    size_t max_reply;
    struct lookup_peer_callbacks cbs;
    void *arg;

    enum peer_state state;
    struct bufferevent *bev; /* non-NULL while CONNECTING/CONNECTED */
    struct event *retry_ev;  /* reconnect timer */
    bool retry_pending;
    int64_t backoff_ns;

    /* FIFO of outstanding replies (ring buffer). */
    uint8_t *fifo;
    size_t fifo_cap, fifo_head, fifo_len;

    bool has_info;
    struct lookup_peer_info info;
};

static void peer_connect(struct lookup_peer *p);

static struct timeval ns_to_tv(int64_t ns)
{
    struct timeval tv = {.tv_sec = ns / 1000000000LL, .tv_usec = (ns % 1000000000LL) / 1000};
    return tv;
}

static void peer_set_read_deadline(struct lookup_peer *p, bool on)
{
    struct timeval io = ns_to_tv(LOOKUP_PEER_IO_TIMEOUT_NS);
    if (p->bev != NULL)
        bufferevent_set_timeouts(p->bev, on ? &io : NULL, &io);
}

static void peer_schedule_retry(struct lookup_peer *p)
{
    struct timeval tv = ns_to_tv(p->backoff_ns);
    if (p->retry_pending)
        return;
    p->retry_pending = true;
    evtimer_add(p->retry_ev, &tv);
    p->backoff_ns *= 2;
    if (p->backoff_ns > LOOKUP_PEER_BACKOFF_MAX_NS)
        p->backoff_ns = LOOKUP_PEER_BACKOFF_MAX_NS;
}

/* Drops the connection and every outstanding reply; reconnects after the backoff. */
static void peer_close(struct lookup_peer *p, bool retry)
{
    if (p->bev != NULL) {
        bufferevent_free(p->bev);
        p->bev = NULL;
    }
    p->state = PEER_IDLE;
    p->fifo_head = 0;
    p->fifo_len = 0;
    if (retry)
        peer_schedule_retry(p);
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
    struct lookup_peer *p = arg;
    p->retry_pending = false;
    if (p->state == PEER_IDLE)
        peer_connect(p);
}

static int fifo_push(struct lookup_peer *p, enum reply_kind k)
{
    if (p->fifo_len == p->fifo_cap) {
        size_t ncap = p->fifo_cap ? p->fifo_cap * 2 : REPLY_FIFO_INIT;
        uint8_t *n = malloc(ncap);
        if (n == NULL)
            return -ENOMEM;
        for (size_t i = 0; i < p->fifo_len; i++)
            n[i] = p->fifo[(p->fifo_head + i) % p->fifo_cap];
        free(p->fifo);
        p->fifo = n;
        p->fifo_cap = ncap;
        p->fifo_head = 0;
    }
    p->fifo[(p->fifo_head + p->fifo_len) % p->fifo_cap] = (uint8_t)k;
    p->fifo_len++;
    if (p->fifo_len == 1)
        peer_set_read_deadline(p, true);
    return 0;
}

static enum reply_kind fifo_pop(struct lookup_peer *p)
{
    enum reply_kind k = (enum reply_kind)p->fifo[p->fifo_head];
    p->fifo_head = (p->fifo_head + 1) % p->fifo_cap;
    p->fifo_len--;
    if (p->fifo_len == 0)
        peer_set_read_deadline(p, false);
    return k;
}

static void copy_json_string(const cJSON *obj, const char *key, char *dst, size_t len)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (cJSON_IsString(v) && v->valuestring != NULL)
        snprintf(dst, len, "%s", v->valuestring);
}

static int json_int(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNumber(v) ? (int)v->valuedouble : 0;
}

/* Returns false if the peer must be closed. */
static bool handle_identify_reply(struct lookup_peer *p, const char *data, size_t len)
{
    struct lookup_peer_info info;
    cJSON *root;

    if (len == strlen("E_INVALID") && memcmp(data, "E_INVALID", len) == 0) {
        nsq_error("LOOKUPD(%s): IDENTIFY returned E_INVALID", p->addr);
        return false;
    }
    root = cJSON_ParseWithLength(data, len);
    if (root == NULL || !cJSON_IsObject(root)) {
        nsq_error("LOOKUPD(%s): error parsing response - %.*s", p->addr,
                  (int)(len > LOG_REPLY_MAX ? LOG_REPLY_MAX : len), data);
        cJSON_Delete(root);
        return false;
    }
    memset(&info, 0, sizeof(info));
    copy_json_string(root, "broadcast_address", info.broadcast_address,
                     sizeof(info.broadcast_address));
    copy_json_string(root, "hostname", info.hostname, sizeof(info.hostname));
    copy_json_string(root, "version", info.version, sizeof(info.version));
    info.http_port = json_int(root, "http_port");
    info.tcp_port = json_int(root, "tcp_port");
    cJSON_Delete(root);

    p->info = info;
    p->has_info = true;
    p->backoff_ns = LOOKUP_PEER_BACKOFF_MIN_NS;
    nsq_info("LOOKUPD(%s): peer info {TCPPort:%d HTTPPort:%d Version:%s BroadcastAddress:%s}",
             p->addr, info.tcp_port, info.http_port, info.version, info.broadcast_address);
    if (p->cbs.identified != NULL)
        p->cbs.identified(p, p->arg);
    return true;
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    struct lookup_peer *p = arg;
    struct evbuffer *in = bufferevent_get_input(bev);

    for (;;) {
        uint8_t hdr[REPLY_SIZE_LEN];
        uint32_t size;
        size_t avail = evbuffer_get_length(in);
        char *data;

        if (avail < REPLY_SIZE_LEN)
            return;
        evbuffer_copyout(in, hdr, REPLY_SIZE_LEN);
        size = ((uint32_t)hdr[0] << 24) | ((uint32_t)hdr[1] << 16) | ((uint32_t)hdr[2] << 8) |
               (uint32_t)hdr[3];
        if (size > p->max_reply || p->fifo_len == 0) {
            nsq_error("LOOKUPD(%s): unexpected response (size %u)", p->addr, size);
            peer_close(p, true);
            return;
        }
        if (avail < REPLY_SIZE_LEN + (size_t)size)
            return;
        evbuffer_drain(in, REPLY_SIZE_LEN);
        data = (char *)evbuffer_pullup(in, size);
        if (fifo_pop(p) == REPLY_IDENTIFY) {
            if (!handle_identify_reply(p, data, size)) {
                peer_close(p, true);
                return;
            }
        } else if (size >= 2 && data[0] == 'E' && data[1] == '_') {
            nsq_error("LOOKUPD(%s): error - %.*s", p->addr,
                      (int)(size > LOG_REPLY_MAX ? LOG_REPLY_MAX : size), data);
        }
        evbuffer_drain(in, size);
    }
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct lookup_peer *p = arg;

    if (what & BEV_EVENT_CONNECTED) {
        p->state = PEER_CONNECTED;
        nsq_info("LOOKUPD(%s): connected", p->addr);
        if (evbuffer_add(bufferevent_get_output(bev), LOOKUP_MAGIC_V1, 4) < 0) {
            peer_close(p, true);
            return;
        }
        if (p->cbs.connected != NULL)
            p->cbs.connected(p, p->arg);
        return;
    }
    if (what & BEV_EVENT_TIMEOUT)
        nsq_error("LOOKUPD(%s): error - i/o timeout", p->addr);
    else if (what & BEV_EVENT_EOF)
        nsq_error("LOOKUPD(%s): error - EOF", p->addr);
    else if (what & BEV_EVENT_ERROR) {
        int dnserr = bufferevent_socket_get_dns_error(bev);
        if (dnserr != 0)
            nsq_error("LOOKUPD(%s): error - %s", p->addr, evutil_gai_strerror(dnserr));
        else
            nsq_error("LOOKUPD(%s): error - %s", p->addr,
                      evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    }
    peer_close(p, true);
}

static void peer_connect(struct lookup_peer *p)
{
    struct timeval io = ns_to_tv(LOOKUP_PEER_IO_TIMEOUT_NS);

    if (p->state != PEER_IDLE || p->retry_pending)
        return;
    nsq_info("LOOKUP connecting to %s", p->addr);
    p->bev = bufferevent_socket_new(p->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (p->bev == NULL) {
        peer_schedule_retry(p);
        return;
    }
    p->state = PEER_CONNECTING;
    bufferevent_setcb(p->bev, read_cb, NULL, event_cb, p);
    /* The write timeout also bounds the connect. */
    bufferevent_set_timeouts(p->bev, NULL, &io);
    bufferevent_enable(p->bev, EV_READ | EV_WRITE);
    if (bufferevent_socket_connect_hostname(p->bev, p->dns, AF_UNSPEC, p->host, p->port) < 0) {
        /* event_cb may already have closed the peer on an immediate failure. */
        if (p->state != PEER_IDLE) {
            nsq_error("LOOKUPD(%s): error - connect failed", p->addr);
            peer_close(p, true);
        }
    }
}

struct lookup_peer *lookup_peer_new(struct event_base *base, struct evdns_base *dns,
                                    const char *addr, size_t max_reply,
                                    const struct lookup_peer_callbacks *cbs, void *arg)
{
    struct lookup_peer *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->base = base;
    p->dns = dns;
    p->max_reply = max_reply;
    p->cbs = *cbs;
    p->arg = arg;
    p->state = PEER_IDLE;
    p->backoff_ns = LOOKUP_PEER_BACKOFF_MIN_NS;
    p->addr = strdup(addr);
    if (p->addr == NULL)
        goto err;
    if (nsq_split_host_port(addr, p->host, sizeof(p->host), &p->port) < 0 || p->port == 0)
        goto err;
    p->retry_ev = evtimer_new(base, retry_cb, p);
    if (p->retry_ev == NULL)
        goto err;
    peer_connect(p);
    return p;
err:
    free(p->addr);
    free(p);
    return NULL;
}

void lookup_peer_free(struct lookup_peer *p)
{
    if (p == NULL)
        return;
    peer_close(p, false);
    if (p->retry_ev != NULL)
        event_free(p->retry_ev);
    free(p->fifo);
    free(p->addr);
    free(p);
}

const char *lookup_peer_addr(const struct lookup_peer *p)
{
    return p->addr;
}

bool lookup_peer_connected(const struct lookup_peer *p)
{
    return p->state == PEER_CONNECTED;
}

const struct lookup_peer_info *lookup_peer_info(const struct lookup_peer *p)
{
    return p->has_info ? &p->info : NULL;
}

int lookup_peer_identify(struct lookup_peer *p, const char *json, size_t len)
{
    struct evbuffer *out;
    uint32_t be = htonl((uint32_t)len);

    if (p->state != PEER_CONNECTED)
        return -ENOTCONN;
    out = bufferevent_get_output(p->bev);
    if (evbuffer_add(out, "IDENTIFY\n", 9) < 0 || evbuffer_add(out, &be, sizeof(be)) < 0 ||
        evbuffer_add(out, json, len) < 0)
        return -ENOMEM;
    return fifo_push(p, REPLY_IDENTIFY);
}

int lookup_peer_command(struct lookup_peer *p, const char *cmd, const char *a1, const char *a2)
{
    struct evbuffer *out;

    if (p->state != PEER_CONNECTED) {
        if (p->state == PEER_IDLE)
            peer_connect(p);
        return -ENOTCONN;
    }
    out = bufferevent_get_output(p->bev);
    if (evbuffer_add_printf(out, "%s%s%s%s%s\n", cmd, a1 ? " " : "", a1 ? a1 : "", a2 ? " " : "",
                            a2 ? a2 : "") < 0)
        return -ENOMEM;
    return fifo_push(p, REPLY_OTHER);
}
