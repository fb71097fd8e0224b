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

/* True if m is msg(i). Plain comparisons: a Check assertion per field of 100,000 messages is
   too slow under the sanitizers. */
static bool is_msg(const struct nsqd_message *m, unsigned i)
{
    char id[NSQ_MSG_ID_LEN + 1];
    snprintf(id, sizeof(id), "%016x", i);
    return m && memcmp(m->id, id, NSQ_MSG_ID_LEN) == 0 && m->timestamp == (int64_t)i &&
           m->body_len == 1 && m->body[0] == 'b';
}

START_TEST(ring_fifo_grow_shrink)
{
    enum { N = 30000 }; /* 700 KB of records: a chain of growing chunks */
    struct msg_ring r = {0};
    size_t live0 = nsqd_message_live_bytes();
    bool ok = true;
    for (unsigned i = 0; i < N; i++)
        ok &= msg_ring_push(&r, msg(i)) == 0;
    ck_assert(ok);
    ck_assert_uint_eq(msg_ring_len(&r), N);
    ck_assert_uint_eq(nsqd_message_live_bytes() - live0, r.bytes);
    /* Interleave pops and pushes so old chunks are consumed while new ones fill, then drain. */
    for (unsigned i = 0; i < N / 2; i++) {
        struct nsqd_message *m = msg_ring_pop(&r);
        ok &= is_msg(m, i) && msg_ring_push(&r, m) == 0;
    }
    ck_assert(ok);
    for (unsigned i = 0; i < N; i++) {
        struct nsqd_message *m = msg_ring_pop(&r);
        ok &= is_msg(m, i < N / 2 ? i + N / 2 : i - N / 2);
        nsqd_message_free(m);
    }
    ck_assert(ok);
    ck_assert_ptr_null(msg_ring_pop(&r));
    ck_assert_uint_le(r.bytes, 8 * 1024); /* storage went back while draining */
    msg_ring_release(&r);
    ck_assert_uint_eq(r.bytes, 0);
    ck_assert_uint_eq(nsqd_message_live_bytes(), live0);
}
END_TEST

/* IDs (hex ones are packed, others kept as given), attempts, deferral and bodies of every size
   (empty, larger than a chunk) survive the ring. */
static const char *const ring_ids[] = {"0123456789abcdef", "0123456789ABCDEF",
                                       "ffffffffffffffff", "0000000000000000",
                                       "0123456789abcdeg", "\xff\x01 binary-id\x00\x7f!"};
#define RING_IDS (sizeof(ring_ids) / sizeof(ring_ids[0]))

START_TEST(ring_keeps_fields)
{
    enum { N = 64, BIG = 3 * 1024 * 1024 };
    struct msg_ring r = {0};
    uint8_t *body = malloc(BIG);
    ck_assert_ptr_nonnull(body);
    for (size_t i = 0; i < BIG; i++)
        body[i] = (uint8_t)(i * 7);
    for (unsigned i = 0; i < N; i++) {
        size_t len = i == N / 2 ? BIG : i * 37;
        struct nsqd_message *m = nsqd_message_new(ring_ids[i % RING_IDS], -(int64_t)i, body, len);
        ck_assert_ptr_nonnull(m);
        m->attempts = (uint16_t)(65535 - i);
        m->deferred = i % 3 ? 0 : (int64_t)i * 1000000007;
        ck_assert_int_eq(msg_ring_push(&r, m), 0);
    }
    for (unsigned i = 0; i < N; i++) {
        size_t len = i == N / 2 ? BIG : i * 37;
        struct nsqd_message *m = msg_ring_pop(&r);
        ck_assert_ptr_nonnull(m);
        ck_assert_mem_eq(m->id, ring_ids[i % RING_IDS], NSQ_MSG_ID_LEN);
        ck_assert_int_eq(m->timestamp, -(int64_t)i);
        ck_assert_uint_eq(m->attempts, 65535 - i);
        ck_assert_int_eq(m->deferred, i % 3 ? 0 : (int64_t)i * 1000000007);
        ck_assert_uint_eq(m->body_len, len);
        ck_assert_int_eq(memcmp(m->body, body, len), 0);
        nsqd_message_free(m);
    }
    ck_assert_ptr_null(msg_ring_pop(&r));
    msg_ring_release(&r);
    free(body);
}
END_TEST

/* A drained ring keeps a small chunk; a record too large for it must not leave that empty chunk
   ahead of the new one. Also: iterating, peeking, dropping, and a TTL carried through. */
START_TEST(ring_drained_then_large_and_iter)
{
    enum { LARGE = 20000 };
    struct msg_ring r = {0};
    ck_assert_int_eq(msg_ring_push(&r, msg(1)), 0);
    nsqd_message_free(msg_ring_pop(&r));
    ck_assert_ptr_nonnull(r.head); /* the kept chunk */
    uint8_t *body = calloc(1, LARGE);
    ck_assert_ptr_nonnull(body);
    struct nsqd_message *big = nsqd_message_new("00000000000000ff", 7, body, LARGE);
    ck_assert_ptr_nonnull(big);
    big->ttl_ms = 1234;
    ck_assert_int_eq(msg_ring_push(&r, big), 0);
    for (unsigned i = 2; i < 5000; i++)
        ck_assert_int_eq(msg_ring_push(&r, msg(i)), 0);

    struct msg_ring_iter it;
    msg_ring_iter_init(&r, &it);
    struct nsqd_message *m = msg_ring_iter_next(&it);
    ck_assert_ptr_nonnull(m);
    ck_assert_uint_eq(m->body_len, LARGE);
    ck_assert_uint_eq(m->ttl_ms, 1234);
    nsqd_message_free(m);
    bool ok = true;
    for (unsigned i = 2; i < 5000; i++) {
        m = msg_ring_iter_next(&it);
        ok &= is_msg(m, i) && m->ttl_ms == 0;
        nsqd_message_free(m);
    }
    ck_assert(ok);
    ck_assert_ptr_null(msg_ring_iter_next(&it));
    ck_assert_uint_eq(msg_ring_len(&r), 4999); /* iterating consumed nothing */
    m = msg_ring_peek(&r);
    ck_assert_ptr_nonnull(m);
    ck_assert_uint_eq(m->ttl_ms, 1234);
    nsqd_message_free(m);
    ck_assert_uint_eq(msg_ring_len(&r), 4999); /* nor did peeking */

    m = msg_ring_pop(&r);
    ck_assert_ptr_nonnull(m);
    ck_assert_mem_eq(m->id, "00000000000000ff", NSQ_MSG_ID_LEN);
    ck_assert_int_eq(m->timestamp, 7);
    ck_assert_uint_eq(m->body_len, LARGE);
    ck_assert_uint_eq(m->ttl_ms, 1234);
    nsqd_message_free(m);
    for (unsigned i = 2; i < 5000; i++) {
        m = msg_ring_pop(&r);
        ok &= is_msg(m, i);
        nsqd_message_free(m);
    }
    ck_assert(ok);
    ck_assert_ptr_null(msg_ring_pop(&r));
    ck_assert(!msg_ring_drop(&r));
    for (unsigned i = 0; i < 3; i++)
        ck_assert_int_eq(msg_ring_push(&r, msg(i)), 0);
    ck_assert(msg_ring_drop(&r));
    m = msg_ring_pop(&r);
    ck_assert(is_msg(m, 1));
    nsqd_message_free(m);
    msg_ring_release(&r);
    free(body);
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
    tcase_add_test(tc, ring_keeps_fields);
    tcase_add_test(tc, ring_drained_then_large_and_iter);
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
