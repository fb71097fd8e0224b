/*
 * conn: connection state machine of the client library.
 *
 *   DIALING ──connected──▶ IDENTIFYING ──OK / JSON──▶ [TLS_OK] ──▶ [COMPRESS_OK] ──▶ [AUTH] ──▶
 * READY
 *
 * Bracketed states are entered only when negotiated. Each upgrade replaces c->bev by a filter over
 * the previous bufferevent (bufferevent_openssl for TLS, nsq_codec for snappy/deflate), so
 * c->bev is always the top of the stack and every write goes through all layers. Frames are read
 * from the top's input; a frame that triggers an upgrade is drained before the upgrade so that the
 * bytes behind it are decoded by the new layer.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "command.h"
#include "config.h"
#include "conn.h"
#include "nsq_codec.h"
#include "nsq_frame.h"
#include "nsq_net.h"
#include "nsq_time.h"
#include "nsq_tls.h"

#define CONN_MAX_FRAME      (64u * 1024 * 1024) /* largest frame accepted from nsqd */
#define CONN_DEFAULT_MAXRDY 2500
#define CONN_HEARTBEAT      "_heartbeat_"
#define CONN_WHY_LEN        512
/* Largest single read or write on the socket: libevent's default (16 KiB) would cap a busy
   consumer at a few dozen messages per loop iteration. */
#define CONN_MAX_SINGLE_IO (256 * 1024)

enum conn_state {
    CONN_INIT,
    CONN_DIALING,
    CONN_IDENTIFYING,
    CONN_TLS_OK,
    CONN_COMPRESS_OK,
    CONN_AUTH,
    CONN_READY,
    CONN_CLOSED,
};

struct nsq_conn {
    struct event_base *base;
    const struct nsq_config *cfg;
    struct nsq_conn_handler h;
    void *arg;
    char addr[NSQ_NET_ADDRSTRLEN];
    char host[NSQ_NET_ADDRSTRLEN];
    int port;
    enum conn_state state;
    struct bufferevent *bev; /* top of the layer stack; owns the ones below */
    SSL_CTX *ssl_ctx;
    struct event *closed_ev; /* deferred `closed` callback */
    /* While frames are being delivered, commands the owner sends (FIN, RDY ...) collect here and
       move to the output once after the batch: one output append (and one write) per read instead
       of one per command. */
    struct evbuffer *batch;
    bool delivering;
    bool plain; /* c->bev is the socket itself (no TLS or compression layer) */
    int close_err;
    char close_why[CONN_WHY_LEN];
    /* negotiated */
    int64_t max_rdy;
    bool want_tls, want_snappy, want_deflate, auth_required;
};

static void conn_read_cb(struct bufferevent *bev, void *arg);
static void conn_event_cb(struct bufferevent *bev, short what, void *arg);

static struct timeval ns_to_tv(int64_t ns)
{
    struct timeval tv = {.tv_sec = ns / NSQ_NS_PER_SEC,
                         .tv_usec = (ns % NSQ_NS_PER_SEC) / NSQ_NS_PER_USEC};
    return tv;
}

static void conn_closed_cb(evutil_socket_t fd, short what, void *arg)
{
    struct nsq_conn *c = arg;
    if (c->h.closed)
        c->h.closed(c, c->close_err, c->close_why, c->arg);
}

struct nsq_conn *nsq_conn_new(struct event_base *base, const char *addr,
                              const struct nsq_config *cfg, const struct nsq_conn_handler *h,
                              void *arg)
{
    struct nsq_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->base = base;
    c->cfg = cfg;
    c->h = *h;
    c->arg = arg;
    c->max_rdy = CONN_DEFAULT_MAXRDY;
    if (strlen(addr) >= sizeof(c->addr) ||
        nsq_split_host_port(addr, c->host, sizeof(c->host), &c->port) < 0)
        goto err;
    strcpy(c->addr, addr);
    c->closed_ev = event_new(base, -1, 0, conn_closed_cb, c);
    c->batch = evbuffer_new();
    if (!c->closed_ev || !c->batch)
        goto err;
    return c;
err:
    if (c->closed_ev)
        event_free(c->closed_ev);
    if (c->batch)
        evbuffer_free(c->batch);
    free(c);
    return NULL;
}

void nsq_conn_free(struct nsq_conn *c)
{
    if (!c)
        return;
    if (c->bev)
        bufferevent_free(c->bev);
    if (c->closed_ev)
        event_free(c->closed_ev);
    if (c->ssl_ctx)
        SSL_CTX_free(c->ssl_ctx);
    if (c->batch)
        evbuffer_free(c->batch);
    free(c);
}

const char *nsq_conn_addr(const struct nsq_conn *c)
{
    return c->addr;
}

bool nsq_conn_is_ready(const struct nsq_conn *c)
{
    return c->state == CONN_READY;
}

bool nsq_conn_is_closed(const struct nsq_conn *c)
{
    return c->state == CONN_CLOSED;
}

int64_t nsq_conn_max_rdy(const struct nsq_conn *c)
{
    return c->max_rdy;
}

void nsq_conn_close(struct nsq_conn *c, int err, const char *why)
{
    if (c->state == CONN_CLOSED)
        return;
    c->state = CONN_CLOSED;
    c->close_err = err;
    snprintf(c->close_why, sizeof(c->close_why), "%s", why ? why : nsq_strerror(err));
    if (c->bev)
        bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    event_active(c->closed_ev, 0, 0);
}

static struct evbuffer *conn_out(struct nsq_conn *c)
{
    return c->delivering ? c->batch : bufferevent_get_output(c->bev);
}

int nsq_conn_send(struct nsq_conn *c, struct evbuffer *cmd)
{
    if (c->state == CONN_CLOSED || !c->bev)
        return -ENOTCONN;
    if (evbuffer_add_buffer(conn_out(c), cmd) < 0) {
        nsq_conn_close(c, -ENOMEM, NULL);
        return -ENOMEM;
    }
    return 0;
}

int nsq_conn_write(struct nsq_conn *c, const void *data, size_t len)
{
    if (c->state == CONN_CLOSED || !c->bev)
        return -ENOTCONN;
    if (evbuffer_add(conn_out(c), data, len) < 0) {
        nsq_conn_close(c, -ENOMEM, NULL);
        return -ENOMEM;
    }
    return 0;
}

/* Ends a delivery batch: what was sent during it goes to the output in one append. */
static void flush_batch(struct nsq_conn *c)
{
    c->delivering = false;
    if (evbuffer_get_length(c->batch) == 0)
        return;
    if (c->state == CONN_CLOSED || !c->bev) {
        evbuffer_drain(c->batch, evbuffer_get_length(c->batch));
        return;
    }
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (c->state == CONN_READY && c->plain && evbuffer_get_length(out) == 0) {
        /* Nothing queued before it: write now instead of arming a write event for the next loop
           iteration (saves two epoll_ctl and a wakeup per batch). What the socket does not take
           goes the usual way. A failed write is left for the bufferevent to notice. */
        evbuffer_write(c->batch, bufferevent_getfd(c->bev));
        if (evbuffer_get_length(c->batch) == 0)
            return;
    }
    if (evbuffer_add_buffer(out, c->batch) < 0)
        nsq_conn_close(c, -ENOMEM, NULL);
}

static void set_timeouts(struct nsq_conn *c)
{
    struct timeval rd = ns_to_tv(c->cfg->read_timeout), wr = ns_to_tv(c->cfg->write_timeout);
    bufferevent_set_timeouts(c->bev, c->cfg->read_timeout > 0 ? &rd : NULL,
                             c->cfg->write_timeout > 0 ? &wr : NULL);
}

static void install_top(struct nsq_conn *c, struct bufferevent *top)
{
    c->bev = top;
    bufferevent_setcb(top, conn_read_cb, NULL, conn_event_cb, c);
    set_timeouts(c);
    bufferevent_enable(top, EV_READ | EV_WRITE);
}

int nsq_conn_connect(struct nsq_conn *c)
{
    if (c->state != CONN_INIT)
        return -EALREADY;
    c->bev = bufferevent_socket_new(c->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev)
        return -ENOMEM;
    bufferevent_setcb(c->bev, conn_read_cb, NULL, conn_event_cb, c);
    bufferevent_set_max_single_read(c->bev, CONN_MAX_SINGLE_IO);
    bufferevent_set_max_single_write(c->bev, CONN_MAX_SINGLE_IO);
    struct timeval dial = ns_to_tv(c->cfg->dial_timeout);
    bufferevent_set_timeouts(c->bev, NULL, c->cfg->dial_timeout > 0 ? &dial : NULL);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    c->state = CONN_DIALING;
    /* Without an evdns base the name is resolved synchronously; addresses are nearly always
       numeric or local names here. */
    if (bufferevent_socket_connect_hostname(c->bev, NULL, AF_UNSPEC, c->host, c->port) < 0) {
        bufferevent_free(c->bev);
        c->bev = NULL;
        c->state = CONN_INIT;
        return -ECONNREFUSED;
    }
    return 0;
}

static char *identify_json(const struct nsq_config *cfg)
{
    cJSON *o = cJSON_CreateObject();
    char *s;
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "client_id", cfg->client_id);
    cJSON_AddBoolToObject(o, "deflate", cfg->deflate);
    cJSON_AddNumberToObject(o, "deflate_level", cfg->deflate_level);
    cJSON_AddBoolToObject(o, "feature_negotiation", 1);
    cJSON_AddNumberToObject(
            o, "heartbeat_interval",
            cfg->heartbeat_interval < 0 ? -1 : (double)(cfg->heartbeat_interval / NSQ_NS_PER_MS));
    cJSON_AddStringToObject(o, "hostname", cfg->hostname);
    cJSON_AddNumberToObject(o, "msg_timeout", (double)(cfg->msg_timeout / NSQ_NS_PER_MS));
    cJSON_AddNumberToObject(o, "output_buffer_size", (double)cfg->output_buffer_size);
    cJSON_AddNumberToObject(o, "output_buffer_timeout",
                            cfg->output_buffer_timeout < 0
                                    ? -1
                                    : (double)(cfg->output_buffer_timeout / NSQ_NS_PER_MS));
    cJSON_AddNumberToObject(o, "sample_rate", cfg->sample_rate);
    cJSON_AddBoolToObject(o, "snappy", cfg->snappy);
    cJSON_AddBoolToObject(o, "tls_v1", cfg->tls_v1);
    cJSON_AddStringToObject(o, "user_agent", cfg->user_agent);
    /* Only when set, so that the IDENTIFY of a client without topology stays as before. */
    if (cfg->topology_region[0])
        cJSON_AddStringToObject(o, "topology_region", cfg->topology_region);
    if (cfg->topology_zone[0])
        cJSON_AddStringToObject(o, "topology_zone", cfg->topology_zone);
    s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static void on_connected(struct nsq_conn *c)
{
    struct evbuffer *cmd = evbuffer_new();
    char *json = identify_json(c->cfg);
    int fd = bufferevent_getfd(c->bev);
    int one = 1;
    if (fd >= 0)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    set_timeouts(c);
    if (!cmd || !json || evbuffer_add(cmd, NSQ_CMD_MAGIC, NSQ_CMD_MAGIC_LEN) < 0 ||
        nsq_cmd_identify(cmd, json, strlen(json)) < 0) {
        nsq_conn_close(c, -ENOMEM, NULL);
    } else {
        c->state = CONN_IDENTIFYING;
        nsq_conn_send(c, cmd);
    }
    evbuffer_free(cmd);
    cJSON_free(json);
}

static void become_ready(struct nsq_conn *c)
{
    c->state = CONN_READY;
    c->plain =
            bufferevent_getfd(c->bev) >= 0 && !c->want_tls && !c->want_snappy && !c->want_deflate;
    if (c->h.ready)
        c->h.ready(c, c->arg);
}

static void after_compression(struct nsq_conn *c)
{
    if (!c->auth_required) {
        become_ready(c);
        return;
    }
    if (c->cfg->auth_secret[0] == '\0') {
        nsq_conn_close(c, -EACCES, "auth required");
        return;
    }
    struct evbuffer *cmd = evbuffer_new();
    if (!cmd || nsq_cmd_auth(cmd, c->cfg->auth_secret, strlen(c->cfg->auth_secret)) < 0) {
        nsq_conn_close(c, -ENOMEM, NULL);
    } else {
        c->state = CONN_AUTH;
        nsq_conn_send(c, cmd);
    }
    if (cmd)
        evbuffer_free(cmd);
}

static void after_tls(struct nsq_conn *c)
{
    if (!c->want_snappy && !c->want_deflate) {
        after_compression(c);
        return;
    }
    int kind = c->want_snappy ? NSQ_CODEC_SNAPPY : NSQ_CODEC_DEFLATE;
    struct bufferevent *f =
            nsq_codec_filter_new(c->bev, kind, c->cfg->deflate_level, BEV_OPT_CLOSE_ON_FREE);
    if (!f) {
        nsq_conn_close(c, -ENOMEM, "cannot set up compression");
        return;
    }
    c->state = CONN_COMPRESS_OK;
    install_top(c, f);
    nsq_codec_filter_resume(f);
}

static void start_tls(struct nsq_conn *c)
{
    char err[256] = "";
    const struct nsq_config *cfg = c->cfg;
    c->ssl_ctx = nsq_tls_client_ctx(cfg->tls_root_ca_file, cfg->tls_cert, cfg->tls_key,
                                    cfg->tls_insecure_skip_verify, cfg->tls_min_version, err,
                                    sizeof(err));
    if (!c->ssl_ctx) {
        nsq_conn_close(c, -EPROTO, err);
        return;
    }
    SSL *ssl = SSL_new(c->ssl_ctx);
    if (!ssl) {
        nsq_conn_close(c, -ENOMEM, NULL);
        return;
    }
    if (!cfg->tls_insecure_skip_verify)
        nsq_tls_client_set_host(ssl, c->host);
    struct bufferevent *t = bufferevent_openssl_filter_new(
            c->base, c->bev, ssl, BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
    if (!t) {
        SSL_free(ssl);
        nsq_conn_close(c, -ENOMEM, NULL);
        return;
    }
    c->state = CONN_TLS_OK;
    install_top(c, t);
}

static bool json_bool(const cJSON *o, const char *key)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, key));
}

static void on_identify_reply(struct nsq_conn *c, const uint8_t *data, size_t len)
{
    if (len == 0 || data[0] != '{') {
        become_ready(c); /* "OK": no negotiation */
        return;
    }
    cJSON *o = cJSON_ParseWithLength((const char *)data, len);
    if (!o) {
        nsq_conn_close(c, -EPROTO, "invalid IDENTIFY response");
        return;
    }
    const cJSON *mr = cJSON_GetObjectItemCaseSensitive(o, "max_rdy_count");
    if (cJSON_IsNumber(mr) && mr->valuedouble > 0)
        c->max_rdy = (int64_t)mr->valuedouble;
    c->want_tls = json_bool(o, "tls_v1");
    c->want_snappy = json_bool(o, "snappy");
    c->want_deflate = json_bool(o, "deflate");
    c->auth_required = json_bool(o, "auth_required");
    cJSON_Delete(o);
    if (c->want_tls)
        start_tls(c);
    else
        after_tls(c);
}

/* Negotiation frames: the frame has already been drained; data is a private copy. */
static void on_negotiation_frame(struct nsq_conn *c, int32_t type, const uint8_t *data, size_t len)
{
    if (type == NSQ_FRAME_ERROR) {
        char why[CONN_WHY_LEN];
        snprintf(why, sizeof(why), "%.*s", (int)len, (const char *)data);
        nsq_conn_close(c, -NSQ_ESERVER, why);
        return;
    }
    if (type != NSQ_FRAME_RESPONSE) {
        nsq_conn_close(c, -EPROTO, "unexpected frame during negotiation");
        return;
    }
    bool ok = len == 2 && memcmp(data, "OK", 2) == 0;
    switch (c->state) {
    case CONN_IDENTIFYING:
        on_identify_reply(c, data, len);
        break;
    case CONN_TLS_OK:
        if (!ok)
            nsq_conn_close(c, -EPROTO, "invalid response after TLS upgrade");
        else
            after_tls(c);
        break;
    case CONN_COMPRESS_OK:
        if (!ok)
            nsq_conn_close(c, -EPROTO, "invalid response after compression upgrade");
        else
            after_compression(c);
        break;
    case CONN_AUTH:
        become_ready(c); /* {"identity":...} */
        break;
    default:
        break;
    }
}

static void answer_heartbeat(struct nsq_conn *c)
{
    struct evbuffer *cmd = evbuffer_new();
    if (cmd && nsq_cmd_nop(cmd) == 0)
        nsq_conn_send(c, cmd);
    if (cmd)
        evbuffer_free(cmd);
}

/*
 * libevent 2.1 reads at most 4 KiB per readable event (EVBUFFER_MAX_READ), about 17 messages of
 * 200 bytes: a busy consumer would spend its time in epoll_wait and read calls. On a plain
 * connection the rest of what the socket holds is read here, up to CONN_MAX_SINGLE_IO.
 * EOF and errors are left for the bufferevent's next read to report. The socket bufferevent
 * keeps the tail of its input frozen outside its own reads, so it is thawed for this one.
 */
static void read_more(struct nsq_conn *c, struct evbuffer *in)
{
    struct evbuffer_iovec vec[2];
    int fd = bufferevent_getfd(c->bev);
    if (fd < 0)
        return;
    evbuffer_unfreeze(in, 0);
    int n = evbuffer_reserve_space(in, CONN_MAX_SINGLE_IO, vec, 2);
    if (n <= 0) {
        evbuffer_freeze(in, 0);
        return;
    }
    struct iovec iov[2];
    for (int i = 0; i < n; i++) {
        iov[i].iov_base = vec[i].iov_base;
        iov[i].iov_len = vec[i].iov_len;
    }
    ssize_t got = readv(fd, iov, n);
    if (got <= 0) {
        evbuffer_commit_space(in, vec, 0);
        evbuffer_freeze(in, 0);
        return;
    }
    size_t left = (size_t)got;
    for (int i = 0; i < n; i++) {
        size_t take = left < vec[i].iov_len ? left : vec[i].iov_len;
        vec[i].iov_len = take;
        left -= take;
    }
    evbuffer_commit_space(in, vec, n);
    evbuffer_freeze(in, 0);
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
    struct nsq_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    int32_t type;
    uint32_t len;
    int rc;

    if (c->state == CONN_READY && c->plain && bev == c->bev)
        read_more(c, in);

    rc = NSQ_FRAME_NEED_MORE;
    while (c->state != CONN_CLOSED && bev == c->bev &&
           (rc = nsq_frame_peek(in, CONN_MAX_FRAME, &type, &len)) == NSQ_FRAME_READY) {
        size_t total = NSQ_FRAME_HEADER_LEN + (size_t)len;
        uint8_t *frame = evbuffer_pullup(in, (ssize_t)total);
        if (!frame) {
            nsq_conn_close(c, -ENOMEM, NULL);
            return;
        }
        const uint8_t *data = frame + NSQ_FRAME_HEADER_LEN;
        if (c->state == CONN_READY) {
            c->delivering = true;
            if (type == NSQ_FRAME_RESPONSE && len == strlen(CONN_HEARTBEAT) &&
                memcmp(data, CONN_HEARTBEAT, len) == 0)
                answer_heartbeat(c);
            else if (c->h.frame)
                c->h.frame(c, type, data, len, c->arg);
            evbuffer_drain(in, total);
            continue;
        }
        /* Negotiation: copy, drain, then act (an upgrade must see only the bytes behind). */
        uint8_t *copy = malloc(len + 1);
        if (!copy) {
            nsq_conn_close(c, -ENOMEM, NULL);
            return;
        }
        memcpy(copy, data, len);
        evbuffer_drain(in, total);
        on_negotiation_frame(c, type, copy, len);
        free(copy);
    }
    if (c->delivering)
        flush_batch(c);
    if (c->state != CONN_CLOSED && bev == c->bev && rc < 0)
        nsq_conn_close(c, -EPROTO, "invalid frame from nsqd");
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct nsq_conn *c = arg;
    if (c->state == CONN_CLOSED)
        return;
    if (what & BEV_EVENT_CONNECTED) {
        if (c->state == CONN_DIALING)
            on_connected(c);
        return;
    }
    if (what & BEV_EVENT_TIMEOUT) {
        nsq_conn_close(c, -ETIMEDOUT, c->state == CONN_DIALING ? "dial timeout" : "i/o timeout");
        return;
    }
    if (what & BEV_EVENT_EOF) {
        nsq_conn_close(c, -ECONNRESET, "EOF");
        return;
    }
    if (what & BEV_EVENT_ERROR) {
        char why[CONN_WHY_LEN];
        int e = EVUTIL_SOCKET_ERROR();
        unsigned long ssl_err = bufferevent_get_openssl_error(bev);
        if (ssl_err)
            snprintf(why, sizeof(why), "TLS error: %s", ERR_reason_error_string(ssl_err));
        else if (c->state == CONN_DIALING && bufferevent_socket_get_dns_error(bev))
            snprintf(why, sizeof(why), "cannot resolve %s", c->host);
        else
            snprintf(why, sizeof(why), "%s", e ? strerror(e) : "connection error");
        nsq_conn_close(c, e ? -e : -ECONNRESET, why);
    }
}
