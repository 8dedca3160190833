/* Outlier detection: the mailbox and the main thread's ejections (outlier.h).
 * SPDX-License-Identifier: MIT */
#define LOG_MODULE "outlier"
#include "proxy/outlier.h"

#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "balancer/epset.h"
#include "conf/conf.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"
#include "proxy/proxy.h"

void proxy_outlier_post(struct proxy_outlier_box *box, const char *cluster, uint32_t ep_id,
                        const char *addr, enum bal_outlier_verdict why)
{
    struct proxy_outlier_req *r;

    pthread_mutex_lock(&box->mu);
    if (box->n == box->cap) {
        box->cap = box->cap == 0 ? 16 : box->cap * 2;
        box->q = xreallocarray(box->q, box->cap, sizeof(*box->q));
    }
    r = &box->q[box->n++];
    snprintf(r->cluster, sizeof(r->cluster), "%s", cluster);
    r->ep_id = ep_id;
    snprintf(r->addr, sizeof(r->addr), "%s", addr);
    r->why = why;
    pthread_mutex_unlock(&box->mu);
    event_active(box->ev, EV_READ, 0);
}

static int cluster_index(const struct conf *c, const char *name)
{
    for (size_t i = 0; i < c->nclusters; i++) {
        if (strcmp(c->clusters[i].name, name) == 0)
            return (int)i;
    }
    return -1;
}

/* One request: eject the endpoint unless it is already out, or the cluster
 * has max_ejection_percent of its endpoints out already. */
static bool eject(struct runtime *rt, const struct proxy_outlier_req *r, uint64_t now)
{
    int ci = cluster_index(rt->conf, r->cluster);
    const struct conf_cluster *cc;
    struct bal_ep *target = NULL;
    size_t total = 0, ejected = 0;
    uint64_t ms;
    char why[96];

    if (ci < 0)
        return false; /* a reload removed the cluster meanwhile */
    cc = &rt->conf->clusters[ci];
    if (!cc->outlier_detection)
        return false;
    for (size_t i = 0; i < bal_epset_count(rt->eps); i++) {
        struct bal_ep *ep = bal_epset_at(rt->eps, i);

        if (ep->cluster != (uint32_t)ci)
            continue;
        total++;
        ejected += ep->ejected_until_ms != 0;
        if (ep->id == r->ep_id && strcmp(ep->addr_str, r->addr) == 0)
            target = ep;
    }
    if (target == NULL || target->ejected_until_ms != 0)
        return false;
    if (!bal_outlier_may_eject(ejected, total, cc->outlier_max_ejection_percent)) {
        log_info("cluster %s: endpoint %s would be ejected (%s) but %zu of %zu are out already "
                 "(outlier_max_ejection_percent %u)",
                 r->cluster, r->addr, bal_outlier_reason(r->why), ejected, total,
                 cc->outlier_max_ejection_percent);
        return false;
    }
    target->ejections++;
    ms = bal_outlier_ejection_ms(cc->outlier_base_ejection_time_ms, target->ejections);
    snprintf(why, sizeof(why), "%s", bal_outlier_reason(r->why));
    bal_epset_set_ejected(rt->eps, target, now + ms, why);
    if ((size_t)r->why < sizeof(target->ejected_by) / sizeof(target->ejected_by[0]))
        target->ejected_by[r->why]++;
    log_warn("cluster %s: endpoint %s ejected for %llu ms (%s; ejection %u)", r->cluster, r->addr,
             (unsigned long long)ms, why, target->ejections);
    return true;
}

static void on_requests(evutil_socket_t fd, short what, void *arg)
{
    struct runtime *rt = arg;
    struct proxy_outlier_box *box = rt->outliers;
    struct proxy_outlier_req *q;
    size_t n;
    bool changed = false;
    uint64_t now = core_mono_ms();

    (void)fd;
    (void)what;
    pthread_mutex_lock(&box->mu);
    q = box->q;
    n = box->n;
    box->q = NULL;
    box->n = box->cap = 0;
    pthread_mutex_unlock(&box->mu);
    for (size_t i = 0; i < n; i++)
        changed |= eject(rt, &q[i], now);
    free(q);
    if (changed)
        proxy_snapshot_changed(rt);
}

/* Once a second: ejections whose time is up end; an endpoint back in for a
 * base ejection time has its multiplier lowered by one (A50). */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct runtime *rt = arg;
    uint64_t now = core_mono_ms();
    bool changed = false;

    (void)fd;
    (void)what;
    for (size_t i = 0; i < bal_epset_count(rt->eps); i++) {
        struct bal_ep *ep = bal_epset_at(rt->eps, i);
        const struct conf_cluster *cc = &rt->conf->clusters[ep->cluster];

        if (ep->ejected_until_ms != 0 && ep->ejected_until_ms <= now) {
            bal_epset_set_ejected(rt->eps, ep, 0, NULL);
            ep->back_since_ms = now;
            changed = true;
            log_info("cluster %s: endpoint %s back from ejection", cc->name, ep->addr_str);
        } else if (ep->ejected_until_ms == 0 && ep->ejections > 0 &&
                   now - ep->back_since_ms >= cc->outlier_base_ejection_time_ms) {
            ep->ejections--;
            ep->back_since_ms = now;
        }
    }
    if (changed)
        proxy_snapshot_changed(rt);
}

void proxy_outlier_start(struct runtime *rt)
{
    struct proxy_outlier_box *box = xcalloc(1, sizeof(*box));
    struct timeval second = {.tv_sec = 1, .tv_usec = 0};

    pthread_mutex_init(&box->mu, NULL);
    box->ev = event_new(rt->base, -1, 0, on_requests, rt);
    box->tick = event_new(rt->base, -1, EV_PERSIST, on_tick, rt);
    if (box->ev == NULL || box->tick == NULL)
        core_oom();
    event_add(box->tick, &second);
    rt->outliers = box;
}

void proxy_outlier_stop(struct runtime *rt)
{
    struct proxy_outlier_box *box = rt->outliers;

    if (box == NULL)
        return;
    event_free(box->ev);
    event_free(box->tick);
    pthread_mutex_destroy(&box->mu);
    free(box->q);
    free(box);
    rt->outliers = NULL;
}
