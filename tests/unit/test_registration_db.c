/*
 * Unit tests of nsqlookupd/registration_db: keys, producers, per-peer and per-topic indexes,
 * ephemeral-style key removal by the caller, tombstone and activity filters, iteration order, and
 * index growth with many topics and channels.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registration_db.h"

#define SEC 1000000000LL

struct strs {
    char items[64][80];
    size_t n;
};

static void collect(const char *s, void *arg)
{
    struct strs *l = arg;
    if (l->n < 64)
        snprintf(l->items[l->n++], sizeof(l->items[0]), "%s", s);
}

static struct strs topics(const struct registration_db *db)
{
    struct strs l = {.n = 0};
    registration_db_each_topic(db, collect, &l);
    return l;
}

static struct strs channels(const struct registration_db *db, const char *t)
{
    struct strs l = {.n = 0};
    registration_db_each_channel(db, t, collect, &l);
    return l;
}

static size_t count(const struct lookup_producer *p)
{
    size_t n = 0;
    for (; p != NULL; p = p->reg_next)
        n++;
    return n;
}

START_TEST(test_keys_without_producers)
{
    struct registration_db *db = registration_db_new();
    ck_assert_ptr_nonnull(db);
    ck_assert(!registration_db_has_key(db, REG_TOPIC, "a", ""));
    ck_assert_int_eq(registration_db_add_key(db, REG_TOPIC, "a", ""), 0);
    ck_assert_int_eq(registration_db_add_key(db, REG_TOPIC, "a", ""), 0);
    ck_assert_int_eq(registration_db_add_key(db, REG_CHANNEL, "b", "c1"), 0);
    ck_assert_int_eq(registration_db_add_key(db, REG_CHANNEL, "b", "c2"), 0);
    ck_assert(registration_db_has_key(db, REG_TOPIC, "a", ""));
    ck_assert(!registration_db_has_key(db, REG_TOPIC, "b", "")); /* only channel keys */
    ck_assert(registration_db_has_key(db, REG_CHANNEL, "b", "c2"));
    struct strs t = topics(db);
    ck_assert_int_eq(t.n, 1);
    ck_assert_str_eq(t.items[0], "a");
    struct strs c = channels(db, "b");
    ck_assert_int_eq(c.n, 2);
    ck_assert_str_eq(c.items[0], "c1");
    ck_assert_str_eq(c.items[1], "c2");
    ck_assert(registration_db_remove_key(db, REG_CHANNEL, "b", "c1"));
    ck_assert(!registration_db_remove_key(db, REG_CHANNEL, "b", "c1"));
    ck_assert_int_eq(channels(db, "b").n, 1);
    registration_db_remove_topic(db, "b");
    ck_assert_int_eq(channels(db, "b").n, 0);
    registration_db_remove_topic(db, "never");
    ck_assert_ptr_null(registration_db_producers(db, REG_TOPIC, "a", ""));
    registration_db_free(db);
    registration_db_free(NULL);
}
END_TEST

START_TEST(test_producers_and_peers)
{
    struct registration_db *db = registration_db_new();
    struct lookup_peer *a = lookup_peer_new("127.0.0.1:1");
    struct lookup_peer *b = lookup_peer_new("127.0.0.1:2");
    ck_assert_int_eq(registration_db_add_producer(db, REG_CLIENT, "", "", a), 1);
    ck_assert_int_eq(registration_db_add_producer(db, REG_CLIENT, "", "", b), 1);
    ck_assert_int_eq(registration_db_add_producer(db, REG_CHANNEL, "t", "c", a), 1);
    ck_assert_int_eq(registration_db_add_producer(db, REG_TOPIC, "t", "", a), 1);
    ck_assert_int_eq(registration_db_add_producer(db, REG_TOPIC, "t", "", a), 0);
    ck_assert_int_eq(registration_db_add_producer(db, REG_TOPIC, "t", "", b), 1);
    ck_assert_int_eq(registration_db_add_producer(db, REG_TOPIC, "u", "", a), 1);
    ck_assert_uint_eq(a->nproducers, 4);
    ck_assert_uint_eq(count(registration_db_producers(db, REG_TOPIC, "t", "")), 2);
    ck_assert_uint_eq(count(registration_db_producers(db, REG_CLIENT, "", "")), 2);

    /* the peer's list is in registration order */
    const struct lookup_producer *p = a->first;
    ck_assert_int_eq(lookup_producer_category(p), REG_CLIENT);
    p = p->peer_next;
    ck_assert_int_eq(lookup_producer_category(p), REG_CHANNEL);
    ck_assert_str_eq(lookup_producer_key(p), "t");
    p = p->peer_next;
    ck_assert_int_eq(lookup_producer_category(p), REG_TOPIC);
    p = p->peer_next;
    ck_assert_str_eq(lookup_producer_key(p), "u");
    ck_assert_ptr_null(p->peer_next);

    size_t left;
    ck_assert(registration_db_remove_producer(db, REG_TOPIC, "t", "", a, &left));
    ck_assert_uint_eq(left, 1);
    ck_assert(!registration_db_remove_producer(db, REG_TOPIC, "t", "", a, &left));
    ck_assert(!registration_db_remove_producer(db, REG_TOPIC, "none", "", a, &left));
    ck_assert_uint_eq(left, 0);
    ck_assert_uint_eq(registration_db_remove_producer_channels(db, "t", a), 1);
    ck_assert(registration_db_has_key(db, REG_CHANNEL, "t", "c")); /* keys stay */

    /* a closed connection leaves no producer behind */
    ck_assert_uint_eq(registration_db_remove_peer(db, a), 2);
    ck_assert_uint_eq(a->nproducers, 0);
    ck_assert_ptr_null(a->first);
    ck_assert_uint_eq(count(registration_db_producers(db, REG_CLIENT, "", "")), 1);
    ck_assert_uint_eq(count(registration_db_producers(db, REG_TOPIC, "u", "")), 0);

    /* deleting a topic frees the producers in it and unlinks them from their peer */
    registration_db_remove_topic(db, "t");
    ck_assert_uint_eq(b->nproducers, 1);
    registration_db_remove_peer(db, b);
    lookup_peer_free(a);
    lookup_peer_free(b);
    lookup_peer_free(NULL);
    registration_db_free(db);
}
END_TEST

struct keyrec {
    char names[16][80];
    size_t n;
};

static void collect_key(enum reg_category cat, const char *key, const char *subkey,
                        struct lookup_producer *first, void *arg)
{
    struct keyrec *k = arg;
    (void)first;
    snprintf(k->names[k->n++], sizeof(k->names[0]), "%s:%s:%s", registration_category_name(cat),
             key, subkey);
}

START_TEST(test_each_key_only_with_producers)
{
    struct registration_db *db = registration_db_new();
    struct lookup_peer *a = lookup_peer_new("x:1");
    registration_db_add_key(db, REG_TOPIC, "empty", "");
    registration_db_add_producer(db, REG_CLIENT, "", "", a);
    registration_db_add_producer(db, REG_CHANNEL, "t", "c", a);
    registration_db_add_producer(db, REG_TOPIC, "t", "", a);
    struct keyrec k = {.n = 0};
    registration_db_each_key(db, collect_key, &k);
    ck_assert_uint_eq(k.n, 3);
    ck_assert_str_eq(k.names[0], "client::");
    ck_assert_str_eq(k.names[1], "topic:t:");
    ck_assert_str_eq(k.names[2], "channel:t:c");
    registration_db_remove_peer(db, a);
    k.n = 0;
    registration_db_each_key(db, collect_key, &k);
    ck_assert_uint_eq(k.n, 0);
    lookup_peer_free(a);
    registration_db_free(db);
}
END_TEST

START_TEST(test_tombstone_and_activity)
{
    struct registration_db *db = registration_db_new();
    struct lookup_peer *a = lookup_peer_new("x:1");
    a->last_update_ns = 100 * SEC;
    registration_db_add_producer(db, REG_TOPIC, "t", "", a);
    struct lookup_producer *p = registration_db_producers(db, REG_TOPIC, "t", "");
    ck_assert(lookup_producer_is_active(p, 100 * SEC, 300 * SEC, 45 * SEC));
    ck_assert(lookup_producer_is_active(p, 400 * SEC, 300 * SEC, 45 * SEC));
    ck_assert(!lookup_producer_is_active(p, 400 * SEC + 1, 300 * SEC, 45 * SEC));
    lookup_producer_tombstone(p, 110 * SEC);
    ck_assert(lookup_producer_is_tombstoned(p, 110 * SEC, 45 * SEC));
    ck_assert(!lookup_producer_is_active(p, 120 * SEC, 300 * SEC, 45 * SEC));
    ck_assert(lookup_producer_is_active(p, 120 * SEC, 300 * SEC, 0)); /* lifetime 0: ignored */
    ck_assert(!lookup_producer_is_tombstoned(p, 155 * SEC, 45 * SEC));
    ck_assert(lookup_producer_is_active(p, 155 * SEC, 300 * SEC, 45 * SEC));
    /* re-adding the same peer keeps the tombstone */
    ck_assert_int_eq(registration_db_add_producer(db, REG_TOPIC, "t", "", a), 0);
    ck_assert(p->tombstoned);
    registration_db_remove_peer(db, a);
    lookup_peer_free(a);
    registration_db_free(db);
}
END_TEST

START_TEST(test_many_topics_and_channels)
{
    enum { NTOPICS = 20000, NCHANNELS = 50 };
    struct registration_db *db = registration_db_new();
    struct lookup_peer *a = lookup_peer_new("x:1");
    char t[32], c[32];
    for (int i = 0; i < NTOPICS; i++) {
        snprintf(t, sizeof(t), "topic-%d", i);
        ck_assert_int_eq(registration_db_add_producer(db, REG_TOPIC, t, "", a), 1);
    }
    for (int i = 0; i < NCHANNELS; i++) {
        snprintf(c, sizeof(c), "ch-%d", i);
        ck_assert_int_eq(registration_db_add_producer(db, REG_CHANNEL, "topic-7", c, a), 1);
    }
    for (int i = 0; i < NTOPICS; i += 997) {
        snprintf(t, sizeof(t), "topic-%d", i);
        ck_assert(registration_db_has_key(db, REG_TOPIC, t, ""));
    }
    ck_assert(!registration_db_has_key(db, REG_TOPIC, "topic-x", ""));
    ck_assert(registration_db_has_key(db, REG_CHANNEL, "topic-7", "ch-49"));
    ck_assert_uint_eq(a->nproducers, NTOPICS + NCHANNELS);
    /* removing every other topic keeps the others reachable */
    for (int i = 0; i < NTOPICS; i += 2) {
        snprintf(t, sizeof(t), "topic-%d", i);
        ck_assert(registration_db_remove_key(db, REG_TOPIC, t, ""));
    }
    ck_assert(registration_db_has_key(db, REG_TOPIC, "topic-1", ""));
    ck_assert(!registration_db_has_key(db, REG_TOPIC, "topic-2", ""));
    ck_assert(registration_db_has_key(db, REG_CHANNEL, "topic-7", "ch-0"));
    ck_assert_uint_eq(a->nproducers, NTOPICS / 2 + NCHANNELS);
    ck_assert_uint_eq(registration_db_remove_peer(db, a), NTOPICS / 2 + NCHANNELS);
    lookup_peer_free(a);
    registration_db_free(db);
}
END_TEST

static Suite *registration_db_suite(void)
{
    Suite *s = suite_create("registration_db");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_keys_without_producers);
    tcase_add_test(tc, test_producers_and_peers);
    tcase_add_test(tc, test_each_key_only_with_producers);
    tcase_add_test(tc, test_tombstone_and_activity);
    tcase_add_test(tc, test_many_topics_and_channels);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(registration_db_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
