/*
 * registration_db: what nsqlookupd knows about the cluster, in memory only.
 *
 * A registration is a (category, key, subkey) triple: `client::` (one producer per identified
 * nsqd connection), `topic:T:` and `channel:T:C`. Each registration holds a set of producers; a
 * producer is one peer (an identified nsqd connection, struct lookup_peer) inside one
 * registration, with its own tombstone state. The peer's identity and activity time are shared by
 * all of its producers.
 *
 * Indexes (all iteration is in insertion order):
 *   - topics by name (hash) → the topic's own registration (if the key `topic:T:` exists) and its
 *     channel registrations (hash by name + list), so /lookup, /channels and REGISTER cost
 *     O(channels + producers of that topic), never a scan of the whole database;
 *   - each peer lists its producers (memberships), so a disconnect or /nodes costs
 *     O(registrations of that peer);
 *   - each registration lists its producers.
 *
 * Invariants: a producer is linked both in its registration and in its peer; a peer appears at
 * most once per registration; a topic entry lives while its topic key or any channel key exists.
 * Keys are not removed when their last producer leaves (callers delete them explicitly).
 *
 * Threading: single-threaded; everything runs on the daemon's event loop.
 */
#ifndef NSQLOOKUPD_REGISTRATION_DB_H
#define NSQLOOKUPD_REGISTRATION_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum reg_category { REG_CLIENT, REG_TOPIC, REG_CHANNEL };

struct lookup_producer;

/* One identified nsqd connection. Owned by the connection; strings are malloc'd and owned. */
struct lookup_peer {
    char *id;             /* remote "ip:port" of the connection */
    char *remote_address; /* same text */
    char *hostname;
    char *broadcast_address;
    int64_t tcp_port;
    int64_t http_port;
    char *version;
    char *topology_zone; /* NULL unless nsqd sent one (its topology flags) */
    char *topology_region;
    int64_t last_update_ns; /* wall clock ns of the last IDENTIFY/PING */
    /* producers of this peer, in registration order (owned by the db) */
    struct lookup_producer *first, *last;
    size_t nproducers;
};

struct registration; /* opaque */

struct lookup_producer {
    struct lookup_peer *peer;
    struct registration *reg;
    bool tombstoned;
    int64_t tombstoned_at_ns;
    /* links in the registration's list and in the peer's list */
    struct lookup_producer *reg_prev, *reg_next;
    struct lookup_producer *peer_prev, *peer_next;
};

struct registration_db;

struct registration_db *registration_db_new(void);
/* Frees every key and producer. Peers are not freed (their connections own them) but must have
   been removed first with registration_db_remove_peer(). NULL is a no-op. */
void registration_db_free(struct registration_db *db);

/* Peers: the caller allocates (lookup_peer_new) and frees (lookup_peer_free) them. */
struct lookup_peer *lookup_peer_new(const char *id);
void lookup_peer_free(struct lookup_peer *peer);

/*
 * Keys. `key`/`subkey` are the topic/channel names; client:: uses "" for both. Adding an
 * existing key is a no-op. Returns 0 or -ENOMEM.
 */
int registration_db_add_key(struct registration_db *db, enum reg_category cat, const char *key,
                            const char *subkey);
/* Removes the key and its producers. Returns true if it existed. */
bool registration_db_remove_key(struct registration_db *db, enum reg_category cat, const char *key,
                                const char *subkey);
bool registration_db_has_key(const struct registration_db *db, enum reg_category cat,
                             const char *key, const char *subkey);

/*
 * Adds `peer` as a producer of the key (creating the key). If the peer is already a producer
 * there, nothing changes (its tombstone stays). Returns 1 if added, 0 if already there, -ENOMEM.
 */
int registration_db_add_producer(struct registration_db *db, enum reg_category cat, const char *key,
                                 const char *subkey, struct lookup_peer *peer);
/* Removes peer from the key. Returns whether it was removed; *left = producers remaining (0 if
   the key does not exist). */
bool registration_db_remove_producer(struct registration_db *db, enum reg_category cat,
                                     const char *key, const char *subkey, struct lookup_peer *peer,
                                     size_t *left);
/* Removes peer from every channel:T:* key. Returns how many producers were removed. */
size_t registration_db_remove_producer_channels(struct registration_db *db, const char *topic,
                                                struct lookup_peer *peer);
/* Removes every producer of the peer (connection closed). Keys stay. Returns the count. */
size_t registration_db_remove_peer(struct registration_db *db, struct lookup_peer *peer);

/* Removes topic:T: and every channel:T:* key. */
void registration_db_remove_topic(struct registration_db *db, const char *topic);

/* ---- iteration (callbacks must not modify the db) ---- */

/* Calls fn for every topic with a `topic:T:` key. */
void registration_db_each_topic(const struct registration_db *db,
                                void (*fn)(const char *topic, void *arg), void *arg);
/* Calls fn for every channel key of topic (may be none). */
void registration_db_each_channel(const struct registration_db *db, const char *topic,
                                  void (*fn)(const char *channel, void *arg), void *arg);
/* First producer of a key (NULL if none or no key); follow ->reg_next. */
struct lookup_producer *registration_db_producers(const struct registration_db *db,
                                                  enum reg_category cat, const char *key,
                                                  const char *subkey);
/* Calls fn for every key that has producers, in a stable order (client, then per topic: the
   topic key followed by its channel keys). */
void registration_db_each_key(const struct registration_db *db,
                              void (*fn)(enum reg_category cat, const char *key, const char *subkey,
                                         struct lookup_producer *first, void *arg),
                              void *arg);

/* Category names as they appear in /debug keys. */
const char *registration_category_name(enum reg_category cat);
/* The (key, subkey) of a producer's registration. */
enum reg_category lookup_producer_category(const struct lookup_producer *p);
const char *lookup_producer_key(const struct lookup_producer *p);

/* Activity filters of /lookup and /nodes. lifetime_ns 0 → tombstones never count. */
bool lookup_producer_is_tombstoned(const struct lookup_producer *p, int64_t now_ns,
                                   int64_t lifetime_ns);
bool lookup_producer_is_active(const struct lookup_producer *p, int64_t now_ns,
                               int64_t inactive_timeout_ns, int64_t tombstone_lifetime_ns);
void lookup_producer_tombstone(struct lookup_producer *p, int64_t now_ns);

#endif
