/*
 * test_nsqd_nsqjs: a client library written independently of this project (nsqjs, from the npm
 * registry, version pinned in tests/integration/nsqjs/package.json) publishes and consumes through
 * our nsqd, plain and with snappy and deflate compression, and discovers nsqd through our
 * nsqlookupd.
 *
 * This driver starts nsqd through the harness and runs tests/integration/nsqjs/run.sh, which
 * installs the package with npm into a work directory beside this executable and runs the Node
 * script. A failed install fails the test: it is never skipped.
 */
#include <check.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "nsqd_itest.h"

#define NSQJS_DIR       NSQ_SOURCE_DIR "/tests/integration/nsqjs"
#define NSQJS_COUNT     "500"
#define NSQJS_WORK_NAME "/nsqjs-work"

/* <directory of this executable>/nsqjs-work */
static void work_dir(char *out, size_t len)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    char *slash;
    ck_assert_int_gt(n, 0);
    exe[n] = '\0';
    slash = strrchr(exe, '/');
    ck_assert_ptr_nonnull(slash);
    *slash = '\0';
    ck_assert_int_lt(strlen(exe) + sizeof(NSQJS_WORK_NAME), len);
    strcpy(out, exe);
    strcat(out, NSQJS_WORK_NAME);
}

/* Runs the script against nsqd at tcp/http; lookupd_http > 0 makes the reader discover nsqd
   through that nsqlookupd. */
static void run_script(const char *mode, int tcp, int http, int lookupd_http,
                       struct harness_proc *nsqd)
{
    char work[PATH_MAX], port[16], hport[16], lport[16];
    pid_t pid;
    int status = 0;

    work_dir(work, sizeof(work));
    snprintf(port, sizeof(port), "%d", tcp);
    snprintf(hport, sizeof(hport), "%d", http);
    snprintf(lport, sizeof(lport), "%d", lookupd_http);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        execlp("sh", "sh", NSQJS_DIR "/run.sh", work, "127.0.0.1", port, NSQJS_COUNT, mode, hport,
               lookupd_http > 0 ? lport : (char *)NULL, (char *)NULL);
        _exit(127);
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "nsqjs %s failed (status %d); nsqd log: %s", mode, status,
                  harness_log_path(nsqd));
}

static void run_mode(const char *mode)
{
    char *dir = harness_tmpdir();
    struct harness_proc *p = itest_nsqd_start(dir, NULL);

    ck_assert_ptr_nonnull(p);
    run_script(mode, harness_port(p, "TCP"), harness_port(p, "HTTP"), 0, p);
    ck_assert_int_eq(harness_stop(p, SIGTERM), 0);
    harness_rmdir(dir);
    free(dir);
}

/* The same against an nsqd with TLS: a self-signed certificate made here with openssl. */
static void run_mode_tls(const char *mode)
{
    char *dir = harness_tmpdir();
    char cmd[PATH_MAX * 3], cert[PATH_MAX + 16], key[PATH_MAX + 16];
    const char *extra[] = {cert, key, NULL};
    struct harness_proc *p;

    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 "
             "-keyout %s/key.pem -out %s/cert.pem >/dev/null 2>&1",
             dir, dir);
    ck_assert_msg(system(cmd) == 0, "openssl could not make a certificate");
    snprintf(cert, sizeof(cert), "--tls-cert=%s/cert.pem", dir);
    snprintf(key, sizeof(key), "--tls-key=%s/key.pem", dir);
    p = itest_nsqd_start(dir, extra);
    ck_assert_ptr_nonnull(p);
    run_script(mode, harness_port(p, "TCP"), harness_port(p, "HTTP"), 0, p);
    ck_assert_int_eq(harness_stop(p, SIGTERM), 0);
    harness_rmdir(dir);
    free(dir);
}

START_TEST(nsqjs_tls)
{
    run_mode_tls("tls");
}
END_TEST

START_TEST(nsqjs_tls_snappy)
{
    run_mode_tls("tls-snappy");
}
END_TEST

START_TEST(nsqjs_tls_deflate)
{
    run_mode_tls("tls-deflate");
}
END_TEST

START_TEST(nsqjs_plain)
{
    run_mode("plain");
}
END_TEST

START_TEST(nsqjs_snappy)
{
    run_mode("snappy");
}
END_TEST

START_TEST(nsqjs_deflate)
{
    run_mode("deflate");
}
END_TEST

START_TEST(nsqjs_lookupd_discovery)
{
    const char *largs[] = {"--tcp-address=127.0.0.1:0", "--http-address=127.0.0.1:0",
                           "--broadcast-address=127.0.0.1", NULL};
    struct harness_proc *l = harness_start(NSQLOOKUPD_BIN, largs, 2);
    char *dir = harness_tmpdir(), arg[64];
    const char *extra[] = {arg, "--broadcast-address=127.0.0.1", NULL};
    struct harness_proc *p;

    ck_assert_ptr_nonnull(l);
    snprintf(arg, sizeof(arg), "--lookupd-tcp-address=127.0.0.1:%d", harness_port(l, "TCP"));
    p = itest_nsqd_start(dir, extra);
    ck_assert_ptr_nonnull(p);
    run_script("plain", harness_port(p, "TCP"), harness_port(p, "HTTP"), harness_port(l, "HTTP"),
               p);
    ck_assert_int_eq(harness_stop(p, SIGTERM), 0);
    ck_assert_int_eq(harness_stop(l, SIGTERM), 0);
    harness_rmdir(dir);
    free(dir);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("nsqd_nsqjs");
    TCase *tc = tcase_create("nsqjs");
    /* The first run includes the npm install. */
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, nsqjs_plain);
    tcase_add_test(tc, nsqjs_snappy);
    tcase_add_test(tc, nsqjs_deflate);
    tcase_add_test(tc, nsqjs_lookupd_discovery);
    tcase_add_test(tc, nsqjs_tls);
    tcase_add_test(tc, nsqjs_tls_snappy);
    tcase_add_test(tc, nsqjs_tls_deflate);
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
