/* bench/bench_client.c: the benchmark's own h2c gRPC client, for what h2load can't do.
 *
 *   sy-benchclient check  -p PORT -d BODY [-n CALLS] [-c CONNS] [-m STREAMS] [-P PATH]
 *       Sends CALLS unary calls with BODY (a framed gRPC message) and checks every
 *       response in full: :status 200, content-type application/grpc, the same
 *       message echoed back and trailers with grpc-status 0. Exits 0 only if all are.
 *   sy-benchclient stream -p PORT [-s MSG_BYTES] [-D SECONDS] [-W WINDOW_MSGS] [-P PATH]
 *       One bidi stream: sends MSG_BYTES gRPC messages for SECONDS, at most WINDOW
 *       not yet echoed, checks every echoed byte and the final grpc-status 0, and
 *       prints the echoed messages and MB/s (one direction).
 *   sy-benchclient idle   -p PORT [-c CONNS]
 *       Opens CONNS HTTP/2 connections, waits until the server has answered each
 *       one's SETTINGS and a PING, prints "idle: N ready" and holds them open
 *       until SIGTERM.
 *   sy-benchclient bidi   -p PORT [-c CONNS] [-m STREAMS] [-s MSG_BYTES] [-D SECONDS]
 *                         [-n MESSAGES] [-r MSGS_PER_S] [-k MSGS_PER_STREAM] [-P PATH]
 *       CONNS x STREAMS bidi streams of small messages, each stream with one
 *       message in flight: a message goes out, its echo comes back (every byte
 *       checked), the next goes out. Without -r at saturation; with -r paced to
 *       MSGS_PER_S messages/s in all, spread over the idle streams. With -k each
 *       stream ends after that many messages (grpc-status 0 in its trailers is
 *       checked) and a new stream takes its place on the same connection. Stops
 *       after SECONDS or MESSAGES echoed, whichever comes first, and prints the
 *       echoed messages, streams, messages/s and the messages the pacing missed.
 *
 * Loopback h2c only (-a takes an IPv4 address). The body file and echo semantics
 * match bench/echo_server.c. Prints one result line on stdout; errors on stderr.
 * SPDX-License-Identifier: MIT
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <nghttp2/nghttp2.h>

enum mode {
    MODE_CHECK,
    MODE_STREAM,
    MODE_IDLE,
    MODE_BIDI
};

struct opts {
    enum mode mode;
    const char *addr;
    int port;
    const char *path;
    const char *body_file;
    long calls;      /* check */
    int conns;       /* check, idle */
    int streams;     /* check: concurrent streams per connection */
    size_t msg_size; /* stream: payload bytes per message */
    double seconds;  /* stream */
    long window;     /* stream: messages in flight */
    long messages;   /* bidi: stop after this many echoed (0: SECONDS only) */
    double rate;     /* bidi: messages/s in all (0: saturation) */
    long per_stream; /* bidi: messages per stream (0: one stream for the run) */
};

struct call {
    struct conn *conn;
    size_t sent;           /* request bytes handed to nghttp2 */
    struct evbuffer *resp; /* response body */
    int status;            /* :status */
    bool grpc_ct;          /* content-type application/grpc* */
    int grpc_status;       /* -1 until seen */
    bool in_trailers;      /* grpc-status came in a trailer block */
    /* bidi */
    struct call *next_idle; /* in the paced mode's queue of streams with nothing in flight */
    int32_t id;
    long msgs_sent;    /* messages granted (sent or being sent) */
    size_t send_left;  /* bytes of the current message still to hand to nghttp2 */
    uint64_t recv_off; /* echoed bytes received */
    bool ending;       /* END_STREAM to send: no more messages on this stream */
};

struct conn {
    struct bufferevent *bev;
    nghttp2_session *session;
    int active; /* check: open streams */
    bool ready; /* idle: SETTINGS ACK and PING ACK received */
    bool settings_acked, ping_acked;
    bool dead;
    bool dirty; /* bidi: frames to flush after the pacing tick */
};

static struct opts o = {
    .addr = "127.0.0.1",
    .path = "/sy.test.Echo/Unary",
    .calls = 1000,
    .conns = 4,
    .streams = 8,
    .msg_size = 65536,
    .seconds = 5,
    .window = 8,
};
static struct event_base *base;
static nghttp2_session_callbacks *callbacks;
static struct conn *conns;
static uint8_t *body; /* check: request body; stream: one framed message */
static size_t body_len;

/* check */
static long submitted, finished, ok;
static int reported;
/* stream */
static uint64_t s_sent, s_recv;
static bool s_send_done, s_finished, s_failed;
static double s_start, s_end;
static int32_t s_stream_id;
/* idle */
static int idle_ready, idle_closed;
/* bidi */
static uint64_t b_echoed, b_granted, b_missed, b_streams;
static bool b_stopping, b_failed;
static int b_open; /* streams open */
static struct call *b_idle_head, *b_idle_tail;
static double b_end;

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);

    if (p == NULL)
        abort();
    return p;
}

static void bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void bad(const char *fmt, ...)
{
    va_list ap;

    if (reported++ >= 5)
        return;
    va_start(ap, fmt);
    fputs("sy-benchclient: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* A gRPC message: 5-byte prefix, then protobuf field 1 (bytes) of |payload| bytes,
 * i.e. sy.test.EchoRequest{payload}. Every payload byte i is (i % 251). */
static uint8_t *make_message(size_t payload, size_t *len)
{
    uint8_t hdr[16], *m;
    size_t h = 0, pb, v = payload;

    hdr[h++] = 0x0a;
    do {
        hdr[h++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v > 0);
    pb = h + payload;
    *len = 5 + pb;
    m = xcalloc(1, *len);
    m[0] = 0;
    m[1] = (uint8_t)(pb >> 24);
    m[2] = (uint8_t)(pb >> 16);
    m[3] = (uint8_t)(pb >> 8);
    m[4] = (uint8_t)pb;
    memcpy(m + 5, hdr, h);
    for (size_t i = 0; i < payload; i++)
        m[5 + h + i] = (uint8_t)(i % 251);
    return m;
}

static int read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    long n;

    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0) {
        fprintf(stderr, "sy-benchclient: cannot read %s: %s\n", path, strerror(errno));
        return -1;
    }
    rewind(f);
    body_len = (size_t)n;
    body = xcalloc(1, body_len + 1);
    if (fread(body, 1, body_len, f) != body_len) {
        fclose(f);
        return -1;
    }
    fclose(f);
    return 0;
}

static bool all_done(void)
{
    switch (o.mode) {
    case MODE_CHECK:
        return finished >= o.calls;
    case MODE_STREAM:
        return s_finished;
    case MODE_IDLE:
        return false; /* until SIGTERM */
    case MODE_BIDI:
        return b_stopping && b_open == 0;
    }
    return true;
}

static void conn_close(struct conn *c)
{
    if (c->dead)
        return;
    c->dead = true;
    if (o.mode == MODE_IDLE)
        idle_closed++;
    nghttp2_session_del(c->session);
    c->session = NULL;
    bufferevent_free(c->bev);
    c->bev = NULL;
}

static int conn_flush(struct conn *c)
{
    for (;;) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(c->session, &data);

        if (n < 0)
            return -1;
        if (n == 0)
            return 0;
        evbuffer_add(bufferevent_get_output(c->bev), data, (size_t)n);
    }
}

static ssize_t on_check_body(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
                             size_t length, uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    struct call *cl = src->ptr;
    size_t n = body_len - cl->sent;

    (void)session;
    (void)stream_id;
    (void)ud;
    if (n > length)
        n = length;
    memcpy(buf, body + cl->sent, n);
    cl->sent += n;
    if (cl->sent == body_len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static ssize_t on_stream_body(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
                              size_t length, uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    size_t off = s_sent % body_len, n = body_len - off;

    (void)session;
    (void)stream_id;
    (void)src;
    (void)ud;
    if (s_send_done) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        return 0;
    }
    /* Stop at a message boundary once time is up. */
    if (off == 0 && now() >= s_start + o.seconds) {
        s_send_done = true;
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        return 0;
    }
    if (off == 0 && s_sent - s_recv >= (uint64_t)o.window * body_len)
        return NGHTTP2_ERR_DEFERRED;
    if (n > length)
        n = length;
    memcpy(buf, body + off, n);
    s_sent += n;
    return (ssize_t)n;
}

/* bidi: the current message of a stream, then END_STREAM once it ends. */
static ssize_t on_bidi_body(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
                            size_t length, uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    struct call *cl = src->ptr;
    size_t n = cl->send_left;

    (void)session;
    (void)stream_id;
    (void)ud;
    if (n == 0) {
        if (cl->ending) {
            *flags |= NGHTTP2_DATA_FLAG_EOF;
            return 0;
        }
        return NGHTTP2_ERR_DEFERRED;
    }
    if (n > length)
        n = length;
    memcpy(buf, body + (body_len - cl->send_left), n);
    cl->send_left -= n;
    return (ssize_t)n;
}

static void bidi_stop(void)
{
    if (!b_stopping) {
        b_stopping = true;
        b_end = now();
    }
}

/* Gives stream |cl| its next message (or its end). */
static void bidi_grant(struct call *cl)
{
    cl->msgs_sent++;
    cl->send_left = body_len;
    b_granted++;
    nghttp2_session_resume_data(cl->conn->session, cl->id);
    cl->conn->dirty = true;
}

static void bidi_end_stream(struct call *cl)
{
    cl->ending = true;
    nghttp2_session_resume_data(cl->conn->session, cl->id);
    cl->conn->dirty = true;
}

static void bidi_idle_push(struct call *cl)
{
    cl->next_idle = NULL;
    if (b_idle_tail != NULL)
        b_idle_tail->next_idle = cl;
    else
        b_idle_head = cl;
    b_idle_tail = cl;
}

static struct call *bidi_idle_pop(void)
{
    struct call *cl = b_idle_head;

    if (cl != NULL) {
        b_idle_head = cl->next_idle;
        if (b_idle_head == NULL)
            b_idle_tail = NULL;
        cl->next_idle = NULL;
    }
    return cl;
}

static const nghttp2_nv req_headers_tmpl[] = {
    {(uint8_t *)":method", (uint8_t *)"POST", 7, 4, NGHTTP2_NV_FLAG_NONE},
    {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, NGHTTP2_NV_FLAG_NONE},
    {(uint8_t *)":authority", (uint8_t *)"bench", 10, 5, NGHTTP2_NV_FLAG_NONE},
    {(uint8_t *)":path", NULL, 5, 0, NGHTTP2_NV_FLAG_NONE},
    {(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, NGHTTP2_NV_FLAG_NONE},
    {(uint8_t *)"te", (uint8_t *)"trailers", 2, 8, NGHTTP2_NV_FLAG_NONE},
};

static int submit_call(struct conn *c)
{
    nghttp2_nv nva[6];
    nghttp2_data_provider prd;
    struct call *cl = xcalloc(1, sizeof(*cl));
    int32_t id;

    memcpy(nva, req_headers_tmpl, sizeof(nva));
    nva[3].value = (uint8_t *)o.path;
    nva[3].valuelen = strlen(o.path);
    cl->conn = c;
    cl->grpc_status = -1;
    cl->resp = evbuffer_new();
    if (o.mode == MODE_CHECK)
        prd = (nghttp2_data_provider){.source.ptr = cl, .read_callback = on_check_body};
    else if (o.mode == MODE_BIDI)
        prd = (nghttp2_data_provider){.source.ptr = cl, .read_callback = on_bidi_body};
    else
        prd = (nghttp2_data_provider){.source.ptr = cl, .read_callback = on_stream_body};
    if (o.mode == MODE_BIDI && o.rate == 0) {
        /* saturation: the first message goes with the headers */
        cl->msgs_sent = 1;
        cl->send_left = body_len;
        b_granted++;
    }
    id = nghttp2_submit_request(c->session, NULL, nva, 6, &prd, cl);
    if (id < 0) {
        bad("submit: %s", nghttp2_strerror(id));
        return -1;
    }
    cl->id = id;
    if (o.mode == MODE_STREAM)
        s_stream_id = id;
    if (o.mode == MODE_BIDI) {
        b_open++;
        b_streams++;
        if (o.rate > 0)
            bidi_idle_push(cl);
    }
    c->active++;
    submitted++;
    return 0;
}

static void fill_conn(struct conn *c)
{
    while (o.mode == MODE_CHECK && !c->dead && c->active < o.streams && submitted < o.calls)
        if (submit_call(c) != 0)
            break;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
    struct call *cl = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);

    (void)flags;
    (void)ud;
    if (cl == NULL || frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    if (namelen == 7 && memcmp(name, ":status", 7) == 0)
        cl->status = atoi((const char *)value);
    else if (namelen == 12 && memcmp(name, "content-type", 12) == 0)
        cl->grpc_ct = valuelen >= 16 && memcmp(value, "application/grpc", 16) == 0;
    else if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0) {
        cl->grpc_status = atoi((const char *)value);
        cl->in_trailers = frame->headers.cat == NGHTTP2_HCAT_HEADERS;
    } else if (namelen == 12 && memcmp(name, "grpc-message", 12) == 0)
        bad("stream %d: grpc-message: %.*s", frame->hd.stream_id, (int)valuelen, value);
    return 0;
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                         const uint8_t *data, size_t len, void *ud)
{
    struct call *cl = nghttp2_session_get_stream_user_data(session, stream_id);

    (void)flags;
    (void)ud;
    if (cl == NULL)
        return 0;
    if (o.mode == MODE_CHECK) {
        evbuffer_add(cl->resp, data, len);
        return 0;
    }
    if (o.mode == MODE_BIDI) {
        for (size_t done = 0; done < len;) {
            size_t off = (size_t)(cl->recv_off % body_len), n = body_len - off;

            if (n > len - done)
                n = len - done;
            if (memcmp(data + done, body + off, n) != 0 && !b_failed) {
                bad("bidi stream %d: echoed bytes differ at offset %llu", stream_id,
                    (unsigned long long)cl->recv_off);
                b_failed = true;
            }
            done += n;
            cl->recv_off += n;
            if (cl->recv_off % body_len != 0)
                continue;
            /* one message echoed: the next one, the stream's end, or the run's */
            b_echoed++;
            if ((o.messages > 0 && (long)b_echoed >= o.messages) || now() >= s_start + o.seconds)
                bidi_stop();
            if (b_stopping || (o.per_stream > 0 && cl->msgs_sent >= o.per_stream))
                bidi_end_stream(cl);
            else if (o.rate > 0)
                bidi_idle_push(cl);
            else
                bidi_grant(cl);
        }
        return 0;
    }
    /* stream: the echo is the request byte stream, so byte k is body[k % body_len]. */
    for (size_t done = 0; done < len;) {
        size_t off = (size_t)(s_recv % body_len), n = body_len - off;

        if (n > len - done)
            n = len - done;
        if (memcmp(data + done, body + off, n) != 0 && !s_failed) {
            bad("stream: echoed bytes differ at offset %llu", (unsigned long long)s_recv);
            s_failed = true;
        }
        done += n;
        s_recv += n;
    }
    if (!s_send_done)
        nghttp2_session_resume_data(session, stream_id);
    return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *ud)
{
    struct conn *c = ud;

    (void)session;
    if (frame->hd.type == NGHTTP2_SETTINGS && (frame->hd.flags & NGHTTP2_FLAG_ACK))
        c->settings_acked = true;
    if (frame->hd.type == NGHTTP2_PING && (frame->hd.flags & NGHTTP2_FLAG_ACK))
        c->ping_acked = true;
    if (o.mode == MODE_IDLE && !c->ready && c->settings_acked && c->ping_acked) {
        c->ready = true;
        if (++idle_ready == o.conns) {
            printf("idle: %d ready\n", idle_ready);
            fflush(stdout);
        }
    }
    return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                           void *ud)
{
    struct call *cl = nghttp2_session_get_stream_user_data(session, stream_id);
    struct conn *c = ud;
    bool good;

    if (cl == NULL)
        return 0;
    if (o.mode == MODE_BIDI) {
        if (!(error_code == 0 && cl->status == 200 && cl->grpc_ct && cl->grpc_status == 0 &&
              cl->in_trailers && cl->recv_off == (uint64_t)cl->msgs_sent * body_len) &&
            !b_failed) {
            bad("bidi stream %d: rst=%u :status %d grpc-status %d, echoed %llu of %ld messages",
                stream_id, error_code, cl->status, cl->grpc_status,
                (unsigned long long)(cl->recv_off / body_len), cl->msgs_sent);
            b_failed = true;
        }
        if (o.rate > 0) { /* out of the idle queue */
            struct call **pp = &b_idle_head, *prev = NULL;

            while (*pp != NULL && *pp != cl) {
                prev = *pp;
                pp = &(*pp)->next_idle;
            }
            if (*pp == cl) {
                *pp = cl->next_idle;
                if (b_idle_tail == cl)
                    b_idle_tail = prev;
            }
        }
        b_open--;
        evbuffer_free(cl->resp);
        free(cl);
        /* -k: a new stream takes its place */
        if (!b_stopping && !b_failed && !c->dead && submit_call(c) != 0)
            b_failed = true;
        c->dirty = true;
        return 0;
    }
    c->active--;
    finished++;
    good = error_code == 0 && cl->status == 200 && cl->grpc_ct && cl->grpc_status == 0 &&
           cl->in_trailers;
    if (o.mode == MODE_CHECK) {
        size_t n = evbuffer_get_length(cl->resp);

        if (good && (n != body_len || memcmp(evbuffer_pullup(cl->resp, -1), body, n) != 0)) {
            bad("stream %d: response body is not the echoed request (%zu bytes)", stream_id, n);
            good = false;
        } else if (!good) {
            bad("stream %d: rst=%u :status %d content-type %s grpc-status %d%s", stream_id,
                error_code, cl->status, cl->grpc_ct ? "grpc" : "other", cl->grpc_status,
                cl->in_trailers ? " (trailers)" : " (headers)");
        }
        ok += good;
    } else {
        s_end = now();
        s_finished = true;
        if (!good || s_recv != s_sent) {
            bad("stream: rst=%u :status %d grpc-status %d, echoed %llu of %llu bytes", error_code,
                cl->status, cl->grpc_status, (unsigned long long)s_recv,
                (unsigned long long)s_sent);
            s_failed = true;
        }
    }
    evbuffer_free(cl->resp);
    free(cl);
    return 0;
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    struct evbuffer_iovec vec[16];
    int n;

    while ((n = evbuffer_peek(in, -1, NULL, vec, 16)) > 0) {
        size_t total = 0;

        for (int i = 0; i < n && i < 16; i++) {
            ssize_t r = nghttp2_session_mem_recv(c->session, vec[i].iov_base, vec[i].iov_len);

            if (r < 0) {
                bad("connection: %s", nghttp2_strerror((int)r));
                conn_close(c);
                return;
            }
            total += vec[i].iov_len;
        }
        evbuffer_drain(in, total);
    }
    fill_conn(c);
    if (conn_flush(c) != 0)
        conn_close(c);
    if (all_done())
        event_base_loopbreak(base);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;

    (void)bev;
    if (conn_flush(c) != 0)
        conn_close(c);
}

static void on_event(struct bufferevent *bev, short events, void *arg)
{
    struct conn *c = arg;

    (void)bev;
    if (events & BEV_EVENT_CONNECTED) {
        int one = 1;

        setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        return;
    }
    if (events & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        if (o.mode != MODE_IDLE || !c->ready)
            bad("connection closed: %s", events & BEV_EVENT_ERROR ? strerror(errno) : "EOF");
        conn_close(c);
        if (o.mode == MODE_CHECK) {
            finished = o.calls; /* give up: the rest can't be sent */
            event_base_loopbreak(base);
        } else if (o.mode == MODE_STREAM) {
            s_failed = true;
            s_finished = true;
            event_base_loopbreak(base);
        } else if (o.mode == MODE_BIDI) {
            b_failed = true;
            event_base_loopbreak(base);
        }
    }
}

static int conn_open(struct conn *c)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o.port)};
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
    };

    inet_pton(AF_INET, o.addr, &sin.sin_addr);
    c->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    nghttp2_session_client_new(&c->session, callbacks, c);
    nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, iv, 2);
    nghttp2_session_set_local_window_size(c->session, NGHTTP2_FLAG_NONE, 0, 16 << 20);
    if (o.mode == MODE_IDLE)
        nghttp2_submit_ping(c->session, NGHTTP2_FLAG_NONE, NULL);
    /* libevent reads and writes at most 16 KiB per syscall by default. */
    bufferevent_set_max_single_read(c->bev, 256 << 10);
    bufferevent_set_max_single_write(c->bev, 256 << 10);
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
        bad("connect: %s", strerror(errno));
        return -1;
    }
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    fill_conn(c);
    if (o.mode == MODE_STREAM)
        submit_call(c);
    for (int i = 0; o.mode == MODE_BIDI && i < o.streams; i++) {
        if (submit_call(c) != 0)
            return -1;
    }
    return conn_flush(c);
}

/* idle: connects in batches so no listen backlog overflows. */
static int idle_opened;
static void on_idle_tick(evutil_socket_t fd, short ev, void *arg)
{
    struct event *tick = arg;

    (void)fd;
    (void)ev;
    for (int batch = 0; batch < 64 && idle_opened < o.conns; batch++) {
        if (idle_opened - idle_ready - idle_closed > 128)
            break;
        if (conn_open(&conns[idle_opened++]) != 0) {
            event_base_loopbreak(base);
            return;
        }
    }
    if (idle_opened < o.conns)
        event_add(tick, &(struct timeval){0, 2000});
}

/* bidi -r: every millisecond, the messages due by now go to idle streams. */
static void on_pace_tick(evutil_socket_t fd, short ev, void *arg)
{
    uint64_t due;

    (void)fd;
    (void)ev;
    (void)arg;
    if (!b_stopping && now() >= s_start + o.seconds)
        bidi_stop();
    if (b_stopping) {
        /* the streams with nothing in flight end now */
        struct call *cl;

        while ((cl = bidi_idle_pop()) != NULL)
            bidi_end_stream(cl);
    } else {
        due = (uint64_t)(o.rate * (now() - s_start));
        while (b_granted + b_missed < due) {
            struct call *cl = bidi_idle_pop();

            if (cl == NULL) { /* every stream busy: this one is missed */
                b_missed++;
                continue;
            }
            bidi_grant(cl);
        }
    }
    for (int i = 0; i < o.conns; i++) {
        if (conns[i].dirty && !conns[i].dead) {
            conns[i].dirty = false;
            if (conn_flush(&conns[i]) != 0)
                conn_close(&conns[i]);
        }
    }
    if (all_done())
        event_base_loopbreak(base);
}

static void on_signal(evutil_socket_t sig, short ev, void *arg)
{
    (void)sig;
    (void)ev;
    (void)arg;
    event_base_loopbreak(base);
}

static void on_deadline(evutil_socket_t fd, short ev, void *arg)
{
    (void)fd;
    (void)ev;
    (void)arg;
    bad("timed out");
    s_failed = true;
    event_base_loopbreak(base);
}

static int usage(void)
{
    fprintf(stderr, "usage: sy-benchclient check|stream|idle|bidi -p PORT [-a ADDR] [-P PATH] "
                    "[-d BODY] [-n CALLS|MESSAGES] [-c CONNS] [-m STREAMS] [-s MSG_BYTES] "
                    "[-D SECONDS] [-W WINDOW] [-r MSGS_PER_S] [-k MSGS_PER_STREAM]\n");
    return 2;
}

int main(int argc, char **argv)
{
    struct rlimit rl;
    struct event *sig, *deadline, *tick = NULL, *pace = NULL;
    int opt, rc;

    if (argc < 2)
        return usage();
    if (strcmp(argv[1], "check") == 0)
        o.mode = MODE_CHECK;
    else if (strcmp(argv[1], "stream") == 0)
        o.mode = MODE_STREAM, o.path = "/sy.test.Echo/Bidi";
    else if (strcmp(argv[1], "idle") == 0)
        o.mode = MODE_IDLE, o.conns = 2000;
    else if (strcmp(argv[1], "bidi") == 0)
        o.mode = MODE_BIDI, o.path = "/sy.test.Echo/Bidi", o.conns = 8, o.streams = 16,
        o.msg_size = 100, o.messages = 0;
    else
        return usage();
    optind = 2;
    while ((opt = getopt(argc, argv, "a:p:P:d:n:c:m:s:D:W:r:k:")) != -1) {
        switch (opt) {
        case 'a':
            o.addr = optarg;
            break;
        case 'p':
            o.port = atoi(optarg);
            break;
        case 'P':
            o.path = optarg;
            break;
        case 'd':
            o.body_file = optarg;
            break;
        case 'n':
            o.calls = o.messages = atol(optarg);
            break;
        case 'c':
            o.conns = atoi(optarg);
            break;
        case 'm':
            o.streams = atoi(optarg);
            break;
        case 's':
            o.msg_size = (size_t)atol(optarg);
            break;
        case 'D':
            o.seconds = atof(optarg);
            break;
        case 'W':
            o.window = atol(optarg);
            break;
        case 'r':
            o.rate = atof(optarg);
            break;
        case 'k':
            o.per_stream = atol(optarg);
            break;
        default:
            return usage();
        }
    }
    if (o.port <= 0 || o.conns < 1 || o.streams < 1 || o.window < 1 || o.msg_size < 1)
        return usage();
    if (o.mode == MODE_CHECK) {
        if (o.body_file == NULL || read_file(o.body_file) != 0)
            return usage();
    } else if (o.mode == MODE_STREAM) {
        o.conns = 1;
        body = make_message(o.msg_size, &body_len);
    } else if (o.mode == MODE_BIDI) {
        body = make_message(o.msg_size, &body_len);
    }
    signal(SIGPIPE, SIG_IGN);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    nghttp2_session_callbacks_new(&callbacks);
    nghttp2_session_callbacks_set_on_header_callback(callbacks, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, on_stream_close);

    base = event_base_new();
    sig = evsignal_new(base, SIGTERM, on_signal, NULL);
    event_add(sig, NULL);
    deadline = evtimer_new(base, on_deadline, NULL);
    if (o.mode != MODE_IDLE)
        event_add(deadline, &(struct timeval){(time_t)o.seconds + 60, 0});
    conns = xcalloc((size_t)o.conns, sizeof(*conns));
    s_start = now();
    if (o.mode == MODE_IDLE) {
        tick = event_new(base, -1, 0, on_idle_tick, event_self_cbarg());
        event_active(tick, EV_TIMEOUT, 0);
    } else {
        for (int i = 0; i < o.conns; i++)
            if (conn_open(&conns[i]) != 0)
                return 1;
    }
    if (o.mode == MODE_BIDI && o.rate > 0) {
        pace = event_new(base, -1, EV_PERSIST, on_pace_tick, NULL);
        event_add(pace, &(struct timeval){0, 1000});
    }
    event_base_dispatch(base);

    switch (o.mode) {
    case MODE_CHECK:
        printf("check: calls=%ld ok=%ld bad=%ld\n", o.calls, ok, o.calls - ok);
        rc = ok == o.calls ? 0 : 1;
        break;
    case MODE_STREAM: {
        double secs = (s_finished ? s_end : now()) - s_start;
        double msgs = (double)s_recv / (double)body_len;

        printf("stream: messages=%.0f bytes=%llu seconds=%.3f mbps=%.2f msgs_per_s=%.0f ok=%d\n",
               msgs, (unsigned long long)s_recv, secs, (double)s_recv / secs / 1e6, msgs / secs,
               !s_failed);
        rc = s_failed ? 1 : 0;
        break;
    }
    case MODE_BIDI: {
        double secs = (b_stopping ? b_end : now()) - s_start;

        if (!b_stopping || b_open > 0)
            b_failed = true; /* interrupted */
        printf("bidi: messages=%llu streams=%llu seconds=%.3f msgs_per_s=%.0f missed=%llu ok=%d\n",
               (unsigned long long)b_echoed, (unsigned long long)b_streams, secs,
               (double)b_echoed / secs, (unsigned long long)b_missed, !b_failed);
        rc = b_failed ? 1 : 0;
        break;
    }
    default:
        printf("idle: ready=%d closed=%d\n", idle_ready, idle_closed);
        rc = idle_ready == o.conns ? 0 : 1;
        break;
    }
    for (int i = 0; i < o.conns; i++)
        if (conns[i].bev != NULL)
            conn_close(&conns[i]);
    free(conns);
    free(body);
    if (tick != NULL)
        event_free(tick);
    if (pace != NULL)
        event_free(pace);
    event_free(sig);
    event_free(deadline);
    event_base_free(base);
    nghttp2_session_callbacks_del(callbacks);
    return rc;
}
