#!/bin/sh
# The GPU machine's check, in one run of at most 8 minutes (issue 10):
#
#   OUT=/some/dir sh scripts/gpu_check.sh      (OUT defaults to ./gpu-out)
#
# (BUILD_DIR, default build: the Makefile's BUILD; JOBS, default 16.)
#
#   1. env: the machine (nvidia-smi, nvcc, gcc)
#   2. build: make -j16 all and the test programs below (the CUDA back
#      end is built when the toolkit is found)
#   3. test_cuda_kernels: the CUDA kernels against the CPU; stops the run
#      (exit 2) when it finds no usable GPU
#   4. check: `l2rw check --device cuda --verbose`: the CPU's self-checks,
#      then every zoo net on the GPU against the same net on the CPU (with
#      the worst entry of each check)
#   5. device_tests: test_check_device and test_device_data (whole runs on
#      the GPU: data uploaded = streamed = resumed, bit for bit; against
#      the CPU's run within the tolerances stated there)
#   6. train: `l2rw train --device cuda` and `--device cpu` (LeNet and
#      ResNet-8, L2RW, 60 steps on generated images; ResNet-8 also on
#      CIFAR-shaped images, augmented on the device), metrics side by side
#   7. bench: `l2rw bench --device cuda` for LeNet and ResNet-32 (batch
#      and validation batch 100: plain and L2RW step, their ratio), with
#      bench/torch_bench.py --device cuda side by side when PyTorch sees
#      the GPU; a table of the two at the end of $OUT/bench.log
#      loop: bench/loop.sh on the GPU: a whole run's time per step against
#      bench's step (the loop's overhead)
#   8. test_cuda_san: test_cuda_kernels under AddressSanitizer with the
#      GPU cases forced on (L2RW_CUDA_SANITIZED=1), when time is left:
#      tells whether the sanitized pass of `make test` may run them
# Each step's output goes to $OUT/STEP.log.
#
# Every step runs under `timeout`, cut to the time left; the whole script
# stops within GPU_CHECK_SECONDS (default 480 s). $OUT/summary.txt has one
# line per step: name, exit status (124: timed out; skip: not run) and
# seconds. The script exits 0 when every step that ran passed, 2 when the
# CUDA test found no usable GPU (its reason is printed), 1 otherwise.
set -u
OUT=${OUT:-./gpu-out}
LIMIT=${GPU_CHECK_SECONDS:-480}
JOBS=${JOBS:-16}
B=${BUILD_DIR:-build}
mkdir -p "$OUT"
summary=$OUT/summary.txt
: > "$summary"
start=$(date +%s)
failed=0

left() { echo $((LIMIT - ($(date +%s) - start))); }

# step NAME SECONDS COMMAND...: runs COMMAND (through sh -c) for at most
# SECONDS (fewer when less time is left), output to $OUT/NAME.log.
step() {
    name=$1 want=$2
    shift 2
    budget=$(left)
    [ "$want" -lt "$budget" ] && budget=$want
    if [ "$budget" -lt 10 ]; then
        echo "$name skip 0 (no time left)" >> "$summary"
        echo "== $name: skipped, no time left"
        return 1
    fi
    echo "== $name (at most $budget s): $*"
    t0=$(date +%s)
    timeout -k 10 "$budget" sh -c "$*" > "$OUT/$name.log" 2>&1
    rc=$?
    secs=$(($(date +%s) - t0))
    echo "$name $rc $secs" >> "$summary"
    tail -n 15 "$OUT/$name.log"
    echo "   -> exit status $rc after $secs s"
    [ "$rc" -eq 0 ] || failed=1
    return "$rc"
}

skip() {
    echo "$1 skip 0 ($2)" >> "$summary"
    echo "== $1: skipped ($2)"
}

step env 30 'nvidia-smi; nvidia-smi -q | grep -iE "compute mode|mig mode" ;
    nvcc --version || /usr/local/cuda/bin/nvcc --version; gcc --version;
    nproc; free -g'

T="$B/tests/test_cuda_kernels $B/tests/test_check_device $B/tests/test_device_data"
if ! step build 240 "make -j$JOBS BUILD=$B all $T"; then
    echo "gpu_check: the build failed (see $OUT/build.log)"
    exit 1
fi
# The Makefile's stamp says whether the CUDA back end was built.
[ -e "$B/.cuda-on" ] ||
    echo "gpu_check: WARNING: built without the CUDA back end (no nvcc?)"

step test_cuda_kernels 120 "$B/tests/test_cuda_kernels"
why=$(sed -n 's/^ *(skipped: \(no usable GPU: .*\))$/\1/p' \
    "$OUT/test_cuda_kernels.log" | head -n 1)
if [ -n "$why" ]; then
    echo "gpu_check: $why"
    echo "gpu_check: stopping: the remaining steps need the GPU"
    cat "$summary"
    exit 2
fi

step check 90 "$B/l2rw check --device cuda --threads $JOBS --verbose"

# The device tests run ./build/l2rw (tests/testutil.h).
step device_tests 120 "$B/tests/test_check_device && $B/tests/test_device_data"

# 6. train: the whole loop (L2RW's tangent path with batch norm, the
# per-example path without it) on the GPU and on the CPU, on generated
# images (no data set is installed there; scripts/gpu_data.py): the two
# runs' metrics side by side; they agree to rounding, not bits.
step train 150 "python3 scripts/gpu_data.py $OUT || exit 1
    for set in mnist:resnet8 mnist:lenet cifar:resnet8; do
        d=\${set%%:*} m=\${set#*:}
        for dev in cuda cpu; do
            echo \"== \$m on \$d images, \$dev\";
            $B/l2rw train --data \"npy:$OUT/\${d}_train_x.npy,$OUT/\${d}_train_y.npy;$OUT/\${d}_test_x.npy,$OUT/\${d}_test_y.npy\" \\
                --model \$m --method l2rw --noise uniform:0.4 --val-size 200 \\
                --steps 60 --eval-every 20 --seed 1 --no-plots --device \$dev \\
                --out $OUT/train-\$d-\$m-\$dev --overwrite || exit 1;
            cat $OUT/train-\$d-\$m-\$dev/metrics.csv;
        done
    done"

# 7. bench: the steps on the GPU (every timed region of l2rw bench ends
# with a sync; torch_bench.py synchronises too, FP32 without TF32 as l2rw
# computes), outputs in $OUT/bench-MODEL.{l2rw,torch}.txt. The commands
# are a script of their own (sh $OUT/bench.sh BUILD OUT DEVICE REPS
# MODELS...) so that it can be tried without a GPU: DEVICE checked, a
# small REPS and lenet (its timings then mean nothing).
cat > "$OUT/bench.sh" <<'BENCH'
B=$1 OUT=$2 DEV=$3 REPS=$4
shift 4
fail=0
torch=0
python3 -c "import torch, sys; sys.exit(not torch.cuda.is_available())" \
    2> /dev/null && [ "$DEV" != checked ] && torch=1
[ $torch -eq 1 ] || echo "(no PyTorch with a GPU here: l2rw's figures alone)"
for m in "$@"; do
    echo "== l2rw bench --device $DEV --model $m --batch 100 --val-batch 100"
    "$B/l2rw" bench --device "$DEV" --model "$m" --batch 100 --val-batch 100 \
        --reps "$REPS" --warmup 3 > "$OUT/bench-$m.l2rw.txt" 2>&1 || fail=1
    cat "$OUT/bench-$m.l2rw.txt"
    [ $torch -eq 1 ] || continue
    echo "== torch_bench.py --device $DEV --model $m (same settings)"
    python3 bench/torch_bench.py --device "$DEV" --model "$m" --batch 100 \
        --val-batch 100 --reps "$REPS" --warmup 3 \
        > "$OUT/bench-$m.torch.txt" 2>&1 || echo "(torch_bench.py failed)"
    cat "$OUT/bench-$m.torch.txt"
done
echo "ms per step on $DEV, batch 100, validation batch 100 (medians):"
printf '%-9s %9s %9s %7s %11s %11s %7s\n' model plain l2rw ratio \
    torch-plain torch-l2rw ratio
for m in "$@"; do
    l=$(awk '$1 == "plain" && $3 == "ms/step" { p = $2 }
             $1 == "l2rw" && $3 == "ms/step" { r = $2 }
             END { printf "%s %s %s", p ? p : "-", r ? r : "-",
                   p && r ? sprintf("%.2f", r / p) : "-" }' \
        "$OUT/bench-$m.l2rw.txt")
    t=$(awk '/^torch model=/ { for (i = 1; i <= NF; i++) {
                 split($i, kv, "="); v[kv[1]] = kv[2] } }
             END { printf "%s %s %s", v["plain_ms"] ? v["plain_ms"] : "-",
                   v["l2rw_ms"] ? v["l2rw_ms"] : "-",
                   v["ratio"] ? v["ratio"] : "-" }' \
        "$OUT/bench-$m.torch.txt" 2> /dev/null)
    [ -n "$t" ] || t="- - -"
    printf '%-9s %9s %9s %7s %11s %11s %7s\n' "$m" $l $t
done
exit $fail
BENCH
step bench 150 "sh $OUT/bench.sh $B $OUT cuda 10 lenet resnet32"
step bench_tf32 60 "$B/l2rw bench --device cuda --tf32 --model resnet32 \
    --batch 100 --val-batch 100 --reps 10 --warmup 3"

# The loop's overhead over bench's step on the GPU (bench/loop.sh; the
# target is 10%), on the generated 1x28x28 set of the train step.
step loop 90 "DATA='npy:$OUT/mnist_train_x.npy,$OUT/mnist_train_y.npy;$OUT/mnist_test_x.npy,$OUT/mnist_test_y.npy' \
    THREADS=16 LOOP_STEPS=300 sh bench/loop.sh $B/l2rw cuda"

# 8. the kernels under AddressSanitizer, with what time is left
if [ "$(left)" -gt 60 ]; then
    step test_cuda_san 150 "make -j$JOBS BUILD=$B \
        $B/san-tests/test_cuda_kernels &&
        L2RW_SANITIZED=1 L2RW_CUDA_SANITIZED=1 ASAN_OPTIONS=detect_leaks=1 \
        $B/san-tests/test_cuda_kernels"
else
    skip test_cuda_san "less than 60 s left"
fi


echo "== summary ($OUT/summary.txt), $(($(date +%s) - start)) s in all"
cat "$summary"
exit "$failed"
