// main() of the GPU tests (real, label gpu; emulated, label gpu-emu): runs the tests and exits 77 when some were
// skipped and none failed, which CTest reports as skipped (SKIP_RETURN_CODE 77). Unlike a regular expression on
// "[  SKIPPED ]" (which also counted a test that skipped and then failed as skipped), a failure always fails;
// with RF_REQUIRE_GPU=1 a missing device is a failure (tests/gpu/gpu_testing.h). Used by every tests/gpu binary.
#include <gtest/gtest.h>

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  const int rc = RUN_ALL_TESTS();
  const ::testing::UnitTest& u = *::testing::UnitTest::GetInstance();
  if (rc == 0 && u.failed_test_count() == 0 && u.skipped_test_count() > 0) return 77;
  return rc;
}
