/*
 * lookup: nsqd's side of discovery (behaviour.md §9, tcp-protocol.md §10.3).
 *
 * One nsqd_lookup per daemon, living on the nsqd loop. It keeps one lookup_peer per configured
 * nsqlookupd TCP address. Every topic/channel creation or deletion is sent to every peer as
 * REGISTER / UNREGISTER; a peer that is not connected queues the command, connects (1 s timeout),
 * sends the magic and IDENTIFY, re-registers everything (a full sync through
 * nsqd_foreach_registration) and then the queued commands. Every 15 s each peer is pinged; a
 * failed or dead peer is closed and reconnected with backoff. Nothing here blocks the loop: all I/O
 * goes through bufferevents with read/write timeouts.
 *
 * The broadcast address and HTTP port that each lookupd reports in its IDENTIFY reply are kept for
 * nsqd_lookup_query_channels (channel pre-creation, behaviour.md §2).
 *
 * Threads: every function must be called on the nsqd loop thread.
 */
#ifndef NSQD_LOOKUP_H
#define NSQD_LOOKUP_H

#include <stdbool.h>

struct nsqd;
struct nsq_strlist;
struct nsqd_lookup;

/* Lookupd ping period (fixed, no flag). */
#define NSQD_LOOKUP_PING_INTERVAL_NS (15LL * 1000000000LL)

/*
 * Creates the lookup service for n and connects to the addresses in n's options
 * (--lookupd-tcp-address). Returns NULL on allocation failure. Freed with nsqd_lookup_free.
 */
struct nsqd_lookup *nsqd_lookup_new(struct nsqd *n);
/* Closes every peer (no UNREGISTER: the closed connection makes lookupd drop everything). NULL ok.
 */
void nsqd_lookup_free(struct nsqd_lookup *l);

/*
 * Tells every lookupd about a topic (channel == NULL) or channel that was created (registered =
 * true → REGISTER) or deleted (false → UNREGISTER). The strings are copied.
 */
void nsqd_lookup_notify(struct nsqd_lookup *l, const char *topic, const char *channel,
                        bool registered);

/*
 * Replaces the set of lookupd TCP addresses ("host:port"): peers no longer listed are closed, new
 * ones are connected with a full sync. An address that is not host:port is skipped (logged) while
 * the others are applied. Returns 0, -EINVAL if an address was skipped, or -ENOMEM. addrs is
 * copied.
 */
int nsqd_lookup_set_addresses(struct nsqd_lookup *l, const struct nsq_strlist *addrs);

/*
 * Asks every lookupd known from an IDENTIFY reply for GET /channels?topic=<topic> over HTTP (in
 * parallel, --http-client-* timeouts) and calls done exactly once with the union of the channel
 * names (duplicates removed; the list is only valid during the call). Errors are logged and the
 * failing lookupd contributes nothing. When no lookupd is known, done is called synchronously with
 * an empty list. Queries still running when nsqd_lookup_free is called complete from inside it
 * with what they collected so far.
 */
void nsqd_lookup_query_channels(struct nsqd_lookup *l, const char *topic,
                                void (*done)(const struct nsq_strlist *channels, void *arg),
                                void *arg);

/* Number of configured lookupds, and how many have answered IDENTIFY (for logs and tests). */
int nsqd_lookup_count(const struct nsqd_lookup *l);
int nsqd_lookup_known_count(const struct nsqd_lookup *l);

#endif
