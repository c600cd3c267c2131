#include "common/mount.h"

#include <sys/mount.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/unit/fakes/recording_syscalls.h"

namespace berth {
namespace {

using ::testing::ElementsAre;

static_assert(MNT_DETACH == 2, "MountGuard's MNT_DETACH value");

TEST(MountGuardTest, UnmountsOnScopeExit) {
  testing::RecordingSyscalls sys;
  {
    auto guard = MountGuard::mount(sys, "tmpfs", "/t", "tmpfs", 0, "size=1m");
    ASSERT_TRUE(guard.ok());
    EXPECT_TRUE(guard->active());
  }
  EXPECT_THAT(sys.calls(), ElementsAre("mount(tmpfs, /t, tmpfs, 0x0, size=1m)", "umount2(/t, 2)"));
}

TEST(MountGuardTest, ReleaseKeepsTheMount) {
  testing::RecordingSyscalls sys;
  {
    auto guard = MountGuard::mount(sys, "/a", "/b", "", MS_BIND, "");
    ASSERT_TRUE(guard.ok());
    guard->release();
  }
  EXPECT_THAT(sys.calls(), ElementsAre("mount(/a, /b, -, 0x1000, -)"));
}

TEST(MountGuardTest, FailedMountNamesTargetAndGuardsNothing) {
  testing::RecordingSyscalls sys;
  sys.failOn("mount(", EPERM);
  auto guard = MountGuard::mount(sys, "proc", "/r/proc", "proc", 0, "");
  ASSERT_FALSE(guard.ok());
  EXPECT_EQ(std::string(guard.status().message()),
            "mount \"proc\" on \"/r/proc\" (type proc): Operation not permitted (EPERM)");
  EXPECT_EQ(sys.calls().size(), 1u);
}

TEST(MountGuardTest, MoveTransfersOwnership) {
  testing::RecordingSyscalls sys;
  {
    MountGuard outer;
    {
      auto guard = MountGuard::mount(sys, "tmpfs", "/x", "tmpfs", 0, "");
      ASSERT_TRUE(guard.ok());
      outer = std::move(*guard);
    }
    EXPECT_EQ(sys.calls().size(), 1u);  // the moved-from guard did not unmount
  }
  EXPECT_EQ(sys.calls().back(), "umount2(/x, 2)");
}

}  // namespace
}  // namespace berth
