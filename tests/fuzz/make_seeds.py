#!/usr/bin/python3
"""Writes the hand-made seeds of the HTTP/2 harnesses (fuzz_be) into
tests/fuzz/corpus/. Frames are built here byte by byte;
header blocks are HPACK-encoded by python3-hpack (Debian's, also used by the
integration tests' python3-h2 clients). Run it again after changing a seed
below; regression inputs found by fuzzing are committed as they are.
  /usr/bin/python3 tests/fuzz/make_seeds.py
SPDX-License-Identifier: MIT"""
import os
import struct

import hpack

TOP = os.path.dirname(os.path.abspath(__file__))
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

DATA, HEADERS, RST, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 0, 1, 3, 4, 6, 7, 8, 9
END_STREAM, ACK, END_HEADERS, PADDED = 1, 1, 4, 8


def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) + payload


def settings(**kv):
    ids = {"max_concurrent_streams": 3, "initial_window_size": 4, "max_frame_size": 5,
           "header_table_size": 1, "max_header_list_size": 6, "enable_push": 2}
    return frame(SETTINGS, 0, 0, b"".join(struct.pack(">HI", ids[k], v) for k, v in kv.items()))


def settings_ack():
    return frame(SETTINGS, ACK, 0)


def headers(enc, sid, fields, end_stream=False):
    return frame(HEADERS, END_HEADERS | (END_STREAM if end_stream else 0), sid, enc.encode(fields))


def headers_split(enc, sid, fields, end_stream=False):
    """A header block in HEADERS + CONTINUATION."""
    block = enc.encode(fields)
    half = len(block) // 2
    return (frame(HEADERS, END_STREAM if end_stream else 0, sid, block[:half]) +
            frame(CONTINUATION, END_HEADERS, sid, block[half:]))


def data(sid, payload, end_stream=False, pad=0):
    if pad:
        return frame(DATA, PADDED | (END_STREAM if end_stream else 0), sid,
                     bytes([pad]) + payload + b"\0" * pad)
    return frame(DATA, END_STREAM if end_stream else 0, sid, payload)


def rst(sid, code):
    return frame(RST, 0, sid, struct.pack(">I", code))


def goaway(last, code, debug=b""):
    return frame(GOAWAY, 0, 0, struct.pack(">II", last, code) + debug)


def window_update(sid, inc):
    return frame(WINDOW_UPDATE, 0, sid, struct.pack(">I", inc))


def ping(ack=False, opaque=b"12345678"):
    return frame(PING, ACK if ack else 0, 0, opaque)


def grpc_msg(payload):
    return b"\0" + struct.pack(">I", len(payload)) + payload


def write(name, seed, content):
    d = os.path.join(TOP, "corpus", name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, seed), "wb") as f:
        f.write(content)


# ---- fuzz_be: [flags][chunk] then what a backend sends ----

RESP_HEAD = [(":status", "200"), ("content-type", "application/grpc")]
OK_TRAILERS = [("grpc-status", "0"), ("grpc-message", "")]


def be(seed, flags, chunk, body):
    write("be", seed, bytes([flags, chunk]) + body)


def be_seeds():
    e = hpack.Encoder()
    ok1 = (settings(max_concurrent_streams=100, initial_window_size=65535) + settings_ack() +
           headers(e, 1, RESP_HEAD) + data(1, grpc_msg(b"pong")) + headers(e, 1, OK_TRAILERS, True))
    be("unary-ok", 0, 0, ok1)
    be("unary-ok-chunked", 0, 7, ok1)
    be("unary-ok-body-in-parts", 16, 0, ok1)

    e = hpack.Encoder()
    be("three-streams-interleaved", 2, 0,
       settings(max_concurrent_streams=100) + settings_ack() +
       headers(e, 1, RESP_HEAD) + headers(e, 3, RESP_HEAD) + data(3, grpc_msg(b"three")) +
       data(1, grpc_msg(b"one"), pad=4) + headers(e, 5, RESP_HEAD + [("grpc-status", "5")], True) +
       headers(e, 3, OK_TRAILERS, True) + data(1, b"", True))

    e = hpack.Encoder()
    be("trailers-only", 0, 0,
       settings() + headers(e, 1, RESP_HEAD + [("grpc-status", "14"), ("grpc-message", "down")], True))

    e = hpack.Encoder()
    be("informational-then-response", 0, 0,
       settings() + headers(e, 1, [(":status", "100")]) + headers_split(e, 1, RESP_HEAD) +
       data(1, grpc_msg(b"x" * 40)) + headers(e, 1, OK_TRAILERS, True))

    be("refused-stream", 0, 0, settings() + rst(1, 7))
    be("reset-internal-after-head", 0, 0,
       settings() + headers(hpack.Encoder(), 1, RESP_HEAD) + data(1, grpc_msg(b"part")) + rst(1, 2))
    be("goaway-refuses-all", 1, 0, settings() + goaway(0, 0, b"max_age"))

    e = hpack.Encoder()
    be("goaway-after-first", 3, 0,
       settings() + goaway(1, 0) + headers(e, 1, RESP_HEAD) + headers(e, 1, OK_TRAILERS, True))
    be("goaway-protocol-error", 0, 0, settings() + goaway(1, 1, b"bad"))

    e = hpack.Encoder()
    be("one-stream-at-a-time", 3, 0,
       settings(max_concurrent_streams=1) + settings_ack() + ping() + window_update(0, 1 << 20) +
       headers(e, 1, RESP_HEAD) + window_update(1, 100) + headers(e, 1, OK_TRAILERS, True) +
       headers(e, 3, RESP_HEAD) + headers(e, 3, OK_TRAILERS, True) +
       headers(e, 5, RESP_HEAD + [("grpc-status", "0")], True))

    e = hpack.Encoder()
    be("cancel-others-on-head", 4 | 2, 0,
       settings() + headers(e, 1, RESP_HEAD) + headers(e, 5, RESP_HEAD) +
       headers(e, 1, OK_TRAILERS, True))
    e = hpack.Encoder()
    be("reset-on-data", 8 | 1, 0,
       settings() + headers(e, 1, RESP_HEAD) + data(1, grpc_msg(b"big")) + headers(e, 3, RESP_HEAD) +
       data(3, grpc_msg(b"big")))
    e = hpack.Encoder()
    be("close-idle", 32, 0,
       settings() + headers(e, 1, RESP_HEAD) + headers(e, 1, OK_TRAILERS, True) + ping(ack=True))
    be("shutdown-open-stream", 64, 0, settings() + headers(hpack.Encoder(), 1, RESP_HEAD))
    be("settings-small-window", 1, 3,
       settings(initial_window_size=1, max_frame_size=16384, header_table_size=0) + settings_ack())


if __name__ == "__main__":
    be_seeds()
