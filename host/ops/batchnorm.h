// Batch norm over (N, C, HW) per channel, as PyTorch's BatchNorm2d: train mode normalises with the biased
// batch variance and updates running stats with momentum and the unbiased variance; eval mode uses the
// running stats. Checked by tests/ops/test_batchnorm.cpp.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace rf {

struct BatchNormShape {
  int N = 1, C = 1, HW = 1;
  float eps = 1e-5f, momentum = 0.1f;
  std::string str() const;
};

// Throws rf::Error unless N, C, HW >= 1, eps > 0 and momentum in [0, 1]. Every op below calls it; train-mode
// forward also refuses N*HW == 1 (no unbiased variance), as PyTorch does.
void check_batchnorm_shape(const BatchNormShape& s);

// save_mean, save_invstd: (C), kept for backward. running_mean/var updated in place (may be nullptr).
template <typename T>
void batchnorm_forward_train_ref(const BatchNormShape& s, const T* x, const T* gamma, const T* beta, T* y,
                                 T* save_mean, T* save_invstd, T* running_mean, T* running_var);
template <typename T>
void batchnorm_forward_eval_ref(const BatchNormShape& s, const T* x, const T* gamma, const T* beta,
                                const T* running_mean, const T* running_var, T* y);
// Train-mode backward: dx, dgamma, dbeta overwritten.
template <typename T>
void batchnorm_backward_ref(const BatchNormShape& s, const T* x, const T* dy, const T* gamma, const T* save_mean,
                            const T* save_invstd, T* dx, T* dgamma, T* dbeta);

void batchnorm_forward_train_cpu(const BatchNormShape& s, const float* x, const float* gamma, const float* beta,
                                 float* y, float* save_mean, float* save_invstd, float* running_mean,
                                 float* running_var);
void batchnorm_forward_eval_cpu(const BatchNormShape& s, const float* x, const float* gamma, const float* beta,
                                const float* running_mean, const float* running_var, float* y);
void batchnorm_backward_cpu(const BatchNormShape& s, const float* x, const float* dy, const float* gamma,
                            const float* save_mean, const float* save_invstd, float* dx, float* dgamma,
                            float* dbeta);

// The train-mode ops with what follows BN in a residual block fused into their passes (fewer passes over the
// activations; tests/ops/test_batchnorm.cpp checks them bit for bit against the unfused _cpu ops):
// forward: y = act(bn(x) (+ res)): batchnorm_forward_train_cpu, then add_forward_cpu(bn(x), res, relu) or
// relu_forward_cpu. res may be null; save_scale (C, may be null) gets the per-channel scale of the output pass,
// float(gamma * invstd), which the backward below needs to recompute the ReLU mask.
void batchnorm_forward_train_act_cpu(const BatchNormShape& s, const float* x, const float* gamma, const float* beta,
                                     const float* res, bool relu, float* y, float* save_mean, float* save_invstd,
                                     float* save_scale, float* running_mean, float* running_var);
// Backward through the ReLU fused without residual (relu_backward_cpu, then batchnorm_backward_cpu): dy masked by
// [y > 0], y's value recomputed from x, beta and the forward's save_mean and save_scale (the forward's own float
// expression: the same mask, without reading y). beta: the values the forward used.
void batchnorm_backward_relu_cpu(const BatchNormShape& s, const float* x, const float* dy, const float* gamma,
                                 const float* beta, const float* save_mean, const float* save_invstd,
                                 const float* save_scale, float* dx, float* dgamma, float* dbeta);

// Synchronised BN (data-parallel training, --sync-bn): the batch is spread over processes and `sum` adds a
// per-channel double buffer over all of them in place (host/core/comm.h allreduce_sum). Forward: mean and biased
// variance over the global batch (two sums: the mean, then the squares about it), running stats updated with the
// global count. Backward: dx from the global sums of dy and dy (x - mean); dgamma, dbeta are this
// process's share (the trainer's gradient all-reduce adds the shares). With one process these equal the plain
// ops up to float summation order. Checked by tests/training/mpi_train.sh (2 ranks against 1).
using BnSum = std::function<void(double*, int64_t)>;
void batchnorm_forward_train_sync_cpu(const BatchNormShape& s, const float* x, const float* gamma, const float* beta,
                                      float* y, float* save_mean, float* save_invstd, float* running_mean,
                                      float* running_var, const BnSum& sum);
void batchnorm_backward_sync_cpu(const BatchNormShape& s, const float* x, const float* dy, const float* gamma,
                                 const float* save_mean, const float* save_invstd, float* dx, float* dgamma,
                                 float* dbeta, const BnSum& sum);

// The eval-mode scale per channel, gamma / sqrt(var + eps) in double rounded to float: what every eval path
// below (and conv2d_forward_epilogue_cpu's callers) multiplies by, so that they share their bits.
std::vector<float> batchnorm_eval_scale(const BatchNormShape& s, const float* gamma, const float* running_var);

// Eval-mode epilogue of a conv, fused into one pass (inference only):
//   y[n, o] = act((z[n, c] - mean[o]) * scale[o] + beta[o] (+ res[n, o])),  scale = gamma / sqrt(var + eps)
// where o = c when shuffle_groups <= 1, else o is c's position after a channel shuffle with that many groups
// (o = (c % G) * (C / G) + c / G), res may be nullptr and act is ReLU when relu is true. Equals the unfused
// channel_shuffle -> batchnorm_forward_eval -> add -> relu sequence of the _cpu ops bit for bit (tested).
void batchnorm_eval_epilogue_cpu(const BatchNormShape& s, const float* z, int shuffle_groups, const float* gamma,
                                 const float* beta, const float* running_mean, const float* running_var,
                                 const float* res, bool relu, float* y);
// The same epilogue (no shuffle) on z in oneDNN's nChw16c layout (host/ops/conv.h's conv2d_forward_nc16_cpu;
// C a multiple of 16): y in nChw16c when y_nc16 (the next conv's input), else NCHW; res (may be null) NCHW.
// The same expression per value: the bits of batchnorm_eval_epilogue_cpu on z reordered to NCHW (tested).
void batchnorm_eval_epilogue_nc16_cpu(const BatchNormShape& s, const float* z, const float* gamma,
                                      const float* beta, const float* running_mean, const float* running_var,
                                      const float* res, bool relu, float* y, bool y_nc16);

}  // namespace rf
