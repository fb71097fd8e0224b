/* Unit tests for common/nsq_quantile.c: accuracy on known distributions, window expiry,
   aggregation and the memory bound. */
#include "nsq_quantile.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SEC 1000000000LL

static uint64_t rng_state = 88172645463325252ULL;
static double rnd(void) /* xorshift64: deterministic across runs */
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) / (double)(1ULL << 53);
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Rank of v among sorted values (number of values <= v). */
static size_t rank_of(const double *sorted, size_t n, double v)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (sorted[mid] <= v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static const double targets[] = {0.5, 0.95, 0.99, 1.0};
#define NT (sizeof(targets) / sizeof(targets[0]))

START_TEST(test_empty)
{
    struct nsq_quantile *q = nsq_quantile_new(10 * SEC, targets, NT);
    struct nsq_quantile_result r;
    nsq_quantile_result(q, 1 * SEC, &r);
    ck_assert_uint_eq(r.count, 0);
    ck_assert_uint_eq(r.n, NT);
    for (size_t i = 0; i < NT; i++) {
        ck_assert_double_eq(r.quantile[i], targets[i]);
        ck_assert_double_eq(r.value[i], 0);
    }
    nsq_quantile_free(q);
    nsq_quantile_free(NULL);
    ck_assert_ptr_null(nsq_quantile_new(0, targets, NT));
}
END_TEST

START_TEST(test_small_exact)
{
    struct nsq_quantile *q = nsq_quantile_new(10 * SEC, targets, NT);
    for (int i = 100; i >= 1; i--)
        nsq_quantile_insert(q, 1 * SEC, i);
    struct nsq_quantile_result r;
    nsq_quantile_result(q, 1 * SEC, &r);
    ck_assert_uint_eq(r.count, 100);
    ck_assert_double_eq(r.value[0], 50);
    ck_assert_double_eq(r.value[1], 96); /* ceil(100 * 0.95) is 96 in binary floating point */
    ck_assert_double_eq(r.value[2], 100); /* likewise ceil(100 * 0.99) */
    ck_assert_double_eq(r.value[3], 100);
    nsq_quantile_free(q);
}
END_TEST

static void check_accuracy(double (*gen)(void), size_t n)
{
    struct nsq_quantile *q = nsq_quantile_new(600 * SEC, targets, NT);
    double *all = malloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++) {
        all[i] = gen();
        nsq_quantile_insert(q, 1 * SEC, all[i]);
    }
    qsort(all, n, sizeof(double), cmp);
    struct nsq_quantile_result r;
    nsq_quantile_result(q, 2 * SEC, &r);
    ck_assert_uint_eq(r.count, n);
    for (size_t i = 0; i < NT; i++) {
        double want = targets[i] * (double)n;
        double got = (double)rank_of(all, n, r.value[i]);
        /* rank error within eps*n (the bound is tighter near the targets) */
        ck_assert_msg(fabs(got - want) <= NSQ_QUANTILE_EPSILON * (double)n + 1,
                      "q=%g: rank %g want %g (value %g)", targets[i], got, want, r.value[i]);
    }
    ck_assert_double_eq(r.value[NT - 1], all[n - 1]); /* the maximum is kept exactly */
    /* bounded memory: far fewer tuples than samples */
    ck_assert_msg(nsq_quantile_footprint(q) < 2000, "footprint %zu", nsq_quantile_footprint(q));
    free(all);
    nsq_quantile_free(q);
}

static double uniform(void)
{
    return rnd() * 1e9;
}

static double exponential(void)
{
    return -log(1 - rnd()) * 5e6; /* mean 5 ms */
}

static double normalish(void)
{
    double s = 0;
    for (int i = 0; i < 12; i++)
        s += rnd();
    return (s - 6) * 1e6 + 5e7;
}

START_TEST(test_accuracy_uniform)
{
    check_accuracy(uniform, 200000);
}
END_TEST

START_TEST(test_accuracy_exponential)
{
    check_accuracy(exponential, 200000);
}
END_TEST

START_TEST(test_accuracy_normal)
{
    check_accuracy(normalish, 100000);
}
END_TEST

START_TEST(test_accuracy_sorted_input)
{
    struct nsq_quantile *q = nsq_quantile_new(600 * SEC, targets, NT);
    const size_t n = 100000;
    for (size_t i = 1; i <= n; i++)
        nsq_quantile_insert(q, 1 * SEC, (double)i);
    struct nsq_quantile_result r;
    nsq_quantile_result(q, 1 * SEC, &r);
    for (size_t i = 0; i < NT; i++)
        ck_assert_msg(fabs(r.value[i] - targets[i] * n) <= NSQ_QUANTILE_EPSILON * n + 1,
                      "q=%g got %g", targets[i], r.value[i]);
    nsq_quantile_free(q);
}
END_TEST

START_TEST(test_window_expiry)
{
    /* 10 s window: halves of 5 s */
    struct nsq_quantile *q = nsq_quantile_new(10 * SEC, targets, NT);
    struct nsq_quantile_result r;
    int64_t t0 = 1000 * SEC;
    for (int i = 0; i < 10; i++)
        nsq_quantile_insert(q, t0 + i * (SEC / 10), 100);
    nsq_quantile_result(q, t0 + 4 * SEC, &r);
    ck_assert_uint_eq(r.count, 10);
    /* after one half: old samples still counted, new ones go to the other half */
    for (int i = 0; i < 5; i++)
        nsq_quantile_insert(q, t0 + 6 * SEC, 200);
    nsq_quantile_result(q, t0 + 6 * SEC, &r);
    ck_assert_uint_eq(r.count, 15);
    ck_assert_double_eq(r.value[3], 200);
    ck_assert_double_eq(r.value[0], 100);
    /* after the second half the first samples are gone */
    nsq_quantile_result(q, t0 + 10 * SEC + 1, &r);
    ck_assert_uint_eq(r.count, 5);
    ck_assert_double_eq(r.value[0], 200);
    /* long idle: everything expires */
    nsq_quantile_result(q, t0 + 100 * SEC, &r);
    ck_assert_uint_eq(r.count, 0);
    ck_assert_double_eq(r.value[0], 0);
    /* and the window keeps working afterwards */
    nsq_quantile_insert(q, t0 + 100 * SEC, 7);
    nsq_quantile_result(q, t0 + 101 * SEC, &r);
    ck_assert_uint_eq(r.count, 1);
    ck_assert_double_eq(r.value[0], 7);
    nsq_quantile_result(q, t0 + 112 * SEC, &r);
    ck_assert_uint_eq(r.count, 0);
    nsq_quantile_free(q);
}
END_TEST

START_TEST(test_aggregate_and_merge)
{
    struct nsq_quantile *a = nsq_quantile_new(60 * SEC, targets, NT);
    struct nsq_quantile *b = nsq_quantile_new(60 * SEC, targets, NT);
    const size_t n = 20000;
    double *all = malloc(2 * n * sizeof(double));
    for (size_t i = 0; i < n; i++) {
        all[i] = uniform();
        all[n + i] = 2e9 + uniform();
        nsq_quantile_insert(a, SEC, all[i]);
        nsq_quantile_insert(b, SEC, all[n + i]);
    }
    qsort(all, 2 * n, sizeof(double), cmp);
    struct nsq_quantile *qs[] = {a, b};
    struct nsq_quantile_result r;
    nsq_quantile_aggregate(qs, 2, 2 * SEC, &r);
    ck_assert_uint_eq(r.count, 2 * n);
    for (size_t i = 0; i < NT; i++) {
        double want = targets[i] * 2 * n;
        double got = (double)rank_of(all, 2 * n, r.value[i]);
        ck_assert_msg(fabs(got - want) <= 2 * NSQ_QUANTILE_EPSILON * 2 * n + 1,
                      "q=%g: rank %g want %g", targets[i], got, want);
    }
    nsq_quantile_aggregate(qs, 0, 2 * SEC, &r);
    ck_assert_uint_eq(r.count, 0);
    ck_assert_uint_eq(r.n, 0);

    struct nsq_quantile_result ra, rb, m;
    nsq_quantile_result(a, 2 * SEC, &ra);
    nsq_quantile_result(b, 2 * SEC, &rb);
    memset(&m, 0, sizeof(m));
    nsq_quantile_merge(&m, &ra);
    nsq_quantile_merge(&m, &rb);
    ck_assert_uint_eq(m.count, 2 * n);
    ck_assert_uint_eq(m.n, NT);
    ck_assert_double_eq_tol(m.value[0], (ra.value[0] + rb.value[0]) / 2, 1);
    free(all);
    nsq_quantile_free(a);
    nsq_quantile_free(b);
}
END_TEST

START_TEST(test_memory_bound)
{
    struct nsq_quantile *q = nsq_quantile_new(600 * SEC, targets, NT);
    size_t peak = 0;
    for (size_t i = 0; i < 2000000; i++) {
        nsq_quantile_insert(q, SEC, exponential());
        if (i % 10000 == 0 && nsq_quantile_footprint(q) > peak)
            peak = nsq_quantile_footprint(q);
    }
    ck_assert_msg(peak < 2000, "peak %zu", peak);
    nsq_quantile_free(q);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("nsq_quantile");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_empty);
    tcase_add_test(tc, test_small_exact);
    tcase_add_test(tc, test_accuracy_uniform);
    tcase_add_test(tc, test_accuracy_exponential);
    tcase_add_test(tc, test_accuracy_normal);
    tcase_add_test(tc, test_accuracy_sorted_input);
    tcase_add_test(tc, test_window_expiry);
    tcase_add_test(tc, test_aggregate_and_merge);
    tcase_add_test(tc, test_memory_bound);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
