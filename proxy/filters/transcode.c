/* The REST/JSON transcoding filter: a request whose verb and path match a
 * google.api.http binding of the snapshot's table becomes a gRPC call
 * (rewritten head, JSON body and URL fields built into one binary message);
 * the response goes back as JSON with an HTTP status from grpc-status.
 * Every error of such a call, switchyard's own included, reaches the client
 * as {"code", "message", "details"} with google.rpc.Code's HTTP status.
 * Invariant: a call is REST from on_request_early on (|active|) and then
 * holds a reference to its table; its response head is held back until the
 * first message or the trailers decide the status, and is sent exactly once.
 * SPDX-License-Identifier: MIT */
#define LOG_MODULE "transcode"
#include "proxy/filters/filters.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "conf/conf.h"
#include "core/alloc.h"
#include "core/grpc.h"
#include "core/log.h"
#include "proxy/call.h"
#include "proxy/filters/transcode.h"

#define FRAME_HDR  5
#define MAX_PARAMS 64 /* path variables and query parameters of one request */
#define SPARE_BUFS 16 /* evbuffers a worker keeps for the next calls */

struct tc_call {
    bool active;                /* this filter transcodes the call */
    bool head_sent;             /* our response head went out */
    bool ended;                 /* the request message was built */
    int http_override;          /* an HTTP status of our own (405), else 0 */
    struct tc_table *table;     /* a reference, while |active| */
    const struct tc_binding *b; /* NULL: answered without a binding (404, 405) */
    const char *path;           /* the request's :path as received (stable: head.h) */
    size_t pathlen;
    struct evbuffer *in;    /* request: the JSON body; response: gRPC bytes not yet whole */
    struct evbuffer *out;   /* response: JSON made and not yet emitted (unary) */
    uint32_t nmsg;          /* response messages converted */
    struct proxy_head head; /* our response head */
};

struct tc_worker {
    struct evbuffer *spare[SPARE_BUFS];
    size_t nspare;
};

static struct evbuffer *buf_get(struct tc_worker *w)
{
    struct evbuffer *b = w->nspare > 0 ? w->spare[--w->nspare] : evbuffer_new();

    if (b == NULL)
        core_oom();
    return b;
}

static void buf_put(struct tc_worker *w, struct evbuffer **b)
{
    if (*b == NULL)
        return;
    evbuffer_drain(*b, evbuffer_get_length(*b));
    if (w->nspare < SPARE_BUFS)
        w->spare[w->nspare++] = *b;
    else
        evbuffer_free(*b);
    *b = NULL;
}

static bool nv_value_is(const nghttp2_nv *f, const char *v)
{
    size_t n = strlen(v);

    return f != NULL && f->valuelen >= n && strncasecmp((const char *)f->value, v, n) == 0;
}

/* ---- JSON bits ---- */

static void json_str(struct evbuffer *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t run = 0;

    evbuffer_add(b, "\"", 1);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        evbuffer_add(b, s + run, i - run);
        run = i + 1;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};

            evbuffer_add(b, e, 2);
        } else {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};

            evbuffer_add(b, e, 6);
        }
    }
    evbuffer_add(b, s + run, len - run);
    evbuffer_add(b, "\"", 1);
}

static int b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

/* Base64 (padded or not, as gRPC sends -bin values) into |out| (room for
 * 3/4 of |n|). Returns the length, or -1. */
static long b64_decode(const uint8_t *in, size_t n, uint8_t *out)
{
    uint32_t acc = 0;
    int bits = 0;
    long o = 0;

    while (n > 0 && in[n - 1] == '=')
        n--;
    for (size_t i = 0; i < n; i++) {
        int v = b64val(in[i]);

        if (v < 0)
            return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    return o;
}

/* {"code": N, "message": "...", "details": [...]} from a gRPC status, its
 * grpc-message and grpc-status-details-bin (details in |pool|'s types). */
static void error_json(struct evbuffer *b, int code, const nghttp2_nv *msg,
                       const nghttp2_nv *details, const struct tc_pool *pool)
{
    char tmp[1024];
    long n = 0;

    evbuffer_add_printf(b, "{\"code\":%d,\"message\":", code);
    if (msg != NULL && msg->valuelen <= sizeof(tmp))
        n = tc_pct_decode((const char *)msg->value, msg->valuelen, tmp, false, false);
    json_str(b, n > 0 ? tmp : grpc_code_name(code),
             n > 0 ? (size_t)n : strlen(grpc_code_name(code)));
    evbuffer_add(b, ",\"details\":", 11);
    if (details == NULL || pool == NULL || details->valuelen > 64 * 1024) {
        evbuffer_add(b, "[]", 2);
    } else {
        uint8_t *raw = xcalloc(1, details->valuelen);
        long rn = b64_decode(details->value, details->valuelen, raw);

        if (rn < 0 || tc_status_details_json(pool, raw, (size_t)rn, b) != 0)
            evbuffer_add(b, "[]", 2);
        free(raw);
    }
    evbuffer_add(b, "}", 1);
}

/* ---- sending ---- */

static void emit(struct proxy_call *call, struct evbuffer *b)
{
    size_t n = evbuffer_get_length(b);

    if (n == 0)
        return;
    proxy_call_resp_emit(call, evbuffer_pullup(b, (ev_ssize_t)n), n);
    evbuffer_drain(b, n);
}

static void send_head(struct proxy_call *call, struct tc_call *st, int status, const char *ctype)
{
    char code[8];

    if (st->head_sent)
        return;
    st->head_sent = true;
    snprintf(code, sizeof(code), "%d", status);
    /* :status first (RFC 9113 §8.3): the kept metadata was added after it. */
    proxy_head_set(&st->head, ":status", 7, code, strlen(code));
    proxy_head_set(&st->head, "content-type", 12, ctype, strlen(ctype));
    proxy_call_send_head(call, &st->head, false);
}

/* Answers with the error |code| (and the fields of |h|, which may be NULL),
 * as the body after our head, or as the last element of a stream whose head
 * went out already. */
static void send_error(struct proxy_call *call, struct tc_call *st, struct tc_worker *w, int code,
                       const struct proxy_head *h)
{
    const nghttp2_nv *msg = h != NULL ? proxy_head_get(h, "grpc-message", 12) : NULL;
    const nghttp2_nv *det = h != NULL ? proxy_head_get(h, "grpc-status-details-bin", 23) : NULL;
    const struct tc_pool *pool = st->b != NULL ? st->b->pool : NULL;
    struct evbuffer *b = buf_get(w);

    if (!st->head_sent) {
        if (st->out != NULL)
            evbuffer_drain(st->out, evbuffer_get_length(st->out));
        send_head(call, st, st->http_override != 0 ? st->http_override : tc_http_status(code),
                  "application/json");
        error_json(b, code, msg, det, pool);
    } else if (st->b->ndjson) {
        evbuffer_add(b, "{\"error\":", 9);
        error_json(b, code, msg, det, pool);
        evbuffer_add(b, "}\n", 2);
    } else {
        /* A JSON array already streaming: the error is its last element. */
        evbuffer_add(b, st->nmsg > 0 ? ",{\"error\":" : "{\"error\":", st->nmsg > 0 ? 10 : 9);
        error_json(b, code, msg, det, pool);
        evbuffer_add(b, "}]", 2);
    }
    emit(call, b);
    buf_put(w, &b);
}

/* A response without grpc-status: gRPC's HTTP-to-gRPC status mapping
 * (doc/http-grpc-status-mapping.md). */
static int code_of_http(const nghttp2_nv *st)
{
    int http = 0;

    for (size_t i = 0; st != NULL && st->valuelen == 3 && i < 3; i++)
        http = http * 10 + (st->value[i] >= '0' && st->value[i] <= '9' ? st->value[i] - '0' : 0);

    switch (http) {
    case 400:
        return GRPC_INTERNAL;
    case 401:
        return GRPC_UNAUTHENTICATED;
    case 403:
        return GRPC_PERMISSION_DENIED;
    case 404:
        return GRPC_UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
        return GRPC_UNAVAILABLE;
    default:
        return GRPC_UNKNOWN;
    }
}

static int status_of(const struct proxy_head *h, bool *present)
{
    const nghttp2_nv *f = proxy_head_get(h, "grpc-status", 11);
    int code = f != NULL ? grpc_status_parse(f->value, f->valuelen) : -1;

    *present = code >= 0;
    return code >= 0 ? code : GRPC_UNKNOWN;
}

/* ---- request ---- */

/* The request message from the body, the path variables and the query
 * string, as one gRPC message to the attempts. */
static void build_request(struct proxy_call *call, struct tc_call *st, struct tc_worker *w)
{
    const struct tc_binding *b = st->b;
    struct tc_capture caps[TC_MAX_VARS];
    struct tc_param params[MAX_PARAMS];
    const char *q = memchr(st->path, '?', st->pathlen);
    size_t plen = q != NULL ? (size_t)(q - st->path) : st->pathlen, np = 0;
    char *scratch = xcalloc(1, st->pathlen + 1), *sp = scratch;
    const struct tc_binding *again = NULL;
    struct evbuffer *msg = buf_get(w);
    size_t blen = st->in != NULL ? evbuffer_get_length(st->in) : 0;
    char err[512], why[600];

    st->ended = true;
    /* Path variables: matched again (no allocation) rather than kept. */
    if (tc_table_match(st->table, b->verb, strlen(b->verb), st->path, plen, &again, caps) !=
            TC_MATCH ||
        again != b)
        again = NULL;
    for (uint32_t i = 0; again != NULL && i < b->tpl.nvars; i++) {
        const struct tc_var *v = &b->tpl.vars[i];
        long n = tc_pct_decode(caps[i].p, caps[i].n, sp, v->multi, false);

        if (n < 0) {
            snprintf(why, sizeof(why), "bad percent-encoding in the path");
            goto bad;
        }
        params[np++] = (struct tc_param){b->tpl.text + v->off, v->len, sp, (size_t)n};
        sp += n;
    }
    /* Query parameters: every one not bound by the path or the body. */
    if (q != NULL) {
        const char *s = q + 1, *end = st->path + st->pathlen;

        while (s < end) {
            const char *amp = memchr(s, '&', (size_t)(end - s));
            const char *e = amp != NULL ? amp : end;
            const char *eq = memchr(s, '=', (size_t)(e - s));
            long kn, vn;
            char *k = sp;

            if (e == s) {
                s = e + 1;
                continue;
            }
            if (np == MAX_PARAMS) {
                snprintf(why, sizeof(why), "more than %d query parameters", MAX_PARAMS);
                goto bad;
            }
            kn = tc_pct_decode(s, (size_t)((eq != NULL ? eq : e) - s), sp, false, true);
            if (kn < 0)
                goto bad_pct;
            sp += kn;
            vn = eq != NULL ? tc_pct_decode(eq + 1, (size_t)(e - eq - 1), sp, false, true) : 0;
            if (vn < 0)
                goto bad_pct;
            params[np++] = (struct tc_param){k, (size_t)kn, sp, (size_t)vn};
            sp += vn;
            s = e + 1;
        }
    }
    if (tc_request_build(b->method, b->body,
                         blen > 0 ? (const char *)evbuffer_pullup(st->in, -1) : "", blen, params,
                         np, msg, err, sizeof(err)) != 0) {
        snprintf(why, sizeof(why), "%s", err);
        goto bad;
    }
    free(scratch);
    buf_put(w, &st->in);
    proxy_call_req_emit(call, evbuffer_pullup(msg, -1), evbuffer_get_length(msg));
    buf_put(w, &msg);
    return;
bad_pct:
    snprintf(why, sizeof(why), "bad percent-encoding in the query string");
bad:
    free(scratch);
    buf_put(w, &st->in);
    buf_put(w, &msg);
    proxy_call_fail(call, GRPC_INVALID_ARGUMENT, why);
}

static void rewrite_head(struct proxy_call *call, const struct tc_binding *b)
{
    struct proxy_head *h = proxy_call_req_head(call);

    proxy_head_set(h, ":method", 7, "POST", 4);
    proxy_head_set(h, ":path", 5, b->grpc_path, strlen(b->grpc_path));
    proxy_head_set(h, "content-type", 12, "application/grpc", 16);
    proxy_head_set(h, "te", 2, "trailers", 8);
    proxy_head_del(h, "content-length", 14);
    proxy_head_del(h, "accept-encoding", 15); /* the JSON we send is never compressed */
}

static enum proxy_filter_rc on_request_early(struct proxy_call *call, void *stv, void *wsv)
{
    struct tc_call *st = stv;
    struct proxy_call_env *env = proxy_call_env(call);
    struct tc_table *t = env->snap->ext;
    struct proxy_head *h = proxy_call_req_head(call);
    const nghttp2_nv *method, *path;
    const struct tc_binding *b = NULL;
    struct tc_capture caps[TC_MAX_VARS];
    const char *q;
    size_t plen;
    char msg[300];

    if (t == NULL || nv_value_is(proxy_head_get(h, "content-type", 12), "application/grpc"))
        return PROXY_FILTER_CONTINUE;
    method = proxy_head_get(h, ":method", 7);
    path = proxy_head_get(h, ":path", 5);
    if (method == NULL || path == NULL || path->valuelen == 0 || path->value[0] != '/')
        return PROXY_FILTER_CONTINUE;
    st->path = (const char *)path->value;
    st->pathlen = path->valuelen;
    q = memchr(st->path, '?', st->pathlen);
    plen = q != NULL ? (size_t)(q - st->path) : st->pathlen;
    st->active = true;
    st->table = tc_table_ref(t);
    switch (tc_table_match(t, (const char *)method->value, method->valuelen, st->path, plen, &b,
                           caps)) {
    case TC_MATCH:
        break;
    case TC_WRONG_METHOD:
        st->http_override = 405;
        snprintf(msg, sizeof(msg), "switchyard: %.*s is not allowed on %.*s", (int)method->valuelen,
                 (const char *)method->value, (int)plen, st->path);
        proxy_call_fail(call, GRPC_UNIMPLEMENTED, msg);
        return PROXY_FILTER_STOP;
    default:
        snprintf(msg, sizeof(msg), "switchyard: no REST binding for %.*s %.*s",
                 (int)method->valuelen, (const char *)method->value, (int)plen, st->path);
        proxy_call_fail(call, GRPC_NOT_FOUND, msg);
        return PROXY_FILTER_STOP;
    }
    st->b = b;
    rewrite_head(call, b);
    if (proxy_call_req_ended(call))
        build_request(call, st, wsv);
    return PROXY_FILTER_CONTINUE;
}

static bool on_request_data(struct proxy_call *call, void *stv, void *wsv, const uint8_t *p,
                            size_t n, bool end)
{
    struct tc_call *st = stv;
    struct tc_worker *w = wsv;
    uint32_t max = proxy_call_env(call)->snap->conf->proxy.max_message_size;

    if (!st->active || st->b == NULL)
        return false;
    if (st->ended) {
        proxy_call_req_credit(call, n); /* more after the message: not forwarded */
        return true;
    }
    if (n > 0) {
        if (st->in == NULL)
            st->in = buf_get(w);
        evbuffer_add(st->in, p, n);
        /* The whole body is one message: its window goes back now. */
        proxy_call_req_credit(call, n);
        if (max > 0 && evbuffer_get_length(st->in) > max) {
            st->ended = true;
            buf_put(w, &st->in);
            proxy_call_fail(call, GRPC_RESOURCE_EXHAUSTED,
                            "switchyard: request body larger than max_message_size");
            return true;
        }
    }
    if (end)
        build_request(call, st, w);
    return true;
}

/* ---- response ---- */

static const char *stream_ctype(const struct tc_binding *b)
{
    return b->server_streaming && b->ndjson ? "application/x-ndjson" : "application/json";
}

static enum proxy_filter_rc on_response_head(struct proxy_call *call, void *stv, void *wsv,
                                             struct proxy_head *h, bool end)
{
    struct tc_call *st = stv;
    bool present;

    if (!st->active || st->head_sent)
        return PROXY_FILTER_CONTINUE;
    if (end) {
        /* Trailers-Only: an error of the backend or of switchyard. */
        int code = status_of(h, &present);

        if (!present)
            code = code_of_http(proxy_head_get(h, ":status", 7));
        if (code == GRPC_OK && st->b != NULL && st->b->server_streaming) {
            /* A stream of no message. */
            send_head(call, st, 200, stream_ctype(st->b));
            if (!st->b->ndjson)
                proxy_call_resp_emit(call, (const uint8_t *)"[]", 2);
        } else if (code == GRPC_OK) {
            static const nghttp2_nv msg = {(uint8_t *)"grpc-message",
                                           (uint8_t *)"switchyard: no response message", 12, 31,
                                           NGHTTP2_NV_FLAG_NONE};
            struct proxy_head none = {.nv = (nghttp2_nv *)&msg, .n = 1};

            send_error(call, st, wsv, GRPC_INTERNAL, &none); /* unary needs its message */
        } else {
            send_error(call, st, wsv, code, h);
        }
        proxy_call_resp_finish(call);
        return PROXY_FILTER_STOP;
    }
    /* Held until a message or the trailers decide the status; the backend's
     * metadata (not gRPC's own fields) goes with ours. */
    proxy_head_clear(&st->head);
    proxy_head_add_static(&st->head, ":status", "200");
    for (size_t i = 0; i < h->n; i++) {
        const nghttp2_nv *f = &h->nv[i];

        if (f->namelen == 0 || f->name[0] == ':' ||
            (f->namelen >= 5 && memcmp(f->name, "grpc-", 5) == 0) ||
            proxy_nv_is(f, "content-type", 12) || proxy_nv_is(f, "content-length", 14))
            continue;
        proxy_head_add(&st->head, (const char *)f->name, f->namelen, (const char *)f->value,
                       f->valuelen);
    }
    return PROXY_FILTER_STOP;
}

static bool on_response_data(struct proxy_call *call, void *stv, void *wsv, const uint8_t *p,
                             size_t n)
{
    struct tc_call *st = stv;
    struct tc_worker *w = wsv;
    const struct tc_binding *b = st->b;

    if (!st->active)
        return false;
    proxy_call_resp_credit(call, n); /* converted, never written on as they are */
    if (b == NULL || proxy_call_state(call) >= PROXY_CALL_FINAL)
        return true;
    if (st->in == NULL)
        st->in = buf_get(w);
    if (st->out == NULL)
        st->out = buf_get(w);
    evbuffer_add(st->in, p, n);
    for (;;) {
        size_t have = evbuffer_get_length(st->in);
        uint8_t hdr[FRAME_HDR];
        uint32_t len;
        char err[256];
        const uint8_t *m;

        if (have < FRAME_HDR)
            break;
        evbuffer_copyout(st->in, hdr, FRAME_HDR);
        len = (uint32_t)hdr[1] << 24 | (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 8 | hdr[4];
        if (have < FRAME_HDR + (size_t)len)
            break;
        if (hdr[0] != 0) {
            proxy_call_fail(call, GRPC_INTERNAL, "switchyard: compressed response message");
            return true;
        }
        if (!b->server_streaming && st->nmsg > 0) {
            proxy_call_fail(call, GRPC_INTERNAL, "switchyard: more than one response message");
            return true;
        }
        m = evbuffer_pullup(st->in, (ev_ssize_t)(FRAME_HDR + len));
        if (b->server_streaming && !b->ndjson)
            evbuffer_add(st->out, st->nmsg == 0 ? "[" : ",", 1);
        if (tc_response_json(b->method, b->response_body, m + FRAME_HDR, len, st->out, err,
                             sizeof(err)) != 0) {
            char msg[320];

            evbuffer_drain(st->out, evbuffer_get_length(st->out));
            snprintf(msg, sizeof(msg), "switchyard: response message does not convert: %s", err);
            proxy_call_fail(call, GRPC_INTERNAL, msg);
            return true;
        }
        if (b->server_streaming && b->ndjson)
            evbuffer_add(st->out, "\n", 1);
        st->nmsg++;
        evbuffer_drain(st->in, FRAME_HDR + len);
        if (b->server_streaming) {
            /* Each element goes out as it comes: the status is 200 from the first. */
            send_head(call, st, 200, stream_ctype(b));
            emit(call, st->out);
        }
    }
    return true;
}

static void on_response_trailers(struct proxy_call *call, void *stv, void *wsv,
                                 struct proxy_head *t)
{
    struct tc_call *st = stv;
    const struct tc_binding *b = st->b;
    bool present;
    int code;

    if (!st->active)
        return;
    code = status_of(t, &present);
    if (b != NULL && code == GRPC_OK && present && (b->server_streaming || st->nmsg == 1)) {
        send_head(call, st, 200, stream_ctype(b));
        if (b->server_streaming && !b->ndjson)
            evbuffer_add(st->out != NULL ? st->out : (st->out = buf_get(wsv)),
                         st->nmsg == 0 ? "[]" : "]", st->nmsg == 0 ? 2 : 1);
        if (st->out != NULL)
            emit(call, st->out);
    } else {
        if (code == GRPC_OK)
            code = present ? GRPC_INTERNAL : GRPC_UNKNOWN; /* no message, or no status */
        send_error(call, st, wsv, code, t);
    }
    proxy_head_clear(t); /* JSON clients get no HTTP trailers */
}

static void on_done(struct proxy_call *call, void *stv, void *wsv)
{
    struct tc_call *st = stv;
    struct tc_worker *w = wsv;

    (void)call;
    if (!st->active)
        return;
    buf_put(w, &st->in);
    buf_put(w, &st->out);
    proxy_head_deinit(&st->head);
    tc_table_unref(st->table);
    st->table = NULL;
    st->active = false;
}

static void worker_deinit(void *wsv)
{
    struct tc_worker *w = wsv;

    while (w->nspare > 0)
        evbuffer_free(w->spare[--w->nspare]);
}

const struct proxy_filter proxy_filter_transcode = {
    .name = "transcode",
    .call_state = sizeof(struct tc_call),
    .worker_state = sizeof(struct tc_worker),
    .worker_deinit = worker_deinit,
    .on_request_early = on_request_early,
    .on_request_data = on_request_data,
    .on_response_head = on_response_head,
    .on_response_data = on_response_data,
    .on_response_trailers = on_response_trailers,
    .on_done = on_done,
};
