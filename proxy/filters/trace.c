/* The trace filter: W3C Trace Context propagation for every gRPC call, and
 * OpenTelemetry spans (one SERVER span per call, one CLIENT span per
 * attempt) for the calls it records, queued for the exporter (span.h, otlp.h).
 * Propagation (W3C Trace Context Level 1, §3): a valid traceparent keeps its
 * trace id and sampled flag; the parent id becomes switchyard's own span
 * when switchyard records the call, and stays the client's otherwise; a
 * missing or invalid one is replaced by a new trace (sampled at
 * [tracing] sample_ratio) and its tracestate dropped, so nothing broken
 * goes on. Each attempt sends its own span id.
 * Invariant: spans are built in the worker's queue slot (no allocation);
 * a full queue drops the span and counts it; nothing here waits.
 * SPDX-License-Identifier: MIT */
#define LOG_MODULE "trace"
#include "proxy/filters/filters.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "conf/conf.h"
#include "core/clock.h"
#include "core/grpc.h"
#include "core/log.h"
#include "core/utf8.h"
#include "proxy/call.h"
#include "proxy/head.h"
#include "proxy/span.h"

#define TRACEPARENT_LEN        55 /* "00-" 32 hex "-" 16 hex "-" 2 hex */
#define TRACESTATE_MAX         512
#define TRACESTATE_MEMBERS_MAX 32
#define MAX_ATTEMPTS           8 /* attempts of a call that get spans of their own */

struct trace_attempt {
    uint8_t span_id[8];
    uint64_t start_ns;             /* Unix */
    char endpoint[BAL_ADDRSTRLEN]; /* where it went */
};

struct trace_call {
    bool active;   /* on_request_head ran: the call has a trace context */
    bool recorded; /* sampled, and spans are exported */
    uint8_t flags; /* trace-flags sent on */
    uint8_t trace_id[16];
    uint8_t span_id[8];   /* the SERVER span */
    uint8_t parent_id[8]; /* the client's span, when it sent one */
    bool has_parent;
    uint64_t start_ns; /* Unix */
    uint8_t nevents;
    struct proxy_span_event events[PROXY_SPAN_MAX_EVENTS];
    struct trace_attempt att[MAX_ATTEMPTS];
};

struct trace_worker {
    struct proxy_call_env *env;
    uint64_t rng[4]; /* xoshiro256** */
    struct proxy_span_ring ring;
};

/* ---- ids ---- */

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* xoshiro256** (Blackman, Vigna): fast, and ids only need to be unique. */
static uint64_t rnd(struct trace_worker *w)
{
    uint64_t *s = w->rng;
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != 0)
            return false;
    }
    return true;
}

/* Random bytes, never all zero (W3C: an all-zero id is invalid). */
static void new_id(struct trace_worker *w, uint8_t *p, size_t n)
{
    do {
        for (size_t i = 0; i < n; i += 8) {
            uint64_t v = rnd(w);

            memcpy(p + i, &v, n - i < 8 ? n - i : 8);
        }
    } while (all_zero(p, n));
}

static uint64_t unix_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts); /* vDSO */
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- W3C Trace Context ---- */

static int hexval(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1; /* upper case is invalid (§3.2.2) */
}

static bool unhex(const uint8_t *s, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);

        if (hi < 0 || lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

/* Two hex digits per byte from a table (every call writes 25 bytes of
 * traceparent: a nibble at a time was 300 instructions). */
#define HEX_DIGIT(n) (char)((n) < 10 ? '0' + (n) : 'a' + (n)-10)
#define HEX_PAIR(x)                                                                                \
    {                                                                                              \
        HEX_DIGIT((x) >> 4), HEX_DIGIT((x)&15)                                                     \
    }
#define HEX_ROW(h)                                                                                 \
    HEX_PAIR(h * 16 + 0), HEX_PAIR(h * 16 + 1), HEX_PAIR(h * 16 + 2), HEX_PAIR(h * 16 + 3),        \
        HEX_PAIR(h * 16 + 4), HEX_PAIR(h * 16 + 5), HEX_PAIR(h * 16 + 6), HEX_PAIR(h * 16 + 7),    \
        HEX_PAIR(h * 16 + 8), HEX_PAIR(h * 16 + 9), HEX_PAIR(h * 16 + 10), HEX_PAIR(h * 16 + 11),  \
        HEX_PAIR(h * 16 + 12), HEX_PAIR(h * 16 + 13), HEX_PAIR(h * 16 + 14), HEX_PAIR(h * 16 + 15)
static const char hex_pairs[256][2] = {
    HEX_ROW(0),  HEX_ROW(1),  HEX_ROW(2),  HEX_ROW(3),  HEX_ROW(4),  HEX_ROW(5),
    HEX_ROW(6),  HEX_ROW(7),  HEX_ROW(8),  HEX_ROW(9),  HEX_ROW(10), HEX_ROW(11),
    HEX_ROW(12), HEX_ROW(13), HEX_ROW(14), HEX_ROW(15),
};

static void tohex(const uint8_t *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        memcpy(out + 2 * i, hex_pairs[p[i]], 2);
}

/* traceparent (§3.2): version "-" trace-id "-" parent-id "-" trace-flags.
 * Version ff is invalid; version 00 is exactly 55 bytes; a later version may
 * append "-..." fields, which we do not understand and do not forward. */
static bool parse_traceparent(const uint8_t *v, size_t len, struct trace_call *tc)
{
    uint8_t ver, flags;

    if (len < TRACEPARENT_LEN || v[2] != '-' || v[35] != '-' || v[52] != '-')
        return false;
    if (!unhex(v, &ver, 1) || ver == 0xff || (ver == 0 && len != TRACEPARENT_LEN) ||
        (len > TRACEPARENT_LEN && v[55] != '-'))
        return false;
    if (!unhex(v + 3, tc->trace_id, 16) || !unhex(v + 36, tc->parent_id, 8) ||
        !unhex(v + 53, &flags, 1))
        return false;
    if (all_zero(tc->trace_id, 16) || all_zero(tc->parent_id, 8))
        return false;
    tc->flags = flags & 0x01; /* only "sampled" is defined in version 00 */
    return true;
}

/* One list-member of tracestate (§3.3.1.3): key "=" value, keys of lcalpha,
 * digits and _-*\/ (with one '@' for tenant@system), values of printable
 * ASCII but ',' and '=', not ending with a space. */
static bool member_ok(const char *m, size_t len)
{
    const char *eq = memchr(m, '=', len);
    size_t klen, vlen, at = 0;

    if (eq == NULL)
        return false;
    klen = (size_t)(eq - m);
    vlen = len - klen - 1;
    if (klen == 0 || klen > 256 || vlen == 0 || vlen > 256)
        return false;
    if (!((m[0] >= 'a' && m[0] <= 'z') || (m[0] >= '0' && m[0] <= '9')))
        return false;
    for (size_t i = 0; i < klen; i++) {
        char c = m[i];

        if (c == '@') {
            if (++at > 1 || i == 0 || i + 1 == klen)
                return false;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
              c == '*' || c == '/'))
            return false;
    }
    for (size_t i = 0; i < vlen; i++) {
        char c = eq[1 + i];

        if (c < 0x20 || c > 0x7e || c == ',' || c == '=')
            return false;
    }
    return eq[vlen] != ' ';
}

/* Whether tracestate |v| is a valid list (§3.3.1): at most 32 members,
 * separated by ',' with optional blanks; empty members are allowed. */
static bool tracestate_ok(const char *v, size_t len)
{
    size_t members = 0;

    if (len > TRACESTATE_MAX)
        return false;
    for (size_t i = 0; i <= len;) {
        const char *c = memchr(v + i, ',', len - i);
        size_t end = c != NULL ? (size_t)(c - v) : len, b = i, e = end;

        while (b < e && (v[b] == ' ' || v[b] == '\t'))
            b++;
        while (e > b && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e > b) {
            if (++members > TRACESTATE_MEMBERS_MAX || !member_ok(v + b, e - b))
                return false;
        }
        if (c == NULL)
            break;
        i = end + 1;
    }
    return true;
}

/* The request's tracestate fields, joined as one list (RFC 9110 §5.3), kept
 * when valid and the traceparent was, else removed. */
static void fix_tracestate(struct proxy_head *h, bool keep)
{
    char joined[TRACESTATE_MAX + 1];
    size_t len = 0, n = 0;
    bool ok = true;

    if (!keep) {
        proxy_head_del(h, "tracestate", 10);
        return;
    }
    for (size_t i = 0; i < h->n && ok; i++) {
        const nghttp2_nv *f = &h->nv[i];

        if (!proxy_nv_is(f, "tracestate", 10))
            continue;
        if (len + (n > 0) + f->valuelen > TRACESTATE_MAX) {
            ok = false;
            break;
        }
        if (n++ > 0)
            joined[len++] = ',';
        memcpy(joined + len, f->value, f->valuelen);
        len += f->valuelen;
    }
    if (n == 0)
        return;
    if (!ok || !tracestate_ok(joined, len)) {
        proxy_head_del(h, "tracestate", 10);
        return;
    }
    if (n > 1)
        proxy_head_set(h, "tracestate", 10, joined, len);
}

static void set_traceparent(struct proxy_head *h, const uint8_t *trace_id, const uint8_t *span,
                            uint8_t flags)
{
    char v[TRACEPARENT_LEN + 1];

    memcpy(v, "00-", 3);
    tohex(trace_id, 16, v + 3);
    v[35] = '-';
    tohex(span, 8, v + 36);
    v[52] = '-';
    tohex(&flags, 1, v + 53);
    /* A value new on every call: indexing it in the HPACK table would only
     * evict the fields that repeat (RFC 7541 §7.1.3 leaves the choice to us). */
    proxy_head_set(h, "traceparent", 11, v, TRACEPARENT_LEN)->flags |= NGHTTP2_NV_FLAG_NO_INDEX;
}

/* ---- hooks ---- */

static enum proxy_filter_rc on_request_head(struct proxy_call *call, void *st, void *ws)
{
    struct trace_call *tc = st;
    struct trace_worker *w = ws;
    const struct conf_tracing *tr = &w->env->snap->conf->tracing;
    struct proxy_head *h = proxy_call_req_head(call);
    const nghttp2_nv *f = NULL;
    size_t nparent = 0;
    bool valid;

    for (size_t i = 0; i < h->n; i++) {
        if (proxy_nv_is(&h->nv[i], "traceparent", 11)) {
            f = &h->nv[i];
            nparent++;
        }
    }
    /* Two traceparent fields are as invalid as a malformed one (§3.2). */
    valid = nparent == 1 && parse_traceparent(f->value, f->valuelen, tc);
    tc->active = true;
    tc->has_parent = valid;
    if (!valid) {
        new_id(w, tc->trace_id, 16);
        tc->flags = (double)(rnd(w) >> 11) * 0x1.0p-53 < tr->sample_ratio ? 1 : 0;
    }
    new_id(w, tc->span_id, 8);
    tc->recorded = (tc->flags & 1) != 0 && tr->otlp_endpoint != NULL;
    if (tc->recorded) {
        struct proxy_call_info ci;

        proxy_call_info(call, &ci);
        /* The call began when its headers did, a moment ago. */
        tc->start_ns = unix_ns() - (core_mono_ns() - ci.start_ns);
    }
    fix_tracestate(h, valid);
    if (tc->recorded || !valid)
        set_traceparent(h, tc->trace_id, tc->span_id, tc->flags);
    else if (f->valuelen != TRACEPARENT_LEN || f->value[0] != '0' || f->value[1] != '0')
        set_traceparent(h, tc->trace_id, tc->parent_id, tc->flags); /* as version 00 */
    return PROXY_FILTER_CONTINUE;
}

static void add_event(struct trace_call *tc, const char *name, const char *key, const char *value)
{
    struct proxy_span_event *e;

    if (tc->nevents >= PROXY_SPAN_MAX_EVENTS)
        return;
    e = &tc->events[tc->nevents++];
    e->time_ns = unix_ns();
    snprintf(e->name, sizeof(e->name), "%s", name);
    snprintf(e->key, sizeof(e->key), "%s", key != NULL ? key : "");
    utf8_clean((const uint8_t *)(value != NULL ? value : ""), value != NULL ? strlen(value) : 0,
               e->value, sizeof(e->value));
}

static void on_attempt_start(struct proxy_call *call, void *st, void *ws,
                             const struct proxy_attempt *a, struct proxy_head *head)
{
    struct trace_call *tc = st;
    struct trace_attempt *ta;

    (void)call;
    if (!tc->recorded)
        return;
    if (a->number > 0) {
        char n[16];

        snprintf(n, sizeof(n), "%u", a->number);
        add_event(tc, "retry", "switchyard.attempt", n);
    }
    if (a->number >= MAX_ATTEMPTS)
        return; /* its backend sees the call's span as parent */
    ta = &tc->att[a->number];
    new_id(ws, ta->span_id, 8);
    ta->start_ns = unix_ns();
    snprintf(ta->endpoint, sizeof(ta->endpoint), "%s", a->endpoint);
    set_traceparent(head, tc->trace_id, ta->span_id, tc->flags);
}

/* "host:port", "[v6]:port" or "host" into |addr| and |*port| (0: none). */
static void split_hostport(const char *s, size_t len, char *addr, size_t alen, uint16_t *port)
{
    const char *colon = NULL;
    char tmp[160];

    *port = 0;
    if (len >= sizeof(tmp))
        len = sizeof(tmp) - 1;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    if (tmp[0] == '[') {
        char *rb = strchr(tmp, ']');

        if (rb != NULL) {
            *rb = '\0';
            if (rb[1] == ':')
                colon = rb + 1;
            utf8_clean((const uint8_t *)tmp + 1, strlen(tmp + 1), addr, alen);
        } else {
            utf8_clean((const uint8_t *)tmp, len, addr, alen);
        }
    } else {
        char *c = strrchr(tmp, ':');

        if (c != NULL) {
            *c = '\0';
            colon = c;
        }
        utf8_clean((const uint8_t *)tmp, strlen(tmp), addr, alen);
    }
    if (colon != NULL) {
        unsigned long p = strtoul(colon + 1, NULL, 10);

        *port = p > 0 && p < 65536 ? (uint16_t)p : 0;
    }
}

/* The span name: the method path without its leading '/'. */
static void span_name(struct proxy_call *call, struct proxy_span *s)
{
    size_t len;
    const uint8_t *p = proxy_call_path(call, &len);

    if (len > 0 && p[0] == '/') {
        p++;
        len--;
    }
    utf8_clean(p, len, s->name, sizeof(s->name));
}

static void on_attempt_end(struct proxy_call *call, void *st, void *ws,
                           const struct proxy_attempt *a, const struct proxy_attempt_result *r)
{
    struct trace_call *tc = st;
    struct trace_worker *w = ws;
    struct proxy_call_info ci;
    struct proxy_span *s;
    const char *ep;

    if (tc->recorded && a->ejected)
        add_event(tc, "ejection", "switchyard.endpoint", a->endpoint);
    if (!tc->recorded || a->number >= MAX_ATTEMPTS)
        return;
    s = proxy_span_ring_reserve(&w->ring);
    if (s == NULL)
        return;
    proxy_call_info(call, &ci);
    memcpy(s->trace_id, tc->trace_id, 16);
    memcpy(s->span_id, tc->att[a->number].span_id, 8);
    memcpy(s->parent_id, tc->span_id, 8);
    s->has_parent = true;
    s->kind = PROXY_SPAN_KIND_CLIENT;
    s->attempt = a->number;
    s->start_ns = tc->att[a->number].start_ns;
    s->end_ns = unix_ns();
    span_name(call, s);
    /* The attempt's own status: the backend's when it completed (the call
     * took it from its trailers), none when it did not. */
    s->grpc_status = a->status >= 0 && a->status < GRPC_CODE_COUNT ? (int16_t)a->status : -1;
    if (s->grpc_status != 0) {
        s->status = PROXY_SPAN_STATUS_ERROR; /* client spans: any code but OK */
        snprintf(s->status_msg, sizeof(s->status_msg), "%s",
                 s->grpc_status > 0 ? grpc_code_name(s->grpc_status)
                 : r->why != NULL   ? r->why
                                    : proxy_attempt_outcome_name(r->outcome));
    }
    snprintf(s->cluster, sizeof(s->cluster), "%s", ci.cluster != NULL ? ci.cluster : "");
    ep = tc->att[a->number].endpoint;
    snprintf(s->endpoint, sizeof(s->endpoint), "%s", ep);
    split_hostport(ep, strlen(ep), s->peer_addr, sizeof(s->peer_addr), &s->peer_port);
    memcpy(s->server_addr, s->peer_addr, sizeof(s->peer_addr));
    s->server_port = s->peer_port;
    proxy_span_ring_commit(&w->ring);
}

/* OpenTelemetry's gRPC conventions: a SERVER span is an error for these
 * codes only (the others are the client's doing). */
static bool server_error(int code)
{
    return code == GRPC_UNKNOWN || code == GRPC_DEADLINE_EXCEEDED || code == GRPC_UNIMPLEMENTED ||
           code == GRPC_INTERNAL || code == GRPC_UNAVAILABLE || code == GRPC_DATA_LOSS;
}

static void on_done(struct proxy_call *call, void *st, void *ws)
{
    struct trace_call *tc = st;
    struct trace_worker *w = ws;
    struct proxy_call_info ci;
    struct proxy_span *s;
    const nghttp2_nv *auth;
    const char *peer;

    if (!tc->recorded)
        return;
    s = proxy_span_ring_reserve(&w->ring);
    if (s == NULL)
        return;
    proxy_call_info(call, &ci);
    memcpy(s->trace_id, tc->trace_id, 16);
    memcpy(s->span_id, tc->span_id, 8);
    memcpy(s->parent_id, tc->parent_id, 8);
    s->has_parent = tc->has_parent;
    s->kind = PROXY_SPAN_KIND_SERVER;
    s->attempt = ci.attempts;
    s->start_ns = tc->start_ns;
    s->end_ns = unix_ns();
    span_name(call, s);
    s->grpc_status = (int16_t)(ci.status >= 0 ? ci.status : GRPC_UNKNOWN);
    if (server_error(s->grpc_status)) {
        s->status = PROXY_SPAN_STATUS_ERROR;
        snprintf(s->status_msg, sizeof(s->status_msg), "%s", grpc_code_name(s->grpc_status));
    }
    snprintf(s->cluster, sizeof(s->cluster), "%s", ci.cluster != NULL ? ci.cluster : "");
    snprintf(s->endpoint, sizeof(s->endpoint), "%s", ci.endpoint != NULL ? ci.endpoint : "");
    peer = proxy_call_peer(call);
    if (peer != NULL)
        split_hostport(peer, strlen(peer), s->peer_addr, sizeof(s->peer_addr), &s->peer_port);
    auth = proxy_head_get(proxy_call_req_head(call), ":authority", 10);
    if (auth != NULL)
        split_hostport((const char *)auth->value, auth->valuelen, s->server_addr,
                       sizeof(s->server_addr), &s->server_port);
    s->nevents = tc->nevents;
    memcpy(s->events, tc->events, sizeof(s->events[0]) * tc->nevents);
    proxy_span_ring_commit(&w->ring);
}

static void worker_init(void *ws, struct proxy_call_env *env)
{
    struct trace_worker *w = ws;

    w->env = env;
    if (getrandom(w->rng, sizeof(w->rng), 0) != (ssize_t)sizeof(w->rng) ||
        all_zero((const uint8_t *)w->rng, sizeof(w->rng))) {
        /* No entropy (a very early boot): ids stay unique per process. */
        w->rng[0] = core_mono_ns() ^ (uint64_t)(uintptr_t)w;
        w->rng[1] = unix_ns();
        w->rng[2] = 0x9e3779b97f4a7c15ull;
        w->rng[3] = (uint64_t)(uintptr_t)env;
    }
    proxy_span_ring_init(&w->ring, env->snap->conf->tracing.queue_size);
    env->spans = &w->ring; /* where the exporter finds this worker's spans */
}

static void worker_deinit(void *ws)
{
    struct trace_worker *w = ws;

    w->env->spans = NULL;
    proxy_span_ring_deinit(&w->ring);
}

const struct proxy_filter proxy_filter_trace = {
    .name = "trace",
    .call_state = sizeof(struct trace_call),
    .worker_state = sizeof(struct trace_worker),
    .worker_init = worker_init,
    .worker_deinit = worker_deinit,
    .on_request_head = on_request_head,
    .on_attempt_start = on_attempt_start,
    .on_attempt_end = on_attempt_end,
    .on_done = on_done,
};
