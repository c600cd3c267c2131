// featuresJson (features.h): the runtime-spec features document.
#include "runtime/features.h"

#include "runtime/linux/capabilities.h"
#include "runtime/linux/seccomp.h"
#include "runtime/oci/config.h"

namespace berth::runtime {
namespace {

using OrderedJson = nlohmann::ordered_json;

OrderedJson enabled(bool value) {
  OrderedJson j = OrderedJson::object();
  j["enabled"] = value;
  return j;
}

OrderedJson linuxFeatures() {
  OrderedJson linux = OrderedJson::object();
  linux["namespaces"] = std::vector<std::string>{"cgroup", "ipc",  "mount", "network",
                                                 "pid",    "user", "uts"};
  linux["capabilities"] = caps::knownCapabilities();

  OrderedJson cgroup = OrderedJson::object();
  cgroup["v1"] = false;
  cgroup["v2"] = true;
  cgroup["systemd"] = false;
  cgroup["systemdUser"] = false;
  cgroup["rdma"] = false;
  linux["cgroup"] = std::move(cgroup);

  OrderedJson seccomp = OrderedJson::object();
  seccomp["enabled"] = true;
  seccomp["actions"] = seccomp::knownActions();
  seccomp["operators"] = seccomp::knownOperators();
  seccomp["archs"] = seccomp::knownArchitectures();
  seccomp["knownFlags"] = seccomp::knownFlags();
  seccomp["supportedFlags"] = seccomp::supportedFlags();
  linux["seccomp"] = std::move(seccomp);

  linux["apparmor"] = enabled(false);
  linux["selinux"] = enabled(false);
  linux["intelRdt"] = enabled(false);
  OrderedJson mount_extensions = OrderedJson::object();
  mount_extensions["idmap"] = enabled(false);
  linux["mountExtensions"] = std::move(mount_extensions);
  return linux;
}

}  // namespace

const std::vector<std::string>& knownMountOptions() {
  static const std::vector<std::string> kOptions = {
      "async",       "atime",     "bind",          "defaults",     "dev",
      "diratime",    "dirsync",   "exec",          "iversion",     "lazytime",
      "loud",        "mand",      "noatime",       "nodev",        "nodiratime",
      "noexec",      "noiversion", "nolazytime",   "nomand",       "norelatime",
      "nostrictatime", "nosuid",  "nosymfollow",   "private",      "ratime",
      "rbind",       "rdev",      "rdiratime",     "relatime",     "remount",
      "rexec",       "rnoatime",  "rnodev",        "rnodiratime",  "rnoexec",
      "rnorelatime", "rnostrictatime", "rnosuid",  "rnosymfollow", "ro",
      "rprivate",    "rrelatime", "rro",           "rrw",          "rshared",
      "rslave",      "rstrictatime", "rsuid",      "rsymfollow",   "runbindable",
      "rw",          "shared",    "silent",        "slave",        "strictatime",
      "suid",        "symfollow", "sync",          "tmpcopyup",    "unbindable"};
  return kOptions;
}

nlohmann::ordered_json featuresJson() {
  OrderedJson j = OrderedJson::object();
  j["ociVersionMin"] = "1.0.0";
  j["ociVersionMax"] = oci::kOciVersion;
  j["hooks"] = std::vector<std::string>{"prestart",       "createRuntime", "createContainer",
                                        "startContainer", "poststart",     "poststop"};
  j["mountOptions"] = knownMountOptions();
  j["linux"] = linuxFeatures();
  OrderedJson annotations = OrderedJson::object();
  annotations["io.github.berth.runtime.version"] = kRuntimeVersion;
  j["annotations"] = std::move(annotations);
  return j;
}

}  // namespace berth::runtime
