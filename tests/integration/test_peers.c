/* Integration tests of the test peers themselves, with no proxy in between:
 * sy-backend serves every call kind, metadata, health, cancellation, deadlines,
 * large messages and flow control the way test_proxy.c relies on.
 * Invariant: every process is started by the suite's .init or the test and
 * stopped by PID in .fini (sup_stop_all).
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

#define MiB (1024 * 1024)

enum {
    SERVING = 1,
    NOT_SERVING = 2,
    SERVICE_UNKNOWN = 3
};

static struct sup_backend be[2];

static void start_two_backends(void)
{
    cr_assert_eq(sup_start_backends(be, 2, NULL), 0, "sy-backends did not start");
}

static void stop_all(void)
{
    sup_stop_all();
}

TestSuite(peers, .init = start_two_backends, .fini = stop_all, .timeout = 60);

static void assert_ok(const struct gc_result *r)
{
    cr_assert_eq(r->status, 0, "status %d (%s)", r->status, r->message);
    cr_assert(r->sizes_ok, "a reply had the wrong payload size");
    cr_assert(r->content_ok, "a reply payload did not hold the test pattern");
}

/* ---- polling predicates ---- */

struct stat_wait {
    const char *target;
    uint64_t cancelled; /* wait until calls_cancelled >= this */
    struct gc_stats last;
};

static bool cancelled_at_least(void *arg)
{
    struct stat_wait *w = arg;

    return gc_stats(w->target, false, &w->last) == 0 && w->last.calls_cancelled >= w->cancelled;
}

struct health_wait {
    const char *target;
    int want;
    int last;
};

static bool health_is(void *arg)
{
    struct health_wait *w = arg;

    return gc_health_check(w->target, "", &w->last) == 0 && w->last == w->want;
}

/* ---- the four call kinds ---- */

Test(peers, unary_echoes_payload_and_backend_id)
{
    struct gc_opts o;
    struct gc_result r;

    gc_opts_init(&o, GC_UNARY);
    o.request_size = 100;
    gc_call(be[0].addr, &o, &r);
    assert_ok(&r);
    cr_assert_eq(r.replies, 1);
    cr_assert_eq(r.bytes_received, 100);
    cr_assert_eq(r.server_bytes, 100);
    cr_assert_str_eq(r.backend_id, "b0", "trailing x-backend-id");
    cr_assert_str_eq(r.initial_backend_id, "b0", "initial x-backend-id");
    cr_assert_str_eq(r.reply_backend_id, "b0", "EchoReply.backend_id");

    gc_call(be[1].addr, &o, &r);
    assert_ok(&r);
    cr_assert_str_eq(r.backend_id, "b1");
}

Test(peers, unary_response_size)
{
    struct gc_opts o;
    struct gc_result r;

    gc_opts_init(&o, GC_UNARY);
    o.request_size = 10;
    o.response_size = 5000;
    gc_call(be[0].addr, &o, &r);
    assert_ok(&r);
    cr_assert_eq(r.bytes_received, 5000);
    cr_assert_eq(r.server_bytes, 10);
}

Test(peers, client_stream_counts_requests)
{
    struct gc_opts o;
    struct gc_result r;

    gc_opts_init(&o, GC_CLIENT_STREAM);
    o.request_size = 1000;
    o.request_count = 5;
    o.response_size = 64;
    gc_call(be[0].addr, &o, &r);
    assert_ok(&r);
    cr_assert_eq(r.replies, 1);
    cr_assert_eq(r.bytes_received, 64);
    cr_assert_eq(r.server_bytes, 5000, "backend saw %llu bytes",
                 (unsigned long long)r.server_bytes);
    cr_assert_eq(r.last_seq, 5, "backend saw %u requests", r.last_seq);
    cr_assert_str_eq(r.backend_id, "b0");

    o.request_count = 0;
    o.response_size = 0;
    gc_call(be[0].addr, &o, &r);
    assert_ok(&r);
    cr_assert_eq(r.replies, 1);
    cr_assert_eq(r.last_seq, 0);
}

Test(peers, server_stream_sends_count_replies)
{
    struct gc_opts o;
    struct gc_result r;

    gc_opts_init(&o, GC_SERVER_STREAM);
    o.request_size = 10;
    o.response_size = 2000;
    o.response_count = 10;
    o.delay_ms = 5;
    gc_call(be[0].addr, &o, &r);
    assert_ok(&r);
    cr_assert_eq(r.replies, 10);
    cr_assert_eq(r.bytes_received, 20000);
    cr_assert(r.seq_ok);
    cr_assert_geq(r.elapsed_ms, 50, "10 replies 5 ms apart took %ld ms", r.elapsed_ms);
    cr_assert_str_eq(r.backend_id, "b0");
}

Test(peers, bidi_echoes_each_message)
{
    struct gc_opts o;
    struct gc_result r;

    gc_opts_init(&o, GC_BIDI);
    o.request_size = 300;
    o.request_count = 7;
    gc_call(be[1].addr, &o, &r);
    assert_ok(&r);
    cr_assert_eq(r.replies, 7);
    cr_assert_eq(r.bytes_received, 2100);
    cr_assert(r.seq_ok);
    cr_assert_eq(r.server_bytes, 2100);
    cr_assert_str_eq(r.backend_id, "b1");
}

/* ---- errors ---- */

Test(peers, fail_code_becomes_status)
{
    struct gc_opts o;
    struct gc_result r;

    gc_opts_init(&o, GC_UNARY);
    o.fail_code = 9;
    gc_call(be[0].addr, &o, &r);
    cr_assert_eq(r.status, 9, "status %d (%s)", r.status, r.message);
    cr_assert(strstr(r.message, "requested failure 9"), "message '%s'", r.message);
    cr_assert_str_eq(r.backend_id, "b0");
    cr_assert_eq(r.replies, 0);
}

Test(peers, unknown_method_is_unimplemented)
{
    struct gc_opts o;
    struct gc_result r;

    gc_opts_init(&o, GC_UNARY);
    o.method = "/unknown.Service/Method";
    gc_call(be[0].addr, &o, &r);
    cr_assert_eq(r.status, 12, "status %d (%s)", r.status, r.message);
    cr_assert_str_eq(r.backend_id, "b0");
}

Test(peers, nothing_listening_is_unavailable)
{
    struct gc_opts o;
    struct gc_result r;
    char target[32];

    snprintf(target, sizeof(target), "127.0.0.1:%d", sup_free_port());
    gc_opts_init(&o, GC_UNARY);
    gc_call(target, &o, &r);
    cr_assert_eq(r.status, 14, "status %d (%s)", r.status, r.message);
}

/* ---- health ---- */

Test(peers, health_check_and_set_health)
{
    int st = -1;

    cr_assert_eq(gc_health_check(be[0].addr, "", &st), 0);
    cr_assert_eq(st, SERVING);
    cr_assert_eq(gc_health_check(be[0].addr, "no.such.Service", &st), 5, "unknown -> NOT_FOUND");

    cr_assert_eq(gc_set_health(be[0].addr, "", NOT_SERVING), 0);
    cr_assert_eq(gc_health_check(be[0].addr, "", &st), 0);
    cr_assert_eq(st, NOT_SERVING);
    /* The other backend is independent. */
    cr_assert_eq(gc_health_check(be[1].addr, "", &st), 0);
    cr_assert_eq(st, SERVING);

    cr_assert_eq(gc_set_health(be[0].addr, "svc.A", SERVING), 0);
    cr_assert_eq(gc_health_check(be[0].addr, "svc.A", &st), 0);
    cr_assert_eq(st, SERVING);
    cr_assert_eq(gc_set_health(be[0].addr, "", SERVING), 0);
    cr_assert_eq(gc_health_check(be[0].addr, "", &st), 0);
    cr_assert_eq(st, SERVING);
}

struct watch_log {
    const char *target;
    const char *service;
    int flip_to; /* status to set after the first update */
    int seen[8];
    int n;
};

static int on_watch(void *arg, int status)
{
    struct watch_log *w = arg;

    w->seen[w->n++] = status;
    if (w->n == 1) {
        cr_assert_eq(gc_set_health(w->target, w->service, w->flip_to), 0);
        return 0;
    }
    return 1; /* second update: done */
}

Test(peers, health_watch_streams_updates)
{
    struct watch_log w = {be[0].addr, "", NOT_SERVING, {0}, 0};

    cr_assert_eq(gc_health_watch(be[0].addr, "", 5000, on_watch, &w), 0, "watch ended early");
    cr_assert_eq(w.n, 2);
    cr_assert_eq(w.seen[0], SERVING);
    cr_assert_eq(w.seen[1], NOT_SERVING);
}

Test(peers, health_watch_unknown_service_then_known)
{
    struct watch_log w = {be[0].addr, "later.Service", SERVING, {0}, 0};

    cr_assert_eq(gc_health_watch(be[0].addr, "later.Service", 5000, on_watch, &w), 0);
    cr_assert_eq(w.seen[0], SERVICE_UNKNOWN);
    cr_assert_eq(w.seen[1], SERVING);
}

Test(peers, signals_flip_health)
{
    struct health_wait w = {be[1].addr, NOT_SERVING, -1};

    cr_assert_eq(sup_signal(be[1].proc, SIGUSR1), 0);
    cr_assert(sup_poll(health_is, &w, 3000), "still %d after SIGUSR1", w.last);
    w.want = SERVING;
    cr_assert_eq(sup_signal(be[1].proc, SIGUSR2), 0);
    cr_assert(sup_poll(health_is, &w, 3000), "still %d after SIGUSR2", w.last);
}

Test(peers, initial_health_flag)
{
    struct sup_backend b;
    const char *extra[] = {"--health", "NOT_SERVING", NULL};
    int st = -1;

    cr_assert_eq(sup_start_backend(&b, "b2", extra), 0);
    cr_assert_eq(gc_health_check(b.addr, "", &st), 0);
    cr_assert_eq(st, NOT_SERVING);
}

/* ---- cancellation and deadlines ---- */

Test(peers, client_cancel_is_counted)
{
    struct stat_wait w = {.target = be[0].addr, .cancelled = 1};
    struct gc_opts o;
    struct gc_result r;

    gc_opts_init(&o, GC_SERVER_STREAM);
    o.response_count = 1000;
    o.response_size = 100;
    o.delay_ms = 10;
    o.cancel_after_replies = 2;
    gc_call(be[0].addr, &o, &r);
    cr_assert_eq(r.status, 1, "status %d (%s)", r.status, r.message);
    cr_assert_eq(r.replies, 2);
    cr_assert(sup_poll(cancelled_at_least, &w, 3000), "backend counted %llu cancels",
              (unsigned long long)w.last.calls_cancelled);
    cr_assert_eq(w.last.calls_cancelled, 1);
    cr_assert_eq(w.last.server_stream, 1);
    cr_assert_eq(w.last.calls_active, 0);
    cr_assert(sup_file_contains(be[0].proc->err_path, "ServerStream cancelled"));
}

Test(peers, deadline_exceeded)
{
    struct stat_wait w = {.target = be[0].addr, .cancelled = 1};
    struct gc_opts o;
    struct gc_result r;

    gc_opts_init(&o, GC_UNARY);
    o.delay_ms = 3000;
    o.timeout_ms = 200;
    gc_call(be[0].addr, &o, &r);
    cr_assert_eq(r.status, 4, "status %d (%s)", r.status, r.message);
    cr_assert_lt(r.elapsed_ms, 1500, "took %ld ms", r.elapsed_ms);
    cr_assert(sup_poll(cancelled_at_least, &w, 3000), "the backend never saw the deadline");
}

/* ---- sizes and concurrency ---- */

Test(peers, four_mib_both_ways)
{
    struct gc_opts o;
    struct gc_result r;

    gc_opts_init(&o, GC_UNARY);
    o.request_size = 4 * MiB;
    o.response_size = 4 * MiB;
    gc_call(be[0].addr, &o, &r);
    assert_ok(&r);
    cr_assert_eq(r.bytes_received, 4 * MiB);
    cr_assert_eq(r.server_bytes, 4 * MiB);

    gc_opts_init(&o, GC_BIDI);
    o.request_size = 4 * MiB;
    o.request_count = 3;
    gc_call(be[0].addr, &o, &r);
    assert_ok(&r);
    cr_assert_eq(r.replies, 3);
    cr_assert_eq(r.bytes_received, 12 * MiB);
}

Test(peers, sixteen_mib_both_ways)
{
    struct gc_opts o;
    struct gc_result r;

    gc_opts_init(&o, GC_UNARY);
    o.request_size = 16 * MiB;
    o.response_size = 16 * MiB;
    o.timeout_ms = 30000;
    gc_call(be[1].addr, &o, &r);
    assert_ok(&r);
    cr_assert_eq(r.bytes_received, 16 * MiB);
    cr_assert_eq(r.server_bytes, 16 * MiB);
}

Test(peers, concurrent_calls_on_one_connection)
{
    enum {
        N = 200
    };
    struct gc_result *res = calloc(N, sizeof(*res));
    struct gc_stats s;
    struct gc_opts o;
    int rc;

    cr_assert_eq(gc_stats(be[0].addr, true, &s), 0);
    gc_opts_init(&o, GC_UNARY);
    o.request_size = 100;
    rc = gc_concurrent(be[0].addr, N, &o, res);
    cr_assert_neq(rc, -1, "some call ended before all were in flight");
    for (int i = 0; i < N; i++) {
        assert_ok(&res[i]);
        cr_assert_str_eq(res[i].backend_id, "b0");
    }
    cr_assert_eq(rc, 0);
    cr_assert_eq(gc_stats(be[0].addr, false, &s), 0);
    cr_assert_eq(s.calls_started, N);
    cr_assert_eq(s.calls_completed, N);
    free(res);
}

Test(peers, stats_count_per_kind_and_reset)
{
    struct gc_stats s;
    struct gc_opts o;
    struct gc_result r;

    cr_assert_eq(gc_stats(be[1].addr, true, &s), 0);
    cr_assert_str_eq(s.backend_id, "b1");
    gc_opts_init(&o, GC_UNARY);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(gc_call(be[1].addr, &o, &r), 0);
    gc_opts_init(&o, GC_BIDI);
    o.request_count = 4;
    cr_assert_eq(gc_call(be[1].addr, &o, &r), 0);
    cr_assert_eq(gc_stats(be[1].addr, true, &s), 0);
    cr_assert_eq(s.unary, 3);
    cr_assert_eq(s.bidi, 1);
    cr_assert_eq(s.calls_started, 4);
    cr_assert_eq(s.calls_completed, 4);
    cr_assert_eq(s.messages_received, 7);
    cr_assert_eq(s.messages_sent, 7);
    cr_assert_eq(gc_stats(be[1].addr, false, &s), 0);
    cr_assert_eq(s.calls_started, 0, "reset");
}

/* ---- flow control: what the proxy's slow-reader test relies on ---- */

struct progress {
    const char *target;
    uint64_t sent;
    long since;
};

/* True once messages_sent has not moved for 500 ms. */
static bool sending_stalled(void *arg)
{
    struct progress *p = arg;
    struct gc_stats s;

    if (gc_stats(p->target, false, &s) != 0)
        return false;
    if (s.messages_sent != p->sent || p->since == 0) {
        p->sent = s.messages_sent;
        p->since = sup_now_ms();
        return false;
    }
    return sup_now_ms() - p->since >= 500;
}

Test(peers, backend_honours_flow_control_of_a_slow_reader)
{
    Sy__Test__EchoRequest req = SY__TEST__ECHO_REQUEST__INIT;
    struct progress p = {be[0].addr, 0, 0};
    struct stat_wait w = {.target = be[0].addr, .cancelled = 1};
    uint8_t buf[64];
    size_t len;
    int fd;

    req.response_size = 64 * 1024;
    req.response_count = 4000;
    len = sy__test__echo_request__pack(&req, buf);
    /* A 1 MiB window admits 15 replies of 64 KiB + framing; a send completes
     * only when flow control has let the whole message out. */
    fd = sup_h2_slow_reader(be[0].port, "/sy.test.Echo/ServerStream", buf, len, 1024 * 1024);
    cr_assert_geq(fd, 0, "raw HTTP/2 request failed");
    cr_assert(sup_poll(sending_stalled, &p, 10000), "backend kept sending");
    cr_assert_geq(p.sent, 10, "backend completed only %llu sends", (unsigned long long)p.sent);
    cr_assert_leq(p.sent, 16, "backend completed %llu sends of 64 KiB into a 1 MiB window",
                  (unsigned long long)p.sent);
    close(fd);
    cr_assert(sup_poll(cancelled_at_least, &w, 5000), "closing did not cancel the call");
}

/* ---- shutdown ---- */

Test(peers, sigterm_exits_zero)
{
    cr_assert_eq(sup_stop(be[0].proc, 5000), 0);
    cr_assert_eq(sup_stop(be[1].proc, 5000), 0);
}

struct bg_watch {
    const char *target;
    int updates;
    int rc;
};

static int count_update(void *arg, int status)
{
    (void)status;
    ((struct bg_watch *)arg)->updates++;
    return 0;
}

static void *watch_thread(void *arg)
{
    struct bg_watch *w = arg;

    w->rc = gc_health_watch(w->target, "", 20000, count_update, w);
    return NULL;
}

static bool watch_open(void *arg)
{
    struct gc_stats s;

    return gc_stats(arg, false, &s) == 0 && s.health_watches >= 1;
}

Test(peers, sigterm_with_open_watch_exits_zero)
{
    /* A Watch never ends by itself; the backend must end it on shutdown. */
    struct bg_watch w = {be[0].addr, 0, -1};
    pthread_t t;
    long t0;

    cr_assert_eq(pthread_create(&t, NULL, watch_thread, &w), 0);
    cr_assert(sup_poll(watch_open, (void *)be[0].addr, 5000), "watch never reached the backend");
    t0 = sup_now_ms();
    cr_assert_eq(sup_stop(be[0].proc, 5000), 0);
    cr_assert_lt(sup_now_ms() - t0, 2000, "shutdown took %ld ms", sup_now_ms() - t0);
    pthread_join(t, NULL);
    cr_assert_eq(w.updates, 1);
    cr_assert_neq(w.rc, 0, "the watch should end with an error status");
}
