/* Per-worker policy state (struct bal_lb) and what every policy shares: the
 * policy table, candidates after the skip callback, weighted random choice,
 * slow_start weights and keeping state by endpoint id across snapshots.
 * Invariant: bal_pick() and bal_attempt_*() allocate nothing; only
 * bal_lb_init() and bal_lb_update() do.
 * SPDX-License-Identifier: MIT */
#include "balancer/bal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "balancer/internal.h"

static const struct bal_ops *const policies[CONF_POLICY_COUNT] = {
    [CONF_POLICY_ROUND_ROBIN] = &bal_round_robin_ops,
    [CONF_POLICY_PICK_FIRST] = &bal_pick_first_ops,
    [CONF_POLICY_LEAST_REQUEST] = &bal_least_request_ops,
    [CONF_POLICY_RING_HASH] = &bal_ring_hash_ops,
    [CONF_POLICY_RANDOM] = &bal_random_ops,
};

void *bal_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n == 0 ? 1 : n, size == 0 ? 1 : size);

    if (p == NULL) {
        fputs("switchyard: out of memory\n", stderr);
        abort();
    }
    return p;
}

static int policy_of(const struct bal_cluster *c)
{
    int p = c->conf != NULL ? (int)c->conf->policy : CONF_POLICY_ROUND_ROBIN;

    return p >= 0 && p < CONF_POLICY_COUNT ? p : CONF_POLICY_ROUND_ROBIN;
}

/* The id -> index map and the scratch arrays, sized for lb->c. */
static void size_for_cluster(struct bal_lb_state *lb)
{
    const struct bal_cluster *c = lb->c;
    uint32_t nids = 0;

    for (size_t i = 0; i < c->nendpoints; i++) {
        if (c->endpoints[i].id >= nids)
            nids = c->endpoints[i].id + 1;
    }
    free(lb->idx_of_id);
    free(lb->cand);
    free(lb->seen);
    lb->idx_of_id = bal_xcalloc(nids, sizeof(*lb->idx_of_id));
    lb->nids = nids;
    for (size_t i = 0; i < c->nendpoints; i++)
        lb->idx_of_id[c->endpoints[i].id] = (uint32_t)i + 1;
    lb->cand = bal_xcalloc(c->nendpoints, sizeof(*lb->cand));
    lb->seen = bal_xcalloc(c->nendpoints, sizeof(*lb->seen));
    lb->npick = 0;
    free(lb->cum);
    lb->cum = bal_xcalloc(c->nrotation, sizeof(*lb->cum));
    lb->equal_weights = true;
    lb->ramp_end_ms = 0;
    for (size_t i = 0; i < c->nrotation; i++) {
        const struct bal_endpoint *ep = &c->endpoints[c->rotation[i]];
        uint32_t window = c->conf != NULL ? c->conf->slow_start_ms : 0;

        lb->cum[i] = (i > 0 ? lb->cum[i - 1] : 0) + bal_weight(ep);
        if (bal_weight(ep) != bal_weight(&c->endpoints[c->rotation[0]]))
            lb->equal_weights = false;
        if (window > 0 && ep->since_ms != 0 && ep->since_ms + window > lb->ramp_end_ms)
            lb->ramp_end_ms = ep->since_ms + window;
    }
}

static struct bal_lb_state *state_new(const struct bal_cluster *c, uint64_t rng)
{
    const struct bal_ops *ops = policies[policy_of(c)];
    struct bal_lb_state *lb = bal_xcalloc(1, sizeof(*lb) + ops->state_size);

    lb->ops = ops;
    lb->policy = policy_of(c);
    lb->c = c;
    lb->rng = rng;
    size_for_cluster(lb);
    if (ops->init != NULL)
        ops->init(lb, c);
    return lb;
}

static void state_free(struct bal_lb_state *lb)
{
    if (lb->ops->deinit != NULL)
        lb->ops->deinit(lb);
    free(lb->idx_of_id);
    free(lb->cand);
    free(lb->seen);
    free(lb->cum);
    free(lb);
}

void bal_lb_init(struct bal_lb *lb, const struct bal_cluster *c, uint64_t seed)
{
    /* Mixed once so that nearby seeds (worker indices) give unrelated streams. */
    struct bal_lb_state tmp = {.rng = seed};

    lb->st = state_new(c, bal_rand(&tmp));
}

void bal_lb_deinit(struct bal_lb *lb)
{
    if (lb->st == NULL)
        return;
    state_free(lb->st);
    lb->st = NULL;
}

void bal_lb_update(struct bal_lb *lb, const struct bal_cluster *c)
{
    struct bal_lb_state *st = lb->st;
    uint32_t *old_of;

    if (st == NULL) {
        bal_lb_init(lb, c, (uint64_t)(uintptr_t)lb);
        return;
    }
    if (st->policy != policy_of(c)) {
        lb->st = state_new(c, bal_rand(st));
        state_free(st);
        return;
    }
    old_of = bal_xcalloc(c->nendpoints, sizeof(*old_of));
    for (size_t j = 0; j < c->nendpoints; j++) {
        uint32_t id = c->endpoints[j].id;

        old_of[j] = id < st->nids && st->idx_of_id[id] != 0 ? st->idx_of_id[id] - 1 : BAL_NO_INDEX;
    }
    if (st->ops->update != NULL)
        st->ops->update(st, c, old_of);
    free(old_of);
    st->c = c;
    size_for_cluster(st);
}

int bal_pick(const struct bal_cluster *c, struct bal_lb *lb, const struct bal_pick_req *r)
{
    static const struct bal_pick_req none = {0};

    if (c->nrotation == 0)
        return BAL_ENOENDPOINT;
    if (lb->st == NULL || lb->st->c != c)
        abort(); /* the caller skipped bal_lb_update(): our arrays would not fit |c| */
    return lb->st->ops->pick(lb->st, c, r != NULL ? r : &none);
}

static uint32_t index_of(const struct bal_lb_state *st, uint32_t ep_id)
{
    if (st == NULL || ep_id >= st->nids || st->idx_of_id[ep_id] == 0)
        return BAL_NO_INDEX;
    return st->idx_of_id[ep_id] - 1;
}

void bal_attempt_start(struct bal_lb *lb, uint32_t ep_id)
{
    uint32_t idx = index_of(lb->st, ep_id);

    if (idx != BAL_NO_INDEX && lb->st->ops->attempt_start != NULL)
        lb->st->ops->attempt_start(lb->st, idx);
}

void bal_attempt_end(struct bal_lb *lb, uint32_t ep_id)
{
    uint32_t idx = index_of(lb->st, ep_id);

    if (idx != BAL_NO_INDEX && lb->st->ops->attempt_end != NULL)
        lb->st->ops->attempt_end(lb->st, idx);
}

/* ---- shared by the policies ---- */

size_t bal_candidates(struct bal_lb_state *lb, const struct bal_cluster *c,
                      const struct bal_pick_req *r)
{
    size_t n = 0, soft = 0, cap = c->nendpoints;

    /* accepted ones fill lb->cand from the front, soft ones from the back */
    for (size_t i = 0; i < c->nrotation; i++) {
        uint32_t idx = c->rotation[i];

        switch (bal_skip_of(&c->endpoints[idx], r)) {
        case BAL_SKIP_NO:
            lb->cand[n++] = idx;
            break;
        case BAL_SKIP_SOFT:
            lb->cand[cap - ++soft] = idx;
            break;
        case BAL_SKIP_HARD:
            break;
        }
    }
    if (n > 0 || soft == 0)
        return n;
    for (size_t i = 0; i < soft; i++)
        lb->cand[i] = lb->cand[cap - 1 - i];
    return soft;
}

int bal_pick_weighted(struct bal_lb_state *lb, const struct bal_cluster *c, size_t n)
{
    uint64_t total = 0, x;

    for (size_t i = 0; i < n; i++)
        total += bal_weight(&c->endpoints[lb->cand[i]]);
    x = bal_rand(lb) % total;
    for (size_t i = 0; i < n; i++) {
        uint32_t w = bal_weight(&c->endpoints[lb->cand[i]]);

        if (x < w)
            return (int)lb->cand[i];
        x -= w;
    }
    return (int)lb->cand[n - 1]; /* not reached */
}

int bal_pick_random(struct bal_lb_state *lb, const struct bal_cluster *c,
                    const struct bal_pick_req *r)
{
    size_t n = c->nrotation, pos = 0;
    uint32_t idx;

    if (lb->equal_weights) {
        pos = bal_rand_below(lb, (uint32_t)n);
    } else {
        uint64_t x = bal_rand(lb) % lb->cum[n - 1];
        size_t hi = n - 1;

        while (pos < hi) { /* the first prefix sum above |x| */
            size_t mid = pos + (hi - pos) / 2;

            if (lb->cum[mid] > x)
                hi = mid;
            else
                pos = mid + 1;
        }
    }
    idx = c->rotation[pos];
    if (bal_skip_of(&c->endpoints[idx], r) == BAL_SKIP_NO)
        return (int)idx;
    /* Refused: draw again among the accepted ones only. Together this is
     * still in proportion to weight among them. */
    n = bal_candidates(lb, c, r);
    return n > 0 ? bal_pick_weighted(lb, c, n) : BAL_EEXHAUSTED;
}

void *bal_remap(void *old, size_t old_n, size_t size, size_t n, const uint32_t *old_of)
{
    unsigned char *dst = bal_xcalloc(n, size);
    const unsigned char *src = old;

    for (size_t j = 0; j < n; j++) {
        if (old_of[j] != BAL_NO_INDEX && old_of[j] < old_n)
            memcpy(dst + j * size, src + old_of[j] * size, size);
    }
    free(old);
    return dst;
}
