/* nsq_version: the --version banner shared by every program. */
#include "nsq_version.h"

#include <stdio.h>

const char *nsq_version_string(const char *program)
{
    static char banner[160];
    snprintf(banner, sizeof(banner), "%s v%s (built w/%s)", program, NSQ_VERSION,
#if defined(__clang__)
             "clang " __clang_version__
#elif defined(__GNUC__)
             "gcc " __VERSION__
#else
             "c11"
#endif
    );
    return banner;
}
