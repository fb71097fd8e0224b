/*
 * statsd: periodic push of nsqd's statistics to a statsd server over UDP (http-api.md §7).
 *
 * Every --statsd-interval a timer on the nsqd loop takes a stats snapshot (stats.h, without
 * clients), sends gauges for current values and counters for the differences against the previous
 * snapshot, and keeps the new snapshot for the next round. Metric names are
 * "<prefix>topic.<T>.<metric>" etc.; the prefix is --statsd-prefix with every "%s" replaced by the
 * host key ("<broadcast-address>:<broadcast-http-port>" with '.' and ':' turned into '_') and a
 * '.' appended when missing. Sending never blocks: it is one non-blocking UDP socket.
 *
 * Threads: the loop thread only.
 */
#ifndef NSQD_STATSD_H
#define NSQD_STATSD_H

#include <stdbool.h>
#include <stddef.h>

struct nsqd;
struct nsqd_stats;
struct nsqd_statsd;
struct nsq_statsd;

/*
 * Starts the pusher for n if --statsd-address is set. Returns NULL when statsd is disabled or on
 * failure (logged); the daemon runs on either way. Call after the listeners are open (the prefix
 * uses the broadcast HTTP port).
 */
struct nsqd_statsd *nsqd_statsd_new(struct nsqd *n);
/* Stops the timer and frees. NULL is a no-op. */
void nsqd_statsd_free(struct nsqd_statsd *s);

/*
 * Emits one round of metrics for `cur` into sink, with counters relative to `last` (NULL = first
 * round: counters carry the full values). exclude_ephemeral skips #ephemeral topics and channels;
 * mem emits the mem.* metrics (cur->has_memory must be set). Exposed for tests.
 */
void nsqd_statsd_emit(struct nsq_statsd *sink, const struct nsqd_stats *cur,
                      const struct nsqd_stats *last, bool exclude_ephemeral, bool mem);

#endif
