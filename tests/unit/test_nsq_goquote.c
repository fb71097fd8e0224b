/* Unit tests for common/nsq_goquote.c: Go %q table, UTF-8 decoding as Go does it. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "nsq_goquote.h"

struct quote_case {
    const char *in;
    size_t len; /* 0: strlen(in) */
    const char *want;
};

/* Expected outputs are Go's fmt.Sprintf("%q", in). */
static const struct quote_case cases[] = {
        {"", 0, "\"\""},
        {"abc", 0, "\"abc\""},
        {"a b.c-_#", 0, "\"a b.c-_#\""},
        {"a\"b\\c", 0, "\"a\\\"b\\\\c\""},
        {"it's", 0, "\"it's\""},
        {"\a\b\f\n\r\t\v", 0, "\"\\a\\b\\f\\n\\r\\t\\v\""},
        {"\x00", 1, "\"\\x00\""},
        {"\x01\x1f\x7f", 0, "\"\\x01\\x1f\\x7f\""},
        {"\x1b[0m", 0, "\"\\x1b[0m\""},
        {"\xff", 0, "\"\\xff\""},
        {"\x80", 0, "\"\\x80\""},
        {"h\xc3\xa9llo", 0, "\"h\xc3\xa9llo\""},         /* é printable */
        {"\xc2\xa0", 0, "\"\\u00a0\""},                  /* NBSP is Zs: not printable */
        {"\xc2\xad", 0, "\"\\u00ad\""},                  /* soft hyphen, Cf */
        {"\xc2\x80", 0, "\"\\u0080\""},                  /* C1 control */
        {"\xe2\x80\xa8", 0, "\"\\u2028\""},              /* line separator */
        {"\xef\xbb\xbf", 0, "\"\\ufeff\""},              /* BOM */
        {"\xee\x80\x80", 0, "\"\\ue000\""},              /* private use */
        {"\xef\xbf\xbd", 0, "\"\xef\xbf\xbd\""},         /* U+FFFD itself is printable */
        {"\xf0\x9f\x98\x80", 0, "\"\xf0\x9f\x98\x80\""}, /* emoji */
        {"\xf3\xb0\x80\x80", 0, "\"\\U000f0000\""},      /* plane 15 private use */
        {"\xf4\x8f\xbf\xbf", 0, "\"\\U0010ffff\""},      /* noncharacter */
        {"\xed\xa0\x80", 0, "\"\\xed\\xa0\\x80\""},      /* surrogate: invalid */
        {"\xe2\x82", 0, "\"\\xe2\\x82\""},               /* truncated */
        {"\xe2\x82z", 0, "\"\\xe2\\x82z\""},
        {"\xc0\xaf", 0, "\"\\xc0\\xaf\""},                   /* overlong */
        {"\xe0\x80\xaf", 0, "\"\\xe0\\x80\\xaf\""},          /* overlong */
        {"\xf4\x90\x80\x80", 0, "\"\\xf4\\x90\\x80\\x80\""}, /* > U+10FFFF */
        {"\xf8\x88\x80\x80\x80", 0, "\"\\xf8\\x88\\x80\\x80\\x80\""},
        {"\xe4\xb8\xad\xe6\x96\x87", 0, "\"\xe4\xb8\xad\xe6\x96\x87\""}, /* CJK */
        {"topic\x00name", 10, "\"topic\\x00name\""},
        {"\xe3\x80\x80", 0, "\"\\u3000\""}, /* ideographic space, Zs */
        {"\xcc\x81", 0, "\"\xcc\x81\""},    /* combining mark: printable */
};

START_TEST(test_table)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct quote_case *c = &cases[i];
        size_t len = c->len ? c->len : strlen(c->in);
        char *got = nsq_goquote_dup(c->in, len);

        ck_assert_ptr_nonnull(got);
        ck_assert_msg(strcmp(got, c->want) == 0, "case %zu: got %s want %s", i, got, c->want);
        free(got);
    }
}
END_TEST

START_TEST(test_appends)
{
    struct evbuffer *b = evbuffer_new();
    char out[32];

    evbuffer_add(b, "x=", 2);
    ck_assert_int_eq(nsq_goquote(b, "a\n", 2), 0);
    size_t n = evbuffer_get_length(b);
    evbuffer_remove(b, out, n);
    out[n] = '\0';
    ck_assert_str_eq(out, "x=\"a\\n\"");
    evbuffer_free(b);
}
END_TEST

START_TEST(test_utf8_decode)
{
    uint32_t r;

    ck_assert_uint_eq(nsq_utf8_decode((const uint8_t *)"A", 1, &r), 1);
    ck_assert_uint_eq(r, 'A');
    ck_assert_uint_eq(nsq_utf8_decode((const uint8_t *)"\xc3\xa9", 2, &r), 2);
    ck_assert_uint_eq(r, 0xe9);
    ck_assert_uint_eq(nsq_utf8_decode((const uint8_t *)"\xe2\x82\xac", 3, &r), 3);
    ck_assert_uint_eq(r, 0x20ac);
    ck_assert_uint_eq(nsq_utf8_decode((const uint8_t *)"\xf0\x90\x8d\x88", 4, &r), 4);
    ck_assert_uint_eq(r, 0x10348);
    /* a valid sequence cut short by len */
    ck_assert_uint_eq(nsq_utf8_decode((const uint8_t *)"\xe2\x82\xac", 2, &r), 1);
    ck_assert_uint_eq(r, NSQ_RUNE_ERROR);
    ck_assert_uint_eq(nsq_utf8_decode((const uint8_t *)"\xed\x9f\xbf", 3, &r), 3);
    ck_assert_uint_eq(r, 0xd7ff);
}
END_TEST

START_TEST(test_is_print)
{
    ck_assert(nsq_rune_is_print(' '));
    ck_assert(nsq_rune_is_print('~'));
    ck_assert(!nsq_rune_is_print(0x7f));
    ck_assert(!nsq_rune_is_print('\n'));
    ck_assert(nsq_rune_is_print(0xa1));
    ck_assert(!nsq_rune_is_print(0xa0));
    ck_assert(nsq_rune_is_print(0x4e2d));
    ck_assert(!nsq_rune_is_print(0x110000));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("nsq_goquote");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_table);
    tcase_add_test(tc, test_appends);
    tcase_add_test(tc, test_utf8_decode);
    tcase_add_test(tc, test_is_print);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
