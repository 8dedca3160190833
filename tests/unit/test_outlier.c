/* Unit tests of balancer/outlier.c: when an endpoint should be ejected, for
 * how long, and the cap on how many may be out.
 * SPDX-License-Identifier: MIT */
#include <string.h>

#include <criterion/criterion.h>

#include "balancer/outlier.h"
#include "conf/conf.h"

TestSuite(outlier, .timeout = 10);

static struct conf_cluster cc(uint32_t consecutive, uint32_t percentage)
{
    struct conf_cluster c;

    memset(&c, 0, sizeof(c));
    c.outlier_detection = true;
    c.outlier_consecutive_failures = consecutive;
    c.outlier_failure_percentage = percentage;
    c.outlier_min_calls = 20;
    c.outlier_interval_ms = 10000;
    c.outlier_base_ejection_time_ms = 30000;
    c.outlier_max_ejection_percent = 50;
    return c;
}

Test(outlier, consecutive_failures_eject_and_a_success_starts_over)
{
    struct conf_cluster c = cc(5, 0);
    struct bal_outlier o = {0};

    for (int i = 0; i < 4; i++)
        cr_assert_eq(bal_outlier_record(&o, &c, 7, true, 1000, 20), BAL_OUTLIER_KEEP);
    cr_assert_eq(bal_outlier_record(&o, &c, 7, false, 1000, 20), BAL_OUTLIER_KEEP);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(bal_outlier_record(&o, &c, 7, true, 1000, 20), BAL_OUTLIER_KEEP);
    /* another endpoint's failures are its own */
    cr_assert_eq(bal_outlier_record(&o, &c, 8, true, 1000, 20), BAL_OUTLIER_KEEP);
    cr_assert_eq(bal_outlier_record(&o, &c, 7, true, 1000, 20), BAL_OUTLIER_CONSECUTIVE);
    cr_assert_eq(bal_outlier_record(&o, &c, 7, true, 1000, 20), BAL_OUTLIER_KEEP,
                 "counts start over after a verdict");
    bal_outlier_deinit(&o);
}

Test(outlier, failure_percentage_over_an_interval_needs_min_calls)
{
    struct conf_cluster c = cc(0, 50);
    struct bal_outlier o = {0};
    enum bal_outlier_verdict v = BAL_OUTLIER_KEEP;

    /* 10 calls, all failing, then the interval ends: under min_calls */
    for (int i = 0; i < 10; i++)
        cr_assert_eq(bal_outlier_record(&o, &c, 1, true, 100 + i, 20), BAL_OUTLIER_KEEP);
    cr_assert_eq(bal_outlier_record(&o, &c, 1, true, 10200, 20), BAL_OUTLIER_KEEP);
    /* 30 calls, 18 failing (60 %), in the next interval */
    for (int i = 0; i < 30; i++)
        cr_assert_eq(bal_outlier_record(&o, &c, 1, i % 5 < 3, 10300 + i, 20), BAL_OUTLIER_KEEP);
    v = bal_outlier_record(&o, &c, 1, false, 20300, 20);
    cr_assert_eq(v, BAL_OUTLIER_PERCENTAGE);
    /* 40 % failing: kept */
    for (int i = 0; i < 30; i++)
        bal_outlier_record(&o, &c, 1, i % 5 < 2, 20400 + i, 20);
    cr_assert_eq(bal_outlier_record(&o, &c, 1, false, 30400, 20), BAL_OUTLIER_KEEP);
    bal_outlier_deinit(&o);
}

Test(outlier, ejection_time_grows_with_each_ejection_up_to_the_cap)
{
    cr_assert_eq(bal_outlier_ejection_ms(30000, 1), 30000);
    cr_assert_eq(bal_outlier_ejection_ms(30000, 2), 60000);
    cr_assert_eq(bal_outlier_ejection_ms(30000, 5), 150000);
    cr_assert_eq(bal_outlier_ejection_ms(30000, 100), 300000, "A50's max_ejection_time");
    cr_assert_eq(bal_outlier_ejection_ms(600000, 3), 600000, "never below the base");
}

Test(outlier, max_ejection_percent_caps_the_ejected)
{
    cr_assert(bal_outlier_may_eject(0, 3, 50));
    cr_assert(bal_outlier_may_eject(1, 3, 50), "33 %% out: below 50 %%");
    cr_assert_not(bal_outlier_may_eject(2, 3, 50), "67 %% out");
    cr_assert_not(bal_outlier_may_eject(1, 2, 50), "50 %% out");
    cr_assert_not(bal_outlier_may_eject(0, 4, 0), "0 %%: never");
    cr_assert(bal_outlier_may_eject(9, 10, 100));
    cr_assert_not(bal_outlier_may_eject(0, 0, 100), "no endpoint");
}
