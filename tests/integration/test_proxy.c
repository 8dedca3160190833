/* Integration tests of switchyard: real gRPC C core clients and three
 * sy-backends on loopback, the proxy in between, started from a temp config.
 * Invariant: every test starts its own switchyard (the fixture starts the
 * backends) and ends by stopping it by PID with SIGTERM and requiring exit 0:
 * the proxy is built with ASan, so a leak or a memory error fails the test.
 * SPDX-License-Identifier: MIT */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "tests/peers/echo.pb-c.h"
#include "tests/peers/gclient.h"
#include "tests/support/support.h"

#define MiB     (1024 * 1024)
#define NB      3
#define PROXY_T 15000 /* ms to wait for switchyard to listen or exit */

static struct sup_backend be[NB];
static struct sup_proxy px;

static void start_backends(void)
{
    memset(&px, 0, sizeof(px));
    cr_assert_eq(sup_start_backends(be, NB, NULL), 0, "sy-backends did not start");
}

/* Criterion ignores assertions in .fini, so each test ends with
 * stop_proxy_clean(); this only cleans up after a test that failed early. */
static void stop_all(void)
{
    if (px.proc && sup_alive(px.proc)) {
        int st = sup_stop(px.proc, PROXY_T);

        if (st != 0) {
            fprintf(stderr, "switchyard exited with status %d on SIGTERM at teardown\n", st);
            sup_dump_log(px.proc, 60);
        }
    }
    sup_stop_all();
}

/* SIGTERM, then require exit status 0: switchyard is built with ASan, so
 * leaks and memory errors show here. */
static void stop_proxy_clean(void)
{
    int st = sup_stop(px.proc, PROXY_T);

    if (st != 0)
        sup_dump_log(px.proc, 60);
    cr_assert_eq(st, 0, "switchyard exited with status %d on SIGTERM", st);
}

TestSuite(proxy, .init = start_backends, .fini = stop_all, .timeout = 90);

/* ---- configuration ---- */

struct pconf {
    const char *policy;        /* NULL: round_robin */
    const char *routes;        /* NULL: /sy.test. */
    const char *proxy_extra;   /* more [proxy] lines, or NULL */
    const char *cluster_extra; /* more [cluster.echo] lines, or NULL */
};

/* Writes a config for the three backends into |buf|. */
static void conf_text(char *buf, size_t len, int port, const struct pconf *c)
{
    snprintf(buf, len,
             "[proxy]\n"
             "listen = 127.0.0.1:%d\n"
             "workers = 2\n"
             "drain_timeout = 10s\n"
             "log_level = info\n"
             "%s\n"
             "[admin]\n"
             "listen = off\n"
             "\n"
             "[cluster.echo]\n"
             "targets = %s, %s, %s\n"
             "policy = %s\n"
             "routes = %s\n"
             "health_initial = healthy\n"
             "health_interval = 500ms\n"
             "health_timeout = 400ms\n"
             "unhealthy_threshold = 1\n"
             "%s\n",
             port, c->proxy_extra ? c->proxy_extra : "", be[0].addr, be[1].addr, be[2].addr,
             c->policy ? c->policy : "round_robin", c->routes ? c->routes : "/sy.test.",
             c->cluster_extra ? c->cluster_extra : "");
}

static void start_proxy(const struct pconf *c)
{
    static const struct pconf dflt = {NULL, NULL, NULL, NULL};
    char text[2048];
    int port = sup_free_port();

    cr_assert_gt(port, 0);
    conf_text(text, sizeof(text), port, c ? c : &dflt);
    cr_assert_eq(sup_start_proxy(&px, "switchyard", port, text, PROXY_T), 0,
                 "switchyard did not start (%s -c %s)", sup_proxy_bin(), px.conf);
}

/* ---- helpers ---- */

static int backend_index(const char *id)
{
    for (int i = 0; i < NB; i++) {
        if (strcmp(be[i].id, id) == 0)
            return i;
    }
    return -1;
}

static void assert_ok(const struct gc_result *r, const char *what)
{
    cr_assert_eq(r->status, 0, "%s: status %d (%s)", what, r->status, r->message);
    cr_assert(r->sizes_ok, "%s: a reply had the wrong payload size", what);
    cr_assert(r->content_ok, "%s: a reply payload was corrupted", what);
    cr_assert_geq(backend_index(r->backend_id), 0, "%s: trailing x-backend-id '%s'", what,
                  r->backend_id);
    cr_assert_str_eq(r->initial_backend_id, r->backend_id,
                     "%s: initial and trailing x-backend-id differ", what);
}

/* Sums one counter over the backends that still run. */
struct sum_wait {
    size_t field; /* offsetof(struct gc_stats, ...) */
    uint64_t want;
    uint64_t last;
};

static uint64_t stats_sum(size_t field)
{
    uint64_t sum = 0;

    for (int i = 0; i < NB; i++) {
        struct gc_stats s;

        if (be[i].proc && sup_alive(be[i].proc) && gc_stats(be[i].addr, false, &s) == 0)
            sum += *(const uint64_t *)((const char *)&s + field);
    }
    return sum;
}

static bool sum_at_least(void *arg)
{
    struct sum_wait *w = arg;

    w->last = stats_sum(w->field);
    return w->last >= w->want;
}

static void reset_stats(void)
{
    struct gc_stats s;

    for (int i = 0; i < NB; i++)
        cr_assert_eq(gc_stats(be[i].addr, true, &s), 0);
}

/* Runs |n| unary calls on |ch|; counts them per backend into |per| (NB
 * entries) and returns how many did not end OK. */
static int unary_calls(struct gc_chan *ch, int n, int *per)
{
    struct gc_opts o;
    int bad = 0;

    gc_opts_init(&o, GC_UNARY);
    o.request_size = 64;
    for (int i = 0; i < n; i++) {
        struct gc_result r;
        int b;

        if (gc_chan_call(ch, &o, &r) != 0 || !r.sizes_ok || !r.content_ok) {
            if (bad++ == 0)
                fprintf(stderr, "call %d: status %d (%s)\n", i, r.status, r.message);
            continue;
        }
        b = backend_index(r.backend_id);
        if (b >= 0 && per)
            per[b]++;
    }
    return bad;
}

/* ---- call kinds and sizes ---- */

Test(proxy, all_four_call_kinds)
{
    struct gc_opts o;
    struct gc_result r;

    start_proxy(NULL);

    gc_opts_init(&o, GC_UNARY);
    o.request_size = 1000;
    gc_call(px.addr, &o, &r);
    assert_ok(&r, "unary");
    cr_assert_eq(r.replies, 1);
    cr_assert_eq(r.bytes_received, 1000);
    cr_assert_str_eq(r.reply_backend_id, r.backend_id);

    gc_opts_init(&o, GC_CLIENT_STREAM);
    o.request_size = 1000;
    o.request_count = 10;
    o.response_size = 10;
    gc_call(px.addr, &o, &r);
    assert_ok(&r, "client-stream");
    cr_assert_eq(r.replies, 1);
    cr_assert_eq(r.last_seq, 10, "backend got %u of 10 requests", r.last_seq);
    cr_assert_eq(r.server_bytes, 10000);

    gc_opts_init(&o, GC_SERVER_STREAM);
    o.request_size = 10;
    o.response_size = 3000;
    o.response_count = 20;
    gc_call(px.addr, &o, &r);
    assert_ok(&r, "server-stream");
    cr_assert_eq(r.replies, 20);
    cr_assert(r.seq_ok, "replies out of order");
    cr_assert_eq(r.bytes_received, 60000);

    gc_opts_init(&o, GC_BIDI);
    o.request_size = 500;
    o.request_count = 15;
    gc_call(px.addr, &o, &r);
    assert_ok(&r, "bidi");
    cr_assert_eq(r.replies, 15);
    cr_assert(r.seq_ok, "replies out of order");
    cr_assert_eq(r.server_bytes, 7500);
    stop_proxy_clean();
}

Test(proxy, backend_status_and_message_pass_through)
{
    struct gc_opts o;
    struct gc_result r;

    start_proxy(NULL);
    gc_opts_init(&o, GC_UNARY);
    o.fail_code = 9;
    gc_call(px.addr, &o, &r);
    cr_assert_eq(r.status, 9, "status %d (%s)", r.status, r.message);
    cr_assert(strstr(r.message, "requested failure 9"), "grpc-message '%s'", r.message);
    cr_assert_geq(backend_index(r.backend_id), 0, "x-backend-id '%s'", r.backend_id);
    stop_proxy_clean();
}

Test(proxy, four_mib_messages_both_ways)
{
    struct gc_opts o;
    struct gc_result r;

    start_proxy(NULL);
    gc_opts_init(&o, GC_UNARY);
    o.request_size = 4 * MiB;
    o.response_size = 4 * MiB;
    o.timeout_ms = 30000;
    gc_call(px.addr, &o, &r);
    assert_ok(&r, "unary 4 MiB");
    cr_assert_eq(r.server_bytes, 4 * MiB, "backend got %llu bytes",
                 (unsigned long long)r.server_bytes);
    cr_assert_eq(r.bytes_received, 4 * MiB);

    gc_opts_init(&o, GC_BIDI);
    o.request_size = 4 * MiB;
    o.request_count = 3;
    o.timeout_ms = 30000;
    gc_call(px.addr, &o, &r);
    assert_ok(&r, "bidi 3 x 4 MiB");
    cr_assert_eq(r.replies, 3);
    cr_assert_eq(r.bytes_received, 12 * MiB);
    stop_proxy_clean();
}

Test(proxy, two_hundred_concurrent_calls_on_one_connection)
{
    enum {
        N = 200
    };
    const struct pconf c = {NULL, NULL, "max_concurrent_streams = 1000", NULL};
    struct gc_result *res = calloc(N, sizeof(*res));
    int per[NB] = {0};
    struct gc_opts o;
    int rc;

    start_proxy(&c);
    reset_stats();
    gc_opts_init(&o, GC_UNARY);
    o.request_size = 256;
    o.timeout_ms = 20000;
    rc = gc_concurrent(px.addr, N, &o, res);
    cr_assert_neq(rc, -1, "a call ended before all 200 had response headers: not concurrent");
    for (int i = 0; i < N; i++) {
        assert_ok(&res[i], "concurrent call");
        per[backend_index(res[i].backend_id)]++;
    }
    cr_assert_eq(rc, 0);
    for (int i = 0; i < NB; i++)
        cr_assert_gt(per[i], 0, "backend %s got none of %d calls", be[i].id, N);
    cr_assert_eq(stats_sum(offsetof(struct gc_stats, calls_completed)), N);
    free(res);
    stop_proxy_clean();
}

/* ---- policies and failures ---- */

Test(proxy, round_robin_spreads_evenly)
{
    int per[NB] = {0};
    struct gc_chan *ch;

    start_proxy(NULL);
    ch = gc_chan_new(px.addr);
    cr_assert_eq(unary_calls(ch, 300, per), 0, "some calls failed");
    gc_chan_free(ch);
    for (int i = 0; i < NB; i++)
        cr_assert(per[i] >= 90 && per[i] <= 110, "backends got %d / %d / %d of 300 calls", per[0],
                  per[1], per[2]);
    stop_proxy_clean();
}

Test(proxy, pick_first_sticks_then_fails_over)
{
    const struct pconf c = {"pick_first", NULL, NULL, NULL};
    int per[NB] = {0};
    struct gc_chan *ch;

    start_proxy(&c);
    ch = gc_chan_new(px.addr);
    cr_assert_eq(unary_calls(ch, 30, per), 0);
    cr_assert_eq(per[0], 30, "calls went to %d / %d / %d, not all to b0", per[0], per[1], per[2]);

    cr_assert_eq(sup_kill(be[0].proc), 128 + SIGKILL);
    memset(per, 0, sizeof(per));
    cr_assert_eq(unary_calls(ch, 30, per), 0, "calls failed after b0 was killed");
    cr_assert_eq(per[1], 30, "after b0 died calls went to %d / %d / %d, not all to b1", per[0],
                 per[1], per[2]);
    gc_chan_free(ch);
    stop_proxy_clean();
}

Test(proxy, killed_backend_new_calls_succeed_on_the_others)
{
    int per[NB] = {0};
    struct gc_chan *ch;

    start_proxy(NULL);
    ch = gc_chan_new(px.addr);
    cr_assert_eq(unary_calls(ch, 30, per), 0);
    for (int i = 0; i < NB; i++)
        cr_assert_gt(per[i], 0, "warm-up: backend %s got no call", be[i].id);

    cr_assert_eq(sup_kill(be[1].proc), 128 + SIGKILL);
    memset(per, 0, sizeof(per));
    cr_assert_eq(unary_calls(ch, 60, per), 0, "calls failed after b1 was killed");
    gc_chan_free(ch);
    ch = gc_chan_new(px.addr); /* a new connection too */
    cr_assert_eq(unary_calls(ch, 30, per), 0, "calls on a new connection failed");
    gc_chan_free(ch);
    cr_assert_eq(per[1], 0);
    cr_assert_gt(per[0], 0);
    cr_assert_gt(per[2], 0);
    cr_assert_eq(per[0] + per[2], 90);
    stop_proxy_clean();
}

Test(proxy, client_cancel_reaches_the_backend)
{
    struct sum_wait w = {offsetof(struct gc_stats, calls_cancelled), 1, 0};
    struct gc_opts o;
    struct gc_result r;

    start_proxy(NULL);
    reset_stats();
    gc_opts_init(&o, GC_SERVER_STREAM);
    o.response_count = 1000;
    o.response_size = 100;
    o.delay_ms = 10;
    o.cancel_after_replies = 3;
    gc_call(px.addr, &o, &r);
    cr_assert_eq(r.status, 1, "status %d (%s)", r.status, r.message);
    cr_assert_eq(r.replies, 3);
    cr_assert(sup_poll(sum_at_least, &w, 5000), "no backend saw the cancel");
    cr_assert_eq(stats_sum(offsetof(struct gc_stats, calls_active)), 0);
    stop_proxy_clean();
}

Test(proxy, deadline_exceeded)
{
    struct sum_wait w = {offsetof(struct gc_stats, calls_cancelled), 1, 0};
    struct gc_opts o;
    struct gc_result r;

    start_proxy(NULL);
    reset_stats();
    gc_opts_init(&o, GC_UNARY);
    o.delay_ms = 3000;
    o.timeout_ms = 300;
    gc_call(px.addr, &o, &r);
    cr_assert_eq(r.status, 4, "status %d (%s)", r.status, r.message);
    cr_assert_lt(r.elapsed_ms, 2000, "took %ld ms", r.elapsed_ms);
    cr_assert(sup_poll(sum_at_least, &w, 5000), "the backend call was not cancelled");
    stop_proxy_clean();
}

Test(proxy, unknown_route_is_unimplemented)
{
    const struct pconf c = {NULL, "/sy.test.Echo/", NULL, NULL};
    struct gc_opts o;
    struct gc_result r;

    start_proxy(&c);
    gc_opts_init(&o, GC_UNARY);
    o.method = "/other.Svc/M";
    gc_call(px.addr, &o, &r);
    cr_assert_eq(r.status, 12, "status %d (%s)", r.status, r.message);
    cr_assert_eq(stats_sum(offsetof(struct gc_stats, calls_started)), 0);

    /* A routed method still works on the same proxy. */
    gc_opts_init(&o, GC_UNARY);
    gc_call(px.addr, &o, &r);
    assert_ok(&r, "routed call");
    /* The backend's own UNIMPLEMENTED comes through as well. */
    o.method = "/sy.test.Echo/NoSuchMethod";
    gc_call(px.addr, &o, &r);
    cr_assert_eq(r.status, 12, "status %d (%s)", r.status, r.message);
    cr_assert_geq(backend_index(r.backend_id), 0, "x-backend-id '%s'", r.backend_id);
    stop_proxy_clean();
}

/* ---- configuration errors ---- */

struct bad_conf {
    const char *what;
    int line;
    const char *text; /* %d: a port */
};

static const struct bad_conf bad_confs[] = {
    {"unknown key", 4,
     "[proxy]\nlisten = 127.0.0.1:%d\nworkers = 1\nbogus_key = 1\n[admin]\nlisten = off\n"
     "[cluster.echo]\ntargets = 127.0.0.1:1\n"},
    {"bad duration", 3,
     "[proxy]\nlisten = 127.0.0.1:%d\ndrain_timeout = fast\n[admin]\nlisten = off\n"
     "[cluster.echo]\ntargets = 127.0.0.1:1\n"},
    {"bad policy", 7,
     "[proxy]\nlisten = 127.0.0.1:%d\n[admin]\nlisten = off\n[cluster.echo]\n"
     "targets = 127.0.0.1:1\npolicy = fastest\n"},
    {"bad target port", 6,
     "[proxy]\nlisten = 127.0.0.1:%d\n[admin]\nlisten = off\n[cluster.echo]\n"
     "targets = 127.0.0.1:99999\n"},
    {"line without '='", 3,
     "[proxy]\nlisten = 127.0.0.1:%d\nthis line is not a key value pair\n[admin]\nlisten = off\n"
     "[cluster.echo]\ntargets = 127.0.0.1:1\n"},
    {"unknown section", 5,
     "[proxy]\nlisten = 127.0.0.1:%d\n[admin]\nlisten = off\n[bogus]\nkey = 1\n"
     "[cluster.echo]\ntargets = 127.0.0.1:1\n"},
    {"bad workers", 3,
     "[proxy]\nlisten = 127.0.0.1:%d\nworkers = many\n[admin]\nlisten = off\n"
     "[cluster.echo]\ntargets = 127.0.0.1:1\n"},
};

/* Runs switchyard with |args| on |path|; expects a non-zero exit and
 * "PATH:LINE" on stderr. */
static void expect_rejected(const char *what, const char *path, int line, bool check_only)
{
    const char *argv[5];
    char needle[600];
    struct sup_proc *p = NULL;
    char *err;
    int n = 0, st;

    argv[n++] = sup_proxy_bin();
    if (check_only)
        argv[n++] = "-t";
    argv[n++] = "-c";
    argv[n++] = path;
    argv[n] = NULL;
    st = sup_run(check_only ? "switchyard-t" : "switchyard-bad", argv, PROXY_T, &p);
    cr_assert_not_null(p);
    err = sup_read_file(p->err_path);
    snprintf(needle, sizeof(needle), "%s:%d", path, line);
    cr_expect(st > 0 && st < 128, "%s (%s): switchyard%s exited with %d, want 1..127", what, path,
              check_only ? " -t" : "", st);
    cr_expect(err && strstr(err, needle), "%s: stderr lacks '%s':\n%s", what, needle,
              err ? err : "(none)");
    free(err);
}

Test(proxy, bad_config_names_file_and_line)
{
    for (size_t i = 0; i < sizeof(bad_confs) / sizeof(bad_confs[0]); i++) {
        char text[1024], name[32], path[512];

        snprintf(text, sizeof(text), bad_confs[i].text, sup_free_port());
        snprintf(name, sizeof(name), "bad%zu.ini", i);
        cr_assert_eq(sup_write_file(name, text, path, sizeof(path)), 0);
        expect_rejected(bad_confs[i].what, path, bad_confs[i].line, true);
        expect_rejected(bad_confs[i].what, path, bad_confs[i].line, false);
    }
}

Test(proxy, good_config_check_exits_zero)
{
    const char *argv[5];
    char text[2048], path[512];
    struct sup_proc *p = NULL;
    int st;

    conf_text(text, sizeof(text), sup_free_port(), &(struct pconf){NULL, NULL, NULL, NULL});
    cr_assert_eq(sup_write_file("good.ini", text, path, sizeof(path)), 0);
    argv[0] = sup_proxy_bin();
    argv[1] = "-t";
    argv[2] = "-c";
    argv[3] = path;
    argv[4] = NULL;
    st = sup_run("switchyard-t", argv, PROXY_T, &p);
    if (st != 0)
        sup_dump_log(p, 20);
    cr_assert_eq(st, 0, "switchyard -t -c %s exited with %d", path, st);
}

/* ---- graceful shutdown ---- */

struct bg_call {
    struct gc_opts o;
    struct gc_result r;
    long done_ms;
};

static void *bg_call_run(void *arg)
{
    struct bg_call *c = arg;

    gc_call(px.addr, &c->o, &c->r);
    c->done_ms = sup_now_ms();
    return NULL;
}

Test(proxy, sigterm_lets_a_running_stream_finish_then_exits_zero)
{
    struct sum_wait w = {offsetof(struct gc_stats, messages_sent), 1, 0};
    struct bg_call c;
    pthread_t t;
    int st;

    start_proxy(NULL);
    reset_stats();
    gc_opts_init(&c.o, GC_SERVER_STREAM);
    c.o.response_count = 20;
    c.o.response_size = 100;
    c.o.delay_ms = 100;
    c.o.timeout_ms = 30000;
    cr_assert_eq(pthread_create(&t, NULL, bg_call_run, &c), 0);
    /* The stream is running once a backend has sent its first reply. */
    cr_assert(sup_poll(sum_at_least, &w, 5000), "the call never reached a backend");
    cr_assert_eq(sup_signal(px.proc, SIGTERM), 0);
    pthread_join(t, NULL);
    cr_assert_eq(c.r.status, 0, "the running call ended with %d (%s)", c.r.status, c.r.message);
    cr_assert_eq(c.r.replies, 20);
    cr_assert(c.r.content_ok && c.r.sizes_ok);

    st = sup_wait_exit(px.proc, PROXY_T);
    if (st != 0)
        sup_dump_log(px.proc, 60);
    cr_assert_eq(st, 0, "switchyard exited with %d after SIGTERM (-2: still running)", st);
    /* It exits once the call is over, not when drain_timeout (10 s) ends. */
    cr_assert_lt(sup_now_ms() - c.done_ms, 5000, "exit %ld ms after the last call ended",
                 sup_now_ms() - c.done_ms);
}

/* ---- a client that stops reading ---- */

struct slow_watch {
    pid_t pid;
    long rss_max;  /* KiB */
    uint64_t sent; /* backends' messages_sent at the last change */
    long since;    /* when |sent| last changed */
};

/* Samples the proxy's RSS; true once the backends' sends have not moved for 1 s. */
static bool backends_stalled(void *arg)
{
    struct slow_watch *s = arg;
    long rss = sup_rss_kb(s->pid);
    uint64_t sent = stats_sum(offsetof(struct gc_stats, messages_sent));

    if (rss > s->rss_max)
        s->rss_max = rss;
    if (sent != s->sent || s->since == 0) {
        s->sent = sent;
        s->since = sup_now_ms();
        return false;
    }
    return sup_now_ms() - s->since >= 1000;
}

Test(proxy, slow_reader_does_not_grow_memory)
{
    enum {
        COUNT = 4000,
        SIZE = 64 * 1024
    };
    Sy__Test__EchoRequest req = SY__TEST__ECHO_REQUEST__INIT;
    struct sum_wait started = {offsetof(struct gc_stats, calls_started), 1, 0};
    struct sum_wait cancelled = {offsetof(struct gc_stats, calls_cancelled), 1, 0};
    struct slow_watch sw;
    struct gc_opts o;
    struct gc_result r;
    uint8_t buf[64];
    bool stalled;
    long rss0;
    size_t len;
    int fd;

    start_proxy(NULL);
    gc_opts_init(&o, GC_SERVER_STREAM); /* warm up: connections, buffers */
    o.response_size = SIZE;
    o.response_count = 20;
    cr_assert_eq(gc_call(px.addr, &o, &r), 0, "warm-up: %s", r.message);
    reset_stats();
    rss0 = sup_rss_kb(px.proc->pid);
    cr_assert_gt(rss0, 0);

    req.response_size = SIZE;
    req.response_count = COUNT;
    len = sy__test__echo_request__pack(&req, buf);
    fd = sup_h2_slow_reader(px.port, "/sy.test.Echo/ServerStream", buf, len, 65535);
    cr_assert_geq(fd, 0, "raw HTTP/2 request failed");
    cr_assert(sup_poll(sum_at_least, &started, 5000), "the request never reached a backend");

    memset(&sw, 0, sizeof(sw));
    sw.pid = px.proc->pid;
    sw.rss_max = rss0;
    stalled = sup_poll(backends_stalled, &sw, 15000);
    cr_assert_lt(sw.rss_max - rss0, 64 * 1024,
                 "switchyard RSS grew by %ld MiB (%ld -> %ld KiB) for a client that reads nothing",
                 (sw.rss_max - rss0) / 1024, rss0, sw.rss_max);
    cr_assert(stalled, "backends kept sending for 15 s to a client that reads nothing");
    cr_assert_lt(sw.sent, COUNT / 4,
                 "backends completed %llu of %d sends of 64 KiB: nothing pushed back",
                 (unsigned long long)sw.sent, COUNT);

    close(fd);
    cr_assert(sup_alive(px.proc), "switchyard died");
    gc_opts_init(&o, GC_UNARY);
    o.request_size = 100;
    gc_call(px.addr, &o, &r);
    assert_ok(&r, "call after the slow reader left");
    cr_assert(sup_poll(sum_at_least, &cancelled, 5000),
              "the backend stream was not cancelled when its client went away");
    cr_log_info("slow reader: switchyard RSS %ld -> max %ld KiB; backends completed %llu sends",
                rss0, sw.rss_max, (unsigned long long)sw.sent);
    stop_proxy_clean();
}

/* ---- what must pass through whole (headers, trailers, deadlines) ---- */

Test(proxy, metadata_of_25_kb_round_trips_both_ways)
{
    enum {
        N = 25,
        VLEN = 1000
    };
    static char keys[N][24], vals[N][VLEN + 1];
    struct gc_md md[N];
    struct gc_opts o;
    struct gc_result r;

    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof(keys[i]), "x-echo-k%02d", i);
        for (int j = 0; j < VLEN; j++)
            vals[i][j] = (char)('a' + (i + j) % 26);
        vals[i][VLEN] = '\0';
        md[i] = (struct gc_md){keys[i], vals[i]};
    }
    start_proxy(NULL);
    gc_opts_init(&o, GC_UNARY);
    o.md = md;
    o.nmd = N;
    cr_assert_eq(gc_call(px.addr, &o, &r), 0, "%s", r.message);
    assert_ok(&r, "25 KB of metadata");
    cr_assert_eq(r.echo_md_initial, N, "%d of %d entries came back in the headers",
                 r.echo_md_initial, N);
    cr_assert_eq(r.echo_md_trailing, N, "%d of %d entries came back in the trailers",
                 r.echo_md_trailing, N);
    cr_assert(r.echo_md_ok, "an entry came back with another value");
    stop_proxy_clean();
}

Test(proxy, forty_trailers_are_forwarded)
{
    struct gc_md md[] = {{"x-trailers", "40"}};
    struct gc_opts o;
    struct gc_result r;

    start_proxy(NULL);
    gc_opts_init(&o, GC_UNARY);
    o.md = md;
    o.nmd = 1;
    cr_assert_eq(gc_call(px.addr, &o, &r), 0, "%s", r.message);
    assert_ok(&r, "40 trailers");
    cr_assert_eq(r.trailers_extra, 40, "%d of 40 trailers arrived", r.trailers_extra);
    stop_proxy_clean();
}

Test(proxy, grpc_timeout_zero_is_deadline_exceeded_and_never_sent)
{
    char line[256];

    start_proxy(NULL);
    reset_stats();
    cr_assert_eq(sup_h2abuse(px.port, "timeout-zero", 0, NULL, line, sizeof(line), 20000), 0, "%s",
                 line);
    cr_assert_eq(stats_sum(offsetof(struct gc_stats, calls_started)), 0,
                 "a call whose deadline had passed reached a backend");
    stop_proxy_clean();
}

/* A backend that hangs up right after a request's HEADERS has seen the
 * request: switchyard must not send it again to another backend (it cannot
 * know whether the first one acted on it). The calls' messages follow their
 * HEADERS 300 ms later, so no request byte had left when the connection
 * dropped. */
Test(proxy, a_call_that_reached_a_backend_is_never_sent_twice)
{
    enum {
        CALLS = 8
    };
    char text[2048], line[512];
    int hport = sup_free_port(), port = sup_free_port(), seen = 0;
    struct sup_proc *hb;
    char *out, *p;
    uint64_t started;

    hb = sup_start_h2backend("hangup", hport);
    cr_assert_not_null(hb, "h2backend.py did not start");
    snprintf(text, sizeof(text),
             "[proxy]\nlisten = 127.0.0.1:%d\nworkers = 1\n[admin]\nlisten = off\n"
             "[cluster.echo]\ntargets = 127.0.0.1:%d, %s\nroutes = /sy.test.\n"
             "health_check = off\nmax_retries = 4\n",
             port, hport, be[0].addr);
    cr_assert_eq(sup_start_proxy(&px, "switchyard", port, text, PROXY_T), 0);
    reset_stats();
    cr_assert_eq(sup_h2abuse(port, "slow-body", CALLS, NULL, line, sizeof(line), 60000), 0, "%s",
                 line);
    out = sup_read_file(hb->out_path);
    for (p = out; p != NULL && (p = strstr(p, "seen ")) != NULL; p++)
        seen++;
    free(out);
    started = stats_sum(offsetof(struct gc_stats, calls_started));
    cr_log_info("%d calls: %d reached the hanging backend, %llu the good one; %s", CALLS, seen,
                (unsigned long long)started, line);
    cr_assert_gt(seen, 0, "round robin never chose the hanging backend");
    cr_assert_eq((uint64_t)seen + started, CALLS,
                 "%d calls reached backends %llu times: some were sent twice", CALLS,
                 (unsigned long long)(seen + started));
    stop_proxy_clean();
}
