/*
 * hostpool: destination choice for the fan-out utilities (see hostpool.h for the rules).
 *
 * Response times are kept per host in a ring of HOSTPOOL_BUCKETS (count, sum) buckets; the ring
 * advances by one bucket every HOSTPOOL_DECAY_WINDOW / HOSTPOOL_BUCKETS, clearing the bucket it
 * enters, so a measurement fades out after the window. A host's score is the weighted mean of
 * its buckets' mean response times, the newest bucket weighing HOSTPOOL_BUCKETS and the oldest 1.
 * Scoring is O(hosts × buckets) per pick, which is nothing next to the HTTP request or PUB it
 * chooses a destination for.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hostpool.h"

struct hp_host {
    bool dead;
    int64_t retry_at;    /* a dead host is offered a request again from then on */
    int64_t retry_delay; /* doubles with each failed retry */
    uint64_t count[HOSTPOOL_BUCKETS];
    int64_t sum_ns[HOSTPOOL_BUCKETS];
};

struct hostpool {
    enum hostpool_mode mode;
    size_t n;
    size_t next; /* round-robin position */
    uint64_t rng;
    double epsilon;
    int bucket;           /* current bucket of every host's ring */
    int64_t bucket_start; /* when the current bucket began; 0 before the first use */
    struct hp_host *hosts;
};

int hostpool_parse_mode(const char *name, enum hostpool_mode *out)
{
    if (!strcmp(name, "round-robin"))
        *out = HOSTPOOL_ROUND_ROBIN;
    else if (!strcmp(name, "hostpool"))
        *out = HOSTPOOL_STANDARD;
    else if (!strcmp(name, "epsilon-greedy"))
        *out = HOSTPOOL_EPSILON_GREEDY;
    else
        return -EINVAL;
    return 0;
}

struct hostpool *hostpool_new(enum hostpool_mode mode, size_t n, uint64_t seed)
{
    if (n == 0)
        return NULL;
    struct hostpool *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->hosts = calloc(n, sizeof(*p->hosts));
    if (!p->hosts) {
        free(p);
        return NULL;
    }
    p->mode = mode;
    p->n = n;
    p->rng = seed ? seed : 1;
    p->epsilon = HOSTPOOL_EPSILON;
    return p;
}

void hostpool_free(struct hostpool *p)
{
    if (!p)
        return;
    free(p->hosts);
    free(p);
}

bool hostpool_dead(const struct hostpool *p, size_t i)
{
    return i < p->n && p->hosts[i].dead;
}

double hostpool_epsilon(const struct hostpool *p)
{
    return p->epsilon;
}

/* Uniform in [0, 1) (xorshift64*: exploration needs no better randomness). */
static double rnd01(struct hostpool *p)
{
    p->rng ^= p->rng >> 12;
    p->rng ^= p->rng << 25;
    p->rng ^= p->rng >> 27;
    return (double)((p->rng * 2685821657736338717ULL) >> 11) / (double)(1ULL << 53);
}

static bool usable(const struct hp_host *h, int64_t now)
{
    return !h->dead || now >= h->retry_at;
}

/* A dead host that is offered a request waits longer for the next offer. */
static void took(struct hp_host *h, int64_t now)
{
    if (!h->dead)
        return;
    h->retry_delay *= 2;
    if (h->retry_delay > HOSTPOOL_RETRY_MAX)
        h->retry_delay = HOSTPOOL_RETRY_MAX;
    h->retry_at = now + h->retry_delay;
}

/* The next usable host in turn; revives everyone when none is usable. */
static size_t next_live(struct hostpool *p, int64_t now)
{
    for (size_t k = 0; k < p->n; k++) {
        size_t i = (p->next + k) % p->n;
        if (usable(&p->hosts[i], now)) {
            p->next = i + 1;
            took(&p->hosts[i], now);
            return i;
        }
    }
    for (size_t i = 0; i < p->n; i++)
        p->hosts[i].dead = false;
    return p->next++ % p->n;
}

static void advance_buckets(struct hostpool *p, int64_t now)
{
    const int64_t step = HOSTPOOL_DECAY_WINDOW / HOSTPOOL_BUCKETS;
    if (p->bucket_start == 0) {
        p->bucket_start = now;
        return;
    }
    for (int moved = 0; now - p->bucket_start >= step; moved++) {
        p->bucket_start += step;
        if (moved >= HOSTPOOL_BUCKETS)
            continue; /* every bucket already cleared: just catch the clock up */
        p->bucket = (p->bucket + 1) % HOSTPOOL_BUCKETS;
        for (size_t i = 0; i < p->n; i++) {
            p->hosts[i].count[p->bucket] = 0;
            p->hosts[i].sum_ns[p->bucket] = 0;
        }
    }
}

/* Weighted mean response time of host h, or -1 without measurements in the window. */
static double score(const struct hostpool *p, const struct hp_host *h)
{
    double total = 0, weights = 0;
    for (int age = 0; age < HOSTPOOL_BUCKETS; age++) {
        int b = (p->bucket - age + HOSTPOOL_BUCKETS) % HOSTPOOL_BUCKETS;
        if (h->count[b] == 0)
            continue;
        double w = (double)(HOSTPOOL_BUCKETS - age);
        total += w * ((double)h->sum_ns[b] / (double)h->count[b]);
        weights += w;
    }
    return weights > 0 ? total / weights : -1;
}

static size_t pick_greedy(struct hostpool *p, int64_t now)
{
    advance_buckets(p, now);
    if (rnd01(p) < p->epsilon) {
        p->epsilon *= HOSTPOOL_EPSILON_DECAY;
        if (p->epsilon < HOSTPOOL_EPSILON_MIN)
            p->epsilon = HOSTPOOL_EPSILON_MIN;
        return next_live(p, now);
    }
    size_t best = p->n;
    double best_score = 0;
    for (size_t i = 0; i < p->n; i++) {
        if (!usable(&p->hosts[i], now))
            continue;
        double s = score(p, &p->hosts[i]);
        if (s >= 0 && (best == p->n || s < best_score)) {
            best = i;
            best_score = s;
        }
    }
    if (best == p->n)
        return next_live(p, now);
    took(&p->hosts[best], now);
    return best;
}

size_t hostpool_pick(struct hostpool *p, int64_t now_ns)
{
    switch (p->mode) {
    case HOSTPOOL_ROUND_ROBIN:
        return p->next++ % p->n;
    case HOSTPOOL_STANDARD:
        return next_live(p, now_ns);
    case HOSTPOOL_EPSILON_GREEDY:
    default:
        return pick_greedy(p, now_ns);
    }
}

void hostpool_mark(struct hostpool *p, size_t i, bool ok, int64_t dur_ns, int64_t now_ns)
{
    if (i >= p->n)
        return;
    struct hp_host *h = &p->hosts[i];
    if (!ok) {
        if (!h->dead) {
            h->dead = true;
            h->retry_delay = HOSTPOOL_RETRY_INITIAL;
            h->retry_at = now_ns + HOSTPOOL_RETRY_INITIAL;
        }
        return;
    }
    h->dead = false;
    if (p->mode == HOSTPOOL_EPSILON_GREEDY) {
        advance_buckets(p, now_ns);
        h->count[p->bucket]++;
        h->sum_ns[p->bucket] += dur_ns < 0 ? 0 : dur_ns;
    }
}
