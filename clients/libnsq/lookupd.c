/*
 * lookupd: producer discovery through nsqlookupd's HTTP API. One query owns one evhttp
 * connection; it is freed after its callback (or by a cancel).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "lookupd.h"
#include "nsq_net.h"
#include "nsq_time.h"

#define LOOKUPD_ACCEPT   "application/vnd.nsq; version=1.0"
#define LOOKUPD_MAX_BODY (16 * 1024 * 1024)

struct nsq_lookupd_query {
    struct evhttp_connection *conn;
    struct event *done_ev; /* frees the query after the callback, outside evhttp's stack */
    nsq_lookupd_cb cb;
    void *arg;
    bool finished;
};

int nsq_lookupd_parse_addr(const char *addr, char *host, size_t hostlen, int *port)
{
    const char *p = addr;
    char tmp[NSQ_NET_ADDRSTRLEN];
    if (!strncmp(p, "http://", 7))
        p += 7;
    else if (strstr(p, "://"))
        return -EINVAL;
    size_t len = strcspn(p, "/");
    if (len == 0 || len >= sizeof(tmp))
        return -EINVAL;
    memcpy(tmp, p, len);
    tmp[len] = '\0';
    return nsq_split_host_port(tmp, host, hostlen, port);
}

static int add_addr(char ***addrs, size_t *n, const char *host, int port)
{
    char buf[NSQ_NET_ADDRSTRLEN];
    if (nsq_join_host_port(host, port, buf, sizeof(buf)) < 0)
        return 0; /* skip absurd entries */
    char **grown = realloc(*addrs, (*n + 1) * sizeof(**addrs));
    if (!grown)
        return -ENOMEM;
    *addrs = grown;
    if (!(grown[*n] = strdup(buf)))
        return -ENOMEM;
    (*n)++;
    return 0;
}

int nsq_lookupd_parse_producers(const char *body, size_t len, char ***addrs, size_t *n)
{
    *addrs = NULL;
    *n = 0;
    cJSON *root = cJSON_ParseWithLength(body, len);
    if (!root)
        return -EBADMSG;
    const cJSON *obj = root;
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
    if (cJSON_IsObject(data))
        obj = data;
    const cJSON *producers = cJSON_GetObjectItemCaseSensitive(obj, "producers");
    const cJSON *p;
    int rc = 0;
    cJSON_ArrayForEach(p, producers)
    {
        const cJSON *ba = cJSON_GetObjectItemCaseSensitive(p, "broadcast_address");
        const cJSON *tp = cJSON_GetObjectItemCaseSensitive(p, "tcp_port");
        if (!cJSON_IsString(ba) || !cJSON_IsNumber(tp))
            continue;
        if ((rc = add_addr(addrs, n, ba->valuestring, (int)tp->valuedouble)) < 0)
            break;
    }
    cJSON_Delete(root);
    if (rc < 0) {
        for (size_t i = 0; i < *n; i++)
            free((*addrs)[i]);
        free(*addrs);
        *addrs = NULL;
        *n = 0;
    }
    return rc;
}

static void query_free(struct nsq_lookupd_query *q)
{
    if (q->conn)
        evhttp_connection_free(q->conn);
    if (q->done_ev)
        event_free(q->done_ev);
    free(q);
}

static void done_cb(evutil_socket_t fd, short what, void *arg)
{
    query_free(arg);
}

static void request_cb(struct evhttp_request *req, void *arg)
{
    struct nsq_lookupd_query *q = arg;
    char **addrs = NULL;
    size_t n = 0;
    int err;
    if (q->finished)
        return;
    q->finished = true;
    if (!req || evhttp_request_get_response_code(req) == 0) {
        err = -ECONNREFUSED;
    } else if (evhttp_request_get_response_code(req) == 404) {
        err = 0;
    } else if (evhttp_request_get_response_code(req) != 200) {
        err = -EPROTO;
    } else {
        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        size_t len = evbuffer_get_length(in);
        const char *body = (const char *)evbuffer_pullup(in, (ssize_t)len);
        err = len > LOOKUPD_MAX_BODY || !body ? -EBADMSG
                                              : nsq_lookupd_parse_producers(body, len, &addrs, &n);
    }
    q->cb(err, addrs, n, q->arg);
    for (size_t i = 0; i < n; i++)
        free(addrs[i]);
    free(addrs);
    /* evhttp still uses the connection after this callback: free it from the loop. */
    event_active(q->done_ev, 0, 0);
}

/* Percent-encodes a topic name for the query string (names are [.a-zA-Z0-9_-#]). */
static char *encode_query(const char *s)
{
    return evhttp_encode_uri(s);
}

struct nsq_lookupd_query *nsq_lookupd_query_start(struct event_base *base, const char *addr,
                                                  const char *topic, int64_t timeout_ns,
                                                  nsq_lookupd_cb cb, void *arg)
{
    char host[NSQ_NET_ADDRSTRLEN], path[512], hosthdr[NSQ_NET_ADDRSTRLEN + 8];
    int port;
    if (nsq_lookupd_parse_addr(addr, host, sizeof(host), &port) < 0)
        return NULL;
    struct nsq_lookupd_query *q = calloc(1, sizeof(*q));
    char *etopic = encode_query(topic);
    if (!q || !etopic)
        goto err;
    q->cb = cb;
    q->arg = arg;
    q->done_ev = event_new(base, -1, 0, done_cb, q);
    q->conn = evhttp_connection_base_new(base, NULL, host, (unsigned short)port);
    if (!q->done_ev || !q->conn)
        goto err;
    if (timeout_ns > 0) {
        struct timeval tv = {.tv_sec = timeout_ns / NSQ_NS_PER_SEC,
                             .tv_usec = (timeout_ns % NSQ_NS_PER_SEC) / NSQ_NS_PER_USEC};
        evhttp_connection_set_timeout_tv(q->conn, &tv);
    }
    struct evhttp_request *req = evhttp_request_new(request_cb, q);
    if (!req)
        goto err;
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    nsq_join_host_port(host, port, hosthdr, sizeof(hosthdr));
    evhttp_add_header(h, "Host", hosthdr);
    evhttp_add_header(h, "Accept", LOOKUPD_ACCEPT);
    snprintf(path, sizeof(path), "/lookup?topic=%s", etopic);
    free(etopic);
    etopic = NULL;
    if (evhttp_make_request(q->conn, req, EVHTTP_REQ_GET, path) < 0)
        goto err; /* the request was freed by evhttp */
    return q;
err:
    free(etopic);
    if (q)
        query_free(q);
    return NULL;
}

void nsq_lookupd_query_cancel(struct nsq_lookupd_query *q)
{
    if (!q)
        return;
    if (q->finished) {
        /* callback already ran; the deferred free is pending */
        return;
    }
    q->finished = true;
    event_active(q->done_ev, 0, 0);
}
