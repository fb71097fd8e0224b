/*
 * nsq_message: the encoded form of one nsqd message, shared by the V2 message frame data and the
 * diskqueue record payload (tcp-protocol.md §2, storage.md §2):
 *
 *   [int64 timestamp ns][uint16 attempts][16 bytes ASCII hex ID][body]
 *
 * Decoding never copies: a view points into the caller's bytes and is valid as long as they are.
 */
#ifndef NSQ_MESSAGE_H
#define NSQ_MESSAGE_H

#include <stddef.h>
#include <stdint.h>

struct evbuffer;

#define NSQ_MSG_ID_LEN     16
#define NSQ_MSG_TS_LEN     8
#define NSQ_MSG_ATT_LEN    2
#define NSQ_MSG_HEADER_LEN 26 /* ts(8) attempts(2) id(16) */

struct nsq_message_view {
    int64_t timestamp;   /* publish time, Unix ns */
    uint16_t attempts;   /* deliveries so far */
    const char *id;      /* NSQ_MSG_ID_LEN bytes, not NUL-terminated */
    const uint8_t *body; /* body_len bytes (may be 0 for a decoded header-only record) */
    size_t body_len;
};

/* Writes the 26-byte header: timestamp, attempts, id. */
void nsq_message_encode_header(uint8_t out[NSQ_MSG_HEADER_LEN], const char id[NSQ_MSG_ID_LEN],
                               int64_t ts_ns, uint16_t attempts);

/* Decodes a wire/disk payload (no length prefix). Returns 0, or -EINVAL if len < 26. View points
   into data. */
int nsq_message_decode(const uint8_t *data, size_t len, struct nsq_message_view *out);

/* Appends one complete V2 message frame ([size][type 2][header][body]) to out in a single
   contiguous append. Returns 0, -EMSGSIZE or -ENOMEM (out unchanged on error). */
int nsq_message_frame_add(struct evbuffer *out, const char id[NSQ_MSG_ID_LEN], int64_t ts_ns,
                          uint16_t attempts, const void *body, size_t body_len);

#endif
