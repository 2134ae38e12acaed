// conv2d's 1x1 kernels (ConvAlgo::gemm_1x1): 1x1 stride-1 convs as one small GEMM per (sample, group), with our
// register-blocked micro-kernels or oneDNN's sgemm per call. Checked by tests/ops/test_conv.cpp (every
// algorithm against the reference; the 1x1 shapes of the NL modules among the sweep).
//
// A 1x1 stride-1 conv is y_g[n] (Kg x HW) = w_g (Kg x Cg) * x_g[n] (Cg x HW) in plain NCHW, no im2col; the
// input gradient is w_g^T * dy_g[n], the weight gradient sum_n dy_g[n] * x_g[n]^T. We loop over (sample,
// group) in our OpenMP region with our own register-blocked kernels (oneDNN's sgemm, sequential inside the
// region, for the weight gradient below 32x32). The NL modules' grouped 1x1 convs (Kg = 16..128, Cg =
// 48..384, HW = 16..1024) are small per group: oneDNN's gemm convolution reached 10-30 GMAC/s on 2 cores
// for the weight gradient at 32x32, and its blocked 1x1 kernels lose their speed to the reorders.
// With the NL module's channel shuffle folded in (conv2d_forward_shuffled_cpu), each (sample, group) item's rows
// are computed in a buffer in cache and copied to their shuffled planes, and the backward gathers dy's rows
// from them: the separate shuffle passes over the whole tensor (and their buffers) go, the arithmetic stays
// (tests/ops/test_conv.cpp: bit for bit against conv + shuffle).

#include <omp.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <type_traits>
#include <utility>
#include <oneapi/dnnl/dnnl.hpp>
#include <vector>

#include "host/core/check.h"
#include "host/core/simd.h"
#include "host/ops/conv_kernels.h"

namespace rf {
namespace conv_detail {
namespace {

using namespace simd;

void sgemm(char ta, char tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
           int64_t ldb, float beta, float* C, int64_t ldc) {
  const dnnl_status_t st = dnnl_sgemm(ta, tb, M, N, K, 1.f, A, lda, B, ldb, beta, C, ldc);
  RF_CHECK(st == dnnl_success, "oneDNN sgemm({}x{}x{}) failed with status {}", M, N, K, int(st));
}

// C (MR x NV vectors of pixels) = [relu](bias + A (MR x K) * B (K x pixels, row stride ldb)), A[m][k] at
// A[m*am + k*ak] (the weights, or their transpose for the input gradient): MR*NV accumulators; per k, NV
// loads of B and MR broadcasts of A feed MR*NV FMAs.
// pf: the next 8 rows of A (rows am apart, ak = 1), fetched a line per row every 16 k while this block runs. At
// 4x4 a weight is used for 16 pixels only, and at batch 1 the NL modules' 1x1 weights (4.4 MB for NL-dw) come
// from DRAM: with the rows of the next block in flight, a 4x4 forward (C = 1536, K = 512, g = 4, weights cycling
// through 96 MB) took 85-98 us instead of 104-134 (1 thread); from L2 the same time as without.
template <int MR, int NV>
void mm_block(int K, const float* A, int64_t am, int64_t ak, const float* B, int64_t ldb, float* C, int64_t ldc,
              const float* bias, bool relu, const float* pf) {
  Lanes acc[MR][NV];
  for (int m = 0; m < MR; ++m)
    for (int v = 0; v < NV; ++v) acc[m][v] = bias ? vset1(bias[m]) : vzero();
  for (int k = 0; k < K; ++k) {
    Lanes bv[NV];
    for (int v = 0; v < NV; ++v) bv[v] = vload(B + k * ldb + v * kLanes);
    if (pf && (k & 15) == 0)
      for (int m = 0; m < 8; ++m) __builtin_prefetch(pf + m * am + k, 0, 3);
    for (int m = 0; m < MR; ++m) {
      const Lanes a = vset1(A[m * am + k * ak]);
      for (int v = 0; v < NV; ++v) acc[m][v] = vfma(a, bv[v], acc[m][v]);
    }
  }
  for (int m = 0; m < MR; ++m)
    for (int v = 0; v < NV; ++v) vstore(C + m * ldc + v * kLanes, relu ? vrelu(acc[m][v]) : acc[m][v]);
}

template <int NV>
void mm_block_n(int mr, int K, const float* A, int64_t am, int64_t ak, const float* B, int64_t ldb, float* C,
                int64_t ldc, const float* bias, bool relu, const float* pf = nullptr) {
  switch (mr) {
    case 1: return mm_block<1, NV>(K, A, am, ak, B, ldb, C, ldc, bias, relu, pf);
    case 2: return mm_block<2, NV>(K, A, am, ak, B, ldb, C, ldc, bias, relu, pf);
    case 3: return mm_block<3, NV>(K, A, am, ak, B, ldb, C, ldc, bias, relu, pf);
    case 4: return mm_block<4, NV>(K, A, am, ak, B, ldb, C, ldc, bias, relu, pf);
    case 5: return mm_block<5, NV>(K, A, am, ak, B, ldb, C, ldc, bias, relu, pf);
    case 6: return mm_block<6, NV>(K, A, am, ak, B, ldb, C, ldc, bias, relu, pf);
    case 7: return mm_block<7, NV>(K, A, am, ak, B, ldb, C, ldc, bias, relu, pf);
    default: return mm_block<8, NV>(K, A, am, ak, B, ldb, C, ldc, bias, relu, pf);
  }
}

// C (M x P, row stride ldc) = [relu](bias + A (M x K) * B (K x P)), bias per row or null, A as above.
// B's rows are HW floats apart (4 KB at 32x32): read in place, the K rows of a register block all fall into
// one L1 set, and K concurrent short streams defeat the prefetcher. So a chunk of pixels of all K rows is
// first copied row by row (long sequential runs) into a buffer whose row pitch is not a multiple of 1 KB,
// and the register blocks read it from L1/L2. Pixel blocks outer: a block of B is reused by all row blocks.
void mm_rows(int M, int K, int64_t P, const float* A, int64_t am, int64_t ak, const float* B, int64_t ldb, float* C,
             int64_t ldc, const float* bias, bool relu) {
  constexpr int MR = 8, PB = 2 * kLanes;
  const int64_t chunk = std::clamp<int64_t>((65536 / std::max(K, 1)) / PB * PB, PB, round_up(P, PB));
  const int64_t pitch = chunk + 16;
  thread_local std::vector<float> buf;
  buf.resize(size_t(K) * pitch);
  for (int64_t c0 = 0; c0 < P; c0 += chunk) {
    const int64_t cn = std::min(chunk, P - c0), full = cn / PB * PB;
    for (int k = 0; k < K; ++k) copy_row(buf.data() + k * pitch, B + k * ldb + c0, int(full));
    for (int64_t p = 0; p < full; p += PB)
      for (int m = 0; m < M; m += MR)
        mm_block_n<2>(std::min(MR, M - m), K, A + m * am, am, ak, buf.data() + p, pitch, C + m * ldc + c0 + p, ldc,
                      bias ? bias + m : nullptr, relu);
    int64_t p = c0 + full;  // the chunk's last pixels (fewer than 2 vectors), from B in place
    for (; p + kLanes <= c0 + cn; p += kLanes)
      for (int m = 0; m < M; m += MR)
        mm_block_n<1>(std::min(MR, M - m), K, A + m * am, am, ak, B + p, ldb, C + m * ldc + p, ldc,
                      bias ? bias + m : nullptr, relu, ak == 1 && m + 2 * MR <= M ? A + (m + MR) * am : nullptr);
    for (; p < c0 + cn; ++p)
      for (int m = 0; m < M; ++m) {
        float acc = bias ? bias[m] : 0.f;
        for (int k = 0; k < K; ++k) acc += A[m * am + k * ak] * B[k * ldb + p];
        C[m * ldc + p] = relu ? std::max(acc, 0.f) : acc;
      }
  }
}

#if defined(__AVX512F__)
// The forward's chain kernel. oneDNN's sgemm (its AVX-512 kernel, beta 0) sums each element of C as one chain of
// FMAs over k from +0 while K <= 384 and splits K above (measured on the Zen 4 host: the same bits for K = 48..384,
// other bits at 512). Up to kChainMaxK the kernel below computes those chains and applies the bias, the ReLU or the
// eval epilogue to the accumulators as it stores them, where the sgemm path stored z and passed over it again:
// 1.02-1.15x that path on the NL modules' shapes (one thread, 8 x 2 vectors per register block; 8 x 3, 16 x 2
// and 16 x 1 were no faster or slower). It reads the K input rows in place (4 KB apart at 32x32: too many streams
// for the hardware prefetcher), so the first row block of each pixel block prefetches the rows two pixel blocks
// ahead: with the input in DRAM (the whole-batch calls of training and of one-thread eval), 1.0-1.24x the sgemm
// path, where without the prefetches it ran at 0.52-0.77x (the sgemm packs its input). Checked against oneDNN's
// bits by tests/ops/test_conv.cpp.
// From 8 output rows (channels per group) on: below, as in the dense heads' 1x1 convs with 2-5 rows, the blocks
// are too thin and it ran at 0.75-0.83x the sgemm (1 thread, 64x64 maps); the sgemm gives the same bits there.
constexpr int kChainMaxK = 384;
inline bool chain_applies(int M, int K, int64_t P) { return P > 16 && M >= 8 && K <= kChainMaxK; }

// Where output row o of one (sample, group) item goes, and what is applied on the way: the expressions of
// gemm1x1_forward's sgemm path, value for value (bn: epilogue_row's; else the bias, then std::max(v, 0) for ReLU).
struct ChainRow {
  float* dst;
  const float* res;  // the eval epilogue's residual plane, or null
  float bias, mean, scale, shift;
};
struct ChainOut {
  const ChainRow* rows;
  bool bias, bn, relu;
  template <typename T>
  T apply(const ChainRow& r, T v, const float* res) const {
    T zero{};
    if (!bn) {
      if (relu) v = v + splat<T>(r.bias), v = v < zero ? zero : v;  // std::max(row + bias, 0)
      else if (bias) v = v + splat<T>(r.bias);
      return v;
    }
    if (bias) v = v + splat<T>(r.bias);
    v = (v - splat<T>(r.mean)) * splat<T>(r.scale) + splat<T>(r.shift);
    if (res) v = v + load<T>(res);
    if (relu) v = v > zero ? v : zero;
    return v;
  }
  template <typename T>
  void store(int o, int64_t p, T v) const {
    const ChainRow& r = rows[o];
    v = apply(r, v, r.res ? r.res + p : nullptr);
    if constexpr (std::is_same_v<T, float>) r.dst[p] = v;
    else vstore(r.dst + p, v);
  }
  template <typename T>
  static T splat(float a) {
    if constexpr (std::is_same_v<T, float>) return a;
    else return vset1(a);
  }
  template <typename T>
  static T load(const float* p) {
    if constexpr (std::is_same_v<T, float>) return *p;
    else return vload(p);
  }
};

// Rows m0..m0+MR-1, NV vectors of pixels from p: acc = +0, then acc = fma(A[m][k], B[k][p], acc) for k = 0..K-1;
// prefetch: B's rows two blocks ahead (into L1; past a row's end, a harmless prefetch of the next row's start).
// pf: as mm_block's, the next 8 rows of A, while the first pixel block runs (8x8 from DRAM: 70-76 us, was 82-87).
template <int MR, int NV>
void chain_block(int K, const float* A, int64_t lda, const float* B, int64_t ldb, int m0, int64_t p,
                 const ChainOut& out, bool prefetch, const float* pf = nullptr) {
  Lanes acc[MR][NV];
  for (int m = 0; m < MR; ++m)
    for (int v = 0; v < NV; ++v) acc[m][v] = vzero();
  for (int k = 0; k < K; ++k) {
    Lanes b[NV];
    const float* bk = B + k * ldb + p;
    for (int v = 0; v < NV; ++v) b[v] = vload(bk + v * kLanes);
    if (prefetch)
      for (int v = 0; v < NV; ++v) _mm_prefetch(reinterpret_cast<const char*>(bk + (2 * NV + v) * kLanes), _MM_HINT_T0);
    if (pf && (k & 15) == 0)
      for (int m = 0; m < 8; ++m) _mm_prefetch(reinterpret_cast<const char*>(pf + m * lda + k), _MM_HINT_T0);
    for (int m = 0; m < MR; ++m) {
      const Lanes a = vset1(A[(m0 + m) * lda + k]);
      for (int v = 0; v < NV; ++v) acc[m][v] = vfma(a, b[v], acc[m][v]);
    }
  }
  for (int m = 0; m < MR; ++m)
    for (int v = 0; v < NV; ++v) out.store(m0 + m, p + v * kLanes, acc[m][v]);
}

// The last mr < 8 rows of a pixel block.
template <int NV>
void chain_block_tail(int mr, int K, const float* A, int64_t lda, const float* B, int64_t ldb, int m0, int64_t p,
                      const ChainOut& out, bool prefetch) {
  switch (mr) {
    case 1: return chain_block<1, NV>(K, A, lda, B, ldb, m0, p, out, prefetch);
    case 2: return chain_block<2, NV>(K, A, lda, B, ldb, m0, p, out, prefetch);
    case 3: return chain_block<3, NV>(K, A, lda, B, ldb, m0, p, out, prefetch);
    case 4: return chain_block<4, NV>(K, A, lda, B, ldb, m0, p, out, prefetch);
    case 5: return chain_block<5, NV>(K, A, lda, B, ldb, m0, p, out, prefetch);
    case 6: return chain_block<6, NV>(K, A, lda, B, ldb, m0, p, out, prefetch);
    default: return chain_block<7, NV>(K, A, lda, B, ldb, m0, p, out, prefetch);
  }
}

// C (M x P) = A (M x K, row stride lda) * B (K x P, row stride ldb) as chains, leaving through out. Blocks of 8
// rows (then the last M % 8) x 2 vectors (then 1), pixel blocks outer; the pixels past the last vector as scalar
// chains (std::fma: the same rounding per value).
void chain_rows(int M, int K, int64_t P, const float* A, int64_t lda, const float* B, int64_t ldb,
                const ChainOut& out) {
  const int M8 = M / 8 * 8;
  int64_t p = 0;
  for (; p + 2 * kLanes <= P; p += 2 * kLanes) {
    for (int m = 0; m < M8; m += 8)
      chain_block<8, 2>(K, A, lda, B, ldb, m, p, out, m == 0, p == 0 && m + 16 <= M8 ? A + (m + 8) * lda : nullptr);
    if (M8 < M) chain_block_tail<2>(M - M8, K, A, lda, B, ldb, M8, p, out, M8 == 0);
  }
  for (; p + kLanes <= P; p += kLanes) {
    for (int m = 0; m < M8; m += 8) chain_block<8, 1>(K, A, lda, B, ldb, m, p, out, false);
    if (M8 < M) chain_block_tail<1>(M - M8, K, A, lda, B, ldb, M8, p, out, false);
  }
  for (int m = 0; m < M; ++m)
    for (int64_t q = p; q < P; ++q) {
      float acc = 0.f;
      for (int k = 0; k < K; ++k) acc = std::fma(A[m * lda + k], B[k * ldb + q], acc);
      out.store(m, q, acc);
    }
}
#endif

// D[m][n] += sum_p A[m][p] * B[n][p] (m < M, n < N, p < P): the weight gradient of one (sample, group) as dot
// products along the pixels. Each D element's sum is fixed: 16-lane vector partial sums over the pixel vectors
// in order, then the lanes added in order from 0 (vhsum), then the pixels of a ragged tail, then added to D.
// How it is computed (measured at 32x32, Kg = 16, Cg = 48, one thread of the Zen 4 host: 15 GMAC/s before):
// - register blocks of MR x NR accumulators (4 x 6: 24 of AVX-512's 32), MR + NR row loads per MR*NR FMAs;
// - the pixels in chunks of kChunkVec vectors, and per chunk the B blocks outer, the A blocks inner; the
//   accumulators go to a buffer between chunks (the same values: storing a vector does not round it). Chunks of
//   16 vectors kept a chunk's 6 B rows and M A rows in L1 (22 KB at M = 16); whole 32x32 rows (64 vectors, the A
//   rows then come from L2) measured faster on the same host later: 1.15-1.3x the weight gradient at 32x32, Kg =
//   16, Cg = 48 and 160 (2 threads, N = 64 and the NL backward's N = 5); in the training steps (three
//   alternations) all 1x1 weight gradients 99-101 -> 83-94 ms per NL-512 step, 47-51 -> 44-47 per NL-dw step;
// - the lane sums of 16 accumulators at a time by a register transpose and 16 vector adds (AVX-512), the
//   order of vhsum's scalar chain in every lane.
constexpr int64_t kChunkVec = 64;

float* align_up(float* p, uintptr_t bytes) {
  return reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(p) + bytes - 1) / bytes * bytes);
}

template <int MR, int NR>
void dots_block_acc(const float* A, int64_t lda, const float* B, int64_t ldb, int64_t nvec, float* acc,
                    int64_t accm, bool first) {
  Lanes c[MR][NR];
  for (int m = 0; m < MR; ++m)
    for (int n = 0; n < NR; ++n) c[m][n] = first ? vzero() : vload(acc + m * accm + n * kLanes);
  for (int64_t v = 0; v < nvec; ++v) {
    const int64_t p = v * kLanes;
    Lanes a[MR];
    for (int m = 0; m < MR; ++m) a[m] = vload(A + m * lda + p);
    for (int n = 0; n < NR; ++n) {
      Lanes b = vload(B + n * ldb + p);
#if defined(__GNUC__) && defined(__AVX512F__)
      asm("" : "+v"(b));  // b in a register: GCC otherwise folds its load into each of the MR FMAs (MR loads)
#endif
      for (int m = 0; m < MR; ++m) c[m][n] = vfma(a[m], b, c[m][n]);
    }
  }
  for (int m = 0; m < MR; ++m)
    for (int n = 0; n < NR; ++n) vstore(acc + m * accm + n * kLanes, c[m][n]);
}

using DotsBlockFn = void (*)(const float*, int64_t, const float*, int64_t, int64_t, float*, int64_t, bool);
template <int MR, int... NR>
constexpr std::array<DotsBlockFn, sizeof...(NR)> dots_row_fns(std::integer_sequence<int, NR...>) {
  return {&dots_block_acc<MR, NR + 1>...};
}
constexpr int kDotsMR = 4, kDotsNR = 6;
const std::array<std::array<DotsBlockFn, kDotsNR>, kDotsMR> kDotsBlock = {
    dots_row_fns<1>(std::make_integer_sequence<int, kDotsNR>()), dots_row_fns<2>(std::make_integer_sequence<int, kDotsNR>()),
    dots_row_fns<3>(std::make_integer_sequence<int, kDotsNR>()), dots_row_fns<4>(std::make_integer_sequence<int, kDotsNR>())};

// D (M x N, row stride ldd) += A (M x P) * B (N x P)^T
void dots(int M, int N, const float* A, int64_t lda, const float* B, int64_t ldb, int64_t P, float* D, int64_t ldd) {
  const int64_t nvec = P / kLanes, accm = int64_t(N) * kLanes;
  thread_local std::vector<float> accbuf;
  accbuf.resize(size_t(M) * size_t(accm));
  float* acc = accbuf.data();  // acc[(m * N + n) * kLanes + l]: lane l of D[m][n]'s vector partial sums
  if (nvec == 0) std::fill(accbuf.begin(), accbuf.end(), 0.f);
  for (int64_t v0 = 0; v0 < nvec; v0 += kChunkVec) {
    const int64_t nv = std::min(kChunkVec, nvec - v0), p0 = v0 * kLanes;
    for (int n = 0; n < N; n += kDotsNR) {
      const int nr = std::min(kDotsNR, N - n);
      for (int m = 0; m < M; m += kDotsMR) {
        const int mr = std::min(kDotsMR, M - m);
        kDotsBlock[mr - 1][nr - 1](A + m * lda + p0, lda, B + n * ldb + p0, ldb, nv, acc + m * accm + n * kLanes,
                                   accm, v0 == 0);
      }
    }
  }
  // t = vhsum(lanes) + the tail's products, added to D: 16 elements at a time where the lanes transpose.
  const int64_t total = int64_t(M) * N, ptail = nvec * kLanes;
  int m = 0, n = 0;  // element e = m * N + n, counted along
  auto finish = [&](float t) {
    for (int64_t q = ptail; q < P; ++q) t += A[m * lda + q] * B[n * ldb + q];
    D[m * ldd + n] += t;
    if (++n == N) n = 0, ++m;
  };
  int64_t e = 0;
  if constexpr (kLanes == 16) {
    for (; e + 16 <= total; e += 16) {
      Lanes r[16];
      for (int i = 0; i < 16; ++i) r[i] = vload(acc + (e + i) * kLanes);
      simd::transpose(r);  // r[i] lane j: lane i of element e + j
      Lanes sum = vzero();
      for (int i = 0; i < 16; ++i) sum = sum + r[i];  // vhsum's order: from 0, lane 0, 1, ... in every lane
      alignas(64) float t[16];
      vstore(t, sum);
      for (int j = 0; j < 16; ++j) finish(t[j]);
    }
  }
  for (; e < total; ++e) finish(vhsum(vload(acc + e * kLanes)));
}

// out[o] += (((0 + row(o)[0]) + row(o)[1]) + ...) + row(o)[P - 1] for o < R: each row's sum one sequential
// chain, as a scalar loop computes it. A chain of 1024 dependent adds per row made the bias gradient cost a
// quarter of the 1x1 weight gradient at 32x32; here 16 rows' chains run side by side, lane o for row o (each
// 16 x 16 block of the rows transposed in registers, then its 16 columns added in order): the same bits.
template <typename RowFn>
void row_sums(int R, int64_t P, const RowFn& row, float* out) {
  int o0 = 0;
  if constexpr (kLanes == 16) {
    for (; o0 + 16 <= R; o0 += 16) {
      const float* rp[16];
      for (int i = 0; i < 16; ++i) rp[i] = row(o0 + i);
      Lanes sum = vzero();
      int64_t p = 0;
      for (; p + 16 <= P; p += 16) {
        Lanes r[16];
        for (int i = 0; i < 16; ++i) r[i] = vload(rp[i] + p);
        simd::transpose(r);  // r[j] lane i: row o0 + i at column p + j
        for (int j = 0; j < 16; ++j) sum = sum + r[j];
      }
      alignas(64) float t[16];
      vstore(t, sum);
      for (int i = 0; i < 16; ++i) {
        for (int64_t q = p; q < P; ++q) t[i] += rp[i][q];
        out[o0 + i] += t[i];
      }
    }
  }
  for (int o = o0; o < R; ++o) {
    const float* d = row(o);
    float sum = 0;
    for (int64_t i = 0; i < P; ++i) sum += d[i];
    out[o] += sum;
  }
}

#if defined(__AVX512F__)
// The weight gradient's items at 64 < HW <= 256 (12x12 to 16x16), where the sgemm ('N', 'T', K = HW, beta 1) ran:
// the same bits, faster (figures at `outer` in Conv1x1WeightGrad::add). oneDNN's AVX-512 sgemm sums each element
// of such a C as one FMA chain over k from +0 and adds it to C once (checked against dnnl_sgemm, 1 thread, for
// K = 16, 64, 256, M = 16..128, N = 48..384; not so at K = 1024); here likewise: acc = fma over p in order from
// +0, then the running sum += acc. tests/ops/test_conv.cpp pins it against oneDNN's gemm convolution.
// fma is symmetric in its factors, so the blocks can broadcast x and load dy: dy_g's rows transposed once per
// item (dyT[p][o], Kg x HW floats, the smaller operand; the sgemm packs both), MR rows of x by NB vectors of o
// per block, MR * NB accumulators; per pixel NB loads and MR broadcasts feed MR * NB FMAs. The running sums of
// the thread's items of one group stay in accT[c][o] (my's [o][c] transposed, copied in and out exactly).
constexpr int kOuterAcc = 24;  // accumulators per block: 24 + NB loads + 1 broadcast of the 32 registers

template <int MR, int NB>
void outer_block(int HW, const float* x, const float* dyT, int Kg, float* accT) {
  Lanes acc[MR][NB];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NB; ++j) acc[i][j] = vzero();
  for (int p = 0; p < HW; ++p) {
    Lanes b[NB];
    for (int j = 0; j < NB; ++j) b[j] = vload(dyT + int64_t(p) * Kg + j * kLanes);
    for (int i = 0; i < MR; ++i) {
      const Lanes a = vset1(x[int64_t(i) * HW + p]);
      for (int j = 0; j < NB; ++j) acc[i][j] = vfma(a, b[j], acc[i][j]);
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NB; ++j) {
      float* t = accT + int64_t(i) * Kg + j * kLanes;
      vstore(t, vload(t) + acc[i][j]);
    }
}

using OuterBlockFn = void (*)(int, const float*, const float*, int, float*);
template <int NB, int... M>
constexpr std::array<OuterBlockFn, sizeof...(M)> outer_fns(std::integer_sequence<int, M...>) {
  return {&outer_block<M + 1, NB>...};
}
const auto kOuterBlock1 = outer_fns<1>(std::make_integer_sequence<int, kOuterAcc / 1>());
const auto kOuterBlock2 = outer_fns<2>(std::make_integer_sequence<int, kOuterAcc / 2>());
const auto kOuterBlock3 = outer_fns<3>(std::make_integer_sequence<int, kOuterAcc / 3>());
const auto kOuterBlock4 = outer_fns<4>(std::make_integer_sequence<int, kOuterAcc / 4>());

OuterBlockFn outer_block_fn(int mr, int nb) {  // mr <= kOuterAcc / nb
  switch (nb) {
    case 1: return kOuterBlock1[size_t(mr - 1)];
    case 2: return kOuterBlock2[size_t(mr - 1)];
    case 3: return kOuterBlock3[size_t(mr - 1)];
    default: return kOuterBlock4[size_t(mr - 1)];
  }
}

// accT (Cg x Kg) += (dy_g (Kg rows, row(o)) * x_g (Cg x HW)^T)^T, each element one chain; dyT: HW * Kg scratch.
template <typename RowFn>
void outer_item(int Kg, int Cg, int HW, const RowFn& row, const float* xg, float* dyT, float* accT) {
  for (int o0 = 0; o0 < Kg; o0 += kLanes)
    for (int p0 = 0; p0 < HW; p0 += kLanes) {
      Lanes r[kLanes];
      for (int i = 0; i < kLanes; ++i) r[i] = vload(row(o0 + i) + p0);
      simd::transpose(r);  // r[j] lane i: row o0 + i at pixel p0 + j
      for (int j = 0; j < kLanes; ++j) vstore(dyT + int64_t(p0 + j) * Kg + o0, r[j]);
    }
  const int nv = Kg / kLanes;
  for (int v0 = 0; v0 < nv; v0 += 4) {
    const int nb = std::min(4, nv - v0), mr_max = kOuterAcc / nb;
    for (int c0 = 0; c0 < Cg; c0 += mr_max)
      outer_block_fn(std::min(mr_max, Cg - c0), nb)(HW, xg + int64_t(c0) * HW, dyT + v0 * kLanes, Kg,
                                                    accT + int64_t(c0) * Kg + v0 * kLanes);
  }
}
#endif
}  // namespace

namespace {
// dst[i] = act(((z[i] (+ bias) - mean) * scale + shift) (+ res[i])) for output channel o: the expression of
// batchnorm_eval_epilogue_cpu on the conv's output z (+ bias, as the conv would have stored it), per value.
template <bool BIAS, bool RES, bool RELU>
void epilogue_row(const float* z, float bias, const float* res, float mean, float scale, float shift, float* dst,
                  int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    float v = BIAS ? z[i] + bias : z[i];
    v = (v - mean) * scale + shift;
    if (RES) v = v + res[i];
    if (RELU) v = v > 0.f ? v : 0.f;
    dst[i] = v;
  }
}
void epilogue_row(const ConvEpilogue& ep, int o, const float* z, const float* bias, const float* res, float* dst,
                  int64_t n) {
  const float m = ep.mean[o], k = ep.scale[o], t = ep.shift[o], b = bias ? *bias : 0.f;
  const int f = (bias ? 4 : 0) | (res ? 2 : 0) | (ep.relu ? 1 : 0);
  switch (f) {
    case 0: return epilogue_row<false, false, false>(z, b, res, m, k, t, dst, n);
    case 1: return epilogue_row<false, false, true>(z, b, res, m, k, t, dst, n);
    case 2: return epilogue_row<false, true, false>(z, b, res, m, k, t, dst, n);
    case 3: return epilogue_row<false, true, true>(z, b, res, m, k, t, dst, n);
    case 4: return epilogue_row<true, false, false>(z, b, res, m, k, t, dst, n);
    case 5: return epilogue_row<true, false, true>(z, b, res, m, k, t, dst, n);
    case 6: return epilogue_row<true, true, false>(z, b, res, m, k, t, dst, n);
    default: return epilogue_row<true, true, true>(z, b, res, m, k, t, dst, n);
  }
}
}  // namespace

void gemm1x1_forward(const Conv2dShape& s, const float* x, const float* w, const float* b, float* y, bool relu,
                     bool shuffled, const ConvEpilogue* ep) {
  RF_CHECK(!(ep && relu), "{}: a conv's own ReLU and an epilogue together", s.str());
  const int Cg = s.C / s.groups, Kg = s.K / s.groups;
  const int64_t HW = int64_t(s.H) * s.W, xs = s.C * HW, ys = s.y_batch_stride(), items = int64_t(s.N) * s.groups;
#pragma omp parallel if (parallel_worth(s))
  {
    // Shuffled: the group's Kg rows are computed here (in cache), then each goes to its plane of y.
#if defined(__AVX512F__)
    const bool chain = chain_applies(Kg, Cg, HW);  // the chain kernel writes the planes itself
    std::vector<ChainRow> rows(chain ? size_t(Kg) : 0);
#else
    const bool chain = false;
#endif
    std::vector<float> z(shuffled && !chain ? size_t(Kg) * HW : 0);
    // Items are whole (sample, group) pairs, 4 at batch 1: splitting them by pixel ranges for 2 threads (8 items)
    // ran at 0.75x (N = 1, 32x32, C = 192, K = 64, g = 4).
#pragma omp for schedule(dynamic)
    for (int64_t it = 0; it < items; ++it) {
      const int n = int(it / s.groups), g = int(it % s.groups);
      auto plane = [&](int o) { return n * ys + out_plane(g * Kg + o, s.groups, Kg, shuffled) * HW; };
      auto out_row = [&](int o) { return y + plane(o); };
      float* yg = shuffled ? z.data() : y + n * ys + int64_t(g) * Kg * HW;
      const float* wg = w + int64_t(g) * Kg * Cg;
      const float* xg = x + n * xs + int64_t(g) * Cg * HW;
      // Ours at 4x4 (1.1-1.4x sgemm; 1.1-1.4x at 8x8 too, 0.8-1.1x above); from 8x8 on the chain kernel or the
      // sgemm, where the dispatcher's forward has replaced oneDNN's gemm convolution with the same bits.
      if (HW <= 16) {
        mm_rows(Kg, Cg, HW, wg, Cg, 1, xg, HW, yg, HW, b ? b + g * Kg : nullptr, relu);
        if (ep) {  // the bias is in the sums already; the epilogue from the rows in cache (in place unshuffled)
          for (int o = 0; o < Kg; ++o) {
            const int c = out_plane(g * Kg + o, s.groups, Kg, shuffled);
            epilogue_row(*ep, c, yg + o * HW, nullptr, ep->res ? ep->res + plane(o) : nullptr, out_row(o), HW);
          }
        } else if (shuffled) {
          for (int o = 0; o < Kg; ++o) std::memcpy(out_row(o), yg + o * HW, sizeof(float) * size_t(HW));
        }
        continue;
      }
#if defined(__AVX512F__)
      if (chain) {  // the sgemm path's bits with no z (the chain kernel above)
        for (int o = 0; o < Kg; ++o) {
          ChainRow& r = rows[size_t(o)];
          const int c = out_plane(g * Kg + o, s.groups, Kg, shuffled);
          r.dst = out_row(o);
          r.res = ep && ep->res ? ep->res + plane(o) : nullptr;
          r.bias = b ? b[g * Kg + o] : 0.f;
          if (ep) r.mean = ep->mean[c], r.scale = ep->scale[c], r.shift = ep->shift[c];
        }
        const ChainOut out{rows.data(), b != nullptr, ep != nullptr, ep ? ep->relu : relu};
        chain_rows(Kg, Cg, HW, wg, Cg, xg, HW, out);
        continue;
      }
#endif
      sgemm('N', 'N', Kg, HW, Cg, wg, Cg, xg, HW, 0.f, yg, HW);
      if (ep) {  // bias then epilogue in the one pass that writes each row to its plane
        for (int o = 0; o < Kg; ++o) {
          const int c = out_plane(g * Kg + o, s.groups, Kg, shuffled);
          epilogue_row(*ep, c, yg + o * HW, b ? b + g * Kg + o : nullptr, ep->res ? ep->res + plane(o) : nullptr,
                       out_row(o), HW);
        }
      } else if (b || relu) {
        for (int o = 0; o < Kg; ++o) {  // the epilogue writes the row to its plane (in place unshuffled)
          const float bias = b ? b[g * Kg + o] : 0.f;
          const float* row = yg + o * HW;
          float* dst = out_row(o);
          if (relu) {
            for (int64_t i = 0; i < HW; ++i) dst[i] = std::max(row[i] + bias, 0.f);
          } else {
            for (int64_t i = 0; i < HW; ++i) dst[i] = row[i] + bias;
          }
        }
      } else if (shuffled) {
        for (int o = 0; o < Kg; ++o) std::memcpy(out_row(o), yg + o * HW, sizeof(float) * size_t(HW));
      }
    }
  }
}

void gemm1x1_backward_data(const Conv2dShape& s, const float* dy, const float* w, float* dx, const float* relu_y,
                           bool shuffled, int relu_dx_channels) {
  const int Cg = s.C / s.groups, Kg = s.K / s.groups;
  const int64_t HW = int64_t(s.H) * s.W, xs = s.C * HW, ys = s.y_batch_stride(), items = int64_t(s.N) * s.groups;
#pragma omp parallel if (parallel_worth(s))
  {
    // The group's Kg rows of dy, gathered from their shuffled planes and/or masked, in cache.
    std::vector<float> rows(relu_y || shuffled ? size_t(Kg) * HW : 0);
    std::vector<uint8_t> keep(relu_dx_channels > 0 ? size_t(Cg) * HW : 0);  // [dx > 0] before it is overwritten
#pragma omp for schedule(dynamic)
    for (int64_t it = 0; it < items; ++it) {
      const int n = int(it / s.groups), g = int(it % s.groups);
      const float* d = dy + n * ys + int64_t(g) * Kg * HW;
      if (relu_y || shuffled) {
        for (int o = 0; o < Kg; ++o) {
          const int64_t yo = n * ys + out_plane(g * Kg + o, s.groups, Kg, shuffled) * HW;
          float* r = rows.data() + o * HW;
          if (relu_y) {
            for (int64_t i = 0; i < HW; ++i) r[i] = relu_y[yo + i] > 0 ? dy[yo + i] : 0.f;
          } else {
            std::memcpy(r, dy + yo, sizeof(float) * size_t(HW));
          }
        }
        d = rows.data();
      }
      // dx_g (Cg x HW) = w_g^T (Cg x Kg) * dy_g (Kg x HW); ours 1.4x sgemm at 4x4, 0.6-0.8x above. The forward's
      // chain kernel (w_g read transposed, the mask applied at the store) gives the sgemm's bits here too, but ran
      // at 0.56-0.78x it (1 thread, NL shapes, Kg 16-64) and made NL-dw's input gradient 64 -> 79 ms per step.
      // A leaner one (w_g^T transposed once per call, dy's rows read in place from their shuffled planes, the mask
      // taken first as bit masks and applied at the store: the sgemm's bits, 1.1-1.5x it in isolation on data in
      // cache) ran at 0.77x on NL-dw's 5-sample ranges at 32x32 and 0.9-1.1x at 8x8 and 16x16 (2 threads, the
      // in-place masked call), and NL-dw's input gradient went 68 -> 74 ms per step; packing B per block: 0.53x.
      float* dxg = dx + n * xs + int64_t(g) * Cg * HW;
      const int64_t masked = std::clamp(relu_dx_channels - g * Cg, 0, Cg) * HW;  // this item's masked values
      for (int64_t i = 0; i < masked; ++i) keep[i] = dxg[i] > 0;
      if (HW <= 16) mm_rows(Cg, Kg, HW, w + int64_t(g) * Kg * Cg, 1, Cg, d, HW, dxg, HW, nullptr, false);
      else sgemm('T', 'N', Cg, HW, Kg, w + int64_t(g) * Kg * Cg, Cg, d, HW, 0.f, dxg, HW);
      for (int64_t i = 0; i < masked; ++i) dxg[i] = keep[i] ? dxg[i] : 0.f;
    }
  }
}

void gemm1x1_backward_weight(const Conv2dShape& s, const float* x, const float* dy, float* dw, float* db) {
  Conv1x1WeightGrad acc(s);
  acc.add(0, s.N, x, dy);
  acc.finish(dw, db);
}

}  // namespace conv_detail
}  // namespace rf

namespace rf {

using namespace conv_detail;

bool conv1x1_folds_shuffle(const Conv2dShape& s) {
  if (!gemm_applies(s)) return false;
  for (ConvPass p : {ConvPass::forward, ConvPass::backward_data, ConvPass::backward_weight})
    if (conv2d_cpu_algo(s, p) != ConvAlgo::gemm_1x1) return false;
  return true;
}

bool Conv1x1WeightGrad::applies(const Conv2dShape& s) {
  return gemm_applies(s) && conv2d_cpu_algo(s, ConvPass::backward_weight) == ConvAlgo::gemm_1x1;
}

Conv1x1WeightGrad::Conv1x1WeightGrad(const Conv2dShape& s, bool shuffled) : s_(s), shuffled_(shuffled) {
  s.validate();
  RF_CHECK(gemm_applies(s), "{}: Conv1x1WeightGrad needs a 1x1 stride-1 conv without padding", s.str());
  nthr_ = omp_get_max_threads();
  part_.assign(size_t(nthr_) * size_t(s.weight_numel() + s.K), 0.f);
  const int64_t HW = int64_t(s.H) * s.W;
  row_bias_ = HW >= 64 && HW < 1024;  // the planes oneDNN's gemm convolution took before (conv2d_cpu_algo)
  bias_.assign(row_bias_ ? size_t(s.K) : 0, 0.f);
}

// Items are (group, sample) pairs, group-major; thread t of a team of T owns the items a static schedule
// would give it (libgomp's split: the first items % T threads one more), so that every group's partial sum
// is added sample after sample in one thread whether the samples come at once or range by range.
void Conv1x1WeightGrad::add(int n0, int n1, const float* x, const float* dy) {
  const Conv2dShape& s = s_;
  RF_CHECK(n0 == next_ && n1 > n0 && n1 <= s.N, "{}: Conv1x1WeightGrad::add({}, {}) after samples 0..{}", s.str(),
           n0, n1, next_);
  next_ = n1;
  const int Cg = s.C / s.groups, Kg = s.K / s.groups;
  const int64_t HW = int64_t(s.H) * s.W, xs = s.C * HW, ys = s.y_batch_stride(), items = int64_t(s.N) * s.groups;
  const int64_t wn = s.weight_numel();
  // Rows of HW = 1024 floats lie 4 KB apart: the 10 rows a dots_block streams would share one L1 set (8
  // ways). Copies with a pitch of HW rounded up to the vector width, plus 16, spread them over the sets (and
  // zero-pad the tail). Below 32x32 the horizontal sums dominate: sgemm, or the outer-product blocks below.
  const bool own = HW >= 1024;
  // From 12x12 to 16x16 on AVX-512 the outer-product blocks above, the sgemm's bits (known for K = HW <= 256):
  // 1.55-1.75x the sgemm at 16x16 (2 threads, N=64, NL-dw's and NL-512's stage-2 shapes); at 8x8 as fast, at
  // 4x4 0.8x (16 pixels per block do not pay for its accumulators' store and the transposes), so not there.
  const bool outer = kLanes == 16 && HW > 64 && HW <= 256 && HW % kLanes == 0 && Kg % kLanes == 0;
  const int64_t pitch = round_up(HW, kLanes) + 16;
#pragma omp parallel num_threads(nthr_) if (parallel_worth(s))
  {
    const int T = omp_get_num_threads(), t = omp_get_thread_num();
    const int64_t q = items / T, r = items % T;
    const int64_t lo = t * q + std::min<int64_t>(t, r), hi = lo + q + (t < r ? 1 : 0);
    float* my = part_.data() + int64_t(t) * (wn + s.K);
    // One buffer, 64-byte aligned (pitch is a whole number of vectors): every row vector is one cache line, where
    // std::vector's 16-byte alignment split each load in two.
    std::vector<float> pbuf(own ? size_t(Kg + Cg) * pitch + kLanes : 0, 0.f);
    float* pa = own ? align_up(pbuf.data(), 64) : nullptr;
    float* pb = own ? pa + Kg * pitch : nullptr;
    std::vector<float> rows(shuffled_ && !own && !outer ? size_t(Kg) * HW : 0);  // sgemm wants dy's rows contiguous
    std::vector<float> dyT(outer ? size_t(HW) * Kg : 0), accT(outer ? size_t(Cg) * Kg : 0);
    for (int g = 0; g < s.groups; ++g) {
      const int64_t a = std::max<int64_t>(lo, int64_t(g) * s.N + n0), b = std::min<int64_t>(hi, int64_t(g) * s.N + n1);
      float* myg = my + int64_t(g) * Kg * Cg;
      if (outer && a < b)
        for (int o = 0; o < Kg; ++o)
          for (int c = 0; c < Cg; ++c) accT[size_t(c) * Kg + o] = myg[o * Cg + c];
      for (int64_t it = a; it < b; ++it) {
        const int n = int(it - int64_t(g) * s.N) - n0;  // within this range
        auto drow = [&](int o) { return dy + n * ys + out_plane(g * Kg + o, s.groups, Kg, shuffled_) * HW; };
        const float* xg = x + n * xs + int64_t(g) * Cg * HW;
        if (outer) {
#if defined(__AVX512F__)
          outer_item(Kg, Cg, int(HW), drow, xg, dyT.data(), accT.data());
#endif
        } else if (own) {
          for (int o = 0; o < Kg; ++o) copy_row(pa + o * pitch, drow(o), int(HW));
          for (int c = 0; c < Cg; ++c) copy_row(pb + c * pitch, xg + c * HW, int(HW));
          dots(Kg, Cg, pa, pitch, pb, pitch, round_up(HW, kLanes), my + int64_t(g) * Kg * Cg, Cg);
        } else {
          const float* d = drow(0);
          if (shuffled_) {
            for (int o = 0; o < Kg; ++o) std::memcpy(rows.data() + o * HW, drow(o), sizeof(float) * size_t(HW));
            d = rows.data();
          }
          sgemm('N', 'T', Kg, Cg, HW, d, HW, xg, HW, 1.f, my + int64_t(g) * Kg * Cg, Cg);
        }
        // the bias gradient (finish drops it when db is null)
        if (!row_bias_) row_sums(Kg, HW, drow, my + wn + g * Kg);
      }
      if (outer && a < b)
        for (int o = 0; o < Kg; ++o)
          for (int c = 0; c < Cg; ++c) myg[o * Cg + c] = accT[size_t(c) * Kg + o];
    }
  }
  // From 8x8 to 24x24 these convs ran on oneDNN's gemm convolution, whose weight gradient has the bits above (its
  // per-thread partial sums split the items as ours at 1, 2 and 4 threads) but whose bias gradient is one running
  // sum per channel, over the samples in order, each image row summed on its own from 0 and then added. The same
  // here, so that the switch kept the bits of training (tests/ops/test_conv.cpp).
  if (row_bias_) {
#pragma omp parallel for schedule(static) if (parallel_worth(s))
    for (int c = 0; c < s.K; ++c) {
      const int64_t plane = out_plane(c, s.groups, Kg, shuffled_) * HW;
      float db = bias_[size_t(c)];
      for (int n = 0; n < n1 - n0; ++n)
        for (int h = 0; h < s.H; ++h) {
          const float* row = dy + n * ys + plane + int64_t(h) * s.W;
          float r = 0;
          for (int w = 0; w < s.W; ++w) r += row[w];
          db += r;
        }
      bias_[size_t(c)] = db;
    }
  }
}

void conv2d_forward_shuffled_cpu(const Conv2dShape& s, const float* x, const float* w, const float* b, float* y) {
  RF_CHECK(conv1x1_folds_shuffle(s), "{}: the shuffle folds into the 1x1 conv on the gemm_1x1 path only", s.str());
  gemm1x1_forward(s, x, w, b, y, false, true);
}

bool conv1x1_epilogue_applies(const Conv2dShape& s) {
  return gemm_applies(s) && conv2d_cpu_algo(s, ConvPass::forward) == ConvAlgo::gemm_1x1;
}

void conv2d_forward_epilogue_cpu(const Conv2dShape& s, const float* x, const float* w, const float* b, bool shuffled,
                                 const ConvEpilogue& ep, float* y) {
  s.validate();
  RF_CHECK(conv1x1_epilogue_applies(s), "{}: the epilogue fuses into the 1x1 conv on the gemm_1x1 path only",
           s.str());
  RF_CHECK(ep.mean && ep.scale && ep.shift, "{}: the epilogue needs mean, scale and shift", s.str());
  gemm1x1_forward(s, x, w, b, y, false, shuffled, &ep);
}

void conv2d_backward_data_shuffled_cpu(const Conv2dShape& s, const float* dy, const float* w, float* dx) {
  RF_CHECK(conv1x1_folds_shuffle(s), "{}: the shuffle folds into the 1x1 conv on the gemm_1x1 path only", s.str());
  gemm1x1_backward_data(s, dy, w, dx, nullptr, true);
}

bool conv1x1_backward_data_inplace_applies(const Conv2dShape& s) {
  return gemm_applies(s) && conv2d_cpu_algo(s, ConvPass::backward_data) == ConvAlgo::gemm_1x1;
}

void conv2d_backward_data_inplace_relu_cpu(const Conv2dShape& s, const float* dy, const float* w, float* x_dx,
                                           int relu_channels, bool shuffled) {
  RF_CHECK(conv1x1_backward_data_inplace_applies(s), "{}: the in-place masked input gradient runs on gemm_1x1 only",
           s.str());
  RF_CHECK(relu_channels >= 0 && relu_channels <= s.C, "{}: relu_channels={} must lie in 0..C", s.str(),
           relu_channels);
  RF_CHECK(!shuffled || conv1x1_folds_shuffle(s), "{}: the shuffle folds into the 1x1 conv on gemm_1x1 only",
           s.str());
  gemm1x1_backward_data(s, dy, w, x_dx, nullptr, shuffled, relu_channels);
}

void Conv1x1WeightGrad::finish(float* dw, float* db) {
  RF_CHECK(next_ == s_.N, "{}: Conv1x1WeightGrad::finish after samples 0..{} of {}", s_.str(), next_, s_.N);
  add_thread_parts(part_, nthr_, s_.weight_numel(), s_.K, dw, row_bias_ ? nullptr : db);
  if (row_bias_ && db) std::copy(bias_.begin(), bias_.end(), db);
}

}  // namespace rf

