/*
 * harness: process control, waiting, HTTP and raw TCP helpers for integration tests.
 *
 * Processes are started with fork+exec so that the child can ask to be killed when the test
 * process dies (PR_SET_PDEATHSIG): a crashed or timed-out test never leaves daemons behind.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define HARNESS_POLL_MS       5 /* pause between two polls of a condition */
#define HARNESS_KIND_LEN      16
#define HARNESS_ADDR_LEN      128
#define HARNESS_MAX_ARGS      64
#define HARNESS_MAX_BODY      (256u * 1024 * 1024)
#define HARNESS_LISTEN_MARKER ": listening on "

struct harness_listener {
    char kind[HARNESS_KIND_LEN];
    char addr[HARNESS_ADDR_LEN];
    int port;
};

struct harness_proc {
    pid_t pid;
    bool reaped;
    int status; /* waitpid status once reaped */
    char *dir;  /* temp dir holding the log (owned) */
    char *log_path;
    size_t nlisteners;
    struct harness_listener listeners[HARNESS_MAX_LISTENERS];
};

int64_t harness_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

bool harness_wait_until(bool (*cond)(void *), void *arg, int timeout_ms)
{
    int64_t deadline = harness_now_ms() + timeout_ms;
    for (;;) {
        if (cond(arg))
            return true;
        if (harness_now_ms() >= deadline)
            return false;
        sleep_ms(HARNESS_POLL_MS);
    }
}

char *harness_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    if (base == NULL || base[0] == '\0')
        base = "/tmp";
    size_t n = strlen(base) + sizeof("/nsqtest-XXXXXX");
    char *path = malloc(n);
    if (path == NULL)
        return NULL;
    snprintf(path, n, "%s/nsqtest-XXXXXX", base);
    if (mkdtemp(path) == NULL) {
        free(path);
        return NULL;
    }
    return path;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void harness_rmdir(const char *path)
{
    if (path != NULL)
        nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- processes ---- */

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    while (buf != NULL) {
        if (len + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            if (nb == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t r = fread(buf + len, 1, cap - len - 1, f);
        if (r == 0)
            break;
        len += r;
    }
    fclose(f);
    if (buf != NULL)
        buf[len] = '\0';
    return buf;
}

char *harness_log(const struct harness_proc *p)
{
    return p == NULL ? NULL : read_file(p->log_path);
}

const char *harness_log_path(const struct harness_proc *p)
{
    return p == NULL ? NULL : p->log_path;
}

pid_t harness_pid(const struct harness_proc *p)
{
    return p == NULL ? -1 : p->pid;
}

/* Rescans the log for complete "listening on" lines; updates p->listeners. */
static void scan_listeners(struct harness_proc *p)
{
    char *log = harness_log(p);
    if (log == NULL)
        return;
    p->nlisteners = 0;
    char *line = log;
    while (*line != '\0' && p->nlisteners < HARNESS_MAX_LISTENERS) {
        char *nl = strchr(line, '\n');
        if (nl == NULL)
            break; /* incomplete line: wait for the rest */
        *nl = '\0';
        char *m = strstr(line, HARNESS_LISTEN_MARKER);
        if (m != NULL) {
            /* the kind is the word just before the marker */
            char *k = m;
            while (k > line && k[-1] != ' ')
                k--;
            char *addr = m + strlen(HARNESS_LISTEN_MARKER);
            size_t alen = strcspn(addr, " \t\r");
            char *colon = NULL;
            for (size_t i = 0; i < alen; i++)
                if (addr[i] == ':')
                    colon = addr + i;
            size_t klen = (size_t)(m - k);
            if (colon != NULL && klen > 0 && klen < HARNESS_KIND_LEN && alen < HARNESS_ADDR_LEN) {
                struct harness_listener *l = &p->listeners[p->nlisteners++];
                memcpy(l->kind, k, klen);
                l->kind[klen] = '\0';
                memcpy(l->addr, addr, alen);
                l->addr[alen] = '\0';
                l->port = atoi(colon + 1);
            }
        }
        line = nl + 1;
    }
    free(log);
}

static bool reap(struct harness_proc *p, int flags)
{
    if (p->reaped)
        return true;
    int st;
    pid_t r;
    do {
        r = waitpid(p->pid, &st, flags);
    } while (r < 0 && errno == EINTR);
    if (r == p->pid || (r < 0 && errno == ECHILD)) {
        p->reaped = true;
        p->status = r == p->pid ? st : -1;
        return true;
    }
    return false;
}

bool harness_running(struct harness_proc *p)
{
    return p != NULL && !reap(p, WNOHANG);
}

static void proc_free(struct harness_proc *p)
{
    if (p == NULL)
        return;
    if (p->dir != NULL)
        harness_rmdir(p->dir);
    free(p->dir);
    free(p->log_path);
    free(p);
}

static void print_log(const struct harness_proc *p, const char *why)
{
    char *log = harness_log(p);
    fprintf(stderr, "harness: %s (pid %d); log %s:\n%s\n", why, (int)p->pid, p->log_path,
            log != NULL ? log : "(unreadable)");
    free(log);
}

struct harness_proc *harness_start(const char *binary, const char *const *args, int n_listeners)
{
    struct harness_proc *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->pid = -1;
    p->dir = harness_tmpdir();
    if (p->dir == NULL)
        goto err;
    const char *base = strrchr(binary, '/');
    base = base != NULL ? base + 1 : binary;
    size_t n = strlen(p->dir) + strlen(base) + sizeof("/.log");
    p->log_path = malloc(n);
    if (p->log_path == NULL)
        goto err;
    snprintf(p->log_path, n, "%s/%s.log", p->dir, base);

    const char *argv[HARNESS_MAX_ARGS + 2];
    size_t argc = 0;
    argv[argc++] = binary;
    for (size_t i = 0; args != NULL && args[i] != NULL && argc <= HARNESS_MAX_ARGS; i++)
        argv[argc++] = args[i];
    argv[argc] = NULL;

    int logfd = open(p->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (logfd < 0)
        goto err;
    pid_t parent = getpid();
    fflush(NULL);
    p->pid = fork();
    if (p->pid < 0) {
        close(logfd);
        goto err;
    }
    if (p->pid == 0) {
        /* child: die with the test process; stdin from /dev/null; stdout+stderr to the log */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        int nullfd = open("/dev/null", O_RDONLY);
        if (nullfd >= 0)
            dup2(nullfd, STDIN_FILENO);
        dup2(logfd, STDOUT_FILENO);
        dup2(logfd, STDERR_FILENO);
        execv(binary, (char *const *)argv);
        dprintf(STDERR_FILENO, "harness: exec %s: %s\n", binary, strerror(errno));
        _exit(127);
    }
    close(logfd);

    int64_t deadline = harness_now_ms() + HARNESS_START_TIMEOUT_MS;
    for (;;) {
        scan_listeners(p);
        if ((int)p->nlisteners >= n_listeners)
            return p;
        if (reap(p, WNOHANG)) {
            print_log(p, "process exited before listening");
            proc_free(p);
            return NULL;
        }
        if (harness_now_ms() >= deadline) {
            print_log(p, "timed out waiting for the listening lines");
            harness_kill(p);
            return NULL;
        }
        sleep_ms(HARNESS_POLL_MS);
    }
err:
    proc_free(p);
    return NULL;
}

const char *harness_addr(const struct harness_proc *p, const char *kind)
{
    for (size_t i = 0; p != NULL && i < p->nlisteners; i++)
        if (strcmp(p->listeners[i].kind, kind) == 0)
            return p->listeners[i].addr;
    return NULL;
}

int harness_port(const struct harness_proc *p, const char *kind)
{
    for (size_t i = 0; p != NULL && i < p->nlisteners; i++)
        if (strcmp(p->listeners[i].kind, kind) == 0)
            return p->listeners[i].port;
    return -1;
}

bool harness_log_wait(const struct harness_proc *p, const char *needle, int timeout_ms)
{
    int64_t deadline = harness_now_ms() + timeout_ms;
    for (;;) {
        char *log = harness_log(p);
        bool found = log != NULL && strstr(log, needle) != NULL;
        free(log);
        if (found)
            return true;
        if (harness_now_ms() >= deadline)
            return false;
        sleep_ms(HARNESS_POLL_MS);
    }
}

static int exit_code(const struct harness_proc *p)
{
    if (p->status < 0)
        return -1;
    if (WIFEXITED(p->status))
        return WEXITSTATUS(p->status);
    if (WIFSIGNALED(p->status))
        return 128 + WTERMSIG(p->status);
    return -1;
}

int harness_stop(struct harness_proc *p, int sig)
{
    if (p == NULL)
        return -1;
    if (!p->reaped)
        kill(p->pid, sig != 0 ? sig : SIGTERM);
    int64_t deadline = harness_now_ms() + HARNESS_STOP_TIMEOUT_MS;
    int rc;
    while (!reap(p, WNOHANG) && harness_now_ms() < deadline)
        sleep_ms(HARNESS_POLL_MS);
    if (p->reaped) {
        rc = exit_code(p);
    } else {
        print_log(p, "did not exit in time; killing");
        kill(p->pid, SIGKILL);
        reap(p, 0);
        rc = -1;
    }
    proc_free(p);
    return rc;
}

int harness_kill(struct harness_proc *p)
{
    if (p == NULL)
        return -1;
    if (!p->reaped)
        kill(p->pid, SIGKILL);
    reap(p, 0);
    int rc = exit_code(p);
    proc_free(p);
    return rc;
}

/* ---- HTTP ---- */

struct growbuf {
    char *data;
    size_t len;
};

static size_t grow_append(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct growbuf *b = ud;
    size_t n = size * nmemb;
    if (b->len + n + 1 > HARNESS_MAX_BODY)
        return 0;
    char *nd = realloc(b->data, b->len + n + 1);
    if (nd == NULL)
        return 0;
    memcpy(nd + b->len, ptr, n);
    b->len += n;
    nd[b->len] = '\0';
    b->data = nd;
    return n;
}

int harness_http_hdr(const char *method, int port, const char *path_and_query, const void *body,
                     size_t len, const char *header, struct harness_response *out)
{
    static bool curl_ready;
    if (!curl_ready) {
        curl_global_init(CURL_GLOBAL_ALL);
        curl_ready = true;
    }
    memset(out, 0, sizeof(*out));
    char url[2048];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path_and_query);
    CURL *c = curl_easy_init();
    if (c == NULL)
        return -1;
    struct growbuf b = {0}, h = {0};
    struct curl_slist *hdrs = NULL;
    hdrs = curl_slist_append(hdrs, "Expect:");
    if (header != NULL)
        hdrs = curl_slist_append(hdrs, header);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)HARNESS_IO_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, grow_append);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, grow_append);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    if (strcmp(method, "GET") == 0 && body == NULL) {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        if (body != NULL || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0) {
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, body != NULL ? body : "");
        }
    }
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    out->body = b.data != NULL ? b.data : strdup("");
    out->body_len = b.len;
    out->headers = h.data != NULL ? h.data : strdup("");
    return rc == CURLE_OK ? 0 : -1;
}

int harness_http(const char *method, int port, const char *path_and_query, const void *body,
                 size_t len, struct harness_response *out)
{
    return harness_http_hdr(method, port, path_and_query, body, len, NULL, out);
}

char *harness_response_header(const struct harness_response *r, const char *name)
{
    size_t nlen = strlen(name);
    const char *line = r->headers;
    while (line != NULL && *line != '\0') {
        const char *end = strstr(line, "\r\n");
        if (end == NULL)
            end = line + strlen(line);
        if ((size_t)(end - line) > nlen && strncasecmp(line, name, nlen) == 0 &&
            line[nlen] == ':') {
            const char *v = line + nlen + 1;
            while (v < end && *v == ' ')
                v++;
            return strndup(v, (size_t)(end - v));
        }
        line = *end != '\0' ? end + 2 : end;
    }
    return NULL;
}

void harness_response_free(struct harness_response *r)
{
    if (r == NULL)
        return;
    free(r->body);
    free(r->headers);
    memset(r, 0, sizeof(*r));
}

/* ---- TCP ---- */

int harness_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

int harness_tcp_send(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int harness_tcp_send_str(int fd, const char *s)
{
    return harness_tcp_send(fd, s, strlen(s));
}

int harness_tcp_send_sized(int fd, const void *data, size_t len)
{
    uint32_t be = htonl((uint32_t)len);
    if (harness_tcp_send(fd, &be, sizeof(be)) != 0)
        return -1;
    return harness_tcp_send(fd, data, len);
}

int harness_tcp_read_n(int fd, void *buf, size_t n, int timeout_ms)
{
    char *p = buf;
    int64_t deadline = harness_now_ms() + timeout_ms;
    while (n > 0) {
        int64_t left = deadline - harness_now_ms();
        if (left <= 0)
            return -1;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int pr = poll(&pfd, 1, (int)left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            return -1;
        ssize_t r = recv(fd, p, n, 0);
        if (r < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return errno == ECONNRESET ? 1 : -1;
        }
        if (r == 0)
            return 1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* Reads [int32 size] then size bytes; the caller gets the payload after `skip` header bytes. */
static int read_sized(int fd, char **data, size_t *len, int timeout_ms, size_t min_size)
{
    *data = NULL;
    *len = 0;
    uint32_t be;
    int rc = harness_tcp_read_n(fd, &be, sizeof(be), timeout_ms);
    if (rc != 0)
        return rc;
    uint32_t size = ntohl(be);
    if (size < min_size || size > HARNESS_MAX_BODY)
        return -1;
    char *buf = malloc((size_t)size + 1);
    if (buf == NULL)
        return -1;
    rc = harness_tcp_read_n(fd, buf, size, timeout_ms);
    if (rc != 0) {
        free(buf);
        return rc;
    }
    buf[size] = '\0';
    *data = buf;
    *len = size;
    return 0;
}

int harness_tcp_read_frame(int fd, int32_t *type, char **data, size_t *len, int timeout_ms)
{
    char *raw;
    size_t rawlen;
    int rc = read_sized(fd, &raw, &rawlen, timeout_ms, sizeof(int32_t));
    if (rc != 0) {
        *data = NULL;
        *len = 0;
        return rc;
    }
    uint32_t be;
    memcpy(&be, raw, sizeof(be));
    *type = (int32_t)ntohl(be);
    *len = rawlen - sizeof(be);
    memmove(raw, raw + sizeof(be), *len + 1); /* keeps the NUL */
    *data = raw;
    return 0;
}

int harness_tcp_read_v1(int fd, char **data, size_t *len, int timeout_ms)
{
    return read_sized(fd, data, len, timeout_ms, 0);
}

bool harness_tcp_wait_closed(int fd, int timeout_ms)
{
    int64_t deadline = harness_now_ms() + timeout_ms;
    char buf[4096];
    for (;;) {
        int64_t left = deadline - harness_now_ms();
        if (left <= 0)
            return false;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int pr = poll(&pfd, 1, (int)left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            return false;
        ssize_t r = recv(fd, buf, sizeof(buf), 0);
        if (r == 0)
            return true;
        if (r < 0 && errno != EINTR && errno != EAGAIN)
            return true;
    }
}
