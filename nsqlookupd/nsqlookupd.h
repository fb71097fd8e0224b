/*
 * nsqlookupd: the discovery daemon. nsqd instances connect over TCP (lookup_protocol_v1) to
 * register their topics and channels; consumers and nsqadmin query the HTTP API (http) to find
 * the producers of a topic. State lives in memory only (registration_db).
 *
 * One thread runs one libevent loop that owns everything: the listeners, the V1 connections, the
 * HTTP server and the registration database.
 */
#ifndef NSQLOOKUPD_NSQLOOKUPD_H
#define NSQLOOKUPD_NSQLOOKUPD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nsq_net.h"
#include "nsq_options.h"

struct event_base;
struct registration_db;
struct lookup_conn;
struct lookup_http;
struct evconnlistener;
struct event;

/* flags.md §3: every flag of nsqlookupd. Strings are malloc'd (nsq_options). */
struct nsqlookupd_options {
    int log_level; /* enum nsq_log_level */
    char *log_prefix;
    bool verbose;
    char *tcp_address;
    char *http_address;
    char *broadcast_address;           /* default: the OS host name */
    int64_t inactive_producer_timeout; /* ns */
    int64_t tombstone_lifetime;        /* ns */
};

/* After an accept error (EMFILE...) the listener pauses this long instead of spinning. */
#define NSQLOOKUPD_ACCEPT_RETRY_MS 100
/* Largest HTTP request body read (upstream reads and ignores bodies without a bound). */
#define NSQLOOKUPD_HTTP_MAX_BODY (1024 * 1024)
/* Largest HTTP request header block. */
#define NSQLOOKUPD_HTTP_MAX_HEADERS (64 * 1024)

/* Fills `table` (at least NSQLOOKUPD_NUM_OPTIONS entries) with the option table targeting o. */
#define NSQLOOKUPD_NUM_OPTIONS 8
size_t nsqlookupd_options_table(struct nsqlookupd_options *o, struct nsq_opt *table);

struct nsqlookupd {
    struct nsqlookupd_options *opts; /* borrowed from main */
    struct event_base *base;
    struct registration_db *db;
    char hostname[NSQ_NET_ADDRSTRLEN];
    int tcp_port; /* real bound ports (port 0 in the address → ephemeral) */
    int http_port;
    char tcp_addr[NSQ_NET_ADDRSTRLEN];
    char http_addr[NSQ_NET_ADDRSTRLEN];
    struct evconnlistener *tcp_listener;
    struct lookup_http *http;
    struct lookup_conn *conns; /* open V1 connections (list owned here) */
    struct event *sigint, *sigterm;
};

/*
 * Opens the listeners (logging "TCP: listening on <addr>" and "HTTP: listening on <addr>").
 * Returns NULL with a message in err on failure. opts must outlive the daemon.
 */
struct nsqlookupd *nsqlookupd_new(struct nsqlookupd_options *opts, char *err, size_t errlen);
/* Runs the loop until SIGINT/SIGTERM (or nsqlookupd_exit), then closes listeners and
   connections. Returns 0. */
int nsqlookupd_main(struct nsqlookupd *ld);
/* Makes listener l pause for NSQLOOKUPD_ACCEPT_RETRY_MS after an accept error instead of
   retrying at once. Returns 0, -ENOMEM or -ENOSPC. Unguard before freeing the listener. */
int nsqlookupd_guard_listener(struct nsqlookupd *ld, struct evconnlistener *l);
void nsqlookupd_unguard_listener(struct evconnlistener *l);
/* Asks the loop to stop (safe from the loop thread). */
void nsqlookupd_exit(struct nsqlookupd *ld);
void nsqlookupd_free(struct nsqlookupd *ld);

#endif
