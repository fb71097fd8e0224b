/*
 * nsq_command: incremental parser for client-to-server commands of the V2 protocol
 * (tcp-protocol.md §3) and the nsqlookupd V1 protocol, fed from a libevent evbuffer that may hold
 * any part of the stream.
 *
 *   COMMAND[ SP param]* LF          one trailing CR is stripped; split on single spaces
 *   [int32 body size][body]         only when the caller asks for them
 *
 * The caller drives the state machine: after a LINE it decides from the command whether a size
 * follows (nsq_parser_want_size); after a BODY_SIZE it validates the size and asks for the body
 * (nsq_parser_want_body) or fails the connection. The parser never consumes more than the current
 * state needs (a line, 4 size bytes, exactly n body bytes), so pipelined commands stay in `in`.
 *
 * Memory: the parser owns a fixed NSQ_MAX_LINE line buffer and a body buffer that is reused from
 * command to command (bodies above NSQ_PARSER_BODY_KEEP are released after use so idle connections
 * do not pin large buffers). Parsing a command allocates nothing in the steady state.
 *
 * Invariant: the line of the current command (name, params, line) stays valid and unchanged until
 * the next line is parsed, so a BODY return still carries the command it belongs to. The body
 * pointer is valid until the next call.
 */
#ifndef NSQ_COMMAND_H
#define NSQ_COMMAND_H

#include <stddef.h>
#include <stdint.h>

struct evbuffer;

#define NSQ_MAX_LINE         16384 /* incl. LF (nsqd reads commands through a 16 KiB buffer) */
#define NSQ_MAX_PARAMS       8
#define NSQ_BODY_SIZE_LEN    4
#define NSQ_PARSER_BODY_KEEP 65536 /* body buffers up to this size are kept for reuse */

struct nsq_slice {
    const char *ptr;
    size_t len;
};

struct nsq_command {
    struct nsq_slice line;                   /* the whole line without LF / CR */
    struct nsq_slice name;                   /* bytes before the first space (may be empty) */
    size_t nparams;                          /* params on the line (may exceed NSQ_MAX_PARAMS) */
    struct nsq_slice params[NSQ_MAX_PARAMS]; /* the first min(nparams, NSQ_MAX_PARAMS) */
    const uint8_t *body;                     /* set when NSQ_PARSE_BODY is returned, else NULL */
    size_t body_len;
};

enum nsq_parse_status {
    NSQ_PARSE_NEED_MORE,     /* nothing complete yet: wait for more input */
    NSQ_PARSE_LINE,          /* cmd holds a new command line */
    NSQ_PARSE_BODY_SIZE,     /* *size holds the int32 read (any value, negative included) */
    NSQ_PARSE_BODY,          /* cmd->body / body_len hold the requested body */
    NSQ_PARSE_LINE_TOO_LONG, /* NSQ_MAX_LINE bytes buffered without LF: close the connection */
    NSQ_PARSE_NOMEM,         /* a line or body buffer could not be allocated */
};

struct nsq_parser; /* opaque */

/* Returns a parser in LINE state, or NULL. Free with nsq_parser_free (NULL is a no-op). */
struct nsq_parser *nsq_parser_new(void);
void nsq_parser_free(struct nsq_parser *p);

/* Drives the state machine on `in`, draining what it uses:
   - LINE state: NSQ_PARSE_LINE once a whole line is buffered; NSQ_PARSE_LINE_TOO_LONG as soon as
     NSQ_MAX_LINE bytes are buffered without a LF (the parser then stays in that error).
   - after nsq_parser_want_size(p): NSQ_PARSE_BODY_SIZE with *size, back in LINE state unless the
     caller then calls nsq_parser_want_body.
   - after nsq_parser_want_body(p, n): NSQ_PARSE_BODY with cmd->body/body_len (n bytes), then LINE.
   cmd is filled on every return (line fields of the current command; body only with BODY). */
enum nsq_parse_status nsq_parser_next(struct nsq_parser *p, struct evbuffer *in,
                                      struct nsq_command *cmd, int32_t *size);
void nsq_parser_want_size(struct nsq_parser *p);
void nsq_parser_want_body(struct nsq_parser *p, size_t n);

/* Bytes a pending size or body read still needs before the next call can succeed (0 in LINE
   state). Lets a caller tell "short read" from "waiting" when the connection ends. */
size_t nsq_parser_pending(const struct nsq_parser *p, const struct evbuffer *in);

/* Parses one line (without LF) into cmd by the same rules, pointing into `line` (the lookupd V1
   protocol trims whitespace first and may use this directly). */
void nsq_command_split(const char *line, size_t len, struct nsq_command *cmd);

/* ---- MPUB payload: the body after body_size, [int32 num]([int32 size][size bytes]) × num ---- */

enum nsq_mpub_error {
    NSQ_MPUB_ERR_COUNT_READ = -1,    /* "MPUB failed to read message count" */
    NSQ_MPUB_ERR_COUNT_INVALID = -2, /* "MPUB invalid message count %d" (value) */
    NSQ_MPUB_ERR_SIZE_READ = -3,     /* "MPUB failed to read message(%d) body size" (index) */
    NSQ_MPUB_ERR_SIZE_INVALID = -4,  /* "MPUB invalid message(%d) body size %d" (index, value) */
    NSQ_MPUB_ERR_TOO_BIG = -5,       /* "MPUB message too big %d > %d" (value, max_msg_size) */
    NSQ_MPUB_ERR_SHORT = -6,         /* "MPUB failed to read message body" */
};

/* Iterator over an MPUB payload held in memory. Points into the caller's bytes. After an error,
   index and value hold the numbers the error text needs. left is the number of payload bytes
   not consumed by the messages (upstream leaves such bytes in the stream, where they are read as
   the next command; a caller that wants the same can evbuffer_prepend them). */
struct nsq_mpub_iter {
    const uint8_t *p;
    size_t left;
    int64_t max_msg_size;
    int32_t count; /* number of messages announced */
    int32_t index; /* messages returned so far; the failing message's index after an error */
    int32_t value; /* the offending count or size after an error */
};

/* Reads the message count. max_body_size bounds it to (max_body_size - 4) / 5 as upstream does.
   Returns 0, NSQ_MPUB_ERR_COUNT_READ or NSQ_MPUB_ERR_COUNT_INVALID. */
int nsq_mpub_begin(struct nsq_mpub_iter *it, const uint8_t *payload, size_t len,
                   int64_t max_body_size, int64_t max_msg_size);

/* Returns 1 and the next message, 0 after the last one, or a negative nsq_mpub_error. */
int nsq_mpub_next(struct nsq_mpub_iter *it, const uint8_t **msg, size_t *msg_len);

/* Validates the whole payload (all messages, in upstream's order of checks) without yielding
   them. Returns 0 (it->count messages, it->left trailing bytes) or the first error, with
   it->index / it->value set. */
int nsq_mpub_validate(struct nsq_mpub_iter *it, const uint8_t *payload, size_t len,
                      int64_t max_body_size, int64_t max_msg_size);

/* HTTP /mpub without binary=true: the messages are the body's non-empty lines (split on '\n').
   Points into the caller's bytes. */
struct nsq_mpub_lines {
    const uint8_t *p;
    size_t left;
    int64_t max_msg_size;
};

void nsq_mpub_lines_begin(struct nsq_mpub_lines *it, const uint8_t *body, size_t len,
                          int64_t max_msg_size);
/* Returns 1 and the next non-empty line (without its '\n'), 0 after the last one, or
   NSQ_MPUB_ERR_TOO_BIG for a line longer than max_msg_size. */
int nsq_mpub_lines_next(struct nsq_mpub_lines *it, const uint8_t **msg, size_t *msg_len);

#endif
