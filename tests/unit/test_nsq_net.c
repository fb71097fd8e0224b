/* Unit tests for common/nsq_net.c: host:port splitting, TCP and unix-socket listeners. */
#include "nsq_net.h"

#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <arpa/inet.h>

START_TEST(test_split)
{
    char host[64];
    int port;
    ck_assert_int_eq(nsq_split_host_port("127.0.0.1:4150", host, sizeof(host), &port), 0);
    ck_assert_str_eq(host, "127.0.0.1");
    ck_assert_int_eq(port, 4150);
    ck_assert_int_eq(nsq_split_host_port(":4151", host, sizeof(host), &port), 0);
    ck_assert_str_eq(host, "");
    ck_assert_int_eq(port, 4151);
    ck_assert_int_eq(nsq_split_host_port("[::1]:80", host, sizeof(host), &port), 0);
    ck_assert_str_eq(host, "::1");
    ck_assert_int_eq(port, 80);
    ck_assert_int_eq(nsq_split_host_port("example.com:0", host, sizeof(host), &port), 0);
    ck_assert_str_eq(host, "example.com");
    ck_assert_int_eq(nsq_split_host_port("/tmp/nsqd.sock", host, sizeof(host), &port), -EINVAL);
    ck_assert_int_eq(nsq_split_host_port("::1:80", host, sizeof(host), &port), -EINVAL);
    ck_assert_int_eq(nsq_split_host_port("host:", host, sizeof(host), &port), -EINVAL);
    ck_assert_int_eq(nsq_split_host_port("host:99999", host, sizeof(host), &port), -EINVAL);
    ck_assert_int_eq(nsq_split_host_port("[::1:80", host, sizeof(host), &port), -EINVAL);
    ck_assert_int_eq(nsq_split_host_port("verylonghostname:1", host, 4, &port), -ENAMETOOLONG);

    char out[64];
    ck_assert_int_eq(nsq_join_host_port("::1", 4150, out, sizeof(out)), 0);
    ck_assert_str_eq(out, "[::1]:4150");
    ck_assert_int_eq(nsq_join_host_port("a.b", 1, out, sizeof(out)), 0);
    ck_assert_str_eq(out, "a.b:1");
}
END_TEST

START_TEST(test_listen_tcp)
{
    int port = 0;
    int fd = nsq_listen("127.0.0.1:0", 16, &port);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_gt(port, 0);
    char name[NSQ_NET_ADDRSTRLEN], expect[64];
    ck_assert_int_eq(nsq_sock_name(fd, name, sizeof(name)), 0);
    snprintf(expect, sizeof(expect), "127.0.0.1:%d", port);
    ck_assert_str_eq(name, expect);

    int c = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(c, (struct sockaddr *)&sin, sizeof(sin)), 0);
    char peer[NSQ_NET_ADDRSTRLEN];
    ck_assert_int_eq(nsq_peer_name(c, peer, sizeof(peer)), 0);
    ck_assert_str_eq(peer, expect);
    close(c);

    /* same port again fails with EADDRINUSE */
    snprintf(expect, sizeof(expect), "127.0.0.1:%d", port);
    ck_assert_int_eq(nsq_listen(expect, 16, NULL), -EADDRINUSE);
    close(fd);

    /* all interfaces */
    fd = nsq_listen(":0", 0, &port);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_gt(port, 0);
    close(fd);
    ck_assert_int_lt(nsq_listen("no.such.host.invalid:0", 16, &port), 0);
    ck_assert_int_eq(port, -1);
}
END_TEST

START_TEST(test_listen_unix)
{
    char dir[] = "/tmp/nsqnetXXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[96];
    snprintf(path, sizeof(path), "%s/nsqd.sock", dir);
    int port = 0;
    int fd = nsq_listen(path, 16, &port);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(port, -1);
    char name[NSQ_NET_ADDRSTRLEN];
    ck_assert_int_eq(nsq_sock_name(fd, name, sizeof(name)), 0);
    ck_assert_str_eq(name, path);

    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    ck_assert_int_eq(connect(c, (struct sockaddr *)&sun, sizeof(sun)), 0);
    close(c);
    ck_assert_int_eq(nsq_listen(path, 16, NULL), -EADDRINUSE);
    close(fd);
    unlink(path);
    rmdir(dir);
}
END_TEST

START_TEST(test_hostname)
{
    char h[256];
    nsq_hostname(h, sizeof(h));
    ck_assert_uint_gt(strlen(h), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("nsq_net");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_split);
    tcase_add_test(tc, test_listen_tcp);
    tcase_add_test(tc, test_listen_unix);
    tcase_add_test(tc, test_hostname);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
