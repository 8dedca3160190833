/* HTTP/1.1 frontend (h1.h): request intake with http_parser, the client side
 * of calls over HTTP/1.1 (chunked responses, trailers as a chunked trailer
 * section), keep-alive, limits and timeouts like the HTTP/2 frontend's.
 * Invariant: at most one call per connection; request body bytes handed to
 * it and not yet credited (|unacked|) stay below stream_buffer, so a slow
 * backend stops switchyard reading from the client (TCP backpressure), and
 * response bytes are pulled only while the output stays below
 * PROXY_OUTPUT_HIGH, so a slow client stops the backend's window.
 * SPDX-License-Identifier: MIT */
#define LOG_MODULE "h1"
#include "proxy/h1.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <http_parser.h>

#include "balancer/bal.h"
#include "conf/conf.h"
#include "core/alloc.h"
#include "core/log.h"
#include "proxy/call.h"
#include "proxy/conn.h"
#include "proxy/fe_env.h"

/* ---- request intake: http_parser plus our checks, without a connection ---- */

struct h1_field {
    size_t name, nlen, value, vlen; /* offsets into the intake's buffer */
};

struct h1_intake;

/* What the owner of an intake does with a request. */
struct h1_intake_ops {
    /* The head is complete and checked. Returns 0, or -1 to stop (an answer
     * of the owner's own is due; |in->status| may say which). */
    int (*on_head)(struct h1_intake *in);
    void (*on_body)(struct h1_intake *in, const uint8_t *p, size_t n);
    /* The request is complete; the parser is paused after it. */
    void (*on_end)(struct h1_intake *in);
};

struct h1_intake {
    http_parser p;
    const struct h1_intake_ops *ops;
    void *owner;
    char *buf; /* the request target, then names and values as they arrive */
    size_t len, cap;
    size_t url_len;
    struct h1_field *f;
    size_t nf, fcap;
    bool in_value;   /* the last piece was a value */
    uint32_t bytes;  /* request line and fields, as RFC 9113 §6.5.2 counts */
    uint32_t max;    /* max_header_list_size */
    int status;      /* the HTTP status our answer should have (0: none yet) */
    const char *why; /* its reason, for the body and the log */
    int host, ctype; /* field indexes, -1 when absent */
    bool expect_continue /* Expect: 100-continue */;
};

static void intake_init(struct h1_intake *in, const struct h1_intake_ops *ops, void *owner)
{
    http_parser_init(&in->p, HTTP_REQUEST);
    in->p.data = in;
    in->ops = ops;
    in->owner = owner;
}

static void intake_deinit(struct h1_intake *in)
{
    free(in->buf);
    free(in->f);
    in->buf = NULL;
    in->f = NULL;
}

static int intake_fail(struct h1_intake *in, int status, const char *why)
{
    if (in->status == 0) {
        in->status = status;
        in->why = why;
    }
    return -1; /* http_parser stops with HPE_CB_* */
}

static int intake_add(struct h1_intake *in, const char *at, size_t n)
{
    if (in->bytes + n > in->max)
        return intake_fail(in, 431, "request header fields exceed max_header_list_size");
    in->bytes += (uint32_t)n;
    if (in->len + n > in->cap) {
        size_t cap = in->cap == 0 ? 1024 : in->cap;

        while (cap < in->len + n)
            cap *= 2;
        in->buf = xreallocarray(in->buf, cap, 1);
        in->cap = cap;
    }
    memcpy(in->buf + in->len, at, n);
    in->len += n;
    return 0;
}

static int on_message_begin(http_parser *p)
{
    struct h1_intake *in = p->data;

    in->len = in->url_len = in->nf = 0;
    in->bytes = 0;
    in->in_value = false;
    in->status = 0;
    in->why = NULL;
    in->host = in->ctype = -1;
    in->expect_continue = false;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    struct h1_intake *in = p->data;

    in->url_len += n;
    return intake_add(in, at, n);
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    struct h1_intake *in = p->data;

    if (in->nf == 0 || in->in_value) {
        if (in->bytes + PROXY_HEAD_FIELD_OVERHEAD > in->max)
            return intake_fail(in, 431, "request header fields exceed max_header_list_size");
        in->bytes += PROXY_HEAD_FIELD_OVERHEAD;
        if (in->nf == in->fcap) {
            in->fcap = in->fcap == 0 ? 32 : in->fcap * 2;
            in->f = xreallocarray(in->f, in->fcap, sizeof(*in->f));
        }
        in->f[in->nf++] = (struct h1_field){.name = in->len};
        in->in_value = false;
    }
    in->f[in->nf - 1].nlen += n;
    return intake_add(in, at, n);
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    struct h1_intake *in = p->data;
    struct h1_field *f = &in->f[in->nf - 1];

    if (!in->in_value) {
        f->value = in->len;
        in->in_value = true;
    }
    f->vlen += n;
    return intake_add(in, at, n);
}

static bool field_is(const struct h1_intake *in, const struct h1_field *f, const char *name)
{
    size_t n = strlen(name);

    return f->nlen == n && memcmp(in->buf + f->name, name, n) == 0;
}

static bool value_starts(const struct h1_intake *in, int i, const char *s)
{
    size_t n = strlen(s);

    return i >= 0 && in->f[i].vlen >= n && strncasecmp(in->buf + in->f[i].value, s, n) == 0;
}

/* gRPC proper (not -web) wants HTTP/2: application/grpc, +proto, ;params. */
static bool is_native_grpc(const struct h1_intake *in)
{
    const char *v;
    size_t n;

    if (!value_starts(in, in->ctype, "application/grpc"))
        return false;
    v = in->buf + in->f[in->ctype].value;
    n = in->f[in->ctype].vlen;
    return n == 16 || v[16] == '+' || v[16] == ';';
}

static int on_headers_complete(http_parser *p)
{
    struct h1_intake *in = p->data;

    if (p->http_major != 1)
        return intake_fail(in, 505, "only HTTP/1.0 and HTTP/1.1 are served here");
    if (p->method == HTTP_CONNECT)
        return intake_fail(in, 405, "CONNECT is not served");
    for (size_t i = 0; i < in->nf; i++) {
        struct h1_field *f = &in->f[i];
        char *name = in->buf + f->name;
        const char *v = in->buf + f->value;

        if (f->nlen == 0)
            return intake_fail(in, 400, "empty header field name");
        for (size_t k = 0; k < f->nlen; k++)
            name[k] = (char)(name[k] >= 'A' && name[k] <= 'Z' ? name[k] + 32 : name[k]);
        /* Values go on in HTTP/2, where CR, LF and NUL are forbidden (RFC 9113 §8.2.1). */
        for (size_t k = 0; k < f->vlen; k++) {
            if (v[k] == '\r' || v[k] == '\n' || v[k] == '\0')
                return intake_fail(in, 400, "a header field value holds CR, LF or NUL");
        }
        if (field_is(in, f, "host"))
            in->host = (int)i;
        else if (field_is(in, f, "content-type"))
            in->ctype = (int)i;
        else if (field_is(in, f, "expect") && f->vlen == 12 &&
                 strncasecmp(v, "100-continue", 12) == 0)
            in->expect_continue = true;
    }
    if (in->url_len == 0)
        return intake_fail(in, 400, "empty request target");
    if (is_native_grpc(in))
        return intake_fail(in, 426,
                           "gRPC needs HTTP/2 (h2c with prior knowledge, or TLS with ALPN h2); "
                           "browsers use gRPC-Web (application/grpc-web)");
    return in->ops->on_head(in) == 0 ? 0 : -1;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    struct h1_intake *in = p->data;

    in->ops->on_body(in, (const uint8_t *)at, n);
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct h1_intake *in = p->data;

    /* One request at a time: the next waits until this one is answered. */
    http_parser_pause(p, 1);
    in->ops->on_end(in);
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* What the request line says: the path (origin-form, or the path of an
 * absolute-form target) and the authority (of an absolute-form target).
 * Returns 0 or -1 (a target that is neither). */
static int target_split(const struct h1_intake *in, const char **path, size_t *plen,
                        const char **auth, size_t *alen)
{
    const char *u = in->buf;
    struct http_parser_url pu;

    *auth = NULL;
    *alen = 0;
    if (u[0] == '/' || (in->url_len == 1 && u[0] == '*')) {
        *path = u;
        *plen = in->url_len;
        return 0;
    }
    http_parser_url_init(&pu);
    if (http_parser_parse_url(u, in->url_len, 0, &pu) != 0 || !(pu.field_set & (1 << UF_HOST)))
        return -1;
    *auth = u + pu.field_data[UF_HOST].off;
    *alen = pu.field_data[UF_HOST].len;
    if (pu.field_set & (1 << UF_PORT))
        *alen = (size_t)(pu.field_data[UF_PORT].off + pu.field_data[UF_PORT].len) -
                pu.field_data[UF_HOST].off;
    if (pu.field_set & (1 << UF_PATH)) {
        *path = u + pu.field_data[UF_PATH].off;
        *plen = in->url_len - pu.field_data[UF_PATH].off; /* with the query */
    } else {
        *path = "/";
        *plen = 1;
    }
    return 0;
}

/* Connection-specific fields have no place in HTTP/2 (RFC 9113 §8.2.2); the
 * body framing is the frontend's own. */
static bool field_dropped(const struct h1_intake *in, const struct h1_field *f)
{
    static const char *const drop[] = {
        "host",
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "expect",
        "te",
        "http2-settings",
        "trailer",
        NULL,
    };

    for (size_t i = 0; drop[i] != NULL; i++) {
        if (field_is(in, f, drop[i]))
            return true;
    }
    return false;
}

/* ---- the fuzz harness's entry ---- */

struct parse_only {
    struct h1_intake in;
    int requests;
};

static int po_head(struct h1_intake *in)
{
    const char *path, *auth;
    size_t plen, alen;

    if (target_split(in, &path, &plen, &auth, &alen) != 0) {
        intake_fail(in, 400, "bad request target");
        return -1;
    }
    for (size_t i = 0; i < in->nf; i++)
        (void)field_dropped(in, &in->f[i]);
    return 0;
}

static void po_body(struct h1_intake *in, const uint8_t *p, size_t n)
{
    (void)in;
    (void)p;
    (void)n;
}

static void po_end(struct h1_intake *in)
{
    ((struct parse_only *)in->owner)->requests++;
}

static const struct h1_intake_ops po_ops = {po_head, po_body, po_end};

int proxy_h1_parse(const uint8_t *data, size_t len, const struct proxy_h1_limits *lim, int *status)
{
    struct parse_only po = {.requests = 0};
    size_t off = 0;
    int rv = -1;

    *status = 0;
    intake_init(&po.in, &po_ops, &po);
    po.in.max = lim->max_header_bytes;
    while (off < len) {
        size_t n = lim->chunk > 0 && lim->chunk < len - off ? lim->chunk : len - off;
        size_t used = http_parser_execute(&po.in.p, &parser_settings, (const char *)data + off, n);
        enum http_errno e = HTTP_PARSER_ERRNO(&po.in.p);

        off += used;
        if (e == HPE_PAUSED) {
            http_parser_pause(&po.in.p, 0);
            continue;
        }
        if (e != HPE_OK) {
            *status = po.in.status != 0 ? po.in.status : 400;
            goto out;
        }
        if (used < n) {
            /* http_parser stops after an Upgrade request: a connection refuses it */
            *status = 400;
            goto out;
        }
    }
    rv = po.requests;
out:
    intake_deinit(&po.in);
    return rv;
}

/* ---- connections ---- */

struct proxy_h1_conn {
    struct proxy_conn c; /* first: a proxy_conn * of ours is a proxy_h1_conn * */
    struct proxy_fe_env *env;
    struct proxy_h1_conn *next, *prev; /* in env->h1 */
    char peer[BAL_ADDRSTRLEN];
    struct h1_intake in;
    struct proxy_call *call; /* the request being served */
    int32_t nreq;            /* requests begun, for the calls' ids in logs */
    struct event *timer;     /* header_timeout while a head arrives, idle_timeout between */
    struct event *kick;      /* parse what waits in the input buffer */
    size_t unacked;          /* request body bytes handed to |call|, not credited yet */
    size_t limit;            /* stream_buffer when the request began */
    uint32_t abort_err;      /* why the call ends early (RST_STREAM code), when |aborted| */
    bool in_head;            /* a request head is arriving (header_timeout runs) */
    bool req_done;           /* the request's last byte was read */
    bool head_sent, chunked, resp_done;
    bool aborted;      /* the response cannot complete: end the call, close */
    bool keep_alive;   /* another request may follow this one */
    bool close_after;  /* close once the output is written */
    bool read_blocked; /* not reading: |unacked| reached |limit|, or pipelined requests wait */
    bool in_parse;     /* http_parser is on the stack */
    bool discarding;   /* answered before the request ended: its rest is read and dropped */
};

static const struct proxy_call_side_ops side_ops;
static const struct proxy_conn_ops h1_conn_ops;

static const struct conf_proxy *conf_of(const struct proxy_h1_conn *hc)
{
    return &hc->env->calls->snap->conf->proxy;
}

static void timer_arm(struct event *ev, uint32_t ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};

    event_add(ev, &tv);
}

static const char *reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 413:
        return "Content Too Large";
    case 415:
        return "Unsupported Media Type";
    case 426:
        return "Upgrade Required";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Status";
    }
}

/* Closes |hc| once what is queued is written: no more reading. */
static void close_after_output(struct proxy_h1_conn *hc)
{
    hc->close_after = true;
    hc->keep_alive = false;
    proxy_conn_read_enable(&hc->c, false);
    proxy_conn_schedule(&hc->c);
}

/* An answer of switchyard's own, outside any call (the request could not
 * become one): a short text body, then the connection closes, since the rest
 * of the request cannot be trusted to be framed right. */
static void refuse(struct proxy_h1_conn *hc, int status, const char *why)
{
    struct evbuffer *out = proxy_conn_output(&hc->c);

    log_info("client %s: HTTP/1.1 request refused: %d %s", hc->peer, status, why);
    if (!hc->head_sent) {
        evbuffer_add_printf(out,
                            "HTTP/1.1 %d %s\r\ncontent-type: text/plain\r\ncontent-length: %zu\r\n"
                            "%sconnection: close\r\n\r\nswitchyard: %s\n",
                            status, reason(status), strlen(why) + 12,
                            status == 426 ? "upgrade: h2c\r\n" : "", why);
        hc->head_sent = hc->resp_done = true;
    }
    if (hc->call != NULL && !hc->aborted) {
        hc->aborted = true;
        hc->abort_err = NGHTTP2_CANCEL;
    }
    close_after_output(hc);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct proxy_h1_conn *hc = arg;

    (void)fd;
    (void)what;
    if (hc->call != NULL || hc->c.dead)
        return;
    if (hc->discarding) {
        log_info("client %s: rest of an answered request not sent within header_timeout", hc->peer);
        proxy_conn_close_soon(&hc->c);
        return;
    }
    if (hc->in_head) {
        log_info("client %s: header_timeout (HTTP/1.1 request head incomplete)", hc->peer);
        refuse(hc, 408, "request head not complete within header_timeout");
        return;
    }
    log_debug("client %s: idle timeout (HTTP/1.1)", hc->peer);
    proxy_conn_close_soon(&hc->c);
}

/* ---- intake hooks of a connection ---- */

static struct proxy_h1_conn *conn_of_intake(struct h1_intake *in)
{
    return in->owner;
}

static int conn_head(struct h1_intake *in)
{
    struct proxy_h1_conn *hc = conn_of_intake(in);
    struct proxy_call_env *env = hc->env->calls;
    const char *path, *auth, *method = http_method_str((enum http_method)in->p.method);
    size_t plen, alen;
    struct proxy_call *call;

    hc->in_head = false;
    event_del(hc->timer);
    if (target_split(in, &path, &plen, &auth, &alen) != 0)
        return intake_fail(in, 400, "bad request target");
    if (env->snap == NULL)
        return intake_fail(in, 503, "not ready");
    if (auth == NULL && in->host >= 0) {
        auth = in->buf + in->f[in->host].value;
        alen = in->f[in->host].vlen;
    }
    hc->keep_alive = http_should_keep_alive(&in->p) && !hc->env->draining;
    hc->limit = conf_of(hc)->stream_buffer;
    hc->unacked = 0;
    call = proxy_call_new(env, &side_ops, hc, 2 * hc->nreq - 1, hc->peer);
    hc->call = call;
    /* Pseudo-header fields first (RFC 9113 §8.3), as an HTTP/2 client sends them. */
    proxy_call_head_add(call, ":method", 7, method, strlen(method));
    proxy_call_head_add(call, ":scheme", 7, hc->c.tls ? "https" : "http", hc->c.tls ? 5 : 4);
    if (auth != NULL)
        proxy_call_head_add(call, ":authority", 10, auth, alen);
    proxy_call_head_add(call, ":path", 5, path, plen);
    for (size_t i = 0; i < in->nf; i++) {
        const struct h1_field *f = &in->f[i];

        if (!field_dropped(in, f))
            proxy_call_head_add(call, in->buf + f->name, f->nlen, in->buf + f->value, f->vlen);
    }
    proxy_call_head_done(call, false);
    /* RFC 9110 §10.1.1: a client waiting for 100 Continue sends its body only then. */
    if (in->expect_continue && !hc->head_sent && proxy_call_wants_request(call))
        evbuffer_add(proxy_conn_output(&hc->c), "HTTP/1.1 100 Continue\r\n\r\n", 25);
    proxy_conn_schedule(&hc->c);
    return 0;
}

static void conn_body(struct h1_intake *in, const uint8_t *p, size_t n)
{
    struct proxy_h1_conn *hc = conn_of_intake(in);

    if (hc->call == NULL || hc->aborted)
        return; /* the call has ended: the rest of the body is dropped */
    hc->unacked += n;
    proxy_call_req_data(hc->call, p, n);
}

static void conn_end(struct h1_intake *in)
{
    struct proxy_h1_conn *hc = conn_of_intake(in);

    if (hc->discarding) {
        /* The dropped rest of an answered request is over: next request. */
        hc->discarding = false;
        event_del(hc->timer);
        if (conf_of(hc)->idle_timeout_ms > 0)
            timer_arm(hc->timer, conf_of(hc)->idle_timeout_ms);
        http_parser_pause(&in->p, 0);
        return;
    }
    hc->req_done = true;
    if (hc->call != NULL && !hc->aborted)
        proxy_call_req_end(hc->call);
    proxy_conn_schedule(&hc->c); /* the flush pass sees whether the exchange is over */
}

static const struct h1_intake_ops conn_intake_ops = {conn_head, conn_body, conn_end};

/* Parses what the input holds, as far as the rules allow: one request at a
 * time, and no more body than the call has room for. */
static int on_input(struct proxy_conn *c, struct evbuffer *in)
{
    struct proxy_h1_conn *hc = (struct proxy_h1_conn *)c;

    if (hc->in_parse)
        return 0;
    hc->in_parse = true;
    while (!c->dead && !hc->close_after && evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        size_t n, used;
        enum http_errno e = HTTP_PARSER_ERRNO(&hc->in.p);

        if (e == HPE_PAUSED) {
            /* The next request waits for this one's answer; a client that
             * pipelines more than a read's worth is not read meanwhile. */
            if (evbuffer_get_length(in) > PROXY_IO_CHUNK) {
                hc->read_blocked = true;
                proxy_conn_read_enable(c, false);
            }
            break;
        }
        if (hc->call != NULL && hc->unacked >= hc->limit) {
            /* The call holds a stream window of bytes: wait for its credit. */
            hc->read_blocked = true;
            proxy_conn_read_enable(c, false);
            break;
        }
        if (hc->call == NULL && !hc->in_head && !hc->discarding) {
            /* A new request begins: its head must come within header_timeout. */
            hc->in_head = true;
            hc->nreq++;
            timer_arm(hc->timer, conf_of(hc)->header_timeout_ms);
            hc->in.max = conf_of(hc)->max_header_list_size;
        }
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        n = v.iov_len;
        if (hc->call != NULL && n > hc->limit - hc->unacked)
            n = hc->limit - hc->unacked;
        used = http_parser_execute(&hc->in.p, &parser_settings, v.iov_base, n);
        evbuffer_drain(in, used);
        e = HTTP_PARSER_ERRNO(&hc->in.p);
        if (e == HPE_PAUSED)
            break;
        if (e != HPE_OK) {
            if (hc->in.status != 0)
                refuse(hc, hc->in.status, hc->in.why);
            else
                refuse(hc, 400, http_errno_description(e));
            break;
        }
        if (used < n) { /* http_parser stops after an Upgrade request's head */
            refuse(hc, 400, "protocol upgrade is not served");
            break;
        }
    }
    hc->in_parse = false;
    return 0;
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    struct proxy_h1_conn *hc = arg;

    (void)fd;
    (void)what;
    proxy_conn_read_input(&hc->c);
}

/* ---- the client side of calls ---- */

static struct proxy_h1_conn *side_conn(const struct proxy_call_side *sd)
{
    return sd->conn;
}

static int side_send_head(struct proxy_call_side *sd, const nghttp2_nv *nv, size_t n, bool end)
{
    struct proxy_h1_conn *hc = side_conn(sd);
    struct evbuffer *out = proxy_conn_output(&hc->c);
    int status = 200;

    if (hc->head_sent || hc->c.dead)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (proxy_nv_is(&nv[i], ":status", 7) && nv[i].valuelen == 3)
            status = atoi((const char *)nv[i].value);
    }
    if (status < 200 || status > 999)
        status = 502;
    evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\n", status, reason(status));
    for (size_t i = 0; i < n; i++) {
        const nghttp2_nv *f = &nv[i];

        if (f->namelen == 0 || f->name[0] == ':' || proxy_nv_is(f, "content-length", 14) ||
            proxy_nv_is(f, "transfer-encoding", 17) || proxy_nv_is(f, "connection", 10))
            continue;
        evbuffer_add(out, f->name, f->namelen);
        evbuffer_add(out, ": ", 2);
        evbuffer_add(out, f->value, f->valuelen);
        evbuffer_add(out, "\r\n", 2);
    }
    if (hc->env->draining)
        hc->keep_alive = false;
    if (end || status == 204 || status == 304) {
        if (status != 204 && status != 304)
            evbuffer_add(out, "content-length: 0\r\n", 19);
        hc->resp_done = true;
    } else if (hc->in.p.http_minor >= 1) {
        evbuffer_add(out, "transfer-encoding: chunked\r\n", 28);
        hc->chunked = true;
    } else {
        hc->keep_alive = false; /* HTTP/1.0: the body ends with the connection */
    }
    if (!hc->keep_alive)
        evbuffer_add(out, "connection: close\r\n", 19);
    evbuffer_add(out, "\r\n", 2);
    hc->head_sent = true;
    proxy_conn_schedule(&hc->c);
    return 0;
}

static void side_resume(struct proxy_call_side *sd)
{
    proxy_conn_schedule(&side_conn(sd)->c);
}

/* HTTP/1.1 has no stream reset: before the head, an HTTP error; after it,
 * the connection closes and the client sees the body cut short. */
static void side_reset(struct proxy_call_side *sd, uint32_t h2err)
{
    struct proxy_h1_conn *hc = side_conn(sd);

    if (!hc->head_sent) {
        evbuffer_add_printf(proxy_conn_output(&hc->c),
                            "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n"
                            "connection: close\r\n\r\n");
        hc->head_sent = hc->resp_done = true;
    }
    hc->aborted = true;
    hc->abort_err = h2err;
    close_after_output(hc);
}

static void side_credit(struct proxy_call_side *sd, size_t n, bool stream)
{
    struct proxy_h1_conn *hc = side_conn(sd);

    if (!stream)
        return; /* one stream per connection: the stream credit is the one */
    hc->unacked -= n < hc->unacked ? n : hc->unacked;
    if (hc->read_blocked && hc->unacked < hc->limit) {
        hc->read_blocked = false;
        if (!hc->close_after)
            proxy_conn_read_enable(&hc->c, true);
        event_active(hc->kick, EV_READ, 0); /* parse what is buffered, outside this stack */
    }
}

static const struct proxy_call_side_ops side_ops = {
    .send_head = side_send_head,
    .resume = side_resume,
    .reset = side_reset,
    .credit = side_credit,
};

/* ---- output ---- */

/* Moves response body to the output while it stays below PROXY_OUTPUT_HIGH,
 * as chunks (or as it is for HTTP/1.0), then the last chunk and trailers. */
static void pump(struct proxy_h1_conn *hc)
{
    struct evbuffer *out = proxy_conn_output(&hc->c);

    while (!hc->resp_done) {
        size_t outlen = evbuffer_get_length(out), avail, n;
        bool eof = false;

        if (outlen >= PROXY_OUTPUT_HIGH)
            return; /* on_write resumes below the low watermark */
        avail = proxy_call_resp_avail(hc->call, &eof);
        if (avail > 0) {
            n = avail < PROXY_OUTPUT_HIGH - outlen ? avail : PROXY_OUTPUT_HIGH - outlen;
            if (hc->chunked)
                evbuffer_add_printf(out, "%zx\r\n", n);
            proxy_call_resp_write(hc->call, out, n);
            if (hc->chunked)
                evbuffer_add(out, "\r\n", 2);
            continue;
        }
        if (!eof)
            return;
        if (hc->chunked) {
            /* Trailers of a non-gRPC-Web answer: the chunked trailer section
             * (RFC 9112 §7.1.2); gRPC-Web moved its own into the body. */
            const struct proxy_head *t = proxy_call_resp_trailers(hc->call);

            evbuffer_add(out, "0\r\n", 3);
            for (size_t i = 0; i < t->n; i++) {
                if (t->nv[i].namelen == 0 || t->nv[i].name[0] == ':')
                    continue;
                evbuffer_add(out, t->nv[i].name, t->nv[i].namelen);
                evbuffer_add(out, ": ", 2);
                evbuffer_add(out, t->nv[i].value, t->nv[i].valuelen);
                evbuffer_add(out, "\r\n", 2);
            }
            evbuffer_add(out, "\r\n", 2);
        }
        hc->resp_done = true;
    }
}

/* The exchange is over: the call ends, and the next request may be parsed. */
static void exchange_end(struct proxy_h1_conn *hc)
{
    struct proxy_call *call = hc->call;
    uint32_t err = hc->aborted ? hc->abort_err : NGHTTP2_NO_ERROR;

    bool rest = !hc->req_done;

    hc->call = NULL;
    proxy_call_side_closed(call, err);
    hc->head_sent = hc->chunked = hc->resp_done = hc->req_done = false;
    hc->unacked = 0;
    if (hc->aborted || !hc->keep_alive || hc->env->draining) {
        hc->aborted = false;
        close_after_output(hc);
        return;
    }
    if (rest) {
        /* Answered before the request ended (an error, a refusal): its rest
         * is read and dropped, within header_timeout, so that the client can
         * finish sending and the connection serves the next request. */
        hc->discarding = true;
        timer_arm(hc->timer, conf_of(hc)->header_timeout_ms);
        if (hc->read_blocked) {
            hc->read_blocked = false;
            proxy_conn_read_enable(&hc->c, true);
        }
        event_active(hc->kick, EV_READ, 0);
        return;
    }
    if (conf_of(hc)->idle_timeout_ms > 0)
        timer_arm(hc->timer, conf_of(hc)->idle_timeout_ms);
    http_parser_pause(&hc->in.p, 0);
    if (hc->read_blocked) {
        hc->read_blocked = false;
        proxy_conn_read_enable(&hc->c, true);
    }
    event_active(hc->kick, EV_READ, 0); /* a pipelined request may be waiting */
}

/* The flush pass (no call code on the stack): body out, exchange ends,
 * closing. */
static void flush(struct proxy_conn *c)
{
    struct proxy_h1_conn *hc = (struct proxy_h1_conn *)c;

    if (hc->call != NULL) {
        if (hc->head_sent && !hc->aborted)
            pump(hc);
        /* Also answered before the request ended: exchange_end() drops its rest. */
        if (hc->aborted || hc->resp_done)
            exchange_end(hc);
    }
    if (hc->close_after) {
        if (evbuffer_get_length(proxy_conn_output(c)) == 0) {
            c->dead = true;
            return;
        }
        /* on_write runs the flush pass again once everything is written. */
        proxy_conn_notify_drained(c, 0);
    }
}

static void on_io_error(struct proxy_conn *c, short what)
{
    struct proxy_h1_conn *hc = (struct proxy_h1_conn *)c;

    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
        log_debug("client %s: HTTP/1.1 connection closed (%s)", hc->peer,
                  (what & BEV_EVENT_EOF) ? "eof" : "error");
        proxy_conn_close_soon(c);
    }
}

static void destroy(struct proxy_conn *c)
{
    struct proxy_h1_conn *hc = (struct proxy_h1_conn *)c;
    struct proxy_fe_env *env = hc->env;

    if (hc->call != NULL) {
        struct proxy_call *call = hc->call;

        hc->call = NULL;
        /* The client is gone (or the connection failed): its backend stream is cancelled. */
        proxy_call_side_closed(call, hc->aborted ? hc->abort_err : NGHTTP2_CANCEL);
    }
    event_free(hc->timer);
    event_free(hc->kick);
    intake_deinit(&hc->in);
    proxy_conn_deinit(c);
    if (hc->prev != NULL)
        hc->prev->next = hc->next;
    else
        env->h1 = hc->next;
    if (hc->next != NULL)
        hc->next->prev = hc->prev;
    env->nconns--;
    free(hc);
    if (env->on_gone != NULL)
        env->on_gone(env->gone_arg);
}

static const struct proxy_conn_ops h1_conn_ops = {
    .on_io_error = on_io_error,
    .destroy = destroy,
    .on_input = on_input,
    .flush = flush,
};

void proxy_h1_take(struct proxy_fe_env *env, struct proxy_conn *from, const char *peer)
{
    struct proxy_h1_conn *hc = xcalloc(1, sizeof(*hc));

    hc->env = env;
    snprintf(hc->peer, sizeof(hc->peer), "%s", peer);
    proxy_conn_take(&hc->c, from, &h1_conn_ops, "client", hc->peer);
    intake_init(&hc->in, &conn_intake_ops, hc);
    hc->keep_alive = true;
    hc->timer = event_new(env->base, -1, 0, on_timer, hc);
    hc->kick = event_new(env->base, -1, 0, on_kick, hc);
    if (hc->timer == NULL || hc->kick == NULL)
        core_oom();
    hc->next = env->h1;
    if (env->h1 != NULL)
        env->h1->prev = hc;
    env->h1 = hc;
    env->nconns++;
    /* The request head (begun already, as sniffing saw) within header_timeout. */
    timer_arm(hc->timer, conf_of(hc)->header_timeout_ms);
    hc->in_head = false;
    log_debug("client %s: HTTP/1.1 (worker %d)", hc->peer, env->worker);
    /* The bytes read so far: parsed on the next loop turn, off the sniffer's stack. */
    event_active(hc->kick, EV_READ, 0);
}

void proxy_h1_drain(struct proxy_fe_env *env)
{
    for (struct proxy_h1_conn *hc = env->h1; hc != NULL; hc = hc->next) {
        hc->keep_alive = false;
        if (hc->call == NULL && !hc->in_head)
            close_after_output(hc);
    }
}

void proxy_h1_free_all(struct proxy_fe_env *env)
{
    while (env->h1 != NULL) {
        env->on_gone = NULL;
        destroy(&env->h1->c);
    }
}
