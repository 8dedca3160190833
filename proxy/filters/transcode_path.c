/* google.api.http path templates (transcode_path.h).
 * Invariant: a parsed template's segments and variables index into its own
 * text; matching reads the request path in place and never allocates.
 * SPDX-License-Identifier: MIT */
#include "proxy/filters/transcode_path.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static bool is_ident_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_ident(char c)
{
    return is_ident_start(c) || (c >= '0' && c <= '9');
}

/* A literal runs to the next character with a meaning in the grammar. */
static bool is_literal(char c)
{
    return c != '/' && c != '{' && c != '}' && c != '*' && c != ':' && c != '=' && c != '?' &&
           c != '#' && (unsigned char)c > 0x20 && c != 0x7f;
}

struct parser {
    const char *s;
    size_t len, i;
    struct tc_template *t;
    char *err;
    size_t errlen;
};

/* Segment = "*" | "**" | LITERAL; |in_var|: no variables inside. */
static int parse_segment(struct parser *p, bool in_var)
{
    struct tc_template *t = p->t;
    struct tc_seg *seg;

    if (t->nsegs == TC_MAX_SEGS)
        return fail(p->err, p->errlen, "more than %d segments", TC_MAX_SEGS);
    if (t->nsegs > 0 && t->segs[t->nsegs - 1].kind == TC_SEG_DSTAR)
        return fail(p->err, p->errlen, "'**' must be the last segment (before a verb)");
    seg = &t->segs[t->nsegs];
    if (p->i < p->len && p->s[p->i] == '*') {
        if (p->i + 1 < p->len && p->s[p->i + 1] == '*') {
            seg->kind = TC_SEG_DSTAR;
            p->i += 2;
        } else {
            seg->kind = TC_SEG_STAR;
            p->i++;
        }
        t->nsegs++;
        return 0;
    }
    if (p->i < p->len && p->s[p->i] == '{') {
        if (in_var)
            return fail(p->err, p->errlen, "a variable inside a variable at offset %zu", p->i);
        return 1; /* the caller parses the variable */
    }
    seg->kind = TC_SEG_LITERAL;
    seg->off = (uint32_t)p->i;
    while (p->i < p->len && is_literal(p->s[p->i]))
        p->i++;
    seg->len = (uint32_t)(p->i - seg->off);
    if (seg->len == 0)
        return fail(p->err, p->errlen, "expected a segment at offset %zu", p->i);
    t->nsegs++;
    t->nliterals++;
    return 0;
}

/* Variable = "{" FieldPath [ "=" Segments ] "}" */
static int parse_variable(struct parser *p)
{
    struct tc_template *t = p->t;
    struct tc_var *v;

    if (t->nvars == TC_MAX_VARS)
        return fail(p->err, p->errlen, "more than %d variables", TC_MAX_VARS);
    v = &t->vars[t->nvars];
    p->i++; /* '{' */
    v->off = (uint32_t)p->i;
    for (;;) {
        if (p->i >= p->len || !is_ident_start(p->s[p->i]))
            return fail(p->err, p->errlen, "expected a field name at offset %zu", p->i);
        while (p->i < p->len && is_ident(p->s[p->i]))
            p->i++;
        if (p->i < p->len && p->s[p->i] == '.') {
            p->i++;
            continue;
        }
        break;
    }
    v->len = (uint32_t)(p->i - v->off);
    v->first = t->nsegs;
    for (uint32_t j = 0; j < t->nvars; j++) {
        if (t->vars[j].len == v->len && memcmp(p->s + t->vars[j].off, p->s + v->off, v->len) == 0)
            return fail(p->err, p->errlen, "variable '%.*s' given twice", (int)v->len,
                        p->s + v->off);
    }
    if (p->i < p->len && p->s[p->i] == '=') {
        p->i++;
        for (;;) {
            int rc = parse_segment(p, true);

            if (rc != 0)
                return -1;
            if (p->i < p->len && p->s[p->i] == '/') {
                p->i++;
                continue;
            }
            break;
        }
    } else {
        /* {name} is {name=*} */
        if (t->nsegs == TC_MAX_SEGS)
            return fail(p->err, p->errlen, "more than %d segments", TC_MAX_SEGS);
        if (t->nsegs > 0 && t->segs[t->nsegs - 1].kind == TC_SEG_DSTAR)
            return fail(p->err, p->errlen, "'**' must be the last segment (before a verb)");
        t->segs[t->nsegs++] = (struct tc_seg){.kind = TC_SEG_STAR};
    }
    if (p->i >= p->len || p->s[p->i] != '}')
        return fail(p->err, p->errlen, "expected '}' at offset %zu", p->i);
    p->i++;
    v->last = t->nsegs;
    v->multi = v->last - v->first > 1 || t->segs[v->last - 1].kind == TC_SEG_DSTAR;
    t->nvars++;
    return 0;
}

int tc_template_parse(const char *s, size_t len, struct tc_template *t, char *err, size_t errlen)
{
    struct parser p = {.s = s, .len = len, .t = t, .err = err, .errlen = errlen};

    memset(t, 0, sizeof(*t));
    if (len == 0 || s[0] != '/')
        return fail(err, errlen, "a template starts with '/'");
    if (len > 4096)
        return fail(err, errlen, "template longer than 4096 bytes");
    p.i = 1;
    if (len > 1) {
        for (;;) {
            int rc = parse_segment(&p, false);

            if (rc < 0)
                return -1;
            if (rc == 1 && parse_variable(&p) != 0)
                return -1;
            if (p.i < len && s[p.i] == '/') {
                p.i++;
                continue;
            }
            break;
        }
    }
    if (p.i < len && s[p.i] == ':') {
        p.i++;
        t->verb_off = (uint32_t)p.i;
        while (p.i < len && is_literal(s[p.i]))
            p.i++;
        t->verb_len = (uint32_t)(p.i - t->verb_off);
        if (t->verb_len == 0)
            return fail(err, errlen, "expected a verb after ':'");
    }
    if (p.i != len)
        return fail(err, errlen, "unexpected '%c' at offset %zu", s[p.i], p.i);
    t->text = xstrndup(s, len);
    return 0;
}

void tc_template_deinit(struct tc_template *t)
{
    free(t->text);
    t->text = NULL;
}

int tc_template_match(const struct tc_template *t, const char *path, size_t len,
                      struct tc_capture *caps)
{
    size_t start[TC_MAX_SEGS + 1], end[TC_MAX_SEGS + 1];
    uint32_t n = 0, i;
    size_t pos;
    bool overflow = false; /* more segments than TC_MAX_SEGS: the rest is one span */

    if (len == 0 || path[0] != '/')
        return -1;
    if (t->verb_len > 0) {
        /* The verb ends the last segment: ".../users:watch". */
        if (len < t->verb_len + 1 || path[len - t->verb_len - 1] != ':' ||
            memcmp(path + len - t->verb_len, t->text + t->verb_off, t->verb_len) != 0)
            return -1;
        len -= t->verb_len + 1;
    }
    /* Split into segments: "/a/b" has two, "/" none, "/a/" two (the last empty). */
    pos = 1;
    if (len > 1 || t->nsegs > 0) {
        for (;;) {
            size_t e = pos;

            if (n == TC_MAX_SEGS) {
                /* Only a final "**" can take that many: it gets the rest. */
                start[n] = pos;
                end[n] = len;
                n++;
                overflow = true;
                break;
            }
            while (e < len && path[e] != '/')
                e++;
            start[n] = pos;
            end[n] = e;
            n++;
            if (e >= len)
                break;
            pos = e + 1;
        }
    }
    for (i = 0; i < t->nsegs; i++) {
        const struct tc_seg *s = &t->segs[i];

        if (s->kind == TC_SEG_DSTAR) {
            /* zero or more: the rest of the path, no segment of it empty */
            for (uint32_t j = i; j < n; j++) {
                if (end[j] == start[j])
                    return -1;
                if (overflow && j == n - 1 &&
                    (memmem(path + start[j], end[j] - start[j], "//", 2) != NULL ||
                     path[end[j] - 1] == '/'))
                    return -1;
            }
            break;
        }
        if (i >= n || end[i] == start[i])
            return -1;
        if (s->kind == TC_SEG_LITERAL &&
            (end[i] - start[i] != s->len || memcmp(path + start[i], t->text + s->off, s->len) != 0))
            return -1;
    }
    if (i == t->nsegs && (n != t->nsegs || overflow))
        return -1;
    for (uint32_t v = 0; v < t->nvars; v++) {
        const struct tc_var *var = &t->vars[v];
        uint32_t last = var->last;

        if (t->segs[last - 1].kind == TC_SEG_DSTAR)
            last = n > var->first ? n : var->first; /* "**" took the rest, maybe nothing */
        if (last == var->first) {
            caps[v].p = path + (var->first < n ? start[var->first] : len);
            caps[v].n = 0;
        } else {
            caps[v].p = path + start[var->first];
            caps[v].n = end[last - 1] - start[var->first];
        }
    }
    return (int)(t->nliterals * 4 + (t->nsegs - t->nliterals) * 2 +
                 (t->nsegs > 0 && t->segs[t->nsegs - 1].kind == TC_SEG_DSTAR ? 0 : 1) +
                 (t->verb_len > 0 ? 1 : 0));
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

long tc_pct_decode(const char *in, size_t n, char *out, bool keep_slash, bool plus)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        if (in[i] == '%') {
            int hi, lo;

            if (i + 2 >= n)
                return -1;
            hi = hexval(in[i + 1]);
            lo = hexval(in[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            if (keep_slash && hi == 2 && lo == 15) {
                memcpy(out + o, in + i, 3);
                o += 3;
            } else {
                out[o++] = (char)(hi << 4 | lo);
            }
            i += 2;
        } else if (plus && in[i] == '+') {
            out[o++] = ' ';
        } else {
            out[o++] = in[i];
        }
    }
    return (long)o;
}

int tc_http_status(int code)
{
    /* google/rpc/code.proto: each code's HTTP mapping. */
    static const int map[17] = {
        200, /* OK */
        499, /* CANCELLED */
        500, /* UNKNOWN */
        400, /* INVALID_ARGUMENT */
        504, /* DEADLINE_EXCEEDED */
        404, /* NOT_FOUND */
        409, /* ALREADY_EXISTS */
        403, /* PERMISSION_DENIED */
        429, /* RESOURCE_EXHAUSTED */
        400, /* FAILED_PRECONDITION */
        409, /* ABORTED */
        400, /* OUT_OF_RANGE */
        501, /* UNIMPLEMENTED */
        500, /* INTERNAL */
        503, /* UNAVAILABLE */
        500, /* DATA_LOSS */
        401, /* UNAUTHENTICATED */
    };

    return code >= 0 && code < 17 ? map[code] : 500;
}
