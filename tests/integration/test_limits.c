/* Integration tests of switchyard's limits against misbehaving clients:
 * refused streams over the limit, idle and header timeouts, message and
 * header size limits, rapid reset, ping flood and zero windows. The bad
 * clients are tests/integration/h2abuse.py (python3-h2); the good ones are
 * gRPC C core clients that must not notice.
 * SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/peers/gclient.h"
#include "tests/support/support.h"

#define NB      2
#define PROXY_T 15000

static struct sup_backend be[NB];
static struct sup_proxy px;

static void start_backends(void)
{
    memset(&px, 0, sizeof(px));
    cr_assert_eq(sup_start_backends(be, NB, NULL), 0, "sy-backends did not start");
}

static void stop_all(void)
{
    if (px.proc && sup_alive(px.proc))
        sup_stop(px.proc, PROXY_T);
    sup_stop_all();
}

static void stop_proxy_clean(void)
{
    int st = sup_stop(px.proc, PROXY_T);

    if (st != 0)
        sup_dump_log(px.proc, 60);
    cr_assert_eq(st, 0, "switchyard exited with status %d on SIGTERM", st);
}

TestSuite(limits, .init = start_backends, .fini = stop_all, .timeout = 120);

static void start_proxy(const char *proxy_extra)
{
    char text[2048];
    int port = sup_free_port();

    cr_assert_gt(port, 0);
    snprintf(text, sizeof(text),
             "[proxy]\nlisten = 127.0.0.1:%d\nworkers = 2\ndrain_timeout = 5s\n%s\n"
             "[admin]\nlisten = off\n"
             "[cluster.echo]\ntargets = %s, %s\nroutes = /sy.test.\nhealth_check = off\n",
             port, proxy_extra, be[0].addr, be[1].addr);
    cr_assert_eq(sup_start_proxy(&px, "switchyard", port, text, PROXY_T), 0,
                 "switchyard did not start");
}

/* Runs h2abuse.py MODE PORT ARG [EXTRA] to completion; returns its status and
 * its first output line in |line|. */
static int abuse(const char *mode, int arg, const char *extra, char *line, size_t len,
                 int timeout_ms)
{
    char script[512], port[16], a[16];
    const char *top = getenv("SY_TOP");
    const char *argv[] = {"/usr/bin/python3", script, mode, port, a, extra, NULL};
    struct sup_proc *p;
    char *out;
    int st;

    snprintf(script, sizeof(script), "%s/tests/integration/h2abuse.py", top ? top : ".");
    snprintf(port, sizeof(port), "%d", px.port);
    snprintf(a, sizeof(a), "%d", arg);
    st = sup_run(mode, argv, timeout_ms, &p);
    out = sup_read_file(p->out_path);
    snprintf(line, len, "%s", out != NULL ? out : "");
    free(out);
    if (st != 0)
        sup_dump_log(p, 20);
    return st;
}

/* Good clients calling while a bad one misbehaves. */
struct calls {
    atomic_bool stop;
    atomic_int ok, bad;
};

static void *good_client(void *arg)
{
    struct calls *k = arg;
    struct gc_chan *ch = gc_chan_new(px.addr);
    struct gc_opts o;

    gc_opts_init(&o, GC_UNARY);
    o.request_size = 100;
    while (!atomic_load(&k->stop)) {
        struct gc_result r;

        if (gc_chan_call(ch, &o, &r) == 0 && r.status == 0) {
            atomic_fetch_add(&k->ok, 1);
        } else {
            if (atomic_fetch_add(&k->bad, 1) == 0)
                fprintf(stderr, "good client: status %d %s\n", r.status, r.message);
        }
        sup_sleep_ms(5);
    }
    gc_chan_free(ch);
    return NULL;
}

/* Runs |mode| as a background bad client while a good client calls; checks
 * the bad client's verdict, that the good one saw no failure, and that
 * switchyard's memory stayed bounded. */
static void abuse_alongside_good_client(const char *mode, int arg, const char *extra)
{
    static struct calls k;
    pthread_t th;
    char line[512];
    long rss0 = sup_rss_kb(px.proc->pid), rss1;
    int st;

    memset(&k, 0, sizeof(k));
    pthread_create(&th, NULL, good_client, &k);
    st = abuse(mode, arg, extra, line, sizeof(line), 60000);
    rss1 = sup_rss_kb(px.proc->pid);
    atomic_store(&k.stop, true);
    pthread_join(th, NULL);
    cr_log_info("%s: %s (RSS %ld -> %ld KiB, good calls %d)", mode, line, rss0, rss1,
                atomic_load(&k.ok));
    cr_assert_eq(st, 0, "%s: %s", mode, line);
    cr_assert_eq(atomic_load(&k.bad), 0, "%s: %d good calls failed", mode, atomic_load(&k.bad));
    cr_assert_gt(atomic_load(&k.ok), 10, "%s: the good client made no progress", mode);
    cr_assert_lt(rss1 - rss0, 64 * 1024, "%s: RSS grew from %ld to %ld KiB", mode, rss0, rss1);
}

Test(limits, streams_past_the_limit_are_refused_alone)
{
    char line[512];

    start_proxy("max_concurrent_streams = 10");
    cr_assert_eq(abuse("refuse", 10, NULL, line, sizeof(line), 30000), 0, "%s", line);
    stop_proxy_clean();
}

static double closed_after(const char *line)
{
    double s = -1;

    sscanf(line, "closed after %lfs", &s);
    return s;
}

Test(limits, idle_connection_is_closed_at_idle_timeout)
{
    char line[512];

    start_proxy("idle_timeout = 1s");
    cr_assert_eq(abuse("idle", 0, NULL, line, sizeof(line), 30000), 0, "%s", line);
    cr_assert(closed_after(line) >= 0.5 && closed_after(line) < 5, "%s", line);
    stop_proxy_clean();
}

Test(limits, dribbled_headers_are_closed_at_header_timeout)
{
    char line[512];

    start_proxy("header_timeout = 1s");
    cr_assert_eq(abuse("dribble", 0, NULL, line, sizeof(line), 30000), 0, "%s", line);
    cr_assert(closed_after(line) >= 0.5 && closed_after(line) < 5, "%s", line);
    stop_proxy_clean();
}

Test(limits, oversize_messages_get_resource_exhausted)
{
    struct gc_opts o;
    struct gc_result r;

    start_proxy("max_message_size = 1024");
    gc_opts_init(&o, GC_UNARY);
    o.request_size = 100;
    cr_assert_eq(gc_call(px.addr, &o, &r), 0);
    cr_assert_eq(r.status, 0, "%s", r.message);
    o.request_size = 4096; /* request over the limit */
    gc_call(px.addr, &o, &r);
    cr_assert_eq(r.status, 8, "status %d (%s)", r.status, r.message);
    cr_assert_not_null(strstr(r.message, "max_message_size"), "%s", r.message);
    o.request_size = 10; /* response over the limit */
    o.response_size = 4096;
    gc_call(px.addr, &o, &r);
    cr_assert_eq(r.status, 8, "status %d (%s)", r.status, r.message);
    stop_proxy_clean();
}

Test(limits, oversize_headers_get_resource_exhausted)
{
    char line[512];

    start_proxy("max_header_list_size = 4096");
    cr_assert_eq(abuse("big-headers", 8000, NULL, line, sizeof(line), 30000), 0, "%s", line);
    stop_proxy_clean();
}

Test(limits, rapid_reset_gets_goaway_and_spares_others)
{
    start_proxy("");
    abuse_alongside_good_client("rapid-reset", 0, NULL);
    stop_proxy_clean();
}

Test(limits, ping_flood_is_cut_off_and_spares_others)
{
    start_proxy("");
    abuse_alongside_good_client("ping-flood", 0, NULL);
    stop_proxy_clean();
}

Test(limits, zero_windows_neither_grow_memory_nor_slow_others)
{
    start_proxy("max_concurrent_streams = 200");
    abuse_alongside_good_client("zero-window", 150, "3");
    stop_proxy_clean();
}

Test(limits, unanswered_ping_closes_the_connection)
{
    char line[512];

    start_proxy("keepalive_time = 1s\nkeepalive_timeout = 1s\nidle_timeout = 1m");
    cr_assert_eq(abuse("no-ping-ack", 0, NULL, line, sizeof(line), 40000), 0, "%s", line);
    cr_assert(closed_after(line) >= 1 && closed_after(line) < 8, "%s", line);
    stop_proxy_clean();
}

Test(limits, connections_over_max_connections_are_closed)
{
    char line[512], text[2048];
    int port = sup_free_port();

    /* one worker, so the whole limit is its share */
    snprintf(text, sizeof(text),
             "[proxy]\nlisten = 127.0.0.1:%d\nworkers = 1\nmax_connections = 3\n"
             "[admin]\nlisten = off\n"
             "[cluster.echo]\ntargets = %s\nroutes = /sy.test.\nhealth_check = off\n",
             port, be[0].addr);
    cr_assert_eq(sup_start_proxy(&px, "switchyard", port, text, PROXY_T), 0);
    cr_assert_eq(abuse("max-conns", 3, NULL, line, sizeof(line), 40000), 0, "%s", line);
    stop_proxy_clean();
}
