// Provenance of a results file: git revision, compiler, build, CPU, threads, command line, times.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

namespace rf {

std::string utc_now_iso();
std::string git_revision();  // "abc123…" (+"-dirty"), or "unknown" outside a git checkout
std::string cpu_name();      // /proc/cpuinfo's model name
// The facts of this build (fixed when it was compiled, plus the oneDNN library it runs with): version, compiler,
// build type, SIMD level (host/core/build_info.h), whether CUDA, cuDNN and MPI are built in, oneDNN's version.
nlohmann::json build_facts_json();
// `reframe --version`: the same facts, one per line, plus the source tree's git revision.
std::string version_text();
// Everything above (build facts included) plus the command line; cuda_device is "none" until the CUDA backend
// is used.
nlohmann::json provenance_json(const std::string& command_line);
// Max resident set size of this process so far (getrusage), in bytes.
long long max_rss_bytes();
// Writes text atomically with write_file_atomic (host/package/package.h: per-process temp name, fsync,
// rename, directory fsync), creating missing parent folders.
void write_text_atomic(const std::string& path, const std::string& text);

}  // namespace rf
