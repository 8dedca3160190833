/* pick_first: one endpoint for the whole process. The choice is made where
 * snapshots are built (bal_epset_snapshot(): the first endpoint in rotation in
 * target/DNS order, kept until it leaves the rotation) and published as
 * bal_cluster.active, so every worker sends to the same endpoint.
 * Invariant: no per-worker state; a call that cannot use the choice (its skip
 * callback refuses it, e.g. a connect failure this worker just saw) takes the
 * next endpoint in rotation order, for that call only.
 * SPDX-License-Identifier: MIT */
#include "balancer/internal.h"

static int pf_pick(struct bal_lb_state *lb, const struct bal_cluster *c,
                   const struct bal_pick_req *r)
{
    size_t start = 0;
    int soft = -1;

    (void)lb;
    if (c->active >= 0) {
        for (size_t i = 0; i < c->nrotation; i++) {
            if (c->rotation[i] == (uint32_t)c->active) {
                start = i;
                break;
            }
        }
    }
    for (size_t k = 0; k < c->nrotation; k++) {
        uint32_t idx = c->rotation[(start + k) % c->nrotation];

        switch (bal_skip_of(&c->endpoints[idx], r)) {
        case BAL_SKIP_NO:
            return (int)idx;
        case BAL_SKIP_SOFT:
            if (soft < 0)
                soft = (int)idx;
            break;
        case BAL_SKIP_HARD:
            break;
        }
    }
    return soft >= 0 ? soft : BAL_EEXHAUSTED;
}

const struct bal_ops bal_pick_first_ops = {
    .name = "pick_first",
    .pick = pf_pick,
};
