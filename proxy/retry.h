/* Retry arithmetic, I/O-free: gRFC A6's backoff with jitter, the pushback a
 * backend may ask for, and the retry budget (linkerd's model: retries may be
 * a share of the calls of the last 10 seconds, with a floor per second).
 * Invariant: pure functions and plain counters; a budget is touched by one
 * worker only.
 * SPDX-License-Identifier: MIT */
#ifndef PROXY_RETRY_H
#define PROXY_RETRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/grpc.h"

#define PROXY_BUDGET_SLOTS 10 /* seconds in the budget's sliding window */

/** The ceiling of the |n|-th retry's backoff (n >= 1): min(initial *
 *  multiplier^(n-1), max) milliseconds. */
uint32_t proxy_backoff_ceiling_ms(uint32_t initial_ms, uint32_t max_ms, double multiplier,
                                  uint32_t n);

/** A6's jittered backoff: a uniform draw in [0, ceiling]; |r| is a random
 *  number in [0, 1). */
uint32_t proxy_backoff_ms(uint32_t initial_ms, uint32_t max_ms, double multiplier, uint32_t n,
                          double r);

enum {
    PROXY_PUSHBACK_NONE = -1, /* no grpc-retry-pushback-ms: the usual backoff */
    PROXY_PUSHBACK_STOP = -2, /* negative or malformed: do not retry */
};

/** Reads a grpc-retry-pushback-ms value: its milliseconds (>= 0),
 *  PROXY_PUSHBACK_STOP for a negative or malformed one; |v| NULL:
 *  PROXY_PUSHBACK_NONE. */
int64_t proxy_pushback_parse(const uint8_t *v, size_t len);

/** Calls and retries of one cluster on one worker over the last
 *  PROXY_BUDGET_SLOTS seconds. Zero it to start. */
struct proxy_retry_budget {
    uint32_t calls[PROXY_BUDGET_SLOTS];
    uint32_t retries[PROXY_BUDGET_SLOTS];
    uint64_t now_s; /* the second the newest slot counts */
};

/** A call started at second |now_s|. */
void proxy_budget_call(struct proxy_retry_budget *b, uint64_t now_s);

/** Whether one more retry (or hedge) is within budget at |now_s|: retries in
 *  the window stay at most max(|percent| % of the window's calls,
 *  |min_per_s| per second over the window). When it is, the retry is
 *  counted. */
bool proxy_budget_take(struct proxy_retry_budget *b, uint64_t now_s, uint32_t percent,
                       double min_per_s);

#endif
