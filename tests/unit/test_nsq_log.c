/* Unit tests for common/nsq_log.c: line format, levels, level parsing, single-write lines. */
#include "nsq_log.h"

#include <check.h>
#include <errno.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static size_t fmt(char *buf, size_t len, int64_t ts, enum nsq_log_level l, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    size_t n = nsq_log_format(buf, len, ts, l, f, ap);
    va_end(ap);
    return n;
}

START_TEST(test_format)
{
    setenv("TZ", "UTC", 1);
    tzset();
    nsq_log_init("[nsqd] ", NSQ_LOG_INFO);
    char buf[256];
    /* 2024-01-02 15:04:05.000123 UTC */
    int64_t ts = 1704207845LL * 1000000000LL + 123456LL * 1000 + 789;
    size_t n = fmt(buf, sizeof(buf), ts, NSQ_LOG_INFO, "TCP: listening on %s", "127.0.0.1:4150");
    ck_assert_str_eq(buf, "[nsqd] 2024/01/02 15:04:05.123456 INFO: TCP: listening on "
                          "127.0.0.1:4150\n");
    ck_assert_uint_eq(n, strlen(buf));
    fmt(buf, sizeof(buf), ts, NSQ_LOG_WARN, "x\n");
    ck_assert_str_eq(buf, "[nsqd] 2024/01/02 15:04:05.123456 WARNING: x\n");
    fmt(buf, sizeof(buf), ts, NSQ_LOG_ERROR, "e");
    ck_assert_str_eq(buf, "[nsqd] 2024/01/02 15:04:05.123456 ERROR: e\n");
    fmt(buf, sizeof(buf), ts, NSQ_LOG_DEBUG, "d");
    ck_assert_str_eq(buf, "[nsqd] 2024/01/02 15:04:05.123456 DEBUG: d\n");
    fmt(buf, sizeof(buf), ts, NSQ_LOG_FATAL, "f");
    ck_assert_str_eq(buf, "[nsqd] 2024/01/02 15:04:05.123456 FATAL: f\n");
    /* truncation keeps the newline and NUL */
    char small[20];
    n = fmt(small, sizeof(small), ts, NSQ_LOG_INFO, "%s", "long message that does not fit");
    ck_assert_uint_eq(n, sizeof(small) - 1);
    ck_assert_int_eq(small[n - 1], '\n');
    ck_assert_int_eq(small[n], '\0');
}
END_TEST

START_TEST(test_levels)
{
    enum nsq_log_level l;
    ck_assert_int_eq(nsq_log_parse_level("debug", &l), 0);
    ck_assert_int_eq(l, NSQ_LOG_DEBUG);
    ck_assert_int_eq(nsq_log_parse_level("INFO", &l), 0);
    ck_assert_int_eq(l, NSQ_LOG_INFO);
    ck_assert_int_eq(nsq_log_parse_level("Warn", &l), 0);
    ck_assert_int_eq(l, NSQ_LOG_WARN);
    ck_assert_int_eq(nsq_log_parse_level("error", &l), 0);
    ck_assert_int_eq(l, NSQ_LOG_ERROR);
    ck_assert_int_eq(nsq_log_parse_level("FATAL", &l), 0);
    ck_assert_int_eq(l, NSQ_LOG_FATAL);
    ck_assert_int_eq(nsq_log_parse_level("warning", &l), -EINVAL);
    ck_assert_int_eq(nsq_log_parse_level("", &l), -EINVAL);
    ck_assert_int_eq(nsq_log_parse_level(NULL, &l), -EINVAL);
}
END_TEST

START_TEST(test_filter_and_write)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    nsq_log_init("[t] ", NSQ_LOG_WARN);
    nsq_log_set_fd(fds[1]);
    nsq_info("hidden %d", 1);
    nsq_warn("shown %d", 2);
    nsq_log_set_level(NSQ_LOG_DEBUG);
    ck_assert_int_eq(nsq_log_get_level(), NSQ_LOG_DEBUG);
    nsq_debug("also");
    nsq_log_set_fd(2);
    close(fds[1]);
    char buf[512];
    ssize_t n = 0, r;
    while ((r = read(fds[0], buf + n, sizeof(buf) - 1 - (size_t)n)) > 0)
        n += r;
    buf[n] = '\0';
    close(fds[0]);
    regex_t re;
    ck_assert_int_eq(regcomp(&re,
                             "^\\[t\\] [0-9]{4}/[0-9]{2}/[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\\."
                             "[0-9]{6} WARNING: shown 2\n"
                             "\\[t\\] [0-9/]{10} [0-9:.]{15} DEBUG: also\n$",
                             REG_EXTENDED),
                     0);
    ck_assert_msg(regexec(&re, buf, 0, NULL, 0) == 0, "got: %s", buf);
    regfree(&re);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("nsq_log");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_format);
    tcase_add_test(tc, test_levels);
    tcase_add_test(tc, test_filter_and_write);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
