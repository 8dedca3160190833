#!/usr/bin/env bash
# bench/run.sh: switchyard against direct calls, nginx and HAProxy, side by side.
#
# On loopback, with free ports picked at run time, it starts one echo backend
# (build/bench/sy-echo) and, per target, the proxy in front of it, then measures:
#   idle    RSS per idle HTTP/2 connection (fresh process, BENCH_IDLE_CONNS conns, read
#           after they sat idle BENCH_IDLE_SETTLE seconds)
#   c1      closed-loop latency at concurrency 1 (h2load -c1 -m1)
#   rate    latency and CPU per call at a fixed rate (BENCH_RATE calls/s over
#           BENCH_RATE_CONNS connections, one call in flight on each)
#   sat     saturation: h2load -c BENCH_CONNS -m BENCH_STREAMS; calls/s, latency,
#           proxy CPU time per call (utime+stime from /proc), backend CPU use
#   stream  one bidi stream of BENCH_STREAM_MSG-byte messages: MB/s, CPU per message
#   bidi    BENCH_CONNS x BENCH_STREAMS bidi streams of BENCH_PAYLOAD-byte messages, one in
#           flight per stream (sy-benchclient bidi), three ways: at saturation; paced to
#           BENCH_BIDI_RATE messages/s in all; at saturation with a new stream every
#           BENCH_CHURN messages. Messages/s and the proxy's CPU per echoed message
#   rest    (target switchyard-rest) the saturation case as REST: GET /v1/echo/{payload}
#           with the payload base64url in the path, transcoded by switchyard
#           (bench/peers/echo_rest.proto) into the same Unary call, JSON back
#   web     switchyard-w1/-w2 only: the sat case as gRPC-Web (application/grpc-web+proto,
#           no te) over HTTP/2, and web_h1 over HTTP/1.1 (h2load --h1, one call
#           per connection at a time, CONNS x STREAMS connections): calls/s and
#           switchyard's CPU per call beside native gRPC's
# Every call is a real gRPC unary call (5-byte prefix + protobuf, content-type
# application/grpc, te: trailers). Before the load cases, sy-benchclient sends
# BENCH_CHECK_CALLS calls through the target and checks each response in full
# (echoed message, grpc-status 0 in trailers); after each h2load run the echo
# backend's count of cleanly completed calls must cover every 2xx h2load saw, so
# a proxy answering HTTP 200 with an error status (trailers-only) is caught.
#
# Results: a table on stdout, build/bench/results.md, build/bench/results.json
# and bench/results/latest.json. Every process is started in the foreground with
# its own temp prefix and stopped by PID at the end, on error and on Ctrl-C.
#
# Environment (defaults in brackets):
#   BENCH_DURATION [5]        seconds per load case
#   BENCH_CONNS [8] BENCH_STREAMS [16]   saturation: h2load -c and -m
#   BENCH_PAYLOAD [100]       unary payload bytes (protobuf bytes field)
#   BENCH_RATE [5000]         fixed-rate case, calls/s in total
#   BENCH_RATE_CONNS [8]      fixed-rate case, connections (h2load -c, -m 1)
#   BENCH_BIDI_RATE [10000]   paced bidi case, messages/s in total
#   BENCH_CHURN [10]          bidi churn case, messages per stream
#   BENCH_STREAM_MSG [65536]  streaming case, payload bytes per message
#   BENCH_IDLE_CONNS [2000]   idle-connection case, connections
#   BENCH_IDLE_SETTLE [4]     idle-connection case, seconds idle before RSS is read
#   BENCH_ROUNDS [1]          rounds; targets run interleaved, medians reported
#   BENCH_TARGETS             subset of: direct switchyard-w1 switchyard-w2 nginx haproxy
#                             switchyard-trace0.01 switchyard-trace1 (1 worker, tracing at
#                             sample_ratio 0.01 and 1.0, spans exported over OTLP/HTTP to a
#                             local receiver; switchyard-w1 is the same with export off)
#                             switchyard-rest (REST/JSON transcoding of the same call)
#                             switchyard-rr3, switchyard-lr3 (1 worker, three echo backends,
#                             round_robin and least_request: what a policy costs per call;
#                             saturation case only)
#   BENCH_PIN [auto]          auto/on: load generator + backend on CPU 0, single-thread
#                             proxies on the last CPU (needs 2+ CPUs); off: no pinning
#   BENCH_WORKERS             e.g. 1,2,4: instead of the comparison, the scaling run:
#                             switchyard with each number of workers, pinned to that many
#                             CPUs, the backend and h2load on the CPUs left (at least one);
#                             saturation calls/s and CPU per call per worker count. Counts
#                             that leave no CPU for the load generator are skipped.
# SPDX-License-Identifier: MIT
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$top/build}
SY_BIN=${SY_BIN:-$BUILD/switchyard}
ECHO_BIN=${ECHO_BIN:-$BUILD/bench/sy-echo}
CLIENT_BIN=${CLIENT_BIN:-$BUILD/bench/sy-benchclient}
OUT=${BENCH_OUT:-$BUILD/bench}

DURATION=${BENCH_DURATION:-5}
CONNS=${BENCH_CONNS:-8}
STREAMS=${BENCH_STREAMS:-16}
PAYLOAD=${BENCH_PAYLOAD:-100}
RATE=${BENCH_RATE:-5000}
RATE_CONNS=${BENCH_RATE_CONNS:-8}
BIDI_RATE=${BENCH_BIDI_RATE:-10000}
CHURN=${BENCH_CHURN:-10}
SCALE_WORKERS=${BENCH_WORKERS:-}
STREAM_MSG=${BENCH_STREAM_MSG:-65536}
IDLE_CONNS=${BENCH_IDLE_CONNS:-2000}
IDLE_SETTLE=${BENCH_IDLE_SETTLE:-4}
ROUNDS=${BENCH_ROUNDS:-1}
CHECK_CALLS=${BENCH_CHECK_CALLS:-2000}
TARGETS=${BENCH_TARGETS:-direct switchyard-w1 switchyard-w2 switchyard-trace0.01 switchyard-trace1 switchyard-rest switchyard-rr3 switchyard-lr3 nginx haproxy}
REST_DESC=${REST_DESC:-$BUILD/bench/echo_rest.pb}
PIN=${BENCH_PIN:-auto}
URL_PATH=/sy.test.Echo/Unary
H2LOAD_BODY=() # set per case: -d FILE, or nothing for REST GETs (headers: HDRS)
H2LOAD_PATH=$URL_PATH

log() { printf 'bench: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

for tool in h2load python3 taskset setsid; do
    command -v "$tool" >/dev/null || die "$tool not found (run: bash scripts/deps.sh --bench)"
done
for bin in "$SY_BIN" "$ECHO_BIN" "$CLIENT_BIN"; do
    [ -x "$bin" ] || die "$bin not built (run: make bench)"
done
NGINX=$(command -v nginx || true)
[ -n "$NGINX" ] || NGINX=$([ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx || true)
HAPROXY=$(command -v haproxy || true)
[ -n "$HAPROXY" ] || HAPROXY=$([ -x /usr/sbin/haproxy ] && echo /usr/sbin/haproxy || true)

ncpu=$(nproc)
if [ "$PIN" = auto ]; then
    if [ "$ncpu" -ge 2 ]; then PIN=on; else PIN=off; fi
fi
if [ "$PIN" = on ]; then
    LOAD_CPUS=0
    PROXY_CPUS=$((ncpu - 1))
    ALL_CPUS=0-$((ncpu - 1))
fi

# Enough descriptors for the idle-connection case, in every child.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

work=$(mktemp -d "${TMPDIR:-/tmp}/sy-bench.XXXXXX")
raw=$work/raw.tsv
: >"$raw"
PIDS=()

# Stops one process by PID: SIGTERM, up to 5 s, then SIGKILL; its children
# (nginx's workers) are found through /proc and stopped the same way.
stop_pid() {
    local pid=$1 kids="" k i
    kill -0 "$pid" 2>/dev/null || return 0
    for k in /proc/"$pid"/task/*/children; do
        kids+=" $(cat "$k" 2>/dev/null || true)"
    done
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for k in $kids; do
        kill -KILL "$k" 2>/dev/null || true
    done
}

cleanup() {
    local rc=$? i
    trap - EXIT INT TERM
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        stop_pid "${PIDS[$i]}"
    done
    if [ "$rc" -ne 0 ] && [ -z "${BENCH_KEEP:-}" ]; then
        log "failed; logs were in $work (set BENCH_KEEP=1 to keep them)"
    fi
    [ -n "${BENCH_KEEP:-}" ] || rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM HUP

forget_pid() {
    local pid=$1 i
    for i in "${!PIDS[@]}"; do
        [ "${PIDS[$i]}" = "$pid" ] && unset 'PIDS[i]'
    done
    PIDS=("${PIDS[@]}")
}

pin() { # pin CPUS CMD...: runs CMD on CPUS when pinning is on
    local cpus=$1
    shift
    if [ "$PIN" = on ] && [ -n "$cpus" ]; then
        taskset -c "$cpus" "$@"
    else
        "$@"
    fi
}
# spawn CPUS CMD...: like pin, for `spawn ... &`, with $! the PID of CMD itself (the
# subshell execs setsid, which execs taskset, which execs CMD). setsid keeps a
# terminal's Ctrl-C away from the children: the trap stops them in order.
spawn() {
    local cpus=$1
    shift
    if [ "$PIN" = on ] && [ -n "$cpus" ]; then
        exec setsid taskset -c "$cpus" "$@"
    else
        exec setsid "$@"
    fi
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() { # wait_port PORT PID LOGFILE
    local i
    for i in $(seq 100); do
        kill -0 "$2" 2>/dev/null || {
            cat "$3" >&2 || true
            die "process $2 exited before listening on $1"
        }
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    die "nothing listens on port $1 after 10 s"
}

# CPU ticks (utime+stime) of a process and its children processes.
proc_pids() {
    local pid=$1 k
    echo "$pid"
    for k in /proc/"$pid"/task/*/children; do
        cat "$k" 2>/dev/null || true
    done | tr ' ' '\n' | grep -v '^$' || true
}
cpu_ticks() {
    local t=0 p
    for p in $(proc_pids "$1"); do
        t=$((t + $(awk '{print $14 + $15}' /proc/"$p"/stat 2>/dev/null || echo 0)))
    done
    echo "$t"
}
mem_kb() { # mem_kb PID VmRSS|VmHWM: summed over the process and its children
    local t=0 p v
    for p in $(proc_pids "$1"); do
        v=$(awk -v k="$2:" '$1 == k {print $2}' /proc/"$p"/status 2>/dev/null || true)
        t=$((t + ${v:-0}))
    done
    echo "$t"
}
CLK_TCK=$(getconf CLK_TCK)

record() { printf '%s\t%s\t%s\t%s\n' "$round" "$target" "$1" "$2" >>"$raw"; }

echo_ok_of() { # echo_ok_of PID OUT: that backend's count of calls completed with trailers
    local before
    before=$(grep -c echo-stats "$2" || true)
    kill -USR1 "$1"
    for _ in $(seq 50); do
        [ "$(grep -c echo-stats "$2" || true)" -gt "$before" ] && break
        sleep 0.02
    done
    grep echo-stats "$2" | tail -n 1 | sed 's/.* ok=\([0-9]*\).*/\1/'
}

echo_ok() { # the backends' count of calls completed with trailers (the extra ones of rr3/lr3 too)
    local n i
    n=$(echo_ok_of "$echo_pid" "$work/echo.out")
    for i in "${!EXTRA_ECHO_PIDS[@]}"; do
        n=$((n + $(echo_ok_of "${EXTRA_ECHO_PIDS[$i]}" "$work/echo$((i + 2)).out")))
    done
    echo "$n"
}

# ---- the request body: sy.test.EchoRequest{payload = PAYLOAD bytes}, gRPC-framed ----
body=$work/request.bin
python3 - "$PAYLOAD" "$body" <<'EOF'
import struct, sys
n, path = int(sys.argv[1]), sys.argv[2]
v, varint = n, b""
while True:
    b = v & 0x7F
    v >>= 7
    varint += bytes([b | (0x80 if v else 0)])
    if not v:
        break
pb = b"\x0a" + varint + bytes(i % 251 for i in range(n))
open(path, "wb").write(b"\x00" + struct.pack(">I", len(pb)) + pb)
EOF
# The REST case's path: the same payload, base64url (no padding) in the path.
REST_PATH=/v1/echo/$(python3 -c 'import base64, sys
n = int(sys.argv[1])
print(base64.urlsafe_b64encode(bytes(i % 251 for i in range(n))).decode().rstrip("="))' "$PAYLOAD")

# ---- the backend ----
# start_echo CPUS ARGS...: the echo backend on CPUS; sets echo_pid, backend_port
start_echo() {
    local cpus=$1
    shift
    spawn "$cpus" "$ECHO_BIN" -p 0 "$@" >"$work/echo.out" 2>"$work/echo.err" &
    echo_pid=$!
    PIDS+=("$echo_pid")
    for _ in $(seq 50); do
        grep -q '^listening' "$work/echo.out" && break
        sleep 0.1
    done
    backend_port=$(awk '/^listening/ {print $2}' "$work/echo.out")
    [ -n "$backend_port" ] || die "echo backend did not start: $(cat "$work/echo.err")"
}
start_echo "${LOAD_CPUS:-}"
log "echo backend on 127.0.0.1:$backend_port (pid $echo_pid)"

# Two more echo backends for the policy targets (switchyard-rr3, -lr3).
EXTRA_ECHO_PIDS=() EXTRA_ECHO_PORTS=()
if [[ " $TARGETS " == *" switchyard-rr3 "* || " $TARGETS " == *" switchyard-lr3 "* ]]; then
    for i in 2 3; do
        spawn "${LOAD_CPUS:-}" "$ECHO_BIN" -p 0 >"$work/echo$i.out" 2>"$work/echo$i.err" &
        EXTRA_ECHO_PIDS+=($!)
        PIDS+=($!)
        for _ in $(seq 50); do
            grep -q '^listening' "$work/echo$i.out" && break
            sleep 0.1
        done
        EXTRA_ECHO_PORTS+=("$(awk '/^listening/ {print $2}' "$work/echo$i.out")")
        [ -n "${EXTRA_ECHO_PORTS[-1]}" ] || die "echo backend $i did not start"
    done
    log "policy targets: echo backends also on ports ${EXTRA_ECHO_PORTS[*]}"
fi

# ---- the OTLP receiver of the tracing targets (tests/integration/otel_peers.py) ----
otlp_port=
if [[ " $TARGETS " == *" switchyard-trace"* ]]; then
    otlp_port=$(free_port)
    spawn "${LOAD_CPUS:-}" python3 "$top/tests/integration/otel_peers.py" receiver "$otlp_port" \
        >/dev/null 2>"$work/otlp.err" &
    otlp_pid=$!
    PIDS+=("$otlp_pid")
    wait_port "$otlp_port" "$otlp_pid" "$work/otlp.err"
    log "OTLP receiver on 127.0.0.1:$otlp_port (pid $otlp_pid)"
fi

# ---- targets ----
# start_target NAME: sets target_pid (empty for direct) and target_port.
start_target() {
    local name=$1 prefix=$work/$1.$round.$RANDOM workers=1 cpus=${PROXY_CPUS:-} conf
    mkdir -p "$prefix"
    target_pid=
    if [ "$name" = direct ]; then
        target_port=$backend_port
        return 0
    fi
    target_port=$(free_port)
    case "$name" in
    switchyard-w2) workers=2 cpus=${ALL_CPUS:-} ;;
    switchyard-scale*) workers=${name#switchyard-scale} cpus=${SCALE_PROXY_CPUS:-} ;;
    esac
    fill() {
        sed -e "s|@LISTEN_PORT@|$target_port|g" -e "s|@BACKEND_PORT@|$backend_port|g" \
            -e "s|@PREFIX@|$prefix|g" -e "s|@WORKERS@|$workers|g" "$1" >"$2"
    }
    case "$name" in
    switchyard-*)
        conf=$prefix/switchyard.ini
        if [ "$name" = switchyard-rest ]; then
            fill "$top/bench/peers/switchyard-rest.ini.in" "$conf"
            sed -i "s|@REST_DESC@|$REST_DESC|" "$conf"
        else
            fill "$top/bench/peers/switchyard.ini.in" "$conf"
        fi
        case "$name" in
        switchyard-rr3 | switchyard-lr3)
            sed -i "s|^targets = .*|targets = 127.0.0.1:$backend_port, 127.0.0.1:${EXTRA_ECHO_PORTS[0]}, 127.0.0.1:${EXTRA_ECHO_PORTS[1]}|" "$conf"
            [ "$name" = switchyard-rr3 ] || echo "policy = least_request" >>"$conf"
            ;;
        switchyard-trace*)
            printf '\n[tracing]\nsample_ratio = %s\notlp_endpoint = http://127.0.0.1:%s/v1/traces\n' \
                "${name#switchyard-trace}" "$otlp_port" >>"$conf"
            ;;
        esac
        spawn "$cpus" "$SY_BIN" -c "$conf" >"$prefix/out.log" 2>&1 &
        ;;
    nginx)
        conf=$prefix/nginx.conf
        fill "$top/bench/peers/nginx.conf.in" "$conf"
        spawn "$cpus" "$NGINX" -p "$prefix/" -c "$conf" -e "$prefix/error.log" \
            -g 'daemon off; master_process on;' >"$prefix/out.log" 2>&1 &
        ;;
    haproxy)
        conf=$prefix/haproxy.cfg
        fill "$top/bench/peers/haproxy.cfg.in" "$conf"
        spawn "$cpus" "$HAPROXY" -db -f "$conf" >"$prefix/out.log" 2>&1 &
        ;;
    esac
    target_pid=$!
    PIDS+=("$target_pid")
    wait_port "$target_port" "$target_pid" "$prefix/out.log"
    sleep 0.2 # nginx: let the worker start
}

stop_target() {
    [ -n "$target_pid" ] || return 0
    stop_pid "$target_pid"
    forget_pid "$target_pid"
    target_pid=
}

# The process whose CPU and memory are measured: the proxy, or for direct the backend.
measured_pid() { echo "${target_pid:-$echo_pid}"; }

# h2load_run CASE H2LOAD-ARGS...: one h2load run; records its figures and the CPU
# time the measured process and the backend spent during it.
h2load_run() {
    local case=$1 out=$work/$target.$round.$1 pid t0 t1 b0 b1 w0 w1
    shift
    pid=$(measured_pid)
    t0=$(cpu_ticks "$pid")
    b0=$(cpu_ticks "$echo_pid")
    w0=$(date +%s%N)
    pin "${LOAD_CPUS:-}" python3 "$top/bench/report.py" rusage "$out.cpu" \
        h2load -t 1 -D "$DURATION" "${H2LOAD_BODY[@]}" "${HDRS[@]}" \
        --log-file="$out.log" "$@" "http://127.0.0.1:$target_port$H2LOAD_PATH" >"$out.txt" 2>&1 ||
        {
            cat "$out.txt" >&2
            die "$target: h2load ($case) failed"
        }
    w1=$(date +%s%N)
    t1=$(cpu_ticks "$pid")
    b1=$(cpu_ticks "$echo_pid")
    python3 "$top/bench/report.py" h2load "$out.txt" "$out.log" >"$out.kv" ||
        die "$target: h2load ($case): $(tail -n 8 "$out.txt")"
    rm -f "$out.log"
    while read -r k v; do record "$case.$k" "$v"; done <"$out.kv"
    record "$case.cpu_s" "$(awk -v t="$((t1 - t0))" -v hz="$CLK_TCK" 'BEGIN {print t / hz}')"
    record "$case.backend_cpu_s" "$(awk -v t="$((b1 - b0))" -v hz="$CLK_TCK" 'BEGIN {print t / hz}')"
    record "$case.wall_s" "$(awk -v t="$((w1 - w0))" 'BEGIN {print t / 1e9}')"
    record "$case.loadgen_cpu_s" "$(cat "$out.cpu")"
}

# Request headers of h2load's calls: native gRPC, or gRPC-Web for the web cases.
GRPC_HDRS=(-H 'content-type: application/grpc' -H 'te: trailers')
WEB_HDRS=(-H 'content-type: application/grpc-web+proto' -H 'x-grpc-web: 1')
HDRS=("${GRPC_HDRS[@]}")

h2load_value() { awk -v k="$2" '$1 == k {print $2}' "$work/$target.$round.$1.kv"; }

# Every 2xx h2load counted must be a call the backend completed with trailers;
# the backend may have completed up to CONNS*STREAMS more (in flight at the end).
check_counts() { # check_counts CASE OK_BEFORE OK_AFTER INFLIGHT
    local ok succeeded
    succeeded=$(h2load_value "$1" succeeded)
    ok=$(($3 - $2))
    record "$1.backend_ok" "$ok"
    if [ "$ok" -lt "$succeeded" ] || [ "$ok" -gt $((succeeded + $4)) ]; then
        die "$target ($1): h2load saw $succeeded successful responses but the backend completed $ok calls"
    fi
}

run_idle() {
    local pid rss0 rss1 client_pid
    start_target "$target"
    pid=$(measured_pid)
    sleep 0.3
    rss0=$(mem_kb "$pid" VmRSS)
    spawn "${LOAD_CPUS:-}" "$CLIENT_BIN" idle -p "$target_port" -c "$IDLE_CONNS" \
        >"$work/idle.out" 2>"$work/idle.err" &
    client_pid=$!
    PIDS+=("$client_pid")
    for _ in $(seq 300); do
        grep -q ready "$work/idle.out" && break
        kill -0 "$client_pid" 2>/dev/null || break
        sleep 0.1
    done
    grep -q ready "$work/idle.out" ||
        die "$target: $IDLE_CONNS idle connections did not open: $(cat "$work/idle.err")"
    # Idle for a few seconds, as idle connections are (switchyard gives an
    # idle connection's frame buffer back after 2 s; the peers get as long).
    sleep "$IDLE_SETTLE"
    rss1=$(mem_kb "$pid" VmRSS)
    stop_pid "$client_pid"
    forget_pid "$client_pid"
    grep -q 'closed=0' "$work/idle.out" || log "$target: $(tail -n 1 "$work/idle.out")"
    record idle.rss_before_kb "$rss0"
    record idle.rss_after_kb "$rss1"
    record idle.conns "$IDLE_CONNS"
    stop_target
}

run_load() {
    local pid t0 t1 ok0 ok1 kv
    H2LOAD_BODY=(-d "$body")
    H2LOAD_PATH=$URL_PATH
    HDRS=("${GRPC_HDRS[@]}")
    start_target "$target"
    pid=$(measured_pid)

    "$CLIENT_BIN" check -p "$target_port" -d "$body" -n "$CHECK_CALLS" -c 4 -m 16 \
        -P "$URL_PATH" >"$work/check.out" 2>"$work/check.err" ||
        die "$target: gRPC check failed: $(cat "$work/check.out" "$work/check.err")"
    record check.calls "$CHECK_CALLS"
    record check.ok "$(sed 's/.* ok=\([0-9]*\).*/\1/' "$work/check.out")"

    ok0=$(echo_ok)
    h2load_run c1 -c 1 -m 1
    ok1=$(echo_ok)
    check_counts c1 "$ok0" "$ok1" 1

    h2load_run rate -c "$RATE_CONNS" -m 1 --rps=$((RATE / RATE_CONNS))
    ok0=$(echo_ok)
    check_counts rate "$ok1" "$ok0" "$RATE_CONNS"

    h2load_run sat -c "$CONNS" -m "$STREAMS"
    ok1=$(echo_ok)
    check_counts sat "$ok0" "$ok1" $((CONNS * STREAMS))

    if [ "$target" = switchyard-w1 ] || [ "$target" = switchyard-w2 ]; then
        # gRPC-Web: the same calls as a browser sends them (the body is the
        # same framing; trailers come back in the body), over h2 and HTTP/1.1.
        HDRS=("${WEB_HDRS[@]}")
        h2load_run web -c "$CONNS" -m "$STREAMS"
        ok0=$(echo_ok)
        check_counts web "$ok1" "$ok0" $((CONNS * STREAMS))
        # One call at a time per HTTP/1.1 connection: as many connections as
        # sat has calls in flight (CONNS x STREAMS).
        h2load_run web_h1 --h1 -c $((CONNS * STREAMS)) -m 1
        ok1=$(echo_ok)
        check_counts web_h1 "$ok0" "$ok1" $((CONNS * STREAMS))
        HDRS=("${GRPC_HDRS[@]}")
    fi

    case "$target" in
    direct | switchyard-w1 | switchyard-w2 | nginx | haproxy)
        bidi_run bidi
        bidi_run bidi_paced -r "$BIDI_RATE"
        bidi_run bidi_churn -k "$CHURN"
        ;;
    esac

    t0=$(cpu_ticks "$pid")
    pin "${LOAD_CPUS:-}" "$CLIENT_BIN" stream -p "$target_port" -s "$STREAM_MSG" -D "$DURATION" \
        -W 8 >"$work/stream.out" 2>"$work/stream.err" ||
        die "$target: streaming case failed: $(cat "$work/stream.out" "$work/stream.err")"
    t1=$(cpu_ticks "$pid")
    record stream.cpu_s "$(awk -v t="$((t1 - t0))" -v hz="$CLK_TCK" 'BEGIN {print t / hz}')"
    for kv in $(cut -d' ' -f2- "$work/stream.out"); do
        record "stream.${kv%%=*}" "${kv#*=}"
    done
    record peak_rss_kb "$(mem_kb "$pid" VmHWM)"
    stop_target
}

# bidi_run CASE ARGS...: sy-benchclient bidi with ARGS; records its figures and the
# CPU time of the measured process per echoed message.
bidi_run() {
    local case=$1 pid t0 t1 kv out=$work/$target.$round.$1
    shift
    pid=$(measured_pid)
    t0=$(cpu_ticks "$pid")
    pin "${LOAD_CPUS:-}" "$CLIENT_BIN" bidi -p "$target_port" -s "$PAYLOAD" -c "$CONNS" \
        -m "$STREAMS" -D "$DURATION" "$@" >"$out.out" 2>"$out.err" ||
        die "$target: $case case failed: $(cat "$out.out" "$out.err")"
    t1=$(cpu_ticks "$pid")
    record "$case.cpu_s" "$(awk -v t="$((t1 - t0))" -v hz="$CLK_TCK" 'BEGIN {print t / hz}')"
    for kv in $(cut -d' ' -f2- "$out.out"); do
        record "$case.${kv%%=*}" "${kv#*=}"
    done
}

# The saturation case on the running target, every call counted at the
# backends, then its peak RSS; stops the target.
run_sat_only() {
    local ok0 ok1
    ok0=$(echo_ok)
    h2load_run sat -c "$CONNS" -m "$STREAMS"
    ok1=$(echo_ok)
    check_counts sat "$ok0" "$ok1" $((CONNS * STREAMS))
    record peak_rss_kb "$(mem_kb "$(measured_pid)" VmHWM)"
    stop_target
}

# The REST case: a check that the JSON is the echoed payload, then saturation
# with GETs (recorded as "sat", so the table puts it beside native gRPC).
run_rest() {
    local got want
    H2LOAD_BODY=()
    H2LOAD_PATH=$REST_PATH
    HDRS=()
    start_target "$target"
    got=$(curl -sS --http2-prior-knowledge "http://127.0.0.1:$target_port$REST_PATH")
    want=$(python3 -c 'import base64, json, sys
print(json.dumps({"payload": base64.b64encode(bytes(i % 251 for i in range(int(sys.argv[1])))).decode()}, separators=(",", ":")))' "$PAYLOAD")
    [ "$got" = "$want" ] || die "$target: REST check failed: got $got"
    record check.calls 1
    record check.ok 1
    run_sat_only
}

# The policy targets: the saturation case only, every call checked at a backend.
run_policy() {
    H2LOAD_BODY=(-d "$body")
    H2LOAD_PATH=$URL_PATH
    HDRS=("${GRPC_HDRS[@]}")
    start_target "$target"
    run_sat_only
}

# ---- the scaling run (BENCH_WORKERS): switchyard with N workers on N CPUs ----
run_scale() {
    local n=$1 ok0 ok1 load_n bthreads
    load_n=$((ncpu - n))
    SCALE_PROXY_CPUS=0-$((n - 1))
    LOAD_CPUS=$n-$((ncpu - 1))
    bthreads=$(((load_n + 1) / 2))
    H2LOAD_BODY=(-d "$body")
    H2LOAD_PATH=$URL_PATH
    HDRS=("${GRPC_HDRS[@]}")
    start_target "$target"
    ok0=$(echo_ok)
    h2load_run sat -t "$bthreads" -c $((CONNS * n)) -m "$STREAMS"
    ok1=$(echo_ok)
    check_counts sat "$ok0" "$ok1" $((CONNS * n * STREAMS))
    record workers "$n"
    stop_target
}

if [ -n "$SCALE_WORKERS" ]; then
    [ "$PIN" = on ] || die "BENCH_WORKERS needs pinning (2+ CPUs, BENCH_PIN not off)"
    TARGETS=
    for n in ${SCALE_WORKERS//,/ }; do
        if [ $((ncpu - n)) -lt 1 ]; then
            log "scaling: $n worker(s) skipped: $ncpu CPUs leave none for the load generator"
            continue
        fi
        TARGETS+=" switchyard-scale$n"
    done
    [ -n "$TARGETS" ] || die "scaling: no worker count fits on $ncpu CPUs"
    # The backend on the CPUs no worker count uses, with threads for half of them.
    stop_pid "$echo_pid"
    forget_pid "$echo_pid"
    max_n=0
    for t in $TARGETS; do
        n=${t#switchyard-scale}
        [ "$n" -le "$max_n" ] || max_n=$n
    done
    start_echo "$max_n-$((ncpu - 1))" -w $(((ncpu - max_n + 1) / 2))
    log "scaling: targets:$TARGETS; $ROUNDS round(s), ${DURATION}s each"
    for ((round = 1; round <= ROUNDS; round++)); do
        for target in $TARGETS; do
            log "round $round/$ROUNDS: $target"
            run_scale "${target#switchyard-scale}"
        done
    done
fi

[ -n "$SCALE_WORKERS" ] || log "targets: $TARGETS; $ROUNDS round(s), ${DURATION}s per case, pinning $PIN"
for ((round = 1; round <= ROUNDS; round++)); do
    [ -z "$SCALE_WORKERS" ] || break
    for target in $TARGETS; do
        case "$target" in
        direct | switchyard-w1 | switchyard-w2 | switchyard-trace0.01 | switchyard-trace1) ;;
        switchyard-rest)
            [ -f "$REST_DESC" ] || die "$REST_DESC missing (run: make bench)"
            log "round $round/$ROUNDS: $target"
            run_rest
            continue
            ;;
        switchyard-rr3 | switchyard-lr3)
            log "round $round/$ROUNDS: $target"
            run_policy
            continue
            ;;
        nginx) [ -n "$NGINX" ] || die "nginx not installed (run: bash scripts/deps.sh --bench)" ;;
        haproxy) [ -n "$HAPROXY" ] || die "haproxy not installed (run: bash scripts/deps.sh --bench)" ;;
        *) die "unknown target '$target'" ;;
        esac
        log "round $round/$ROUNDS: $target"
        case "$target" in
        direct | switchyard-trace*) ;; # tracing costs nothing on idle connections
        *) run_idle ;;
        esac
        run_load
    done
done

# ---- report ----
mkdir -p "$OUT" "$top/bench/results"
versions=$work/versions.txt
{
    echo "date $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "cpu $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo) x $ncpu"
    echo "kernel $(uname -r)"
    echo "switchyard $(git -C "$top" describe --always --dirty 2>/dev/null || echo unknown)"
    echo "nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///')"
    echo "haproxy $("$HAPROXY" -v 2>&1 | awk 'NR == 1 {print $3}')"
    echo "h2load $(h2load --version | awk '{print $2}')"
    echo "params duration=${DURATION}s conns=$CONNS streams=$STREAMS payload=${PAYLOAD}B rate=$RATE/s over $RATE_CONNS conns bidi_rate=$BIDI_RATE/s churn=$CHURN stream_msg=${STREAM_MSG}B idle_conns=$IDLE_CONNS idle_settle=${IDLE_SETTLE}s rounds=$ROUNDS pin=$PIN"
    echo "load $(cut -d' ' -f1-3 /proc/loadavg)"
    [ -z "$SCALE_WORKERS" ] || echo "scaling $SCALE_WORKERS"
} >"$versions"
if [ -n "$SCALE_WORKERS" ]; then
    # The scaling run has its own report; bench/results/latest.json stays the comparison's.
    python3 "$top/bench/report.py" report "$raw" "$versions" "$OUT/scaling.md" "$OUT/scaling.json"
    cat "$OUT/scaling.md"
    log "written: $OUT/scaling.md, $OUT/scaling.json"
    exit 0
fi
python3 "$top/bench/report.py" report "$raw" "$versions" "$OUT/results.md" "$OUT/results.json"
cp "$OUT/results.json" "$top/bench/results/latest.json"
cat "$OUT/results.md"
log "written: $OUT/results.md, $OUT/results.json, bench/results/latest.json"
