/* Integration tests of switchyard's limits against misbehaving clients:
 * refused streams over the limit, idle and header timeouts, message and
 * header size limits, rapid reset, ping flood and zero windows. The bad
 * clients are tests/integration/h2abuse.py (python3-h2); the good ones are
 * gRPC C core clients that must not notice.
 * SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/peers/gclient.h"
#include "tests/support/httpc.h"
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

/* |workers| switchyard workers in front of the first |nbackends| backends;
 * |release|: the optimised build, for tests that measure memory. */
static int admin_port; /* > 0: the next switchyard's [admin] listen port */

static void start_proxy_with(const char *proxy_extra, int workers, int nbackends, bool release)
{
    char text[2048], targets[128], admin[32] = "off";
    int port = sup_free_port();

    cr_assert_gt(port, 0);
    snprintf(targets, sizeof(targets), "%s%s%s", be[0].addr, nbackends > 1 ? ", " : "",
             nbackends > 1 ? be[1].addr : "");
    if (admin_port > 0)
        snprintf(admin, sizeof(admin), "127.0.0.1:%d", admin_port);
    snprintf(text, sizeof(text),
             "[proxy]\nlisten = 127.0.0.1:%d\nworkers = %d\ndrain_timeout = 5s\n%s\n"
             "[admin]\nlisten = %s\n"
             "[cluster.echo]\ntargets = %s\nroutes = /sy.test.\nhealth_check = off\n",
             port, workers, proxy_extra, admin, targets);
    cr_assert_eq(release ? sup_start_proxy_release(&px, "switchyard", port, text, PROXY_T)
                         : sup_start_proxy(&px, "switchyard", port, text, PROXY_T),
                 0, "switchyard did not start");
}

static void start_proxy(const char *proxy_extra)
{
    start_proxy_with(proxy_extra, 2, NB, false);
}

static int abuse(const char *mode, int arg, const char *extra, char *line, size_t len,
                 int timeout_ms)
{
    return sup_h2abuse(px.port, mode, arg, extra, line, len, timeout_ms);
}

/* Good clients calling while a bad one misbehaves. */
#define MAX_LAT 100000
struct calls {
    atomic_bool stop;
    atomic_int ok, bad;
    long lat[MAX_LAT]; /* ms per call, in order */
};

static void *good_client(void *arg)
{
    struct calls *k = arg;
    struct gc_chan *ch = gc_chan_new(px.addr);
    struct gc_opts o;

    gc_opts_init(&o, GC_UNARY);
    o.request_size = 100;
    o.timeout_ms = 5000;
    while (!atomic_load(&k->stop)) {
        struct gc_result r;
        long t0 = sup_now_ms();

        if (gc_chan_call(ch, &o, &r) == 0 && r.status == 0) {
            int n = atomic_fetch_add(&k->ok, 1);

            if (n < MAX_LAT)
                k->lat[n] = sup_now_ms() - t0;
        } else {
            if (atomic_fetch_add(&k->bad, 1) == 0)
                fprintf(stderr, "good client: status %d %s\n", r.status, r.message);
        }
        sup_sleep_ms(5);
    }
    gc_chan_free(ch);
    return NULL;
}

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;

    return x < y ? -1 : x > y;
}

/* The 99th percentile of the first |n| latencies of |k|. */
static long p99(struct calls *k)
{
    int n = atomic_load(&k->ok);

    if (n > MAX_LAT)
        n = MAX_LAT;
    if (n == 0)
        return -1;
    qsort(k->lat, (size_t)n, sizeof(k->lat[0]), cmp_long);
    return k->lat[(n * 99) / 100];
}

/* The good client alone for |ms|: its calls per second. */
static double unloaded_rate(int ms)
{
    static struct calls k;
    pthread_t th;
    long t0 = sup_now_ms();

    memset(&k, 0, sizeof(k));
    pthread_create(&th, NULL, good_client, &k);
    sup_sleep_ms(ms);
    atomic_store(&k.stop, true);
    pthread_join(th, NULL);
    cr_assert_eq(atomic_load(&k.bad), 0, "the good client failed on its own");
    return atomic_load(&k.ok) * 1000.0 / (double)(sup_now_ms() - t0);
}

/* switchyard's largest RSS while the bad client runs. */
struct rss_watch {
    atomic_bool stop;
    long max;
};

static void *rss_sampler(void *arg)
{
    struct rss_watch *rw = arg;

    while (!atomic_load(&rw->stop)) {
        long kb = sup_rss_kb(px.proc->pid);

        if (kb > rw->max)
            rw->max = kb;
        sup_sleep_ms(20);
    }
    return NULL;
}

/* Runs |mode| as a background bad client while a good client calls; checks
 * the bad client's verdict, that the good one saw no failure and had a p99
 * under a second, that switchyard's memory peaked less than |rss_kib| above
 * where it started, and, when |keep_rate|, that the good client kept at least
 * half the rate it has alone (a stall, not CPU the flood takes, shows there). */
static void abuse_alongside_good_client(const char *mode, int arg, const char *extra, long rss_kib,
                                        bool keep_rate)
{
    static struct calls k;
    static struct rss_watch rw;
    double base = keep_rate ? unloaded_rate(2000) : 0, rate;
    pthread_t th, sampler;
    char line[512];
    long rss0 = sup_rss_kb(px.proc->pid), rss1, t0 = sup_now_ms(), worst;
    int st;

    memset(&k, 0, sizeof(k));
    memset(&rw, 0, sizeof(rw));
    rw.max = rss0;
    pthread_create(&sampler, NULL, rss_sampler, &rw);
    pthread_create(&th, NULL, good_client, &k);
    st = abuse(mode, arg, extra, line, sizeof(line), 60000);
    atomic_store(&rw.stop, true);
    pthread_join(sampler, NULL);
    rss1 = rw.max;
    atomic_store(&k.stop, true);
    pthread_join(th, NULL);
    rate = atomic_load(&k.ok) * 1000.0 / (double)(sup_now_ms() - t0);
    worst = p99(&k);
    cr_log_info("%s: %s (RSS %ld -> peak %ld KiB, good calls %d at %.0f/s, unloaded %.0f/s, "
                "p99 %ld ms)",
                mode, line, rss0, rss1, atomic_load(&k.ok), rate, base, worst);
    cr_assert_eq(st, 0, "%s: %s", mode, line);
    cr_assert_eq(atomic_load(&k.bad), 0, "%s: %d good calls failed", mode, atomic_load(&k.bad));
    if (keep_rate)
        cr_assert_geq(rate, base / 2, "%s: the good client slowed from %.0f to %.0f calls/s", mode,
                      base, rate);
    cr_assert_lt(worst, 1000, "%s: the good client's p99 was %ld ms", mode, worst);
    cr_assert_lt(rss1 - rss0, rss_kib, "%s: RSS grew from %ld to a peak of %ld KiB (bound %ld KiB)",
                 mode, rss0, rss1, rss_kib);
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

/* Issue 11: a client that never reads a stream but answers PINGs held it for
 * ever. stream_idle_timeout resets such a stream (RST_STREAM CANCEL to the
 * client, which is not reading) while keepalive PINGs keep its connection up. */
Test(limits, a_stream_nobody_reads_is_reset_at_stream_idle_timeout)
{
    char line[512], kind[32] = "";
    double after = -1;
    int code = -1;

    start_proxy("stream_idle_timeout = 1s\nkeepalive_time = 500ms\nkeepalive_timeout = 5s");
    cr_assert_eq(abuse("stalled-reader", 20, NULL, line, sizeof(line), 40000), 0, "%s", line);
    cr_assert_eq(sscanf(line, "stream ended after %lfs (%31[^,], code %d)", &after, kind, &code), 3,
                 "%s", line);
    cr_log_info("stalled reader: %s", line);
    cr_assert_str_eq(kind, "StreamReset", "%s", line);
    cr_assert_eq(code, 8, "RST_STREAM CANCEL expected: %s", line);
    cr_assert(after >= 0.5 && after < 8, "%s", line);
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

/* The header timer is armed when the connection opens and left to lapse: a
 * head begun 0.7 s later still gets its whole second. */
Test(limits, a_head_begun_late_gets_its_whole_header_timeout)
{
    char line[512];

    start_proxy("header_timeout = 1s");
    cr_assert_eq(abuse("dribble", 700, NULL, line, sizeof(line), 30000), 0, "%s", line);
    cr_log_info("late head: %s", line);
    cr_assert(closed_after(line) >= 0.8 && closed_after(line) < 5, "%s", line);
    stop_proxy_clean();
}

/* An idle connection gives its frame buffer's pages back after 2 s, and its
 * stream map's when no stream is left in it (proxy_h2mem_trim). 400 idle
 * connections: under 9.5 KiB each in RSS (15 KiB when nothing is given back,
 * 11 with the frame buffer alone, about 7 now); after a call on each and 4 s
 * idle again, under 11.5 KiB each (about 9: the HPACK tables now hold the
 * calls' fields; 13 when the stream map stays). Every call on a connection
 * whose pages were given back comes back whole. */
Test(limits, idle_connections_give_their_frame_buffers_back)
{
    char line[512], pid[16];
    double idle, after;
    const char *p, *q;

    /* Transparent huge pages (when the kernel's setting is "always") would
     * move RSS in 2 MiB steps: off for the switchyard started here (the
     * setting is inherited through fork and exec). */
    prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
    start_proxy_with("", 1, 1, true);
    prctl(PR_SET_THP_DISABLE, 0, 0, 0, 0);
    snprintf(pid, sizeof(pid), "%d", (int)px.proc->pid);
    cr_assert_eq(abuse("idle-many", 400, pid, line, sizeof(line), 90000), 0, "%s", line);
    cr_log_info("idle connections: %s", line);
    p = strstr(line, "idle_per_conn=");
    q = strstr(line, "after_calls_per_conn=");
    cr_assert(p != NULL && q != NULL, "%s", line);
    idle = strtod(p + strlen("idle_per_conn="), NULL);
    after = strtod(q + strlen("after_calls_per_conn="), NULL);
    cr_assert(idle > 0 && idle < 9.5, "%.2f KiB per idle connection: %s", idle, line);
    cr_assert(after > 0 && after < 11.5, "%.2f KiB per idle connection after calls: %s", after,
              line);
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
    abuse_alongside_good_client("rapid-reset", 0, NULL, 64 * 1024, false);
    stop_proxy_clean();
}

/* Request heads go to nghttp2 uncopied (be.h): calls cancelled in the read
 * that started them, on a new backend connection and on one in use, leave
 * nothing in a backend session that points into their freed heads (the
 * sanitizers check), and the connection goes on. */
Test(limits, calls_cancelled_as_they_start_leave_no_head_behind)
{
    char line[256];

    start_proxy("");
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(abuse("cancel-burst", 20, NULL, line, sizeof(line), 20000), 0, "%s", line);
        cr_assert(strncmp(line, "last call grpc-status 0\n", 24) == 0, "%s", line);
    }
    stop_proxy_clean();
}

Test(limits, ping_flood_is_cut_off_and_spares_others)
{
    start_proxy("");
    abuse_alongside_good_client("ping-flood", 0, NULL, 64 * 1024, false);
    stop_proxy_clean();
}

/* Each stalled stream may hold its own window (stream_buffer, 256 KiB) and
 * no more; memory is measured on the optimised build. */
Test(limits, zero_windows_neither_grow_memory_nor_slow_others)
{
    start_proxy_with("max_concurrent_streams = 200\nstream_buffer = 65536", 2, NB, true);
    abuse_alongside_good_client("zero-window", 150, "3", 150 * 64 + 8 * 1024, true);
    stop_proxy_clean();
}

/* Issue 11: with one worker, every client shares its backend connections. A
 * client that stops reading on 20 streams must hold only those streams'
 * windows, never the backend connection's window the others need (17 such
 * streams used to stall everyone). */
Test(limits, stalled_streams_do_not_stall_a_shared_backend_connection)
{
    start_proxy_with("max_concurrent_streams = 200", 1, 1, true);
    abuse_alongside_good_client("zero-window", 20, "4", 20 * 256 + 8 * 1024, true);
    stop_proxy_clean();
}

/* Issue 11, the request direction: a backend that stops reading some streams
 * (it takes their bytes off the connection but never opens their stream
 * windows) holds only those streams' buffers in switchyard; the other calls
 * on the same backend connection keep their pace (one worker, one backend
 * connection). The backend is tests/integration/h2backend.py "stall". */
Test(limits, a_backend_that_stops_reading_some_streams_stalls_no_other_call)
{
    char text[2048];
    int hport = sup_free_port(), port = sup_free_port();
    struct sup_proc *hb;

    hb = sup_start_h2backend("stall", hport);
    cr_assert_not_null(hb, "h2backend.py did not start");
    snprintf(text, sizeof(text),
             "[proxy]\nlisten = 127.0.0.1:%d\nworkers = 1\n[admin]\nlisten = off\n"
             "[cluster.echo]\ntargets = 127.0.0.1:%d\nroutes = /sy.test.\nhealth_check = off\n",
             port, hport);
    cr_assert_eq(sup_start_proxy_release(&px, "switchyard", port, text, PROXY_T), 0);
    /* 20 stalled uploads: at most 20 stream buffers (256 KiB) held */
    abuse_alongside_good_client("upload-stall", 20, NULL, 20 * 256 + 8 * 1024, true);
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

/* keepalive on a client that answers: a PING after each keepalive_time of
 * silence (the ACK is a read), and the connection stays. */
Test(limits, answered_pings_keep_the_connection)
{
    char line[512];
    int pings = -1;

    start_proxy("keepalive_time = 300ms\nkeepalive_timeout = 1s\nidle_timeout = 1m");
    cr_assert_eq(abuse("ping-ack", 3, NULL, line, sizeof(line), 40000), 0, "%s", line);
    cr_log_info("ping-ack: %s", line);
    cr_assert_eq(sscanf(line, "pings %d open", &pings), 1, "%s", line);
    /* 3 s / 300 ms: about 9 (each waits 300 ms after the last ACK) */
    cr_assert(pings >= 5 && pings <= 11, "%s", line);
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

/* Issue 12.2 (MadeYouReset, CVE-2025-8671): streams switchyard itself must
 * reset after their calls started (DATA contradicting content-length) count
 * in the same budget as client resets: GOAWAY within a bounded count, and the
 * backends see no more calls than that. */
Test(limits, self_inflicted_resets_are_rate_limited)
{
    char line[256];
    int code = -1, streams = -1;
    uint64_t started = 0;

    start_proxy("");
    for (int i = 0; i < NB; i++) {
        struct gc_stats st;

        cr_assert_eq(gc_stats(be[i].addr, true, &st), 0);
    }
    cr_assert_eq(abuse("made-you-reset", 0, NULL, line, sizeof(line), 60000), 0, "%s", line);
    cr_assert_eq(sscanf(line, "goaway %d after %d streams", &code, &streams), 2, "%s", line);
    for (int i = 0; i < NB; i++) {
        struct gc_stats st;

        cr_assert_eq(gc_stats(be[i].addr, false, &st), 0);
        started += st.calls_started;
    }
    cr_log_info("made-you-reset: GOAWAY(%d) after %d streams; backends saw %llu calls", code,
                streams, (unsigned long long)started);
    cr_assert_eq(code, 11, "GOAWAY ENHANCE_YOUR_CALM expected, got %d", code);
    cr_assert_leq(streams, 1500, "%d streams before the GOAWAY", streams);
    cr_assert_leq(started, (uint64_t)streams, "the backends saw %llu calls",
                  (unsigned long long)started);
    stop_proxy_clean();
}

/* Issue 12.7: HEADERS on a stream id that is closed, or below one already
 * used, is a connection error PROTOCOL_ERROR (RFC 9113 §5.1.1). */
Test(limits, closed_and_skipped_stream_ids_get_goaway_protocol_error)
{
    char line[256];

    start_proxy("");
    cr_assert_eq(abuse("reused-stream-id", 0, NULL, line, sizeof(line), 30000), 0, "%s", line);
    cr_assert_eq(abuse("decreasing-stream-id", 0, NULL, line, sizeof(line), 30000), 0, "%s", line);
    stop_proxy_clean();
}

/* Issue 12.5: the access log is a FIFO nobody reads: once its pipe is full,
 * workers buffer lines instead of sleeping in write(), and new clients are
 * still served; past the buffer (4 MiB) lines are dropped, counted in
 * switchyard_access_log_dropped_total and logged once for the episode. */
Test(limits, an_access_log_nobody_reads_stalls_no_worker)
{
    char fifo[600], extra[700];
    int rfd, failed = 0;
    struct gc_opts o;
    struct sup_http_resp m;
    const char *dropped;

    snprintf(fifo, sizeof(fifo), "%s/access.fifo", sup_tmpdir());
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    /* A reader that never reads, on a pipe cut to one page: it is full after
     * a few dozen calls. */
    rfd = open(fifo, O_RDONLY | O_NONBLOCK);
    cr_assert_geq(rfd, 0);
    fcntl(rfd, F_SETPIPE_SZ, 4096);
    snprintf(extra, sizeof(extra), "access_log = %s", fifo);
    admin_port = sup_free_port();
    start_proxy_with(extra, 1, 1, false);
    cr_assert_eq(sup_wait_port(px.proc, admin_port, PROXY_T), 0, "the admin did not listen");
    gc_opts_init(&o, GC_UNARY);
    o.timeout_ms = 3000;
    for (int i = 0; i < 300; i++) {
        struct gc_result r;

        /* a new connection each time: a new client */
        if (gc_call(px.addr, &o, &r) != 0 || r.status != 0) {
            if (failed++ == 0)
                fprintf(stderr, "call %d: status %d (%s)\n", i, r.status, r.message);
        }
    }
    cr_assert_eq(failed, 0, "%d of 300 calls failed while the access log was stalled", failed);
    /* Past the worker's own buffer (4 MiB of lines): 40,000 calls more. */
    {
        char body[600], url[128];
        const char *argv[] = {"/usr/bin/h2load",
                              "-n",
                              "40000",
                              "-c",
                              "2",
                              "-m",
                              "32",
                              "-d",
                              body,
                              "-H",
                              "content-type: application/grpc",
                              "-H",
                              "te: trailers",
                              url,
                              NULL};
        struct sup_proc *h;
        int st;

        cr_assert_eq(sup_write_file("empty.grpc", "", body, sizeof(body)), 0);
        {
            FILE *f = fopen(body, "wb");

            cr_assert_not_null(f);
            fwrite("\0\0\0\0\0", 1, 5, f); /* one empty message */
            fclose(f);
        }
        snprintf(url, sizeof(url), "http://%s/sy.test.Echo/Unary", px.addr);
        st = sup_run("h2load", argv, 120000, &h);
        if (st != 0 || !sup_file_contains(h->out_path, "40000 succeeded"))
            sup_dump_log(h, 20);
        cr_assert_eq(st, 0, "h2load exited %d", st);
        cr_assert(sup_file_contains(h->out_path, "40000 succeeded"),
                  "not every h2load call succeeded");
    }
    /* what was lost is counted, and said once for the episode */
    cr_assert_eq(sup_http_get(admin_port, "/metrics", &m), 0);
    dropped = strstr(m.body, "\nswitchyard_access_log_dropped_total ");
    cr_assert_not_null(dropped, "no switchyard_access_log_dropped_total in /metrics");
    cr_assert_gt(strtoull(dropped + 37, NULL, 10), 0, "no dropped line counted:%.60s", dropped);
    sup_http_resp_free(&m);
    cr_assert_eq(sup_log_count(px.proc, "the access log cannot keep up"), 1,
                 "the episode was not logged exactly once");
    admin_port = 0;
    close(rfd);
    stop_proxy_clean();
}
