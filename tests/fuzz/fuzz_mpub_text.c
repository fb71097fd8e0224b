/*
 * libFuzzer target for the body of HTTP /mpub without binary=true (common/nsq_command.c:
 * nsq_mpub_lines_begin / nsq_mpub_lines_next), as nsqd/http.c splits it into messages.
 *
 * Input: byte 0 picks max-msg-size (small values, so the limit is hit), the rest is the body.
 * Invariants: every message lies inside the body, is non-empty, holds no '\n' and is within the
 * limit; the messages, in order, are exactly the body with its '\n' bytes removed, unless the
 * iteration stops with NSQ_MPUB_ERR_TOO_BIG, which it does only at a line over the limit.
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
    if (size < 1)
        return 0;
    int64_t max_msg = 1 + data[0] * 4;
    size_t len = size - 1;
    /* a private copy, so ASan sees any read past the end of the body */
    uint8_t *body = malloc(len ? len : 1);
    if (body == NULL)
        return 0;
    memcpy(body, data + 1, len);

    struct nsq_mpub_lines it;
    nsq_mpub_lines_begin(&it, body, len, max_msg);
    const uint8_t *m;
    size_t mlen;
    size_t pos = 0; /* next body byte that is not a '\n' and not yet matched */
    int r;
    while ((r = nsq_mpub_lines_next(&it, &m, &mlen)) == 1) {
        FUZZ_CHECK(mlen > 0 && (int64_t)mlen <= max_msg);
        FUZZ_CHECK(m >= body && m + mlen <= body + len);
        FUZZ_CHECK(memchr(m, '\n', mlen) == NULL);
        while (pos < len && body[pos] == '\n')
            pos++;
        FUZZ_CHECK(m == body + pos); /* the next line, nothing skipped */
        pos += mlen;
    }
    if (r == 0) {
        while (pos < len && body[pos] == '\n')
            pos++;
        FUZZ_CHECK(pos == len); /* every line was returned */
    } else {
        FUZZ_CHECK(r == NSQ_MPUB_ERR_TOO_BIG);
        while (pos < len && body[pos] == '\n')
            pos++;
        const uint8_t *nl = memchr(body + pos, '\n', len - pos);
        size_t line = nl ? (size_t)(nl - (body + pos)) : len - pos;
        FUZZ_CHECK((int64_t)line > max_msg); /* it stopped at a line over the limit */
    }
    free(body);
    return 0;
}
