/* Unit tests for common/nsq_names.c: the topic/channel name table and ephemeral detection. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "nsq_names.h"

struct name_case {
    const char *name;
    bool valid;
    bool ephemeral;
};

static const struct name_case cases[] = {
        {"test", true, false},
        {"a", true, false},
        {"orders.v2_new-1", true, false},
        {"...", true, false},
        {"-_.", true, false},
        {"ABCxyz019", true, false},
        {"test#ephemeral", true, true},
        {"a#ephemeral", true, true},
        {"", false, false},
        {"#ephemeral", false, true},
        {"test#ephemeral#ephemeral", false, true},
        {"test#Ephemeral", false, false},
        {"test#ephemera", false, false},
        {"test ", false, false},
        {" test", false, false},
        {"te st", false, false},
        {"test/x", false, false},
        {"test:x", false, false},
        {"test;x", false, false},
        {"tést", false, false},
        {"test\n", false, false},
        {"test*", false, false},
        {"ephemeral", true, false},
        {"x#ephemeralx", false, false},
};

START_TEST(test_table)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct name_case *c = &cases[i];
        size_t len = strlen(c->name);
        ck_assert_msg(nsq_topic_name_valid(c->name, len) == c->valid, "topic %s", c->name);
        ck_assert_msg(nsq_channel_name_valid(c->name, len) == c->valid, "channel %s", c->name);
        ck_assert_msg(nsq_name_is_ephemeral(c->name, len) == c->ephemeral, "eph %s", c->name);
    }
}
END_TEST

START_TEST(test_length_limit)
{
    char buf[80];

    memset(buf, 'a', sizeof(buf));
    ck_assert(nsq_topic_name_valid(buf, 64));
    ck_assert(!nsq_topic_name_valid(buf, 65));
    ck_assert(nsq_channel_name_valid(buf, 64));
    ck_assert(!nsq_channel_name_valid(buf, 65));
    /* #ephemeral counts toward the 64 bytes */
    memcpy(buf + 54, "#ephemeral", 10);
    ck_assert(nsq_topic_name_valid(buf, 64));
    ck_assert(nsq_name_is_ephemeral(buf, 64));
    memset(buf, 'a', sizeof(buf));
    memcpy(buf + 55, "#ephemeral", 10);
    ck_assert(!nsq_topic_name_valid(buf, 65));
    ck_assert(!nsq_channel_name_valid(buf, 65));
    ck_assert(nsq_name_is_ephemeral(buf, 65));
}
END_TEST

START_TEST(test_explicit_length)
{
    /* the length bounds the name: an embedded NUL or trailing garbage outside len is not read */
    ck_assert(nsq_topic_name_valid("abc def", 3));
    ck_assert(!nsq_topic_name_valid("abc\0def", 7));
    ck_assert(!nsq_topic_name_valid(NULL, 0));
    ck_assert(!nsq_name_is_ephemeral(NULL, 0));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("nsq_names");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_table);
    tcase_add_test(tc, test_length_limit);
    tcase_add_test(tc, test_explicit_length);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
