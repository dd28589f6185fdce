#!/bin/sh
# The training loop's cost beyond its steps (make bench; issue 11):
#
#   sh bench/loop.sh path/to/l2rw [DEVICE]       (DEVICE default cpu)
#
# For plain and l2rw: the step time of `l2rw bench` (LeNet, batch and
# validation batch 100, the median of REPS) against a whole `l2rw train`
# run of STEPS steps on DATA (summary.json's loop_seconds / loop_steps:
# from the first step to the outputs, data loading not), once with an
# evaluation of the whole test set every STEPS/5 steps and once with the
# final one only. The overhead is loop / bench - 1; the target is 10% at
# most. DATA defaults to Fashion-MNIST (make bench installs it); THREADS
# default 2.
set -e
L2RW=${1:?usage: sh bench/loop.sh path/to/l2rw [DEVICE]}
DEV=${2:-cpu}
THREADS=${THREADS:-2}
STEPS=${LOOP_STEPS:-500}
REPS=${REPS:-30}
DATA=${DATA:-fashion-mnist}
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
OUT=$(dirname "$L2RW")/bench/loop-$DEV
mkdir -p "$OUT"
echo "loop overhead: $(date -u '+%Y-%m-%d %H:%M UTC'), device $DEV," \
    "threads $THREADS, LeNet, batch 100, $STEPS steps, evaluation every" \
    "$((STEPS / 5)), data $DATA"
"$L2RW" bench --device "$DEV" --model lenet --batch 100 --val-batch 100 \
    --reps "$REPS" --threads "$THREADS" > "$OUT/bench.txt"
printf '%-6s %-9s %10s %10s %8s %9s\n' method evals bench-ms loop-ms \
    loop-s overhead
for m in plain l2rw; do
    b=$(awk -v m="$m" '$1 == m && $3 == "ms/step" { print $2 }' \
        "$OUT/bench.txt")
    for every in $((STEPS / 5)) 0; do
        "$L2RW" train --data "$DATA" --model lenet --method "$m" \
            --steps "$STEPS" --eval-every "$every" --checkpoint-every 0 \
            --device "$DEV" --threads "$THREADS" --no-plots --quiet \
            --overwrite --out "$OUT/$m-$every" > /dev/null
        sed -n 's/^ *"loop_\(steps\|seconds\)": \([0-9.e+-]*\),$/\1 \2/p' \
            "$OUT/$m-$every/summary.json" |
            awk -v m="$m" -v b="$b" -v e="$every" '
            $1 == "steps" { n = $2 } $1 == "seconds" { s = $2 }
            END { ms = 1000 * s / n
                  printf "%-6s %-9s %10.2f %10.2f %8.1f %8.1f%%\n", m,
                         e ? "5" : "end only", b, ms, s, 100 * (ms / b - 1) }'
    done
done
