#!/usr/bin/env bash
# End-to-end check of the package commands through the real binary: pack -> inspect -> run, a delta -> apply
# (byte-identical rebuild), and bad inputs that must exit with status 1 (an error, not a crash) and a message
# naming the file and the field. Usage: cli_package.sh REFRAME WORKDIR (run by CTest as cli_package).
set -uo pipefail
R=$1
W=$2
rm -rf "$W" && mkdir -p "$W" && cd "$W"
fail() { echo "cli_package: FAIL: $*"; exit 1; }
expect_error() {  # expect_error NEEDLE CMD...: exit status 1 and NEEDLE in stderr
  local needle=$1
  shift
  local err
  err=$("$@" 2>&1 >/dev/null)
  local rc=$?
  [ $rc -eq 1 ] || fail "'$*' exited $rc (expected 1): $err"
  grep -qF -- "$needle" <<<"$err" || fail "'$*': '$needle' not in: $err"
  echo "ok (exit 1): $err"
}

"$R" pack -m nl-resnet18:cnl=dw -o dw.rfpk || fail "pack"
"$R" pack -m nl-resnet18:cnl=dw --dtype int8 --zstd 3 -o dw_i8.rfpk || fail "pack int8"
"$R" inspect --json dw.rfpk > dw.json || fail "inspect"
grep -q '"learnable": 1107786' dw.json || fail "inspect --json: learnable count is not MODELS.md's 1,107,786"
grep -q '"seeded_from_seeds": 30528' dw.json || fail "inspect --json: seeded count is not 30,528"
"$R" run dw_i8.rfpk --reps 1 --warmup 0 --reference dw.rfpk | grep -q "max |diff|" || fail "run --reference"
# Delta: a re-seeded model (all learnable tensors equal) travels as a few KB and rebuilds byte-identically.
"$R" pack -m nl-resnet18:cnl=dw,seed=9 -o dw9.rfpk || fail "pack seed=9"
"$R" pack --from dw9.rfpk --base dw.rfpk -o dw9.delta.rfpk || fail "pack --base"
[ "$(stat -c %s dw9.delta.rfpk)" -lt 20000 ] || fail "delta is not small"
"$R" apply dw.rfpk dw9.delta.rfpk -o dw9_rebuilt.rfpk || fail "apply"
cmp -s dw9.rfpk dw9_rebuilt.rfpk || fail "apply did not rebuild the package byte for byte"
"$R" run dw9.delta.rfpk --base dw.rfpk --reps 1 --warmup 0 > /dev/null || fail "run --base"

head -c 5000 dw.rfpk > trunc.rfpk
python3 - <<'PY' || fail "python"
b = bytearray(open("dw.rfpk", "rb").read())
b[len(b) // 2] ^= 0x20
open("flip.rfpk", "wb").write(b)
v = bytearray(open("dw.rfpk", "rb").read())
v[8] = 9
open("version.rfpk", "wb").write(v)
PY
expect_error "trunc.rfpk: header field 'payload_stored_bytes'" "$R" inspect trunc.rfpk
expect_error "flip.rfpk: checksum mismatch" "$R" run flip.rfpk
expect_error "version.rfpk: header field 'version' is 9, expected 1" "$R" inspect version.rfpk
expect_error "header field 'magic'" "$R" inspect dw.json
expect_error "missing.rfpk: cannot open" "$R" inspect missing.rfpk
expect_error "wrong base" "$R" apply dw_i8.rfpk dw9.delta.rfpk -o x.rfpk
expect_error "is a delta" "$R" run dw9.delta.rfpk
[ ! -e x.rfpk ] || fail "a failed apply left an output file"
echo "cli_package: OK"
