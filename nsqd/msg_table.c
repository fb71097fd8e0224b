/*
 * msg_table: in-flight hash by message ID (see msg_table.h).
 */
#include "msg_table.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "message.h"

#define MSG_TABLE_MIN_BUCKETS 16

/* IDs differ mostly in their last hex digits (sequence, then time); mix all 16 bytes. */
static size_t msg_table_hash(const char *id)
{
    uint64_t a, b;
    memcpy(&a, id, 8);
    memcpy(&b, id + 8, 8);
    uint64_t h = (a * 0x9E3779B97F4A7C15ULL) ^ b;
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ULL;
    h ^= h >> 32;
    return (size_t)h;
}

static int msg_table_rehash(struct msg_table *t, size_t nb)
{
    struct nsqd_message **nbk = calloc(nb, sizeof(*nbk));
    if (!nbk)
        return -ENOMEM;
    for (size_t i = 0; i < t->nbuckets; i++) {
        struct nsqd_message *m = t->buckets[i];
        while (m) {
            struct nsqd_message *next = m->hnext;
            size_t h = msg_table_hash(m->id) & (nb - 1);
            m->hnext = nbk[h];
            nbk[h] = m;
            m = next;
        }
    }
    free(t->buckets);
    t->buckets = nbk;
    t->nbuckets = nb;
    return 0;
}

int msg_table_insert(struct msg_table *t, struct nsqd_message *m)
{
    if (t->count >= t->nbuckets) {
        int rc = msg_table_rehash(t, t->nbuckets ? t->nbuckets * 2 : MSG_TABLE_MIN_BUCKETS);
        if (rc && !t->nbuckets)
            return rc;
    }
    size_t h = msg_table_hash(m->id) & (t->nbuckets - 1);
    m->hnext = t->buckets[h];
    t->buckets[h] = m;
    t->count++;
    return 0;
}

struct nsqd_message *msg_table_find(const struct msg_table *t, const char *id)
{
    if (!t->nbuckets)
        return NULL;
    struct nsqd_message *m = t->buckets[msg_table_hash(id) & (t->nbuckets - 1)];
    while (m && memcmp(m->id, id, NSQ_MSG_ID_LEN) != 0)
        m = m->hnext;
    return m;
}

void msg_table_remove(struct msg_table *t, struct nsqd_message *m)
{
    struct nsqd_message **pp = &t->buckets[msg_table_hash(m->id) & (t->nbuckets - 1)];
    while (*pp && *pp != m)
        pp = &(*pp)->hnext;
    if (*pp) {
        *pp = m->hnext;
        t->count--;
    }
    m->hnext = NULL;
    if (t->nbuckets > MSG_TABLE_MIN_BUCKETS * 4 && t->count < t->nbuckets / 8)
        msg_table_rehash(t, t->nbuckets / 4); /* failure keeps the larger table */
}

void msg_table_release(struct msg_table *t)
{
    free(t->buckets);
    t->buckets = NULL;
    t->nbuckets = 0;
    t->count = 0;
}
