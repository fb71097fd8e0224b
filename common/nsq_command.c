/*
 * nsq_command: the V2 command parser. Lines are searched for LF only in bytes not searched before
 * (scan offset kept across calls), so input that arrives byte by byte costs O(n) overall, and
 * never beyond the first NSQ_MAX_LINE bytes of the buffer.
 *
 * Memory: a parser lives as long as its connection, and nsqd may hold tens of thousands of them.
 * Real command lines are short (FIN <id> is 21 bytes), so the line is kept in a small inline
 * buffer; only a longer line borrows a heap buffer, which is given back as soon as a short line
 * follows.
 */
#include "nsq_command.h"

#include "nsq_frame.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#define MPUB_COUNT_LEN   4
#define MPUB_MIN_MSG_LEN 5   /* 4 size bytes + at least one body byte */
#define INLINE_LINE_LEN  256 /* covers every command line real clients send */

enum parser_state { ST_LINE, ST_SIZE, ST_BODY, ST_TOO_LONG };

struct nsq_parser {
    enum parser_state state;
    size_t scanned;   /* LINE: head bytes of `in` already known to hold no LF */
    size_t body_want; /* BODY: bytes requested */
    uint8_t *body;    /* reused body buffer */
    size_t body_cap;
    bool release_body;      /* a large body was returned: free it on the next call */
    struct nsq_command cur; /* line fields of the current command (point into line) */
    char *line;             /* inline_line, or long_line while a long line is current */
    char *long_line;        /* heap buffer of a line longer than INLINE_LINE_LEN, or NULL */
    char inline_line[INLINE_LINE_LEN];
};

struct nsq_parser *nsq_parser_new(void)
{
    struct nsq_parser *p = calloc(1, sizeof(*p));

    if (p == NULL)
        return NULL;
    p->state = ST_LINE;
    p->line = p->inline_line;
    nsq_command_split(p->line, 0, &p->cur);
    return p;
}

void nsq_parser_free(struct nsq_parser *p)
{
    if (p == NULL)
        return;
    free(p->body);
    free(p->long_line);
    free(p);
}

/* Points p->line at a buffer of at least n bytes. The previous line is no longer referenced. */
static int reserve_line(struct nsq_parser *p, size_t n)
{
    free(p->long_line);
    p->long_line = NULL;
    p->line = p->inline_line;
    if (n <= sizeof(p->inline_line))
        return 0;
    p->long_line = malloc(n);
    if (p->long_line == NULL)
        return -ENOMEM;
    p->line = p->long_line;
    return 0;
}

void nsq_command_split(const char *line, size_t len, struct nsq_command *cmd)
{
    const char *end = line + len;
    const char *sp = memchr(line, ' ', len);

    cmd->line.ptr = line;
    cmd->line.len = len;
    cmd->name.ptr = line;
    cmd->name.len = sp == NULL ? len : (size_t)(sp - line);
    cmd->nparams = 0;
    cmd->body = NULL;
    cmd->body_len = 0;
    while (sp != NULL) {
        const char *start = sp + 1;

        sp = memchr(start, ' ', (size_t)(end - start));
        if (cmd->nparams < NSQ_MAX_PARAMS) {
            cmd->params[cmd->nparams].ptr = start;
            cmd->params[cmd->nparams].len = (size_t)((sp == NULL ? end : sp) - start);
        }
        cmd->nparams++;
    }
}

static enum nsq_parse_status parse_line(struct nsq_parser *p, struct evbuffer *in)
{
    size_t have = evbuffer_get_length(in);
    size_t limit = have < NSQ_MAX_LINE ? have : NSQ_MAX_LINE;
    struct evbuffer_ptr start, end, found;
    size_t len;

    if (p->scanned > limit)
        p->scanned = 0; /* the caller removed input behind our back: rescan */
    if (p->scanned == limit) {
        found.pos = -1;
    } else {
        if (evbuffer_ptr_set(in, &start, p->scanned, EVBUFFER_PTR_SET) != 0 ||
            evbuffer_ptr_set(in, &end, limit, EVBUFFER_PTR_SET) != 0)
            return NSQ_PARSE_NEED_MORE;
        found = evbuffer_search_range(in, "\n", 1, &start, &end);
    }
    if (found.pos < 0) {
        p->scanned = limit;
        if (limit >= NSQ_MAX_LINE) {
            p->state = ST_TOO_LONG;
            return NSQ_PARSE_LINE_TOO_LONG;
        }
        return NSQ_PARSE_NEED_MORE;
    }
    len = (size_t)found.pos; /* < NSQ_MAX_LINE */
    if (reserve_line(p, len + 1) != 0)
        return NSQ_PARSE_NOMEM;
    evbuffer_remove(in, p->line, len + 1);
    p->scanned = 0;
    if (len > 0 && p->line[len - 1] == '\r')
        len--;
    nsq_command_split(p->line, len, &p->cur);
    return NSQ_PARSE_LINE;
}

static enum nsq_parse_status parse_size(struct nsq_parser *p, struct evbuffer *in, int32_t *size)
{
    uint8_t b[NSQ_BODY_SIZE_LEN];

    if (evbuffer_get_length(in) < NSQ_BODY_SIZE_LEN)
        return NSQ_PARSE_NEED_MORE;
    evbuffer_remove(in, b, sizeof(b));
    if (size != NULL)
        *size = (int32_t)nsq_get_be32(b);
    p->state = ST_LINE;
    return NSQ_PARSE_BODY_SIZE;
}

static enum nsq_parse_status parse_body(struct nsq_parser *p, struct evbuffer *in)
{
    size_t n = p->body_want;

    if (evbuffer_get_length(in) < n)
        return NSQ_PARSE_NEED_MORE;
    if (p->body_cap < n || p->body == NULL) {
        uint8_t *nb = malloc(n > 0 ? n : 1);

        if (nb == NULL)
            return NSQ_PARSE_NOMEM;
        free(p->body);
        p->body = nb;
        p->body_cap = n > 0 ? n : 1;
    }
    if (n > 0)
        evbuffer_remove(in, p->body, n);
    p->release_body = p->body_cap > NSQ_PARSER_BODY_KEEP;
    p->state = ST_LINE;
    return NSQ_PARSE_BODY;
}

enum nsq_parse_status nsq_parser_next(struct nsq_parser *p, struct evbuffer *in,
                                      struct nsq_command *cmd, int32_t *size)
{
    enum nsq_parse_status st = NSQ_PARSE_NEED_MORE;

    if (p->release_body) {
        free(p->body);
        p->body = NULL;
        p->body_cap = 0;
        p->release_body = false;
    }
    switch (p->state) {
    case ST_LINE:
        st = parse_line(p, in);
        break;
    case ST_SIZE:
        st = parse_size(p, in, size);
        break;
    case ST_BODY:
        st = parse_body(p, in);
        break;
    case ST_TOO_LONG:
        st = NSQ_PARSE_LINE_TOO_LONG;
        break;
    }
    if (cmd != NULL) {
        *cmd = p->cur;
        if (st == NSQ_PARSE_BODY) {
            cmd->body = p->body;
            cmd->body_len = p->body_want;
        }
    }
    return st;
}

void nsq_parser_want_size(struct nsq_parser *p)
{
    if (p->state != ST_TOO_LONG)
        p->state = ST_SIZE;
}

void nsq_parser_want_body(struct nsq_parser *p, size_t n)
{
    if (p->state == ST_TOO_LONG)
        return;
    p->state = ST_BODY;
    p->body_want = n;
}

size_t nsq_parser_pending(const struct nsq_parser *p, const struct evbuffer *in)
{
    size_t have = evbuffer_get_length(in);
    size_t need;

    switch (p->state) {
    case ST_SIZE:
        need = NSQ_BODY_SIZE_LEN;
        break;
    case ST_BODY:
        need = p->body_want;
        break;
    default:
        return 0;
    }
    return have >= need ? 0 : need - have;
}

int nsq_mpub_begin(struct nsq_mpub_iter *it, const uint8_t *payload, size_t len,
                   int64_t max_body_size, int64_t max_msg_size)
{
    int64_t max_messages = (max_body_size - MPUB_COUNT_LEN) / MPUB_MIN_MSG_LEN;

    memset(it, 0, sizeof(*it));
    it->max_msg_size = max_msg_size;
    if (len < MPUB_COUNT_LEN)
        return NSQ_MPUB_ERR_COUNT_READ;
    it->count = (int32_t)nsq_get_be32(payload);
    it->p = payload + MPUB_COUNT_LEN;
    it->left = len - MPUB_COUNT_LEN;
    if (it->count <= 0 || (int64_t)it->count > max_messages) {
        it->value = it->count;
        return NSQ_MPUB_ERR_COUNT_INVALID;
    }
    return 0;
}

int nsq_mpub_next(struct nsq_mpub_iter *it, const uint8_t **msg, size_t *msg_len)
{
    int32_t size;

    if (it->index >= it->count)
        return 0;
    if (it->left < NSQ_BODY_SIZE_LEN)
        return NSQ_MPUB_ERR_SIZE_READ;
    size = (int32_t)nsq_get_be32(it->p);
    it->p += NSQ_BODY_SIZE_LEN;
    it->left -= NSQ_BODY_SIZE_LEN;
    it->value = size;
    if (size <= 0)
        return NSQ_MPUB_ERR_SIZE_INVALID;
    if ((int64_t)size > it->max_msg_size)
        return NSQ_MPUB_ERR_TOO_BIG;
    if (it->left < (size_t)size)
        return NSQ_MPUB_ERR_SHORT;
    *msg = it->p;
    *msg_len = (size_t)size;
    it->p += size;
    it->left -= (size_t)size;
    it->value = 0;
    it->index++;
    return 1;
}

int nsq_mpub_validate(struct nsq_mpub_iter *it, const uint8_t *payload, size_t len,
                      int64_t max_body_size, int64_t max_msg_size)
{
    const uint8_t *msg;
    size_t msg_len;
    int r = nsq_mpub_begin(it, payload, len, max_body_size, max_msg_size);

    while (r == 0 && (r = nsq_mpub_next(it, &msg, &msg_len)) == 1)
        r = 0;
    return r;
}

void nsq_mpub_lines_begin(struct nsq_mpub_lines *it, const uint8_t *body, size_t len,
                          int64_t max_msg_size)
{
    it->p = body;
    it->left = len;
    it->max_msg_size = max_msg_size;
}

int nsq_mpub_lines_next(struct nsq_mpub_lines *it, const uint8_t **msg, size_t *msg_len)
{
    while (it->left > 0) {
        const uint8_t *nl = memchr(it->p, '\n', it->left);
        size_t n = nl ? (size_t)(nl - it->p) : it->left;
        const uint8_t *line = it->p;
        size_t step = nl ? n + 1 : n;
        it->p += step;
        it->left -= step;
        if (n == 0)
            continue; /* empty lines carry no message */
        if ((int64_t)n > it->max_msg_size)
            return NSQ_MPUB_ERR_TOO_BIG;
        *msg = line;
        *msg_len = n;
        return 1;
    }
    return 0;
}
