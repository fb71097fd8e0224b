/*
 * test_reliability_load: nsqd under load, with memory figures.
 *
 *  - ten_thousand_connections: LOAD_CONNS (10,000) V2 connections at once, each IDENTIFYing and
 *    sending a NOP; every IDENTIFY is answered, and then a publish still reaches a subscriber.
 *    RLIMIT_NOFILE is raised for the test and for nsqd (inherited); a hard limit below what is
 *    needed fails the test with a message.
 *  - slow_consumer_bounded_memory: a consumer with RDY 2500 that never reads its socket while
 *    LOAD_SLOW_BYTES (200 MB) are published; nsqd's VmRSS must stay under LOAD_SLOW_RSS_KB (the
 *    excess goes to the diskqueues, the in-flight window is bounded by RDY).
 *  - many_topics_created_and_deleted: over keep-alive, pipelined HTTP, LOAD_TOPICS persistent
 *    topics with a channel each, then twice LOAD_EPH_TOPICS ephemeral topics with an ephemeral
 *    channel each (100,000 objects), created and deleted; VmRSS afterwards must be back within
 *    LOAD_CHURN_SLACK_KB of the baseline, and a second identical churn must not grow it.
 *
 * Data paths live on /dev/shm when it exists, so that the metadata rewrites (one fsync per
 * creation/deletion) measure nsqd rather than the disk.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "harness.h"
#include "nsqd_itest.h"

#define LOAD_CONNS          10000
#define LOAD_NOFILE         (LOAD_CONNS + 1024)
#define LOAD_CONNECT_MS     30000
#define LOAD_WAVE           100 /* connections opened at once, well below the listen backlog */
#define LOAD_SLOW_BYTES     (200LL * 1024 * 1024)
#define LOAD_SLOW_MSG       1024
#define LOAD_SLOW_BATCH     200 /* messages per MPUB */
#define LOAD_SLOW_RSS_KB    (256 * 1024)
#define LOAD_TOPICS         1000  /* persistent: each creation rewrites nsqd.dat */
#define LOAD_EPH_TOPICS     25000 /* ephemeral topic + channel, twice: 100,000 objects */
#define LOAD_CYCLE_SLACK_KB (8 * 1024)
#define LOAD_PIPELINE       200
#define LOAD_CHURN_SLACK_KB (64 * 1024)

/* In an AddressSanitizer build (this test is built with the same flags as nsqd) the sanitizer's shadow
   memory and its quarantine of freed blocks (256 MiB by default) dominate VmRSS, so the memory
   bounds are widened there by a factor for the shadow plus twice the quarantine (its fill varies
   with timing). Normal builds keep them exact. */
#if defined(__has_feature)
#if __has_feature(address_sanitizer) && !defined(__SANITIZE_ADDRESS__)
#define __SANITIZE_ADDRESS__ 1
#endif
#endif
#ifdef __SANITIZE_ADDRESS__
#define LOAD_RSS_KB(kb) ((kb) * 4 + 512 * 1024)
#else
#define LOAD_RSS_KB(kb) (kb)
#endif
#define LOAD_IDENTIFY_JSON  "{\"client_id\":\"load\",\"feature_negotiation\":false}"

static long vm_rss_kb(pid_t pid)
{
    char path[64], line[256];
    long kb = -1;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

static void raise_nofile(rlim_t want)
{
    struct rlimit rl;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    ck_assert_msg(rl.rlim_max >= want,
                  "RLIMIT_NOFILE hard limit is %llu, this test needs %llu (raise it, e.g. ulimit "
                  "-Hn, or run as root)",
                  (unsigned long long)rl.rlim_max, (unsigned long long)want);
    rl.rlim_cur = want;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
}

static char *data_dir(void)
{
    struct stat sb;
    if (stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode)) {
        char *d = strdup("/dev/shm/nsqload-XXXXXX");
        if (d != NULL && mkdtemp(d) != NULL)
            return d;
        free(d);
    }
    return harness_tmpdir();
}

/* SUB + PUB + delivery on fresh connections. */
static void round_trip(int port, const char *body)
{
    int sub = itest_v2_connect(port);
    ck_assert_int_ge(sub, 0);
    ck_assert_int_eq(itest_sub(sub, "rt", "c"), 0);
    ck_assert_int_eq(itest_rdy(sub, 1), 0);
    int pub = itest_v2_connect(port);
    ck_assert_int_ge(pub, 0);
    ck_assert_int_eq(itest_pub(pub, "rt", body, strlen(body)), 0);
    close(pub);
    struct itest_msg m;
    ck_assert_int_eq(itest_read_msg(sub, &m, ITEST_IO_MS), 0);
    ck_assert_str_eq(m.body, body);
    free(m.body);
    close(sub);
}

START_TEST(ten_thousand_connections)
{
    raise_nofile(LOAD_NOFILE);
    char *dir = data_dir();
    struct harness_proc *p = itest_nsqd_start(dir, NULL);
    ck_assert_ptr_nonnull(p);
    int port = harness_port(p, "TCP");
    long base = vm_rss_kb(harness_pid(p));

    /* one write per connection: magic, IDENTIFY with its body, NOP */
    char req[256];
    size_t jl = strlen(LOAD_IDENTIFY_JSON);
    size_t rl = 0;
    memcpy(req, "  V2IDENTIFY\n", 13);
    rl = 13;
    req[rl++] = (char)(jl >> 24);
    req[rl++] = (char)(jl >> 16);
    req[rl++] = (char)(jl >> 8);
    req[rl++] = (char)jl;
    memcpy(req + rl, LOAD_IDENTIFY_JSON, jl);
    rl += jl;
    memcpy(req + rl, "NOP\n", 4);
    rl += 4;

    int *fds = calloc(LOAD_CONNS, sizeof(int));
    struct pollfd *pfd = calloc(LOAD_CONNS, sizeof(*pfd));
    size_t *got = calloc(LOAD_CONNS, sizeof(size_t));
    /* connect in waves of LOAD_WAVE, each wave answered before the next: a faster connect storm
       only overflows the listen backlog (SYN retransmits, 1 s each) */
    const size_t want = 10; /* one response frame "OK": [0 0 0 6][0 0 0 0]"OK" */
    int done = 0;
    int64_t t0 = harness_now_ms();
    int64_t deadline = t0 + LOAD_CONNECT_MS;
    for (int w = 0; w < LOAD_CONNS; w += LOAD_WAVE) {
        int end = w + LOAD_WAVE < LOAD_CONNS ? w + LOAD_WAVE : LOAD_CONNS;
        for (int i = w; i < end; i++) {
            fds[i] = harness_connect(port);
            ck_assert_msg(fds[i] >= 0, "connection %d failed: %s", i, strerror(errno));
            ck_assert_int_eq(harness_tcp_send(fds[i], req, rl), 0);
            pfd[i].fd = fds[i];
            pfd[i].events = POLLIN;
        }
        while (done < end && harness_now_ms() < deadline) {
            int n = poll(pfd + w, (nfds_t)(end - w), 1000);
            ck_assert_int_ge(n, 0);
            for (int i = w; i < end && n > 0; i++) {
                if (pfd[i].revents == 0)
                    continue;
                n--;
                char buf[64];
                ssize_t r = recv(fds[i], buf, sizeof(buf), MSG_DONTWAIT);
                ck_assert_msg(r > 0, "connection %d closed by nsqd", i);
                got[i] += (size_t)r;
                if (got[i] >= want) {
                    pfd[i].fd = -1; /* answered */
                    done++;
                }
            }
        }
        if (done != end) {
            char *log = harness_log(p);
            size_t ll = log ? strlen(log) : 0;
            fprintf(stderr, "nsqd log tail:\n%s\n", log && ll > 2000 ? log + ll - 2000 : log);
            free(log);
        }
        ck_assert_msg(done == end, "%d of %d connections answered in %lld ms", done, end,
                      (long long)(harness_now_ms() - t0));
    }
    int64_t t_conn = harness_now_ms() - t0;
    long rss = vm_rss_kb(harness_pid(p));
    fprintf(stderr,
            "10k connections: %d connected and IDENTIFY answered in %lld ms; nsqd VmRSS %ld kB -> "
            "%ld kB (%.1f kB per connection)\n",
            done, (long long)t_conn, base, rss, (double)(rss - base) / LOAD_CONNS);
    ck_assert_int_eq(done, LOAD_CONNS);
    round_trip(port, "after-10k");
    for (int i = 0; i < LOAD_CONNS; i++)
        close(fds[i]);
    free(fds);
    free(pfd);
    free(got);
    ck_assert_int_eq(harness_stop(p, SIGTERM), 0);
    harness_rmdir(dir);
    free(dir);
}
END_TEST

START_TEST(slow_consumer_bounded_memory)
{
    char *dir = data_dir();
    struct harness_proc *p = itest_nsqd_start(dir, NULL);
    ck_assert_ptr_nonnull(p);
    int port = harness_port(p, "TCP");
    pid_t pid = harness_pid(p);
    long base = vm_rss_kb(pid), peak = base;

    int slow = itest_v2_connect(port);
    ck_assert_int_ge(slow, 0);
    ck_assert_int_eq(itest_sub(slow, "slow", "c"), 0);
    ck_assert_int_eq(itest_rdy(slow, 2500), 0);
    /* the slow consumer never reads again */

    size_t body_len = 4 + (size_t)LOAD_SLOW_BATCH * (4 + LOAD_SLOW_MSG);
    uint8_t *body = malloc(body_len);
    uint8_t *w = body;
    *w++ = 0;
    *w++ = 0;
    *w++ = (uint8_t)(LOAD_SLOW_BATCH >> 8);
    *w++ = (uint8_t)LOAD_SLOW_BATCH;
    for (int i = 0; i < LOAD_SLOW_BATCH; i++) {
        *w++ = 0;
        *w++ = 0;
        *w++ = (uint8_t)(LOAD_SLOW_MSG >> 8);
        *w++ = (uint8_t)LOAD_SLOW_MSG;
        memset(w, 'a' + i % 26, LOAD_SLOW_MSG);
        w += LOAD_SLOW_MSG;
    }
    int pub = itest_v2_connect(port);
    long long sent = 0;
    int64_t t0 = harness_now_ms();
    int batches = 0;
    while (sent < LOAD_SLOW_BYTES) {
        ck_assert_int_eq(harness_tcp_send_str(pub, "MPUB slow\n"), 0);
        ck_assert_int_eq(harness_tcp_send_sized(pub, body, body_len), 0);
        ck_assert_int_eq(itest_expect_response(pub, "OK"), 0);
        sent += (long long)LOAD_SLOW_BATCH * LOAD_SLOW_MSG;
        if (++batches % 50 == 0) {
            long rss = vm_rss_kb(pid);
            peak = rss > peak ? rss : peak;
        }
    }
    int64_t ms = harness_now_ms() - t0;
    long rss = vm_rss_kb(pid);
    peak = rss > peak ? rss : peak;
    int64_t depth = itest_stats_int(harness_port(p, "HTTP"), "slow", "c", "depth");
    fprintf(stderr,
            "slow consumer: %lld MB published in %lld ms (%.0f MB/s), channel depth %lld; nsqd "
            "VmRSS %ld kB before, peak %ld kB\n",
            sent >> 20, (long long)ms, ms > 0 ? (double)(sent >> 20) * 1000.0 / (double)ms : 0.0,
            (long long)depth, base, peak);
    ck_assert_msg(peak < LOAD_RSS_KB(LOAD_SLOW_RSS_KB), "nsqd VmRSS %ld kB above the %d kB bound",
                  peak, LOAD_RSS_KB(LOAD_SLOW_RSS_KB));
    round_trip(port, "after-slow");
    close(pub);
    close(slow);
    free(body);
    ck_assert_int_eq(harness_stop(p, SIGTERM), 0);
    harness_rmdir(dir);
    free(dir);
}
END_TEST

/* ---- pipelined HTTP/1.1 over one keep-alive connection ---- */

/* Reads one response; returns its status, or -1. */
static int http_read_response(int fd, char *buf, size_t cap, size_t *have)
{
    for (;;) {
        char *end = memmem(buf, *have, "\r\n\r\n", 4);
        if (end != NULL) {
            size_t hlen = (size_t)(end - buf) + 4;
            int status = -1;
            long clen = 0;
            sscanf(buf, "HTTP/1.%*d %d", &status);
            char *cl = memmem(buf, hlen, "Content-Length:", 15);
            if (cl != NULL)
                clen = strtol(cl + 15, NULL, 10);
            if (*have >= hlen + (size_t)clen) {
                size_t used = hlen + (size_t)clen;
                memmove(buf, buf + used, *have - used);
                *have -= used;
                return status;
            }
        }
        if (*have == cap)
            return -1;
        struct pollfd pf = {fd, POLLIN, 0};
        if (poll(&pf, 1, ITEST_IO_MS) <= 0)
            return -1;
        ssize_t r = recv(fd, buf + *have, cap - *have, 0);
        if (r <= 0)
            return -1;
        *have += (size_t)r;
    }
}

/* Sends `n` POSTs built by fmt(i) in pipelined batches; returns how many answered 200. */
static int http_pipeline(int port, int n, int (*fmt)(char *, size_t, int))
{
    int fd = harness_connect(port), ok = 0;
    static char rbuf[1 << 16];
    size_t have = 0;
    ck_assert_int_ge(fd, 0);
    for (int i = 0; i < n; i += LOAD_PIPELINE) {
        char req[LOAD_PIPELINE * 160];
        size_t len = 0;
        int m = n - i < LOAD_PIPELINE ? n - i : LOAD_PIPELINE;
        for (int j = 0; j < m; j++)
            len += (size_t)fmt(req + len, sizeof(req) - len, i + j);
        ck_assert_int_eq(harness_tcp_send(fd, req, len), 0);
        for (int j = 0; j < m; j++) {
            int st = http_read_response(fd, rbuf, sizeof(rbuf), &have);
            ck_assert_msg(st > 0, "no HTTP response for request %d", i + j);
            ok += st == 200;
        }
    }
    close(fd);
    return ok;
}

#define LOAD_HTTP_TAIL " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n"

static int fmt_topic_create(char *b, size_t n, int i)
{
    return snprintf(b, n, "POST /topic/create?topic=load%d" LOAD_HTTP_TAIL, i);
}

static int fmt_channel_create(char *b, size_t n, int i)
{
    return snprintf(b, n, "POST /channel/create?topic=load%d&channel=c" LOAD_HTTP_TAIL, i);
}

static int fmt_eph_create(char *b, size_t n, int i)
{
    return snprintf(b, n, "POST /topic/create?topic=eph%d%%23ephemeral" LOAD_HTTP_TAIL, i);
}

static int fmt_eph_channel(char *b, size_t n, int i)
{
    return snprintf(
            b, n,
            "POST /channel/create?topic=eph%d%%23ephemeral&channel=c%%23ephemeral" LOAD_HTTP_TAIL,
            i);
}

static int fmt_eph_delete(char *b, size_t n, int i)
{
    return snprintf(b, n, "POST /topic/delete?topic=eph%d%%23ephemeral" LOAD_HTTP_TAIL, i);
}

static int fmt_topic_delete(char *b, size_t n, int i)
{
    return snprintf(b, n, "POST /topic/delete?topic=load%d" LOAD_HTTP_TAIL, i);
}

/* Creates n topics and a channel in each, checks /stats, deletes
   them; prints the figures and checks VmRSS is back near `base`. */
static long churn(struct harness_proc *p, const char *what, int n,
                  int (*create)(char *, size_t, int), int (*chan)(char *, size_t, int),
                  int (*del)(char *, size_t, int), long base)
{
    int http = harness_port(p, "HTTP");
    pid_t pid = harness_pid(p);
    int64_t t0 = harness_now_ms();
    ck_assert_int_eq(http_pipeline(http, n, create), n);
    if (chan != NULL)
        ck_assert_int_eq(http_pipeline(http, n, chan), n);
    int64_t t_create = harness_now_ms() - t0;
    long full = vm_rss_kb(pid);
    cJSON *st = itest_stats(http, "");
    ck_assert_ptr_nonnull(st);
    int ntopics = cJSON_GetArraySize(cJSON_GetObjectItem(st, "topics"));
    cJSON_Delete(st);
    t0 = harness_now_ms();
    ck_assert_int_eq(http_pipeline(http, n, del), n);
    int64_t t_delete = harness_now_ms() - t0;
    long after = vm_rss_kb(pid);
    st = itest_stats(http, "");
    ck_assert_ptr_nonnull(st);
    int left = cJSON_GetArraySize(cJSON_GetObjectItem(st, "topics"));
    cJSON_Delete(st);
    fprintf(stderr,
            "topic churn (%s): %d topics + %d channels created in %lld ms (%d in /stats), deleted "
            "in %lld ms (%d left); nsqd VmRSS %ld kB baseline, %ld kB full, %ld kB after\n",
            what, n, n, (long long)t_create, ntopics, (long long)t_delete, left, base, full, after);
    ck_assert_int_ge(ntopics, n);
    ck_assert_int_le(left, 1);
    ck_assert_msg(after - base < LOAD_RSS_KB(LOAD_CHURN_SLACK_KB),
                  "VmRSS %ld kB after deleting everything, baseline %ld kB", after, base);
    return after;
}

START_TEST(many_topics_created_and_deleted)
{
    char *dir = data_dir();
    struct harness_proc *p = itest_nsqd_start(dir, NULL);
    ck_assert_ptr_nonnull(p);
    int http = harness_port(p, "HTTP");
    pid_t pid = harness_pid(p);
    /* warm up the allocator and the HTTP path before the baseline */
    ck_assert_int_eq(http_pipeline(http, LOAD_PIPELINE, fmt_topic_create), LOAD_PIPELINE);
    ck_assert_int_eq(http_pipeline(http, LOAD_PIPELINE, fmt_topic_delete), LOAD_PIPELINE);
    long base = vm_rss_kb(pid);
    churn(p, "persistent", LOAD_TOPICS, fmt_topic_create, fmt_channel_create, fmt_topic_delete,
          base);
    long first = churn(p, "ephemeral 1", LOAD_EPH_TOPICS, fmt_eph_create, fmt_eph_channel,
                       fmt_eph_delete, base);
    /* the same churn again must not grow memory further (a leak would, allocator retention not) */
    long second = churn(p, "ephemeral 2", LOAD_EPH_TOPICS, fmt_eph_create, fmt_eph_channel,
                        fmt_eph_delete, base);
    ck_assert_msg(second - first < LOAD_RSS_KB(LOAD_CYCLE_SLACK_KB),
                  "VmRSS grew from %ld kB to %ld kB over a second identical churn", first, second);
    round_trip(harness_port(p, "TCP"), "after-churn");
    ck_assert_int_eq(harness_stop(p, SIGTERM), 0);
    harness_rmdir(dir);
    free(dir);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("reliability_load");
    TCase *tc = tcase_create("load");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, ten_thousand_connections);
    tcase_add_test(tc, slow_consumer_bounded_memory);
    tcase_add_test(tc, many_topics_created_and_deleted);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    SRunner *sr = srunner_create(suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
