/*
 * http: nsqlookupd's HTTP API (http-api.md §4) on libevent's evhttp, routed by nsq_http_server.
 * Read endpoints (/lookup, /topics, /channels, /nodes, /debug, /info, /ping) and the
 * administrative POSTs (/topic/create|delete|tombstone, /channel/create|delete) all run on the
 * daemon's loop and read or change its registration database directly.
 */
#ifndef NSQLOOKUPD_HTTP_H
#define NSQLOOKUPD_HTTP_H

#include <event2/util.h>

struct nsqlookupd;
struct lookup_http;

/* Serves HTTP on the listening socket fd (ownership passes to the server, also on failure).
   Returns NULL on failure. */
struct lookup_http *lookup_http_new(struct nsqlookupd *ld, evutil_socket_t fd);
/* Closes the listener and every HTTP connection. NULL is a no-op. */
void lookup_http_free(struct lookup_http *h);

#endif
