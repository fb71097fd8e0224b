/*
 * nsqlookupd: the daemon object. Owns the event loop, the registration database, the TCP
 * listener of the V1 protocol and the HTTP server; shuts them down on SIGINT/SIGTERM.
 */
#include "nsqlookupd.h"

#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "http.h"
#include "lookup_protocol_v1.h"
#include "nsq_log.h"
#include "nsq_systemd.h"
#include "registration_db.h"

/* ---- options (flags.md §3) ---- */

static int parse_log_level(const char *text, void *target)
{
    enum nsq_log_level l;
    if (nsq_log_parse_level(text, &l) != 0)
        return -EINVAL;
    *(int *)target = (int)l;
    return 0;
}

static int render_log_level(const void *target, struct evbuffer *out)
{
    const char *name = nsq_log_level_name((enum nsq_log_level) * (const int *)target);
    char lower[16];
    size_t i;
    for (i = 0; name[i] != '\0' && i + 1 < sizeof(lower); i++)
        lower[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + ('a' - 'A') : name[i]);
    lower[i] = '\0';
    return evbuffer_add_printf(out, "\"%s\"", lower) < 0 ? -ENOMEM : 0;
}

size_t nsqlookupd_options_table(struct nsqlookupd_options *o, struct nsq_opt *t)
{
    /* the broadcast address defaults to the OS host name, known only at run time */
    static char hostname[NSQ_NET_ADDRSTRLEN];
    nsq_hostname(hostname, sizeof(hostname));
    size_t n = 0;
    t[n++] = (struct nsq_opt){.flag = "log-level",
                              .type = NSQ_OPT_CUSTOM,
                              .target = &o->log_level,
                              .defval = "info",
                              .help = "set log verbosity: debug, info, warn, error, or fatal",
                              .parse = parse_log_level,
                              .render = render_log_level,
                              .usage_default = "INFO"};
    t[n++] = (struct nsq_opt){.flag = "log-prefix",
                              .type = NSQ_OPT_STRING,
                              .target = &o->log_prefix,
                              .defval = "[nsqlookupd] ",
                              .help = "log message prefix"};
    t[n++] = (struct nsq_opt){.flag = "verbose",
                              .cfg = "",
                              .type = NSQ_OPT_BOOL,
                              .target = &o->verbose,
                              .help = "[deprecated] has no effect, use --log-level"};
    t[n++] = (struct nsq_opt){.flag = "tcp-address",
                              .type = NSQ_OPT_STRING,
                              .target = &o->tcp_address,
                              .defval = "0.0.0.0:4160",
                              .help = "<addr>:<port> to listen on for TCP clients"};
    t[n++] = (struct nsq_opt){.flag = "http-address",
                              .type = NSQ_OPT_STRING,
                              .target = &o->http_address,
                              .defval = "0.0.0.0:4161",
                              .help = "<addr>:<port> to listen on for HTTP clients"};
    t[n++] = (struct nsq_opt){.flag = "broadcast-address",
                              .type = NSQ_OPT_STRING,
                              .target = &o->broadcast_address,
                              .defval = hostname,
                              .help = "address of this lookupd node, (default to the OS hostname)"};
    t[n++] = (struct nsq_opt){.flag = "inactive-producer-timeout",
                              .type = NSQ_OPT_DURATION,
                              .target = &o->inactive_producer_timeout,
                              .defval = "5m0s",
                              .help = "duration of time a producer will remain in the active "
                                      "list since its last ping"};
    t[n++] = (struct nsq_opt){.flag = "tombstone-lifetime",
                              .type = NSQ_OPT_DURATION,
                              .target = &o->tombstone_lifetime,
                              .defval = "45s",
                              .help = "duration of time a producer will remain tombstoned if "
                                      "registration remains"};
    return n;
}

/* ---- daemon ---- */

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int socklen, void *arg)
{
    (void)l;
    (void)sa;
    (void)socklen;
    if (lookup_conn_accept(arg, fd) != 0)
        nsq_error("TCP: failed to accept a client: out of memory");
}

/*
 * Accept errors. Transient ones (EMFILE, ENOBUFS...) leave a listener readable, so retrying at once
 * would spin the loop (libevent's default): the listener pauses for NSQLOOKUPD_ACCEPT_RETRY_MS
 * instead, as Go's accept loop sleeps. The error callback receives the listener's own argument
 * (the evhttp for the HTTP listener), so paused listeners are found through this small table:
 * a daemon has two listeners.
 */
#define MAX_GUARDED_LISTENERS 4

static struct accept_guard {
    struct evconnlistener *listener;
    struct event *retry;
} guards[MAX_GUARDED_LISTENERS];

static void on_accept_retry(evutil_socket_t fd, short what, void *arg)
{
    struct accept_guard *g = arg;
    (void)fd;
    (void)what;
    if (g->listener != NULL)
        evconnlistener_enable(g->listener);
}

static void on_accept_error(struct evconnlistener *l, void *arg)
{
    (void)arg;
    nsq_warn("accept error - %s", evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    struct timeval tv = {.tv_sec = 0, .tv_usec = NSQLOOKUPD_ACCEPT_RETRY_MS * 1000};
    for (size_t i = 0; i < MAX_GUARDED_LISTENERS; i++)
        if (guards[i].listener == l && evconnlistener_disable(l) == 0 &&
            event_add(guards[i].retry, &tv) != 0)
            evconnlistener_enable(l);
}

int nsqlookupd_guard_listener(struct nsqlookupd *ld, struct evconnlistener *l)
{
    for (size_t i = 0; i < MAX_GUARDED_LISTENERS; i++) {
        struct accept_guard *g = &guards[i];
        if (g->listener != NULL)
            continue;
        g->retry = evtimer_new(ld->base, on_accept_retry, g);
        if (g->retry == NULL)
            return -ENOMEM;
        g->listener = l;
        evconnlistener_set_error_cb(l, on_accept_error);
        return 0;
    }
    return -ENOSPC;
}

void nsqlookupd_unguard_listener(struct evconnlistener *l)
{
    for (size_t i = 0; i < MAX_GUARDED_LISTENERS; i++) {
        struct accept_guard *g = &guards[i];
        if (g->listener == l && l != NULL) {
            event_free(g->retry);
            g->retry = NULL;
            g->listener = NULL;
        }
    }
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    nsqlookupd_exit(arg);
}

/* Go's wording for a failed listen: "listen (<addr>) failed - listen tcp <addr>: bind: <errno
   text in lower case>". */
static void listen_error(const char *addr, int err, char *buf, size_t len)
{
    char host[NSQ_NET_ADDRSTRLEN];
    int port;
    bool tcp = nsq_split_host_port(addr, host, sizeof(host), &port) == 0;
    char text[128];
    snprintf(text, sizeof(text), "%s", strerror(err));
    text[0] = (char)tolower((unsigned char)text[0]);
    snprintf(buf, len, "listen (%s) failed - listen %s %s: bind: %s", addr, tcp ? "tcp" : "unix",
             addr, text);
}

struct nsqlookupd *nsqlookupd_new(struct nsqlookupd_options *opts, char *err, size_t errlen)
{
    struct nsqlookupd *ld = calloc(1, sizeof(*ld));
    if (ld == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    ld->opts = opts;
    nsq_hostname(ld->hostname, sizeof(ld->hostname));
    ld->base = event_base_new();
    ld->db = registration_db_new();
    if (ld->base == NULL || ld->db == NULL) {
        snprintf(err, errlen, "out of memory");
        goto err;
    }

    int fd = nsq_listen(opts->tcp_address, NSQ_NET_DEFAULT_BACKLOG, &ld->tcp_port);
    if (fd < 0) {
        listen_error(opts->tcp_address, -fd, err, errlen);
        goto err;
    }
    nsq_sock_name(fd, ld->tcp_addr, sizeof(ld->tcp_addr));
    ld->tcp_listener = evconnlistener_new(ld->base, on_accept, ld, LEV_OPT_CLOSE_ON_FREE,
                                          0 /* listen() already called */, fd);
    if (ld->tcp_listener == NULL) {
        close(fd);
        snprintf(err, errlen, "listen (%s) failed - out of memory", opts->tcp_address);
        goto err;
    }
    if (nsqlookupd_guard_listener(ld, ld->tcp_listener) != 0) {
        snprintf(err, errlen, "out of memory");
        goto err;
    }

    fd = nsq_listen(opts->http_address, NSQ_NET_DEFAULT_BACKLOG, &ld->http_port);
    if (fd < 0) {
        listen_error(opts->http_address, -fd, err, errlen);
        goto err;
    }
    nsq_sock_name(fd, ld->http_addr, sizeof(ld->http_addr));
    ld->http = lookup_http_new(ld, fd);
    if (ld->http == NULL) {
        snprintf(err, errlen, "listen (%s) failed - out of memory", opts->http_address);
        goto err;
    }

    ld->sigint = evsignal_new(ld->base, SIGINT, on_signal, ld);
    ld->sigterm = evsignal_new(ld->base, SIGTERM, on_signal, ld);
    if (ld->sigint == NULL || ld->sigterm == NULL || event_add(ld->sigint, NULL) != 0 ||
        event_add(ld->sigterm, NULL) != 0) {
        snprintf(err, errlen, "failed to install signal handlers");
        goto err;
    }
    nsq_info("TCP: listening on %s", ld->tcp_addr);
    nsq_info("HTTP: listening on %s", ld->http_addr);
    return ld;
err:
    nsqlookupd_free(ld);
    return NULL;
}

int nsqlookupd_main(struct nsqlookupd *ld)
{
    event_base_dispatch(ld->base);
    nsq_systemd_notify_stopping();
    /* stop accepting first, then drop the connections (their registrations go with them) */
    nsq_info("TCP: closing %s", ld->tcp_addr);
    nsqlookupd_unguard_listener(ld->tcp_listener);
    evconnlistener_free(ld->tcp_listener);
    ld->tcp_listener = NULL;
    lookup_conn_close_all(ld);
    nsq_info("HTTP: closing %s", ld->http_addr);
    lookup_http_free(ld->http);
    ld->http = NULL;
    return 0;
}

void nsqlookupd_exit(struct nsqlookupd *ld)
{
    event_base_loopbreak(ld->base);
}

void nsqlookupd_free(struct nsqlookupd *ld)
{
    if (ld == NULL)
        return;
    if (ld->tcp_listener != NULL) {
        nsqlookupd_unguard_listener(ld->tcp_listener);
        evconnlistener_free(ld->tcp_listener);
    }
    if (ld->base != NULL)
        lookup_conn_close_all(ld);
    lookup_http_free(ld->http);
    if (ld->sigint != NULL)
        event_free(ld->sigint);
    if (ld->sigterm != NULL)
        event_free(ld->sigterm);
    registration_db_free(ld->db);
    if (ld->base != NULL)
        event_base_free(ld->base);
    free(ld);
}
