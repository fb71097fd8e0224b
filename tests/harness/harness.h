/*
 * harness: what integration tests need to drive real daemons on loopback.
 *
 * A test starts a daemon with ephemeral ports (--tcp-address=127.0.0.1:0 ...). The daemon's stderr
 * goes to a log file in a fresh temporary directory; harness_start() polls that log until every
 * expected "<KIND>: listening on <host:port>" line has appeared, and records the real ports. On a
 * timeout or an early exit it prints the log to stderr and returns NULL, so a failing test shows
 * what the daemon said.
 *
 * Nothing here sleeps for a fixed time where a condition can be awaited: waits poll a condition
 * with a deadline. Every function is blocking and meant for test code only; none is thread-safe.
 *
 * Besides process control the library has small helpers for HTTP (libcurl, blocking) and for raw
 * TCP protocol tests (send all, read exactly n bytes with a timeout, read one V2 frame or one V1
 * response).
 */
#ifndef NSQ_TEST_HARNESS_H
#define NSQ_TEST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* How long harness_start() waits for the listening lines, and harness_stop() for the exit. */
#define HARNESS_START_TIMEOUT_MS 10000
#define HARNESS_STOP_TIMEOUT_MS  10000
/* Default timeout of the TCP and HTTP helpers: a bound for failures, generous because a loaded
   machine running sanitizer builds can take seconds to answer a large request. */
#define HARNESS_IO_TIMEOUT_MS 20000
#define HARNESS_MAX_LISTENERS 8

struct harness_proc; /* a started daemon (opaque) */

/*
 * Starts `binary` with `args` (NULL-terminated, without argv[0]). Its stdout and stderr go to
 * <tmpdir>/<basename>.log. Returns once the log holds n_listeners "listening on" lines (their
 * ports are then known to harness_port()), or NULL after HARNESS_START_TIMEOUT_MS or if the
 * process exits first; in that case the log is printed to stderr and the process is killed.
 * The caller owns the result and releases it with harness_stop() or harness_kill().
 */
struct harness_proc *harness_start(const char *binary, const char *const *args, int n_listeners);
/* The port of the listener logged as "<kind>: listening on ..." ("TCP", "HTTP", "HTTPS"), or -1. */
int harness_port(const struct harness_proc *p, const char *kind);
/* The full "<host:port>" text logged for `kind`, or NULL. Valid while p lives. */
const char *harness_addr(const struct harness_proc *p, const char *kind);
pid_t harness_pid(const struct harness_proc *p);
/* Path of the log file (valid while p lives) and its current contents (caller frees, or NULL). */
const char *harness_log_path(const struct harness_proc *p);
char *harness_log(const struct harness_proc *p);
/* True once the log contains `needle`, polling until timeout_ms passes. */
bool harness_log_wait(const struct harness_proc *p, const char *needle, int timeout_ms);
/*
 * Sends `sig` (0 → SIGTERM), waits for the exit (SIGKILL after HARNESS_STOP_TIMEOUT_MS) and frees
 * p. Returns the exit code if the process exited, 128+signal if a signal ended it, or -1 if it had
 * to be killed after the deadline or could not be waited for. p may be NULL (returns -1).
 */
int harness_stop(struct harness_proc *p, int sig);
/* SIGKILL, reap and free. Returns as harness_stop(). */
int harness_kill(struct harness_proc *p);
/* True if the process is still running (does not reap it unless it has exited). */
bool harness_running(struct harness_proc *p);

/* A fresh directory under $TMPDIR (or /tmp). Caller frees the string; harness_rmdir() removes it.
 */
char *harness_tmpdir(void);
/* Removes a directory tree (best effort). */
void harness_rmdir(const char *path);

/* Polls cond(arg) every few milliseconds until it is true (returns true) or timeout_ms passes. */
bool harness_wait_until(bool (*cond)(void *), void *arg, int timeout_ms);
/* Monotonic milliseconds, for tests that measure time. */
int64_t harness_now_ms(void);

/* ---- HTTP (blocking, libcurl) ---- */

struct harness_response {
    long status; /* HTTP status, 0 on a transport error */
    char *body;  /* NUL-terminated body (owned) */
    size_t body_len;
    char *headers; /* raw response header block, NUL-terminated (owned) */
};
/*
 * Sends one request to http://127.0.0.1:<port><path_and_query> with `body` (may be NULL) and
 * fills out. Extra request headers: `header` (may be NULL), e.g. "Accept: application/vnd.nsq;
 * version=1.0". Returns 0, or -1 on a transport error. Free with harness_response_free().
 */
int harness_http(const char *method, int port, const char *path_and_query, const void *body,
                 size_t len, struct harness_response *out);
int harness_http_hdr(const char *method, int port, const char *path_and_query, const void *body,
                     size_t len, const char *header, struct harness_response *out);
/* Value of the first response header `name` (case-insensitive), malloc'd, or NULL. */
char *harness_response_header(const struct harness_response *r, const char *name);
void harness_response_free(struct harness_response *r);

/* ---- raw TCP ---- */

/* Blocking TCP connection to 127.0.0.1:port; returns the fd or -1. */
int harness_connect(int port);
/* Writes all of buf; 0 or -1. */
int harness_tcp_send(int fd, const void *buf, size_t len);
int harness_tcp_send_str(int fd, const char *s);
/* Reads exactly n bytes within timeout_ms. Returns 0, -1 on error/timeout, or 1 if the peer
   closed before n bytes arrived. */
int harness_tcp_read_n(int fd, void *buf, size_t n, int timeout_ms);
/* Sends [int32 big-endian len][data] (an IDENTIFY/REGISTER-style body). */
int harness_tcp_send_sized(int fd, const void *data, size_t len);
/*
 * Reads one V2 frame [int32 size][int32 type][data]. *data is malloc'd and NUL-terminated (caller
 * frees). Returns 0, 1 if the peer closed, -1 on error/timeout/bad size.
 */
int harness_tcp_read_frame(int fd, int32_t *type, char **data, size_t *len, int timeout_ms);
/* Reads one V1 response [int32 size][data]; same conventions. */
int harness_tcp_read_v1(int fd, char **data, size_t *len, int timeout_ms);
/* True if the peer closes the connection (EOF or reset) within timeout_ms; data that arrives
   first is discarded. */
bool harness_tcp_wait_closed(int fd, int timeout_ms);

#endif
