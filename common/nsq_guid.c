/*
 * nsq_guid: snowflake-style 64-bit message IDs. The generation rules, including the state left
 * behind by each error, follow storage.md §6 so that IDs sort and collide exactly as upstream's.
 */
#include "nsq_guid.h"

#include <limits.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <zlib.h>

#define NODE_ID_MODULUS (NSQ_GUID_MAX_NODE_ID + 1)
#define MD5_LEN         16
#define HOSTNAME_MAX    256

void nsq_guid_factory_init(struct nsq_guid_factory *f, int64_t node_id)
{
    memset(f, 0, sizeof(*f));
    f->node_id = node_id & NSQ_GUID_MAX_NODE_ID;
}

int nsq_guid_next(struct nsq_guid_factory *f, int64_t now_ns, uint64_t *out)
{
    int64_t ts = now_ns >> NSQ_GUID_TS_SHIFT_NS;
    uint64_t id;

    if (ts < f->last_ts)
        return NSQ_GUID_ERR_BACKWARDS;
    if (ts == f->last_ts) {
        f->sequence = (f->sequence + 1) & NSQ_GUID_SEQ_MASK;
        if (f->sequence == 0)
            return NSQ_GUID_ERR_SEQ_EXPIRED;
    } else {
        f->sequence = 0;
    }
    f->last_ts = ts;
    id = ((uint64_t)(ts - NSQ_GUID_EPOCH) << NSQ_GUID_TS_SHIFT) |
         ((uint64_t)f->node_id << NSQ_GUID_NODE_SHIFT) | (uint64_t)f->sequence;
    if (id <= f->last_id)
        return NSQ_GUID_ERR_ID_BACKWARD;
    f->last_id = id;
    *out = id;
    return 0;
}

const char *nsq_guid_strerror(int err)
{
    switch (err) {
    case NSQ_GUID_ERR_BACKWARDS:
        return "time has gone backwards";
    case NSQ_GUID_ERR_SEQ_EXPIRED:
        return "sequence expired";
    case NSQ_GUID_ERR_ID_BACKWARD:
        return "ID went backward";
    default:
        return "unknown error";
    }
}

void nsq_guid_to_hex(uint64_t id, char out[NSQ_MSG_ID_LEN])
{
    static const char digits[] = "0123456789abcdef";

    for (int i = NSQ_MSG_ID_LEN - 1; i >= 0; i--) {
        out[i] = digits[id & 0xf];
        id >>= 4;
    }
}

int64_t nsq_node_id_for_hostname(const char *hostname)
{
    unsigned char digest[MD5_LEN];
    unsigned int dlen = 0;
    uLong crc;

    if (EVP_Digest(hostname, strlen(hostname), digest, &dlen, EVP_md5(), NULL) != 1 ||
        dlen != MD5_LEN)
        return 0;
    crc = crc32(0L, Z_NULL, 0);
    crc = crc32(crc, digest, MD5_LEN);
    return (int64_t)(crc % NODE_ID_MODULUS);
}

int64_t nsq_default_node_id(void)
{
    char host[HOSTNAME_MAX + 1];

    if (gethostname(host, HOSTNAME_MAX) != 0)
        host[0] = '\0';
    host[HOSTNAME_MAX] = '\0';
    return nsq_node_id_for_hostname(host);
}
