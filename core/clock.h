/* Clocks every module reads: CLOCK_MONOTONIC for durations and deadlines
 * (never goes back, unaffected by settimeofday).
 * Invariant: header-only; clock_gettime(CLOCK_MONOTONIC) is a vDSO call on
 * Linux, no syscall.
 * SPDX-License-Identifier: MIT */
#ifndef CORE_CLOCK_H
#define CORE_CLOCK_H

#include <stdint.h>
#include <time.h>

/** CLOCK_MONOTONIC in nanoseconds. */
static inline uint64_t core_mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/** CLOCK_MONOTONIC in milliseconds. */
static inline uint64_t core_mono_ms(void)
{
    return core_mono_ns() / 1000000u;
}

#endif
