/*
 * test_clients_wire: the client library's encoders and parsers without a server — command bytes
 * exactly as nsqd expects them (tcp-protocol.md §3-§4), nsqlookupd /lookup replies in both shapes,
 * and the configuration table.
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "command.h"
#include "hostpool.h"
#include "lookupd.h"
#include "nsq.h"

static char *drain(struct evbuffer *b, size_t *len)
{
    *len = evbuffer_get_length(b);
    char *s = malloc(*len + 1);
    evbuffer_remove(b, s, *len);
    s[*len] = '\0';
    return s;
}

static void expect(struct evbuffer *b, const void *want, size_t want_len)
{
    size_t len;
    char *got = drain(b, &len);
    ck_assert_uint_eq(len, want_len);
    ck_assert_mem_eq(got, want, want_len);
    free(got);
}

static const char ID[16] = "0123456789abcdef";

START_TEST(test_line_commands)
{
    struct evbuffer *b = evbuffer_new();
    ck_assert_int_eq(nsq_cmd_sub(b, "t", "c#ephemeral"), 0);
    expect(b, "SUB t c#ephemeral\n", 18);
    ck_assert_int_eq(nsq_cmd_rdy(b, 2500), 0);
    expect(b, "RDY 2500\n", 9);
    ck_assert_int_eq(nsq_cmd_fin(b, ID), 0);
    expect(b, "FIN 0123456789abcdef\n", 21);
    ck_assert_int_eq(nsq_cmd_req(b, ID, 90000), 0);
    expect(b, "REQ 0123456789abcdef 90000\n", 27);
    ck_assert_int_eq(nsq_cmd_req(b, ID, -5), 0);
    expect(b, "REQ 0123456789abcdef 0\n", 23);
    ck_assert_int_eq(nsq_cmd_touch(b, ID), 0);
    expect(b, "TOUCH 0123456789abcdef\n", 23);
    ck_assert_int_eq(nsq_cmd_nop(b), 0);
    expect(b, "NOP\n", 4);
    ck_assert_int_eq(nsq_cmd_cls(b), 0);
    expect(b, "CLS\n", 4);
    evbuffer_free(b);
}
END_TEST

START_TEST(test_body_commands)
{
    struct evbuffer *b = evbuffer_new();
    ck_assert_int_eq(nsq_cmd_pub(b, "t", 0, "hello", 5), 0);
    expect(b, "PUB t\n\0\0\0\5hello", 15);
    ck_assert_int_eq(nsq_cmd_dpub(b, "t", 1500, 0, "x", 1), 0);
    expect(b, "DPUB t 1500\n\0\0\0\1x", 17);
    const void *bodies[] = {"ab", "c"};
    size_t lens[] = {2, 1};
    ck_assert_int_eq(nsq_cmd_mpub(b, "t", 0, bodies, lens, 2), 0);
    /* body size = 4 (count) + 4+2 + 4+1 = 15 */
    expect(b, "MPUB t\n\0\0\0\x0f\0\0\0\2\0\0\0\2ab\0\0\0\1c", 7 + 4 + 4 + 6 + 5);
    ck_assert_int_eq(nsq_cmd_mpub(b, "t", 0, bodies, lens, 0), -EINVAL);
    /* a time-to-live is nsqd's optional trailing parameter, in ms */
    ck_assert_int_eq(nsq_cmd_pub(b, "t", 250, "hello", 5), 0);
    expect(b, "PUB t 250\n\0\0\0\5hello", 19);
    ck_assert_int_eq(nsq_cmd_dpub(b, "t", 1500, 4294967295u, "x", 1), 0);
    expect(b, "DPUB t 1500 4294967295\n\0\0\0\1x", 28);
    ck_assert_int_eq(nsq_cmd_mpub(b, "t", 7, bodies, lens, 2), 0);
    expect(b, "MPUB t 7\n\0\0\0\x0f\0\0\0\2\0\0\0\2ab\0\0\0\1c", 9 + 4 + 4 + 6 + 5);
    ck_assert_uint_eq(evbuffer_get_length(b), 0);
    ck_assert_int_eq(nsq_cmd_identify(b, "{}", 2), 0);
    expect(b, "IDENTIFY\n\0\0\0\2{}", 15);
    ck_assert_int_eq(nsq_cmd_auth(b, "s3", 2), 0);
    expect(b, "AUTH\n\0\0\0\2s3", 11);
    evbuffer_free(b);
}
END_TEST

START_TEST(test_lookup_replies)
{
    char **addrs;
    size_t n;
    const char *plain = "{\"channels\":[\"c\"],\"producers\":[{\"remote_address\":\"127.0.0.1:5\","
                        "\"hostname\":\"h\",\"broadcast_address\":\"10.0.0.1\",\"tcp_port\":4150,"
                        "\"http_port\":4151,\"version\":\"1.3.0\"},{\"broadcast_address\":\"::1\","
                        "\"tcp_port\":4152}]}";
    ck_assert_int_eq(nsq_lookupd_parse_producers(plain, strlen(plain), &addrs, &n), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(addrs[0], "10.0.0.1:4150");
    ck_assert_str_eq(addrs[1], "[::1]:4152");
    for (size_t i = 0; i < n; i++)
        free(addrs[i]);
    free(addrs);

    const char *legacy = "{\"status_code\":200,\"status_txt\":\"OK\",\"data\":{\"channels\":[],"
                         "\"producers\":[{\"broadcast_address\":\"h\",\"tcp_port\":1}]}}";
    ck_assert_int_eq(nsq_lookupd_parse_producers(legacy, strlen(legacy), &addrs, &n), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(addrs[0], "h:1");
    free(addrs[0]);
    free(addrs);

    ck_assert_int_eq(nsq_lookupd_parse_producers("{", 1, &addrs, &n), -EBADMSG);

    char host[64];
    int port;
    ck_assert_int_eq(nsq_lookupd_parse_addr("http://127.0.0.1:4161/", host, sizeof(host), &port),
                     0);
    ck_assert_str_eq(host, "127.0.0.1");
    ck_assert_int_eq(port, 4161);
    ck_assert_int_eq(nsq_lookupd_parse_addr("localhost:4161", host, sizeof(host), &port), 0);
    ck_assert_int_eq(nsq_lookupd_parse_addr("https://x:1", host, sizeof(host), &port), -EINVAL);
    ck_assert_int_eq(nsq_lookupd_parse_addr("nohost", host, sizeof(host), &port), -EINVAL);
}
END_TEST

START_TEST(test_config_table)
{
    struct nsq_config *cfg = nsq_config_new();
    const char *ok[][2] = {
            {"dial_timeout", "2s"},
            {"read_timeout", "30s"},
            {"lookupd_poll_jitter", "0.5"},
            {"max_attempts", "0"},
            {"heartbeat_interval", "-1ms"},
            {"tls_v1", "false"},
            {"tls_min_version", "tls1.2"},
            {"output_buffer_size", "-1"},
            {"msg_timeout", "1m"},
            {"auth_secret", "s"},
            {"client_id", "c"},
            {"sample_rate", "99"},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        ck_assert_msg(nsq_config_set(cfg, ok[i][0], ok[i][1]) == 0, "%s", ok[i][0]);
    ck_assert_int_eq(nsq_config_set(cfg, "sample_rate", "100"), -EINVAL);
    ck_assert_int_eq(nsq_config_set(cfg, "lookupd_poll_jitter", "2"), -EINVAL);
    ck_assert_int_eq(nsq_config_set(cfg, "tls_min_version", "ssl3.0"), -EINVAL);
    ck_assert_int_eq(nsq_config_set(cfg, "backoff_strategy", "linear"), -EINVAL);
    ck_assert_int_eq(nsq_config_set_opt(cfg, "unknown,1"), -ENOENT);
    ck_assert_str_eq(nsq_strerror(-NSQ_ESERVER), "nsqd returned an error");
    nsq_config_free(cfg);
    nsq_config_free(NULL);
    nsq_producer_free(NULL);
    nsq_consumer_free(NULL);
}
END_TEST

#define SEC 1000000000LL
#define MS  1000000LL

START_TEST(test_hostpool_modes)
{
    enum hostpool_mode m;
    ck_assert_int_eq(hostpool_parse_mode("round-robin", &m), 0);
    ck_assert_int_eq(m, HOSTPOOL_ROUND_ROBIN);
    ck_assert_int_eq(hostpool_parse_mode("hostpool", &m), 0);
    ck_assert_int_eq(m, HOSTPOOL_STANDARD);
    ck_assert_int_eq(hostpool_parse_mode("epsilon-greedy", &m), 0);
    ck_assert_int_eq(m, HOSTPOOL_EPSILON_GREEDY);
    ck_assert_int_eq(hostpool_parse_mode("all", &m), -EINVAL);
    ck_assert_ptr_null(hostpool_new(HOSTPOOL_STANDARD, 0, 1));

    /* round-robin ignores failures */
    struct hostpool *p = hostpool_new(HOSTPOOL_ROUND_ROBIN, 3, 1);
    hostpool_mark(p, 1, false, 0, SEC);
    for (size_t i = 0; i < 6; i++)
        ck_assert_uint_eq(hostpool_pick(p, SEC), i % 3);
    hostpool_free(p);
}
END_TEST

START_TEST(test_hostpool_dead_hosts)
{
    struct hostpool *p = hostpool_new(HOSTPOOL_STANDARD, 3, 1);
    int64_t t = SEC;
    ck_assert_uint_eq(hostpool_pick(p, t), 0);
    ck_assert_uint_eq(hostpool_pick(p, t), 1);
    hostpool_mark(p, 1, false, 0, t);
    ck_assert(hostpool_dead(p, 1));
    /* host 1 is skipped until its retry time */
    for (int i = 0; i < 10; i++)
        ck_assert_uint_ne(hostpool_pick(p, t + i * MS), 1);
    /* after HOSTPOOL_RETRY_INITIAL it gets one request... */
    t += HOSTPOOL_RETRY_INITIAL;
    bool offered = false;
    for (int i = 0; i < 3; i++)
        offered = offered || hostpool_pick(p, t) == 1;
    ck_assert(offered);
    /* ...and not another one before twice the delay */
    for (int i = 0; i < 10; i++)
        ck_assert_uint_ne(hostpool_pick(p, t + HOSTPOOL_RETRY_INITIAL), 1);
    /* a success revives it */
    hostpool_mark(p, 1, true, MS, t);
    ck_assert(!hostpool_dead(p, 1));
    offered = false;
    for (int i = 0; i < 3; i++)
        offered = offered || hostpool_pick(p, t) == 1;
    ck_assert(offered);
    /* all dead and none due: everyone is revived */
    for (size_t i = 0; i < 3; i++)
        hostpool_mark(p, i, false, 0, t);
    hostpool_pick(p, t + MS);
    for (size_t i = 0; i < 3; i++)
        ck_assert(!hostpool_dead(p, i));
    hostpool_free(p);
}
END_TEST

START_TEST(test_hostpool_epsilon_greedy)
{
    struct hostpool *p = hostpool_new(HOSTPOOL_EPSILON_GREEDY, 3, 12345);
    int64_t t = SEC;
    int counts[3] = {0};
    ck_assert(hostpool_epsilon(p) > 0.29 && hostpool_epsilon(p) < 0.31);
    /* host 2 answers in 1 ms, the others in 50 ms */
    for (int i = 0; i < 2000; i++) {
        size_t h = hostpool_pick(p, t);
        counts[h]++;
        hostpool_mark(p, h, true, h == 2 ? MS : 50 * MS, t);
        t += 10 * MS;
    }
    ck_assert_int_gt(counts[2], 1800);
    ck_assert_int_gt(counts[0] + counts[1], 0); /* still explored */
    /* epsilon decayed, but not below its floor */
    ck_assert(hostpool_epsilon(p) < 0.1);
    ck_assert(hostpool_epsilon(p) >= HOSTPOOL_EPSILON_MIN);
    /* host 2 fails: it is dead and avoided, then host 0 becomes fast */
    hostpool_mark(p, 2, false, 0, t);
    memset(counts, 0, sizeof(counts));
    for (int i = 0; i < 1000; i++) {
        size_t h = hostpool_pick(p, t);
        counts[h]++;
        if (h != 2)
            hostpool_mark(p, h, true, h == 0 ? MS : 50 * MS, t);
        t += 10 * MS;
    }
    ck_assert_int_eq(counts[2], 0);
    ck_assert_int_gt(counts[0], 700);
    /* old measurements fade: after the decay window only new ones count */
    t += HOSTPOOL_DECAY_WINDOW + SEC;
    memset(counts, 0, sizeof(counts));
    for (int i = 0; i < 1000; i++) {
        size_t h = hostpool_pick(p, t);
        counts[h]++;
        hostpool_mark(p, h, true, h == 1 ? MS : 50 * MS, t);
        t += 10 * MS;
    }
    ck_assert_int_gt(counts[1], 700);
    hostpool_free(p);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("clients_wire");
    TCase *tc = tcase_create("wire");
    tcase_add_test(tc, test_line_commands);
    tcase_add_test(tc, test_body_commands);
    tcase_add_test(tc, test_lookup_replies);
    tcase_add_test(tc, test_config_table);
    tcase_add_test(tc, test_hostpool_modes);
    tcase_add_test(tc, test_hostpool_dead_hosts);
    tcase_add_test(tc, test_hostpool_epsilon_greedy);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
