// Tensor implementation. CUDA storage is allocated through the runtime only in CUDA builds.
#include "host/core/tensor.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <unordered_map>


namespace rf {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::f32: return 4;
    case DType::f16: return 2;
    case DType::bf16: return 2;
    case DType::f64: return 8;
    case DType::i32: return 4;
    case DType::i64: return 8;
    case DType::u8: return 1;
    case DType::i8: return 1;
  }
  RF_FAIL("unknown dtype code {}", int(t));
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "f32";
    case DType::f16: return "f16";
    case DType::bf16: return "bf16";
    case DType::f64: return "f64";
    case DType::i32: return "i32";
    case DType::i64: return "i64";
    case DType::u8: return "u8";
    case DType::i8: return "i8";
  }
  return "?";
}

const char* device_name(Device d) { return d == Device::cpu ? "cpu" : "cuda"; }

Shape::Shape(std::initializer_list<int64_t> dims) {
  RF_CHECK(dims.size() <= size_t(kMaxDims), "shape has {} dims, at most {} supported", dims.size(), kMaxDims);
  for (int64_t v : dims) d[ndim++] = v;
}

Shape::Shape(const std::vector<int64_t>& dims) {
  RF_CHECK(dims.size() <= size_t(kMaxDims), "shape has {} dims, at most {} supported", dims.size(), kMaxDims);
  for (int64_t v : dims) d[ndim++] = v;
}

int64_t Shape::numel() const {
  int64_t n = 1;
  for (int i = 0; i < ndim; ++i) n *= d[i];
  return n;
}

bool Shape::operator==(const Shape& o) const {
  if (ndim != o.ndim) return false;
  for (int i = 0; i < ndim; ++i)
    if (d[i] != o.d[i]) return false;
  return true;
}

std::string Shape::str() const {
  std::string s = "(";
  for (int i = 0; i < ndim; ++i) s += (i ? ", " : "") + std::to_string(d[i]);
  return s + ")";
}

static Shape contiguous_strides(const Shape& s) {
  Shape st;
  st.ndim = s.ndim;
  int64_t acc = 1;
  for (int i = s.ndim - 1; i >= 0; --i) {
    st.d[i] = acc;
    acc *= s.d[i];
  }
  return st;
}

// Host caching allocator: activations have the same sizes every step, and a fresh large malloc is an mmap
// whose pages the kernel zeroes on first touch (~4 ms for 16 MB). Freed blocks are kept per size and reused.
namespace {
struct HostCache {
  std::mutex mu;
  std::unordered_map<size_t, std::vector<void*>> free_blocks;
  size_t cached_bytes = 0, live_bytes = 0, peak_live_bytes = 0;
  static constexpr size_t kMaxCached = size_t(4) << 30;
};
HostCache& host_cache() {
  static HostCache* c = new HostCache();  // leaked on purpose: outlives static tensors
  return *c;
}
size_t round_host(size_t bytes) { return bytes <= 4096 ? (bytes + 63) / 64 * 64 : (bytes + 4095) / 4096 * 4096; }
}  // namespace

void* host_alloc(size_t bytes) {
  size_t r = round_host(bytes ? bytes : 1);
  HostCache& c = host_cache();
  {
    std::lock_guard<std::mutex> lock(c.mu);
    c.live_bytes += r;
    c.peak_live_bytes = std::max(c.peak_live_bytes, c.live_bytes);
    auto it = c.free_blocks.find(r);
    if (it != c.free_blocks.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      c.cached_bytes -= r;
      return p;
    }
  }
  void* p = std::aligned_alloc(64, r);  // 64-byte alignment for AVX-512 loads and oneDNN
  RF_CHECK(p, "out of host memory allocating {} bytes", bytes);
  return p;
}

void host_free(void* p, size_t bytes) {
  size_t r = round_host(bytes ? bytes : 1);
  HostCache& c = host_cache();
  std::lock_guard<std::mutex> lock(c.mu);
  c.live_bytes -= r;
  if (c.cached_bytes + r <= HostCache::kMaxCached) {
    c.free_blocks[r].push_back(p);
    c.cached_bytes += r;
  } else {
    std::free(p);
  }
}

void host_release_cache() {
  HostCache& c = host_cache();
  std::lock_guard<std::mutex> lock(c.mu);
  for (auto& kv : c.free_blocks)
    for (void* p : kv.second) std::free(p);
  c.free_blocks.clear();
  c.cached_bytes = 0;
}

HostMemoryStats host_memory_stats() {
  HostCache& c = host_cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return {c.live_bytes, c.peak_live_bytes, c.cached_bytes};
}

void host_reset_peak() {
  HostCache& c = host_cache();
  std::lock_guard<std::mutex> lock(c.mu);
  c.peak_live_bytes = c.live_bytes;
}

namespace {
DeviceHooks g_device;  // set_device_hooks
}  // namespace

void set_device_hooks(const DeviceHooks& hooks) { g_device = hooks; }
bool device_hooks_installed() { return g_device.alloc != nullptr; }

static const DeviceHooks& device_hooks() {
  RF_CHECK(g_device.alloc, "a cuda tensor was requested but no GPU backend is initialised (this program runs on "
           "the CPU only: build with CUDA and pass --device cuda)");
  return g_device;
}

Storage::~Storage() {
  if (!owned || !ptr) return;
  if (device == Device::cpu)
    host_free(ptr, bytes);
  else if (g_device.free)
    g_device.free(ptr, bytes);
}

std::shared_ptr<Storage> Storage::allocate(size_t bytes, Device device) {
  auto s = std::make_shared<Storage>();
  s->bytes = bytes;
  s->device = device;
  s->owned = true;
  if (device == Device::cpu) {
    s->ptr = host_alloc(bytes);
  } else {
    s->ptr = device_hooks().alloc(bytes);
  }
  return s;
}

std::shared_ptr<Storage> Storage::borrow(void* ptr, size_t bytes, Device device) {
  auto s = std::make_shared<Storage>();
  s->ptr = ptr;
  s->bytes = bytes;
  s->device = device;
  s->owned = false;
  return s;
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  for (int i = 0; i < shape.ndim; ++i)
    RF_CHECK(shape.d[i] >= 0, "negative dimension in shape {}", shape.str());
  Tensor t;
  t.storage_ = Storage::allocate(size_t(shape.numel()) * dtype_size(dtype), device);
  t.shape_ = shape;
  t.strides_ = contiguous_strides(shape);
  t.dtype_ = dtype;
  t.device_ = device;
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.zero();
  return t;
}

Tensor Tensor::full(const Shape& shape, float value) {
  Tensor t = empty(shape);
  t.fill(value);
  return t;
}

Tensor Tensor::borrow(void* ptr, const Shape& shape, DType dtype, Device device) {
  Tensor t;
  t.storage_ = Storage::borrow(ptr, size_t(shape.numel()) * dtype_size(dtype), device);
  t.shape_ = shape;
  t.strides_ = contiguous_strides(shape);
  t.dtype_ = dtype;
  t.device_ = device;
  return t;
}

bool Tensor::is_contiguous() const { return strides_ == contiguous_strides(shape_); }

void* Tensor::raw() const {
  RF_CHECK(storage_, "access to an undefined tensor");
  return static_cast<char*>(storage_->ptr) + offset_ * dtype_size(dtype_);
}

Tensor Tensor::reshape(const Shape& shape) const {
  RF_CHECK(is_contiguous(), "reshape of a non-contiguous tensor {}", str());
  int64_t n = 1, infer = -1;
  Shape s = shape;
  for (int i = 0; i < s.ndim; ++i) {
    if (s.d[i] == -1) {
      RF_CHECK(infer < 0, "reshape {}: more than one -1", shape.str());
      infer = i;
    } else {
      n *= s.d[i];
    }
  }
  if (infer >= 0) {
    RF_CHECK(n > 0 && numel() % n == 0, "cannot reshape {} into {}", shape_.str(), shape.str());
    s.d[infer] = numel() / n;
  }
  RF_CHECK(s.numel() == numel(), "cannot reshape {} ({} elements) into {}", shape_.str(), numel(), shape.str());
  Tensor t = *this;
  t.shape_ = s;
  t.strides_ = contiguous_strides(s);
  return t;
}

Tensor Tensor::narrow(int dim, int64_t start, int64_t length) const {
  if (dim < 0) dim += ndim();
  RF_CHECK(dim >= 0 && dim < ndim(), "narrow: dim {} out of range for {}", dim, shape_.str());
  RF_CHECK(start >= 0 && length >= 0 && start + length <= shape_.d[dim],
           "narrow: [{}, {}) out of range for dim {} of {}", start, start + length, dim, shape_.str());
  Tensor t = *this;
  t.offset_ += size_t(start * strides_.d[dim]);
  t.shape_.d[dim] = length;
  return t;
}

// Walks all elements of a possibly strided CPU tensor in row-major order.
template <typename F>
static void for_each_offset(const Shape& shape, const Shape& strides, F f) {
  int64_t n = shape.numel();
  if (n == 0) return;
  std::array<int64_t, Shape::kMaxDims> idx{};
  int64_t off = 0;
  for (int64_t k = 0; k < n; ++k) {
    f(k, off);
    for (int i = shape.ndim - 1; i >= 0; --i) {
      if (++idx[i] < shape.d[i]) {
        off += strides.d[i];
        break;
      }
      off -= strides.d[i] * (shape.d[i] - 1);
      idx[i] = 0;
    }
  }
}

Tensor Tensor::clone() const {
  Tensor t = empty(shape_, dtype_, device_);
  t.copy_from(*this);
  return t;
}

Tensor Tensor::to(Device device) const {
  if (device == device_) return *this;
  RF_CHECK(defined(), "to({}): undefined tensor", device_name(device));
  Tensor t = empty(shape_, dtype_, device);
  t.copy_from(*this);
  return t;
}

void Tensor::copy_from(const Tensor& src) {
  check_same_shape(*this, src, "copy_from");
  RF_CHECK(dtype_ == src.dtype_, "copy_from: dtype {} into {}", dtype_name(src.dtype_), dtype_name(dtype_));
  if (device_ != Device::cpu || src.device_ != Device::cpu) {
    RF_CHECK(is_contiguous() && src.is_contiguous(), "copy_from: {} into {}: copies involving a cuda tensor take "
             "contiguous tensors", src.str(), str());
    if (nbytes() > 0) device_hooks().copy(raw(), device_, src.raw(), src.device_, nbytes());
    return;
  }
  size_t es = dtype_size(dtype_);
  if (is_contiguous() && src.is_contiguous()) {
    std::memcpy(raw(), src.raw(), nbytes());
    return;
  }
  // Strided copy: gather the source offsets, then scatter into ours.
  std::vector<int64_t> soff(static_cast<size_t>(numel()));
  for_each_offset(src.shape_, src.strides_, [&](int64_t k, int64_t o) { soff[size_t(k)] = o; });
  char* d = static_cast<char*>(raw());
  const char* s = static_cast<const char*>(src.raw());
  for_each_offset(shape_, strides_, [&](int64_t k, int64_t o) {
    std::memcpy(d + o * es, s + soff[size_t(k)] * es, es);
  });
}

void Tensor::fill(float value) {
  RF_CHECK(device_ == Device::cpu, "fill: host tensors only");
  RF_CHECK(dtype_ == DType::f32 || dtype_ == DType::f64, "fill: f32/f64 only, got {}", dtype_name(dtype_));
  if (dtype_ == DType::f32) {
    float* p = static_cast<float*>(raw());
    for_each_offset(shape_, strides_, [&](int64_t, int64_t o) { p[o] = value; });
  } else {
    double* p = static_cast<double*>(raw());
    for_each_offset(shape_, strides_, [&](int64_t, int64_t o) { p[o] = value; });
  }
}

void Tensor::zero() {
  if (device_ == Device::cpu && is_contiguous()) {
    std::memset(raw(), 0, nbytes());
    return;
  }
  if (device_ != Device::cpu) {
    RF_CHECK(is_contiguous(), "zero: a strided view of a cuda tensor ({})", str());
    if (nbytes() > 0) device_hooks().memset(raw(), 0, nbytes());
    return;
  }
  fill(0.f);
}

std::string Tensor::str() const {
  return fmt::format("{} {} {}", dtype_name(dtype_), device_name(device_), shape_.str());
}

void check_shape(const Tensor& t, const Shape& expected, const std::string& what) {
  bool ok = t.ndim() == expected.ndim;
  for (int i = 0; ok && i < expected.ndim; ++i)
    if (expected.d[i] >= 0 && expected.d[i] != t.size(i)) ok = false;
  if (ok) return;
  std::string e = "(";
  for (int i = 0; i < expected.ndim; ++i)
    e += (i ? ", " : "") + (expected.d[i] < 0 ? std::string("*") : std::to_string(expected.d[i]));
  e += ")";
  RF_FAIL("{}: expected shape {}, got {}", what, e, t.shape().str());
}

void check_same_shape(const Tensor& a, const Tensor& b, const std::string& what) {
  if (a.shape() != b.shape()) RF_FAIL("{}: shapes differ, {} vs {}", what, a.shape().str(), b.shape().str());
}

}  // namespace rf
