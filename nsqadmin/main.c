/*
 * nsqadmin entry point: with flags only, the web server (upstream's behaviour); with a
 * subcommand word (topics, channels, nodes, stats, pause, ...), the command-line client (cli.c).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "nsq_log.h"
#include "nsq_options.h"
#include "nsq_systemd.h"
#include "nsq_version.h"
#include "nsqadmin.h"

#define PROGRAM    "nsqadmin"
#define EXIT_USAGE 2

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (cli_wanted(argc, argv))
        return cli_main(argc, argv);

    struct nsqadmin_options opts = {0};
    struct nsq_opt table[NSQADMIN_NUM_OPTIONS];
    size_t n = nsqadmin_options_table(&opts, table);
    char err[1024] = "";

    int rc = nsq_options_parse(table, n, PROGRAM, argc, argv, err, sizeof(err));
    if (rc == NSQ_OPTIONS_EXIT) {
        if (cli_help_requested(argc, argv))
            cli_usage(stderr);
        nsq_options_free(table, n);
        return EXIT_SUCCESS;
    }
    if (rc == NSQ_OPTIONS_FLAG_ERROR) {
        fprintf(stderr, "%s\n", err);
        nsq_options_usage(table, n, PROGRAM, stderr);
        nsq_options_free(table, n);
        return EXIT_USAGE;
    }
    nsq_log_init(opts.log_prefix, opts.log_level);
    if (rc != NSQ_OPTIONS_OK) {
        nsq_fatal("%s", err);
        nsq_options_free(table, n);
        return EXIT_FAILURE;
    }

    struct nsqadmin *a = nsqadmin_new(&opts, table, n, err, sizeof(err));
    if (a == NULL) {
        nsq_fatal("failed to instantiate nsqadmin - %s", err);
        nsq_options_free(table, n);
        return EXIT_FAILURE;
    }
    nsq_info("%s", nsq_version_string(PROGRAM));
    nsq_systemd_notify_ready();
    rc = nsqadmin_main(a);
    nsq_systemd_notify_stopping();
    nsqadmin_free(a);
    nsq_options_free(table, n);
    return rc == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
