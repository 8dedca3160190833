/* google.api.http path templates (google/api/http.proto): parsing, matching
 * a request path, and the percent-decoding of what variables capture.
 *   Template = "/" Segments [ Verb ] ;   Segments = Segment { "/" Segment } ;
 *   Segment  = "*" | "**" | LITERAL | Variable ;
 *   Variable = "{" FieldPath [ "=" Segments ] "}" ;   Verb = ":" LITERAL ;
 * Invariant: pure code, no I/O and no allocation when matching, so a worker
 * matches every REST request without locks and a fuzzer can drive it.
 * SPDX-License-Identifier: MIT */
#ifndef PROXY_FILTERS_TRANSCODE_PATH_H
#define PROXY_FILTERS_TRANSCODE_PATH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TC_MAX_SEGS 64 /* segments of a template or a request path */
#define TC_MAX_VARS 16 /* variables of a template */

enum tc_seg_kind {
    TC_SEG_LITERAL = 0, /* matches itself */
    TC_SEG_STAR,        /* "*": one segment */
    TC_SEG_DSTAR,       /* "**": zero or more segments; only last */
};

struct tc_seg {
    enum tc_seg_kind kind;
    uint32_t off, len; /* TC_SEG_LITERAL: the literal in the template's text */
};

struct tc_var {
    uint32_t off, len; /* the field path ("user.name") in the template's text */
    uint32_t first;    /* its segments: [first, last) of the template's */
    uint32_t last;
    bool multi; /* it may span several segments (a "/" or "**" in it) */
};

struct tc_template {
    char *text; /* owned copy of the template */
    struct tc_seg segs[TC_MAX_SEGS];
    uint32_t nsegs;
    struct tc_var vars[TC_MAX_VARS];
    uint32_t nvars;
    uint32_t verb_off, verb_len; /* verb_len 0: none */
    uint32_t nliterals;          /* literal segments, for precedence */
};

/** What a variable captured: a span of the request path, still
 *  percent-encoded. */
struct tc_capture {
    const char *p;
    size_t n;
};

/** Parses |s| (|len| bytes) into |t|. Returns 0, or -1 with the reason in
 *  |err| (|t| then holds nothing to free). */
int tc_template_parse(const char *s, size_t len, struct tc_template *t, char *err, size_t errlen);

/** Frees what |t| holds. */
void tc_template_deinit(struct tc_template *t);

/** Matches the request path |path| (|len| bytes, without the query string)
 *  against |t|; on a match fills |caps| (one per variable of |t|) and
 *  returns its precedence (more literal segments, then fewer "**", rank
 *  higher), else -1. No allocation. */
int tc_template_match(const struct tc_template *t, const char *path, size_t len,
                      struct tc_capture *caps);

/** Percent-decodes |n| bytes of |in| into |out| (room for |n| bytes; the
 *  result is never longer). |keep_slash|: "%2F" stays encoded (a variable of
 *  several segments, http.proto); |plus|: '+' is a space (query strings).
 *  Returns the length, or -1 on a malformed escape. */
long tc_pct_decode(const char *in, size_t n, char *out, bool keep_slash, bool plus);

/** The HTTP status of gRPC status |code| (google.rpc.Code's mapping:
 *  NOT_FOUND 404, UNAVAILABLE 503, ...); 500 for codes it does not know. */
int tc_http_status(int code);

#endif
