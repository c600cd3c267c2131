#include "runtime/cgroups/manager.h"

#include "common/fs.h"
#include "common/strings.h"
#include "runtime/cgroups/fs2_manager.h"

namespace berth::cgroups {
namespace {

// Decodes the \ooo escapes that the kernel uses for space, tab, newline and backslash
// in mountinfo paths.
std::string unescapeMountPath(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    auto octal = [&](size_t j, char max) { return in[j] >= '0' && in[j] <= max; };
    if (in[i] == '\\' && i + 3 < in.size() && octal(i + 1, '3') && octal(i + 2, '7') &&
        octal(i + 3, '7')) {
      out.push_back(static_cast<char>((in[i + 1] - '0') * 64 + (in[i + 2] - '0') * 8 +
                                      (in[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(in[i]);
    }
  }
  return out;
}

}  // namespace

StatusOr<std::string> findCgroup2Mount(std::string_view mountinfo) {
  std::vector<std::string> mounts;
  for (const std::string& line : split(mountinfo, '\n', true)) {
    // "36 35 98:0 /root /mnt rw,noatime master:1 - cgroup2 cgroup2 rw"
    std::vector<std::string> fields = split(line, ' ', true);
    size_t sep = 0;
    while (sep < fields.size() && fields[sep] != "-") ++sep;
    if (sep < 5 || sep + 1 >= fields.size()) continue;
    if (fields[sep + 1] != "cgroup2") continue;
    mounts.push_back(unescapeMountPath(fields[4]));
  }
  for (const char* preferred : {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"}) {
    for (const std::string& m : mounts) {
      if (m == preferred) return m;
    }
  }
  if (!mounts.empty()) return mounts.front();
  return notFound(
      "no cgroup2 filesystem is mounted (looked for fstype cgroup2 in "
      "/proc/self/mountinfo); mount one at /sys/fs/cgroup (pure v2) or "
      "/sys/fs/cgroup/unified (hybrid)");
}

StatusOr<std::string> detectCgroup2Mount() {
  ASSIGN_OR_RETURN(std::string text, fs::readFile("/proc/self/mountinfo"));
  return findCgroup2Mount(text);
}

StatusOr<std::string> resolveCgroupsPath(const std::string& cgroups_path,
                                         const std::string& container_id) {
  if (cgroups_path.empty()) {
    if (container_id.empty() || container_id.find('/') != std::string::npos ||
        container_id == "." || container_id == "..") {
      return invalidArgument("cannot derive a cgroup path from container id \"",
                             container_id, "\"");
    }
    return strCat("/berth/", container_id);
  }
  if (cgroups_path.find(':') != std::string::npos) {
    return invalidArgument("linux.cgroupsPath \"", cgroups_path,
                           "\" looks like a systemd slice path (slice:prefix:name), which "
                           "needs the systemd cgroup driver; use a filesystem path such "
                           "as \"/berth/", container_id, "\" with the cgroupfs driver");
  }
  std::vector<std::string> parts = split(cgroups_path, '/', true);
  for (const std::string& p : parts) {
    if (p == "..") {
      return invalidArgument("linux.cgroupsPath \"", cgroups_path,
                             "\": \"..\" is not allowed; use a path below the cgroup root");
    }
  }
  std::vector<std::string> clean;
  for (std::string& p : parts) {
    if (p != ".") clean.push_back(std::move(p));
  }
  if (clean.empty()) {
    return invalidArgument("linux.cgroupsPath \"", cgroups_path,
                           "\" names the root cgroup; give the container its own cgroup");
  }
  return "/" + joinStrings(clean, "/");
}

std::unique_ptr<Manager> newFs2Manager(Options options) {
  return std::make_unique<Fs2Manager>(std::move(options));
}

}  // namespace berth::cgroups
