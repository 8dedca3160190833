/* pick_first: the first endpoint in configured order that is in rotation; once
 * chosen, a worker sticks to it until it leaves the rotation or is refused.
 * SPDX-License-Identifier: MIT */
#include "balancer/internal.h"

static int pf_pick(const struct bal_cluster *c, struct bal_lb *st, bal_skip_cb skip, void *arg)
{
    int soft = -1;

    if (st->pf_set) {
        for (size_t i = 0; i < c->nrotation; i++) {
            uint32_t idx = c->rotation[i];

            if (c->endpoints[idx].id == st->pf_id &&
                bal_skip_of(&c->endpoints[idx], skip, arg) == BAL_SKIP_NO)
                return (int)idx;
        }
    }
    for (size_t i = 0; i < c->nrotation; i++) {
        uint32_t idx = c->rotation[i];

        switch (bal_skip_of(&c->endpoints[idx], skip, arg)) {
        case BAL_SKIP_NO:
            st->pf_id = c->endpoints[idx].id;
            st->pf_set = true;
            return (int)idx;
        case BAL_SKIP_SOFT:
            if (soft < 0)
                soft = (int)idx;
            break;
        case BAL_SKIP_HARD:
            break;
        }
    }
    if (soft < 0)
        return BAL_EEXHAUSTED;
    /* A soft-skipped endpoint is a last resort, not a new choice to stick to. */
    return soft;
}

const struct bal_ops bal_pick_first_ops = {
    .name = "pick_first",
    .pick = pf_pick,
};
