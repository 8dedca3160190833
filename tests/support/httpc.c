/* Tiny blocking HTTP/1.0 client for tests; see httpc.h.
 * SPDX-License-Identifier: MIT */
#include "tests/support/httpc.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static int send_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int sup_http(int port, const char *method, const char *path, const char *headers, const char *body,
             size_t bodylen, int timeout_ms, struct sup_http_resp *r)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    char req[1024], *buf = NULL, *sep;
    size_t len = 0, cap = 0;
    long end = mono_ms() + timeout_ms;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int n;

    memset(r, 0, sizeof(*r));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    n = snprintf(req, sizeof(req), "%s %s HTTP/1.0\r\nHost: 127.0.0.1:%d\r\n", method, path, port);
    if (body != NULL)
        n += snprintf(req + n, sizeof(req) - (size_t)n, "Content-Length: %zu\r\n", bodylen);
    if (send_all(fd, req, (size_t)n) != 0 ||
        (headers != NULL && send_all(fd, headers, strlen(headers)) != 0) ||
        send_all(fd, "\r\n", 2) != 0 || (body != NULL && send_all(fd, body, bodylen) != 0)) {
        /* The server may answer (413, 431) and close before taking it all. */
    }
    for (;;) {
        ssize_t got;

        if (len + 4096 + 1 > cap) {
            char *nb = realloc(buf, cap = cap == 0 ? 65536 : cap * 2);

            if (nb == NULL)
                abort();
            buf = nb;
        }
        got = recv(fd, buf + len, cap - len - 1, 0);
        if (got <= 0 || mono_ms() > end)
            break;
        len += (size_t)got;
    }
    close(fd);
    if (buf == NULL)
        return -1;
    buf[len] = '\0';
    if (sscanf(buf, "HTTP/1.%*d %d", &r->code) != 1 || (sep = strstr(buf, "\r\n\r\n")) == NULL) {
        free(buf);
        return -1;
    }
    r->body = strdup(sep + 4);
    *sep = '\0';
    r->head = strdup(buf);
    free(buf);
    if (r->body == NULL || r->head == NULL)
        abort();
    return 0;
}

int sup_http_get(int port, const char *path, struct sup_http_resp *r)
{
    return sup_http(port, "GET", path, NULL, NULL, 0, 10000, r);
}

json_t *sup_http_get_json(int port, const char *path)
{
    struct sup_http_resp r;
    json_error_t err;
    json_t *j;

    if (sup_http_get(port, path, &r) != 0) {
        fprintf(stderr, "support: GET %s on port %d: no answer\n", path, port);
        return NULL;
    }
    if (r.code != 200) {
        fprintf(stderr, "support: GET %s on port %d: status %d: %s\n", path, port, r.code,
                r.body != NULL ? r.body : "");
        sup_http_resp_free(&r);
        return NULL;
    }
    j = json_loads(r.body != NULL ? r.body : "", 0, &err);
    if (j == NULL)
        fprintf(stderr, "support: GET %s on port %d: not JSON (%s): %s\n", path, port, err.text,
                r.body != NULL ? r.body : "");
    sup_http_resp_free(&r);
    return j;
}

void sup_http_resp_free(struct sup_http_resp *r)
{
    free(r->head);
    free(r->body);
    memset(r, 0, sizeof(*r));
}

bool sup_http_header_has(const struct sup_http_resp *r, const char *name, const char *needle)
{
    size_t nlen = strlen(name);

    for (const char *l = r->head; l != NULL && *l != '\0';) {
        const char *e = strstr(l, "\r\n");
        size_t len = e != NULL ? (size_t)(e - l) : strlen(l);

        if (len > nlen && strncasecmp(l, name, nlen) == 0 && l[nlen] == ':') {
            char *v = strndup(l + nlen + 1, len - nlen - 1);
            bool found = v != NULL && strstr(v, needle) != NULL;

            free(v);
            if (found)
                return true;
        }
        l = e != NULL ? e + 2 : NULL;
    }
    return false;
}
