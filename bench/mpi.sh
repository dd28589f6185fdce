#!/bin/sh
# Scaling over processes (make bench, when Open MPI is there): the same
# training run as 1 process with 1 thread, 1 process with 2 threads and 2
# processes (mpirun -np 2) with 1 thread each, on Fashion-MNIST, batch 100,
# validation batch 100, for LeNet and ResNet-32, plain and l2rw.
#
#   sh bench/mpi.sh path/to/l2rw
#
# A run's steps/s is taken from two runs of S1 and S2 steps:
# (S2 - S1) / (t2 - t1), so that loading the data, building the net and
# the final test evaluation (the same in both) drop out. Speed-ups are
# against 1 process with 1 thread; efficiency is the speed-up over the 2
# cores. Runs alternate between the three set-ups so that the machine's
# load falls on all of them alike.
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

# seconds SETUP MODEL METHOD STEPS: wall time of one run.
seconds() {
    setup=$1 model=$2 method=$3 steps=$4
    args="train --data fashion-mnist --model $model --method $method
          --train-size 5000 --val-size 1000 --batch 100 --val-batch 100
          --steps $steps --eval-every 0 --seed 1 --no-plots --quiet
          --out $tmp/run --overwrite"
    start=$(date +%s.%N)
    case $setup in
    1x1) "$L2RW" $args --threads 1 >/dev/null ;;
    1x2) "$L2RW" $args --threads 2 >/dev/null ;;
    2x1) mpirun --allow-run-as-root --oversubscribe -np 2 "$L2RW" $args \
             --threads 1 >/dev/null ;;
    esac
    awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { print b - a }'
}

printf '%-10s %-6s %10s %10s %10s %8s %8s %8s %8s\n' model method \
    "1x1 st/s" "1x2 st/s" "2x1 st/s" "1x2 up" "2x1 up" "1x2 eff" "2x1 eff"
for spec in "lenet 20 220" "resnet32 1 5"; do
    set -- $spec
    model=$1 s1=$2 s2=$3
    for method in plain l2rw; do
        for setup in 1x1 1x2 2x1; do
            eval "a_$setup=\$(seconds $setup $model $method $s1)"
        done
        for setup in 1x1 1x2 2x1; do
            eval "b_$setup=\$(seconds $setup $model $method $s2)"
        done
        # shellcheck disable=SC2154
        awk -v m="$model" -v me="$method" -v d="$((s2 - s1))" \
            -v a1="$a_1x1" -v b1="$b_1x1" -v a2="$a_1x2" -v b2="$b_1x2" \
            -v a3="$a_2x1" -v b3="$b_2x1" 'BEGIN {
            r1 = d / (b1 - a1); r2 = d / (b2 - a2); r3 = d / (b3 - a3)
            printf "%-10s %-6s %10.2f %10.2f %10.2f %8.2f %8.2f %7.0f%% %7.0f%%\n",
                m, me, r1, r2, r3, r2 / r1, r3 / r1, 50 * r2 / r1, 50 * r3 / r1 }'
    done
done
