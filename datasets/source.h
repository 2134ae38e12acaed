// Where datasets come from: a path the user gives (a CIFAR-10 binary folder, an image-folder root, a Pascal
// VOC or CamVid root, or a .tar.zst archive of any), unpacked once into an ignored cache folder, then loaded.
// Checked by tests/datasets/test_source.cpp (archive round trip, marker, layout detection) and
// tests/datasets/test_cifar10_archive.cpp (label `data`: the shared CIFAR-10 archive, timed).
#pragma once
#include <functional>
#include <string>

#include "datasets/dataset.h"
#include "datasets/image_folder.h"

namespace rf::data {

// The cache folder: $RF_DATA_CACHE if set, else "<cwd>/.cache/datasets" (ignored by git).
std::string default_cache_dir();

// Unpacks archive (a .tar.zst) into cache_dir/<name>, name = the archive's file name without .tar.zst, and
// returns that folder. Runs `zstd -dc ARCHIVE | tar -x -C TMP` through std::system (/bin/sh) into
// cache_dir/.<name>.tmp-<pid>, writes a marker file .rf-unpacked (archive path, size, mtime) inside, then
// renames the temp folder to cache_dir/<name>: a killed unpack never leaves a folder that looks complete.
// A folder whose marker matches the archive is reused as is (second call: no work); one whose marker is
// missing or stale is removed and unpacked again. Needs the zstd and tar programs (scripts/setup.sh).
std::string prepare_archive(const std::string& archive, const std::string& cache_dir);

enum class Layout { cifar_binary, image_folder, archive, unknown };
const char* layout_name(Layout l);

// What a path holds. Folders: a CIFAR-10 binary folder (data_batch_1.bin or test_batch.bin, directly or in
// cifar-10-batches-bin/), an image-folder root (a train/ folder with class sub-folders); a folder that holds
// exactly one sub-folder (e.g. an unpacked archive's cifar10/) is looked into, two levels at most.
// Files ending in .tar.zst are archives. `resolved` gets the folder the layout was found in.
Layout detect_layout(const std::string& path, std::string* resolved = nullptr);

struct ClassificationData {
  Dataset train, test;
  Layout layout = Layout::unknown;
  std::string root;  // the folder loaded (after unpacking)
};

struct LoadOptions {
  std::string cache_dir;          // for archives; empty = default_cache_dir()
  ImageFolderOptions image_folder;
  std::string test_split = "";    // image folders: "" = "test" if present, else "val"
};

// The folder a dataset path stands for, for the dense-prediction loaders (datasets/voc.h, datasets/camvid.h),
// which recognise their root with `fits`: a .tar.zst archive is unpacked into default_cache_dir() first; then
// the folder itself if it fits, else its first sub-folder that fits (an unpacked archive's BCCD/ or CamVid/).
// Errors name the path, `what` ("Pascal VOC") and `expected` (the files looked for).
std::string resolve_dataset_root(const std::string& path, const std::function<bool(const std::string&)>& fits,
                                 const std::string& what, const std::string& expected);

// Detects the layout and loads train and test. Errors name the path and the layouts that were expected.
ClassificationData load_classification(const std::string& path, const LoadOptions& opt = {});

}  // namespace rf::data
