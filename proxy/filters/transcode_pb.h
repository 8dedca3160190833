/* The protobuf side of REST transcoding, behind a C interface: descriptor
 * pools built from a descriptor set or from reflection's file descriptors,
 * the google.api.http rules they carry, and the conversions between JSON and
 * binary messages with libprotobuf's own proto3 JSON mapping
 * (util::JsonToBinaryString / BinaryToJsonString over a TypeResolver of the
 * pool). The one C++ file of switchyard (transcode_pb.cc).
 * Invariant: a pool is immutable once built; every function taking a const
 * pool may run on any thread at once (libprotobuf's DescriptorPool and
 * TypeResolver are thread-safe for lookups after their descriptors are
 * built, which tc_pool_*() does eagerly). Never logs.
 * In the switchyard binary these functions live in the shared module
 * switchyard-rest.so (transcode_mod.c loads it): call tc_module_load() first.
 * Tests and fuzz harnesses link transcode_pb.cc itself instead.
 * SPDX-License-Identifier: MIT */
#ifndef PROXY_FILTERS_TRANSCODE_PB_H
#define PROXY_FILTERS_TRANSCODE_PB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct evbuffer;
struct tc_pool;
struct tc_method;

/** Makes the functions below usable. In the switchyard binary: loads
 *  switchyard-rest.so (once; later calls return 0) from
 *  $SWITCHYARD_REST_MODULE when that is set, else from the directory of the
 *  running binary, its ../lib/switchyard, then $(PREFIX)/lib/switchyard as
 *  the build was configured. Returns 0, or -1 with
 *  every path tried and dlerror()'s reason in |err|; until it has succeeded,
 *  the functions below fail (return NULL, -1, 0 or false) without crashing.
 *  Main thread. Linked with transcode_pb.cc directly: returns 0. */
int tc_module_load(char *err, size_t errlen);

/** A byte string. */
struct tc_bytes {
    const uint8_t *p;
    size_t n;
};

/** Builds a pool from a serialized FileDescriptorSet (`protoc
 *  --include_imports -o FILE`). Returns NULL with a reason in |err| when the
 *  bytes are not a descriptor set or a file cannot be built (a missing
 *  import, say). */
struct tc_pool *tc_pool_from_set(const uint8_t *p, size_t n, char *err, size_t errlen);

/** Builds a pool from |n| serialized FileDescriptorProtos in any order (what
 *  gRPC server reflection answers). Returns NULL with a reason in |err|. */
struct tc_pool *tc_pool_from_files(const struct tc_bytes *files, size_t n, char *err,
                                   size_t errlen);

/** Frees |p|; NULL is a no-op. Every tc_method of it goes with it. */
void tc_pool_free(struct tc_pool *p);

/** Number of services in |p| (every file), and the full name of service
 *  |i| (valid while |p| lives). */
size_t tc_pool_nservices(const struct tc_pool *p);
const char *tc_pool_service(const struct tc_pool *p, size_t i);

/** One HTTP binding of a method: its rule or one of its additional_bindings. */
struct tc_rule {
    const struct tc_method *method; /* valid while the pool lives */
    const char *grpc_path;          /* "/pkg.Service/Method" */
    const char *verb;               /* "GET", "POST", ..., or a custom rule's kind */
    const char *pattern;            /* the path template, e.g. "/v1/users/{id}" */
    const char *body;               /* "" (none), "*" or a field name */
    const char *response_body;      /* "" (the whole message) or a field name */
    bool server_streaming;
    bool client_streaming;
};

/** Calls |cb| for every binding of every method of |p| that has a
 *  google.api.http option, in file, service and method order. A binding whose
 *  body or response_body names no field of its message is skipped and
 *  reported through |bad| (when not NULL) with a reason. Strings are valid
 *  during the call only. */
void tc_pool_rules(const struct tc_pool *p, void (*cb)(const struct tc_rule *r, void *arg),
                   void (*bad)(const char *why, void *arg), void *arg);

/** The dependencies (file names) of serialized FileDescriptorProto |file|,
 *  and its own name, through |cb|. Returns 0, or -1 when |file| does not
 *  parse. For the reflection client, which must ask for missing imports. */
int tc_file_deps(const uint8_t *file, size_t n, void (*cb)(const char *name, bool self, void *arg),
                 void *arg);

/** Whether |path| (dot-separated proto field names, e.g. "user.name") names
 *  a field of |m|'s request message that a path variable or query parameter
 *  can set (a scalar, an enum, a repeated one of those, or a well-known type
 *  written as a JSON string), through singular message fields. */
bool tc_method_has_field(const struct tc_method *m, const char *path, size_t len);

/** A field path and its value (percent-decoded), from the URL's path
 *  variables or query string. */
struct tc_param {
    const char *path; /* "a.b" */
    size_t plen;
    const char *value;
    size_t vlen;
};

/** Builds |m|'s request message from the JSON |body| (|blen| bytes; 0: no
 *  body) placed per the binding's |body_field| ("" none, "*" the whole
 *  message, else a top-level field), then the |n| |params| (later ones win
 *  for singular fields; repeated fields collect every value), and appends it
 *  to |out| as one uncompressed gRPC message (5-byte prefix). Returns 0, or
 *  -1 with protobuf's reason in |err| (bad JSON, an unknown field, a value
 *  of the wrong type). */
int tc_request_build(const struct tc_method *m, const char *body_field, const char *body,
                     size_t blen, const struct tc_param *params, size_t n, struct evbuffer *out,
                     char *err, size_t errlen);

/** Converts one binary response message of |m| (|msg|, |n| bytes, without
 *  the gRPC prefix) to JSON, or only its field |response_body| when that is
 *  not "", and appends the text to |out|. Returns 0, or -1 with a reason in
 *  |err| (the bytes are not such a message). */
int tc_response_json(const struct tc_method *m, const char *response_body, const uint8_t *msg,
                     size_t n, struct evbuffer *out, char *err, size_t errlen);

/** Converts a serialized google.rpc.Status (grpc-status-details-bin, already
 *  base64-decoded) into the JSON array of its details, rendered with |p|'s
 *  types (an Any whose type |p| does not know is left out), and appends it to
 *  |out|. Returns 0, or -1 when the bytes are not a Status (|out| untouched). */
int tc_status_details_json(const struct tc_pool *p, const uint8_t *status, size_t n,
                           struct evbuffer *out);

#ifdef __cplusplus
}
#endif

#endif
