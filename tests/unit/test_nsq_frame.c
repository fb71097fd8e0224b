/* Unit tests for common/nsq_frame.c: V2 frames and V1 replies, written and read back. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "nsq_frame.h"

#define MAX_SIZE 1024

START_TEST(test_add_layout)
{
    struct evbuffer *b = evbuffer_new();
    uint8_t out[32];

    ck_assert_int_eq(nsq_frame_add(b, NSQ_FRAME_RESPONSE, "OK", 2), 0);
    ck_assert_uint_eq(evbuffer_get_length(b), 10);
    evbuffer_remove(b, out, 10);
    ck_assert_mem_eq(out, "\x00\x00\x00\x06\x00\x00\x00\x00OK", 10);

    ck_assert_int_eq(nsq_frame_add(b, NSQ_FRAME_ERROR, "E_INVALID x", 11), 0);
    evbuffer_remove(b, out, 19);
    ck_assert_mem_eq(out,
                     "\x00\x00\x00\x0f\x00\x00\x00\x01"
                     "E_INVALID x",
                     19);

    ck_assert_int_eq(nsq_frame_add(b, NSQ_FRAME_MESSAGE, NULL, 0), 0);
    evbuffer_remove(b, out, 8);
    ck_assert_mem_eq(out, "\x00\x00\x00\x04\x00\x00\x00\x02", 8);
    ck_assert_uint_eq(evbuffer_get_length(b), 0);
    evbuffer_free(b);
}
END_TEST

START_TEST(test_add_too_big)
{
    struct evbuffer *b = evbuffer_new();

    ck_assert_int_eq(nsq_frame_add(b, 0, "x", NSQ_FRAME_MAX_DATA + 1), -EMSGSIZE);
    ck_assert_uint_eq(evbuffer_get_length(b), 0);
    evbuffer_free(b);
}
END_TEST

START_TEST(test_header)
{
    uint8_t h[NSQ_FRAME_HEADER_LEN];

    nsq_frame_header(h, NSQ_FRAME_MESSAGE, 0x01020304);
    ck_assert_mem_eq(h, "\x01\x02\x03\x08\x00\x00\x00\x02", 8);
}
END_TEST

/* Feeds a stream of frames one byte at a time: the reader must say NEED_MORE until each frame is
   complete, then READY with the right type and length. */
START_TEST(test_peek_byte_by_byte)
{
    struct evbuffer *src = evbuffer_new();
    struct evbuffer *in = evbuffer_new();
    const char *payloads[] = {"OK", "_heartbeat_", "", "E_BAD_BODY x"};
    int32_t types[] = {0, 0, 2, 1};
    size_t got = 0;
    int32_t type;
    uint32_t len;

    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(nsq_frame_add(src, types[i], payloads[i], strlen(payloads[i])), 0);
    size_t total = evbuffer_get_length(src);
    uint8_t *bytes = malloc(total);
    evbuffer_remove(src, bytes, total);
    for (size_t i = 0; i < total; i++) {
        evbuffer_add(in, bytes + i, 1);
        int r = nsq_frame_peek(in, MAX_SIZE, &type, &len);
        ck_assert_int_ge(r, 0);
        if (r == NSQ_FRAME_READY) {
            char data[64];
            ck_assert_int_eq(type, types[got]);
            ck_assert_uint_eq(len, strlen(payloads[got]));
            evbuffer_drain(in, NSQ_FRAME_HEADER_LEN);
            evbuffer_remove(in, data, len);
            ck_assert_mem_eq(data, payloads[got], len);
            ck_assert_int_eq(nsq_frame_peek(in, MAX_SIZE, &type, &len), NSQ_FRAME_NEED_MORE);
            got++;
        }
    }
    ck_assert_uint_eq(got, 4);
    free(bytes);
    evbuffer_free(src);
    evbuffer_free(in);
}
END_TEST

START_TEST(test_peek_bad_sizes)
{
    struct evbuffer *in = evbuffer_new();
    int32_t type;
    uint32_t len;

    evbuffer_add(in, "\x00\x00\x00\x03\x00\x00\x00\x00", 8);
    ck_assert_int_eq(nsq_frame_peek(in, MAX_SIZE, &type, &len), -EBADMSG);
    evbuffer_drain(in, 8);
    evbuffer_add(in, "\xff\xff\xff\xff", 4);
    ck_assert_int_eq(nsq_frame_peek(in, MAX_SIZE, &type, &len), -EBADMSG);
    evbuffer_drain(in, 4);
    evbuffer_add(in, "\x7f\xff\xff\xff", 4);
    ck_assert_int_eq(nsq_frame_peek(in, MAX_SIZE, &type, &len), -EMSGSIZE);
    evbuffer_drain(in, 4);
    /* size exactly max: fine, only needs more */
    evbuffer_add(in, "\x00\x00\x04\x00", 4);
    ck_assert_int_eq(nsq_frame_peek(in, MAX_SIZE, &type, &len), NSQ_FRAME_NEED_MORE);
    evbuffer_drain(in, 4);
    /* size 4: empty data */
    evbuffer_add(in, "\x00\x00\x00\x04\x00\x00\x00\x01", 8);
    ck_assert_int_eq(nsq_frame_peek(in, MAX_SIZE, &type, &len), NSQ_FRAME_READY);
    ck_assert_int_eq(type, 1);
    ck_assert_uint_eq(len, 0);
    ck_assert_uint_eq(evbuffer_get_length(in), 8); /* not drained */
    evbuffer_free(in);
}
END_TEST

START_TEST(test_v1_roundtrip)
{
    struct evbuffer *b = evbuffer_new();
    uint8_t out[16];
    uint32_t len;

    ck_assert_int_eq(nsq_frame_add_v1(b, "OK", 2), 0);
    evbuffer_copyout(b, out, 6);
    ck_assert_mem_eq(out, "\x00\x00\x00\x02OK", 6);
    ck_assert_int_eq(nsq_frame_peek_v1(b, MAX_SIZE, &len), NSQ_FRAME_READY);
    ck_assert_uint_eq(len, 2);
    evbuffer_drain(b, 5);
    ck_assert_int_eq(nsq_frame_peek_v1(b, MAX_SIZE, &len), NSQ_FRAME_NEED_MORE);
    evbuffer_drain(b, 1);
    evbuffer_add(b, "\x80\x00\x00\x00", 4);
    ck_assert_int_eq(nsq_frame_peek_v1(b, MAX_SIZE, &len), -EBADMSG);
    evbuffer_drain(b, 4);
    evbuffer_add(b, "\x00\x00\x04\x01", 4);
    ck_assert_int_eq(nsq_frame_peek_v1(b, MAX_SIZE, &len), -EMSGSIZE);
    evbuffer_free(b);
}
END_TEST

START_TEST(test_be_helpers)
{
    uint8_t b[8];

    nsq_put_be64(b, 0x0102030405060708ULL);
    ck_assert_mem_eq(b, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
    ck_assert(nsq_get_be64(b) == 0x0102030405060708ULL);
    ck_assert_uint_eq(nsq_get_be32(b + 4), 0x05060708u);
    nsq_put_be16(b, 0xfeff);
    ck_assert_uint_eq(nsq_get_be16(b), 0xfeff);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("nsq_frame");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_add_layout);
    tcase_add_test(tc, test_add_too_big);
    tcase_add_test(tc, test_header);
    tcase_add_test(tc, test_peek_byte_by_byte);
    tcase_add_test(tc, test_peek_bad_sizes);
    tcase_add_test(tc, test_v1_roundtrip);
    tcase_add_test(tc, test_be_helpers);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
