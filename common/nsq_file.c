/*
 * nsq_file: whole writes and crash-safe file replacement (see nsq_file.h).
 */
#include "nsq_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

/* Room for ".<u32>.tmp" after the path. */
#define NSQ_FILE_TMP_SUFFIX_MAX 32

int nsq_write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int nsq_file_replace(const char *path, const void *data, size_t len, mode_t mode)
{
    uint32_t rnd = 0;
    if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != sizeof(rnd))
        rnd = (uint32_t)getpid() ^ (uint32_t)(uintptr_t)&rnd;
    size_t size = strlen(path) + NSQ_FILE_TMP_SUFFIX_MAX;
    char *tmp = malloc(size);
    if (!tmp)
        return -ENOMEM;
    snprintf(tmp, size, "%s.%u.tmp", path, (unsigned)(rnd & INT32_MAX));

    int rc = 0;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    rc = nsq_write_all(fd, data, len);
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc != 0)
        unlink(tmp);
out:
    free(tmp);
    return rc;
}
