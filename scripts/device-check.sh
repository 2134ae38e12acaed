#!/usr/bin/env bash
# One device call that verifies the CUDA backend on the GPU machine (H100 / H200, sm_90) and measures it, in about
# 5 minutes, so that a rerun after a fix still fits the 15 minutes of device time (machine start included).
#
# Plan ("way 1" of ../shared/docs/DEVICE.md): nothing is built there. scripts/device-pack.sh builds the binaries
# here for sm_90 and stages .dev/device/bundle.tar.xz (bin/, lib/, lib-fallback/, GIT_REV, MANIFEST); this script,
# run in the repo root there with .dev/device carried, does the steps below, each under its own time limit and all
# under one overall budget (BUDGET_S, default 300 s; a step that would start after it is "not run (budget)"):
#
#   step          limit  what
#   setup             -  unpack, MANIFEST, pip cuDNN / cuRAND / NCCL on LD_LIBRARY_PATH, every binary lists its tests
#   descriptors      20  cuDNN graph-API conv descriptors (needs no GPU: also runs locally)
#   gpu-tests       100  ctest -L gpu with RF_REQUIRE_GPU=1 (a test that finds no device FAILS), gtest XML each
#   cudnn-legacy     25  the cuDNN conv test again on the deprecated legacy API (RF_CUDNN_API=legacy), to compare
#   kernel-bench     60  bench_kernels' GPU half (Google Benchmark JSON; CUDA events around many launches)
#   memcheck         70  compute-sanitizer memcheck on each kernel test (seeded conv, pool, NL module, Philox, conv, BN,
#                        elementwise, train step)
#   racecheck        60  compute-sanitizer racecheck on the shared-memory kernel tests (seeded conv, pool, NL, conv,
#                        BN, train step)
#   model-bench      30  OPTIONAL: bench_models' GPU benchmarks, only if the bundle has bench_models and it lists any
#   train            60  OPTIONAL: a short real-data CIFAR-10 run, only if the bundle has `reframe` and
#                        `reframe --version` says "GPU models yes" (the bundle then carries the CIFAR-10 archive)
#
# Without a GPU (nvidia-smi lists none) every GPU step is "skipped (no GPU)" and the script exits 0 after the setup
# and descriptor steps: that is the local rehearsal, under a minute.
# $OUT receives exactly three files (the device tool returns at most 8): results.tar.gz (every log, gtest XML,
# benchmark JSON, sanitizer report, nvidia-smi), summary.json (schema reframe-bench/device-check/2, written by
# scripts/device-summary.py) and device-check.log (this output). The summary table is printed last.
#
#   device tool: run(command="bash scripts/device-check.sh", carry=[".dev/device"], timeout_s=420)
#   locally:     scripts/device-pack.sh && OUT=/tmp/out bash scripts/device-check.sh
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
ROOT=$PWD
OUT=${OUT:-/tmp/rf-device-out}
BUNDLE=${BUNDLE:-$ROOT/.dev/device/bundle.tar.xz}
WORK=${WORK:-/tmp/rf-device}
RES=$WORK/results           # everything that goes into results.tar.gz
BUDGET_S=${BUDGET_S:-300}   # overall; the device call itself gets timeout_s=420
RESERVE_S=15                # kept back for packing and the summary
# Each GPU benchmark is 10 measurements of >= 2 ms of back-to-back launches (bench/cuda/gpu_benchmarks.cpp), so
# --benchmark_min_time does not apply to them; repetitions multiply the step's time (setup included).
BENCH_ARGS=${BENCH_ARGS:---benchmark_repetitions=1}
MODEL_BENCH_ARGS=${MODEL_BENCH_ARGS:---benchmark_min_time=0.2}
TRAIN_ARGS=${TRAIN_ARGS:---model resnet18 --epochs 1 --batch 256}
mkdir -p "$OUT"
rm -f "$OUT/results.tar.gz" "$OUT/summary.json"
exec > >(tee "$OUT/device-check.log") 2>&1
TEE_PID=$!

echo "== device-check: $(date -u +%FT%TZ) on $(hostname), budget ${BUDGET_S}s"
[[ -f $BUNDLE ]] || { echo "no bundle at $BUNDLE: run scripts/device-pack.sh first and carry .dev/device"; exit 2; }
rm -rf "$WORK" && mkdir -p "$WORK/bundle" "$RES/gtest"
if ! tar -C "$WORK/bundle" -xJf "$BUNDLE" 2>/dev/null; then
  python3 -c "import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])" "$BUNDLE" "$WORK/bundle" || exit 2
fi
B=$WORK/bundle
(cd "$B" && sha256sum --quiet -c MANIFEST) || { echo "bundle corrupted: MANIFEST mismatch"; exit 2; }
REV=$(cat "$B/GIT_REV")
echo "bundle revision: $REV"

# ---- step bookkeeping: STEPS.tsv lines "name<TAB>status<TAB>seconds<TAB>limit<TAB>detail" --------------------------
STEPS=$RES/steps.tsv
: > "$STEPS"
record() { printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "${5:-}" >> "$STEPS"; echo "== $1: $2 (${3}s of ${4}s) ${5:-}"; }
# left_for LIMIT: the seconds a step may use now (its limit, or less near the end of the budget); 0 = do not start.
left_for() {
  local left=$(( BUDGET_S - RESERVE_S - SECONDS ))
  (( left < 5 )) && { echo 0; return; }
  (( left < $1 )) && { echo "$left"; return; }
  echo "$1"
}
# run_step NAME LIMIT LOG CMD...: runs CMD under `timeout`, output to LOG (and a tail here); records the result.
run_step() {
  local name=$1 limit=$2 log=$3; shift 3
  local t; t=$(left_for "$limit")
  if (( t == 0 )); then record "$name" "not run (budget)" 0 "$limit"; return 99; fi
  local t0=$SECONDS rc
  timeout --kill-after=5 "$t" "$@" > "$log" 2>&1
  rc=$?
  tail -n 15 "$log"
  local took=$(( SECONDS - t0 ))
  case $rc in
    0) record "$name" ok "$took" "$limit" ;;
    77) record "$name" "skipped (exit 77: tests skipped)" "$took" "$limit" "$(basename "$log")" ;;
    124|137) record "$name" "TIMEOUT after ${t}s" "$took" "$limit" "$(basename "$log")" ;;
    *) record "$name" "FAILED rc=$rc" "$took" "$limit" "$(basename "$log")" ;;
  esac
  return "$rc"
}

# ---- setup: libraries (ours, then the pip cuDNN / cuRAND), the GPU, every binary starts -------------------------
libdir_of() {  # folder holding file $1: python's nvidia packages first, then a file search
  local d
  d=$(python3 - "$1" 2>/dev/null <<'EOF'
import glob, os, sys, site
roots = site.getsitepackages() + [site.getusersitepackages()]
for r in roots:
    for p in glob.glob(os.path.join(r, "nvidia", "**", sys.argv[1]), recursive=True):
        print(os.path.dirname(p)); sys.exit(0)
EOF
)
  [[ -n $d ]] || d=$(dirname "$(find / -xdev -name "$1" -not -path '/proc/*' 2>/dev/null | head -1)" 2>/dev/null)
  echo "$d"
}
t0=$SECONDS
CUDNN_DIR=$(libdir_of libcudnn.so.9)
CURAND_DIR=$(libdir_of libcurand.so.10)
NCCL_DIR=$(libdir_of libnccl.so.2)  # gpu_test_nccl_gpu's (218 MB: not carried, a pip package there)
echo "cuDNN from: ${CUDNN_DIR:-NOT FOUND}; cuRAND from: ${CURAND_DIR:-NOT FOUND}; NCCL from: ${NCCL_DIR:-NOT FOUND}"
LP=$B/lib
[[ -n $CUDNN_DIR && $CUDNN_DIR != . ]] && LP=$LP:$CUDNN_DIR
[[ -n $CURAND_DIR && $CURAND_DIR != . ]] && LP=$LP:$CURAND_DIR
[[ -n $NCCL_DIR && $NCCL_DIR != . ]] && LP=$LP:$NCCL_DIR
ldconfig -p 2>/dev/null | grep -q 'libstdc++.so.6 ' || LP=$LP:$B/lib-fallback
export LD_LIBRARY_PATH=$LP${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
GPU=0
if command -v nvidia-smi >/dev/null && nvidia-smi -L > "$RES/nvidia-smi.txt" 2>&1 && grep -q '^GPU ' "$RES/nvidia-smi.txt"; then
  GPU=1
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv \
    > "$RES/nvidia-smi.csv" 2>&1
  cat "$RES/nvidia-smi.csv"
else
  echo "NO GPU: nvidia-smi lists no device; every GPU step is skipped (a local rehearsal)"
fi
setup_detail="" setup_status=ok
for b in "$B"/bin/*; do
  n=$(basename "$b")
  missing=$(ldd "$b" 2>/dev/null | grep 'not found')
  [[ -z $missing ]] || { echo "MISSING LIBRARIES for $n:"; echo "$missing"; setup_status="FAILED"; setup_detail+="$n: missing libs; "; }
  case $n in
    gpu_test_*|test_*) "$b" --gtest_list_tests > "$RES/list-$n.txt" 2>&1 ;;
    bench_*) "$b" --benchmark_list_tests > "$RES/list-$n.txt" 2>&1 ;;
    reframe) "$b" --version > "$RES/list-$n.txt" 2>&1 ;;
    *) continue ;;
  esac
  [[ $? -eq 0 ]] || { setup_status="FAILED"; setup_detail+="$n does not start (list-$n.txt); "; tail -3 "$RES/list-$n.txt"; }
done
record setup "$setup_status" $(( SECONDS - t0 )) - "$setup_detail"

# ---- descriptors: cuDNN graph-API conv descriptors (no GPU needed) ---------------------------------------------
if [[ -x $B/bin/test_cudnn_descriptors ]]; then
  run_step descriptors 20 "$RES/descriptors.log" "$B/bin/test_cudnn_descriptors" \
    --gtest_output="xml:$RES/gtest/test_cudnn_descriptors.xml"
else
  record descriptors "not in bundle" 0 20
fi

skip_all_gpu() {
  for s in gpu-tests cudnn-legacy kernel-bench memcheck racecheck model-bench train; do record "$s" "skipped (no GPU)" 0 -; done
}

if (( GPU == 1 )); then
  # ---- gpu-tests: every GPU test through CTest, RF_REQUIRE_GPU=1 so that a test finding no device fails ----------
  mkdir -p "$WORK/ctest"
  {
    for b in "$B"/bin/gpu_test_*; do
      n=$(basename "$b")
      echo "add_test($n \"$b\" \"--gtest_output=xml:$RES/gtest/$n.xml\")"
      echo "set_tests_properties($n PROPERTIES LABELS gpu TIMEOUT 60 SKIP_RETURN_CODE 77 ENVIRONMENT RF_REQUIRE_GPU=1)"
    done
  } > "$WORK/ctest/CTestTestfile.cmake"
  if command -v ctest >/dev/null; then
    (cd "$WORK/ctest" && run_step gpu-tests 100 "$RES/gpu-tests.log" ctest -L gpu --output-on-failure)
  else  # no CTest there: the same binaries one after another
    run_step gpu-tests 100 "$RES/gpu-tests.log" bash -c 'rc=0
      for b in "$0"/bin/gpu_test_*; do
        RF_REQUIRE_GPU=1 "$b" --gtest_output="xml:$1/gtest/$(basename "$b").xml" || rc=1
      done
      exit $rc' "$B" "$RES"
  fi
  grep -h "cuDNN runtime version" "$RES"/gpu-tests.log 2>/dev/null | head -1

  # ---- cudnn-legacy: the same conv test on the deprecated legacy API (comparison until it is deleted) -------------
  if [[ -x $B/bin/gpu_test_cudnn_gpu ]]; then
    run_step cudnn-legacy 25 "$RES/cudnn-legacy.log" env RF_CUDNN_API=legacy RF_REQUIRE_GPU=1 "$B/bin/gpu_test_cudnn_gpu" \
      --gtest_filter='CudnnGpu.Conv*' --gtest_output="xml:$RES/gtest/gpu_test_cudnn_gpu-legacy.xml"
  else
    record cudnn-legacy "not in bundle" 0 25
  fi

  # ---- kernel-bench: the GPU benchmarks (Google Benchmark JSON) ---------------------------------------------------
  # shellcheck disable=SC2086
  run_step kernel-bench 60 "$RES/kernel-bench.log" "$B/bin/bench_kernels" --benchmark_filter='^BM_gpu_' $BENCH_ARGS \
    --benchmark_out="$RES/bench_gpu_kernels.json" --benchmark_out_format=json

  # ---- memcheck / racecheck: compute-sanitizer on the kernel tests, each binary within the step's limit ------------
  if ! command -v compute-sanitizer >/dev/null; then
    for d in /usr/local/cuda/bin /usr/local/cuda/compute-sanitizer /opt/nvidia/compute-sanitizer; do
      [[ -x $d/compute-sanitizer ]] && export PATH=$PATH:$d && break
    done
  fi
  sanitize() {  # tool limit binaries...: one sanitizer over several test binaries, sharing the limit
    local tool=$1 limit=$2; shift 2
    local t0=$SECONDS status=ok detail="" b n t rc
    if ! command -v compute-sanitizer >/dev/null; then record "$tool" "FAILED: no compute-sanitizer" 0 "$limit"; return; fi
    for n in "$@"; do
      b=$B/bin/gpu_test_${n}_gpu
      [[ -x $b ]] || { detail+="$n: not in bundle; "; continue; }
      t=$(left_for $(( limit - (SECONDS - t0) )))
      if (( t < 5 )); then status="partial (limit)"; detail+="$n: not run; "; continue; fi
      RF_REQUIRE_GPU=1 timeout --kill-after=5 "$t" compute-sanitizer --tool "$tool" --error-exitcode 86 --print-limit 20 \
        "$b" > "$RES/$tool-$n.log" 2>&1
      rc=$?
      case $rc in
        0) detail+="$n: clean; " ;;
        77) detail+="$n: clean, some tests skipped; " ;;  # tests/skip_main.cpp: skipped, none failed
        86) status="ERRORS"; detail+="$n: ERRORS ($tool-$n.log); " ;;
        124|137) [[ $status == ok ]] && status="partial (timeout)"; detail+="$n: timeout ${t}s, inconclusive; " ;;
        *) status="FAILED"; detail+="$n: rc=$rc ($tool-$n.log); " ;;
      esac
      echo "$tool $n: rc=$rc after ${SECONDS}s"
    done
    record "$tool" "$status" $(( SECONDS - t0 )) "$limit" "$detail"
  }
  sanitize memcheck 70 seeded_conv pool nl_module philox conv batchnorm elementwise train_step upsample dense_loss
  sanitize racecheck 60 seeded_conv pool nl_module conv batchnorm train_step

  # ---- model-bench (optional): only when bench_models registers GPU benchmarks ------------------------------------
  if [[ -x $B/bin/bench_models ]] && grep -Eq 'gpu|cuda' "$RES/list-bench_models.txt" 2>/dev/null; then
    run_step model-bench 30 "$RES/model-bench.log" "$B/bin/bench_models" --benchmark_filter='gpu|cuda' $MODEL_BENCH_ARGS \
      --benchmark_out="$RES/bench_gpu_models.json" --benchmark_out_format=json
  else
    record model-bench "skipped (optional: no GPU model benchmarks in the bundle)" 0 30
  fi

  # ---- train (optional): a short real-data run, once `reframe --version` says "GPU models yes" ------------
  CIFAR=$(ls "$ROOT"/.dev/device/cifar10*.tar.zst 2>/dev/null | head -1)
  if [[ -x $B/bin/reframe ]] && "$B/bin/reframe" --version 2>/dev/null | grep -q '^GPU models  *yes' && [[ -n $CIFAR ]]; then
    # shellcheck disable=SC2086
    run_step train 60 "$RES/train.log" "$B/bin/reframe" train --device cuda --data "$CIFAR" $TRAIN_ARGS \
      --out "$RES/train.rfpk"
    rm -f "$RES/train.rfpk"  # the package is not worth its bytes in the archive; the log holds the figures
  else
    record train "skipped (optional: no reframe with GPU models, or no CIFAR-10 archive, in the bundle)" 0 60
  fi
else
  skip_all_gpu
fi

# ---- pack: one archive, the summary, the log (3 files in $OUT), then the table ----------------------------------
python3 "$ROOT/scripts/device-summary.py" --results "$RES" --rev "$REV" --gpu "$GPU" --seconds "$SECONDS" \
  --budget "$BUDGET_S" --out "$OUT/summary.json" > "$RES/table.txt" 2>&1
SUMMARY_RC=$?
cp "$OUT/summary.json" "$RES/" 2>/dev/null
tar -C "$WORK" -czf "$OUT/results.tar.gz" results
echo "== device-check done after ${SECONDS}s: $(ls "$OUT" | tr '\n' ' ')($(du -sh "$OUT/results.tar.gz" | cut -f1) archive)"
cat "$RES/table.txt"
exec >&- 2>&-
wait "$TEE_PID" 2>/dev/null  # the log is complete in $OUT before the call returns
exit $SUMMARY_RC
