/* random: each pick chooses an endpoint in rotation at random, in proportion
 * to its weight. Stateless apart from the worker's random numbers.
 * SPDX-License-Identifier: MIT */
#include "balancer/internal.h"

const struct bal_ops bal_random_ops = {
    .name = "random",
    .pick = bal_pick_random,
};
