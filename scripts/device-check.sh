#!/usr/bin/env bash
# One device call that verifies the CUDA backend on the GPU machine (H200, sm_90) and measures its kernels.
#
# Plan ("way 1" of ../shared/docs/DEVICE.md): the GPU machine has nvcc, CMake and pip cuDNN / cuRAND but none of
# Debian's fmt, GoogleTest, oneDNN, nlohmann-json, so nothing is built there. scripts/device-pack.sh builds the GPU
# test binaries and bench_cuda_kernels on the dev machine for sm_90 (RF_NATIVE=OFF, GoogleTest and cudart
# static) and stages .dev/device/bundle.tar.xz: bin/, lib/ (oneDNN, fmt, libgomp, OpenCL loader), lib-fallback/
# (libstdc++, libgcc_s), GIT_REV. This script, run in the repo root there with .dev/device carried:
#   1. unpacks the bundle to /tmp/rf-device, finds the pip cuDNN and cuRAND folders (python3's nvidia packages,
#      else a file search) and sets LD_LIBRARY_PATH; prints the GPU, the driver and cudnnGetVersion() (via the
#      cuDNN test's output);
#   2. runs the GPU tests through CTest (`ctest -L gpu`, a CTestTestfile generated for the unpacked binaries),
#      with gtest XML per binary;
#   3. runs bench_cuda_kernels (batch 256: seeded conv regen vs materialised for the dw/512/768 layers, NL module
#      forward, Philox vs curandGenerateNormal) -> $OUT/bench_cuda_kernels.json;
#   4. runs compute-sanitizer memcheck on every GPU test binary and racecheck on those with shared-memory kernels,
#      each under a time limit, as long as the call's time budget allows;
#   5. prints a short table and writes $OUT/summary.json.
# If the binaries do not start there (a missing library: see the ldd output printed below), fall back to "way 2":
# build there with its nvcc and CMake after carrying the headers and static libraries (docs/DEVICE-CHECK.md).
#
#   device tool: run(command="bash scripts/device-check.sh", carry=[".dev/device"], timeout_s=600)
#   locally:     OUT=/tmp/out bash scripts/device-check.sh   (skips cleanly without a GPU)
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${OUT:-/tmp/rf-device-out}
BUNDLE=${BUNDLE:-$ROOT/.dev/device/bundle.tar.xz}
WORK=${WORK:-/tmp/rf-device}
BUDGET_S=${BUDGET_S:-540}  # stop starting new sanitizer runs after this many seconds (the call's limit is 600)
mkdir -p "$OUT"
exec > >(tee "$OUT/device-check.log") 2>&1

echo "== device-check: $(date -u +%FT%TZ) on $(hostname)"
[[ -f $BUNDLE ]] || { echo "no bundle at $BUNDLE: run scripts/device-pack.sh first and carry .dev/device"; exit 2; }
rm -rf "$WORK" && mkdir -p "$WORK"
if ! tar -C "$WORK" -xJf "$BUNDLE" 2>/dev/null; then
  python3 -c "import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])" "$BUNDLE" "$WORK" || exit 2
fi
(cd "$WORK" && sha256sum --quiet -c MANIFEST) || { echo "bundle corrupted: MANIFEST mismatch"; exit 2; }
REV=$(cat "$WORK/GIT_REV")
echo "bundle revision: $REV"

# ---- libraries: ours, then the pip cuDNN / cuRAND ------------------------------------------------------------
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
CUDNN_DIR=$(libdir_of libcudnn.so.9)
CURAND_DIR=$(libdir_of libcurand.so.10)
echo "cuDNN from: ${CUDNN_DIR:-NOT FOUND}; cuRAND from: ${CURAND_DIR:-NOT FOUND}"
LP=$WORK/lib
[[ -n $CUDNN_DIR && $CUDNN_DIR != . ]] && LP=$LP:$CUDNN_DIR
[[ -n $CURAND_DIR && $CURAND_DIR != . ]] && LP=$LP:$CURAND_DIR
ldconfig -p 2>/dev/null | grep -q 'libstdc++.so.6 ' || LP=$LP:$WORK/lib-fallback
export LD_LIBRARY_PATH=$LP${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv 2>&1 | tee "$OUT/nvidia-smi.csv"
for b in "$WORK"/bin/*; do
  missing=$(ldd "$b" | grep 'not found')
  [[ -z $missing ]] || { echo "MISSING LIBRARIES for $(basename "$b"):"; echo "$missing"; }
done

# ---- 1. GPU tests through CTest ---------------------------------------------------------------------------------
mkdir -p "$OUT/gtest"
{
  for b in "$WORK"/bin/gpu_test_*; do
    n=$(basename "$b")
    echo "add_test($n \"$b\" \"--gtest_output=xml:$OUT/gtest/$n.xml\")"
    echo "set_tests_properties($n PROPERTIES LABELS gpu SKIP_REGULAR_EXPRESSION \"\\\\[  SKIPPED \\\\]\" TIMEOUT 240)"
  done
  echo "add_test(smoke_bench_cuda_kernels \"$WORK/bin/bench_cuda_kernels\" --smoke --out $OUT/bench_smoke.json)"
  echo "set_tests_properties(smoke_bench_cuda_kernels PROPERTIES LABELS \"gpu;bench\" SKIP_RETURN_CODE 77 TIMEOUT 120)"
} > "$WORK/CTestTestfile.cmake"
CTEST_RC=99
if command -v ctest >/dev/null; then
  (cd "$WORK" && ctest -L gpu --output-on-failure 2>&1 | tee "$OUT/ctest.log")
  CTEST_RC=${PIPESTATUS[0]}
else
  echo "no ctest on PATH: running the GPU test binaries directly"
  CTEST_RC=0
  for b in "$WORK"/bin/gpu_test_*; do
    "$b" --gtest_output="xml:$OUT/gtest/$(basename "$b").xml" 2>&1 | tee -a "$OUT/ctest.log" || CTEST_RC=1
  done
fi
echo "== GPU tests: rc=$CTEST_RC (after ${SECONDS}s)"

# ---- 2. kernel benchmark ------------------------------------------------------------------------------------------
BENCH_RC=99
"$WORK/bin/bench_cuda_kernels" --out "$OUT/bench_cuda_kernels.json" --git-rev "$REV" 2>&1 | tee "$OUT/bench.log"
BENCH_RC=${PIPESTATUS[0]}
echo "== benchmark: rc=$BENCH_RC (after ${SECONDS}s)"

# ---- 3. compute-sanitizer ----------------------------------------------------------------------------------------
declare -A SAN=()
san() {  # tool binary [gtest filter]
  local tool=$1 bin=$2 filter=${3:-*} log
  log=$OUT/sanitizer-$tool-$(basename "$bin").log
  if (( SECONDS > BUDGET_S )); then SAN[$tool:$(basename "$bin")]="not run (time budget)"; return; fi
  local left=$(( BUDGET_S + 40 - SECONDS )); (( left > 150 )) && left=150
  timeout "$left" compute-sanitizer --tool "$tool" --error-exitcode 86 --print-limit 20 \
    "$bin" --gtest_filter="$filter" > "$log" 2>&1
  local rc=$?
  case $rc in
    0) SAN[$tool:$(basename "$bin")]="clean" ;;
    86) SAN[$tool:$(basename "$bin")]="ERRORS (see $(basename "$log"))" ;;
    124) SAN[$tool:$(basename "$bin")]="timeout after ${left}s (inconclusive)" ;;
    *) SAN[$tool:$(basename "$bin")]="rc=$rc (test failure or tool error, see $(basename "$log"))" ;;
  esac
  echo "sanitizer $tool $(basename "$bin"): ${SAN[$tool:$(basename "$bin")]} (after ${SECONDS}s)"
}
if ! command -v compute-sanitizer >/dev/null; then
  for d in /usr/local/cuda/bin /usr/local/cuda/compute-sanitizer /opt/nvidia/compute-sanitizer; do
    [[ -x $d/compute-sanitizer ]] && export PATH=$PATH:$d && break
  done
fi
if command -v compute-sanitizer >/dev/null; then
  for b in "$WORK"/bin/gpu_test_*; do san memcheck "$b"; done
  for n in seeded_conv pool nl_module; do san racecheck "$WORK/bin/gpu_test_${n}_gpu"; done
  for n in seeded_conv pool; do san synccheck "$WORK/bin/gpu_test_${n}_gpu"; done
else
  echo "compute-sanitizer not on PATH"
fi

# ---- 4. summary ----------------------------------------------------------------------------------------------------
SAN_TEXT=""
for k in "${!SAN[@]}"; do SAN_TEXT+="$k=${SAN[$k]}"$'\n'; done
CTEST_RC=$CTEST_RC BENCH_RC=$BENCH_RC REV="$REV" SAN_TEXT="$SAN_TEXT" OUTDIR="$OUT" python3 - <<'EOF'
import glob, json, os, xml.etree.ElementTree as ET
out = os.environ["OUTDIR"]
summary = {"schema": "reframe-bench/device-check/1", "git_rev": os.environ["REV"],
           "ctest_rc": int(os.environ["CTEST_RC"]), "bench_rc": int(os.environ["BENCH_RC"]),
           "tests": {}, "sanitizers": {}}
for line in os.environ["SAN_TEXT"].splitlines():
    k, _, v = line.partition("=")
    summary["sanitizers"][k] = v
print("\n==================== device-check summary ====================")
print(f"revision {summary['git_rev']}")
for f in sorted(glob.glob(os.path.join(out, "gtest", "*.xml"))):
    r = ET.parse(f).getroot()
    t = {k: int(r.get(k, 0)) for k in ("tests", "failures", "errors", "disabled")}
    t["skipped"] = sum(1 for c in r.iter("testcase") if c.get("result") == "skipped" or c.find("skipped") is not None)
    summary["tests"][os.path.basename(f)[:-4]] = t
    print(f"{os.path.basename(f)[:-4]:28s} tests {t['tests']:3d}  failures {t['failures']:2d}  skipped {t['skipped']:2d}")
for k, v in sorted(summary["sanitizers"].items()):
    print(f"{k:44s} {v}")
try:
    b = json.load(open(os.path.join(out, "bench_cuda_kernels.json")))
    summary["device"] = b["device"]
    print(f"\n{b['device']} (sm {b['sm']}), cuDNN {b['cudnn_runtime_version']}, batch {b['batch']}")
    print("seeded conv, regen vs materialised (throughput ratio, target >= 0.9):")
    for s in b["seeded_conv_network_summary"]:
        print(f"  {s['variant']:4s} whole net {s['throughput_ratio']:.3f}  ({s['net_regen_ms']:.3f} ms vs {s['net_materialised_ms']:.3f} ms)")
    p = b["philox_normals"]
    print(f"Philox normals: ours {p['ours_gnormals_per_s']:.1f} G/s vs curandGenerateNormal {p['curand_gnormals_per_s']:.1f} G/s, ratio {p['throughput_ratio_ours_over_curand']:.3f}")
    summary["bench"] = {"seeded_conv_network_summary": b["seeded_conv_network_summary"],
                        "philox_ratio": p["throughput_ratio_ours_over_curand"]}
except Exception as e:  # the benchmark failed: say so, keep the rest
    print(f"benchmark results unavailable: {e}")
json.dump(summary, open(os.path.join(out, "summary.json"), "w"), indent=1)
EOF
echo "== device-check done after ${SECONDS}s; files under $OUT"
[[ $CTEST_RC -eq 0 && $BENCH_RC -eq 0 ]]
