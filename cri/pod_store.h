// berthd's pod sandbox and container records in the daemon's SQLite database
// (component "pods"; DESIGN.md "State and crash safety"). The records are what
// ListPodSandbox / PodSandboxStatus / ListContainers / ContainerStatus serve and what a
// restarted berthd adopts its shims from.
//
// State machines (CRI runtime.v1 PodSandboxState and ContainerState):
//
//   pod sandbox:   (RunPodSandbox) --> READY --(StopPodSandbox)--> NOTREADY --(Remove)--> gone
//                                        \----(shim or netns lost)----^
//
//   container:     (CreateContainer) --> CREATED --(Start)--> RUNNING --(exit)--> EXITED
//                        |                                                     |
//                        \------------------(RemoveContainer)-----------------/--> gone
//                  UNKNOWN: the shim that owns it cannot be reached after a restart.
//
// Names: CRI metadata is unique per pod/container incarnation. A pod is registered
// under "<name>_<namespace>_<uid>_<attempt>" and a container under
// "<name>_<pod name>_<pod namespace>_<pod uid>_<attempt>" (the names containerd's CRI
// plugin reserves); a second create with the same name fails with AlreadyExists naming
// the holder, as kubelet expects.
//
// IDs are 64 lowercase hex digits; lookups accept an unambiguous prefix (crictl style).
//
// Thread-safety: a PodStore is thread-safe; each write is one transaction.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/sqlite.h"
#include "common/status.h"
#include "cri/proto/api.pb.h"

namespace berth::cri {

struct PodRecord {
  std::string id;
  runtime::v1::PodSandboxConfig config;  // as received (metadata, labels, annotations...)
  runtime::v1::PodSandboxState state = runtime::v1::SANDBOX_READY;
  int64_t created_at = 0;                // ns since the epoch
  std::string runtime_handler;
  std::string netns_path;                // "" for host network
  std::vector<std::string> ips;          // primary first
  std::string shim_dir;                  // the pod's shim state dir (socket, pid, exits)
  std::string cgroup_parent;
};

struct ContainerRecord {
  std::string id;
  std::string pod_id;
  runtime::v1::ContainerConfig config;   // as received
  runtime::v1::ContainerState state = runtime::v1::CONTAINER_CREATED;
  int64_t created_at = 0;                // ns
  int64_t started_at = 0;                // ns, 0 until started
  int64_t finished_at = 0;               // ns, 0 until exited
  int32_t exit_code = 0;
  std::string reason;                    // Completed, Error, OOMKilled, ...
  std::string message;
  std::string image_ref;                 // image ID the container runs
  std::string log_path;                  // absolute: pod log_directory + config.log_path
  std::string bundle;                    // OCI bundle dir
  std::string snapshot_key;              // the writable snapshot (usually the ID)
};

// Filters for listPods/listContainers (empty fields match everything).
struct PodFilter {
  std::string id_prefix;
  std::optional<runtime::v1::PodSandboxState> state;
  std::vector<std::pair<std::string, std::string>> labels;  // all must match
};
struct ContainerFilter {
  std::string id_prefix;
  std::string pod_id_prefix;
  std::optional<runtime::v1::ContainerState> state;
  std::vector<std::pair<std::string, std::string>> labels;
};

class PodStore {
 public:
  // Opens the store on `db` (migrating; `db` must outlive the store).
  static StatusOr<std::unique_ptr<PodStore>> open(Database* db);
  ~PodStore();

  // The unique names CRI reserves (see the header comment).
  static std::string podName(const runtime::v1::PodSandboxMetadata& m);
  static std::string containerName(const runtime::v1::ContainerMetadata& m,
                                   const runtime::v1::PodSandboxMetadata& pod);

  // Inserts a new pod. Errors: InvalidArgument (id, missing metadata), AlreadyExists
  // naming the pod that holds the name or id.
  Status addPod(const PodRecord& pod);
  // Replaces the mutable fields (state, ips, netns_path, shim_dir, cgroup_parent).
  // Errors: NotFound.
  Status updatePod(const PodRecord& pod);
  // By full ID or unique prefix. Errors: NotFound; FailedPrecondition if ambiguous.
  StatusOr<PodRecord> getPod(const std::string& id_or_prefix) const;
  StatusOr<std::vector<PodRecord>> listPods(const PodFilter& filter = {}) const;
  // Removes the pod and its containers' records. Idempotent.
  Status removePod(const std::string& id);

  // Inserts a container of an existing pod. Errors: InvalidArgument, NotFound (pod),
  // AlreadyExists naming the holder of the name.
  Status addContainer(const ContainerRecord& container);
  // Replaces the mutable fields (state, timestamps, exit code, reason, message).
  Status updateContainer(const ContainerRecord& container);
  // Replaces the stored ContainerConfig (UpdateContainerResources keeps the new
  // resources there). Errors: NotFound.
  Status updateContainerConfig(const ContainerRecord& container);
  StatusOr<ContainerRecord> getContainer(const std::string& id_or_prefix) const;
  StatusOr<std::vector<ContainerRecord>> listContainers(const ContainerFilter& filter = {}) const;
  // Idempotent.
  Status removeContainer(const std::string& id);

  class Impl;

 private:
  explicit PodStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A new random ID: 64 lowercase hex digits (from getrandom(2)).
std::string newId();

}  // namespace berth::cri
