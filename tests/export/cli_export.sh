#!/usr/bin/env bash
# CTest `cli_export` (label onnx): `reframe export` end to end without ONNX Runtime: a written file that starts
# as a protobuf ModelProto, the bytes line, and the errors (missing / truncated / delta-without-base package,
# an output that is a folder, a dense model at a size that is not a multiple of 32), each naming the file or
# option and leaving no output behind. Seconds.
# Usage: cli_export.sh REFRAME WORKDIR
set -euo pipefail
R=$1 W=$2
rm -rf "$W" && mkdir -p "$W"
fail() { echo "FAIL: $*"; exit 1; }
expect_error() {  # expect_error 'text the error must contain' command...
  local want=$1; shift
  local out
  if out=$("$@" 2>&1); then fail "'$*' succeeded, expected an error containing '$want'"; fi
  grep -qF -- "$want" <<<"$out" || fail "'$*': expected '$want' in: $out"
}
if "$R" export --help >/dev/null 2>&1 && ! "$R" export /dev/null --onnx "$W/x.onnx" 2>&1 | grep -q "without libonnx"; then
  :
else
  echo "SKIP: this reframe was built without libonnx"; exit 77
fi
"$R" pack -m nl-resnet18:cnl=dw --dtype int8 -o "$W/dw8.rfpk" >/dev/null
out=$("$R" export "$W/dw8.rfpk" --onnx "$W/out/dw8.onnx")
grep -q "bytes  ONNX .* against the package's 1,212,848" <<<"$out" || fail "no bytes line: $out"
[[ -s $W/out/dw8.onnx ]] || fail "no ONNX file written"
# A ModelProto starts with field 1 (ir_version, varint): byte 0x08.
[[ $(head -c1 "$W/out/dw8.onnx" | od -An -tx1 | tr -d ' ') == 08 ]] || fail "not an ONNX protobuf"
expect_error "$W/missing.rfpk" "$R" export "$W/missing.rfpk" --onnx "$W/m.onnx"
head -c 1000 "$W/dw8.rfpk" >"$W/trunc.rfpk"
expect_error "$W/trunc.rfpk" "$R" export "$W/trunc.rfpk" --onnx "$W/t.onnx"
mkdir -p "$W/adir"
expect_error "--onnx" "$R" export "$W/dw8.rfpk" --onnx "$W/adir"
"$R" pack -m "nl-resnet18:cnl=dw,task=segment,stem=large" -o "$W/seg.rfpk" >/dev/null
expect_error "multiples of 32" "$R" export "$W/seg.rfpk" --onnx "$W/seg.onnx" --size 48
"$R" pack -m nl-resnet18:cnl=dw -o "$W/dw.rfpk" >/dev/null
"$R" pack --from "$W/dw8.rfpk" --base "$W/dw.rfpk" -o "$W/delta.rfpk" >/dev/null
"$R" export "$W/delta.rfpk" --base "$W/dw.rfpk" --onnx "$W/delta.onnx" >/dev/null || fail "delta + --base refused"
for f in m t seg; do [[ ! -e $W/$f.onnx ]] || fail "$W/$f.onnx written by a failed export"; done
ls "$W"/out | grep -q tmp && fail "temp file left in $W/out"
echo "cli_export: ok"
