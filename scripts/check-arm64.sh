#!/usr/bin/env bash
# The device side on ARM64, checked under emulation (issue 16; README "On the device"): cross-builds
# `reframe-device` for aarch64 (cmake/aarch64-linux-gnu.cmake, into build-arm64/) and runs it under
# qemu-aarch64-static (called here, with the multiarch root as its library prefix: no binfmt, so it works in a
# chroot; emulating a Cortex-A72, the Raspberry Pi 4's core: ARMv8.0-A without SVE, so oneDNN takes the code path a
# board takes, not qemu's default SVE-512 one) against the x86 build's `reframe` (build/reframe, built if absent), on the same packages:
#   a. seeded weights: `inspect --seeded-hashes` (XXH64 of every NL module's regenerated weights) of every NL
#      model must be identical, byte for byte, on both (the whole inspect output is compared);
#   b. logits of real CIFAR-10 test images (`predict --json`, JPEG decoding included) from packages trained on x86
#      (one epoch on 50 real images), fp32, fp16 and int8 (10 images; ResNet-18, 8x the work and the slowest under
#      emulation: fp32, 2 images): |arm - x86| <= 1e-3 + 1e-4 |x86| for every logit (float sums in another order:
#      oneDNN's AArch64 kernels, NEON FMA; measured: max ~2e-6), same top-1;
#      a delta applied on ARM rebuilds the same bytes as on x86; `run` works on every model (its peak memory is
#      printed: valid under emulation; its timings are not);
#   c. bad packages (truncated, corrupted payload, bad magic, empty, wrong delta base): the same one-line error and
#      the same non-zero exit status on both.
# Prints PASS/FAIL per check and a summary; exits 1 on any failure. Needs scripts/setup.sh's arm64 block and
# ../shared/datasets/cifar10-jpg.tar.zst (RF_SHARED_DATASETS overrides the folder). Not part of scripts/test.sh: CI
# runs it once, in the fresh Debian root (scripts/check-fresh-machine.sh). Env: RF_BUILD_DIR (x86 build, default
# build), RF_ARM_BUILD_DIR (default build-arm64).
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
stamp() { echo "check-arm64: [$(($(date +%s) - t0)) s] $*"; }
X86_BUILD=${RF_BUILD_DIR:-build}
ARM_BUILD=${RF_ARM_BUILD_DIR:-build-arm64}
DATA=${RF_SHARED_DATASETS:-../shared/datasets}
CIFAR="$DATA/cifar10-jpg.tar.zst"
[ -f "$CIFAR" ] || { echo "check-arm64: $CIFAR not found (set RF_SHARED_DATASETS to the folder holding it)" >&2; exit 2; }

bash scripts/setup.sh  # the arm64 block: cross compiler, qemu, :arm64 libraries
command -v qemu-aarch64-static >/dev/null || { echo "check-arm64: qemu-aarch64-static missing" >&2; exit 2; }
LAUNCH=()
command -v ccache >/dev/null && LAUNCH=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
GEN=()
command -v ninja >/dev/null && GEN=(-G Ninja)

# ---- the two binaries ---------------------------------------------------------------------------------------
if [ ! -f "$X86_BUILD/CMakeCache.txt" ]; then  # as scripts/build.sh configures it
  cmake -S . -B "$X86_BUILD" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release "${LAUNCH[@]}" >/dev/null
fi
stamp "x86 build: $X86_BUILD/reframe"
cmake --build "$X86_BUILD" -j "$(nproc)" --target reframe | tail -n 1
if [ ! -f "$ARM_BUILD/CMakeCache.txt" ]; then
  cmake -S . -B "$ARM_BUILD" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_TOOLCHAIN_FILE="$(pwd)/cmake/aarch64-linux-gnu.cmake" "${LAUNCH[@]}" >/dev/null
fi
stamp "cross build: $ARM_BUILD/reframe-device (aarch64)"
tb=$(date +%s)
cmake --build "$ARM_BUILD" -j "$(nproc)" --target reframe-device | tail -n 1
build_s=$(($(date +%s) - tb))
# One thread each: the outputs do not depend on it, and on a shared 2-core CI machine OpenMP's spinning threads
# (emulated ones above all) only cost time.
X=("$X86_BUILD/reframe" --threads 1)
A=(qemu-aarch64-static -cpu cortex-a72 -L / "$ARM_BUILD/reframe-device" --threads 1)
file_info=$(file -b "$ARM_BUILD/reframe-device" 2>/dev/null || true)
stamp "ARM binary: ${file_info:-?}"
"${A[@]}" --version | sed 's/^/  arm: /'

W="$ARM_BUILD/check"
rm -rf "$W"
mkdir -p "$W/pk" "$W/x86" "$W/arm" "$W/bad"
FAILS=()
RESULTS=()
pass() { RESULTS+=("PASS  $*"); echo "check-arm64: PASS $*"; }
fail() { RESULTS+=("FAIL  $*"); FAILS+=("$*"); echo "check-arm64: FAIL $*"; }

# ---- a. seeded weights bit-identical -----------------------------------------------------------------------
stamp "a. seeded weights: inspect --seeded-hashes on x86 and ARM"
SEEDED=("nl-resnet18:cnl=dw" "nl-resnet18:cnl=512" "nl-resnet18:cnl=768"
        "nl-resnet18:cnl=dw,gpw=2,shuffle=off,seed=18446744073709551610,stem=large,classes=100")
i=0
for cfg in "${SEEDED[@]}"; do
  p="$W/pk/seeded$i.rfpk"
  "${X[@]}" pack -m "$cfg" -o "$p" >/dev/null
  "${X[@]}" inspect "$p" --no-tensors --seeded-hashes >"$W/x86/seeded$i.txt"
  "${A[@]}" inspect "$p" --no-tensors --seeded-hashes >"$W/arm/seeded$i.txt"
  n=$(grep -c 'seeded.weight .* xxh64 0x' "$W/x86/seeded$i.txt" || true)
  if [ "$n" -gt 0 ] && cmp -s "$W/x86/seeded$i.txt" "$W/arm/seeded$i.txt"; then
    pass "a. $cfg: $n NL modules' regenerated weights bit-identical (XXH64 per layer)"
  else
    fail "a. $cfg: seeded weight hashes differ ($n modules on x86); diff $W/x86/seeded$i.txt $W/arm/seeded$i.txt"
    diff "$W/x86/seeded$i.txt" "$W/arm/seeded$i.txt" | head -n 8 || true
  fi
  i=$((i + 1))
done

# ---- b. logits on real CIFAR-10 images from packages trained on x86 ------------------------------------------
# 5 training images per class and 1 test image per class, ImageFolder layout (class order = CIFAR-10's).
stamp "b. CIFAR-10 subset from $CIFAR"
zstd -dc "$CIFAR" | tar -x -C "$W" --wildcards 'cifar10/train/*/000[0-4].jpg' 'cifar10/test/*/0000.jpg'
MODELS=("nl-resnet18:cnl=dw" "nl-resnet18:cnl=512" "nl-resnet18:cnl=768" "resnet18")
NAMES=(dw 512 768 r18)
for k in "${!MODELS[@]}"; do
  n=${NAMES[$k]}
  "${X[@]}" train -m "${MODELS[$k]}" --data "$W/cifar10" --epochs 1 --batch 10 --val 0 --bn-recalibrate 50 \
    -o "$W/pk/$n-fp32.rfpk" >"$W/x86/train-$n.log"
  for dt in fp16 int8; do "${X[@]}" pack --from "$W/pk/$n-fp32.rfpk" --dtype $dt -o "$W/pk/$n-$dt.rfpk" >/dev/null; done
done
stamp "b. packages trained on x86; predict on x86 and ARM"
for n in "${NAMES[@]}"; do
  dts=(fp32 fp16 int8)
  images=("$W/cifar10/test")
  [ "$n" = r18 ] && dts=(fp32) && images=("$W/cifar10/test/airplane/0000.jpg" "$W/cifar10/test/truck/0000.jpg")
  for dt in "${dts[@]}"; do
    p="$W/pk/$n-$dt.rfpk"
    "${X[@]}" predict "$p" "${images[@]}" --json >"$W/x86/predict-$n-$dt.json"
    # The ARM run through Python, for its peak memory (the child's max RSS: qemu's own memory included).
    python3 -c 'import resource, subprocess, sys
r = subprocess.run(sys.argv[2:], stdout=open(sys.argv[1], "w"))
print(f"{resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.1f}")
sys.exit(r.returncode)' "$W/arm/predict-$n-$dt.json" "${A[@]}" predict "$p" "${images[@]}" --json >"$W/arm/predict-$n-$dt.rss"
    if msg=$(python3 - "$W/x86/predict-$n-$dt.json" "$W/arm/predict-$n-$dt.json" <<'EOF'
import json, sys
x, a = (json.load(open(f)) for f in sys.argv[1:3])
xi, ai = x["images"], a["images"]
if [i["file"] for i in xi] != [i["file"] for i in ai] or not xi:
    sys.exit("different image lists")
worst, top_diff, n, big = 0.0, 0, 0, 0.0
for p, q in zip(xi, ai):
    for u, v in zip(p["logits"], q["logits"]):
        n += 1
        worst = max(worst, abs(u - v) / (1e-3 + 1e-4 * abs(u)))
        big = max(big, abs(u - v))
    top_diff += max(range(len(p["logits"])), key=p["logits"].__getitem__) != \
                max(range(len(q["logits"])), key=q["logits"].__getitem__)
print(f"{len(xi)} images, {n} logits: max |arm - x86| {big:.2g} ({worst:.2g} of the tolerance), top-1 differs on {top_diff}")
sys.exit(0 if worst <= 1 and top_diff == 0 else 1)
EOF
    ); then pass "b. $n $dt: $msg"; else fail "b. $n $dt: $msg"; fi
  done
done
stamp "b. delta: pack --base on x86, apply on both"
"${X[@]}" pack -m nl-resnet18:cnl=dw -o "$W/pk/dw-init.rfpk" >/dev/null
"${X[@]}" pack --from "$W/pk/dw-fp32.rfpk" --base "$W/pk/dw-init.rfpk" -o "$W/pk/dw-up.rfpk" >/dev/null
"${X[@]}" apply "$W/pk/dw-init.rfpk" "$W/pk/dw-up.rfpk" -o "$W/x86/dw-applied.rfpk" >/dev/null
"${A[@]}" apply "$W/pk/dw-init.rfpk" "$W/pk/dw-up.rfpk" -o "$W/arm/dw-applied.rfpk" >/dev/null
if cmp -s "$W/x86/dw-applied.rfpk" "$W/arm/dw-applied.rfpk"; then
  pass "b. delta ($(stat -c %s "$W/pk/dw-up.rfpk") bytes) applied on ARM: the same bytes as on x86"
else
  fail "b. delta applied on ARM differs from x86's result"
fi
stamp "b. run (read, verify, regenerate, infer) on ARM, every model"
MEM="$W/device-memory.txt"
printf '%-6s %-5s %12s %14s %12s %16s\n' model dtype package_B tensor_peak_MiB run_maxrss predict_maxrss >"$MEM"
for n in "${NAMES[@]}"; do
  for b in 1; do
    "${A[@]}" run "$W/pk/$n-fp32.rfpk" --batch $b --reps 1 --warmup 0 --json >"$W/arm/run-$n-b$b.json" ||
      { fail "b. run $n batch $b on ARM"; continue; }
    python3 - "$W/arm/run-$n-b$b.json" "$n" "$(cat "$W/arm/predict-$n-fp32.rss")" >>"$MEM" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
print(f"{sys.argv[2]:<6} {'fp32':<5} {j['package_bytes']:>12} {j['host_tensor_peak_mib']:>14.2f} "
      f"{j['max_rss_mib']:>12.1f} {sys.argv[3]:>16}")
EOF
  done
done
pass "b. run on ARM: every model, batch 1 (peak memory in $MEM)"

# ---- c. bad packages: the same error, the same non-zero exit -----------------------------------------------
stamp "c. bad packages"
good="$W/pk/dw-fp32.rfpk"
size=$(stat -c %s "$good")
head -c 1000 "$good" >"$W/bad/truncated-header.rfpk"
head -c $((size / 2)) "$good" >"$W/bad/truncated-payload.rfpk"
: >"$W/bad/empty.rfpk"
python3 - "$good" "$W/bad" <<'EOF'
import sys
d = bytearray(open(sys.argv[1], "rb").read())
c = bytearray(d); c[len(c) // 2] ^= 0x40; open(sys.argv[2] + "/corrupted-payload.rfpk", "wb").write(c)
m = bytearray(d); m[0] ^= 0x01; open(sys.argv[2] + "/bad-magic.rfpk", "wb").write(m)
EOF
bad_case() {  # label, then the command's arguments (the same for both binaries)
  local label=$1 xr=0 ar=0
  shift
  "${X[@]}" "$@" >/dev/null 2>"$W/x86/err.txt" || xr=$?
  "${A[@]}" "$@" >/dev/null 2>"$W/arm/err.txt" || ar=$?
  if [ "$xr" -ne 0 ] && [ "$xr" = "$ar" ] && cmp -s "$W/x86/err.txt" "$W/arm/err.txt" &&
     grep -q '^reframe: error: ' "$W/arm/err.txt"; then
    pass "c. $label: exit $ar, $(head -c 110 "$W/arm/err.txt" | head -n 1)"
  else
    fail "c. $label: x86 exit $xr, ARM exit $ar"
    sed 's/^/  x86: /' "$W/x86/err.txt"
    sed 's/^/  arm: /' "$W/arm/err.txt"
  fi
}
for f in truncated-header truncated-payload empty corrupted-payload bad-magic; do
  bad_case "inspect $f" inspect "$W/bad/$f.rfpk"
  bad_case "run $f" run "$W/bad/$f.rfpk" --reps 1 --warmup 0
done
bad_case "apply on the wrong base" apply "$W/pk/512-fp32.rfpk" "$W/pk/dw-up.rfpk" -o "$W/bad/out.rfpk"
bad_case "predict corrupted" predict "$W/bad/corrupted-payload.rfpk" "$W/cifar10/test"

# ---- what the device costs (README "On the device") ---------------------------------------------------------
echo
echo "device binary: $ARM_BUILD/reframe-device, $(stat -c %s "$ARM_BUILD/reframe-device") bytes; needs:" \
  "$(readelf -d "$ARM_BUILD/reframe-device" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | tr '\n' ' ')"
echo "packages (bytes, stored as sent):"
for n in "${NAMES[@]}"; do
  echo "  $n: fp32 $(stat -c %s "$W/pk/$n-fp32.rfpk"), fp16 $(stat -c %s "$W/pk/$n-fp16.rfpk"), int8 $(stat -c %s "$W/pk/$n-int8.rfpk")"
done
echo "peak memory on ARM, MiB (run: batch 1; predict: the images above in one batch; host tensor peak: exact;"
echo "max RSS: under qemu, so qemu's own memory is included: an upper bound):"
sed 's/^/  /' "$MEM"
echo
echo "check-arm64: summary (cross build ${build_s} s, total $(($(date +%s) - t0)) s):"
printf '  %s\n' "${RESULTS[@]}"
echo "${#RESULTS[@]} checks: $((${#RESULTS[@]} - ${#FAILS[@]})) passed, ${#FAILS[@]} failed"
[ ${#FAILS[@]} -eq 0 ] || exit 1
