/* gRPC protocol helpers, per grpc/doc/PROTOCOL-HTTP2.md.
 * SPDX-License-Identifier: MIT */
#include "core/grpc.h"

#include <stdbool.h>
#include <stdio.h>

static const char *const code_names[GRPC_CODE_COUNT] = {
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
};

const char *grpc_code_name(int code)
{
    if (code < 0 || code >= GRPC_CODE_COUNT)
        return "UNKNOWN";
    return code_names[code];
}

int grpc_timeout_parse(const uint8_t *v, size_t len, uint64_t *ms)
{
    /* Timeout → "grpc-timeout" TimeoutValue TimeoutUnit; TimeoutValue is at most
     * 8 ASCII digits. */
    uint64_t n = 0, out;

    if (len < 2 || len > 9)
        return -1;
    for (size_t i = 0; i < len - 1; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        n = n * 10 + (uint64_t)(v[i] - '0');
    }
    switch (v[len - 1]) {
    case 'H':
        out = n * 3600000;
        break;
    case 'M':
        out = n * 60000;
        break;
    case 'S':
        out = n * 1000;
        break;
    case 'm':
        out = n;
        break;
    case 'u':
        out = (n + 999) / 1000;
        break;
    case 'n':
        out = (n + 999999) / 1000000;
        break;
    default:
        return -1;
    }
    *ms = out;
    return 0;
}

size_t grpc_timeout_format(uint64_t ms, char out[GRPC_TIMEOUT_MAX])
{
    /* Every call carries one (what is left of its deadline): no snprintf. */
    static const struct {
        uint64_t per;
        char unit;
    } units[] = {{1, 'm'}, {1000, 'S'}, {3600000, 'H'}};
    char digits[20];
    uint64_t n = 99999999;
    char unit = 'H';
    size_t k = 0, len = 0;

    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        uint64_t v = ms / units[i].per + (ms % units[i].per != 0);

        if (v <= 99999999) {
            n = v;
            unit = units[i].unit;
            break;
        }
    }
    do {
        digits[k++] = (char)('0' + n % 10);
        n /= 10;
    } while (n != 0);
    while (k > 0)
        out[len++] = digits[--k];
    out[len++] = unit;
    return len;
}

int grpc_status_parse(const uint8_t *v, size_t len)
{
    int n = 0;

    if (len == 0 || len > 3)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        n = n * 10 + (v[i] - '0');
    }
    return n;
}

int grpc_scan_feed(struct grpc_scan *s, const uint8_t *p, size_t len, uint32_t max)
{
    while (len > 0) {
        if (s->need > 0) {
            size_t take = len < s->need ? len : s->need;

            s->need -= (uint32_t)take;
            p += take;
            len -= take;
            continue;
        }
        if (s->hlen == 0 && len >= 5) {
            /* A whole prefix at hand (the usual case): no byte-wise copy. */
            uint32_t n =
                (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | (uint32_t)p[4];

            p += 5;
            len -= 5;
            s->msgs++;
            if (max > 0 && n > max)
                return -1;
            s->need = n;
            continue;
        }
        s->hdr[s->hlen++] = *p++;
        len--;
        if (s->hlen == 5) {
            /* Length-Prefixed-Message: Compressed-Flag Message-Length (big endian) */
            uint32_t n = (uint32_t)s->hdr[1] << 24 | (uint32_t)s->hdr[2] << 16 |
                         (uint32_t)s->hdr[3] << 8 | (uint32_t)s->hdr[4];

            s->hlen = 0;
            s->msgs++;
            if (max > 0 && n > max)
                return -1;
            s->need = n;
        }
    }
    return 0;
}

/* What a byte may be in a canonical path (grpc_path_is_canonical): 0 never
 * (controls, space, DEL, non-ASCII; '%' would be percent-encoding, a second
 * spelling of the same path; '?' and '#' a query or fragment), 2 '/', 1 the
 * rest of visible ASCII. */
static const uint8_t path_byte[256] = {
    ['!'] = 1,  ['"'] = 1, ['$'] = 1, ['&'] = 1, ['\''] = 1, ['('] = 1, [')'] = 1, ['*'] = 1,
    ['+'] = 1,  [','] = 1, ['-'] = 1, ['.'] = 1, ['/'] = 2,  ['0'] = 1, ['1'] = 1, ['2'] = 1,
    ['3'] = 1,  ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,  ['8'] = 1, ['9'] = 1, [':'] = 1,
    [';'] = 1,  ['<'] = 1, ['='] = 1, ['>'] = 1, ['@'] = 1,  ['A'] = 1, ['B'] = 1, ['C'] = 1,
    ['D'] = 1,  ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1,  ['I'] = 1, ['J'] = 1, ['K'] = 1,
    ['L'] = 1,  ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1,  ['Q'] = 1, ['R'] = 1, ['S'] = 1,
    ['T'] = 1,  ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,  ['Y'] = 1, ['Z'] = 1, ['['] = 1,
    ['\\'] = 1, [']'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1,  ['a'] = 1, ['b'] = 1, ['c'] = 1,
    ['d'] = 1,  ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1,  ['i'] = 1, ['j'] = 1, ['k'] = 1,
    ['l'] = 1,  ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1,  ['q'] = 1, ['r'] = 1, ['s'] = 1,
    ['t'] = 1,  ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,  ['y'] = 1, ['z'] = 1, ['{'] = 1,
    ['|'] = 1,  ['}'] = 1, ['~'] = 1,
};

bool grpc_path_is_canonical(const uint8_t *path, size_t len)
{
    /* Path → ":path" "/" Service-Name "/" {method name}: "/a/b" at least. */
    size_t start = 1, nseg = 0;

    if (len < 4 || path[0] != '/')
        return false;
    for (size_t i = 1; i <= len; i++) {
        uint8_t k = i < len ? path_byte[path[i]] : 2;

        if (k == 1)
            continue;
        if (k == 0)
            return false;
        /* The end of a segment. RFC 3986 §3.3, §5.2.4: empty, "." and ".."
         * segments are what normalisation removes or resolves; a gRPC name
         * is none of them. */
        size_t n = i - start;

        if (n == 0 || (n == 1 && path[start] == '.') ||
            (n == 2 && path[start] == '.' && path[start + 1] == '.'))
            return false;
        if (++nseg > 2)
            return false;
        start = i + 1;
    }
    return nseg == 2;
}

size_t grpc_message_encode(const char *msg, char *out, size_t outlen)
{
    /* Percent-encode everything outside 0x20-0x7E and '%' itself. */
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;

    if (outlen == 0)
        return 0;
    for (const unsigned char *p = (const unsigned char *)msg; *p != '\0'; p++) {
        bool plain = *p >= 0x20 && *p <= 0x7e && *p != '%';

        if (n + (plain ? 1 : 3) >= outlen)
            break;
        if (plain) {
            out[n++] = (char)*p;
        } else {
            out[n++] = '%';
            out[n++] = hex[*p >> 4];
            out[n++] = hex[*p & 0xf];
        }
    }
    out[n] = '\0';
    return n;
}
