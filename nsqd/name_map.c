/*
 * name_map: chained string hash map (see name_map.h).
 */
#include "name_map.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NAME_MAP_MIN_BUCKETS 16

struct name_entry {
    struct name_entry *next;
    void *value;
    char key[];
};

struct name_map {
    struct name_entry **buckets;
    size_t nbuckets;
    size_t count;
};

static size_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    while (*s) {
        h ^= (unsigned char)*s++;
        h *= 1099511628211ULL;
    }
    return (size_t)h;
}

struct name_map *name_map_new(void)
{
    struct name_map *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->buckets = calloc(NAME_MAP_MIN_BUCKETS, sizeof(*m->buckets));
    if (!m->buckets) {
        free(m);
        return NULL;
    }
    m->nbuckets = NAME_MAP_MIN_BUCKETS;
    return m;
}

void name_map_free(struct name_map *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->nbuckets; i++) {
        struct name_entry *e = m->buckets[i];
        while (e) {
            struct name_entry *next = e->next;
            free(e);
            e = next;
        }
    }
    free(m->buckets);
    free(m);
}

static struct name_entry **name_map_slot(const struct name_map *m, const char *key)
{
    struct name_entry **pp = &m->buckets[name_hash(key) & (m->nbuckets - 1)];
    while (*pp && strcmp((*pp)->key, key) != 0)
        pp = &(*pp)->next;
    return pp;
}

void *name_map_get(const struct name_map *m, const char *key)
{
    struct name_entry *e = *name_map_slot(m, key);
    return e ? e->value : NULL;
}

static void name_map_grow(struct name_map *m)
{
    size_t nb = m->nbuckets * 2;
    struct name_entry **nbk = calloc(nb, sizeof(*nbk));
    if (!nbk)
        return; /* keep the denser table */
    for (size_t i = 0; i < m->nbuckets; i++) {
        struct name_entry *e = m->buckets[i];
        while (e) {
            struct name_entry *next = e->next;
            size_t h = name_hash(e->key) & (nb - 1);
            e->next = nbk[h];
            nbk[h] = e;
            e = next;
        }
    }
    free(m->buckets);
    m->buckets = nbk;
    m->nbuckets = nb;
}

int name_map_put(struct name_map *m, const char *key, void *value)
{
    struct name_entry **pp = name_map_slot(m, key);
    if (*pp) {
        (*pp)->value = value;
        return 0;
    }
    size_t klen = strlen(key);
    struct name_entry *e = malloc(sizeof(*e) + klen + 1);
    if (!e)
        return -ENOMEM;
    memcpy(e->key, key, klen + 1);
    e->value = value;
    e->next = NULL;
    *pp = e;
    m->count++;
    if (m->count > m->nbuckets)
        name_map_grow(m);
    return 0;
}

void *name_map_del(struct name_map *m, const char *key)
{
    struct name_entry **pp = name_map_slot(m, key);
    struct name_entry *e = *pp;
    if (!e)
        return NULL;
    *pp = e->next;
    void *v = e->value;
    free(e);
    m->count--;
    return v;
}

size_t name_map_len(const struct name_map *m)
{
    return m->count;
}

void name_map_foreach(const struct name_map *m, void (*fn)(const char *key, void *value, void *arg),
                      void *arg)
{
    for (size_t i = 0; i < m->nbuckets; i++)
        for (struct name_entry *e = m->buckets[i]; e; e = e->next)
            fn(e->key, e->value, arg);
}

size_t name_map_values(const struct name_map *m, void **out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < m->nbuckets; i++)
        for (struct name_entry *e = m->buckets[i]; e && n < cap; e = e->next)
            out[n++] = e->value;
    return n;
}
