/*
 * producer: publishes to one nsqd over one connection.
 *
 * Every publish is a transaction: its command is encoded at once, kept until the connection is
 * ready, then sent. nsqd answers each PUB/MPUB/DPUB with exactly one response or error frame, in
 * order, so answers complete the sent transactions first-in first-out. When the connection closes
 * every transaction still waiting fails with the close reason and the next publish connects anew.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "command.h"
#include "config.h"
#include "conn.h"
#include "nsq.h"
#include "nsq_frame.h"
#include "nsq_net.h"

#define PRODUCER_ERR_LEN 512

struct txn {
    TAILQ_ENTRY(txn) link;
    struct evbuffer *cmd; /* encoded command; NULL once sent */
    nsq_publish_cb cb;
    void *arg;
};
TAILQ_HEAD(txn_list, txn);

struct zombie {
    struct nsq_conn *conn;
    struct zombie *next;
};

struct nsq_producer {
    struct event_base *base;
    bool own_base;
    char addr[NSQ_NET_ADDRSTRLEN];
    struct nsq_config cfg;
    struct nsq_conn *conn;  /* NULL when disconnected */
    struct zombie *zombies; /* closed connections waiting for their deferred close callback */
    struct txn_list txns;   /* oldest first: sent ones precede unsent ones */
    size_t pending;
    uint32_t msg_ttl_ms; /* sent with every publish when non-zero */
    char last_error[PRODUCER_ERR_LEN];
};

static void txn_complete(struct nsq_producer *p, struct txn *t, int err, const char *text)
{
    TAILQ_REMOVE(&p->txns, t, link);
    p->pending--;
    if (t->cmd)
        evbuffer_free(t->cmd);
    if (err < 0)
        snprintf(p->last_error, sizeof(p->last_error), "%s", text);
    if (t->cb)
        t->cb(err, text, t->arg);
    free(t);
}

static void fail_all(struct nsq_producer *p, int err, const char *text)
{
    struct txn *t;
    while ((t = TAILQ_FIRST(&p->txns)) != NULL)
        txn_complete(p, t, err, text);
}

static void send_unsent(struct nsq_producer *p)
{
    struct txn *t;
    TAILQ_FOREACH(t, &p->txns, link)
    {
        if (!t->cmd)
            continue;
        if (nsq_conn_send(p->conn, t->cmd) < 0)
            return;
        evbuffer_free(t->cmd);
        t->cmd = NULL;
    }
}

static void on_ready(struct nsq_conn *c, void *arg)
{
    send_unsent(arg);
}

static int connect_now(struct nsq_producer *p);

/* nsqd closes the connection after every error it sends a producer: retire this connection now
   (its close callback arrives later) so the next publish gets a fresh one at once. Commands sent
   behind the failed one are lost with the connection. */
static void retire_after_error(struct nsq_producer *p, struct nsq_conn *c)
{
    struct zombie *z = malloc(sizeof(*z));
    struct txn *t, *next;
    for (t = TAILQ_FIRST(&p->txns); t && !t->cmd; t = next) {
        next = TAILQ_NEXT(t, link);
        txn_complete(p, t, -ECONNRESET, "connection closed after an error");
    }
    nsq_conn_close(c, -ECONNRESET, "closed after an error");
    if (!z)
        return; /* keep it as the current conn: its close callback cleans up */
    z->conn = c;
    z->next = p->zombies;
    p->zombies = z;
    p->conn = NULL;
    if (!TAILQ_EMPTY(&p->txns) && connect_now(p) < 0)
        fail_all(p, -ECONNREFUSED, "cannot connect");
}

static void on_frame(struct nsq_conn *c, int32_t type, const uint8_t *data, size_t len, void *arg)
{
    struct nsq_producer *p = arg;
    struct txn *t = TAILQ_FIRST(&p->txns);
    char text[PRODUCER_ERR_LEN];
    if (type == NSQ_FRAME_MESSAGE)
        return;
    if (!t || t->cmd) {
        nsq_conn_close(c, -EPROTO, "unexpected response from nsqd");
        return;
    }
    snprintf(text, sizeof(text), "%.*s", (int)len, (const char *)data);
    txn_complete(p, t, type == NSQ_FRAME_ERROR ? -NSQ_ESERVER : 0, text);
    if (type == NSQ_FRAME_ERROR && p->conn == c)
        retire_after_error(p, c);
}

static void on_closed(struct nsq_conn *c, int err, const char *why, void *arg)
{
    struct nsq_producer *p = arg;
    if (c != p->conn) {
        for (struct zombie **z = &p->zombies; *z; z = &(*z)->next) {
            if ((*z)->conn == c) {
                struct zombie *dead = *z;
                *z = dead->next;
                free(dead);
                break;
            }
        }
        nsq_conn_free(c);
        return;
    }
    p->conn = NULL;
    fail_all(p, err < 0 ? err : -ECONNRESET, why); /* why lives in c */
    nsq_conn_free(c);
}

static const struct nsq_conn_handler producer_handler = {
        .ready = on_ready, .frame = on_frame, .closed = on_closed};

struct nsq_producer *nsq_producer_new(struct event_base *base, const char *addr,
                                      const struct nsq_config *cfg)
{
    char host[NSQ_NET_ADDRSTRLEN];
    int port;
    if (strlen(addr) >= NSQ_NET_ADDRSTRLEN || nsq_split_host_port(addr, host, sizeof(host), &port))
        return NULL;
    struct nsq_producer *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    if (!base) {
        base = event_base_new();
        if (!base) {
            free(p);
            return NULL;
        }
        p->own_base = true;
    }
    p->base = base;
    strcpy(p->addr, addr);
    if (cfg)
        p->cfg = *cfg;
    else
        nsq_config_defaults(&p->cfg);
    TAILQ_INIT(&p->txns);
    return p;
}

void nsq_producer_free(struct nsq_producer *p)
{
    if (!p)
        return;
    if (p->conn) {
        nsq_conn_free(p->conn);
        p->conn = NULL;
    }
    while (p->zombies) {
        struct zombie *z = p->zombies;
        p->zombies = z->next;
        nsq_conn_free(z->conn);
        free(z);
    }
    fail_all(p, -ECANCELED, "canceled");
    if (p->own_base)
        event_base_free(p->base);
    free(p);
}

const char *nsq_producer_last_error(const struct nsq_producer *p)
{
    return p->last_error;
}

size_t nsq_producer_pending(const struct nsq_producer *p)
{
    return p->pending;
}

int nsq_producer_set_msg_ttl(struct nsq_producer *p, int64_t ttl_ms)
{
    if (ttl_ms < 0 || ttl_ms > UINT32_MAX)
        return -EINVAL;
    p->msg_ttl_ms = (uint32_t)ttl_ms;
    return 0;
}

static int connect_now(struct nsq_producer *p)
{
    p->conn = nsq_conn_new(p->base, p->addr, &p->cfg, &producer_handler, p);
    int rc = p->conn ? nsq_conn_connect(p->conn) : -ENOMEM;
    if (rc < 0) {
        nsq_conn_free(p->conn);
        p->conn = NULL;
    }
    return rc;
}

/* Queues an encoded command (takes cmd). */
static int submit(struct nsq_producer *p, struct evbuffer *cmd, nsq_publish_cb cb, void *arg)
{
    struct txn *t = calloc(1, sizeof(*t));
    if (!t) {
        evbuffer_free(cmd);
        return -ENOMEM;
    }
    t->cmd = cmd;
    t->cb = cb;
    t->arg = arg;
    if (!p->conn) {
        int rc = connect_now(p);
        if (rc < 0) {
            evbuffer_free(cmd);
            free(t);
            snprintf(p->last_error, sizeof(p->last_error), "%s", nsq_strerror(rc));
            return rc;
        }
    }
    TAILQ_INSERT_TAIL(&p->txns, t, link);
    p->pending++;
    if (nsq_conn_is_ready(p->conn))
        send_unsent(p);
    return 0;
}

int nsq_producer_publish_async(struct nsq_producer *p, const char *topic, const void *body,
                               size_t len, nsq_publish_cb cb, void *arg)
{
    struct evbuffer *cmd = evbuffer_new();
    int rc = cmd ? nsq_cmd_pub(cmd, topic, p->msg_ttl_ms, body, len) : -ENOMEM;
    if (rc < 0) {
        if (cmd)
            evbuffer_free(cmd);
        return rc;
    }
    return submit(p, cmd, cb, arg);
}

int nsq_producer_multi_publish_async(struct nsq_producer *p, const char *topic,
                                     const void *const *bodies, const size_t *lens, size_t n,
                                     nsq_publish_cb cb, void *arg)
{
    struct evbuffer *cmd = evbuffer_new();
    int rc = cmd ? nsq_cmd_mpub(cmd, topic, p->msg_ttl_ms, bodies, lens, n) : -ENOMEM;
    if (rc < 0) {
        if (cmd)
            evbuffer_free(cmd);
        return rc;
    }
    return submit(p, cmd, cb, arg);
}

int nsq_producer_deferred_publish_async(struct nsq_producer *p, const char *topic, int64_t delay_ms,
                                        const void *body, size_t len, nsq_publish_cb cb, void *arg)
{
    struct evbuffer *cmd = evbuffer_new();
    int rc = cmd ? nsq_cmd_dpub(cmd, topic, delay_ms, p->msg_ttl_ms, body, len) : -ENOMEM;
    if (rc < 0) {
        if (cmd)
            evbuffer_free(cmd);
        return rc;
    }
    return submit(p, cmd, cb, arg);
}

struct sync_wait {
    bool done;
    int err;
};

static void sync_done(int err, const char *text, void *arg)
{
    struct sync_wait *w = arg;
    w->done = true;
    w->err = err;
}

static int wait_sync(struct nsq_producer *p, int rc, struct sync_wait *w)
{
    if (rc < 0)
        return rc;
    while (!w->done) {
        if (event_base_loop(p->base, EVLOOP_ONCE) < 0) {
            /* called from inside the base's own loop: the publish stays queued but nobody waits
               for it any more */
            struct txn *t;
            TAILQ_FOREACH(t, &p->txns, link)
            {
                if (t->arg == w)
                    t->cb = NULL;
            }
            return -EDEADLK;
        }
    }
    if (w->err == 0)
        p->last_error[0] = '\0';
    return w->err;
}

int nsq_producer_publish(struct nsq_producer *p, const char *topic, const void *body, size_t len)
{
    struct sync_wait w = {0};
    return wait_sync(p, nsq_producer_publish_async(p, topic, body, len, sync_done, &w), &w);
}

int nsq_producer_multi_publish(struct nsq_producer *p, const char *topic, const void *const *bodies,
                               const size_t *lens, size_t n)
{
    struct sync_wait w = {0};
    return wait_sync(p, nsq_producer_multi_publish_async(p, topic, bodies, lens, n, sync_done, &w),
                     &w);
}

int nsq_producer_deferred_publish(struct nsq_producer *p, const char *topic, int64_t delay_ms,
                                  const void *body, size_t len)
{
    struct sync_wait w = {0};
    return wait_sync(
            p, nsq_producer_deferred_publish_async(p, topic, delay_ms, body, len, sync_done, &w),
            &w);
}
