/*
 * nsq_time: the two clocks every component uses. Wall-clock nanoseconds (message timestamps, GUIDs,
 * stats) and monotonic nanoseconds (timeouts, deadlines, durations that must not jump).
 */
#ifndef NSQ_TIME_H
#define NSQ_TIME_H

#include <stdint.h>

#define NSQ_NS_PER_SEC  1000000000LL
#define NSQ_NS_PER_MS   1000000LL
#define NSQ_NS_PER_USEC 1000LL

/* Unix time in nanoseconds (CLOCK_REALTIME). */
int64_t nsq_now_ns(void);

/* Monotonic time in nanoseconds (CLOCK_MONOTONIC); only differences are meaningful. */
int64_t nsq_mono_ns(void);

#endif
