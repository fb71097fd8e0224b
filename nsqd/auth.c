/*
 * auth: auth-server queries and authorization checks (see auth.h).
 */
#include "auth.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <event2/buffer.h>

#include "nsq_http_client.h"
#include "nsq_log.h"
#include "nsq_time.h"
#include "nsqd.h"

#define AUTH_HTTP_OK 200

struct auth_query {
    struct nsqd *n;
    char *query; /* "common_name=...&remote_ip=...&secret=...&tls=..." */
    size_t next, tried;
    nsqd_auth_done_fn done;
    void *arg;
};

/* Go's url.QueryEscape. */
static void query_escape(struct evbuffer *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~')
            evbuffer_add(out, &s[i], 1);
        else if (c == ' ')
            evbuffer_add(out, "+", 1);
        else
            evbuffer_add_printf(out, "%%%c%c", hex[c >> 4], hex[c & 15]);
    }
}

static struct nsq_http_client *auth_client(struct nsqd *n)
{
    if (!n->http_client) {
        struct nsq_http_client_options o = {
                .connect_timeout_ns = n->opts->http_client_connect_timeout,
                .request_timeout_ns = n->opts->http_client_request_timeout,
                .ca_file = n->opts->tls_root_ca_file && *n->opts->tls_root_ca_file
                                   ? n->opts->tls_root_ca_file
                                   : NULL,
        };
        n->http_client = nsq_http_client_new(n->base, &o);
    }
    return n->http_client;
}

static void auth_state_clear_items(struct nsqd_auth_state *s)
{
    for (size_t i = 0; i < s->n_items; i++) {
        struct nsqd_authorization *a = &s->items[i];
        regfree(&a->topic);
        for (size_t k = 0; k < a->n_channels; k++)
            regfree(&a->channels[k]);
        free(a->channels);
    }
    free(s->items);
    s->items = NULL;
    s->n_items = 0;
}

void nsqd_auth_state_free(struct nsqd_auth_state *s)
{
    if (!s)
        return;
    auth_state_clear_items(s);
    free(s->identity);
    free(s->identity_url);
    free(s);
}

/*
 * RE2 → POSIX ERE: the Perl class escapes \d \D \w \W \s \S, which ERE lacks (glibc would read
 * "\d" as a literal 'd'), become bracket expressions; inside a bracket expression nothing is
 * rewritten. Other RE2-only syntax ((?i), non-greedy quantifiers, \pN) does not compile and so
 * makes the reply invalid, as an invalid expression would. Caller frees.
 */
static char *re2_to_ere(const char *re)
{
    static const struct {
        char esc;
        const char *cls;
    } classes[] = {
            {'d', "[0-9]"},         {'D', "[^0-9]"},      {'w', "[0-9A-Za-z_]"},
            {'W', "[^0-9A-Za-z_]"}, {'s', "[\t\n\f\r ]"}, {'S', "[^\t\n\f\r ]"},
    };
    struct evbuffer *b = evbuffer_new();
    if (!b)
        return NULL;
    bool in_bracket = false;
    for (const char *p = re; *p; p++) {
        if (!in_bracket && p[0] == '\\' && p[1]) {
            const char *cls = NULL;
            for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++)
                if (classes[i].esc == p[1])
                    cls = classes[i].cls;
            evbuffer_add(b, cls ? cls : p, cls ? strlen(cls) : 2);
            p++;
            continue;
        }
        if (!in_bracket && *p == '[') {
            in_bracket = true;
            evbuffer_add(b, p, 1);
            /* A ']' right after '[' or '[^' is a member, not the end. */
            if (p[1] == '^')
                evbuffer_add(b, ++p, 1);
            if (p[1] == ']')
                evbuffer_add(b, ++p, 1);
            continue;
        }
        if (in_bracket && *p == ']')
            in_bracket = false;
        evbuffer_add(b, p, 1);
    }
    evbuffer_add(b, "", 1);
    char *out = strdup((const char *)evbuffer_pullup(b, -1));
    evbuffer_free(b);
    return out;
}

static int compile(regex_t *re, const char *pattern)
{
    char *ere = re2_to_ere(pattern);
    if (!ere)
        return -ENOMEM;
    int rc = regcomp(re, ere, REG_EXTENDED | REG_NOSUB);
    free(ere);
    return rc == 0 ? 0 : -EINVAL;
}

/* Parses an auth server answer; NULL (with err) when invalid. */
static struct nsqd_auth_state *auth_parse(const char *body, size_t len, char *err, size_t errlen)
{
    cJSON *root = cJSON_ParseWithLength(body, len);
    struct nsqd_auth_state *s = calloc(1, sizeof(*s));
    if (!root || !s || !cJSON_IsObject(root)) {
        snprintf(err, errlen, "invalid JSON");
        goto fail;
    }
    const cJSON *ttl = cJSON_GetObjectItem(root, "ttl");
    /* Go decodes ttl into an int64: a fraction is a decoding error, <= 0 is rejected. */
    if (!cJSON_IsNumber(ttl) || ttl->valuedouble != (double)(int64_t)ttl->valuedouble ||
        ttl->valuedouble <= 0) {
        snprintf(err, errlen, "invalid TTL");
        goto fail;
    }
    const cJSON *id = cJSON_GetObjectItem(root, "identity");
    const cJSON *url = cJSON_GetObjectItem(root, "identity_url");
    s->identity = strdup(cJSON_IsString(id) ? id->valuestring : "");
    s->identity_url = strdup(cJSON_IsString(url) ? url->valuestring : "");
    s->expires_mono_ns = nsq_mono_ns() + (int64_t)ttl->valuedouble * NSQ_NS_PER_SEC;
    const cJSON *auths = cJSON_GetObjectItem(root, "authorizations");
    size_t n = cJSON_IsArray(auths) ? (size_t)cJSON_GetArraySize(auths) : 0;
    s->items = calloc(n ? n : 1, sizeof(*s->items));
    if (!s->identity || !s->identity_url || !s->items) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    const cJSON *a;
    if (!n)
        auths = NULL;
    cJSON_ArrayForEach(a, auths)
    {
        struct nsqd_authorization *it = &s->items[s->n_items];
        const cJSON *topic = cJSON_GetObjectItem(a, "topic");
        if (!cJSON_IsString(topic) || compile(&it->topic, topic->valuestring) != 0) {
            snprintf(err, errlen, "invalid topic regex");
            goto fail;
        }
        s->n_items++;
        const cJSON *chans = cJSON_GetObjectItem(a, "channels");
        size_t nc = cJSON_IsArray(chans) ? (size_t)cJSON_GetArraySize(chans) : 0;
        it->channels = calloc(nc ? nc : 1, sizeof(*it->channels));
        if (!it->channels) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        const cJSON *c;
        if (!nc)
            chans = NULL;
        cJSON_ArrayForEach(c, chans)
        {
            if (!cJSON_IsString(c) || compile(&it->channels[it->n_channels], c->valuestring)) {
                snprintf(err, errlen, "invalid channel regex");
                goto fail;
            }
            it->n_channels++;
        }
        const cJSON *perms = cJSON_GetObjectItem(a, "permissions");
        const cJSON *p;
        if (!cJSON_IsArray(perms))
            perms = NULL;
        cJSON_ArrayForEach(p, perms)
        {
            if (cJSON_IsString(p) && strcmp(p->valuestring, "subscribe") == 0) {
                it->subscribe = true;
            } else if (cJSON_IsString(p) && strcmp(p->valuestring, "publish") == 0) {
                it->publish = true;
            } else {
                snprintf(err, errlen, "unknown permission %s",
                         cJSON_IsString(p) ? p->valuestring : "?");
                goto fail;
            }
        }
    }
    cJSON_Delete(root);
    return s;
fail:
    cJSON_Delete(root);
    nsqd_auth_state_free(s);
    return NULL;
}

static void auth_query_free(struct auth_query *q)
{
    free(q->query);
    free(q);
}

static void auth_try_next(struct auth_query *q);

static void auth_response(const struct nsq_http_response *r, void *arg)
{
    struct auth_query *q = arg;
    const struct nsq_strlist *addrs = &q->n->opts->auth_http_addresses;
    const char *addr = addrs->items[(q->next + addrs->len - 1) % addrs->len];
    char err[256];
    if (q->n->exiting) {
        q->done(NULL, q->arg); /* shutting down: no retries */
        auth_query_free(q);
        return;
    }
    if (r->error) {
        nsq_warn("failed to auth against %s - %s", addr, r->error);
    } else if (r->status != AUTH_HTTP_OK) {
        nsq_warn("failed to auth against %s - got response %ld", addr, r->status);
    } else {
        struct nsqd_auth_state *s = auth_parse(r->body, r->body_len, err, sizeof(err));
        if (s) {
            q->done(s, q->arg);
            auth_query_free(q);
            return;
        }
        nsq_warn("failed to auth against %s - %s", addr, err);
    }
    auth_try_next(q);
}

/* Sends the query to one auth server: GET with the query string in the URL, or (with
   --auth-http-request-method=post) POST with the same parameters as a form body. */
static int auth_send(struct auth_query *q, struct nsq_http_client *hc, const char *addr)
{
    bool post = strcmp(q->n->opts->auth_http_request_method, "post") == 0;
    const char *sep = post ? "" : "?";
    const char *query = post ? "" : q->query;
    char url[4096];

    if (strstr(addr, "://"))
        snprintf(url, sizeof(url), "%s%s%s", addr, sep, query);
    else
        snprintf(url, sizeof(url), "http://%s/auth%s%s", addr, sep, query);
    if (post)
        return nsq_http_client_request(hc, "POST", url, q->query, strlen(q->query),
                                       "application/x-www-form-urlencoded", auth_response, q);
    return nsq_http_client_request(hc, "GET", url, NULL, 0, NULL, auth_response, q);
}

static void auth_try_next(struct auth_query *q)
{
    const struct nsq_strlist *addrs = &q->n->opts->auth_http_addresses;
    struct nsq_http_client *hc = auth_client(q->n);
    while (q->tried < addrs->len && hc) {
        const char *addr = addrs->items[q->next % addrs->len];
        q->next++;
        q->tried++;
        if (auth_send(q, hc, addr) == 0)
            return;
    }
    q->done(NULL, q->arg);
    auth_query_free(q);
}

int nsqd_auth_query(struct nsqd *n, const struct nsqd_auth_request *req, nsqd_auth_done_fn done,
                    void *arg)
{
    if (n->opts->auth_http_addresses.len == 0)
        return -EINVAL;
    struct auth_query *q = calloc(1, sizeof(*q));
    struct evbuffer *b = evbuffer_new();
    if (!q || !b) {
        free(q);
        if (b)
            evbuffer_free(b);
        return -ENOMEM;
    }
    evbuffer_add_printf(b, "common_name=");
    query_escape(b, req->common_name ? req->common_name : "",
                 req->common_name ? strlen(req->common_name) : 0);
    evbuffer_add_printf(b, "&remote_ip=");
    query_escape(b, req->remote_ip ? req->remote_ip : "",
                 req->remote_ip ? strlen(req->remote_ip) : 0);
    evbuffer_add_printf(b, "&secret=");
    query_escape(b, req->secret, req->secret_len);
    evbuffer_add_printf(b, "&tls=%s", req->tls ? "true" : "false");
    evbuffer_add(b, "", 1);
    q->query = strdup((const char *)evbuffer_pullup(b, -1));
    evbuffer_free(b);
    if (!q->query) {
        free(q);
        return -ENOMEM;
    }
    q->n = n;
    q->done = done;
    q->arg = arg;
    q->next = (size_t)random() % n->opts->auth_http_addresses.len;
    auth_try_next(q);
    return 0;
}

bool nsqd_auth_expired(const struct nsqd_auth_state *s)
{
    return nsq_mono_ns() >= s->expires_mono_ns;
}

static bool matches(const regex_t *re, const char *s)
{
    return regexec(re, s, 0, NULL, 0) == 0;
}

bool nsqd_auth_allows(const struct nsqd_auth_state *s, const char *topic, const char *channel,
                      bool subscribe)
{
    for (size_t i = 0; i < s->n_items; i++) {
        const struct nsqd_authorization *a = &s->items[i];
        if (subscribe ? !a->subscribe : !a->publish)
            continue;
        if (!matches(&a->topic, topic))
            continue;
        for (size_t k = 0; k < a->n_channels; k++)
            if (matches(&a->channels[k], channel))
                return true;
    }
    return false;
}
