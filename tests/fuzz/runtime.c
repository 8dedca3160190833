/* A whole switchyard runtime inside a fuzz harness (runtime.h).
 * SPDX-License-Identifier: MIT */
#include "tests/fuzz/runtime.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "balancer/epset.h"
#include "core/log.h"
#include "core/tls.h"
#include "core/utf8.h"
#include "health/hc.h"
#include "proxy/auth.h"
#include "proxy/filters/transcode.h"
#include "proxy/otlp.h"
#include "proxy/outlier.h"

static void fail(const char *what, const char *err)
{
    fprintf(stderr, "fuzz runtime: %s: %s\n", what, err);
    abort();
}

socklen_t fz_unix_addr(struct sockaddr_un *sa, const char *name)
{
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    snprintf(sa->sun_path + 1, sizeof(sa->sun_path) - 1, "sy-fuzz-%s-%d", name, (int)getpid());
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(sa->sun_path + 1));
}

/* As proxy/main.c: a worker's ejection request goes to the main thread. */
static void post_ejection(void *arg, const char *cluster, uint32_t ep_id, const char *addr,
                          enum bal_outlier_verdict why)
{
    struct runtime *rt = arg;

    proxy_outlier_post(rt->outliers, cluster, ep_id, addr, why);
}

static void on_changed(void *arg)
{
    proxy_snapshot_changed(arg);
}

static void on_worker_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

void fz_rt_init(struct fz_rt *f, const char *name, const char *ini,
                const struct sockaddr_un *backends, const socklen_t *lens, size_t nbackends)
{
    static bool threads;
    struct runtime *rt = &f->rt;
    char err[1024], sub[64];
    struct timeval tv;

    if (!threads) {
        threads = evthread_use_pthreads() == 0; /* as main() */
        if (!threads)
            fail("evthread_use_pthreads", "failed");
    }
    memset(f, 0, sizeof(*f));
    if (conf_load_string(ini, name, &rt->conf, err, sizeof(err)) != 0 ||
        proxy_auth_attach(rt->conf, err, sizeof(err)) != 0 ||
        tls_attach(rt->conf, err, sizeof(err)) != 0 ||
        proxy_rest_check(rt->conf, err, sizeof(err)) != 0)
        fail("configuration", err);
    rt->conf_path = name;
    /* SY_FUZZ_VERBOSE: an access log line per call on stderr. */
    rt->alog_fd = getenv("SY_FUZZ_VERBOSE") != NULL ? dup(2) : -1;
    gettimeofday(&tv, NULL);
    rt->start_time = (double)tv.tv_sec + (double)tv.tv_usec / 1e6;

    /* The worker gets no listener: the harness accepts client connections
     * itself (proxy_fe_accept(), as the listener does). A configuration
     * needs one, so [proxy] listen is dropped here after the load. The admin
     * listens on an abstract AF_UNIX address. */
    if (rt->conf->proxy.listen_tls != NULL)
        fail("configuration", "listen_tls is not supported here");
    free(rt->conf->proxy.listen);
    rt->conf->proxy.listen = NULL;
    if (rt->conf->admin.listen != NULL) {
        snprintf(sub, sizeof(sub), "%s-admin", name);
        f->admin_len = fz_unix_addr(&f->admin, sub);
        memcpy(&rt->conf->admin.listen_addr, &f->admin, f->admin_len);
        rt->conf->admin.listen_addrlen = f->admin_len;
    }

    /* proxy/main.c's run(), without DNS (IP literals only) and signals, but
     * with main()'s SIGPIPE disposition: a write to a peer that has just gone
     * fails with EPIPE, as it does in switchyard, instead of ending the
     * process (the harness's backends and client close whenever they like). */
    signal(SIGPIPE, SIG_IGN);
    rt->base = event_base_new();
    rt->reg = bal_registry_new();
    rt->eps = bal_epset_new(rt->conf, rt->reg);
    for (uint32_t i = 0; nbackends > 0 && i < rt->conf->nclusters; i++) {
        for (uint32_t t = 0; t < rt->conf->clusters[i].ntargets; t++) {
            struct sockaddr_storage ss = {0};
            socklen_t len = lens[t % nbackends];

            if (!rt->conf->clusters[i].targets[t].is_literal)
                fail("configuration", "a target is a DNS name");
            memcpy(&ss, &backends[t % nbackends], len);
            bal_epset_set_addrs(rt->eps, i, t, &ss, &len, 1);
        }
    }
    rt->ev_rebuild = proxy_snapshot_event(rt);
    rt->snapshot_replaced = proxy_admin_snapshot_replaced;
    rt->eject = post_ejection;
    rt->rest = proxy_rest_new(rt->base, &rt->eps, on_changed, rt);
    if (proxy_rest_apply(rt->rest, rt->conf, err, sizeof(err)) != 0)
        fail("REST", err);
    rt->hc = hc_new(rt->base, rt->conf, rt->eps, on_changed, rt, err, sizeof(err));
    if (rt->hc == NULL)
        fail("health checker", err);
    rt->snap = proxy_snapshot_build(rt);
    rt->nworkers = 1;
    proxy_outlier_start(rt);
    if (proxy_workers_init(rt) != 0)
        fail("worker", "proxy_workers_init failed");
    if (proxy_admin_start(rt) != 0)
        fail("admin", "proxy_admin_start failed");
    proxy_otlp_start(rt);
    proxy_publish(rt, rt->snap);
    rt->ev_done = event_new(rt->base, -1, 0, on_worker_done, rt);
    atomic_store(&rt->workers_active, 1);
    /* The worker takes its first snapshot (its filters see it). */
    for (int i = 0; i < 4; i++)
        fz_rt_turn(f);
}

struct proxy_worker *fz_rt_worker(struct fz_rt *f)
{
    return &f->rt.workers[0];
}

void fz_rt_turn(struct fz_rt *f)
{
    event_base_loop(f->rt.base, EVLOOP_NONBLOCK);
    event_base_loop(f->rt.workers[0].base, EVLOOP_NONBLOCK);
}

static bool metric_name(const char **p)
{
    const char *s = *p;

    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_' || *s == ':'))
        return false;
    while ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
           *s == '_' || *s == ':')
        s++;
    *p = s;
    return true;
}

bool fz_metrics_line(const char *s)
{
    if (s[0] == '#')
        return strncmp(s, "# HELP ", 7) == 0 || strncmp(s, "# TYPE ", 7) == 0;
    if (!metric_name(&s))
        return false;
    if (*s == '{') {
        s++;
        while (*s != '}') {
            const char *v;

            if (!metric_name(&s) || *s++ != '=' || *s++ != '"')
                return false;
            v = s;
            while (*s != '"') {
                if (*s == '\0' || *s == '\n')
                    return false;
                if (*s == '\\') {
                    s++;
                    if (*s != '\\' && *s != '"' && *s != 'n')
                        return false;
                }
                s++;
            }
            if (!utf8_valid((const uint8_t *)v, (size_t)(s - v)))
                return false;
            s++;
            if (*s == ',')
                s++;
            else if (*s != '}')
                return false;
        }
        s++;
    }
    if (*s++ != ' ')
        return false;
    {
        char *end;

        if (strcmp(s, "+Inf") == 0 || strcmp(s, "-Inf") == 0 || strcmp(s, "NaN") == 0)
            return true;
        strtod(s, &end);
        return end != s && (*end == '\0' || *end == ' ');
    }
}
