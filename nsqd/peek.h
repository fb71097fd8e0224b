/*
 * peek: the next messages of a channel, shown without consuming them (GET /channel/peek,
 * docs/peek.md). Not part of upstream NSQ; nsqd serves it only with --http-peek.
 *
 * Owned by the loop thread like the channel it reads. The messages come in delivery order: the
 * memory ring, then the diskqueue (through diskqueue_peek: no file I/O, nothing consumed). Nothing
 * about the channel changes: depth, attempts, in-flight and deferred state, order and delivery
 * are exactly as before the call.
 */
#ifndef NSQD_PEEK_H
#define NSQD_PEEK_H

#include <stddef.h>

struct channel;
struct evbuffer;

/* Messages shown when the request names no count, and the largest count accepted. */
#define NSQD_PEEK_DEFAULT 10
#define NSQD_PEEK_MAX     1000
/* Body bytes each list of an answer shows at most (at least one message, whatever its size):
   bounds the memory and the time the loop spends on a peek of large messages (JSON encoding
   costs about 25 ms per MiB of body on a busy 2-core machine). */
#define NSQD_PEEK_MAX_BYTES (4 * 1024 * 1024)

/* What else an answer lists, besides the queued messages (query "include=inflight,deferred"). */
#define PEEK_INCLUDE_IN_FLIGHT 1u
#define PEEK_INCLUDE_DEFERRED  2u

/*
 * Appends the JSON answer for the next `n` messages of c (1..NSQD_PEEK_MAX) to out:
 * {"messages": [{"id", "timestamp", "attempts", "size", "body"[, "encoding": "base64"]}, ...],
 *  "depth", "in_flight_count", "deferred_count"}, then with PEEK_INCLUDE_IN_FLIGHT "in_flight"
 * (the n earliest deadlines first, each with "expires_in_ms") and with PEEK_INCLUDE_DEFERRED
 * "deferred" (the n earliest due first, each with "due_in_ms"). Returns 0 or -ENOMEM.
 */
int channel_peek_render(struct channel *c, size_t n, unsigned include, struct evbuffer *out);

#endif
