/*
 * msg_table: a channel's in-flight messages by their 16-byte ID (chained hash, chained through
 * nsqd_message.hnext so an insert allocates nothing). Grows by doubling at load factor 1 and
 * shrinks when it becomes sparse.
 */
#ifndef NSQD_MSG_TABLE_H
#define NSQD_MSG_TABLE_H

#include <stddef.h>

struct nsqd_message;

struct msg_table {
    struct nsqd_message **buckets;
    size_t nbuckets; /* power of two or 0 */
    size_t count;
};

/* Inserts m (its ID must not be present). Returns 0 or -ENOMEM. */
int msg_table_insert(struct msg_table *t, struct nsqd_message *m);
struct nsqd_message *msg_table_find(const struct msg_table *t, const char *id);
/* Unlinks m (which must be present). */
void msg_table_remove(struct msg_table *t, struct nsqd_message *m);
void msg_table_release(struct msg_table *t);

#endif
