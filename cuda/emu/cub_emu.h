// CUB emulation: a host implementation (namespace cub) of exactly the part of CUB's device-wide API that cuda/
// uses, so a kernel file's CUB calls (through cuda/cub.h) compile and run unchanged under the CUDA emulation
// (RF_CUDA_EMU, cuda/emu/cuda_emu.h). Checked by tests/gpu/test_train_step_gpu.cpp (CubEmu.* tests the protocol;
// the TrainStepGpu tests use it through cuda/ops/train_step.cu).
//
// The subset, with CUB 3.x's signatures (CUDA 13: include/cccl/cub/device/device_reduce.cuh):
//   cub::DeviceReduce::Sum(d_temp_storage, temp_storage_bytes, d_in, d_out, num_items, stream = 0)
//   cub::DeviceReduce::TransformReduce(d_temp_storage, temp_storage_bytes, d_in, d_out, num_items,
//                                      reduction_op, transform_op, init, stream = 0)
// generic over the input iterator / pointer, the output pointer and the integer type of num_items, returning
// cudaError_t. CUB's two-phase protocol is kept, and checked, as the device's CUB does:
// - d_temp_storage == nullptr: only temp_storage_bytes is set (never 0), nothing is read or written;
// - otherwise temp_storage_bytes must be at least the size the first call gave (cudaErrorInvalidValue if not,
//   as CUB's multi-block path via AliasTemporaries; stricter than its single-tile path for small inputs, which
//   checks nothing), and the temp storage is written over its whole size (ASan then catches a caller that
//   allocated less than it claims); num_items == 0 writes the initial value (0 for Sum), as CUB does.
//
// Limits: the reduction runs on the calling thread, synchronously whatever the stream (like the emulated
// launches), and it is SEQUENTIAL, left to right: CUB on the device sums in a tree whose shape depends on the GPU
// and the item count, so its floating-point rounding differs from this twin's. The result is deterministic here
// and run-to-run on one device, but not equal across the two: tests compare CUB sums with a tolerance.
// Anything else of CUB (Max, ArgMax, scans, sorts, block/warp primitives) is absent: add it here, with CUB's
// signature, before a kernel file uses it.
#pragma once
#if defined(__CUDACC__) || !defined(RF_CUDA_EMU)
#error "cuda/emu/cub_emu.h is the host twin of CUB for the CUDA emulation: include cuda/cub.h"
#endif

#include <cstddef>
#include <cstring>
#include <iterator>
#include <type_traits>

#include "cuda/emu/cuda_emu.h"

namespace cub {

namespace emu_detail {

// What the first call reports: never 0 (a caller must allocate before the second call, as with the real CUB,
// which needs at least its per-block partials) and independent of the item count.
constexpr size_t kTempStorageBytes = 256;

// The output's value type, or the input's where the output iterator has none (CUB's non_void_value_t).
template <typename OutputIteratorT, typename InputIteratorT>
using output_value_t = std::conditional_t<
    std::is_void_v<typename std::iterator_traits<OutputIteratorT>::value_type>,
    typename std::iterator_traits<InputIteratorT>::value_type,
    typename std::iterator_traits<OutputIteratorT>::value_type>;

// Phase one, or the check of phase two's storage (then filled, see the file comment).
inline bool size_query(void* d_temp_storage, size_t& temp_storage_bytes, cudaError_t* status) {
  if (d_temp_storage == nullptr) {
    temp_storage_bytes = kTempStorageBytes;
    *status = cudaSuccess;
    return true;
  }
  if (temp_storage_bytes < kTempStorageBytes) {
    *status = cudaErrorInvalidValue;
    return true;
  }
  std::memset(d_temp_storage, 0xA5, temp_storage_bytes);
  return false;
}

}  // namespace emu_detail

struct DeviceReduce {
  // *d_out = d_in[0] + d_in[1] + ... (left to right), accumulated in the type of OutputT{} + d_in[i] (as CUB's
  // accumulator of ::cuda::std::plus<> with init OutputT{}), OutputT the output's value type.
  template <typename InputIteratorT, typename OutputIteratorT, typename NumItemsT>
  static cudaError_t Sum(void* d_temp_storage, size_t& temp_storage_bytes, InputIteratorT d_in,
                         OutputIteratorT d_out, NumItemsT num_items, cudaStream_t stream = 0) {
    (void)stream;
    cudaError_t status = cudaSuccess;
    if (emu_detail::size_query(d_temp_storage, temp_storage_bytes, &status)) return status;
    using OutputT = emu_detail::output_value_t<OutputIteratorT, InputIteratorT>;
    using AccumT = std::decay_t<decltype(OutputT{} + d_in[0])>;
    AccumT acc = AccumT(OutputT{});
    for (NumItemsT i = 0; i < num_items; ++i) acc = acc + d_in[i];
    *d_out = OutputT(acc);
    return cudaSuccess;
  }

  // *d_out = reduction_op(... reduction_op(reduction_op(init, transform_op(d_in[0])), transform_op(d_in[1])) ...).
  template <typename InputIteratorT, typename OutputIteratorT, typename ReductionOpT, typename TransformOpT,
            typename T, typename NumItemsT>
  static cudaError_t TransformReduce(void* d_temp_storage, size_t& temp_storage_bytes, InputIteratorT d_in,
                                     OutputIteratorT d_out, NumItemsT num_items, ReductionOpT reduction_op,
                                     TransformOpT transform_op, T init, cudaStream_t stream = 0) {
    (void)stream;
    cudaError_t status = cudaSuccess;
    if (emu_detail::size_query(d_temp_storage, temp_storage_bytes, &status)) return status;
    using AccumT = std::decay_t<decltype(reduction_op(init, transform_op(d_in[0])))>;
    AccumT acc = AccumT(init);
    for (NumItemsT i = 0; i < num_items; ++i) acc = reduction_op(acc, transform_op(d_in[i]));
    *d_out = acc;
    return cudaSuccess;
  }
};

// cub::BlockReduce<T, BLOCK_DIM_X>: the block-wide sum of one value per thread, valid in thread 0 only, as CUB's.
// The emulated threads write their values to the temp storage, meet at one barrier, and thread 0 adds them in
// thread order (the device's CUB adds in its own fixed tree: tests compare with a tolerance). No barrier at the end,
// as in CUB: reusing the temp storage, or reading a broadcast of the result, needs the caller's __syncthreads(),
// and a missing one shows up here as a wrong sum (the emulated threads run in a shuffled order between barriers).
template <typename T, int BLOCK_DIM_X>
class BlockReduce {
 public:
  struct TempStorage {
    T slot[BLOCK_DIM_X];
  };
  explicit BlockReduce(TempStorage& temp) : temp_(temp) {}
  T Sum(T v) {
    const unsigned t = threadIdx.x;
    temp_.slot[t] = v;
    __syncthreads();
    if (t != 0) return T();
    T acc = temp_.slot[0];
    for (int i = 1; i < BLOCK_DIM_X; ++i) acc += temp_.slot[i];
    return acc;
  }

 private:
  TempStorage& temp_;
};

}  // namespace cub
