/*
 * diskqueue_service: the I/O worker pool behind every disk queue (see diskqueue_service.h).
 *
 * One mutex guards the run queue (a FIFO of tasks), the timer heap and every task's scheduling
 * fields. Workers sleep on one condition variable (CLOCK_MONOTONIC) until either a task is
 * runnable or the earliest timer is due. Timers live in a binary min-heap indexed from the task,
 * so arming, re-arming and removal are O(log n) even with thousands of idle queues.
 */
#include "diskqueue_service.h"
#include "nsq_time.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define NSQ_NS_PER_SEC   1000000000LL
#define DQS_LOG_LINE_MAX 1024
#define DQS_HEAP_INITIAL 64

struct diskqueue_service {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* guarded by mu */
    struct dqs_task *runq_head, *runq_tail;
    struct dqs_task **heap;
    size_t heap_len, heap_cap;
    bool stopping;
    /* immutable after new */
    pthread_t *threads;
    int nthreads;
    diskqueue_log_fn log_fn;
    void *log_arg;
};

void dqs_task_init(struct dqs_task *t, dqs_run_fn run, dqs_retired_fn retired)
{
    t->run = run;
    t->retired = retired;
    t->next = NULL;
    t->due_ns = 0;
    t->heap_idx = -1;
    t->in_runq = false;
    t->running = false;
    t->again = false;
    t->timer_fired = false;
    t->retired_flag = false;
}

/* --- timer heap (service mutex held) --- */

static void heap_swap(struct diskqueue_service *s, size_t a, size_t b)
{
    struct dqs_task *t = s->heap[a];
    s->heap[a] = s->heap[b];
    s->heap[b] = t;
    s->heap[a]->heap_idx = (long)a;
    s->heap[b]->heap_idx = (long)b;
}

static void heap_up(struct diskqueue_service *s, size_t i)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (s->heap[parent]->due_ns <= s->heap[i]->due_ns)
            break;
        heap_swap(s, i, parent);
        i = parent;
    }
}

static void heap_down(struct diskqueue_service *s, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < s->heap_len && s->heap[l]->due_ns < s->heap[m]->due_ns)
            m = l;
        if (r < s->heap_len && s->heap[r]->due_ns < s->heap[m]->due_ns)
            m = r;
        if (m == i)
            break;
        heap_swap(s, i, m);
        i = m;
    }
}

static void heap_remove(struct diskqueue_service *s, struct dqs_task *t)
{
    if (t->heap_idx < 0)
        return;
    size_t i = (size_t)t->heap_idx;
    s->heap_len--;
    if (i != s->heap_len) {
        s->heap[i] = s->heap[s->heap_len];
        s->heap[i]->heap_idx = (long)i;
        heap_down(s, i);
        heap_up(s, i);
    }
    t->heap_idx = -1;
}

/* Returns 0 or -ENOMEM (the timer is then simply not armed; the next run re-arms it). */
static int heap_insert(struct diskqueue_service *s, struct dqs_task *t)
{
    if (s->heap_len == s->heap_cap) {
        size_t cap = s->heap_cap ? s->heap_cap * 2 : DQS_HEAP_INITIAL;
        struct dqs_task **h = realloc(s->heap, cap * sizeof(*h));
        if (!h)
            return -ENOMEM;
        s->heap = h;
        s->heap_cap = cap;
    }
    s->heap[s->heap_len] = t;
    t->heap_idx = (long)s->heap_len;
    s->heap_len++;
    heap_up(s, (size_t)t->heap_idx);
    return 0;
}

/* --- run queue (service mutex held) --- */

static void runq_push(struct diskqueue_service *s, struct dqs_task *t)
{
    t->next = NULL;
    t->in_runq = true;
    if (s->runq_tail)
        s->runq_tail->next = t;
    else
        s->runq_head = t;
    s->runq_tail = t;
    pthread_cond_signal(&s->cv);
}

static struct dqs_task *runq_pop(struct diskqueue_service *s)
{
    struct dqs_task *t = s->runq_head;
    if (!t)
        return NULL;
    s->runq_head = t->next;
    if (!s->runq_head)
        s->runq_tail = NULL;
    t->next = NULL;
    t->in_runq = false;
    return t;
}

static void schedule_locked(struct diskqueue_service *s, struct dqs_task *t)
{
    if (t->retired_flag)
        return;
    if (t->running)
        t->again = true;
    else if (!t->in_runq)
        runq_push(s, t);
}

void dqs_schedule(struct diskqueue_service *s, struct dqs_task *t)
{
    pthread_mutex_lock(&s->mu);
    schedule_locked(s, t);
    pthread_mutex_unlock(&s->mu);
}

void dqs_arm(struct diskqueue_service *s, struct dqs_task *t, int64_t due_ns)
{
    pthread_mutex_lock(&s->mu);
    if (!t->retired_flag) {
        if (t->heap_idx >= 0) {
            if (due_ns < t->due_ns) {
                t->due_ns = due_ns;
                heap_up(s, (size_t)t->heap_idx);
                pthread_cond_signal(&s->cv);
            }
        } else {
            t->due_ns = due_ns;
            if (heap_insert(s, t) == 0 && t->heap_idx == 0)
                pthread_cond_signal(&s->cv);
        }
    }
    pthread_mutex_unlock(&s->mu);
}

/* Moves every expired timer's task to the run queue. */
static void fire_timers(struct diskqueue_service *s, int64_t now)
{
    while (s->heap_len > 0 && s->heap[0]->due_ns <= now) {
        struct dqs_task *t = s->heap[0];
        heap_remove(s, t);
        t->timer_fired = true;
        schedule_locked(s, t);
    }
}

static void *worker_main(void *arg)
{
    struct diskqueue_service *s = arg;
    uint8_t *scratch = malloc(DQS_SCRATCH_BYTES);
    if (!scratch) {
        diskqueue_service_logf(s, DQ_LOG_FATAL, "DISKQUEUE: out of memory for worker buffer");
        return NULL;
    }

    pthread_mutex_lock(&s->mu);
    for (;;) {
        fire_timers(s, nsq_mono_ns());
        struct dqs_task *t = runq_pop(s);
        if (!t) {
            if (s->stopping)
                break;
            if (s->heap_len > 0) {
                int64_t due = s->heap[0]->due_ns;
                struct timespec ts = {.tv_sec = due / NSQ_NS_PER_SEC,
                                      .tv_nsec = due % NSQ_NS_PER_SEC};
                pthread_cond_timedwait(&s->cv, &s->mu, &ts);
            } else {
                pthread_cond_wait(&s->cv, &s->mu);
            }
            continue;
        }

        bool fired = t->timer_fired;
        t->timer_fired = false;
        t->running = true;
        pthread_mutex_unlock(&s->mu);

        int rc = t->run(t, scratch, DQS_SCRATCH_BYTES, fired);

        pthread_mutex_lock(&s->mu);
        t->running = false;
        if (rc == DQS_RUN_RETIRE) {
            t->retired_flag = true;
            heap_remove(s, t);
            pthread_mutex_unlock(&s->mu);
            /* The owner may free t from here on: touch nothing of it afterwards. */
            t->retired(t);
            pthread_mutex_lock(&s->mu);
            continue;
        }
        if (t->again) {
            t->again = false;
            runq_push(s, t);
        }
    }
    pthread_mutex_unlock(&s->mu);
    free(scratch);
    return NULL;
}

struct diskqueue_service *diskqueue_service_new(int nthreads)
{
    if (nthreads <= 0)
        nthreads = DQS_DEFAULT_THREADS;
    struct diskqueue_service *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);

    s->threads = calloc((size_t)nthreads, sizeof(*s->threads));
    if (!s->threads)
        goto err;
    for (int i = 0; i < nthreads; i++) {
        if (pthread_create(&s->threads[i], NULL, worker_main, s) != 0)
            goto err;
        s->nthreads++;
    }
    return s;

err:
    diskqueue_service_free(s);
    return NULL;
}

void diskqueue_service_free(struct diskqueue_service *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < s->nthreads; i++)
        pthread_join(s->threads[i], NULL);
    free(s->threads);
    free(s->heap);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

void diskqueue_service_set_log(struct diskqueue_service *s, diskqueue_log_fn fn, void *arg)
{
    s->log_fn = fn;
    s->log_arg = arg;
}

void diskqueue_service_logf(struct diskqueue_service *s, int level, const char *fmt, ...)
{
    if (!s || !s->log_fn)
        return;
    char line[DQS_LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    s->log_fn(level, line, s->log_arg);
}
