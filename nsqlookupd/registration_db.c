/*
 * registration_db: registrations (category, key, subkey) → producers, indexed by topic and by peer.
 * See registration_db.h for the model and its invariants.
 *
 * The hash tables are intrusive (a node embedded in the topic or channel struct) and grow by
 * doubling when the load exceeds one entry per bucket, so lookups stay O(1) on average.
 */
#include "registration_db.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define HT_INITIAL_BUCKETS 16

/* ---- intrusive string hash table ---- */

struct hnode {
    struct hnode *next;
    uint64_t hash;
    const char *name; /* points into the containing struct */
};

struct htable {
    struct hnode **buckets;
    size_t nbuckets;
    size_t count;
};

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

static uint64_t hash_str(const char *s)
{
    uint64_t h = 14695981039346656037ULL; /* FNV-1a */
    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

static struct hnode *ht_find(const struct htable *t, const char *name, uint64_t hash)
{
    if (t->nbuckets == 0)
        return NULL;
    for (struct hnode *n = t->buckets[hash & (t->nbuckets - 1)]; n != NULL; n = n->next)
        if (n->hash == hash && strcmp(n->name, name) == 0)
            return n;
    return NULL;
}

static int ht_grow(struct htable *t)
{
    size_t nb = t->nbuckets == 0 ? HT_INITIAL_BUCKETS : t->nbuckets * 2;
    struct hnode **b = calloc(nb, sizeof(*b));
    if (b == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < t->nbuckets; i++) {
        struct hnode *n = t->buckets[i];
        while (n != NULL) {
            struct hnode *next = n->next;
            n->next = b[n->hash & (nb - 1)];
            b[n->hash & (nb - 1)] = n;
            n = next;
        }
    }
    free(t->buckets);
    t->buckets = b;
    t->nbuckets = nb;
    return 0;
}

static int ht_insert(struct htable *t, struct hnode *n)
{
    if (t->count >= t->nbuckets && ht_grow(t) != 0)
        return -ENOMEM;
    struct hnode **head = &t->buckets[n->hash & (t->nbuckets - 1)];
    n->next = *head;
    *head = n;
    t->count++;
    return 0;
}

static void ht_remove(struct htable *t, struct hnode *n)
{
    struct hnode **pp = &t->buckets[n->hash & (t->nbuckets - 1)];
    while (*pp != NULL && *pp != n)
        pp = &(*pp)->next;
    if (*pp == n) {
        *pp = n->next;
        t->count--;
    }
}

/* ---- model ---- */

struct db_topic;

struct registration {
    enum reg_category cat;
    struct db_topic *topic; /* NULL for client:: */
    char *subkey;           /* channel name (owned) for channels, else NULL */
    struct lookup_producer *first, *last;
    size_t nproducers;
    /* channels only: index and list within the topic */
    struct hnode node;
    struct registration *prev, *next;
};

struct db_topic {
    char *name;
    struct hnode node;
    struct db_topic *prev, *next;
    struct registration *reg; /* topic:T: or NULL when the key does not exist */
    struct htable channels;
    struct registration *chan_first, *chan_last;
};

struct registration_db {
    struct registration client; /* client:: always exists */
    struct htable topics;
    struct db_topic *first, *last;
};

const char *registration_category_name(enum reg_category cat)
{
    switch (cat) {
    case REG_CLIENT:
        return "client";
    case REG_TOPIC:
        return "topic";
    case REG_CHANNEL:
        return "channel";
    }
    return "";
}

struct registration_db *registration_db_new(void)
{
    struct registration_db *db = calloc(1, sizeof(*db));
    if (db == NULL)
        return NULL;
    db->client.cat = REG_CLIENT;
    return db;
}

struct lookup_peer *lookup_peer_new(const char *id)
{
    struct lookup_peer *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->id = strdup(id);
    p->remote_address = strdup(id);
    if (p->id == NULL || p->remote_address == NULL) {
        lookup_peer_free(p);
        return NULL;
    }
    return p;
}

void lookup_peer_free(struct lookup_peer *peer)
{
    if (peer == NULL)
        return;
    free(peer->id);
    free(peer->remote_address);
    free(peer->hostname);
    free(peer->broadcast_address);
    free(peer->version);
    free(peer->topology_zone);
    free(peer->topology_region);
    free(peer);
}

/* Unlinks and frees one producer. */
static void producer_free(struct lookup_producer *p)
{
    struct registration *r = p->reg;
    struct lookup_peer *peer = p->peer;
    if (p->reg_prev != NULL)
        p->reg_prev->reg_next = p->reg_next;
    else
        r->first = p->reg_next;
    if (p->reg_next != NULL)
        p->reg_next->reg_prev = p->reg_prev;
    else
        r->last = p->reg_prev;
    r->nproducers--;
    if (p->peer_prev != NULL)
        p->peer_prev->peer_next = p->peer_next;
    else
        peer->first = p->peer_next;
    if (p->peer_next != NULL)
        p->peer_next->peer_prev = p->peer_prev;
    else
        peer->last = p->peer_prev;
    peer->nproducers--;
    free(p);
}

static void registration_clear(struct registration *r)
{
    while (r->first != NULL)
        producer_free(r->first);
}

static void registration_free(struct registration *r)
{
    if (r == NULL)
        return;
    registration_clear(r);
    free(r->subkey);
    free(r);
}

static struct db_topic *topic_find(const struct registration_db *db, const char *name)
{
    struct hnode *n = ht_find(&db->topics, name, hash_str(name));
    return n != NULL ? container_of(n, struct db_topic, node) : NULL;
}

static struct db_topic *topic_get(struct registration_db *db, const char *name)
{
    struct db_topic *t = topic_find(db, name);
    if (t != NULL)
        return t;
    t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->name = strdup(name);
    if (t->name == NULL)
        goto err;
    t->node.name = t->name;
    t->node.hash = hash_str(name);
    if (ht_insert(&db->topics, &t->node) != 0)
        goto err;
    t->prev = db->last;
    if (db->last != NULL)
        db->last->next = t;
    else
        db->first = t;
    db->last = t;
    return t;
err:
    free(t->name);
    free(t);
    return NULL;
}

static void channel_unlink(struct db_topic *t, struct registration *c)
{
    ht_remove(&t->channels, &c->node);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        t->chan_first = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    else
        t->chan_last = c->prev;
}

/* Frees the topic entry if neither its key nor any channel key remains (force: always). */
static void topic_release(struct registration_db *db, struct db_topic *t, bool force)
{
    if (!force && (t->reg != NULL || t->chan_first != NULL))
        return;
    while (t->chan_first != NULL) {
        struct registration *c = t->chan_first;
        channel_unlink(t, c);
        registration_free(c);
    }
    registration_free(t->reg);
    ht_remove(&db->topics, &t->node);
    if (t->prev != NULL)
        t->prev->next = t->next;
    else
        db->first = t->next;
    if (t->next != NULL)
        t->next->prev = t->prev;
    else
        db->last = t->prev;
    free(t->channels.buckets);
    free(t->name);
    free(t);
}

void registration_db_free(struct registration_db *db)
{
    if (db == NULL)
        return;
    while (db->first != NULL)
        topic_release(db, db->first, true);
    registration_clear(&db->client);
    free(db->topics.buckets);
    free(db);
}

static struct registration *channel_find(const struct db_topic *t, const char *name)
{
    struct hnode *n = ht_find(&t->channels, name, hash_str(name));
    return n != NULL ? container_of(n, struct registration, node) : NULL;
}

/* Finds an existing registration (no creation). */
static struct registration *reg_find(const struct registration_db *db, enum reg_category cat,
                                     const char *key, const char *subkey)
{
    if (cat == REG_CLIENT)
        return (struct registration *)&db->client;
    struct db_topic *t = topic_find(db, key);
    if (t == NULL)
        return NULL;
    return cat == REG_TOPIC ? t->reg : channel_find(t, subkey);
}

/* Finds or creates a registration. */
static struct registration *reg_get(struct registration_db *db, enum reg_category cat,
                                    const char *key, const char *subkey)
{
    if (cat == REG_CLIENT)
        return &db->client;
    struct db_topic *t = topic_get(db, key);
    if (t == NULL)
        return NULL;
    if (cat == REG_TOPIC) {
        if (t->reg == NULL) {
            t->reg = calloc(1, sizeof(*t->reg));
            if (t->reg == NULL)
                goto err;
            t->reg->cat = REG_TOPIC;
            t->reg->topic = t;
        }
        return t->reg;
    }
    struct registration *c = channel_find(t, subkey);
    if (c != NULL)
        return c;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        goto err;
    c->cat = REG_CHANNEL;
    c->topic = t;
    c->subkey = strdup(subkey);
    if (c->subkey == NULL)
        goto err_chan;
    c->node.name = c->subkey;
    c->node.hash = hash_str(subkey);
    if (ht_insert(&t->channels, &c->node) != 0)
        goto err_chan;
    c->prev = t->chan_last;
    if (t->chan_last != NULL)
        t->chan_last->next = c;
    else
        t->chan_first = c;
    t->chan_last = c;
    return c;
err_chan:
    free(c->subkey);
    free(c);
err:
    topic_release(db, t, false);
    return NULL;
}

int registration_db_add_key(struct registration_db *db, enum reg_category cat, const char *key,
                            const char *subkey)
{
    return reg_get(db, cat, key, subkey) != NULL ? 0 : -ENOMEM;
}

bool registration_db_has_key(const struct registration_db *db, enum reg_category cat,
                             const char *key, const char *subkey)
{
    return reg_find(db, cat, key, subkey) != NULL;
}

bool registration_db_remove_key(struct registration_db *db, enum reg_category cat, const char *key,
                                const char *subkey)
{
    struct registration *r = reg_find(db, cat, key, subkey);
    if (r == NULL)
        return false;
    if (cat == REG_CLIENT) {
        registration_clear(r);
        return true;
    }
    struct db_topic *t = r->topic;
    if (cat == REG_TOPIC) {
        t->reg = NULL;
    } else {
        channel_unlink(t, r);
    }
    registration_free(r);
    topic_release(db, t, false);
    return true;
}

int registration_db_add_producer(struct registration_db *db, enum reg_category cat, const char *key,
                                 const char *subkey, struct lookup_peer *peer)
{
    struct registration *r = reg_get(db, cat, key, subkey);
    if (r == NULL)
        return -ENOMEM;
    for (struct lookup_producer *p = r->first; p != NULL; p = p->reg_next)
        if (p->peer == peer)
            return 0;
    struct lookup_producer *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return -ENOMEM;
    p->peer = peer;
    p->reg = r;
    p->reg_prev = r->last;
    if (r->last != NULL)
        r->last->reg_next = p;
    else
        r->first = p;
    r->last = p;
    r->nproducers++;
    p->peer_prev = peer->last;
    if (peer->last != NULL)
        peer->last->peer_next = p;
    else
        peer->first = p;
    peer->last = p;
    peer->nproducers++;
    return 1;
}

static bool reg_remove_peer(struct registration *r, const struct lookup_peer *peer)
{
    for (struct lookup_producer *p = r->first; p != NULL; p = p->reg_next) {
        if (p->peer == peer) {
            producer_free(p);
            return true;
        }
    }
    return false;
}

bool registration_db_remove_producer(struct registration_db *db, enum reg_category cat,
                                     const char *key, const char *subkey, struct lookup_peer *peer,
                                     size_t *left)
{
    struct registration *r = reg_find(db, cat, key, subkey);
    *left = 0;
    if (r == NULL)
        return false;
    bool removed = reg_remove_peer(r, peer);
    *left = r->nproducers;
    return removed;
}

size_t registration_db_remove_producer_channels(struct registration_db *db, const char *topic,
                                                struct lookup_peer *peer)
{
    struct db_topic *t = topic_find(db, topic);
    size_t n = 0;
    for (struct registration *c = t != NULL ? t->chan_first : NULL; c != NULL; c = c->next)
        n += reg_remove_peer(c, peer) ? 1 : 0;
    return n;
}

size_t registration_db_remove_peer(struct registration_db *db, struct lookup_peer *peer)
{
    (void)db;
    size_t n = 0;
    while (peer->first != NULL) {
        producer_free(peer->first);
        n++;
    }
    return n;
}

void registration_db_remove_topic(struct registration_db *db, const char *topic)
{
    struct db_topic *t = topic_find(db, topic);
    if (t != NULL)
        topic_release(db, t, true);
}

void registration_db_each_topic(const struct registration_db *db,
                                void (*fn)(const char *topic, void *arg), void *arg)
{
    for (const struct db_topic *t = db->first; t != NULL; t = t->next)
        if (t->reg != NULL)
            fn(t->name, arg);
}

void registration_db_each_channel(const struct registration_db *db, const char *topic,
                                  void (*fn)(const char *channel, void *arg), void *arg)
{
    const struct db_topic *t = topic_find(db, topic);
    for (const struct registration *c = t != NULL ? t->chan_first : NULL; c != NULL; c = c->next)
        fn(c->subkey, arg);
}

struct lookup_producer *registration_db_producers(const struct registration_db *db,
                                                  enum reg_category cat, const char *key,
                                                  const char *subkey)
{
    const struct registration *r = reg_find(db, cat, key, subkey);
    return r != NULL ? r->first : NULL;
}

void registration_db_each_key(const struct registration_db *db,
                              void (*fn)(enum reg_category cat, const char *key, const char *subkey,
                                         struct lookup_producer *first, void *arg),
                              void *arg)
{
    if (db->client.first != NULL)
        fn(REG_CLIENT, "", "", db->client.first, arg);
    for (const struct db_topic *t = db->first; t != NULL; t = t->next) {
        if (t->reg != NULL && t->reg->first != NULL)
            fn(REG_TOPIC, t->name, "", t->reg->first, arg);
        for (const struct registration *c = t->chan_first; c != NULL; c = c->next)
            if (c->first != NULL)
                fn(REG_CHANNEL, t->name, c->subkey, c->first, arg);
    }
}

enum reg_category lookup_producer_category(const struct lookup_producer *p)
{
    return p->reg->cat;
}

const char *lookup_producer_key(const struct lookup_producer *p)
{
    return p->reg->topic != NULL ? p->reg->topic->name : "";
}

bool lookup_producer_is_tombstoned(const struct lookup_producer *p, int64_t now_ns,
                                   int64_t lifetime_ns)
{
    return p->tombstoned && now_ns - p->tombstoned_at_ns < lifetime_ns;
}

bool lookup_producer_is_active(const struct lookup_producer *p, int64_t now_ns,
                               int64_t inactive_timeout_ns, int64_t tombstone_lifetime_ns)
{
    if (now_ns - p->peer->last_update_ns > inactive_timeout_ns)
        return false;
    return !lookup_producer_is_tombstoned(p, now_ns, tombstone_lifetime_ns);
}

void lookup_producer_tombstone(struct lookup_producer *p, int64_t now_ns)
{
    p->tombstoned = true;
    p->tombstoned_at_ns = now_ns;
}
