/* switchyard's own grpc.health.v1.Health service, answered by the workers
 * before routing: not built yet (issue 4).
 * SPDX-License-Identifier: MIT */
#define LOG_MODULE "selfhealth"
#include "proxy/internal.h"

bool proxy_selfhealth_match(const struct proxy_call *call)
{
    (void)call;
    return false;
}

void proxy_selfhealth_start(struct proxy_call *call)
{
    (void)call;
}

void proxy_selfhealth_update(struct proxy_worker *w)
{
    (void)w;
}

void proxy_selfhealth_call_gone(struct proxy_call *call)
{
    (void)call;
}
