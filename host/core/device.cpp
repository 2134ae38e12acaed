// --device selection and the CUDA facts of this machine (host/core/device.h).
#include "host/core/device.h"

#include <fmt/format.h>

#include <cstdlib>

#include "host/core/check.h"

#ifdef RF_HAVE_CUDA_RUNTIME
#include <cuda_runtime.h>
#endif

namespace rf {

CudaInfo cuda_info() {
  CudaInfo c;
#ifdef RF_HAVE_CUDA_RUNTIME
  c.built = true;
  cudaError_t e = cudaGetDeviceCount(&c.count);
  if (e != cudaSuccess) {
    c.count = 0;
    c.error = cudaGetErrorString(e);
    cudaGetLastError();  // clear the sticky error of a failed query
  } else if (c.count == 0) {
    c.error = "the CUDA runtime reports 0 devices";
  }
  cudaDriverGetVersion(&c.driver_version);
  cudaRuntimeGetVersion(&c.runtime_version);
  if (c.count > 0) {
    cudaDeviceProp p{};
    if (cudaGetDeviceProperties(&p, 0) == cudaSuccess) {
      c.name = p.name;
      c.cc_major = p.major, c.cc_minor = p.minor;
      c.memory_bytes = int64_t(p.totalGlobalMem);
    }
  }
#endif
  return c;
}

namespace {
std::string version_text(int v) { return fmt::format("{}.{}", v / 1000, (v % 1000) / 10); }
}  // namespace

std::string cuda_summary() {
  const CudaInfo c = cuda_info();
  if (!c.built) return "none (this build has no CUDA backend)";
  if (c.count == 0) return fmt::format("none ({})", c.error);
  return fmt::format("{}, sm_{}{}, {:.1f} GiB, driver {}, runtime {}{}", c.name, c.cc_major, c.cc_minor,
                     double(c.memory_bytes) / double(1 << 30), version_text(c.driver_version),
                     version_text(c.runtime_version), c.count > 1 ? fmt::format(" ({} devices)", c.count) : "");
}

Device select_device(const std::string& spec, const std::string& option, bool has_gpu_path) {
  if (spec == "cpu") return Device::cpu;
  if (spec == "auto") {  // the GPU when this command has a GPU path and a device is visible, else the CPU
    if (!has_gpu_path) return Device::cpu;
    const CudaInfo c = cuda_info();
    return c.built && c.count > 0 ? select_device("cuda", option, true) : Device::cpu;
  }
  int index = 0;
  if (spec.rfind("cuda:", 0) == 0) {
    const std::string n = spec.substr(5);
    char* end = nullptr;
    const long v = n.empty() ? -1 : std::strtol(n.c_str(), &end, 10);
    RF_CHECK(!n.empty() && *end == '\0' && v >= 0 && v < 1024,
             "{} {}: the device index '{}' is not a number in 0..1023 (expected cpu, cuda, cuda:N or auto)",
             option, spec, n);
    index = int(v);
  } else {
    RF_CHECK(spec == "cuda", "{} {}: unknown device (expected cpu, cuda, cuda:N or auto)", option, spec);
  }
  const CudaInfo c = cuda_info();
  RF_CHECK(c.built, "{} {}: this build has no CUDA backend (nvcc was not found when it was configured, or "
           "-DRF_CUDA=OFF); use --device cpu, or rebuild on a machine with the CUDA toolkit", option, spec);
  RF_CHECK(c.count > 0, "{} {}: no CUDA device is visible ({}); use --device cpu", option, spec, c.error);
  RF_CHECK(index < c.count, "{} {}: device {} asked for, {} visible (0..{})", option, spec, index, c.count,
           c.count - 1);
  RF_CHECK(has_gpu_path, "{} {}: this command has no GPU path; use --device cpu", option, spec);
#ifdef RF_HAVE_CUDA_RUNTIME
  const cudaError_t e = cudaSetDevice(index);
  RF_CHECK(e == cudaSuccess, "{} {}: cudaSetDevice({}) failed: {}", option, spec, index, cudaGetErrorString(e));
#endif
  return Device::cuda;
}

namespace {
Device g_run_device = Device::cpu;
}  // namespace

void set_run_device(Device device) { g_run_device = device; }
Device run_device() { return g_run_device; }

}  // namespace rf
