/*
 * nsqd entry point: options, logging, daemon run.
 */
#include <stdio.h>
#include <stdlib.h>

#include "nsq_log.h"
#include "nsqd.h"
#include "options.h"

int main(int argc, char **argv)
{
    static struct nsqd_options opts;
    int rc = nsqd_options_parse(&opts, argc, argv);
    if (rc == 1)
        return 0;
    if (rc == -1)
        return 2;
    if (rc < 0)
        return 1;
    nsq_log_init(opts.log_prefix, (enum nsq_log_level)opts.log_level);
    char err[1024];
    struct nsqd *n = nsqd_new(&opts, err, sizeof(err));
    if (!n) {
        nsq_fatal("failed to instantiate nsqd - %s", err);
        nsqd_options_free(&opts);
        return 1;
    }
    int code = nsqd_main(n);
    nsqd_free(n);
    nsqd_options_free(&opts);
    return code;
}
