/*
 * nsqlookupd entry point: parse the options, start the daemon, run until SIGINT/SIGTERM.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "nsq_log.h"
#include "nsq_options.h"
#include "nsq_systemd.h"
#include "nsq_version.h"
#include "nsqlookupd.h"

#define PROGRAM    "nsqlookupd"
#define EXIT_USAGE 2

int main(int argc, char **argv)
{
    struct nsqlookupd_options opts = {0};
    struct nsq_opt table[NSQLOOKUPD_NUM_OPTIONS];
    size_t n = nsqlookupd_options_table(&opts, table);
    char err[1024] = "";

    signal(SIGPIPE, SIG_IGN);
    int rc = nsq_options_parse(table, n, PROGRAM, argc, argv, err, sizeof(err));
    if (rc == NSQ_OPTIONS_EXIT) {
        nsq_options_free(table, n);
        return EXIT_SUCCESS;
    }
    if (rc == NSQ_OPTIONS_FLAG_ERROR) {
        fprintf(stderr, "%s\n", err);
        nsq_options_usage(table, n, PROGRAM, stderr);
        nsq_options_free(table, n);
        return EXIT_USAGE;
    }
    nsq_log_init(opts.log_prefix, (enum nsq_log_level)opts.log_level);
    if (rc != NSQ_OPTIONS_OK) {
        nsq_fatal("%s", err);
        nsq_options_free(table, n);
        return EXIT_FAILURE;
    }

    struct nsqlookupd *ld = nsqlookupd_new(&opts, err, sizeof(err));
    if (ld == NULL) {
        nsq_fatal("failed to instantiate nsqlookupd - %s", err);
        nsq_options_free(table, n);
        return EXIT_FAILURE;
    }
    nsq_info("%s", nsq_version_string(PROGRAM));
    nsq_systemd_notify_ready();
    rc = nsqlookupd_main(ld);
    nsqlookupd_free(ld);
    nsq_options_free(table, n);
    return rc == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
