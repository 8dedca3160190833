/* Outlier detection arithmetic (outlier.h).
 * SPDX-License-Identifier: MIT */
#include "balancer/outlier.h"

#include <stdio.h>
#include <stdlib.h>

#define MAX_EJECTION_MS (300 * 1000ull) /* A50's default max_ejection_time */

static struct bal_outlier_ep *find(struct bal_outlier *o, uint32_t id, uint64_t now_ms)
{
    for (size_t i = 0; i < o->n; i++) {
        if (o->eps[i].id == id)
            return &o->eps[i];
    }
    if (o->n == o->cap) {
        size_t cap = o->cap == 0 ? 8 : o->cap * 2;
        struct bal_outlier_ep *e = reallocarray(o->eps, cap, sizeof(*e));

        if (e == NULL) {
            fputs("switchyard: out of memory\n", stderr);
            abort();
        }
        o->eps = e;
        o->cap = cap;
    }
    o->eps[o->n] = (struct bal_outlier_ep){.id = id, .window_ms = now_ms};
    return &o->eps[o->n++];
}

enum bal_outlier_verdict bal_outlier_record(struct bal_outlier *o, const struct conf_cluster *cc,
                                            uint32_t id, bool failure, uint64_t now_ms,
                                            uint32_t min_calls)
{
    struct bal_outlier_ep *e = find(o, id, now_ms);

    if (failure) {
        e->consecutive++;
        e->fail++;
    } else {
        e->consecutive = 0;
        e->ok++;
    }
    if (cc->outlier_consecutive_failures > 0 &&
        e->consecutive >= cc->outlier_consecutive_failures) {
        *e = (struct bal_outlier_ep){.id = id, .window_ms = now_ms};
        return BAL_OUTLIER_CONSECUTIVE;
    }
    if (now_ms - e->window_ms >= cc->outlier_interval_ms) {
        uint64_t calls = (uint64_t)e->ok + e->fail;
        bool eject = cc->outlier_failure_percentage > 0 && calls >= min_calls &&
                     (uint64_t)e->fail * 100 >= (uint64_t)cc->outlier_failure_percentage * calls;

        e->ok = e->fail = 0;
        e->window_ms = now_ms;
        if (eject) {
            e->consecutive = 0;
            return BAL_OUTLIER_PERCENTAGE;
        }
    }
    return BAL_OUTLIER_KEEP;
}

void bal_outlier_deinit(struct bal_outlier *o)
{
    free(o->eps);
    *o = (struct bal_outlier){0};
}

uint64_t bal_outlier_ejection_ms(uint32_t base_ms, uint32_t times)
{
    uint64_t cap = base_ms > MAX_EJECTION_MS ? base_ms : MAX_EJECTION_MS;
    uint64_t ms = (uint64_t)base_ms * (times == 0 ? 1 : times);

    return ms < cap ? ms : cap;
}

bool bal_outlier_may_eject(size_t ejected, size_t total, uint32_t max_percent)
{
    /* A50: "if the ejected percentage is >= max_ejection_percent, stop". */
    return total > 0 && ejected * 100 < (size_t)max_percent * total;
}

const char *bal_outlier_reason(enum bal_outlier_verdict v)
{
    switch (v) {
    case BAL_OUTLIER_CONSECUTIVE:
        return "consecutive_failures";
    case BAL_OUTLIER_PERCENTAGE:
        return "failure_percentage";
    case BAL_OUTLIER_KEEP:
        break;
    }
    return "none";
}
