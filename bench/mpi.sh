#!/bin/sh
# Scaling over processes (make bench, when Open MPI is there): the same
# training run as 1 process with 1 thread, 1 process with 2 threads and 2
# processes (mpirun -np 2) with 1 thread each, on Fashion-MNIST, batch 100,
# validation batch 100, for LeNet and ResNet-32, plain and l2rw.
#
#   sh bench/mpi.sh path/to/l2rw
#
# A run's steps/s is summary.json's loop_steps / (loop_seconds -
# eval_seconds): its training loop without the test evaluation, so that
# loading the data, building the net and the final evaluation drop out
# (the earlier difference of two run lengths did not survive the final
# evaluation's own spread: ResNet-32 came out at negative rates).
# Speed-ups are against 1 process with 1 thread; efficiency is the
# speed-up over the 2 cores. The set-ups alternate, twice for LeNet and
# once for ResNet-32 (its runs take a minute each, most of it the final
# evaluation of 10,000 images), and a cell is the better of its runs.
set -e
L2RW=${1:?usage: sh bench/mpi.sh path/to/l2rw}
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
if ! command -v mpirun >/dev/null 2>&1; then
    echo "bench/mpi.sh: no mpirun (sh scripts/deps.sh mpi installs Open MPI)"
    exit 0
fi
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
    echo "bench/mpi.sh: no Fashion-MNIST (dataset-fashion-mnist)"
    exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
echo "l2rw over processes: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs," \
    "load average $(cut -d' ' -f1-3 /proc/loadavg)"

# rate SETUP MODEL METHOD STEPS: steps/s of one run's loop.
rate() {
    setup=$1 model=$2 method=$3 steps=$4
    args="train --data fashion-mnist --model $model --method $method
          --train-size 5000 --val-size 1000 --batch 100 --val-batch 100
          --steps $steps --eval-every 0 --seed 1 --no-plots --quiet
          --out $tmp/run --overwrite"
    case $setup in
    1x1) "$L2RW" $args --threads 1 >/dev/null ;;
    1x2) "$L2RW" $args --threads 2 >/dev/null ;;
    2x1) mpirun --allow-run-as-root --oversubscribe -np 2 "$L2RW" $args \
             --threads 1 >/dev/null ;;
    esac
    sed -n 's/^ *"\(loop_steps\|loop_seconds\|eval_seconds\)": \([0-9.e+-]*\),$/\1 \2/p' \
        "$tmp/run/summary.json" | awk '
        { v[$1] = $2 }
        END { print v["loop_steps"] / (v["loop_seconds"] - v["eval_seconds"]) }'
}

printf '%-10s %-6s %10s %10s %10s %8s %8s %8s %8s\n' model method \
    "1x1 st/s" "1x2 st/s" "2x1 st/s" "1x2 up" "2x1 up" "1x2 eff" "2x1 eff"
for spec in "lenet 200 2" "resnet32 4 1"; do
    set -- $spec
    model=$1 steps=$2 repeats=$3
    for method in plain l2rw; do
        r_1x1=0 r_1x2=0 r_2x1=0
        k=0
        while [ $k -lt "$repeats" ]; do
            for setup in 1x1 1x2 2x1; do
                x=$(rate $setup $model $method $steps)
                eval "r_$setup=\$(awk -v a=\"\$r_$setup\" -v b=\"$x\" 'BEGIN { print (b > a) ? b : a }')"
            done
            k=$((k + 1))
        done
        # shellcheck disable=SC2154
        awk -v m="$model" -v me="$method" -v r1="$r_1x1" -v r2="$r_1x2" \
            -v r3="$r_2x1" 'BEGIN {
            printf "%-10s %-6s %10.2f %10.2f %10.2f %8.2f %8.2f %7.0f%% %7.0f%%\n",
                m, me, r1, r2, r3, r2 / r1, r3 / r1, 50 * r2 / r1, 50 * r3 / r1 }'
    done
done
