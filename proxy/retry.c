/* Retry arithmetic (retry.h).
 * SPDX-License-Identifier: MIT */
#include "proxy/retry.h"

uint32_t proxy_backoff_ceiling_ms(uint32_t initial_ms, uint32_t max_ms, double multiplier,
                                  uint32_t n)
{
    double c = initial_ms;

    for (uint32_t i = 1; i < n && c < max_ms; i++)
        c *= multiplier;
    if (c > max_ms)
        c = max_ms;
    return (uint32_t)c;
}

uint32_t proxy_backoff_ms(uint32_t initial_ms, uint32_t max_ms, double multiplier, uint32_t n,
                          double r)
{
    /* gRFC A6: "random(0, min(initialBackoff*backoffMultiplier**(n-1),
     * maxBackoff))". */
    double d = r * proxy_backoff_ceiling_ms(initial_ms, max_ms, multiplier, n);

    return (uint32_t)d; /* d >= 0: truncation is the floor */
}

int64_t proxy_pushback_parse(const uint8_t *v, size_t len)
{
    int64_t n = 0;

    if (v == NULL)
        return PROXY_PUSHBACK_NONE;
    /* gRFC A6: an integer of milliseconds; anything else (a negative value
     * included) means the server does not want the call retried. */
    if (len == 0 || len > 10)
        return PROXY_PUSHBACK_STOP;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return PROXY_PUSHBACK_STOP;
        n = n * 10 + (v[i] - '0');
    }
    return n > INT32_MAX ? PROXY_PUSHBACK_STOP : n;
}

/* Moves the window to |now_s|: slots of seconds that passed are emptied. */
static void advance(struct proxy_retry_budget *b, uint64_t now_s)
{
    uint64_t gap;

    if (now_s <= b->now_s)
        return;
    gap = now_s - b->now_s;
    for (uint64_t i = 1; i <= gap && i <= PROXY_BUDGET_SLOTS; i++) {
        size_t k = (size_t)((b->now_s + i) % PROXY_BUDGET_SLOTS);

        b->calls[k] = 0;
        b->retries[k] = 0;
    }
    b->now_s = now_s;
}

void proxy_budget_call(struct proxy_retry_budget *b, uint64_t now_s)
{
    advance(b, now_s);
    b->calls[now_s % PROXY_BUDGET_SLOTS]++;
}

bool proxy_budget_take(struct proxy_retry_budget *b, uint64_t now_s, uint32_t percent,
                       double min_per_s)
{
    uint64_t calls = 0, retries = 0;
    double allowed;

    advance(b, now_s);
    for (size_t i = 0; i < PROXY_BUDGET_SLOTS; i++) {
        calls += b->calls[i];
        retries += b->retries[i];
    }
    allowed = (double)calls * percent / 100.0;
    if (allowed < min_per_s * PROXY_BUDGET_SLOTS)
        allowed = min_per_s * PROXY_BUDGET_SLOTS;
    if ((double)(retries + 1) > allowed)
        return false;
    b->retries[now_s % PROXY_BUDGET_SLOTS]++;
    return true;
}
