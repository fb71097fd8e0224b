/*
 * test_reliability_input: bad input on every port of the suite — nsqd TCP and HTTP, nsqlookupd
 * TCP and HTTP, nsqadmin HTTP.
 *
 * For each port: random bytes, connections that never send (half-open), slow writers (one byte
 * every 100 ms, bounded), and INPUT_CONNS (1000) garbage connections held open at once while the
 * daemon's VmRSS is sampled (bounded by INPUT_RSS_BOUND_KB above its baseline). Then per
 * protocol: oversize frames and bodies, invalid UTF-8 and invalid names, huge IDENTIFY values.
 * Each case expects the documented error (or a closed connection), and a normal PUB/SUB through
 * nsqd plus /ping on every daemon must keep working during and after.
 *
 * TLS: a ClientHello cut midway is sent to the plain TCP port (a client with the wrong settings),
 * and tls_handshake_cut_midway starts an nsqd with a self-signed certificate (made with the
 * openssl command) where INPUT_TLS_CONNS connections stop halfway through the handshake, both
 * after IDENTIFY tls_v1 on the TCP port and on the HTTPS port, while other clients are served.
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
#include <time.h>

#include "harness.h"
#include "nsqd_itest.h"

#define INPUT_CONNS        1000
#define INPUT_GARBAGE_MAX  4096
#define INPUT_RANDOM_CONNS 200
#define INPUT_SLOW_CONNS   20
#define INPUT_SLOW_BYTES   20 /* one byte every INPUT_SLOW_MS: 2 s per slow writer */
#define INPUT_SLOW_MS      100
#define INPUT_RSS_BOUND_KB (64 * 1024)
#define INPUT_NOFILE       4096
#define INPUT_SEED         7u
#define INPUT_BIG_LINE     (1024 * 1024)
#define INPUT_TLS_CONNS    100

enum port_kind { NSQD_TCP, NSQD_HTTP, LOOKUPD_TCP, LOOKUPD_HTTP, ADMIN_HTTP, N_PORTS };
static const char *const port_names[N_PORTS] = {"nsqd TCP", "nsqd HTTP", "nsqlookupd TCP",
                                                "nsqlookupd HTTP", "nsqadmin HTTP"};

static struct harness_proc *g_lookupd, *g_nsqd, *g_admin;
static int g_port[N_PORTS];
static char *g_dir;

static void raise_nofile(void)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    ck_assert_msg(rl.rlim_max >= INPUT_NOFILE, "RLIMIT_NOFILE hard limit %llu < %d",
                  (unsigned long long)rl.rlim_max, INPUT_NOFILE);
    if (rl.rlim_cur < INPUT_NOFILE) {
        rl.rlim_cur = INPUT_NOFILE;
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    }
}

static void start_all(void)
{
    static const char *const lk_args[] = {"--tcp-address=127.0.0.1:0", "--http-address=127.0.0.1:0",
                                          NULL};
    char lk_flag[128], nsqd_flag[128];
    raise_nofile();
    g_lookupd = harness_start(NSQLOOKUPD_BIN, lk_args, 2);
    ck_assert_ptr_nonnull(g_lookupd);
    snprintf(lk_flag, sizeof(lk_flag), "--lookupd-tcp-address=127.0.0.1:%d",
             harness_port(g_lookupd, "TCP"));
    const char *const nsqd_args[] = {lk_flag, "--broadcast-address=127.0.0.1", NULL};
    g_dir = harness_tmpdir();
    g_nsqd = itest_nsqd_start(g_dir, nsqd_args);
    ck_assert_ptr_nonnull(g_nsqd);
    snprintf(nsqd_flag, sizeof(nsqd_flag), "--nsqd-http-address=127.0.0.1:%d",
             harness_port(g_nsqd, "HTTP"));
    const char *const admin_args[] = {"--http-address=127.0.0.1:0", nsqd_flag, NULL};
    g_admin = harness_start(NSQADMIN_BIN, admin_args, 1);
    ck_assert_ptr_nonnull(g_admin);
    g_port[NSQD_TCP] = harness_port(g_nsqd, "TCP");
    g_port[NSQD_HTTP] = harness_port(g_nsqd, "HTTP");
    g_port[LOOKUPD_TCP] = harness_port(g_lookupd, "TCP");
    g_port[LOOKUPD_HTTP] = harness_port(g_lookupd, "HTTP");
    g_port[ADMIN_HTTP] = harness_port(g_admin, "HTTP");
}

static void stop_all(void)
{
    ck_assert_int_eq(harness_stop(g_admin, SIGTERM), 0);
    ck_assert_int_eq(harness_stop(g_nsqd, SIGTERM), 0);
    ck_assert_int_eq(harness_stop(g_lookupd, SIGTERM), 0);
    harness_rmdir(g_dir);
    free(g_dir);
}

static struct harness_proc *proc_of(enum port_kind k)
{
    return k <= NSQD_HTTP ? g_nsqd : k <= LOOKUPD_HTTP ? g_lookupd : g_admin;
}

/* VmRSS of a process in KiB (-1 if unknown). */
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

/* A normal round trip: SUB, PUB, the message arrives; and /ping answers OK on every daemon. */
static void check_service(const char *when)
{
    static unsigned n;
    char body[64];
    int len = snprintf(body, sizeof(body), "probe-%u", n++);
    int sub = itest_v2_connect(g_port[NSQD_TCP]);
    ck_assert_msg(sub >= 0, "%s: cannot connect to nsqd", when);
    ck_assert_int_eq(itest_sub(sub, "probe", "c"), 0);
    ck_assert_int_eq(itest_rdy(sub, 1), 0);
    int pub = itest_v2_connect(g_port[NSQD_TCP]);
    ck_assert_int_eq(itest_pub(pub, "probe", body, (size_t)len), 0);
    close(pub);
    struct itest_msg m;
    ck_assert_msg(itest_read_msg(sub, &m, ITEST_IO_MS) == 0, "%s: message not delivered", when);
    ck_assert_str_eq(m.body, body);
    itest_fin(sub, m.id);
    free(m.body);
    close(sub);
    for (int k = NSQD_HTTP; k < N_PORTS; k++) {
        if (k == LOOKUPD_TCP)
            continue;
        ck_assert_msg(itest_http("GET", g_port[k], "/ping", NULL, NULL) == 200, "%s: %s /ping",
                      when, port_names[k]);
    }
    for (int k = 0; k < N_PORTS; k++)
        ck_assert_msg(harness_running(proc_of((enum port_kind)k)), "%s: %s died", when,
                      port_names[k]);
}

static int connect_nb(int port)
{
    int fd = harness_connect(port);
    if (fd >= 0)
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

static void random_bytes(uint8_t *buf, size_t len, unsigned *seed)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)rand_r(seed);
}

/* Sends what the socket takes now (garbage may be refused once the daemon closed). */
static void send_some(int fd, const void *buf, size_t len)
{
    ssize_t n = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)n;
}

START_TEST(random_bytes_every_port)
{
    unsigned seed = INPUT_SEED;
    uint8_t buf[INPUT_GARBAGE_MAX];
    start_all();
    for (int k = 0; k < N_PORTS; k++) {
        int closed = 0;
        for (int i = 0; i < INPUT_RANDOM_CONNS; i++) {
            int fd = connect_nb(g_port[k]);
            ck_assert_int_ge(fd, 0);
            size_t len = 1 + (size_t)rand_r(&seed) % sizeof(buf);
            random_bytes(buf, len, &seed);
            if (i % 4 == 0 && (k == NSQD_TCP || k == LOOKUPD_TCP))
                memcpy(buf, k == NSQD_TCP ? "  V2" : "  V1", len < 4 ? len : 4);
            send_some(fd, buf, len);
            if (i % 10 == 0 && harness_tcp_wait_closed(fd, 2000))
                closed++;
            close(fd);
        }
        fprintf(stderr, "random bytes: %s: %d connections, %d of %d sampled closed by the daemon\n",
                port_names[k], INPUT_RANDOM_CONNS, closed, INPUT_RANDOM_CONNS / 10);
        check_service(port_names[k]);
    }
    stop_all();
}
END_TEST

/* INPUT_CONNS connections at once on each port: a third half-open (connect only), the rest
   with up to 4 KiB of garbage; RSS sampled, then a round trip while they are open. */
START_TEST(thousand_garbage_connections_bounded_memory)
{
    unsigned seed = INPUT_SEED + 1;
    uint8_t buf[INPUT_GARBAGE_MAX];
    static int fds[INPUT_CONNS];
    start_all();
    for (int k = 0; k < N_PORTS; k++) {
        pid_t pid = harness_pid(proc_of((enum port_kind)k));
        long base = vm_rss_kb(pid), peak = base;
        for (int i = 0; i < INPUT_CONNS; i++) {
            fds[i] = connect_nb(g_port[k]);
            ck_assert_msg(fds[i] >= 0, "%s: connection %d refused", port_names[k], i);
            if (i % 3 != 0) {
                size_t len = 1 + (size_t)rand_r(&seed) % sizeof(buf);
                random_bytes(buf, len, &seed);
                send_some(fds[i], buf, len);
            }
            if (i % 100 == 0) {
                long rss = vm_rss_kb(pid);
                peak = rss > peak ? rss : peak;
            }
        }
        check_service(port_names[k]);
        long rss = vm_rss_kb(pid);
        peak = rss > peak ? rss : peak;
        for (int i = 0; i < INPUT_CONNS; i++)
            close(fds[i]);
        fprintf(stderr, "1000 garbage connections: %s: VmRSS %ld kB before, peak %ld kB (+%ld)\n",
                port_names[k], base, peak, peak - base);
        ck_assert_msg(peak - base < INPUT_RSS_BOUND_KB, "%s grew by %ld kB", port_names[k],
                      peak - base);
        check_service(port_names[k]);
    }
    stop_all();
}
END_TEST

/* INPUT_SLOW_CONNS writers per port sending one byte of a valid-looking request every 100 ms. */
START_TEST(slow_loris_every_port)
{
    static const char *const slow_text[N_PORTS] = {
            "  V2PUB slowtopic\n\0\0\0\x05hello", "GET /ping HTTP/1.1\r\nHost: x\r\n\r\n",
            "  V1PING\nPING\nPING\nPING\n", "GET /ping HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET /ping HTTP/1.1\r\nHost: x\r\n\r\n"};
    int fds[N_PORTS][INPUT_SLOW_CONNS];
    start_all();
    for (int k = 0; k < N_PORTS; k++)
        for (int i = 0; i < INPUT_SLOW_CONNS; i++) {
            fds[k][i] = connect_nb(g_port[k]);
            ck_assert_int_ge(fds[k][i], 0);
        }
    int64_t t0 = harness_now_ms();
    for (int b = 0; b < INPUT_SLOW_BYTES; b++) {
        for (int k = 0; k < N_PORTS; k++)
            for (int i = 0; i < INPUT_SLOW_CONNS; i++)
                send_some(fds[k][i], slow_text[k] + b, 1);
        if (b == INPUT_SLOW_BYTES / 2)
            check_service("slow writers active");
        struct timespec ts = {0, INPUT_SLOW_MS * 1000000L}; /* the pace is the test input */
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "slow writers: %d per port, %d bytes each over %lld ms\n", INPUT_SLOW_CONNS,
            INPUT_SLOW_BYTES, (long long)(harness_now_ms() - t0));
    for (int k = 0; k < N_PORTS; k++)
        for (int i = 0; i < INPUT_SLOW_CONNS; i++)
            close(fds[k][i]);
    check_service("after slow writers");
    stop_all();
}
END_TEST

/* Sends raw bytes on a fresh V2/V1 connection and returns the first frame's text (or "" if
   the connection closed without one). */
static char *first_reply(int port, const void *data, size_t len, bool v1)
{
    int fd = harness_connect(port);
    char *out = NULL;
    size_t olen;
    int32_t type;
    ck_assert_int_ge(fd, 0);
    harness_tcp_send(fd, data, len);
    int rc = v1 ? harness_tcp_read_v1(fd, &out, &olen, ITEST_IO_MS)
                : itest_read_frame(fd, &type, &out, &olen, ITEST_IO_MS);
    if (rc != 0) {
        free(out);
        out = strdup("");
    }
    ck_assert_msg(harness_tcp_wait_closed(fd, ITEST_IO_MS) || !v1, "connection left open");
    close(fd);
    return out;
}

static void expect_prefix(const char *what, char *got, const char *want)
{
    fprintf(stderr, "%s: \"%.120s\"\n", what, got);
    ck_assert_msg(strncmp(got, want, strlen(want)) == 0, "%s: got \"%.200s\", want \"%s...\"", what,
                  got, want);
    free(got);
}

START_TEST(oversize_and_invalid_input)
{
    start_all();
    int tcp = g_port[NSQD_TCP], ltcp = g_port[LOOKUPD_TCP];

    /* nsqd TCP: oversize frame sizes, long lines, bad names, huge IDENTIFY values */
    expect_prefix("nsqd PUB size 2^31-1",
                  first_reply(tcp, "  V2PUB t\n\x7f\xff\xff\xff", 14, false), "E_BAD_MESSAGE");
    expect_prefix("nsqd MPUB size 2^31-1",
                  first_reply(tcp, "  V2MPUB t\n\x7f\xff\xff\xff", 15, false), "E_BAD_BODY");
    expect_prefix("nsqd IDENTIFY size 2^31-1",
                  first_reply(tcp, "  V2IDENTIFY\n\x7f\xff\xff\xff", 17, false), "E_BAD_BODY");
    expect_prefix("nsqd PUB negative size",
                  first_reply(tcp, "  V2PUB t\n\xff\xff\xff\xfe", 14, false), "E_BAD_MESSAGE");
    expect_prefix("nsqd invalid UTF-8 topic",
                  first_reply(tcp, "  V2PUB \xff\xfe\n\0\0\0\x01x", 16, false), "E_BAD_TOPIC");
    expect_prefix("nsqd SUB invalid channel", first_reply(tcp, "  V2SUB t c/d\n", 14, false),
                  "E_BAD_CHANNEL");
    {
        char *line = malloc(INPUT_BIG_LINE);
        memcpy(line, "  V2", 4);
        memset(line + 4, 'A', INPUT_BIG_LINE - 4);
        char *r = first_reply(tcp, line, INPUT_BIG_LINE, false);
        fprintf(stderr, "nsqd 1 MiB line without LF: \"%.80s\"\n", r);
        free(r);
        free(line);
    }
    {
        /* huge values: a 1 MiB client_id, numbers far out of range */
        size_t big = 1024 * 1024;
        char *json = malloc(big + 256);
        int n = snprintf(json, 256, "{\"client_id\":\"");
        memset(json + n, 'c', big);
        snprintf(json + n + big, 200,
                 "\",\"heartbeat_interval\":1e300,\"output_buffer_size\":-9223372036854775808}");
        size_t jl = strlen(json);
        size_t total = 4 + 9 + 4 + jl;
        uint8_t *msg = malloc(total);
        memcpy(msg, "  V2IDENTIFY\n", 13);
        msg[13] = (uint8_t)(jl >> 24);
        msg[14] = (uint8_t)(jl >> 16);
        msg[15] = (uint8_t)(jl >> 8);
        msg[16] = (uint8_t)jl;
        memcpy(msg + 17, json, jl);
        expect_prefix("nsqd IDENTIFY huge values", first_reply(tcp, msg, total, false),
                      "E_BAD_BODY");
        free(msg);
        free(json);
    }
    /* a TLS ClientHello cut midway, sent instead of the magic */
    expect_prefix("nsqd partial TLS ClientHello",
                  first_reply(tcp, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11, false),
                  "E_BAD_PROTOCOL");

    /* nsqlookupd TCP */
    expect_prefix("lookupd IDENTIFY size 2^31-1",
                  first_reply(ltcp, "  V1IDENTIFY\n\x7f\xff\xff\xff", 17, true), "E_BAD_BODY");
    expect_prefix("lookupd REGISTER invalid UTF-8 topic",
                  first_reply(ltcp, "  V1REGISTER \xff\xfe\n", 16, true), "E_INVALID");
    expect_prefix("lookupd bad magic", first_reply(ltcp, "  V9PING\n", 9, true), "E_BAD_PROTOCOL");
    {
        char *line = malloc(INPUT_BIG_LINE);
        memcpy(line, "  V1", 4);
        memset(line + 4, 'A', INPUT_BIG_LINE - 4);
        char *r = first_reply(ltcp, line, INPUT_BIG_LINE, true);
        fprintf(stderr, "lookupd 1 MiB line without LF: \"%.80s\"\n", r);
        free(r);
        free(line);
    }

    /* HTTP: oversize bodies, invalid names, malformed queries */
    {
        size_t big = 6 * 1024 * 1024; /* above --max-body-size (5 MiB) */
        char *body = malloc(big);
        memset(body, 'b', big);
        struct harness_response r;
        memset(&r, 0, sizeof(r));
        ck_assert_int_eq(harness_http("POST", g_port[NSQD_HTTP], "/mpub?topic=t", body, big, &r),
                         0);
        fprintf(stderr, "nsqd HTTP /mpub 6 MiB: %ld %s\n", r.status, r.body);
        ck_assert_int_eq(r.status, 413);
        harness_response_free(&r);
        memset(&r, 0, sizeof(r));
        if (harness_http("POST", g_port[ADMIN_HTTP], "/api/topics", body, big, &r) == 0)
            fprintf(stderr, "nsqadmin HTTP 6 MiB body: %ld\n", r.status);
        ck_assert_int_ne(r.status, 200);
        harness_response_free(&r);
        free(body);
    }
    char *b = NULL;
    long st = itest_http("POST", g_port[NSQD_HTTP], "/pub?topic=%ff%fe", "x", &b);
    fprintf(stderr, "nsqd HTTP /pub invalid UTF-8 topic: %ld %s\n", st, b ? b : "");
    ck_assert_int_eq(st, 400);
    free(b);
    st = itest_http("POST", g_port[NSQD_HTTP], "/pub?topic=t&%zz=1", "x", &b);
    fprintf(stderr, "nsqd HTTP /pub malformed query: %ld %s\n", st, b ? b : "");
    ck_assert_int_eq(st, 400);
    free(b);
    st = itest_http("POST", g_port[LOOKUPD_HTTP], "/topic/create?topic=%ff", NULL, &b);
    fprintf(stderr, "lookupd HTTP create invalid topic: %ld %s\n", st, b ? b : "");
    ck_assert_int_eq(st, 400);
    free(b);
    st = itest_http("GET", g_port[ADMIN_HTTP], "/api/topics/%ff%fe", NULL, &b);
    fprintf(stderr, "nsqadmin HTTP invalid topic: %ld\n", st);
    ck_assert_int_ge(st, 400);
    free(b);

    check_service("after oversize input");
    stop_all();
}
END_TEST

/* A ClientHello record header and the start of its body: the peer waits for the rest. */
static const uint8_t partial_hello[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01,
                                        0x00, 0x01, 0xfc, 0x03, 0x03};

START_TEST(tls_handshake_cut_midway)
{
    raise_nofile();
    char *dir = harness_tmpdir();
    char cmd[9000], cert[4200], key[4200], cert_flag[4300], key_flag[4300];
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout %s -out %s -days 2 -subj /CN=127.0.0.1 >/dev/null 2>&1",
             key, cert);
    ck_assert_msg(system(cmd) == 0, "openssl could not make a certificate");
    snprintf(cert_flag, sizeof(cert_flag), "--tls-cert=%s", cert);
    snprintf(key_flag, sizeof(key_flag), "--tls-key=%s", key);
    char dp[4300];
    snprintf(dp, sizeof(dp), "--data-path=%s", dir);
    const char *const args[] = {"--tcp-address=127.0.0.1:0",
                                "--http-address=127.0.0.1:0",
                                "--https-address=127.0.0.1:0",
                                dp,
                                cert_flag,
                                key_flag,
                                NULL};
    struct harness_proc *p = harness_start(NSQD_BIN, args, 3);
    ck_assert_ptr_nonnull(p);
    int tcp = harness_port(p, "TCP"), https = harness_port(p, "HTTPS");
    ck_assert_int_gt(https, 0);
    long base = vm_rss_kb(harness_pid(p));
    static int fds[2 * INPUT_TLS_CONNS];
    int n = 0;
    for (int i = 0; i < INPUT_TLS_CONNS; i++) {
        /* TCP: IDENTIFY asks for TLS, the reply says yes, then half a handshake */
        int fd = itest_v2_connect(tcp);
        ck_assert_int_ge(fd, 0);
        static const char id[] = "{\"tls_v1\":true,\"feature_negotiation\":true}";
        int32_t type;
        char *data = NULL;
        size_t len;
        ck_assert_int_eq(harness_tcp_send_str(fd, "IDENTIFY\n"), 0);
        ck_assert_int_eq(harness_tcp_send_sized(fd, id, sizeof(id) - 1), 0);
        ck_assert_int_eq(itest_read_frame(fd, &type, &data, &len, ITEST_IO_MS), 0);
        ck_assert_msg(strstr(data, "\"tls_v1\":true") != NULL, "IDENTIFY reply %s", data);
        free(data);
        ck_assert_int_eq(harness_tcp_send(fd, partial_hello, sizeof(partial_hello)), 0);
        fds[n++] = fd;
        /* HTTPS: half a handshake */
        fd = harness_connect(https);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(harness_tcp_send(fd, partial_hello, sizeof(partial_hello)), 0);
        fds[n++] = fd;
    }
    /* the plain side keeps serving while the handshakes hang */
    int sub = itest_v2_connect(tcp);
    ck_assert_int_eq(itest_sub(sub, "tls", "c"), 0);
    ck_assert_int_eq(itest_rdy(sub, 1), 0);
    int pub = itest_v2_connect(tcp);
    ck_assert_int_eq(itest_pub(pub, "tls", "ok", 2), 0);
    struct itest_msg m;
    ck_assert_int_eq(itest_read_msg(sub, &m, ITEST_IO_MS), 0);
    free(m.body);
    close(pub);
    close(sub);
    ck_assert_int_eq(itest_http("GET", harness_port(p, "HTTP"), "/ping", NULL, NULL), 200);
    long rss = vm_rss_kb(harness_pid(p));
    fprintf(stderr,
            "TLS cut midway: %d connections stalled in the handshake (TCP and HTTPS); "
            "nsqd VmRSS %ld kB -> %ld kB; PUB/SUB and /ping served\n",
            n, base, rss);
    ck_assert_msg(rss - base < INPUT_RSS_BOUND_KB, "nsqd grew by %ld kB", rss - base);
    for (int i = 0; i < n; i++)
        close(fds[i]);
    ck_assert(harness_running(p));
    ck_assert_int_eq(harness_stop(p, SIGTERM), 0);
    harness_rmdir(dir);
    free(dir);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("reliability_input");
    TCase *tc = tcase_create("input");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, random_bytes_every_port);
    tcase_add_test(tc, thousand_garbage_connections_bounded_memory);
    tcase_add_test(tc, slow_loris_every_port);
    tcase_add_test(tc, oversize_and_invalid_input);
    tcase_add_test(tc, tls_handshake_cut_midway);
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
