#include "runtime/image/unpack_paths.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace berth::image {
namespace {

constexpr int kDirOpenFlags = O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW;

// openat2 with the strictest resolution; returns -1 with errno (ENOSYS on old kernels).
int openBeneath(int root_fd, const std::string& path) {
  struct open_how how = {};
  how.flags = kDirOpenFlags;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
  for (;;) {
    long fd = ::syscall(SYS_openat2, root_fd, path.c_str(), &how, sizeof(how));
    if (fd >= 0 || errno != EAGAIN) return static_cast<int>(fd);
  }
}

Status describeBadComponent(int dir_fd, const std::string& name, const std::string& shown,
                            int err) {
  struct stat st;
  if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
    if (S_ISLNK(st.st_mode)) {
      return failedPrecondition("\"", shown,
                                "\" is a symlink; refusing to create entries through it");
    }
    if (!S_ISDIR(st.st_mode)) {
      return failedPrecondition("\"", shown, "\" is not a directory");
    }
  }
  return errnoError(err, strCat("open directory \"", shown, "\""));
}

}  // namespace

StatusOr<std::vector<std::string>> cleanEntryPath(std::string_view name) {
  if (name.find('\0') != std::string_view::npos) {
    return invalidArgument("entry name contains a NUL byte");
  }
  std::vector<std::string> out;
  for (std::string& part : split(name, '/', /*skip_empty=*/true)) {
    if (part == ".") continue;
    if (part == "..") {
      if (out.empty()) {
        return invalidArgument("path \"", name, "\" leaves the layer root");
      }
      out.pop_back();
      continue;
    }
    out.push_back(std::move(part));
  }
  return out;
}

std::string joinComponents(const std::vector<std::string>& components, size_t count) {
  if (count > components.size()) count = components.size();
  if (count == 0) return ".";
  std::string out = components[0];
  for (size_t i = 1; i < count; ++i) out = strCat(out, "/", components[i]);
  return out;
}

StatusOr<UniqueFd> openDirBeneath(int root_fd, const std::vector<std::string>& components,
                                  size_t count, bool create) {
  if (count > components.size()) count = components.size();
  if (count == 0) {
    int fd = ::fcntl(root_fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) return lastErrnoError("dup layer root fd");
    return UniqueFd(fd);
  }
  // Fast path: one openat2 for the whole parent path.
  int fd = openBeneath(root_fd, joinComponents(components, count));
  if (fd >= 0) return UniqueFd(fd);
  // Slow path (a component is missing or bad, or openat2 is unavailable): walk one
  // component at a time with O_NOFOLLOW. Components are clean (no "." or ".."), so
  // each step stays below the previous directory.
  UniqueFd current(::fcntl(root_fd, F_DUPFD_CLOEXEC, 0));
  if (!current) return lastErrnoError("dup layer root fd");
  for (size_t i = 0; i < count; ++i) {
    const std::string& part = components[i];
    std::string shown = joinComponents(components, i + 1);
    int next = ::openat(current.get(), part.c_str(), kDirOpenFlags);
    if (next < 0 && errno == ENOENT && create) {
      if (::mkdirat(current.get(), part.c_str(), 0755) != 0 && errno != EEXIST) {
        return lastErrnoError(strCat("create directory \"", shown, "\""));
      }
      next = ::openat(current.get(), part.c_str(), kDirOpenFlags);
    }
    if (next < 0) {
      int err = errno;
      if (err == ENOENT) return notFound("directory \"", shown, "\" does not exist");
      return describeBadComponent(current.get(), part, shown, err);
    }
    current.reset(next);
  }
  return current;
}

Status removeBeneath(int dir_fd, const std::string& name) {
  struct stat st;
  if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return lastErrnoError(strCat("stat \"", name, "\""));
  }
  if (!S_ISDIR(st.st_mode)) {
    if (::unlinkat(dir_fd, name.c_str(), 0) != 0 && errno != ENOENT) {
      return lastErrnoError(strCat("unlink \"", name, "\""));
    }
    return absl::OkStatus();
  }
  UniqueFd sub(::openat(dir_fd, name.c_str(), kDirOpenFlags));
  if (!sub) return lastErrnoError(strCat("open \"", name, "\""));
  std::vector<std::string> children;
  {
    int list_fd = ::fcntl(sub.get(), F_DUPFD_CLOEXEC, 0);
    DIR* dir = list_fd < 0 ? nullptr : ::fdopendir(list_fd);
    if (dir == nullptr) {
      if (list_fd >= 0) ::close(list_fd);
      return lastErrnoError(strCat("list \"", name, "\""));
    }
    while (struct dirent* ent = ::readdir(dir)) {
      std::string child = ent->d_name;
      if (child != "." && child != "..") children.push_back(std::move(child));
    }
    ::closedir(dir);
  }
  for (const std::string& child : children) {
    RETURN_IF_ERROR_CTX(removeBeneath(sub.get(), child), strCat("remove \"", name, "\""));
  }
  if (::unlinkat(dir_fd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
    return lastErrnoError(strCat("rmdir \"", name, "\""));
  }
  return absl::OkStatus();
}

bool symlinkLeavesLayer(const std::vector<std::string>& link_components,
                        std::string_view target) {
  if (!target.empty() && target.front() == '/') return true;
  // Start from the link's directory.
  size_t depth = link_components.empty() ? 0 : link_components.size() - 1;
  for (const std::string& part : split(target, '/', /*skip_empty=*/true)) {
    if (part == ".") continue;
    if (part == "..") {
      if (depth == 0) return true;
      --depth;
    } else {
      ++depth;
    }
  }
  return false;
}

}  // namespace berth::image
