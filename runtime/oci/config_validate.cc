// validateSpec / validateProcess (config.h): the checks berth-runtime makes on a
// config.json before it touches the system. Rules follow runtime-spec 1.1 config.md
// and config-linux.md, and runc's validator where the spec leaves a choice.
// Every error names the field ("linux.namespaces[2].type: ...") and what to do.
#include <algorithm>
#include <array>
#include <cctype>
#include <set>
#include <string_view>

#include "runtime/oci/config.h"

namespace berth::oci {
namespace {

constexpr std::array<std::string_view, 8> kNamespaceTypes = {
    "pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"};

constexpr std::array<std::string_view, 16> kRlimitTypes = {
    "RLIMIT_AS",     "RLIMIT_CORE",   "RLIMIT_CPU",    "RLIMIT_DATA",
    "RLIMIT_FSIZE",  "RLIMIT_LOCKS",  "RLIMIT_MEMLOCK", "RLIMIT_MSGQUEUE",
    "RLIMIT_NICE",   "RLIMIT_NOFILE", "RLIMIT_NPROC",  "RLIMIT_RSS",
    "RLIMIT_RTPRIO", "RLIMIT_RTTIME", "RLIMIT_SIGPENDING", "RLIMIT_STACK"};

constexpr std::array<std::string_view, 9> kPropagations = {
    "shared", "slave", "private", "unbindable", "rshared",
    "rslave", "rprivate", "runbindable", ""};

template <size_t N>
bool contains(const std::array<std::string_view, N>& list, std::string_view value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

template <size_t N>
std::string listOf(const std::array<std::string_view, N>& list) {
  std::string out;
  for (std::string_view item : list) {
    if (item.empty()) continue;
    if (!out.empty()) out += ", ";
    out += item;
  }
  return out;
}

bool isAbsolute(const std::string& path) { return !path.empty() && path[0] == '/'; }

std::string idx(std::string_view base, size_t i) { return strCat(base, "[", i, "]"); }

// How the spec asks for one namespace type.
enum class NsMode { kAbsent, kNew, kJoined };

NsMode namespaceMode(const Spec& spec, std::string_view type) {
  if (!spec.linux) return NsMode::kAbsent;
  for (const Namespace& ns : spec.linux->namespaces) {
    if (ns.type == type) return ns.path.empty() ? NsMode::kNew : NsMode::kJoined;
  }
  return NsMode::kAbsent;
}

berth::Status validateVersion(const std::string& version) {
  if (version.empty()) {
    return invalidArgument("ociVersion: required; set it to \"", kOciVersion, "\"");
  }
  // "1.<digits>..." (pre-release and build suffixes such as "1.0.2-dev" are fine).
  bool ok = version.size() >= 3 && version[0] == '1' && version[1] == '.' &&
            std::isdigit(static_cast<unsigned char>(version[2]));
  if (!ok) {
    return invalidArgument("ociVersion: unsupported version \"", version,
                           "\"; berth-runtime implements runtime-spec 1.x (1.0.0 to 1.2.x), "
                           "set it to \"", kOciVersion, "\"");
  }
  return absl::OkStatus();
}

berth::Status validateRlimits(const std::vector<Rlimit>& rlimits) {
  std::set<std::string> seen;
  for (size_t i = 0; i < rlimits.size(); ++i) {
    const Rlimit& r = rlimits[i];
    std::string at = idx("process.rlimits", i);
    if (!contains(kRlimitTypes, r.type)) {
      return invalidArgument(at, ".type: unknown rlimit type \"", r.type, "\"; use one of ",
                             listOf(kRlimitTypes));
    }
    if (!seen.insert(r.type).second) {
      return invalidArgument(at, ".type: duplicate rlimit \"", r.type,
                             "\"; give each type once");
    }
    if (r.soft > r.hard) {
      return invalidArgument(at, ": soft limit ", r.soft, " is above hard limit ", r.hard,
                             " for ", r.type, "; lower soft or raise hard");
    }
  }
  return absl::OkStatus();
}

berth::Status validateHooks(const Hooks& hooks) {
  const std::pair<const char*, const std::vector<Hook>*> lists[] = {
      {"prestart", &hooks.prestart},           {"createRuntime", &hooks.createRuntime},
      {"createContainer", &hooks.createContainer}, {"startContainer", &hooks.startContainer},
      {"poststart", &hooks.poststart},         {"poststop", &hooks.poststop}};
  for (const auto& [name, list] : lists) {
    for (size_t i = 0; i < list->size(); ++i) {
      const Hook& hook = (*list)[i];
      std::string at = idx(strCat("hooks.", name), i);
      if (!isAbsolute(hook.path)) {
        return invalidArgument(at, ".path: \"", hook.path,
                               "\" is not an absolute path; hooks run from the runtime's "
                               "namespace and need the full path of the executable");
      }
      if (hook.timeout && *hook.timeout <= 0) {
        return invalidArgument(at, ".timeout: ", *hook.timeout,
                               " must be greater than zero seconds (or omitted for no timeout)");
      }
    }
  }
  return absl::OkStatus();
}

berth::Status validateNamespaces(const Linux& linux) {
  std::map<std::string, size_t> seen;
  for (size_t i = 0; i < linux.namespaces.size(); ++i) {
    const Namespace& ns = linux.namespaces[i];
    std::string at = idx("linux.namespaces", i);
    if (!contains(kNamespaceTypes, ns.type)) {
      return invalidArgument(at, ".type: unknown namespace type \"", ns.type,
                             "\"; use one of ", listOf(kNamespaceTypes));
    }
    auto [it, inserted] = seen.emplace(ns.type, i);
    if (!inserted) {
      return invalidArgument(at, ".type: duplicate namespace \"", ns.type, "\" (also at ",
                             idx("linux.namespaces", it->second), "); list each type once");
    }
    if (!ns.path.empty() && !isAbsolute(ns.path)) {
      return invalidArgument(at, ".path: \"", ns.path,
                             "\" is not an absolute path; give a namespace file such as "
                             "/proc/<pid>/ns/", namespaceProcName(ns.type));
    }
  }
  return absl::OkStatus();
}

berth::Status validateMappings(const Spec& spec) {
  const Linux& linux = *spec.linux;
  NsMode user = namespaceMode(spec, "user");
  const std::pair<const char*, const std::vector<IdMapping>*> maps[] = {
      {"linux.uidMappings", &linux.uidMappings}, {"linux.gidMappings", &linux.gidMappings}};
  for (const auto& [name, list] : maps) {
    if (user == NsMode::kNew && list->empty()) {
      return invalidArgument(name, ": required when a new user namespace is requested; map "
                             "at least the container's root, e.g. [{\"containerID\": 0, "
                             "\"hostID\": 100000, \"size\": 65536}]");
    }
    if (user != NsMode::kNew && !list->empty()) {
      return invalidArgument(
          name, ": mappings need a new user namespace; add {\"type\": \"user\"} without a "
          "path to linux.namespaces, or remove the mappings",
          user == NsMode::kJoined ? " (a joined user namespace keeps its own mappings)" : "");
    }
    for (size_t i = 0; i < list->size(); ++i) {
      if ((*list)[i].size == 0) {
        return invalidArgument(idx(name, i), ".size: must be greater than zero");
      }
    }
  }
  return absl::OkStatus();
}

berth::Status validateDevices(const Linux& linux) {
  for (size_t i = 0; i < linux.devices.size(); ++i) {
    const Device& d = linux.devices[i];
    std::string at = idx("linux.devices", i);
    if (d.type != "c" && d.type != "b" && d.type != "u" && d.type != "p") {
      return invalidArgument(at, ".type: unknown device type \"", d.type,
                             "\"; use c (character), b (block), u (unbuffered character) or "
                             "p (FIFO)");
    }
    if (!isAbsolute(d.path)) {
      return invalidArgument(at, ".path: \"", d.path,
                             "\" is not an absolute path; give the device's path in the "
                             "container, e.g. /dev/fuse");
    }
  }
  if (!linux.resources) return absl::OkStatus();
  const auto& rules = linux.resources->devices;
  for (size_t i = 0; i < rules.size(); ++i) {
    const DeviceCgroup& rule = rules[i];
    std::string at = idx("linux.resources.devices", i);
    if (!rule.type.empty() && rule.type != "a" && rule.type != "c" && rule.type != "b") {
      return invalidArgument(at, ".type: unknown device rule type \"", rule.type,
                             "\"; use a (all), c (character) or b (block)");
    }
    for (char c : rule.access) {
      if (c != 'r' && c != 'w' && c != 'm') {
        return invalidArgument(at, ".access: invalid character '", c, "' in \"", rule.access,
                               "\"; use a combination of r (read), w (write), m (mknod)");
      }
    }
  }
  return absl::OkStatus();
}

// The sysctl rule of runtime-spec config-linux.md ("Sysctl") as runc enforces it: only
// namespaced sysctls, and only when the container has that namespace.
berth::Status validateSysctls(const Spec& spec) {
  for (const auto& [key, value] : spec.linux->sysctl) {
    std::string name = key;  // "net/ipv4/ip_forward" is the same as "net.ipv4.ip_forward"
    std::replace(name.begin(), name.end(), '/', '.');
    std::string at = strCat("linux.sysctl[\"", key, "\"]");
    auto need = [&](std::string_view type, std::string_view what) -> berth::Status {
      if (namespaceMode(spec, type) != NsMode::kAbsent) return absl::OkStatus();
      return invalidArgument(at, ": needs a private ", what, " namespace, or it would change "
                             "the host's; add {\"type\": \"", type,
                             "\"} to linux.namespaces or remove the sysctl");
    };
    static const std::set<std::string> kIpc = {
        "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni",  "kernel.sem",
        "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"};
    if (kIpc.count(name) != 0 || name.rfind("fs.mqueue.", 0) == 0) {
      RETURN_IF_ERROR(need("ipc", "IPC"));
    } else if (name.rfind("net.", 0) == 0) {
      RETURN_IF_ERROR(need("network", "network"));
    } else if (name == "kernel.hostname" || name == "kernel.domainname") {
      RETURN_IF_ERROR(need("uts", "UTS"));
      const bool is_host = name == "kernel.hostname";
      if (!(is_host ? spec.hostname : spec.domainname).empty()) {
        const char* field = is_host ? "hostname" : "domainname";
        return invalidArgument(at, ": conflicts with the \"", field, "\" field; set only \"",
                               field, "\"");
      }
    } else {
      return invalidArgument(at, ": \"", key, "\" is not a namespaced sysctl, so setting it "
                             "would change the whole host; remove it (set it on the host if "
                             "needed)");
    }
  }
  return absl::OkStatus();
}

berth::Status validateLinux(const Spec& spec) {
  const Linux& linux = *spec.linux;
  RETURN_IF_ERROR(validateNamespaces(linux));
  RETURN_IF_ERROR(validateMappings(spec));
  RETURN_IF_ERROR(validateDevices(linux));
  RETURN_IF_ERROR(validateSysctls(spec));
  if (!contains(kPropagations, linux.rootfsPropagation)) {
    return invalidArgument("linux.rootfsPropagation: unknown propagation \"",
                           linux.rootfsPropagation, "\"; use one of ", listOf(kPropagations));
  }
  const std::pair<const char*, const std::vector<std::string>*> path_lists[] = {
      {"linux.maskedPaths", &linux.maskedPaths}, {"linux.readonlyPaths", &linux.readonlyPaths}};
  for (const auto& [name, list] : path_lists) {
    for (size_t i = 0; i < list->size(); ++i) {
      if (!isAbsolute((*list)[i])) {
        return invalidArgument(idx(name, i), ": \"", (*list)[i],
                               "\" is not an absolute path in the container");
      }
    }
  }
  return absl::OkStatus();
}

berth::Status validateMounts(const std::vector<Mount>& mounts) {
  for (size_t i = 0; i < mounts.size(); ++i) {
    const Mount& m = mounts[i];
    std::string at = idx("mounts", i);
    if (!isAbsolute(m.destination)) {
      return invalidArgument(at, ".destination: \"", m.destination,
                             "\" is not an absolute path; give the mount point in the "
                             "container, e.g. \"/data\"");
    }
    if (!m.uidMappings.empty() || !m.gidMappings.empty()) {
      return invalidArgument(at, ": idmapped mounts (uidMappings/gidMappings) are not "
                             "supported by berth-runtime; remove the mappings");
    }
  }
  return absl::OkStatus();
}

}  // namespace

berth::Status validateProcess(const Process& process) {
  if (process.args.empty()) {
    return invalidArgument("process.args: must not be empty; give the command to run, "
                           "e.g. [\"sh\"]");
  }
  if (process.cwd.empty()) {
    return invalidArgument("process.cwd: required; set the working directory in the "
                           "container, e.g. \"/\"");
  }
  if (!isAbsolute(process.cwd)) {
    return invalidArgument("process.cwd: \"", process.cwd,
                           "\" is not an absolute path; use e.g. \"/", process.cwd, "\"");
  }
  RETURN_IF_ERROR(validateRlimits(process.rlimits));
  if (process.oomScoreAdj && (*process.oomScoreAdj < -1000 || *process.oomScoreAdj > 1000)) {
    return invalidArgument("process.oomScoreAdj: ", *process.oomScoreAdj,
                           " is out of range; use -1000 to 1000");
  }
  if (process.user.umask && *process.user.umask > 0777) {
    return invalidArgument("process.user.umask: ", *process.user.umask,
                           " is not a file mode mask; use 0 to 511 (0777)");
  }
  return absl::OkStatus();
}

berth::Status validateSpec(const Spec& spec) {
  RETURN_IF_ERROR(validateVersion(spec.ociVersion));
  if (!spec.process) {
    return invalidArgument("process: required; config.json must describe the container's "
                           "process (args, cwd, env)");
  }
  RETURN_IF_ERROR(validateProcess(*spec.process));
  if (!spec.root || spec.root->path.empty()) {
    return invalidArgument("root.path: required; set it to the bundle's root filesystem "
                           "directory, e.g. \"rootfs\"");
  }
  RETURN_IF_ERROR(validateMounts(spec.mounts));
  if (spec.hooks) RETURN_IF_ERROR(validateHooks(*spec.hooks));
  // runc's rule: hostname/domainname need a UTS namespace of the container's own (new
  // or joined by path), never the host's.
  if (namespaceMode(spec, "uts") == NsMode::kAbsent) {
    if (!spec.hostname.empty()) {
      return invalidArgument("hostname: setting \"", spec.hostname,
                             "\" needs a private UTS namespace; add {\"type\": \"uts\"} to "
                             "linux.namespaces or remove hostname");
    }
    if (!spec.domainname.empty()) {
      return invalidArgument("domainname: setting \"", spec.domainname,
                             "\" needs a private UTS namespace; add {\"type\": \"uts\"} to "
                             "linux.namespaces or remove domainname");
    }
  }
  if (spec.linux) RETURN_IF_ERROR(validateLinux(spec));
  return absl::OkStatus();
}

}  // namespace berth::oci
