#!/bin/sh
# Make sure the Debian packages the build (and the extras named as
# arguments) need are present, detecting each the way the build uses it:
# a library counts as present when a test program compiles and links
# against it with the build's flags, not when its header is found. As root
# with apt-get we install what is missing and say so; elsewhere we stop and
# name the packages.
#
#   sh scripts/deps.sh [fashion-mnist] [gnuplot] [pkg-config] [torch] [pil] [clang]
#                      [node] [mpi]
#
# mpi: Open MPI (mpicc, mpirun), for training over several processes; the
# Makefile builds the l2rw command with it whenever mpicc is found.
# node: Node.js and npm, which tests/onnx.sh needs to install and run ONNX
# Runtime (onnxruntime-node) on exported models.
#
# BLAS_CFLAGS and BLAS_LIBS (from the Makefile) are the flags the build
# uses for OpenBLAS. We want Debian's OpenMP build of OpenBLAS
# (libopenblas-openmp-dev): l2rw parallelises with OpenMP and calls BLAS
# from inside its OpenMP threads; the OpenMP build runs those calls on the
# calling thread and shares libgomp's threads, where the pthreads build
# would keep a second pool of its own threads competing for the same cores.
# A new Debian machine has only the reference BLAS (libblas-dev, whose
# cblas.h alone fooled the old header test), which is slower and has no
# openblas_* calls.
set -e
cc=${CC:-cc}
blas_cflags=${BLAS_CFLAGS-}
blas_libs=${BLAS_LIBS:--lopenblas}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
need=""
optional=""

# links "PROGRAM" "FLAGS" "LIBS": compiles and links a C program.
links() {
    printf '%s\n' "$1" > "$tmp/t.c"
    # shellcheck disable=SC2086
    $cc $2 "$tmp/t.c" -o "$tmp/t" $3 >"$tmp/log" 2>&1
}

blas_prog='#include <cblas.h>
int openblas_get_parallel(void);
int main(void) { float a = 1, b = 2, c = 0;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 1, 1, 1, 1.0f, &a, 1, &b, 1, 0.0f, &c, 1);
  return (c == 2.0f ? 0 : 1) + 2 * openblas_get_parallel(); }'
if ! links "$blas_prog" "-fopenmp $blas_cflags" "$blas_libs -fopenmp"; then
    need="$need libopenblas-openmp-dev libopenblas-dev"
else
    # openblas_get_parallel(): 0 serial, 1 pthreads, 2 OpenMP.
    set +e; "$tmp/t"; rc=$?; set -e
    if [ "$rc" -ne 4 ]; then
        echo "l2rw: OpenBLAS links but is not Debian's OpenMP build (status $rc)" >&2
        optional="$optional libopenblas-openmp-dev"
    fi
fi
links '#include <zlib.h>
int main(void) { return zlibVersion()[0] == 0; }' "" "-lz" || need="$need zlib1g-dev"
links '#include <png.h>
int main(void) { return png_access_version_number() == 0; }' "" "-lpng" || need="$need libpng-dev"
links '#include <stdio.h>
#include <jpeglib.h>
int main(void) { struct jpeg_error_mgr e; return jpeg_std_error(&e) == 0; }' "" "-ljpeg" || need="$need libjpeg62-turbo-dev"
links '#include <omp.h>
int main(void) { return omp_get_max_threads() < 1; }' "-fopenmp" "-fopenmp" || need="$need libgomp1 libgcc-12-dev"

for extra in "$@"; do
    case "$extra" in
    fashion-mnist) [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || need="$need dataset-fashion-mnist" ;;
    gnuplot) command -v gnuplot >/dev/null 2>&1 || need="$need gnuplot-nox" ;;
    torch) /usr/bin/python3 -c 'import torch, numpy' >/dev/null 2>&1 || need="$need python3-torch python3-numpy" ;;
    pil) /usr/bin/python3 -c 'import PIL' >/dev/null 2>&1 || need="$need python3-pil" ;;
    pkg-config) command -v pkg-config >/dev/null 2>&1 || need="$need pkgconf" ;;
    node) command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || need="$need nodejs npm" ;;
    mpi) command -v mpicc >/dev/null 2>&1 && command -v mpirun >/dev/null 2>&1 || need="$need openmpi-bin libopenmpi-dev" ;;
    clang) command -v clang >/dev/null 2>&1 && [ -n "$(clang -print-file-name=libclang_rt.fuzzer-x86_64.a 2>/dev/null | grep /)" ] || need="$need clang libclang-rt-dev" ;;
    esac
done

root_apt() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; }
apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2 || true
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends "$@" >&2
}

if [ -n "$optional" ] && [ -z "$need" ]; then
    if root_apt; then
        echo "l2rw: installing Debian packages:$optional (OpenBLAS's OpenMP build)" >&2
        # shellcheck disable=SC2086
        apt_install $optional || echo "l2rw: could not install$optional; building with the OpenBLAS found" >&2
    else
        echo "l2rw: building with the OpenBLAS found; Debian's$optional is better suited (sudo apt-get install$optional)" >&2
    fi
    exit 0
fi
[ -z "$need" ] && exit 0
if root_apt; then
    echo "l2rw: installing missing Debian packages:$need" >&2
    # shellcheck disable=SC2086
    apt_install $need
else
    echo "l2rw: missing Debian packages:$need" >&2
    echo "l2rw: install them with: sudo apt-get install$need" >&2
    exit 1
fi
