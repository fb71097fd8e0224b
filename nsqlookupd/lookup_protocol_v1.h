/*
 * lookup_protocol_v1: the TCP protocol nsqd speaks to register with nsqlookupd
 * (tcp-protocol.md §10). After the magic "  V1" the client sends lines
 * "COMMAND[ param]*\n" (IDENTIFY is followed by [int32 size][JSON]); every command gets one
 * reply [int32 size][data]. Every error is fatal: the reply is flushed, then the connection closes.
 *
 * A connection (struct lookup_conn) lives on the daemon's loop; once identified it owns a
 * lookup_peer, whose producers are removed from the registration database when it closes.
 */
#ifndef NSQLOOKUPD_LOOKUP_PROTOCOL_V1_H
#define NSQLOOKUPD_LOOKUP_PROTOCOL_V1_H

#include <event2/util.h>

struct nsqlookupd;

#define LOOKUP_V1_MAGIC     "  V1"
#define LOOKUP_V1_MAGIC_LEN 4
/* Longest command line accepted (nsqd's are short); a longer one closes the connection. */
#define LOOKUP_V1_MAX_LINE (64 * 1024)
/* Largest IDENTIFY body accepted (upstream does not bound it). */
#define LOOKUP_V1_MAX_IDENTIFY_BODY (5 * 1024 * 1024)

/* Replies queued beyond this make the connection stop reading until they are written (a client
   that sends without reading cannot grow the daemon's memory). */
#define LOOKUP_V1_MAX_PENDING_OUTPUT (1024 * 1024)

/* Takes ownership of the accepted fd and starts serving it. Returns 0 or -ENOMEM (fd closed). */
int lookup_conn_accept(struct nsqlookupd *ld, evutil_socket_t fd);
/* Closes every connection of the daemon (shutdown). */
void lookup_conn_close_all(struct nsqlookupd *ld);

#endif
