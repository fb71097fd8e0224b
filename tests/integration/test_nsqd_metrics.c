/*
 * test_nsqd_metrics: GET /metrics (Prometheus text exposition) after publishing and consuming:
 * the figures match /stats and every line is valid exposition syntax (comment lines, or
 * name{label="value",...} number, with each family's HELP/TYPE before its samples).
 */
#include <check.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "nsqd_itest.h"

#define LINE_MAX_LEN 4096

/* Value of the sample whose text before the value is exactly `series`, or -1 when absent. */
static double sample(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    }
    return -1;
}

static bool valid_name(const char *s, size_t len)
{
    if (len == 0 || (!isalpha((unsigned char)s[0]) && s[0] != '_' && s[0] != ':'))
        return false;
    for (size_t i = 1; i < len; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != ':')
            return false;
    return true;
}

/* Checks one sample line; returns NULL or what is wrong. `family` gets the metric name. */
static const char *check_sample(const char *line, char *family, size_t flen)
{
    const char *p = line;
    while (*p && *p != '{' && *p != ' ')
        p++;
    if (!valid_name(line, (size_t)(p - line)))
        return "bad metric name";
    snprintf(family, flen, "%.*s", (int)(p - line), line);
    if (*p == '{') {
        p++;
        while (*p != '}') {
            const char *k = p;
            while (*p && *p != '=')
                p++;
            if (!valid_name(k, (size_t)(p - k)) || p[0] != '=' || p[1] != '"')
                return "bad label";
            p += 2;
            while (*p && *p != '"') {
                if (*p == '\\') {
                    if (p[1] != '\\' && p[1] != '"' && p[1] != 'n')
                        return "bad escape";
                    p++;
                }
                p++;
            }
            if (*p != '"')
                return "unterminated label value";
            p++;
            if (*p == ',')
                p++;
            else if (*p != '}')
                return "bad label separator";
        }
        p++;
    }
    if (*p != ' ')
        return "no space before the value";
    p++;
    if (strcmp(p, "NaN") == 0 || strcmp(p, "+Inf") == 0 || strcmp(p, "-Inf") == 0)
        return NULL;
    char *end;
    strtod(p, &end);
    if (end == p || *end != '\0')
        return "bad value";
    return NULL;
}

/* Validates the whole exposition: syntax, and a TYPE line before each family's samples. */
static void check_exposition(const char *text)
{
    char typed[256][128];
    size_t ntyped = 0;
    ck_assert_msg(text[0] != '\0' && text[strlen(text) - 1] == '\n', "must end with a newline");
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        char line[LINE_MAX_LEN];
        snprintf(line, sizeof(line), "%.*s", (int)(nl - p), p);
        p = nl + 1;
        if (strncmp(line, "# TYPE ", 7) == 0) {
            char name[128], type[32];
            ck_assert_int_eq(sscanf(line + 7, "%127s %31s", name, type), 2);
            ck_assert_msg(strcmp(type, "gauge") == 0 || strcmp(type, "counter") == 0 ||
                                  strcmp(type, "summary") == 0,
                          "type %s", type);
            ck_assert_uint_lt(ntyped, 256);
            snprintf(typed[ntyped++], sizeof(typed[0]), "%s", name);
            continue;
        }
        if (strncmp(line, "# HELP ", 7) == 0)
            continue;
        ck_assert_msg(line[0] != '#' && line[0] != '\0', "unexpected line \"%s\"", line);
        char family[LINE_MAX_LEN];
        const char *why = check_sample(line, family, sizeof(family));
        ck_assert_msg(why == NULL, "%s: \"%s\"", why, line);
        /* A summary's _count sample belongs to its family. */
        size_t fl = strlen(family);
        if (fl > 6 && strcmp(family + fl - 6, "_count") == 0)
            family[fl - 6] = '\0';
        bool found = false;
        for (size_t i = 0; i < ntyped && !found; i++)
            found = strcmp(typed[i], family) == 0;
        ck_assert_msg(found, "sample of %s before its TYPE line", family);
    }
}

static char *get_metrics(int port)
{
    struct harness_response r;
    memset(&r, 0, sizeof(r));
    ck_assert_int_eq(harness_http("GET", port, "/metrics", NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 200);
    char *ct = harness_response_header(&r, "Content-Type");
    ck_assert_ptr_nonnull(ct);
    ck_assert_msg(strncmp(ct, "text/plain; version=0.0.4", 25) == 0, "Content-Type %s", ct);
    free(ct);
    char *body = r.body;
    r.body = NULL;
    harness_response_free(&r);
    return body;
}

START_TEST(metrics_figures)
{
    char *dir = harness_tmpdir();
    const char *extra[] = {"--e2e-processing-latency-percentile=0.99,0.5", NULL};
    struct harness_proc *p = itest_nsqd_start(dir, extra);
    ck_assert_ptr_nonnull(p);
    int http = harness_port(p, "HTTP"), tcp = harness_port(p, "TCP");

    /* Empty daemon: still valid, with the process figures. */
    char *text = get_metrics(http);
    check_exposition(text);
    ck_assert(sample(text, "nsqd_health") == 1);
    ck_assert(sample(text, "process_start_time_seconds") > 1e9);
    ck_assert(sample(text, "nsqd_info{version=\"1.3.0\"}") == 1);
    free(text);

    /* 5 messages, a consumer that takes 2 and finishes 1. */
    int fd = itest_v2_connect(tcp);
    ck_assert_int_eq(itest_identify(fd, "{}"), 0);
    ck_assert_int_eq(itest_sub(fd, "mtopic", "mchan"), 0);
    int pub = itest_v2_connect(tcp);
    ck_assert_int_eq(itest_identify(pub, "{}"), 0);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(itest_pub(pub, "mtopic", "hello", 5), 0);
    ck_assert_int_eq(itest_rdy(fd, 2), 0);
    struct itest_msg m1, m2;
    ck_assert_int_eq(itest_read_msg(fd, &m1, ITEST_IO_MS), 0);
    ck_assert_int_eq(itest_read_msg(fd, &m2, ITEST_IO_MS), 0);
    ck_assert_int_eq(itest_rdy(fd, 0), 0);
    ck_assert_int_eq(itest_fin(fd, m1.id), 0);
    free(m1.body);
    free(m2.body);
    /* Await the FIN through /stats, then compare. */
    int64_t deadline = harness_now_ms() + ITEST_IO_MS;
    while (itest_stats_int(http, "mtopic", "mchan", "in_flight_count") != 1 &&
           harness_now_ms() < deadline)
        usleep(10000);

    text = get_metrics(http);
    check_exposition(text);
    ck_assert_msg(sample(text, "nsqd_topic_messages_total{topic=\"mtopic\"}") == 5, "%s", text);
    ck_assert(sample(text, "nsqd_topic_message_bytes_total{topic=\"mtopic\"}") == 25);
    ck_assert(sample(text, "nsqd_topic_depth{topic=\"mtopic\"}") == 0);
    ck_assert(sample(text, "nsqd_topic_channels{topic=\"mtopic\"}") == 1);
    ck_assert(sample(text, "nsqd_channel_messages_total{topic=\"mtopic\",channel=\"mchan\"}") == 5);
    ck_assert(sample(text, "nsqd_channel_depth{topic=\"mtopic\",channel=\"mchan\"}") == 3);
    ck_assert(sample(text, "nsqd_channel_in_flight{topic=\"mtopic\",channel=\"mchan\"}") == 1);
    ck_assert(sample(text, "nsqd_channel_deferred{topic=\"mtopic\",channel=\"mchan\"}") == 0);
    ck_assert(sample(text, "nsqd_channel_requeued_total{topic=\"mtopic\",channel=\"mchan\"}") == 0);
    ck_assert(sample(text, "nsqd_channel_timed_out_total{topic=\"mtopic\",channel=\"mchan\"}") ==
              0);
    ck_assert(sample(text, "nsqd_channel_clients{topic=\"mtopic\",channel=\"mchan\"}") == 1);
    ck_assert(sample(text, "nsqd_client_connections{role=\"consumer\"}") == 1);
    ck_assert(sample(text, "nsqd_client_connections{role=\"producer\"}") == 1);
    ck_assert(sample(text, "nsqd_client_in_flight") == 1);
    /* The finished message is in the e2e stream: count 1 and both quantiles present. */
    ck_assert(sample(text, "nsqd_channel_e2e_processing_latency_seconds_count{topic=\"mtopic\","
                           "channel=\"mchan\"}") == 1);
    ck_assert(sample(text, "nsqd_channel_e2e_processing_latency_seconds{topic=\"mtopic\","
                           "channel=\"mchan\",quantile=\"0.99\"}") >= 0);
    ck_assert(sample(text, "nsqd_channel_e2e_processing_latency_seconds{topic=\"mtopic\","
                           "channel=\"mchan\",quantile=\"0.5\"}") >= 0);
    free(text);

    /* Requeue the other one and delete nothing: the counter moves. */
    char line[64];
    snprintf(line, sizeof(line), "REQ %.16s 0\n", m2.id);
    ck_assert_int_eq(harness_tcp_send_str(fd, line), 0);
    deadline = harness_now_ms() + ITEST_IO_MS;
    while (itest_stats_int(http, "mtopic", "mchan", "requeue_count") != 1 &&
           harness_now_ms() < deadline)
        usleep(10000);
    text = get_metrics(http);
    ck_assert(sample(text, "nsqd_channel_requeued_total{topic=\"mtopic\",channel=\"mchan\"}") == 1);
    free(text);

    close(fd);
    close(pub);
    ck_assert_int_eq(harness_stop(p, 0), 0);
    harness_rmdir(dir);
    free(dir);
}
END_TEST

START_TEST(metrics_method)
{
    char *dir = harness_tmpdir();
    struct harness_proc *p = itest_nsqd_start(dir, NULL);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(itest_http("POST", harness_port(p, "HTTP"), "/metrics", "", NULL), 405);
    ck_assert_int_eq(harness_stop(p, 0), 0);
    harness_rmdir(dir);
    free(dir);
}
END_TEST

static Suite *metrics_suite(void)
{
    Suite *s = suite_create("nsqd_metrics");
    TCase *tc = tcase_create("metrics");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, metrics_figures);
    tcase_add_test(tc, metrics_method);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(metrics_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
