// Archive cache and layout detection; see source.h for the unpacking protocol (temp folder, marker, rename).
// Checked by tests/datasets/test_source.cpp and tests/datasets/test_cifar10_archive.cpp.
#include "datasets/source.h"

#include <unistd.h>

#include <cstdlib>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "datasets/cifar_binary.h"
#include "host/core/check.h"

namespace fs = std::filesystem;

namespace rf::data {

namespace {
const char* kMarker = ".rf-unpacked";

bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += (c == '\'') ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::string marker_text(const fs::path& archive) {
  const auto size = fs::file_size(archive);
  const auto mtime = fs::last_write_time(archive).time_since_epoch().count();
  return fmt::format("archive={}\nsize={}\nmtime={}\n", fs::absolute(archive).string(), size, mtime);
}

// Size and mtime lines must match (the path may differ: the same archive seen from elsewhere).
bool marker_matches(const fs::path& dir, const std::string& expected) {
  std::ifstream f(dir / kMarker);
  if (!f) return false;
  std::stringstream ss;
  ss << f.rdbuf();
  auto tail = [](const std::string& s) { return s.substr(std::min(s.find("\nsize="), s.size())); };
  return tail(ss.str()) == tail(expected);
}
}  // namespace

std::string default_cache_dir() {
  if (const char* e = std::getenv("RF_DATA_CACHE"); e && *e) return e;
  return (fs::current_path() / ".cache" / "datasets").string();
}

std::string prepare_archive(const std::string& archive, const std::string& cache_dir_in) {
  const fs::path a(archive);
  RF_CHECK(fs::is_regular_file(a), "dataset archive {}: no such file (expected a .tar.zst)", archive);
  const std::string fname = a.filename().string();
  RF_CHECK(ends_with(fname, ".tar.zst"), "dataset archive {}: expected a name ending in .tar.zst", archive);
  const std::string name = fname.substr(0, fname.size() - 8);
  const fs::path cache_dir = cache_dir_in.empty() ? fs::path(default_cache_dir()) : fs::path(cache_dir_in);
  const fs::path dest = cache_dir / name;
  const std::string marker = marker_text(a);
  if (fs::is_directory(dest) && marker_matches(dest, marker)) return dest.string();

  std::error_code ec;
  fs::create_directories(cache_dir, ec);
  RF_CHECK(!ec, "dataset cache {}: cannot create the folder: {}", cache_dir.string(), ec.message());
  const fs::path tmp = cache_dir / fmt::format(".{}.tmp-{}", name, ::getpid());
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  RF_CHECK(!ec, "dataset cache {}: cannot create the folder: {}", tmp.string(), ec.message());

  // /bin/sh has no pipefail: a zstd failure leaves a flag file that we check after tar.
  const fs::path flag = tmp / ".zstd-failed";
  const std::string cmd = fmt::format("{{ zstd -q -dc -- {} || : > {}; }} | tar -x -C {}", shell_quote(a.string()),
                                      shell_quote(flag.string()), shell_quote(tmp.string()));
  const int rc = std::system(cmd.c_str());
  if (rc != 0 || fs::exists(flag)) {
    fs::remove_all(tmp, ec);
    RF_FAIL("dataset archive {}: unpacking failed ({}; command `{}` exit status {}); is it a .tar.zst, and are "
            "zstd and tar installed (scripts/setup.sh)?",
            archive, fs::exists(flag) ? "zstd failed" : "tar failed", cmd, rc);
  }
  {
    std::ofstream m(tmp / kMarker);
    m << marker;
    RF_CHECK(m.good(), "dataset cache {}: cannot write the marker file", tmp.string());
  }
  if (fs::is_directory(dest) && marker_matches(dest, marker)) {  // another process finished first: use its copy
    fs::remove_all(tmp, ec);
    return dest.string();
  }
  if (fs::exists(dest)) fs::remove_all(dest, ec);  // stale or half-written: replaced
  fs::rename(tmp, dest, ec);
  if (ec) {  // another process may have finished first; accept its result if it is complete
    fs::remove_all(tmp);
    RF_CHECK(fs::is_directory(dest) && marker_matches(dest, marker),
             "dataset cache {}: cannot move the unpacked archive into place: {}", dest.string(), ec.message());
  }
  return dest.string();
}

const char* layout_name(Layout l) {
  switch (l) {
    case Layout::cifar_binary: return "cifar-binary";
    case Layout::image_folder: return "image-folder";
    case Layout::archive: return "archive";
    default: return "unknown";
  }
}

Layout detect_layout(const std::string& path, std::string* resolved) {
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) {
    if (resolved) *resolved = path;
    return ends_with(path, ".tar.zst") ? Layout::archive : Layout::unknown;
  }
  fs::path p(path);
  for (int depth = 0; depth < 3 && fs::is_directory(p, ec); ++depth) {
    if (looks_like_cifar_binary(p.string())) {
      if (resolved) *resolved = p.string();
      return Layout::cifar_binary;
    }
    if (looks_like_image_folder(p.string())) {
      if (resolved) *resolved = p.string();
      return Layout::image_folder;
    }
    fs::path only;
    int dirs = 0;
    for (const auto& e : fs::directory_iterator(p, ec)) {
      const std::string n = e.path().filename().string();
      if (e.is_directory() && !n.empty() && n[0] != '.') {
        ++dirs;
        only = e.path();
      }
    }
    if (dirs != 1) break;
    p = only;
  }
  if (resolved) *resolved = path;
  return Layout::unknown;
}

std::string resolve_dataset_root(const std::string& path, const std::function<bool(const std::string&)>& fits,
                                 const std::string& what, const std::string& expected) {
  std::string root = path;
  if (root.size() > 8 && ends_with(root, ".tar.zst")) root = prepare_archive(root, default_cache_dir());
  if (fits(root)) return root;
  RF_CHECK(fs::is_directory(root), "{}: no such folder or .tar.zst archive", path);
  std::vector<std::string> subs;
  for (auto& e : fs::directory_iterator(root))
    if (e.is_directory()) subs.push_back(e.path().string());
  for (const std::string& s : subs)
    if (fits(s)) return s;
  RF_FAIL("{}: not a {} dataset (expected {} here or in a sub-folder)", path, what, expected);
}

ClassificationData load_classification(const std::string& path, const LoadOptions& opt) {
  RF_CHECK(fs::exists(path), "dataset {}: no such file or folder", path);
  std::string where;
  Layout l = detect_layout(path, &where);
  if (l == Layout::archive) {
    const std::string dir = prepare_archive(where, opt.cache_dir);
    l = detect_layout(dir, &where);
  }
  ClassificationData out;
  out.layout = l;
  out.root = where;
  switch (l) {
    case Layout::cifar_binary:
      out.train = load_cifar_binary(where, "train");
      out.test = load_cifar_binary(where, "test");
      break;
    case Layout::image_folder: {
      std::string ts = opt.test_split;
      if (ts.empty()) ts = fs::is_directory(fs::path(where) / "test") ? "test" : "val";
      out.train = load_image_folder(where, "train", opt.image_folder);
      out.test = load_image_folder(where, ts, opt.image_folder);
      if (out.train.classes != out.test.classes) {
        // Name the difference: labels are indices into the sorted folder names, so any difference would
        // silently shift every label after it.
        std::string only_train, only_test;
        for (const auto& c : out.train.classes)
          if (std::find(out.test.classes.begin(), out.test.classes.end(), c) == out.test.classes.end())
            only_train += (only_train.empty() ? "" : ", ") + c;
        for (const auto& c : out.test.classes)
          if (std::find(out.train.classes.begin(), out.train.classes.end(), c) == out.train.classes.end())
            only_test += (only_test.empty() ? "" : ", ") + c;
        RF_FAIL("dataset {}: the train and {} splits have different class folders ({} vs {} classes): only in "
                "train: [{}]; only in {}: [{}]; both splits need the same class folders",
                where, ts, out.train.classes.size(), out.test.classes.size(), only_train, ts, only_test);
      }
      RF_CHECK(out.train.H == out.test.H && out.train.W == out.test.W,
               "dataset {}: train images are {}x{} but {} images are {}x{}", where, out.train.H, out.train.W, ts,
               out.test.H, out.test.W);
      break;
    }
    default:
      RF_FAIL("dataset {}: layout not recognised; expected a CIFAR-10 binary folder (data_batch_1..5.bin, "
              "test_batch.bin), an image-folder root (train/<class>/*.jpg|png and test/ or val/), or a .tar.zst "
              "archive of either",
              path);
  }
  return out;
}

}  // namespace rf::data
