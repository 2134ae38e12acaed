// Bilinear upsampling on the GPU (cuda/ops/upsample.h): forward and backward, NCHW, any scale up or down,
// PyTorch's align_corners=False taps (host/ops/upsample.h: bilinear_taps). One thread per output element
// (forward) or per input element (backward), grid-stride loops with int64 indices, no shared memory, no barriers,
// no atomics.
//
// Exactness: both kernels compute, per element, the expression of the _ref ops in double, in their order, and
// round once to float, so they equal upsample_bilinear_forward_ref<float> / upsample_bilinear_backward_ref<float>
// bit for bit (and the backward is the double reference rounded to float):
// - the taps are bilinear_taps' formula evaluated on the device (it is host code in a .cpp): the same double
//   operations on the same operands, the scale in / out divided on the host and passed in;
// - every double multiply and add goes through __dmul_rn / __dadd_rn, which nvcc never contracts into a DFMA, so
//   the bits do not depend on -fmad (the reference's products of a double weight and a value are not exact, so a
//   contraction would change them; nvcc -ptx with -fmad=true emits no fma.rn.f64 here);
// - the backward gathers: input row iy is reached by exactly the output rows whose first tap i0 is iy - 1 or iy
//   (i1 = min(i0 + 1, in - 1)), a contiguous range since i0 grows with the output index: two binary searches per
//   axis find it. Each input cell then adds its terms over that range, output rows then columns ascending, the four
//   taps in the reference's order (i0 i0, i0 i1, i1 i0, i1 i1), into a double starting at 0: the same additions,
//   in the same order, as the reference's accumulator for that cell. dx is overwritten (0 where no output reaches).
// Cost: the backward reads ~(Ho/H + 2)(Wo/W + 2) outputs per input cell; at very large ratios (1x1 -> 512x512) the
// work of a plane sits on few threads and the parallelism comes from N*C. Double arithmetic runs at half the FP32
// rate on an H100/H200 (1/64 on consumer GPUs): an estimate, not measured.
// Checked by tests/gpu/test_upsample_gpu.cpp (emulated in CI under label gpu-emu, on a device under gpu).
#include "cuda/ops/upsample.h"

#include <algorithm>
#include <cstdint>

#include "cuda/cuda_check.h"
#include "host/core/check.h"

namespace rf {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 4096;  // then the grid-stride loops (as cuda/ops/elementwise.cu)
// Element counts above this are refused: N*C*H*W as int64 and the grid-stride index i + gridDim*blockDim stay
// far from overflowing.
constexpr int64_t kMaxNumel = int64_t(1) << 62;

unsigned blocks_for(int64_t n) { return unsigned(std::min<int64_t>((n + kThreads - 1) / kThreads, kMaxBlocks)); }

__device__ __forceinline__ int64_t first_index() { return int64_t(blockIdx.x) * blockDim.x + threadIdx.x; }
__device__ __forceinline__ int64_t grid_stride() { return int64_t(gridDim.x) * blockDim.x; }

// One axis of the resize: in -> out samples, scale = double(in) / double(out) as bilinear_taps computes it.
struct Axis {
  int in, out;
  double scale;
};

struct Taps {
  int i0, i1;
  double w0, w1;
};

// bilinear_taps(a.in, a.out, dst), operation for operation.
__device__ __forceinline__ double tap_source(const Axis& a, int dst) {
  const double src = __dsub_rn(__dmul_rn(double(dst) + 0.5, a.scale), 0.5);
  return src > 0.0 ? src : 0.0;  // std::max(0.0, src)
}
__device__ __forceinline__ int tap_first(const Axis& a, double src) { return min(int(src), a.in - 1); }
__device__ __forceinline__ Taps taps_of(const Axis& a, int dst) {
  const double src = tap_source(a, dst);
  const int i0 = tap_first(a, src);
  const int i1 = min(i0 + 1, a.in - 1);
  const double l = __dsub_rn(src, double(i0));
  return {i0, i1, __dsub_rn(1.0, l), l};
}

// The first output index whose tap i0 is >= target (a.out when none): i0 is non-decreasing in the output index
// (rounding is monotone), so a binary search finds it.
__device__ __forceinline__ int first_output_reaching(const Axis& a, int target) {
  int lo = 0, hi = a.out;
  while (lo < hi) {
    const int mid = lo + (hi - lo) / 2;
    if (tap_first(a, tap_source(a, mid)) >= target)
      hi = mid;
    else
      lo = mid + 1;
  }
  return lo;
}

__global__ void upsample_bilinear_forward_kernel(int64_t total, Axis ay, Axis ax, const float* x, float* y) {
  const int64_t in_plane = int64_t(ay.in) * ax.in, out_plane = int64_t(ay.out) * ax.out;
  for (int64_t i = first_index(); i < total; i += grid_stride()) {
    const int64_t p = i / out_plane, e = i - p * out_plane;
    const int oy = int(e / ax.out), ox = int(e - int64_t(oy) * ax.out);
    const Taps ty = taps_of(ay, oy), tx = taps_of(ax, ox);
    const float* r0 = x + p * in_plane + int64_t(ty.i0) * ax.in;
    const float* r1 = x + p * in_plane + int64_t(ty.i1) * ax.in;
    const double top = __dadd_rn(__dmul_rn(tx.w0, double(r0[tx.i0])), __dmul_rn(tx.w1, double(r0[tx.i1])));
    const double bot = __dadd_rn(__dmul_rn(tx.w0, double(r1[tx.i0])), __dmul_rn(tx.w1, double(r1[tx.i1])));
    y[i] = float(__dadd_rn(__dmul_rn(ty.w0, top), __dmul_rn(ty.w1, bot)));
  }
}

__global__ void upsample_bilinear_backward_kernel(int64_t total, Axis ay, Axis ax, const float* dy, float* dx) {
  const int64_t in_plane = int64_t(ay.in) * ax.in, out_plane = int64_t(ay.out) * ax.out;
  for (int64_t i = first_index(); i < total; i += grid_stride()) {
    const int64_t p = i / in_plane, e = i - p * in_plane;
    const int iy = int(e / ax.in), ix = int(e - int64_t(iy) * ax.in);
    const int oy_begin = first_output_reaching(ay, iy - 1), oy_end = first_output_reaching(ay, iy + 1);
    const int ox_begin = first_output_reaching(ax, ix - 1), ox_end = first_output_reaching(ax, ix + 1);
    const float* dyp = dy + p * out_plane;
    double acc = 0.0;
    for (int oy = oy_begin; oy < oy_end; ++oy) {
      const Taps ty = taps_of(ay, oy);
      const float* g_row = dyp + int64_t(oy) * ax.out;
      for (int ox = ox_begin; ox < ox_end; ++ox) {
        const Taps tx = taps_of(ax, ox);
        const double g = double(g_row[ox]);
        // The reference's four += in its order, those that land on (iy, ix).
        if (ty.i0 == iy && tx.i0 == ix) acc = __dadd_rn(acc, __dmul_rn(__dmul_rn(ty.w0, tx.w0), g));
        if (ty.i0 == iy && tx.i1 == ix) acc = __dadd_rn(acc, __dmul_rn(__dmul_rn(ty.w0, tx.w1), g));
        if (ty.i1 == iy && tx.i0 == ix) acc = __dadd_rn(acc, __dmul_rn(__dmul_rn(ty.w1, tx.w0), g));
        if (ty.i1 == iy && tx.i1 == ix) acc = __dadd_rn(acc, __dmul_rn(__dmul_rn(ty.w1, tx.w1), g));
      }
    }
    dx[i] = float(acc);
  }
}

// One call of either direction: the shape's own checks, then what the kernels need (element counts far from int64
// overflow, counted in double so the count itself cannot overflow; both pointers set; input and output apart,
// since each thread reads elements that others write), then one thread per element written: y forward, dx
// backward.
void upsample_bilinear_cuda(const char* who, const UpsampleShape& s, bool forward, const float* in, float* out,
                            cudaStream_t stream) {
  s.validate();
  const char* in_name = forward ? "x" : "dy";
  const char* out_name = forward ? "y" : "dx";
  const double x_elems = double(s.N) * s.C * s.H * s.W, y_elems = double(s.N) * s.C * s.Ho * s.Wo;
  RF_CHECK(x_elems <= double(kMaxNumel) && y_elems <= double(kMaxNumel),
           "{}: {}: {:.0f} input / {:.0f} output elements exceed the kernels' int64 indexing (at most 2^62)", who,
           s.str(), x_elems, y_elems);
  RF_CHECK(in != nullptr && out != nullptr, "{}: {}: null {} or {}", who, s.str(), in_name, out_name);
  const int64_t n_in = forward ? s.x_numel() : s.y_numel(), n_out = forward ? s.y_numel() : s.x_numel();
  const auto a = reinterpret_cast<uintptr_t>(in), b = reinterpret_cast<uintptr_t>(out);
  RF_CHECK(a + uintptr_t(n_in) * sizeof(float) <= b || b + uintptr_t(n_out) * sizeof(float) <= a,
           "{}: {}: {} and {} overlap (the op is not in place)", who, s.str(), in_name, out_name);

  const Axis rows{s.H, s.Ho, double(s.H) / double(s.Ho)}, cols{s.W, s.Wo, double(s.W) / double(s.Wo)};
  if (forward)
    RF_LAUNCH(blocks_for(n_out), kThreads, 0, stream, upsample_bilinear_forward_kernel)(n_out, rows, cols, in, out);
  else
    RF_LAUNCH(blocks_for(n_out), kThreads, 0, stream, upsample_bilinear_backward_kernel)(n_out, rows, cols, in, out);
  CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void upsample_bilinear_forward_cuda(const UpsampleShape& s, const float* x, float* y, cudaStream_t stream) {
  upsample_bilinear_cuda("upsample_bilinear_forward_cuda", s, true, x, y, stream);
}

void upsample_bilinear_backward_cuda(const UpsampleShape& s, const float* dy, float* dx, cudaStream_t stream) {
  upsample_bilinear_cuda("upsample_bilinear_backward_cuda", s, false, dy, dx, stream);
}

}  // namespace rf
