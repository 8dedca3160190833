#!/usr/bin/env bash
# switchyard in one minute: three echo backends, switchyard in front of them
# (conf/demo.ini), a stream of calls showing which backend answered each one,
# and one backend turning NOT_SERVING and back. Run it with `make demo`, which
# builds the binaries first.
#
# Every process it starts is stopped by PID on exit, on error and on Ctrl-C.
# It ends by itself after 10 to 15 s; DEMO_KEEP=1 keeps switchyard and the
# backends running until Ctrl-C so you can poke at them.
#
# Environment:
#   DEMO_KEEP=1                  keep running at the end, until Ctrl-C
#   DEMO_PORT, DEMO_ADMIN_PORT   ports of switchyard (default: free ports)
#   NO_COLOR=1                   no colours (there are none unless stdout is a terminal)
#   SY_BIN, SY_HEALTH_BIN, SY_BACKEND, SY_CLIENT   the binaries (default: build/...)
# SPDX-License-Identifier: MIT
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

SY_BIN=${SY_BIN:-build/switchyard}
SY_HEALTH_BIN=${SY_HEALTH_BIN:-build/switchyard-health}
SY_BACKEND=${SY_BACKEND:-build/peers/tests/peers/sy-backend}
SY_CLIENT=${SY_CLIENT:-build/peers/tests/peers/sy-client}
CONF=conf/demo.ini
CALL_MS=100   # each call waits this long in the backend: about 10 calls a second
ROW=10        # calls per printed row (about one second)

# ---- output ----

if [ -t 1 ] && [ -z "${NO_COLOR:-}" ] && [ "${TERM:-dumb}" != dumb ]; then
    B=$'\e[1m' D=$'\e[2m' R=$'\e[31m' G=$'\e[32m' Y=$'\e[33m' N=$'\e[0m'
    ID_COLOR=([1]=$'\e[36m' [2]=$'\e[35m' [3]=$'\e[34m')
else
    B='' D='' R='' G='' Y='' N=''
    ID_COLOR=([1]='' [2]='' [3]='')
fi

t0=${EPOCHREALTIME/./}
elapsed() { # seconds since the start, e.g. 3.4
    local us=$((${EPOCHREALTIME/./} - t0))
    printf '%d.%d' $((us / 1000000)) $((us / 100000 % 10))
}
heading() { printf '\n%s== %s%s\n' "$B" "$*" "$N"; }
say() { printf '   %s\n' "$*"; }
cmdline() { printf '   %s$ %s%s\n' "$D" "$*" "$N"; }
die() {
    printf '%sdemo: %s%s\n' "$R" "$*" "$N" >&2
    exit 1
}

# ---- processes: every PID we start, stopped in reverse order on exit ----

tmp='' # logs, made once the binaries are there
pids=()
failed=0
cleanup() {
    local rc=$? i pid running
    trap - EXIT INT TERM
    # Only PIDs of children still running (jobs -p): one that exited (a
    # backend stopped by hand with DEMO_KEEP=1) is never signalled again.
    running=" $(jobs -p | tr '\n' ' ') "
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        pid=${pids[i]}
        [[ $running == *" $pid "* ]] || continue
        kill -TERM "$pid" 2>/dev/null || continue
        for _ in $(seq 30); do # up to 3 s, then SIGKILL
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    # Ctrl-C (130) and SIGTERM (143) are a normal end; anything else keeps the logs.
    if [ -z "$tmp" ]; then
        :
    elif [ "$failed" -ne 0 ] || { [ "$rc" -ne 0 ] && [ "$rc" -ne 130 ] && [ "$rc" -ne 143 ]; }; then
        printf '\n%slogs kept in %s%s\n' "$Y" "$tmp" "$N" >&2
    else
        rm -rf "$tmp"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'printf "\n"; exit 130' INT
trap 'exit 143' TERM

for b in "$SY_BIN" "$SY_HEALTH_BIN" "$SY_BACKEND" "$SY_CLIENT"; do
    [ -x "$b" ] || die "$b is missing: run \`make demo\` from the top of the repository"
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/switchyard-demo.XXXXXX")

# Free loopback ports: bind port 0 while holding the others, so all differ.
py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3) || die "python3 is needed (scripts/deps.sh installs it)"
read -r p0 p1 p2 p3 p4 < <("$py" - <<'EOF'
import socket
socks = [socket.socket() for _ in range(5)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
EOF
)
export DEMO_PORT=${DEMO_PORT:-$p0} DEMO_ADMIN_PORT=${DEMO_ADMIN_PORT:-$p1}
export DEMO_BACKEND1_PORT=$p2 DEMO_BACKEND2_PORT=$p3 DEMO_BACKEND3_PORT=$p4
proxy=127.0.0.1:$DEMO_PORT
admin=127.0.0.1:$DEMO_ADMIN_PORT
bport=([1]=$p2 [2]=$p3 [3]=$p4)
bpid=()

# wait_for SECONDS WHAT PID LOG COMMAND...: runs COMMAND every 100 ms until it
# succeeds; fails at once if PID exits, or after SECONDS.
wait_for() {
    local secs=$1 what=$2 pid=$3 log=$4
    shift 4
    for _ in $(seq $((secs * 10))); do
        "$@" >/dev/null 2>&1 && return 0
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 20 "$log" >&2
            die "$what exited"
        fi
        sleep 0.1
    done
    tail -n 20 "$log" >&2
    die "$what not ready after ${secs}s"
}

log_off=0
col=0
# Prints the health-check lines switchyard has logged since it was last
# called, naming each backend; returns 0 if it printed any.
show_new_log() {
    local size line i rc=1
    size=$(stat -c %s "$tmp/switchyard.log")
    [ "$size" -gt "$log_off" ] || return 1
    while IFS= read -r line; do
        case "$line" in
        *" hc: "*) ;;
        *) continue ;;
        esac
        line=${line#* hc: }
        for i in 1 2 3; do
            line=${line//127.0.0.1:${bport[i]}/b$i (127.0.0.1:${bport[i]})}
        done
        if [ "$col" -gt 0 ]; then
            printf '\n'
            col=0
        fi
        printf '   %s> switchyard log: %s%s\n' "$Y" "$line" "$N"
        rc=0
    done < <(tail -c +"$((log_off + 1))" "$tmp/switchyard.log")
    log_off=$size
    return "$rc"
}

# ---- start ----

printf '%sswitchyard demo%s: a gRPC proxy that health-checks its backends and\n' "$B" "$N"
printf 'balances every call over the healthy ones.\n'

heading "Starting three echo backends and switchyard"
for i in 1 2 3; do
    "$SY_BACKEND" --listen "127.0.0.1:${bport[i]}" --id "b$i" --quiet >"$tmp/b$i.log" 2>&1 &
    bpid[i]=$!
    pids+=("$!")
done
for i in 1 2 3; do
    wait_for 10 "backend b$i" "${bpid[i]}" "$tmp/b$i.log" \
        "$SY_HEALTH_BIN" check "127.0.0.1:${bport[i]}" --timeout 500ms
    say "$(printf '%sb%d%s  127.0.0.1:%-5s  pid %-7s grpc.health.v1: SERVING' \
        "${ID_COLOR[i]}" "$i" "$N" "${bport[i]}" "${bpid[i]}")"
done

"$SY_BIN" -c "$CONF" >"$tmp/switchyard.log" 2>&1 &
sy_pid=$!
pids+=("$sy_pid")
# Ready when the admin listener reports every endpoint in rotation (exit 0).
wait_for 10 switchyard "$sy_pid" "$tmp/switchyard.log" \
    "$SY_HEALTH_BIN" status --admin "$admin" --timeout 1s
say "switchyard  $proxy  pid $sy_pid  (admin http://$admin, config $CONF)"
show_new_log || true
cmdline "$SY_HEALTH_BIN check $proxy"
say "$("$SY_HEALTH_BIN" check "$proxy" 2>&1)   ${D}(switchyard's own health service)${N}"

# ---- calls ----

declare -A count
last=()    # backend of each of the last ROW calls
failures=0 # failed calls, over the whole demo
# calls N [AT WHAT COMMAND...]: makes N unary calls through switchyard on one
# connection and prints, live, which backend answered each one, ROW to a line.
# After call AT, it runs COMMAND and says WHAT while the calls go on.
calls() {
    local n=$1 at=${2:-0} what=${3:-} line id st k fifo=$tmp/calls.fifo i=0
    shift $(($# < 3 ? $# : 3))
    count=() last=() col=0
    rm -f "$fifo" && mkfifo "$fifo"
    stdbuf -oL "$SY_CLIENT" "$proxy" unary --repeat "$n" --delay "$CALL_MS" --timeout 3000 \
        >"$fifo" 2>"$tmp/client.err" &
    local cpid=$!
    pids+=("$cpid")
    while IFS= read -r line; do
        case "$line" in
        status=*) ;;
        *) continue ;; # the per-backend tally at the end
        esac
        st=${line#status=} && st=${st%% *}
        id=${line#*backend=} && id=${id%% *}
        [ "$col" -eq 0 ] && printf '   %s%5ss%s ' "$D" "$(elapsed)" "$N"
        if [ "$st" = 0 ]; then
            k=${id#b}
            printf ' %s%s%s' "${ID_COLOR[k]:-}" "$id" "$N"
            count[$id]=$((${count[$id]:-0} + 1))
        else
            printf ' %sx%s' "$R" "$N" # a failed call
            count[failed]=$((${count[failed]:-0} + 1))
            failures=$((failures + 1))
            id=failed
        fi
        last+=("$id")
        [ "${#last[@]}" -gt "$ROW" ] && last=("${last[@]:1}")
        col=$((col + 1))
        if [ "$col" -eq "$ROW" ]; then
            printf '\n'
            col=0
        fi
        # After the call, not before: a call started before a transition was
        # logged is printed before the log line.
        show_new_log || true
        i=$((i + 1))
        if [ "$i" -eq "$at" ]; then
            [ "$col" -gt 0 ] && printf '\n' && col=0
            printf '   %s%5ss  >> %s%s\n' "$B" "$(elapsed)" "$what" "$N"
            "$@"
        fi
    done <"$fifo"
    [ "$col" -gt 0 ] && printf '\n'
    col=0
    wait "$cpid" || true
    unset 'pids[-1]' # reaped: never signal that PID again
    show_new_log || true
    local summary="$n calls:"
    for id in b1 b2 b3 failed; do
        [ -n "${count[$id]:-}" ] && summary+="  $id ${count[$id]}"
    done
    say "${D}${summary}${N}"
}

# in_last ID: true when ID answered one of the last ROW calls.
in_last() {
    local x
    for x in "${last[@]}"; do [ "$x" = "$1" ] && return 0; done
    return 1
}

status() {
    cmdline "$SY_HEALTH_BIN status --admin $admin"
    local rc=0
    "$SY_HEALTH_BIN" status --admin "$admin" || rc=$?
    case $rc in
    0) say "${D}(exit status 0: every endpoint in rotation)${N}" ;;
    1) say "${D}(exit status 1: an endpoint is out of rotation)${N}" ;;
    *) say "${D}(exit status $rc)${N}" ;;
    esac
}

all_answered() { [ -n "${count[b1]:-}" ] && [ -n "${count[b2]:-}" ] && [ -n "${count[b3]:-}" ]; }
not_in_last() { ! in_last "$1"; }

check() { # check WHAT COMMAND...: prints whether COMMAND succeeded
    local what=$1
    shift
    if "$@"; then
        say "${G}ok${N}: $what"
    else
        say "${R}unexpected${N}: not $what"
        failed=1
    fi
}

heading "Round robin over three healthy backends"
say "sy-client makes one call after another through switchyard (about $((1000 / CALL_MS)) a second);"
say "each name is the backend that answered it."
calls 20
check "every backend answered" all_answered
status

heading "b2 turns NOT_SERVING while the calls go on"
say "After 10 calls the demo sends SIGUSR1 to b2 (kill -USR1 ${bpid[2]}): its health service"
say "answers NOT_SERVING from then on, though it still serves calls. switchyard checks it every"
say "500 ms and takes it out of rotation within about a second; no call fails meanwhile."
calls 40 10 "kill -USR1 ${bpid[2]}: b2 is NOT_SERVING" kill -USR1 "${bpid[2]}"
check "b2 out of rotation: none of the last $ROW calls went to it" not_in_last b2
status

heading "b2 is SERVING again"
say "SIGUSR2 (kill -USR2 ${bpid[2]}) makes it SERVING; one passed check puts it back."
calls 30 10 "kill -USR2 ${bpid[2]}: b2 is SERVING" kill -USR2 "${bpid[2]}"
check "b2 back in rotation" in_last b2
check "no call failed" [ "$failures" -eq 0 ]
status

if [ "${DEMO_KEEP:-0}" = 1 ]; then
    heading "Still running (DEMO_KEEP=1); Ctrl-C stops everything"
    say "Try, in another terminal:"
    cmdline "$SY_CLIENT $proxy unary --repeat 9"
    cmdline "$SY_HEALTH_BIN status --admin $admin --watch 1"
    cmdline "kill -USR1 ${bpid[1]}   # b1 NOT_SERVING (kill -USR2 ${bpid[1]}: SERVING again)"
    cmdline "kill -TERM ${bpid[3]}   # stop b3: switchyard takes it out at once"
    cmdline "$SY_HEALTH_BIN status --admin $admin --json"
    command -v curl >/dev/null && cmdline "curl -s http://$admin/metrics | grep -v '^#' | head"
    say "switchyard's log: $tmp/switchyard.log"
    while kill -0 "$sy_pid" 2>/dev/null; do
        sleep 1 &
        wait $! || true
    done
    die "switchyard exited (see $tmp/switchyard.log)"
fi

heading "Done in $(elapsed)s"
if [ "$failed" -ne 0 ]; then
    die "something did not go as expected; switchyard's log: $tmp/switchyard.log"
fi
say "Next: README.md (configuration, switchyard-health, deployment with Docker and Kubernetes)."
