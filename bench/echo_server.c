/* bench/echo_server.c: the benchmark's backend, a small h2c gRPC echo server.
 *
 * Any request is answered as a gRPC call: response HEADERS (:status 200,
 * content-type application/grpc) as soon as the request headers are in, then
 * every request DATA byte back as it arrives (so a unary call gets its own
 * message back and a bidi stream gets each message echoed), then trailers
 * grpc-status: 0 once the request has ended. It parses nothing, so it costs as
 * little as an HTTP/2 server can and is not the bottleneck of the benchmark.
 *
 * Usage: sy-echo [-a ADDR] [-p PORT] [-w THREADS]
 * Prints "listening PORT" on stdout once bound (PORT 0 picks a free one).
 * SIGUSR1 prints "echo-stats streams=N ok=N reset=N bytes=N" on stdout;
 * SIGTERM/SIGINT exit 0. ok counts streams closed cleanly after the trailers.
 * SPDX-License-Identifier: MIT
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <nghttp2/nghttp2.h>

#define MAX_THREADS 64

struct stream {
    struct evbuffer *body; /* request bytes not yet echoed */
    bool req_ended;        /* END_STREAM seen from the client */
    bool trailers_sent;
};

struct conn {
    struct bufferevent *bev;
    nghttp2_session *session;
};

struct worker {
    struct event_base *base;
    struct evconnlistener *listener;
    pthread_t thread;
};

static _Atomic uint64_t n_streams, n_ok, n_reset, n_bytes;
static nghttp2_session_callbacks *callbacks;

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);

    if (p == NULL)
        abort();
    return p;
}

static void conn_free(struct conn *c)
{
    nghttp2_session_del(c->session);
    bufferevent_free(c->bev);
    free(c);
}

/* Copies whatever nghttp2 has to send into the socket's output buffer. */
static int conn_flush(struct conn *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);

    for (;;) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(c->session, &data);

        if (n < 0)
            return -1;
        if (n == 0)
            break;
        if (evbuffer_add(out, data, (size_t)n) != 0)
            return -1;
    }
    if (!nghttp2_session_want_read(c->session) && !nghttp2_session_want_write(c->session) &&
        evbuffer_get_length(out) == 0)
        return -1;
    return 0;
}

static void on_conn_read(struct bufferevent *bev, void *arg)
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
                conn_free(c);
                return;
            }
            total += vec[i].iov_len;
        }
        evbuffer_drain(in, total);
    }
    if (conn_flush(c) != 0)
        conn_free(c);
}

static void on_conn_write(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;

    (void)bev;
    if (conn_flush(c) != 0)
        conn_free(c);
}

static void on_conn_event(struct bufferevent *bev, short events, void *arg)
{
    (void)bev;
    if (events & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        conn_free(arg);
}

static ssize_t on_body_read(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
                            size_t length, uint32_t *data_flags, nghttp2_data_source *source,
                            void *user_data)
{
    struct stream *st = source->ptr;
    size_t avail = evbuffer_get_length(st->body);

    (void)user_data;
    if (avail > 0)
        return evbuffer_remove(st->body, buf, length);
    if (!st->req_ended)
        return NGHTTP2_ERR_DEFERRED;
    /* gRPC over HTTP/2: the status travels in trailers after the messages. */
    static const nghttp2_nv trailers[] = {
        {(uint8_t *)"grpc-status", (uint8_t *)"0", 11, 1, NGHTTP2_NV_FLAG_NONE},
    };
    *data_flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
    if (nghttp2_submit_trailer(session, stream_id, trailers, 1) != 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    st->trailers_sent = true;
    return 0;
}

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    struct stream *st;

    (void)user_data;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    st = xcalloc(1, sizeof(*st));
    st->body = evbuffer_new();
    nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, st);
    atomic_fetch_add_explicit(&n_streams, 1, memory_order_relaxed);
    return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    struct stream *st;

    (void)user_data;
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
        return 0;
    st = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (st == NULL)
        return 0;
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
        static const nghttp2_nv hdrs[] = {
            {(uint8_t *)":status", (uint8_t *)"200", 7, 3, NGHTTP2_NV_FLAG_NONE},
            {(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16,
             NGHTTP2_NV_FLAG_NONE},
        };
        nghttp2_data_provider prd = {.source.ptr = st, .read_callback = on_body_read};

        if (nghttp2_submit_response(session, frame->hd.stream_id, hdrs, 2, &prd) != 0)
            return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
        st->req_ended = true;
        nghttp2_session_resume_data(session, frame->hd.stream_id);
    }
    return 0;
}

static int on_data_chunk_recv(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                              const uint8_t *data, size_t len, void *user_data)
{
    struct stream *st = nghttp2_session_get_stream_user_data(session, stream_id);

    (void)flags;
    (void)user_data;
    if (st == NULL)
        return 0;
    evbuffer_add(st->body, data, len);
    atomic_fetch_add_explicit(&n_bytes, len, memory_order_relaxed);
    nghttp2_session_resume_data(session, stream_id);
    return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                           void *user_data)
{
    struct stream *st = nghttp2_session_get_stream_user_data(session, stream_id);

    (void)user_data;
    if (st == NULL)
        return 0;
    if (error_code == NGHTTP2_NO_ERROR && st->trailers_sent)
        atomic_fetch_add_explicit(&n_ok, 1, memory_order_relaxed);
    else
        atomic_fetch_add_explicit(&n_reset, 1, memory_order_relaxed);
    evbuffer_free(st->body);
    free(st);
    return 0;
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg)
{
    struct worker *w = arg;
    struct conn *c = xcalloc(1, sizeof(*c));
    int one = 1;
    /* Windows large enough that a 64 KiB streamed message never waits on us. */
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 4096},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20},
    };

    (void)l;
    (void)sa;
    (void)salen;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->bev = bufferevent_socket_new(w->base, fd, BEV_OPT_CLOSE_ON_FREE);
    nghttp2_session_server_new(&c->session, callbacks, c);
    nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, iv, 2);
    nghttp2_session_set_local_window_size(c->session, NGHTTP2_FLAG_NONE, 0, 16 << 20);
    /* libevent reads and writes at most 16 KiB per syscall by default. */
    bufferevent_set_max_single_read(c->bev, 256 << 10);
    bufferevent_set_max_single_write(c->bev, 256 << 10);
    bufferevent_setcb(c->bev, on_conn_read, on_conn_write, on_conn_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    if (conn_flush(c) != 0)
        conn_free(c);
}

static void on_signal(evutil_socket_t sig, short events, void *arg)
{
    struct worker *workers = arg;

    (void)events;
    if (sig == SIGUSR1) {
        printf("echo-stats streams=%llu ok=%llu reset=%llu bytes=%llu\n",
               (unsigned long long)atomic_load(&n_streams), (unsigned long long)atomic_load(&n_ok),
               (unsigned long long)atomic_load(&n_reset),
               (unsigned long long)atomic_load(&n_bytes));
        fflush(stdout);
        return;
    }
    for (int i = 0; i < MAX_THREADS && workers[i].base != NULL; i++)
        event_base_loopbreak(workers[i].base);
}

static void *worker_run(void *arg)
{
    struct worker *w = arg;

    event_base_dispatch(w->base);
    return NULL;
}

static int open_listener(const char *addr, int port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd, one = 1;

    if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1)
        return -1;
    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 || listen(fd, 4096) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int main(int argc, char **argv)
{
    static struct worker workers[MAX_THREADS + 1];
    const char *addr = "127.0.0.1";
    int port = 0, nthreads = 1, opt;
    struct event *sigs[3];

    while ((opt = getopt(argc, argv, "a:p:w:")) != -1) {
        switch (opt) {
        case 'a':
            addr = optarg;
            break;
        case 'p':
            port = atoi(optarg);
            break;
        case 'w':
            nthreads = atoi(optarg);
            break;
        default:
            fprintf(stderr, "usage: %s [-a ADDR] [-p PORT] [-w THREADS]\n", argv[0]);
            return 2;
        }
    }
    if (nthreads < 1 || nthreads > MAX_THREADS) {
        fprintf(stderr, "sy-echo: -w must be 1..%d\n", MAX_THREADS);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);

    nghttp2_session_callbacks_new(&callbacks);
    nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, on_begin_headers);
    nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, on_data_chunk_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, on_stream_close);
    evthread_use_pthreads(); /* SIGTERM on thread 0 breaks every thread's loop */

    /* Every thread gets its own SO_REUSEPORT socket on the same port. */
    for (int i = 0; i < nthreads; i++) {
        struct sockaddr_in sin;
        socklen_t slen = sizeof(sin);
        int fd = open_listener(addr, port);

        if (fd < 0) {
            fprintf(stderr, "sy-echo: cannot listen on %s:%d: %s\n", addr, port, strerror(errno));
            return 1;
        }
        if (port == 0 && getsockname(fd, (struct sockaddr *)&sin, &slen) == 0)
            port = ntohs(sin.sin_port);
        workers[i].base = event_base_new();
        workers[i].listener = evconnlistener_new(workers[i].base, on_accept, &workers[i],
                                                 LEV_OPT_CLOSE_ON_FREE, -1, fd);
    }
    printf("listening %d\n", port);
    fflush(stdout);

    sigs[0] = evsignal_new(workers[0].base, SIGTERM, on_signal, workers);
    sigs[1] = evsignal_new(workers[0].base, SIGINT, on_signal, workers);
    sigs[2] = evsignal_new(workers[0].base, SIGUSR1, on_signal, workers);
    for (int i = 0; i < 3; i++)
        event_add(sigs[i], NULL);
    for (int i = 1; i < nthreads; i++)
        pthread_create(&workers[i].thread, NULL, worker_run, &workers[i]);
    event_base_dispatch(workers[0].base);
    for (int i = 1; i < nthreads; i++)
        pthread_join(workers[i].thread, NULL);
    return 0;
}
