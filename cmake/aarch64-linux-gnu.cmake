# CMake toolchain file: cross-builds the device side for 64-bit ARM Linux (ARMv8-A: Raspberry Pi 4/5, Jetson)
# with Debian's cross compiler and its multiarch :arm64 libraries (scripts/setup.sh installs both). Used by
# scripts/check-arm64.sh, which runs the result under qemu-aarch64-static; README "On the device" says how to
# build with it:
#   cmake -S . -B build-arm64 -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
#   cmake --build build-arm64 --target reframe-device
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
# Libraries and CMake packages from Debian's multiarch folders (/usr/lib/aarch64-linux-gnu), never the host's
# (/usr/lib/x86_64-linux-gnu); headers from /usr/include, which the two architectures share.
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
# pkg-config (zstd, tinyxml2) must describe the arm64 libraries, not the host's.
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig")
# The baseline every ARMv8-A core runs (Advanced SIMD, i.e. NEON, is part of it): not the build machine's CPU.
set(CMAKE_C_FLAGS_INIT "-march=armv8-a")
set(CMAKE_CXX_FLAGS_INIT "-march=armv8-a")
set(RF_NATIVE OFF CACHE BOOL "-march=native would describe the build machine, not the device")
set(RF_CUDA OFF CACHE BOOL "no CUDA in the ARM build")
set(RF_BUILD_TESTS OFF CACHE BOOL "the ARM build is checked by scripts/check-arm64.sh, not CTest")
set(RF_BUILD_BENCH OFF CACHE BOOL "no Google Benchmark binaries in the ARM build")
# Debian's libdnnl-dev cannot be installed for two architectures at once (their dnnl_config.h differ in
# DNNL_GPU_RUNTIME only): the ARM build links the arm64 runtime libdnnl.so.2 by name and takes the headers of
# the host's libdnnl-dev (the same version). CMakeLists.txt reads RF_DNNL_LIBRARY when find_package(dnnl) finds
# no package for the target.
set(RF_DNNL_LIBRARY /usr/lib/aarch64-linux-gnu/libdnnl.so.2 CACHE FILEPATH "oneDNN runtime of the target")
# Runs the target's programs (CMake's own checks; the project's checks call qemu themselves).
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64-static -L /)
