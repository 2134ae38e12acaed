#!/usr/bin/env bash
# The main job on built-in data: set up, build, print the exact model accounting (MODELS.md's table, from the
# layer graphs), then the three suites on their synthetic sets, ResNet-18 against NL-ResNet-18, each model
# trained, packed, read back, regenerated and evaluated, with bytes, MACs, latency, throughput and accuracy /
# mAP / mIoU side by side, and finally `reframe report` (CSV, plots, summary). About 15 minutes on 2 CPU
# cores (classify ~5, detect ~4, segment ~4). Results: results/runs/<UTC time>/{classify,detect,segment,report}/.
# Arguments replace the built-in sizing of the classification suite and run only it (e.g. --data ~/cifar10
# --epochs 30).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
BUILD=${RF_BUILD_DIR:-build}
OUTDIR=results/runs/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUTDIR"
"$BUILD/reframe" models
"$BUILD/reframe" models --json --layers > "$OUTDIR/models.json.tmp" && mv "$OUTDIR/models.json.tmp" "$OUTDIR/models.json"
echo
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}
if [ $# -gt 0 ]; then
  "$BUILD/reframe" bench classify --out "$OUTDIR/classify" "$@"
  "$BUILD/reframe" report "$OUTDIR" --out "$OUTDIR/report"
  exit 0
fi
"$BUILD/reframe" bench classify --out "$OUTDIR/classify" \
  --synthetic-train 1300 --synthetic-test 500 --image-size 32 --epochs 3 --batch 64 --lr 0.05 \
  --throughput-batches 64 256 --latency-reps 10
echo
"$BUILD/reframe" bench detect --out "$OUTDIR/detect"
echo
"$BUILD/reframe" bench segment --out "$OUTDIR/segment"
echo
"$BUILD/reframe" report "$OUTDIR" --out "$OUTDIR/report"
echo "main job: results in $OUTDIR (summary: $OUTDIR/report/summary.md)"
