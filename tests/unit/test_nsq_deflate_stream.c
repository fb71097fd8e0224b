/* Unit tests for common/nsq_deflate_stream.c: sync-flush segments, zlib interop, output caps,
 * corruption. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <event2/buffer.h>

#include "nsq_deflate_stream.h"

static const uint8_t sync_marker[4] = {0x00, 0x00, 0xff, 0xff};

static void fill_text(uint8_t *p, size_t n, unsigned seed)
{
    static const char *words[] = {"nsq ", "topic ", "channel ", "message ", "{\"id\":", "42, "};
    srand(seed);
    size_t i = 0;
    while (i < n) {
        const char *w = words[rand() % 6];
        for (; *w && i < n; w++)
            p[i++] = (uint8_t)*w;
    }
}

static void fill_random(uint8_t *p, size_t n, unsigned seed)
{
    srand(seed);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)rand();
}

/* zlib's own raw deflate of data with a final sync flush; caller frees. */
static uint8_t *zlib_deflate_raw(const uint8_t *data, size_t len, int level, size_t *out_len)
{
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    ck_assert_int_eq(deflateInit2(&zs, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&zs, len) + 64;
    uint8_t *out = malloc(cap);
    zs.next_in = (Bytef *)data;
    zs.avail_in = (uInt)len;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    ck_assert_int_eq(deflate(&zs, Z_SYNC_FLUSH), Z_OK);
    ck_assert_uint_eq(zs.avail_in, 0);
    *out_len = cap - zs.avail_out;
    deflateEnd(&zs);
    return out;
}

/* zlib's own raw inflate of everything in b (not drained); caller frees. */
static uint8_t *zlib_inflate_raw(struct evbuffer *b, size_t max, size_t *out_len)
{
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    ck_assert_int_eq(inflateInit2(&zs, -15), Z_OK);
    uint8_t *out = malloc(max + 1);
    zs.next_in = evbuffer_pullup(b, -1);
    zs.avail_in = (uInt)evbuffer_get_length(b);
    zs.next_out = out;
    zs.avail_out = (uInt)max + 1;
    int ret = inflate(&zs, Z_SYNC_FLUSH);
    ck_assert(ret == Z_OK || ret == Z_BUF_ERROR);
    ck_assert_uint_eq(zs.avail_in, 0);
    *out_len = max + 1 - zs.avail_out;
    inflateEnd(&zs);
    return out;
}

START_TEST(test_levels)
{
    ck_assert_ptr_null(nsq_deflate_writer_new(0));
    ck_assert_ptr_null(nsq_deflate_writer_new(10));
    for (int l = 1; l <= 9; l++) {
        struct nsq_deflate_writer *w = nsq_deflate_writer_new(l);
        ck_assert_ptr_nonnull(w);
        nsq_deflate_writer_free(w);
    }
    nsq_deflate_writer_free(NULL);
    nsq_deflate_reader_free(NULL);
}
END_TEST

START_TEST(test_empty_write_emits_nothing)
{
    struct nsq_deflate_writer *w = nsq_deflate_writer_new(6);
    struct evbuffer *src = evbuffer_new(), *dst = evbuffer_new();
    ck_assert_int_eq(nsq_deflate_write(w, src, dst), 0);
    ck_assert_uint_eq(evbuffer_get_length(dst), 0);
    nsq_deflate_writer_free(w);
    evbuffer_free(src);
    evbuffer_free(dst);
}
END_TEST

/* Each write ends with a sync marker and decodes on its own to exactly what was written. */
START_TEST(test_sync_flush_segments)
{
    struct nsq_deflate_writer *w = nsq_deflate_writer_new(_i + 1);
    struct nsq_deflate_reader *r = nsq_deflate_reader_new();
    struct evbuffer *src = evbuffer_new(), *seg = evbuffer_new(), *out = evbuffer_new();
    uint8_t data[5000];

    for (int n = 0; n < 20; n++) {
        size_t len = 1 + (size_t)n * 250;
        fill_text(data, len, (unsigned)n);
        evbuffer_add(src, data, len);
        ck_assert_int_eq(nsq_deflate_write(w, src, seg), 0);
        ck_assert_uint_eq(evbuffer_get_length(src), 0);
        size_t sl = evbuffer_get_length(seg);
        ck_assert_uint_ge(sl, 4);
        uint8_t tail[4];
        const uint8_t *p = evbuffer_pullup(seg, -1);
        memcpy(tail, p + sl - 4, 4);
        ck_assert_mem_eq(tail, sync_marker, 4);
        ck_assert_int_eq(nsq_deflate_read(r, seg, out), 0);
        ck_assert_uint_eq(evbuffer_get_length(seg), 0);
        ck_assert_uint_eq(evbuffer_get_length(out), len);
        ck_assert_mem_eq(evbuffer_pullup(out, -1), data, len);
        evbuffer_drain(out, len);
    }
    nsq_deflate_writer_free(w);
    nsq_deflate_reader_free(r);
    evbuffer_free(src);
    evbuffer_free(seg);
    evbuffer_free(out);
}
END_TEST

START_TEST(test_roundtrip_byte_by_byte)
{
    enum { LEN = 100000 };
    uint8_t *data = malloc(LEN);
    struct nsq_deflate_writer *w = nsq_deflate_writer_new(6);
    struct nsq_deflate_reader *r = nsq_deflate_reader_new();
    struct evbuffer *src = evbuffer_new(), *enc = evbuffer_new(), *feed = evbuffer_new();
    struct evbuffer *out = evbuffer_new();

    for (int kind = 0; kind < 2; kind++) {
        if (kind)
            fill_random(data, LEN, 5);
        else
            fill_text(data, LEN, 5);
        /* Written in uneven pieces (several chains), decoded one byte at a time. */
        for (size_t off = 0; off < LEN;) {
            size_t n = (off * 7 + 13) % 9000 + 1;
            if (n > LEN - off)
                n = LEN - off;
            evbuffer_add(src, data + off, n / 2);
            evbuffer_add(src, data + off + n / 2, n - n / 2);
            ck_assert_int_eq(nsq_deflate_write(w, src, enc), 0);
            off += n;
        }
        while (evbuffer_get_length(enc) > 0) {
            evbuffer_remove_buffer(enc, feed, 1);
            ck_assert_int_eq(nsq_deflate_read(r, feed, out), 0);
            ck_assert_uint_eq(evbuffer_get_length(feed), 0);
        }
        ck_assert_uint_eq(evbuffer_get_length(out), LEN);
        ck_assert_mem_eq(evbuffer_pullup(out, -1), data, LEN);
        evbuffer_drain(out, LEN);
    }
    free(data);
    nsq_deflate_writer_free(w);
    nsq_deflate_reader_free(r);
    evbuffer_free(src);
    evbuffer_free(enc);
    evbuffer_free(feed);
    evbuffer_free(out);
}
END_TEST

START_TEST(test_zlib_interop)
{
    enum { LEN = 70000 };
    uint8_t *data = malloc(LEN);
    fill_text(data, LEN, 11);

    /* zlib → us */
    size_t zlen;
    uint8_t *z = zlib_deflate_raw(data, LEN, 9, &zlen);
    struct nsq_deflate_reader *r = nsq_deflate_reader_new();
    struct evbuffer *src = evbuffer_new(), *dst = evbuffer_new();
    evbuffer_add(src, z, zlen);
    ck_assert_int_eq(nsq_deflate_read(r, src, dst), 0);
    ck_assert_uint_eq(evbuffer_get_length(dst), LEN);
    ck_assert_mem_eq(evbuffer_pullup(dst, -1), data, LEN);
    free(z);

    /* us → zlib */
    struct nsq_deflate_writer *w = nsq_deflate_writer_new(1);
    evbuffer_drain(dst, LEN);
    evbuffer_add(src, data, LEN);
    ck_assert_int_eq(nsq_deflate_write(w, src, dst), 0);
    size_t ulen;
    uint8_t *u = zlib_inflate_raw(dst, LEN, &ulen);
    ck_assert_uint_eq(ulen, LEN);
    ck_assert_mem_eq(u, data, LEN);
    free(u);
    free(data);
    nsq_deflate_reader_free(r);
    nsq_deflate_writer_free(w);
    evbuffer_free(src);
    evbuffer_free(dst);
}
END_TEST

START_TEST(test_output_cap)
{
    /* 8 MiB of zeros deflate to a few KiB: the reader must hand it out in capped steps. */
    enum { LEN = 8 * 1024 * 1024, CAP = 65536 };
    uint8_t *data = calloc(1, LEN);
    size_t zlen;
    uint8_t *z = zlib_deflate_raw(data, LEN, 9, &zlen);
    ck_assert_uint_lt(zlen, 64 * 1024);

    struct nsq_deflate_reader *r = nsq_deflate_reader_new();
    struct evbuffer *src = evbuffer_new(), *dst = evbuffer_new();
    size_t total = 0;
    int rc, steps = 0;
    evbuffer_add(src, z, zlen);
    do {
        rc = nsq_deflate_read_max(r, src, dst, CAP);
        ck_assert_int_ge(rc, 0);
        size_t got = evbuffer_get_length(dst);
        ck_assert_uint_le(got, CAP + NSQ_DEFLATE_READ_OVERSHOOT);
        total += got;
        evbuffer_drain(dst, got);
        steps++;
    } while (rc == NSQ_DEFLATE_MORE);
    ck_assert_uint_eq(total, LEN);
    ck_assert_uint_eq(evbuffer_get_length(src), 0);
    ck_assert_int_ge(steps, LEN / (CAP + NSQ_DEFLATE_READ_OVERSHOOT));

    /* The default entry point caps too. */
    nsq_deflate_reader_free(r);
    r = nsq_deflate_reader_new();
    evbuffer_add(src, z, zlen);
    ck_assert_int_eq(nsq_deflate_read(r, src, dst), NSQ_DEFLATE_MORE);
    ck_assert_uint_le(evbuffer_get_length(dst),
                      NSQ_DEFLATE_READ_MAX_DEFAULT + NSQ_DEFLATE_READ_OVERSHOOT);
    free(z);
    free(data);
    nsq_deflate_reader_free(r);
    evbuffer_free(src);
    evbuffer_free(dst);
}
END_TEST

static void expect_bad(const void *bytes, size_t len)
{
    struct nsq_deflate_reader *r = nsq_deflate_reader_new();
    struct evbuffer *src = evbuffer_new(), *dst = evbuffer_new();
    evbuffer_add(src, bytes, len);
    ck_assert_int_eq(nsq_deflate_read(r, src, dst), -EBADMSG);
    evbuffer_add(src, sync_marker, 4);
    ck_assert_int_eq(nsq_deflate_read(r, src, dst), -EBADMSG); /* sticky */
    nsq_deflate_reader_free(r);
    evbuffer_free(src);
    evbuffer_free(dst);
}

START_TEST(test_corrupt)
{
    /* reserved block type 3 */
    expect_bad("\x07\x00", 2);
    /* stored block whose LEN and NLEN disagree */
    expect_bad("\x00\x05\x00\x00\x00hello", 10);
    /* a zlib-wrapped stream is not raw deflate */
    uint8_t zbuf[64];
    uLongf zl = sizeof(zbuf);
    ck_assert_int_eq(compress(zbuf, &zl, (const Bytef *)"hello hello hello", 17), Z_OK);
    expect_bad(zbuf, zl);
    /* data after the final block */
    expect_bad("\x01\x01\x00\xfe\xffX"
               "extra",
               11);
}
END_TEST

START_TEST(test_final_block_then_nothing)
{
    /* A final stored block alone is fine. */
    struct nsq_deflate_reader *r = nsq_deflate_reader_new();
    struct evbuffer *src = evbuffer_new(), *dst = evbuffer_new();
    evbuffer_add(src, "\x01\x01\x00\xfe\xffX", 6);
    ck_assert_int_eq(nsq_deflate_read(r, src, dst), 0);
    ck_assert_uint_eq(evbuffer_get_length(dst), 1);
    nsq_deflate_reader_free(r);
    evbuffer_free(src);
    evbuffer_free(dst);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("nsq_deflate_stream");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_levels);
    tcase_add_test(tc, test_empty_write_emits_nothing);
    tcase_add_loop_test(tc, test_sync_flush_segments, 0, 9);
    tcase_add_test(tc, test_roundtrip_byte_by_byte);
    tcase_add_test(tc, test_zlib_interop);
    tcase_add_test(tc, test_output_cap);
    tcase_add_test(tc, test_corrupt);
    tcase_add_test(tc, test_final_block_then_nothing);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
