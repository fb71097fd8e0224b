/* Unit tests for common/nsq_crc32c.c: published CRC-32C vectors, both implementations agree. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "nsq_crc32c.h"

START_TEST(test_known_vectors)
{
    uint8_t buf[32];

    ck_assert_uint_eq(nsq_crc32c("123456789", 9), 0xe3069283u);
    ck_assert_uint_eq(nsq_crc32c("", 0), 0);
    /* RFC 3720 B.4 */
    memset(buf, 0, sizeof(buf));
    ck_assert_uint_eq(nsq_crc32c(buf, sizeof(buf)), 0x8a9136aau);
    memset(buf, 0xff, sizeof(buf));
    ck_assert_uint_eq(nsq_crc32c(buf, sizeof(buf)), 0x62a8ab43u);
    for (int i = 0; i < 32; i++)
        buf[i] = (uint8_t)i;
    ck_assert_uint_eq(nsq_crc32c(buf, sizeof(buf)), 0x46dd794eu);
    ck_assert_uint_eq(nsq_crc32c_update_portable(0, buf, sizeof(buf)), 0x46dd794eu);
}
END_TEST

START_TEST(test_incremental_and_portable_agree)
{
    enum { LEN = 4099 };
    uint8_t *data = malloc(LEN);
    srand(7);
    for (int i = 0; i < LEN; i++)
        data[i] = (uint8_t)rand();
    for (size_t len = 0; len < LEN; len += 37) {
        for (size_t off = 0; off < 9 && off < LEN - len; off++) {
            uint32_t whole = nsq_crc32c(data + off, len);
            ck_assert_uint_eq(whole, nsq_crc32c_update_portable(0, data + off, len));
            size_t half = len / 3;
            uint32_t c = nsq_crc32c_update(0, data + off, half);
            c = nsq_crc32c_update(c, data + off + half, len - half);
            ck_assert_uint_eq(c, whole);
        }
    }
    free(data);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("nsq_crc32c");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_known_vectors);
    tcase_add_test(tc, test_incremental_and_portable_agree);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
