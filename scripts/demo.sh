#!/bin/sh
# make demo: plain training and L2RW on Fashion-MNIST whose training labels
# are 40% flipped to one background class (T-shirt, class 0), LeNet, with
# 1,000 clean validation images. Prints the two test accuracies and where
# the plots are.
#
#   sh scripts/demo.sh [L2RW_BINARY]     (default build/l2rw)
#
# DEMO_OUT (default out/demo) and DEMO_STEPS (default 1500) change the
# output directory and the length of each run.
set -eu
bin=${1:-build/l2rw}
out=${DEMO_OUT:-out/demo}
steps=${DEMO_STEPS:-1500}

if [ ! -x "$bin" ]; then
    echo "demo: $bin not found; run make first" >&2
    exit 2
fi

common="--data fashion-mnist --model lenet --noise background:0.4 \
--val-size 1000 --steps $steps --eval-every 250 --seed 1"

# --overwrite: a second demo starts over in the directories of the first
# (without it, l2rw train refuses an --out that holds another run).
for m in plain l2rw; do
    echo "== $m: $bin train $common --method $m --out $out/$m --overwrite"
    # shellcheck disable=SC2086
    "$bin" train $common --method $m --out "$out/$m" --overwrite
done

acc() {
    sed -n 's/.*"final_test_accuracy": \([0-9.]*\).*/\1/p' "$1/summary.json"
}
share() {
    sed -n 's/.*"clean_weight_share": \([0-9.]*\).*/\1/p' "$1/summary.json"
}
secs() {
    sed -n 's/.*"seconds": \([0-9.]*\).*/\1/p' "$1/summary.json"
}

echo
echo "Fashion-MNIST, 40% background flip, LeNet, $steps steps:"
for m in plain l2rw; do
    awk -v m="$m" -v a="$(acc "$out/$m")" -v c="$(share "$out/$m")" \
        -v s="$(secs "$out/$m")" 'BEGIN {
        printf "  %-6s test accuracy %6.2f%%   weight on clean labels %5.1f%%   (%.0f s)\n",
               m, 100 * a, 100 * c, s }'
done
echo "plots: $out/plain/accuracy.svg $out/l2rw/accuracy.svg"
echo "       $out/plain/weights.svg $out/l2rw/weights.svg"
echo "per-example weights (least trusted first): $out/l2rw/examples.csv"
