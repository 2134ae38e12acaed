// Input pipeline: per-epoch shuffling, random crop with zero padding + horizontal flip, normalisation, and a
// BatchLoader that prepares float NCHW batches on worker threads ahead of the consumer.
// Everything random is a function of (seed, epoch, index) through Philox (datasets/rng.h):
//   order of epoch e       = seeded_permutation(N, seed, kTagShuffle, e)
//   crop/flip of sample i  = augment_params(seed, e, i)   (i = index in the dataset, not the position)
// so batches are identical whatever the number of workers, and equal make_batch(), the single-threaded
// definition. Padding is zero in pixel space (black, as torchvision's RandomCrop(32, padding=4) before
// Normalize), so padded pixels read (0 - mean) / std after normalisation.
// Checked by tests/datasets/test_loader.cpp (determinism, crop/flip on a known image, every index once per
// epoch, loader == single-threaded batches, early stop, worker exceptions rethrown).
#pragma once
#include <array>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "datasets/dataset.h"
#include "host/core/tensor.h"

namespace rf::data {

struct Normalize {
  std::array<float, 3> mean{0.4914f, 0.4822f, 0.4465f};  // CIFAR-10 train statistics
  std::array<float, 3> std{0.2023f, 0.1994f, 0.2010f};
};

struct Augment {
  int dy = 0, dx = 0;  // crop offset in the padded image, 0..2*pad; (pad, pad) = no shift
  bool flip = false;   // horizontal flip after the crop
};

// Philox block (seed; counter index, epoch, kTagAugment): dy = word0 % (2 pad + 1), dx = word1 % (2 pad + 1),
// flip = word2 & 1 (modulo bias < 2^-28 for pad = 4).
Augment augment_params(uint64_t seed, int64_t epoch, int64_t index, int pad, bool hflip);

// The order of an epoch: a permutation of 0..n-1, a function of (n, seed, epoch).
std::vector<int64_t> epoch_permutation(int64_t n, uint64_t seed, int64_t epoch);

// One image: uint8 CHW in, float CHW out (same C, H, W): out[c][y][x] = lut_c(in[c][y + dy - pad][x' + dx - pad])
// with x' = W-1-x when flipped, else x; outside the image the pixel is 0 before normalisation.
// lut_c(v) = (v / 255 - mean_c) / std_c, computed once per loader in float.
struct NormalizeLut {
  std::vector<float> v;  // C * 256
  NormalizeLut(const Normalize& n, int C);
};
void transform_image(const uint8_t* chw, int C, int H, int W, const Augment& a, int pad, const NormalizeLut& lut,
                     float* out);

struct LoaderOptions {
  int64_t batch_size = 128;
  bool shuffle = true;     // false: dataset order every epoch
  bool augment = true;     // random crop (pad) + flip; false: normalisation only (eval)
  int pad = 4;
  bool hflip = true;
  bool drop_last = false;  // true: a last partial batch is dropped
  uint64_t seed = 0;
  int workers = 1;         // threads preparing batches (>= 1)
  int prefetch = 2;        // batches prepared ahead of the consumer (bounded queue, >= 1)
  Normalize norm;
  static LoaderOptions train(uint64_t seed) {
    LoaderOptions o;
    o.seed = seed;
    return o;
  }
  static LoaderOptions eval() {
    LoaderOptions o;
    o.shuffle = false;
    o.augment = false;
    return o;
  }
};

struct Batch {
  Tensor x;                      // f32 (B, C, H, W), normalised
  Tensor y;                      // i32 (B)
  std::vector<int64_t> indices;  // dataset indices of the B samples
  int64_t epoch = 0, batch = 0;  // which batch of which epoch
  int64_t size() const { return int64_t(indices.size()); }
};

int64_t batches_per_epoch(int64_t n, const LoaderOptions& opt);

// The definition of batch b of epoch e, computed on the calling thread.
Batch make_batch(const Dataset& d, const LoaderOptions& opt, int64_t epoch, int64_t b);

// Usage:
//   BatchLoader loader(train, LoaderOptions::train(seed));
//   for (int64_t e = 0; e < epochs; ++e) {
//     loader.start_epoch(e);
//     for (Batch batch; loader.next(batch);) step(batch.x, batch.y);
//   }
// The dataset must outlive the loader. start_epoch may be called at any time (an unfinished epoch is
// abandoned). next() returns false at the end of the epoch and rethrows the first exception a worker hit.
// The destructor stops the workers without waiting for the epoch to be consumed.
class BatchLoader {
 public:
  BatchLoader(const Dataset& data, LoaderOptions opt);
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  int64_t batches_per_epoch() const { return nbatches_; }
  const LoaderOptions& options() const { return opt_; }
  void start_epoch(int64_t epoch);
  bool next(Batch& out);
  void stop();  // joins the workers; next() afterwards returns false

 private:
  void worker_loop();

  const Dataset& data_;
  LoaderOptions opt_;
  int64_t nbatches_ = 0;
  std::shared_ptr<const std::vector<int64_t>> perm_;
  std::shared_ptr<const NormalizeLut> lut_;

  std::mutex mu_;
  std::condition_variable cv_work_, cv_ready_;
  bool stopping_ = false, active_ = false;
  uint64_t generation_ = 0;  // bumped by start_epoch; results of older generations are discarded
  int64_t epoch_ = 0, next_claim_ = 0, next_consume_ = 0;
  std::map<int64_t, Batch> ready_;
  std::exception_ptr error_;
  int64_t error_batch_ = 0;  // the lowest batch number that failed; batches before it are still delivered
  std::vector<std::thread> threads_;
};

}  // namespace rf::data
