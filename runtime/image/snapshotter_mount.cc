// Overlay and bind mounts of snapshots, and usage walks (see snapshotter_mount.h).
//
// Option length: mount(2) copies at most one page of options. An image with many
// layers under a long root overflows it with absolute paths ("/var/lib/berth/
// snapshots/123/fs:" is 30 bytes a layer), so long chains go through the new mount
// API, where each "lowerdir+" is its own fsconfig() call (Linux 6.8+). Older kernels
// answer EINVAL to "lowerdir+"; then a helper thread with a private cwd
// (unshare(CLONE_FS)) at the snapshotter root mounts with "<id>/fs" (7-9 bytes a
// layer). BERTH_SNAPSHOTTER_NO_LOWERDIR_PLUS=1 forces that fallback (for tests).
#include "runtime/image/snapshotter_mount.h"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <set>
#include <thread>
#include <utility>

#include "common/fs.h"
#include "common/scope_guard.h"
#include "common/unique_fd.h"

namespace berth::image::snapshotter_internal {
namespace {

constexpr const char* kNoLowerdirPlusEnv = "BERTH_SNAPSHOTTER_NO_LOWERDIR_PLUS";
// Bytes kept free below the page size for options a caller or an LSM may add.
constexpr size_t kMountDataMargin = 512;

size_t pageSize() {
  long page = ::sysconf(_SC_PAGESIZE);
  return static_cast<size_t>(page > 0 ? page : 4096);
}

std::string fsDir(const std::string& root, int64_t id) {
  return fs::join(fs::join(root, std::to_string(id)), "fs");
}

std::string workDir(const std::string& root, int64_t id) {
  return fs::join(fs::join(root, std::to_string(id)), "work");
}

// The messages the kernel left in a filesystem context ("e overlayfs: ...").
std::string contextMessages(int fd) {
  std::string out;
  char buf[512];
  for (int i = 0; i < 16; ++i) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    if (!out.empty()) out += "; ";
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

Status fsError(int err, int fd, const std::string& step) {
  std::string msgs = contextMessages(fd);
  return errnoError(err, msgs.empty() ? step : strCat(step, " [", msgs, "]"));
}

// The new mount API. Sets *unsupported (and returns OK) when the kernel lacks
// fsopen() or "lowerdir+".
Status mountWithFsconfig(const OverlayLayers& layers, const std::string& target,
                         bool* unsupported) {
  *unsupported = false;
  UniqueFd fsfd(::fsopen("overlay", FSOPEN_CLOEXEC));
  if (!fsfd) {
    if (errno == ENOSYS) {
      *unsupported = true;
      return absl::OkStatus();
    }
    return lastErrnoError("fsopen(\"overlay\")");
  }
  // The source mount(2) would show, so tools list both kinds of mount alike.
  if (::fsconfig(fsfd.get(), FSCONFIG_SET_STRING, "source", "overlay", 0) != 0) {
    return fsError(errno, fsfd.get(), "overlay source");
  }
  for (size_t i = 0; i < layers.lowers.size(); ++i) {
    const std::string dir = fsDir(layers.root, layers.lowers[i]);
    if (::fsconfig(fsfd.get(), FSCONFIG_SET_STRING, "lowerdir+", dir.c_str(), 0) != 0) {
      if (errno == EINVAL && i == 0) {
        *unsupported = true;  // "Unknown parameter 'lowerdir+'" before Linux 6.8
        return absl::OkStatus();
      }
      return fsError(errno, fsfd.get(), strCat("overlay lowerdir+ \"", dir, "\""));
    }
  }
  if (layers.upper_id != 0) {
    const std::string upper = fsDir(layers.root, layers.upper_id);
    const std::string work = workDir(layers.root, layers.upper_id);
    if (::fsconfig(fsfd.get(), FSCONFIG_SET_STRING, "upperdir", upper.c_str(), 0) != 0) {
      return fsError(errno, fsfd.get(), strCat("overlay upperdir \"", upper, "\""));
    }
    if (::fsconfig(fsfd.get(), FSCONFIG_SET_STRING, "workdir", work.c_str(), 0) != 0) {
      return fsError(errno, fsfd.get(), strCat("overlay workdir \"", work, "\""));
    }
  }
  if (::fsconfig(fsfd.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0) {
    return fsError(errno, fsfd.get(),
                   strCat("create overlay (", layers.lowers.size(), " lower layers)"));
  }
  UniqueFd mfd(::fsmount(fsfd.get(), FSMOUNT_CLOEXEC, 0));
  if (!mfd) return fsError(errno, fsfd.get(), "fsmount overlay");
  if (::move_mount(mfd.get(), "", AT_FDCWD, target.c_str(), MOVE_MOUNT_F_EMPTY_PATH) != 0) {
    return lastErrnoError("move_mount overlay");
  }
  return absl::OkStatus();
}

// mount(2) with paths relative to the root, from a thread with its own cwd.
Status mountRelative(const OverlayLayers& layers, const std::string& target) {
  std::string abs_target = target;
  if (abs_target.empty() || abs_target[0] != '/') {
    char* cwd = ::getcwd(nullptr, 0);
    if (cwd == nullptr) return lastErrnoError("getcwd");
    abs_target = fs::join(cwd, target);
    ::free(cwd);
  }
  std::vector<std::string> lowers;
  for (int64_t id : layers.lowers) lowers.push_back(strCat(id, "/fs"));
  std::string data = strCat("lowerdir=", joinStrings(lowers, ":"));
  if (layers.upper_id != 0) {
    data += strCat(",upperdir=", layers.upper_id, "/fs,workdir=", layers.upper_id, "/work");
  }
  if (data.size() + 1 > pageSize()) {
    return absl::ResourceExhaustedError(
        strCat(layers.lowers.size(), " lower layers do not fit in the mount options (",
               data.size(), " bytes even with paths relative to \"", layers.root,
               "\") and this kernel lacks overlay \"lowerdir+\" (Linux 6.8+); use a newer "
               "kernel or an image with fewer layers"));
  }
  Status result;
  std::thread helper([&] {
    // The cwd change stays in this thread: CLONE_FS unshares root, cwd and umask.
    if (::unshare(CLONE_FS) != 0) {
      result = lastErrnoError("unshare(CLONE_FS)");
      return;
    }
    if (::fchdir(layers.root_fd) != 0) {
      result = lastErrnoError(strCat("chdir \"", layers.root, "\""));
      return;
    }
    if (::mount("overlay", abs_target.c_str(), "overlay", 0, data.c_str()) != 0) {
      result = lastErrnoError(strCat("mount overlay (", layers.lowers.size(),
                                     " lower layers, paths relative to \"", layers.root, "\")"));
    }
  });
  helper.join();
  return result;
}

struct UsageWalk {
  dev_t dev = 0;
  std::set<std::pair<dev_t, ino_t>> seen;
  SnapshotUsage usage;
};

Status walkUsage(int parent_fd, const std::string& name, const std::string& display,
                 UsageWalk& walk, bool top) {
  struct stat st;
  if (::fstatat(parent_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT && !top) return absl::OkStatus();  // removed meanwhile
    return lastErrnoError(strCat("stat \"", display, "\""));
  }
  if (top) walk.dev = st.st_dev;
  if (st.st_dev != walk.dev) return absl::OkStatus();  // another filesystem
  if (!S_ISDIR(st.st_mode) && st.st_nlink > 1 &&
      !walk.seen.emplace(st.st_dev, st.st_ino).second) {
    return absl::OkStatus();  // hard link already counted
  }
  walk.usage.bytes += static_cast<int64_t>(st.st_blocks) * 512;
  walk.usage.inodes += 1;
  if (!S_ISDIR(st.st_mode)) return absl::OkStatus();
  int fd = ::openat(parent_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT && !top) return absl::OkStatus();
    return lastErrnoError(strCat("open \"", display, "\""));
  }
  DIR* dir = ::fdopendir(fd);
  if (dir == nullptr) {
    ::close(fd);
    return lastErrnoError(strCat("opendir \"", display, "\""));
  }
  ScopeGuard close_dir([dir] { ::closedir(dir); });
  while (struct dirent* ent = ::readdir(dir)) {
    std::string n = ent->d_name;
    if (n == "." || n == "..") continue;
    RETURN_IF_ERROR(walkUsage(::dirfd(dir), n, display + "/" + n, walk, false));
  }
  return absl::OkStatus();
}

}  // namespace

std::vector<std::string> overlayOptions(const OverlayLayers& layers) {
  std::vector<std::string> lowers;
  for (int64_t id : layers.lowers) lowers.push_back(fsDir(layers.root, id));
  std::vector<std::string> options = {strCat("lowerdir=", joinStrings(lowers, ":"))};
  if (layers.upper_id != 0) {
    options.push_back(strCat("upperdir=", fsDir(layers.root, layers.upper_id)));
    options.push_back(strCat("workdir=", workDir(layers.root, layers.upper_id)));
  }
  return options;
}

Status mountOverlay(const OverlayLayers& layers, const std::string& target,
                    const std::string& what) {
  const std::string data = joinStrings(overlayOptions(layers), ",");
  if (data.size() + 1 <= pageSize() - kMountDataMargin) {
    if (::mount("overlay", target.c_str(), "overlay", 0, data.c_str()) != 0) {
      return withContext(
          lastErrnoError(strCat("mount overlay (", layers.lowers.size(), " lower layers)")),
          what);
    }
    return absl::OkStatus();
  }
  const char* env = ::getenv(kNoLowerdirPlusEnv);
  if (env == nullptr || std::string(env) != "1") {
    bool unsupported = false;
    RETURN_IF_ERROR_CTX(mountWithFsconfig(layers, target, &unsupported), what);
    if (!unsupported) return absl::OkStatus();
  }
  return withContext(mountRelative(layers, target), what);
}

Status mountBind(const std::string& source, const std::string& target, bool read_only,
                 const std::string& what) {
  if (::mount(source.c_str(), target.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
    return withContext(lastErrnoError(strCat("bind mount \"", source, "\"")), what);
  }
  if (read_only &&
      ::mount(nullptr, target.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr) != 0) {
    Status st = lastErrnoError("remount read-only");
    (void)::umount2(target.c_str(), MNT_DETACH);
    return withContext(st, what);
  }
  return absl::OkStatus();
}

StatusOr<SnapshotUsage> dirUsage(const std::string& path) {
  UsageWalk walk;
  RETURN_IF_ERROR_CTX(walkUsage(AT_FDCWD, path, path, walk, true), "measure usage");
  return walk.usage;
}

}  // namespace berth::image::snapshotter_internal
