#!/bin/sh
# Run test binaries: "run_tests.sh BUILD T1 T2 ... -- S1 S2 ..." runs the
# plain tests, then the sanitized ones (the same cases under ASan and
# UBSan). Every test prints one line per test case ("ok FILE/CASE",
# "FAIL FILE/CASE", "skip FILE/CASE"; see tests/check.h). The closing line
# counts distinct test cases: a case passes when it passed in every pass
# that ran it, fails when it failed in any, and is skipped when no pass
# ran it. A binary that exits non-zero without naming a failed case
# (a crash, a sanitizer report) counts as a failed case of its own.
build=$1; shift
# The build under test, for the scripts among the tests that run its
# l2rw (tests/device_cli.sh).
export L2RW_BUILD="$build"
# Idle OpenMP threads sleep instead of spinning: on a loaded 2-core machine
# spinning threads starve the test that is running (15 s against 0.4 s).
export OMP_WAIT_POLICY=passive
log=$build/test-cases.txt
: > "$log"
phase=plain
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
    awk -v p="$phase" '($1 == "ok" || $1 == "FAIL" || $1 == "skip") && $2 ~ "^[^/ ]+/[^ ]+$" {
        if ($1 == "FAIL" && $2 ~ /:[0-9]+:$/) next   # an assertion, not a case
        print p, $1, $2 }' "$build/last-test.out" >> "$log"
    if [ $rc -ne 0 ]; then
        echo "!! $t exited with status $rc"
        grep -q '^FAIL [^ ]*$' "$build/last-test.out" ||
            echo "$phase FAIL $(basename "$t")/exit-status-$rc" >> "$log"
    fi
    echo "   ($(( $(date +%s) - start )) s)"
done
awk '{
    key = $3; seen[key] = 1
    if ($2 == "FAIL") bad[key] = 1
    else if ($2 == "ok") good[key] = 1
    n[$1 " " $2]++
} END {
    for (k in seen) {
        if (k in bad) { f++; print "failed: " k }
        else if (k in good) p++
        else s++
    }
    printf "plain pass: %d ok, %d failed, %d skipped; sanitized pass: %d ok, %d failed, %d skipped\n",
        n["plain ok"], n["plain FAIL"], n["plain skip"],
        n["sanitized ok"], n["sanitized FAIL"], n["sanitized skip"]
    printf "%d passed, %d failed, %d skipped\n", p, f, s
    exit (f > 0) }' "$log"
