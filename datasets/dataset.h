// Classification datasets held in memory: every image decoded once into uint8 (N, C, H, W), int32 labels,
// class names, and a content hash for provenance. Loaders (CIFAR-10 binary, image folders, synthetic) all
// produce this one type; splits and subsets copy out of it.
// Checked by tests/datasets/test_dataset.cpp (hash, subset, held-out split: disjoint, stratified, stable).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace rf::data {

struct Dataset {
  std::string name;                  // e.g. "cifar10-binary/train", "synthetic(seed=1,n=5000)"
  int64_t N = 0, C = 3, H = 0, W = 0;
  std::vector<uint8_t> pixels;       // N * C * H * W, image i at i * C*H*W, planes R, G, B (CHW)
  std::vector<int32_t> labels;       // N, each in [0, num_classes())
  std::vector<std::string> classes;  // class names; label k is classes[k]

  int64_t size() const { return N; }
  int num_classes() const { return int(classes.size()); }
  int64_t image_size() const { return C * H * W; }  // bytes per image
  const uint8_t* image(int64_t i) const { return pixels.data() + i * image_size(); }
  uint8_t* image(int64_t i) { return pixels.data() + i * image_size(); }

  // Throws rf::Error naming the dataset and the field when sizes or labels are inconsistent.
  void validate() const;

  // Content hash for results' provenance: 64-bit FNV-1a (offset 0xcbf29ce484222325, prime 0x100000001b3)
  // over, in this order: N, C, H, W as int64 little-endian, the labels as int32 little-endian, then the
  // pixel bytes. Name and class names are not hashed (same content under another name = same hash).
  // Serial, about 0.2 s for all of CIFAR-10 (184 MB); call it once and keep the value.
  uint64_t content_hash() const;
  std::string hash_hex() const;  // "fnv1a64:0123456789abcdef"

  std::vector<int64_t> class_counts() const;  // per class
};

// The images at `indices` (any order, repeats allowed), in that order; classes are kept.
Dataset subset(const Dataset& d, const std::vector<int64_t>& indices, const std::string& name = "");

// Held-out validation split, stratified and deterministic.
// Rule: class c (n_c images) gives q_c = floor(val_count * n_c / N) images to validation; the
// val_count - sum q_c left over go one each to the classes with the largest fractional part
// (ties: lower class first). Which q_c images of a class go to validation is the first q_c of a Philox
// permutation of that class's indices (seed, stream tag 3; see loader.h's epoch_permutation for the rule);
// seed 0 is a valid seed. Both outputs keep the original order of the images. Same (dataset, val_count,
// seed) -> same split. CIFAR-10 train with val_count = 5000 gives exactly 500 per class.
struct TrainValSplit {
  std::vector<int64_t> train, val;  // indices into the source dataset, ascending, disjoint, union = all
};
TrainValSplit holdout_indices(const Dataset& d, int64_t val_count, uint64_t seed);
struct TrainVal {
  Dataset train, val;
};
TrainVal holdout_split(const Dataset& d, int64_t val_count, uint64_t seed);

// Formats 30730001 as "30,730,001" (used in error messages).
std::string with_commas(uint64_t v);

}  // namespace rf::data
