/*
 * diskqueue_service: a small pool of I/O threads shared by every disk queue of a process.
 *
 * nsqd may hold ten thousand queues, so there is no thread per queue. A queue embeds a
 * `struct dqs_task`; whenever it has work (records to write, read-ahead to refill, a sync, an
 * empty/close request) it is put on the service's run queue and one worker runs it. A task is
 * never run by two workers at once: scheduling a task that is running marks it to run again once
 * the current run returns. Everything a task touches only inside its run is therefore owned by
 * "whichever worker runs it now", handed from worker to worker through the service mutex.
 *
 * Each task may also have one timer (a monotonic deadline) kept in a binary heap; when it expires
 * the task is scheduled with `timer_fired` set. Queues use it for sync-timeout and for retrying
 * failed writes.
 */
#ifndef DISKQUEUE_SERVICE_H
#define DISKQUEUE_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct diskqueue_service;
struct dqs_task;

/* Returned by a run function: keep the task, or never run it again (close/delete). */
enum { DQS_RUN_KEEP = 0, DQS_RUN_RETIRE = 1 };

/*
 * Runs on a worker thread. `scratch` is a per-worker buffer of `scratch_len` bytes the run may use
 * freely until it returns. `timer_fired` is true when the task's timer expired since the last run.
 */
typedef int (*dqs_run_fn)(struct dqs_task *t, uint8_t *scratch, size_t scratch_len,
                          bool timer_fired);
/*
 * Called on the worker after a run returned DQS_RUN_RETIRE and the service has forgotten the task:
 * the owner may free the task's memory from here on (typically it wakes a waiting thread).
 */
typedef void (*dqs_retired_fn)(struct dqs_task *t);

/* Embedded in the owner's struct; every field is guarded by the service mutex. */
struct dqs_task {
    dqs_run_fn run;
    dqs_retired_fn retired;
    struct dqs_task *next; /* run queue link */
    int64_t due_ns;        /* timer deadline (monotonic), valid when heap_idx >= 0 */
    long heap_idx;         /* position in the timer heap, -1 when no timer is armed */
    bool in_runq;
    bool running;
    bool again; /* scheduled while running: run once more */
    bool timer_fired;
    bool retired_flag;
};

/* Log levels, numerically equal to nsq_log_level (DEBUG=1 .. FATAL=5). */
enum { DQ_LOG_DEBUG = 1, DQ_LOG_INFO, DQ_LOG_WARN, DQ_LOG_ERROR, DQ_LOG_FATAL };
/* Receives one log line (without newline); may be called from any I/O thread concurrently. */
typedef void (*diskqueue_log_fn)(int level, const char *msg, void *arg);

/* Default number of worker threads when diskqueue_service_new is given nthreads <= 0. */
#define DQS_DEFAULT_THREADS 2
/* Per-worker scratch buffer: the read chunk size of the queues' read-ahead. */
#define DQS_SCRATCH_BYTES (256 * 1024)

/* Starts nthreads workers (DQS_DEFAULT_THREADS if <= 0). NULL on failure. */
struct diskqueue_service *diskqueue_service_new(int nthreads);
/* Stops and joins the workers. Every queue must have been closed or deleted. NULL is a no-op. */
void diskqueue_service_free(struct diskqueue_service *s);
/* Installs a logger (NULL = silent). Call before opening queues. */
void diskqueue_service_set_log(struct diskqueue_service *s, diskqueue_log_fn fn, void *arg);
/* printf-style logging through the installed logger. */
void diskqueue_service_logf(struct diskqueue_service *s, int level, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Prepares a task for use with the service (not scheduled, no timer). */
void dqs_task_init(struct dqs_task *t, dqs_run_fn run, dqs_retired_fn retired);
/* Makes sure the task runs (again) soon. Safe from any thread; cheap when already scheduled. */
void dqs_schedule(struct diskqueue_service *s, struct dqs_task *t);
/* Arms the task's timer at `due_ns` (nsq_mono_ns clock) unless it is already armed earlier. */
void dqs_arm(struct diskqueue_service *s, struct dqs_task *t, int64_t due_ns);

#endif
