/*
 * libFuzzer target for the config file parser (common/nsq_toml.c), the format of --config for
 * all three daemons, and for the Go duration syntax the options layer applies to its string
 * values (common/nsq_options.c: nsq_parse_duration, nsq_format_duration).
 *
 * Input: a config file. Invariants: a failed parse reports "line N: ..." and no document; a
 * successful one has NUL-terminated keys that nsq_toml_get finds, and every string value that
 * parses as a duration formats back to text that parses to the same value.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nsq_options.h"
#include "nsq_toml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

static void check_value(const struct nsq_toml_value *v, int depth)
{
    FUZZ_CHECK(depth < 64);
    if (v->type == NSQ_TOML_STRING) {
        int64_t ns, back;
        char buf[64];
        (void)strlen(v->u.s);
        if (nsq_parse_duration(v->u.s, &ns) == 0) {
            nsq_format_duration(ns, buf, sizeof(buf));
            FUZZ_CHECK(nsq_parse_duration(buf, &back) == 0 && back == ns);
        }
    } else if (v->type == NSQ_TOML_ARRAY) {
        for (size_t i = 0; i < v->u.arr.len; i++)
            check_value(&v->u.arr.items[i], depth + 1);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct nsq_toml *t = NULL;
    char err[256] = "";
    int rc = nsq_toml_parse((const char *)data, size, &t, err, sizeof(err));
    if (rc != 0) {
        FUZZ_CHECK(t == NULL);
        FUZZ_CHECK(rc == -EINVAL || rc == -ENOMEM);
        FUZZ_CHECK(rc == -ENOMEM || strncmp(err, "line ", 5) == 0);
        return 0;
    }
    FUZZ_CHECK(t != NULL);
    for (size_t i = 0; i < t->len; i++) {
        FUZZ_CHECK(nsq_toml_get(t, t->kvs[i].key) != NULL);
        check_value(&t->kvs[i].v, 0);
    }
    nsq_toml_free(t);
    return 0;
}
