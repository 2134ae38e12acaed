// Where a command runs: `--device cpu|cuda|cuda:N|auto` (train, eval, bench classify|detect|segment, run, predict,
// bench_models), and what the machine's CUDA side is, for results and `reframe --version`.
// Today every model runs on the CPU: the CUDA kernels and cuDNN wrappers exist and are tested (labels gpu and
// gpu-emu), the whole-model GPU path does not yet. So `cuda` is refused with the reason that applies, in this
// order: the build has no CUDA backend; no device is visible (the runtime's own message); the index is out of
// range; the model path is not there yet. `auto` picks the CPU until the GPU path exists. Nothing here starts work
// on a device. Checked by tests/core/test_device.cpp and tests/app/cli_options.sh.
#pragma once
#include <cstdint>
#include <string>

#include "host/core/tensor.h"

namespace rf {

// Whether whole models can run on a CUDA device in this source tree (the classification models, forward and
// training): `reframe --version`'s "GPU models" line, which the device check's model steps read
// (scripts/device-check.sh, device-pack.sh).
constexpr bool kGpuModels = true;

struct CudaInfo {
  bool built = false;      // this build links the CUDA runtime
  int count = 0;           // visible devices
  std::string error;       // why count is 0 (the runtime's message), "" otherwise
  std::string name;        // device 0's name, compute capability, memory; driver and runtime versions
  int cc_major = 0, cc_minor = 0;
  int64_t memory_bytes = 0;
  int driver_version = 0, runtime_version = 0;  // e.g. 12080 = 12.8
};
CudaInfo cuda_info();

// One line for results and --version: "none (this build has no CUDA backend)", "none (no CUDA-capable device
// is detected)", or "NVIDIA H100 80GB HBM3, sm_90, 79.1 GiB, driver 12.8, runtime 13.0".
std::string cuda_summary();

// The device named by spec, or an rf::Error naming `option`, the value and the reason (see the header comment);
// has_gpu_path: the command can run its models on the GPU (every model command has one today; the parameter keeps
// a command without one refusing clearly). Selecting cuda:N makes device N current.
Device select_device(const std::string& spec, const std::string& option = "--device", bool has_gpu_path = true);

// The device the parsed command's models run on: main sets it from --device before the command runs.
void set_run_device(Device device);
Device run_device();

}  // namespace rf
