/*
 * nsq_toml: a recursive-descent parser over the whole file held in memory. Config files are
 * small and read once at startup, so clarity wins over speed here.
 */
#include "nsq_toml.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOML_MAX_DEPTH 32          /* nested arrays */
#define TOML_MAX_FILE  (16u << 20) /* config files are tiny; refuse anything absurd */

struct parser {
    const char *p, *end;
    int line;
    char *err;
    size_t errlen;
};

static int fail(struct parser *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct parser *ps, const char *fmt, ...)
{
    if (ps->err && ps->errlen) {
        int n = snprintf(ps->err, ps->errlen, "line %d: ", ps->line);
        if (n >= 0 && (size_t)n < ps->errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(ps->err + n, ps->errlen - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return -EINVAL;
}

static void value_free(struct nsq_toml_value *v)
{
    if (v->type == NSQ_TOML_STRING) {
        free(v->u.s);
    } else if (v->type == NSQ_TOML_ARRAY) {
        for (size_t i = 0; i < v->u.arr.len; i++)
            value_free(&v->u.arr.items[i]);
        free(v->u.arr.items);
    }
    memset(v, 0, sizeof(*v));
}

void nsq_toml_free(struct nsq_toml *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->len; i++) {
        free(t->kvs[i].key);
        value_free(&t->kvs[i].v);
    }
    free(t->kvs);
    free(t);
}

const struct nsq_toml_value *nsq_toml_get(const struct nsq_toml *t, const char *key)
{
    if (!t)
        return NULL;
    for (size_t i = 0; i < t->len; i++)
        if (strcmp(t->kvs[i].key, key) == 0)
            return &t->kvs[i].v;
    return NULL;
}

/* Skips spaces and tabs, and a comment up to (not including) the newline. */
static void skip_ws(struct parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t'))
        ps->p++;
    if (ps->p < ps->end && *ps->p == '#')
        while (ps->p < ps->end && *ps->p != '\n')
            ps->p++;
}

/* Skips whitespace, comments and newlines (inside arrays). */
static void skip_ws_nl(struct parser *ps)
{
    for (;;) {
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == '\n') {
            ps->line++;
            ps->p++;
        } else if (ps->p + 1 < ps->end && ps->p[0] == '\r' && ps->p[1] == '\n') {
            ps->line++;
            ps->p += 2;
        } else {
            return;
        }
    }
}

/* Expects end of line (after optional whitespace/comment). */
static int expect_eol(struct parser *ps)
{
    skip_ws(ps);
    if (ps->p >= ps->end)
        return 0;
    if (*ps->p == '\r' && ps->p + 1 < ps->end && ps->p[1] == '\n')
        ps->p++;
    if (*ps->p != '\n')
        return fail(ps, "expected a new line after a value, found '%c'", *ps->p);
    ps->p++;
    ps->line++;
    return 0;
}

struct sbuf {
    char *b;
    size_t len, cap;
};

static int sbuf_put(struct sbuf *s, const char *d, size_t n)
{
    if (s->len + n + 1 > s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 32;
        while (nc < s->len + n + 1)
            nc *= 2;
        char *nb = realloc(s->b, nc);
        if (!nb)
            return -ENOMEM;
        s->b = nb;
        s->cap = nc;
    }
    memcpy(s->b + s->len, d, n);
    s->len += n;
    s->b[s->len] = '\0';
    return 0;
}

static int utf8_put(struct sbuf *s, uint32_t cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        u[0] = (char)(0xF0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    return sbuf_put(s, u, n);
}

/* Parses a quoted string at ps->p (which is at the opening quote) into a malloc'd *out. */
static int parse_string(struct parser *ps, char **out)
{
    char q = *ps->p++;
    struct sbuf s = {0};
    int rc = sbuf_put(&s, "", 0);
    if (rc)
        return rc;
    if (ps->p + 1 < ps->end && ps->p[0] == q && ps->p[1] == q) {
        free(s.b);
        return fail(ps, "multi-line strings are not supported");
    }
    while (ps->p < ps->end && *ps->p != q) {
        char c = *ps->p;
        if (c == '\n') {
            free(s.b);
            return fail(ps, "unterminated string");
        }
        if (c == '\\' && q == '"') {
            ps->p++;
            if (ps->p >= ps->end)
                break;
            char e = *ps->p++;
            const char *rep = NULL;
            switch (e) {
            case 'b':
                rep = "\b";
                break;
            case 't':
                rep = "\t";
                break;
            case 'n':
                rep = "\n";
                break;
            case 'f':
                rep = "\f";
                break;
            case 'r':
                rep = "\r";
                break;
            case '"':
                rep = "\"";
                break;
            case '\\':
                rep = "\\";
                break;
            case 'u':
            case 'U': {
                int nd = e == 'u' ? 4 : 8;
                uint32_t cp = 0;
                for (int i = 0; i < nd; i++) {
                    if (ps->p >= ps->end) {
                        free(s.b);
                        return fail(ps, "unterminated escape");
                    }
                    char h = *ps->p++;
                    int d = (h >= '0' && h <= '9')   ? h - '0'
                            : (h >= 'a' && h <= 'f') ? h - 'a' + 10
                            : (h >= 'A' && h <= 'F') ? h - 'A' + 10
                                                     : -1;
                    if (d < 0) {
                        free(s.b);
                        return fail(ps, "invalid escape \\%c", e);
                    }
                    cp = cp * 16 + (uint32_t)d;
                }
                if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
                    free(s.b);
                    return fail(ps, "invalid unicode escape");
                }
                rc = utf8_put(&s, cp);
                if (rc) {
                    free(s.b);
                    return rc;
                }
                continue;
            }
            default:
                free(s.b);
                return fail(ps, "invalid escape \\%c", e);
            }
            rc = sbuf_put(&s, rep, 1);
        } else {
            rc = sbuf_put(&s, &c, 1);
            ps->p++;
        }
        if (rc) {
            free(s.b);
            return rc;
        }
    }
    if (ps->p >= ps->end) {
        free(s.b);
        return fail(ps, "unterminated string");
    }
    ps->p++; /* closing quote */
    *out = s.b;
    return 0;
}

static int is_bare_key_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

static int isxdigit_c(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Scalar token: runs up to a delimiter. */
static int parse_scalar(struct parser *ps, struct nsq_toml_value *v)
{
    const char *s = ps->p;
    while (ps->p < ps->end && !strchr(" \t\r\n,]#", *ps->p))
        ps->p++;
    size_t n = (size_t)(ps->p - s);
    if (n == 0)
        return fail(ps, "expected a value");
    char tok[128];
    if (n >= sizeof(tok))
        return fail(ps, "value too long");
    /* strip '_' separators (only between digits) */
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '_') {
            int ok = i > 0 && i + 1 < n && isxdigit_c(s[i - 1]) && isxdigit_c(s[i + 1]);
            if (!ok)
                return fail(ps, "invalid value '%.*s'", (int)n, s);
            continue;
        }
        tok[k++] = s[i];
    }
    tok[k] = '\0';
    if (strcmp(tok, "true") == 0 || strcmp(tok, "false") == 0) {
        v->type = NSQ_TOML_BOOL;
        v->u.b = tok[0] == 't';
        return 0;
    }
    const char *t = tok;
    if (*t == '+' || *t == '-')
        t++;
    if (strcmp(t, "inf") == 0 || strcmp(t, "nan") == 0) {
        v->type = NSQ_TOML_FLOAT;
        v->u.f = t[0] == 'i' ? INFINITY : NAN;
        if (tok[0] == '-')
            v->u.f = -v->u.f;
        return 0;
    }
    if (t[0] == '0' && (t[1] == 'x' || t[1] == 'o' || t[1] == 'b')) {
        if (t != tok)
            return fail(ps, "invalid value '%s'", tok);
        int base = t[1] == 'x' ? 16 : t[1] == 'o' ? 8 : 2;
        char *e;
        errno = 0;
        long long x = strtoll(t + 2, &e, base);
        if (*e || e == t + 2 || errno)
            return fail(ps, "invalid integer '%s'", tok);
        v->type = NSQ_TOML_INT;
        v->u.i = x;
        return 0;
    }
    if (!(t[0] >= '0' && t[0] <= '9'))
        return fail(ps, "invalid value '%s'", tok);
    if (strpbrk(t, ".eE")) {
        char *e;
        errno = 0;
        double d = strtod(tok, &e);
        if (*e || errno == ERANGE || strpbrk(t, "xXpP") || t[strlen(t) - 1] == '.')
            return fail(ps, "invalid float '%s'", tok);
        v->type = NSQ_TOML_FLOAT;
        v->u.f = d;
        return 0;
    }
    if (t[0] == '0' && t[1] != '\0')
        return fail(ps, "invalid integer '%s' (leading zero)", tok);
    for (const char *c = t; *c; c++)
        if (*c < '0' || *c > '9')
            return fail(ps, "invalid value '%s'", tok);
    char *e;
    errno = 0;
    long long x = strtoll(tok, &e, 10);
    if (errno == ERANGE)
        return fail(ps, "integer '%s' out of range", tok);
    v->type = NSQ_TOML_INT;
    v->u.i = x;
    return 0;
}

static int parse_value(struct parser *ps, struct nsq_toml_value *v, int depth)
{
    memset(v, 0, sizeof(*v));
    if (ps->p >= ps->end)
        return fail(ps, "expected a value");
    char c = *ps->p;
    if (c == '"' || c == '\'') {
        v->type = NSQ_TOML_STRING;
        return parse_string(ps, &v->u.s);
    }
    if (c == '{')
        return fail(ps, "inline tables are not supported");
    if (c != '[')
        return parse_scalar(ps, v);
    if (depth >= TOML_MAX_DEPTH)
        return fail(ps, "arrays nested too deeply");
    ps->p++;
    v->type = NSQ_TOML_ARRAY;
    size_t cap = 0;
    for (;;) {
        skip_ws_nl(ps);
        if (ps->p >= ps->end) {
            value_free(v);
            return fail(ps, "unterminated array");
        }
        if (*ps->p == ']') {
            ps->p++;
            return 0;
        }
        if (v->u.arr.len == cap) {
            size_t nc = cap ? cap * 2 : 4;
            struct nsq_toml_value *ni = realloc(v->u.arr.items, nc * sizeof(*ni));
            if (!ni) {
                value_free(v);
                return -ENOMEM;
            }
            v->u.arr.items = ni;
            cap = nc;
        }
        int rc = parse_value(ps, &v->u.arr.items[v->u.arr.len], depth + 1);
        if (rc) {
            value_free(v);
            return rc;
        }
        v->u.arr.len++;
        skip_ws_nl(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == ']') {
            ps->p++;
            return 0;
        }
        value_free(v);
        return fail(ps, "expected ',' or ']' in array");
    }
}

static int parse_key(struct parser *ps, char **out)
{
    if (ps->p < ps->end && (*ps->p == '"' || *ps->p == '\''))
        return parse_string(ps, out);
    const char *s = ps->p;
    while (ps->p < ps->end && (is_bare_key_char(*ps->p) || *ps->p == '.'))
        ps->p++;
    if (ps->p == s)
        return fail(ps, "expected a key");
    /* the text need not be NUL-terminated: copy the key's bytes, not a C string */
    size_t n = (size_t)(ps->p - s);
    if (!(*out = malloc(n + 1)))
        return -ENOMEM;
    memcpy(*out, s, n);
    (*out)[n] = '\0';
    return 0;
}

int nsq_toml_parse(const char *text, size_t len, struct nsq_toml **out, char *err, size_t errlen)
{
    struct parser ps = {text, text + len, 1, err, errlen};
    struct nsq_toml *t = calloc(1, sizeof(*t));
    size_t cap = 0;
    bool in_table = false;
    int rc = 0;
    if (!t)
        return -ENOMEM;
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        ps.p += 3; /* UTF-8 byte order mark */
    for (;;) {
        skip_ws_nl(&ps);
        if (ps.p >= ps.end)
            break;
        if (*ps.p == '[') {
            /* [table] or [[array of tables]]: keys below it are not top-level. */
            while (ps.p < ps.end && *ps.p != '\n' && *ps.p != '#')
                ps.p++;
            in_table = true;
            if ((rc = expect_eol(&ps)))
                goto err;
            continue;
        }
        char *key = NULL;
        if ((rc = parse_key(&ps, &key)))
            goto err;
        skip_ws(&ps);
        if (ps.p >= ps.end || *ps.p != '=') {
            free(key);
            rc = fail(&ps, "expected '=' after key");
            goto err;
        }
        ps.p++;
        skip_ws(&ps);
        struct nsq_toml_value v;
        if ((rc = parse_value(&ps, &v, 0))) {
            free(key);
            goto err;
        }
        if ((rc = expect_eol(&ps))) {
            free(key);
            value_free(&v);
            goto err;
        }
        if (in_table) {
            free(key);
            value_free(&v);
            continue;
        }
        if (nsq_toml_get(t, key)) {
            rc = fail(&ps, "duplicate key '%s'", key);
            free(key);
            value_free(&v);
            goto err;
        }
        if (t->len == cap) {
            size_t nc = cap ? cap * 2 : 16;
            struct nsq_toml_kv *nk = realloc(t->kvs, nc * sizeof(*nk));
            if (!nk) {
                free(key);
                value_free(&v);
                rc = -ENOMEM;
                goto err;
            }
            t->kvs = nk;
            cap = nc;
        }
        t->kvs[t->len].key = key;
        t->kvs[t->len].v = v;
        t->len++;
    }
    *out = t;
    return 0;
err:
    nsq_toml_free(t);
    return rc;
}

int nsq_toml_load(const char *path, struct nsq_toml **out, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        snprintf(err, errlen, "open %s: %s", path, strerror(e));
        return -e;
    }
    struct sbuf s = {0};
    char chunk[4096];
    size_t n;
    int rc = sbuf_put(&s, "", 0);
    while (rc == 0 && (n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        rc = sbuf_put(&s, chunk, n);
        if (s.len > TOML_MAX_FILE)
            rc = -EFBIG;
    }
    if (rc == 0 && ferror(f))
        rc = -EIO;
    fclose(f);
    if (rc) {
        snprintf(err, errlen, "read %s: %s", path, strerror(-rc));
        free(s.b);
        return rc;
    }
    rc = nsq_toml_parse(s.b, s.len, out, err, errlen);
    free(s.b);
    return rc;
}
