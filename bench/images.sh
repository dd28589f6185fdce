#!/bin/sh
# Image decoding throughput: l2rw's folder: reader (libpng, OpenMP over
# files) against Python + Pillow doing the same decode (+ resize) of the
# same files, and the load time of l2rw's decoded-set cache.
#
#   sh bench/images.sh [N]      (default N = 10000; run after `make`)
#
# Writes the first N Fashion-MNIST test images (Debian's
# dataset-fashion-mnist) as 28x28 grey PNG files into
# /tmp/l2rw-bench-images/<label>/<index>.png, once. Needs python3-pil.
set -e
n=${1:-10000}
root=$(cd "$(dirname "$0")/.." && pwd)
dir=/tmp/l2rw-bench-images
fm=/usr/share/datasets/fashion-mnist
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

[ -f "$root/build/libl2rw.a" ] || { echo "run make first" >&2; exit 1; }
$py -c 'import PIL' 2>/dev/null || { echo "needs python3-pil" >&2; exit 1; }

if [ "$(find "$dir" -name '*.png' 2>/dev/null | wc -l)" -ne "$n" ]; then
    rm -rf "$dir"
    $py - "$fm" "$dir" "$n" <<'EOF'
import gzip, os, sys
from PIL import Image
fm, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
img = gzip.open(fm + '/t10k-images-idx3-ubyte.gz').read()[16:]
lab = gzip.open(fm + '/t10k-labels-idx1-ubyte.gz').read()[8:]
for i in range(n):
    d = '%s/%d' % (out, lab[i])
    os.makedirs(d, exist_ok=True)
    Image.frombytes('L', (28, 28), img[784 * i:784 * (i + 1)]).save(
        '%s/%05d.png' % (d, i))
EOF
fi

# l2rw: seconds to load a spec with T threads (median of 3 runs).
cat > "$tmp/load.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include "l2rw.h"
static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}
/* CPU seconds of every thread of the process (user + system). */
static double cpu(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_utime.tv_sec + u.ru_stime.tv_sec +
           1e-6 * (u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}
int main(int argc, char **argv)
{
    l2rw_set_threads(atoi(argv[2]));
    double best[3], c0 = cpu();
    for (int r = 0; r < 3; r++) {
        l2rw_dataset tr, te;
        double t0 = now();
        if (l2rw_data_load(argv[1], &tr, &te) != L2RW_OK) {
            fprintf(stderr, "%s\n", l2rw_last_error());
            return 1;
        }
        best[r] = now() - t0;
        l2rw_dataset_free(&tr);
        l2rw_dataset_free(&te);
    }
    double m = best[0] < best[1] ? (best[1] < best[2] ? best[1]
                                   : best[0] < best[2] ? best[2] : best[0])
                                 : (best[0] < best[2] ? best[0]
                                   : best[1] < best[2] ? best[2] : best[1]);
    printf("%.4f %.4f\n", m, (cpu() - c0) / 3);
    return 0;
}
EOF
blas_dir=/usr/lib/$(cc -print-multiarch)/openblas-openmp
cc -std=c11 -O2 -fopenmp -I"$root/include" "$tmp/load.c" -o "$tmp/load" \
    "$root/build/libl2rw.a" -L"$blas_dir" -Wl,-rpath,"$blas_dir" \
    -lopenblas -lpng -ljpeg -lz -lm

# Pillow: the same files, decoded (and resized) in P processes.
cat > "$tmp/pil.py" <<'EOF'
import os, resource, sys, time
from multiprocessing import Pool
from PIL import Image
root, size, procs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
files = sorted(os.path.join(d, f) for d, _, fs in os.walk(root)
               for f in fs if f.endswith('.png'))
def load(f):
    im = Image.open(f).convert('L')
    if size:
        im = im.resize((size, size), Image.BILINEAR)
    return im.tobytes()
def cpu():
    a = resource.getrusage(resource.RUSAGE_SELF)
    b = resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime
times = []
c0 = cpu()
for _ in range(3):
    t0 = time.monotonic()
    if procs == 1:
        out = [load(f) for f in files]
    else:
        with Pool(procs) as p:
            out = p.map(load, files, chunksize=64)
    times.append(time.monotonic() - t0)
print('%.4f %.4f' % (sorted(times)[1], (cpu() - c0) / 3))
EOF

# "WALL CPU" seconds -> images/s of wall-clock time, and of CPU time (all
# threads or processes: what a loaded machine does not distort).
rate() { echo "$1" | awk -v n="$n" '{ printf "%7.0f images/s (%.3f s); %7.0f images per CPU-second", n / $1, $1, n / $2 }'; }

echo "images: $n Fashion-MNIST test images as 28x28 grey PNG in $dir"
echo "machine: $(nproc) cores, $(uname -m); median of 3 runs"
rm -f "$dir"/.l2rw-cache-*
for size in 0 32; do
    opt=""; what="decode 28x28"
    [ "$size" -gt 0 ] && opt=",size=${size}x${size}" && what="decode + resize to ${size}x${size} (bilinear up)"
    echo "$what:"
    for t in 1 2; do
        s=$("$tmp/load" "folder:$dir,frac=0,cache=0$opt" $t)
        echo "  l2rw, $t thread(s):        $(rate "$s")"
    done
    for p in 1 2; do
        s=$($py "$tmp/pil.py" "$dir" "$size" $p)
        echo "  Pillow, $p process(es):     $(rate "$s")"
    done
done
# The cache: the first load writes it, the next ones read it.
"$tmp/load" "folder:$dir,frac=0" 2 >/dev/null
s=$("$tmp/load" "folder:$dir,frac=0" 2)
echo "l2rw, from the decoded-set cache: $(rate "$s")"
ls -l "$dir"/.l2rw-cache-* | awk '{ printf "cache file: %.1f MB\n", $5 / 1e6 }'
rm -f "$dir"/.l2rw-cache-*
