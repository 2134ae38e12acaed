// Output path checks and atomic JSON results (see outputs.h).
#include "training/outputs.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <vector>

#include "host/core/check.h"
#include "host/core/printable.h"
#include "host/package/package.h"

namespace fs = std::filesystem;

namespace rf {

namespace {

// Creates and removes a probe file in `dir`: the only test of writability that also holds for root, read-only
// mounts and full disks' inode tables.
void probe_writable(const fs::path& dir, const std::string& option, const std::string& path) {
  const fs::path probe = dir / (".rf-probe." + std::to_string(::getpid()));
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0)
    RF_FAIL("{} {}: cannot write in folder '{}': {}", option, printable(path), printable(dir.string()),
            std::strerror(errno));
  ::close(fd);
  ::unlink(probe.c_str());
}

void create_folder(const fs::path& dir, const std::string& option, const std::string& path) {
  // Walk up to the nearest existing ancestor: it must be a folder (a file there makes the path impossible).
  fs::path a = dir;
  std::error_code ec;
  while (!a.empty() && !fs::exists(a, ec)) a = a.parent_path();
  if (!a.empty() && !fs::is_directory(a, ec))
    RF_FAIL("{} {}: '{}' is a file, expected a folder on the way", option, printable(path), printable(a.string()));
  fs::create_directories(dir, ec);
  if (ec) RF_FAIL("{} {}: cannot create folder '{}': {}", option, printable(path), printable(dir.string()), ec.message());
}

}  // namespace

void check_output_file(const std::string& path, const std::string& option) {
  RF_CHECK(!path.empty(), "{}: empty path (expected a file name)", option);
  std::error_code ec;
  const fs::path p(path);
  const fs::file_status st = fs::status(p, ec);
  if (fs::exists(st)) {
    if (fs::is_directory(st))
      RF_FAIL("{} {}: is a folder, expected a file path (e.g. {}/out.rfpk)", option, printable(path), printable(path));
    if (!fs::is_regular_file(st))
      RF_FAIL("{} {}: exists and is not a regular file (a device or pipe would be replaced), expected a file path",
              option, printable(path));
  }
  if (!p.has_filename() || p.filename() == "." || p.filename() == "..")
    RF_FAIL("{} {}: names a folder, expected a file path", option, printable(path));
  const fs::path dir = p.parent_path().empty() ? fs::path(".") : p.parent_path();
  create_folder(dir, option, path);
  probe_writable(dir, option, path);
}

void check_output_dir(const std::string& dir, const std::string& option) {
  RF_CHECK(!dir.empty(), "{}: empty path (expected a folder)", option);
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_directory(dir, ec))
    RF_FAIL("{} {}: is a file, expected a folder", option, printable(dir));
  create_folder(dir, option, dir);
  probe_writable(dir, option, dir);
}

int prepare_run_dir(const std::string& dir, bool overwrite, const std::string& option) {
  check_output_dir(dir, option);
  std::vector<fs::path> old;
  for (const char* f : {"classify.json", "detect.json", "segment.json"})
    if (fs::exists(fs::path(dir) / f)) old.push_back(fs::path(dir) / f);
  auto collect = [&](const char* sub, const char* ext) {
    std::error_code ec;
    const fs::path d = fs::path(dir) / sub;
    if (!fs::is_directory(d, ec)) return;
    for (const auto& e : fs::directory_iterator(d, ec))
      if (e.path().extension() == ext) old.push_back(e.path());
  };
  collect("packages", ".rfpk");
  collect("pictures", ".png");
  if (old.empty()) return 0;
  if (!overwrite) {
    std::string list;
    for (size_t i = 0; i < old.size() && i < 3; ++i) list += (i ? ", " : "") + printable(old[i].string());
    if (old.size() > 3) list += fmt::format(" and {} more", old.size() - 3);
    RF_FAIL("{} {}: already holds results of another run ({}); choose a new folder, or pass --overwrite to remove "
            "them first", option, printable(dir), list);
  }
  for (const fs::path& f : old) {
    std::error_code ec;
    fs::remove(f, ec);
    if (ec) RF_FAIL("{} {}: --overwrite cannot remove '{}': {}", option, printable(dir), printable(f.string()), ec.message());
  }
  std::fprintf(stderr, "%s %s: --overwrite: removed %zu files of the previous run\n", option.c_str(),
               printable(dir).c_str(), old.size());
  return int(old.size());
}

std::string json_text(const nlohmann::json& j, int indent) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

void write_json_atomic(const std::string& path, const nlohmann::json& j, int indent) {
  const std::string text = json_text(j, indent) + "\n";
  write_file_atomic(path, std::vector<uint8_t>(text.begin(), text.end()));
}

}  // namespace rf
