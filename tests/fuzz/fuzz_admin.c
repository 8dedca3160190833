/* libFuzzer harness: the admin HTTP listener (proxy/admin.c behind libevent's
 * evhttp, with its limits, routes, methods and bearer token) fed raw request
 * bytes. A runtime built as proxy/main.c builds it (runtime.h: conf, endpoint
 * set, snapshot, one worker whose loop the harness turns, so /status and
 * /metrics collect a real worker report) has its admin listening on an
 * abstract AF_UNIX socket; each input is one client connection to it.
 * Input: [0] bytes per write (0: all at once), then what the client sends.
 * Invariants: the admin answers only with HTTP responses (the first bytes
 * back, if any, are a status line); a first
 * request GET /status or /metrics answered 200 has a body that is a JSON
 * object, or well-formed Prometheus text; and after every input, whatever it
 * did (a connection left half-read, a request abandoned while the workers'
 * reports were being collected, a drain), GET /status on a new connection
 * is still answered 200. POST /drain and /undrain take effect on the
 * runtime's endpoints; every endpoint is undrained again after each input.
 * SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <http_parser.h>
#include <jansson.h>

#include "balancer/epset.h"
#include "core/log.h"
#include "tests/fuzz/runtime.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
/* "HTTP/" version " " three digits " " at the start of |p|. The version is
 * the request's as evhttp read it into two ints: "1.18", and "1.-1" when the
 * request's minor version overflowed (libevent's reading, not ours). */
static bool is_status_line(const char *p, size_t n)
{
    size_t i = 5, d;

    if (n < 5 || memcmp(p, "HTTP/", 5) != 0)
        return false;
    for (int part = 0; part < 2; part++) {
        if (i < n && p[i] == '-')
            i++;
        for (d = i; i < n && isdigit((unsigned char)p[i]); i++)
            ;
        if (i == d || i >= n || p[i++] != (part == 0 ? '.' : ' '))
            return false;
    }
    return n - i >= 4 && isdigit((unsigned char)p[i]) && isdigit((unsigned char)p[i + 1]) &&
           isdigit((unsigned char)p[i + 2]) && p[i + 3] == ' ';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct fz_rt frt;
static bool verbose;

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz check failed: %s\n", what);
        abort();
    }
}

static const char *const INI =
    "[proxy]\nlisten = 127.0.0.1:1\nworkers = 1\n"
    "[admin]\nlisten = 127.0.0.1:9901\ntoken_file = %s\nmax_method_labels = 8\n"
    "[cluster.users]\ntargets = 127.0.0.1:50061, 127.0.0.1:50062, [::1]:50063, "
    "users.fuzz.invalid:50051\nroutes = /sy.user.v1.\nhealth_check = off\n"
    "outlier_detection = on\n"
    "[cluster.default]\ntargets = 10.0.0.7:50051 weight=3\nroutes = /\nhealth_check = off\n"
    "required = no\n";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char ini[2048], token[] = "/tmp/sy-fuzz-admin-token-XXXXXX";
    int fd;

    (void)argc;
    (void)argv;
    verbose = getenv("SY_FUZZ_VERBOSE") != NULL;
    log_init(verbose ? LOG_LVL_DEBUG : (enum log_level)(LOG_LVL_ERROR + 1));
    /* [admin] token_file is read when the configuration loads. */
    fd = mkstemp(token);
    if (fd < 0 || write(fd, "fuzz-admin-token\n", 17) != 17) {
        perror("fuzz_admin: token file");
        abort();
    }
    close(fd);
    snprintf(ini, sizeof(ini), INI, token);
    fz_rt_init(&frt, "admin", ini, NULL, NULL, 0);
    unlink(token);
    check(frt.admin_len > 0, "the admin listens");
    return 0;
}

/* ---- the client ---- */

static char resp[1 << 20];
static size_t nresp;

/* Turns the loops while the admin may answer; returns once it closed the
 * connection (true) or nothing happened for a while (false). */
static bool settle(int fd)
{
    int idle = 0;

    for (int i = 0; i < 400 && idle < 3; i++) {
        bool busy = false;
        ssize_t n;

        fz_rt_turn(&frt);
        while ((n = recv(fd, resp + nresp, sizeof(resp) - 1 - nresp, MSG_DONTWAIT)) > 0) {
            nresp += (size_t)n;
            busy = true;
        }
        if (n == 0 || nresp == sizeof(resp) - 1)
            return true;
        if (busy || event_base_get_num_events(frt.rt.base, EVENT_BASE_COUNT_ACTIVE) > 0 ||
            event_base_get_num_events(fz_rt_worker(&frt)->base, EVENT_BASE_COUNT_ACTIVE) > 0)
            idle = 0;
        else
            idle++;
    }
    return false;
}

/* Sends |data| |chunk| bytes at a time, the loops turning in between; then
 * half-closes and reads until the admin closes. */
static void exchange(const uint8_t *data, size_t size, size_t chunk)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    size_t off = 0;

    check(fd >= 0 && connect(fd, (struct sockaddr *)&frt.admin, frt.admin_len) == 0,
          "connect to the admin");
    nresp = 0;
    if (chunk == 0)
        chunk = size;
    for (int tries = 0; off < size && tries < 1000; tries++) {
        size_t n = size - off < chunk ? size - off : chunk;
        ssize_t w = send(fd, data + off, n, MSG_NOSIGNAL | MSG_DONTWAIT);

        if (w > 0)
            off += (size_t)w;
        else if (w < 0 && errno != EAGAIN)
            break; /* the admin closed: it answered already, or gave up */
        fz_rt_turn(&frt);
        fz_rt_turn(&frt);
    }
    if (!settle(fd)) {
        shutdown(fd, SHUT_WR);
        settle(fd);
    }
    close(fd);
    /* The admin sees the close (a request it still holds, a keep-alive). */
    for (int i = 0; i < 4; i++)
        fz_rt_turn(&frt);
    resp[nresp] = '\0';
}

/* ---- the first answer ---- */

struct answer {
    int status;
    bool done;
    char ctype[128];
    char *body;
    size_t nbody, cap;
    bool in_ctype;
    bool head; /* the first request was HEAD: no body follows its head */
};

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct answer *a = p->data;

    a->in_ctype = len == 12 && strncasecmp(at, "Content-Type", 12) == 0;
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct answer *a = p->data;

    if (a->in_ctype)
        snprintf(a->ctype, sizeof(a->ctype), "%.*s", (int)len, at);
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    struct answer *a = p->data;

    a->status = (int)p->status_code;
    return a->head ? 1 : 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct answer *a = p->data;

    if (a->nbody + len > a->cap) {
        a->cap = (a->nbody + len) * 2;
        a->body = realloc(a->body, a->cap);
        check(a->body != NULL, "memory");
    }
    memcpy(a->body + a->nbody, at, len);
    a->nbody += len;
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct answer *a = p->data;

    a->done = true;
    http_parser_pause(p, 1); /* the first answer only */
    return 0;
}

/* Reads the first answer in |resp|; checks its body when it is /status's or
 * /metrics'. */
static void check_first_answer(bool head, int *status)
{
    struct answer a = {.head = head};
    http_parser p;
    http_parser_settings s;

    http_parser_init(&p, HTTP_RESPONSE);
    http_parser_settings_init(&s);
    s.on_header_field = on_header_field;
    s.on_header_value = on_header_value;
    s.on_headers_complete = on_headers_complete;
    s.on_body = on_body;
    s.on_message_complete = on_message_complete;
    p.data = &a;
    /* evhttp echoes the request's version ("HTTP/1.18"); http_parser reads
     * one digit each side of the dot: such a status line is read as 1.1. */
    if (nresp > 8 && memchr(resp, ' ', nresp) != NULL) {
        size_t sp = (size_t)((char *)memchr(resp, ' ', nresp) - resp);

        if (sp > 8) {
            memmove(resp + 8, resp + sp, nresp - sp + 1);
            memcpy(resp, "HTTP/1.1", 8);
            nresp -= sp - 8;
        }
    }
    http_parser_execute(&p, &s, resp, nresp);
    if (!a.done && HTTP_PARSER_ERRNO(&p) == HPE_OK)
        http_parser_execute(&p, &s, NULL, 0); /* the admin closed: the end of a body */
    check(HTTP_PARSER_ERRNO(&p) == HPE_OK || HTTP_PARSER_ERRNO(&p) == HPE_PAUSED,
          "the admin's answer is HTTP");
    *status = a.done ? a.status : 0;
    if (verbose)
        fprintf(stderr, "answer: %d %s, %zu body bytes%s\n", *status, a.ctype, a.nbody,
                head ? " (HEAD)" : "");
    if (a.done && !head && a.status == 200 && strncmp(a.ctype, "application/json", 16) == 0) {
        json_error_t err;
        json_t *j = json_loadb(a.body != NULL ? a.body : "", a.nbody, 0, &err);

        check(j != NULL && json_is_object(j), "a JSON answer is a JSON object");
        json_decref(j);
    }
    if (a.done && !head && a.status == 200 &&
        strncmp(a.ctype, "text/plain; version=0.0.4", 25) == 0) {
        char *text = strndup(a.body != NULL ? a.body : "", a.nbody);

        check(text != NULL, "memory");
        for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
            if (!fz_metrics_line(line)) {
                fprintf(stderr, "fuzz check failed: a malformed /metrics line: %s\n", line);
                abort();
            }
        }
        free(text);
    }
    free(a.body);
}

static void undrain_all(void)
{
    bool changed = false;

    for (size_t i = 0; i < bal_epset_count(frt.rt.eps); i++)
        changed |= bal_epset_set_drained(frt.rt.eps, bal_epset_at(frt.rt.eps, i), false);
    if (changed)
        proxy_snapshot_rebuild(&frt.rt);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char status[] = "GET /status HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n";
    const uint8_t *req = data + 1;
    size_t n, skip = 0;
    int code;

    if (size < 1)
        return 0;
    n = size - 1;
    exchange(req, n, data[0]);
    /* Every answer is HTTP: the first bytes are a status line. (evhttp
     * answers with the version the request named, "HTTP/0.1" and
     * "HTTP/1.13" included.) */
    if (nresp > 0)
        check(is_status_line(resp, nresp), "the admin answers with an HTTP status line");
    while (skip < n && (req[skip] == '\r' || req[skip] == '\n'))
        skip++;
    check_first_answer(n - skip >= 5 && memcmp(req + skip, "HEAD ", 5) == 0, &code);
    undrain_all();

    /* Whatever happened, the admin still answers. */
    exchange((const uint8_t *)status, sizeof(status) - 1, 0);
    check_first_answer(false, &code);
    check(code == 200, "GET /status is answered 200 after the input");
    return 0;
}
