/* Fake HTTP/1.1 server for integration tests; see fakehttp.h.
 * Invariant: the server thread waits only in poll() on its sockets and the
 * stop pipe, so fh_stop() always ends it promptly.
 * SPDX-License-Identifier: MIT */
#include "tests/support/fakehttp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct fh_server {
    int lfd;
    int stop[2]; /* a pipe: writing to stop[1] ends the thread */
    int port;
    char addr[32];
    pthread_t thread;
    pthread_mutex_t mu;
    /* Under |mu|: */
    enum fh_mode mode;
    int status;
    char *body;
    int requests;
    char last_request[4096];
};

/* Waits for |fd| to be readable, or the stop pipe. Returns 1 readable, 0 stop
 * or error. */
static int wait_readable(struct fh_server *s, int fd)
{
    for (;;) {
        struct pollfd p[2] = {{fd, POLLIN, 0}, {s->stop[0], POLLIN, 0}};
        int n = poll(p, 2, -1);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || p[1].revents)
            return 0;
        return 1;
    }
}

static void write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        buf += n;
        len -= (size_t)n;
    }
}

static const char *reason_of(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 404:
        return "Not Found";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Whatever";
    }
}

static void respond(int fd, enum fh_mode mode, int status, const char *body)
{
    size_t blen = strlen(body);
    char head[256];
    int n;

    switch (mode) {
    case FH_RAW:
        write_all(fd, body, blen);
        return;
    case FH_CHUNKED:
        n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                     "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
                     status, reason_of(status));
        write_all(fd, head, (size_t)n);
        for (size_t off = 0; off < blen; off += 3) {
            size_t c = blen - off < 3 ? blen - off : 3;

            n = snprintf(head, sizeof(head), "%zx\r\n", c);
            write_all(fd, head, (size_t)n);
            write_all(fd, body + off, c);
            write_all(fd, "\r\n", 2);
        }
        write_all(fd, "0\r\n\r\n", 5);
        return;
    case FH_NORMAL:
    default:
        n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                     status, reason_of(status), blen);
        write_all(fd, head, (size_t)n);
        write_all(fd, body, blen);
        return;
    }
}

static void serve_conn(struct fh_server *s, int fd)
{
    char req[4096];
    size_t len = 0;
    enum fh_mode mode;
    char *body;
    int status;

    /* Read the request head (no request of ours has a body). */
    while (len < sizeof(req) - 1) {
        ssize_t n;

        if (!wait_readable(s, fd))
            return;
        n = recv(fd, req + len, sizeof(req) - 1 - len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        len += (size_t)n;
        req[len] = '\0';
        if (strstr(req, "\r\n\r\n"))
            break;
    }
    pthread_mutex_lock(&s->mu);
    s->requests++;
    memcpy(s->last_request, req, len + 1);
    mode = s->mode;
    status = s->status;
    body = strdup(s->body);
    pthread_mutex_unlock(&s->mu);
    if (!body)
        abort();
    if (mode == FH_SILENT) {
        /* Hold the connection until the client gives up or we stop. */
        while (wait_readable(s, fd) && recv(fd, req, sizeof(req), 0) > 0)
            ;
    } else {
        respond(fd, mode, status, body);
    }
    free(body);
}

static void *server_main(void *arg)
{
    struct fh_server *s = arg;

    while (wait_readable(s, s->lfd)) {
        int fd = accept(s->lfd, NULL, NULL);

        if (fd < 0)
            continue;
        serve_conn(s, fd);
        close(fd);
    }
    return NULL;
}

struct fh_server *fh_start(enum fh_mode mode, int status, const char *body)
{
    struct fh_server *s = calloc(1, sizeof(*s));
    struct sockaddr_in sin;
    socklen_t slen = sizeof(sin);
    int one = 1;

    if (!s)
        abort();
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s->lfd < 0 || pipe2(s->stop, O_CLOEXEC) != 0) {
        free(s);
        return NULL;
    }
    setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s->lfd, (struct sockaddr *)&sin, sizeof(sin)) != 0 || listen(s->lfd, 16) != 0 ||
        getsockname(s->lfd, (struct sockaddr *)&sin, &slen) != 0) {
        close(s->lfd);
        close(s->stop[0]);
        close(s->stop[1]);
        free(s);
        return NULL;
    }
    s->port = ntohs(sin.sin_port);
    snprintf(s->addr, sizeof(s->addr), "127.0.0.1:%d", s->port);
    pthread_mutex_init(&s->mu, NULL);
    s->mode = mode;
    s->status = status;
    s->body = strdup(body);
    if (!s->body)
        abort();
    if (pthread_create(&s->thread, NULL, server_main, s) != 0)
        abort();
    return s;
}

int fh_port(const struct fh_server *s)
{
    return s->port;
}

const char *fh_addr(const struct fh_server *s)
{
    return s->addr;
}

void fh_set(struct fh_server *s, enum fh_mode mode, int status, const char *body)
{
    char *copy = strdup(body);

    if (!copy)
        abort();
    pthread_mutex_lock(&s->mu);
    free(s->body);
    s->body = copy;
    s->mode = mode;
    s->status = status;
    pthread_mutex_unlock(&s->mu);
}

int fh_requests(struct fh_server *s)
{
    int n;

    pthread_mutex_lock(&s->mu);
    n = s->requests;
    pthread_mutex_unlock(&s->mu);
    return n;
}

bool fh_last_request_contains(struct fh_server *s, const char *needle)
{
    bool found;

    pthread_mutex_lock(&s->mu);
    found = strstr(s->last_request, needle) != NULL;
    pthread_mutex_unlock(&s->mu);
    return found;
}

void fh_stop(struct fh_server *s)
{
    if (!s)
        return;
    if (write(s->stop[1], "x", 1) != 1)
        abort();
    pthread_join(s->thread, NULL);
    close(s->lfd);
    close(s->stop[0]);
    close(s->stop[1]);
    pthread_mutex_destroy(&s->mu);
    free(s->body);
    free(s);
}
