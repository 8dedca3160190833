/* Placeholder for hc_ep_info() until the checker keeps per-endpoint counters.
 * SPDX-License-Identifier: MIT */
#include "health/hc.h"

#include <string.h>

void hc_ep_info(const struct hc *h, const struct bal_ep *ep, struct hc_ep_info *out)
{
    (void)h;
    (void)ep;
    memset(out, 0, sizeof(*out));
}
