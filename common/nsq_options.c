/*
 * nsq_options: one pass over argv that sets targets as Go's flag.Parse would (remembering which
 * options were given explicitly), then the config file for the options not given, so that the
 * precedence flag > file > default holds without keeping intermediate copies of the values.
 */
#include "nsq_options.h"
#include "nsq_json.h"
#include "nsq_log.h"
#include "nsq_toml.h"
#include "nsq_version.h"

#include <errno.h>
#include <event2/buffer.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define CFG_NAME_MAX   128
#define VALUE_TEXT_MAX 512

/* ---- durations ---------------------------------------------------------------------------- */

static const struct {
    const char *name;
    uint64_t ns;
} duration_units[] = {
        {"ns", 1ULL},
        {"us", 1000ULL},
        {"\xc2\xb5s", 1000ULL}, /* U+00B5 micro sign */
        {"\xce\xbcs", 1000ULL}, /* U+03BC Greek mu */
        {"ms", 1000000ULL},
        {"s", 1000000000ULL},
        {"m", 60ULL * 1000000000ULL},
        {"h", 3600ULL * 1000000000ULL},
};

#define DURATION_LIMIT (1ULL << 63)

int nsq_parse_duration(const char *s, int64_t *ns)
{
    if (!s)
        return -EINVAL;
    bool neg = false;
    if (*s == '-' || *s == '+') {
        neg = *s == '-';
        s++;
    }
    if (strcmp(s, "0") == 0) {
        *ns = 0;
        return 0;
    }
    if (*s == '\0')
        return -EINVAL;
    uint64_t d = 0;
    while (*s) {
        uint64_t v = 0, f = 0;
        double scale = 1;
        if (!(*s == '.' || (*s >= '0' && *s <= '9')))
            return -EINVAL;
        const char *start = s;
        for (; *s >= '0' && *s <= '9'; s++) {
            if (v > (DURATION_LIMIT - 1) / 10)
                return -ERANGE;
            v = v * 10 + (uint64_t)(*s - '0');
            if (v > DURATION_LIMIT)
                return -ERANGE;
        }
        bool pre = s != start, post = false;
        if (*s == '.') {
            s++;
            const char *fs = s;
            bool overflow = false;
            for (; *s >= '0' && *s <= '9'; s++) {
                if (overflow)
                    continue;
                if (f > (DURATION_LIMIT - 1) / 10) {
                    overflow = true; /* further digits only refine below precision */
                    continue;
                }
                uint64_t y = f * 10 + (uint64_t)(*s - '0');
                if (y > DURATION_LIMIT) {
                    overflow = true;
                    continue;
                }
                f = y;
                scale *= 10;
            }
            post = s != fs;
        }
        if (!pre && !post)
            return -EINVAL;
        const char *us = s;
        while (*s && *s != '.' && !(*s >= '0' && *s <= '9'))
            s++;
        size_t ul = (size_t)(s - us);
        if (ul == 0)
            return -EINVAL; /* missing unit */
        uint64_t unit = 0;
        for (size_t i = 0; i < sizeof(duration_units) / sizeof(duration_units[0]); i++) {
            if (strlen(duration_units[i].name) == ul &&
                memcmp(duration_units[i].name, us, ul) == 0) {
                unit = duration_units[i].ns;
                break;
            }
        }
        if (unit == 0)
            return -EINVAL; /* unknown unit */
        if (v > DURATION_LIMIT / unit)
            return -ERANGE;
        v *= unit;
        if (f > 0) {
            v += (uint64_t)((double)f * ((double)unit / scale));
            if (v > DURATION_LIMIT)
                return -ERANGE;
        }
        d += v;
        if (d > DURATION_LIMIT)
            return -ERANGE;
    }
    if (neg) {
        *ns = d == DURATION_LIMIT ? INT64_MIN : -(int64_t)d;
        return 0;
    }
    if (d > DURATION_LIMIT - 1)
        return -ERANGE;
    *ns = (int64_t)d;
    return 0;
}

/* Writes the fraction of v/10^prec into the tail ending at *w, omitting trailing zeros (and the
   point when the fraction is zero). Returns v/10^prec. */
static uint64_t fmt_frac(char *buf, size_t *w, uint64_t v, int prec)
{
    bool print = false;
    for (int i = 0; i < prec; i++) {
        unsigned digit = (unsigned)(v % 10);
        print = print || digit != 0;
        if (print)
            buf[--*w] = (char)('0' + digit);
        v /= 10;
    }
    if (print)
        buf[--*w] = '.';
    return v;
}

static void fmt_int(char *buf, size_t *w, uint64_t v)
{
    if (v == 0) {
        buf[--*w] = '0';
        return;
    }
    while (v > 0) {
        buf[--*w] = (char)('0' + v % 10);
        v /= 10;
    }
}

void nsq_format_duration(int64_t ns, char *out, size_t len)
{
    char buf[32];
    size_t w = sizeof(buf);
    bool neg = ns < 0;
    uint64_t u = neg ? (uint64_t)0 - (uint64_t)ns : (uint64_t)ns;
    if (u < 1000000000ULL) {
        int prec = 0;
        buf[--w] = 's';
        if (u == 0) {
            buf[--w] = '0';
            snprintf(out, len, "%.*s", (int)(sizeof(buf) - w), buf + w);
            return;
        } else if (u < 1000ULL) {
            prec = 0;
            buf[--w] = 'n';
        } else if (u < 1000000ULL) {
            prec = 3;
            buf[--w] = '\xb5';
            buf[--w] = '\xc2';
        } else {
            prec = 6;
            buf[--w] = 'm';
        }
        u = fmt_frac(buf, &w, u, prec);
        fmt_int(buf, &w, u);
    } else {
        buf[--w] = 's';
        u = fmt_frac(buf, &w, u, 9);
        fmt_int(buf, &w, u % 60);
        u /= 60;
        if (u > 0) {
            buf[--w] = 'm';
            fmt_int(buf, &w, u % 60);
            u /= 60;
            if (u > 0) {
                buf[--w] = 'h';
                fmt_int(buf, &w, u);
            }
        }
    }
    if (neg)
        buf[--w] = '-';
    snprintf(out, len, "%.*s", (int)(sizeof(buf) - w), buf + w);
}

/* ---- scalar parsing ----------------------------------------------------------------------- */

int nsq_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"1", "t", "T", "TRUE", "true", "True"};
    static const char *const no[] = {"0", "f", "F", "FALSE", "false", "False"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -EINVAL;
}

/* Go's strconv.ParseInt(s, 0, 64): optional sign, 0x/0o/0b/0 prefixes, '_' between digits only
   with a prefix. */
static int parse_int64(const char *s, int64_t *out)
{
    const char *p = s;
    bool neg = false;
    if (*p == '+' || *p == '-') {
        neg = *p == '-';
        p++;
    }
    int base = 10;
    bool prefixed = false;
    if (p[0] == '0' && p[1] != '\0') {
        prefixed = true;
        if (p[1] == 'x' || p[1] == 'X') {
            base = 16;
            p += 2;
        } else if (p[1] == 'o' || p[1] == 'O') {
            base = 8;
            p += 2;
        } else if (p[1] == 'b' || p[1] == 'B') {
            base = 2;
            p += 2;
        } else {
            base = 8;
            p += 1;
        }
    }
    if (*p == '\0')
        return -EINVAL;
    uint64_t v = 0;
    bool range = false, any = false;
    char last = prefixed ? '_' : 0;
    for (; *p; p++) {
        if (*p == '_') {
            if (!prefixed || (last == '_' && any))
                return -EINVAL;
            last = '_';
            continue;
        }
        int d = (*p >= '0' && *p <= '9')   ? *p - '0'
                : (*p >= 'a' && *p <= 'z') ? *p - 'a' + 10
                : (*p >= 'A' && *p <= 'Z') ? *p - 'A' + 10
                                           : 99;
        if (d >= base)
            return -EINVAL;
        if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base)
            range = true;
        else
            v = v * (uint64_t)base + (uint64_t)d;
        last = *p;
        any = true;
    }
    if (last == '_' && any)
        return -EINVAL;
    if (range || v > (neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX))
        return -ERANGE;
    *out = neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v) : (int64_t)v;
    return 0;
}

static int parse_float(const char *s, double *out)
{
    if (!*s || strchr(" \t\n\r\f\v", *s))
        return -EINVAL;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*end)
        return -EINVAL;
    if (errno == ERANGE && (v == HUGE_VAL || v == -HUGE_VAL))
        return -ERANGE;
    *out = v;
    return 0;
}

/* ---- setting values ----------------------------------------------------------------------- */

static int strlist_append(struct nsq_strlist *l, const char *s, size_t len)
{
    char **ni = realloc(l->items, (l->len + 1) * sizeof(*ni));
    if (!ni)
        return -ENOMEM;
    l->items = ni;
    if (!(ni[l->len] = strndup(s, len)))
        return -ENOMEM;
    l->len++;
    return 0;
}

static void strlist_clear(struct nsq_strlist *l)
{
    for (size_t i = 0; i < l->len; i++)
        free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->len = 0;
}

static int floatlist_append(struct nsq_floatlist *l, double v)
{
    double *ni = realloc(l->items, (l->len + 1) * sizeof(*ni));
    if (!ni)
        return -ENOMEM;
    l->items = ni;
    ni[l->len++] = v;
    return 0;
}

static void floatlist_clear(struct nsq_floatlist *l)
{
    free(l->items);
    l->items = NULL;
    l->len = 0;
}

static int cmp_desc(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Appends comma-separated floats; sorted descending when `sort`. */
static int floatlist_add_text(struct nsq_floatlist *l, const char *text, bool sort)
{
    const char *p = text;
    for (;;) {
        const char *c = strchr(p, ',');
        size_t n = c ? (size_t)(c - p) : strlen(p);
        char tmp[VALUE_TEXT_MAX];
        if (n >= sizeof(tmp))
            return -EINVAL;
        memcpy(tmp, p, n);
        tmp[n] = '\0';
        double v;
        int rc = parse_float(tmp, &v);
        if (rc)
            return rc;
        if ((rc = floatlist_append(l, v)))
            return rc;
        if (!c)
            break;
        p = c + 1;
    }
    if (sort)
        qsort(l->items, l->len, sizeof(double), cmp_desc);
    return 0;
}

static void clear_target(const struct nsq_opt *o)
{
    switch (o->type) {
    case NSQ_OPT_STRING:
        free(*(char **)o->target);
        *(char **)o->target = NULL;
        break;
    case NSQ_OPT_STRING_LIST:
        strlist_clear(o->target);
        break;
    case NSQ_OPT_FLOAT_LIST:
        floatlist_clear(o->target);
        break;
    case NSQ_OPT_CUSTOM:
        if (o->release)
            o->release(o->target);
        break;
    default:
        break;
    }
}

int nsq_options_set(const struct nsq_opt *o, const char *text)
{
    int rc;
    switch (o->type) {
    case NSQ_OPT_BOOL:
        return nsq_parse_bool(text, (bool *)o->target);
    case NSQ_OPT_INT: {
        int64_t v;
        if ((rc = parse_int64(text, &v)))
            return rc;
        if (v < INT32_MIN || v > INT32_MAX)
            return -ERANGE;
        *(int *)o->target = (int)v;
        return 0;
    }
    case NSQ_OPT_INT64:
        return parse_int64(text, (int64_t *)o->target);
    case NSQ_OPT_DURATION:
        return nsq_parse_duration(text, (int64_t *)o->target);
    case NSQ_OPT_STRING: {
        char *s = strdup(text);
        if (!s)
            return -ENOMEM;
        free(*(char **)o->target);
        *(char **)o->target = s;
        return 0;
    }
    case NSQ_OPT_STRING_LIST:
        return strlist_append(o->target, text, strlen(text));
    case NSQ_OPT_FLOAT_LIST:
        return floatlist_add_text(o->target, text, true);
    case NSQ_OPT_CUSTOM:
        return o->parse ? o->parse(text, o->target) : -EINVAL;
    }
    return -EINVAL;
}

static bool is_bool_flag(const struct nsq_opt *o)
{
    return o->type == NSQ_OPT_BOOL || (o->type == NSQ_OPT_CUSTOM && o->bool_like);
}

/* ---- config names ------------------------------------------------------------------------- */

int nsq_options_cfg_name(const struct nsq_opt *o, char *buf, size_t len)
{
    const char *src = o->cfg ? o->cfg : o->flag;
    size_t n = strlen(src);
    if (n + 1 > len)
        return -ENAMETOOLONG;
    for (size_t i = 0; i <= n; i++)
        buf[i] = (!o->cfg && src[i] == '-') ? '_' : src[i];
    return 0;
}

const struct nsq_opt *nsq_options_find_cfg(const struct nsq_opt *table, size_t n,
                                           const char *cfg_name)
{
    char name[CFG_NAME_MAX];
    for (size_t i = 0; i < n; i++) {
        if (nsq_options_cfg_name(&table[i], name, sizeof(name)) == 0 && name[0] &&
            strcmp(name, cfg_name) == 0)
            return &table[i];
    }
    return NULL;
}

/* ---- config values ------------------------------------------------------------------------ */

/* Text form of a scalar TOML value, as Go's fmt %v would print it. */
static void toml_scalar_text(const struct nsq_toml_value *v, char *buf, size_t len)
{
    switch (v->type) {
    case NSQ_TOML_STRING:
        snprintf(buf, len, "%s", v->u.s);
        break;
    case NSQ_TOML_INT:
        snprintf(buf, len, "%" PRId64, v->u.i);
        break;
    case NSQ_TOML_FLOAT:
        nsq_options_format_float(v->u.f, buf, len);
        break;
    case NSQ_TOML_BOOL:
        snprintf(buf, len, "%s", v->u.b ? "true" : "false");
        break;
    case NSQ_TOML_ARRAY: {
        size_t used = 0;
        buf[0] = '\0';
        for (size_t i = 0; i < v->u.arr.len && used + 1 < len; i++) {
            if (i)
                buf[used++] = ',';
            buf[used] = '\0';
            toml_scalar_text(&v->u.arr.items[i], buf + used, len - used);
            used += strlen(buf + used);
        }
        break;
    }
    }
}

/* Go's %v of a config value for error messages: arrays as [a b c]. */
static void toml_value_show(const struct nsq_toml_value *v, char *buf, size_t len)
{
    if (v->type != NSQ_TOML_ARRAY) {
        toml_scalar_text(v, buf, len);
        return;
    }
    size_t used = (size_t)snprintf(buf, len, "[");
    for (size_t i = 0; i < v->u.arr.len && used + 1 < len; i++) {
        if (i && used + 1 < len)
            buf[used++] = ' ';
        toml_value_show(&v->u.arr.items[i], buf + used, len - used);
        used += strlen(buf + used);
    }
    if (used + 1 < len) {
        buf[used++] = ']';
        buf[used] = '\0';
    }
}

/* Coerces a config-file value into o's target (go-options rules, flags.md §1). */
static int set_from_config(const struct nsq_opt *o, const struct nsq_toml_value *v)
{
    char text[VALUE_TEXT_MAX];
    int rc;
    switch (o->type) {
    case NSQ_OPT_BOOL:
        if (v->type == NSQ_TOML_BOOL) {
            *(bool *)o->target = v->u.b;
            return 0;
        }
        if (v->type == NSQ_TOML_INT) {
            /* upstream quirk: an integer is inverted (0 → true) */
            *(bool *)o->target = v->u.i == 0;
            return 0;
        }
        if (v->type == NSQ_TOML_STRING)
            return nsq_parse_bool(v->u.s, (bool *)o->target);
        return -EINVAL;
    case NSQ_OPT_INT:
    case NSQ_OPT_INT64:
        if (v->type == NSQ_TOML_INT) {
            if (o->type == NSQ_OPT_INT) {
                if (v->u.i < INT32_MIN || v->u.i > INT32_MAX)
                    return -ERANGE;
                *(int *)o->target = (int)v->u.i;
            } else {
                *(int64_t *)o->target = v->u.i;
            }
            return 0;
        }
        if (v->type == NSQ_TOML_STRING)
            return nsq_options_set(o, v->u.s);
        return -EINVAL;
    case NSQ_OPT_DURATION:
        if (v->type == NSQ_TOML_INT) {
            /* an integer duration in a config file means milliseconds */
            if (v->u.i > INT64_MAX / 1000000 || v->u.i < INT64_MIN / 1000000)
                return -ERANGE;
            *(int64_t *)o->target = v->u.i * 1000000;
            return 0;
        }
        if (v->type == NSQ_TOML_STRING)
            return nsq_parse_duration(v->u.s, (int64_t *)o->target);
        return -EINVAL;
    case NSQ_OPT_STRING:
        if (v->type == NSQ_TOML_ARRAY)
            return -EINVAL;
        toml_scalar_text(v, text, sizeof(text));
        return nsq_options_set(o, v->type == NSQ_TOML_STRING ? v->u.s : text);
    case NSQ_OPT_STRING_LIST:
        strlist_clear(o->target);
        if (v->type == NSQ_TOML_STRING) {
            /* one comma-separated string */
            const char *p = v->u.s;
            for (;;) {
                const char *c = strchr(p, ',');
                size_t n = c ? (size_t)(c - p) : strlen(p);
                if ((rc = strlist_append(o->target, p, n)))
                    return rc;
                if (!c)
                    return 0;
                p = c + 1;
            }
        }
        if (v->type != NSQ_TOML_ARRAY)
            return -EINVAL;
        for (size_t i = 0; i < v->u.arr.len; i++) {
            const struct nsq_toml_value *it = &v->u.arr.items[i];
            if (it->type != NSQ_TOML_STRING)
                return -EINVAL;
            if ((rc = strlist_append(o->target, it->u.s, strlen(it->u.s))))
                return rc;
        }
        return 0;
    case NSQ_OPT_FLOAT_LIST:
        floatlist_clear(o->target);
        if (v->type == NSQ_TOML_STRING)
            return floatlist_add_text(o->target, v->u.s, false);
        if (v->type != NSQ_TOML_ARRAY)
            return -EINVAL;
        for (size_t i = 0; i < v->u.arr.len; i++) {
            const struct nsq_toml_value *it = &v->u.arr.items[i];
            double d;
            if (it->type == NSQ_TOML_FLOAT)
                d = it->u.f;
            else if (it->type == NSQ_TOML_INT)
                d = (double)it->u.i;
            else
                return -EINVAL;
            if ((rc = floatlist_append(o->target, d)))
                return rc;
        }
        return 0;
    case NSQ_OPT_CUSTOM:
        clear_target(o);
        toml_scalar_text(v, text, sizeof(text));
        return o->parse ? o->parse(text, o->target) : -EINVAL;
    }
    return -EINVAL;
}

/* ---- errors ------------------------------------------------------------------------------- */

static void seterr(char *err, size_t errlen, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Go's %q for ASCII-ish text (non-printable bytes as \xNN, UTF-8 passed through). */
static void goquote(const char *s, char *buf, size_t len)
{
    size_t w = 0;
    if (len < 3) {
        if (len)
            buf[0] = '\0';
        return;
    }
    buf[w++] = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p && w + 6 < len; p++) {
        unsigned char c = *p;
        if (c == '"' || c == '\\') {
            buf[w++] = '\\';
            buf[w++] = (char)c;
        } else if (c == '\n') {
            buf[w++] = '\\';
            buf[w++] = 'n';
        } else if (c == '\t') {
            buf[w++] = '\\';
            buf[w++] = 't';
        } else if (c == '\r') {
            buf[w++] = '\\';
            buf[w++] = 'r';
        } else if (c < 0x20 || c == 0x7f) {
            w += (size_t)snprintf(buf + w, len - w, "\\x%02x", c);
        } else {
            buf[w++] = (char)c;
        }
    }
    buf[w++] = '"';
    buf[w] = '\0';
}

/* Go's text for a value o rejected with rc. */
static void set_error_text(const struct nsq_opt *o, const char *value, int rc, char *buf,
                           size_t len)
{
    if (o->type == NSQ_OPT_CUSTOM && o->parse_error) {
        const char *pct = strstr(o->parse_error, "%s");
        if (pct)
            snprintf(buf, len, "%.*s%s%s", (int)(pct - o->parse_error), o->parse_error, value,
                     pct + 2);
        else
            snprintf(buf, len, "%s", o->parse_error);
        return;
    }
    snprintf(buf, len, "%s", rc == -ERANGE ? "value out of range" : "parse error");
}

/* ---- parse -------------------------------------------------------------------------------- */

static const struct nsq_opt *find_flag(const struct nsq_opt *table, size_t n, const char *name,
                                       size_t len, size_t *idx)
{
    for (size_t i = 0; i < n; i++) {
        if (strlen(table[i].flag) == len && memcmp(table[i].flag, name, len) == 0) {
            *idx = i;
            return &table[i];
        }
    }
    return NULL;
}

static int apply_defaults(const struct nsq_opt *table, size_t n, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        const struct nsq_opt *o = &table[i];
        clear_target(o);
        switch (o->type) {
        case NSQ_OPT_BOOL:
            *(bool *)o->target = false;
            break;
        case NSQ_OPT_INT:
            *(int *)o->target = 0;
            break;
        case NSQ_OPT_INT64:
        case NSQ_OPT_DURATION:
            *(int64_t *)o->target = 0;
            break;
        default:
            break;
        }
        int rc = 0;
        if (o->defval && (o->defval[0] || o->type == NSQ_OPT_STRING))
            rc = nsq_options_set(o, o->defval);
        else if (o->type == NSQ_OPT_STRING)
            rc = nsq_options_set(o, "");
        if (rc) {
            seterr(err, errlen, "invalid default %s for flag -%s", o->defval, o->flag);
            return NSQ_OPTIONS_FLAG_ERROR;
        }
    }
    return 0;
}

/* Sets every option not given on the command line (explicit[i] false) that the TOML file at path
   names. Returns NSQ_OPTIONS_OK, or NSQ_OPTIONS_CONFIG_ERROR with err set at the first failure. */
static int apply_config_file(const struct nsq_opt *table, size_t n, const char *path,
                             const bool *explicit, char *err, size_t errlen)
{
    struct nsq_toml *doc = NULL;
    char terr[VALUE_TEXT_MAX];
    terr[0] = '\0';
    if (nsq_toml_load(path, &doc, terr, sizeof(terr)) < 0) {
        seterr(err, errlen, "failed to load config file %s - %s", path, terr);
        return NSQ_OPTIONS_CONFIG_ERROR;
    }
    int rc = NSQ_OPTIONS_OK;
    for (size_t i = 0; i < n && rc == NSQ_OPTIONS_OK; i++) {
        char cname[CFG_NAME_MAX];
        if (explicit[i] || nsq_options_cfg_name(&table[i], cname, sizeof(cname)) || !cname[0])
            continue;
        const struct nsq_toml_value *v = nsq_toml_get(doc, cname);
        if (!v)
            continue;
        if (set_from_config(&table[i], v)) {
            char shown[VALUE_TEXT_MAX];
            toml_value_show(v, shown, sizeof(shown));
            seterr(err, errlen, "failed parsing %s %s", cname, shown);
            rc = NSQ_OPTIONS_CONFIG_ERROR;
        }
    }
    nsq_toml_free(doc);
    return rc;
}

/* State of one command-line parse. */
struct flag_parser {
    const struct nsq_opt *table;
    size_t n;
    const char *program;
    int argc;
    char **argv;
    int a;          /* index of the argument being parsed */
    bool *explicit; /* per table entry: given on the command line (owned) */
    char *config;   /* -config value (owned), or NULL */
    bool version;
    char *err;
    size_t errlen;
};

/* Outcome of parse_flag beside the NSQ_OPTIONS_* codes: the flags have ended. */
#define FLAGS_END 2 /* distinct from every NSQ_OPTIONS_* code */

/* The flag's value: "=value" in the same argument, else the next argument. NULL (with the error
   set) when there is none. */
static const char *flag_value(struct flag_parser *p, const char *inline_value, const char *name)
{
    if (inline_value)
        return inline_value;
    if (p->a + 1 >= p->argc) {
        seterr(p->err, p->errlen, "flag needs an argument: -%s", name);
        return NULL;
    }
    return p->argv[++p->a];
}

/* -config, -version, -help/-h: flags every program has outside its table. Returns 1 when name
   was one of them (handled, or *rc set to an error/exit code), 0 otherwise. */
static int builtin_flag(struct flag_parser *p, const char *name, size_t nlen, const char *value,
                        int *rc)
{
    char quoted[VALUE_TEXT_MAX + 8];
    *rc = NSQ_OPTIONS_OK;
    if (nlen == strlen("config") && memcmp(name, "config", nlen) == 0) {
        if (!(value = flag_value(p, value, "config"))) {
            *rc = NSQ_OPTIONS_FLAG_ERROR;
            return 1;
        }
        free(p->config);
        if (!(p->config = strdup(value)))
            *rc = NSQ_OPTIONS_FLAG_ERROR;
        return 1;
    }
    if (nlen == strlen("version") && memcmp(name, "version", nlen) == 0) {
        if (value && nsq_parse_bool(value, &p->version) < 0) {
            goquote(value, quoted, sizeof(quoted));
            seterr(p->err, p->errlen, "invalid boolean value %s for -version: parse error", quoted);
            *rc = NSQ_OPTIONS_FLAG_ERROR;
        } else if (!value) {
            p->version = true;
        }
        return 1;
    }
    if ((nlen == 4 && memcmp(name, "help", 4) == 0) || (nlen == 1 && name[0] == 'h')) {
        nsq_options_usage(p->table, p->n, p->program, stderr);
        *rc = NSQ_OPTIONS_EXIT;
        return 1;
    }
    return 0;
}

/* Sets table flag o (entry idx) from the command line. Returns an NSQ_OPTIONS_* code. */
static int set_flag(struct flag_parser *p, const struct nsq_opt *o, size_t idx, const char *value)
{
    char quoted[VALUE_TEXT_MAX + 8], why[VALUE_TEXT_MAX];
    /* A repeatable flag given on the command line replaces its default list. */
    if (!p->explicit[idx] && (o->type == NSQ_OPT_STRING_LIST || o->type == NSQ_OPT_FLOAT_LIST ||
                              o->type == NSQ_OPT_CUSTOM))
        clear_target(o);
    p->explicit[idx] = true;

    bool boolean = is_bool_flag(o);
    if (boolean && !value)
        value = "true";
    if (!boolean && !(value = flag_value(p, value, o->flag)))
        return NSQ_OPTIONS_FLAG_ERROR;
    int r = nsq_options_set(o, value);
    if (r == 0)
        return NSQ_OPTIONS_OK;
    goquote(value, quoted, sizeof(quoted));
    set_error_text(o, value, r, why, sizeof(why));
    if (boolean)
        seterr(p->err, p->errlen, "invalid boolean value %s for -%s: %s", quoted, o->flag, why);
    else
        seterr(p->err, p->errlen, "invalid value %s for flag -%s: %s", quoted, o->flag, why);
    return NSQ_OPTIONS_FLAG_ERROR;
}

/* Parses argv[p->a] (Go flag syntax: -name, --name, -name=value, -name value). Returns
   NSQ_OPTIONS_OK, FLAGS_END at the first non-flag argument or "--", or an error/exit code. */
static int parse_flag(struct flag_parser *p)
{
    const char *s = p->argv[p->a];
    if (strlen(s) < 2 || s[0] != '-')
        return FLAGS_END;
    int minuses = s[1] == '-' ? 2 : 1;
    if (minuses == 2 && s[2] == '\0')
        return FLAGS_END;
    const char *name = s + minuses;
    if (name[0] == '\0' || name[0] == '-' || name[0] == '=') {
        seterr(p->err, p->errlen, "bad flag syntax: %s", s);
        return NSQ_OPTIONS_FLAG_ERROR;
    }
    const char *eq = strchr(name, '=');
    size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
    const char *value = eq ? eq + 1 : NULL;
    size_t idx = 0;
    const struct nsq_opt *o = find_flag(p->table, p->n, name, nlen, &idx);
    if (o)
        return set_flag(p, o, idx, value);
    int rc;
    if (builtin_flag(p, name, nlen, value, &rc))
        return rc;
    seterr(p->err, p->errlen, "flag provided but not defined: -%.*s", (int)nlen, name);
    return NSQ_OPTIONS_FLAG_ERROR;
}

int nsq_options_parse(const struct nsq_opt *table, size_t n, const char *program, int argc,
                      char **argv, char *err, size_t errlen)
{
    struct flag_parser p = {.table = table,
                            .n = n,
                            .program = program,
                            .argc = argc,
                            .argv = argv,
                            .err = err,
                            .errlen = errlen};
    int rc = NSQ_OPTIONS_OK;
    if (err && errlen)
        err[0] = '\0';
    if (!(p.explicit = calloc(n ? n : 1, sizeof(bool)))) {
        seterr(err, errlen, "out of memory");
        return NSQ_OPTIONS_FLAG_ERROR;
    }
    if ((rc = apply_defaults(table, n, err, errlen)))
        goto out;
    for (p.a = 1; p.a < argc; p.a++) {
        rc = parse_flag(&p);
        if (rc == FLAGS_END) {
            rc = NSQ_OPTIONS_OK;
            break;
        }
        if (rc != NSQ_OPTIONS_OK)
            goto out;
    }
    if (p.version) {
        printf("%s\n", nsq_version_string(program));
        fflush(stdout);
        rc = NSQ_OPTIONS_EXIT;
        goto out;
    }
    if (p.config && p.config[0])
        rc = apply_config_file(table, n, p.config, p.explicit, err, errlen);
out:
    free(p.config);
    free(p.explicit);
    return rc;
}

void nsq_options_free(const struct nsq_opt *table, size_t n)
{
    for (size_t i = 0; i < n; i++)
        clear_target(&table[i]);
}

/* ---- usage -------------------------------------------------------------------------------- */

struct usage_entry {
    const char *flag;
    const char *help;
    const char *type_name;    /* "" for bools */
    char def[VALUE_TEXT_MAX]; /* shown default, "" = zero value (not shown) */
};

static int usage_cmp(const void *a, const void *b)
{
    return strcmp(((const struct usage_entry *)a)->flag, ((const struct usage_entry *)b)->flag);
}

static void usage_default(const struct nsq_opt *o, char *def, size_t len)
{
    def[0] = '\0';
    const char *dv = o->defval ? o->defval : "";
    switch (o->type) {
    case NSQ_OPT_BOOL: {
        bool b = false;
        if (nsq_parse_bool(dv, &b) == 0 && b)
            snprintf(def, len, "true");
        break;
    }
    case NSQ_OPT_INT:
    case NSQ_OPT_INT64: {
        int64_t v = 0;
        if (parse_int64(dv, &v) == 0 && v != 0)
            snprintf(def, len, "%" PRId64, v);
        break;
    }
    case NSQ_OPT_DURATION: {
        int64_t v = 0;
        if (nsq_parse_duration(dv, &v) == 0 && v != 0)
            nsq_format_duration(v, def, len);
        break;
    }
    case NSQ_OPT_STRING:
        if (dv[0])
            goquote(dv, def, len);
        break;
    case NSQ_OPT_STRING_LIST:
    case NSQ_OPT_FLOAT_LIST:
        snprintf(def, len, "%s", dv);
        break;
    case NSQ_OPT_CUSTOM:
        snprintf(def, len, "%s", o->usage_default ? o->usage_default : dv);
        break;
    }
}

void nsq_options_usage(const struct nsq_opt *table, size_t n, const char *program, FILE *out)
{
    size_t total = n + 2;
    struct usage_entry *e = calloc(total, sizeof(*e));
    if (!e)
        return;
    for (size_t i = 0; i < n; i++) {
        const struct nsq_opt *o = &table[i];
        e[i].flag = o->flag;
        e[i].help = o->help ? o->help : "";
        switch (o->type) {
        case NSQ_OPT_BOOL:
            e[i].type_name = "";
            break;
        case NSQ_OPT_INT:
        case NSQ_OPT_INT64:
            e[i].type_name = "int";
            break;
        case NSQ_OPT_DURATION:
            e[i].type_name = "duration";
            break;
        case NSQ_OPT_STRING:
            e[i].type_name = "string";
            break;
        case NSQ_OPT_CUSTOM:
            e[i].type_name = o->bool_like ? "" : "value";
            break;
        default:
            e[i].type_name = "value";
            break;
        }
        usage_default(o, e[i].def, sizeof(e[i].def));
    }
    e[n] = (struct usage_entry){"config", "path to config file", "string", ""};
    e[n + 1] = (struct usage_entry){"version", "print version string", "", ""};
    qsort(e, total, sizeof(*e), usage_cmp);

    fprintf(out, "Usage of %s:\n", program);
    for (size_t i = 0; i < total; i++) {
        /* A `name` in back quotes in the help text replaces the type name. */
        const char *help = e[i].help;
        const char *bq1 = strchr(help, '`'), *bq2 = bq1 ? strchr(bq1 + 1, '`') : NULL;
        char line[VALUE_TEXT_MAX * 4];
        size_t w = 0;
        w += (size_t)snprintf(line + w, sizeof(line) - w, "  -%s", e[i].flag);
        if (bq2)
            w += (size_t)snprintf(line + w, sizeof(line) - w, " %.*s", (int)(bq2 - bq1 - 1),
                                  bq1 + 1);
        else if (e[i].type_name[0])
            w += (size_t)snprintf(line + w, sizeof(line) - w, " %s", e[i].type_name);
        fwrite(line, 1, w < sizeof(line) ? w : sizeof(line) - 1, out);
        fputs(w <= 4 ? "\t" : "\n    \t", out);
        for (const char *p = help; *p; p++) {
            if (bq2 && (p == bq1 || p == bq2))
                continue;
            if (*p == '\n')
                fputs("\n    \t", out);
            else
                fputc(*p, out);
        }
        if (e[i].def[0])
            fprintf(out, " (default %s)", e[i].def);
        fputc('\n', out);
    }
    free(e);
}

/* ---- rendering ---------------------------------------------------------------------------- */

int nsq_options_format_float(double v, char *buf, size_t len)
{
    if (isnan(v) || isinf(v))
        return snprintf(buf, len, "%s",
                        isnan(v) ? "NaN"
                        : v > 0  ? "+Inf"
                                 : "-Inf") < 0
                       ? -EINVAL
                       : 0;
    double a = fabs(v);
    /* encoding/json: shortest repr that round-trips; exponent form below 1e-6 and from 1e21. */
    char tmp[64];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    if (a != 0 && (a < 1e-6 || a >= 1e21)) {
        /* encoding/json shortens a two-digit negative exponent: e-07 → e-7 */
        size_t n = strlen(tmp);
        if (n >= 4 && tmp[n - 4] == 'e' && tmp[n - 3] == '-' && tmp[n - 2] == '0') {
            tmp[n - 2] = tmp[n - 1];
            tmp[n - 1] = '\0';
        }
        snprintf(buf, len, "%s", tmp);
        return 0;
    }
    if (strchr(tmp, 'e')) {
        /* %g switched to exponent form; print positionally instead. */
        int digits = 0;
        for (const char *p = tmp; *p && *p != 'e'; p++)
            if (*p >= '0' && *p <= '9')
                digits++;
        int exp10 = atoi(strchr(tmp, 'e') + 1); /* exact, unlike log10 */
        int frac = digits - 1 - exp10;
        snprintf(buf, len, "%.*f", frac > 0 ? frac : 0, v);
        return 0;
    }
    snprintf(buf, len, "%s", tmp);
    return 0;
}

int nsq_options_render(const struct nsq_opt *o, struct evbuffer *out)
{
    char num[64];
    switch (o->type) {
    case NSQ_OPT_BOOL:
        return evbuffer_add_printf(out, "%s", *(bool *)o->target ? "true" : "false") < 0 ? -ENOMEM
                                                                                         : 0;
    case NSQ_OPT_INT:
        return evbuffer_add_printf(out, "%d", *(int *)o->target) < 0 ? -ENOMEM : 0;
    case NSQ_OPT_INT64:
    case NSQ_OPT_DURATION:
        return evbuffer_add_printf(out, "%" PRId64, *(int64_t *)o->target) < 0 ? -ENOMEM : 0;
    case NSQ_OPT_STRING: {
        const char *s = *(char **)o->target;
        return evbuffer_add(out, s ? s : "", s ? strlen(s) : 0) < 0 ? -ENOMEM : 0;
    }
    case NSQ_OPT_STRING_LIST: {
        const struct nsq_strlist *l = o->target;
        if (l->len == 0)
            return evbuffer_add(out, "null", 4) < 0 ? -ENOMEM : 0;
        evbuffer_add(out, "[", 1);
        for (size_t i = 0; i < l->len; i++) {
            if (i)
                evbuffer_add(out, ",", 1);
            nsq_json_escape(out, l->items[i], strlen(l->items[i]));
        }
        return evbuffer_add(out, "]", 1) < 0 ? -ENOMEM : 0;
    }
    case NSQ_OPT_FLOAT_LIST: {
        const struct nsq_floatlist *l = o->target;
        if (l->len == 0)
            return evbuffer_add(out, "null", 4) < 0 ? -ENOMEM : 0;
        evbuffer_add(out, "[", 1);
        for (size_t i = 0; i < l->len; i++) {
            if (i)
                evbuffer_add(out, ",", 1);
            nsq_options_format_float(l->items[i], num, sizeof(num));
            evbuffer_add(out, num, strlen(num));
        }
        return evbuffer_add(out, "]", 1) < 0 ? -ENOMEM : 0;
    }
    case NSQ_OPT_CUSTOM:
        return o->render ? o->render(o->target, out) : -EINVAL;
    }
    return -EINVAL;
}

/* ---- shared options ----------------------------------------------------------------------- */

int nsq_opt_log_level_parse(const char *text, void *target)
{
    return nsq_log_parse_level(text, (enum nsq_log_level *)target);
}

int nsq_opt_log_level_render(const void *target, struct evbuffer *out)
{
    return evbuffer_add_printf(out, "%d", (int)*(const enum nsq_log_level *)target) < 0 ? -ENOMEM
                                                                                        : 0;
}
