/* Unit tests for common/nsq_message.c: header encoding, decoding, message frames. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "nsq_frame.h"
#include "nsq_message.h"

/* storage.md §2: the example record written by upstream (length prefix, then the payload). */
static const uint8_t example_record[] = {0x00, 0x00, 0x00, 0x22, 0x18, 0xea, 0x3e, 0x32, 0xd7, 0x91,
                                         0x60, 0x39, 0x00, 0x00, '1',  '8',  'a',  '3',  'd',  '5',
                                         '8',  'a',  'c',  'a',  '6',  '6',  '9',  '0',  '0',  '0',
                                         'd',  'e',  'f',  'e',  'r',  'r',  'e',  'd'};

START_TEST(test_decode_example_record)
{
    struct nsq_message_view v;
    uint32_t len = nsq_get_be32(example_record);

    ck_assert_uint_eq(len, 34);
    ck_assert_int_eq(nsq_message_decode(example_record + 4, len, &v), 0);
    ck_assert(v.timestamp == 0x18ea3e32d7916039LL);
    ck_assert_uint_eq(v.attempts, 0);
    ck_assert_mem_eq(v.id, "18a3d58aca669000", NSQ_MSG_ID_LEN);
    ck_assert_uint_eq(v.body_len, 8);
    ck_assert_mem_eq(v.body, "deferred", 8);
}
END_TEST

START_TEST(test_encode_example_record)
{
    uint8_t hdr[NSQ_MSG_HEADER_LEN];

    nsq_message_encode_header(hdr, "18a3d58aca669000", 0x18ea3e32d7916039LL, 0);
    ck_assert_mem_eq(hdr, example_record + 4, NSQ_MSG_HEADER_LEN);
}
END_TEST

START_TEST(test_roundtrip_values)
{
    const int64_t stamps[] = {0, 1, -1, INT64_MAX, INT64_MIN, 1700000000123456789LL};
    const uint16_t atts[] = {0, 1, 255, 256, 65535};
    uint8_t buf[NSQ_MSG_HEADER_LEN + 3];
    struct nsq_message_view v;

    for (size_t i = 0; i < sizeof(stamps) / sizeof(stamps[0]); i++) {
        for (size_t j = 0; j < sizeof(atts) / sizeof(atts[0]); j++) {
            nsq_message_encode_header(buf, "0123456789abcdef", stamps[i], atts[j]);
            memcpy(buf + NSQ_MSG_HEADER_LEN, "abc", 3);
            ck_assert_int_eq(nsq_message_decode(buf, sizeof(buf), &v), 0);
            ck_assert(v.timestamp == stamps[i]);
            ck_assert_uint_eq(v.attempts, atts[j]);
            ck_assert_mem_eq(v.id, "0123456789abcdef", 16);
            ck_assert_uint_eq(v.body_len, 3);
            ck_assert_mem_eq(v.body, "abc", 3);
        }
    }
}
END_TEST

START_TEST(test_decode_short)
{
    uint8_t buf[NSQ_MSG_HEADER_LEN] = {0};
    struct nsq_message_view v;

    for (size_t n = 0; n < NSQ_MSG_HEADER_LEN; n++)
        ck_assert_int_eq(nsq_message_decode(buf, n, &v), -EINVAL);
    ck_assert_int_eq(nsq_message_decode(buf, NSQ_MSG_HEADER_LEN, &v), 0);
    ck_assert_uint_eq(v.body_len, 0);
    ck_assert_int_eq(nsq_message_decode(NULL, 30, &v), -EINVAL);
}
END_TEST

START_TEST(test_frame_add)
{
    struct evbuffer *b = evbuffer_new();
    uint8_t out[64];
    int32_t type;
    uint32_t len;
    struct nsq_message_view v;

    ck_assert_int_eq(
            nsq_message_frame_add(b, "18a3d58aca669000", 0x18ea3e32d7916039LL, 3, "deferred", 8),
            0);
    ck_assert_uint_eq(evbuffer_get_length(b), 8 + 34);
    ck_assert_int_eq(nsq_frame_peek(b, 1 << 20, &type, &len), NSQ_FRAME_READY);
    ck_assert_int_eq(type, NSQ_FRAME_MESSAGE);
    ck_assert_uint_eq(len, 34);
    evbuffer_remove(b, out, 8 + 34);
    ck_assert_mem_eq(out, "\x00\x00\x00\x26\x00\x00\x00\x02", 8);
    ck_assert_int_eq(nsq_message_decode(out + 8, 34, &v), 0);
    ck_assert_uint_eq(v.attempts, 3);
    ck_assert_mem_eq(v.body, "deferred", 8);
    evbuffer_free(b);
}
END_TEST

/* Reads every record of the upstream data directory's events queue and checks that each decodes
   and re-encodes to the same header bytes. */
START_TEST(test_upstream_segment)
{
    const char *path = NSQ_TESTDATA_DIR "/upstream-v1.3.0/datadir/events.diskqueue.000000.dat";
    FILE *f = fopen(path, "rb");
    uint8_t lenb[4];
    int records = 0;

    ck_assert_ptr_nonnull(f);
    while (fread(lenb, 1, 4, f) == 4) {
        uint32_t len = nsq_get_be32(lenb);
        uint8_t *p = malloc(len);
        struct nsq_message_view v;
        uint8_t hdr[NSQ_MSG_HEADER_LEN];

        ck_assert_uint_ge(len, NSQ_MSG_HEADER_LEN);
        ck_assert_uint_eq(fread(p, 1, len, f), len);
        ck_assert_int_eq(nsq_message_decode(p, len, &v), 0);
        nsq_message_encode_header(hdr, v.id, v.timestamp, v.attempts);
        ck_assert_mem_eq(hdr, p, NSQ_MSG_HEADER_LEN);
        for (int i = 0; i < NSQ_MSG_ID_LEN; i++)
            ck_assert(strchr("0123456789abcdef", v.id[i]) != NULL);
        free(p);
        records++;
    }
    fclose(f);
    ck_assert_int_gt(records, 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("nsq_message");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_decode_example_record);
    tcase_add_test(tc, test_encode_example_record);
    tcase_add_test(tc, test_roundtrip_values);
    tcase_add_test(tc, test_decode_short);
    tcase_add_test(tc, test_frame_add);
    tcase_add_test(tc, test_upstream_segment);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
