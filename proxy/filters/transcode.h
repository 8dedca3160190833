/* REST/JSON transcoding: the table of google.api.http bindings the workers
 * match REST requests against, and the main thread's sources of it
 * (descriptor set files, gRPC server reflection of a cluster's endpoints).
 * Invariant: a table is built on the main thread, published with the
 * snapshot (bal_snapshot.ext) and immutable afterwards; a call that matched
 * a binding holds a reference to its table until it is done, so a reload or a
 * new reflection answer never frees a binding under a running call.
 * SPDX-License-Identifier: MIT */
#ifndef PROXY_FILTERS_TRANSCODE_H
#define PROXY_FILTERS_TRANSCODE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/filters/transcode_path.h"
#include "proxy/filters/transcode_pb.h"

struct conf;
struct event_base;
struct bal_epset;

/* ---- the table (transcode_table.c) ---- */

/** One HTTP binding: a verb and path template mapped to a gRPC method. */
struct tc_binding {
    char *verb; /* "GET", ..., or a custom kind */
    struct tc_template tpl;
    const struct tc_method *method; /* in one of the table's pools */
    char *grpc_path;                /* "/pkg.Service/Method" */
    char *body;                     /* "", "*" or a field */
    char *response_body;            /* "" or a field */
    bool server_streaming;
    bool client_streaming;
    bool ndjson;                /* stream_format = ndjson (else a JSON array) */
    const struct tc_pool *pool; /* for error details */
};

struct tc_table {
    atomic_uint refs;
    struct tc_pool **pools; /* owned */
    size_t npools;
    struct tc_binding *b;
    size_t nb, cap;
};

enum tc_match {
    TC_MATCH = 0,    /* a binding of that verb matches the path */
    TC_NOT_FOUND,    /* no binding has that path */
    TC_WRONG_METHOD, /* the path is bound, but not to that verb */
};

/** An empty table with one reference. */
struct tc_table *tc_table_new(void);

/** Adds every binding of |pool| (taken: the table frees it) with
 *  |ndjson| as its streaming format. A rule that cannot be used (a bad
 *  template, a variable that is no field, a client-streaming method) is left
 *  out and described through |warn| (may be NULL). Returns the number of
 *  bindings added. Main thread, before the table is shared. */
size_t tc_table_add_pool(struct tc_table *t, struct tc_pool *pool, bool ndjson,
                         void (*warn)(const char *why, void *arg), void *arg);

/** Takes one more reference (NULL allowed); returns |t|. Thread-safe. */
struct tc_table *tc_table_ref(struct tc_table *t);

/** Drops one reference; the last frees the table, its pools and bindings.
 *  NULL is a no-op. Thread-safe. */
void tc_table_unref(struct tc_table *t);

/** Finds the binding for |verb| and |path| (no query string) with the
 *  highest precedence; on TC_MATCH stores it in |*out| and its variables'
 *  captures in |caps| (TC_MAX_VARS entries). No allocation. */
enum tc_match tc_table_match(const struct tc_table *t, const char *verb, size_t vlen,
                             const char *path, size_t plen, const struct tc_binding **out,
                             struct tc_capture *caps);

/* ---- the main thread's sources (transcode_src.c) ---- */

struct proxy_rest;

/** The main thread's transcoding state: calls |changed| (with |arg|) when the
 *  table changed (a reflection answer arrived). |eps| points to the
 *  runtime's endpoint set pointer (which a reload replaces), read when
 *  reflection needs addresses. */
struct proxy_rest *proxy_rest_new(struct event_base *base, struct bal_epset *const *eps,
                                  void (*changed)(void *arg), void *arg);

/** Stops every reflection fetch and frees |r| (and its reference to the
 *  table). NULL is a no-op. */
void proxy_rest_free(struct proxy_rest *r);

/** Applies |c| (borrowed until the next apply or the free): reads every
 *  `descriptors = PATH` of a `transcode = on` cluster and (re)starts
 *  reflection for `descriptors = reflection` (a cluster keeps the rules
 *  reflection gave it before until the new answer arrives). Returns 0, or -1
 *  with "FILE:LINE: [cluster.NAME] descriptors: reason" in |err|, leaving
 *  the previous state as it was; when a cluster transcodes and the REST
 *  module cannot be loaded (tc_module_load()), "FILE:LINE: [cluster.NAME]
 *  transcode: " and the paths tried. Loads nothing when none transcodes. */
int proxy_rest_apply(struct proxy_rest *r, const struct conf *c, char *err, size_t errlen);

/** The current table (a new reference for the caller), or NULL when no
 *  cluster transcodes. */
struct tc_table *proxy_rest_table(struct proxy_rest *r);

/** Loads the REST module if a cluster of |c| transcodes, and reads and
 *  checks every descriptor set file of |c| (switchyard -t, and a reload
 *  before it changes anything). Returns 0 or -1 with |err| as
 *  proxy_rest_apply() writes it. */
int proxy_rest_check(const struct conf *c, char *err, size_t errlen);

#endif
