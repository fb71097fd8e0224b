/*
 * metadata: reading nsqd.dat (storage.md §5) apart from the daemon, so that the parse can be
 * tested and fuzzed on bytes. It walks the JSON's topics and channels and hands every one with a
 * valid name to the caller's visitor, in file order; invalid names are skipped with a warning, as
 * upstream does. Keys match case-insensitively, as Go's JSON decoding does ("Paused" is
 * "paused"). The file is written by nsqd_persist_metadata (nsqd.c).
 */
#ifndef NSQD_METADATA_H
#define NSQD_METADATA_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

struct nsqd_metadata_visitor {
    void *arg;
    /* A topic: returns a handle passed to its channels and to topic_end, or NULL to skip them.
       obj is the topic's JSON object (for fields beyond name and paused). */
    void *(*topic)(void *arg, const char *name, bool paused, const cJSON *obj);
    /* A channel of the topic whose handle is topic. */
    void (*channel)(void *arg, void *topic, const char *name, bool paused, const cJSON *obj);
    /* After the topic's channels. */
    void (*topic_end)(void *arg, void *topic);
};

/* Parses text (len bytes; need not be NUL-terminated) and visits it. Returns 0, or -EINVAL when
   it is not a JSON object (nothing visited). */
int nsqd_metadata_parse(const char *text, size_t len, const struct nsqd_metadata_visitor *v);

#endif
