/*
 * test_nsqd_durability: in-flight and deferred messages survive a SIGKILL of nsqd when it runs
 * with --sync-every=1 --mem-queue-size=0 (the channel journal, docs/durability.md).
 *
 *  - inflight_and_deferred: 50 messages in flight (delivered, never FINed) and 50 deferred by 10
 *    minutes; SIGKILL; after the restart the 50 in-flight ones are delivered again (attempts >= 2)
 *    and the 50 deferred ones are still deferred (deferred_count 50); a clean stop then leaves no
 *    journal file.
 *  - deferred_delivered: 50 messages deferred by 2 s; SIGKILL at once; after the restart all 50
 *    arrive once their deferral ends.
 *  - fin_not_redelivered: FINed messages are not delivered again after a SIGKILL, the unfinished
 *    ones are (with a torn record at the end of the journal, as a crash mid-append leaves).
 *  - clean_shutdown: SIGTERM with messages in flight and deferred loses nothing and leaves no
 *    journal file.
 *  - http_deferred: HTTP /pub?defer= messages are deferred again after a SIGKILL.
 *  - acked_survive_kill: every publish form (pipelined PUB and MPUB, HTTP /pub and /mpub, a PUB
 *    delivered at once to a waiting consumer) is answered in command order, and a SIGKILL right
 *    after the last OK loses none of them (the OK waits for the sync, ack_wait.h).
 *  - ephemeral: an ephemeral channel never journals.
 *  - channel_empty_delete: emptying or deleting the channel removes its journal.
 *  - compaction: after more than JOURNAL_COMPACT_MIN_BYTES of records the file is rewritten with
 *    its live content only, and a SIGKILL after that still redelivers exactly the unfinished
 *    messages.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "nsqd_itest.h"

#define DUR_N        50
#define DUR_TOPIC    "dur"
#define DUR_CHANNEL  "c"
#define DUR_LONG_MS  600000 /* 10 minutes: still deferred after the restart */
#define DUR_SHORT_MS 2000
#define DUR_WAIT_MS  10000
#define DUR_QUIET_MS 1000 /* how long "nothing more arrives" is watched */
#define DUR_BODY_MAX 64
/* Journal record sizes (docs/durability.md): header 8, then type 1 + id 16 (+ due 8 + message). */
#define DUR_REC_DONE   (8 + 1 + 16)
#define DUR_REC_MSG(n) (8 + 1 + 16 + 8 + 26 + (n))
#define DUR_MAGIC_LEN  8

static const char *const durable_flags[] = {"--sync-every=1", "--mem-queue-size=0", NULL};

static struct harness_proc *start(const char *dir)
{
    struct harness_proc *p = itest_nsqd_start(dir, durable_flags);
    ck_assert_ptr_nonnull(p);
    return p;
}

static void journal_path(const char *dir, char *out, size_t len)
{
    snprintf(out, len, "%s/%s:%s.inflight.dat", dir, DUR_TOPIC, DUR_CHANNEL);
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static int consumer(int port, int rdy)
{
    int fd = itest_v2_connect(port);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(itest_sub(fd, DUR_TOPIC, DUR_CHANNEL), 0);
    ck_assert_int_eq(itest_rdy(fd, rdy), 0);
    return fd;
}

static void body_of(char *buf, const char *prefix, int i)
{
    snprintf(buf, DUR_BODY_MAX, "%s-%03d", prefix, i);
}

static void publish(int port, const char *prefix, int n)
{
    int fd = itest_v2_connect(port);
    ck_assert_int_ge(fd, 0);
    for (int i = 0; i < n; i++) {
        char b[DUR_BODY_MAX];
        body_of(b, prefix, i);
        ck_assert_int_eq(itest_pub(fd, DUR_TOPIC, b, strlen(b)), 0);
    }
    close(fd);
}

/* DPUB n messages, waiting for each OK. */
static void dpublish(int port, const char *prefix, int n, int defer_ms)
{
    int fd = itest_v2_connect(port);
    ck_assert_int_ge(fd, 0);
    char line[128];
    snprintf(line, sizeof(line), "DPUB %s %d\n", DUR_TOPIC, defer_ms);
    for (int i = 0; i < n; i++) {
        char b[DUR_BODY_MAX];
        body_of(b, prefix, i);
        ck_assert_int_eq(harness_tcp_send_str(fd, line), 0);
        ck_assert_int_eq(harness_tcp_send_sized(fd, b, strlen(b)), 0);
        ck_assert_int_eq(itest_expect_response(fd, "OK"), 0);
    }
    close(fd);
}

/* Creates the topic and channel (nsqd.dat lists them) before anything is published. */
static void create_channel(int http_port)
{
    ck_assert_int_eq(itest_http("POST", http_port, "/topic/create?topic=" DUR_TOPIC, NULL, NULL),
                     200);
    ck_assert_int_eq(itest_http("POST", http_port,
                                "/channel/create?topic=" DUR_TOPIC "&channel=" DUR_CHANNEL, NULL,
                                NULL),
                     200);
}

/* Reads n messages whose bodies start with prefix; seen[i] counts body i. Returns how many were
   read before the timeout. min_attempts is checked on each. */
static int receive(int fd, const char *prefix, int n, int *seen, int min_attempts, int timeout_ms,
                   bool fin)
{
    int got = 0;
    while (got < n) {
        struct itest_msg m;
        if (itest_read_msg(fd, &m, timeout_ms) != 0)
            break;
        int idx = -1;
        size_t pl = strlen(prefix);
        if (m.len > pl + 1 && memcmp(m.body, prefix, pl) == 0 && m.body[pl] == '-')
            idx = atoi(m.body + pl + 1);
        ck_assert_msg(idx >= 0 && idx < DUR_N, "unexpected body %s", m.body);
        ck_assert_msg(m.attempts >= min_attempts, "body %s attempts %d < %d", m.body, m.attempts,
                      min_attempts);
        seen[idx]++;
        if (fin)
            ck_assert_int_eq(itest_fin(fd, m.id), 0);
        free(m.body);
        got++;
    }
    return got;
}

static void assert_no_message(int fd)
{
    struct itest_msg m;
    if (itest_read_msg(fd, &m, DUR_QUIET_MS) == 0) {
        ck_abort_msg("unexpected delivery %s (attempts %d)", m.body, m.attempts);
        free(m.body);
    }
}

struct stat_cond {
    int port;
    const char *key;
    int64_t want;
};

static bool stat_is(void *arg)
{
    struct stat_cond *c = arg;
    return itest_stats_int(c->port, DUR_TOPIC, DUR_CHANNEL, c->key) == c->want;
}

static void await_stat(int port, const char *key, int64_t want)
{
    struct stat_cond c = {port, key, want};
    ck_assert_msg(harness_wait_until(stat_is, &c, DUR_WAIT_MS), "%s != %lld (is %lld)", key,
                  (long long)want, (long long)itest_stats_int(port, DUR_TOPIC, DUR_CHANNEL, key));
}

struct size_cond {
    const char *path;
    long want;
};

static bool size_is(void *arg)
{
    struct size_cond *c = arg;
    return file_size(c->path) == c->want;
}

static void await_size(const char *path, long want)
{
    struct size_cond c = {path, want};
    ck_assert_msg(harness_wait_until(size_is, &c, DUR_WAIT_MS), "%s: size %ld, want %ld", path,
                  file_size(path), want);
}

/* Puts DUR_N messages in flight ("f<i>", delivered to the returned consumer and not finished) and
   DUR_N deferred for DUR_LONG_MS ("d<i>") on the test channel. */
static int hold_in_flight_and_deferred(int tcp, int http)
{
    create_channel(http);
    int c = consumer(tcp, DUR_N);
    publish(tcp, "f", DUR_N);
    int seen[DUR_N] = {0};
    ck_assert_int_eq(receive(c, "f", DUR_N, seen, 1, DUR_WAIT_MS, false), DUR_N);
    dpublish(tcp, "d", DUR_N, DUR_LONG_MS);
    return c;
}

START_TEST(inflight_and_deferred)
{
    char *dir = harness_tmpdir();
    char jpath[4200];
    journal_path(dir, jpath, sizeof(jpath));
    struct harness_proc *p = start(dir);
    int tcp = harness_port(p, "TCP"), http = harness_port(p, "HTTP");
    int c1 = hold_in_flight_and_deferred(tcp, http);
    int seen[DUR_N] = {0};
    await_stat(http, "in_flight_count", DUR_N);
    await_stat(http, "deferred_count", DUR_N);
    ck_assert_int_gt(file_size(jpath), DUR_MAGIC_LEN);
    harness_kill(p);
    close(c1);

    p = start(dir);
    tcp = harness_port(p, "TCP");
    http = harness_port(p, "HTTP");
    ck_assert_int_eq(itest_stats_int(http, DUR_TOPIC, DUR_CHANNEL, "deferred_count"), DUR_N);
    ck_assert_int_eq(itest_stats_int(http, DUR_TOPIC, DUR_CHANNEL, "depth"), DUR_N);
    int c2 = consumer(tcp, 2 * DUR_N);
    memset(seen, 0, sizeof(seen));
    ck_assert_int_eq(receive(c2, "f", DUR_N, seen, 2, DUR_WAIT_MS, true), DUR_N);
    for (int i = 0; i < DUR_N; i++)
        ck_assert_msg(seen[i] == 1, "in-flight message %d seen %d times", i, seen[i]);
    assert_no_message(c2); /* the deferred ones are not due */
    ck_assert_int_eq(itest_stats_int(http, DUR_TOPIC, DUR_CHANNEL, "deferred_count"), DUR_N);
    close(c2);
    ck_assert_int_eq(harness_stop(p, SIGTERM), 0);
    ck_assert_int_eq(file_size(jpath), -1);

    /* The clean stop wrote the deferred messages to the queue (as upstream does). */
    p = start(dir);
    tcp = harness_port(p, "TCP");
    int c3 = consumer(tcp, DUR_N);
    memset(seen, 0, sizeof(seen));
    ck_assert_int_eq(receive(c3, "d", DUR_N, seen, 0, DUR_WAIT_MS, true), DUR_N);
    close(c3);
    ck_assert_int_eq(harness_stop(p, SIGTERM), 0);
    harness_rmdir(dir);
    free(dir);
}
END_TEST

START_TEST(deferred_delivered)
{
    char *dir = harness_tmpdir();
    struct harness_proc *p = start(dir);
    int tcp = harness_port(p, "TCP"), http = harness_port(p, "HTTP");
    create_channel(http);
    dpublish(tcp, "s", DUR_N, DUR_SHORT_MS);
    harness_kill(p);

    p = start(dir);
    tcp = harness_port(p, "TCP");
    http = harness_port(p, "HTTP");
    int64_t deferred = itest_stats_int(http, DUR_TOPIC, DUR_CHANNEL, "deferred_count");
    int c = consumer(tcp, DUR_N);
    int seen[DUR_N] = {0};
    int got = receive(c, "s", DUR_N, seen, 0, DUR_WAIT_MS, true);
    /* Before the deferral ended they were all deferred (or all delivered, if the restart took
       longer than the deferral). */
    ck_assert_msg(deferred == DUR_N || deferred == 0, "deferred_count %lld", (long long)deferred);
    ck_assert_int_eq(got, DUR_N);
    for (int i = 0; i < DUR_N; i++)
        ck_assert_msg(seen[i] == 1, "deferred message %d seen %d times", i, seen[i]);
    close(c);
    ck_assert_int_eq(harness_stop(p, SIGTERM), 0);
    harness_rmdir(dir);
    free(dir);
}
END_TEST

START_TEST(fin_not_redelivered)
{
    enum { FINNED = 30, OPEN = DUR_N - FINNED };
    char *dir = harness_tmpdir();
    char jpath[4200];
    journal_path(dir, jpath, sizeof(jpath));
    struct harness_proc *p = start(dir);
    int tcp = harness_port(p, "TCP"), http = harness_port(p, "HTTP");
    create_channel(http);
    int c1 = consumer(tcp, DUR_N);
    publish(tcp, "f", DUR_N);
    long want = DUR_MAGIC_LEN;
    for (int i = 0; i < DUR_N; i++) {
        struct itest_msg m;
        ck_assert_int_eq(itest_read_msg(c1, &m, DUR_WAIT_MS), 0);
        want += DUR_REC_MSG((long)m.len);
        int idx = atoi(m.body + 2);
        if (idx < FINNED) {
            ck_assert_int_eq(itest_fin(c1, m.id), 0);
            want += DUR_REC_DONE;
        }
        free(m.body);
    }
    await_stat(http, "in_flight_count", OPEN);
    /* Every FIN is on disk once the file holds its record. */
    await_size(jpath, want);
    harness_kill(p);
    close(c1);
    /* A crash while appending leaves a torn record at the end: replay stops there. */
    FILE *f = fopen(jpath, "ab");
    ck_assert_ptr_nonnull(f);
    static const unsigned char torn[] = {0, 0, 0, 100, 0x12, 0x34, 0x56, 0x78, 1, 'x', 'y'};
    ck_assert_int_eq(fwrite(torn, 1, sizeof(torn), f), sizeof(torn));
    fclose(f);

    p = start(dir);
    tcp = harness_port(p, "TCP");
    int c2 = consumer(tcp, DUR_N);
    int seen[DUR_N] = {0};
    ck_assert_int_eq(receive(c2, "f", OPEN, seen, 2, DUR_WAIT_MS, true), OPEN);
    assert_no_message(c2);
    for (int i = 0; i < DUR_N; i++)
        ck_assert_msg(seen[i] == (i < FINNED ? 0 : 1), "message %d seen %d times", i, seen[i]);
    close(c2);
    ck_assert_int_eq(harness_stop(p, SIGTERM), 0);
    harness_rmdir(dir);
    free(dir);
}
END_TEST

START_TEST(clean_shutdown)
{
    char *dir = harness_tmpdir();
    char jpath[4200];
    journal_path(dir, jpath, sizeof(jpath));
    struct harness_proc *p = start(dir);
    int tcp = harness_port(p, "TCP"), http = harness_port(p, "HTTP");
    int c1 = hold_in_flight_and_deferred(tcp, http);
    ck_assert_int_gt(file_size(jpath), DUR_MAGIC_LEN);
    ck_assert_int_eq(harness_stop(p, SIGTERM), 0);
    close(c1);
    ck_assert_int_eq(file_size(jpath), -1);

    p = start(dir);
    tcp = harness_port(p, "TCP");
    http = harness_port(p, "HTTP");
    ck_assert_int_eq(file_size(jpath), -1);
    ck_assert_int_eq(itest_stats_int(http, DUR_TOPIC, DUR_CHANNEL, "depth"), 2 * DUR_N);
    int c2 = consumer(tcp, 2 * DUR_N);
    int fs[DUR_N] = {0}, ds[DUR_N] = {0};
    int got = 0;
    while (got < 2 * DUR_N) {
        struct itest_msg m;
        if (itest_read_msg(c2, &m, DUR_WAIT_MS) != 0)
            break;
        int idx = atoi(m.body + 2);
        ck_assert(idx >= 0 && idx < DUR_N);
        (m.body[0] == 'f' ? fs : ds)[idx]++;
        ck_assert_int_eq(itest_fin(c2, m.id), 0);
        free(m.body);
        got++;
    }
    ck_assert_int_eq(got, 2 * DUR_N);
    for (int i = 0; i < DUR_N; i++)
        ck_assert(fs[i] == 1 && ds[i] == 1);
    close(c2);
    ck_assert_int_eq(harness_stop(p, SIGTERM), 0);
    ck_assert_int_eq(file_size(jpath), -1);
    harness_rmdir(dir);
    free(dir);
}
END_TEST

START_TEST(http_deferred)
{
    enum { N = 5 };
    char *dir = harness_tmpdir();
    struct harness_proc *p = start(dir);
    int http = harness_port(p, "HTTP");
    create_channel(http);
    for (int i = 0; i < N; i++) {
        char b[DUR_BODY_MAX], path[128];
        body_of(b, "h", i);
        snprintf(path, sizeof(path), "/pub?topic=%s&defer=%d", DUR_TOPIC, DUR_LONG_MS);
        ck_assert_int_eq(itest_http("POST", http, path, b, NULL), 200);
    }
    harness_kill(p);
    p = start(dir);
    http = harness_port(p, "HTTP");
    ck_assert_int_eq(itest_stats_int(http, DUR_TOPIC, DUR_CHANNEL, "deferred_count"), N);
    ck_assert_int_eq(harness_stop(p, SIGTERM), 0);
    harness_rmdir(dir);
    free(dir);
}
END_TEST

/* Appends a V2 size-prefixed chunk (4-byte big-endian length + data) at *p. */
static void put_sized(char **p, const char *data, size_t len)
{
    uint32_t be = htonl((uint32_t)len);
    memcpy(*p, &be, 4);
    memcpy(*p + 4, data, len);
    *p += 4 + len;
}

START_TEST(acked_survive_kill)
{
    enum { N = 8 };
    char *dir = harness_tmpdir();
    struct harness_proc *p = start(dir);
    int tcp = harness_port(p, "TCP"), http = harness_port(p, "HTTP");
    create_channel(http);
    char b[N][DUR_BODY_MAX];
    for (int i = 0; i < N; i++)
        body_of(b[i], "k", i);

    /* PUB k-000, MPUB k-001..k-003, then a PUB to an invalid topic, in one write: OK, OK, then
       the error (a held OK keeps its place) */
    char buf[1024], *w = buf, mpub[256], *m = mpub;
    uint32_t count = htonl(3);
    memcpy(m, &count, 4);
    m += 4;
    for (int i = 1; i <= 3; i++)
        put_sized(&m, b[i], strlen(b[i]));
    w += sprintf(w, "PUB %s\n", DUR_TOPIC);
    put_sized(&w, b[0], strlen(b[0]));
    w += sprintf(w, "MPUB %s\n", DUR_TOPIC);
    put_sized(&w, mpub, (size_t)(m - mpub));
    w += sprintf(w, "PUB bad!topic\n");
    put_sized(&w, "x", 1);
    int fd = itest_v2_connect(tcp);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(harness_tcp_send(fd, buf, (size_t)(w - buf)), 0);
    ck_assert_int_eq(itest_expect_response(fd, "OK"), 0);
    ck_assert_int_eq(itest_expect_response(fd, "OK"), 0);
    int32_t type;
    char *data = NULL;
    size_t len;
    ck_assert_int_eq(itest_read_frame(fd, &type, &data, &len, ITEST_IO_MS), 0);
    ck_assert_msg(type == ITEST_FRAME_ERROR && strncmp(data, "E_BAD_TOPIC", 11) == 0,
                  "third response: type %d \"%.*s\"", type, (int)len, data);
    free(data);
    close(fd);

    /* HTTP */
    char path[128];
    snprintf(path, sizeof(path), "/pub?topic=%s", DUR_TOPIC);
    ck_assert_int_eq(itest_http("POST", http, path, b[4], NULL), 200);
    char lines[2 * DUR_BODY_MAX + 2];
    snprintf(lines, sizeof(lines), "%s\n%s\n", b[5], b[6]);
    snprintf(path, sizeof(path), "/mpub?topic=%s", DUR_TOPIC);
    ck_assert_int_eq(itest_http("POST", http, path, lines, NULL), 200);

    /* a consumer is waiting: k-000..k-006 go to it, and k-007 is delivered at once (its OK waits
       for its journal record) */
    int cfd = consumer(tcp, 2 * N);
    fd = itest_v2_connect(tcp);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(itest_pub(fd, DUR_TOPIC, b[7], strlen(b[7])), 0);
    harness_kill(p);
    close(fd);
    close(cfd);

    p = start(dir);
    cfd = consumer(harness_port(p, "TCP"), 2 * N);
    int seen[DUR_N] = {0};
    receive(cfd, "k", N, seen, 1, DUR_WAIT_MS, true);
    for (int i = 0; i < N; i++)
        ck_assert_msg(seen[i] >= 1, "acknowledged message %s lost", b[i]);
    close(cfd);
    ck_assert_int_eq(harness_stop(p, SIGTERM), 0);
    harness_rmdir(dir);
    free(dir);
}
END_TEST

START_TEST(ephemeral)
{
    char *dir = harness_tmpdir();
    struct harness_proc *p = start(dir);
    int tcp = harness_port(p, "TCP"), http = harness_port(p, "HTTP");
    int fd = itest_v2_connect(tcp);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(itest_sub(fd, DUR_TOPIC, "e#ephemeral"), 0);
    ck_assert_int_eq(itest_rdy(fd, DUR_N), 0);
    publish(tcp, "f", 5);
    for (int i = 0; i < 5; i++) {
        struct itest_msg m;
        ck_assert_int_eq(itest_read_msg(fd, &m, DUR_WAIT_MS), 0);
        free(m.body);
    }
    dpublish(tcp, "d", 5, DUR_LONG_MS);
    ck_assert_int_eq(itest_stats_int(http, DUR_TOPIC, "e#ephemeral", "deferred_count"), 5);
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s:e#ephemeral.inflight.dat", dir, DUR_TOPIC);
    ck_assert_int_eq(file_size(path), -1);
    close(fd);
    ck_assert_int_eq(harness_stop(p, SIGTERM), 0);
    harness_rmdir(dir);
    free(dir);
}
END_TEST

static bool file_gone(void *arg)
{
    return file_size(arg) == -1;
}

START_TEST(channel_empty_delete)
{
    char *dir = harness_tmpdir();
    char jpath[4200];
    journal_path(dir, jpath, sizeof(jpath));
    struct harness_proc *p = start(dir);
    int tcp = harness_port(p, "TCP"), http = harness_port(p, "HTTP");
    create_channel(http);
    dpublish(tcp, "d", 5, DUR_LONG_MS);
    ck_assert_int_gt(file_size(jpath), DUR_MAGIC_LEN);
    ck_assert_int_eq(itest_http("POST", http,
                                "/channel/empty?topic=" DUR_TOPIC "&channel=" DUR_CHANNEL, NULL,
                                NULL),
                     200);
    ck_assert(harness_wait_until(file_gone, jpath, DUR_WAIT_MS));
    ck_assert_int_eq(itest_stats_int(http, DUR_TOPIC, DUR_CHANNEL, "deferred_count"), 0);
    dpublish(tcp, "d", 5, DUR_LONG_MS);
    ck_assert_int_gt(file_size(jpath), DUR_MAGIC_LEN);
    ck_assert_int_eq(itest_http("POST", http,
                                "/channel/delete?topic=" DUR_TOPIC "&channel=" DUR_CHANNEL, NULL,
                                NULL),
                     200);
    ck_assert(harness_wait_until(file_gone, jpath, DUR_WAIT_MS));
    ck_assert_int_eq(harness_stop(p, SIGTERM), 0);
    harness_rmdir(dir);
    free(dir);
}
END_TEST

#define DUR_BIG_BODY  4096
#define DUR_BIG_N     1200 /* > 4 MiB of delivery records (docs/durability.md) */
#define DUR_BIG_OPEN  10   /* the last ones stay unfinished */
#define DUR_COMPACT_B (4L * 1024 * 1024)

START_TEST(compaction)
{
    char *dir = harness_tmpdir();
    char jpath[4200];
    journal_path(dir, jpath, sizeof(jpath));
    struct harness_proc *p = start(dir);
    int tcp = harness_port(p, "TCP"), http = harness_port(p, "HTTP");
    create_channel(http);
    int c1 = consumer(tcp, 2 * DUR_BIG_OPEN);
    int pub = itest_v2_connect(tcp);
    ck_assert_int_ge(pub, 0);
    static char body[DUR_BIG_BODY];
    for (int i = 0; i < DUR_BIG_N; i++) {
        memset(body, 'x', sizeof(body));
        int n = snprintf(body, sizeof(body), "b-%04d-", i);
        body[n] = 'x';
        ck_assert_int_eq(itest_pub(pub, DUR_TOPIC, body, sizeof(body)), 0);
        struct itest_msg m;
        ck_assert_int_eq(itest_read_msg(c1, &m, DUR_WAIT_MS), 0);
        if (atoi(m.body + 2) < DUR_BIG_N - DUR_BIG_OPEN)
            ck_assert_int_eq(itest_fin(c1, m.id), 0);
        free(m.body);
    }
    close(pub);
    await_stat(http, "in_flight_count", DUR_BIG_OPEN);
    long size = file_size(jpath);
    ck_assert_msg(size > 0 && size < DUR_COMPACT_B, "journal not compacted: %ld bytes", size);
    harness_kill(p);
    close(c1);

    p = start(dir);
    tcp = harness_port(p, "TCP");
    int c2 = consumer(tcp, 2 * DUR_BIG_OPEN);
    int seen[DUR_BIG_OPEN] = {0};
    for (int k = 0; k < DUR_BIG_OPEN; k++) {
        struct itest_msg m;
        ck_assert_int_eq(itest_read_msg(c2, &m, DUR_WAIT_MS), 0);
        int i = atoi(m.body + 2) - (DUR_BIG_N - DUR_BIG_OPEN);
        ck_assert_msg(i >= 0 && i < DUR_BIG_OPEN, "finished message %s redelivered", m.body);
        ck_assert_int_ge(m.attempts, 2);
        seen[i]++;
        ck_assert_int_eq(itest_fin(c2, m.id), 0);
        free(m.body);
    }
    for (int i = 0; i < DUR_BIG_OPEN; i++)
        ck_assert_int_eq(seen[i], 1);
    assert_no_message(c2);
    close(c2);
    ck_assert_int_eq(harness_stop(p, SIGTERM), 0);
    harness_rmdir(dir);
    free(dir);
}
END_TEST

static Suite *durability_suite(void)
{
    Suite *s = suite_create("nsqd_durability");
    TCase *tc = tcase_create("journal");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, inflight_and_deferred);
    tcase_add_test(tc, deferred_delivered);
    tcase_add_test(tc, fin_not_redelivered);
    tcase_add_test(tc, clean_shutdown);
    tcase_add_test(tc, http_deferred);
    tcase_add_test(tc, acked_survive_kill);
    tcase_add_test(tc, ephemeral);
    tcase_add_test(tc, channel_empty_delete);
    tcase_add_test(tc, compaction);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(durability_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
