#!/bin/sh
# `l2rw eval`, `l2rw predict` and `l2rw bench` with --device, the way a
# user runs them: on the checked device (the CPU's kernels on memory the
# host cannot touch) eval's line and predict's CSV are byte for byte the
# CPU's, since the same kernels run in the same order; bench runs there
# and says that its timings mean nothing, and its CPU output keeps its
# format. CUDA: without a usable GPU each command refuses with one line
# and exit status 2; with one, eval runs and predict's classes agree with
# the CPU's (to rounding: at most 2 of 120 may differ).
#
# Data: tiny IDX sets written here (1x16x16 uint8 images, 4 classes, a
# bright band of rows whose place gives the class, under noise); models:
# LeNet (no batch norm) and ResNet-8 (batch norm: running statistics on
# the device) trained 12 plain steps on the CPU with one thread.
#
# The l2rw binary: $L2RW_BUILD/l2rw (scripts/run_tests.sh exports the
# build under test), else ${1}/l2rw, else build/l2rw. One line per test
# case, "ok device_cli/CASE" or "FAIL device_cli/CASE" (details indented
# "  | "), then "device_cli: N passed, N failed".
SUITE=device_cli
. "$(dirname "$0")/lib.sh"

[ -x "$l2rw" ] || { bad built "$l2rw is missing (make all)"; finish; }

# gen PREFIX N SEED: PREFIX-images (IDX uint8 [N, 16, 16]) and
# PREFIX-labels. The generator is an LCG exact in awk's doubles.
gen() {
    LC_ALL=C awk -v n="$2" -v s="$3" -v img="$1-images" -v lab="$1-labels" 'BEGIN {
        printf "%c%c%c%c%c%c%c%c%c%c%c%c%c%c%c%c", 0, 0, 8, 3, 0, 0,
            int(n / 256), n % 256, 0, 0, 0, 16, 0, 0, 0, 16 > img
        printf "%c%c%c%c%c%c%c%c", 0, 0, 8, 1, 0, 0, int(n / 256), n % 256 > lab
        for (i = 0; i < n; i++) {
            s = (s * 69069 + 1) % 4294967296
            y = int(s / 65536) % 4
            printf "%c", y > lab
            for (p = 0; p < 256; p++) {
                s = (s * 69069 + 1) % 4294967296
                v = int(s / 65536) % 90
                r = int(p / 16)
                if (r >= 3 * y + 1 && r < 3 * y + 5) v += 30
                printf "%c", v > img
            }
        }
    }'
}
gen "$tmp/train" 240 7
gen "$tmp/test" 120 11
data="idx:$tmp/train-images,$tmp/train-labels;$tmp/test-images,$tmp/test-labels"

models="lenet resnet8"
for m in $models; do
    if ! "$l2rw" train --data "$data" --model "$m" --method plain --steps 12 \
        --batch 32 --val-size 40 --lr 0.02 --seed 1 --threads 1 --no-plots \
        --out "$tmp/$m" > "$tmp/train.log" 2>&1; then
        bad "train-$m" "l2rw train --model $m"; detail < "$tmp/train.log"; finish
    fi
done

# 1. eval and predict: checked against cpu, byte for byte.
for m in $models; do
    model=$tmp/$m/model.l2rw
    for d in cpu checked; do
        "$l2rw" eval --load "$model" --data "$data" --batch 50 --threads 1 \
            --device "$d" > "$tmp/eval-$m-$d.out" 2> "$tmp/eval-$m-$d.err"
        echo $? > "$tmp/eval-$m-$d.rc"
        "$l2rw" predict --load "$model" --data "$data" --batch 50 --threads 1 \
            --device "$d" --out "$tmp/pred-$m-$d.csv" > /dev/null 2> "$tmp/pred-$m-$d.err"
        echo $? > "$tmp/pred-$m-$d.rc"
    done
    if [ "$(cat "$tmp/eval-$m-cpu.rc") $(cat "$tmp/eval-$m-checked.rc")" != "0 0" ]; then
        bad "eval-checked-$m" "exit status cpu $(cat "$tmp/eval-$m-cpu.rc"), checked $(cat "$tmp/eval-$m-checked.rc")"
        cat "$tmp/eval-$m-cpu.err" "$tmp/eval-$m-checked.err" | detail
    elif ! grep -q "accuracy" "$tmp/eval-$m-cpu.out"; then
        bad "eval-checked-$m" "no accuracy in: $(cat "$tmp/eval-$m-cpu.out")"
    elif cmp -s "$tmp/eval-$m-cpu.out" "$tmp/eval-$m-checked.out"; then
        ok "eval-checked-$m"
    else
        bad "eval-checked-$m" "eval's output differs between cpu and checked"
        cat "$tmp/eval-$m-cpu.out" "$tmp/eval-$m-checked.out" | detail
    fi
    rows=$(wc -l < "$tmp/pred-$m-cpu.csv" 2> /dev/null)
    if [ "$(cat "$tmp/pred-$m-cpu.rc") $(cat "$tmp/pred-$m-checked.rc")" != "0 0" ]; then
        bad "predict-checked-$m" "exit status cpu $(cat "$tmp/pred-$m-cpu.rc"), checked $(cat "$tmp/pred-$m-checked.rc")"
        cat "$tmp/pred-$m-cpu.err" "$tmp/pred-$m-checked.err" | detail
    elif [ "$rows" != 121 ]; then
        bad "predict-checked-$m" "$rows lines in the CPU's CSV, want 121"
    elif cmp -s "$tmp/pred-$m-cpu.csv" "$tmp/pred-$m-checked.csv"; then
        ok "predict-checked-$m"
    else
        bad "predict-checked-$m" "predict's CSV differs between cpu and checked"
        diff "$tmp/pred-$m-cpu.csv" "$tmp/pred-$m-checked.csv" | head -6 | detail
    fi
done

# 2. bench: on checked it runs, names the device and says its timings
# mean nothing; the steps it skipped (all u <= 0) are the CPU's, since
# its numbers are. On the CPU no device line is added.
bench() { # DEVICE OUT
    "$l2rw" bench --model lenet --batch 16 --val-batch 8 --reps 2 --warmup 1 \
        --threads 1 --device "$1" > "$2" 2>&1
}
skips() { grep -o '[0-9]* of [0-9]* steps' "$1" | tr '\n' ' '; }
if ! bench checked "$tmp/bench-checked.out"; then
    bad bench-checked "l2rw bench --device checked failed"; detail < "$tmp/bench-checked.out"
elif ! grep -q '^device checked (.*mean nothing' "$tmp/bench-checked.out" ||
     ! grep -q '^ratio l2rw/plain [0-9]' "$tmp/bench-checked.out"; then
    bad bench-checked "no device line or no ratio"; detail < "$tmp/bench-checked.out"
elif ! bench cpu "$tmp/bench-cpu.out"; then
    bad bench-checked "l2rw bench --device cpu failed"; detail < "$tmp/bench-cpu.out"
elif [ "$(skips "$tmp/bench-cpu.out")" != "$(skips "$tmp/bench-checked.out")" ]; then
    bad bench-checked "skipped steps: cpu '$(skips "$tmp/bench-cpu.out")', checked '$(skips "$tmp/bench-checked.out")'"
elif grep -q '^device' "$tmp/bench-cpu.out" ||
     ! grep -q '^sgemm 1024x1024x1024 [0-9.]* GFLOP/s$' "$tmp/bench-cpu.out"; then
    bad bench-checked "the CPU's output changed"; detail < "$tmp/bench-cpu.out"
else
    ok bench-checked
fi

# 3. CUDA: a one-line refusal with exit status 2 without a usable GPU;
# the GPU's results with one.
"$l2rw" eval --load "$tmp/lenet/model.l2rw" --data "$data" --threads 1 \
    --device cuda > "$tmp/eval-cuda.out" 2> "$tmp/eval-cuda.err"
rc=$?
if [ $rc -eq 2 ]; then
    for c in eval predict bench; do
        case $c in
        bench) set -- --model mlp --reps 1 ;;
        *) set -- --load "$tmp/lenet/model.l2rw" --data "$data" ;;
        esac
        "$l2rw" $c "$@" --device cuda > "$tmp/o" 2> "$tmp/e"
        rc=$?
        if [ $rc -eq 2 ] && [ "$(wc -l < "$tmp/e")" -eq 1 ] && [ ! -s "$tmp/o" ] &&
           grep -q "^l2rw $c: --device cuda: ." "$tmp/e"; then
            ok "$c-cuda-refused"
        else
            bad "$c-cuda-refused" "exit $rc, want 2 and one line: $(cat "$tmp/e")"
        fi
    done
elif [ $rc -eq 0 ] && grep -q accuracy "$tmp/eval-cuda.out"; then
    ok eval-cuda
    if "$l2rw" predict --load "$tmp/lenet/model.l2rw" --data "$data" \
        --device cuda --out "$tmp/pred-cuda.csv" > /dev/null 2> "$tmp/e"; then
        differ=$(paste -d, "$tmp/pred-lenet-cpu.csv" "$tmp/pred-cuda.csv" |
            awk -F, 'NR > 1 && $2 != $9 { d++ } END { print d + 0 }')
        [ "$differ" -le 2 ] && ok predict-cuda ||
            bad predict-cuda "$differ of 120 classes differ from the CPU's"
    else
        bad predict-cuda "l2rw predict --device cuda: $(cat "$tmp/e")"
    fi
else
    bad eval-cuda "exit $rc: $(cat "$tmp/eval-cuda.err")"
fi

# 4. A device name that is none.
"$l2rw" eval --load "$tmp/lenet/model.l2rw" --data "$data" --device tpu \
    > "$tmp/o" 2> "$tmp/e"
rc=$?
[ $rc -eq 2 ] && [ "$(wc -l < "$tmp/e")" -eq 1 ] && ok unknown-device ||
    bad unknown-device "exit $rc, want 2 and one line: $(cat "$tmp/e")"

finish
