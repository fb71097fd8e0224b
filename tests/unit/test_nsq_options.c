/* Unit tests for common/nsq_options.c: Go flag syntax, config files, precedence, durations. */
#include "nsq_log.h"
#include "nsq_options.h"

#include <check.h>
#include <errno.h>
#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct opts {
    bool flag_b;
    bool deflate;
    int mem;
    int64_t big;
    int64_t timeout;
    char *addr;
    char *prefix;
    struct nsq_strlist lookupd;
    struct nsq_floatlist pct;
    int level;
    bool verbose;
};

static int parse_level(const char *text, void *target)
{
    static const char *names[] = {"debug", "info", "warn", "error", "fatal"};
    for (int i = 0; i < 5; i++)
        if (strcasecmp(text, names[i]) == 0) {
            *(int *)target = i + 1;
            return 0;
        }
    return -EINVAL;
}

static int render_level(const void *target, struct evbuffer *out)
{
    return evbuffer_add_printf(out, "%d", *(const int *)target) < 0 ? -ENOMEM : 0;
}

static struct opts O;
static const struct nsq_opt table[] = {
        NSQ_OPT_ENTRY("flag-b", NULL, NSQ_OPT_BOOL, &O.flag_b, NULL, "a boolean"),
        NSQ_OPT_ENTRY("deflate", NULL, NSQ_OPT_BOOL, &O.deflate, "true", "enable deflate"),
        NSQ_OPT_ENTRY("mem-queue-size", NULL, NSQ_OPT_INT, &O.mem, "10000", "number of messages"),
        NSQ_OPT_ENTRY("max-bytes", NULL, NSQ_OPT_INT64, &O.big, "104857600", "bytes per file"),
        NSQ_OPT_ENTRY("msg-timeout", NULL, NSQ_OPT_DURATION, &O.timeout, "60s", "default timeout"),
        NSQ_OPT_ENTRY("tcp-address", NULL, NSQ_OPT_STRING, &O.addr, "0.0.0.0:4150",
                      "<addr>:<port> to listen"),
        NSQ_OPT_ENTRY("log-prefix", NULL, NSQ_OPT_STRING, &O.prefix, "[nsqd] ",
                      "log message `prefix`"),
        NSQ_OPT_ENTRY("lookupd-tcp-address", "nsqlookupd_tcp_addresses", NSQ_OPT_STRING_LIST,
                      &O.lookupd, NULL, "lookupd TCP address (may be given multiple times)"),
        NSQ_OPT_ENTRY("e2e-processing-latency-percentile", "e2e_processing_latency_percentiles",
                      NSQ_OPT_FLOAT_LIST, &O.pct, NULL, "percentiles"),
        {.flag = "log-level",
         .type = NSQ_OPT_CUSTOM,
         .target = &O.level,
         .defval = "info",
         .help = "set log verbosity",
         .parse = parse_level,
         .render = render_level,
         .usage_default = "INFO",
         .parse_error = "invalid log-level '%s'"},
        NSQ_OPT_ENTRY("verbose", "", NSQ_OPT_BOOL, &O.verbose, NULL, "[deprecated] has no effect"),
};
#define NOPTS (sizeof(table) / sizeof(table[0]))

static char errbuf[512];

static int run(const char *first, ...)
{
    char *argv[32];
    int argc = 0;
    argv[argc++] = "nsqd";
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a; a = va_arg(ap, const char *))
        argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc] = NULL;
    errbuf[0] = '\0';
    return nsq_options_parse(table, NOPTS, "nsqd", argc, argv, errbuf, sizeof(errbuf));
}

static char cfgpath[64];

static void write_cfg(const char *text)
{
    strcpy(cfgpath, "/tmp/nsqoptXXXXXX");
    int fd = mkstemp(cfgpath);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static void teardown(void)
{
    nsq_options_free(table, NOPTS);
    if (cfgpath[0])
        unlink(cfgpath);
    cfgpath[0] = '\0';
}

START_TEST(test_defaults)
{
    ck_assert_int_eq(run(NULL), 0);
    ck_assert(!O.flag_b);
    ck_assert(O.deflate);
    ck_assert_int_eq(O.mem, 10000);
    ck_assert_int_eq(O.big, 104857600);
    ck_assert_int_eq(O.timeout, 60000000000LL);
    ck_assert_str_eq(O.addr, "0.0.0.0:4150");
    ck_assert_str_eq(O.prefix, "[nsqd] ");
    ck_assert_uint_eq(O.lookupd.len, 0);
    ck_assert_uint_eq(O.pct.len, 0);
    ck_assert_int_eq(O.level, 2);
}
END_TEST

START_TEST(test_flag_syntax)
{
    ck_assert_int_eq(run("-mem-queue-size=5", "--msg-timeout", "2s", "--tcp-address=:1",
                         "-log-prefix", "", "--flag-b", "-deflate=false", "--log-level=DEBUG",
                         "-max-bytes", "0x10", NULL),
                     0);
    ck_assert_int_eq(O.mem, 5);
    ck_assert_int_eq(O.timeout, 2000000000LL);
    ck_assert_str_eq(O.addr, ":1");
    ck_assert_str_eq(O.prefix, "");
    ck_assert(O.flag_b);
    ck_assert(!O.deflate);
    ck_assert_int_eq(O.level, 1);
    ck_assert_int_eq(O.big, 16);
}
END_TEST

START_TEST(test_bool_stops)
{
    /* "--flag-b false": false is positional and ends parsing */
    ck_assert_int_eq(run("--flag-b", "false", "--mem-queue-size=3", NULL), 0);
    ck_assert(O.flag_b);
    ck_assert_int_eq(O.mem, 10000);
    nsq_options_free(table, NOPTS);
    ck_assert_int_eq(run("--mem-queue-size=3", "--", "--mem-queue-size=4", NULL), 0);
    ck_assert_int_eq(O.mem, 3);
    nsq_options_free(table, NOPTS);
    ck_assert_int_eq(run("positional", "--mem-queue-size=4", NULL), 0);
    ck_assert_int_eq(O.mem, 10000);
    nsq_options_free(table, NOPTS);
    ck_assert_int_eq(run("-flag-b=t", "-deflate=0", NULL), 0);
    ck_assert(O.flag_b);
    ck_assert(!O.deflate);
}
END_TEST

START_TEST(test_repeatable)
{
    ck_assert_int_eq(run("--lookupd-tcp-address=a:1", "--lookupd-tcp-address", "b:2,c:3",
                         "--e2e-processing-latency-percentile=0.5,0.99",
                         "--e2e-processing-latency-percentile", "1.0", NULL),
                     0);
    ck_assert_uint_eq(O.lookupd.len, 2);
    ck_assert_str_eq(O.lookupd.items[0], "a:1");
    ck_assert_str_eq(O.lookupd.items[1], "b:2,c:3");
    ck_assert_uint_eq(O.pct.len, 3);
    ck_assert_double_eq(O.pct.items[0], 1.0);
    ck_assert_double_eq(O.pct.items[1], 0.99);
    ck_assert_double_eq(O.pct.items[2], 0.5);
    struct evbuffer *b = evbuffer_new();
    ck_assert_int_eq(nsq_options_render(&table[7], b), 0);
    ck_assert_int_eq(nsq_options_render(&table[8], b), 0);
    evbuffer_add(b, "", 1);
    ck_assert_str_eq((char *)evbuffer_pullup(b, -1), "[\"a:1\",\"b:2,c:3\"][1,0.99,0.5]");
    evbuffer_free(b);
}
END_TEST

START_TEST(test_errors)
{
    ck_assert_int_eq(run("--nope=1", NULL), NSQ_OPTIONS_FLAG_ERROR);
    ck_assert_str_eq(errbuf, "flag provided but not defined: -nope");
    ck_assert_int_eq(run("--mem-queue-size=x", NULL), NSQ_OPTIONS_FLAG_ERROR);
    ck_assert_str_eq(errbuf, "invalid value \"x\" for flag -mem-queue-size: parse error");
    ck_assert_int_eq(run("--mem-queue-size=99999999999", NULL), NSQ_OPTIONS_FLAG_ERROR);
    ck_assert_str_eq(errbuf,
                     "invalid value \"99999999999\" for flag -mem-queue-size: value out of range");
    ck_assert_int_eq(run("--msg-timeout=5", NULL), NSQ_OPTIONS_FLAG_ERROR);
    ck_assert_str_eq(errbuf, "invalid value \"5\" for flag -msg-timeout: parse error");
    ck_assert_int_eq(run("--flag-b=yes", NULL), NSQ_OPTIONS_FLAG_ERROR);
    ck_assert_str_eq(errbuf, "invalid boolean value \"yes\" for -flag-b: parse error");
    ck_assert_int_eq(run("--msg-timeout", NULL), NSQ_OPTIONS_FLAG_ERROR);
    ck_assert_str_eq(errbuf, "flag needs an argument: -msg-timeout");
    ck_assert_int_eq(run("---x", NULL), NSQ_OPTIONS_FLAG_ERROR);
    ck_assert_str_eq(errbuf, "bad flag syntax: ---x");
    ck_assert_int_eq(run("-log-level=loud", NULL), NSQ_OPTIONS_FLAG_ERROR);
    ck_assert_str_eq(errbuf,
                     "invalid value \"loud\" for flag -log-level: invalid log-level 'loud'");
    ck_assert_int_eq(run("--config=/nonexistent/nsqd.cfg", NULL), NSQ_OPTIONS_CONFIG_ERROR);
    ck_assert_msg(strncmp(errbuf, "failed to load config file /nonexistent/nsqd.cfg - ", 51) == 0,
                  "%s", errbuf);
    /* msg-timeout "0" is valid */
    ck_assert_int_eq(run("--msg-timeout=0", NULL), 0);
    ck_assert_int_eq(O.timeout, 0);
}
END_TEST

START_TEST(test_config_precedence)
{
    write_cfg("# nsqd config\n"
              "mem_queue_size = 7\n"
              "msg_timeout = \"3s\"\n"
              "tcp_address = \"127.0.0.1:9\"\n"
              "nsqlookupd_tcp_addresses = [\"x:1\", \"y:2\"]\n"
              "e2e_processing_latency_percentiles = [0.5, 1.0, 0.99]\n"
              "log_level = \"warn\"\n"
              "deflate = false\n"
              "unknown_key = 1\n"
              "verbose = true\n");
    char arg[128];
    snprintf(arg, sizeof(arg), "--config=%s", cfgpath);
    ck_assert_int_eq(run(arg, "--mem-queue-size=9", "--lookupd-tcp-address=z:3", NULL), 0);
    ck_assert_int_eq(O.mem, 9);                /* flag beats file */
    ck_assert_int_eq(O.timeout, 3000000000LL); /* file beats default */
    ck_assert_str_eq(O.addr, "127.0.0.1:9");
    ck_assert_uint_eq(O.lookupd.len, 1);
    ck_assert_str_eq(O.lookupd.items[0], "z:3");
    ck_assert_uint_eq(O.pct.len, 3); /* file order kept */
    ck_assert_double_eq(O.pct.items[0], 0.5);
    ck_assert_double_eq(O.pct.items[2], 0.99);
    ck_assert_int_eq(O.level, 3);
    ck_assert(!O.deflate);
    ck_assert(!O.verbose); /* no cfg name: not settable from the file */
    ck_assert_int_eq(O.big, 104857600);
    const struct nsq_opt *o = nsq_options_find_cfg(table, NOPTS, "nsqlookupd_tcp_addresses");
    ck_assert_ptr_eq(o, &table[7]);
    ck_assert_ptr_null(nsq_options_find_cfg(table, NOPTS, "verbose"));
    ck_assert_ptr_eq(nsq_options_find_cfg(table, NOPTS, "msg_timeout"), &table[4]);
}
END_TEST

START_TEST(test_config_coercion)
{
    write_cfg("msg_timeout = 1500\n"      /* integer duration = milliseconds */
              "mem_queue_size = \"12\"\n" /* decimal string */
              "flag_b = \"t\"\n"
              "nsqlookupd_tcp_addresses = \"a:1,b:2\"\n"
              "e2e_processing_latency_percentiles = \"0.9,0.95\"\n");
    char arg[128];
    snprintf(arg, sizeof(arg), "-config=%s", cfgpath);
    ck_assert_int_eq(run(arg, NULL), 0);
    ck_assert_int_eq(O.timeout, 1500000000LL);
    ck_assert_int_eq(O.mem, 12);
    ck_assert(O.flag_b);
    ck_assert_uint_eq(O.lookupd.len, 2);
    ck_assert_str_eq(O.lookupd.items[1], "b:2");
    ck_assert_uint_eq(O.pct.len, 2);
    ck_assert_double_eq(O.pct.items[0], 0.9);
    teardown();

    write_cfg("log_level = \"loud\"\n");
    snprintf(arg, sizeof(arg), "--config=%s", cfgpath);
    ck_assert_int_eq(run(arg, NULL), NSQ_OPTIONS_CONFIG_ERROR);
    ck_assert_str_eq(errbuf, "failed parsing log_level loud");
    teardown();

    write_cfg("mem_queue_size = [1]\n");
    snprintf(arg, sizeof(arg), "--config=%s", cfgpath);
    ck_assert_int_eq(run(arg, NULL), NSQ_OPTIONS_CONFIG_ERROR);
    ck_assert_str_eq(errbuf, "failed parsing mem_queue_size [1]");
    teardown();

    write_cfg("mem_queue_size = = 1\n");
    snprintf(arg, sizeof(arg), "--config=%s", cfgpath);
    ck_assert_int_eq(run(arg, NULL), NSQ_OPTIONS_CONFIG_ERROR);
    ck_assert_msg(strstr(errbuf, "failed to load config file ") == errbuf, "%s", errbuf);
}
END_TEST

START_TEST(test_render)
{
    ck_assert_int_eq(run("--tcp-address=1.2.3.4:5", NULL), 0);
    struct evbuffer *b = evbuffer_new();
    for (size_t i = 0; i < NOPTS; i++) {
        nsq_options_render(&table[i], b);
        evbuffer_add(b, "|", 1);
    }
    evbuffer_add(b, "", 1);
    ck_assert_str_eq((char *)evbuffer_pullup(b, -1),
                     "false|true|10000|104857600|60000000000|1.2.3.4:5|[nsqd] |null|null|2|false|");
    evbuffer_free(b);
}
END_TEST

START_TEST(test_usage)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    nsq_options_usage(table, NOPTS, "nsqd", f);
    fclose(f);
    const char *expect = "Usage of nsqd:\n"
                         "  -config string\n"
                         "    \tpath to config file\n"
                         "  -deflate\n"
                         "    \tenable deflate (default true)\n"
                         "  -e2e-processing-latency-percentile value\n"
                         "    \tpercentiles\n"
                         "  -flag-b\n"
                         "    \ta boolean\n"
                         "  -log-level value\n"
                         "    \tset log verbosity (default INFO)\n"
                         "  -log-prefix prefix\n"
                         "    \tlog message prefix (default \"[nsqd] \")\n"
                         "  -lookupd-tcp-address value\n"
                         "    \tlookupd TCP address (may be given multiple times)\n"
                         "  -max-bytes int\n"
                         "    \tbytes per file (default 104857600)\n"
                         "  -mem-queue-size int\n"
                         "    \tnumber of messages (default 10000)\n"
                         "  -msg-timeout duration\n"
                         "    \tdefault timeout (default 1m0s)\n"
                         "  -tcp-address string\n"
                         "    \t<addr>:<port> to listen (default \"0.0.0.0:4150\")\n"
                         "  -verbose\n"
                         "    \t[deprecated] has no effect\n"
                         "  -version\n"
                         "    \tprint version string\n";
    ck_assert_str_eq(text, expect);
    free(text);
}
END_TEST

START_TEST(test_version_help)
{
    ck_assert_int_eq(run("--version", NULL), NSQ_OPTIONS_EXIT);
    ck_assert_int_eq(run("-version=false", NULL), 0);
}
END_TEST

static const struct {
    const char *in;
    int64_t ns;
    const char *out; /* Go's String() of the parsed value */
} durations[] = {
        {"0", 0, "0s"},
        {"0s", 0, "0s"},
        {"1ns", 1, "1ns"},
        {"1.1us", 1100, "1.1µs"},
        {"2.2µs", 2200, "2.2µs"},
        {"3.3μs", 3300, "3.3µs"},
        {"250ms", 250000000, "250ms"},
        {"1.5s", 1500000000, "1.5s"},
        {"60s", 60000000000LL, "1m0s"},
        {"1m30s", 90000000000LL, "1m30s"},
        {"1h", 3600000000000LL, "1h0m0s"},
        {"15m", 900000000000LL, "15m0s"},
        {"-1.5h", -5400000000000LL, "-1h30m0s"},
        {"+5s", 5000000000LL, "5s"},
        {".5s", 500000000, "500ms"},
        {"1.s", 1000000000, "1s"},
        {"1h2m3s4ms5us6ns", 3723004005006LL, "1h2m3.004005006s"},
        {"9223372036854775807ns", INT64_MAX, "2562047h47m16.854775807s"},
        {"-9223372036854775808ns", INT64_MIN, "-2562047h47m16.854775808s"},
        {"100.00000000000000000000001s", 100000000000LL, "1m40s"},
};

static const char *bad_durations[] = {
        "",    "5",   "-",   "s", ".s", "1x", "1.2.3s", "3000000h", "9223372036854775808ns",
        "1 s", "1s ", "--1s"};

START_TEST(test_durations)
{
    for (size_t i = 0; i < sizeof(durations) / sizeof(durations[0]); i++) {
        int64_t v = 42;
        ck_assert_msg(nsq_parse_duration(durations[i].in, &v) == 0, "parse %s", durations[i].in);
        ck_assert_msg(v == durations[i].ns, "%s: %lld", durations[i].in, (long long)v);
        char buf[NSQ_DURATION_STRLEN];
        nsq_format_duration(v, buf, sizeof(buf));
        ck_assert_str_eq(buf, durations[i].out);
        int64_t back;
        ck_assert_int_eq(nsq_parse_duration(buf, &back), 0);
        ck_assert_msg(back == v, "round trip %s", buf);
    }
    for (size_t i = 0; i < sizeof(bad_durations) / sizeof(bad_durations[0]); i++) {
        int64_t v;
        ck_assert_msg(nsq_parse_duration(bad_durations[i], &v) < 0, "accepted '%s'",
                      bad_durations[i]);
    }
    char buf[NSQ_DURATION_STRLEN];
    nsq_format_duration(1000, buf, sizeof(buf));
    ck_assert_str_eq(buf, "1µs");
    nsq_format_duration(1500000, buf, sizeof(buf));
    ck_assert_str_eq(buf, "1.5ms");
    nsq_format_duration(999, buf, sizeof(buf));
    ck_assert_str_eq(buf, "999ns");
}
END_TEST

START_TEST(test_bool_and_float)
{
    bool b;
    ck_assert_int_eq(nsq_parse_bool("True", &b), 0);
    ck_assert(b);
    ck_assert_int_eq(nsq_parse_bool("F", &b), 0);
    ck_assert(!b);
    ck_assert_int_eq(nsq_parse_bool("yes", &b), -EINVAL);
    char buf[64];
    const struct {
        double v;
        const char *s;
    } f[] = {{0.99, "0.99"},
             {1, "1"},
             {1234567, "1234567"},
             {0.1 + 0.2, "0.30000000000000004"},
             {1e20, "100000000000000000000"},
             {1e21, "1e+21"},
             {1e-7, "1e-7"},
             {1e-6, "0.000001"},
             {1.23e-6, "0.00000123"},
             {1.5e300, "1.5e+300"},
             {5e-324, "5e-324"},
             {1.25e-10, "1.25e-10"},
             {123456789.125, "123456789.125"},
             {0, "0"},
             {-2.5, "-2.5"}};
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
        nsq_options_format_float(f[i].v, buf, sizeof(buf));
        ck_assert_str_eq(buf, f[i].s);
    }
}
END_TEST

START_TEST(test_log_level_entry)
{
    enum nsq_log_level lvl = 0;
    const struct nsq_opt t[] = {NSQ_OPT_LOG_LEVEL_ENTRY(&lvl)};
    char *argv[] = {"nsqlookupd", "--log-level=WARN", NULL};
    ck_assert_int_eq(nsq_options_parse(t, 1, "nsqlookupd", 2, argv, errbuf, sizeof(errbuf)), 0);
    ck_assert_int_eq(lvl, NSQ_LOG_WARN);
    struct evbuffer *b = evbuffer_new();
    ck_assert_int_eq(nsq_options_render(&t[0], b), 0);
    evbuffer_add(b, "", 1);
    ck_assert_str_eq((char *)evbuffer_pullup(b, -1), "3");
    evbuffer_free(b);
    ck_assert_int_eq(nsq_options_parse(t, 1, "nsqlookupd", 1, argv, errbuf, sizeof(errbuf)), 0);
    ck_assert_int_eq(lvl, NSQ_LOG_INFO);
    char *bad[] = {"nsqlookupd", "-log-level", "x", NULL};
    ck_assert_int_eq(nsq_options_parse(t, 1, "nsqlookupd", 3, bad, errbuf, sizeof(errbuf)),
                     NSQ_OPTIONS_FLAG_ERROR);
    ck_assert_str_eq(errbuf, "invalid value \"x\" for flag -log-level: invalid log-level 'x'");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("nsq_options");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_flag_syntax);
    tcase_add_test(tc, test_bool_stops);
    tcase_add_test(tc, test_repeatable);
    tcase_add_test(tc, test_errors);
    tcase_add_test(tc, test_config_precedence);
    tcase_add_test(tc, test_config_coercion);
    tcase_add_test(tc, test_render);
    tcase_add_test(tc, test_usage);
    tcase_add_test(tc, test_version_help);
    tcase_add_test(tc, test_durations);
    tcase_add_test(tc, test_bool_and_float);
    tcase_add_test(tc, test_log_level_entry);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
