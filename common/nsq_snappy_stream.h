/*
 * nsq_snappy_stream: the snappy framing format (stream identifier, compressed and uncompressed
 * chunks with masked CRC-32C) as incremental transforms between evbuffers.
 *
 * Wire format (one chunk): [type:1][length:3 little-endian][body:length]. Types:
 *   0xff  stream identifier, body "sNaPpY" (must come first; may repeat)
 *   0x00  compressed: [masked crc32c of the uncompressed data:4 LE][snappy block]
 *   0x01  uncompressed: [masked crc32c:4 LE][data]
 *   0x02..0x7f reserved unskippable (an error), 0x80..0xfe skippable (ignored).
 * Every chunk holds at most NSQ_SNAPPY_MAX_BLOCK uncompressed bytes.
 *
 * Invariants: the writer never holds data between calls (what it is given is framed at once). The
 * reader consumes only whole chunks, so a partial chunk stays at the head of src until the rest
 * arrives; it never needs more than one chunk (at most NSQ_SNAPPY_MAX_CHUNK_LEN bytes plus the
 * header) of src at a time and keeps no buffer of its own. After an error the reader stays failed.
 */
#ifndef NSQ_SNAPPY_STREAM_H
#define NSQ_SNAPPY_STREAM_H

#include <stddef.h>
#include <stdint.h>

struct evbuffer;

#define NSQ_SNAPPY_MAX_BLOCK     65536 /* uncompressed bytes per chunk */
#define NSQ_SNAPPY_CHUNK_HDR_LEN 4     /* type + 3-byte length */
#define NSQ_SNAPPY_CRC_LEN       4
/* Largest chunk body accepted: CRC + the worst-case snappy encoding of a full block
 * (snappy_max_compressed_length(n) = 32 + n + n / 6). */
#define NSQ_SNAPPY_MAX_CHUNK_LEN                                                                   \
    (NSQ_SNAPPY_CRC_LEN + 32 + NSQ_SNAPPY_MAX_BLOCK + NSQ_SNAPPY_MAX_BLOCK / 6)

enum {
    NSQ_SNAPPY_CHUNK_COMPRESSED = 0x00,
    NSQ_SNAPPY_CHUNK_UNCOMPRESSED = 0x01,
    NSQ_SNAPPY_CHUNK_SKIPPABLE_MIN = 0x80,
    NSQ_SNAPPY_CHUNK_PADDING = 0xfe,
    NSQ_SNAPPY_CHUNK_STREAM_ID = 0xff,
};

/* The 10-byte stream identifier chunk: ff 06 00 00 "sNaPpY". */
extern const uint8_t nsq_snappy_stream_id[10];

/* Returned by nsq_snappy_read_max when it stopped at its output limit with input left. */
#define NSQ_SNAPPY_MORE 1

/* Masked CRC-32C as the framing format stores it. */
uint32_t nsq_snappy_masked_crc(const void *data, size_t len);

struct nsq_snappy_writer;
struct nsq_snappy_reader;

/* Constructors return NULL on allocation failure; *_free releases (NULL is a no-op). */
struct nsq_snappy_writer *nsq_snappy_writer_new(void);
void nsq_snappy_writer_free(struct nsq_snappy_writer *w);
struct nsq_snappy_reader *nsq_snappy_reader_new(void);
void nsq_snappy_reader_free(struct nsq_snappy_reader *r);

/*
 * Frames all of src into dst (src is drained): the stream identifier before the first chunk, then
 * one chunk per NSQ_SNAPPY_MAX_BLOCK bytes, compressed unless compression saves less than 1/8.
 * An empty src writes nothing. Returns 0 or -ENOMEM (then src keeps what was not framed).
 */
int nsq_snappy_write(struct nsq_snappy_writer *w, struct evbuffer *src, struct evbuffer *dst);

/*
 * Decodes every complete chunk at the head of src into dst, draining what it decoded; an incomplete
 * chunk stays in src. Returns 0, or -EBADMSG on malformed input (missing stream identifier, bad
 * CRC, reserved chunk type, oversize or undersize chunk, invalid snappy block), -ENOMEM.
 * Output per call is bounded by the input: a snappy block expands at most about 21 times.
 */
int nsq_snappy_read(struct nsq_snappy_reader *r, struct evbuffer *src, struct evbuffer *dst);

/* As nsq_snappy_read but stops starting new chunks once max_out bytes were added to dst (it may
 * exceed max_out by less than one block); returns NSQ_SNAPPY_MORE if it stopped with input left. */
int nsq_snappy_read_max(struct nsq_snappy_reader *r, struct evbuffer *src, struct evbuffer *dst,
                        size_t max_out);

#endif
