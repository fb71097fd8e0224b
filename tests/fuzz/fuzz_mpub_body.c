/*
 * libFuzzer target for the MPUB body as nsqd's HTTP /mpub?binary=true handles it
 * (common/nsq_command.c: nsq_mpub_validate, then nsq_mpub_begin/nsq_mpub_next to collect the
 * messages into an array sized by the validated count).
 *
 * Input: bytes 0-1 pick max-msg-size and max-body-size (small values, so the limits are hit),
 * the rest is the body. Invariants: when validation passes, iteration yields exactly `count`
 * messages, each inside the body and within max-msg-size, and never an error; when it fails,
 * iteration fails at the same message index with the same error.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nsq_command.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    int64_t max_msg = 1 + data[0] * 16;
    int64_t max_body = data[1] == 0 ? 5 * 1024 * 1024 : 4 + data[1] * 32;
    const uint8_t *body = data + 2;
    size_t len = size - 2;
    /* a private copy, so ASan sees any read past the end of the body */
    uint8_t *copy = malloc(len ? len : 1);
    if (copy == NULL)
        return 0;
    memcpy(copy, body, len);

    struct nsq_mpub_iter v, it;
    int vrc = nsq_mpub_validate(&v, copy, len, max_body, max_msg);
    int brc = nsq_mpub_begin(&it, copy, len, max_body, max_msg);
    if (brc != 0) {
        FUZZ_CHECK(vrc == brc);
        free(copy);
        return 0;
    }
    FUZZ_CHECK(it.count >= 1);
    const uint8_t *m;
    size_t mlen;
    int32_t n = 0;
    int rc;
    while ((rc = nsq_mpub_next(&it, &m, &mlen)) == 1) {
        FUZZ_CHECK(m >= copy && m + mlen <= copy + len);
        FUZZ_CHECK((int64_t)mlen <= max_msg);
        n++;
        FUZZ_CHECK(n <= it.count);
    }
    if (vrc == 0) {
        FUZZ_CHECK(rc == 0);
        FUZZ_CHECK(n == v.count);
        FUZZ_CHECK(it.left == v.left);
    } else {
        FUZZ_CHECK(rc == vrc);
        FUZZ_CHECK(it.index == v.index);
        FUZZ_CHECK(it.value == v.value);
    }
    free(copy);
    return 0;
}
