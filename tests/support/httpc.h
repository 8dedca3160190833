/* A tiny blocking HTTP/1.0 client for integration tests of switchyard's
 * admin listener: one request per connection, any method, extra headers and
 * a body, the whole response read until the server closes.
 * Invariant: never follows redirects, never retries; a request that cannot be
 * sent or answered returns -1 and leaves nothing allocated.
 * SPDX-License-Identifier: MIT */
#ifndef TESTS_SUPPORT_HTTPC_H
#define TESTS_SUPPORT_HTTPC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/** One response. */
struct sup_http_resp {
    int code;   /* status code, e.g. 200 */
    char *head; /* status line and headers, NUL-terminated (owned) */
    char *body; /* the body, NUL-terminated (owned) */
};

/** Sends `|method| |path| HTTP/1.0` to 127.0.0.1:|port| with |headers| (NULL
 *  or lines each ending in "\r\n") and |bodylen| bytes of |body| (a
 *  Content-Length header is added when |body| is not NULL), then reads the
 *  response until the server closes, at most |timeout_ms|. Returns 0 with |r|
 *  filled (free it with sup_http_resp_free()), or -1. */
int sup_http(int port, const char *method, const char *path, const char *headers, const char *body,
             size_t bodylen, int timeout_ms, struct sup_http_resp *r);

/** sup_http() with GET, no headers and no body, 10 s. */
int sup_http_get(int port, const char *path, struct sup_http_resp *r);

/** GET |path| from 127.0.0.1:|port| (sup_http_get()) and parses the body
 *  as JSON. Returns the document (json_decref() it), or NULL after printing
 *  why on stderr (no answer, a status other than 200, not JSON). */
json_t *sup_http_get_json(int port, const char *path);

/** Frees what |r| holds; safe on a zeroed |r|. */
void sup_http_resp_free(struct sup_http_resp *r);

/** Returns true when the head of |r| has header |name| (case-insensitive)
 *  whose value contains |needle|. */
bool sup_http_header_has(const struct sup_http_resp *r, const char *name, const char *needle);

#endif
