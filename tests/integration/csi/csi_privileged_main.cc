// main() of the CSI privileged and VM tests: enters a private mount namespace while the
// process is still single-threaded (see csi_privileged.h), then runs gtest.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>

#include "tests/integration/csi/csi_privileged.h"

int main(int argc, char** argv) {
  std::string why = berth::csi::itest::enterPrivateMountNamespace();
  ::testing::InitGoogleMock(&argc, argv);
  if (!why.empty() && !::testing::GTEST_FLAG(list_tests)) {
    std::fprintf(stderr, "CSI privileged tests will skip: %s\n", why.c_str());
  }
  return RUN_ALL_TESTS();
}
