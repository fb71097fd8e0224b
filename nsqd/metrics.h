/*
 * metrics: GET /metrics, a Prometheus text exposition (format 0.0.4) of the /stats snapshot
 * (stats.h). Every family has its # HELP and # TYPE lines; label values are escaped (\\ \" \n).
 *
 * Families (labels in braces):
 *   nsqd_info{version}                        gauge 1
 *   nsqd_health                               gauge, 1 healthy / 0 after a failed disk write
 *   process_start_time_seconds                gauge, Unix seconds
 *   nsqd_topic_depth{topic}, nsqd_topic_backend_depth{topic}, nsqd_topic_paused{topic}  gauges
 *   nsqd_topic_messages_total{topic}, nsqd_topic_message_bytes_total{topic}            counters
 *   nsqd_topic_channels{topic}                gauge
 *   nsqd_topic_e2e_processing_latency_seconds{topic,quantile}            summary (quantiles,
 * _count) nsqd_channel_depth, _backend_depth, _in_flight, _deferred, _clients,
 * _paused{topic,channel} gauges nsqd_channel_messages_total, _requeued_total,
 * _timed_out_total{topic,channel}             counters
 *   nsqd_channel_e2e_processing_latency_seconds{topic,channel,quantile}  summary (quantiles,
 * _count) nsqd_client_connections{role="consumer"|"producer"}  gauge: subscribed / publishing
 * connections nsqd_client_in_flight, nsqd_client_ready   gauges: sums over subscribed connections
 *   nsqd_channel_delivered_by_locality_total{topic,channel,locality}  counter, locality =
 *                                             zone_local|region_local|global; only channels with
 *                                             deliveries counted by the topology experiment
 *   nsqd_memory_heap_in_use_bytes, nsqd_memory_heap_idle_bytes, nsqd_memory_heap_released_bytes
 *                                             gauges (with the snapshot's memory section)
 *
 * Summaries have no _sum series: the latency streams keep quantiles and a count only.
 * The counters are the process-lifetime figures of /stats (reset when a topic or channel is
 * deleted and recreated, which Prometheus treats as a counter reset).
 */
#ifndef NSQD_METRICS_H
#define NSQD_METRICS_H

struct evbuffer;
struct nsqd_stats;

/* The Content-Type of the exposition. */
#define NSQD_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Renders the exposition of s into out. Returns 0 or -ENOMEM. */
int nsqd_metrics_render(const struct nsqd_stats *s, struct evbuffer *out);

/* Appends a label value with the exposition escaping (backslash, double quote, newline). */
int nsqd_metrics_escape(struct evbuffer *out, const char *s);

#endif
