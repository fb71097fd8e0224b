/*
 * dead_letter: moving a message that keeps coming back to its topic's dead-letter topic
 * (docs/dead-letter.md).
 *
 * Off by default. With --max-attempts=N (or a channel's own setting, 0 = inherit) a message that
 * was delivered N times and returns once more (REQ or in-flight timeout) is not requeued: it is
 * put into "<topic><suffix>" (--dead-letter-suffix, ".dead") with its ID, timestamp and body
 * unchanged and its attempts field set so that its first delivery from the dead-letter topic
 * shows the count of its last delivery on the original channel.
 *
 * Channels of a topic whose own name ends with the suffix do not inherit --max-attempts (a
 * dead-letter topic does not cascade into "<topic>.dead.dead" unless a channel asks for it).
 * A topic whose dead-letter name would be invalid (too long, or an ephemeral topic) keeps
 * upstream's requeue; a channel setting on such a topic is refused.
 *
 * Loop thread only.
 */
#ifndef NSQD_DEAD_LETTER_H
#define NSQD_DEAD_LETTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct channel;
struct nsqd_message;
struct nsqd_options;

/* Writes "<topic><suffix>" into buf (at least NSQ_NAME_MAX_LEN + 1 bytes). Returns 0, or -EINVAL
   when that is not a valid non-ephemeral topic name. */
int dead_letter_topic_name(const struct nsqd_options *o, const char *topic, char *buf, size_t len);

/* The attempts limit in force on c: its own setting, else --max-attempts unless c's topic is a
   dead-letter topic. 0 = none. */
int64_t dead_letter_max_attempts(const struct channel *c);

/* True when m, returning to c after its delivery, has used up its attempts. */
bool dead_letter_due(const struct channel *c, const struct nsqd_message *m);

/* Puts m (out of flight, owned by the caller) into c's dead-letter topic and counts it on c.
   to_disk (journal mode): into the dead-letter topic's diskqueue, to be synced by
   dead_letter_sync before the journal forgets m. Returns true when it took m
   (a failed write is logged and the message dropped, as a failed publish is); false when there
   is no valid dead-letter topic or the daemon is exiting (the caller keeps m and requeues it). */
bool dead_letter_send(struct channel *c, struct nsqd_message *m, bool to_disk);

/* Syncs c's dead-letter topic's diskqueue (blocks the loop for one fsync). Returns 0 or -errno;
   0 when the topic no longer exists. */
int dead_letter_sync(struct channel *c);

#endif
