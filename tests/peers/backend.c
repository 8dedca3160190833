/* sy-backend: a gRPC C core test server for switchyard's integration tests.
 * Serves sy.test.Echo (all four call kinds), sy.test.Control (counters, health
 * flips) and grpc.health.v1.Health (Check and Watch).
 * Invariant: one thread owns every call; it is driven by a single completion
 * queue, and each call is a small state machine whose memory lives until every
 * batch it started (and its delay timer) has completed.
 * SPDX-License-Identifier: MIT */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "grpc/health/v1/health.pb-c.h"
#include "tests/peers/echo.pb-c.h"
#include "tests/peers/peer.h"

/* Calls requested from the server ahead of time; more calls than this simply
 * wait inside the gRPC core until a request is re-armed. */
#define NEW_CALL_SLOTS 64
/* Longest the loop blocks, so signal flags are seen promptly. */
#define POLL_MS      50
#define MAX_SERVICES 64

enum method {
    M_UNARY = 0,
    M_CLIENT_STREAM,
    M_SERVER_STREAM,
    M_BIDI,
    M_HEALTH_CHECK,
    M_HEALTH_WATCH,
    M_STATS,
    M_SET_HEALTH,
    M_UNKNOWN,
    M_COUNT
};

static const char *const method_paths[M_COUNT] = {
    "/sy.test.Echo/Unary",    "/sy.test.Echo/ClientStream",   "/sy.test.Echo/ServerStream",
    "/sy.test.Echo/Bidi",     "/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch",
    "/sy.test.Control/Stats", "/sy.test.Control/SetHealth",   "(unknown)",
};

enum tag_kind {
    TAG_NEW = 0, /* grpc_server_request_call completed */
    TAG_RECV,    /* a batch whose only wait is RECV_MESSAGE */
    TAG_SEND,    /* a batch of send ops (message and/or status) */
    TAG_CLOSE,   /* RECV_CLOSE_ON_SERVER: the call is over */
    TAG_SHUTDOWN /* grpc_server_shutdown_and_notify completed */
};

struct call;

struct tag {
    struct call *c;
    enum tag_kind kind;
};

struct call {
    struct tag t_new, t_recv, t_send, t_close;
    grpc_call *call;
    grpc_call_details details;
    grpc_metadata_array req_md;
    /* What goes back: x-backend-id, every x-echo-* request entry, and in the
     * trailers as many x-trailer-NNN entries as x-trailers asks for. */
    grpc_metadata *imd, *tmd;
    size_t nimd, ntmd, ngen; /* the last |ngen| of |tmd| own their slices */
    enum method method;
    int refs;         /* batches in flight + armed timer */
    bool closed;      /* TAG_CLOSE completed */
    int cancelled;    /* written by RECV_CLOSE_ON_SERVER */
    bool status_sent; /* the final batch was started */
    bool md_sent;     /* initial metadata is on its way */
    bool sending;     /* a TAG_SEND batch is in flight */
    grpc_byte_buffer *recv_buf;
    grpc_byte_buffer *send_buf;
    grpc_slice status_details;
    uint64_t send_payload; /* payload bytes in send_buf, counted on completion */

    /* Echo */
    Sy__Test__EchoRequest *req; /* last request received */
    uint32_t sent;              /* replies sent */
    uint32_t received;          /* requests received */
    uint64_t bytes_received;

    /* delay timer; the call is on the timer list while armed */
    bool timer_armed;
    gpr_timespec timer_at;
    struct call *timer_next;

    /* Health Watch: the call is on the watcher list while open */
    char *service;
    int last_sent_status;
    struct call *watch_next;
};

struct service_status {
    char *name;
    int status;
};

static struct {
    const char *id;
    bool quiet;
    FILE *md_log;       /* --md-log: the metadata of every Health/Check call */
    uint32_t delay_ms;  /* --delay-ms: added before every unary reply */
    bool lazy_headers;  /* --lazy-headers: initial metadata with the first reply */
    uint32_t fail_code; /* --fail-code: every Echo call ends with it after its first request */
    grpc_server *server;
    grpc_completion_queue *cq;
    bool shutting_down;
    struct tag t_shutdown;
    struct call *timers;   /* calls with an armed delay timer */
    struct call *watchers; /* open Health/Watch calls */
    struct service_status services[MAX_SERVICES];
    size_t nservices;
    uint64_t live_calls; /* struct call objects allocated */
    Sy__Test__StatsReply st;
} g;

static grpc_metadata md_id[1];

static volatile sig_atomic_t sig_term, sig_usr1, sig_usr2;

static void on_signal(int sig)
{
    if (sig == SIGUSR1)
        sig_usr1 = 1;
    else if (sig == SIGUSR2)
        sig_usr2 = 1;
    else
        sig_term = 1;
}

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void logf_(const char *fmt, ...)
{
    va_list ap;

    if (g.quiet)
        return;
    fprintf(stderr, "sy-backend[%s]: ", g.id);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "sy-backend: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

static bool is_echo(enum method m)
{
    return m <= M_BIDI;
}

static gpr_timespec mono_now(void)
{
    return gpr_now(GPR_CLOCK_MONOTONIC);
}

/* ---- health statuses ---- */

static struct service_status *service_find(const char *name)
{
    for (size_t i = 0; i < g.nservices; i++) {
        if (strcmp(g.services[i].name, name) == 0)
            return &g.services[i];
    }
    return NULL;
}

/* Returns the status a Watch reports for |name|: SERVICE_UNKNOWN when unset. */
static int service_watch_status(const char *name)
{
    struct service_status *s = service_find(name);

    return s ? s->status : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN;
}

static void watch_notify(const char *name);

static int service_set(const char *name, int status)
{
    struct service_status *s = service_find(name);

    if (!s) {
        if (g.nservices == MAX_SERVICES)
            return -1;
        s = &g.services[g.nservices++];
        s->name = strdup(name);
        if (!s->name)
            abort();
        s->status = status;
        logf_("health of service \"%s\": %s", name, peer_serving_name(status));
    } else if (s->status != status) {
        logf_("health of service \"%s\": %s -> %s", name, peer_serving_name(s->status),
              peer_serving_name(status));
        s->status = status;
    }
    watch_notify(name);
    return 0;
}

/* ---- call lifetime ---- */

static void request_new_call(void);

static struct call *call_new(void)
{
    struct call *c = calloc(1, sizeof(*c));

    if (!c)
        abort();
    c->t_new = (struct tag){c, TAG_NEW};
    c->t_recv = (struct tag){c, TAG_RECV};
    c->t_send = (struct tag){c, TAG_SEND};
    c->t_close = (struct tag){c, TAG_CLOSE};
    grpc_call_details_init(&c->details);
    grpc_metadata_array_init(&c->req_md);
    c->status_details = grpc_empty_slice();
    c->last_sent_status = -1;
    g.live_calls++;
    return c;
}

static void call_free(struct call *c)
{
    if (c->call)
        grpc_call_unref(c->call);
    grpc_call_details_destroy(&c->details);
    for (size_t i = c->ntmd - c->ngen; i < c->ntmd; i++) {
        grpc_slice_unref(c->tmd[i].key);
        grpc_slice_unref(c->tmd[i].value);
    }
    free(c->imd);
    free(c->tmd);
    grpc_metadata_array_destroy(&c->req_md);
    grpc_slice_unref(c->status_details);
    if (c->recv_buf)
        grpc_byte_buffer_destroy(c->recv_buf);
    if (c->send_buf)
        grpc_byte_buffer_destroy(c->send_buf);
    if (c->req)
        sy__test__echo_request__free_unpacked(c->req, NULL);
    free(c->service);
    g.live_calls--;
    free(c);
}

static void call_unref(struct call *c)
{
    if (--c->refs == 0)
        call_free(c);
}

static void start_batch(struct call *c, const grpc_op *ops, size_t n, struct tag *t)
{
    grpc_call_error e = grpc_call_start_batch(c->call, ops, n, t, NULL);

    if (e != GRPC_CALL_OK)
        die("grpc_call_start_batch(%s): %s", method_paths[c->method], grpc_call_error_to_string(e));
    c->refs++;
}

/* Trailers md_reports() may add. */
#define MD_REPORTS 3

/* Appends a trailer whose slices |c| owns (freed with the call). */
static void md_gen(struct call *c, const char *k, const char *v)
{
    c->tmd[c->ntmd].key = grpc_slice_from_copied_string(k);
    c->tmd[c->ntmd++].value = grpc_slice_from_copied_string(v);
    c->ngen++;
}

/* What the call saw, for tests of a proxy in between: x-deadline-ms (the
 * deadline's milliseconds left when the call arrived), x-previous-attempts
 * (the request's grpc-previous-rpc-attempts), and grpc-retry-pushback-ms
 * with the value of the request's x-pushback-ms. */
static void md_reports(struct call *c)
{
    gpr_timespec dl = gpr_convert_clock_type(c->details.deadline, GPR_CLOCK_MONOTONIC);

    if (gpr_time_cmp(dl, gpr_inf_future(GPR_CLOCK_MONOTONIC)) != 0) {
        char v[32];

        snprintf(v, sizeof(v), "%lld",
                 (long long)gpr_time_to_millis(gpr_time_sub(dl, gpr_now(GPR_CLOCK_MONOTONIC))));
        md_gen(c, "x-deadline-ms", v);
    }
    for (size_t i = 0; i < c->req_md.count; i++) {
        const grpc_metadata *m = &c->req_md.metadata[i];
        const char *as =
            grpc_slice_str_cmp(m->key, "grpc-previous-rpc-attempts") == 0 ? "x-previous-attempts"
            : grpc_slice_str_cmp(m->key, "x-pushback-ms") == 0            ? "grpc-retry-pushback-ms"
                                                                          : NULL;

        if (as != NULL) {
            char *v = grpc_slice_to_c_string(m->value);

            md_gen(c, as, v);
            gpr_free(v);
        }
    }
}

/* The metadata |c| answers with (struct call's |imd| and |tmd|). */
static void md_build(struct call *c)
{
    size_t necho = 0, ntr = 0;

    for (size_t i = 0; i < c->req_md.count; i++) {
        const grpc_metadata *m = &c->req_md.metadata[i];

        if (grpc_slice_str_cmp(m->key, "x-trailers") == 0) {
            char *v = grpc_slice_to_c_string(m->value);

            ntr = strtoul(v, NULL, 10);
            gpr_free(v);
            if (ntr > 500)
                ntr = 500;
        } else if (GRPC_SLICE_LENGTH(m->key) > 7 &&
                   memcmp(GRPC_SLICE_START_PTR(m->key), "x-echo-", 7) == 0) {
            necho++;
        }
    }
    c->imd = calloc(1 + necho, sizeof(*c->imd));
    c->tmd = calloc(1 + necho + ntr + MD_REPORTS, sizeof(*c->tmd));
    if (!c->imd || !c->tmd)
        abort();
    c->imd[c->nimd++] = md_id[0];
    c->tmd[c->ntmd++] = md_id[0];
    for (size_t i = 0; i < c->req_md.count; i++) {
        const grpc_metadata *m = &c->req_md.metadata[i];

        if (GRPC_SLICE_LENGTH(m->key) > 7 &&
            memcmp(GRPC_SLICE_START_PTR(m->key), "x-echo-", 7) == 0) {
            /* The request's slices live as long as the call. */
            c->imd[c->nimd].key = m->key;
            c->imd[c->nimd++].value = m->value;
            c->tmd[c->ntmd].key = m->key;
            c->tmd[c->ntmd++].value = m->value;
        }
    }
    for (size_t i = 0; i < ntr; i++) {
        char k[32], v[32];

        snprintf(k, sizeof(k), "x-trailer-%03zu", i);
        snprintf(v, sizeof(v), "value-%zu", i);
        md_gen(c, k, v);
    }
    md_reports(c);
}

/* ---- sending ---- */

static void fill_status_op(struct call *c, grpc_op *op, grpc_status_code code, const char *msg)
{
    grpc_slice_unref(c->status_details);
    c->status_details = grpc_slice_from_copied_string(msg ? msg : "");
    memset(op, 0, sizeof(*op));
    op->op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    op->data.send_status_from_server.status = code;
    op->data.send_status_from_server.status_details = msg ? &c->status_details : NULL;
    op->data.send_status_from_server.trailing_metadata_count = c->tmd != NULL ? c->ntmd : 1;
    op->data.send_status_from_server.trailing_metadata = c->tmd != NULL ? c->tmd : md_id;
    c->status_sent = true;
}

/* Sends |m| (may be NULL), then the status when |with_status|. */
static void send_msg(struct call *c, const ProtobufCMessage *m, uint64_t payload, bool with_status,
                     grpc_status_code code, const char *msg)
{
    grpc_op ops[3];
    size_t n = 0;

    if (c->closed || c->status_sent)
        return;
    memset(ops, 0, sizeof(ops));
    if (!c->md_sent) {
        /* With the first reply, or with a status alone: then the transport
         * sends one trailers-only response. */
        ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
        ops[n].data.send_initial_metadata.count = c->nimd;
        ops[n].data.send_initial_metadata.metadata = c->imd;
        c->md_sent = true;
        n++;
    }
    if (m) {
        c->send_buf = peer_pack(m);
        c->send_payload = payload;
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n].data.send_message.send_message = c->send_buf;
        n++;
    }
    if (with_status)
        fill_status_op(c, &ops[n++], code, msg);
    c->sending = true;
    start_batch(c, ops, n, &c->t_send);
}

static void finish(struct call *c, grpc_status_code code, const char *msg)
{
    send_msg(c, NULL, 0, true, code, msg);
}

static void post_recv(struct call *c)
{
    grpc_op op;

    if (c->closed || c->status_sent)
        return;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &c->recv_buf;
    start_batch(c, &op, 1, &c->t_recv);
}

/* Sends one EchoReply built from the last request; |last| adds the OK status. */
static void send_echo(struct call *c, bool last)
{
    Sy__Test__EchoReply rep = SY__TEST__ECHO_REPLY__INIT;
    uint8_t *gen = NULL;

    rep.backend_id = (char *)g.id;
    rep.bytes_received = c->bytes_received;
    rep.seq = c->method == M_CLIENT_STREAM ? c->received : c->sent;
    if (c->req->response_size > 0) {
        gen = malloc(c->req->response_size);
        if (!gen)
            abort();
        peer_fill(gen, c->req->response_size);
        rep.payload.data = gen;
        rep.payload.len = c->req->response_size;
    } else if (c->method != M_CLIENT_STREAM) {
        rep.payload = c->req->payload;
    }
    send_msg(c, &rep.base, rep.payload.len, last, GRPC_STATUS_OK, NULL);
    free(gen);
}

/* ---- timers ---- */

static void timer_arm(struct call *c, uint32_t ms)
{
    c->timer_at = gpr_time_add(mono_now(), gpr_time_from_millis(ms, GPR_TIMESPAN));
    c->timer_armed = true;
    c->timer_next = g.timers;
    g.timers = c;
    c->refs++;
}

/* Does what the call was waiting for: the next reply. */
static void on_timer(struct call *c)
{
    switch (c->method) {
    case M_UNARY:
    case M_CLIENT_STREAM:
        send_echo(c, true);
        break;
    case M_SERVER_STREAM:
    case M_BIDI:
        send_echo(c, false);
        break;
    default:
        break;
    }
}

/* Runs the delay (if any) before the call's next reply: the request's own,
 * plus --delay-ms for unary calls (a backend that is slow at everything). */
static void reply_after_delay(struct call *c)
{
    uint32_t ms = c->req->delay_ms + (c->method == M_UNARY ? g.delay_ms : 0);

    if (ms > 0)
        timer_arm(c, ms);
    else
        on_timer(c);
}

static void timers_run(void)
{
    gpr_timespec now = mono_now();
    struct call **pp = &g.timers;

    while (*pp) {
        struct call *c = *pp;

        if (gpr_time_cmp(c->timer_at, now) > 0 && !c->closed) {
            pp = &c->timer_next;
            continue;
        }
        *pp = c->timer_next;
        c->timer_armed = false;
        if (!c->closed)
            on_timer(c);
        call_unref(c);
    }
}

static gpr_timespec next_wakeup(void)
{
    gpr_timespec at = gpr_time_add(mono_now(), gpr_time_from_millis(POLL_MS, GPR_TIMESPAN));

    for (struct call *c = g.timers; c; c = c->timer_next) {
        if (gpr_time_cmp(c->timer_at, at) < 0)
            at = c->timer_at;
    }
    return at;
}

/* ---- health watch ---- */

static void watch_send(struct call *c)
{
    Grpc__Health__V1__HealthCheckResponse rep = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;

    rep.status = service_watch_status(c->service);
    c->last_sent_status = rep.status;
    send_msg(c, &rep.base, 0, false, GRPC_STATUS_OK, NULL);
}

static void watch_notify(const char *name)
{
    for (struct call *c = g.watchers; c; c = c->watch_next) {
        if (strcmp(c->service, name) == 0 && !c->sending &&
            c->last_sent_status != service_watch_status(name))
            watch_send(c);
    }
}

static void watch_del(struct call *c)
{
    for (struct call **pp = &g.watchers; *pp; pp = &(*pp)->watch_next) {
        if (*pp == c) {
            *pp = c->watch_next;
            return;
        }
    }
}

/* ---- per-method handling of a received message ---- */

static Sy__Test__EchoRequest *parse_echo(struct call *c, grpc_byte_buffer *bb)
{
    Sy__Test__EchoRequest *r =
        (Sy__Test__EchoRequest *)peer_unpack(&sy__test__echo_request__descriptor, bb);

    if (!r) {
        finish(c, GRPC_STATUS_INVALID_ARGUMENT, "sy-backend: cannot parse EchoRequest");
        return NULL;
    }
    c->received++;
    c->bytes_received += r->payload.len;
    g.st.messages_received++;
    if (c->req)
        sy__test__echo_request__free_unpacked(c->req, NULL);
    c->req = r;
    if (r->fail_code != 0 || g.fail_code != 0) {
        uint32_t code = r->fail_code != 0 ? r->fail_code : g.fail_code;
        char msg[64];

        snprintf(msg, sizeof(msg), "sy-backend %s: %s failure %u", g.id,
                 r->fail_code != 0 ? "requested" : "--fail-code", code);
        finish(c, (grpc_status_code)code, msg);
        return NULL;
    }
    return r;
}

static void on_echo_message(struct call *c, grpc_byte_buffer *bb)
{
    switch (c->method) {
    case M_UNARY:
        if (!bb)
            finish(c, GRPC_STATUS_INTERNAL, "sy-backend: no request message");
        else if (parse_echo(c, bb))
            reply_after_delay(c);
        break;
    case M_CLIENT_STREAM:
        if (bb) {
            if (parse_echo(c, bb))
                post_recv(c);
        } else if (!c->req) {
            /* No request at all: reply with an empty message. */
            c->req = calloc(1, sizeof(*c->req));
            if (!c->req)
                abort();
            sy__test__echo_request__init(c->req);
            send_echo(c, true);
        } else {
            reply_after_delay(c);
        }
        break;
    case M_SERVER_STREAM:
        if (!bb)
            finish(c, GRPC_STATUS_INTERNAL, "sy-backend: no request message");
        else if (parse_echo(c, bb)) {
            if (c->req->response_count == 0)
                finish(c, GRPC_STATUS_OK, NULL);
            else
                reply_after_delay(c);
        }
        break;
    case M_BIDI:
        if (!bb)
            finish(c, GRPC_STATUS_OK, NULL);
        else if (parse_echo(c, bb))
            reply_after_delay(c);
        break;
    default:
        break;
    }
}

/* --md-log: one block per Health/Check call, flushed at once so that a test
 * reading the file sees it as soon as the client has its answer:
 *   check service="NAME"
 *     key: value        (each request metadata entry, as the core delivers it)
 */
static void md_log_call(const struct call *c)
{
    if (g.md_log == NULL)
        return;
    fprintf(g.md_log, "check service=\"%s\"\n", c->service);
    for (size_t i = 0; i < c->req_md.count; i++) {
        const grpc_metadata *m = &c->req_md.metadata[i];

        fprintf(g.md_log, "  %.*s: %.*s\n", (int)GRPC_SLICE_LENGTH(m->key),
                (const char *)GRPC_SLICE_START_PTR(m->key), (int)GRPC_SLICE_LENGTH(m->value),
                (const char *)GRPC_SLICE_START_PTR(m->value));
    }
    fflush(g.md_log);
}

static void on_health_message(struct call *c, grpc_byte_buffer *bb)
{
    Grpc__Health__V1__HealthCheckRequest *r = NULL;

    if (bb)
        r = (Grpc__Health__V1__HealthCheckRequest *)peer_unpack(
            &grpc__health__v1__health_check_request__descriptor, bb);
    if (!r) {
        finish(c, GRPC_STATUS_INVALID_ARGUMENT, "sy-backend: bad HealthCheckRequest");
        return;
    }
    c->service = strdup(r->service);
    if (!c->service)
        abort();
    grpc__health__v1__health_check_request__free_unpacked(r, NULL);

    if (c->method == M_HEALTH_CHECK) {
        struct service_status *s = service_find(c->service);
        Grpc__Health__V1__HealthCheckResponse rep = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;

        g.st.health_checks++;
        md_log_call(c);
        if (!s) {
            finish(c, GRPC_STATUS_NOT_FOUND, "unknown service");
            return;
        }
        rep.status = s->status;
        send_msg(c, &rep.base, 0, true, GRPC_STATUS_OK, NULL);
        return;
    }
    g.st.health_watches++;
    c->watch_next = g.watchers;
    g.watchers = c;
    watch_send(c);
}

static void on_control_message(struct call *c, grpc_byte_buffer *bb)
{
    if (c->method == M_STATS) {
        Sy__Test__StatsRequest *r = NULL;

        if (bb)
            r = (Sy__Test__StatsRequest *)peer_unpack(&sy__test__stats_request__descriptor, bb);
        if (!r) {
            finish(c, GRPC_STATUS_INVALID_ARGUMENT, "sy-backend: bad StatsRequest");
            return;
        }
        g.st.backend_id = (char *)g.id;
        g.st.calls_active = g.st.calls_started - g.st.calls_completed - g.st.calls_cancelled;
        send_msg(c, &g.st.base, 0, true, GRPC_STATUS_OK, NULL);
        if (r->reset) {
            Sy__Test__StatsReply z = SY__TEST__STATS_REPLY__INIT;

            /* Active calls stay counted as started so calls_active stays right. */
            z.calls_started = g.st.calls_active;
            g.st = z;
        }
        sy__test__stats_request__free_unpacked(r, NULL);
        return;
    }

    Sy__Test__SetHealthRequest *r = NULL;
    Sy__Test__SetHealthReply rep = SY__TEST__SET_HEALTH_REPLY__INIT;

    if (bb)
        r = (Sy__Test__SetHealthRequest *)peer_unpack(&sy__test__set_health_request__descriptor,
                                                      bb);
    if (!r) {
        finish(c, GRPC_STATUS_INVALID_ARGUMENT, "sy-backend: bad SetHealthRequest");
        return;
    }
    if (service_set(r->service, (int)r->status) != 0)
        finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "sy-backend: too many services");
    else
        send_msg(c, &rep.base, 0, true, GRPC_STATUS_OK, NULL);
    sy__test__set_health_request__free_unpacked(r, NULL);
}

/* ---- events ---- */

static enum method method_of(const grpc_slice *s)
{
    for (int m = 0; m < M_UNKNOWN; m++) {
        if (grpc_slice_str_cmp(*s, method_paths[m]) == 0)
            return (enum method)m;
    }
    return M_UNKNOWN;
}

static void on_new_call(struct call *c, bool ok)
{
    grpc_op ops[2];

    if (!g.shutting_down)
        request_new_call();
    if (!ok) {
        call_unref(c);
        return;
    }
    c->method = method_of(&c->details.method);
    switch (c->method) {
    case M_UNARY:
        g.st.unary++;
        break;
    case M_CLIENT_STREAM:
        g.st.client_stream++;
        break;
    case M_SERVER_STREAM:
        g.st.server_stream++;
        break;
    case M_BIDI:
        g.st.bidi++;
        break;
    default:
        break;
    }
    if (is_echo(c->method))
        g.st.calls_started++;

    /* The call ends (cancelled or not) when RECV_CLOSE_ON_SERVER completes. */
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[0].data.recv_close_on_server.cancelled = &c->cancelled;
    start_batch(c, ops, 1, &c->t_close);

    /* Initial metadata goes out at once, before any request is read; with
     * --lazy-headers it goes with the first reply, as gRPC servers do by
     * default (grpc-go, grpc-java, the C++ API), so that an error before any
     * reply is a trailers-only response, which clients and proxies may retry
     * (gRFC A6). An unknown method is answered at once. */
    md_build(c);
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = c->nimd;
    ops[0].data.send_initial_metadata.metadata = c->imd;
    if (c->method == M_UNKNOWN) {
        c->md_sent = true;
        char msg[256];
        char *path = grpc_slice_to_c_string(c->details.method);

        snprintf(msg, sizeof(msg), "sy-backend %s: unknown method %s", g.id, path);
        gpr_free(path);
        fill_status_op(c, &ops[1], GRPC_STATUS_UNIMPLEMENTED, msg);
        c->sending = true;
        start_batch(c, ops, 2, &c->t_send);
    } else if (g.lazy_headers) {
        ops[0].op = GRPC_OP_RECV_MESSAGE;
        ops[0].data.recv_message.recv_message = &c->recv_buf;
        start_batch(c, ops, 1, &c->t_recv);
    } else {
        c->md_sent = true;
        ops[1].op = GRPC_OP_RECV_MESSAGE;
        ops[1].data.recv_message.recv_message = &c->recv_buf;
        start_batch(c, ops, 2, &c->t_recv);
    }
    call_unref(c); /* the TAG_NEW reference */
}

static void on_recv(struct call *c, bool ok)
{
    grpc_byte_buffer *bb = c->recv_buf;

    c->recv_buf = NULL;
    if (ok && !c->closed && !c->status_sent) {
        if (is_echo(c->method))
            on_echo_message(c, bb);
        else if (c->method == M_HEALTH_CHECK || c->method == M_HEALTH_WATCH)
            on_health_message(c, bb);
        else
            on_control_message(c, bb);
    }
    if (bb)
        grpc_byte_buffer_destroy(bb);
    call_unref(c);
}

static void on_send(struct call *c, bool ok)
{
    c->sending = false;
    if (c->send_buf) {
        grpc_byte_buffer_destroy(c->send_buf);
        c->send_buf = NULL;
        if (ok && is_echo(c->method)) {
            g.st.messages_sent++;
            g.st.bytes_sent += c->send_payload;
        }
    }
    if (ok && !c->closed && !c->status_sent) {
        switch (c->method) {
        case M_SERVER_STREAM:
            if (++c->sent < c->req->response_count)
                reply_after_delay(c);
            else
                finish(c, GRPC_STATUS_OK, NULL);
            break;
        case M_BIDI:
            c->sent++;
            post_recv(c);
            break;
        case M_HEALTH_WATCH:
            if (c->last_sent_status != service_watch_status(c->service))
                watch_send(c);
            break;
        default:
            break;
        }
    }
    call_unref(c);
}

static void on_close(struct call *c)
{
    c->closed = true;
    if (c->method == M_HEALTH_WATCH)
        watch_del(c);
    if (is_echo(c->method)) {
        if (c->cancelled) {
            g.st.calls_cancelled++;
            /* One line per cancelled call, even with --quiet: tests grep it. */
            fprintf(stderr, "sy-backend[%s]: call %s cancelled after %u requests, %u replies\n",
                    g.id, method_paths[c->method], c->received, c->sent);
        } else {
            g.st.calls_completed++;
        }
    }
    call_unref(c);
}

static void dispatch(struct tag *t, bool ok)
{
    switch (t->kind) {
    case TAG_NEW:
        on_new_call(t->c, ok);
        break;
    case TAG_RECV:
        on_recv(t->c, ok);
        break;
    case TAG_SEND:
        on_send(t->c, ok);
        break;
    case TAG_CLOSE:
        on_close(t->c);
        break;
    case TAG_SHUTDOWN:
        logf_("server shut down; %llu calls left", (unsigned long long)g.live_calls);
        grpc_completion_queue_shutdown(g.cq);
        break;
    }
}

static void request_new_call(void)
{
    struct call *c = call_new();
    grpc_call_error e;

    e = grpc_server_request_call(g.server, &c->call, &c->details, &c->req_md, g.cq, g.cq,
                                 &c->t_new);
    if (e != GRPC_CALL_OK)
        die("grpc_server_request_call: %s", grpc_call_error_to_string(e));
    c->refs = 1;
}

/* ---- main ---- */

static void usage(FILE *f)
{
    fprintf(f, "usage: sy-backend --listen HOST:PORT [--id NAME] [--health SERVING|NOT_SERVING]\n"
               "                  [--grace MS] [--max-connection-age MS] [--delay-ms MS]\n"
               "                  [--lazy-headers] [--fail-code N] [--quiet]\n"
               "                  [--tls-cert F --tls-key F [--tls-client-ca F]] [--md-log F]\n"
               "Serves sy.test.Echo, sy.test.Control and grpc.health.v1.Health (insecure,\n"
               "or TLS with --tls-cert; --tls-client-ca requires client certificates).\n"
               "--md-log F appends the metadata of every Health/Check call to F.\n"
               "SIGUSR1: service \"\" NOT_SERVING; SIGUSR2: SERVING; SIGTERM/SIGINT: exit 0\n"
               "after running calls finish or --grace MS (default 0) passes.\n"
               "--max-connection-age MS: the gRPC server's MaxConnectionAge (GOAWAY NO_ERROR\n"
               "on each connection after about MS, +-10%%, then closed 1 s later).\n"
               "--delay-ms MS delays every unary reply by MS on top of the request's own delay.\n"
               "--lazy-headers: response headers go with the first reply (grpc-go's way), so\n"
               "an error before any reply is a trailers-only response.\n"
               "--fail-code N: every Echo call ends with gRPC status N after its first request.\n"
               "Trailers report x-deadline-ms (deadline left on arrival), x-previous-attempts\n"
               "(grpc-previous-rpc-attempts) and echo x-pushback-ms as grpc-retry-pushback-ms.\n");
}

/* TLS mode: the PEM files' contents (they stay allocated for the process). */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
        die("cannot read %s", path);
    buf = calloc(1, (size_t)n + 1);
    if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n)
        die("cannot read %s", path);
    fclose(f);
    return buf;
}

static grpc_server_credentials *tls_creds(const char *cert, const char *key, const char *ca)
{
    grpc_ssl_pem_key_cert_pair pair = {.private_key = slurp(key), .cert_chain = slurp(cert)};

    return grpc_ssl_server_credentials_create_ex(
        ca != NULL ? slurp(ca) : NULL, &pair, 1,
        ca != NULL ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                   : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE,
        NULL);
}

static void handle_signals(long *grace_ms, gpr_timespec *cancel_at)
{
    if (sig_usr1) {
        sig_usr1 = 0;
        service_set("", GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING);
    }
    if (sig_usr2) {
        sig_usr2 = 0;
        service_set("", GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
    }
    if (sig_term && !g.shutting_down) {
        logf_("shutting down");
        g.shutting_down = true;
        grpc_server_shutdown_and_notify(g.server, g.cq, &g.t_shutdown);
        *cancel_at = gpr_time_add(mono_now(), gpr_time_from_millis(*grace_ms, GPR_TIMESPAN));
    }
    /* Watch streams never end on their own: cancel what is left after the grace. */
    if (g.shutting_down && *grace_ms >= 0 && gpr_time_cmp(mono_now(), *cancel_at) >= 0) {
        grpc_server_cancel_all_calls(g.server);
        *grace_ms = -1;
    }
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"listen", required_argument, NULL, 'l'},
                                             {"id", required_argument, NULL, 'i'},
                                             {"health", required_argument, NULL, 'H'},
                                             {"grace", required_argument, NULL, 'g'},
                                             {"max-connection-age", required_argument, NULL, 'a'},
                                             {"delay-ms", required_argument, NULL, 'D'},
                                             {"lazy-headers", no_argument, NULL, 'L'},
                                             {"fail-code", required_argument, NULL, 'F'},
                                             {"quiet", no_argument, NULL, 'q'},
                                             {"help", no_argument, NULL, 'h'},
                                             {"tls-cert", required_argument, NULL, 'C'},
                                             {"tls-key", required_argument, NULL, 'K'},
                                             {"tls-client-ca", required_argument, NULL, 'A'},
                                             {"md-log", required_argument, NULL, 'M'},
                                             {NULL, 0, NULL, 0}};
    const char *listen = NULL;
    const char *tls_cert = NULL, *tls_key = NULL, *tls_ca = NULL;
    int health = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
    long grace_ms = 0, max_age_ms = 0;
    gpr_timespec cancel_at = gpr_inf_future(GPR_CLOCK_MONOTONIC);
    grpc_arg args[7];
    grpc_channel_args cargs = {5, args};
    grpc_server_credentials *creds;
    struct sigaction sa;
    int opt;

    g.id = "backend";
    while ((opt = getopt_long(argc, argv, "l:i:H:g:a:D:LF:qhC:K:A:M:", longopts, NULL)) != -1) {
        switch (opt) {
        case 'l':
            listen = optarg;
            break;
        case 'i':
            g.id = optarg;
            break;
        case 'H':
            if (peer_serving_parse(optarg, &health) != 0)
                die("--health: expected SERVING, NOT_SERVING, UNKNOWN, got '%s'", optarg);
            break;
        case 'g':
            grace_ms = strtol(optarg, NULL, 10);
            if (grace_ms < 0)
                die("--grace: expected milliseconds >= 0");
            break;
        case 'a':
            max_age_ms = strtol(optarg, NULL, 10);
            if (max_age_ms <= 0 || max_age_ms > INT32_MAX)
                die("--max-connection-age: expected milliseconds > 0");
            break;
        case 'L':
            g.lazy_headers = true;
            break;
        case 'F': {
            char *end;
            unsigned long code = strtoul(optarg, &end, 10);

            if (*optarg == '\0' || *end != '\0' || code < 1 || code > 16)
                die("--fail-code: expected a gRPC status code 1..16, got '%s'", optarg);
            g.fail_code = (uint32_t)code;
            break;
        }
        case 'D': {
            char *end;
            unsigned long ms = strtoul(optarg, &end, 10);

            if (*optarg == '\0' || *end != '\0' || ms > 600000)
                die("--delay-ms: expected milliseconds in 0..600000, got '%s'", optarg);
            g.delay_ms = (uint32_t)ms;
            break;
        }
        case 'q':
            g.quiet = true;
            break;
        case 'C':
            tls_cert = optarg;
            break;
        case 'K':
            tls_key = optarg;
            break;
        case 'A':
            tls_ca = optarg;
            break;
        case 'M':
            g.md_log = fopen(optarg, "a");
            if (g.md_log == NULL)
                die("--md-log %s: %s", optarg, strerror(errno));
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!listen || optind != argc || (tls_cert == NULL) != (tls_key == NULL) ||
        (tls_ca != NULL && tls_cert == NULL)) {
        usage(stderr);
        return 2;
    }

    /* Before grpc_init so that the core's threads never run the default action. */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    sy__test__stats_reply__init(&g.st);
    g.t_shutdown = (struct tag){NULL, TAG_SHUTDOWN};
    md_id[0].key = grpc_slice_from_static_string(PEER_BACKEND_ID_KEY);
    md_id[0].value = grpc_slice_from_static_string(g.id);
    service_set("", health);

    grpc_init();
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[0].value.integer = PEER_MAX_MESSAGE;
    args[1].type = GRPC_ARG_INTEGER;
    args[1].key = GRPC_ARG_MAX_SEND_MESSAGE_LENGTH;
    args[1].value.integer = PEER_MAX_MESSAGE;
    args[2].type = GRPC_ARG_INTEGER;
    args[2].key = GRPC_ARG_MAX_CONCURRENT_STREAMS;
    args[2].value.integer = 100000;
    args[3].type = GRPC_ARG_INTEGER;
    args[3].key = GRPC_ARG_MAX_METADATA_SIZE;
    args[3].value.integer = PEER_MAX_METADATA;
    /* No SO_REUSEPORT: a port another test's process holds must fail to bind
     * (the harness then picks another) instead of being shared silently. */
    args[4].type = GRPC_ARG_INTEGER;
    args[4].key = GRPC_ARG_ALLOW_REUSEPORT;
    args[4].value.integer = 0;
    if (max_age_ms > 0) {
        /* Graceful GOAWAY (NO_ERROR) after the age; streams get the grace to finish. */
        args[5].type = GRPC_ARG_INTEGER;
        args[5].key = GRPC_ARG_MAX_CONNECTION_AGE_MS;
        args[5].value.integer = (int)max_age_ms;
        args[6].type = GRPC_ARG_INTEGER;
        args[6].key = GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS;
        args[6].value.integer = 1000;
        cargs.num_args = 7;
    }

    g.cq = grpc_completion_queue_create_for_next(NULL);
    g.server = grpc_server_create(&cargs, NULL);
    grpc_server_register_completion_queue(g.server, g.cq, NULL);
    creds = tls_cert != NULL ? tls_creds(tls_cert, tls_key, tls_ca)
                             : grpc_insecure_server_credentials_create();
    if (grpc_server_add_http2_port(g.server, listen, creds) == 0)
        die("cannot listen on %s", listen);
    grpc_server_credentials_release(creds);
    grpc_server_start(g.server);
    for (int i = 0; i < NEW_CALL_SLOTS; i++)
        request_new_call();
    logf_("listening on %s, health %s", listen, peer_serving_name(health));
    printf("ready\n");
    fflush(stdout);

    for (;;) {
        grpc_event ev = grpc_completion_queue_next(g.cq, next_wakeup(), NULL);

        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type == GRPC_OP_COMPLETE)
            dispatch(ev.tag, ev.success != 0);
        timers_run();
        handle_signals(&grace_ms, &cancel_at);
    }

    grpc_server_destroy(g.server);
    grpc_completion_queue_destroy(g.cq);
    grpc_shutdown();
    for (size_t i = 0; i < g.nservices; i++)
        free(g.services[i].name);
    if (g.live_calls != 0)
        fprintf(stderr, "sy-backend[%s]: %llu calls leaked\n", g.id,
                (unsigned long long)g.live_calls);
    if (g.md_log != NULL)
        fclose(g.md_log);
    logf_("exit");
    return 0;
}
