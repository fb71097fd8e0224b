/*
 * nsq_frame: server-to-client framing of the V2 protocol (tcp-protocol.md §2) and the plain
 * length-prefixed replies of the nsqlookupd V1 protocol (§10.1), plus the big-endian integer
 * helpers every wire and disk format here uses.
 *
 * V2 frame:  [int32 size = 4 + len(data)][int32 type][data]
 * V1 reply:  [int32 size = len(data)][data]
 *
 * Writers append whole frames to an evbuffer (never partially: on failure the buffer is unchanged
 * or the error is -ENOMEM). Readers only inspect the head of a buffer and never drain it, so the
 * caller decides when to remove a frame (evbuffer_drain / evbuffer_remove).
 */
#ifndef NSQ_FRAME_H
#define NSQ_FRAME_H

#include <stddef.h>
#include <stdint.h>

struct evbuffer;

enum { NSQ_FRAME_RESPONSE = 0, NSQ_FRAME_ERROR = 1, NSQ_FRAME_MESSAGE = 2 };

#define NSQ_FRAME_HEADER_LEN 8 /* int32 size + int32 type */
#define NSQ_FRAME_SIZE_LEN   4 /* the int32 size field alone (also the V1 reply header) */
#define NSQ_FRAME_TYPE_LEN   4

/* Largest data length a frame can describe (the size field is a signed int32 that includes the
 * type). */
#define NSQ_FRAME_MAX_DATA ((size_t)INT32_MAX - NSQ_FRAME_TYPE_LEN)

/* nsq_frame_peek results. */
#define NSQ_FRAME_NEED_MORE 0
#define NSQ_FRAME_READY     1

/* Writes size,type,data as one V2 frame into out. Returns 0, -EMSGSIZE if len exceeds
   NSQ_FRAME_MAX_DATA, or -ENOMEM. */
int nsq_frame_add(struct evbuffer *out, int32_t type, const void *data, size_t len);

/* Fills the 8-byte V2 header for a frame carrying data_len bytes (data_len <= NSQ_FRAME_MAX_DATA).
 */
void nsq_frame_header(uint8_t hdr[NSQ_FRAME_HEADER_LEN], int32_t type, size_t data_len);

/* Client side: inspects the head of `in`. Returns NSQ_FRAME_NEED_MORE (0) while the frame is
   incomplete, NSQ_FRAME_READY (1) when the whole frame is buffered (fills type and data_len; the
   frame is at the head: 8 header bytes then data_len bytes), or -EBADMSG if the size field is < 4
   (negative included) or -EMSGSIZE if it is > max_size (max_size bounds the size field, i.e. 4 +
   data length). Does not drain. */
int nsq_frame_peek(struct evbuffer *in, size_t max_size, int32_t *type, uint32_t *data_len);

/* nsqlookupd V1 reply: [int32 len][data]. Returns 0, -EMSGSIZE or -ENOMEM. */
int nsq_frame_add_v1(struct evbuffer *out, const void *data, size_t len);

/* Reading side of V1 replies: NSQ_FRAME_NEED_MORE, NSQ_FRAME_READY (data_len set; the reply is 4
   header bytes then data_len bytes), -EBADMSG for a negative size, -EMSGSIZE if size > max_size. */
int nsq_frame_peek_v1(struct evbuffer *in, size_t max_size, uint32_t *data_len);

/* Big-endian loads and stores. */
static inline void nsq_put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void nsq_put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline void nsq_put_be64(uint8_t *p, uint64_t v)
{
    nsq_put_be32(p, (uint32_t)(v >> 32));
    nsq_put_be32(p + 4, (uint32_t)v);
}

static inline uint16_t nsq_get_be16(const uint8_t *p)
{
    return (uint16_t)(((uint16_t)p[0] << 8) | p[1]);
}

static inline uint32_t nsq_get_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline uint64_t nsq_get_be64(const uint8_t *p)
{
    return ((uint64_t)nsq_get_be32(p) << 32) | nsq_get_be32(p + 4);
}

#endif
