// The machine `reframe gate` runs on (rf::gate::detect_machine, gate/gate.h): CPU model, the SIMD level the
// kernels were compiled for, OpenMP threads and the build options. Kept apart from gate/gate.cpp so that
// the reader links from few sources (fuzz/fuzz_gate_json.cpp). RF_BUILD_TYPE and RF_NATIVE_BUILD come from
// CMakeLists.txt (this file's compile definitions).
#include <fmt/format.h>

#include <fstream>
#include <string>

#include "host/core/build_info.h"
#include "host/core/parallel.h"
#include "gate/gate.h"

#ifndef RF_BUILD_TYPE
#define RF_BUILD_TYPE "unknown"
#endif
#ifndef RF_NATIVE_BUILD
#define RF_NATIVE_BUILD 0
#endif

namespace rf::gate {

namespace {

// x86 names its model ("model name"); ARM Linux gives the implementer and part numbers instead.
std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line, implementer, part;
  auto value = [&] {
    size_t c = line.find(':');
    std::string v = c == std::string::npos ? "" : line.substr(c + 1);
    size_t b = v.find_first_not_of(" \t"), e = v.find_last_not_of(" \t\r");
    return b == std::string::npos ? std::string() : v.substr(b, e - b + 1);
  };
  while (std::getline(f, line)) {
    if (line.rfind("model name", 0) == 0) return value();
    if (line.rfind("CPU implementer", 0) == 0 && implementer.empty()) implementer = value();
    if (line.rfind("CPU part", 0) == 0 && part.empty()) part = value();
  }
  if (!implementer.empty()) return fmt::format("arm implementer {} part {}", implementer, part);
  return "unknown";
}

std::string compiler() {
#if defined(__clang__)
  return fmt::format("clang {}.{}.{}", __clang_major__, __clang_minor__, __clang_patchlevel__);
#elif defined(__GNUC__)
  return fmt::format("gcc {}.{}.{}", __GNUC__, __GNUC_MINOR__, __GNUC_PATCHLEVEL__);
#else
  return "unknown";
#endif
}

bool sanitized() {
#if defined(__SANITIZE_ADDRESS__)
  return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
  return true;
#else
  return false;
#endif
#else
  return false;
#endif
}

}  // namespace

Machine detect_machine() {
  Machine m;
  m.cpu = cpu_model();
  m.simd = simd_level();
  m.threads = num_threads();
  m.build_type = std::string(*RF_BUILD_TYPE ? RF_BUILD_TYPE : "none") + (sanitized() ? "+asan" : "");
  m.native = RF_NATIVE_BUILD != 0;
  m.compiler = compiler();
  return m;
}

}  // namespace rf::gate
