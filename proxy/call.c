/* Calls (call.h): routing, attempts and what their ends mean, deadlines and
 * idle timeouts, switchyard's own answers, and the two body flows.
 * Invariant: the request flow's source is the client, the response flow's the
 * committed attempt; each credits its source per flow.h, so one stalled
 * stream holds at most its own window of bytes.
 * SPDX-License-Identifier: MIT */
#define LOG_MODULE "call"
#include "proxy/call.h"

#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "conf/conf.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/grpc.h"
#include "core/log.h"
#include "proxy/conn.h"
#include "proxy/flow.h"
#include "proxy/retry.h"

/* The longest a response head waits for its first message (see |held|). */
#define PROXY_HOLD_MS 200

struct proxy_call {
    struct proxy_call *next_free;
    struct proxy_call_env *env;
    enum proxy_call_state state;
    const struct proxy_call_side_ops *side_ops;
    struct proxy_call_side side;
    const char *peer;

    /* request */
    struct proxy_head req;
    const uint8_t *path; /* into an rcbuf of |req|: stable while the call lives */
    size_t pathlen;
    const uint8_t *method;
    size_t methodlen;
    const uint8_t *ctype;
    size_t ctypelen;
    uint64_t timeout_ms; /* from grpc-timeout when |has_timeout| */
    bool has_timeout;
    bool hdr_too_big;
    struct proxy_flow req_body;
    struct grpc_scan req_scan;

    /* timers */
    struct event *deadline_ev;
    struct event *idle_ev;
    struct event *retry_ev; /* the backoff before a retry, or the next hedge */
    struct event *hold_ev;  /* ends the hold of |held|'s response head */
    uint64_t last_active_ms;
    uint64_t deadline_ms; /* CLOCK_MONOTONIC ms the call must end by; 0: none */
    bool no_idle;

    /* routing and attempts */
    bool routed;
    bool local;       /* answered by switchyard itself */
    uint32_t cluster; /* index in the snapshot of generation |gen| */
    uint64_t gen;
    char cluster_name[128];
    char endpoint[BAL_ADDRSTRLEN];  /* the last attempt's */
    struct proxy_attempt *attempts; /* running */
    struct proxy_attempt *committed;
    uint32_t ntries;  /* attempts made, transparent retries included */
    uint32_t npolicy; /* attempts that count toward retry_max_attempts */
    uint32_t nunseen; /* attempts no backend saw (transparent retries, up to max_retries) */
    bool hedge_next;  /* |retry_ev| starts a hedge (else a retry after its backoff) */
    uint32_t tried[PROXY_MAX_TRIES];
    bool keep;      /* request bytes kept for replay (a retry policy or hedging) */
    bool no_more;   /* committed to the attempts running: no more retries or hedges */
    bool skip_soft; /* this pick may reuse an endpoint tried before (a policy retry) */
    /* The attempt whose response head is held back in |rhead| (a copy) until
     * its first message, its end or PROXY_HOLD_MS: an error right after the
     * head (gRPC C++ servers send head and trailers apart) or a connection
     * lost before any message is still retried. Only while |keep|. */
    struct proxy_attempt *held;
    char why[192]; /* why the last attempt failed, for the final message */

    /* response */
    struct proxy_flow resp_body;
    struct grpc_scan resp_scan;
    bool resp_boundary;      /* the body added so far ends on a message boundary */
    struct proxy_head rhead; /* switchyard's own response heads */
    struct proxy_head trailers;

    int status; /* gRPC status the client got; -1 not known yet */
    uint64_t start_ns;
    alignas(max_align_t) unsigned char fstate[]; /* the filters' per-call state */
};

static const char *const state_names[PROXY_CALL_STATE_COUNT] = {
    "head", "filtering", "routed", "streaming", "final", "done",
};

const char *proxy_call_state_name(enum proxy_call_state s)
{
    return s < PROXY_CALL_STATE_COUNT ? state_names[s] : "?";
}

static void set_state(struct proxy_call *call, enum proxy_call_state s)
{
    if (s > call->state)
        call->state = s;
}

static void *fstate(struct proxy_call *call, size_t i)
{
    return call->fstate + call->env->fstate_off[i];
}

static void touch(struct proxy_call *call)
{
    call->last_active_ms = proxy_loop_ms(call->env->base);
}

/* Cancels every running attempt (RST_STREAM |h2err| to the backends). */
static void cancel_attempts(struct proxy_call *call, uint32_t h2err);
static void attempt_unlink(struct proxy_call *call, struct proxy_attempt *a,
                           const struct proxy_attempt_result *r);
static void attempt_drop(struct proxy_call *call, struct proxy_attempt *a, uint32_t h2err);
static void lb_attempt_end(struct proxy_call *call, uint32_t ep_id);
static bool outlier_record(struct proxy_call *call, const struct proxy_attempt *a,
                           const struct proxy_attempt_result *r);
static void replay_end(struct proxy_call *call);
static void on_retry_timer(evutil_socket_t fd, short what, void *arg);
static void on_hold_timer(evutil_socket_t fd, short what, void *arg);

/* ---- the decision ---- */

enum proxy_verdict proxy_call_verdict(const struct proxy_verdict_in *in)
{
    const struct proxy_attempt_result *r = &in->r;

    if (r->outcome == PROXY_ATTEMPT_COMPLETE)
        return PROXY_VERDICT_DONE;
    if (in->committed || r->reached)
        return PROXY_VERDICT_FAIL;
    /* The backend never saw it: another endpoint may take it, as long as the
     * request bytes the attempt sent are still here to send again. */
    if (!in->replayable)
        return PROXY_VERDICT_REFUSE; /* gRPC clients retry a refused stream themselves */
    if (in->tries < in->max_tries)
        return PROXY_VERDICT_RETRY;
    return PROXY_VERDICT_FAIL;
}

/* ---- the call's cluster ---- */

/* The routed cluster of |call| in the worker's current snapshot: by index
 * while the snapshot is the one the call was routed in, else by name (a
 * reload may have moved it); NULL when a reload removed it. */
static const struct bal_cluster *cluster_of(const struct proxy_call *call)
{
    const struct bal_snapshot *s = call->env->snap;

    if (!call->routed)
        return NULL;
    if (call->gen == s->generation)
        return &s->clusters[call->cluster];
    for (size_t i = 0; i < s->nclusters; i++) {
        if (strcmp(s->clusters[i].name, call->cluster_name) == 0)
            return &s->clusters[i];
    }
    return NULL;
}

/* The worker's state for the routed cluster of |call|, or NULL. */
static struct proxy_cluster_state *cs_of(const struct proxy_call *call)
{
    const struct bal_cluster *cl = cluster_of(call);

    return cl != NULL && cl->index < call->env->ncs ? &call->env->cs[cl->index] : NULL;
}

/* ---- flow sources ---- */

static void credit_client(void *src, size_t n, bool stream)
{
    struct proxy_call *call = src;

    call->side_ops->credit(&call->side, n, stream);
}

static const struct proxy_flow_src_ops client_src = {.credit = credit_client};

static void credit_attempt(void *src, size_t n, bool stream)
{
    proxy_attempt_credit(src, n, stream);
}

static const struct proxy_flow_src_ops attempt_src = {.credit = credit_attempt};

/* ---- timers ---- */

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    /* The backend gets RST_STREAM(CANCEL), the client DEADLINE_EXCEEDED. */
    proxy_call_fail(arg, GRPC_DEADLINE_EXCEEDED, "switchyard: deadline exceeded");
}

/* The deadline has passed by the clock, though its timer may not have run
 * yet: an end that the backend sends at (or after) the deadline reaches us in
 * the same loop turn as the timer, and may be read first. The deadline wins:
 * a client with a timer of its own would have given up by then. */
static bool deadline_passed(const struct proxy_call *call)
{
    return call->deadline_ms != 0 && core_mono_ns() / 1000000 >= call->deadline_ms;
}

static uint32_t idle_timeout_ms(const struct proxy_call *call)
{
    return call->env->snap->conf->proxy.stream_idle_timeout_ms;
}

static void on_idle(evutil_socket_t fd, short what, void *arg)
{
    struct proxy_call *call = arg;
    uint64_t now = proxy_loop_ms(call->env->base);
    uint32_t limit = idle_timeout_ms(call);
    char msg[96];

    (void)fd;
    (void)what;
    if (limit == 0 || call->no_idle)
        return;
    if (now - call->last_active_ms < limit) {
        /* Bytes moved meanwhile: wait for what is left of the timeout. */
        uint64_t left = limit - (now - call->last_active_ms);
        struct timeval tv = {.tv_sec = left / 1000, .tv_usec = (left % 1000) * 1000};

        event_add(call->idle_ev, &tv);
        return;
    }
    log_info("call %.*s from %s: no byte moved for %u ms; resetting", (int)call->pathlen,
             (const char *)call->path, call->peer, limit);
    if (proxy_flow_pending(&call->resp_body) > 0 || call->state >= PROXY_CALL_FINAL) {
        /* The client is not taking what it has: trailers would wait behind it. */
        cancel_attempts(call, NGHTTP2_CANCEL);
        if (call->status < 0)
            call->status = GRPC_CANCELLED;
        set_state(call, PROXY_CALL_FINAL);
        proxy_flow_release(&call->resp_body);
        call->side_ops->reset(&call->side, NGHTTP2_CANCEL);
        return;
    }
    snprintf(msg, sizeof(msg), "switchyard: stream idle for %u ms (stream_idle_timeout)", limit);
    proxy_call_fail(call, GRPC_UNAVAILABLE, msg);
}

static void idle_arm(struct proxy_call *call)
{
    uint32_t limit = idle_timeout_ms(call);

    if (limit == 0 || call->no_idle)
        return;
    touch(call);
    /* Common timeout (same duration for every call): O(1) add and delete. */
    if (call->env->idle_tv != NULL) {
        event_add(call->idle_ev, call->env->idle_tv);
    } else {
        struct timeval tv = {.tv_sec = limit / 1000, .tv_usec = (limit % 1000) * 1000};

        event_add(call->idle_ev, &tv);
    }
}

void proxy_call_no_idle_timeout(struct proxy_call *call)
{
    call->no_idle = true;
    event_del(call->idle_ev);
}

void proxy_call_arm_deadline(struct proxy_call *call)
{
    struct timeval tv;

    if (!call->has_timeout)
        return;
    tv.tv_sec = (time_t)(call->timeout_ms / 1000);
    tv.tv_usec = (suseconds_t)(call->timeout_ms % 1000) * 1000;
    event_add(call->deadline_ev, &tv);
}

/* ---- life ---- */

struct proxy_call *proxy_call_new(struct proxy_call_env *env, const struct proxy_call_side_ops *ops,
                                  void *conn, int32_t sid, const char *peer)
{
    struct proxy_call *call = env->free_calls;

    if (call != NULL) {
        env->free_calls = call->next_free;
    } else {
        call = xcalloc(1, sizeof(*call) + env->fstate_size);
        call->env = env;
        proxy_flow_init(&call->req_body);
        proxy_flow_init(&call->resp_body);
        call->deadline_ev = event_new(env->base, -1, 0, on_deadline, call);
        call->idle_ev = event_new(env->base, -1, 0, on_idle, call);
        call->retry_ev = event_new(env->base, -1, 0, on_retry_timer, call);
        call->hold_ev = event_new(env->base, -1, 0, on_hold_timer, call);
        if (call->deadline_ev == NULL || call->idle_ev == NULL || call->retry_ev == NULL ||
            call->hold_ev == NULL)
            core_oom();
    }
    call->next_free = NULL;
    call->state = PROXY_CALL_HEAD;
    call->side_ops = ops;
    call->side = (struct proxy_call_side){.call = call, .conn = conn, .sid = sid};
    call->peer = peer;
    call->status = -1;
    call->resp_boundary = true;
    call->start_ns = core_mono_ns();
    memset(call->fstate, 0, env->fstate_size);
    proxy_flow_set_src(&call->req_body, &client_src, call);
    return call;
}

static void call_destroy(struct proxy_call *call)
{
    proxy_flow_deinit(&call->req_body);
    proxy_flow_deinit(&call->resp_body);
    proxy_head_deinit(&call->req);
    proxy_head_deinit(&call->rhead);
    proxy_head_deinit(&call->trailers);
    event_free(call->deadline_ev);
    event_free(call->idle_ev);
    event_free(call->retry_ev);
    event_free(call->hold_ev);
    free(call);
}

void proxy_call_env_deinit(struct proxy_call_env *env)
{
    while (env->free_calls != NULL) {
        struct proxy_call *call = env->free_calls;

        env->free_calls = call->next_free;
        call_destroy(call);
    }
    while (env->free_attempts != NULL) {
        struct proxy_attempt *a = env->free_attempts;

        env->free_attempts = a->next;
        proxy_attempt_deinit(a);
        free(a);
    }
}

void proxy_call_side_closed(struct proxy_call *call, uint32_t h2err)
{
    struct proxy_call_env *env = call->env;

    event_del(call->deadline_ev);
    event_del(call->idle_ev);
    event_del(call->retry_ev);
    event_del(call->hold_ev);
    if (call->status < 0 || (h2err != NGHTTP2_NO_ERROR && call->state < PROXY_CALL_FINAL))
        call->status = GRPC_CANCELLED; /* the client went away or reset the stream */
    /* A backend whose response is complete (trailers in) while the client was
     * still sending gets NO_ERROR; the others CANCEL (RFC 9113 §8.1). */
    if (call->committed != NULL && call->resp_body.eof) {
        struct proxy_attempt *a = call->committed;

        call->committed = NULL;
        attempt_drop(call, a, NGHTTP2_NO_ERROR);
    }
    cancel_attempts(call, NGHTTP2_CANCEL);
    set_state(call, PROXY_CALL_DONE);
    if (call->path != NULL) {
        for (size_t i = 0; i < env->nfilters; i++) {
            if (env->filters[i]->on_done != NULL)
                env->filters[i]->on_done(call, fstate(call, i), env->filter_ws[i]);
        }
    }
    /* Nobody takes what is left; the client's stream is closed, so no credit. */
    proxy_flow_set_src(&call->req_body, NULL, NULL);
    proxy_flow_set_src(&call->resp_body, NULL, NULL);
    proxy_flow_reset(&call->req_body);
    proxy_flow_reset(&call->resp_body);
    proxy_head_clear(&call->req); /* rcbufs of the client's session */
    proxy_head_clear(&call->rhead);
    proxy_head_clear(&call->trailers);
    {
        /* Keep the buffers, arrays and events for the next call of this
         * worker (only these are copied: the call is large, and freed often). */
        struct proxy_flow req_body = call->req_body, resp_body = call->resp_body;
        struct proxy_head req = call->req, rhead = call->rhead, trailers = call->trailers;
        struct event *deadline_ev = call->deadline_ev, *idle_ev = call->idle_ev,
                     *retry_ev = call->retry_ev, *hold_ev = call->hold_ev;

        memset(call, 0, sizeof(*call));
        call->env = env;
        call->req_body = req_body;
        call->resp_body = resp_body;
        call->req = req;
        call->rhead = rhead;
        call->trailers = trailers;
        call->deadline_ev = deadline_ev;
        call->idle_ev = idle_ev;
        call->retry_ev = retry_ev;
        call->hold_ev = hold_ev;
        call->side.call = call;
    }
    call->next_free = env->free_calls;
    env->free_calls = call;
}

/* ---- request intake ---- */

/* Counts one request field against max_header_list_size and notes what the
 * call needs from it. Returns false when the field is not kept. */
static bool head_field_ok(struct proxy_call *call, const uint8_t *n, size_t nlen, const uint8_t *v,
                          size_t vlen)
{
    uint32_t limit = call->env->snap->conf->proxy.max_header_list_size;

    /* nghttp2 1.52 does not enforce the SETTINGS_MAX_HEADER_LIST_SIZE we
     * advertise: count as RFC 9113 §6.5.2 does and stop keeping fields past
     * it; HPACK decoding goes on so the connection stays in sync, and the call
     * is answered RESOURCE_EXHAUSTED. */
    if (call->hdr_too_big || call->req.bytes + nlen + vlen + PROXY_HEAD_FIELD_OVERHEAD > limit) {
        call->hdr_too_big = true;
        return false;
    }
    if (nlen == 12 && memcmp(n, "grpc-timeout", 12) == 0)
        /* A malformed value is forwarded as it is; the backend answers it. */
        call->has_timeout = grpc_timeout_parse(v, vlen, &call->timeout_ms) == 0;
    return true;
}

void proxy_call_head_field(struct proxy_call *call, nghttp2_rcbuf *name, nghttp2_rcbuf *value)
{
    nghttp2_vec n = nghttp2_rcbuf_get_buf(name);
    nghttp2_vec v = nghttp2_rcbuf_get_buf(value);

    if (head_field_ok(call, n.base, n.len, v.base, v.len))
        proxy_head_add_rc(&call->req, name, value);
}

void proxy_call_head_add(struct proxy_call *call, const char *name, size_t nlen, const char *value,
                         size_t vlen)
{
    if (head_field_ok(call, (const uint8_t *)name, nlen, (const uint8_t *)value, vlen))
        proxy_head_add(&call->req, name, nlen, value, vlen);
}

/* The fields the call itself looks at; pointers into |call->req| stay valid
 * until the call ends (head.h). */
static void head_note(struct proxy_call *call)
{
    /* One pass over the fields (this runs for every call, again after a
     * filter rewrote the head); the first field of each name counts. */
    bool path = false, method = false, ctype = false;

    for (size_t i = 0; i < call->req.n; i++) {
        const nghttp2_nv *f = &call->req.nv[i];

        if (!path && proxy_nv_is(f, ":path", 5)) {
            call->path = f->value;
            call->pathlen = f->valuelen;
            path = true;
        } else if (!method && proxy_nv_is(f, ":method", 7)) {
            call->method = f->value;
            call->methodlen = f->valuelen;
            method = true;
        } else if (!ctype && proxy_nv_is(f, "content-type", 12)) {
            call->ctype = f->value;
            call->ctypelen = f->valuelen;
            ctype = true;
        }
    }
}

bool proxy_call_wants_request(const struct proxy_call *call)
{
    return call->state < PROXY_CALL_FINAL;
}

static void resume_attempts(struct proxy_call *call)
{
    for (struct proxy_attempt *a = call->attempts; a != NULL; a = a->next)
        proxy_attempt_resume(a);
}

/* gRPC-framed request bytes go to the attempts: checked against
 * max_message_size, buffered (the one copy), sent on. */
void proxy_call_req_emit(struct proxy_call *call, const uint8_t *p, size_t n)
{
    uint32_t max = call->env->snap->conf->proxy.max_message_size;

    if (call->state >= PROXY_CALL_FINAL)
        return;
    if (grpc_scan_feed(&call->req_scan, p, n, max) != 0) {
        proxy_flow_release(&call->req_body);
        proxy_call_fail(call, GRPC_RESOURCE_EXHAUSTED,
                        "switchyard: request message larger than max_message_size");
        return;
    }
    proxy_flow_add(&call->req_body, p, n);
    if (call->keep &&
        (cluster_of(call) == NULL || call->req_body.added > cluster_of(call)->conf->retry_buffer))
        replay_end(call); /* past retry_buffer: never sent again */
    resume_attempts(call);
}

void proxy_call_req_data(struct proxy_call *call, const uint8_t *p, size_t n)
{
    struct proxy_call_env *env = call->env;

    if (!proxy_call_wants_request(call)) {
        /* Nobody will send these bytes on: all the credit back now. */
        call->side_ops->credit(&call->side, n, false);
        call->side_ops->credit(&call->side, n, true);
        return;
    }
    touch(call);
    proxy_flow_received(&call->req_body, n);
    for (size_t i = 0; i < env->nfilters; i++) {
        if (env->filters[i]->on_request_data != NULL &&
            env->filters[i]->on_request_data(call, fstate(call, i), env->filter_ws[i], p, n, false))
            return;
    }
    proxy_call_req_emit(call, p, n);
}

void proxy_call_req_end(struct proxy_call *call)
{
    struct proxy_call_env *env = call->env;

    if (call->state < PROXY_CALL_FILTERING) {
        call->req_body.eof = true;
        return; /* END_STREAM on the head: proxy_call_head_done() has it */
    }
    /* A transforming filter emits what it still holds before the end. */
    for (size_t i = 0; i < env->nfilters && call->state < PROXY_CALL_FINAL; i++) {
        if (env->filters[i]->on_request_data != NULL &&
            env->filters[i]->on_request_data(call, fstate(call, i), env->filter_ws[i], NULL, 0,
                                             true))
            break;
    }
    call->req_body.eof = true;
    resume_attempts(call);
    for (size_t i = 0; i < env->nfilters && call->state < PROXY_CALL_FINAL; i++) {
        if (env->filters[i]->on_request_end != NULL)
            env->filters[i]->on_request_end(call, fstate(call, i), env->filter_ws[i]);
    }
}

/* ---- the response body and its end ---- */

void proxy_call_resp_emit(struct proxy_call *call, const uint8_t *p, size_t n)
{
    if (call->state < PROXY_CALL_STREAMING || call->state >= PROXY_CALL_DONE)
        return;
    proxy_flow_add(&call->resp_body, p, n);
    call->side_ops->resume(&call->side);
}

/* Response body bytes (gRPC-framed) for the client: through the filters that
 * transform them, else as they are. */
static void resp_data(struct proxy_call *call, const uint8_t *p, size_t n)
{
    struct proxy_call_env *env = call->env;

    for (size_t i = 0; i < env->nfilters; i++) {
        if (env->filters[i]->on_response_data != NULL &&
            env->filters[i]->on_response_data(call, fstate(call, i), env->filter_ws[i], p, n))
            return;
    }
    proxy_call_resp_emit(call, p, n);
}

/* The response ends with call->trailers after the body: filters may edit
 * them or turn them into body bytes (gRPC-Web). */
static void end_with_trailers(struct proxy_call *call)
{
    struct proxy_call_env *env = call->env;

    set_state(call, PROXY_CALL_FINAL);
    event_del(call->deadline_ev);
    for (size_t i = 0; i < env->nfilters; i++) {
        if (env->filters[i]->on_response_trailers != NULL)
            env->filters[i]->on_response_trailers(call, fstate(call, i), env->filter_ws[i],
                                                  &call->trailers);
    }
    call->resp_body.eof = true;
    call->side_ops->resume(&call->side);
}

/* ---- switchyard's own answers ---- */

void proxy_call_send_head(struct proxy_call *call, struct proxy_head *h, bool end)
{
    if (call->state >= PROXY_CALL_DONE)
        return;
    if (call->side_ops->send_head(&call->side, h->nv, h->n, end) != 0)
        log_debug("call %.*s: response head not submitted", (int)call->pathlen,
                  (const char *)call->path);
}

/* Response heads go through the filters (CORS, tracing, conversions) like
 * the backends', then to the client unless a filter holds it back. */
static void send_head(struct proxy_call *call, struct proxy_head *h, bool end)
{
    struct proxy_call_env *env = call->env;

    for (size_t i = 0; i < env->nfilters; i++) {
        if (env->filters[i]->on_response_head != NULL &&
            env->filters[i]->on_response_head(call, fstate(call, i), env->filter_ws[i], h, end) ==
                PROXY_FILTER_STOP)
            return;
    }
    proxy_call_send_head(call, h, end);
}

void proxy_call_resp_finish(struct proxy_call *call)
{
    if (call->state >= PROXY_CALL_DONE)
        return;
    set_state(call, PROXY_CALL_FINAL);
    event_del(call->deadline_ev);
    call->resp_body.eof = true;
    call->side_ops->resume(&call->side);
}

void proxy_call_req_credit(struct proxy_call *call, size_t n)
{
    proxy_flow_credit_held(&call->req_body, n);
}

void proxy_call_resp_credit(struct proxy_call *call, size_t n)
{
    proxy_flow_credit_held(&call->resp_body, n);
}

static void cancel_attempts(struct proxy_call *call, uint32_t h2err)
{
    struct proxy_attempt *a;

    while ((a = call->attempts) != NULL) {
        if (a == call->committed) {
            proxy_flow_set_src(&call->resp_body, NULL, NULL);
            call->committed = NULL;
        }
        attempt_drop(call, a, h2err);
    }
}

void proxy_call_respond_http(struct proxy_call *call, const char *status)
{
    if (call->state >= PROXY_CALL_STREAMING)
        return;
    cancel_attempts(call, NGHTTP2_CANCEL);
    event_del(call->deadline_ev);
    call->local = true;
    call->status = GRPC_UNKNOWN; /* not a gRPC call */
    set_state(call, PROXY_CALL_FINAL);
    proxy_head_clear(&call->rhead);
    proxy_head_add_static(&call->rhead, ":status", status);
    send_head(call, &call->rhead, true);
}

static void add_status(struct proxy_head *h, int code, const char *msg)
{
    char codebuf[12], enc[512];
    size_t elen;

    snprintf(codebuf, sizeof(codebuf), "%d", code);
    proxy_head_add(h, "grpc-status", 11, codebuf, strlen(codebuf));
    if (msg != NULL && msg[0] != '\0') {
        elen = grpc_message_encode(msg, enc, sizeof(enc));
        proxy_head_add(h, "grpc-message", 12, enc, elen);
    }
}

void proxy_call_fail(struct proxy_call *call, int code, const char *msg)
{
    if (call->state >= PROXY_CALL_FINAL)
        return;
    cancel_attempts(call, NGHTTP2_CANCEL);
    event_del(call->deadline_ev);
    event_del(call->retry_ev);
    call->status = code;
    log_debug("call %.*s: %s: %s", (int)call->pathlen, (const char *)call->path,
              grpc_code_name(code), msg);
    if (call->state < PROXY_CALL_STREAMING) {
        /* Trailers-Only (gRPC PROTOCOL-HTTP2: HTTP-Status Content-Type Trailers). */
        if (!call->routed)
            call->local = true;
        set_state(call, PROXY_CALL_FINAL);
        proxy_head_clear(&call->rhead);
        proxy_head_add_static(&call->rhead, ":status", "200");
        proxy_head_add_static(&call->rhead, "content-type", "application/grpc");
        add_status(&call->rhead, code, msg);
        send_head(call, &call->rhead, true);
        return;
    }
    set_state(call, PROXY_CALL_FINAL);
    if (!call->resp_boundary) {
        /* Part of a message went out: trailers now would read as a truncated
         * message. Reset the stream instead. */
        proxy_flow_release(&call->resp_body);
        call->side_ops->reset(&call->side, NGHTTP2_INTERNAL_ERROR);
        return;
    }
    /* Response headers went out already: trailers after the whole messages
     * received (a response must not end with RST_STREAM(NO_ERROR), which gRPC
     * clients read as INTERNAL). */
    proxy_head_clear(&call->trailers);
    add_status(&call->trailers, code, msg);
    end_with_trailers(call);
}

void proxy_call_respond_head(struct proxy_call *call)
{
    if (call->state >= PROXY_CALL_STREAMING)
        return;
    call->local = true;
    set_state(call, PROXY_CALL_STREAMING);
    proxy_head_clear(&call->rhead);
    proxy_head_add_static(&call->rhead, ":status", "200");
    proxy_head_add_static(&call->rhead, "content-type", "application/grpc");
    send_head(call, &call->rhead, false);
}

void proxy_call_respond_data(struct proxy_call *call, const void *p, size_t n)
{
    if (call->state != PROXY_CALL_STREAMING)
        return;
    resp_data(call, p, n);
}

void proxy_call_respond_end(struct proxy_call *call, int code, const char *msg)
{
    if (call->state != PROXY_CALL_STREAMING)
        return;
    call->status = code;
    proxy_head_clear(&call->trailers);
    add_status(&call->trailers, code, msg);
    end_with_trailers(call);
}

/* ---- routing and attempts ---- */

static enum bal_skip skip_endpoint(const struct bal_endpoint *ep, void *arg)
{
    struct proxy_call *call = arg;
    struct proxy_call_env *env = call->env;
    const struct bal_cluster *cl = &env->snap->clusters[call->cluster];
    struct proxy_pool *pool;

    /* Hedges and transparent retries go elsewhere; a policy retry prefers
     * another endpoint but may come back (one backend that failed once). */
    for (uint32_t i = 0; i < call->ntries; i++) {
        if (call->tried[i] == ep->id)
            return call->skip_soft ? BAL_SKIP_SOFT : BAL_SKIP_HARD;
    }
    pool = proxy_pool_find(env->pools, cl, ep);
    if (pool != NULL && proxy_pool_is_down(pool, proxy_loop_ms(env->base)))
        return BAL_SKIP_SOFT;
    return BAL_SKIP_NO;
}

/* Attempts no backend saw that a call may make: 1 + max_retries. */
static uint32_t max_tries(const struct proxy_call *call)
{
    const struct bal_cluster *cl = cluster_of(call);

    return cl != NULL ? cl->conf->max_retries + 1 : 1;
}

static const struct proxy_attempt_ops attempt_ops;

static struct proxy_attempt *attempt_alloc(struct proxy_call *call)
{
    struct proxy_call_env *env = call->env;
    struct proxy_attempt *a = env->free_attempts;

    if (a != NULL) {
        env->free_attempts = a->next;
        a->next = NULL;
    } else {
        a = xcalloc(1, sizeof(*a));
    }
    proxy_attempt_init(a, &attempt_ops, call);
    return a;
}

/* |a| ended (|r|) or was cancelled, and leaves |call|: the policy and the
 * filters hear of its end, once, and it goes back to the free list. */
static void attempt_unlink(struct proxy_call *call, struct proxy_attempt *a,
                           const struct proxy_attempt_result *r)
{
    struct proxy_call_env *env = call->env;
    struct proxy_attempt **pp = &call->attempts;

    while (*pp != NULL && *pp != a)
        pp = &(*pp)->next;
    if (call->held == a) {
        call->held = NULL;
        event_del(call->hold_ev);
        proxy_head_clear(&call->rhead);
    }
    if (*pp == a) {
        *pp = a->next;
        lb_attempt_end(call, a->ep_id);
        a->ejected = outlier_record(call, a, r);
        for (size_t i = 0; i < env->nfilters; i++) {
            if (env->filters[i]->on_attempt_end != NULL)
                env->filters[i]->on_attempt_end(call, fstate(call, i), env->filter_ws[i], a, r);
        }
    }
    proxy_head_clear(&a->head);
    a->next = env->free_attempts;
    env->free_attempts = a;
}

/* Cancels |a| (RST_STREAM |h2err| at its backend, or out of its pool's
 * queue) and lets it go. */
static void attempt_drop(struct proxy_call *call, struct proxy_attempt *a, uint32_t h2err)
{
    struct proxy_attempt_result r = {
        .outcome = PROXY_ATTEMPT_RESET,
        .reached = a->state >= PROXY_ATTEMPT_SENT,
        .h2err = h2err,
        .why = "cancelled by switchyard",
        .cancelled = true,
    };

    proxy_attempt_cancel(a, h2err);
    attempt_unlink(call, a, &r);
}

/* What the policy needs to pick for |call|: the skip rule, ring_hash's key
 * (per hash_on: a request header's value or the client's IP address without
 * the port; none: the policy picks at random) and, for slow_start, the time. */
static void pick_req(struct proxy_call *call, const struct conf_cluster *cc,
                     struct bal_pick_req *req)
{
    *req = (struct bal_pick_req){.skip = skip_endpoint, .arg = call, .again = call->ntries > 0};
    if (cc->hash_on == CONF_HASH_HEADER) {
        const nghttp2_nv *f = proxy_head_get(&call->req, cc->hash_header, strlen(cc->hash_header));

        if (f != NULL) {
            req->key = f->value;
            req->keylen = f->valuelen;
        }
    } else if (cc->hash_on == CONF_HASH_PEER) {
        const char *colon = strrchr(call->peer, ':');

        req->key = (const uint8_t *)call->peer;
        req->keylen = colon != NULL ? (size_t)(colon - call->peer) : strlen(call->peer);
        if (req->keylen > 2 && call->peer[0] == '[') { /* "[v6]:port" -> "v6" */
            req->key++;
            req->keylen -= 2;
        }
    }
    if (cc->slow_start_ms > 0)
        req->now_ms = core_mono_ns() / 1000000;
}

/* Outlier detection hears how attempt |a| ended, when that says something
 * about its backend: a status it answered (a failure per
 * outlier_failure_codes), or a connection lost or a stream reset under it.
 * Attempts switchyard cancelled before an answer, and those no backend saw,
 * say nothing. Returns whether this outcome ejected the endpoint. */
static bool outlier_record(struct proxy_call *call, const struct proxy_attempt *a,
                           const struct proxy_attempt_result *r)
{
    struct proxy_call_env *env = call->env;
    const struct bal_cluster *cl = cluster_of(call);
    struct proxy_cluster_state *cs = cs_of(call);
    const struct conf_cluster *cc;
    enum bal_outlier_verdict v;
    uint32_t min_calls;
    bool failure;

    if (cl == NULL || cs == NULL || !cl->conf->outlier_detection)
        return false;
    cc = cl->conf;
    if (a->status >= 0 && a->status < GRPC_CODE_COUNT)
        failure = (cc->outlier_failure_codes & 1u << a->status) != 0;
    else if (r->reached && !r->cancelled &&
             (r->outcome == PROXY_ATTEMPT_LOST || r->outcome == PROXY_ATTEMPT_RESET))
        failure = true;
    else
        return false;
    /* Each worker counts its own share of the calls. */
    min_calls = (uint32_t)((cc->outlier_min_calls + env->nworkers - 1) / env->nworkers);
    v = bal_outlier_record(&cs->outlier, cc, a->ep_id, failure, core_mono_ns() / 1000000,
                           min_calls);
    if (v == BAL_OUTLIER_KEEP)
        return false;
    if (env->eject != NULL) {
        for (size_t i = 0; i < cl->nendpoints; i++) {
            if (cl->endpoints[i].id == a->ep_id) {
                env->eject(env->eject_arg, cl->name, a->ep_id, cl->endpoints[i].addr_str, v);
                break;
            }
        }
    }
    return true;
}

/* An attempt of |call| on endpoint |ep_id| is over: the policy hears of it. */
static void lb_attempt_end(struct proxy_call *call, uint32_t ep_id)
{
    struct proxy_cluster_state *cs = cs_of(call);

    if (cs != NULL)
        bal_attempt_end(&cs->lb, ep_id);
}

/* What attempt |a| sends: the call's request head, as filters edit it for
 * this attempt (the fields are borrowed, edits are the attempt's own). */
static void attempt_head(struct proxy_call *call, struct proxy_attempt *a)
{
    struct proxy_call_env *env = call->env;

    proxy_head_borrow(&a->head, &call->req);
    if (a->number > 0) {
        /* gRFC A6: the backend sees how many attempts came before. */
        char v[12];
        int n = snprintf(v, sizeof(v), "%u", a->number);

        proxy_head_set(&a->head, "grpc-previous-rpc-attempts", 26, v, (size_t)n);
    }
    if (call->deadline_ms != 0) {
        /* Each attempt gets what is left of the deadline (and max_timeout's
         * cap, or the cluster's timeout, reaches the backend this way). */
        uint64_t now = core_mono_ns() / 1000000,
                 left = call->deadline_ms > now ? call->deadline_ms - now : 1;
        char v[GRPC_TIMEOUT_MAX];

        proxy_head_set(&a->head, "grpc-timeout", 12, v, grpc_timeout_format(left, v));
    }
    for (size_t i = 0; i < env->nfilters; i++) {
        if (env->filters[i]->on_attempt_start != NULL)
            env->filters[i]->on_attempt_start(call, fstate(call, i), env->filter_ws[i], a,
                                              &a->head);
    }
}

static void arm_retry(struct proxy_call *call, uint32_t ms, bool hedge);

/* Picks an endpoint (skipping those tried) and starts an attempt on it; on no
 * endpoint, or when every try is spent, answers UNAVAILABLE. |policy|: the
 * attempt counts toward retry_max_attempts (the first, a policy retry or a
 * hedge; not a transparent retry of an attempt no backend saw). */
static void dispatch(struct proxy_call *call, bool policy)
{
    struct proxy_call_env *env = call->env;
    const struct bal_snapshot *s = env->snap;
    const struct bal_cluster *cl;
    char msg[320];

    for (;;) {
        const struct bal_endpoint *ep;
        struct proxy_attempt *a;
        struct proxy_pool *pool;
        struct bal_pick_req req;
        const char *why = NULL;
        int idx;

        if (call->gen != s->generation) {
            /* A new snapshot since the last attempt (a reload): route again. */
            cl = bal_route(s, (const char *)call->path, call->pathlen);
            if (cl == NULL) {
                proxy_call_fail(call, GRPC_UNAVAILABLE,
                                "switchyard: the route went away in a reload");
                return;
            }
            call->cluster = cl->index;
            call->gen = s->generation;
        }
        cl = &s->clusters[call->cluster];
        pick_req(call, cl->conf, &req);
        idx = bal_pick(cl, &env->cs[call->cluster].lb, &req);
        if (idx == BAL_ENOENDPOINT) {
            if (cl->nendpoints == 0 && cl->unresolved != NULL)
                snprintf(msg, sizeof(msg),
                         "switchyard: cluster %s has no endpoint: %s is unresolved", cl->name,
                         cl->unresolved);
            else
                snprintf(msg, sizeof(msg), "switchyard: no healthy endpoint in cluster %s",
                         cl->name);
            proxy_call_fail(call, GRPC_UNAVAILABLE, msg);
            return;
        }
        if (idx < 0) {
            snprintf(msg, sizeof(msg),
                     "switchyard: no endpoint of cluster %s could take the call: %s", cl->name,
                     call->why);
            proxy_call_fail(call, GRPC_UNAVAILABLE, msg);
            return;
        }
        ep = &cl->endpoints[idx];
        if (call->ntries == PROXY_MAX_TRIES) {
            proxy_call_fail(call, GRPC_UNAVAILABLE, "switchyard: too many attempts");
            return;
        }
        call->tried[call->ntries++] = ep->id;
        memcpy(call->endpoint, ep->addr_str, sizeof(call->endpoint));
        pool = proxy_pool_get(env->pools, s, cl, ep);
        a = attempt_alloc(call);
        a->number = call->ntries - 1;
        memcpy(a->endpoint, ep->addr_str, sizeof(a->endpoint));
        attempt_head(call, a);
        if (env->start_attempt(a, pool, &a->head, ep->id, &why) == 0) {
            const struct conf_cluster *cc = cl->conf;

            a->next = call->attempts;
            call->attempts = a;
            /* The policy hears of it (least_request counts, per worker). */
            bal_attempt_start(&env->cs[call->cluster].lb, ep->id);
            if (policy)
                call->npolicy++;
            if (call->keep && (call->no_more || (call->npolicy >= cc->retry_max_attempts &&
                                                 call->attempts->next == NULL)))
                replay_end(call); /* no attempt will need these bytes again */
            else if (call->keep && cc->hedge_delay_ms > 0 && call->npolicy < cc->retry_max_attempts)
                arm_retry(call, cc->hedge_delay_ms, true);
            return;
        }
        /* Could not even start: like a connect failure, nothing was sent. */
        proxy_head_clear(&a->head);
        a->next = env->free_attempts;
        env->free_attempts = a;
        snprintf(call->why, sizeof(call->why), "%s: %s", ep->addr_str, why);
        if (++call->nunseen >= max_tries(call)) {
            snprintf(msg, sizeof(msg), "switchyard: %s", call->why);
            proxy_call_fail(call, GRPC_UNAVAILABLE, msg);
            return;
        }
        policy = false; /* what follows is a transparent retry */
    }
}

/* ---- retries and hedges (gRFC A6) ---- */

/* The call keeps no more request bytes for replay: it is committed to the one
 * attempt that goes on (the committed one, else the one furthest into the
 * request; the others are cancelled). With no attempt running (a retry's
 * backoff), the next attempt is the last and ends replay as it starts. */
static void replay_end(struct proxy_call *call)
{
    struct proxy_attempt *keep = call->committed, *a;

    call->no_more = true;
    if (!call->keep || call->attempts == NULL)
        return;
    event_del(call->retry_ev);
    if (keep == NULL) {
        for (a = call->attempts; a != NULL; a = a->next) {
            if (keep == NULL || a->req_sent > keep->req_sent)
                keep = a;
        }
    }
    for (a = call->attempts; a != NULL;) {
        struct proxy_attempt *next = a->next;

        if (a != keep)
            attempt_drop(call, a, NGHTTP2_CANCEL);
        a = next;
    }
    call->keep = false;
    proxy_flow_unkeep(&call->req_body, keep->req_sent);
}

static void on_retry_timer(evutil_socket_t fd, short what, void *arg)
{
    struct proxy_call *call = arg;
    const struct bal_cluster *cl = cluster_of(call);
    struct proxy_cluster_state *cs = cs_of(call);

    (void)fd;
    (void)what;
    if (call->state != PROXY_CALL_ROUTED || cl == NULL || cs == NULL)
        return;
    if (call->hedge_next) {
        /* A hedge: another attempt while the others still run, if the
         * budget allows (hedges are retries to it). None once a response
         * head came (A6), even while it is held. */
        const struct conf_cluster *cc = cl->conf;

        if (call->no_more || call->held != NULL || call->npolicy >= cc->retry_max_attempts)
            return;
        if (!proxy_budget_take(&cs->budget, core_mono_ns() / 1000000000u, cc->retry_budget,
                               (double)cc->retry_budget_min / (double)call->env->nworkers)) {
            cs->budget_exhausted++;
            return;
        }
        cs->hedges++;
    }
    call->skip_soft = !call->hedge_next;
    dispatch(call, true);
    call->skip_soft = false;
}

static void arm_retry(struct proxy_call *call, uint32_t ms, bool hedge)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};

    call->hedge_next = hedge;
    event_add(call->retry_ev, &tv);
}

enum {
    RETRY_NO = 0,
    RETRY_SCHEDULED,
    RETRY_OTHERS_RUN
};

/* An attempt ended with gRPC status |status| (a trailers-only answer, or what
 * a reset or a lost connection means to a client) before the call committed,
 * and has left the call's list: retries it per the cluster's policy (after
 * A6's backoff, or the backend's pushback), or in hedging lets the other
 * attempts run on. Returns RETRY_NO when the status is final for the call. */
static int try_again(struct proxy_call *call, int status, int64_t pushback)
{
    const struct bal_cluster *cl = cluster_of(call);
    struct proxy_cluster_state *cs = cs_of(call);
    const struct conf_cluster *cc;
    bool hedging;
    double r;

    if (cl == NULL || cs == NULL || status < 0 || status >= GRPC_CODE_COUNT)
        return RETRY_NO;
    cc = cl->conf;
    hedging = cc->hedge_delay_ms > 0;
    if (!(cc->retry_on & 1u << status) || call->no_more || !call->keep ||
        call->state != PROXY_CALL_ROUTED)
        return RETRY_NO;
    if (hedging && call->attempts != NULL)
        return RETRY_OTHERS_RUN; /* a non-fatal status: the other hedges go on */
    if (call->npolicy >= cc->retry_max_attempts || pushback == PROXY_PUSHBACK_STOP)
        return RETRY_NO;
    if (!proxy_budget_take(&cs->budget, core_mono_ns() / 1000000000u, cc->retry_budget,
                           (double)cc->retry_budget_min / (double)call->env->nworkers)) {
        cs->budget_exhausted++;
        return RETRY_NO;
    }
    cs->retries[status]++;
    if (hedging) { /* the next hedge goes now (A6) */
        arm_retry(call, 0, true);
        return RETRY_SCHEDULED;
    }
    r = (double)random() / ((double)RAND_MAX + 1.0);
    arm_retry(call,
              pushback >= 0
                  ? (uint32_t)pushback
                  : proxy_backoff_ms(cc->retry_initial_backoff_ms, cc->retry_max_backoff_ms,
                                     cc->retry_backoff_multiplier, call->npolicy, r),
              false);
    return RETRY_SCHEDULED;
}

/* Once routed to |cl|: the deadline (the client's grpc-timeout capped by
 * max_timeout, else the cluster's timeout), the retry budget's count, and
 * replay when a retry policy or hedging may send the request again. */
static void route_setup(struct proxy_call *call, const struct bal_cluster *cl)
{
    const struct conf_cluster *cc = cl->conf;
    uint64_t eff = 0;

    if (call->has_timeout) {
        eff = call->timeout_ms;
        if (cc->max_timeout_ms > 0 && eff > cc->max_timeout_ms)
            eff = cc->max_timeout_ms;
    } else if (cc->timeout_ms > 0) {
        eff = cc->timeout_ms;
    }
    if (eff > 0) {
        struct timeval tv = {.tv_sec = (time_t)(eff / 1000),
                             .tv_usec = (suseconds_t)(eff % 1000) * 1000};

        call->deadline_ms = call->start_ns / 1000000 + eff;
        event_add(call->deadline_ev, &tv);
    }
    if (cl->index < call->env->ncs)
        proxy_budget_call(&call->env->cs[cl->index].budget, core_mono_ns() / 1000000000u);
    if (cc->retry_on != 0 || cc->hedge_delay_ms > 0) {
        call->keep = true;
        proxy_flow_keep(&call->req_body);
    }
}

/* Runs each filter's on_request_early (|early|) or on_request_head hook.
 * Returns true when one of them answered or ended the call: the caller
 * stops there. After an early hook the head is read again (a bridge may have
 * rewritten :path, :method or content-type). */
static bool request_hooks(struct proxy_call *call, bool early)
{
    struct proxy_call_env *env = call->env;

    for (size_t i = 0; i < env->nfilters; i++) {
        const struct proxy_filter *f = env->filters[i];
        enum proxy_filter_rc (*hook)(struct proxy_call *, void *, void *) =
            early ? f->on_request_early : f->on_request_head;

        uint32_t edits = call->req.edits;

        if (hook == NULL)
            continue;
        if (hook(call, fstate(call, i), env->filter_ws[i]) == PROXY_FILTER_STOP) {
            call->local = true;
            if (call->req_body.eof && call->state < PROXY_CALL_FINAL)
                proxy_call_req_end(call);
            return true;
        }
        if (call->state >= PROXY_CALL_FINAL)
            return true;
        if (early && call->req.edits != edits)
            head_note(call); /* the filter rewrote the head (gRPC-Web, REST) */
    }
    return false;
}

void proxy_call_head_done(struct proxy_call *call, bool end)
{
    struct proxy_call_env *env = call->env;
    const struct bal_cluster *cl;
    char msg[256];

    set_state(call, PROXY_CALL_FILTERING);
    if (end)
        call->req_body.eof = true;
    head_note(call);
    idle_arm(call);
    if (call->hdr_too_big) {
        proxy_call_fail(call, GRPC_RESOURCE_EXHAUSTED,
                        "switchyard: request headers exceed max_header_list_size");
        return;
    }
    if (request_hooks(call, true))
        return;
    if (call->methodlen != 4 || memcmp(call->method, "POST", 4) != 0) {
        proxy_call_respond_http(call, "405");
        return;
    }
    /* gRPC PROTOCOL-HTTP2: servers answer other content types with 415. */
    if (call->ctype == NULL || call->ctypelen < 16 ||
        memcmp(call->ctype, "application/grpc", 16) != 0) {
        proxy_call_respond_http(call, "415");
        return;
    }
    if (call->path == NULL || !grpc_path_is_canonical(call->path, call->pathlen)) {
        proxy_call_fail(call, GRPC_UNIMPLEMENTED,
                        "switchyard: malformed method path (expected /package.Service/Method)");
        return;
    }
    /* grpc-timeout: 0 is a deadline that has passed already. */
    if (call->has_timeout && call->timeout_ms == 0) {
        proxy_call_fail(call, GRPC_DEADLINE_EXCEEDED, "switchyard: deadline exceeded on arrival");
        return;
    }
    if (request_hooks(call, false))
        return;
    cl = bal_route(env->snap, (const char *)call->path, call->pathlen);
    if (cl == NULL) {
        snprintf(msg, sizeof(msg), "switchyard: no route for %.*s", (int)call->pathlen,
                 (const char *)call->path);
        proxy_call_fail(call, GRPC_UNIMPLEMENTED, msg);
        return;
    }
    call->cluster = cl->index;
    call->gen = env->snap->generation;
    call->routed = true;
    {
        /* Kept by name for a reload that moves the cluster (no snprintf:
         * every call comes by here). */
        size_t n = strnlen(cl->name, sizeof(call->cluster_name) - 1);

        memcpy(call->cluster_name, cl->name, n);
        call->cluster_name[n] = '\0';
    }
    set_state(call, PROXY_CALL_ROUTED);
    route_setup(call, cl);
    dispatch(call, true);
}

/* ---- what attempts report ---- */

static struct proxy_call *owner_of(struct proxy_attempt *a)
{
    return a->owner;
}

static int status_of(const struct proxy_head *h)
{
    const nghttp2_nv *f = proxy_head_get(h, "grpc-status", 11);

    return f != NULL ? grpc_status_parse(f->value, f->valuelen) : -1;
}

static void commit(struct proxy_call *call, struct proxy_attempt *a)
{
    struct proxy_attempt *o;

    call->committed = a;
    /* The others (hedges, later) are cancelled: their backends get CANCEL. */
    for (o = call->attempts; o != NULL;) {
        struct proxy_attempt *next = o->next;

        if (o != a)
            attempt_drop(call, o, NGHTTP2_CANCEL);
        o = next;
    }
    proxy_flow_set_src(&call->resp_body, &attempt_src, a);
}

/* The held head goes to the client: its attempt is committed (the others
 * are cancelled) and the call streams. */
static void hold_release(struct proxy_call *call)
{
    struct proxy_attempt *a = call->held;

    call->held = NULL;
    event_del(call->hold_ev);
    commit(call, a);
    replay_end(call);
    set_state(call, PROXY_CALL_STREAMING);
    send_head(call, &call->rhead, false);
}

static void on_hold_timer(evutil_socket_t fd, short what, void *arg)
{
    struct proxy_call *call = arg;

    (void)fd;
    (void)what;
    if (call->held != NULL && call->state == PROXY_CALL_ROUTED)
        hold_release(call);
}

/* The held attempt |a| ended with trailers |h| and no message: like a
 * Trailers-Only answer, an error may be tried again. Returns false when the
 * trailers should go to the client the usual way (OK, or too large). */
static bool held_end(struct proxy_call *call, struct proxy_attempt *a, struct proxy_head *h)
{
    const nghttp2_nv *pb = proxy_head_get(h, "grpc-retry-pushback-ms", 22);
    int status = status_of(h);
    int64_t pushback =
        proxy_pushback_parse(pb != NULL ? pb->value : NULL, pb != NULL ? pb->valuelen : 0);

    if (status <= 0 || h->bytes > call->env->snap->conf->proxy.max_header_list_size)
        return false;
    /* Copied before the attempt goes: they may be the answer. */
    proxy_head_clear(&call->trailers);
    proxy_head_copy(&call->trailers, h);
    call->status = status;
    a->status = status;
    call->held = NULL;
    event_del(call->hold_ev);
    attempt_drop(call, a, NGHTTP2_NO_ERROR);
    if (try_again(call, status, pushback) != RETRY_NO) {
        proxy_head_clear(&call->rhead);
        proxy_head_clear(&call->trailers);
        return true;
    }
    /* Final: the head and these trailers go to the client as they came. */
    cancel_attempts(call, NGHTTP2_CANCEL);
    event_del(call->retry_ev);
    set_state(call, PROXY_CALL_STREAMING);
    send_head(call, &call->rhead, false);
    end_with_trailers(call);
    return true;
}

static void on_attempt_head(struct proxy_attempt *a, struct proxy_head *h, bool end)
{
    struct proxy_call *call = owner_of(a);

    if (call->state != PROXY_CALL_ROUTED) {
        attempt_drop(call, a, NGHTTP2_CANCEL);
        return;
    }
    if (end && deadline_passed(call)) {
        on_deadline(-1, 0, call);
        return;
    }
    touch(call);
    if (end && call->keep) {
        /* Trailers-only before anything reached the client: a retryable
         * status may be tried again (gRFC A6: servers answer an error before
         * any message this way, so that clients can). */
        const nghttp2_nv *pb = proxy_head_get(h, "grpc-retry-pushback-ms", 22);
        int status = status_of(h);
        int64_t pushback =
            proxy_pushback_parse(pb != NULL ? pb->value : NULL, pb != NULL ? pb->valuelen : 0);

        call->status = status;
        a->status = status;
        attempt_drop(call, a, NGHTTP2_NO_ERROR);
        if (try_again(call, status, pushback) != RETRY_NO)
            return;
        /* Final: it goes to the client as it came, the other hedges are
         * cancelled. */
        cancel_attempts(call, NGHTTP2_CANCEL);
        event_del(call->retry_ev);
        event_del(call->deadline_ev);
        set_state(call, PROXY_CALL_FINAL);
        send_head(call, h, true);
        return;
    }
    if (!end && call->keep && call->held == NULL) {
        struct timeval tv = {.tv_sec = 0, .tv_usec = PROXY_HOLD_MS * 1000};

        /* Copied: the hold may outlive this attempt's connection. */
        proxy_head_clear(&call->rhead);
        proxy_head_copy(&call->rhead, h);
        call->held = a;
        event_add(call->hold_ev, &tv);
        return;
    }
    if (call->held != NULL) {
        /* Another attempt's head came first: it wins, this one is cancelled. */
        hold_release(call);
        return;
    }
    commit(call, a);
    replay_end(call); /* committed: nothing will be sent again */
    if (end) {
        /* Trailers-Only: the status is among these headers. */
        call->status = status_of(h);
        a->status = call->status;
        event_del(call->deadline_ev);
        set_state(call, PROXY_CALL_FINAL);
    } else {
        set_state(call, PROXY_CALL_STREAMING);
    }
    send_head(call, h, end);
}

static void on_attempt_data(struct proxy_attempt *a, const uint8_t *p, size_t n)
{
    struct proxy_call *call = owner_of(a);
    uint32_t max = call->env->snap->conf->proxy.max_message_size;

    if (a == call->held)
        hold_release(call); /* a message: this attempt is the answer */
    if (a != call->committed || call->state != PROXY_CALL_STREAMING) {
        /* Nobody will send these bytes on: give the credit back now. */
        proxy_attempt_credit(a, n, false);
        proxy_attempt_credit(a, n, true);
        return;
    }
    touch(call);
    if (grpc_scan_feed(&call->resp_scan, p, n, max) != 0) {
        proxy_attempt_credit(a, n, false);
        proxy_attempt_credit(a, n, true);
        proxy_call_fail(call, GRPC_RESOURCE_EXHAUSTED,
                        "switchyard: response message larger than max_message_size");
        return;
    }
    proxy_flow_received(&call->resp_body, n);
    call->resp_boundary = call->resp_scan.need == 0 && call->resp_scan.hlen == 0;
    resp_data(call, p, n);
}

static void on_attempt_trailers(struct proxy_attempt *a, struct proxy_head *h)
{
    struct proxy_call *call = owner_of(a);
    uint32_t limit = call->env->snap->conf->proxy.max_header_list_size;

    if ((a == call->held || a == call->committed) && deadline_passed(call)) {
        on_deadline(-1, 0, call);
        return;
    }
    if (a == call->held) {
        if (held_end(call, a, h))
            return;
        hold_release(call);
    }
    if (a != call->committed || call->state != PROXY_CALL_STREAMING)
        return;
    touch(call);
    proxy_head_clear(&call->trailers);
    if (h->bytes > limit) {
        call->status = GRPC_INTERNAL;
        add_status(&call->trailers, GRPC_INTERNAL,
                   "switchyard: response trailers exceed max_header_list_size");
    } else {
        /* Copied: the trailers go out after the body, which may outlive the
         * backend connection whose session owns these rcbufs. */
        proxy_head_copy(&call->trailers, h);
        call->status = status_of(h);
    }
    a->status = call->status;
    end_with_trailers(call);
}

/* What a client would have seen for an attempt the backend saw but that
 * ended without a status: a reset CANCEL is CANCELLED, anything else (a
 * reset, a lost connection) UNAVAILABLE. */
static int status_of_end(const struct proxy_attempt_result *r)
{
    return r->outcome == PROXY_ATTEMPT_RESET && r->h2err == NGHTTP2_CANCEL ? GRPC_CANCELLED
                                                                           : GRPC_UNAVAILABLE;
}

static void on_attempt_end(struct proxy_attempt *a, const struct proxy_attempt_result *r)
{
    struct proxy_call *call = owner_of(a);
    struct proxy_verdict_in in = {
        .r = *r,
        .committed = call->state >= PROXY_CALL_STREAMING || call->committed == a,
        /* Bytes kept for replay can be sent again, whatever left already. */
        .replayable = a->req_sent == 0 || call->keep,
        .tries = call->nunseen + 1,
        .max_tries = call->routed ? max_tries(call) : 1,
    };
    bool was_committed = call->committed == a;
    char msg[320];

    if (was_committed) {
        proxy_flow_set_src(&call->resp_body, NULL, NULL);
        call->committed = NULL;
    }
    attempt_unlink(call, a, r);
    if (call->state >= PROXY_CALL_FINAL && r->outcome == PROXY_ATTEMPT_COMPLETE)
        return;
    switch (proxy_call_verdict(&in)) {
    case PROXY_VERDICT_DONE:
        /* The backend ended without trailers (END_STREAM on DATA): so does
         * the client's response. */
        if (call->state == PROXY_CALL_STREAMING) {
            proxy_head_clear(&call->trailers);
            end_with_trailers(call);
        }
        return;
    case PROXY_VERDICT_RETRY:
        if (call->state != PROXY_CALL_ROUTED)
            return;
        call->nunseen++;
        snprintf(call->why, sizeof(call->why), "%s", r->why);
        log_debug("call %.*s: retrying: %s", (int)call->pathlen, (const char *)call->path, r->why);
        {
            struct proxy_cluster_state *cs = cs_of(call);

            if (cs != NULL)
                cs->retries[PROXY_RETRY_UNSEEN]++;
        }
        dispatch(call, false);
        return;
    case PROXY_VERDICT_REFUSE:
        if (call->state >= PROXY_CALL_STREAMING)
            return;
        event_del(call->deadline_ev);
        call->status = GRPC_UNAVAILABLE; /* what gRPC clients make of REFUSED_STREAM */
        set_state(call, PROXY_CALL_FINAL);
        call->side_ops->reset(&call->side, NGHTTP2_REFUSED_STREAM);
        return;
    case PROXY_VERDICT_FAIL:
        /* Not committed yet: a retry policy may try again (the backend saw
         * it, so only a policy that says so). */
        if (!in.committed && try_again(call, status_of_end(r), PROXY_PUSHBACK_NONE) != RETRY_NO)
            return;
        snprintf(msg, sizeof(msg), "switchyard: %s", r->why);
        proxy_call_fail(call, GRPC_UNAVAILABLE, msg);
        return;
    }
}

/* Request body for attempt |a|: one reader at a time, so the flow is drained
 * as it is written. */
static size_t attempt_req_avail(struct proxy_attempt *a, bool *eof)
{
    struct proxy_call *call = owner_of(a);

    *eof = call->req_body.eof;
    /* Replay: each attempt reads from where it is; else the one attempt
     * takes what is buffered. */
    if (call->keep)
        return proxy_flow_avail_at(&call->req_body, a->req_sent);
    return proxy_flow_pending(&call->req_body);
}

static void attempt_req_write(struct proxy_attempt *a, struct evbuffer *out, size_t n)
{
    struct proxy_call *call = owner_of(a);

    touch(call);
    /* attempt.c counted |n| into req_sent already: they start before it. */
    proxy_flow_write_at(&call->req_body, a->req_sent - n, out, n);
}

static const struct proxy_attempt_ops attempt_ops = {
    .on_head = on_attempt_head,
    .on_data = on_attempt_data,
    .on_trailers = on_attempt_trailers,
    .on_end = on_attempt_end,
    .req_avail = attempt_req_avail,
    .req_write = attempt_req_write,
};

/* ---- response pull (the frontend's data source) ---- */

size_t proxy_call_resp_avail(struct proxy_call *call, bool *eof)
{
    *eof = call->state >= PROXY_CALL_FINAL && call->resp_body.eof;
    return proxy_flow_pending(&call->resp_body);
}

void proxy_call_resp_write(struct proxy_call *call, struct evbuffer *out, size_t n)
{
    touch(call);
    proxy_flow_write(&call->resp_body, out, n);
}

const struct proxy_head *proxy_call_resp_trailers(struct proxy_call *call)
{
    return &call->trailers;
}

/* ---- accessors ---- */

struct proxy_head *proxy_call_req_head(struct proxy_call *call)
{
    return &call->req;
}

const uint8_t *proxy_call_path(const struct proxy_call *call, size_t *len)
{
    *len = call->pathlen;
    return call->path;
}

struct evbuffer *proxy_call_req_body(struct proxy_call *call)
{
    return call->req_body.buf;
}

bool proxy_call_req_ended(const struct proxy_call *call)
{
    return call->req_body.eof;
}

enum proxy_call_state proxy_call_state(const struct proxy_call *call)
{
    return call->state;
}

struct proxy_call_env *proxy_call_env(const struct proxy_call *call)
{
    return call->env;
}

void *proxy_call_filter_state(struct proxy_call *call, const struct proxy_filter *f)
{
    struct proxy_call_env *env = call->env;

    for (size_t i = 0; i < env->nfilters; i++) {
        if (env->filters[i] == f)
            return fstate(call, i);
    }
    return NULL;
}

struct proxy_call_side *proxy_call_side(struct proxy_call *call)
{
    return &call->side;
}

const char *proxy_call_peer(const struct proxy_call *call)
{
    return call->peer;
}

void proxy_call_info(const struct proxy_call *call, struct proxy_call_info *info)
{
    info->status = call->status;
    info->cluster = call->routed ? call->cluster_name : NULL;
    info->endpoint = call->ntries > 0 ? call->endpoint : NULL;
    info->attempts = call->ntries;
    info->bytes_in = call->req_body.in;
    info->bytes_out = call->resp_body.out;
    info->msgs_in = call->req_scan.msgs;
    info->msgs_out = call->resp_scan.msgs;
    info->start_ns = call->start_ns;
    info->local = call->local;
}
