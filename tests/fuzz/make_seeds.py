#!/usr/bin/python3
"""Writes the hand-made seeds of the HTTP/2 harnesses (fuzz_be, fuzz_fe) and
of fuzz_admin into tests/fuzz/corpus/. Frames are built here byte by byte;
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


# ---- fuzz_fe: [flags][chunk][client length, 2 bytes] client bytes [backend's raw bytes] ----

ECHO, STATUS, RESET, RAW = 0, 1, 2, 3
STRICT, SCRAPE, SLOW = 4, 64, 128


def fe(seed, flags, client, raw=b"", chunk=0):
    write("fe", seed, bytes([flags, chunk]) + struct.pack(">H", len(client)) + client + raw)


def grpc_req(path, extra=(), method="POST", ctype="application/grpc"):
    return [(":method", method), (":scheme", "http"), (":path", path),
            (":authority", "switchyard.fuzz"), ("content-type", ctype), ("te", "trailers")] + list(extra)


def h2(*frames):
    return PREFACE + settings(initial_window_size=65535) + settings_ack() + b"".join(frames)


def unary(enc, sid, path, msg=b"ping", extra=()):
    return headers(enc, sid, grpc_req(path, extra)) + data(sid, grpc_msg(msg), True)


def h1(method, path, headers_, body=b""):
    head = "%s %s HTTP/1.1\r\nHost: switchyard.fuzz\r\n" % (method, path)
    head += "".join("%s: %s\r\n" % kv for kv in headers_)
    if body or method == "POST":
        head += "Content-Length: %d\r\n" % len(body)
    return head.encode() + b"\r\n" + body


def fe_seeds():
    e = hpack.Encoder()
    fe("h2-unary-echo", ECHO, h2(unary(e, 1, "/sy.test.Echo/Unary")))
    e = hpack.Encoder()
    fe("h2-unary-echo-scrape", ECHO | SCRAPE, h2(unary(e, 1, "/sy.test.Echo/Unary")))
    e = hpack.Encoder()
    fe("h2-unary-echo-chunked", ECHO, h2(unary(e, 1, "/sy.test.Echo/Unary")), chunk=5)
    e = hpack.Encoder()
    fe("h2-unary-echo-slow-reader", ECHO | SLOW, h2(unary(e, 1, "/sy.test.Echo/Unary", b"x" * 3000)))
    e = hpack.Encoder()
    fe("h2-two-streams-one-cancelled", ECHO | (1 << 3),
       h2(headers(e, 1, grpc_req("/sy.test.Echo/Bidi")), headers(e, 3, grpc_req("/sy.test.Echo/Bidi")),
          data(1, grpc_msg(b"one")), data(3, grpc_msg(b"three")), rst(3, 8),
          data(1, grpc_msg(b"one again"), True)))
    e = hpack.Encoder()
    fe("h2-retry-unavailable", STATUS | (1 << 3),
       h2(unary(e, 1, "/sy.test.Retry/Get", extra=[("grpc-timeout", "1S")])))
    e = hpack.Encoder()
    fe("h2-hedge", ECHO | (1 << 3), h2(unary(e, 1, "/sy.test.Hedge/Get")))
    e = hpack.Encoder()
    fe("h2-backend-refuses", RESET, h2(unary(e, 1, "/sy.test.Echo/Unary")))
    e = hpack.Encoder()
    fe("h2-backend-resets-after-head", RESET | (3 << 3), h2(unary(e, 1, "/sy.test.Echo/Unary")))
    e = hpack.Encoder()
    fe("h2-backend-goaway-then-answer", RESET | (4 << 3),
       h2(unary(e, 1, "/sy.test.Echo/Unary"), unary(e, 3, "/sy.test.Echo/Unary")))
    e = hpack.Encoder()
    be_enc = hpack.Encoder()
    fe("h2-backend-raw", RAW,
       h2(unary(e, 1, "/sy.test.Echo/Unary")),
       raw=settings() + headers(be_enc, 1, RESP_HEAD) + data(1, grpc_msg(b"pong")) +
       headers(be_enc, 1, OK_TRAILERS, True))
    e = hpack.Encoder()
    fe("h2-strict-token", STRICT | ECHO,
       h2(unary(e, 1, "/sy.test.Echo/Unary", extra=[("authorization", "Bearer fuzz-token-1")])))
    e = hpack.Encoder()
    fe("h2-strict-no-token-scrape", STRICT | ECHO | SCRAPE, h2(unary(e, 1, "/sy.test.Echo/Unary")))
    e = hpack.Encoder()
    fe("h2-strict-too-many-streams", STRICT | ECHO,
       h2(*[unary(e, sid, "/sy.test.Echo/S%d" % sid, extra=[("authorization", "Bearer fuzz-token-2")])
            for sid in (1, 3, 5, 7, 9)]))
    e = hpack.Encoder()
    fe("h2-strict-message-too-big", STRICT | ECHO,
       h2(unary(e, 1, "/sy.test.Echo/Unary", b"m" * 100, [("authorization", "Bearer fuzz-token-1")])))
    e = hpack.Encoder()
    fe("h2-selfhealth-check", ECHO, h2(unary(e, 1, "/grpc.health.v1.Health/Check", b"")))
    e = hpack.Encoder()
    fe("h2-get-405", ECHO,
       h2(headers(e, 1, grpc_req("/sy.test.Echo/Unary", method="GET"), True),
          headers(e, 3, grpc_req("/sy.test.Echo/Unary", ctype="text/plain"), True)))
    e = hpack.Encoder()
    fe("h2-deadline-1ms-trace", ECHO | (1 << 3),
       h2(unary(e, 1, "/sy.test.Echo/Unary", extra=[
           ("grpc-timeout", "1m"), ("x-user", "u1"),
           ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")])))
    e = hpack.Encoder()
    fe("h2-client-trailers", ECHO,
       h2(headers(e, 1, grpc_req("/sy.test.Echo/Unary")), data(1, grpc_msg(b"a")),
          headers(e, 1, [("x-trailer", "1")], True)))
    e = hpack.Encoder()
    fe("h2-grpc-web", ECHO,
       h2(headers(e, 1, grpc_req("/sy.test.Echo/Unary", ctype="application/grpc-web+proto")),
          data(1, grpc_msg(b"web"), True)))
    e = hpack.Encoder()
    fe("h2-rest-get", ECHO,
       h2(headers(e, 1, [(":method", "GET"), (":scheme", "http"), (":path", "/v1/users/42"),
                         (":authority", "switchyard.fuzz")], True)))
    e = hpack.Encoder()
    fe("h2-ping-window-update", ECHO,
       h2(ping(), window_update(0, 1000), unary(e, 1, "/sy.test.Echo/Unary"), window_update(1, 10),
          goaway(1, 0)))
    fe("h1-grpc-web", ECHO,
       h1("POST", "/sy.test.Echo/Unary", [("Content-Type", "application/grpc-web+proto"),
                                          ("X-Grpc-Web", "1"), ("Origin", "https://app.example")],
          grpc_msg(b"web")))
    fe("h1-grpc-web-text", ECHO | SCRAPE,
       h1("POST", "/sy.test.Echo/Unary", [("Content-Type", "application/grpc-web-text")],
          b"AAAAAANmb28="))
    fe("h1-grpc-web-chunked-pipelined", ECHO,
       b"POST /sy.test.Echo/Unary HTTP/1.1\r\nHost: f\r\nContent-Type: application/grpc-web\r\n"
       b"Transfer-Encoding: chunked\r\n\r\n5\r\n\0\0\0\0\x02\r\n2\r\nhi\r\n0\r\n\r\n" +
       h1("POST", "/sy.test.Retry/Get", [("Content-Type", "application/grpc-web")], grpc_msg(b"")),
       chunk=17)
    fe("h1-cors-preflight", ECHO,
       h1("OPTIONS", "/sy.test.Echo/Unary", [("Origin", "https://app.example"),
                                             ("Access-Control-Request-Method", "POST"),
                                             ("Access-Control-Request-Headers", "content-type,x-grpc-web")]))
    fe("h1-rest-get", ECHO, h1("GET", "/v1/users?page_size=2&tags=a&tags=b&filter.city=Oslo", [("Accept", "application/json")]))
    fe("h1-rest-post", ECHO,
       h1("POST", "/v1/users", [("Content-Type", "application/json")],
          b'{"id": "7", "name": "orgs/o/users/7", "tags": ["a"], "created": "2024-01-01T00:00:00Z", '
          b'"labels": {"k": "v"}, "avatar": "AAE=", "score": 1.5, "role": "ROLE_ADMIN"}'))
    fe("h1-native-grpc-426", STATUS,
       h1("POST", "/sy.test.Echo/Unary", [("Content-Type", "application/grpc")], grpc_msg(b"x")))


# ---- fuzz_admin: [chunk] then what an admin client sends ----

TOKEN = "Authorization: Bearer fuzz-admin-token\r\n"


def admin(seed, text, chunk=0):
    write("admin", seed, bytes([chunk]) + text.encode())


def get(path, extra="", method="GET", version="1.1"):
    return "%s %s HTTP/%s\r\nHost: admin\r\n%s\r\n" % (method, path, version, extra)


def admin_seeds():
    admin("get-status", get("/status"))
    admin("get-metrics", get("/metrics", "Connection: close\r\n"))
    admin("get-healthz-http10", get("/healthz", version="1.0"))
    admin("head-status", get("/status", method="HEAD"))
    admin("pipelined-healthz-metrics-status", get("/healthz") + get("/metrics") + get("/status"), 9)
    admin("drain-with-token", get("/drain?cluster=users&endpoint=127.0.0.1:50061", TOKEN, "POST"))
    admin("undrain-ipv6", get("/undrain?cluster=users&endpoint=[::1]:50063", TOKEN, "POST"))
    admin("drain-dns-target", get("/drain?cluster=users&endpoint=users.fuzz.invalid:50051", TOKEN, "POST"))
    admin("drain-then-status", get("/drain?cluster=default&endpoint=10.0.0.7:50051", TOKEN, "POST") +
          get("/status") + get("/healthz"))
    admin("drain-no-token", get("/drain?cluster=users&endpoint=127.0.0.1:50061", method="POST"))
    admin("drain-wrong-token", get("/drain?cluster=users&endpoint=127.0.0.1:50061",
                                   "Authorization: Bearer nope\r\n", "POST"))
    admin("drain-bad-query", get("/drain?cluster=nope&endpoint=x:y%00", TOKEN, "POST"))
    admin("drain-body-too-large", "POST /drain?cluster=users&endpoint=127.0.0.1:50062 HTTP/1.1\r\n"
          "Host: admin\r\n" + TOKEN + "Content-Length: 4000\r\n\r\n" + "x" * 1500)
    admin("drain-chunked", "POST /drain?cluster=users&endpoint=127.0.0.1:50062 HTTP/1.1\r\n"
          "Host: admin\r\n" + TOKEN + "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
    admin("delete-status-405", get("/status", method="DELETE"))
    admin("not-found", get("/nope?x=1#frag"))
    admin("status-abandoned", "GET /status HTTP/1.1\r\nHost: admin\r\n\r\nGET /met")
    admin("headers-too-large", "GET /status HTTP/1.1\r\nX-Big: " + "a" * 9000 + "\r\n\r\n")


if __name__ == "__main__":
    be_seeds()
    fe_seeds()
    admin_seeds()
