/* UTF-8 validation and repair (utf8.h).
 * SPDX-License-Identifier: MIT */
#include "core/utf8.h"

#include <string.h>

/* Length of the well-formed sequence at |p| (|n| bytes left), or 0
 * (RFC 3629 §4, the table of well-formed byte sequences). */
static size_t seq_len(const uint8_t *p, size_t n)
{
    uint8_t c = p[0];
    uint8_t lo = 0x80, hi = 0xbf;
    size_t len;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4;
    else
        return 0;
    if (n < len)
        return 0;
    if (c == 0xe0)
        lo = 0xa0; /* no overlong 3-byte forms */
    else if (c == 0xed)
        hi = 0x9f; /* no surrogates */
    else if (c == 0xf0)
        lo = 0x90; /* no overlong 4-byte forms */
    else if (c == 0xf4)
        hi = 0x8f; /* nothing above U+10FFFF */
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++) {
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    }
    return len;
}

bool utf8_valid(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t l = seq_len(p + i, n - i);

        if (l == 0)
            return false;
        i += l;
    }
    return true;
}

size_t utf8_clean(const uint8_t *p, size_t n, char *out, size_t outlen)
{
    static const char fffd[] = "\xef\xbf\xbd";
    size_t o = 0;

    for (size_t i = 0; i < n;) {
        size_t l = p[i] == 0 ? 0 : seq_len(p + i, n - i);
        const char *src = l > 0 ? (const char *)p + i : fffd;
        size_t sl = l > 0 ? l : 3;

        if (o + sl + 1 > outlen)
            break;
        memcpy(out + o, src, sl);
        o += sl;
        i += l > 0 ? l : 1;
    }
    out[o] = '\0';
    return o;
}
