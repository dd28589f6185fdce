#!/bin/sh
# The paper's BackgroundFlip protocol on Fashion-MNIST, plain against
# L2RW, for the GPU machine (issue 11):
#
#   OUT=dir STEPS=N DATA=fashion-mnist:DIR sh scripts/gpu_paper.sh
#
# ResNet-32, 40% background flips, 10 clean images per class (the clean
# set of the paper's BackgroundFlip runs), batch 100, learning rate 0.1,
# momentum 0.9, weight decay 2e-4, x0.1 at 1/2 and 3/4 of STEPS (default
# 5,000; the paper ran 80,000 on CIFAR), the test set every STEPS/10
# steps, FP32 products (TF32=1 for TF32), the data on the device. The
# GPU machine has no data set installed: carry the four Fashion-MNIST
# .gz files (31 MB) in an ignored folder and give it as DATA (the `run`
# tool's carry list; .gitignore ignores gpu-data/ for that: mkdir -p
# gpu-data/fashion-mnist; cp /usr/share/datasets/fashion-mnist/*.gz
# there; DATA=fashion-mnist:gpu-data/fashion-mnist). DEVICE (default
# cuda) and THREADS (default 16)
# let the same script be tried on the CPU with a few steps:
#
#   OUT=/tmp/p STEPS=4 DEVICE=cpu THREADS=2 DATA=fashion-mnist \
#       sh scripts/gpu_paper.sh
#
# Writes $OUT/plain and $OUT/l2rw (each run's files) and $OUT/results.md
# (test accuracy, weight share on clean labels, wall time, steps/s and
# the exact commands). Exits 1 when a run failed.
set -u
OUT=${OUT:-./gpu-paper}
STEPS=${STEPS:-5000}
DATA=${DATA:-fashion-mnist}
DEVICE=${DEVICE:-cuda}
THREADS=${THREADS:-16}
B=${BUILD_DIR:-build}
TF32=${TF32:-0}
mkdir -p "$OUT"
tf=""
[ "$TF32" = 1 ] && tf="--tf32"
every=$((STEPS / 10 > 0 ? STEPS / 10 : 1))
md=$OUT/results.md
{
    echo "# BackgroundFlip on Fashion-MNIST, $DEVICE, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "ResNet-32, 40% background flips, 10 clean images per class, $STEPS steps"
    echo "(batch 100, lr 0.1, momentum 0.9, wd 2e-4, x0.1 at 1/2 and 3/4)."
    echo
    echo "| method | test accuracy | weight on clean labels | wall time | steps/s |"
    echo "| --- | ---: | ---: | ---: | ---: |"
} > "$md"
fail=0
cmds=""
for m in plain l2rw; do
    cmd="$B/l2rw train --data $DATA --model resnet32 --method $m \
--noise background:0.4 --val-per-class 10 --batch 100 --val-batch 100 \
--lr 0.1 --momentum 0.9 --wd 2e-4 --lr-steps $((STEPS / 2)),$((STEPS * 3 / 4)) \
--steps $STEPS --eval-every $every --checkpoint-every $every \
--device $DEVICE --threads $THREADS $tf --no-plots --overwrite --out $OUT/$m"
    echo "== $cmd"
    if ! $cmd > "$OUT/$m.log" 2>&1; then
        echo "   failed:"
        tail -n 5 "$OUT/$m.log"
        fail=1
        continue
    fi
    tail -n 3 "$OUT/$m.log"
    cmds="$cmds
    $cmd"
    awk -v m="$m" -F': ' '
        { gsub(/[ ",]/, "", $1); gsub(/[ ",]/, "", $2); v[$1] = $2 }
        END { acc = v["final_test_accuracy"]; cs = v["clean_weight_share"]
              share = (cs + 0 >= 0) ? sprintf("%.1f%%", 100 * cs) : "-"
              printf "| %s | %.2f%% | %s | %.0f s | %.1f |\n", m, 100 * acc,
                     share, v["seconds"], v["loop_steps"] / v["loop_seconds"] }' \
        "$OUT/$m/summary.json" >> "$md"
done
{
    echo
    echo "Commands:"
    echo "$cmds"
} >> "$md"
cat "$md"
exit $fail
