/*
 * libFuzzer target for the raw deflate reader and writer (common/nsq_deflate_stream.c).
 *
 * Input: byte 0 chooses piece sizes, the output cap and the mode; the rest is either raw deflate
 * data to inflate (byte 0 even) or plain data to round-trip (byte 0 odd, level from byte 0).
 *   - inflate: the data is fed all at once and again in small pieces with a small cap; both runs
 *     must agree on the status and the bytes produced, and no call may produce much more than its
 *     cap (decompression bombs).
 *   - round trip: the data is written in two sync-flushed segments, each ending in 00 00 ff ff,
 *     then inflated in pieces and must come back unchanged.
 * Any violation aborts.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "nsq_deflate_stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

#define FUZZ_CAP_UNIT  1024
#define FUZZ_MAX_TOTAL (16 * 1024 * 1024) /* stop inflating bombs past this */

static int inflate_all(const uint8_t *in, size_t len, size_t step, size_t cap, struct evbuffer *out)
{
    struct nsq_deflate_reader *r = nsq_deflate_reader_new();
    struct evbuffer *src = evbuffer_new();
    int rc = 0;

    CHECK(r && src);
    for (size_t off = 0; off < len && rc >= 0 && evbuffer_get_length(out) < FUZZ_MAX_TOTAL;) {
        size_t n = len - off < step ? len - off : step;
        evbuffer_add(src, in + off, n);
        off += n;
        do {
            size_t before = evbuffer_get_length(out);
            rc = nsq_deflate_read_max(r, src, out, cap);
            CHECK(evbuffer_get_length(out) - before <= cap + NSQ_DEFLATE_READ_OVERSHOOT);
        } while (rc == NSQ_DEFLATE_MORE && evbuffer_get_length(out) < FUZZ_MAX_TOTAL);
        CHECK(rc == 0 || rc == NSQ_DEFLATE_MORE || rc == -EBADMSG);
        if (rc == 0)
            CHECK(evbuffer_get_length(src) == 0);
    }
    nsq_deflate_reader_free(r);
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
    size_t step = (size_t)(ctl >> 1) % 32 + 1;
    size_t cap = (size_t)(ctl >> 3) * FUZZ_CAP_UNIT + 1;

    if ((ctl & 1) == 0) {
        struct evbuffer *a = evbuffer_new(), *b = evbuffer_new();
        int ra = inflate_all(body, len, len ? len : 1, 1 << 20, a);
        int rb = inflate_all(body, len, step, cap, b);
        size_t la = evbuffer_get_length(a), lb = evbuffer_get_length(b);
        if (la < FUZZ_MAX_TOTAL && lb < FUZZ_MAX_TOTAL) {
            CHECK(ra == rb);
            CHECK(la == lb);
            if (la)
                CHECK(memcmp(evbuffer_pullup(a, -1), evbuffer_pullup(b, -1), la) == 0);
        }
        evbuffer_free(a);
        evbuffer_free(b);
        return 0;
    }

    int level = (ctl >> 1) % 9 + 1;
    struct nsq_deflate_writer *w = nsq_deflate_writer_new(level);
    struct evbuffer *src = evbuffer_new(), *enc = evbuffer_new(), *out = evbuffer_new();
    CHECK(w && src && enc && out);
    size_t halves[2] = {len / 2, len - len / 2};
    const uint8_t *p = body;
    for (int i = 0; i < 2; i++) {
        evbuffer_add(src, p, halves[i]);
        p += halves[i];
        size_t before = evbuffer_get_length(enc);
        CHECK(nsq_deflate_write(w, src, enc) == 0);
        CHECK(evbuffer_get_length(src) == 0);
        size_t after = evbuffer_get_length(enc);
        if (halves[i] == 0) {
            CHECK(after == before);
        } else {
            uint8_t tail[4];
            struct evbuffer_ptr at;
            CHECK(evbuffer_ptr_set(enc, &at, after - 4, EVBUFFER_PTR_SET) == 0);
            CHECK(evbuffer_copyout_from(enc, &at, tail, 4) == 4);
            CHECK(memcmp(tail, "\x00\x00\xff\xff", 4) == 0);
        }
    }
    size_t elen = evbuffer_get_length(enc);
    const uint8_t *e = elen ? evbuffer_pullup(enc, -1) : (const uint8_t *)"";
    CHECK(inflate_all(e, elen, step, cap, out) == 0);
    CHECK(evbuffer_get_length(out) == len);
    if (len)
        CHECK(memcmp(evbuffer_pullup(out, -1), body, len) == 0);
    nsq_deflate_writer_free(w);
    evbuffer_free(src);
    evbuffer_free(enc);
    evbuffer_free(out);
    return 0;
}
