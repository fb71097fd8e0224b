/* nsq_time: wall-clock and monotonic nanosecond clocks. */
#include "nsq_time.h"

#include <time.h>

static int64_t clock_ns(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * NSQ_NS_PER_SEC + ts.tv_nsec;
}

int64_t nsq_now_ns(void)
{
    return clock_ns(CLOCK_REALTIME);
}

int64_t nsq_mono_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}
