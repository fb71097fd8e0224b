/*
 * nsq_tls: OpenSSL context setup for nsqd's TLS listener and for TLS clients.
 *
 * Client authentication policies map onto OpenSSL's verify modes: "require" asks for a certificate
 * and fails the handshake without one, but a verify callback accepts any chain (Go's
 * RequireAnyClientCert); "require-verify" uses OpenSSL's normal chain verification against the
 * root CA (Go's RequireAndVerifyClientCert).
 *
 * OpenSSL 3 refuses TLS 1.0/1.1 at its default security level (they need SHA-1 signatures); when
 * the configured minimum is below TLS 1.2 the level is lowered to 0 so those versions really work,
 * as they do upstream. With tls1.2 or higher the default level is kept.
 */
#include "nsq_tls.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#define TLS_NAME_LEN      48
#define TLS_LOW_SEC_LEVEL 0 /* needed for TLS 1.0/1.1 with OpenSSL 3 */

static const struct {
    const char *flag;
    int version;
} min_versions[] = {
        {"tls1.0", TLS1_VERSION},
        {"tls1.1", TLS1_1_VERSION},
        {"tls1.2", TLS1_2_VERSION},
        {"tls1.3", TLS1_3_VERSION},
};

int nsq_tls_parse_min_version(const char *s, int *out)
{
    for (size_t i = 0; i < sizeof(min_versions) / sizeof(min_versions[0]); i++) {
        if (s && strcasecmp(s, min_versions[i].flag) == 0) {
            *out = min_versions[i].version;
            return 0;
        }
    }
    return -EINVAL;
}

int nsq_tls_parse_client_auth(const char *s, enum nsq_tls_client_auth *out)
{
    if (!s || s[0] == '\0')
        *out = NSQ_TLS_NO_CLIENT_CERT;
    else if (strcmp(s, "require") == 0)
        *out = NSQ_TLS_REQUIRE;
    else if (strcmp(s, "require-verify") == 0)
        *out = NSQ_TLS_REQUIRE_VERIFY;
    else
        return -EINVAL;
    return 0;
}

/* Writes "<what> <file>: <openssl reason>" into err and clears OpenSSL's error queue. */
static void tls_error(char *err, size_t errlen, const char *what, const char *file)
{
    unsigned long e = ERR_peek_last_error();
    char reason[256] = "unknown error";

    if (e)
        ERR_error_string_n(e, reason, sizeof(reason));
    ERR_clear_error();
    if (err && errlen)
        snprintf(err, errlen, "%s%s%s: %s", what, file ? " " : "", file ? file : "", reason);
}

/* Go reports an unreadable file as "open <file>: <reason>"; so do we, before OpenSSL tries it. */
static int check_readable(const char *file, char *err, size_t errlen)
{
    FILE *f = fopen(file, "r");
    if (!f) {
        if (err && errlen)
            snprintf(err, errlen, "open %s: %s", file, strerror(errno));
        return -1;
    }
    fclose(f);
    return 0;
}

static int set_min_version(SSL_CTX *ctx, int min_version)
{
    if (min_version == 0)
        min_version = NSQ_TLS_DEFAULT_MIN_VERSION;
    if (!SSL_CTX_set_min_proto_version(ctx, min_version))
        return -1;
    if (min_version < TLS1_2_VERSION)
        SSL_CTX_set_security_level(ctx, TLS_LOW_SEC_LEVEL);
    return 0;
}

static int load_cert_key(SSL_CTX *ctx, const char *cert, const char *key, char *err, size_t errlen)
{
    if (check_readable(cert, err, errlen) < 0 || check_readable(key, err, errlen) < 0)
        return -1;
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        tls_error(err, errlen, "cannot load certificate", cert);
        return -1;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        tls_error(err, errlen, "cannot load key", key);
        return -1;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        tls_error(err, errlen, "private key does not match certificate", cert);
        return -1;
    }
    return 0;
}

static int load_roots(SSL_CTX *ctx, const char *root_ca, char *err, size_t errlen)
{
    if (root_ca && root_ca[0]) {
        if (check_readable(root_ca, err, errlen) < 0)
            return -1;
        if (SSL_CTX_load_verify_locations(ctx, root_ca, NULL) != 1) {
            tls_error(err, errlen, "cannot load root CA", root_ca);
            return -1;
        }
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        tls_error(err, errlen, "cannot load system root CAs", NULL);
        return -1;
    }
    return 0;
}

/* "require": any certificate the client presents is accepted. */
static int accept_any_cert(int preverify_ok, X509_STORE_CTX *store)
{
    (void)preverify_ok;
    (void)store;
    return 1;
}

static SSL_CTX *new_ctx(const SSL_METHOD *method, int min_version, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(method);
    if (!ctx) {
        tls_error(err, errlen, "cannot create TLS context", NULL);
        return NULL;
    }
    if (set_min_version(ctx, min_version) < 0) {
        tls_error(err, errlen, "invalid minimum TLS version", NULL);
        SSL_CTX_free(ctx);
        return NULL;
    }
    /* Idle connections should not each pin 2 x 16 KiB of record buffers. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
    return ctx;
}

SSL_CTX *nsq_tls_server_ctx(const char *cert, const char *key, const char *root_ca,
                            enum nsq_tls_client_auth policy, int min_version, char *err,
                            size_t errlen)
{
    ERR_clear_error();
    if (!cert || !cert[0] || !key || !key[0]) {
        if (err && errlen)
            snprintf(err, errlen, "certificate and key are required");
        return NULL;
    }
    SSL_CTX *ctx = new_ctx(TLS_server_method(), min_version, err, errlen);
    if (!ctx)
        return NULL;
    if (load_cert_key(ctx, cert, key, err, errlen) < 0)
        goto err;

    switch (policy) {
    case NSQ_TLS_NO_CLIENT_CERT:
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
        break;
    case NSQ_TLS_REQUIRE:
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, accept_any_cert);
        break;
    case NSQ_TLS_REQUIRE_VERIFY:
        if (load_roots(ctx, root_ca, err, errlen) < 0)
            goto err;
        if (root_ca && root_ca[0]) {
            /* Tell clients which CAs are acceptable; a failure here only loses the hint. */
            STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(root_ca);
            if (names)
                SSL_CTX_set_client_CA_list(ctx, names);
            ERR_clear_error();
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
        break;
    default:
        if (err && errlen)
            snprintf(err, errlen, "invalid client auth policy");
        goto err;
    }
    return ctx;
err:
    SSL_CTX_free(ctx);
    return NULL;
}

SSL_CTX *nsq_tls_client_ctx(const char *root_ca, const char *cert, const char *key, bool insecure,
                            int min_version, char *err, size_t errlen)
{
    bool have_cert = cert && cert[0], have_key = key && key[0];

    ERR_clear_error();
    if (have_cert != have_key) {
        if (err && errlen)
            snprintf(err, errlen, "certificate and key must be given together");
        return NULL;
    }
    SSL_CTX *ctx = new_ctx(TLS_client_method(), min_version, err, errlen);
    if (!ctx)
        return NULL;
    if (have_cert && load_cert_key(ctx, cert, key, err, errlen) < 0)
        goto err;
    if (insecure) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    } else {
        if (load_roots(ctx, root_ca, err, errlen) < 0)
            goto err;
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    }
    return ctx;
err:
    SSL_CTX_free(ctx);
    return NULL;
}

int nsq_tls_client_set_host(SSL *ssl, const char *host)
{
    X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
    ASN1_OCTET_STRING *ip;

    if (!host || !host[0])
        return -EINVAL;
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    ip = a2i_IPADDRESS(host);
    if (ip) {
        /* An address is matched against IP SANs and is not sent as SNI. */
        ASN1_OCTET_STRING_free(ip);
        return X509_VERIFY_PARAM_set1_ip_asc(param, host) == 1 ? 0 : -EINVAL;
    }
    ERR_clear_error();
    if (SSL_set_tlsext_host_name(ssl, host) != 1 || SSL_set1_host(ssl, host) != 1)
        return -EINVAL;
    return 0;
}

const char *nsq_tls_version_code_name(int version)
{
    static _Thread_local char buf[TLS_NAME_LEN];

    switch (version) {
    case SSL3_VERSION:
        return "SSL3.0";
    case TLS1_VERSION:
        return "TLS1.0";
    case TLS1_1_VERSION:
        return "TLS1.1";
    case TLS1_2_VERSION:
        return "TLS1.2";
    case TLS1_3_VERSION:
        return "TLS1.3";
    default:
        snprintf(buf, sizeof(buf), "Unknown %d", version);
        return buf;
    }
}

const char *nsq_tls_version_name(const SSL *ssl)
{
    if (!ssl)
        return "";
    return nsq_tls_version_code_name(SSL_version(ssl));
}

const char *nsq_tls_cipher_name(const SSL *ssl)
{
    static _Thread_local char buf[TLS_NAME_LEN];

    if (!ssl)
        return "";
    const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
    if (!c)
        return "";
    const char *name = SSL_CIPHER_standard_name(c);
    if (name)
        return name;
    snprintf(buf, sizeof(buf), "Unknown %u", (unsigned)SSL_CIPHER_get_protocol_id(c));
    return buf;
}

int nsq_tls_peer_common_name(const SSL *ssl, char *buf, size_t len)
{
    if (len)
        buf[0] = '\0';
    X509 *peer = SSL_get1_peer_certificate(ssl);
    if (!peer)
        return -ENOENT;
    X509_NAME *subject = X509_get_subject_name(peer);
    int n = subject ? X509_NAME_get_text_by_NID(subject, NID_commonName, buf, (int)len) : -1;
    X509_free(peer);
    if (n < 0) {
        if (len)
            buf[0] = '\0';
        return -ENOENT;
    }
    return 0;
}
