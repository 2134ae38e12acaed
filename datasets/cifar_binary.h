// CIFAR-10 in its official binary format (cifar-10-batches-bin): data_batch_1..5.bin (train) and
// test_batch.bin (test), each a sequence of 3073-byte records: 1 label byte (0..9), then 1024 R, 1024 G,
// 1024 B bytes of a 32x32 image, row-major. batches.meta.txt (one class name per line) gives the names
// when present; otherwise the usual CIFAR-10 names.
// Missing batches (the train split needs all of data_batch_1..5.bin) are an error naming the file.
// Checked by tests/datasets/test_cifar_binary.cpp (known records, wrong size, bad label, missing file).
#pragma once
#include <cstdint>
#include <string>

#include "datasets/dataset.h"

namespace rf::data {

// The standard class names, in label order (airplane .. truck).
const std::vector<std::string>& cifar10_class_names();

// dir holds the .bin files (or a cifar-10-batches-bin/ folder that does). split: "train" or "test".
// Errors name the file and what was expected, e.g.
//   "/d/data_batch_3.bin: 30,730,001 bytes is not a whole number of 3073-byte records".
Dataset load_cifar_binary(const std::string& dir, const std::string& split);

// One .bin file on its own (records as above), appended to `out` (which must be 3x32x32 or empty). Errors:
// a size that is not a whole number of records (or 0), a label above 9 (record and byte offset named), more
// than kMaxCifarRecordsPerFile records, running out of memory (file and size named). On an error `out` is
// left as it was.
constexpr int64_t kMaxCifarRecordsPerFile = 1000000;  // 3.07 GB; the official batches hold 10,000
void read_cifar_batch_file(const std::string& path, Dataset& out);
// The same from bytes in memory (`what` names them in errors); fuzz/fuzz_cifar_binary.cpp uses it.
void read_cifar_batch_memory(const uint8_t* data, size_t size, const std::string& what, Dataset& out);

// True when dir (or dir/cifar-10-batches-bin) contains data_batch_1.bin or test_batch.bin.
bool looks_like_cifar_binary(const std::string& dir);

}  // namespace rf::data
