// berthd's CNI runtime (CNI spec 1.1, SPEC.md "Section 3: Execution of Network
// Configurations"): it loads the lexically first network configuration of the conf dir,
// runs that list's plugins from the bin dirs and keeps each attachment's result in a
// libcni-style cache (cni/cache.h).
//
//   setUp     ADD every plugin in order, each getting the previous one's result as
//             prevResult; if one fails, DEL the plugins run so far (the failing one
//             included, newest first) and return its error. Sets the pod's `lo` up.
//   tearDown  DEL every plugin in reverse order with the cached result as prevResult,
//             using the configuration the attachment was set up with. Idempotent:
//             no cache, a vanished netns (CNI_NETNS then left out) and code 3 "unknown
//             container" answers are all fine. The cache is removed once every DEL
//             succeeded (a failed DEL keeps it, so a retry has the same input).
//   check     CHECK every plugin in order (cniVersion >= 0.4.0, unless disableCheck).
//   status    STATUS every plugin (cniVersion >= 1.1.0); for older lists, ready when
//             the configuration loads and its plugins exist. Feeds CRI NetworkReady.
//   gc        DEL cached attachments not in the valid set, then GC every plugin with
//             "cni.dev/valid-attachments" (cniVersion >= 1.1.0, unless disableGC).
//
// The configuration is reloaded when the conf dir's candidate files change (names,
// sizes, mtimes are compared on every call).
//
// Thread-safety: CniRuntime is thread-safe; calls for different attachments may run
// concurrently. Calls for the same attachment must be serialised by the caller (CRI
// does so per pod).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cni/conflist.h"
#include "cni/plugin_exec.h"
#include "cni/result.h"
#include "common/status.h"

namespace berth::cni {

// CONVENTIONS.md "portMappings".
struct PortMapping {
  int host_port = 0;
  int container_port = 0;
  std::string protocol = "tcp";  // tcp, udp or sctp (lowercase on the wire)
  std::string host_ip;           // empty: all addresses
};

// CONVENTIONS.md "bandwidth": rates in bits per second, bursts in bits. Zero fields
// are left out.
struct Bandwidth {
  uint64_t ingress_rate = 0;
  uint64_t ingress_burst = 0;
  uint64_t egress_rate = 0;
  uint64_t egress_burst = 0;
};

// One pod attachment: a container (the pod sandbox) and its interface.
struct AttachmentSpec {
  std::string container_id;
  std::string netns_path;  // e.g. /run/berth/ns/<pod>/net; may be gone on tearDown
  std::string ifname = "eth0";
  // CNI_ARGS pairs (K8S_POD_NAMESPACE, K8S_POD_NAME, K8S_POD_INFRA_CONTAINER_ID,
  // K8S_POD_UID, ...). "IgnoreUnknown=1" is put first when not given.
  std::vector<std::pair<std::string, std::string>> args;
  // Capability args, passed in runtimeConfig to the plugins declaring them.
  std::vector<PortMapping> port_mappings;
  std::optional<Bandwidth> bandwidth;
  std::vector<std::string> ips;    // "ips": requested addresses ("10.1.0.9/24" or bare)
  CapabilityArgs extra_capabilities;  // any other capability ("mac", "dns", ...)
};

// An attachment that is still wanted, for gc().
struct AttachmentKey {
  std::string container_id;
  std::string ifname = "eth0";
};

// What CRI reports as the NetworkReady condition.
struct NetworkStatus {
  bool ready = false;
  std::string reason;   // "NetworkPluginNotReady" when not ready
  std::string message;  // e.g. "no network config found in /etc/cni/net.d"
};

struct CniOptions {
  std::string conf_dir = "/etc/cni/net.d";
  std::vector<std::string> bin_dirs = {"/opt/cni/bin"};
  // Result cache; berthd puts it under its --root so two daemons never share one.
  std::string cache_dir = "/var/lib/cni";
  std::chrono::milliseconds plugin_timeout{60000};
  // Set `lo` up inside the pod's netns before ADD (berthd always does; unit tests with
  // a plain file standing in for the netns turn it off).
  bool set_loopback_up = true;
};

// The interface CRI uses; tests of CRI substitute a fake.
class PodNetwork {
 public:
  virtual ~PodNetwork() = default;
  virtual StatusOr<Result> setUp(const AttachmentSpec& spec) = 0;
  virtual Status tearDown(const AttachmentSpec& spec) = 0;
  virtual Status check(const AttachmentSpec& spec) = 0;
  virtual NetworkStatus status() = 0;
  virtual Status gc(const std::vector<AttachmentKey>& valid) = 0;
};

class CniRuntime final : public PodNetwork {
 public:
  // Never fails for a missing or invalid configuration (status() reports it);
  // InvalidArgument for empty conf_dir/bin_dirs/cache_dir.
  static StatusOr<std::unique_ptr<CniRuntime>> create(CniOptions options);

  // ADD (see the file comment). Returns the last plugin's result in the list's
  // version; Result::sandboxIps(spec.ifname) gives the pod IPs. Errors:
  // InvalidArgument for a bad spec (empty container id, netns path missing, bad
  // CNI_ARGS), FailedPrecondition when no network config is loaded, NotFound for a
  // missing plugin binary, the failing plugin's error (cni/plugin_exec.h) with
  // context `set up network "<name>" for container <id>`.
  StatusOr<Result> setUp(const AttachmentSpec& spec) override;

  // DEL (see the file comment). OK when nothing was ever set up. Errors: the first
  // plugin failure other than "unknown container", after every plugin had its DEL.
  Status tearDown(const AttachmentSpec& spec) override;

  // CHECK. Errors: NotFound when the attachment has no cached result, FailedPrecondition
  // when no network config is loaded, the failing plugin's error.
  Status check(const AttachmentSpec& spec) override;

  // NetworkReady for CRI Status.
  NetworkStatus status() override;

  // GC (see the file comment). Errors: the first DEL or GC failure.
  Status gc(const std::vector<AttachmentKey>& valid) override;

  // The configuration in use (reloaded if the conf dir changed), or the load error.
  StatusOr<NetworkConfList> config();

  const CniOptions& options() const { return options_; }

 private:
  explicit CniRuntime(CniOptions options) : options_(std::move(options)) {}

  // Plugins of `list` resolved to binaries. Errors: findPlugin's.
  StatusOr<std::vector<std::string>> resolvePlugins(const NetworkConfList& list) const;

  // DEL of plugins [0, count) of `list`, newest first. Continues past failures and
  // returns the first one; "unknown container" (code 3) counts as success.
  Status delPlugins(const NetworkConfList& list, size_t count, const PluginEnv& env,
                    const CapabilityArgs& caps, const json::Json& prev_result) const;

  CniOptions options_;
  std::mutex mu_;
  std::string fingerprint_;                       // guarded by mu_
  std::optional<StatusOr<NetworkConfList>> conf_;  // guarded by mu_
};

// Builds CNI_ARGS ("IgnoreUnknown=1;K8S_POD_NAME=web;..."). Errors: InvalidArgument
// for an empty key or a key/value containing ';' or '=' (key) / ';' (value).
StatusOr<std::string> buildCniArgs(const std::vector<std::pair<std::string, std::string>>& args);

// The capability args of `spec` as runtimeConfig values (CONVENTIONS.md): only the
// non-empty ones appear.
CapabilityArgs capabilityArgs(const AttachmentSpec& spec);

}  // namespace berth::cni
