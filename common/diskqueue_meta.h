/*
 * diskqueue_meta: the queue metadata file `<Q>.diskqueue.meta.dat` (spec/storage.md §3).
 *
 * Text, exactly "<depth>\n<readFileNum>,<readPos>\n<writeFileNum>,<writePos>\n". It is replaced
 * atomically: written to "<meta>.<N>.tmp" (mode 0600), fsynced, closed, renamed over the file.
 */
#ifndef DISKQUEUE_META_H
#define DISKQUEUE_META_H

#include <stddef.h>
#include <stdint.h>

struct diskqueue_meta {
    int64_t depth;
    int64_t read_file, read_pos;
    int64_t write_file, write_pos;
};

/* Longest text diskqueue_meta_format produces (5 int64 + separators), plus NUL. */
#define DISKQUEUE_META_MAX_TEXT 112

/* Writes the text form into buf (NUL-terminated). Returns its length (without NUL). */
size_t diskqueue_meta_format(const struct diskqueue_meta *m, char buf[DISKQUEUE_META_MAX_TEXT]);

/*
 * Parses the text like the reference implementation's scanf("%d\n%d,%d\n%d,%d\n"): on failure the
 * positions scanned before the failing field keep their values, later ones are 0, and depth is 0
 * (depth is only taken when everything parsed). Returns 0 or -EINVAL. `m` is always fully set.
 */
int diskqueue_meta_parse(const char *text, size_t len, struct diskqueue_meta *m);

/* Reads and parses `path`. Returns 0, -ENOENT (m zeroed), -EINVAL (partial, see parse) or -errno.
 */
int diskqueue_meta_load(const char *path, struct diskqueue_meta *m);

/* Atomically replaces `path` (tmp + fsync + rename). Returns 0 or -errno. */
int diskqueue_meta_store(const char *path, const struct diskqueue_meta *m);

#endif
