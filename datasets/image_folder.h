// Image folders: root/<split>/<class>/*.jpg|*.jpeg|*.png, classes sorted by name (byte order), files
// sorted by name inside a class, decoded (datasets/image_codec.h, OpenMP over files) into a Dataset.
// All images must share one size unless a resize is asked for (bilinear, align_corners = false).
// Folder contents: a file with an image-like extension we cannot read (.bmp .webp .gif .tif ...) is an
// error naming it and the accepted extensions; other files (.txt, hidden files, sub-folders) are skipped with
// one printed warning giving the count and examples. A split needs at least 2 class folders.
// Checked by tests/datasets/test_image_folder.cpp (missing/empty folders, size mismatch, skipped files, one class).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "datasets/dataset.h"
#include "datasets/image_codec.h"

namespace rf::data {

struct ImageFolderOptions {
  int resize_h = 0, resize_w = 0;  // 0: all images must share one size (else an error naming both)
  bool skip_non_images = true;     // false: any file without a .jpg/.jpeg/.png extension is an error
                                   // (an image-like extension such as .bmp/.webp is an error either way)
  int threads = 0;                 // OpenMP threads for decoding; 0 = the default team
};

struct ImageFolderReport {
  int64_t skipped_files = 0;              // non-image files and sub-folders skipped (hidden files included)
  std::vector<std::string> skipped_examples;  // the first few of them
  std::string warning;                    // the warning printed to stderr about them ("" when none)
};

// Errors: missing root or split folder, a split with fewer than 2 class folders, an empty class folder, a
// file with an unsupported image extension, a bad image (file named), a size mismatch (both files and sizes
// named).
Dataset load_image_folder(const std::string& root, const std::string& split, const ImageFolderOptions& opt = {},
                          ImageFolderReport* report = nullptr);

// True when root/train holds at least one sub-folder.
bool looks_like_image_folder(const std::string& root);

}  // namespace rf::data
