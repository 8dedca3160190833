/* Worker threads: one event_base each, their listeners, and the stack every
 * call runs through: frontend → call (with the filter chain) → attempt →
 * pool → backend, flushed once per loop turn.
 * Invariant: a worker's objects are touched only by its own thread, except the
 * snapshot, rebind and report mailboxes (atomic pointers) and the |asks| bits
 * with the eventfd that wakes the worker for them: the worker's event_base
 * runs without locks (EVENT_BASE_FLAG_NOLOCK).
 * SPDX-License-Identifier: MIT */
#define LOG_MODULE "worker"
#include "proxy/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/log.h"
#include "proxy/filters/filters.h"
#include "proxy/h2mem.h"

/* The call filters, in the order every call meets them: CORS first (its
 * preflights are answered before anything else, its headers go on every
 * answer), then the bridges that turn a browser's gRPC-Web request or a
 * REST request into the gRPC call the others see, then authentication
 * (nothing answers or routes an unauthenticated call), then switchyard's
 * own health service, tracing (the calls that reach routing; it sets the
 * trace context stats logs), stats last (it sees the final outcome). */
enum {
    F_CORS = 0,
    F_GRPC_WEB,
    F_TRANSCODE,
    F_AUTH,
    F_SELFHEALTH,
    F_TRACE,
    STATS, /* the worker reads its counters and flushes its access log */
    NCHAIN
};
static const struct proxy_filter *const chain[NCHAIN] = {
    [F_CORS] = &proxy_filter_cors,
    [F_GRPC_WEB] = &proxy_filter_grpc_web,
    [F_TRANSCODE] = &proxy_filter_transcode,
    [F_AUTH] = &proxy_filter_auth,
    [F_SELFHEALTH] = &proxy_filter_selfhealth,
    [F_TRACE] = &proxy_filter_trace,
    [STATS] = &proxy_filter_stats,
};

/* After each flush pass: the access log lines of this loop turn. */
static void after_flush(void *arg)
{
    struct proxy_worker *w = arg;

    proxy_stats_flush(w->filter_ws[STATS]);
}

/* ---- snapshots ---- */

/* Settings that follow the snapshot's configuration. */
static void apply_conf(struct proxy_worker *w)
{
    const struct conf *c = w->snap->conf;
    uint32_t idle = c->proxy.stream_idle_timeout_ms;

    /* max_connections is shared evenly by the workers. */
    w->fe.max_conns =
        (uint32_t)((c->proxy.max_connections + w->rt->nworkers - 1) / w->rt->nworkers);
    if (idle != w->idle_ms) {
        /* One common timeout per duration: O(1) adds and deletes for every
         * call's idle timer (libevent's common timeout queues). */
        struct timeval tv = {.tv_sec = idle / 1000, .tv_usec = (idle % 1000) * 1000};
        const struct timeval *ct = event_base_init_common_timeout(w->base, &tv);

        w->idle_ms = idle;
        if (ct != NULL) {
            w->idle_tv = *ct;
            w->calls.idle_tv = &w->idle_tv;
        } else {
            w->calls.idle_tv = NULL;
        }
    }
}

/* Each cluster's state (policy, retry budget, counters) follows the cluster
 * by name into snapshot |s| (a reload may add, remove or reorder clusters),
 * while the old snapshot is still referenced; clusters new to |s| start
 * afresh. */
static void cs_follow(struct proxy_worker *w, const struct bal_snapshot *s)
{
    struct proxy_cluster_state *cs = xcalloc(s->nclusters, sizeof(*cs));

    for (size_t i = 0; i < s->nclusters; i++) {
        for (size_t j = 0; w->snap != NULL && j < w->ncs; j++) {
            if (w->cs[j].lb.st != NULL &&
                strcmp(w->snap->clusters[j].name, s->clusters[i].name) == 0) {
                cs[i] = w->cs[j];
                w->cs[j] = (struct proxy_cluster_state){0};
                break;
            }
        }
        if (cs[i].lb.st != NULL)
            bal_lb_update(&cs[i].lb, &s->clusters[i]);
        else /* random: N workers do not start alike */
            bal_lb_init(&cs[i].lb, &s->clusters[i], (uint64_t)random() << 31 ^ (uint64_t)random());
    }
    for (size_t j = 0; j < w->ncs; j++) {
        bal_lb_deinit(&w->cs[j].lb);
        bal_outlier_deinit(&w->cs[j].outlier);
    }
    free(w->cs);
    w->cs = cs;
    w->ncs = s->nclusters;
}

static void take_snapshot(struct proxy_worker *w)
{
    struct bal_snapshot *s = atomic_exchange(&w->pending, NULL);

    if (s == NULL)
        return;
    cs_follow(w, s);
    bal_snapshot_unref(w->snap);
    w->snap = s;
    w->calls.snap = s;
    w->calls.cs = w->cs;
    w->calls.ncs = w->ncs;
    apply_conf(w);
    proxy_listen_apply_rebind(w);
    for (size_t i = 0; i < NCHAIN; i++) {
        if (chain[i]->on_snapshot != NULL)
            chain[i]->on_snapshot(w->filter_ws[i], &w->calls);
    }
    /* Endpoints that left the snapshot drain: running calls finish, no new ones. */
    proxy_pools_sweep(&w->pools, s);
}

void proxy_publish(struct runtime *rt, struct bal_snapshot *s)
{
    for (size_t i = 0; i < rt->nworkers; i++) {
        struct proxy_worker *w = &rt->workers[i];
        struct bal_snapshot *old = atomic_exchange(&w->pending, bal_snapshot_ref(s));

        /* A snapshot the worker never took is simply replaced. */
        bal_snapshot_unref(old);
        proxy_worker_ask(w, PROXY_ASK_SNAPSHOT);
    }
}

/* ---- counters for the admin endpoint ---- */

struct pool_walk {
    struct proxy_report *r;
    size_t cap;
};

static void add_pool(const struct proxy_pool_info *pi, void *arg)
{
    struct pool_walk *pw = arg;
    struct proxy_ep_report *e;

    if (pw->r->neps == pw->cap) {
        pw->cap = pw->cap == 0 ? 16 : pw->cap * 2;
        pw->r->eps = xreallocarray(pw->r->eps, pw->cap, sizeof(*pw->r->eps));
    }
    e = &pw->r->eps[pw->r->neps++];
    *e = (struct proxy_ep_report){
        .id = pi->ep_id,
        .active_calls = pi->active,
        .calls_total = pi->total,
        .conns = pi->conns,
        .waiting = pi->waiting,
        .connect_failures = pi->connect_failures,
        .removed = pi->removed,
    };
    snprintf(e->cluster, sizeof(e->cluster), "%s", pi->cluster);
    snprintf(e->addr, sizeof(e->addr), "%s", pi->addr);
    pw->r->be_conns += pi->conns;
}

static struct proxy_report *report_new(struct proxy_worker *w)
{
    struct proxy_report *r = xcalloc(1, sizeof(*r));
    struct pool_walk pw = {.r = r};

    proxy_stats_report(w->filter_ws[STATS], r);
    r->fe_conns = w->fe.nconns;
    r->pools = w->pools.npools;
    proxy_pools_each(&w->pools, add_pool, &pw);
    r->clusters = xcalloc(w->ncs > 0 ? w->ncs : 1, sizeof(*r->clusters));
    r->nclusters = w->ncs;
    for (size_t i = 0; i < w->ncs; i++) {
        struct proxy_cluster_report *c = &r->clusters[i];

        snprintf(c->name, sizeof(c->name), "%s", w->snap->clusters[i].name);
        memcpy(c->retries, w->cs[i].retries, sizeof(c->retries));
        c->hedges = w->cs[i].hedges;
        c->budget_exhausted = w->cs[i].budget_exhausted;
    }
    return r;
}

static void post_report(struct proxy_worker *w)
{
    proxy_report_free(atomic_exchange(&w->report, report_new(w)));
    event_active(w->rt->ev_report_ready, EV_READ, 0);
}

/* ---- drain ---- */

static void report_done(struct proxy_worker *w)
{
    if (w->done_reported)
        return;
    w->done_reported = true;
    atomic_fetch_sub(&w->rt->workers_active, 1);
    event_active(w->rt->ev_done, EV_READ, 0);
}

static void on_fe_gone(void *arg)
{
    struct proxy_worker *w = arg;

    if (w->draining && w->fe.nconns == 0)
        report_done(w);
}

static void drain(struct proxy_worker *w)
{
    if (w->draining)
        return;
    w->draining = true;
    w->calls.draining = true;
    proxy_listen_stop(w);
    proxy_fe_drain(&w->fe);
    for (size_t i = 0; i < NCHAIN; i++) {
        if (chain[i]->on_snapshot != NULL)
            chain[i]->on_snapshot(w->filter_ws[i], &w->calls);
    }
    on_fe_gone(w);
}

void proxy_workers_drain(struct runtime *rt)
{
    for (size_t i = 0; i < rt->nworkers; i++)
        proxy_worker_ask(&rt->workers[i], PROXY_ASK_DRAIN);
}

/* ---- the mailbox ---- */

void proxy_worker_ask(struct proxy_worker *w, unsigned what)
{
    uint64_t one = 1;

    atomic_fetch_or(&w->asks, what);
    /* Fails only when the counter would overflow, and it is read back to 0
     * on every wake-up: a wake-up is pending then anyway. */
    if (write(w->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        log_error("worker %d: eventfd write: %s", w->index, strerror(errno));
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    struct proxy_worker *w = arg;
    uint64_t n;
    unsigned asks;

    (void)what;
    /* Read before taking the bits: an ask that lands in between leaves the
     * eventfd readable, so at worst one more wake-up finds nothing to do. */
    if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
        log_error("worker %d: eventfd read: %s", w->index, strerror(errno));
    asks = atomic_exchange(&w->asks, 0);
    if (asks & PROXY_ASK_STOP) {
        event_base_loopbreak(w->base);
        return;
    }
    if (asks & PROXY_ASK_SNAPSHOT)
        take_snapshot(w);
    if (asks & PROXY_ASK_REPORT)
        post_report(w);
    if (asks & PROXY_ASK_DRAIN)
        drain(w);
}

/* ---- lifecycle ---- */

static int worker_init(struct runtime *rt, struct proxy_worker *w, int index)
{
    size_t off = 0;

    w->rt = rt;
    w->index = index;
    atomic_init(&w->pending, NULL);
    atomic_init(&w->report, NULL);
    atomic_init(&w->asks, 0);
    w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->wake_fd < 0) {
        log_error("worker %d: eventfd: %s", index, strerror(errno));
        return -1;
    }
    {
        /* epoll changelist: the EV_WRITE add/remove libevent does around
         * each socket write collapses when the next write follows within
         * the same loop turn, instead of costing two epoll_ctl calls per
         * writev (make bench's strace). Our fds are never dup()ed.
         * No lock: only this worker's thread touches its base (the main
         * thread asks through |wake_fd|), and libevent's mutexes cost 2 %
         * of a call's instructions (bench/profile.sh). */
        struct event_config *cfg = event_config_new();

        event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
        event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
        w->base = event_base_new_with_config(cfg);
        event_config_free(cfg);
    }
    if (w->base == NULL) {
        log_error("worker %d: event_base_new failed", index);
        return -1;
    }
    /* The main thread's snapshot until the first one published arrives. */
    w->snap = bal_snapshot_ref(rt->snap);
    cs_follow(w, w->snap);
    proxy_flusher_init(&w->fl, w->base);
    w->fl.after = after_flush;
    w->fl.after_arg = w;
    proxy_be_env_init(&w->be, w->base, &w->fl);
    proxy_pools_init(&w->pools, &w->be);
    w->calls = (struct proxy_call_env){
        .base = w->base,
        .snap = w->snap,
        .cs = w->cs,
        .ncs = w->ncs,
        .nworkers = rt->nworkers,
        .pools = &w->pools,
        .filters = chain,
        .nfilters = NCHAIN,
        .alog_fd = rt->alog_fd,
        .eject = rt->eject,
        .eject_arg = rt,
        .start_attempt = proxy_attempt_start,
    };
    w->filter_ws = xcalloc(NCHAIN, sizeof(*w->filter_ws));
    w->fstate_off = xcalloc(NCHAIN, sizeof(*w->fstate_off));
    for (size_t i = 0; i < NCHAIN; i++) {
        w->filter_ws[i] = xcalloc(1, chain[i]->worker_state);
        w->fstate_off[i] = off;
        off += (chain[i]->call_state + 15) & ~(size_t)15;
    }
    w->calls.filter_ws = w->filter_ws;
    w->calls.fstate_off = w->fstate_off;
    w->calls.fstate_size = off;
    for (size_t i = 0; i < NCHAIN; i++) {
        if (chain[i]->worker_init != NULL)
            chain[i]->worker_init(w->filter_ws[i], &w->calls);
    }
    proxy_fe_env_init(&w->fe, w->base, &w->fl, &w->calls, index);
    w->fe.on_gone = on_fe_gone;
    w->fe.gone_arg = w;
    apply_conf(w);
    w->ev_wake = event_new(w->base, w->wake_fd, EV_READ | EV_PERSIST, on_wake, w);
    if (w->ev_wake == NULL || event_add(w->ev_wake, NULL) != 0) {
        log_error("worker %d: cannot watch its eventfd", index);
        return -1;
    }
    return proxy_listen_start(w, &rt->conf->proxy);
}

static void worker_deinit(struct proxy_worker *w)
{
    if (w->base == NULL)
        return;
    proxy_listen_stop(w);
    /* Calls end with their client connections (filters see them done, their
     * attempts are cancelled), then the backends go. */
    proxy_fe_env_deinit(&w->fe);
    proxy_pools_deinit(&w->pools);
    /* Frees may have scheduled flushes of connections that are gone now. */
    w->fl.dirty = NULL;
    /* bufferevent_free() leaves a connection's queued deferred callbacks
     * behind, each holding a reference that event_base_free() would drop
     * without freeing: one non-blocking turn runs them (the mailboxes are
     * closed first, their handlers need what was just freed). */
    if (w->ev_wake != NULL)
        event_del(w->ev_wake);
    event_base_loop(w->base, EVLOOP_NONBLOCK);
    proxy_call_env_deinit(&w->calls);
    for (size_t i = 0; w->filter_ws != NULL && i < NCHAIN; i++) {
        if (chain[i]->worker_deinit != NULL)
            chain[i]->worker_deinit(w->filter_ws[i]);
        free(w->filter_ws[i]);
    }
    free(w->filter_ws);
    free(w->fstate_off);
    proxy_be_env_deinit(&w->be);
    proxy_flusher_deinit(&w->fl);
    if (w->ev_wake != NULL)
        event_free(w->ev_wake);
    close(w->wake_fd);
    proxy_report_free(atomic_exchange(&w->report, NULL));
    bal_snapshot_unref(atomic_exchange(&w->pending, NULL));
    for (size_t i = 0; i < w->ncs; i++) {
        bal_lb_deinit(&w->cs[i].lb);
        bal_outlier_deinit(&w->cs[i].outlier);
    }
    bal_snapshot_unref(w->snap);
    free(w->cs);
    event_base_free(w->base);
    w->base = NULL;
}

int proxy_workers_init(struct runtime *rt)
{
    /* Seeds of the workers' policies (round_robin starts, random picks). */
    srandom((unsigned)time(NULL) ^ (unsigned)getpid());
    rt->workers = xcalloc(rt->nworkers, sizeof(*rt->workers));
    for (size_t i = 0; i < rt->nworkers; i++) {
        if (worker_init(rt, &rt->workers[i], (int)i) != 0) {
            for (size_t j = 0; j <= i; j++)
                worker_deinit(&rt->workers[j]);
            free(rt->workers);
            rt->workers = NULL;
            return -1;
        }
    }
    return 0;
}

static void *worker_main(void *arg)
{
    struct proxy_worker *w = arg;

    take_snapshot(w);
    event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
    proxy_h2mem_release(); /* what this thread kept goes with it */
    return NULL;
}

int proxy_workers_start(struct runtime *rt)
{
    atomic_store(&rt->workers_active, (int)rt->nworkers);
    for (size_t i = 0; i < rt->nworkers; i++) {
        int rv = pthread_create(&rt->workers[i].thread, NULL, worker_main, &rt->workers[i]);

        if (rv != 0) {
            log_error("pthread_create: %s", strerror(rv));
            return -1; /* proxy_workers_stop() stops those already running */
        }
        rt->nstarted++;
    }
    return 0;
}

void proxy_workers_stop(struct runtime *rt)
{
    for (size_t i = 0; i < rt->nstarted; i++)
        proxy_worker_ask(&rt->workers[i], PROXY_ASK_STOP);
    for (size_t i = 0; i < rt->nstarted; i++)
        pthread_join(rt->workers[i].thread, NULL);
    rt->nstarted = 0;
    for (size_t i = 0; i < rt->nworkers; i++)
        worker_deinit(&rt->workers[i]);
    free(rt->workers);
    rt->workers = NULL;
    rt->nworkers = 0;
}
