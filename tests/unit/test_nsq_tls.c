/* Unit tests for common/nsq_tls.c: certificates made with the openssl command line in a temp dir,
 * handshakes over a socketpair for each client-auth policy and minimum version. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#include "nsq_tls.h"

#define HANDSHAKE_ROUNDS 2000

static char dir[64];
static char path_buf[16][256];
static int path_n;

static const char *path(const char *name)
{
    char *p = path_buf[path_n++ % 16];
    snprintf(p, sizeof(path_buf[0]), "%s/%s", dir, name);
    return p;
}

/* CA, server (CN localhost, SAN localhost + 127.0.0.1), client signed by the CA, and a "rogue"
 * self-signed client certificate. */
static void make_certs(void)
{
    char cmd[4096];
    strcpy(dir, "/tmp/nsq_tls_test_XXXXXX");
    if (!mkdtemp(dir))
        abort();
    snprintf(cmd, sizeof(cmd),
             "set -e; cd %s; exec >log 2>&1\n"
             "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 "
             "  -subj /CN=nsq-test-ca\n"
             "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > san.ext\n"
             "openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr "
             "  -subj /CN=localhost\n"
             "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
             "  -out server.pem -days 2 -extfile san.ext\n"
             "openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr "
             "  -subj /CN=test-client\n"
             "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
             "  -out client.pem -days 2\n"
             "openssl req -x509 -newkey rsa:2048 -nodes -keyout rogue.key -out rogue.pem -days 2 "
             "  -subj /CN=rogue-client\n",
             dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "openssl failed, see %s/log\n", dir);
        abort();
    }
}

/* Certificates are made once for the whole suite (RSA key generation is slow). */
static void remove_certs(void)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
}

struct conn {
    SSL *server, *client;
    int fds[2];
    bool server_ok, client_ok;
};

/* Drives both handshakes over a non-blocking socketpair. Returns true if both completed. After
 * the handshake each side exchanges one byte, so a late rejection (TLS 1.3 client certificates
 * are judged after the client has finished) shows up too. */
static bool handshake(SSL_CTX *sctx, SSL_CTX *cctx, const char *host, int client_max,
                      struct conn *c)
{
    memset(c, 0, sizeof(*c));
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, c->fds), 0);
    for (int i = 0; i < 2; i++)
        fcntl(c->fds[i], F_SETFL, O_NONBLOCK);
    c->server = SSL_new(sctx);
    c->client = SSL_new(cctx);
    SSL_set_fd(c->server, c->fds[0]);
    SSL_set_fd(c->client, c->fds[1]);
    if (client_max)
        SSL_set_max_proto_version(c->client, client_max);
    if (host)
        ck_assert_int_eq(nsq_tls_client_set_host(c->client, host), 0);
    SSL_set_accept_state(c->server);
    SSL_set_connect_state(c->client);

    bool sfail = false, cfail = false;
    bool s_read = false, c_read = false;
    for (int i = 0; i < HANDSHAKE_ROUNDS && !(sfail || cfail) && !(s_read && c_read); i++) {
        SSL *sides[2] = {c->server, c->client};
        bool *ok[2] = {&c->server_ok, &c->client_ok};
        bool *fail[2] = {&sfail, &cfail};
        bool *got[2] = {&s_read, &c_read};
        for (int s = 0; s < 2; s++) {
            if (*fail[s])
                continue;
            if (!*ok[s]) {
                int r = SSL_do_handshake(sides[s]);
                if (r == 1) {
                    *ok[s] = true;
                    SSL_write(sides[s], "x", 1);
                } else {
                    int e = SSL_get_error(sides[s], r);
                    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
                        *fail[s] = true;
                }
            } else if (!*got[s]) {
                char b;
                int r = SSL_read(sides[s], &b, 1);
                if (r == 1)
                    *got[s] = true;
                else {
                    int e = SSL_get_error(sides[s], r);
                    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
                        *fail[s] = true;
                }
            }
        }
    }
    ERR_clear_error();
    return c->server_ok && c->client_ok && s_read && c_read;
}

static void conn_free(struct conn *c)
{
    SSL_free(c->server);
    SSL_free(c->client);
    close(c->fds[0]);
    close(c->fds[1]);
}

static SSL_CTX *server(enum nsq_tls_client_auth policy, int min)
{
    char err[256];
    SSL_CTX *ctx = nsq_tls_server_ctx(path("server.pem"), path("server.key"), path("ca.pem"),
                                      policy, min, err, sizeof(err));
    ck_assert_msg(ctx != NULL, "%s", err);
    return ctx;
}

static SSL_CTX *client(const char *cert, const char *key, bool insecure, int min)
{
    char err[256];
    SSL_CTX *ctx = nsq_tls_client_ctx(path("ca.pem"), cert, key, insecure, min, err, sizeof(err));
    ck_assert_msg(ctx != NULL, "%s", err);
    return ctx;
}

static bool try_pair(SSL_CTX *s, SSL_CTX *c, const char *host, int client_max, char *version,
                     char *cipher, char *cn)
{
    struct conn k;
    bool ok = handshake(s, c, host, client_max, &k);
    if (ok && version)
        strcpy(version, nsq_tls_version_name(k.server));
    if (ok && cipher)
        strcpy(cipher, nsq_tls_cipher_name(k.server));
    if (ok && cn)
        nsq_tls_peer_common_name(k.server, cn, 64);
    conn_free(&k);
    return ok;
}

START_TEST(test_parse)
{
    int v;
    enum nsq_tls_client_auth a;
    ck_assert_int_eq(nsq_tls_parse_min_version("tls1.0", &v), 0);
    ck_assert_int_eq(v, TLS1_VERSION);
    ck_assert_int_eq(nsq_tls_parse_min_version("TLS1.1", &v), 0);
    ck_assert_int_eq(v, TLS1_1_VERSION);
    ck_assert_int_eq(nsq_tls_parse_min_version("tls1.2", &v), 0);
    ck_assert_int_eq(v, TLS1_2_VERSION);
    ck_assert_int_eq(nsq_tls_parse_min_version("tls1.3", &v), 0);
    ck_assert_int_eq(v, TLS1_3_VERSION);
    ck_assert_int_eq(v, 769 + 3);
    ck_assert_int_eq(nsq_tls_parse_min_version("ssl3.0", &v), -EINVAL);
    ck_assert_int_eq(nsq_tls_parse_min_version("", &v), -EINVAL);
    ck_assert_int_eq(nsq_tls_parse_min_version("tls1.4", &v), -EINVAL);
    ck_assert_int_eq(nsq_tls_parse_client_auth("", &a), 0);
    ck_assert_int_eq(a, NSQ_TLS_NO_CLIENT_CERT);
    ck_assert_int_eq(nsq_tls_parse_client_auth("require", &a), 0);
    ck_assert_int_eq(a, NSQ_TLS_REQUIRE);
    ck_assert_int_eq(nsq_tls_parse_client_auth("require-verify", &a), 0);
    ck_assert_int_eq(a, NSQ_TLS_REQUIRE_VERIFY);
    ck_assert_int_eq(nsq_tls_parse_client_auth("verify", &a), -EINVAL);
}
END_TEST

START_TEST(test_names)
{
    ck_assert_str_eq(nsq_tls_version_code_name(TLS1_VERSION), "TLS1.0");
    ck_assert_str_eq(nsq_tls_version_code_name(TLS1_1_VERSION), "TLS1.1");
    ck_assert_str_eq(nsq_tls_version_code_name(TLS1_2_VERSION), "TLS1.2");
    ck_assert_str_eq(nsq_tls_version_code_name(TLS1_3_VERSION), "TLS1.3");
    ck_assert_str_eq(nsq_tls_version_code_name(0x0305), "Unknown 773");
    ck_assert_str_eq(nsq_tls_version_name(NULL), "");
    ck_assert_str_eq(nsq_tls_cipher_name(NULL), "");
}
END_TEST

START_TEST(test_bad_files)
{
    char err[256] = "";
    ck_assert_ptr_null(nsq_tls_server_ctx("/nonexistent.pem", "/nonexistent.key", NULL,
                                          NSQ_TLS_NO_CLIENT_CERT, 0, err, sizeof(err)));
    ck_assert_str_eq(err, "open /nonexistent.pem: No such file or directory");
    /* key of another certificate */
    ck_assert_ptr_null(nsq_tls_server_ctx(path("server.pem"), path("client.key"), NULL,
                                          NSQ_TLS_NO_CLIENT_CERT, 0, err, sizeof(err)));
    ck_assert_ptr_null(nsq_tls_server_ctx(path("server.pem"), path("server.key"),
                                          "/nonexistent-ca.pem", NSQ_TLS_REQUIRE_VERIFY, 0, err,
                                          sizeof(err)));
    ck_assert_str_eq(err, "open /nonexistent-ca.pem: No such file or directory");
    /* A readable file that is not PEM. */
    ck_assert_ptr_null(nsq_tls_server_ctx(path("san.ext"), path("server.key"), NULL,
                                          NSQ_TLS_NO_CLIENT_CERT, 0, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "san.ext"));
    ck_assert_ptr_null(
            nsq_tls_client_ctx(NULL, path("client.pem"), NULL, false, 0, err, sizeof(err)));
    ck_assert_ptr_null(
            nsq_tls_server_ctx("", "", NULL, NSQ_TLS_NO_CLIENT_CERT, 0, err, sizeof(err)));
}
END_TEST

START_TEST(test_no_client_cert_policy)
{
    char version[64], cipher[64];
    SSL_CTX *s = server(NSQ_TLS_NO_CLIENT_CERT, TLS1_VERSION);
    SSL_CTX *c = client(NULL, NULL, false, 0);

    ck_assert(try_pair(s, c, "localhost", 0, version, cipher, NULL));
    ck_assert_str_eq(version, "TLS1.3");
    ck_assert_msg(strncmp(cipher, "TLS_AES_", 8) == 0 || strncmp(cipher, "TLS_CHACHA20", 12) == 0,
                  "%s", cipher);
    ck_assert(try_pair(s, c, "127.0.0.1", TLS1_2_VERSION, version, cipher, NULL));
    ck_assert_str_eq(version, "TLS1.2");
    ck_assert_msg(strncmp(cipher, "TLS_ECDHE_RSA_WITH_", 19) == 0, "%s", cipher);

    /* A client cert offered anyway is harmless. */
    SSL_CTX *c2 = client(path("client.pem"), path("client.key"), false, 0);
    ck_assert(try_pair(s, c2, "localhost", 0, NULL, NULL, NULL));

    /* The server name is checked when given. */
    ck_assert(!try_pair(s, c, "example.com", 0, NULL, NULL, NULL));
    SSL_CTX *ins = client(NULL, NULL, true, 0);
    ck_assert(try_pair(s, ins, "example.com", 0, NULL, NULL, NULL));
    /* A client trusting other roots refuses the server. */
    char err[256];
    SSL_CTX *other = nsq_tls_client_ctx(path("rogue.pem"), NULL, NULL, false, 0, err, sizeof(err));
    ck_assert_ptr_nonnull(other);
    ck_assert(!try_pair(s, other, "localhost", 0, NULL, NULL, NULL));

    SSL_CTX_free(s);
    SSL_CTX_free(c);
    SSL_CTX_free(c2);
    SSL_CTX_free(ins);
    SSL_CTX_free(other);
}
END_TEST

/* _i: 0 → TLS 1.3, 1 → TLS 1.2 (client certificates are checked at different moments). */
START_TEST(test_require_policy)
{
    int max = _i ? TLS1_2_VERSION : 0;
    char cn[64];
    SSL_CTX *s = server(NSQ_TLS_REQUIRE, 0);
    SSL_CTX *none = client(NULL, NULL, false, 0);
    SSL_CTX *good = client(path("client.pem"), path("client.key"), false, 0);
    SSL_CTX *rogue = client(path("rogue.pem"), path("rogue.key"), false, 0);

    ck_assert(!try_pair(s, none, "localhost", max, NULL, NULL, NULL));
    ck_assert(try_pair(s, good, "localhost", max, NULL, NULL, cn));
    ck_assert_str_eq(cn, "test-client");
    /* require: any certificate, even one no CA vouches for */
    ck_assert(try_pair(s, rogue, "localhost", max, NULL, NULL, cn));
    ck_assert_str_eq(cn, "rogue-client");

    SSL_CTX_free(s);
    SSL_CTX_free(none);
    SSL_CTX_free(good);
    SSL_CTX_free(rogue);
}
END_TEST

START_TEST(test_require_verify_policy)
{
    int max = _i ? TLS1_2_VERSION : 0;
    SSL_CTX *s = server(NSQ_TLS_REQUIRE_VERIFY, 0);
    SSL_CTX *none = client(NULL, NULL, false, 0);
    SSL_CTX *good = client(path("client.pem"), path("client.key"), false, 0);
    SSL_CTX *rogue = client(path("rogue.pem"), path("rogue.key"), false, 0);

    ck_assert(!try_pair(s, none, "localhost", max, NULL, NULL, NULL));
    ck_assert(try_pair(s, good, "localhost", max, NULL, NULL, NULL));
    ck_assert(!try_pair(s, rogue, "localhost", max, NULL, NULL, NULL));

    SSL_CTX_free(s);
    SSL_CTX_free(none);
    SSL_CTX_free(good);
    SSL_CTX_free(rogue);
}
END_TEST

START_TEST(test_min_version)
{
    char version[64];
    SSL_CTX *s13 = server(NSQ_TLS_NO_CLIENT_CERT, TLS1_3_VERSION);
    SSL_CTX *s12 = server(NSQ_TLS_NO_CLIENT_CERT, TLS1_2_VERSION);
    SSL_CTX *s10 = server(NSQ_TLS_NO_CLIENT_CERT, TLS1_VERSION);
    SSL_CTX *c = client(NULL, NULL, false, TLS1_VERSION);

    ck_assert(!try_pair(s13, c, "localhost", TLS1_2_VERSION, NULL, NULL, NULL));
    ck_assert(try_pair(s13, c, "localhost", 0, version, NULL, NULL));
    ck_assert_str_eq(version, "TLS1.3");
    ck_assert(!try_pair(s12, c, "localhost", TLS1_1_VERSION, NULL, NULL, NULL));
    ck_assert(try_pair(s12, c, "localhost", TLS1_2_VERSION, version, NULL, NULL));
    ck_assert_str_eq(version, "TLS1.2");
    /* tls1.0 really admits old clients, as upstream does. */
    ck_assert(try_pair(s10, c, "localhost", TLS1_1_VERSION, version, NULL, NULL));
    ck_assert_str_eq(version, "TLS1.1");
    ck_assert(try_pair(s10, c, "localhost", TLS1_VERSION, version, NULL, NULL));
    ck_assert_str_eq(version, "TLS1.0");

    SSL_CTX_free(s13);
    SSL_CTX_free(s12);
    SSL_CTX_free(s10);
    SSL_CTX_free(c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("nsq_tls");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_unchecked_fixture(tc, make_certs, remove_certs);
    tcase_add_test(tc, test_parse);
    tcase_add_test(tc, test_names);
    tcase_add_test(tc, test_bad_files);
    tcase_add_test(tc, test_no_client_cert_policy);
    tcase_add_loop_test(tc, test_require_policy, 0, 2);
    tcase_add_loop_test(tc, test_require_verify_policy, 0, 2);
    tcase_add_test(tc, test_min_version);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
