/*
 * nsq_crc32c: CRC-32C with an SSE4.2 fast path and a slicing-by-8 table fallback.
 *
 * The implementation is picked once (pthread_once) so the hot path is one indirect call. The
 * slicing tables cost 8 KiB of static memory; they are only built when the hardware path is
 * missing or the portable function is called directly.
 */
#include "nsq_crc32c.h"

#include <pthread.h>
#include <string.h>

#define CRC32C_POLY_REFLECTED 0x82f63b78u
#define CRC32C_SLICES         8

static uint32_t crc_table[CRC32C_SLICES][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void crc_table_build(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ CRC32C_POLY_REFLECTED : c >> 1;
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = crc_table[0][i];
        for (int s = 1; s < CRC32C_SLICES; s++) {
            c = crc_table[0][c & 0xff] ^ (c >> 8);
            crc_table[s][i] = c;
        }
    }
}

uint32_t nsq_crc32c_update_portable(uint32_t crc, const void *data, size_t len)
{
    const uint8_t *p = data;

    pthread_once(&table_once, crc_table_build);
    crc = ~crc;
    while (len >= CRC32C_SLICES) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + 4, 4);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        lo = __builtin_bswap32(lo);
        hi = __builtin_bswap32(hi);
#endif
        lo ^= crc;
        crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
              crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^ crc_table[3][hi & 0xff] ^
              crc_table[2][(hi >> 8) & 0xff] ^ crc_table[1][(hi >> 16) & 0xff] ^
              crc_table[0][hi >> 24];
        p += CRC32C_SLICES;
        len -= CRC32C_SLICES;
    }
    while (len--)
        crc = crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define NSQ_CRC32C_HW 1

__attribute__((target("sse4.2"))) static uint32_t crc32c_update_sse42(uint32_t crc,
                                                                      const void *data, size_t len)
{
    const uint8_t *p = data;
    uint64_t c = ~crc;

    while (len >= sizeof(uint64_t)) {
        uint64_t v;
        memcpy(&v, p, sizeof(v));
        c = __builtin_ia32_crc32di(c, v);
        p += sizeof(v);
        len -= sizeof(v);
    }
    uint32_t c32 = (uint32_t)c;
    while (len--)
        c32 = __builtin_ia32_crc32qi(c32, *p++);
    return ~c32;
}
#endif

typedef uint32_t (*crc32c_fn)(uint32_t, const void *, size_t);
static crc32c_fn crc32c_impl;
static pthread_once_t impl_once = PTHREAD_ONCE_INIT;

static void crc32c_choose(void)
{
    crc32c_impl = nsq_crc32c_update_portable;
#ifdef NSQ_CRC32C_HW
    __builtin_cpu_init();
    if (__builtin_cpu_supports("sse4.2"))
        crc32c_impl = crc32c_update_sse42;
#endif
}

uint32_t nsq_crc32c_update(uint32_t crc, const void *data, size_t len)
{
    pthread_once(&impl_once, crc32c_choose);
    return crc32c_impl(crc, data, len);
}
