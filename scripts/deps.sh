#!/usr/bin/env bash
# Installs every Debian package switchyard needs to build, test and run.
# Idempotent: packages already installed are skipped; apt-get runs only when
# something is missing. Needs root (or sudo) on Debian 12.
#   scripts/deps.sh           build, test and run dependencies
#   scripts/deps.sh --build   only what `make all` needs (the image's build stage)
#   scripts/deps.sh --bench   also the benchmark peers, nginx and HAProxy, and valgrind and
#                             strace for bench/profile.sh (make bench)
# SPDX-License-Identifier: MIT
set -euo pipefail

PKGS=(
    build-essential pkg-config
    libevent-dev libnghttp2-dev libc-ares-dev libinih-dev libssl-dev libjansson-dev libjwt-dev
    libprotobuf-c-dev protobuf-c-compiler grpc-proto
    libhttp-parser-dev # proxy/h1.c: HTTP/1.1 parsing (gRPC-Web from browsers)
    libgrpc-dev libcriterion-dev
    nghttp2-client dnsmasq-base python3-yaml python3-h2 openssl
    python3-prometheus-client # test_observability: a real Prometheus text parser reads /metrics
    clang-14 libclang-rt-14-dev # tests/fuzz: libFuzzer (-fsanitize=fuzzer) and clang's ASan/UBSan runtimes
    # REST transcoding: libprotobuf (C++) is the reference proto3 JSON mapping;
    # protoc builds the tests' descriptor sets, whose google/api/annotations.proto
    # and http.proto come from golang-github-gogo-googleapis-dev (Debian ships no
    # other package with them); the test backend is grpc-js on Node.js, checked
    # against python3-protobuf's json_format, driven with curl.
    libprotobuf-dev protobuf-compiler golang-github-gogo-googleapis-dev python3-protobuf curl
)

# Needed by `make test` only (Criterion, test clients and servers, checkers):
# --build leaves them out, so the image's build stage stays small.
TEST_ONLY=(libcriterion-dev nghttp2-client dnsmasq-base python3-yaml python3-h2 openssl logrotate
    python3-prometheus-client protobuf-compiler golang-github-gogo-googleapis-dev python3-protobuf
    curl chromium nodejs npm)
PKGS+=(logrotate) # test_deploy checks docker/logrotate/switchyard with logrotate -d
# test_web: a real browser (headless Chromium) and Node.js for the npm test
# clients (tests/web/package.json, installed under build/web at test time).
PKGS+=(chromium)
# Node.js and npm for the npm test peers (test_web, test_observability's
# OpenTelemetry backend, test_rest's grpc-js backend): from Debian unless a
# node with its npm is installed already (a NodeSource nodejs ships npm inside
# and conflicts with Debian's npm).
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    PKGS+=(nodejs npm)
fi

for arg in "$@"; do
    case "$arg" in
    # h2load comes with nghttp2-client above; valgrind and strace are bench/profile.sh's
    # load-independent counts (instructions and system calls per call)
    --bench) PKGS+=(nginx haproxy valgrind strace) ;;
    --build)
        kept=()
        for p in "${PKGS[@]}"; do
            [[ " ${TEST_ONLY[*]} " == *" $p "* ]] || kept+=("$p")
        done
        PKGS=("${kept[@]}")
        ;;
    *)
        echo "deps.sh: unknown option '$arg' (known: --build, --bench)" >&2
        exit 2
        ;;
    esac
done

missing=()
for p in "${PKGS[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done

# npm comes with some builds of nodejs (which then conflict with Debian's npm
# package): ask for the package only when no npm is there.
if [[ " ${PKGS[*]} " == *" nodejs "* ]] && ! command -v npm >/dev/null 2>&1; then
    missing+=(npm)
fi

if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi

SUDO=
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=sudo
    else
        echo "deps.sh: missing packages (${missing[*]}) and not root; run as root" >&2
        exit 1
    fi
fi

echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
