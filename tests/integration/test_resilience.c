/* Integration tests of resilience (issue 13) with real gRPC peers: retries
 * (gRFC A6) around a killed backend and a backend that answers UNAVAILABLE,
 * the retry budget, pushback, what is never retried, hedging, outlier
 * detection, deadlines, connection age, drain_unhealthy and slow_start.
 * Invariant: every test starts its own backends and switchyard (workers = 2)
 * and ends by stopping switchyard with SIGTERM and requiring exit 0 (ASan
 * build: leaks fail the test). Attempts are counted where they land: at the
 * backends (sy-backend's Stats). Each test prints what it measured.
 * SPDX-License-Identifier: MIT */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "tests/peers/gclient.h"
#include "tests/support/httpc.h"
#include "tests/support/support.h"

#define NBMAX   3
#define PROXY_T 15000 /* ms to wait for switchyard to listen or exit */

enum {
    OK = 0,
    UNAVAILABLE = 14,
    SERVING = 1,
    NOT_SERVING = 2,
};

static struct sup_backend be[NBMAX];
static int nbe;
static struct sup_proxy px;
static int admin_port;

static void reset_all(void)
{
    memset(&px, 0, sizeof(px));
    memset(be, 0, sizeof(be));
    nbe = 0;
}

/* Criterion ignores assertions in .fini; each test ends with
 * stop_proxy_clean(), this only cleans up after a test that failed early. */
static void stop_all(void)
{
    sup_stop_clean(px.proc, PROXY_T);
    sup_stop_all();
}

TestSuite(resilience, .init = reset_all, .fini = stop_all, .timeout = 240);

static void stop_proxy_clean(void)
{
    int st = sup_stop_clean(px.proc, PROXY_T);

    cr_assert_eq(st, 0, "switchyard exited with status %d on SIGTERM", st);
    px.proc = NULL;
}

/* Starts backend "b<nbe>" with |args| (NULL-terminated, or NULL). */
static struct sup_backend *add_backend(const char *const *args)
{
    char id[8];
    struct sup_backend *b = &be[nbe];

    cr_assert_lt(nbe, NBMAX);
    snprintf(id, sizeof(id), "b%d", nbe);
    cr_assert_eq(sup_start_backend(b, id, args), 0, "sy-backend %s did not start", id);
    nbe++;
    return b;
}

/* "addr, addr, ..." of every backend started. */
static void targets_of(char *out, size_t len)
{
    out[0] = '\0';
    for (int i = 0; i < nbe; i++)
        snprintf(out + strlen(out), len - strlen(out), "%s%s", i ? ", " : "", be[i].addr);
}

/* switchyard with cluster "echo" on every backend started (routes
 * /sy.test.Echo/), |cluster_keys| and |proxy_keys| (one per line), admin
 * on a free port. */
static void start_proxy(const char *proxy_keys, const char *cluster_keys)
{
    char text[4096], targets[256];
    int port = sup_free_port();

    admin_port = sup_free_port();
    cr_assert(port > 0 && admin_port > 0);
    targets_of(targets, sizeof(targets));
    snprintf(text, sizeof(text),
             "[proxy]\n"
             "listen = 127.0.0.1:%d\n"
             "workers = 2\n"
             "drain_timeout = 5s\n"
             "%s%s\n"
             "%s\n"
             "\n"
             "[admin]\n"
             "listen = 127.0.0.1:%d\n"
             "\n"
             "[cluster.echo]\n"
             "targets = %s\n"
             "routes = /sy.test.Echo/\n"
             "%s\n",
             port, strstr(proxy_keys, "log_level") ? "" : "log_level = ",
             strstr(proxy_keys, "log_level") ? ""
             : getenv("SY_LOG_LEVEL")        ? getenv("SY_LOG_LEVEL")
                                             : "info",
             proxy_keys, admin_port, targets, cluster_keys);
    cr_assert_eq(sup_start_proxy(&px, "switchyard", port, text, PROXY_T), 0,
                 "switchyard did not start (%s -c %s)", sup_proxy_bin(), px.conf);
    /* The admin listener opens after the workers' listeners. */
    cr_assert_eq(sup_wait_port(px.proc, admin_port, PROXY_T), 0, "the admin listener did not open");
}

/* ---- what the backends and switchyard say ---- */

static struct gc_stats stats_of(int i)
{
    struct gc_stats s;

    cr_assert_eq(gc_stats(be[i].addr, false, &s), 0, "Stats of %s failed", be[i].id);
    return s;
}

/* Echo calls that reached backend |i| (attempts, as the backends count them). */
static long started(int i)
{
    return (long)stats_of(i).calls_started;
}

static long started_all(void)
{
    long n = 0;

    for (int i = 0; i < nbe; i++)
        n += started(i);
    return n;
}

static void reset_stats(void)
{
    struct gc_stats s;

    for (int i = 0; i < nbe; i++)
        cr_assert_eq(gc_stats(be[i].addr, true, &s), 0);
}

/* The value of sample |name| in switchyard's /metrics (-1 when absent). */
static double metric(const char *name)
{
    struct sup_http_resp r = {0};
    double v;

    cr_assert_eq(sup_http_get(admin_port, "/metrics", &r), 0, "GET /metrics failed");
    v = sup_metric(r.body, name);
    sup_http_resp_free(&r);
    return v;
}

/* The sample name of a per-endpoint family for backend |i|. */
static const char *ep_metric(char *buf, size_t len, const char *family, int i, const char *more)
{
    snprintf(buf, len, "%s{cluster=\"echo\",endpoint=\"%s\"%s}", family, be[i].addr, more);
    return buf;
}

struct metric_wait {
    const char *name;
    double want;
};

static bool metric_is(void *arg)
{
    struct metric_wait *w = arg;

    return metric(w->name) == w->want;
}

static void wait_metric(const char *name, double want, int ms)
{
    struct metric_wait w = {name, want};

    if (!sup_poll(metric_is, &w, ms)) {
        sup_dump_log(px.proc, 40);
        cr_assert_fail("%s is %g, not %g, after %d ms", name, metric(name), want, ms);
    }
}

static int log_count(const char *needle)
{
    return sup_log_count(px.proc, needle);
}

/* Index of the backend with an Echo call running, waiting up to |ms|; -1. */
struct active_wait {
    int found;
    long min;
};

static bool some_active(void *arg)
{
    struct active_wait *w = arg;

    for (int i = 0; i < nbe; i++) {
        struct gc_stats s;

        if (gc_stats(be[i].addr, false, &s) == 0 && (long)s.calls_active >= w->min) {
            w->found = i;
            return true;
        }
    }
    return false;
}

static int backend_with_active(long min, int ms)
{
    struct active_wait w = {-1, min};

    sup_poll(some_active, &w, ms);
    return w.found;
}

/* ---- steady load from several threads ---- */

#define LOADERS 12

static struct {
    atomic_bool stop;
    atomic_long calls, failed;
    atomic_long client_goaway; /* failed by the gRPC C core client itself: "GOAWAY received" */
    char first_failure[400];
    atomic_bool have_failure;
    uint32_t delay_ms;
} load;

static void *loader_run(void *arg)
{
    struct gc_chan *ch = gc_chan_new(px.addr);
    struct gc_opts o;

    (void)arg;
    gc_opts_init(&o, GC_UNARY);
    o.request_size = 32;
    o.delay_ms = load.delay_ms;
    o.timeout_ms = 10000;
    o.wait_for_ready = true;
    while (!atomic_load(&load.stop)) {
        struct gc_result r;

        gc_chan_call(ch, &o, &r);
        atomic_fetch_add(&load.calls, 1);
        if (r.status != OK) {
            atomic_fetch_add(&load.failed, 1);
            /* gRPC C core (1.46-1.51) fails a call racing a graceful GOAWAY
             * with this message of its own, before the call leaves the
             * client (grpc/grpc#31733, also against gRPC's own servers);
             * switchyard's messages start with "switchyard:". */
            if (r.status == UNAVAILABLE && strcmp(r.message, "GOAWAY received") == 0)
                atomic_fetch_add(&load.client_goaway, 1);
            if (!atomic_exchange(&load.have_failure, true))
                snprintf(load.first_failure, sizeof(load.first_failure), "%d %s (backend %s)",
                         r.status, r.message, r.backend_id);
        }
    }
    gc_chan_free(ch);
    return NULL;
}

static void load_start(pthread_t *th, uint32_t delay_ms)
{
    memset(&load, 0, sizeof(load));
    load.delay_ms = delay_ms;
    for (int i = 0; i < LOADERS; i++)
        pthread_create(&th[i], NULL, loader_run, NULL);
}

static void load_stop(pthread_t *th)
{
    atomic_store(&load.stop, true);
    for (int i = 0; i < LOADERS; i++)
        pthread_join(th[i], NULL);
}

/* |n| unary calls one after the other on one connection; returns how many
 * did not end OK. */
static int calls(int n, const struct gc_opts *o)
{
    struct gc_chan *ch = gc_chan_new(px.addr);
    int failed = 0;

    for (int i = 0; i < n; i++) {
        struct gc_result r;

        if (gc_chan_call(ch, o, &r) != OK)
            failed++;
    }
    gc_chan_free(ch);
    return failed;
}

static void unary_opts(struct gc_opts *o)
{
    gc_opts_init(o, GC_UNARY);
    o->request_size = 32;
    o->timeout_ms = 10000;
    o->wait_for_ready = true;
}

/* ---- a backend killed under load ---- */

/* Three backends under steady load (LOADERS callers, 40 ms per call); b1 is
 * killed while calls run on it. Returns the failed calls. */
static long kill_under_load(const char *cluster_keys)
{
    pthread_t th[LOADERS];
    char keys[512];
    long in_flight;
    int victim;

    for (int i = 0; i < 3; i++)
        add_backend(NULL);
    snprintf(keys, sizeof(keys), "health_interval = 100ms\nhealth_timeout = 100ms\n%s",
             cluster_keys);
    start_proxy("", keys);
    load_start(th, 40);
    sup_sleep_ms(500);
    /* Calls are running on the victim when it dies. */
    victim = backend_with_active(2, 5000);
    cr_assert_geq(victim, 0, "no backend with two calls running");
    in_flight = (long)stats_of(victim).calls_active;
    sup_kill(be[victim].proc);
    sup_sleep_ms(1500);
    load_stop(th);
    fprintf(stderr, "%s: %ld calls, %ld failed, %ld in flight on the killed backend%s%s\n",
            cluster_keys[0] ? cluster_keys : "no retry policy", atomic_load(&load.calls),
            atomic_load(&load.failed), in_flight,
            atomic_load(&load.have_failure) ? "; first: " : "",
            atomic_load(&load.have_failure) ? load.first_failure : "");
    cr_assert_gt(atomic_load(&load.calls), 200, "too few calls to say anything");
    return atomic_load(&load.failed);
}

Test(resilience, a_backend_killed_under_load_costs_no_call_with_retries)
{
    long failed = kill_under_load("retry_on = unavailable");

    cr_assert_eq(failed, 0, "%ld calls failed: %s", failed, load.first_failure);
    cr_assert_gt(metric("switchyard_retries_total{cluster=\"echo\",reason=\"UNAVAILABLE\"}"), 0,
                 "no retry counted");
    stop_proxy_clean();
}

Test(resilience, a_backend_killed_under_load_fails_its_calls_without_retries)
{
    long failed = kill_under_load("");

    cr_assert_gt(failed, 0, "the control lost no call: the retry test shows nothing");
    stop_proxy_clean();
}

/* ---- a backend that answers UNAVAILABLE while its health says SERVING ---- */

static const char *const failing[] = {"--fail-code", "14", NULL};

Test(resilience, an_unavailable_backend_is_retried_then_ejected)
{
    struct gc_opts o;
    char name[256];
    int failed;
    long during, later;
    struct sup_http_resp st = {0};

    add_backend(NULL);
    add_backend(NULL);
    add_backend(failing);
    start_proxy("", "retry_on = unavailable\n"
                    "outlier_detection = on\n"
                    "outlier_consecutive_failures = 3\n"
                    "outlier_base_ejection_time = 4s\n");
    unary_opts(&o);
    /* Until it is ejected, its calls are retried elsewhere. */
    failed = calls(150, &o);
    cr_assert_eq(failed, 0, "%d of 150 calls failed with retries", failed);
    ep_metric(name, sizeof(name), "switchyard_endpoint_ejected", 2, "");
    wait_metric(name, 1, 3000);
    ep_metric(name, sizeof(name), "switchyard_ejections_total", 2,
              ",reason=\"consecutive_failures\"");
    cr_assert_geq(metric(name), 1);
    cr_assert_eq(sup_http_get(admin_port, "/status", &st), 0);
    cr_assert(strstr(st.body, "\"ejected\"") && strstr(st.body, "consecutive_failures"),
              "/status does not show the ejection:\n%s", st.body);
    sup_http_resp_free(&st);

    /* While ejected it gets (almost) nothing. */
    reset_stats();
    failed = calls(200, &o);
    during = started(2);
    cr_assert_eq(failed, 0);
    cr_assert_lt(during, 10, "the ejected backend got %ld of 200 calls", during);

    /* After the ejection time it is tried again (and ejected again). */
    ep_metric(name, sizeof(name), "switchyard_endpoint_ejected", 2, "");
    wait_metric(name, 0, 8000);
    reset_stats();
    failed = calls(60, &o);
    later = started(2);
    cr_assert_eq(failed, 0);
    cr_assert_gt(later, 0, "the backend was not tried again after its ejection time");
    fprintf(stderr,
            "UNAVAILABLE backend, SERVING health: 0 of 150 calls failed with retries; "
            "ejected: %ld of 200 later calls reached it; after the ejection time: %ld of 60\n",
            during, later);
    stop_proxy_clean();
}

Test(resilience, an_unavailable_backend_fails_a_third_of_the_calls_without_retries)
{
    struct gc_opts o;
    int failed;

    add_backend(NULL);
    add_backend(NULL);
    add_backend(failing);
    start_proxy("", "");
    unary_opts(&o);
    failed = calls(150, &o);
    fprintf(stderr, "UNAVAILABLE backend, no retries: %d of 150 calls failed\n", failed);
    cr_assert(failed >= 40 && failed <= 60, "%d of 150 calls failed", failed);
    stop_proxy_clean();
}

/* ---- the budget ---- */

Test(resilience, retries_stay_within_the_budget_when_everything_fails)
{
    struct gc_opts o;
    long attempts, limit;
    int failed;

    add_backend(failing);
    add_backend(failing);
    start_proxy("", "retry_on = unavailable\n"
                    "retry_max_attempts = 5\n"
                    "retry_initial_backoff = 1ms\n"
                    "retry_max_backoff = 5ms\n"
                    "retry_budget = 20%\n"
                    "retry_budget_min = 1/s\n");
    unary_opts(&o);
    failed = calls(200, &o);
    cr_assert_eq(failed, 200);
    attempts = started_all();
    /* 20 % of the calls, or retry_budget_min x 10 s, whichever is more: at
     * most their sum. Without a budget: 5 attempts per call, 1000. */
    limit = 200 + 200 / 5 + 10;
    fprintf(stderr,
            "all backends failing, retry_max_attempts 5, budget 20%%: %ld attempts for 200 "
            "calls (limit %ld; %g refused by the budget)\n",
            attempts, limit, metric("switchyard_retry_budget_exhausted_total{cluster=\"echo\"}"));
    cr_assert_gt(attempts, 200, "no retry at all");
    cr_assert_leq(attempts, limit, "%ld attempts for 200 calls", attempts);
    cr_assert_gt(metric("switchyard_retry_budget_exhausted_total{cluster=\"echo\"}"), 0);
    stop_proxy_clean();
}

/* ---- pushback ---- */

Test(resilience, pushback_minus_one_stops_retries_and_a_delay_is_honoured)
{
    struct gc_opts o;
    struct gc_result r;
    struct gc_md stop = {"x-pushback-ms", "-1"}, later = {"x-pushback-ms", "300"};
    long n;

    add_backend(failing);
    add_backend(failing);
    start_proxy("", "retry_on = unavailable\nretry_max_attempts = 3\n");
    unary_opts(&o);

    /* Control: no pushback, three attempts. */
    reset_stats();
    gc_call(px.addr, &o, &r);
    n = started_all();
    cr_assert_eq(r.status, UNAVAILABLE);
    cr_assert_eq(n, 3, "%ld attempts without pushback", n);
    cr_assert_eq(r.previous_attempts, 2, "the last attempt saw grpc-previous-rpc-attempts %d",
                 r.previous_attempts);

    reset_stats();
    o.md = &stop;
    o.nmd = 1;
    gc_call(px.addr, &o, &r);
    n = started_all();
    cr_assert_eq(r.status, UNAVAILABLE);
    cr_assert_eq(n, 1, "%ld attempts after pushback -1", n);

    reset_stats();
    o.md = &later;
    gc_call(px.addr, &o, &r);
    n = started_all();
    cr_assert_eq(n, 3);
    cr_assert_geq(r.elapsed_ms, 600, "two retries after 300 ms pushbacks took %ld ms",
                  r.elapsed_ms);
    fprintf(stderr, "pushback: none 3 attempts; -1 1 attempt; 300 ms: 3 attempts in %ld ms\n",
            r.elapsed_ms);
    stop_proxy_clean();
}

/* ---- what is never retried ---- */

struct stream_run {
    struct gc_opts o;
    struct gc_result r;
};

static void *stream_run(void *arg)
{
    struct stream_run *s = arg;

    gc_call(px.addr, &s->o, &s->r);
    return NULL;
}

Test(resilience, a_server_stream_that_delivered_a_message_is_never_retried)
{
    struct stream_run s;
    pthread_t th;
    int victim, other;

    add_backend(NULL);
    add_backend(NULL);
    start_proxy("", "retry_on = unavailable\nhealth_interval = 100ms\nhealth_timeout = 100ms\n");
    gc_opts_init(&s.o, GC_SERVER_STREAM);
    s.o.response_count = 20;
    s.o.delay_ms = 100;
    s.o.timeout_ms = 10000;
    s.o.wait_for_ready = true;
    pthread_create(&th, NULL, stream_run, &s);
    victim = backend_with_active(1, 5000);
    cr_assert_geq(victim, 0);
    other = 1 - victim;
    sup_sleep_ms(400); /* a few messages went to the client */
    sup_kill(be[victim].proc);
    pthread_join(th, NULL);
    fprintf(stderr, "stream: status %d after %d of 20 messages (%s)\n", s.r.status, s.r.replies,
            s.r.message);
    cr_assert_eq(s.r.status, UNAVAILABLE);
    cr_assert(s.r.replies >= 1 && s.r.replies < 20, "%d replies", s.r.replies);
    cr_assert_eq(stats_of(other).server_stream, 0, "the stream was tried again elsewhere");
    stop_proxy_clean();
}

Test(resilience, a_request_past_retry_buffer_is_never_retried)
{
    struct gc_opts o;
    long big, small;

    add_backend(failing);
    add_backend(failing);
    start_proxy("", "retry_on = unavailable\n"
                    "retry_buffer = 1024\n"
                    "retry_budget = 100%\n"
                    "retry_budget_min = 100/s\n");
    unary_opts(&o);
    o.request_size = 4096;
    reset_stats();
    cr_assert_eq(calls(10, &o), 10);
    big = started_all();
    o.request_size = 100;
    reset_stats();
    cr_assert_eq(calls(10, &o), 10);
    small = started_all();
    fprintf(stderr, "retry_buffer 1024: 10 calls of 4 KiB made %ld attempts, of 100 B %ld\n", big,
            small);
    cr_assert_eq(big, 10, "requests over retry_buffer made %ld attempts", big);
    cr_assert_gt(small, 10, "the control was not retried");
    stop_proxy_clean();
}

/* ---- hedging ---- */

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;

    return x < y ? -1 : x > y;
}

Test(resilience, hedging_around_a_slow_backend_answers_at_the_fast_ones_pace)
{
    static const char *const lazy[] = {"--lazy-headers", NULL};
    static const char *const slow[] = {"--lazy-headers", "--delay-ms", "1000", NULL};
    struct gc_chan *ch;
    struct gc_opts o;
    struct gc_stats s;
    long ms[40];
    int n = 40;

    add_backend(lazy);
    add_backend(slow);
    start_proxy("", "hedge_delay = 50ms\n"
                    "retry_max_attempts = 2\n"
                    "retry_budget = 100%\n"
                    "retry_budget_min = 100/s\n");
    unary_opts(&o);
    ch = gc_chan_new(px.addr);
    for (int i = 0; i < n; i++) {
        struct gc_result r;

        cr_assert_eq(gc_chan_call(ch, &o, &r), OK, "call %d: %d %s", i, r.status, r.message);
        ms[i] = r.elapsed_ms;
    }
    gc_chan_free(ch);
    qsort(ms, (size_t)n, sizeof(ms[0]), cmp_long);
    /* Every attempt at the slow backend was cancelled (RST_STREAM CANCEL). */
    for (int k = 0; k < 30; k++) {
        s = stats_of(1);
        if (s.calls_active == 0)
            break;
        sup_sleep_ms(100);
    }
    fprintf(stderr,
            "hedging (50 ms) with a 1 s backend: 40 calls, median %ld ms, p99 %ld ms; slow "
            "backend: %llu attempts, %llu cancelled; %g hedges\n",
            ms[n / 2], ms[n - 1], (unsigned long long)s.calls_started,
            (unsigned long long)s.calls_cancelled,
            metric("switchyard_hedges_total{cluster=\"echo\"}"));
    cr_assert_lt(ms[n - 1], 600, "p99 %ld ms: the slow backend answered", ms[n - 1]);
    cr_assert_gt(s.calls_started, 0, "no attempt went to the slow backend");
    cr_assert_eq(s.calls_cancelled, s.calls_started, "slow attempts not cancelled");
    cr_assert_gt(metric("switchyard_hedges_total{cluster=\"echo\"}"), 0);
    stop_proxy_clean();
}

/* ---- deadlines ---- */

Test(resilience, max_timeout_caps_the_deadline_and_timeout_sets_one)
{
    struct gc_opts o;
    struct gc_result r;

    add_backend(NULL);
    start_proxy("", "max_timeout = 2s\n");
    unary_opts(&o);
    o.timeout_ms = 10000;
    gc_call(px.addr, &o, &r);
    cr_assert_eq(r.status, OK);
    cr_assert(r.deadline_ms > 1000 && r.deadline_ms <= 2000,
              "a 10 s deadline under max_timeout 2s reached the backend as %ld ms", r.deadline_ms);
    o.timeout_ms = 800;
    gc_call(px.addr, &o, &r);
    cr_assert(r.deadline_ms > 0 && r.deadline_ms <= 800, "a shorter deadline became %ld ms",
              r.deadline_ms);
    o.timeout_ms = 0;
    gc_call(px.addr, &o, &r);
    cr_assert_eq(r.deadline_ms, -1, "max_timeout gave a call without deadline %ld ms",
                 r.deadline_ms);
    stop_proxy_clean();

    start_proxy("", "timeout = 3s\n");
    gc_call(px.addr, &o, &r);
    cr_assert(r.deadline_ms > 2000 && r.deadline_ms <= 3000,
              "timeout 3s reached the backend as %ld ms", r.deadline_ms);
    o.timeout_ms = 10000;
    gc_call(px.addr, &o, &r);
    cr_assert_gt(r.deadline_ms, 3000, "timeout changed a call's own deadline");
    stop_proxy_clean();
}

Test(resilience, a_30_second_stream_without_deadline_is_never_cut, .timeout = 120)
{
    struct gc_opts o;
    struct gc_result r;

    add_backend(NULL);
    start_proxy("", "max_timeout = 1s\nretry_on = unavailable\n");
    gc_opts_init(&o, GC_SERVER_STREAM);
    o.response_count = 31;
    o.delay_ms = 1000;
    o.timeout_ms = 0;
    gc_call(px.addr, &o, &r);
    fprintf(stderr, "stream without deadline: status %d, %d of 31 messages in %ld ms\n", r.status,
            r.replies, r.elapsed_ms);
    cr_assert_eq(r.status, OK, "%d %s", r.status, r.message);
    cr_assert_eq(r.replies, 31);
    cr_assert_geq(r.elapsed_ms, 30000);
    stop_proxy_clean();
}

/* ---- connection age ---- */

Test(resilience, max_connection_age_moves_clients_without_failing_calls)
{
    pthread_t th[LOADERS];
    struct stream_run s;
    pthread_t sth;
    int goaways;
    double started, handled_ok;

    add_backend(NULL);
    add_backend(NULL);
    start_proxy("max_connection_age = 1s\nmax_connection_age_grace = 5s\nlog_level = debug", "");
    /* A stream that runs across the GOAWAY finishes within the grace. */
    gc_opts_init(&s.o, GC_SERVER_STREAM);
    s.o.response_count = 25;
    s.o.delay_ms = 100;
    s.o.wait_for_ready = true;
    pthread_create(&sth, NULL, stream_run, &s);
    load_start(th, 10);
    sup_sleep_ms(4500);
    load_stop(th);
    pthread_join(sth, NULL);
    goaways = log_count("max_connection_age reached; GOAWAY");
    fprintf(stderr,
            "max_connection_age 1s: %ld calls over 4.5 s, %ld failed (%ld by the client's own "
            "GOAWAY race), %d GOAWAYs; a 2.5 s stream across them: status %d, %d of 25 messages\n",
            atomic_load(&load.calls), atomic_load(&load.failed), atomic_load(&load.client_goaway),
            goaways, s.r.status, s.r.replies);
    /* No call switchyard received failed, and the client's own GOAWAY
     * failures (see loader_run) never reached it: switchyard started exactly
     * the calls that succeeded, and ended each OK. */
    cr_assert_eq(atomic_load(&load.failed) - atomic_load(&load.client_goaway), 0,
                 "%ld calls failed: %s", atomic_load(&load.failed), load.first_failure);
    started = metric("grpc_server_started_total{grpc_service=\"sy.test.Echo\","
                     "grpc_method=\"Unary\",grpc_type=\"unary\"}");
    handled_ok = metric("grpc_server_handled_total{grpc_service=\"sy.test.Echo\","
                        "grpc_method=\"Unary\",grpc_code=\"OK\",grpc_type=\"unary\"}");
    cr_assert_eq((long)started, atomic_load(&load.calls) - atomic_load(&load.client_goaway),
                 "switchyard started %.0f unary calls; %ld made, %ld failed in the client", started,
                 atomic_load(&load.calls), atomic_load(&load.client_goaway));
    cr_assert_eq(handled_ok, started, "switchyard ended %.0f of %.0f unary calls OK", handled_ok,
                 started);
    cr_assert_geq(goaways, LOADERS, "%d GOAWAYs for %d connections over 4.5 s", goaways, LOADERS);
    cr_assert_eq(s.r.status, OK, "the stream across a GOAWAY: %d %s", s.r.status, s.r.message);
    cr_assert_eq(s.r.replies, 25);
    stop_proxy_clean();
}

/* ---- drain_unhealthy ---- */

/* A stream of |count| messages 100 ms apart (no deadline) on the running
 * proxy; its backend turns NOT_SERVING after 500 ms. Returns the ms from the
 * flip to the end of the stream. */
static long stream_across_not_serving(struct stream_run *s, int count)
{
    pthread_t th;
    int victim;
    long flip;

    gc_opts_init(&s->o, GC_SERVER_STREAM);
    s->o.response_count = (uint32_t)count;
    s->o.delay_ms = 100;
    s->o.timeout_ms = 0;
    s->o.wait_for_ready = true;
    pthread_create(&th, NULL, stream_run, s);
    victim = backend_with_active(1, 5000);
    cr_assert_geq(victim, 0);
    sup_sleep_ms(500);
    flip = sup_now_ms();
    cr_assert_eq(gc_set_health(be[victim].addr, "", NOT_SERVING), 0);
    pthread_join(th, NULL);
    return sup_now_ms() - flip;
}

Test(resilience, drain_unhealthy_ends_a_stream_on_an_endpoint_that_left)
{
    struct stream_run s;
    long ms;

    add_backend(NULL);
    add_backend(NULL);
    start_proxy("", "health_interval = 100ms\nhealth_timeout = 100ms\ndrain_unhealthy = 1s\n");
    ms = stream_across_not_serving(&s, 100);
    fprintf(stderr,
            "drain_unhealthy 1s: the stream ended %ld ms after NOT_SERVING, status %d after %d "
            "of 100 messages\n",
            ms, s.r.status, s.r.replies);
    cr_assert_eq(s.r.status, UNAVAILABLE, "%d %s", s.r.status, s.r.message);
    cr_assert(s.r.replies > 0 && s.r.replies < 100);
    cr_assert(ms >= 1000 && ms < 3000, "ended %ld ms after the flip", ms);
    stop_proxy_clean();
}

Test(resilience, without_drain_unhealthy_a_stream_on_an_endpoint_that_left_finishes)
{
    struct stream_run s;
    long ms;

    add_backend(NULL);
    add_backend(NULL);
    start_proxy("", "health_interval = 100ms\nhealth_timeout = 100ms\n");
    ms = stream_across_not_serving(&s, 30);
    fprintf(stderr, "drain_unhealthy off: status %d, %d of 30 messages, %ld ms after the flip\n",
            s.r.status, s.r.replies, ms);
    cr_assert_eq(s.r.status, OK, "%d %s", s.r.status, s.r.message);
    cr_assert_eq(s.r.replies, 30);
    stop_proxy_clean();
}

/* ---- slow_start ---- */

/* Share of |n| calls (one connection) that land on backend |i|. */
static double share_on(int i, int n)
{
    struct gc_chan *ch = gc_chan_new(px.addr);
    struct gc_opts o;
    int hits = 0;

    unary_opts(&o);
    for (int k = 0; k < n; k++) {
        struct gc_result r;

        cr_assert_eq(gc_chan_call(ch, &o, &r), OK);
        hits += strcmp(r.backend_id, be[i].id) == 0;
    }
    gc_chan_free(ch);
    return (double)hits / n;
}

/* Runs calls for |ms| and returns the share that landed on backend |i|. */
static double share_for(int i, long ms)
{
    long end = sup_now_ms() + ms;
    int hits = 0, n = 0;

    while (sup_now_ms() < end) {
        double s = share_on(i, 10);

        hits += (int)(s * 10 + 0.5);
        n += 10;
    }
    return (double)hits / n;
}

/* b1 leaves rotation (NOT_SERVING) and comes back once the endpoints'
 * own ramps from the start are over; returns its share of the calls in
 * its first 0.5 s back, and in |*later| its share 2.5 s after. */
static double share_after_return(const char *keys, double *later)
{
    char name[256], ckeys[256];
    double first;
    long t0;

    add_backend(NULL);
    add_backend(NULL);
    snprintf(ckeys, sizeof(ckeys),
             "health_interval = 100ms\nhealth_timeout = 100ms\npolicy = round_robin\n%s", keys);
    start_proxy("", ckeys);
    ep_metric(name, sizeof(name), "switchyard_endpoint_healthy", 1, "");
    wait_metric(name, 1, 5000);
    sup_sleep_ms(2200); /* both entered rotation at start: their ramps end */
    cr_assert_eq(gc_set_health(be[1].addr, "", NOT_SERVING), 0);
    wait_metric(name, 0, 5000);
    cr_assert_eq(gc_set_health(be[1].addr, "", SERVING), 0);
    wait_metric(name, 1, 5000);
    t0 = sup_now_ms();
    first = share_for(1, 500);
    while (sup_now_ms() - t0 < 2500)
        sup_sleep_ms(50);
    *later = share_for(1, 1000);
    stop_proxy_clean();
    return first;
}

Test(resilience, slow_start_ramps_an_endpoint_back_into_rotation)
{
    double later, first = share_after_return("slow_start = 2s\n", &later);

    fprintf(stderr,
            "slow_start 2s: share of the returning backend %.0f %% in its first 0.5 s, "
            "%.0f %% after 2.5 s\n",
            first * 100, later * 100);
    cr_assert_lt(first, 0.3, "it got %.0f %% at once", first * 100);
    cr_assert_gt(later, 0.4, "it got %.0f %% after the window", later * 100);
}

Test(resilience, without_slow_start_an_endpoint_gets_its_share_at_once)
{
    double later, first = share_after_return("", &later);

    fprintf(stderr, "slow_start off: share of the returning backend %.0f %% in its first 0.5 s\n",
            first * 100);
    cr_assert_gt(first, 0.4, "it got %.0f %% at once", first * 100);
}
