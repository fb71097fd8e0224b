/*
 * protocol_v2: the V2 command set of tcp-protocol.md §1-§4 executed on a client connection.
 */
#ifndef NSQD_PROTOCOL_V2_H
#define NSQD_PROTOCOL_V2_H

#include <stdbool.h>

struct client;

/* Consumes and executes every complete command in the client's input buffer. May close the
   client (the caller defers freeing through client->busy). */
void protocol_v2_read(struct client *c);
/* The peer closed its side in the middle of a command body: sends upstream's "failed to read"
   error (the peer may still read it) and schedules the close. Returns false when no command was
   pending (the caller closes at once). */
bool protocol_v2_eof(struct client *c);

#endif
