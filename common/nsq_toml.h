/*
 * nsq_toml: the subset of TOML used by the daemons' config files.
 *
 * Supported: `key = value` lines (bare or quoted keys), basic "..." and literal '...' strings,
 * integers (with _ separators, 0x/0o/0b), floats (incl. inf/nan), booleans, arrays of those
 * (nested, multi-line, trailing comma), comments and blank lines. A `[table]` header is accepted
 * and the keys below it are skipped: only top-level keys name options. Dates and inline tables
 * are rejected.
 */
#ifndef NSQ_TOML_H
#define NSQ_TOML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum nsq_toml_type { NSQ_TOML_STRING, NSQ_TOML_INT, NSQ_TOML_FLOAT, NSQ_TOML_BOOL, NSQ_TOML_ARRAY };

struct nsq_toml_value {
    enum nsq_toml_type type;
    union {
        char *s; /* NUL-terminated; may contain no NUL (\u0000 is rejected) */
        int64_t i;
        double f;
        bool b;
        struct {
            struct nsq_toml_value *items;
            size_t len;
        } arr;
    } u;
};

struct nsq_toml_kv {
    char *key;
    struct nsq_toml_value v;
};

/* A parsed document: top-level keys in file order. Owns all strings. */
struct nsq_toml {
    struct nsq_toml_kv *kvs;
    size_t len;
};

/* Parses text. Returns 0 and *out (caller frees with nsq_toml_free), or -EINVAL with a message
   "line N: ..." in err, or -ENOMEM. */
int nsq_toml_parse(const char *text, size_t len, struct nsq_toml **out, char *err, size_t errlen);
/* Reads and parses a file. Returns 0, -errno (err holds strerror text), or as nsq_toml_parse. */
int nsq_toml_load(const char *path, struct nsq_toml **out, char *err, size_t errlen);
/* Value of a top-level key, or NULL. */
const struct nsq_toml_value *nsq_toml_get(const struct nsq_toml *t, const char *key);
void nsq_toml_free(struct nsq_toml *t);

#endif
