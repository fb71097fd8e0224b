/*
 * libFuzzer target for the HTTP query string parser (nsq_http_parse_query in
 * common/nsq_http_server.c, Go's url.ParseQuery).
 *
 * Input: a query string (a NUL is appended; bytes after an embedded NUL are ignored, as a C
 * string would end there). Invariants: every parsed key and value is a NUL-terminated string
 * no longer than the input, and the return code is 0, -EINVAL or -ENOMEM.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sys/queue.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "nsq_http_server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *q = malloc(size + 1);
    struct evkeyvalq kv;
    struct evkeyval *e;

    if (q == NULL)
        return 0;
    memcpy(q, data, size);
    q[size] = '\0';
    kv.tqh_first = NULL;
    kv.tqh_last = &kv.tqh_first;
    int rc = nsq_http_parse_query(q, &kv);
    if (rc != 0 && rc != -EINVAL && rc != -ENOMEM)
        abort();
    for (e = kv.tqh_first; e != NULL; e = e->next.tqe_next) {
        if (strlen(e->key) > size || strlen(e->value) > size)
            abort();
    }
    evhttp_clear_headers(&kv);
    free(q);
    return 0;
}
