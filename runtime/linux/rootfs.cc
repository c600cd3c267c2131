#include "runtime/linux/rootfs.h"

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <string_view>

#include "common/fs.h"
#include "common/log.h"
#include "common/scope_guard.h"
#include "common/strings.h"
#include "runtime/linux/devices.h"

namespace berth::rootfs {
namespace {

// ---------------------------------------------------------------------------
// Option tables

struct FlagOption {
  const char* name;
  bool clear;  // the option clears `flag` instead of setting it
  unsigned long flag;
};

constexpr FlagOption kFlagOptions[] = {
    {"ro", false, MS_RDONLY},
    {"rw", true, MS_RDONLY},
    {"nosuid", false, MS_NOSUID},
    {"suid", true, MS_NOSUID},
    {"nodev", false, MS_NODEV},
    {"dev", true, MS_NODEV},
    {"noexec", false, MS_NOEXEC},
    {"exec", true, MS_NOEXEC},
    {"sync", false, MS_SYNCHRONOUS},
    {"async", true, MS_SYNCHRONOUS},
    {"dirsync", false, MS_DIRSYNC},
    {"remount", false, MS_REMOUNT},
    {"mand", false, MS_MANDLOCK},
    {"nomand", true, MS_MANDLOCK},
    {"noatime", false, MS_NOATIME},
    {"atime", true, MS_NOATIME},
    {"nodiratime", false, MS_NODIRATIME},
    {"diratime", true, MS_NODIRATIME},
    {"relatime", false, MS_RELATIME},
    {"norelatime", true, MS_RELATIME},
    {"strictatime", false, MS_STRICTATIME},
    {"nostrictatime", true, MS_STRICTATIME},
    {"bind", false, MS_BIND},
    {"rbind", false, MS_BIND | MS_REC},
    {"nosymfollow", false, MS_NOSYMFOLLOW},
    {"symfollow", true, MS_NOSYMFOLLOW},
    {"lazytime", false, MS_LAZYTIME},
    {"nolazytime", true, MS_LAZYTIME},
};

struct PropagationOption {
  const char* name;
  unsigned long flags;
};

constexpr PropagationOption kPropagationOptions[] = {
    {"shared", MS_SHARED},          {"rshared", MS_SHARED | MS_REC},
    {"slave", MS_SLAVE},            {"rslave", MS_SLAVE | MS_REC},
    {"private", MS_PRIVATE},        {"rprivate", MS_PRIVATE | MS_REC},
    {"unbindable", MS_UNBINDABLE},  {"runbindable", MS_UNBINDABLE | MS_REC},
};

// Recursive mount attributes (mount_setattr(2) with AT_RECURSIVE); approximated by the
// plain flag on the top mount.
constexpr std::string_view kRecursiveAttributes[] = {
    "rro",     "rrw",          "rnosuid",      "rsuid",        "rnodev",
    "rdev",    "rnoexec",      "rexec",        "rnodiratime",  "rdiratime",
    "rrelatime", "rnorelatime", "rnoatime",    "ratime",       "rstrictatime",
    "rnostrictatime", "rnosymfollow", "rsymfollow",
};

constexpr unsigned long kAtimeFlags = MS_NOATIME | MS_NODIRATIME | MS_RELATIME | MS_STRICTATIME;
constexpr unsigned long kPropagationFlags = MS_SHARED | MS_SLAVE | MS_PRIVATE | MS_UNBINDABLE;

const FlagOption* findFlagOption(std::string_view name) {
  for (const auto& o : kFlagOptions) {
    if (name == o.name) return &o;
  }
  return nullptr;
}

const PropagationOption* findPropagationOption(std::string_view name) {
  for (const auto& o : kPropagationOptions) {
    if (name == o.name) return &o;
  }
  return nullptr;
}

// "ro,nosuid,rec" for error messages.
std::string flagNames(unsigned long flags) {
  std::vector<std::string> names;
  for (const auto& o : kFlagOptions) {
    if (!o.clear && (o.flag & (o.flag - 1)) == 0 && (flags & o.flag)) {
      names.emplace_back(o.name);
      flags &= ~o.flag;
    }
  }
  for (const auto& o : kPropagationOptions) {
    unsigned long kind = o.flags & ~MS_REC;
    if (o.flags == kind && (flags & kind)) {
      names.emplace_back(o.name);
      flags &= ~kind;
    }
  }
  if (flags & MS_REC) {
    names.emplace_back("rec");
    flags &= ~MS_REC;
  }
  if (flags & MS_MOVE) {
    names.emplace_back("move");
    flags &= ~MS_MOVE;
  }
  if (flags != 0) names.push_back(strCat("0x", hex(flags)));
  return names.empty() ? "none" : joinStrings(names, ",");
}

// ---------------------------------------------------------------------------
// Paths and /proc/self/mountinfo

std::string parentDir(const std::string& path) {
  auto pos = path.rfind('/');
  if (pos == std::string::npos || pos == 0) return "/";
  return path.substr(0, pos);
}

struct MountInfoEntry {
  std::string mount_point;
  std::string fstype;
};

// Undoes mountinfo's octal escapes ("\040" is a space).
std::string unescapeMountInfo(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 3 < text.size()) {
      std::string_view oct = text.substr(i + 1, 3);
      bool ok = true;
      for (char c : oct) ok = ok && c >= '0' && c <= '7';
      if (ok) {
        out.push_back(static_cast<char>((oct[0] - '0') * 64 + (oct[1] - '0') * 8 +
                                        (oct[2] - '0')));
        i += 3;
        continue;
      }
    }
    out.push_back(text[i]);
  }
  return out;
}

// The mounts of this process's mount namespace; empty if mountinfo is unreadable.
std::vector<MountInfoEntry> readMountInfo() {
  std::vector<MountInfoEntry> out;
  auto text = fs::readFile("/proc/self/mountinfo");
  if (!text.ok()) return out;
  for (const std::string& line : split(*text, '\n', true)) {
    std::vector<std::string> fields = split(line, ' ', true);
    // id parent major:minor root mount-point options [optional...] - fstype source super
    size_t dash = 0;
    for (size_t i = 6; i < fields.size(); ++i) {
      if (fields[i] == "-") {
        dash = i;
        break;
      }
    }
    if (fields.size() < 5 || dash == 0 || dash + 1 >= fields.size()) continue;
    out.push_back({unescapeMountInfo(fields[4]), fields[dash + 1]});
  }
  return out;
}

// Where the host's cgroup2 hierarchy is mounted ("/sys/fs/cgroup" on a unified host,
// "/sys/fs/cgroup/unified" on a hybrid one).
std::string hostCgroup2MountPoint() {
  for (const auto& m : readMountInfo()) {
    if (m.fstype == "cgroup2") return m.mount_point;
  }
  return "/sys/fs/cgroup";
}

// The mount point of the mount holding `path` (longest matching prefix).
std::string mountPointHolding(const std::string& path) {
  char buf[PATH_MAX];
  std::string real = ::realpath(path.c_str(), buf) != nullptr ? buf : path;
  std::string best = "/";
  for (const auto& m : readMountInfo()) {
    const std::string& mp = m.mount_point;
    bool under = real == mp || (real.size() > mp.size() && real.compare(0, mp.size(), mp) == 0 &&
                                real[mp.size()] == '/');
    if (under && mp.size() > best.size()) best = mp;
  }
  return best;
}

// ---------------------------------------------------------------------------
// Mount helpers

unsigned long remountFlagsOf(unsigned long flags) {
  return flags & ~(MS_BIND | MS_REC | MS_REMOUNT | kPropagationFlags);
}

// MS_REMOUNT|MS_BIND with `flags`; on EPERM (locked flags in a user namespace) retries
// once with the flags the mount already has added.
Status remountBind(Syscalls& sys, const std::string& target, unsigned long flags,
                   const std::string& what) {
  unsigned long f = MS_REMOUNT | MS_BIND | remountFlagsOf(flags);
  auto r = sys.mount(nullptr, target.c_str(), nullptr, f, nullptr);
  if (!r.ok() && r.err == EPERM) {
    unsigned long locked = preservedMountFlags(target);
    unsigned long retry = (f & ~kAtimeFlags) | locked;
    if (retry != f) {
      log::get("runtime")->debug("{}: remount refused (EPERM); retrying with {}", what,
                                 flagNames(retry));
      r = sys.mount(nullptr, target.c_str(), nullptr, retry, nullptr);
      f = retry;
    }
  }
  if (!r.ok()) {
    return errnoError(r.err, strCat(what, ": remount with ", flagNames(remountFlagsOf(f))));
  }
  return absl::OkStatus();
}

Status setPropagation(Syscalls& sys, const std::string& target, unsigned long flags,
                      const std::string& what) {
  auto r = sys.mount(nullptr, target.c_str(), nullptr, flags, nullptr);
  if (!r.ok()) {
    return errnoError(r.err, strCat(what, ": set propagation ", flagNames(flags)));
  }
  return absl::OkStatus();
}

// rbind of a host directory in place of a filesystem the kernel refused, then the
// mount's flags as a bind remount.
Status bindHostFallback(Syscalls& sys, const std::string& host, const std::string& dest,
                        unsigned long flags, const std::string& what) {
  auto r = sys.mount(host.c_str(), dest.c_str(), "bind", MS_BIND | MS_REC, nullptr);
  if (!r.ok()) {
    return errnoError(r.err, strCat(what, ": fallback bind of the host's \"", host, "\""));
  }
  if (remountFlagsOf(flags) != 0) return remountBind(sys, dest, flags, what);
  return absl::OkStatus();
}

struct MountJob {
  const Context& ctx;
  const oci::Mount& mount;
  std::string destination;  // cleaned container path
  std::string dest;         // host path inside the rootfs
  MountOptions opts;
  std::string what;         // `mount "src" on "/dst" (rootfs path "...")`
};

Status mountBind(const MountJob& job, const std::string& source) {
  Syscalls& sys = *job.ctx.sys;
  if (source.empty()) return invalidArgument(job.what, ": a bind mount needs a source");
  struct stat st {};
  if (::stat(source.c_str(), &st) != 0) {
    return lastErrnoError(strCat(job.what, ": bind source \"", source, "\""));
  }
  RETURN_IF_ERROR_CTX(createMountPoint(sys, job.dest, !S_ISDIR(st.st_mode)), job.what);
  auto r = sys.mount(source.c_str(), job.dest.c_str(), "bind",
                     MS_BIND | (job.opts.flags & MS_REC), nullptr);
  if (!r.ok()) return errnoError(r.err, job.what);
  // The kernel ignores ro/nosuid/… on the bind call itself.
  if (remountFlagsOf(job.opts.flags) != 0) {
    return remountBind(sys, job.dest, job.opts.flags, job.what);
  }
  return absl::OkStatus();
}

Status mountCgroup(const MountJob& job) {
  Syscalls& sys = *job.ctx.sys;
  RETURN_IF_ERROR_CTX(createMountPoint(sys, job.dest, false), job.what);
  unsigned long flags = job.opts.flags & ~(MS_BIND | MS_REC);
  // cgroup v1 data ("none,name=systemd") means nothing to cgroup2.
  const char* data = job.mount.type == "cgroup2" && !job.opts.data.empty()
                         ? job.opts.data.c_str()
                         : nullptr;
  auto r = sys.mount("cgroup", job.dest.c_str(), "cgroup2", flags, data);
  if (r.ok()) return absl::OkStatus();
  if (r.err != EPERM && r.err != EBUSY) return errnoError(r.err, job.what);
  std::string host = hostCgroup2MountPoint();
  log::get("runtime")->warn(
      "{}: cgroup2 mount refused ({}); bind-mounting the host's \"{}\" read-only instead",
      job.what, errnoName(r.err), host);
  return bindHostFallback(sys, host, job.dest, flags | MS_RDONLY, job.what);
}

// Mounts a filesystem (not a bind). Sets *skipped when the mount was left out.
Status mountFilesystem(const MountJob& job, bool* skipped) {
  Syscalls& sys = *job.ctx.sys;
  const oci::Mount& m = job.mount;
  RETURN_IF_ERROR_CTX(createMountPoint(sys, job.dest, false), job.what);
  unsigned long flags = job.opts.flags;
  // Devices are created in /dev after the mounts: a read-only /dev is mounted rw here
  // and remounted read-only by finishRootfs().
  if (job.destination == "/dev") flags &= ~MS_RDONLY;
  std::string source = m.source.empty() ? m.type : m.source;
  const char* data = job.opts.data.empty() ? nullptr : job.opts.data.c_str();
  auto r = sys.mount(source.c_str(), job.dest.c_str(), m.type.c_str(), flags, data);
  if (r.ok()) return absl::OkStatus();
  if (m.type == "sysfs" && r.err == EPERM) {
    // A user namespace that does not own the network namespace may not mount sysfs.
    log::get("runtime")->warn("{}: sysfs mount refused (EPERM); bind-mounting the host's "
                              "/sys instead",
                              job.what);
    return bindHostFallback(sys, "/sys", job.dest, flags, job.what);
  }
  if (m.type == "mqueue" && r.err == EPERM && job.ctx.in_user_ns) {
    log::get("runtime")->warn("{}: mqueue mount refused in the user namespace (EPERM); "
                              "skipped",
                              job.what);
    *skipped = true;
    return absl::OkStatus();
  }
  return errnoError(r.err, job.what);
}

Status mountOne(const Context& ctx, const oci::Mount& m) {
  std::string destination = cleanPath(m.destination);
  ASSIGN_OR_RETURN(std::string dest, fs::secureJoin(ctx.rootfs, destination));
  MountJob job{ctx, m, destination, dest, parseMountOptions(m.options), ""};
  bool bind = m.type == "bind" || (job.opts.flags & MS_BIND) != 0;
  std::string source = m.source;
  if (bind && !source.empty() && source[0] != '/') source = fs::join(ctx.bundle, source);
  job.what = strCat("mount \"", source.empty() ? m.type : source, "\" on \"", destination,
                    "\" (rootfs path \"", dest, "\")");
  bool skipped = false;
  if (bind) {
    RETURN_IF_ERROR(mountBind(job, source));
  } else if (m.type == "cgroup" || m.type == "cgroup2") {
    RETURN_IF_ERROR(mountCgroup(job));
  } else {
    RETURN_IF_ERROR(mountFilesystem(job, &skipped));
  }
  if (!skipped && job.opts.propagation != 0) {
    RETURN_IF_ERROR(setPropagation(*ctx.sys, dest, job.opts.propagation, job.what));
  }
  return absl::OkStatus();
}

bool isDevBindMount(const oci::Spec& spec) {
  for (const auto& m : spec.mounts) {
    if (cleanPath(m.destination) != "/dev") continue;
    if (m.type == "bind" || (parseMountOptions(m.options).flags & MS_BIND)) return true;
  }
  return false;
}

bool hasDevpts(const oci::Spec& spec) {
  for (const auto& m : spec.mounts) {
    if (m.type == "devpts" && cleanPath(m.destination) == "/dev/pts") return true;
  }
  return false;
}

Status createDevSymlinks(const Context& ctx, const oci::Spec& spec) {
  ASSIGN_OR_RETURN(std::string dev, fs::secureJoin(ctx.rootfs, "/dev"));
  std::vector<std::pair<std::string, std::string>> links = {
      {"/proc/self/fd", "fd"},
      {"/proc/self/fd/0", "stdin"},
      {"/proc/self/fd/1", "stdout"},
      {"/proc/self/fd/2", "stderr"},
  };
  if (::access("/proc/kcore", F_OK) == 0) links.emplace_back("/proc/kcore", "core");
  for (const auto& [target, name] : links) {
    std::string path = fs::join(dev, name);
    auto r = ctx.sys->symlink(target.c_str(), path.c_str());
    if (!r.ok() && r.err != EEXIST) {
      return errnoError(r.err, strCat("create symlink \"/dev/", name, "\" -> \"", target,
                                      "\" (rootfs path \"", path, "\")"));
    }
  }
  if (hasDevpts(spec)) {
    std::string path = fs::join(dev, "ptmx");
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      return lastErrnoError(strCat("remove \"/dev/ptmx\" (rootfs path \"", path,
                                   "\") to replace it with a symlink to pts/ptmx"));
    }
    auto r = ctx.sys->symlink("pts/ptmx", path.c_str());
    if (!r.ok()) {
      return errnoError(r.err, strCat("create symlink \"/dev/ptmx\" -> \"pts/ptmx\" "
                                      "(rootfs path \"", path, "\")"));
    }
  }
  return absl::OkStatus();
}

Status checkContext(const Context& ctx) {
  if (ctx.sys == nullptr) return failedPrecondition("rootfs: no Syscalls given");
  if (ctx.rootfs.empty() || ctx.rootfs[0] != '/') {
    return failedPrecondition("rootfs: path \"", ctx.rootfs,
                              "\" is not absolute; resolve root.path against the bundle");
  }
  return absl::OkStatus();
}

// maskedPaths: /dev/null over a file, a read-only tmpfs over a directory.
Status maskPath(Syscalls& sys, const std::string& root, const std::string& path) {
  std::string clean = cleanPath(path);
  ASSIGN_OR_RETURN(std::string target, fs::secureJoin(root, clean));
  std::string what = strCat("mask \"", clean, "\" (path \"", target, "\")");
  struct stat st {};
  if (::stat(target.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return lastErrnoError(strCat(what, ": stat"));
  }
  SysIntResult r{0, 0};
  if (S_ISDIR(st.st_mode)) {
    r = sys.mount("tmpfs", target.c_str(), "tmpfs", MS_RDONLY, nullptr);
  } else {
    std::string null = fs::join(root, "dev/null");
    r = sys.mount(null.c_str(), target.c_str(), "bind", MS_BIND, nullptr);
  }
  if (!r.ok() && r.err != ENOENT) return errnoError(r.err, what);
  return absl::OkStatus();
}

// readonlyPaths: bind onto itself, then remount read-only keeping the locked flags.
Status readonlyPath(Syscalls& sys, const std::string& root, const std::string& path) {
  std::string clean = cleanPath(path);
  ASSIGN_OR_RETURN(std::string target, fs::secureJoin(root, clean));
  std::string what = strCat("make \"", clean, "\" read-only (path \"", target, "\")");
  struct stat st {};
  if (::stat(target.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return lastErrnoError(strCat(what, ": stat"));
  }
  auto r = sys.mount(target.c_str(), target.c_str(), "bind", MS_BIND | MS_REC, nullptr);
  if (!r.ok()) {
    if (r.err == ENOENT) return absl::OkStatus();
    return errnoError(r.err, strCat(what, ": bind onto itself"));
  }
  unsigned long flags = MS_REMOUNT | MS_BIND | MS_RDONLY | preservedMountFlags(target);
  r = sys.mount(nullptr, target.c_str(), nullptr, flags, nullptr);
  if (!r.ok()) return errnoError(r.err, strCat(what, ": remount ", flagNames(flags)));
  return absl::OkStatus();
}

bool devMountReadonly(const oci::Spec& spec) {
  bool ro = false;
  for (const auto& m : spec.mounts) {
    if (cleanPath(m.destination) != "/dev") continue;
    MountOptions o = parseMountOptions(m.options);
    ro = m.type != "bind" && !(o.flags & MS_BIND) && (o.flags & MS_RDONLY);
  }
  return ro;
}

}  // namespace

// ---------------------------------------------------------------------------
// Public API

MountOptions parseMountOptions(const std::vector<std::string>& options) {
  MountOptions out;
  std::vector<std::string> data;
  for (const std::string& option : options) {
    if (option.empty() || option == "defaults") continue;
    if (const FlagOption* f = findFlagOption(option)) {
      if (f->clear) {
        out.flags &= ~f->flag;
      } else {
        out.flags |= f->flag;
      }
      continue;
    }
    if (const PropagationOption* p = findPropagationOption(option)) {
      out.propagation = p->flags;  // the last one wins
      continue;
    }
    if (option == "tmpcopyup") {
      log::get("runtime")->debug("mount option \"tmpcopyup\" is not supported; ignored");
      continue;
    }
    bool recursive = false;
    for (std::string_view r : kRecursiveAttributes) recursive = recursive || option == r;
    if (recursive) {
      const FlagOption* f = findFlagOption(std::string_view(option).substr(1));
      log::get("runtime")->debug(
          "mount option \"{}\" applied to the top mount only (as \"{}\")", option,
          option.substr(1));
      if (f != nullptr) {
        if (f->clear) {
          out.flags &= ~f->flag;
        } else {
          out.flags |= f->flag;
        }
      }
      continue;
    }
    data.push_back(option);
  }
  out.data = joinStrings(data, ",");
  return out;
}

StatusOr<unsigned long> parsePropagation(const std::string& value) {
  if (value.empty()) return static_cast<unsigned long>(MS_REC | MS_SLAVE);
  if (const PropagationOption* p = findPropagationOption(value)) return p->flags;
  return invalidArgument("linux.rootfsPropagation: unknown value \"", value,
                         "\"; use one of shared, slave, private, unbindable, rshared, "
                         "rslave, rprivate, runbindable");
}

unsigned long preservedMountFlags(const std::string& path) {
  struct statvfs sv {};
  if (::statvfs(path.c_str(), &sv) != 0) return 0;
  unsigned long flags = 0;
  if (sv.f_flag & ST_RDONLY) flags |= MS_RDONLY;
  if (sv.f_flag & ST_NOSUID) flags |= MS_NOSUID;
  if (sv.f_flag & ST_NODEV) flags |= MS_NODEV;
  if (sv.f_flag & ST_NOEXEC) flags |= MS_NOEXEC;
  if (sv.f_flag & ST_NOATIME) flags |= MS_NOATIME;
  if (sv.f_flag & ST_NODIRATIME) flags |= MS_NODIRATIME;
  if (!(sv.f_flag & (ST_NOATIME | ST_RELATIME))) flags |= MS_STRICTATIME;
  return flags;
}

std::string cleanPath(const std::string& path) {
  std::vector<std::string> parts;
  for (const std::string& p : split(path, '/', true)) {
    if (p == ".") continue;
    if (p == "..") {
      if (!parts.empty()) parts.pop_back();
      continue;
    }
    parts.push_back(p);
  }
  return "/" + joinStrings(parts, "/");
}

Status createMountPoint(Syscalls& sys, const std::string& path, bool is_file) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) return absl::OkStatus();
  std::vector<std::string> missing;
  for (std::string dir = parentDir(path); dir != "/"; dir = parentDir(dir)) {
    if (::lstat(dir.c_str(), &st) == 0) break;
    missing.push_back(dir);
  }
  for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
    auto r = sys.mkdir(it->c_str(), 0755);
    if (!r.ok() && r.err != EEXIST) {
      return errnoError(r.err, strCat("create directory \"", *it, "\""));
    }
  }
  if (is_file) {
    auto r = sys.open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (!r.ok()) {
      if (r.err == EEXIST) return absl::OkStatus();
      return errnoError(r.err, strCat("create file \"", path, "\""));
    }
    sys.close(r.value);
    return absl::OkStatus();
  }
  auto r = sys.mkdir(path.c_str(), 0755);
  if (!r.ok() && r.err != EEXIST) {
    return errnoError(r.err, strCat("create directory \"", path, "\""));
  }
  return absl::OkStatus();
}

Status setupRootfs(const Context& ctx, const oci::Spec& spec) {
  RETURN_IF_ERROR(checkContext(ctx));
  Syscalls& sys = *ctx.sys;
  std::string propagation_value = spec.linux ? spec.linux->rootfsPropagation : "";
  ASSIGN_OR_RETURN(unsigned long propagation, parsePropagation(propagation_value));
  RETURN_IF_ERROR(setPropagation(sys, "/", propagation, "prepare \"/\""));
  if (propagation & MS_SHARED) {
    // pivot_root(2) refuses a new root whose parent mount is shared, and the rootfs
    // bind below must not propagate to the host.
    std::string parent = mountPointHolding(ctx.rootfs);
    RETURN_IF_ERROR(setPropagation(sys, parent, MS_PRIVATE,
                                   strCat("prepare the rootfs's parent mount \"", parent,
                                          "\"")));
  }
  auto r = sys.mount(ctx.rootfs.c_str(), ctx.rootfs.c_str(), "bind", MS_BIND | MS_REC,
                     nullptr);
  if (!r.ok()) {
    return errnoError(r.err, strCat("bind-mount the rootfs \"", ctx.rootfs,
                                    "\" onto itself"));
  }
  for (const oci::Mount& m : spec.mounts) RETURN_IF_ERROR(mountOne(ctx, m));

  if (isDevBindMount(spec)) {
    log::get("runtime")->debug("/dev is bind-mounted from the host; no devices created");
    return absl::OkStatus();
  }
  static const std::vector<oci::Device> kNoDevices;
  RETURN_IF_ERROR(devices::createDevices(sys, ctx.rootfs,
                                         spec.linux ? spec.linux->devices : kNoDevices,
                                         ctx.in_user_ns));
  return createDevSymlinks(ctx, spec);
}

Status pivotRoot(const Context& ctx) {
  RETURN_IF_ERROR(checkContext(ctx));
  Syscalls& sys = *ctx.sys;
  constexpr int kDirFlags = O_DIRECTORY | O_RDONLY | O_CLOEXEC;
  auto old_root = sys.open("/", kDirFlags, 0);
  if (!old_root.ok()) return errnoError(old_root.err, "pivot_root: open the old root \"/\"");
  ScopeGuard close_old([&] { sys.close(old_root.value); });
  auto new_root = sys.open(ctx.rootfs.c_str(), kDirFlags, 0);
  if (!new_root.ok()) {
    return errnoError(new_root.err, strCat("pivot_root: open the rootfs \"", ctx.rootfs, "\""));
  }
  ScopeGuard close_new([&] { sys.close(new_root.value); });
  std::string what = strCat("pivot_root into \"", ctx.rootfs, "\"");

  auto r = sys.fchdir(new_root.value);
  if (!r.ok()) return errnoError(r.err, strCat(what, ": fchdir to the rootfs"));
  r = sys.pivotRoot(".", ".");
  if (!r.ok() && r.err == EINVAL) {
    // The rootfs lives on the initramfs, which cannot be pivoted away: move the rootfs
    // mount onto "/" and chroot into it (switch_root's way).
    log::get("runtime")->debug("{}: EINVAL; using MS_MOVE + chroot", what);
    r = sys.chdir(ctx.rootfs.c_str());
    if (!r.ok()) return errnoError(r.err, strCat(what, ": chdir to the rootfs"));
    r = sys.mount(ctx.rootfs.c_str(), "/", nullptr, MS_MOVE, nullptr);
    if (!r.ok()) return errnoError(r.err, strCat(what, ": move the rootfs onto \"/\""));
    r = sys.chroot(".");
    if (!r.ok()) return errnoError(r.err, strCat(what, ": chroot"));
    r = sys.chdir("/");
    if (!r.ok()) return errnoError(r.err, strCat(what, ": chdir to \"/\""));
    return absl::OkStatus();
  }
  if (!r.ok()) return errnoError(r.err, what);
  // The old root is now stacked on top of "/": step onto it, keep its unmount from
  // propagating to the host, and detach it.
  r = sys.fchdir(old_root.value);
  if (!r.ok()) return errnoError(r.err, strCat(what, ": fchdir to the old root"));
  r = sys.mount(nullptr, ".", nullptr, MS_SLAVE | MS_REC, nullptr);
  if (!r.ok()) return errnoError(r.err, strCat(what, ": make the old root rslave"));
  r = sys.umount2(".", MNT_DETACH);
  if (!r.ok()) return errnoError(r.err, strCat(what, ": detach the old root"));
  r = sys.chdir("/");
  if (!r.ok()) return errnoError(r.err, strCat(what, ": chdir to \"/\""));
  return absl::OkStatus();
}

Status finishRootfs(const Context& ctx, const oci::Spec& spec) {
  if (ctx.sys == nullptr) return failedPrecondition("rootfs: no Syscalls given");
  Syscalls& sys = *ctx.sys;
  const std::string root = ctx.container_root.empty() ? "/" : ctx.container_root;
  if (spec.linux) {
    for (const std::string& p : spec.linux->maskedPaths) {
      RETURN_IF_ERROR_CTX(maskPath(sys, root, p), "linux.maskedPaths");
    }
    for (const std::string& p : spec.linux->readonlyPaths) {
      RETURN_IF_ERROR_CTX(readonlyPath(sys, root, p), "linux.readonlyPaths");
    }
  }
  if (devMountReadonly(spec)) {
    ASSIGN_OR_RETURN(std::string dev, fs::secureJoin(root, "/dev"));
    RETURN_IF_ERROR(remountBind(sys, dev, MS_RDONLY | preservedMountFlags(dev),
                                strCat("remount \"/dev\" (path \"", dev, "\") read-only")));
  }
  if (spec.linux && !spec.linux->rootfsPropagation.empty()) {
    ASSIGN_OR_RETURN(unsigned long propagation,
                     parsePropagation(spec.linux->rootfsPropagation));
    // Private was already applied before the pivot; shared/slave/unbindable must be set
    // on the new "/" itself.
    if (!(propagation & MS_PRIVATE)) {
      RETURN_IF_ERROR(setPropagation(sys, root, propagation, "linux.rootfsPropagation"));
    }
  }
  if (spec.root && spec.root->readonly) {
    unsigned long flags = MS_REMOUNT | MS_BIND | MS_RDONLY | preservedMountFlags(root);
    auto r = sys.mount(nullptr, root.c_str(), nullptr, flags, nullptr);
    if (!r.ok()) {
      return errnoError(r.err, strCat("root.readonly: remount \"/\" (path \"", root,
                                      "\") ", flagNames(flags)));
    }
  }
  return absl::OkStatus();
}

}  // namespace berth::rootfs
