#!/bin/sh
# Build every libFuzzer target of the data, model-file and checkpoint
# readers with clang (-fsanitize=fuzzer,address,undefined,
# float-cast-overflow) and run each for a bounded time.
# Usage: sh fuzz/run.sh [SECONDS_PER_TARGET (default 60)] [TARGET ...]
# Binaries, corpora and crash artifacts go to build/fuzz/. Exit status is
# non-zero when a target found a crash, leak, timeout or UB.
set -u
secs=${1:-60}
[ $# -gt 0 ] && shift
targets=${*:-"idx cifar csv npy gzip specs image model checkpoint"}
cd "$(dirname "$0")/.." || exit 2
out=build/fuzz
mkdir -p "$out"
CC=${FUZZ_CC:-clang}
if ! command -v "$CC" >/dev/null 2>&1; then
    echo "fuzz: $CC not found (install clang)"; exit 2
fi
flags="-std=c11 -g -O1 -fsanitize=fuzzer,address,undefined,float-cast-overflow -fno-sanitize-recover=all -Wno-psabi -Iinclude -Isrc -Isrc/engine -Isrc/cpu -Isrc/cuda"
# the whole library: the data readers share the binary I/O of the model
# files (the image cache), the model and checkpoint readers need the engine
# (the Makefile's SRC_DIRS: the library, the engine, the CPU back end;
# the CUDA stub, which answers the device probe without CUDA)
libsrc="$(ls src/*.c src/engine/*.c src/cpu/*.c) src/cuda/cuda_stub.c"

# Seed corpora: one valid input per target (python3 writes them; without
# it the fuzzers start from nothing, which still works, only slower).
if command -v python3 >/dev/null 2>&1; then
python3 - "$out" <<'PY'
import os, struct, sys
out = sys.argv[1]
def put(t, name, b):
    d = os.path.join(out, "corpus-" + t); os.makedirs(d, exist_ok=True)
    open(os.path.join(d, name), "wb").write(b)
def npy(descr, shape, data):
    h = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shape)
    h += " " * ((64 - (10 + len(h) + 1) % 64) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode() + data
lab = bytes([0, 0, 8, 1, 0, 0, 0, 3, 0, 1, 2])
img = bytes([0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 2]) + bytes(range(12))
put("idx", "seed", struct.pack(">H", len(lab)) + b"\0" + lab + img)
put("gzip", "seed", lab)
import gzip
put("gzip", "seed-gz", gzip.compress(lab))
put("cifar", "seed10", b"\0" + bytes([3]) + bytes(range(256)) * 12)
put("cifar", "seed100", b"\1" + bytes([3, 77]) + bytes(range(256)) * 12)
put("csv", "seed-header", b"\x03a,b,label\n1.5,2,0\n3,-4e1,1\r\n")
put("csv", "seed-name", b"\x13label,x\n1,0.5\n0,2\n")
y = npy("<i8", "(2,)", struct.pack("<2q", 1, 0))
put("npy", "seed-f4", struct.pack(">H", len(y)) + y + npy("<f4", "(2, 3)", struct.pack("<6f", *range(6))))
y = npy("|u1", "(2, 1)", bytes([1, 0]))
put("npy", "seed-u1", struct.pack(">H", len(y)) + y + npy("|u1", "(2, 2, 2)", bytes(range(8))))
put("specs", "seed-uniform", b"uniform:0.4|4,9:0.9")
put("specs", "seed-bg", b"background:0.4:2|longtail:10")
put("specs", "seed-pair", b"pair:0.3|1,2,3:0.5")
PY
fi

fail=0
summary=$out/summary.txt
: > "$summary"
for t in $targets; do
    src=fuzz/fuzz_$t.c
    bin=$out/fuzz_$t
    if [ ! -f "$src" ]; then echo "fuzz: no target $t"; fail=1; continue; fi
    echo "== build $t"
    # shellcheck disable=SC2086
    if ! $CC $flags "$src" $libsrc -o "$bin" -lpng -ljpeg -lz -lm -lopenblas; then
        echo "fuzz: build of $t failed"; fail=1; continue
    fi
    mkdir -p "$out/corpus-$t"
    # committed seeds (valid and hostile files) where a target has them
    seeds=fuzz/corpus/fuzz_$t
    [ -d "$seeds" ] || seeds=
    echo "== run $t for ${secs}s"
    "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -max_len=65536 -print_final_stats=1 \
        -artifact_prefix="$out/$t-" "$out/corpus-$t" $seeds > "$out/$t.log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/$t.log" | tail -n 1)
    cov=$(grep -o 'cov: [0-9]*' "$out/$t.log" | tail -n 1)
    ncorp=$(ls "$out/corpus-$t" | wc -l)
    line="$t: rc=$rc, ${execs:-?} runs in ${secs}s, $cov, corpus $ncorp files"
    if [ $rc -ne 0 ]; then
        line="$line -- FAILED, see $out/$t.log and $out/$t-*"
        grep -E 'ERROR|runtime error|SUMMARY' "$out/$t.log" | head -n 5
        fail=1
    fi
    echo "$line" | tee -a "$summary"
done
exit $fail
