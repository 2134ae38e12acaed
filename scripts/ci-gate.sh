#!/usr/bin/env bash
# The CI performance gate: a short CPU benchmark set and a tiny classification run, compared by
# `reframe gate` with the committed CPU baseline of this machine class. Run by .ci/run after the tests.
#   scripts/ci-gate.sh                              measure, gate; exit status = number of regressions
#   scripts/ci-gate.sh --write-baseline             measure and write results/baselines/ci-cpu-<class>.json
#                                                   (a baseline for this runner class); commit it
#   scripts/ci-gate.sh --write-baseline --default   measure and (re)write the default results/baselines/ci-cpu.json
# Machine class (`reframe gate --machine-class`, gate/gate.h): SIMD level, threads, CPU model, e.g.
# avx512-2t-intel-xeon-platinum-8375c; the baseline also records build type, RF_NATIVE and compiler. Timing
# ratios depend on all of these, so the gate uses results/baselines/ci-cpu-<class>.json when it exists. When it
# does not, counts and accuracy are gated against the default results/baselines/ci-cpu.json and the timing
# ratios are skipped (unless that default was measured on this class), which the gate says.
# What is gated and with which margins: gate/gate.h. Timings are ratios of twins measured in one process
# with interleaved repetitions (never absolute times); accuracy is gated against the seeds' and the test
# set's noise; counts and package bytes exactly. A timing ratio that regresses is measured again, and fails
# only if it regresses in both measurements. Takes about 2-3 minutes on 2 cores; expects a build
# (scripts/build.sh; RF_BUILD_DIR selects the build folder).
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}|${2:-}" in
  "|" | "--write-baseline|" | "--write-baseline|--default") ;;
  *) echo "ci-gate: unknown arguments '$*'; expected none, --write-baseline or --write-baseline --default"; exit 2 ;;
esac
BUILD=${RF_BUILD_DIR:-build}
OUT=${RF_GATE_OUT:-results/runs/ci-gate-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
# The default (active) wait policy, as users run: NL models launch many short parallel regions, and passive
# waiting costs them about a quarter of their throughput (measured: 301 against 389 images/s at batch 64).
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
unset OMP_WAIT_POLICY
[ -x "$BUILD/reframe" ] || { echo "ci-gate: $BUILD/reframe not built (scripts/build.sh; RF_BUILD_DIR)"; exit 1; }
# The class with this OMP_NUM_THREADS and this build: what the benchmarks below run with.
CLASS=$("$BUILD/reframe" gate --machine-class)
DEFAULT=results/baselines/ci-cpu.json
BASELINE=results/baselines/ci-cpu-$CLASS.json
echo "== ci-gate: machine class $CLASS"

REPS=(--benchmark_repetitions=5 --benchmark_enable_random_interleaving=true --benchmark_report_aggregates_only=false)
benches() {  # benches DIR: the kernel and model timing sets, Google Benchmark JSON into DIR
  mkdir -p "$1"
  echo "== ci-gate: kernels (fast path over reference, regenerated over materialised seeded weights)"
  "$BUILD/bench_kernels" --gate "${REPS[@]}" --benchmark_min_time=0.05 \
    --benchmark_filter='BM_(conv2d|seeded_conv|max_pool|avg_pool|mixed_avg_pool|batchnorm_train)/' \
    --benchmark_out="$1/bench_kernels.json" --benchmark_out_format=json > "$1/bench_kernels.txt"
  echo "== ci-gate: models (each NL model over ResNet-18, forward and training step)"
  "$BUILD/bench_models" --gate "${REPS[@]}" --benchmark_min_time=0.1 \
    --benchmark_out="$1/bench_models.json" --benchmark_out_format=json > "$1/bench_models.txt"
}
benches "$OUT"
echo "== ci-gate: classification (2 models x 2 seeds, synthetic 16x16)"
"$BUILD/reframe" bench classify --out "$OUT/classify" -m resnet18 nl-resnet18:cnl=dw --seeds 2 \
  --synthetic-train 1000 --synthetic-test 400 --image-size 16 --epochs 3 --batch 32 --lr 0.05 \
  --throughput-batches 16 --latency-reps 3 > "$OUT/classify.txt"
INPUTS=("$OUT/bench_kernels.json" "$OUT/bench_models.json" "$OUT/classify/classify.json")
if [ "${1:-}" = "--write-baseline" ]; then
  TARGET=$BASELINE
  [ "${2:-}" = "--default" ] && TARGET=$DEFAULT
  "$BUILD/reframe" gate --write-baseline "$TARGET" --current "${INPUTS[@]}"
  exit 0
fi
if [ ! -f "$BASELINE" ]; then
  echo "ci-gate: no baseline for machine class $CLASS ($BASELINE): gating exact counts and accuracy against" \
    "$DEFAULT; its timing ratios are skipped unless it was measured on this class (to gate them here, run" \
    "scripts/ci-gate.sh --write-baseline on this runner class and commit $BASELINE)"
  BASELINE=$DEFAULT
fi
set +e
"$BUILD/reframe" gate --baseline "$BASELINE" --current "${INPUTS[@]}" --markdown "$OUT/gate.md"
rc=$?
set -e
if [ "$rc" != 0 ] && grep -q '^| REGRESSED | `ratio/' "$OUT/gate.md"; then
  # A timing ratio regressed: measure the timings again and keep only what regresses twice (gate/gate.h).
  echo "ci-gate: a timing ratio regressed; measuring the timings again to confirm"
  benches "$OUT/confirm"
  set +e
  "$BUILD/reframe" gate --baseline "$BASELINE" --current "${INPUTS[@]}" \
    --confirm "$OUT/confirm/bench_kernels.json" "$OUT/confirm/bench_models.json" --markdown "$OUT/gate.md"
  rc=$?
  set -e
fi
echo "ci-gate: $rc regression(s); table in $OUT/gate.md"
exit $rc
