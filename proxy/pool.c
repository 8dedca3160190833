/* Backend pools (pool.h).
 * SPDX-License-Identifier: MIT */
#define LOG_MODULE "pool"
#include "proxy/pool.h"

#include <stdio.h>
#include <string.h>

#include "conf/conf.h"
#include "core/alloc.h"
#include "core/log.h"
#include "core/tls.h"
#include <event2/event.h>

struct proxy_pool {
    struct proxy_pools *t;
    struct proxy_pool *next_same_id; /* other pools of the same endpoint id */
    char *cluster;                   /* the cluster's name (its identity across reloads) */
    uint32_t ep_id;
    struct proxy_be_settings set; /* addr, TLS, limits for new connections */
    char addr_str[BAL_ADDRSTRLEN];
    char tls_host[256];
    struct tls_be *tls; /* owned reference */
    uint64_t gen;       /* snapshot generation |set| was taken from */
    uint32_t max_conns;
    struct proxy_be_conn **conns;
    uint32_t nconns;
    struct proxy_pool_waiter *wait_head, *wait_tail;
    uint32_t nwaiting;
    uint64_t down_until_ms;    /* soft-skipped by picks until then (connect failures) */
    uint32_t fails;            /* consecutive connect failures */
    uint64_t connect_failures; /* ever, for metrics */
    uint64_t active, total;
    bool removed;           /* left the snapshot */
    struct event *drain_ev; /* drain_unhealthy: ends the calls still running here */
};

static void pool_wake(struct proxy_pool *p);
static void pool_maybe_free(struct proxy_pool *p);

/* ---- what the connections tell their pool ---- */

static void on_capacity(void *owner, struct proxy_be_conn *bc)
{
    struct proxy_pool *p = owner;

    (void)bc;
    /* A connection is up: the endpoint is reachable again. */
    p->fails = 0;
    p->down_until_ms = 0;
    if (p->wait_head != NULL)
        pool_wake(p);
}

static void on_connect_failed(void *owner, struct proxy_be_conn *bc, const char *why)
{
    struct proxy_pool *p = owner;
    uint64_t backoff = 100ull << (p->fails < 6 ? p->fails : 6);

    (void)bc;
    p->fails++;
    p->connect_failures++;
    p->down_until_ms = proxy_loop_ms(p->t->env->base) + backoff;
    if (p->fails == 1)
        log_warn("backend %s: connect failed: %s", p->addr_str, why);
}

static void drop_conn(struct proxy_pool *p, struct proxy_be_conn *bc)
{
    for (uint32_t i = 0; i < p->nconns; i++) {
        if (p->conns[i] == bc) {
            p->conns[i] = p->conns[--p->nconns];
            return;
        }
    }
}

static void on_gone(void *owner, struct proxy_be_conn *bc)
{
    struct proxy_pool *p = owner;

    drop_conn(p, bc);
    if (p->wait_head != NULL)
        pool_wake(p); /* waiters may open a new connection now */
    pool_maybe_free(p);
}

static const struct proxy_be_owner_ops owner_ops = {
    .on_capacity = on_capacity,
    .on_connect_failed = on_connect_failed,
    .on_gone = on_gone,
};

/* ---- settings ---- */

/* "host:port" or "[v6]:port" -> host, the name TLS verifies by default. */
static void host_of(const char *origin, char *buf, size_t len)
{
    const char *o = origin, *end;

    if (o == NULL) {
        buf[0] = '\0';
        return;
    }
    if (*o == '[') {
        o++;
        end = strchr(o, ']');
    } else {
        end = strrchr(o, ':');
    }
    if (end == NULL)
        end = o + strlen(o);
    snprintf(buf, len, "%.*s", (int)(end - o), o);
}

/* Settings follow the current configuration (a reload): new connections use
 * them; open ones keep theirs. */
static void pool_configure(struct proxy_pool *p, const struct bal_snapshot *s,
                           const struct bal_cluster *cl, const struct bal_endpoint *ep)
{
    const struct conf_cluster *cc = cl->conf;
    const struct conf_proxy *pc = &s->conf->proxy;
    struct tls_be *tb = tls_be_get(s->conf, cl->index);

    p->gen = s->generation;
    p->max_conns = cc->max_connections;
    p->set.connect_timeout_ms = cc->connect_timeout_ms;
    p->set.max_streams = cc->max_streams_per_connection;
    p->set.stream_window = pc->stream_buffer;
    p->set.keepalive_ms = pc->keepalive_time_ms;
    p->set.keepalive_timeout_ms = pc->keepalive_timeout_ms;
    if (tb != p->tls) {
        tls_be_unref(p->tls);
        p->tls = tls_be_ref(tb);
    }
    p->set.tls = p->tls;
    host_of(ep->origin, p->tls_host, sizeof(p->tls_host));
    p->set.tls_host = p->tls_host;
}

static bool same_addr(const struct proxy_pool *p, const struct bal_endpoint *ep)
{
    return p->set.addrlen == ep->addrlen && memcmp(&p->set.addr, &ep->addr, ep->addrlen) == 0;
}

struct proxy_pool *proxy_pool_find(const struct proxy_pools *t, const struct bal_cluster *cl,
                                   const struct bal_endpoint *ep)
{
    if (ep->id >= t->nids)
        return NULL;
    for (struct proxy_pool *p = t->by_id[ep->id]; p != NULL; p = p->next_same_id) {
        if (strcmp(p->cluster, cl->name) == 0 && same_addr(p, ep))
            return p;
    }
    return NULL;
}

struct proxy_pool *proxy_pool_get(struct proxy_pools *t, const struct bal_snapshot *s,
                                  const struct bal_cluster *cl, const struct bal_endpoint *ep)
{
    struct proxy_pool *p = proxy_pool_find(t, cl, ep);

    if (p != NULL) {
        if (p->gen != s->generation)
            pool_configure(p, s, cl, ep);
        return p;
    }
    if (ep->id >= t->nids) {
        size_t n = ep->id + 8;

        t->by_id = xreallocarray(t->by_id, n, sizeof(*t->by_id));
        memset(t->by_id + t->nids, 0, (n - t->nids) * sizeof(*t->by_id));
        t->nids = n;
    }
    p = xcalloc(1, sizeof(*p));
    p->t = t;
    p->cluster = xstrdup(cl->name);
    p->ep_id = ep->id;
    memcpy(&p->set.addr, &ep->addr, ep->addrlen);
    p->set.addrlen = ep->addrlen;
    snprintf(p->addr_str, sizeof(p->addr_str), "%s", ep->addr_str);
    p->set.addr_str = p->addr_str;
    pool_configure(p, s, cl, ep);
    p->next_same_id = t->by_id[ep->id];
    t->by_id[ep->id] = p;
    t->npools++;
    return p;
}

static void pool_free(struct proxy_pool *p)
{
    struct proxy_pools *t = p->t;
    struct proxy_pool **pp = &t->by_id[p->ep_id];

    while (*pp != p)
        pp = &(*pp)->next_same_id;
    *pp = p->next_same_id;
    t->npools--;
    if (p->drain_ev != NULL)
        event_free(p->drain_ev);
    tls_be_unref(p->tls);
    free(p->conns);
    free(p->cluster);
    free(p);
}

static void pool_maybe_free(struct proxy_pool *p)
{
    if (p->removed && p->nconns == 0 && p->wait_head == NULL && p->active == 0)
        pool_free(p);
}

/* ---- acquiring a stream slot ---- */

static struct proxy_be_conn *open_conn(struct proxy_pool *p)
{
    struct proxy_be_conn *bc = proxy_be_conn_new(p->t->env, &p->set, &owner_ops, p);

    if (bc == NULL)
        return NULL;
    p->conns = xreallocarray(p->conns, p->nconns + 1, sizeof(*p->conns));
    p->conns[p->nconns++] = bc;
    log_debug("backend %s: connection %u/%u (cluster %s)", p->addr_str, p->nconns, p->max_conns,
              p->cluster);
    return bc;
}

static struct proxy_be_conn *with_capacity(struct proxy_pool *p)
{
    for (uint32_t i = 0; i < p->nconns; i++) {
        if (proxy_be_has_capacity(p->conns[i]))
            return p->conns[i];
    }
    return NULL;
}

static bool any_connecting(const struct proxy_pool *p)
{
    for (uint32_t i = 0; i < p->nconns; i++) {
        if (proxy_be_connecting(p->conns[i]))
            return true;
    }
    return false;
}

int proxy_pool_acquire(struct proxy_pool *p, struct proxy_pool_waiter *wt,
                       struct proxy_be_conn **bc, const char **why)
{
    *bc = with_capacity(p);
    if (*bc != NULL)
        return 0;
    if (p->nconns < p->max_conns) {
        /* Streams are opened on a connecting connection at once: nghttp2 holds
         * the frames until it is connected (conn.h |hold|). */
        *bc = open_conn(p);
        if (*bc != NULL)
            return 0;
        *why = "cannot open a backend connection";
        return -1;
    }
    if (p->nwaiting >= PROXY_POOL_MAX_WAITING) {
        *why = "too many calls waiting for this backend";
        return -1;
    }
    /* Every connection is full: wait here for a stream to close. */
    wt->pool = p;
    wt->next = NULL;
    wt->prev = p->wait_tail;
    if (p->wait_tail != NULL)
        p->wait_tail->next = wt;
    else
        p->wait_head = wt;
    p->wait_tail = wt;
    p->nwaiting++;
    return 1;
}

void proxy_pool_cancel(struct proxy_pool_waiter *wt)
{
    struct proxy_pool *p = wt->pool;

    if (p == NULL)
        return;
    if (wt->prev != NULL)
        wt->prev->next = wt->next;
    else
        p->wait_head = wt->next;
    if (wt->next != NULL)
        wt->next->prev = wt->prev;
    else
        p->wait_tail = wt->prev;
    wt->next = wt->prev = NULL;
    wt->pool = NULL;
    p->nwaiting--;
}

static void pool_wake(struct proxy_pool *p)
{
    struct proxy_pool_waiter *wt;

    while ((wt = p->wait_head) != NULL) {
        struct proxy_be_conn *bc = with_capacity(p);

        if (bc == NULL && p->nconns < p->max_conns)
            bc = open_conn(p);
        if (bc == NULL) {
            if (p->nconns > 0 && (p->nconns >= p->max_conns || any_connecting(p)))
                return; /* capacity comes back when a stream ends */
            /* Nothing can serve them: let them try elsewhere. */
            while ((wt = p->wait_head) != NULL) {
                proxy_pool_cancel(wt);
                wt->failed(wt, "no backend connection could be opened");
            }
            return;
        }
        proxy_pool_cancel(wt);
        wt->ready(wt, bc);
    }
}

bool proxy_pool_is_down(const struct proxy_pool *p, uint64_t now_ms)
{
    return p->down_until_ms > now_ms;
}

void proxy_pool_attempt_start(struct proxy_pool *p)
{
    p->active++;
    p->total++;
}

void proxy_pool_attempt_end(struct proxy_pool *p)
{
    p->active--;
    pool_maybe_free(p);
}

/* ---- snapshots ---- */

/* |p|'s endpoint in |s| (and its cluster in |*clp|), or NULL. */
static const struct bal_endpoint *in_snapshot(const struct proxy_pool *p,
                                              const struct bal_snapshot *s,
                                              const struct bal_cluster **clp)
{
    for (size_t i = 0; i < s->nclusters; i++) {
        const struct bal_cluster *cl = &s->clusters[i];

        if (strcmp(cl->name, p->cluster) != 0)
            continue;
        for (size_t j = 0; j < cl->nendpoints; j++) {
            if (cl->endpoints[j].id == p->ep_id && same_addr(p, &cl->endpoints[j])) {
                *clp = cl;
                return &cl->endpoints[j];
            }
        }
    }
    return NULL;
}

/* drain_unhealthy's time is up: the calls still running on an endpoint that
 * failed its health checks end (their clients reconnect to healthy ones). */
static void on_drain_unhealthy(evutil_socket_t fd, short what, void *arg)
{
    struct proxy_pool *p = arg;

    (void)fd;
    (void)what;
    if (p->nconns > 0)
        log_info("backend %s: still unhealthy; ending its %llu call(s) (drain_unhealthy)",
                 p->addr_str, (unsigned long long)p->active);
    /* On a copy: a call that ends may make the pool open a connection. The
     * connections go in the flush pass. */
    if (p->nconns > 0) {
        uint32_t n = p->nconns;
        struct proxy_be_conn **conns = xcalloc(n, sizeof(*conns));

        memcpy(conns, p->conns, n * sizeof(*conns));
        for (uint32_t i = 0; i < n; i++)
            proxy_be_shutdown(conns[i], "the endpoint failed its health checks (drain_unhealthy)");
        free(conns);
    }
}

/* An endpoint in the snapshot that failed its health checks gets
 * drain_unhealthy's timer; one that passes again loses it. */
static void drain_unhealthy(struct proxy_pool *p, const struct bal_cluster *cl,
                            const struct bal_endpoint *ep)
{
    uint32_t ms = cl->conf->drain_unhealthy_ms;

    if (ms == 0 || ep->healthy) {
        if (p->drain_ev != NULL)
            event_del(p->drain_ev);
        return;
    }
    if (p->drain_ev == NULL)
        p->drain_ev = event_new(p->t->env->base, -1, 0, on_drain_unhealthy, p);
    if (p->drain_ev != NULL && !event_pending(p->drain_ev, EV_TIMEOUT, NULL)) {
        struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};

        event_add(p->drain_ev, &tv);
    }
}

void proxy_pools_sweep(struct proxy_pools *t, const struct bal_snapshot *s)
{
    for (size_t id = 0; id < t->nids; id++) {
        struct proxy_pool *p = t->by_id[id];

        while (p != NULL) {
            struct proxy_pool *next = p->next_same_id;

            const struct bal_cluster *cl = NULL;
            const struct bal_endpoint *ep = in_snapshot(p, s, &cl);

            p->removed = ep == NULL;
            if (!p->removed)
                drain_unhealthy(p, cl, ep);
            if (p->removed) {
                /* Endpoints that left drain: running calls finish, no new ones;
                 * idle connections close now, busy ones when their last
                 * stream ends. */
                for (uint32_t i = 0; i < p->nconns; i++)
                    proxy_be_close_idle(p->conns[i]);
                pool_maybe_free(p);
            }
            p = next;
        }
    }
}

void proxy_pools_init(struct proxy_pools *t, struct proxy_be_env *env)
{
    *t = (struct proxy_pools){0};
    t->env = env;
}

void proxy_pools_deinit(struct proxy_pools *t)
{
    for (size_t id = 0; id < t->nids; id++) {
        while (t->by_id[id] != NULL) {
            struct proxy_pool *p = t->by_id[id];

            p->removed = true;
            while (p->wait_head != NULL)
                proxy_pool_cancel(p->wait_head);
            /* Each free calls on_gone, which frees the pool with the last one. */
            if (p->nconns == 0) {
                p->active = 0;
                pool_free(p);
                continue;
            }
            p->active = 0;
            proxy_be_conn_free(p->conns[p->nconns - 1]);
        }
    }
    free(t->by_id);
    *t = (struct proxy_pools){0};
}

void proxy_pools_each(const struct proxy_pools *t,
                      void (*fn)(const struct proxy_pool_info *pi, void *arg), void *arg)
{
    for (size_t id = 0; id < t->nids; id++) {
        for (const struct proxy_pool *p = t->by_id[id]; p != NULL; p = p->next_same_id) {
            struct proxy_pool_info pi = {
                .ep_id = p->ep_id,
                .cluster = p->cluster,
                .addr = p->addr_str,
                .active = p->active,
                .total = p->total,
                .conns = p->nconns,
                .waiting = p->nwaiting,
                .connect_failures = p->connect_failures,
                .removed = p->removed,
            };

            fn(&pi, arg);
        }
    }
}
