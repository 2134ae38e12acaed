#!/usr/bin/env bash
# Builds and runs every libFuzzer target fuzz/fuzz_NAME.cpp (clang, ASan + UBSan, no recovery) for a fixed
# number of executions each; fails if any target crashes, leaks, times out or runs out of memory.
#
# A target declares what it links in its header comment (paths relative to the repository root, libraries as
# link flags; either line may repeat, and fuzz-libs may be absent):
#     // fuzz-sources: datasets/voc.cpp host/core/tensor.cpp
#     // fuzz-libs: -ltinyxml2 -lfmt
#     // fuzz-options: -max_len=65536 -dict=fuzz/xml.dict     (optional: libFuzzer flags after the defaults)
# Seed corpus: the files in tests/data/fuzz-corpus/NAME/ (copied to a work folder, never modified in place); for the
# package reader also small packages written by `reframe pack` (needs RF_BUILD_DIR/reframe).
#
#   scripts/fuzz.sh                   build + run every target, RF_FUZZ_RUNS executions each
#   scripts/fuzz.sh package voc       only these targets (NAME or fuzz_NAME)
#   scripts/fuzz.sh --long 2000000    a longer campaign: N executions per target, keeping the corpus that
#                                     earlier runs grew in RF_FUZZ_BUILD_DIR/NAME/corpus
#   scripts/fuzz.sh --build-only      build only
# Env: RF_FUZZ_RUNS (executions per target, default 20000: all targets together about a minute),
#      RF_FUZZ_BUILD_DIR (default build-fuzz), RF_BUILD_DIR (where `reframe` is, default build),
#      RF_FUZZ_CXX (default clang++), RF_FUZZ_LAUNCHER (e.g. ccache), RF_FUZZ_JOBS (parallel compiles).
# To repeat a crash: RF_FUZZ_BUILD_DIR/fuzz_NAME <artifact> (the failure message names both).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${RF_FUZZ_BUILD_DIR:-build-fuzz}
RUNS=${RF_FUZZ_RUNS:-50000}
CXX=${RF_FUZZ_CXX:-clang++}
LAUNCHER=${RF_FUZZ_LAUNCHER:-}
JOBS=${RF_FUZZ_JOBS:-$(nproc)}
REFRAME=${RF_BUILD_DIR:-build}/reframe

build_only=0
long=0
want=()
while [ $# -gt 0 ]; do
  case "$1" in
    --build-only) build_only=1 ;;
    --long)
      if [ $# -lt 2 ] || ! [[ "$2" =~ ^[0-9]+$ ]]; then
        echo "fuzz: --long needs a number of executions per target" >&2
        exit 2
      fi
      long=1
      RUNS=$2
      shift
      ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    -*) echo "fuzz: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) want+=("${1#fuzz_}") ;;
  esac
  shift
done
if ! [[ "$RUNS" =~ ^[0-9]+$ ]] || [ "$RUNS" -eq 0 ]; then
  echo "fuzz: RF_FUZZ_RUNS=$RUNS: expected a positive number of executions" >&2
  exit 2
fi

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# ---- the targets and what each declares ----------------------------------------------------------------
targets=()
for f in fuzz/fuzz_*.cpp; do
  [ -e "$f" ] || continue
  name=$(basename "$f" .cpp)
  name=${name#fuzz_}
  if [ ${#want[@]} -gt 0 ]; then
    keep=0
    for w in "${want[@]}"; do [ "$w" = "$name" ] && keep=1; done
    [ $keep = 1 ] || continue
  fi
  targets+=("$name")
done
for w in "${want[@]}"; do
  [ -f "fuzz/fuzz_$w.cpp" ] || { echo "fuzz: no target fuzz/fuzz_$w.cpp" >&2; exit 2; }
done
[ ${#targets[@]} -gt 0 ] || { echo "fuzz: no fuzz/fuzz_*.cpp"; exit 1; }

# The values of `// fuzz-KEY:` lines of a file, joined by spaces.
header_field() { sed -n "s|^// *fuzz-$2:||p" "$1" | tr '\n' ' '; }

declare -A SOURCES LIBS OPTIONS
for t in "${targets[@]}"; do
  f=fuzz/fuzz_$t.cpp
  grep -q "^// *fuzz-sources:" "$f" ||
    { echo "fuzz: $f: no '// fuzz-sources: ...' line in its header (the sources it links, may be empty)" >&2; exit 2; }
  srcs=$(header_field "$f" sources)
  for s in $srcs; do
    [ "$s" != "$f" ] ||
      { echo "fuzz: $f: fuzz-sources lists the target itself; list only the reader's sources" >&2; exit 2; }
    [ -f "$s" ] || { echo "fuzz: $f: fuzz-sources names $s, which does not exist (paths are from the repository root)" >&2; exit 2; }
  done
  SOURCES[$t]=$srcs
  LIBS[$t]=$(header_field "$f" libs)
  OPTIONS[$t]=$(header_field "$f" options)
done

# ---- build: each source once into an object (shared by the targets that list it), then one link per target --
# Sources get the coverage instrumentation (fuzzer-no-link) so the fuzzer sees inside the reader; objects are
# rebuilt when the source, a header it includes (clang's depfile) or the flags change.
# shellcheck disable=SC2054  # commas inside one flag
FLAGS=(-std=c++17 -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined
  -fno-sanitize-recover=undefined -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION -I.)
# shellcheck disable=SC2054
LINKFLAGS=(-fsanitize=fuzzer,address,undefined)
OBJ=$OUT/obj
stamp="$CXX ${FLAGS[*]}"
if [ "$(cat "$OBJ/flags" 2>/dev/null)" != "$stamp" ]; then
  rm -rf "$OBJ"
  mkdir -p "$OBJ"
  echo "$stamp" >"$OBJ/flags"
fi
obj_of() { echo "$OBJ/${1%.cpp}.o"; }
stale() {  # object missing, or older than any file in its depfile
  local o=$1
  [ -f "$o" ] && [ -f "$o.d" ] || return 0
  local deps
  deps=$(sed -e 's/^[^:]*://' -e 's/\\$//' "$o.d")
  # shellcheck disable=SC2086  # the depfile's list of paths
  [ -n "$(find $deps -newer "$o" 2>/dev/null | head -n 1)" ] || [ -n "$(for d in $deps; do [ -e "$d" ] || echo x; done)" ]
}
declare -A seen
todo=()
for t in "${targets[@]}"; do
  for s in fuzz/fuzz_$t.cpp ${SOURCES[$t]}; do
    [ -n "${seen[$s]:-}" ] && continue
    seen[$s]=1
    if stale "$(obj_of "$s")"; then todo+=("$s"); fi
  done
done
if [ ${#todo[@]} -gt 0 ]; then
  echo "fuzz: compiling ${#todo[@]} source(s) with $CXX ($JOBS at a time)"
  fail=0
  pids=()
  for s in "${todo[@]}"; do
    o=$(obj_of "$s")
    mkdir -p "$(dirname "$o")"
    # shellcheck disable=SC2086  # LAUNCHER may be empty
    $LAUNCHER "$CXX" "${FLAGS[@]}" -MMD -MF "$o.d" -c "$s" -o "$o" &
    pids+=($!)
    if [ ${#pids[@]} -ge "$JOBS" ]; then
      wait "${pids[0]}" || fail=1
      pids=("${pids[@]:1}")
    fi
  done
  for p in "${pids[@]}"; do wait "$p" || fail=1; done
  [ $fail = 0 ] || { echo "fuzz: compilation failed (above)" >&2; exit 1; }
fi
for t in "${targets[@]}"; do
  bin=$OUT/fuzz_$t
  objs=()
  for s in fuzz/fuzz_$t.cpp ${SOURCES[$t]}; do objs+=("$(obj_of "$s")"); done
  link="${objs[*]} ${LIBS[$t]}"
  if [ ! -x "$bin" ] || [ "$(cat "$bin.link" 2>/dev/null)" != "$link" ] ||
    [ -n "$(find "${objs[@]}" -newer "$bin" | head -n 1)" ]; then
    echo "fuzz: linking $bin"
    # shellcheck disable=SC2086  # the declared link flags
    "$CXX" "${LINKFLAGS[@]}" "${objs[@]}" ${LIBS[$t]} -o "$bin" ||
      { echo "fuzz: fuzz/fuzz_$t.cpp: link failed; are its fuzz-sources / fuzz-libs complete?" >&2; exit 1; }
    echo "$link" >"$bin.link"
  fi
done
[ $build_only = 1 ] && exit 0

# ---- seed corpora and runs ---------------------------------------------------------------------------------
# Packages for the package reader. Full packages are megabytes, so these are the small ones a real deployment
# also sends: deltas (a re-seeded model, a new classifier head in int8 / fp16, zstd).
package_seeds() {
  local dir=$1 tmp=$OUT/package/base
  [ -x "$REFRAME" ] ||
    { echo "fuzz: package: $REFRAME not built (set RF_BUILD_DIR): its seeds come from \`reframe pack\`" >&2; return 1; }
  mkdir -p "$tmp"
  local DW=nl-resnet18:cnl=dw
  "$REFRAME" pack -m "$DW" -o "$tmp/dw.rfpk" >/dev/null
  "$REFRAME" pack -m "$DW" --dtype int8 -o "$tmp/dw_i8.rfpk" >/dev/null
  "$REFRAME" pack -m "$DW" --dtype fp16 -o "$tmp/dw_f16.rfpk" >/dev/null
  "$REFRAME" pack -m "$DW,seed=100" --base "$tmp/dw.rfpk" -o "$dir/reseeded.delta.rfpk" >/dev/null
  "$REFRAME" pack -m "$DW,seed=100" --base "$tmp/dw.rfpk" --zstd 3 -o "$dir/reseeded_zstd.delta.rfpk" >/dev/null
  "$REFRAME" pack -m "$DW,classes=3" --dtype int8 --base "$tmp/dw_i8.rfpk" -o "$dir/head_i8.delta.rfpk" >/dev/null
  "$REFRAME" pack -m "$DW,classes=3" --dtype fp16 --base "$tmp/dw_f16.rfpk" -o "$dir/head_f16.delta.rfpk" >/dev/null
  "$REFRAME" pack -m "$DW,classes=2" --base "$tmp/dw.rfpk" --zstd 1 -o "$dir/head_f32_zstd.delta.rfpk" >/dev/null
  # Format version 2: a delta carrying the inference metadata block (input size, mean/std, class names).
  "$REFRAME" pack -m "$DW,seed=100" --base "$tmp/dw.rfpk" --input-size 32 --mean 0.5,0.5,0.5 --std 0.25,0.25,0.25 \
    --classes cat,dog,ship -o "$dir/reseeded_meta.delta.rfpk" >/dev/null
  rm -rf "$tmp"
}

failed=()
total=0
echo "fuzz: ${#targets[@]} target(s), $RUNS executions each"
for t in "${targets[@]}"; do
  work=$OUT/$t
  corpus=$work/corpus
  # CI runs start from the seeds alone (reproducible); --long keeps what earlier runs found.
  [ $long = 1 ] || rm -rf "$work"
  mkdir -p "$corpus"
  rm -f "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-* "$work"/slow-unit-*
  for d in "tests/data/fuzz-corpus/$t" "tests/data/fuzz-corpus/fuzz_$t"; do
    [ -d "$d" ] && cp -r "$d/." "$corpus/"
  done
  if [ "$t" = package ]; then package_seeds "$corpus"; fi
  nseed=$(find "$corpus" -type f | wc -l)
  log=$work/fuzz.log
  t0=$(date +%s)
  set +e
  # shellcheck disable=SC2086  # the declared libFuzzer options
  "$OUT/fuzz_$t" -runs="$RUNS" -seed=1 -max_len=16384 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$work/" ${OPTIONS[$t]} "$corpus" >"$log" 2>&1
  rc=$?
  set -e
  secs=$(($(date +%s) - t0))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  execs=${execs:-0}
  total=$((total + execs))
  artifacts=$(find "$work" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | sort)
  ncrash=$(echo -n "$artifacts" | grep -c . || true)
  if [ $rc -ne 0 ] || [ "$ncrash" -gt 0 ]; then
    [ "$ncrash" -gt 0 ] || ncrash=1
    echo "fuzz: $t: $execs executions in ${secs} s, $ncrash crash(es), exit $rc (seeds: $nseed)"
    tail -n 60 "$log"
    for a in $artifacts; do echo "fuzz: $t: crashing input $a; repeat: $OUT/fuzz_$t $a"; done
    [ -n "$artifacts" ] || echo "fuzz: $t: no artifact written; the log is $log"
    failed+=("$t")
  else
    echo "fuzz: $t: $execs executions in ${secs} s, 0 crashes (seeds: $nseed, corpus now: $(find "$corpus" -type f | wc -l))"
  fi
done
echo "fuzz: $total executions in all"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]} (artifacts in $OUT/<target>/)"
  exit 1
fi
echo "fuzz: OK, 0 crashes"
