/* round_robin: each worker walks the rotation with its own cursor, so no state
 * is shared between threads; the cursor starts at a random offset.
 * SPDX-License-Identifier: MIT */
#include "balancer/internal.h"

static int rr_pick(const struct bal_cluster *c, struct bal_lb *st, bal_skip_cb skip, void *arg)
{
    size_t n = c->nrotation;
    size_t start = st->rr_next % n;
    int soft = -1;
    size_t soft_pos = 0;

    for (size_t i = 0; i < n; i++) {
        size_t pos = (start + i) % n;
        uint32_t idx = c->rotation[pos];

        switch (bal_skip_of(&c->endpoints[idx], skip, arg)) {
        case BAL_SKIP_NO:
            st->rr_next = (uint32_t)((pos + 1) % n);
            return (int)idx;
        case BAL_SKIP_SOFT:
            if (soft < 0) {
                soft = (int)idx;
                soft_pos = pos;
            }
            break;
        case BAL_SKIP_HARD:
            break;
        }
    }
    if (soft < 0)
        return BAL_EEXHAUSTED;
    st->rr_next = (uint32_t)((soft_pos + 1) % n);
    return soft;
}

const struct bal_ops bal_round_robin_ops = {
    .name = "round_robin",
    .pick = rr_pick,
};
