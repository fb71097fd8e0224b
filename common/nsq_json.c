/*
 * nsq_json: Go-compatible JSON output. Strings are scanned once; runs of bytes that need no escape
 * are appended in one piece. The float formatter finds the shortest round-tripping digit string by
 * trying increasing precisions with the C library (at most 17 tries; cheap enough for stats).
 */
#include "nsq_json.h"

#include "nsq_goquote.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#define DOUBLE_MAX_DIGITS 17
#define EXP_FORM_SMALL    1e-6
#define EXP_FORM_LARGE    1e21
#define LINE_SEP          0x2028u
#define PARA_SEP          0x2029u
#define INT_BUFLEN        24

static const char hexdig[] = "0123456789abcdef";

int nsq_json_escape(struct evbuffer *out, const char *s, size_t len)
{
    const uint8_t *p = (const uint8_t *)s;
    size_t start = 0, i = 0;
    int rc = 0;

    rc |= evbuffer_add(out, "\"", 1);
    while (i < len) {
        uint8_t c = p[i];
        char esc[6];
        size_t esc_len = 0;
        size_t width = 1;

        if (c < 0x80) {
            if (c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&') {
                i++;
                continue;
            }
            esc[0] = '\\';
            switch (c) {
            case '"':
            case '\\':
                esc[1] = (char)c;
                esc_len = 2;
                break;
            case '\n':
                esc[1] = 'n';
                esc_len = 2;
                break;
            case '\r':
                esc[1] = 'r';
                esc_len = 2;
                break;
            case '\t':
                esc[1] = 't';
                esc_len = 2;
                break;
            default:
                memcpy(esc + 1, "u00", 3);
                esc[4] = hexdig[c >> 4];
                esc[5] = hexdig[c & 0xF];
                esc_len = 6;
                break;
            }
        } else {
            uint32_t r;

            width = nsq_utf8_decode(p + i, len - i, &r);
            if (width == 1 && r == NSQ_RUNE_ERROR) {
                memcpy(esc, "\\ufffd", 6);
                esc_len = 6;
            } else if (r == LINE_SEP || r == PARA_SEP) {
                memcpy(esc, "\\u202", 5);
                esc[5] = hexdig[r & 0xF];
                esc_len = 6;
            } else {
                i += width;
                continue;
            }
        }
        if (i > start)
            rc |= evbuffer_add(out, p + start, i - start);
        rc |= evbuffer_add(out, esc, esc_len);
        i += width;
        start = i;
    }
    if (i > start)
        rc |= evbuffer_add(out, p + start, i - start);
    rc |= evbuffer_add(out, "\"", 1);
    return rc == 0 ? 0 : -ENOMEM;
}

/* Splits "d[.ddd]e±XX" into its digits (no dot) and decimal exponent; returns the digit count. */
static int split_sci(const char *sci, char digits[DOUBLE_MAX_DIGITS + 2], int *exp10)
{
    int n = 0;
    const char *q = sci;

    for (; *q != 'e'; q++) {
        if (*q >= '0' && *q <= '9')
            digits[n++] = *q;
    }
    digits[n] = '\0';
    *exp10 = atoi(q + 1);
    return n;
}

/* Parses digits × 10^exp10 (digits read as d.ddd) back to a double. */
static double join_sci(const char *digits, int n, int exp10)
{
    char tmp[NSQ_JSON_FLOAT_BUFLEN + 8];
    int k = 0;

    tmp[k++] = digits[0];
    tmp[k++] = '.';
    memcpy(tmp + k, digits + 1, (size_t)n - 1);
    k += n - 1;
    snprintf(tmp + k, sizeof(tmp) - (size_t)k, "e%d", exp10);
    return strtod(tmp, NULL);
}

/* Moves the n-digit decimal one unit in its last place up (dir > 0) or down (dir < 0). */
static void step_digits(char *digits, int n, int *exp10, int dir)
{
    int i = n - 1;

    if (dir > 0) {
        while (i >= 0 && digits[i] == '9')
            digits[i--] = '0';
        if (i >= 0) {
            digits[i]++;
        } else { /* 99..9 + 1 = 100..0, one decade up */
            digits[0] = '1';
            (*exp10)++;
        }
    } else {
        while (i >= 0 && digits[i] == '0')
            digits[i--] = '9';
        digits[i]--;            /* the first digit is never 0, so i >= 0 */
        if (digits[0] == '0') { /* 100..0 - 1 = 99..9, one decade down */
            memmove(digits, digits + 1, (size_t)n - 1);
            digits[n - 1] = '9';
            (*exp10)--;
        }
    }
}

/*
 * Shortest digits of |v| (v finite, non-zero) that read back as v, the nearest such string when
 * several exist (what Go's strconv 'f'/'e' with precision -1 produce): fills digits (no dot) and
 * returns their count; *exp10 is the exponent of the first digit (v = d.ddd × 10^exp10).
 *
 * For each precision the correctly rounded string is tried first; when it does not round-trip,
 * its neighbour on the other side of v may still do so (the rounding interval of a power of two
 * is narrower below than above), so that one is tried too.
 */
static int shortest_digits(double v, char digits[DOUBLE_MAX_DIGITS + 2], int *exp10)
{
    char tmp[NSQ_JSON_FLOAT_BUFLEN];
    int n = 0;

    for (int prec = 1; prec <= DOUBLE_MAX_DIGITS; prec++) {
        double r;

        snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, v);
        n = split_sci(tmp, digits, exp10);
        r = strtod(tmp, NULL);
        if (r == v)
            break;
        step_digits(digits, n, exp10, r < v ? 1 : -1);
        if (join_sci(digits, n, *exp10) == v)
            break;
        if (prec == DOUBLE_MAX_DIGITS) /* cannot happen: 17 digits always round-trip */
            n = split_sci(tmp, digits, exp10);
    }
    while (n > 1 && digits[n - 1] == '0')
        n--;
    digits[n] = '\0';
    return n;
}

size_t nsq_json_format_double(char buf[NSQ_JSON_FLOAT_BUFLEN], double v)
{
    char digits[DOUBLE_MAX_DIGITS + 2];
    size_t n = 0;
    int nd, e;

    if (isnan(v) || isinf(v)) {
        memcpy(buf, "null", 5);
        return 4;
    }
    if (signbit(v)) {
        buf[n++] = '-';
        v = -v;
    }
    if (v == 0) {
        buf[n++] = '0';
        buf[n] = '\0';
        return n;
    }
    nd = shortest_digits(v, digits, &e);
    if (v < EXP_FORM_SMALL || v >= EXP_FORM_LARGE) {
        /* d[.ddd]e±X[X...]: Go prints at least two exponent digits, encoding/json then drops the
           leading zero of a negative one-digit exponent ("e-07" → "e-7"). */
        buf[n++] = digits[0];
        if (nd > 1) {
            buf[n++] = '.';
            memcpy(buf + n, digits + 1, (size_t)nd - 1);
            n += (size_t)nd - 1;
        }
        n += (size_t)snprintf(buf + n, NSQ_JSON_FLOAT_BUFLEN - n, e < 0 ? "e-%d" : "e+%02d",
                              e < 0 ? -e : e);
        return n;
    }
    /* fixed notation: the decimal point sits after digit index e */
    int point = e + 1;
    if (point <= 0) {
        buf[n++] = '0';
    } else {
        for (int i = 0; i < point; i++)
            buf[n++] = i < nd ? digits[i] : '0';
    }
    if (nd > point) {
        buf[n++] = '.';
        for (int i = point; i < nd; i++)
            buf[n++] = i < 0 ? '0' : digits[i];
    }
    buf[n] = '\0';
    return n;
}

void nsq_json_init(struct nsq_json *j, struct evbuffer *out)
{
    j->out = out;
    j->depth = 0;
    j->need_comma = 0;
}

static uint64_t depth_bit(const struct nsq_json *j)
{
    return j->depth <= NSQ_JSON_MAX_DEPTH ? (uint64_t)1 << j->depth : 0;
}

/* Called before every value: writes the separating comma if this level already has one. */
static void pre_value(struct nsq_json *j)
{
    uint64_t bit = depth_bit(j);

    if (j->need_comma & bit)
        evbuffer_add(j->out, ",", 1);
    j->need_comma |= bit;
}

static void open_level(struct nsq_json *j, char c)
{
    pre_value(j);
    evbuffer_add(j->out, &c, 1);
    j->depth++;
    j->need_comma &= ~depth_bit(j);
}

static void close_level(struct nsq_json *j, char c)
{
    evbuffer_add(j->out, &c, 1);
    if (j->depth > 0)
        j->depth--;
}

void nsq_json_object_begin(struct nsq_json *j)
{
    open_level(j, '{');
}

void nsq_json_object_end(struct nsq_json *j)
{
    close_level(j, '}');
}

void nsq_json_array_begin(struct nsq_json *j)
{
    open_level(j, '[');
}

void nsq_json_array_end(struct nsq_json *j)
{
    close_level(j, ']');
}

void nsq_json_key_len(struct nsq_json *j, const char *key, size_t len)
{
    uint64_t bit = depth_bit(j);

    if (j->need_comma & bit)
        evbuffer_add(j->out, ",", 1);
    nsq_json_escape(j->out, key, len);
    evbuffer_add(j->out, ":", 1);
    /* the value that follows must not write a comma */
    j->need_comma &= ~bit;
}

void nsq_json_key(struct nsq_json *j, const char *key)
{
    nsq_json_key_len(j, key, strlen(key));
}

void nsq_json_string_len(struct nsq_json *j, const char *s, size_t len)
{
    pre_value(j);
    nsq_json_escape(j->out, s, len);
}

void nsq_json_string(struct nsq_json *j, const char *s)
{
    nsq_json_string_len(j, s == NULL ? "" : s, s == NULL ? 0 : strlen(s));
}

void nsq_json_int(struct nsq_json *j, int64_t v)
{
    char buf[INT_BUFLEN];
    int n = snprintf(buf, sizeof(buf), "%" PRId64, v);

    pre_value(j);
    evbuffer_add(j->out, buf, (size_t)n);
}

void nsq_json_uint(struct nsq_json *j, uint64_t v)
{
    char buf[INT_BUFLEN];
    int n = snprintf(buf, sizeof(buf), "%" PRIu64, v);

    pre_value(j);
    evbuffer_add(j->out, buf, (size_t)n);
}

void nsq_json_double(struct nsq_json *j, double v)
{
    char buf[NSQ_JSON_FLOAT_BUFLEN];
    size_t n = nsq_json_format_double(buf, v);

    pre_value(j);
    evbuffer_add(j->out, buf, n);
}

void nsq_json_bool(struct nsq_json *j, bool v)
{
    pre_value(j);
    if (v)
        evbuffer_add(j->out, "true", 4);
    else
        evbuffer_add(j->out, "false", 5);
}

void nsq_json_null(struct nsq_json *j)
{
    pre_value(j);
    evbuffer_add(j->out, "null", 4);
}

void nsq_json_raw(struct nsq_json *j, const char *text, size_t len)
{
    pre_value(j);
    evbuffer_add(j->out, text, len);
}

void nsq_json_kv_string(struct nsq_json *j, const char *key, const char *s)
{
    nsq_json_key(j, key);
    nsq_json_string(j, s);
}

void nsq_json_kv_string_len(struct nsq_json *j, const char *key, const char *s, size_t len)
{
    nsq_json_key(j, key);
    nsq_json_string_len(j, s, len);
}

void nsq_json_kv_int(struct nsq_json *j, const char *key, int64_t v)
{
    nsq_json_key(j, key);
    nsq_json_int(j, v);
}

void nsq_json_kv_uint(struct nsq_json *j, const char *key, uint64_t v)
{
    nsq_json_key(j, key);
    nsq_json_uint(j, v);
}

void nsq_json_kv_double(struct nsq_json *j, const char *key, double v)
{
    nsq_json_key(j, key);
    nsq_json_double(j, v);
}

void nsq_json_kv_bool(struct nsq_json *j, const char *key, bool v)
{
    nsq_json_key(j, key);
    nsq_json_bool(j, v);
}

void nsq_json_kv_null(struct nsq_json *j, const char *key)
{
    nsq_json_key(j, key);
    nsq_json_null(j);
}
