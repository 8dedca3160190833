#!/usr/bin/python3
"""A misbehaving HTTP/2 backend for switchyard's tests (python3-h2).

Usage: h2backend.py MODE PORT. Listens on 127.0.0.1:PORT, prints "listening"
once it accepts connections, then one line per request it sees ("seen PATH")
on stdout, flushed, so the test can count what reached it.
Modes:
  hangup   takes each request's HEADERS, then closes the connection without
           answering: the request reached a backend, so switchyard must not
           send it again elsewhere.
  stall    never reads streams whose path holds "Stall": their bytes are taken
           off the connection (its window is returned) but never off the
           stream (its window stays shut) and they get no answer; every
           other call is answered with its own request body and grpc-status 0.
SPDX-License-Identifier: MIT
"""
import signal
import socket
import sys
import threading

import h2.config
import h2.connection
import h2.events


def accept_h2(conn):
    """The server side of an HTTP/2 connection on |conn|, SETTINGS sent."""
    c = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
    )
    c.initiate_connection()
    conn.sendall(c.data_to_send())
    return c


def serve_hangup(conn):
    c = accept_h2(conn)
    try:
        while True:
            data = conn.recv(65536)
            if not data:
                return
            for ev in c.receive_data(data):
                if isinstance(ev, h2.events.RequestReceived):
                    print("seen %s" % dict(ev.headers).get(":path"), flush=True)
                    conn.close()
                    return
            out = c.data_to_send()
            if out:
                conn.sendall(out)
    except OSError:
        return


def serve_stall(conn):
    c = accept_h2(conn)
    stalled, bodies = set(), {}
    try:
        while True:
            data = conn.recv(65536)
            if not data:
                return
            for ev in c.receive_data(data):
                if isinstance(ev, h2.events.RequestReceived):
                    path = dict(ev.headers).get(":path", "")
                    print("seen %s" % path, flush=True)
                    if "Stall" in path:
                        stalled.add(ev.stream_id)
                    else:
                        bodies[ev.stream_id] = b""
                elif isinstance(ev, h2.events.DataReceived):
                    if ev.stream_id in stalled:
                        if ev.flow_controlled_length:
                            c.increment_flow_control_window(ev.flow_controlled_length)
                    else:
                        bodies[ev.stream_id] = bodies.get(ev.stream_id, b"") + ev.data
                        c.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id in bodies:
                    sid = ev.stream_id
                    c.send_headers(sid, [(":status", "200"), ("content-type", "application/grpc")])
                    c.send_data(sid, bodies.pop(sid))
                    c.send_headers(sid, [("grpc-status", "0")], end_stream=True)
                elif isinstance(ev, h2.events.StreamReset):
                    stalled.discard(ev.stream_id)
                    bodies.pop(ev.stream_id, None)
            out = c.data_to_send()
            if out:
                conn.sendall(out)
    except OSError:
        return


def main():
    # The test stops us with SIGTERM: that is the normal end, exit 0.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    mode, port = sys.argv[1], int(sys.argv[2])
    serve = {"hangup": serve_hangup, "stall": serve_stall}[mode]
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(64)
    print("listening", flush=True)
    while True:
        conn, _ = ls.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
