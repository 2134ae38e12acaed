// Tensor: shape, strides, dtype, device and owned or borrowed storage.
// Checked by tests/core/test_tensor.cpp. Ops take raw pointers plus shape structs (see host/ops/*.h);
// the Tensor is the container the models and the CLI use, and where shapes are checked with clear errors.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "host/core/check.h"

namespace rf {

enum class DType : uint8_t { f32 = 0, f16 = 1, bf16 = 2, f64 = 3, i32 = 4, i64 = 5, u8 = 6, i8 = 7 };
enum class Device : uint8_t { cpu = 0, cuda = 1 };

size_t dtype_size(DType t);
const char* dtype_name(DType t);
const char* device_name(Device d);

template <typename T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::f32; }
template <> constexpr DType dtype_of<double>() { return DType::f64; }
template <> constexpr DType dtype_of<int32_t>() { return DType::i32; }
template <> constexpr DType dtype_of<int64_t>() { return DType::i64; }
template <> constexpr DType dtype_of<uint8_t>() { return DType::u8; }
template <> constexpr DType dtype_of<int8_t>() { return DType::i8; }

// A shape of up to 6 dimensions, kept inline (no heap).
struct Shape {
  static constexpr int kMaxDims = 6;
  std::array<int64_t, kMaxDims> d{};
  int ndim = 0;

  Shape() = default;
  Shape(std::initializer_list<int64_t> dims);
  explicit Shape(const std::vector<int64_t>& dims);
  int64_t operator[](int i) const { return d[i < 0 ? i + ndim : i]; }
  int64_t& operator[](int i) { return d[i < 0 ? i + ndim : i]; }
  int64_t numel() const;
  bool operator==(const Shape& o) const;
  bool operator!=(const Shape& o) const { return !(*this == o); }
  std::vector<int64_t> vec() const { return {d.begin(), d.begin() + ndim}; }
  std::string str() const;  // "(64, 3, 32, 32)"
};

// Host memory goes through a caching allocator (64-byte aligned); these report tensor bytes in use.
struct HostMemoryStats {
  size_t live_bytes, peak_live_bytes, cached_bytes;
};
void* host_alloc(size_t bytes);
void host_free(void* p, size_t bytes);
void host_release_cache();
HostMemoryStats host_memory_stats();
void host_reset_peak();

// The CUDA side of tensors: allocation, byte fill and copies of device memory, installed by the GPU backend the
// program links (cuda/runtime.h: the CUDA runtime, or the CUDA emulation's host memory in the gpu-emu tests).
// Without it a cuda tensor is refused with the reason. Host code never dereferences a cuda tensor's data.
struct DeviceHooks {
  void* (*alloc)(size_t bytes) = nullptr;
  void (*free)(void* ptr, size_t bytes) = nullptr;  // must not throw
  void (*memset)(void* ptr, int byte, size_t bytes) = nullptr;
  // Copies `bytes` between any two of host and device memory.
  void (*copy)(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes) = nullptr;
};
void set_device_hooks(const DeviceHooks& hooks);
bool device_hooks_installed();

// Raw storage: owned (freed with the last reference) or borrowed (someone else's memory).
struct Storage {
  void* ptr = nullptr;
  size_t bytes = 0;
  Device device = Device::cpu;
  bool owned = false;
  Storage() = default;
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  ~Storage();
  static std::shared_ptr<Storage> allocate(size_t bytes, Device device);
  static std::shared_ptr<Storage> borrow(void* ptr, size_t bytes, Device device);
};

class Tensor {
 public:
  Tensor() = default;
  static Tensor empty(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu);
  static Tensor zeros(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu);
  static Tensor full(const Shape& shape, float value);
  // Wraps memory the caller keeps alive; contiguous strides.
  static Tensor borrow(void* ptr, const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  const Shape& strides() const { return strides_; }  // in elements
  int ndim() const { return shape_.ndim; }
  int64_t size(int i) const { return shape_[i]; }
  int64_t numel() const { return shape_.numel(); }
  size_t nbytes() const { return size_t(numel()) * dtype_size(dtype_); }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }
  bool is_contiguous() const;
  bool owns_storage() const { return storage_ && storage_->owned; }

  void* raw() const;
  template <typename T> T* data() const {
    RF_CHECK(dtype_of<T>() == dtype_, "tensor holds {}, accessed as {}", dtype_name(dtype_),
             dtype_name(dtype_of<T>()));
    return static_cast<T*>(raw());
  }
  float* f32() const { return data<float>(); }

  // Views share storage. reshape needs a contiguous tensor; narrow slices one dimension.
  Tensor reshape(const Shape& shape) const;
  Tensor narrow(int dim, int64_t start, int64_t length) const;
  Tensor clone() const;          // contiguous deep copy on the same device
  // Same shape and dtype; any devices (between devices or on a cuda tensor: both contiguous).
  void copy_from(const Tensor& src);
  // A contiguous copy on `device` (this tensor itself when it is already there).
  Tensor to(Device device) const;
  void fill(float value);  // host tensors; a cuda tensor takes 0 only
  void zero();

  std::string str() const;  // "f32 cpu (64, 3, 32, 32)"

 private:
  std::shared_ptr<Storage> storage_;
  size_t offset_ = 0;  // in elements
  Shape shape_, strides_;
  DType dtype_ = DType::f32;
  Device device_ = Device::cpu;
};

// Throws "<what>: expected shape (N, 64, H, W), got (8, 32, 16, 16)" where expected uses -1 for "any".
void check_shape(const Tensor& t, const Shape& expected, const std::string& what);
void check_same_shape(const Tensor& a, const Tensor& b, const std::string& what);

}  // namespace rf
