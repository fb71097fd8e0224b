/*
 * client: connection lifecycle, output and timers of a V2 client (see client.h). Commands are in
 * protocol_v2.c.
 */
#include "client.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "auth.h"
#include "channel.h"
#include "message.h"
#include "nsq_command.h"
#include "nsq_frame.h"
#include "nsq_log.h"
#include "nsq_time.h"
#include "nsqd.h"
#include "protocol_v2.h"

static const char heartbeat_text[] = "_heartbeat_";

/* Bytes moved per socket read/write: large enough that a busy connection costs one syscall per
   loop iteration, not one per 16 KiB (libevent's default). */
#define CLIENT_MAX_SINGLE_IO (256 * 1024)
/* Back-pressure: once this much output waits for a client that does not read, its commands are
   not read either (as a blocked writer would stop upstream's reader), until half has drained. */
#define CLIENT_OUTPUT_HIGH (4 * 1024 * 1024)
/* Closing after a fatal error: poll interval for the lower layers to drain, and the longest wait
   when heartbeats (and so the write deadline) are disabled. */
#define CLIENT_CLOSE_POLL_US     5000
#define CLIENT_CLOSE_MAX_WAIT_NS (1000LL * 1000 * 1000)
/* The read deadline (two heartbeat intervals) and the second heartbeat fall due together; as
   upstream, whose deadline is set just after its heartbeat ticker, the heartbeat goes first. */
#define CLIENT_READ_DEADLINE_SLACK_NS (1000LL * 1000)

static void client_check_backpressure(struct client *c);

static void client_free(struct client *c)
{
    nsqd_auth_state_free(c->auth);
    free(c->auth_secret);
    free(c->client_id);
    free(c->hostname);
    free(c->user_agent);
    free(c->topology_zone);
    free(c->topology_region);
    for (size_t i = 0; i < c->npub_counts; i++)
        free(c->pub_counts[i].topic);
    free(c->pub_counts);
    free(c);
}

static void client_read_cb(struct bufferevent *bev, void *arg)
{
    struct client *c = arg;
    c->busy++;
    protocol_v2_read(c);
    client_check_backpressure(c);
    c->busy--;
    if (c->closed && c->in_flight == 0 && !c->busy)
        client_free(c);
}

/* True when every layer (compression, TLS, socket) has handed its output to the kernel. */
static bool client_output_drained(const struct client *c)
{
    for (struct bufferevent *b = c->bev; b; b = bufferevent_get_underlying(b))
        if (evbuffer_get_length(bufferevent_get_output(b)) > 0)
            return false;
    return true;
}

/* After a fatal error: close once the error frame has left every layer, or at the write
   deadline. A filter's write callback only reports its own buffer, hence the polling timer. */
static void client_close_poll_cb(evutil_socket_t fd, short what, void *arg)
{
    struct client *c = arg;
    if (client_output_drained(c) || nsq_mono_ns() >= c->close_deadline) {
        client_close(c);
        return;
    }
    struct timeval tv = {0, CLIENT_CLOSE_POLL_US};
    evtimer_add(c->close_ev, &tv);
}

static void client_finish_close(struct client *c)
{
    if (client_output_drained(c)) {
        client_close(c);
        return;
    }
    if (!c->close_ev) {
        c->close_ev = evtimer_new(c->n->base, client_close_poll_cb, c);
        if (!c->close_ev) {
            client_close(c);
            return;
        }
        int64_t wait =
                c->heartbeat_interval_ns > 0 ? c->heartbeat_interval_ns : CLIENT_CLOSE_MAX_WAIT_NS;
        c->close_deadline = nsq_mono_ns() + wait;
    }
    struct timeval tv = {0, CLIENT_CLOSE_POLL_US};
    evtimer_add(c->close_ev, &tv);
}

static void client_write_cb(struct bufferevent *bev, void *arg)
{
    struct client *c = arg;
    if (c->close_after_flush) {
        if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
            client_finish_close(c);
        return;
    }
    if (c->read_blocked &&
        evbuffer_get_length(bufferevent_get_output(bev)) <= CLIENT_OUTPUT_HIGH / 2) {
        c->read_blocked = false;
        bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
        bufferevent_enable(bev, EV_READ);
        /* Commands that arrived meanwhile are already buffered. */
        client_read_cb(bev, c);
    }
}

/* Stops reading from a client whose output is not being consumed. */
static void client_check_backpressure(struct client *c)
{
    if (c->closed || !c->bev || c->read_blocked || c->close_after_flush)
        return;
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) > CLIENT_OUTPUT_HIGH) {
        c->read_blocked = true;
        bufferevent_disable(c->bev, EV_READ);
        bufferevent_setwatermark(c->bev, EV_WRITE, CLIENT_OUTPUT_HIGH / 2, 0);
    }
}

static void client_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct client *c = arg;
    if (what & BEV_EVENT_CONNECTED) {
        if (c->tls_handshaking) {
            c->tls_handshaking = false;
            /* The handshake deadline sat on the TLS layer, which may now be under a
               compression filter: clear it there, the top layer carries the usual ones. */
            for (struct bufferevent *b = bufferevent_get_underlying(c->bev); b;
                 b = bufferevent_get_underlying(b))
                bufferevent_set_timeouts(b, NULL, NULL);
            client_apply_timeouts(c);
        }
        return;
    }
    if (what & BEV_EVENT_TIMEOUT)
        nsq_info("PROTOCOL(V2): [%s] %s timeout", c->remote_addr,
                 (what & BEV_EVENT_READING) ? "read" : "write");
    else if (what & BEV_EVENT_ERROR)
        nsq_debug("PROTOCOL(V2): [%s] connection error", c->remote_addr);
    if ((what & BEV_EVENT_TIMEOUT) && (what & BEV_EVENT_READING) && !c->tls_handshaking) {
        /* A heartbeat queued in the same loop iteration still goes out. */
        client_close_after_flush(c);
        return;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
        if (what & BEV_EVENT_EOF) {
            /* Commands complete before the EOF still run; a truncated one gets its error. */
            c->busy++;
            protocol_v2_read(c);
            bool answered = !c->closed && protocol_v2_eof(c);
            c->busy--;
            if (c->closed) {
                client_maybe_free(c);
                return;
            }
            if (answered)
                return;
            nsq_info("PROTOCOL(V2): [%s] exiting ioloop", c->remote_addr);
            /* A half-closed peer still gets the replies to what it sent. */
            client_close_after_flush(c);
            return;
        }
        client_close(c);
    }
}

static void client_heartbeat_cb(evutil_socket_t fd, short what, void *arg)
{
    struct client *c = arg;
    client_send_response(c, heartbeat_text, sizeof(heartbeat_text) - 1);
}

static void ns_to_tv(int64_t ns, struct timeval *tv)
{
    tv->tv_sec = ns / NSQ_NS_PER_SEC;
    tv->tv_usec = (ns % NSQ_NS_PER_SEC) / NSQ_NS_PER_USEC;
}

void client_apply_timeouts(struct client *c)
{
    if (!c->bev)
        return;
    if (c->heartbeat_interval_ns > 0) {
        struct timeval rd, wr;
        ns_to_tv(2 * c->heartbeat_interval_ns + CLIENT_READ_DEADLINE_SLACK_NS, &rd);
        ns_to_tv(c->heartbeat_interval_ns, &wr);
        bufferevent_set_timeouts(c->bev, &rd, &wr);
        evtimer_add(c->heartbeat_ev, &wr);
    } else {
        bufferevent_set_timeouts(c->bev, NULL, NULL);
        evtimer_del(c->heartbeat_ev);
    }
}

void client_install_bev(struct client *c, struct bufferevent *bev)
{
    c->bev = bev;
    bufferevent_set_max_single_read(bev, CLIENT_MAX_SINGLE_IO);
    bufferevent_set_max_single_write(bev, CLIENT_MAX_SINGLE_IO);
    bufferevent_setcb(bev, client_read_cb, client_write_cb, client_event_cb, c);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    client_apply_timeouts(c);
}

struct client *client_new(struct nsqd *n, int fd)
{
    struct client *c = calloc(1, sizeof(*c));
    if (!c) {
        evutil_closesocket(fd);
        return NULL;
    }
    c->n = n;
    c->fd = fd;
    c->id = ++n->next_client_id;
    if (nsq_peer_name(fd, c->remote_addr, sizeof(c->remote_addr)) != 0)
        snprintf(c->remote_addr, sizeof(c->remote_addr), "%s", "");
    /* client_id and hostname default to the remote host. */
    char host[NSQ_NET_ADDRSTRLEN];
    int port;
    if (nsq_split_host_port(c->remote_addr, host, sizeof(host), &port) != 0)
        snprintf(host, sizeof(host), "%s", c->remote_addr);
    c->client_id = strdup(host);
    c->hostname = strdup(host);
    c->user_agent = strdup("");
    c->topology_class = TOPOLOGY_GLOBAL;
    c->connect_ts = time(NULL);
    c->state = CLIENT_STATE_INIT;
    c->heartbeat_interval_ns = NSQD_CLIENT_TIMEOUT_NS / 2;
    c->msg_timeout_ns = n->opts->msg_timeout;
    c->output_buffer_timeout_ns = n->opts->output_buffer_timeout;
    c->output_buffer_size = NSQD_DEFAULT_OUTPUT_BUF_SIZE;
    c->deflate_level = NSQD_DEFAULT_DEFLATE_LEVEL;
    c->parser = nsq_parser_new();
    c->heartbeat_ev = event_new(n->base, -1, EV_PERSIST, client_heartbeat_cb, c);
    struct bufferevent *bev = bufferevent_socket_new(n->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!c->client_id || !c->hostname || !c->user_agent || !c->parser || !c->heartbeat_ev || !bev) {
        if (bev)
            bufferevent_free(bev);
        else
            evutil_closesocket(fd);
        if (c->heartbeat_ev)
            event_free(c->heartbeat_ev);
        nsq_parser_free(c->parser);
        client_free(c);
        return NULL;
    }
    c->all_next = n->clients;
    if (n->clients)
        n->clients->all_prev = c;
    n->clients = c;
    n->client_count++;
    client_install_bev(c, bev);
    return c;
}

void client_close(struct client *c)
{
    if (c->closed)
        return;
    c->closed = true;
    nsq_info("PROTOCOL(V2): [%s] closing connection", c->remote_addr);
    if (c->channel)
        channel_remove_client(c->channel, c);
    struct nsqd *n = c->n;
    if (c->all_prev)
        c->all_prev->all_next = c->all_next;
    else
        n->clients = c->all_next;
    if (c->all_next)
        c->all_next->all_prev = c->all_prev;
    c->all_next = c->all_prev = NULL;
    n->client_count--;
    event_free(c->heartbeat_ev);
    c->heartbeat_ev = NULL;
    if (c->close_ev) {
        event_free(c->close_ev);
        c->close_ev = NULL;
    }
    if (c->bev) {
        bufferevent_free(c->bev);
        c->bev = NULL;
    }
    nsq_parser_free(c->parser);
    c->parser = NULL;
    if (c->in_flight == 0 && !c->busy)
        client_free(c);
}

void client_close_after_flush(struct client *c)
{
    if (c->closed || !c->bev)
        return;
    c->close_after_flush = true;
    bufferevent_disable(c->bev, EV_READ);
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0 && !c->busy)
        client_finish_close(c);
}

int client_send_response(struct client *c, const void *data, size_t len)
{
    if (!c->bev)
        return -ENOTCONN;
    return nsq_frame_add(bufferevent_get_output(c->bev), NSQ_FRAME_RESPONSE, data, len);
}

int client_send_error(struct client *c, const char *text)
{
    if (!c->bev)
        return -ENOTCONN;
    return nsq_frame_add(bufferevent_get_output(c->bev), NSQ_FRAME_ERROR, text, strlen(text));
}

int client_send_message(struct client *c, struct nsqd_message *m)
{
    if (!c->bev)
        return -ENOTCONN;
    return nsq_message_frame_add(bufferevent_get_output(c->bev), m->id, m->timestamp, m->attempts,
                                 m->body, m->body_len);
}

void client_in_flight_done(struct client *c)
{
    if (c->closed) {
        if (c->in_flight == 0 && !c->busy)
            client_free(c);
        return;
    }
    if (c->channel)
        channel_client_ready_changed(c->channel, c);
}

void client_maybe_free(struct client *c)
{
    if (c->closed && c->in_flight == 0 && !c->busy)
        client_free(c);
}

void client_count_pub(struct client *c, const char *topic, uint64_t n)
{
    for (size_t i = 0; i < c->npub_counts; i++) {
        if (strcmp(c->pub_counts[i].topic, topic) == 0) {
            c->pub_counts[i].count += n;
            return;
        }
    }
    struct client_pub_count *a = realloc(c->pub_counts, (c->npub_counts + 1) * sizeof(*a));
    if (!a)
        return;
    c->pub_counts = a;
    a[c->npub_counts].topic = strdup(topic);
    if (!a[c->npub_counts].topic)
        return;
    a[c->npub_counts].count = n;
    c->npub_counts++;
}
