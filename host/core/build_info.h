// Facts about how this binary was built that change its speed (for `reframe gate` machine classes and
// `--version`). Self-contained: no other project file needed.
#pragma once

namespace rf {

// The SIMD level the kernels were compiled for, from the compiler's predefined macros (RF_NATIVE builds
// get the host's, others the target's baseline): "avx512" (__AVX512F__), "avx2" (__AVX2__ and __FMA__: the
// conv kernels' AVX2 path needs both), "neon" (__ARM_NEON) or "portable".
const char* simd_level();

}  // namespace rf
