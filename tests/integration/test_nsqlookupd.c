/*
 * Integration tests of nsqlookupd: the real daemon on 127.0.0.1 with ephemeral ports, driven over
 * the V1 TCP protocol as nsqd drives it and over the HTTP API as consumers and nsqadmin do. JSON
 * answers are compared with the answers recorded from upstream v1.3.0 (field names, order, types).
 */
#include <arpa/inet.h>
#include <check.h>
#include <cjson/cJSON.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define RECORDED_DIR NSQ_TESTDATA_DIR "/upstream-v1.3.0/http/"
#define IO_MS        HARNESS_IO_TIMEOUT_MS
#define AWAIT_MS     10000
#define NSQD_IDENTIFY                                                                              \
    "{\"broadcast_address\":\"127.0.0.1\",\"hostname\":\"node-a\",\"http_port\":44151,"            \
    "\"tcp_port\":44150,\"version\":\"1.3.0\"}"
#define NSQD_IDENTIFY_B                                                                            \
    "{\"broadcast_address\":\"127.0.0.2\",\"hostname\":\"node-b\",\"http_port\":54151,"            \
    "\"tcp_port\":54150,\"version\":\"1.3.0\"}"

/* ---- helpers ---- */

static struct harness_proc *start_lookupd_args(const char *const *extra)
{
    const char *args[32] = {"--tcp-address=127.0.0.1:0", "--http-address=127.0.0.1:0",
                            "--broadcast-address=lookupd.test"};
    size_t n = 3;
    for (size_t i = 0; extra != NULL && extra[i] != NULL && n < 31; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    struct harness_proc *p = harness_start(NSQLOOKUPD_BIN, args, 2);
    ck_assert_msg(p != NULL, "nsqlookupd did not start");
    ck_assert_int_gt(harness_port(p, "TCP"), 0);
    ck_assert_int_gt(harness_port(p, "HTTP"), 0);
    return p;
}

static struct harness_proc *start_lookupd(void)
{
    return start_lookupd_args(NULL);
}

static void stop_lookupd(struct harness_proc *p)
{
    ck_assert_int_eq(harness_stop(p, SIGTERM), 0);
}

/* Connects and sends the V1 magic. */
static int v1_connect(struct harness_proc *p)
{
    int fd = harness_connect(harness_port(p, "TCP"));
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(harness_tcp_send(fd, "  V1", 4), 0);
    return fd;
}

/* Reads one V1 reply; fails the test if none arrives. Caller frees. */
static char *v1_read(int fd)
{
    char *data;
    size_t len;
    int rc = harness_tcp_read_v1(fd, &data, &len, IO_MS);
    ck_assert_msg(rc == 0, "no V1 reply (rc %d)", rc);
    return data;
}

/* Sends "<line>\n" and returns the reply (caller frees). */
static char *v1_cmd(int fd, const char *line)
{
    ck_assert_int_eq(harness_tcp_send_str(fd, line), 0);
    ck_assert_int_eq(harness_tcp_send_str(fd, "\n"), 0);
    return v1_read(fd);
}

static void v1_expect(int fd, const char *line, const char *want)
{
    char *got = v1_cmd(fd, line);
    ck_assert_str_eq(got, want);
    free(got);
}

/* Sends the command and expects the error reply followed by the connection closing. */
static void v1_expect_fatal(int fd, const char *line, const char *want)
{
    v1_expect(fd, line, want);
    ck_assert_msg(harness_tcp_wait_closed(fd, IO_MS), "connection not closed after %s", want);
    close(fd);
}

static char *v1_identify(int fd, const char *json)
{
    ck_assert_int_eq(harness_tcp_send_str(fd, "IDENTIFY\n"), 0);
    ck_assert_int_eq(harness_tcp_send_sized(fd, json, strlen(json)), 0);
    return v1_read(fd);
}

/* A connection identified as an nsqd. */
static int nsqd_connect(struct harness_proc *p, const char *identify)
{
    int fd = v1_connect(p);
    char *reply = v1_identify(fd, identify);
    ck_assert_msg(reply[0] == '{', "IDENTIFY failed: %s", reply);
    free(reply);
    return fd;
}

static char *read_recorded(const char *name)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s%s", RECORDED_DIR, name);
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    char *buf = calloc(1, 1 << 20);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    fclose(f);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    return buf;
}

/* GET/POST; asserts the status; returns the body (caller frees). */
static char *http_expect(struct harness_proc *p, const char *method, const char *path, long status)
{
    struct harness_response r;
    int rc = harness_http(method, harness_port(p, "HTTP"), path, NULL, 0, &r);
    ck_assert_msg(rc == 0, "%s %s: transport error", method, path);
    ck_assert_msg(r.status == status, "%s %s: status %ld, want %ld, body %s", method, path,
                  r.status, status, r.body);
    char *body = r.body;
    r.body = NULL;
    harness_response_free(&r);
    return body;
}

static void http_expect_body(struct harness_proc *p, const char *method, const char *path,
                             long status, const char *want)
{
    char *body = http_expect(p, method, path, status);
    ck_assert_msg(strcmp(body, want) == 0, "%s %s: body %s, want %s", method, path, body, want);
    free(body);
}

static cJSON *http_json(struct harness_proc *p, const char *path)
{
    char *body = http_expect(p, "GET", path, 200);
    cJSON *j = cJSON_Parse(body);
    ck_assert_msg(j != NULL, "GET %s: not JSON: %s", path, body);
    free(body);
    return j;
}

/* Same JSON type (numbers, strings, bools, null, arrays, objects). */
static bool same_type(const cJSON *a, const cJSON *b)
{
    return (a->type & 0xff) == (b->type & 0xff) || (cJSON_IsBool(a) && cJSON_IsBool(b));
}

/*
 * Shape comparison: objects must have the same keys in the same order with values of the same
 * shape; arrays are compared element type against the first recorded element (when both sides
 * have one). `dynamic_keys` relaxes object key names at the top level (for /debug).
 */
static bool same_shape(const cJSON *got, const cJSON *want, char *why, size_t whylen)
{
    if (!same_type(got, want)) {
        snprintf(why, whylen, "type of %s differs", got->string ? got->string : "(value)");
        return false;
    }
    if (cJSON_IsObject(want)) {
        const cJSON *g = got->child, *w = want->child;
        for (; g != NULL && w != NULL; g = g->next, w = w->next) {
            if (strcmp(g->string, w->string) != 0) {
                snprintf(why, whylen, "key %s where upstream has %s", g->string, w->string);
                return false;
            }
            if (!same_shape(g, w, why, whylen))
                return false;
        }
        if (g != NULL || w != NULL) {
            snprintf(why, whylen, "key count differs at %s", g != NULL ? g->string : w->string);
            return false;
        }
    } else if (cJSON_IsArray(want)) {
        if (want->child != NULL)
            for (const cJSON *g = got->child; g != NULL; g = g->next)
                if (!same_shape(g, want->child, why, whylen))
                    return false;
    }
    return true;
}

static void assert_shape(const cJSON *got, const char *recorded)
{
    char *text = read_recorded(recorded);
    cJSON *want = cJSON_Parse(text);
    ck_assert_msg(want != NULL, "recorded %s is not JSON", recorded);
    char why[256] = "";
    char *g = cJSON_PrintUnformatted(got);
    ck_assert_msg(same_shape(got, want, why, sizeof(why)), "%s: %s\n got  %s\n want %s", recorded,
                  why, g, text);
    free(g);
    cJSON_Delete(want);
    free(text);
}

static int array_size(const cJSON *obj, const char *key)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(obj, key);
    ck_assert_msg(cJSON_IsArray(a), "%s is not an array", key);
    return cJSON_GetArraySize(a);
}

static bool array_has(const cJSON *obj, const char *key, const char *value)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(obj, key), *e;
    cJSON_ArrayForEach(e,
                       a) if (cJSON_IsString(e) && strcmp(e->valuestring, value) == 0) return true;
    return false;
}

/* Number of producers /lookup?topic=... reports (-1 on 404). */
struct lookup_count {
    struct harness_proc *p;
    const char *topic;
    int want;
};

static int lookup_producers(struct harness_proc *p, const char *topic)
{
    char path[256];
    struct harness_response r;
    snprintf(path, sizeof(path), "/lookup?topic=%s", topic);
    ck_assert_int_eq(harness_http("GET", harness_port(p, "HTTP"), path, NULL, 0, &r), 0);
    int n = -1;
    if (r.status == 200) {
        cJSON *j = cJSON_Parse(r.body);
        ck_assert_ptr_nonnull(j);
        n = array_size(j, "producers");
        cJSON_Delete(j);
    }
    harness_response_free(&r);
    return n;
}

static bool lookup_count_is(void *arg)
{
    struct lookup_count *c = arg;
    return lookup_producers(c->p, c->topic) == c->want;
}

static void await_lookup(struct harness_proc *p, const char *topic, int want)
{
    struct lookup_count c = {p, topic, want};
    ck_assert_msg(harness_wait_until(lookup_count_is, &c, AWAIT_MS),
                  "/lookup?topic=%s never had %d producers (has %d)", topic, want,
                  lookup_producers(p, topic));
}

static int node_count(struct harness_proc *p)
{
    cJSON *j = http_json(p, "/nodes");
    int n = array_size(j, "producers");
    cJSON_Delete(j);
    return n;
}

struct node_count_arg {
    struct harness_proc *p;
    int want;
};

static bool node_count_is(void *arg)
{
    struct node_count_arg *a = arg;
    return node_count(a->p) == a->want;
}

/* ---- tests: basics ---- */

START_TEST(test_ping_info_headers)
{
    struct harness_proc *p = start_lookupd();
    struct harness_response r;
    ck_assert_int_eq(harness_http("GET", harness_port(p, "HTTP"), "/ping", NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "OK");
    char *h = harness_response_header(&r, "X-NSQ-Content-Type");
    ck_assert_ptr_null(h); /* PlainText encoder */
    harness_response_free(&r);

    ck_assert_int_eq(harness_http("GET", harness_port(p, "HTTP"), "/info", NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 200);
    char *want = read_recorded("lookupd-info.json");
    ck_assert_str_eq(r.body, want);
    free(want);
    h = harness_response_header(&r, "X-NSQ-Content-Type");
    ck_assert_ptr_nonnull(h);
    ck_assert_str_eq(h, "nsq; version=1.0");
    free(h);
    h = harness_response_header(&r, "Content-Type");
    ck_assert_ptr_nonnull(h);
    ck_assert_str_eq(h, "application/json; charset=utf-8");
    free(h);
    harness_response_free(&r);

    /* error answers carry the same headers */
    ck_assert_int_eq(
            harness_http("GET", harness_port(p, "HTTP"), "/lookup?topic=none", NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 404);
    want = read_recorded("lookupd-lookup-notfound.json");
    ck_assert_str_eq(r.body, want);
    free(want);
    h = harness_response_header(&r, "X-NSQ-Content-Type");
    ck_assert_ptr_nonnull(h);
    free(h);
    harness_response_free(&r);
    stop_lookupd(p);
}
END_TEST

START_TEST(test_identify_reply)
{
    struct harness_proc *p = start_lookupd();
    int fd = v1_connect(p);
    v1_expect(fd, "PING", "OK"); /* PING works before IDENTIFY */
    char *reply = v1_identify(fd, NSQD_IDENTIFY);
    char host[256];
    gethostname(host, sizeof(host));
    host[sizeof(host) - 1] = '\0';
    char want[1024];
    snprintf(want, sizeof(want),
             "{\"broadcast_address\":\"lookupd.test\",\"hostname\":\"%s\",\"http_port\":%d,"
             "\"tcp_port\":%d,\"version\":\"1.3.0\"}",
             host, harness_port(p, "HTTP"), harness_port(p, "TCP"));
    ck_assert_str_eq(reply, want);
    free(reply);
    v1_expect(fd, "PING", "OK");
    close(fd);
    stop_lookupd(p);
}
END_TEST

/* Registers as the recording did: orders/billing, orders/audit, events. */
static int register_like_recording(struct harness_proc *p)
{
    int fd = nsqd_connect(p, NSQD_IDENTIFY);
    v1_expect(fd, "REGISTER orders billing", "OK");
    v1_expect(fd, "REGISTER orders audit", "OK");
    v1_expect(fd, "REGISTER events", "OK");
    return fd;
}

START_TEST(test_read_endpoints_match_upstream)
{
    struct harness_proc *p = start_lookupd();
    int fd = register_like_recording(p);
    char peer[64];
    struct sockaddr_in sa;
    socklen_t slen = sizeof(sa);
    getsockname(fd, (struct sockaddr *)&sa, &slen);
    snprintf(peer, sizeof(peer), "127.0.0.1:%d", ntohs(sa.sin_port));

    cJSON *j = http_json(p, "/lookup?topic=orders");
    assert_shape(j, "lookupd-lookup.json");
    ck_assert_int_eq(array_size(j, "channels"), 2);
    ck_assert(array_has(j, "channels", "billing") && array_has(j, "channels", "audit"));
    cJSON_Delete(j);
    char want[2048];
    snprintf(want, sizeof(want),
             "{\"channels\":[\"billing\",\"audit\"],\"producers\":[{\"remote_address\":\"%s\","
             "\"hostname\":\"node-a\",\"broadcast_address\":\"127.0.0.1\",\"tcp_port\":44150,"
             "\"http_port\":44151,\"version\":\"1.3.0\"}]}",
             peer);
    http_expect_body(p, "GET", "/lookup?topic=orders", 200, want);

    j = http_json(p, "/topics");
    assert_shape(j, "lookupd-topics.json");
    ck_assert_int_eq(array_size(j, "topics"), 2);
    ck_assert(array_has(j, "topics", "orders") && array_has(j, "topics", "events"));
    cJSON_Delete(j);

    j = http_json(p, "/channels?topic=orders");
    assert_shape(j, "lookupd-channels.json");
    ck_assert_int_eq(array_size(j, "channels"), 2);
    cJSON_Delete(j);
    http_expect_body(p, "GET", "/channels?topic=unknown", 200, "{\"channels\":[]}");
    http_expect_body(p, "GET", "/channels?topic=events", 200, "{\"channels\":[]}");

    j = http_json(p, "/nodes");
    assert_shape(j, "lookupd-nodes.json");
    cJSON *node = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "producers"), 0);
    ck_assert_ptr_nonnull(node);
    ck_assert_str_eq(cJSON_GetObjectItem(node, "remote_address")->valuestring, peer);
    ck_assert_int_eq(array_size(node, "topics"), 2);
    ck_assert_int_eq(array_size(node, "tombstones"), 2);
    ck_assert(array_has(node, "topics", "orders") && array_has(node, "topics", "events"));
    cJSON_Delete(j);

    /* /debug: the same keys as the recording, each with one producer of the recorded shape */
    j = http_json(p, "/debug");
    char *text = read_recorded("lookupd-debug.json");
    cJSON *rec = cJSON_Parse(text);
    free(text);
    const cJSON *g = j->child, *w = rec->child;
    for (; g != NULL && w != NULL; g = g->next, w = w->next) {
        ck_assert_str_eq(g->string, w->string); /* sorted like Go's map encoding */
        char why[256] = "";
        ck_assert_msg(same_shape(g, w, why, sizeof(why)), "/debug %s: %s", g->string, why);
        ck_assert_int_eq(cJSON_GetArraySize(g), 1);
        cJSON *e = cJSON_GetArrayItem(g, 0);
        ck_assert_str_eq(cJSON_GetObjectItem(e, "id")->valuestring, peer);
        ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(e, "tombstoned")));
    }
    ck_assert_ptr_null(g);
    ck_assert_ptr_null(w);
    /* the exact Go zero-time value for "never tombstoned" */
    char *raw = http_expect(p, "GET", "/debug", 200);
    ck_assert_ptr_nonnull(strstr(raw, "\"tombstoned_at\":-6795364578871345152,"));
    free(raw);
    cJSON_Delete(rec);
    cJSON_Delete(j);
    close(fd);
    stop_lookupd(p);
}
END_TEST

START_TEST(test_empty_lists)
{
    struct harness_proc *p = start_lookupd();
    http_expect_body(p, "GET", "/topics", 200, "{\"topics\":[]}");
    http_expect_body(p, "GET", "/nodes", 200, "{\"producers\":[]}");
    http_expect_body(p, "GET", "/debug", 200, "{}");
    int fd = nsqd_connect(p, NSQD_IDENTIFY);
    cJSON *j = http_json(p, "/nodes");
    cJSON *node = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "producers"), 0);
    ck_assert_ptr_nonnull(node);
    ck_assert_int_eq(array_size(node, "topics"), 0);
    ck_assert_int_eq(array_size(node, "tombstones"), 0);
    cJSON_Delete(j);
    http_expect_body(p, "POST", "/topic/create?topic=t1", 200, "");
    http_expect_body(p, "GET", "/lookup?topic=t1", 200, "{\"channels\":[],\"producers\":[]}");
    close(fd);
    stop_lookupd(p);
}
END_TEST

/* ---- tests: V1 protocol errors ---- */

START_TEST(test_v1_bad_magic)
{
    struct harness_proc *p = start_lookupd();
    int fd = harness_connect(harness_port(p, "TCP"));
    ck_assert_int_eq(harness_tcp_send(fd, "  V2", 4), 0);
    char *reply = v1_read(fd);
    ck_assert_str_eq(reply, "E_BAD_PROTOCOL");
    free(reply);
    ck_assert(harness_tcp_wait_closed(fd, IO_MS));
    close(fd);
    stop_lookupd(p);
}
END_TEST

START_TEST(test_v1_not_identified)
{
    struct harness_proc *p = start_lookupd();
    v1_expect_fatal(v1_connect(p), "REGISTER topic", "E_INVALID client must IDENTIFY");
    v1_expect_fatal(v1_connect(p), "UNREGISTER topic chan", "E_INVALID client must IDENTIFY");
    stop_lookupd(p);
}
END_TEST

START_TEST(test_v1_bad_params)
{
    struct harness_proc *p = start_lookupd();
    v1_expect_fatal(nsqd_connect(p, NSQD_IDENTIFY), "REGISTER",
                    "E_INVALID REGISTER insufficient number of params");
    v1_expect_fatal(nsqd_connect(p, NSQD_IDENTIFY), "UNREGISTER",
                    "E_INVALID UNREGISTER insufficient number of params");
    v1_expect_fatal(nsqd_connect(p, NSQD_IDENTIFY), "REGISTER bad!topic",
                    "E_BAD_TOPIC REGISTER topic name 'bad!topic' is not valid");
    v1_expect_fatal(nsqd_connect(p, NSQD_IDENTIFY), "UNREGISTER bad!topic",
                    "E_BAD_TOPIC UNREGISTER topic name 'bad!topic' is not valid");
    v1_expect_fatal(nsqd_connect(p, NSQD_IDENTIFY), "REGISTER good bad:chan",
                    "E_BAD_CHANNEL REGISTER channel name 'bad:chan' is not valid");
    v1_expect_fatal(nsqd_connect(p, NSQD_IDENTIFY), "UNREGISTER good bad:chan",
                    "E_BAD_CHANNEL UNREGISTER channel name 'bad:chan' is not valid");
    v1_expect_fatal(nsqd_connect(p, NSQD_IDENTIFY),
                    "REGISTER aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                    "E_BAD_TOPIC REGISTER topic name "
                    "'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' is not "
                    "valid");
    /* a double space makes an empty topic name, as upstream's split on single spaces does */
    v1_expect_fatal(nsqd_connect(p, NSQD_IDENTIFY), "REGISTER  t",
                    "E_BAD_TOPIC REGISTER topic name '' is not valid");
    /* a long name is quoted whole */
    char line[3000], want[3100];
    memset(line, 0, sizeof(line));
    memcpy(line, "REGISTER ", 9);
    memset(line + 9, 'n', 2000);
    snprintf(want, sizeof(want), "E_BAD_TOPIC REGISTER topic name '%s' is not valid", line + 9);
    v1_expect_fatal(nsqd_connect(p, NSQD_IDENTIFY), line, want);
    v1_expect_fatal(v1_connect(p), "FOO bar", "E_INVALID invalid command FOO");
    v1_expect_fatal(v1_connect(p), "", "E_INVALID invalid command ");
    v1_expect_fatal(v1_connect(p), "register t", "E_INVALID invalid command register");
    /* nothing got registered by the failed commands */
    http_expect_body(p, "GET", "/topics", 200, "{\"topics\":[]}");
    stop_lookupd(p);
}
END_TEST

START_TEST(test_v1_line_trimmed)
{
    struct harness_proc *p = start_lookupd();
    int fd = nsqd_connect(p, NSQD_IDENTIFY);
    v1_expect(fd, "  REGISTER spaced chan \r", "OK");
    v1_expect(fd, "PING\r", "OK");
    http_expect_body(p, "GET", "/channels?topic=spaced", 200, "{\"channels\":[\"chan\"]}");
    close(fd);
    stop_lookupd(p);
}
END_TEST

static void identify_expect_fatal(struct harness_proc *p, const char *json, const char *want)
{
    int fd = v1_connect(p);
    char *reply = v1_identify(fd, json);
    ck_assert_msg(strcmp(reply, want) == 0, "IDENTIFY %s: %s, want %s", json, reply, want);
    free(reply);
    ck_assert(harness_tcp_wait_closed(fd, IO_MS));
    close(fd);
}

START_TEST(test_v1_identify_errors)
{
    struct harness_proc *p = start_lookupd();
    identify_expect_fatal(p, "{not json", "E_BAD_BODY IDENTIFY failed to decode JSON body");
    identify_expect_fatal(p, "", "E_BAD_BODY IDENTIFY failed to decode JSON body");
    identify_expect_fatal(p, "[1,2]", "E_BAD_BODY IDENTIFY failed to decode JSON body");
    identify_expect_fatal(p, "{\"tcp_port\":\"x\"}",
                          "E_BAD_BODY IDENTIFY failed to decode JSON body");
    /* Go's int fields take neither a fraction nor an exponent, nor a string */
    identify_expect_fatal(p,
                          "{\"broadcast_address\":\"h\",\"http_port\":1,\"tcp_port\":4150.0,"
                          "\"version\":\"1.3.0\"}",
                          "E_BAD_BODY IDENTIFY failed to decode JSON body");
    identify_expect_fatal(p,
                          "{\"broadcast_address\":\"h\",\"HTTP_PORT\":1e3,\"tcp_port\":4150,"
                          "\"version\":\"1.3.0\"}",
                          "E_BAD_BODY IDENTIFY failed to decode JSON body");
    identify_expect_fatal(p, "{\"version\":1}", "E_BAD_BODY IDENTIFY failed to decode JSON body");
    identify_expect_fatal(p, "{\"a\":1} x", "E_BAD_BODY IDENTIFY failed to decode JSON body");
    identify_expect_fatal(p, "{}", "E_BAD_BODY IDENTIFY missing fields");
    identify_expect_fatal(p, "null", "E_BAD_BODY IDENTIFY missing fields");
    identify_expect_fatal(p,
                          "{\"broadcast_address\":\"h\",\"http_port\":1,\"tcp_port\":0,"
                          "\"version\":\"1.3.0\"}",
                          "E_BAD_BODY IDENTIFY missing fields");
    identify_expect_fatal(p,
                          "{\"broadcast_address\":\"\",\"http_port\":1,\"tcp_port\":2,"
                          "\"version\":\"1.3.0\"}",
                          "E_BAD_BODY IDENTIFY missing fields");
    identify_expect_fatal(p, "{\"broadcast_address\":\"h\",\"http_port\":1,\"tcp_port\":2}",
                          "E_BAD_BODY IDENTIFY missing fields");
    identify_expect_fatal(p, "{\"broadcast_address\":\"h\",\"tcp_port\":2,\"version\":\"1.3.0\"}",
                          "E_BAD_BODY IDENTIFY missing fields");

    /* unknown members (nested too) are ignored and names match regardless of case, as in Go */
    int ok = v1_connect(p);
    char *reply = v1_identify(
            ok, "{\"Broadcast_Address\":\"127.0.0.1\",\"extra\":{\"tcp_port\":1.5,\"x\":[1,\"}\"]},"
                "\"TCP_PORT\":4150,\"http_port\":4151,\"version\":\"1.3.0\",\"hostname\":null}");
    ck_assert_msg(reply[0] == '{', "%s", reply);
    free(reply);
    close(ok);

    /* IDENTIFY twice */
    int fd = nsqd_connect(p, NSQD_IDENTIFY);
    v1_expect_fatal(fd, "IDENTIFY", "E_INVALID cannot IDENTIFY again");

    /* absurd and negative body sizes */
    uint32_t sizes[] = {htonl(6u * 1024 * 1024), htonl(0x80000000u), htonl(0xffffffffu)};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        fd = v1_connect(p);
        ck_assert_int_eq(harness_tcp_send_str(fd, "IDENTIFY\n"), 0);
        ck_assert_int_eq(harness_tcp_send(fd, &sizes[i], 4), 0);
        reply = v1_read(fd);
        ck_assert_str_eq(reply, "E_BAD_BODY IDENTIFY failed to read body size");
        free(reply);
        ck_assert(harness_tcp_wait_closed(fd, IO_MS));
        close(fd);
    }
    /* a failed connection registered nothing */
    http_expect_body(p, "GET", "/nodes", 200, "{\"producers\":[]}");
    stop_lookupd(p);
}
END_TEST

START_TEST(test_v1_pipelined_and_split)
{
    struct harness_proc *p = start_lookupd();
    int fd = harness_connect(harness_port(p, "TCP"));
    /* magic, IDENTIFY and two REGISTERs in one write */
    char buf[1024];
    size_t n = 0;
    memcpy(buf, "  V1IDENTIFY\n", 13);
    n = 13;
    uint32_t be = htonl((uint32_t)strlen(NSQD_IDENTIFY));
    memcpy(buf + n, &be, 4);
    n += 4;
    memcpy(buf + n, NSQD_IDENTIFY, strlen(NSQD_IDENTIFY));
    n += strlen(NSQD_IDENTIFY);
    n += (size_t)sprintf(buf + n, "REGISTER a x\nREGISTER b\n");
    ck_assert_int_eq(harness_tcp_send(fd, buf, n), 0);
    char *r = v1_read(fd);
    ck_assert_msg(r[0] == '{', "%s", r);
    free(r);
    r = v1_read(fd);
    ck_assert_str_eq(r, "OK");
    free(r);
    r = v1_read(fd);
    ck_assert_str_eq(r, "OK");
    free(r);
    /* a command split over several writes */
    ck_assert_int_eq(harness_tcp_send_str(fd, "REGIS"), 0);
    ck_assert_int_eq(harness_tcp_send_str(fd, "TER c"), 0);
    ck_assert_int_eq(harness_tcp_send_str(fd, " y\n"), 0);
    r = v1_read(fd);
    ck_assert_str_eq(r, "OK");
    free(r);
    cJSON *j = http_json(p, "/topics");
    ck_assert_int_eq(array_size(j, "topics"), 3);
    cJSON_Delete(j);
    close(fd);
    stop_lookupd(p);
}
END_TEST

/* ---- tests: registration semantics ---- */

START_TEST(test_unregister_ephemeral)
{
    struct harness_proc *p = start_lookupd();
    int fd = nsqd_connect(p, NSQD_IDENTIFY);
    v1_expect(fd, "REGISTER t#ephemeral c#ephemeral", "OK");
    v1_expect(fd, "REGISTER t#ephemeral keep", "OK");
    v1_expect(fd, "REGISTER durable c#ephemeral", "OK");
    v1_expect(fd, "REGISTER durable plain", "OK");

    /* an ephemeral channel key goes with its last producer; a normal one stays */
    v1_expect(fd, "UNREGISTER t#ephemeral c#ephemeral", "OK");
    http_expect_body(p, "GET", "/channels?topic=t%23ephemeral", 200, "{\"channels\":[\"keep\"]}");
    v1_expect(fd, "UNREGISTER durable plain", "OK");
    v1_expect(fd, "UNREGISTER durable c#ephemeral", "OK");
    http_expect_body(p, "GET", "/channels?topic=durable", 200, "{\"channels\":[\"plain\"]}");

    /* a topic UNREGISTER drops the peer from the topic's channels too; an ephemeral topic key
       goes with its last producer, a durable one stays with no producers */
    v1_expect(fd, "UNREGISTER t#ephemeral", "OK");
    v1_expect(fd, "UNREGISTER durable", "OK");
    http_expect_body(p, "GET", "/topics", 200, "{\"topics\":[\"durable\"]}");
    http_expect_body(p, "GET", "/lookup?topic=durable", 200,
                     "{\"channels\":[\"plain\"],\"producers\":[]}");
    http_expect_body(p, "GET", "/lookup?topic=t%23ephemeral", 404,
                     "{\"message\":\"TOPIC_NOT_FOUND\"}");
    /* the channel "keep" lost its producer but its key remains */
    http_expect_body(p, "GET", "/channels?topic=t%23ephemeral", 200, "{\"channels\":[\"keep\"]}");
    char *dbg = http_expect(p, "GET", "/debug", 200);
    ck_assert_ptr_null(strstr(dbg, "channel:t#ephemeral:keep"));
    ck_assert_ptr_nonnull(strstr(dbg, "client::"));
    free(dbg);

    /* UNREGISTER of something never registered is fine */
    v1_expect(fd, "UNREGISTER never", "OK");
    v1_expect(fd, "UNREGISTER never#ephemeral c", "OK");
    close(fd);
    stop_lookupd(p);
}
END_TEST

START_TEST(test_ephemeral_topic_kept_while_other_producer)
{
    struct harness_proc *p = start_lookupd();
    int a = nsqd_connect(p, NSQD_IDENTIFY);
    int b = nsqd_connect(p, NSQD_IDENTIFY_B);
    v1_expect(a, "REGISTER e#ephemeral", "OK");
    v1_expect(b, "REGISTER e#ephemeral", "OK");
    ck_assert_int_eq(lookup_producers(p, "e%23ephemeral"), 2);
    v1_expect(a, "UNREGISTER e#ephemeral", "OK");
    ck_assert_int_eq(lookup_producers(p, "e%23ephemeral"), 1);
    v1_expect(b, "UNREGISTER e#ephemeral", "OK");
    ck_assert_int_eq(lookup_producers(p, "e%23ephemeral"), -1);
    close(a);
    close(b);
    stop_lookupd(p);
}
END_TEST

START_TEST(test_disconnect_removes_registrations)
{
    struct harness_proc *p = start_lookupd();
    int a = nsqd_connect(p, NSQD_IDENTIFY);
    int b = nsqd_connect(p, NSQD_IDENTIFY_B);
    v1_expect(a, "REGISTER shared ch", "OK");
    v1_expect(b, "REGISTER shared ch", "OK");
    v1_expect(a, "REGISTER only-a", "OK");
    ck_assert_int_eq(lookup_producers(p, "shared"), 2);
    ck_assert_int_eq(node_count(p), 2);
    close(a);
    await_lookup(p, "shared", 1);
    await_lookup(p, "only-a", 0); /* the key stays */
    struct node_count_arg nc = {p, 1};
    ck_assert(harness_wait_until(node_count_is, &nc, AWAIT_MS));
    cJSON *j = http_json(p, "/lookup?topic=shared");
    cJSON *prod = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "producers"), 0);
    ck_assert_str_eq(cJSON_GetObjectItem(prod, "hostname")->valuestring, "node-b");
    cJSON_Delete(j);
    close(b);
    await_lookup(p, "shared", 0);
    nc.want = 0;
    ck_assert(harness_wait_until(node_count_is, &nc, AWAIT_MS));
    http_expect_body(p, "GET", "/debug", 200, "{}");
    stop_lookupd(p);
}
END_TEST

START_TEST(test_reregister_is_idempotent)
{
    struct harness_proc *p = start_lookupd();
    int fd = nsqd_connect(p, NSQD_IDENTIFY);
    v1_expect(fd, "REGISTER t c", "OK");
    v1_expect(fd, "REGISTER t c", "OK");
    v1_expect(fd, "REGISTER t", "OK");
    ck_assert_int_eq(lookup_producers(p, "t"), 1);
    cJSON *j = http_json(p, "/nodes");
    cJSON *node = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "producers"), 0);
    ck_assert_int_eq(array_size(node, "topics"), 1);
    cJSON_Delete(j);
    close(fd);
    stop_lookupd(p);
}
END_TEST

START_TEST(test_tombstone)
{
    const char *extra[] = {"--tombstone-lifetime=1s", NULL};
    struct harness_proc *p = start_lookupd_args(extra);
    int a = nsqd_connect(p, NSQD_IDENTIFY);
    int b = nsqd_connect(p, NSQD_IDENTIFY_B);
    v1_expect(a, "REGISTER t", "OK");
    v1_expect(a, "REGISTER other", "OK");
    v1_expect(b, "REGISTER t", "OK");
    ck_assert_int_eq(lookup_producers(p, "t"), 2);

    http_expect_body(p, "POST", "/topic/tombstone?topic=t&node=127.0.0.1:44151", 200, "");
    int64_t tombstoned = harness_now_ms();
    /* a node that matches nothing is not an error */
    http_expect_body(p, "POST", "/topic/tombstone?topic=t&node=10.0.0.1:1", 200, "");
    http_expect_body(p, "POST", "/topic/tombstone?topic=nope&node=127.0.0.1:44151", 200, "");

    cJSON *j = http_json(p, "/lookup?topic=t");
    ck_assert_int_eq(array_size(j, "producers"), 1);
    cJSON *prod = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "producers"), 0);
    ck_assert_str_eq(cJSON_GetObjectItem(prod, "hostname")->valuestring, "node-b");
    cJSON_Delete(j);
    /* re-REGISTER on the same connection does not clear the tombstone */
    v1_expect(a, "REGISTER t", "OK");
    /* /nodes still lists the node, with the tombstone flag on that topic only */
    j = http_json(p, "/nodes");
    ck_assert_int_eq(array_size(j, "producers"), 2);
    cJSON *node;
    cJSON_ArrayForEach(node, cJSON_GetObjectItem(j, "producers"))
    {
        if (strcmp(cJSON_GetObjectItem(node, "hostname")->valuestring, "node-a") != 0)
            continue;
        cJSON *topics = cJSON_GetObjectItem(node, "topics");
        cJSON *tombs = cJSON_GetObjectItem(node, "tombstones");
        ck_assert_int_eq(cJSON_GetArraySize(topics), 2);
        for (int i = 0; i < 2; i++) {
            bool is_t = strcmp(cJSON_GetArrayItem(topics, i)->valuestring, "t") == 0;
            ck_assert_int_eq(cJSON_IsTrue(cJSON_GetArrayItem(tombs, i)), is_t);
        }
    }
    cJSON_Delete(j);
    char *dbg = http_expect(p, "GET", "/debug", 200);
    ck_assert_ptr_nonnull(strstr(dbg, "\"tombstoned\":true"));
    free(dbg);
    ck_assert_int_eq(lookup_producers(p, "other"), 1); /* per topic */

    /* the tombstone expires after its lifetime */
    await_lookup(p, "t", 2);
    ck_assert_int_ge(harness_now_ms() - tombstoned, 900);
    close(a);
    close(b);
    stop_lookupd(p);
}
END_TEST

START_TEST(test_tombstone_new_connection_is_fresh)
{
    struct harness_proc *p = start_lookupd(); /* default 45 s lifetime */
    int a = nsqd_connect(p, NSQD_IDENTIFY);
    v1_expect(a, "REGISTER t", "OK");
    http_expect_body(p, "POST", "/topic/tombstone?topic=t&node=127.0.0.1:44151", 200, "");
    ck_assert_int_eq(lookup_producers(p, "t"), 0);
    close(a);
    await_lookup(p, "t", 0);
    a = nsqd_connect(p, NSQD_IDENTIFY);
    v1_expect(a, "REGISTER t", "OK");
    ck_assert_int_eq(lookup_producers(p, "t"), 1);
    close(a);
    stop_lookupd(p);
}
END_TEST

START_TEST(test_inactive_producer_timeout)
{
    const char *extra[] = {"--inactive-producer-timeout=700ms", NULL};
    struct harness_proc *p = start_lookupd_args(extra);
    int fd = nsqd_connect(p, NSQD_IDENTIFY);
    v1_expect(fd, "REGISTER t c", "OK");
    int64_t registered = harness_now_ms();
    ck_assert_int_eq(lookup_producers(p, "t"), 1);
    ck_assert_int_eq(node_count(p), 1);
    /* without PINGs the producer is filtered out of /lookup and /nodes (but not removed) */
    await_lookup(p, "t", 0);
    ck_assert_int_ge(harness_now_ms() - registered, 600);
    ck_assert_int_eq(node_count(p), 0);
    char *dbg = http_expect(p, "GET", "/debug", 200);
    ck_assert_ptr_nonnull(strstr(dbg, "\"topic:t:\""));
    free(dbg);
    /* a PING makes it active again */
    v1_expect(fd, "PING", "OK");
    ck_assert_int_eq(lookup_producers(p, "t"), 1);
    ck_assert_int_eq(node_count(p), 1);
    close(fd);
    stop_lookupd(p);
}
END_TEST

/* ---- tests: administrative endpoints and HTTP errors ---- */

START_TEST(test_http_topic_channel_admin)
{
    struct harness_proc *p = start_lookupd();
    http_expect_body(p, "POST", "/topic/create?topic=a", 200, "");
    http_expect_body(p, "POST", "/topic/create?topic=a", 200, "");
    http_expect_body(p, "POST", "/channel/create?topic=b&channel=c1", 200, "");
    http_expect_body(p, "POST", "/channel/create?topic=b&channel=c2", 200, "");
    http_expect_body(p, "GET", "/topics", 200, "{\"topics\":[\"a\",\"b\"]}");
    http_expect_body(p, "GET", "/lookup?topic=b", 200,
                     "{\"channels\":[\"c1\",\"c2\"],\"producers\":[]}");
    http_expect_body(p, "POST", "/channel/delete?topic=b&channel=c1", 200, "");
    http_expect_body(p, "POST", "/channel/delete?topic=b&channel=c1", 404,
                     "{\"message\":\"CHANNEL_NOT_FOUND\"}");
    http_expect_body(p, "GET", "/channels?topic=b", 200, "{\"channels\":[\"c2\"]}");
    http_expect_body(p, "POST", "/topic/delete?topic=b", 200, "");
    http_expect_body(p, "POST", "/topic/delete?topic=never", 200, "");
    http_expect_body(p, "GET", "/topics", 200, "{\"topics\":[\"a\"]}");
    http_expect_body(p, "GET", "/channels?topic=b", 200, "{\"channels\":[]}");
    http_expect_body(p, "GET", "/lookup?topic=b", 404, "{\"message\":\"TOPIC_NOT_FOUND\"}");

    /* topic/delete removes keys that have producers too; the nsqd keeps its connection */
    int fd = nsqd_connect(p, NSQD_IDENTIFY);
    v1_expect(fd, "REGISTER live ch", "OK");
    http_expect_body(p, "POST", "/topic/delete?topic=live", 200, "");
    http_expect_body(p, "GET", "/lookup?topic=live", 404, "{\"message\":\"TOPIC_NOT_FOUND\"}");
    cJSON *j = http_json(p, "/nodes");
    cJSON *node = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "producers"), 0);
    ck_assert_int_eq(array_size(node, "topics"), 0);
    cJSON_Delete(j);
    v1_expect(fd, "REGISTER live ch", "OK");
    ck_assert_int_eq(lookup_producers(p, "live"), 1);
    close(fd);
    stop_lookupd(p);
}
END_TEST

START_TEST(test_http_errors)
{
    struct harness_proc *p = start_lookupd();
#define ERR(code) "{\"message\":\"" code "\"}"
    http_expect_body(p, "GET", "/lookup", 400, ERR("MISSING_ARG_TOPIC"));
    http_expect_body(p, "GET", "/lookup?topic=missing", 404, ERR("TOPIC_NOT_FOUND"));
    http_expect_body(p, "GET", "/channels", 400, ERR("MISSING_ARG_TOPIC"));
    http_expect_body(p, "POST", "/topic/create", 400, ERR("MISSING_ARG_TOPIC"));
    http_expect_body(p, "POST", "/topic/create?topic=bad!", 400, ERR("INVALID_ARG_TOPIC"));
    http_expect_body(p, "POST", "/topic/delete", 400, ERR("MISSING_ARG_TOPIC"));
    http_expect_body(p, "POST", "/topic/tombstone", 400, ERR("MISSING_ARG_TOPIC"));
    http_expect_body(p, "POST", "/topic/tombstone?topic=t", 400, ERR("MISSING_ARG_NODE"));
    const char *chan_paths[] = {"/channel/create", "/channel/delete"};
    for (size_t i = 0; i < 2; i++) {
        char path[128];
        snprintf(path, sizeof(path), "%s", chan_paths[i]);
        http_expect_body(p, "POST", path, 400, ERR("MISSING_ARG_TOPIC"));
        snprintf(path, sizeof(path), "%s?topic=a*b&channel=c", chan_paths[i]);
        http_expect_body(p, "POST", path, 400, ERR("INVALID_ARG_TOPIC"));
        snprintf(path, sizeof(path), "%s?topic=t", chan_paths[i]);
        http_expect_body(p, "POST", path, 400, ERR("MISSING_ARG_CHANNEL"));
        snprintf(path, sizeof(path), "%s?topic=t&channel=c%%20d", chan_paths[i]);
        http_expect_body(p, "POST", path, 400, ERR("INVALID_ARG_CHANNEL"));
    }
    /* routing */
    http_expect_body(p, "GET", "/no/such/path", 404, ERR("NOT_FOUND"));
    http_expect_body(p, "POST", "/lookup?topic=t", 405, ERR("METHOD_NOT_ALLOWED"));
    http_expect_body(p, "GET", "/topic/create?topic=t", 405, ERR("METHOD_NOT_ALLOWED"));
    /* a malformed query string (Go's url.ParseQuery) */
    http_expect_body(p, "GET", "/lookup?topic=x&%zz", 400, ERR("INVALID_REQUEST"));
    http_expect_body(p, "GET", "/channels?topic=x&%zz", 400, ERR("INVALID_REQUEST"));
    http_expect_body(p, "POST", "/topic/create?topic=x&%zz", 400, ERR("INVALID_REQUEST"));
    http_expect_body(p, "POST", "/channel/create?topic=x&channel=y&%zz", 400,
                     ERR("INVALID_REQUEST"));
#undef ERR
    /* trailing slash and letter case redirect; OPTIONS lists the methods */
    free(http_expect(p, "GET", "/lookup/?topic=t", 301));
    free(http_expect(p, "GET", "/TOPICS", 301));
    free(http_expect(p, "POST", "/topic/create/?topic=t", 307));
    struct harness_response r;
    ck_assert_int_eq(harness_http("OPTIONS", harness_port(p, "HTTP"), "/nodes", NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 200);
    char *allow = harness_response_header(&r, "Allow");
    ck_assert_ptr_nonnull(allow);
    ck_assert_str_eq(allow, "GET, OPTIONS");
    free(allow);
    harness_response_free(&r);
    /* nothing was created by the failed requests */
    http_expect_body(p, "GET", "/topics", 200, "{\"topics\":[]}");
    stop_lookupd(p);
}
END_TEST

/* ---- tests: robustness and lifecycle ---- */

START_TEST(test_garbage_keeps_serving)
{
    struct harness_proc *p = start_lookupd();
    /* random bytes after a good magic */
    unsigned seed = 12345;
    for (int round = 0; round < 20; round++) {
        int fd = v1_connect(p);
        char buf[4096];
        for (size_t i = 0; i < sizeof(buf); i++)
            buf[i] = (char)(rand_r(&seed) & 0xff);
        harness_tcp_send(fd, buf, sizeof(buf));
        harness_tcp_wait_closed(fd, 200); /* may or may not close: it must just survive */
        close(fd);
    }
    /* garbage instead of a magic */
    int fd = harness_connect(harness_port(p, "TCP"));
    harness_tcp_send_str(fd, "GET / HTTP/1.1\r\n\r\n");
    char *r = v1_read(fd);
    ck_assert_str_eq(r, "E_BAD_PROTOCOL");
    free(r);
    close(fd);
    /* an endless line is cut off */
    fd = v1_connect(p);
    char *big = malloc(256 * 1024);
    memset(big, 'A', 256 * 1024);
    harness_tcp_send(fd, big, 256 * 1024);
    free(big);
    ck_assert(harness_tcp_wait_closed(fd, IO_MS));
    close(fd);
    /* a huge IDENTIFY announced and never sent, then the peer goes away */
    fd = v1_connect(p);
    uint32_t be = htonl(1000);
    harness_tcp_send_str(fd, "IDENTIFY\n");
    harness_tcp_send(fd, &be, 4);
    harness_tcp_send_str(fd, "{\"short\":");
    close(fd);
    /* many idle connections */
    int fds[50];
    for (int i = 0; i < 50; i++)
        fds[i] = v1_connect(p);
    for (int i = 0; i < 50; i++)
        close(fds[i]);
    /* garbage over HTTP */
    fd = harness_connect(harness_port(p, "HTTP"));
    harness_tcp_send_str(fd, "\x01\x02\x03 garbage\r\n\r\n");
    harness_tcp_wait_closed(fd, IO_MS);
    close(fd);

    /* still serving both protocols */
    http_expect_body(p, "GET", "/ping", 200, "OK");
    fd = nsqd_connect(p, NSQD_IDENTIFY);
    v1_expect(fd, "REGISTER alive", "OK");
    ck_assert_int_eq(lookup_producers(p, "alive"), 1);
    close(fd);
    ck_assert(harness_running(p));
    stop_lookupd(p);
}
END_TEST

START_TEST(test_oversize_http_body)
{
    struct harness_proc *p = start_lookupd();
    size_t len = 4 * 1024 * 1024;
    char *body = malloc(len);
    memset(body, 'x', len);
    struct harness_response r;
    int rc =
            harness_http("POST", harness_port(p, "HTTP"), "/topic/create?topic=big", body, len, &r);
    /* refused (413) or cut off; never accepted */
    ck_assert(rc != 0 || r.status == 413);
    harness_response_free(&r);
    free(body);
    http_expect_body(p, "GET", "/ping", 200, "OK");
    http_expect_body(p, "GET", "/topics", 200, "{\"topics\":[]}");
    stop_lookupd(p);
}
END_TEST

/* With few file descriptors, accept fails (EMFILE): the daemon must neither spin nor stop serving
   once descriptors are free again. */
START_TEST(test_fd_exhaustion)
{
    const char *prlimit = "/usr/bin/prlimit";
    if (access(prlimit, X_OK) != 0)
        return; /* util-linux not installed: nothing to drive the limit with */
    const char *args[] = {"--nofile=32:32", NSQLOOKUPD_BIN, "--tcp-address=127.0.0.1:0",
                          "--http-address=127.0.0.1:0", NULL};
    struct harness_proc *p = harness_start(prlimit, args, 2);
    ck_assert_ptr_nonnull(p);
    enum { NCONN = 60 };
    int fds[NCONN + 10];
    for (int i = 0; i < NCONN; i++)
        fds[i] = harness_connect(harness_port(p, "TCP"));
    for (int i = NCONN; i < NCONN + 10; i++)
        fds[i] = harness_connect(harness_port(p, "HTTP"));
    ck_assert(harness_log_wait(p, "accept error", AWAIT_MS));
    /* a spinning accept loop would write thousands of lines meanwhile: here a span of time is
       what is measured, so this is a plain sleep */
    usleep(500 * 1000);
    char *log = harness_log(p);
    ck_assert_ptr_nonnull(log);
    ck_assert_msg(strlen(log) < 256 * 1024, "log grew to %zu bytes", strlen(log));
    free(log);
    for (int i = 0; i < NCONN + 10; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    /* serving again */
    int fd = -1;
    char *reply = NULL;
    int64_t deadline = harness_now_ms() + AWAIT_MS;
    while (reply == NULL && harness_now_ms() < deadline) {
        fd = v1_connect(p);
        harness_tcp_send_str(fd, "PING\n");
        size_t len;
        if (harness_tcp_read_v1(fd, &reply, &len, 1000) != 0)
            close(fd);
    }
    ck_assert_ptr_nonnull(reply);
    ck_assert_str_eq(reply, "OK");
    free(reply);
    close(fd);
    http_expect_body(p, "GET", "/ping", 200, "OK");
    ck_assert_int_eq(harness_stop(p, SIGTERM), 0);
}
END_TEST

/* A client that writes without reading: the daemon stops reading it while replies pile up, and
   every command is still answered once the client reads. */
START_TEST(test_unread_replies)
{
    /* 9 MB of replies: more than the kernel's socket buffers absorb (the client's receive buffer
       is made small), so replies pile up in the daemon beyond its pending-output bound */
    enum { NPINGS = 1500000, CHUNK = 10000 };
    const char *extra[] = {"--log-level=debug", NULL};
    struct harness_proc *p = start_lookupd_args(extra);
    int fd = v1_connect(p);
    int rcvbuf = 32 * 1024;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    size_t len = (size_t)NPINGS * 5;
    char *cmds = malloc(len);
    for (size_t i = 0; i < NPINGS; i++)
        memcpy(cmds + i * 5, "PING\n", 5);
    /* the daemon may stop reading before everything is sent: send from a child process */
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0)
        _exit(harness_tcp_send(fd, cmds, len) == 0 ? 0 : 1);
    free(cmds);
    /* nothing is read until the daemon has noticed the backlog */
    ck_assert(harness_log_wait(p, "pausing reads", 4 * AWAIT_MS));
    static char rep[CHUNK * 6];
    for (int i = 0; i < NPINGS; i += CHUNK) {
        ck_assert_int_eq(harness_tcp_read_n(fd, rep, sizeof(rep), AWAIT_MS), 0);
        for (int k = 0; k < CHUNK; k++)
            ck_assert_msg(memcmp(rep + k * 6, "\0\0\0\2OK", 6) == 0, "reply %d", i + k);
    }
    int status;
    ck_assert_int_eq(waitpid(child, &status, 0), child);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(fd);
    http_expect_body(p, "GET", "/ping", 200, "OK");
    stop_lookupd(p);
}
END_TEST

START_TEST(test_sigint_with_clients)
{
    struct harness_proc *p = start_lookupd();
    int fd = nsqd_connect(p, NSQD_IDENTIFY);
    v1_expect(fd, "REGISTER t", "OK");
    int idle = v1_connect(p);
    ck_assert_int_eq(harness_stop(p, SIGINT), 0);
    ck_assert(harness_tcp_wait_closed(fd, IO_MS));
    close(fd);
    close(idle);
}
END_TEST

START_TEST(test_listen_failure)
{
    struct harness_proc *p = start_lookupd();
    char addr[64];
    snprintf(addr, sizeof(addr), "--tcp-address=127.0.0.1:%d", harness_port(p, "TCP"));
    const char *args[] = {addr, "--http-address=127.0.0.1:0", NULL};
    /* the second daemon must exit (status 1) instead of listening */
    struct harness_proc *q = harness_start(NSQLOOKUPD_BIN, args, 0); /* expected to exit */
    ck_assert_ptr_nonnull(q);
    ck_assert(harness_log_wait(q, "failed to instantiate nsqlookupd", AWAIT_MS));
    char want[256];
    snprintf(want, sizeof(want),
             "listen (127.0.0.1:%d) failed - listen tcp 127.0.0.1:%d: bind: "
             "address already in use",
             harness_port(p, "TCP"), harness_port(p, "TCP"));
    ck_assert(harness_log_wait(q, want, AWAIT_MS));
    int64_t deadline = harness_now_ms() + AWAIT_MS;
    while (harness_running(q) && harness_now_ms() < deadline)
        usleep(5000);
    ck_assert_int_eq(harness_stop(q, SIGTERM), 1);
    stop_lookupd(p);
}
END_TEST

START_TEST(test_bad_flag_exits_2)
{
    const char *args[] = {"--no-such-flag", NULL};
    struct harness_proc *q = harness_start(NSQLOOKUPD_BIN, args, 0);
    ck_assert_ptr_nonnull(q);
    /* harness_stop signals a process that has possibly exited already; the status is the exit's */
    int64_t deadline = harness_now_ms() + AWAIT_MS;
    while (harness_running(q) && harness_now_ms() < deadline)
        usleep(5000);
    ck_assert_int_eq(harness_stop(q, SIGTERM), 2);
}
END_TEST

START_TEST(test_config_file)
{
    char *dir = harness_tmpdir();
    ck_assert_ptr_nonnull(dir);
    char path[512];
    snprintf(path, sizeof(path), "%s/nsqlookupd.cfg", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("tcp_address = \"127.0.0.1:0\"\n"
          "http_address = \"127.0.0.1:0\"\n"
          "broadcast_address = \"from-config\"\n"
          "inactive_producer_timeout = \"500ms\"\n"
          "log_level = \"debug\"\n",
          f);
    fclose(f);
    char cfg[600];
    snprintf(cfg, sizeof(cfg), "--config=%s", path);
    const char *args[] = {cfg, NULL};
    struct harness_proc *p = harness_start(NSQLOOKUPD_BIN, args, 2);
    ck_assert_ptr_nonnull(p);
    int fd = v1_connect(p);
    char *reply = v1_identify(fd, NSQD_IDENTIFY);
    ck_assert_ptr_nonnull(strstr(reply, "\"broadcast_address\":\"from-config\""));
    free(reply);
    v1_expect(fd, "REGISTER t", "OK");
    await_lookup(p, "t", 0); /* the configured inactivity timeout applies */
    close(fd);
    stop_lookupd(p);

    /* a flag wins over the file */
    const char *args2[] = {cfg, "--broadcast-address=from-flag", NULL};
    p = harness_start(NSQLOOKUPD_BIN, args2, 2);
    ck_assert_ptr_nonnull(p);
    fd = v1_connect(p);
    reply = v1_identify(fd, NSQD_IDENTIFY);
    ck_assert_ptr_nonnull(strstr(reply, "\"broadcast_address\":\"from-flag\""));
    free(reply);
    close(fd);
    stop_lookupd(p);
    harness_rmdir(dir);
    free(dir);
}
END_TEST

static Suite *nsqlookupd_suite(void)
{
    Suite *s = suite_create("nsqlookupd");
    TCase *tc = tcase_create("http");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_ping_info_headers);
    tcase_add_test(tc, test_read_endpoints_match_upstream);
    tcase_add_test(tc, test_empty_lists);
    tcase_add_test(tc, test_http_topic_channel_admin);
    tcase_add_test(tc, test_http_errors);
    suite_add_tcase(s, tc);

    tc = tcase_create("v1");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_identify_reply);
    tcase_add_test(tc, test_v1_bad_magic);
    tcase_add_test(tc, test_v1_not_identified);
    tcase_add_test(tc, test_v1_bad_params);
    tcase_add_test(tc, test_v1_line_trimmed);
    tcase_add_test(tc, test_v1_identify_errors);
    tcase_add_test(tc, test_v1_pipelined_and_split);
    suite_add_tcase(s, tc);

    tc = tcase_create("registrations");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_unregister_ephemeral);
    tcase_add_test(tc, test_ephemeral_topic_kept_while_other_producer);
    tcase_add_test(tc, test_disconnect_removes_registrations);
    tcase_add_test(tc, test_reregister_is_idempotent);
    tcase_add_test(tc, test_tombstone);
    tcase_add_test(tc, test_tombstone_new_connection_is_fresh);
    tcase_add_test(tc, test_inactive_producer_timeout);
    suite_add_tcase(s, tc);

    tc = tcase_create("lifecycle");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_garbage_keeps_serving);
    tcase_add_test(tc, test_oversize_http_body);
    tcase_add_test(tc, test_unread_replies);
    tcase_add_test(tc, test_fd_exhaustion);
    tcase_add_test(tc, test_sigint_with_clients);
    tcase_add_test(tc, test_listen_failure);
    tcase_add_test(tc, test_bad_flag_exits_2);
    tcase_add_test(tc, test_config_file);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(nsqlookupd_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
