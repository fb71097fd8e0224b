/*
 * test_nsqd_queues: nsqd's in-memory queue structures: the memory ring (msg_ring), the in-flight
 * table by message ID (msg_table), the deadline heap (in_flight_pqueue) and the name map.
 */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "in_flight.h"
#include "in_flight_pqueue.h"
#include "message.h"
#include "msg_ring.h"
#include "msg_table.h"
#include "name_map.h"

static struct nsqd_message *msg(unsigned i)
{
    char id[NSQ_MSG_ID_LEN + 1];
    snprintf(id, sizeof(id), "%016x", i);
    struct nsqd_message *m = nsqd_message_new(id, i, "b", 1);
    ck_assert_ptr_nonnull(m);
    return m;
}

START_TEST(ring_fifo_grow_shrink)
{
    enum { N = 100000 };
    struct msg_ring r = {0};
    struct nsqd_message **all = calloc(N, sizeof(*all));
    for (unsigned i = 0; i < N; i++) {
        all[i] = msg(i);
        ck_assert_int_eq(msg_ring_push(&r, all[i]), 0);
    }
    ck_assert_uint_eq(msg_ring_len(&r), N);
    /* Interleave pops and pushes so the ring wraps, then drain. */
    for (unsigned i = 0; i < N / 2; i++) {
        struct nsqd_message *m = msg_ring_pop(&r);
        ck_assert_ptr_eq(m, all[i]);
        ck_assert_int_eq(msg_ring_push(&r, m), 0);
    }
    for (unsigned i = N / 2; i < N; i++)
        ck_assert_ptr_eq(msg_ring_pop(&r), all[i]);
    for (unsigned i = 0; i < N / 2; i++)
        ck_assert_ptr_eq(msg_ring_pop(&r), all[i]);
    ck_assert_ptr_null(msg_ring_pop(&r));
    ck_assert_uint_le(r.cap, 1024); /* storage shrank back while draining */
    for (unsigned i = 0; i < N; i++)
        nsqd_message_free(all[i]);
    free(all);
    msg_ring_release(&r);
}
END_TEST

START_TEST(table_insert_find_remove)
{
    enum { N = 20000 };
    struct msg_table t = {0};
    struct nsqd_message **all = calloc(N, sizeof(*all));
    for (unsigned i = 0; i < N; i++) {
        all[i] = msg(i * 7919u);
        ck_assert_int_eq(msg_table_insert(&t, all[i]), 0);
    }
    ck_assert_uint_eq(t.count, N);
    for (unsigned i = 0; i < N; i++)
        ck_assert_ptr_eq(msg_table_find(&t, all[i]->id), all[i]);
    for (unsigned i = 0; i < N; i += 2)
        msg_table_remove(&t, all[i]);
    ck_assert_uint_eq(t.count, N / 2);
    for (unsigned i = 0; i < N; i++)
        ck_assert_ptr_eq(msg_table_find(&t, all[i]->id), i % 2 ? all[i] : NULL);
    for (unsigned i = 1; i < N; i += 2)
        msg_table_remove(&t, all[i]);
    ck_assert_uint_eq(t.count, 0);
    ck_assert_ptr_null(msg_table_find(&t, "0000000000000000"));
    for (unsigned i = 0; i < N; i++)
        nsqd_message_free(all[i]);
    free(all);
    msg_table_release(&t);
}
END_TEST

START_TEST(pqueue_order_remove_update)
{
    enum { N = 10000 };
    struct in_flight_pqueue q = {0};
    struct nsqd_message **all = calloc(N, sizeof(*all));
    srand(42);
    for (unsigned i = 0; i < N; i++) {
        all[i] = msg(i);
        all[i]->pri = rand() % 100000;
        ck_assert_int_eq(pq_push(&q, all[i]), 0);
    }
    /* Remove every third, move every fifth far away. */
    for (unsigned i = 0; i < N; i += 3)
        pq_remove(&q, all[i]);
    for (unsigned i = 1; i < N; i += 5) {
        if (i % 3 == 0)
            continue;
        all[i]->pri = 1000000 + i;
        pq_update(&q, all[i]);
    }
    ck_assert_ptr_null(pq_pop_if(&q, -1));
    int64_t last = -1;
    size_t popped = 0;
    struct nsqd_message *m;
    while ((m = pq_pop_if(&q, INT64_MAX))) {
        ck_assert_int_ge(m->pri, last);
        last = m->pri;
        popped++;
    }
    ck_assert_uint_eq(popped, N - (N + 2) / 3);
    ck_assert_uint_eq(pq_len(&q), 0);
    for (unsigned i = 0; i < N; i++)
        nsqd_message_free(all[i]);
    free(all);
    pq_release(&q);
}
END_TEST

/* Deadline rings + heap against a brute-force model: deliveries with a few timeouts (and more
   distinct ones than rings), random FINs, TOUCHes that move deadlines (some earlier), pops. */
START_TEST(in_flight_index_model)
{
    enum { N = 5000 };
    static const int64_t timeouts[] = {60, 1, 60, 900, 5, 60, 7, 60};
    struct in_flight_index x = {0};
    struct nsqd_message **all = calloc(N, sizeof(*all));
    bool *live = calloc(N, sizeof(*live));
    size_t nlive = 0;
    srand(7);
    int64_t now = 0;
    for (unsigned i = 0; i < N; i++) {
        now += rand() % 3;
        all[i] = msg(i);
        int64_t to = timeouts[rand() % 8];
        all[i]->pri = now + to;
        ck_assert_int_eq(in_flight_add(&x, all[i], to), 0);
        live[i] = true;
        nlive++;
        int op = rand() % 10;
        unsigned j = (unsigned)rand() % (i + 1);
        if (op < 4 && live[j]) { /* FIN */
            in_flight_remove(&x, all[j]);
            live[j] = false;
            nlive--;
        } else if (op == 4 && live[j]) { /* TOUCH, possibly capped earlier */
            in_flight_remove(&x, all[j]);
            all[j]->pri = rand() % 2 ? now + 60 : all[j]->pri - 1;
            ck_assert_int_eq(in_flight_add(&x, all[j], 60), 0);
        }
        if (in_flight_len(&x) != nlive)
            ck_abort_msg("count %zu, want %zu", in_flight_len(&x), nlive);
        if (op == 5) { /* timeouts up to now - 30 */
            struct nsqd_message *m;
            while ((m = in_flight_pop_if(&x, now - 30))) {
                ck_assert(m->pri <= now - 30);
                unsigned k = (unsigned)m->timestamp;
                ck_assert(live[k]);
                live[k] = false;
                nlive--;
            }
            bool expired_left = false;
            for (unsigned k = 0; k <= i; k++)
                expired_left |= live[k] && all[k]->pri <= now - 30;
            ck_assert(!expired_left);
        }
    }
    /* Drain: non-decreasing deadlines, every live message exactly once. */
    int64_t last = INT64_MIN;
    struct nsqd_message *m;
    size_t popped = 0;
    struct nsqd_message *first = in_flight_peek(&x);
    while ((m = in_flight_pop_if(&x, INT64_MAX))) {
        if (!popped)
            ck_assert_ptr_eq(m, first);
        ck_assert_int_ge(m->pri, last);
        last = m->pri;
        unsigned k = (unsigned)m->timestamp;
        ck_assert(live[k]);
        live[k] = false;
        popped++;
    }
    ck_assert_uint_eq(popped, nlive);
    ck_assert_uint_eq(in_flight_len(&x), 0);
    for (unsigned i = 0; i < N; i++)
        nsqd_message_free(all[i]);
    free(all);
    free(live);
    in_flight_release(&x);
}
END_TEST

static void count_cb(const char *key, void *value, void *arg)
{
    ck_assert_ptr_nonnull(key);
    (*(size_t *)arg) += (size_t)(uintptr_t)value;
}

START_TEST(name_map_basics)
{
    enum { N = 5000 };
    struct name_map *m = name_map_new();
    ck_assert_ptr_nonnull(m);
    char key[32];
    for (uintptr_t i = 1; i <= N; i++) {
        snprintf(key, sizeof(key), "topic-%lu", (unsigned long)i);
        ck_assert_int_eq(name_map_put(m, key, (void *)i), 0);
    }
    ck_assert_uint_eq(name_map_len(m), N);
    ck_assert_int_eq(name_map_put(m, "topic-1", (void *)(uintptr_t)1), 0); /* replace */
    ck_assert_uint_eq(name_map_len(m), N);
    size_t sum = 0;
    name_map_foreach(m, count_cb, &sum);
    ck_assert_uint_eq(sum, (size_t)N * (N + 1) / 2);
    ck_assert_ptr_eq(name_map_get(m, "topic-77"), (void *)(uintptr_t)77);
    ck_assert_ptr_eq(name_map_del(m, "topic-77"), (void *)(uintptr_t)77);
    ck_assert_ptr_null(name_map_get(m, "topic-77"));
    ck_assert_ptr_null(name_map_del(m, "topic-77"));
    ck_assert_uint_eq(name_map_len(m), N - 1);
    void *vals[N];
    ck_assert_uint_eq(name_map_values(m, vals, N), N - 1);
    name_map_free(m);
    name_map_free(NULL);
}
END_TEST

START_TEST(message_copy_and_decode)
{
    struct nsqd_message *m = nsqd_message_new("0123456789abcdef", 123456789, "hello", 5);
    m->deferred = 42;
    m->attempts = 3;
    struct nsqd_message *c = nsqd_message_copy(m);
    ck_assert_int_eq(memcmp(c->id, m->id, NSQ_MSG_ID_LEN), 0);
    ck_assert_int_eq(c->timestamp, 123456789);
    ck_assert_int_eq(c->deferred, 42);
    ck_assert_int_eq(c->attempts, 3); /* every channel sees the same count */
    ck_assert_int_eq(memcmp(c->body, "hello", 5), 0);
    uint8_t rec[NSQ_MSG_HEADER_LEN + 5];
    nsq_message_encode_header(rec, m->id, m->timestamp, m->attempts);
    memcpy(rec + NSQ_MSG_HEADER_LEN, "hello", 5);
    struct nsqd_message *d = nsqd_message_decode(rec, sizeof(rec));
    ck_assert_ptr_nonnull(d);
    ck_assert_int_eq(d->attempts, 3);
    ck_assert_uint_eq(d->body_len, 5);
    ck_assert_ptr_null(nsqd_message_decode(rec, NSQ_MSG_HEADER_LEN - 1));
    size_t live = nsqd_message_live_bytes();
    ck_assert_uint_gt(live, 0);
    nsqd_message_free(m);
    nsqd_message_free(c);
    nsqd_message_free(d);
    ck_assert_uint_eq(nsqd_message_live_bytes(), 0);
}
END_TEST

static Suite *queues_suite(void)
{
    Suite *s = suite_create("nsqd_queues");
    TCase *tc = tcase_create("queues");
    tcase_add_test(tc, ring_fifo_grow_shrink);
    tcase_add_test(tc, table_insert_find_remove);
    tcase_add_test(tc, pqueue_order_remove_update);
    tcase_add_test(tc, in_flight_index_model);
    tcase_add_test(tc, name_map_basics);
    tcase_add_test(tc, message_copy_and_decode);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(queues_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
