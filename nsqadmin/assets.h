/*
 * assets: the web UI's static files (nsqadmin/static/), embedded in the binary.
 *
 * nsqadmin/assets.cmake turns every file of nsqadmin/static/ into a byte array at build time
 * (generated source nsqadmin_assets_data.c) and builds it, with assets.c, as the static library
 * nsqadmin_assets that the nsqadmin target links.
 *
 * Paths are relative to the UI's directory: "index.html" (the page template served for every UI
 * route; its "<!--NSQADMIN_CONFIG-->" marker is where the server puts the page configuration),
 * "<asset>" for GET /static/<asset> and "fonts/<asset>" for GET /fonts/<asset>. The form
 * "static/<asset>" and one leading '/' are accepted too. The data is static and must not be freed.
 */
#ifndef NSQADMIN_ASSETS_H
#define NSQADMIN_ASSETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One embedded file. data has len bytes followed by one NUL (not counted in len). */
struct nsqadmin_asset {
    const char *path; /* file name inside nsqadmin/static/, e.g. "app.js" */
    const uint8_t *data;
    size_t len;
    const char *content_type; /* e.g. "text/javascript; charset=utf-8" */
};

/* The generated table, sorted by path. */
extern const struct nsqadmin_asset nsqadmin_assets[];
extern const size_t nsqadmin_assets_count;

/* Finds an embedded file; false if there is none at path. On success *data, *len and
   *content_type (each may be NULL) point to static storage. A linear search: the table holds a
   handful of files. */
bool nsqadmin_asset_find(const char *path, const uint8_t **data, size_t *len,
                         const char **content_type);

#endif
