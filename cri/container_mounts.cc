// Mount and device helpers of buildContainerSpec (container_mounts.h).
#include "cri/container_mounts.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <optional>

#include "common/fs.h"
#include "common/log.h"
#include "common/strings.h"

namespace berth::cri::detail {
namespace {

namespace v1 = ::runtime::v1;

spdlog::logger& logger() {
  static std::shared_ptr<spdlog::logger> l = log::get("cri");
  return *l;
}

size_t pathDepth(const std::string& clean) {
  return clean == "/" ? 0 : static_cast<size_t>(std::count(clean.begin(), clean.end(), '/'));
}

oci::Mount bindMount(const std::string& destination, const std::string& source,
                     bool readonly) {
  oci::Mount m;
  m.destination = destination;
  m.type = "bind";
  m.source = source;
  m.options = {"rbind", "rprivate", readonly ? "ro" : "rw"};
  return m;
}

bool hasMountAt(const v1::ContainerConfig& config, const std::string& destination) {
  for (const v1::Mount& m : config.mounts()) {
    if (cleanPath(m.container_path()) == destination) return true;
  }
  return false;
}

std::optional<oci::Device> deviceFromStat(const std::string& path, const struct stat& st) {
  oci::Device d;
  if (S_ISCHR(st.st_mode)) {
    d.type = "c";
  } else if (S_ISBLK(st.st_mode)) {
    d.type = "b";
  } else {
    return std::nullopt;
  }
  d.path = path;
  d.major = major(st.st_rdev);
  d.minor = minor(st.st_rdev);
  d.fileMode = st.st_mode & 07777;
  d.uid = st.st_uid;
  d.gid = st.st_gid;
  return d;
}

}  // namespace

// Lexically cleaned absolute path: no "//", ".", ".." or trailing "/".
std::string cleanPath(std::string_view path) {
  std::vector<std::string> parts;
  for (const std::string& part : split(path, '/', /*skip_empty=*/true)) {
    if (part == ".") continue;
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
      continue;
    }
    parts.push_back(part);
  }
  return "/" + joinStrings(parts, "/");
}

Status addCriMounts(const ContainerSpecInput& in, MountPlan& plan) {
  const v1::ContainerConfig& config = in.config;
  for (int i = 0; i < config.mounts_size(); ++i) {
    const v1::Mount& m = config.mounts(i);
    const std::string field = strCat("ContainerConfig.mounts[", i, "]");
    if (m.container_path().empty() || m.container_path().front() != '/') {
      return invalidArgument(field, ".container_path: \"", m.container_path(),
                             "\" must be an absolute path in the container");
    }
    if (m.has_image() && !m.image().image().empty()) {
      return unimplemented(field, ".image: image volumes are not supported by berth yet");
    }
    if (m.uidmappings_size() > 0 || m.gidmappings_size() > 0) {
      return unimplemented(field, ": idmapped mounts (uidMappings/gidMappings) are not "
                                  "supported by berth yet");
    }
    if (m.host_path().empty() || m.host_path().front() != '/') {
      return invalidArgument(field, ".host_path: \"", m.host_path(),
                             "\" must be an absolute path on the node");
    }
    if (m.selinux_relabel()) {
      logger().debug("container {}: mount {}: SELinux relabel ignored (SELinux is not "
                     "supported by berth)", in.container_id, m.container_path());
    }
    oci::Mount out;
    out.destination = cleanPath(m.container_path());
    out.type = "bind";
    out.source = m.host_path();
    out.options.push_back("rbind");
    switch (m.propagation()) {
      case v1::PROPAGATION_PRIVATE:
        out.options.push_back("rprivate");
        break;
      case v1::PROPAGATION_HOST_TO_CONTAINER:
        out.options.push_back("rslave");
        if (plan.rootfs_propagation != "rshared") plan.rootfs_propagation = "rslave";
        break;
      case v1::PROPAGATION_BIDIRECTIONAL:
        out.options.push_back("rshared");
        plan.rootfs_propagation = "rshared";
        break;
      default:
        return invalidArgument(field, ".propagation: unknown value ",
                               static_cast<int>(m.propagation()),
                               "; use PROPAGATION_PRIVATE, PROPAGATION_HOST_TO_CONTAINER "
                               "or PROPAGATION_BIDIRECTIONAL");
    }
    out.options.push_back(m.readonly() ? "ro" : "rw");
    if (m.recursive_read_only()) {
      if (!m.readonly()) {
        return invalidArgument(field, ".recursive_read_only: needs readonly: true");
      }
      if (m.propagation() != v1::PROPAGATION_PRIVATE) {
        return invalidArgument(field, ".recursive_read_only: needs propagation "
                                      "PROPAGATION_PRIVATE");
      }
      if (!in.rro_supported) {
        return failedPrecondition(field, ".recursive_read_only: the runtime handler does "
                                         "not support recursive read-only mounts (kernel "
                                         "5.12 or later with mount_setattr is needed)");
      }
      out.options.push_back("rro");
    }
    for (int j = 0; j < m.mount_options_size(); ++j) {
      const std::string& opt = m.mount_options(j);
      if (opt.empty() || opt.find(',') != std::string::npos) {
        return invalidArgument(field, ".mount_options[", j, "]: \"", opt,
                               "\" is not a single mount option");
      }
      out.options.push_back(opt);
    }
    plan.mounts.push_back(std::move(out));
  }
  return Status();
}

void addPodFileMounts(const ContainerSpecInput& in, bool host_ipc, MountPlan& plan) {
  const bool ro = in.config.linux().security_context().readonly_rootfs();
  const PodFilePaths& f = in.files;
  if (!f.hostname.empty() && !hasMountAt(in.config, "/etc/hostname")) {
    plan.mounts.push_back(bindMount("/etc/hostname", f.hostname, ro));
  }
  if (!f.hosts.empty() && !hasMountAt(in.config, "/etc/hosts")) {
    plan.mounts.push_back(bindMount("/etc/hosts", f.hosts, ro));
  }
  if (!f.resolv_conf.empty() && !hasMountAt(in.config, "/etc/resolv.conf")) {
    plan.mounts.push_back(bindMount("/etc/resolv.conf", f.resolv_conf, ro));
  }
  if (!hasMountAt(in.config, "/dev/shm")) {
    if (host_ipc) {
      plan.mounts.push_back(bindMount("/dev/shm", "/dev/shm", false));
    } else if (!f.shm.empty()) {
      plan.mounts.push_back(bindMount("/dev/shm", f.shm, false));
    }
  }
}

// Default mounts stay unless a planned mount replaces them (same destination, or
// anything under /dev when /dev itself is replaced); planned mounts follow, parents
// before children.
std::vector<oci::Mount> mergeMounts(std::vector<oci::Mount> defaults,
                                    std::vector<oci::Mount> planned) {
  std::vector<std::string> replaced;
  for (const oci::Mount& m : planned) replaced.push_back(cleanPath(m.destination));
  const bool dev_replaced =
      std::find(replaced.begin(), replaced.end(), "/dev") != replaced.end();
  std::vector<oci::Mount> out;
  for (oci::Mount& m : defaults) {
    std::string dst = cleanPath(m.destination);
    if (std::find(replaced.begin(), replaced.end(), dst) != replaced.end()) continue;
    if (dev_replaced && dst.rfind("/dev/", 0) == 0) continue;
    out.push_back(std::move(m));
  }
  std::stable_sort(planned.begin(), planned.end(), [](const oci::Mount& a, const oci::Mount& b) {
    return pathDepth(cleanPath(a.destination)) < pathDepth(cleanPath(b.destination));
  });
  for (oci::Mount& m : planned) out.push_back(std::move(m));
  return out;
}

// Every device node under host directory `dir` (recursively, symlinks not followed),
// mapped to the same relative path under `container_dir`.
void collectDevices(const std::string& dir, const std::string& container_dir, bool top_level_dev,
                    std::vector<oci::Device>& out) {
  auto names = fs::listDir(dir);
  if (!names.ok()) return;
  std::sort(names->begin(), names->end());
  for (const std::string& name : *names) {
    const std::string host = dir + "/" + name;
    struct stat st {};
    if (::lstat(host.c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      // Mount points and runtime-managed directories are not devices to copy.
      if (top_level_dev && (name == "pts" || name == "shm" || name == "fd" ||
                            name == "mqueue" || name == ".lxc" || name == ".lxd-mounts" ||
                            name == ".udev")) {
        continue;
      }
      collectDevices(host, container_dir + "/" + name, false, out);
      continue;
    }
    // The runtime sets these up itself (console from the pty, ptmx from devpts).
    if (top_level_dev && (name == "console" || name == "ptmx")) continue;
    if (auto d = deviceFromStat(container_dir + "/" + name, st)) out.push_back(*d);
  }
}

Status addCriDevices(const v1::ContainerConfig& config, oci::Linux& linux) {
  for (int i = 0; i < config.devices_size(); ++i) {
    const v1::Device& d = config.devices(i);
    const std::string field = strCat("ContainerConfig.devices[", i, "]");
    if (d.host_path().empty() || d.host_path().front() != '/') {
      return invalidArgument(field, ".host_path: \"", d.host_path(),
                             "\" must be an absolute path on the node");
    }
    std::string container_path = d.container_path().empty() ? d.host_path() : d.container_path();
    if (container_path.front() != '/') {
      return invalidArgument(field, ".container_path: \"", container_path,
                             "\" must be an absolute path in the container");
    }
    container_path = cleanPath(container_path);
    std::string access = d.permissions().empty() ? "rwm" : d.permissions();
    for (char c : access) {
      if (c != 'r' && c != 'w' && c != 'm') {
        return invalidArgument(field, ".permissions: \"", d.permissions(),
                               "\" is not a combination of r, w and m");
      }
    }
    struct stat st {};
    if (::stat(d.host_path().c_str(), &st) != 0) {
      return withContext(lastErrnoError(strCat("stat \"", d.host_path(), "\"")),
                         strCat(field, ".host_path"));
    }
    std::vector<oci::Device> found;
    if (S_ISDIR(st.st_mode)) {
      collectDevices(d.host_path(), container_path, false, found);
    } else if (auto dev = deviceFromStat(container_path, st)) {
      found.push_back(*dev);
    } else {
      return invalidArgument(field, ".host_path: \"", d.host_path(),
                             "\" is not a character or block device");
    }
    for (oci::Device& dev : found) {
      oci::DeviceCgroup rule;
      rule.allow = true;
      rule.type = dev.type;
      rule.major = dev.major;
      rule.minor = dev.minor;
      rule.access = access;
      linux.resources->devices.push_back(rule);
      linux.devices.push_back(std::move(dev));
    }
  }
  return Status();
}

void makeWritable(std::vector<oci::Mount>& mounts, const std::string& destination) {
  for (oci::Mount& m : mounts) {
    if (cleanPath(m.destination) != destination) continue;
    for (std::string& opt : m.options) {
      if (opt == "ro") opt = "rw";
    }
  }
}

}  // namespace berth::cri::detail
