// Output paths checked before any work starts, and results written the one atomic way. Why: a run of an hour
// must not end in "cannot open -o ..." with nothing saved, a results file must never be seen half-written (a
// per-process temp name, fsync, rename, directory fsync: write_file_atomic in host/package/package.h), a
// folder of results must hold one run only, and a class or folder name that is not valid UTF-8 must not make
// the JSON writer throw away a finished run. Checked by tests/training/test_outputs.cpp and
// tests/app/cli_options.sh.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

namespace rf {

// A file the command will write: refused (rf::Error naming `option` and the path) when it is a directory or
// not a regular file, when a parent on the way is a file, or when its folder cannot be created or written
// (a probe file is created and removed there). Missing parent folders are created.
void check_output_file(const std::string& path, const std::string& option);

// A folder the command will write into: created if missing; refused when it is a file or not writable.
void check_output_dir(const std::string& dir, const std::string& option);

// A suite's run folder (--out): check_output_dir, then refused when it already holds results of another run
// (classify.json, detect.json, segment.json, packages/*.rfpk, pictures/*.png), unless `overwrite`, which
// removes exactly those files first (so old packages never sit next to new JSON). Returns how many it removed.
int prepare_run_dir(const std::string& dir, bool overwrite, const std::string& option);

// JSON text with every string that is not valid UTF-8 repaired (invalid bytes become U+FFFD) instead of
// throwing: the run's numbers are kept, the odd name is visibly marked.
std::string json_text(const nlohmann::json& j, int indent = 2);

// json_text + "\n" written with write_file_atomic.
void write_json_atomic(const std::string& path, const nlohmann::json& j, int indent = 2);

}  // namespace rf
