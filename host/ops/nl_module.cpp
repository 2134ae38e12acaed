// The NL module op (host/ops/nl_module.h): its shape, the reference composition of the reference ops and the
// fast path on the fast ops, in the order host/models/layers.cpp's NLModule always ran them (so the models'
// outputs and trained packages keep their bits). Checked by tests/ops/test_nl_module.cpp; the CUDA op
// (cuda/ops/nl_module.cu) by tests/gpu/test_nl_module_gpu.cpp against nl_module_forward_ref.
#include "host/ops/nl_module.h"

#include <algorithm>
#include <numeric>
#include <optional>
#include <vector>

#include "host/core/check.h"
#include "host/core/parallel.h"
#include "host/core/profile.h"
#include "host/ops/elementwise.h"
#include "host/ops/pool.h"
#include "host/ops/shuffle.h"

namespace rf {

SeededConvSpec NLModuleShape::seeded_spec() const {
  SeededConvSpec sp;
  sp.seed = seed;
  sp.C_in = C_in;
  sp.C_out = C_nl;
  sp.k = 3, sp.stride = stride, sp.pad = 1;
  sp.groups = std::gcd(C_in, C_nl);
  sp.relu = true;
  return sp;
}

Conv2dShape NLModuleShape::pointwise_shape() const {
  Conv2dShape s;
  s.N = N, s.C = C_cat(), s.H = OH(), s.W = OW(), s.K = C_out, s.k = 1, s.stride = 1, s.pad = 0, s.groups = gpw;
  return s;
}

void NLModuleShape::validate() const {
  RF_CHECK(N >= 1 && H >= 1 && W >= 1, "{}: sizes must be positive", str());
  RF_CHECK(C_in >= 5, "{}: C_in={} but the mixed pool needs at least 5 channels", str(), C_in);
  RF_CHECK(C_nl >= 1 && C_out >= 1, "{}: C_nl and C_out must be >= 1", str());
  RF_CHECK(stride >= 1, "{}: stride={} must be >= 1", str(), stride);
  RF_CHECK(gpw >= 1 && C_cat() % gpw == 0, "{}: C_cat={} is not a multiple of gpw={}", str(), C_cat(), gpw);
  RF_CHECK(C_out % gpw == 0, "{}: C_out={} is not a multiple of gpw={}", str(), C_out, gpw);
}

std::string NLModuleShape::str() const {
  return fmt::format("nl_module(N={},C_in={},H={},W={},C_out={},s={},C_nl={},gpw={}{},seed={})", N, C_in, H, W, C_out,
                     stride, C_nl, gpw, shuffle ? ",shuffle" : "", seed);
}

namespace {
// The pools of branches b and c, writing their slices of cat (batch stride ns).
Pool2dShape max_pool_shape(const NLModuleShape& s, int64_t ns) { return {s.N, s.C_in, s.H, s.W, 3, s.stride, 1, ns}; }
MixedPoolShape mixed_pool_shape(const NLModuleShape& s, int64_t ns) { return {s.N, s.C_in, s.H, s.W, s.stride, ns}; }
}  // namespace

// ---- reference ---------------------------------------------------------------------------------------------

template <typename T>
void nl_module_forward_ref(const NLModuleShape& s, const T* x, const float* w_seeded, const T* w_pw, const T* b_pw,
                           T* cat, T* y) {
  s.validate();
  const int64_t plane = int64_t(s.OH()) * s.OW(), ns = int64_t(s.C_cat()) * plane;
  seeded_conv_forward_ref<T>(s.seeded_spec(), s.N, s.H, s.W, x, w_seeded, cat, ns);
  max_pool2d_forward_ref<T>(max_pool_shape(s, ns), x, cat + s.C_nl * plane);
  mixed_avg_pool_forward_ref<T>(mixed_pool_shape(s, ns), x, cat + (s.C_nl + s.C_in) * plane);
  std::vector<T> z(s.shuffle ? size_t(s.out_numel()) : 0);
  conv2d_forward_ref<T>(s.pointwise_shape(), cat, w_pw, b_pw, s.shuffle ? z.data() : y);
  if (s.shuffle) channel_shuffle_forward_ref<T>(s.N, s.C_out, int(plane), s.gpw, z.data(), y);
}

template <typename T>
void nl_module_backward_ref(const NLModuleShape& s, const T* x, const T* cat, const T* dy, const float* w_seeded,
                            const T* w_pw, T* dx, T* dw_pw, T* db_pw) {
  s.validate();
  const int64_t plane = int64_t(s.OH()) * s.OW(), ns = int64_t(s.C_cat()) * plane;
  const int64_t nx = int64_t(s.N) * s.C_in * s.H * s.W;
  std::vector<T> dz(s.shuffle ? size_t(s.out_numel()) : 0), dcat(static_cast<size_t>(s.cat_numel())),
      tmp(static_cast<size_t>(nx));
  if (s.shuffle) {
    channel_shuffle_backward_ref<T>(s.N, s.C_out, int(plane), s.gpw, dy, dz.data());
    dy = dz.data();
  }
  const Conv2dShape ps = s.pointwise_shape();
  conv2d_backward_data_ref<T>(ps, dy, w_pw, dcat.data());
  conv2d_backward_weight_ref<T>(ps, cat, dy, dw_pw, db_pw);
  seeded_conv_backward_data_ref<T>(s.seeded_spec(), s.N, s.H, s.W, cat, dcat.data(), w_seeded, dx, ns);
  max_pool2d_backward_ref<T>(max_pool_shape(s, ns), x, dcat.data() + s.C_nl * plane, tmp.data());
  add_forward_ref<T>(nx, dx, tmp.data(), dx, false);
  mixed_avg_pool_backward_ref<T>(mixed_pool_shape(s, ns), dcat.data() + (s.C_nl + s.C_in) * plane, tmp.data());
  add_forward_ref<T>(nx, dx, tmp.data(), dx, false);
}

#define RF_NL_MODULE_INSTANTIATE(T)                                                                               \
  template void nl_module_forward_ref<T>(const NLModuleShape&, const T*, const float*, const T*, const T*, T*, T*); \
  template void nl_module_backward_ref<T>(const NLModuleShape&, const T*, const T*, const T*, const float*,        \
                                          const T*, T*, T*, T*);
RF_NL_MODULE_INSTANTIATE(float)
RF_NL_MODULE_INSTANTIATE(double)
#undef RF_NL_MODULE_INSTANTIATE

// ---- fast path ---------------------------------------------------------------------------------------------

void nl_module_branches_forward_cpu(const NLModuleShape& s, const float* x, const float* w_seeded, float* cat) {
  s.validate();
  const int64_t plane = int64_t(s.OH()) * s.OW(), ns = int64_t(s.C_cat()) * plane;
  {
    RF_PROFILE("NL seeded conv");
    seeded_conv_forward_cpu(s.seeded_spec(), s.N, s.H, s.W, x, w_seeded, cat, ns);
  }
  // Both pools in one pass over x (bit-identical to max_pool2d_forward_cpu + mixed_avg_pool_forward_cpu).
  RF_PROFILE("NL pools (max + mixed avg)");
  nl_pools_forward_cpu(max_pool_shape(s, ns), mixed_pool_shape(s, ns), x, cat + s.C_nl * plane,
                       cat + (s.C_nl + s.C_in) * plane);
}

bool nl_module_folds_shuffle(const NLModuleShape& s) {
  return s.shuffle && conv1x1_folds_shuffle(s.pointwise_shape());
}

void nl_module_forward_cpu(const NLModuleShape& s, const float* x, const float* w_seeded, const float* w_pw,
                           const float* b_pw, float* cat, float* y, float* z) {
  s.validate();
  const bool fold = nl_module_folds_shuffle(s);
  RF_CHECK(!s.shuffle || fold || z, "{}: nl_module_forward_cpu needs the scratch z when the shuffle is on", s.str());
  const int64_t plane = int64_t(s.OH()) * s.OW();
  nl_module_branches_forward_cpu(s, x, w_seeded, cat);
  {
    RF_PROFILE("NL grouped 1x1 conv");
    if (fold) conv2d_forward_shuffled_cpu(s.pointwise_shape(), cat, w_pw, b_pw, y);
    else conv2d_forward_cpu(s.pointwise_shape(), cat, w_pw, b_pw, s.shuffle ? z : y);
  }
  RF_PROFILE("NL shuffle");
  if (s.shuffle && !fold) channel_shuffle_forward_cpu(s.N, s.C_out, int(plane), s.gpw, z, y);
}

bool nl_module_epilogue_applies(const NLModuleShape& s) { return conv1x1_epilogue_applies(s.pointwise_shape()); }

// At batch 1 the three ops here are three teams (seeded conv, pools, 1x1), each split statically and ending in a
// barrier; the pools scale 1.3x on 2 threads, the 1x1 1.9x. Three ways to run the module as one team were built,
// checked bit for bit and dropped (NL-dw / NL-512 forward at batch 1, 2 threads, in the VM's fast periods):
// - each thread takes whole 1x1 groups and first computes their slices of cat itself, no barrier: 0.96x / 1.0x
//   (the threads' slices differ in cost: the mixed pool's planes cost 2k + a constant); in the slow periods, when
//   the second vCPU answers late, 1.25x / 1.6x;
// - the same as tasks, a group's 1x1 taken as soon as its pieces are done: 0.95x / 0.87x (the last group's 1x1
//   leaves the other thread idle; the seeded conv in 16-channel pieces runs slower);
// - the branches in pieces handed out dearest first, one barrier, then the 1x1 groups: 1.01x / 1.02x.
void nl_module_forward_epilogue_cpu(const NLModuleShape& s, const float* x, const float* w_seeded, const float* w_pw,
                                    const float* b_pw, const ConvEpilogue& ep, float* cat, float* y) {
  s.validate();
  nl_module_branches_forward_cpu(s, x, w_seeded, cat);
  RF_PROFILE("NL grouped 1x1 conv (+shuffle, BN epilogue)");
  conv2d_forward_epilogue_cpu(s.pointwise_shape(), cat, w_pw, b_pw, s.shuffle, ep, y);
}

namespace {
// nl_module_backward_cpu on one range of samples (s.N of them); dW accumulates into acc, or, without it, the
// 1x1 conv's weight gradient is computed here on all of s.N.
void backward_range(const NLModuleShape& s, const float* x, const float* dy, const float* w_seeded,
                    const float* w_pw, float* dx, float* dw_pw, float* db_pw, float* cat, uint8_t* mask,
                    float* dz, const float* res, Conv1x1WeightGrad* acc, int n0) {
  const int64_t plane = int64_t(s.OH()) * s.OW(), ns = int64_t(s.C_cat()) * plane, na = int64_t(s.C_nl) * plane;
  {
    // What keeping only x costs. The ops' own teams over the range: the threads taking whole samples instead
    // (as the forward does) ran at 0.92x on NL-dw's 5-sample ranges at 32x32 and 0.87-1.21x on the others.
    RF_PROFILE("NL backward: rebuild branches");
    nl_module_branches_forward_cpu(s, x, w_seeded, cat);
  }
  const bool fold = nl_module_folds_shuffle(s);  // else dy is unshuffled into dz first
  if (s.shuffle && !fold) {
    RF_PROFILE("NL shuffle");
    channel_shuffle_backward_cpu(s.N, s.C_out, int(plane), s.gpw, dy, dz);
    dy = dz;
  }
  const Conv2dShape ps = s.pointwise_shape();
  {
    RF_PROFILE("NL grouped 1x1 conv: weight grad");
    if (acc) {
      acc->add(n0, n0 + s.N, cat, dy);
    } else if (fold) {  // what conv2d_backward_weight_cpu runs on gemm_1x1, reading dy shuffled
      Conv1x1WeightGrad wg(ps, true);
      wg.add(0, s.N, cat, dy);
      wg.finish(dw_pw, db_pw);
    } else {
      conv2d_backward_weight_cpu(ps, cat, dy, dw_pw, db_pw);
    }
  }
  // Branch a's ReLU mask, then dcat over cat. Masking dcat's slice a here and running the seeded conv's
  // backward without its ReLU gives the same bits: its kernels mask with the same select (y > 0 ? dy : 0).
  float* dcat = cat;
  if (conv1x1_backward_data_inplace_applies(ps)) {  // the mask taken and applied inside the kernel's items
    RF_PROFILE("NL grouped 1x1 conv: input grad (+ReLU mask)");
    conv2d_backward_data_inplace_relu_cpu(ps, dy, w_pw, dcat, s.C_nl, fold);
  } else {
    RF_PROFILE("NL grouped 1x1 conv: input grad (+ReLU mask)");
#pragma omp parallel for schedule(static) if (worth_threading(s.N * na))
    for (int n = 0; n < s.N; ++n)
      for (int64_t i = 0; i < na; ++i) mask[n * na + i] = cat[n * ns + i] > 0;
    if (fold) conv2d_backward_data_shuffled_cpu(ps, dy, w_pw, dcat);
    else conv2d_backward_data_cpu(ps, dy, w_pw, dcat);
#pragma omp parallel for schedule(static) if (worth_threading(s.N * na))
    for (int n = 0; n < s.N; ++n)
      for (int64_t i = 0; i < na; ++i) dcat[n * ns + i] = mask[n * na + i] ? dcat[n * ns + i] : 0.f;
  }
  SeededConvSpec sa = s.seeded_spec();
  sa.relu = false;
  {
    RF_PROFILE("NL seeded conv: input grad");
    seeded_conv_backward_data_cpu(sa, s.N, s.H, s.W, nullptr, dcat, w_seeded, dx, ns);
  }
  // Both pools' input gradients added into dx in one pass: the bits of max_pool2d_backward_cpu into tmp, added
  // to dx (add_forward_cpu), then mixed_avg_pool_backward_cpu likewise, as the module ran them; then res.
  RF_PROFILE("NL pools: input grad");
  nl_pools_backward_cpu(max_pool_shape(s, ns), mixed_pool_shape(s, ns), x, dcat + s.C_nl * plane,
                        dcat + (s.C_nl + s.C_in) * plane, dx, res);
}
}  // namespace

int nl_module_backward_chunk(const NLModuleShape& s, int64_t max_cat_bytes) {
  s.validate();
  const int64_t per_sample = int64_t(s.C_cat()) * s.OH() * s.OW() * int64_t(sizeof(float));
  if (per_sample * s.N <= max_cat_bytes || !Conv1x1WeightGrad::applies(s.pointwise_shape())) return s.N;
  return int(std::clamp<int64_t>(max_cat_bytes / per_sample, 1, s.N));
}

void nl_module_backward_cpu(const NLModuleShape& s, int chunk, const float* x, const float* dy,
                            const float* w_seeded, const float* w_pw, float* dx, float* dw_pw, float* db_pw,
                            float* cat, uint8_t* mask, float* dz, const float* res) {
  s.validate();
  RF_CHECK(!s.shuffle || nl_module_folds_shuffle(s) || dz,
           "{}: nl_module_backward_cpu needs the scratch dz when the shuffle is on", s.str());
  RF_CHECK(chunk >= 1 && chunk <= s.N, "{}: chunk={} must be in 1..N", s.str(), chunk);
  const Conv2dShape ps = s.pointwise_shape();
  RF_CHECK(chunk == s.N || Conv1x1WeightGrad::applies(ps),
           "{}: chunk={} < N but the 1x1 weight gradient has no range-by-range path here", s.str(), chunk);
  std::optional<Conv1x1WeightGrad> acc;
  if (chunk < s.N) acc.emplace(ps, nl_module_folds_shuffle(s));
  const int64_t per_x = int64_t(s.C_in) * s.H * s.W, per_y = int64_t(s.C_out) * s.OH() * s.OW();
  for (int n0 = 0; n0 < s.N; n0 += chunk) {
    NLModuleShape r = s;
    r.N = std::min(chunk, s.N - n0);
    backward_range(r, x + n0 * per_x, dy + n0 * per_y, w_seeded, w_pw, dx + n0 * per_x, dw_pw, db_pw, cat, mask,
                   dz, res ? res + n0 * per_x : nullptr, acc ? &*acc : nullptr, n0);
  }
  if (acc) acc->finish(dw_pw, db_pw);
}

}  // namespace rf
