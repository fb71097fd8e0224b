/* Unit tests for common/nsq_snappy_stream.c: framing vectors, incremental decoding, corruption. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "nsq_snappy_stream.h"

/* Masked CRC-32C values computed independently of the code under test. */
#define MASKED_CRC_HELLO  0x191c1fbbu
#define MASKED_CRC_ABC    0x21f1576eu
#define MASKED_CRC_ABAB12 0x21d861cbu /* "abababababab" */
#define MASKED_CRC_EMPTY  0xa282ead8u

static const uint8_t stream_id[] = {0xff, 0x06, 0x00, 0x00, 's', 'N', 'a', 'P', 'p', 'Y'};

static void add_le32(struct evbuffer *b, uint32_t v)
{
    uint8_t p[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    evbuffer_add(b, p, 4);
}

static void add_chunk_hdr(struct evbuffer *b, uint8_t type, size_t len)
{
    uint8_t p[4] = {type, (uint8_t)len, (uint8_t)(len >> 8), (uint8_t)(len >> 16)};
    evbuffer_add(b, p, 4);
}

static void fill_random(uint8_t *p, size_t n, unsigned seed, int compressible)
{
    srand(seed);
    for (size_t i = 0; i < n; i++)
        p[i] = compressible ? (uint8_t)("nsq message "[rand() % 12]) : (uint8_t)rand();
}

START_TEST(test_masked_crc)
{
    ck_assert_uint_eq(nsq_snappy_masked_crc("hello", 5), MASKED_CRC_HELLO);
    ck_assert_uint_eq(nsq_snappy_masked_crc("", 0), MASKED_CRC_EMPTY);
}
END_TEST

START_TEST(test_encode_empty)
{
    struct nsq_snappy_writer *w = nsq_snappy_writer_new();
    struct evbuffer *src = evbuffer_new(), *dst = evbuffer_new();

    ck_assert_int_eq(nsq_snappy_write(w, src, dst), 0);
    ck_assert_uint_eq(evbuffer_get_length(dst), 0);
    nsq_snappy_writer_free(w);
    nsq_snappy_writer_free(NULL);
    evbuffer_free(src);
    evbuffer_free(dst);
}
END_TEST

START_TEST(test_encode_short_text)
{
    struct nsq_snappy_writer *w = nsq_snappy_writer_new();
    struct evbuffer *src = evbuffer_new(), *dst = evbuffer_new(), *want = evbuffer_new();

    /* Too short to compress: one uncompressed chunk after the stream identifier. */
    evbuffer_add(src, "hello", 5);
    ck_assert_int_eq(nsq_snappy_write(w, src, dst), 0);
    ck_assert_uint_eq(evbuffer_get_length(src), 0);
    evbuffer_add(want, stream_id, sizeof(stream_id));
    add_chunk_hdr(want, 0x01, 9);
    add_le32(want, MASKED_CRC_HELLO);
    evbuffer_add(want, "hello", 5);
    ck_assert_uint_eq(evbuffer_get_length(dst), evbuffer_get_length(want));
    ck_assert_mem_eq(evbuffer_pullup(dst, -1), evbuffer_pullup(want, -1),
                     evbuffer_get_length(want));

    /* The identifier is written once per stream. */
    evbuffer_drain(dst, evbuffer_get_length(dst));
    evbuffer_add(src, "abc", 3);
    ck_assert_int_eq(nsq_snappy_write(w, src, dst), 0);
    uint8_t got[11];
    ck_assert_uint_eq(evbuffer_get_length(dst), 11);
    evbuffer_remove(dst, got, 11);
    ck_assert_mem_eq(got,
                     "\x01\x07\x00\x00\x6e\x57\xf1\x21"
                     "abc",
                     11);

    nsq_snappy_writer_free(w);
    evbuffer_free(src);
    evbuffer_free(dst);
    evbuffer_free(want);
}
END_TEST

START_TEST(test_encode_compresses_and_splits)
{
    enum { LEN = 3 * 65536 + 100 };
    uint8_t *data = malloc(LEN);
    struct nsq_snappy_writer *w = nsq_snappy_writer_new();
    struct evbuffer *src = evbuffer_new(), *dst = evbuffer_new();

    fill_random(data, LEN, 1, 1);
    evbuffer_add(src, data, LEN);
    ck_assert_int_eq(nsq_snappy_write(w, src, dst), 0);
    ck_assert_uint_lt(evbuffer_get_length(dst), LEN);

    /* Walk the chunks: identifier, then chunks of 64K, 64K, 64K, 100 bytes. */
    const uint8_t *p = evbuffer_pullup(dst, -1);
    size_t left = evbuffer_get_length(dst), nchunks = 0;
    ck_assert_mem_eq(p, stream_id, sizeof(stream_id));
    p += sizeof(stream_id);
    left -= sizeof(stream_id);
    while (left > 0) {
        ck_assert_uint_ge(left, 4);
        size_t clen = p[1] | p[2] << 8 | p[3] << 16;
        /* Full blocks compress; the 100-byte tail may not be worth it. */
        if (nchunks < 3)
            ck_assert_uint_eq(p[0], 0x00);
        else
            ck_assert_uint_le(p[0], 0x01);
        ck_assert_uint_le(4 + clen, left);
        p += 4 + clen;
        left -= 4 + clen;
        nchunks++;
    }
    ck_assert_uint_eq(nchunks, 4);
    free(data);
    nsq_snappy_writer_free(w);
    evbuffer_free(src);
    evbuffer_free(dst);
}
END_TEST

START_TEST(test_decode_hand_built)
{
    struct nsq_snappy_reader *r = nsq_snappy_reader_new();
    struct evbuffer *src = evbuffer_new(), *dst = evbuffer_new();
    /* snappy block: length 12, literal "ab", copy of 10 bytes at offset 2 */
    static const uint8_t block[] = {0x0c, 0x04, 'a', 'b', 0x19, 0x02};

    evbuffer_add(src, stream_id, sizeof(stream_id));
    add_chunk_hdr(src, 0x01, 4 + 3);
    add_le32(src, MASKED_CRC_ABC);
    evbuffer_add(src, "abc", 3);
    add_chunk_hdr(src, 0xfe, 3); /* padding */
    evbuffer_add(src, "\0\0\0", 3);
    add_chunk_hdr(src, 0x00, 4 + sizeof(block));
    add_le32(src, MASKED_CRC_ABAB12);
    evbuffer_add(src, block, sizeof(block));
    add_chunk_hdr(src, 0x85, 2); /* reserved skippable */
    evbuffer_add(src, "zz", 2);
    evbuffer_add(src, stream_id, sizeof(stream_id)); /* repeated identifier is allowed */
    add_chunk_hdr(src, 0x01, 4);                     /* empty uncompressed chunk */
    add_le32(src, MASKED_CRC_EMPTY);

    ck_assert_int_eq(nsq_snappy_read(r, src, dst), 0);
    ck_assert_uint_eq(evbuffer_get_length(src), 0);
    ck_assert_uint_eq(evbuffer_get_length(dst), 15);
    ck_assert_mem_eq(evbuffer_pullup(dst, -1), "abcabababababab", 15);
    nsq_snappy_reader_free(r);
    nsq_snappy_reader_free(NULL);
    evbuffer_free(src);
    evbuffer_free(dst);
}
END_TEST

/* Encodes data, then decodes it feeding the framed stream `step` bytes at a time. */
static void roundtrip(const uint8_t *data, size_t len, size_t step)
{
    struct nsq_snappy_writer *w = nsq_snappy_writer_new();
    struct nsq_snappy_reader *r = nsq_snappy_reader_new();
    struct evbuffer *plain = evbuffer_new(), *framed = evbuffer_new();
    struct evbuffer *feed = evbuffer_new(), *out = evbuffer_new();

    evbuffer_add(plain, data, len);
    ck_assert_int_eq(nsq_snappy_write(w, plain, framed), 0);
    while (evbuffer_get_length(framed) > 0) {
        size_t n = evbuffer_get_length(framed) < step ? evbuffer_get_length(framed) : step;
        evbuffer_remove_buffer(framed, feed, n);
        ck_assert_int_eq(nsq_snappy_read(r, feed, out), 0);
        ck_assert_uint_lt(evbuffer_get_length(feed),
                          NSQ_SNAPPY_CHUNK_HDR_LEN + NSQ_SNAPPY_MAX_CHUNK_LEN);
    }
    ck_assert_uint_eq(evbuffer_get_length(feed), 0);
    ck_assert_uint_eq(evbuffer_get_length(out), len);
    if (len)
        ck_assert_mem_eq(evbuffer_pullup(out, -1), data, len);
    nsq_snappy_writer_free(w);
    nsq_snappy_reader_free(r);
    evbuffer_free(plain);
    evbuffer_free(framed);
    evbuffer_free(feed);
    evbuffer_free(out);
}

START_TEST(test_roundtrip_sizes)
{
    static const size_t sizes[] = {0,     1,     2,     7,      100,    4095,  65535,
                                   65536, 65537, 70000, 131072, 131073, 200000};
    size_t max = 200000;
    uint8_t *data = malloc(max);

    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        for (int compressible = 0; compressible < 2; compressible++) {
            fill_random(data, sizes[i], (unsigned)i, compressible);
            roundtrip(data, sizes[i], sizes[i] < 5000 ? 1 : 997);
            roundtrip(data, sizes[i], 1 << 20);
        }
    }
    free(data);
}
END_TEST

START_TEST(test_roundtrip_byte_by_byte_large)
{
    enum { LEN = 140000 };
    uint8_t *data = malloc(LEN);
    fill_random(data, LEN, 99, 1);
    roundtrip(data, LEN, 1);
    free(data);
}
END_TEST

/* Builds a valid stream with one "hello" chunk, lets `corrupt` damage it, expects -EBADMSG. */
static void expect_bad(void (*build)(struct evbuffer *src))
{
    struct nsq_snappy_reader *r = nsq_snappy_reader_new();
    struct evbuffer *src = evbuffer_new(), *dst = evbuffer_new();

    build(src);
    ck_assert_int_eq(nsq_snappy_read(r, src, dst), -EBADMSG);
    ck_assert_uint_eq(evbuffer_get_length(dst), 0);
    /* Errors are sticky. */
    evbuffer_add(src, stream_id, sizeof(stream_id));
    ck_assert_int_eq(nsq_snappy_read(r, src, dst), -EBADMSG);
    nsq_snappy_reader_free(r);
    evbuffer_free(src);
    evbuffer_free(dst);
}

static void build_bad_crc(struct evbuffer *src)
{
    evbuffer_add(src, stream_id, sizeof(stream_id));
    add_chunk_hdr(src, 0x01, 9);
    add_le32(src, MASKED_CRC_HELLO ^ 1);
    evbuffer_add(src, "hello", 5);
}

static void build_bad_crc_compressed(struct evbuffer *src)
{
    static const uint8_t block[] = {0x0c, 0x04, 'a', 'b', 0x19, 0x02};
    evbuffer_add(src, stream_id, sizeof(stream_id));
    add_chunk_hdr(src, 0x00, 4 + sizeof(block));
    add_le32(src, MASKED_CRC_ABC);
    evbuffer_add(src, block, sizeof(block));
}

static void build_no_stream_id(struct evbuffer *src)
{
    add_chunk_hdr(src, 0x01, 9);
    add_le32(src, MASKED_CRC_HELLO);
    evbuffer_add(src, "hello", 5);
}

static void build_bad_stream_id(struct evbuffer *src)
{
    evbuffer_add(src, "\xff\x06\x00\x00sNaPpX", 10);
}

static void build_bad_stream_id_len(struct evbuffer *src)
{
    evbuffer_add(src, "\xff\x07\x00\x00sNaPpYY", 11);
}

static void build_reserved_type(struct evbuffer *src)
{
    evbuffer_add(src, stream_id, sizeof(stream_id));
    add_chunk_hdr(src, 0x02, 9);
}

static void build_reserved_type_7f(struct evbuffer *src)
{
    evbuffer_add(src, stream_id, sizeof(stream_id));
    add_chunk_hdr(src, 0x7f, 1);
}

static void build_oversize_uncompressed(struct evbuffer *src)
{
    /* Rejected from the header alone, before any body arrives. */
    evbuffer_add(src, stream_id, sizeof(stream_id));
    add_chunk_hdr(src, 0x01, 4 + 65536 + 1);
}

static void build_oversize_compressed(struct evbuffer *src)
{
    evbuffer_add(src, stream_id, sizeof(stream_id));
    add_chunk_hdr(src, 0x00, NSQ_SNAPPY_MAX_CHUNK_LEN + 1);
}

static void build_undersize(struct evbuffer *src)
{
    evbuffer_add(src, stream_id, sizeof(stream_id));
    add_chunk_hdr(src, 0x00, 3);
    evbuffer_add(src, "abc", 3);
}

static void build_block_too_large(struct evbuffer *src)
{
    /* A block claiming 65537 uncompressed bytes. */
    static const uint8_t block[] = {0x81, 0x80, 0x04, 0x00, 'a'};
    evbuffer_add(src, stream_id, sizeof(stream_id));
    add_chunk_hdr(src, 0x00, 4 + sizeof(block));
    add_le32(src, 0);
    evbuffer_add(src, block, sizeof(block));
}

static void build_garbage_block(struct evbuffer *src)
{
    /* Claims 12 bytes, then a copy reaching before the start. */
    static const uint8_t block[] = {0x0c, 0x19, 0x05};
    evbuffer_add(src, stream_id, sizeof(stream_id));
    add_chunk_hdr(src, 0x00, 4 + sizeof(block));
    add_le32(src, MASKED_CRC_ABAB12);
    evbuffer_add(src, block, sizeof(block));
}

START_TEST(test_corrupt)
{
    expect_bad(build_bad_crc);
    expect_bad(build_bad_crc_compressed);
    expect_bad(build_no_stream_id);
    expect_bad(build_bad_stream_id);
    expect_bad(build_bad_stream_id_len);
    expect_bad(build_reserved_type);
    expect_bad(build_reserved_type_7f);
    expect_bad(build_oversize_uncompressed);
    expect_bad(build_oversize_compressed);
    expect_bad(build_undersize);
    expect_bad(build_block_too_large);
    expect_bad(build_garbage_block);
}
END_TEST

START_TEST(test_truncated_stays_pending)
{
    struct nsq_snappy_reader *r = nsq_snappy_reader_new();
    struct evbuffer *src = evbuffer_new(), *dst = evbuffer_new();

    build_no_stream_id(src); /* reuse: one full "hello" chunk ... */
    evbuffer_prepend(src, stream_id, sizeof(stream_id));
    size_t full = evbuffer_get_length(src);
    evbuffer_drain(dst, 0);
    /* ... truncated by one byte: nothing decoded, the partial chunk stays. */
    struct evbuffer *part = evbuffer_new();
    evbuffer_remove_buffer(src, part, full - 1);
    ck_assert_int_eq(nsq_snappy_read(r, part, dst), 0);
    ck_assert_uint_eq(evbuffer_get_length(dst), 0);
    ck_assert_uint_eq(evbuffer_get_length(part), 4 + 9 - 1);
    evbuffer_add_buffer(part, src);
    ck_assert_int_eq(nsq_snappy_read(r, part, dst), 0);
    ck_assert_uint_eq(evbuffer_get_length(dst), 5);
    nsq_snappy_reader_free(r);
    evbuffer_free(src);
    evbuffer_free(dst);
    evbuffer_free(part);
}
END_TEST

START_TEST(test_skippable_split)
{
    /* A large skippable chunk arriving in pieces is dropped without being buffered. */
    struct nsq_snappy_reader *r = nsq_snappy_reader_new();
    struct evbuffer *src = evbuffer_new(), *dst = evbuffer_new();
    uint8_t junk[1000];

    memset(junk, 0xaa, sizeof(junk));
    evbuffer_add(src, stream_id, sizeof(stream_id));
    add_chunk_hdr(src, 0x90, 3000);
    for (int i = 0; i < 3; i++) {
        evbuffer_add(src, junk, sizeof(junk));
        ck_assert_int_eq(nsq_snappy_read(r, src, dst), 0);
        ck_assert_uint_eq(evbuffer_get_length(src), 0);
    }
    build_no_stream_id(src);
    ck_assert_int_eq(nsq_snappy_read(r, src, dst), 0);
    ck_assert_uint_eq(evbuffer_get_length(dst), 5);
    nsq_snappy_reader_free(r);
    evbuffer_free(src);
    evbuffer_free(dst);
}
END_TEST

START_TEST(test_read_max)
{
    enum { LEN = 5 * 65536 };
    uint8_t *data = malloc(LEN);
    struct nsq_snappy_writer *w = nsq_snappy_writer_new();
    struct nsq_snappy_reader *r = nsq_snappy_reader_new();
    struct evbuffer *src = evbuffer_new(), *framed = evbuffer_new(), *dst = evbuffer_new();

    fill_random(data, LEN, 3, 1);
    evbuffer_add(src, data, LEN);
    ck_assert_int_eq(nsq_snappy_write(w, src, framed), 0);
    ck_assert_int_eq(nsq_snappy_read_max(r, framed, dst, 1000), NSQ_SNAPPY_MORE);
    ck_assert_uint_eq(evbuffer_get_length(dst), 65536);
    ck_assert_int_eq(nsq_snappy_read_max(r, framed, dst, 2 * 65536), NSQ_SNAPPY_MORE);
    ck_assert_uint_eq(evbuffer_get_length(dst), 3 * 65536);
    ck_assert_int_eq(nsq_snappy_read_max(r, framed, dst, 2 * 65536), 0);
    ck_assert_uint_eq(evbuffer_get_length(dst), LEN);
    ck_assert_mem_eq(evbuffer_pullup(dst, -1), data, LEN);
    free(data);
    nsq_snappy_writer_free(w);
    nsq_snappy_reader_free(r);
    evbuffer_free(src);
    evbuffer_free(framed);
    evbuffer_free(dst);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("nsq_snappy_stream");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_masked_crc);
    tcase_add_test(tc, test_encode_empty);
    tcase_add_test(tc, test_encode_short_text);
    tcase_add_test(tc, test_encode_compresses_and_splits);
    tcase_add_test(tc, test_decode_hand_built);
    tcase_add_test(tc, test_roundtrip_sizes);
    tcase_add_test(tc, test_roundtrip_byte_by_byte_large);
    tcase_add_test(tc, test_corrupt);
    tcase_add_test(tc, test_truncated_stays_pending);
    tcase_add_test(tc, test_skippable_split);
    tcase_add_test(tc, test_read_max);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
