/*
 * command: encoders for the V2 commands a client sends. Lines are "NAME[ param]*\n"; commands with
 * a body follow the line with a big-endian int32 size and the bytes.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "command.h"
#include "nsq_frame.h"
#include "nsq_message.h"

static int add_body(struct evbuffer *out, const void *body, size_t len)
{
    uint8_t size[4];
    if (len > INT32_MAX)
        return -EINVAL;
    nsq_put_be32(size, (uint32_t)len);
    if (evbuffer_add(out, size, sizeof(size)) < 0 || evbuffer_add(out, body, len) < 0)
        return -ENOMEM;
    return 0;
}

int nsq_cmd_identify(struct evbuffer *out, const char *json, size_t len)
{
    if (evbuffer_add(out, "IDENTIFY\n", 9) < 0)
        return -ENOMEM;
    return add_body(out, json, len);
}

int nsq_cmd_auth(struct evbuffer *out, const char *secret, size_t len)
{
    if (evbuffer_add(out, "AUTH\n", 5) < 0)
        return -ENOMEM;
    return add_body(out, secret, len);
}

int nsq_cmd_sub(struct evbuffer *out, const char *topic, const char *channel)
{
    return evbuffer_add_printf(out, "SUB %s %s\n", topic, channel) < 0 ? -ENOMEM : 0;
}

int nsq_cmd_rdy(struct evbuffer *out, int64_t count)
{
    return evbuffer_add_printf(out, "RDY %" PRId64 "\n", count) < 0 ? -ENOMEM : 0;
}

static int id_cmd(struct evbuffer *out, const char *name, const char id[NSQ_MSG_ID_LEN],
                  const char *tail)
{
    if (evbuffer_add(out, name, strlen(name)) < 0 || evbuffer_add(out, id, NSQ_MSG_ID_LEN) < 0 ||
        evbuffer_add(out, tail, strlen(tail)) < 0)
        return -ENOMEM;
    return 0;
}

int nsq_cmd_fin(struct evbuffer *out, const char id[16])
{
    return id_cmd(out, "FIN ", id, "\n");
}

int nsq_cmd_req(struct evbuffer *out, const char id[16], int64_t delay_ms)
{
    char tail[32];
    snprintf(tail, sizeof(tail), " %" PRId64 "\n", delay_ms < 0 ? 0 : delay_ms);
    return id_cmd(out, "REQ ", id, tail);
}

int nsq_cmd_touch(struct evbuffer *out, const char id[16])
{
    return id_cmd(out, "TOUCH ", id, "\n");
}

int nsq_cmd_nop(struct evbuffer *out)
{
    return evbuffer_add(out, "NOP\n", 4) < 0 ? -ENOMEM : 0;
}

int nsq_cmd_cls(struct evbuffer *out)
{
    return evbuffer_add(out, "CLS\n", 4) < 0 ? -ENOMEM : 0;
}

/* Ends a publish command line: " <ttl_ms>" when a TTL is set, then the newline. */
static int end_pub_line(struct evbuffer *out, uint32_t ttl_ms)
{
    int rc = ttl_ms ? evbuffer_add_printf(out, " %" PRIu32 "\n", ttl_ms)
                    : evbuffer_add(out, "\n", 1);
    return rc < 0 ? -ENOMEM : 0;
}

int nsq_cmd_pub(struct evbuffer *out, const char *topic, uint32_t ttl_ms, const void *body,
                size_t len)
{
    if (evbuffer_add_printf(out, "PUB %s", topic) < 0 || end_pub_line(out, ttl_ms) < 0)
        return -ENOMEM;
    return add_body(out, body, len);
}

int nsq_cmd_dpub(struct evbuffer *out, const char *topic, int64_t delay_ms, uint32_t ttl_ms,
                 const void *body, size_t len)
{
    if (evbuffer_add_printf(out, "DPUB %s %" PRId64, topic, delay_ms) < 0 ||
        end_pub_line(out, ttl_ms) < 0)
        return -ENOMEM;
    return add_body(out, body, len);
}

int nsq_cmd_mpub(struct evbuffer *out, const char *topic, uint32_t ttl_ms,
                 const void *const *bodies, const size_t *lens, size_t n)
{
    uint8_t hdr[8];
    size_t total = 4;
    for (size_t i = 0; i < n; i++) {
        if (lens[i] > INT32_MAX)
            return -EINVAL;
        total += 4 + lens[i];
    }
    if (n == 0 || n > INT32_MAX || total > INT32_MAX)
        return -EINVAL;
    if (evbuffer_add_printf(out, "MPUB %s", topic) < 0 || end_pub_line(out, ttl_ms) < 0)
        return -ENOMEM;
    nsq_put_be32(hdr, (uint32_t)total);
    nsq_put_be32(hdr + 4, (uint32_t)n);
    if (evbuffer_add(out, hdr, sizeof(hdr)) < 0)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        nsq_put_be32(hdr, (uint32_t)lens[i]);
        if (evbuffer_add(out, hdr, 4) < 0 || evbuffer_add(out, bodies[i], lens[i]) < 0)
            return -ENOMEM;
    }
    return 0;
}
