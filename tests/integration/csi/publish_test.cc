// Mount volumes through the real csi.v1 services (CSI spec "NodeStageVolume",
// "NodePublishVolume" and their reverse): bind mounts in the test process's private
// mount namespace, readonly and mount flags, several publications, idempotent
// repeats, DeleteVolume against publications.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>

#include "common/fs.h"
#include "csi/mount_util.h"
#include "tests/integration/csi/csi_privileged.h"

namespace berth::csi::itest {
namespace {

using csi::testing::mountCap;
namespace v1 = ::csi::v1;
using Mode = v1::VolumeCapability::AccessMode;

bool mounted(const std::string& path) {
  auto m = isMountPoint(path);
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() && *m;
}

// Same directory (device and inode) at both paths.
bool sameDir(const std::string& a, const std::string& b) {
  struct stat sa, sb;
  return ::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev &&
         sa.st_ino == sb.st_ino;
}

using CsiPrivilegedPublish = CsiPrivilegedTest;

TEST_F(CsiPrivilegedPublish, StageAndPublishBindMountTheVolumeDirectory) {
  std::string id = srv_.mustCreate("pub", 16 << 20);
  std::string dir = volumeDataPath(id);
  ASSERT_TRUE(stageAndPublish(id, "p1", mountCap()));
  EXPECT_TRUE(mounted(stagingPath("p1")));
  EXPECT_TRUE(mounted(targetPath("p1")));
  EXPECT_TRUE(sameDir(targetPath("p1"), dir));

  // Written through the target, it lands in the volume's directory, and back.
  ASSERT_TRUE(putFile(targetPath("p1") + "/hello", "through the target"));
  EXPECT_EQ(fs::readFile(dir + "/hello").value_or(""), "through the target");
  ASSERT_TRUE(putFile(dir + "/back", "from the volume"));
  EXPECT_EQ(fs::readFile(targetPath("p1") + "/back").value_or(""), "from the volume");

  // Repeats are no-ops (spec: idempotent) and do not stack mounts.
  EXPECT_TRUE(srv_.stage(id, stagingPath("p1"), mountCap()).ok());
  EXPECT_TRUE(srv_.publish(id, stagingPath("p1"), targetPath("p1"), mountCap()).ok());
  EXPECT_EQ(mountsUnder(srv_.root()).size(), 2u);

  ASSERT_TRUE(srv_.unpublish(id, targetPath("p1")).ok());
  EXPECT_FALSE(mounted(targetPath("p1")));
  EXPECT_FALSE(fs::exists(targetPath("p1"))) << "NodeUnpublish leaves the target it made";
  EXPECT_TRUE(srv_.unpublish(id, targetPath("p1")).ok()) << "second unpublish";
  ASSERT_TRUE(srv_.unstage(id, stagingPath("p1")).ok());
  EXPECT_FALSE(mounted(stagingPath("p1")));
  EXPECT_TRUE(srv_.unstage(id, stagingPath("p1")).ok()) << "second unstage";
  EXPECT_TRUE(mountsUnder(srv_.root()).empty());
  // The data stays with the volume.
  EXPECT_EQ(fs::readFile(dir + "/hello").value_or(""), "through the target");
}

TEST_F(CsiPrivilegedPublish, ReadonlyPublicationRefusesWritesWithEROFS) {
  std::string id = srv_.mustCreate("ro", 16 << 20);
  ASSERT_TRUE(putFile(volumeDataPath(id) + "/existing", "old"));
  ASSERT_TRUE(stageAndPublish(id, "ro", mountCap(), /*readonly=*/true));
  std::string t = targetPath("ro");
  EXPECT_EQ(fs::readFile(t + "/existing").value_or(""), "old");
  errno = 0;
  int fd = ::open((t + "/new").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  EXPECT_LT(fd, 0);
  EXPECT_EQ(errno, EROFS);
  if (fd >= 0) ::close(fd);
  errno = 0;
  fd = ::open((t + "/existing").c_str(), O_WRONLY | O_CLOEXEC);
  EXPECT_LT(fd, 0);
  EXPECT_EQ(errno, EROFS);
  if (fd >= 0) ::close(fd);
  struct statvfs sv;
  ASSERT_EQ(::statvfs(t.c_str(), &sv), 0);
  EXPECT_NE(sv.f_flag & ST_RDONLY, 0u);
  // The staging mount stays writable (another publication may write).
  EXPECT_TRUE(putFile(stagingPath("ro") + "/via-staging", "w"));

  // The same target with readonly=false is another publication: ALREADY_EXISTS.
  EXPECT_EQ(srv_.publish(id, stagingPath("ro"), t, mountCap()).error_code(),
            grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_TRUE(srv_.publish(id, stagingPath("ro"), t, mountCap(), true).ok());
  EXPECT_TRUE(unpublishAndUnstage(id, "ro"));
}

TEST_F(CsiPrivilegedPublish, MountFlagsAreAppliedToTheBindMount) {
  std::string id = srv_.mustCreate("flags", 16 << 20);
  v1::VolumeCapability cap = mountCap();
  cap.mutable_mount()->add_mount_flags("nosuid");
  cap.mutable_mount()->add_mount_flags("nodev,noexec");
  cap.mutable_mount()->add_mount_flags("noatime");
  ASSERT_TRUE(stageAndPublish(id, "flags", cap));
  struct statvfs sv;
  ASSERT_EQ(::statvfs(targetPath("flags").c_str(), &sv), 0);
  EXPECT_NE(sv.f_flag & ST_NOSUID, 0u);
  EXPECT_NE(sv.f_flag & ST_NODEV, 0u);
  EXPECT_NE(sv.f_flag & ST_NOEXEC, 0u);
  EXPECT_NE(sv.f_flag & ST_NOATIME, 0u);
  EXPECT_EQ(sv.f_flag & ST_RDONLY, 0u);
  // An executable in a noexec mount does not run.
  std::string tool = targetPath("flags") + "/tool";
  ASSERT_TRUE(putFile(tool, "#!/bin/sh\nexit 0\n"));
  ASSERT_EQ(::chmod(tool.c_str(), 0755), 0);
  EXPECT_NE(::access(tool.c_str(), X_OK), 0);
  EXPECT_EQ(errno, EACCES);
  // The staging mount has none of them.
  ASSERT_EQ(::statvfs(stagingPath("flags").c_str(), &sv), 0);
  EXPECT_EQ(sv.f_flag & ST_NOEXEC, 0u);

  // Other flags at the same target: ALREADY_EXISTS; a filesystem option: INVALID_ARGUMENT.
  v1::VolumeCapability other = mountCap();
  other.mutable_mount()->add_mount_flags("nosuid");
  EXPECT_EQ(srv_.publish(id, stagingPath("flags"), targetPath("flags"), other).error_code(),
            grpc::StatusCode::ALREADY_EXISTS);
  v1::VolumeCapability bad = mountCap();
  bad.mutable_mount()->add_mount_flags("uid=1000");
  grpc::Status st = srv_.publish(id, stagingPath("flags"), srv_.root() + "/pods/bad", bad);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("uid=1000"), std::string::npos) << st.error_message();
  EXPECT_FALSE(fs::exists(srv_.root() + "/pods/bad"));
  EXPECT_TRUE(unpublishAndUnstage(id, "flags"));
}

TEST_F(CsiPrivilegedPublish, MultiWriterVolumeIsPublishedTwice) {
  for (auto mode : {Mode::SINGLE_NODE_MULTI_WRITER, Mode::MULTI_NODE_MULTI_WRITER}) {
    SCOPED_TRACE(Mode::Mode_Name(mode));
    v1::VolumeCapability cap = mountCap(mode);
    std::string id = srv_.mustCreate(strCat("shared-", static_cast<int>(mode)), 16 << 20);
    ASSERT_TRUE(srv_.stage(id, stagingPath("s"), cap).ok());
    std::string t1 = srv_.root() + "/pods/a/vol", t2 = srv_.root() + "/pods/b/vol";
    ASSERT_TRUE(srv_.publish(id, stagingPath("s"), t1, cap).ok());
    ASSERT_TRUE(srv_.publish(id, stagingPath("s"), t2, cap).ok());
    EXPECT_TRUE(mounted(t1));
    EXPECT_TRUE(mounted(t2));
    ASSERT_TRUE(putFile(t1 + "/from-a", "a"));
    ASSERT_TRUE(putFile(t2 + "/from-b", "b"));
    EXPECT_EQ(fs::readFile(t2 + "/from-a").value_or(""), "a");
    EXPECT_EQ(fs::readFile(t1 + "/from-b").value_or(""), "b");
    ASSERT_TRUE(srv_.unpublish(id, t1).ok());
    EXPECT_FALSE(fs::exists(t1));
    EXPECT_TRUE(mounted(t2)) << "unpublishing one target leaves the other";
    EXPECT_EQ(fs::readFile(t2 + "/from-a").value_or(""), "a");
    ASSERT_TRUE(srv_.unpublish(id, t2).ok());
    ASSERT_TRUE(srv_.unstage(id, stagingPath("s")).ok());
    EXPECT_TRUE(mountsUnder(srv_.root()).empty());
  }
}

TEST_F(CsiPrivilegedPublish, SingleWriterVolumeRefusesASecondTarget) {
  std::string id = srv_.mustCreate("single", 16 << 20);
  ASSERT_TRUE(stageAndPublish(id, "one", mountCap(Mode::SINGLE_NODE_WRITER)));
  std::string second = srv_.root() + "/pods/two/vol";
  grpc::Status st = srv_.publish(id, stagingPath("one"), second, mountCap(Mode::SINGLE_NODE_WRITER));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << st.error_message();
  EXPECT_FALSE(fs::exists(second)) << "a refused publish leaves no target";
  EXPECT_TRUE(unpublishAndUnstage(id, "one"));
}

TEST_F(CsiPrivilegedPublish, PublishWithoutStagingIsFailedPrecondition) {
  std::string id = srv_.mustCreate("unstaged", 16 << 20);
  grpc::Status st = srv_.publish(id, stagingPath("nowhere"), targetPath("x"), mountCap());
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << st.error_message();
  EXPECT_FALSE(fs::exists(targetPath("x")));
}

TEST_F(CsiPrivilegedPublish, DeleteVolumeWaitsForUnpublishThenFreesTheSpace) {
  int64_t before = availableCapacity();
  std::string id = srv_.mustCreate("busy", 32 << 20);
  EXPECT_EQ(availableCapacity(), before - (32 << 20));
  std::string dir = volumeDataPath(id);
  ASSERT_TRUE(stageAndPublish(id, "busy", mountCap()));
  ASSERT_TRUE(putFile(targetPath("busy") + "/data", randomBytes(4 << 20)));

  grpc::Status st = srv_.deleteVolume(id);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(st.error_message().find(targetPath("busy")), std::string::npos) << st.error_message();
  ASSERT_TRUE(srv_.unpublish(id, targetPath("busy")).ok());
  st = srv_.deleteVolume(id);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << "still staged";
  EXPECT_TRUE(fs::exists(dir + "/data"));
  ASSERT_TRUE(srv_.unstage(id, stagingPath("busy")).ok());

  ASSERT_TRUE(srv_.deleteVolume(id).ok());
  EXPECT_FALSE(fs::exists(dir)) << "DeleteVolume must remove the volume's directory";
  EXPECT_EQ(availableCapacity(), before);
  EXPECT_TRUE(srv_.deleteVolume(id).ok()) << "second delete";
  EXPECT_TRUE(mountsUnder(srv_.root()).empty());
}

}  // namespace
}  // namespace berth::csi::itest
