/* libFuzzer harness: a whole client connection fed raw client bytes. A
 * runtime built as proxy/main.c builds it (runtime.h: one worker from
 * proxy/worker.c with its real filter chain, pools and frontend) accepts one
 * end of a socketpair with proxy_fe_accept(), exactly as its listener would;
 * the input's bytes go in at the other end: the HTTP/2 preface and frames
 * (proxy/fe.c, nghttp2 server role), or HTTP/1.1 (proxy/h1.c, gRPC-Web,
 * REST, CORS), through the calls, attempts and pools to backend connections
 * (proxy/be.c) whose other ends are the harness's backends: small nghttp2
 * servers on abstract AF_UNIX sockets that answer each call as the input
 * says, or send raw bytes from the input.
 * Input: [0] flags: bits 0-1 the backends' answer (0: echo the request's
 * body, then grpc-status 0; 1: trailers-only with a status; 2: a reset or
 * GOAWAY; 3: the raw bytes that follow the client's), bit 2 the runtime (0:
 * open: HTTP/1.1, gRPC-Web, CORS, REST, retries, hedging, tracing; 1: strict:
 * bearer tokens, HTTP/2 only, small limits, one backend connection of two
 * streams), bits 3-5 a parameter of the answer (which status, which reset),
 * bit 6 scrape /metrics afterwards, bit 7 the client reads nothing until it
 * has sent everything; [1] bytes per client write (0: all at once); [2-3] the
 * length of the client's bytes (big endian, the rest of the input when
 * larger); the client's bytes; the backends' raw bytes (answer 3).
 * Invariants: besides memory safety and no leak: once the client has gone
 * every attempt has ended (no pool counts an active or waiting attempt), and
 * /metrics (bit 6) is well-formed Prometheus text whatever the calls' paths
 * were: every sample line is NAME{LABELS} VALUE with label values in valid,
 * escaped UTF-8 (issue 12, metrics poisoning).
 * SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <nghttp2/nghttp2.h>

#include "core/log.h"
#include "tests/fuzz/runtime.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool verbose;

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz check failed: %s\n", what);
        abort();
    }
}

/* ---- the backends ---- */

#define NBACKENDS  3
#define MAX_BCONNS 16
#define ECHO_MAX   (64 * 1024)

enum answer {
    ANSWER_ECHO = 0,
    ANSWER_STATUS,
    ANSWER_RESET,
    ANSWER_RAW
};

struct bstream {
    int32_t sid;
    uint8_t *buf; /* request body received, echoed back */
    size_t len, off;
    bool req_end;
    bool responded;
    bool echo; /* the answer echoes the request's body */
    struct bstream *next;
};

struct bconn {
    int fd;
    nghttp2_session *s; /* NULL for raw answers */
    struct bstream *streams;
    bool raw_sent;
};

static int lfds[NBACKENDS];
static struct sockaddr_un baddrs[NBACKENDS];
static socklen_t blens[NBACKENDS];
static nghttp2_session_callbacks *bcbs;
static struct bconn bconns[MAX_BCONNS];
static int nbconns;
static enum answer answer;
static unsigned param;
static const uint8_t *raw;
static size_t nraw;

static const int statuses[8] = {0, 14, 4, 8, 13, 2, 16, 12};

static struct bstream *bstream_of(nghttp2_session *s, int32_t sid)
{
    return nghttp2_session_get_stream_user_data(s, sid);
}

static ssize_t echo_read(nghttp2_session *s, int32_t sid, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *source, void *user_data)
{
    struct bstream *st = bstream_of(s, sid);
    size_t n;

    (void)source;
    (void)user_data;
    if (st == NULL)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    n = st->len - st->off < length ? st->len - st->off : length;
    if (n > 0)
        memcpy(buf, st->buf + st->off, n);
    st->off += n;
    if (st->off == st->len && st->req_end) {
        static const nghttp2_nv ok[] = {
            {(uint8_t *)"grpc-status", (uint8_t *)"0", 11, 1, 0},
        };

        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (nghttp2_submit_trailer(s, sid, ok, 1) == 0)
            *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        return (ssize_t)n;
    }
    return n == 0 ? NGHTTP2_ERR_DEFERRED : (ssize_t)n;
}

#define NV(n, v)                                                                                   \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), 0                                \
    }

static void respond(nghttp2_session *s, struct bstream *st)
{
    nghttp2_data_provider prd = {.read_callback = echo_read};
    char code[8];

    st->responded = true;
    switch (answer) {
    case ANSWER_ECHO: {
        nghttp2_nv nv[] = {NV(":status", "200"), NV("content-type", "application/grpc")};

        nghttp2_submit_response(s, st->sid, nv, 2, &prd);
        st->echo = true;
        break;
    }
    case ANSWER_STATUS: {
        snprintf(code, sizeof(code), "%d", statuses[param]);
        nghttp2_nv nv[] = {NV(":status", "200"), NV("content-type", "application/grpc"),
                           NV("grpc-status", code), NV("grpc-message", "fuzz%20backend")};

        nghttp2_submit_response(s, st->sid, nv, 4, NULL);
        break;
    }
    case ANSWER_RESET: { /* and GOAWAY */
        static const uint32_t codes[8] = {
            NGHTTP2_REFUSED_STREAM, NGHTTP2_CANCEL,         NGHTTP2_INTERNAL_ERROR,
            NGHTTP2_NO_ERROR,       NGHTTP2_NO_ERROR,       NGHTTP2_ENHANCE_YOUR_CALM,
            NGHTTP2_REFUSED_STREAM, NGHTTP2_PROTOCOL_ERROR,
        };
        nghttp2_nv nv[] = {NV(":status", "200"), NV("content-type", "application/grpc")};

        if (param == 3 || param == 7) /* after the response head */
            nghttp2_submit_headers(s, NGHTTP2_FLAG_NONE, st->sid, NULL, nv, 2, NULL);
        if (param == 4 || param == 6) /* GOAWAY (graceful, or refusing this stream) */
            nghttp2_submit_goaway(s, NGHTTP2_FLAG_NONE, param == 4 ? st->sid : st->sid - 2,
                                  NGHTTP2_NO_ERROR, NULL, 0);
        if (param == 4) { /* a graceful GOAWAY, then the answer */
            nghttp2_submit_response(s, st->sid, nv, 2, &prd);
            st->echo = true;
        } else {
            nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, st->sid, codes[param]);
        }
        break;
    }
    case ANSWER_RAW:
        break;
    }
}

static int b_begin_headers(nghttp2_session *s, const nghttp2_frame *frame, void *user_data)
{
    struct bconn *bc = user_data;
    struct bstream *st;

    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    st = calloc(1, sizeof(*st));
    check(st != NULL, "memory");
    st->sid = frame->hd.stream_id;
    st->next = bc->streams;
    bc->streams = st;
    nghttp2_session_set_stream_user_data(s, st->sid, st);
    return 0;
}

static int b_frame_recv(nghttp2_session *s, const nghttp2_frame *frame, void *user_data)
{
    struct bstream *st = bstream_of(s, frame->hd.stream_id);

    (void)user_data;
    if (st == NULL || (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA))
        return 0;
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
        st->req_end = true;
    /* param 1 of echo: the answer waits for the whole request */
    if (!st->responded && (answer != ANSWER_ECHO || param != 1 || st->req_end))
        respond(s, st);
    else if (st->echo)
        nghttp2_session_resume_data(s, st->sid);
    return 0;
}

static int b_data(nghttp2_session *s, uint8_t flags, int32_t sid, const uint8_t *data, size_t len,
                  void *user_data)
{
    struct bstream *st = bstream_of(s, sid);

    (void)flags;
    (void)user_data;
    if (st == NULL || st->len + len > ECHO_MAX)
        return 0;
    st->buf = realloc(st->buf, st->len + len);
    check(st->buf != NULL, "memory");
    memcpy(st->buf + st->len, data, len);
    st->len += len;
    if (st->echo)
        nghttp2_session_resume_data(s, sid);
    return 0;
}

static int b_stream_close(nghttp2_session *s, int32_t sid, uint32_t error_code, void *user_data)
{
    struct bconn *bc = user_data;
    struct bstream *st = bstream_of(s, sid);

    (void)error_code;
    if (st == NULL)
        return 0;
    for (struct bstream **pp = &bc->streams; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == st) {
            *pp = st->next;
            break;
        }
    }
    free(st->buf);
    free(st);
    nghttp2_session_set_stream_user_data(s, sid, NULL);
    return 0;
}

static void bconn_close(struct bconn *bc)
{
    if (bc->s != NULL)
        nghttp2_session_del(bc->s); /* calls no stream_close callback */
    while (bc->streams != NULL) {
        struct bstream *st = bc->streams;

        bc->streams = st->next;
        free(st->buf);
        free(st);
    }
    close(bc->fd);
    memset(bc, 0, sizeof(*bc));
    bc->fd = -1;
}

/* Accepts, reads, answers and writes on every backend connection. Returns
 * whether anything happened. */
static bool backends_poll(void)
{
    uint8_t buf[65536];
    bool busy = false;

    for (int i = 0; i < NBACKENDS; i++) {
        int fd;

        while (nbconns < MAX_BCONNS &&
               (fd = accept4(lfds[i], NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
            struct bconn *bc = &bconns[nbconns++];
            nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100}};

            memset(bc, 0, sizeof(*bc));
            bc->fd = fd;
            busy = true;
            if (answer != ANSWER_RAW) {
                check(nghttp2_session_server_new(&bc->s, bcbs, bc) == 0, "a backend session");
                nghttp2_submit_settings(bc->s, NGHTTP2_FLAG_NONE, iv, 1);
            }
        }
    }
    for (int i = 0; i < nbconns; i++) {
        struct bconn *bc = &bconns[i];
        ssize_t n;

        if (bc->fd < 0)
            continue;
        while ((n = recv(bc->fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
            busy = true;
            if (bc->s != NULL && nghttp2_session_mem_recv(bc->s, buf, (size_t)n) < 0) {
                nghttp2_session_del(bc->s);
                bc->s = NULL; /* broken: read and drop from now on */
            }
            if (bc->s == NULL && answer == ANSWER_RAW && !bc->raw_sent && i == 0) {
                bc->raw_sent = true; /* the raw answer, once the request is there */
                if (nraw > 0)
                    (void)send(bc->fd, raw, nraw, MSG_NOSIGNAL | MSG_DONTWAIT);
            }
        }
        while (bc->s != NULL) {
            const uint8_t *out;
            ssize_t len = nghttp2_session_mem_send(bc->s, &out);

            if (len <= 0 || send(bc->fd, out, (size_t)len, MSG_NOSIGNAL | MSG_DONTWAIT) != len)
                break;
            busy = true;
        }
    }
    return busy;
}

static void backends_close(void)
{
    for (int i = 0; i < nbconns; i++) {
        if (bconns[i].fd >= 0)
            bconn_close(&bconns[i]);
    }
    nbconns = 0;
}

/* ---- the runtimes ---- */

static struct fz_rt rts[2];

static const char *const INI_OPEN =
    "[proxy]\nlisten = 127.0.0.1:1\nworkers = 1\nhttp1 = on\ngrpc_web = on\n"
    "cors_origins = https://app.example\nidle_timeout = 0\nkeepalive_time = 0\n"
    "max_message_size = 65536\n"
    "[admin]\nlisten = 127.0.0.1:9901\n"
    "[tracing]\nsample_ratio = 1\n"
    "[cluster.echo]\ntargets = 127.0.0.1:1, 127.0.0.1:2, 127.0.0.1:3\nroutes = /sy.test.Echo/\n"
    "health_check = off\nmax_retries = 2\n"
    "[cluster.retry]\ntargets = 127.0.0.1:1, 127.0.0.1:2\nroutes = /sy.test.Retry/\n"
    "health_check = off\nretry_on = unavailable, cancelled\nretry_initial_backoff = 1ms\n"
    "retry_max_backoff = 1ms\nretry_buffer = 1024\ntimeout = 2s\n"
    "[cluster.hedge]\ntargets = 127.0.0.1:1, 127.0.0.1:2, 127.0.0.1:3\nroutes = /sy.test.Hedge/\n"
    "health_check = off\nretry_on = unavailable\nhedge_delay = 1ms\npolicy = least_request\n"
    "[cluster.users]\ntargets = 127.0.0.1:1\nroutes = /sy.user.v1.\nhealth_check = off\n"
    "transcode = on\ndescriptors = %s\n"
    "[cluster.default]\ntargets = 127.0.0.1:1, 127.0.0.1:2\nroutes = /\nhealth_check = off\n"
    "policy = ring_hash\nhash_on = header:x-user\n";

static const char *const INI_STRICT =
    "[proxy]\nlisten = 127.0.0.1:1\nworkers = 1\nhttp1 = off\nidle_timeout = 0\n"
    "keepalive_time = 0\nmax_concurrent_streams = 4\nstream_buffer = 16384\n"
    "max_header_list_size = 1024\nmax_message_size = 64\n"
    "[admin]\nlisten = 127.0.0.1:9901\nmax_method_labels = 4\n"
    "[auth]\nmode = token\ntokens_file = %s\n"
    "[cluster.echo]\ntargets = 127.0.0.1:1\nroutes = /\nhealth_check = off\n"
    "max_connections = 1\nmax_streams_per_connection = 2\npolicy = pick_first\n";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *desc = getenv("SY_FUZZ_REST_DESC");
    char ini[4096], tokens[] = "/tmp/sy-fuzz-fe-tokens-XXXXXX";
    int fd;

    (void)argc;
    (void)argv;
    verbose = getenv("SY_FUZZ_VERBOSE") != NULL;
    log_init(verbose ? LOG_LVL_DEBUG : (enum log_level)(LOG_LVL_ERROR + 1));
    if (desc == NULL)
        desc = "build/rest/user.pb";
    if (access(desc, R_OK) != 0) {
        fprintf(stderr, "fuzz_fe: cannot read %s (make rest-peer builds it)\n", desc);
        abort();
    }
    nghttp2_session_callbacks_new(&bcbs);
    nghttp2_session_callbacks_set_on_begin_headers_callback(bcbs, b_begin_headers);
    nghttp2_session_callbacks_set_on_frame_recv_callback(bcbs, b_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(bcbs, b_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(bcbs, b_stream_close);
    for (int i = 0; i < NBACKENDS; i++) {
        char name[16];

        snprintf(name, sizeof(name), "fe-b%d", i);
        blens[i] = fz_unix_addr(&baddrs[i], name);
        lfds[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (lfds[i] < 0 || bind(lfds[i], (struct sockaddr *)&baddrs[i], blens[i]) != 0 ||
            listen(lfds[i], 64) != 0) {
            perror("fuzz_fe: backend listener");
            abort();
        }
    }
    for (int i = 0; i < MAX_BCONNS; i++)
        bconns[i].fd = -1;
    snprintf(ini, sizeof(ini), INI_OPEN, desc);
    fz_rt_init(&rts[0], "fe-open", ini, baddrs, blens, NBACKENDS);
    /* The strict runtime's tokens: read when the configuration loads. */
    fd = mkstemp(tokens);
    if (fd < 0 || write(fd, "fuzz-token-1\nfuzz-token-2\n", 26) != 26) {
        perror("fuzz_fe: tokens file");
        abort();
    }
    close(fd);
    snprintf(ini, sizeof(ini), INI_STRICT, tokens);
    fz_rt_init(&rts[1], "fe-strict", ini, baddrs, blens, NBACKENDS);
    unlink(tokens);
    return 0;
}

/* ---- /metrics ---- */

/* GET /metrics through the admin listener; every line must be well-formed. */
static void scrape(struct fz_rt *f)
{
    static const char req[] = "GET /metrics HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n";
    static char resp[1 << 20];
    size_t got = 0;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    char *body, *line;
    bool eof = false;

    check(fd >= 0 && connect(fd, (struct sockaddr *)&f->admin, f->admin_len) == 0,
          "connect to the admin");
    check(send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) == (ssize_t)(sizeof(req) - 1),
          "send to the admin");
    for (int i = 0; i < 200 && !eof; i++) {
        ssize_t n;

        fz_rt_turn(f);
        while ((n = recv(fd, resp + got, sizeof(resp) - 1 - got, MSG_DONTWAIT)) > 0)
            got += (size_t)n;
        eof = n == 0 || got == sizeof(resp) - 1;
    }
    close(fd);
    check(eof, "the admin answers /metrics");
    resp[got] = '\0';
    check(strncmp(resp, "HTTP/1.1 200 ", 13) == 0, "/metrics answers 200");
    body = strstr(resp, "\r\n\r\n");
    check(body != NULL, "a response head");
    for (line = strtok(body + 4, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        if (!fz_metrics_line(line)) {
            fprintf(stderr, "fuzz check failed: a malformed /metrics line: %s\n", line);
            abort();
        }
    }
}

/* ---- one input ---- */

/* One turn of the loops, the backends and the client's reading. Returns
 * whether anything happened or is about to (active events). */
static bool turn(struct fz_rt *f, int cfd, bool read_client)
{
    uint8_t buf[65536];
    bool busy;

    fz_rt_turn(f);
    busy = backends_poll();
    while (read_client && recv(cfd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
        busy = true;
    return busy || event_base_get_num_events(f->rt.base, EVENT_BASE_COUNT_ACTIVE) > 0 ||
           event_base_get_num_events(fz_rt_worker(f)->base, EVENT_BASE_COUNT_ACTIVE) > 0;
}

/* Turns until nothing happened for a few turns in a row (at least |min|,
 * at most |max| turns), or |until| holds. */
static void settle(struct fz_rt *f, int cfd, bool read_client, int min, int max,
                   const uint32_t *until)
{
    int idle = 0;

    for (int i = 0; i < max && idle < 3 && (until == NULL || *until > 0); i++) {
        if (turn(f, cfd, read_client) || i < min)
            idle = 0;
        else
            idle++;
    }
}

struct pool_check {
    uint64_t active, waiting;
};

static void count_pool(const struct proxy_pool_info *pi, void *arg)
{
    struct pool_check *pc = arg;

    pc->active += pi->active;
    pc->waiting += pi->waiting;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz_rt *f;
    struct proxy_worker *w;
    struct sockaddr_in peer = {.sin_family = AF_INET, .sin_port = htons(40000)};
    struct pool_check pc = {0};
    uint8_t flags;
    size_t chunk, clen, off = 0;
    const uint8_t *client;
    bool slow;
    int sv[2];

    if (size < 4)
        return 0;
    flags = data[0];
    chunk = data[1];
    clen = (size_t)data[2] << 8 | data[3];
    data += 4;
    size -= 4;
    if (clen > size)
        clen = size;
    client = data;
    raw = data + clen;
    nraw = size - clen;
    answer = (enum answer)(flags & 3);
    param = (flags >> 3) & 7;
    slow = flags & 128;
    if (chunk == 0)
        chunk = clen;
    f = &rts[(flags >> 2) & 1];
    w = fz_rt_worker(f);

    inet_pton(AF_INET, "127.0.0.1", &peer.sin_addr);
    check(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0,
          "socketpair");
    proxy_fe_accept(&w->fe, sv[0], (struct sockaddr *)&peer, false);
    /* The client's bytes, |chunk| at a time, a few loop turns apart. */
    for (int tries = 0; off < clen && tries < 1000; tries++) {
        size_t n = clen - off < chunk ? clen - off : chunk;
        ssize_t wr = send(sv[1], client + off, n, MSG_NOSIGNAL | MSG_DONTWAIT);

        if (wr < 0 && errno != EAGAIN)
            break; /* the proxy closed the connection */
        if (wr > 0)
            off += (size_t)wr;
        for (int i = 0; i < 2; i++)
            turn(f, sv[1], !slow);
    }
    settle(f, sv[1], !slow, 8, 60, NULL);
    /* The client is done sending; then it goes. */
    shutdown(sv[1], SHUT_WR);
    settle(f, sv[1], true, 0, 40, &w->fe.nconns);
    close(sv[1]);
    settle(f, -1, false, 0, 40, &w->fe.nconns);
    check(w->fe.nconns == 0, "the client connection is closed once the client has gone");

    /* Every call ended with its client: no attempt is left in any pool. */
    proxy_pools_each(&w->pools, count_pool, &pc);
    check(pc.active == 0 && pc.waiting == 0, "attempts left after their calls ended");
    if (flags & 64)
        scrape(f);

    /* Backends go; the pools start afresh for the next input. */
    backends_close();
    for (int i = 0; i < 4; i++)
        turn(f, -1, false);
    proxy_pools_deinit(&w->pools);
    w->fl.dirty = NULL;
    proxy_pools_init(&w->pools, &w->be);
    fz_rt_turn(f); /* deferred bufferevent callbacks */
    return 0;
}
