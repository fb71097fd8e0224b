/* diskqueue_meta: format, parse, load and atomically store the queue metadata file. */
#include "diskqueue_meta.h"
#include "nsq_file.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define META_FILE_MODE 0600
/* A valid file is at most DISKQUEUE_META_MAX_TEXT bytes; read a little more to see what follows. */
#define META_READ_MAX 256

size_t diskqueue_meta_format(const struct diskqueue_meta *m, char buf[DISKQUEUE_META_MAX_TEXT])
{
    int n = snprintf(buf, DISKQUEUE_META_MAX_TEXT,
                     "%" PRId64 "\n%" PRId64 ",%" PRId64 "\n%" PRId64 ",%" PRId64 "\n", m->depth,
                     m->read_file, m->read_pos, m->write_file, m->write_pos);
    return n < 0 ? 0 : (size_t)n;
}

/* Scans one decimal int64 at *p (spaces/tabs skipped first, optional sign). */
static bool scan_int(const char **p, const char *end, int64_t *out)
{
    const char *s = *p;
    while (s < end && (*s == ' ' || *s == '\t'))
        s++;
    bool neg = false;
    if (s < end && (*s == '+' || *s == '-')) {
        neg = *s == '-';
        s++;
    }
    if (s >= end || *s < '0' || *s > '9')
        return false;
    uint64_t v = 0;
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    while (s < end && *s >= '0' && *s <= '9') {
        uint64_t d = (uint64_t)(*s - '0');
        if (v > (limit - d) / 10)
            return false;
        v = v * 10 + d;
        s++;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    *p = s;
    return true;
}

/* Matches a literal separator; a final newline also matches the end of input. */
static bool scan_lit(const char **p, const char *end, char c, bool last)
{
    if (*p < end && **p == c) {
        (*p)++;
        return true;
    }
    return last && c == '\n' && *p == end;
}

int diskqueue_meta_parse(const char *text, size_t len, struct diskqueue_meta *m)
{
    static const char seps[] = {'\n', ',', '\n', ',', '\n'};
    int64_t depth = 0;
    int64_t *fields[] = {&depth, &m->read_file, &m->read_pos, &m->write_file, &m->write_pos};
    const char *p = text, *end = text + len;

    memset(m, 0, sizeof(*m));
    for (size_t i = 0; i < sizeof(seps); i++) {
        if (!scan_int(&p, end, fields[i]))
            return -EINVAL;
        if (!scan_lit(&p, end, seps[i], i == sizeof(seps) - 1))
            return -EINVAL;
    }
    m->depth = depth;
    return 0;
}

int diskqueue_meta_load(const char *path, struct diskqueue_meta *m)
{
    char buf[META_READ_MAX];
    memset(m, 0, sizeof(*m));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t len = 0;
    while (len < sizeof(buf)) {
        ssize_t n = read(fd, buf + len, sizeof(buf) - len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            close(fd);
            return -e;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    return diskqueue_meta_parse(buf, len, m);
}

int diskqueue_meta_store(const char *path, const struct diskqueue_meta *m)
{
    char text[DISKQUEUE_META_MAX_TEXT];
    size_t len = diskqueue_meta_format(m, text);
    return nsq_file_replace(path, text, len, META_FILE_MODE);
}
