/*
 * test_nsqd_metrics_render: the Prometheus exposition of a hand-made /stats snapshot (nsqd/metrics.c):
 * exact lines for a topic with one channel and client, label escaping, NaN quantiles for an empty
 * latency window, and the memory section only when collected.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "metrics.h"
#include "stats.h"

/* Renders s and returns the text (caller frees). */
static char *render(const struct nsqd_stats *s)
{
    struct evbuffer *b = evbuffer_new();
    ck_assert_int_eq(nsqd_metrics_render(s, b), 0);
    size_t n = evbuffer_get_length(b);
    char *text = malloc(n + 1);
    evbuffer_remove(b, text, n);
    text[n] = '\0';
    evbuffer_free(b);
    return text;
}

static bool has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = strstr(text, line); p; p = strstr(p + 1, line))
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return true;
    return false;
}

#define ASSERT_LINE(text, line) ck_assert_msg(has_line(text, line), "missing: %s\n%s", line, text)

START_TEST(figures)
{
    struct nsqd_client_stats client = {.in_flight_count = 2, .ready_count = 10};
    struct nsqd_channel_stats ch = {
            .channel_name = "ch",
            .depth = 7,
            .backend_depth = 3,
            .in_flight_count = 2,
            .deferred_count = 1,
            .message_count = 42,
            .requeue_count = 5,
            .timeout_count = 4,
            .client_count = 1,
            .clients = &client,
            .n_clients = 1,
            .e2e = {.count = 9, .n = 2, .quantile = {0.99, 0.5}, .value = {2e9, 5e8}},
    };
    struct nsqd_topic_stats topic = {
            .topic_name = "orders",
            .channels = &ch,
            .n_channels = 1,
            .depth = 11,
            .backend_depth = 6,
            .message_count = 100,
            .message_bytes = 2048,
            .paused = true,
            .e2e = {.count = 0, .n = 1, .quantile = {0.99}, .value = {0}},
    };
    struct nsqd_client_stats producer = {0};
    struct nsqd_stats s = {
            .version = "1.3.0",
            .health = "OK",
            .start_time = 1700000000,
            .topics = &topic,
            .n_topics = 1,
            .producers = &producer,
            .n_producers = 1,
    };
    char *text = render(&s);
    ASSERT_LINE(text, "# TYPE nsqd_topic_depth gauge");
    ASSERT_LINE(text, "# TYPE nsqd_topic_messages_total counter");
    ASSERT_LINE(text, "# TYPE nsqd_channel_e2e_processing_latency_seconds summary");
    ASSERT_LINE(text, "nsqd_info{version=\"1.3.0\"} 1");
    ASSERT_LINE(text, "nsqd_health 1");
    ASSERT_LINE(text, "process_start_time_seconds 1700000000");
    ASSERT_LINE(text, "nsqd_topic_depth{topic=\"orders\"} 11");
    ASSERT_LINE(text, "nsqd_topic_backend_depth{topic=\"orders\"} 6");
    ASSERT_LINE(text, "nsqd_topic_messages_total{topic=\"orders\"} 100");
    ASSERT_LINE(text, "nsqd_topic_message_bytes_total{topic=\"orders\"} 2048");
    ASSERT_LINE(text, "nsqd_topic_paused{topic=\"orders\"} 1");
    ASSERT_LINE(text, "nsqd_topic_channels{topic=\"orders\"} 1");
    ASSERT_LINE(text,
                "nsqd_topic_e2e_processing_latency_seconds{topic=\"orders\",quantile=\"0.99\"} "
                "NaN");
    ASSERT_LINE(text, "nsqd_topic_e2e_processing_latency_seconds_count{topic=\"orders\"} 0");
    ASSERT_LINE(text, "nsqd_channel_depth{topic=\"orders\",channel=\"ch\"} 7");
    ASSERT_LINE(text, "nsqd_channel_backend_depth{topic=\"orders\",channel=\"ch\"} 3");
    ASSERT_LINE(text, "nsqd_channel_in_flight{topic=\"orders\",channel=\"ch\"} 2");
    ASSERT_LINE(text, "nsqd_channel_deferred{topic=\"orders\",channel=\"ch\"} 1");
    ASSERT_LINE(text, "nsqd_channel_messages_total{topic=\"orders\",channel=\"ch\"} 42");
    ASSERT_LINE(text, "nsqd_channel_requeued_total{topic=\"orders\",channel=\"ch\"} 5");
    ASSERT_LINE(text, "nsqd_channel_timed_out_total{topic=\"orders\",channel=\"ch\"} 4");
    ASSERT_LINE(text, "nsqd_channel_clients{topic=\"orders\",channel=\"ch\"} 1");
    ASSERT_LINE(text, "nsqd_channel_paused{topic=\"orders\",channel=\"ch\"} 0");
    ASSERT_LINE(text, "nsqd_channel_e2e_processing_latency_seconds{topic=\"orders\",channel=\"ch\","
                      "quantile=\"0.99\"} 2");
    ASSERT_LINE(text, "nsqd_channel_e2e_processing_latency_seconds{topic=\"orders\",channel=\"ch\","
                      "quantile=\"0.5\"} 0.5");
    ASSERT_LINE(text, "nsqd_channel_e2e_processing_latency_seconds_count{topic=\"orders\","
                      "channel=\"ch\"} 9");
    ASSERT_LINE(text, "nsqd_client_connections{role=\"consumer\"} 1");
    ASSERT_LINE(text, "nsqd_client_connections{role=\"producer\"} 1");
    ASSERT_LINE(text, "nsqd_client_in_flight 2");
    ASSERT_LINE(text, "nsqd_client_ready 10");
    ck_assert_ptr_null(strstr(text, "nsqd_memory_"));
    ck_assert(text[strlen(text) - 1] == '\n');
    free(text);

    s.health = "NOK - disk full";
    s.has_memory = true;
    s.memory.heap_in_use_bytes = 4096;
    text = render(&s);
    ASSERT_LINE(text, "nsqd_health 0");
    ASSERT_LINE(text, "nsqd_memory_heap_in_use_bytes 4096");
    free(text);
}
END_TEST

START_TEST(empty)
{
    struct nsqd_stats s = {.version = "1.3.0", .health = "OK", .start_time = 1};
    char *text = render(&s);
    ASSERT_LINE(text, "# TYPE nsqd_topic_depth gauge");
    ck_assert_ptr_null(strstr(text, "{topic="));
    free(text);
}
END_TEST

START_TEST(escaping)
{
    struct evbuffer *b = evbuffer_new();
    ck_assert_int_eq(nsqd_metrics_escape(b, "a\\b\"c\nd#e"), 0);
    size_t n = evbuffer_get_length(b);
    char out[64];
    ck_assert_uint_lt(n, sizeof(out));
    evbuffer_remove(b, out, n);
    out[n] = '\0';
    ck_assert_str_eq(out, "a\\\\b\\\"c\\nd#e");
    evbuffer_free(b);
}
END_TEST

static Suite *metrics_suite(void)
{
    Suite *s = suite_create("nsqd_metrics");
    TCase *tc = tcase_create("render");
    tcase_add_test(tc, figures);
    tcase_add_test(tc, empty);
    tcase_add_test(tc, escaping);
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
