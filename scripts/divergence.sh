#!/bin/sh
# The divergence experiment of README.md ("Divergence and gradient
# clipping"): L2RW with an MLP on scikit-learn's digits (1,797 rows of 64
# features, 10 classes; 20% held out as the test set, 10 clean examples
# per class from the rest), 40% uniform label flips, lr 0.01 momentum 0.9,
# 3,000 steps of batch 100, seeds 1-6, under several settings; prints a
# Markdown table of the final test accuracies.
#
#   scripts/divergence.sh [OUT_DIR]                 (default /tmp/l2rw-div)
#
# Data: Debian's python3-sklearn ships the set as
# sklearn/datasets/data/digits.csv.gz (64 features then the label, no
# header): already a CSV that `l2rw train --data csv:FILE` reads. Only
# this experiment needs it (apt-get install python3-sklearn); nothing of
# it is committed and no test depends on it.
set -eu

OUT=${1:-/tmp/l2rw-div}
L2RW=${L2RW:-./build/l2rw}
SEEDS=${SEEDS:-"1 2 3 4 5 6"}
SRC=$(find /usr/lib/python3/dist-packages/sklearn -name digits.csv.gz \
      2>/dev/null | head -n 1)
if [ -z "$SRC" ]; then
    echo "divergence.sh: digits.csv.gz not found: apt-get install" \
         "python3-sklearn" >&2
    exit 2
fi
mkdir -p "$OUT"
cp "$SRC" "$OUT/digits.csv.gz"
DATA="csv:$OUT/digits.csv.gz,frac=0.2"
BASE="train --data $DATA --model mlp --method l2rw --noise uniform:0.4
      --val-per-class 10 --steps 3000 --eval-every 250 --threads 2
      --quiet --no-plots --overwrite"

# name|options
SETTINGS="no-check|--lr 0.01 --momentum 0.9 --no-divergence-check
check|--lr 0.01 --momentum 0.9
clip1|--lr 0.01 --momentum 0.9 --clip-grad-norm 1
clip5|--lr 0.01 --momentum 0.9 --clip-grad-norm 5
lr0.001|--lr 0.001 --momentum 0.9
adamw|--optimizer adamw --lr 0.001 --wd 0.01"

# One run; prints "final_accuracy max_train_loss exit_status".
run_one() {
    dir=$1; shift
    set +e
    # shellcheck disable=SC2086
    "$L2RW" $BASE --out "$dir" "$@" > "$dir.log" 2>&1
    rc=$?
    set -e
    acc=$(sed -n 's/.*"final_test_accuracy": \([0-9.e-]*\).*/\1/p' \
          "$dir/summary.json" 2>/dev/null || true)
    # the last evaluation row of a failed run (no summary)
    [ -n "$acc" ] || acc=$(tail -n 1 "$dir/metrics.csv" 2>/dev/null |
                           cut -d, -f4)
    loss=$(awk -F, 'NR > 1 && $3 > m { m = $3 } END { print m + 0 }' \
           "$dir/metrics.csv" 2>/dev/null || echo "?")
    echo "${acc:-?} $loss $rc"
}

echo "| setting | options | test accuracy per seed (%) | mean | max train loss | exit 1 |"
echo "| --- | --- | --- | --- | --- | --- |"
echo "$SETTINGS" | while IFS='|' read -r name opts; do
    accs="" sum=0 n=0 maxloss=0 failed=0
    for s in $SEEDS; do
        # shellcheck disable=SC2086
        set -- $(run_one "$OUT/$name-$s" $opts --seed "$s")
        a=$(awk -v a="$1" 'BEGIN { printf "%.1f", 100 * a }')
        accs="$accs $a"
        sum=$(awk -v s="$sum" -v a="$a" 'BEGIN { print s + a }')
        n=$((n + 1))
        maxloss=$(awk -v m="$maxloss" -v l="$2" \
                  'BEGIN { print (l > m ? l : m) }')
        [ "$3" = 1 ] && failed=$((failed + 1))
    done
    mean=$(awk -v s="$sum" -v n="$n" 'BEGIN { printf "%.1f", s / n }')
    echo "| $name | \`$opts\` |$accs | $mean | $maxloss | $failed/$n |"
done
echo
echo "runs and logs in $OUT (the step each stopped run names: grep" \
     "diverged $OUT/*.log)"
