#!/bin/sh
# The shared library as a user links it: a versioned soname, and only the
# public API exported (every exported symbol is declared in include/, no
# internal l2rw__ name leaks, the public functions are all there).
# Prints one "ok"/"FAIL" line per test case for scripts/run_tests.sh.
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
so=$build/libl2rw.so
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok library/$1"; }
bad() { fail=$((fail + 1)); echo "FAIL library/$1"; shift; echo "   $*"; }

soname=$(readelf -d "$so" 2>/dev/null | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
version=$(sed -n 's/.*L2RW_VERSION "\(.*\)".*/\1/p' "$root/include/l2rw.h")
if [ "$soname" = "libl2rw.so.${version%%.*}" ] && [ -f "$build/$soname" ]; then
    ok soname
else
    bad soname "soname '$soname', expected libl2rw.so.${version%%.*} for version $version"
fi

nm -D --defined-only "$so" | awk '$2 ~ /^[TtDdBbRrVvWw]$/ { print $3 }' | sort -u > "$tmp/exported"
internal=$(grep -c '^l2rw__' "$tmp/exported")
[ "$internal" -eq 0 ] && ok no-internal-symbols ||
    bad no-internal-symbols "$internal internal l2rw__ symbols exported: $(grep '^l2rw__' "$tmp/exported" | head -3 | tr '\n' ' ')"

# Declared in the public headers: every name followed by "(".
grep -ohE '\bl2rw_[a-z0-9_]+[[:space:]]*\(' "$root"/include/*.h |
    sed 's/[[:space:]]*($//' | sort -u > "$tmp/declared"
undeclared=$(comm -23 "$tmp/exported" "$tmp/declared" | tr '\n' ' ')
[ -z "$undeclared" ] && ok exports-are-declared ||
    bad exports-are-declared "exported but not in include/: $undeclared"

missing=""
for f in l2rw_net_create l2rw_net_forward l2rw_train_run l2rw_method_step \
         l2rw_data_prepare l2rw_set_threads l2rw_strerror l2rw_self_check; do
    grep -qx "$f" "$tmp/exported" || missing="$missing $f"
done
[ -z "$missing" ] && ok public-api-exported || bad public-api-exported "not exported:$missing"

echo "library: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
