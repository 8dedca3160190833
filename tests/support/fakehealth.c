/* Fake grpc.health.v1 server for integration tests; see fakehealth.h.
 * Invariant: every nghttp2 session is touched only by the server thread;
 * the test thread only changes the mode under |mu| and bumps |gen|, which the
 * thread turns into Watch updates.
 * SPDX-License-Identifier: MIT */
#include "tests/support/fakehealth.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#define MAX_CONNS 64
#define OUT_CAP   256

struct fhs_server;

struct fhs_stream {
    struct fhs_conn *c;
    int32_t sid;
    bool watch;
    bool watching; /* an open Watch that takes updates */
    bool end;      /* after |out|, trailers grpc-status 0 end the stream */
    int last;      /* ServingStatus last sent on a Watch */
    uint8_t out[OUT_CAP];
    size_t outlen, off;
    struct fhs_stream *next; /* in c->streams */
};

struct fhs_conn {
    struct fhs_server *srv;
    int fd;
    bool silent;  /* never answers: no session at all */
    bool closing; /* GOAWAY queued: close once written */
    nghttp2_session *s;
    struct fhs_stream *streams;
};

struct fhs_server {
    int lfd;
    int stop[2];
    int port;
    char addr[32];
    pthread_t thread;
    nghttp2_session_callbacks *cbs;
    struct fhs_conn *conns[MAX_CONNS];
    int nconns;
    unsigned seen_gen; /* thread only */
    pthread_mutex_t mu;
    /* Under |mu|: */
    enum fhs_mode mode;
    int code;
    bool watch_unimpl;
    unsigned gen;
    int accepted, checks, watches;
    char headers[8192]; /* "name: value\n" of the requests, first ones kept */
    size_t hlen;
};

static void lock(struct fhs_server *s)
{
    pthread_mutex_lock(&s->mu);
}

static void unlock(struct fhs_server *s)
{
    pthread_mutex_unlock(&s->mu);
}

/* ---- responses ---- */

static size_t frame_status(uint8_t *out, int status, uint8_t flag)
{
    /* HealthCheckResponse{status}: field 1, varint; gRPC prefix: flag, length */
    out[0] = flag;
    out[1] = out[2] = out[3] = 0;
    if (status == 0) {
        out[4] = 0;
        return 5;
    }
    out[4] = 2;
    out[5] = 0x08;
    out[6] = (uint8_t)status;
    return 7;
}

#define NV(n, v)                                                                                   \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE             \
    }

static ssize_t read_out(nghttp2_session *session, int32_t sid, uint8_t *buf, size_t len,
                        uint32_t *flags, nghttp2_data_source *src, void *user_data)
{
    struct fhs_stream *st = src->ptr;
    size_t n = st->outlen - st->off;

    (void)user_data;
    if (n > len)
        n = len;
    memcpy(buf, st->out + st->off, n);
    st->off += n;
    if (st->off < st->outlen)
        return (ssize_t)n;
    st->off = st->outlen = 0;
    if (st->end) {
        nghttp2_nv trl[] = {NV("grpc-status", "0")};

        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (nghttp2_submit_trailer(session, sid, trl, 1) == 0)
            *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        return (ssize_t)n;
    }
    return n > 0 ? (ssize_t)n : NGHTTP2_ERR_DEFERRED;
}

static void respond_status(struct fhs_stream *st, int code)
{
    char cb[8] = "";
    nghttp2_nv nva[] = {NV(":status", "200"), NV("content-type", "application/grpc"),
                        NV("grpc-status", ""), NV("grpc-message", "fake health server")};

    snprintf(cb, sizeof(cb), "%d", code);
    nva[2].value = (uint8_t *)cb;
    nva[2].valuelen = strlen(cb);
    nghttp2_submit_response(st->c->s, st->sid, nva, 4, NULL);
}

static void respond_data(struct fhs_stream *st)
{
    nghttp2_nv nva[] = {NV(":status", "200"), NV("content-type", "application/grpc")};
    nghttp2_data_provider prd;

    prd.source.ptr = st;
    prd.read_callback = read_out;
    nghttp2_submit_response(st->c->s, st->sid, nva, 2, &prd);
}

static int serving_of(enum fhs_mode m)
{
    return m == FHS_NOT_SERVING ? 2 : 1;
}

/* The request on |st| is complete: answer it as the mode says. */
static void answer(struct fhs_stream *st)
{
    struct fhs_conn *c = st->c;
    struct fhs_server *s = c->srv;
    enum fhs_mode mode;
    bool unimpl;
    int code;

    lock(s);
    mode = s->mode;
    code = s->code;
    unimpl = s->watch_unimpl;
    if (st->watch)
        s->watches++;
    else
        s->checks++;
    unlock(s);

    if (mode == FHS_GOAWAY) {
        nghttp2_submit_goaway(c->s, NGHTTP2_FLAG_NONE,
                              nghttp2_session_get_last_proc_stream_id(c->s), NGHTTP2_NO_ERROR, NULL,
                              0);
        c->closing = true;
        return;
    }
    if (st->watch && unimpl) {
        respond_status(st, 12);
        return;
    }
    switch (mode) {
    case FHS_STATUS:
        respond_status(st, code);
        return;
    case FHS_COMPRESSED:
        st->outlen = frame_status(st->out, 1, 1);
        break;
    case FHS_BAD_MESSAGE:
        /* field 1 as a varint that never ends */
        memcpy(st->out, "\0\0\0\0\2\x08\xff", 7);
        st->outlen = 7;
        break;
    default:
        st->outlen = frame_status(st->out, serving_of(mode), 0);
        st->last = serving_of(mode);
        st->watching = st->watch;
        break;
    }
    st->end = !st->watch;
    respond_data(st);
}

/* The mode changed: open Watch streams hear about it. */
static void push_updates(struct fhs_server *s)
{
    enum fhs_mode mode;

    lock(s);
    mode = s->mode;
    unlock(s);
    if (mode != FHS_SERVING && mode != FHS_NOT_SERVING)
        return;
    for (int i = 0; i < s->nconns; i++) {
        struct fhs_conn *c = s->conns[i];

        for (struct fhs_stream *st = c->streams; st != NULL; st = st->next) {
            if (!st->watching || st->last == serving_of(mode) || st->outlen + 7 > OUT_CAP)
                continue;
            st->outlen += frame_status(st->out + st->outlen, serving_of(mode), 0);
            st->last = serving_of(mode);
            nghttp2_session_resume_data(c->s, st->sid);
        }
    }
}

/* ---- nghttp2 callbacks (server role) ---- */

static ssize_t send_cb(nghttp2_session *session, const uint8_t *data, size_t len, int flags,
                       void *user_data)
{
    struct fhs_conn *c = user_data;
    ssize_t n;

    (void)session;
    (void)flags;
    n = send(c->fd, data, len, MSG_NOSIGNAL);
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK ? NGHTTP2_ERR_WOULDBLOCK
                                                       : NGHTTP2_ERR_CALLBACK_FAILURE;
    return n;
}

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    struct fhs_conn *c = user_data;
    struct fhs_stream *st;

    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    st = calloc(1, sizeof(*st));
    if (st == NULL)
        abort();
    st->c = c;
    st->sid = frame->hd.stream_id;
    st->next = c->streams;
    c->streams = st;
    nghttp2_session_set_stream_user_data(session, st->sid, st);
    return 0;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user_data)
{
    struct fhs_conn *c = user_data;
    struct fhs_server *s = c->srv;
    struct fhs_stream *st = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);

    (void)flags;
    if (st == NULL)
        return 0;
    if (namelen == 5 && memcmp(name, ":path", 5) == 0)
        st->watch = valuelen >= 6 && memcmp(value + valuelen - 6, "/Watch", 6) == 0;
    lock(s);
    if (s->hlen + namelen + valuelen + 4 < sizeof(s->headers)) {
        s->hlen += (size_t)snprintf(s->headers + s->hlen, sizeof(s->headers) - s->hlen,
                                    "%.*s: %.*s\n", (int)namelen, name, (int)valuelen, value);
    }
    unlock(s);
    return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    struct fhs_stream *st;

    (void)user_data;
    if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) ||
        !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
        return 0;
    st = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (st != NULL)
        answer(st);
    return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t sid, uint32_t error_code,
                           void *user_data)
{
    struct fhs_conn *c = user_data;
    struct fhs_stream *st = nghttp2_session_get_stream_user_data(session, sid);

    (void)error_code;
    if (st == NULL)
        return 0;
    for (struct fhs_stream **pp = &c->streams; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == st) {
            *pp = st->next;
            break;
        }
    }
    free(st);
    return 0;
}

/* ---- connections ---- */

static void conn_close(struct fhs_server *s, int i)
{
    struct fhs_conn *c = s->conns[i];

    if (c->s != NULL)
        nghttp2_session_del(c->s); /* frees the streams through on_stream_close */
    while (c->streams != NULL) {
        struct fhs_stream *st = c->streams;

        c->streams = st->next;
        free(st);
    }
    close(c->fd);
    free(c);
    s->conns[i] = s->conns[--s->nconns];
}

static void conn_accept(struct fhs_server *s)
{
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100}};
    struct fhs_conn *c;
    int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    int one = 1;
    bool silent;

    if (fd < 0)
        return;
    lock(s);
    s->accepted++;
    silent = s->mode == FHS_SILENT;
    unlock(s);
    if (s->nconns == MAX_CONNS) {
        close(fd);
        return;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        abort();
    c->srv = s;
    c->fd = fd;
    c->silent = silent;
    if (!silent) {
        if (nghttp2_session_server_new(&c->s, s->cbs, c) != 0)
            abort();
        nghttp2_submit_settings(c->s, NGHTTP2_FLAG_NONE, iv, 1);
    }
    s->conns[s->nconns++] = c;
}

/* Returns false when the connection is finished. */
static bool conn_read(struct fhs_conn *c)
{
    uint8_t buf[16384];
    ssize_t n = recv(c->fd, buf, sizeof(buf), 0);

    if (n < 0)
        return errno == EAGAIN || errno == EINTR;
    if (n == 0)
        return false;
    if (c->silent || c->closing)
        return true;
    return nghttp2_session_mem_recv(c->s, buf, (size_t)n) >= 0;
}

static bool conn_flush(struct fhs_conn *c)
{
    if (c->silent)
        return true;
    if (nghttp2_session_send(c->s) != 0)
        return false;
    if (c->closing && !nghttp2_session_want_write(c->s))
        return false;
    return nghttp2_session_want_read(c->s) || nghttp2_session_want_write(c->s);
}

static void *run(void *arg)
{
    struct fhs_server *s = arg;

    for (;;) {
        struct pollfd p[MAX_CONNS + 2];
        int n = 0, rv;
        unsigned gen;

        p[n++] = (struct pollfd){s->stop[0], POLLIN, 0};
        p[n++] = (struct pollfd){s->lfd, POLLIN, 0};
        for (int i = 0; i < s->nconns; i++) {
            short ev = POLLIN;

            if (s->conns[i]->s != NULL && nghttp2_session_want_write(s->conns[i]->s))
                ev |= POLLOUT;
            p[n++] = (struct pollfd){s->conns[i]->fd, ev, 0};
        }
        rv = poll(p, (nfds_t)n, 20);
        if (rv < 0 && errno != EINTR)
            break;
        if (p[0].revents)
            break;
        /* connections first: their indices match p[2..] until one is closed */
        for (int i = s->nconns - 1; i >= 0; i--) {
            if (p[i + 2].revents & (POLLIN | POLLHUP | POLLERR)) {
                if (!conn_read(s->conns[i]))
                    conn_close(s, i);
            }
        }
        if (p[1].revents & POLLIN)
            conn_accept(s);
        lock(s);
        gen = s->gen;
        unlock(s);
        if (gen != s->seen_gen) {
            s->seen_gen = gen;
            push_updates(s);
        }
        for (int i = s->nconns - 1; i >= 0; i--) {
            if (!conn_flush(s->conns[i]))
                conn_close(s, i);
        }
    }
    while (s->nconns > 0)
        conn_close(s, s->nconns - 1);
    return NULL;
}

/* ---- API ---- */

struct fhs_server *fhs_start(enum fhs_mode mode, int code)
{
    struct fhs_server *s = calloc(1, sizeof(*s));
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);

    if (s == NULL)
        return NULL;
    pthread_mutex_init(&s->mu, NULL);
    s->mode = mode;
    s->code = code;
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (s->lfd < 0 || bind(s->lfd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
        listen(s->lfd, 64) != 0 || getsockname(s->lfd, (struct sockaddr *)&sin, &len) != 0 ||
        pipe2(s->stop, O_CLOEXEC) != 0) {
        if (s->lfd >= 0)
            close(s->lfd);
        free(s);
        return NULL;
    }
    s->port = ntohs(sin.sin_port);
    snprintf(s->addr, sizeof(s->addr), "127.0.0.1:%d", s->port);
    if (nghttp2_session_callbacks_new(&s->cbs) != 0)
        abort();
    nghttp2_session_callbacks_set_send_callback(s->cbs, send_cb);
    nghttp2_session_callbacks_set_on_begin_headers_callback(s->cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(s->cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(s->cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(s->cbs, on_stream_close);
    if (pthread_create(&s->thread, NULL, run, s) != 0) {
        close(s->lfd);
        close(s->stop[0]);
        close(s->stop[1]);
        nghttp2_session_callbacks_del(s->cbs);
        free(s);
        return NULL;
    }
    return s;
}

void fhs_set(struct fhs_server *s, enum fhs_mode mode, int code)
{
    lock(s);
    s->mode = mode;
    s->code = code;
    s->gen++;
    unlock(s);
}

void fhs_watch_unimplemented(struct fhs_server *s, bool on)
{
    lock(s);
    s->watch_unimpl = on;
    unlock(s);
}

int fhs_port(const struct fhs_server *s)
{
    return s->port;
}

const char *fhs_addr(const struct fhs_server *s)
{
    return s->addr;
}

static int counter(struct fhs_server *s, const int *field)
{
    int v;

    lock(s);
    v = *field;
    unlock(s);
    return v;
}

int fhs_conns(struct fhs_server *s)
{
    return counter(s, &s->accepted);
}

int fhs_checks(struct fhs_server *s)
{
    return counter(s, &s->checks);
}

int fhs_watches(struct fhs_server *s)
{
    return counter(s, &s->watches);
}

bool fhs_saw_header(struct fhs_server *s, const char *name, const char *value)
{
    char line[512];
    bool found;

    snprintf(line, sizeof(line), "%s: %s\n", name, value);
    lock(s);
    s->headers[s->hlen] = '\0';
    found = strstr(s->headers, line) != NULL;
    unlock(s);
    return found;
}

void fhs_stop(struct fhs_server *s)
{
    ssize_t w;

    if (s == NULL)
        return;
    w = write(s->stop[1], "x", 1);
    (void)w;
    pthread_join(s->thread, NULL);
    close(s->lfd);
    close(s->stop[0]);
    close(s->stop[1]);
    nghttp2_session_callbacks_del(s->cbs);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
