/*
 * nsq_guid: per-topic message ID generator (storage.md §6).
 *
 *   id = ((now_ns >> 20) - NSQ_GUID_EPOCH) << 22 | node_id << 12 | sequence
 *
 * IDs from one factory strictly increase. A factory is not thread-safe: its owner (one topic)
 * serialises calls. On any error the caller waits about 1 ms and retries (at most 4096 IDs are
 * available per tick of 2^20 ns). The wire form is the 8 bytes big-endian, lowercase hex.
 */
#ifndef NSQ_GUID_H
#define NSQ_GUID_H

#include <stdint.h>

#include "nsq_message.h"

#define NSQ_GUID_EPOCH       1288834974288LL /* in units of 2^20 ns */
#define NSQ_GUID_TS_SHIFT_NS 20              /* ts = now_ns >> 20 */
#define NSQ_GUID_NODE_BITS   10
#define NSQ_GUID_SEQ_BITS    12
#define NSQ_GUID_SEQ_MASK    ((1LL << NSQ_GUID_SEQ_BITS) - 1)
#define NSQ_GUID_NODE_SHIFT  NSQ_GUID_SEQ_BITS
#define NSQ_GUID_TS_SHIFT    (NSQ_GUID_NODE_BITS + NSQ_GUID_SEQ_BITS)
#define NSQ_GUID_MAX_NODE_ID ((1LL << NSQ_GUID_NODE_BITS) - 1) /* 1023 */

/* nsq_guid_next errors. */
#define NSQ_GUID_ERR_BACKWARDS   (-1) /* "time has gone backwards" */
#define NSQ_GUID_ERR_SEQ_EXPIRED (-2) /* "sequence expired" */
#define NSQ_GUID_ERR_ID_BACKWARD (-3) /* "ID went backward" */

struct nsq_guid_factory {
    int64_t node_id;
    int64_t sequence;
    int64_t last_ts;
    uint64_t last_id;
};

/* node_id must be in 0..NSQ_GUID_MAX_NODE_ID (it is masked to 10 bits). */
void nsq_guid_factory_init(struct nsq_guid_factory *f, int64_t node_id);

/* storage.md §6. Returns 0 and *out, or NSQ_GUID_ERR_BACKWARDS / NSQ_GUID_ERR_SEQ_EXPIRED /
   NSQ_GUID_ERR_ID_BACKWARD (the factory state changes exactly as upstream's does). */
int nsq_guid_next(struct nsq_guid_factory *f, int64_t now_ns, uint64_t *out);

/* Upstream's error text for an nsq_guid_next error code (static string). */
const char *nsq_guid_strerror(int err);

/* Lowercase hex of the 8 big-endian bytes; writes exactly 16 bytes, no NUL. */
void nsq_guid_to_hex(uint64_t id, char out[NSQ_MSG_ID_LEN]);

/* CRC-32/IEEE of the binary MD5 digest of the OS hostname, modulo 1024. */
int64_t nsq_default_node_id(void);

/* The same computation for a given hostname (exposed for tests). */
int64_t nsq_node_id_for_hostname(const char *hostname);

#endif
