/* The gRPC-Web codec (grpc_web.h): base64 both ways and the trailer frame.
 * I/O-free and allocation-free, so the fuzz harness links it alone.
 * SPDX-License-Identifier: MIT */
#include "proxy/filters/grpc_web.h"

#include <string.h>

static const char b64_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64_value(uint8_t c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

long grpc_web_b64_decode(struct grpc_web_b64 *d, const uint8_t *p, size_t n, uint8_t *out)
{
    long w = 0;

    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        int v[4], pad = 0;

        if (c != '=' && b64_value(c) < 0)
            return -1;
        d->q[d->n++] = c;
        if (d->n < 4)
            continue;
        d->n = 0;
        /* "=" only at the end of a quantum, at most two: "xx==", "xxx=". */
        if (d->q[3] == '=')
            pad = d->q[2] == '=' ? 2 : 1;
        if (d->q[0] == '=' || d->q[1] == '=' || (pad < 2 && d->q[2] == '='))
            return -1;
        for (int k = 0; k < 4 - pad; k++)
            v[k] = b64_value(d->q[k]);
        out[w++] = (uint8_t)(v[0] << 2 | v[1] >> 4);
        if (pad < 2)
            out[w++] = (uint8_t)((v[1] & 15) << 4 | v[2] >> 2);
        if (pad < 1)
            out[w++] = (uint8_t)((v[2] & 3) << 6 | v[3]);
    }
    return w;
}

bool grpc_web_b64_complete(const struct grpc_web_b64 *d)
{
    return d->n == 0;
}

size_t grpc_web_b64_encode(const uint8_t *p, size_t n, uint8_t *out)
{
    size_t w = 0, i = 0;

    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];

        out[w++] = (uint8_t)b64_chars[v >> 18];
        out[w++] = (uint8_t)b64_chars[(v >> 12) & 63];
        out[w++] = (uint8_t)b64_chars[(v >> 6) & 63];
        out[w++] = (uint8_t)b64_chars[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);

        out[w++] = (uint8_t)b64_chars[v >> 18];
        out[w++] = (uint8_t)b64_chars[(v >> 12) & 63];
        out[w++] = i + 1 < n ? (uint8_t)b64_chars[(v >> 6) & 63] : '=';
        out[w++] = '=';
    }
    return w;
}

size_t grpc_web_trailer_frame_size(const nghttp2_nv *nv, size_t n)
{
    size_t len = 5;

    for (size_t i = 0; i < n; i++) {
        if (nv[i].namelen > 0 && nv[i].name[0] != ':')
            len += nv[i].namelen + 1 + nv[i].valuelen + 2;
    }
    return len;
}

size_t grpc_web_trailer_frame(const nghttp2_nv *nv, size_t n, uint8_t *out)
{
    size_t w = 5, len;

    /* PROTOCOL-WEB.md: trailers as an HTTP/1 header block, names lower case,
     * in a frame whose flag byte has the MSB set. */
    for (size_t i = 0; i < n; i++) {
        if (nv[i].namelen == 0 || nv[i].name[0] == ':')
            continue;
        memcpy(out + w, nv[i].name, nv[i].namelen);
        w += nv[i].namelen;
        out[w++] = ':';
        memcpy(out + w, nv[i].value, nv[i].valuelen);
        w += nv[i].valuelen;
        out[w++] = '\r';
        out[w++] = '\n';
    }
    len = w - 5;
    out[0] = 0x80;
    out[1] = (uint8_t)(len >> 24);
    out[2] = (uint8_t)(len >> 16);
    out[3] = (uint8_t)(len >> 8);
    out[4] = (uint8_t)len;
    return w;
}
