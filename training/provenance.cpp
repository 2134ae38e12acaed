// Provenance helpers. The git revision is read at run time from the source tree the binary was built from
// (RF_SOURCE_DIR), so a results file names the code that produced it.
#include "cuda/cudnn_ops.h"
#include "host/core/device.h"
#include "training/provenance.h"
#include "host/core/comm.h"

#include <sys/resource.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>

#include <oneapi/dnnl/dnnl.h>

#include "host/core/build_info.h"
#include "host/core/check.h"
#include "host/core/parallel.h"
#include "host/package/package.h"

#ifndef RF_SOURCE_DIR
#define RF_SOURCE_DIR "."
#endif
// Set for this file by CMakeLists.txt ("build facts"); the fallbacks are for a build that does not set them.
#ifndef RF_VERSION
#define RF_VERSION "unknown"
#endif
#ifndef RF_BUILD_TYPE
#define RF_BUILD_TYPE "unknown"
#endif
#ifndef RF_BUILD_CUDA
#define RF_BUILD_CUDA 0
#endif
#ifndef RF_BUILD_CUDNN
#define RF_BUILD_CUDNN 0
#endif
#ifndef RF_BUILD_MPI
#define RF_BUILD_MPI 0
#endif
#ifndef RF_NATIVE_BUILD
#define RF_NATIVE_BUILD 0
#endif

namespace rf {

std::string utc_now_iso() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

static std::string run_capture(const std::string& cmd) {
  std::string out;
  FILE* f = popen(cmd.c_str(), "r");
  if (!f) return out;
  std::array<char, 256> buf;
  while (fgets(buf.data(), int(buf.size()), f)) out += buf.data();
  pclose(f);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

std::string git_revision() {
  std::string dir = RF_SOURCE_DIR;
  std::string rev = run_capture("git -C '" + dir + "' rev-parse HEAD 2>/dev/null");
  if (rev.empty()) return "unknown";
  std::string dirty = run_capture("git -C '" + dir + "' status --porcelain --untracked-files=no 2>/dev/null");
  return dirty.empty() ? rev : rev + "-dirty";
}

std::string cpu_name() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) {
      auto c = line.find(':');
      return c == std::string::npos ? line : line.substr(c + 2);
    }
  return "unknown";
}

long long max_rss_bytes() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return (long long)ru.ru_maxrss * 1024;
}

namespace {

std::string compiler_name() {
#if defined(__clang__)
  return std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
  return std::string("gcc ") + __VERSION__;
#else
  return "unknown compiler";
#endif
}

std::string onednn_version() {
  const dnnl_version_t* v = dnnl_version();
  const std::string hash = v->hash ? v->hash : "";
  return fmt::format("{}.{}.{}{}", v->major, v->minor, v->patch,
                     hash.empty() || hash == "N/A" ? "" : " (" + hash + ")");
}

std::string simd_name() {  // build_info's short id, as a person reads it
  const std::string s = simd_level();
  return s == "avx512" ? "AVX-512" : s == "avx2" ? "AVX2 + FMA" : s == "neon" ? "NEON" : "portable (no SIMD path)";
}

}  // namespace

nlohmann::json build_facts_json() {
  return {{"version", RF_VERSION},
          {"compiler", compiler_name()},
          {"build_type", RF_BUILD_TYPE},
#ifdef NDEBUG
          {"assertions", false},
#else
          {"assertions", true},
#endif
          {"native", bool(RF_NATIVE_BUILD)},
          {"simd", simd_level()},
          {"cuda", bool(RF_BUILD_CUDA)},
          {"cudnn", bool(RF_BUILD_CUDNN)},
          {"mpi", bool(RF_BUILD_MPI)},
          {"onednn", onednn_version()}};
}

std::string version_text() {
  const nlohmann::json b = build_facts_json();
  auto yn = [](bool v) { return v ? "yes" : "no"; };
  return fmt::format(
      "reframe {}\n"
      "git revision   {} (of the source tree {}, read now)\n"
      "compiler       {}\n"
      "build          {}{}\n"
      "SIMD level     {} (compiler macros of this build)\n"
      "CUDA           {}\n"
      "cuDNN          {}\n"
      "MPI            {}\n"
      "oneDNN         {}\n"
      "GPU models     {}",
      RF_VERSION, git_revision(), RF_SOURCE_DIR, b["compiler"].get<std::string>(), RF_BUILD_TYPE,
      RF_NATIVE_BUILD ? ", -march=native" : ", portable target", simd_name(), yn(RF_BUILD_CUDA), yn(RF_BUILD_CUDNN),
      RF_BUILD_MPI ? "yes (data-parallel training under mpirun)" : "no (Open MPI not found at build time: one process only)", b["onednn"].get<std::string>(),
      kGpuModels ? "yes (--device cuda)" : "no (CUDA kernels only; --device cuda is refused, models run on the CPU)");
}

nlohmann::json provenance_json(const std::string& command_line) {
  const nlohmann::json b = build_facts_json();
  nlohmann::json p = {{"git_revision", git_revision()},
          {"version", b["version"]},
          {"compiler", b["compiler"]},
#ifdef NDEBUG
          {"build", "release"},
#else
          {"build", "debug"},
#endif
          {"build_facts", b},
          {"cpu", cpu_name()},
          {"threads", num_threads()},
          {"device", device_name(run_device())},  // --device (host/core/device.h); suites train there
          {"cuda_device", cuda_summary()},
          {"cudnn_runtime_version", cudnn_runtime_version()},  // cudnnGetVersion(), e.g. 91900; 0 without cuDNN
          {"command", command_line},
          // Processes started (mpirun -np N; 1 without). Without rank groups each trained on 1/N of every batch;
          // with them, on 1/(N/G) (the runs' "world_size" in their training records).
          {"world_size", comm::world_size()},
          {"written_utc", utc_now_iso()}};
  // --rank-groups G: the world split into G data-parallel runs side by side (absent without: as before).
  if (comm::groups() > 1) p["rank_groups"] = comm::groups();
  return p;
}

void write_text_atomic(const std::string& path, const std::string& text) {
  // The one atomic writer (per-process temp name, fsync, rename, directory fsync; stale temps of dead
  // processes removed): the same as packages.
  std::filesystem::path p(path);
  if (!p.parent_path().empty()) std::filesystem::create_directories(p.parent_path());
  write_file_atomic(path, std::vector<uint8_t>(text.begin(), text.end()));
}

}  // namespace rf
