// --device selection (host/core/device.h): cpu runs on the CPU, auto on the GPU only where one is visible and the
// command has a GPU path; cuda is refused with the reason that applies on this machine (no CUDA backend in the
// build, no visible device, or a command without a GPU path); malformed names are refused naming the option and the
// accepted values.
#include <gtest/gtest.h>

#include "host/core/device.h"
#include "testing.h"

using rf::testing::expect_error;

TEST(Device, CpuAndAutoRunOnTheCpuWithoutADevice) {
  const rf::CudaInfo c = rf::cuda_info();
  EXPECT_EQ(rf::select_device("cpu"), rf::Device::cpu);
  EXPECT_EQ(rf::select_device("auto", "--device", false), rf::Device::cpu);  // no GPU path: the CPU
  EXPECT_EQ(rf::select_device("auto"), c.built && c.count > 0 ? rf::Device::cuda : rf::Device::cpu);
}

TEST(Device, MalformedNamesAreRefusedNamingTheOption) {
  for (const char* bad : {"gpu", "CUDA", "", "cuda:", "cuda:-1", "cuda:1x", "cuda:99999", "cpu:0"})
    expect_error([&] { rf::select_device(bad, "--device"); }, {"--device", "expected cpu, cuda, cuda:N or auto"}, bad);
}

TEST(Device, CudaIsRefusedWithTheReasonThatApplies) {
  const rf::CudaInfo c = rf::cuda_info();
  if (c.built && c.count > 0) {  // a GPU: only a command without a GPU path refuses it
    expect_error([] { rf::select_device("cuda", "--device", false); },
                 {"--device cuda: ", "has no GPU path", "use --device cpu"});
    EXPECT_EQ(rf::select_device("cuda:0"), rf::Device::cuda);
  } else {
    const std::string reason = !c.built ? "this build has no CUDA backend" : "no CUDA device is visible";
    expect_error([] { rf::select_device("cuda", "--device"); }, {"--device cuda: ", reason, "use --device cpu"});
    expect_error([] { rf::select_device("cuda:0", "--device"); }, {"--device cuda:0: "});
  }
  const std::string s = rf::cuda_summary();
  if (!c.built || c.count == 0) {
    EXPECT_EQ(s.rfind("none (", 0), 0u) << s;
  } else {
    EXPECT_NE(s.find("driver"), std::string::npos) << s;
  }
}
