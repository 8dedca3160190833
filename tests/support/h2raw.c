/* A raw HTTP/2 client that sends one gRPC request and then never reads, for
 * flow-control tests; see sup_h2_slow_reader() in support.h.
 * Invariant: the nghttp2 session only serialises frames (mem_send); nothing
 * is ever fed to it, so no WINDOW_UPDATE or SETTINGS ACK is ever sent.
 * SPDX-License-Identifier: MIT */
#include "tests/support/support.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

struct body {
    uint8_t *p;
    size_t len, off;
};

static ssize_t read_body(nghttp2_session *s, int32_t stream_id, uint8_t *buf, size_t len,
                         uint32_t *flags, nghttp2_data_source *src, void *user_data)
{
    struct body *b = src->ptr;
    size_t n = b->len - b->off < len ? b->len - b->off : len;

    (void)s;
    (void)stream_id;
    (void)user_data;
    memcpy(buf, b->p + b->off, n);
    b->off += n;
    if (b->off == b->len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

#define NV(name, value)                                                                            \
    {                                                                                              \
        (uint8_t *)(name), (uint8_t *)(value), sizeof(name) - 1, strlen(value),                    \
            NGHTTP2_NV_FLAG_NONE                                                                   \
    }

int sup_h2_slow_reader(int port, const char *path, const void *msg, size_t len, uint32_t window)
{
    nghttp2_session_callbacks *cbs = NULL;
    nghttp2_session *s = NULL;
    struct sockaddr_in sin;
    struct body b = {NULL, 0, 0};
    char authority[32];
    int fd, rcvbuf = 16384, rc = -1;
    const uint8_t *data;
    ssize_t n;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    /* Before connect(), so the window scale stays small: the kernel buffers little. */
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons((uint16_t)port);
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0)
        goto out;

    /* gRPC message framing: flag 0 (uncompressed), 4-byte big-endian length. */
    b.len = len + 5;
    b.p = malloc(b.len);
    if (!b.p)
        abort();
    b.p[0] = 0;
    b.p[1] = (uint8_t)(len >> 24);
    b.p[2] = (uint8_t)(len >> 16);
    b.p[3] = (uint8_t)(len >> 8);
    b.p[4] = (uint8_t)len;
    memcpy(b.p + 5, msg, len);

    snprintf(authority, sizeof(authority), "127.0.0.1:%d", port);
    if (nghttp2_session_callbacks_new(&cbs) != 0 || nghttp2_session_client_new(&s, cbs, NULL) != 0)
        goto out;
    {
        nghttp2_settings_entry iv[] = {
            {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
            {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, window},
        };
        nghttp2_nv hdrs[] = {
            NV(":method", "POST"),
            NV(":scheme", "http"),
            NV(":path", path),
            NV(":authority", authority),
            NV("content-type", "application/grpc"),
            NV("te", "trailers"),
        };
        nghttp2_data_provider prd;

        prd.source.ptr = &b;
        prd.read_callback = read_body;
        if (nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) != 0 ||
            nghttp2_submit_request(s, NULL, hdrs, sizeof(hdrs) / sizeof(hdrs[0]), &prd, NULL) < 0)
            goto out;
        /* The connection window starts at 65535 whatever SETTINGS say (RFC 9113 6.9.2). */
        if (window > NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE &&
            nghttp2_submit_window_update(
                s, NGHTTP2_FLAG_NONE, 0,
                (int32_t)(window - NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE)) != 0)
            goto out;
    }
    /* The client preface goes out first, then our frames; the request body is
     * small, so the peer's initial windows admit all of it. */
    while ((n = nghttp2_session_mem_send(s, &data)) > 0) {
        if (write_all(fd, data, (size_t)n) != 0)
            goto out;
    }
    if (n < 0 || b.off != b.len)
        goto out;
    rc = fd;
out:
    nghttp2_session_del(s);
    nghttp2_session_callbacks_del(cbs);
    free(b.p);
    if (rc < 0)
        close(fd);
    return rc;
}
