#!/usr/bin/env bash
# Runs every Criterion test binary given, in order, and prints one total line.
# A binary that fails (or whose sanitizers report) fails the run.
# SPDX-License-Identifier: MIT
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$top/tests/lsan.supp:print_suppressions=0}"

passed=0 failed=0 bad_bins=()
for bin in "$@"; do
    name=$(basename "$bin")
    jobs=2
    case "$bin" in */integration/*) jobs=1 ;; esac
    out=$(mktemp)
    echo "==> $name"
    "$bin" --jobs="$jobs" --short-filename 2>&1 | tee "$out"
    rc=${PIPESTATUS[0]}
    line=$(grep -E 'Synthesis: Tested:' "$out" | tail -n 1)
    p=$(sed -n 's/.*Passing: \([0-9]*\).*/\1/p' <<<"$line")
    f=$(sed -n 's/.*Failing: \([0-9]*\).*/\1/p' <<<"$line")
    c=$(sed -n 's/.*Crashing: \([0-9]*\).*/\1/p' <<<"$line")
    passed=$((passed + ${p:-0}))
    failed=$((failed + ${f:-0}))
    if [ "$rc" -ne 0 ] || [ -z "$line" ]; then
        bad_bins+=("$name")
        [ -z "$line" ] && failed=$((failed + 1))
    fi
    rm -f "$out"
done

# The layering of proxy/ (no circle of modules, nothing below includes it)
# counts as one test.
echo "==> layers"
if /usr/bin/python3 "$top/tests/check_layers.py" "$top"; then
    passed=$((passed + 1))
else
    failed=$((failed + 1))
    bad_bins+=(check_layers)
fi

# Fuzz step: each libFuzzer harness in $SY_FUZZ_BINS runs $SY_FUZZ_RUNS inputs
# over its seed corpus (tests/fuzz/run.sh) and counts as one test.
if [ -n "${SY_FUZZ_BINS:-}" ]; then
    echo "==> fuzz (${SY_FUZZ_RUNS:-20000} inputs per harness)"
    for bin in $SY_FUZZ_BINS; do
        if bash "$top/tests/fuzz/run.sh" --runs "${SY_FUZZ_RUNS:-20000}" "$bin"; then
            passed=$((passed + 1))
        else
            failed=$((failed + 1))
            bad_bins+=("$(basename "$bin")")
        fi
    done
fi

echo
[ "${#bad_bins[@]}" -gt 0 ] && echo "failing binaries: ${bad_bins[*]}"
echo "$passed passed, $failed failed"
[ "${#bad_bins[@]}" -eq 0 ]
