/*
 * lookup_peer: one nsqd → nsqlookupd TCP connection (tcp-protocol.md §10).
 *
 * The peer speaks the V1 protocol: the "  V1" magic, then command lines, each answered by exactly
 * one [int32 size][data] reply. Commands are pipelined: they are written at once and a FIFO of
 * expected replies matches the answers, so a slow lookupd costs memory in its output buffer, never
 * time on the loop. A read deadline (1 s) runs while a reply is outstanding; the connect and every
 * write have the same deadline. Any error, a bad reply or EOF closes the connection; the peer then
 * reconnects by itself after a backoff (doubling from LOOKUP_PEER_BACKOFF_MIN_NS to
 * LOOKUP_PEER_BACKOFF_MAX_NS, reset by a successful IDENTIFY).
 *
 * Sync on connect: as soon as the TCP connection is up and the magic is written, the owner's
 * `connected` callback runs; it sends IDENTIFY and a REGISTER for every current topic/channel.
 * Because every (re)connection rebuilds the lookupd's view from the current state, commands issued
 * while the peer is down are not queued: they are dropped (the next sync covers them) and only
 * trigger a connection attempt.
 *
 * Threads: everything runs on the loop of the event_base given to lookup_peer_new.
 */
#ifndef NSQD_LOOKUP_PEER_H
#define NSQD_LOOKUP_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct evdns_base;
struct lookup_peer;

#define LOOKUP_PEER_IO_TIMEOUT_NS  (1LL * 1000000000LL) /* dial, read and write deadline */
#define LOOKUP_PEER_BACKOFF_MIN_NS (250LL * 1000000LL)
#define LOOKUP_PEER_BACKOFF_MAX_NS (5LL * 1000000000LL)
#define LOOKUP_PEER_HOST_LEN       256

/* What the lookupd said about itself in its IDENTIFY reply. */
struct lookup_peer_info {
    char broadcast_address[LOOKUP_PEER_HOST_LEN];
    char hostname[LOOKUP_PEER_HOST_LEN];
    int http_port;
    int tcp_port;
    char version[32];
};

struct lookup_peer_callbacks {
    /* The connection is up and the magic written: send IDENTIFY and the full sync now. */
    void (*connected)(struct lookup_peer *p, void *arg);
    /* The IDENTIFY reply was accepted; lookup_peer_info() now holds it. May be NULL. */
    void (*identified)(struct lookup_peer *p, void *arg);
};

/*
 * Creates a peer for addr ("host:port", copied) and starts connecting. dns may be NULL (blocking
 * resolution of names; numeric addresses never block). max_reply bounds a reply's size
 * (--max-body-size). Returns NULL on a malformed address or allocation failure.
 */
struct lookup_peer *lookup_peer_new(struct event_base *base, struct evdns_base *dns,
                                    const char *addr, size_t max_reply,
                                    const struct lookup_peer_callbacks *cbs, void *arg);
/* Closes the connection (no UNREGISTER) and frees the peer. NULL is a no-op. */
void lookup_peer_free(struct lookup_peer *p);

const char *lookup_peer_addr(const struct lookup_peer *p);
/* True while the TCP connection is up (from the connected callback until a close). */
bool lookup_peer_connected(const struct lookup_peer *p);
/* The lookupd's self-description, or NULL if no IDENTIFY reply was ever accepted. Kept across
   reconnects (the last one wins). */
const struct lookup_peer_info *lookup_peer_info(const struct lookup_peer *p);

/* Sends IDENTIFY with the given JSON body. Returns 0, -ENOTCONN or -ENOMEM. */
int lookup_peer_identify(struct lookup_peer *p, const char *json, size_t len);
/*
 * Sends "<cmd>[ <a1>[ <a2>]]\n" (a1/a2 may be NULL). When not connected the command is dropped and
 * a connection attempt started unless one is pending (returns -ENOTCONN). Returns 0 or -ENOMEM.
 */
int lookup_peer_command(struct lookup_peer *p, const char *cmd, const char *a1, const char *a2);

#endif
