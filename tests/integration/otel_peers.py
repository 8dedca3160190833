#!/usr/bin/python3
"""Peers for switchyard's observability tests (Python standard library and
python3-h2 only).

Usage:
  otel_peers.py receiver PORT [DELAY_MS [STATUS]]
      An OTLP/HTTP receiver: every POST body is printed on stdout as one
      line, {"path": ..., "content_type": ..., "body": <the JSON sent>}
      (or "raw": the text when it is not JSON), flushed, then answered with
      STATUS (200) and "{}" after DELAY_MS (0): a slow collector.
  otel_peers.py backend PORT
      A gRPC backend (HTTP/2, python3-h2) that answers every call OK with
      one empty message and prints "seen PATH traceparent=V tracestate=V"
      per request ("-" when absent), so a test sees what reached it.
  otel_peers.py h2paths PORT HEXPATH...
      An HTTP/2 client: one gRPC request per path (given in hex, so it may
      hold any byte), one after the other on one connection; prints
      "status N" per answer (grpc-status, or "http N" for an HTTP error).
  otel_peers.py promparse FILE
      Parses the Prometheus text exposition in FILE with
      prometheus_client's parser (python3-prometheus-client) and prints one
      JSON object per sample: {"name", "labels", "value"}; exits 1 with the
      parser's error when the text does not parse.

Each server prints "listening" once it accepts connections.
SPDX-License-Identifier: MIT
"""
import gzip
import http.server
import json
import socket
import sys
import threading
import time


def receiver(port, delay_ms=0, status=200):
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                data = b""
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                    chunk = self.rfile.read(size + 2)[:size]
                    if size == 0:
                        break
                    data += chunk
            else:
                data = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.headers.get("Content-Encoding", "").lower() == "gzip":
                data = gzip.decompress(data)
            rec = {"path": self.path, "content_type": self.headers.get("Content-Type", "")}
            try:
                rec["body"] = json.loads(data)
            except ValueError:
                rec["raw"] = data.decode("utf-8", "replace")
            with lock:
                print(json.dumps(rec), flush=True)
            if delay_ms > 0:
                time.sleep(delay_ms / 1000.0)
            out = b"{}"
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, fmt, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    srv.daemon_threads = True
    print("listening", flush=True)
    srv.serve_forever()


def serve_backend(conn, lock):
    import h2.config
    import h2.connection
    import h2.events

    c = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
    )
    c.initiate_connection()
    conn.sendall(c.data_to_send())
    heads = {}
    try:
        while True:
            data = conn.recv(65536)
            if not data:
                return
            for ev in c.receive_data(data):
                if isinstance(ev, h2.events.RequestReceived):
                    h = {}
                    for k, v in ev.headers:
                        h.setdefault(k, []).append(v)
                    heads[ev.stream_id] = h
                elif isinstance(ev, h2.events.DataReceived):
                    c.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, h2.events.StreamEnded):
                    h = heads.pop(ev.stream_id, {})
                    tp = ",".join(h.get("traceparent", ["-"]))
                    ts = ",".join(h.get("tracestate", ["-"]))
                    with lock:
                        print("seen %s traceparent=%s tracestate=%s"
                              % (h.get(":path", ["?"])[0], tp, ts), flush=True)
                    c.send_headers(ev.stream_id, [(":status", "200"),
                                                  ("content-type", "application/grpc")])
                    c.send_data(ev.stream_id, b"\0\0\0\0\0")
                    c.send_headers(ev.stream_id, [("grpc-status", "0"),
                                                  ("x-seen-traceparent", tp)], end_stream=True)
            out = c.data_to_send()
            if out:
                conn.sendall(out)
    except OSError:
        return


def backend(port):
    lock = threading.Lock()
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(64)
    print("listening", flush=True)
    while True:
        conn, _ = ls.accept()
        threading.Thread(target=serve_backend, args=(conn, lock), daemon=True).start()


def h2paths(port, paths):
    import h2.config
    import h2.connection
    import h2.events

    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True,
                                                             header_encoding=None))
    c.initiate_connection()
    sock.sendall(c.data_to_send())
    for hexpath in paths:
        sid = c.get_next_available_stream_id()
        c.send_headers(sid, [(b":method", b"POST"), (b":scheme", b"http"),
                             (b":path", bytes.fromhex(hexpath)),
                             (b":authority", b"127.0.0.1:%d" % port),
                             (b"content-type", b"application/grpc"), (b"te", b"trailers")])
        c.send_data(sid, b"\0\0\0\0\0", end_stream=True)
        sock.sendall(c.data_to_send())
        status, done = None, False
        while not done:
            data = sock.recv(65536)
            if not data:
                sys.exit("connection closed")
            for ev in c.receive_data(data):
                if isinstance(ev, (h2.events.ResponseReceived, h2.events.TrailersReceived)):
                    h = dict(ev.headers)
                    if b"grpc-status" in h:
                        status = "status %s" % h[b"grpc-status"].decode()
                    elif status is None and h.get(b":status", b"200") != b"200":
                        status = "http %s" % h[b":status"].decode()
                elif isinstance(ev, h2.events.DataReceived):
                    c.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                if isinstance(ev, (h2.events.StreamEnded, h2.events.StreamReset)):
                    if ev.stream_id == sid:
                        done = True
            out = c.data_to_send()
            if out:
                sock.sendall(out)
        print(status or "reset", flush=True)
    sock.close()


def promparse(path):
    from prometheus_client.parser import text_string_to_metric_families

    try:
        with open(path, encoding="utf-8") as f:  # Prometheus requires UTF-8
            text = f.read()
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                print(json.dumps({"family": fam.name, "type": fam.type, "name": s.name,
                                  "labels": s.labels, "value": s.value}))
    except Exception as e:  # the parser raises ValueError and others
        print("parse error: %s" % e, file=sys.stderr)
        sys.exit(1)


def main():
    mode = sys.argv[1]
    if mode == "receiver":
        args = [int(a) for a in sys.argv[2:]]
        receiver(*args)
    elif mode == "backend":
        backend(int(sys.argv[2]))
    elif mode == "h2paths":
        h2paths(int(sys.argv[2]), sys.argv[3:])
    elif mode == "promparse":
        promparse(sys.argv[2])
    else:
        sys.exit("unknown mode %s" % mode)


if __name__ == "__main__":
    main()
