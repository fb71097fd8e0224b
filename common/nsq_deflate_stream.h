/*
 * nsq_deflate_stream: raw DEFLATE (RFC 1951, no zlib or gzip wrapper; zlib windowBits -15) as
 * incremental transforms between evbuffers.
 *
 * The writer ends every call with a sync flush (an empty stored block, 00 00 ff ff) so the peer
 * can decode everything written so far; compression state carries over between calls. The reader
 * is a continuous inflate over everything it is fed; it drains src as inflate consumes it, so no
 * input is kept back, and it caps how much it produces per call (decompression bombs) keeping the
 * rest of src for the next call.
 */
#ifndef NSQ_DEFLATE_STREAM_H
#define NSQ_DEFLATE_STREAM_H

#include <stddef.h>

struct evbuffer;

#define NSQ_DEFLATE_WINDOW_BITS (-15) /* raw deflate, 32 KiB window */
#define NSQ_DEFLATE_MEM_LEVEL   8     /* zlib's default: ~256 KiB of state per writer */
#define NSQ_DEFLATE_LEVEL_MIN   1
#define NSQ_DEFLATE_LEVEL_MAX   9
/* Default output cap of nsq_deflate_read per call. */
#define NSQ_DEFLATE_READ_MAX_DEFAULT (1024 * 1024)

/* Upper bound on how far a read may exceed its max_out (see nsq_deflate_read_max). */
#define NSQ_DEFLATE_READ_OVERSHOOT (16 * 1024)

/* Returned by the readers when they stopped at their output limit with input left in src. */
#define NSQ_DEFLATE_MORE 1

struct nsq_deflate_writer;
struct nsq_deflate_reader;

/* level 1..9; NULL if out of range or out of memory. *_free(NULL) is a no-op. */
struct nsq_deflate_writer *nsq_deflate_writer_new(int level);
void nsq_deflate_writer_free(struct nsq_deflate_writer *w);
struct nsq_deflate_reader *nsq_deflate_reader_new(void);
void nsq_deflate_reader_free(struct nsq_deflate_reader *r);

/* Compresses all of src into dst (src is drained) and ends with a sync flush. An empty src writes
 * nothing. Returns 0, -ENOMEM, or -EIO on a zlib failure (the writer is then unusable). */
int nsq_deflate_write(struct nsq_deflate_writer *w, struct evbuffer *src, struct evbuffer *dst);

/*
 * Inflates from src into dst until src is consumed or NSQ_DEFLATE_READ_MAX_DEFAULT bytes were
 * produced. Returns 0 (src fully consumed), NSQ_DEFLATE_MORE (output cap reached, input left in
 * src: call again once dst has been drained), -EBADMSG on corrupt data or data after the final
 * block, -ENOMEM. Errors are sticky.
 */
int nsq_deflate_read(struct nsq_deflate_reader *r, struct evbuffer *src, struct evbuffer *dst);

/* As nsq_deflate_read with an explicit cap. Once all of src is consumed it also empties what
 * inflate still holds (the symbols left in its 64-bit bit buffer: at most 32 matches of 258
 * bytes), so max_out may be exceeded by up to NSQ_DEFLATE_READ_OVERSHOOT bytes. */
int nsq_deflate_read_max(struct nsq_deflate_reader *r, struct evbuffer *src, struct evbuffer *dst,
                         size_t max_out);

#endif
