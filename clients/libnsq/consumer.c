/*
 * consumer: one topic/channel consumed from any number of nsqds.
 *
 * Flow control. max_in_flight (M) is the budget of messages the handler may hold across all
 * connections. It is handed out as RDY counts: with n connections each gets M/n (the remainder
 * spread one each over the first ones), capped by that nsqd's max_rdy_count. When n > M, M
 * connections hold RDY 1 and every rdy_redistribute_interval the ones idle for
 * low_rdy_idle_timeout, or holding RDY for longer than low_rdy_timeout, give it up to random
 * others, so no connection starves. A connection's share of the budget counts as
 * max(RDY, messages held from it + messages nsqd may still send it): after RDY is lowered, nsqd
 * can deliver up to the old RDY until it reads the new value, so that difference stays reserved
 * for a short grace (CONSUMER_PIPE_GRACE) or until those
 * messages arrive. A raise is sent only when the sum stays within M; otherwise it is retried when
 * a message is answered or the reservation ends. The sum of RDY over connections therefore never
 * exceeds M, and neither do the messages held by the handler as long as nsqd reads a lowered RDY
 * within the grace.
 *
 * Backoff. A failed message (handler error or requeue with backoff) raises the backoff level and
 * sets RDY 0 everywhere for min(backoff_multiplier × 2^level, max_backoff_duration); then one
 * random connection gets RDY 1 as a probe. Each success lowers the level (backing off again for
 * the shorter time while it stays above 0); at level 0 normal distribution resumes. Signals that
 * arrive during a backoff sleep are ignored.
 *
 * Hot path. Per message: one decode, a pooled message object (no malloc), the handler, and a FIN
 * encoded straight into the connection's batch buffer (conn.c writes a whole read's FINs at once).
 * No clock is read per message: activity is noted in a flag that the redistribution tick turns
 * into last_msg_ns.
 *
 * Lifetimes. A consumer connection (struct cconn) is reference counted: one reference while it is
 * in the consumer's list, one per message the handler still holds, so a message answered after
 * its connection closed is simply released.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "command.h"
#include "config.h"
#include "conn.h"
#include "lookupd.h"
#include "nsq.h"
#include "nsq_frame.h"
#include "nsq_message.h"
#include "nsq_names.h"
#include "nsq_net.h"
#include "nsq_time.h"

#define CONSUMER_STOP_GRACE  (30 * NSQ_NS_PER_SEC)
#define CONSUMER_MAX_LOOKUPD 64
#define CONSUMER_CLOSE_WAIT  "CLOSE_WAIT"
#define CONSUMER_MIN_REQUERY (1 * NSQ_NS_PER_SEC)
/* How long a lowered RDY keeps its old budget reserved (nsqd has read the new value by then). */
#define CONSUMER_PIPE_GRACE (500 * NSQ_NS_PER_MS)
/* Answered messages are kept for reuse (no malloc per message) up to this many, with bodies up to
   CONSUMER_POOL_MAX_BODY; each pooled message has room for at least CONSUMER_POOL_MIN_BODY. */
#define CONSUMER_POOL_MAX      4096
#define CONSUMER_POOL_MAX_BODY (64 * 1024)
#define CONSUMER_POOL_MIN_BODY 256
#define CONSUMER_FIN_LEN       (4 + NSQ_MSG_ID_LEN + 1) /* "FIN " id "\n" */

struct cconn {
    TAILQ_ENTRY(cconn) link;
    struct nsq_consumer *c;
    struct nsq_conn *conn; /* NULL once closed */
    char addr[NSQ_NET_ADDRSTRLEN];
    int refs;
    bool direct;     /* from nsq_consumer_connect_nsqd: redialed after a close */
    bool subscribed; /* SUB sent */
    bool closing;    /* CLS sent, or dropped: no more RDY */
    bool seen;       /* present in the latest lookupd answer */
    int64_t rdy;     /* last RDY sent */
    int64_t max_rdy;
    int64_t in_flight;
    int64_t last_msg_ns; /* refreshed from msg_seen at each redistribution tick */
    bool msg_seen;       /* a message arrived since the last tick (no clock read per message) */
    int64_t last_rdy_ns;
    /* After RDY is lowered nsqd may still send up to (old RDY - held) messages until it reads the
       new value: they count against the budget until they arrive or pipe_until passes. */
    int64_t pipe_bound;
    int64_t pipe_until_ns;
    bool in_list;
    bool just_lowered; /* gave its RDY up in this redistribution round */
};
TAILQ_HEAD(cconn_list, cconn);

struct msg_impl {
    struct nsq_message pub; /* first: the handler's pointer is this struct's */
    struct cconn *cc;
    bool auto_response;
    size_t cap;            /* room for the body (plus a NUL) behind the struct */
    struct msg_impl *next; /* in the consumer's pool */
};

struct nsq_consumer {
    struct event_base *base;
    char topic[NSQ_NET_ADDRSTRLEN];
    char channel[NSQ_NET_ADDRSTRLEN];
    struct nsq_config cfg;
    nsq_handler_fn fn;
    void *arg;
    struct cconn_list conns;
    int max_in_flight;
    uint64_t rng;

    char **nsqd_addrs; /* direct addresses */
    size_t n_nsqd;
    char *lookupd_addrs[CONSUMER_MAX_LOOKUPD];
    size_t n_lookupd;
    struct nsq_lookupd_query *queries[CONSUMER_MAX_LOOKUPD];
    struct lookup_ctx {
        struct nsq_consumer *c;
        size_t index;
    } lookup_ctx[CONSUMER_MAX_LOOKUPD];
    size_t queries_running;
    bool query_failed;
    int64_t last_query_ns;
    struct event *lookupd_ev;   /* poll timer */
    struct event *reconnect_ev; /* redial of direct addresses */
    struct event *redistribute_ev;
    struct event *backoff_ev;
    struct event *pending_ev; /* retries raises once reserved budget is released */
    struct event *stop_ev;    /* stop grace timeout */

    int backoff_level;
    bool backoff_sleeping;
    bool rdy_pending; /* some connection is below its target RDY */

    bool stopping, stopped;
    void (*stopped_cb)(void *arg);
    void *stopped_arg;

    uint64_t received, finished, requeued;
    int in_flight;
    int orphans;           /* held messages whose connection is gone */
    struct msg_impl *pool; /* answered messages kept for reuse */
    int pool_len;
    struct msg_impl *in_handler; /* message being handled now */
    bool handler_answered;       /* ... and already answered by the handler */
};

static void rebalance(struct nsq_consumer *c);
static void pending_cb(evutil_socket_t fd, short what, void *arg);
static void start_lookups(struct nsq_consumer *c);
static void check_stopped(struct nsq_consumer *c);
static void stop_grace_cb(evutil_socket_t fd, short what, void *arg);

static uint64_t rnd(struct nsq_consumer *c)
{
    /* xorshift64*: spreading probes and low-RDY grants needs no better randomness */
    c->rng ^= c->rng >> 12;
    c->rng ^= c->rng << 25;
    c->rng ^= c->rng >> 27;
    return c->rng * 2685821657736338717ULL;
}

static struct timeval ns_tv(int64_t ns)
{
    if (ns < 0)
        ns = 0;
    struct timeval tv = {.tv_sec = ns / NSQ_NS_PER_SEC,
                         .tv_usec = (ns % NSQ_NS_PER_SEC) / NSQ_NS_PER_USEC};
    return tv;
}

/* ---- connections ---- */

static void cconn_unref(struct cconn *cc)
{
    if (--cc->refs > 0)
        return;
    nsq_conn_free(cc->conn);
    free(cc);
}

static int cconn_send(struct cconn *cc, int (*enc)(struct evbuffer *, const char *), const char *id)
{
    if (!cc->conn || nsq_conn_is_closed(cc->conn))
        return -ENOTCONN;
    struct evbuffer *b = evbuffer_new();
    int rc = b ? enc(b, id) : -ENOMEM;
    if (rc == 0)
        rc = nsq_conn_send(cc->conn, b);
    if (b)
        evbuffer_free(b);
    return rc;
}

static void send_rdy(struct cconn *cc, int64_t count)
{
    if (!cc->conn || nsq_conn_is_closed(cc->conn) || !cc->subscribed)
        return;
    struct evbuffer *b = evbuffer_new();
    if (b && nsq_cmd_rdy(b, count) == 0 && nsq_conn_send(cc->conn, b) == 0) {
        int64_t now = nsq_mono_ns();
        if (count < cc->rdy && cc->rdy > cc->in_flight) {
            int64_t bound = cc->rdy - cc->in_flight;
            if (bound > cc->pipe_bound)
                cc->pipe_bound = bound;
            cc->pipe_until_ns = now + CONSUMER_PIPE_GRACE;
        }
        cc->rdy = count;
        cc->last_rdy_ns = now;
    }
    if (b)
        evbuffer_free(b);
}

static bool cconn_active(const struct cconn *cc)
{
    return cc->subscribed && !cc->closing && cc->conn && !nsq_conn_is_closed(cc->conn);
}

static void maybe_close_drained(struct cconn *cc)
{
    if (cc->closing && cc->in_flight == 0 && cc->conn)
        nsq_conn_close(cc->conn, -ECONNRESET, "closed after drain");
}

static void on_ready(struct nsq_conn *conn, void *arg)
{
    struct cconn *cc = arg;
    struct nsq_consumer *c = cc->c;
    struct evbuffer *b = evbuffer_new();
    if (!b || nsq_cmd_sub(b, c->topic, c->channel) < 0 || nsq_conn_send(conn, b) < 0) {
        nsq_conn_close(conn, -ENOMEM, NULL);
    } else {
        cc->subscribed = true;
        cc->max_rdy = nsq_conn_max_rdy(conn);
        cc->last_msg_ns = nsq_mono_ns();
        if (c->stopping) {
            cc->closing = true;
            nsq_conn_close(conn, -ECANCELED, "stopping");
        } else {
            /* RDY follows SUB at once; nsqd's OK arrives on the read side. */
            rebalance(c);
        }
    }
    if (b)
        evbuffer_free(b);
}

static int64_t requeue_delay_ms(const struct nsq_consumer *c, uint16_t attempts)
{
    int64_t d = c->cfg.default_requeue_delay * (attempts ? attempts : 1);
    if (d > c->cfg.max_requeue_delay)
        d = c->cfg.max_requeue_delay;
    return d / NSQ_NS_PER_MS;
}

/* ---- backoff ---- */

static int64_t backoff_duration(struct nsq_consumer *c)
{
    int64_t d = c->cfg.backoff_multiplier;
    for (int i = 0; i < c->backoff_level && d < c->cfg.max_backoff_duration; i++)
        d *= 2;
    if (d > c->cfg.max_backoff_duration)
        d = c->cfg.max_backoff_duration;
    if (c->cfg.backoff_strategy == NSQ_BACKOFF_FULL_JITTER && d > 0)
        d = (int64_t)(rnd(c) % (uint64_t)d);
    return d;
}

static void enter_backoff(struct nsq_consumer *c)
{
    struct timeval tv = ns_tv(backoff_duration(c));
    c->backoff_sleeping = true;
    rebalance(c); /* RDY 0 everywhere */
    evtimer_add(c->backoff_ev, &tv);
}

static void backoff_cb(evutil_socket_t fd, short what, void *arg)
{
    struct nsq_consumer *c = arg;
    c->backoff_sleeping = false;
    rebalance(c); /* a probe (level > 0) or the normal distribution */
}

static void signal_outcome(struct nsq_consumer *c, bool success)
{
    if (c->backoff_sleeping || c->stopping)
        return;
    if (success) {
        if (c->backoff_level == 0)
            return;
        c->backoff_level--;
        if (c->backoff_level > 0)
            enter_backoff(c);
        else
            rebalance(c);
        return;
    }
    /* grow the level only while the doubled duration stays within the maximum */
    int64_t next = c->cfg.backoff_multiplier;
    for (int i = 0; i < c->backoff_level + 1 && next <= c->cfg.max_backoff_duration; i++)
        next *= 2;
    if (c->backoff_level == 0 || next <= c->cfg.max_backoff_duration)
        c->backoff_level++;
    enter_backoff(c);
}

/* ---- RDY distribution ---- */

/* The most messages this connection may hold: its RDY, or what it holds plus what nsqd may still
   send under a RDY value it has not read yet. */
static int64_t usage(struct cconn *cc, int64_t now)
{
    if (cc->pipe_bound > 0 && now > cc->pipe_until_ns)
        cc->pipe_bound = 0;
    int64_t held = cc->in_flight + cc->pipe_bound;
    return cc->rdy > held ? cc->rdy : held;
}

/* A connection that just gave its RDY up, or whose old RDY is still reserved, is granted again
   only when no other connection waits: otherwise budget would bounce back to it. */
static bool passed_over(const struct cconn *cc, int64_t now)
{
    return cc->just_lowered || (cc->pipe_bound > 0 && cc->pipe_until_ns > now);
}

/*
 * Computes a target RDY per connection, sends the decreases first and then the raises that fit in
 * the budget. Connections still negotiating count for the share (n) so that connections opened
 * together start with M/n each, but only subscribed ones are sent RDY.
 */
static void rebalance(struct nsq_consumer *c)
{
    struct cconn *cc;
    int n = 0, na = 0, i = 0;
    int64_t m = c->max_in_flight;
    int64_t now = nsq_mono_ns();
    TAILQ_FOREACH(cc, &c->conns, link)
    {
        if (cconn_active(cc))
            na++;
        if (!cc->closing)
            n++;
    }
    c->rdy_pending = false;
    if (na == 0)
        return;

    int64_t *target = calloc((size_t)na, sizeof(*target));
    struct cconn **act = calloc((size_t)na, sizeof(*act));
    if (!target || !act)
        goto out;
    TAILQ_FOREACH(cc, &c->conns, link)
    {
        if (cconn_active(cc))
            act[i++] = cc;
    }

    if (c->stopping || m <= 0 || c->backoff_sleeping) {
        /* all zero */
    } else if (c->backoff_level > 0) {
        /* probing: keep an existing probe, else pick one */
        int holder = -1;
        for (i = 0; i < na; i++)
            if (act[i]->rdy > 0)
                holder = i;
        if (holder < 0)
            holder = (int)(rnd(c) % (uint64_t)na);
        target[holder] = 1;
    } else if (n <= m) {
        /* the remainder goes to the connections holding the most already, so that a joining
           connection does not force a needless decrease elsewhere */
        int extra = (int)(m % n);
        for (i = 0; i < na; i++)
            target[i] = m / n;
        for (int k = 0; k < extra && k < na; k++) {
            int best = -1;
            for (i = 0; i < na; i++)
                if (target[i] == m / n && (best < 0 || act[i]->rdy > act[best]->rdy))
                    best = i;
            target[best]++;
        }
    } else {
        /* more connections than budget: keep current holders, grant 1 to random others */
        int64_t held = 0;
        for (i = 0; i < na; i++) {
            if (act[i]->rdy > 0 && held < m) {
                target[i] = 1;
                held++;
            }
        }
        /* grant to random others; while any connection that did not just give its RDY up is
           waiting, only those are candidates (budget must not bounce back) */
        int fresh = 0;
        for (i = 0; i < na; i++)
            fresh += target[i] == 0 && !passed_over(act[i], now);
        bool only_fresh = fresh > 0;
        while (held < m) {
            int cands = 0;
            for (i = 0; i < na; i++)
                cands += target[i] == 0 && (!only_fresh || !passed_over(act[i], now));
            if (cands == 0)
                break;
            int pick = (int)(rnd(c) % (uint64_t)cands);
            for (i = 0; i < na; i++) {
                if (target[i] == 0 && (!only_fresh || !passed_over(act[i], now)) && pick-- == 0) {
                    target[i] = 1;
                    break;
                }
            }
            held++;
        }
    }
    for (i = 0; i < na; i++) {
        if (target[i] > act[i]->max_rdy)
            target[i] = act[i]->max_rdy;
        if (target[i] < act[i]->rdy)
            send_rdy(act[i], target[i]);
    }
    for (i = 0; i < na; i++) {
        if (target[i] <= act[i]->rdy)
            continue;
        int64_t others = c->orphans;
        struct cconn *o;
        TAILQ_FOREACH(o, &c->conns, link)
        {
            if (o != act[i])
                others += usage(o, now);
        }
        int64_t mine = act[i]->in_flight + act[i]->pipe_bound;
        int64_t allowed = m - others;
        if (allowed < mine)
            allowed = mine; /* what it may already hold is not taken back by a lower RDY */
        int64_t v = target[i] < allowed ? target[i] : allowed;
        if (v < target[i])
            c->rdy_pending = true;
        if (v > act[i]->rdy)
            send_rdy(act[i], v);
    }
    if (c->rdy_pending) {
        /* budget held back only by reserved (pipe) amounts frees itself at a known time */
        int64_t first = 0;
        struct cconn *o;
        TAILQ_FOREACH(o, &c->conns, link)
        {
            if (o->pipe_bound > 0 && o->pipe_until_ns > now &&
                (first == 0 || o->pipe_until_ns < first))
                first = o->pipe_until_ns;
        }
        if (first > 0) {
            struct timeval tv = ns_tv(first - now + NSQ_NS_PER_MS);
            evtimer_add(c->pending_ev, &tv);
        }
    }
out:
    free(target);
    free(act);
}

static void pending_cb(evutil_socket_t fd, short what, void *arg)
{
    struct nsq_consumer *c = arg;
    if (c->rdy_pending)
        rebalance(c);
}

static void redistribute_cb(evutil_socket_t fd, short what, void *arg)
{
    struct nsq_consumer *c = arg;
    struct cconn *cc;
    int n = 0;
    if (c->stopping || c->backoff_sleeping)
        return;
    int64_t now = nsq_mono_ns();
    TAILQ_FOREACH(cc, &c->conns, link)
    {
        if (cc->msg_seen) {
            cc->last_msg_ns = now;
            cc->msg_seen = false;
        }
        if (cconn_active(cc))
            n++;
    }
    bool low = n > c->max_in_flight && c->max_in_flight > 0;
    bool probing = c->backoff_level > 0 && n > 1;
    if (!low && !probing) {
        if (c->rdy_pending)
            rebalance(c);
        return;
    }
    TAILQ_FOREACH(cc, &c->conns, link)
    {
        if (!cconn_active(cc) || cc->rdy == 0)
            continue;
        bool idle = now - cc->last_msg_ns > c->cfg.low_rdy_idle_timeout;
        bool held_long = now - cc->last_rdy_ns > c->cfg.low_rdy_timeout;
        if (idle || held_long) {
            send_rdy(cc, 0);
            cc->just_lowered = true;
        }
    }
    rebalance(c);
    TAILQ_FOREACH(cc, &c->conns, link)
    {
        cc->just_lowered = false;
    }
}

/* ---- messages ---- */

/* A message with room for len body bytes: from the pool when one fits, else malloc'd. */
static struct msg_impl *msg_get(struct nsq_consumer *c, size_t len)
{
    struct msg_impl *mi = c->pool;
    if (mi && mi->cap >= len + 1) {
        c->pool = mi->next;
        c->pool_len--;
        return mi;
    }
    size_t cap = len + 1 < CONSUMER_POOL_MIN_BODY ? CONSUMER_POOL_MIN_BODY : len + 1;
    mi = malloc(sizeof(*mi) + cap);
    if (mi)
        mi->cap = cap;
    return mi;
}

static void msg_release(struct nsq_consumer *c, struct msg_impl *mi)
{
    if (c->pool_len >= CONSUMER_POOL_MAX || mi->cap > CONSUMER_POOL_MAX_BODY) {
        free(mi);
        return;
    }
    mi->next = c->pool;
    c->pool = mi;
    c->pool_len++;
}

static void answer(struct msg_impl *mi, bool fin, int64_t delay_ms, bool backoff)
{
    struct cconn *cc = mi->cc;
    struct nsq_consumer *c = cc->c;
    if (mi == c->in_handler)
        c->handler_answered = true;
    if (cc->conn && !nsq_conn_is_closed(cc->conn)) {
        if (fin) {
            /* the hot path: straight into the connection's output, no temporary buffer */
            char line[CONSUMER_FIN_LEN];
            memcpy(line, "FIN ", 4);
            memcpy(line + 4, mi->pub.id, NSQ_MSG_ID_LEN);
            line[CONSUMER_FIN_LEN - 1] = '\n';
            nsq_conn_write(cc->conn, line, sizeof(line));
        } else {
            struct evbuffer *b = evbuffer_new();
            if (b && nsq_cmd_req(b, mi->pub.id, delay_ms) == 0)
                nsq_conn_send(cc->conn, b);
            if (b)
                evbuffer_free(b);
        }
    }
    if (fin)
        c->finished++;
    else
        c->requeued++;
    cc->in_flight--;
    c->in_flight--;
    if (!cc->in_list)
        c->orphans--;
    if (fin || backoff)
        signal_outcome(c, fin);
    maybe_close_drained(cc);
    if (c->rdy_pending)
        rebalance(c);
    msg_release(c, mi);
    cconn_unref(cc);
}

void nsq_message_disable_auto_response(struct nsq_message *msg)
{
    ((struct msg_impl *)msg)->auto_response = false;
}

void nsq_message_finish(struct nsq_message *msg)
{
    answer((struct msg_impl *)msg, true, 0, false);
}

void nsq_message_requeue(struct nsq_message *msg, int64_t delay_ms)
{
    struct msg_impl *mi = (struct msg_impl *)msg;
    if (delay_ms < 0)
        delay_ms = requeue_delay_ms(mi->cc->c, msg->attempts);
    answer(mi, false, delay_ms, true);
}

void nsq_message_requeue_no_backoff(struct nsq_message *msg, int64_t delay_ms)
{
    struct msg_impl *mi = (struct msg_impl *)msg;
    if (delay_ms < 0)
        delay_ms = requeue_delay_ms(mi->cc->c, msg->attempts);
    answer(mi, false, delay_ms, false);
}

void nsq_message_touch(struct nsq_message *msg)
{
    struct msg_impl *mi = (struct msg_impl *)msg;
    cconn_send(mi->cc, nsq_cmd_touch, msg->id);
}

static void on_message(struct cconn *cc, const uint8_t *data, size_t len)
{
    struct nsq_consumer *c = cc->c;
    struct nsq_message_view v;
    if (nsq_message_decode(data, len, &v) < 0) {
        nsq_conn_close(cc->conn, -EPROTO, "invalid message frame");
        return;
    }
    struct msg_impl *mi = msg_get(c, v.body_len);
    if (!mi) {
        nsq_conn_close(cc->conn, -ENOMEM, NULL);
        return;
    }
    uint8_t *body = (uint8_t *)(mi + 1);
    memcpy(body, v.body, v.body_len);
    body[v.body_len] = '\0';
    memcpy(mi->pub.id, v.id, NSQ_MSG_ID_LEN);
    mi->pub.timestamp = v.timestamp;
    mi->pub.attempts = v.attempts;
    mi->pub.body = body;
    mi->pub.body_len = v.body_len;
    mi->pub.nsqd_address = cc->addr;
    mi->cc = cc;
    mi->auto_response = true;
    cc->refs++;
    if (cc->pipe_bound > 0)
        cc->pipe_bound--;
    cc->in_flight++;
    cc->msg_seen = true;
    c->in_flight++;
    c->received++;

    if (c->cfg.max_attempts > 0 && v.attempts > c->cfg.max_attempts) {
        answer(mi, true, 0, false);
        return;
    }
    /* the handler may answer (and so free) the message itself */
    c->in_handler = mi;
    c->handler_answered = false;
    int rc = c->fn(&mi->pub, c->arg);
    c->in_handler = NULL;
    if (c->handler_answered || !mi->auto_response)
        return;
    if (rc == 0)
        answer(mi, true, 0, false);
    else
        answer(mi, false, requeue_delay_ms(c, v.attempts), true);
}

static void on_frame(struct nsq_conn *conn, int32_t type, const uint8_t *data, size_t len,
                     void *arg)
{
    struct cconn *cc = arg;
    if (type == NSQ_FRAME_MESSAGE) {
        on_message(cc, data, len);
    } else if (type == NSQ_FRAME_RESPONSE && len == strlen(CONSUMER_CLOSE_WAIT) &&
               memcmp(data, CONSUMER_CLOSE_WAIT, len) == 0) {
        cc->closing = true;
        maybe_close_drained(cc);
    }
    /* "OK" to SUB and non-fatal errors (E_FIN_FAILED ...) need nothing; fatal errors are
       followed by nsqd closing the connection. */
}

static void on_closed(struct nsq_conn *conn, int err, const char *why, void *arg)
{
    struct cconn *cc = arg;
    struct nsq_consumer *c = cc->c;
    TAILQ_REMOVE(&c->conns, cc, link);
    cc->in_list = false;
    c->orphans += (int)cc->in_flight;
    cc->closing = true;
    cc->rdy = 0;
    bool direct = cc->direct;
    bool was_subscribed = cc->subscribed;
    cconn_unref(cc);
    if (c->stopping) {
        check_stopped(c);
        return;
    }
    rebalance(c);
    if (c->n_lookupd > 0) {
        /* Ask again at once when a working connection went away, at most once per
           CONSUMER_MIN_REQUERY; a producer that cannot be reached waits for the periodic poll
           (lookupd may list a dead nsqd for minutes: redialing it in a loop would spin). */
        if (was_subscribed && nsq_mono_ns() - c->last_query_ns >= CONSUMER_MIN_REQUERY)
            start_lookups(c);
    } else if (direct) {
        struct timeval tv = ns_tv(c->cfg.lookupd_poll_interval);
        evtimer_add(c->reconnect_ev, &tv);
    }
}

static const struct nsq_conn_handler consumer_handler = {
        .ready = on_ready, .frame = on_frame, .closed = on_closed};

static struct cconn *find_conn(struct nsq_consumer *c, const char *addr)
{
    struct cconn *cc;
    TAILQ_FOREACH(cc, &c->conns, link)
    {
        if (!strcmp(cc->addr, addr))
            return cc;
    }
    return NULL;
}

static int open_conn(struct nsq_consumer *c, const char *addr, bool direct)
{
    if (c->stopping)
        return -ECANCELED;
    if (find_conn(c, addr))
        return -EEXIST;
    struct cconn *cc = calloc(1, sizeof(*cc));
    if (!cc)
        return -ENOMEM;
    snprintf(cc->addr, sizeof(cc->addr), "%s", addr);
    cc->c = c;
    cc->refs = 1;
    cc->direct = direct;
    cc->seen = true;
    cc->conn = nsq_conn_new(c->base, addr, &c->cfg, &consumer_handler, cc);
    if (!cc->conn) {
        free(cc);
        return -EINVAL;
    }
    int rc = nsq_conn_connect(cc->conn);
    if (rc < 0) {
        nsq_conn_free(cc->conn);
        free(cc);
        return rc;
    }
    TAILQ_INSERT_TAIL(&c->conns, cc, link);
    cc->in_list = true;
    return 0;
}

static void reconnect_cb(evutil_socket_t fd, short what, void *arg)
{
    struct nsq_consumer *c = arg;
    bool missing = false;
    for (size_t i = 0; i < c->n_nsqd; i++) {
        if (!find_conn(c, c->nsqd_addrs[i]) && open_conn(c, c->nsqd_addrs[i], true) < 0)
            missing = true;
    }
    if (missing && !c->stopping) {
        struct timeval tv = ns_tv(c->cfg.lookupd_poll_interval);
        evtimer_add(c->reconnect_ev, &tv);
    }
}

/* ---- discovery ---- */

static void lookups_done(struct nsq_consumer *c)
{
    struct cconn *cc, *next;
    if (c->query_failed || c->stopping)
        return;
    /* drop connections to producers no lookupd lists any more */
    for (cc = TAILQ_FIRST(&c->conns); cc; cc = next) {
        next = TAILQ_NEXT(cc, link);
        if (cc->direct || cc->seen || cc->closing)
            continue;
        cc->closing = true;
        if (cc->subscribed && cc->conn) {
            struct evbuffer *b = evbuffer_new();
            if (b && nsq_cmd_cls(b) == 0)
                nsq_conn_send(cc->conn, b);
            if (b)
                evbuffer_free(b);
            rebalance(c);
        } else if (cc->conn) {
            nsq_conn_close(cc->conn, -ECANCELED, "producer gone");
        }
    }
}

static void lookup_done_cb(int err, char **addrs, size_t n, void *arg)
{
    struct lookup_ctx *lc = arg;
    struct nsq_consumer *c = lc->c;
    c->queries[lc->index] = NULL;
    c->queries_running--;
    if (err < 0) {
        c->query_failed = true;
    } else {
        for (size_t i = 0; i < n; i++) {
            struct cconn *cc = find_conn(c, addrs[i]);
            if (cc)
                cc->seen = true;
            else
                open_conn(c, addrs[i], false);
        }
    }
    if (c->queries_running == 0)
        lookups_done(c);
}

static void start_lookups(struct nsq_consumer *c)
{
    struct cconn *cc;
    if (c->queries_running > 0 || c->stopping)
        return;
    c->query_failed = false;
    c->last_query_ns = nsq_mono_ns();
    TAILQ_FOREACH(cc, &c->conns, link)
    {
        cc->seen = false;
    }
    for (size_t i = 0; i < c->n_lookupd; i++) {
        struct lookup_ctx *lc = &c->lookup_ctx[i];
        lc->c = c;
        lc->index = i;
        c->queries[i] = nsq_lookupd_query_start(c->base, c->lookupd_addrs[i], c->topic,
                                                c->cfg.lookupd_poll_timeout, lookup_done_cb, lc);
        if (!c->queries[i]) {
            c->query_failed = true;
        } else {
            c->queries_running++;
        }
    }
}

static void lookupd_poll_cb(evutil_socket_t fd, short what, void *arg)
{
    struct nsq_consumer *c = arg;
    struct timeval tv = ns_tv(c->cfg.lookupd_poll_interval);
    start_lookups(c);
    evtimer_add(c->lookupd_ev, &tv);
}

/* ---- public ---- */

struct nsq_consumer *nsq_consumer_new(struct event_base *base, const char *topic,
                                      const char *channel, const struct nsq_config *cfg,
                                      nsq_handler_fn fn, void *arg)
{
    if (!base || !fn || !nsq_topic_name_valid(topic, strlen(topic)) ||
        !nsq_channel_name_valid(channel, strlen(channel)))
        return NULL;
    struct nsq_consumer *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->base = base;
    strcpy(c->topic, topic);
    strcpy(c->channel, channel);
    if (cfg)
        c->cfg = *cfg;
    else
        nsq_config_defaults(&c->cfg);
    c->fn = fn;
    c->arg = arg;
    c->max_in_flight = c->cfg.max_in_flight;
    c->rng = (uint64_t)nsq_now_ns() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)c;
    if (c->rng == 0)
        c->rng = 1;
    TAILQ_INIT(&c->conns);
    c->lookupd_ev = evtimer_new(base, lookupd_poll_cb, c);
    c->reconnect_ev = evtimer_new(base, reconnect_cb, c);
    c->redistribute_ev = event_new(base, -1, EV_PERSIST, redistribute_cb, c);
    c->backoff_ev = evtimer_new(base, backoff_cb, c);
    c->pending_ev = evtimer_new(base, pending_cb, c);
    c->stop_ev = evtimer_new(base, stop_grace_cb, c);
    if (!c->lookupd_ev || !c->reconnect_ev || !c->redistribute_ev || !c->backoff_ev ||
        !c->pending_ev || !c->stop_ev) {
        nsq_consumer_free(c);
        return NULL;
    }
    struct timeval tv = ns_tv(c->cfg.rdy_redistribute_interval);
    event_add(c->redistribute_ev, &tv);
    return c;
}

int nsq_consumer_connect_nsqd(struct nsq_consumer *c, const char *addr)
{
    char host[NSQ_NET_ADDRSTRLEN];
    int port;
    if (nsq_split_host_port(addr, host, sizeof(host), &port) < 0)
        return -EINVAL;
    for (size_t i = 0; i < c->n_nsqd; i++)
        if (!strcmp(c->nsqd_addrs[i], addr))
            return -EEXIST;
    char **grown = realloc(c->nsqd_addrs, (c->n_nsqd + 1) * sizeof(*grown));
    if (!grown)
        return -ENOMEM;
    c->nsqd_addrs = grown;
    if (!(grown[c->n_nsqd] = strdup(addr)))
        return -ENOMEM;
    c->n_nsqd++;
    int rc = open_conn(c, addr, true);
    if (rc < 0 && rc != -EEXIST && !c->stopping) {
        /* try again later, as after a close */
        struct timeval tv = ns_tv(c->cfg.lookupd_poll_interval);
        evtimer_add(c->reconnect_ev, &tv);
    }
    return 0;
}

int nsq_consumer_connect_lookupd(struct nsq_consumer *c, const char *addr)
{
    char host[NSQ_NET_ADDRSTRLEN];
    int port;
    if (nsq_lookupd_parse_addr(addr, host, sizeof(host), &port) < 0)
        return -EINVAL;
    for (size_t i = 0; i < c->n_lookupd; i++)
        if (!strcmp(c->lookupd_addrs[i], addr))
            return -EEXIST;
    if (c->n_lookupd >= CONSUMER_MAX_LOOKUPD)
        return -E2BIG;
    if (!(c->lookupd_addrs[c->n_lookupd] = strdup(addr)))
        return -ENOMEM;
    c->n_lookupd++;
    if (c->n_lookupd == 1) {
        /* first query now; the periodic loop starts after a random jitter */
        start_lookups(c);
        double jitter = c->cfg.lookupd_poll_jitter * (double)(rnd(c) % 1000) / 1000.0;
        struct timeval tv = ns_tv((int64_t)((double)c->cfg.lookupd_poll_interval * (1.0 + jitter)));
        evtimer_add(c->lookupd_ev, &tv);
    }
    return 0;
}

void nsq_consumer_set_max_in_flight(struct nsq_consumer *c, int max_in_flight)
{
    c->max_in_flight = max_in_flight < 0 ? 0 : max_in_flight;
    rebalance(c);
}

static void check_stopped(struct nsq_consumer *c)
{
    if (c->stopped || !c->stopping || !TAILQ_EMPTY(&c->conns))
        return;
    c->stopped = true;
    evtimer_del(c->stop_ev);
    if (c->stopped_cb)
        c->stopped_cb(c->stopped_arg);
}

static void stop_grace_cb(evutil_socket_t fd, short what, void *arg)
{
    struct nsq_consumer *c = arg;
    struct cconn *cc;
    TAILQ_FOREACH(cc, &c->conns, link)
    {
        if (cc->conn)
            nsq_conn_close(cc->conn, -ETIMEDOUT, "stop timeout");
    }
}

void nsq_consumer_stop(struct nsq_consumer *c, void (*stopped)(void *arg), void *arg)
{
    struct cconn *cc;
    if (c->stopping)
        return;
    c->stopping = true;
    c->stopped_cb = stopped;
    c->stopped_arg = arg;
    evtimer_del(c->lookupd_ev);
    evtimer_del(c->reconnect_ev);
    evtimer_del(c->backoff_ev);
    event_del(c->redistribute_ev);
    evtimer_del(c->pending_ev);
    for (size_t i = 0; i < c->n_lookupd; i++) {
        if (c->queries[i]) {
            nsq_lookupd_query_cancel(c->queries[i]);
            c->queries[i] = NULL;
        }
    }
    c->queries_running = 0;
    TAILQ_FOREACH(cc, &c->conns, link)
    {
        cc->closing = true;
        if (cc->subscribed && cc->conn && !nsq_conn_is_closed(cc->conn)) {
            struct evbuffer *b = evbuffer_new();
            if (b && nsq_cmd_cls(b) == 0)
                nsq_conn_send(cc->conn, b);
            if (b)
                evbuffer_free(b);
            cc->rdy = 0;
        } else if (cc->conn) {
            nsq_conn_close(cc->conn, -ECANCELED, "stopping");
        }
    }
    struct timeval tv = ns_tv(CONSUMER_STOP_GRACE);
    evtimer_add(c->stop_ev, &tv);
    check_stopped(c);
}

bool nsq_consumer_stopped(const struct nsq_consumer *c)
{
    return c->stopped;
}

void nsq_consumer_free(struct nsq_consumer *c)
{
    struct cconn *cc;
    if (!c)
        return;
    for (size_t i = 0; i < c->n_lookupd; i++) {
        if (c->queries[i])
            nsq_lookupd_query_cancel(c->queries[i]);
        free(c->lookupd_addrs[i]);
    }
    while ((cc = TAILQ_FIRST(&c->conns)) != NULL) {
        TAILQ_REMOVE(&c->conns, cc, link);
        cc->c = NULL;
        nsq_conn_free(cc->conn);
        cc->conn = NULL;
        cconn_unref(cc);
    }
    for (size_t i = 0; i < c->n_nsqd; i++)
        free(c->nsqd_addrs[i]);
    free(c->nsqd_addrs);
    if (c->lookupd_ev)
        event_free(c->lookupd_ev);
    if (c->reconnect_ev)
        event_free(c->reconnect_ev);
    if (c->redistribute_ev)
        event_free(c->redistribute_ev);
    if (c->backoff_ev)
        event_free(c->backoff_ev);
    if (c->pending_ev)
        event_free(c->pending_ev);
    if (c->stop_ev)
        event_free(c->stop_ev);
    while (c->pool) {
        struct msg_impl *mi = c->pool;
        c->pool = mi->next;
        free(mi);
    }
    free(c);
}

void nsq_consumer_get_stats(const struct nsq_consumer *c, struct nsq_consumer_stats *out)
{
    const struct cconn *cc;
    memset(out, 0, sizeof(*out));
    out->messages_received = c->received;
    out->messages_finished = c->finished;
    out->messages_requeued = c->requeued;
    out->in_flight = c->in_flight;
    out->backoff_level = c->backoff_level;
    TAILQ_FOREACH(cc, &c->conns, link)
    {
        if (cc->subscribed && cc->conn && !nsq_conn_is_closed(cc->conn))
            out->connections++;
    }
}
