// defaultSpec (default_spec.h): the config.json of `berth-runtime spec`.
#include "runtime/oci/default_spec.h"

#include <unistd.h>

#include <string>
#include <vector>

#include "runtime/oci/config.h"

namespace berth::oci {
namespace {

using OrderedJson = nlohmann::ordered_json;

OrderedJson mount(const char* destination, const char* type, const char* source,
                  std::vector<std::string> options) {
  OrderedJson m = OrderedJson::object();
  m["destination"] = destination;
  m["type"] = type;
  m["source"] = source;
  if (!options.empty()) m["options"] = std::move(options);
  return m;
}

OrderedJson process() {
  const std::vector<std::string> caps = {"CAP_AUDIT_WRITE", "CAP_KILL",
                                         "CAP_NET_BIND_SERVICE"};
  OrderedJson p = OrderedJson::object();
  p["terminal"] = true;
  p["user"] = OrderedJson{{"uid", 0}, {"gid", 0}};
  p["args"] = std::vector<std::string>{"sh"};
  p["env"] = std::vector<std::string>{
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"};
  p["cwd"] = "/";
  OrderedJson capabilities = OrderedJson::object();
  capabilities["bounding"] = caps;
  capabilities["effective"] = caps;
  capabilities["permitted"] = caps;
  p["capabilities"] = std::move(capabilities);
  OrderedJson nofile = OrderedJson::object();
  nofile["type"] = "RLIMIT_NOFILE";
  nofile["hard"] = 1024;
  nofile["soft"] = 1024;
  p["rlimits"] = OrderedJson::array({nofile});
  p["noNewPrivileges"] = true;
  return p;
}

OrderedJson mounts(bool rootless) {
  OrderedJson list = OrderedJson::array();
  list.push_back(mount("/proc", "proc", "proc", {}));
  list.push_back(mount("/dev", "tmpfs", "tmpfs",
                       {"nosuid", "strictatime", "mode=755", "size=65536k"}));
  std::vector<std::string> devpts = {"nosuid", "noexec", "newinstance", "ptmxmode=0666",
                                     "mode=0620"};
  // gid 5 (tty) is not mapped in a rootless container's single-id user namespace.
  if (!rootless) devpts.push_back("gid=5");
  list.push_back(mount("/dev/pts", "devpts", "devpts", devpts));
  list.push_back(mount("/dev/shm", "tmpfs", "shm",
                       {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}));
  list.push_back(mount("/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}));
  if (rootless) {
    // A new sysfs needs a network namespace owned by the container's user namespace.
    list.push_back(mount("/sys", "none", "/sys", {"rbind", "nosuid", "noexec", "nodev", "ro"}));
  } else {
    list.push_back(mount("/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", "ro"}));
    list.push_back(mount("/sys/fs/cgroup", "cgroup", "cgroup",
                         {"nosuid", "noexec", "nodev", "relatime", "ro"}));
  }
  return list;
}

OrderedJson idMapping(unsigned host_id) {
  OrderedJson m = OrderedJson::object();
  m["containerID"] = 0;
  m["hostID"] = host_id;
  m["size"] = 1;
  return m;
}

OrderedJson linuxSection(bool rootless) {
  OrderedJson l = OrderedJson::object();
  if (rootless) {
    l["uidMappings"] = OrderedJson::array({idMapping(geteuid())});
    l["gidMappings"] = OrderedJson::array({idMapping(getegid())});
  } else {
    OrderedJson deny = OrderedJson::object();
    deny["allow"] = false;
    deny["access"] = "rwm";
    OrderedJson resources = OrderedJson::object();
    resources["devices"] = OrderedJson::array({deny});
    l["resources"] = std::move(resources);
  }
  OrderedJson namespaces = OrderedJson::array();
  const std::vector<const char*> types =
      rootless ? std::vector<const char*>{"pid", "ipc", "uts", "mount", "cgroup", "user"}
               : std::vector<const char*>{"pid", "network", "ipc", "uts", "mount", "cgroup"};
  for (const char* type : types) namespaces.push_back(OrderedJson{{"type", type}});
  l["namespaces"] = std::move(namespaces);
  l["maskedPaths"] = std::vector<std::string>{
      "/proc/acpi",        "/proc/asound",      "/proc/kcore",       "/proc/keys",
      "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
      "/sys/firmware",     "/proc/scsi",        "/sys/devices/virtual/powercap"};
  l["readonlyPaths"] = std::vector<std::string>{"/proc/bus", "/proc/fs", "/proc/irq",
                                                "/proc/sys", "/proc/sysrq-trigger"};
  return l;
}

}  // namespace

nlohmann::ordered_json defaultSpec(bool rootless) {
  OrderedJson spec = OrderedJson::object();
  spec["ociVersion"] = kOciVersion;
  spec["process"] = process();
  OrderedJson root = OrderedJson::object();
  root["path"] = "rootfs";
  root["readonly"] = true;
  spec["root"] = std::move(root);
  spec["hostname"] = "berth";
  spec["mounts"] = mounts(rootless);
  spec["linux"] = linuxSection(rootless);
  return spec;
}

}  // namespace berth::oci
