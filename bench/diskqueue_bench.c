/*
 * diskqueue_bench: records/s of diskqueue put and pop against real files, outside the test
 * suites (timings depend on the machine; nothing here asserts a speed).
 *
 *   bench/diskqueue.sh [BUILD_DIR] [-n RECORDS] [-s SIZE] [-e SYNC_EVERY] [-d DIR]
 *
 * Phases, each on a fresh queue directory entry:
 *   put       RECORDS puts of SIZE bytes, then diskqueue_flush: every record written and synced;
 *   pop       the queue closed and reopened, then every record popped (disk-bound read path);
 *   pop_view  the same with as many new records, popped with diskqueue_pop_view (no copy);
 *   put+pop   a producer thread putting while the owner thread pops (the nsqd overflow case).
 * The owner thread pops in a loop and, when nothing is ready, waits for the ready callback.
 * Defaults: 1000000 records of 200 bytes, sync-every 2500, 100 MiB segments.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "diskqueue.h"

#define BENCH_NS_PER_SEC   1000000000LL
#define BENCH_SEGMENT      (100LL * 1024 * 1024)
#define BENCH_MSG_MIN      26
#define BENCH_MSG_MAX      (1024 * 1024 + 26)
#define BENCH_SYNC_TIMEOUT (2LL * BENCH_NS_PER_SEC)
#define BENCH_WAIT_NS      (1000 * 1000)

static long n_records = 1000000;
static size_t rec_size = 200;
static long sync_every = 2500;
static const char *dir = "/tmp";

/* ready callback: wakes the popping thread */
static pthread_mutex_t rmu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t rcv = PTHREAD_COND_INITIALIZER;
static bool ready_flag;

static void on_ready(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&rmu);
    ready_flag = true;
    pthread_cond_signal(&rcv);
    pthread_mutex_unlock(&rmu);
}

static void wait_ready(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += BENCH_WAIT_NS;
    if (ts.tv_nsec >= BENCH_NS_PER_SEC) {
        ts.tv_sec++;
        ts.tv_nsec -= BENCH_NS_PER_SEC;
    }
    pthread_mutex_lock(&rmu);
    if (!ready_flag)
        pthread_cond_timedwait(&rcv, &rmu, &ts);
    ready_flag = false;
    pthread_mutex_unlock(&rmu);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / BENCH_NS_PER_SEC;
}

static struct diskqueue *open_q(struct diskqueue_service *s, const char *name)
{
    struct diskqueue_options o = {
            .name = name,
            .data_path = dir,
            .max_bytes_per_file = BENCH_SEGMENT,
            .min_msg_size = BENCH_MSG_MIN,
            .max_msg_size = BENCH_MSG_MAX,
            .sync_every = sync_every,
            .sync_timeout_ns = BENCH_SYNC_TIMEOUT,
    };
    struct diskqueue *dq = diskqueue_open(s, &o, on_ready, NULL);
    if (!dq) {
        fprintf(stderr, "diskqueue_open failed\n");
        exit(1);
    }
    return dq;
}

static void put_all(struct diskqueue *dq, long n)
{
    uint8_t *buf = calloc(1, rec_size);
    for (long i = 0; i < n; i++) {
        memcpy(buf + 10, &i, sizeof(i));
        if (diskqueue_put(dq, buf, rec_size) != 0) {
            fprintf(stderr, "put failed\n");
            exit(1);
        }
    }
    free(buf);
}

/* Pops n records (diskqueue_pop_view when `view`), checking order through the sequence number
   written by put_all. */
static void pop_all(struct diskqueue *dq, long n, bool view)
{
    long got = 0;
    while (got < n) {
        uint8_t *d = NULL;
        const uint8_t *v;
        size_t len;
        int r = view ? diskqueue_pop_view(dq, &v, &len) : diskqueue_pop(dq, &d, &len);
        if (!r) {
            wait_ready();
            continue;
        }
        if (!view)
            v = d;
        long seq;
        memcpy(&seq, v + 10, sizeof(seq));
        if (len != rec_size || seq != got) {
            fprintf(stderr, "record %ld: got seq %ld len %zu\n", got, seq, len);
            exit(1);
        }
        free(d);
        got++;
    }
    if (view)
        diskqueue_release_view(dq);
}

static void report(const char *phase, long n, double secs)
{
    printf("%-8s %9ld records  %7.3f s  %10.0f records/s  %7.1f MB/s\n", phase, n, secs,
           (double)n / secs, (double)n * (double)rec_size / secs / 1e6);
}

struct producer {
    struct diskqueue *dq;
    long n;
};

static void *producer_main(void *arg)
{
    struct producer *p = arg;
    put_all(p->dq, p->n);
    return NULL;
}

int main(int argc, char **argv)
{
    int c;
    while ((c = getopt(argc, argv, "n:s:e:d:")) != -1) {
        switch (c) {
        case 'n':
            n_records = atol(optarg);
            break;
        case 's':
            rec_size = (size_t)atol(optarg);
            break;
        case 'e':
            sync_every = atol(optarg);
            break;
        case 'd':
            dir = optarg;
            break;
        default:
            fprintf(stderr, "usage: %s [-n records] [-s size] [-e sync_every] [-d dir]\n", argv[0]);
            return 2;
        }
    }
    if (rec_size < BENCH_MSG_MIN + sizeof(long))
        rec_size = BENCH_MSG_MIN + sizeof(long);
    char name[64];
    snprintf(name, sizeof(name), "bench%ld", (long)getpid());
    struct diskqueue_service *s = diskqueue_service_new(2);

    struct diskqueue *dq = open_q(s, name);
    double t0 = now_s();
    put_all(dq, n_records);
    diskqueue_flush(dq);
    report("put", n_records, now_s() - t0);
    diskqueue_close(dq);

    dq = open_q(s, name);
    t0 = now_s();
    pop_all(dq, n_records, false);
    report("pop", n_records, now_s() - t0);

    /* as many records again, popped in place */
    diskqueue_close(dq);
    dq = open_q(s, name);
    put_all(dq, n_records);
    diskqueue_flush(dq);
    diskqueue_close(dq);
    dq = open_q(s, name);
    t0 = now_s();
    pop_all(dq, n_records, true);
    report("pop_view", n_records, now_s() - t0);

    struct producer p = {dq, n_records};
    pthread_t th;
    t0 = now_s();
    pthread_create(&th, NULL, producer_main, &p);
    pop_all(dq, n_records, false);
    pthread_join(th, NULL);
    report("put+pop", n_records, now_s() - t0);

    diskqueue_delete(dq);
    diskqueue_service_free(s);
    return 0;
}
