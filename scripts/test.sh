#!/usr/bin/env bash
# Sets up, builds and runs every CPU test, and every CUDA kernel's test against the CUDA emulation (label
# gpu-emu, no GPU or nvcc needed). GPU tests (CTest label `gpu`) run too when a GPU is visible; otherwise they are
# excluded here (and, run by hand, they skip with a message). `-LE '^gpu$'`, not `-LE gpu`: the label is a regular
# expression, and a bare `gpu` also matches gpu-emu.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
BUILD=${RF_BUILD_DIR:-build}
LABELS=(-LE '^gpu$')
if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
  LABELS=()
  echo "test: GPU found, running the gpu-labelled tests too"
else
  echo "test: no GPU here, running ctest -LE '^gpu\$' (the gpu-emu kernel tests run, emulated)"
fi
cd "$BUILD"
# Tests run two at a time on small machines: idle OpenMP threads sleep instead of spinning on shared cores.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
ctest "${LABELS[@]}" --output-on-failure -j "$(nproc)" --timeout 600
cd - >/dev/null
# The package reader under libFuzzer + ASan/UBSan: a fixed number of executions on a corpus of valid packages
# written by this build's `reframe pack`; any crash fails the run (seconds; RF_FUZZ_RUNS changes the count).
RF_BUILD_DIR="$BUILD" bash scripts/fuzz.sh
