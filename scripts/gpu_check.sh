#!/bin/sh
# The GPU machine's check, in one run of at most 8 minutes (issue 10):
#
#   OUT=/some/dir sh scripts/gpu_check.sh      (OUT defaults to ./gpu-out)
#
# (BUILD_DIR, default build: the Makefile's BUILD; JOBS, default 16.)
#
#   1. env: the machine (nvidia-smi, nvcc, gcc)
#   2. build: make -j16 (the CUDA back end is built when nvcc is found)
#   3. test_cuda_kernels: the CUDA kernels against the CPU; stops the run
#      (exit 2) when it finds no usable GPU
#   4. test_cuda_san: the same under AddressSanitizer with the GPU cases
#      forced on (L2RW_CUDA_SANITIZED=1), when time is left: tells whether
#      the sanitized pass of `make test` may run them
#   5. train: `l2rw train --device cuda` and `--device cpu` (LeNet and
#      ResNet-8, L2RW, 60 steps on generated images), metrics side by side
#   6. bench: `l2rw bench --device cuda` with bench/torch_bench.py --device
#      cuda, once bench accepts a GPU (until then skipped, saying so)
# Each step's output goes to $OUT/STEP.log.
#
# Every step runs under `timeout`, cut to the time left; the whole script
# stops within GPU_CHECK_SECONDS (default 450 s). $OUT/summary.txt has one
# line per step: name, exit status (124: timed out; skip: not run) and
# seconds. The script exits 0 when every step that ran passed, 2 when the
# CUDA test found no usable GPU (its reason is printed), 1 otherwise.
set -u
OUT=${OUT:-./gpu-out}
LIMIT=${GPU_CHECK_SECONDS:-450}
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

if ! step build 240 "make -j$JOBS BUILD=$B"; then
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

if [ "$(left)" -gt 200 ]; then
    step test_cuda_san 150 "make -j$JOBS BUILD=$B \
        $B/san-tests/test_cuda_kernels &&
        L2RW_SANITIZED=1 L2RW_CUDA_SANITIZED=1 ASAN_OPTIONS=detect_leaks=1 \
        $B/san-tests/test_cuda_kernels"
else
    skip test_cuda_san "less than 200 s left"
fi

# 5. train: the whole loop (L2RW's tangent path with batch norm, the
# per-example path without it) on the GPU and on the CPU, on generated
# 1x28x28 images (no data set is installed there): the two runs' metrics
# side by side; they agree to rounding, not bits.
step train 150 "python3 -c '
import random, struct
def npy(path, descr, shape, data):
    h = \"{\x27descr\x27: \x27%s\x27, \x27fortran_order\x27: False, \x27shape\x27: %s, }\" % (descr, shape)
    h += \" \" * ((64 - (10 + len(h) + 1) % 64) % 64) + \"\\n\"
    open(path, \"wb\").write(b\"\\x93NUMPY\\x01\\x00\" + struct.pack(\"<H\", len(h)) + h.encode() + data)
r = random.Random(1)
for name, n in ((\"train\", 3000), (\"test\", 1000)):
    y = [r.randrange(10) for _ in range(n)]
    x = bytearray(r.randrange(80) for _ in range(n * 784))
    for i in range(n):
        for row in range(2 * y[i], 2 * y[i] + 6):
            for col in range(4, 24): x[i * 784 + row * 28 + col] += 150
    npy(\"$OUT/\" + name + \"_x.npy\", \"|u1\", \"(%d, 1, 28, 28)\" % n, bytes(x))
    npy(\"$OUT/\" + name + \"_y.npy\", \"|u1\", \"(%d,)\" % n, bytes(y))
' || exit 1
    for m in resnet8 lenet; do for d in cuda cpu; do
        echo \"== \$m on \$d\";
        $B/l2rw train --data 'npy:$OUT/train_x.npy,$OUT/train_y.npy;$OUT/test_x.npy,$OUT/test_y.npy' \\
            --model \$m --method l2rw --noise uniform:0.4 --val-size 200 \\
            --steps 60 --eval-every 20 --seed 1 --no-plots --device \$d \\
            --out $OUT/train-\$m-\$d --overwrite || exit 1;
        cat $OUT/train-\$m-\$d/metrics.csv;
    done; done"

# 6. bench: l2rw check and l2rw bench run on the CPU only for now (their
# --device refuses cuda); this step runs once they accept it.
if "$B/l2rw" bench --device cuda --reps 1 --model mlp > /dev/null 2>&1; then
    step bench 150 "for m in resnet32 wrn-28-10; do
        for vb in 100 10; do
            echo \"== \$m batch 100 val-batch \$vb\";
            $B/l2rw bench --device cuda --model \$m --batch 100 \
                --val-batch \$vb --reps 10 || exit 1;
            python3 bench/torch_bench.py --device cuda --model \$m \
                --batch 100 --val-batch \$vb --reps 10 || true;
        done; done"
else
    skip bench "l2rw bench runs on the CPU only for now"
fi

echo "== summary ($OUT/summary.txt), $(($(date +%s) - start)) s in all"
cat "$summary"
exit "$failed"
