#include "runtime/linux/devices.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <set>

#include "common/fs.h"
#include "common/log.h"
#include "common/strings.h"
#include "runtime/linux/rootfs.h"

namespace berth::devices {
namespace {

constexpr uint32_t kDefaultDeviceMode = 0666;

oci::Device charDevice(const char* path, int64_t major, int64_t minor) {
  oci::Device d;
  d.type = "c";
  d.path = path;
  d.major = major;
  d.minor = minor;
  d.fileMode = kDefaultDeviceMode;
  return d;  // uid/gid absent: owned by the creating container root
}

std::string parentDir(const std::string& path) {
  auto pos = path.rfind('/');
  if (pos == std::string::npos || pos == 0) return "/";
  return path.substr(0, pos);
}

// Binds the host's device over an empty file (user namespaces).
Status bindFromHost(Syscalls& sys, const oci::Device& device, const std::string& dest) {
  RETURN_IF_ERROR(rootfs::createMountPoint(sys, dest, /*is_file=*/true));
  std::string host = rootfs::cleanPath(device.path);
  auto r = sys.mount(host.c_str(), dest.c_str(), "bind", MS_BIND, nullptr);
  if (!r.ok()) {
    return errnoError(r.err, strCat("bind-mount host device \"", host, "\""));
  }
  return absl::OkStatus();
}

Status makeNode(Syscalls& sys, const oci::Device& device, const std::string& dest) {
  ASSIGN_OR_RETURN(mode_t type, fileType(device));
  RETURN_IF_ERROR(rootfs::createMountPoint(sys, parentDir(dest), /*is_file=*/false));
  mode_t perm = static_cast<mode_t>(device.fileMode.value_or(kDefaultDeviceMode) & 07777);
  dev_t dev = type == S_IFIFO ? 0
                              : makedev(static_cast<unsigned int>(device.major),
                                        static_cast<unsigned int>(device.minor));
  auto r = sys.mknod(dest.c_str(), type | perm, dev);
  if (!r.ok()) {
    if (r.err == EEXIST) {
      log::get("runtime")->debug("device \"{}\" already exists in the rootfs; kept",
                                 device.path);
      return absl::OkStatus();
    }
    return errnoError(r.err, "mknod");
  }
  // mknod's mode went through the umask; set the exact one.
  if (::chmod(dest.c_str(), perm) != 0) return lastErrnoError("chmod");
  if (device.uid.has_value() || device.gid.has_value()) {
    uid_t uid = device.uid.has_value() ? static_cast<uid_t>(*device.uid)
                                       : static_cast<uid_t>(-1);
    gid_t gid = device.gid.has_value() ? static_cast<gid_t>(*device.gid)
                                       : static_cast<gid_t>(-1);
    // Skip a no-op chown so an unprivileged caller creating its own node succeeds.
    struct stat st {};
    bool same = ::lstat(dest.c_str(), &st) == 0 &&
                (uid == static_cast<uid_t>(-1) || st.st_uid == uid) &&
                (gid == static_cast<gid_t>(-1) || st.st_gid == gid);
    if (!same && ::lchown(dest.c_str(), uid, gid) != 0) return lastErrnoError("chown");
  }
  return absl::OkStatus();
}

}  // namespace

const std::vector<oci::Device>& defaultDevices() {
  static const std::vector<oci::Device> kDevices = {
      charDevice("/dev/null", 1, 3),    charDevice("/dev/zero", 1, 5),
      charDevice("/dev/full", 1, 7),    charDevice("/dev/random", 1, 8),
      charDevice("/dev/urandom", 1, 9), charDevice("/dev/tty", 5, 0),
  };
  return kDevices;
}

std::vector<oci::Device> withDefaults(const std::vector<oci::Device>& configured) {
  std::vector<oci::Device> out = configured;
  std::set<std::string> given;
  for (const auto& d : configured) given.insert(rootfs::cleanPath(d.path));
  for (const auto& d : defaultDevices()) {
    if (given.count(d.path) == 0) out.push_back(d);
  }
  return out;
}

StatusOr<mode_t> fileType(const oci::Device& device) {
  if (device.type == "c" || device.type == "u") return static_cast<mode_t>(S_IFCHR);
  if (device.type == "b") return static_cast<mode_t>(S_IFBLK);
  if (device.type == "p") return static_cast<mode_t>(S_IFIFO);
  return invalidArgument("linux.devices: device \"", device.path, "\": unknown type \"",
                         device.type, "\"; use one of c, u, b, p");
}

Status createDevice(Syscalls& sys, const std::string& rootfs, const oci::Device& device,
                    bool bind_from_host) {
  std::string path = rootfs::cleanPath(device.path);
  if (path == "/") {
    return invalidArgument("linux.devices: device path \"", device.path,
                           "\" is not a file path");
  }
  ASSIGN_OR_RETURN(std::string dest, fs::secureJoin(rootfs, path));
  std::string what =
      strCat("create device \"", path, "\" (rootfs path \"", dest, "\")");
  Status st = bind_from_host ? bindFromHost(sys, device, dest) : makeNode(sys, device, dest);
  return withContext(st, what);
}

Status createDevices(Syscalls& sys, const std::string& rootfs,
                     const std::vector<oci::Device>& devices, bool bind_from_host) {
  for (const auto& device : withDefaults(devices)) {
    RETURN_IF_ERROR(createDevice(sys, rootfs, device, bind_from_host));
  }
  return absl::OkStatus();
}

}  // namespace berth::devices
