/*
 * client: one V2 connection (tcp-protocol.md). Holds the socket (a bufferevent, replaceable for TLS
 * and compression), the negotiated IDENTIFY settings, the subscription state and the counters shown
 * in /stats. Commands are executed by protocol_v2.c.
 *
 * Lifetime: created on accept, closed on EOF/error/fatal protocol error/deadline. A closed client
 * with messages still in flight stays allocated (bev NULL, closed true) until its in_flight count
 * drops to 0, because each in-flight message points at its owner.
 */
#ifndef NSQD_CLIENT_H
#define NSQD_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nsq_command.h"
#include "nsq_net.h"
#include "topology.h"

struct nsqd;
struct channel;
struct bufferevent;
struct event;
struct nsq_parser;
struct nsqd_message;
struct ssl_st;
struct nsqd_auth_state;

/* Client states (tcp-protocol.md §3.1, reported in /stats). */
enum client_state {
    CLIENT_STATE_INIT = 0,
    CLIENT_STATE_DISCONNECTED = 1,
    CLIENT_STATE_CONNECTED = 2,
    CLIENT_STATE_SUBSCRIBED = 3,
    CLIENT_STATE_CLOSING = 4,
};

/* Per-topic publish counter (stats "pub_counts"). */
struct client_pub_count {
    char *topic;
    uint64_t count;
};

struct client {
    uint64_t id;
    struct nsqd *n;
    struct bufferevent *bev; /* NULL once closed */
    int fd;
    bool closed;
    bool magic_ok;          /* "  V2" received */
    bool close_after_flush; /* fatal error sent: close once written */
    bool read_blocked;      /* reading paused until the output drains (client.c back-pressure) */
    int busy;               /* >0 while a callback of this client runs: freeing is deferred */

    char remote_addr[NSQ_NET_ADDRSTRLEN]; /* "ip:port" */
    char *client_id;
    char *hostname;
    char *user_agent;
    int64_t connect_ts; /* Unix seconds */

    int state; /* enum client_state */
    int64_t rdy;
    int64_t in_flight;
    uint64_t message_count;
    uint64_t finish_count;
    uint64_t requeue_count;

    /* Topology (topology.h): what IDENTIFY sent (owned, NULL when not sent), the class it puts the
       client in (fixed before SUB: IDENTIFY is only accepted first) and deliveries per class. */
    char *topology_zone;
    char *topology_region;
    int topology_class; /* enum topology_class */
    uint64_t topology_msg_count[TOPOLOGY_CLASSES];

    /* IDENTIFY results */
    bool identified;
    int64_t heartbeat_interval_ns; /* 0 = disabled */
    int64_t msg_timeout_ns;
    int64_t output_buffer_timeout_ns;
    int output_buffer_size;
    int sample_rate;
    bool tls, snappy, deflate;
    struct ssl_st *ssl; /* the TLS session (owned by its bufferevent) after an upgrade */
    bool tls_handshaking;
    int deflate_level;

    struct channel *channel;            /* when SUBSCRIBED/CLOSING */
    struct client *ch_next, *ch_prev;   /* channel->clients */
    struct client *rdy_next, *rdy_prev; /* channel ready list */
    bool in_ready_list;

    struct client *all_next, *all_prev; /* nsqd->clients */

    struct event *heartbeat_ev;
    struct event *close_ev; /* polls for the output to drain before a fatal close */
    int64_t close_deadline; /* monotonic ns */
    struct nsq_parser *parser;
    bool pending_body; /* the pending command's size was read; its body is awaited */
    int pending_cmd;   /* command waiting for its body (protocol_v2.c) */

    /* AUTH (auth.h): the cached answer, the secret to re-query with, and the paused command. */
    struct nsqd_auth_state *auth;
    char *auth_secret;
    size_t auth_secret_len;
    bool auth_wait;
    bool journal_wait; /* a publish's OK waits for the disk (ack_wait.h, journal.h): reading paused */
    uint64_t held_journal_seq; /* while journal_wait: journal records to wait for after the queues */
    const char *held_cmd;      /* while journal_wait: "PUB", "MPUB" or "DPUB" (for an error) */
    int auth_stage;
    int auth_pending_cmd;
    struct nsq_command auth_cmd;

    struct client_pub_count *pub_counts;
    size_t npub_counts;
};

/* Takes ownership of fd (an accepted, non-blocking socket). NULL on failure (fd closed). */
struct client *client_new(struct nsqd *n, int fd);
/* Closes the connection now (unsubscribes; frees unless messages are still in flight). */
void client_close(struct client *c);
/* Sends a frame and closes the connection once it has been written. */
void client_close_after_flush(struct client *c);

/* Appends frames to the output buffer (written when the socket is writable). Return 0 or -errno. */
int client_send_response(struct client *c, const void *data, size_t len);
int client_send_error(struct client *c, const char *text);
/* Delivers a message: attempts +1, frame appended (the caller did the in-flight bookkeeping). */
int client_send_message(struct client *c, struct nsqd_message *m);

/* True when the client may receive another message now. */
static inline bool client_is_ready(const struct client *c)
{
    return !c->closed && c->state == CLIENT_STATE_SUBSCRIBED && c->rdy > 0 && c->in_flight < c->rdy;
}
/* Called when one of c's messages leaves flight (FIN/REQ/timeout/empty). Frees a closed client
   whose last message it was. */
void client_in_flight_done(struct client *c);

/* Frees a closed client once nothing refers to it any more (no message in flight, no callback or
   auth query running). */
void client_maybe_free(struct client *c);

/* Increments the publish counter for topic. */
void client_count_pub(struct client *c, const char *topic, uint64_t n);

/* Applies heartbeat / timeouts after IDENTIFY. */
void client_apply_timeouts(struct client *c);
/* Makes bev the connection's transport (after a TLS/compression upgrade; the previous one is
   owned by bev as its underlying layer). */
void client_install_bev(struct client *c, struct bufferevent *bev);

#endif
