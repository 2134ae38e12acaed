// Private to the cuDNN wrapper (cuda/cudnn_ops.cu, cuda/cudnn_graph_conv.cu, cuda/cudnn_legacy_conv.cu): the
// context's state and the interface both conv paths implement. Included only where RF_HAVE_CUDNN is set.
// Checked by tests/gpu/test_cudnn_gpu.cpp (run once per path on a GPU: RF_CUDNN_API=graph|legacy).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "cuda/cuda_check.h"
#include "cuda/cudnn_ops.h"

// Destructors report and continue.
#define RF_CUDNN_NOTHROW(x)                                                                             \
  do {                                                                                                  \
    const cudnnStatus_t rf_st_ = (x);                                                                   \
    if (rf_st_ != CUDNN_STATUS_SUCCESS)                                                                 \
      std::fprintf(stderr, "cuDNN call `%s` failed at %s:%d: %s\n", #x, __FILE__, __LINE__,            \
                   cudnnGetErrorString(rf_st_));                                                        \
  } while (0)

namespace rf {
namespace cudnn_detail {

// The three conv passes; operands (in0, in1 -> out) are (x, w -> y), (dy, w -> dx), (x, dy -> dw).
enum class ConvPass { forward, backward_data, backward_filter };
const char* pass_name(ConvPass p);

// A legacy tensor descriptor (not deprecated; used by batch norm and the legacy conv path).
struct TensorDesc {
  cudnnTensorDescriptor_t d = nullptr;
  TensorDesc() { CUDNN_CHECK(cudnnCreateTensorDescriptor(&d)); }
  ~TensorDesc() { RF_CUDNN_NOTHROW(cudnnDestroyTensorDescriptor(d)); }
  TensorDesc(const TensorDesc&) = delete;
  TensorDesc& operator=(const TensorDesc&) = delete;
};

// One conv path: per (shape, pass) it chooses an algorithm once (cached), then runs it on the context's stream.
class ConvPath {
 public:
  virtual ~ConvPath() = default;
  virtual void run(ConvPass pass, const Conv2dShape& s, const float* in0, const float* in1, float* out) = 0;
  virtual std::string report() const = 0;  // one line per cached (shape, pass)
  virtual const char* name() const = 0;
};

}  // namespace cudnn_detail

struct CudnnContext::Impl {
  cudnnHandle_t handle = nullptr;
  cudaStream_t stream = nullptr;
  CudnnOptions opt;
  std::unique_ptr<cudnn_detail::ConvPath> conv;  // destroyed before the handle (declared after it)
  void* ws = nullptr;
  size_t ws_bytes = 0;

  ~Impl();
  // A workspace of at least `bytes` (null for 0), grown on demand; work queued on the old buffer finishes first.
  void* workspace(size_t bytes);
};

namespace cudnn_detail {
std::unique_ptr<ConvPath> make_graph_conv_path(CudnnContext::Impl& ctx);
std::unique_ptr<ConvPath> make_legacy_conv_path(CudnnContext::Impl& ctx);
}  // namespace cudnn_detail

}  // namespace rf
