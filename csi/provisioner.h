// The built-in PVC provisioner of the hostPath CSI driver: watches StorageClasses,
// PersistentVolumeClaims and PersistentVolumes through the Kubernetes API
// (common/kube) and does what external-provisioner + the CSI controller would, but
// in-process against the HostPathBackend, so PVCs bind with no sidecars.
//
// Which claims (ProvisionDecision below, after external-provisioner's shouldProvision):
//   - Pending (or no phase yet), no spec.volumeName, not being deleted;
//   - the claim's annotation volume.kubernetes.io/storage-provisioner (or the beta
//     volume.beta.kubernetes.io/storage-provisioner) names hostpath.berth.dev — the PV
//     controller sets it in a cluster — or, when the claim has neither annotation
//     (no PV controller: standalone nodes, tests), its StorageClass's provisioner is
//     hostpath.berth.dev; an annotation naming another provisioner always wins;
//   - volumeBindingMode WaitForFirstConsumer: volume.kubernetes.io/selected-node must
//     be this node. Immediate (or unset): the driver serves one node, so this node
//     provisions — unless selected-node names another node, or the class's
//     allowedTopologies has terms for topology.hostpath.berth.dev/node and none lists
//     this node (terms on other keys cannot be checked without Node objects and are
//     taken as satisfied). In a multi-node cluster several nodes may then race for one
//     Immediate claim: the PV name is fixed, so one PV create wins, and a node whose
//     PV create found another node's PV deletes its own volume again.
//
// Provisioning one claim (every step idempotent, so a retry or a restart after a crash
// between steps converges to one volume and one PV):
//   1. volume "pvc-<claim uid>" (external-provisioner's name) via
//      HostPathBackend::createVolume (idempotent by name): capacity
//      spec.resources.requests.storage (limits.storage as the limit), volumeMode
//      Block -> block volume, else mount; content source from spec.dataSourceRef or
//      spec.dataSource:
//        - VolumeSnapshot (snapshot.storage.k8s.io): the snapshot's bound
//          VolumeSnapshotContent's status.snapshotHandle (spec.source.snapshotHandle
//          for pre-provisioned contents); the content must be ours and readyToUse,
//          else the claim is retried later;
//        - PersistentVolumeClaim (core): a clone of that claim's volume (same
//          namespace, bound to a PV of this driver);
//        - anything else (volume populators) is not supported: logged, not retried.
//   2. PV "pvc-<claim uid>": spec.csi {driver, volumeHandle = volume id, volumeAttributes
//      = the volume context CreateVolume returns ({berth.dev/capacity-enforced: mode})},
//      fsType empty; capacity = the volume's real capacity; accessModes, volumeMode
//      from the claim; storageClassName; persistentVolumeReclaimPolicy from the class
//      (default Delete); mountOptions from the class; claimRef {apiVersion v1, kind
//      PersistentVolumeClaim, namespace, name, uid, resourceVersion}; nodeAffinity
//      required term topology.hostpath.berth.dev/node In [<node>]; annotation
//      pv.kubernetes.io/provisioned-by: hostpath.berth.dev; finalizer
//      external-provisioner.volume.kubernetes.io/finalizer. AlreadyExists with our
//      volume handle is success. A PV is only created after its volume exists; a failed
//      create leaves the volume for the retry.
//   3. only with ProvisionerOptions::bind_claims: merge-patch the claim's
//      spec.volumeName (with metadata.uid as precondition). In a cluster the PV
//      controller binds (it matches the PV's claimRef); the patch is what it would do
//      and is harmless there, but it is off by default.
//
// Deleting (PVs with our provisioned-by annotation, our CSI driver and nodeAffinity on
// this node): reclaim policy Delete and either status.phase Released or the claimRef's
// claim gone (the cache says so and a live GET confirms NotFound or another uid):
// HostPathBackend::deleteVolume (FailedPrecondition while staged/published -> retried
// with backoff), then our finalizer is removed, then the PV is deleted. Retain: the
// volume and PV stay; if such a PV is being deleted, only our finalizer is removed (as
// external-provisioner does). The finalizer keeps a PV deleted by hand (policy Delete)
// until its volume is gone. A claim deleted after its volume was made but before its
// PV was: on the claim's delete event the volume "pvc-<uid>" is deleted when no PV of
// that name exists. Not covered: such a claim deleted while berthd was down (its
// volume stays; volumes without a PV are not swept at start, because a Retain PV
// deleted by an admin leaves exactly that state on purpose).
//
// Errors are logged with the claim or PV name and what to do; failed items are
// retried with per-item exponential backoff (backoff_base * 2^n, capped), reset on
// success; claims whose spec is invalid (bad quantity, unsupported data source) are
// not retried until they change (or the informer resync). Events (ProvisioningSucceeded,
// ProvisioningFailed, VolumeFailedDelete) are posted best effort with record_events.
//
// Threads: three informers deliver into a de-duplicating work queue (keys
// "claim/<ns>/<name>", "pv/<name>", "orphan/<uid>"); one worker thread processes one
// key at a time, so provisioning and deleting never interleave.
//
// Thread-safety: create/start/shutdown from one owner thread; hasSynced, waitForSync,
// stats from any thread. shutdown() stops the informers (their requests in flight are
// cancelled within milliseconds) and the worker (it finishes the backend or API call
// it is in; calls use a cancel token cancelled by shutdown()).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "common/kube/client.h"
#include "common/kube/informer.h"
#include "common/status.h"
#include "csi/hostpath_backend.h"
#include "csi/quantity.h"

namespace berth::csi {

class WorkQueue;

// Annotation and finalizer names (Kubernetes' and external-provisioner's).
inline constexpr std::string_view kAnnStorageProvisioner = "volume.kubernetes.io/storage-provisioner";
inline constexpr std::string_view kAnnBetaStorageProvisioner =
    "volume.beta.kubernetes.io/storage-provisioner";
inline constexpr std::string_view kAnnSelectedNode = "volume.kubernetes.io/selected-node";
inline constexpr std::string_view kAnnProvisionedBy = "pv.kubernetes.io/provisioned-by";
inline constexpr std::string_view kProvisionerFinalizer =
    "external-provisioner.volume.kubernetes.io/finalizer";

struct ProvisionerOptions {
  // Required: this node's name (the selected-node value and the topology value; the
  // backend's node_id).
  std::string node_name;
  // Set spec.volumeName of a claim after its PV is created (see the file comment).
  bool bind_claims = false;
  // Retry backoff per item: base * 2^failures, capped.
  std::chrono::milliseconds backoff_base{500};
  std::chrono::milliseconds backoff_cap{std::chrono::minutes(5)};
  // Informer resync: every object is looked at again this often (0 = never).
  std::chrono::milliseconds resync_period{std::chrono::minutes(5)};
  // Informer reconnect backoff (see InformerOptions).
  std::chrono::milliseconds informer_backoff_base{800};
  // Post Events on claims and PVs (best effort).
  bool record_events = true;
};

// Counters, for tests and metrics.
struct ProvisionerStats {
  int64_t provisioned = 0;       // PVs created (or found already ours)
  int64_t deleted = 0;           // volumes + PVs deleted on release
  int64_t orphans_deleted = 0;   // volumes of claims deleted before their PV existed
  int64_t failures = 0;          // failed attempts (each retried)
};

// Why a claim is or is not for this node's provisioner.
struct ProvisionDecision {
  bool provision = false;
  std::string reason;  // e.g. "selected-node is node-b, not node-a"
};

// The claim filter of the file comment. `storage_class` is the claim's class object
// (null when not known).
ProvisionDecision decideClaim(const kube::Json& claim, const kube::Json* storage_class,
                              const std::string& node_name);

class Provisioner {
 public:
  // `client` and `backend` must outlive the provisioner. Errors: InvalidArgument for
  // an empty node_name or one that differs from the backend's node_id.
  static StatusOr<std::unique_ptr<Provisioner>> create(kube::ApiClient* client,
                                                       HostPathBackend* backend,
                                                       ProvisionerOptions options);
  // shutdown()s.
  ~Provisioner();
  Provisioner(const Provisioner&) = delete;
  Provisioner& operator=(const Provisioner&) = delete;

  // Starts the informers and the worker. Call once.
  void start();
  // Stops informers and worker and joins them. Idempotent.
  void shutdown();

  // True once all three informers listed.
  bool hasSynced() const;
  bool waitForSync(std::chrono::milliseconds timeout) const;

  ProvisionerStats stats() const;

 private:
  Provisioner(kube::ApiClient* client, HostPathBackend* backend, ProvisionerOptions options);

  void workerLoop();
  // Processes one key. OK: done (no retry); error: retried with backoff. A permanent
  // problem is logged and answered OK.
  Status process(const std::string& key);
  Status syncClaim(const std::string& ns, const std::string& name);
  Status syncVolume(const std::string& name);
  Status syncOrphan(const std::string& uid);

  // The CreateVolume parameters for a claim (capacity, access type, source).
  StatusOr<CreateVolumeParams> volumeParams(const kube::Json& claim);
  StatusOr<std::string> snapshotHandle(const std::string& ns, const std::string& name);
  StatusOr<std::string> cloneSourceHandle(const std::string& ns, const std::string& name);
  kube::Json buildVolume(const kube::Json& claim, const kube::Json& storage_class,
                         const VolumeRecord& volume) const;
  Status bindClaim(const kube::Json& claim, const std::string& pv_name);
  // True when the PV's claimRef claim no longer exists (cache, then a live GET).
  StatusOr<bool> claimGone(const kube::Json& pv);
  Status removeFinalizer(const kube::Json& pv);
  void recordEvent(const kube::Json& object, const std::string& type, const std::string& reason,
                   const std::string& message);

  void enqueueClaimsOfClass(const std::string& class_name);
  void enqueueVolumesOfClaim(const std::string& claim_uid);

  kube::ApiClient* client_;
  HostPathBackend* backend_;
  ProvisionerOptions options_;
  std::unique_ptr<WorkQueue> queue_;
  std::unique_ptr<kube::Informer> classes_;
  std::unique_ptr<kube::Informer> claims_;
  std::unique_ptr<kube::Informer> volumes_;
  kube::CancelToken cancel_;  // cancelled by shutdown(): API calls of the worker
  std::thread worker_;
  bool started_ = false;
  bool stopped_ = false;

  std::atomic<int64_t> provisioned_{0};
  std::atomic<int64_t> deleted_{0};
  std::atomic<int64_t> orphans_deleted_{0};
  std::atomic<int64_t> failures_{0};
};

}  // namespace berth::csi
