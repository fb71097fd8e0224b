/*
 * nsq_http_client: outbound HTTP for the daemons (http-api.md §3): libcurl's multi interface driven
 * by a libevent base, so requests never block the loop; plus a blocking form for command-line
 * tools and tests.
 *
 * Every request sends `Accept: application/vnd.nsq; version=1.0`. A 403 answer to a plain-http
 * request whose JSON body carries "https_port" is retried once on https://<host>:<https_port>
 * (upstream's behaviour towards nsqd peers that require TLS). Other statuses are returned as they
 * are; deciding that non-200 is an error is the caller's business.
 *
 * Threads: a client belongs to the thread running its event base.
 */
#ifndef NSQ_HTTP_CLIENT_H
#define NSQ_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;

#define NSQ_HTTP_ACCEPT_V1 "application/vnd.nsq; version=1.0"

struct nsq_http_client_options {
    int64_t connect_timeout_ns; /* 0 → curl's default */
    int64_t request_timeout_ns; /* whole request; 0 → none */
    const char *ca_file, *cert_file, *key_file;
    bool insecure_skip_verify;
    bool follow_redirects; /* off by default */
};

struct nsq_http_response {
    long status;      /* 0 on transport failure */
    const char *body; /* NUL-terminated for convenience; body_len excludes the NUL */
    size_t body_len;
    const char *error;   /* non-NULL on transport failure (e.g. "Timeout was reached") */
    const char *headers; /* raw response header block of the final response */
    size_t headers_len;
};

/* Called once per request, on the loop thread. resp and its strings are valid during the call. */
typedef void (*nsq_http_done_fn)(const struct nsq_http_response *resp, void *arg);

/* Options and their strings are copied. Returns NULL on failure. */
struct nsq_http_client *nsq_http_client_new(struct event_base *base,
                                            const struct nsq_http_client_options *o);
/* Cancels pending requests (their callbacks get error "canceled") and frees. May be called from a
   done callback. NULL is a no-op. */
void nsq_http_client_free(struct nsq_http_client *c);

/* Starts a request; body (copied) may be NULL; content_type NULL → none. Returns 0, or -ENOMEM /
   -EINVAL (done is then not called). */
int nsq_http_client_request(struct nsq_http_client *c, const char *method, const char *url,
                            const void *body, size_t body_len, const char *content_type,
                            nsq_http_done_fn done, void *arg);
/* Number of requests in flight. */
size_t nsq_http_client_pending(const struct nsq_http_client *c);

/* Value of a response header (case-insensitive name, first occurrence), copied into buf. Returns
   0 or -ENOENT. */
int nsq_http_response_header(const struct nsq_http_response *r, const char *name, char *buf,
                             size_t len);

/* Blocking form. On success returns 0 with *status and a malloc'd NUL-terminated *resp_body (caller
   frees; resp_body/resp_len may be NULL). Transport failures: -ETIMEDOUT, -ECONNREFUSED, -EIO. */
int nsq_http_fetch(const char *method, const char *url, const void *body, size_t len,
                   const struct nsq_http_client_options *o, long *status, char **resp_body,
                   size_t *resp_len);

/* Blocking form keeping everything: *out is malloc'd (free with nsq_http_result_free); its
   strings are owned by it. Returns as nsq_http_fetch; out->error says why on failure. */
struct nsq_http_result {
    struct nsq_http_response resp;
    char *store; /* owns body, headers and error */
};
int nsq_http_fetch_full(const char *method, const char *url, const void *body, size_t len,
                        const char *content_type, const struct nsq_http_client_options *o,
                        struct nsq_http_result **out);
void nsq_http_result_free(struct nsq_http_result *r);

#endif
