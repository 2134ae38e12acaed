#!/usr/bin/env bash
# Builds what the device check runs HERE (sm_90, portable host code) and stages it into .dev/device/ (ignored by
# git): bundle.tar.xz with bin/ (the GPU tests, test_cudnn_descriptors, bench_kernels with its GPU half, and, when
# the GPU model path exists (reframe --version), reframe and bench_models), lib/ (the shared libraries ldd finds that the GPU machine
# lacks: oneDNN, fmt, Google Benchmark, OpenMP, OpenCL loader), lib-fallback/ (libstdc++, libgcc_s: used there only
# when the system has none), GIT_REV and MANIFEST; and, with reframe, the CIFAR-10 archive for the short training
# run. cuDNN, cuRAND and NCCL are NOT carried: the GPU machine has them as pip packages and scripts/device-check.sh points
# LD_LIBRARY_PATH at them. Then prints the device tool's call. See docs/DEVICE-CHECK.md.
#
#   scripts/device-pack.sh                 # build dir build-device, -j1
#   BUILD_DIR=build-cuda JOBS=2 scripts/device-pack.sh
#   MODELS=0 scripts/device-pack.sh        # never bundle reframe / bench_models / CIFAR-10 (1: always)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD_DIR=${BUILD_DIR:-build-device}
JOBS=${JOBS:-1}
STAGE=$ROOT/.dev/device
MODELS=${MODELS:-auto}
LIMIT_MIB=${LIMIT_MIB:-60}  # the device call carries 64 MiB in all, the working tree (~3 MiB) included
CIFAR=${CIFAR:-$ROOT/../shared/datasets/cifar10-jpg.tar.zst}

if [[ ! -f $BUILD_DIR/CMakeCache.txt ]]; then
  # RF_NATIVE=OFF: the GPU machine's CPU may lack this one's instruction sets (-march=native would SIGILL there).
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DRF_NATIVE=OFF \
    -DRF_BUILD_BENCH=ON
fi
grep -q '^RF_BUILD_BENCH:BOOL=ON' "$BUILD_DIR/CMakeCache.txt" || cmake "$BUILD_DIR" -DRF_BUILD_BENCH=ON >/dev/null
grep -q '^RF_NATIVE:BOOL=OFF' "$BUILD_DIR/CMakeCache.txt" ||
  { echo "device-pack: $BUILD_DIR has RF_NATIVE=ON (host-specific code); reconfigure with -DRF_NATIVE=OFF" >&2; exit 1; }
grep -Eq '^CMAKE_CUDA_ARCHITECTURES:[A-Z]+=.*90' "$BUILD_DIR/CMakeCache.txt" ||
  { echo "device-pack: $BUILD_DIR does not build for sm_90 (CMAKE_CUDA_ARCHITECTURES)" >&2; exit 1; }

targets=(bench_kernels test_cudnn_descriptors)
for src in tests/gpu/test_*.cpp tests/gpu/test_*.cu; do
  [[ -e $src ]] || continue
  name=$(basename "${src%.*}")
  targets+=("gpu_$name")
done
echo "device-pack: building ${targets[*]} in $BUILD_DIR (-j$JOBS)"
cmake --build "$BUILD_DIR" -j"$JOBS" --target "${targets[@]}"

# The model steps of the check (GPU model benchmarks, a short CIFAR-10 training run) need whole models on the GPU (`reframe --version`: "GPU models yes").
with_models=0
if [[ $MODELS != 0 ]]; then
  cmake --build "$BUILD_DIR" -j"$JOBS" --target reframe bench_models
  if [[ $MODELS == 1 ]] || "$BUILD_DIR/reframe" --version 2>/dev/null | grep -q '^GPU models  *yes'; then
    with_models=1
    targets+=(reframe bench_models)
  fi
fi
if [[ $with_models == 1 ]]; then
  echo "device-pack: model steps (reframe, bench_models, CIFAR-10) included"
else
  echo "device-pack: model steps (reframe, bench_models, CIFAR-10) not included: reframe --version says GPU models no"
fi

if [[ $with_models == 1 && ! -f $CIFAR ]]; then
  echo "device-pack: no CIFAR-10 archive at $CIFAR (set CIFAR=...)" >&2
  exit 1
fi
rm -rf "$STAGE"
mkdir -p "$STAGE"
if [[ $with_models == 1 ]]; then cp "$CIFAR" "$STAGE/"; fi
mkdir -p "$STAGE/tree/bin" "$STAGE/tree/lib" "$STAGE/tree/lib-fallback"
for t in "${targets[@]}"; do cp "$BUILD_DIR/$t" "$STAGE/tree/bin/"; done

# Every shared library the binaries need, except glibc's own (the GPU machine's glibc is used; the binaries need
# GLIBC_2.34 at most), the CUDA driver, and cuDNN / cuRAND (pip packages there).
declare -A seen=()
for b in "$STAGE"/tree/bin/*; do
  while read -r name _ path _; do
    [[ -n ${path:-} && -f $path ]] || continue
    case $name in
      libc.so.*|libm.so.*|libdl.so.*|librt.so.*|libpthread.so.*|ld-linux*|libcuda.so.*|libcudnn*|libcurand*|libnccl*) ;;
      libstdc++.so.*|libgcc_s.so.*) [[ -n ${seen[$name]:-} ]] || cp -L "$path" "$STAGE/tree/lib-fallback/$name" ;;
      *) [[ -n ${seen[$name]:-} ]] || cp -L "$path" "$STAGE/tree/lib/$name" ;;
    esac
    seen[$name]=1
  done < <(ldd "$b" | grep '=>')
done

# The kernels must carry sm_90 machine code, not only PTX for the driver to compile.
if command -v cuobjdump >/dev/null; then
  cuobjdump --list-elf "$STAGE/tree/bin/gpu_test_seeded_conv_gpu" | grep -q sm_90 ||
    { echo "device-pack: no sm_90 ELF in gpu_test_seeded_conv_gpu" >&2; exit 1; }
fi

rev=$(git rev-parse HEAD 2>/dev/null || echo unknown)
dirty=$(git status --porcelain 2>/dev/null | grep -vc '^??' || true)
if [[ ${dirty:-0} != 0 ]]; then rev="$rev+dirty($dirty tracked files modified)"; fi
echo "$rev" > "$STAGE/tree/GIT_REV"
(cd "$STAGE/tree" && find . -type f ! -name MANIFEST -exec sha256sum {} + | sort -k2 > MANIFEST)
echo "device-pack: staged $(du -sh "$STAGE/tree" | cut -f1) uncompressed:"
(cd "$STAGE/tree" && ls -la bin lib lib-fallback)

# xz: ~60 MB of binaries and oneDNN become ~10 MB; the call's 64 MiB limit counts the carried bytes.
tar -C "$STAGE/tree" -cJf "$STAGE/bundle.tar.xz" .
rm -rf "$STAGE/tree"
size=$(du -sb "$STAGE" | cut -f1)
echo "device-pack: $STAGE = $((size / 1024)) KiB ($(ls "$STAGE" | tr '\n' ' '))"
if (( size > LIMIT_MIB * 1024 * 1024 )); then
  echo "device-pack: .dev/device is larger than $LIMIT_MIB MiB: it will not travel with the working tree" >&2
  exit 1
fi
cat <<EOF

Device call (one call does everything in about 5 minutes; the limit leaves device time for one rerun):
  run(command="bash scripts/device-check.sh", carry=[".dev/device"], timeout_s=420)
Three files come back: summary.json, device-check.log, results.tar.gz (every log, gtest XML, benchmark JSON).
EOF
