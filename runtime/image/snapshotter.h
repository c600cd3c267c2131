// Overlay snapshots: each image layer is unpacked once, into the snapshot named by its
// chain ID (OCI image-spec config.md "Layer ChainID": ChainID(L0) = DiffID(L0),
// ChainID(L0|...|Ln) = sha256(ChainID(L0|...|Ln-1) + " " + DiffID(Ln))), and a
// container's root filesystem is an overlay mount (Documentation/filesystems/
// overlayfs.rst) of its image's snapshots as lower layers plus the container's own
// upper and work directories.
//
// On-disk layout under the snapshotter root (e.g. /var/lib/berth/snapshots):
//   <id>/fs        committed: the unpacked layer (read-only by convention);
//                  active: the overlay upper directory
//   <id>/work      active only: the overlay work directory
//   tmp-<rand>/    a layer being unpacked; never referenced by the database
// <id> is a small integer from the database, which keeps overlay mount options short.
// Metadata lives in the table `snapshots` of the daemon's SQLite database (component
// "snapshots"): id, kind (committed|active|view), chain_id (committed), key (active
// and view: the container ID or caller's key), parent (the committed snapshot below
// it), created, size and inode usage.
//
// Crash safety: a layer is unpacked into tmp-<rand>, fsynced, renamed to <id> and only
// then recorded (one transaction), so a recorded snapshot is always complete; open()
// removes tmp-* directories and <id> directories without a row.
//
// Long chains: the lowerdir option of a deep image (overlayfs allows 500 lower layers)
// would overflow mount(2)'s one-page option limit with absolute paths. mount() then
// uses the new mount API with one "lowerdir+" per layer when the kernel has it (6.8+),
// else mounts from a helper thread that has unshare(CLONE_FS)'d and chdir'd to the
// root, so each layer costs only "<id>/fs:".
//
// Thread-safety: a Snapshotter is thread-safe; concurrent prepareLayer() calls for the
// same chain ID unpack it once (the others wait and share the result). Several
// processes may share one root and database (rows are the source of truth, changed in
// IMMEDIATE transactions; a directory lock serialises unpacks of one chain ID).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/sqlite.h"
#include "common/status.h"

namespace berth::image {

// The chain ID of `diff_id` on top of `parent_chain_id` ("" for a base layer).
// Both are "sha256:<hex>"; the result is too.
std::string chainId(const std::string& parent_chain_id, const std::string& diff_id);

// The chain IDs of a layer stack given its diff IDs (base first); same length.
std::vector<std::string> chainIds(const std::vector<std::string>& diff_ids);

enum class SnapshotKind { kCommitted, kActive, kView };

struct SnapshotInfo {
  int64_t id = 0;
  SnapshotKind kind = SnapshotKind::kCommitted;
  std::string chain_id;         // committed only
  std::string key;              // active/view only
  std::string parent_chain_id;  // the committed snapshot below; "" for none
  std::string path;             // <root>/<id>/fs
  std::chrono::system_clock::time_point created;
  int64_t size_bytes = 0;  // allocated bytes under <id> (st_blocks * 512, hard links once)
  int64_t inodes = 0;      // inodes under <id>
};

// One mount(2) to perform, as containerd and the OCI runtime-spec "mounts" describe it.
struct MountSpec {
  std::string type;     // "overlay" or "bind"
  std::string source;   // "overlay" or a directory
  std::vector<std::string> options;  // "lowerdir=...", "upperdir=...", "workdir=...", "ro", "rbind"
};

struct SnapshotUsage {
  int64_t bytes = 0;   // allocated bytes
  int64_t inodes = 0;
};

class Snapshotter {
 public:
  // Opens the snapshotter rooted at `root` (created 0700 when missing) with its
  // metadata in `db` (migrated; `db` must outlive the snapshotter), and recovers:
  // removes tmp-* directories and <id> directories that have no row.
  // Errors: directory or database errors with the path.
  static StatusOr<std::unique_ptr<Snapshotter>> open(const std::string& root, Database* db);
  ~Snapshotter();

  // Returns the committed snapshot `chain_id`, creating it when missing: `fill` is
  // called with an empty directory to populate (the layer unpack) and must leave in
  // it exactly the layer's files; then the snapshot is committed on top of
  // `parent_chain_id`, which must already be committed ("" for a base layer).
  // `display` ("image docker.io/library/busybox:1.36 layer sha256:...") prefixes errors.
  // Errors: FailedPrecondition when the parent is not committed; `fill`'s error (the
  // directory is removed, nothing recorded); I/O and database errors.
  StatusOr<SnapshotInfo> prepareLayer(
      const std::string& chain_id, const std::string& parent_chain_id,
      const std::string& display,
      const std::function<Status(const std::string& dir)>& fill);

  // The committed snapshot `chain_id`. Errors: NotFound.
  StatusOr<SnapshotInfo> committed(const std::string& chain_id) const;

  // Creates the active (writable) snapshot `key` on top of the committed snapshot
  // `parent_chain_id` ("" for an empty root filesystem) and returns the mounts that
  // make its root filesystem. Errors: AlreadyExists for a key in use, NotFound for an
  // unknown parent, I/O errors (nothing left behind).
  StatusOr<std::vector<MountSpec>> prepareActive(const std::string& key,
                                                 const std::string& parent_chain_id);
  // Like prepareActive but read-only (no upper dir): a view of an image's files, e.g.
  // to resolve a user name through its /etc/passwd.
  StatusOr<std::vector<MountSpec>> prepareView(const std::string& key,
                                               const std::string& parent_chain_id);

  // The mounts of an existing active or view snapshot. Errors: NotFound.
  StatusOr<std::vector<MountSpec>> mounts(const std::string& key) const;

  // Mounts snapshot `key`'s root filesystem on `target` (an existing directory), in
  // the caller's mount namespace, handling long layer chains as described above.
  // Errors: the mount errno with the target and the snapshot key.
  Status mount(const std::string& key, const std::string& target) const;

  // Removes an active or view snapshot (its directory and row). The caller unmounts
  // first. Idempotent: an unknown key is OK.
  Status removeActive(const std::string& key);

  // Every snapshot, committed ones first in id order.
  StatusOr<std::vector<SnapshotInfo>> list() const;

  // Usage of one snapshot by key or chain ID, recomputed (walks its directory; for an
  // active snapshot this is the container's writable layer). Errors: NotFound.
  StatusOr<SnapshotUsage> usage(const std::string& key_or_chain_id) const;

  // Usage of the whole root (CRI ImageFsInfo): bytes and inodes of every snapshot.
  StatusOr<SnapshotUsage> totalUsage() const;

  // Removes every committed snapshot that is not in `keep_chain_ids`, not below one
  // that is, and not below an active or view snapshot. Returns the chain IDs removed.
  StatusOr<std::vector<std::string>> garbageCollect(const std::set<std::string>& keep_chain_ids);

  const std::string& root() const;

  class Impl;

 private:
  explicit Snapshotter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace berth::image
