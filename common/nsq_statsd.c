/*
 * nsq_statsd: a connected UDP socket, one fill buffer and a FIFO of finished datagrams. Every
 * push builds a few hundred short lines, so the buffers are reused across lines and datagrams
 * are only allocated when closed.
 */
#include "nsq_statsd.h"
#include "nsq_net.h"

#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define STATSD_LINE_MAX 1024 /* longer names are truncated */

struct datagram {
    char *data;
    size_t len;
};

struct nsq_statsd {
    int fd;
    char *prefix;
    size_t packet_size;
    char *fill; /* datagram being filled, packet_size bytes */
    size_t fill_len;
    struct datagram *queue; /* ring of finished datagrams */
    size_t qhead, qlen, qcap;
};

struct nsq_statsd *nsq_statsd_new(const char *addr, const char *prefix, size_t packet_size)
{
    char host[NSQ_NET_ADDRSTRLEN], port[16];
    int p;
    if (nsq_split_host_port(addr, host, sizeof(host), &p) < 0) {
        errno = EINVAL;
        return NULL;
    }
    snprintf(port, sizeof(port), "%d", p);
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_flags = AI_NUMERICSERV;
    int rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    if (rc != 0) {
        errno = rc == EAI_SYSTEM ? errno : ENOENT;
        return NULL;
    }
    struct nsq_statsd *s = calloc(1, sizeof(*s));
    if (!s)
        goto err;
    s->fd = -1;
    s->packet_size = packet_size ? packet_size : NSQ_STATSD_DEFAULT_PACKET_SIZE;
    s->prefix = strdup(prefix ? prefix : "");
    s->fill = malloc(s->packet_size);
    if (!s->prefix || !s->fill)
        goto err;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        s->fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (s->fd < 0)
            continue;
        if (connect(s->fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        close(s->fd);
        s->fd = -1;
    }
    if (s->fd < 0)
        goto err;
    freeaddrinfo(res);
    return s;
err:;
    int e = errno ? errno : ENOMEM;
    freeaddrinfo(res);
    nsq_statsd_free(s);
    errno = e;
    return NULL;
}

void nsq_statsd_free(struct nsq_statsd *s)
{
    if (!s)
        return;
    while (s->qlen) {
        free(s->queue[s->qhead].data);
        s->qhead = (s->qhead + 1) % s->qcap;
        s->qlen--;
    }
    free(s->queue);
    free(s->fill);
    free(s->prefix);
    if (s->fd >= 0)
        close(s->fd);
    free(s);
}

static int enqueue(struct nsq_statsd *s, const char *data, size_t len)
{
    if (s->qlen == s->qcap) {
        size_t nc = s->qcap ? s->qcap * 2 : 16;
        struct datagram *nq = malloc(nc * sizeof(*nq));
        if (!nq)
            return -ENOMEM;
        for (size_t i = 0; i < s->qlen; i++)
            nq[i] = s->queue[(s->qhead + i) % s->qcap];
        free(s->queue);
        s->queue = nq;
        s->qcap = nc;
        s->qhead = 0;
    }
    char *copy = malloc(len);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, data, len);
    s->queue[(s->qhead + s->qlen) % s->qcap] = (struct datagram){copy, len};
    s->qlen++;
    return 0;
}

void nsq_statsd_finish(struct nsq_statsd *s)
{
    if (s->fill_len == 0)
        return;
    enqueue(s, s->fill, s->fill_len);
    s->fill_len = 0;
}

static void add_line(struct nsq_statsd *s, const char *name, int64_t v, const char *type)
{
    char line[STATSD_LINE_MAX];
    int n = snprintf(line, sizeof(line), "%s%s:%" PRId64 "|%s\n", s->prefix, name, v, type);
    if (n < 0)
        return;
    size_t len = (size_t)n;
    if (len >= sizeof(line)) {
        len = sizeof(line) - 1;
        line[len - 1] = '\n';
    }
    if (s->fill_len + len > s->packet_size)
        nsq_statsd_finish(s);
    if (len > s->packet_size) {
        enqueue(s, line, len); /* too long for any datagram: alone */
        return;
    }
    memcpy(s->fill + s->fill_len, line, len);
    s->fill_len += len;
}

void nsq_statsd_gauge(struct nsq_statsd *s, const char *name, int64_t v)
{
    add_line(s, name, v, "g");
}

void nsq_statsd_counter(struct nsq_statsd *s, const char *name, int64_t delta)
{
    add_line(s, name, delta, "c");
}

size_t nsq_statsd_pending(const struct nsq_statsd *s)
{
    return s->qlen;
}

int nsq_statsd_send_one(struct nsq_statsd *s)
{
    if (s->qlen == 0)
        return 0;
    struct datagram d = s->queue[s->qhead];
    s->qhead = (s->qhead + 1) % s->qcap;
    s->qlen--;
    ssize_t w;
    do {
        w = send(s->fd, d.data, d.len, MSG_NOSIGNAL);
    } while (w < 0 && errno == EINTR);
    int rc = w < 0 ? -errno : 1;
    free(d.data);
    return rc;
}

int nsq_statsd_flush(struct nsq_statsd *s)
{
    int first = 0;
    nsq_statsd_finish(s);
    while (s->qlen) {
        int rc = nsq_statsd_send_one(s);
        if (rc < 0 && first == 0)
            first = rc;
    }
    return first;
}

int nsq_statsd_build_prefix(const char *tmpl, const char *broadcast_address, int http_port,
                            char *out, size_t len)
{
    char key[NSQ_NET_ADDRSTRLEN + 16];
    if (nsq_join_host_port(broadcast_address, http_port, key, sizeof(key)) < 0)
        return -ENAMETOOLONG;
    for (char *c = key; *c; c++)
        if (*c == '.' || *c == ':')
            *c = '_';
    size_t w = 0, kl = strlen(key);
    if (len == 0)
        return -ENAMETOOLONG;
    for (const char *p = tmpl; *p; p++) {
        if (p[0] == '%' && p[1] == 's') {
            if (w + kl >= len)
                return -ENAMETOOLONG;
            memcpy(out + w, key, kl);
            w += kl;
            p++;
            continue;
        }
        if (w + 1 >= len)
            return -ENAMETOOLONG;
        out[w++] = *p;
    }
    if (w > 0 && out[w - 1] != '.') {
        if (w + 1 >= len)
            return -ENAMETOOLONG;
        out[w++] = '.';
    }
    out[w] = '\0';
    return 0;
}
