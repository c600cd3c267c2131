// The node half of the hostPath driver: staging, publishing and their reverse, volume
// statistics and node-side expansion (CSI spec "Node Service RPC").
//
//   NodeStageVolume    mount volume: the volume directory is bind-mounted on the
//                      staging path; block volume: the sparse file is attached to a
//                      loop device (shared by every read-write publication).
//   NodePublishVolume  mount volume: the staging path is bind-mounted on target_path
//                      (a directory the driver creates), remounted with MS_RDONLY and
//                      the mount_flags; block volume: the loop device node is
//                      bind-mounted on target_path (a file the driver creates); a
//                      readonly publication gets its own read-only loop device, since
//                      a read-only mount does not stop writes through a device node.
//   Unpublish/Unstage  undo the above, remove the target the driver created, and
//                      detach loop devices nobody uses any more.
//
// Publishing requires a prior NodeStageVolume at staging_target_path (the driver
// advertises STAGE_UNSTAGE_VOLUME; spec: FAILED_PRECONDITION otherwise). Publishing
// at a second target is refused with FAILED_PRECONDITION for the single-writer modes
// SINGLE_NODE_WRITER, SINGLE_NODE_READER_ONLY and SINGLE_NODE_SINGLE_WRITER (the
// spec's NodePublishVolume table); the same target with other options is
// ALREADY_EXISTS; the same target with the same options is OK (idempotent).
//
// Thread-safety: thread-safe. Node operations on one volume are exclusive (a second
// concurrent one gets ABORTED); all of them hold the backend's usage mutex while they
// change mounts and records, so DeleteVolume never races a publication.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/syscalls.h"
#include "csi/hostpath_backend.h"

namespace berth::csi {

// csi.v1 VolumeCapability.AccessMode.Mode values used by the node rules.
enum AccessModeValue : int {
  kModeUnknown = 0,
  kSingleNodeWriter = 1,
  kSingleNodeReaderOnly = 2,
  kMultiNodeReaderOnly = 3,
  kMultiNodeSingleWriter = 4,
  kMultiNodeMultiWriter = 5,
  kSingleNodeSingleWriter = 6,
  kSingleNodeMultiWriter = 7,
};

struct StageRequest {
  std::string volume_id;
  std::string staging_path;
  AccessType access_type = AccessType::kMount;
  int access_mode = kSingleNodeWriter;
};

struct PublishRequest {
  std::string volume_id;
  std::string target_path;
  std::string staging_path;
  bool readonly = false;
  AccessType access_type = AccessType::kMount;
  int access_mode = kSingleNodeWriter;
  std::vector<std::string> mount_flags;
};

struct VolumeStats {
  int64_t bytes_total = 0;
  int64_t bytes_used = 0;
  int64_t bytes_available = 0;
  bool has_inodes = false;  // block volumes report bytes only
  int64_t inodes_total = 0;
  int64_t inodes_used = 0;
  int64_t inodes_free = 0;
  Condition condition;
};

class NodePublisher {
 public:
  // `backend` must outlive the publisher; mounts go through `sys`.
  NodePublisher(HostPathBackend* backend, Syscalls& sys) : backend_(backend), sys_(sys) {}

  // Errors: NotFound (volume), FailedPrecondition (capability of the other access
  // type), AlreadyExists (staged there with another access mode), Aborted.
  Status stage(const StageRequest& request);
  // OK when not staged there. Errors: NotFound (volume), FailedPrecondition (a block
  // volume still published from there), Aborted.
  Status unstage(const std::string& volume_id, const std::string& staging_path);
  // See the file comment. Errors also: InvalidArgument for a bad mount flag.
  Status publish(const PublishRequest& request);
  // OK when not published there (the target, if present, is unmounted and removed).
  Status unpublish(const std::string& volume_id, const std::string& target_path);

  // Bytes (and, for mount volumes, inodes) of the volume published or staged at
  // `volume_path`. Used bytes come from the project quota, else from a walk of the
  // volume's tree (st_blocks; hard links once; mount points not crossed). Errors:
  // NotFound when the volume does not exist or is not at `volume_path`.
  StatusOr<VolumeStats> stats(const std::string& volume_id, const std::string& volume_path);

  // Makes the node see the volume's current capacity (block: LOOP_SET_CAPACITY on
  // its loop devices; mount: nothing to do) and returns it. Errors: NotFound.
  StatusOr<int64_t> expand(const std::string& volume_id, const std::string& volume_path);

  // Forgets publications and stagings whose mounts (or loop devices) are gone, e.g.
  // after a reboot. Run at server start.
  Status recover();

 private:
  StatusOr<VolumeRecord> readyVolume(const std::string& volume_id);
  Status releaseLoopIfUnused(const VolumeRecord& volume, const std::string& device);

  HostPathBackend* backend_;
  Syscalls& sys_;
};

}  // namespace berth::csi
