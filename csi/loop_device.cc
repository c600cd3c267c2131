#include "csi/loop_device.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "common/fs.h"
#include "common/unique_fd.h"

namespace berth::csi {
namespace {

constexpr int kAttachAttempts = 16;

StatusOr<UniqueFd> openPath(const std::string& path, int flags) {
  UniqueFd fd(::open(path.c_str(), flags | O_CLOEXEC));
  if (!fd) return lastErrnoError(strCat("open \"", path, "\""));
  return fd;
}

// Binds `file_fd` to `dev_fd`: LOOP_CONFIGURE when the kernel has it, else the two-step
// LOOP_SET_FD + LOOP_SET_STATUS64. Returns the errno (0 on success).
int bindLoop(int dev_fd, int file_fd, bool readonly, const std::string& backing_file) {
  loop_config config;
  std::memset(&config, 0, sizeof(config));
  config.fd = static_cast<__u32>(file_fd);
  if (readonly) config.info.lo_flags |= LO_FLAGS_READ_ONLY;
  std::strncpy(reinterpret_cast<char*>(config.info.lo_file_name), backing_file.c_str(),
               LO_NAME_SIZE - 1);
  if (::ioctl(dev_fd, LOOP_CONFIGURE, &config) == 0) return 0;
  if (errno != EINVAL && errno != ENOTTY) return errno;
  // Kernel before 5.8: no LOOP_CONFIGURE.
  if (::ioctl(dev_fd, LOOP_SET_FD, file_fd) != 0) return errno;
  loop_info64 info;
  std::memset(&info, 0, sizeof(info));
  std::strncpy(reinterpret_cast<char*>(info.lo_file_name), backing_file.c_str(),
               LO_NAME_SIZE - 1);
  if (::ioctl(dev_fd, LOOP_SET_STATUS64, &info) != 0) {
    int err = errno;
    (void)::ioctl(dev_fd, LOOP_CLR_FD, 0);
    return err;
  }
  return 0;
}

}  // namespace

StatusOr<std::string> attachLoop(const std::string& backing_file, bool readonly) {
  std::string what = strCat("attach \"", backing_file, "\" to a loop device");
  ASSIGN_OR_RETURN(UniqueFd file, withContext(openPath(backing_file, readonly ? O_RDONLY : O_RDWR),
                                              what));
  ASSIGN_OR_RETURN(UniqueFd control, withContext(openPath("/dev/loop-control", O_RDWR), what));
  int last_err = 0;
  for (int attempt = 0; attempt < kAttachAttempts; ++attempt) {
    int n = ::ioctl(control.get(), LOOP_CTL_GET_FREE);
    if (n < 0) return withContext(lastErrnoError("LOOP_CTL_GET_FREE"), what);
    std::string device = strCat("/dev/loop", n);
    UniqueFd dev(::open(device.c_str(), (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC));
    if (!dev) {
      // udev/devtmpfs may not have made the node yet; another attempt picks it up.
      last_err = errno;
      if (errno == ENOENT) continue;
      return withContext(lastErrnoError(strCat("open \"", device, "\"")), what);
    }
    int err = bindLoop(dev.get(), file.get(), readonly, backing_file);
    if (err == 0) return device;
    last_err = err;
    if (err != EBUSY) return withContext(errnoError(err, strCat("configure ", device)), what);
    // Someone else took this device between GET_FREE and our bind: try the next.
  }
  return withContext(errnoError(last_err, strCat("no free loop device after ", kAttachAttempts,
                                                 " attempts")),
                     what);
}

Status detachLoop(const std::string& device) {
  UniqueFd dev(::open(device.c_str(), O_RDONLY | O_CLOEXEC));
  if (!dev) {
    if (errno == ENOENT || errno == ENXIO) return absl::OkStatus();
    return lastErrnoError(strCat("open \"", device, "\" to detach it"));
  }
  if (::ioctl(dev.get(), LOOP_CLR_FD, 0) != 0 && errno != ENXIO) {
    return lastErrnoError(strCat("detach loop device \"", device, "\" (LOOP_CLR_FD)"));
  }
  return absl::OkStatus();
}

Status refreshLoopCapacity(const std::string& device) {
  ASSIGN_OR_RETURN(UniqueFd dev, openPath(device, O_RDONLY));
  if (::ioctl(dev.get(), LOOP_SET_CAPACITY, 0) != 0) {
    return lastErrnoError(strCat("resize loop device \"", device, "\" (LOOP_SET_CAPACITY)"));
  }
  return absl::OkStatus();
}

StatusOr<std::string> findLoop(const std::string& backing_file) {
  struct stat want;
  if (::stat(backing_file.c_str(), &want) != 0) {
    if (errno == ENOENT) return std::string();
    return lastErrnoError(strCat("stat \"", backing_file, "\""));
  }
  auto names = fs::listDir("/sys/block");
  if (!names.ok()) return names.status();
  for (const std::string& name : *names) {
    if (name.rfind("loop", 0) != 0) continue;
    // Only bound devices have /sys/block/loopN/loop/.
    if (!fs::exists(strCat("/sys/block/", name, "/loop/backing_file"))) continue;
    std::string device = strCat("/dev/", name);
    UniqueFd dev(::open(device.c_str(), O_RDONLY | O_CLOEXEC));
    if (!dev) continue;
    loop_info64 info;
    if (::ioctl(dev.get(), LOOP_GET_STATUS64, &info) != 0) continue;
    // A read-only publication's own device is bound to the same file; callers want
    // the shared read-write one.
    if ((info.lo_flags & LO_FLAGS_READ_ONLY) != 0) continue;
    if (info.lo_inode == want.st_ino && info.lo_device == want.st_dev) return device;
  }
  return std::string();
}

StatusOr<int64_t> blockDeviceSize(const std::string& device) {
  ASSIGN_OR_RETURN(UniqueFd dev, openPath(device, O_RDONLY));
  uint64_t size = 0;
  if (::ioctl(dev.get(), BLKGETSIZE64, &size) != 0) {
    return lastErrnoError(strCat("size of \"", device, "\" (BLKGETSIZE64)"));
  }
  return static_cast<int64_t>(size);
}

}  // namespace berth::csi
