/*
 * libFuzzer target for nsqd.dat as nsqd reads it at start (nsqd/metadata.c:
 * nsqd_metadata_parse), whatever a damaged disk or a hand edit left in the file.
 *
 * Invariants: no crash, leak or read past the bytes given; only topics and channels with valid
 * names are visited, each channel after its topic and before that topic ends; a JSON object
 * parses, anything else is refused with -EINVAL and nothing visited.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "metadata.h"
#include "nsq_log.h"
#include "nsq_names.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

struct walk {
    int topics, channels;
    bool in_topic;
    int handle; /* the handle given to the open topic */
};

static void *on_topic(void *arg, const char *name, bool paused, const cJSON *obj)
{
    struct walk *w = arg;
    FUZZ_CHECK(!w->in_topic);
    FUZZ_CHECK(nsq_topic_name_valid(name, strlen(name)));
    FUZZ_CHECK(cJSON_IsObject(obj) && (paused == cJSON_IsTrue(cJSON_GetObjectItem(obj, "paused"))));
    w->topics++;
    w->in_topic = true;
    return &w->handle;
}

static void on_channel(void *arg, void *topic, const char *name, bool paused, const cJSON *obj)
{
    struct walk *w = arg;
    FUZZ_CHECK(w->in_topic && topic == &w->handle);
    FUZZ_CHECK(nsq_channel_name_valid(name, strlen(name)));
    FUZZ_CHECK(cJSON_IsObject(obj) && (paused == cJSON_IsTrue(cJSON_GetObjectItem(obj, "paused"))));
    w->channels++;
}

static void on_topic_end(void *arg, void *topic)
{
    struct walk *w = arg;
    FUZZ_CHECK(w->in_topic && topic == &w->handle);
    w->in_topic = false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool quiet;
    if (!quiet) {
        nsq_log_set_level(NSQ_LOG_FATAL); /* skipped names are logged; keep the run readable */
        quiet = true;
    }
    /* a private copy with no NUL after it, so ASan sees any read past the end */
    char *text = malloc(size ? size : 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    struct walk w = {0};
    struct nsqd_metadata_visitor v = {
            .arg = &w, .topic = on_topic, .channel = on_channel, .topic_end = on_topic_end};
    int rc = nsqd_metadata_parse(text, size, &v);
    FUZZ_CHECK(rc == 0 || rc == -EINVAL);
    FUZZ_CHECK(!w.in_topic);
    if (rc != 0)
        FUZZ_CHECK(w.topics == 0 && w.channels == 0);
    free(text);
    return 0;
}
