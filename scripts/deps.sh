#!/bin/sh
# Make sure the build's Debian packages are present. As root with apt-get
# we install what is missing (and say so); elsewhere we stop and name the
# packages to install.
set -e
need=""
have_header() { echo "#include <$1>" | ${CC:-cc} -E -x c - >/dev/null 2>&1; }
have_header cblas.h || need="$need libopenblas-dev"
have_header zlib.h || need="$need zlib1g-dev"
echo 'int main(void){return 0;}' | ${CC:-cc} -fopenmp -x c - -o /dev/null 2>/dev/null || need="$need libgomp1"
for extra in "$@"; do
    case "$extra" in
    fashion-mnist) [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || need="$need dataset-fashion-mnist" ;;
    gnuplot) command -v gnuplot >/dev/null 2>&1 || need="$need gnuplot-nox" ;;
    torch) /usr/bin/python3 -c 'import torch' >/dev/null 2>&1 || need="$need python3-torch python3-numpy" ;;
    pkg-config) command -v pkg-config >/dev/null 2>&1 || need="$need pkgconf" ;;
    clang) command -v clang >/dev/null 2>&1 || need="$need clang" ;;
    esac
done
[ -z "$need" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "l2rw: installing missing Debian packages:$need" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2 || true
    # shellcheck disable=SC2086
    apt-get install -y -q $need >&2
else
    echo "l2rw: missing Debian packages:$need" >&2
    echo "l2rw: install them with: sudo apt-get install$need" >&2
    exit 1
fi
