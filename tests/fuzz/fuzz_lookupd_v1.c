/*
 * libFuzzer target for the nsqlookupd V1 protocol parsing (nsqlookupd/lookup_protocol_v1.c).
 *
 * The parsing helpers of that file are static, so the file is compiled into this target by
 * inclusion; the rest of the daemon's core comes from the nsqlookupd_core library.
 *
 * Input: byte 0 selects the mode, the rest is the payload.
 *   even: a command line — trimmed and split as exec_line() does, then every parameter goes
 *         through the topic/channel name checks REGISTER applies. Invariants: no parameter
 *         contains a space, the first parameter starts at the trimmed line.
 *   odd:  an IDENTIFY body decoded into a peer by decode_identify().
 */
#include "../../nsqlookupd/lookup_protocol_v1.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

static void fuzz_line(const uint8_t *data, size_t size)
{
    char *raw = malloc(size + 1);
    if (raw == NULL)
        return;
    memcpy(raw, data, size);
    raw[size] = '\0';
    /* the connection hands exec_line a line without its LF and with no NUL inside */
    size_t len = strnlen(raw, size);
    struct v1_cmd cmd;
    char *line = trim_space(raw, &len);
    FUZZ_CHECK(line >= raw && line + len <= raw + size);
    split_params(line, &cmd);
    FUZZ_CHECK(cmd.nparams >= 1 && cmd.nparams <= MAX_PARAMS);
    FUZZ_CHECK(cmd.params[0] == line);
    for (size_t i = 0; i < cmd.nparams; i++) {
        size_t plen = strlen(cmd.params[i]);
        FUZZ_CHECK(memchr(cmd.params[i], ' ', plen) == NULL);
        (void)nsq_topic_name_valid(cmd.params[i], plen);
        (void)nsq_channel_name_valid(cmd.params[i], plen);
        (void)nsq_name_is_ephemeral(cmd.params[i], plen);
    }
    free(raw);
}

static void fuzz_identify(const uint8_t *data, size_t size)
{
    struct lookup_peer *peer = lookup_peer_new("127.0.0.1:1");
    if (peer == NULL)
        return;
    if (decode_identify(data, size, peer) == 0) {
        /* strings the decoder kept must be NUL-terminated copies */
        if (peer->hostname != NULL)
            (void)strlen(peer->hostname);
        if (peer->broadcast_address != NULL)
            (void)strlen(peer->broadcast_address);
        if (peer->version != NULL)
            (void)strlen(peer->version);
    }
    lookup_peer_free(peer);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if ((data[0] & 1) == 0)
        fuzz_line(data + 1, size - 1);
    else
        fuzz_identify(data + 1, size - 1);
    return 0;
}
