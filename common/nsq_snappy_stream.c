/*
 * nsq_snappy_stream: snappy framing format over evbuffers, on top of libsnappy's block codec.
 *
 * Both directions work in place: the writer compresses straight into space reserved in dst and the
 * reader decompresses straight into space reserved in dst, so neither keeps a per-stream scratch
 * buffer (a connection costs a few bytes of state, not 64 KiB). The price is evbuffer_pullup on a
 * chunk that straddles two evbuffer chains, which copies it once to make it contiguous.
 */
#include "nsq_snappy_stream.h"

#include "nsq_crc32c.h"

#include <errno.h>
#include <snappy-c.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#define CRC_MASK_DELTA     0xa282ead8u
#define CRC_MASK_SHIFT     15
#define STREAM_ID_BODY     "sNaPpY"
#define STREAM_ID_BODY_LEN 6
#define CHUNK_PREFIX_LEN   (NSQ_SNAPPY_CHUNK_HDR_LEN + NSQ_SNAPPY_CRC_LEN)

const uint8_t nsq_snappy_stream_id[10] = {0xff, 0x06, 0x00, 0x00, 's', 'N', 'a', 'P', 'p', 'Y'};

struct nsq_snappy_writer {
    bool wrote_stream_id;
};

struct nsq_snappy_reader {
    bool seen_stream_id;
    size_t skip_remaining; /* bytes of a skippable chunk not yet arrived */
    int err;               /* sticky: 0 or a negative errno */
};

uint32_t nsq_snappy_masked_crc(const void *data, size_t len)
{
    uint32_t c = nsq_crc32c(data, len);
    return ((c >> CRC_MASK_SHIFT) | (c << (32 - CRC_MASK_SHIFT))) + CRC_MASK_DELTA;
}

static void put_le24(uint8_t *p, size_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
}

static void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

struct nsq_snappy_writer *nsq_snappy_writer_new(void)
{
    return calloc(1, sizeof(struct nsq_snappy_writer));
}

void nsq_snappy_writer_free(struct nsq_snappy_writer *w)
{
    free(w);
}

struct nsq_snappy_reader *nsq_snappy_reader_new(void)
{
    return calloc(1, sizeof(struct nsq_snappy_reader));
}

void nsq_snappy_reader_free(struct nsq_snappy_reader *r)
{
    free(r);
}

/* Frames the n contiguous bytes at in as one chunk appended to dst. */
static int write_chunk(const uint8_t *in, size_t n, struct evbuffer *dst)
{
    size_t cap = CHUNK_PREFIX_LEN + snappy_max_compressed_length(n);
    struct evbuffer_iovec v;

    if (evbuffer_reserve_space(dst, (ev_ssize_t)cap, &v, 1) != 1 || v.iov_len < cap)
        return -ENOMEM;
    uint8_t *out = v.iov_base;
    size_t clen = cap - CHUNK_PREFIX_LEN;
    uint8_t type = NSQ_SNAPPY_CHUNK_COMPRESSED;

    /* Compression that saves less than an eighth is not worth the reader's time. */
    if (snappy_compress((const char *)in, n, (char *)out + CHUNK_PREFIX_LEN, &clen) != SNAPPY_OK ||
        clen >= n - n / 8) {
        type = NSQ_SNAPPY_CHUNK_UNCOMPRESSED;
        memcpy(out + CHUNK_PREFIX_LEN, in, n);
        clen = n;
    }
    out[0] = type;
    put_le24(out + 1, clen + NSQ_SNAPPY_CRC_LEN);
    put_le32(out + NSQ_SNAPPY_CHUNK_HDR_LEN, nsq_snappy_masked_crc(in, n));
    v.iov_len = CHUNK_PREFIX_LEN + clen;
    return evbuffer_commit_space(dst, &v, 1) == 0 ? 0 : -ENOMEM;
}

int nsq_snappy_write(struct nsq_snappy_writer *w, struct evbuffer *src, struct evbuffer *dst)
{
    size_t len;

    while ((len = evbuffer_get_length(src)) > 0) {
        size_t n = len < NSQ_SNAPPY_MAX_BLOCK ? len : NSQ_SNAPPY_MAX_BLOCK;
        const uint8_t *in = evbuffer_pullup(src, (ev_ssize_t)n);
        if (!in)
            return -ENOMEM;
        if (!w->wrote_stream_id) {
            if (evbuffer_add(dst, nsq_snappy_stream_id, sizeof(nsq_snappy_stream_id)) != 0)
                return -ENOMEM;
            w->wrote_stream_id = true;
        }
        int rc = write_chunk(in, n, dst);
        if (rc < 0)
            return rc;
        evbuffer_drain(src, n);
    }
    return 0;
}

/* Decodes one compressed chunk body (CRC + snappy block) into dst. */
static int read_compressed(const uint8_t *body, size_t body_len, struct evbuffer *dst,
                           size_t *produced)
{
    const char *block = (const char *)body + NSQ_SNAPPY_CRC_LEN;
    size_t block_len = body_len - NSQ_SNAPPY_CRC_LEN;
    size_t ulen;

    if (snappy_uncompressed_length(block, block_len, &ulen) != SNAPPY_OK ||
        ulen > NSQ_SNAPPY_MAX_BLOCK)
        return -EBADMSG;
    if (ulen == 0) {
        /* An empty block still has to be well formed and carry the CRC of nothing. */
        if (snappy_validate_compressed_buffer(block, block_len) != SNAPPY_OK ||
            get_le32(body) != nsq_snappy_masked_crc("", 0))
            return -EBADMSG;
        return 0;
    }

    struct evbuffer_iovec v;
    if (evbuffer_reserve_space(dst, (ev_ssize_t)ulen, &v, 1) != 1 || v.iov_len < ulen)
        return -ENOMEM;
    size_t out_len = ulen;
    if (snappy_uncompress(block, block_len, v.iov_base, &out_len) != SNAPPY_OK || out_len != ulen)
        return -EBADMSG;
    if (get_le32(body) != nsq_snappy_masked_crc(v.iov_base, ulen))
        return -EBADMSG; /* reserved space is left uncommitted: nothing reaches dst */
    v.iov_len = ulen;
    if (evbuffer_commit_space(dst, &v, 1) != 0)
        return -ENOMEM;
    *produced += ulen;
    return 0;
}

/* Handles the chunk whose 4-byte header is hdr; returns 1 if it needs more input, 0 when the chunk
 * was consumed, or a negative error. */
static int read_chunk(struct nsq_snappy_reader *r, const uint8_t hdr[NSQ_SNAPPY_CHUNK_HDR_LEN],
                      struct evbuffer *src, struct evbuffer *dst, size_t *produced)
{
    uint8_t type = hdr[0];
    size_t clen = (size_t)hdr[1] | (size_t)hdr[2] << 8 | (size_t)hdr[3] << 16;
    size_t total = NSQ_SNAPPY_CHUNK_HDR_LEN + clen;
    size_t avail = evbuffer_get_length(src);

    if (!r->seen_stream_id && type != NSQ_SNAPPY_CHUNK_STREAM_ID)
        return -EBADMSG;

    if (type >= NSQ_SNAPPY_CHUNK_SKIPPABLE_MIN && type <= NSQ_SNAPPY_CHUNK_PADDING) {
        /* Skip without buffering: whatever of it has arrived goes now, the rest later. */
        size_t now = avail < total ? avail : total;
        evbuffer_drain(src, now);
        r->skip_remaining = total - now;
        return 0;
    }
    switch (type) {
    case NSQ_SNAPPY_CHUNK_STREAM_ID:
        if (clen != STREAM_ID_BODY_LEN)
            return -EBADMSG;
        break;
    case NSQ_SNAPPY_CHUNK_COMPRESSED:
        if (clen < NSQ_SNAPPY_CRC_LEN || clen > NSQ_SNAPPY_MAX_CHUNK_LEN)
            return -EBADMSG;
        break;
    case NSQ_SNAPPY_CHUNK_UNCOMPRESSED:
        if (clen < NSQ_SNAPPY_CRC_LEN || clen > NSQ_SNAPPY_CRC_LEN + NSQ_SNAPPY_MAX_BLOCK)
            return -EBADMSG;
        break;
    default:
        return -EBADMSG; /* reserved unskippable */
    }
    if (avail < total)
        return 1;

    const uint8_t *chunk = evbuffer_pullup(src, (ev_ssize_t)total);
    if (!chunk)
        return -ENOMEM;
    const uint8_t *body = chunk + NSQ_SNAPPY_CHUNK_HDR_LEN;
    int rc = 0;

    switch (type) {
    case NSQ_SNAPPY_CHUNK_STREAM_ID:
        if (memcmp(body, STREAM_ID_BODY, STREAM_ID_BODY_LEN) != 0)
            return -EBADMSG;
        r->seen_stream_id = true;
        evbuffer_drain(src, total);
        break;
    case NSQ_SNAPPY_CHUNK_COMPRESSED:
        rc = read_compressed(body, clen, dst, produced);
        if (rc == 0)
            evbuffer_drain(src, total);
        break;
    case NSQ_SNAPPY_CHUNK_UNCOMPRESSED: {
        size_t n = clen - NSQ_SNAPPY_CRC_LEN;
        if (get_le32(body) != nsq_snappy_masked_crc(body + NSQ_SNAPPY_CRC_LEN, n))
            return -EBADMSG;
        /* Move the payload chains rather than copying them. */
        evbuffer_drain(src, CHUNK_PREFIX_LEN);
        if (n > 0 && evbuffer_remove_buffer(src, dst, n) != (int)n)
            return -ENOMEM;
        *produced += n;
        break;
    }
    }
    return rc;
}

int nsq_snappy_read_max(struct nsq_snappy_reader *r, struct evbuffer *src, struct evbuffer *dst,
                        size_t max_out)
{
    size_t produced = 0;

    if (r->err)
        return r->err;
    for (;;) {
        if (r->skip_remaining > 0) {
            size_t avail = evbuffer_get_length(src);
            size_t now = avail < r->skip_remaining ? avail : r->skip_remaining;
            evbuffer_drain(src, now);
            r->skip_remaining -= now;
            if (r->skip_remaining > 0)
                return 0;
        }
        uint8_t hdr[NSQ_SNAPPY_CHUNK_HDR_LEN];
        if (evbuffer_copyout(src, hdr, sizeof(hdr)) != (ev_ssize_t)sizeof(hdr))
            return 0;
        if (produced >= max_out)
            return NSQ_SNAPPY_MORE;
        int rc = read_chunk(r, hdr, src, dst, &produced);
        if (rc == 1)
            return 0;
        if (rc < 0) {
            r->err = rc;
            return rc;
        }
    }
}

int nsq_snappy_read(struct nsq_snappy_reader *r, struct evbuffer *src, struct evbuffer *dst)
{
    return nsq_snappy_read_max(r, src, dst, SIZE_MAX);
}
