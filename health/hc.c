/* Active health checking: every endpoint of a cluster with health_check = on
 * gets its own HTTP/2 (h2c) client connection on the main thread's event_base
 * and is probed with grpc.health.v1.Health/Check every health_interval (+-10%)
 * or watched with Health/Watch; results feed the rise/fall state machine
 * (state.c) and transitions go to the bal_epset, then to |changed|.
 * Invariant: an endpoint's connection (nghttp2 session and bufferevent) is
 * never freed while nghttp2 is on the stack for it: closes asked for from an
 * nghttp2 callback are recorded and done after nghttp2_session_mem_recv()
 * returns.
 * SPDX-License-Identifier: MIT */
#define LOG_MODULE "hc"
#include "health/hc.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <nghttp2/nghttp2.h>

#include "core/grpc.h"
#include "core/log.h"
#include "core/tls.h"
#include "health/internal.h"

#define CHECK_PATH "/grpc.health.v1.Health/Check"
#define WATCH_PATH "/grpc.health.v1.Health/Watch"
#define USER_AGENT "switchyard-health-check"
/* Room for one answer: a message at the size limit plus the start of a
 * second one, so "more than one message" is told apart from "too big". */
#define BODY_CAP (2 * (HC_FRAME_HDR + HC_MAX_MSG))
/* After a lost connection: reconnect at once, then this many more times this
 * far apart while connecting fails without a clear answer. */
#define QUICK_RETRIES  2
#define QUICK_RETRY_MS 25

enum hc_conn_state {
    HC_CONN_NONE = 0,   /* no connection; the next probe opens one */
    HC_CONN_CONNECTING, /* TCP connect in progress; frames wait in the output buffer */
    HC_CONN_OPEN,       /* connected */
    HC_CONN_STATE_COUNT
};

enum hc_probe_state {
    HC_PROBE_IDLE = 0,    /* nothing in flight; |tick| is armed for the next probe */
    HC_PROBE_CHECK,       /* a Check stream is open, awaiting its answer (|timeout| armed) */
    HC_PROBE_WATCH_FIRST, /* a Watch stream is open, awaiting its first update (|timeout|) */
    HC_PROBE_WATCHING,    /* the Watch stream delivered an update; more come as they happen,
                             and each |tick| counts the last one again */
    HC_PROBE_STATE_COUNT
};

static const char *const probe_state_names[HC_PROBE_STATE_COUNT] = {
    "idle",
    "check",
    "watch-first",
    "watching",
};

struct hc;

/* One checked endpoint (bal_ep.hc). */
struct hc_ep {
    struct hc *h;
    struct bal_ep *ep; /* borrowed from the epset; NULL once it was removed */
    const struct conf_cluster *cc;
    struct hc_sm_conf smc;
    struct hc_sm sm;
    TAILQ_ENTRY(hc_ep) link;
    char authority[272];
    char timeout_hdr[16];
    uint8_t *req; /* the framed HealthCheckRequest, the same for every probe */
    size_t reqlen;

    /* connection */
    enum hc_conn_state conn;
    struct bufferevent *bev;
    nghttp2_session *session;
    bool conn_answered;  /* it delivered at least one complete answer */
    bool goaway;         /* a graceful GOAWAY came: no new probe on it, closed once idle */
    uint64_t quick_ms;   /* last immediate re-probe after a lost connection */
    uint32_t quick_left; /* quick retries left after that one */
    uint32_t conn_fails; /* connections in a row that ended without an answer */
    int busy;            /* nghttp2_session_mem_recv() is on the stack */
    bool close_pending;  /* close once nghttp2 returned, reporting |pending_*| */
    enum hc_result pending_res;
    char pending_why[160];
    bool free_pending; /* removed from the epset while busy */

    /* probe */
    enum hc_probe_state probe;
    bool use_watch; /* health_mode = watch, and Watch was not refused as UNIMPLEMENTED */
    int32_t sid;    /* the probe's stream, 0 when none */
    size_t req_off; /* request bytes handed to nghttp2 */
    int http_status;
    int grpc_status;
    char ctype[64];
    char gmsg[128];
    uint8_t body[BODY_CAP];
    size_t body_len;
    bool body_overflow;
    int watch_status;     /* the last ServingStatus a Watch sent; -1 none */
    uint64_t probe_t0_us; /* when the probe in flight started; 0 none */
    struct hc_ep_info info;
    struct event *tick;
    struct event *timeout;
};

TAILQ_HEAD(hc_ep_list, hc_ep);

struct hc {
    struct event_base *base;
    const struct conf *conf;
    struct bal_epset *eps;
    hc_changed_cb changed;
    void *arg;
    nghttp2_session_callbacks *cbs;
    struct hc_ep_list list;
    uint64_t rng;
};

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);

    if (p == NULL) {
        log_error("out of memory");
        abort();
    }
    return p;
}

static uint64_t now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static uint64_t now_ms(void)
{
    return now_us() / 1000;
}

static const char *cluster_name(const struct hc_ep *e)
{
    return e->cc->name;
}

static const char *addr_of(const struct hc_ep *e)
{
    return e->ep != NULL ? e->ep->addr_str : "(removed)";
}

/* ---- results and transitions ---- */

/* Counters for the admin endpoint (hc_ep_info). */
static void count_result(struct hc_ep *e, bool pass)
{
    uint64_t us = now_us();

    e->info.checked = true;
    e->info.last_check_ms = us / 1000;
    if (e->probe_t0_us != 0) {
        e->info.last_latency_ms = (double)(us - e->probe_t0_us) / 1000.0;
        e->probe_t0_us = 0;
    }
    if (pass) {
        e->info.passes++;
        e->info.consecutive_failures = 0;
    } else {
        e->info.failures++;
        e->info.consecutive_failures++;
    }
}

/* Feeds |r| to the state machine; a change of rotation goes to the epset (and
 * the snapshot builder) and to the log, once. */
static void report(struct hc_ep *e, enum hc_result r, const char *why)
{
    struct hc *h = e->h;
    enum hc_state old = e->sm.state;
    uint32_t old_count = e->sm.count;
    enum hc_state now = hc_sm_feed(&e->sm, &e->smc, r);
    bool was_in = hc_state_in_rotation(old), in = hc_state_in_rotation(now);
    char reason[sizeof(e->ep->reason)];

    if (e->ep == NULL)
        return;
    count_result(e,
                 r == HC_RES_PASS || (r == HC_RES_UNIMPLEMENTED && e->smc.unimplemented_healthy));
    log_debug("cluster %s: endpoint %s: %s (%s): %s -> %s", cluster_name(e), addr_of(e),
              hc_result_name(r), why, hc_state_name(old), hc_state_name(now));
    if (in && !was_in && e->smc.healthy_threshold > 1 && old != HC_ST_UNCHECKED)
        snprintf(reason, sizeof(reason), "%s (%u checks passed in a row)", why, old_count + 1);
    else if (!in && was_in && r == HC_RES_FAIL && e->smc.unhealthy_threshold > 1)
        snprintf(reason, sizeof(reason), "%s (%u failures in a row)", why, old_count + 1);
    else
        snprintf(reason, sizeof(reason), "%s%s", why,
                 r == HC_RES_UNIMPLEMENTED && !e->smc.unimplemented_healthy
                     ? " (no health service: health_unimplemented = healthy counts that as healthy)"
                     : "");

    if (in != was_in) {
        if (bal_epset_set_healthy(h->eps, e->ep, in, reason, now_ms()))
            h->changed(h->arg);
        if (in && old == HC_ST_UNCHECKED)
            log_info("cluster %s: endpoint %s passed its first health check, in rotation: %s",
                     cluster_name(e), addr_of(e), reason);
        else if (in)
            log_info("cluster %s: endpoint %s is healthy again, back in rotation: %s",
                     cluster_name(e), addr_of(e), reason);
        else
            log_warn("cluster %s: endpoint %s is unhealthy, out of rotation: %s", cluster_name(e),
                     addr_of(e), reason);
        return;
    }
    /* Once per reason: after a reload the endpoint may still say why. */
    if (old == HC_ST_UNCHECKED && now == HC_ST_UNHEALTHY && strcmp(reason, e->ep->reason) != 0)
        log_warn("cluster %s: endpoint %s failed its first health check, stays out of rotation: "
                 "%s",
                 cluster_name(e), addr_of(e), reason);
    /* While out of rotation, the reason follows the latest failure. */
    if (!in && r != HC_RES_PASS)
        bal_epset_set_healthy(h->eps, e->ep, false, reason, now_ms());
}

static void schedule(struct hc_ep *e, uint32_t ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};

    event_add(e->tick, &tv);
}

static uint32_t next_interval(struct hc_ep *e)
{
    return hc_jitter(e->cc->health_interval_ms, &e->h->rng);
}

/* Forgets the probe in flight (its stream, if still open, is left to the
 * connection: answered, reset, or closed with it). */
static void probe_finish(struct hc_ep *e)
{
    event_del(e->timeout);
    e->probe = HC_PROBE_IDLE;
    e->sid = 0;
}

/* ---- connection ---- */

static void conn_free(struct hc_ep *e)
{
    if (e->session != NULL)
        nghttp2_session_del(e->session);
    e->session = NULL;
    if (e->bev != NULL)
        bufferevent_free(e->bev);
    e->bev = NULL;
    e->conn = HC_CONN_NONE;
    e->close_pending = false;
    e->goaway = false;
}

/* The connection ended (or must end) with |r| / |why|: close it, end the probe
 * in flight with that result, and pick when to probe again. Outside a probe
 * only a DOWN (a GOAWAY with an error) counts as a result. From an nghttp2
 * callback the close is deferred until nghttp2 has returned. */
static void conn_lost(struct hc_ep *e, enum hc_result r, const char *why)
{
    bool answered = e->conn_answered;
    bool probing = e->probe != HC_PROBE_IDLE;
    uint32_t interval = e->cc->health_interval_ms;
    uint64_t now = now_ms();
    uint32_t delay;

    if (e->busy > 0) {
        if (!e->close_pending) {
            e->close_pending = true;
            e->pending_res = r;
            snprintf(e->pending_why, sizeof(e->pending_why), "%s", why);
        }
        return;
    }
    log_debug("cluster %s: endpoint %s: health-check connection closed (%s, probe %s)",
              cluster_name(e), addr_of(e), why, probe_state_names[e->probe]);
    conn_free(e);
    probe_finish(e);
    if (answered) {
        /* A connection that worked went away: look again at once, so that a
         * killed endpoint is found refusing right now. At most once per
         * interval, or an endpoint that closes after every answer would make
         * this a busy loop. */
        e->conn_fails = 0;
        if (now - e->quick_ms >= interval) {
            e->quick_ms = now;
            e->quick_left = QUICK_RETRIES;
            delay = 0;
        } else {
            delay = next_interval(e);
        }
    } else if (e->quick_left > 0) {
        /* ... and again soon if that attempt failed without a clear answer
         * (a dying process may still accept, then reset). */
        e->quick_left--;
        delay = QUICK_RETRY_MS;
    } else {
        e->conn_fails++;
        delay = hc_jitter(hc_backoff(interval, e->conn_fails), &e->h->rng);
    }
    if (probing || r == HC_RES_DOWN)
        report(e, r, why);
    schedule(e, delay);
}

/* Sends what nghttp2 has queued, unless a callback is running. */
static void flush(struct hc_ep *e)
{
    int rv;

    if (e->busy > 0 || e->session == NULL)
        return;
    rv = nghttp2_session_send(e->session);
    if (rv != 0) {
        char why[128];

        snprintf(why, sizeof(why), "HTTP/2 error: %s", nghttp2_strerror(rv));
        conn_lost(e, HC_RES_FAIL, why);
        return;
    }
    if (!nghttp2_session_want_read(e->session) && !nghttp2_session_want_write(e->session))
        conn_lost(e, HC_RES_FAIL, "HTTP/2 session ended");
}

static void after_recv(struct hc_ep *e);

static void on_read(struct bufferevent *bev, void *arg)
{
    struct hc_ep *e = arg;
    struct evbuffer *in = bufferevent_get_input(bev);

    e->busy++;
    while (evbuffer_get_length(in) > 0 && !e->close_pending) {
        struct evbuffer_iovec v;
        ssize_t rv;

        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        rv = nghttp2_session_mem_recv(e->session, v.iov_base, v.iov_len);
        if (rv < 0) {
            char why[128];

            snprintf(why, sizeof(why), "HTTP/2 error: %s", nghttp2_strerror((int)rv));
            conn_lost(e, HC_RES_FAIL, why); /* deferred: busy */
            break;
        }
        evbuffer_drain(in, (size_t)rv);
    }
    e->busy--;
    after_recv(e);
}

static void ep_free(struct hc_ep *e);

static void after_recv(struct hc_ep *e)
{
    if (e->free_pending) {
        ep_free(e);
        return;
    }
    if (e->close_pending) {
        char why[sizeof(e->pending_why)];

        e->close_pending = false;
        memcpy(why, e->pending_why, sizeof(why));
        conn_lost(e, e->pending_res, why);
        return;
    }
    flush(e);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    (void)bev;
    (void)arg;
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct hc_ep *e = arg;
    int err = EVUTIL_SOCKET_ERROR();
    char why[160];

    if ((what & BEV_EVENT_CONNECTED) && bufferevent_openssl_get_ssl(bev) != NULL) {
        /* tls = on: the cluster's TLS settings, as for calls (proxy/tls.c) */
        if (!tls_is_h2(bufferevent_openssl_get_ssl(bev))) {
            conn_lost(e, HC_RES_FAIL, "TLS: the endpoint did not negotiate h2 by ALPN");
            return;
        }
        bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    }
    if (what & BEV_EVENT_CONNECTED) {
        int one = 1;

        setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (e->use_watch) {
            /* A Watch stream is silent while nothing changes, and HTTP/2 PINGs
             * that often would be refused as abuse by gRPC servers
             * (too_many_pings): let TCP keepalive find a dead peer instead. */
            int idle = (int)((e->cc->health_interval_ms + 999) / 1000);
            int intvl = (int)((e->cc->health_timeout_ms + 999) / 1000);
            int cnt = 2;

            setsockopt(bufferevent_getfd(bev), SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
            setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
            setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
            setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
        }
        e->conn = HC_CONN_OPEN;
        flush(e);
        return;
    }
    if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)))
        return;
    if (e->conn == HC_CONN_CONNECTING) {
        /* Nothing listens there. A reset before we saw the connection up is
         * the same news: a listener closed with us in its accept queue (a
         * process dying), not a network hiccup. */
        if (err == ECONNREFUSED || err == ECONNRESET) {
            conn_lost(e, HC_RES_DOWN,
                      err == ECONNREFUSED ? "connection refused"
                                          : "connection reset while connecting");
            return;
        }
        if (bufferevent_openssl_get_ssl(bev) != NULL) {
            char tls[128];

            snprintf(why, sizeof(why), "connect failed: %s", tls_error(bev, tls, sizeof(tls)));
        } else {
            snprintf(why, sizeof(why), "connect failed: %s", evutil_socket_error_to_string(err));
        }
        conn_lost(e, HC_RES_FAIL, why);
        return;
    }
    /* After a graceful GOAWAY the endpoint closes; our last frames may make
     * its kernel answer with a reset rather than let us read the EOF. */
    if (e->goaway)
        snprintf(why, sizeof(why), "connection closed after GOAWAY (NO_ERROR), before the answer");
    else if (what & BEV_EVENT_EOF)
        snprintf(why, sizeof(why), "connection closed by the endpoint");
    else
        snprintf(why, sizeof(why), "connection error: %s", evutil_socket_error_to_string(err));
    conn_lost(e, HC_RES_FAIL, why);
}

static int conn_open(struct hc_ep *e)
{
    struct hc *h = e->h;
    struct tls_be *tb = tls_be_get(h->conf, e->ep->cluster);
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
    };

    if (tb != NULL) {
        /* ALPN h2, SNI and verification as for calls; CONNECTED after the handshake */
        SSL *ssl = tls_be_ssl_new(tb, e->cc->targets[e->ep->target].host);

        e->bev =
            ssl == NULL
                ? NULL
                : bufferevent_openssl_socket_new(h->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                                 BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    } else {
        e->bev =
            bufferevent_socket_new(h->base, -1, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    }
    if (e->bev == NULL)
        return -1;
    if (nghttp2_session_client_new(&e->session, h->cbs, e) != 0) {
        e->session = NULL;
        conn_free(e);
        return -1;
    }
    e->conn = HC_CONN_CONNECTING;
    e->close_pending = false;
    nghttp2_submit_settings(e->session, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0]));
    bufferevent_setcb(e->bev, on_read, on_write, on_event, e);
    bufferevent_enable(e->bev, EV_READ | EV_WRITE);
    /* The probe's deadline (health_timeout) also bounds the connect. */
    if (bufferevent_socket_connect(e->bev, (struct sockaddr *)&e->ep->addr, (int)e->ep->addrlen) !=
        0) {
        conn_free(e);
        return -1;
    }
    return 0;
}

/* ---- probes ---- */

static ssize_t read_request(nghttp2_session *session, int32_t sid, uint8_t *buf, size_t length,
                            uint32_t *flags, nghttp2_data_source *source, void *user_data)
{
    struct hc_ep *e = user_data;
    size_t n = e->reqlen - e->req_off;

    (void)session;
    (void)sid;
    (void)source;
    if (n > length)
        n = length;
    memcpy(buf, e->req + e->req_off, n);
    e->req_off += n;
    if (e->req_off == e->reqlen)
        *flags |= NGHTTP2_DATA_FLAG_EOF; /* unary and server-streaming: one request */
    return (ssize_t)n;
}

#define NV(n, v, vl)                                                                               \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, (vl), NGHTTP2_NV_FLAG_NONE                  \
    }

static int32_t submit_probe(struct hc_ep *e, bool watch)
{
    const char *path = watch ? WATCH_PATH : CHECK_PATH;
    nghttp2_nv nva[] = {
        NV(":method", "POST", 4),
        NV(":scheme", "http", 4),
        NV(":path", path, strlen(path)),
        NV(":authority", e->authority, strlen(e->authority)),
        NV("content-type", "application/grpc", 16),
        NV("te", "trailers", 8),
        NV("user-agent", USER_AGENT, sizeof(USER_AGENT) - 1),
        NV("grpc-timeout", e->timeout_hdr, strlen(e->timeout_hdr)),
    };
    nghttp2_data_provider prd = {.source.ptr = NULL, .read_callback = read_request};
    /* A Watch has no deadline: it lives as long as the connection. */
    size_t n = sizeof(nva) / sizeof(nva[0]) - (watch ? 1 : 0);

    e->req_off = 0;
    return nghttp2_submit_request(e->session, NULL, nva, n, &prd, e);
}

static void answer_reset(struct hc_ep *e)
{
    e->http_status = 0;
    e->grpc_status = -1;
    e->ctype[0] = '\0';
    e->gmsg[0] = '\0';
    e->body_len = 0;
    e->body_overflow = false;
}

static void probe_start(struct hc_ep *e)
{
    uint32_t ms = e->cc->health_timeout_ms;
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    int32_t sid;
    char why[128];

    if (e->conn != HC_CONN_NONE && e->goaway)
        conn_free(e); /* never a new stream after GOAWAY (RFC 9113 §6.8) */
    if (e->conn == HC_CONN_NONE)
        e->conn_answered = false;
    if (e->conn == HC_CONN_NONE && conn_open(e) != 0) {
        e->probe = HC_PROBE_CHECK; /* so that the failure counts */
        conn_lost(e, HC_RES_FAIL, "cannot open a connection");
        return;
    }
    answer_reset(e);
    sid = submit_probe(e, e->use_watch);
    if (sid < 0) {
        /* e.g. stream ids exhausted after 2^30 probes: start afresh */
        snprintf(why, sizeof(why), "cannot send the request: %s", nghttp2_strerror(sid));
        e->probe = HC_PROBE_CHECK;
        e->conn_answered = false;
        conn_lost(e, HC_RES_FAIL, why);
        return;
    }
    e->sid = sid;
    e->probe = e->use_watch ? HC_PROBE_WATCH_FIRST : HC_PROBE_CHECK;
    e->probe_t0_us = now_us();
    event_add(e->timeout, &tv);
    flush(e);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct hc_ep *e = arg;

    (void)fd;
    (void)what;
    switch (e->probe) {
    case HC_PROBE_IDLE:
        probe_start(e);
        break;
    case HC_PROBE_WATCHING:
        /* The open Watch stream still stands by its last update: count it
         * again, so healthy_threshold passes accrue one per interval. */
        report(e, hc_result_of_serving(e->watch_status), hc_serving_name(e->watch_status));
        schedule(e, next_interval(e));
        break;
    default:
        break; /* the probe in flight reschedules when it ends */
    }
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct hc_ep *e = arg;
    char why[128];

    (void)fd;
    (void)what;
    if (e->conn == HC_CONN_CONNECTING)
        snprintf(why, sizeof(why), "connect timed out after %u ms", e->cc->health_timeout_ms);
    else if (e->probe == HC_PROBE_WATCH_FIRST)
        snprintf(why, sizeof(why), "no Watch update within %u ms", e->cc->health_timeout_ms);
    else
        snprintf(why, sizeof(why), "no answer within %u ms", e->cc->health_timeout_ms);
    /* Start afresh on a new connection: this one may be wedged. */
    conn_free(e);
    probe_finish(e);
    report(e, HC_RES_FAIL, why);
    schedule(e, next_interval(e));
}

/* A complete Check answer (END_STREAM) arrived. */
static void check_done(struct hc_ep *e)
{
    struct hc_answer a = {
        .http_status = e->http_status,
        .content_type = e->ctype[0] != '\0' ? e->ctype : NULL,
        .grpc_status = e->grpc_status,
        .grpc_message = e->gmsg,
        .body = e->body,
        .body_len = e->body_len,
    };
    char why[160];
    enum hc_result r;

    if (e->body_overflow) {
        snprintf(why, sizeof(why), "response larger than %d bytes", BODY_CAP);
        r = HC_RES_FAIL;
    } else {
        r = hc_classify(&a, why, sizeof(why));
    }
    e->conn_answered = true;
    e->conn_fails = 0;
    e->quick_left = 0;
    probe_finish(e);
    report(e, r, why);
    schedule(e, next_interval(e));
    /* The check that was in flight at a graceful GOAWAY is answered: now the
     * connection goes, and the next check opens a new one (no result). */
    if (e->goaway)
        conn_lost(e, HC_RES_FAIL, "GOAWAY (NO_ERROR)"); /* no probe in flight: no result */
}

/* One Watch update. */
static void watch_update(struct hc_ep *e, int status)
{
    char why[64];

    e->watch_status = status;
    if (e->probe == HC_PROBE_WATCH_FIRST) {
        event_del(e->timeout);
        e->probe = HC_PROBE_WATCHING;
        e->conn_answered = true;
        e->conn_fails = 0;
        e->quick_left = 0;
        schedule(e, next_interval(e));
    }
    snprintf(why, sizeof(why), "%s (Watch)", hc_serving_name(status));
    if (hc_result_of_serving(status) == HC_RES_FAIL)
        snprintf(why, sizeof(why), "unknown serving status %d (Watch)", status);
    report(e, hc_result_of_serving(status), why);
    /* The first update of a Watch taken before a graceful GOAWAY: watch again
     * on a new connection (no result), as check_done() does. */
    if (e->goaway) {
        probe_finish(e);
        conn_lost(e, HC_RES_FAIL, "GOAWAY (NO_ERROR)");
    }
}

/* The Watch stream ended (END_STREAM with trailers). */
static void watch_done(struct hc_ep *e)
{
    char why[160];
    enum hc_result r = HC_RES_FAIL;

    e->conn_answered = true;
    e->conn_fails = 0;
    e->quick_left = 0;
    probe_finish(e);
    if (e->http_status == 200 && e->grpc_status == HC_GRPC_UNIMPLEMENTED) {
        log_info("cluster %s: endpoint %s does not implement Health/Watch; using Check",
                 cluster_name(e), addr_of(e));
        e->use_watch = false;
        schedule(e, 0);
        return;
    }
    if (e->http_status != 200)
        snprintf(why, sizeof(why), "Watch answered HTTP status %d", e->http_status);
    else if (e->grpc_status < 0)
        snprintf(why, sizeof(why), "Watch ended without grpc-status");
    else
        snprintf(why, sizeof(why), "Watch ended: grpc-status %d %s%s%s", e->grpc_status,
                 grpc_code_name(e->grpc_status), e->gmsg[0] ? ": " : "", e->gmsg);
    if (e->http_status == 200 && e->grpc_status == HC_GRPC_NOT_FOUND)
        r = HC_RES_DOWN;
    report(e, r, why);
    schedule(e, next_interval(e));
}

/* ---- nghttp2 callbacks (client role) ---- */

static ssize_t send_cb(nghttp2_session *session, const uint8_t *data, size_t length, int flags,
                       void *user_data)
{
    struct hc_ep *e = user_data;

    (void)session;
    (void)flags;
    if (evbuffer_add(bufferevent_get_output(e->bev), data, length) != 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    return (ssize_t)length;
}

static void copy_value(char *dst, size_t cap, const uint8_t *v, size_t len)
{
    if (len >= cap)
        len = cap - 1;
    memcpy(dst, v, len);
    dst[len] = '\0';
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user_data)
{
    struct hc_ep *e = user_data;

    (void)session;
    (void)flags;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->hd.stream_id != e->sid || e->sid == 0)
        return 0;
    if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
        int st = 0;

        for (size_t i = 0; i < valuelen && i < 3; i++)
            st = st * 10 + (value[i] >= '0' && value[i] <= '9' ? value[i] - '0' : 0);
        /* 1xx are interim (RFC 9113 §8.1); gRPC never uses them */
        if (st >= 200)
            e->http_status = st;
    } else if (namelen == 12 && memcmp(name, "content-type", 12) == 0) {
        copy_value(e->ctype, sizeof(e->ctype), value, valuelen);
    } else if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0) {
        int st = 0;

        for (size_t i = 0; i < valuelen; i++) {
            if (value[i] < '0' || value[i] > '9' || st > 1000) {
                st = 2; /* malformed: UNKNOWN */
                break;
            }
            st = st * 10 + (value[i] - '0');
        }
        e->grpc_status = valuelen > 0 ? st : 2;
    } else if (namelen == 12 && memcmp(name, "grpc-message", 12) == 0) {
        copy_value(e->gmsg, sizeof(e->gmsg), value, valuelen);
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t sid, const uint8_t *data,
                         size_t len, void *user_data)
{
    struct hc_ep *e = user_data;

    (void)session;
    (void)flags;
    if (sid != e->sid || e->sid == 0 || e->close_pending)
        return 0;
    if (len > sizeof(e->body) - e->body_len) {
        e->body_overflow = true;
        len = sizeof(e->body) - e->body_len;
    }
    memcpy(e->body + e->body_len, data, len);
    e->body_len += len;
    if (e->probe != HC_PROBE_WATCH_FIRST && e->probe != HC_PROBE_WATCHING)
        return 0;
    /* Watch: each complete message is an update. */
    while (e->body_len > 0 && !e->close_pending) {
        size_t used = 0;
        int status = -1;
        enum hc_frame_rc rc = hc_codec_response_decode(e->body, e->body_len, &status, &used);

        if (rc == HC_FRAME_PARTIAL)
            break;
        if (rc != HC_FRAME_OK) {
            conn_lost(e, HC_RES_FAIL, hc_frame_rc_name(rc));
            break;
        }
        memmove(e->body, e->body + used, e->body_len - used);
        e->body_len -= used;
        watch_update(e, status);
    }
    return 0;
}

/* A GOAWAY (RFC 9113 §6.8; PROTOCOL-HTTP2.md "GOAWAY Frame"). With an error
 * code the endpoint found the connection, or us, at fault: out at once.
 * NO_ERROR is a graceful close, e.g. a gRPC server's MaxConnectionAge or the
 * start of its shutdown (often two GOAWAYs: last id 2^31-1, then the real
 * one), and no result by itself: a Check the endpoint took (id <= last id)
 * finishes on this connection, which then closes; otherwise the connection
 * closes now. The next probe opens a new connection at once (conn_lost()'s
 * quick re-probe, at most once per interval), so an endpoint that is really
 * stopping is found refusing connections right away. A probe it did not take
 * on a connection that never answered counts as a failure, so an endpoint
 * that sends GOAWAY on every new connection cannot stay healthy. */
static void on_goaway(struct hc_ep *e, const nghttp2_goaway *ga)
{
    char why[160];

    snprintf(why, sizeof(why), "GOAWAY (%s)", nghttp2_http2_strerror(ga->error_code));
    if (ga->error_code != NGHTTP2_NO_ERROR) {
        conn_lost(e, HC_RES_DOWN, why);
        return;
    }
    e->goaway = true;
    log_debug("cluster %s: endpoint %s: graceful GOAWAY (NO_ERROR, last stream %d), probe %s "
              "(stream %d); the next probe goes on a new connection",
              cluster_name(e), addr_of(e), ga->last_stream_id, probe_state_names[e->probe], e->sid);
    if ((e->probe == HC_PROBE_CHECK || e->probe == HC_PROBE_WATCH_FIRST) && e->sid != 0 &&
        e->sid <= ga->last_stream_id)
        return; /* its answer (check_done(), watch_update()), a reset or the timeout ends it */
    if (e->probe != HC_PROBE_IDLE && !e->conn_answered) {
        conn_lost(e, HC_RES_FAIL, "GOAWAY (NO_ERROR) before any answer on the connection");
        return;
    }
    /* Idle, a Watch that has had its first update (the server would cut it at
     * the end of its grace), or a probe not taken on a connection that
     * answered before: nothing to report (conn_lost() reports only a probe in
     * flight). */
    probe_finish(e);
    conn_lost(e, HC_RES_FAIL, why);
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    struct hc_ep *e = user_data;

    (void)session;
    if (e->close_pending)
        return 0;
    if (frame->hd.type == NGHTTP2_GOAWAY) {
        on_goaway(e, &frame->goaway);
        return 0;
    }
    if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) ||
        frame->hd.stream_id != e->sid || e->sid == 0 ||
        !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
        return 0;
    if (e->probe == HC_PROBE_CHECK)
        check_done(e);
    else
        watch_done(e);
    return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t sid, uint32_t error_code,
                           void *user_data)
{
    struct hc_ep *e = user_data;
    char why[128];

    (void)session;
    if (sid != e->sid || e->sid == 0 || e->close_pending)
        return 0; /* answered already, or the connection is going anyway */
    snprintf(why, sizeof(why), "stream reset by the endpoint (%s)",
             nghttp2_http2_strerror(error_code));
    probe_finish(e);
    report(e, HC_RES_FAIL, why);
    schedule(e, next_interval(e));
    return 0;
}

static nghttp2_session_callbacks *callbacks_new(void)
{
    nghttp2_session_callbacks *cbs;

    if (nghttp2_session_callbacks_new(&cbs) != 0)
        return NULL;
    nghttp2_session_callbacks_set_send_callback(cbs, send_cb);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    return cbs;
}

/* ---- endpoints ---- */

static void ep_free(struct hc_ep *e)
{
    conn_free(e);
    event_free(e->tick);
    event_free(e->timeout);
    TAILQ_REMOVE(&e->h->list, e, link);
    free(e->req);
    free(e);
}

static void on_add(struct bal_ep *ep, void *arg)
{
    struct hc *h = arg;
    const struct conf_cluster *cc = &h->conf->clusters[ep->cluster];
    const struct conf_target *t = &cc->targets[ep->target];
    const char *service = cc->health_service != NULL ? cc->health_service : "";
    struct hc_ep *e;
    size_t cap;

    if (!cc->health_check)
        return;
    e = xcalloc(1, sizeof(*e));
    e->h = h;
    e->ep = ep;
    e->cc = cc;
    e->smc.healthy_threshold = cc->healthy_threshold > 0 ? cc->healthy_threshold : 1;
    e->smc.unhealthy_threshold = cc->unhealthy_threshold > 0 ? cc->unhealthy_threshold : 1;
    e->smc.unimplemented_healthy = cc->health_unimplemented_healthy;
    /* health_initial, applied by the epset, or the state kept across a reload */
    hc_sm_init(&e->sm, ep->healthy, ep->since_ms != 0);
    e->use_watch = cc->health_mode == CONF_HEALTH_WATCH;
    e->watch_status = -1;
    if (cc->health_authority != NULL && cc->health_authority[0] != '\0')
        snprintf(e->authority, sizeof(e->authority), "%s", cc->health_authority);
    else if (strchr(t->host, ':') != NULL)
        snprintf(e->authority, sizeof(e->authority), "[%s]", t->host); /* RFC 3986 IP-literal */
    else
        snprintf(e->authority, sizeof(e->authority), "%s", t->host);
    hc_codec_timeout(cc->health_timeout_ms, e->timeout_hdr, sizeof(e->timeout_hdr));
    cap = strlen(service) + 16;
    e->req = xcalloc(1, cap);
    e->reqlen = hc_codec_request_encode(service, e->req, cap);
    e->tick = evtimer_new(h->base, on_tick, e);
    e->timeout = evtimer_new(h->base, on_timeout, e);
    if (e->tick == NULL || e->timeout == NULL) {
        log_error("out of memory");
        abort();
    }
    TAILQ_INSERT_TAIL(&h->list, e, link);
    ep->hc = e;
    log_debug("cluster %s: endpoint %s: checking %s every %u ms (timeout %u ms, service \"%s\")",
              cc->name, ep->addr_str, e->use_watch ? "with Watch" : "with Check",
              cc->health_interval_ms, cc->health_timeout_ms, service);
    /* The first check goes out at once; jitter spreads the later ones. */
    schedule(e, 0);
}

static void on_del(struct bal_ep *ep, void *arg)
{
    struct hc_ep *e = ep->hc;

    (void)arg;
    if (e == NULL)
        return;
    ep->hc = NULL;
    e->ep = NULL;
    if (e->busy > 0) {
        e->free_pending = true;
        event_del(e->tick);
        event_del(e->timeout);
        return;
    }
    ep_free(e);
}

struct hc *hc_new(struct event_base *base, const struct conf *c, struct bal_epset *eps,
                  hc_changed_cb changed, void *arg, char *err, size_t errlen)
{
    struct hc *h = xcalloc(1, sizeof(*h));

    h->base = base;
    h->conf = c;
    h->eps = eps;
    h->changed = changed;
    h->arg = arg;
    TAILQ_INIT(&h->list);
    h->rng = ((uint64_t)now_ms() << 20) ^ (uint64_t)getpid() ^ 0x9e3779b97f4a7c15ull;
    if (h->rng == 0)
        h->rng = 1;
    h->cbs = callbacks_new();
    if (h->cbs == NULL) {
        snprintf(err, errlen, "cannot set up HTTP/2 callbacks");
        free(h);
        return NULL;
    }
    bal_epset_observe(eps, on_add, on_del, h);
    return h;
}

void hc_ep_info(const struct hc *h, const struct bal_ep *ep, struct hc_ep_info *out)
{
    const struct hc_ep *e = ep->hc;

    if (h == NULL || e == NULL || e->h != h) {
        memset(out, 0, sizeof(*out));
        return;
    }
    *out = e->info;
}

void hc_free(struct hc *h)
{
    struct hc_ep *e;

    if (h == NULL)
        return;
    bal_epset_observe(h->eps, NULL, NULL, NULL);
    while ((e = TAILQ_FIRST(&h->list)) != NULL) {
        if (e->ep != NULL)
            e->ep->hc = NULL;
        ep_free(e);
    }
    nghttp2_session_callbacks_del(h->cbs);
    free(h);
}
