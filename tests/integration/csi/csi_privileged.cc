#include "tests/integration/csi/csi_privileged.h"

#include <fcntl.h>
#include <linux/loop.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "common/fs.h"
#include "common/strings.h"
#include "csi/loop_device.h"

namespace berth::csi::itest {
namespace {

namespace v1 = ::csi::v1;

std::string& problem() {
  static std::string p = "main() did not set up the private mount namespace";
  return p;
}

std::string nsLink(const char* path) {
  char buf[128] = {};
  ssize_t n = ::readlink(path, buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

// The absolute real path of `path` (itself when it cannot be resolved).
std::string realPath(const std::string& path) {
  char* r = ::realpath(path.c_str(), nullptr);
  if (r == nullptr) return path;
  std::string out = r;
  ::free(r);
  return out;
}

bool under(const std::string& path, const std::string& root) {
  return path == root || (path.size() > root.size() && path.compare(0, root.size(), root) == 0 &&
                          path[root.size()] == '/');
}

// Mount points of /proc/self/mountinfo (field 5, octal escapes decoded), in order.
std::vector<std::string> allMounts() {
  std::vector<std::string> out;
  auto info = fs::readFile("/proc/self/mountinfo");
  if (!info.ok()) return out;
  for (const std::string& line : split(*info, '\n', true)) {
    std::vector<std::string> f = split(line, ' ');
    if (f.size() < 5) continue;
    std::string mp;
    const std::string& raw = f[4];
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '\\' && i + 3 < raw.size()) {
        mp.push_back(static_cast<char>(std::stoi(raw.substr(i + 1, 3), nullptr, 8)));
        i += 3;
      } else {
        mp.push_back(raw[i]);
      }
    }
    out.push_back(mp);
  }
  return out;
}

void scanInto(const std::string& root, const std::string& rel,
              std::map<std::string, TreeEntry>& out,
              std::map<std::pair<dev_t, ino_t>, std::string>& links) {
  std::string path = rel.empty() ? root : root + "/" + rel;
  std::string key = rel.empty() ? "." : rel;
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return;
  TreeEntry e;
  e.mode = st.st_mode;
  e.uid = st.st_uid;
  e.gid = st.st_gid;
  e.size = S_ISDIR(st.st_mode) ? 0 : st.st_size;  // directory sizes depend on the filesystem
  if (S_ISLNK(st.st_mode)) {
    char buf[4096] = {};
    ssize_t n = ::readlink(path.c_str(), buf, sizeof(buf) - 1);
    e.content.assign(buf, n > 0 ? static_cast<size_t>(n) : 0);
  } else if (S_ISREG(st.st_mode)) {
    e.content = fs::readFile(path).value_or("<unreadable>");
  }
  if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
    auto [it, inserted] = links.emplace(std::make_pair(st.st_dev, st.st_ino), key);
    e.link_group = it->second;
  }
  out[key] = e;
  if (S_ISDIR(st.st_mode)) {
    auto names = fs::listDir(path).value_or(std::vector<std::string>{});
    std::sort(names.begin(), names.end());
    for (const auto& name : names) scanInto(root, rel.empty() ? name : rel + "/" + name, out, links);
  }
}

std::string octal(unsigned v) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%o", v);
  return buf;
}

std::string describe(const TreeEntry& e) {
  return strCat("mode 0", octal(e.mode), " uid ", e.uid, " gid ", e.gid, " size ", e.size,
                " content ", e.content.size(), " bytes",
                e.link_group.empty() ? "" : " linked to " + e.link_group);
}

}  // namespace

std::string enterPrivateMountNamespace() {
  if (::geteuid() != 0) {
    problem() = "needs root (mount namespaces, bind mounts, loop devices)";
    return problem();
  }
  std::string before = nsLink("/proc/self/ns/mnt");
  if (::unshare(CLONE_NEWNS) != 0) {
    problem() = strCat("unshare(CLONE_NEWNS): ", std::strerror(errno));
    return problem();
  }
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    problem() = strCat("make / rprivate in the new mount namespace: ", std::strerror(errno));
    return problem();
  }
  std::string after = nsLink("/proc/self/ns/mnt");
  if (after.empty() || after == before) {
    problem() = strCat("unshare(CLONE_NEWNS) did not take effect (", before, ")");
    return problem();
  }
  problem().clear();
  return problem();
}

const std::string& mountNamespaceProblem() { return problem(); }

std::string loopUnavailableReason() {
  struct stat st;
  if (::stat("/dev/loop-control", &st) != 0) {
    return strCat("no /dev/loop-control (", std::strerror(errno),
                  "): the loop driver is missing; load it with `modprobe loop`");
  }
  int fd = ::open("/dev/loop-control", O_RDWR | O_CLOEXEC);
  if (fd < 0) return strCat("open /dev/loop-control: ", std::strerror(errno));
  int n = ::ioctl(fd, LOOP_CTL_GET_FREE);
  int err = errno;
  ::close(fd);
  if (n < 0) return strCat("LOOP_CTL_GET_FREE on /dev/loop-control: ", std::strerror(err));
  std::string dev = strCat("/dev/loop", n);
  if (::stat(dev.c_str(), &st) != 0 || !S_ISBLK(st.st_mode)) {
    return strCat(dev, " (the free loop device) has no device node in /dev (",
                  std::strerror(errno), "): /dev is not a devtmpfs here");
  }
  return "";
}

std::vector<std::string> mountsUnder(const std::string& root) {
  std::string r = realPath(root);
  std::vector<std::string> out;
  for (const auto& mp : allMounts()) {
    if (under(mp, r) || under(mp, root)) out.push_back(mp);
  }
  return out;
}

int unmountUnder(const std::string& root) {
  int n = 0;
  for (int round = 0; round < 8; ++round) {
    std::vector<std::string> mps = mountsUnder(root);
    if (mps.empty()) break;
    // Deepest (and, for stacked mounts, latest) first.
    std::reverse(mps.begin(), mps.end());
    std::stable_sort(mps.begin(), mps.end(), [](const std::string& a, const std::string& b) {
      return a.size() > b.size();
    });
    for (const auto& mp : mps) {
      if (::umount2(mp.c_str(), MNT_DETACH) == 0) ++n;
    }
  }
  return n;
}

std::vector<std::string> loopsBackedBy(const std::string& file) {
  std::vector<std::string> out;
  std::string want = realPath(file);
  for (const auto& name : fs::listDir("/sys/block").value_or(std::vector<std::string>{})) {
    if (name.rfind("loop", 0) != 0) continue;
    auto backing = fs::readFile(strCat("/sys/block/", name, "/loop/backing_file"));
    if (!backing.ok()) continue;
    std::string b(trim(*backing));
    if (b == want || b == file) out.push_back("/dev/" + name);
  }
  return out;
}

int detachLoopsUnder(const std::string& root) {
  std::string r = realPath(root);
  int n = 0;
  for (const auto& name : fs::listDir("/sys/block").value_or(std::vector<std::string>{})) {
    if (name.rfind("loop", 0) != 0) continue;
    auto backing = fs::readFile(strCat("/sys/block/", name, "/loop/backing_file"));
    if (!backing.ok()) continue;
    std::string b(trim(*backing));
    if (b.size() > 10 && b.compare(b.size() - 10, 10, " (deleted)") == 0) b.resize(b.size() - 10);
    if (!under(b, r) && !under(b, root)) continue;
    if (detachLoop("/dev/" + name).ok()) ++n;
  }
  return n;
}

std::map<std::string, TreeEntry> scanTree(const std::string& root) {
  std::map<std::string, TreeEntry> out;
  std::map<std::pair<dev_t, ino_t>, std::string> links;
  scanInto(root, "", out, links);
  return out;
}

std::string diffTrees(const std::map<std::string, TreeEntry>& want,
                      const std::map<std::string, TreeEntry>& got) {
  std::string out;
  for (const auto& [path, e] : want) {
    auto it = got.find(path);
    if (it == got.end()) {
      out += strCat(path, ": missing\n");
    } else if (!(it->second == e)) {
      out += strCat(path, ": want ", describe(e), ", got ", describe(it->second), "\n");
    }
  }
  for (const auto& [path, e] : got) {
    if (want.find(path) == want.end()) out += strCat(path, ": unexpected (", describe(e), ")\n");
  }
  return out;
}

::testing::AssertionResult putFile(const std::string& path, std::string_view data, mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) {
    return ::testing::AssertionFailure() << "create \"" << path << "\": " << std::strerror(errno);
  }
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = errno;
      ::close(fd);
      return ::testing::AssertionFailure() << "write \"" << path << "\" at " << done << ": "
                                           << std::strerror(err);
    }
    done += static_cast<size_t>(n);
  }
  if (::close(fd) != 0) {
    return ::testing::AssertionFailure() << "close \"" << path << "\": " << std::strerror(errno);
  }
  return ::testing::AssertionSuccess();
}

std::string randomBytes(size_t n) {
  std::string out(n, '\0');
  int fd = ::open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  size_t got = 0;
  while (fd >= 0 && got < n) {
    ssize_t r = ::read(fd, out.data() + got, n - got);
    if (r <= 0) break;
    got += static_cast<size_t>(r);
  }
  if (fd >= 0) ::close(fd);
  EXPECT_EQ(got, n) << "read /dev/urandom";
  return out;
}

// --- fixture ---------------------------------------------------------------------

void CsiPrivilegedTest::SetUp() {
  if (!mountNamespaceProblem().empty()) GTEST_SKIP() << mountNamespaceProblem();
  started_ = true;  // from here on TearDown cleans up under srv_.root()
  prepare();
  if (IsSkipped() || HasFatalFailure()) return;
  ASSERT_TRUE(srv_.start());
}

void CsiPrivilegedTest::TearDown() {
  if (!started_) return;
  // Whatever a failed test left. The server goes first (it may hold files open on a
  // filesystem mounted below its directory), then mounts (a loop device that backs a
  // mount cannot detach), then loop devices.
  srv_.stop();
  int mounts = unmountUnder(srv_.root());
  int loops = detachLoopsUnder(srv_.root());
  if (mounts > 0 || loops > 0) {
    std::printf("[ cleanup  ] unmounted %d mount(s) and detached %d loop device(s) under %s\n",
                mounts, loops, srv_.root().c_str());
  }
}

void CsiPrivilegedTest::requireLoop() {
  std::string why = loopUnavailableReason();
  if (!why.empty()) GTEST_SKIP() << "block volumes need loop devices: " << why;
}

std::string CsiPrivilegedTest::stagingPath(const std::string& name) const {
  return srv_.root() + "/staging/" + name;
}

std::string CsiPrivilegedTest::targetPath(const std::string& name) const {
  return srv_.root() + "/pods/" + name + "/vol";
}

std::string CsiPrivilegedTest::volumeDataPath(const std::string& id, bool block) {
  return srv_.server().backend().volumesDir() + "/" + id + (block ? ".img" : "");
}

::testing::AssertionResult CsiPrivilegedTest::stageAndPublish(const std::string& id,
                                                              const std::string& name,
                                                              const v1::VolumeCapability& cap,
                                                              bool readonly) {
  grpc::Status st = srv_.stage(id, stagingPath(name), cap);
  if (!st.ok()) return ::testing::AssertionFailure() << "NodeStageVolume: " << st.error_message();
  if (!fs::exists(srv_.root() + "/pods/" + name)) {
    // kubelet makes the pod's volume directory's parent; the driver makes the target.
    Status s = fs::mkdirAll(srv_.root() + "/pods/" + name, 0750);
    if (!s.ok()) return ::testing::AssertionFailure() << s.ToString();
  }
  st = srv_.publish(id, stagingPath(name), targetPath(name), cap, readonly);
  if (!st.ok()) {
    return ::testing::AssertionFailure() << "NodePublishVolume: " << st.error_message();
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult CsiPrivilegedTest::unpublishAndUnstage(const std::string& id,
                                                                  const std::string& name) {
  grpc::Status st = srv_.unpublish(id, targetPath(name));
  if (!st.ok()) {
    return ::testing::AssertionFailure() << "NodeUnpublishVolume: " << st.error_message();
  }
  st = srv_.unstage(id, stagingPath(name));
  if (!st.ok()) {
    return ::testing::AssertionFailure() << "NodeUnstageVolume: " << st.error_message();
  }
  return ::testing::AssertionSuccess();
}

grpc::Status CsiPrivilegedTest::volumeStats(const std::string& id, const std::string& path,
                                            v1::NodeGetVolumeStatsResponse* out) {
  v1::NodeGetVolumeStatsRequest req;
  req.set_volume_id(id);
  req.set_volume_path(path);
  grpc::ClientContext ctx;
  return srv_.node->NodeGetVolumeStats(&ctx, req, out);
}

::testing::AssertionResult CsiPrivilegedTest::expand(const std::string& id,
                                                     const std::string& path, int64_t bytes,
                                                     const v1::VolumeCapability& cap,
                                                     int64_t* node_capacity) {
  v1::ControllerExpandVolumeRequest creq;
  creq.set_volume_id(id);
  creq.mutable_capacity_range()->set_required_bytes(bytes);
  *creq.mutable_volume_capability() = cap;
  v1::ControllerExpandVolumeResponse cresp;
  grpc::ClientContext c1;
  grpc::Status st = srv_.controller->ControllerExpandVolume(&c1, creq, &cresp);
  if (!st.ok()) {
    return ::testing::AssertionFailure() << "ControllerExpandVolume: " << st.error_message();
  }
  if (cresp.capacity_bytes() < bytes) {
    return ::testing::AssertionFailure() << "ControllerExpandVolume gave " << cresp.capacity_bytes()
                                         << " bytes, asked " << bytes;
  }
  v1::NodeExpandVolumeRequest nreq;
  nreq.set_volume_id(id);
  nreq.set_volume_path(path);
  nreq.mutable_capacity_range()->set_required_bytes(bytes);
  *nreq.mutable_volume_capability() = cap;
  v1::NodeExpandVolumeResponse nresp;
  grpc::ClientContext c2;
  st = srv_.node->NodeExpandVolume(&c2, nreq, &nresp);
  if (!st.ok()) return ::testing::AssertionFailure() << "NodeExpandVolume: " << st.error_message();
  if (node_capacity != nullptr) *node_capacity = nresp.capacity_bytes();
  return ::testing::AssertionSuccess();
}

int64_t CsiPrivilegedTest::availableCapacity() {
  v1::GetCapacityRequest req;
  v1::GetCapacityResponse resp;
  grpc::ClientContext ctx;
  grpc::Status st = srv_.controller->GetCapacity(&ctx, req, &resp);
  EXPECT_TRUE(st.ok()) << st.error_message();
  return st.ok() ? resp.available_capacity() : -1;
}

}  // namespace berth::csi::itest
