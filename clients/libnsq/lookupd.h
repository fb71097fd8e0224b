/*
 * lookupd: asynchronous "GET /lookup?topic=T" against one nsqlookupd, on libevent's HTTP client.
 * The reply is accepted in both shapes nsqlookupd has used: the plain object
 * {"channels":[...],"producers":[...]} and the legacy wrapper {"status_code":..,"data":{...}}.
 * A 404 (topic unknown) is a successful lookup with no producers.
 */
#ifndef NSQ_LIB_LOOKUPD_H
#define NSQ_LIB_LOOKUPD_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct nsq_lookupd_query;

/* err 0 with n producer TCP addresses ("host:port", valid during the call), or a negative code. */
typedef void (*nsq_lookupd_cb)(int err, char **addrs, size_t n, void *arg);

/* Normalises "host:port" or "http://host:port[/]" into host and port. 0 or -EINVAL. */
int nsq_lookupd_parse_addr(const char *addr, char *host, size_t hostlen, int *port);

/* Starts a lookup; cb runs once (from the loop) unless the query is canceled first. Returns NULL
   on a bad address or allocation failure. */
struct nsq_lookupd_query *nsq_lookupd_query_start(struct event_base *base, const char *addr,
                                                  const char *topic, int64_t timeout_ns,
                                                  nsq_lookupd_cb cb, void *arg);
/* Cancels a query still running (its callback will not run). */
void nsq_lookupd_query_cancel(struct nsq_lookupd_query *q);

/* Parses a /lookup reply body into producer addresses (caller frees each and the array). */
int nsq_lookupd_parse_producers(const char *body, size_t len, char ***addrs, size_t *n);

#endif
