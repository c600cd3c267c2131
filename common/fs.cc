#include "common/fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <random>

#include "common/strings.h"
#include "common/unique_fd.h"

namespace berth::fs {

StatusOr<std::string> readFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return lastErrnoError(strCat("open \"", path, "\""));
  std::string out;
  char buf[8192];
  while (true) {
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return lastErrnoError(strCat("read \"", path, "\""));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

namespace {
Status writeAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return lastErrnoError(strCat("write \"", path, "\""));
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

std::string dirName(const std::string& path) {
  auto pos = path.rfind('/');
  if (pos == std::string::npos) return ".";
  if (pos == 0) return "/";
  return path.substr(0, pos);
}
}  // namespace

Status writeFileAtomic(const std::string& path, std::string_view data, mode_t mode,
                       Durability durability) {
  std::random_device rd;
  std::string tmp = strCat(path, ".tmp-", rd());
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
  if (!fd) return lastErrnoError(strCat("create \"", tmp, "\""));
  Status st = writeAll(fd.get(), data, tmp);
  bool durable = durability == Durability::kDurable;
  if (st.ok() && durable && ::fsync(fd.get()) != 0) st = lastErrnoError(strCat("fsync \"", tmp, "\""));
  fd.reset();
  if (st.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    st = lastErrnoError(strCat("rename \"", tmp, "\" to \"", path, "\""));
  }
  if (!st.ok()) {
    ::unlink(tmp.c_str());
    return st;
  }
  if (!durable) return absl::OkStatus();
  UniqueFd dir(::open(dirName(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir) ::fsync(dir.get());
  return absl::OkStatus();
}

Status writeFile(const std::string& path, std::string_view data) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC));
  if (!fd) return lastErrnoError(strCat("open \"", path, "\""));
  ssize_t n;
  do {
    n = ::write(fd.get(), data.data(), data.size());
  } while (n < 0 && errno == EINTR);
  if (n < 0) return lastErrnoError(strCat("write \"", data, "\" to \"", path, "\""));
  return absl::OkStatus();
}

Status mkdirAll(const std::string& path, mode_t mode) {
  if (path.empty()) return invalidArgument("mkdir: empty path");
  std::string cur;
  if (path[0] == '/') cur = "/";
  for (const std::string& part : split(path, '/', true)) {
    if (!cur.empty() && cur.back() != '/') cur += '/';
    cur.append(part);
    if (::mkdir(cur.c_str(), mode) != 0 && errno != EEXIST) {
      return lastErrnoError(strCat("mkdir \"", cur, "\""));
    }
  }
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return lastErrnoError(strCat("stat \"", path, "\""));
  if (!S_ISDIR(st.st_mode)) return errnoError(ENOTDIR, strCat("mkdir \"", path, "\""));
  return absl::OkStatus();
}

namespace {
Status removeAt(int parent_fd, const std::string& name, const std::string& display,
                dev_t dev) {
  struct stat st;
  if (::fstatat(parent_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return lastErrnoError(strCat("stat \"", display, "\""));
  }
  if (S_ISDIR(st.st_mode)) {
    if (st.st_dev != dev) {
      return failedPrecondition("remove \"", display,
                                "\": is a mount point of another filesystem; unmount it first");
    }
    int fd = ::openat(parent_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return lastErrnoError(strCat("open \"", display, "\""));
    DIR* dir = ::fdopendir(fd);
    if (dir == nullptr) {
      ::close(fd);
      return lastErrnoError(strCat("opendir \"", display, "\""));
    }
    std::vector<std::string> names;
    while (struct dirent* ent = ::readdir(dir)) {
      std::string n = ent->d_name;
      if (n == "." || n == "..") continue;
      names.push_back(std::move(n));
    }
    Status result;
    for (const auto& n : names) {
      Status st2 = removeAt(::dirfd(dir), n, display + "/" + n, dev);
      if (!st2.ok() && result.ok()) result = st2;
    }
    ::closedir(dir);
    RETURN_IF_ERROR(result);
    if (::unlinkat(parent_fd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
      return lastErrnoError(strCat("rmdir \"", display, "\""));
    }
    return absl::OkStatus();
  }
  if (::unlinkat(parent_fd, name.c_str(), 0) != 0 && errno != ENOENT) {
    return lastErrnoError(strCat("unlink \"", display, "\""));
  }
  return absl::OkStatus();
}
}  // namespace

Status removeAll(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return lastErrnoError(strCat("stat \"", path, "\""));
  }
  return removeAt(AT_FDCWD, path, path, st.st_dev);
}

bool exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

std::string join(std::string_view a, std::string_view b) {
  while (!a.empty() && a.back() == '/' && a.size() > 1) a.remove_suffix(1);
  while (!b.empty() && b.front() == '/') b.remove_prefix(1);
  if (a.empty()) return std::string(b);
  if (b.empty()) return std::string(a);
  if (a == "/") return strCat("/", b);
  return strCat(a, "/", b);
}

StatusOr<std::string> secureJoin(const std::string& root, const std::string& unsafe) {
  std::vector<std::string> parts;  // resolved components below root
  std::vector<std::string> pending;
  for (const std::string& p : split(unsafe, '/', true)) {
    pending.emplace_back(p);
  }
  std::reverse(pending.begin(), pending.end());
  int links = 0;
  while (!pending.empty()) {
    std::string part = std::move(pending.back());
    pending.pop_back();
    if (part == ".") continue;
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
      continue;
    }
    std::string candidate = root;
    for (const auto& p : parts) candidate = join(candidate, p);
    candidate = join(candidate, part);
    char buf[PATH_MAX];
    ssize_t n = ::readlink(candidate.c_str(), buf, sizeof(buf) - 1);
    if (n < 0) {
      parts.push_back(std::move(part));  // not a symlink, or missing: keep as written
      continue;
    }
    if (++links > 255) {
      return errnoError(ELOOP, strCat("resolve \"", unsafe, "\" in \"", root, "\""));
    }
    std::string target(buf, static_cast<size_t>(n));
    if (!target.empty() && target[0] == '/') parts.clear();
    std::vector<std::string> tparts;
    for (const std::string& p : split(target, '/', true)) {
      tparts.emplace_back(p);
    }
    for (auto it = tparts.rbegin(); it != tparts.rend(); ++it) pending.push_back(*it);
  }
  std::string out = root;
  for (const auto& p : parts) out = join(out, p);
  return out;
}

namespace {
// Names in `path` (without "." and "..") for which keep(dir, entry) is true.
template <typename Keep>
StatusOr<std::vector<std::string>> listEntries(const std::string& path, Keep keep) {
  DIR* dir = ::opendir(path.c_str());
  if (dir == nullptr) return lastErrnoError(strCat("opendir \"", path, "\""));
  std::vector<std::string> names;
  while (struct dirent* ent = ::readdir(dir)) {
    std::string n = ent->d_name;
    if (n == "." || n == ".." || !keep(dir, ent)) continue;
    names.push_back(std::move(n));
  }
  ::closedir(dir);
  return names;
}
}  // namespace

StatusOr<std::vector<std::string>> listDir(const std::string& path) {
  return listEntries(path, [](DIR*, struct dirent*) { return true; });
}

StatusOr<std::vector<std::string>> listSubdirs(const std::string& path) {
  return listEntries(path, [](DIR* dir, struct dirent* ent) {
    if (ent->d_type != DT_UNKNOWN) return ent->d_type == DT_DIR;
    struct stat st;
    return ::fstatat(::dirfd(dir), ent->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
           S_ISDIR(st.st_mode);
  });
}

}  // namespace berth::fs
