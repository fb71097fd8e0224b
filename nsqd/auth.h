/*
 * auth: nsqd's client of an external auth server (http-api.md §6, tcp-protocol.md §4.2).
 *
 * AUTH sends the client's secret to one of the --auth-http-address servers (starting at a random
 * one, trying each in turn) and keeps the answer: an identity and a list of authorizations
 * (topic regex, channel regexes, permissions) valid for `ttl` seconds. SUB and the publish
 * commands then check the cached authorizations, re-querying once they have expired.
 *
 * Queries are asynchronous (nsq_http_client on the nsqd loop); the caller pauses the connection
 * until `done` runs. Regular expressions arrive in RE2 syntax; they are compiled as POSIX extended
 * expressions (regcomp) after rewriting the class escapes \d \D \w \W \s \S into bracket
 * expressions, and matched unanchored like RE2's MatchString. RE2-only syntax beyond that ((?i),
 * non-greedy quantifiers, \pN) does not compile, which makes the auth server's reply invalid.
 */
#ifndef NSQD_AUTH_H
#define NSQD_AUTH_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct nsqd;

struct nsqd_authorization {
    regex_t topic;
    regex_t *channels;
    size_t n_channels;
    bool subscribe;
    bool publish;
};

struct nsqd_auth_state {
    char *identity;
    char *identity_url;
    struct nsqd_authorization *items;
    size_t n_items;
    int64_t expires_mono_ns;
};

/* Parameters of one query; strings are copied. */
struct nsqd_auth_request {
    const char *secret;
    size_t secret_len;
    const char *remote_ip;
    const char *common_name;
    bool tls;
};

/* done gets the new state (ownership passes to done) or NULL when every server failed / answered
   invalidly (details logged). Called exactly once, possibly after the request's client closed. */
typedef void (*nsqd_auth_done_fn)(struct nsqd_auth_state *state, void *arg);

/* Starts a query. Returns 0, or -ENOMEM / -EINVAL (done not called). */
int nsqd_auth_query(struct nsqd *n, const struct nsqd_auth_request *req, nsqd_auth_done_fn done,
                    void *arg);

bool nsqd_auth_expired(const struct nsqd_auth_state *s);
/* SUB: an authorization with "subscribe" whose topic regex matches and one channel regex matches.
   Publish: "publish", topic matches, and a channel regex matches "". */
bool nsqd_auth_allows(const struct nsqd_auth_state *s, const char *topic, const char *channel,
                      bool subscribe);
void nsqd_auth_state_free(struct nsqd_auth_state *s);

#endif
