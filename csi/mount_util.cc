#include "csi/mount_util.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include <cerrno>
#include <map>

#include "common/fs.h"

namespace berth::csi {
namespace {

constexpr int kMaxStacked = 8;

// Mount points from /proc/self/mountinfo (field 5), with octal escapes decoded.
StatusOr<bool> inMountInfo(const std::string& path) {
  ASSIGN_OR_RETURN(std::string info, fs::readFile("/proc/self/mountinfo"));
  for (const std::string& line : split(info, '\n', true)) {
    std::vector<std::string> fields = split(line, ' ');
    if (fields.size() < 5) continue;
    std::string mp;
    const std::string& raw = fields[4];
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '\\' && i + 3 < raw.size()) {
        mp.push_back(static_cast<char>(std::stoi(raw.substr(i + 1, 3), nullptr, 8)));
        i += 3;
      } else {
        mp.push_back(raw[i]);
      }
    }
    if (mp == path) return true;
  }
  return false;
}

}  // namespace

StatusOr<bool> isMountPoint(const std::string& path) {
  struct statx stx;
  if (::statx(AT_FDCWD, path.c_str(), AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &stx) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return false;
    return lastErrnoError(strCat("statx \"", path, "\""));
  }
  if (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) {
    return (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT) != 0;
  }
  return inMountInfo(path);
}

StatusOr<unsigned long> parseMountFlags(const std::vector<std::string>& flags) {
  static const std::map<std::string, std::pair<unsigned long, bool>> kFlags = {
      // name -> (flag, set?)
      {"ro", {MS_RDONLY, true}},          {"rw", {MS_RDONLY, false}},
      {"nosuid", {MS_NOSUID, true}},      {"suid", {MS_NOSUID, false}},
      {"nodev", {MS_NODEV, true}},        {"dev", {MS_NODEV, false}},
      {"noexec", {MS_NOEXEC, true}},      {"exec", {MS_NOEXEC, false}},
      {"noatime", {MS_NOATIME, true}},    {"atime", {MS_NOATIME, false}},
      {"relatime", {MS_RELATIME, true}},  {"strictatime", {MS_STRICTATIME, true}},
      {"nodiratime", {MS_NODIRATIME, true}}, {"diratime", {MS_NODIRATIME, false}},
      {"sync", {MS_SYNCHRONOUS, true}},   {"async", {MS_SYNCHRONOUS, false}},
  };
  unsigned long out = 0;
  for (const std::string& flag : flags) {
    // One entry may carry several comma-separated options ("ro,noexec").
    for (const std::string& one : split(flag, ',', true)) {
      std::string f(trim(one));
      if (f.empty() || f == "defaults" || f == "bind" || f == "rbind") continue;
      auto it = kFlags.find(f);
      if (it == kFlags.end()) {
        return invalidArgument("volume_capability.mount.mount_flags: \"", f,
                               "\" is not a bind-mount option this driver applies (use ro, "
                               "nosuid, nodev, noexec, noatime, relatime, nodiratime, sync)");
      }
      if (it->second.second) {
        out |= it->second.first;
      } else {
        out &= ~it->second.first;
      }
    }
  }
  return out;
}

Status bindMount(Syscalls& sys, const std::string& source, const std::string& target,
                 unsigned long flags) {
  auto r = sys.mount(source.c_str(), target.c_str(), nullptr, MS_BIND, nullptr);
  if (!r.ok()) {
    return errnoError(r.err, strCat("bind-mount \"", source, "\" on \"", target, "\""));
  }
  if (flags == 0) return absl::OkStatus();
  r = sys.mount(nullptr, target.c_str(), nullptr, MS_BIND | MS_REMOUNT | flags, nullptr);
  if (!r.ok()) {
    (void)sys.umount2(target.c_str(), MNT_DETACH);
    return errnoError(r.err, strCat("remount \"", target, "\" with flags 0x", hex(flags)));
  }
  return absl::OkStatus();
}

Status unmountAll(Syscalls& sys, const std::string& target) {
  for (int i = 0; i < kMaxStacked; ++i) {
    ASSIGN_OR_RETURN(bool mounted, isMountPoint(target));
    if (!mounted) return absl::OkStatus();
    auto r = sys.umount2(target.c_str(), 0);
    if (!r.ok()) {
      if (r.err == EINVAL || r.err == ENOENT) return absl::OkStatus();
      if (r.err != EBUSY) return errnoError(r.err, strCat("unmount \"", target, "\""));
      // Busy: detach lazily, the last user releases it.
      r = sys.umount2(target.c_str(), MNT_DETACH);
      if (!r.ok()) return errnoError(r.err, strCat("unmount \"", target, "\" (lazily)"));
    }
  }
  return failedPrecondition("\"", target, "\" still has mounts after ", kMaxStacked, " unmounts");
}

}  // namespace berth::csi
