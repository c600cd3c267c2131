// The hostPath storage backend behind the CSI controller: volumes, snapshots,
// capacity and crash recovery on one node's filesystem.
//
// Layout under the base directory (BackendOptions::base_dir):
//   volumes/<id>        a mount volume: a directory (mode 0777, like a hostPath volume)
//   volumes/<id>.img    a block volume: a sparse file of exactly the capacity
//   snapshots/<id>.tar  a snapshot: pax archive of the volume (tree_archive.h)
//
// Capacity: with project quotas (project_quota.h) each mount volume is its own project
// whose hard limit is the capacity ("quota" mode); otherwise ("accounted") each
// volume's capacity is reserved from a pool — BackendOptions::capacity_bytes, or the
// filesystem's size — and CreateVolume/expansion fail with RESOURCE_EXHAUSTED when the
// pool has too little left; writes past a capacity are then not stopped. The mode is
// reported in every volume's context ("berth.dev/capacity-enforced").
//
// Crash safety (the record life cycle is drawn in volume_store.h). Steps of
// CreateVolume: (1) record in "creating", (2) directory/file made and filled from the
// source, (3) quota set, (4) record "ready". DeleteVolume: (1) record "deleting",
// (2) data removed, (3) record gone. recover(), run by create() before anything is
// served, assumes nothing else writes under the base directory and:
//   - "creating" volumes/snapshots: removes their data and record (rolled back);
//   - "deleting" ones: removes the data and the record (finished);
//   - "ready" ones: re-applies the capacity (block file size, quota limit) — an
//     expansion interrupted after its record update finishes here; a ready volume whose
//     data is gone is kept and reported abnormal by condition();
//   - entries of volumes/ and snapshots/ that no record names (incl. *.tmp archives)
//     are removed, so no step order leaves an orphan.
//
// Thread-safety: thread-safe. Operations on one volume/snapshot name or id are
// exclusive (a concurrent second call gets ABORTED, see in_flight.h); capacity checks
// and reservations are atomic under one mutex.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/status.h"
#include "csi/in_flight.h"
#include "csi/volume_store.h"

namespace berth::csi {

struct BackendOptions {
  std::string base_dir;   // required, absolute; created if missing (0750)
  std::string node_id;    // required; the topology value of every volume
  int64_t capacity_bytes = 0;      // accounted pool size; 0 = the filesystem's size
  int64_t max_volume_bytes = 0;    // largest volume; 0 = no limit below the pool
  // When capacity_range is unset and there is no content source (a restore or clone
  // then gets its source's size).
  int64_t default_volume_bytes = int64_t{1} << 30;
  bool use_quota = true;  // false: never probe quotas, always account
};

struct CreateVolumeParams {
  std::string name;
  int64_t required_bytes = 0;  // 0 = unspecified
  int64_t limit_bytes = 0;     // 0 = unspecified
  AccessType access_type = AccessType::kMount;
  std::string source_kind;     // "", "snapshot" or "volume"
  std::string source_id;
};

struct CapacityInfo {
  int64_t available_bytes = 0;   // what a new volume can still get
  int64_t max_volume_bytes = 0;  // largest volume CreateVolume would accept now
  int64_t pool_bytes = 0;        // the accounted pool or the filesystem size
};

struct Condition {
  bool abnormal = false;
  std::string message;
};

struct RecoveryReport {
  int volumes_rolled_back = 0;
  int deletes_finished = 0;
  int snapshots_rolled_back = 0;
  int orphans_removed = 0;
  int missing_data = 0;  // ready volumes whose data is gone (kept, reported abnormal)
};

class HostPathBackend {
 public:
  // Opens the backend over `store` (which must outlive it): makes the directories,
  // probes project quotas, then runs recover(). Errors: InvalidArgument for missing
  // options; the failing mkdir/statfs; recovery errors.
  static StatusOr<std::unique_ptr<HostPathBackend>> create(BackendOptions options,
                                                           VolumeStore* store);

  // Creates a volume, idempotently by name: an existing ready volume with the same
  // name, access type and source whose capacity fits the range is returned as is.
  // Errors: AlreadyExists (same name, incompatible), OutOfRange (range not allowed:
  // required > limit, above max_volume_bytes, or below the source's size),
  // ResourceExhausted (pool too small), NotFound (source missing), InvalidArgument
  // (source of the other access type), Aborted (same name in flight).
  StatusOr<VolumeRecord> createVolume(const CreateVolumeParams& params);

  // Deletes a volume and frees its space. OK when it does not exist. Errors:
  // FailedPrecondition while it is staged or published; Aborted when in flight.
  Status deleteVolume(const std::string& id);

  // Grows a volume to at least `required_bytes` (never shrinks; a smaller request
  // returns the current size). Block volumes grow their file and every loop device
  // bound to it (online). Errors: NotFound, OutOfRange (above limit or max volume
  // size), ResourceExhausted, Aborted.
  StatusOr<VolumeRecord> expandVolume(const std::string& id, int64_t required_bytes,
                                      int64_t limit_bytes);

  // Snapshots a ready volume into an archive, idempotently by name. Errors: NotFound
  // (source), AlreadyExists (name taken by another source), Aborted.
  StatusOr<SnapshotRecord> createSnapshot(const std::string& name,
                                          const std::string& source_volume_id);
  // Deletes a snapshot. OK when it does not exist.
  Status deleteSnapshot(const std::string& id);

  StatusOr<CapacityInfo> capacity();
  // "quota" or "accounted" for new mount volumes.
  const std::string& capacityMode() const { return mode_; }
  // Why quotas are or are not used (for the log).
  const std::string& quotaReason() const { return quota_reason_; }

  // Health of a volume's data: abnormal when its directory/file is missing or of the
  // wrong kind.
  Condition condition(const VolumeRecord& volume) const;

  // See the file comment. Run by create(); callable again while idle.
  StatusOr<RecoveryReport> recover();
  const RecoveryReport& lastRecovery() const { return last_recovery_; }

  // The node-side code (node_publisher.h) holds this while it reads a volume's state
  // and records a staging/publication, and deleteVolume() holds it while it checks
  // that a volume is unused and marks it deleting, so a volume being deleted cannot
  // gain a publication.
  std::mutex& usageMutex() { return usage_mu_; }

  InFlight& inFlight() { return in_flight_; }
  VolumeStore& store() { return *store_; }
  const BackendOptions& options() const { return options_; }
  std::string volumesDir() const;
  std::string snapshotsDir() const;

 private:
  HostPathBackend(BackendOptions options, VolumeStore* store)
      : options_(std::move(options)), store_(store) {}

  // Capacity the request gets, or OutOfRange. `source_bytes` is the source's size.
  StatusOr<int64_t> chooseCapacity(const CreateVolumeParams& p, int64_t source_bytes) const;
  // Pool size and what is still free of it; caller holds alloc_mu_.
  StatusOr<CapacityInfo> capacityLocked();
  // Makes the volume's data (steps 2 and 3 of CreateVolume).
  Status materialize(const VolumeRecord& v, const std::string& source_path);
  // Sets the capacity on disk: block file size (+ loop devices), quota limit.
  Status applyCapacity(const VolumeRecord& v);
  // Removes a volume's data and quota (used by delete, rollback and recovery).
  Status removeData(const VolumeRecord& v);
  StatusOr<uint32_t> nextProjectId();

  BackendOptions options_;
  VolumeStore* store_;
  std::string mode_ = "accounted";
  std::string quota_reason_;
  bool quota_ = false;
  InFlight in_flight_;
  std::mutex alloc_mu_;  // capacity check + reservation (record insert / capacity update)
  std::mutex usage_mu_;  // see usageMutex()
  RecoveryReport last_recovery_;
};

// A random 32-hex-digit id (volume and snapshot ids).
std::string newObjectId();

// Nanoseconds since the Unix epoch.
int64_t nowUnixNs();

}  // namespace berth::csi
