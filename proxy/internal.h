/* proxy internals shared by the main thread's files (main.c, admin.c, dns.c)
 * and the worker (worker.c, listen.c): the worker object and its mailboxes.
 * Invariant: everything here except the mailboxes (atomic pointers, the
 * |asks| bits and the eventfd that wakes the worker for them) is owned and
 * touched by exactly one thread: a worker's objects by that worker, the
 * runtime by the main thread. A worker's event_base has no lock: no other
 * thread may add, activate or break anything on it.
 * SPDX-License-Identifier: MIT */
#ifndef PROXY_INTERNAL_H
#define PROXY_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "balancer/bal.h"
#include "conf/conf.h"
#include "proxy/be.h"
#include "proxy/call.h"
#include "proxy/conn.h"
#include "proxy/fe.h"
#include "proxy/pool.h"
#include "proxy/proxy.h"
#include "proxy/report.h"

struct proxy_rebind {
    bool plain, tls;            /* which listener changes */
    evutil_socket_t fd, fd_tls; /* the new sockets; -1 when that listener is now off */
};

struct proxy_worker {
    struct runtime *rt;
    int index;
    pthread_t thread;
    struct event_base *base;
    struct evconnlistener *listener;     /* listen; NULL when off */
    struct evconnlistener *listener_tls; /* listen_tls, or NULL */
    /* new listening sockets after a reload changed listen/listen_tls: the main
     * thread binds them, the worker swaps them in with the next snapshot */
    _Atomic(struct proxy_rebind *) rebind;

    /* the stack: frontend → calls (with filters) → attempts → pools → backend */
    struct proxy_flusher fl;
    struct proxy_fe_env fe;
    struct proxy_call_env calls;
    struct proxy_pools pools;
    struct proxy_be_env be;
    void **filter_ws;
    size_t *fstate_off;
    struct timeval idle_tv; /* stream_idle_timeout as a common timeout */
    uint32_t idle_ms;       /* the value |idle_tv| was made for */

    /* what the main thread asks (PROXY_ASK_* bits), with a write to
     * |wake_fd| (an eventfd) that |ev_wake| reads on the worker's loop */
    atomic_uint asks;
    int wake_fd;
    struct event *ev_wake;

    /* snapshot mailbox: the main thread stores, the worker takes */
    _Atomic(struct bal_snapshot *) pending;
    struct bal_snapshot *snap;
    struct proxy_cluster_state *cs; /* one per cluster of |snap| */
    size_t ncs;

    _Atomic(struct proxy_report *) report; /* the worker's answer to PROXY_ASK_REPORT */

    bool draining;
    bool done_reported;
};

/* ---- worker.c ---- */
enum {
    PROXY_ASK_SNAPSHOT = 1, /* take |pending| */
    PROXY_ASK_REPORT = 2,   /* post a proxy_report, then activate rt->ev_report_ready */
    PROXY_ASK_DRAIN = 4,    /* stop accepting, let open connections finish */
    PROXY_ASK_STOP = 8,     /* leave the loop */
};
/** Asks |w| for the PROXY_ASK_* bits |what| (any thread; no lock). */
void proxy_worker_ask(struct proxy_worker *w, unsigned what);

/* ---- listen.c ---- */
/** Binds |w|'s listeners for |pc| (SO_REUSEPORT). Returns 0 or -1 (logged). */
int proxy_listen_start(struct proxy_worker *w, const struct conf_proxy *pc);
/** Closes |w|'s listeners (drain, exit); open connections stay. */
void proxy_listen_stop(struct proxy_worker *w);
/** Swaps in the sockets a reload bound for |w| (proxy_workers_rebind()). */
void proxy_listen_apply_rebind(struct proxy_worker *w);

#endif
