#!/bin/sh
# Training over processes with Open MPI (mpirun -np 2 on this 2-core
# machine): the steps against one process (tests/mpi_steps.c, run under
# mpirun), then the command as users run it: the same run as one process,
# resume with the same and another number of processes, and a failing or
# killed rank ending the whole job within seconds.
# Prints one "ok"/"FAIL"/"skip" line per test case for scripts/run_tests.sh.
SUITE=mpi
. "$(dirname "$0")/lib.sh"
bin=$l2rw
cases="steps other-commands-refused same-as-one-process resume-same-ranks resume-other-ranks-refused failed-rank-ends-job killed-rank-ends-job"

if ! command -v mpirun >/dev/null 2>&1 || [ ! -x "$build/tests/mpi_steps" ]; then
    for c in $cases; do skip "$c" "no Open MPI (make test installs it: sh scripts/deps.sh mpi)"; done
    exit 0
fi
mpi() { mpirun --allow-run-as-root --oversubscribe "$@"; }

# The library's steps: mpi_steps prints its own case lines.
if mpi -np 2 "$build/tests/mpi_steps" > "$tmp/steps.out" 2>&1; then
    ok steps
else
    bad steps "mpi_steps failed"
fi
sed 's/^/   /' "$tmp/steps.out" | grep -v '^   ok ' | sort -u
grep -E '^(ok|FAIL|skip) mpi_steps/' "$tmp/steps.out" | sort -u

# Only train shares its work: P copies of reproduce or predict would each
# write the same files.
mpi -np 2 "$bin" reproduce noise --quick --out "$tmp/rep" > "$tmp/rep.out" 2>&1
rc=$?
if [ $rc -eq 2 ] && grep -q 'only `l2rw train` runs as one of several' "$tmp/rep.out" &&
   [ ! -e "$tmp/rep" ]; then
    ok other-commands-refused
else
    bad other-commands-refused "rc $rc: $(head -3 "$tmp/rep.out")"
fi

if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
    for c in $cases; do [ "$c" = steps ] || skip "$c" "no Fashion-MNIST (dataset-fashion-mnist)"; done
    finish
fi
common="--data fashion-mnist --model lenet --noise background:0.4 --train-size 2000 --val-size 200 --seed 3 --no-plots --quiet --eval-every 10"

# column of a metrics.csv row: step,epoch,train_loss,test_accuracy,...
col() { awk -F, -v s="$2" -v c="$3" '$1 == s { print $c }' "$1/metrics.csv"; }
# |a - b| <= tol
close() { awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= t) }'; }

# LeNet has no batch norm: two processes with batch 100 (50 each) train
# the one-process run to float rounding. Test accuracy equal within one
# example in a thousand, training loss within 1e-4, and the weight on clean
# labels within 1e-4.
"$bin" train $common --steps 30 --threads 1 --out "$tmp/one" > "$tmp/one.out" 2>&1
mpi -np 2 "$bin" train $common --steps 30 --out "$tmp/two" > "$tmp/two.out" 2>&1
rc=$?
if [ $rc -ne 0 ] || [ ! -f "$tmp/two/model.l2rw" ]; then
    bad same-as-one-process "mpirun exited $rc: $(tail -3 "$tmp/two.out")"
elif ! grep -q '"ranks": 2' "$tmp/two/summary.json"; then
    bad same-as-one-process "summary.json does not say ranks 2"
elif close "$(col "$tmp/one" 30 4)" "$(col "$tmp/two" 30 4)" 0.001 &&
     close "$(col "$tmp/one" 30 3)" "$(col "$tmp/two" 30 3)" 1e-4 &&
     close "$(col "$tmp/one" 30 8)" "$(col "$tmp/two" 30 8)" 1e-4; then
    ok same-as-one-process
else
    bad same-as-one-process "step 30: $(grep '^30,' "$tmp/one/metrics.csv") vs $(grep '^30,' "$tmp/two/metrics.csv")"
fi

# Stopped at step 20 (a run of 20 steps with its checkpoint) and resumed
# to 30 over the same two processes: the rows of the uninterrupted run.
mpi -np 2 "$bin" train $common --steps 20 --out "$tmp/part" > "$tmp/part.out" 2>&1
mpi -np 2 "$bin" train $common --steps 30 --resume "$tmp/part" > "$tmp/resume.out" 2>&1
rc=$?
if [ $rc -eq 0 ] && cmp -s "$tmp/part/metrics.csv" "$tmp/two/metrics.csv" &&
   cmp -s "$tmp/part/examples.csv" "$tmp/two/examples.csv"; then
    ok resume-same-ranks
else
    bad resume-same-ranks "rc $rc; metrics or examples differ from the uninterrupted run: $(tail -2 "$tmp/resume.out")"
fi

# The shares are part of the run: one process cannot continue it.
"$bin" train $common --steps 40 --resume "$tmp/part" > "$tmp/other.out" 2>&1
rc=$?
if [ $rc -eq 2 ] && grep -q 'ranks=2' "$tmp/other.out"; then
    ok resume-other-ranks-refused
else
    bad resume-other-ranks-refused "rc $rc: $(cat "$tmp/other.out")"
fi

# A rank that cannot read its data ends the job with its message (exit 2)
# instead of leaving the other waiting.
start=$(date +%s)
mpi -np 1 "$bin" train $common --steps 100000 --out "$tmp/f1" : \
    -np 1 "$bin" train --data idx:/nonexistent/images,/nonexistent/labels --model lenet --steps 100000 --out "$tmp/f1" \
    > "$tmp/f1.out" 2>&1
rc=$? took=$(( $(date +%s) - start ))
if [ $rc -eq 2 ] && [ $took -le 30 ] && grep -q 'rank 1 of 2.*nonexistent' "$tmp/f1.out"; then
    ok failed-rank-ends-job
else
    bad failed-rank-ends-job "rc $rc after $took s: $(head -3 "$tmp/f1.out")"
fi

# A rank killed mid-run (SIGKILL after 4 s) ends the job within seconds.
start=$(date +%s)
mpi -np 1 "$bin" train $common --steps 100000 --out "$tmp/f2" : \
    -np 1 timeout -s KILL 4 "$bin" train $common --steps 100000 --out "$tmp/f2" \
    > "$tmp/f2.out" 2>&1
rc=$? took=$(( $(date +%s) - start ))
if [ $rc -ne 0 ] && [ $took -le 30 ]; then
    ok killed-rank-ends-job
else
    bad killed-rank-ends-job "rc $rc after $took s"
fi
finish
