/* nsq_message: encode/decode of the 26-byte message header shared by the wire and the disk. */
#include "nsq_message.h"

#include "nsq_frame.h"

#include <errno.h>
#include <string.h>
#include <event2/buffer.h>

void nsq_message_encode_header(uint8_t out[NSQ_MSG_HEADER_LEN], const char id[NSQ_MSG_ID_LEN],
                               int64_t ts_ns, uint16_t attempts)
{
    nsq_put_be64(out, (uint64_t)ts_ns);
    nsq_put_be16(out + NSQ_MSG_TS_LEN, attempts);
    memcpy(out + NSQ_MSG_TS_LEN + NSQ_MSG_ATT_LEN, id, NSQ_MSG_ID_LEN);
}

int nsq_message_decode(const uint8_t *data, size_t len, struct nsq_message_view *out)
{
    if (data == NULL || len < NSQ_MSG_HEADER_LEN)
        return -EINVAL;
    out->timestamp = (int64_t)nsq_get_be64(data);
    out->attempts = nsq_get_be16(data + NSQ_MSG_TS_LEN);
    out->id = (const char *)(data + NSQ_MSG_TS_LEN + NSQ_MSG_ATT_LEN);
    out->body = data + NSQ_MSG_HEADER_LEN;
    out->body_len = len - NSQ_MSG_HEADER_LEN;
    return 0;
}

int nsq_message_frame_add(struct evbuffer *out, const char id[NSQ_MSG_ID_LEN], int64_t ts_ns,
                          uint16_t attempts, const void *body, size_t body_len)
{
    struct evbuffer_iovec vec;
    uint8_t *p;
    size_t total;

    if (body_len > NSQ_FRAME_MAX_DATA - NSQ_MSG_HEADER_LEN)
        return -EMSGSIZE;
    total = NSQ_FRAME_HEADER_LEN + NSQ_MSG_HEADER_LEN + body_len;
    if (evbuffer_reserve_space(out, (ev_ssize_t)total, &vec, 1) != 1)
        return -ENOMEM;
    p = vec.iov_base;
    nsq_frame_header(p, NSQ_FRAME_MESSAGE, NSQ_MSG_HEADER_LEN + body_len);
    nsq_message_encode_header(p + NSQ_FRAME_HEADER_LEN, id, ts_ns, attempts);
    if (body_len > 0)
        memcpy(p + NSQ_FRAME_HEADER_LEN + NSQ_MSG_HEADER_LEN, body, body_len);
    vec.iov_len = total;
    if (evbuffer_commit_space(out, &vec, 1) != 0)
        return -ENOMEM;
    return 0;
}
