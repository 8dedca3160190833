/* Unit tests of the call spine without sockets: proxy/call.c's state machine
 * and decisions, driven through its seams — a fake client side (struct
 * proxy_call_side_ops) and fake attempts (proxy_call_env.start_attempt), whose
 * reports the tests make by hand — plus what an attempt's end means
 * (proxy_attempt_result_of, proxy_call_verdict).
 * SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <event2/buffer.h>
#include <event2/event.h>

#include "balancer/bal.h"
#include "conf/conf.h"
#include "core/grpc.h"
#include "proxy/call.h"
#include "proxy/conn.h"

/* ---- the fake client side ---- */

struct side_log {
    int heads;
    char status[8];  /* :status of the last head */
    int grpc_status; /* from the last head (trailers-only), -1 none */
    char grpc_message[256];
    bool head_end; /* the last head ended the response */
    int resumes;
    int reset; /* RST_STREAM code, -1 none */
    size_t conn_credit, stream_credit;
};

static struct side_log side;

static int side_send_head(struct proxy_call_side *sd, const nghttp2_nv *nv, size_t n, bool end)
{
    (void)sd;
    side.heads++;
    side.head_end = end;
    side.grpc_status = -1;
    for (size_t i = 0; i < n; i++) {
        if (proxy_nv_is(&nv[i], ":status", 7))
            snprintf(side.status, sizeof(side.status), "%.*s", (int)nv[i].valuelen,
                     (const char *)nv[i].value);
        if (proxy_nv_is(&nv[i], "grpc-status", 11))
            side.grpc_status = grpc_status_parse(nv[i].value, nv[i].valuelen);
        if (proxy_nv_is(&nv[i], "grpc-message", 12))
            snprintf(side.grpc_message, sizeof(side.grpc_message), "%.*s", (int)nv[i].valuelen,
                     (const char *)nv[i].value);
    }
    return 0;
}

static void side_resume(struct proxy_call_side *sd)
{
    (void)sd;
    side.resumes++;
}

static void side_reset(struct proxy_call_side *sd, uint32_t h2err)
{
    (void)sd;
    side.reset = (int)h2err;
}

static void side_credit(struct proxy_call_side *sd, size_t n, bool stream)
{
    (void)sd;
    if (stream)
        side.stream_credit += n;
    else
        side.conn_credit += n;
}

static const struct proxy_call_side_ops side_ops = {
    .send_head = side_send_head,
    .resume = side_resume,
    .reset = side_reset,
    .credit = side_credit,
};

/* ---- fake attempts ---- */

#define MAX_FAKE 8
static struct proxy_attempt *started[MAX_FAKE];
static uint32_t started_ep[MAX_FAKE];
static int nstarted;

static int fake_start(struct proxy_attempt *a, struct proxy_pool *pool, struct proxy_head *req,
                      uint32_t ep_id, const char **why)
{
    (void)pool;
    (void)why;
    cr_assert_lt(nstarted, MAX_FAKE);
    a->req = req;
    a->ep_id = ep_id;
    a->state = PROXY_ATTEMPT_OPEN; /* no stream behind it: cancel and credit do nothing */
    started[nstarted] = a;
    started_ep[nstarted++] = ep_id;
    return 0;
}

/* ---- a filter that answers /test.Local/Answer itself ---- */

static int done_calls, response_heads;

static enum proxy_filter_rc local_head(struct proxy_call *call, void *st, void *ws)
{
    size_t len;
    const uint8_t *p = proxy_call_path(call, &len);

    (void)st;
    (void)ws;
    if (len != 18 || memcmp(p, "/test.Local/Answer", 18) != 0)
        return PROXY_FILTER_CONTINUE;
    proxy_call_respond_head(call);
    return PROXY_FILTER_STOP;
}

static void local_end(struct proxy_call *call, void *st, void *ws)
{
    static const uint8_t msg[] = {0, 0, 0, 0, 3, 'a', 'b', 'c'};

    (void)st;
    (void)ws;
    proxy_call_respond_data(call, msg, sizeof(msg));
    proxy_call_respond_data(call, msg, sizeof(msg));
    proxy_call_respond_end(call, GRPC_OK, NULL);
}

static enum proxy_filter_rc count_head(struct proxy_call *call, void *st, void *ws,
                                       struct proxy_head *h, bool end)
{
    (void)call;
    (void)st;
    (void)ws;
    (void)h;
    (void)end;
    response_heads++;
    return PROXY_FILTER_CONTINUE;
}

static void count_done(struct proxy_call *call, void *st, void *ws)
{
    (void)call;
    (void)st;
    (void)ws;
    done_calls++;
}

static const struct proxy_filter local_filter = {
    .name = "local",
    .on_request_head = local_head,
    .on_request_end = local_end,
    .on_response_head = count_head,
    .on_done = count_done,
};

/* ---- a filter that rewrites bodies, moves trailers into the body, holds
 * heads and tags each attempt's head; it acts on calls whose :path ends in
 * /Tx only ---- */

static bool is_tx(struct proxy_call *call)
{
    size_t len;
    const uint8_t *p = proxy_call_path(call, &len);

    return len > 3 && memcmp(p + len - 3, "/Tx", 3) == 0;
}

static bool tx_request(struct proxy_call *call, void *st, void *ws, const uint8_t *p, size_t n,
                       bool end)
{
    (void)st;
    (void)ws;
    (void)end;
    if (!is_tx(call))
        return false;
    /* doubles every byte */
    for (size_t i = 0; i < n; i++) {
        proxy_call_req_emit(call, &p[i], 1);
        proxy_call_req_emit(call, &p[i], 1);
    }
    return true;
}

static enum proxy_filter_rc tx_head(struct proxy_call *call, void *st, void *ws,
                                    struct proxy_head *h, bool end)
{
    (void)st;
    (void)ws;
    (void)end;
    if (is_tx(call))
        proxy_head_set(h, "content-type", 12, "application/tx", 14);
    return PROXY_FILTER_CONTINUE;
}

static bool tx_response(struct proxy_call *call, void *st, void *ws, const uint8_t *p, size_t n)
{
    (void)st;
    (void)ws;
    if (!is_tx(call))
        return false;
    proxy_call_resp_emit(call, (const uint8_t *)"<", 1);
    proxy_call_resp_emit(call, p, n);
    proxy_call_resp_emit(call, (const uint8_t *)">", 1);
    return true;
}

static void tx_trailers(struct proxy_call *call, void *st, void *ws, struct proxy_head *t)
{
    (void)st;
    (void)ws;
    if (!is_tx(call))
        return;
    proxy_call_resp_emit(call, (const uint8_t *)"T", 1);
    proxy_head_clear(t);
}

static void tx_attempt(struct proxy_call *call, void *st, void *ws, const struct proxy_attempt *a,
                       struct proxy_head *head)
{
    char v[16];

    (void)call;
    (void)st;
    (void)ws;
    snprintf(v, sizeof(v), "%u", a->number);
    proxy_head_set(head, "x-attempt", 9, v, strlen(v));
}

static const struct proxy_filter tx_filter = {
    .name = "tx",
    .on_request_data = tx_request,
    .on_response_head = tx_head,
    .on_response_data = tx_response,
    .on_response_trailers = tx_trailers,
    .on_attempt_start = tx_attempt,
};
static const struct proxy_filter *const chain[] = {&local_filter, &tx_filter};
static void *filter_ws[2];
static size_t fstate_off[2];

/* ---- environment: a conf, a snapshot, pools without sockets ---- */

static struct conf *conf;
static struct bal_snapshot *snap;
static struct event_base *base;
static struct proxy_flusher fl;
static struct proxy_be_env be;
static struct proxy_pools pools;
#define NCLUSTERS 5
static struct proxy_cluster_state cs[NCLUSTERS];
static struct proxy_call_env env;

static const char *const CONF_TEXT =
    "[proxy]\nlisten = 127.0.0.1:1\nstream_idle_timeout = 300ms\n"
    "[admin]\nlisten = off\n"
    "[cluster.echo]\ntargets = 127.0.0.1:9, 127.0.0.1:10, 127.0.0.1:11\nroutes = /sy.test.Echo/\n"
    "health_check = off\nmax_retries = 2\n"
    "[cluster.empty]\ntargets = 127.0.0.1:12\nroutes = /sy.test.Empty/\nhealth_check = off\n"
    "[cluster.retry]\ntargets = 127.0.0.1:13, 127.0.0.1:14, 127.0.0.1:15\n"
    "routes = /sy.test.Retry/\nhealth_check = off\nretry_on = unavailable\n"
    "retry_initial_backoff = 10ms\nretry_max_backoff = 20ms\nretry_buffer = 64\nmax_timeout = 1s\n"
    "[cluster.hedge]\ntargets = 127.0.0.1:16, 127.0.0.1:17, 127.0.0.1:18\n"
    "routes = /sy.test.Hedge/\nhealth_check = off\nretry_on = unavailable\nhedge_delay = 50ms\n"
    "[cluster.timed]\ntargets = 127.0.0.1:19\nroutes = /sy.test.Timed/\nhealth_check = off\n"
    "timeout = 2s\n";

static void add_endpoint(uint32_t cluster, uint32_t id, int port)
{
    struct bal_endpoint ep = {0};
    struct sockaddr_in *sin = (struct sockaddr_in *)&ep.addr;

    ep.id = id;
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, "127.0.0.1", &sin->sin_addr);
    ep.addrlen = sizeof(*sin);
    bal_addr_str((struct sockaddr *)&ep.addr, ep.addr_str, sizeof(ep.addr_str));
    ep.in_rotation = true;
    bal_snapshot_add_endpoint(snap, cluster, &ep);
}

static void setup(void)
{
    char err[512];

    cr_assert_eq(conf_load_string(CONF_TEXT, "test.ini", &conf, err, sizeof(err)), 0, "%s", err);
    snap = bal_snapshot_new(conf, 1);
    for (uint32_t i = 0; i < 3; i++)
        add_endpoint(0, i, 9 + (int)i); /* cluster "empty" keeps none */
    for (uint32_t i = 0; i < 3; i++) {
        add_endpoint(2, 10 + i, 13 + (int)i);
        add_endpoint(3, 20 + i, 16 + (int)i);
    }
    add_endpoint(4, 30, 19);
    bal_snapshot_seal(snap);
    base = event_base_new();
    proxy_flusher_init(&fl, base);
    proxy_be_env_init(&be, base, &fl);
    proxy_pools_init(&pools, &be);
    memset(cs, 0, sizeof(cs));
    for (size_t i = 0; i < NCLUSTERS; i++)
        bal_lb_init(&cs[i].lb, &snap->clusters[i], 42 + i);
    env = (struct proxy_call_env){
        .base = base,
        .snap = snap,
        .cs = cs,
        .ncs = NCLUSTERS,
        .nworkers = 1,
        .pools = &pools,
        .filters = chain,
        .nfilters = 2,
        .filter_ws = filter_ws,
        .fstate_off = fstate_off,
        .fstate_size = 0,
        .alog_fd = -1,
        .start_attempt = fake_start,
    };
    memset(&side, 0, sizeof(side));
    side.reset = -1;
    side.grpc_status = -1;
    nstarted = 0;
    done_calls = response_heads = 0;
}

static void teardown(void)
{
    proxy_call_env_deinit(&env);
    for (size_t i = 0; i < NCLUSTERS; i++)
        bal_lb_deinit(&cs[i].lb);
    proxy_pools_deinit(&pools);
    proxy_be_env_deinit(&be);
    proxy_flusher_deinit(&fl);
    event_base_free(base);
    bal_snapshot_unref(snap);
    conf_free(conf);
}

TestSuite(call, .init = setup, .fini = teardown, .timeout = 10);

/* ---- helpers ---- */

static void field(struct proxy_call *call, const char *name, const char *value)
{
    proxy_call_head_add(call, name, strlen(name), value, strlen(value));
}

/* A new call with a gRPC request head for |path| (method POST unless
 * |method|), plus |extra_name|: |extra_value| when not NULL. */
static struct proxy_call *call_for(const char *path, const char *method, const char *extra_name,
                                   const char *extra_value)
{
    struct proxy_call *call = proxy_call_new(&env, &side_ops, NULL, 1, "test-peer");

    field(call, ":method", method != NULL ? method : "POST");
    field(call, ":scheme", "http");
    field(call, ":path", path);
    field(call, ":authority", "switchyard.test");
    field(call, "content-type", "application/grpc");
    field(call, "te", "trailers");
    if (extra_name != NULL)
        field(call, extra_name, extra_value);
    return call;
}

/* Pulls everything the client side may send now into |out|; returns eof. */
static bool pull(struct proxy_call *call, struct evbuffer *out)
{
    bool eof = false;
    size_t n = proxy_call_resp_avail(call, &eof);

    proxy_call_resp_write(call, out, n);
    return eof;
}

static int trailer_status(struct proxy_call *call)
{
    const struct proxy_head *t = proxy_call_resp_trailers(call);
    const nghttp2_nv *f = proxy_head_get(t, "grpc-status", 11);

    return f != NULL ? grpc_status_parse(f->value, f->valuelen) : -1;
}

static void backend_head(struct proxy_attempt *a, bool end, const char *grpc_status)
{
    struct proxy_head h = {0};

    proxy_head_add_static(&h, ":status", "200");
    proxy_head_add_static(&h, "content-type", "application/grpc");
    if (grpc_status != NULL)
        proxy_head_add_static(&h, "grpc-status", grpc_status);
    a->ops->on_head(a, &h, end);
    proxy_head_deinit(&h);
}

static void backend_trailers(struct proxy_attempt *a, const char *grpc_status)
{
    struct proxy_head h = {0};

    proxy_head_add_static(&h, "grpc-status", grpc_status);
    a->ops->on_trailers(a, &h);
    proxy_head_deinit(&h);
}

static void backend_end(struct proxy_attempt *a, enum proxy_be_end end)
{
    struct proxy_attempt_result r = proxy_attempt_result_of(end, 0, "test says so");

    a->ops->on_end(a, &r);
}

static const uint8_t message[] = {0, 0, 0, 0, 4, 'p', 'i', 'n', 'g'};

/* ---- answers before routing ---- */

Test(call, a_method_other_than_post_gets_405)
{
    struct proxy_call *call = call_for("/sy.test.Echo/Unary", "GET", NULL, NULL);

    proxy_call_head_done(call, true);
    cr_assert_str_eq(side.status, "405");
    cr_assert(side.head_end);
    cr_assert_eq(proxy_call_state(call), PROXY_CALL_FINAL);
    cr_assert_eq(nstarted, 0);
    proxy_call_side_closed(call, 0);
    cr_assert_eq(done_calls, 1);
}

Test(call, another_content_type_gets_415)
{
    struct proxy_call *call = proxy_call_new(&env, &side_ops, NULL, 1, "p");

    field(call, ":method", "POST");
    field(call, ":path", "/sy.test.Echo/Unary");
    field(call, "content-type", "application/json");
    proxy_call_head_done(call, true);
    cr_assert_str_eq(side.status, "415");
    proxy_call_side_closed(call, 0);
}

Test(call, a_head_over_max_header_list_size_gets_resource_exhausted)
{
    static char big[70 * 1024];
    struct proxy_call *call;

    memset(big, 'x', sizeof(big) - 1);
    call = call_for("/sy.test.Echo/Unary", NULL, "x-big", big);
    proxy_call_head_done(call, true);
    cr_assert_eq(side.grpc_status, GRPC_RESOURCE_EXHAUSTED);
    cr_assert(side.head_end, "trailers-only");
    cr_assert_eq(nstarted, 0);
    proxy_call_side_closed(call, 0);
}

Test(call, grpc_timeout_zero_is_deadline_exceeded_before_routing)
{
    struct proxy_call *call = call_for("/sy.test.Echo/Unary", NULL, "grpc-timeout", "0m");

    proxy_call_head_done(call, true);
    cr_assert_eq(side.grpc_status, GRPC_DEADLINE_EXCEEDED);
    cr_assert_eq(nstarted, 0, "an expired call must not reach a backend");
    proxy_call_side_closed(call, 0);
}

Test(call, a_non_canonical_path_is_refused_before_routing)
{
    struct proxy_call *call = call_for("/sy.test.Echo/../x.Svc/M", NULL, NULL, NULL);

    proxy_call_head_done(call, true);
    cr_assert_eq(side.grpc_status, GRPC_UNIMPLEMENTED);
    cr_assert_eq(nstarted, 0);
    proxy_call_side_closed(call, 0);
}

Test(call, an_unknown_route_is_unimplemented)
{
    struct proxy_call *call = call_for("/other.Svc/Method", NULL, NULL, NULL);

    proxy_call_head_done(call, true);
    cr_assert_eq(side.grpc_status, GRPC_UNIMPLEMENTED);
    cr_assert(strstr(side.grpc_message, "no route") != NULL, "%s", side.grpc_message);
    proxy_call_side_closed(call, 0);
}

Test(call, a_cluster_without_endpoints_is_unavailable_naming_it)
{
    struct proxy_call *call = call_for("/sy.test.Empty/Unary", NULL, NULL, NULL);

    proxy_call_head_done(call, true);
    cr_assert_eq(side.grpc_status, GRPC_UNAVAILABLE);
    cr_assert(strstr(side.grpc_message, "empty") != NULL, "%s", side.grpc_message);
    cr_assert_eq(response_heads, 1, "filters see switchyard's own answers too");
    proxy_call_side_closed(call, 0);
}

/* ---- a filter's own answer ---- */

Test(call, a_filter_answers_with_a_streamed_body_and_trailers)
{
    struct proxy_call *call = call_for("/test.Local/Answer", NULL, NULL, NULL);
    struct evbuffer *out = evbuffer_new();

    proxy_call_head_done(call, false);
    cr_assert_eq(proxy_call_state(call), PROXY_CALL_STREAMING);
    cr_assert_str_eq(side.status, "200");
    cr_assert_not(side.head_end);
    proxy_call_req_data(call, message, sizeof(message));
    cr_assert_eq(side.conn_credit, sizeof(message));
    proxy_call_req_end(call);
    cr_assert_eq(proxy_call_state(call), PROXY_CALL_FINAL);
    cr_assert(pull(call, out));
    cr_assert_eq(evbuffer_get_length(out), 16);
    cr_assert_eq(trailer_status(call), GRPC_OK);
    cr_assert_eq(nstarted, 0);
    proxy_call_side_closed(call, 0);
    cr_assert_eq(done_calls, 1);
    evbuffer_free(out);
}

/* ---- routed calls and their attempts ---- */

Test(call, a_routed_call_commits_on_response_headers_and_streams)
{
    struct proxy_call *call = call_for("/sy.test.Echo/Unary", NULL, NULL, NULL);
    struct evbuffer *out = evbuffer_new();
    struct proxy_attempt *a;

    proxy_call_head_done(call, false);
    cr_assert_eq(proxy_call_state(call), PROXY_CALL_ROUTED);
    cr_assert_eq(nstarted, 1);
    a = started[0];
    proxy_call_req_data(call, message, sizeof(message));
    proxy_call_req_end(call);
    {
        /* The attempt pulls the request; the client's stream window comes
         * back as the bytes are written on. */
        bool eof = false;
        struct evbuffer *req = evbuffer_new();
        size_t n = a->ops->req_avail(a, &eof);

        cr_assert_eq(n, sizeof(message));
        cr_assert(eof);
        cr_assert_eq(side.stream_credit, 0);
        a->ops->req_write(a, req, n);
        cr_assert_eq(side.stream_credit, sizeof(message));
        evbuffer_free(req);
    }
    backend_head(a, false, NULL);
    cr_assert_eq(proxy_call_state(call), PROXY_CALL_STREAMING);
    cr_assert_eq(side.heads, 1);
    a->ops->on_data(a, message, sizeof(message));
    cr_assert_not(pull(call, out), "no end before the trailers");
    backend_trailers(a, "0");
    cr_assert(pull(call, out));
    cr_assert_eq(evbuffer_get_length(out), sizeof(message));
    cr_assert_eq(trailer_status(call), 0);
    backend_end(a, PROXY_BE_END_COMPLETE);
    cr_assert_eq(side.reset, -1);
    proxy_call_side_closed(call, 0);
    cr_assert_eq(done_calls, 1);
    evbuffer_free(out);
}

Test(call, an_attempt_the_backend_never_saw_is_retried_on_another_endpoint)
{
    struct proxy_call *call = call_for("/sy.test.Echo/Unary", NULL, NULL, NULL);

    proxy_call_head_done(call, true);
    cr_assert_eq(nstarted, 1);
    backend_end(started[0], PROXY_BE_END_NOT_SENT);
    cr_assert_eq(nstarted, 2, "not retried");
    cr_assert_neq(started_ep[1], started_ep[0], "retried on the same endpoint");
    backend_end(started[1], PROXY_BE_END_REFUSED);
    cr_assert_eq(nstarted, 3, "a refused stream was not retried");
    /* max_retries = 2: three tries in all. */
    backend_end(started[2], PROXY_BE_END_NOT_SENT);
    cr_assert_eq(nstarted, 3);
    cr_assert_eq(side.grpc_status, GRPC_UNAVAILABLE);
    cr_assert_eq(proxy_call_state(call), PROXY_CALL_FINAL);
    proxy_call_side_closed(call, 0);
}

Test(call, an_attempt_the_backend_saw_is_never_retried)
{
    struct proxy_call *call = call_for("/sy.test.Echo/Unary", NULL, NULL, NULL);

    proxy_call_head_done(call, true);
    backend_end(started[0], PROXY_BE_END_LOST);
    cr_assert_eq(nstarted, 1, "a request the backend saw was sent again");
    cr_assert_eq(side.grpc_status, GRPC_UNAVAILABLE);
    proxy_call_side_closed(call, 0);
}

Test(call, a_refusal_after_request_bytes_left_is_passed_on)
{
    struct proxy_call *call = call_for("/sy.test.Echo/Unary", NULL, NULL, NULL);
    struct evbuffer *req = evbuffer_new();
    struct proxy_attempt *a;
    bool eof;

    proxy_call_head_done(call, false);
    a = started[0];
    proxy_call_req_data(call, message, sizeof(message));
    a->ops->req_write(a, req, a->ops->req_avail(a, &eof));
    a->req_sent = sizeof(message); /* what attempt.c counts as it writes */
    backend_end(a, PROXY_BE_END_REFUSED);
    cr_assert_eq(nstarted, 1, "the request bytes are gone: it cannot be sent again");
    cr_assert_eq(side.reset, NGHTTP2_REFUSED_STREAM);
    proxy_call_side_closed(call, NGHTTP2_REFUSED_STREAM);
    evbuffer_free(req);
}

Test(call, a_failure_between_messages_ends_with_trailers_after_the_body)
{
    struct proxy_call *call = call_for("/sy.test.Echo/ServerStream", NULL, NULL, NULL);
    struct evbuffer *out = evbuffer_new();
    struct proxy_attempt *a;

    proxy_call_head_done(call, true);
    a = started[0];
    backend_head(a, false, NULL);
    a->ops->on_data(a, message, sizeof(message));
    backend_end(a, PROXY_BE_END_RESET);
    cr_assert_eq(side.reset, -1);
    cr_assert(pull(call, out));
    cr_assert_eq(evbuffer_get_length(out), sizeof(message), "the whole message still goes");
    cr_assert_eq(trailer_status(call), GRPC_UNAVAILABLE);
    proxy_call_side_closed(call, 0);
    evbuffer_free(out);
}

Test(call, a_failure_inside_a_message_resets_the_stream)
{
    struct proxy_call *call = call_for("/sy.test.Echo/ServerStream", NULL, NULL, NULL);
    struct proxy_attempt *a;

    proxy_call_head_done(call, true);
    a = started[0];
    backend_head(a, false, NULL);
    a->ops->on_data(a, message, sizeof(message) - 2);
    backend_end(a, PROXY_BE_END_LOST);
    cr_assert_eq(side.reset, NGHTTP2_INTERNAL_ERROR,
                 "trailers after half a message would read as a truncated message");
    proxy_call_side_closed(call, NGHTTP2_INTERNAL_ERROR);
}

Test(call, trailers_only_from_the_backend_pass_through)
{
    struct proxy_call *call = call_for("/sy.test.Echo/Unary", NULL, NULL, NULL);

    proxy_call_head_done(call, true);
    backend_head(started[0], true, "5");
    cr_assert(side.head_end);
    cr_assert_eq(side.grpc_status, 5);
    cr_assert_eq(proxy_call_state(call), PROXY_CALL_FINAL);
    backend_end(started[0], PROXY_BE_END_COMPLETE);
    proxy_call_side_closed(call, 0);
}

Test(call, request_bytes_after_the_end_are_credited_at_once)
{
    struct proxy_call *call = call_for("/sy.test.Echo/Unary", NULL, NULL, NULL);

    proxy_call_head_done(call, false);
    backend_head(started[0], true, "0");
    proxy_call_req_data(call, message, sizeof(message));
    cr_assert_eq(side.conn_credit, sizeof(message));
    cr_assert_eq(side.stream_credit, sizeof(message), "nobody will send them on");
    proxy_call_side_closed(call, 0);
}

Test(call, the_client_going_away_cancels_the_attempt_and_counts_cancelled)
{
    struct proxy_call *call = call_for("/sy.test.Echo/Unary", NULL, NULL, NULL);
    struct proxy_call_info ci;

    proxy_call_head_done(call, true);
    cr_assert_eq(started[0]->state, PROXY_ATTEMPT_OPEN);
    proxy_call_info(call, &ci);
    cr_assert_eq(ci.attempts, 1);
    proxy_call_side_closed(call, NGHTTP2_CANCEL);
    cr_assert_eq(started[0]->state, PROXY_ATTEMPT_IDLE, "the attempt was not cancelled");
    cr_assert_eq(done_calls, 1);
}

/* ---- timers ---- */

static void run_for(int ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};

    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
}

Test(call, the_deadline_fails_the_call_and_cancels_the_attempt)
{
    struct proxy_call *call = call_for("/sy.test.Echo/Unary", NULL, "grpc-timeout", "50m");

    proxy_call_head_done(call, true);
    run_for(150);
    cr_assert_eq(side.grpc_status, GRPC_DEADLINE_EXCEEDED);
    cr_assert_eq(started[0]->state, PROXY_ATTEMPT_IDLE);
    proxy_call_side_closed(call, 0);
}

Test(call, a_stream_moving_no_byte_is_reset_at_stream_idle_timeout)
{
    struct proxy_call *call = call_for("/sy.test.Echo/ServerStream", NULL, NULL, NULL);
    struct proxy_attempt *a;

    proxy_call_head_done(call, true);
    a = started[0];
    backend_head(a, false, NULL);
    a->ops->on_data(a, message, sizeof(message)); /* the client never takes it */
    run_for(400);
    cr_assert_eq(side.reset, NGHTTP2_CANCEL, "a stalled stream outlived stream_idle_timeout");
    cr_assert_eq(a->state, PROXY_ATTEMPT_IDLE, "the backend stream was not cancelled");
    proxy_call_side_closed(call, NGHTTP2_CANCEL);
}

Test(call, a_quiet_backend_gets_the_call_ended_with_unavailable)
{
    struct proxy_call *call = call_for("/sy.test.Echo/ServerStream", NULL, NULL, NULL);

    proxy_call_head_done(call, true);
    backend_head(started[0], false, NULL);
    run_for(400);
    cr_assert_eq(side.reset, -1);
    cr_assert_eq(trailer_status(call), GRPC_UNAVAILABLE);
    proxy_call_side_closed(call, 0);
}

/* ---- what an attempt's end means ---- */

Test(verdict, each_way_an_attempt_ends)
{
    static const struct {
        enum proxy_be_end end;
        bool reached;
    } ends[] = {
        {PROXY_BE_END_COMPLETE, true}, {PROXY_BE_END_NOT_SENT, false},
        {PROXY_BE_END_REFUSED, false}, {PROXY_BE_END_RESET, true},
        {PROXY_BE_END_LOST, true},
    };

    for (size_t i = 0; i < sizeof(ends) / sizeof(ends[0]); i++) {
        struct proxy_verdict_in in = {
            .r = proxy_attempt_result_of(ends[i].end, 0, "x"),
            .replayable = true,
            .tries = 1,
            .max_tries = 3,
        };
        enum proxy_verdict v = proxy_call_verdict(&in);

        cr_assert_eq(in.r.reached, ends[i].reached, "%s", proxy_be_end_name(ends[i].end));
        if (ends[i].end == PROXY_BE_END_COMPLETE)
            cr_assert_eq(v, PROXY_VERDICT_DONE);
        else if (!ends[i].reached)
            cr_assert_eq(v, PROXY_VERDICT_RETRY, "%s", proxy_be_end_name(ends[i].end));
        else
            cr_assert_eq(v, PROXY_VERDICT_FAIL, "%s", proxy_be_end_name(ends[i].end));
        /* Committed (response headers sent): never anything but fail. */
        in.committed = true;
        if (ends[i].end != PROXY_BE_END_COMPLETE)
            cr_assert_eq(proxy_call_verdict(&in), PROXY_VERDICT_FAIL);
        /* Out of tries. */
        in.committed = false;
        in.tries = 3;
        if (ends[i].end != PROXY_BE_END_COMPLETE)
            cr_assert_eq(proxy_call_verdict(&in), PROXY_VERDICT_FAIL);
        /* Unseen, but its request bytes are gone: refuse so the client retries. */
        in.tries = 1;
        in.replayable = false;
        if (!ends[i].reached)
            cr_assert_eq(proxy_call_verdict(&in), PROXY_VERDICT_REFUSE);
    }
}

/* ---- the filter hooks that transform bodies ---- */

static const char *field_value(const struct proxy_head *h, const char *name, char *buf, size_t len)
{
    const nghttp2_nv *f = proxy_head_get(h, name, strlen(name));

    if (f == NULL)
        return NULL;
    snprintf(buf, len, "%.*s", (int)f->valuelen, (const char *)f->value);
    return buf;
}

Test(call, filters_transform_bodies_and_turn_trailers_into_body_bytes)
{
    struct proxy_call *call = call_for("/sy.test.Echo/Tx", NULL, NULL, NULL);
    struct evbuffer *out = evbuffer_new(), *req = evbuffer_new();
    struct proxy_attempt *a;
    char body[64], v[16];
    bool eof;
    size_t n;

    proxy_call_head_done(call, false);
    a = started[0];
    cr_assert_str_eq(field_value(a->req, "x-attempt", v, sizeof(v)), "0",
                     "the attempt's own head carries what the filter set");
    cr_assert_null(proxy_head_get(proxy_call_req_head(call), "x-attempt", 9),
                   "the call's head is not the attempt's");
    proxy_call_req_data(call, (const uint8_t *)"ab", 2);
    n = a->ops->req_avail(a, &eof);
    cr_assert_eq(n, 4, "the request filter doubles each byte");
    a->ops->req_write(a, req, n);
    cr_assert_eq(side.stream_credit, 2, "credit counts the bytes the client sent");
    backend_head(a, false, NULL);
    cr_assert_str_eq(side.status, "200");
    a->ops->on_data(a, message, sizeof(message));
    backend_trailers(a, "0");
    cr_assert(pull(call, out));
    n = evbuffer_get_length(out);
    cr_assert_eq(n, sizeof(message) + 3);
    evbuffer_remove(out, body, n);
    cr_assert_eq(body[0], '<');
    cr_assert_eq(body[n - 2], '>');
    cr_assert_eq(body[n - 1], 'T', "the trailers became body bytes");
    cr_assert_eq(proxy_call_resp_trailers(call)->n, 0, "and left no HTTP trailers");
    backend_end(a, PROXY_BE_END_COMPLETE);
    proxy_call_side_closed(call, 0);
    evbuffer_free(out);
    evbuffer_free(req);
}

Test(call, each_retry_gets_a_head_of_its_own)
{
    struct proxy_call *call = call_for("/sy.test.Echo/Tx", NULL, NULL, NULL);
    char v[16];

    proxy_call_head_done(call, true);
    backend_end(started[0], PROXY_BE_END_NOT_SENT);
    cr_assert_eq(nstarted, 2);
    cr_assert_str_eq(field_value(started[1]->req, "x-attempt", v, sizeof(v)), "1");
    proxy_call_side_closed(call, 0);
}

/* ---- retry policies and hedging (gRFC A6) ---- */

static void backend_head_with(struct proxy_attempt *a, const char *grpc_status,
                              const char *pushback)
{
    struct proxy_head h = {0};

    proxy_head_add_static(&h, ":status", "200");
    proxy_head_add_static(&h, "content-type", "application/grpc");
    proxy_head_add_static(&h, "grpc-status", grpc_status);
    if (pushback != NULL)
        proxy_head_add_static(&h, "grpc-retry-pushback-ms", pushback);
    a->ops->on_head(a, &h, true);
    proxy_head_deinit(&h);
}

/* Everything attempt |a| would send of the request now. */
static size_t drain_request(struct proxy_attempt *a, char *buf, size_t len)
{
    struct evbuffer *out = evbuffer_new();
    bool eof;
    size_t n = a->ops->req_avail(a, &eof);

    a->req_sent += n; /* as attempt.c counts before handing over */
    a->ops->req_write(a, out, n);
    n = evbuffer_remove(out, buf, len) < 0 ? 0 : n;
    evbuffer_free(out);
    return n;
}

Test(call, a_retryable_trailers_only_answer_is_retried_after_a_backoff_with_the_request)
{
    struct proxy_call *call = call_for("/sy.test.Retry/M", NULL, NULL, NULL);
    char buf[64], v[16];

    proxy_call_head_done(call, false);
    proxy_call_req_data(call, message, sizeof(message));
    proxy_call_req_end(call);
    cr_assert_eq(drain_request(started[0], buf, sizeof(buf)), sizeof(message));
    backend_head_with(started[0], "14", NULL);
    cr_assert_eq(side.heads, 0, "the UNAVAILABLE reached the client");
    cr_assert_eq(nstarted, 1, "retried without a backoff");
    run_for(100);
    cr_assert_eq(nstarted, 2, "not retried after the backoff");
    cr_assert_str_eq(field_value(started[1]->req, "grpc-previous-rpc-attempts", v, sizeof(v)), "1");
    cr_assert_eq(drain_request(started[1], buf, sizeof(buf)), sizeof(message),
                 "the retry must send the whole request again");
    cr_assert(memcmp(buf, message, sizeof(message)) == 0);
    backend_head(started[1], true, "0");
    cr_assert_eq(side.grpc_status, 0);
    cr_assert_eq(cs[2].retries[GRPC_UNAVAILABLE], 1);
    proxy_call_side_closed(call, 0);
}

Test(call, a_negative_pushback_stops_the_retries)
{
    struct proxy_call *call = call_for("/sy.test.Retry/M", NULL, NULL, NULL);

    proxy_call_head_done(call, true);
    backend_head_with(started[0], "14", "-1");
    run_for(60);
    cr_assert_eq(nstarted, 1);
    cr_assert_eq(side.grpc_status, 14, "the backend's answer goes to the client");
    proxy_call_side_closed(call, 0);
}

Test(call, a_status_not_in_retry_on_is_final)
{
    struct proxy_call *call = call_for("/sy.test.Retry/M", NULL, NULL, NULL);

    proxy_call_head_done(call, true);
    backend_head_with(started[0], "5", NULL);
    run_for(60);
    cr_assert_eq(nstarted, 1);
    cr_assert_eq(side.grpc_status, 5);
    proxy_call_side_closed(call, 0);
}

Test(call, retries_stop_at_retry_max_attempts)
{
    struct proxy_call *call = call_for("/sy.test.Retry/M", NULL, NULL, NULL);

    proxy_call_head_done(call, true);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(nstarted, i + 1);
        backend_head_with(started[i], "14", "0");
        run_for(30);
    }
    cr_assert_eq(nstarted, 3, "three attempts in all (retry_max_attempts)");
    cr_assert_eq(side.grpc_status, 14);
    proxy_call_side_closed(call, 0);
}

Test(call, a_request_past_retry_buffer_is_never_retried)
{
    static uint8_t big[100];
    struct proxy_call *call = call_for("/sy.test.Retry/M", NULL, NULL, NULL);
    char buf[128];

    big[4] = sizeof(big) - 5;
    proxy_call_head_done(call, false);
    proxy_call_req_data(call, big, sizeof(big)); /* retry_buffer = 64 */
    proxy_call_req_end(call);
    cr_assert_eq(drain_request(started[0], buf, sizeof(buf)), sizeof(big));
    backend_head_with(started[0], "14", "0");
    run_for(30);
    cr_assert_eq(nstarted, 1, "retried a request bigger than retry_buffer");
    cr_assert_eq(side.grpc_status, 14);
    proxy_call_side_closed(call, 0);
}

Test(call, a_committed_call_is_never_retried)
{
    struct proxy_call *call = call_for("/sy.test.Retry/M", NULL, NULL, NULL);

    proxy_call_head_done(call, true);
    backend_head(started[0], false, NULL);
    cr_assert_eq(side.heads, 0, "the head went out before a message");
    started[0]->ops->on_data(started[0], message, sizeof(message));
    cr_assert_eq(side.heads, 1, "a message did not release the head");
    backend_end(started[0], PROXY_BE_END_LOST);
    run_for(30);
    cr_assert_eq(nstarted, 1);
    cr_assert_eq(trailer_status(call), GRPC_UNAVAILABLE);
    proxy_call_side_closed(call, 0);
}

Test(call, a_head_without_a_message_is_released_after_the_hold)
{
    struct proxy_call *call = call_for("/sy.test.Retry/M", NULL, NULL, NULL);

    proxy_call_head_done(call, true);
    backend_head(started[0], false, NULL);
    run_for(100);
    cr_assert_eq(side.heads, 0, "released before PROXY_HOLD_MS");
    run_for(150);
    cr_assert_eq(side.heads, 1, "a head held longer than PROXY_HOLD_MS");
    cr_assert_not(side.head_end);
    backend_end(started[0], PROXY_BE_END_LOST); /* committed now */
    run_for(30);
    cr_assert_eq(nstarted, 1);
    proxy_call_side_closed(call, 0);
}

Test(call, an_error_after_a_held_head_is_retried)
{
    struct proxy_call *call = call_for("/sy.test.Retry/M", NULL, NULL, NULL);

    proxy_call_head_done(call, true);
    /* gRPC C++ servers: the head, then trailers, no message. */
    backend_head(started[0], false, NULL);
    backend_trailers(started[0], "14");
    run_for(60);
    cr_assert_eq(nstarted, 2, "UNAVAILABLE after a head was not retried");
    /* The next one dies after its head: retried too. */
    backend_head(started[1], false, NULL);
    backend_end(started[1], PROXY_BE_END_LOST);
    run_for(60);
    cr_assert_eq(nstarted, 3, "a connection lost after a held head was not retried");
    /* The last attempt's error is final: head and trailers as they came. */
    backend_head(started[2], false, NULL);
    backend_trailers(started[2], "14");
    cr_assert_eq(side.heads, 1);
    cr_assert_not(side.head_end, "head and trailers became one");
    cr_assert_eq(trailer_status(call), GRPC_UNAVAILABLE);
    proxy_call_side_closed(call, 0);
}

Test(call, a_non_retryable_error_after_a_held_head_goes_out_as_it_came)
{
    struct proxy_call *call = call_for("/sy.test.Retry/M", NULL, NULL, NULL);

    proxy_call_head_done(call, true);
    backend_head(started[0], false, NULL);
    backend_trailers(started[0], "5");
    run_for(60);
    cr_assert_eq(nstarted, 1, "NOT_FOUND was retried");
    cr_assert_eq(side.heads, 1);
    cr_assert_eq(trailer_status(call), GRPC_NOT_FOUND);
    proxy_call_side_closed(call, 0);
}

Test(call, a_lost_attempt_is_retried_by_the_policy)
{
    struct proxy_call *call = call_for("/sy.test.Retry/M", NULL, NULL, NULL);

    proxy_call_head_done(call, true);
    backend_end(started[0], PROXY_BE_END_LOST); /* seen, then the backend died */
    run_for(60);
    cr_assert_eq(nstarted, 2, "retry_on = unavailable covers a lost connection");
    proxy_call_side_closed(call, NGHTTP2_CANCEL);
}

Test(call, hedges_start_after_the_delay_and_the_first_answer_wins)
{
    struct proxy_call *call = call_for("/sy.test.Hedge/M", NULL, NULL, NULL);

    proxy_call_head_done(call, true);
    cr_assert_eq(nstarted, 1);
    run_for(80);
    cr_assert_eq(nstarted, 2, "no hedge after hedge_delay");
    cr_assert_neq(started_ep[1], started_ep[0], "a hedge goes to another endpoint");
    backend_head(started[1], false, NULL);
    started[1]->ops->on_data(started[1], message, sizeof(message));
    cr_assert_eq(started[0]->state, PROXY_ATTEMPT_IDLE, "the slower attempt was not cancelled");
    run_for(80);
    cr_assert_eq(nstarted, 2, "hedged after an answer");
    backend_trailers(started[1], "0");
    backend_end(started[1], PROXY_BE_END_COMPLETE);
    cr_assert_eq(cs[3].hedges, 1);
    proxy_call_side_closed(call, 0);
}

Test(call, max_timeout_caps_what_the_backend_sees)
{
    struct proxy_call *call = call_for("/sy.test.Retry/M", NULL, "grpc-timeout", "10S");
    char v[16];
    unsigned long ms = 0;

    proxy_call_head_done(call, true);
    cr_assert_not_null(field_value(started[0]->req, "grpc-timeout", v, sizeof(v)));
    cr_assert_eq(sscanf(v, "%lum", &ms), 1, "%s", v);
    cr_assert(ms > 0 && ms <= 1000, "the backend sees %s, over max_timeout", v);
    proxy_call_side_closed(call, 0);
}

Test(call, the_cluster_timeout_applies_to_calls_without_one)
{
    struct proxy_call *call = call_for("/sy.test.Timed/M", NULL, NULL, NULL);
    char v[16];
    unsigned long ms = 0;

    proxy_call_head_done(call, true);
    cr_assert_not_null(field_value(started[0]->req, "grpc-timeout", v, sizeof(v)));
    cr_assert_eq(sscanf(v, "%lum", &ms), 1, "%s", v);
    cr_assert(ms > 1900 && ms <= 2000, "%s", v);
    proxy_call_side_closed(call, 0);
}

Test(call, no_default_deadline_applies)
{
    struct proxy_call *call = call_for("/sy.test.Echo/M", NULL, NULL, NULL);

    proxy_call_head_done(call, true);
    cr_assert_null(proxy_head_get(started[0]->req, "grpc-timeout", 12));
    proxy_call_side_closed(call, 0);
}
