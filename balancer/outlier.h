/* Outlier detection (gRFC A50, Envoy's semantics), the arithmetic: each worker
 * counts the attempts that end at each endpoint of a cluster and says when
 * one should be ejected (consecutive failures, or a failure percentage over
 * an interval); the main thread ejects, for the base ejection time times the
 * number of ejections, within max_ejection_percent.
 * Invariant: I/O-free; a struct bal_outlier belongs to one worker.
 * SPDX-License-Identifier: MIT */
#ifndef BALANCER_OUTLIER_H
#define BALANCER_OUTLIER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"

/** One endpoint's counts on one worker. */
struct bal_outlier_ep {
    uint32_t id;
    uint32_t consecutive; /* failures in a row */
    uint32_t ok, fail;    /* in the current interval */
    uint64_t window_ms;   /* when the current interval began (CLOCK_MONOTONIC ms) */
};

/** A cluster's counts on one worker. Zero it to start. */
struct bal_outlier {
    struct bal_outlier_ep *eps;
    size_t n, cap;
};

enum bal_outlier_verdict {
    BAL_OUTLIER_KEEP = 0,    /* nothing to do */
    BAL_OUTLIER_CONSECUTIVE, /* outlier_consecutive_failures failures in a row */
    BAL_OUTLIER_PERCENTAGE,  /* outlier_failure_percentage over outlier_interval */
};

/** Counts one attempt that ended at endpoint |id| (|failure| per
 *  outlier_failure_codes or a lost connection) at |now_ms|. |min_calls| is
 *  the calls an interval needs for the percentage (this worker's share of
 *  outlier_min_calls). Returns a verdict other than KEEP when the endpoint
 *  should be ejected; its counts start over then. Allocates the first time
 *  an endpoint is seen only. */
enum bal_outlier_verdict bal_outlier_record(struct bal_outlier *o, const struct conf_cluster *cc,
                                            uint32_t id, bool failure, uint64_t now_ms,
                                            uint32_t min_calls);

/** Frees what |o| holds. */
void bal_outlier_deinit(struct bal_outlier *o);

/** The length of an endpoint's |times|-th ejection (times >= 1):
 *  base x times, at most max(base, 300 s) (A50's max_ejection_time). */
uint64_t bal_outlier_ejection_ms(uint32_t base_ms, uint32_t times);

/** Whether one more of a cluster's |total| endpoints may be ejected while
 *  |ejected| are: A50 stops at max_ejection_percent. */
bool bal_outlier_may_eject(size_t ejected, size_t total, uint32_t max_percent);

/** Name of |v| for logs and metric labels. */
const char *bal_outlier_reason(enum bal_outlier_verdict v);

#endif
