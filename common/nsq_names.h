/*
 * nsq_names: topic and channel name rules (tcp-protocol.md §8), shared by nsqd, nsqlookupd,
 * nsqadmin and the clients: 1..64 bytes matching ^[.a-zA-Z0-9_-]+(#ephemeral)?$ (the suffix counts
 * toward the 64). Names are byte strings with explicit length (no NUL needed).
 */
#ifndef NSQ_NAMES_H
#define NSQ_NAMES_H

#include <stdbool.h>
#include <stddef.h>

#define NSQ_NAME_MAX_LEN         64
#define NSQ_EPHEMERAL_SUFFIX     "#ephemeral"
#define NSQ_EPHEMERAL_SUFFIX_LEN (sizeof(NSQ_EPHEMERAL_SUFFIX) - 1)

bool nsq_topic_name_valid(const char *name, size_t len);
bool nsq_channel_name_valid(const char *name, size_t len);

/* True when name ends with "#ephemeral" (a plain suffix test, like upstream; validity aside). */
bool nsq_name_is_ephemeral(const char *name, size_t len);

#endif
