// CIFAR-10 in its official binary format (cifar-10-batches-bin): data_batch_1..5.bin (train) and
// test_batch.bin (test), each a sequence of 3073-byte records: 1 label byte (0..9), then 1024 R, 1024 G,
// 1024 B bytes of a 32x32 image, row-major. batches.meta.txt (one class name per line) gives the names
// when present; otherwise the usual CIFAR-10 names.
// Checked by tests/datasets/test_cifar_binary.cpp (known records, wrong size, bad label, missing file).
#pragma once
#include <string>

#include "datasets/dataset.h"

namespace rf::data {

// The standard class names, in label order (airplane .. truck).
const std::vector<std::string>& cifar10_class_names();

// dir holds the .bin files (or a cifar-10-batches-bin/ folder that does). split: "train" or "test".
// Errors name the file and what was expected, e.g.
//   "/d/data_batch_3.bin: 30,730,001 bytes is not a whole number of 3073-byte records".
Dataset load_cifar_binary(const std::string& dir, const std::string& split);

// One .bin file on its own (records as above), appended to `out` (which must be 3x32x32 or empty).
void read_cifar_batch_file(const std::string& path, Dataset& out);

// True when dir (or dir/cifar-10-batches-bin) contains data_batch_1.bin or test_batch.bin.
bool looks_like_cifar_binary(const std::string& dir);

}  // namespace rf::data
