// Image-folder loader: root/<split>/<class>/*.jpg|png decoded (datasets/image_codec.h) into a Dataset.
// Decoding: files are read whole into memory, then decoded with OpenMP over files (about 25 us per
// 32x32 JPEG, so CIFAR-10's 60,000 take ~1.5 s of CPU), written straight into the dataset as CHW.
// Checked by tests/datasets/test_image_folder.cpp.
#include "datasets/image_folder.h"

#include <omp.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <new>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>


#include "datasets/first_error.h"
#include "host/core/check.h"
#include "datasets/dataset.h"

namespace fs = std::filesystem;

namespace rf::data {

namespace {

std::string lower(std::string s) {
  for (auto& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool is_image_name(const fs::path& p) {
  const std::string e = lower(p.extension().string());
  return e == ".jpg" || e == ".jpeg" || e == ".png";
}

// Extensions of image formats we do not decode: such a file in a class folder is meant as data, so skipping
// it would silently change the dataset. An error instead.
bool is_unsupported_image_name(const fs::path& p) {
  static const char* kExt[] = {".bmp", ".webp", ".gif",  ".tif", ".tiff", ".heic", ".heif", ".avif", ".jp2",
                               ".j2k", ".jxl",  ".ppm",  ".pgm", ".pbm",  ".pnm",  ".pam",  ".ico",  ".jfif",
                               ".jpe", ".apng", ".dib",  ".exr", ".hdr",  ".tga",  ".psd",  ".dng",  ".raw",
                               ".cr2", ".nef",  ".arw",  ".svg"};
  const std::string e = lower(p.extension().string());
  for (const char* k : kExt)
    if (e == k) return true;
  return false;
}

constexpr const char* kAccepted = ".jpg, .jpeg or .png (any case)";

}  // namespace

bool looks_like_image_folder(const std::string& root) {
  std::error_code ec;
  const fs::path t = fs::path(root) / "train";
  if (!fs::is_directory(t, ec)) return false;
  for (const auto& e : fs::directory_iterator(t, ec))
    if (e.is_directory()) return true;
  return false;
}

Dataset load_image_folder(const std::string& root, const std::string& split, const ImageFolderOptions& opt,
                          ImageFolderReport* report) {
  const fs::path dir = fs::path(root) / split;
  RF_CHECK(fs::is_directory(root), "image folder: root {} is not a directory (expected root/<split>/<class>/*.jpg)",
           root);
  RF_CHECK(fs::is_directory(dir), "image folder: missing split folder {} (expected {}/<class>/*.jpg|png)",
           dir.string(), dir.string());
  RF_CHECK((opt.resize_h > 0) == (opt.resize_w > 0), "image folder: resize {}x{}: give both sides or neither",
           opt.resize_h, opt.resize_w);

  ImageFolderReport rep;
  auto skip = [&](const fs::path& p, bool folder) {
    ++rep.skipped_files;
    if (rep.skipped_examples.size() < 5) rep.skipped_examples.push_back(p.string() + (folder ? "/" : ""));
  };
  // A file that is not one of ours: an error for image-like extensions (and in strict mode), else skipped
  // and counted for the warning below.
  auto other_file = [&](const fs::path& p, const std::string& where) {
    const std::string n = p.filename().string();
    const bool hidden = !n.empty() && n[0] == '.';
    if (!hidden && is_unsupported_image_name(p))
      RF_FAIL("image folder: {} has an image extension this loader cannot decode ({}); accepted: {}. Convert it "
              "or move it out of the dataset",
              p.string(), p.extension().string(), kAccepted);
    RF_CHECK(opt.skip_non_images, "image folder: {} is not an image (expected {}{})", p.string(), kAccepted, where);
    skip(p, false);
  };

  std::vector<std::string> classes;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string n = e.path().filename().string();
    if (e.is_directory() && !n.empty() && n[0] != '.')
      classes.push_back(n);
    else if (e.is_directory())
      skip(e.path(), true);
    else if (!n.empty() && n[0] != '.' && is_image_name(e.path()))
      RF_FAIL("image folder: {} lies directly in the split folder {}; images belong in a class folder "
              "({}/<class>/{})", e.path().string(), dir.string(), dir.string(), n);
    else
      other_file(e.path(), ", in a class folder");
  }
  std::sort(classes.begin(), classes.end());
  RF_CHECK(!classes.empty(), "image folder: {} has no class folders (expected {}/<class>/*.jpg|png)", dir.string(),
           dir.string());
  RF_CHECK(classes.size() >= 2,
           "image folder: {} has one class folder ({}); classification needs at least 2 classes (a single class "
           "trains to 100 % and measures nothing)",
           dir.string(), classes[0]);

  std::vector<std::string> files;
  std::vector<int32_t> labels;
  for (size_t k = 0; k < classes.size(); ++k) {
    const fs::path cdir = dir / classes[k];
    std::vector<std::string> mine;
    for (const auto& e : fs::directory_iterator(cdir)) {
      if (e.is_directory()) {  // nested folders are not part of the layout: counted in the warning
        skip(e.path(), true);
        continue;
      }
      const std::string n = e.path().filename().string();
      if (!n.empty() && n[0] != '.' && is_image_name(e.path()))
        mine.push_back(e.path().string());
      else
        other_file(e.path(), "");
    }
    RF_CHECK(!mine.empty(), "image folder: class folder {} holds no .jpg/.jpeg/.png images", cdir.string());
    std::sort(mine.begin(), mine.end());
    for (auto& m : mine) {
      files.push_back(std::move(m));
      labels.push_back(int32_t(k));
    }
  }
  if (rep.skipped_files > 0) {
    std::string ex;
    for (const auto& e : rep.skipped_examples) ex += (ex.empty() ? "" : ", ") + e;
    rep.warning = fmt::format("image folder {}: skipped {} file(s)/folder(s) that are not {} images in class "
                              "folders (e.g. {}){}",
                              dir.string(), rep.skipped_files, kAccepted, ex,
                              rep.skipped_files > int64_t(rep.skipped_examples.size()) ? ", ..." : "");
    std::fprintf(stderr, "warning: %s\n", rep.warning.c_str());
  }

  const int64_t N = int64_t(files.size());
  int H = opt.resize_h, W = opt.resize_w;
  if (H == 0) {  // the first image sets the size everyone must match
    const Image first = decode_image_file(files[0]);
    H = first.H;
    W = first.W;
  }
  Dataset d;
  d.name = "image-folder:" + fs::path(root).filename().string() + "/" + split;
  d.N = N;
  d.C = 3;
  d.H = H;
  d.W = W;
  d.classes = classes;
  d.labels = labels;
  try {
    d.pixels.resize(size_t(N) * 3 * size_t(H) * size_t(W));
  } catch (const std::bad_alloc&) {
    RF_FAIL("image folder {}: out of memory allocating {} images of {}x{} (HxW, 3 channels) = {} bytes", dir.string(),
            N, H, W, with_commas(uint64_t(N) * 3 * uint64_t(H) * uint64_t(W)));
  }

  // OpenMP over files; an exception may not leave the parallel region, so each thread keeps the error of
  // the lowest-numbered file it saw and the lowest one overall is rethrown (deterministic message).
  FirstError first_error(N);
  const int threads = opt.threads > 0 ? opt.threads : omp_get_max_threads();
  const size_t plane = size_t(H) * size_t(W);
#pragma omp parallel for schedule(dynamic, 64) num_threads(threads)
  for (int64_t i = 0; i < N; ++i) {
    try {
      Image img = decode_image_file(files[size_t(i)]);
      if (img.H != H || img.W != W) {
        if (opt.resize_h > 0)
          img = resize_bilinear(img, H, W);
        else
          RF_FAIL("image folder: {} is {}x{} (HxW) but {} is {}x{}; all images must share one size (or ask "
                  "for a resize)",
                  files[size_t(i)], img.H, img.W, files[0], H, W);
      }
      uint8_t* out = d.pixels.data() + size_t(i) * 3 * plane;
      for (size_t p = 0; p < plane; ++p)
        for (size_t c = 0; c < 3; ++c) out[c * plane + p] = img.hwc[p * 3 + c];
    } catch (const std::bad_alloc&) {
      first_error.record(i, [&] {
        return fmt::format("image folder: out of memory loading {} (dataset {}x{}, {} images)", files[size_t(i)], H,
                           W, N);
      });
    } catch (const std::exception& e) {
      first_error.record(i, [&] { return std::string(e.what()); });
    }
  }
  first_error.rethrow();
  if (report) *report = rep;
  return d;
}

}  // namespace rf::data