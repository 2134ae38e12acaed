// simd_level(): see build_info.h. The same #if chain as the kernels in host/ops/conv.cpp.
#include "host/core/build_info.h"

namespace rf {

const char* simd_level() {
#if defined(__AVX512F__)
  return "avx512";
#elif defined(__AVX2__) && defined(__FMA__)
  return "avx2";
#elif defined(__ARM_NEON)
  return "neon";
#else
  return "portable";
#endif
}

}  // namespace rf
