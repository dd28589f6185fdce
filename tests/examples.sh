#!/bin/sh
# The README's C programs, checked the way a user meets them: the code in
# README.md equals examples/*.c, `make install` puts the library and
# l2rw.pc under a prefix, the programs build warning-free with the
# README's pkg-config line and run a few steps on Fashion-MNIST.
# Prints "examples: N passed, N failed" for scripts/run_tests.sh.
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

# 1. README blocks marked <!-- example: FILE --> are the files themselves.
for f in "$root"/examples/*.c; do
    name=examples/$(basename "$f")
    awk -v m="<!-- example: $name -->" '
        $0 == m { want = 1; next }
        want && /^```c$/ { inblock = 1; next }
        inblock && /^```$/ { exit }
        inblock { print }' "$root/README.md" > "$tmp/block.c"
    if [ ! -s "$tmp/block.c" ]; then bad "README.md has no block for $name"
    elif cmp -s "$tmp/block.c" "$f"; then ok
    else bad "README.md's copy of $name differs from the file"; diff "$tmp/block.c" "$f" | head -5
    fi
done

# 2. install, then build with pkg-config as the README says.
if make -s -C "$root" install PREFIX="$tmp/prefix" > "$tmp/install.log" 2>&1; then ok
else bad "make install PREFIX=..."; cat "$tmp/install.log"; fi
PKG_CONFIG_PATH=$tmp/prefix/lib/pkgconfig
export PKG_CONFIG_PATH
flags=$(pkg-config --cflags --libs l2rw 2>&1) && ok || bad "pkg-config l2rw: $flags"
for f in "$root"/examples/*.c; do
    exe=$tmp/$(basename "$f" .c)
    if ${CC:-cc} -std=c11 -Wall -Wextra -Wpedantic -Werror "$f" $flags -o "$exe" 2> "$tmp/cc.log"
    then ok; else bad "build $f"; cat "$tmp/cc.log"; fi
done

# 3. run them briefly (accuracy above chance, 10%: the programs train).
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
    echo "examples: Fashion-MNIST not installed, runs skipped"
else
    export LD_LIBRARY_PATH="$tmp/prefix/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    out=$(cd "$tmp" && ./custom_loop fashion-mnist 60 2>&1)
    echo "custom_loop: $out"
    echo "$out" | awk '/^60 steps: test accuracy/ { a = $5 + 0 } END { exit !(a > 20) }' \
        && ok || bad "custom_loop output"
    out=$(cd "$tmp" && ./train_run 60 2>&1)
    echo "train_run: $out"
    echo "$out" | awk '/^test accuracy/ { a = $3 + 0 } END { exit !(a > 20) }' \
        && [ -s "$tmp/out/train_run/summary.json" ] && [ -s "$tmp/out/train_run/examples.csv" ] \
        && ok || bad "train_run output or files"
fi
echo "examples: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
