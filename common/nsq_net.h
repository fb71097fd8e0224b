/*
 * nsq_net: listening sockets and address strings with Go's net package conventions.
 *
 * An address that splits as "host:port" (Go's net.SplitHostPort: IPv6 hosts in brackets) is a TCP
 * address; anything else is a unix socket path. An empty host listens on every interface.
 */
#ifndef NSQ_NET_H
#define NSQ_NET_H

#include <stddef.h>

#define NSQ_NET_DEFAULT_BACKLOG 1024
/* Large enough for any "host:port" or unix path this module produces. */
#define NSQ_NET_ADDRSTRLEN 256

/* Returns a listening, non-blocking, close-on-exec fd and stores the bound port in *port_out (-1
   for a unix socket; port_out may be NULL), or -errno (-EINVAL for a malformed address, -ENOENT
   when a host name does not resolve). The caller owns the fd. A unix socket path that already
   exists is not removed (-EADDRINUSE), as upstream. */
int nsq_listen(const char *addr, int backlog, int *port_out);

/* Go's net.SplitHostPort: "h:p", "[v6]:p", ":p". host receives the host without brackets; *port the
   numeric port (0..65535). Returns 0, -EINVAL (malformed) or -ENAMETOOLONG. */
int nsq_split_host_port(const char *addr, char *host, size_t hostlen, int *port);

/* Go's net.JoinHostPort: brackets a host containing ':'. Returns 0 or -ENAMETOOLONG. */
int nsq_join_host_port(const char *host, int port, char *out, size_t outlen);

/* The local address of a bound socket as Go prints it ("127.0.0.1:4150", "[::]:4150", or the unix
   path). Returns 0 or -errno. */
int nsq_sock_name(int fd, char *out, size_t outlen);
/* The peer address of a connected socket, same format ("ip:port"). */
int nsq_peer_name(int fd, char *out, size_t outlen);

/* OS host name (gethostname), NUL-terminated; "" on failure. */
void nsq_hostname(char *buf, size_t len);

#endif
