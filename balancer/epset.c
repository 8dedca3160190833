/* Endpoint sets: the main thread's record of resolved addresses and health,
 * from which worker snapshots are built.
 * SPDX-License-Identifier: MIT */
#include "balancer/epset.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* pick_first's process-wide choice for one cluster */
struct pf_choice {
    uint32_t id; /* endpoint id */
    bool set;
};

struct bal_epset {
    const struct conf *conf;
    struct bal_registry *reg;
    struct bal_ep **eps; /* ordered by (cluster, target), then insertion */
    size_t n, cap;
    bool **resolved;      /* [cluster][target] */
    struct pf_choice *pf; /* [cluster] */
    bal_ep_cb on_add, on_del;
    void *arg;
};

static uint64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n == 0 ? 1 : n, size == 0 ? 1 : size);

    if (p == NULL) {
        fputs("switchyard: out of memory\n", stderr);
        abort();
    }
    return p;
}

static bool starts_healthy(const struct conf_cluster *cc)
{
    return !cc->health_check || cc->health_initial_healthy;
}

static struct bal_ep *ep_insert(struct bal_epset *s, uint32_t cl, uint32_t t,
                                const struct sockaddr_storage *addr, socklen_t len)
{
    const struct conf_cluster *cc = &s->conf->clusters[cl];
    struct bal_ep *ep = xcalloc(1, sizeof(*ep));
    size_t pos = s->n;

    ep->cluster = cl;
    ep->target = t;
    memcpy(&ep->addr, addr, len);
    ep->addrlen = len;
    ep->id = bal_registry_id(s->reg, (const struct sockaddr *)addr, len);
    bal_addr_str((const struct sockaddr *)addr, ep->addr_str, sizeof(ep->addr_str));
    ep->healthy = starts_healthy(cc);
    ep->weight = cc->targets[t].weight != 0 ? cc->targets[t].weight : 1;
    ep->rotation_since_ms = ep->healthy ? mono_ms() : 0;
    snprintf(ep->reason, sizeof(ep->reason), "%s",
             !cc->health_check ? "health checking off"
             : ep->healthy     ? "initial state healthy"
                               : "awaiting first health check");
    /* after the last endpoint of an earlier-or-equal (cluster, target) */
    while (pos > 0 && (s->eps[pos - 1]->cluster > cl ||
                       (s->eps[pos - 1]->cluster == cl && s->eps[pos - 1]->target > t)))
        pos--;
    if (s->n == s->cap) {
        s->cap = s->cap == 0 ? 16 : s->cap * 2;
        s->eps = reallocarray(s->eps, s->cap, sizeof(*s->eps));
        if (s->eps == NULL) {
            fputs("switchyard: out of memory\n", stderr);
            abort();
        }
    }
    memmove(&s->eps[pos + 1], &s->eps[pos], (s->n - pos) * sizeof(*s->eps));
    s->eps[pos] = ep;
    s->n++;
    if (s->on_add != NULL)
        s->on_add(ep, s->arg);
    return ep;
}

static void ep_remove_at(struct bal_epset *s, size_t i)
{
    struct bal_ep *ep = s->eps[i];

    if (s->on_del != NULL)
        s->on_del(ep, s->arg);
    memmove(&s->eps[i], &s->eps[i + 1], (s->n - i - 1) * sizeof(*s->eps));
    s->n--;
    bal_registry_release(s->reg, ep->id);
    free(ep);
}

struct bal_epset *bal_epset_new(const struct conf *c, struct bal_registry *reg)
{
    struct bal_epset *s = xcalloc(1, sizeof(*s));

    s->conf = c;
    s->reg = reg;
    s->resolved = xcalloc(c->nclusters, sizeof(*s->resolved));
    s->pf = xcalloc(c->nclusters, sizeof(*s->pf));
    for (size_t i = 0; i < c->nclusters; i++) {
        const struct conf_cluster *cc = &c->clusters[i];

        s->resolved[i] = xcalloc(cc->ntargets, sizeof(**s->resolved));
        for (size_t j = 0; j < cc->ntargets; j++) {
            if (cc->targets[j].is_literal)
                bal_epset_set_addrs(s, (uint32_t)i, (uint32_t)j, &cc->targets[j].addr,
                                    &cc->targets[j].addrlen, 1);
        }
    }
    return s;
}

void bal_epset_free(struct bal_epset *s)
{
    if (s == NULL)
        return;
    while (s->n > 0)
        ep_remove_at(s, s->n - 1);
    for (size_t i = 0; i < s->conf->nclusters; i++)
        free(s->resolved[i]);
    free(s->resolved);
    free(s->pf);
    free(s->eps);
    free(s);
}

void bal_epset_observe(struct bal_epset *s, bal_ep_cb on_add, bal_ep_cb on_del, void *arg)
{
    s->on_add = on_add;
    s->on_del = on_del;
    s->arg = arg;
    for (size_t i = 0; on_add != NULL && i < s->n; i++)
        on_add(s->eps[i], arg);
}

static bool same_addr(const struct bal_ep *ep, const struct sockaddr_storage *a, socklen_t len)
{
    return ep->addrlen == len && memcmp(&ep->addr, a, len) == 0;
}

int bal_epset_set_addrs(struct bal_epset *s, uint32_t cl, uint32_t t,
                        const struct sockaddr_storage *addrs, const socklen_t *lens, size_t n)
{
    int changes = 0;

    s->resolved[cl][t] = true;
    /* vanished addresses leave */
    for (size_t i = s->n; i-- > 0;) {
        struct bal_ep *ep = s->eps[i];
        bool keep = false;

        if (ep->cluster != cl || ep->target != t)
            continue;
        for (size_t k = 0; k < n && !keep; k++)
            keep = same_addr(ep, &addrs[k], lens[k]);
        if (!keep) {
            ep_remove_at(s, i);
            changes++;
        }
    }
    /* new addresses join, once per cluster */
    for (size_t k = 0; k < n; k++) {
        bool present = false;

        for (size_t i = 0; i < s->n && !present; i++)
            present = s->eps[i]->cluster == cl && same_addr(s->eps[i], &addrs[k], lens[k]);
        if (!present) {
            ep_insert(s, cl, t, &addrs[k], lens[k]);
            changes++;
        }
    }
    return changes;
}

static int cluster_by_name(const struct conf *c, const char *name)
{
    for (size_t i = 0; i < c->nclusters; i++) {
        if (strcmp(c->clusters[i].name, name) == 0)
            return (int)i;
    }
    return -1;
}

static int target_by_spec(const struct conf_cluster *cc, const char *spec)
{
    for (size_t i = 0; i < cc->ntargets; i++) {
        if (strcmp(cc->targets[i].spec, spec) == 0)
            return (int)i;
    }
    return -1;
}

void bal_epset_carry(struct bal_epset *dst, const struct bal_epset *src)
{
    const struct conf *oc = src->conf, *nc = dst->conf;

    /* Resolved addresses of name targets that are still there. */
    for (size_t ci = 0; ci < oc->nclusters; ci++) {
        const struct conf_cluster *occ = &oc->clusters[ci];
        int ncl = cluster_by_name(nc, occ->name);

        if (ncl < 0)
            continue;
        for (size_t ti = 0; ti < occ->ntargets; ti++) {
            int nt = target_by_spec(&nc->clusters[ncl], occ->targets[ti].spec);
            struct sockaddr_storage *addrs;
            socklen_t *lens;
            size_t n = 0;

            if (nt < 0 || occ->targets[ti].is_literal || !src->resolved[ci][ti])
                continue;
            addrs = xcalloc(src->n, sizeof(*addrs));
            lens = xcalloc(src->n, sizeof(*lens));
            for (size_t k = 0; k < src->n; k++) {
                const struct bal_ep *ep = src->eps[k];

                if (ep->cluster == ci && ep->target == ti) {
                    memcpy(&addrs[n], &ep->addr, ep->addrlen);
                    lens[n++] = ep->addrlen;
                }
            }
            bal_epset_set_addrs(dst, (uint32_t)ncl, (uint32_t)nt, addrs, lens, n);
            free(addrs);
            free(lens);
        }
    }
    /* pick_first's choice, while the cluster stays pick_first. */
    for (size_t ci = 0; ci < oc->nclusters; ci++) {
        int ncl = cluster_by_name(nc, oc->clusters[ci].name);

        if (ncl >= 0 && oc->clusters[ci].policy == CONF_POLICY_PICK_FIRST &&
            nc->clusters[ncl].policy == CONF_POLICY_PICK_FIRST)
            dst->pf[ncl] = src->pf[ci];
    }
    /* Drained marks and health state of endpoints that stay. */
    for (size_t k = 0; k < dst->n; k++) {
        struct bal_ep *ep = dst->eps[k];
        const struct conf_cluster *ncc = &nc->clusters[ep->cluster];
        int ocl = cluster_by_name(oc, ncc->name);

        if (ocl < 0)
            continue;
        for (size_t j = 0; j < src->n; j++) {
            const struct bal_ep *o = src->eps[j];

            if (o->cluster != (uint32_t)ocl || !same_addr(o, &ep->addr, ep->addrlen))
                continue;
            ep->drained = o->drained;
            ep->ejected_until_ms = o->ejected_until_ms;
            ep->ejections = o->ejections;
            ep->ejections_total = o->ejections_total;
            memcpy(ep->ejected_by, o->ejected_by, sizeof(ep->ejected_by));
            ep->back_since_ms = o->back_since_ms;
            memcpy(ep->eject_reason, o->eject_reason, sizeof(ep->eject_reason));
            if (oc->clusters[ocl].health_check == ncc->health_check) {
                ep->healthy = o->healthy;
                ep->since_ms = o->since_ms;
                ep->rotation_since_ms = o->rotation_since_ms;
                memcpy(ep->reason, o->reason, sizeof(ep->reason));
            }
            break;
        }
    }
}

bool bal_epset_target_resolved(const struct bal_epset *s, uint32_t cl, uint32_t t)
{
    return s->resolved[cl][t];
}

bool bal_epset_set_healthy(struct bal_epset *s, struct bal_ep *ep, bool healthy, const char *reason,
                           uint64_t now_ms)
{
    (void)s;
    snprintf(ep->reason, sizeof(ep->reason), "%s", reason);
    if (ep->healthy == healthy)
        return false;
    ep->healthy = healthy;
    ep->since_ms = now_ms;
    if (healthy)
        ep->rotation_since_ms = now_ms;
    return true;
}

bool bal_epset_set_ejected(struct bal_epset *s, struct bal_ep *ep, uint64_t until_ms,
                           const char *reason)
{
    bool was = ep->ejected_until_ms != 0;

    (void)s;
    ep->ejected_until_ms = until_ms;
    if (until_ms != 0) {
        ep->ejections_total++;
        snprintf(ep->eject_reason, sizeof(ep->eject_reason), "%s", reason);
    }
    return was != (until_ms != 0);
}

bool bal_epset_set_drained(struct bal_epset *s, struct bal_ep *ep, bool drained)
{
    (void)s;
    if (ep->drained == drained)
        return false;
    ep->drained = drained;
    return true;
}

size_t bal_epset_count(const struct bal_epset *s)
{
    return s->n;
}

struct bal_ep *bal_epset_at(const struct bal_epset *s, size_t i)
{
    return i < s->n ? s->eps[i] : NULL;
}

bool bal_epset_pick_first(const struct bal_epset *s, uint32_t cl, uint32_t *id)
{
    if (cl >= s->conf->nclusters || !s->pf[cl].set)
        return false;
    *id = s->pf[cl].id;
    return true;
}

/* gRPC pick_first, once for the process: stay on the chosen endpoint while it
 * is in rotation; else the first in rotation in target/DNS order. */
static void choose_first(struct bal_epset *s, uint32_t i, struct bal_cluster *cl)
{
    const struct conf_cluster *cc = &s->conf->clusters[i];
    int first = -1, cur = -1;

    if (cc->policy != CONF_POLICY_PICK_FIRST) {
        s->pf[i].set = false;
        return;
    }
    for (size_t j = 0; j < cl->nendpoints; j++) {
        if (!cl->endpoints[j].in_rotation)
            continue;
        if (first < 0)
            first = (int)j;
        if (s->pf[i].set && cl->endpoints[j].id == s->pf[i].id)
            cur = (int)j;
    }
    if (cur < 0 || (cc->pick_first_failback && cur != first)) {
        cur = first;
        if (cur >= 0) /* with nothing in rotation, the last choice is kept */
            s->pf[i] = (struct pf_choice){.id = cl->endpoints[cur].id, .set = true};
    }
    cl->active = cur;
}

struct bal_snapshot *bal_epset_snapshot(struct bal_epset *s, uint64_t generation)
{
    struct bal_snapshot *snap = bal_snapshot_new(s->conf, generation);

    for (size_t i = 0; i < s->n; i++) {
        const struct bal_ep *ep = s->eps[i];
        struct bal_endpoint e = {0};

        e.id = ep->id;
        memcpy(&e.addr, &ep->addr, ep->addrlen);
        e.addrlen = ep->addrlen;
        memcpy(e.addr_str, ep->addr_str, sizeof(e.addr_str));
        e.origin = s->conf->clusters[ep->cluster].targets[ep->target].spec;
        e.in_rotation = ep->healthy && !ep->drained && ep->ejected_until_ms == 0;
        e.healthy = ep->healthy;
        e.ejected = ep->ejected_until_ms != 0;
        e.weight = ep->weight;
        e.since_ms = ep->healthy ? ep->rotation_since_ms : 0;
        bal_snapshot_add_endpoint(snap, ep->cluster, &e);
    }
    for (size_t i = 0; i < s->conf->nclusters; i++) {
        const struct conf_cluster *cc = &s->conf->clusters[i];
        struct bal_cluster *cl = &snap->clusters[i];
        size_t healthy = 0, usable = 0;
        bool *drained = xcalloc(cl->nendpoints, sizeof(*drained));

        for (size_t j = 0; j < cc->ntargets; j++) {
            if (!s->resolved[i][j]) {
                bal_snapshot_set_unresolved(snap, (uint32_t)i, cc->targets[j].spec);
                break;
            }
        }
        /* The snapshot's endpoints of cluster |i| are its epset entries, in order. */
        for (size_t j = 0, k = 0; j < s->n && k < cl->nendpoints; j++) {
            if (s->eps[j]->cluster == i)
                drained[k++] = s->eps[j]->drained;
        }
        for (size_t j = 0; j < cl->nendpoints; j++) {
            healthy += cl->endpoints[j].in_rotation;
            usable += !drained[j];
        }
        /* Panic mode (Envoy): too few healthy endpoints left, so spread the
         * load over all of them rather than overload the few. An operator's
         * drain holds even then. */
        if (usable > 0 && cc->panic_threshold > 0 &&
            healthy * 100 < (size_t)cc->panic_threshold * usable) {
            cl->panic = true;
            for (size_t j = 0; j < cl->nendpoints; j++)
                cl->endpoints[j].in_rotation = !drained[j];
        }
        choose_first(s, (uint32_t)i, cl);
        free(drained);
    }
    bal_snapshot_seal(snap);
    return snap;
}
