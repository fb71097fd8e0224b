/* Unit tests for common/nsq_command.c: the incremental command parser fed whole, byte by byte,
   in random chunks and maliciously; the MPUB payload iterator's error table. */
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "nsq_command.h"
#include "nsq_frame.h"

#define TEST_MAX_BODY  (5 * 1024 * 1024)
#define TEST_MAX_MSG   (1024 * 1024)
#define TRANSCRIPT_CAP (64 * 1024)

static bool slice_is(struct nsq_slice s, const char *want)
{
    return s.len == strlen(want) && memcmp(s.ptr, want, s.len) == 0;
}

static bool has_body(struct nsq_slice name)
{
    return slice_is(name, "PUB") || slice_is(name, "MPUB") || slice_is(name, "DPUB") ||
           slice_is(name, "IDENTIFY") || slice_is(name, "AUTH");
}

/* A miniature nsqd read loop: records every event as text. Stops at the first fatal condition. */
struct driver {
    struct nsq_parser *p;
    struct evbuffer *in;
    char out[TRANSCRIPT_CAP];
    size_t n;
    bool dead;
};

static void note_bytes(struct driver *d, const void *data, size_t len)
{
    ck_assert_int_lt(d->n + len, TRANSCRIPT_CAP);
    memcpy(d->out + d->n, data, len);
    d->n += len;
    d->out[d->n] = '\0';
}

static void note(struct driver *d, const char *s)
{
    note_bytes(d, s, strlen(s));
}

static void note_num(struct driver *d, long v)
{
    char tmp[32];
    int k = snprintf(tmp, sizeof(tmp), "%ld", v);

    note_bytes(d, tmp, (size_t)k);
}

static void drive(struct driver *d)
{
    struct nsq_command cmd;
    int32_t size;

    while (!d->dead) {
        enum nsq_parse_status st = nsq_parser_next(d->p, d->in, &cmd, &size);
        switch (st) {
        case NSQ_PARSE_NEED_MORE:
            return;
        case NSQ_PARSE_LINE:
            note(d, "L:");
            note_bytes(d, cmd.name.ptr, cmd.name.len);
            for (size_t i = 0; i < cmd.nparams && i < NSQ_MAX_PARAMS; i++) {
                note(d, ",");
                note_bytes(d, cmd.params[i].ptr, cmd.params[i].len);
            }
            note(d, "(");
            note_num(d, (long)cmd.nparams);
            note(d, ")|");
            if (has_body(cmd.name))
                nsq_parser_want_size(d->p);
            break;
        case NSQ_PARSE_BODY_SIZE:
            note(d, "S:");
            note_num(d, size);
            note(d, "|");
            if (size <= 0 || size > TEST_MAX_MSG) {
                d->dead = true;
                return;
            }
            nsq_parser_want_body(d->p, (size_t)size);
            break;
        case NSQ_PARSE_BODY:
            /* the command line is still available with its body */
            note(d, "B:");
            note_bytes(d, cmd.name.ptr, cmd.name.len);
            note(d, "=");
            note_bytes(d, cmd.body, cmd.body_len);
            note(d, "|");
            break;
        case NSQ_PARSE_LINE_TOO_LONG:
            note(d, "TOO_LONG|");
            d->dead = true;
            return;
        case NSQ_PARSE_NOMEM:
            ck_abort_msg("nomem");
        }
    }
}

static void driver_init(struct driver *d)
{
    memset(d, 0, sizeof(*d));
    d->p = nsq_parser_new();
    d->in = evbuffer_new();
    ck_assert_ptr_nonnull(d->p);
}

static void driver_done(struct driver *d)
{
    nsq_parser_free(d->p);
    evbuffer_free(d->in);
}

/* Feeds data in chunks of the given size (0 = random sizes), driving after each. */
static void feed(struct driver *d, const void *data, size_t len, size_t chunk, unsigned *seed)
{
    const uint8_t *b = data;
    size_t off = 0;

    while (off < len) {
        size_t n = chunk;
        if (n == 0) {
            *seed = *seed * 1103515245u + 12345u;
            n = 1 + (*seed >> 16) % 37;
        }
        if (n > len - off)
            n = len - off;
        evbuffer_add(d->in, b + off, n);
        off += n;
        drive(d);
    }
}

static size_t build_stream(uint8_t *buf)
{
    size_t n = 0;
#define ADD(s, l) (memcpy(buf + n, (s), (l)), n += (l))
    ADD("IDENTIFY\n", 9);
    ADD("\x00\x00\x00\x02{}", 6);
    ADD("SUB test ch\r\n", 13);
    ADD("RDY 10\n", 7);
    ADD("NOP\n", 4);
    ADD("PUB test\n\x00\x00\x00\x05hello", 18);
    ADD("MPUB t\n\x00\x00\x00\x0e\x00\x00\x00\x02\x00\x00\x00\x01x\x00\x00\x00\x01y", 25);
    ADD("FIN 0123456789abcdef\n", 21);
    ADD("\n", 1);
    ADD("CLS\n", 4);
#undef ADD
    return n;
}

static const char stream_transcript[] =
        "L:IDENTIFY(0)|S:2|B:IDENTIFY={}|L:SUB,test,ch(2)|L:RDY,10(1)|L:NOP(0)|L:PUB,test(1)|"
        "S:5|B:PUB=hello|L:MPUB,t(1)|S:14|"
        "B:MPUB=\x00\x00\x00\x02\x00\x00\x00\x01x\x00\x00\x00\x01y|"
        "L:FIN,0123456789abcdef(1)|L:(0)|L:CLS(0)|";

static void check_transcript(const struct driver *d)
{
    size_t want_len = sizeof(stream_transcript) - 1; /* holds NUL bytes */
    ck_assert_uint_eq(d->n, want_len);
    ck_assert_mem_eq(d->out, stream_transcript, want_len);
}

START_TEST(test_stream_all_at_once)
{
    struct driver d;
    uint8_t buf[256];
    size_t n = build_stream(buf);
    unsigned seed = 1;

    driver_init(&d);
    feed(&d, buf, n, n, &seed);
    check_transcript(&d);
    ck_assert_uint_eq(evbuffer_get_length(d.in), 0);
    driver_done(&d);
}
END_TEST

START_TEST(test_stream_byte_by_byte)
{
    struct driver d;
    uint8_t buf[256];
    size_t n = build_stream(buf);
    unsigned seed = 1;

    driver_init(&d);
    feed(&d, buf, n, 1, &seed);
    check_transcript(&d);
    driver_done(&d);
}
END_TEST

START_TEST(test_stream_random_chunks)
{
    uint8_t buf[256];
    size_t n = build_stream(buf);

    for (unsigned seed = 1; seed < 200; seed++) {
        struct driver d;
        unsigned s = seed;
        driver_init(&d);
        feed(&d, buf, n, 0, &s);
        check_transcript(&d);
        driver_done(&d);
    }
}
END_TEST

START_TEST(test_split_rules)
{
    struct nsq_command c;

    nsq_command_split("SUB  a", 6, &c);
    ck_assert(slice_is(c.name, "SUB"));
    ck_assert_uint_eq(c.nparams, 2);
    ck_assert(slice_is(c.params[0], ""));
    ck_assert(slice_is(c.params[1], "a"));

    nsq_command_split("FIN ", 4, &c);
    ck_assert(slice_is(c.name, "FIN"));
    ck_assert_uint_eq(c.nparams, 1);
    ck_assert(slice_is(c.params[0], ""));

    nsq_command_split(" ", 1, &c);
    ck_assert(slice_is(c.name, ""));
    ck_assert_uint_eq(c.nparams, 1);

    nsq_command_split("", 0, &c);
    ck_assert(slice_is(c.name, ""));
    ck_assert_uint_eq(c.nparams, 0);

    /* tabs are not separators; names are case-sensitive bytes */
    nsq_command_split("nop\tx", 5, &c);
    ck_assert(slice_is(c.name, "nop\tx"));
    ck_assert_uint_eq(c.nparams, 0);
    ck_assert(slice_is(c.line, "nop\tx"));
}
END_TEST

START_TEST(test_many_params)
{
    struct driver d;
    char line[512];
    size_t n = 0;
    struct nsq_command c;
    int32_t size;

    driver_init(&d);
    n += (size_t)sprintf(line, "X");
    for (int i = 0; i < 100; i++)
        n += (size_t)sprintf(line + n, " p%d", i);
    line[n++] = '\n';
    evbuffer_add(d.in, line, n);
    ck_assert_int_eq(nsq_parser_next(d.p, d.in, &c, &size), NSQ_PARSE_LINE);
    ck_assert_uint_eq(c.nparams, 100);
    ck_assert(slice_is(c.params[0], "p0"));
    ck_assert(slice_is(c.params[NSQ_MAX_PARAMS - 1], "p7"));
    driver_done(&d);
}
END_TEST

START_TEST(test_cr_handling)
{
    struct nsq_parser *p = nsq_parser_new();
    struct evbuffer *in = evbuffer_new();
    struct nsq_command c;
    int32_t size;

    evbuffer_add(in, "NOP\r\r\n\r\nA\rB\n", 12);
    ck_assert_int_eq(nsq_parser_next(p, in, &c, &size), NSQ_PARSE_LINE);
    ck_assert(slice_is(c.name, "NOP\r")); /* only one CR is stripped */
    ck_assert_int_eq(nsq_parser_next(p, in, &c, &size), NSQ_PARSE_LINE);
    ck_assert(slice_is(c.name, ""));
    ck_assert_int_eq(nsq_parser_next(p, in, &c, &size), NSQ_PARSE_LINE);
    ck_assert(slice_is(c.name, "A\rB"));
    ck_assert_int_eq(nsq_parser_next(p, in, &c, &size), NSQ_PARSE_NEED_MORE);
    nsq_parser_free(p);
    evbuffer_free(in);
}
END_TEST

START_TEST(test_line_limits)
{
    struct nsq_parser *p = nsq_parser_new();
    struct evbuffer *in = evbuffer_new();
    char *big = malloc(NSQ_MAX_LINE + 10);
    struct nsq_command c;
    int32_t size;

    /* longest accepted: 16383 bytes + LF */
    memset(big, 'A', NSQ_MAX_LINE + 10);
    big[NSQ_MAX_LINE - 1] = '\n';
    evbuffer_add(in, big, NSQ_MAX_LINE);
    evbuffer_add(in, "NOP\n", 4);
    ck_assert_int_eq(nsq_parser_next(p, in, &c, &size), NSQ_PARSE_LINE);
    ck_assert_uint_eq(c.name.len, NSQ_MAX_LINE - 1);
    ck_assert_int_eq(nsq_parser_next(p, in, &c, &size), NSQ_PARSE_LINE);
    ck_assert(slice_is(c.name, "NOP"));
    nsq_parser_free(p);

    /* 16384 bytes then LF: too long, detected before the LF arrives */
    p = nsq_parser_new();
    memset(big, 'A', NSQ_MAX_LINE + 10);
    for (size_t i = 0; i < NSQ_MAX_LINE - 1; i++) {
        evbuffer_add(in, big, 1);
        ck_assert_int_eq(nsq_parser_next(p, in, &c, &size), NSQ_PARSE_NEED_MORE);
    }
    evbuffer_add(in, big, 1);
    ck_assert_int_eq(nsq_parser_next(p, in, &c, &size), NSQ_PARSE_LINE_TOO_LONG);
    evbuffer_add(in, "\nNOP\n", 5);
    /* sticky */
    ck_assert_int_eq(nsq_parser_next(p, in, &c, &size), NSQ_PARSE_LINE_TOO_LONG);
    nsq_parser_want_size(p);
    ck_assert_int_eq(nsq_parser_next(p, in, &c, &size), NSQ_PARSE_LINE_TOO_LONG);
    nsq_parser_free(p);
    evbuffer_drain(in, evbuffer_get_length(in));

    /* a huge buffer without LF: too long at once, nothing consumed */
    p = nsq_parser_new();
    evbuffer_add(in, big, NSQ_MAX_LINE + 10);
    ck_assert_int_eq(nsq_parser_next(p, in, &c, &size), NSQ_PARSE_LINE_TOO_LONG);
    ck_assert_uint_eq(evbuffer_get_length(in), NSQ_MAX_LINE + 10);
    nsq_parser_free(p);
    evbuffer_drain(in, evbuffer_get_length(in));

    /* an LF right after 16384 bytes in one go is still too long */
    p = nsq_parser_new();
    big[NSQ_MAX_LINE] = '\n';
    evbuffer_add(in, big, NSQ_MAX_LINE + 1);
    ck_assert_int_eq(nsq_parser_next(p, in, &c, &size), NSQ_PARSE_LINE_TOO_LONG);
    nsq_parser_free(p);
    evbuffer_free(in);
    free(big);
}
END_TEST

START_TEST(test_sizes_and_bodies)
{
    struct nsq_parser *p = nsq_parser_new();
    struct evbuffer *in = evbuffer_new();
    struct nsq_command c;
    int32_t size = 0;
    const struct {
        const char *bytes;
        int32_t want;
    } sizes[] = {
            {"\xff\xff\xff\xff", -1},
            {"\x80\x00\x00\x00", INT32_MIN},
            {"\x7f\xff\xff\xff", INT32_MAX},
            {"\x00\x00\x00\x00", 0},
    };

    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        evbuffer_add(in, "PUB t\n", 6);
        ck_assert_int_eq(nsq_parser_next(p, in, &c, &size), NSQ_PARSE_LINE);
        nsq_parser_want_size(p);
        ck_assert_uint_eq(nsq_parser_pending(p, in), 4);
        evbuffer_add(in, sizes[i].bytes, 3);
        ck_assert_int_eq(nsq_parser_next(p, in, &c, &size), NSQ_PARSE_NEED_MORE);
        ck_assert_uint_eq(nsq_parser_pending(p, in), 1);
        evbuffer_add(in, sizes[i].bytes + 3, 1);
        ck_assert_int_eq(nsq_parser_next(p, in, &c, &size), NSQ_PARSE_BODY_SIZE);
        ck_assert_int_eq(size, sizes[i].want);
        ck_assert(slice_is(c.name, "PUB"));
        /* the caller rejects the size: back in line state */
    }

    /* truncated body: waits, reports what is missing, consumes nothing beyond the body */
    evbuffer_add(in,
                 "PUB t\n\x00\x00\x00\x0a"
                 "01234",
                 15);
    ck_assert_int_eq(nsq_parser_next(p, in, &c, &size), NSQ_PARSE_LINE);
    nsq_parser_want_size(p);
    ck_assert_int_eq(nsq_parser_next(p, in, &c, &size), NSQ_PARSE_BODY_SIZE);
    nsq_parser_want_body(p, (size_t)size);
    ck_assert_int_eq(nsq_parser_next(p, in, &c, &size), NSQ_PARSE_NEED_MORE);
    ck_assert_uint_eq(nsq_parser_pending(p, in), 5);
    ck_assert_ptr_null(c.body);
    evbuffer_add(in, "56789NOP\n", 9);
    ck_assert_int_eq(nsq_parser_next(p, in, &c, &size), NSQ_PARSE_BODY);
    ck_assert_uint_eq(c.body_len, 10);
    ck_assert_mem_eq(c.body, "0123456789", 10);
    ck_assert(slice_is(c.params[0], "t"));
    ck_assert_uint_eq(evbuffer_get_length(in), 4);
    ck_assert_uint_eq(nsq_parser_pending(p, in), 0);
    ck_assert_int_eq(nsq_parser_next(p, in, &c, &size), NSQ_PARSE_LINE);
    ck_assert(slice_is(c.name, "NOP"));
    ck_assert_ptr_null(c.body);
    nsq_parser_free(p);
    evbuffer_free(in);
}
END_TEST

/* A large body followed by small ones: the buffer is reused or released, contents stay right. */
START_TEST(test_body_buffer_reuse)
{
    struct nsq_parser *p = nsq_parser_new();
    struct evbuffer *in = evbuffer_new();
    struct nsq_command c;
    int32_t size;
    size_t lens[] = {3, NSQ_PARSER_BODY_KEEP * 4, 7, 100, NSQ_PARSER_BODY_KEEP, 1};
    uint8_t *data = malloc(NSQ_PARSER_BODY_KEEP * 4);

    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        memset(data, 'a' + (int)i, lens[i]);
        evbuffer_add(in, "AUTH\n", 5);
        ck_assert_int_eq(nsq_parser_next(p, in, &c, &size), NSQ_PARSE_LINE);
        nsq_parser_want_size(p);
        uint8_t sz[4];
        nsq_put_be32(sz, (uint32_t)lens[i]);
        evbuffer_add(in, sz, 4);
        evbuffer_add(in, data, lens[i]);
        ck_assert_int_eq(nsq_parser_next(p, in, &c, &size), NSQ_PARSE_BODY_SIZE);
        nsq_parser_want_body(p, (size_t)size);
        ck_assert_int_eq(nsq_parser_next(p, in, &c, &size), NSQ_PARSE_BODY);
        ck_assert_uint_eq(c.body_len, lens[i]);
        ck_assert_mem_eq(c.body, data, lens[i]);
    }
    ck_assert_uint_eq(evbuffer_get_length(in), 0);
    free(data);
    nsq_parser_free(p);
    evbuffer_free(in);
}
END_TEST

START_TEST(test_empty_and_missing_newline)
{
    struct nsq_parser *p = nsq_parser_new();
    struct evbuffer *in = evbuffer_new();
    struct nsq_command c;
    int32_t size;

    ck_assert_int_eq(nsq_parser_next(p, in, &c, &size), NSQ_PARSE_NEED_MORE);
    evbuffer_add(in, "NOP", 3);
    ck_assert_int_eq(nsq_parser_next(p, in, &c, &size), NSQ_PARSE_NEED_MORE);
    ck_assert_int_eq(nsq_parser_next(p, in, &c, &size), NSQ_PARSE_NEED_MORE);
    ck_assert_uint_eq(evbuffer_get_length(in), 3);
    ck_assert_uint_eq(nsq_parser_pending(p, in), 0);
    /* the caller throws input away (e.g. a stream upgrade): the parser rescans */
    evbuffer_drain(in, 3);
    evbuffer_add(in, "\n", 1);
    ck_assert_int_eq(nsq_parser_next(p, in, &c, &size), NSQ_PARSE_LINE);
    ck_assert_uint_eq(c.name.len, 0);
    ck_assert_uint_eq(c.nparams, 0);
    nsq_parser_free(p);
    nsq_parser_free(NULL);
    evbuffer_free(in);
}
END_TEST

/* ---- MPUB ---- */

struct mpub_builder {
    uint8_t buf[1024];
    size_t n;
};

static void put32(struct mpub_builder *b, int32_t v)
{
    nsq_put_be32(b->buf + b->n, (uint32_t)v);
    b->n += 4;
}

static void putmsg(struct mpub_builder *b, const char *s)
{
    put32(b, (int32_t)strlen(s));
    memcpy(b->buf + b->n, s, strlen(s));
    b->n += strlen(s);
}

START_TEST(test_mpub_iterate)
{
    struct mpub_builder b = {.n = 0};
    struct nsq_mpub_iter it;
    const uint8_t *m;
    size_t len;

    put32(&b, 3);
    putmsg(&b, "one");
    putmsg(&b, "two!");
    putmsg(&b, "x");
    memcpy(b.buf + b.n, "NOP\n", 4); /* trailing bytes are left over, not an error */
    b.n += 4;

    ck_assert_int_eq(nsq_mpub_validate(&it, b.buf, b.n, TEST_MAX_BODY, TEST_MAX_MSG), 0);
    ck_assert_int_eq(it.count, 3);
    ck_assert_uint_eq(it.left, 4);

    ck_assert_int_eq(nsq_mpub_begin(&it, b.buf, b.n, TEST_MAX_BODY, TEST_MAX_MSG), 0);
    ck_assert_int_eq(nsq_mpub_next(&it, &m, &len), 1);
    ck_assert_uint_eq(len, 3);
    ck_assert_mem_eq(m, "one", 3);
    ck_assert_int_eq(nsq_mpub_next(&it, &m, &len), 1);
    ck_assert_mem_eq(m, "two!", 4);
    ck_assert_int_eq(nsq_mpub_next(&it, &m, &len), 1);
    ck_assert_mem_eq(m, "x", 1);
    ck_assert_int_eq(nsq_mpub_next(&it, &m, &len), 0);
    ck_assert_int_eq(nsq_mpub_next(&it, &m, &len), 0);
    ck_assert_uint_eq(it.left, 4);
    ck_assert_mem_eq(it.p, "NOP\n", 4);
}
END_TEST

START_TEST(test_mpub_errors)
{
    struct mpub_builder b;
    struct nsq_mpub_iter it;

    /* count read fails */
    b.n = 0;
    ck_assert_int_eq(nsq_mpub_validate(&it, b.buf, 0, TEST_MAX_BODY, TEST_MAX_MSG),
                     NSQ_MPUB_ERR_COUNT_READ);
    ck_assert_int_eq(
            nsq_mpub_validate(&it, (const uint8_t *)"\0\0\0", 3, TEST_MAX_BODY, TEST_MAX_MSG),
            NSQ_MPUB_ERR_COUNT_READ);

    /* count <= 0 or above (max_body - 4) / 5 */
    int32_t bad_counts[] = {0, -1, INT32_MIN, (TEST_MAX_BODY - 4) / 5 + 1, INT32_MAX};
    for (size_t i = 0; i < sizeof(bad_counts) / sizeof(bad_counts[0]); i++) {
        b.n = 0;
        put32(&b, bad_counts[i]);
        ck_assert_int_eq(nsq_mpub_validate(&it, b.buf, b.n, TEST_MAX_BODY, TEST_MAX_MSG),
                         NSQ_MPUB_ERR_COUNT_INVALID);
        ck_assert_int_eq(it.value, bad_counts[i]);
    }
    /* exactly the maximum count passes the count check (then fails reading message 0) */
    b.n = 0;
    put32(&b, (TEST_MAX_BODY - 4) / 5);
    ck_assert_int_eq(nsq_mpub_validate(&it, b.buf, b.n, TEST_MAX_BODY, TEST_MAX_MSG),
                     NSQ_MPUB_ERR_SIZE_READ);
    ck_assert_int_eq(it.index, 0);

    /* message 1's size cannot be read (partial size field) */
    b.n = 0;
    put32(&b, 2);
    putmsg(&b, "a");
    ck_assert_int_eq(nsq_mpub_validate(&it, b.buf, b.n + 2, TEST_MAX_BODY, TEST_MAX_MSG),
                     NSQ_MPUB_ERR_SIZE_READ);
    ck_assert_int_eq(it.index, 1);

    /* message size <= 0 */
    int32_t bad_sizes[] = {0, -5, INT32_MIN};
    for (size_t i = 0; i < sizeof(bad_sizes) / sizeof(bad_sizes[0]); i++) {
        b.n = 0;
        put32(&b, 3);
        putmsg(&b, "a");
        put32(&b, bad_sizes[i]);
        ck_assert_int_eq(nsq_mpub_validate(&it, b.buf, b.n, TEST_MAX_BODY, TEST_MAX_MSG),
                         NSQ_MPUB_ERR_SIZE_INVALID);
        ck_assert_int_eq(it.index, 1);
        ck_assert_int_eq(it.value, bad_sizes[i]);
    }

    /* message too big, checked before the short read */
    b.n = 0;
    put32(&b, 1);
    put32(&b, TEST_MAX_MSG + 1);
    ck_assert_int_eq(nsq_mpub_validate(&it, b.buf, b.n, TEST_MAX_BODY, TEST_MAX_MSG),
                     NSQ_MPUB_ERR_TOO_BIG);
    ck_assert_int_eq(it.value, TEST_MAX_MSG + 1);
    b.n = 0;
    put32(&b, 1);
    put32(&b, 5);
    memcpy(b.buf + b.n, "12345", 5);
    b.n += 5;
    ck_assert_int_eq(nsq_mpub_validate(&it, b.buf, b.n, TEST_MAX_BODY, 4), NSQ_MPUB_ERR_TOO_BIG);
    ck_assert_int_eq(it.value, 5);
    ck_assert_int_eq(nsq_mpub_validate(&it, b.buf, b.n, TEST_MAX_BODY, 5), 0);

    /* short read */
    ck_assert_int_eq(nsq_mpub_validate(&it, b.buf, b.n - 1, TEST_MAX_BODY, TEST_MAX_MSG),
                     NSQ_MPUB_ERR_SHORT);
    ck_assert_int_eq(it.index, 0);
}
END_TEST

/* /mpub text mode: non-empty lines, in order, without their '\n'; a line over the limit fails. */
START_TEST(test_mpub_lines)
{
    static const char body[] = "\none\n\n\ntwo\nthree";
    struct nsq_mpub_lines it;
    const uint8_t *m;
    size_t len;
    const char *want[] = {"one", "two", "three"};
    nsq_mpub_lines_begin(&it, (const uint8_t *)body, strlen(body), 5);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(nsq_mpub_lines_next(&it, &m, &len), 1);
        ck_assert_uint_eq(len, strlen(want[i]));
        ck_assert(memcmp(m, want[i], len) == 0);
    }
    ck_assert_int_eq(nsq_mpub_lines_next(&it, &m, &len), 0);

    nsq_mpub_lines_begin(&it, (const uint8_t *)"ok\ntoolong\n", 11, 5);
    ck_assert_int_eq(nsq_mpub_lines_next(&it, &m, &len), 1);
    ck_assert_int_eq(nsq_mpub_lines_next(&it, &m, &len), NSQ_MPUB_ERR_TOO_BIG);

    nsq_mpub_lines_begin(&it, (const uint8_t *)"\n\n", 2, 5);
    ck_assert_int_eq(nsq_mpub_lines_next(&it, &m, &len), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("nsq_command");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_stream_all_at_once);
    tcase_add_test(tc, test_stream_byte_by_byte);
    tcase_add_test(tc, test_stream_random_chunks);
    tcase_add_test(tc, test_split_rules);
    tcase_add_test(tc, test_many_params);
    tcase_add_test(tc, test_cr_handling);
    tcase_add_test(tc, test_line_limits);
    tcase_add_test(tc, test_sizes_and_bodies);
    tcase_add_test(tc, test_body_buffer_reuse);
    tcase_add_test(tc, test_empty_and_missing_newline);
    tcase_add_test(tc, test_mpub_iterate);
    tcase_add_test(tc, test_mpub_errors);
    tcase_add_test(tc, test_mpub_lines);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
