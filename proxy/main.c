/* switchyard: a health-checking, load-balancing gRPC proxy. Entry point: the
 * command line, the configuration, signals and the main thread's loop.
 * Invariant: the main thread owns struct runtime; workers only see snapshots.
 * SPDX-License-Identifier: MIT */
#define LOG_MODULE "main"
#include "proxy/proxy.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "balancer/bal.h"
#include "balancer/epset.h"
#include "conf/conf.h"
#include "core/log.h"
#include "core/sdnotify.h"
#include "core/tls.h"
#include "health/hc.h"
#include "proxy/auth.h"
#include "proxy/dns.h"
#include "proxy/filters/transcode.h"
#include "proxy/h2mem.h"
#include "proxy/otlp.h"
#include "proxy/outlier.h"

#ifndef SWITCHYARD_VERSION
#define SWITCHYARD_VERSION "0.1.0"
#endif

static void usage(FILE *f)
{
    fprintf(f, "usage: switchyard [-t] -c FILE\n"
               "  -c, --config FILE  configuration file (INI)\n"
               "  -t, --test         check the configuration and exit (0: usable; target names\n"
               "                     that do not resolve now are warnings)\n"
               "  -V, --version      print the version and exit\n"
               "  -h, --help         this help\n"
               "Signals: SIGTERM/SIGINT drain running calls (up to drain_timeout) and exit 0;\n"
               "SIGHUP reloads the configuration; SIGUSR1 reopens the access log.\n"
               "Exit status: 0 success, 1 bad configuration or runtime failure, 2 usage error.\n");
}

static void stop_main_loop(struct runtime *rt)
{
    event_base_loopbreak(rt->base);
}

static void on_worker_done(evutil_socket_t fd, short what, void *arg)
{
    struct runtime *rt = arg;

    (void)fd;
    (void)what;
    if (atomic_load(&rt->workers_active) == 0) {
        log_info("all connections drained");
        stop_main_loop(rt);
    }
}

static void on_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct runtime *rt = arg;

    (void)fd;
    (void)what;
    log_warn("drain_timeout reached with calls still running; closing them");
    stop_main_loop(rt);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct runtime *rt = arg;
    uint32_t ms = rt->conf->proxy.drain_timeout_ms;
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};

    (void)what;
    if (rt->draining) {
        log_warn("second %s: exiting now", strsignal((int)sig));
        stop_main_loop(rt);
        return;
    }
    rt->draining = true;
    log_info("%s: draining (up to %u ms)", strsignal((int)sig), ms);
    sdnotify("STOPPING=1");
    event_add(rt->drain_timer, &tv);
    proxy_workers_drain(rt);
}

/* Outlier detection: a worker asks for an ejection (env->eject). */
static void post_ejection(void *arg, const char *cluster, uint32_t ep_id, const char *addr,
                          enum bal_outlier_verdict why)
{
    struct runtime *rt = arg;

    proxy_outlier_post(rt->outliers, cluster, ep_id, addr, why);
}

static void on_health_changed(void *arg)
{
    proxy_snapshot_changed(arg);
}

/* Reflection brought new REST rules: the workers get them with a snapshot. */
static void on_rest_changed(void *arg)
{
    proxy_snapshot_changed(arg);
}

/* Opens the access log: "-" is stdout, "off" nothing. Returns the fd, -1 for
 * off, -2 on error (logged). */
static int alog_open(const char *spec)
{
    int fd;

    /* Workers write the access log without ever blocking (a full pipe, a
     * stalled reader): the descriptor is non-blocking. For stdout that is a
     * new open file description of the same file or pipe, so the one the
     * process shares with its parent (a terminal, a pipe to a log shipper)
     * keeps its flags; a stdout that cannot be reopened (a socket) is
     * duplicated and set non-blocking itself. */
    if (strcmp(spec, "off") == 0)
        return -1;
    if (strcmp(spec, "-") == 0) {
        fd = open("/proc/self/fd/1", O_WRONLY | O_APPEND | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0) {
            fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
            if (fd >= 0)
                fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        }
        return fd;
    }
    fd = open(spec, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0644);
    if (fd < 0) {
        log_error("access_log %s: %s", spec,
                  errno == ENXIO ? "a FIFO with no process reading it" : strerror(errno));
        return -2;
    }
    return fd;
}

/* SIGUSR1: reopen the access log after logrotate moved it. dup2() swaps the
 * file behind the workers' descriptor atomically; they never see a gap. */
static void on_sigusr1(evutil_socket_t sig, short what, void *arg)
{
    struct runtime *rt = arg;
    int fd;

    (void)sig;
    (void)what;
    if (rt->alog_fd < 0 || strcmp(rt->conf->proxy.access_log, "-") == 0)
        return;
    fd = alog_open(rt->conf->proxy.access_log);
    if (fd < 0)
        return;
    if (dup2(fd, rt->alog_fd) < 0)
        log_error("access_log: dup2: %s", strerror(errno));
    else
        log_info("access log reopened: %s", rt->conf->proxy.access_log);
    close(fd);
}

static void log_config(const struct runtime *rt)
{
    struct bal_snapshot *s = bal_epset_snapshot(rt->eps, 0);

    for (size_t i = 0; i < s->nclusters; i++) {
        const struct bal_cluster *cl = &s->clusters[i];
        const struct conf_cluster *cc = cl->conf;

        log_info("cluster %s: policy %s, %zu endpoint(s), routes %s%s", cl->name,
                 conf_policy_name(cc->policy), cl->nendpoints, cc->routes[0],
                 cc->nroutes > 1 ? ", ..." : "");
        for (size_t j = 0; j < cl->nendpoints; j++)
            log_info("cluster %s: endpoint %s (from %s)", cl->name, cl->endpoints[j].addr_str,
                     cl->endpoints[j].origin);
        for (size_t j = 0; j < cc->ntargets; j++) {
            if (!cc->targets[j].is_literal)
                log_info("cluster %s: target %s is a DNS name, resolved with c-ares "
                         "(dns_refresh %u ms, dns_min_ttl %u ms)",
                         cl->name, cc->targets[j].spec, cc->dns_refresh_ms, cc->dns_min_ttl_ms);
        }
    }
    bal_snapshot_unref(s);
}

/* File descriptors kept aside for everything but client and backend
 * connections: epoll and eventfds, listeners, the admin listener and its
 * clients, DNS, logs, TLS files read at reload. */
#define FD_RESERVE 64

/* Warns when |c| may need more file descriptors than the limit: every client
 * connection, and per worker up to max_connections backend connections per
 * target (more when a name resolves to several addresses), plus one health
 * check connection per target and FD_RESERVE. */
static void check_fd_budget(const struct conf *c, size_t nworkers)
{
    struct rlimit rl;
    unsigned long long need = c->proxy.max_connections + FD_RESERVE;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return;
    for (size_t i = 0; i < c->nclusters; i++)
        need += (unsigned long long)c->clusters[i].ntargets *
                ((unsigned long long)c->clusters[i].max_connections * nworkers + 1);
    if (need > rl.rlim_cur)
        log_warn("the file descriptor limit (%llu) is below what this configuration may use "
                 "(%llu: [proxy] max_connections %u, backend and health check connections of "
                 "%zu worker(s), %d spare); accepting pauses when it runs out. Raise the limit "
                 "(LimitNOFILE=, ulimit -n) or lower max_connections",
                 (unsigned long long)rl.rlim_cur, need, c->proxy.max_connections, nworkers,
                 FD_RESERVE);
}

/* The soft limit on open files is often 1024, far below max_connections'
 * default; the hard limit is what an administrator allowed (issue 12.3). */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    rlim_t want;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max)
        return;
    want = rl.rlim_max;
    if (want == RLIM_INFINITY) {
        /* NOFILE cannot be unlimited; the kernel's ceiling is fs.nr_open. */
        FILE *f = fopen("/proc/sys/fs/nr_open", "r");
        unsigned long long nr = 0;

        want = 1024 * 1024;
        if (f != NULL) {
            if (fscanf(f, "%llu", &nr) == 1 && nr > 0)
                want = (rlim_t)nr;
            fclose(f);
        }
    }
    rl.rlim_cur = want;
    if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
        log_info("file descriptor limit raised to %llu", (unsigned long long)want);
    else
        log_warn("cannot raise the file descriptor limit to %llu: %s", (unsigned long long)want,
                 strerror(errno));
}

static bool same_str(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Appends |item| to the list in |buf| ("a, b, c"); an item that does not fit
 * ends the list with "...". */
static void list_add(char *buf, size_t len, const char *item)
{
    size_t n = strlen(buf);

    if (n + strlen(item) + 6 >= len) {
        if (n + 4 < len && (n < 3 || strcmp(buf + n - 3, "...") != 0))
            snprintf(buf + n, len - n, "%s...", n > 0 ? ", " : "");
        return;
    }
    snprintf(buf + n, len - n, "%s%s", n > 0 ? ", " : "", item);
}

static const struct conf_cluster *cluster_named(const struct conf *c, const char *name)
{
    for (size_t i = 0; i < c->nclusters; i++) {
        if (strcmp(c->clusters[i].name, name) == 0)
            return &c->clusters[i];
    }
    return NULL;
}

static bool has_target(const struct conf_cluster *cc, const char *spec)
{
    for (size_t i = 0; i < cc->ntargets; i++) {
        if (strcmp(cc->targets[i].spec, spec) == 0)
            return true;
    }
    return false;
}

static bool same_routes(const struct conf_cluster *a, const struct conf_cluster *b)
{
    if (a->nroutes != b->nroutes)
        return false;
    for (size_t i = 0; i < a->nroutes; i++) {
        if (strcmp(a->routes[i], b->routes[i]) != 0)
            return false;
    }
    return true;
}

/* The groups of settings, besides targets, that differ between two versions
 * of one cluster, into |buf| ("" when none). A key added to struct
 * conf_cluster belongs in one of these groups. */
static void cluster_settings_diff(const struct conf_cluster *a, const struct conf_cluster *b,
                                  char *buf, size_t len)
{
    buf[0] = '\0';
    if (a->policy != b->policy || a->least_request_choices != b->least_request_choices ||
        a->hash_on != b->hash_on || !same_str(a->hash_header, b->hash_header) ||
        a->ring_min_size != b->ring_min_size || a->pick_first_failback != b->pick_first_failback ||
        a->slow_start_ms != b->slow_start_ms)
        list_add(buf, len, "policy");
    if (!same_routes(a, b))
        list_add(buf, len, "routes");
    if (a->max_connections != b->max_connections ||
        a->max_streams_per_connection != b->max_streams_per_connection ||
        a->connect_timeout_ms != b->connect_timeout_ms || a->max_retries != b->max_retries)
        list_add(buf, len, "connections");
    if (a->dns_refresh_ms != b->dns_refresh_ms || a->dns_min_ttl_ms != b->dns_min_ttl_ms ||
        a->dns_family != b->dns_family)
        list_add(buf, len, "dns");
    if (a->health_check != b->health_check || !same_str(a->health_service, b->health_service) ||
        !same_str(a->health_authority, b->health_authority) || a->health_mode != b->health_mode ||
        a->health_interval_ms != b->health_interval_ms ||
        a->health_timeout_ms != b->health_timeout_ms ||
        a->healthy_threshold != b->healthy_threshold ||
        a->unhealthy_threshold != b->unhealthy_threshold ||
        a->health_initial_healthy != b->health_initial_healthy ||
        a->health_unimplemented_healthy != b->health_unimplemented_healthy ||
        a->panic_threshold != b->panic_threshold)
        list_add(buf, len, "health");
    if (a->tls != b->tls || !same_str(a->tls_ca, b->tls_ca) ||
        !same_str(a->tls_server_name, b->tls_server_name) || !same_str(a->tls_cert, b->tls_cert) ||
        !same_str(a->tls_key, b->tls_key) || a->tls_verify != b->tls_verify)
        list_add(buf, len, "tls");
    if (a->required != b->required)
        list_add(buf, len, "required");
    if (a->transcode != b->transcode || !same_str(a->descriptors, b->descriptors) ||
        a->stream_format != b->stream_format)
        list_add(buf, len, "transcode");
}

/* Logs what a reload from |oc| to |nc| changes in the clusters: clusters
 * added and removed, and per cluster that stays, the targets added and
 * removed and the groups of settings changed. */
static void log_change_set(const struct conf *oc, const struct conf *nc)
{
    char added[512] = "", removed[512] = "";
    bool any = false;

    for (size_t i = 0; i < nc->nclusters; i++) {
        if (cluster_named(oc, nc->clusters[i].name) == NULL)
            list_add(added, sizeof(added), nc->clusters[i].name);
    }
    for (size_t i = 0; i < oc->nclusters; i++) {
        if (cluster_named(nc, oc->clusters[i].name) == NULL)
            list_add(removed, sizeof(removed), oc->clusters[i].name);
    }
    if (added[0] != '\0')
        log_info("reload: clusters added: %s", added);
    if (removed[0] != '\0')
        log_info("reload: clusters removed: %s", removed);
    any = added[0] != '\0' || removed[0] != '\0';
    for (size_t i = 0; i < nc->nclusters; i++) {
        const struct conf_cluster *ncc = &nc->clusters[i];
        const struct conf_cluster *occ = cluster_named(oc, ncc->name);
        char tadd[512] = "", tdel[512] = "", settings[256];

        if (occ == NULL)
            continue;
        for (size_t j = 0; j < ncc->ntargets; j++) {
            if (!has_target(occ, ncc->targets[j].spec))
                list_add(tadd, sizeof(tadd), ncc->targets[j].spec);
        }
        for (size_t j = 0; j < occ->ntargets; j++) {
            if (!has_target(ncc, occ->targets[j].spec))
                list_add(tdel, sizeof(tdel), occ->targets[j].spec);
        }
        cluster_settings_diff(occ, ncc, settings, sizeof(settings));
        if (tadd[0] == '\0' && tdel[0] == '\0' && settings[0] == '\0')
            continue;
        any = true;
        log_info("reload: cluster %s changed:%s%s%s%s%s%s", ncc->name,
                 tadd[0] != '\0' ? " targets added: " : "", tadd,
                 tdel[0] != '\0' ? (tadd[0] != '\0' ? "; targets removed: " : " targets removed: ")
                                 : "",
                 tdel,
                 settings[0] != '\0'
                     ? (tadd[0] != '\0' || tdel[0] != '\0' ? "; settings: " : " settings: ")
                     : "",
                 settings);
    }
    if (!any)
        log_info("reload: no cluster changed");
}

static const char *on_off(bool on)
{
    return on ? "on" : "off";
}

/* Settings bound at start: a reload that changes one says so, by name. */
static void log_restart_only(const struct conf *oc, const struct conf *nc)
{
    static const char *const tail = "takes effect at the next restart only";
    bool alog_old = strcmp(oc->proxy.access_log, "off") != 0;
    bool alog_new = strcmp(nc->proxy.access_log, "off") != 0;

    if (nc->proxy.workers != oc->proxy.workers)
        log_warn("reload: [proxy] workers changed from %u to %u (0: auto); %s", oc->proxy.workers,
                 nc->proxy.workers, tail);
    if (alog_old != alog_new)
        log_warn("reload: [proxy] access_log turned %s; %s", on_off(alog_new), tail);
    if (!same_str(nc->admin.listen, oc->admin.listen))
        log_warn("reload: [admin] listen changed from %s to %s; %s",
                 oc->admin.listen != NULL ? oc->admin.listen : "off",
                 nc->admin.listen != NULL ? nc->admin.listen : "off", tail);
    if (nc->admin.max_method_labels != oc->admin.max_method_labels)
        log_warn("reload: [admin] max_method_labels changed from %u to %u; %s",
                 oc->admin.max_method_labels, nc->admin.max_method_labels, tail);
    if (nc->tracing.queue_size != oc->tracing.queue_size)
        log_warn("reload: [tracing] queue_size changed from %u to %u; %s", oc->tracing.queue_size,
                 nc->tracing.queue_size, tail);
}

static const char *const level_names[] = {"debug", "info", "warn", "error"};

/* systemd (Type=notify, sd_notify(3), core/sdnotify.h): a reload starts. MONOTONIC_USEC lets
 * Type=notify-reload match it with its SIGHUP. Without NOTIFY_SOCKET this
 * does nothing. */
static void notify_reloading(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    sdnotify("RELOADING=1\nMONOTONIC_USEC=%llu",
             (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
}

/* Records the outcome of a reload for /status and /metrics, and tells
 * systemd the service is ready again (with the old or the new file). */
static void reload_done(struct runtime *rt, bool ok, const char *err)
{
    struct timeval tv;

    gettimeofday(&tv, NULL);
    rt->reload.time = (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
    rt->reload.ok = ok;
    if (ok)
        rt->reload.successes++;
    else
        rt->reload.failures++;
    snprintf(rt->reload.error, sizeof(rt->reload.error), "%s", ok ? "" : err);
    sdnotify("READY=1\nSTATUS=%s", ok ? "configuration reloaded" : "reload failed");
}

/* SIGHUP: load the file again. A bad file changes nothing. A good one
 * replaces clusters, targets, routes, policies and health settings at once:
 * workers get a snapshot built on the new conf, endpoints that stay keep their
 * id (so their backend connections) and health state, and running calls go
 * on. What is bound at start (worker count, admin listener, access log on/off,
 * metric labels) needs a restart; a change there is logged by name. */
static void on_sighup(evutil_socket_t sig, short what, void *arg)
{
    struct runtime *rt = arg;
    struct conf *nc, *oc = rt->conf;
    struct bal_epset *neps;
    char err[1024], msg[1100];

    (void)sig;
    (void)what;
    if (rt->draining)
        return;
    notify_reloading();
    /* TLS contexts are built anew: new certificates and keys serve new
     * handshakes once workers take the snapshot; open connections keep theirs. */
    if (conf_load_file(rt->conf_path, &nc, err, sizeof(err)) != 0 ||
        proxy_auth_attach(nc, err, sizeof(err)) != 0 || tls_attach(nc, err, sizeof(err)) != 0 ||
        proxy_rest_check(nc, err, sizeof(err)) != 0) {
        log_error("reload failed, keeping the running configuration: %s", err);
        reload_done(rt, false, err);
        conf_free(nc);
        return;
    }
    /* New listen addresses are bound before anything else changes. */
    if (proxy_workers_rebind(rt, oc, nc, err, sizeof(err)) != 0) {
        snprintf(msg, sizeof(msg), "cannot listen on %s", err);
        log_error("reload failed, keeping the running configuration: %s", msg);
        reload_done(rt, false, msg);
        conf_free(nc);
        return;
    }
    log_restart_only(oc, nc);
    log_change_set(oc, nc);
    if (!same_str(nc->proxy.listen, oc->proxy.listen) ||
        !same_str(nc->proxy.listen_tls, oc->proxy.listen_tls))
        log_info("reload: now listening on %s%s%s (connections already open stay)",
                 nc->proxy.listen != NULL ? nc->proxy.listen : "-",
                 nc->proxy.listen_tls != NULL ? " and TLS on " : "",
                 nc->proxy.listen_tls != NULL ? nc->proxy.listen_tls : "");
    neps = bal_epset_new(nc, rt->reg);
    bal_epset_carry(neps, rt->eps);
    proxy_dns_stop(rt);
    hc_free(rt->hc);
    rt->hc = NULL;
    bal_epset_free(rt->eps);
    rt->eps = neps;
    rt->conf = nc;
    /* Descriptor sets are read again, reflection asks the endpoints again. */
    if (proxy_rest_apply(rt->rest, nc, err, sizeof(err)) != 0)
        log_error("reload: REST transcoding keeps its previous rules: %s", err);
    /* The snapshot follows the conf at once: a worker report or an admin
     * request handled later in this loop turn must not find rt->conf with
     * more clusters than rt->snap (issue 12.1). */
    proxy_snapshot_rebuild(rt);
    if (rt->alog_fd >= 0 && strcmp(nc->proxy.access_log, oc->proxy.access_log) != 0 &&
        strcmp(nc->proxy.access_log, "-") != 0) {
        int fd = alog_open(nc->proxy.access_log);

        if (fd >= 0) {
            dup2(fd, rt->alog_fd);
            close(fd);
        }
    }
    rt->hc = hc_new(rt->base, rt->conf, rt->eps, on_health_changed, rt, err, sizeof(err));
    if (rt->hc == NULL)
        log_error("reload: health checker: %s", err);
    if (proxy_dns_start(rt) != 0)
        log_error("reload: DNS resolution could not start");
    log_config(rt);
    log_info("configuration reloaded from %s", rt->conf_path);
    /* Last, so that a quieter level still shows this reload's lines. */
    if (nc->proxy.log_level != oc->proxy.log_level) {
        log_info("reload: log_level %s -> %s", level_names[oc->proxy.log_level],
                 level_names[nc->proxy.log_level]);
        log_set_level((enum log_level)nc->proxy.log_level);
    }
    if (nc->proxy.log_json != oc->proxy.log_json) {
        log_info("reload: log_format %s -> %s", oc->proxy.log_json ? "json" : "text",
                 nc->proxy.log_json ? "json" : "text");
        log_set_json(nc->proxy.log_json);
    }
    if (nc->proxy.max_connections != oc->proxy.max_connections)
        check_fd_budget(nc, rt->nworkers);
    reload_done(rt, true, NULL);
    conf_free(oc); /* snapshots still in use hold their own reference */
    proxy_snapshot_changed(rt);
}

static size_t worker_count(const struct conf *c)
{
    long n;

    if (c->proxy.workers > 0)
        return c->proxy.workers;
    n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (size_t)n : 1;
}

static int run(struct runtime *rt)
{
    int rc = 0;
    char err[1024];

    rt->base = event_base_new();
    if (rt->base == NULL) {
        log_error("event_base_new failed");
        return 1;
    }
    /* Signals are caught before any socket listens: a supervisor (or a
     * test) that sees the port open may send SIGHUP or SIGTERM at once, and
     * the default action of SIGHUP is to end the process. The callbacks run
     * only once the loop below runs, after the workers started. */
    rt->ev_sigterm = evsignal_new(rt->base, SIGTERM, on_signal, rt);
    rt->ev_sigint = evsignal_new(rt->base, SIGINT, on_signal, rt);
    rt->ev_sigusr1 = evsignal_new(rt->base, SIGUSR1, on_sigusr1, rt);
    event_add(rt->ev_sigusr1, NULL);
    rt->ev_sighup = evsignal_new(rt->base, SIGHUP, on_sighup, rt);
    event_add(rt->ev_sighup, NULL);
    rt->ev_done = event_new(rt->base, -1, 0, on_worker_done, rt);
    rt->drain_timer = evtimer_new(rt->base, on_drain_timeout, rt);
    event_add(rt->ev_sigterm, NULL);
    event_add(rt->ev_sigint, NULL);
    rt->reg = bal_registry_new();
    rt->eps = bal_epset_new(rt->conf, rt->reg);
    rt->ev_rebuild = proxy_snapshot_event(rt);
    rt->snapshot_replaced = proxy_admin_snapshot_replaced;
    rt->eject = post_ejection;
    log_config(rt);
    rt->rest = proxy_rest_new(rt->base, &rt->eps, on_rest_changed, rt);
    if (proxy_rest_apply(rt->rest, rt->conf, err, sizeof(err)) != 0) {
        log_error("%s", err);
        rc = 1;
        goto out;
    }
    rt->hc = hc_new(rt->base, rt->conf, rt->eps, on_health_changed, rt, err, sizeof(err));
    if (rt->hc == NULL) {
        log_error("health checker: %s", err);
        rc = 1;
        goto out;
    }
    if (proxy_dns_start(rt) != 0) {
        rc = 1;
        goto out;
    }
    rt->snap = proxy_snapshot_build(rt);
    rt->nworkers = worker_count(rt->conf);
    raise_fd_limit();
    check_fd_budget(rt->conf, rt->nworkers);
    rt->alog_fd = alog_open(rt->conf->proxy.access_log);
    if (rt->alog_fd == -2) {
        rc = 1;
        goto out;
    }
    if (proxy_listen_check(&rt->conf->proxy, err, sizeof(err)) != 0) {
        log_error("cannot listen on %s", err);
        rc = 1;
        goto out;
    }
    proxy_outlier_start(rt);
    if (proxy_workers_init(rt) != 0) {
        rc = 1;
        goto out;
    }
    if (proxy_admin_start(rt) != 0) {
        rc = 1;
        goto stop;
    }
    proxy_otlp_start(rt);
    proxy_publish(rt, rt->snap);
    if (proxy_workers_start(rt) != 0) {
        rc = 1;
    } else {
        log_info("switchyard %s listening on %s%s%s with %zu worker(s)", SWITCHYARD_VERSION,
                 rt->conf->proxy.listen != NULL ? rt->conf->proxy.listen : "(no h2c)",
                 rt->conf->proxy.listen_tls != NULL ? ", TLS on " : "",
                 rt->conf->proxy.listen_tls != NULL ? rt->conf->proxy.listen_tls : "",
                 rt->nworkers);
        sdnotify("READY=1\nSTATUS=listening on %s%s%s with %zu worker(s)",
                 rt->conf->proxy.listen != NULL ? rt->conf->proxy.listen : "(no h2c)",
                 rt->conf->proxy.listen_tls != NULL ? ", TLS on " : "",
                 rt->conf->proxy.listen_tls != NULL ? rt->conf->proxy.listen_tls : "",
                 rt->nworkers);
        event_base_loop(rt->base, EVLOOP_NO_EXIT_ON_EMPTY);
    }
stop:
    proxy_workers_stop(rt);
    proxy_otlp_stop(rt);
    proxy_admin_stop(rt);
    log_info("stopped");
out:
    proxy_outlier_stop(rt);
    if (rt->alog_fd >= 0)
        close(rt->alog_fd);
    proxy_dns_stop(rt);
    hc_free(rt->hc);
    proxy_rest_free(rt->rest);
    if (rt->ev_sigterm != NULL)
        event_free(rt->ev_sigterm);
    if (rt->ev_sigint != NULL)
        event_free(rt->ev_sigint);
    if (rt->ev_sigusr1 != NULL)
        event_free(rt->ev_sigusr1);
    if (rt->ev_sighup != NULL)
        event_free(rt->ev_sighup);
    if (rt->ev_done != NULL)
        event_free(rt->ev_done);
    if (rt->drain_timer != NULL)
        event_free(rt->drain_timer);
    if (rt->ev_rebuild != NULL)
        event_free(rt->ev_rebuild);
    bal_snapshot_unref(rt->snap);
    bal_epset_free(rt->eps);
    bal_registry_free(rt->reg);
    /* Health check connections freed just now may have deferred bufferevent
     * callbacks queued, each holding a reference that event_base_free()
     * would drop without freeing: one non-blocking turn runs them (every
     * event of ours is freed by now). */
    event_base_loop(rt->base, EVLOOP_NONBLOCK);
    event_base_free(rt->base);
    proxy_h2mem_release(); /* blocks of sessions freed on this thread (the workers') */
    return rc;
}

/* -t: target names that do not resolve now are worth a warning, not a
 * failure: DNS may come up after switchyard (which keeps trying). */
static void warn_unresolved(const struct conf *c)
{
    for (size_t i = 0; i < c->nclusters; i++) {
        const struct conf_cluster *cc = &c->clusters[i];

        for (size_t j = 0; j < cc->ntargets; j++) {
            const struct conf_target *t = &cc->targets[j];
            struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
            int rv;

            if (t->is_literal)
                continue;
            hints.ai_family = cc->dns_family == CONF_DNS_V4   ? AF_INET
                              : cc->dns_family == CONF_DNS_V6 ? AF_INET6
                                                              : AF_UNSPEC;
            rv = getaddrinfo(t->host, NULL, &hints, &res);
            if (rv == 0) {
                freeaddrinfo(res);
                continue;
            }
            fprintf(stderr,
                    "switchyard: warning: %s: [cluster.%s] (line %d) targets: '%s' does not "
                    "resolve now: %s; switchyard would start and keep resolving it\n",
                    c->path, cc->name, cc->line, t->spec,
                    rv == EAI_SYSTEM ? strerror(errno) : gai_strerror(rv));
        }
    }
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"config", required_argument, NULL, 'c'},
                                             {"test", no_argument, NULL, 't'},
                                             {"version", no_argument, NULL, 'V'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    struct runtime rt = {0};
    const char *path = NULL;
    bool test_only = false;
    char err[1024];
    int opt, rc;

    /* Before libevent allocates anything: its buffer chains (two per
     * message) come from the per-thread cache as nghttp2's blocks do. */
    proxy_h2mem_for_libevent();
    opterr = 0; /* our own messages, with a hint for -v */
    while ((opt = getopt_long(argc, argv, ":c:thV", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        case 't':
            test_only = true;
            break;
        case 'V':
            printf("switchyard %s\n", SWITCHYARD_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        case ':':
            fprintf(stderr, "switchyard: %s needs an argument\n", argv[optind - 1]);
            usage(stderr);
            return 2;
        default:
            if (optopt == 'v')
                fprintf(stderr, "switchyard: unknown option -v; the version is -V (--version), "
                                "as in switchyard-health, where -v means verbose\n");
            else if (optopt != 0)
                fprintf(stderr, "switchyard: unknown option -%c\n", optopt);
            else
                fprintf(stderr, "switchyard: unknown option %s\n", argv[optind - 1]);
            usage(stderr);
            return 2;
        }
    }
    if (path == NULL || optind != argc) {
        if (optind != argc)
            fprintf(stderr, "switchyard: unexpected argument '%s'\n", argv[optind]);
        else
            fprintf(stderr, "switchyard: -c FILE is required\n");
        usage(stderr);
        return 2;
    }
    if (conf_load_file(path, &rt.conf, err, sizeof(err)) != 0 ||
        proxy_auth_attach(rt.conf, err, sizeof(err)) != 0 ||
        tls_attach(rt.conf, err, sizeof(err)) != 0 ||
        proxy_rest_check(rt.conf, err, sizeof(err)) != 0) {
        fprintf(stderr, "switchyard: %s\n", err);
        conf_free(rt.conf);
        return 1;
    }
    if (test_only) {
        warn_unresolved(rt.conf);
        printf("switchyard: %s: configuration ok\n", path);
        conf_free(rt.conf);
        return 0;
    }
    rt.conf_path = path;
    rt.alog_fd = -1;
    {
        struct timeval tv;

        gettimeofday(&tv, NULL);
        rt.start_time = (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
    }
    log_init((enum log_level)rt.conf->proxy.log_level);
    log_set_json(rt.conf->proxy.log_json);
    signal(SIGPIPE, SIG_IGN);
    if (evthread_use_pthreads() != 0) {
        log_error("evthread_use_pthreads failed");
        conf_free(rt.conf);
        return 1;
    }
    rc = run(&rt);
    conf_free(rt.conf);
    libevent_global_shutdown();
    proxy_h2mem_release(); /* what libevent's shutdown gave back */
    return rc;
}
