/*
 * topology: where a consumer sits relative to this nsqd (docs/topology.md).
 *
 * With the experiment "topology-aware-consumption" enabled (--enable-experiment) and this nsqd's
 * --topology-zone / --topology-region set, each consumer is put in one locality class from the
 * topology_zone / topology_region it sent in IDENTIFY: the same zone, else the same region, else
 * global. A channel keeps one ready list per class and delivers to the nearest class that has a
 * ready consumer (channel.c). An empty name never matches, so consumers that send nothing, and all
 * consumers while the experiment is off, are global: one list, upstream's round robin.
 */
#ifndef NSQD_TOPOLOGY_H
#define NSQD_TOPOLOGY_H

#include <stdbool.h>
#include <stddef.h>

struct nsqd_options;

/* The experiment's name as given to --enable-experiment. */
#define NSQD_EXPERIMENT_TOPOLOGY "topology-aware-consumption"

/* Locality classes, nearest first (also the index of the per-class ready lists and counters). */
enum topology_class {
    TOPOLOGY_ZONE_LOCAL = 0,
    TOPOLOGY_REGION_LOCAL = 1,
    TOPOLOGY_GLOBAL = 2,
};
#define TOPOLOGY_CLASSES 3

/* True when --enable-experiment names topology-aware-consumption. */
bool topology_aware(const struct nsqd_options *o);
/* True when --topology-zone or --topology-region is set (shown in /info and IDENTIFY). */
bool topology_configured(const struct nsqd_options *o);
/* The class of a consumer that sent zone / region (NULL or "" when not sent). */
enum topology_class topology_classify(const struct nsqd_options *o, const char *zone,
                                      const char *region);
/* Returns 0, or -EINVAL with err = the message for an --enable-experiment value nsqd does not
   know. */
int topology_validate_experiments(const struct nsqd_options *o, char *err, size_t errlen);

#endif
