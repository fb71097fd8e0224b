/*
 * nsqd_itest: helpers shared by the nsqd integration suites (header-only, test code only).
 *
 *  - itest_nsqd_start: nsqd on ephemeral loopback ports in a data directory; struct itest_node: the
 *    same with a data directory of its own, kept across restarts.
 *  - a minimal blocking V2 client (magic, IDENTIFY, PUB, MPUB, SUB, RDY, FIN, reading messages
 *    while answering heartbeats).
 *  - JSON helpers over the harness HTTP client, and itest_json_shape_diff: the "same shape" check
 *    (same keys in the same order, same JSON types, recursively; arrays compared by their first
 *    elements) used to compare our answers with upstream's recorded ones.
 */
#ifndef NSQD_ITEST_H
#define NSQD_ITEST_H

#include <arpa/inet.h>
#include <check.h>
#include <cjson/cJSON.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define ITEST_MAX_ARGS    32
#define ITEST_IO_MS       5000
#define ITEST_FRAME_RESP  0
#define ITEST_FRAME_ERROR 1
#define ITEST_FRAME_MSG   2
#define ITEST_MSG_HDR     26
#define ITEST_ID_LEN      16
#define ITEST_HTTP_DIR    NSQ_TESTDATA_DIR "/upstream-v1.3.0/http/"
#define ITEST_DATADIR     NSQ_TESTDATA_DIR "/upstream-v1.3.0/datadir"

/* Starts nsqd with TCP and HTTP on 127.0.0.1:0, --data-path=data_path and the extra flags
   (NULL-terminated, may be NULL). */
static inline struct harness_proc *itest_nsqd_start(const char *data_path, const char *const *extra)
{
    const char *args[ITEST_MAX_ARGS];
    char dp[4200];
    int n = 0;
    snprintf(dp, sizeof(dp), "--data-path=%s", data_path);
    args[n++] = "--tcp-address=127.0.0.1:0";
    args[n++] = "--http-address=127.0.0.1:0";
    args[n++] = dp;
    for (int i = 0; extra != NULL && extra[i] != NULL && n < ITEST_MAX_ARGS - 1; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    return harness_start(NSQD_BIN, args, 2);
}

/* An nsqd in a data directory of its own: created by the first itest_node_start, kept across
   itest_node_stop/itest_node_start (a restart), removed by itest_node_free. */
struct itest_node {
    char *dir;
    struct harness_proc *p; /* NULL while stopped */
    int tcp, http;
};

static inline void itest_node_start(struct itest_node *n, const char *const *extra)
{
    if (!n->dir)
        n->dir = harness_tmpdir();
    ck_assert_ptr_nonnull(n->dir);
    n->p = itest_nsqd_start(n->dir, extra);
    ck_assert_ptr_nonnull(n->p);
    n->tcp = harness_port(n->p, "TCP");
    n->http = harness_port(n->p, "HTTP");
    ck_assert_int_gt(n->tcp, 0);
    ck_assert_int_gt(n->http, 0);
}

/* SIGTERM; asserts a clean exit. The data directory stays. */
static inline void itest_node_stop(struct itest_node *n)
{
    ck_assert_int_eq(harness_stop(n->p, SIGTERM), 0);
    n->p = NULL;
}

/* Stops n if it runs (SIGTERM) and removes its data directory. Returns the stop's result (0: a
   clean exit, or not running). */
static inline int itest_node_free(struct itest_node *n)
{
    int rc = n->p ? harness_stop(n->p, SIGTERM) : 0;
    n->p = NULL;
    if (n->dir)
        harness_rmdir(n->dir);
    free(n->dir);
    n->dir = NULL;
    return rc;
}

/* ---- HTTP ---- */

/* GET/POST and parse the body as JSON (NULL if not JSON). *status gets the HTTP status. */
static inline cJSON *itest_http_json(const char *method, int port, const char *path,
                                     const char *body, long *status)
{
    struct harness_response r;
    cJSON *j = NULL;
    memset(&r, 0, sizeof(r));
    if (harness_http(method, port, path, body, body ? strlen(body) : 0, &r) == 0)
        j = cJSON_Parse(r.body);
    if (status != NULL)
        *status = r.status;
    harness_response_free(&r);
    return j;
}

/* Status of a request; body (malloc'd, NUL-terminated) into *body if non-NULL. */
static inline long itest_http(const char *method, int port, const char *path, const char *body,
                              char **out)
{
    struct harness_response r;
    long st;
    memset(&r, 0, sizeof(r));
    if (harness_http(method, port, path, body, body ? strlen(body) : 0, &r) != 0) {
        if (out)
            *out = NULL;
        harness_response_free(&r);
        return 0;
    }
    st = r.status;
    if (out) {
        *out = r.body;
        r.body = NULL;
    }
    harness_response_free(&r);
    return st;
}

static inline char *itest_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        fclose(f);
        return NULL;
    }
    buf[n] = '\0';
    fclose(f);
    if (len)
        *len = (size_t)n;
    return buf;
}

/* ---- JSON shape ---- */

static inline int itest_json_kind(const cJSON *j)
{
    if (cJSON_IsBool(j))
        return cJSON_True; /* true and false are one type */
    return j->type & 0xFF;
}

static inline const char *itest_json_kind_name(const cJSON *j)
{
    if (cJSON_IsBool(j))
        return "bool";
    if (cJSON_IsNull(j))
        return "null";
    if (cJSON_IsNumber(j))
        return "number";
    if (cJSON_IsString(j))
        return "string";
    if (cJSON_IsArray(j))
        return "array";
    if (cJSON_IsObject(j))
        return "object";
    return "invalid";
}

/*
 * Compares the shape of got with want. Returns true if equal; otherwise writes where they differ
 * into err. Arrays: compared by their first elements when both have one.
 */
static inline bool itest_json_shape_diff(const cJSON *got, const cJSON *want, const char *path,
                                         char *err, size_t errlen)
{
    char sub[512];
    if (itest_json_kind(got) != itest_json_kind(want)) {
        snprintf(err, errlen, "%s: type %s, want %s", path, itest_json_kind_name(got),
                 itest_json_kind_name(want));
        return false;
    }
    if (cJSON_IsObject(want)) {
        const cJSON *g = got->child, *w = want->child;
        for (; g != NULL && w != NULL; g = g->next, w = w->next) {
            if (strcmp(g->string, w->string) != 0) {
                snprintf(err, errlen, "%s: key \"%s\", want \"%s\"", path, g->string, w->string);
                return false;
            }
            snprintf(sub, sizeof(sub), "%s.%s", path, w->string);
            if (!itest_json_shape_diff(g, w, sub, err, errlen))
                return false;
        }
        if (g != NULL || w != NULL) {
            snprintf(err, errlen, "%s: extra key \"%s\" in %s", path, g ? g->string : w->string,
                     g ? "ours" : "upstream's");
            return false;
        }
    } else if (cJSON_IsArray(want)) {
        if (got->child != NULL && want->child != NULL) {
            snprintf(sub, sizeof(sub), "%s[0]", path);
            return itest_json_shape_diff(got->child, want->child, sub, err, errlen);
        }
    }
    return true;
}

/* ---- V2 client ---- */

/* Connects and sends the magic. Returns the fd or -1. */
static inline int itest_v2_connect(int port)
{
    int fd = harness_connect(port);
    if (fd < 0)
        return -1;
    if (harness_tcp_send(fd, "  V2", 4) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Reads frames until a non-heartbeat one (heartbeats are answered with NOP). */
static inline int itest_read_frame(int fd, int32_t *type, char **data, size_t *len, int timeout_ms)
{
    for (;;) {
        int rc = harness_tcp_read_frame(fd, type, data, len, timeout_ms);
        if (rc != 0)
            return -1;
        if (*type == ITEST_FRAME_RESP && *len == 11 && memcmp(*data, "_heartbeat_", 11) == 0) {
            free(*data);
            if (harness_tcp_send_str(fd, "NOP\n") != 0)
                return -1;
            continue;
        }
        return 0;
    }
}

/* Expects a response frame equal to `want`. Returns 0 or -1. */
static inline int itest_expect_response(int fd, const char *want)
{
    int32_t type;
    char *data = NULL;
    size_t len;
    int ok;
    if (itest_read_frame(fd, &type, &data, &len, ITEST_IO_MS) != 0)
        return -1;
    ok = type == ITEST_FRAME_RESP && len == strlen(want) && memcmp(data, want, len) == 0;
    if (!ok)
        fprintf(stderr, "itest: got frame type %d \"%.*s\", want \"%s\"\n", type, (int)len, data,
                want);
    free(data);
    return ok ? 0 : -1;
}

/* IDENTIFY with a JSON body; reads the reply (JSON or OK). Returns 0 or -1. */
static inline int itest_identify(int fd, const char *json)
{
    int32_t type;
    char *data = NULL;
    size_t len;
    if (harness_tcp_send_str(fd, "IDENTIFY\n") != 0 ||
        harness_tcp_send_sized(fd, json, strlen(json)) != 0)
        return -1;
    if (itest_read_frame(fd, &type, &data, &len, ITEST_IO_MS) != 0)
        return -1;
    free(data);
    return type == ITEST_FRAME_RESP ? 0 : -1;
}

static inline int itest_pub(int fd, const char *topic, const void *body, size_t len)
{
    char line[256];
    snprintf(line, sizeof(line), "PUB %s\n", topic);
    if (harness_tcp_send_str(fd, line) != 0 || harness_tcp_send_sized(fd, body, len) != 0)
        return -1;
    return itest_expect_response(fd, "OK");
}

static inline int itest_sub(int fd, const char *topic, const char *channel)
{
    char line[256];
    snprintf(line, sizeof(line), "SUB %s %s\n", topic, channel);
    if (harness_tcp_send_str(fd, line) != 0)
        return -1;
    return itest_expect_response(fd, "OK");
}

static inline int itest_rdy(int fd, int n)
{
    char line[64];
    snprintf(line, sizeof(line), "RDY %d\n", n);
    return harness_tcp_send_str(fd, line);
}

static inline int itest_fin(int fd, const char id[ITEST_ID_LEN])
{
    char line[64];
    snprintf(line, sizeof(line), "FIN %.16s\n", id);
    return harness_tcp_send_str(fd, line);
}

/* One delivered message. */
struct itest_msg {
    int64_t ts;
    uint16_t attempts;
    char id[ITEST_ID_LEN + 1];
    char *body; /* malloc'd, NUL-terminated */
    size_t len;
};

/* Reads the next message frame (answering heartbeats). Returns 0, or -1 on timeout/error/other
   frame. */
static inline int itest_read_msg(int fd, struct itest_msg *m, int timeout_ms)
{
    int32_t type;
    char *data = NULL;
    size_t len;
    const uint8_t *d;
    if (itest_read_frame(fd, &type, &data, &len, timeout_ms) != 0)
        return -1;
    if (type != ITEST_FRAME_MSG || len < ITEST_MSG_HDR) {
        fprintf(stderr, "itest: unexpected frame type %d \"%.*s\"\n", type, (int)len, data);
        free(data);
        return -1;
    }
    d = (const uint8_t *)data;
    m->ts = 0;
    for (int i = 0; i < 8; i++)
        m->ts = (int64_t)(((uint64_t)m->ts << 8) | d[i]);
    m->attempts = (uint16_t)((d[8] << 8) | d[9]);
    memcpy(m->id, data + 10, ITEST_ID_LEN);
    m->id[ITEST_ID_LEN] = '\0';
    m->len = len - ITEST_MSG_HDR;
    m->body = malloc(m->len + 1);
    memcpy(m->body, data + ITEST_MSG_HDR, m->len);
    m->body[m->len] = '\0';
    free(data);
    return 0;
}

/* ---- /stats helpers ---- */

/* Fetches /stats?format=json<extra query> and returns the parsed root (caller deletes). */
static inline cJSON *itest_stats(int http_port, const char *extra_query)
{
    char path[512];
    long st;
    snprintf(path, sizeof(path), "/stats?format=json%s", extra_query ? extra_query : "");
    cJSON *j = itest_http_json("GET", http_port, path, NULL, &st);
    if (st != 200) {
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

static inline cJSON *itest_find_named(const cJSON *arr, const char *key, const char *name)
{
    cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(it, key);
        if (cJSON_IsString(n) && strcmp(n->valuestring, name) == 0)
            return it;
    }
    return NULL;
}

/* The stats object of topic (and channel, if non-NULL) inside a /stats root, or NULL. */
static inline cJSON *itest_stats_find(const cJSON *root, const char *topic, const char *channel)
{
    cJSON *t =
            itest_find_named(cJSON_GetObjectItemCaseSensitive(root, "topics"), "topic_name", topic);
    if (t == NULL || channel == NULL)
        return t;
    return itest_find_named(cJSON_GetObjectItemCaseSensitive(t, "channels"), "channel_name",
                            channel);
}

/* Integer field `key` of a topic/channel (or -1 when absent). */
static inline int64_t itest_stats_int(int http_port, const char *topic, const char *channel,
                                      const char *key)
{
    cJSON *root = itest_stats(http_port, NULL);
    cJSON *o = root ? itest_stats_find(root, topic, channel) : NULL;
    const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
    int64_t r = cJSON_IsNumber(v) ? (int64_t)v->valuedouble : -1;
    cJSON_Delete(root);
    return r;
}

/* A wait (for harness_wait_until) until topic's expired messages, counted on the topic (dropped
   from its backlog) plus on channel, add up to want. */
struct itest_expired_wait {
    int http;
    const char *topic, *channel;
    int64_t want;
};

static inline bool itest_expired_reached(void *arg)
{
    struct itest_expired_wait *w = arg;
    int64_t t = itest_stats_int(w->http, w->topic, NULL, "expired_count");
    int64_t c = itest_stats_int(w->http, w->topic, w->channel, "expired_count");
    return t >= 0 && c >= 0 && t + c == w->want;
}

#endif
