/* DNS resolution of name targets with c-ares 1.18 on the main thread's loop:
 * one lookup per (cluster, target) name, repeated every dns_refresh (sooner
 * when the record TTL is shorter, never sooner than dns_min_ttl); each answer
 * is diffed into rt->eps, which drains vanished addresses.
 * Invariant: a failed or empty lookup never removes an endpoint: the last good
 * answer stays until a good answer replaces it. c-ares callbacks that fire
 * after proxy_dns_stop() started (ARES_EDESTRUCTION) find their target's owner
 * NULL and touch nothing else.
 * SPDX-License-Identifier: MIT */
#define LOG_MODULE "dns"
#include "proxy/dns.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ares.h>
#include <event2/event.h>

#include "balancer/epset.h"
#include "conf/conf.h"
#include "core/log.h"
#include "proxy/proxy.h"

/* First retry after a failed lookup; it doubles up to the refresh interval. */
#define DNS_RETRY_BASE_MS 1000u

enum dns_state {
    DNS_UNRESOLVED = 0, /* no answer yet (first lookup in flight): no endpoint */
    DNS_RESOLVED,       /* the last lookup gave addresses; they are the endpoints */
    DNS_STALE,          /* lookups fail after a success: the last good addresses stay */
    DNS_FAILED,         /* every lookup so far failed: no endpoint, calls get UNAVAILABLE */
    DNS_STATE_COUNT
};

struct dns_sock {
    ares_socket_t fd;
    short what; /* EV_READ|EV_WRITE as c-ares asked */
    struct event *ev;
};

struct dns_target {
    struct proxy_dns *dns; /* owner; NULL once proxy_dns_stop() cancels (see file comment) */
    uint32_t cl, t;        /* indices in rt->conf and rt->eps */
    const struct conf_cluster *cc;
    const struct conf_target *ct;
    struct event *timer; /* next lookup */
    enum dns_state state;
    int last_error;    /* ares status of the last failure (0: none since the last success) */
    uint32_t failures; /* consecutive failed lookups, for the backoff */
    bool in_flight;
    struct sockaddr_storage *addrs; /* the last good answer, with ports */
    socklen_t *lens;
    size_t naddrs;
};

struct proxy_dns {
    struct runtime *rt;
    ares_channel channel;
    struct event *ev_timeout; /* c-ares' own timeouts and retransmits (ares_timeout) */
    struct dns_sock *socks;
    size_t nsocks, capsocks;
    struct dns_target *targets;
    size_t ntargets;
    bool lib_init;
};

/* Our pseudo-status for a successful answer without usable address. */
#define DNS_EEMPTY (-1)

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n == 0 ? 1 : n, size == 0 ? 1 : size);

    if (p == NULL) {
        log_error("out of memory");
        abort();
    }
    return p;
}

static const char *state_name(enum dns_state s)
{
    static const char *const names[DNS_STATE_COUNT] = {"unresolved", "resolved", "stale", "failed"};

    return s < DNS_STATE_COUNT ? names[s] : "?";
}

static const char *status_name(int status)
{
    static const char *const names[] = {
        "ARES_SUCCESS",         "ARES_ENODATA",       "ARES_EFORMERR",
        "ARES_ESERVFAIL",       "ARES_ENOTFOUND",     "ARES_ENOTIMP",
        "ARES_EREFUSED",        "ARES_EBADQUERY",     "ARES_EBADNAME",
        "ARES_EBADFAMILY",      "ARES_EBADRESP",      "ARES_ECONNREFUSED",
        "ARES_ETIMEOUT",        "ARES_EOF",           "ARES_EFILE",
        "ARES_ENOMEM",          "ARES_EDESTRUCTION",  "ARES_EBADSTR",
        "ARES_EBADFLAGS",       "ARES_ENONAME",       "ARES_EBADHINTS",
        "ARES_ENOTINITIALIZED", "ARES_ELOADIPHLPAPI", "ARES_EADDRGETNETWORKPARAMS",
        "ARES_ECANCELLED",      "ARES_ESERVICE"};

    if (status == DNS_EEMPTY)
        return "empty answer";
    if (status >= 0 && (size_t)status < sizeof(names) / sizeof(names[0]))
        return names[status];
    return "ARES_E?";
}

static const char *error_text(int status)
{
    return status == DNS_EEMPTY ? "no address of the requested family" : ares_strerror(status);
}

/* ---- timing (pure) ---- */

/* Lowers |d| by up to 10% (from |rnd|) so that proxies started together do not
 * query in lockstep, but never below |lo|. */
static uint32_t jitter(uint32_t d, uint32_t lo, uint32_t rnd)
{
    uint32_t j = rnd % (d / 10 + 1);

    if (lo > d)
        lo = d;
    d -= j;
    return d < lo ? lo : (d == 0 ? 1 : d);
}

uint32_t proxy_dns_refresh_ms(uint32_t refresh_ms, uint32_t min_ttl_ms, long ttl_s, uint32_t rnd)
{
    uint64_t d = refresh_ms;
    uint32_t lo = min_ttl_ms < refresh_ms ? min_ttl_ms : refresh_ms;

    if (ttl_s >= 0 && (uint64_t)ttl_s * 1000 < d)
        d = (uint64_t)ttl_s * 1000 < min_ttl_ms ? min_ttl_ms : (uint64_t)ttl_s * 1000;
    if (d > refresh_ms)
        d = refresh_ms;
    return jitter((uint32_t)d, lo, rnd);
}

uint32_t proxy_dns_retry_ms(uint32_t refresh_ms, uint32_t failures, uint32_t rnd)
{
    uint64_t d = (uint64_t)DNS_RETRY_BASE_MS
                 << (failures > 1 ? (failures < 20 ? failures - 1 : 19) : 0);

    if (d > refresh_ms)
        d = refresh_ms;
    return jitter((uint32_t)d, 0, rnd);
}

/* ---- c-ares sockets and timeouts on the event loop ---- */

static void rearm_timeout(struct proxy_dns *d)
{
    struct timeval buf, *tv = ares_timeout(d->channel, NULL, &buf);

    if (tv == NULL)
        evtimer_del(d->ev_timeout);
    else
        evtimer_add(d->ev_timeout, tv);
}

static void on_ares_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct proxy_dns *d = arg;

    (void)fd;
    (void)what;
    ares_process_fd(d->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    rearm_timeout(d);
}

static void on_sock_ready(evutil_socket_t fd, short what, void *arg)
{
    struct proxy_dns *d = arg;

    /* May close |fd| and free its event through on_sock_state(): libevent
     * allows an event to be freed from its own callback. */
    ares_process_fd(d->channel, (what & EV_READ) ? fd : ARES_SOCKET_BAD,
                    (what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
    rearm_timeout(d);
}

/* ARES_OPT_SOCK_STATE_CB: c-ares opened, re-flagged or closed socket |fd|;
 * keep exactly one EV_PERSIST event per open socket. */
static void on_sock_state(void *arg, ares_socket_t fd, int readable, int writable)
{
    struct proxy_dns *d = arg;
    short what = (short)((readable ? EV_READ : 0) | (writable ? EV_WRITE : 0));
    struct dns_sock *s = NULL;

    for (size_t i = 0; i < d->nsocks && s == NULL; i++) {
        if (d->socks[i].fd == fd)
            s = &d->socks[i];
    }
    if (s != NULL && s->what == what)
        return;
    if (s != NULL) {
        event_free(s->ev);
        s->ev = NULL;
        if (what == 0) { /* closed */
            *s = d->socks[--d->nsocks];
            return;
        }
    } else {
        if (what == 0)
            return;
        if (d->nsocks == d->capsocks) {
            d->capsocks = d->capsocks == 0 ? 4 : d->capsocks * 2;
            d->socks = reallocarray(d->socks, d->capsocks, sizeof(*d->socks));
            if (d->socks == NULL) {
                log_error("out of memory");
                abort();
            }
        }
        s = &d->socks[d->nsocks++];
        s->fd = fd;
    }
    s->what = what;
    s->ev = event_new(d->rt->base, fd, (short)(what | EV_PERSIST), on_sock_ready, d);
    if (s->ev == NULL) {
        log_error("event_new failed for a DNS socket");
        abort();
    }
    event_add(s->ev, NULL);
}

/* ---- lookups ---- */

static void on_lookup_done(void *arg, int status, int timeouts, struct ares_addrinfo *res);

static void start_lookup(struct dns_target *tg)
{
    struct proxy_dns *d = tg->dns;
    struct ares_addrinfo_hints hints = {0};

    hints.ai_family = tg->cc->dns_family == CONF_DNS_V4   ? AF_INET
                      : tg->cc->dns_family == CONF_DNS_V6 ? AF_INET6
                                                          : AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    /* No RFC 6724 sorting: it opens a socket per address, and every address
     * becomes an endpoint whatever its order. */
    hints.ai_flags = ARES_AI_NOSORT;
    tg->in_flight = true;
    log_debug("cluster %s: looking up %s", tg->cc->name, tg->ct->host);
    /* The callback may run before this returns (e.g. an /etc/hosts hit). */
    ares_getaddrinfo(d->channel, tg->ct->host, NULL, &hints, on_lookup_done, tg);
    rearm_timeout(d);
}

static void on_refresh_timer(evutil_socket_t fd, short what, void *arg)
{
    struct dns_target *tg = arg;

    (void)fd;
    (void)what;
    if (!tg->in_flight)
        start_lookup(tg);
}

static void schedule(struct dns_target *tg, uint32_t ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (suseconds_t)(ms % 1000) * 1000};

    evtimer_add(tg->timer, &tv);
}

static void set_state(struct dns_target *tg, enum dns_state s)
{
    if (tg->state != s)
        log_debug("cluster %s: %s: %s -> %s", tg->cc->name, tg->ct->spec, state_name(tg->state),
                  state_name(s));
    tg->state = s;
}

static bool has_addr(const struct sockaddr_storage *addrs, const socklen_t *lens, size_t n,
                     const struct sockaddr_storage *a, socklen_t len)
{
    for (size_t i = 0; i < n; i++) {
        if (lens[i] == len && memcmp(&addrs[i], a, len) == 0)
            return true;
    }
    return false;
}

/* Logs each address that joined or left compared with the last good answer. */
static void log_diff(const struct dns_target *tg, const struct sockaddr_storage *addrs,
                     const socklen_t *lens, size_t n)
{
    char buf[BAL_ADDRSTRLEN];

    for (size_t i = 0; i < n; i++) {
        if (!has_addr(tg->addrs, tg->lens, tg->naddrs, &addrs[i], lens[i]))
            log_info("cluster %s: %s: added %s", tg->cc->name, tg->ct->spec,
                     bal_addr_str((const struct sockaddr *)&addrs[i], buf, sizeof(buf)));
    }
    for (size_t i = 0; i < tg->naddrs; i++) {
        if (!has_addr(addrs, lens, n, &tg->addrs[i], tg->lens[i]))
            log_info("cluster %s: %s: removed %s (draining: no new calls, running calls finish)",
                     tg->cc->name, tg->ct->spec,
                     bal_addr_str((const struct sockaddr *)&tg->addrs[i], buf, sizeof(buf)));
    }
}

static void on_answer(struct dns_target *tg, struct sockaddr_storage *addrs, socklen_t *lens,
                      size_t n, long ttl_s)
{
    struct proxy_dns *d = tg->dns;
    uint32_t next = proxy_dns_refresh_ms(tg->cc->dns_refresh_ms, tg->cc->dns_min_ttl_ms, ttl_s,
                                         (uint32_t)random());
    int changes;

    log_diff(tg, addrs, lens, n);
    if (tg->state == DNS_UNRESOLVED || tg->state == DNS_FAILED)
        log_info("cluster %s: %s resolved to %zu address(es) (ttl %lds); next lookup in %u ms",
                 tg->cc->name, tg->ct->spec, n, ttl_s, next);
    else if (tg->state == DNS_STALE)
        log_info("cluster %s: %s resolves again after %u failed lookup(s): %zu address(es)",
                 tg->cc->name, tg->ct->spec, tg->failures, n);
    else
        log_debug("cluster %s: %s: %zu address(es), ttl %lds, next lookup in %u ms", tg->cc->name,
                  tg->ct->spec, n, ttl_s, next);
    free(tg->addrs);
    free(tg->lens);
    tg->addrs = addrs;
    tg->lens = lens;
    tg->naddrs = n;
    tg->failures = 0;
    tg->last_error = 0;
    set_state(tg, DNS_RESOLVED);
    /* Always diffed, even when our own answer did not change: an address
     * shared with another target of the cluster may have left with it. */
    changes = bal_epset_set_addrs(d->rt->eps, tg->cl, tg->t, tg->addrs, tg->lens, tg->naddrs);
    if (changes > 0)
        proxy_snapshot_changed(d->rt);
    schedule(tg, next);
}

static void on_failure(struct dns_target *tg, int status)
{
    uint32_t next;
    bool changed;

    tg->failures++;
    next = proxy_dns_retry_ms(tg->cc->dns_refresh_ms, tg->failures, (uint32_t)random());
    changed = tg->state == DNS_RESOLVED || tg->state == DNS_UNRESOLVED || tg->last_error != status;
    tg->last_error = status;
    set_state(tg, tg->state == DNS_RESOLVED || tg->state == DNS_STALE ? DNS_STALE : DNS_FAILED);
    if (!changed) {
        log_debug("cluster %s: %s: lookup failed again (%s); retrying in %u ms", tg->cc->name,
                  tg->ct->spec, status_name(status), next);
    } else if (tg->state == DNS_STALE) {
        log_warn("cluster %s: cannot resolve %s: %s (%s); keeping its last %zu address(es); "
                 "retrying in %u ms, then with backoff up to %u ms",
                 tg->cc->name, tg->ct->spec, error_text(status), status_name(status), tg->naddrs,
                 next, tg->cc->dns_refresh_ms);
    } else {
        log_warn("cluster %s: cannot resolve %s: %s (%s); it has no endpoint, calls that need it "
                 "get UNAVAILABLE; retrying in %u ms, then with backoff up to %u ms",
                 tg->cc->name, tg->ct->spec, error_text(status), status_name(status), next,
                 tg->cc->dns_refresh_ms);
    }
    schedule(tg, next);
}

/* Smallest TTL of the answer's records, CNAMEs included; -1 when none. */
static long answer_ttl(const struct ares_addrinfo *res)
{
    long ttl = -1;

    for (const struct ares_addrinfo_node *n = res->nodes; n != NULL; n = n->ai_next) {
        if (n->ai_ttl >= 0 && (ttl < 0 || n->ai_ttl < ttl))
            ttl = n->ai_ttl;
    }
    for (const struct ares_addrinfo_cname *c = res->cnames; c != NULL; c = c->next) {
        if (c->ttl >= 0 && (ttl < 0 || c->ttl < ttl))
            ttl = c->ttl;
    }
    return ttl;
}

static void on_lookup_done(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
    struct dns_target *tg = arg;
    struct sockaddr_storage *addrs = NULL;
    socklen_t *lens = NULL;
    size_t n = 0, cap = 0;
    long ttl = -1;

    (void)timeouts;
    if (tg->dns == NULL) { /* cancelled: ARES_EDESTRUCTION from proxy_dns_stop() */
        if (res != NULL)
            ares_freeaddrinfo(res); /* not NULL-safe in c-ares 1.18 */
        return;
    }
    tg->in_flight = false;
    if (status == ARES_SUCCESS && res != NULL) {
        for (const struct ares_addrinfo_node *ai = res->nodes; ai != NULL; ai = ai->ai_next) {
            struct sockaddr_storage a = {0};
            socklen_t len;

            if (ai->ai_family == AF_INET && ai->ai_addrlen >= sizeof(struct sockaddr_in)) {
                len = sizeof(struct sockaddr_in);
                memcpy(&a, ai->ai_addr, len);
                ((struct sockaddr_in *)&a)->sin_port = htons(tg->ct->port);
            } else if (ai->ai_family == AF_INET6 && ai->ai_addrlen >= sizeof(struct sockaddr_in6)) {
                len = sizeof(struct sockaddr_in6);
                memcpy(&a, ai->ai_addr, len);
                ((struct sockaddr_in6 *)&a)->sin6_port = htons(tg->ct->port);
            } else {
                continue;
            }
            if (has_addr(addrs, lens, n, &a, len))
                continue;
            if (n == cap) {
                cap = cap == 0 ? 8 : cap * 2;
                addrs = reallocarray(addrs, cap, sizeof(*addrs));
                lens = reallocarray(lens, cap, sizeof(*lens));
                if (addrs == NULL || lens == NULL) {
                    log_error("out of memory");
                    abort();
                }
            }
            addrs[n] = a;
            lens[n++] = len;
        }
        ttl = answer_ttl(res);
    }
    if (res != NULL)
        ares_freeaddrinfo(res);
    if (n > 0) {
        on_answer(tg, addrs, lens, n, ttl); /* takes |addrs| and |lens| */
        return;
    }
    free(addrs);
    free(lens);
    on_failure(tg, status == ARES_SUCCESS ? DNS_EEMPTY : status);
}

/* ---- start and stop ---- */

/* After a reload, rt->eps already holds the addresses the previous resolver
 * found for an unchanged target (bal_epset_carry()): start from them, so the
 * first answer is diffed against them and a failure keeps them. */
static void seed_from_epset(struct dns_target *tg, const struct bal_epset *eps)
{
    size_t n = bal_epset_count(eps);

    if (!bal_epset_target_resolved(eps, tg->cl, tg->t))
        return;
    tg->addrs = xcalloc(n, sizeof(*tg->addrs));
    tg->lens = xcalloc(n, sizeof(*tg->lens));
    for (size_t i = 0; i < n; i++) {
        const struct bal_ep *ep = bal_epset_at(eps, i);

        if (ep->cluster == tg->cl && ep->target == tg->t) {
            memcpy(&tg->addrs[tg->naddrs], &ep->addr, ep->addrlen);
            tg->lens[tg->naddrs++] = ep->addrlen;
        }
    }
    tg->state = DNS_RESOLVED;
    log_debug("cluster %s: %s: %zu address(es) kept from before the reload", tg->cc->name,
              tg->ct->spec, tg->naddrs);
}

static int set_servers(struct proxy_dns *d, const struct conf_proxy *px)
{
    size_t len = 1;
    char *csv;
    int rc;

    for (size_t i = 0; i < px->ndns_servers; i++)
        len += strlen(px->dns_servers[i]) + 1;
    csv = xcalloc(1, len);
    for (size_t i = 0; i < px->ndns_servers; i++) {
        if (i > 0)
            strcat(csv, ",");
        strcat(csv, px->dns_servers[i]);
    }
    rc = ares_set_servers_ports_csv(d->channel, csv);
    if (rc != ARES_SUCCESS)
        log_error("dns_servers = %s: %s", csv, ares_strerror(rc));
    else
        log_info("resolving target names with %s (dns_servers)", csv);
    free(csv);
    return rc == ARES_SUCCESS ? 0 : -1;
}

int proxy_dns_start(struct runtime *rt)
{
    const struct conf *c = rt->conf;
    struct proxy_dns *d;
    struct ares_options opts = {0};
    int optmask = ARES_OPT_SOCK_STATE_CB;
    size_t n = 0;
    int rc;

    for (size_t i = 0; i < c->nclusters; i++) {
        for (size_t j = 0; j < c->clusters[i].ntargets; j++)
            n += !c->clusters[i].targets[j].is_literal;
    }
    if (n == 0)
        return 0; /* IP literals only: no channel, no resolv.conf read */
    d = xcalloc(1, sizeof(*d));
    rt->dns = d;
    d->rt = rt;
    d->targets = xcalloc(n, sizeof(*d->targets));
    for (size_t i = 0; i < c->nclusters; i++) {
        for (size_t j = 0; j < c->clusters[i].ntargets; j++) {
            struct dns_target *tg;

            if (c->clusters[i].targets[j].is_literal)
                continue;
            tg = &d->targets[d->ntargets++];
            tg->dns = d;
            tg->cl = (uint32_t)i;
            tg->t = (uint32_t)j;
            tg->cc = &c->clusters[i];
            tg->ct = &c->clusters[i].targets[j];
            tg->state = DNS_UNRESOLVED;
            tg->timer = evtimer_new(rt->base, on_refresh_timer, tg);
            seed_from_epset(tg, rt->eps);
        }
    }
    d->ev_timeout = evtimer_new(rt->base, on_ares_timeout, d);
    rc = ares_library_init(ARES_LIB_INIT_ALL);
    if (rc != ARES_SUCCESS) {
        log_error("ares_library_init: %s", ares_strerror(rc));
        return -1;
    }
    d->lib_init = true;
    opts.sock_state_cb = on_sock_state;
    opts.sock_state_cb_data = d;
    if (c->proxy.ndns_servers > 0) {
        /* Explicit servers replace the system's: DNS only, no /etc/hosts. */
        opts.lookups = (char *)"b";
        optmask |= ARES_OPT_LOOKUPS;
    }
    rc = ares_init_options(&d->channel, &opts, optmask);
    if (rc != ARES_SUCCESS) {
        d->channel = NULL;
        log_error("cannot set up the DNS resolver (c-ares %s): %s", ares_version(NULL),
                  ares_strerror(rc));
        return -1;
    }
    if (c->proxy.ndns_servers > 0) {
        if (set_servers(d, &c->proxy) != 0)
            return -1;
    } else {
        log_info("resolving target names with the system resolvers (/etc/resolv.conf, "
                 "/etc/hosts)");
    }
    for (size_t i = 0; i < d->ntargets; i++)
        start_lookup(&d->targets[i]);
    return 0;
}

void proxy_dns_stop(struct runtime *rt)
{
    struct proxy_dns *d = rt->dns;

    if (d == NULL)
        return;
    /* Owners first: ares_destroy() runs every pending callback with
     * ARES_EDESTRUCTION, and those must not act on a stopping resolver. */
    for (size_t i = 0; i < d->ntargets; i++)
        d->targets[i].dns = NULL;
    if (d->channel != NULL)
        ares_destroy(d->channel); /* closes its sockets through on_sock_state() */
    for (size_t i = 0; i < d->nsocks; i++)
        event_free(d->socks[i].ev);
    free(d->socks);
    for (size_t i = 0; i < d->ntargets; i++) {
        struct dns_target *tg = &d->targets[i];

        if (tg->timer != NULL)
            event_free(tg->timer);
        free(tg->addrs);
        free(tg->lens);
    }
    free(d->targets);
    if (d->ev_timeout != NULL)
        event_free(d->ev_timeout);
    if (d->lib_init)
        ares_library_cleanup();
    free(d);
    rt->dns = NULL;
}
