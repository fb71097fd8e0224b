/*
 * nsq_statsd: statsd lines over UDP (http-api.md §7).
 *
 * Lines "<prefix><name>:<value>|<type>\n" are packed into datagrams of at most packet_size bytes,
 * never splitting a line (a single line longer than packet_size travels alone). Datagrams queue
 * up until sent: nsq_statsd_flush sends them all at once; a caller that spreads them over the
 * push interval (as upstream does) calls nsq_statsd_finish once and then nsq_statsd_send_one
 * from a timer while nsq_statsd_pending is non-zero.
 *
 * Threads: an instance belongs to one thread.
 */
#ifndef NSQ_STATSD_H
#define NSQ_STATSD_H

#include <stddef.h>
#include <stdint.h>

#define NSQ_STATSD_DEFAULT_PACKET_SIZE 508

/* addr "host:port" (resolved now, blocking); prefix copied (NULL = none). Returns NULL with errno
   set on failure. */
struct nsq_statsd *nsq_statsd_new(const char *addr, const char *prefix, size_t packet_size);
void nsq_statsd_free(struct nsq_statsd *s);

void nsq_statsd_gauge(struct nsq_statsd *s, const char *name, int64_t v);       /* |g */
void nsq_statsd_counter(struct nsq_statsd *s, const char *name, int64_t delta); /* |c */

/* Closes the datagram being filled so that it is queued. */
void nsq_statsd_finish(struct nsq_statsd *s);
/* Datagrams queued and not yet sent. */
size_t nsq_statsd_pending(const struct nsq_statsd *s);
/* Sends the oldest queued datagram. Returns 1 sent, 0 nothing queued, or -errno (the datagram is
   dropped either way: statsd is best effort). */
int nsq_statsd_send_one(struct nsq_statsd *s);
/* Finishes and sends everything queued. Returns 0 or the first -errno seen. */
int nsq_statsd_flush(struct nsq_statsd *s);

/* Upstream's prefix: every "%s" in tmpl replaced by "<broadcast_address>_<http_port>" with '.' and
   ':' turned into '_', then '.' appended if missing; an empty tmpl stays empty. Returns 0 or
   -ENAMETOOLONG. */
int nsq_statsd_build_prefix(const char *tmpl, const char *broadcast_address, int http_port,
                            char *out, size_t len);

#endif
