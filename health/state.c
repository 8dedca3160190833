/* The rise/fall state machine of one endpoint, plus probe pacing (jitter and
 * reconnect backoff). Pure: no I/O, no clock.
 * Invariant: hc_sm_feed() is the only place a state changes.
 * SPDX-License-Identifier: MIT */
#include "health/internal.h"

static const char *const state_names[HC_STATE_COUNT] = {
    "unchecked", "healthy", "falling", "unhealthy", "rising",
};

static const char *const result_names[HC_RES_COUNT] = {
    "pass",
    "fail",
    "down",
    "unimplemented",
};

const char *hc_state_name(enum hc_state s)
{
    return (unsigned)s < HC_STATE_COUNT ? state_names[s] : "?";
}

const char *hc_result_name(enum hc_result r)
{
    return (unsigned)r < HC_RES_COUNT ? result_names[r] : "?";
}

bool hc_state_in_rotation(enum hc_state s)
{
    return s == HC_ST_HEALTHY || s == HC_ST_FALLING;
}

static void set_state(struct hc_sm *m, enum hc_state s, uint32_t count)
{
    m->state = s;
    m->count = count;
}

void hc_sm_init(struct hc_sm *m, bool in_rotation, bool checked)
{
    set_state(m, in_rotation ? HC_ST_HEALTHY : checked ? HC_ST_UNHEALTHY : HC_ST_UNCHECKED, 0);
}

enum hc_state hc_sm_feed(struct hc_sm *m, const struct hc_sm_conf *c, enum hc_result r)
{
    /* gRPC clients read UNIMPLEMENTED as "no health service, so healthy";
     * health_unimplemented chooses between that and a clean "no". */
    if (r == HC_RES_UNIMPLEMENTED)
        r = c->unimplemented_healthy ? HC_RES_PASS : HC_RES_DOWN;

    switch (m->state) {
    case HC_ST_UNCHECKED:
        /* Envoy: "during startup, only a single successful health check is
         * required"; a failed first check makes it an ordinary unhealthy one. */
        set_state(m, r == HC_RES_PASS ? HC_ST_HEALTHY : HC_ST_UNHEALTHY, 0);
        break;
    case HC_ST_HEALTHY:
    case HC_ST_FALLING:
        if (r == HC_RES_PASS)
            set_state(m, HC_ST_HEALTHY, 0);
        else if (r == HC_RES_DOWN)
            set_state(m, HC_ST_UNHEALTHY, 0);
        else if (m->count + 1 >= c->unhealthy_threshold)
            set_state(m, HC_ST_UNHEALTHY, 0);
        else
            set_state(m, HC_ST_FALLING, m->count + 1);
        break;
    case HC_ST_UNHEALTHY:
    case HC_ST_RISING:
        if (r != HC_RES_PASS)
            set_state(m, HC_ST_UNHEALTHY, 0);
        else if (m->count + 1 >= c->healthy_threshold)
            set_state(m, HC_ST_HEALTHY, 0);
        else
            set_state(m, HC_ST_RISING, m->count + 1);
        break;
    case HC_STATE_COUNT:
        set_state(m, HC_ST_UNHEALTHY, 0);
        break;
    }
    return m->state;
}

uint32_t hc_jitter(uint32_t ms, uint64_t *rng)
{
    uint64_t x = *rng;
    uint64_t span = (uint64_t)ms / 5; /* 20%: from -10% to +10% */
    uint64_t out;

    /* xorshift64 (Marsaglia 2003): plenty for spreading timers. */
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *rng = x;
    out = (uint64_t)ms - span / 2 + (span > 0 ? x % (span + 1) : 0);
    return out > 0 ? (uint32_t)out : 1;
}

uint32_t hc_backoff(uint32_t interval_ms, uint32_t fails)
{
    uint64_t cap = interval_ms > HC_BACKOFF_CAP_MS ? interval_ms : HC_BACKOFF_CAP_MS;
    uint64_t d = interval_ms;

    for (uint32_t i = 1; i < fails && d < cap; i++)
        d *= 2;
    return (uint32_t)(d < cap ? d : cap);
}
