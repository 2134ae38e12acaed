// Dataset helpers: validation, FNV-1a content hash, subsets, stratified held-out split.
// Checked by tests/datasets/test_dataset.cpp.
#include "datasets/dataset.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <type_traits>

#include "datasets/fnv.h"
#include "datasets/rng.h"
#include "host/core/check.h"

namespace rf::data {

std::string with_commas(uint64_t v) {
  std::string s = std::to_string(v), out;
  const int n = int(s.size());
  for (int i = 0; i < n; ++i) {
    if (i > 0 && (n - i) % 3 == 0) out += ',';
    out += s[size_t(i)];
  }
  return out;
}

void Dataset::validate() const {
  RF_CHECK(N >= 0 && C > 0 && H > 0 && W > 0, "dataset '{}': bad image shape N={} C={} H={} W={}", name, N, C,
           H, W);
  RF_CHECK(int64_t(pixels.size()) == N * C * H * W,
           "dataset '{}': pixels holds {} bytes, expected N*C*H*W = {}*{}*{}*{} = {}", name, pixels.size(), N, C, H,
           W, N * C * H * W);
  RF_CHECK(int64_t(labels.size()) == N, "dataset '{}': {} labels for {} images", name, labels.size(), N);
  RF_CHECK(!classes.empty(), "dataset '{}': no class names", name);
  for (int64_t i = 0; i < N; ++i)
    RF_CHECK(labels[size_t(i)] >= 0 && labels[size_t(i)] < num_classes(),
             "dataset '{}': label of image {} is {}, expected 0..{}", name, i, labels[size_t(i)], num_classes() - 1);
}

uint64_t Dataset::content_hash() const {
  uint64_t h = kFnvOffset;
  h = fnv_le<int64_t>(h, N);
  h = fnv_le<int64_t>(h, C);
  h = fnv_le<int64_t>(h, H);
  h = fnv_le<int64_t>(h, W);
  for (int32_t l : labels) h = fnv_le<int32_t>(h, l);
  return fnv_bytes(h, pixels.data(), pixels.size());
}

std::string Dataset::hash_hex() const { return fmt::format("fnv1a64:{:016x}", content_hash()); }

std::vector<int64_t> Dataset::class_counts() const {
  std::vector<int64_t> c(classes.size(), 0);
  for (int32_t l : labels)
    if (l >= 0 && size_t(l) < c.size()) ++c[size_t(l)];
  return c;
}

Dataset subset(const Dataset& d, const std::vector<int64_t>& indices, const std::string& name) {
  Dataset s;
  s.name = name.empty() ? d.name + "[subset]" : name;
  s.N = int64_t(indices.size());
  s.C = d.C;
  s.H = d.H;
  s.W = d.W;
  s.classes = d.classes;
  const int64_t isz = d.image_size();
  s.pixels.resize(size_t(s.N * isz));
  s.labels.resize(size_t(s.N));
  for (int64_t k = 0; k < s.N; ++k) {
    const int64_t i = indices[size_t(k)];
    RF_CHECK(i >= 0 && i < d.N, "subset of '{}': index {} (position {}) out of range, expected 0..{}", d.name, i,
             k, d.N - 1);
    std::copy(d.image(i), d.image(i) + isz, s.pixels.begin() + k * isz);
    s.labels[size_t(k)] = d.labels[size_t(i)];
  }
  return s;
}

TrainValSplit holdout_indices(const Dataset& d, int64_t val_count, uint64_t seed) {
  RF_CHECK(val_count >= 0 && val_count < d.N, "held-out split of '{}': val_count {} must be in 0..{} (N={})",
           d.name, val_count, d.N - 1, d.N);
  const int K = d.num_classes();
  std::vector<std::vector<int64_t>> by_class(static_cast<size_t>(K));
  for (int64_t i = 0; i < d.N; ++i) {
    const int32_t l = d.labels[size_t(i)];
    RF_CHECK(l >= 0 && l < K, "held-out split of '{}': label of image {} is {}, expected 0..{}", d.name, i, l,
             K - 1);
    by_class[size_t(l)].push_back(i);
  }
  // Quotas: floor of the proportional share, remainder by largest fractional part (integer arithmetic).
  std::vector<int64_t> q(static_cast<size_t>(K)), frac(static_cast<size_t>(K));
  int64_t given = 0;
  for (int c = 0; c < K; ++c) {
    const int64_t num = val_count * int64_t(by_class[size_t(c)].size());
    q[size_t(c)] = num / d.N;
    frac[size_t(c)] = num % d.N;
    given += q[size_t(c)];
  }
  std::vector<int> order(static_cast<size_t>(K));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return frac[size_t(a)] > frac[size_t(b)]; });
  for (int k = 0; given < val_count && k < K; ++k, ++given) ++q[size_t(order[size_t(k)])];

  std::vector<char> is_val(size_t(d.N), 0);
  for (int c = 0; c < K; ++c) {
    const auto& idx = by_class[size_t(c)];
    const auto perm = seeded_permutation(int64_t(idx.size()), seed, kTagSplit, uint64_t(c));
    for (int64_t k = 0; k < q[size_t(c)]; ++k) is_val[size_t(idx[size_t(perm[size_t(k)])])] = 1;
  }
  TrainValSplit s;
  for (int64_t i = 0; i < d.N; ++i) (is_val[size_t(i)] ? s.val : s.train).push_back(i);
  return s;
}

TrainVal holdout_split(const Dataset& d, int64_t val_count, uint64_t seed) {
  const TrainValSplit s = holdout_indices(d, val_count, seed);
  TrainVal tv;
  tv.train = subset(d, s.train, d.name + "[train-split]");
  tv.val = subset(d, s.val, d.name + "[val-split]");
  return tv;
}

}  // namespace rf::data
