# Shared by the shell test suites, sourced after setting SUITE (the name
# in their "ok SUITE/CASE" lines): the repository root, the build under
# test ($L2RW_BUILD, which scripts/run_tests.sh exports, else the
# suite's first argument, else build/) and its l2rw, a temporary folder
# removed at exit, and the case lines that scripts/run_tests.sh counts:
# ok CASE, bad CASE DETAIL... (details indented "  | "), skip CASE WHY,
# and finish (the summary line; exit status 0 only if nothing failed).
root=$(cd "$(dirname "$0")/.." && pwd)
build=${L2RW_BUILD:-${1:-$root/build}}
l2rw=$build/l2rw
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok $SUITE/$1"; }
detail() { sed 's/^/  | /'; }
bad() {
    fail=$((fail + 1))
    echo "FAIL $SUITE/$1"
    shift
    [ $# -eq 0 ] || echo "$*" | detail
}
skip() { echo "skip $SUITE/$1: $2"; }
finish() {
    echo "$SUITE: $pass passed, $fail failed"
    [ "$fail" -eq 0 ]
    exit $?
}
