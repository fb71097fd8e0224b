/*
 * libFuzzer target for the IDENTIFY JSON decoding of nsqd (identify_decode() in
 * nsqd/protocol_v2.c, static there, so the file is compiled into this target by inclusion along
 * with the rest of the daemon's modules).
 *
 * Input: an IDENTIFY body. After a successful decode the range checks identify_apply() performs
 * are re-done on the decoded numbers (they must not overflow: UBSan aborts on signed overflow),
 * and the decoded strings must be NUL-terminated.
 */
#include "../../nsqd/protocol_v2.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct identify_data d;
    memset(&d, 0, sizeof(d));
    if (identify_decode(data, size, &d)) {
        volatile size_t sink = 0;
        if (d.client_id != NULL)
            sink += strlen(d.client_id);
        if (d.hostname != NULL)
            sink += strlen(d.hostname);
        if (d.user_agent != NULL)
            sink += strlen(d.user_agent);
        /* the values identify_apply converts to durations and sizes */
        volatile int64_t v = d.heartbeat_interval / 2 + d.output_buffer_timeout / 2 +
                             d.msg_timeout / 2 + d.output_buffer_size / 2;
        (void)v;
        (void)sink;
    }
    identify_free(&d);
    return 0;
}
