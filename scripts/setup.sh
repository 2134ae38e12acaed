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

# ---- MPI (issue 15): data-parallel training under `mpirun -np N reframe train|bench`, CTest label `mpi`.
# Optional for the build (find_package(MPI) is optional; without it the world is one process).
PKGS+=(openmpi-bin libopenmpi-dev)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PKGS[@]} packages present"
  exit 0
fi
echo "setup: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
