/*
 * http: nsqadmin's HTTP server (http-api.md §5): the UI pages and assets, the JSON API (through
 * api.c), admin authorization (--admin-user / --acl-http-header), admin-action notifications,
 * /config (guarded by --allow-config-from-cidr), graphite rate and proxy, and the extra
 * GET /api/rates (rates.c). Every answer written here is compressed with gzip or deflate when
 * the request's Accept-Encoding names one of them (the first named wins).
 */
#ifndef NSQADMIN_HTTP_H
#define NSQADMIN_HTTP_H

#include <event2/util.h>

struct nsqadmin;
struct admin_http;

/* Serves on the listening socket fd (taken over; closed on failure). NULL when out of memory. */
struct admin_http *admin_http_new(struct nsqadmin *a, evutil_socket_t fd);
/* Releases the server and the API calls still in flight (call after clusterinfo_close). */
void admin_http_free(struct admin_http *h);

#endif
