/* Integration tests of active health checking and of switchyard's own
 * grpc.health.v1 service: real sy-backends (gRPC C core) whose health the
 * test flips, a scripted fake health server for the ways servers misbehave,
 * and real gRPC clients under steady load, with switchyard in between.
 * Invariant: every test starts its own switchyard and ends by stopping it
 * with SIGTERM and requiring exit 0 (ASan build: leaks fail the test). Times
 * are CLOCK_MONOTONIC ms on the test's side; a call "lands" on the backend
 * named by its x-backend-id.
 * SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "tests/peers/gclient.h"
#include "tests/support/fakehealth.h"
#include "tests/support/h2health.h"
#include "tests/support/support.h"

#define NB      3
#define PROXY_T 15000 /* ms to wait for switchyard to listen or exit */
/* Scheduling slack on top of the nominal bounds: the proxy runs under ASan on
 * a small machine shared with other builds. */
#define SLACK_MS 250

enum {
    SERVING = 1,
    NOT_SERVING = 2,
};

static struct sup_backend be[NB];
static struct sup_proxy px;
static struct fhs_server *fake;

static void start_backends(void)
{
    memset(&px, 0, sizeof(px));
    fake = NULL;
    cr_assert_eq(sup_start_backends(be, NB, NULL), 0, "sy-backends did not start");
}

/* Criterion ignores assertions in .fini; each test ends with
 * stop_proxy_clean(), this only cleans up after a test that failed early. */
static void stop_all(void)
{
    if (px.proc && sup_alive(px.proc)) {
        int st = sup_stop(px.proc, PROXY_T);

        if (st != 0) {
            fprintf(stderr, "switchyard exited with status %d on SIGTERM at teardown\n", st);
            sup_dump_log(px.proc, 60);
        }
    }
    fhs_stop(fake);
    fake = NULL;
    sup_stop_all();
}

static void stop_proxy_clean(void)
{
    int st = sup_stop(px.proc, PROXY_T);

    if (st != 0)
        sup_dump_log(px.proc, 80);
    cr_assert_eq(st, 0, "switchyard exited with status %d on SIGTERM", st);
}

TestSuite(health, .init = start_backends, .fini = stop_all, .timeout = 120);

/* ---- configuration ---- */

/* Starts switchyard with cluster "echo" (routes /sy.test.Echo/) on |targets|
 * (NULL: the three backends), |extra| more lines for it, and |more| sections. */
static void start_proxy(const char *targets, const char *extra, const char *more)
{
    char text[4096], tg[256];
    int port = sup_free_port();

    cr_assert_gt(port, 0);
    if (targets == NULL) {
        snprintf(tg, sizeof(tg), "%s, %s, %s", be[0].addr, be[1].addr, be[2].addr);
        targets = tg;
    }
    snprintf(text, sizeof(text),
             "[proxy]\n"
             "listen = 127.0.0.1:%d\n"
             "workers = 2\n"
             "drain_timeout = 10s\n"
             "log_level = %s\n"
             "\n"
             "[admin]\n"
             "listen = off\n"
             "\n"
             "[cluster.echo]\n"
             "targets = %s\n"
             "routes = /sy.test.Echo/\n"
             "%s\n"
             "%s\n",
             port, getenv("SY_LOG_LEVEL") ? getenv("SY_LOG_LEVEL") : "info", targets,
             extra ? extra : "", more ? more : "");
    cr_assert_eq(sup_start_proxy(&px, "switchyard", port, text, PROXY_T), 0,
                 "switchyard did not start (%s -c %s)", sup_proxy_bin(), px.conf);
}

/* ---- the proxy's log ---- */

/* How many times |needle| occurs in switchyard's stderr. */
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

static const char *out_line(char *buf, size_t len, const char *addr)
{
    snprintf(buf, len, "endpoint %s is unhealthy, out of rotation", addr);
    return buf;
}

static const char *in_line(char *buf, size_t len, const char *addr)
{
    snprintf(buf, len, "endpoint %s is healthy again", addr);
    return buf;
}

/* ---- steady call load ---- */

#define LOAD_THREADS 2
#define MAX_RECS     (1 << 19)

struct rec {
    long start, end; /* ms */
    int b;           /* backend index, -1 unknown */
    int status;
};

static struct {
    pthread_t t[LOAD_THREADS];
    atomic_bool stop, pause;
    atomic_int paused;
    pthread_mutex_t mu;
    struct rec *recs;
    size_t n;
} load;

static int backend_index(const char *id)
{
    for (int i = 0; i < NB; i++) {
        if (strcmp(be[i].id, id) == 0)
            return i;
    }
    return -1;
}

static void *load_run(void *arg)
{
    struct gc_chan *ch = gc_chan_new(px.addr);
    struct gc_opts o;
    bool paused = false;

    (void)arg;
    gc_opts_init(&o, GC_UNARY);
    o.request_size = 32;
    o.timeout_ms = 5000;
    while (!atomic_load(&load.stop)) {
        struct gc_result r;
        struct rec rc;

        if (atomic_load(&load.pause)) {
            if (!paused)
                atomic_fetch_add(&load.paused, 1);
            paused = true;
            sup_sleep_ms(1);
            continue;
        }
        if (paused)
            atomic_fetch_sub(&load.paused, 1);
        paused = false;
        rc.start = sup_now_ms();
        gc_chan_call(ch, &o, &r);
        rc.end = sup_now_ms();
        rc.status = r.status;
        rc.b = r.status == 0 ? backend_index(r.backend_id) : -1;
        if (r.status != 0)
            fprintf(stderr, "load: call failed: %d %s\n", r.status, r.message);
        pthread_mutex_lock(&load.mu);
        if (load.n < MAX_RECS)
            load.recs[load.n++] = rc;
        pthread_mutex_unlock(&load.mu);
    }
    gc_chan_free(ch);
    return NULL;
}

static void load_start(void)
{
    atomic_store(&load.stop, false);
    atomic_store(&load.pause, false);
    atomic_store(&load.paused, 0);
    pthread_mutex_init(&load.mu, NULL);
    load.n = 0;
    load.recs = calloc(MAX_RECS, sizeof(*load.recs));
    cr_assert_not_null(load.recs);
    for (int i = 0; i < LOAD_THREADS; i++)
        cr_assert_eq(pthread_create(&load.t[i], NULL, load_run, NULL), 0);
}

static void load_stop(void)
{
    atomic_store(&load.stop, true);
    for (int i = 0; i < LOAD_THREADS; i++)
        pthread_join(load.t[i], NULL);
}

static void load_free(void)
{
    free(load.recs);
    load.recs = NULL;
    pthread_mutex_destroy(&load.mu);
}

static bool all_paused(void *arg)
{
    (void)arg;
    return atomic_load(&load.paused) == LOAD_THREADS;
}

/* No call in flight until load_resume(). */
static void load_pause(void)
{
    atomic_store(&load.pause, true);
    cr_assert(sup_poll(all_paused, NULL, 10000), "the load did not pause");
}

static void load_resume(void)
{
    atomic_store(&load.pause, false);
}

/* Calls started in [from, to) that landed on |b| (-2: any backend). */
static int count_on(int b, long from, long to)
{
    int n = 0;

    pthread_mutex_lock(&load.mu);
    for (size_t i = 0; i < load.n; i++) {
        const struct rec *r = &load.recs[i];

        if (r->start >= from && r->start < to && r->status == 0 && (b == -2 || r->b == b))
            n++;
    }
    pthread_mutex_unlock(&load.mu);
    return n;
}

/* The latest (|last|) or earliest start of a call on |b| started in [from, to); -1 if none. */
static long start_on(int b, long from, long to, bool last)
{
    long t = -1;

    pthread_mutex_lock(&load.mu);
    for (size_t i = 0; i < load.n; i++) {
        const struct rec *r = &load.recs[i];

        if (r->b != b || r->start < from || r->start >= to)
            continue;
        if (t < 0 || (last ? r->start > t : r->start < t))
            t = r->start;
    }
    pthread_mutex_unlock(&load.mu);
    return t;
}

/* Calls started in [from, to) that did not end OK. */
static int failures(long from, long to)
{
    int n = 0;

    pthread_mutex_lock(&load.mu);
    for (size_t i = 0; i < load.n; i++) {
        if (load.recs[i].start >= from && load.recs[i].start < to && load.recs[i].status != 0)
            n++;
    }
    pthread_mutex_unlock(&load.mu);
    return n;
}

struct on_wait {
    int b;
    long from;
    int want;
};

static bool calls_on(void *arg)
{
    struct on_wait *w = arg;

    return count_on(w->b, w->from, 1L << 62) >= w->want;
}

/* Waits until |want| calls started at or after |from| landed on each backend
 * in |mask|. */
static void wait_calls(unsigned mask, long from, int want, int ms)
{
    for (int b = 0; b < NB; b++) {
        struct on_wait w = {b, from, want};

        if (mask & (1u << b))
            cr_assert(sup_poll(calls_on, &w, ms), "backend %s got fewer than %d calls in %d ms",
                      be[b].id, want, ms);
    }
}

/* ---- flips under load ---- */

struct flip_times {
    long out_ms;  /* flip to NOT_SERVING -> the last call that landed on it */
    long back_ms; /* flip back to SERVING -> the first call on it again */
};

/* Under steady load, flips b1 to NOT_SERVING and back and measures. */
static struct flip_times flip_under_load(void)
{
    struct flip_times ft;
    char needle[128];
    long t0, t1, last, first;

    load_start();
    wait_calls(7, 0, 20, 10000);
    t0 = sup_now_ms();
    cr_assert_eq(gc_set_health(be[1].addr, "", NOT_SERVING), 0);
    wait_log(out_line(needle, sizeof(needle), be[1].addr), 0, 10000);
    sup_sleep_ms(1000); /* a second of load with b1 out */
    t1 = sup_now_ms();
    cr_assert_eq(gc_set_health(be[1].addr, "", SERVING), 0);
    wait_calls(2, t1, 1, 10000);
    sup_sleep_ms(300);
    load_stop();

    cr_assert_eq(failures(0, 1L << 62), 0, "%d of %zu calls failed", failures(0, 1L << 62), load.n);
    last = start_on(1, t0, t1, true);
    first = start_on(1, t1, 1L << 62, false);
    ft.out_ms = last < 0 ? 0 : last - t0;
    ft.back_ms = first - t1;
    cr_assert_gt(count_on(0, t0 + ft.out_ms, t1) + count_on(2, t0 + ft.out_ms, t1), 50,
                 "the others took the load meanwhile");
    cr_log_info("%zu calls, none failed; b1 out %ld ms after the flip, back %ld ms after", load.n,
                ft.out_ms, ft.back_ms);
    fprintf(stderr,
            "measured: %zu calls, 0 failed; last call on the flipped backend %ld ms after "
            "NOT_SERVING; first call %ld ms after SERVING\n",
            load.n, ft.out_ms, ft.back_ms);
    load_free();
    return ft;
}

Test(health, not_serving_leaves_rotation_within_interval_plus_timeout_and_comes_back)
{
    /* interval 200 ms (+-10%), timeout 100 ms, 2 passes to come back */
    struct flip_times ft;

    start_proxy(NULL,
                "health_interval = 200ms\nhealth_timeout = 100ms\n"
                "unhealthy_threshold = 2\nhealthy_threshold = 2",
                NULL);
    ft = flip_under_load();
    cr_assert_leq(ft.out_ms, 220 + 100 + SLACK_MS,
                  "a call landed on the NOT_SERVING backend %ld ms after the flip", ft.out_ms);
    cr_assert_leq(ft.back_ms, 2 * 220 + 100 + SLACK_MS,
                  "back in rotation only %ld ms after SERVING (2 passes of 200 ms)", ft.back_ms);
    stop_proxy_clean();
}

Test(health, watch_mode_sees_a_flip_well_under_one_interval)
{
    struct flip_times ft;

    start_proxy(NULL, "health_mode = watch\nhealth_interval = 3s\nhealth_timeout = 500ms", NULL);
    ft = flip_under_load();
    cr_assert_leq(ft.out_ms, 100 + SLACK_MS, "out %ld ms after the flip (interval is 3 s)",
                  ft.out_ms);
    cr_assert_leq(ft.back_ms, 100 + SLACK_MS, "back %ld ms after the flip (interval is 3 s)",
                  ft.back_ms);
    /* the checker used Watch, not Check */
    {
        struct gc_stats s;

        cr_assert_eq(gc_stats(be[1].addr, false, &s), 0);
        cr_assert_geq(s.health_watches, 1);
        cr_assert_eq(s.health_checks, 0, "%llu Checks in watch mode",
                     (unsigned long long)s.health_checks);
    }
    stop_proxy_clean();
}

Test(health, killed_backend_leaves_rotation_at_once_and_calls_never_fail)
{
    char needle[128];
    long t0, t_out;

    /* a long interval: being taken out must not wait for the next probe */
    start_proxy(NULL, "health_interval = 2s\nhealth_timeout = 200ms\nunhealthy_threshold = 3",
                NULL);
    load_start();
    wait_calls(7, 0, 20, 10000);
    load_pause(); /* no call in flight on b1 when it dies */
    t0 = sup_now_ms();
    cr_assert_eq(sup_kill(be[1].proc), 128 + SIGKILL);
    load_resume();
    wait_log(out_line(needle, sizeof(needle), be[1].addr), 0, 5000);
    t_out = sup_now_ms() - t0;
    sup_sleep_ms(500); /* more load with b1 gone */
    load_stop();
    cr_assert_eq(failures(t0, 1L << 62), 0, "%d calls failed after the kill",
                 failures(t0, 1L << 62));
    cr_assert_eq(count_on(1, t0, 1L << 62), 0);
    cr_assert_gt(count_on(-2, t0, 1L << 62), 20);
    cr_assert_lt(t_out, 1000, "out of rotation %ld ms after the kill (interval 2 s)", t_out);
    cr_assert(log_count("connection refused") > 0 || log_count("closed by the endpoint") > 0);
    fprintf(stderr,
            "measured: killed backend out of rotation %ld ms after SIGKILL (polling the "
            "log every 10 ms); 0 calls failed\n",
            t_out);
    load_free();
    stop_proxy_clean();
}

Test(health, hanging_backend_times_out_after_unhealthy_threshold)
{
    char needle[256];
    struct gc_opts o;
    struct gc_result r;
    char targets[256];
    long t0, t_out;

    fake = fhs_start(FHS_SILENT, 0); /* accepts, reads, never answers */
    cr_assert_not_null(fake);
    snprintf(targets, sizeof(targets), "%s, %s, %s", be[0].addr, be[1].addr, fhs_addr(fake));
    t0 = sup_now_ms();
    start_proxy(targets,
                "health_initial = healthy\nhealth_interval = 200ms\nhealth_timeout = 100ms\n"
                "unhealthy_threshold = 3",
                NULL);
    wait_log(out_line(needle, sizeof(needle), fhs_addr(fake)), 0, 10000);
    t_out = sup_now_ms() - t0;
    snprintf(needle, sizeof(needle),
             "out of rotation: no answer within 100 ms (3 failures in a row)");
    cr_assert_eq(log_count(needle), 1, "not the threshold's third timeout");
    cr_assert_geq(fhs_conns(fake), 3, "each timed-out probe starts on a new connection");
    /* 3 timeouts of 100 ms, 2 intervals of >= 180 ms between them */
    cr_assert_geq(t_out, 3 * 100 + 2 * 180, "out after %ld ms: before the third timeout", t_out);
    fprintf(stderr, "measured: hanging backend out %ld ms after switchyard started\n", t_out);

    gc_opts_init(&o, GC_UNARY);
    o.timeout_ms = 2000;
    for (int i = 0; i < 20; i++) {
        gc_call(px.addr, &o, &r);
        cr_assert_eq(r.status, 0, "call %d: %d %s", i, r.status, r.message);
    }
    stop_proxy_clean();
}

/* A scripted server in a cluster of its own (no calls go there): each way of
 * failing is counted or immediate as documented. */
Test(health, failures_counted_or_immediate_per_kind)
{
    static const struct {
        enum fhs_mode mode;
        int code;
        const char *reason; /* the out-of-rotation reason */
    } steps[] = {
        {FHS_COMPRESSED, 0,
         "compressed response message (none was asked for) (2 failures in a row)"},
        {FHS_STATUS, 13, "grpc-status 13 INTERNAL: fake health server (2 failures in a row)"},
        {FHS_BAD_MESSAGE, 0, "undecodable HealthCheckResponse (2 failures in a row)"},
        {FHS_NOT_SERVING, 0, "out of rotation: NOT_SERVING\n"},
        {FHS_STATUS, 5, "out of rotation: grpc-status 5 NOT_FOUND: fake health server\n"},
        {FHS_STATUS, 12,
         "out of rotation: grpc-status 12 UNIMPLEMENTED: fake health server (no health service: "
         "health_unimplemented = healthy counts that as healthy)\n"},
        /* a graceful GOAWAY is no failure, but closing before the answer is */
        {FHS_GOAWAY, 0,
         "out of rotation: connection closed after GOAWAY (NO_ERROR), before the answer (2 "
         "failures in a row)\n"},
    };
    char more[512], out[160], in[160], first[160];

    fake = fhs_start(FHS_SERVING, 0);
    cr_assert_not_null(fake);
    snprintf(more, sizeof(more),
             "[cluster.fake]\ntargets = %s\nroutes = /sy.test.Fake/\nhealth_authority = "
             "fake.example\nhealth_service = fake.v1.Svc\nhealth_interval = 100ms\n"
             "health_timeout = 100ms\nunhealthy_threshold = 2\nhealthy_threshold = 1\n",
             fhs_addr(fake));
    start_proxy(NULL, NULL, more);
    out_line(out, sizeof(out), fhs_addr(fake));
    in_line(in, sizeof(in), fhs_addr(fake));
    snprintf(first, sizeof(first), "endpoint %s passed its first health check", fhs_addr(fake));
    wait_log(first, 0, 10000);
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        int n = log_count(out);

        fhs_set(fake, steps[i].mode, steps[i].code);
        wait_log(out, n, 10000);
        cr_assert_eq(log_count(steps[i].reason), 1, "step %zu: no '%s'", i, steps[i].reason);
        n = log_count(in);
        fhs_set(fake, FHS_SERVING, 0);
        wait_log(in, n, 10000);
    }
    /* what the probes looked like */
    cr_assert(fhs_saw_header(fake, ":path", "/grpc.health.v1.Health/Check"));
    cr_assert(fhs_saw_header(fake, ":authority", "fake.example"));
    cr_assert(fhs_saw_header(fake, "content-type", "application/grpc"));
    cr_assert(fhs_saw_header(fake, "te", "trailers"));
    cr_assert(fhs_saw_header(fake, "grpc-timeout", "100m"));
    stop_proxy_clean();
}

Test(health, watch_falls_back_to_check_on_unimplemented)
{
    char more[512], in[160];
    int checks;

    fake = fhs_start(FHS_SERVING, 0);
    cr_assert_not_null(fake);
    fhs_watch_unimplemented(fake, true);
    snprintf(more, sizeof(more),
             "[cluster.fake]\ntargets = %s\nroutes = /sy.test.Fake/\nhealth_mode = watch\n"
             "health_interval = 100ms\nhealth_timeout = 100ms\n",
             fhs_addr(fake));
    start_proxy(NULL, NULL, more);
    wait_log("does not implement Health/Watch; using Check", 0, 10000);
    snprintf(in, sizeof(in), "endpoint %s passed its first health check", fhs_addr(fake));
    wait_log(in, 0, 10000);
    checks = fhs_checks(fake);
    sup_sleep_ms(500);
    cr_assert_gt(fhs_checks(fake), checks + 2, "Check every interval after the fallback");
    cr_assert_eq(fhs_watches(fake), 1, "Watch was tried once");
    /* the default :authority is the target's host */
    cr_assert(fhs_saw_header(fake, ":authority", "127.0.0.1"));
    stop_proxy_clean();
}

Test(health, unimplemented_may_count_as_healthy)
{
    char more[512], needle[256];

    fake = fhs_start(FHS_STATUS, 12);
    cr_assert_not_null(fake);
    snprintf(more, sizeof(more),
             "[cluster.fake]\ntargets = %s\nroutes = /sy.test.Fake/\n"
             "health_unimplemented = healthy\nhealth_interval = 100ms\nhealth_timeout = 100ms\n",
             fhs_addr(fake));
    start_proxy(NULL, NULL, more);
    snprintf(needle, sizeof(needle),
             "endpoint %s passed its first health check, in rotation: grpc-status 12 "
             "UNIMPLEMENTED",
             fhs_addr(fake));
    wait_log(needle, 0, 10000);
    {
        int st = -1;

        cr_assert_eq(gc_health_check(px.addr, "fake", &st), 0);
        cr_assert_eq(st, SERVING);
    }
    stop_proxy_clean();
}

Test(health, initial_unhealthy_gets_no_call_before_its_first_pass)
{
    struct gc_stats s;
    long t1, first;

    /* b2 says NOT_SERVING from the start: with health_initial = unhealthy
     * (the default) it must never see a call, even from the first moment. */
    cr_assert_eq(gc_set_health(be[2].addr, "", NOT_SERVING), 0);
    cr_assert_eq(gc_stats(be[2].addr, true, &s), 0);
    start_proxy(NULL, "health_interval = 1s\nhealth_timeout = 200ms", NULL);
    load_start();
    wait_calls(3, 0, 20, 10000);
    sup_sleep_ms(300);
    cr_assert_eq(count_on(2, 0, 1L << 62), 0, "a call landed on b2 before it ever passed");
    cr_assert_eq(gc_stats(be[2].addr, false, &s), 0);
    cr_assert_eq(s.calls_started, 0, "b2 saw %llu calls", (unsigned long long)s.calls_started);
    /* before the first passes, calls fail fast with UNAVAILABLE, never hang */
    pthread_mutex_lock(&load.mu);
    for (size_t i = 0; i < load.n; i++)
        cr_assert(load.recs[i].status == 0 ||
                      (load.recs[i].status == 14 && load.recs[i].end - load.recs[i].start < 1000),
                  "call %zu: status %d after %ld ms", i, load.recs[i].status,
                  load.recs[i].end - load.recs[i].start);
    pthread_mutex_unlock(&load.mu);

    t1 = sup_now_ms();
    cr_assert_eq(gc_set_health(be[2].addr, "", SERVING), 0);
    wait_calls(4, t1, 1, 10000);
    first = start_on(2, t1, 1L << 62, false);
    load_stop();
    cr_assert_leq(first - t1, 1100 + 200 + SLACK_MS, "b2 in %ld ms after SERVING", first - t1);
    load_free();
    stop_proxy_clean();
}

Test(health, unknown_health_service_is_out)
{
    char needle[256];
    int per[NB] = {0};
    struct gc_opts o;
    struct gc_result r;

    cr_assert_eq(gc_set_health(be[0].addr, "sy.test.Echo", SERVING), 0);
    cr_assert_eq(gc_set_health(be[1].addr, "sy.test.Echo", SERVING), 0);
    start_proxy(NULL,
                "health_service = sy.test.Echo\nhealth_interval = 200ms\nhealth_timeout = 100ms",
                NULL);
    snprintf(needle, sizeof(needle),
             "endpoint %s failed its first health check, stays out of rotation: grpc-status 5 "
             "NOT_FOUND",
             be[2].addr);
    wait_log(needle, 0, 10000);
    wait_log("passed its first health check", 1, 10000);
    gc_opts_init(&o, GC_UNARY);
    for (int i = 0; i < 30; i++) {
        gc_call(px.addr, &o, &r);
        cr_assert_eq(r.status, 0, "call %d: %d %s", i, r.status, r.message);
        per[backend_index(r.backend_id)]++;
    }
    cr_assert_eq(per[2], 0);
    cr_assert_gt(per[0], 0);
    cr_assert_gt(per[1], 0);
    stop_proxy_clean();
}

static void all_not_serving(void)
{
    for (int i = 0; i < NB; i++)
        cr_assert_eq(gc_set_health(be[i].addr, "", NOT_SERVING), 0);
}

Test(health, panic_threshold_routes_to_all_when_all_are_down)
{
    int per[NB] = {0};
    struct gc_chan *ch;
    struct gc_opts o;
    struct gc_result r;

    all_not_serving();
    start_proxy(NULL, "panic_threshold = 50\nhealth_interval = 200ms\nhealth_timeout = 100ms",
                NULL);
    wait_log("failed its first health check", 2, 10000);
    gc_opts_init(&o, GC_UNARY);
    ch = gc_chan_new(px.addr); /* one connection: one worker's round robin */
    for (int i = 0; i < 30; i++) {
        gc_chan_call(ch, &o, &r);
        cr_assert_eq(r.status, 0, "call %d: %d %s", i, r.status, r.message);
        per[backend_index(r.backend_id)]++;
    }
    gc_chan_free(ch);
    for (int i = 0; i < NB; i++)
        cr_assert_eq(per[i], 10, "panic spreads over all: %d / %d / %d", per[0], per[1], per[2]);
    stop_proxy_clean();
}

Test(health, no_panic_threshold_fails_fast_and_own_check_says_not_serving)
{
    struct gc_opts o;
    struct gc_result r;
    int st = -1;

    all_not_serving();
    start_proxy(NULL, "panic_threshold = 0\nhealth_interval = 200ms\nhealth_timeout = 100ms", NULL);
    wait_log("failed its first health check", 2, 10000);
    gc_opts_init(&o, GC_UNARY);
    for (int i = 0; i < 10; i++) {
        gc_call(px.addr, &o, &r);
        cr_assert_eq(r.status, 14, "call %d: %d %s", i, r.status, r.message);
        cr_assert(strstr(r.message, "no healthy endpoint in cluster echo"), "'%s'", r.message);
        cr_assert_lt(r.elapsed_ms, 1000, "UNAVAILABLE took %ld ms", r.elapsed_ms);
    }
    cr_assert_eq(gc_health_check(px.addr, "", &st), 0);
    cr_assert_eq(st, NOT_SERVING);
    cr_assert_eq(gc_health_check(px.addr, "echo", &st), 0);
    cr_assert_eq(st, NOT_SERVING);
    stop_proxy_clean();
}

/* ---- switchyard's own grpc.health.v1 ---- */

struct status_wait {
    const char *service;
    int want;
};

static bool own_status_is(void *arg)
{
    struct status_wait *w = arg;
    int st = -1;

    return gc_health_check(px.addr, w->service, &st) == 0 && st == w->want;
}

static void wait_own(const char *service, int want, int ms)
{
    struct status_wait w = {service, want};

    cr_assert(sup_poll(own_status_is, &w, ms), "switchyard's Check of '%s' never said %d", service,
              want);
}

/* Cluster "solo" has b2 alone; "echo" has all three. */
static void start_two_clusters(void)
{
    char more[256];

    snprintf(more, sizeof(more),
             "[cluster.solo]\ntargets = %s\nroutes = /sy.test.Solo/\nhealth_interval = 100ms\n"
             "health_timeout = 100ms\n",
             be[2].addr);
    start_proxy(NULL, "health_interval = 100ms\nhealth_timeout = 100ms", more);
    wait_own("", SERVING, 10000);
}

Test(health, own_check_server_cluster_and_unknown_service)
{
    struct hcl *c;
    int32_t sid;
    int st = -1;

    start_two_clusters();
    cr_assert_eq(gc_health_check(px.addr, "echo", &st), 0);
    cr_assert_eq(st, SERVING);
    cr_assert_eq(gc_health_check(px.addr, "solo", &st), 0);
    cr_assert_eq(st, SERVING);
    cr_assert_eq(gc_health_check(px.addr, "nope", &st), 5, "unknown service: NOT_FOUND");

    /* solo's only endpoint goes down: solo and "" are NOT_SERVING, echo is not */
    cr_assert_eq(gc_set_health(be[2].addr, "", NOT_SERVING), 0);
    wait_own("solo", NOT_SERVING, 5000);
    wait_own("", NOT_SERVING, 5000);
    cr_assert_eq(gc_health_check(px.addr, "echo", &st), 0);
    cr_assert_eq(st, SERVING);
    cr_assert_eq(gc_set_health(be[2].addr, "", SERVING), 0);
    wait_own("", SERVING, 5000);

    /* requests a real client would not send */
    c = hcl_connect(px.port);
    cr_assert_not_null(c);
    sid = hcl_start(c, "Check", "", false, true);
    cr_assert_eq(hcl_wait(c, sid, -1, 5000), 0);
    cr_assert_eq(hcl_result(c, sid)->grpc_status, 12, "compressed request");
    sid = hcl_start(c, "Check", "echo", false, false);
    cr_assert_eq(hcl_wait(c, sid, -1, 5000), 0);
    cr_assert_eq(hcl_result(c, sid)->http_status, 200);
    cr_assert_eq(hcl_result(c, sid)->grpc_status, 0);
    cr_assert_eq(hcl_result(c, sid)->nstatuses, 1);
    cr_assert_eq(hcl_result(c, sid)->statuses[0], SERVING);
    hcl_close(c);
    stop_proxy_clean();
}

struct watch_log {
    int statuses[8];
    long at[8];
    atomic_int n;
    int want; /* for watch_has() */
};

static int on_watch(void *arg, int status)
{
    struct watch_log *w = arg;
    int n = atomic_load(&w->n);

    if (n < 8) {
        w->statuses[n] = status;
        w->at[n] = sup_now_ms();
        atomic_store(&w->n, n + 1);
    }
    return n + 1 >= 3; /* SERVING, NOT_SERVING, SERVING */
}

static void *watch_run(void *arg)
{
    static int rc;

    rc = gc_health_watch(px.addr, "solo", 20000, on_watch, arg);
    return &rc;
}

static bool watch_has(void *arg)
{
    struct watch_log *w = arg;

    return atomic_load(&w->n) >= w->want;
}

Test(health, own_watch_streams_each_change)
{
    struct watch_log w;
    pthread_t t;
    void *ret;
    long t0, t1;

    memset(&w, 0, sizeof(w));
    start_two_clusters();
    cr_assert_eq(pthread_create(&t, NULL, watch_run, &w), 0);
    w.want = 1;
    cr_assert(sup_poll(watch_has, &w, 5000), "no first Watch update");
    cr_assert_eq(w.statuses[0], SERVING);
    t0 = sup_now_ms();
    cr_assert_eq(gc_set_health(be[2].addr, "", NOT_SERVING), 0);
    w.want = 2;
    cr_assert(sup_poll(watch_has, &w, 5000), "no NOT_SERVING update");
    cr_assert_eq(w.statuses[1], NOT_SERVING);
    t1 = sup_now_ms();
    cr_assert_eq(gc_set_health(be[2].addr, "", SERVING), 0);
    pthread_join(t, &ret);
    cr_assert_eq(*(int *)ret, 0, "the Watch ended with status %d", *(int *)ret);
    cr_assert_eq(atomic_load(&w.n), 3);
    cr_assert_eq(w.statuses[2], SERVING);
    cr_assert_leq(w.at[1] - t0, 110 + 100 + SLACK_MS, "NOT_SERVING streamed %ld ms after the flip",
                  w.at[1] - t0);
    fprintf(stderr,
            "measured: own Watch streamed NOT_SERVING %ld ms and SERVING %ld ms after "
            "the backend flipped (interval 100 ms)\n",
            w.at[1] - t0, w.at[2] - t1);
    stop_proxy_clean();
}

Test(health, draining_reports_not_serving_and_ends_watches)
{
    const struct hcl_result *r;
    struct hcl *c;
    int32_t check, watch;
    long t0;
    int st;

    start_proxy(NULL, "health_interval = 100ms\nhealth_timeout = 100ms", NULL);
    wait_own("", SERVING, 10000);
    c = hcl_connect(px.port);
    cr_assert_not_null(c);
    check = hcl_start(c, "Check", "", true, false); /* request held back */
    watch = hcl_start(c, "Watch", "echo", false, false);
    cr_assert_eq(hcl_wait(c, watch, 1, 5000), 0);
    cr_assert_eq(hcl_result(c, watch)->statuses[0], SERVING);

    t0 = sup_now_ms();
    cr_assert_eq(sup_signal(px.proc, SIGTERM), 0);
    /* the worker sends GOAWAY when it starts draining */
    cr_assert_eq(hcl_wait_goaway(c, 5000), 0);
    cr_assert_eq(hcl_send_body(c, check), 0);
    cr_assert_eq(hcl_wait(c, check, -1, 5000), 0);
    r = hcl_result(c, check);
    cr_assert_eq(r->grpc_status, 0, "Check while draining: grpc-status %d", r->grpc_status);
    cr_assert_eq(r->nstatuses, 1);
    cr_assert_eq(r->statuses[0], NOT_SERVING, "Check while draining says %d", r->statuses[0]);

    cr_assert_eq(hcl_wait(c, watch, -1, 5000), 0);
    r = hcl_result(c, watch);
    cr_assert_eq(r->nstatuses, 2);
    cr_assert_eq(r->statuses[1], NOT_SERVING);
    cr_assert_eq(r->grpc_status, 14, "the Watch ends when switchyard stops");
    hcl_close(c);

    st = sup_wait_exit(px.proc, PROXY_T);
    if (st != 0)
        sup_dump_log(px.proc, 60);
    cr_assert_eq(st, 0, "switchyard exited with %d after SIGTERM", st);
    cr_assert_lt(sup_now_ms() - t0, 5000, "the open Watch held the drain (drain_timeout 10 s)");
}

Test(health, goaway_from_a_stopping_backend_takes_it_out_at_once)
{
    static const char *const grace[] = {"--grace", "3000", NULL};
    struct sup_backend b3;
    char targets[256], needle[160];
    long t0, t_out;

    cr_assert_eq(sup_start_backend(&b3, "b3", grace), 0);
    snprintf(targets, sizeof(targets), "%s, %s", be[0].addr, b3.addr);
    start_proxy(targets, "health_interval = 2s\nhealth_timeout = 200ms\nunhealthy_threshold = 3",
                NULL);
    wait_log("passed its first health check", 1, 10000);
    load_start();
    wait_calls(1, 0, 20, 10000);
    /* A gRPC server that starts shutting down cancels calls that reach it at
     * that moment; that is the backend's doing, so none is in flight then. */
    load_pause();
    t0 = sup_now_ms();
    cr_assert_eq(sup_signal(b3.proc, SIGTERM), 0); /* GOAWAY, calls finish within 3 s */
    wait_log(out_line(needle, sizeof(needle), b3.addr), 0, 5000);
    t_out = sup_now_ms() - t0;
    load_resume();
    sup_sleep_ms(300);
    load_stop();
    cr_assert_eq(failures(0, 1L << 62), 0);
    cr_assert_gt(count_on(0, t0, 1L << 62), 20, "b0 took the calls");
    cr_assert_lt(t_out, 1000, "out %ld ms after SIGTERM (interval 2 s)", t_out);
    cr_assert(log_count("out of rotation: GOAWAY") +
                  log_count("out of rotation: connection refused") >
              0);
    fprintf(stderr, "measured: backend stopping with GOAWAY out of rotation %ld ms after SIGTERM\n",
            t_out);
    load_free();
    stop_proxy_clean();
}

/* The status code of GET |path| on 127.0.0.1:|port| (HTTP/1.0), or -1. */
static int http_status(int port, const char *path)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    char buf[512];
    int fd = socket(AF_INET, SOCK_STREAM, 0), code = -1;
    size_t len = 0;
    ssize_t n;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        dprintf(fd, "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path) > 0) {
        while (len < sizeof(buf) - 1 && (n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
            len += (size_t)n;
        buf[len] = '\0';
        if (sscanf(buf, "HTTP/1.%*d %d", &code) != 1)
            code = -1;
    }
    close(fd);
    return code;
}

/* Issue 12.8: a gRPC server with MaxConnectionAge sends GOAWAY(NO_ERROR) on
 * every connection (here every 2 s); that is no failure: the check in flight
 * finishes, the next one goes out on a new connection, and the endpoint never
 * leaves rotation. |watch|: the same with health_mode = watch. */
static void max_connection_age_run(bool watch)
{
    static const char *const age[] = {"--max-connection-age", "2000", NULL};
    struct sup_backend b;
    struct gc_stats st;
    char text[2048], needle[160];
    int port = sup_free_port(), admin = sup_free_port(), polls = 0, bad = 0, goaways;
    long t0;

    cr_assert_gt(port, 0);
    cr_assert_gt(admin, 0);
    cr_assert_eq(sup_start_backend(&b, "age", age), 0);
    snprintf(text, sizeof(text),
             "[proxy]\nlisten = 127.0.0.1:%d\nworkers = 1\nlog_level = debug\n"
             "[admin]\nlisten = 127.0.0.1:%d\n"
             "[cluster.echo]\ntargets = %s\nroutes = /sy.test.Echo/\n"
             "health_interval = 200ms\nhealth_timeout = 200ms\nhealth_mode = %s\n",
             port, admin, b.addr, watch ? "watch" : "check");
    cr_assert_eq(sup_start_proxy(&px, "switchyard", port, text, PROXY_T), 0,
                 "switchyard did not start (%s -c %s)", sup_proxy_bin(), px.conf);
    snprintf(needle, sizeof(needle), "endpoint %s passed its first health check", b.addr);
    wait_log(needle, 0, 10000);
    cr_assert_eq(gc_stats(b.addr, true, &st), 0);

    /* ~8 s of checks every 200 ms: about four connection ages */
    t0 = sup_now_ms();
    while (sup_now_ms() - t0 < 8500) {
        int code = http_status(admin, "/healthz");

        polls++;
        if (code != 200) {
            if (bad == 0)
                fprintf(stderr, "/healthz answered %d %ld ms into the run\n", code,
                        sup_now_ms() - t0);
            bad++;
        }
        sup_sleep_ms(100);
    }
    cr_assert_eq(gc_stats(b.addr, false, &st), 0);
    goaways = log_count("graceful GOAWAY (NO_ERROR");
    if (bad > 0 || log_count(out_line(needle, sizeof(needle), b.addr)) > 0)
        sup_dump_log(px.proc, 30);
    cr_assert_eq(log_count(out_line(needle, sizeof(needle), b.addr)), 0,
                 "the endpoint left rotation %d times (/healthz not 200 on %d of %d polls)",
                 log_count(needle), bad, polls);
    cr_assert_eq(bad, 0, "/healthz answered other than 200 %d times of %d", bad, polls);
    /* not even a counted failure: every check passed */
    snprintf(needle, sizeof(needle), "endpoint %s: fail (", b.addr);
    cr_assert_eq(log_count(needle), 0, "a check failed");
    snprintf(needle, sizeof(needle), "endpoint %s: down (", b.addr);
    cr_assert_eq(log_count(needle), 0, "a check said down");
    cr_assert_geq(goaways, 3, "only %d GOAWAYs in 8.5 s with a 2 s connection age", goaways);
    if (watch)
        cr_assert_geq(st.health_watches, 3, "only %llu Watch calls: not one per connection",
                      (unsigned long long)st.health_watches);
    else
        cr_assert_geq(st.health_checks, 30, "only %llu checks in 8.5 s (interval 200 ms)",
                      (unsigned long long)st.health_checks);
    fprintf(stderr,
            "measured: %s, max connection age 2 s: %d GOAWAYs, %llu checks, %llu watches, "
            "/healthz 200 on %d of %d polls over 8.5 s, never out of rotation\n",
            watch ? "watch" : "check", goaways, (unsigned long long)st.health_checks,
            (unsigned long long)st.health_watches, polls - bad, polls);
    stop_proxy_clean();
}

Test(health, graceful_goaway_from_max_connection_age_keeps_the_endpoint_in_rotation)
{
    max_connection_age_run(false);
}

Test(health, graceful_goaway_ends_a_watch_without_a_result)
{
    max_connection_age_run(true);
}
