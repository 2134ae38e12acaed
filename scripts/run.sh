#!/usr/bin/env bash
# The main job on built-in data: set up, build, print the exact model accounting (MODELS.md's table, from the
# layer graphs), then `reframe bench classify` on the synthetic set: ResNet-18 against NL-ResNet-18 dw/512/768,
# trained, packed, read back, regenerated and evaluated, with bytes, MACs, latency, throughput and accuracy side
# by side. Sized to finish in about 5 minutes on 2 CPU cores. Results: results/runs/<UTC time>/.
# Arguments replace the built-in sizing and go to `reframe bench classify` (e.g. --data ~/cifar10 --epochs 30).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
BUILD=${RF_BUILD_DIR:-build}
OUTDIR=results/runs/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUTDIR"
"$BUILD/reframe" models
"$BUILD/reframe" models --json > "$OUTDIR/models.json.tmp" && mv "$OUTDIR/models.json.tmp" "$OUTDIR/models.json"
echo
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}
if [ $# -gt 0 ]; then
  "$BUILD/reframe" bench classify --out "$OUTDIR" "$@"
else
  "$BUILD/reframe" bench classify --out "$OUTDIR" \
    --synthetic-train 1300 --synthetic-test 500 --image-size 32 --epochs 3 --batch 64 --lr 0.05 \
    --throughput-batches 64 256 --latency-reps 10
fi
