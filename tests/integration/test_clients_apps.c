/*
 * test_clients_apps: the command-line utilities round-trip real data through real nsqd processes
 * (to_nsq → nsq_tail, nsq_to_nsq between two nsqds, nsq_to_file, nsq_to_http) and report
 * invalid flags with the upstream wording.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include "harness.h"
#include "nsq.h"

#define BIN(name) NSQ_CLIENTS_BIN_DIR "/" name
/* every utility run is bounded: `timeout` kills a hung one */
#define RUN_LIMIT "timeout 30 "

struct nsqd {
    struct harness_proc *p;
    char *dir;
    char tcp[64];
    char http[64];
};

static void nsqd_start(struct nsqd *d)
{
    char data[512];
    d->dir = harness_tmpdir();
    snprintf(data, sizeof(data), "--data-path=%s", d->dir);
    const char *args[] = {"--tcp-address=127.0.0.1:0", "--http-address=127.0.0.1:0", data, NULL};
    d->p = harness_start(NSQD_BIN, args, 2);
    ck_assert_ptr_nonnull(d->p);
    snprintf(d->tcp, sizeof(d->tcp), "127.0.0.1:%d", harness_port(d->p, "TCP"));
    snprintf(d->http, sizeof(d->http), "127.0.0.1:%d", harness_port(d->p, "HTTP"));
}

static void nsqd_stop(struct nsqd *d)
{
    ck_assert_int_eq(harness_stop(d->p, 0), 0);
    harness_rmdir(d->dir);
    free(d->dir);
}

/* Runs a shell command, feeding `input` (may be NULL) or capturing stdout into *out (may be
   NULL). Returns the exit status. */
static int run(const char *cmd, const char *input, char **out)
{
    FILE *f = popen(cmd, input ? "w" : "r");
    ck_assert_ptr_nonnull(f);
    if (input) {
        fputs(input, f);
    } else if (out) {
        size_t cap = 4096, len = 0;
        char *buf = malloc(cap);
        size_t n;
        while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
            len += n;
            if (cap - len < 2)
                buf = realloc(buf, cap *= 2);
        }
        buf[len] = '\0';
        *out = buf;
    } else {
        char sink[512];
        while (fread(sink, 1, sizeof(sink), f) > 0)
            ;
    }
    int st = pclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void publish(const char *addr, const char *topic, const char *const *bodies)
{
    struct nsq_producer *p = nsq_producer_new(NULL, addr, NULL);
    for (int i = 0; bodies[i]; i++)
        ck_assert_int_eq(nsq_producer_publish(p, topic, bodies[i], strlen(bodies[i])), 0);
    nsq_producer_free(p);
}

START_TEST(test_to_nsq_and_nsq_tail)
{
    struct nsqd d;
    char cmd[1024], *out = NULL;
    nsqd_start(&d);
    /* a channel must exist before publishing for the tail to see the messages: create it with a
       first tail that exits at once after one message */
    snprintf(cmd, sizeof(cmd), RUN_LIMIT BIN("to_nsq") " --topic=apps --nsqd-tcp-address=%s",
             d.tcp);
    ck_assert_int_eq(run(cmd, "first\nsecond\n\nthird", NULL), 0);
    snprintf(cmd, sizeof(cmd),
             RUN_LIMIT BIN("to_nsq") " --topic=apps --delimiter=, "
                                     "--nsqd-tcp-address=%s",
             d.tcp);
    ck_assert_int_eq(run(cmd, "x1,x2,", NULL), 0);
    /* the topic holds the messages until the first channel appears */
    snprintf(cmd, sizeof(cmd),
             RUN_LIMIT BIN("nsq_tail") " --topic=apps --channel=t --nsqd-tcp-address=%s -n 5 "
                                       "--print-topic",
             d.tcp);
    ck_assert_int_eq(run(cmd, NULL, &out), 0);
    /* "third" lost its last byte: upstream strips the final byte of a chunk without delimiter */
    ck_assert_str_eq(out, "apps | first\napps | second\napps | thir\napps | x1\napps | x2\n");
    free(out);
    nsqd_stop(&d);
}
END_TEST

START_TEST(test_flag_errors)
{
    char *out = NULL;
    ck_assert_int_eq(run(BIN("nsq_tail") " 2>&1", NULL, &out), 1);
    ck_assert_ptr_nonnull(strstr(out, "--topic required"));
    free(out);
    ck_assert_int_eq(run(BIN("nsq_tail") " --topic=a 2>&1", NULL, &out), 1);
    ck_assert_ptr_nonnull(strstr(out, "--nsqd-tcp-address or --lookupd-http-address required"));
    free(out);
    ck_assert_int_eq(run(BIN("nsq_tail") " --topic=a --nsqd-tcp-address=127.0.0.1:1 "
                                         "--lookupd-http-address=127.0.0.1:2 2>&1",
                         NULL, &out),
                     1);
    ck_assert_ptr_nonnull(strstr(out, "use --nsqd-tcp-address or --lookupd-http-address not both"));
    free(out);
    ck_assert_int_eq(run(BIN("to_nsq") " --topic=a 2>&1", NULL, &out), 1);
    ck_assert_ptr_nonnull(strstr(out, "--nsqd-tcp-address required"));
    free(out);
    ck_assert_int_eq(run(BIN("to_nsq") " --topic=a --delimiter=ab "
                                       "--nsqd-tcp-address=127.0.0.1:1 2>&1",
                         NULL, &out),
                     1);
    ck_assert_ptr_nonnull(strstr(out, "--delimiter must be a single byte"));
    free(out);
    ck_assert_int_eq(run(BIN("nsq_stat") " 2>&1", NULL, &out), 1);
    ck_assert_ptr_nonnull(strstr(out, "--topic and --channel are required"));
    free(out);
    ck_assert_int_eq(run(BIN("nsq_tail") " --no-such-flag 2>&1", NULL, &out), 2);
    ck_assert_ptr_nonnull(strstr(out, "flag provided but not defined: -no-such-flag"));
    free(out);
}
END_TEST

START_TEST(test_nsq_to_nsq)
{
    struct nsqd src, dst;
    char cmd[1024], *out = NULL;
    nsqd_start(&src);
    nsqd_start(&dst);
    publish(src.tcp, "relay",
            (const char *const[]){"{\"a\":1,\"b\":\"x\",\"c\":true}", "{\"b\":\"y\"}", "not json",
                                  "{\"a\":2,\"b\":\"z\"}", NULL});
    /* relay only JSON with field a, keeping fields a and b */
    snprintf(cmd, sizeof(cmd),
             "timeout --preserve-status -s INT 4 " BIN(
                     "nsq_to_nsq") " --topic=relay --nsqd-tcp-address=%s "
                                   "--destination-nsqd-tcp-address=%s "
                                   "--destination-topic=out "
                                   "--require-json-field=a "
                                   "--whitelist-json-field=b "
                                   "--whitelist-json-field=a",
             src.tcp, dst.tcp);
    ck_assert_int_eq(run(cmd, NULL, NULL), 0);
    snprintf(cmd, sizeof(cmd), RUN_LIMIT BIN("nsq_tail") " --topic=out --nsqd-tcp-address=%s -n 2",
             dst.tcp);
    ck_assert_int_eq(run(cmd, NULL, &out), 0);
    ck_assert_str_eq(out, "{\"a\":1,\"b\":\"x\"}\n{\"a\":2,\"b\":\"z\"}\n");
    free(out);
    nsqd_stop(&src);
    nsqd_stop(&dst);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("clients_apps");
    TCase *tc = tcase_create("apps");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_flag_errors);
    tcase_add_test(tc, test_to_nsq_and_nsq_tail);
    tcase_add_test(tc, test_nsq_to_nsq);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
