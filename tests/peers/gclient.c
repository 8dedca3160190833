/* gclient: synchronous gRPC C core test client; see gclient.h.
 * Invariant: one engine (struct gcall) runs every call kind: a send chain
 * (initial metadata, requests, half-close), a receive chain (initial metadata,
 * messages until end of stream) and the status, each a batch on the call's
 * completion queue; a call is over when its status arrived and no batch is
 * in flight.
 * SPDX-License-Identifier: MIT */
#include "tests/peers/gclient.h"
#include "tests/peers/gclient_tls.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "grpc/health/v1/health.pb-c.h"
#include "tests/peers/echo.pb-c.h"
#include "tests/peers/peer.h"

struct gc_chan {
    grpc_channel *ch;
    char *target;
};

/* ---- process-wide gRPC lifetime ---- */

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t init_mu = PTHREAD_MUTEX_INITIALIZER;
static bool initialised;

static void do_init(void)
{
    grpc_init();
    pthread_mutex_lock(&init_mu);
    initialised = true;
    pthread_mutex_unlock(&init_mu);
    atexit(gc_shutdown);
}

static void ensure_init(void)
{
    pthread_once(&init_once, do_init);
}

void gc_shutdown(void)
{
    bool was;

    pthread_mutex_lock(&init_mu);
    was = initialised;
    initialised = false;
    pthread_mutex_unlock(&init_mu);
    if (was)
        grpc_shutdown_blocking();
}

static long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void *xcalloc(size_t n, size_t sz)
{
    void *p = calloc(n ? n : 1, sz ? sz : 1);

    if (!p)
        abort();
    return p;
}

/* ---- options ---- */

static const char *const kind_paths[GC_KIND_COUNT] = {
    "/sy.test.Echo/Unary",
    "/sy.test.Echo/ClientStream",
    "/sy.test.Echo/ServerStream",
    "/sy.test.Echo/Bidi",
};
static const char *const kind_names[GC_KIND_COUNT] = {"unary", "client-stream", "server-stream",
                                                      "bidi"};

void gc_opts_init(struct gc_opts *o, enum gc_kind kind)
{
    memset(o, 0, sizeof(*o));
    o->kind = kind;
    o->request_count = 1;
    o->response_count = 1;
    o->timeout_ms = 10000;
    o->cancel_after_replies = -1;
}

const char *gc_kind_path(enum gc_kind kind)
{
    return (unsigned)kind < GC_KIND_COUNT ? kind_paths[kind] : "?";
}

const char *gc_kind_name(enum gc_kind kind)
{
    return (unsigned)kind < GC_KIND_COUNT ? kind_names[kind] : "?";
}

/* ---- channel ---- */

struct gc_chan *gc_chan_new(const char *target)
{
    return gc_chan_new_creds(target, NULL, NULL);
}

struct gc_chan *gc_chan_new_creds(const char *target, gc_creds_cb make, void *arg)
{
    struct gc_chan *ch = xcalloc(1, sizeof(*ch));
    grpc_arg args[8];
    grpc_channel_args cargs = {sizeof(args) / sizeof(args[0]), args};
    grpc_channel_credentials *creds;
    static const struct {
        const char *key;
        int value;
    } iargs[] = {
        {GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, PEER_MAX_MESSAGE},
        {GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, PEER_MAX_MESSAGE},
        {GRPC_ARG_MAX_METADATA_SIZE, PEER_MAX_METADATA},
        /* Tests see every failure: no transparent or configured retries. */
        {GRPC_ARG_ENABLE_RETRIES, 0},
        /* One channel = one connection, never shared with other channels. */
        {GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1},
        {GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100},
        {GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100},
        {GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000},
    };

    ensure_init();
    for (size_t i = 0; i < sizeof(args) / sizeof(args[0]); i++) {
        args[i].type = GRPC_ARG_INTEGER;
        args[i].key = (char *)iargs[i].key;
        args[i].value.integer = iargs[i].value;
    }
    ch->target = strdup(target);
    if (!ch->target)
        abort();
    creds = make != NULL ? make(arg) : grpc_insecure_credentials_create();
    ch->ch = grpc_channel_create(target, creds, &cargs);
    grpc_channel_credentials_release(creds);
    return ch;
}

void gc_chan_free(struct gc_chan *ch)
{
    if (!ch)
        return;
    grpc_channel_destroy(ch->ch);
    free(ch->target);
    free(ch);
}

/* ---- the call engine ---- */

enum gtag_kind {
    GT_SEND = 0, /* a send batch: initial metadata, a message, half-close */
    GT_MD,       /* RECV_INITIAL_METADATA */
    GT_RECV,     /* RECV_MESSAGE */
    GT_STATUS    /* RECV_STATUS_ON_CLIENT */
};

struct gcall;

struct gtag {
    struct gcall *g;
    enum gtag_kind kind;
};

/* Shared by the calls of one completion queue. */
struct gctx {
    grpc_completion_queue *cq;
    int live;        /* calls not over */
    int md_waiting;  /* calls whose response headers (or end) have not come */
    int ended_early; /* calls whose status came while md_waiting > 0 */
};

struct gcall {
    struct gtag t_send, t_md, t_recv, t_status;
    struct gctx *ctx;
    grpc_call *call;
    int pending;       /* batches in flight */
    bool hold;         /* barrier: send nothing after initial metadata until released */
    bool send_busy;    /* a send batch is in flight */
    bool send_stopped; /* a send failed or everything was sent */
    int sent;          /* requests sent */
    int nreq;          /* requests to send */
    bool md_done, status_done, cancelled_by_us;

    grpc_metadata *send_md;
    size_t nsend_md;
    grpc_metadata_array init_md, trail_md;
    grpc_status_code status;
    grpc_slice details;
    const char *error_string;
    grpc_byte_buffer *recv_buf;
    grpc_byte_buffer *send_buf;

    /* codec: builds request |idx|; handles one reply, non-zero = cancel */
    grpc_byte_buffer *(*make_req)(struct gcall *g, int idx);
    int (*on_reply)(struct gcall *g, grpc_byte_buffer *bb);
    void *arg;
    struct gc_result *r;
    long t0;
};

static void copy_md(const grpc_metadata_array *a, const char *key, char *out, size_t outlen)
{
    for (size_t i = 0; i < a->count; i++) {
        if (grpc_slice_str_cmp(a->metadata[i].key, key) == 0) {
            size_t n = GRPC_SLICE_LENGTH(a->metadata[i].value);

            if (n >= outlen)
                n = outlen - 1;
            memcpy(out, GRPC_SLICE_START_PTR(a->metadata[i].value), n);
            out[n] = '\0';
            return;
        }
    }
}

/* Counts the x-echo-* entries of |a| and checks each against what was sent. */
static int echoed(const grpc_metadata_array *a, const grpc_metadata *sent, size_t nsent, bool *ok)
{
    int n = 0;

    for (size_t i = 0; i < a->count; i++) {
        const grpc_metadata *m = &a->metadata[i];
        bool found = false;

        if (GRPC_SLICE_LENGTH(m->key) < 7 ||
            memcmp(GRPC_SLICE_START_PTR(m->key), "x-echo-", 7) != 0)
            continue;
        n++;
        for (size_t j = 0; j < nsent; j++) {
            if (grpc_slice_eq(sent[j].key, m->key) && grpc_slice_eq(sent[j].value, m->value))
                found = true;
        }
        if (!found)
            *ok = false;
    }
    return n;
}

static int prefixed(const grpc_metadata_array *a, const char *prefix)
{
    size_t plen = strlen(prefix);
    int n = 0;

    for (size_t i = 0; i < a->count; i++) {
        if (GRPC_SLICE_LENGTH(a->metadata[i].key) >= plen &&
            memcmp(GRPC_SLICE_START_PTR(a->metadata[i].key), prefix, plen) == 0)
            n++;
    }
    return n;
}

static void batch(struct gcall *g, const grpc_op *ops, size_t n, struct gtag *t)
{
    grpc_call_error e = grpc_call_start_batch(g->call, ops, n, t, NULL);

    if (e != GRPC_CALL_OK) {
        fprintf(stderr, "gclient: grpc_call_start_batch: %s\n", grpc_call_error_to_string(e));
        abort();
    }
    g->pending++;
}

/* Sends the next request, or the half-close; one send batch at a time. */
static void send_next(struct gcall *g)
{
    grpc_op ops[2];
    size_t n = 0;

    if (g->send_busy || g->send_stopped || g->hold || g->status_done)
        return;
    memset(ops, 0, sizeof(ops));
    if (g->sent < g->nreq) {
        g->send_buf = g->make_req(g, g->sent);
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n].data.send_message.send_message = g->send_buf;
        n++;
        g->sent++;
    }
    if (g->sent == g->nreq) {
        /* Half-close with the last message: END_STREAM on its DATA frame. */
        ops[n++].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
        g->send_stopped = true;
    }
    g->send_busy = true;
    batch(g, ops, n, &g->t_send);
}

static void recv_next(struct gcall *g)
{
    grpc_op op;

    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &g->recv_buf;
    batch(g, &op, 1, &g->t_recv);
}

static void gcall_start(struct gcall *g, struct gctx *ctx, grpc_channel *ch, const char *method,
                        const char *authority, int timeout_ms, const struct gc_md *md, size_t nmd,
                        bool wait_for_ready)
{
    grpc_slice m = grpc_slice_from_copied_string(method);
    grpc_slice host = grpc_empty_slice();
    gpr_timespec deadline = gpr_inf_future(GPR_CLOCK_MONOTONIC);
    grpc_op op;

    g->ctx = ctx;
    g->t_send = (struct gtag){g, GT_SEND};
    g->t_md = (struct gtag){g, GT_MD};
    g->t_recv = (struct gtag){g, GT_RECV};
    g->t_status = (struct gtag){g, GT_STATUS};
    grpc_metadata_array_init(&g->init_md);
    grpc_metadata_array_init(&g->trail_md);
    g->details = grpc_empty_slice();
    g->t0 = now_ms();
    if (timeout_ms > 0)
        deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));
    if (authority)
        host = grpc_slice_from_copied_string(authority);
    g->call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, ctx->cq, m,
                                       authority ? &host : NULL, deadline, NULL);
    grpc_slice_unref(m);
    grpc_slice_unref(host);
    ctx->live++;
    ctx->md_waiting++;

    if (nmd > 0) {
        g->send_md = xcalloc(nmd, sizeof(*g->send_md));
        for (size_t i = 0; i < nmd; i++) {
            g->send_md[i].key = grpc_slice_from_copied_string(md[i].key);
            g->send_md[i].value = grpc_slice_from_copied_string(md[i].value);
        }
        g->nsend_md = nmd;
    }

    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    op.data.recv_status_on_client.trailing_metadata = &g->trail_md;
    op.data.recv_status_on_client.status = &g->status;
    op.data.recv_status_on_client.status_details = &g->details;
    op.data.recv_status_on_client.error_string = &g->error_string;
    batch(g, &op, 1, &g->t_status);

    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_INITIAL_METADATA;
    op.data.recv_initial_metadata.recv_initial_metadata = &g->init_md;
    batch(g, &op, 1, &g->t_md);

    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_SEND_INITIAL_METADATA;
    op.data.send_initial_metadata.count = g->nsend_md;
    op.data.send_initial_metadata.metadata = g->send_md;
    if (wait_for_ready)
        op.flags = GRPC_INITIAL_METADATA_WAIT_FOR_READY |
                   GRPC_INITIAL_METADATA_WAIT_FOR_READY_EXPLICITLY_SET;
    g->send_busy = true;
    batch(g, &op, 1, &g->t_send);
}

static void gcall_on_event(struct gtag *t, bool ok)
{
    struct gcall *g = t->g;

    g->pending--;
    switch (t->kind) {
    case GT_SEND:
        g->send_busy = false;
        if (g->send_buf) {
            grpc_byte_buffer_destroy(g->send_buf);
            g->send_buf = NULL;
        }
        if (!ok)
            g->send_stopped = true; /* the call is over; its status tells why */
        send_next(g);
        break;
    case GT_MD:
        g->md_done = true;
        g->ctx->md_waiting--;
        if (ok && !g->status_done) {
            g->r->got_initial_md = true;
            copy_md(&g->init_md, PEER_BACKEND_ID_KEY, g->r->initial_backend_id,
                    sizeof(g->r->initial_backend_id));
        }
        if (ok)
            recv_next(g);
        break;
    case GT_RECV:
        if (ok && g->recv_buf) {
            grpc_byte_buffer *bb = g->recv_buf;

            g->recv_buf = NULL;
            g->r->replies++;
            if (g->on_reply(g, bb) != 0 && !g->cancelled_by_us) {
                g->cancelled_by_us = true;
                grpc_call_cancel(g->call, NULL);
            }
            grpc_byte_buffer_destroy(bb);
            recv_next(g);
        }
        break;
    case GT_STATUS:
        g->status_done = true;
        g->r->elapsed_ms = now_ms() - g->t0;
        if (g->ctx->md_waiting > 0)
            g->ctx->ended_early++;
        break;
    }
    if (g->status_done && g->pending == 0)
        g->ctx->live--;
}

/* Fills the result's status part and frees what the call holds. */
static void gcall_end(struct gcall *g)
{
    struct gc_result *r = g->r;
    size_t n = GRPC_SLICE_LENGTH(g->details);

    r->status = (int)g->status;
    if (n > 0) {
        if (n >= sizeof(r->message))
            n = sizeof(r->message) - 1;
        memcpy(r->message, GRPC_SLICE_START_PTR(g->details), n);
        r->message[n] = '\0';
    } else if (g->error_string) {
        snprintf(r->message, sizeof(r->message), "%s", g->error_string);
    }
    copy_md(&g->trail_md, PEER_BACKEND_ID_KEY, r->backend_id, sizeof(r->backend_id));
    r->echo_md_ok = true;
    r->echo_md_initial = echoed(&g->init_md, g->send_md, g->nsend_md, &r->echo_md_ok);
    r->echo_md_trailing = echoed(&g->trail_md, g->send_md, g->nsend_md, &r->echo_md_ok);
    r->trailers_extra = prefixed(&g->trail_md, "x-trailer-");
    {
        char v[32] = "";

        copy_md(&g->trail_md, "x-deadline-ms", v, sizeof(v));
        r->deadline_ms = v[0] != '\0' ? strtol(v, NULL, 10) : -1;
        v[0] = '\0';
        copy_md(&g->trail_md, "x-previous-attempts", v, sizeof(v));
        r->previous_attempts = (int)strtol(v, NULL, 10);
    }
    /* A trailers-only response carries the id in the only metadata there is. */
    if (!r->got_initial_md && r->backend_id[0] == '\0')
        copy_md(&g->init_md, PEER_BACKEND_ID_KEY, r->backend_id, sizeof(r->backend_id));

    if (g->error_string)
        gpr_free((void *)g->error_string);
    grpc_slice_unref(g->details);
    grpc_metadata_array_destroy(&g->init_md);
    grpc_metadata_array_destroy(&g->trail_md);
    for (size_t i = 0; i < g->nsend_md; i++) {
        grpc_slice_unref(g->send_md[i].key);
        grpc_slice_unref(g->send_md[i].value);
    }
    free(g->send_md);
    grpc_call_unref(g->call);
}

/* Runs the queue until |*until| drops to zero. */
static void pump(struct gctx *ctx, const int *until)
{
    while (*until > 0) {
        grpc_event ev =
            grpc_completion_queue_next(ctx->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);

        if (ev.type == GRPC_OP_COMPLETE)
            gcall_on_event(ev.tag, ev.success != 0);
    }
}

static void ctx_init(struct gctx *ctx)
{
    memset(ctx, 0, sizeof(*ctx));
    ctx->cq = grpc_completion_queue_create_for_next(NULL);
}

static void ctx_deinit(struct gctx *ctx)
{
    grpc_completion_queue_shutdown(ctx->cq);
    while (grpc_completion_queue_next(ctx->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(ctx->cq);
}

static void result_init(struct gc_result *r)
{
    memset(r, 0, sizeof(*r));
    r->status = -1;
    r->sizes_ok = true;
    r->content_ok = true;
    r->seq_ok = true;
}

/* ---- Echo codec ---- */

struct echo {
    const struct gc_opts *o;
    uint8_t *payload; /* request_size bytes of test pattern */
    size_t expect;    /* expected reply payload size */
};

static grpc_byte_buffer *echo_make_req(struct gcall *g, int idx)
{
    struct echo *e = g->arg;
    Sy__Test__EchoRequest req = SY__TEST__ECHO_REQUEST__INIT;

    (void)idx;
    req.payload.data = e->payload;
    req.payload.len = e->o->request_size;
    req.response_size = e->o->response_size;
    req.response_count = e->o->response_count;
    req.delay_ms = e->o->delay_ms;
    req.fail_code = e->o->fail_code;
    return peer_pack(&req.base);
}

static int echo_on_reply(struct gcall *g, grpc_byte_buffer *bb)
{
    struct echo *e = g->arg;
    struct gc_result *r = g->r;
    Sy__Test__EchoReply *rep =
        (Sy__Test__EchoReply *)peer_unpack(&sy__test__echo_reply__descriptor, bb);

    if (!rep) {
        r->sizes_ok = false;
        r->content_ok = false;
    } else {
        r->bytes_received += rep->payload.len;
        if (rep->payload.len != e->expect)
            r->sizes_ok = false;
        if (!peer_check(rep->payload.data, rep->payload.len))
            r->content_ok = false;
        if (e->o->kind != GC_CLIENT_STREAM && rep->seq != (uint32_t)(r->replies - 1))
            r->seq_ok = false;
        r->last_seq = rep->seq;
        r->server_bytes = rep->bytes_received;
        snprintf(r->reply_backend_id, sizeof(r->reply_backend_id), "%s", rep->backend_id);
        sy__test__echo_reply__free_unpacked(rep, NULL);
    }
    return e->o->cancel_after_replies >= 0 && r->replies >= e->o->cancel_after_replies;
}

static void echo_init(struct echo *e, const struct gc_opts *o)
{
    e->o = o;
    e->payload = xcalloc(1, o->request_size);
    peer_fill(e->payload, o->request_size);
    if (o->response_size > 0)
        e->expect = o->response_size;
    else
        e->expect = o->kind == GC_CLIENT_STREAM ? 0 : o->request_size;
}

static void echo_call_start(struct gcall *g, struct echo *e, struct gctx *ctx, grpc_channel *ch,
                            const struct gc_opts *o, struct gc_result *r, bool hold)
{
    result_init(r);
    g->make_req = echo_make_req;
    g->on_reply = echo_on_reply;
    g->arg = e;
    g->r = r;
    g->nreq = o->request_count < 0 ? 0 : o->request_count;
    g->hold = hold;
    gcall_start(g, ctx, ch, o->method ? o->method : gc_kind_path(o->kind), o->authority,
                o->timeout_ms, o->md, o->nmd, o->wait_for_ready);
}

int gc_chan_call(struct gc_chan *ch, const struct gc_opts *o, struct gc_result *r)
{
    struct gctx ctx;
    struct gcall g;
    struct echo e;

    ensure_init();
    memset(&g, 0, sizeof(g));
    echo_init(&e, o);
    ctx_init(&ctx);
    echo_call_start(&g, &e, &ctx, ch->ch, o, r, false);
    pump(&ctx, &ctx.live);
    gcall_end(&g);
    ctx_deinit(&ctx);
    free(e.payload);
    return r->status;
}

int gc_chan_concurrent(struct gc_chan *ch, int n, const struct gc_opts *o,
                       struct gc_result *results)
{
    struct gctx ctx;
    struct gcall *gs = xcalloc((size_t)n, sizeof(*gs));
    struct echo e;
    int bad = 0;
    bool early;

    ensure_init();
    echo_init(&e, o);
    ctx_init(&ctx);
    for (int i = 0; i < n; i++)
        echo_call_start(&gs[i], &e, &ctx, ch->ch, o, &results[i], true);
    /* Barrier: every call has its response headers (or has ended). */
    pump(&ctx, &ctx.md_waiting);
    early = ctx.ended_early > 0;
    for (int i = 0; i < n; i++) {
        gs[i].hold = false;
        send_next(&gs[i]);
    }
    pump(&ctx, &ctx.live);
    for (int i = 0; i < n; i++) {
        gcall_end(&gs[i]);
        if (results[i].status != 0)
            bad++;
    }
    ctx_deinit(&ctx);
    free(e.payload);
    free(gs);
    return early ? -1 : bad;
}

int gc_call(const char *target, const struct gc_opts *o, struct gc_result *r)
{
    struct gc_chan *ch = gc_chan_new(target);
    int rc = gc_chan_call(ch, o, r);

    gc_chan_free(ch);
    return rc;
}

int gc_concurrent(const char *target, int n, const struct gc_opts *o, struct gc_result *results)
{
    struct gc_chan *ch = gc_chan_new(target);
    int rc = gc_chan_concurrent(ch, n, o, results);

    gc_chan_free(ch);
    return rc;
}

/* ---- raw calls: one request message, replies handed to a callback ---- */

struct raw {
    const ProtobufCMessage *req;
    const ProtobufCMessageDescriptor *rep_desc;
    int (*cb)(void *arg, const ProtobufCMessage *m); /* non-zero: cancel */
    void *arg;
};

static grpc_byte_buffer *raw_make_req(struct gcall *g, int idx)
{
    struct raw *rw = g->arg;

    (void)idx;
    return peer_pack(rw->req);
}

static int raw_on_reply(struct gcall *g, grpc_byte_buffer *bb)
{
    struct raw *rw = g->arg;
    ProtobufCMessage *m = peer_unpack(rw->rep_desc, bb);
    int rc;

    if (!m) {
        g->r->sizes_ok = false;
        return 1;
    }
    rc = rw->cb(rw->arg, m);
    protobuf_c_message_free_unpacked(m, NULL);
    return rc;
}

/* Returns the call's gRPC status; |*by_cb| tells whether |rw->cb| ended it. */
static int raw_call(const char *target, const char *method, struct raw *rw, int timeout_ms,
                    bool *by_cb)
{
    struct gc_chan *ch = gc_chan_new(target);
    struct gc_result r;
    struct gctx ctx;
    struct gcall g;

    memset(&g, 0, sizeof(g));
    result_init(&r);
    ctx_init(&ctx);
    g.make_req = raw_make_req;
    g.on_reply = raw_on_reply;
    g.arg = rw;
    g.r = &r;
    g.nreq = 1;
    gcall_start(&g, &ctx, ch->ch, method, NULL, timeout_ms, NULL, 0, false);
    pump(&ctx, &ctx.live);
    if (by_cb)
        *by_cb = g.cancelled_by_us && r.sizes_ok;
    gcall_end(&g);
    ctx_deinit(&ctx);
    gc_chan_free(ch);
    return r.status;
}

static int stats_cb(void *arg, const ProtobufCMessage *m)
{
    const Sy__Test__StatsReply *rep = (const Sy__Test__StatsReply *)m;
    struct gc_stats *s = arg;

    snprintf(s->backend_id, sizeof(s->backend_id), "%s", rep->backend_id);
    s->calls_started = rep->calls_started;
    s->calls_completed = rep->calls_completed;
    s->calls_cancelled = rep->calls_cancelled;
    s->calls_active = rep->calls_active;
    s->unary = rep->unary;
    s->client_stream = rep->client_stream;
    s->server_stream = rep->server_stream;
    s->bidi = rep->bidi;
    s->messages_received = rep->messages_received;
    s->messages_sent = rep->messages_sent;
    s->bytes_sent = rep->bytes_sent;
    s->health_checks = rep->health_checks;
    s->health_watches = rep->health_watches;
    return 0;
}

int gc_stats(const char *target, bool reset, struct gc_stats *s)
{
    Sy__Test__StatsRequest req = SY__TEST__STATS_REQUEST__INIT;
    struct raw rw = {&req.base, &sy__test__stats_reply__descriptor, stats_cb, s};

    memset(s, 0, sizeof(*s));
    req.reset = reset;
    return raw_call(target, "/sy.test.Control/Stats", &rw, 5000, NULL);
}

static int ignore_cb(void *arg, const ProtobufCMessage *m)
{
    (void)arg;
    (void)m;
    return 0;
}

int gc_set_health(const char *target, const char *service, int status)
{
    Sy__Test__SetHealthRequest req = SY__TEST__SET_HEALTH_REQUEST__INIT;
    struct raw rw = {&req.base, &sy__test__set_health_reply__descriptor, ignore_cb, NULL};

    req.service = (char *)service;
    req.status = (Sy__Test__ServingStatus)status;
    return raw_call(target, "/sy.test.Control/SetHealth", &rw, 5000, NULL);
}

static int check_cb(void *arg, const ProtobufCMessage *m)
{
    *(int *)arg = ((const Grpc__Health__V1__HealthCheckResponse *)m)->status;
    return 0;
}

int gc_health_check(const char *target, const char *service, int *status)
{
    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    struct raw rw = {&req.base, &grpc__health__v1__health_check_response__descriptor, check_cb,
                     status};

    *status = -1;
    req.service = (char *)service;
    return raw_call(target, "/grpc.health.v1.Health/Check", &rw, 1000, NULL);
}

struct watch {
    gc_watch_cb cb;
    void *arg;
};

static int watch_cb(void *arg, const ProtobufCMessage *m)
{
    struct watch *w = arg;

    return w->cb(w->arg, ((const Grpc__Health__V1__HealthCheckResponse *)m)->status);
}

int gc_health_watch(const char *target, const char *service, int timeout_ms, gc_watch_cb cb,
                    void *arg)
{
    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    struct watch w = {cb, arg};
    struct raw rw = {&req.base, &grpc__health__v1__health_check_response__descriptor, watch_cb, &w};
    bool by_cb = false;
    int st;

    req.service = (char *)service;
    st = raw_call(target, "/grpc.health.v1.Health/Watch", &rw, timeout_ms, &by_cb);
    if (by_cb)
        return 0;
    return st == 0 ? GRPC_STATUS_UNKNOWN : st;
}
