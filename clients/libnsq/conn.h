/*
 * conn: one client connection to an nsqd. It dials, sends the magic and IDENTIFY (feature
 * negotiation), performs the negotiated upgrades in the protocol's order (TLS, then snappy or
 * deflate, each confirmed by an OK frame), authenticates when nsqd requires it, then hands every
 * frame except heartbeats to its owner. Heartbeats are answered with NOP here.
 *
 * Closing is deferred: nsq_conn_close stops all I/O at once and schedules the owner's `closed`
 * callback on the loop, where the owner may free the conn. Frames are never delivered after a
 * close. The owner must not free a conn from inside its `ready` or `frame` callbacks.
 */
#ifndef NSQ_LIB_CONN_H
#define NSQ_LIB_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct evbuffer;
struct nsq_config;
struct nsq_conn;

struct nsq_conn_handler {
    /* Negotiation finished: commands may be sent. */
    void (*ready)(struct nsq_conn *c, void *arg);
    /* A frame (response other than _heartbeat_, error, message) after ready. */
    void (*frame)(struct nsq_conn *c, int32_t type, const uint8_t *data, size_t len, void *arg);
    /* The connection is gone (err < 0; why describes it). Runs from the loop, never nested. */
    void (*closed)(struct nsq_conn *c, int err, const char *why, void *arg);
};

/* A connection object for addr ("host:port"); cfg must outlive it. NULL on a bad address. */
struct nsq_conn *nsq_conn_new(struct event_base *base, const char *addr,
                              const struct nsq_config *cfg, const struct nsq_conn_handler *h,
                              void *arg);
/* Starts dialing. Returns 0 or a negative errno (then no callback follows). */
int nsq_conn_connect(struct nsq_conn *c);
/* Moves all of cmd to the connection's output as one write. -ENOTCONN if closed. */
int nsq_conn_send(struct nsq_conn *c, struct evbuffer *cmd);
/* Appends len bytes (one or more encoded commands) to the output. Commands sent from inside the
   `frame` callback are held and written together after the frames of that read. 0 / -ENOTCONN. */
int nsq_conn_write(struct nsq_conn *c, const void *data, size_t len);
/* Stops I/O and schedules `closed` (once). */
void nsq_conn_close(struct nsq_conn *c, int err, const char *why);
void nsq_conn_free(struct nsq_conn *c);

const char *nsq_conn_addr(const struct nsq_conn *c);
bool nsq_conn_is_ready(const struct nsq_conn *c);
bool nsq_conn_is_closed(const struct nsq_conn *c);
/* nsqd's max_rdy_count from the IDENTIFY reply (2500 if it sent none). */
int64_t nsq_conn_max_rdy(const struct nsq_conn *c);

#endif
