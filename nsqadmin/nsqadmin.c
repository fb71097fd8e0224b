/*
 * nsqadmin: options table, startup checks (with upstream's error wording), listener, signals and
 * the notification sender (see nsqadmin.h).
 */
#include "nsqadmin.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "clusterinfo.h"
#include "http.h"
#include "nsq_http_client.h"
#include "rates.h"

/* ---- options (flags.md §4) ---- */

#define OPT(f, c, t, tgt, d, h)                                                                    \
    (struct nsq_opt)                                                                               \
    {                                                                                              \
        .flag = (f), .cfg = (c), .type = (t), .target = (tgt), .defval = (d), .help = (h)          \
    }

size_t nsqadmin_options_table(struct nsqadmin_options *o, struct nsq_opt *t)
{
    size_t n = 0;
    t[n++] = (struct nsq_opt)NSQ_OPT_LOG_LEVEL_ENTRY(&o->log_level);
    t[n++] = OPT("log-prefix", NULL, NSQ_OPT_STRING, &o->log_prefix, "[nsqadmin] ",
                 "log message prefix");
    t[n++] = OPT("verbose", "", NSQ_OPT_BOOL, &o->verbose, NULL,
                 "[deprecated] has no effect, use --log-level");
    t[n++] = OPT("http-address", NULL, NSQ_OPT_STRING, &o->http_address, "0.0.0.0:4171",
                 "<addr>:<port> to listen on for HTTP clients");
    t[n++] = OPT("base-path", NULL, NSQ_OPT_STRING, &o->base_path, "/", "URL base path");
    t[n++] = OPT("dev-static-dir", NULL, NSQ_OPT_STRING, &o->dev_static_dir, NULL,
                 "(development use only)");
    t[n++] = OPT("graphite-url", NULL, NSQ_OPT_STRING, &o->graphite_url, NULL,
                 "graphite HTTP address");
    t[n++] = OPT("proxy-graphite", NULL, NSQ_OPT_BOOL, &o->proxy_graphite, NULL,
                 "proxy HTTP requests to graphite");
    t[n++] = OPT("statsd-counter-format", NULL, NSQ_OPT_STRING, &o->statsd_counter_format,
                 "stats.counters.%s.count",
                 "The counter stats key formatting applied by the implementation of statsd. If "
                 "no formatting is desired, set this to an empty string.");
    t[n++] = OPT("statsd-gauge-format", NULL, NSQ_OPT_STRING, &o->statsd_gauge_format,
                 "stats.gauges.%s",
                 "The gauge stats key formatting applied by the implementation of statsd. If no "
                 "formatting is desired, set this to an empty string.");
    t[n++] = OPT("statsd-prefix", NULL, NSQ_OPT_STRING, &o->statsd_prefix, "nsq.%s",
                 "prefix used for keys sent to statsd (%s for host replacement, must match nsqd)");
    t[n++] = OPT("statsd-interval", NULL, NSQ_OPT_DURATION, &o->statsd_interval, "1m0s",
                 "time interval nsqd is configured to push to statsd (must match nsqd)");
    t[n++] = OPT("notification-http-endpoint", NULL, NSQ_OPT_STRING, &o->notification_http_endpoint,
                 NULL,
                 "HTTP endpoint (fully qualified) to which POST notifications of admin actions "
                 "will be sent");
    t[n++] = OPT("http-client-connect-timeout", NULL, NSQ_OPT_DURATION,
                 &o->http_client_connect_timeout, "2s", "timeout for HTTP connect");
    t[n++] = OPT("http-client-request-timeout", NULL, NSQ_OPT_DURATION,
                 &o->http_client_request_timeout, "5s", "timeout for HTTP request");
    t[n++] = OPT("http-client-tls-insecure-skip-verify", NULL, NSQ_OPT_BOOL,
                 &o->http_client_tls_insecure_skip_verify, NULL,
                 "configure the HTTP client to skip verification of TLS certificates");
    t[n++] = OPT("http-client-tls-root-ca-file", NULL, NSQ_OPT_STRING,
                 &o->http_client_tls_root_ca_file, NULL, "path to CA file for the HTTP client");
    t[n++] = OPT("http-client-tls-cert", NULL, NSQ_OPT_STRING, &o->http_client_tls_cert, NULL,
                 "path to certificate file for the HTTP client");
    t[n++] = OPT("http-client-tls-key", NULL, NSQ_OPT_STRING, &o->http_client_tls_key, NULL,
                 "path to key file for the HTTP client");
    t[n++] = OPT("allow-config-from-cidr", NULL, NSQ_OPT_STRING, &o->allow_config_from_cidr,
                 "127.0.0.1/8", "A CIDR from which to allow HTTP requests to the /config endpoint");
    t[n++] = OPT("acl-http-header", NULL, NSQ_OPT_STRING, &o->acl_http_header, "X-Forwarded-User",
                 "HTTP header to check for authenticated admin users");
    t[n++] = OPT("lookupd-http-address", "nsqlookupd_http_addresses", NSQ_OPT_STRING_LIST,
                 &o->lookupd_http_addresses, NULL,
                 "lookupd HTTP address (may be given multiple times)");
    t[n++] = OPT("nsqd-http-address", "nsqd_http_addresses", NSQ_OPT_STRING_LIST,
                 &o->nsqd_http_addresses, NULL, "nsqd HTTP address (may be given multiple times)");
    t[n++] = OPT("admin-user", "admin_users", NSQ_OPT_STRING_LIST, &o->admin_users, NULL,
                 "admin user (may be given multiple times; if specified, only these users will "
                 "be able to perform privileged actions; acl-http-header is used to determine "
                 "the authenticated user)");
    return n;
}

/* ---- startup checks ---- */

int nsqadmin_check_sources(const struct nsqadmin_options *o, char *err, size_t errlen)
{
    size_t nl = o->lookupd_http_addresses.len, nn = o->nsqd_http_addresses.len;
    if (nl == 0 && nn == 0) {
        snprintf(err, errlen, "--nsqd-http-address or --lookupd-http-address required");
        return -EINVAL;
    }
    if (nl > 0 && nn > 0) {
        snprintf(err, errlen, "use --nsqd-http-address or --lookupd-http-address not both");
        return -EINVAL;
    }
    bool cert = o->http_client_tls_cert != NULL && o->http_client_tls_cert[0] != '\0';
    bool key = o->http_client_tls_key != NULL && o->http_client_tls_key[0] != '\0';
    if (cert && !key) {
        snprintf(err, errlen,
                 "--http-client-tls-key must be specified with "
                 "--http-client-tls-cert");
        return -EINVAL;
    }
    if (key && !cert) {
        snprintf(err, errlen,
                 "--http-client-tls-cert must be specified with "
                 "--http-client-tls-key");
        return -EINVAL;
    }
    return 0;
}

void nsqadmin_client_options(const struct nsqadmin_options *o, struct nsq_http_client_options *out)
{
    memset(out, 0, sizeof(*out));
    out->connect_timeout_ns = o->http_client_connect_timeout;
    out->request_timeout_ns = o->http_client_request_timeout;
    out->insecure_skip_verify = o->http_client_tls_insecure_skip_verify;
    if (o->http_client_tls_root_ca_file != NULL && o->http_client_tls_root_ca_file[0] != '\0')
        out->ca_file = o->http_client_tls_root_ca_file;
    if (o->http_client_tls_cert != NULL && o->http_client_tls_cert[0] != '\0')
        out->cert_file = o->http_client_tls_cert;
    if (o->http_client_tls_key != NULL && o->http_client_tls_key[0] != '\0')
        out->key_file = o->http_client_tls_key;
}

/* Go's net.ResolveTCPAddr wording for the common failures. */
static int resolve_addrs(const struct nsq_strlist *l, const char *flag, char *err, size_t errlen)
{
    for (size_t i = 0; i < l->len; i++) {
        char host[NSQ_NET_ADDRSTRLEN];
        int port;
        const char *a = l->items[i];
        if (nsq_split_host_port(a, host, sizeof(host), &port) != 0) {
            snprintf(err, errlen,
                     "failed to resolve %s (%s) - address %s: missing port in "
                     "address",
                     flag, a, a);
            return -EINVAL;
        }
        if (host[0] == '\0')
            continue;
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
        int rc = getaddrinfo(host, NULL, &hints, &res);
        if (rc != 0) {
            snprintf(err, errlen, "failed to resolve %s (%s) - lookup %s: %s", flag, a, host,
                     gai_strerror(rc));
            return -EINVAL;
        }
        freeaddrinfo(res);
    }
    return 0;
}

#define IPV4_PREFIX_MAX  32
#define IPV6_PREFIX_MAX  128
#define IPV6_ADDR_LEN    16
#define V4_MAPPED_OFFSET 12 /* ::ffff:a.b.c.d keeps the IPv4 address in its last 4 bytes */
#define IPV4_ADDR_LEN    4

static int parse_cidr(struct nsqadmin *a, const char *cidr, char *err, size_t errlen)
{
    char buf[NSQ_NET_ADDRSTRLEN];
    snprintf(buf, sizeof(buf), "%s", cidr);
    char *slash = strchr(buf, '/');
    char *end = NULL;
    long bits = -1;
    if (slash != NULL) {
        *slash = '\0';
        bits = strtol(slash + 1, &end, 10);
    }
    if (slash == NULL || end == slash + 1 || *end != '\0')
        goto invalid;
    if (inet_pton(AF_INET, buf, a->cidr_addr) == 1 && bits >= 0 && bits <= IPV4_PREFIX_MAX)
        a->cidr_family = AF_INET;
    else if (inet_pton(AF_INET6, buf, a->cidr_addr) == 1 && bits >= 0 && bits <= IPV6_PREFIX_MAX)
        a->cidr_family = AF_INET6;
    else
        goto invalid;
    a->cidr_bits = (int)bits;
    return 0;
invalid:
    snprintf(err, errlen,
             "failed to parse --allow-config-from-cidr (%s) - invalid CIDR address: %s", cidr,
             cidr);
    return -EINVAL;
}

static bool prefix_match(const uint8_t *x, const uint8_t *y, int bits)
{
    for (int i = 0; i < bits; i++) {
        int byte = i / 8, bit = 7 - i % 8;
        if (((x[byte] >> bit) & 1) != ((y[byte] >> bit) & 1))
            return false;
    }
    return true;
}

int nsqadmin_config_allowed(struct nsqadmin *a, const char *ip)
{
    uint8_t addr[IPV6_ADDR_LEN];
    if (inet_pton(AF_INET, ip, addr) == 1) {
        if (a->cidr_family == AF_INET)
            return prefix_match(addr, a->cidr_addr, a->cidr_bits);
        /* an IPv4 address inside an IPv6 network: compare its ::ffff: form */
        uint8_t mapped[IPV6_ADDR_LEN] = {0};
        mapped[V4_MAPPED_OFFSET - 2] = mapped[V4_MAPPED_OFFSET - 1] = 0xff;
        memcpy(mapped + V4_MAPPED_OFFSET, addr, IPV4_ADDR_LEN);
        return prefix_match(mapped, a->cidr_addr, a->cidr_bits);
    }
    if (inet_pton(AF_INET6, ip, addr) == 1) {
        if (a->cidr_family == AF_INET6)
            return prefix_match(addr, a->cidr_addr, a->cidr_bits);
        static const uint8_t v4prefix[V4_MAPPED_OFFSET] = {0, 0, 0, 0, 0,    0,
                                                           0, 0, 0, 0, 0xff, 0xff};
        return memcmp(addr, v4prefix, sizeof(v4prefix)) == 0 &&
               prefix_match(addr + V4_MAPPED_OFFSET, a->cidr_addr, a->cidr_bits);
    }
    return -EINVAL;
}

/* "/" + path cleaned (Go's path.Join("/", p)). */
static void normalise_base_path(const char *in, char *out, size_t len)
{
    size_t o = 0;
    const char *p = in != NULL ? in : "";
    out[o++] = '/';
    while (*p != '\0' && o + 1 < len) {
        while (*p == '/')
            p++;
        const char *seg = p;
        while (*p != '\0' && *p != '/')
            p++;
        size_t sl = (size_t)(p - seg);
        if (sl == 0 || (sl == 1 && seg[0] == '.'))
            continue;
        if (sl == 2 && seg[0] == '.' && seg[1] == '.') {
            while (o > 1 && out[o - 1] != '/')
                o--;
            if (o > 1)
                o--;
            continue;
        }
        if (o > 1)
            out[o++] = '/';
        for (size_t i = 0; i < sl && o + 1 < len; i++)
            out[o++] = seg[i];
    }
    out[o] = '\0';
}

/* ---- notifications ---- */

static void on_notified(const struct nsq_http_response *resp, void *arg)
{
    struct nsqadmin *a = arg;
    if (a->closing)
        return;
    if (resp->error != NULL)
        nsq_error("failed to send admin notification - %s", resp->error);
    else if (resp->status < 200 || resp->status >= 300)
        nsq_error("failed to send admin notification - got response %ld", resp->status);
}

void nsqadmin_notify(struct nsqadmin *a, struct evbuffer *body)
{
    const char *ep = a->opts->notification_http_endpoint;
    if (ep == NULL || ep[0] == '\0')
        return;
    size_t len = evbuffer_get_length(body);
    const char *data = (const char *)evbuffer_pullup(body, -1);
    if (nsq_http_client_request(a->http_client, "POST", ep, data != NULL ? data : "", len,
                                "application/json", on_notified, a) != 0)
        nsq_error("failed to send admin notification - out of memory");
    evbuffer_drain(body, len);
}

/* ---- daemon ---- */

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    nsqadmin_exit(arg);
}

void nsqadmin_cluster_sources(struct nsqadmin_options *o, struct clusterinfo_sources *out)
{
    out->lookupd = &o->lookupd_http_addresses.items;
    out->n_lookupd = &o->lookupd_http_addresses.len;
    out->nsqd = &o->nsqd_http_addresses.items;
    out->n_nsqd = &o->nsqd_http_addresses.len;
}

/* The checks the daemon makes on its options before it starts: sources, addresses, the graphite
   URL and the readability of the TLS files. Returns 0 or -EINVAL with err set. */
static int check_options(struct nsqadmin_options *opts, char *err, size_t errlen)
{
    if (nsqadmin_check_sources(opts, err, errlen) != 0 ||
        resolve_addrs(&opts->lookupd_http_addresses, "--lookupd-http-address", err, errlen) != 0 ||
        resolve_addrs(&opts->nsqd_http_addresses, "--nsqd-http-address", err, errlen) != 0)
        return -EINVAL;
    if (opts->proxy_graphite &&
        (opts->graphite_url == NULL || strstr(opts->graphite_url, "://") == NULL)) {
        snprintf(err, errlen,
                 "failed to parse --graphite-url (%s) - parse \"%s\": invalid URI "
                 "for request",
                 opts->graphite_url != NULL ? opts->graphite_url : "",
                 opts->graphite_url != NULL ? opts->graphite_url : "");
        return -EINVAL;
    }
    const char *files[] = {opts->http_client_tls_root_ca_file, opts->http_client_tls_cert,
                           opts->http_client_tls_key};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        if (files[i] != NULL && files[i][0] != '\0' && access(files[i], R_OK) != 0) {
            snprintf(err, errlen, "open %s: %s", files[i], strerror(errno));
            return -EINVAL;
        }
    }
    return 0;
}

struct nsqadmin *nsqadmin_new(struct nsqadmin_options *opts, const struct nsq_opt *table,
                              size_t n_table, char *err, size_t errlen)
{
    if (check_options(opts, err, errlen) != 0)
        return NULL;
    struct nsqadmin *a = calloc(1, sizeof(*a));
    if (a == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    a->opts = opts;
    a->table = table;
    a->n_table = n_table;
    nsq_hostname(a->hostname, sizeof(a->hostname));
    normalise_base_path(opts->base_path, a->base_path, sizeof(a->base_path));
    if (parse_cidr(a, opts->allow_config_from_cidr != NULL ? opts->allow_config_from_cidr : "", err,
                   errlen) != 0)
        goto err;

    a->base = event_base_new();
    if (a->base == NULL) {
        snprintf(err, errlen, "out of memory");
        goto err;
    }
    struct nsq_http_client_options co;
    nsqadmin_client_options(opts, &co);
    a->http_client = nsq_http_client_new(a->base, &co);
    struct clusterinfo_sources src;
    nsqadmin_cluster_sources(opts, &src);
    a->ci = a->http_client != NULL ? clusterinfo_new(a->base, a->http_client, &src) : NULL;
    if (a->ci == NULL) {
        snprintf(err, errlen, "out of memory");
        goto err;
    }

    int fd = nsq_listen(opts->http_address, NSQ_NET_DEFAULT_BACKLOG, &a->http_port);
    if (fd < 0) {
        snprintf(err, errlen, "listen (%s) failed - %s", opts->http_address, strerror(-fd));
        goto err;
    }
    nsq_sock_name(fd, a->http_addr, sizeof(a->http_addr));
    a->http = admin_http_new(a, fd);
    if (a->http == NULL) {
        snprintf(err, errlen, "listen (%s) failed - out of memory", opts->http_address);
        goto err;
    }
    a->rates = rates_new(a->ci, NSQADMIN_RATES_INTERVAL_NS, NSQADMIN_RATES_SAMPLES);
    if (a->rates == NULL) {
        snprintf(err, errlen, "out of memory");
        goto err;
    }

    a->sigint = evsignal_new(a->base, SIGINT, on_signal, a);
    a->sigterm = evsignal_new(a->base, SIGTERM, on_signal, a);
    if (a->sigint == NULL || a->sigterm == NULL || event_add(a->sigint, NULL) != 0 ||
        event_add(a->sigterm, NULL) != 0) {
        snprintf(err, errlen, "failed to install signal handlers");
        goto err;
    }
    nsq_info("HTTP: listening on %s", a->http_addr);
    return a;
err:
    nsqadmin_free(a);
    return NULL;
}

int nsqadmin_main(struct nsqadmin *a)
{
    event_base_dispatch(a->base);
    nsq_info("HTTP: closing %s", a->http_addr);
    /* queries still in flight are abandoned: their completions must not reach freed requests */
    a->closing = true;
    clusterinfo_close(a->ci);
    admin_http_free(a->http);
    a->http = NULL;
    return 0;
}

void nsqadmin_exit(struct nsqadmin *a)
{
    event_base_loopbreak(a->base);
}

void nsqadmin_free(struct nsqadmin *a)
{
    if (a == NULL)
        return;
    a->closing = true;
    clusterinfo_close(a->ci);
    rates_free(a->rates);
    admin_http_free(a->http);
    if (a->sigint != NULL)
        event_free(a->sigint);
    if (a->sigterm != NULL)
        event_free(a->sigterm);
    /* pending requests are canceled: a closing clusterinfo no longer calls their owners back */
    nsq_http_client_free(a->http_client);
    clusterinfo_free(a->ci);
    if (a->base != NULL)
        event_base_free(a->base);
    free(a);
}
