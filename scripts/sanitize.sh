#!/usr/bin/env bash
# Builds reframe-bench with AddressSanitizer + UndefinedBehaviorSanitizer (RF_SANITIZE=ON, portable code:
# RF_NATIVE=OFF, the path an ARM device runs; no CUDA; no benchmark binaries) and runs the whole CPU CTest suite
# in it, with the CUDA kernels' emulated tests (label gpu-emu: ASan checks every shared-memory and global access
# of the emulated kernels). Fails on any failing test and on any sanitizer report, also one from a process whose
# failure a test expected (the CLI tests feed bad input to `reframe` and check it exits non-zero).
#   scripts/sanitize.sh              configure + build + ctest -LE '^gpu$'
#   scripts/sanitize.sh -R regex     extra arguments go to ctest (e.g. run some tests only)
# Env: RF_ASAN_BUILD_DIR (default build-asan), RF_JOBS (default nproc), RF_CMAKE_ARGS (extra configure args,
#      e.g. -DCMAKE_CXX_COMPILER_LAUNCHER=ccache).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD=${RF_ASAN_BUILD_DIR:-build-asan}
JOBS=${RF_JOBS:-$(nproc)}
GEN=()
command -v ninja >/dev/null && GEN=(-G Ninja)
# shellcheck disable=SC2086  # RF_CMAKE_ARGS is a list of arguments
[ -f "$BUILD/CMakeCache.txt" ] || cmake -S . -B "$BUILD" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release ${RF_CMAKE_ARGS:-}
# Set on every run, so a build dir configured otherwise is brought back to the sanitized configuration.
cmake -S . -B "$BUILD" -DRF_SANITIZE=ON -DRF_NATIVE=OFF -DRF_CUDA=OFF -DRF_BUILD_BENCH=OFF -DRF_BUILD_TESTS=ON \
  >/dev/null
t0=$(date +%s)
set +e
cmake --build "$BUILD" -j "$JOBS" 2>&1 | tee "$BUILD/sanitize-build.log"
rc=${PIPESTATUS[0]}
set -e
[ "$rc" = 0 ] || { echo "sanitize: FAILED: the build (exit $rc)"; exit 1; }
t1=$(date +%s)
echo "sanitize: build took $((t1 - t0)) s"
# GCC 12 miscompiles some expressions under -fsanitize=undefined (e.g. `(c ? a : b)[i]`: the index's SAVE_EXPR
# is evaluated in one arm only; host/ops/conv_direct.cpp had one). Its only trace at compile time is this warning about
# a compiler temporary ('q.290'), so it fails the run (seen on compiled files only: a clean build sees all).
if grep -E "(‘|')[A-Za-z_][A-Za-z0-9_]*\.[0-9]+(’|') (may be|is) used uninitialized" "$BUILD/sanitize-build.log"; then
  echo "sanitize: FAILED: GCC warns about an uninitialised compiler temporary above: with UBSan that is GCC's"
  echo "  SAVE_EXPR bug (a value computed in one branch only); rewrite the expression (see host/ops/conv_direct.cpp)"
  exit 1
fi

# Every sanitizer report goes to a file named after the executable and pid (log_exe_name), so none is lost
# in a test's expected failure; the run fails if any exists. UBSan halts on its first report (the build also
# has -fno-sanitize-recover=undefined); LeakSanitizer stays on, with the documented third-party suppressions.
LOGS="$ROOT/$BUILD/sanitizer-logs"
rm -rf "$LOGS"
mkdir -p "$LOGS"
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:log_path=$LOGS/asan:log_exe_name=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$LOGS/ubsan:log_exe_name=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export LSAN_OPTIONS="suppressions=$ROOT/scripts/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
# As in scripts/test.sh: idle OpenMP threads sleep instead of spinning on shared cores.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}

set +e
# The emulated whole-model training runs (tests/gpu/test_models_gpu.cpp: several training steps of NL-ResNet-18
# through the CUDA emulation, ~35 s each in Release) run in test.sh only; here the same layers are checked by the
# model test's forward and training-step cases and by every kernel's test. Trainer.LearnsTheSyntheticSet too
# (4 epochs of 1,000 images: 33 s in Release, 209 s here, a third of this step's test time): the trainer's code
# runs here in its shorter tests (resume, checkpoints, BN recalibration, options, divergence).
(cd "$BUILD" && ctest -LE '^gpu$' -E 'ModelsGpu[.](ShortTraining|TrainerRuns)|Trainer[.]LearnsTheSyntheticSet' \
  --output-on-failure -j "$JOBS" \
  --timeout 900 "$@")
rc=$?
set -e
t2=$(date +%s)
echo "sanitize: tests took $((t2 - t1)) s"

reports=("$LOGS"/*)
if [ -e "${reports[0]}" ]; then
  for f in "${reports[@]}"; do
    echo "---- sanitizer report $f"
    head -n 60 "$f"
  done
  echo "sanitize: FAILED: ${#reports[@]} sanitizer report(s) in $LOGS (file names: sanitizer.executable.pid)"
  exit 1
fi
if [ $rc -ne 0 ]; then
  echo "sanitize: FAILED: ctest exit $rc (see the failing tests above)"
  exit 1
fi
echo "sanitize: OK, every test passed with no ASan/UBSan/LSan report"
