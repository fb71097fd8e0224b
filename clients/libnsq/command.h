/*
 * command: client-to-nsqd commands of the V2 protocol (tcp-protocol.md §3-§4) appended to an
 * evbuffer. Each function appends one complete command or nothing (returns 0 or -ENOMEM / -EINVAL).
 */
#ifndef NSQ_LIB_COMMAND_H
#define NSQ_LIB_COMMAND_H

#include <stddef.h>
#include <stdint.h>

struct evbuffer;

#define NSQ_CMD_MAGIC     "  V2"
#define NSQ_CMD_MAGIC_LEN 4

int nsq_cmd_identify(struct evbuffer *out, const char *json, size_t len);
int nsq_cmd_auth(struct evbuffer *out, const char *secret, size_t len);
int nsq_cmd_sub(struct evbuffer *out, const char *topic, const char *channel);
int nsq_cmd_rdy(struct evbuffer *out, int64_t count);
int nsq_cmd_fin(struct evbuffer *out, const char id[16]);
int nsq_cmd_req(struct evbuffer *out, const char id[16], int64_t delay_ms);
int nsq_cmd_touch(struct evbuffer *out, const char id[16]);
int nsq_cmd_nop(struct evbuffer *out);
int nsq_cmd_cls(struct evbuffer *out);
/* ttl_ms > 0 appends nsqd's optional trailing time-to-live parameter (docs/ttl-and-depth.md);
   0 sends upstream's command unchanged. */
int nsq_cmd_pub(struct evbuffer *out, const char *topic, uint32_t ttl_ms, const void *body,
                size_t len);
int nsq_cmd_dpub(struct evbuffer *out, const char *topic, int64_t delay_ms, uint32_t ttl_ms,
                 const void *body, size_t len);
int nsq_cmd_mpub(struct evbuffer *out, const char *topic, uint32_t ttl_ms,
                 const void *const *bodies, const size_t *lens, size_t n);

#endif
