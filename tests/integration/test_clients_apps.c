/*
 * test_clients_apps: the command-line utilities round-trip real data through real nsqd processes
 * (to_nsq → nsq_tail, nsq_to_nsq between two nsqds, nsq_to_file, nsq_to_http), to_nsq --ttl
 * publishes messages that expire, and invalid flags are reported with the upstream wording.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/thread.h>

#include "harness.h"
#include "nsq.h"
#include "nsqd_itest.h"

#define BIN(name) NSQ_CLIENTS_BIN_DIR "/" name
/* every utility run is bounded: `timeout` kills a hung one */
#define RUN_LIMIT "timeout 30 "
/* to_nsq --ttl: a TTL that passes at once and the wall-clock margin waited beyond it */
#define SHORT_TTL_MS  1
#define TTL_MARGIN_MS 50

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

/* Starts `cmd` through the shell in the background (prefix it with exec); returns its pid. */
static pid_t spawn(const char *cmd)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Sends sig, waits for the exit (SIGKILL after 30 s) and returns the exit status, or 128+signal. */
static int stop_proc(pid_t pid, int sig)
{
    int st;
    kill(pid, sig);
    for (int i = 0; i < 3000; i++) {
        if (waitpid(pid, &st, WNOHANG) == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return -1;
}

struct shell_wait {
    const char *cmd;
    const char *want;
};

static bool shell_prints(void *arg)
{
    struct shell_wait *w = arg;
    char *out = NULL;
    run(w->cmd, NULL, &out);
    bool eq = !strcmp(out, w->want);
    free(out);
    return eq;
}

/* Polls `cmd` until it prints `want`. */
static bool wait_output(const char *cmd, const char *want)
{
    struct shell_wait w = {cmd, want};
    return harness_wait_until(shell_prints, &w, 30000);
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

/* to_nsq --ttl: messages whose TTL passed are never delivered; a TTL not yet passed and no TTL
   (the default) deliver. */
START_TEST(test_to_nsq_ttl)
{
    struct nsqd d;
    char cmd[1024], *out = NULL;
    nsqd_start(&d);
    int http = harness_port(d.p, "HTTP");
    ck_assert_int_eq(itest_http("POST", http, "/topic/create?topic=appttl", NULL, NULL), 200);
    ck_assert_int_eq(
            itest_http("POST", http, "/channel/create?topic=appttl&channel=ch", NULL, NULL), 200);
    int64_t t0 = harness_now_ms();
    snprintf(cmd, sizeof(cmd),
             RUN_LIMIT BIN("to_nsq") " --topic=appttl --ttl=%dms --nsqd-tcp-address=%s",
             SHORT_TTL_MS, d.tcp);
    ck_assert_int_eq(run(cmd, "gone1\ngone2\n", NULL), 0);
    while (harness_now_ms() < t0 + SHORT_TTL_MS + TTL_MARGIN_MS)
        usleep(5000);
    snprintf(cmd, sizeof(cmd),
             RUN_LIMIT BIN("to_nsq") " --topic=appttl --ttl=10m --nsqd-tcp-address=%s", d.tcp);
    ck_assert_int_eq(run(cmd, "live1\n", NULL), 0);
    snprintf(cmd, sizeof(cmd), RUN_LIMIT BIN("to_nsq") " --topic=appttl --nsqd-tcp-address=%s",
             d.tcp);
    ck_assert_int_eq(run(cmd, "live2\n", NULL), 0);
    snprintf(cmd, sizeof(cmd),
             RUN_LIMIT BIN("nsq_tail") " --topic=appttl --channel=ch --nsqd-tcp-address=%s -n 2",
             d.tcp);
    ck_assert_int_eq(run(cmd, NULL, &out), 0);
    ck_assert_str_eq(out, "live1\nlive2\n");
    free(out);
    struct itest_expired_wait w = {http, "appttl", "ch", 2};
    ck_assert(harness_wait_until(itest_expired_reached, &w, 30000));
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
    ck_assert_int_eq(run(BIN("to_nsq") " --topic=a --ttl=-1s --nsqd-tcp-address=127.0.0.1:1 2>&1",
                         NULL, &out),
                     1);
    ck_assert_ptr_nonnull(strstr(out, "--ttl must be between 0 and 4294967295ms"));
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
             "exec " BIN("nsq_to_nsq") " --topic=relay --nsqd-tcp-address=%s "
                                       "--destination-nsqd-tcp-address=%s "
                                       "--destination-topic=out "
                                       "--require-json-field=a "
                                       "--whitelist-json-field=b "
                                       "--whitelist-json-field=a",
             src.tcp, dst.tcp);
    pid_t relay = spawn(cmd);
    snprintf(cmd, sizeof(cmd), RUN_LIMIT BIN("nsq_tail") " --topic=out --nsqd-tcp-address=%s -n 2",
             dst.tcp);
    ck_assert_int_eq(run(cmd, NULL, &out), 0);
    ck_assert_int_eq(stop_proc(relay, SIGINT), 0);
    ck_assert_str_eq(out, "{\"a\":1,\"b\":\"x\"}\n{\"a\":2,\"b\":\"z\"}\n");
    free(out);
    nsqd_stop(&src);
    nsqd_stop(&dst);
}
END_TEST

/* ---- nsq_to_file ---- */

START_TEST(test_nsq_to_file)
{
    struct nsqd d;
    char cmd[2048], *out = NULL;
    nsqd_start(&d);
    char *dir = harness_tmpdir();
    char bodies[60][16];
    const char *list[61];
    for (int i = 0; i < 60; i++) {
        snprintf(bodies[i], sizeof(bodies[i]), "line-%02d", i);
        list[i] = bodies[i];
    }
    list[60] = NULL;
    publish(d.tcp, "files", list);
    /* gzip + separate work dir: files are moved to the output dir when closed; rotation every
       25 KB is not reached, so one file holds everything */
    snprintf(cmd, sizeof(cmd),
             "exec " BIN("nsq_to_file") " --topic=files "
                                        "--nsqd-tcp-address=%s "
                                        "--output-dir=%s/out "
                                        "--work-dir=%s/work --gzip "
                                        "--max-in-flight=7 "
                                        "--filename-format="
                                        "'<TOPIC><REV>.log' "
                                        "2>/dev/null",
             d.tcp, dir, dir);
    pid_t pid = spawn(cmd);
    snprintf(cmd, sizeof(cmd), "zcat %s/work/*.gz 2>/dev/null | wc -l", dir);
    ck_assert(wait_output(cmd, "60\n"));
    ck_assert_int_eq(stop_proc(pid, SIGTERM), 0);
    snprintf(cmd, sizeof(cmd), "ls %s/work | wc -l; ls %s/out; zcat %s/out/*.gz | sort | md5sum",
             dir, dir, dir);
    ck_assert_int_eq(run(cmd, NULL, &out), 0);
    char expect[256];
    FILE *f = popen("for i in $(seq -w 0 59); do echo line-$i; done | md5sum", "r");
    ck_assert_ptr_nonnull(fgets(expect, sizeof(expect), f));
    pclose(f);
    char want[512];
    snprintf(want, sizeof(want), "0\nfiles-000000.log.gz\n%s", expect);
    ck_assert_str_eq(out, want);
    free(out);
    harness_rmdir(dir);
    free(dir);
    nsqd_stop(&d);
}
END_TEST

START_TEST(test_nsq_to_file_rotation)
{
    struct nsqd d;
    char cmd[2048], *out = NULL;
    nsqd_start(&d);
    char *dir = harness_tmpdir();
    char bodies[60][16];
    const char *list[61];
    for (int i = 0; i < 60; i++) {
        snprintf(bodies[i], sizeof(bodies[i]), "line-%02d", i);
        list[i] = bodies[i];
    }
    list[60] = NULL;
    publish(d.tcp, "rot", list);
    /* 8 bytes a line: a file passes 100 bytes after 13 lines, so 60 lines make 5 files */
    snprintf(cmd, sizeof(cmd),
             "exec " BIN("nsq_to_file") " --topic=rot "
                                        "--nsqd-tcp-address=%s "
                                        "--output-dir=%s "
                                        "--rotate-size=100 "
                                        "--host-identifier=h "
                                        "--datetime-format=D "
                                        "2>/dev/null",
             d.tcp, dir);
    pid_t pid = spawn(cmd);
    snprintf(cmd, sizeof(cmd), "cat %s/* 2>/dev/null | wc -l", dir);
    ck_assert(wait_output(cmd, "60\n"));
    ck_assert_int_eq(stop_proc(pid, SIGINT), 0);
    snprintf(cmd, sizeof(cmd), "cd %s && ls && wc -l < rot.h-000004.D.log && cat * | sort | md5sum",
             dir);
    ck_assert_int_eq(run(cmd, NULL, &out), 0);
    char expect[256], want[1024];
    FILE *f = popen("for i in $(seq -w 0 59); do echo line-$i; done | md5sum", "r");
    ck_assert_ptr_nonnull(fgets(expect, sizeof(expect), f));
    pclose(f);
    snprintf(want, sizeof(want),
             "rot.h-000000.D.log\nrot.h-000001.D.log\nrot.h-000002.D.log\nrot.h-000003.D.log\n"
             "rot.h-000004.D.log\n8\n%s",
             expect);
    ck_assert_str_eq(out, want);
    free(out);
    harness_rmdir(dir);
    free(dir);
    nsqd_stop(&d);
}
END_TEST

/* SIGHUP closes the current files (moved to the output dir); later messages go to new ones. */
START_TEST(test_nsq_to_file_sighup)
{
    struct nsqd d;
    char cmd[2048], *out = NULL;
    nsqd_start(&d);
    char *dir = harness_tmpdir();
    publish(d.tcp, "hup", (const char *const[]){"one", "two", NULL});
    snprintf(cmd, sizeof(cmd),
             "exec " BIN("nsq_to_file") " --topic=hup --nsqd-tcp-address=%s --output-dir=%s/out "
                                        "--work-dir=%s/work --filename-format='<TOPIC><REV>.log' "
                                        "2>/dev/null",
             d.tcp, dir, dir);
    pid_t pid = spawn(cmd);
    snprintf(cmd, sizeof(cmd), "cat %s/work/* 2>/dev/null", dir);
    ck_assert(wait_output(cmd, "one\ntwo\n"));
    kill(pid, SIGHUP);
    snprintf(cmd, sizeof(cmd), "ls %s/out 2>/dev/null", dir);
    ck_assert(wait_output(cmd, "hup-000000.log\n"));
    publish(d.tcp, "hup", (const char *const[]){"three", NULL});
    snprintf(cmd, sizeof(cmd), "cat %s/work/* 2>/dev/null", dir);
    ck_assert(wait_output(cmd, "three\n"));
    ck_assert_int_eq(stop_proc(pid, SIGTERM), 0);
    snprintf(cmd, sizeof(cmd), "cd %s/out && ls && cat hup-000001.log", dir);
    ck_assert_int_eq(run(cmd, NULL, &out), 0);
    ck_assert_str_eq(out, "hup-000000.log\nhup-000001.log\nthree\n");
    free(out);
    harness_rmdir(dir);
    free(dir);
    nsqd_stop(&d);
}
END_TEST

static bool lookupd_lists_topics(void *arg)
{
    struct harness_response r;
    if (harness_http("GET", *(int *)arg, "/topics", NULL, 0, &r) != 0)
        return false;
    bool ok = r.status == 200 && strstr(r.body, "keep_a") && strstr(r.body, "skip_b");
    harness_response_free(&r);
    return ok;
}

/* Without --topic, topics are discovered through nsqlookupd and filtered by --topic-pattern. */
START_TEST(test_nsq_to_file_discovery)
{
    const char *largs[] = {"--tcp-address=127.0.0.1:0", "--http-address=127.0.0.1:0",
                           "--broadcast-address=127.0.0.1", NULL};
    struct harness_proc *l = harness_start(NSQLOOKUPD_BIN, largs, 2);
    ck_assert_ptr_nonnull(l);
    char laddr[64], data[512], cmd[2048], *out = NULL;
    snprintf(laddr, sizeof(laddr), "--lookupd-tcp-address=127.0.0.1:%d", harness_port(l, "TCP"));
    struct nsqd d;
    d.dir = harness_tmpdir();
    snprintf(data, sizeof(data), "--data-path=%s", d.dir);
    const char *nargs[] = {"--tcp-address=127.0.0.1:0",
                           "--http-address=127.0.0.1:0",
                           data,
                           laddr,
                           "--broadcast-address=127.0.0.1",
                           NULL};
    d.p = harness_start(NSQD_BIN, nargs, 2);
    ck_assert_ptr_nonnull(d.p);
    snprintf(d.tcp, sizeof(d.tcp), "127.0.0.1:%d", harness_port(d.p, "TCP"));
    publish(d.tcp, "keep_a", (const char *const[]){"a1", "a2", NULL});
    publish(d.tcp, "skip_b", (const char *const[]){"b1", NULL});
    int lport = harness_port(l, "HTTP");
    ck_assert(harness_wait_until(lookupd_lists_topics, &lport, 10000));
    char *dir = harness_tmpdir();
    snprintf(cmd, sizeof(cmd),
             "exec " BIN("nsq_to_file") " --topic-pattern='^keep_' "
                                        "--lookupd-http-address="
                                        "127.0.0.1:%d "
                                        "--output-dir=%s "
                                        "--filename-format="
                                        "'<TOPIC>.log' "
                                        "2>/dev/null",
             harness_port(l, "HTTP"), dir);
    pid_t pid = spawn(cmd);
    snprintf(cmd, sizeof(cmd), "cat %s/keep_a.log 2>/dev/null", dir);
    ck_assert(wait_output(cmd, "a1\na2\n"));
    ck_assert_int_eq(stop_proc(pid, SIGINT), 0);
    snprintf(cmd, sizeof(cmd), "cd %s && ls && cat keep_a.log", dir);
    ck_assert_int_eq(run(cmd, NULL, &out), 0);
    ck_assert_str_eq(out, "keep_a.log\na1\na2\n");
    free(out);
    /* nsq_stat finds the producer through the same lookupd */
    snprintf(cmd, sizeof(cmd),
             RUN_LIMIT BIN("nsq_stat") " --topic=keep_a --channel=nsq_to_file "
                                       "--lookupd-http-address=127.0.0.1:%d --interval=100ms "
                                       "--count=1 | tail -n 1",
             lport);
    ck_assert_int_eq(run(cmd, NULL, &out), 0);
    ck_assert_str_eq(out, "      0       0 |       0       0       0     0     0 |       0       "
                          "0            2       0\n");
    free(out);
    harness_rmdir(dir);
    free(dir);
    nsqd_stop(&d);
    ck_assert_int_eq(harness_stop(l, 0), 0);
}
END_TEST

START_TEST(test_nsq_to_file_flag_errors)
{
    char *out = NULL;
    ck_assert_int_eq(run(BIN("nsq_to_file") " --nsqd-tcp-address=127.0.0.1:1 2>&1", NULL, &out), 1);
    ck_assert_ptr_nonnull(strstr(out, "--topic or --topic-pattern required"));
    free(out);
    ck_assert_int_eq(run(BIN("nsq_to_file") " --topic=a --nsqd-tcp-address=127.0.0.1:1 --gzip "
                                            "--filename-format=x.log 2>&1",
                         NULL, &out),
                     1);
    ck_assert_ptr_nonnull(
            strstr(out, "missing <REV> in --filename-format when gzip, rotation, or work dir "
                        "enabled"));
    free(out);
    ck_assert_int_eq(run(BIN("nsq_to_file") " --topic=a --nsqd-tcp-address=127.0.0.1:1 "
                                            "--gzip-level=10 2>&1",
                         NULL, &out),
                     1);
    ck_assert_ptr_nonnull(strstr(out, "invalid --gzip-level value (10), should be 1-9"));
    free(out);
}
END_TEST

/* ---- nsq_to_http: a small HTTP endpoint in a thread ---- */

struct endpoint {
    pthread_t thread;
    struct event_base *base;
    struct evhttp *http;
    int port;
    pthread_mutex_t lock;
    int requests;
    char got[64][128]; /* "<method> <uri> <body> <content-type>" */
    int ngot;
};

static void endpoint_cb(struct evhttp_request *req, void *arg)
{
    struct endpoint *e = arg;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    char body[64] = "";
    evbuffer_copyout(in, body, len < sizeof(body) - 1 ? len : sizeof(body) - 1);
    const char *ct = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
    const char *x = evhttp_find_header(evhttp_request_get_input_headers(req), "X-Test");
    pthread_mutex_lock(&e->lock);
    int n = ++e->requests;
    /* the first request fails: the message must come back (requeued) and be sent again */
    if (n > 1 && e->ngot < 64)
        snprintf(e->got[e->ngot++], sizeof(e->got[0]), "%s %s %s %s %s",
                 evhttp_request_get_command(req) == EVHTTP_REQ_POST ? "POST" : "GET",
                 evhttp_request_get_uri(req), body, ct ? ct : "-", x ? x : "-");
    pthread_mutex_unlock(&e->lock);
    evhttp_send_reply(req, n == 1 ? 500 : 200, n == 1 ? "ERR" : "OK", NULL);
}

static void *endpoint_main(void *arg)
{
    event_base_dispatch(((struct endpoint *)arg)->base);
    return NULL;
}

static void endpoint_start(struct endpoint *e)
{
    memset(e, 0, sizeof(*e));
    pthread_mutex_init(&e->lock, NULL);
    e->base = event_base_new();
    e->http = evhttp_new(e->base);
    struct evhttp_bound_socket *s = evhttp_bind_socket_with_handle(e->http, "127.0.0.1", 0);
    ck_assert_ptr_nonnull(s);
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    getsockname(evhttp_bound_socket_get_fd(s), (struct sockaddr *)&sa, &sl);
    e->port = ntohs(sa.sin_port);
    evhttp_set_gencb(e->http, endpoint_cb, e);
    pthread_create(&e->thread, NULL, endpoint_main, e);
}

static void endpoint_stop(struct endpoint *e)
{
    event_base_loopbreak(e->base);
    pthread_join(e->thread, NULL);
    evhttp_free(e->http);
    event_base_free(e->base);
}

static bool endpoint_has(struct endpoint *e, const char *line)
{
    bool found = false;
    pthread_mutex_lock(&e->lock);
    for (int i = 0; i < e->ngot; i++)
        found = found || !strcmp(e->got[i], line);
    pthread_mutex_unlock(&e->lock);
    return found;
}

struct endpoint_wait {
    struct endpoint *e;
    const char *lines[2];
};

static bool endpoint_got(void *arg)
{
    struct endpoint_wait *w = arg;
    return endpoint_has(w->e, w->lines[0]) && endpoint_has(w->e, w->lines[1]);
}

START_TEST(test_nsq_to_http)
{
    struct nsqd d;
    struct endpoint e;
    char cmd[2048];
    evthread_use_pthreads();
    nsqd_start(&d);
    endpoint_start(&e);
    publish(d.tcp, "web", (const char *const[]){"a b", "c&d", NULL});
    snprintf(cmd, sizeof(cmd),
             "exec " BIN("nsq_to_http") " --topic=web "
                                        "--nsqd-tcp-address=%s "
                                        "--get='http://127.0.0.1:%d/"
                                        "x?m=%%s' "
                                        "--header='X-Test: yes' "
                                        "--consumer-opt="
                                        "default_requeue_delay,0s "
                                        "--consumer-opt="
                                        "backoff_multiplier,10ms "
                                        "2>/dev/null",
             d.tcp, e.port);
    pid_t pid = spawn(cmd);
    struct endpoint_wait w1 = {&e, {"GET /x?m=a+b  - yes", "GET /x?m=c%26d  - yes"}};
    ck_assert(harness_wait_until(endpoint_got, &w1, 30000));
    ck_assert_int_eq(stop_proc(pid, SIGINT), 0);

    publish(d.tcp, "web2", (const char *const[]){"payload", NULL});
    snprintf(cmd, sizeof(cmd),
             "exec " BIN("nsq_to_http") " --topic=web2 "
                                        "--nsqd-tcp-address=%s "
                                        "--post=http://127.0.0.1:%d/p "
                                        "--content-type=text/plain "
                                        "2>/dev/null",
             d.tcp, e.port);
    pid = spawn(cmd);
    struct endpoint_wait w2 = {&e,
                               {"POST /p payload text/plain -", "POST /p payload text/plain -"}};
    ck_assert(harness_wait_until(endpoint_got, &w2, 30000));
    ck_assert_int_eq(stop_proc(pid, SIGINT), 0);
    endpoint_stop(&e);
    nsqd_stop(&d);
}
END_TEST

struct topic_count {
    int http_port;
    const char *topic;
    int want;
};

/* Whether nsqd's topic holds `want` messages. */
static bool topic_has(void *arg)
{
    struct topic_count *t = arg;
    struct harness_response r;
    char path[256], want[64];
    snprintf(path, sizeof(path), "/stats?format=json&topic=%s", t->topic);
    snprintf(want, sizeof(want), "\"message_count\":%d,", t->want);
    if (harness_http("GET", t->http_port, path, NULL, 0, &r) < 0)
        return false;
    bool ok = r.status == 200 && strstr(r.body, want) != NULL;
    harness_response_free(&r);
    return ok;
}

static int count_lines_with(const char *file, const char *needle)
{
    char line[1024];
    int n = 0;
    FILE *f = fopen(file, "r");
    if (!f)
        return 0;
    while (fgets(line, sizeof(line), f))
        n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

struct log_wait {
    const char *file;
    const char *needle;
};

static bool log_has(void *arg)
{
    struct log_wait *w = arg;
    return count_lines_with(w->file, w->needle) > 0;
}

/* hostpool and epsilon-greedy: an endpoint that refuses connections fails one request, is marked
   dead and gets no more while the other one works; every message arrives. */
START_TEST(test_nsq_to_http_modes)
{
    static const char *const modes[] = {"hostpool", "epsilon-greedy", "round-robin"};
    struct nsqd d;
    char cmd[2048], log[700], dest[64];
    nsqd_start(&d);
    int http_port = harness_port(d.p, "HTTP");
    for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
        const char *bodies[21];
        char store[20][16];
        char src[64];
        snprintf(src, sizeof(src), "src%zu", m);
        for (int i = 0; i < 20; i++) {
            snprintf(store[i], sizeof(store[i]), "m%d", i);
            bodies[i] = store[i];
        }
        bodies[20] = NULL;
        publish(d.tcp, src, bodies);
        snprintf(dest, sizeof(dest), "dest%zu", m);
        snprintf(log, sizeof(log), "%s/to_http_%zu.log", d.dir, m);
        snprintf(cmd, sizeof(cmd),
                 "exec " BIN("nsq_to_http") " --topic=%s --nsqd-tcp-address=%s --mode=%s -n 1 "
                                            "--post='http://127.0.0.1:1/pub?topic=%s' "
                                            "--post='http://127.0.0.1:%d/pub?topic=%s' "
                                            "--status-every=0 "
                                            "--consumer-opt=default_requeue_delay,0s "
                                            "--consumer-opt=backoff_multiplier,10ms "
                                            "--consumer-opt=max_attempts,0 2>%s",
                 src, d.tcp, modes[m], dest, http_port, dest, log);
        pid_t pid = spawn(cmd);
        struct topic_count tc = {http_port, dest, 20};
        ck_assert(harness_wait_until(topic_has, &tc, 30000));
        ck_assert_int_eq(stop_proc(pid, SIGINT), 0);
        int errors = count_lines_with(log, "ERROR");
        if (m < 2)
            ck_assert_int_eq(errors, 1);
        else
            ck_assert_int_ge(errors, 5); /* round-robin keeps trying the dead endpoint */
    }
    nsqd_stop(&d);
}
END_TEST

/* https:// endpoints: nsqd's HTTPS /pub, its certificate trusted through SSL_CERT_FILE. */
START_TEST(test_nsq_to_http_https)
{
    char *dir = harness_tmpdir();
    char cmd[3000], cert[600], key[600], certf[700], keyf[700], data[700];
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey rsa:2048 -nodes -keyout %s -out %s -days 1 "
             "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>/dev/null",
             key, cert);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(certf, sizeof(certf), "--tls-cert=%s", cert);
    snprintf(keyf, sizeof(keyf), "--tls-key=%s", key);
    snprintf(data, sizeof(data), "--data-path=%s", dir);
    const char *args[] = {"--tcp-address=127.0.0.1:0",
                          "--http-address=127.0.0.1:0",
                          "--https-address=127.0.0.1:0",
                          data,
                          certf,
                          keyf,
                          NULL};
    struct harness_proc *p = harness_start(NSQD_BIN, args, 3);
    ck_assert_ptr_nonnull(p);
    char tcp[64];
    snprintf(tcp, sizeof(tcp), "127.0.0.1:%d", harness_port(p, "TCP"));
    int http_port = harness_port(p, "HTTP"), https_port = harness_port(p, "HTTPS");
    publish(tcp, "plain", (const char *const[]){"s1", "s2", "s3", NULL});
    snprintf(cmd, sizeof(cmd),
             "SSL_CERT_FILE=%s exec " BIN("nsq_to_http") " --topic=plain --nsqd-tcp-address=%s "
                                                         "--post='https://127.0.0.1:%d/"
                                                         "pub?topic=secure' 2>/dev/null",
             cert, tcp, https_port);
    pid_t pid = spawn(cmd);
    struct topic_count tc = {http_port, "secure", 3};
    ck_assert(harness_wait_until(topic_has, &tc, 30000));
    ck_assert_int_eq(stop_proc(pid, SIGINT), 0);

    /* without the trusted root the certificate is refused: nothing arrives */
    publish(tcp, "plain2", (const char *const[]){"x", NULL});
    snprintf(cmd, sizeof(cmd),
             "SSL_CERT_FILE=/nonexistent exec " BIN(
                     "nsq_to_http") " --topic=plain2 --nsqd-tcp-address=%s "
                                    "--post='https://127.0.0.1:%d/pub?topic=refused' "
                                    "--status-every=0 2>%s/refused.log",
             tcp, https_port, dir);
    pid = spawn(cmd);
    char logf[700];
    snprintf(logf, sizeof(logf), "%s/refused.log", dir);
    struct log_wait lw = {logf, "ERROR"};
    ck_assert(harness_wait_until(log_has, &lw, 30000));
    ck_assert_int_eq(stop_proc(pid, SIGINT), 0);
    tc.topic = "refused";
    tc.want = 1;
    ck_assert(!topic_has(&tc));
    ck_assert_int_eq(harness_stop(p, 0), 0);
    harness_rmdir(dir);
    free(dir);
}
END_TEST

/* nsq_to_nsq --mode hostpool / epsilon-greedy: a destination that refuses connections fails one
   publish, is marked dead and gets no more; every message reaches the live one. */
START_TEST(test_nsq_to_nsq_modes)
{
    static const char *const modes[] = {"hostpool", "epsilon-greedy"};
    struct nsqd d;
    char cmd[2048], log[700], src[64], dest[64];
    nsqd_start(&d);
    int http_port = harness_port(d.p, "HTTP");
    for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
        const char *bodies[21];
        char store[20][16];
        for (int i = 0; i < 20; i++) {
            snprintf(store[i], sizeof(store[i]), "r%d", i);
            bodies[i] = store[i];
        }
        bodies[20] = NULL;
        snprintf(src, sizeof(src), "rsrc%zu", m);
        snprintf(dest, sizeof(dest), "rdest%zu", m);
        publish(d.tcp, src, bodies);
        snprintf(log, sizeof(log), "%s/to_nsq_%zu.log", d.dir, m);
        snprintf(cmd, sizeof(cmd),
                 "exec " BIN("nsq_to_nsq") " --topic=%s --nsqd-tcp-address=%s --mode=%s "
                                           "--destination-topic=%s --max-in-flight=1 "
                                           "--destination-nsqd-tcp-address=127.0.0.1:1 "
                                           "--destination-nsqd-tcp-address=%s "
                                           "--status-every=0 "
                                           "--consumer-opt=default_requeue_delay,0s "
                                           "--consumer-opt=backoff_multiplier,10ms "
                                           "--consumer-opt=max_attempts,0 2>%s",
                 src, d.tcp, modes[m], dest, d.tcp, log);
        pid_t pid = spawn(cmd);
        struct topic_count tc = {http_port, dest, 20};
        ck_assert(harness_wait_until(topic_has, &tc, 30000));
        ck_assert_int_eq(stop_proc(pid, SIGINT), 0);
        ck_assert_int_le(count_lines_with(log, "publish failed"), 1);
    }
    nsqd_stop(&d);
}
END_TEST

START_TEST(test_nsq_stat)
{
    struct nsqd d;
    struct harness_response r;
    char cmd[1024], *out = NULL;
    nsqd_start(&d);
    int port = harness_port(d.p, "HTTP");
    ck_assert_int_eq(harness_http("POST", port, "/topic/create?topic=st", NULL, 0, &r), 0);
    harness_response_free(&r);
    ck_assert_int_eq(harness_http("POST", port, "/channel/create?topic=st&channel=c", NULL, 0, &r),
                     0);
    harness_response_free(&r);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(harness_http("POST", port, "/pub?topic=st", "m", 1, &r), 0);
        ck_assert_int_eq(r.status, 200);
        harness_response_free(&r);
    }
    /* the first poll is the baseline; --count=1 prints the header and one row */
    snprintf(cmd, sizeof(cmd),
             RUN_LIMIT BIN("nsq_stat") " --topic=st --channel=c --nsqd-http-address=%s "
                                       "--interval=100ms --count=1",
             d.http);
    ck_assert_int_eq(run(cmd, NULL, &out), 0);
    ck_assert_str_eq(out, "------rate------+----------------depth----------------+"
                          "--------------metadata---------------\n"
                          "ingress  egress |   total     mem    disk inflt   def |     req     "
                          "t-o         msgs clients\n"
                          "      0       0 |       4       4       0     0     0 |       0       "
                          "0            4       0\n");
    free(out);
    /* with a depth limit nsqd reports the counters: two more columns */
    ck_assert_int_eq(harness_http("POST", port,
                                  "/topic/max_depth?topic=st&max_depth=3&policy=drop_oldest", NULL,
                                  0, &r),
                     0);
    ck_assert_int_eq(r.status, 200);
    harness_response_free(&r);
    ck_assert_int_eq(harness_http("POST", port, "/pub?topic=st", "m", 1, &r), 0);
    harness_response_free(&r);
    ck_assert_int_eq(run(cmd, NULL, &out), 0);
    ck_assert_str_eq(out, "------rate------+----------------depth----------------+"
                          "--------------metadata---------------+------limits-----\n"
                          "ingress  egress |   total     mem    disk inflt   def |     req     "
                          "t-o         msgs clients | expired dropped\n"
                          "      0       0 |       3       3       0     0     0 |       0       "
                          "0            5       0 |       0       2\n");
    free(out);
    nsqd_stop(&d);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("clients_apps");
    TCase *tc = tcase_create("apps");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_flag_errors);
    tcase_add_test(tc, test_to_nsq_and_nsq_tail);
    tcase_add_test(tc, test_to_nsq_ttl);
    tcase_add_test(tc, test_nsq_to_nsq);
    tcase_add_test(tc, test_nsq_to_file);
    tcase_add_test(tc, test_nsq_to_file_rotation);
    tcase_add_test(tc, test_nsq_to_file_discovery);
    tcase_add_test(tc, test_nsq_to_file_sighup);
    tcase_add_test(tc, test_nsq_to_file_flag_errors);
    tcase_add_test(tc, test_nsq_to_http);
    tcase_add_test(tc, test_nsq_to_http_modes);
    tcase_add_test(tc, test_nsq_to_http_https);
    tcase_add_test(tc, test_nsq_to_nsq_modes);
    tcase_add_test(tc, test_nsq_stat);
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
