// Block volumes through the real csi.v1 services: a sparse file on a loop device,
// published as a device node at the target file (CSI spec "NodePublishVolume",
// block access type), data round trip, online expansion, detaching on unstage.
// Skips with the reason when the machine cannot attach loop devices.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>

#include "common/fs.h"
#include "common/unique_fd.h"
#include "csi/loop_device.h"
#include "csi/mount_util.h"
#include "tests/integration/csi/csi_privileged.h"

namespace berth::csi::itest {
namespace {

using csi::testing::blockCap;
namespace v1 = ::csi::v1;

constexpr int64_t kMiB = 1 << 20;

std::string readAt(const std::string& path, int64_t offset, size_t n, int flags = 0) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | flags));
  EXPECT_TRUE(fd) << "open " << path << ": " << std::strerror(errno);
  if (!fd) return "";
  std::string out(n, '\0');
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::pread(fd.get(), out.data() + got, n - got, offset + static_cast<int64_t>(got));
    if (r <= 0) break;
    got += static_cast<size_t>(r);
  }
  out.resize(got);
  return out;
}

// The st_rdev of `path` (0 when it is not a block device).
dev_t blockRdev(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 || !S_ISBLK(st.st_mode)) return 0;
  return st.st_rdev;
}

class CsiPrivilegedBlock : public CsiPrivilegedTest {
 protected:
  void SetUp() override {
    CsiPrivilegedTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    requireLoop();
  }
};

TEST_F(CsiPrivilegedBlock, PublishGivesALoopDeviceThatStoresTheData) {
  std::string id = srv_.mustCreate("blk", 8 * kMiB, blockCap());
  std::string img = volumeDataPath(id, true);
  ASSERT_TRUE(fs::exists(img));
  ASSERT_TRUE(stageAndPublish(id, "blk", blockCap()));
  std::vector<std::string> loops = loopsBackedBy(img);
  ASSERT_EQ(loops.size(), 1u) << "one shared read-write loop device for the staged volume";
  std::string loop = loops[0];
  std::string target = targetPath("blk");
  ASSERT_NE(blockRdev(target), 0u) << target << " is not a block device node";
  EXPECT_EQ(blockRdev(target), blockRdev(loop)) << "the target is " << loop;
  EXPECT_TRUE(isMountPoint(target).value_or(false));
  EXPECT_EQ(blockDeviceSize(target).value_or(-1), 8 * kMiB);

  // 1 MiB of random bytes at offset 3 MiB through the target, read back through the
  // target and through the backing file (the loop driver writes to the file).
  std::string data = randomBytes(kMiB);
  {
    UniqueFd fd(::open(target.c_str(), O_WRONLY | O_CLOEXEC));
    ASSERT_TRUE(fd) << std::strerror(errno);
    ASSERT_EQ(::pwrite(fd.get(), data.data(), data.size(), 3 * kMiB),
              static_cast<ssize_t>(data.size()));
    ASSERT_EQ(::fsync(fd.get()), 0);
  }
  EXPECT_TRUE(readAt(target, 3 * kMiB, kMiB) == data) << "read back through the target";
  EXPECT_TRUE(readAt(img, 3 * kMiB, kMiB) == data) << "the backing file holds the data";
  EXPECT_EQ(readAt(img, 0, 4096), std::string(4096, '\0')) << "untouched blocks read zero";

  // Idempotent repeats.
  EXPECT_TRUE(srv_.stage(id, stagingPath("blk"), blockCap()).ok());
  EXPECT_TRUE(srv_.publish(id, stagingPath("blk"), target, blockCap()).ok());
  EXPECT_EQ(loopsBackedBy(img).size(), 1u);

  // Unpublish removes the device node; the loop device stays while staged.
  ASSERT_TRUE(srv_.unpublish(id, target).ok());
  EXPECT_FALSE(fs::exists(target));
  EXPECT_TRUE(fs::exists(strCat("/sys/block/", loop.substr(5), "/loop/backing_file")));
  // Unstage detaches it.
  ASSERT_TRUE(srv_.unstage(id, stagingPath("blk")).ok());
  EXPECT_FALSE(fs::exists(strCat("/sys/block/", loop.substr(5), "/loop/backing_file")))
      << loop << " is still bound after NodeUnstageVolume";
  EXPECT_TRUE(loopsBackedBy(img).empty());
  EXPECT_TRUE(srv_.unstage(id, stagingPath("blk")).ok()) << "second unstage";
  EXPECT_TRUE(mountsUnder(srv_.root()).empty());
  EXPECT_TRUE(readAt(img, 3 * kMiB, kMiB) == data) << "the data outlives the publication";

  ASSERT_TRUE(srv_.deleteVolume(id).ok());
  EXPECT_FALSE(fs::exists(img));
}

TEST_F(CsiPrivilegedBlock, ExpansionGrowsThePublishedLoopDevice) {
  std::string id = srv_.mustCreate("grow", 8 * kMiB, blockCap());
  ASSERT_TRUE(stageAndPublish(id, "grow", blockCap()));
  std::string target = targetPath("grow");
  ASSERT_EQ(blockDeviceSize(target).value_or(-1), 8 * kMiB);
  std::string head = randomBytes(64 << 10);
  {
    UniqueFd fd(::open(target.c_str(), O_WRONLY | O_CLOEXEC));
    ASSERT_TRUE(fd);
    ASSERT_EQ(::pwrite(fd.get(), head.data(), head.size(), 0), static_cast<ssize_t>(head.size()));
    ASSERT_EQ(::fsync(fd.get()), 0);
  }
  int64_t node_capacity = 0;
  ASSERT_TRUE(expand(id, target, 24 * kMiB, blockCap(), &node_capacity));
  EXPECT_EQ(node_capacity, 24 * kMiB);
  EXPECT_EQ(blockDeviceSize(target).value_or(-1), 24 * kMiB) << "BLKGETSIZE64 of the target";
  struct stat st;
  ASSERT_EQ(::stat(volumeDataPath(id, true).c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 24 * kMiB);
  // The new end is writable; the old data is intact.
  std::string tail = randomBytes(kMiB);
  {
    UniqueFd fd(::open(target.c_str(), O_WRONLY | O_CLOEXEC));
    ASSERT_TRUE(fd);
    ASSERT_EQ(::pwrite(fd.get(), tail.data(), tail.size(), 23 * kMiB),
              static_cast<ssize_t>(tail.size()));
    ASSERT_EQ(::fsync(fd.get()), 0);
  }
  EXPECT_TRUE(readAt(target, 23 * kMiB, kMiB) == tail);
  EXPECT_TRUE(readAt(target, 0, head.size()) == head);
  // NodeExpandVolume asking for more than the controller gave: OUT_OF_RANGE.
  v1::NodeExpandVolumeRequest req;
  req.set_volume_id(id);
  req.set_volume_path(target);
  req.mutable_capacity_range()->set_required_bytes(64 * kMiB);
  v1::NodeExpandVolumeResponse resp;
  grpc::ClientContext ctx;
  EXPECT_EQ(srv_.node->NodeExpandVolume(&ctx, req, &resp).error_code(),
            grpc::StatusCode::OUT_OF_RANGE);
  EXPECT_TRUE(unpublishAndUnstage(id, "grow"));
}

TEST_F(CsiPrivilegedBlock, ReadonlyPublicationHasItsOwnReadOnlyLoopDevice) {
  std::string id = srv_.mustCreate("roblk", 8 * kMiB, blockCap());
  std::string img = volumeDataPath(id, true);
  std::string data = randomBytes(kMiB);
  {
    UniqueFd fd(::open(img.c_str(), O_WRONLY | O_CLOEXEC));
    ASSERT_TRUE(fd);
    ASSERT_EQ(::pwrite(fd.get(), data.data(), data.size(), 0), static_cast<ssize_t>(data.size()));
  }
  ASSERT_TRUE(stageAndPublish(id, "roblk", blockCap(), /*readonly=*/true));
  std::string target = targetPath("roblk");
  std::vector<std::string> loops = loopsBackedBy(img);
  ASSERT_EQ(loops.size(), 2u) << "the staging's loop device and the read-only one";
  std::string ro;
  for (const auto& l : loops) {
    if (blockRdev(l) == blockRdev(target)) ro = l;
  }
  ASSERT_FALSE(ro.empty()) << "the target is none of the loop devices of the volume";
  EXPECT_EQ(fs::readFile(strCat("/sys/block/", ro.substr(5), "/ro")).value_or(""), "1\n");
  EXPECT_TRUE(readAt(target, 0, kMiB) == data);
  // Writing fails: at open (EROFS/EACCES/EPERM, kernel-dependent) or at write.
  std::string junk(4096, 'x');
  int fd = ::open(target.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd >= 0) {
    errno = 0;
    EXPECT_LT(::pwrite(fd, junk.data(), junk.size(), 0), 0) << "write to a read-only publication";
    (void)::fsync(fd);
    ::close(fd);
  }
  EXPECT_TRUE(readAt(img, 0, kMiB) == data) << "the volume is unchanged";

  ASSERT_TRUE(srv_.unpublish(id, target).ok());
  EXPECT_FALSE(fs::exists(strCat("/sys/block/", ro.substr(5), "/loop/backing_file")))
      << "the read-only loop device " << ro << " is detached on unpublish";
  EXPECT_EQ(loopsBackedBy(img).size(), 1u);
  ASSERT_TRUE(srv_.unstage(id, stagingPath("roblk")).ok());
  EXPECT_TRUE(loopsBackedBy(img).empty());
}

// A read-only publication's own loop device is bound to the same file as the
// staging's shared one; neither a repeated NodeStageVolume nor a restart may take it
// for the shared read-write device.
TEST_F(CsiPrivilegedBlock, ReadOnlyLoopDeviceIsNeverTakenForTheSharedOne) {
  v1::VolumeCapability cap = blockCap(v1::VolumeCapability::AccessMode::SINGLE_NODE_MULTI_WRITER);
  std::string id = srv_.mustCreate("mixed", 8 * kMiB, cap);
  std::string img = volumeDataPath(id, true);
  ASSERT_TRUE(srv_.stage(id, stagingPath("m"), cap).ok());
  std::string shared = loopsBackedBy(img).at(0);
  std::string ro_target = srv_.root() + "/pods/ro-dev";
  std::string rw_target = srv_.root() + "/pods/rw-dev";
  ASSERT_TRUE(fs::mkdirAll(srv_.root() + "/pods", 0750).ok());
  grpc::Status st = srv_.publish(id, stagingPath("m"), ro_target, cap, /*readonly=*/true);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(loopsBackedBy(img).size(), 2u);
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round == 0 ? "repeated stage" : "after a driver restart");
    if (round == 1) {
      srv_.stop();
      ASSERT_TRUE(srv_.start());
    }
    st = srv_.stage(id, stagingPath("m"), cap);
    ASSERT_TRUE(st.ok()) << st.error_message();
    st = srv_.publish(id, stagingPath("m"), rw_target, cap);
    ASSERT_TRUE(st.ok()) << st.error_message();
    EXPECT_EQ(blockRdev(rw_target), blockRdev(shared)) << "read-write publication not on "
                                                       << shared;
    std::string data = randomBytes(4096);
    UniqueFd fd(::open(rw_target.c_str(), O_WRONLY | O_CLOEXEC));
    ASSERT_TRUE(fd) << std::strerror(errno);
    EXPECT_EQ(::pwrite(fd.get(), data.data(), data.size(), 0), 4096) << std::strerror(errno);
    fd.reset();
    EXPECT_EQ(loopsBackedBy(img).size(), 2u) << "no third loop device";
    ASSERT_TRUE(srv_.unpublish(id, rw_target).ok());
  }
  ASSERT_TRUE(srv_.unpublish(id, ro_target).ok());
  ASSERT_TRUE(srv_.unstage(id, stagingPath("m")).ok());
  EXPECT_TRUE(loopsBackedBy(img).empty()) << "loop devices left after unstage";
}

TEST_F(CsiPrivilegedBlock, UnstageWhilePublishedIsFailedPrecondition) {
  std::string id = srv_.mustCreate("busyblk", 8 * kMiB, blockCap());
  ASSERT_TRUE(stageAndPublish(id, "busyblk", blockCap()));
  EXPECT_EQ(srv_.unstage(id, stagingPath("busyblk")).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(srv_.deleteVolume(id).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(loopsBackedBy(volumeDataPath(id, true)).size(), 1u);
  EXPECT_TRUE(unpublishAndUnstage(id, "busyblk"));
  EXPECT_TRUE(srv_.deleteVolume(id).ok());
}

}  // namespace
}  // namespace berth::csi::itest
