/* Unit tests of proxy/retry.c: gRFC A6's backoff and jitter, pushback, and
 * the retry budget's arithmetic.
 * SPDX-License-Identifier: MIT */
#include <string.h>

#include <criterion/criterion.h>

#include "proxy/retry.h"

TestSuite(retry, .timeout = 10);

Test(retry, backoff_ceiling_grows_by_the_multiplier_up_to_the_max)
{
    static const uint32_t want[] = {25, 50, 100, 200, 250, 250, 250};

    for (uint32_t n = 1; n <= 7; n++)
        cr_assert_eq(proxy_backoff_ceiling_ms(25, 250, 2.0, n), want[n - 1], "retry %u", n);
    cr_assert_eq(proxy_backoff_ceiling_ms(100, 1000, 1.5, 3), 225);
    cr_assert_eq(proxy_backoff_ceiling_ms(100, 1000, 1.0, 9), 100, "multiplier 1: flat");
    cr_assert_eq(proxy_backoff_ceiling_ms(10, 100000, 10.0, 60), 100000, "no overflow");
}

Test(retry, jitter_stays_within_zero_and_the_ceiling)
{
    static const double rs[] = {0.0, 0.25, 0.5, 0.999999};

    cr_assert_eq(proxy_backoff_ms(25, 250, 2.0, 3, 0.0), 0);
    cr_assert_eq(proxy_backoff_ms(25, 250, 2.0, 3, 0.5), 50);
    for (uint32_t n = 1; n <= 6; n++) {
        uint32_t ceiling = proxy_backoff_ceiling_ms(25, 250, 2.0, n);

        for (size_t i = 0; i < sizeof(rs) / sizeof(rs[0]); i++) {
            uint32_t d = proxy_backoff_ms(25, 250, 2.0, n, rs[i]);

            cr_assert_leq(d, ceiling, "retry %u, r %g: %u ms over %u", n, rs[i], d, ceiling);
        }
    }
}

static int64_t pushback(const char *v)
{
    return proxy_pushback_parse((const uint8_t *)v, strlen(v));
}

Test(retry, pushback_values)
{
    cr_assert_eq(proxy_pushback_parse(NULL, 0), PROXY_PUSHBACK_NONE);
    cr_assert_eq(pushback("0"), 0);
    cr_assert_eq(pushback("1500"), 1500);
    cr_assert_eq(pushback("-1"), PROXY_PUSHBACK_STOP, "negative: do not retry (A6)");
    cr_assert_eq(pushback(""), PROXY_PUSHBACK_STOP);
    cr_assert_eq(pushback("1s"), PROXY_PUSHBACK_STOP, "malformed: do not retry");
    cr_assert_eq(pushback("99999999999"), PROXY_PUSHBACK_STOP);
}

Test(retry, budget_allows_a_share_of_the_calls)
{
    struct proxy_retry_budget b;
    int allowed = 0;

    memset(&b, 0, sizeof(b));
    for (int i = 0; i < 1000; i++)
        proxy_budget_call(&b, 100);
    /* 20 % of 1000 calls, above the floor of 1/s over 10 s */
    while (proxy_budget_take(&b, 100, 20, 1.0))
        allowed++;
    cr_assert_eq(allowed, 200);
    cr_assert_not(proxy_budget_take(&b, 100, 20, 1.0));
}

Test(retry, budget_floor_when_calls_are_few)
{
    struct proxy_retry_budget b;
    int allowed = 0;

    memset(&b, 0, sizeof(b));
    proxy_budget_call(&b, 5);
    while (proxy_budget_take(&b, 5, 20, 10.0))
        allowed++;
    cr_assert_eq(allowed, 100, "10 per second over the 10 s window");
}

Test(retry, budget_window_slides)
{
    struct proxy_retry_budget b;

    memset(&b, 0, sizeof(b));
    for (int i = 0; i < 100; i++)
        proxy_budget_call(&b, 1000);
    for (int i = 0; i < 20; i++)
        cr_assert(proxy_budget_take(&b, 1000, 20, 0.0));
    cr_assert_not(proxy_budget_take(&b, 1005, 20, 0.0), "still within the window");
    /* Ten seconds on, calls and retries of second 1000 are out of the window. */
    for (int i = 0; i < 10; i++)
        proxy_budget_call(&b, 1010);
    cr_assert(proxy_budget_take(&b, 1010, 20, 0.0));
    cr_assert(proxy_budget_take(&b, 1010, 20, 0.0));
    cr_assert_not(proxy_budget_take(&b, 1010, 20, 0.0), "20 % of the 10 calls left");
}
