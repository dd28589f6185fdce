#!/bin/sh
# Run test binaries: "run_tests.sh BUILD T1 T2 ... -- S1 S2 ..." runs the
# plain tests, then the sanitized ones, and prints one closing line
# "N passed, N failed" over all assertions.
build=$1; shift
# Idle OpenMP threads sleep instead of spinning: on a loaded 2-core machine
# spinning threads starve the test that is running (15 s against 0.4 s).
export OMP_WAIT_POLICY=passive
log=$build/test-results.txt
: > "$log"
phase=plain
fail_bins=0
for t in "$@"; do
    if [ "$t" = "--" ]; then phase=sanitized; continue; fi
    echo "== $phase: $t"
    start=$(date +%s)
    if [ "$phase" = sanitized ]; then
        L2RW_SANITIZED=1 ASAN_OPTIONS=detect_leaks=1 "$t" > "$build/last-test.out" 2>&1; rc=$?
    else
        "$t" > "$build/last-test.out" 2>&1; rc=$?
    fi
    cat "$build/last-test.out"
    grep -E '^[^ ]+: [0-9]+ passed, [0-9]+ failed$' "$build/last-test.out" | tail -n 1 >> "$log"
    if [ $rc -ne 0 ]; then
        fail_bins=$((fail_bins + 1))
        echo "!! $t exited with status $rc"
        grep -qE '^[^ ]+: [0-9]+ passed, [0-9]+ failed$' "$build/last-test.out" || echo "$t: 0 passed, 1 failed" >> "$log"
    fi
    echo "   ($(( $(date +%s) - start )) s)"
done
awk -v bins="$fail_bins" '{ p += $2; f += $4 } END {
    if (bins > 0 && f == 0) f = bins
    printf "%d passed, %d failed\n", p, f; exit (f > 0 || bins > 0) }' "$log"
