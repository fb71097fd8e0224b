/* Unit tests for nsqd/metadata.c: reading nsqd.dat's topics and channels for a visitor. */
#include "metadata.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

/* What the visitor saw, one line per call: "T name paused", "C name paused", "E". */
struct seen {
    char log[1024];
    int handle;
};

static void note(struct seen *s, const char *kind, const char *name, bool paused)
{
    size_t n = strlen(s->log);
    snprintf(s->log + n, sizeof(s->log) - n, "%s%s%s%s;", kind, name ? " " : "", name ? name : "",
             name ? (paused ? " p" : " -") : "");
}

static void *on_topic(void *arg, const char *name, bool paused, const cJSON *obj)
{
    struct seen *s = arg;
    note(s, "T", name, paused);
    return strcmp(name, "skip") == 0 ? NULL : &s->handle;
}

static void on_channel(void *arg, void *topic, const char *name, bool paused, const cJSON *obj)
{
    struct seen *s = arg;
    ck_assert_ptr_eq(topic, &s->handle);
    note(s, "C", name, paused);
}

static void on_topic_end(void *arg, void *topic)
{
    note(arg, "E", NULL, false);
}

static int parse(const char *text, struct seen *s)
{
    memset(s, 0, sizeof(*s));
    struct nsqd_metadata_visitor v = {
            .arg = s, .topic = on_topic, .channel = on_channel, .topic_end = on_topic_end};
    return nsqd_metadata_parse(text, strlen(text), &v);
}

START_TEST(test_upstream_form)
{
    struct seen s;
    ck_assert_int_eq(parse("{\"topics\":[{\"name\":\"a\",\"paused\":false,\"channels\":[{\"name\":"
                           "\"x\",\"paused\":true},{\"name\":\"y\",\"paused\":false}]},{\"name\":"
                           "\"b\",\"paused\":true,\"channels\":null}],\"version\":\"1.3.0\"}",
                           &s),
                     0);
    ck_assert_str_eq(s.log, "T a -;C x p;C y -;E;T b p;E;");
}
END_TEST

/* Invalid names are skipped, other topics still load; a topic the caller skips has no channels. */
START_TEST(test_invalid_names_and_skips)
{
    struct seen s;
    ck_assert_int_eq(parse("{\"topics\":[{\"name\":\"bad name\"},{\"name\":5},{\"channels\":[]},"
                           "{\"name\":\"skip\",\"channels\":[{\"name\":\"c\"}]},{\"name\":\"ok\","
                           "\"channels\":[{\"name\":\"c/d\"},{\"name\":\"e#ephemeral\"}]}]}",
                           &s),
                     0);
    ck_assert_str_eq(s.log, "T skip -;T ok -;C e#ephemeral -;E;");
}
END_TEST

/* Keys match case-insensitively, as Go's JSON decoding matches struct fields. */
START_TEST(test_keys_case_insensitive)
{
    struct seen s;
    ck_assert_int_eq(parse("{\"Topics\":[{\"Name\":\"t\",\"Paused\":true,\"CHANNELS\":[{\"name\":"
                           "\"c\",\"PAUSED\":true}]}]}",
                           &s),
                     0);
    ck_assert_str_eq(s.log, "T t p;C c p;E;");
}
END_TEST

START_TEST(test_not_an_object)
{
    struct seen s;
    static const char *bad[] = {"", "[]", "{\"topics\":[", "null", "\"x\""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_int_eq(parse(bad[i], &s), -EINVAL);
        ck_assert_str_eq(s.log, "");
    }
    ck_assert_int_eq(parse("{}", &s), 0);
    ck_assert_str_eq(s.log, "");
}
END_TEST

int main(void)
{
    Suite *su = suite_create("nsqd_metadata");
    TCase *tc = tcase_create("metadata");
    tcase_add_test(tc, test_upstream_form);
    tcase_add_test(tc, test_invalid_names_and_skips);
    tcase_add_test(tc, test_keys_case_insensitive);
    tcase_add_test(tc, test_not_an_object);
    suite_add_tcase(su, tc);
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
