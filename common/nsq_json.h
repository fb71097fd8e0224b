/*
 * nsq_json: a streaming JSON writer whose output is byte-identical to Go's encoding/json for the
 * same values (cJSON is used for parsing only). Strings are escaped as Go does with HTML escaping
 * on: `"` and `\` as \" \\; \n \r \t short; other control bytes, '<', '>', '&', U+2028 and U+2029
 * as \u00XX / \u20XX (lowercase hex); invalid UTF-8 bytes each become \ufffd; DEL and all other
 * valid UTF-8 is written raw. Floats follow Go's float64 encoding: the shortest decimal that
 * round-trips, in exponent form only when abs < 1e-6 or abs >= 1e21 (with "e-7", not "e-07").
 *
 * Usage: a struct nsq_json on the stack pointed at an evbuffer; begin/end objects and arrays,
 * key() before each member value; commas are inserted automatically. Nesting is limited to
 * NSQ_JSON_MAX_DEPTH levels (deeper levels lose comma tracking). Append failures (ENOMEM) are not
 * reported; check the buffer if that matters.
 */
#ifndef NSQ_JSON_H
#define NSQ_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evbuffer;

#define NSQ_JSON_MAX_DEPTH    63
#define NSQ_JSON_FLOAT_BUFLEN 32 /* enough for any nsq_json_format_double output + NUL */

struct nsq_json {
    struct evbuffer *out;
    int depth;
    uint64_t need_comma; /* bit per depth: a value was written at this level */
};

void nsq_json_init(struct nsq_json *j, struct evbuffer *out);
void nsq_json_object_begin(struct nsq_json *j);
void nsq_json_object_end(struct nsq_json *j);
void nsq_json_array_begin(struct nsq_json *j);
void nsq_json_array_end(struct nsq_json *j);
void nsq_json_key(struct nsq_json *j, const char *key);
void nsq_json_key_len(struct nsq_json *j, const char *key, size_t len);
void nsq_json_string(struct nsq_json *j, const char *s); /* NULL writes "" */
void nsq_json_string_len(struct nsq_json *j, const char *s, size_t len);
void nsq_json_int(struct nsq_json *j, int64_t v);
void nsq_json_uint(struct nsq_json *j, uint64_t v);
/* Go's float64 encoding. NaN and infinities (which Go refuses to encode) are written as null. */
void nsq_json_double(struct nsq_json *j, double v);
void nsq_json_bool(struct nsq_json *j, bool v);
void nsq_json_null(struct nsq_json *j);
/* A value that is already JSON text (e.g. a nested document), written as is. */
void nsq_json_raw(struct nsq_json *j, const char *text, size_t len);

/* key + value helpers */
void nsq_json_kv_string(struct nsq_json *j, const char *key, const char *s);
void nsq_json_kv_string_len(struct nsq_json *j, const char *key, const char *s, size_t len);
void nsq_json_kv_int(struct nsq_json *j, const char *key, int64_t v);
void nsq_json_kv_uint(struct nsq_json *j, const char *key, uint64_t v);
void nsq_json_kv_double(struct nsq_json *j, const char *key, double v);
void nsq_json_kv_bool(struct nsq_json *j, const char *key, bool v);
void nsq_json_kv_null(struct nsq_json *j, const char *key);

/* Appends s as a quoted, Go-escaped JSON string (no comma handling). Returns 0 or -ENOMEM. */
int nsq_json_escape(struct evbuffer *out, const char *s, size_t len);

/* Formats v as Go's encoding/json does for float64 into buf (NUL-terminated); returns the length.
   NaN/±Inf give "null". */
size_t nsq_json_format_double(char buf[NSQ_JSON_FLOAT_BUFLEN], double v);

#endif
