/* nsq_names: validation of topic/channel names and ephemeral detection. */
#include "nsq_names.h"

#include <string.h>

static bool name_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

static bool name_valid(const char *name, size_t len)
{
    size_t base = len;

    if (name == NULL || len < 1 || len > NSQ_NAME_MAX_LEN)
        return false;
    if (nsq_name_is_ephemeral(name, len))
        base = len - NSQ_EPHEMERAL_SUFFIX_LEN;
    if (base == 0)
        return false;
    for (size_t i = 0; i < base; i++) {
        if (!name_char_ok(name[i]))
            return false;
    }
    return true;
}

bool nsq_topic_name_valid(const char *name, size_t len)
{
    return name_valid(name, len);
}

bool nsq_channel_name_valid(const char *name, size_t len)
{
    return name_valid(name, len);
}

bool nsq_name_is_ephemeral(const char *name, size_t len)
{
    return name != NULL && len >= NSQ_EPHEMERAL_SUFFIX_LEN &&
           memcmp(name + len - NSQ_EPHEMERAL_SUFFIX_LEN, NSQ_EPHEMERAL_SUFFIX,
                  NSQ_EPHEMERAL_SUFFIX_LEN) == 0;
}
