/*
 * test_nsqd_tls: nsqd's TLS features (tcp-protocol.md §3.2, §4.1 upgrade sequence; http-api.md §1
 * TLS_REQUIRED). A CA, a server certificate and client certificates are made with the openssl
 * command line in a temporary directory; the test's own V2 client performs the in-protocol
 * upgrade (IDENTIFY tls_v1 → JSON → handshake → OK inside TLS), optionally followed by snappy or
 * deflate framing over the TLS stream, then publishes and consumes.
 */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <pthread.h>
#include <event2/buffer.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "harness.h"
#include "nsq_codec.h"
#include "nsq_tls.h"
#include "nsqd_itest.h"

#define PATH_LEN     4200
#define CMD_LEN      (4 * PATH_LEN)
#define RAW_READ     16384
#define IO_TIMEOUT_S 5
/* nsqd gives a client this long to complete the TLS handshake (tcp-protocol.md §4.1). */
#define HANDSHAKE_DEADLINE_MS 5000

static char *g_dir; /* certificates live here for the whole suite */
static char g_ca[PATH_LEN], g_srv_cert[PATH_LEN], g_srv_key[PATH_LEN];
static char g_cli_cert[PATH_LEN], g_cli_key[PATH_LEN];     /* signed by the CA, CN=client */
static char g_rogue_cert[PATH_LEN], g_rogue_key[PATH_LEN]; /* self-signed, CN=rogue */

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
    char cmd[CMD_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    return system(cmd);
}

/* Makes the CA, the server certificate (SAN IP:127.0.0.1), a client certificate and a rogue one. */
static void make_certs(void)
{
    char ext[PATH_LEN];
    g_dir = harness_tmpdir();
    ck_assert_ptr_nonnull(g_dir);
    snprintf(g_ca, sizeof(g_ca), "%s/ca.pem", g_dir);
    snprintf(g_srv_cert, sizeof(g_srv_cert), "%s/server.pem", g_dir);
    snprintf(g_srv_key, sizeof(g_srv_key), "%s/server.key", g_dir);
    snprintf(g_cli_cert, sizeof(g_cli_cert), "%s/client.pem", g_dir);
    snprintf(g_cli_key, sizeof(g_cli_key), "%s/client.key", g_dir);
    snprintf(g_rogue_cert, sizeof(g_rogue_cert), "%s/rogue.pem", g_dir);
    snprintf(g_rogue_key, sizeof(g_rogue_key), "%s/rogue.key", g_dir);
    snprintf(ext, sizeof(ext), "%s/san.ext", g_dir);
    FILE *f = fopen(ext, "w");
    ck_assert_ptr_nonnull(f);
    fputs("subjectAltName=IP:127.0.0.1\n", f);
    fclose(f);
#define EC "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
#define Q  " 2>/dev/null"
    ck_assert_int_eq(run("cd %s && openssl req -x509 " EC " -keyout ca.key -out ca.pem -days 2 "
                         "-subj /CN=nsq-test-ca" Q "%s",
                         g_dir, ""),
                     0);
    ck_assert_int_eq(run("cd %s && openssl req " EC " -keyout server.key -out server.csr "
                         "-subj /CN=127.0.0.1" Q " && openssl x509 -req -in server.csr -CA ca.pem "
                         "-CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile %s" Q,
                         g_dir, ext),
                     0);
    ck_assert_int_eq(run("cd %s && openssl req " EC " -keyout client.key -out client.csr "
                         "-subj /CN=client" Q " && openssl x509 -req -in client.csr -CA ca.pem "
                         "-CAkey ca.key -CAcreateserial -out client.pem -days 2" Q "%s",
                         g_dir, ""),
                     0);
    ck_assert_int_eq(run("cd %s && openssl req -x509 " EC " -keyout rogue.key -out rogue.pem "
                         "-days 2 -subj /CN=rogue" Q "%s",
                         g_dir, ""),
                     0);
#undef EC
#undef Q
}

static void suite_setup(void)
{
    make_certs();
}

static void suite_teardown(void)
{
    harness_rmdir(g_dir);
    free(g_dir);
}

/* ---- nsqd with TLS ---- */

struct tls_nsqd {
    char *dir;
    struct harness_proc *p;
    int tcp, http, https;
};

/* Starts nsqd with the server certificate, HTTPS on an ephemeral port and extra flags. */
static void tls_nsqd_start(struct tls_nsqd *t, const char *const *extra)
{
    static char cert[PATH_LEN + 16], key[PATH_LEN + 16], ca[PATH_LEN + 32];
    const char *args[ITEST_MAX_ARGS];
    int n = 0;
    snprintf(cert, sizeof(cert), "--tls-cert=%s", g_srv_cert);
    snprintf(key, sizeof(key), "--tls-key=%s", g_srv_key);
    snprintf(ca, sizeof(ca), "--tls-root-ca-file=%s", g_ca);
    args[n++] = cert;
    args[n++] = key;
    args[n++] = ca;
    args[n++] = "--https-address=127.0.0.1:0";
    for (int i = 0; extra && extra[i]; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    t->dir = harness_tmpdir();
    char dp[PATH_LEN + 16];
    const char *full[ITEST_MAX_ARGS];
    int m = 0;
    snprintf(dp, sizeof(dp), "--data-path=%s", t->dir);
    full[m++] = "--tcp-address=127.0.0.1:0";
    full[m++] = "--http-address=127.0.0.1:0";
    full[m++] = dp;
    for (int i = 0; args[i]; i++)
        full[m++] = args[i];
    full[m] = NULL;
    t->p = harness_start(NSQD_BIN, full, 3);
    ck_assert_ptr_nonnull(t->p);
    t->tcp = harness_port(t->p, "TCP");
    t->http = harness_port(t->p, "HTTP");
    t->https = harness_port(t->p, "HTTPS");
    ck_assert_int_gt(t->https, 0);
}

static void tls_nsqd_stop(struct tls_nsqd *t)
{
    ck_assert_int_eq(harness_stop(t->p, 0), 0);
    harness_rmdir(t->dir);
    free(t->dir);
}

/* ---- the test's V2 connection: plain, TLS, and snappy/deflate over either ---- */

struct conn {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
    int codec; /* 0, NSQ_CODEC_SNAPPY or NSQ_CODEC_DEFLATE */
    struct nsq_snappy_writer *sw;
    struct nsq_snappy_reader *sr;
    struct nsq_deflate_writer *dw;
    struct nsq_deflate_reader *dr;
    struct evbuffer *raw;   /* received, not yet decoded */
    struct evbuffer *plain; /* decoded stream */
};

static void conn_open(struct conn *c, int port)
{
    memset(c, 0, sizeof(*c));
    c->fd = itest_v2_connect(port);
    ck_assert_int_ge(c->fd, 0);
    struct timeval tv = {.tv_sec = IO_TIMEOUT_S};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    c->raw = evbuffer_new();
    c->plain = evbuffer_new();
}

static int raw_write(struct conn *c, const void *buf, size_t len);

/* The same over a unix socket listener. */
static void conn_open_unix(struct conn *c, const char *path)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    memset(c, 0, sizeof(*c));
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    c->fd = socket(AF_UNIX, SOCK_STREAM, 0);
    ck_assert_int_ge(c->fd, 0);
    ck_assert_int_eq(connect(c->fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    struct timeval tv = {.tv_sec = IO_TIMEOUT_S};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    ck_assert_int_eq(raw_write(c, "  V2", 4), 0);
    c->raw = evbuffer_new();
    c->plain = evbuffer_new();
}

static void conn_close(struct conn *c)
{
    if (c->ssl)
        SSL_free(c->ssl);
    if (c->ctx)
        SSL_CTX_free(c->ctx);
    close(c->fd);
    nsq_snappy_writer_free(c->sw);
    nsq_snappy_reader_free(c->sr);
    nsq_deflate_writer_free(c->dw);
    nsq_deflate_reader_free(c->dr);
    evbuffer_free(c->raw);
    evbuffer_free(c->plain);
}

static int raw_write(struct conn *c, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        int n = c->ssl ? SSL_write(c->ssl, p, (int)len) : (int)send(c->fd, p, len, MSG_NOSIGNAL);
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Sends bytes of the V2 stream through the negotiated layers. */
static int conn_send(struct conn *c, const void *buf, size_t len)
{
    if (!c->codec)
        return raw_write(c, buf, len);
    struct evbuffer *src = evbuffer_new(), *dst = evbuffer_new();
    evbuffer_add(src, buf, len);
    int rc = c->codec == NSQ_CODEC_SNAPPY ? nsq_snappy_write(c->sw, src, dst)
                                          : nsq_deflate_write(c->dw, src, dst);
    size_t n = evbuffer_get_length(dst);
    if (rc == 0)
        rc = raw_write(c, evbuffer_pullup(dst, -1), n);
    evbuffer_free(src);
    evbuffer_free(dst);
    return rc;
}

static int conn_send_str(struct conn *c, const char *s)
{
    return conn_send(c, s, strlen(s));
}

static int conn_send_cmd_body(struct conn *c, const char *line, const void *body, size_t len)
{
    size_t ll = strlen(line);
    char *buf = malloc(ll + 4 + len);
    uint32_t be = htonl((uint32_t)len);
    memcpy(buf, line, ll);
    memcpy(buf + ll, &be, 4);
    memcpy(buf + ll + 4, body, len);
    int rc = conn_send(c, buf, ll + 4 + len);
    free(buf);
    return rc;
}

/* Reads more of the stream into c->plain. 0, or -1 on EOF/error/timeout. */
static int conn_fill(struct conn *c)
{
    char buf[RAW_READ];
    int n = c->ssl ? SSL_read(c->ssl, buf, sizeof(buf)) : (int)recv(c->fd, buf, sizeof(buf), 0);
    if (n <= 0)
        return -1;
    if (!c->codec)
        return evbuffer_add(c->plain, buf, (size_t)n);
    evbuffer_add(c->raw, buf, (size_t)n);
    int rc = c->codec == NSQ_CODEC_SNAPPY ? nsq_snappy_read(c->sr, c->raw, c->plain)
                                          : nsq_deflate_read(c->dr, c->raw, c->plain);
    return rc < 0 ? -1 : 0;
}

/* Reads one frame (heartbeats are answered and skipped). *data is malloc'd, NUL-terminated. */
static int conn_read_frame(struct conn *c, int32_t *type, char **data, size_t *len)
{
    for (;;) {
        while (evbuffer_get_length(c->plain) >= 8) {
            uint8_t hdr[8];
            evbuffer_copyout(c->plain, hdr, 8);
            uint32_t size = ((uint32_t)hdr[0] << 24) | (hdr[1] << 16) | (hdr[2] << 8) | hdr[3];
            if (size < 4)
                return -1;
            if (evbuffer_get_length(c->plain) < 4 + (size_t)size)
                break;
            evbuffer_drain(c->plain, 8);
            *type = (int32_t)(((uint32_t)hdr[4] << 24) | (hdr[5] << 16) | (hdr[6] << 8) | hdr[7]);
            *len = size - 4;
            *data = malloc(*len + 1);
            evbuffer_remove(c->plain, *data, *len);
            (*data)[*len] = '\0';
            if (*type == ITEST_FRAME_RESP && strcmp(*data, "_heartbeat_") == 0) {
                free(*data);
                if (conn_send_str(c, "NOP\n") != 0)
                    return -1;
                continue;
            }
            return 0;
        }
        if (conn_fill(c) != 0)
            return -1;
    }
}

/* Expects a frame of `type` with exactly `want`. */
static void conn_expect(struct conn *c, int32_t want_type, const char *want)
{
    int32_t type = -1;
    char *data = NULL;
    size_t len = 0;
    ck_assert_msg(conn_read_frame(c, &type, &data, &len) == 0, "no frame (want \"%s\")", want);
    ck_assert_msg(type == want_type && strcmp(data, want) == 0, "got %d \"%s\", want %d \"%s\"",
                  type, data, want_type, want);
    free(data);
}

/* Sends IDENTIFY and returns the JSON reply (caller deletes). */
static cJSON *conn_identify(struct conn *c, const char *json)
{
    int32_t type;
    char *data = NULL;
    size_t len;
    ck_assert_int_eq(conn_send_cmd_body(c, "IDENTIFY\n", json, strlen(json)), 0);
    ck_assert_int_eq(conn_read_frame(c, &type, &data, &len), 0);
    ck_assert_msg(type == ITEST_FRAME_RESP, "IDENTIFY: %s", data);
    cJSON *j = cJSON_Parse(data);
    ck_assert_msg(j != NULL, "IDENTIFY reply not JSON: %s", data);
    free(data);
    return j;
}

/* TLS handshake on the connection with an optional client certificate. Returns 0 or -1. */
static int conn_start_tls(struct conn *c, const char *cert, const char *key)
{
    char err[256];
    c->ctx = nsq_tls_client_ctx(g_ca, cert, key, false, 0, err, sizeof(err));
    ck_assert_msg(c->ctx != NULL, "client ctx: %s", err);
    c->ssl = SSL_new(c->ctx);
    SSL_set_fd(c->ssl, c->fd);
    return SSL_connect(c->ssl) == 1 ? 0 : -1;
}

static void conn_start_codec(struct conn *c, int codec)
{
    c->codec = codec;
    if (codec == NSQ_CODEC_SNAPPY) {
        c->sw = nsq_snappy_writer_new();
        c->sr = nsq_snappy_reader_new();
    } else {
        c->dw = nsq_deflate_writer_new(6);
        c->dr = nsq_deflate_reader_new();
    }
    /* Whatever arrived after the upgrade point was read raw: decode it now. */
    evbuffer_add_buffer(c->raw, c->plain);
    int rc = codec == NSQ_CODEC_SNAPPY ? nsq_snappy_read(c->sr, c->raw, c->plain)
                                       : nsq_deflate_read(c->dr, c->raw, c->plain);
    ck_assert_int_ge(rc, 0);
}

/* Full upgrade: IDENTIFY tls_v1 (+ compression), handshake, OK inside TLS, OK after codec. */
static void conn_upgrade(struct conn *c, int codec, const char *cert, const char *key)
{
    char json[256];
    snprintf(json, sizeof(json),
             "{\"feature_negotiation\":true,\"tls_v1\":true,\"snappy\":%s,\"deflate\":%s,"
             "\"client_id\":\"tls-test\"}",
             codec == NSQ_CODEC_SNAPPY ? "true" : "false",
             codec == NSQ_CODEC_DEFLATE ? "true" : "false");
    cJSON *j = conn_identify(c, json);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(j, "tls_v1")));
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(j, "snappy")) == (codec == NSQ_CODEC_SNAPPY));
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(j, "deflate")) == (codec == NSQ_CODEC_DEFLATE));
    cJSON_Delete(j);
    ck_assert_msg(conn_start_tls(c, cert, key) == 0, "handshake failed");
    conn_expect(c, ITEST_FRAME_RESP, "OK");
    if (codec) {
        conn_start_codec(c, codec);
        conn_expect(c, ITEST_FRAME_RESP, "OK");
    }
}

static void conn_pub(struct conn *c, const char *topic, const char *body)
{
    char line[128];
    snprintf(line, sizeof(line), "PUB %s\n", topic);
    ck_assert_int_eq(conn_send_cmd_body(c, line, body, strlen(body)), 0);
    conn_expect(c, ITEST_FRAME_RESP, "OK");
}

/* SUB + RDY 1 and the next message's body must be `want`; FINs it. */
static void conn_sub_expect(struct conn *c, const char *topic, const char *want)
{
    char line[128];
    snprintf(line, sizeof(line), "SUB %s ch\n", topic);
    ck_assert_int_eq(conn_send_str(c, line), 0);
    conn_expect(c, ITEST_FRAME_RESP, "OK");
    ck_assert_int_eq(conn_send_str(c, "RDY 1\n"), 0);
    int32_t type;
    char *data = NULL;
    size_t len;
    ck_assert_int_eq(conn_read_frame(c, &type, &data, &len), 0);
    ck_assert_int_eq(type, ITEST_FRAME_MSG);
    ck_assert_uint_ge(len, ITEST_MSG_HDR);
    ck_assert_str_eq(data + ITEST_MSG_HDR, want);
    snprintf(line, sizeof(line), "FIN %.16s\n", data + 10);
    free(data);
    ck_assert_int_eq(conn_send_str(c, line), 0);
}

/* Publishes and consumes over fresh upgraded connections with `codec`. */
static void roundtrip(int port, int codec, const char *cert, const char *key, const char *topic)
{
    struct conn pub, sub;
    conn_open(&pub, port);
    conn_upgrade(&pub, codec, cert, key);
    conn_pub(&pub, topic, "hello over tls");
    conn_open(&sub, port);
    conn_upgrade(&sub, codec, cert, key);
    conn_sub_expect(&sub, topic, "hello over tls");
    conn_close(&pub);
    conn_close(&sub);
}

/* True when an upgrade with this client certificate is refused (handshake or the OK fails). */
static bool upgrade_refused(int port, const char *cert, const char *key)
{
    struct conn c;
    int32_t type;
    char *data = NULL;
    size_t len;
    conn_open(&c, port);
    cJSON_Delete(conn_identify(&c, "{\"feature_negotiation\":true,\"tls_v1\":true}"));
    bool refused = conn_start_tls(&c, cert, key) != 0;
    if (!refused) {
        /* TLS 1.3: the server checks the client certificate after the client's handshake ends. */
        refused = conn_read_frame(&c, &type, &data, &len) != 0;
        free(data);
    }
    conn_close(&c);
    return refused;
}

/* ---- tests ---- */

START_TEST(tls_upgrade_pub_sub)
{
    struct tls_nsqd t;
    tls_nsqd_start(&t, NULL);
    struct conn pub, sub;
    conn_open(&pub, t.tcp);
    conn_upgrade(&pub, 0, NULL, NULL);
    conn_pub(&pub, "tls_topic", "hello over tls");
    conn_open(&sub, t.tcp);
    conn_upgrade(&sub, 0, NULL, NULL);
    conn_sub_expect(&sub, "tls_topic", "hello over tls");

    /* /stats reports the session of the subscriber. */
    cJSON *root = itest_stats(t.http, NULL);
    ck_assert_ptr_nonnull(root);
    cJSON *ch = itest_stats_find(root, "tls_topic", "ch");
    ck_assert_ptr_nonnull(ch);
    cJSON *cl = cJSON_GetArrayItem(cJSON_GetObjectItem(ch, "clients"), 0);
    ck_assert_ptr_nonnull(cl);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(cl, "tls")));
    const char *ver = cJSON_GetStringValue(cJSON_GetObjectItem(cl, "tls_version"));
    const char *suite = cJSON_GetStringValue(cJSON_GetObjectItem(cl, "tls_cipher_suite"));
    ck_assert_ptr_nonnull(ver);
    ck_assert_ptr_nonnull(suite);
    ck_assert_msg(strncmp(ver, "TLS1.", 5) == 0, "tls_version %s", ver);
    ck_assert_msg(strncmp(suite, "TLS_", 4) == 0, "tls_cipher_suite %s", suite);
    cJSON_Delete(root);
    conn_close(&pub);
    conn_close(&sub);
    tls_nsqd_stop(&t);
}
END_TEST

START_TEST(tls_not_configured)
{
    /* Without a certificate tls_v1 is answered false and the connection stays plain. */
    char *dir = harness_tmpdir();
    struct harness_proc *p = itest_nsqd_start(dir, NULL);
    ck_assert_ptr_nonnull(p);
    struct conn c;
    conn_open(&c, harness_port(p, "TCP"));
    cJSON *j = conn_identify(&c, "{\"feature_negotiation\":true,\"tls_v1\":true}");
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(j, "tls_v1")));
    cJSON_Delete(j);
    conn_pub(&c, "plain", "x");
    conn_close(&c);
    ck_assert_int_eq(harness_stop(p, 0), 0);
    harness_rmdir(dir);
    free(dir);
}
END_TEST

START_TEST(tls_snappy)
{
    struct tls_nsqd t;
    tls_nsqd_start(&t, NULL);
    roundtrip(t.tcp, NSQ_CODEC_SNAPPY, NULL, NULL, "tls_snappy");
    tls_nsqd_stop(&t);
}
END_TEST

START_TEST(tls_deflate)
{
    struct tls_nsqd t;
    tls_nsqd_start(&t, NULL);
    roundtrip(t.tcp, NSQ_CODEC_DEFLATE, NULL, NULL, "tls_deflate");
    tls_nsqd_stop(&t);
}
END_TEST

START_TEST(policy_require)
{
    struct tls_nsqd t;
    const char *extra[] = {"--tls-client-auth-policy=require", NULL};
    tls_nsqd_start(&t, extra);
    roundtrip(t.tcp, 0, g_cli_cert, g_cli_key, "req_right");
    /* "require" asks for any certificate: one the CA did not sign is accepted too. */
    roundtrip(t.tcp, 0, g_rogue_cert, g_rogue_key, "req_wrong");
    ck_assert(upgrade_refused(t.tcp, NULL, NULL));
    tls_nsqd_stop(&t);
}
END_TEST

START_TEST(policy_require_verify)
{
    struct tls_nsqd t;
    const char *extra[] = {"--tls-client-auth-policy=require-verify", NULL};
    tls_nsqd_start(&t, extra);
    roundtrip(t.tcp, 0, g_cli_cert, g_cli_key, "verify_right");
    ck_assert(upgrade_refused(t.tcp, g_rogue_cert, g_rogue_key));
    ck_assert(upgrade_refused(t.tcp, NULL, NULL));
    tls_nsqd_stop(&t);
}
END_TEST

/* --tls-required: a plain client's commands fail (IDENTIFY is allowed), HTTP answers 403. */
START_TEST(tls_required_true)
{
    struct tls_nsqd t;
    const char *extra[] = {"--tls-required=true", NULL};
    tls_nsqd_start(&t, extra);
    struct conn c;
    conn_open(&c, t.tcp);
    ck_assert_int_eq(conn_send_cmd_body(&c, "PUB t\n", "x", 1), 0);
    conn_expect(&c, ITEST_FRAME_ERROR, "E_INVALID cannot PUB in current state (TLS required)");
    ck_assert(harness_tcp_wait_closed(c.fd, ITEST_IO_MS));
    conn_close(&c);

    conn_open(&c, t.tcp);
    cJSON_Delete(conn_identify(&c, "{\"feature_negotiation\":true}"));
    ck_assert_int_eq(conn_send_str(&c, "SUB t ch\n"), 0);
    conn_expect(&c, ITEST_FRAME_ERROR, "E_INVALID cannot SUB in current state (TLS required)");
    conn_close(&c);

    /* Upgraded, the same commands succeed. */
    roundtrip(t.tcp, 0, NULL, NULL, "required_ok");

    struct harness_response r;
    memset(&r, 0, sizeof(r));
    ck_assert_int_eq(harness_http("GET", t.http, "/ping", NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 403);
    char want[128];
    snprintf(want, sizeof(want), "{\"message\": \"TLS_REQUIRED\", \"https_port\": %d}", t.https);
    ck_assert_str_eq(r.body, want);
    harness_response_free(&r);
    tls_nsqd_stop(&t);
}
END_TEST

START_TEST(tls_required_tcp_https)
{
    struct tls_nsqd t;
    const char *extra[] = {"--tls-required=tcp-https", NULL};
    tls_nsqd_start(&t, extra);
    struct conn c;
    conn_open(&c, t.tcp);
    ck_assert_int_eq(conn_send_str(&c, "NOP\n"), 0);
    conn_expect(&c, ITEST_FRAME_ERROR, "E_INVALID cannot NOP in current state (TLS required)");
    conn_close(&c);
    /* The plain HTTP listener still serves. */
    char *body = NULL;
    ck_assert_int_eq(itest_http("GET", t.http, "/ping", NULL, &body), 200);
    ck_assert_str_eq(body, "OK");
    free(body);
    tls_nsqd_stop(&t);
}
END_TEST

/* POST over HTTPS with libcurl (CA-verified; client certificate when `cert` is set). */
static const char *g_https_unix; /* when set, https_post goes through this unix socket */

static long https_post(int port, const char *path, const char *body, const char *cert,
                       const char *key, char *resp, size_t resp_len)
{
    char url[256];
    snprintf(url, sizeof(url), "https://127.0.0.1:%d%s", port, path);
    FILE *mem = fmemopen(resp, resp_len, "w");
    CURL *h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_CAINFO, g_ca);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)ITEST_IO_MS);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, mem);
    if (g_https_unix)
        curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, g_https_unix);
    if (cert) {
        curl_easy_setopt(h, CURLOPT_SSLCERT, cert);
        curl_easy_setopt(h, CURLOPT_SSLKEY, key);
    }
    long status = 0;
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    fclose(mem);
    return status;
}

START_TEST(https_pub)
{
    struct tls_nsqd t;
    char resp[256] = "";
    tls_nsqd_start(&t, NULL);
    ck_assert_int_eq(https_post(t.https, "/pub?topic=https_topic", "via https", NULL, NULL, resp,
                                sizeof(resp)),
                     200);
    ck_assert_str_eq(resp, "OK");
    ck_assert_int_eq(itest_stats_int(t.http, "https_topic", NULL, "message_count"), 1);
    tls_nsqd_stop(&t);
}
END_TEST

START_TEST(https_require_verify)
{
    struct tls_nsqd t;
    char resp[256] = "";
    const char *extra[] = {"--tls-client-auth-policy=require-verify", NULL};
    tls_nsqd_start(&t, extra);
    ck_assert_int_eq(
            https_post(t.https, "/pub?topic=hv", "m", g_cli_cert, g_cli_key, resp, sizeof(resp)),
            200);
    ck_assert_int_eq(https_post(t.https, "/pub?topic=hv", "m", g_rogue_cert, g_rogue_key, resp,
                                sizeof(resp)),
                     0);
    ck_assert_int_eq(https_post(t.https, "/pub?topic=hv", "m", NULL, NULL, resp, sizeof(resp)), 0);
    /* The policy implies --tls-required=true: plain HTTP is refused. */
    ck_assert_int_eq(itest_http("POST", t.http, "/pub?topic=hv", "m", NULL), 403);
    tls_nsqd_stop(&t);
}
END_TEST

/* Every listener on a unix socket: the TLS upgrade and HTTPS work the same. */
START_TEST(unix_sockets)
{
    char *dir = harness_tmpdir();
    char tcp[PATH_LEN + 32], http[PATH_LEN + 32], https[PATH_LEN + 32], dp[PATH_LEN + 32];
    char cert[PATH_LEN + 16], key[PATH_LEN + 16];
    char tcp_path[PATH_LEN], https_path[PATH_LEN];
    snprintf(tcp_path, sizeof(tcp_path), "%s/tcp.sock", dir);
    snprintf(https_path, sizeof(https_path), "%s/https.sock", dir);
    snprintf(tcp, sizeof(tcp), "--tcp-address=%s", tcp_path);
    snprintf(http, sizeof(http), "--http-address=%s/http.sock", dir);
    snprintf(https, sizeof(https), "--https-address=%s", https_path);
    snprintf(dp, sizeof(dp), "--data-path=%s", dir);
    snprintf(cert, sizeof(cert), "--tls-cert=%s", g_srv_cert);
    snprintf(key, sizeof(key), "--tls-key=%s", g_srv_key);
    const char *args[] = {tcp, http, https, dp, cert, key, NULL};
    /* The harness parses host:port listeners only: await the last unix one in the log. */
    struct harness_proc *p = harness_start(NSQD_BIN, args, 0);
    ck_assert_ptr_nonnull(p);
    ck_assert(harness_log_wait(p, "HTTPS: listening on ", HARNESS_START_TIMEOUT_MS));

    struct conn pub, sub;
    conn_open_unix(&pub, tcp_path);
    conn_upgrade(&pub, NSQ_CODEC_DEFLATE, NULL, NULL);
    conn_pub(&pub, "unix_topic", "hello over tls");
    conn_open_unix(&sub, tcp_path);
    conn_upgrade(&sub, 0, NULL, NULL);
    conn_sub_expect(&sub, "unix_topic", "hello over tls");
    conn_close(&pub);
    conn_close(&sub);

    char resp[256] = "";
    g_https_unix = https_path;
    ck_assert_int_eq(https_post(0, "/pub?topic=unix_topic", "m", NULL, NULL, resp, sizeof(resp)),
                     200);
    ck_assert_str_eq(resp, "OK");
    g_https_unix = NULL;

    ck_assert_int_eq(harness_stop(p, 0), 0);
    /* The socket files are removed at exit. */
    ck_assert_int_ne(access(tcp_path, F_OK), 0);
    harness_rmdir(dir);
    free(dir);
}
END_TEST

/* --tls-min-version: an older client is refused; a TLS 1.3 session is reported as such. */
START_TEST(min_version)
{
    struct tls_nsqd t;
    const char *extra[] = {"--tls-min-version=tls1.3", NULL};
    tls_nsqd_start(&t, extra);
    struct conn c;
    char err[256];
    conn_open(&c, t.tcp);
    cJSON_Delete(conn_identify(&c, "{\"feature_negotiation\":true,\"tls_v1\":true}"));
    c.ctx = nsq_tls_client_ctx(g_ca, NULL, NULL, false, 0, err, sizeof(err));
    ck_assert_ptr_nonnull(c.ctx);
    SSL_CTX_set_max_proto_version(c.ctx, TLS1_2_VERSION);
    c.ssl = SSL_new(c.ctx);
    SSL_set_fd(c.ssl, c.fd);
    ck_assert_int_ne(SSL_connect(c.ssl), 1);
    conn_close(&c);

    conn_open(&c, t.tcp);
    conn_upgrade(&c, 0, NULL, NULL);
    ck_assert_int_eq(conn_send_str(&c, "SUB v13 ch\n"), 0);
    conn_expect(&c, ITEST_FRAME_RESP, "OK");
    cJSON *root = itest_stats(t.http, NULL);
    cJSON *cl = cJSON_GetArrayItem(
            cJSON_GetObjectItem(itest_stats_find(root, "v13", "ch"), "clients"), 0);
    ck_assert_ptr_nonnull(cl);
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(cl, "tls_version")), "TLS1.3");
    cJSON_Delete(root);
    conn_close(&c);
    tls_nsqd_stop(&t);
}
END_TEST

/* A client that asks for TLS and never starts the handshake is dropped after the deadline. */
START_TEST(handshake_deadline)
{
    struct tls_nsqd t;
    tls_nsqd_start(&t, NULL);
    struct conn c;
    conn_open(&c, t.tcp);
    cJSON_Delete(conn_identify(&c, "{\"feature_negotiation\":true,\"tls_v1\":true}"));
    int64_t start = harness_now_ms();
    ck_assert(harness_tcp_wait_closed(c.fd, 3 * HANDSHAKE_DEADLINE_MS));
    ck_assert_int_ge(harness_now_ms() - start, HANDSHAKE_DEADLINE_MS - 500);
    conn_close(&c);
    tls_nsqd_stop(&t);
}
END_TEST

/* ---- AUTH over TLS: the auth server sees tls=true and the client certificate's CN ---- */

struct cn_server {
    struct event_base *base;
    struct evhttp *http;
    pthread_t thread;
    int port;
    pthread_mutex_t lock;
    char last_query[1024]; /* guarded by lock */
};

static void cn_auth_cb(struct evhttp_request *req, void *arg)
{
    static const char reply[] = "{\"ttl\":60,\"identity\":\"tls-user\",\"authorizations\":"
                                "[{\"topic\":\".*\",\"channels\":[\".*\"],"
                                "\"permissions\":[\"publish\"]}]}";
    struct cn_server *s = arg;
    const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
    pthread_mutex_lock(&s->lock);
    snprintf(s->last_query, sizeof(s->last_query), "%s", q ? q : "");
    pthread_mutex_unlock(&s->lock);
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, reply, strlen(reply));
    evhttp_send_reply(req, 200, "OK", b);
    evbuffer_free(b);
}

static void *cn_thread(void *arg)
{
    struct cn_server *s = arg;
    event_base_dispatch(s->base);
    return NULL;
}

/* An HTTPS auth server: each accepted connection gets a TLS bufferevent. */
static struct bufferevent *cn_https_bev(struct event_base *base, void *arg)
{
    return bufferevent_openssl_socket_new(base, -1, SSL_new(arg), BUFFEREVENT_SSL_ACCEPTING,
                                          BEV_OPT_CLOSE_ON_FREE);
}

/* Runs the AUTH exchange against an auth server on http (https=false) or https. */
static void auth_over_tls_with(bool https)
{
    struct cn_server s;
    SSL_CTX *srv_ctx = NULL;
    char err[256];
    memset(&s, 0, sizeof(s));
    evthread_use_pthreads();
    pthread_mutex_init(&s.lock, NULL);
    s.base = event_base_new();
    s.http = evhttp_new(s.base);
    evhttp_set_gencb(s.http, cn_auth_cb, &s);
    if (https) {
        srv_ctx = nsq_tls_server_ctx(g_srv_cert, g_srv_key, NULL, NSQ_TLS_NO_CLIENT_CERT, 0, err,
                                     sizeof(err));
        ck_assert_msg(srv_ctx != NULL, "%s", err);
        evhttp_set_bevcb(s.http, cn_https_bev, srv_ctx);
    }
    struct evhttp_bound_socket *h = evhttp_bind_socket_with_handle(s.http, "127.0.0.1", 0);
    ck_assert_ptr_nonnull(h);
    struct sockaddr_in sin;
    socklen_t slen = sizeof(sin);
    ck_assert_int_eq(getsockname(evhttp_bound_socket_get_fd(h), (struct sockaddr *)&sin, &slen), 0);
    s.port = ntohs(sin.sin_port);
    ck_assert_int_eq(pthread_create(&s.thread, NULL, cn_thread, &s), 0);

    /* A full URL is used as given (here: https, trusted through --tls-root-ca-file). */
    char auth[128];
    if (https)
        snprintf(auth, sizeof(auth), "--auth-http-address=https://127.0.0.1:%d/auth", s.port);
    else
        snprintf(auth, sizeof(auth), "--auth-http-address=127.0.0.1:%d", s.port);
    const char *extra[] = {"--tls-client-auth-policy=require-verify", auth, NULL};
    struct tls_nsqd t;
    tls_nsqd_start(&t, extra);
    struct conn c;
    conn_open(&c, t.tcp);
    conn_upgrade(&c, NSQ_CODEC_SNAPPY, g_cli_cert, g_cli_key);
    ck_assert_int_eq(conn_send_cmd_body(&c, "AUTH\n", "s3cret &=", 9), 0);
    conn_expect(&c, ITEST_FRAME_RESP,
                "{\"identity\":\"tls-user\",\"identity_url\":\"\",\"permission_count\":1}");
    pthread_mutex_lock(&s.lock);
    ck_assert_str_eq(s.last_query,
                     "common_name=client&remote_ip=127.0.0.1&secret=s3cret+%26%3D&tls=true");
    pthread_mutex_unlock(&s.lock);
    conn_pub(&c, "authed_tls", "x");
    conn_close(&c);
    tls_nsqd_stop(&t);

    event_base_loopbreak(s.base);
    pthread_join(s.thread, NULL);
    evhttp_free(s.http);
    event_base_free(s.base);
    if (srv_ctx)
        SSL_CTX_free(srv_ctx);
}

START_TEST(auth_over_tls)
{
    auth_over_tls_with(false);
}
END_TEST

START_TEST(auth_server_https)
{
    auth_over_tls_with(true);
}
END_TEST

static Suite *tls_suite(void)
{
    Suite *s = suite_create("nsqd_tls");
    TCase *tc = tcase_create("tls");
    tcase_add_unchecked_fixture(tc, suite_setup, suite_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, tls_upgrade_pub_sub);
    tcase_add_test(tc, tls_not_configured);
    tcase_add_test(tc, tls_snappy);
    tcase_add_test(tc, tls_deflate);
    tcase_add_test(tc, policy_require);
    tcase_add_test(tc, policy_require_verify);
    tcase_add_test(tc, tls_required_true);
    tcase_add_test(tc, tls_required_tcp_https);
    tcase_add_test(tc, https_pub);
    tcase_add_test(tc, https_require_verify);
    tcase_add_test(tc, unix_sockets);
    tcase_add_test(tc, auth_over_tls);
    tcase_add_test(tc, auth_server_https);
    tcase_add_test(tc, min_version);
    tcase_add_test(tc, handshake_deadline);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(tls_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
