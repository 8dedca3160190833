#!/usr/bin/python3
"""Misbehaving HTTP/2 clients for switchyard's limit tests (python3-h2).

Usage: h2abuse.py MODE PORT [ARG]. Prints one result line and exits 0 when
switchyard behaved as expected, 1 otherwise. Every loop is bounded in count
and time; only 127.0.0.1 is contacted.
SPDX-License-Identifier: MIT
"""
import socket
import struct
import sys
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import hpack

PATH = "/sy.test.Echo/ServerStream"


def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def echo_request(response_size=0, response_count=1, payload=b""):
    """EchoRequest{payload=1, response_size=2, response_count=3}, gRPC-framed."""
    msg = b""
    if payload:
        msg += b"\x0a" + varint(len(payload)) + payload
    if response_size:
        msg += b"\x10" + varint(response_size)
    if response_count:
        msg += b"\x18" + varint(response_count)
    return b"\x00" + struct.pack(">I", len(msg)) + msg


def headers(port, path=PATH, extra=()):
    return [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", path),
        (":authority", "127.0.0.1:%d" % port),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ] + list(extra)


def connect(port, settings=None, rcvbuf=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(("127.0.0.1", port))
    s.settimeout(5)
    c = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
    )
    c.initiate_connection()
    if settings:
        c.update_settings(settings)
    s.sendall(c.data_to_send())
    return s, c


def pump(s, c, until, timeout=5.0):
    """Reads and handles events until until(event) is true; returns the event
    or None on timeout or EOF."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        s.settimeout(max(0.05, deadline - time.time()))
        try:
            data = s.recv(65536)
        except socket.timeout:
            return None
        except ConnectionResetError:
            return "reset"
        if not data:
            return "eof"
        try:
            events = c.receive_data(data)
        except h2.exceptions.ProtocolError:
            return "protocol-error"
        out = c.data_to_send()
        if out:
            try:
                s.sendall(out)
            except OSError:
                pass
        for ev in events:
            if until(ev):
                return ev
    return None


def wait_settings(s, c):
    return pump(s, c, lambda e: isinstance(e, h2.events.RemoteSettingsChanged))


def mode_refuse(port, limit):
    """Opens limit+5 streams after the limit was acknowledged: exactly 5 are
    refused with REFUSED_STREAM and the connection stays up."""
    s, c = connect(port)
    wait_settings(s, c)
    announced = c.remote_settings.max_concurrent_streams
    if announced != limit:
        print("announced MAX_CONCURRENT_STREAMS %s, expected %d" % (announced, limit))
        return 1
    # Pretend the peer allowed more, to be the misbehaving client.
    c.remote_settings[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS] = 100000
    c.remote_settings.acknowledge()
    for _ in range(limit + 5):
        sid = c.get_next_available_stream_id()
        c.send_headers(sid, headers(port))  # no END_STREAM: the stream stays open
    s.sendall(c.data_to_send())
    refused = []
    closed = None
    deadline = time.time() + 5
    while len(refused) < 5 and closed is None and time.time() < deadline:
        s.settimeout(max(0.05, deadline - time.time()))
        try:
            data = s.recv(65536)
        except socket.timeout:
            break
        if not data:
            closed = "eof"
            break
        for ev in c.receive_data(data):
            if isinstance(ev, h2.events.StreamReset):
                refused.append((ev.stream_id, ev.error_code))
            elif isinstance(ev, h2.events.ConnectionTerminated):
                closed = ev
        out = c.data_to_send()
        if out:
            s.sendall(out)
    if closed is not None:
        print("connection closed instead of refusing streams: %s" % closed)
        return 1
    c.ping(b"12345678")
    s.sendall(c.data_to_send())
    ack = pump(s, c, lambda e: isinstance(e, h2.events.PingAckReceived), 5)
    ok = (len(refused) == 5 and all(code == h2.errors.ErrorCodes.REFUSED_STREAM
                                   for _, code in refused) and ack is not None
          and not isinstance(ack, str))
    print("refused=%s ping_ack=%s" % (refused, ack is not None))
    return 0 if ok else 1


def mode_rapid_reset(port, _):
    """HEADERS + RST_STREAM in a loop: switchyard must answer GOAWAY."""
    s, c = connect(port)
    wait_settings(s, c)
    s.setblocking(False)
    sent = 0
    deadline = time.time() + 20
    while sent < 20000 and time.time() < deadline:
        try:
            sid = c.get_next_available_stream_id()
            c.send_headers(sid, headers(port), end_stream=True)
            c.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
            s.sendall(c.data_to_send())
            sent += 1
        except (BlockingIOError, h2.exceptions.ProtocolError):
            time.sleep(0.001)
        except OSError:
            break
        if sent % 100 == 0:
            try:
                data = s.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                break
            if not data:
                break
            try:
                for ev in c.receive_data(data):
                    if isinstance(ev, h2.events.ConnectionTerminated):
                        print("goaway after %d resets: %s" % (sent, ev.error_code))
                        return 0
            except h2.exceptions.ProtocolError:
                pass
    s.setblocking(True)
    ev = pump(s, c, lambda e: isinstance(e, h2.events.ConnectionTerminated), 5)
    if isinstance(ev, h2.events.ConnectionTerminated) or ev in ("eof", "reset"):
        print("closed after %d resets: %s" % (sent, ev))
        return 0
    print("no GOAWAY after %d HEADERS+RST_STREAM" % sent)
    return 1


def mode_ping_flood(port, _):
    """PINGs without reading: switchyard stops reading us or closes us."""
    s, c = connect(port, rcvbuf=4096)
    wait_settings(s, c)
    ping = b"\x00\x00\x08\x06\x00\x00\x00\x00\x00" + b"abcdefgh"
    s.settimeout(3)
    sent = 0
    deadline = time.time() + 30
    while sent < 2000000 and time.time() < deadline:
        try:
            s.sendall(ping * 64)
            sent += 64
        except socket.timeout:
            print("switchyard stopped reading after %d pings" % sent)
            return 0
        except OSError as e:
            print("switchyard closed the connection after %d pings: %s" % (sent, e))
            return 0
    print("switchyard kept reading %d pings it could not answer" % sent)
    return 1


def mode_zero_window(port, streams):
    """Opens |streams| server-streaming calls with every window at zero and
    holds them for a while (the C test watches memory and other clients)."""
    s, c = connect(port, settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
    wait_settings(s, c)
    for _ in range(streams):
        sid = c.get_next_available_stream_id()
        c.send_headers(sid, headers(port))
        c.send_data(sid, echo_request(response_size=65536, response_count=1000),
                    end_stream=True)
    s.sendall(c.data_to_send())
    time.sleep(float(sys.argv[4]) if len(sys.argv) > 4 else 3)
    print("held %d zero-window streams" % streams)
    return 0


def mode_stalled_reader(port, limit):
    """One server-streaming call with every window at zero: the client never
    reads its stream but answers PINGs (h2 acknowledges them), so the
    connection stays alive; switchyard resets the stream at
    stream_idle_timeout. Gives up after |limit| seconds."""
    s, c = connect(port, settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
    wait_settings(s, c)
    sid = c.get_next_available_stream_id()
    c.send_headers(sid, headers(port))
    c.send_data(sid, echo_request(response_size=65536, response_count=1000), end_stream=True)
    s.sendall(c.data_to_send())
    t0 = time.time()
    ev = pump(s, c, lambda e: isinstance(e, (h2.events.StreamReset, h2.events.ConnectionTerminated))
              or (isinstance(e, h2.events.StreamEnded) and e.stream_id == sid), limit or 30)
    if ev is None or isinstance(ev, str):
        print("stream still open after %.1fs (%s)" % (time.time() - t0, ev))
        return 1
    code = getattr(ev, "error_code", None)
    print("stream ended after %.1fs (%s, code %s)" % (time.time() - t0, type(ev).__name__,
                                                      int(code) if code is not None else "-"))
    return 0


def mode_upload_stall(port, streams):
    """Opens |streams| calls to /sy.test.Echo/Stall (a backend that never
    reads them) and sends each as much request body as switchyard's windows
    allow, for a few seconds: switchyard must hold at most its stream buffer
    per stream, and other calls on the shared backend connection go on."""
    s, c = connect(port)
    wait_settings(s, c)
    sids = []
    for _ in range(streams):
        sid = c.get_next_available_stream_id()
        c.send_headers(sid, headers(port, path="/sy.test.Echo/Stall"))
        # one message announced at 3 MiB: its bytes keep coming
        c.send_data(sid, b"\x00" + struct.pack(">I", 3 << 20))
        sids.append(sid)
    s.sendall(c.data_to_send())
    sent, chunk = 0, b"\x00" * 16384
    end = time.time() + (float(sys.argv[4]) if len(sys.argv) > 4 else 4)
    while time.time() < end:
        for sid in sids:
            room = min(c.local_flow_control_window(sid), c.max_outbound_frame_size, len(chunk))
            if room > 0:
                c.send_data(sid, chunk[:room])
                sent += room
        out = c.data_to_send()
        if out:
            s.sendall(out)
        s.settimeout(0.05)
        try:
            data = s.recv(65536)
        except socket.timeout:
            continue
        if not data:
            print("switchyard closed the connection after %d KiB" % (sent // 1024))
            return 1
        c.receive_data(data)
        out = c.data_to_send()
        if out:
            s.sendall(out)
    print("uploaded %d KiB on %d stalled streams" % (sent // 1024, streams))
    return 0


def mode_dribble(port, delay_ms):
    """Starts a header block (|delay_ms| after the SETTINGS exchange) and never
    finishes it: switchyard closes us."""
    s, c = connect(port)
    wait_settings(s, c)
    time.sleep(delay_ms / 1000.0)
    block = hpack.Encoder().encode(headers(port))
    # HEADERS on stream 1 without END_HEADERS, and no CONTINUATION ever.
    s.sendall(struct.pack(">I", len(block))[1:] + b"\x01\x00" + struct.pack(">I", 1) + block)
    t0 = time.time()
    ev = pump(s, c, lambda e: isinstance(e, h2.events.ConnectionTerminated), 30)
    if ev is None:
        print("still open after 30s")
        return 1
    print("closed after %.1fs (%s)" % (time.time() - t0, ev))
    return 0


def mode_idle(port, _):
    """An idle connection: switchyard closes it (GOAWAY, then EOF)."""
    s, c = connect(port)
    wait_settings(s, c)
    t0 = time.time()
    ev = pump(s, c, lambda e: isinstance(e, h2.events.ConnectionTerminated), 30)
    if ev is None:
        print("still open after 30s")
        return 1
    print("closed after %.1fs (%s)" % (time.time() - t0, ev))
    return 0


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def unary_call(s, c, port, payload):
    """One Unary call on connection (s, c): the echoed bytes and grpc-status."""
    sid = c.get_next_available_stream_id()
    c.send_headers(sid, headers(port, "/sy.test.Echo/Unary"))
    c.send_data(sid, echo_request(payload=payload), end_stream=True)
    s.sendall(c.data_to_send())
    body, status = b"", None

    def done(e):
        nonlocal body, status
        if isinstance(e, h2.events.DataReceived) and e.stream_id == sid:
            body += e.data
            c.acknowledge_received_data(e.flow_controlled_length, sid)
        if isinstance(e, (h2.events.ResponseReceived, h2.events.TrailersReceived)):
            status = dict(e.headers).get("grpc-status", status)
        return isinstance(e, (h2.events.StreamEnded, h2.events.StreamReset)) and e.stream_id == sid

    pump(s, c, done, 5)
    return body, status


def mode_idle_many(port, conns):
    """Opens |conns| HTTP/2 connections (SETTINGS exchanged both ways) and keeps
    them idle; reads switchyard's RSS (pid: argv[4]) before, just after, and
    after 4 s idle; then makes a call on each connection (its session must
    work after its idle time) and reads the RSS again after 4 s more. Prints
    the figures; exits 0 when every call came back whole."""
    pid = int(sys.argv[4])
    rss0 = rss_kb(pid)
    socks = []
    for _ in range(conns):
        s, c = connect(port)
        if not isinstance(wait_settings(s, c), h2.events.RemoteSettingsChanged):
            print("connection %d: no SETTINGS" % len(socks))
            return 1
        socks.append((s, c))
    time.sleep(0.5)
    rss_open = rss_kb(pid)
    time.sleep(4)
    rss_idle = rss_kb(pid)
    payload = bytes(range(200))
    ok = 0
    for s, c in socks:
        body, status = unary_call(s, c, port, payload)
        ok += status == "0" and payload in body
    time.sleep(4)
    rss_after = rss_kb(pid)
    print("conns=%d rss0=%d open=%d idle=%d after_calls=%d open_per_conn=%.2f idle_per_conn=%.2f "
          "after_calls_per_conn=%.2f calls_ok=%d/%d" % (
              conns, rss0, rss_open, rss_idle, rss_after, (rss_open - rss0) / conns,
              (rss_idle - rss0) / conns, (rss_after - rss0) / conns, ok, conns))
    for s, _ in socks:
        s.close()
    return 0 if ok == conns else 1


def mode_big_headers(port, size):
    """One call with |size| bytes of metadata: trailers-only RESOURCE_EXHAUSTED."""
    s, c = connect(port)
    wait_settings(s, c)
    sid = c.get_next_available_stream_id()
    c.send_headers(sid, headers(port, extra=[("x-big", "a" * size)]))
    c.send_data(sid, echo_request(), end_stream=True)
    s.sendall(c.data_to_send())
    ev = pump(s, c, lambda e: isinstance(e, (h2.events.ResponseReceived,
                                             h2.events.TrailersReceived)), 5)
    if not isinstance(ev, (h2.events.ResponseReceived, h2.events.TrailersReceived)):
        print("no response: %s" % ev)
        return 1
    status = dict(ev.headers).get("grpc-status")
    print("grpc-status %s" % status)
    return 0 if status == "8" else 1


def mode_no_ping_ack(port, _):
    """Reads raw bytes but never answers them (no PING ACK): keepalive closes us."""
    s, c = connect(port)
    wait_settings(s, c)
    t0 = time.time()
    s.settimeout(1)
    while time.time() - t0 < 30:
        try:
            if not s.recv(65536):  # never fed to h2: no ACK goes out
                print("closed after %.1fs" % (time.time() - t0))
                return 0
        except socket.timeout:
            continue
        except ConnectionResetError:
            print("closed after %.1fs (reset)" % (time.time() - t0))
            return 0
    print("still open after 30s")
    return 1


def mode_ping_ack(port, seconds):
    """Answers every PING for |seconds| and sends nothing else: prints how many
    PINGs came and whether the connection is still open."""
    s, c = connect(port)
    wait_settings(s, c)
    pings = 0
    deadline = time.time() + seconds
    while time.time() < deadline:
        ev = pump(s, c, lambda e: isinstance(e, (h2.events.PingReceived,
                                                  h2.events.ConnectionTerminated)),
                  deadline - time.time())
        if isinstance(ev, h2.events.PingReceived):
            pings += 1  # pump() sent the ACK
        elif ev is not None:
            print("pings %d closed (%s)" % (pings, ev))
            return 0
    print("pings %d open" % pings)
    return 0


def mode_max_conns(port, limit):
    """Opens limit+3 connections: exactly |limit| get SETTINGS, the rest EOF."""
    served = closed = 0
    socks = []
    for _ in range(limit + 3):
        s, c = connect(port)
        socks.append(s)
        ev = wait_settings(s, c)
        if isinstance(ev, h2.events.RemoteSettingsChanged):
            served += 1
        elif ev in ("eof", "reset"):
            closed += 1
    print("served=%d closed=%d" % (served, closed))
    return 0 if served == limit and closed == 3 else 1


def mode_timeout_zero(port, _):
    """A call whose grpc-timeout is 0 (a deadline that passed already): a
    trailers-only DEADLINE_EXCEEDED, and nothing reaches a backend."""
    s, c = connect(port)
    wait_settings(s, c)
    sid = c.get_next_available_stream_id()
    c.send_headers(sid, headers(port, "/sy.test.Echo/Unary", [("grpc-timeout", "0m")]))
    c.send_data(sid, echo_request(), end_stream=True)
    s.sendall(c.data_to_send())
    ev = pump(s, c, lambda e: isinstance(e, h2.events.ResponseReceived))
    if not isinstance(ev, h2.events.ResponseReceived):
        print("no response: %r" % (ev,))
        return 1
    hdrs = dict(ev.headers)
    status = hdrs.get("grpc-status")
    print("grpc-status %s (%s), end_stream %s" % (status, hdrs.get("grpc-message", ""),
                                                  ev.stream_ended is not None))
    return 0 if status == "4" and ev.stream_ended is not None else 1


def mode_slow_body(port, calls):
    """|calls| unary calls one after the other on one connection, each sending
    its HEADERS first and its message 300 ms later. Prints the grpc-status of
    each ("-" for a reset stream); exits 0 once every call ended."""
    s, c = connect(port)
    wait_settings(s, c)
    seen = []
    for _ in range(calls):
        sid = c.get_next_available_stream_id()
        c.send_headers(sid, headers(port, "/sy.test.Echo/Unary"))
        s.sendall(c.data_to_send())
        time.sleep(0.3)
        try:
            c.send_data(sid, echo_request(payload=b"x"), end_stream=True)
            s.sendall(c.data_to_send())
        except h2.exceptions.StreamClosedError:
            pass
        status = {}

        def done(e, sid=sid, status=status):
            if getattr(e, "stream_id", None) != sid:
                return False
            if isinstance(e, (h2.events.ResponseReceived, h2.events.TrailersReceived)):
                status.update(dict(e.headers))
            return isinstance(e, (h2.events.StreamEnded, h2.events.StreamReset))

        if pump(s, c, done, timeout=10) is None:
            print("call on stream %d never ended" % sid)
            return 1
        seen.append(status.get("grpc-status", "-"))
    print("statuses: %s" % " ".join(seen))
    return 0


# ---- raw frames: for what python-h2 refuses to send ----

def raw_frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", sid) + payload


def raw_headers(port, sid, path, extra=(), end_stream=False):
    block = hpack.Encoder().encode(headers(port, path, extra))
    return raw_frame(0x1, 0x4 | (0x1 if end_stream else 0), sid, block)


class RawReader:
    """Splits what the server sends into frames; remembers a GOAWAY."""

    def __init__(self, s):
        self.s, self.buf, self.goaway = s, b"", None

    def frames(self, timeout):
        self.s.settimeout(timeout)
        try:
            data = self.s.recv(65536)
        except socket.timeout:
            return []
        except (ConnectionResetError, BlockingIOError):
            return []
        if not data:
            raise EOFError()
        self.buf += data
        out = []
        while len(self.buf) >= 9:
            n = int.from_bytes(self.buf[0:3], "big")
            if len(self.buf) < 9 + n:
                break
            ftype, flags = self.buf[3], self.buf[4]
            sid = int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF
            payload = self.buf[9:9 + n]
            self.buf = self.buf[9 + n:]
            if ftype == 0x7 and len(payload) >= 8:
                self.goaway = int.from_bytes(payload[4:8], "big")
            out.append((ftype, flags, sid, payload))
        return out


def raw_connect(port):
    s, c = connect(port)
    wait_settings(s, c)
    out = c.data_to_send()
    if out:
        s.sendall(out)
    return s


def mode_cancel_burst(port, n):
    """|n| calls, each cancelled (RST_STREAM CANCEL) in the same write that
    starts it, then one whole call: the cancelled calls' request heads may still
    wait in a backend session's queue (switchyard hands them over uncopied).
    Prints the last call's grpc-status."""
    s = raw_connect(port)
    r = RawReader(s)
    dec = hpack.Decoder()
    batch = b""
    sid = 1
    for _ in range(n):
        # never indexed: nothing but the call holds this field's buffer
        pad = hpack.NeverIndexedHeaderTuple("x-cancelled", "%d-" % sid + "v" * 200)
        batch += raw_headers(port, sid, "/sy.test.Echo/Unary", [pad])
        batch += raw_frame(0x3, 0x0, sid, struct.pack(">I", 0x8))
        sid += 2
    batch += raw_headers(port, sid, "/sy.test.Echo/Unary")
    batch += raw_frame(0x0, 0x1, sid, echo_request())
    s.sendall(batch)
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            frames = r.frames(0.2)
        except (EOFError, OSError):
            print("connection closed")
            return 1
        for ftype, flags, fsid, payload in frames:
            if ftype != 0x1:
                continue
            fields = dict(dec.decode(payload))  # every block: the table stays in step
            if fsid == sid and flags & 0x1:
                print("last call grpc-status %s" % fields.get("grpc-status", "-"))
                return 0
    print("last call never ended")
    return 1


def mode_made_you_reset(port, _):
    """Streams whose DATA contradicts their content-length, so that switchyard
    itself must reset each one after its call started (CVE-2025-8671): the
    connection gets GOAWAY once its budget of early stream ends is spent.
    Prints how many streams it took."""
    s = raw_connect(port)
    r = RawReader(s)
    sid = 1
    try:
        while sid < 2 * 20000:
            batch = b""
            for _ in range(50):
                batch += raw_headers(port, sid, "/sy.test.Echo/Unary", [("content-length", "10")])
                batch += raw_frame(0x0, 0x1, sid, echo_request())
                sid += 2
            s.sendall(batch)
            for _ in r.frames(0.01):
                pass
            if r.goaway is not None:
                break
        for _ in range(100):
            if r.goaway is not None:
                break
            r.frames(0.05)
    except (EOFError, OSError):
        pass
    streams = (sid - 1) // 2
    if r.goaway is None:
        print("no GOAWAY after %d streams switchyard had to reset" % streams)
        return 1
    print("goaway %d after %d streams" % (r.goaway, streams))
    return 0


def stream_id_abuse(port, first, again):
    """A complete call on stream |first|, then HEADERS on stream |again|
    (closed or skipped): RFC 9113 §5.1.1 wants GOAWAY PROTOCOL_ERROR."""
    s = raw_connect(port)
    r = RawReader(s)
    s.sendall(raw_headers(port, first, "/sy.test.Echo/Unary") +
              raw_frame(0x0, 0x1, first, echo_request()))
    done, deadline = False, time.time() + 5
    try:
        while not done and time.time() < deadline:
            for ftype, flags, sid, _ in r.frames(0.1):
                if sid == first and ftype in (0x0, 0x1) and flags & 0x1:
                    done = True
                if sid == first and ftype == 0x3:
                    done = True
        if not done:
            print("the first call never ended")
            return 1
        s.sendall(raw_headers(port, again, "/sy.test.Echo/Unary", end_stream=True))
        deadline = time.time() + 5
        while r.goaway is None and time.time() < deadline:
            r.frames(0.1)
    except (EOFError, OSError):
        pass
    if r.goaway is None:
        print("no GOAWAY after HEADERS on stream %d" % again)
        return 1
    print("goaway %d" % r.goaway)
    return 0 if r.goaway == 1 else 1


def mode_reused_stream_id(port, _):
    return stream_id_abuse(port, 1, 1)


def mode_decreasing_stream_id(port, _):
    return stream_id_abuse(port, 5, 3)


MODES = {
    "made-you-reset": mode_made_you_reset,
    "reused-stream-id": mode_reused_stream_id,
    "decreasing-stream-id": mode_decreasing_stream_id,
    "slow-body": mode_slow_body,
    "timeout-zero": mode_timeout_zero,
    "no-ping-ack": mode_no_ping_ack,
    "ping-ack": mode_ping_ack,
    "cancel-burst": mode_cancel_burst,
    "max-conns": mode_max_conns,
    "refuse": mode_refuse,
    "rapid-reset": mode_rapid_reset,
    "ping-flood": mode_ping_flood,
    "zero-window": mode_zero_window,
    "stalled-reader": mode_stalled_reader,
    "upload-stall": mode_upload_stall,
    "dribble": mode_dribble,
    "idle": mode_idle,
    "idle-many": mode_idle_many,
    "big-headers": mode_big_headers,
}

if __name__ == "__main__":
    arg = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    sys.exit(MODES[sys.argv[1]](int(sys.argv[2]), arg))
