/* Outlier detection, the moving parts: workers post ejection requests into a
 * mailbox (rare: only when a worker's counts say so), and the main thread
 * ejects endpoints in the endpoint set, publishes a snapshot, and lets them
 * back when their time is up (balancer/outlier.h has the arithmetic).
 * Invariant: the mailbox is the only thing both sides touch, under its mutex;
 * ejection state lives in the main thread's endpoint set only.
 * SPDX-License-Identifier: MIT */
#ifndef PROXY_OUTLIER_H
#define PROXY_OUTLIER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "balancer/bal.h"
#include "balancer/outlier.h"

struct event;
struct event_base;
struct runtime;

struct proxy_outlier_req {
    char cluster[128];
    uint32_t ep_id;
    char addr[BAL_ADDRSTRLEN];
    enum bal_outlier_verdict why;
};

struct proxy_outlier_box {
    pthread_mutex_t mu;
    struct proxy_outlier_req *q;
    size_t n, cap;
    struct event *ev;   /* the main thread's: requests arrived */
    struct event *tick; /* the main thread's: ejections that end, multipliers that decay */
};

/** Sets up |rt|'s mailbox and timers on the main thread. */
void proxy_outlier_start(struct runtime *rt);
void proxy_outlier_stop(struct runtime *rt);

/** A worker asks for endpoint |ep_id| (|addr|) of cluster |cluster| to be
 *  ejected for |why|. Any thread; takes the mailbox's mutex. */
void proxy_outlier_post(struct proxy_outlier_box *box, const char *cluster, uint32_t ep_id,
                        const char *addr, enum bal_outlier_verdict why);

#endif
