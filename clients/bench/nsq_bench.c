/*
 * nsq_bench: throughput and latency benchmark for nsqd over raw TCP sockets.
 *
 * Modes (first argument):
 *   writer  N connections (--connections), each sending MPUB batches of --batch-size messages of
 *           --size bytes and waiting for the OK of each (up to --pipeline batches outstanding),
 *           optionally paced to --rate messages/s in total.
 *   reader  N connections SUB to --topic/--channel with RDY --rdy; every message is FINed.
 *   pubsub  writers and readers at once; each body starts with the writer's monotonic send time
 *           (8 bytes, big-endian), so readers measure end-to-end latency.
 *   sink    the raw loopback limit: the same frames written (without waiting for replies) to
 *           in-process sockets whose reader discards them. --sink-format=mpub sends the writer's
 *           MPUB frames, --sink-format=message the message frames a reader would receive.
 *
 * Every mode stops after --runfor or once --count messages were done. The summary is printed in a
 * human form and as one "RESULT key=value ..." line that bench/run.sh parses. With --nsqd-pid the
 * peak RSS of that process (VmHWM from /proc/<pid>/status) is reported.
 *
 * One thread per connection with blocking sockets: the bench must cost as little CPU as possible
 * next to the nsqd it measures, and a blocking loop over a large read buffer is the cheapest way.
 */
#include <errno.h>
#include <arpa/inet.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "nsq_frame.h"
#include "nsq_message.h"
#include "nsq_net.h"
#include "nsq_time.h"

#define BENCH_MAGIC     "  V2"
#define BENCH_READ_BUF  (256 * 1024)
#define BENCH_FIN_LEN   (4 + NSQ_MSG_ID_LEN + 1) /* "FIN " id "\n" */
#define BENCH_POLL_MS   100 /* how often blocked threads look at the stop flag */
#define BENCH_MAX_FRAME (64 * 1024 * 1024)
#define BENCH_TS_LEN    8 /* bytes of send time embedded at the head of each body */
#define BENCH_MAX_CONNS 256
#define BENCH_HEARTBEAT "_heartbeat_"
#define BENCH_MB        (1024.0 * 1024.0)

/* ---- latency histogram: log-linear buckets, 32 per power of two (<= 3% error) ---- */

#define HIST_SUB_BITS 5
#define HIST_SUB      (1 << HIST_SUB_BITS)
#define HIST_LINEAR   (2 * HIST_SUB)
#define HIST_BUCKETS  (HIST_LINEAR + (64 - HIST_SUB_BITS - 1) * HIST_SUB)

struct hist {
    uint64_t n[HIST_BUCKETS];
    uint64_t count;
};

static int hist_index(uint64_t v)
{
    if (v < HIST_LINEAR)
        return (int)v;
    int msb = 63 - __builtin_clzll(v);
    int shift = msb - HIST_SUB_BITS;
    return HIST_LINEAR + (msb - HIST_SUB_BITS - 1) * HIST_SUB + (int)((v >> shift) - HIST_SUB);
}

static double hist_value(int idx)
{
    if (idx < HIST_LINEAR)
        return idx;
    int k = idx - HIST_LINEAR;
    int msb = k / HIST_SUB + HIST_SUB_BITS + 1;
    int shift = msb - HIST_SUB_BITS;
    uint64_t lo = ((uint64_t)(k % HIST_SUB + HIST_SUB)) << shift;
    return (double)lo + (double)(1ULL << shift) / 2.0;
}

static void hist_add(struct hist *h, uint64_t v)
{
    h->n[hist_index(v)]++;
    h->count++;
}

static void hist_merge(struct hist *into, const struct hist *from)
{
    for (int i = 0; i < HIST_BUCKETS; i++)
        into->n[i] += from->n[i];
    into->count += from->count;
}

static double hist_quantile(const struct hist *h, double q)
{
    if (h->count == 0)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)h->count);
    if (rank >= h->count)
        rank = h->count - 1;
    uint64_t seen = 0;
    for (int i = 0; i < HIST_BUCKETS; i++) {
        seen += h->n[i];
        if (seen > rank)
            return hist_value(i);
    }
    return 0;
}

/* ---- options ---- */

enum bench_mode { MODE_WRITER, MODE_READER, MODE_PUBSUB, MODE_SINK };

struct bench_opts {
    enum bench_mode mode;
    char addr[256];
    char topic[128];
    char channel[128];
    long size;
    long batch;
    int64_t runfor_ns;
    long rdy;
    char deadline[64];
    long writers;
    long readers;
    long pipeline;
    double rate;
    long long count;
    long nsqd_pid;
    bool sink_message;
    char label[64];
};

static void usage(void)
{
    fprintf(stderr,
            "usage: nsq_bench writer|reader|pubsub|sink [flags]\n"
            "  --nsqd-tcp-address=ADDR  nsqd TCP address (default 127.0.0.1:4150)\n"
            "  --topic=NAME             topic (default sub_bench)\n"
            "  --channel=NAME           channel (default ch)\n"
            "  --size=N                 message body bytes (default 200)\n"
            "  --batch-size=N           messages per MPUB (default 200)\n"
            "  --runfor=DUR             run time, Go duration (default 10s)\n"
            "  --rdy=N                  RDY per reader connection (default 2500)\n"
            "  --deadline=TIME          start at 'YYYY-MM-DD HH:MM:SS' (local time)\n"
            "  --writers=N              writer connections (default 1)\n"
            "  --readers=N              reader connections (default 1)\n"
            "  --pipeline=N             MPUBs in flight per writer (default 1)\n"
            "  --rate=N                 total messages/s for writers, 0 = unlimited (default 0)\n"
            "  --count=N                stop after N messages, 0 = no limit (default 0)\n"
            "  --nsqd-pid=PID           report VmHWM of this process\n"
            "  --sink-format=mpub|message  frames written in sink mode (default mpub)\n"
            "  --label=TEXT             name of the run in the RESULT line\n");
}

/* Go duration subset: a sequence of <number><unit> with units ns us ms s m h. */
static int parse_duration(const char *s, int64_t *out)
{
    static const struct {
        const char *unit;
        double ns;
    } units[] = {{"ns", 1}, {"us", 1e3}, {"ms", 1e6}, {"s", 1e9}, {"m", 60e9}, {"h", 3600e9}};
    double total = 0;
    if (strcmp(s, "0") == 0) {
        *out = 0;
        return 0;
    }
    if (*s == '\0')
        return -EINVAL;
    while (*s) {
        char *end;
        double v = strtod(s, &end);
        if (end == s)
            return -EINVAL;
        s = end;
        size_t best = 0;
        double mul = 0;
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
            size_t l = strlen(units[i].unit);
            if (strncmp(s, units[i].unit, l) == 0 && l > best) {
                best = l;
                mul = units[i].ns;
            }
        }
        if (best == 0)
            return -EINVAL;
        s += best;
        total += v * mul;
    }
    *out = (int64_t)total;
    return 0;
}

static int parse_long(const char *s, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *s == '\0' || *end != '\0' || v < 0)
        return -EINVAL;
    *out = v;
    return 0;
}

static int copy_str(char *dst, size_t cap, const char *v)
{
    if (strlen(v) >= cap)
        return -ENAMETOOLONG;
    strcpy(dst, v);
    return 0;
}

/* Applies one "name" / "value" pair. Returns 0 or -EINVAL. */
static int set_opt(struct bench_opts *o, const char *name, const char *v)
{
    long l;
    if (!strcmp(name, "nsqd-tcp-address"))
        return copy_str(o->addr, sizeof(o->addr), v);
    if (!strcmp(name, "topic"))
        return copy_str(o->topic, sizeof(o->topic), v);
    if (!strcmp(name, "channel"))
        return copy_str(o->channel, sizeof(o->channel), v);
    if (!strcmp(name, "deadline"))
        return copy_str(o->deadline, sizeof(o->deadline), v);
    if (!strcmp(name, "label"))
        return copy_str(o->label, sizeof(o->label), v);
    if (!strcmp(name, "runfor"))
        return parse_duration(v, &o->runfor_ns);
    if (!strcmp(name, "rate")) {
        char *end;
        o->rate = strtod(v, &end);
        return (*v && !*end && o->rate >= 0) ? 0 : -EINVAL;
    }
    if (!strcmp(name, "count")) {
        char *end;
        o->count = strtoll(v, &end, 10);
        return (*v && !*end && o->count >= 0) ? 0 : -EINVAL;
    }
    if (!strcmp(name, "sink-format")) {
        if (strcmp(v, "mpub") && strcmp(v, "message"))
            return -EINVAL;
        o->sink_message = !strcmp(v, "message");
        return 0;
    }
    if (parse_long(v, &l) < 0)
        return -EINVAL;
    if (!strcmp(name, "size"))
        o->size = l;
    else if (!strcmp(name, "batch-size"))
        o->batch = l;
    else if (!strcmp(name, "rdy"))
        o->rdy = l;
    else if (!strcmp(name, "writers"))
        o->writers = l;
    else if (!strcmp(name, "readers"))
        o->readers = l;
    else if (!strcmp(name, "pipeline"))
        o->pipeline = l;
    else if (!strcmp(name, "nsqd-pid"))
        o->nsqd_pid = l;
    else
        return -EINVAL;
    return 0;
}

static int parse_args(struct bench_opts *o, int argc, char **argv)
{
    *o = (struct bench_opts){.size = 200,
                             .batch = 200,
                             .runfor_ns = 10 * NSQ_NS_PER_SEC,
                             .rdy = 2500,
                             .writers = 1,
                             .readers = 1,
                             .pipeline = 1};
    strcpy(o->addr, "127.0.0.1:4150");
    strcpy(o->topic, "sub_bench");
    strcpy(o->channel, "ch");
    if (argc < 2) {
        usage();
        return -EINVAL;
    }
    if (!strcmp(argv[1], "writer"))
        o->mode = MODE_WRITER;
    else if (!strcmp(argv[1], "reader"))
        o->mode = MODE_READER;
    else if (!strcmp(argv[1], "pubsub"))
        o->mode = MODE_PUBSUB;
    else if (!strcmp(argv[1], "sink"))
        o->mode = MODE_SINK;
    else {
        usage();
        return -EINVAL;
    }
    strcpy(o->label, argv[1]);
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-') {
            fprintf(stderr, "unexpected argument %s\n", a);
            return -EINVAL;
        }
        a += (a[1] == '-') ? 2 : 1;
        if (!strcmp(a, "h") || !strcmp(a, "help")) {
            usage();
            return 1;
        }
        char name[64];
        const char *eq = strchr(a, '=');
        const char *val;
        size_t nl = eq ? (size_t)(eq - a) : strlen(a);
        if (nl >= sizeof(name)) {
            fprintf(stderr, "flag provided but not defined: -%s\n", a);
            return -EINVAL;
        }
        memcpy(name, a, nl);
        name[nl] = '\0';
        if (eq) {
            val = eq + 1;
        } else {
            if (i + 1 >= argc) {
                fprintf(stderr, "flag needs an argument: -%s\n", name);
                return -EINVAL;
            }
            val = argv[++i];
        }
        if (set_opt(o, name, val) < 0) {
            fprintf(stderr, "invalid value \"%s\" for flag -%s\n", val, name);
            return -EINVAL;
        }
    }
    if (o->size < 1 || o->batch < 1 || o->pipeline < 1 || o->writers < 1 || o->readers < 1 ||
        o->writers > BENCH_MAX_CONNS || o->readers > BENCH_MAX_CONNS) {
        fprintf(stderr, "--size, --batch-size, --pipeline, --writers and --readers must be 1..%d\n",
                BENCH_MAX_CONNS);
        return -EINVAL;
    }
    return 0;
}

/* ---- shared run state ---- */

struct bench {
    struct bench_opts o;
    atomic_bool stop;
    atomic_llong reserved; /* messages writers have claimed for sending (bounds --count) */
    atomic_llong written;  /* messages acknowledged (writer) or written (sink) */
    atomic_llong received; /* messages received (reader) */
    atomic_int failed;
    int64_t start_ns;     /* monotonic */
    atomic_llong end_ns;  /* set once, by whoever ends the run first */
    pthread_mutex_t lock; /* guards lat */
    struct hist lat;
    int sink_listen_fd;
};

struct worker {
    struct bench *b;
    int index;
    pthread_t thread;
};

static void bench_fail(struct bench *b, const char *what, const char *detail)
{
    fprintf(stderr, "nsq_bench: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    atomic_store(&b->failed, 1);
    atomic_store(&b->stop, true);
}

/* Claims the next batch for a writer; false once --count messages have been claimed. */
static bool claim_batch(struct bench *b)
{
    if (b->o.count <= 0)
        return true;
    long long before = atomic_fetch_add(&b->reserved, b->o.batch);
    return before < b->o.count;
}

/* Ends the run and records the end time, once. */
static void bench_finish(struct bench *b)
{
    long long zero = 0;
    atomic_compare_exchange_strong(&b->end_ns, &zero, (long long)nsq_mono_ns());
    atomic_store(&b->stop, true);
}

static bool count_reached(struct bench *b, long long n)
{
    return b->o.count > 0 && n >= b->o.count;
}

static int dial(const char *addr)
{
    char host[256], port[16];
    int p;
    if (nsq_split_host_port(addr, host, sizeof(host), &p) < 0)
        return -EINVAL;
    snprintf(port, sizeof(port), "%d", p);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res, *ai;
    if (getaddrinfo(host[0] ? host : "127.0.0.1", port, &hints, &res) != 0)
        return -ENOENT;
    int fd = -ECONNREFUSED;
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        close(fd);
        fd = -errno;
    }
    freeaddrinfo(res);
    if (fd < 0)
        return fd;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct timeval tv = {.tv_sec = 0, .tv_usec = BENCH_POLL_MS * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

static int write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* A blocking frame reader over one large buffer: frames are parsed in place. */
struct reader_buf {
    uint8_t *data;
    size_t start, end, cap;
};

/* Reads more bytes. Returns >0 bytes read, 0 on a poll timeout (caller checks stop), <0 error or
   -ECONNRESET on EOF. */
static ssize_t rb_fill(int fd, struct reader_buf *rb)
{
    if (rb->start > 0 && (rb->end == rb->cap || rb->start == rb->end)) {
        memmove(rb->data, rb->data + rb->start, rb->end - rb->start);
        rb->end -= rb->start;
        rb->start = 0;
    }
    if (rb->end == rb->cap)
        return -EMSGSIZE;
    ssize_t n = recv(fd, rb->data + rb->end, rb->cap - rb->end, 0);
    if (n == 0)
        return -ECONNRESET;
    if (n < 0)
        return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -errno;
    rb->end += (size_t)n;
    return n;
}

/* Returns 1 and the frame (type, data, len) if one is complete at the head, 0 if not, <0 if bad. */
static int rb_frame(struct reader_buf *rb, int32_t *type, const uint8_t **data, uint32_t *len)
{
    size_t have = rb->end - rb->start;
    if (have < NSQ_FRAME_HEADER_LEN)
        return 0;
    const uint8_t *p = rb->data + rb->start;
    uint32_t size = nsq_get_be32(p);
    if (size < NSQ_FRAME_TYPE_LEN || size > BENCH_MAX_FRAME)
        return -EBADMSG;
    if (have < NSQ_FRAME_SIZE_LEN + (size_t)size)
        return 0;
    *type = (int32_t)nsq_get_be32(p + NSQ_FRAME_SIZE_LEN);
    *data = p + NSQ_FRAME_HEADER_LEN;
    *len = size - NSQ_FRAME_TYPE_LEN;
    rb->start += NSQ_FRAME_SIZE_LEN + size;
    return 1;
}

static int rb_init(struct reader_buf *rb)
{
    rb->cap = BENCH_READ_BUF;
    rb->start = rb->end = 0;
    rb->data = malloc(rb->cap);
    return rb->data ? 0 : -ENOMEM;
}

/* ---- writer ---- */

/* Builds "MPUB <topic>\n"[body size][count]([len][body])*; *body_offs receives the offset of each
   body (for the embedded send time). Caller frees the buffer and the offsets. */
static uint8_t *build_mpub(const struct bench_opts *o, size_t *len, size_t **body_offs)
{
    size_t line = strlen("MPUB ") + strlen(o->topic) + 1;
    size_t per = 4 + (size_t)o->size;
    size_t body = 4 + per * (size_t)o->batch;
    uint8_t *buf = malloc(line + 4 + body);
    size_t *offs = calloc((size_t)o->batch, sizeof(*offs));
    if (!buf || !offs) {
        free(buf);
        free(offs);
        return NULL;
    }
    size_t at = (size_t)sprintf((char *)buf, "MPUB %s\n", o->topic);
    nsq_put_be32(buf + at, (uint32_t)body);
    nsq_put_be32(buf + at + 4, (uint32_t)o->batch);
    at += 8;
    for (long i = 0; i < o->batch; i++) {
        nsq_put_be32(buf + at, (uint32_t)o->size);
        offs[i] = at + 4;
        memset(buf + at + 4, 'a' + (int)(i % 26), (size_t)o->size);
        at += per;
    }
    *len = at;
    *body_offs = offs;
    return buf;
}

/* Builds batch message frames as nsqd would send them (sink --sink-format=message). */
static uint8_t *build_messages(const struct bench_opts *o, size_t *len, size_t **body_offs)
{
    size_t per = NSQ_FRAME_HEADER_LEN + NSQ_MSG_HEADER_LEN + (size_t)o->size;
    uint8_t *buf = malloc(per * (size_t)o->batch);
    size_t *offs = calloc((size_t)o->batch, sizeof(*offs));
    if (!buf || !offs) {
        free(buf);
        free(offs);
        return NULL;
    }
    for (long i = 0; i < o->batch; i++) {
        uint8_t *p = buf + per * (size_t)i;
        char id[NSQ_MSG_ID_LEN];
        memset(id, '0', sizeof(id));
        nsq_frame_header(p, NSQ_FRAME_MESSAGE, NSQ_MSG_HEADER_LEN + (size_t)o->size);
        nsq_message_encode_header(p + NSQ_FRAME_HEADER_LEN, id, nsq_now_ns(), 1);
        offs[i] = per * (size_t)i + NSQ_FRAME_HEADER_LEN + NSQ_MSG_HEADER_LEN;
        memset(buf + offs[i], 'a' + (int)(i % 26), (size_t)o->size);
    }
    *len = per * (size_t)o->batch;
    *body_offs = offs;
    return buf;
}

static void stamp_bodies(const struct bench_opts *o, uint8_t *buf, const size_t *offs)
{
    if (o->size < BENCH_TS_LEN)
        return;
    uint64_t now = (uint64_t)nsq_mono_ns();
    for (long i = 0; i < o->batch; i++)
        nsq_put_be64(buf + offs[i], now);
}

/* Sleeps until the pacing schedule allows batch number `sent` (rate = messages/s per writer). */
static void pace(struct bench *b, double rate, long long sent_msgs)
{
    if (rate <= 0)
        return;
    int64_t due = b->start_ns + (int64_t)((double)sent_msgs / rate * 1e9);
    int64_t now = nsq_mono_ns();
    if (due > now) {
        struct timespec ts = {.tv_sec = (due - now) / NSQ_NS_PER_SEC,
                              .tv_nsec = (due - now) % NSQ_NS_PER_SEC};
        nanosleep(&ts, NULL);
    }
}

static void *writer_main(void *arg)
{
    struct worker *w = arg;
    struct bench *b = w->b;
    const struct bench_opts *o = &b->o;
    size_t len, *offs = NULL;
    struct reader_buf rb = {0};
    uint8_t *buf = build_mpub(o, &len, &offs);
    double rate = o->rate / (double)o->writers;
    long long sent = 0; /* messages sent by this writer */
    long outstanding = 0;
    bool stopping = false;
    int fd = -1;

    if (!buf || rb_init(&rb) < 0) {
        bench_fail(b, "out of memory", NULL);
        goto out;
    }
    fd = dial(o->addr);
    if (fd < 0) {
        bench_fail(b, "connect failed", strerror(-fd));
        goto out;
    }
    if (write_all(fd, BENCH_MAGIC, 4) < 0) {
        bench_fail(b, "write failed", strerror(errno));
        goto out;
    }
    for (;;) {
        if (!stopping)
            stopping = atomic_load(&b->stop) || nsq_mono_ns() - b->start_ns >= o->runfor_ns;
        while (!stopping && outstanding < o->pipeline) {
            if (!claim_batch(b)) {
                stopping = true;
                break;
            }
            pace(b, rate, sent);
            stamp_bodies(o, buf, offs);
            int rc = write_all(fd, buf, len);
            if (rc < 0) {
                bench_fail(b, "write failed", strerror(-rc));
                goto out;
            }
            outstanding++;
            sent += o->batch;
            if (rate > 0)
                break; /* re-check the clock between paced batches */
        }
        if (outstanding == 0)
            break;
        int32_t type;
        const uint8_t *data;
        uint32_t dlen;
        int fr;
        while ((fr = rb_frame(&rb, &type, &data, &dlen)) == 1) {
            if (type == NSQ_FRAME_ERROR) {
                char msg[256];
                snprintf(msg, sizeof(msg), "%.*s", (int)dlen, (const char *)data);
                bench_fail(b, "nsqd error", msg);
                goto out;
            }
            if (type == NSQ_FRAME_RESPONSE && dlen == strlen(BENCH_HEARTBEAT) &&
                !memcmp(data, BENCH_HEARTBEAT, dlen)) {
                write_all(fd, "NOP\n", 4);
                continue;
            }
            outstanding--;
            atomic_fetch_add(&b->written, o->batch);
        }
        if (fr < 0) {
            bench_fail(b, "bad frame from nsqd", NULL);
            goto out;
        }
        if (outstanding == o->pipeline || stopping || rate > 0) {
            if (outstanding == 0)
                continue;
            ssize_t n = rb_fill(fd, &rb);
            if (n < 0) {
                bench_fail(b, "read failed", strerror((int)-n));
                goto out;
            }
            if (n == 0 && stopping &&
                nsq_mono_ns() - b->start_ns > o->runfor_ns + 10 * NSQ_NS_PER_SEC) {
                bench_fail(b, "timed out waiting for OK", NULL);
                goto out;
            }
        }
    }
out:
    if (fd >= 0)
        close(fd);
    free(buf);
    free(offs);
    free(rb.data);
    return NULL;
}

/* ---- reader ---- */

static void *reader_main(void *arg)
{
    struct worker *w = arg;
    struct bench *b = w->b;
    const struct bench_opts *o = &b->o;
    struct reader_buf rb = {0};
    struct hist *lat = calloc(1, sizeof(*lat));
    uint8_t *out = NULL;
    size_t out_cap = 0, out_len = 0;
    char line[512];
    int fd = -1;

    if (!lat || rb_init(&rb) < 0) {
        bench_fail(b, "out of memory", NULL);
        goto out;
    }
    /* At most one read buffer's worth of messages is answered per round. */
    out_cap =
            (BENCH_READ_BUF / (NSQ_FRAME_HEADER_LEN + NSQ_MSG_HEADER_LEN + 1) + 1) * BENCH_FIN_LEN +
            64;
    out = malloc(out_cap);
    if (!out) {
        bench_fail(b, "out of memory", NULL);
        goto out;
    }
    fd = dial(o->addr);
    if (fd < 0) {
        bench_fail(b, "connect failed", strerror(-fd));
        goto out;
    }
    int n = snprintf(line, sizeof(line), "%sSUB %s %s\nRDY %ld\n", BENCH_MAGIC, o->topic,
                     o->channel, o->rdy);
    if (write_all(fd, line, (size_t)n) < 0) {
        bench_fail(b, "write failed", strerror(errno));
        goto out;
    }
    while (!atomic_load(&b->stop)) {
        ssize_t got = rb_fill(fd, &rb);
        if (got < 0) {
            bench_fail(b, "read failed", strerror((int)-got));
            goto out;
        }
        int64_t now = nsq_mono_ns();
        if (o->mode == MODE_READER && now - b->start_ns >= o->runfor_ns) {
            bench_finish(b);
            break;
        }
        int32_t type;
        const uint8_t *data;
        uint32_t dlen;
        int fr;
        long long msgs = 0;
        out_len = 0;
        while ((fr = rb_frame(&rb, &type, &data, &dlen)) == 1) {
            if (type == NSQ_FRAME_MESSAGE) {
                struct nsq_message_view m;
                if (nsq_message_decode(data, dlen, &m) < 0) {
                    bench_fail(b, "bad message frame", NULL);
                    goto out;
                }
                memcpy(out + out_len, "FIN ", 4);
                memcpy(out + out_len + 4, m.id, NSQ_MSG_ID_LEN);
                out[out_len + BENCH_FIN_LEN - 1] = '\n';
                out_len += BENCH_FIN_LEN;
                if (o->mode == MODE_PUBSUB && m.body_len >= BENCH_TS_LEN) {
                    int64_t sent = (int64_t)nsq_get_be64(m.body);
                    hist_add(lat, now > sent ? (uint64_t)(now - sent) : 0);
                }
                msgs++;
            } else if (type == NSQ_FRAME_ERROR) {
                char msg[256];
                snprintf(msg, sizeof(msg), "%.*s", (int)dlen, (const char *)data);
                bench_fail(b, "nsqd error", msg);
                goto out;
            } else if (dlen == strlen(BENCH_HEARTBEAT) && !memcmp(data, BENCH_HEARTBEAT, dlen)) {
                memcpy(out + out_len, "NOP\n", 4);
                out_len += 4;
            }
        }
        if (fr < 0) {
            bench_fail(b, "bad frame from nsqd", NULL);
            goto out;
        }
        if (out_len > 0 && write_all(fd, out, out_len) < 0) {
            bench_fail(b, "write failed", strerror(errno));
            goto out;
        }
        if (msgs > 0) {
            long long total = atomic_fetch_add(&b->received, msgs) + msgs;
            if (o->mode == MODE_READER && count_reached(b, total))
                bench_finish(b);
        }
    }
out:
    if (fd >= 0)
        close(fd);
    if (lat) {
        pthread_mutex_lock(&b->lock);
        hist_merge(&b->lat, lat);
        pthread_mutex_unlock(&b->lock);
    }
    free(lat);
    free(out);
    free(rb.data);
    return NULL;
}

/* ---- sink: the loopback limit ---- */

static void *sink_drain_main(void *arg)
{
    struct worker *w = arg;
    struct bench *b = w->b;
    uint8_t *buf = malloc(BENCH_READ_BUF);
    int fd = accept(b->sink_listen_fd, NULL, NULL);
    if (fd < 0 || !buf) {
        bench_fail(b, "sink accept failed", strerror(errno));
    } else {
        while (recv(fd, buf, BENCH_READ_BUF, 0) > 0)
            ;
    }
    if (fd >= 0)
        close(fd);
    free(buf);
    return NULL;
}

static void *sink_writer_main(void *arg)
{
    struct worker *w = arg;
    struct bench *b = w->b;
    const struct bench_opts *o = &b->o;
    size_t len, *offs = NULL;
    uint8_t *buf = o->sink_message ? build_messages(o, &len, &offs) : build_mpub(o, &len, &offs);
    double rate = o->rate / (double)o->writers;
    long long sent = 0;
    int fd = dial(b->o.addr);
    if (!buf || fd < 0) {
        bench_fail(b, "sink connect failed", fd < 0 ? strerror(-fd) : NULL);
        goto out;
    }
    while (!atomic_load(&b->stop) && nsq_mono_ns() - b->start_ns < o->runfor_ns && claim_batch(b)) {
        pace(b, rate, sent);
        stamp_bodies(o, buf, offs);
        if (write_all(fd, buf, len) < 0) {
            bench_fail(b, "sink write failed", strerror(errno));
            break;
        }
        sent += o->batch;
        atomic_fetch_add(&b->written, o->batch);
    }
out:
    if (fd >= 0)
        close(fd);
    free(buf);
    free(offs);
    return NULL;
}

/* ---- reporting ---- */

/* Peak RSS of pid in KiB (VmHWM), or -1. */
static long read_hwm_kb(long pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%ld/status", pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
            break;
    }
    fclose(f);
    return kb;
}

static void wait_deadline(const char *deadline)
{
    struct tm tm = {0};
    if (!deadline[0])
        return;
    if (!strptime(deadline, "%Y-%m-%d %H:%M:%S", &tm)) {
        fprintf(stderr, "nsq_bench: bad --deadline %s\n", deadline);
        exit(2);
    }
    tm.tm_isdst = -1;
    time_t t = mktime(&tm);
    while (time(NULL) < t)
        usleep(1000);
}

static void report(struct bench *b)
{
    const struct bench_opts *o = &b->o;
    double secs = (double)(atomic_load(&b->end_ns) - b->start_ns) / 1e9;
    long long n = (o->mode == MODE_READER || o->mode == MODE_PUBSUB) ? atomic_load(&b->received)
                                                                     : atomic_load(&b->written);
    long long pub = atomic_load(&b->written);
    double rate = secs > 0 ? (double)n / secs : 0;
    double mbs = secs > 0 ? (double)n * (double)o->size / BENCH_MB / secs : 0;
    double us_op = n > 0 ? secs * 1e6 / (double)n : 0;
    printf("[%s] duration: %.3fs - %.3fmb/s - %.3fops/s - %.3fus/op\n", o->label, secs, mbs, rate,
           us_op);
    printf("RESULT label=%s mode=%s msgs=%lld published=%lld secs=%.6f msgs_per_sec=%.1f "
           "mb_per_sec=%.3f",
           o->label,
           o->mode == MODE_WRITER   ? "writer"
           : o->mode == MODE_READER ? "reader"
           : o->mode == MODE_PUBSUB ? "pubsub"
                                    : "sink",
           n, pub, secs, rate, mbs);
    if (b->lat.count > 0)
        printf(" lat_count=%" PRIu64 " p50_us=%.1f p99_us=%.1f p999_us=%.1f", b->lat.count,
               hist_quantile(&b->lat, 0.50) / 1e3, hist_quantile(&b->lat, 0.99) / 1e3,
               hist_quantile(&b->lat, 0.999) / 1e3);
    long kb = o->nsqd_pid > 0 ? read_hwm_kb(o->nsqd_pid) : -1;
    if (o->nsqd_pid > 0)
        printf(" nsqd_hwm_kb=%ld", kb);
    printf("\n");
    if (b->lat.count > 0)
        printf("[%s] latency: p50 %.1fus p99 %.1fus p99.9 %.1fus (%" PRIu64 " samples)\n", o->label,
               hist_quantile(&b->lat, 0.50) / 1e3, hist_quantile(&b->lat, 0.99) / 1e3,
               hist_quantile(&b->lat, 0.999) / 1e3, b->lat.count);
    if (kb >= 0)
        printf("[%s] nsqd peak RSS: %ld kB\n", o->label, kb);
    fflush(stdout);
}

/* ---- main ---- */

static int start_workers(struct bench *b, struct worker *ws, int n, int first, void *(*fn)(void *))
{
    for (int i = 0; i < n; i++) {
        ws[i] = (struct worker){.b = b, .index = first + i};
        if (pthread_create(&ws[i].thread, NULL, fn, &ws[i]) != 0)
            return -errno;
    }
    return 0;
}

static void join_workers(struct worker *ws, int n)
{
    for (int i = 0; i < n; i++)
        pthread_join(ws[i].thread, NULL);
}

/* A blocking listener on an ephemeral loopback port for the sink's drain threads. */
static int setup_sink(struct bench *b)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, BENCH_MAX_CONNS) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    b->sink_listen_fd = fd;
    snprintf(b->o.addr, sizeof(b->o.addr), "127.0.0.1:%d", ntohs(sa.sin_port));
    return 0;
}

int main(int argc, char **argv)
{
    static struct bench b;
    int rc = parse_args(&b.o, argc, argv);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    pthread_mutex_init(&b.lock, NULL);
    struct worker *writers = calloc((size_t)b.o.writers, sizeof(*writers));
    struct worker *readers = calloc((size_t)b.o.readers, sizeof(*readers));
    if (!writers || !readers)
        return 1;
    if (b.o.mode == MODE_SINK && setup_sink(&b) < 0) {
        fprintf(stderr, "nsq_bench: cannot listen on loopback\n");
        return 1;
    }
    wait_deadline(b.o.deadline);
    b.start_ns = nsq_mono_ns();
    switch (b.o.mode) {
    case MODE_WRITER:
        rc = start_workers(&b, writers, (int)b.o.writers, 0, writer_main);
        break;
    case MODE_READER:
        rc = start_workers(&b, readers, (int)b.o.readers, 0, reader_main);
        break;
    case MODE_PUBSUB:
        rc = start_workers(&b, readers, (int)b.o.readers, 0, reader_main);
        if (rc == 0)
            rc = start_workers(&b, writers, (int)b.o.writers, 0, writer_main);
        break;
    case MODE_SINK:
        rc = start_workers(&b, readers, (int)b.o.writers, 0, sink_drain_main);
        if (rc == 0)
            rc = start_workers(&b, writers, (int)b.o.writers, 0, sink_writer_main);
        break;
    }
    if (rc < 0) {
        fprintf(stderr, "nsq_bench: cannot start threads\n");
        return 1;
    }
    if (b.o.mode == MODE_PUBSUB || b.o.mode == MODE_SINK) {
        join_workers(writers, (int)b.o.writers);
        if (b.o.mode == MODE_PUBSUB) {
            /* Let the readers catch up with what was published (bounded). */
            int64_t limit = nsq_mono_ns() + 10 * NSQ_NS_PER_SEC;
            while (!atomic_load(&b.failed) && atomic_load(&b.received) < atomic_load(&b.written) &&
                   nsq_mono_ns() < limit)
                usleep(1000);
        }
        bench_finish(&b);
        join_workers(readers, (int)(b.o.mode == MODE_SINK ? b.o.writers : b.o.readers));
    } else {
        join_workers(b.o.mode == MODE_WRITER ? writers : readers,
                     (int)(b.o.mode == MODE_WRITER ? b.o.writers : b.o.readers));
        bench_finish(&b);
    }
    report(&b);
    free(writers);
    free(readers);
    return atomic_load(&b.failed) ? 1 : 0;
}
