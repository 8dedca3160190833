#!/usr/bin/env bash
# bench/profile.sh: load-independent figures for switchyard's hot paths.
#
# Timings on a shared 2-core VM are noise; instruction and system call counts
# are not. This runs one fixed load through switchyard (workers = 1, the bench
# config) in front of the bench's echo backend and reports, per call or message:
#   callgrind  instructions (valgrind --tool=callgrind, counters zeroed after
#              start-up and dumped after the load, so only the load counts),
#              with the top functions by self cost
#   strace     system calls (strace -c -f on the running proxy during the load)
#   idle       RSS growth per idle HTTP/2 connection (sy-benchclient idle)
#
# usage: bench/profile.sh [unary|single|stream|bidi|paced|churn|idle|all] [callgrind|strace|both]
#   unary   h2load -n PROF_CALLS [20000] -c 8 -m 16, 100-byte gRPC unary calls
#   single  the same one call at a time (h2load -c 1 -m 1): every call wakes the loop
#   stream  one bidi stream of 64 KiB messages for PROF_SECONDS [3]
#   bidi    sy-benchclient bidi: 8 connections x 16 bidi streams of 100-byte
#           messages, PROF_MSGS [20000] messages
#   paced   the same paced to 10,000 messages/s in total
#   churn   the same with a new stream every 10 messages
#   idle    RSS per idle connection (2,000 connections, idle for PROF_IDLE_SETTLE [4] s)
# Needs a built tree (make all bench-bins); BUILD [build], SY_BIN, ECHO_BIN and
# CLIENT_BIN as in bench/run.sh. Processes are stopped by PID.
# SPDX-License-Identifier: MIT
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$top/build}
SY_BIN=${SY_BIN:-$BUILD/switchyard}
ECHO_BIN=${ECHO_BIN:-$BUILD/bench/sy-echo}
CLIENT_BIN=${CLIENT_BIN:-$BUILD/bench/sy-benchclient}
CASE=${1:-unary}
TOOL=${2:-both}
CALLS=${PROF_CALLS:-20000}
MSGS=${PROF_MSGS:-20000}
SECONDS_=${PROF_SECONDS:-3}
TOP=${PROF_TOP:-25}

work=$(mktemp -d "${TMPDIR:-/tmp}/sy-prof.XXXXXX")
PIDS=()
cleanup() {
    local i
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        kill -TERM "${PIDS[$i]}" 2>/dev/null || true
        wait "${PIDS[$i]}" 2>/dev/null || true
    done
    [ -n "${PROF_KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
log() { printf 'profile: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_port() {
    local i
    for i in $(seq 300); do
        kill -0 "$2" 2>/dev/null || die "process $2 exited before listening on $1"
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    die "nothing listens on port $1"
}

body=$work/request.bin
python3 - 100 "$body" <<'EOF'
import struct, sys
n, path = int(sys.argv[1]), sys.argv[2]
pb = b"\x0a" + bytes([n]) + bytes(i % 251 for i in range(n))
open(path, "wb").write(b"\x00" + struct.pack(">I", len(pb)) + pb)
EOF

"$ECHO_BIN" -p 0 >"$work/echo.out" 2>"$work/echo.err" &
PIDS+=($!)
for _ in $(seq 50); do
    grep -q '^listening' "$work/echo.out" && break
    sleep 0.1
done
backend_port=$(awk '/^listening/ {print $2}' "$work/echo.out")

# start_proxy WRAPPER...: switchyard (1 worker) under WRAPPER; sets sy_pid, port
start_proxy() {
    port=$(free_port)
    sed -e "s|@LISTEN_PORT@|$port|g" -e "s|@BACKEND_PORT@|$backend_port|g" \
        -e "s|@PREFIX@|$work|g" -e "s|@WORKERS@|1|g" "$top/bench/peers/switchyard.ini.in" \
        >"$work/sy.ini"
    "$@" "$SY_BIN" -c "$work/sy.ini" >"$work/sy.log" 2>&1 &
    sy_pid=$!
    PIDS+=("$sy_pid")
    wait_port "$port" "$sy_pid"
}
stop_proxy() {
    kill -TERM "$sy_pid" 2>/dev/null || true
    wait "$sy_pid" 2>/dev/null || true
}

# load: runs the case against $port; prints the number of calls or messages
load() {
    case "$CASE" in
    unary | single)
        local cm=(-c 8 -m 16)
        [ "$CASE" = single ] && cm=(-c 1 -m 1)
        h2load -n "$CALLS" "${cm[@]}" -t 1 -d "$body" -H 'content-type: application/grpc' \
            -H 'te: trailers' "http://127.0.0.1:$port/sy.test.Echo/Unary" >"$work/load.out" 2>&1 ||
            die "h2load: $(tail -n 5 "$work/load.out")"
        grep -q "succeeded, 0 errored" "$work/load.out" ||
            grep -q "$CALLS succeeded" "$work/load.out" || die "h2load: $(grep requests: "$work/load.out")"
        echo "$CALLS"
        ;;
    stream)
        "$CLIENT_BIN" stream -p "$port" -s 65536 -D "$SECONDS_" -W 8 >"$work/load.out" ||
            die "stream: $(cat "$work/load.out")"
        sed 's/.*messages=\([0-9]*\).*/\1/' "$work/load.out"
        ;;
    bidi | paced | churn)
        local extra=()
        [ "$CASE" = paced ] && extra=(-r 10000)
        [ "$CASE" = churn ] && extra=(-k 10)
        "$CLIENT_BIN" bidi -p "$port" -s 100 -c 8 -m 16 -n "$MSGS" "${extra[@]}" >"$work/load.out" ||
            die "bidi: $(cat "$work/load.out")"
        sed 's/.*messages=\([0-9]*\).*/\1/' "$work/load.out"
        ;;
    esac
}

run_callgrind() {
    local n ir out
    out=$work/callgrind.out
    start_proxy valgrind --tool=callgrind --callgrind-out-file="$out" --dump-instr=no \
        --collect-atstart=yes
    # a warm-up pass (free lists, pools, the first backend connection)
    CALLS=2000 MSGS=2000 SECONDS_=1 load >/dev/null
    callgrind_control -z "$sy_pid" >/dev/null
    n=$(load)
    callgrind_control -d "$sy_pid" >/dev/null
    sleep 0.5
    stop_proxy
    local dump
    dump=$(ls -1 "$out".* 2>/dev/null | sort -t. -k3 -n | head -n 1 || true)
    [ -n "$dump" ] || die "no callgrind dump"
    ir=$(callgrind_annotate "$dump" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1; exit}')
    printf 'callgrind %s: %s units, %s instructions, %.0f per unit\n' "$CASE" "$n" "$ir" \
        "$(awk -v a="$ir" -v b="$n" 'BEGIN {print a / b}')"
    # a dump taken mid-run charges the thread roots (start_thread, clone,
    # worker_main) with everything below them: leave them out of the list
    callgrind_annotate --threshold=100 --auto=no "$dump" 2>/dev/null |
        grep -E '^ *[0-9,]+ +\( *[0-9.]+%\) ' | grep -v 'PROGRAM TOTALS' |
        grep -Ev ':(worker_main|start_thread|clone) ' | awk -v n="$TOP" 'NR <= n'
    [ -z "${PROF_KEEP:-}" ] || log "callgrind dump: $dump"
}

run_strace() {
    local n spid
    start_proxy
    CALLS=2000 MSGS=2000 SECONDS_=1 load >/dev/null
    strace -c -f -q -p "$sy_pid" -o "$work/strace.out" &
    spid=$!
    sleep 0.5
    n=$(load)
    kill -INT "$spid"
    wait "$spid" 2>/dev/null || true
    stop_proxy
    printf 'strace %s: %s units; system calls per unit:\n' "$CASE" "$n"
    awk -v n="$n" '$1 ~ /^[0-9.]+$/ && NF >= 5 {name = $NF; calls = $4;
        printf "  %-16s %8.3f\n", name, calls / n}' "$work/strace.out"
}

run_idle() {
    local rss0 rss1 cpid conns=${PROF_IDLE_CONNS:-2000}
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    start_proxy
    sleep 0.3
    rss0=$(awk '/^VmRSS:/ {print $2}' /proc/"$sy_pid"/status)
    "$CLIENT_BIN" idle -p "$port" -c "$conns" >"$work/idle.out" 2>"$work/idle.err" &
    cpid=$!
    for _ in $(seq 300); do
        grep -q ready "$work/idle.out" && break
        sleep 0.1
    done
    sleep "${PROF_IDLE_SETTLE:-4}" # idle for a few seconds, as idle connections are
    rss1=$(awk '/^VmRSS:/ {print $2}' /proc/"$sy_pid"/status)
    kill -TERM "$cpid"
    wait "$cpid" 2>/dev/null || true
    stop_proxy
    printf 'idle: %d connections, RSS %d -> %d KiB, %.2f KiB per connection\n' "$conns" "$rss0" \
        "$rss1" "$(awk -v a="$rss0" -v b="$rss1" -v n="$conns" 'BEGIN {print (b - a) / n}')"
}

cases=$CASE
[ "$CASE" = all ] && cases="unary single stream bidi paced churn idle"
for CASE in $cases; do
    if [ "$CASE" = idle ]; then
        run_idle
        continue
    fi
    case "$TOOL" in
    callgrind) run_callgrind ;;
    strace) run_strace ;;
    both)
        run_callgrind
        run_strace
        ;;
    *) die "unknown tool $TOOL" ;;
    esac
done
