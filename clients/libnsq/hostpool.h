/*
 * hostpool: chooses one of n destinations per request for the utilities that fan out to several
 * hosts (nsq_to_http, nsq_to_nsq --mode). Not part of nsq.h; the utilities include it directly.
 *
 *   round-robin     each host in turn, whatever happened before.
 *   hostpool        each live host in turn. A failed request marks its host dead; a dead host is
 *                   offered one request again after HOSTPOOL_RETRY_INITIAL, then after twice as
 *                   long each time it fails again (at most HOSTPOOL_RETRY_MAX); a success revives
 *                   it. When every host is dead and none is due, all are revived.
 *   epsilon-greedy  the hostpool rules for dead hosts, and among live hosts mostly the one with the
 *                   best recent response time: responses are kept in HOSTPOOL_BUCKETS buckets
 *                   covering HOSTPOOL_DECAY_WINDOW, recent buckets weighing more. With probability
 *                   epsilon (HOSTPOOL_EPSILON at first, times HOSTPOOL_EPSILON_DECAY after each
 *                   exploration, never below HOSTPOOL_EPSILON_MIN) the next host in turn is taken
 *                   instead, so slower hosts keep being measured. Until some host has a
 *                   measurement, hosts are taken in turn.
 *
 * Time is passed in by the caller (monotonic ns) so the rules can be tested without waiting.
 * Single-threaded, like the rest of the library.
 */
#ifndef NSQ_LIB_HOSTPOOL_H
#define NSQ_LIB_HOSTPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HOSTPOOL_RETRY_INITIAL (30LL * 1000000000LL)
#define HOSTPOOL_RETRY_MAX     (900LL * 1000000000LL)
#define HOSTPOOL_DECAY_WINDOW  (300LL * 1000000000LL)
#define HOSTPOOL_BUCKETS       120
#define HOSTPOOL_EPSILON       0.3
#define HOSTPOOL_EPSILON_DECAY 0.9
#define HOSTPOOL_EPSILON_MIN   0.01

enum hostpool_mode {
    HOSTPOOL_ROUND_ROBIN,
    HOSTPOOL_STANDARD,
    HOSTPOOL_EPSILON_GREEDY,
};

struct hostpool; /* opaque */

/* "round-robin", "hostpool", "epsilon-greedy". Returns 0, or -EINVAL for any other name. */
int hostpool_parse_mode(const char *name, enum hostpool_mode *out);
/* A pool of n (> 0) hosts, numbered 0..n-1. seed drives exploration. NULL on failure. */
struct hostpool *hostpool_new(enum hostpool_mode mode, size_t n, uint64_t seed);
void hostpool_free(struct hostpool *p);
/* The host for the next request. */
size_t hostpool_pick(struct hostpool *p, int64_t now_ns);
/* The outcome of a request to host i that took dur_ns. */
void hostpool_mark(struct hostpool *p, size_t i, bool ok, int64_t dur_ns, int64_t now_ns);
/* Whether host i is marked dead now. */
bool hostpool_dead(const struct hostpool *p, size_t i);
/* Current exploration probability (epsilon-greedy). */
double hostpool_epsilon(const struct hostpool *p);

#endif
