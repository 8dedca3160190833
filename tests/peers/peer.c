/* Wire helpers shared by the test peers; see peer.h.
 * SPDX-License-Identifier: MIT */
#include "tests/peers/peer.h"

#include <stdlib.h>
#include <strings.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>

grpc_byte_buffer *peer_pack(const ProtobufCMessage *m)
{
    size_t len = protobuf_c_message_get_packed_size(m);
    /* gpr_malloc aborts on OOM; allocate one byte for empty messages. */
    uint8_t *buf = gpr_malloc(len ? len : 1);
    grpc_slice s;
    grpc_byte_buffer *bb;

    protobuf_c_message_pack(m, buf);
    s = grpc_slice_new(buf, len, gpr_free);
    bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    return bb;
}

ProtobufCMessage *peer_unpack(const ProtobufCMessageDescriptor *d, grpc_byte_buffer *bb)
{
    grpc_byte_buffer_reader rd;
    grpc_slice s;
    ProtobufCMessage *m;

    if (!grpc_byte_buffer_reader_init(&rd, bb))
        return NULL;
    s = grpc_byte_buffer_reader_readall(&rd);
    grpc_byte_buffer_reader_destroy(&rd);
    m = protobuf_c_message_unpack(d, NULL, GRPC_SLICE_LENGTH(s), GRPC_SLICE_START_PTR(s));
    grpc_slice_unref(s);
    return m;
}

void peer_fill(uint8_t *p, size_t n)
{
    uint8_t v = 0;

    for (size_t i = 0; i < n; i++) {
        p[i] = v;
        v = v == 250 ? 0 : v + 1;
    }
}

bool peer_check(const uint8_t *p, size_t n)
{
    uint8_t v = 0;

    for (size_t i = 0; i < n; i++) {
        if (p[i] != v)
            return false;
        v = v == 250 ? 0 : v + 1;
    }
    return true;
}

const char *peer_status_name(int code)
{
    static const char *const names[] = {
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

    if (code < 0 || (size_t)code >= sizeof(names) / sizeof(names[0]))
        return "?";
    return names[code];
}

static const char *const serving_names[] = {"UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"};

const char *peer_serving_name(int status)
{
    if (status < 0 || (size_t)status >= sizeof(serving_names) / sizeof(serving_names[0]))
        return "?";
    return serving_names[status];
}

int peer_serving_parse(const char *s, int *status)
{
    for (size_t i = 0; i < sizeof(serving_names) / sizeof(serving_names[0]); i++) {
        if (strcasecmp(s, serving_names[i]) == 0) {
            *status = (int)i;
            return 0;
        }
    }
    return -1;
}
