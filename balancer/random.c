/* random: each pick chooses an endpoint in rotation at random, in proportion
 * to its weight. Stateless apart from the worker's random numbers.
 * SPDX-License-Identifier: MIT */
#include "balancer/internal.h"

static int random_pick(struct bal_lb_state *lb, const struct bal_cluster *c,
                       const struct bal_pick_req *r)
{
    size_t n = bal_candidates(lb, c, r);

    return n > 0 ? bal_pick_weighted(lb, c, n) : BAL_EEXHAUSTED;
}

const struct bal_ops bal_random_ops = {
    .name = "random",
    .pick = random_pick,
};
