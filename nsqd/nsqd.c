/*
 * nsqd: daemon lifecycle, topic map, metadata and shutdown (architecture in nsqd.h).
 */
#include "nsqd.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <openssl/ssl.h>

#include "ack_wait.h"
#include "channel.h"
#include "client.h"
#include "diskqueue.h"
#include "http.h"
#include "journal.h"
#include "message.h"
#include "metadata.h"
#include "nsq_file.h"
#include "name_map.h"
#include "nsq_http_client.h"
#include "nsq_json.h"
#include "nsq_log.h"
#include "nsq_names.h"
#include "nsq_net.h"
#include "nsq_statsd.h"
#include "nsq_systemd.h"
#include "nsq_tls.h"
#include "nsq_version.h"
#include "topic.h"
#ifdef NSQD_HAVE_LOOKUP
#include "lookup.h"
#endif
#ifdef NSQD_HAVE_STATSD
#include "statsd.h"
#endif

#define NSQD_DISKQUEUE_THREADS 2
/* Memory housekeeping period, and how much message memory must have been freed since the peak
   before the heap is trimmed. */
#define NSQD_TRIM_INTERVAL_S      2
#define NSQD_TRIM_THRESHOLD_BYTES (64u * 1024 * 1024)
/* Longest expanded --statsd-prefix. */
#define NSQD_STATSD_PREFIX_MAX 512

/* ---- health ---- */

void nsqd_set_health(struct nsqd *n, const char *err)
{
    if (!err) {
        n->health_err[0] = '\0';
        return;
    }
    snprintf(n->health_err, sizeof(n->health_err), "%s", err);
}

bool nsqd_is_healthy(const struct nsqd *n)
{
    return n->health_err[0] == '\0';
}

void nsqd_health_string(const struct nsqd *n, char *buf, size_t len)
{
    if (nsqd_is_healthy(n))
        snprintf(buf, len, "OK");
    else
        snprintf(buf, len, "NOK - %s", n->health_err);
}

const char *nsqd_broadcast_address(const struct nsqd *n)
{
    const char *b = n->opts->broadcast_address;
    return b && *b ? b : n->hostname;
}

int nsqd_broadcast_tcp_port(const struct nsqd *n)
{
    return n->opts->broadcast_tcp_port ? n->opts->broadcast_tcp_port : n->tcp_port;
}

int nsqd_broadcast_http_port(const struct nsqd *n)
{
    return n->opts->broadcast_http_port ? n->opts->broadcast_http_port : n->http_port;
}

/* ---- topics ---- */

struct topic *nsqd_find_topic(struct nsqd *n, const char *name)
{
    return name_map_get(n->topics, name);
}

#ifdef NSQD_HAVE_LOOKUP
struct precreate {
    struct nsqd *n;
    char *topic;
};

/* Channels other nsqds of the topic already have (behaviour.md §2), then start the topic. */
static void nsqd_precreate_done(const struct nsq_strlist *channels, void *arg)
{
    struct precreate *p = arg;
    struct topic *t = nsqd_find_topic(p->n, p->topic);
    if (t && !t->exiting) {
        for (size_t i = 0; channels && i < channels->len; i++) {
            const char *c = channels->items[i];
            if (nsq_name_is_ephemeral(c, strlen(c)) || !nsq_channel_name_valid(c, strlen(c)))
                continue;
            topic_get_channel(t, c);
        }
        topic_start(t);
    }
    free(p->topic);
    free(p);
}
#endif

static struct topic *nsqd_create_topic(struct nsqd *n, const char *name)
{
    struct topic *t = topic_new(n, name);
    if (!t) {
        nsq_error("TOPIC(%s): failed to create", name);
        return NULL;
    }
    if (name_map_put(n->topics, name, t) != 0) {
        topic_delete(t);
        return NULL;
    }
    nsq_info("TOPIC(%s): created", name);
    return t;
}

struct topic *nsqd_get_topic(struct nsqd *n, const char *name)
{
    struct topic *t = name_map_get(n->topics, name);
    if (t)
        return t;
    if (n->exiting)
        return NULL;
    t = nsqd_create_topic(n, name);
    if (!t)
        return NULL;
    if (n->loading)
        return t; /* started by the loader */
    nsqd_notify(n, t->name, NULL, t->ephemeral, true);
#ifdef NSQD_HAVE_LOOKUP
    if (n->lookup) {
        struct precreate *p = calloc(1, sizeof(*p));
        if (p && (p->topic = strdup(name))) {
            p->n = n;
            nsqd_lookup_query_channels(n->lookup, name, nsqd_precreate_done, p);
            return nsqd_find_topic(n, name);
        }
        free(p);
    }
#endif
    topic_start(t);
    return t;
}

int nsqd_delete_topic(struct nsqd *n, const char *name)
{
    struct topic *t = name_map_del(n->topics, name);
    if (!t)
        return -ENOENT;
    t->exiting = true;
    bool ephemeral = t->ephemeral;
    nsqd_notify_lookup(n, t->name, NULL, false);
    topic_delete(t); /* each channel: UNREGISTER t c */
    if (!ephemeral && !n->exiting) {
        int rc = nsqd_persist_metadata(n);
        if (rc)
            nsq_error("failed to persist metadata - %s", strerror(-rc));
    }
    return 0;
}

struct foreach_topic_ctx {
    void (*fn)(struct topic *t, void *arg);
    void *arg;
};

static void foreach_topic_cb(const char *key, void *value, void *arg)
{
    struct foreach_topic_ctx *ctx = arg;
    ctx->fn(value, ctx->arg);
}

void nsqd_foreach_topic(struct nsqd *n, void (*fn)(struct topic *t, void *arg), void *arg)
{
    struct foreach_topic_ctx ctx = {fn, arg};
    name_map_foreach(n->topics, foreach_topic_cb, &ctx);
}

struct foreach_reg_ctx {
    void (*fn)(const char *topic, const char *channel, void *arg);
    void *arg;
};

static void foreach_reg_topic(struct topic *t, void *arg)
{
    struct foreach_reg_ctx *ctx = arg;
    if (t->nchans == 0)
        ctx->fn(t->name, NULL, ctx->arg);
    for (size_t i = 0; i < t->nchans; i++)
        ctx->fn(t->name, t->chans[i]->name, ctx->arg);
}

void nsqd_foreach_registration(struct nsqd *n,
                               void (*fn)(const char *topic, const char *channel, void *arg),
                               void *arg)
{
    struct foreach_reg_ctx ctx = {fn, arg};
    nsqd_foreach_topic(n, foreach_reg_topic, &ctx);
}

void nsqd_notify_lookup(struct nsqd *n, const char *topic, const char *channel, bool registered)
{
    if (n->loading)
        return;
#ifdef NSQD_HAVE_LOOKUP
    if (n->lookup)
        nsqd_lookup_notify(n->lookup, topic, channel, registered);
#else
    (void)topic;
    (void)channel;
    (void)registered;
#endif
}

void nsqd_notify(struct nsqd *n, const char *topic, const char *channel, bool ephemeral,
                 bool registered)
{
    if (n->loading)
        return;
    nsqd_notify_lookup(n, topic, channel, registered);
    if (ephemeral || n->exiting)
        return;
    int rc = nsqd_persist_metadata(n);
    if (rc)
        nsq_error("failed to persist metadata - %s", strerror(-rc));
}

/* ---- metadata (storage.md §5) ---- */

static void metadata_topic(struct topic *t, void *arg)
{
    struct nsq_json *j = arg;
    if (t->ephemeral)
        return;
    nsq_json_object_begin(j);
    nsq_json_kv_string(j, "name", t->name);
    nsq_json_kv_bool(j, "paused", t->paused);
    topic_limits_write_json(t, j);
    nsq_json_key(j, "channels");
    size_t persisted = 0;
    for (size_t i = 0; i < t->nchans; i++)
        persisted += !t->chans[i]->ephemeral;
    if (!persisted) {
        nsq_json_null(j);
    } else {
        nsq_json_array_begin(j);
        for (size_t i = 0; i < t->nchans; i++) {
            struct channel *c = t->chans[i];
            if (c->ephemeral)
                continue;
            nsq_json_object_begin(j);
            nsq_json_kv_string(j, "name", c->name);
            nsq_json_kv_bool(j, "paused", c->paused);
            /* Extra field, written only when set: upstream's loader ignores it. */
            if (c->max_attempts > 0)
                nsq_json_kv_int(j, "max_attempts", c->max_attempts);
            nsq_json_object_end(j);
        }
        nsq_json_array_end(j);
    }
    nsq_json_object_end(j);
}

static void count_persisted(struct topic *t, void *arg)
{
    *(size_t *)arg += !t->ephemeral;
}

int nsqd_persist_metadata(struct nsqd *n)
{
    if (n->loading)
        return 0;
    struct evbuffer *out = evbuffer_new();
    if (!out)
        return -ENOMEM;
    struct nsq_json j;
    nsq_json_init(&j, out);
    nsq_json_object_begin(&j);
    nsq_json_key(&j, "topics");
    size_t persisted = 0;
    nsqd_foreach_topic(n, count_persisted, &persisted);
    if (!persisted) {
        nsq_json_null(&j);
    } else {
        nsq_json_array_begin(&j);
        nsqd_foreach_topic(n, metadata_topic, &j);
        nsq_json_array_end(&j);
    }
    nsq_json_kv_string(&j, "version", NSQ_VERSION);
    nsq_json_object_end(&j);

    char path[sizeof(n->data_path) + 64];
    snprintf(path, sizeof(path), "%s/%s", n->data_path, NSQD_METADATA_FILE);
    size_t len = evbuffer_get_length(out);
    int rc = nsq_file_replace(path, evbuffer_pullup(out, -1), len, NSQD_METADATA_FILE_MODE);
    evbuffer_free(out);
    return rc;
}

/* A channel's own dead-letter limit (absent in upstream's file: inherit). */
static void load_max_attempts(struct channel *c, const cJSON *obj)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(obj, "max_attempts");
    if (!cJSON_IsNumber(p) || p->valuedouble <= 0)
        return;
    if (channel_set_max_attempts(c, (int64_t)p->valuedouble) != 0)
        nsq_warn("ignoring invalid max_attempts %g of channel %s", p->valuedouble, c->name);
}

/* nsqd_metadata_visitor callbacks: create what the file lists, paused as it was. */
static void *load_topic(void *arg, const char *name, bool paused, const cJSON *obj)
{
    struct topic *t = nsqd_get_topic(arg, name);
    if (!t)
        return NULL;
    if (paused)
        topic_pause(t, true);
    topic_limits_read_json(t, obj);
    return t;
}

static void load_channel(void *arg, void *topic, const char *name, bool paused, const cJSON *obj)
{
    struct channel *c = topic_get_channel(topic, name);
    if (!c)
        return;
    if (paused)
        channel_pause(c, true);
    load_max_attempts(c, obj);
}

static void load_topic_end(void *arg, void *topic)
{
    topic_start(topic);
}

/* Reads path whole into a new buffer. Returns it, or NULL with errno set (ENOENT: no file). */
static struct evbuffer *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct evbuffer *buf = evbuffer_new();
    char chunk[65536];
    size_t r;
    while (buf && (r = fread(chunk, 1, sizeof(chunk), f)) > 0)
        evbuffer_add(buf, chunk, r);
    int failed = !buf || ferror(f);
    fclose(f);
    if (failed) {
        if (buf)
            evbuffer_free(buf);
        errno = EIO;
        return NULL;
    }
    return buf;
}

static int nsqd_load_metadata(struct nsqd *n, char *err, size_t errlen)
{
    char path[sizeof(n->data_path) + 64];
    snprintf(path, sizeof(path), "%s/%s", n->data_path, NSQD_METADATA_FILE);
    struct evbuffer *buf = read_file(path);
    if (!buf) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "failed to read metadata from %s - %s", path,
                 errno == EIO ? "read error" : strerror(errno));
        return -1;
    }
    static const struct nsqd_metadata_visitor visitor = {
            .topic = load_topic, .channel = load_channel, .topic_end = load_topic_end};
    struct nsqd_metadata_visitor v = visitor;
    v.arg = n;
    n->loading = true;
    size_t len = evbuffer_get_length(buf);
    int rc = nsqd_metadata_parse((const char *)evbuffer_pullup(buf, -1), len, &v);
    n->loading = false;
    evbuffer_free(buf);
    if (rc != 0) {
        snprintf(err, errlen, "failed to parse metadata in %s - invalid JSON", path);
        return -1;
    }
    return 0;
}

/* ---- data path lock (storage.md §7) ---- */

static void go_errstr(int err, char *buf, size_t len)
{
    snprintf(buf, len, "%s", strerror(err));
    if (buf[0])
        buf[0] = (char)tolower((unsigned char)buf[0]);
}

static int nsqd_lock_data_path(struct nsqd *n, char *err, size_t errlen)
{
    char e[128];
    int fd = open(n->data_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        go_errstr(errno, e, sizeof(e));
        snprintf(err, errlen,
                 "failed to lock data-path: cannot flock directory %s - open %s: %s (possibly in "
                 "use by another instance of nsqd)",
                 n->data_path, n->data_path, e);
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        go_errstr(errno, e, sizeof(e));
        snprintf(err, errlen,
                 "failed to lock data-path: cannot flock directory %s - %s (possibly in use by "
                 "another instance of nsqd)",
                 n->data_path, e);
        close(fd);
        return -1;
    }
    n->lock_fd = fd;
    return 0;
}

/* ---- listeners ---- */

static void nsqd_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                           int socklen, void *arg)
{
    struct nsqd *n = arg;
    if (n->exiting) {
        evutil_closesocket(fd);
        return;
    }
    /* As Go does for every TCP connection: frames leave as soon as the loop writes them. */
    if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    client_new(n, fd);
}

static void nsqd_accept_error_cb(struct evconnlistener *l, void *arg)
{
    struct nsqd *n = arg;
    int e = EVUTIL_SOCKET_ERROR();
    if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM || e == ECONNABORTED ||
        e == EINTR) {
        nsq_error("TCP: temporary Accept() failure - %s", strerror(e));
        return;
    }
    nsq_fatal("TCP: listener failure - %s", strerror(e));
    nsqd_exit(n, 1);
}

static int nsqd_open_listener(const char *addr, int *port, char *name, size_t namelen, char *err,
                              size_t errlen)
{
    int fd = nsq_listen(addr, NSQ_NET_DEFAULT_BACKLOG, port);
    if (fd < 0) {
        char e[128];
        go_errstr(-fd, e, sizeof(e));
        char host[NSQ_NET_ADDRSTRLEN];
        int p;
        bool tcp = nsq_split_host_port(addr, host, sizeof(host), &p) == 0;
        snprintf(err, errlen, "listen (%s) failed - listen %s %s: bind: %s", addr,
                 tcp ? "tcp" : "unix", addr, e);
        return -1;
    }
    if (nsq_sock_name(fd, name, namelen) != 0)
        snprintf(name, namelen, "%s", addr);
    return fd;
}

/* HTTPS connections: a TLS server bufferevent per accepted socket. */
static struct bufferevent *nsqd_https_bev(struct event_base *base, void *arg)
{
    struct nsqd *n = arg;
    SSL *ssl = SSL_new(n->tls_ctx);
    if (!ssl)
        return NULL;
    struct bufferevent *bev = bufferevent_openssl_socket_new(
            base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
    if (bev)
        bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    else
        SSL_free(ssl);
    return bev;
}

/* Memory housekeeping: drop expired messages at the head of memory queues (topic_limits.h), and
   once queues have drained a lot since the last look, hand the freed heap back to the OS (glibc
   keeps it otherwise; after a burst of 1,000,000 queued messages that is hundreds of MB). */
/* As upstream, unset broadcast ports take the TCP and HTTP listeners' ports (not for unix
   sockets), so /config/broadcast_tcp_port and broadcast_http_port show the ports announced. */
static void nsqd_fill_broadcast_ports(struct nsqd *n)
{
    if (n->opts->broadcast_tcp_port == 0 && n->tcp_port > 0)
        n->opts->broadcast_tcp_port = n->tcp_port;
    if (n->opts->broadcast_http_port == 0 && n->http_port > 0)
        n->opts->broadcast_http_port = n->http_port;
}

/*
 * As upstream, --statsd-prefix is stored expanded once the listeners are open ("nsq.%s" becomes
 * "nsq.<host>_<port>."), so /config/statsd_prefix shows the prefix in use. The options own the
 * new string; on failure (too long) the template stays and the statsd pusher reports it.
 */
static void nsqd_expand_statsd_prefix(struct nsqd *n)
{
    char prefix[NSQD_STATSD_PREFIX_MAX];
    char *tmpl = n->opts->statsd_prefix;
    if (!tmpl || !*tmpl)
        return;
    if (nsq_statsd_build_prefix(tmpl, nsqd_broadcast_address(n), nsqd_broadcast_http_port(n),
                                prefix, sizeof(prefix)) < 0)
        return;
    char *dup = strdup(prefix);
    if (!dup)
        return;
    free(tmpl);
    n->opts->statsd_prefix = dup;
}

static void nsqd_trim_cb(evutil_socket_t fd, short what, void *arg)
{
    struct nsqd *n = arg;
    nsqd_foreach_topic(n, topic_limits_sweep, NULL);
    size_t live = nsqd_message_live_bytes();
    size_t peak = nsqd_message_take_peak();
    if (peak > n->trim_peak)
        n->trim_peak = peak;
    if (n->trim_peak - live >= NSQD_TRIM_THRESHOLD_BYTES) {
        nsqd_message_cache_release();
        malloc_trim(0);
        n->trim_peak = live;
    }
}

static void nsqd_signal_cb(evutil_socket_t sig, short what, void *arg)
{
    struct nsqd *n = arg;
    nsqd_exit(n, 0);
}

void nsqd_exit(struct nsqd *n, int code)
{
    if (code)
        n->exit_code = code;
    event_base_loopbreak(n->base);
}

static void nsqd_dq_log(int level, const char *msg, void *arg)
{
    nsq_logf((enum nsq_log_level)level, "%s", msg);
}

struct nsqd *nsqd_new(struct nsqd_options *opts, char *err, size_t errlen)
{
    if (nsqd_options_validate(opts, err, errlen) != 0)
        return NULL;
    struct nsqd *n = calloc(1, sizeof(*n));
    if (!n) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    n->opts = opts;
    n->lock_fd = -1;
    n->start_time = time(NULL);
    srandom((unsigned)time(NULL) ^ (unsigned)getpid());
    nsq_hostname(n->hostname, sizeof(n->hostname));
    const char *dp = opts->data_path && *opts->data_path ? opts->data_path : NULL;
    if (dp) {
        snprintf(n->data_path, sizeof(n->data_path), "%s", dp);
    } else if (!getcwd(n->data_path, sizeof(n->data_path))) {
        snprintf(n->data_path, sizeof(n->data_path), ".");
    }
    if (nsqd_lock_data_path(n, err, errlen) != 0)
        goto fail;

    evthread_use_pthreads();
    n->base = event_base_new();
    n->topics = name_map_new();
    n->dqs = diskqueue_service_new(NSQD_DISKQUEUE_THREADS);
    if (!n->base || !n->topics || !n->dqs) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    diskqueue_service_set_log(n->dqs, nsqd_dq_log, n);
    if (ack_wait_enabled(opts)) {
        n->ack_wait = ack_wait_new(n->base);
        if (!n->ack_wait) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
    }
    if (journal_enabled(opts)) {
        n->journal = journal_writer_new(n->base);
        if (!n->journal) {
            snprintf(err, errlen, "failed to start the journal writer");
            goto fail;
        }
    }

    if (opts->tls_cert && *opts->tls_cert && opts->tls_key && *opts->tls_key) {
        enum nsq_tls_client_auth policy = NSQ_TLS_NO_CLIENT_CERT;
        const char *pol = opts->tls_client_auth_policy ? opts->tls_client_auth_policy : "";
        if (nsq_tls_parse_client_auth(pol, &policy) != 0)
            policy = NSQ_TLS_NO_CLIENT_CERT; /* upstream ignores unknown policies */
        char terr[512];
        n->tls_ctx = nsq_tls_server_ctx(opts->tls_cert, opts->tls_key, opts->tls_root_ca_file,
                                        policy, opts->tls_min_version, terr, sizeof(terr));
        if (!n->tls_ctx) {
            snprintf(err, errlen, "failed to build TLS config - %s", terr);
            goto fail;
        }
    }

    int fd = nsqd_open_listener(opts->tcp_address, &n->tcp_port, n->tcp_name, sizeof(n->tcp_name),
                                err, errlen);
    if (fd < 0)
        goto fail;
    /* Backlog 0 keeps the one nsq_listen set; -1 would make libevent listen() again with 128. */
    n->tcp_listener = evconnlistener_new(n->base, nsqd_accept_cb, n, LEV_OPT_CLOSE_ON_FREE, 0, fd);
    if (!n->tcp_listener) {
        close(fd);
        snprintf(err, errlen, "listen (%s) failed - out of memory", opts->tcp_address);
        goto fail;
    }
    evconnlistener_set_error_cb(n->tcp_listener, nsqd_accept_error_cb);
    nsq_info("TCP: listening on %s", n->tcp_name);

    if (opts->http_address && *opts->http_address) {
        fd = nsqd_open_listener(opts->http_address, &n->http_port, n->http_name,
                                sizeof(n->http_name), err, errlen);
        if (fd < 0)
            goto fail;
        n->http = evhttp_new(n->base);
        if (!n->http || evhttp_accept_socket(n->http, fd) != 0) {
            close(fd);
            snprintf(err, errlen, "listen (%s) failed - out of memory", opts->http_address);
            goto fail;
        }
        n->http_api = nsqd_http_new(n, n->http, false);
        nsq_info("HTTP: listening on %s", n->http_name);
    }

    if (n->tls_ctx && opts->https_address && *opts->https_address) {
        fd = nsqd_open_listener(opts->https_address, &n->https_port, n->https_name,
                                sizeof(n->https_name), err, errlen);
        if (fd < 0)
            goto fail;
        n->https = evhttp_new(n->base);
        if (!n->https || evhttp_accept_socket(n->https, fd) != 0) {
            close(fd);
            snprintf(err, errlen, "listen (%s) failed - out of memory", opts->https_address);
            goto fail;
        }
        evhttp_set_bevcb(n->https, nsqd_https_bev, n);
        n->https_api = nsqd_http_new(n, n->https, true);
        nsq_info("HTTPS: listening on %s", n->https_name);
    }

    if (nsqd_load_metadata(n, err, errlen) != 0)
        goto fail;
    int rc = nsqd_persist_metadata(n);
    if (rc) {
        snprintf(err, errlen, "failed to persist metadata - %s", strerror(-rc));
        goto fail;
    }

#ifdef NSQD_HAVE_LOOKUP
    n->lookup = nsqd_lookup_new(n);
#else
    if (opts->nsqlookupd_tcp_addresses.len)
        nsq_warn("lookupd-tcp-address is not yet supported");
#endif
    nsqd_fill_broadcast_ports(n);
    nsqd_expand_statsd_prefix(n);
#ifdef NSQD_HAVE_STATSD
    n->statsd = nsqd_statsd_new(n);
#else
    if (opts->statsd_address && *opts->statsd_address)
        nsq_warn("statsd-address is not yet supported");
#endif

    n->trim_ev = event_new(n->base, -1, EV_PERSIST, nsqd_trim_cb, n);
    if (n->trim_ev) {
        struct timeval tv = {NSQD_TRIM_INTERVAL_S, 0};
        evtimer_add(n->trim_ev, &tv);
    }
    n->sigint_ev = evsignal_new(n->base, SIGINT, nsqd_signal_cb, n);
    n->sigterm_ev = evsignal_new(n->base, SIGTERM, nsqd_signal_cb, n);
    evsignal_add(n->sigint_ev, NULL);
    evsignal_add(n->sigterm_ev, NULL);
    signal(SIGPIPE, SIG_IGN);
    return n;
fail:
    nsqd_free(n);
    return NULL;
}

static void close_topic_cb(const char *key, void *value, void *arg)
{
    topic_close(value);
}

int nsqd_main(struct nsqd *n)
{
    nsq_systemd_notify_ready(); /* every listener was opened by nsqd_new */
    event_base_dispatch(n->base);
    nsq_systemd_notify_stopping();
    n->exiting = true;
    nsq_info("TCP: closing %s", n->tcp_name);
    if (n->tcp_listener) {
        evconnlistener_free(n->tcp_listener);
        n->tcp_listener = NULL;
        if (n->tcp_port < 0)
            unlink(n->tcp_name); /* as Go removes the unix socket it created */
    }
    while (n->clients)
        client_close(n->clients);
    /* Pending auth queries end now (their clients are closed). */
    nsq_http_client_free(n->http_client);
    n->http_client = NULL;
    if (n->http) {
        nsq_info("HTTP: closing %s", n->http_name);
        evhttp_free(n->http);
        n->http = NULL;
        if (n->http_port < 0)
            unlink(n->http_name);
    }
    if (n->https) {
        nsq_info("HTTPS: closing %s", n->https_name);
        evhttp_free(n->https);
        n->https = NULL;
        if (n->https_port < 0)
            unlink(n->https_name);
    }
    nsqd_http_free(n->http_api);
    n->http_api = NULL;
    nsqd_http_free(n->https_api);
    n->https_api = NULL;
    n->exiting = false; /* the final rewrite must happen */
    int rc = nsqd_persist_metadata(n);
    n->exiting = true;
    if (rc)
        nsq_error("failed to persist metadata - %s", strerror(-rc));
#ifdef NSQD_HAVE_LOOKUP
    nsqd_lookup_free(n->lookup);
    n->lookup = NULL;
#endif
#ifdef NSQD_HAVE_STATSD
    nsqd_statsd_free(n->statsd);
    n->statsd = NULL;
#endif
    name_map_foreach(n->topics, close_topic_cb, NULL);
    name_map_free(n->topics);
    n->topics = NULL;
    return n->exit_code;
}

void nsqd_free(struct nsqd *n)
{
    if (!n)
        return;
    if (n->topics) {
        name_map_foreach(n->topics, close_topic_cb, NULL);
        name_map_free(n->topics);
    }
    if (n->http)
        evhttp_free(n->http);
    if (n->https)
        evhttp_free(n->https);
    nsqd_http_free(n->http_api);
    nsqd_http_free(n->https_api);
    if (n->tls_ctx)
        SSL_CTX_free(n->tls_ctx);
    nsq_http_client_free(n->http_client);
    if (n->tcp_listener)
        evconnlistener_free(n->tcp_listener);
    if (n->trim_ev)
        event_free(n->trim_ev);
    if (n->sigint_ev)
        event_free(n->sigint_ev);
    if (n->sigterm_ev)
        event_free(n->sigterm_ev);
    journal_writer_free(n->journal); /* after every channel closed its journal */
    ack_wait_free(n->ack_wait);      /* after every queue closed */
    diskqueue_service_free(n->dqs);
    nsqd_message_cache_release();
    if (n->base)
        event_base_free(n->base);
    if (n->lock_fd >= 0) {
        flock(n->lock_fd, LOCK_UN);
        close(n->lock_fd);
    }
    free(n);
}
