/*
 * test_reliability_disk: nsqd under disk faults (needs root: it mounts a small tmpfs).
 *
 *  - disk_full_recovers: data path on a 2 MiB tmpfs almost filled by a filler file; publishing
 *    through the diskqueues (--mem-queue-size=0) fills it: PUB fails with E_PUB_FAILED, /ping
 *    answers 500 "NOK - ...", nsqd keeps running and serving; once the filler is deleted the next
 *    publish succeeds and /ping is "OK" again, without a restart.
 *  - corrupt_segment / truncated_segment: a channel segment damaged while nsqd is down; at start
 *    the records before the damage are delivered, the segment is renamed .bad, new messages flow.
 *  - corrupt_queue_meta: garbage in a diskqueue meta file only logs; nsqd starts and serves.
 *  - invalid_metadata_fatal: nsqd.dat with invalid JSON → exit with "failed to parse metadata in
 *    <file> - ..." (storage.md §5).
 *  - readonly_data_path_fatal: a read-only data path makes start-up fail with a message.
 *
 * Every mount is undone by a cleanup handler, whatever the outcome (Check runs each test in a
 * child; the handler runs at its exit and on SIGABRT/SIGTERM).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "harness.h"
#include "nsqd_itest.h"

#define DISK_TMPFS_OPTS    "size=2m"
#define DISK_FILLER_BYTES  (1536 * 1024)
#define DISK_MSG_BYTES     (64 * 1024)
#define DISK_MAX_PUBS      64    /* the tmpfs is full long before this */
#define DISK_RECOVER_MS    10000 /* the queue retries a failed write every second */
#define DISK_EXIT_MS       10000
#define DISK_MAX_STACKED   8
#define DISK_N_MSGS        10
#define DISK_DAMAGED_AT    5 /* index of the first damaged record */
#define DISK_RECORD_LEN(b) (4 + ITEST_MSG_HDR + (b))

extern char **environ;

static char mounted[4096];
static char *mount_point; /* made by the parent process (unchecked fixture), used by each test */

static void unmount_all(void)
{
    if (mounted[0] != '\0') {
        if (umount2(mounted, MNT_DETACH) != 0)
            fprintf(stderr, "umount %s: %s\n", mounted, strerror(errno));
        mounted[0] = '\0';
    }
}

static void on_signal(int sig)
{
    unmount_all();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void require_root(void)
{
    ck_assert_msg(geteuid() == 0,
                  "test_reliability_disk must run as root (it mounts a tmpfs as nsqd's data path)");
}

/* Unchecked fixture: runs in the parent, so the mount is undone even when a test's process
   dies without running its own handlers. */
static void mount_point_setup(void)
{
    mount_point = harness_tmpdir();
}

static void mount_point_teardown(void)
{
    /* a failed test may have left its mount (tests mount one at a time, possibly stacked) */
    for (int i = 0; i < DISK_MAX_STACKED && umount2(mount_point, MNT_DETACH) == 0; i++)
        ;
    harness_rmdir(mount_point);
    free(mount_point);
}

/* Mounts a tmpfs with `opts` on the mount point; returns its path (caller frees). */
static char *mount_tmpfs(const char *opts)
{
    char *dir = strdup(mount_point);
    require_root();
    ck_assert_msg(mount("tmpfs", dir, "tmpfs", 0, opts) == 0, "mount -t tmpfs -o %s %s: %s", opts,
                  dir, strerror(errno));
    snprintf(mounted, sizeof(mounted), "%s", dir);
    atexit(unmount_all);
    signal(SIGABRT, on_signal);
    signal(SIGTERM, on_signal);
    return dir;
}

static void write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
    ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
    close(fd);
}

/* Publishes on a fresh connection; returns 0 on OK, else copies the error frame into err. */
static int pub_once(int port, const char *topic, const void *body, size_t len, char *err,
                    size_t errlen)
{
    char line[256];
    int32_t type;
    char *data = NULL;
    size_t dlen;
    int fd = itest_v2_connect(port), rc = -1;
    err[0] = '\0';
    if (fd < 0)
        return -1;
    snprintf(line, sizeof(line), "PUB %s\n", topic);
    if (harness_tcp_send_str(fd, line) == 0 && harness_tcp_send_sized(fd, body, len) == 0 &&
        itest_read_frame(fd, &type, &data, &dlen, ITEST_IO_MS) == 0) {
        if (type == ITEST_FRAME_RESP && dlen == 2 && memcmp(data, "OK", 2) == 0)
            rc = 0;
        else
            snprintf(err, errlen, "%.*s", (int)dlen, data);
        free(data);
    }
    close(fd);
    return rc;
}

struct ping_ctx {
    int port;
    char *body;
    long status;
};

static bool ping_status(void *arg, long want)
{
    struct ping_ctx *p = arg;
    free(p->body);
    p->body = NULL;
    p->status = itest_http("GET", p->port, "/ping", NULL, &p->body);
    return p->status == want;
}

static bool ping_is_500(void *arg)
{
    return ping_status(arg, 500);
}

struct recover_ctx {
    int port;
    const char *body;
    size_t len;
};

static bool pub_works(void *arg)
{
    struct recover_ctx *r = arg;
    char err[256];
    return pub_once(r->port, "full", r->body, r->len, err, sizeof(err)) == 0;
}

START_TEST(disk_full_recovers)
{
    char *dir = mount_tmpfs(DISK_TMPFS_OPTS);
    char filler[4200], derr[512] = "";
    snprintf(filler, sizeof(filler), "%s/filler", dir);
    char *fill = calloc(1, DISK_FILLER_BYTES);
    write_file(filler, fill, DISK_FILLER_BYTES);
    free(fill);

    static const char *const args[] = {"--mem-queue-size=0", "--sync-every=1", NULL};
    struct harness_proc *p = itest_nsqd_start(dir, args);
    ck_assert_ptr_nonnull(p);
    int tcp = harness_port(p, "TCP"), http = harness_port(p, "HTTP");
    char *msg = malloc(DISK_MSG_BYTES);
    memset(msg, 'x', DISK_MSG_BYTES);

    int ok = 0, failed_at = -1;
    for (int i = 0; i < DISK_MAX_PUBS; i++) {
        if (pub_once(tcp, "full", msg, DISK_MSG_BYTES, derr, sizeof(derr)) != 0) {
            failed_at = i;
            break;
        }
        ok++;
    }
    fprintf(stderr, "disk full: %d publishes of %d bytes accepted, then \"%s\"\n", ok,
            DISK_MSG_BYTES, derr);
    ck_assert_msg(failed_at >= 0, "no publish failed after %d x %d bytes on a 2 MiB tmpfs",
                  DISK_MAX_PUBS, DISK_MSG_BYTES);
    ck_assert_msg(strncmp(derr, "E_PUB_FAILED", 12) == 0, "publish error \"%s\"", derr);

    struct ping_ctx pc = {http, NULL, 0};
    ck_assert_msg(harness_wait_until(ping_is_500, &pc, ITEST_IO_MS), "/ping %ld \"%s\"", pc.status,
                  pc.body ? pc.body : "");
    ck_assert_msg(strncmp(pc.body, "NOK - ", 6) == 0, "/ping body \"%s\"", pc.body);
    fprintf(stderr, "disk full: /ping %ld \"%s\"\n", pc.status, pc.body);
    ck_assert(harness_running(p));

    /* still serving: a consumer on another topic (memory only) gets its message */
    {
        static const char small[] = "still-alive";
        int fd = itest_v2_connect(tcp);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(itest_pub(fd, "mem#ephemeral", small, sizeof(small) - 1), 0);
        close(fd);
    }

    /* space returns: no restart needed */
    ck_assert_int_eq(unlink(filler), 0);
    struct recover_ctx rc = {tcp, msg, DISK_MSG_BYTES};
    int64_t t0 = harness_now_ms();
    ck_assert_msg(harness_wait_until(pub_works, &rc, DISK_RECOVER_MS),
                  "publishing did not recover within %d ms of freeing space", DISK_RECOVER_MS);
    long st = itest_http("GET", http, "/ping", NULL, NULL);
    fprintf(stderr, "disk full: recovered %lld ms after freeing space, /ping %ld\n",
            (long long)(harness_now_ms() - t0), st);
    ck_assert_int_eq(st, 200);
    free(pc.body);
    free(msg);
    ck_assert_int_eq(harness_stop(p, SIGTERM), 0);
    unmount_all();
    free(dir);
}
END_TEST

/* Publishes DISK_N_MSGS messages "d<i>" to disk (channel c of topic d), stops nsqd cleanly. */
static void fill_channel_queue(const char *dir)
{
    static const char *const args[] = {"--mem-queue-size=0", NULL};
    struct harness_proc *p = itest_nsqd_start(dir, args);
    ck_assert_ptr_nonnull(p);
    int fd = itest_v2_connect(harness_port(p, "TCP"));
    ck_assert_int_eq(itest_sub(fd, "d", "c"), 0);
    close(fd);
    fd = itest_v2_connect(harness_port(p, "TCP"));
    for (int i = 0; i < DISK_N_MSGS; i++) {
        char b[16];
        int n = snprintf(b, sizeof(b), "d%d", i);
        ck_assert_int_eq(itest_pub(fd, "d", b, (size_t)n), 0);
    }
    close(fd);
    ck_assert_int_eq(harness_stop(p, SIGTERM), 0);
}

/* Starts nsqd on dir, consumes with a deadline; returns how many of d0..d<N-1> arrived in order
   before the first gap, then checks that a fresh message still flows. */
static int consume_after_damage(const char *dir, struct harness_proc **out)
{
    struct harness_proc *p = itest_nsqd_start(dir, NULL);
    ck_assert_ptr_nonnull(p);
    int fd = itest_v2_connect(harness_port(p, "TCP"));
    ck_assert_int_eq(itest_sub(fd, "d", "c"), 0);
    ck_assert_int_eq(itest_rdy(fd, 100), 0);
    int n = 0;
    struct itest_msg m;
    while (itest_read_msg(fd, &m, 1000) == 0) {
        char want[16];
        snprintf(want, sizeof(want), "d%d", n);
        if (strcmp(m.body, want) == 0)
            n++;
        itest_fin(fd, m.id);
        free(m.body);
    }
    /* new traffic still flows through the damaged queue */
    int pfd = itest_v2_connect(harness_port(p, "TCP"));
    ck_assert_int_eq(itest_pub(pfd, "d", "after", 5), 0);
    close(pfd);
    ck_assert_int_eq(itest_read_msg(fd, &m, ITEST_IO_MS), 0);
    ck_assert_str_eq(m.body, "after");
    free(m.body);
    close(fd);
    *out = p;
    return n;
}

static bool bad_file_exists(const char *dir)
{
    char path[4200];
    struct stat sb;
    snprintf(path, sizeof(path), "%s/d:c.diskqueue.000000.dat.bad", dir);
    return stat(path, &sb) == 0;
}

static void damage_test(bool truncate_it)
{
    char *dir = harness_tmpdir();
    char seg[4200];
    fill_channel_queue(dir);
    snprintf(seg, sizeof(seg), "%s/d:c.diskqueue.000000.dat", dir);
    /* records d0..d9: [int32 len][26-byte header][2-byte body] */
    off_t at = (off_t)DISK_DAMAGED_AT * DISK_RECORD_LEN(2);
    if (truncate_it) {
        ck_assert_int_eq(truncate(seg, at + 7), 0); /* mid-record */
    } else {
        int fd = open(seg, O_WRONLY);
        static const uint8_t bogus[4] = {0x7f, 0xff, 0xff, 0xff}; /* length out of range */
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(pwrite(fd, bogus, 4, at), 4);
        close(fd);
    }
    struct harness_proc *p;
    int n = consume_after_damage(dir, &p);
    fprintf(stderr, "%s segment: %d of %d records delivered before the damage (want %d)\n",
            truncate_it ? "truncated" : "corrupted", n, DISK_N_MSGS, DISK_DAMAGED_AT);
    if (n != DISK_DAMAGED_AT || !bad_file_exists(dir)) {
        char *log = harness_log(p);
        fprintf(stderr, "nsqd log:\n%s", log ? log : "");
        free(log);
    }
    ck_assert_int_eq(n, DISK_DAMAGED_AT);
    ck_assert_msg(bad_file_exists(dir), "damaged segment not renamed to .bad");
    ck_assert(harness_running(p));
    ck_assert_int_eq(harness_stop(p, SIGTERM), 0);
    harness_rmdir(dir);
    free(dir);
}

START_TEST(corrupt_segment)
{
    damage_test(false);
}
END_TEST

START_TEST(truncated_segment)
{
    damage_test(true);
}
END_TEST

START_TEST(corrupt_queue_meta)
{
    char *dir = harness_tmpdir();
    char meta[4200];
    fill_channel_queue(dir);
    snprintf(meta, sizeof(meta), "%s/d:c.diskqueue.meta.dat", dir);
    write_file(meta, "garbage\n\xff\xfe,,\n", 14);
    struct harness_proc *p = itest_nsqd_start(dir, NULL);
    ck_assert_ptr_nonnull(p);
    int fd = itest_v2_connect(harness_port(p, "TCP"));
    ck_assert_int_eq(itest_pub(fd, "other", "x", 1), 0);
    close(fd);
    ck_assert_int_eq(itest_http("GET", harness_port(p, "HTTP"), "/ping", NULL, NULL), 200);
    ck_assert_int_eq(harness_stop(p, SIGTERM), 0);
    harness_rmdir(dir);
    free(dir);
}
END_TEST

/* Runs nsqd in the foreground until it exits (or DISK_EXIT_MS passes: killed, -1). Its stderr
   goes to log_path. Returns the exit status. */
static int run_nsqd_to_exit(const char *data_path, const char *log_path)
{
    char dp[4200];
    snprintf(dp, sizeof(dp), "--data-path=%s", data_path);
    char *argv[] = {(char *)NSQD_BIN, "--tcp-address=127.0.0.1:0", "--http-address=127.0.0.1:0", dp,
                    NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t pid;
    ck_assert_int_eq(posix_spawn(&pid, NSQD_BIN, &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    int64_t deadline = harness_now_ms() + DISK_EXIT_MS;
    int status;
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (harness_now_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

START_TEST(invalid_metadata_fatal)
{
    char *dir = harness_tmpdir();
    char dat[4200], log[4200], want[4300];
    snprintf(dat, sizeof(dat), "%s/nsqd.dat", dir);
    snprintf(log, sizeof(log), "%s.log", dir);
    write_file(dat, "{\"topics\":[{\"name\":", 19);
    int st = run_nsqd_to_exit(dir, log);
    char *text = itest_read_file(log, NULL);
    ck_assert_ptr_nonnull(text);
    fprintf(stderr, "invalid nsqd.dat: exit %d, log: %s", st, text);
    ck_assert_msg(st > 0, "nsqd did not fail (exit %d)", st);
    snprintf(want, sizeof(want), "failed to parse metadata in %s - ", dat);
    ck_assert_msg(strstr(text, want) != NULL, "log lacks \"%s\"", want);
    free(text);
    unlink(log);
    harness_rmdir(dir);
    free(dir);
}
END_TEST

START_TEST(readonly_data_path_fatal)
{
    char *dir = mount_tmpfs("size=64k,ro");
    char log[4200];
    char *tmp = harness_tmpdir();
    snprintf(log, sizeof(log), "%s/nsqd.log", tmp);
    int st = run_nsqd_to_exit(dir, log);
    char *text = itest_read_file(log, NULL);
    ck_assert_ptr_nonnull(text);
    fprintf(stderr, "read-only data path: exit %d, log: %s", st, text);
    ck_assert_msg(st > 0, "nsqd did not fail on a read-only data path (exit %d)", st);
    ck_assert_msg(strstr(text, "FATAL") != NULL && strcasestr(text, "read-only") != NULL,
                  "no clear fatal message naming the cause");
    free(text);
    unmount_all();
    harness_rmdir(tmp);
    free(tmp);
    free(dir);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("reliability_disk");
    TCase *tc = tcase_create("disk");
    tcase_set_timeout(tc, 60);
    tcase_add_unchecked_fixture(tc, mount_point_setup, mount_point_teardown);
    tcase_add_test(tc, disk_full_recovers);
    tcase_add_test(tc, corrupt_segment);
    tcase_add_test(tc, truncated_segment);
    tcase_add_test(tc, corrupt_queue_meta);
    tcase_add_test(tc, invalid_metadata_fatal);
    tcase_add_test(tc, readonly_data_path_fatal);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
