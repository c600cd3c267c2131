// Overlay snapshotter: metadata in the `snapshots` table, directories under the root.
//
// Invariants (what recovery in open() relies on):
//   - Every row has its directory <root>/<id>. A directory <id> is only ever created
//     (renamed from tmp-<rand>, or mkdir'd for active/view snapshots) inside the
//     IMMEDIATE transaction that inserts its row, before COMMIT, and the root is
//     fsynced before COMMIT. So under the database write lock, an <id> directory
//     without a row is an orphan (a crash before COMMIT, or a removal whose row
//     deletion committed but whose rm -rf did not finish), never work in progress.
//   - Removal deletes the row first (in a transaction) and then the directory; a crash
//     in between leaves an orphan directory for the next open().
//   - tmp-<rand> directories hold unpacks in progress. open() removes them only when
//     it gets <root>/.lock exclusively (flock), i.e. no other process has this root
//     open (each open snapshotter holds a shared flock on it for its lifetime).
//   - Cross-process unpack serialisation: an OFD byte-range write lock on <root>/.lock
//     at an offset derived from the chain ID (one byte per chain ID; a hash collision
//     only serialises two unrelated unpacks). Within a process, a map of in-flight
//     chain IDs makes concurrent callers wait for the one unpack and share its result.
//   - AUTOINCREMENT ids are never reused after a committed deletion.
//
// Database access: the Database is one SQLite connection, so every use (reads too)
// holds db_mu_; a read during another thread's open transaction would see its
// uncommitted rows.
//
// Mounting (Snapshotter::mount): the overlay option string is passed to mount(2) when
// it fits in a page (with a margin); else the new mount API with one "lowerdir+" per
// layer (Linux 6.8+); if the kernel rejects "lowerdir+" with EINVAL, a helper thread
// unshare(CLONE_FS)s, fchdir()s to the root and mounts with relative "<id>/fs" paths.
// Setting the environment variable BERTH_SNAPSHOTTER_NO_LOWERDIR_PLUS=1 skips the new
// mount API (tests use it to exercise the fallback on new kernels).
//
// Usage: allocated bytes (st_blocks * 512) and inodes under <root>/<id>, hard-linked
// inodes counted once, not crossing into other filesystems. Committed snapshots store
// theirs at commit time (they never change); totalUsage() sums the stored values of
// committed snapshots and walks active and view snapshots.
#include "runtime/image/snapshotter.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <map>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>

#include "common/fs.h"
#include "common/log.h"
#include "common/scope_guard.h"
#include "common/sha256.h"
#include "common/unique_fd.h"
#include "runtime/image/snapshotter_mount.h"

namespace berth::image {

using snapshotter_internal::dirUsage;

std::string chainId(const std::string& parent_chain_id, const std::string& diff_id) {
  if (parent_chain_id.empty()) return diff_id;
  return sha256Digest(strCat(parent_chain_id, " ", diff_id));
}

std::vector<std::string> chainIds(const std::vector<std::string>& diff_ids) {
  std::vector<std::string> out;
  out.reserve(diff_ids.size());
  std::string parent;
  for (const auto& diff_id : diff_ids) {
    parent = chainId(parent, diff_id);
    out.push_back(parent);
  }
  return out;
}

namespace {

constexpr const char* kLockFile = ".lock";
constexpr const char* kTmpPrefix = "tmp-";

const std::vector<std::string> kSchema = {
    "CREATE TABLE snapshots ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " kind TEXT NOT NULL CHECK (kind IN ('committed', 'active', 'view')),"
    " chain_id TEXT UNIQUE,"
    " key TEXT UNIQUE,"
    " parent_id INTEGER REFERENCES snapshots(id),"
    " created_ns INTEGER NOT NULL,"
    " size_bytes INTEGER NOT NULL DEFAULT 0,"
    " inodes INTEGER NOT NULL DEFAULT 0,"
    " CHECK ((kind = 'committed') = (chain_id IS NOT NULL)),"
    " CHECK ((kind = 'committed') = (key IS NULL)));"
    "CREATE INDEX snapshots_parent ON snapshots(parent_id);"};

constexpr const char* kSelectInfo =
    "SELECT s.id, s.kind, s.chain_id, s.key, s.created_ns, s.size_bytes, s.inodes,"
    " p.chain_id FROM snapshots s LEFT JOIN snapshots p ON p.id = s.parent_id";

const char* kindName(SnapshotKind kind) {
  switch (kind) {
    case SnapshotKind::kCommitted:
      return "committed";
    case SnapshotKind::kActive:
      return "active";
    case SnapshotKind::kView:
      return "view";
  }
  return "committed";
}

SnapshotKind parseKind(const std::string& text) {
  if (text == "active") return SnapshotKind::kActive;
  if (text == "view") return SnapshotKind::kView;
  return SnapshotKind::kCommitted;
}

int64_t nowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool isIdName(const std::string& name) {
  return !name.empty() && name.size() < 19 &&
         std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// A row of the snapshots table as kSelectInfo reads it.
SnapshotInfo readInfo(const Statement& stmt, const std::string& root) {
  SnapshotInfo info;
  info.id = stmt.columnInt(0);
  info.kind = parseKind(stmt.columnText(1));
  info.chain_id = stmt.columnText(2);
  info.key = stmt.columnText(3);
  info.created = std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::nanoseconds(stmt.columnInt(4))));
  info.size_bytes = stmt.columnInt(5);
  info.inodes = stmt.columnInt(6);
  info.parent_chain_id = stmt.columnText(7);
  info.path = fs::join(fs::join(root, std::to_string(info.id)), "fs");
  return info;
}

// Holds an OFD write lock on one byte of the lock file until destroyed.
class ByteLock {
 public:
  ByteLock() = default;
  ByteLock(const ByteLock&) = delete;
  ByteLock& operator=(const ByteLock&) = delete;
  ~ByteLock() {
    if (fd_ < 0) return;
    struct flock fl = {};
    fl.l_type = F_UNLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = offset_;
    fl.l_len = 1;
    (void)::fcntl(fd_, F_OFD_SETLK, &fl);
  }

  Status lock(int fd, off_t offset, const std::string& display) {
    struct flock fl = {};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = offset;
    fl.l_len = 1;
    while (::fcntl(fd, F_OFD_SETLKW, &fl) != 0) {
      if (errno != EINTR) return lastErrnoError(strCat("lock \"", display, "\""));
    }
    fd_ = fd;
    offset_ = offset;
    return absl::OkStatus();
  }

 private:
  int fd_ = -1;
  off_t offset_ = 0;
};

// The lock-file offset of a chain ID: 60 bits of its digest (offset 0 stays free).
off_t lockOffset(const std::string& chain_id) {
  std::string hex = sha256Hex(chain_id).substr(0, 15);
  return static_cast<off_t>(std::stoull(hex, nullptr, 16)) + 1;
}

// One in-flight prepareLayer for a chain ID: the leader unpacks, others wait.
struct Inflight {
  std::string parent_chain_id;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  StatusOr<SnapshotInfo> result = absl::UnknownError("unpack in progress");
};

// What mount() and mounts() need: the snapshot and its lower layers, top-most first.
struct MountPlan {
  std::string key;
  int64_t id = 0;
  SnapshotKind kind = SnapshotKind::kActive;
  std::vector<int64_t> lowers;
};

}  // namespace

class Snapshotter::Impl {
 public:
  Impl(std::string root, UniqueFd root_fd, UniqueFd lock_fd, Database* db)
      : root_(std::move(root)), root_fd_(std::move(root_fd)), lock_fd_(std::move(lock_fd)),
        db_(db) {}

  Status recover(bool exclusive);

  StatusOr<SnapshotInfo> prepareLayer(const std::string& chain_id,
                                      const std::string& parent_chain_id,
                                      const std::string& display,
                                      const std::function<Status(const std::string&)>& fill);
  StatusOr<SnapshotInfo> unpackAndCommit(const std::string& chain_id,
                                         const std::string& parent_chain_id,
                                         const std::string& ctx,
                                         const std::function<Status(const std::string&)>& fill);
  StatusOr<std::optional<SnapshotInfo>> findLocked(const std::string& where,
                                                   const std::string& value) const;
  StatusOr<std::optional<SnapshotInfo>> find(const std::string& where,
                                             const std::string& value) const {
    std::lock_guard<std::mutex> lock(db_mu_);
    return findLocked(where, value);
  }
  StatusOr<std::vector<MountSpec>> prepareSnapshot(const std::string& key,
                                                   const std::string& parent_chain_id,
                                                   SnapshotKind kind);
  StatusOr<MountPlan> plan(const std::string& key) const;
  std::vector<MountSpec> specs(const MountPlan& plan) const;
  snapshotter_internal::OverlayLayers layers(const MountPlan& plan) const {
    return {root_, root_fd_.get(), plan.lowers,
            plan.kind == SnapshotKind::kActive ? plan.id : 0};
  }
  Status removeActive(const std::string& key);
  StatusOr<std::vector<SnapshotInfo>> list() const;
  StatusOr<SnapshotUsage> usage(const std::string& key_or_chain_id) const;
  StatusOr<SnapshotUsage> totalUsage() const;
  StatusOr<std::vector<std::string>> garbageCollect(const std::set<std::string>& keep);

  std::string idDir(int64_t id) const { return fs::join(root_, std::to_string(id)); }
  std::string fsDir(int64_t id) const { return fs::join(idDir(id), "fs"); }
  // Replaces a stale <id> directory (an orphan from another process's crash) before
  // its id is handed out again. Called inside the write transaction.
  Status clearStaleIdDir(int64_t id) const;

  const std::string root_;
  const UniqueFd root_fd_;
  const UniqueFd lock_fd_;
  Database* const db_;
  mutable std::mutex db_mu_;
  std::mutex inflight_mu_;
  std::map<std::string, std::shared_ptr<Inflight>> inflight_;
};

StatusOr<std::unique_ptr<Snapshotter>> Snapshotter::open(const std::string& root,
                                                         Database* db) {
  const std::string what = strCat("open snapshotter at \"", root, "\"");
  RETURN_IF_ERROR_CTX(fs::mkdirAll(root, 0700), what);
  char* real = ::realpath(root.c_str(), nullptr);
  if (real == nullptr) return withContext(lastErrnoError(strCat("realpath \"", root, "\"")), what);
  std::string abs_root = real;
  ::free(real);
  UniqueFd root_fd(::open(abs_root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root_fd) return withContext(lastErrnoError(strCat("open \"", abs_root, "\"")), what);
  const std::string lock_path = fs::join(abs_root, kLockFile);
  UniqueFd lock_fd(::openat(root_fd.get(), kLockFile, O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!lock_fd) return withContext(lastErrnoError(strCat("open \"", lock_path, "\"")), what);
  RETURN_IF_ERROR_CTX(db->migrate("snapshots", kSchema), what);

  // Exclusive when no other process has this root open: then tmp-* are leftovers.
  bool exclusive = ::flock(lock_fd.get(), LOCK_EX | LOCK_NB) == 0;
  auto impl = std::make_unique<Impl>(abs_root, std::move(root_fd), std::move(lock_fd), db);
  RETURN_IF_ERROR_CTX(impl->recover(exclusive), what);
  while (::flock(impl->lock_fd_.get(), LOCK_SH) != 0) {
    if (errno != EINTR) {
      return withContext(lastErrnoError(strCat("lock \"", lock_path, "\" shared")), what);
    }
  }
  return std::unique_ptr<Snapshotter>(new Snapshotter(std::move(impl)));
}

Snapshotter::Snapshotter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Snapshotter::~Snapshotter() = default;

const std::string& Snapshotter::root() const { return impl_->root_; }

Status Snapshotter::Impl::recover(bool exclusive) {
  auto logger = log::get("image");
  ASSIGN_OR_RETURN(std::vector<std::string> names, fs::listDir(root_));
  if (exclusive) {
    for (const auto& name : names) {
      if (name.rfind(kTmpPrefix, 0) != 0) continue;
      const std::string path = fs::join(root_, name);
      logger->info("snapshots: removing unfinished unpack \"{}\"", path);
      Status st = fs::removeAll(path);
      if (!st.ok()) logger->warn("snapshots: {}", std::string(st.message()));
    }
  }
  std::vector<std::string> remove;
  {
    std::lock_guard<std::mutex> lock(db_mu_);
    Transaction tx(*db_);
    RETURN_IF_ERROR(tx.status());
    ASSIGN_OR_RETURN(Statement rows,
                     db_->prepare("SELECT id, kind, coalesce(chain_id, key) FROM snapshots"));
    std::set<std::string> known;
    std::vector<int64_t> vanished;
    for (;;) {
      ASSIGN_OR_RETURN(bool row, rows.step());
      if (!row) break;
      int64_t id = rows.columnInt(0);
      known.insert(std::to_string(id));
      if (!fs::exists(idDir(id))) {
        logger->warn("snapshots: {} snapshot {} has lost its directory \"{}\"; dropping it"
                     " and the snapshots above it (pull the image again)",
                     rows.columnText(1), rows.columnText(2), idDir(id));
        vanished.push_back(id);
      }
    }
    for (int64_t id : vanished) {
      // The snapshot and everything built on it, children first (deepest first).
      ASSIGN_OR_RETURN(
          Statement tree,
          db_->prepare("WITH RECURSIVE t(id, depth) AS (SELECT ?1, 0 UNION ALL"
                       " SELECT s.id, t.depth + 1 FROM snapshots s JOIN t ON s.parent_id = t.id)"
                       " SELECT id FROM t ORDER BY depth DESC"));
      tree.bind(1, id);
      std::vector<int64_t> ids;
      for (;;) {
        ASSIGN_OR_RETURN(bool row, tree.step());
        if (!row) break;
        ids.push_back(tree.columnInt(0));
      }
      ASSIGN_OR_RETURN(Statement del, db_->prepare("DELETE FROM snapshots WHERE id = ?1"));
      for (int64_t victim : ids) {
        del.reset();
        del.bind(1, victim);
        RETURN_IF_ERROR(del.run());
        known.erase(std::to_string(victim));
      }
    }
    // Orphans are moved aside while we hold the write lock, since another process
    // may hand out the same id as soon as we commit.
    for (const auto& name : names) {
      if (!isIdName(name) || known.count(name) != 0) continue;
      const std::string aside = strCat(kTmpPrefix, "orphan-", name);
      if (::renameat(root_fd_.get(), name.c_str(), root_fd_.get(), aside.c_str()) != 0) {
        return lastErrnoError(strCat("rename orphan directory \"", fs::join(root_, name),
                                     "\" to \"", fs::join(root_, aside), "\""));
      }
      remove.push_back(aside);
    }
    if (!remove.empty() && ::fsync(root_fd_.get()) != 0) {
      return lastErrnoError(strCat("fsync \"", root_, "\""));
    }
    RETURN_IF_ERROR(tx.commit());
  }
  for (const auto& name : remove) {
    const std::string path = fs::join(root_, name);
    logger->info("snapshots: removing orphan snapshot directory \"{}\" (no database row)",
                 path);
    Status st = fs::removeAll(path);
    if (!st.ok()) logger->warn("snapshots: {}", std::string(st.message()));
  }
  return absl::OkStatus();
}

StatusOr<std::optional<SnapshotInfo>> Snapshotter::Impl::findLocked(
    const std::string& where, const std::string& value) const {
  ASSIGN_OR_RETURN(Statement stmt, db_->prepare(strCat(kSelectInfo, " WHERE ", where)));
  stmt.bind(1, value);
  ASSIGN_OR_RETURN(bool row, stmt.step());
  if (!row) return std::optional<SnapshotInfo>();
  return std::optional<SnapshotInfo>(readInfo(stmt, root_));
}

Status Snapshotter::Impl::clearStaleIdDir(int64_t id) const {
  const std::string path = idDir(id);
  if (!fs::exists(path)) return absl::OkStatus();
  log::get("image")->warn("snapshots: removing stale directory \"{}\" before reusing id {}",
                          path, id);
  return fs::removeAll(path);
}

StatusOr<SnapshotInfo> Snapshotter::prepareLayer(
    const std::string& chain_id, const std::string& parent_chain_id,
    const std::string& display, const std::function<Status(const std::string& dir)>& fill) {
  return impl_->prepareLayer(chain_id, parent_chain_id, display, fill);
}

StatusOr<SnapshotInfo> Snapshotter::Impl::prepareLayer(
    const std::string& chain_id, const std::string& parent_chain_id,
    const std::string& display, const std::function<Status(const std::string&)>& fill) {
  const std::string ctx = display.empty() ? strCat("snapshot ", chain_id)
                                          : strCat(display, ": snapshot ", chain_id);
  if (chain_id.empty()) return invalidArgument(ctx, ": empty chain ID");
  {
    ASSIGN_OR_RETURN(auto found, find("s.kind = 'committed' AND s.chain_id = ?1", chain_id));
    if (found) return *found;
  }
  std::shared_ptr<Inflight> entry;
  bool leader = false;
  {
    std::lock_guard<std::mutex> lock(inflight_mu_);
    auto it = inflight_.find(chain_id);
    if (it != inflight_.end()) {
      entry = it->second;
    } else {
      entry = std::make_shared<Inflight>();
      entry->parent_chain_id = parent_chain_id;
      inflight_.emplace(chain_id, entry);
      leader = true;
    }
  }
  if (!leader) {
    std::unique_lock<std::mutex> lock(entry->mu);
    entry->cv.wait(lock, [&] { return entry->done; });
    return entry->result;
  }
  StatusOr<SnapshotInfo> result = unpackAndCommit(chain_id, parent_chain_id, ctx, fill);
  {
    std::lock_guard<std::mutex> lock(inflight_mu_);
    inflight_.erase(chain_id);
  }
  {
    std::lock_guard<std::mutex> lock(entry->mu);
    entry->result = result;
    entry->done = true;
  }
  entry->cv.notify_all();
  return result;
}

StatusOr<SnapshotInfo> Snapshotter::Impl::unpackAndCommit(
    const std::string& chain_id, const std::string& parent_chain_id, const std::string& ctx,
    const std::function<Status(const std::string&)>& fill) {
  ByteLock chain_lock;
  RETURN_IF_ERROR_CTX(chain_lock.lock(lock_fd_.get(), lockOffset(chain_id),
                                      fs::join(root_, kLockFile)),
                      ctx);
  // Another process (or an earlier leader here) may have committed it meanwhile.
  {
    ASSIGN_OR_RETURN(auto found, find("s.kind = 'committed' AND s.chain_id = ?1", chain_id));
    if (found) return *found;
  }
  auto parentMissing = [&] {
    return failedPrecondition(ctx, ": parent snapshot ", parent_chain_id,
                              " is not committed; prepare the layers below it first (base"
                              " layer first), or pull the image again if it was removed");
  };
  if (!parent_chain_id.empty()) {
    ASSIGN_OR_RETURN(auto parent,
                     find("s.kind = 'committed' AND s.chain_id = ?1", parent_chain_id));
    if (!parent) return parentMissing();
  }

  std::string tmpl = fs::join(root_, strCat(kTmpPrefix, "XXXXXX"));
  if (::mkdtemp(tmpl.data()) == nullptr) {
    return withContext(lastErrnoError(strCat("create a directory like \"", tmpl, "\"")), ctx);
  }
  const std::string tmp = tmpl;
  const std::string tmp_name = tmp.substr(root_.size() + 1);
  bool done = false;  // tmp has become <id>: nothing to clean up
  ScopeGuard cleanup([&] {
    if (done) return;
    Status st = fs::removeAll(tmp);
    if (!st.ok()) log::get("image")->warn("snapshots: {}", std::string(st.message()));
  });
  const std::string fs_dir = fs::join(tmp, "fs");
  if (::mkdir(fs_dir.c_str(), 0755) != 0) {
    return withContext(lastErrnoError(strCat("mkdir \"", fs_dir, "\"")), ctx);
  }
  RETURN_IF_ERROR_CTX(fill(fs_dir), ctx);
  ASSIGN_OR_RETURN(SnapshotUsage used, withContext(dirUsage(tmp), ctx));
  if (::syncfs(root_fd_.get()) != 0) {
    return withContext(lastErrnoError(strCat("syncfs \"", root_, "\"")), ctx);
  }

  std::lock_guard<std::mutex> lock(db_mu_);
  Transaction tx(*db_);
  RETURN_IF_ERROR_CTX(tx.status(), ctx);
  int64_t parent_id = 0;
  if (!parent_chain_id.empty()) {
    ASSIGN_OR_RETURN(auto parent,
                     findLocked("s.kind = 'committed' AND s.chain_id = ?1", parent_chain_id));
    if (!parent) return parentMissing();  // garbage-collected while we unpacked
    parent_id = parent->id;
  }
  ASSIGN_OR_RETURN(Statement insert,
                   db_->prepare("INSERT INTO snapshots(kind, chain_id, parent_id, created_ns,"
                                " size_bytes, inodes) VALUES('committed', ?1, ?2, ?3, ?4, ?5)"));
  insert.bind(1, chain_id);
  if (parent_id != 0) {
    insert.bind(2, parent_id);
  } else {
    insert.bindNull(2);
  }
  insert.bind(3, nowNs()).bind(4, used.bytes).bind(5, used.inodes);
  RETURN_IF_ERROR_CTX(insert.run(), ctx);
  const int64_t id = db_->lastInsertRowid();
  const std::string id_name = std::to_string(id);
  RETURN_IF_ERROR_CTX(clearStaleIdDir(id), ctx);
  if (::renameat(root_fd_.get(), tmp_name.c_str(), root_fd_.get(), id_name.c_str()) != 0) {
    return withContext(
        lastErrnoError(strCat("rename \"", tmp, "\" to \"", idDir(id), "\"")), ctx);
  }
  // Until COMMIT succeeds, undo the rename (the cleanup above then removes tmp).
  ScopeGuard undo_rename([&] {
    if (::renameat(root_fd_.get(), id_name.c_str(), root_fd_.get(), tmp_name.c_str()) != 0) {
      (void)fs::removeAll(idDir(id));
    }
  });
  if (::fsync(root_fd_.get()) != 0) {
    return withContext(lastErrnoError(strCat("fsync \"", root_, "\"")), ctx);
  }
  ASSIGN_OR_RETURN(auto info, withContext(findLocked("s.id = ?1", id_name), ctx));
  if (!info) return internalError(ctx, ": snapshot row ", id, " vanished before commit");
  RETURN_IF_ERROR_CTX(tx.commit(), ctx);
  undo_rename.dismiss();
  done = true;
  return *info;
}

StatusOr<SnapshotInfo> Snapshotter::committed(const std::string& chain_id) const {
  ASSIGN_OR_RETURN(auto found,
                   impl_->find("s.kind = 'committed' AND s.chain_id = ?1", chain_id));
  if (!found) {
    return notFound("snapshot ", chain_id, " is not committed in \"", impl_->root_,
                    "\"; pull the image again");
  }
  return *found;
}

StatusOr<std::vector<MountSpec>> Snapshotter::prepareActive(const std::string& key,
                                                            const std::string& parent) {
  return impl_->prepareSnapshot(key, parent, SnapshotKind::kActive);
}

StatusOr<std::vector<MountSpec>> Snapshotter::prepareView(const std::string& key,
                                                          const std::string& parent) {
  return impl_->prepareSnapshot(key, parent, SnapshotKind::kView);
}

StatusOr<std::vector<MountSpec>> Snapshotter::Impl::prepareSnapshot(
    const std::string& key, const std::string& parent_chain_id, SnapshotKind kind) {
  const std::string ctx = strCat("prepare ", kindName(kind), " snapshot \"", key, "\"");
  if (key.empty()) return invalidArgument(ctx, ": empty key");
  {
    std::lock_guard<std::mutex> lock(db_mu_);
    Transaction tx(*db_);
    RETURN_IF_ERROR_CTX(tx.status(), ctx);
    ASSIGN_OR_RETURN(auto existing, findLocked("s.key = ?1", key));
    if (existing) {
      return alreadyExists(ctx, ": the key is in use by ", kindName(existing->kind),
                           " snapshot ", existing->id, " (\"", idDir(existing->id),
                           "\"); remove it first or choose another key");
    }
    int64_t parent_id = 0;
    if (!parent_chain_id.empty()) {
      ASSIGN_OR_RETURN(auto parent,
                       findLocked("s.kind = 'committed' AND s.chain_id = ?1", parent_chain_id));
      if (!parent) {
        return notFound(ctx, ": parent snapshot ", parent_chain_id,
                        " is not committed; pull the image first");
      }
      parent_id = parent->id;
    }
    ASSIGN_OR_RETURN(Statement insert,
                     db_->prepare("INSERT INTO snapshots(kind, key, parent_id, created_ns)"
                                  " VALUES(?1, ?2, ?3, ?4)"));
    insert.bind(1, kindName(kind)).bind(2, key);
    if (parent_id != 0) {
      insert.bind(3, parent_id);
    } else {
      insert.bindNull(3);
    }
    insert.bind(4, nowNs());
    RETURN_IF_ERROR_CTX(insert.run(), ctx);
    const int64_t id = db_->lastInsertRowid();
    RETURN_IF_ERROR_CTX(clearStaleIdDir(id), ctx);
    const std::string dir = idDir(id);
    ScopeGuard cleanup([&] { (void)fs::removeAll(dir); });
    std::vector<std::string> dirs = {dir, fsDir(id)};
    if (kind == SnapshotKind::kActive) dirs.push_back(fs::join(dir, "work"));
    for (const auto& d : dirs) {
      if (::mkdir(d.c_str(), d == dir ? 0700 : 0755) != 0) {
        return withContext(lastErrnoError(strCat("mkdir \"", d, "\"")), ctx);
      }
    }
    if (::fsync(root_fd_.get()) != 0) {
      return withContext(lastErrnoError(strCat("fsync \"", root_, "\"")), ctx);
    }
    RETURN_IF_ERROR_CTX(tx.commit(), ctx);
    cleanup.dismiss();
  }
  ASSIGN_OR_RETURN(MountPlan p, withContext(plan(key), ctx));
  return specs(p);
}

StatusOr<MountPlan> Snapshotter::Impl::plan(const std::string& key) const {
  std::lock_guard<std::mutex> lock(db_mu_);
  // A consistent snapshot of the chain even while another process commits.
  ASSIGN_OR_RETURN(Statement stmt,
                   db_->prepare("WITH RECURSIVE chain(id, kind, parent_id, depth) AS ("
                                " SELECT id, kind, parent_id, 0 FROM snapshots"
                                "  WHERE key = ?1 AND kind != 'committed'"
                                " UNION ALL SELECT s.id, s.kind, s.parent_id, c.depth + 1"
                                "  FROM snapshots s JOIN chain c ON s.id = c.parent_id)"
                                " SELECT id, kind FROM chain ORDER BY depth"));
  stmt.bind(1, key);
  MountPlan p;
  p.key = key;
  bool first = true;
  for (;;) {
    ASSIGN_OR_RETURN(bool row, stmt.step());
    if (!row) break;
    if (first) {
      p.id = stmt.columnInt(0);
      p.kind = parseKind(stmt.columnText(1));
      first = false;
    } else {
      p.lowers.push_back(stmt.columnInt(0));
    }
  }
  if (first) {
    return notFound("snapshot \"", key, "\": no active or view snapshot with this key in \"",
                    root_, "\"; prepare it first");
  }
  return p;
}

std::vector<MountSpec> Snapshotter::Impl::specs(const MountPlan& p) const {
  MountSpec spec;
  if (p.lowers.empty()) {
    spec.type = "bind";
    spec.source = fsDir(p.id);
    spec.options = {p.kind == SnapshotKind::kActive ? "rw" : "ro", "rbind"};
    return {spec};
  }
  if (p.kind == SnapshotKind::kView && p.lowers.size() == 1) {
    spec.type = "bind";
    spec.source = fsDir(p.lowers[0]);
    spec.options = {"ro", "rbind"};
    return {spec};
  }
  spec.type = "overlay";
  spec.source = "overlay";
  spec.options = snapshotter_internal::overlayOptions(layers(p));
  return {spec};
}

StatusOr<std::vector<MountSpec>> Snapshotter::mounts(const std::string& key) const {
  ASSIGN_OR_RETURN(MountPlan p, impl_->plan(key));
  return impl_->specs(p);
}

Status Snapshotter::mount(const std::string& key, const std::string& target) const {
  const std::string what = strCat("mount snapshot \"", key, "\" on \"", target, "\"");
  ASSIGN_OR_RETURN(MountPlan p, withContext(impl_->plan(key), what));
  const MountSpec spec = impl_->specs(p)[0];
  if (spec.type == "bind") {
    return snapshotter_internal::mountBind(spec.source, target, spec.options[0] == "ro", what);
  }
  return snapshotter_internal::mountOverlay(impl_->layers(p), target, what);
}

Status Snapshotter::removeActive(const std::string& key) { return impl_->removeActive(key); }

Status Snapshotter::Impl::removeActive(const std::string& key) {
  const std::string ctx = strCat("remove snapshot \"", key, "\"");
  int64_t id = 0;
  {
    std::lock_guard<std::mutex> lock(db_mu_);
    Transaction tx(*db_);
    RETURN_IF_ERROR_CTX(tx.status(), ctx);
    ASSIGN_OR_RETURN(Statement get, db_->prepare("SELECT id FROM snapshots WHERE key = ?1"
                                                 " AND kind != 'committed'"));
    get.bind(1, key);
    ASSIGN_OR_RETURN(bool row, get.step());
    if (!row) return absl::OkStatus();
    id = get.columnInt(0);
    ASSIGN_OR_RETURN(Statement del, db_->prepare("DELETE FROM snapshots WHERE id = ?1"));
    del.bind(1, id);
    RETURN_IF_ERROR_CTX(del.run(), ctx);
    RETURN_IF_ERROR_CTX(tx.commit(), ctx);
  }
  Status st = fs::removeAll(idDir(id));
  if (!st.ok()) {
    return withContext(st, strCat(ctx, " (its record is gone; the directory is removed at the"
                                       " next start, or remove it by hand once unmounted)"));
  }
  return absl::OkStatus();
}

StatusOr<std::vector<SnapshotInfo>> Snapshotter::list() const { return impl_->list(); }

StatusOr<std::vector<SnapshotInfo>> Snapshotter::Impl::list() const {
  std::lock_guard<std::mutex> lock(db_mu_);
  ASSIGN_OR_RETURN(Statement stmt,
                   db_->prepare(strCat(kSelectInfo, " ORDER BY s.kind != 'committed', s.id")));
  std::vector<SnapshotInfo> out;
  for (;;) {
    ASSIGN_OR_RETURN(bool row, stmt.step());
    if (!row) break;
    out.push_back(readInfo(stmt, root_));
  }
  return out;
}

StatusOr<SnapshotUsage> Snapshotter::usage(const std::string& key_or_chain_id) const {
  return impl_->usage(key_or_chain_id);
}

StatusOr<SnapshotUsage> Snapshotter::Impl::usage(const std::string& key_or_chain_id) const {
  ASSIGN_OR_RETURN(auto found, find("s.chain_id = ?1 OR s.key = ?1", key_or_chain_id));
  if (!found) {
    return notFound("usage of snapshot \"", key_or_chain_id, "\": no snapshot with this key"
                    " or chain ID in \"", root_, "\"");
  }
  return withContext(dirUsage(idDir(found->id)),
                     strCat("usage of snapshot \"", key_or_chain_id, "\""));
}

StatusOr<SnapshotUsage> Snapshotter::totalUsage() const { return impl_->totalUsage(); }

StatusOr<SnapshotUsage> Snapshotter::Impl::totalUsage() const {
  ASSIGN_OR_RETURN(std::vector<SnapshotInfo> all, list());
  SnapshotUsage total;
  for (const auto& info : all) {
    if (info.kind == SnapshotKind::kCommitted) {
      total.bytes += info.size_bytes;
      total.inodes += info.inodes;
      continue;
    }
    auto used = dirUsage(idDir(info.id));
    if (!used.ok()) {
      if (!fs::exists(idDir(info.id))) continue;  // removed meanwhile
      return withContext(used.status(), strCat("usage of snapshot \"", info.key, "\""));
    }
    total.bytes += used->bytes;
    total.inodes += used->inodes;
  }
  return total;
}

StatusOr<std::vector<std::string>> Snapshotter::garbageCollect(
    const std::set<std::string>& keep_chain_ids) {
  return impl_->garbageCollect(keep_chain_ids);
}

StatusOr<std::vector<std::string>> Snapshotter::Impl::garbageCollect(
    const std::set<std::string>& keep_chain_ids) {
  const std::string ctx = strCat("garbage-collect snapshots in \"", root_, "\"");
  std::set<std::string> keep = keep_chain_ids;
  {
    // The parents of unpacks in progress here are about to gain a child.
    std::lock_guard<std::mutex> lock(inflight_mu_);
    for (const auto& [chain, entry] : inflight_) {
      if (!entry->parent_chain_id.empty()) keep.insert(entry->parent_chain_id);
    }
  }
  struct Node {
    int64_t parent = 0;
    bool committed = false;
    std::string chain_id;
    bool marked = false;
  };
  std::vector<std::pair<int64_t, std::string>> removed;  // (id, chain ID), children first
  {
    std::lock_guard<std::mutex> lock(db_mu_);
    Transaction tx(*db_);
    RETURN_IF_ERROR_CTX(tx.status(), ctx);
    ASSIGN_OR_RETURN(Statement rows,
                     db_->prepare("SELECT id, kind, chain_id, parent_id FROM snapshots"));
    std::unordered_map<int64_t, Node> nodes;
    for (;;) {
      ASSIGN_OR_RETURN(bool row, rows.step());
      if (!row) break;
      Node n;
      n.committed = rows.columnText(1) == "committed";
      n.chain_id = rows.columnText(2);
      n.parent = rows.columnInt(3);
      nodes.emplace(rows.columnInt(0), std::move(n));
    }
    // Mark every root (kept chain IDs, active and view snapshots) and its ancestors.
    for (auto& [id, node] : nodes) {
      if (node.committed && keep.count(node.chain_id) == 0) continue;
      for (int64_t cur = id; cur != 0;) {
        auto it = nodes.find(cur);
        if (it == nodes.end() || it->second.marked) break;
        it->second.marked = true;
        cur = it->second.parent;
      }
    }
    std::vector<std::pair<int, int64_t>> victims;  // (depth, id)
    for (const auto& [id, node] : nodes) {
      if (node.marked) continue;
      int depth = 0;
      for (int64_t cur = node.parent; cur != 0 && depth <= static_cast<int>(nodes.size());) {
        ++depth;
        auto it = nodes.find(cur);
        cur = it == nodes.end() ? 0 : it->second.parent;
      }
      victims.emplace_back(depth, id);
    }
    std::sort(victims.begin(), victims.end(), std::greater<>());
    ASSIGN_OR_RETURN(Statement del, db_->prepare("DELETE FROM snapshots WHERE id = ?1"));
    for (const auto& [depth, id] : victims) {
      del.reset();
      del.bind(1, id);
      RETURN_IF_ERROR_CTX(del.run(), strCat(ctx, ": snapshot ", nodes[id].chain_id));
      removed.emplace_back(id, nodes[id].chain_id);
    }
    RETURN_IF_ERROR_CTX(tx.commit(), ctx);
  }
  std::vector<std::string> out;
  for (const auto& [id, chain] : removed) {
    out.push_back(chain);
    Status st = fs::removeAll(idDir(id));
    if (!st.ok()) {
      log::get("image")->warn("snapshots: {}: {} (removed at the next start)", chain,
                              std::string(st.message()));
    }
  }
  return out;
}

}  // namespace berth::image
