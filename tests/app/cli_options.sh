#!/usr/bin/env bash
# Hostile options through the real binary (issue 18, classes 4-7): every bad option or output path is refused
# before any work (exit 1 or CLI11's 105/106, a message naming the option and the accepted range), within a
# second; non-finite and out-of-range values never reach training; a checkpoint is neither overwritten nor
# resumed with other settings without being told; a reused --out is refused. Tiny synthetic sets, 8x8 images.
# Usage: cli_options.sh REFRAME WORKDIR (run by CTest as cli_options).
set -uo pipefail
R=$1
W=$2
rm -rf "$W" && mkdir -p "$W" && cd "$W"
fail() { echo "cli_options: FAIL: $*"; exit 1; }
# expect_refused NEEDLE CMD...: a non-zero exit within 2 s, NEEDLE in the output, no training started.
expect_refused() {
  local needle=$1
  shift
  local out t0 t1 rc
  t0=$(date +%s%N)
  out=$("$@" 2>&1)
  rc=$?
  t1=$(date +%s%N)
  [ $rc -ne 0 ] || fail "'$*' exited 0 (expected a refusal): $out"
  [ $rc -lt 128 ] || fail "'$*' crashed ($rc): $out"
  grep -qF -- "$needle" <<<"$out" || fail "'$*': '$needle' not in: $out"
  grep -q "epoch 1/" <<<"$out" && fail "'$*' started training before refusing: $out"
  local ms=$(( (t1 - t0) / 1000000 ))
  [ $ms -lt "$MAXMS" ] || fail "'$*' took $ms ms to refuse (expected under $MAXMS ms: before any work)"
  echo "ok ($rc, $ms ms): $(head -n 1 <<<"$out")"
}
MAXMS=2000  # a refusal comes before any work: well under a second, 2 s on a loaded CI machine
T=(train --synthetic-train 40 --image-size 8 --epochs 1 --batch 16 --bn-recalibrate 0)

# --device: every command that runs a model takes it; one that cannot be used is refused with its reason before
# any work (no CUDA backend in this build, no visible device, or a command without a GPU path). This machine has no
# GPU: `train --device cuda` says that no device is present.
for cmd in "${T[@]:0:1}" "bench classify" "bench detect" "bench segment" eval run predict; do
  # shellcheck disable=SC2086
  "$R" $cmd --help | grep -q -- "--device" || fail "reframe $cmd --help lists no --device"
done
if ! command -v nvidia-smi >/dev/null 2>&1; then
  expect_refused "--device cuda: " "$R" "${T[@]}" --device cuda
  "$R" --version | grep -q '^CUDA  *yes' && expect_refused "no CUDA device is visible" "$R" "${T[@]}" --device cuda
  "$R" "${T[@]}" --device auto >/dev/null 2>&1 || fail "train --device auto without a GPU: expected the CPU run"
fi
# The one switch the device check reads: the classification models run on the GPU, so --version says so.
"$R" --version | grep -q '^GPU models  *yes ' || fail "reframe --version has no 'GPU models yes' line"
expect_refused "use --device cpu" "$R" bench detect --device cuda:0 -o d0
expect_refused "--device tpu: unknown device (expected cpu, cuda, cuda:N or auto)" "$R" "${T[@]}" --device tpu
expect_refused "--device cuda:x:" "$R" run missing.rfpk --device cuda:x --batch 2
# A suite's checkpoints live in a folder, one file per run; --resume needs it.
expect_refused "--resume needs --checkpoint DIR" "$R" bench segment --resume -o s9
touch ckfile
expect_refused "--checkpoint ckfile: is a file" "$R" bench classify --checkpoint ckfile -o c9

# Class 4: ranges and non-finite numbers, at parse time.
expect_refused "--lr" "$R" "${T[@]}" --lr nan
expect_refused "not a finite number in (0, 10]" "$R" "${T[@]}" --lr nan
expect_refused "--lr" "$R" "${T[@]}" --lr -1
expect_refused "--lr" "$R" "${T[@]}" --lr inf
expect_refused "--lr" "$R" bench classify --lr 1e999 -o c0
expect_refused "--lr" "$R" bench segment --lr NaN -o s0
expect_refused "--label-smoothing" "$R" "${T[@]}" --label-smoothing nan
expect_refused "--image-size" "$R" "${T[@]}" --image-size 100000
expect_refused "--image-size" "$R" eval x.rfpk --image-size 100000
expect_refused "--epochs" "$R" "${T[@]}" --epochs 0
expect_refused "--batch" "$R" "${T[@]}" --batch 1
expect_refused "--warmup" "$R" "${T[@]}" --warmup -2
expect_refused "--warmup 3 (expected 0..1, at most --epochs)" "$R" "${T[@]}" --warmup 3
expect_refused "--throughput-batches" "$R" bench classify --throughput-batches 65536 -o c1
expect_refused "--throughput-batches" "$R" bench detect --throughput-batches 4096 -o d1
expect_refused "--latency-reps" "$R" bench classify --latency-reps 0 -o c2
# --shard I/N (suites/runs.h) and reframe merge (suites/merge.h): refused before any work.
expect_refused "I = 2 is not a part of 2" "$R" bench classify --shard 2/2 -o c4
expect_refused "expected I/N in decimal digits" "$R" bench segment --shard 1 -o c4
expect_refused "N = 0" "$R" bench detect --shard 0/0 -o c4
expect_refused "merge: nope.json: cannot open" "$R" merge nope.json -o merged.json
expect_refused "--seeds" "$R" bench classify --seeds 0 -o c3
expect_refused "--threads" "$R" --threads 100000 models
expect_refused "--synthetic-train" "$R" "${T[@]}" --synthetic-train 5
expect_refused "at size 512" "$R" bench classify --synthetic-train 10000000 --image-size 512 -o c4
expect_refused "4 GiB" "$R" run x.rfpk --batch 65536 --size 4096
expect_refused "8 GiB" "$R" bench detect --synthetic-train 1000000 --synthetic-size 4096 -o d2
expect_refused "cnl=65536 (expected an integer in 1..4096)" "$R" "${T[@]}" -m nl-resnet18:cnl=65536
expect_refused "classes=1000000" "$R" bench classify -m resnet18 resnet18:classes=1000000 -o c5
# Class 6: seeds are 0..2^64-1, refused otherwise (not wrapped).
expect_refused "--seed" "$R" "${T[@]}" --seed -1
expect_refused "expected an unsigned integer 0..18446744073709551615" "$R" "${T[@]}" --seed 18446744073709551616
expect_refused "--seed" "$R" run x.rfpk --seed 0x10
expect_refused "seed=-1 (expected an unsigned integer" "$R" "${T[@]}" -m nl-resnet18:seed=-1
# ... and a terminal escape in a config is printed escaped.
out=$("$R" "${T[@]}" -m $'resnet18:stem=\e[31mred' 2>&1) && fail "escape config accepted"
grep -qF "stem '\x1b[31mred'" <<<"$out" || fail "escape not shown escaped: $out"
grep -q $'\e' <<<"$out" && fail "raw ESC printed: $out"
echo "ok: escaped: $out"

# Class 5: outputs and names checked before any work.
mkdir -p adir && touch afile
expect_refused "--out adir: is a folder" "$R" "${T[@]}" -o adir
expect_refused "--out afile/x.rfpk" "$R" "${T[@]}" -o afile/x.rfpk
expect_refused "--checkpoint adir: is a folder" "$R" "${T[@]}" --checkpoint adir
expect_refused "--dtype" "$R" "${T[@]}" --dtype f64 -o m.rfpk
expect_refused "--out afile: is a file, expected a folder" "$R" bench classify -o afile
expect_refused "--out afile" "$R" bench detect -o afile
expect_refused "--out and --checkpoint name the same file" "$R" "${T[@]}" --checkpoint same.rfpk -o same.rfpk
expect_refused "--resume needs --checkpoint" "$R" "${T[@]}" --resume
expect_refused "--resume-force needs --resume" "$R" "${T[@]}" --resume-force
expect_refused "--markdown adir: is a folder" "$R" gate -c adir --baseline afile --markdown adir
expect_refused "--write-baseline adir" "$R" gate -c adir --write-baseline adir
expect_refused "--out adir: is a folder" "$R" pack -m resnet18 -o adir
[ ! -e afile/x.rfpk ] || fail "a refused run wrote something"

# Class 7: checkpoints and run folders.
T7=("${T[@]}" -m nl-resnet18:cnl=dw)
"$R" "${T7[@]}" --checkpoint ck.rfpk -o m.rfpk >/dev/null 2>&1 || fail "tiny train"
[ -s ck.rfpk ] && [ -s m.rfpk ] || fail "tiny train wrote no checkpoint/package"
cp ck.rfpk ck.orig
MAXMS=30000  # the settings check reads the checkpoint and hashes the data first (still before any epoch)
expect_refused "exists (a previous run's); pass --resume" "$R" "${T7[@]}" --checkpoint ck.rfpk
cmp -s ck.rfpk ck.orig || fail "the existing checkpoint was overwritten"
expect_refused "batch: 16 in the checkpoint, 20 now" "$R" "${T7[@]/16/20}" --checkpoint ck.rfpk --resume
expect_refused "lr: " "$R" "${T7[@]}" --lr 0.2 --checkpoint ck.rfpk --resume
expect_refused "seed: 0 in the checkpoint, 5 now" "$R" "${T7[@]}" --seed 5 --checkpoint ck.rfpk --resume
expect_refused "train_data" "$R" "${T7[@]}" --seed 5 --checkpoint ck.rfpk --resume
"$R" "${T7[@]/16/20}" --checkpoint ck.rfpk --resume --resume-force >/dev/null 2>&1 || fail "--resume-force"
"$R" "${T7[@]}" --checkpoint ck.rfpk --overwrite >/dev/null 2>&1 || fail "--overwrite"
# A stale temp of a dead writer is removed when the target is written.
(exit 0) & deadpid=$!; wait $deadpid
touch "m2.rfpk.tmp.$deadpid"
"$R" pack -m resnet18 -o m2.rfpk >/dev/null || fail "pack"
[ ! -e "m2.rfpk.tmp.$deadpid" ] || fail "stale temp m2.rfpk.tmp.$deadpid kept"
MAXMS=2000
# A reused --out is refused (checked before the data is generated).
mkdir -p run1/packages && touch run1/classify.json run1/packages/old.rfpk
expect_refused "already holds results of another run" "$R" bench classify -o run1 -m resnet18
echo "cli_options: OK"
