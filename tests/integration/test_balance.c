/* Integration tests of the load-balancing policies (issue 14) with real gRPC
 * peers: least_request around a slow backend, weights, ring_hash affinity
 * across a reload, and one pick_first choice for all workers through a
 * fail-over and recovery.
 * Invariant: every test starts its own switchyard (workers = 2, so picks
 * happen on two threads with their own policy state) and ends by stopping it
 * with SIGTERM and requiring exit 0 (ASan build: leaks fail the test). A call
 * "lands" on the backend named by its x-backend-id; "fresh" calls each open a
 * new connection, which SO_REUSEPORT hands to either worker.
 * SPDX-License-Identifier: MIT */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "tests/peers/gclient.h"
#include "tests/support/httpc.h"
#include "tests/support/support.h"

#define NB      4     /* b0..b3, started for every test */
#define PROXY_T 15000 /* ms to wait for switchyard to listen or exit */

enum {
    SERVING = 1,
    NOT_SERVING = 2,
};

static struct sup_backend be[NB + 1]; /* be[NB]: a slow one, when a test starts it */
static struct sup_proxy px;
static int admin_port; /* the admin listener of the running switchyard */

static void start_backends(void)
{
    memset(&px, 0, sizeof(px));
    memset(be, 0, sizeof(be));
    cr_assert_eq(sup_start_backends(be, NB, NULL), 0, "sy-backends did not start");
}

/* Criterion ignores assertions in .fini; each test ends with
 * stop_proxy_clean(), this only cleans up after a test that failed early. */
static void stop_all(void)
{
    sup_stop_clean(px.proc, PROXY_T);
    sup_stop_all();
}

static void stop_proxy_clean(void)
{
    int st = sup_stop_clean(px.proc, PROXY_T);

    cr_assert_eq(st, 0, "switchyard exited with status %d on SIGTERM", st);
}

TestSuite(balance, .init = start_backends, .fini = stop_all, .timeout = 180);

/* The config: cluster "echo" on |targets| with |cluster_keys| (one per line). */
static void conf_text(char *text, size_t len, int port, const char *targets,
                      const char *cluster_keys)
{
    snprintf(text, len,
             "[proxy]\n"
             "listen = 127.0.0.1:%d\n"
             "workers = 2\n"
             "drain_timeout = 10s\n"
             "log_level = %s\n"
             "\n"
             "[admin]\n"
             "listen = 127.0.0.1:%d\n"
             "\n"
             "[cluster.echo]\n"
             "targets = %s\n"
             "routes = /sy.test.Echo/\n"
             "%s\n",
             port, getenv("SY_LOG_LEVEL") ? getenv("SY_LOG_LEVEL") : "info", admin_port, targets,
             cluster_keys);
}

static void start_proxy(const char *targets, const char *cluster_keys)
{
    char text[4096];
    int port = sup_free_port();

    cr_assert_gt(port, 0);
    admin_port = sup_free_port();
    cr_assert_gt(admin_port, 0);
    conf_text(text, sizeof(text), port, targets, cluster_keys);
    cr_assert_eq(sup_start_proxy(&px, "switchyard", port, text, PROXY_T), 0,
                 "switchyard did not start (%s -c %s)", sup_proxy_bin(), px.conf);
    cr_assert_eq(sup_wait_port(px.proc, admin_port, PROXY_T), 0, "the admin did not listen");
}

/* Cluster "echo" of GET /status (the caller json_decref()s |*doc|). */
static json_t *echo_status(json_t **doc)
{
    json_t *cl;
    size_t i;

    *doc = sup_http_get_json(admin_port, "/status");
    cr_assert_not_null(*doc, "GET /status failed");
    json_array_foreach(json_object_get(*doc, "clusters"), i, cl)
    {
        if (strcmp(json_string_value(json_object_get(cl, "name")), "echo") == 0)
            return cl;
    }
    cr_assert_fail("no cluster echo in /status");
    return NULL;
}

/* The weight /status gives endpoint |addr| of cluster echo (-1: not listed). */
static long status_weight(const char *addr)
{
    json_t *doc, *ep, *eps;
    size_t i;
    long w = -1;

    eps = json_object_get(echo_status(&doc), "endpoints"); /* once: the macro repeats it */
    json_array_foreach(eps, i, ep)
    {
        if (strcmp(json_string_value(json_object_get(ep, "address")), addr) == 0)
            w = (long)json_integer_value(json_object_get(ep, "weight"));
    }
    json_decref(doc);
    return w;
}

/* Index in be[] of the backend named |id|, or -1. */
static int backend_index(const char *id)
{
    for (int i = 0; i <= NB; i++) {
        if (be[i].proc != NULL && strcmp(be[i].id, id) == 0)
            return i;
    }
    return -1;
}

/* One unary call on a fresh connection; returns the backend it landed on. */
static int fresh_call(const struct gc_md *md, size_t nmd)
{
    struct gc_opts o;
    struct gc_result r;

    gc_opts_init(&o, GC_UNARY);
    o.request_size = 16;
    o.timeout_ms = 5000;
    o.md = md;
    o.nmd = nmd;
    gc_call(px.addr, &o, &r);
    cr_assert_eq(r.status, 0, "call failed: %d %s", r.status, r.message);
    cr_assert_geq(backend_index(r.backend_id), 0, "x-backend-id '%s'", r.backend_id);
    return backend_index(r.backend_id);
}

/* ---- switchyard's log ---- */

static int log_count(const char *needle)
{
    return sup_log_count(px.proc, needle);
}

/* Waits until |needle| occurs more than |count| times; fails the test after
 * |ms|, showing the log. */
static void wait_log(const char *needle, int count, int ms)
{
    if (!sup_wait_log(px.proc, needle, count, ms))
        cr_assert_fail("no '%s' in switchyard's log after %d ms", needle, ms);
}

/* ---- least_request ---- */

#define CALLERS    20
#define PER_CALLER 30

static struct {
    atomic_int count[NB + 1];
    atomic_int failed;
    atomic_long slow_min_ms; /* shortest call that landed on the slow backend */
} lq;

static void *caller_run(void *arg)
{
    struct gc_chan *ch = gc_chan_new(px.addr);
    struct gc_opts o;

    (void)arg;
    gc_opts_init(&o, GC_UNARY);
    o.request_size = 16;
    o.timeout_ms = 10000;
    /* 20 channels connecting at once: gRPC core sometimes gives up on a first
     * connection attempt ("tcp handshaker shutdown") and would fail calls
     * fast during its reconnect backoff; this test is about picks */
    o.wait_for_ready = true;
    for (int i = 0; i < PER_CALLER; i++) {
        struct gc_result r;
        int b;

        if (gc_chan_call(ch, &o, &r) != 0 || (b = backend_index(r.backend_id)) < 0) {
            if (atomic_fetch_add(&lq.failed, 1) == 0)
                fprintf(stderr, "first failed call: %d %s (%ld ms)\n", r.status, r.message,
                        r.elapsed_ms);
            continue;
        }
        atomic_fetch_add(&lq.count[b], 1);
        if (b == NB && r.elapsed_ms < atomic_load(&lq.slow_min_ms))
            atomic_store(&lq.slow_min_ms, r.elapsed_ms);
    }
    gc_chan_free(ch);
    return NULL;
}

/* b0, b1 and a backend adding 200 ms to every reply; CALLERS concurrent
 * callers, each on its own connection, PER_CALLER calls each. Returns the
 * slow backend's share. */
static double slow_share(const char *policy)
{
    static const char *const slow_args[] = {"--delay-ms", "200", NULL};
    pthread_t th[CALLERS];
    char targets[256], keys[128];
    int total = 0;

    cr_assert_eq(sup_start_backend(&be[NB], "slow", slow_args), 0);
    snprintf(targets, sizeof(targets), "%s, %s, %s", be[0].addr, be[1].addr, be[NB].addr);
    snprintf(keys, sizeof(keys), "health_check = off\npolicy = %s", policy);
    start_proxy(targets, keys);
    memset(&lq, 0, sizeof(lq));
    atomic_store(&lq.slow_min_ms, 1000000);
    for (int i = 0; i < CALLERS; i++)
        pthread_create(&th[i], NULL, caller_run, NULL);
    for (int i = 0; i < CALLERS; i++)
        pthread_join(th[i], NULL);
    cr_assert_eq(atomic_load(&lq.failed), 0, "%d calls failed", atomic_load(&lq.failed));
    for (int b = 0; b <= NB; b++)
        total += atomic_load(&lq.count[b]);
    cr_assert_eq(total, CALLERS * PER_CALLER);
    fprintf(stderr, "%s: b0 %d, b1 %d, slow %d of %d\n", policy, atomic_load(&lq.count[0]),
            atomic_load(&lq.count[1]), atomic_load(&lq.count[NB]), total);
    if (atomic_load(&lq.count[NB]) > 0)
        cr_assert_geq(atomic_load(&lq.slow_min_ms), 200, "the slow backend answered in %ld ms",
                      atomic_load(&lq.slow_min_ms));
    stop_proxy_clean();
    return (double)atomic_load(&lq.count[NB]) / total;
}

Test(balance, least_request_routes_around_a_slow_backend)
{
    double share = slow_share("least_request");

    cr_assert_lt(share, 0.15, "the slow backend got %.1f %% of the calls", share * 100);
}

Test(balance, round_robin_gives_a_slow_backend_its_third)
{
    double share = slow_share("round_robin");

    cr_assert(share > 0.28 && share < 0.39, "the slow backend got %.1f %% of the calls",
              share * 100);
}

/* ---- weights ---- */

#define WCALLERS 4
#define WCALLS   100

static atomic_int wcount[NB];

static void *weighted_run(void *arg)
{
    struct gc_chan *ch = gc_chan_new(px.addr);
    struct gc_opts o;

    (void)arg;
    gc_opts_init(&o, GC_UNARY);
    o.wait_for_ready = true;
    for (int i = 0; i < WCALLS; i++) {
        struct gc_result r;
        int b;

        gc_chan_call(ch, &o, &r);
        b = backend_index(r.backend_id);
        if (r.status == 0 && b >= 0 && b < NB)
            atomic_fetch_add(&wcount[b], 1);
    }
    gc_chan_free(ch);
    return NULL;
}

Test(balance, weights_3_to_1_give_75_percent)
{
    char targets[256];
    pthread_t th[WCALLERS];

    snprintf(targets, sizeof(targets), "%s weight=3, %s", be[0].addr, be[1].addr);
    start_proxy(targets, "health_check = off");
    for (int i = 0; i < WCALLERS; i++)
        pthread_create(&th[i], NULL, weighted_run, NULL);
    for (int i = 0; i < WCALLERS; i++)
        pthread_join(th[i], NULL);
    fprintf(stderr, "weights 3:1: b0 %d, b1 %d\n", atomic_load(&wcount[0]),
            atomic_load(&wcount[1]));
    cr_assert_eq(atomic_load(&wcount[0]) + atomic_load(&wcount[1]), WCALLERS * WCALLS);
    cr_assert(atomic_load(&wcount[0]) >= 280 && atomic_load(&wcount[0]) <= 320,
              "b0 (weight 3) got %d of 400 calls", atomic_load(&wcount[0]));
    cr_assert_eq(status_weight(be[0].addr), 3, "/status weight of b0");
    cr_assert_eq(status_weight(be[1].addr), 1, "/status weight of b1 (none given)");
    stop_proxy_clean();
}

/* ---- ring_hash ---- */

#define USERS 40

/* Where each user's calls land (5 fresh connections each, so both workers
 * answer): all on one backend, whose index goes to |home[u]|. */
static void map_users(int *home, const int *avoid)
{
    for (int u = 0; u < USERS; u++) {
        char id[32];
        struct gc_md md = {"x-user-id", id};

        snprintf(id, sizeof(id), "user-%d", u);
        home[u] = -1;
        for (int k = 0; k < 5; k++) {
            int b = fresh_call(&md, 1);

            if (avoid != NULL)
                cr_assert_neq(b, *avoid, "%s landed on the removed backend", id);
            if (home[u] < 0)
                home[u] = b;
            cr_assert_eq(b, home[u], "%s landed on b%d, then on b%d", id, home[u], b);
        }
    }
}

struct not_on {
    int backend;
};

/* True when ten fresh calls of users that lived on |backend| all land
 * elsewhere: both workers have the new snapshot. */
static bool moved_off(void *arg)
{
    const struct not_on *n = arg;

    for (int k = 0; k < 10; k++) {
        struct gc_md md = {"x-user-id", "probe"};

        if (fresh_call(&md, 1) == n->backend)
            return false;
    }
    return true;
}

Test(balance, ring_hash_keeps_users_on_their_backend_across_a_reload)
{
    char targets[256], text[4096];
    int home[USERS], again[USERS], used[NB] = {0}, nused = 0, moved = 0, reloads;
    struct not_on gone;

    snprintf(targets, sizeof(targets), "%s, %s, %s, %s", be[0].addr, be[1].addr, be[2].addr,
             be[3].addr);
    start_proxy(targets, "health_check = off\npolicy = ring_hash\nhash_on = header:x-user-id");
    map_users(home, NULL);
    for (int u = 0; u < USERS; u++)
        nused += used[home[u]]++ == 0;
    cr_assert_geq(nused, 3, "40 users on %d backends only", nused);
    /* the reload removes the backend of the key "probe", so that the test
     * can tell when both workers have the new snapshot */
    {
        struct gc_md md = {"x-user-id", "probe"};

        gone.backend = fresh_call(&md, 1);
    }
    /* calls without the header still work (random) */
    for (int k = 0; k < 10; k++)
        fresh_call(NULL, 0);

    /* reload without the probe's backend */
    {
        char tg[256] = "";
        FILE *f;

        for (int b = 0; b < NB; b++) {
            if (b == gone.backend)
                continue;
            snprintf(tg + strlen(tg), sizeof(tg) - strlen(tg), "%s%s", tg[0] ? ", " : "",
                     be[b].addr);
        }
        conf_text(text, sizeof(text), px.port, tg,
                  "health_check = off\npolicy = ring_hash\nhash_on = header:x-user-id");
        f = fopen(px.conf, "w");
        cr_assert_not_null(f);
        fputs(text, f);
        fclose(f);
    }
    reloads = log_count("configuration reloaded from");
    sup_signal(px.proc, SIGHUP);
    wait_log("configuration reloaded from", reloads, 10000);
    cr_assert(sup_poll(moved_off, &gone, 10000), "the probe key still lands on b%d", gone.backend);
    map_users(again, &gone.backend);
    for (int u = 0; u < USERS; u++) {
        if (home[u] == gone.backend) {
            moved++;
            continue;
        }
        cr_assert_eq(again[u], home[u], "user-%d moved from b%d to b%d, but b%d stayed", u, home[u],
                     again[u], home[u]);
    }
    fprintf(stderr, "ring_hash: %d of %d users moved, all from the removed b%d\n", moved, USERS,
            gone.backend);
    cr_assert_gt(moved, 0, "no user lived on the removed backend: the test proves nothing");
    stop_proxy_clean();
}

Test(balance, ring_hash_on_peer_sticks_to_one_backend)
{
    char targets[256];
    int first = -1;

    snprintf(targets, sizeof(targets), "%s, %s, %s", be[0].addr, be[1].addr, be[2].addr);
    start_proxy(targets, "health_check = off\npolicy = ring_hash\nhash_on = peer");
    /* every connection comes from 127.0.0.1 (another port each time) */
    for (int k = 0; k < 20; k++) {
        int b = fresh_call(NULL, 0);

        if (first < 0)
            first = b;
        cr_assert_eq(b, first, "connection %d landed on b%d, the first on b%d", k, b, first);
    }
    stop_proxy_clean();
}

/* ---- pick_first ---- */

/* 20 calls on fresh connections (both workers): all must land on |want|. */
static void all_on(int want, const char *stage)
{
    json_t *doc;
    const char *active;

    for (int k = 0; k < 20; k++) {
        int b = fresh_call(NULL, 0);

        cr_assert_eq(b, want, "%s: connection %d landed on b%d, expected b%d", stage, k, b, want);
    }
    /* /status names the one endpoint every worker uses */
    active = json_string_value(json_object_get(echo_status(&doc), "active_endpoint"));
    cr_assert_not_null(active, "%s: no active_endpoint in /status", stage);
    cr_assert_str_eq(active, be[want].addr, "%s: /status says %s is active", stage, active);
    json_decref(doc);
}

struct lands {
    int backend;
};

static bool lands_on(void *arg)
{
    const struct lands *l = arg;

    return fresh_call(NULL, 0) == l->backend;
}

/* Sets b|b|'s health and waits until switchyard's health checker noticed. */
static void set_health(int b, int status)
{
    char needle[160];
    int before;

    snprintf(needle, sizeof(needle),
             status == SERVING ? "endpoint %s is healthy again"
                               : "endpoint %s is unhealthy, out of rotation",
             be[b].addr);
    before = log_count(needle);
    cr_assert_eq(gc_set_health(be[b].addr, "", status), 0);
    wait_log(needle, before, 10000);
}

static void start_pick_first(const char *more)
{
    char targets[256], keys[512];

    snprintf(targets, sizeof(targets), "%s, %s, %s", be[0].addr, be[1].addr, be[2].addr);
    snprintf(keys, sizeof(keys),
             "policy = pick_first\nhealth_initial = healthy\nhealth_interval = 200ms\n"
             "health_timeout = 150ms\nunhealthy_threshold = 1\nhealthy_threshold = 1\n%s",
             more);
    start_proxy(targets, keys);
}

Test(balance, pick_first_one_backend_for_all_workers_through_failover)
{
    struct lands l;

    start_pick_first("");
    all_on(0, "all healthy");
    /* b0 fails: everyone moves to b1 */
    set_health(0, NOT_SERVING);
    l.backend = 1;
    cr_assert(sup_poll(lands_on, &l, 5000), "calls never moved to b1");
    all_on(1, "b0 down");
    /* b0 is back: gRPC pick_first stays on b1 */
    set_health(0, SERVING);
    all_on(1, "b0 back");
    /* b1 fails: the first in rotation, b0 */
    set_health(1, NOT_SERVING);
    l.backend = 0;
    cr_assert(sup_poll(lands_on, &l, 5000), "calls never moved to b0");
    all_on(0, "b1 down");
    set_health(1, SERVING);
    all_on(0, "b1 back");
    /* b0 fails and returns while no call runs: the choice moved anyway (it is
     * made where snapshots are built, not by the calls of each worker) */
    set_health(0, NOT_SERVING);
    set_health(0, SERVING);
    all_on(1, "b0 down and back without traffic");
    stop_proxy_clean();
}

Test(balance, pick_first_failback_returns_to_the_first_backend)
{
    struct lands l;

    start_pick_first("pick_first_failback = on");
    all_on(0, "all healthy");
    set_health(0, NOT_SERVING);
    l.backend = 1;
    cr_assert(sup_poll(lands_on, &l, 5000), "calls never moved to b1");
    all_on(1, "b0 down");
    set_health(0, SERVING);
    l.backend = 0;
    cr_assert(sup_poll(lands_on, &l, 5000), "calls never went back to b0");
    all_on(0, "b0 back");
    stop_proxy_clean();
}
