// berthd's pod sandbox and container lifecycle (CRI runtime.v1 RuntimeService, the
// pod and container rpcs): the work behind the gRPC handlers, with absl::Status errors
// so it is testable without gRPC.
//
// Every pod has one berth-shim (runtime/shim) that pins its namespaces and owns its
// containers; the records live in PodStore (SQLite). Layout under options.state_dir:
//
//   shims/<pod-id>/        the shim's state (socket, pid, exit records, logs)
//   ns/<pod-id>/           pinned net/ipc/uts[/pid] namespaces
//   pods/<pod-id>/         hostname, hosts, resolv.conf, shm (a tmpfs)
//   containers/<id>/       OCI bundle: config.json and rootfs (the snapshot, mounted)
//
// RunPodSandbox and CreateContainer register an undo for every step and roll back on
// failure, so a failed call leaves no process, mount, netns, IP or record behind. A
// pod record is NOTREADY until its setup finished, so a crash half-way leaves a record
// that StopPodSandbox/RemovePodSandbox (or recover()) clean up.
//
// Exits: a monitor thread subscribes to every pod's shim and updates the records when
// a container exits; ContainerStatus also asks the shim directly, so a missed event
// never shows a dead container as running. recover() (at startup) adopts the shims of
// every recorded pod, reconciles the records with what the shims (or their exit
// records, when a shim is gone) report, and removes leftovers of calls interrupted by
// a crash.
//
// Thread-safety: all methods are thread-safe. Calls on one pod (and on one container)
// are serialised; calls on different pods run concurrently.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cni/runtime.h"
#include "cri/container_stats.h"
#include "common/status.h"
#include "cri/pod_store.h"
#include "cri/proto/api.pb.h"
#include "runtime/image/image_service.h"
#include "runtime/shim/client.h"

namespace berth::cri {

struct PodManagerOptions {
  std::string state_dir = "/run/berth";     // see the layout above
  std::string shim_binary;                  // berth-shim
  std::string runtime;                      // berth-runtime (the OCI runtime)
  std::string runtime_root;                 // its --root; "" -> <state_dir>/runtime
  std::string shim_log_level = "info";
  bool systemd_cgroup = false;              // linux.cgroupsPath in systemd form
  // The cgroup parent of pods that have none (cgroupfs: "/berth"; systemd: "system.slice").
  std::string default_cgroup_parent;
  // Size of each pod's /dev/shm tmpfs in bytes (kubelet/containerd default 64 MiB).
  int64_t shm_size_bytes = 64 << 20;
  // Where the node's hosts and resolv.conf are read from (tests substitute files).
  std::string host_hosts = "/etc/hosts";
  std::string host_resolv_conf = "/etc/resolv.conf";
};

// A GetContainerEvents subscriber: events are queued until taken (bounded; the
// oldest are dropped when a reader falls behind by more than 1024 events).
class ContainerEventQueue {
 public:
  // Waits up to `timeout` for the next event. nullopt on timeout or after close().
  std::optional<runtime::v1::ContainerEventResponse> next(std::chrono::milliseconds timeout);
  void push(runtime::v1::ContainerEventResponse event);
  void close();
  bool closed();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<runtime::v1::ContainerEventResponse> events_;
  bool closed_ = false;
};

class PodManager {
 public:
  // `store`, `images` and `network` must outlive the manager; `network` may be null
  // (berthd without its cni component: only host-network pods, others get
  // FailedPrecondition). Starts the exit
  // monitor thread. Errors: InvalidArgument for missing binaries or state dir; the
  // mkdir error of the layout dirs.
  static StatusOr<std::unique_ptr<PodManager>> create(PodManagerOptions options,
                                                      PodStore* store,
                                                      image::ImageService* images,
                                                      cni::PodNetwork* network);
  ~PodManager();

  // Adopts the shims of recorded pods and reconciles records (see the file comment).
  // Problems with single pods are logged and recorded on the pod, never fatal.
  Status recover();

  // --- pod sandboxes (api.proto RunPodSandbox ... ListPodSandbox) ---
  // Returns the new pod's ID. Errors: InvalidArgument (metadata missing, unknown
  // runtime handler, bad sysctl, ...), AlreadyExists (name in use), the failing step's
  // error (shim start, namespaces, CNI ADD, pod files) after a full rollback.
  StatusOr<std::string> runPodSandbox(const runtime::v1::PodSandboxConfig& config,
                                      const std::string& runtime_handler);
  // Stops every container (SIGKILL), tears the network down, unpins the namespaces.
  // Idempotent. Errors: NotFound (unknown pod), the first cleanup failure (the call
  // can be retried).
  Status stopPodSandbox(const std::string& pod_id);
  // Stops (as above) and removes the pod, its containers, their snapshots and bundles,
  // and its shim. Idempotent: an unknown pod is OK.
  Status removePodSandbox(const std::string& pod_id);
  // Errors: NotFound.
  StatusOr<runtime::v1::PodSandboxStatusResponse> podSandboxStatus(const std::string& pod_id,
                                                                   bool verbose);
  StatusOr<std::vector<runtime::v1::PodSandbox>> listPodSandbox(
      const runtime::v1::PodSandboxFilter& filter);

  // --- containers ---
  // Returns the new container's ID. Errors: NotFound (pod, image not pulled),
  // FailedPrecondition (pod not ready), InvalidArgument (config), AlreadyExists (name),
  // the failing step's error after a full rollback.
  StatusOr<std::string> createContainer(const std::string& pod_id,
                                        const runtime::v1::ContainerConfig& config,
                                        const runtime::v1::PodSandboxConfig& sandbox_config);
  // Errors: NotFound, FailedPrecondition (not CREATED), the runtime's start error.
  Status startContainer(const std::string& id);
  // Stop signal (the container's or the image's, else SIGTERM), `timeout_s` seconds,
  // then SIGKILL. Idempotent for containers not running. Errors: NotFound.
  Status stopContainer(const std::string& id, int64_t timeout_s);
  // Kills a running container. Idempotent (unknown ID is OK).
  Status removeContainer(const std::string& id);
  StatusOr<runtime::v1::ContainerStatusResponse> containerStatus(const std::string& id,
                                                                 bool verbose);
  StatusOr<std::vector<runtime::v1::Container>> listContainers(
      const runtime::v1::ContainerFilter& filter);
  // Runs `cmd` in a running container. Errors: NotFound, FailedPrecondition (not
  // running), DeadlineExceeded after `timeout_s` (0 = none).
  StatusOr<runtime::v1::ExecSyncResponse> execSync(const std::string& id,
                                                   const std::vector<std::string>& cmd,
                                                   int64_t timeout_s);
  // Applies new cgroup limits to a created or running container and records them.
  // Errors: NotFound, FailedPrecondition (exited), InvalidArgument (values), the
  // cgroup write that failed.
  Status updateContainerResources(const std::string& id,
                                  const runtime::v1::LinuxContainerResources& resources);
  // Errors: NotFound, FailedPrecondition (not running).
  Status reopenContainerLog(const std::string& id);

  // --- stats (pod_stats.cc) ---
  // CPU (cumulative ns and the rate since the previous call for the same container),
  // memory (usage, working set, anon, faults, available under a limit), writable layer
  // (bytes, inodes of the container's snapshot). Counters the host's cgroup2 hierarchy
  // lacks are left unset. Errors: NotFound.
  StatusOr<runtime::v1::ContainerStats> containerStats(const std::string& id);
  StatusOr<std::vector<runtime::v1::ContainerStats>> listContainerStats(
      const runtime::v1::ContainerStatsFilter& filter);
  // The pod's containers' stats, their sums, its process count and the network usage of
  // its interfaces (except lo; eth0 is the default interface). Errors: NotFound.
  StatusOr<runtime::v1::PodSandboxStats> podSandboxStats(const std::string& pod_id);
  StatusOr<std::vector<runtime::v1::PodSandboxStats>> listPodSandboxStats(
      const runtime::v1::PodSandboxStatsFilter& filter);

  // Container events for GetContainerEvents: a queue that receives every event from
  // now on until unsubscribe().
  std::shared_ptr<ContainerEventQueue> subscribeEvents();
  void unsubscribeEvents(const std::shared_ptr<ContainerEventQueue>& queue);
  // Closes every event queue (their GetContainerEvents streams end at once); for a
  // daemon shutting down.
  void closeEventStreams();

  // For stats: the records, the cgroup path of a container, its writable layer usage.
  StatusOr<PodRecord> pod(const std::string& id) const { return store_->getPod(id); }
  StatusOr<ContainerRecord> container(const std::string& id) const {
    return store_->getContainer(id);
  }
  std::string containerCgroupsPath(const PodRecord& pod, const std::string& container_id) const;
  image::Snapshotter& snapshotter() { return images_->snapshotter(); }
  // The CRI ContainerStatus of a record (no verbose info).
  runtime::v1::ContainerStatus containerStatusFromRecord(const ContainerRecord& c) const;
  // The pid of a container's init, 0 when not running.
  int containerPid(const ContainerRecord& container) const;
  const PodManagerOptions& options() const { return options_; }

 private:
  PodManager(PodManagerOptions options, PodStore* store, image::ImageService* images,
             cni::PodNetwork* network);

  std::shared_ptr<std::mutex> podLock(const std::string& pod_id);
  std::shared_ptr<std::mutex> containerLock(const std::string& id);

  // Paths of the layout.
  std::string shimDir(const std::string& pod_id) const;
  std::string nsDir(const std::string& pod_id) const;
  std::string podDir(const std::string& pod_id) const;
  std::string bundleDir(const std::string& container_id) const;

  shim::ShimClient shimClient(const PodRecord& pod) const;
  cni::AttachmentSpec attachment(const PodRecord& pod) const;

  // Stops the pod's containers and releases its network and namespaces (pod locked).
  Status stopPodLocked(PodRecord& pod);
  // Kills and deletes one container's runtime state, unmounts and removes its rootfs
  // snapshot and bundle, and its record.
  Status removeContainerLocked(const PodRecord& pod, const ContainerRecord& c);
  // Applies a shim state to a record (state, times, exit code, reason) and saves it.
  void applyState(ContainerRecord& c, const shim::ContainerState& s);
  // Marks a container whose shim is gone: its exit record if the shim wrote one, else
  // EXITED with exit code 255 and reason "Unknown" (container locked).
  void reconcileWithoutShim(const PodRecord& pod, ContainerRecord& c);
  // `berth-runtime delete --force <id>` (when the shim that would do it is gone).
  Status runtimeDelete(const std::string& id) const;
  // A container record refreshed from its shim.
  StatusOr<ContainerRecord> freshContainer(const std::string& id);

  void emit(runtime::v1::ContainerEventType type, const ContainerRecord& c);

  // One container's stats; `usage` (optional) receives its cgroup counters, so a pod's
  // totals need no second read of the same files.
  runtime::v1::ContainerStats containerStatsFor(const PodRecord& pod, const ContainerRecord& c,
                                                std::optional<CgroupUsage>* usage);

  // Facts about the host that every CreateContainer needs, read once at create().
  struct HostFacts {
    bool cgroup_v2 = false;                  // unified hierarchy at /sys/fs/cgroup
    bool swap_available = false;             // memory limits can also cap swap
    std::optional<int> min_oom_score_adj;    // berthd's own when it may not go lower
  };
  static HostFacts readHostFacts();
  HostFacts host_;

  // usage_nano_cores for `key` from the previous sample (nullopt on the first).
  std::optional<uint64_t> nanoCores(const std::string& key,
                                    const std::optional<CgroupUsage>& usage, int64_t now);
  CpuRateTracker cpu_rates_;  // thread-safe

  // The exit monitor.
  void watchPod(const PodRecord& pod);
  void unwatchPod(const std::string& pod_id);
  void monitorLoop();
  void onShimEvent(const std::string& pod_id, const shim::ShimEvent& event);
  void onShimGone(const std::string& pod_id);

  PodManagerOptions options_;
  PodStore* store_;
  image::ImageService* images_;
  cni::PodNetwork* network_;

  std::mutex locks_mu_;
  std::map<std::string, std::weak_ptr<std::mutex>> pod_locks_;        // guarded by locks_mu_
  std::map<std::string, std::weak_ptr<std::mutex>> container_locks_;  // guarded by locks_mu_

  std::mutex events_mu_;
  std::vector<std::shared_ptr<ContainerEventQueue>> event_queues_;  // guarded by events_mu_
  bool events_closed_ = false;                                       // guarded by events_mu_

  std::mutex watch_mu_;
  std::map<std::string, shim::Subscription> watched_;  // guarded by watch_mu_
  int wake_fd_ = -1;                                   // eventfd: the watch set changed
  bool stopping_ = false;                              // guarded by watch_mu_
  std::thread monitor_;
};

}  // namespace berth::cri
