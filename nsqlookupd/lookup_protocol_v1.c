/*
 * lookup_protocol_v1: one state machine per connection, driven by bufferevent read callbacks.
 *
 *   MAGIC ──"  V1"──▶ LINE ──IDENTIFY──▶ BODY_SIZE ──▶ BODY ──▶ LINE ...
 *     └─ anything else: E_BAD_PROTOCOL, close
 *
 * Replies are appended to the bufferevent's output. After an error reply the connection stops
 * reading and is freed once the output has drained (CLOSING).
 */
#include "lookup_protocol_v1.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "nsq_frame.h"
#include "nsq_json.h"
#include "nsq_log.h"
#include "nsq_names.h"
#include "nsq_net.h"
#include "nsq_time.h"
#include "nsq_version.h"
#include "nsqlookupd.h"
#include "registration_db.h"

#define MAX_PARAMS           8   /* more are accepted and ignored; commands use at most two */
#define LOOKUP_V1_SHORT_LINE 512 /* lines shorter than this are parsed without an allocation */

enum conn_state { CONN_MAGIC, CONN_LINE, CONN_BODY_SIZE, CONN_BODY, CONN_CLOSING };

struct lookup_conn {
    struct nsqlookupd *ld;
    struct bufferevent *bev;
    enum conn_state state;
    uint32_t body_size;
    char addr[NSQ_NET_ADDRSTRLEN]; /* remote "ip:port" */
    struct lookup_peer *peer;      /* set by IDENTIFY (owned) */
    bool read_paused;              /* output above LOOKUP_V1_MAX_PENDING_OUTPUT */
    struct lookup_conn *prev, *next;
};

/* A command line split on single spaces (Go's strings.Split), pointing into a scratch copy. */
struct v1_cmd {
    size_t nparams; /* including the command name */
    const char *params[MAX_PARAMS];
};

static void conn_free(struct lookup_conn *c)
{
    struct nsqlookupd *ld = c->ld;
    if (c->peer != NULL) {
        size_t n = registration_db_remove_peer(ld->db, c->peer);
        if (n > 0)
            nsq_info("DB: client(%s) removed from %zu registrations", c->addr, n);
        lookup_peer_free(c->peer);
    }
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        ld->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    bufferevent_free(c->bev);
    free(c);
}

static void process_input(struct lookup_conn *c);

static void on_write_drained(struct bufferevent *bev, void *arg)
{
    struct lookup_conn *c = arg;
    if (c->read_paused && c->state != CONN_CLOSING) {
        c->read_paused = false;
        bufferevent_enable(bev, EV_READ);
        process_input(c); /* commands may be waiting in the input buffer */
    }
    if (c->state == CONN_CLOSING && evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
        nsq_info("CLIENT(%s): closing", c->addr);
        conn_free(c);
    }
}

static void send_reply(struct lookup_conn *c, const char *data, size_t len)
{
    if (nsq_frame_add_v1(bufferevent_get_output(c->bev), data, len) != 0)
        nsq_error("CLIENT(%s): failed to queue reply", c->addr);
}

/* Sends "<code> <text>" and closes once it is written (every V1 error is fatal). */
static void close_quietly(struct lookup_conn *c);
static void fail(struct lookup_conn *c, const char *code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void fail(struct lookup_conn *c, const char *code, const char *fmt, ...)
{
    /* the text may quote a whole command parameter: sized to fit, not truncated */
    char *desc = NULL, *text = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&desc, fmt, ap);
    va_end(ap);
    if (n < 0)
        desc = NULL; /* undefined after a failure */
    if (desc == NULL || asprintf(&text, "%s %s", code, desc) < 0) {
        free(desc);
        close_quietly(c);
        return;
    }
    nsq_error("PROTOCOL(V1): [%s] - %s", c->addr, text);
    send_reply(c, text, strlen(text));
    free(desc);
    free(text);
    close_quietly(c);
}

/* Stops reading; the connection is freed once its output has drained (see on_read). */
static void close_quietly(struct lookup_conn *c)
{
    c->state = CONN_CLOSING;
    bufferevent_disable(c->bev, EV_READ);
}

/* ---- commands ---- */

static void cmd_ping(struct lookup_conn *c)
{
    if (c->peer != NULL)
        c->peer->last_update_ns = nsq_now_ns();
    send_reply(c, "OK", 2);
}

/* Validates REGISTER/UNREGISTER params: topic [channel]. Returns false after failing. */
static bool topic_chan(struct lookup_conn *c, const char *name, const struct v1_cmd *cmd,
                       const char **topic, const char **channel)
{
    if (cmd->nparams < 2) {
        fail(c, "E_INVALID", "%s insufficient number of params", name);
        return false;
    }
    *topic = cmd->params[1];
    *channel = cmd->nparams >= 3 ? cmd->params[2] : "";
    if (!nsq_topic_name_valid(*topic, strlen(*topic))) {
        fail(c, "E_BAD_TOPIC", "%s topic name '%s' is not valid", name, *topic);
        return false;
    }
    if ((*channel)[0] != '\0' && !nsq_channel_name_valid(*channel, strlen(*channel))) {
        fail(c, "E_BAD_CHANNEL", "%s channel name '%s' is not valid", name, *channel);
        return false;
    }
    return true;
}

static void add_producer(struct lookup_conn *c, enum reg_category cat, const char *key,
                         const char *subkey)
{
    int rc = registration_db_add_producer(c->ld->db, cat, key, subkey, c->peer);
    if (rc > 0)
        nsq_info("DB: client(%s) REGISTER category:%s key:%s subkey:%s", c->addr,
                 registration_category_name(cat), key, subkey);
    else if (rc < 0)
        nsq_error("DB: client(%s) REGISTER category:%s key:%s subkey:%s failed: out of memory",
                  c->addr, registration_category_name(cat), key, subkey);
}

static void cmd_register(struct lookup_conn *c, const struct v1_cmd *cmd)
{
    const char *topic, *channel;
    if (c->peer == NULL) {
        fail(c, "E_INVALID", "client must IDENTIFY");
        return;
    }
    if (!topic_chan(c, "REGISTER", cmd, &topic, &channel))
        return;
    if (channel[0] != '\0')
        add_producer(c, REG_CHANNEL, topic, channel);
    add_producer(c, REG_TOPIC, topic, "");
    send_reply(c, "OK", 2);
}

static void cmd_unregister(struct lookup_conn *c, const struct v1_cmd *cmd)
{
    struct registration_db *db = c->ld->db;
    const char *topic, *channel;
    size_t left;
    if (c->peer == NULL) {
        fail(c, "E_INVALID", "client must IDENTIFY");
        return;
    }
    if (!topic_chan(c, "UNREGISTER", cmd, &topic, &channel))
        return;
    if (channel[0] != '\0') {
        if (registration_db_remove_producer(db, REG_CHANNEL, topic, channel, c->peer, &left))
            nsq_info("DB: client(%s) UNREGISTER category:channel key:%s subkey:%s", c->addr, topic,
                     channel);
        /* an ephemeral channel disappears with its last producer */
        if (left == 0 && nsq_name_is_ephemeral(channel, strlen(channel)))
            registration_db_remove_key(db, REG_CHANNEL, topic, channel);
    } else {
        /* a topic unregistration also drops the peer from the topic's channels; nsqd normally
           unregisters those first, hence the warning when something is removed here */
        size_t n = registration_db_remove_producer_channels(db, topic, c->peer);
        if (n > 0)
            nsq_warn("client(%s) unexpected UNREGISTER category:channel key:%s (%zu channels)",
                     c->addr, topic, n);
        if (registration_db_remove_producer(db, REG_TOPIC, topic, "", c->peer, &left))
            nsq_info("DB: client(%s) UNREGISTER category:topic key:%s subkey:", c->addr, topic);
        if (left == 0 && nsq_name_is_ephemeral(topic, strlen(topic)))
            registration_db_remove_key(db, REG_TOPIC, topic, "");
    }
    send_reply(c, "OK", 2);
}

/* Go's json.Unmarshal into a string field: absent/null keep "", other types are an error. */
static int json_string_field(const cJSON *obj, const char *key, char **out)
{
    const cJSON *v = cJSON_GetObjectItem(obj, key); /* case-insensitive, like Go */
    if (v == NULL || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsString(v))
        return -EINVAL;
    char *s = strdup(v->valuestring);
    if (s == NULL)
        return -ENOMEM;
    free(*out);
    *out = s;
    return 0;
}

/* Go's json.Unmarshal into an int field: integral numbers only. */
static int json_int_field(const cJSON *obj, const char *key, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItem(obj, key);
    if (v == NULL || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsNumber(v))
        return -EINVAL;
    double d = v->valuedouble;
    if (d != floor(d) || d < -9.2e18 || d > 9.2e18)
        return -EINVAL;
    *out = (int64_t)d;
    return 0;
}

/* ---- Go's rule for integer fields: the literal must have no fraction or exponent ---- */

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        p++;
    return p;
}

/* Skips a JSON string starting at its opening quote; returns the position after it. */
static const char *skip_string(const char *p, const char *end)
{
    for (p++; p < end && *p != '"'; p++)
        if (*p == '\\')
            p++;
    return p < end ? p + 1 : end;
}

/* Skips one JSON value (already validated by cJSON). */
static const char *skip_value(const char *p, const char *end)
{
    int depth = 0;
    do {
        if (p >= end)
            return end;
        if (*p == '"') {
            p = skip_string(p, end);
            continue;
        }
        if (*p == '{' || *p == '[')
            depth++;
        else if (*p == '}' || *p == ']')
            depth--;
        else if (depth == 0) {
            /* scalar at top level: up to a delimiter */
            while (p < end && strchr(",}] \t\r\n", *p) == NULL)
                p++;
            return p;
        }
        p++;
    } while (depth > 0);
    return p;
}

/*
 * cJSON keeps numbers as doubles, so "4150.0" and "4.15e3" look like 4150. Go refuses them for an
 * int field: scan the top-level members of the (valid) object and reject a fraction or exponent in
 * the literal of any member named `key` (case-insensitively, as Go matches names).
 */
static bool int_literals_ok(const char *body, size_t len, const char *key)
{
    const char *p = body, *end = body + len;
    size_t klen = strlen(key);
    p = skip_ws(p, end);
    if (p >= end || *p != '{')
        return true;
    p = skip_ws(p + 1, end);
    while (p < end && *p == '"') {
        const char *name = p + 1;
        p = skip_string(p, end);
        bool match = (size_t)(p - 1 - name) == klen && strncasecmp(name, key, klen) == 0;
        p = skip_ws(p, end);
        if (p < end && *p == ':')
            p = skip_ws(p + 1, end);
        const char *v = p;
        p = skip_value(p, end);
        if (match && v < end && (*v == '-' || (*v >= '0' && *v <= '9')))
            for (const char *q = v; q < p; q++)
                if (*q == '.' || *q == 'e' || *q == 'E')
                    return false;
        p = skip_ws(p, end);
        if (p < end && *p == ',')
            p = skip_ws(p + 1, end);
    }
    return true;
}

/* Parses the IDENTIFY body into peer (strict where Go is). Returns 0 or -EINVAL. */
static int decode_identify(const uint8_t *body, size_t len, struct lookup_peer *peer)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts((const char *)body, len, &end, 0);
    if (root == NULL)
        return -EINVAL;
    int rc = 0;
    for (const char *p = end; p != NULL && p < (const char *)body + len; p++)
        if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
            rc = -EINVAL; /* trailing garbage after the value */
    if (rc == 0 && cJSON_IsNull(root))
        goto out;
    if (rc == 0 && !cJSON_IsObject(root))
        rc = -EINVAL;
    if (rc == 0)
        rc = json_string_field(root, "hostname", &peer->hostname);
    if (rc == 0)
        rc = json_string_field(root, "broadcast_address", &peer->broadcast_address);
    if (rc == 0)
        rc = json_string_field(root, "version", &peer->version);
    if (rc == 0)
        rc = json_string_field(root, "topology_zone", &peer->topology_zone);
    if (rc == 0)
        rc = json_string_field(root, "topology_region", &peer->topology_region);
    if (rc == 0)
        rc = json_int_field(root, "tcp_port", &peer->tcp_port);
    if (rc == 0)
        rc = json_int_field(root, "http_port", &peer->http_port);
    if (rc == 0 && (!int_literals_ok((const char *)body, len, "tcp_port") ||
                    !int_literals_ok((const char *)body, len, "http_port")))
        rc = -EINVAL;
out:
    cJSON_Delete(root);
    return rc;
}

static bool empty(const char *s)
{
    return s == NULL || s[0] == '\0';
}

static void finish_identify(struct lookup_conn *c, const uint8_t *body, size_t len)
{
    struct nsqlookupd *ld = c->ld;
    struct lookup_peer *peer = lookup_peer_new(c->addr);
    if (peer == NULL) {
        fail(c, "E_BAD_BODY", "IDENTIFY failed to decode JSON body");
        return;
    }
    if (decode_identify(body, len, peer) != 0) {
        lookup_peer_free(peer);
        fail(c, "E_BAD_BODY", "IDENTIFY failed to decode JSON body");
        return;
    }
    if (empty(peer->broadcast_address) || peer->tcp_port == 0 || peer->http_port == 0 ||
        empty(peer->version)) {
        lookup_peer_free(peer);
        fail(c, "E_BAD_BODY", "IDENTIFY missing fields");
        return;
    }
    /* the peer's strings are "" rather than NULL from here on */
    if (peer->hostname == NULL)
        peer->hostname = strdup("");
    if (peer->hostname == NULL) {
        lookup_peer_free(peer);
        fail(c, "E_BAD_BODY", "IDENTIFY failed to decode JSON body");
        return;
    }
    peer->last_update_ns = nsq_now_ns();
    c->peer = peer;
    nsq_info("CLIENT(%s): IDENTIFY Address:%s TCP:%lld HTTP:%lld Version:%s", c->addr,
             peer->broadcast_address, (long long)peer->tcp_port, (long long)peer->http_port,
             peer->version);
    add_producer(c, REG_CLIENT, "", "");

    /* reply: Go marshals a map, so the keys are sorted */
    struct evbuffer *out = evbuffer_new();
    if (out == NULL) {
        close_quietly(c);
        return;
    }
    struct nsq_json j;
    nsq_json_init(&j, out);
    nsq_json_object_begin(&j);
    nsq_json_kv_string(&j, "broadcast_address", ld->opts->broadcast_address);
    nsq_json_kv_string(&j, "hostname", ld->hostname);
    nsq_json_kv_int(&j, "http_port", ld->http_port);
    nsq_json_kv_int(&j, "tcp_port", ld->tcp_port);
    nsq_json_kv_string(&j, "version", NSQ_VERSION);
    nsq_json_object_end(&j);
    size_t n = evbuffer_get_length(out);
    const char *data = (const char *)evbuffer_pullup(out, (ev_ssize_t)n);
    send_reply(c, data != NULL ? data : "", data != NULL ? n : 0);
    evbuffer_free(out);
}

/* ---- input ---- */

/* Go's strings.TrimSpace for ASCII whitespace. */
static char *trim_space(char *s, size_t *len)
{
    while (*len > 0 && strchr(" \t\r\n\v\f", s[*len - 1]) != NULL)
        s[--*len] = '\0';
    while (*len > 0 && strchr(" \t\r\n\v\f", s[0]) != NULL) {
        s++;
        (*len)--;
    }
    return s;
}

static void split_params(char *line, struct v1_cmd *cmd)
{
    cmd->nparams = 0;
    char *p = line;
    for (;;) {
        char *sp = strchr(p, ' ');
        if (cmd->nparams < MAX_PARAMS)
            cmd->params[cmd->nparams++] = p;
        if (sp == NULL)
            break;
        *sp = '\0';
        p = sp + 1;
    }
}

static void exec_line(struct lookup_conn *c, char *raw, size_t len)
{
    struct v1_cmd cmd;
    char *line = trim_space(raw, &len);
    split_params(line, &cmd);
    const char *name = cmd.params[0];
    if (strcmp(name, "PING") == 0) {
        cmd_ping(c);
    } else if (strcmp(name, "IDENTIFY") == 0) {
        if (c->peer != NULL)
            fail(c, "E_INVALID", "cannot IDENTIFY again");
        else
            c->state = CONN_BODY_SIZE;
    } else if (strcmp(name, "REGISTER") == 0) {
        cmd_register(c, &cmd);
    } else if (strcmp(name, "UNREGISTER") == 0) {
        cmd_unregister(c, &cmd);
    } else {
        fail(c, "E_INVALID", "invalid command %s", name);
    }
}

/* The read_* steps below each handle one state of process_input. They return true when they
   consumed input and moved on (the loop goes on), false when they need more input than is
   buffered or have closed the connection. */

static bool read_magic(struct lookup_conn *c, struct evbuffer *in)
{
    char magic[LOOKUP_V1_MAGIC_LEN];
    if (evbuffer_get_length(in) < LOOKUP_V1_MAGIC_LEN)
        return false;
    evbuffer_remove(in, magic, sizeof(magic));
    nsq_info("CLIENT(%s): desired protocol magic '%.4s'", c->addr, magic);
    if (memcmp(magic, LOOKUP_V1_MAGIC, LOOKUP_V1_MAGIC_LEN) != 0) {
        nsq_error("client(%s) bad protocol magic '%.4s'", c->addr, magic);
        send_reply(c, "E_BAD_PROTOCOL", strlen("E_BAD_PROTOCOL"));
        close_quietly(c);
        return false;
    }
    c->state = CONN_LINE;
    return true;
}

static bool read_line(struct lookup_conn *c, struct evbuffer *in)
{
    struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_LF);
    if (eol.pos < 0) {
        if (evbuffer_get_length(in) > LOOKUP_V1_MAX_LINE) {
            nsq_error("PROTOCOL(V1): [%s] - line longer than %d bytes", c->addr,
                      LOOKUP_V1_MAX_LINE);
            close_quietly(c);
        }
        return false;
    }
    size_t len = (size_t)eol.pos + 1;
    if (len > LOOKUP_V1_MAX_LINE) {
        nsq_error("PROTOCOL(V1): [%s] - line longer than %d bytes", c->addr, LOOKUP_V1_MAX_LINE);
        close_quietly(c);
        return false;
    }
    /* nsqd's lines are short: those fit on the stack, without an allocation */
    char small[LOOKUP_V1_SHORT_LINE];
    char *line = len < sizeof(small) ? small : malloc(len + 1);
    if (line == NULL) {
        close_quietly(c);
        return false;
    }
    evbuffer_remove(in, line, len);
    line[len] = '\0';
    exec_line(c, line, strlen(line)); /* a NUL byte ends the command */
    if (line != small)
        free(line);
    return true;
}

static bool read_body_size(struct lookup_conn *c, struct evbuffer *in)
{
    uint8_t hdr[sizeof(int32_t)];
    if (evbuffer_get_length(in) < sizeof(hdr))
        return false;
    evbuffer_remove(in, hdr, sizeof(hdr));
    int32_t size = (int32_t)nsq_get_be32(hdr);
    if (size < 0 || size > LOOKUP_V1_MAX_IDENTIFY_BODY) {
        fail(c, "E_BAD_BODY", "IDENTIFY failed to read body size");
        return false;
    }
    c->body_size = (uint32_t)size;
    c->state = CONN_BODY;
    return true;
}

static bool read_body(struct lookup_conn *c, struct evbuffer *in)
{
    if (evbuffer_get_length(in) < c->body_size)
        return false;
    const uint8_t *body = evbuffer_pullup(in, c->body_size);
    c->state = CONN_LINE;
    finish_identify(c, body != NULL ? body : (const uint8_t *)"", c->body_size);
    evbuffer_drain(in, c->body_size);
    return true;
}

/* Handles what is buffered. Never frees c (on_read does, once a closing connection drained). */
static void process_input(struct lookup_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    struct evbuffer *out = bufferevent_get_output(c->bev);
    bool more = true;
    while (more) {
        if (c->state != CONN_CLOSING && evbuffer_get_length(out) > LOOKUP_V1_MAX_PENDING_OUTPUT) {
            c->read_paused = true;
            nsq_debug("CLIENT(%s): replies not read, pausing reads", c->addr);
            bufferevent_disable(c->bev, EV_READ);
            return;
        }
        switch (c->state) {
        case CONN_MAGIC:
            more = read_magic(c, in);
            break;
        case CONN_LINE:
            more = read_line(c, in);
            break;
        case CONN_BODY_SIZE:
            more = read_body_size(c, in);
            break;
        case CONN_BODY:
            more = read_body(c, in);
            break;
        case CONN_CLOSING:
            evbuffer_drain(in, evbuffer_get_length(in));
            more = false;
            break;
        }
    }
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct lookup_conn *c = arg;
    process_input(c);
    if (c->state == CONN_CLOSING)
        on_write_drained(bev, c);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct lookup_conn *c = arg;
    (void)bev;
    if (what & BEV_EVENT_EOF) {
        /* a partial IDENTIFY is answered as upstream does (the write may fail) */
        if (c->state == CONN_BODY_SIZE)
            nsq_error("PROTOCOL(V1): [%s] - E_BAD_BODY IDENTIFY failed to read body size", c->addr);
        else if (c->state == CONN_BODY)
            nsq_error("PROTOCOL(V1): [%s] - E_BAD_BODY IDENTIFY failed to read body", c->addr);
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        nsq_info("CLIENT(%s): closing", c->addr);
        conn_free(c);
    }
}

int lookup_conn_accept(struct nsqlookupd *ld, evutil_socket_t fd)
{
    struct lookup_conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        close(fd);
        return -ENOMEM;
    }
    c->ld = ld;
    if (nsq_peer_name(fd, c->addr, sizeof(c->addr)) != 0)
        snprintf(c->addr, sizeof(c->addr), "unknown");
    c->bev = bufferevent_socket_new(ld->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (c->bev == NULL) {
        close(fd);
        free(c);
        return -ENOMEM;
    }
    c->next = ld->conns;
    if (ld->conns != NULL)
        ld->conns->prev = c;
    ld->conns = c;
    nsq_info("TCP: new client(%s)", c->addr);
    bufferevent_setcb(c->bev, on_read, on_write_drained, on_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    return 0;
}

void lookup_conn_close_all(struct nsqlookupd *ld)
{
    while (ld->conns != NULL)
        conn_free(ld->conns);
}
