/*
 * nsq_log: formats a line into a stack buffer and hands it to stderr with one write(2).
 * The prefix is copied once at init; the level is an atomic so that the HTTP /config handlers of
 * a daemon can change it while other threads log.
 */
#include "nsq_log.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define NSQ_LOG_PREFIX_MAX 256

static char log_prefix[NSQ_LOG_PREFIX_MAX];
static atomic_int log_level = NSQ_LOG_INFO;
static atomic_int log_fd = STDERR_FILENO;

void nsq_log_init(const char *prefix, enum nsq_log_level level)
{
    snprintf(log_prefix, sizeof(log_prefix), "%s", prefix ? prefix : "");
    atomic_store(&log_level, (int)level);
}

void nsq_log_set_level(enum nsq_log_level l)
{
    atomic_store(&log_level, (int)l);
}

enum nsq_log_level nsq_log_get_level(void)
{
    return (enum nsq_log_level)atomic_load(&log_level);
}

void nsq_log_set_fd(int fd)
{
    atomic_store(&log_fd, fd);
}

static const char *const level_names[] = {"", "DEBUG", "INFO", "WARNING", "ERROR", "FATAL"};
static const char *const level_flags[] = {"", "debug", "info", "warn", "error", "fatal"};
#define NSQ_LOG_NLEVELS ((int)(sizeof(level_names) / sizeof(level_names[0])))

const char *nsq_log_level_name(enum nsq_log_level l)
{
    if ((int)l < NSQ_LOG_DEBUG || (int)l >= NSQ_LOG_NLEVELS)
        return "UNKNOWN";
    return level_names[l];
}

int nsq_log_parse_level(const char *s, enum nsq_log_level *out)
{
    if (!s)
        return -EINVAL;
    for (int i = NSQ_LOG_DEBUG; i < NSQ_LOG_NLEVELS; i++) {
        if (strcasecmp(s, level_flags[i]) == 0) {
            *out = (enum nsq_log_level)i;
            return 0;
        }
    }
    return -EINVAL;
}

size_t nsq_log_format(char *buf, size_t len, int64_t ts_ns, enum nsq_log_level l, const char *fmt,
                      va_list ap)
{
    if (len < 2) {
        if (len)
            buf[0] = '\0';
        return 0;
    }
    time_t secs = (time_t)(ts_ns / 1000000000);
    long usec = (long)((ts_ns % 1000000000) / 1000);
    struct tm tm;
    localtime_r(&secs, &tm);
    int n = snprintf(buf, len, "%s%04d/%02d/%02d %02d:%02d:%02d.%06ld %s: ", log_prefix,
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     usec, nsq_log_level_name(l));
    size_t used = n < 0 ? 0 : ((size_t)n >= len ? len - 1 : (size_t)n);
    if (used < len - 1) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        n = vsnprintf(buf + used, len - used, fmt, ap);
#pragma GCC diagnostic pop
        if (n > 0)
            used += (size_t)n >= len - used ? len - used - 1 : (size_t)n;
    }
    /* Go's log appends a newline unless the message already ends with one. */
    if (used == 0 || buf[used - 1] != '\n') {
        if (used > len - 2)
            used = len - 2;
        buf[used++] = '\n';
        buf[used] = '\0';
    }
    return used;
}

void nsq_logf(enum nsq_log_level l, const char *fmt, ...)
{
    if ((int)l < atomic_load(&log_level))
        return;
    char line[NSQ_LOG_MAX_LINE];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    va_list ap;
    va_start(ap, fmt);
    size_t n = nsq_log_format(line, sizeof(line), (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec, l,
                              fmt, ap);
    va_end(ap);
    const char *p = line;
    int fd = atomic_load(&log_fd);
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}
