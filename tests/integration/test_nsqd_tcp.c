/*
 * test_nsqd_tcp: the V2 TCP protocol of a real nsqd (tcp-protocol.md, behaviour.md), spoken over
 * raw sockets: magic, IDENTIFY negotiation and validation, SUB/RDY/FIN/REQ/TOUCH/CLS/NOP and their
 * errors (fatal ones close the connection, FIN/REQ/TOUCH failures do not), PUB/MPUB/DPUB, fan-out,
 * memory-to-disk overflow, timeouts, deferral, heartbeats, ephemeral channels, pause, empty and a
 * restart with messages in flight and deferred.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <check.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <poll.h>

#include <event2/buffer.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "harness.h"
#include "nsq_deflate_stream.h"
#include "nsq_snappy_stream.h"

#define IO_MS       5000
#define FRAME_RESP  0
#define FRAME_ERROR 1
#define FRAME_MSG   2
#define MSG_HDR     26
#define ID_LEN      16
#define MAX_ARGS    24

struct nsqd {
    struct harness_proc *p;
    char *dir;
    int tcp, http;
};

static struct nsqd start_in(const char *dir, const char *const *extra)
{
    const char *args[MAX_ARGS];
    char dp[4200];
    int n = 0;
    snprintf(dp, sizeof(dp), "--data-path=%s", dir);
    args[n++] = "--tcp-address=127.0.0.1:0";
    args[n++] = "--http-address=127.0.0.1:0";
    args[n++] = dp;
    for (int i = 0; extra && extra[i] && n < MAX_ARGS - 1; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    struct nsqd d = {.dir = NULL};
    d.p = harness_start(NSQD_BIN, args, 2);
    ck_assert_msg(d.p != NULL, "nsqd did not start");
    d.tcp = harness_port(d.p, "TCP");
    d.http = harness_port(d.p, "HTTP");
    return d;
}

static struct nsqd start(const char *const *extra)
{
    char *dir = harness_tmpdir();
    struct nsqd d = start_in(dir, extra);
    d.dir = dir;
    return d;
}

static void stop(struct nsqd *d)
{
    ck_assert_int_eq(harness_stop(d->p, SIGTERM), 0);
    if (d->dir) {
        harness_rmdir(d->dir);
        free(d->dir);
    }
}

/* ---- raw protocol helpers ---- */

static int conn(int port)
{
    int fd = harness_connect(port);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(harness_tcp_send(fd, "  V2", 4), 0);
    return fd;
}

__attribute__((format(printf, 2, 3))) static void sendf(int fd, const char *fmt, ...)
{
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    ck_assert_int_eq(harness_tcp_send(fd, buf, (size_t)n), 0);
}

/* "<line>\n" [int32 len][body], in one write (a server may close after the line alone). */
static void send_body(int fd, const char *line, const void *body, size_t len)
{
    size_t ll = strlen(line);
    char *buf = malloc(ll + 1 + 4 + len);
    ck_assert_ptr_nonnull(buf);
    memcpy(buf, line, ll);
    buf[ll] = '\n';
    uint32_t v = htonl((uint32_t)len);
    memcpy(buf + ll + 1, &v, 4);
    memcpy(buf + ll + 5, body, len);
    int rc = harness_tcp_send(fd, buf, ll + 5 + len);
    free(buf);
    ck_assert_int_eq(rc, 0);
}

/* Reads one frame, answering heartbeats with NOP unless keep_heartbeats. */
static int frame(int fd, int32_t *type, char **data, size_t *len)
{
    for (;;) {
        int rc = harness_tcp_read_frame(fd, type, data, len, IO_MS);
        if (rc != 0)
            return rc;
        if (*type == FRAME_RESP && strcmp(*data, "_heartbeat_") == 0) {
            free(*data);
            sendf(fd, "NOP\n");
            continue;
        }
        return 0;
    }
}

static void expect(int fd, int32_t want_type, const char *want)
{
    int32_t type;
    char *data;
    size_t len;
    ck_assert_int_eq(frame(fd, &type, &data, &len), 0);
    ck_assert_msg(type == want_type && strcmp(data, want) == 0, "got frame %d '%s', want %d '%s'",
                  type, data, want_type, want);
    free(data);
}

static void expect_ok(int fd)
{
    expect(fd, FRAME_RESP, "OK");
}

/* A fatal error: the frame, then the connection closes. */
static void expect_fatal(int fd, const char *err)
{
    expect(fd, FRAME_ERROR, err);
    ck_assert_msg(harness_tcp_wait_closed(fd, IO_MS), "connection stayed open after %s", err);
    close(fd);
}

/* Proves the connection is still usable: a PUB gets its OK. */
static void expect_open(int fd)
{
    send_body(fd, "PUB alive_check", "x", 1);
    expect_ok(fd);
}

struct msg {
    int64_t ts;
    uint16_t attempts;
    char id[ID_LEN + 1];
    char *body;
};

static int read_msg_timeout(int fd, struct msg *m, int timeout_ms)
{
    int32_t type;
    char *data;
    size_t len;
    int64_t deadline = harness_now_ms() + timeout_ms;
    for (;;) {
        int left = (int)(deadline - harness_now_ms());
        if (left <= 0)
            return -1;
        int rc = harness_tcp_read_frame(fd, &type, &data, &len, left);
        if (rc != 0)
            return -1;
        if (type == FRAME_RESP && strcmp(data, "_heartbeat_") == 0) {
            free(data);
            sendf(fd, "NOP\n");
            continue;
        }
        ck_assert_msg(type == FRAME_MSG, "expected a message, got %d '%s'", type, data);
        ck_assert_uint_gt(len, MSG_HDR);
        uint64_t ts = 0;
        for (int i = 0; i < 8; i++)
            ts = ts << 8 | (uint8_t)data[i];
        m->ts = (int64_t)ts;
        m->attempts = (uint16_t)((uint8_t)data[8] << 8 | (uint8_t)data[9]);
        memcpy(m->id, data + 10, ID_LEN);
        m->id[ID_LEN] = '\0';
        m->body = strndup(data + MSG_HDR, len - MSG_HDR);
        free(data);
        return 0;
    }
}

static void read_msg(int fd, struct msg *m)
{
    ck_assert_int_eq(read_msg_timeout(fd, m, IO_MS), 0);
}

/* No frame other than heartbeats arrives within ms. */
static void expect_silence(int fd, int ms)
{
    struct msg m;
    int rc = read_msg_timeout(fd, &m, ms);
    if (rc == 0)
        ck_abort_msg("unexpected message '%s'", m.body);
}

static int consumer(int port, const char *topic, const char *channel, const char *identify)
{
    int fd = conn(port);
    if (identify) {
        send_body(fd, "IDENTIFY", identify, strlen(identify));
        expect_ok(fd);
    }
    sendf(fd, "SUB %s %s\n", topic, channel);
    expect_ok(fd);
    return fd;
}

static void pub(int fd, const char *topic, const char *body)
{
    char line[256];
    snprintf(line, sizeof(line), "PUB %s", topic);
    send_body(fd, line, body, strlen(body));
    expect_ok(fd);
}

static long http(int port, const char *method, const char *path)
{
    struct harness_response r;
    memset(&r, 0, sizeof(r));
    ck_assert_int_eq(harness_http(method, port, path, NULL, 0, &r), 0);
    long st = r.status;
    harness_response_free(&r);
    return st;
}

/* ---- connection setup ---- */

START_TEST(test_bad_magic)
{
    struct nsqd d = start(NULL);
    int fd = harness_connect(d.tcp);
    ck_assert_int_eq(harness_tcp_send(fd, "  V1", 4), 0);
    expect_fatal(fd, "E_BAD_PROTOCOL");
    stop(&d);
}
END_TEST

START_TEST(test_identify)
{
    struct nsqd d = start(NULL);
    int fd = conn(d.tcp);
    send_body(fd, "IDENTIFY", "{\"client_id\":\"c\"}", 17);
    expect_ok(fd);
    close(fd);

    fd = conn(d.tcp);
    const char *req = "{\"feature_negotiation\":true,\"client_id\":\"c\",\"hostname\":\"h\","
                      "\"user_agent\":\"test/1\",\"heartbeat_interval\":30000,"
                      "\"output_buffer_size\":16384,\"output_buffer_timeout\":250}";
    send_body(fd, "IDENTIFY", req, strlen(req));
    expect(fd, FRAME_RESP,
           "{\"max_rdy_count\":2500,\"version\":\"1.3.0\",\"max_msg_timeout\":900000,"
           "\"msg_timeout\":60000,\"tls_v1\":false,\"deflate\":false,\"deflate_level\":6,"
           "\"max_deflate_level\":6,\"snappy\":false,\"sample_rate\":0,\"auth_required\":false,"
           "\"output_buffer_size\":16384,\"output_buffer_timeout\":250}");
    expect_open(fd);
    close(fd);

    /* Effective values: msg_timeout, sample rate, unbuffered output, keys matched case-blind. */
    fd = conn(d.tcp);
    req = "{\"feature_negotiation\":true,\"MSG_TIMEOUT\":5000,\"sample_rate\":50,"
          "\"output_buffer_size\":-1,\"deflate_level\":9,\"tls_v1\":true}";
    send_body(fd, "IDENTIFY", req, strlen(req));
    expect(fd, FRAME_RESP,
           "{\"max_rdy_count\":2500,\"version\":\"1.3.0\",\"max_msg_timeout\":900000,"
           "\"msg_timeout\":5000,\"tls_v1\":false,\"deflate\":false,\"deflate_level\":6,"
           "\"max_deflate_level\":6,\"snappy\":false,\"sample_rate\":50,\"auth_required\":false,"
           "\"output_buffer_size\":1,\"output_buffer_timeout\":0}");
    close(fd);

    /* A second IDENTIFY after SUB is refused. */
    fd = consumer(d.tcp, "t", "c", "{}");
    send_body(fd, "IDENTIFY", "{}", 2);
    expect_fatal(fd, "E_INVALID cannot IDENTIFY in current state");
    stop(&d);
}
END_TEST

START_TEST(test_identify_errors)
{
    static const struct {
        const char *json;
        const char *err;
    } cases[] = {
            {"not json", "E_BAD_BODY IDENTIFY failed to decode JSON body"},
            {"[1,2]", "E_BAD_BODY IDENTIFY failed to decode JSON body"},
            {"{\"heartbeat_interval\":\"x\"}", "E_BAD_BODY IDENTIFY failed to decode JSON body"},
            {"{\"feature_negotiation\":1}", "E_BAD_BODY IDENTIFY failed to decode JSON body"},
            {"{\"heartbeat_interval\":999}",
             "E_BAD_BODY IDENTIFY heartbeat interval (999) is invalid"},
            {"{\"heartbeat_interval\":60001}",
             "E_BAD_BODY IDENTIFY heartbeat interval (60001) is invalid"},
            {"{\"output_buffer_timeout\":24}",
             "E_BAD_BODY IDENTIFY output buffer timeout (24) is invalid"},
            {"{\"output_buffer_size\":63,\"output_buffer_timeout\":1}",
             "E_BAD_BODY IDENTIFY output buffer timeout (1) is invalid"},
            {"{\"output_buffer_size\":63}",
             "E_BAD_BODY IDENTIFY output buffer size (63) is invalid"},
            {"{\"output_buffer_size\":65537}",
             "E_BAD_BODY IDENTIFY output buffer size (65537) is invalid"},
            {"{\"sample_rate\":100}", "E_BAD_BODY IDENTIFY sample rate (100) is invalid"},
            {"{\"sample_rate\":-1}", "E_BAD_BODY IDENTIFY sample rate (-1) is invalid"},
            {"{\"msg_timeout\":999}", "E_BAD_BODY IDENTIFY msg timeout (999) is invalid"},
            {"{\"msg_timeout\":900001}", "E_BAD_BODY IDENTIFY msg timeout (900001) is invalid"},
            {"{\"feature_negotiation\":true,\"snappy\":true,\"deflate\":true}",
             "E_IDENTIFY_FAILED cannot enable both deflate and snappy compression"},
    };
    struct nsqd d = start(NULL);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int fd = conn(d.tcp);
        send_body(fd, "IDENTIFY", cases[i].json, strlen(cases[i].json));
        expect_fatal(fd, cases[i].err);
    }
    int fd = conn(d.tcp);
    send_body(fd, "IDENTIFY", "", 0);
    expect_fatal(fd, "E_BAD_BODY IDENTIFY invalid body size 0");
    fd = conn(d.tcp);
    sendf(fd, "IDENTIFY\n");
    uint8_t big[4] = {0, 0x50, 0, 1}; /* 5242881 > max-body-size */
    ck_assert_int_eq(harness_tcp_send(fd, big, 4), 0);
    expect_fatal(fd, "E_BAD_BODY IDENTIFY body too big 5242881 > 5242880");
    stop(&d);
}
END_TEST

/* ---- subscription state machine ---- */

START_TEST(test_state_errors)
{
    struct nsqd d = start((const char *const[]){"--max-channel-consumers=1", NULL});
    static const struct {
        const char *line;
        const char *err;
    } cases[] = {
            {"RDY 1", "E_INVALID cannot RDY in current state"},
            {"FIN 0123456789abcdef", "E_INVALID cannot FIN in current state"},
            {"REQ 0123456789abcdef 0", "E_INVALID cannot REQ in current state"},
            {"TOUCH 0123456789abcdef", "E_INVALID cannot TOUCH in current state"},
            {"CLS", "E_INVALID cannot CLS in current state"},
            {"SUB t", "E_INVALID SUB insufficient number of parameters"},
            {"SUB bad! c", "E_BAD_TOPIC SUB topic name \"bad!\" is not valid"},
            {"SUB t c\x01", "E_BAD_CHANNEL SUB channel name \"c\\x01\" is not valid"},
            {"BOGUS", "E_INVALID invalid command BOGUS"},
            {"", "E_INVALID invalid command "},
            {"nop", "E_INVALID invalid command nop"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int fd = conn(d.tcp);
        sendf(fd, "%s\n", cases[i].line);
        expect_fatal(fd, cases[i].err);
    }
    /* Heartbeats disabled: SUB refused. */
    int fd = conn(d.tcp);
    send_body(fd, "IDENTIFY", "{\"heartbeat_interval\":-1}", 25);
    expect_ok(fd);
    sendf(fd, "SUB t c\n");
    expect_fatal(fd, "E_INVALID cannot SUB with heartbeats disabled");

    /* Subscribed: errors of RDY and the message commands. */
    static const struct {
        const char *line;
        const char *err;
    } sub_cases[] = {
            {"SUB t c2", "E_INVALID cannot SUB in current state"},
            {"RDY x", "E_INVALID RDY could not parse count x"},
            {"RDY -1", "E_INVALID RDY could not parse count -1"},
            {"RDY 2501", "E_INVALID RDY count 2501 out of range 0-2500"},
            {"FIN", "E_INVALID FIN insufficient number of params"},
            {"FIN abc", "E_INVALID invalid message ID"},
            {"REQ 0123456789abcdef", "E_INVALID REQ insufficient number of params"},
            {"REQ 0123456789abcdef x", "E_INVALID REQ could not parse timeout x"},
            {"TOUCH", "E_INVALID TOUCH insufficient number of params"},
            {"TOUCH 0123456789abcdef0", "E_INVALID invalid message ID"},
    };
    for (size_t i = 0; i < sizeof(sub_cases) / sizeof(sub_cases[0]); i++) {
        fd = consumer(d.tcp, "t", "c", NULL);
        sendf(fd, "%s\n", sub_cases[i].line);
        expect_fatal(fd, sub_cases[i].err);
    }

    /* Non-fatal failures keep the connection. */
    fd = consumer(d.tcp, "t", "c", NULL);
    sendf(fd, "NOP\nRDY\nRDY 0\nFIN 0123456789abcdef\n");
    expect(fd, FRAME_ERROR, "E_FIN_FAILED FIN 0123456789abcdef failed ID not in flight");
    sendf(fd, "REQ 0123456789abcdef 10\n");
    expect(fd, FRAME_ERROR, "E_REQ_FAILED REQ 0123456789abcdef failed ID not in flight");
    sendf(fd, "TOUCH 0123456789abcdef\n");
    expect(fd, FRAME_ERROR, "E_TOUCH_FAILED TOUCH 0123456789abcdef failed ID not in flight");
    expect_open(fd);

    /* --max-channel-consumers=1 */
    int fd2 = conn(d.tcp);
    sendf(fd2, "SUB t c\n");
    expect_fatal(fd2, "E_SUB_FAILED SUB failed consumers for t:c exceeds limit of 1");

    /* CLS: CLOSE_WAIT, then RDY is ignored and the connection stays open. */
    sendf(fd, "CLS\n");
    expect(fd, FRAME_RESP, "CLOSE_WAIT");
    sendf(fd, "RDY 5\n");
    expect_open(fd);
    close(fd);
    stop(&d);
}
END_TEST

START_TEST(test_not_owner)
{
    struct nsqd d = start(NULL);
    int a = consumer(d.tcp, "t", "c", NULL);
    int b = consumer(d.tcp, "t", "c", NULL);
    int p = conn(d.tcp);
    sendf(a, "RDY 1\n");
    expect_open(a); /* RDY has been processed once this answers */
    pub(p, "t", "one");
    struct msg m;
    read_msg(a, &m);
    ck_assert_str_eq(m.body, "one");
    sendf(b, "FIN %s\n", m.id);
    char want[128];
    snprintf(want, sizeof(want), "E_FIN_FAILED FIN %s failed client does not own message", m.id);
    expect(b, FRAME_ERROR, want);
    sendf(b, "REQ %s 0\n", m.id);
    snprintf(want, sizeof(want), "E_REQ_FAILED REQ %s failed client does not own message", m.id);
    expect(b, FRAME_ERROR, want);
    sendf(a, "FIN %s\n", m.id);
    sendf(a, "FIN %s\n", m.id);
    snprintf(want, sizeof(want), "E_FIN_FAILED FIN %s failed ID not in flight", m.id);
    expect(a, FRAME_ERROR, want);
    free(m.body);
    close(a);
    close(b);
    close(p);
    stop(&d);
}
END_TEST

/* ---- publishing ---- */

static void send_mpub(int fd, const char *topic, const char *const *msgs, size_t n)
{
    uint8_t buf[8192];
    size_t off = 4;
    uint32_t v = htonl((uint32_t)n);
    memcpy(buf, &v, 4);
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(msgs[i]);
        v = htonl((uint32_t)l);
        memcpy(buf + off, &v, 4);
        memcpy(buf + off + 4, msgs[i], l);
        off += 4 + l;
    }
    char line[128];
    snprintf(line, sizeof(line), "MPUB %s", topic);
    send_body(fd, line, buf, off);
}

START_TEST(test_pub_errors)
{
    struct nsqd d =
            start((const char *const[]){"--max-msg-size=100", "--max-body-size=1000", NULL});
    static const struct {
        const char *line;
        const char *err;
    } cases[] = {
            {"PUB", "E_INVALID PUB insufficient number of parameters"},
            {"PUB a/b", "E_BAD_TOPIC PUB topic name \"a/b\" is not valid"},
            {"MPUB", "E_INVALID MPUB insufficient number of parameters"},
            {"MPUB a/b", "E_BAD_TOPIC E_BAD_TOPIC MPUB topic name \"a/b\" is not valid"},
            {"DPUB t", "E_INVALID DPUB insufficient number of parameters"},
            {"DPUB a/b 1", "E_BAD_TOPIC DPUB topic name \"a/b\" is not valid"},
            {"DPUB t x", "E_INVALID DPUB could not parse timeout x"},
            {"DPUB t 3600001", "E_INVALID DPUB timeout 3600001 out of range 0-3600000"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int fd = conn(d.tcp);
        sendf(fd, "%s\n", cases[i].line);
        expect_fatal(fd, cases[i].err);
    }
    static const struct {
        const char *line;
        int32_t size;
        const char *err;
    } sizes[] = {
            {"PUB t", 0, "E_BAD_MESSAGE PUB invalid message body size 0"},
            {"PUB t", -5, "E_BAD_MESSAGE PUB invalid message body size -5"},
            {"PUB t", 101, "E_BAD_MESSAGE PUB message too big 101 > 100"},
            {"DPUB t 10", 0, "E_BAD_MESSAGE DPUB invalid message body size 0"},
            {"DPUB t 10", 101, "E_BAD_MESSAGE DPUB message too big 101 > 100"},
            {"MPUB t", 0, "E_BAD_BODY MPUB invalid body size 0"},
            {"MPUB t", 1001, "E_BAD_BODY MPUB body too big 1001 > 1000"},
    };
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        int fd = conn(d.tcp);
        sendf(fd, "%s\n", sizes[i].line);
        uint32_t v = htonl((uint32_t)sizes[i].size);
        ck_assert_int_eq(harness_tcp_send(fd, &v, 4), 0);
        expect_fatal(fd, sizes[i].err);
    }
    /* MPUB payload errors. */
    int fd = conn(d.tcp);
    uint8_t zero_count[4] = {0, 0, 0, 0};
    send_body(fd, "MPUB t", zero_count, 4);
    expect_fatal(fd, "E_BAD_BODY MPUB invalid message count 0");
    fd = conn(d.tcp);
    send_mpub(fd, "t", (const char *const[]){"ok", ""}, 2);
    expect_fatal(fd, "E_BAD_MESSAGE MPUB invalid message(1) body size 0");
    fd = conn(d.tcp);
    char big[102];
    memset(big, 'x', 101);
    big[101] = '\0';
    send_mpub(fd, "t", (const char *const[]){big}, 1);
    expect_fatal(fd, "E_BAD_MESSAGE MPUB message too big 101 > 100");
    stop(&d);
}
END_TEST

/* The peer half-closes in the middle of a command: upstream's "failed to read" errors. */
START_TEST(test_truncated_commands)
{
    static const struct {
        const char *data;
        size_t len;
        const char *err;
    } cases[] = {
            {"PUB t\n\0\0", 8, "E_BAD_MESSAGE PUB failed to read message body size"},
            {"PUB t\n\0\0\0\5ab", 12, "E_BAD_MESSAGE PUB failed to read message body"},
            {"DPUB t 5\n\0", 10, "E_BAD_MESSAGE DPUB failed to read message body size"},
            {"IDENTIFY\n\0", 10, "E_BAD_BODY IDENTIFY failed to read body size"},
            {"IDENTIFY\n\0\0\0\5{", 14, "E_BAD_BODY IDENTIFY failed to read body"},
            {"MPUB t\n\0\0\0\40\0\0", 13, "E_BAD_BODY MPUB failed to read message count"},
            {"MPUB t\n\0\0\0\40\0\0\0\2\0\0\0\1a\0", 21,
             "E_BAD_MESSAGE MPUB failed to read message(1) body size"},
            {"MPUB t\n\0\0\0\40\0\0\0\2\0\0\0\1a\0\0\0\3x", 25,
             "E_BAD_MESSAGE MPUB failed to read message body"},
    };
    struct nsqd d = start(NULL);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int fd = conn(d.tcp);
        ck_assert_int_eq(harness_tcp_send(fd, cases[i].data, cases[i].len), 0);
        shutdown(fd, SHUT_WR);
        expect_fatal(fd, cases[i].err);
    }
    /* Complete commands before the half-close are still answered. */
    int fd = conn(d.tcp);
    ck_assert_int_eq(harness_tcp_send(fd, "PUB t\n\0\0\0\1aNOP\n", 15), 0);
    shutdown(fd, SHUT_WR);
    expect_ok(fd);
    ck_assert(harness_tcp_wait_closed(fd, IO_MS));
    close(fd);
    stop(&d);
}
END_TEST

START_TEST(test_fanout)
{
    struct nsqd d = start(NULL);
    int a = consumer(d.tcp, "fan", "a", NULL);
    int b = consumer(d.tcp, "fan", "b", NULL);
    sendf(a, "RDY 100\n");
    sendf(b, "RDY 100\n");
    int p = conn(d.tcp);
    pub(p, "fan", "m0");
    send_mpub(p, "fan", (const char *const[]){"m1", "m2", "m3"}, 3);
    expect_ok(p);
    send_body(p, "DPUB fan 0", "m4", 2);
    expect_ok(p);
    int fds[2] = {a, b};
    for (int c = 0; c < 2; c++) {
        bool seen[5] = {false};
        char first_id[ID_LEN + 1] = "";
        for (int i = 0; i < 5; i++) {
            struct msg m;
            read_msg(fds[c], &m);
            ck_assert_int_eq(m.attempts, 1);
            int k = m.body[1] - '0';
            ck_assert(k >= 0 && k < 5 && !seen[k]);
            seen[k] = true;
            if (k == 0)
                memcpy(first_id, m.id, sizeof(first_id));
            sendf(fds[c], "FIN %s\n", m.id);
            free(m.body);
        }
        ck_assert(first_id[0] != '\0');
    }
    expect_silence(a, 200);
    close(a);
    close(b);
    close(p);
    stop(&d);
}
END_TEST

/* mem-queue-size 10: most of 2000 messages go to the diskqueue and all come back. */
START_TEST(test_overflow_to_disk)
{
    struct nsqd d = start((const char *const[]){"--mem-queue-size=10", NULL});
    enum { N = 2000 };
    int p = conn(d.tcp);
    ck_assert_int_eq(http(d.http, "POST", "/channel/create?topic=ov&channel=c"), 404);
    ck_assert_int_eq(http(d.http, "POST", "/topic/create?topic=ov"), 200);
    ck_assert_int_eq(http(d.http, "POST", "/channel/create?topic=ov&channel=c"), 200);
    char body[32];
    for (int i = 0; i < N; i += 100) {
        const char *msgs[100];
        char bufs[100][16];
        for (int k = 0; k < 100; k++) {
            snprintf(bufs[k], sizeof(bufs[k]), "%d", i + k);
            msgs[k] = bufs[k];
        }
        send_mpub(p, "ov", msgs, 100);
        expect_ok(p);
    }
    int c = consumer(d.tcp, "ov", "c", NULL);
    sendf(c, "RDY 50\n");
    static bool seen[N];
    memset(seen, 0, sizeof(seen));
    for (int i = 0; i < N; i++) {
        struct msg m;
        read_msg(c, &m);
        int k = atoi(m.body);
        ck_assert_msg(k >= 0 && k < N && !seen[k], "bad or duplicate message %s", m.body);
        seen[k] = true;
        sendf(c, "FIN %s\n", m.id);
        free(m.body);
    }
    expect_silence(c, 200);
    (void)body;
    close(c);
    close(p);
    stop(&d);
}
END_TEST

/* sample_rate 10: about 11% of the messages are delivered, the rest consumed silently. */
START_TEST(test_sampling)
{
    enum { N = 2000 };
    struct nsqd d = start(NULL);
    int c = consumer(d.tcp, "smp", "c", "{\"sample_rate\":10}");
    sendf(c, "RDY 2500\n");
    expect_open(c);
    int p = conn(d.tcp);
    for (int i = 0; i < N; i += 100) {
        const char *msgs[100];
        for (int k = 0; k < 100; k++)
            msgs[k] = "s";
        send_mpub(p, "smp", msgs, 100);
        expect_ok(p);
    }
    int got = 0;
    struct msg m;
    while (read_msg_timeout(c, &m, 500) == 0) {
        got++;
        free(m.body);
    }
    ck_assert_msg(got > N / 20 && got < N / 4, "%d of %d sampled messages delivered", got, N);
    close(c);
    close(p);
    stop(&d);
}
END_TEST

/* ---- timeouts, requeue, deferral, touch ---- */

START_TEST(test_timeout_requeue)
{
    struct nsqd d = start(NULL);
    int c = consumer(d.tcp, "to", "c", "{\"msg_timeout\":1000}");
    sendf(c, "RDY 1\n");
    int p = conn(d.tcp);
    pub(p, "to", "late");
    struct msg m;
    read_msg(c, &m);
    ck_assert_int_eq(m.attempts, 1);
    int64_t t0 = harness_now_ms();
    struct msg again;
    read_msg(c, &again);
    int64_t waited = harness_now_ms() - t0;
    ck_assert_msg(waited >= 800, "redelivered after %lld ms", (long long)waited);
    ck_assert_str_eq(again.id, m.id);
    ck_assert_str_eq(again.body, "late");
    ck_assert_int_eq(again.attempts, 2);
    ck_assert_int_eq(again.ts, m.ts);
    sendf(c, "FIN %s\n", again.id);
    expect_silence(c, 1500);
    free(m.body);
    free(again.body);
    close(c);
    close(p);
    stop(&d);
}
END_TEST

START_TEST(test_req_and_dpub)
{
    struct nsqd d = start(NULL);
    int c = consumer(d.tcp, "rq", "c", NULL);
    sendf(c, "RDY 5\n");
    int p = conn(d.tcp);
    pub(p, "rq", "r");
    struct msg m;
    read_msg(c, &m);
    /* REQ 0: straight back. */
    sendf(c, "REQ %s 0\n", m.id);
    struct msg m2;
    read_msg(c, &m2);
    ck_assert_str_eq(m2.id, m.id);
    ck_assert_int_eq(m2.attempts, 2);
    /* REQ with delay: not before ~600 ms. */
    int64_t t0 = harness_now_ms();
    sendf(c, "REQ %s 600\n", m2.id);
    struct msg m3;
    read_msg(c, &m3);
    ck_assert_int_ge(harness_now_ms() - t0, 500);
    ck_assert_int_eq(m3.attempts, 3);
    /* A deferred message is not in flight: FIN fails (non-fatal). */
    sendf(c, "REQ %s 60000\n", m3.id);
    sendf(c, "FIN %s\n", m3.id);
    char want[128];
    snprintf(want, sizeof(want), "E_FIN_FAILED FIN %s failed ID not in flight", m3.id);
    expect(c, FRAME_ERROR, want);
    /* DPUB: delivered after the deferral. */
    t0 = harness_now_ms();
    send_body(p, "DPUB rq 700", "deferred", 8);
    expect_ok(p);
    struct msg m4;
    read_msg(c, &m4);
    ck_assert_str_eq(m4.body, "deferred");
    ck_assert_int_ge(harness_now_ms() - t0, 600);
    ck_assert_int_eq(m4.attempts, 1);
    sendf(c, "FIN %s\n", m4.id);
    free(m.body);
    free(m2.body);
    free(m3.body);
    free(m4.body);
    close(c);
    close(p);
    stop(&d);
}
END_TEST

START_TEST(test_touch)
{
    struct nsqd d = start(NULL);
    int c = consumer(d.tcp, "tt", "c", "{\"msg_timeout\":1000}");
    sendf(c, "RDY 1\n");
    int p = conn(d.tcp);
    pub(p, "tt", "x");
    struct msg m;
    read_msg(c, &m);
    /* Keep touching for 2.5 s: no redelivery, and FIN still succeeds afterwards. */
    for (int i = 0; i < 5; i++) {
        expect_silence(c, 500);
        sendf(c, "TOUCH %s\n", m.id);
    }
    sendf(c, "FIN %s\n", m.id);
    expect_open(c);
    expect_silence(c, 1300);
    free(m.body);
    close(c);
    close(p);
    stop(&d);
}
END_TEST

/* ---- heartbeats ---- */

START_TEST(test_heartbeat)
{
    struct nsqd d = start(NULL);
    int fd = conn(d.tcp);
    send_body(fd, "IDENTIFY", "{\"heartbeat_interval\":1000}", 27);
    expect_ok(fd);
    int64_t t0 = harness_now_ms();
    int32_t type;
    char *data;
    size_t len;
    ck_assert_int_eq(harness_tcp_read_frame(fd, &type, &data, &len, 3000), 0);
    ck_assert_int_eq(type, FRAME_RESP);
    ck_assert_str_eq(data, "_heartbeat_");
    free(data);
    int64_t first = harness_now_ms() - t0;
    ck_assert_msg(first >= 700 && first <= 1800, "first heartbeat after %lld ms", (long long)first);
    /* Silent client: the second heartbeat, due with the read deadline, still goes out (as
       upstream); then it is closed, two intervals having passed without a command. */
    ck_assert_int_eq(harness_tcp_read_frame(fd, &type, &data, &len, 3000), 0);
    ck_assert_int_eq(type, FRAME_RESP);
    ck_assert_str_eq(data, "_heartbeat_");
    free(data);
    ck_assert(harness_tcp_wait_closed(fd, 3000));
    int64_t closed = harness_now_ms() - t0;
    ck_assert_msg(closed >= 1500 && closed <= 3000, "closed after %lld ms", (long long)closed);
    close(fd);

    /* A client answering with NOP stays connected. */
    fd = conn(d.tcp);
    send_body(fd, "IDENTIFY", "{\"heartbeat_interval\":1000}", 27);
    expect_ok(fd);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(harness_tcp_read_frame(fd, &type, &data, &len, 3000), 0);
        ck_assert_int_eq(type, FRAME_RESP);
        ck_assert_str_eq(data, "_heartbeat_");
        free(data);
        sendf(fd, "NOP\n");
    }
    expect_open(fd);
    close(fd);
    stop(&d);
}
END_TEST

/* ---- ephemeral, pause, empty ---- */

static int g_http_port;
static const char *g_path;

static bool returns_404(void *arg)
{
    return http(g_http_port, "POST", g_path) == 404;
}

START_TEST(test_ephemeral)
{
    struct nsqd d = start(NULL);
    int c = consumer(d.tcp, "eph#ephemeral", "ch#ephemeral", NULL);
    ck_assert_int_eq(
            http(d.http, "POST", "/channel/empty?topic=eph%23ephemeral&channel=ch%23ephemeral"),
            200);
    close(c);
    g_http_port = d.http;
    g_path = "/channel/empty?topic=eph%23ephemeral&channel=ch%23ephemeral";
    ck_assert(harness_wait_until(returns_404, NULL, 3000));
    /* Its topic went with its last channel. */
    g_path = "/topic/empty?topic=eph%23ephemeral";
    ck_assert(harness_wait_until(returns_404, NULL, 3000));
    /* An ephemeral channel of a normal topic: the topic stays. */
    c = consumer(d.tcp, "keep", "ch#ephemeral", NULL);
    close(c);
    g_path = "/channel/empty?topic=keep&channel=ch%23ephemeral";
    ck_assert(harness_wait_until(returns_404, NULL, 3000));
    ck_assert_int_eq(http(d.http, "POST", "/topic/empty?topic=keep"), 200);
    /* Ephemeral names never reach nsqd.dat. */
    char path[4300];
    snprintf(path, sizeof(path), "%s/nsqd.dat", d.dir);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    char buf[4096] = "";
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    ck_assert_ptr_null(strstr(buf, "ephemeral"));
    ck_assert_ptr_nonnull(strstr(buf, "\"keep\""));
    stop(&d);
}
END_TEST

START_TEST(test_pause_and_empty)
{
    struct nsqd d = start(NULL);
    int c = consumer(d.tcp, "pz", "c", NULL);
    sendf(c, "RDY 10\n");
    int p = conn(d.tcp);
    ck_assert_int_eq(http(d.http, "POST", "/channel/pause?topic=pz&channel=c"), 200);
    pub(p, "pz", "a");
    expect_silence(c, 300);
    ck_assert_int_eq(http(d.http, "POST", "/channel/unpause?topic=pz&channel=c"), 200);
    struct msg m;
    read_msg(c, &m);
    ck_assert_str_eq(m.body, "a");
    sendf(c, "FIN %s\n", m.id);
    free(m.body);

    ck_assert_int_eq(http(d.http, "POST", "/topic/pause?topic=pz"), 200);
    pub(p, "pz", "b");
    expect_silence(c, 300);
    ck_assert_int_eq(http(d.http, "POST", "/topic/unpause?topic=pz"), 200);
    read_msg(c, &m);
    ck_assert_str_eq(m.body, "b");
    free(m.body);
    /* Empty drops queued and in-flight messages; FIN then fails. */
    ck_assert_int_eq(http(d.http, "POST", "/channel/pause?topic=pz&channel=c"), 200);
    pub(p, "pz", "c1");
    pub(p, "pz", "c2");
    ck_assert_int_eq(http(d.http, "POST", "/channel/empty?topic=pz&channel=c"), 200);
    ck_assert_int_eq(http(d.http, "POST", "/channel/unpause?topic=pz&channel=c"), 200);
    expect_silence(c, 300);
    sendf(c, "FIN %s\n", m.id);
    char want[128];
    snprintf(want, sizeof(want), "E_FIN_FAILED FIN %s failed ID not in flight", m.id);
    expect(c, FRAME_ERROR, want);
    /* Topic empty: messages waiting in a paused topic are dropped. */
    ck_assert_int_eq(http(d.http, "POST", "/topic/pause?topic=pz"), 200);
    pub(p, "pz", "d");
    ck_assert_int_eq(http(d.http, "POST", "/topic/empty?topic=pz"), 200);
    ck_assert_int_eq(http(d.http, "POST", "/topic/unpause?topic=pz"), 200);
    expect_silence(c, 300);
    pub(p, "pz", "e");
    read_msg(c, &m);
    ck_assert_str_eq(m.body, "e");
    free(m.body);
    /* Channel deletion closes its consumers. */
    ck_assert_int_eq(http(d.http, "POST", "/channel/delete?topic=pz&channel=c"), 200);
    ck_assert(harness_tcp_wait_closed(c, IO_MS));
    close(c);
    close(p);
    stop(&d);
}
END_TEST

/* ---- restart ---- */

START_TEST(test_restart)
{
    char *dir = harness_tmpdir();
    struct nsqd d = start_in(dir, NULL);
    enum { N = 30 };
    int p = conn(d.tcp);
    ck_assert_int_eq(http(d.http, "POST", "/topic/create?topic=rs"), 200);
    ck_assert_int_eq(http(d.http, "POST", "/channel/create?topic=rs&channel=c"), 200);
    ck_assert_int_eq(http(d.http, "POST", "/channel/create?topic=rs&channel=pausedch"), 200);
    ck_assert_int_eq(http(d.http, "POST", "/channel/pause?topic=rs&channel=pausedch"), 200);
    char body[16];
    for (int i = 0; i < N; i++) {
        snprintf(body, sizeof(body), "%d", i);
        pub(p, "rs", body);
    }
    send_body(p, "DPUB rs 3600000", "deferred", 8);
    expect_ok(p);
    /* A topic without channels keeps its messages too. */
    pub(p, "lonely", "alone");
    int c = consumer(d.tcp, "rs", "c", NULL);
    sendf(c, "RDY 6\n");
    struct msg m[6];
    for (int i = 0; i < 6; i++)
        read_msg(c, &m[i]);
    /* Two deferred by REQ, four left in flight; the DPUB one waits in the deferred table. */
    sendf(c, "RDY 0\n");
    sendf(c, "REQ %s 3600000\n", m[0].id);
    sendf(c, "REQ %s 3600000\n", m[1].id);
    expect_open(c);
    ck_assert_int_eq(harness_stop(d.p, SIGTERM), 0);
    close(c);
    close(p);

    d = start_in(dir, NULL);
    c = consumer(d.tcp, "rs", "c", NULL);
    sendf(c, "RDY 100\n");
    bool seen[N + 1] = {false};
    for (int i = 0; i < N + 1; i++) {
        struct msg r;
        read_msg(c, &r);
        int k = strcmp(r.body, "deferred") == 0 ? N : atoi(r.body);
        ck_assert_msg(!seen[k], "duplicate %s", r.body);
        seen[k] = true;
        /* In-flight and REQ'd messages keep their delivery count. */
        for (int j = 0; j < 6; j++)
            if (strcmp(m[j].id, r.id) == 0)
                ck_assert_int_ge(r.attempts, 2);
        sendf(c, "FIN %s\n", r.id);
        free(r.body);
    }
    expect_silence(c, 300);
    /* The paused channel is still paused and still holds everything. */
    int c2 = consumer(d.tcp, "rs", "pausedch", NULL);
    sendf(c2, "RDY 100\n");
    expect_silence(c2, 300);
    ck_assert_int_eq(http(d.http, "POST", "/channel/unpause?topic=rs&channel=pausedch"), 200);
    for (int i = 0; i < N + 1; i++) {
        struct msg r;
        read_msg(c2, &r);
        free(r.body);
    }
    int c3 = consumer(d.tcp, "lonely", "c", NULL);
    sendf(c3, "RDY 1\n");
    struct msg r;
    read_msg(c3, &r);
    ck_assert_str_eq(r.body, "alone");
    free(r.body);
    for (int i = 0; i < 6; i++)
        free(m[i].body);
    close(c);
    close(c2);
    close(c3);
    ck_assert_int_eq(harness_stop(d.p, SIGTERM), 0);
    harness_rmdir(dir);
    free(dir);
}
END_TEST

/* SIGTERM with consumers connected (one on an ephemeral channel, messages in flight): clean exit
   0 (a sanitizer build also checks that nothing leaks). */
START_TEST(test_shutdown_with_clients)
{
    struct nsqd d = start(NULL);
    int a = consumer(d.tcp, "sd", "c#ephemeral", NULL);
    int b = consumer(d.tcp, "sd", "c", NULL);
    int e = consumer(d.tcp, "sd#ephemeral", "c", NULL);
    sendf(a, "RDY 1\n");
    sendf(b, "RDY 1\n");
    sendf(e, "RDY 1\n");
    int p = conn(d.tcp);
    pub(p, "sd", "x");
    pub(p, "sd#ephemeral", "y");
    struct msg m;
    read_msg(a, &m);
    free(m.body);
    read_msg(b, &m);
    free(m.body);
    read_msg(e, &m);
    free(m.body);
    stop(&d);
    ck_assert(harness_tcp_wait_closed(a, IO_MS));
    close(a);
    close(b);
    close(e);
    close(p);
}
END_TEST

START_TEST(test_data_path_lock)
{
    struct nsqd d = start(NULL);
    char dp[4200];
    snprintf(dp, sizeof(dp), "--data-path=%s", d.dir);
    const char *args[] = {"--tcp-address=127.0.0.1:0", "--http-address=127.0.0.1:0", dp, NULL};
    struct harness_proc *second = harness_start(NSQD_BIN, args, 2);
    ck_assert_ptr_null(second);
    stop(&d);
}
END_TEST

/* ---- compression (snappy / deflate negotiated by IDENTIFY) ---- */

struct zconn {
    int fd;
    bool snappy;
    struct nsq_snappy_writer *sw;
    struct nsq_snappy_reader *sr;
    struct nsq_deflate_writer *dw;
    struct nsq_deflate_reader *dr;
    struct evbuffer *raw, *dec;
};

static void z_send(struct zconn *z, const void *data, size_t len)
{
    struct evbuffer *src = evbuffer_new(), *dst = evbuffer_new();
    evbuffer_add(src, data, len);
    int rc = z->snappy ? nsq_snappy_write(z->sw, src, dst) : nsq_deflate_write(z->dw, src, dst);
    ck_assert_int_eq(rc, 0);
    size_t n = evbuffer_get_length(dst);
    ck_assert_int_eq(harness_tcp_send(z->fd, evbuffer_pullup(dst, -1), n), 0);
    evbuffer_free(src);
    evbuffer_free(dst);
}

/* Next decoded frame (heartbeats included). */
static void z_frame(struct zconn *z, int32_t *type, char **data, size_t *len)
{
    int64_t deadline = harness_now_ms() + IO_MS;
    for (;;) {
        size_t have = evbuffer_get_length(z->dec);
        if (have >= 8) {
            uint8_t *h = evbuffer_pullup(z->dec, 8);
            uint32_t size, t;
            memcpy(&size, h, 4);
            memcpy(&t, h + 4, 4);
            size = ntohl(size);
            if (have >= 4 + (size_t)size) {
                *type = (int32_t)ntohl(t);
                *len = size - 4;
                *data = calloc(1, *len + 1);
                evbuffer_drain(z->dec, 8);
                evbuffer_remove(z->dec, *data, *len);
                return;
            }
        }
        struct pollfd pfd = {.fd = z->fd, .events = POLLIN};
        int left = (int)(deadline - harness_now_ms());
        ck_assert_msg(left > 0 && poll(&pfd, 1, left) == 1, "no compressed frame in time");
        char buf[65536];
        ssize_t r = read(z->fd, buf, sizeof(buf));
        ck_assert_int_gt(r, 0);
        evbuffer_add(z->raw, buf, (size_t)r);
        int rc = z->snappy ? nsq_snappy_read(z->sr, z->raw, z->dec)
                           : nsq_deflate_read(z->dr, z->raw, z->dec);
        ck_assert_int_ge(rc, 0);
    }
}

static void z_expect(struct zconn *z, int32_t want_type, const char *want)
{
    int32_t type;
    char *data;
    size_t len;
    z_frame(z, &type, &data, &len);
    ck_assert_msg(type == want_type && strcmp(data, want) == 0, "got %d '%s', want %d '%s'", type,
                  data, want_type, want);
    free(data);
}

static void compression_roundtrip(bool snappy)
{
    struct nsqd d = start(NULL);
    struct zconn z = {.fd = conn(d.tcp), .snappy = snappy};
    z.raw = evbuffer_new();
    z.dec = evbuffer_new();
    z.sw = nsq_snappy_writer_new();
    z.sr = nsq_snappy_reader_new();
    z.dw = nsq_deflate_writer_new(3);
    z.dr = nsq_deflate_reader_new();
    const char *req =
            snappy ? "{\"feature_negotiation\":true,\"snappy\":true}"
                   : "{\"feature_negotiation\":true,\"deflate\":true,\"deflate_level\":3}";
    send_body(z.fd, "IDENTIFY", req, strlen(req));
    int32_t type;
    char *data;
    size_t len;
    ck_assert_int_eq(harness_tcp_read_frame(z.fd, &type, &data, &len, IO_MS), 0);
    ck_assert_ptr_nonnull(strstr(data, snappy ? "\"snappy\":true" : "\"deflate\":true"));
    if (!snappy)
        ck_assert_ptr_nonnull(strstr(data, "\"deflate_level\":3,"));
    free(data);
    z_expect(&z, FRAME_RESP, "OK"); /* the first compressed frame */
    const char pub_cmd[] = "PUB zt\n\0\0\0\x05hello";
    z_send(&z, pub_cmd, sizeof(pub_cmd) - 1);
    z_expect(&z, FRAME_RESP, "OK");
    z_send(&z, "SUB zt c\nRDY 1\n", 15);
    z_expect(&z, FRAME_RESP, "OK");
    z_frame(&z, &type, &data, &len);
    ck_assert_int_eq(type, FRAME_MSG);
    ck_assert_uint_eq(len, MSG_HDR + 5);
    ck_assert_int_eq(memcmp(data + MSG_HDR, "hello", 5), 0);
    char fin[32];
    snprintf(fin, sizeof(fin), "FIN %.16s\n", data + 10);
    free(data);
    z_send(&z, fin, strlen(fin));
    z_send(&z, "BOGUS\n", 6);
    z_expect(&z, FRAME_ERROR, "E_INVALID invalid command BOGUS");
    close(z.fd);
    nsq_snappy_writer_free(z.sw);
    nsq_snappy_reader_free(z.sr);
    nsq_deflate_writer_free(z.dw);
    nsq_deflate_reader_free(z.dr);
    evbuffer_free(z.raw);
    evbuffer_free(z.dec);
    stop(&d);
}

START_TEST(test_snappy)
{
    compression_roundtrip(true);
}
END_TEST

START_TEST(test_deflate)
{
    compression_roundtrip(false);
}
END_TEST

START_TEST(test_compression_disabled)
{
    struct nsqd d = start((const char *const[]){"--snappy=false", "--deflate=false", NULL});
    int fd = conn(d.tcp);
    const char *req = "{\"feature_negotiation\":true,\"snappy\":true,\"deflate\":true}";
    send_body(fd, "IDENTIFY", req, strlen(req));
    expect(fd, FRAME_RESP,
           "{\"max_rdy_count\":2500,\"version\":\"1.3.0\",\"max_msg_timeout\":900000,"
           "\"msg_timeout\":60000,\"tls_v1\":false,\"deflate\":false,\"deflate_level\":6,"
           "\"max_deflate_level\":6,\"snappy\":false,\"sample_rate\":0,\"auth_required\":false,"
           "\"output_buffer_size\":16384,\"output_buffer_timeout\":250}");
    expect_open(fd);
    close(fd);
    stop(&d);
}
END_TEST

/* ---- TLS (IDENTIFY tls_v1, --tls-required) ---- */

static char tls_dir[4200];

/* A self-signed certificate for 127.0.0.1 in a fresh directory. */
static void make_cert(void)
{
    char *dir = harness_tmpdir();
    snprintf(tls_dir, sizeof(tls_dir), "%s", dir);
    free(dir);
    char cmd[8192];
    snprintf(cmd, sizeof(cmd),
             "cd %s && openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem "
             "-days 2 -subj /CN=127.0.0.1 >openssl.log 2>&1",
             tls_dir);
    ck_assert_int_eq(system(cmd), 0);
}

static int ssl_read_n(SSL *ssl, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        int r = SSL_read(ssl, (char *)buf + got, (int)(n - got));
        if (r <= 0) {
            fprintf(stderr, "SSL_read: error %d after %zu bytes\n", SSL_get_error(ssl, r), got);
            ERR_print_errors_fp(stderr);
            return -1;
        }
        got += (size_t)r;
    }
    return 0;
}

static void ssl_expect(SSL *ssl, int32_t want_type, const char *want)
{
    uint8_t hdr[8];
    ck_assert_int_eq(ssl_read_n(ssl, hdr, 8), 0);
    uint32_t size, type;
    memcpy(&size, hdr, 4);
    memcpy(&type, hdr + 4, 4);
    size = ntohl(size);
    type = ntohl(type);
    ck_assert_uint_ge(size, 4);
    char *data = calloc(1, size);
    ck_assert_int_eq(ssl_read_n(ssl, data, size - 4), 0);
    ck_assert_msg((int32_t)type == want_type && strcmp(data, want) == 0,
                  "got %u '%s', want %d '%s'", type, data, want_type, want);
    free(data);
}

START_TEST(test_tls)
{
    make_cert();
    char cert[4300], key[4300];
    snprintf(cert, sizeof(cert), "--tls-cert=%s/cert.pem", tls_dir);
    snprintf(key, sizeof(key), "--tls-key=%s/key.pem", tls_dir);
    char *dir = harness_tmpdir();
    char dp[4300];
    snprintf(dp, sizeof(dp), "--data-path=%s", dir);
    const char *args[] = {"--tcp-address=127.0.0.1:0",
                          "--http-address=127.0.0.1:0",
                          "--https-address=127.0.0.1:0",
                          dp,
                          cert,
                          key,
                          "--tls-required=true",
                          NULL};
    struct harness_proc *p = harness_start(NSQD_BIN, args, 3);
    ck_assert_ptr_nonnull(p);
    int tcp = harness_port(p, "TCP"), https = harness_port(p, "HTTPS");
    ck_assert_int_gt(https, 0);

    /* Plain HTTP is refused with upstream's hand-written body. */
    struct harness_response r;
    memset(&r, 0, sizeof(r));
    ck_assert_int_eq(harness_http("GET", harness_port(p, "HTTP"), "/ping", NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 403);
    char want[128];
    snprintf(want, sizeof(want), "{\"message\": \"TLS_REQUIRED\", \"https_port\": %d}", https);
    ck_assert_str_eq(r.body, want);
    harness_response_free(&r);

    /* Before TLS, everything but IDENTIFY is refused. */
    int fd = conn(tcp);
    send_body(fd, "PUB t", "x", 1);
    expect_fatal(fd, "E_INVALID cannot PUB in current state (TLS required)");

    fd = conn(tcp);
    const char *req = "{\"feature_negotiation\":true,\"tls_v1\":true}";
    send_body(fd, "IDENTIFY", req, strlen(req));
    int32_t type;
    char *data;
    size_t len;
    ck_assert_int_eq(harness_tcp_read_frame(fd, &type, &data, &len, IO_MS), 0);
    ck_assert_ptr_nonnull(strstr(data, "\"tls_v1\":true"));
    free(data);
    struct timeval tv = {.tv_sec = IO_MS / 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK); /* OpenSSL does blocking I/O here */
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    ck_assert_int_eq(SSL_connect(ssl), 1);
    ssl_expect(ssl, FRAME_RESP, "OK");
    const char pub_cmd[] = "PUB tt\n\0\0\0\x02hi";
    ck_assert_int_eq(SSL_write(ssl, pub_cmd, sizeof(pub_cmd) - 1), (int)sizeof(pub_cmd) - 1);
    ssl_expect(ssl, FRAME_RESP, "OK");
    const char sub_cmd[] = "SUB tt c\nBOGUS\n";
    SSL_write(ssl, sub_cmd, sizeof(sub_cmd) - 1);
    ssl_expect(ssl, FRAME_RESP, "OK");
    ssl_expect(ssl, FRAME_ERROR, "E_INVALID invalid command BOGUS");
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
    ck_assert_int_eq(harness_stop(p, SIGTERM), 0);
    harness_rmdir(dir);
    free(dir);
    harness_rmdir(tls_dir);
}
END_TEST

/* ---- AUTH against an auth server (a small Python HTTP server) ---- */

static const char auth_server_py[] =
        "import http.server, json, sys, urllib.parse\n"
        "class H(http.server.BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        "        u = urllib.parse.urlparse(self.path)\n"
        "        q = urllib.parse.parse_qs(u.query, keep_blank_values=True)\n"
        "        sys.stderr.write(\"AUTH %s\\n\" % self.path); sys.stderr.flush()\n"
        "        secret = q.get('secret', [''])[0]\n"
        "        if u.path != '/auth' or secret == 'bad':\n"
        "            self.send_response(403); self.end_headers(); return\n"
        "        if secret == 'none':\n"
        "            body = {\"ttl\": 3600, \"identity\": \"nobody\", \"identity_url\": \"\", "
        "\"authorizations\": []}\n"
        "        elif secret == 'short':\n"
        "            body = {\"ttl\": 1, \"identity\": \"short\", \"identity_url\": \"u\", "
        "\"authorizations\": [\n"
        "                {\"topic\": \"^ok\", \"channels\": [\".*\"], \"permissions\": "
        "[\"subscribe\", \"publish\"]}]}\n"
        "        else:\n"
        "            body = {\"ttl\": 3600, \"identity\": \"user@x\", \"identity_url\": "
        "\"https://x/u\", \"authorizations\": [\n"
        "                {\"topic\": \"^ok\", \"channels\": [\".*\"], \"permissions\": "
        "[\"subscribe\", \"publish\"]},\n"
        "                {\"topic\": \"sub_only\", \"channels\": [\"^c$\"], \"permissions\": "
        "[\"subscribe\"]}]}\n"
        "        data = json.dumps(body).encode()\n"
        "        self.send_response(200); self.send_header('Content-Type', 'application/json'); "
        "self.end_headers(); self.wfile.write(data)\n"
        "    def log_message(self, *a): pass\n"
        "s = http.server.HTTPServer(('127.0.0.1', 0), H)\n"
        "sys.stderr.write(\"HTTP: listening on 127.0.0.1:%d\\n\" % s.server_address[1]); "
        "sys.stderr.flush()\n"
        "s.serve_forever()\n";

START_TEST(test_auth)
{
    char *adir = harness_tmpdir();
    char script[4300];
    snprintf(script, sizeof(script), "%s/auth.py", adir);
    FILE *f = fopen(script, "w");
    ck_assert_ptr_nonnull(f);
    fputs(auth_server_py, f);
    fclose(f);
    const char *aargs[] = {script, NULL};
    struct harness_proc *auth = harness_start("/usr/bin/python3", aargs, 1);
    ck_assert_ptr_nonnull(auth);
    char flag[128];
    snprintf(flag, sizeof(flag), "--auth-http-address=127.0.0.1:%d", harness_port(auth, "HTTP"));
    struct nsqd d = start((const char *const[]){flag, NULL});

    int fd = conn(d.tcp);
    send_body(fd, "IDENTIFY", "{\"feature_negotiation\":true}", 28);
    int32_t type;
    char *data;
    size_t len;
    ck_assert_int_eq(frame(fd, &type, &data, &len), 0);
    ck_assert_ptr_nonnull(strstr(data, "\"auth_required\":true"));
    free(data);
    send_body(fd, "PUB ok", "x", 1);
    expect_fatal(fd, "E_AUTH_FIRST AUTH required before PUB");

    /* Commands pipelined behind AUTH wait for the answer. */
    fd = conn(d.tcp);
    send_body(fd, "AUTH", "good", 4);
    send_body(fd, "PUB ok1", "x", 1);
    sendf(fd, "SUB sub_only c\n");
    expect(fd, FRAME_RESP,
           "{\"identity\":\"user@x\",\"identity_url\":\"https://x/u\",\"permission_count\":2}");
    expect_ok(fd);
    expect_ok(fd);
    struct harness_response r;
    memset(&r, 0, sizeof(r));
    ck_assert_int_eq(harness_http("GET", d.http, "/stats?format=json", NULL, 0, &r), 0);
    ck_assert_ptr_nonnull(strstr(r.body, "\"authed\":true,\"auth_identity\":\"user@x\","
                                         "\"auth_identity_url\":\"https://x/u\""));
    harness_response_free(&r);
    send_body(fd, "AUTH", "good", 4);
    expect_fatal(fd, "E_INVALID cannot AUTH in current state");
    fd = conn(d.tcp);
    send_body(fd, "AUTH", "good", 4);
    send_body(fd, "AUTH", "good", 4);
    expect(fd, FRAME_RESP,
           "{\"identity\":\"user@x\",\"identity_url\":\"https://x/u\",\"permission_count\":2}");
    expect_fatal(fd, "E_INVALID AUTH already set");

    fd = conn(d.tcp);
    send_body(fd, "AUTH", "good", 4);
    send_body(fd, "PUB nope", "x", 1);
    expect(fd, FRAME_RESP,
           "{\"identity\":\"user@x\",\"identity_url\":\"https://x/u\",\"permission_count\":2}");
    expect_fatal(fd, "E_UNAUTHORIZED AUTH failed for PUB on \"nope\" \"\"");
    fd = conn(d.tcp);
    send_body(fd, "AUTH", "good", 4);
    sendf(fd, "SUB sub_only other\n");
    expect(fd, FRAME_RESP,
           "{\"identity\":\"user@x\",\"identity_url\":\"https://x/u\",\"permission_count\":2}");
    expect_fatal(fd, "E_UNAUTHORIZED AUTH failed for SUB on \"sub_only\" \"other\"");

    fd = conn(d.tcp);
    send_body(fd, "AUTH", "bad", 3);
    expect_fatal(fd, "E_AUTH_FAILED AUTH failed");
    fd = conn(d.tcp);
    send_body(fd, "AUTH", "none", 4);
    expect_fatal(fd, "E_UNAUTHORIZED AUTH no authorizations found");
    fd = conn(d.tcp);
    sendf(fd, "AUTH x\n");
    expect_fatal(fd, "E_INVALID AUTH invalid number of parameters");

    /* ttl 1 s: the next publish after expiry asks the server again and goes through. */
    fd = conn(d.tcp);
    send_body(fd, "AUTH", "short", 5);
    expect(fd, FRAME_RESP,
           "{\"identity\":\"short\",\"identity_url\":\"u\",\"permission_count\":1}");
    usleep(1200 * 1000);
    send_body(fd, "PUB ok", "x", 1);
    expect_ok(fd);
    close(fd);
    ck_assert(harness_log_wait(auth, "secret=short&tls=false", IO_MS));
    char *log = harness_log(auth);
    ck_assert_ptr_nonnull(log);
    char *first = strstr(log, "secret=short");
    ck_assert_ptr_nonnull(first);
    ck_assert_ptr_nonnull(strstr(first + 1, "secret=short")); /* queried twice */
    ck_assert_ptr_nonnull(
            strstr(log, "/auth?common_name=&remote_ip=127.0.0.1&secret=good&tls=false"));
    free(log);

    /* Without auth servers: AUTH is disabled. */
    struct nsqd plain = start(NULL);
    fd = conn(plain.tcp);
    send_body(fd, "AUTH", "x", 1);
    expect_fatal(fd, "E_AUTH_DISABLED AUTH disabled");
    stop(&plain);
    stop(&d);
    harness_kill(auth);
    harness_rmdir(adir);
    free(adir);
}
END_TEST

static Suite *nsqd_tcp_suite(void)
{
    Suite *s = suite_create("nsqd_tcp");
    TCase *tc = tcase_create("protocol");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_bad_magic);
    tcase_add_test(tc, test_identify);
    tcase_add_test(tc, test_identify_errors);
    tcase_add_test(tc, test_state_errors);
    tcase_add_test(tc, test_not_owner);
    tcase_add_test(tc, test_pub_errors);
    tcase_add_test(tc, test_truncated_commands);
    tcase_add_test(tc, test_fanout);
    tcase_add_test(tc, test_overflow_to_disk);
    tcase_add_test(tc, test_sampling);
    tcase_add_test(tc, test_timeout_requeue);
    tcase_add_test(tc, test_req_and_dpub);
    tcase_add_test(tc, test_touch);
    tcase_add_test(tc, test_heartbeat);
    tcase_add_test(tc, test_ephemeral);
    tcase_add_test(tc, test_pause_and_empty);
    tcase_add_test(tc, test_restart);
    tcase_add_test(tc, test_shutdown_with_clients);
    tcase_add_test(tc, test_data_path_lock);
    tcase_add_test(tc, test_snappy);
    tcase_add_test(tc, test_deflate);
    tcase_add_test(tc, test_compression_disabled);
    tcase_add_test(tc, test_tls);
    tcase_add_test(tc, test_auth);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(nsqd_tcp_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
