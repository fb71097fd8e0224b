/*
 * nsq_file: whole writes to files, and replacing a file so that a crash leaves either the old or
 * the new content (nsqd.dat, diskqueue metadata), never a mix.
 */
#ifndef NSQ_FILE_H
#define NSQ_FILE_H

#include <stddef.h>
#include <sys/types.h>

/* Writes all len bytes of buf to fd, retrying short writes and EINTR. Returns 0 or -errno. */
int nsq_write_all(int fd, const void *buf, size_t len);

/* Writes data to "<path>.<random>.tmp" (created with mode), fsyncs it and renames it over path,
   as upstream NSQ replaces its metadata files. Returns 0 or -errno; on failure the temporary file
   is removed and path is untouched. */
int nsq_file_replace(const char *path, const void *data, size_t len, mode_t mode);

#endif
