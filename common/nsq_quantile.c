/*
 * nsq_quantile: the targeted-quantile summary and the two-half sliding window.
 *
 * Summary: a sorted array of tuples (value v, width g, delta d). For a tuple, g is the number of
 * observations it stands for since its predecessor and d bounds the uncertainty of its rank. The
 * invariant f(r, n) = min over targets of (2 eps r / q if q n <= r, else 2 eps (n - r) / (1 - q))
 * limits how much g + d may grow around rank r, which keeps error small near the targeted
 * quantiles and lets the rest be compressed. New samples are buffered and merged in sorted
 * batches; a query on a summary that never reached the buffer size is answered exactly from the
 * buffer.
 */
#include "nsq_quantile.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define BUFFER_SAMPLES 500 /* insertion batch: amortises merge and compress */

struct sample {
    double v, g, d;
};

struct stream {
    const double *targets; /* owned by the nsq_quantile */
    size_t ntargets;
    double n; /* observations merged into l */
    struct sample *l;
    size_t llen, lcap;
    double *buf; /* not yet merged */
    size_t blen;
};

struct nsq_quantile {
    pthread_mutex_t lock;
    int64_t half_ns;
    int64_t last_move; /* 0 until the first call */
    int current;
    struct stream s[2];
    double targets[NSQ_QUANTILE_MAX];
    size_t ntargets;
};

/* Allowed g + d around rank r. */
static double invariant(const struct stream *s, double r)
{
    double m = DBL_MAX;
    for (size_t i = 0; i < s->ntargets; i++) {
        double q = s->targets[i], f;
        if (q * s->n <= r)
            f = (2 * NSQ_QUANTILE_EPSILON * r) / q;
        else
            f = (2 * NSQ_QUANTILE_EPSILON * (s->n - r)) / (1 - q);
        if (f < m)
            m = f;
    }
    return m;
}

static int stream_init(struct stream *s, const double *targets, size_t n)
{
    memset(s, 0, sizeof(*s));
    s->targets = targets;
    s->ntargets = n;
    s->buf = malloc(BUFFER_SAMPLES * sizeof(double));
    return s->buf ? 0 : -ENOMEM;
}

static void stream_destroy(struct stream *s)
{
    free(s->l);
    free(s->buf);
    memset(s, 0, sizeof(*s));
}

static void stream_reset(struct stream *s)
{
    s->llen = 0;
    s->n = 0;
    s->blen = 0;
}

static int reserve(struct stream *s, size_t need)
{
    if (need <= s->lcap)
        return 0;
    size_t nc = s->lcap ? s->lcap * 2 : 64;
    while (nc < need)
        nc *= 2;
    struct sample *nl = realloc(s->l, nc * sizeof(*nl));
    if (!nl)
        return -ENOMEM;
    s->l = nl;
    s->lcap = nc;
    return 0;
}

/* Merges adjacent tuples from the top down while the invariant allows. */
static void compress(struct stream *s)
{
    if (s->llen < 2)
        return;
    size_t xi = s->llen - 1;
    struct sample x = s->l[xi];
    double r = s->n - 1 - x.g;
    for (size_t k = s->llen - 1; k-- > 0;) {
        struct sample c = s->l[k];
        if (c.g + x.g + x.d <= invariant(s, r)) {
            x.g += c.g;
            s->l[xi] = x;
            memmove(&s->l[k], &s->l[k + 1], (s->llen - k - 1) * sizeof(*s->l));
            s->llen--;
            xi--;
        } else {
            x = c;
            xi = k;
        }
        r -= c.g;
    }
}

/* Merges sorted samples (with their own widths and deltas) into the summary. */
static int merge_sorted(struct stream *s, const struct sample *in, size_t nin)
{
    if (reserve(s, s->llen + nin) < 0)
        return -ENOMEM;
    double r = 0;
    size_t i = 0;
    for (size_t k = 0; k < nin; k++) {
        const struct sample *x = &in[k];
        bool placed = false;
        for (; i < s->llen; i++) {
            if (s->l[i].v > x->v) {
                memmove(&s->l[i + 1], &s->l[i], (s->llen - i) * sizeof(*s->l));
                double d = floor(invariant(s, r)) - 1;
                s->l[i] = (struct sample){x->v, x->g, x->d > d ? x->d : d};
                s->llen++;
                i++;
                placed = true;
                break;
            }
            r += s->l[i].g;
        }
        if (!placed) {
            s->l[s->llen++] = (struct sample){x->v, x->g, 0};
            i++;
        }
        s->n += x->g;
        r += x->g;
    }
    compress(s);
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y ? 1 : 0;
}

static int cmp_sample(const void *a, const void *b)
{
    return cmp_double(&((const struct sample *)a)->v, &((const struct sample *)b)->v);
}

static void flush(struct stream *s)
{
    if (s->blen == 0)
        return;
    qsort(s->buf, s->blen, sizeof(double), cmp_double);
    struct sample tmp[BUFFER_SAMPLES];
    for (size_t i = 0; i < s->blen; i++)
        tmp[i] = (struct sample){s->buf[i], 1, 0};
    if (merge_sorted(s, tmp, s->blen) == 0)
        s->blen = 0;
}

static void stream_insert(struct stream *s, double v)
{
    s->buf[s->blen++] = v;
    if (s->blen == BUFFER_SAMPLES)
        flush(s);
}

static uint64_t stream_count(const struct stream *s)
{
    return (uint64_t)s->blen + (uint64_t)s->n;
}

static double stream_query(struct stream *s, double q)
{
    if (s->llen == 0) {
        /* never flushed: exact answer from the buffer */
        if (s->blen == 0)
            return 0;
        qsort(s->buf, s->blen, sizeof(double), cmp_double);
        size_t i = (size_t)ceil((double)s->blen * q);
        if (i > 0)
            i--;
        if (i >= s->blen)
            i = s->blen - 1;
        return s->buf[i];
    }
    flush(s);
    double t = ceil(q * s->n);
    t += ceil(invariant(s, t) / 2);
    const struct sample *p = &s->l[0];
    double r = 0;
    for (size_t i = 1; i < s->llen; i++) {
        const struct sample *c = &s->l[i];
        r += p->g;
        if (r + c->g + c->d > t)
            return p->v;
        p = c;
    }
    return p->v;
}

/* Merges all of src's observations into dst (src is flushed first when it has a summary). */
static int stream_merge_from(struct stream *dst, struct stream *src)
{
    if (src->llen == 0) {
        if (src->blen == 0)
            return 0;
        struct sample *tmp = malloc(src->blen * sizeof(*tmp));
        if (!tmp)
            return -ENOMEM;
        for (size_t i = 0; i < src->blen; i++)
            tmp[i] = (struct sample){src->buf[i], 1, 0};
        qsort(tmp, src->blen, sizeof(*tmp), cmp_sample);
        int rc = merge_sorted(dst, tmp, src->blen);
        free(tmp);
        return rc;
    }
    flush(src);
    struct sample *tmp = malloc(src->llen * sizeof(*tmp));
    if (!tmp)
        return -ENOMEM;
    memcpy(tmp, src->l, src->llen * sizeof(*tmp));
    int rc = merge_sorted(dst, tmp, src->llen);
    free(tmp);
    return rc;
}

/* ---- window ------------------------------------------------------------------------------- */

struct nsq_quantile *nsq_quantile_new(int64_t window_ns, const double *quantiles, size_t n)
{
    if (window_ns <= 0)
        return NULL;
    struct nsq_quantile *q = calloc(1, sizeof(*q));
    if (!q)
        return NULL;
    q->ntargets = n > NSQ_QUANTILE_MAX ? NSQ_QUANTILE_MAX : n;
    if (q->ntargets)
        memcpy(q->targets, quantiles, q->ntargets * sizeof(double));
    q->half_ns = window_ns / 2 > 0 ? window_ns / 2 : 1;
    pthread_mutex_init(&q->lock, NULL);
    if (stream_init(&q->s[0], q->targets, q->ntargets) < 0 ||
        stream_init(&q->s[1], q->targets, q->ntargets) < 0) {
        nsq_quantile_free(q);
        return NULL;
    }
    return q;
}

void nsq_quantile_free(struct nsq_quantile *q)
{
    if (!q)
        return;
    stream_destroy(&q->s[0]);
    stream_destroy(&q->s[1]);
    pthread_mutex_destroy(&q->lock);
    free(q);
}

/* Rotates halves that have gone stale by now_ns. Caller holds the lock. */
static void move_window(struct nsq_quantile *q, int64_t now_ns)
{
    if (q->last_move == 0) {
        q->last_move = now_ns;
        return;
    }
    int64_t gap = now_ns - q->last_move;
    if (gap > 2 * q->half_ns) {
        /* both halves stale: jump straight to the rotation the loop below would end at, the
           first k with last_move + k * half >= now - half */
        int64_t k = (gap - q->half_ns + q->half_ns - 1) / q->half_ns;
        stream_reset(&q->s[0]);
        stream_reset(&q->s[1]);
        q->last_move += k * q->half_ns;
        q->current = (int)((q->current + k) & 1);
        return;
    }
    while (now_ns > q->last_move + q->half_ns) {
        q->current ^= 1;
        q->last_move += q->half_ns;
        stream_reset(&q->s[q->current]);
    }
}

void nsq_quantile_insert(struct nsq_quantile *q, int64_t now_ns, double value_ns)
{
    pthread_mutex_lock(&q->lock);
    move_window(q, now_ns);
    stream_insert(&q->s[q->current], value_ns);
    pthread_mutex_unlock(&q->lock);
}

static void result_from(struct stream *merged, const double *targets, size_t n,
                        struct nsq_quantile_result *out)
{
    memset(out, 0, sizeof(*out));
    out->n = n;
    out->count = stream_count(merged);
    for (size_t i = 0; i < n; i++) {
        out->quantile[i] = targets[i];
        out->value[i] = stream_query(merged, targets[i]);
    }
}

void nsq_quantile_aggregate(struct nsq_quantile *const *qs, size_t n, int64_t now_ns,
                            struct nsq_quantile_result *out)
{
    memset(out, 0, sizeof(*out));
    if (n == 0)
        return;
    struct stream merged;
    if (stream_init(&merged, qs[0]->targets, qs[0]->ntargets) < 0)
        return;
    for (size_t k = 0; k < n; k++) {
        struct nsq_quantile *q = qs[k];
        pthread_mutex_lock(&q->lock);
        move_window(q, now_ns);
        stream_merge_from(&merged, &q->s[0]);
        stream_merge_from(&merged, &q->s[1]);
        pthread_mutex_unlock(&q->lock);
    }
    result_from(&merged, qs[0]->targets, qs[0]->ntargets, out);
    stream_destroy(&merged);
}

void nsq_quantile_result(struct nsq_quantile *q, int64_t now_ns, struct nsq_quantile_result *out)
{
    nsq_quantile_aggregate(&q, 1, now_ns, out);
}

void nsq_quantile_merge(struct nsq_quantile_result *into, const struct nsq_quantile_result *from)
{
    if (into->n == 0 && into->count == 0) {
        *into = *from;
        return;
    }
    uint64_t total = into->count + from->count;
    for (size_t i = 0; i < into->n && i < from->n; i++) {
        if (total)
            into->value[i] =
                    (into->value[i] * (double)into->count + from->value[i] * (double)from->count) /
                    (double)total;
    }
    into->count = total;
}

size_t nsq_quantile_footprint(struct nsq_quantile *q)
{
    pthread_mutex_lock(&q->lock);
    size_t n = q->s[0].llen + q->s[0].blen + q->s[1].llen + q->s[1].blen;
    pthread_mutex_unlock(&q->lock);
    return n;
}
