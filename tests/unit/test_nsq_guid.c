/* Unit tests for common/nsq_guid.c: layout, ordering, sequence wrap, errors, hex, node id. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "nsq_guid.h"
#include "nsq_time.h"

#define TICK_NS      (1LL << NSQ_GUID_TS_SHIFT_NS)
#define IDS_PER_TICK (NSQ_GUID_SEQ_MASK + 1)
#define MANY_IDS     100000
/* Making MANY_IDS under a sanitizer on a busy machine can outlast Check's default of 4 seconds. */
#define CASE_TIMEOUT_S 60

/* A real ID and publish timestamp from the upstream data directory (events queue, node 7). */
#define UPSTREAM_TS  0x18ea3e28dee6f25fLL
#define UPSTREAM_ID  0x18a3d562e7807000ULL
#define UPSTREAM_HEX "18a3d562e7807000"

START_TEST(test_upstream_layout)
{
    struct nsq_guid_factory f;
    uint64_t id;
    char hex[NSQ_MSG_ID_LEN];

    nsq_guid_factory_init(&f, 7);
    ck_assert_int_eq(nsq_guid_next(&f, UPSTREAM_TS, &id), 0);
    ck_assert(id == UPSTREAM_ID);
    nsq_guid_to_hex(id, hex);
    ck_assert_mem_eq(hex, UPSTREAM_HEX, NSQ_MSG_ID_LEN);
    /* the second one in the same tick takes sequence 1 */
    ck_assert_int_eq(nsq_guid_next(&f, UPSTREAM_TS + 1, &id), 0);
    ck_assert(id == UPSTREAM_ID + 1);
}
END_TEST

START_TEST(test_fields)
{
    struct nsq_guid_factory f;
    uint64_t id;
    int64_t now = 1700000000000000000LL;

    nsq_guid_factory_init(&f, 1023);
    ck_assert_int_eq(nsq_guid_next(&f, now, &id), 0);
    ck_assert(((id >> NSQ_GUID_NODE_SHIFT) & NSQ_GUID_MAX_NODE_ID) == 1023);
    ck_assert((id & NSQ_GUID_SEQ_MASK) == 0);
    ck_assert((int64_t)(id >> NSQ_GUID_TS_SHIFT) == (now >> 20) - NSQ_GUID_EPOCH);
}
END_TEST

START_TEST(test_many_unique_ordered)
{
    struct nsq_guid_factory f;
    uint64_t prev = 0, id;
    char hex[NSQ_MSG_ID_LEN], prev_hex[NSQ_MSG_ID_LEN];
    int64_t now = nsq_now_ns();
    int made = 0, errors = 0;

    memset(prev_hex, 0, sizeof(prev_hex));
    nsq_guid_factory_init(&f, 42);
    /* Simulated clock that advances slowly: several ticks fill up and must be retried later. */
    while (made < MANY_IDS) {
        int r = nsq_guid_next(&f, now, &id);
        if (r == 0) {
            ck_assert(id > prev);
            nsq_guid_to_hex(id, hex);
            /* the hex form sorts like the numbers */
            ck_assert(memcmp(hex, prev_hex, NSQ_MSG_ID_LEN) > 0);
            memcpy(prev_hex, hex, sizeof(hex));
            prev = id;
            made++;
            now += 100; /* ~10000 attempts per tick: sequence runs out each tick */
        } else {
            ck_assert(r == NSQ_GUID_ERR_SEQ_EXPIRED || r == NSQ_GUID_ERR_ID_BACKWARD);
            errors++;
            now += TICK_NS / 4; /* what a caller sleeping ~1 ms does */
        }
    }
    ck_assert_int_gt(errors, 0);
}
END_TEST

START_TEST(test_sequence_wrap)
{
    struct nsq_guid_factory f;
    uint64_t id, last = 0;
    int64_t now = 1700000000000000000LL & ~(TICK_NS - 1);

    nsq_guid_factory_init(&f, 3);
    for (int i = 0; i < IDS_PER_TICK; i++) {
        ck_assert_int_eq(nsq_guid_next(&f, now + i, &id), 0);
        ck_assert((id & NSQ_GUID_SEQ_MASK) == (uint64_t)i);
        last = id;
    }
    /* 4097th in the same tick: the sequence wraps to 0 → expired */
    ck_assert_int_eq(nsq_guid_next(&f, now, &id), NSQ_GUID_ERR_SEQ_EXPIRED);
    ck_assert_int_eq(f.sequence, 0);
    /* still the same tick: sequence 1 gives an id below the last one */
    ck_assert_int_eq(nsq_guid_next(&f, now, &id), NSQ_GUID_ERR_ID_BACKWARD);
    /* next tick: works again, sequence 0 */
    ck_assert_int_eq(nsq_guid_next(&f, now + TICK_NS, &id), 0);
    ck_assert(id > last);
    ck_assert((id & NSQ_GUID_SEQ_MASK) == 0);
}
END_TEST

START_TEST(test_backwards)
{
    struct nsq_guid_factory f;
    uint64_t id;
    int64_t now = 1700000000000000000LL;

    nsq_guid_factory_init(&f, 1);
    ck_assert_int_eq(nsq_guid_next(&f, now, &id), 0);
    ck_assert_int_eq(nsq_guid_next(&f, now - TICK_NS, &id), NSQ_GUID_ERR_BACKWARDS);
    ck_assert_str_eq(nsq_guid_strerror(NSQ_GUID_ERR_BACKWARDS), "time has gone backwards");
    ck_assert_str_eq(nsq_guid_strerror(NSQ_GUID_ERR_SEQ_EXPIRED), "sequence expired");
    ck_assert_str_eq(nsq_guid_strerror(NSQ_GUID_ERR_ID_BACKWARD), "ID went backward");
}
END_TEST

START_TEST(test_hex)
{
    char hex[NSQ_MSG_ID_LEN + 1];

    hex[NSQ_MSG_ID_LEN] = 'X';
    nsq_guid_to_hex(0, hex);
    ck_assert_mem_eq(hex, "0000000000000000X", 17);
    nsq_guid_to_hex(0x0123456789abcdefULL, hex);
    ck_assert_mem_eq(hex, "0123456789abcdef", 16);
    nsq_guid_to_hex(UINT64_MAX, hex);
    ck_assert_mem_eq(hex, "ffffffffffffffff", 16);
}
END_TEST

START_TEST(test_node_id)
{
    /* values computed as CRC-32/IEEE(MD5(hostname)) % 1024 */
    ck_assert_int_eq(nsq_node_id_for_hostname("localhost"), 16);
    ck_assert_int_eq(nsq_node_id_for_hostname("nsq-host-1"), 250);
    ck_assert_int_eq(nsq_node_id_for_hostname(""), 812);
    int64_t d = nsq_default_node_id();
    ck_assert(d >= 0 && d <= NSQ_GUID_MAX_NODE_ID);
}
END_TEST

/* The clocks the generator is fed from: wall time is Unix ns, monotonic time never goes back. */
START_TEST(test_clocks)
{
    int64_t year2020_ns = 1577836800LL * NSQ_NS_PER_SEC;
    int64_t prev = nsq_mono_ns();

    ck_assert(nsq_now_ns() > year2020_ns);
    for (int i = 0; i < 1000; i++) {
        int64_t m = nsq_mono_ns();
        ck_assert(m >= prev);
        prev = m;
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("nsq_guid");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, CASE_TIMEOUT_S);
    tcase_add_test(tc, test_upstream_layout);
    tcase_add_test(tc, test_fields);
    tcase_add_test(tc, test_many_unique_ordered);
    tcase_add_test(tc, test_sequence_wrap);
    tcase_add_test(tc, test_backwards);
    tcase_add_test(tc, test_hex);
    tcase_add_test(tc, test_node_id);
    tcase_add_test(tc, test_clocks);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
