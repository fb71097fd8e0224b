/*
 * metadata: nsqd.dat's topics and channels, walked for a visitor (see metadata.h).
 */
#include "metadata.h"

#include <errno.h>
#include <string.h>

#include "nsq_log.h"
#include "nsq_names.h"

static bool json_paused(const cJSON *obj)
{
    return cJSON_IsTrue(cJSON_GetObjectItem(obj, "paused"));
}

/* The "name" string of obj, or NULL when it has none. */
static const char *json_name(const cJSON *obj)
{
    const cJSON *n = cJSON_GetObjectItem(obj, "name");
    return cJSON_IsString(n) ? n->valuestring : NULL;
}

/* The array member key of obj, or NULL. */
static const cJSON *json_array(const cJSON *obj, const char *key)
{
    const cJSON *a = cJSON_GetObjectItem(obj, key);
    return cJSON_IsArray(a) ? a : NULL;
}

static void visit_channels(const cJSON *jt, void *topic, const struct nsqd_metadata_visitor *v)
{
    const cJSON *jc;
    cJSON_ArrayForEach(jc, json_array(jt, "channels"))
    {
        const char *name = json_name(jc);
        if (!name)
            continue;
        if (!nsq_channel_name_valid(name, strlen(name))) {
            nsq_warn("skipping creation of invalid channel %s", name);
            continue;
        }
        v->channel(v->arg, topic, name, json_paused(jc), jc);
    }
}

int nsqd_metadata_parse(const char *text, size_t len, const struct nsqd_metadata_visitor *v)
{
    cJSON *root = cJSON_ParseWithLength(text, len);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return -EINVAL;
    }
    const cJSON *jt;
    cJSON_ArrayForEach(jt, json_array(root, "topics"))
    {
        const char *name = json_name(jt);
        if (!name)
            continue;
        if (!nsq_topic_name_valid(name, strlen(name))) {
            nsq_warn("skipping creation of invalid topic %s", name);
            continue;
        }
        void *topic = v->topic(v->arg, name, json_paused(jt), jt);
        if (!topic)
            continue;
        visit_channels(jt, topic, v);
        v->topic_end(v->arg, topic);
    }
    cJSON_Delete(root);
    return 0;
}
