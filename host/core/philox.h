// Philox4x32-10 (Salmon et al., SC 2011), bit-exact with cuRAND's curandStatePhilox4_32_10_t, and the
// seeded-weight normal transform that gives bit-identical floats on the CPU and the GPU.
// The inline functions below compile for both host and device (nvcc) so the two sides share one text.
// Checked by tests/core/test_philox.cpp (known-answer vectors, cuRAND stream layout, statistics).
#pragma once
#include <cstddef>
#include <cstdint>

#if defined(__CUDACC__)
#define RF_HD __host__ __device__ __forceinline__
#else
#define RF_HD inline
#endif

namespace rf {

struct Philox4 {
  uint32_t x, y, z, w;
};

// One Philox4x32-10 block: 10 rounds on counter ctr with key (k0, k1).
RF_HD Philox4 philox4x32_10(Philox4 ctr, uint32_t k0, uint32_t k1);

// The words cuRAND's curand() returns after curand_init(seed, subsequence, offset, &state), n of them.
void philox_curand_stream(uint64_t seed, uint64_t subsequence, uint64_t offset, size_t n, uint32_t* out);

// Seeded normals: weight i of a layer with seed s is seeded_normal(s, i), a function of (s, i) only.
// Block b = i / 4 is the Philox output for key = s, counter = (b, 0, 0, 0), i.e. cuRAND's stream at
// (seed = s, subsequence = 0, offset = 4b); see philox.cpp's header comment for the float transform.
RF_HD void seeded_normal4(uint64_t seed, uint64_t block, float out[4]);
RF_HD float seeded_normal(uint64_t seed, uint64_t i);
// out[i] = std * seeded_normal(seed, i) for i < n (one correctly rounded multiply), OpenMP-parallel.
void seeded_normal_fill(uint64_t seed, float std, int64_t n, float* out);

// The seed rule of the prototype: module i (network order) gets base + i.
inline uint64_t module_seed(uint64_t base_seed, int module_index) { return base_seed + uint64_t(module_index); }

}  // namespace rf

#include "host/core/philox_impl.h"  // the inline RF_HD definitions
