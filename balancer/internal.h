/* balancer internals shared by the policy files: the policy vtable.
 * SPDX-License-Identifier: MIT */
#ifndef BALANCER_INTERNAL_H
#define BALANCER_INTERNAL_H

#include "balancer/bal.h"

/** One load-balancing policy (h2o's and HAProxy's pattern: a table of ops). */
struct bal_ops {
    const char *name;
    /** Same contract as bal_pick(); |c| has at least one endpoint in rotation. */
    int (*pick)(const struct bal_cluster *c, struct bal_lb *st, bal_skip_cb skip, void *arg);
};

extern const struct bal_ops bal_round_robin_ops;
extern const struct bal_ops bal_pick_first_ops;

static inline enum bal_skip bal_skip_of(const struct bal_endpoint *ep, bal_skip_cb skip, void *arg)
{
    return skip != NULL ? skip(ep, arg) : BAL_SKIP_NO;
}

#endif
