// The CSI driver's capacity enforcement with project quotas, checked by its effect:
// writes (by a process without CAP_SYS_RESOURCE, like a pod) past a mount volume's
// capacity fail, and after ControllerExpandVolume + NodeExpandVolume writes up to the
// new capacity succeed. The test makes its own ext4
// with project quotas (mkfs.ext4 -O quota,project -E quotatype=prjquota, mounted with
// prjquota) on a loop-attached file below its temp directory and runs the real CSI
// server (gRPC) with its base directory there.
//
// The build machines' kernel has no quota support, so this runs in the VM harness
// (tests/vm/vm-run.sh, CTest `vm.csi_quota`), whose Debian kernel has CONFIG_QUOTA and
// loads loop, ext4 and quota_v2 as modules (modprobe runs only inside the VM). Where
// a prerequisite is missing (not root, no loop devices, no mkfs.ext4, a kernel without
// quota support) the test skips and prints the reason.
//
// Everything is mounted in the process's private mount namespace (see
// tests/integration/csi/csi_privileged.h); the loop device is detached in TearDown.
#include <fcntl.h>
#include <sys/mount.h>
#include <linux/capability.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "common/fs.h"
#include "common/unique_fd.h"
#include "csi/driver_info.h"
#include "csi/loop_device.h"
#include "csi/project_quota.h"
#include "tests/integration/csi/csi_privileged.h"

namespace berth::csi::itest {
namespace {

using csi::testing::mountCap;
namespace v1 = ::csi::v1;

constexpr int64_t kMiB = 1 << 20;

bool inVm() { return std::getenv("BERTH_VM") != nullptr; }

int run(const std::string& cmd) {
  std::printf("[ run      ] %s\n", cmd.c_str());
  std::fflush(stdout);
  int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

struct WriteResult {
  int64_t written = 0;
  int err = 0;  // errno of the write/fsync that failed, 0 if all `limit` bytes went in
};

// Appends 64 KiB chunks to `path` (fsync after each) until `limit` bytes or an error.
WriteResult fillHere(const std::string& path, int64_t limit) {
  WriteResult r;
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (!fd) {
    r.err = errno;
    return r;
  }
  std::string chunk(64 << 10, 'q');
  while (r.written < limit) {
    size_t want = static_cast<size_t>(std::min<int64_t>(chunk.size(), limit - r.written));
    ssize_t n = ::write(fd.get(), chunk.data(), want);
    if (n < 0) {
      r.err = errno;
      break;
    }
    if (::fsync(fd.get()) != 0) {
      r.err = errno;
      break;
    }
    r.written += n;
  }
  return r;
}

// fillHere() in a child without CAP_SYS_RESOURCE, the way a pod writes: the kernel lets
// that capability exceed quota hard limits (ext4's ignore_hardlimit), and the test runs
// as root with every capability.
WriteResult fill(const std::string& path, int64_t limit) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return WriteResult{0, errno};
  pid_t pid = ::fork();
  if (pid == 0) {
    __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2] = {};
    WriteResult r;
    if (::syscall(SYS_capget, &hdr, data) != 0) {
      r.err = errno;
    } else {
      data[CAP_SYS_RESOURCE / 32].effective &= ~(1u << (CAP_SYS_RESOURCE % 32));
      data[CAP_SYS_RESOURCE / 32].permitted &= ~(1u << (CAP_SYS_RESOURCE % 32));
      if (::syscall(SYS_capset, &hdr, data) != 0) {
        r.err = errno;
      } else {
        r = fillHere(path, limit);
      }
    }
    ssize_t n = ::write(p[1], &r, sizeof(r));
    ::_exit(n == sizeof(r) ? 0 : 1);
  }
  ::close(p[1]);
  WriteResult r{0, EIO};
  if (pid > 0) {
    if (::read(p[0], &r, sizeof(r)) != sizeof(r)) r = WriteResult{0, EIO};
    int status = 0;
    ::waitpid(pid, &status, 0);
  } else {
    r.err = errno;
  }
  ::close(p[0]);
  return r;
}

class CsiQuotaVm : public CsiPrivilegedTest {
 protected:
  void prepare() override {
    if (inVm()) (void)run("modprobe -a loop ext4 quota_v2 2>&1");
    requireLoop();
    if (IsSkipped()) return;
    if (run("command -v mkfs.ext4 >/dev/null") != 0) {
      GTEST_SKIP() << "mkfs.ext4 not found: install e2fsprogs (packaging/install-deps.sh)";
    }
    std::string img = srv_.root() + "/fs.img";
    std::string mnt = srv_.root() + "/fs";
    {
      UniqueFd fd(::open(img.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
      ASSERT_TRUE(fd);
      ASSERT_EQ(::ftruncate(fd.get(), 128 * kMiB), 0);
    }
    // -I 256: project ids live in the large inode (mke2fs's "small" type uses 128).
    ASSERT_EQ(run(strCat("mkfs.ext4 -q -F -I 256 -O quota,project -E quotatype=prjquota ", img,
                         " 2>&1")),
              0);
    auto dev = attachLoop(img);
    ASSERT_TRUE(dev.ok()) << dev.status();
    ASSERT_EQ(::mkdir(mnt.c_str(), 0755), 0);
    if (::mount(dev->c_str(), mnt.c_str(), "ext4", 0, "prjquota") != 0) {
      int err = errno;
      GTEST_SKIP() << "cannot mount ext4 with project quotas (mount -o prjquota " << *dev
                   << "): " << std::strerror(err)
                   << (inVm() ? "" : "; this kernel likely lacks quota support (CONFIG_QUOTA): "
                                     "run in the VM harness, ctest -R vm.csi_quota");
    }
    QuotaProbe probe = probeProjectQuota(mnt);
    if (!probe.available) GTEST_SKIP() << "no project quotas on the test's ext4: " << probe.reason;
    std::printf("[ quota    ] %s on %s (%s)\n", probe.reason.c_str(), mnt.c_str(), dev->c_str());
    srv_.options().base_dir = mnt + "/csi";
    srv_.options().use_quota = true;
    srv_.options().capacity_bytes = 0;  // the filesystem's size
  }

  int64_t used(const std::string& id, const std::string& path) {
    v1::NodeGetVolumeStatsResponse r;
    grpc::Status st = volumeStats(id, path, &r);
    EXPECT_TRUE(st.ok()) << st.error_message();
    for (const auto& u : r.usage()) {
      if (u.unit() == v1::VolumeUsage::BYTES) return u.used();
    }
    return -1;
  }
};

TEST_F(CsiQuotaVm, WritesPastCapacityFailAndExpansionRaisesTheLimit) {
  // The driver says it enforces with quotas: plugin manifest and volume context.
  v1::GetPluginInfoResponse info;
  grpc::ClientContext c1;
  ASSERT_TRUE(srv_.identity->GetPluginInfo(&c1, {}, &info).ok());
  EXPECT_EQ(info.manifest().at("capacity-enforced"), "quota");
  int64_t before = availableCapacity();
  EXPECT_GT(before, 64 * kMiB);

  v1::CreateVolumeResponse created;
  ASSERT_TRUE(srv_.create("quota-8m", 8 * kMiB, mountCap(), &created).ok());
  std::string id = created.volume().volume_id();
  EXPECT_EQ(created.volume().capacity_bytes(), 8 * kMiB);
  EXPECT_EQ(created.volume().volume_context().at(std::string(kCapacityEnforcedKey)), "quota");
  EXPECT_EQ(availableCapacity(), before - 8 * kMiB) << "GetCapacity reserves the volume";
  ASSERT_TRUE(stageAndPublish(id, "q", mountCap()));
  std::string t = targetPath("q");

  // Past 8 MiB: EDQUOT (ENOSPC is what some filesystems say).
  WriteResult w1 = fill(t + "/first", 32 * kMiB);
  EXPECT_TRUE(w1.err == EDQUOT || w1.err == ENOSPC)
      << "wrote " << w1.written << " bytes into an 8 MiB volume; last error "
      << std::strerror(w1.err);
  EXPECT_LE(w1.written, 8 * kMiB);
  EXPECT_GE(w1.written, 7 * kMiB) << "the limit bites early: " << std::strerror(w1.err);
  int64_t u1 = used(id, t);
  EXPECT_GE(u1, w1.written) << "NodeGetVolumeStats reads the project's usage";
  EXPECT_LE(u1, 8 * kMiB);

  // Another volume is its own project: the full one does not limit it.
  std::string other = srv_.mustCreate("quota-other", 8 * kMiB);
  ASSERT_TRUE(stageAndPublish(other, "o", mountCap()));
  WriteResult wo = fill(targetPath("o") + "/data", 4 * kMiB);
  EXPECT_EQ(wo.err, 0) << std::strerror(wo.err);
  EXPECT_EQ(wo.written, 4 * kMiB);

  // Expand to 16 MiB: the limit follows, online.
  int64_t node_capacity = 0;
  ASSERT_TRUE(expand(id, t, 16 * kMiB, mountCap(), &node_capacity));
  EXPECT_EQ(node_capacity, 16 * kMiB);
  int64_t room = 16 * kMiB - u1 - 256 * 1024;  // less a little for metadata blocks
  WriteResult w2 = fill(t + "/second", room);
  EXPECT_EQ(w2.err, 0) << "after expansion to 16 MiB, writing " << room << " more bytes failed at "
                       << w2.written << ": " << std::strerror(w2.err);
  EXPECT_EQ(w2.written, room);
  WriteResult w3 = fill(t + "/third", 8 * kMiB);
  EXPECT_TRUE(w3.err == EDQUOT || w3.err == ENOSPC)
      << "wrote " << w3.written << " bytes past the new 16 MiB limit";
  EXPECT_LE(w1.written + w2.written + w3.written, 16 * kMiB);
  EXPECT_LE(used(id, t), 16 * kMiB);

  // Deleting the volume frees it: its data and its quota.
  ASSERT_TRUE(unpublishAndUnstage(id, "q"));
  ASSERT_TRUE(srv_.deleteVolume(id).ok());
  EXPECT_FALSE(fs::exists(volumeDataPath(id)));
  ASSERT_TRUE(unpublishAndUnstage(other, "o"));
  ASSERT_TRUE(srv_.deleteVolume(other).ok());
  EXPECT_EQ(availableCapacity(), before);
}

}  // namespace
}  // namespace berth::csi::itest
