#!/usr/bin/env bash
# Builds the libFuzzer target of the package reader (fuzz/fuzz_package.cpp, clang + ASan + UBSan) and runs it for
# a fixed number of executions on a seed corpus of valid packages written by `reframe pack`. Fails on any crash.
#   scripts/fuzz.sh                 build + run (RF_FUZZ_RUNS executions, default 50000)
#   scripts/fuzz.sh --build-only    build only
# Env: RF_BUILD_DIR (where `reframe` is, default build), RF_FUZZ_BUILD_DIR (default build-fuzz),
#      RF_FUZZ_RUNS, RF_FUZZ_CXX (default clang++).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${RF_FUZZ_BUILD_DIR:-build-fuzz}
RUNS=${RF_FUZZ_RUNS:-50000}
CXX=${RF_FUZZ_CXX:-clang++}
REFRAME=${RF_BUILD_DIR:-build}/reframe
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# The reader alone (no models, no oneDNN): a few files, so the sanitised build takes seconds.
SRC=(fuzz/fuzz_package.cpp host/package/package.cpp host/package/xxhash64.cpp host/models/config.cpp)
BIN="$OUT/fuzz_package"
if [ ! -x "$BIN" ] || [ -n "$(find "${SRC[@]}" host/package/*.h host/core/check.h host/core/tensor.h -newer "$BIN")" ]; then
  echo "fuzz: building $BIN with $CXX"
  "$CXX" -std=c++17 -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
    -fno-sanitize-recover=undefined -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION -I. "${SRC[@]}" \
    -lfmt -lzstd -o "$BIN"
fi
[ "${1:-}" = "--build-only" ] && exit 0

# Seed corpus: valid packages from `reframe pack`. Full packages are megabytes, so the corpus holds the small
# ones a real deployment also sends: deltas (a re-seeded model, a new classifier head in int8 / fp16, zstd).
[ -x "$REFRAME" ] || { echo "fuzz: $REFRAME not built (set RF_BUILD_DIR)"; exit 1; }
CORPUS="$OUT/corpus"
WORK="$OUT/work"
rm -rf "$CORPUS" "$WORK"
mkdir -p "$CORPUS" "$WORK"
DW=nl-resnet18:cnl=dw
"$REFRAME" pack -m "$DW" -o "$WORK/dw.rfpk" >/dev/null
"$REFRAME" pack -m "$DW" --dtype int8 -o "$WORK/dw_i8.rfpk" >/dev/null
"$REFRAME" pack -m "$DW" --dtype fp16 -o "$WORK/dw_f16.rfpk" >/dev/null
"$REFRAME" pack -m "$DW,seed=100" --base "$WORK/dw.rfpk" -o "$CORPUS/reseeded.delta.rfpk" >/dev/null
"$REFRAME" pack -m "$DW,seed=100" --base "$WORK/dw.rfpk" --zstd 3 -o "$CORPUS/reseeded_zstd.delta.rfpk" >/dev/null
"$REFRAME" pack -m "$DW,classes=3" --dtype int8 --base "$WORK/dw_i8.rfpk" -o "$CORPUS/head_i8.delta.rfpk" >/dev/null
"$REFRAME" pack -m "$DW,classes=3" --dtype fp16 --base "$WORK/dw_f16.rfpk" -o "$CORPUS/head_f16.delta.rfpk" >/dev/null
"$REFRAME" pack -m "$DW,classes=2" --base "$WORK/dw.rfpk" --zstd 1 -o "$CORPUS/head_f32_zstd.delta.rfpk" >/dev/null
# Format version 2: a delta carrying the inference metadata block (input size, mean/std, class names).
"$REFRAME" pack -m "$DW,seed=100" --base "$WORK/dw.rfpk" --input-size 32 --mean 0.5,0.5,0.5 --std 0.25,0.25,0.25 \
  --classes cat,dog,ship -o "$CORPUS/reseeded_meta.delta.rfpk" >/dev/null
ls -l "$CORPUS"

echo "fuzz: $RUNS executions"
LOG="$OUT/fuzz.log"
set +e
"$BIN" -runs="$RUNS" -seed=1 -max_len=16384 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$OUT/" "$CORPUS" >"$LOG" 2>&1
rc=$?
set -e
grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb)|Done [0-9]+ runs" "$LOG" || true
if [ $rc -ne 0 ]; then
  tail -n 60 "$LOG"
  echo "fuzz: FAILED (exit $rc); the crashing input is in $OUT/ (crash-*, leak-*, timeout-*)"
  exit 1
fi
echo "fuzz: OK, 0 crashes"
