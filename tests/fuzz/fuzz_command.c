/*
 * libFuzzer target for the V2 command parser (common/nsq_command.c) and the MPUB payload
 * iterator, with the Go-compatible quoting of the parsed names on the side (they are echoed in
 * error replies).
 *
 * Input: byte 0 seeds the chunk sizes, the rest is a client byte stream. The stream is parsed
 * twice, once all at once and once in small chunks, by a miniature nsqd read loop; both runs must
 * produce the same sequence of events (a hash of it), and every event must respect the parser's
 * invariants. Any violation aborts.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "nsq_command.h"
#include "nsq_goquote.h"
#include "nsq_json.h"

#define FUZZ_MAX_BODY (64 * 1024)
#define FUZZ_MAX_MSG  (16 * 1024)
#define FNV_OFFSET    14695981039346656037ULL
#define FNV_PRIME     1099511628211ULL

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

static uint64_t mix(uint64_t h, const void *p, size_t len)
{
    const uint8_t *b = p;

    for (size_t i = 0; i < len; i++)
        h = (h ^ b[i]) * FNV_PRIME;
    return h;
}

static bool slice_is(struct nsq_slice s, const char *want)
{
    return s.len == strlen(want) && memcmp(s.ptr, want, s.len) == 0;
}

static bool wants_body(struct nsq_slice name)
{
    return slice_is(name, "PUB") || slice_is(name, "MPUB") || slice_is(name, "DPUB") ||
           slice_is(name, "IDENTIFY") || slice_is(name, "AUTH");
}

static void check_line(const struct nsq_command *c)
{
    const char *end = c->line.ptr + c->line.len;
    size_t spaces = 0;

    CHECK(c->line.len < NSQ_MAX_LINE);
    CHECK(c->name.ptr == c->line.ptr && c->name.len <= c->line.len);
    CHECK(memchr(c->name.ptr, ' ', c->name.len) == NULL);
    for (size_t i = 0; i < c->line.len; i++)
        spaces += c->line.ptr[i] == ' ';
    CHECK(c->nparams == spaces);
    for (size_t i = 0; i < c->nparams && i < NSQ_MAX_PARAMS; i++) {
        CHECK(c->params[i].ptr >= c->line.ptr && c->params[i].ptr + c->params[i].len <= end);
        CHECK(c->params[i].ptr[-1] == ' ');
        CHECK(memchr(c->params[i].ptr, ' ', c->params[i].len) == NULL);
    }
}

static void check_mpub(const uint8_t *body, size_t len)
{
    struct nsq_mpub_iter it;
    const uint8_t *m;
    size_t mlen, total = 4;
    int r = nsq_mpub_validate(&it, body, len, FUZZ_MAX_BODY, FUZZ_MAX_MSG);

    if (r != 0) {
        CHECK(r >= NSQ_MPUB_ERR_SHORT && r <= NSQ_MPUB_ERR_COUNT_READ);
        return;
    }
    CHECK(nsq_mpub_begin(&it, body, len, FUZZ_MAX_BODY, FUZZ_MAX_MSG) == 0);
    while ((r = nsq_mpub_next(&it, &m, &mlen)) == 1) {
        CHECK(mlen > 0 && mlen <= FUZZ_MAX_MSG && m >= body && m + mlen <= body + len);
        total += 4 + mlen;
    }
    CHECK(r == 0);
    CHECK(total + it.left == len);
}

/* Runs the read loop over data fed in chunks; returns the hash of the events. */
static uint64_t run(const uint8_t *data, size_t size, uint8_t seed, bool chunked)
{
    struct nsq_parser *p = nsq_parser_new();
    struct evbuffer *in = evbuffer_new();
    struct evbuffer *scratch = evbuffer_new();
    uint64_t h = FNV_OFFSET;
    unsigned s = seed;
    size_t off = 0;
    bool dead = false;

    CHECK(p != NULL && in != NULL && scratch != NULL);
    while (off < size && !dead) {
        size_t n = size - off;
        if (chunked) {
            s = s * 1103515245u + 12345u;
            n = 1 + (s >> 16) % 64;
            if (n > size - off)
                n = size - off;
        }
        evbuffer_add(in, data + off, n);
        off += n;
        for (;;) {
            struct nsq_command c;
            int32_t bsize = 0;
            enum nsq_parse_status st = nsq_parser_next(p, in, &c, &bsize);
            uint8_t tag = (uint8_t)st;

            if (st == NSQ_PARSE_NEED_MORE)
                break;
            h = mix(h, &tag, 1);
            if (st == NSQ_PARSE_LINE) {
                check_line(&c);
                CHECK(c.body == NULL);
                h = mix(h, c.line.ptr, c.line.len);
                if (!chunked) {
                    nsq_goquote(scratch, c.name.ptr, c.name.len);
                    nsq_json_escape(scratch, c.line.ptr, c.line.len);
                    evbuffer_drain(scratch, evbuffer_get_length(scratch));
                }
                if (wants_body(c.name))
                    nsq_parser_want_size(p);
            } else if (st == NSQ_PARSE_BODY_SIZE) {
                h = mix(h, &bsize, sizeof(bsize));
                if (bsize <= 0 || bsize > FUZZ_MAX_BODY) {
                    dead = true;
                    break;
                }
                nsq_parser_want_body(p, (size_t)bsize);
            } else if (st == NSQ_PARSE_BODY) {
                CHECK(c.body != NULL);
                h = mix(h, c.body, c.body_len);
                check_line(&c);
                if (slice_is(c.name, "MPUB"))
                    check_mpub(c.body, c.body_len);
            } else {
                CHECK(st == NSQ_PARSE_LINE_TOO_LONG);
                CHECK(evbuffer_get_length(in) >= NSQ_MAX_LINE);
                dead = true;
                break;
            }
        }
    }
    if (!dead) {
        /* what is left must be an incomplete element */
        uint8_t tag = 0xff;
        h = mix(h, &tag, 1);
        size_t left = evbuffer_get_length(in);
        h = mix(h, &left, sizeof(left));
    }
    nsq_parser_free(p);
    evbuffer_free(in);
    evbuffer_free(scratch);
    return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint64_t whole = run(data + 1, size - 1, data[0], false);
    uint64_t parts = run(data + 1, size - 1, data[0], true);
    CHECK(whole == parts);
    return 0;
}
