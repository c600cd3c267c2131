// The CSI driver's metadata in SQLite (common/sqlite.h): volumes, snapshots, node
// publications and stagings. Tables are prefixed "csi_" and migrated as component
// "csi", so they can live in berthd's shared database next to the pod and image
// tables. Every change that touches more than one row is one transaction.
//
// Record life cycle (volumes and snapshots alike), which the backend's crash recovery
// relies on:
//
//     insert ──> kCreating ──(data on disk)──> kReady ──> kDeleting ──> (row gone)
//                    │                                        │
//                    └── crash: recovery removes data + row ──┘ crash: recovery
//                                                               finishes the delete
//
// Thread-safety: all methods are thread-safe (the Database serialises statements;
// multi-statement changes run inside a Transaction).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/sqlite.h"
#include "common/status.h"

namespace berth::csi {

enum class AccessType { kMount = 0, kBlock = 1 };
enum class RecordState { kCreating = 0, kReady = 1, kDeleting = 2 };

// "mount" / "block".
const char* accessTypeName(AccessType type);

struct VolumeRecord {
  std::string id;     // opaque, unique; what CSI calls volume_id
  std::string name;   // the CO's CreateVolume name (unique)
  int64_t capacity_bytes = 0;
  AccessType access_type = AccessType::kMount;
  std::string path;   // the directory (mount) or sparse file (block) on disk
  // Content source: "" (empty volume), "snapshot" or "volume", and that object's id.
  std::string source_kind;
  std::string source_id;
  std::string capacity_mode;  // "quota" or "accounted" (driver_info.h)
  uint32_t project_id = 0;    // project quota id; 0 when accounted
  RecordState state = RecordState::kCreating;
  int64_t created_unix_ns = 0;
};

struct SnapshotRecord {
  std::string id;
  std::string name;
  std::string source_volume_id;
  int64_t size_bytes = 0;  // the source volume's capacity at snapshot time
  AccessType access_type = AccessType::kMount;  // of the source volume
  std::string path;        // the tar archive
  bool ready = false;
  RecordState state = RecordState::kCreating;
  int64_t created_unix_ns = 0;
};

// One NodePublishVolume: the volume bind-mounted at target_path.
struct PublicationRecord {
  std::string volume_id;
  std::string target_path;
  bool readonly = false;
  std::string staging_path;  // "" when published without staging
  int access_mode = 0;       // csi.v1 VolumeCapability.AccessMode.Mode value
  std::string mount_flags;   // comma-joined, as requested
  std::string loop_device;   // block volumes: the /dev/loopN bound at the target
};

// One NodeStageVolume.
struct StagingRecord {
  std::string volume_id;
  std::string staging_path;
  int access_mode = 0;
  std::string loop_device;  // block volumes: the loop device attached for it
};

class VolumeStore {
 public:
  // Migrates the csi_* tables in `db` (which must outlive the store). Errors: the
  // migration's SQL error, or FailedPrecondition for a database made by a newer berth.
  static StatusOr<std::unique_ptr<VolumeStore>> open(Database* db);

  // --- volumes
  // Inserts `record` (normally in kCreating). Errors: AlreadyExists when the id or the
  // name is taken.
  Status insertVolume(const VolumeRecord& record);
  // Sets state (and, when given, the capacity). Errors: NotFound.
  Status setVolumeState(const std::string& id, RecordState state);
  Status setVolumeCapacity(const std::string& id, int64_t capacity_bytes);
  // Deletes the volume row with its publications and stagings (one transaction). OK
  // when it is already gone.
  Status deleteVolume(const std::string& id);
  // nullopt when there is no such volume.
  StatusOr<std::optional<VolumeRecord>> getVolume(const std::string& id);
  StatusOr<std::optional<VolumeRecord>> getVolumeByName(const std::string& name);
  // Every volume in creation order (rowid), in any state.
  StatusOr<std::vector<VolumeRecord>> listVolumes();
  // Sum of capacity_bytes over every volume row in any state (reserved space).
  StatusOr<int64_t> reservedBytes();

  // --- snapshots
  Status insertSnapshot(const SnapshotRecord& record);
  // Marks the snapshot kReady + ready_to_use with its final size. Errors: NotFound.
  Status markSnapshotReady(const std::string& id, int64_t size_bytes);
  Status setSnapshotState(const std::string& id, RecordState state);
  Status deleteSnapshot(const std::string& id);
  StatusOr<std::optional<SnapshotRecord>> getSnapshot(const std::string& id);
  StatusOr<std::optional<SnapshotRecord>> getSnapshotByName(const std::string& name);
  StatusOr<std::vector<SnapshotRecord>> listSnapshots();

  // --- node side
  // Inserts or replaces the publication of (volume_id, target_path).
  Status putPublication(const PublicationRecord& record);
  Status deletePublication(const std::string& volume_id, const std::string& target_path);
  StatusOr<std::vector<PublicationRecord>> publications(const std::string& volume_id);
  StatusOr<std::vector<PublicationRecord>> allPublications();
  Status putStaging(const StagingRecord& record);
  Status deleteStaging(const std::string& volume_id, const std::string& staging_path);
  StatusOr<std::vector<StagingRecord>> stagings(const std::string& volume_id);

  Database& db() { return *db_; }

 private:
  explicit VolumeStore(Database* db) : db_(db) {}
  Database* db_;
};

}  // namespace berth::csi
