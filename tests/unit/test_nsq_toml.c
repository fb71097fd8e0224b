/* Unit tests for common/nsq_toml.c: the config-file TOML subset. */
#include "nsq_toml.h"

#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <unistd.h>

static struct nsq_toml *parse_ok(const char *text)
{
    struct nsq_toml *t = NULL;
    char err[256] = "";
    int rc = nsq_toml_parse(text, strlen(text), &t, err, sizeof(err));
    ck_assert_msg(rc == 0, "parse failed: %s", err);
    return t;
}

static void parse_bad(const char *text, const char *errpart)
{
    struct nsq_toml *t = NULL;
    char err[256] = "";
    ck_assert_int_eq(nsq_toml_parse(text, strlen(text), &t, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_null(t);
    ck_assert_msg(strstr(err, errpart), "error '%s' lacks '%s'", err, errpart);
}

START_TEST(test_scalars)
{
    struct nsq_toml *t = parse_ok("# comment\n"
                                  "\n"
                                  "a = \"str\\t\\\"q\\\" \\u00e9\" # trailing\n"
                                  "b = 'lit\\eral'\n"
                                  "  c=42\n"
                                  "d = -1_000\n"
                                  "e = 0x1F\n"
                                  "f = 1.5\n"
                                  "g = -2e3\n"
                                  "h = true\n"
                                  "i = false\r\n"
                                  "\"quoted key\" = 1\n"
                                  "j = +inf\n"
                                  "k = 0\n");
    ck_assert_uint_eq(t->len, 12);
    const struct nsq_toml_value *v = nsq_toml_get(t, "a");
    ck_assert_int_eq(v->type, NSQ_TOML_STRING);
    ck_assert_str_eq(v->u.s, "str\t\"q\" \xc3\xa9");
    ck_assert_str_eq(nsq_toml_get(t, "b")->u.s, "lit\\eral");
    ck_assert_int_eq(nsq_toml_get(t, "c")->u.i, 42);
    ck_assert_int_eq(nsq_toml_get(t, "d")->u.i, -1000);
    ck_assert_int_eq(nsq_toml_get(t, "e")->u.i, 31);
    ck_assert_int_eq(nsq_toml_get(t, "f")->type, NSQ_TOML_FLOAT);
    ck_assert_double_eq(nsq_toml_get(t, "f")->u.f, 1.5);
    ck_assert_double_eq(nsq_toml_get(t, "g")->u.f, -2000);
    ck_assert_int_eq(nsq_toml_get(t, "h")->type, NSQ_TOML_BOOL);
    ck_assert(nsq_toml_get(t, "h")->u.b);
    ck_assert(!nsq_toml_get(t, "i")->u.b);
    ck_assert_int_eq(nsq_toml_get(t, "quoted key")->u.i, 1);
    ck_assert(isinf(nsq_toml_get(t, "j")->u.f));
    ck_assert_int_eq(nsq_toml_get(t, "k")->u.i, 0);
    ck_assert_ptr_null(nsq_toml_get(t, "zz"));
    nsq_toml_free(t);
}
END_TEST

START_TEST(test_arrays)
{
    struct nsq_toml *t = parse_ok("lookupd = [\"127.0.0.1:4160\", \"127.0.0.1:4161\"]\n"
                                  "p = [\n"
                                  "  1.0, # first\n"
                                  "  0.99,\n"
                                  "  0.5, # trailing comma next\n"
                                  "]\n"
                                  "empty = []\n"
                                  "nested = [[1, 2], ['a']]\n");
    const struct nsq_toml_value *v = nsq_toml_get(t, "lookupd");
    ck_assert_int_eq(v->type, NSQ_TOML_ARRAY);
    ck_assert_uint_eq(v->u.arr.len, 2);
    ck_assert_str_eq(v->u.arr.items[1].u.s, "127.0.0.1:4161");
    v = nsq_toml_get(t, "p");
    ck_assert_uint_eq(v->u.arr.len, 3);
    ck_assert_double_eq(v->u.arr.items[1].u.f, 0.99);
    ck_assert_uint_eq(nsq_toml_get(t, "empty")->u.arr.len, 0);
    v = nsq_toml_get(t, "nested");
    ck_assert_uint_eq(v->u.arr.len, 2);
    ck_assert_int_eq(v->u.arr.items[0].u.arr.items[1].u.i, 2);
    ck_assert_str_eq(v->u.arr.items[1].u.arr.items[0].u.s, "a");
    nsq_toml_free(t);
}
END_TEST

START_TEST(test_tables_skipped)
{
    struct nsq_toml *t = parse_ok("a = 1\n[section]\na = 2\nb = 3\n");
    ck_assert_uint_eq(t->len, 1);
    ck_assert_int_eq(nsq_toml_get(t, "a")->u.i, 1);
    ck_assert_ptr_null(nsq_toml_get(t, "b"));
    nsq_toml_free(t);
}
END_TEST

START_TEST(test_errors)
{
    parse_bad("a = \n", "line 1");
    parse_bad("a = 1\nb = \"unterminated\n", "line 2");
    parse_bad("a = 1 2\n", "line 1");
    parse_bad("a 1\n", "expected '='");
    parse_bad("a = 1\na = 2\n", "duplicate");
    parse_bad("a = [1, 2\n", "in array");
    parse_bad("a = [1,\n", "unterminated array");
    parse_bad("a = 012\n", "leading zero");
    parse_bad("a = bare\n", "invalid");
    parse_bad("a = {x = 1}\n", "inline tables");
    parse_bad("a = \"\\q\"\n", "escape");
    parse_bad("a = 1__0\n", "invalid");
    parse_bad("a = 99999999999999999999\n", "range");
}
END_TEST

/* The text is a length, not a C string: a buffer that ends inside a key is read no further. */
START_TEST(test_unterminated_buffer)
{
    static const char *texts[] = {"_", "key", "a = 1\nbc"};
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        size_t len = strlen(texts[i]);
        char *buf = malloc(len); /* exactly the bytes, no NUL after them */
        ck_assert_ptr_nonnull(buf);
        memcpy(buf, texts[i], len);
        struct nsq_toml *t = NULL;
        char err[256] = "";
        ck_assert_int_eq(nsq_toml_parse(buf, len, &t, err, sizeof(err)), -EINVAL);
        ck_assert_msg(strstr(err, "expected '='") != NULL, "%s: %s", texts[i], err);
        free(buf);
    }
}
END_TEST

START_TEST(test_load)
{
    struct nsq_toml *t = NULL;
    char err[256];
    ck_assert_int_eq(nsq_toml_load("/nonexistent/x.cfg", &t, err, sizeof(err)), -ENOENT);
    ck_assert_ptr_nonnull(strstr(err, "No such file"));
    char path[] = "/tmp/nsqtomlXXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    FILE *f = fdopen(fd, "w");
    fputs("mem_queue_size = 5\n", f);
    fclose(f);
    ck_assert_int_eq(nsq_toml_load(path, &t, err, sizeof(err)), 0);
    ck_assert_int_eq(nsq_toml_get(t, "mem_queue_size")->u.i, 5);
    nsq_toml_free(t);
    nsq_toml_free(NULL);
    unlink(path);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("nsq_toml");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_scalars);
    tcase_add_test(tc, test_arrays);
    tcase_add_test(tc, test_tables_skipped);
    tcase_add_test(tc, test_errors);
    tcase_add_test(tc, test_unterminated_buffer);
    tcase_add_test(tc, test_load);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
