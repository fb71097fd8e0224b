/*
 * nsq_tls: OpenSSL contexts configured the way nsqd's flags describe them (--tls-cert, --tls-key,
 * --tls-root-ca-file, --tls-client-auth-policy, --tls-min-version) and the names /stats reports
 * for a negotiated session (Go's forms: "TLS1.2", IANA cipher suite names).
 *
 * Contexts are reference counted by OpenSSL: the caller owns the returned SSL_CTX and releases it
 * with SSL_CTX_free; every SSL made from it holds its own reference.
 */
#ifndef NSQ_TLS_H
#define NSQ_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

enum nsq_tls_client_auth {
    NSQ_TLS_NO_CLIENT_CERT, /* "" : no client certificate requested */
    NSQ_TLS_REQUIRE,        /* "require": a client certificate is required but not verified */
    NSQ_TLS_REQUIRE_VERIFY, /* "require-verify": required and verified against the root CA */
};

/* Default of --tls-min-version. */
#define NSQ_TLS_DEFAULT_MIN_VERSION TLS1_VERSION

/* Parses --tls-client-auth-policy ("", "require", "require-verify"). 0 or -EINVAL. */
int nsq_tls_parse_client_auth(const char *s, enum nsq_tls_client_auth *out);

/* Parses "tls1.0".."tls1.3" (case-insensitive) into TLS1_VERSION..TLS1_3_VERSION. 0 or -EINVAL
 * (also for "ssl3.0", which upstream's help mentions but rejects). */
int nsq_tls_parse_min_version(const char *s, int *out);

/*
 * Server context: cert (PEM chain) and key are required. root_ca (may be NULL or "") is the CA
 * bundle client certificates are verified against under NSQ_TLS_REQUIRE_VERIFY (the system's
 * default roots when absent). min_version is a TLS*_VERSION code (0 → NSQ_TLS_DEFAULT_MIN_VERSION);
 * versions below TLS 1.2 are really enabled (OpenSSL's security level is lowered for them).
 * Returns NULL with a message in err on failure: "open <file>: <strerror>" for an unreadable file
 * (Go's wording), otherwise "<what> <file>: <OpenSSL error>".
 */
SSL_CTX *nsq_tls_server_ctx(const char *cert, const char *key, const char *root_ca,
                            enum nsq_tls_client_auth policy, int min_version, char *err,
                            size_t errlen);

/*
 * Client context: root_ca (NULL/"" → system roots) verifies the server unless insecure; cert and
 * key (both or neither) are presented when the server asks. The server name is checked only if
 * the caller names it per connection with nsq_tls_client_set_host.
 */
SSL_CTX *nsq_tls_client_ctx(const char *root_ca, const char *cert, const char *key, bool insecure,
                            int min_version, char *err, size_t errlen);

/* Sets SNI (for a DNS name) and the name or IP address the server certificate must match.
 * Returns 0 or -EINVAL. */
int nsq_tls_client_set_host(SSL *ssl, const char *host);

/* Go's names for the negotiated version ("TLS1.0".."TLS1.3", "SSL3.0", else "Unknown <n>") and the
 * IANA cipher suite name ("Unknown <n>" when OpenSSL has none). "" for ssl == NULL. The strings
 * are static or thread-local: valid until the next call on the same thread. */
const char *nsq_tls_version_name(const SSL *ssl);
const char *nsq_tls_cipher_name(const SSL *ssl);
/* The same from a raw protocol version code. */
const char *nsq_tls_version_code_name(int version);

/* Common name of the peer's certificate into buf (empty if none). Returns 0 or -ENOENT. */
int nsq_tls_peer_common_name(const SSL *ssl, char *buf, size_t len);

#endif
