// Provenance helpers. The git revision is read at run time from the source tree the binary was built from
// (RF_SOURCE_DIR), so a results file names the code that produced it.
#include "host/train/provenance.h"

#include <sys/resource.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>

#include "host/core/check.h"
#include "host/core/parallel.h"
#include "host/package/package.h"

#ifndef RF_SOURCE_DIR
#define RF_SOURCE_DIR "."
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

nlohmann::json provenance_json(const std::string& command_line) {
  return {{"git_revision", git_revision()},
          {"compiler", std::string("g++ ") + __VERSION__},
#ifdef NDEBUG
          {"build", "release"},
#else
          {"build", "debug"},
#endif
          {"cpu", cpu_name()},
          {"threads", num_threads()},
          {"cuda_device", "none"},
          {"command", command_line},
          {"written_utc", utc_now_iso()}};
}

void write_text_atomic(const std::string& path, const std::string& text) {
  // The one atomic writer (per-process temp name, fsync, rename, directory fsync; stale temps of dead
  // processes removed): the same as packages.
  std::filesystem::path p(path);
  if (!p.parent_path().empty()) std::filesystem::create_directories(p.parent_path());
  write_file_atomic(path, std::vector<uint8_t>(text.begin(), text.end()));
}

}  // namespace rf
