#include "runtime/linux/rootfs.h"

#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/fs.h"
#include "common/strings.h"
#include "runtime/linux/devices.h"
#include "tests/unit/fakes/recording_syscalls.h"

namespace berth::rootfs {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// RecordingSyscalls that also performs the file-creating calls for real (mkdir,
// symlink, open with O_CREAT; mknod makes a regular file with the node's permission
// bits), so setupRootfs's later steps see what the earlier ones created.
class FsRecordingSyscalls : public berth::testing::RecordingSyscalls {
 public:
  SysIntResult mkdir(const char* path, mode_t mode) override {
    auto r = RecordingSyscalls::mkdir(path, mode);
    if (r.ok() && ::mkdir(path, mode) != 0) return {-1, errno};
    return r;
  }
  SysIntResult mknod(const char* path, mode_t mode, dev_t dev) override {
    auto r = RecordingSyscalls::mknod(path, mode, dev);
    if (!r.ok()) return r;
    int fd = ::open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode & 07777);
    if (fd < 0) return {-1, errno};
    ::close(fd);
    return r;
  }
  SysIntResult symlink(const char* target, const char* linkpath) override {
    auto r = RecordingSyscalls::symlink(target, linkpath);
    if (r.ok() && ::symlink(target, linkpath) != 0) return {-1, errno};
    return r;
  }
  SysIntResult open(const char* path, int flags, mode_t mode) override {
    auto r = RecordingSyscalls::open(path, flags, mode);
    if (r.ok() && (flags & O_CREAT)) {
      int fd = ::open(path, flags, mode);
      if (fd < 0) return {-1, errno};
      ::close(fd);
    }
    return r;
  }
};

// Formats calls the way RecordingSyscalls records them.
std::string mountCall(const char* source, const std::string& target, const char* type,
                      unsigned long flags, const char* data = nullptr) {
  char hexflags[32];
  snprintf(hexflags, sizeof(hexflags), "0x%lx", flags);
  auto s = [](const char* p) { return std::string(p == nullptr ? "-" : p); };
  return strCat("mount(", s(source), ", ", target, ", ", s(type), ", ", hexflags, ", ",
                s(data), ")");
}
std::string mountCall(const std::string& source, const std::string& target,
                      const char* type, unsigned long flags, const char* data = nullptr) {
  return mountCall(source.c_str(), target, type, flags, data);
}
std::string mkdirCall(const std::string& path) { return strCat("mkdir(", path, ", 01ed)"); }
std::string mknodCall(const std::string& path, mode_t mode, unsigned major,
                      unsigned minor) {
  return strCat("mknod(", path, ", 0", hex(mode), ", ",
                static_cast<dev_t>(makedev(major, minor)), ")");
}
std::string symlinkCall(const std::string& target, const std::string& link) {
  return strCat("symlink(", target, ", ", link, ")");
}

std::vector<std::string> defaultDeviceAndLinkCalls(const std::string& r, bool ptmx) {
  std::vector<std::string> calls = {
      mknodCall(r + "/dev/null", S_IFCHR | 0666, 1, 3),
      mknodCall(r + "/dev/zero", S_IFCHR | 0666, 1, 5),
      mknodCall(r + "/dev/full", S_IFCHR | 0666, 1, 7),
      mknodCall(r + "/dev/random", S_IFCHR | 0666, 1, 8),
      mknodCall(r + "/dev/urandom", S_IFCHR | 0666, 1, 9),
      mknodCall(r + "/dev/tty", S_IFCHR | 0666, 5, 0),
      symlinkCall("/proc/self/fd", r + "/dev/fd"),
      symlinkCall("/proc/self/fd/0", r + "/dev/stdin"),
      symlinkCall("/proc/self/fd/1", r + "/dev/stdout"),
      symlinkCall("/proc/self/fd/2", r + "/dev/stderr"),
  };
  if (::access("/proc/kcore", F_OK) == 0) {
    calls.push_back(symlinkCall("/proc/kcore", r + "/dev/core"));
  }
  if (ptmx) calls.push_back(symlinkCall("pts/ptmx", r + "/dev/ptmx"));
  return calls;
}

oci::Mount mnt(const std::string& destination, const std::string& type,
               const std::string& source, std::vector<std::string> options) {
  oci::Mount m;
  m.destination = destination;
  m.type = type;
  m.source = source;
  m.options = std::move(options);
  return m;
}

// The mounts `berth-runtime spec` / `runc spec` write.
std::vector<oci::Mount> defaultMounts() {
  return {
      mnt("/proc", "proc", "proc", {"nosuid", "noexec", "nodev"}),
      mnt("/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}),
      mnt("/dev/pts", "devpts", "devpts",
          {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}),
      mnt("/dev/shm", "tmpfs", "shm",
          {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}),
      mnt("/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}),
      mnt("/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", "ro"}),
      mnt("/sys/fs/cgroup", "cgroup", "cgroup",
          {"nosuid", "noexec", "nodev", "relatime", "ro"}),
  };
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = "/tmp/berth-rootfs-test-XXXXXX";
    char* p = ::mkdtemp(tmpl.data());
    EXPECT_NE(p, nullptr) << "mkdtemp: " << strerror(errno);
    path_ = tmpl;
  }
  ~TempDir() {
    Status st = fs::removeAll(path_);
    EXPECT_TRUE(st.ok()) << st;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class RootfsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    bundle_ = tmp_.path() + "/bundle";
    rootfs_ = bundle_ + "/rootfs";
    ASSERT_TRUE(fs::mkdirAll(rootfs_).ok());
    ctx_.sys = &sys_;
    ctx_.rootfs = rootfs_;
    ctx_.bundle = bundle_;
    spec_.root = oci::Root{"rootfs", false};
    spec_.linux = oci::Linux{};
  }

  TempDir tmp_;
  std::string bundle_;
  std::string rootfs_;
  FsRecordingSyscalls sys_;
  Context ctx_;
  oci::Spec spec_;
};

// ---------------------------------------------------------------------------
// parseMountOptions / parsePropagation / cleanPath

struct OptionsCase {
  std::vector<std::string> options;
  unsigned long flags;
  unsigned long propagation;
  std::string data;
};

TEST(ParseMountOptions, Table) {
  const std::vector<OptionsCase> cases = {
      {{}, 0, 0, ""},
      {{"defaults"}, 0, 0, ""},
      {{"ro"}, MS_RDONLY, 0, ""},
      {{"ro", "rw"}, 0, 0, ""},
      {{"nosuid", "nodev", "noexec"}, MS_NOSUID | MS_NODEV | MS_NOEXEC, 0, ""},
      {{"nosuid", "suid", "nodev", "dev", "noexec", "exec"}, 0, 0, ""},
      {{"sync"}, MS_SYNCHRONOUS, 0, ""},
      {{"sync", "async"}, 0, 0, ""},
      {{"dirsync"}, MS_DIRSYNC, 0, ""},
      {{"remount"}, MS_REMOUNT, 0, ""},
      {{"mand"}, MS_MANDLOCK, 0, ""},
      {{"mand", "nomand"}, 0, 0, ""},
      {{"noatime", "nodiratime"}, MS_NOATIME | MS_NODIRATIME, 0, ""},
      {{"noatime", "atime", "nodiratime", "diratime"}, 0, 0, ""},
      {{"relatime"}, MS_RELATIME, 0, ""},
      {{"relatime", "norelatime"}, 0, 0, ""},
      {{"strictatime"}, MS_STRICTATIME, 0, ""},
      {{"strictatime", "nostrictatime"}, 0, 0, ""},
      {{"bind"}, MS_BIND, 0, ""},
      {{"rbind"}, MS_BIND | MS_REC, 0, ""},
      {{"nosymfollow"}, MS_NOSYMFOLLOW, 0, ""},
      {{"lazytime"}, MS_LAZYTIME, 0, ""},
      {{"shared"}, 0, MS_SHARED, ""},
      {{"rshared"}, 0, MS_SHARED | MS_REC, ""},
      {{"slave"}, 0, MS_SLAVE, ""},
      {{"rslave"}, 0, MS_SLAVE | MS_REC, ""},
      {{"private"}, 0, MS_PRIVATE, ""},
      {{"rprivate"}, 0, MS_PRIVATE | MS_REC, ""},
      {{"unbindable"}, 0, MS_UNBINDABLE, ""},
      {{"runbindable"}, 0, MS_UNBINDABLE | MS_REC, ""},
      {{"shared", "rslave"}, 0, MS_SLAVE | MS_REC, ""},  // the last one wins
      {{"rbind", "ro", "rprivate"}, MS_BIND | MS_REC | MS_RDONLY, MS_PRIVATE | MS_REC, ""},
      {{"nosuid", "strictatime", "mode=755", "size=65536k"},
       MS_NOSUID | MS_STRICTATIME, 0, "mode=755,size=65536k"},
      {{"newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}, 0, 0,
       "newinstance,ptmxmode=0666,mode=0620,gid=5"},
      {{"tmpcopyup"}, 0, 0, ""},
      {{"rro", "rnosuid", "rnodev", "rnoexec"}, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
       0, ""},
      {{"ro", "rrw"}, 0, 0, ""},
      {{"rnoatime", "rstrictatime"}, MS_NOATIME | MS_STRICTATIME, 0, ""},
      {{"lowerdir=/a:/b", "upperdir=/u", "workdir=/w"}, 0, 0,
       "lowerdir=/a:/b,upperdir=/u,workdir=/w"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(joinStrings(c.options, ","));
    MountOptions got = parseMountOptions(c.options);
    EXPECT_EQ(got.flags, c.flags);
    EXPECT_EQ(got.propagation, c.propagation);
    EXPECT_EQ(got.data, c.data);
  }
}

TEST(ParsePropagation, KnownValuesAndDefault) {
  EXPECT_EQ(*parsePropagation(""), static_cast<unsigned long>(MS_REC | MS_SLAVE));
  EXPECT_EQ(*parsePropagation("shared"), static_cast<unsigned long>(MS_SHARED));
  EXPECT_EQ(*parsePropagation("rshared"), static_cast<unsigned long>(MS_SHARED | MS_REC));
  EXPECT_EQ(*parsePropagation("slave"), static_cast<unsigned long>(MS_SLAVE));
  EXPECT_EQ(*parsePropagation("rslave"), static_cast<unsigned long>(MS_SLAVE | MS_REC));
  EXPECT_EQ(*parsePropagation("private"), static_cast<unsigned long>(MS_PRIVATE));
  EXPECT_EQ(*parsePropagation("rprivate"), static_cast<unsigned long>(MS_PRIVATE | MS_REC));
  EXPECT_EQ(*parsePropagation("unbindable"), static_cast<unsigned long>(MS_UNBINDABLE));
  EXPECT_EQ(*parsePropagation("runbindable"),
            static_cast<unsigned long>(MS_UNBINDABLE | MS_REC));
}

TEST(ParsePropagation, UnknownValueIsInvalidArgument) {
  auto r = parsePropagation("sideways");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(r.status().message()),
            "linux.rootfsPropagation: unknown value \"sideways\"; use one of shared, slave, "
            "private, unbindable, rshared, rslave, rprivate, runbindable");
}

TEST(CleanPath, Lexical) {
  EXPECT_EQ(cleanPath("/dev//pts/"), "/dev/pts");
  EXPECT_EQ(cleanPath("/a/./b/../c"), "/a/c");
  EXPECT_EQ(cleanPath("/../../etc"), "/etc");
  EXPECT_EQ(cleanPath("etc/hosts"), "/etc/hosts");
  EXPECT_EQ(cleanPath("/"), "/");
  EXPECT_EQ(cleanPath(""), "/");
}

TEST(PreservedMountFlags, MissingPathIsZeroAndWritableDirIsNotReadonly) {
  EXPECT_EQ(preservedMountFlags("/nonexistent/berth/path"), 0u);
  TempDir tmp;
  EXPECT_EQ(preservedMountFlags(tmp.path()) & MS_RDONLY, 0u);
}

// ---------------------------------------------------------------------------
// setupRootfs

TEST_F(RootfsTest, DefaultSpecMountSequence) {
  const std::string& r = rootfs_;
  const std::string& b = bundle_;
  ASSERT_TRUE(fs::mkdirAll(b + "/data").ok());
  ASSERT_TRUE(fs::writeFileAtomic(b + "/hosts", "127.0.0.1 localhost\n").ok());
  spec_.mounts = defaultMounts();
  spec_.mounts.push_back(mnt("/data", "bind", "data", {"rbind", "ro", "rprivate"}));
  spec_.mounts.push_back(mnt("/etc/hosts", "bind", b + "/hosts", {"bind", "ro"}));

  Status st = setupRootfs(ctx_, spec_);
  ASSERT_TRUE(st.ok()) << st;

  const unsigned long kStd = MS_NOSUID | MS_NODEV | MS_NOEXEC;
  std::vector<std::string> want = {
      mountCall(nullptr, "/", nullptr, MS_REC | MS_SLAVE),
      mountCall(r, r, "bind", MS_BIND | MS_REC),
      mkdirCall(r + "/proc"),
      mountCall("proc", r + "/proc", "proc", kStd),
      mkdirCall(r + "/dev"),
      mountCall("tmpfs", r + "/dev", "tmpfs", MS_NOSUID | MS_STRICTATIME,
                "mode=755,size=65536k"),
      mkdirCall(r + "/dev/pts"),
      mountCall("devpts", r + "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
                "newinstance,ptmxmode=0666,mode=0620,gid=5"),
      mkdirCall(r + "/dev/shm"),
      mountCall("shm", r + "/dev/shm", "tmpfs", kStd, "mode=1777,size=65536k"),
      mkdirCall(r + "/dev/mqueue"),
      mountCall("mqueue", r + "/dev/mqueue", "mqueue", kStd),
      mkdirCall(r + "/sys"),
      mountCall("sysfs", r + "/sys", "sysfs", kStd | MS_RDONLY),
      mkdirCall(r + "/sys/fs"),
      mkdirCall(r + "/sys/fs/cgroup"),
      mountCall("cgroup", r + "/sys/fs/cgroup", "cgroup2", kStd | MS_RELATIME | MS_RDONLY),
      mkdirCall(r + "/data"),
      mountCall(b + "/data", r + "/data", "bind", MS_BIND | MS_REC),
      mountCall(nullptr, r + "/data", nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY),
      mountCall(nullptr, r + "/data", nullptr, MS_PRIVATE | MS_REC),
      mkdirCall(r + "/etc"),
      strCat("open(", r, "/etc/hosts, 0x", hex(O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW),
             ", 01a4)"),
      "close(100)",
      mountCall(b + "/hosts", r + "/etc/hosts", "bind", MS_BIND),
      mountCall(nullptr, r + "/etc/hosts", nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY),
  };
  for (auto& c : defaultDeviceAndLinkCalls(r, /*ptmx=*/true)) want.push_back(c);
  EXPECT_EQ(sys_.calls(), want);

  // The file-creation parts ran: a file mount point for the file bind, device nodes
  // with their exact mode (umask bypassed), the ptmx symlink.
  struct stat st_hosts {};
  ASSERT_EQ(::lstat((r + "/etc/hosts").c_str(), &st_hosts), 0);
  EXPECT_TRUE(S_ISREG(st_hosts.st_mode));
  struct stat st_null {};
  ASSERT_EQ(::lstat((r + "/dev/null").c_str(), &st_null), 0);
  EXPECT_EQ(st_null.st_mode & 07777, 0666u);
  char link[64] = {};
  ASSERT_GT(::readlink((r + "/dev/ptmx").c_str(), link, sizeof(link) - 1), 0);
  EXPECT_STREQ(link, "pts/ptmx");
}

TEST_F(RootfsTest, MountDestinationsCannotEscapeTheRootfsThroughSymlinks) {
  ASSERT_EQ(::symlink("/etc", (rootfs_ + "/etclink").c_str()), 0);
  ASSERT_EQ(::symlink("../../", (rootfs_ + "/up").c_str()), 0);
  ASSERT_TRUE(fs::mkdirAll(rootfs_ + "/a/b").ok());
  ASSERT_EQ(::symlink("../../../../../../..", (rootfs_ + "/a/b/deep").c_str()), 0);
  spec_.mounts = {
      mnt("/etclink/sub", "tmpfs", "tmpfs", {}),
      mnt("/up/escape", "tmpfs", "tmpfs", {}),
      mnt("/a/b/deep/tmp/x", "tmpfs", "tmpfs", {}),
      mnt("/../../outside", "tmpfs", "tmpfs", {}),
  };
  spec_.mounts.push_back(mnt("/dev", "bind", "/dev", {"rbind"}));  // no device noise
  ASSERT_TRUE(setupRootfs(ctx_, spec_).ok());

  std::vector<std::string> mounts;
  for (const auto& c : sys_.calls()) {
    if (c.rfind("mount(tmpfs", 0) == 0) mounts.push_back(c);
  }
  EXPECT_EQ(mounts, (std::vector<std::string>{
                        mountCall("tmpfs", rootfs_ + "/etc/sub", "tmpfs", 0),
                        mountCall("tmpfs", rootfs_ + "/escape", "tmpfs", 0),
                        mountCall("tmpfs", rootfs_ + "/tmp/x", "tmpfs", 0),
                        mountCall("tmpfs", rootfs_ + "/outside", "tmpfs", 0),
                    }));
  // Mount points were created inside the rootfs, nothing beside it.
  EXPECT_TRUE(fs::exists(rootfs_ + "/etc/sub"));
  EXPECT_TRUE(fs::exists(rootfs_ + "/escape"));
  EXPECT_FALSE(fs::exists(bundle_ + "/escape"));
  EXPECT_FALSE(fs::exists(tmp_.path() + "/escape"));
  EXPECT_FALSE(fs::exists("/etc/sub"));
  EXPECT_FALSE(fs::exists(tmp_.path() + "/outside"));
}

TEST_F(RootfsTest, MountErrorNamesTheMount) {
  spec_.mounts = defaultMounts();
  sys_.failOn("mount(proc", EPERM);
  Status st = setupRootfs(ctx_, spec_);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(std::string(st.message()),
            strCat("mount \"proc\" on \"/proc\" (rootfs path \"", rootfs_,
                   "/proc\"): Operation not permitted (EPERM)"));
  EXPECT_EQ(errnoOf(st), EPERM);
  // Nothing after the failing mount was attempted.
  EXPECT_THAT(sys_.calls().back(), StartsWith("mount(proc"));
}

TEST_F(RootfsTest, MissingBindSourceIsNamed) {
  spec_.mounts = {mnt("/data", "bind", "nope", {"rbind"})};
  Status st = setupRootfs(ctx_, spec_);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(st.message()),
              HasSubstr(strCat("bind source \"", bundle_, "/nope\": No such file")));
}

TEST_F(RootfsTest, CgroupFallsBackToReadOnlyBindOfTheHostCgroup2) {
  spec_.mounts = {defaultMounts()[6]};
  spec_.mounts[0].options = {"nosuid", "noexec", "nodev", "relatime"};  // rw asked
  sys_.failOn("mount(cgroup, ", EPERM);
  ASSERT_TRUE(setupRootfs(ctx_, spec_).ok());
  const auto& calls = sys_.calls();
  auto it = std::find_if(calls.begin(), calls.end(),
                         [](const std::string& c) { return c.rfind("mount(cgroup", 0) == 0; });
  ASSERT_NE(it, calls.end());
  ASSERT_GE(calls.end() - it, 3);
  EXPECT_THAT(it[1], StartsWith("mount(/"));
  EXPECT_THAT(it[1], HasSubstr(strCat(", ", rootfs_, "/sys/fs/cgroup, bind, 0x5000, -)")));
  EXPECT_EQ(it[2], mountCall(nullptr, rootfs_ + "/sys/fs/cgroup", nullptr,
                             MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV |
                                 MS_NOEXEC | MS_RELATIME));
}

TEST_F(RootfsTest, SysfsRefusedFallsBackToHostSysBind) {
  spec_.mounts = {defaultMounts()[5]};
  sys_.failOn("mount(sysfs", EPERM);
  ASSERT_TRUE(setupRootfs(ctx_, spec_).ok());
  const auto& calls = sys_.calls();
  auto it = std::find(calls.begin(), calls.end(),
                      mountCall("/sys", rootfs_ + "/sys", "bind", MS_BIND | MS_REC));
  ASSERT_NE(it, calls.end());
  ASSERT_NE(it + 1, calls.end());
  EXPECT_EQ(it[1], mountCall(nullptr, rootfs_ + "/sys", nullptr,
                             MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV |
                                 MS_NOEXEC));
}

TEST_F(RootfsTest, MqueueRefusedIsSkippedOnlyInAUserNamespace) {
  spec_.mounts = {defaultMounts()[4]};
  sys_.failOn("mount(mqueue", EPERM);
  Status st = setupRootfs(ctx_, spec_);
  EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied);

  sys_.clear();
  ctx_.in_user_ns = true;
  st = setupRootfs(ctx_, spec_);
  EXPECT_TRUE(st.ok()) << st;
}

TEST_F(RootfsTest, DevicesAreBoundFromTheHostInAUserNamespace) {
  spec_.mounts = {defaultMounts()[1]};
  ctx_.in_user_ns = true;
  ASSERT_TRUE(setupRootfs(ctx_, spec_).ok());
  std::vector<std::string> binds;
  for (const auto& c : sys_.calls()) {
    EXPECT_THAT(c, ::testing::Not(StartsWith("mknod"))) << "no mknod in a user namespace";
    if (c.find(", bind, 0x1000, -)") != std::string::npos) binds.push_back(c);
  }
  EXPECT_EQ(binds, (std::vector<std::string>{
                       mountCall("/dev/null", rootfs_ + "/dev/null", "bind", MS_BIND),
                       mountCall("/dev/zero", rootfs_ + "/dev/zero", "bind", MS_BIND),
                       mountCall("/dev/full", rootfs_ + "/dev/full", "bind", MS_BIND),
                       mountCall("/dev/random", rootfs_ + "/dev/random", "bind", MS_BIND),
                       mountCall("/dev/urandom", rootfs_ + "/dev/urandom", "bind", MS_BIND),
                       mountCall("/dev/tty", rootfs_ + "/dev/tty", "bind", MS_BIND),
                   }));
  struct stat st {};
  ASSERT_EQ(::lstat((rootfs_ + "/dev/tty").c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
}

TEST_F(RootfsTest, ConfiguredDevicesOverrideDefaults) {
  oci::Device null_dev{"c", "/dev//null", 1, 3, 0600, std::nullopt, std::nullopt};
  oci::Device fuse{"c", "/dev/fuse", 10, 229, std::nullopt, std::nullopt, std::nullopt};
  oci::Device disk{"b", "/dev/disks/sda", 8, 0, 0640, std::nullopt, std::nullopt};
  spec_.linux->devices = {null_dev, fuse, disk};
  ASSERT_TRUE(setupRootfs(ctx_, spec_).ok());
  std::vector<std::string> nodes;
  for (const auto& c : sys_.calls()) {
    if (c.rfind("mknod", 0) == 0 || c.rfind("mkdir", 0) == 0) nodes.push_back(c);
  }
  const std::string& r = rootfs_;
  EXPECT_EQ(nodes, (std::vector<std::string>{
                       mkdirCall(r + "/dev"),
                       mknodCall(r + "/dev/null", S_IFCHR | 0600, 1, 3),
                       mknodCall(r + "/dev/fuse", S_IFCHR | 0666, 10, 229),
                       mkdirCall(r + "/dev/disks"),
                       mknodCall(r + "/dev/disks/sda", S_IFBLK | 0640, 8, 0),
                       mknodCall(r + "/dev/zero", S_IFCHR | 0666, 1, 5),
                       mknodCall(r + "/dev/full", S_IFCHR | 0666, 1, 7),
                       mknodCall(r + "/dev/random", S_IFCHR | 0666, 1, 8),
                       mknodCall(r + "/dev/urandom", S_IFCHR | 0666, 1, 9),
                       mknodCall(r + "/dev/tty", S_IFCHR | 0666, 5, 0),
                   }));
  struct stat st {};
  ASSERT_EQ(::lstat((r + "/dev/null").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  // No devpts in the config: no /dev/ptmx symlink.
  EXPECT_FALSE(fs::exists(r + "/dev/ptmx"));
}

TEST_F(RootfsTest, HostDevBindCreatesNoDevices) {
  spec_.mounts = {mnt("/dev", "bind", "/dev", {"rbind", "rslave"})};
  ASSERT_TRUE(setupRootfs(ctx_, spec_).ok());
  for (const auto& c : sys_.calls()) {
    EXPECT_THAT(c, ::testing::Not(StartsWith("mknod")));
    EXPECT_THAT(c, ::testing::Not(StartsWith("symlink")));
  }
  EXPECT_EQ(sys_.calls().back(), mountCall(nullptr, rootfs_ + "/dev", nullptr,
                                           MS_SLAVE | MS_REC));
}

TEST_F(RootfsTest, SharedRootPropagationMakesTheRootfsParentPrivate) {
  spec_.linux->rootfsPropagation = "rshared";
  ASSERT_TRUE(setupRootfs(ctx_, spec_).ok());
  const auto& calls = sys_.calls();
  ASSERT_GE(calls.size(), 3u);
  EXPECT_EQ(calls[0], mountCall(nullptr, "/", nullptr, MS_SHARED | MS_REC));
  EXPECT_THAT(calls[1], StartsWith("mount(-, /"));
  EXPECT_THAT(calls[1], HasSubstr(", -, 0x40000, -)"));  // MS_PRIVATE, not recursive
  EXPECT_EQ(calls[2], mountCall(rootfs_, rootfs_, "bind", MS_BIND | MS_REC));
}

TEST_F(RootfsTest, InvalidPropagationFailsBeforeAnyMount) {
  spec_.linux->rootfsPropagation = "bogus";
  Status st = setupRootfs(ctx_, spec_);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(sys_.calls().empty());
}

TEST_F(RootfsTest, RelativeRootfsIsRejected) {
  ctx_.rootfs = "rootfs";
  EXPECT_EQ(setupRootfs(ctx_, spec_).code(), absl::StatusCode::kFailedPrecondition);
  ctx_.sys = nullptr;
  EXPECT_EQ(pivotRoot(ctx_).code(), absl::StatusCode::kFailedPrecondition);
}

// ---------------------------------------------------------------------------
// pivotRoot

TEST_F(RootfsTest, PivotRootFdDance) {
  ASSERT_TRUE(pivotRoot(ctx_).ok());
  const std::string dir_flags = hex(O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  EXPECT_EQ(sys_.calls(), (std::vector<std::string>{
                              strCat("open(/, 0x", dir_flags, ", 00)"),
                              strCat("open(", rootfs_, ", 0x", dir_flags, ", 00)"),
                              "fchdir(101)",
                              "pivot_root(., .)",
                              "fchdir(100)",
                              mountCall(nullptr, ".", nullptr, MS_SLAVE | MS_REC),
                              strCat("umount2(., ", MNT_DETACH, ")"),
                              "chdir(/)",
                              "close(101)",
                              "close(100)",
                          }));
}

TEST_F(RootfsTest, PivotRootEinvalFallsBackToMoveAndChroot) {
  sys_.failOn("pivot_root", EINVAL);
  ASSERT_TRUE(pivotRoot(ctx_).ok());
  std::vector<std::string> tail(sys_.calls().begin() + 3, sys_.calls().end());
  EXPECT_EQ(tail, (std::vector<std::string>{
                      "pivot_root(., .) = -22",
                      strCat("chdir(", rootfs_, ")"),
                      mountCall(rootfs_, "/", nullptr, MS_MOVE),
                      "chroot(.)",
                      "chdir(/)",
                      "close(101)",
                      "close(100)",
                  }));
}

TEST_F(RootfsTest, PivotRootOtherErrorIsReported) {
  sys_.failOn("pivot_root", EPERM);
  Status st = pivotRoot(ctx_);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(std::string(st.message()),
            strCat("pivot_root into \"", rootfs_, "\": Operation not permitted (EPERM)"));
  EXPECT_EQ(sys_.calls().back(), "close(100)");  // fds closed on the error path
}

// ---------------------------------------------------------------------------
// finishRootfs

TEST_F(RootfsTest, MaskedAndReadonlyPathsAndReadonlyRoot) {
  const std::string& t = rootfs_;  // stands in for the container's "/" after pivot
  ctx_.container_root = t;
  ASSERT_TRUE(fs::mkdirAll(t + "/proc/acpi").ok());
  ASSERT_TRUE(fs::mkdirAll(t + "/proc/sys").ok());
  ASSERT_TRUE(fs::writeFileAtomic(t + "/proc/kcore", "secret").ok());
  spec_.linux->maskedPaths = {"/proc/kcore", "/proc/acpi", "/proc/missing"};
  spec_.linux->readonlyPaths = {"/proc/sys", "/proc/nothere"};
  spec_.root->readonly = true;

  Status st = finishRootfs(ctx_, spec_);
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(sys_.calls(),
            (std::vector<std::string>{
                mountCall(t + "/dev/null", t + "/proc/kcore", "bind", MS_BIND),
                mountCall("tmpfs", t + "/proc/acpi", "tmpfs", MS_RDONLY),
                mountCall(t + "/proc/sys", t + "/proc/sys", "bind", MS_BIND | MS_REC),
                mountCall(nullptr, t + "/proc/sys", nullptr,
                          MS_REMOUNT | MS_BIND | MS_RDONLY | preservedMountFlags(t + "/proc/sys")),
                mountCall(nullptr, t, nullptr,
                          MS_REMOUNT | MS_BIND | MS_RDONLY | preservedMountFlags(t)),
            }));
}

TEST_F(RootfsTest, FinishRemountsReadonlyDevAndReappliesPropagation) {
  const std::string& t = rootfs_;
  ctx_.container_root = t;
  ASSERT_TRUE(fs::mkdirAll(t + "/dev").ok());
  spec_.mounts = {mnt("/dev", "tmpfs", "tmpfs", {"nosuid", "ro", "mode=755"})};
  spec_.linux->rootfsPropagation = "rshared";
  ASSERT_TRUE(finishRootfs(ctx_, spec_).ok());
  EXPECT_EQ(sys_.calls(),
            (std::vector<std::string>{
                mountCall(nullptr, t + "/dev", nullptr,
                          MS_REMOUNT | MS_BIND | MS_RDONLY | preservedMountFlags(t + "/dev")),
                mountCall(nullptr, t, nullptr, MS_SHARED | MS_REC),
            }));

  // rprivate was applied before the pivot; nothing to redo.
  sys_.clear();
  spec_.mounts.clear();
  spec_.linux->rootfsPropagation = "rprivate";
  ASSERT_TRUE(finishRootfs(ctx_, spec_).ok());
  EXPECT_TRUE(sys_.calls().empty());
}

TEST_F(RootfsTest, ReadonlyDevIsMountedWritableFirst) {
  spec_.mounts = {mnt("/dev", "tmpfs", "tmpfs", {"nosuid", "ro", "mode=755"})};
  ASSERT_TRUE(setupRootfs(ctx_, spec_).ok());
  EXPECT_EQ(sys_.calls()[3], mountCall("tmpfs", rootfs_ + "/dev", "tmpfs", MS_NOSUID,
                                       "mode=755"));
}

TEST_F(RootfsTest, MaskErrorNamesThePath) {
  ctx_.container_root = rootfs_;
  ASSERT_TRUE(fs::mkdirAll(rootfs_ + "/proc/acpi").ok());
  spec_.linux->maskedPaths = {"/proc/acpi"};
  sys_.failOn("mount(tmpfs", EACCES);
  Status st = finishRootfs(ctx_, spec_);
  EXPECT_EQ(std::string(st.message()),
            strCat("linux.maskedPaths: mask \"/proc/acpi\" (path \"", rootfs_,
                   "/proc/acpi\"): Permission denied (EACCES)"));
}

// ---------------------------------------------------------------------------
// devices

TEST(Devices, DefaultsAndTypes) {
  ASSERT_EQ(devices::defaultDevices().size(), 6u);
  for (const auto& d : devices::defaultDevices()) {
    EXPECT_EQ(d.type, "c");
    EXPECT_EQ(d.fileMode.value_or(0), 0666u) << d.path;
  }
  oci::Device bad{"x", "/dev/odd", 1, 1, std::nullopt, std::nullopt, std::nullopt};
  auto t = devices::fileType(bad);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(std::string(t.status().message()),
            "linux.devices: device \"/dev/odd\": unknown type \"x\"; use one of c, u, b, p");
  bad.type = "p";
  EXPECT_EQ(*devices::fileType(bad), static_cast<mode_t>(S_IFIFO));
  bad.type = "u";
  EXPECT_EQ(*devices::fileType(bad), static_cast<mode_t>(S_IFCHR));
}

TEST(Devices, MknodErrorNamesTheDevice) {
  TempDir tmp;
  berth::testing::RecordingSyscalls sys;
  sys.failOn("mknod", EPERM);
  oci::Device fuse{"c", "/dev/fuse", 10, 229, std::nullopt, std::nullopt, std::nullopt};
  ASSERT_TRUE(fs::mkdirAll(tmp.path() + "/dev").ok());
  Status st = devices::createDevice(sys, tmp.path(), fuse, false);
  EXPECT_EQ(std::string(st.message()),
            strCat("create device \"/dev/fuse\" (rootfs path \"", tmp.path(),
                   "/dev/fuse\"): mknod: Operation not permitted (EPERM)"));
}


// ---------------------------------------------------------------------------
// Privileged: the real thing in a throwaway mount namespace.

// Runs in the forked child; returns "" on success or what went wrong.
std::string buildAndCheckContainerRoot(const std::string& tmp) {
  if (::unshare(CLONE_NEWNS) != 0) return strCat("SKIP unshare(CLONE_NEWNS): ", strerror(errno));
  const std::string bundle = tmp + "/bundle";
  const std::string rootfs = bundle + "/rootfs";
  for (const char* d : {"/bin", "/ro", "/masked_dir"}) {
    if (!fs::mkdirAll(rootfs + d).ok()) return strCat("mkdir ", d);
  }
  auto busybox = fs::readFile("/bin/busybox");
  if (!busybox.ok()) return strCat("SKIP no /bin/busybox: ", busybox.status().ToString());
  if (!fs::writeFileAtomic(rootfs + "/bin/busybox", *busybox, 0755).ok()) return "copy busybox";
  if (::symlink("busybox", (rootfs + "/bin/sh").c_str()) != 0) return "symlink sh";
  if (!fs::writeFileAtomic(rootfs + "/secret", "top secret\n").ok()) return "write secret";
  if (!fs::writeFileAtomic(rootfs + "/masked_dir/f", "x").ok()) return "write masked_dir/f";
  if (!fs::writeFileAtomic(rootfs + "/ro/existing", "old").ok()) return "write ro/existing";

  oci::Spec spec;
  spec.root = oci::Root{"rootfs", false};
  spec.mounts = {
      mnt("/proc", "proc", "proc", {"nosuid", "noexec", "nodev"}),
      mnt("/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}),
      mnt("/dev/pts", "devpts", "devpts",
          {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}),
  };
  spec.linux = oci::Linux{};
  spec.linux->maskedPaths = {"/secret", "/masked_dir", "/proc/does-not-exist"};
  spec.linux->readonlyPaths = {"/ro"};

  Context ctx;
  ctx.sys = &RealSyscalls::get();
  ctx.rootfs = rootfs;
  ctx.bundle = bundle;
  if (Status st = setupRootfs(ctx, spec); !st.ok()) return strCat("setupRootfs: ", st.ToString());
  if (Status st = pivotRoot(ctx); !st.ok()) return strCat("pivotRoot: ", st.ToString());
  if (Status st = finishRootfs(ctx, spec); !st.ok()) {
    return strCat("finishRootfs: ", st.ToString());
  }

  struct stat st {};
  if (::stat("/proc/self", &st) != 0) return "/proc/self missing: proc not mounted";
  if (::stat("/dev/null", &st) != 0 || !S_ISCHR(st.st_mode) ||
      st.st_rdev != makedev(1, 3) || (st.st_mode & 0777) != 0666) {
    return "/dev/null is not a 0666 char device 1:3";
  }
  int fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (fd < 0 || ::write(fd, "x", 1) != 1) return strCat("write /dev/null: ", strerror(errno));
  ::close(fd);
  for (const char* path : {"/ro/new", "/ro/existing"}) {
    fd = ::open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0) return strCat("open ", path, " for writing succeeded; want EROFS");
    if (errno != EROFS) return strCat("open ", path, ": want EROFS, got ", strerror(errno));
  }
  auto secret = fs::readFile("/secret");
  if (!secret.ok() || !secret->empty()) return "/secret is not masked (not empty)";
  auto listing = fs::listDir("/masked_dir");
  if (!listing.ok() || !listing->empty()) return "/masked_dir is not masked (not empty)";
  if (::stat(tmp.c_str(), &st) == 0 || errno != ENOENT) {
    return strCat("old root still visible: ", tmp, " exists");
  }
  char link[64] = {};
  if (::readlink("/dev/ptmx", link, sizeof(link) - 1) <= 0 || std::string(link) != "pts/ptmx") {
    return "/dev/ptmx is not a symlink to pts/ptmx";
  }
  if (::stat("/dev/pts/ptmx", &st) != 0) return "no devpts at /dev/pts";
  // The rootfs is usable: busybox sh runs in it.
  pid_t pid = ::fork();
  if (pid == 0) {
    ::execl("/bin/sh", "sh", "-c", "test -c /dev/null && test ! -e /bin/bash", nullptr);
    ::_exit(127);
  }
  int status = 0;
  if (pid < 0 || ::waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
      WEXITSTATUS(status) != 0) {
    return strCat("/bin/sh in the container failed, status ", status);
  }
  return "";
}

TEST(RootfsPrivileged, BuildsAndPivotsIntoABusyboxRootfs) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (mount namespaces, mknod, pivot_root)";
  if (::access("/bin/busybox", X_OK) != 0) GTEST_SKIP() << "needs /bin/busybox (busybox-static)";
  TempDir tmp;
  int pipefd[2];
  ASSERT_EQ(::pipe2(pipefd, O_CLOEXEC), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(pipefd[0]);
    std::string err = buildAndCheckContainerRoot(tmp.path());
    if (!err.empty()) {
      (void)!::write(pipefd[1], err.data(), err.size());
      ::_exit(1);
    }
    ::_exit(0);
  }
  ::close(pipefd[1]);
  std::string message;
  char buf[512];
  ssize_t n;
  while ((n = ::read(pipefd[0], buf, sizeof(buf))) > 0) message.append(buf, n);
  ::close(pipefd[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  if (message.rfind("SKIP ", 0) == 0) GTEST_SKIP() << message.substr(5);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "status " << status << ": " << message;
  // The child's mount namespace died with it: nothing is mounted under the temp dir.
  auto mountinfo = fs::readFile("/proc/self/mountinfo");
  ASSERT_TRUE(mountinfo.ok());
  EXPECT_EQ(mountinfo->find(tmp.path()), std::string::npos);
}

}  // namespace
}  // namespace berth::rootfs
