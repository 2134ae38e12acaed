// CIFAR-10 binary reader: whole-file reads (30 MB each), size and label checks with clear errors.
// Checked by tests/datasets/test_cifar_binary.cpp.
#include "datasets/cifar_binary.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <new>
#include <set>

#include "host/core/check.h"

namespace fs = std::filesystem;

namespace rf::data {

namespace {
constexpr int64_t kImageBytes = 3 * 32 * 32, kRecordBytes = 1 + kImageBytes;

std::string batch_dir(const std::string& dir) {
  const fs::path sub = fs::path(dir) / "cifar-10-batches-bin";
  if (!fs::exists(fs::path(dir) / "data_batch_1.bin") && !fs::exists(fs::path(dir) / "test_batch.bin") &&
      fs::is_directory(sub))
    return sub.string();
  return dir;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\r' || s.back() == '\n' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
  size_t b = 0;
  while (b < s.size() && (s[b] == ' ' || s[b] == '\t')) ++b;
  return s.substr(b);
}
}  // namespace

const std::vector<std::string>& cifar10_class_names() {
  static const std::vector<std::string> names = {"airplane", "automobile", "bird",  "cat",  "deer",
                                                 "dog",      "frog",       "horse", "ship", "truck"};
  return names;
}

bool looks_like_cifar_binary(const std::string& dir) {
  const std::string d = batch_dir(dir);
  return fs::exists(fs::path(d) / "data_batch_1.bin") || fs::exists(fs::path(d) / "test_batch.bin");
}

namespace {
// Checks the size of a batch of `bytes` bytes; returns the record count.
int64_t checked_records(uint64_t bytes, const std::string& what) {
  if (bytes % kRecordBytes != 0)
    RF_FAIL("{}: {} bytes is not a whole number of {}-byte records (1 label byte + 3072 pixel bytes); {} whole "
            "records and {} bytes left over",
            what, with_commas(bytes), kRecordBytes, with_commas(bytes / kRecordBytes), bytes % kRecordBytes);
  RF_CHECK(bytes > 0, "{}: empty file, expected at least one 3073-byte record", what);
  RF_CHECK(bytes / kRecordBytes <= uint64_t(kMaxCifarRecordsPerFile),
           "{}: {} bytes = {} records, above the limit of {} records per file (the official batches hold 10,000)",
           what, with_commas(bytes), with_commas(bytes / kRecordBytes), with_commas(uint64_t(kMaxCifarRecordsPerFile)));
  return int64_t(bytes / kRecordBytes);
}

void prepare_append(Dataset& out, int64_t n, const std::string& what) {
  if (out.N == 0) {
    out.C = 3;
    out.H = 32;
    out.W = 32;
  }
  RF_CHECK(out.C == 3 && out.H == 32 && out.W == 32, "{}: appending 3x32x32 records to a {}x{}x{} dataset", what,
           out.C, out.H, out.W);
  try {
    out.pixels.resize(size_t((out.N + n) * kImageBytes));
    out.labels.resize(size_t(out.N + n));
  } catch (const std::bad_alloc&) {
    RF_FAIL("{}: out of memory appending {} records ({} bytes) to {} already loaded", what, with_commas(uint64_t(n)),
            with_commas(uint64_t(n * kImageBytes)), with_commas(uint64_t(out.N)));
  }
}

void append_records(const uint8_t* buf, int64_t n, const std::string& what, Dataset& out) {
  const int64_t base = out.N;
  for (int64_t r = 0; r < n; ++r) {
    const uint8_t* rec = buf + r * kRecordBytes;
    if (rec[0] > 9) {
      out.pixels.resize(size_t(base * kImageBytes));  // leave `out` as it was
      out.labels.resize(size_t(base));
      RF_FAIL("{}: record {} (byte offset {}): label {} is out of range, expected 0..9", what, r,
              with_commas(uint64_t(r * kRecordBytes)), int(rec[0]));
    }
    out.labels[size_t(base + r)] = rec[0];
    std::copy(rec + 1, rec + kRecordBytes, out.pixels.begin() + (base + r) * kImageBytes);
  }
  out.N = base + n;
}
}  // namespace

void read_cifar_batch_memory(const uint8_t* data, size_t size, const std::string& what, Dataset& out) {
  const int64_t n = checked_records(size, what);
  prepare_append(out, n, what);
  append_records(data, n, what, out);
}

void read_cifar_batch_file(const std::string& path, Dataset& out) {
  std::error_code ec;
  RF_CHECK(fs::is_regular_file(path, ec), "{}: missing file (expected a CIFAR-10 batch of 3073-byte records)",
           path);
  const uint64_t bytes = fs::file_size(path, ec);
  RF_CHECK(!ec, "{}: cannot read the file size: {}", path, ec.message());
  const int64_t n = checked_records(bytes, path);
  std::vector<uint8_t> buf;
  try {
    buf.resize(static_cast<size_t>(bytes));
  } catch (const std::bad_alloc&) {
    RF_FAIL("{}: out of memory reading the file ({} bytes)", path, with_commas(bytes));
  }
  std::ifstream f(path, std::ios::binary);
  RF_CHECK(f.good(), "{}: cannot open for reading", path);
  f.read(reinterpret_cast<char*>(buf.data()), std::streamsize(bytes));
  RF_CHECK(f.gcount() == std::streamsize(bytes), "{}: read {} of {} bytes", path, f.gcount(), bytes);
  prepare_append(out, n, path);
  append_records(buf.data(), n, path, out);
}

Dataset load_cifar_binary(const std::string& dir_in, const std::string& split) {
  RF_CHECK(split == "train" || split == "test", "CIFAR-10 binary: split '{}', expected 'train' or 'test'", split);
  RF_CHECK(fs::is_directory(dir_in), "CIFAR-10 binary: {} is not a directory (expected the folder holding "
           "data_batch_1..5.bin and test_batch.bin)", dir_in);
  const std::string dir = batch_dir(dir_in);
  std::vector<std::string> files;
  if (split == "train")
    for (int b = 1; b <= 5; ++b) files.push_back((fs::path(dir) / fmt::format("data_batch_{}.bin", b)).string());
  else
    files.push_back((fs::path(dir) / "test_batch.bin").string());
  for (const auto& f : files)
    RF_CHECK(fs::is_regular_file(f), "CIFAR-10 binary: missing file {} (the {} split needs {})", f, split,
             split == "train" ? "data_batch_1.bin .. data_batch_5.bin" : "test_batch.bin");

  Dataset d;
  d.name = "cifar10-binary/" + split;
  for (const auto& f : files) read_cifar_batch_file(f, d);

  d.classes = cifar10_class_names();
  const fs::path meta = fs::path(dir) / "batches.meta.txt";
  if (fs::is_regular_file(meta)) {
    std::ifstream m(meta);
    std::vector<std::string> names;
    for (std::string line; std::getline(m, line);) {
      line = trim(line);
      if (!line.empty()) names.push_back(line);
    }
    RF_CHECK(names.size() == 10, "{}: {} class names, expected 10 (one per line)", meta.string(), names.size());
    const std::set<std::string> distinct(names.begin(), names.end());
    RF_CHECK(distinct.size() == names.size(), "{}: a class name is listed twice; expected 10 distinct names",
             meta.string());
    d.classes = names;
  }
  d.validate();
  return d;
}

}  // namespace rf::data
