#!/bin/sh
# `l2rw check --device` as a user runs it: on the checked back end (the
# CPU's kernels on a guarded arena) the device agreement checks follow
# the CPU checks after a line naming the device, every one passes
# bit-identical ("(bits)", error 0), and the summary counts both; an
# absent GPU and an unknown device are refused with a reason (exit 2)
# before anything runs. The binary: $L2RW_BUILD/l2rw (scripts/run_tests.sh
# exports the build under test), else $1/l2rw, else build/l2rw. Prints
# one "ok"/"FAIL" line per test case for scripts/run_tests.sh.
SUITE=check_device
. "$(dirname "$0")/lib.sh"

# The quick run: mlp, lenet, resnet8 and wrn-10-1, 9 quantities each plus
# the running statistics of the two with batch norm.
want=38
"$l2rw" check --device checked --quick --threads 2 > "$tmp/out" 2> "$tmp/err"
rc=$?
dev=$(sed -n '/^device checked: /,$p' "$tmp/out" | sed '1d;$d')
n=$(printf '%s\n' "$dev" | grep -c '^ok  *checked .* (bits)  *max rel err 0\.0e+00$')
total=$(printf '%s\n' "$dev" | grep -c .)
if [ "$rc" -eq 0 ] && [ "$n" -eq "$want" ] && [ "$total" -eq "$want" ]; then
    ok checked-bit-identical
else
    bad checked-bit-identical "exit $rc, $n of $total device lines ok and bit-identical (want $want): $(grep -v '^ok' "$tmp/out" | head -3 | tr '\n' ' ') $(head -2 "$tmp/err")"
fi

cpu=$(sed '/^device checked: /,$d' "$tmp/out" | grep -c '^ok ')
if tail -1 "$tmp/out" | grep -q "^$((cpu + want)) checks passed, 0 failed" &&
   [ "$cpu" -gt 0 ]; then
    ok summary-counts-both
else
    bad summary-counts-both "$cpu CPU checks, $want device checks, summary: $(tail -1 "$tmp/out")"
fi

for d in cuda:999 gpu; do
    case $d in cuda:999) name=refuses-absent-gpu ;; *) name=refuses-unknown ;; esac
    "$l2rw" check --device "$d" --quick > "$tmp/out" 2> "$tmp/err"
    rc=$?
    if [ "$rc" -eq 2 ] && [ ! -s "$tmp/out" ] &&
       grep -q "^l2rw check: --device $d: ." "$tmp/err"; then
        ok "$name"
    else
        bad "$name" "--device $d: exit $rc, stdout $(wc -l < "$tmp/out") lines, stderr: $(head -2 "$tmp/err")"
    fi
done

finish
