/*
 * dead_letter: the dead-letter decision and hand-off (see dead_letter.h).
 */
#include "dead_letter.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "channel.h"
#include "diskqueue.h"
#include "message.h"
#include "nsq_log.h"
#include "nsq_names.h"
#include "nsqd.h"
#include "topic.h"

int dead_letter_topic_name(const struct nsqd_options *o, const char *topic, char *buf, size_t len)
{
    const char *suffix = o->dead_letter_suffix ? o->dead_letter_suffix : "";
    int w = snprintf(buf, len, "%s%s", topic, suffix);
    if (w < 0 || (size_t)w >= len || !*suffix)
        return -EINVAL;
    if (!nsq_topic_name_valid(buf, (size_t)w) || nsq_name_is_ephemeral(buf, (size_t)w))
        return -EINVAL;
    return 0;
}

/* True when topic's name ends with the dead-letter suffix. */
static bool dead_letter_is_dead_topic(const struct nsqd_options *o, const char *topic)
{
    const char *suffix = o->dead_letter_suffix ? o->dead_letter_suffix : "";
    size_t tl = strlen(topic), sl = strlen(suffix);
    return sl > 0 && tl > sl && strcmp(topic + tl - sl, suffix) == 0;
}

int64_t dead_letter_max_attempts(const struct channel *c)
{
    if (c->max_attempts > 0)
        return c->max_attempts;
    const struct nsqd_options *o = c->topic->n->opts;
    if (o->max_attempts <= 0 || dead_letter_is_dead_topic(o, c->topic->name))
        return 0;
    return o->max_attempts;
}

bool dead_letter_due(const struct channel *c, const struct nsqd_message *m)
{
    int64_t max = dead_letter_max_attempts(c);
    return max > 0 && m->attempts >= max;
}

bool dead_letter_send(struct channel *c, struct nsqd_message *m, bool to_disk)
{
    struct nsqd *n = c->topic->n;
    char name[NSQ_NAME_MAX_LEN + 1];
    if (dead_letter_topic_name(n->opts, c->topic->name, name, sizeof(name)) != 0) {
        if (!c->dead_letter_warned)
            nsq_warn("CHANNEL(%s): no valid dead-letter topic for %s, requeueing", c->name,
                     c->topic->name);
        c->dead_letter_warned = true;
        return false;
    }
    struct topic *dead = nsqd_get_topic(n, name);
    if (!dead || dead->exiting)
        return false;
    uint16_t attempts = m->attempts;
    m->client = NULL;
    m->hnext = NULL;
    m->deferred = 0;
    /* The next delivery adds one: the dead-letter consumer sees the count it had here. */
    m->attempts = attempts > 0 ? (uint16_t)(attempts - 1) : 0;
    char id[NSQ_MSG_ID_LEN];
    memcpy(id, m->id, NSQ_MSG_ID_LEN);
    c->dead_letter_count++;
    nsq_debug("CHANNEL(%s): msg %.16s dead-lettered to %s after %u attempts", c->name, id, name,
              (unsigned)attempts);
    int rc = topic_put_message(dead, m, to_disk);
    if (rc)
        nsq_error("CHANNEL(%s) ERROR: failed to dead-letter msg %.16s to %s - %s", c->name, id,
                  name, strerror(-rc));
    return true;
}

int dead_letter_sync(struct channel *c)
{
    char name[NSQ_NAME_MAX_LEN + 1];
    struct nsqd *n = c->topic->n;
    if (dead_letter_topic_name(n->opts, c->topic->name, name, sizeof(name)) != 0)
        return 0;
    struct topic *dead = nsqd_find_topic(n, name);
    if (!dead || !dead->dq)
        return 0;
    int rc = diskqueue_flush(dead->dq);
    if (rc)
        nsq_error("TOPIC(%s) ERROR: failed to sync backend - %s", name, strerror(-rc));
    return rc;
}
