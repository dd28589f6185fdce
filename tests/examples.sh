#!/bin/sh
# The README's C programs, checked the way a user meets them: the code in
# README.md equals examples/*.c, `make install` puts the library and
# l2rw.pc under a prefix, the programs build warning-free with the
# README's pkg-config line and run a few steps on Fashion-MNIST.
# One line per check, "ok examples/WHAT", "FAIL examples/WHAT" (details
# follow, indented with "  | ") or "skip examples/WHAT" (the reason on the
# next line), as tests/check.h prints test cases, then "examples: N passed,
# N failed" for scripts/run_tests.sh.
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok examples/$1"; }
bad() { fail=$((fail + 1)); echo "FAIL examples/$1"; shift; echo "$*" | detail; }
skip() { echo "skip examples/$1"; shift; echo "   (skipped: $*)"; }
detail() { sed 's/^/  | /'; }

# 1. README blocks marked <!-- example: FILE --> are the files themselves.
for f in "$root"/examples/*.c; do
    name=examples/$(basename "$f")
    what=readme-$(basename "$f" .c)
    awk -v m="<!-- example: $name -->" '
        $0 == m { want = 1; next }
        want && /^```c$/ { inblock = 1; next }
        inblock && /^```$/ { exit }
        inblock { print }' "$root/README.md" > "$tmp/block.c"
    if [ ! -s "$tmp/block.c" ]; then bad "$what" "README.md has no block for $name"
    elif cmp -s "$tmp/block.c" "$f"; then ok "$what"
    else bad "$what" "README.md's copy of $name differs from the file"; diff "$tmp/block.c" "$f" | head -5 | detail
    fi
done

# 2. install, then build with pkg-config as the README says.
if make -s -C "$root" install PREFIX="$tmp/prefix" > "$tmp/install.log" 2>&1; then ok install
else bad install "make install PREFIX=..."; detail < "$tmp/install.log"; fi
PKG_CONFIG_PATH=$tmp/prefix/lib/pkgconfig
export PKG_CONFIG_PATH
flags=$(pkg-config --cflags --libs l2rw 2>&1) && ok pkg-config || bad pkg-config "pkg-config l2rw: $flags"
for f in "$root"/examples/*.c; do
    exe=$tmp/$(basename "$f" .c)
    what=build-$(basename "$f" .c)
    if ${CC:-cc} -std=c11 -Wall -Wextra -Wpedantic -Werror "$f" $flags -o "$exe" 2> "$tmp/cc.log"
    then ok "$what"; else bad "$what" "build $f"; detail < "$tmp/cc.log"; fi
done

# 3. run them briefly (accuracy above chance, 10%: the programs train).
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
    why="Fashion-MNIST not installed (make deps installs it)"
    skip run-custom_loop "$why"
    skip run-train_run "$why"
else
    export LD_LIBRARY_PATH="$tmp/prefix/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    out=$(cd "$tmp" && ./custom_loop fashion-mnist 60 2>&1)
    echo "custom_loop: $out" | detail
    echo "$out" | awk '/^60 steps: test accuracy/ { a = $5 + 0 } END { exit !(a > 20) }' \
        && ok run-custom_loop || bad run-custom_loop "custom_loop output"
    out=$(cd "$tmp" && ./train_run 60 2>&1)
    echo "train_run: $out" | detail
    echo "$out" | awk '/^test accuracy/ { a = $3 + 0 } END { exit !(a > 20) }' \
        && [ -s "$tmp/out/train_run/summary.json" ] && [ -s "$tmp/out/train_run/examples.csv" ] \
        && ok run-train_run || bad run-train_run "train_run output or files"
fi
echo "examples: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
