// libFuzzer target for the CIFAR-10 binary record reader (datasets/cifar_binary.cpp): any byte string must
// either load as whole 3073-byte records with labels 0..9 or throw rf::Error; never crash, overflow or
// allocate a size the input chooses beyond the record cap. What loaded must validate and hold exactly the
// input's bytes (label byte + 3072 pixels per record).
// fuzz-sources: datasets/cifar_binary.cpp datasets/dataset.cpp host/core/philox.cpp
// fuzz-libs: -lfmt
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "datasets/cifar_binary.h"
#include "host/core/check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  rf::data::Dataset d;
  try {
    rf::data::read_cifar_batch_memory(data, size, "fuzz-input", d);
  } catch (const rf::Error&) {
    if (d.N != 0 || !d.pixels.empty() || !d.labels.empty()) std::abort();  // left as it was
    return 0;
  }
  d.classes = rf::data::cifar10_class_names();
  d.validate();  // throws (and so crashes the fuzzer) if the reader produced an inconsistent dataset
  if (size_t(d.N) * 3073 != size) std::abort();
  for (int64_t r = 0; r < d.N; ++r)
    if (d.labels[size_t(r)] != data[size_t(r) * 3073] ||
        std::memcmp(d.image(r), data + size_t(r) * 3073 + 1, 3072) != 0)
      std::abort();
  return 0;
}
