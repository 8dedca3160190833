/* switchyard-health: a tiny blocking HTTP/1.1 client for the admin
 * listener (loopback, one request per connection).
 * Invariant: every wait goes through poll() against one absolute deadline,
 * so a whole GET never takes longer than its timeout; a signal ends it at
 * once (-2) so that `status --watch` stops promptly on Ctrl-C.
 * SPDX-License-Identifier: MIT */

#include "health/cli_common.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_RESPONSE (16 * 1024 * 1024)

struct target {
    char host[256];
    char port[16];
};

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Parses the address forms of hc_cli_http_get(). */
static int parse_target(const char *addr, int default_port, struct target *t, char *err,
                        size_t errlen)
{
    const char *host = addr, *port = NULL, *colon;
    size_t hlen;

    if (strncmp(host, "http://", 7) == 0)
        host += 7;
    hlen = strcspn(host, "/"); /* a path after the address is ignored */
    if (hlen == 0) {
        snprintf(err, errlen, "expected HOST:PORT, got '%s'", addr);
        return -1;
    }
    if (host[0] == '[') {
        const char *close = memchr(host, ']', hlen);

        if (!close) {
            snprintf(err, errlen, "expected [IPV6]:PORT, got '%s'", addr);
            return -1;
        }
        if (close + 1 < host + hlen) {
            if (close[1] != ':') {
                snprintf(err, errlen, "expected [IPV6]:PORT, got '%s'", addr);
                return -1;
            }
            port = close + 2;
        }
        hlen = (size_t)(close - host) + 1;
        host++;
        hlen -= 2;
    } else if ((colon = memchr(host, ':', hlen)) != NULL) {
        if (memchr(colon + 1, ':', (size_t)(host + hlen - colon - 1))) {
            snprintf(err, errlen, "write an IPv6 address as [ADDR]:PORT, got '%s'", addr);
            return -1;
        }
        port = colon + 1;
        hlen = (size_t)(colon - host);
    } else if (strspn(host, "0123456789") == hlen) {
        /* A bare port: loopback, where the admin listener lives by default. */
        port = host;
        host = "127.0.0.1";
        hlen = strlen(host);
    }
    if (hlen == 0 || hlen >= sizeof(t->host)) {
        snprintf(err, errlen, "expected HOST:PORT, got '%s'", addr);
        return -1;
    }
    memcpy(t->host, host, hlen);
    t->host[hlen] = '\0';
    if (port) {
        size_t plen = strcspn(port, "/");
        char *end;
        long p;

        if (plen == 0 || plen >= sizeof(t->port)) {
            snprintf(err, errlen, "bad port in '%s'", addr);
            return -1;
        }
        memcpy(t->port, port, plen);
        t->port[plen] = '\0';
        p = strtol(t->port, &end, 10);
        if (*end != '\0' || p < 1 || p > 65535) {
            snprintf(err, errlen, "bad port in '%s'", addr);
            return -1;
        }
    } else {
        snprintf(t->port, sizeof(t->port), "%d", default_port);
    }
    return 0;
}

/* Waits for |events| on |fd| until |deadline|. Returns 0, -1 (timeout, with
 * |err|) or -2 (interrupted). */
static int wait_fd(int fd, short events, long long deadline, char *err, size_t errlen)
{
    for (;;) {
        struct pollfd pfd = {fd, events, 0};
        long long left = deadline - now_ms();
        int n;

        if (left <= 0) {
            snprintf(err, errlen, "timed out");
            return -1;
        }
        n = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
        if (n > 0)
            return 0;
        if (n < 0) {
            if (errno == EINTR)
                return -2;
            snprintf(err, errlen, "poll: %s", strerror(errno));
            return -1;
        }
    }
}

static int connect_one(const struct addrinfo *ai, long long deadline, char *err, size_t errlen)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    socklen_t len = sizeof(int);
    int soerr = 0, rc;

    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
        return fd;
    if (errno != EINPROGRESS) {
        snprintf(err, errlen, "%s", strerror(errno));
        close(fd);
        return -1;
    }
    rc = wait_fd(fd, POLLOUT, deadline, err, errlen);
    if (rc != 0) {
        if (rc == -1)
            snprintf(err, errlen, "connect timed out");
        close(fd);
        return rc;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0 || soerr != 0) {
        snprintf(err, errlen, "%s", strerror(soerr ? soerr : errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* Returns a connected non-blocking socket, -1 (|err|) or -2 (interrupted). */
static int dial(const struct target *t, long long deadline, char *err, size_t errlen)
{
    struct addrinfo hints, *res, *ai;
    int fd = -1, rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo(t->host, t->port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve '%s': %s", t->host, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        fd = connect_one(ai, deadline, err, errlen);
        if (fd >= 0 || fd == -2)
            break;
    }
    freeaddrinfo(res);
    return fd;
}

static int send_all(int fd, const char *buf, size_t len, long long deadline, char *err,
                    size_t errlen)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        int rc;

        if (n > 0) {
            buf += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            snprintf(err, errlen, "send: %s", strerror(errno));
            return -1;
        }
        rc = wait_fd(fd, POLLOUT, deadline, err, errlen);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* ---- response parsing ---- */

/* Where the header block ends (after CRLF CRLF), or NULL when incomplete. */
static const char *headers_end(const char *buf, size_t len)
{
    const char *p = memmem(buf, len, "\r\n\r\n", 4);

    return p ? p + 4 : NULL;
}

/* Finds header |name| in the header block [hdr, end); copies its value. */
static bool header_get(const char *hdr, const char *end, const char *name, char *val, size_t vallen)
{
    size_t nlen = strlen(name);
    const char *line = memchr(hdr, '\n', (size_t)(end - hdr)); /* skip the status line */

    while (line && ++line < end) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        size_t l;

        if (!eol)
            break;
        if ((size_t)(eol - line) > nlen && strncasecmp(line, name, nlen) == 0 &&
            line[nlen] == ':') {
            const char *v = line + nlen + 1;

            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            l = (size_t)(eol - v);
            while (l > 0 && (v[l - 1] == '\r' || v[l - 1] == ' ' || v[l - 1] == '\t'))
                l--;
            if (l >= vallen)
                l = vallen - 1;
            memcpy(val, v, l);
            val[l] = '\0';
            return true;
        }
        line = eol;
    }
    return false;
}

/* Decodes a chunked body [p, end) into |out| (enough room: never longer than
 * the input). Returns its length, -1 when incomplete, -2 when malformed. */
static long long dechunk(const char *p, const char *end, char *out)
{
    long long n = 0;

    for (;;) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        unsigned long long size;
        char *hex_end;

        if (!eol)
            return -1;
        size = strtoull(p, &hex_end, 16);
        if (hex_end == p || (*hex_end != '\r' && *hex_end != ';' && *hex_end != '\n'))
            return -2;
        p = eol + 1;
        if (size == 0)
            return n; /* trailers, if any, are ignored */
        if (size > MAX_RESPONSE || (unsigned long long)(end - p) < size + 2)
            return -1;
        memcpy(out + n, p, size);
        n += (long long)size;
        p += size;
        if (p[0] == '\r' && p[1] == '\n')
            p += 2;
        else if (p[0] == '\n')
            p += 1;
        else
            return -2;
    }
}

/* Decides whether |buf| holds a whole response. With |done| (EOF seen), a
 * body without length ends there. Returns 1 complete (|resp| filled), 0 need
 * more, -1 malformed (|err|). */
static int parse_response(const char *buf, size_t len, bool done, struct hc_cli_http_resp *resp,
                          char *err, size_t errlen)
{
    const char *hend = headers_end(buf, len), *body;
    char val[64];
    int major, minor, status, off = 0;
    long long blen;

    if (len >= 5 && strncmp(buf, "HTTP/", 5) != 0) {
        snprintf(err, errlen, "not an HTTP response");
        return -1;
    }
    if (!hend) {
        if (done) {
            snprintf(err, errlen, len ? "truncated HTTP response" : "empty response");
            return -1;
        }
        return 0;
    }
    if (sscanf(buf, "HTTP/%d.%d %3d%n", &major, &minor, &status, &off) != 3 || major != 1 ||
        status < 100 || status > 599) {
        snprintf(err, errlen, "bad HTTP status line");
        return -1;
    }
    body = hend;
    if (header_get(buf, hend, "Transfer-Encoding", val, sizeof(val)) &&
        strcasecmp(val, "identity") != 0) {
        char *out = malloc((size_t)(buf + len - body) + 1);

        if (!out)
            abort();
        blen = dechunk(body, buf + len, out);
        if (blen < 0) {
            free(out);
            if (blen == -1 && !done)
                return 0;
            snprintf(err, errlen, blen == -1 ? "truncated chunked body" : "bad chunked body");
            return -1;
        }
        resp->body = out;
    } else if (header_get(buf, hend, "Content-Length", val, sizeof(val))) {
        char *end;
        unsigned long long cl = strtoull(val, &end, 10);

        if (*end != '\0' || end == val || cl > MAX_RESPONSE) {
            snprintf(err, errlen, "bad Content-Length '%s'", val);
            return -1;
        }
        if ((size_t)(buf + len - body) < cl) {
            if (done) {
                snprintf(err, errlen, "truncated body (%zu of %llu bytes)",
                         (size_t)(buf + len - body), cl);
                return -1;
            }
            return 0;
        }
        blen = (long long)cl;
        resp->body = malloc((size_t)blen + 1);
        if (!resp->body)
            abort();
        memcpy(resp->body, body, (size_t)blen);
    } else {
        if (!done)
            return 0;
        blen = buf + len - body;
        resp->body = malloc((size_t)blen + 1);
        if (!resp->body)
            abort();
        memcpy(resp->body, body, (size_t)blen);
    }
    resp->body[blen] = '\0';
    resp->body_len = (size_t)blen;
    resp->status = status;
    {
        const char *r = buf + off, *eol = memchr(buf, '\n', (size_t)(hend - buf));
        size_t rl;

        while (*r == ' ')
            r++;
        rl = (size_t)(eol - r);
        while (rl > 0 && (r[rl - 1] == '\r' || r[rl - 1] == ' '))
            rl--;
        if (rl >= sizeof(resp->reason))
            rl = sizeof(resp->reason) - 1;
        memcpy(resp->reason, r, rl);
        resp->reason[rl] = '\0';
    }
    return 1;
}

void hc_cli_http_resp_deinit(struct hc_cli_http_resp *resp)
{
    free(resp->body);
    memset(resp, 0, sizeof(*resp));
}

int hc_cli_http_get(const char *addr, int default_port, const char *path, int64_t timeout_ms,
                    struct hc_cli_http_resp *resp, char *err, size_t errlen)
{
    return hc_cli_http_request("GET", addr, default_port, path, "Accept: application/json\r\n",
                               timeout_ms, resp, err, errlen);
}

int hc_cli_http_request(const char *method, const char *addr, int default_port, const char *path,
                        const char *headers, int64_t timeout_ms, struct hc_cli_http_resp *resp,
                        char *err, size_t errlen)
{
    long long deadline = now_ms() + timeout_ms;
    struct target t;
    char req[8192];
    size_t cap = 16384, len = 0;
    char *buf;
    int fd, rc, n;

    memset(resp, 0, sizeof(*resp));
    if (parse_target(addr, default_port, &t, err, errlen) != 0)
        return -1;
    fd = dial(&t, deadline, err, errlen);
    if (fd < 0)
        return fd;
    n = snprintf(req, sizeof(req),
                 "%s %s HTTP/1.1\r\n"
                 "Host: %s%s%s:%s\r\n"
                 "User-Agent: " HC_CLI_NAME "/" HC_CLI_VERSION "\r\n"
                 "%s%s"
                 "Connection: close\r\n"
                 "\r\n",
                 method, path, strchr(t.host, ':') ? "[" : "", t.host,
                 strchr(t.host, ':') ? "]" : "", t.port, headers != NULL ? headers : "",
                 strcmp(method, "POST") == 0 ? "Content-Length: 0\r\n" : "");
    if (n < 0 || (size_t)n >= sizeof(req)) {
        snprintf(err, errlen, "request too long");
        close(fd);
        return -1;
    }
    rc = send_all(fd, req, (size_t)n, deadline, err, errlen);
    if (rc != 0) {
        close(fd);
        return rc;
    }
    buf = malloc(cap + 1);
    if (!buf)
        abort();
    for (;;) {
        ssize_t got = recv(fd, buf + len, cap - len, 0);

        if (got > 0) {
            len += (size_t)got;
            rc = parse_response(buf, len, false, resp, err, errlen);
            if (rc != 0)
                break;
            if (len == cap) {
                if (cap >= MAX_RESPONSE) {
                    snprintf(err, errlen, "response larger than %d bytes", MAX_RESPONSE);
                    rc = -1;
                    break;
                }
                cap *= 2;
                buf = realloc(buf, cap + 1);
                if (!buf)
                    abort();
            }
            continue;
        }
        if (got == 0) {
            rc = parse_response(buf, len, true, resp, err, errlen);
            break;
        }
        if (errno == ECONNRESET) {
            /* A reset after a complete response still counts. */
            rc = parse_response(buf, len, true, resp, err, errlen);
            if (rc < 0)
                snprintf(err, errlen, "connection reset by the server");
            break;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            snprintf(err, errlen, "recv: %s", strerror(errno));
            rc = -1;
            break;
        }
        rc = wait_fd(fd, POLLIN, deadline, err, errlen);
        if (rc != 0) {
            char d[32];

            if (rc == -1)
                snprintf(err, errlen, "no complete response within %s",
                         hc_cli_duration_fmt(timeout_ms, d, sizeof(d)));
            break;
        }
    }
    free(buf);
    close(fd);
    if (rc == 1)
        return 0;
    hc_cli_http_resp_deinit(resp);
    return rc == 0 ? -1 : rc;
}
