#include "cni/ipam/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>

#include "common/fs.h"
#include "common/strings.h"

namespace berth::cni::ipam {
namespace {

constexpr char kLockName[] = "lock";
constexpr char kTempName[] = ".tmp";
constexpr char kCursorPrefix[] = "last_reserved_ip.";
constexpr char kOwnerPrefix[] = "owner.";
// The cursor record: the address padded to the longest IPv6 text, then a newline.
constexpr size_t kCursorWidth = 46;
constexpr size_t kMaxSmallFile = 64 * 1024;

bool startsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// Reads a small file of the store. NotFound (errno ENOENT) when missing; DataLoss when
// longer than kMaxSmallFile.
StatusOr<std::string> readSmall(int dir_fd, const char* name, const std::string& display) {
  int fd = ::openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return lastErrnoError(strCat("open \"", display, "\""));
  UniqueFd guard(fd);
  std::string out;
  char buf[4096];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return lastErrnoError(strCat("read \"", display, "\""));
    out.append(buf, static_cast<size_t>(n));
    // A short read of a regular file on a local filesystem is its end: skip the
    // second read(2) that would only return 0.
    if (static_cast<size_t>(n) < sizeof(buf)) break;
    if (out.size() > kMaxSmallFile) {
      return absl::DataLossError(strCat("\"", display, "\" is too large"));
    }
  }
  return out;
}

Status writeAll(int fd, std::string_view data, const std::string& display) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return lastErrnoError(strCat("write \"", display, "\""));
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

// Parses an owner file ("<id>\n<ifname>\n<ip>\n..."); returns what is wrong or "".
std::string parseOwnerFile(std::string_view text, std::string* id, std::string* ifname,
                           std::vector<IpAddress>* ips) {
  if (text.empty() || text.back() != '\n') return "file is empty or truncated";
  std::vector<std::string> lines = split(text.substr(0, text.size() - 1), '\n');
  if (lines.size() < 2) return "file does not name a container ID and an ifname";
  if (!checkStoreName("container ID", lines[0]).ok()) return "malformed container ID line";
  if (!checkStoreName("interface name", lines[1]).ok()) return "malformed ifname line";
  for (size_t i = 2; i < lines.size(); ++i) {
    auto ip = IpAddress::parse(lines[i]);
    if (!ip.ok()) return strCat("bad address line \"", lines[i], "\"");
    if (ips != nullptr) ips->push_back(*ip);
  }
  *id = std::move(lines[0]);
  *ifname = std::move(lines[1]);
  return "";
}

// An address file's content; sets `out->problem` when damaged.
void parseAddressFile(std::string_view text, Allocation* out) {
  std::string problem = parseOwnerFile(text, &out->container_id, &out->ifname, nullptr);
  if (!problem.empty()) {
    out->container_id.clear();
    out->ifname.clear();
    out->problem = strCat("owner ", problem);
  }
}

}  // namespace

Status checkStoreName(std::string_view what, std::string_view value) {
  auto bad = [&](std::string_view why) {
    return invalidArgument(what, " \"", value, "\" is not usable: ", why);
  };
  if (value.empty()) return invalidArgument(what, " is empty");
  if (value == "." || value == "..") return bad("\".\" and \"..\" are not allowed");
  if (value.size() > 255) return bad("longer than 255 bytes");
  for (char c : value) {
    if (c == '/') return bad("contains '/'");
    if (c <= ' ' || c >= 0x7f) return bad("contains a space, control or non-ASCII character");
  }
  return absl::OkStatus();
}

std::string Store::ownerName(std::string_view container_id, std::string_view ifname) {
  std::string name = strCat(kOwnerPrefix, container_id.size(), ".", container_id, ".", ifname);
  if (name.size() <= 255) return name;
  // Too long for a readable name: a hash. Should two owners ever collide, the index
  // names its owner, a mismatch reads as damaged and lookups fall back to a full scan.
  return strCat(kOwnerPrefix, "h.", fnv1a64Hex(strCat(container_id, "\n", ifname)));
}

std::string Store::path(std::string_view name) const { return fs::join(dir_, name); }

StatusOr<Store::Lock> Store::lock(bool create) {
  int dfd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0 && errno == ENOENT) {
    if (!create) return Lock();
    RETURN_IF_ERROR_CTX(fs::mkdirAll(dir_, 0700), "create the IPAM data directory");
    dfd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  }
  if (dfd < 0) return lastErrnoError(strCat("open IPAM directory \"", dir_, "\""));
  dir_fd_.reset(dfd);
  int fd = ::openat(dfd, kLockName, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0600);
  if (fd < 0) {
    if (errno == ENOENT && !create) return Lock();
    return lastErrnoError(strCat("open IPAM lock \"", path(kLockName), "\""));
  }
  UniqueFd lock_fd(fd);
  while (::flock(fd, LOCK_EX) != 0) {
    if (errno == EINTR) continue;
    return lastErrnoError(strCat("flock \"", path(kLockName), "\""));
  }
  // Every writer holds this lock, so a `.tmp` seen now is what a crashed writer left.
  if (::unlinkat(dfd, kTempName, 0) != 0 && errno != ENOENT) {
    return lastErrnoError(strCat("remove stray \"", path(kTempName), "\""));
  }
  return Lock(std::move(lock_fd));
}

StatusOr<std::optional<Allocation>> Store::readAddress(const IpAddress& ip) {
  std::string name = ip.toString();
  auto text = readSmall(dir_fd_.get(), name.c_str(), path(name));
  Allocation a;
  a.ip = ip;
  if (!text.ok()) {
    if (errnoOf(text.status()) == ENOENT) return std::optional<Allocation>();
    if (!absl::IsDataLoss(text.status())) return text.status();
    a.problem = "owner file is too large";
  } else {
    parseAddressFile(*text, &a);
  }
  return std::optional<Allocation>(std::move(a));
}

StatusOr<bool> Store::hasAddress(const IpAddress& ip) {
  std::string name = ip.toString();
  struct stat st;
  if (::fstatat(dir_fd_.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) return true;
  if (errno == ENOENT) return false;
  return lastErrnoError(strCat("stat \"", path(name), "\""));
}

Status Store::writeTemp(std::string_view data) {
  int fd = ::openat(dir_fd_.get(), kTempName, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
                    0600);
  if (fd < 0) return lastErrnoError(strCat("create \"", path(kTempName), "\""));
  UniqueFd guard(fd);
  Status st = writeAll(fd, data, path(kTempName));
  if (!st.ok()) ::unlinkat(dir_fd_.get(), kTempName, 0);
  return st;
}

Status Store::writeOwner(std::string_view container_id, std::string_view ifname,
                         const std::vector<IpAddress>& ips) {
  std::string name = ownerName(container_id, ifname);
  if (ips.empty()) return removeOwnerFile(name);
  std::string text = strCat(container_id, "\n", ifname, "\n");
  for (const IpAddress& ip : ips) text += strCat(ip.toString(), "\n");
  RETURN_IF_ERROR(writeTemp(text));
  if (::renameat(dir_fd_.get(), kTempName, dir_fd_.get(), name.c_str()) != 0) {
    Status st = lastErrnoError(strCat("rename \"", path(kTempName), "\" to \"", path(name), "\""));
    ::unlinkat(dir_fd_.get(), kTempName, 0);
    return st;
  }
  return absl::OkStatus();
}

StatusOr<bool> Store::linkAddress(std::string_view container_id, std::string_view ifname,
                                  const IpAddress& ip) {
  std::string owner = ownerName(container_id, ifname);
  std::string name = ip.toString();
  if (::linkat(dir_fd_.get(), owner.c_str(), dir_fd_.get(), name.c_str(), 0) == 0) return true;
  if (errno == EEXIST) return false;
  return lastErrnoError(strCat("link \"", path(owner), "\" to \"", path(name), "\""));
}

Status Store::remove(const IpAddress& ip) {
  std::string name = ip.toString();
  if (::unlinkat(dir_fd_.get(), name.c_str(), 0) != 0 && errno != ENOENT) {
    return lastErrnoError(strCat("remove \"", path(name), "\""));
  }
  return absl::OkStatus();
}

StatusOr<std::optional<std::vector<IpAddress>>> Store::readOwner(std::string_view container_id,
                                                                std::string_view ifname) {
  std::string name = ownerName(container_id, ifname);
  auto text = readSmall(dir_fd_.get(), name.c_str(), path(name));
  if (!text.ok()) {
    if (errnoOf(text.status()) == ENOENT) return std::optional<std::vector<IpAddress>>();
    return text.status();
  }
  std::string id, ifn;
  std::vector<IpAddress> ips;
  std::string problem = parseOwnerFile(*text, &id, &ifn, &ips);
  if (problem.empty() && (id != container_id || ifn != ifname)) problem = "names another owner";
  if (!problem.empty()) {
    return absl::DataLossError(strCat("owner file \"", path(name), "\" is damaged: ", problem));
  }
  return std::optional<std::vector<IpAddress>>(std::move(ips));
}

Status Store::removeOwnerFile(const std::string& file) {
  if (::unlinkat(dir_fd_.get(), file.c_str(), 0) != 0 && errno != ENOENT) {
    return lastErrnoError(strCat("remove \"", path(file), "\""));
  }
  return absl::OkStatus();
}

namespace {

// Calls `fn(dirent)` for each entry of `dir_fd` (a duplicate is read, so `dir_fd`
// stays usable); stops at the first error `fn` returns.
template <typename Fn>
Status forEachEntry(int dir_fd, const std::string& display, Fn fn) {
  int dup_fd = ::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
  if (dup_fd < 0) return lastErrnoError(strCat("dup IPAM directory \"", display, "\""));
  DIR* d = ::fdopendir(dup_fd);
  if (d == nullptr) {
    ::close(dup_fd);
    return lastErrnoError(strCat("read IPAM directory \"", display, "\""));
  }
  ::rewinddir(d);
  Status status = absl::OkStatus();
  while (status.ok()) {
    errno = 0;
    dirent* e = ::readdir(d);
    if (e == nullptr) {
      if (errno != 0) status = lastErrnoError(strCat("read IPAM directory \"", display, "\""));
      break;
    }
    if (e->d_name[0] == '.' && (e->d_name[1] == '\0' || (e->d_name[1] == '.' && e->d_name[2] == '\0'))) {
      continue;
    }
    status = fn(*e);
  }
  ::closedir(d);
  return status;
}

}  // namespace

StatusOr<std::vector<Allocation>> Store::scan(bool read_owners) {
  std::vector<Allocation> out;
  RETURN_IF_ERROR(forEachEntry(dir_fd_.get(), dir_, [&](const dirent& e) -> Status {
    std::string_view name = e.d_name;
    if (startsWith(name, kTempName)) {
      // Any temp file (also the per-process names older versions used) is stray here.
      if (::unlinkat(dir_fd_.get(), e.d_name, 0) != 0 && errno != ENOENT) {
        return lastErrnoError(strCat("remove stray temp file \"", path(name), "\""));
      }
      return absl::OkStatus();
    }
    if (e.d_type != DT_REG && e.d_type != DT_UNKNOWN) return absl::OkStatus();
    if (name.empty() || !(std::isxdigit(static_cast<unsigned char>(name[0])) || name[0] == ':')) {
      return absl::OkStatus();  // lock, owner.*, last_reserved_ip.*: no address starts so
    }
    auto ip = IpAddress::parse(name);
    if (!ip.ok()) return absl::OkStatus();  // not ours
    if (!read_owners) {
      Allocation a;
      a.ip = *ip;
      out.push_back(std::move(a));
      return absl::OkStatus();
    }
    ASSIGN_OR_RETURN(std::optional<Allocation> a, readAddress(*ip));
    if (a) out.push_back(std::move(*a));
    return absl::OkStatus();
  }));
  return out;
}

StatusOr<std::vector<OwnerFile>> Store::scanOwners() {
  std::vector<OwnerFile> out;
  RETURN_IF_ERROR(forEachEntry(dir_fd_.get(), dir_, [&](const dirent& e) -> Status {
    std::string_view name = e.d_name;
    if (!startsWith(name, kOwnerPrefix)) return absl::OkStatus();
    OwnerFile owner;
    owner.file = std::string(name);
    auto text = readSmall(dir_fd_.get(), e.d_name, path(name));
    if (!text.ok()) {
      if (errnoOf(text.status()) == ENOENT) return absl::OkStatus();
      if (!absl::IsDataLoss(text.status())) return text.status();
      owner.corrupt = true;
    } else {
      owner.corrupt = !parseOwnerFile(*text, &owner.container_id, &owner.ifname, nullptr).empty() ||
                      ownerName(owner.container_id, owner.ifname) != owner.file;
    }
    out.push_back(std::move(owner));
    return absl::OkStatus();
  }));
  return out;
}

std::optional<IpAddress> Store::lastReserved(size_t set) {
  std::string name = strCat(kCursorPrefix, set);
  auto text = readSmall(dir_fd_.get(), name.c_str(), path(name));
  if (!text.ok()) return std::nullopt;
  auto ip = IpAddress::parse(trim(*text));
  if (!ip.ok()) return std::nullopt;
  return *ip;
}

Status Store::setLastReserved(size_t set, const IpAddress& ip) {
  std::string name = strCat(kCursorPrefix, set);
  std::string record = ip.toString();
  record.resize(kCursorWidth, ' ');
  record += '\n';
  int fd = ::openat(dir_fd_.get(), name.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return lastErrnoError(strCat("open \"", path(name), "\""));
  UniqueFd guard(fd);
  ssize_t n;
  do {
    n = ::pwrite(fd, record.data(), record.size(), 0);
  } while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(record.size())) {
    return lastErrnoError(strCat("write \"", path(name), "\""));
  }
  return absl::OkStatus();
}

}  // namespace berth::cni::ipam
