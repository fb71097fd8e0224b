/*
 * nsq_quantile: end-to-end processing latency percentiles over a sliding time window
 * (http-api.md §2.1 "Latency", flags --e2e-processing-latency-*).
 *
 * Each window half holds a targeted-quantile summary (Cormode, Korn, Muthukrishnan, Srivastava,
 * "Effective computation of biased quantiles over data streams", ICDE 2005) with error bound
 * eps = 0.01 relative to the configured quantiles. Insertions go to the current half; every
 * window/2 the older half is cleared and becomes current, so a result covers between window/2 and
 * window of history. Results merge the two halves. Memory is bounded by the summary size
 * (O(1/eps * log(eps*n)) samples per half) plus a 500-sample insertion buffer.
 *
 * Threads: each instance has a mutex; insert and result may be called from different threads.
 */
#ifndef NSQ_QUANTILE_H
#define NSQ_QUANTILE_H

#include <stddef.h>
#include <stdint.h>

#define NSQ_QUANTILE_MAX     8    /* configured quantiles kept in a result */
#define NSQ_QUANTILE_EPSILON 0.01 /* error bound of the summaries */

struct nsq_quantile;

/* quantiles in (0,1], in the order results should list them (copied; at most NSQ_QUANTILE_MAX
   are used). Returns NULL on allocation failure or window_ns <= 0. */
struct nsq_quantile *nsq_quantile_new(int64_t window_ns, const double *quantiles, size_t n);
void nsq_quantile_free(struct nsq_quantile *q);

/* Adds one sample (e.g. now − message timestamp, in ns). now_ns moves the window. */
void nsq_quantile_insert(struct nsq_quantile *q, int64_t now_ns, double value_ns);

/* count: samples in the current window; value[i] estimates quantile[i] (0 when empty). */
struct nsq_quantile_result {
    uint64_t count;
    size_t n;
    double quantile[NSQ_QUANTILE_MAX];
    double value[NSQ_QUANTILE_MAX];
};
void nsq_quantile_result(struct nsq_quantile *q, int64_t now_ns, struct nsq_quantile_result *out);

/* Result over the union of several instances' windows (a topic over its channels), with the
   quantiles of qs[0]. This merges the summaries themselves, as upstream does. n = 0 → empty. */
void nsq_quantile_aggregate(struct nsq_quantile *const *qs, size_t n, int64_t now_ns,
                            struct nsq_quantile_result *out);

/* Tuples plus buffered samples currently held (both halves); shows the memory bound. */
size_t nsq_quantile_footprint(struct nsq_quantile *q);

/* Combines two results already computed: counts add up, values are count-weighted means (an
   approximation; prefer nsq_quantile_aggregate when the instances are at hand). into->n == 0
   takes from's quantiles. */
void nsq_quantile_merge(struct nsq_quantile_result *into, const struct nsq_quantile_result *from);

#endif
