#!/usr/bin/env bash
# Installs the Debian packages reframe-bench needs, only those that are missing.
# CUDA (nvcc, cuDNN, cuRAND) is optional and not installed here: the CPU build always works.
set -euo pipefail

PKGS=(build-essential cmake ninja-build pkg-config git  # git: the revision in every results file
      libdnnl-dev ocl-icd-opencl-dev opencl-c-headers  # oneDNN's CMake package calls FindOpenCL
      libfmt-dev libcli11-dev nlohmann-json3-dev
      libgtest-dev libgmock-dev libbenchmark-dev
      libjpeg62-turbo-dev libpng-dev libzstd-dev zstd python3
      libtinyxml2-dev python3-matplotlib python3-numpy  # VOC XML; scripts/report.py plots
      clang libclang-rt-14-dev libomp-14-dev)  # clang + libFuzzer/ASan runtimes + its omp.h: scripts/fuzz.sh

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# ---- arm64 cross-build of the device side (issue 16: scripts/check-arm64.sh, README "On the device") ----------
# Debian's aarch64 cross compiler, qemu-user-static (scripts/check-arm64.sh calls qemu-aarch64-static itself: no
# binfmt needed, so it works in a chroot) and the :arm64 libraries the device target `reframe-device` links: fmt,
# zstd, libjpeg, libpng, tinyxml2 (-dev), and oneDNN's runtime libdnnl2 only: Debian's libdnnl-dev:arm64 cannot be
# installed beside libdnnl-dev:amd64 (their dnnl_config.h differ, in DNNL_GPU_RUNTIME alone, which the headers we
# include do not read), so the cross build takes the amd64 package's headers (same version: Multi-Arch: same
# pins it) and links libdnnl.so.2 by path (cmake/aarch64-linux-gnu.cmake). CLI11 and nlohmann-json are header-only
# (Architecture: all): the host's copies serve both builds. The arm64 indexes come from the same apt sources as
# amd64 (a source without an Architectures restriction covers every architecture dpkg knows), so only the
# foreign architecture needs adding, and apt-get update below fetches them. With everything installed this block
# costs two dpkg queries.
ARM64_PKGS=(g++-aarch64-linux-gnu qemu-user-static libdnnl2:arm64 libfmt-dev:arm64 libzstd-dev:arm64
            libjpeg62-turbo-dev:arm64 libpng-dev:arm64 libtinyxml2-dev:arm64)
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  echo "setup: adding the arm64 architecture (dpkg --add-architecture arm64)"
  $SUDO dpkg --add-architecture arm64  # its packages are then missing below, so apt-get update runs
fi
PKGS+=("${ARM64_PKGS[@]}")
# ---- end of the arm64 block ----------------------------------------------------------------------------------

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PKGS[@]} packages present"
  exit 0
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
