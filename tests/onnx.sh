#!/bin/sh
# `l2rw export --format onnx` checked in ONNX Runtime: for every model of
# build/tests/test_onnx --fixtures (mlp, mlp:32,16, lenet, resnet8,
# resnet20, wrn-10-2:0.3; random parameters and batch-norm statistics),
# each of batch norm folded or kept and normalisation in the graph or in
# the metadata, the exported model's logits on the fixture inputs equal
# l2rw's within 1e-4 * max(1, |logit|) (tests/onnx_check.js says why).
# ONNX Runtime is npm's onnxruntime-node, installed once under
# build/onnxruntime; without node or npm (or network for the first
# install) those cases are skipped with the reason. The command-line
# refusals (exit 2) need neither.
#
# One line per check, "ok onnx/WHAT", "FAIL onnx/WHAT" (details follow,
# indented with "  | ") or "skip onnx/WHAT" (the reason on the next
# line), as tests/examples.sh, then "onnx: N passed, N failed".
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build
l2rw=$build/l2rw
fixtures=$build/tests/test_onnx
ort=$build/onnxruntime
ORT_VERSION=1.30.0
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok onnx/$1"; }
bad() { fail=$((fail + 1)); echo "FAIL onnx/$1"; shift; echo "$*" | detail; }
skip() { echo "skip onnx/$1"; shift; echo "   (skipped: $*)"; }
detail() { sed 's/^/  | /'; }
finish() { echo "onnx: $pass passed, $fail failed"; [ "$fail" -eq 0 ]; exit $?; }

for f in "$l2rw" "$fixtures"; do
    [ -x "$f" ] || { bad built "$f is missing (make all build/tests/test_onnx)"; finish; }
done

# 1. Fixtures: models, norm.txt, inputs and l2rw's logits.
mkdir "$tmp/fx"
if ! "$fixtures" --fixtures "$tmp/fx" > "$tmp/fx.log" 2>&1; then
    bad fixtures "test_onnx --fixtures"; detail < "$tmp/fx.log"; finish
fi
one=$tmp/fx/lenet/model.l2rw

# 2. Refusals: exit 2, one line on stderr, no output file.
refused() { # NAME ARGS...: l2rw export ARGS must exit 2
    name=$1; shift
    rm -f "$tmp/out.onnx"
    "$l2rw" export "$@" > "$tmp/o.log" 2> "$tmp/e.log"; rc=$?
    if [ $rc -ne 2 ]; then bad "$name" "exit $rc, want 2: l2rw export $*"; detail < "$tmp/e.log"
    elif [ "$(wc -l < "$tmp/e.log")" -ne 1 ]; then bad "$name" "want one line on stderr"; detail < "$tmp/e.log"
    elif [ -e "$tmp/out.onnx" ]; then bad "$name" "an output file was left behind"
    else ok "$name"; fi
}
refused cli-unknown-format --load "$one" --format tflite "$tmp/out.onnx"
refused cli-no-load "$tmp/out.onnx"
refused cli-no-output --load "$one"
refused cli-fold-contradiction --load "$one" --fold-bn --no-fold-bn "$tmp/out.onnx"
printf 'not a model\n' > "$tmp/corrupt.l2rw"
refused cli-corrupt-model --load "$tmp/corrupt.l2rw" "$tmp/out.onnx"
head -c 200 "$one" > "$tmp/truncated.l2rw"
refused cli-truncated-model --load "$tmp/truncated.l2rw" "$tmp/out.onnx"
refused cli-norm-channels --load "$one" --norm "$tmp/fx/resnet8/norm.txt" "$tmp/out.onnx"
refused cli-unwritable-output --load "$one" "$tmp/no-such-dir/out.onnx"

# 3. Same model, same options: the same bytes.
"$l2rw" export --load "$one" "$tmp/a.onnx" > /dev/null 2>&1 &&
    "$l2rw" export --load "$one" --out "$tmp/b.onnx" > /dev/null 2>&1 &&
    cmp -s "$tmp/a.onnx" "$tmp/b.onnx" && ok deterministic ||
    bad deterministic "two exports of $one differ (or failed)"

# 4. ONNX Runtime, installed once (the flag skips the postinstall script,
# which would download CUDA binaries; the CPU ones are in the package).
why=""
if ! command -v node > /dev/null 2>&1 || ! command -v npm > /dev/null 2>&1; then
    why="node or npm not installed (sh scripts/deps.sh node)"
elif ! (cd "$tmp" && node -e "require('$ort/node_modules/onnxruntime-node')") > /dev/null 2>&1; then
    mkdir -p "$ort"
    if ! npm install --prefix "$ort" "onnxruntime-node@$ORT_VERSION" --no-audit \
            --no-fund --onnxruntime-node-install=skip > "$tmp/npm.log" 2>&1 ||
        ! (cd "$tmp" && node -e "require('$ort/node_modules/onnxruntime-node')") > /dev/null 2>&1; then
        why="onnxruntime-node@$ORT_VERSION could not be installed or loaded (no network?): $(grep -m1 -i err "$tmp/npm.log")"
    fi
fi

# 5. Every model, every variant: export, run, compare.
for label in $(cat "$tmp/fx/cases.txt"); do
    dir=$tmp/fx/$label
    for fold in fold no-fold; do
        for norm in graph meta; do
            case=$label-$fold-norm$norm
            flags="--$fold-bn"
            [ $norm = meta ] && flags="$flags --no-norm-in-graph"
            model=$dir/$fold-$norm.onnx
            # shellcheck disable=SC2086
            if ! "$l2rw" export --load "$dir/model.l2rw" $flags "$model" > "$tmp/e.log" 2>&1; then
                bad "$case" "l2rw export $flags failed"; detail < "$tmp/e.log"; continue
            fi
            if [ -n "$why" ]; then skip "$case" "$why"; continue; fi
            if node "$root/tests/onnx_check.js" "$ort" "$model" "$dir" $norm > "$tmp/c.log" 2>&1; then
                ok "$case"; grep '^ok logits' "$tmp/c.log" | detail
            else
                bad "$case" "ONNX Runtime and l2rw disagree"; detail < "$tmp/c.log"
            fi
        done
    done
done
finish
