/*
 * rates: nsqadmin's own history of message rates and depths, so that the UI can show rates and
 * small charts without graphite. Every interval the sampler polls all nodes' /stats (through
 * clusterinfo, no clients) and appends, per topic and per topic/channel, the cluster-wide
 * message_count and depth to a fixed ring of samples. GET /api/rates renders one series with the
 * msgs/s between successive samples.
 *
 * Memory: one ring of `samples` entries per series; a series that has not been seen for a whole
 * ring is dropped. Threads: the loop thread of the clusterinfo.
 */
#ifndef NSQADMIN_RATES_H
#define NSQADMIN_RATES_H

#include <stddef.h>
#include <stdint.h>

struct clusterinfo;
struct nsq_json;
struct rates;

/* Starts sampling at once, then every interval_ns. NULL when out of memory. */
struct rates *rates_new(struct clusterinfo *ci, int64_t interval_ns, size_t samples);
/* Call after clusterinfo_close when a poll may be in flight. */
void rates_free(struct rates *r);

/* Writes {"topic":T,"channel":C,"interval":<ns>,"samples":[{"timestamp":<unix s>,
   "message_count":N,"depth":N,"rate":<msgs/s or null for the first>}...]} (oldest first; an
   unknown series has "samples":[]). channel may be NULL (topic totals). */
void rates_json(struct rates *r, const char *topic, const char *channel, struct nsq_json *j);

#endif
