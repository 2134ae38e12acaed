// The first error of a parallel loading loop: exceptions cannot leave an OpenMP region, so each worker records
// its failure here and the loop's owner throws the one of the lowest index afterwards, the same message whatever
// the thread timing. Used by the CamVid, VOC, image-folder loaders and the dense batcher; their tests cover it
// (tests/datasets/test_camvid.cpp, test_voc.cpp, test_image_folder.cpp, test_dense_augment.cpp).
#pragma once
#include <cstdint>
#include <string>

#include "host/core/check.h"

namespace rf::data {

class FirstError {
 public:
  explicit FirstError(int64_t n) : n_(n), index_(n) {}
  // Keeps message() (called only when i is the lowest index so far) for item i.
  template <typename Message>
  void record(int64_t i, Message&& message) {
#pragma omp critical(rf_data_first_error)
    {
      if (i < index_) {
        index_ = i;
        msg_ = message();
      }
    }
  }
  // Throws the recorded error, if any item failed.
  void rethrow() const {
    if (index_ < n_) throw Error(msg_);
  }

 private:
  int64_t n_, index_;
  std::string msg_;
};

}  // namespace rf::data
