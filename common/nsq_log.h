/*
 * nsq_log: leveled log lines in upstream's format, written to stderr.
 *
 * A line is "<prefix><YYYY/MM/DD hh:mm:ss.uuuuuu> <LEVEL>: <message>\n" (Go's log package with
 * Ldate|Ltime|Lmicroseconds, local time; LEVEL one of DEBUG, INFO, WARNING, ERROR, FATAL). Each
 * line is emitted with a single write(2), so lines from several threads never interleave. The
 * prefix and level are process-wide; set them once at startup (nsq_log_init) before starting
 * threads. The level may be changed later (it is an atomic).
 */
#ifndef NSQ_LOG_H
#define NSQ_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

enum nsq_log_level {
    NSQ_LOG_DEBUG = 1,
    NSQ_LOG_INFO,
    NSQ_LOG_WARN,
    NSQ_LOG_ERROR,
    NSQ_LOG_FATAL,
};

/* Longest line written; longer messages are truncated (and still end with '\n'). */
#define NSQ_LOG_MAX_LINE 8192

/* prefix like "[nsqd] " (copied; NULL = none). */
void nsq_log_init(const char *prefix, enum nsq_log_level level);
void nsq_log_set_level(enum nsq_log_level l);
enum nsq_log_level nsq_log_get_level(void);
/* "debug", "info", "warn", "error", "fatal", case-insensitive. Returns 0 or -EINVAL. */
int nsq_log_parse_level(const char *s, enum nsq_log_level *out);
/* Upper-case level name as it appears in a line ("WARNING" for NSQ_LOG_WARN). */
const char *nsq_log_level_name(enum nsq_log_level l);

/* Redirects output to fd (default 2); for tests. */
void nsq_log_set_fd(int fd);

/* Formats one line into buf (always NUL-terminated, ends with '\n' if it fits); returns its length.
   ts_ns is a Unix time in nanoseconds. Used by nsq_logf; exposed for tests. */
size_t nsq_log_format(char *buf, size_t len, int64_t ts_ns, enum nsq_log_level l, const char *fmt,
                      va_list ap);

/* Writes one line if l >= the current level. */
void nsq_logf(enum nsq_log_level l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define nsq_debug(...) nsq_logf(NSQ_LOG_DEBUG, __VA_ARGS__)
#define nsq_info(...)  nsq_logf(NSQ_LOG_INFO, __VA_ARGS__)
#define nsq_warn(...)  nsq_logf(NSQ_LOG_WARN, __VA_ARGS__)
#define nsq_error(...) nsq_logf(NSQ_LOG_ERROR, __VA_ARGS__)
/* Logs only; the caller exits. */
#define nsq_fatal(...) nsq_logf(NSQ_LOG_FATAL, __VA_ARGS__)

#endif
