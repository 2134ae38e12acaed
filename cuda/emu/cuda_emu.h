// CUDA emulation: the kernels of cuda/ compiled as host C++ (g++ -x c++ -DRF_CUDA_EMU) and run on the CPU, so
// their tests (tests/gpu, CTest label gpu-emu) run in CI without a GPU. Included by cuda/cuda_check.h in place
// of <cuda_runtime.h> / <curand.h> when RF_CUDA_EMU is defined; kernels launch through RF_LAUNCH and declare
// shared memory through RF_SHARED / RF_DYNAMIC_SHARED (cuda/launch.h), which are plain CUDA under nvcc.
// Implemented in cuda/emu/cuda_emu.cpp; checked by tests/gpu/emu/test_cuda_emu.cpp and by every emulated kernel test.
//
// What it does, as the device does:
// - every thread of a block runs on its own fiber (an mmap'ed stack with a guard page; a few instructions of
//   assembly switch them on x86-64, ucontext elsewhere), all of a block's fibers live at once; threadIdx /
//   blockIdx / blockDim / gridDim are the running fiber's;
// - __syncthreads() is a real barrier over all threads of the block: a fiber runs until it reaches one (or
//   ends), and the block goes on only when every thread has arrived;
// - between two barriers the block's threads run one after another in a random order, drawn anew after each
//   barrier (seeded: RF_EMU_SEED, default 1; printed once per process on stderr), so a read of shared memory that
//   another thread writes without a barrier in between sees the unwritten value;
// - shared memory (each RF_SHARED array, and the dynamic shared memory of RF_DYNAMIC_SHARED) is a per-block
//   heap buffer of exactly the declared / launched size, filled with 0xFF bytes (NaN for floats) at the start
//   of each block: AddressSanitizer catches an overrun, and a read before any write gives NaN;
// - a launch checks its configuration as the device does (block <= 1024 threads and 1024 x 1024 x 64, grid.y
//   and grid.z <= 65535, dynamic shared memory <= 48 KiB without opt-in) and fails with cudaErrorInvalidValue /
//   cudaErrorInvalidConfiguration through cudaGetLastError();
// - a thread that ends while others of its block wait at a barrier (divergent __syncthreads: a hang or
//   undefined on the device) fails the launch with cudaErrorLaunchFailure and a message on stderr;
// - RF_EMU_DROP_BARRIER=<file>:<line> turns the __syncthreads() at that source line into a no-op (announced on
//   stderr): the proof that a missing barrier fails the kernel's test (tests/gpu/emu/expect_barrier_failure.sh).
//
// Limits (what it does not emulate):
// - no warps: no warp intrinsics (__shfl*, __ballot*, __syncwarp) and no lock-step execution (none of the
//   kernels use them; add them here, with the device's semantics, before a kernel does); of the atomics only
//   atomicAdd (int, unsigned, unsigned long long, float, double: fibers never interleave within one, so each
//   is atomic as on the device; the order of a float sum follows the emulated run order);
// - blocks run one after another, in grid order, on the calling thread; launches are synchronous whatever the
//   stream (streams and events exist, and do nothing but order), so races between blocks or with the host
//   are not found (compute-sanitizer racecheck on a real GPU is the check for those);
// - float arithmetic is the host's: __fmaf_rn is std::fma, __fmul_rn a plain multiply (-ffp-contract=off), and
//   host/core/philox_impl.h takes its host branch, so "GPU bits == CPU bits" holds by construction here; only a
//   real GPU proves it for nvcc's code;
// - __launch_bounds__, register counts, occupancy and the 255-register limit are not checked (a launch of more
//   threads than a kernel's bound works here and fails on the device);
// - global memory is host memory (cudaMalloc = malloc, 16-byte aligned where the device gives 256): a kernel can
//   read a host pointer without an error;
// - one emulated device (cudaGetDeviceCount = 1) with kEmuMultiprocessors multiprocessors;
// - cuRAND's device API (curand_kernel.h) and the vendor libraries (cuDNN, CUB device-wide) are absent: their
//   tests skip in emulation with the reason, and run on a real GPU only; except the CUB reductions cuda/ uses,
//   which cuda/emu/cub_emu.h (via cuda/cub.h) runs on the host, summing sequentially: its rounding differs
//   from the device's tree order, so tests compare CUB sums with a tolerance.
// Speed (x86-64, measured on a loaded 2-core CI machine): ~0.5 µs per emulated thread and ~0.3 µs per barrier
// per thread (fibers switch in a few instructions); the portable ucontext path (other CPUs)
// is 2-3x slower.
#pragma once
#if defined(__CUDACC__)
#error "cuda/emu/cuda_emu.h is the host emulation of CUDA: nvcc builds use the real runtime"
#endif

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <tuple>
#include <type_traits>
#include <utility>

// ---- qualifiers and built-in types ---------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
};
struct uint3 {
  unsigned x, y, z;
};

// ---- runtime API (the subset cuda/ and tests/gpu use) ---------------------------------------------------
enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDevice = 101,
  cudaErrorLaunchFailure = 719,
};
using cudaError = cudaError_t;
enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4
};
enum cudaDeviceAttr { cudaDevAttrMaxThreadsPerBlock = 1, cudaDevAttrMultiProcessorCount = 16 };

struct CUstream_st;
typedef struct CUstream_st* cudaStream_t;  // the same typedef as CUDA's driver_types.h
struct CUevent_st;
typedef struct CUevent_st* cudaEvent_t;

cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
const char* cudaGetErrorString(cudaError_t e);
const char* cudaGetErrorName(cudaError_t e);
cudaError_t cudaMalloc(void** ptr, size_t bytes);
cudaError_t cudaFree(void* ptr);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream = nullptr);
cudaError_t cudaMemset(void* ptr, int value, size_t bytes);
cudaError_t cudaMemsetAsync(void* ptr, int value, size_t bytes, cudaStream_t stream = nullptr);
cudaError_t cudaStreamCreate(cudaStream_t* stream);
constexpr unsigned cudaStreamNonBlocking = 0x01;
constexpr unsigned cudaEventDisableTiming = 0x02;
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags);
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned flags = 0);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned flags);
// Pinned host memory is plain host memory here.
cudaError_t cudaMallocHost(void** ptr, size_t bytes);
cudaError_t cudaFreeHost(void* ptr);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaEventCreate(cudaEvent_t* event);
cudaError_t cudaEventDestroy(cudaEvent_t event);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream = nullptr);
cudaError_t cudaEventSynchronize(cudaEvent_t event);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end);

// cuRAND's status codes (curand.h), for CURAND_CHECK in cuda/cuda_check.h; no cuRAND function is emulated.
enum curandStatus {
  CURAND_STATUS_SUCCESS = 0,
  CURAND_STATUS_VERSION_MISMATCH = 100,
  CURAND_STATUS_NOT_INITIALIZED = 101,
  CURAND_STATUS_ALLOCATION_FAILED = 102,
  CURAND_STATUS_TYPE_ERROR = 103,
  CURAND_STATUS_OUT_OF_RANGE = 104,
  CURAND_STATUS_LENGTH_NOT_MULTIPLE = 105,
  CURAND_STATUS_DOUBLE_PRECISION_REQUIRED = 106,
  CURAND_STATUS_LAUNCH_FAILURE = 201,
  CURAND_STATUS_PREEXISTING_FAILURE = 202,
  CURAND_STATUS_INITIALIZATION_FAILED = 203,
  CURAND_STATUS_ARCH_MISMATCH = 204,
  CURAND_STATUS_INTERNAL_ERROR = 999
};
typedef enum curandStatus curandStatus_t;

namespace rf_emu {

constexpr int kEmuMultiprocessors = 4;  // few: grid-stride loops in the launchers then take several turns

// The running fiber's coordinates (set by the scheduler before it switches to the fiber).
struct ThreadCoords {
  uint3 thread_idx, block_idx;
  dim3 block_dim, grid_dim;
};
inline thread_local const ThreadCoords* tls_coords = nullptr;

// Runs body(arg) once per thread of every block of the grid (see the file comment); records a launch error
// for cudaGetLastError instead of running when the configuration is invalid.
void run_grid(dim3 grid, dim3 block, size_t dynamic_smem, void (*body)(void*), void* arg);

// Barrier at file:line (the line lets RF_EMU_DROP_BARRIER name one).
void syncthreads(const char* file, int line);

// This block's buffer for the shared array declared at `tag` (first call per block allocates `bytes`).
void* static_shared(const void* tag, size_t bytes);
// This block's dynamic shared memory (exactly the launch's smem bytes).
void* dynamic_shared();

// Kernel parameters are copied per thread, as the device passes each thread the launch's values.
template <typename... P>
class Launcher {
 public:
  Launcher(dim3 grid, dim3 block, size_t smem, cudaStream_t, void (*kernel)(P...))
      : grid_(grid), block_(block), smem_(smem), kernel_(kernel) {}
  template <typename... A>
  void operator()(A&&... args) const {
    static_assert(sizeof...(A) == sizeof...(P), "kernel launched with the wrong number of arguments");
    Closure c{kernel_, std::tuple<std::decay_t<P>...>(std::forward<A>(args)...)};
    run_grid(grid_, block_, smem_, &Closure::run, &c);
  }

 private:
  struct Closure {
    void (*kernel)(P...);
    std::tuple<std::decay_t<P>...> params;
    static void run(void* p) {
      const Closure* c = static_cast<const Closure*>(p);
      std::apply(c->kernel, c->params);  // each thread's own copies of the parameters
    }
  };
  dim3 grid_, block_;
  size_t smem_;
  void (*kernel_)(P...);
};

}  // namespace rf_emu

#define threadIdx (::rf_emu::tls_coords->thread_idx)
#define blockIdx (::rf_emu::tls_coords->block_idx)
#define blockDim (::rf_emu::tls_coords->block_dim)
#define gridDim (::rf_emu::tls_coords->grid_dim)
#define __syncthreads() ::rf_emu::syncthreads(__FILE__, __LINE__)

// ---- device functions the kernels use, with the device's results on host floats ------------------------
template <typename T>
inline T __ldg(const T* p) { return *p; }
inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fsqrt_rn(float a) { return std::sqrt(a); }
// The double twins (never contracted into a DFMA, whatever -fmad says).
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dsub_rn(double a, double b) { return a - b; }
// fmaxf / fminf: the C library's (math.h), which behave as CUDA's (NaN loses).
// CUDA's global min / max overloads (integer and float), which device code calls unqualified.
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline long min(long a, long b) { return a < b ? a : b; }
inline long max(long a, long b) { return a > b ? a : b; }
inline float min(float a, float b) { return std::fmin(a, b); }
inline float max(float a, float b) { return std::fmax(a, b); }

// atomicAdd: a fiber runs until its next barrier, so no other thread runs inside a read-modify-write.
template <typename T>
inline T rf_emu_atomic_add(T* address, T value) {
  const T old = *address;
  *address = old + value;
  return old;
}
inline int atomicAdd(int* a, int v) { return rf_emu_atomic_add(a, v); }
inline unsigned atomicAdd(unsigned* a, unsigned v) { return rf_emu_atomic_add(a, v); }
inline unsigned long long atomicAdd(unsigned long long* a, unsigned long long v) { return rf_emu_atomic_add(a, v); }
inline float atomicAdd(float* a, float v) { return rf_emu_atomic_add(a, v); }
inline double atomicAdd(double* a, double v) { return rf_emu_atomic_add(a, v); }
