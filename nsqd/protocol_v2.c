/*
 * protocol_v2: V2 command handling (tcp-protocol.md §3-§4). Every error text is upstream's.
 *
 * Commands are parsed by nsq_parser straight from the connection's input buffer. A command with a
 * body goes through three steps (line, body size, body); the line fields stay valid until the body
 * arrives, so nothing is copied in between. Fatal errors send their frame and close the
 * connection once it has been written; FIN/REQ/TOUCH failures are the only non-fatal ones.
 */
#include "protocol_v2.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/ssl.h>

#include "ack_wait.h"
#include "auth.h"
#include "channel.h"
#include "client.h"
#include "journal.h"
#include "nsq_codec.h"
#include "nsq_command.h"
#include "nsq_goquote.h"
#include "nsq_json.h"
#include "nsq_net.h"
#include "nsq_tls.h"
#include "nsq_log.h"
#include "nsq_message.h"
#include "nsq_names.h"
#include "nsq_time.h"
#include "nsq_version.h"
#include "nsqd.h"
#include "topic.h"
#include "topology.h"

#define V2_MAGIC     "  V2"
#define V2_MAGIC_LEN 4
#define ERR_TEXT_MAX 1024

static const char ok_text[] = "OK";

enum pending {
    PENDING_NONE,
    PENDING_IDENTIFY,
    PENDING_AUTH,
    PENDING_PUB,
    PENDING_MPUB,
    PENDING_DPUB,
};

static bool slice_eq(struct nsq_slice s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && memcmp(s.ptr, lit, n) == 0;
}

/* Copies a slice into buf as a NUL-terminated string (truncated to len-1). */
static char *slice_str(struct nsq_slice s, char *buf, size_t len)
{
    size_t n = s.len < len - 1 ? s.len : len - 1;
    memcpy(buf, s.ptr, n);
    buf[n] = '\0';
    return buf;
}

static void fatal(struct client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fatal(struct client *c, const char *fmt, ...)
{
    char text[ERR_TEXT_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    nsq_error("[%s] - %s", c->remote_addr, text);
    client_send_error(c, text);
    client_close_after_flush(c);
}

static void nonfatal(struct client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void nonfatal(struct client *c, const char *fmt, ...)
{
    char text[ERR_TEXT_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    client_send_error(c, text);
}

/* Go's %q of a slice into buf. */
static const char *quote(struct nsq_slice s, char *buf, size_t len)
{
    char *q = nsq_goquote_dup(s.ptr, s.len);
    snprintf(buf, len, "%s", q ? q : "\"\"");
    free(q);
    return buf;
}

/* Upstream's ByteToBase10: every byte must be a digit; empty parses as 0. */
static bool parse_digits(struct nsq_slice s, int64_t *out)
{
    int64_t v = 0;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char ch = (unsigned char)s.ptr[i];
        if (ch < '0' || ch > '9')
            return false;
        if (v < INT64_MAX / 10)
            v = v * 10 + (ch - '0');
    }
    *out = v;
    return true;
}

/*
 * Per-publish TTL: an optional trailing parameter in milliseconds, `PUB <topic> [<ttl>]`,
 * `MPUB <topic> [<ttl>]`, `DPUB <topic> <defer> [<ttl>]` (topic_limits.h). Old clients never
 * send it; upstream ignores it. Absent or 0 = none. Reads params[idx]; false after a fatal error.
 */
static bool ttl_param(struct client *c, struct nsq_command *cmd, size_t idx, const char *name,
                      uint32_t *ttl_ms)
{
    int64_t ms = 0;
    *ttl_ms = 0;
    /* A parameter that is not a number is ignored, as upstream ignores extra parameters. */
    if (cmd->nparams <= idx || !parse_digits(cmd->params[idx], &ms))
        return true;
    if (ms > (int64_t)TOPIC_MAX_MSG_TTL_MS) {
        fatal(c, "E_INVALID %s ttl %lld out of range 0-%lld", name, (long long)ms,
              (long long)TOPIC_MAX_MSG_TTL_MS);
        return false;
    }
    *ttl_ms = (uint32_t)ms;
    return true;
}

/* A publish refused by a topic's max_depth (policy reject) is not fatal: the connection stays
   usable and the producer may retry. */
static void pub_failed(struct client *c, const char *name, int rc)
{
    if (rc == -ENOSPC) {
        nonfatal(c, "E_%s_FAILED %s failed topic max depth reached", name, name);
        return;
    }
    fatal(c, "E_%s_FAILED %s failed %s", name, name, rc == -ESHUTDOWN ? "exiting" : strerror(-rc));
}

static bool auth_enabled(const struct client *c)
{
    return c->n->opts->auth_http_addresses.len > 0;
}

/* ---- authorization (tcp-protocol.md §4.2) ----
 * While an auth server is being asked, the connection is paused: reading stops, the command that
 * needed the answer is kept (its line and body stay valid in the parser, which is not called
 * meanwhile) and runs again once the answer is in. */

enum auth_check { AUTH_OK, AUTH_DENIED, AUTH_WAIT };
enum auth_stage { AUTH_STAGE_AUTH, AUTH_STAGE_LINE, AUTH_STAGE_BODY };

static void on_line(struct client *c, struct nsq_command *cmd);
static void on_body(struct client *c, struct nsq_command *cmd, struct evbuffer *in);
static void auth_done(struct nsqd_auth_state *state, void *arg);

static bool auth_start(struct client *c, struct nsq_command *cmd, int stage)
{
    char host[NSQ_NET_ADDRSTRLEN] = "";
    int port;
    if (nsq_split_host_port(c->remote_addr, host, sizeof(host), &port) != 0)
        host[0] = '\0';
    char cn[256] = "";
    if (c->ssl)
        nsq_tls_peer_common_name(c->ssl, cn, sizeof(cn));
    struct nsqd_auth_request req = {
            .secret = c->auth_secret,
            .secret_len = c->auth_secret_len,
            .remote_ip = host,
            .common_name = cn,
            .tls = c->tls,
    };
    c->auth_cmd = *cmd;
    c->auth_stage = stage;
    c->auth_wait = true;
    c->busy++; /* keeps c allocated until auth_done */
    bufferevent_disable(c->bev, EV_READ);
    if (nsqd_auth_query(c->n, &req, auth_done, c) != 0) {
        c->busy--;
        c->auth_wait = false;
        fatal(c, "E_AUTH_FAILED AUTH failed");
        return false;
    }
    return true;
}

/* CheckAuth for SUB (subscribe) and the publishes (channel ""). */
static int check_auth(struct client *c, struct nsq_command *cmd, int stage, const char *name,
                      const char *topic, const char *channel, bool subscribe)
{
    if (!auth_enabled(c))
        return AUTH_OK;
    if (!c->auth) {
        fatal(c, "E_AUTH_FIRST AUTH required before %s", name);
        return AUTH_DENIED;
    }
    if (nsqd_auth_expired(c->auth))
        return auth_start(c, cmd, stage) ? AUTH_WAIT : AUTH_DENIED;
    if (!nsqd_auth_allows(c->auth, topic, channel, subscribe)) {
        char *qt = nsq_goquote_dup(topic, strlen(topic));
        char *qc = nsq_goquote_dup(channel, strlen(channel));
        fatal(c, "E_UNAUTHORIZED AUTH failed for %s on %s %s", name, qt ? qt : "", qc ? qc : "");
        free(qt);
        free(qc);
        return AUTH_DENIED;
    }
    return AUTH_OK;
}

static void auth_reply(struct client *c)
{
    struct evbuffer *out = evbuffer_new();
    if (!out) {
        fatal(c, "E_AUTH_ERROR AUTH error out of memory");
        return;
    }
    struct nsq_json j;
    nsq_json_init(&j, out);
    nsq_json_object_begin(&j);
    nsq_json_kv_string(&j, "identity", c->auth->identity);
    nsq_json_kv_string(&j, "identity_url", c->auth->identity_url);
    nsq_json_kv_int(&j, "permission_count", (int64_t)c->auth->n_items);
    nsq_json_object_end(&j);
    size_t len = evbuffer_get_length(out);
    client_send_response(c, evbuffer_pullup(out, -1), len);
    evbuffer_free(out);
}

static void auth_done(struct nsqd_auth_state *state, void *arg)
{
    struct client *c = arg;
    c->auth_wait = false;
    if (c->closed || c->close_after_flush) {
        nsqd_auth_state_free(state);
        c->busy--;
        client_maybe_free(c);
        return;
    }
    if (!state) {
        fatal(c, "E_AUTH_FAILED AUTH failed");
    } else if (c->auth_stage == AUTH_STAGE_AUTH && state->n_items == 0) {
        nsqd_auth_state_free(state);
        fatal(c, "E_UNAUTHORIZED AUTH no authorizations found");
    } else {
        nsqd_auth_state_free(c->auth);
        c->auth = state;
        struct evbuffer *in = bufferevent_get_input(c->bev);
        if (c->auth_stage == AUTH_STAGE_AUTH) {
            auth_reply(c);
        } else if (c->auth_stage == AUTH_STAGE_LINE) {
            on_line(c, &c->auth_cmd);
        } else {
            c->pending_cmd = c->auth_pending_cmd;
            on_body(c, &c->auth_cmd, in);
        }
        if (!c->closed && !c->close_after_flush && !c->auth_wait && !c->journal_wait && c->bev) {
            bufferevent_enable(c->bev, EV_READ);
            protocol_v2_read(c); /* what arrived meanwhile */
        }
    }
    c->busy--;
    client_maybe_free(c);
}

/* ---- held OK: a publish's OK waits until what it wrote is on disk: its diskqueue records
   (ack_wait.h, with --sync-every=1), then its journal records (journal.h: messages a durable
   channel delivered or deferred). Reading stops meanwhile, so responses keep the command order.
   The state of the wait is in the client (held_*): one publish at a time per connection. ---- */

static void held_ok_send(void *arg)
{
    struct client *c = arg;
    c->journal_wait = false;
    if (!c->closed && !c->close_after_flush && c->bev) {
        client_send_response(c, ok_text, 2);
        bufferevent_enable(c->bev, EV_READ);
        protocol_v2_read(c); /* what arrived meanwhile */
    }
    c->busy--;
    client_maybe_free(c);
}

static void held_ok_drop(void *arg)
{
    struct client *c = arg;
    c->journal_wait = false;
    c->busy--;
    client_maybe_free(c);
}

/* The OK is held: stop reading until held_ok_send or held_ok_drop runs. */
static void hold_ok(struct client *c)
{
    c->journal_wait = true;
    c->busy++; /* keeps c allocated until the callback */
    bufferevent_disable(c->bev, EV_READ);
}

/* ack_wait_fn: the diskqueue records are synced (err NULL), then the journal records are waited
   for; or a queue failed to write one, and the publish fails as a failed put would have. */
static void held_pub_synced(void *arg, const char *err)
{
    struct client *c = arg;
    if (err) {
        nsqd_set_health(c->n, err);
        c->journal_wait = false;
        if (!c->closed && !c->close_after_flush && c->bev)
            fatal(c, "E_%s_FAILED %s failed %s", c->held_cmd, c->held_cmd, err);
        c->busy--;
        client_maybe_free(c);
        return;
    }
    /* still held (journal_wait, busy) until the journal has its records on disk too */
    if (c->held_journal_seq && !c->closed &&
        journal_when_done(c->n->journal, c->held_journal_seq, NULL, held_ok_send, c,
                          held_ok_drop) == 0)
        return;
    held_ok_send(c);
}

/* Starts a publish: collects the records it will write. Returns the journal position before it. */
static uint64_t pub_begin(struct client *c)
{
    if (c->n->ack_wait)
        ack_wait_begin(c->n->ack_wait);
    return c->n->journal ? journal_last_seq(c->n->journal) : 0;
}

/* A failed publish: no OK to hold. */
static void pub_abort(struct client *c)
{
    if (c->n->ack_wait)
        ack_wait_abort(c->n->ack_wait);
}

/* Ends a successful publish (cmd "PUB", "MPUB" or "DPUB"; journal_seq0 from pub_begin): holds its
   OK while some of its records are not durable. Returns false when there is nothing to wait for
   (or no memory to wait with): reply at once. */
static bool pub_hold_ok(struct client *c, const char *cmd, uint64_t journal_seq0)
{
    struct nsqd *n = c->n;
    uint64_t jseq = n->journal ? journal_last_seq(n->journal) : 0;
    c->held_journal_seq = jseq != journal_seq0 ? jseq : 0;
    c->held_cmd = cmd;
    if (n->ack_wait && ack_wait_end(n->ack_wait, held_pub_synced, held_ok_drop, c)) {
        hold_ok(c);
        return true;
    }
    if (c->held_journal_seq && journal_when_done(n->journal, c->held_journal_seq, NULL,
                                                 held_ok_send, c, held_ok_drop) == 0) {
        hold_ok(c);
        return true;
    }
    return false;
}

static bool tls_gate(struct client *c, struct nsq_slice name)
{
    if (c->n->opts->tls_required == NSQD_TLS_NOT_REQUIRED || c->tls || slice_eq(name, "IDENTIFY"))
        return true;
    char buf[64];
    fatal(c, "E_INVALID cannot %s in current state (TLS required)",
          slice_str(name, buf, sizeof(buf)));
    return false;
}

/* ---- commands without a body ---- */

static void cmd_nop(struct client *c, struct nsq_command *cmd)
{
}

static void cmd_rdy(struct client *c, struct nsq_command *cmd)
{
    if (c->state == CLIENT_STATE_CLOSING)
        return;
    if (c->state != CLIENT_STATE_SUBSCRIBED) {
        fatal(c, "E_INVALID cannot RDY in current state");
        return;
    }
    int64_t count = 1;
    if (cmd->nparams >= 1 && !parse_digits(cmd->params[0], &count)) {
        char buf[NSQ_MAX_LINE];
        fatal(c, "E_INVALID RDY could not parse count %s",
              slice_str(cmd->params[0], buf, sizeof(buf)));
        return;
    }
    int64_t max = c->n->opts->max_rdy_count;
    if (count < 0 || count > max) {
        fatal(c, "E_INVALID RDY count %lld out of range 0-%lld", (long long)count, (long long)max);
        return;
    }
    c->rdy = count;
    channel_client_ready_changed(c->channel, c);
}

/* Common checks of FIN/REQ/TOUCH; returns false after a fatal error. */
static bool msg_cmd_checks(struct client *c, struct nsq_command *cmd, const char *name,
                           size_t min_params)
{
    if (c->state != CLIENT_STATE_SUBSCRIBED && c->state != CLIENT_STATE_CLOSING) {
        fatal(c, "E_INVALID cannot %s in current state", name);
        return false;
    }
    if (cmd->nparams < min_params) {
        fatal(c, "E_INVALID %s insufficient number of params", name);
        return false;
    }
    if (cmd->params[0].len != NSQ_MSG_ID_LEN) {
        fatal(c, "E_INVALID invalid message ID");
        return false;
    }
    return true;
}

static void cmd_fin(struct client *c, struct nsq_command *cmd)
{
    if (!msg_cmd_checks(c, cmd, "FIN", 1))
        return;
    int rc = channel_finish(c->channel, c, cmd->params[0].ptr);
    if (rc)
        nonfatal(c, "E_FIN_FAILED FIN %.16s failed %s", cmd->params[0].ptr, channel_strerror(rc));
}

static void cmd_req(struct client *c, struct nsq_command *cmd)
{
    if (!msg_cmd_checks(c, cmd, "REQ", 2))
        return;
    int64_t ms;
    if (!parse_digits(cmd->params[1], &ms)) {
        char buf[NSQ_MAX_LINE];
        fatal(c, "E_INVALID REQ could not parse timeout %s",
              slice_str(cmd->params[1], buf, sizeof(buf)));
        return;
    }
    int64_t max = c->n->opts->max_req_timeout;
    int64_t timeout = ms > INT64_MAX / NSQ_NS_PER_MS ? INT64_MAX : ms * NSQ_NS_PER_MS;
    if (timeout > max) {
        nsq_info("PROTOCOL(V2): [%s] REQ timeout %lld out of range 0-%lld. Setting to %lld",
                 c->remote_addr, (long long)ms, (long long)(max / NSQ_NS_PER_MS),
                 (long long)(max / NSQ_NS_PER_MS));
        timeout = max;
    }
    int rc = channel_requeue(c->channel, c, cmd->params[0].ptr, timeout);
    if (rc)
        nonfatal(c, "E_REQ_FAILED REQ %.16s failed %s", cmd->params[0].ptr, channel_strerror(rc));
}

static void cmd_touch(struct client *c, struct nsq_command *cmd)
{
    if (!msg_cmd_checks(c, cmd, "TOUCH", 1))
        return;
    int rc = channel_touch(c->channel, c, cmd->params[0].ptr, c->msg_timeout_ns);
    if (rc)
        nonfatal(c, "E_TOUCH_FAILED TOUCH %.16s failed %s", cmd->params[0].ptr,
                 channel_strerror(rc));
}

static void cmd_cls(struct client *c, struct nsq_command *cmd)
{
    if (c->state != CLIENT_STATE_SUBSCRIBED) {
        fatal(c, "E_INVALID cannot CLS in current state");
        return;
    }
    c->rdy = 0;
    c->state = CLIENT_STATE_CLOSING;
    channel_client_ready_changed(c->channel, c);
    client_send_response(c, "CLOSE_WAIT", strlen("CLOSE_WAIT"));
}

static void cmd_sub(struct client *c, struct nsq_command *cmd)
{
    char q[NSQ_MAX_LINE];
    if (c->state != CLIENT_STATE_INIT) {
        fatal(c, "E_INVALID cannot SUB in current state");
        return;
    }
    if (c->heartbeat_interval_ns <= 0) {
        fatal(c, "E_INVALID cannot SUB with heartbeats disabled");
        return;
    }
    if (cmd->nparams < 2) {
        fatal(c, "E_INVALID SUB insufficient number of parameters");
        return;
    }
    struct nsq_slice ts = cmd->params[0], cs = cmd->params[1];
    if (!nsq_topic_name_valid(ts.ptr, ts.len)) {
        fatal(c, "E_BAD_TOPIC SUB topic name %s is not valid", quote(ts, q, sizeof(q)));
        return;
    }
    if (!nsq_channel_name_valid(cs.ptr, cs.len)) {
        fatal(c, "E_BAD_CHANNEL SUB channel name %s is not valid", quote(cs, q, sizeof(q)));
        return;
    }
    char tname[NSQ_NAME_MAX_LEN + 1], cname[NSQ_NAME_MAX_LEN + 1];
    slice_str(ts, tname, sizeof(tname));
    slice_str(cs, cname, sizeof(cname));
    if (check_auth(c, cmd, AUTH_STAGE_LINE, "SUB", tname, cname, true) != AUTH_OK)
        return;
    struct topic *t = nsqd_get_topic(c->n, tname);
    struct channel *ch = t ? topic_get_channel(t, cname) : NULL;
    if (!ch) {
        fatal(c, "E_SUB_FAILED SUB failed exiting");
        return;
    }
    int rc = channel_add_client(ch, c);
    if (rc == -EUSERS) {
        fatal(c, "E_SUB_FAILED SUB failed consumers for %s:%s exceeds limit of %d", tname, cname,
              c->n->opts->max_channel_consumers);
        return;
    }
    if (rc) {
        fatal(c, "E_SUB_FAILED SUB failed exiting");
        return;
    }
    c->state = CLIENT_STATE_SUBSCRIBED;
    client_send_response(c, ok_text, 2);
}

/* ---- commands with a body: the line step ---- */

static void cmd_identify_line(struct client *c, struct nsq_command *cmd)
{
    if (c->state != CLIENT_STATE_INIT) {
        fatal(c, "E_INVALID cannot IDENTIFY in current state");
        return;
    }
    c->pending_cmd = PENDING_IDENTIFY;
    nsq_parser_want_size(c->parser);
}

static void cmd_auth_line(struct client *c, struct nsq_command *cmd)
{
    if (c->state != CLIENT_STATE_INIT) {
        fatal(c, "E_INVALID cannot AUTH in current state");
        return;
    }
    if (cmd->nparams != 0) {
        fatal(c, "E_INVALID AUTH invalid number of parameters");
        return;
    }
    c->pending_cmd = PENDING_AUTH;
    nsq_parser_want_size(c->parser);
}

static void cmd_pub_line(struct client *c, struct nsq_command *cmd)
{
    char q[NSQ_MAX_LINE];
    if (cmd->nparams < 1) {
        fatal(c, "E_INVALID PUB insufficient number of parameters");
        return;
    }
    if (!nsq_topic_name_valid(cmd->params[0].ptr, cmd->params[0].len)) {
        fatal(c, "E_BAD_TOPIC PUB topic name %s is not valid", quote(cmd->params[0], q, sizeof(q)));
        return;
    }
    uint32_t ttl_ms;
    if (!ttl_param(c, cmd, 1, "PUB", &ttl_ms))
        return;
    c->pending_cmd = PENDING_PUB;
    nsq_parser_want_size(c->parser);
}

static void cmd_mpub_line(struct client *c, struct nsq_command *cmd)
{
    char q[NSQ_MAX_LINE];
    if (cmd->nparams < 1) {
        fatal(c, "E_INVALID MPUB insufficient number of parameters");
        return;
    }
    if (!nsq_topic_name_valid(cmd->params[0].ptr, cmd->params[0].len)) {
        fatal(c, "E_BAD_TOPIC E_BAD_TOPIC MPUB topic name %s is not valid",
              quote(cmd->params[0], q, sizeof(q)));
        return;
    }
    uint32_t ttl_ms;
    if (!ttl_param(c, cmd, 1, "MPUB", &ttl_ms))
        return;
    char tname[NSQ_NAME_MAX_LEN + 1];
    slice_str(cmd->params[0], tname, sizeof(tname));
    if (check_auth(c, cmd, AUTH_STAGE_LINE, "MPUB", tname, "", false) != AUTH_OK)
        return;
    nsqd_get_topic(c->n, tname);
    c->pending_cmd = PENDING_MPUB;
    nsq_parser_want_size(c->parser);
}

static void cmd_dpub_line(struct client *c, struct nsq_command *cmd)
{
    char q[NSQ_MAX_LINE];
    if (cmd->nparams < 2) {
        fatal(c, "E_INVALID DPUB insufficient number of parameters");
        return;
    }
    if (!nsq_topic_name_valid(cmd->params[0].ptr, cmd->params[0].len)) {
        fatal(c, "E_BAD_TOPIC DPUB topic name %s is not valid",
              quote(cmd->params[0], q, sizeof(q)));
        return;
    }
    int64_t ms;
    if (!parse_digits(cmd->params[1], &ms)) {
        fatal(c, "E_INVALID DPUB could not parse timeout %s",
              slice_str(cmd->params[1], q, sizeof(q)));
        return;
    }
    int64_t max_ms = nsqd_max_defer_timeout(c->n->opts) / NSQ_NS_PER_MS;
    if (ms > max_ms) {
        fatal(c, "E_INVALID DPUB timeout %lld out of range 0-%lld", (long long)ms,
              (long long)max_ms);
        return;
    }
    uint32_t ttl_ms;
    if (!ttl_param(c, cmd, 2, "DPUB", &ttl_ms))
        return;
    c->pending_cmd = PENDING_DPUB;
    nsq_parser_want_size(c->parser);
}

/* ---- the size step ---- */

static void on_body_size(struct client *c, int32_t size)
{
    const struct nsqd_options *o = c->n->opts;
    long long max_body = (long long)o->max_body_size, max_msg = (long long)o->max_msg_size;
    switch (c->pending_cmd) {
    case PENDING_IDENTIFY:
    case PENDING_AUTH: {
        const char *name = c->pending_cmd == PENDING_IDENTIFY ? "IDENTIFY" : "AUTH";
        if (size > max_body) {
            fatal(c, "E_BAD_BODY %s body too big %d > %lld", name, size, max_body);
            return;
        }
        if (size <= 0) {
            fatal(c, "E_BAD_BODY %s invalid body size %d", name, size);
            return;
        }
        break;
    }
    case PENDING_PUB:
    case PENDING_DPUB: {
        const char *name = c->pending_cmd == PENDING_PUB ? "PUB" : "DPUB";
        if (size <= 0) {
            fatal(c, "E_BAD_MESSAGE %s invalid message body size %d", name, size);
            return;
        }
        if (size > max_msg) {
            fatal(c, "E_BAD_MESSAGE %s message too big %d > %lld", name, size, max_msg);
            return;
        }
        break;
    }
    case PENDING_MPUB:
        if (size <= 0) {
            fatal(c, "E_BAD_BODY MPUB invalid body size %d", size);
            return;
        }
        if (size > max_body) {
            fatal(c, "E_BAD_BODY MPUB body too big %d > %lld", size, max_body);
            return;
        }
        break;
    default:
        client_close(c);
        return;
    }
    c->pending_body = true;
    nsq_parser_want_body(c->parser, (size_t)size);
}

/* ---- the body step ---- */

/* Reads an optional integer field of the IDENTIFY JSON. Returns false on a type error. */
static bool json_int(const cJSON *obj, const char *key, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItem(obj, key);
    if (!v || cJSON_IsNull(v))
        return true;
    if (!cJSON_IsNumber(v))
        return false;
    double d = v->valuedouble;
    /* Go's decoder rejects what does not fit an int (and fractions). */
    if (!(d >= -9.2e18 && d <= 9.2e18) || d != (double)(int64_t)d)
        return false;
    *out = (int64_t)d;
    return true;
}

static bool json_bool(const cJSON *obj, const char *key, bool *out)
{
    const cJSON *v = cJSON_GetObjectItem(obj, key);
    if (!v || cJSON_IsNull(v))
        return true;
    if (!cJSON_IsBool(v))
        return false;
    *out = cJSON_IsTrue(v);
    return true;
}

static bool json_str(const cJSON *obj, const char *key, char **out)
{
    const cJSON *v = cJSON_GetObjectItem(obj, key);
    if (!v || cJSON_IsNull(v))
        return true;
    if (!cJSON_IsString(v))
        return false;
    char *s = strdup(v->valuestring);
    if (!s)
        return false;
    free(*out);
    *out = s;
    return true;
}

struct identify_data {
    char *client_id, *hostname, *user_agent, *topology_zone, *topology_region;
    int64_t heartbeat_interval, output_buffer_size, output_buffer_timeout, sample_rate, msg_timeout,
            deflate_level;
    bool feature_negotiation, tls_v1, snappy, deflate;
};

static bool identify_decode(const uint8_t *body, size_t len, struct identify_data *d)
{
    cJSON *root = cJSON_ParseWithLength((const char *)body, len);
    if (!root)
        return false;
    bool ok = cJSON_IsObject(root) && json_str(root, "client_id", &d->client_id) &&
              json_str(root, "hostname", &d->hostname) &&
              json_str(root, "user_agent", &d->user_agent) &&
              json_str(root, "topology_zone", &d->topology_zone) &&
              json_str(root, "topology_region", &d->topology_region) &&
              json_int(root, "heartbeat_interval", &d->heartbeat_interval) &&
              json_int(root, "output_buffer_size", &d->output_buffer_size) &&
              json_int(root, "output_buffer_timeout", &d->output_buffer_timeout) &&
              json_int(root, "sample_rate", &d->sample_rate) &&
              json_int(root, "msg_timeout", &d->msg_timeout) &&
              json_int(root, "deflate_level", &d->deflate_level) &&
              json_bool(root, "feature_negotiation", &d->feature_negotiation) &&
              json_bool(root, "tls_v1", &d->tls_v1) && json_bool(root, "snappy", &d->snappy) &&
              json_bool(root, "deflate", &d->deflate);
    cJSON_Delete(root);
    return ok;
}

/* Takes the consumer's topology_zone / topology_region and classifies it (topology.h). */
static void identify_topology(struct client *c, struct identify_data *d)
{
    if (d->topology_zone) {
        free(c->topology_zone);
        c->topology_zone = d->topology_zone;
        d->topology_zone = NULL;
    }
    if (d->topology_region) {
        free(c->topology_region);
        c->topology_region = d->topology_region;
        d->topology_region = NULL;
    }
    c->topology_class = topology_classify(c->n->opts, c->topology_zone, c->topology_region);
}

/* Applies the IDENTIFY settings in upstream's order; returns false after a fatal error. */
static bool identify_apply(struct client *c, struct identify_data *d)
{
    const struct nsqd_options *o = c->n->opts;
    if (d->client_id) {
        free(c->client_id);
        c->client_id = d->client_id;
        d->client_id = NULL;
    }
    if (d->hostname) {
        free(c->hostname);
        c->hostname = d->hostname;
        d->hostname = NULL;
    }
    if (d->user_agent) {
        free(c->user_agent);
        c->user_agent = d->user_agent;
        d->user_agent = NULL;
    }
    identify_topology(c, d);
    int64_t hb = d->heartbeat_interval;
    if (hb == -1) {
        c->heartbeat_interval_ns = 0;
    } else if (hb == 0) {
        /* keep the default */
    } else if (hb >= 1000 && hb <= o->max_heartbeat_interval / NSQ_NS_PER_MS) {
        c->heartbeat_interval_ns = hb * NSQ_NS_PER_MS;
    } else {
        fatal(c, "E_BAD_BODY IDENTIFY heartbeat interval (%lld) is invalid", (long long)hb);
        return false;
    }
    int64_t obt = d->output_buffer_timeout, obs = d->output_buffer_size;
    int64_t timeout_ns = c->output_buffer_timeout_ns;
    if (obt == -1) {
        timeout_ns = 0;
    } else if (obt == 0) {
        /* keep */
    } else if (obt >= o->min_output_buffer_timeout / NSQ_NS_PER_MS &&
               obt <= o->max_output_buffer_timeout / NSQ_NS_PER_MS) {
        timeout_ns = obt * NSQ_NS_PER_MS;
    } else {
        fatal(c, "E_BAD_BODY IDENTIFY output buffer timeout (%lld) is invalid", (long long)obt);
        return false;
    }
    int size = c->output_buffer_size;
    if (obs == -1) {
        size = 1;
        timeout_ns = 0;
    } else if (obs == 0) {
        /* keep */
    } else if (obs >= 64 && obs <= o->max_output_buffer_size) {
        size = (int)obs;
    } else {
        fatal(c, "E_BAD_BODY IDENTIFY output buffer size (%lld) is invalid", (long long)obs);
        return false;
    }
    c->output_buffer_size = size;
    c->output_buffer_timeout_ns = timeout_ns;
    if (d->sample_rate < 0 || d->sample_rate > 99) {
        fatal(c, "E_BAD_BODY IDENTIFY sample rate (%lld) is invalid", (long long)d->sample_rate);
        return false;
    }
    c->sample_rate = (int)d->sample_rate;
    int64_t mt = d->msg_timeout;
    if (mt == 0) {
        /* keep */
    } else if (mt >= 1000 && mt <= o->max_msg_timeout / NSQ_NS_PER_MS) {
        c->msg_timeout_ns = mt * NSQ_NS_PER_MS;
    } else {
        fatal(c, "E_BAD_BODY IDENTIFY msg timeout (%lld) is invalid", (long long)mt);
        return false;
    }
    return true;
}

static void identify_free(struct identify_data *d)
{
    free(d->client_id);
    free(d->hostname);
    free(d->user_agent);
    free(d->topology_zone);
    free(d->topology_region);
}

/* Switches the connection to a compression filter and sends the "OK" through it. */
static bool upgrade_codec(struct client *c, int kind, int level)
{
    struct bufferevent *f = nsq_codec_filter_new(c->bev, kind, level, BEV_OPT_CLOSE_ON_FREE);
    if (!f) {
        fatal(c, "E_IDENTIFY_FAILED IDENTIFY failed unable to set up compression");
        return false;
    }
    client_install_bev(c, f);
    nsq_codec_filter_resume(f);
    client_send_response(c, ok_text, 2);
    return true;
}

/* Starts the TLS handshake (nsqd is the server) over the connection and queues the "OK" that is
   sent inside TLS once the handshake completes. */
static bool upgrade_tls(struct client *c)
{
    SSL *ssl = SSL_new(c->n->tls_ctx);
    struct bufferevent *f =
            ssl ? bufferevent_openssl_filter_new(c->n->base, c->bev, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                 BEV_OPT_CLOSE_ON_FREE)
                : NULL;
    if (!f) {
        if (ssl)
            SSL_free(ssl);
        fatal(c, "E_IDENTIFY_FAILED IDENTIFY failed unable to set up TLS");
        return false;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(f, 1);
    client_install_bev(c, f);
    /* The handshake has its own deadline; the usual ones return once it completes
       (BEV_EVENT_CONNECTED, client.c). */
    struct timeval hs = {NSQD_TLS_HANDSHAKE_TIMEOUT_NS / NSQ_NS_PER_SEC, 0};
    bufferevent_set_timeouts(f, &hs, &hs);
    c->tls_handshaking = true;
    c->ssl = ssl;
    c->tls = true;
    client_send_response(c, ok_text, 2);
    return true;
}

/* Sends the IDENTIFY answer head (an object left open) with this nsqd's topology_region and
   topology_zone appended, as upstream's topology experiment answers. */
static void send_identify_with_topology(struct client *c, const char *head, size_t len)
{
    const struct nsqd_options *o = c->n->opts;
    struct evbuffer *out = evbuffer_new();
    if (!out) {
        fatal(c, "E_IDENTIFY_FAILED IDENTIFY failed out of memory");
        return;
    }
    struct nsq_json j;
    evbuffer_add(out, head, len);
    evbuffer_add_printf(out, ",\"topology_region\":");
    nsq_json_init(&j, out);
    nsq_json_string(&j, o->topology_region);
    evbuffer_add_printf(out, ",\"topology_zone\":");
    nsq_json_init(&j, out);
    nsq_json_string(&j, o->topology_zone);
    evbuffer_add(out, "}", 1);
    size_t n = evbuffer_get_length(out);
    client_send_response(c, evbuffer_pullup(out, -1), n);
    evbuffer_free(out);
}

static void body_identify(struct client *c, struct nsq_command *cmd)
{
    struct identify_data d = {.deflate_level = 0};
    if (!identify_decode(cmd->body, cmd->body_len, &d)) {
        identify_free(&d);
        fatal(c, "E_BAD_BODY IDENTIFY failed to decode JSON body");
        return;
    }
    if (!identify_apply(c, &d)) {
        identify_free(&d);
        return;
    }
    identify_free(&d);
    c->identified = true;
    client_apply_timeouts(c);
    if (!d.feature_negotiation) {
        client_send_response(c, ok_text, 2);
        return;
    }
    const struct nsqd_options *o = c->n->opts;
    bool tls = d.tls_v1 && c->n->tls_ctx != NULL;
    bool deflate = o->deflate && d.deflate;
    int level = NSQD_DEFAULT_DEFLATE_LEVEL;
    if (deflate && d.deflate_level > 0)
        level = (int)d.deflate_level;
    if (level > o->max_deflate_level)
        level = o->max_deflate_level;
    bool snappy = o->snappy && d.snappy;
    if (deflate && snappy) {
        fatal(c, "E_IDENTIFY_FAILED cannot enable both deflate and snappy compression");
        return;
    }
    char buf[512];
    int n = snprintf(buf, sizeof(buf),
                     "{\"max_rdy_count\":%lld,\"version\":\"%s\",\"max_msg_timeout\":%lld,"
                     "\"msg_timeout\":%lld,\"tls_v1\":%s,\"deflate\":%s,\"deflate_level\":%d,"
                     "\"max_deflate_level\":%d,\"snappy\":%s,\"sample_rate\":%d,"
                     "\"auth_required\":%s,\"output_buffer_size\":%d,"
                     "\"output_buffer_timeout\":%lld%s",
                     (long long)o->max_rdy_count, NSQ_VERSION,
                     (long long)(o->max_msg_timeout / NSQ_NS_PER_MS),
                     (long long)(c->msg_timeout_ns / NSQ_NS_PER_MS), tls ? "true" : "false",
                     deflate ? "true" : "false", level, o->max_deflate_level,
                     snappy ? "true" : "false", c->sample_rate, auth_enabled(c) ? "true" : "false",
                     c->output_buffer_size,
                     (long long)(c->output_buffer_timeout_ns / NSQ_NS_PER_MS),
                     topology_configured(o) ? "" : "}");
    if (topology_configured(o))
        send_identify_with_topology(c, buf, (size_t)n);
    else
        client_send_response(c, buf, (size_t)n);
    if (tls && !upgrade_tls(c))
        return;
    if (snappy) {
        if (!upgrade_codec(c, NSQ_CODEC_SNAPPY, 0))
            return;
        c->snappy = true;
    } else if (deflate) {
        if (!upgrade_codec(c, NSQ_CODEC_DEFLATE, level))
            return;
        c->deflate = true;
        c->deflate_level = level;
    }
}

static void body_auth(struct client *c, struct nsq_command *cmd)
{
    if (c->auth) {
        fatal(c, "E_INVALID AUTH already set");
        return;
    }
    if (!auth_enabled(c)) {
        fatal(c, "E_AUTH_DISABLED AUTH disabled");
        return;
    }
    free(c->auth_secret);
    c->auth_secret = malloc(cmd->body_len ? cmd->body_len : 1);
    if (!c->auth_secret) {
        fatal(c, "E_AUTH_ERROR AUTH error out of memory");
        return;
    }
    memcpy(c->auth_secret, cmd->body, cmd->body_len);
    c->auth_secret_len = cmd->body_len;
    auth_start(c, cmd, AUTH_STAGE_AUTH);
}

static void body_pub(struct client *c, struct nsq_command *cmd, bool deferred)
{
    const char *name = deferred ? "DPUB" : "PUB";
    char tname[NSQ_NAME_MAX_LEN + 1];
    slice_str(cmd->params[0], tname, sizeof(tname));
    if (check_auth(c, cmd, AUTH_STAGE_BODY, name, tname, "", false) != AUTH_OK)
        return;
    int64_t defer_ns = 0;
    if (deferred) {
        int64_t ms = 0;
        parse_digits(cmd->params[1], &ms);
        defer_ns = ms * NSQ_NS_PER_MS;
    }
    uint32_t ttl_ms;
    ttl_param(c, cmd, deferred ? 2 : 1, name, &ttl_ms); /* validated with the line */
    struct topic *t = nsqd_get_topic(c->n, tname);
    uint64_t seq0 = pub_begin(c);
    int64_t now = 0;
    int rc =
            t ? topic_publish_ttl(t, cmd->body, cmd->body_len, defer_ns, ttl_ms, &now) : -ESHUTDOWN;
    if (rc) {
        pub_abort(c);
        pub_failed(c, name, rc);
        return;
    }
    client_count_pub(c, tname, 1);
    if (pub_hold_ok(c, name, seq0))
        return;
    client_send_response(c, ok_text, 2);
}

static void body_mpub(struct client *c, struct nsq_command *cmd, struct evbuffer *in)
{
    const struct nsqd_options *o = c->n->opts;
    struct nsq_mpub_iter it;
    int rc = nsq_mpub_validate(&it, cmd->body, cmd->body_len, o->max_body_size, o->max_msg_size);
    switch (rc) {
    case 0:
        break;
    case NSQ_MPUB_ERR_COUNT_READ:
        fatal(c, "E_BAD_BODY MPUB failed to read message count");
        return;
    case NSQ_MPUB_ERR_COUNT_INVALID:
        fatal(c, "E_BAD_BODY MPUB invalid message count %d", it.value);
        return;
    case NSQ_MPUB_ERR_SIZE_READ:
        fatal(c, "E_BAD_MESSAGE MPUB failed to read message(%d) body size", it.index);
        return;
    case NSQ_MPUB_ERR_SIZE_INVALID:
        fatal(c, "E_BAD_MESSAGE MPUB invalid message(%d) body size %d", it.index, it.value);
        return;
    case NSQ_MPUB_ERR_TOO_BIG:
        fatal(c, "E_BAD_MESSAGE MPUB message too big %d > %lld", it.value,
              (long long)o->max_msg_size);
        return;
    default:
        fatal(c, "E_BAD_MESSAGE MPUB failed to read message body");
        return;
    }
    char tname[NSQ_NAME_MAX_LEN + 1];
    slice_str(cmd->params[0], tname, sizeof(tname));
    struct topic *t = nsqd_get_topic(c->n, tname);
    if (!t) {
        fatal(c, "E_MPUB_FAILED MPUB failed exiting");
        return;
    }
    uint32_t ttl_ms;
    ttl_param(c, cmd, 1, "MPUB", &ttl_ms); /* validated with the line */
    if (topic_admit(t, (uint64_t)it.count) != 0) {
        if (it.left > 0)
            evbuffer_prepend(in, it.p, it.left);
        pub_failed(c, "MPUB", -ENOSPC);
        return;
    }
    nsq_mpub_begin(&it, cmd->body, cmd->body_len, o->max_body_size, o->max_msg_size);
    const uint8_t *msg;
    size_t len;
    uint64_t n = 0;
    int64_t now = 0; /* one clock reading for the whole batch */
    uint64_t seq0 = pub_begin(c);
    while ((rc = nsq_mpub_next(&it, &msg, &len)) == 1) {
        rc = topic_publish_admitted(t, msg, len, 0, ttl_ms, &now);
        if (rc) {
            pub_abort(c);
            pub_failed(c, "MPUB", rc);
            return;
        }
        n++;
    }
    /* Upstream reads the messages straight from the stream: bytes of the announced body that no
       message used are read as the next command. */
    if (it.left > 0)
        evbuffer_prepend(in, it.p, it.left);
    client_count_pub(c, tname, n);
    if (pub_hold_ok(c, "MPUB", seq0))
        return;
    client_send_response(c, ok_text, 2);
}

static void on_body(struct client *c, struct nsq_command *cmd, struct evbuffer *in)
{
    int pending = c->pending_cmd;
    c->pending_cmd = PENDING_NONE;
    c->pending_body = false;
    c->auth_pending_cmd = pending; /* what an auth re-query resumes */
    switch (pending) {
    case PENDING_IDENTIFY:
        body_identify(c, cmd);
        break;
    case PENDING_AUTH:
        body_auth(c, cmd);
        break;
    case PENDING_PUB:
        body_pub(c, cmd, false);
        break;
    case PENDING_DPUB:
        body_pub(c, cmd, true);
        break;
    case PENDING_MPUB:
        body_mpub(c, cmd, in);
        break;
    default:
        client_close(c);
    }
}

static void on_line(struct client *c, struct nsq_command *cmd)
{
    struct nsq_slice name = cmd->name;
    if (!tls_gate(c, name))
        return;
    /* Most frequent first. */
    if (slice_eq(name, "FIN"))
        cmd_fin(c, cmd);
    else if (slice_eq(name, "RDY"))
        cmd_rdy(c, cmd);
    else if (slice_eq(name, "PUB"))
        cmd_pub_line(c, cmd);
    else if (slice_eq(name, "MPUB"))
        cmd_mpub_line(c, cmd);
    else if (slice_eq(name, "REQ"))
        cmd_req(c, cmd);
    else if (slice_eq(name, "NOP"))
        cmd_nop(c, cmd);
    else if (slice_eq(name, "TOUCH"))
        cmd_touch(c, cmd);
    else if (slice_eq(name, "DPUB"))
        cmd_dpub_line(c, cmd);
    else if (slice_eq(name, "IDENTIFY"))
        cmd_identify_line(c, cmd);
    else if (slice_eq(name, "SUB"))
        cmd_sub(c, cmd);
    else if (slice_eq(name, "CLS"))
        cmd_cls(c, cmd);
    else if (slice_eq(name, "AUTH"))
        cmd_auth_line(c, cmd);
    else {
        char buf[NSQ_MAX_LINE];
        fatal(c, "E_INVALID invalid command %s", slice_str(name, buf, sizeof(buf)));
    }
}

void protocol_v2_read(struct client *c)
{
    while (!c->closed && !c->close_after_flush && !c->auth_wait && !c->journal_wait) {
        struct bufferevent *bev = c->bev;
        struct evbuffer *in = bufferevent_get_input(bev);
        if (!c->magic_ok) {
            char magic[V2_MAGIC_LEN];
            if (evbuffer_get_length(in) < V2_MAGIC_LEN)
                return;
            evbuffer_remove(in, magic, V2_MAGIC_LEN);
            if (memcmp(magic, V2_MAGIC, V2_MAGIC_LEN) != 0) {
                nsq_error("client(%s) bad protocol magic '%.4s'", c->remote_addr, magic);
                client_send_error(c, "E_BAD_PROTOCOL");
                client_close_after_flush(c);
                return;
            }
            nsq_info("TCP: new client(%s)", c->remote_addr);
            c->magic_ok = true;
            continue;
        }
        struct nsq_command cmd;
        int32_t size;
        switch (nsq_parser_next(c->parser, in, &cmd, &size)) {
        case NSQ_PARSE_NEED_MORE:
            return;
        case NSQ_PARSE_LINE_TOO_LONG:
        case NSQ_PARSE_NOMEM:
            client_close(c);
            return;
        case NSQ_PARSE_LINE:
            on_line(c, &cmd);
            break;
        case NSQ_PARSE_BODY_SIZE:
            on_body_size(c, size);
            break;
        case NSQ_PARSE_BODY:
            on_body(c, &cmd, in);
            break;
        }
        if (c->bev != bev)
            return; /* transport replaced (compression): the new one reads the rest */
    }
}

static const char *pending_name(int pending)
{
    switch (pending) {
    case PENDING_IDENTIFY:
        return "IDENTIFY";
    case PENDING_AUTH:
        return "AUTH";
    case PENDING_PUB:
        return "PUB";
    case PENDING_DPUB:
        return "DPUB";
    default:
        return "MPUB";
    }
}

bool protocol_v2_eof(struct client *c)
{
    if (!c->magic_ok || c->pending_cmd == PENDING_NONE || c->close_after_flush || !c->bev)
        return false;
    const char *name = pending_name(c->pending_cmd);
    bool message = c->pending_cmd == PENDING_PUB || c->pending_cmd == PENDING_DPUB;
    if (!c->pending_body) {
        if (message)
            fatal(c, "E_BAD_MESSAGE %s failed to read message body size", name);
        else
            fatal(c, "E_BAD_BODY %s failed to read body size", name);
        return true;
    }
    if (message) {
        fatal(c, "E_BAD_MESSAGE %s failed to read message body", name);
        return true;
    }
    if (c->pending_cmd != PENDING_MPUB) {
        fatal(c, "E_BAD_BODY %s failed to read body", name);
        return true;
    }
    /* MPUB is parsed as a stream upstream: the error names the first part that is missing. */
    const struct nsqd_options *o = c->n->opts;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t len = evbuffer_get_length(in);
    const uint8_t *data = len ? evbuffer_pullup(in, -1) : (const uint8_t *)"";
    struct nsq_mpub_iter it;
    int rc = nsq_mpub_validate(&it, data, len, o->max_body_size, o->max_msg_size);
    switch (rc) {
    case NSQ_MPUB_ERR_COUNT_READ:
        fatal(c, "E_BAD_BODY MPUB failed to read message count");
        break;
    case NSQ_MPUB_ERR_COUNT_INVALID:
        fatal(c, "E_BAD_BODY MPUB invalid message count %d", it.value);
        break;
    case NSQ_MPUB_ERR_SIZE_READ:
        fatal(c, "E_BAD_MESSAGE MPUB failed to read message(%d) body size", it.index);
        break;
    case NSQ_MPUB_ERR_SIZE_INVALID:
        fatal(c, "E_BAD_MESSAGE MPUB invalid message(%d) body size %d", it.index, it.value);
        break;
    case NSQ_MPUB_ERR_TOO_BIG:
        fatal(c, "E_BAD_MESSAGE MPUB message too big %d > %lld", it.value,
              (long long)o->max_msg_size);
        break;
    default:
        fatal(c, "E_BAD_MESSAGE MPUB failed to read message body");
        break;
    }
    return true;
}
