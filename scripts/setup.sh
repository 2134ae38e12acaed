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
# ONNX export (`reframe export --onnx`, host/export/): libonnx-dev (1.12) has the ONNX protobuf classes and the C++
# checker, built on libprotobuf-dev; python3-venv makes the virtual environment below (ONNX Runtime checks, peers).
PKGS+=(libonnx-dev libprotobuf-dev python3-venv)

# ---- MPI (issue 15): data-parallel training under `mpirun -np N reframe train|bench`, CTest label `mpi`.
# Optional for the build (find_package(MPI) is optional; without it the world is one process).
PKGS+=(openmpi-bin libopenmpi-dev)

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
else
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# ---- ONNX: the Python virtual environment of the ONNX Runtime check (tests/export/) and scripts/peers.py --------
# .venv/ in the repository (git-ignored), made with Debian's python3, every package pinned (the direct ones and
# everything they pull in), from PyPI only. Skipped when the venv already has exactly these versions (1-2 s); a
# fresh machine downloads about 70 MB of wheels (370 MB installed): 30 s here, 90 s on a busy 2-core machine
# without pip's cache. RF_NO_VENV=1 skips it (then the ONNX Runtime test skips with a message).
VENV_PINS=(onnx==1.19.1 onnxruntime==1.23.2 numpy==1.26.4 pillow==11.3.0)  # pillow: real JPEGs in the test
VENV_DEPS=(coloredlogs==15.0.1 flatbuffers==25.12.19 humanfriendly==10.0 ml_dtypes==0.5.4 mpmath==1.3.0
           packaging==26.4 protobuf==7.36.2 sympy==1.14.0 typing_extensions==4.16.0)  # what the pins pull in
VENV="$(cd "$(dirname "$0")/.." && pwd)/.venv"
# venv_has: every pin is in the venv's `pip freeze` (names compared case-insensitively, - and _ alike).
venv_has() {
  [ -x "$VENV/bin/python" ] || return 1
  local have
  have=$("$VENV/bin/python" -m pip freeze --all 2>/dev/null | tr 'A-Z_' 'a-z-') || return 1
  local p
  for p in "${VENV_PINS[@]}" "${VENV_DEPS[@]}"; do
    grep -qxF "$(echo "$p" | tr 'A-Z_' 'a-z-')" <<<"$have" || return 1
  done
}
if [ "${RF_NO_VENV:-0}" = 1 ]; then
  echo "setup: RF_NO_VENV=1: no Python venv (the ONNX Runtime checks will skip)"
elif venv_has; then
  echo "setup: venv $VENV has ${VENV_PINS[*]}"
else
  echo "setup: making the venv $VENV (${VENV_PINS[*]}) from PyPI"
  /usr/bin/python3 -m venv "$VENV"
  # PyPI only: no local wheel folders (PIP_FIND_LINKS), wheels only (nothing is compiled here).
  if ! PIP_FIND_LINKS="" "$VENV/bin/python" -m pip install -q --disable-pip-version-check --only-binary :all: \
       "${VENV_PINS[@]}" "${VENV_DEPS[@]}"; then
    echo "setup: ERROR: pip could not install ${VENV_PINS[*]} into $VENV from PyPI (is pypi.org reachable?)." >&2
    echo "setup: set RF_NO_VENV=1 to go on without it (the ONNX Runtime checks then skip)." >&2
    exit 1
  fi
  venv_has || { echo "setup: ERROR: $VENV lacks some pins after pip install" >&2; exit 1; }
fi
