/* switchyard runtime: the main thread's state and the worker threads.
 * Invariant: struct runtime is touched only by the main thread; workers reach
 * it only through the snapshot mailbox and the drain/done events.
 * SPDX-License-Identifier: MIT */
#ifndef PROXY_PROXY_H
#define PROXY_PROXY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "balancer/outlier.h"

struct event;
struct evconnlistener;
struct event_base;
struct conf;
struct conf_proxy;
struct bal_registry;
struct bal_snapshot;
struct bal_epset;
struct proxy_worker;
struct proxy_dns;
struct proxy_admin;
struct proxy_otlp;
struct hc;
struct proxy_outlier_box;
struct proxy_rest;

/** The last SIGHUP reload, for /status and /metrics. */
struct proxy_reload_info {
    uint64_t successes, failures;
    double time;      /* wall clock of the last reload; 0: none since start */
    bool ok;          /* the last reload was applied */
    char error[1024]; /* why the last one failed ("" after a success) */
};

struct runtime {
    const char *conf_path;
    struct conf *conf; /* owned */
    struct event_base *base;
    struct bal_registry *reg;  /* owned */
    struct bal_epset *eps;     /* owned: resolved endpoints and their health */
    struct event *ev_rebuild;  /* activated when |eps| changed */
    struct proxy_dns *dns;     /* owned: c-ares state (dns.c) */
    struct hc *hc;             /* owned: the health checker (health/) */
    struct bal_snapshot *snap; /* the main thread's reference to the current snapshot */
    uint64_t generation;
    struct proxy_worker *workers;
    size_t nworkers;
    size_t nstarted; /* worker threads running */
    struct event *ev_sigterm;
    struct event *ev_sigint;
    struct event *ev_done;     /* activated by a worker when it finished draining */
    struct event *drain_timer; /* drain_timeout */
    atomic_int workers_active;
    bool draining;
    double start_time; /* wall clock at start, for uptime */
    int alog_fd;       /* access log (-1: off); dup2()'d over on SIGUSR1 */
    struct event *ev_sigusr1;
    struct event *ev_sighup;
    struct event *ev_report_ready;      /* a worker posted a proxy_report */
    struct proxy_admin *admin;          /* owned (admin.c) */
    struct proxy_outlier_box *outliers; /* owned (outlier.c): workers' ejection requests */
    struct proxy_otlp *otlp;            /* owned: the span exporter (otlp.c) */
    struct proxy_reload_info reload;
    struct proxy_rest *rest; /* owned: REST transcoding's sources and table */
    /* rt->snap is about to become |now| instead of |old| (the admin's
     * proxy_admin_snapshot_replaced()); NULL: nobody to tell. */
    void (*snapshot_replaced)(struct runtime *rt, const struct bal_snapshot *old,
                              const struct bal_snapshot *now);
    /* Outlier detection: how a worker asks for an ejection (env->eject). */
    void (*eject)(void *arg, const char *cluster, uint32_t ep_id, const char *addr,
                  enum bal_outlier_verdict why);
};

/* ---- snapshot.c ---- */

/** A new snapshot of rt->eps on rt->conf (it keeps the conf, and the REST
 *  table of the moment, alive). Main thread. */
struct bal_snapshot *proxy_snapshot_build(struct runtime *rt);

/** The event proxy_snapshot_changed() activates (rt->ev_rebuild). */
struct event *proxy_snapshot_event(struct runtime *rt);

/** Tells the main loop that rt->eps changed: one new snapshot is built and
 *  published at the end of this loop iteration, however many changes came. */
void proxy_snapshot_changed(struct runtime *rt);

/** Builds and publishes a snapshot of rt->eps at once rather than at the end
 *  of the loop turn: for a change its caller must see applied before it
 *  answers (a drain by hand). Main thread. */
void proxy_snapshot_rebuild(struct runtime *rt);

/** Creates |rt->nworkers| workers: each binds its own SO_REUSEPORT listener on
 *  the configured address. Returns 0, or -1 (logged) when a listener cannot be
 *  bound; nothing is left running then. Does not start the threads. */
int proxy_workers_init(struct runtime *rt);

/** Checks that no other process listens on |pc|'s listen and listen_tls
 *  addresses (the workers' SO_REUSEPORT sockets would share them silently).
 *  Returns 0, or -1 with "ADDRESS: reason" in |err|. Main thread, before
 *  proxy_workers_init(). */
int proxy_listen_check(const struct conf_proxy *pc, char *err, size_t errlen);

/** Makes the admin listener |l| pause (not spin) when accept() runs out of
 *  file descriptors, and resume once one can be opened: call after
 *  evhttp_bind_listener(), which keeps the error callback. Main thread. */
void proxy_listen_guard_admin(struct evconnlistener *l);

/** Starts the worker threads. Returns 0 or -1 (logged). */
int proxy_workers_start(struct runtime *rt);

/** Publishes |s| to every worker; takes one reference per worker. Main thread. */
void proxy_publish(struct runtime *rt, struct bal_snapshot *s);

/** Asks every worker to stop accepting and drain its connections. */
void proxy_workers_drain(struct runtime *rt);

/** Starts the admin HTTP listener ([admin] listen; nothing when off). Returns 0
 *  or -1 (logged). */
int proxy_admin_start(struct runtime *rt);
void proxy_admin_stop(struct runtime *rt);
/** rt->snap is about to become |now| instead of |old| (NULL at start): the
 *  admin remembers the endpoints that left a cluster, to show them as
 *  draining while workers report calls on them. Main thread. */
void proxy_admin_snapshot_replaced(struct runtime *rt, const struct bal_snapshot *old,
                                   const struct bal_snapshot *now);
/** A worker's report arrived (called on the main thread by worker.c). */
void proxy_admin_report_ready(struct runtime *rt);

/** Binds new listening sockets for every worker when |nc| moves listen or
 *  listen_tls away from |oc|; the workers swap them in with their next
 *  snapshot, and connections already open stay. Returns 0 (also when nothing
 *  changed), or -1 with |err| when a socket cannot be bound (nothing changed
 *  then). Main thread. */
int proxy_workers_rebind(struct runtime *rt, const struct conf *oc, const struct conf *nc,
                         char *err, size_t errlen);

/** Stops the worker loops, joins the threads and frees the workers. */
void proxy_workers_stop(struct runtime *rt);

#endif
