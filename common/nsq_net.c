/*
 * nsq_net: socket setup for the daemons' listeners. Name resolution happens here, once, at
 * startup (getaddrinfo blocks), never on the event loop's hot path.
 */
#include "nsq_net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define NSQ_PORT_MAX 65535

int nsq_split_host_port(const char *addr, char *host, size_t hostlen, int *port)
{
    if (!addr)
        return -EINVAL;
    const char *colon = strrchr(addr, ':');
    if (!colon)
        return -EINVAL;
    const char *hs = addr, *he = colon;
    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        if (!close || close + 1 != colon)
            return -EINVAL;
        hs = addr + 1;
        he = close;
    } else {
        for (const char *p = addr; p < colon; p++)
            if (*p == ':' || *p == '[' || *p == ']')
                return -EINVAL; /* too many colons / unexpected bracket */
    }
    if (memchr(colon + 1, '[', strlen(colon + 1)) || memchr(colon + 1, ']', strlen(colon + 1)))
        return -EINVAL;
    const char *ps = colon + 1;
    if (*ps == '\0')
        return -EINVAL;
    long p = 0;
    for (const char *c = ps; *c; c++) {
        if (*c < '0' || *c > '9')
            return -EINVAL;
        p = p * 10 + (*c - '0');
        if (p > NSQ_PORT_MAX)
            return -EINVAL;
    }
    size_t hl = (size_t)(he - hs);
    if (host) {
        if (hl + 1 > hostlen)
            return -ENAMETOOLONG;
        memcpy(host, hs, hl);
        host[hl] = '\0';
    }
    if (port)
        *port = (int)p;
    return 0;
}

int nsq_join_host_port(const char *host, int port, char *out, size_t outlen)
{
    int n = strchr(host, ':') ? snprintf(out, outlen, "[%s]:%d", host, port)
                              : snprintf(out, outlen, "%s:%d", host, port);
    return (n < 0 || (size_t)n >= outlen) ? -ENAMETOOLONG : 0;
}

static int sockaddr_string(const struct sockaddr_storage *ss, socklen_t sl, char *out,
                           size_t outlen)
{
    char ip[INET6_ADDRSTRLEN];
    switch (ss->ss_family) {
    case AF_INET: {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
        return nsq_join_host_port(ip, ntohs(sin->sin_port), out, outlen);
    }
    case AF_INET6: {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
        if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr))
            inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12], ip, sizeof(ip));
        else
            inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
        return nsq_join_host_port(ip, ntohs(sin6->sin6_port), out, outlen);
    }
    case AF_UNIX: {
        const struct sockaddr_un *sun = (const struct sockaddr_un *)ss;
        size_t max = sl > offsetof(struct sockaddr_un, sun_path)
                             ? sl - offsetof(struct sockaddr_un, sun_path)
                             : 0;
        int n = snprintf(out, outlen, "%.*s", (int)strnlen(sun->sun_path, max), sun->sun_path);
        return (n < 0 || (size_t)n >= outlen) ? -ENAMETOOLONG : 0;
    }
    default:
        return -EAFNOSUPPORT;
    }
}

int nsq_sock_name(int fd, char *out, size_t outlen)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
        return -errno;
    return sockaddr_string(&ss, sl, out, outlen);
}

int nsq_peer_name(int fd, char *out, size_t outlen)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0)
        return -errno;
    return sockaddr_string(&ss, sl, out, outlen);
}

static int bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
        return -errno;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
}

static int listen_on(const struct sockaddr *sa, socklen_t sl, int family, int backlog, int v6only)
{
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    if (family != AF_UNIX)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only));
    if (bind(fd, sa, sl) < 0 || listen(fd, backlog) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    return fd;
}

static int listen_unix(const char *path, int backlog)
{
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    size_t pl = strlen(path);
    if (pl == 0 || pl >= sizeof(sun.sun_path))
        return -ENAMETOOLONG;
    memcpy(sun.sun_path, path, pl);
    return listen_on((struct sockaddr *)&sun,
                     (socklen_t)(offsetof(struct sockaddr_un, sun_path) + pl + 1), AF_UNIX, backlog,
                     0);
}

int nsq_listen(const char *addr, int backlog, int *port_out)
{
    char host[NSQ_NET_ADDRSTRLEN];
    int port;
    if (port_out)
        *port_out = -1;
    if (!addr || !*addr)
        return -EINVAL;
    if (backlog <= 0)
        backlog = NSQ_NET_DEFAULT_BACKLOG;
    if (nsq_split_host_port(addr, host, sizeof(host), &port) < 0) {
        if (strchr(addr, ':') && addr[0] != '/' && addr[0] != '.')
            return -EINVAL; /* looks like a broken host:port, not a path */
        return listen_unix(addr, backlog);
    }

    int fd;
    if (host[0] == '\0') {
        /* Every interface: a dual-stack IPv6 socket, or IPv4 where IPv6 is unavailable. */
        struct sockaddr_in6 sin6;
        memset(&sin6, 0, sizeof(sin6));
        sin6.sin6_family = AF_INET6;
        sin6.sin6_addr = in6addr_any;
        sin6.sin6_port = htons((uint16_t)port);
        fd = listen_on((struct sockaddr *)&sin6, sizeof(sin6), AF_INET6, backlog, 0);
        if (fd == -EAFNOSUPPORT || fd == -EADDRNOTAVAIL) {
            struct sockaddr_in sin;
            memset(&sin, 0, sizeof(sin));
            sin.sin_family = AF_INET;
            sin.sin_addr.s_addr = htonl(INADDR_ANY);
            sin.sin_port = htons((uint16_t)port);
            fd = listen_on((struct sockaddr *)&sin, sizeof(sin), AF_INET, backlog, 0);
        }
    } else {
        struct addrinfo hints, *res = NULL;
        memset(&hints, 0, sizeof(hints));
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
        char portstr[16];
        snprintf(portstr, sizeof(portstr), "%d", port);
        int rc = getaddrinfo(host, portstr, &hints, &res);
        if (rc != 0)
            return rc == EAI_SYSTEM ? -errno : -ENOENT;
        fd = -EADDRNOTAVAIL;
        for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
            fd = listen_on(ai->ai_addr, ai->ai_addrlen, ai->ai_family, backlog, 1);
            if (fd >= 0)
                break;
        }
        freeaddrinfo(res);
    }
    if (fd >= 0 && port_out)
        *port_out = bound_port(fd);
    return fd;
}

void nsq_hostname(char *buf, size_t len)
{
    if (len == 0)
        return;
    if (gethostname(buf, len) < 0)
        buf[0] = '\0';
    buf[len - 1] = '\0';
}
