/*
 * protocol_v2: the V2 command set of tcp-protocol.md §1-§4 executed on a client connection.
 */
#ifndef NSQD_PROTOCOL_V2_H
#define NSQD_PROTOCOL_V2_H

struct client;

/* Consumes and executes every complete command in the client's input buffer. May close the
   client (the caller defers freeing through client->busy). */
void protocol_v2_read(struct client *c);

#endif
