#!/usr/bin/env bash
# REST through switchyard in half a minute: a gRPC user service (the REST
# tests' grpc-js backend, tests/rest/backend.js, whose proto carries
# google.api.http rules) behind switchyard with `transcode = on`, the rules
# fetched by gRPC server reflection, and curl calling it as a REST API:
# GET, POST, PUT, query parameters, a server stream, an error.
# Run it with `make demo-rest`, which builds switchyard and installs the
# backend's npm packages under build/rest first.
#
# Every process it starts is stopped by PID on exit, on error and on Ctrl-C.
# DEMO_KEEP=1 keeps both running until Ctrl-C so you can try your own calls.
# Environment: DEMO_KEEP=1, DEMO_PORT (default: a free port), SY_BIN,
# SY_REST_DIR (build/rest), NO_COLOR=1.
# SPDX-License-Identifier: MIT
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
SY_BIN=${SY_BIN:-build/switchyard}
REST_DIR=${SY_REST_DIR:-build/rest}

if [ -t 1 ] && [ -z "${NO_COLOR:-}" ] && [ "${TERM:-dumb}" != dumb ]; then
    B=$'\e[1m' D=$'\e[2m' R=$'\e[31m' N=$'\e[0m'
else
    B='' D='' R='' N=''
fi
heading() { printf '\n%s== %s%s\n' "$B" "$*" "$N"; }
die() {
    printf '%sdemo-rest: %s%s\n' "$R" "$*" "$N" >&2
    exit 1
}

pids=()
tmp=$(mktemp -d)
cleanup() {
    local pid
    trap - EXIT INT TERM
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        pid=${pids[$i]}
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_port() { # PORT PID NAME
    for _ in $(seq 150); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        kill -0 "$2" 2>/dev/null || die "$3 exited; its log: $(tail -5 "$tmp/$3.log")"
        sleep 0.1
    done
    die "$3 did not listen on $1"
}

[ -x "$SY_BIN" ] || die "$SY_BIN missing (make all)"
[ -d "$REST_DIR/node_modules" ] || die "$REST_DIR/node_modules missing (make rest-peer)"
be_port=$(free_port)
port=${DEMO_PORT:-$(free_port)}

heading "a gRPC service with google.api.http rules (tests/rest/user.proto)"
grep -A3 'rpc GetUser(' tests/rest/user.proto | sed 's/^/   /'
NODE_PATH=$REST_DIR/node_modules node tests/rest/backend.js --port "$be_port" \
    --descset "$REST_DIR/user.pb" >"$tmp/backend.log" 2>&1 &
pids+=($!)
wait_port "$be_port" "$!" backend

cat >"$tmp/switchyard.ini" <<EOF
[proxy]
listen = 127.0.0.1:$port
workers = 1
[admin]
listen = off
[cluster.users]
targets = 127.0.0.1:$be_port
health_check = off
transcode = on
descriptors = reflection   ; or a protoc --include_imports -o descriptor set
EOF
heading "switchyard with transcode = on, rules by server reflection"
sed 's/^/   /' "$tmp/switchyard.ini" | sed -n '/cluster/,$p'
"$SY_BIN" -c "$tmp/switchyard.ini" >"$tmp/switchyard.log" 2>&1 &
pids+=($!)
wait_port "$port" "$!" switchyard
for _ in $(seq 100); do
    grep -q 'from server reflection' "$tmp/switchyard.log" && break
    sleep 0.1
done
grep -o 'cluster users: [0-9]* REST binding(s) from server reflection' "$tmp/switchyard.log" | sed 's/^/   /'

call() { # METHOD PATH [BODY]
    local url="http://127.0.0.1:$port$2"
    if [ $# -ge 3 ]; then
        printf '   %s$ curl -X %s %s -d '"'"'%s'"'"'%s\n' "$D" "$1" "$url" "$3" "$N"
        curl -sS --http2-prior-knowledge -X "$1" -H 'content-type: application/json' \
            -d "$3" -w '\n   -> HTTP %{http_code}\n' "$url" | sed 's/^{/   {/; s/^\[/   [/'
    else
        printf '   %s$ curl -X %s %s%s\n' "$D" "$1" "$url" "$N"
        curl -sS --http2-prior-knowledge -X "$1" -w '\n   -> HTTP %{http_code}\n' "$url" |
            sed 's/^{/   {/; s/^\[/   [/'
    fi
}

heading "REST calls (curl over h2c)"
call GET /v1/users/7
call POST /v1/users '{"displayName":"Ann","role":"ROLE_MEMBER","labels":{"team":"ops"}}'
call PUT /v1/orgs/acme/users/5 '{"displayName":"Bob"}'
call GET '/v1/users?page_size=1&filter.role=ROLE_ADMIN'
call GET '/v1/users:watch?count=2'
call GET /v1/users/404
call DELETE /v1/users
heading "done"
if [ -n "${DEMO_KEEP:-}" ]; then
    printf '   switchyard is on 127.0.0.1:%s; Ctrl-C stops everything\n' "$port"
    wait
fi
