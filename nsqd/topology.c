/*
 * topology: locality classes of consumers (see topology.h).
 */
#include "topology.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "options.h"

static bool is_set(const char *s)
{
    return s != NULL && *s != '\0';
}

bool topology_aware(const struct nsqd_options *o)
{
    for (size_t i = 0; i < o->enable_experiment.len; i++) {
        if (strcmp(o->enable_experiment.items[i], NSQD_EXPERIMENT_TOPOLOGY) == 0)
            return true;
    }
    return false;
}

bool topology_configured(const struct nsqd_options *o)
{
    return is_set(o->topology_zone) || is_set(o->topology_region);
}

enum topology_class topology_classify(const struct nsqd_options *o, const char *zone,
                                      const char *region)
{
    if (!topology_aware(o))
        return TOPOLOGY_GLOBAL;
    if (is_set(zone) && is_set(o->topology_zone) && strcmp(zone, o->topology_zone) == 0)
        return TOPOLOGY_ZONE_LOCAL;
    if (is_set(region) && is_set(o->topology_region) && strcmp(region, o->topology_region) == 0)
        return TOPOLOGY_REGION_LOCAL;
    return TOPOLOGY_GLOBAL;
}

int topology_validate_experiments(const struct nsqd_options *o, char *err, size_t errlen)
{
    for (size_t i = 0; i < o->enable_experiment.len; i++) {
        const char *e = o->enable_experiment.items[i];
        if (strcmp(e, NSQD_EXPERIMENT_TOPOLOGY) != 0) {
            snprintf(err, errlen, "invalid experiment \"%s\" (valid options: \"%s\")", e,
                     NSQD_EXPERIMENT_TOPOLOGY);
            return -EINVAL;
        }
    }
    return 0;
}
