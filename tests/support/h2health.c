/* Raw HTTP/2 grpc.health.v1 client for integration tests; see h2health.h.
 * Invariant: the session is fed only from hcl_wait*(), on the caller's thread.
 * SPDX-License-Identifier: MIT */
#include "tests/support/h2health.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "grpc/health/v1/health.pb-c.h"

#define MAX_STREAMS 16

struct hcl_stream {
    int32_t sid;
    bool hold;
    uint8_t req[512];
    size_t reqlen, off;
    uint8_t in[4096];
    size_t inlen;
    struct hcl_result r;
};

struct hcl {
    int fd;
    nghttp2_session *s;
    nghttp2_session_callbacks *cbs;
    bool goaway;
    bool dead;
    struct hcl_stream st[MAX_STREAMS];
    int nst;
};

static long mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static struct hcl_stream *find(struct hcl *c, int32_t sid)
{
    for (int i = 0; i < c->nst; i++) {
        if (c->st[i].sid == sid)
            return &c->st[i];
    }
    return NULL;
}

static ssize_t send_cb(nghttp2_session *session, const uint8_t *data, size_t len, int flags,
                       void *user_data)
{
    struct hcl *c = user_data;
    size_t done = 0;

    (void)session;
    (void)flags;
    while (done < len) {
        ssize_t n = send(c->fd, data + done, len - done, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        done += (size_t)n;
    }
    return (ssize_t)len;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user_data)
{
    struct hcl_stream *st = find(user_data, frame->hd.stream_id);
    char v[128];

    (void)session;
    (void)flags;
    if (st == NULL)
        return 0;
    snprintf(v, sizeof(v), "%.*s", (int)valuelen, value);
    if (namelen == 7 && memcmp(name, ":status", 7) == 0)
        st->r.http_status = atoi(v);
    else if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0)
        st->r.grpc_status = atoi(v);
    else if (namelen == 12 && memcmp(name, "grpc-message", 12) == 0)
        snprintf(st->r.grpc_message, sizeof(st->r.grpc_message), "%s", v);
    return 0;
}

static int on_data(nghttp2_session *session, uint8_t flags, int32_t sid, const uint8_t *data,
                   size_t len, void *user_data)
{
    struct hcl_stream *st = find(user_data, sid);

    (void)session;
    (void)flags;
    if (st == NULL)
        return 0;
    if (len > sizeof(st->in) - st->inlen) {
        st->r.bad_message = true;
        return 0;
    }
    memcpy(st->in + st->inlen, data, len);
    st->inlen += len;
    /* gRPC framing: flag, 4-byte length, message */
    while (st->inlen >= 5) {
        uint32_t n = (uint32_t)st->in[1] << 24 | (uint32_t)st->in[2] << 16 |
                     (uint32_t)st->in[3] << 8 | st->in[4];
        Grpc__Health__V1__HealthCheckResponse *rep;

        if (st->inlen < 5 + (size_t)n)
            break;
        rep = st->in[0] == 0 ? grpc__health__v1__health_check_response__unpack(NULL, n, st->in + 5)
                             : NULL;
        if (rep == NULL) {
            st->r.bad_message = true;
        } else {
            if (st->r.nstatuses < HCL_MAX_UPDATES)
                st->r.statuses[st->r.nstatuses++] = (int)rep->status;
            grpc__health__v1__health_check_response__free_unpacked(rep, NULL);
        }
        memmove(st->in, st->in + 5 + n, st->inlen - 5 - n);
        st->inlen -= 5 + n;
    }
    return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    struct hcl *c = user_data;

    (void)session;
    if (frame->hd.type == NGHTTP2_GOAWAY)
        c->goaway = true;
    return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t sid, uint32_t error_code,
                           void *user_data)
{
    struct hcl_stream *st = find(user_data, sid);

    (void)session;
    if (st != NULL) {
        st->r.closed = true;
        st->r.rst = error_code;
    }
    return 0;
}

struct hcl *hcl_connect(int port)
{
    struct hcl *c = calloc(1, sizeof(*c));
    struct sockaddr_in sin;
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0}};
    int one = 1;

    if (c == NULL)
        return NULL;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons((uint16_t)port);
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
        if (c->fd >= 0)
            close(c->fd);
        free(c);
        return NULL;
    }
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (nghttp2_session_callbacks_new(&c->cbs) != 0)
        abort();
    nghttp2_session_callbacks_set_send_callback(c->cbs, send_cb);
    nghttp2_session_callbacks_set_on_header_callback(c->cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(c->cbs, on_data);
    nghttp2_session_callbacks_set_on_frame_recv_callback(c->cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(c->cbs, on_stream_close);
    if (nghttp2_session_client_new(&c->s, c->cbs, c) != 0)
        abort();
    nghttp2_submit_settings(c->s, NGHTTP2_FLAG_NONE, iv, 1);
    if (nghttp2_session_send(c->s) != 0) {
        hcl_close(c);
        return NULL;
    }
    return c;
}

void hcl_close(struct hcl *c)
{
    if (c == NULL)
        return;
    nghttp2_session_del(c->s);
    nghttp2_session_callbacks_del(c->cbs);
    close(c->fd);
    free(c);
}

static ssize_t read_req(nghttp2_session *session, int32_t sid, uint8_t *buf, size_t len,
                        uint32_t *flags, nghttp2_data_source *src, void *user_data)
{
    struct hcl_stream *st = find(user_data, sid);
    size_t n;

    (void)session;
    (void)src;
    if (st == NULL)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    if (st->hold)
        return NGHTTP2_ERR_DEFERRED;
    n = st->reqlen - st->off < len ? st->reqlen - st->off : len;
    memcpy(buf, st->req + st->off, n);
    st->off += n;
    if (st->off == st->reqlen)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

#define NV(n, v)                                                                                   \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE             \
    }

int32_t hcl_start(struct hcl *c, const char *method, const char *service, bool hold,
                  bool compressed)
{
    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    char path[64];
    nghttp2_nv nva[] = {NV(":method", "POST"),
                        NV(":scheme", "http"),
                        NV(":path", ""),
                        NV(":authority", "switchyard"),
                        NV("content-type", "application/grpc"),
                        NV("te", "trailers")};
    nghttp2_data_provider prd;
    struct hcl_stream *st;
    size_t n;
    int32_t sid;

    if (c->nst == MAX_STREAMS)
        return -1;
    snprintf(path, sizeof(path), "/grpc.health.v1.Health/%s", method);
    nva[2].value = (uint8_t *)path;
    nva[2].valuelen = strlen(path);
    st = &c->st[c->nst];
    memset(st, 0, sizeof(*st));
    st->r.grpc_status = -1;
    st->hold = hold;
    req.service = (char *)service;
    n = grpc__health__v1__health_check_request__get_packed_size(&req);
    if (n + 5 > sizeof(st->req))
        return -1;
    grpc__health__v1__health_check_request__pack(&req, st->req + 5);
    st->req[0] = compressed ? 1 : 0;
    st->req[1] = st->req[2] = 0;
    st->req[3] = (uint8_t)(n >> 8);
    st->req[4] = (uint8_t)n;
    st->reqlen = n + 5;
    prd.source.ptr = NULL;
    prd.read_callback = read_req;
    sid = nghttp2_submit_request(c->s, NULL, nva, sizeof(nva) / sizeof(nva[0]), &prd, NULL);
    if (sid < 0)
        return -1;
    st->sid = sid;
    c->nst++;
    if (nghttp2_session_send(c->s) != 0)
        return -1;
    return sid;
}

int hcl_send_body(struct hcl *c, int32_t sid)
{
    struct hcl_stream *st = find(c, sid);

    if (st == NULL)
        return -1;
    st->hold = false;
    if (nghttp2_session_resume_data(c->s, sid) != 0)
        return -1;
    return nghttp2_session_send(c->s) == 0 ? 0 : -1;
}

/* Reads what arrives within |ms| and feeds it to the session. Returns -1 when
 * the connection is gone. */
static int pump(struct hcl *c, int ms)
{
    struct pollfd p = {c->fd, POLLIN, 0};
    uint8_t buf[16384];
    ssize_t n;
    int rv;

    if (c->dead)
        return -1;
    rv = poll(&p, 1, ms);
    if (rv < 0 && errno != EINTR)
        return -1;
    if (rv <= 0)
        return 0;
    n = recv(c->fd, buf, sizeof(buf), 0);
    if (n <= 0 || nghttp2_session_mem_recv(c->s, buf, (size_t)n) < 0 ||
        nghttp2_session_send(c->s) != 0) {
        c->dead = true;
        return -1;
    }
    return 0;
}

int hcl_wait(struct hcl *c, int32_t sid, int nupdates, int timeout_ms)
{
    long end = mono_ms() + timeout_ms;
    struct hcl_stream *st = find(c, sid);

    if (st == NULL)
        return -1;
    for (;;) {
        if (st->r.closed || (nupdates >= 0 && st->r.nstatuses >= nupdates))
            return 0;
        if (mono_ms() >= end || pump(c, 10) != 0)
            return st->r.closed ? 0 : -1;
    }
}

int hcl_wait_goaway(struct hcl *c, int timeout_ms)
{
    long end = mono_ms() + timeout_ms;

    while (!c->goaway) {
        if (mono_ms() >= end || pump(c, 10) != 0)
            return c->goaway ? 0 : -1;
    }
    return 0;
}

const struct hcl_result *hcl_result(const struct hcl *c, int32_t sid)
{
    return find((struct hcl *)c, sid) != NULL ? &find((struct hcl *)c, sid)->r : NULL;
}
