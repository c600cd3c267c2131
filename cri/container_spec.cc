// buildContainerSpec and helpers (container_spec.h).
#include "cri/container_spec.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <limits>

#include "common/fs.h"
#include "common/log.h"
#include "common/strings.h"
#include "cri/container_mounts.h"
#include "cri/seccomp_default.h"
#include "runtime/oci/default_spec.h"

namespace berth::cri {
namespace {

namespace v1 = ::runtime::v1;
using detail::addCriDevices;
using detail::addCriMounts;
using detail::addPodFileMounts;
using detail::cleanPath;
using detail::collectDevices;
using detail::makeWritable;
using detail::mergeMounts;
using detail::MountPlan;

constexpr char kDefaultPath[] =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
constexpr char kSecurityContext[] = "ContainerConfig.linux.security_context";

// containerd's CRI annotation names (pkg/cri/annotations), which OCI hooks, runtimes
// such as Kata and node tools read.
constexpr char kAnnotationContainerType[] = "io.kubernetes.cri.container-type";
constexpr char kAnnotationSandboxId[] = "io.kubernetes.cri.sandbox-id";
constexpr char kAnnotationSandboxName[] = "io.kubernetes.cri.sandbox-name";
constexpr char kAnnotationSandboxNamespace[] = "io.kubernetes.cri.sandbox-namespace";
constexpr char kAnnotationSandboxUid[] = "io.kubernetes.cri.sandbox-uid";
constexpr char kAnnotationContainerName[] = "io.kubernetes.cri.container-name";
constexpr char kAnnotationImageName[] = "io.kubernetes.cri.image-name";

// The deprecated string forms of the seccomp and AppArmor choices (still sent by older
// kubelets).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
const std::string& legacySeccompPath(const v1::LinuxContainerSecurityContext& sc) {
  return sc.seccomp_profile_path();
}
const std::string& legacyApparmorProfile(const v1::LinuxContainerSecurityContext& sc) {
  return sc.apparmor_profile();
}
#pragma GCC diagnostic pop

spdlog::logger& logger() {
  static std::shared_ptr<spdlog::logger> l = log::get("cri");
  return *l;
}

std::string upper(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

bool isAll(std::string_view name) { return upper(name) == "ALL"; }

// "net_admin", "NET_ADMIN", "CAP_NET_ADMIN" -> "CAP_NET_ADMIN", checked.
StatusOr<std::string> capabilityName(std::string_view name, const std::string& field) {
  std::string cap = upper(name);
  if (cap.rfind("CAP_", 0) != 0) cap = "CAP_" + cap;
  const auto& all = allCapabilities();
  if (std::find(all.begin(), all.end(), cap) == all.end()) {
    return invalidArgument(field, ": unknown capability \"", cap,
                           "\"; use a name like CAP_NET_ADMIN or NET_ADMIN, or ALL");
  }
  return cap;
}

void addUnique(std::vector<std::string>& list, const std::string& value) {
  if (std::find(list.begin(), list.end(), value) == list.end()) list.push_back(value);
}

// Sets KEY=value in env, replacing an entry with the same key or appending.
void setEnv(std::vector<std::string>& env, const std::string& entry) {
  std::string key = entry.substr(0, entry.find('='));
  for (std::string& e : env) {
    if (e.substr(0, e.find('=')) == key) {
      e = entry;
      return;
    }
  }
  env.push_back(entry);
}

StatusOr<oci::Capabilities> buildCapabilities(const v1::LinuxContainerSecurityContext& sc) {
  const std::string field = strCat(kSecurityContext, ".capabilities");
  std::vector<std::string> set = defaultCapabilities();
  std::vector<std::string> ambient;
  if (sc.has_capabilities()) {
    const v1::Capability& c = sc.capabilities();
    // "ALL" first so single names still apply: add ALL + drop CHOWN = all but CHOWN.
    for (const std::string& name : c.add_capabilities()) {
      if (isAll(name)) set = allCapabilities();
    }
    for (const std::string& name : c.drop_capabilities()) {
      if (isAll(name)) set.clear();
    }
    for (int i = 0; i < c.add_capabilities_size(); ++i) {
      if (isAll(c.add_capabilities(i))) continue;
      ASSIGN_OR_RETURN(std::string cap,
                       capabilityName(c.add_capabilities(i),
                                      strCat(field, ".add_capabilities[", i, "]")));
      addUnique(set, cap);
    }
    for (int i = 0; i < c.drop_capabilities_size(); ++i) {
      if (isAll(c.drop_capabilities(i))) continue;
      ASSIGN_OR_RETURN(std::string cap,
                       capabilityName(c.drop_capabilities(i),
                                      strCat(field, ".drop_capabilities[", i, "]")));
      set.erase(std::remove(set.begin(), set.end(), cap), set.end());
    }
    for (int i = 0; i < c.add_ambient_capabilities_size(); ++i) {
      const std::string f = strCat(field, ".add_ambient_capabilities[", i, "]");
      if (isAll(c.add_ambient_capabilities(i))) {
        return invalidArgument(f, ": \"ALL\" is not allowed for ambient capabilities; "
                                  "name each one");
      }
      ASSIGN_OR_RETURN(std::string cap, capabilityName(c.add_ambient_capabilities(i), f));
      addUnique(ambient, cap);
      addUnique(set, cap);
    }
  }
  if (sc.privileged()) set = allCapabilities();
  oci::Capabilities caps;
  caps.bounding = set;
  caps.effective = set;
  caps.permitted = set;
  caps.inheritable = ambient;  // an ambient capability must be inheritable too
  caps.ambient = ambient;
  return caps;
}

bool validHugepageSize(const std::string& size) {
  size_t digits = 0;
  while (digits < size.size() && std::isdigit(static_cast<unsigned char>(size[digits]))) {
    ++digits;
  }
  if (digits == 0) return false;
  std::string unit = size.substr(digits);
  return unit == "KB" || unit == "MB" || unit == "GB" || unit == "TB" || unit == "PB";
}

}  // namespace

StatusOr<oci::Resources> convertResources(const v1::LinuxContainerResources& r,
                                          bool swap_available, oci::Resources res) {
  const std::string field = "ContainerConfig.linux.resources";
  if (r.cpu_period() < 0) return invalidArgument(field, ".cpu_period: must not be negative");
  if (r.cpu_shares() < 0) return invalidArgument(field, ".cpu_shares: must not be negative");
  if (r.cpu_quota() < -1) {
    return invalidArgument(field, ".cpu_quota: ", r.cpu_quota(),
                           " is invalid; use a positive number of microseconds or -1");
  }
  if (r.memory_limit_in_bytes() < 0) {
    return invalidArgument(field, ".memory_limit_in_bytes: must not be negative");
  }
  if (r.memory_swap_limit_in_bytes() < -1) {
    return invalidArgument(field, ".memory_swap_limit_in_bytes: ",
                           r.memory_swap_limit_in_bytes(),
                           " is invalid; use a number of bytes or -1 (unlimited)");
  }
  if (r.oom_score_adj() < -1000 || r.oom_score_adj() > 1000) {
    return invalidArgument(field, ".oom_score_adj: ", r.oom_score_adj(),
                           " is out of range -1000..1000");
  }
  oci::Cpu cpu;
  if (r.cpu_period() != 0) cpu.period = static_cast<uint64_t>(r.cpu_period());
  if (r.cpu_quota() != 0) cpu.quota = r.cpu_quota();
  if (r.cpu_shares() != 0) cpu.shares = static_cast<uint64_t>(r.cpu_shares());
  cpu.cpus = r.cpuset_cpus();
  cpu.mems = r.cpuset_mems();
  if (cpu.period || cpu.quota || cpu.shares || !cpu.cpus.empty() || !cpu.mems.empty()) {
    res.cpu = cpu;
  }
  oci::Memory memory;
  if (r.memory_limit_in_bytes() != 0) {
    memory.limit = r.memory_limit_in_bytes();
    // Without an explicit swap limit the container gets no swap (limit == limit+swap).
    if (swap_available) memory.swap = r.memory_limit_in_bytes();
  }
  if (r.memory_swap_limit_in_bytes() != 0 && swap_available) {
    memory.swap = r.memory_swap_limit_in_bytes();
  }
  if (memory.limit || memory.swap) res.memory = memory;
  for (int i = 0; i < r.hugepage_limits_size(); ++i) {
    const v1::HugepageLimit& h = r.hugepage_limits(i);
    if (!validHugepageSize(h.page_size())) {
      return invalidArgument(field, ".hugepage_limits[", i, "].page_size: \"", h.page_size(),
                             "\" is not a page size like 2MB or 1GB");
    }
    res.hugepageLimits.push_back({h.page_size(), h.limit()});
  }
  for (const auto& [key, value] : r.unified()) {
    if (key.empty() || key.find('/') != std::string::npos || key.find('.') == std::string::npos) {
      return invalidArgument(field, ".unified: key \"", key,
                             "\" is not a cgroup v2 file name like memory.high");
    }
    res.unified[key] = value;
  }
  return res;
}

namespace {

Status applyResources(const ContainerSpecInput& in, oci::Spec& spec) {
  if (!in.config.linux().has_resources()) return Status();
  const v1::LinuxContainerResources& r = in.config.linux().resources();
  ASSIGN_OR_RETURN(*spec.linux->resources,
                   convertResources(r, in.swap_available, *spec.linux->resources));
  int adj = static_cast<int>(r.oom_score_adj());
  if (in.min_oom_score_adj && adj < *in.min_oom_score_adj) adj = *in.min_oom_score_adj;
  spec.process->oomScoreAdj = adj;
  return Status();
}

// The PID namespace mode of the container (its own NamespaceOption, else the pod's).
v1::NamespaceMode pidMode(const ContainerSpecInput& in) {
  const auto& sc = in.config.linux().security_context();
  if (sc.has_namespace_options()) return sc.namespace_options().pid();
  return in.sandbox_config.linux().security_context().namespace_options().pid();
}

Status checkUserNamespace(const v1::NamespaceOption& ns, const std::string& field) {
  if (!ns.has_userns_options()) return Status();
  const v1::UserNamespace& u = ns.userns_options();
  if (u.mode() == v1::NODE) return Status();
  if (u.mode() == v1::POD && u.uids_size() == 0 && u.gids_size() == 0) return Status();
  return unimplemented(field, ".userns_options: user namespaces are not supported by berth "
                              "yet; use mode NODE (hostUsers: true)");
}

Status buildNamespaces(const ContainerSpecInput& in, bool privileged, oci::Linux& linux) {
  const auto& pod_ns = in.sandbox_config.linux().security_context().namespace_options();
  const std::string pod_field = "PodSandboxConfig.linux.security_context.namespace_options";
  RETURN_IF_ERROR(checkUserNamespace(pod_ns, pod_field));
  RETURN_IF_ERROR(checkUserNamespace(in.config.linux().security_context().namespace_options(),
                                     strCat(kSecurityContext, ".namespace_options")));
  auto join = [&](const char* type, const std::string& path, const char* what) -> Status {
    if (path.empty()) {
      return failedPrecondition("pod ", in.sandbox_id, " has no pinned ", what,
                                " namespace for container ", in.container_id,
                                " (PodSandboxConfig asks for a pod-level one)");
    }
    linux.namespaces.push_back({type, path});
    return Status();
  };
  linux.namespaces.clear();
  const bool host_network = pod_ns.network() == v1::NODE;
  if (!host_network) RETURN_IF_ERROR(join("network", in.namespaces.network, "network"));
  if (pod_ns.ipc() != v1::NODE) RETURN_IF_ERROR(join("ipc", in.namespaces.ipc, "IPC"));
  // A host-network pod also has the node's UTS namespace (its hostname).
  if (!host_network) RETURN_IF_ERROR(join("uts", in.namespaces.uts, "UTS"));
  switch (pidMode(in)) {
    case v1::POD:
      RETURN_IF_ERROR(join("pid", in.namespaces.pid, "PID"));
      break;
    case v1::CONTAINER:
      linux.namespaces.push_back({"pid", ""});
      break;
    case v1::NODE:
      break;
    case v1::TARGET:
      if (in.target_pid_namespace.empty()) {
        return failedPrecondition(kSecurityContext, ".namespace_options.target_id: the PID "
                                  "namespace of target container \"",
                                  in.config.linux().security_context().namespace_options()
                                      .target_id(),
                                  "\" is not known");
      }
      linux.namespaces.push_back({"pid", in.target_pid_namespace});
      break;
    default:
      return invalidArgument(kSecurityContext, ".namespace_options.pid: unknown mode ",
                             static_cast<int>(pidMode(in)));
  }
  linux.namespaces.push_back({"mount", ""});
  if (in.cgroup_v2 && !privileged) linux.namespaces.push_back({"cgroup", ""});
  return Status();
}

StatusOr<std::optional<oci::Seccomp>> chooseSeccomp(const v1::LinuxContainerSecurityContext& sc,
                                                    const std::vector<std::string>& bounding) {
  if (sc.privileged()) return std::optional<oci::Seccomp>();
  const std::string field = strCat(kSecurityContext, ".seccomp");
  if (sc.has_seccomp()) {
    switch (sc.seccomp().profile_type()) {
      case v1::SecurityProfile::RuntimeDefault:
        return std::optional<oci::Seccomp>(defaultSeccompProfile(bounding));
      case v1::SecurityProfile::Unconfined:
        return std::optional<oci::Seccomp>();
      case v1::SecurityProfile::Localhost: {
        ASSIGN_OR_RETURN(oci::Seccomp p, loadSeccompProfile(sc.seccomp().localhost_ref(),
                                                            field + ".localhost_ref"));
        return std::optional<oci::Seccomp>(std::move(p));
      }
      default:
        return invalidArgument(field, ".profile_type: unknown value ",
                               static_cast<int>(sc.seccomp().profile_type()),
                               "; use RuntimeDefault, Unconfined or Localhost");
    }
  }
  // The deprecated string form.
  const std::string& path = legacySeccompPath(sc);
  if (path.empty() || path == "unconfined") return std::optional<oci::Seccomp>();
  if (path == "runtime/default" || path == "docker/default") {
    return std::optional<oci::Seccomp>(defaultSeccompProfile(bounding));
  }
  if (path.rfind("localhost/", 0) == 0) {
    ASSIGN_OR_RETURN(oci::Seccomp p, loadSeccompProfile(path.substr(std::strlen("localhost")),
                                                        strCat(kSecurityContext,
                                                               ".seccomp_profile_path")));
    return std::optional<oci::Seccomp>(std::move(p));
  }
  return invalidArgument(kSecurityContext, ".seccomp_profile_path: \"", path,
                         "\" is not runtime/default, unconfined or localhost/<path>");
}

void logIgnoredSecurity(const ContainerSpecInput& in) {
  const auto& sc = in.config.linux().security_context();
  bool apparmor = (sc.has_apparmor() && sc.apparmor().profile_type() !=
                                            v1::SecurityProfile::Unconfined) ||
                  (!legacyApparmorProfile(sc).empty() && legacyApparmorProfile(sc) != "unconfined");
  if (apparmor) {
    logger().info("container {} ({}): AppArmor profile ignored: AppArmor is not supported "
                  "by berth", in.container_id, in.config.metadata().name());
  }
  const auto& se = sc.selinux_options();
  if (!se.user().empty() || !se.role().empty() || !se.type().empty() || !se.level().empty()) {
    logger().info("container {} ({}): SELinux options ignored: SELinux is not supported "
                  "by berth", in.container_id, in.config.metadata().name());
  }
}

}  // namespace

const std::vector<std::string>& allCapabilities() {
  static const std::vector<std::string> kAll = {
      "CAP_CHOWN",           "CAP_DAC_OVERRIDE",   "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
      "CAP_FSETID",          "CAP_KILL",           "CAP_SETGID",          "CAP_SETUID",
      "CAP_SETPCAP",         "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
      "CAP_NET_BROADCAST",   "CAP_NET_ADMIN",      "CAP_NET_RAW",         "CAP_IPC_LOCK",
      "CAP_IPC_OWNER",       "CAP_SYS_MODULE",     "CAP_SYS_RAWIO",       "CAP_SYS_CHROOT",
      "CAP_SYS_PTRACE",      "CAP_SYS_PACCT",      "CAP_SYS_ADMIN",       "CAP_SYS_BOOT",
      "CAP_SYS_NICE",        "CAP_SYS_RESOURCE",   "CAP_SYS_TIME",        "CAP_SYS_TTY_CONFIG",
      "CAP_MKNOD",           "CAP_LEASE",          "CAP_AUDIT_WRITE",     "CAP_AUDIT_CONTROL",
      "CAP_SETFCAP",         "CAP_MAC_OVERRIDE",   "CAP_MAC_ADMIN",       "CAP_SYSLOG",
      "CAP_WAKE_ALARM",      "CAP_BLOCK_SUSPEND",  "CAP_AUDIT_READ",      "CAP_PERFMON",
      "CAP_BPF",             "CAP_CHECKPOINT_RESTORE"};
  return kAll;
}

const std::vector<std::string>& defaultCapabilities() {
  static const std::vector<std::string> kDefault = {
      "CAP_CHOWN",  "CAP_DAC_OVERRIDE", "CAP_FSETID",  "CAP_FOWNER",
      "CAP_MKNOD",  "CAP_NET_RAW",      "CAP_SETGID",  "CAP_SETUID",
      "CAP_SETFCAP", "CAP_SETPCAP",     "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
      "CAP_KILL",   "CAP_AUDIT_WRITE"};
  return kDefault;
}

std::string containerCgroupsPath(const std::string& cgroup_parent, const std::string& id,
                                 bool systemd) {
  if (systemd) {
    std::string slice = cgroup_parent.empty() ? "system.slice" : cgroup_parent;
    // A path-style parent ("/kubepods.slice/kubepods-besteffort.slice/...") names its
    // last slice.
    if (auto slash = slice.rfind('/'); slash != std::string::npos) slice = slice.substr(slash + 1);
    return strCat(slice, ":berth:", id);
  }
  std::string parent = cgroup_parent.empty() ? "/berth" : cgroup_parent;
  if (parent.front() != '/') parent = "/" + parent;
  while (parent.size() > 1 && parent.back() == '/') parent.pop_back();
  return strCat(parent, "/", id);
}

StatusOr<int> containerStopSignal(const v1::ContainerConfig& config,
                                  const image::ContainerDefaults& image) {
  if (config.stop_signal() != v1::SIGNAL_RUNTIME_DEFAULT) {
    std::string name = v1::Signal_Name(config.stop_signal());
    if (name.rfind("SIGNAL_", 0) == 0) name = name.substr(7);
    auto sig = image::parseStopSignal(name);
    if (!sig.ok()) {
      return invalidArgument("ContainerConfig.stop_signal: ", std::string(sig.status().message()));
    }
    return *sig;
  }
  return image::parseStopSignal(image.stopSignal);
}

StatusOr<image::ResolvedUser> resolveContainerUser(const v1::ContainerConfig& config,
                                                   const image::ContainerDefaults& image,
                                                   const std::string& rootfs_dir,
                                                   std::string_view image_ref) {
  const auto& sc = config.linux().security_context();
  constexpr int64_t kMaxId = std::numeric_limits<uint32_t>::max() - 1;  // -1 is "no id"
  auto checkId = [&](int64_t id, const char* name) -> Status {
    if (id < 0 || id > kMaxId) {
      return invalidArgument(kSecurityContext, ".", name, ": ", id,
                             " is not a valid id (0..4294967294)");
    }
    return Status();
  };
  std::string user;
  if (sc.has_run_as_user()) {
    RETURN_IF_ERROR(checkId(sc.run_as_user().value(), "run_as_user.value"));
    user = std::to_string(sc.run_as_user().value());
  } else if (!sc.run_as_username().empty()) {
    if (sc.run_as_username().find(':') != std::string::npos) {
      return invalidArgument(kSecurityContext, ".run_as_username: \"", sc.run_as_username(),
                             "\" must be a user name without a group");
    }
    user = sc.run_as_username();
  }
  if (sc.has_run_as_group()) {
    if (user.empty()) {
      return invalidArgument(kSecurityContext,
                             ".run_as_group: set without run_as_user or run_as_username");
    }
    RETURN_IF_ERROR(checkId(sc.run_as_group().value(), "run_as_group.value"));
    user += ":" + std::to_string(sc.run_as_group().value());
  }
  if (user.empty()) user = image.user;
  ASSIGN_OR_RETURN(image::ResolvedUser resolved, image::resolveUser(rootfs_dir, user, image_ref));
  if (sc.supplemental_groups_policy() == v1::Strict) resolved.additionalGids = {resolved.gid};
  for (int i = 0; i < sc.supplemental_groups_size(); ++i) {
    int64_t g = sc.supplemental_groups(i);
    RETURN_IF_ERROR(checkId(g, strCat("supplemental_groups[", i, "]").c_str()));
    auto gid = static_cast<uint32_t>(g);
    if (std::find(resolved.additionalGids.begin(), resolved.additionalGids.end(), gid) ==
        resolved.additionalGids.end()) {
      resolved.additionalGids.push_back(gid);
    }
  }
  return resolved;
}

StatusOr<oci::Spec> buildContainerSpec(const ContainerSpecInput& in) {
  const v1::ContainerConfig& config = in.config;
  const auto& sc = config.linux().security_context();
  const auto& pod_sc = in.sandbox_config.linux().security_context();
  if (config.metadata().name().empty()) {
    return invalidArgument("ContainerConfig.metadata.name: required");
  }
  if (config.cdi_devices_size() > 0) {
    return unimplemented("ContainerConfig.CDI_devices: CDI devices are not supported by berth "
                         "yet");
  }
  const bool privileged = sc.privileged();
  if (privileged && !pod_sc.privileged()) {
    return invalidArgument(kSecurityContext, ".privileged: the pod sandbox is not privileged "
                           "(PodSandboxConfig.linux.security_context.privileged is false)");
  }

  ASSIGN_OR_RETURN(oci::Spec spec, oci::parseSpec(oci::defaultSpec(false).dump()));
  spec.hostname.clear();  // the pod's UTS namespace has it
  oci::Process& process = *spec.process;
  oci::Linux& linux = *spec.linux;
  process.rlimits.clear();
  process.terminal = config.tty();
  process.noNewPrivileges = sc.no_new_privs();

  // Command, environment, working directory, user.
  std::vector<std::string> command(config.command().begin(), config.command().end());
  std::vector<std::string> args(config.args().begin(), config.args().end());
  auto argv = image::mergeCommand(in.image.config, command, args, in.image_name);
  if (!argv.ok()) return withContext(argv.status(), "ContainerConfig.command/args");
  process.args = std::move(*argv);

  std::vector<std::pair<std::string, std::string>> cri_env;
  for (int i = 0; i < config.envs_size(); ++i) {
    const v1::KeyValue& kv = config.envs(i);
    if (kv.key().empty() || kv.key().find('=') != std::string::npos) {
      return invalidArgument("ContainerConfig.envs[", i, "].key: \"", kv.key(),
                             "\" is not a variable name (non-empty, no '=')");
    }
    cri_env.emplace_back(kv.key(), kv.value());
  }
  std::string hostname = in.hostname;
  if (hostname.empty()) hostname = in.sandbox_config.hostname();
  if (hostname.empty()) {
    char buf[256] = {};
    if (::gethostname(buf, sizeof(buf) - 1) == 0) hostname = buf;
  }
  std::vector<std::string> env = {kDefaultPath, "HOSTNAME=" + hostname};
  if (config.tty()) env.push_back("TERM=xterm");
  for (const std::string& e : image::mergeEnv(in.image.config.env, cri_env)) setEnv(env, e);
  process.env = std::move(env);

  process.cwd = image::mergeWorkingDir(config.working_dir(), in.image.config);
  if (process.cwd.empty() || process.cwd.front() != '/') {
    return invalidArgument(config.working_dir().empty() ? "image WorkingDir"
                                                        : "ContainerConfig.working_dir",
                           ": \"", process.cwd, "\" must be an absolute path");
  }
  process.user = oci::User{};
  process.user.uid = in.user.uid;
  process.user.gid = in.user.gid;
  process.user.additionalGids = in.user.additionalGids;

  // Capabilities, seccomp, ignored LSMs.
  ASSIGN_OR_RETURN(process.capabilities, buildCapabilities(sc));
  ASSIGN_OR_RETURN(linux.seccomp, chooseSeccomp(sc, *process.capabilities->bounding));
  logIgnoredSecurity(in);

  // Root.
  spec.root = oci::Root{in.rootfs.empty() ? "rootfs" : in.rootfs, sc.readonly_rootfs()};

  // Namespaces.
  RETURN_IF_ERROR(buildNamespaces(in, privileged, linux));

  // Mounts.
  MountPlan plan;
  addPodFileMounts(in, pod_sc.namespace_options().ipc() == v1::NODE, plan);
  RETURN_IF_ERROR(addCriMounts(in, plan));
  spec.mounts = mergeMounts(std::move(spec.mounts), std::move(plan.mounts));
  linux.rootfsPropagation = plan.rootfs_propagation;

  // Masked and read-only paths: the CRI lists when given, else the defaults.
  if (sc.masked_paths_size() > 0) {
    linux.maskedPaths.assign(sc.masked_paths().begin(), sc.masked_paths().end());
  }
  if (sc.readonly_paths_size() > 0) {
    linux.readonlyPaths.assign(sc.readonly_paths().begin(), sc.readonly_paths().end());
  }

  // Devices and resources.
  if (!linux.resources) linux.resources = oci::Resources{};
  RETURN_IF_ERROR(addCriDevices(config, linux));
  RETURN_IF_ERROR(applyResources(in, spec));

  if (privileged) {
    linux.maskedPaths.clear();
    linux.readonlyPaths.clear();
    makeWritable(spec.mounts, "/sys");
    makeWritable(spec.mounts, "/sys/fs/cgroup");
    std::vector<oci::Device> host;
    collectDevices(in.host_dev_dir, "/dev", true, host);
    for (oci::Device& d : host) {
      bool listed = std::any_of(linux.devices.begin(), linux.devices.end(),
                                [&](const oci::Device& x) { return x.path == d.path; });
      if (!listed) linux.devices.push_back(std::move(d));
    }
    oci::DeviceCgroup all;
    all.allow = true;
    all.access = "rwm";
    linux.resources->devices = {all};
  }

  // Pod-level sysctls and the cgroup.
  for (const auto& [key, value] : in.sandbox_config.linux().sysctls()) {
    if (key.empty()) return invalidArgument("PodSandboxConfig.linux.sysctls: empty name");
    linux.sysctl[key] = value;
  }
  linux.cgroupsPath = in.cgroups_path;

  spec.annotations[kAnnotationContainerType] = "container";
  spec.annotations[kAnnotationSandboxId] = in.sandbox_id;
  spec.annotations[kAnnotationSandboxName] = in.sandbox_config.metadata().name();
  spec.annotations[kAnnotationSandboxNamespace] = in.sandbox_config.metadata().namespace_();
  spec.annotations[kAnnotationSandboxUid] = in.sandbox_config.metadata().uid();
  spec.annotations[kAnnotationContainerName] = config.metadata().name();
  spec.annotations[kAnnotationImageName] = in.image_name;
  return spec;
}

}  // namespace berth::cri
