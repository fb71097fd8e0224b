/*
 * libFuzzer target for the snappy framing reader and writer (common/nsq_snappy_stream.c).
 *
 * Input: byte 0 chooses chunk sizes and the output cap, the rest is either a framed stream to
 * decode (byte 0 even) or plain data to round-trip (byte 0 odd).
 *   - decode: the stream is fed all at once and again in small pieces with a small output cap;
 *     both runs must agree on the result (error or not) and on the bytes produced before it.
 *   - round trip: the data is framed, then decoded in pieces, and must come back unchanged.
 * Any violation aborts.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "nsq_snappy_stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

#define FUZZ_CAP_UNIT 4096

/* Decodes stream in pieces of `step` bytes with output cap `cap`; returns the final status and
 * leaves the output in out. */
static int decode(const uint8_t *stream, size_t len, size_t step, size_t cap, struct evbuffer *out)
{
    struct nsq_snappy_reader *r = nsq_snappy_reader_new();
    struct evbuffer *src = evbuffer_new();
    int rc = 0;

    CHECK(r && src);
    for (size_t off = 0; off < len && rc >= 0;) {
        size_t n = len - off < step ? len - off : step;
        evbuffer_add(src, stream + off, n);
        off += n;
        do {
            size_t before = evbuffer_get_length(out);
            rc = nsq_snappy_read_max(r, src, out, cap);
            /* The cap is exceeded by less than one block. */
            CHECK(evbuffer_get_length(out) - before < cap + NSQ_SNAPPY_MAX_BLOCK + 1);
        } while (rc == NSQ_SNAPPY_MORE);
        CHECK(rc == 0 || rc == -EBADMSG);
        /* The reader never holds more than one chunk of input back. */
        if (rc == 0)
            CHECK(evbuffer_get_length(src) < NSQ_SNAPPY_CHUNK_HDR_LEN + NSQ_SNAPPY_MAX_CHUNK_LEN);
    }
    if (rc >= 0) {
        /* Errors are sticky, and a clean reader stays clean on no input. */
        CHECK(nsq_snappy_read(r, src, out) == 0);
    } else {
        CHECK(nsq_snappy_read(r, src, out) == rc);
    }
    nsq_snappy_reader_free(r);
    evbuffer_free(src);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t ctl = data[0];
    const uint8_t *body = data + 1;
    size_t len = size - 1;
    size_t step = (size_t)(ctl >> 1) % 64 + 1;
    size_t cap = (size_t)(ctl >> 4) * FUZZ_CAP_UNIT + 1;

    if ((ctl & 1) == 0) {
        struct evbuffer *a = evbuffer_new(), *b = evbuffer_new();
        int ra = decode(body, len, len ? len : 1, SIZE_MAX, a);
        int rb = decode(body, len, step, cap, b);
        CHECK(ra == rb);
        CHECK(evbuffer_get_length(a) == evbuffer_get_length(b));
        if (evbuffer_get_length(a))
            CHECK(memcmp(evbuffer_pullup(a, -1), evbuffer_pullup(b, -1), evbuffer_get_length(a)) ==
                  0);
        evbuffer_free(a);
        evbuffer_free(b);
        return 0;
    }

    struct nsq_snappy_writer *w = nsq_snappy_writer_new();
    struct evbuffer *src = evbuffer_new(), *framed = evbuffer_new(), *out = evbuffer_new();
    CHECK(w && src && framed && out);
    /* Written in two calls: the stream identifier must still appear only once. */
    evbuffer_add(src, body, len / 2);
    CHECK(nsq_snappy_write(w, src, framed) == 0);
    evbuffer_add(src, body + len / 2, len - len / 2);
    CHECK(nsq_snappy_write(w, src, framed) == 0);
    CHECK(evbuffer_get_length(src) == 0);
    size_t flen = evbuffer_get_length(framed);
    const uint8_t *f = flen ? evbuffer_pullup(framed, -1) : (const uint8_t *)"";
    CHECK(decode(f, flen, step, cap, out) == 0);
    CHECK(evbuffer_get_length(out) == len);
    if (len)
        CHECK(memcmp(evbuffer_pullup(out, -1), body, len) == 0);
    nsq_snappy_writer_free(w);
    evbuffer_free(src);
    evbuffer_free(framed);
    evbuffer_free(out);
    return 0;
}
