/*
 * nsq_frame: V2 frame and V1 reply encoding/inspection. A frame is reserved in the output buffer
 * before it is written so that a failed append never leaves half a frame behind.
 */
#include "nsq_frame.h"

#include <errno.h>
#include <string.h>
#include <event2/buffer.h>

void nsq_frame_header(uint8_t hdr[NSQ_FRAME_HEADER_LEN], int32_t type, size_t data_len)
{
    nsq_put_be32(hdr, (uint32_t)(data_len + NSQ_FRAME_TYPE_LEN));
    nsq_put_be32(hdr + NSQ_FRAME_SIZE_LEN, (uint32_t)type);
}

/* Appends header + data as one contiguous reservation, committed only when complete. */
static int add_with_header(struct evbuffer *out, const uint8_t *hdr, size_t hdr_len,
                           const void *data, size_t len)
{
    struct evbuffer_iovec vec;

    if (evbuffer_reserve_space(out, (ev_ssize_t)(hdr_len + len), &vec, 1) != 1)
        return -ENOMEM;
    memcpy(vec.iov_base, hdr, hdr_len);
    if (len > 0)
        memcpy((uint8_t *)vec.iov_base + hdr_len, data, len);
    vec.iov_len = hdr_len + len;
    if (evbuffer_commit_space(out, &vec, 1) != 0)
        return -ENOMEM;
    return 0;
}

int nsq_frame_add(struct evbuffer *out, int32_t type, const void *data, size_t len)
{
    uint8_t hdr[NSQ_FRAME_HEADER_LEN];

    if (len > NSQ_FRAME_MAX_DATA)
        return -EMSGSIZE;
    nsq_frame_header(hdr, type, len);
    return add_with_header(out, hdr, sizeof(hdr), data, len);
}

int nsq_frame_add_v1(struct evbuffer *out, const void *data, size_t len)
{
    uint8_t hdr[NSQ_FRAME_SIZE_LEN];

    if (len > (size_t)INT32_MAX)
        return -EMSGSIZE;
    nsq_put_be32(hdr, (uint32_t)len);
    return add_with_header(out, hdr, sizeof(hdr), data, len);
}

int nsq_frame_peek(struct evbuffer *in, size_t max_size, int32_t *type, uint32_t *data_len)
{
    uint8_t hdr[NSQ_FRAME_HEADER_LEN];
    size_t have = evbuffer_get_length(in);
    int32_t size;

    if (have < NSQ_FRAME_SIZE_LEN)
        return NSQ_FRAME_NEED_MORE;
    evbuffer_copyout(in, hdr, NSQ_FRAME_SIZE_LEN);
    size = (int32_t)nsq_get_be32(hdr);
    if (size < NSQ_FRAME_TYPE_LEN)
        return -EBADMSG;
    if ((size_t)size > max_size)
        return -EMSGSIZE;
    if (have < NSQ_FRAME_SIZE_LEN + (size_t)size)
        return NSQ_FRAME_NEED_MORE;
    evbuffer_copyout(in, hdr, NSQ_FRAME_HEADER_LEN);
    *type = (int32_t)nsq_get_be32(hdr + NSQ_FRAME_SIZE_LEN);
    *data_len = (uint32_t)size - NSQ_FRAME_TYPE_LEN;
    return NSQ_FRAME_READY;
}

int nsq_frame_peek_v1(struct evbuffer *in, size_t max_size, uint32_t *data_len)
{
    uint8_t hdr[NSQ_FRAME_SIZE_LEN];
    size_t have = evbuffer_get_length(in);
    int32_t size;

    if (have < NSQ_FRAME_SIZE_LEN)
        return NSQ_FRAME_NEED_MORE;
    evbuffer_copyout(in, hdr, NSQ_FRAME_SIZE_LEN);
    size = (int32_t)nsq_get_be32(hdr);
    if (size < 0)
        return -EBADMSG;
    if ((size_t)size > max_size)
        return -EMSGSIZE;
    if (have < NSQ_FRAME_SIZE_LEN + (size_t)size)
        return NSQ_FRAME_NEED_MORE;
    *data_len = (uint32_t)size;
    return NSQ_FRAME_READY;
}
