/* libFuzzer harness: google.api.http path templates (proxy/filters/
 * transcode_path.c): parsing, matching and percent-decoding.
 * Input: a template, a newline, a request path.
 * Invariant: a parsed template's segments and variables stay in bounds and
 * its text is exactly the input; every capture of a match lies inside the
 * path; decoding never writes more than it reads; and a path built from the
 * template itself (literals, "x" for "*", "y/z" for "**", the verb) always
 * matches it, capturing what was put in.
 * SPDX-License-Identifier: MIT */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/filters/transcode_path.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz check failed: %s\n", what);
        abort();
    }
}

static void check_captures(const struct tc_template *t, const char *path, size_t len,
                           const struct tc_capture *caps)
{
    for (uint32_t i = 0; i < t->nvars; i++) {
        char *out = malloc(caps[i].n + 1);
        long n;

        check(caps[i].p >= path && caps[i].p + caps[i].n <= path + len, "capture inside path");
        n = tc_pct_decode(caps[i].p, caps[i].n, out, t->vars[i].multi, false);
        check(n <= (long)caps[i].n, "decoding never grows");
        free(out);
    }
}

/* A path the template must match: its literals, "x" for "*", "y/z" for "**". */
static void self_match(const struct tc_template *t)
{
    char path[8192];
    size_t n = 0;
    struct tc_capture caps[TC_MAX_VARS];

    for (uint32_t i = 0; i < t->nsegs; i++) {
        const struct tc_seg *s = &t->segs[i];

        path[n++] = '/';
        if (s->kind == TC_SEG_LITERAL) {
            memcpy(path + n, t->text + s->off, s->len);
            n += s->len;
        } else if (s->kind == TC_SEG_STAR) {
            path[n++] = 'x';
        } else {
            memcpy(path + n, "y/z", 3);
            n += 3;
        }
    }
    if (n == 0)
        path[n++] = '/';
    if (t->verb_len > 0) {
        path[n++] = ':';
        memcpy(path + n, t->text + t->verb_off, t->verb_len);
        n += t->verb_len;
    }
    check(tc_template_match(t, path, n, caps) >= 0, "a template matches its own instance");
    check_captures(t, path, n, caps);
    for (uint32_t i = 0; i < t->nvars; i++) {
        const struct tc_var *v = &t->vars[i];

        if (v->last - v->first == 1 && t->segs[v->first].kind == TC_SEG_STAR)
            check(caps[i].n == 1 && caps[i].p[0] == 'x', "{var} captures its segment");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    const char *nl = memchr(s, '\n', size);
    size_t tlen = nl != NULL ? (size_t)(nl - s) : size;
    const char *path = nl != NULL ? nl + 1 : "";
    size_t plen = nl != NULL ? size - tlen - 1 : 0;
    struct tc_template t;
    struct tc_capture caps[TC_MAX_VARS];
    char err[256];
    char *dec = malloc(size + 1);

    /* Decoding alone, both ways. */
    check(tc_pct_decode(s, size, dec, true, true) <= (long)size, "decoding never grows");
    check(tc_pct_decode(s, size, dec, false, false) <= (long)size, "decoding never grows");
    free(dec);
    if (tc_template_parse(s, tlen, &t, err, sizeof(err)) != 0)
        return 0;
    check(strlen(t.text) == tlen && memcmp(t.text, s, tlen) == 0, "text kept");
    check(t.nsegs <= TC_MAX_SEGS && t.nvars <= TC_MAX_VARS, "bounds");
    for (uint32_t i = 0; i < t.nsegs; i++) {
        check(t.segs[i].kind != TC_SEG_DSTAR || i == t.nsegs - 1, "** only last");
        check(t.segs[i].off + t.segs[i].len <= tlen, "segment inside text");
    }
    for (uint32_t i = 0; i < t.nvars; i++)
        check(t.vars[i].first < t.vars[i].last && t.vars[i].last <= t.nsegs, "variable range");
    if (tc_template_match(&t, path, plen, caps) >= 0)
        check_captures(&t, path, plen, caps);
    self_match(&t);
    tc_template_deinit(&t);
    return 0;
}
