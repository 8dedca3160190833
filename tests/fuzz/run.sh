#!/usr/bin/env bash
# Runs libFuzzer harnesses over their committed seed corpora.
#   tests/fuzz/run.sh --runs N BIN...     N inputs each, fixed seed (make test): the
#                                         corpus is only read, new inputs are dropped
#   tests/fuzz/run.sh --seconds S BIN...  S seconds each, random seed (make fuzz): new
#                                         inputs go to build/fuzz/corpus/NAME
# BIN is build/fuzz/tests/fuzz/fuzz_NAME; its seeds are tests/fuzz/corpus/NAME.
# A crash, leak, sanitizer report or timeout fails the harness; the input is
# kept in build/fuzz/artifacts/NAME/ and the command to replay it is printed.
# Prints one line per harness; exits 1 if any failed.
# SPDX-License-Identifier: MIT
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$top/tests/lsan.supp:print_suppressions=0}"

mode= amount=
case "${1:-}" in
--runs | --seconds)
    mode=${1#--}
    amount=${2:-}
    shift 2 || true
    ;;
esac
if [ -z "$mode" ] || ! [[ "$amount" =~ ^[0-9]+$ ]] || [ $# -eq 0 ]; then
    echo "usage: $0 --runs N | --seconds S BIN..." >&2
    exit 2
fi

failed=0
for bin in "$@"; do
    name=$(basename "$bin")
    name=${name#fuzz_}
    seeds="$top/tests/fuzz/corpus/$name"
    arts="$top/build/fuzz/artifacts/$name"
    mkdir -p "$arts"
    if [ ! -d "$seeds" ]; then
        echo "fuzz $name: FAILED: no seed corpus $seeds"
        failed=1
        continue
    fi
    log=$(mktemp)
    if [ "$mode" = runs ]; then
        # New inputs go to a scratch dir listed first, so the committed corpus is never written.
        scratch=$(mktemp -d)
        opts=(-runs="$amount" -seed=1 "$scratch" "$seeds")
    else
        scratch=
        mkdir -p "$top/build/fuzz/corpus/$name"
        opts=(-max_total_time="$amount" "$top/build/fuzz/corpus/$name" "$seeds")
    fi
    t0=$(date +%s.%N)
    # stdin from /dev/null: a config naming /dev/stdin as a key file must not block.
    "$bin" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$arts/" \
        "${opts[@]}" </dev/null >"$log" 2>&1
    rc=$?
    t1=$(date +%s.%N)
    runs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
    nseeds=$(find "$seeds" -type f | wc -l)
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
    if [ "$rc" -eq 0 ]; then
        echo "fuzz $name: ok, ${runs:-?} inputs from $nseeds seeds in ${secs} s"
    else
        failed=1
        echo "fuzz $name: FAILED (exit $rc) after ${secs} s; its report:"
        # From the sanitizer's or libFuzzer's first word on, without the shadow-byte map.
        # A harness's own checks print "fuzz check failed: ..." first.
        awk '/fuzz check failed|ERROR: |runtime error:|deadly signal|ALARM|out-of-memory/ { on = 1 }
             /Shadow bytes around/ { skip = 1 } /^==[0-9]+==ABORTING/ { skip = 0 }
             on && !skip && n < 50 { print "    " $0; n++ }' "$log"
        art=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
        if [ -n "$art" ]; then
            echo "    input kept in $art; replay: $bin $art"
            echo "    once fixed, add it to $seeds/ as a regression input"
        fi
    fi
    rm -f "$log"
    [ -n "$scratch" ] && rm -rf "$scratch"
done
exit "$failed"
