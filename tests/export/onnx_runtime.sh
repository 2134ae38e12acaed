#!/usr/bin/env bash
# CTest `onnx_runtime` (label onnx): every model kind the suite builds exported by `reframe export --onnx` and
# checked by tests/export/onnx_check.py in the project's venv (onnx.checker, then ONNX Runtime's outputs against
# `reframe run --output` on random and real CIFAR-10 images, max |diff| / output range <= 1e-5). A trained tiny
# NL-ResNet-18 dw (real BN statistics and metadata) is exported as fp32, fp16, int8 and BN-folded; the other
# models are freshly packed. Skips (exit 77) only when the venv (scripts/setup.sh) is absent. About 40 s on 2 cores.
# Usage: onnx_runtime.sh REFRAME VENV_PYTHON WORKDIR DATASETS_DIR
set -euo pipefail
R=$1 PY=$2 W=$3 DATA=${RF_SHARED_DATASETS:-$4}  # RF_SHARED_DATASETS: another datasets folder
HERE=$(cd "$(dirname "$0")" && pwd)
if [[ ! -x $PY ]]; then
  echo "SKIP: no Python venv at $PY (scripts/setup.sh makes it: onnx, onnxruntime); ONNX Runtime check not run"
  exit 77
fi
rm -rf "$W" && mkdir -p "$W/img"
images=()
if [[ -f $DATA/cifar10-jpg.tar.zst ]]; then
  # Two real test images per class (20), straight from the archive.
  zstd -dc "$DATA/cifar10-jpg.tar.zst" | tar x -C "$W/img" --wildcards 'cifar10/test/*/000[01].jpg'
  images=("$W"/img/cifar10/test/*/*.jpg)
else
  echo "note: $DATA/cifar10-jpg.tar.zst not found: random inputs only"
fi
check() {  # check PACKAGE NAME [--size S]
  local pkg=$1 name=$2; shift 2
  "$R" export "$pkg" --onnx "$W/$name.onnx" "$@"
  "$PY" "$HERE/onnx_check.py" "$R" "$pkg" "$W/$name.onnx" "$W/run-$name" --images "${images[@]}"
}
# A trained tiny model: BN statistics that are not the identity, and the metadata of `reframe train -o`.
"$R" train -m nl-resnet18:cnl=dw --epochs 1 --synthetic-train 32 --val 0 --batch 16 --bn-recalibrate 32 \
  -o "$W/dw.rfpk" >"$W/train.log" 2>&1 || { cat "$W/train.log"; exit 1; }
check "$W/dw.rfpk" dw
for v in fp16 int8; do
  "$R" pack --from "$W/dw.rfpk" --dtype $v -o "$W/dw-$v.rfpk" >/dev/null
  check "$W/dw-$v.rfpk" dw-$v
done
"$R" pack --from "$W/dw.rfpk" --fold-bn -o "$W/dw-folded.rfpk" >/dev/null
check "$W/dw-folded.rfpk" dw-folded
for m in resnet18 nl-resnet18:cnl=512 nl-resnet18:cnl=768,shuffle=off; do
  n=${m//[:=,]/-}
  "$R" pack -m "$m" -o "$W/$n.rfpk" >/dev/null
  check "$W/$n.rfpk" "$n"
done
# The dense models (large stem, stride-8 merge, Resize), at 64x64.
for m in "nl-resnet18:cnl=dw,task=detect,stem=large,head_nl=on" "nl-resnet18:cnl=512,task=segment,stem=large" \
         "resnet18:task=segment,stem=large"; do
  n=${m//[:=,]/-}
  "$R" pack -m "$m" -o "$W/$n.rfpk" >/dev/null
  check "$W/$n.rfpk" "$n" --size 64
done
echo "onnx_runtime: all exported models agree with ONNX Runtime"
