/* libFuzzer harness: the backend codec (proxy/be.c, nghttp2 client role, on
 * proxy/conn.c's plumbing) fed what a hostile backend sends. Each input opens
 * one backend connection to an abstract AF_UNIX socket of the harness (the
 * codec connects to it as to any endpoint), opens streams on it the way
 * attempts do (request head, a small body pulled through req_avail and
 * req_write), and the harness's end of the socket sends the input's bytes.
 * Input: [0] flags (bits 0-1: streams to open - 1; 2: the opener of stream
 * 0 resets the last stream from its on_head, as a call cancels the attempts
 * it does not commit to; 3: each stream resets itself from its first
 * on_data, as a call over max_message_size does; 4: the body comes in two
 * parts (proxy_be_resume); 5: proxy_be_close_idle() once the bytes are in;
 * 6: proxy_be_shutdown() instead of closing the socket), [1] how many bytes
 * each write carries (0: all at once), then the server's bytes, which start
 * being written once the codec's preface has arrived.
 * Invariants (be.h): every opened stream reports its end exactly once unless
 * its opener reset it, and nothing after it; no body before the response
 * head, one head and at most one set of trailers, nothing after trailers-only;
 * a response head only after our HEADERS went out; a "not sent" end never
 * follows a response head; the connection reports on_gone exactly once.
 * SPDX-License-Identifier: MIT */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "core/log.h"
#include "proxy/be.h"
#include "proxy/conn.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_STREAMS 4

struct tstream {
    struct proxy_be_stream st;
    int idx;
    bool opened, closed, reset_by_us;
    bool sent, head, head_end, trailers;
    size_t body_off, body_len; /* request body: what is available so far */
    bool body_eof;
    enum proxy_be_end end;
};

static struct event_base *base;
static struct proxy_flusher fl;
static struct proxy_be_env env;
static evutil_socket_t lfd = -1;
static struct sockaddr_un laddr;
static socklen_t laddrlen;
static bool verbose;

/* one input's state */
static struct proxy_be_conn *bc;
static struct tstream ts[MAX_STREAMS];
static int want, nopened;
static uint8_t flags;
static int gone, connect_failed;
static struct proxy_head req;

/* Two gRPC messages: the request body, whole or in two parts. */
static const uint8_t body[] = {0, 0, 0, 0, 3, 'a', 'b', 'c', 0, 0, 0, 0, 2, 'd', 'e'};

static void check(bool ok, const char *what, int idx)
{
    if (!ok) {
        fprintf(stderr, "fuzz check failed: %s (stream %d)\n", what, idx);
        abort();
    }
}

/* ---- the opener (what an attempt does) ---- */

static void reset(struct tstream *t)
{
    if (!t->opened || t->closed || t->reset_by_us)
        return;
    t->reset_by_us = true;
    proxy_be_reset(&t->st, NGHTTP2_CANCEL);
}

static void on_sent(void *ctx)
{
    struct tstream *t = ctx;

    check(!t->closed && !t->reset_by_us, "on_sent after the end", t->idx);
    check(!t->sent, "on_sent twice", t->idx);
    t->sent = true;
}

static void on_head(void *ctx, struct proxy_head *h, bool end)
{
    struct tstream *t = ctx;

    check(!t->closed && !t->reset_by_us, "on_head after the end", t->idx);
    check(!t->head, "two response heads", t->idx);
    check(t->sent, "a response head before our HEADERS went out", t->idx);
    check(h->n > 0, "an empty response head", t->idx);
    t->head = true;
    t->head_end = end;
    if ((flags & 4) && t->idx == 0 && want > 1)
        reset(&ts[want - 1]);
}

static void on_data(void *ctx, const uint8_t *p, size_t n)
{
    struct tstream *t = ctx;

    (void)p;
    check(!t->closed && !t->reset_by_us, "on_data after the end", t->idx);
    check(t->head, "response body before the response head", t->idx);
    check(!t->head_end && !t->trailers, "response body after the end of the response", t->idx);
    /* The call credits the connection at once and the stream once written on. */
    proxy_be_credit(&t->st, n, false);
    proxy_be_credit(&t->st, n, true);
    if (flags & 8)
        reset(t);
}

static void on_trailers(void *ctx, struct proxy_head *h)
{
    struct tstream *t = ctx;

    (void)h;
    check(!t->closed && !t->reset_by_us, "on_trailers after the end", t->idx);
    check(t->head, "trailers before the response head", t->idx);
    check(!t->head_end, "trailers after a trailers-only response", t->idx);
    check(!t->trailers, "trailers twice", t->idx);
    t->trailers = true;
}

static void on_close(void *ctx, enum proxy_be_end end, uint32_t h2err, const char *why)
{
    struct tstream *t = ctx;

    (void)h2err;
    check(!t->closed, "on_close twice", t->idx);
    check(!t->reset_by_us, "on_close after the opener's reset", t->idx);
    check(end < PROXY_BE_END_COUNT, "an unknown end", t->idx);
    check(why != NULL && why[0] != '\0', "an end without a reason", t->idx);
    check(end != PROXY_BE_END_NOT_SENT || !t->head, "not sent, after a response head", t->idx);
    check(end != PROXY_BE_END_COMPLETE || t->head, "complete without a response head", t->idx);
    t->closed = true;
    t->end = end;
    if (verbose)
        fprintf(stderr, "stream %d: %s (%s)\n", t->idx, proxy_be_end_name(end), why);
}

static size_t req_avail(void *ctx, bool *eof)
{
    struct tstream *t = ctx;

    check(!t->closed && !t->reset_by_us, "req_avail after the end", t->idx);
    *eof = t->body_eof;
    return t->body_len - t->body_off;
}

static void req_write(void *ctx, struct evbuffer *out, size_t n)
{
    struct tstream *t = ctx;

    check(!t->closed && !t->reset_by_us, "req_write after the end", t->idx);
    check(n <= t->body_len - t->body_off, "req_write beyond what is available", t->idx);
    evbuffer_add(out, body + t->body_off, n);
    t->body_off += n;
}

static const struct proxy_be_stream_ops stream_ops = {
    .on_sent = on_sent,
    .on_head = on_head,
    .on_data = on_data,
    .on_trailers = on_trailers,
    .on_close = on_close,
    .req_avail = req_avail,
    .req_write = req_write,
};

/* Opens the streams still wanted while the connection has room (a pool does
 * the same on on_capacity). */
static void open_more(void)
{
    while (bc != NULL && nopened < want && proxy_be_has_capacity(bc)) {
        struct tstream *t = &ts[nopened];

        t->idx = nopened;
        t->body_len = (flags & 16) ? 8 : sizeof(body);
        t->body_eof = !(flags & 16);
        nopened++;
        if (proxy_be_open(bc, &t->st, &req, &stream_ops, t) != 0)
            continue; /* nothing opened, nothing reported */
        t->opened = true;
    }
}

/* ---- the pool's side ---- */

static void on_capacity(void *owner, struct proxy_be_conn *c)
{
    (void)owner;
    check(c == bc, "on_capacity of another connection", -1);
    open_more();
}

static void on_connect_failed(void *owner, struct proxy_be_conn *c, const char *why)
{
    (void)owner;
    (void)why;
    check(c == bc, "on_connect_failed of another connection", -1);
    connect_failed++;
}

static void on_gone(void *owner, struct proxy_be_conn *c)
{
    (void)owner;
    check(c == bc, "on_gone of another connection", -1);
    gone++;
    bc = NULL;
}

static const struct proxy_be_owner_ops owner_ops = {
    .on_capacity = on_capacity,
    .on_connect_failed = on_connect_failed,
    .on_gone = on_gone,
};

/* ---- set-up ---- */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    verbose = getenv("SY_FUZZ_VERBOSE") != NULL;
    log_init(verbose ? LOG_LVL_DEBUG : (enum log_level)(LOG_LVL_ERROR + 1));
    base = event_base_new();
    proxy_flusher_init(&fl, base);
    proxy_be_env_init(&env, base, &fl);
    /* The endpoint: an abstract AF_UNIX socket of this process. */
    laddr.sun_family = AF_UNIX;
    snprintf(laddr.sun_path + 1, sizeof(laddr.sun_path) - 1, "sy-fuzz-be-%d", (int)getpid());
    laddrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(laddr.sun_path + 1));
    lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&laddr, laddrlen) != 0 || listen(lfd, 16) != 0) {
        perror("fuzz_be: listen");
        abort();
    }
    proxy_head_add_static(&req, ":method", "POST");
    proxy_head_add_static(&req, ":scheme", "http");
    proxy_head_add_static(&req, ":path", "/sy.test.Echo/Unary");
    proxy_head_add_static(&req, ":authority", "backend.fuzz");
    proxy_head_add_static(&req, "content-type", "application/grpc");
    proxy_head_add_static(&req, "te", "trailers");
    return 0;
}

/* One loop turn, then what the codec wrote is read and dropped. */
static size_t turn(int sfd)
{
    uint8_t buf[65536];
    size_t got = 0;
    ssize_t n;

    event_base_loop(base, EVLOOP_NONBLOCK);
    while (sfd >= 0 && (n = recv(sfd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
        got += (size_t)n;
    return got;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct proxy_be_settings s = {0};
    size_t chunk, off = 0;
    int sfd = -1;

    if (size < 2)
        return 0;
    flags = data[0];
    chunk = data[1] != 0 ? data[1] : size;
    data += 2;
    size -= 2;
    memset(ts, 0, sizeof(ts));
    want = 1 + (flags & 3);
    nopened = 0;
    gone = connect_failed = 0;

    memcpy(&s.addr, &laddr, laddrlen);
    s.addrlen = laddrlen;
    s.addr_str = "backend.fuzz";
    s.connect_timeout_ms = 10000;
    s.max_streams = 3; /* below what the harness may want: on_capacity opens the rest */
    s.stream_window = 65535;
    bc = proxy_be_conn_new(&env, &s, &owner_ops, NULL);
    check(bc != NULL, "a connection", -1);
    open_more();

    /* The codec connects; the harness accepts and waits for its preface. */
    for (int i = 0; i < 50 && sfd < 0; i++) {
        sfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        turn(-1);
    }
    check(sfd >= 0, "the codec connects", -1);
    for (int i = 0; i < 50 && turn(sfd) == 0; i++)
        ;
    /* The server's bytes, |chunk| at a time, a few loop turns apart. */
    while (off < size && bc != NULL) {
        size_t n = size - off < chunk ? size - off : chunk;
        ssize_t w = send(sfd, data + off, n, MSG_NOSIGNAL | MSG_DONTWAIT);

        if (w <= 0)
            break; /* the codec closed, or stopped reading */
        off += (size_t)w;
        for (int i = 0; i < 3; i++)
            turn(sfd);
    }
    for (int i = 0; i < 10; i++)
        turn(sfd);
    /* More request body: the second part, and its end. */
    for (int i = 0; i < want; i++) {
        struct tstream *t = &ts[i];

        if (t->opened && !t->closed && !t->reset_by_us && !t->body_eof) {
            t->body_len = sizeof(body);
            t->body_eof = true;
            proxy_be_resume(&t->st);
        }
    }
    if (bc != NULL && (flags & 32))
        proxy_be_close_idle(bc);
    for (int i = 0; i < 10; i++)
        turn(sfd);
    /* The end: the backend goes away (or switchyard shuts the connection). */
    if (bc != NULL && (flags & 64))
        proxy_be_shutdown(bc, "fuzz: shut down");
    close(sfd);
    for (int i = 0; i < 50 && bc != NULL; i++)
        turn(-1);
    if (bc != NULL)
        proxy_be_conn_free(bc); /* worker exit */
    fl.dirty = NULL;
    event_base_loop(base, EVLOOP_NONBLOCK); /* deferred bufferevent callbacks */

    check(gone == 1, "on_gone exactly once", -1);
    for (int i = 0; i < want; i++) {
        const struct tstream *t = &ts[i];

        if (t->opened)
            check(t->closed || t->reset_by_us, "an opened stream never ended", i);
    }
    for (int i = 0; i < MAX_STREAMS; i++)
        proxy_head_deinit(&ts[i].st.rhead); /* the opener's storage (an attempt's) */
    return 0;
}
