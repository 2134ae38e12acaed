// --device selection (host/core/device.h): cpu and auto run on the CPU; cuda is refused with the reason that
// applies on this machine (no CUDA backend in the build, no visible device, or the GPU model path not there yet);
// malformed names are refused naming the option and the accepted values.
#include <gtest/gtest.h>

#include "host/core/device.h"
#include "testing.h"

using rf::testing::expect_error;

TEST(Device, CpuAndAutoRunOnTheCpu) {
  EXPECT_EQ(rf::select_device("cpu"), rf::Device::cpu);
  EXPECT_EQ(rf::select_device("auto"), rf::Device::cpu);
}

TEST(Device, MalformedNamesAreRefusedNamingTheOption) {
  for (const char* bad : {"gpu", "CUDA", "", "cuda:", "cuda:-1", "cuda:1x", "cuda:99999", "cpu:0"})
    expect_error([&] { rf::select_device(bad, "--device"); }, {"--device", "expected cpu, cuda, cuda:N or auto"}, bad);
}

TEST(Device, CudaIsRefusedWithTheReasonThatApplies) {
  const rf::CudaInfo c = rf::cuda_info();
  const std::string reason = !c.built       ? "this build has no CUDA backend"
                             : c.count == 0 ? "no CUDA device is visible"
                                            : "whole models do not run on the GPU yet";
  expect_error([] { rf::select_device("cuda", "--device"); }, {"--device cuda: ", reason, "use --device cpu"});
  expect_error([] { rf::select_device("cuda:0", "--device"); }, {"--device cuda:0: "});
  const std::string s = rf::cuda_summary();
  if (!c.built || c.count == 0) {
    EXPECT_EQ(s.rfind("none (", 0), 0u) << s;
  } else {
    EXPECT_NE(s.find("driver"), std::string::npos) << s;
  }
}
