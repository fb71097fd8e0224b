/*
 * http: nsqd's HTTP API (http-api.md §1-§2) on an evhttp listener, routed by nsq_http_router.
 */
#ifndef NSQD_HTTP_H
#define NSQD_HTTP_H

#include <stdbool.h>

struct nsqd;
struct evhttp;
struct nsqd_http;

/* Attaches the nsqd routes to http (is_tls: the HTTPS listener). On the plain listener with
   --tls-required=true every request is refused with 403 TLS_REQUIRED. NULL on allocation
   failure. */
struct nsqd_http *nsqd_http_new(struct nsqd *n, struct evhttp *http, bool is_tls);
void nsqd_http_free(struct nsqd_http *h);

#endif
