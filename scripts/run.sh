#!/usr/bin/env bash
# The main job on built-in data: set up, build, print the exact model accounting (MODELS.md's table, from the
# layer graphs), then measure forward throughput of ResNet-18 against NL-ResNet-18 dw/512/768 on synthetic
# 32x32 inputs at batch 64, in one process, and print the ratios. Results go to results/runs/<time>/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
BUILD=${RF_BUILD_DIR:-build}
OUTDIR=results/runs/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUTDIR"
"$BUILD/reframe" models
"$BUILD/reframe" models --json > "$OUTDIR/models.json.tmp" && mv "$OUTDIR/models.json.tmp" "$OUTDIR/models.json"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
echo
echo "Forward throughput, batch 64, 32x32, ${OMP_NUM_THREADS} threads (median of 3):"
"$BUILD/bench_models" --benchmark_filter='BM_forward/.*/N=64/' --benchmark_repetitions=3 \
  --benchmark_report_aggregates_only=true --benchmark_out="$OUTDIR/bench_models.json" \
  --benchmark_out_format=json > /dev/null
python3 scripts/bench_ratio.py "$OUTDIR/bench_models.json"
echo "results: $OUTDIR"
