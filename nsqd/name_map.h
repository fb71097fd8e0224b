/*
 * name_map: string -> pointer hash map for topics by name and channels by name. Keys are copied;
 * values are not owned. Iteration order is unspecified; the map must not change during
 * name_map_foreach.
 */
#ifndef NSQD_NAME_MAP_H
#define NSQD_NAME_MAP_H

#include <stddef.h>

struct name_map;

struct name_map *name_map_new(void);
void name_map_free(struct name_map *m);
void *name_map_get(const struct name_map *m, const char *key);
/* Inserts or replaces. Returns 0 or -ENOMEM. */
int name_map_put(struct name_map *m, const char *key, void *value);
/* Removes key; returns its value or NULL. */
void *name_map_del(struct name_map *m, const char *key);
size_t name_map_len(const struct name_map *m);
void name_map_foreach(const struct name_map *m, void (*fn)(const char *key, void *value, void *arg),
                      void *arg);
/* Fills out (capacity name_map_len) with the values; returns the number written. */
size_t name_map_values(const struct name_map *m, void **out, size_t cap);

#endif
