/* Unit tests for common/nsq_json.c: Go-compatible escaping, float formatting, structure. */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "nsq_json.h"

#define ROUNDTRIP_SAMPLES 20000
/* The round-trip sweep tries up to 17 precisions per sample; under a sanitizer on a busy machine
   that outlasts Check's default of 4 seconds. */
#define CASE_TIMEOUT_S 60

/* Drains b into a malloc'd NUL-terminated string. */
static char *take(struct evbuffer *b)
{
    size_t n = evbuffer_get_length(b);
    char *s = malloc(n + 1);

    evbuffer_remove(b, s, n);
    s[n] = '\0';
    return s;
}

struct esc_case {
    const char *in;
    size_t len;
    const char *want;
};

/* Expected outputs are Go's json.Marshal(string(in)). */
static const struct esc_case esc_cases[] = {
        {"", 0, "\"\""},
        {"abc", 0, "\"abc\""},
        {"<a href=\"x\">&amp;</a>", 0,
         "\"\\u003ca href=\\\"x\\\"\\u003e\\u0026amp;\\u003c/a\\u003e\""},
        {"back\\slash/", 0, "\"back\\\\slash/\""},
        {"\n\r\t", 0, "\"\\n\\r\\t\""},
        {"\b\f", 0, "\"\\u0008\\u000c\""},
        {"\x00", 1, "\"\\u0000\""},
        {"\x01\x1f", 0, "\"\\u0001\\u001f\""},
        {"\x7f", 0, "\"\x7f\""},
        {"\xff", 0, "\"\\ufffd\""},
        {"a\xe2\x82z", 0, "\"a\\ufffd\\ufffdz\""},
        {"\xed\xa0\x80", 0, "\"\\ufffd\\ufffd\\ufffd\""},
        {"\xe2\x80\xa8\xe2\x80\xa9", 0, "\"\\u2028\\u2029\""},
        {"h\xc3\xa9llo \xe4\xb8\xad \xf0\x9f\x98\x80", 0,
         "\"h\xc3\xa9llo \xe4\xb8\xad \xf0\x9f\x98\x80\""},
        {"\xc2\xa0\xc2\x80", 0, "\"\xc2\xa0\xc2\x80\""},
        {"\xef\xbf\xbd", 0, "\"\xef\xbf\xbd\""},
};

START_TEST(test_escape_table)
{
    struct evbuffer *b = evbuffer_new();

    for (size_t i = 0; i < sizeof(esc_cases) / sizeof(esc_cases[0]); i++) {
        const struct esc_case *c = &esc_cases[i];
        ck_assert_int_eq(nsq_json_escape(b, c->in, c->len ? c->len : strlen(c->in)), 0);
        char *got = take(b);
        ck_assert_msg(strcmp(got, c->want) == 0, "case %zu: got %s want %s", i, got, c->want);
        free(got);
    }
    evbuffer_free(b);
}
END_TEST

struct float_case {
    double v;
    const char *want;
};

/* Expected outputs are Go's json.Marshal(float64(v)). */
static const struct float_case float_cases[] = {
        {0.0, "0"},
        {-0.0, "-0"},
        {1.0, "1"},
        {-1.0, "-1"},
        {0.99, "0.99"},
        {0.1, "0.1"},
        {0.1 + 0.2, "0.30000000000000004"},
        {1234567.0, "1234567"},
        {14712071370.0, "14712071370"},
        {100.0, "100"},
        {-2.5, "-2.5"},
        {3.14159, "3.14159"},
        {123456789.123, "123456789.123"},
        {9007199254740992.0, "9007199254740992"},
        {1e20, "100000000000000000000"},
        {123456789012345678901.0, "123456789012345680000"},
        {1e21, "1e+21"},
        {1.5e300, "1.5e+300"},
        {1.7976931348623157e308, "1.7976931348623157e+308"},
        {1e-6, "0.000001"},
        {1.5e-6, "0.0000015"},
        {9.99e-7, "9.99e-7"},
        {1e-7, "1e-7"},
        {-1.2345e-7, "-1.2345e-7"},
        {1.5e-10, "1.5e-10"},
        {1e-300, "1e-300"},
        {5e-324, "5e-324"},
        {2.2250738585072014e-308, "2.2250738585072014e-308"},
        {0.000123, "0.000123"},
        {1e15, "1000000000000000"},
        {1.0 / 3.0, "0.3333333333333333"},
        {2.0 / 3.0, "0.6666666666666666"},
        {100.5, "100.5"},
        {5e-7, "5e-7"},
        /* powers of two: the shortest string lies above the value, outside the nearer rounding */
        {7.120236347223045e-307, "7.120236347223045e-307"},
        {5.858190679279809e-244, "5.858190679279809e-244"},
        {6.290184345309701e-235, "6.290184345309701e-235"},
};

START_TEST(test_float_table)
{
    char buf[NSQ_JSON_FLOAT_BUFLEN];

    for (size_t i = 0; i < sizeof(float_cases) / sizeof(float_cases[0]); i++) {
        size_t n = nsq_json_format_double(buf, float_cases[i].v);
        ck_assert_uint_eq(n, strlen(buf));
        ck_assert_msg(strcmp(buf, float_cases[i].want) == 0, "case %zu: got %s want %s", i, buf,
                      float_cases[i].want);
    }
    nsq_json_format_double(buf, NAN);
    ck_assert_str_eq(buf, "null");
    nsq_json_format_double(buf, -INFINITY);
    ck_assert_str_eq(buf, "null");
}
END_TEST

/* The shortest form always parses back to the same double. */
START_TEST(test_float_roundtrip)
{
    char buf[NSQ_JSON_FLOAT_BUFLEN];
    unsigned int seed = 12345;

    for (int i = 0; i < ROUNDTRIP_SAMPLES; i++) {
        uint64_t bits = 0;
        for (int k = 0; k < 4; k++) {
            seed = seed * 1103515245u + 12345u;
            bits = (bits << 16) | ((seed >> 8) & 0xffff);
        }
        double v;
        memcpy(&v, &bits, sizeof(v));
        if (isnan(v) || isinf(v))
            continue;
        nsq_json_format_double(buf, v);
        ck_assert_msg(strtod(buf, NULL) == v, "%s", buf);
    }
}
END_TEST

START_TEST(test_structure)
{
    struct evbuffer *b = evbuffer_new();
    struct nsq_json j;

    nsq_json_init(&j, b);
    nsq_json_object_begin(&j);
    nsq_json_kv_string(&j, "version", "1.3.0");
    nsq_json_kv_int(&j, "n", -5);
    nsq_json_kv_uint(&j, "u", UINT64_MAX);
    nsq_json_kv_bool(&j, "t", true);
    nsq_json_kv_bool(&j, "f", false);
    nsq_json_kv_null(&j, "z");
    nsq_json_kv_double(&j, "d", 0.99);
    nsq_json_key(&j, "topics");
    nsq_json_array_begin(&j);
    nsq_json_object_begin(&j);
    nsq_json_kv_string(&j, "name", "a<b");
    nsq_json_key(&j, "channels");
    nsq_json_array_begin(&j);
    nsq_json_array_end(&j);
    nsq_json_object_end(&j);
    nsq_json_object_begin(&j);
    nsq_json_object_end(&j);
    nsq_json_int(&j, 1);
    nsq_json_string(&j, NULL);
    nsq_json_raw(&j, "[1,2]", 5);
    nsq_json_array_end(&j);
    nsq_json_kv_string_len(&j, "k", "ab", 1);
    nsq_json_object_end(&j);
    char *got = take(b);
    ck_assert_str_eq(got, "{\"version\":\"1.3.0\",\"n\":-5,\"u\":18446744073709551615,\"t\":true,"
                          "\"f\":false,\"z\":null,\"d\":0.99,\"topics\":[{\"name\":\"a\\u003cb\","
                          "\"channels\":[]},{},1,\"\",[1,2]],\"k\":\"a\"}");
    ck_assert_int_eq(j.depth, 0);
    free(got);

    /* a second document on the same writer starts clean */
    nsq_json_init(&j, b);
    nsq_json_array_begin(&j);
    nsq_json_double(&j, 1e21);
    nsq_json_int(&j, INT64_MIN);
    nsq_json_array_end(&j);
    got = take(b);
    ck_assert_str_eq(got, "[1e+21,-9223372036854775808]");
    free(got);
    evbuffer_free(b);
}
END_TEST

START_TEST(test_deep_nesting)
{
    struct evbuffer *b = evbuffer_new();
    struct nsq_json j;

    nsq_json_init(&j, b);
    for (int i = 0; i < 70; i++)
        nsq_json_array_begin(&j);
    for (int i = 0; i < 70; i++)
        nsq_json_array_end(&j);
    ck_assert_int_eq(j.depth, 0);
    ck_assert_uint_eq(evbuffer_get_length(b), 140);
    evbuffer_free(b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("nsq_json");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, CASE_TIMEOUT_S);
    tcase_add_test(tc, test_escape_table);
    tcase_add_test(tc, test_float_table);
    tcase_add_test(tc, test_float_roundtrip);
    tcase_add_test(tc, test_structure);
    tcase_add_test(tc, test_deep_nesting);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
