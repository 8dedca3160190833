/* Worker threads: one event_base, one SO_REUSEPORT listener, the frontend
 * connections accepted on it and the backend pools they use.
 * Invariant: a worker's objects are touched only by its own thread, except the
 * snapshot mailbox (an atomic pointer) and the events the main thread activates.
 * SPDX-License-Identifier: MIT */
#define LOG_MODULE "worker"
#include "proxy/internal.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/thread.h>

#include "core/log.h"

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);

    if (p == NULL) {
        log_error("out of memory");
        abort();
    }
    return p;
}

uint64_t proxy_now_ms(struct proxy_worker *w)
{
    struct timeval tv;

    event_base_gettimeofday_cached(w->base, &tv);
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

nghttp2_nv *proxy_worker_nv(struct proxy_worker *w, nghttp2_rcbuf **rc, size_t n)
{
    if (n > w->nvcap) {
        size_t cap = n < 64 ? 64 : n;
        nghttp2_nv *nv = reallocarray(w->nv, cap, sizeof(*nv));

        if (nv == NULL) {
            log_error("out of memory");
            abort();
        }
        w->nv = nv;
        w->nvcap = cap;
    }
    for (size_t i = 0; i < n; i++) {
        nghttp2_vec name = nghttp2_rcbuf_get_buf(rc[2 * i]);
        nghttp2_vec value = nghttp2_rcbuf_get_buf(rc[2 * i + 1]);

        w->nv[i] = (nghttp2_nv){name.base, value.base, name.len, value.len, NGHTTP2_NV_FLAG_NONE};
    }
    return w->nv;
}

void proxy_conn_schedule(struct proxy_conn *c)
{
    struct proxy_worker *w = c->w;

    if (c->dirty)
        return;
    c->dirty = true;
    c->next_dirty = w->dirty;
    if (w->dirty == NULL)
        event_active(w->ev_flush, EV_WRITE, 0);
    w->dirty = c;
}

int proxy_conn_feed(struct proxy_conn *c, struct evbuffer *in)
{
    c->last_rx_ms = proxy_now_ms(c->w);
    /* Straight from libevent's chains: no pullup, no copy. Loop until empty,
     * as the read callback does not fire again for bytes already read. */
    while (evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec vec[16];
        int n = evbuffer_peek(in, -1, NULL, vec, 16);
        size_t total = 0;

        for (int i = 0; i < n && i < 16; i++) {
            ssize_t rv = nghttp2_session_mem_recv(c->session, vec[i].iov_base, vec[i].iov_len);

            if (rv < 0) {
                evbuffer_drain(in, evbuffer_get_length(in));
                return (int)rv;
            }
            total += (size_t)rv;
        }
        evbuffer_drain(in, total);
    }
    return 0;
}

/* ---- keepalive ---- */

static void on_ka_timer(evutil_socket_t fd, short what, void *arg)
{
    struct proxy_conn *c = arg;
    struct timeval tv;

    (void)fd;
    (void)what;
    if (c->dead || c->ping_out)
        return;
    if (proxy_now_ms(c->w) - c->last_rx_ms < c->ka_interval_ms)
        return;
    if (nghttp2_submit_ping(c->session, NGHTTP2_FLAG_NONE, NULL) != 0)
        return;
    c->ping_out = true;
    tv.tv_sec = c->ka_timeout_ms / 1000;
    tv.tv_usec = (c->ka_timeout_ms % 1000) * 1000;
    event_add(c->ka_ack_timer, &tv);
    proxy_conn_schedule(c);
}

static void on_ka_ack_timer(evutil_socket_t fd, short what, void *arg)
{
    struct proxy_conn *c = arg;

    (void)fd;
    (void)what;
    if (!c->ping_out || c->dead)
        return;
    log_info("%s connection: no PING ACK within %u ms; closing",
             c->kind == PROXY_CONN_FE ? "client" : "backend", c->ka_timeout_ms);
    c->dead = true;
    proxy_conn_schedule(c);
}

void proxy_conn_keepalive_start(struct proxy_conn *c, uint32_t interval_ms, uint32_t timeout_ms)
{
    struct timeval tv = {.tv_sec = interval_ms / 1000, .tv_usec = (interval_ms % 1000) * 1000};

    c->last_rx_ms = proxy_now_ms(c->w);
    if (interval_ms == 0)
        return;
    c->ka_interval_ms = interval_ms;
    c->ka_timeout_ms = timeout_ms;
    c->ka_timer = event_new(c->w->base, -1, EV_PERSIST, on_ka_timer, c);
    c->ka_ack_timer = event_new(c->w->base, -1, 0, on_ka_ack_timer, c);
    event_add(c->ka_timer, &tv);
}

void proxy_conn_keepalive_stop(struct proxy_conn *c)
{
    if (c->ka_timer != NULL)
        event_free(c->ka_timer);
    if (c->ka_ack_timer != NULL)
        event_free(c->ka_ack_timer);
    c->ka_timer = c->ka_ack_timer = NULL;
}

void proxy_conn_ping_acked(struct proxy_conn *c)
{
    c->ping_out = false;
    if (c->ka_ack_timer != NULL)
        event_del(c->ka_ack_timer);
}

static void conn_free(struct proxy_conn *c)
{
    if (c->kind == PROXY_CONN_FE)
        proxy_fe_conn_free((struct proxy_fe_conn *)c);
    else
        proxy_be_conn_free((struct proxy_be_conn *)c);
}

/* One flush per loop iteration: every connection touched since the last one
 * gets one nghttp2_session_send(), and connections marked dead are freed here,
 * where no nghttp2 callback is on the stack. Freeing one may touch others, so
 * loop until nothing is left. */
static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    struct proxy_worker *w = arg;

    (void)fd;
    (void)what;
    while (w->dirty != NULL) {
        struct proxy_conn *c = w->dirty;

        w->dirty = c->next_dirty;
        c->next_dirty = NULL;
        c->dirty = false;
        if (!c->dead && !c->hold && nghttp2_session_send(c->session) != 0)
            c->dead = true;
        if (!c->dead) {
            if (c->kind == PROXY_CONN_FE)
                proxy_fe_conn_after_flush((struct proxy_fe_conn *)c);
            else
                proxy_be_conn_after_flush((struct proxy_be_conn *)c);
        }
        /* A callback of this send may have scheduled |c| again (a refused
         * stream detaching its call): then it is still on |w->dirty| and is
         * freed when this loop reaches it. */
        if (c->dead && !c->dirty)
            conn_free(c);
    }
    if (evbuffer_get_length(w->alog) > 0)
        proxy_alog_flush(w);
}

/* ---- pools ---- */

struct proxy_pool *proxy_pool_find(struct proxy_worker *w, uint32_t id)
{
    return id < w->npools ? w->pools[id] : NULL;
}

/* TLS settings follow the current configuration too: a reload's new context
 * serves the pool's new connections; open ones keep theirs. */
static void pool_set_tls(struct proxy_pool *p, struct proxy_worker *w, const struct bal_cluster *cl,
                         const struct bal_endpoint *ep)
{
    struct tls_be *tb = tls_be_get(w->snap->conf, cl->index);
    const char *o = ep->origin, *end;

    if (tb == p->tls)
        return;
    tls_be_unref(p->tls);
    p->tls = tls_be_ref(tb);
    if (tb == NULL || o == NULL)
        return;
    /* "host:port" or "[v6]:port" -> host */
    if (*o == '[') {
        o++;
        end = strchr(o, ']');
    } else {
        end = strrchr(o, ':');
    }
    if (end == NULL)
        end = o + strlen(o);
    snprintf(p->tls_host, sizeof(p->tls_host), "%.*s", (int)(end - o), o);
}

struct proxy_pool *proxy_pool_get(struct proxy_worker *w, const struct bal_cluster *cl,
                                  const struct bal_endpoint *ep)
{
    struct proxy_pool *p = proxy_pool_find(w, ep->id);

    if (p != NULL) {
        /* Settings follow the current configuration (reloads). */
        p->removed = false;
        p->max_conns = cl->conf->max_connections;
        p->max_streams = cl->conf->max_streams_per_connection;
        p->connect_timeout_ms = cl->conf->connect_timeout_ms;
        pool_set_tls(p, w, cl, ep);
        return p;
    }
    if (ep->id >= w->npools) {
        size_t n = ep->id + 8;
        struct proxy_pool **np = reallocarray(w->pools, n, sizeof(*np));

        if (np == NULL) {
            log_error("out of memory");
            abort();
        }
        memset(np + w->npools, 0, (n - w->npools) * sizeof(*np));
        w->pools = np;
        w->npools = n;
    }
    p = xcalloc(1, sizeof(*p));
    p->w = w;
    p->id = ep->id;
    memcpy(&p->addr, &ep->addr, ep->addrlen);
    p->addrlen = ep->addrlen;
    memcpy(p->addr_str, ep->addr_str, sizeof(p->addr_str));
    p->max_conns = cl->conf->max_connections;
    p->max_streams = cl->conf->max_streams_per_connection;
    p->connect_timeout_ms = cl->conf->connect_timeout_ms;
    pool_set_tls(p, w, cl, ep);
    TAILQ_INIT(&p->conns);
    TAILQ_INIT(&p->waiting);
    w->pools[ep->id] = p;
    return p;
}

static bool snapshot_has(const struct bal_snapshot *s, uint32_t id)
{
    for (size_t i = 0; i < s->nclusters; i++) {
        for (size_t j = 0; j < s->clusters[i].nendpoints; j++) {
            if (s->clusters[i].endpoints[j].id == id)
                return true;
        }
    }
    return false;
}

/* ---- snapshot mailbox ---- */

static void take_snapshot(struct proxy_worker *w)
{
    struct bal_snapshot *s = atomic_exchange(&w->pending, NULL);

    if (s == NULL)
        return;
    /* h-bal hookup (redone by the call spine): policy state per cluster,
     * moved to the new snapshot while the old one is still referenced. */
    if (w->snap == NULL || w->snap->nclusters != s->nclusters) {
        for (size_t i = 0; i < w->nlb; i++)
            bal_lb_deinit(&w->lb[i]);
        free(w->lb);
        w->lb = xcalloc(s->nclusters, sizeof(*w->lb));
        w->nlb = s->nclusters;
        for (size_t i = 0; i < w->nlb; i++) /* random: N workers do not start alike */
            bal_lb_init(&w->lb[i], &s->clusters[i], (uint64_t)random() << 31 ^ (uint64_t)random());
    } else {
        for (size_t i = 0; i < w->nlb; i++)
            bal_lb_update(&w->lb[i], &s->clusters[i]);
    }
    bal_snapshot_unref(w->snap);
    w->snap = s;
    proxy_listen_apply_rebind(w);
    proxy_selfhealth_update(w);
    /* Endpoints that left every cluster drain: running calls finish, no new ones. */
    for (size_t i = 0; i < w->npools; i++) {
        if (w->pools[i] != NULL && !snapshot_has(s, (uint32_t)i)) {
            w->pools[i]->removed = true;
            if (proxy_pool_reap(w->pools[i]))
                w->pools[i] = NULL;
        }
    }
}

static void on_snapshot(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    take_snapshot(arg);
}

void proxy_publish(struct runtime *rt, struct bal_snapshot *s)
{
    for (size_t i = 0; i < rt->nworkers; i++) {
        struct proxy_worker *w = &rt->workers[i];
        struct bal_snapshot *old = atomic_exchange(&w->pending, bal_snapshot_ref(s));

        /* A snapshot the worker never took is simply replaced. */
        bal_snapshot_unref(old);
        event_active(w->ev_snapshot, EV_READ, 0);
    }
}

/* ---- counters for the admin endpoint ---- */

static void on_report(evutil_socket_t fd, short what, void *arg)
{
    struct proxy_worker *w = arg;

    (void)fd;
    (void)what;
    proxy_report_free(atomic_exchange(&w->report, proxy_report_new(w)));
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

void proxy_worker_fe_gone(struct proxy_worker *w)
{
    if (w->draining && w->nfes == 0)
        report_done(w);
}

static void on_drain(evutil_socket_t fd, short what, void *arg)
{
    struct proxy_worker *w = arg;
    struct proxy_fe_conn *fc;

    (void)fd;
    (void)what;
    if (w->draining)
        return;
    w->draining = true;
    proxy_listen_stop(w);
    TAILQ_FOREACH(fc, &w->fes, link)
    proxy_fe_conn_drain(fc);
    proxy_selfhealth_update(w);
    proxy_worker_fe_gone(w);
}

void proxy_workers_drain(struct runtime *rt)
{
    for (size_t i = 0; i < rt->nworkers; i++)
        event_active(rt->workers[i].ev_drain, EV_READ, 0);
}

/* ---- lifecycle ---- */

static nghttp2_option *option_new(void)
{
    nghttp2_option *opt;

    if (nghttp2_option_new(&opt) != 0) {
        log_error("out of memory");
        abort();
    }
    /* Flow control is coupled end to end: we consume only what the other side
     * has sent on (DESIGN.md, "Flow control is end to end"). */
    nghttp2_option_set_no_auto_window_update(opt, 1);
    return opt;
}

static int worker_init(struct runtime *rt, struct proxy_worker *w, int index)
{
    const struct conf_proxy *pc = &rt->conf->proxy;

    w->rt = rt;
    w->index = index;
    TAILQ_INIT(&w->fes);
    TAILQ_INIT(&w->watchers);
    atomic_init(&w->pending, NULL);
    atomic_init(&w->drain_requested, false);
    {
        /* epoll changelist: the EV_WRITE add/remove libevent does around
         * each socket write collapses when the next write follows within
         * the same loop turn, instead of costing two epoll_ctl calls per
         * writev (make bench's strace). Our fds are never dup()ed. */
        struct event_config *cfg = event_config_new();

        event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
        w->base = event_base_new_with_config(cfg);
        event_config_free(cfg);
    }
    if (w->base == NULL) {
        log_error("worker %d: event_base_new failed", index);
        return -1;
    }
    w->fe_cbs = proxy_fe_callbacks_new();
    w->be_cbs = proxy_be_callbacks_new();
    w->fe_opt = option_new();
    /* Rapid Reset (CVE-2023-44487) and CONTINUATION flood (CVE-2024-28182)
     * guards of Debian's nghttp2, set explicitly: a client past them gets
     * GOAWAY and its connection is closed once nghttp2 stops wanting I/O. */
    nghttp2_option_set_stream_reset_rate_limit(w->fe_opt, 1000, 33);
    nghttp2_option_set_max_continuations(w->fe_opt, 8);
    nghttp2_option_set_max_outbound_ack(w->fe_opt, 1000);
    w->be_opt = option_new();
    nghttp2_option_set_peer_max_concurrent_streams(w->be_opt, 100);
    w->ev_snapshot = event_new(w->base, -1, 0, on_snapshot, w);
    w->ev_flush = event_new(w->base, -1, 0, on_flush, w);
    w->ev_drain = event_new(w->base, -1, 0, on_drain, w);
    w->ev_report = event_new(w->base, -1, 0, on_report, w);
    atomic_init(&w->report, NULL);
    w->alog = evbuffer_new();
    proxy_stats_init(&w->stats, rt->conf->admin.max_method_labels);
    return proxy_listen_start(w, pc);
}

static void worker_deinit(struct proxy_worker *w)
{
    struct proxy_call *call;

    while (!TAILQ_EMPTY(&w->fes))
        proxy_fe_conn_free(TAILQ_FIRST(&w->fes));
    for (size_t i = 0; i < w->npools; i++)
        proxy_pool_free(w->pools[i]);
    /* Frees may have scheduled flushes of connections that are gone now. */
    w->dirty = NULL;
    free(w->pools);
    while ((call = w->free_calls) != NULL) {
        w->free_calls = call->next_free;
        proxy_call_destroy(call);
    }
    proxy_listen_stop(w);
    if (w->ev_snapshot != NULL)
        event_free(w->ev_snapshot);
    if (w->ev_flush != NULL)
        event_free(w->ev_flush);
    if (w->ev_drain != NULL)
        event_free(w->ev_drain);
    if (w->ev_report != NULL)
        event_free(w->ev_report);
    proxy_report_free(atomic_exchange(&w->report, NULL));
    if (w->alog != NULL) {
        if (w->rt->alog_fd >= 0)
            proxy_alog_flush(w);
        evbuffer_free(w->alog);
    }
    proxy_stats_deinit(&w->stats);
    if (w->fe_cbs != NULL)
        nghttp2_session_callbacks_del(w->fe_cbs);
    if (w->be_cbs != NULL)
        nghttp2_session_callbacks_del(w->be_cbs);
    nghttp2_option_del(w->fe_opt);
    nghttp2_option_del(w->be_opt);
    bal_snapshot_unref(atomic_exchange(&w->pending, NULL));
    for (size_t i = 0; i < w->nlb; i++) /* h-bal hookup */
        bal_lb_deinit(&w->lb[i]);
    bal_snapshot_unref(w->snap);
    free(w->lb);
    free(w->nv);
    if (w->base != NULL)
        event_base_free(w->base);
}

int proxy_workers_init(struct runtime *rt)
{
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

    srandom((unsigned)time(NULL) ^ (unsigned)(w->index * 7919) ^ (unsigned)getpid());
    take_snapshot(w);
    event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
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
        event_base_loopbreak(rt->workers[i].base);
    for (size_t i = 0; i < rt->nstarted; i++)
        pthread_join(rt->workers[i].thread, NULL);
    rt->nstarted = 0;
    for (size_t i = 0; i < rt->nworkers; i++)
        worker_deinit(&rt->workers[i]);
    free(rt->workers);
    rt->workers = NULL;
    rt->nworkers = 0;
}
