#include "csi/hostpath_backend.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <set>

#include "common/fs.h"
#include "common/log.h"
#include "common/scope_guard.h"
#include "common/unique_fd.h"
#include "csi/driver_info.h"
#include "csi/loop_device.h"
#include "csi/project_quota.h"
#include "csi/tree_archive.h"

namespace berth::csi {
namespace {

constexpr uint32_t kFirstProjectId = 1000000;

std::shared_ptr<spdlog::logger> logger() { return log::get("csi"); }

Status makeBlockFile(const std::string& path, int64_t size) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd) return lastErrnoError(strCat("create block volume file \"", path, "\""));
  if (::ftruncate(fd.get(), size) != 0) {
    return lastErrnoError(strCat("size block volume file \"", path, "\" to ", size, " bytes"));
  }
  if (::fsync(fd.get()) != 0) return lastErrnoError(strCat("fsync \"", path, "\""));
  return absl::OkStatus();
}

// Grows (never shrinks) the file at `path` to `size` bytes.
Status growFile(const std::string& path, int64_t size) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return lastErrnoError(strCat("stat \"", path, "\""));
  if (st.st_size >= size) return absl::OkStatus();
  if (::truncate(path.c_str(), size) != 0) {
    return lastErrnoError(strCat("grow \"", path, "\" to ", size, " bytes"));
  }
  return absl::OkStatus();
}

Status removePath(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return lastErrnoError(strCat("stat \"", path, "\""));
  }
  if (S_ISDIR(st.st_mode)) return fs::removeAll(path);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return lastErrnoError(strCat("remove \"", path, "\""));
  }
  return absl::OkStatus();
}

}  // namespace

std::string newObjectId() {
  unsigned char bytes[16];
  size_t got = 0;
  while (got < sizeof(bytes)) {
    ssize_t n = ::getrandom(bytes + got, sizeof(bytes) - got, 0);
    if (n > 0) got += static_cast<size_t>(n);
  }
  static const char kHex[] = "0123456789abcdef";
  std::string id;
  for (unsigned char b : bytes) {
    id.push_back(kHex[b >> 4]);
    id.push_back(kHex[b & 15]);
  }
  return id;
}

int64_t nowUnixNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

StatusOr<std::unique_ptr<HostPathBackend>> HostPathBackend::create(BackendOptions options,
                                                                   VolumeStore* store) {
  if (options.base_dir.empty() || options.base_dir.front() != '/') {
    return invalidArgument("CSI base directory \"", options.base_dir,
                           "\" must be an absolute path (--csi-base-dir)");
  }
  if (options.node_id.empty()) return invalidArgument("CSI driver: the node id must be set");
  if (options.capacity_bytes < 0 || options.max_volume_bytes < 0 ||
      options.default_volume_bytes <= 0) {
    return invalidArgument("CSI driver: capacity options must not be negative");
  }
  RETURN_IF_ERROR(fs::mkdirAll(options.base_dir, 0750));
  // Symlinks in the base path would trip libarchive's secure-symlink extraction.
  char* real = ::realpath(options.base_dir.c_str(), nullptr);
  if (real == nullptr) return lastErrnoError(strCat("resolve \"", options.base_dir, "\""));
  options.base_dir = real;
  ::free(real);
  std::unique_ptr<HostPathBackend> backend(new HostPathBackend(std::move(options), store));
  RETURN_IF_ERROR(fs::mkdirAll(backend->volumesDir(), 0750));
  RETURN_IF_ERROR(fs::mkdirAll(backend->snapshotsDir(), 0750));
  if (backend->options_.use_quota) {
    QuotaProbe probe = probeProjectQuota(backend->volumesDir());
    backend->quota_ = probe.available;
    backend->quota_reason_ = probe.reason;
  } else {
    backend->quota_reason_ = "project quotas disabled by configuration";
  }
  backend->mode_ = std::string(backend->quota_ ? kCapacityQuota : kCapacityAccounted);
  logger()->info("CSI backend at {}: capacity {} ({})", backend->options_.base_dir,
                 backend->mode_, backend->quota_reason_);
  ASSIGN_OR_RETURN(RecoveryReport report, backend->recover());
  (void)report;
  return backend;
}

std::string HostPathBackend::volumesDir() const { return fs::join(options_.base_dir, "volumes"); }
std::string HostPathBackend::snapshotsDir() const {
  return fs::join(options_.base_dir, "snapshots");
}

// --- capacity --------------------------------------------------------------------

StatusOr<CapacityInfo> HostPathBackend::capacityLocked() {
  CapacityInfo info;
  if (options_.capacity_bytes > 0) {
    info.pool_bytes = options_.capacity_bytes;
  } else {
    struct statvfs st;
    if (::statvfs(options_.base_dir.c_str(), &st) != 0) {
      return lastErrnoError(strCat("statvfs \"", options_.base_dir, "\""));
    }
    info.pool_bytes = static_cast<int64_t>(st.f_blocks) * static_cast<int64_t>(st.f_frsize);
  }
  ASSIGN_OR_RETURN(int64_t reserved, store_->reservedBytes());
  info.available_bytes = std::max<int64_t>(0, info.pool_bytes - reserved);
  info.max_volume_bytes = info.available_bytes;
  if (options_.max_volume_bytes > 0) {
    info.max_volume_bytes = std::min(info.max_volume_bytes, options_.max_volume_bytes);
  }
  return info;
}

StatusOr<CapacityInfo> HostPathBackend::capacity() {
  std::lock_guard<std::mutex> lock(alloc_mu_);
  return capacityLocked();
}

StatusOr<int64_t> HostPathBackend::chooseCapacity(const CreateVolumeParams& p,
                                                  int64_t source_bytes) const {
  if (p.required_bytes < 0 || p.limit_bytes < 0) {
    return absl::OutOfRangeError("capacity_range: required_bytes and limit_bytes must not be negative");
  }
  if (p.limit_bytes > 0 && p.required_bytes > p.limit_bytes) {
    return absl::OutOfRangeError(strCat("capacity_range: required_bytes ", p.required_bytes,
                                        " is above limit_bytes ", p.limit_bytes));
  }
  int64_t size = p.required_bytes;
  if (size == 0) {
    // Unspecified: a restore or clone gets its source's size, a new volume the default.
    size = source_bytes > 0 ? source_bytes : options_.default_volume_bytes;
    if (p.limit_bytes > 0) size = std::min(size, p.limit_bytes);
  }
  size = std::max(size, source_bytes);
  if (p.limit_bytes > 0 && size > p.limit_bytes) {
    return absl::OutOfRangeError(strCat("capacity_range: limit_bytes ", p.limit_bytes,
                                        " is below the source's size of ", source_bytes,
                                        " bytes"));
  }
  if (options_.max_volume_bytes > 0 && size > options_.max_volume_bytes) {
    return absl::OutOfRangeError(strCat("capacity_range: ", size,
                                        " bytes is above this driver's maximum volume size of ",
                                        options_.max_volume_bytes, " bytes"));
  }
  return size;
}

StatusOr<uint32_t> HostPathBackend::nextProjectId() {
  ASSIGN_OR_RETURN(auto volumes, store_->listVolumes());
  uint32_t next = kFirstProjectId;
  for (const auto& v : volumes) next = std::max(next, v.project_id + 1);
  return next;
}

// --- volumes ---------------------------------------------------------------------

StatusOr<VolumeRecord> HostPathBackend::createVolume(const CreateVolumeParams& p) {
  ASSIGN_OR_RETURN(auto name_guard, in_flight_.claim(strCat("volume-name/", p.name),
                                                     strCat("volume \"", p.name, "\"")));
  std::string what = strCat("create volume \"", p.name, "\"");

  // The source, if any: its size and data path.
  int64_t source_bytes = 0;
  std::string source_path;
  std::optional<InFlight::Guard> source_guard;
  if (p.source_kind == "snapshot") {
    ASSIGN_OR_RETURN(auto snap, store_->getSnapshot(p.source_id));
    if (!snap || snap->state != RecordState::kReady) {
      return notFound("volume_content_source: snapshot ", p.source_id, " does not exist");
    }
    if (snap->access_type != p.access_type) {
      return invalidArgument("volume_content_source: snapshot ", p.source_id, " is of a ",
                             accessTypeName(snap->access_type), " volume; cannot restore it as ",
                             accessTypeName(p.access_type), " volume");
    }
    source_bytes = snap->size_bytes;
    source_path = snap->path;
  } else if (p.source_kind == "volume") {
    ASSIGN_OR_RETURN(auto src, store_->getVolume(p.source_id));
    if (!src || src->state != RecordState::kReady) {
      return notFound("volume_content_source: volume ", p.source_id, " does not exist");
    }
    if (src->access_type != p.access_type) {
      return invalidArgument("volume_content_source: volume ", p.source_id, " is a ",
                             accessTypeName(src->access_type), " volume; cannot clone it as ",
                             accessTypeName(p.access_type), " volume");
    }
    ASSIGN_OR_RETURN(auto g, in_flight_.claim(strCat("volume/", src->id),
                                              strCat("source volume ", src->id)));
    source_guard.emplace(std::move(g));
    source_bytes = src->capacity_bytes;
    source_path = src->path;
  } else if (!p.source_kind.empty()) {
    return invalidArgument("volume_content_source: unknown kind \"", p.source_kind, "\"");
  }

  VolumeRecord v;
  {
    std::lock_guard<std::mutex> lock(alloc_mu_);
    ASSIGN_OR_RETURN(auto existing, store_->getVolumeByName(p.name));
    if (existing) {
      if (existing->state != RecordState::kReady) {
        return absl::AbortedError(strCat("volume \"", p.name, "\" is being created or deleted"));
      }
      bool fits = (p.required_bytes == 0 || existing->capacity_bytes >= p.required_bytes) &&
                  (p.limit_bytes == 0 || existing->capacity_bytes <= p.limit_bytes);
      if (!fits || existing->access_type != p.access_type ||
          existing->source_kind != p.source_kind || existing->source_id != p.source_id) {
        return alreadyExists("volume \"", p.name, "\" already exists as a ",
                             existing->capacity_bytes, "-byte ",
                             accessTypeName(existing->access_type), " volume",
                             existing->source_kind.empty() ? std::string()
                                                           : strCat(" from ", existing->source_kind,
                                                                    " ", existing->source_id),
                             ", incompatible with this request; use another name");
      }
      return *existing;
    }
    ASSIGN_OR_RETURN(int64_t size, chooseCapacity(p, source_bytes));
    ASSIGN_OR_RETURN(CapacityInfo cap, capacityLocked());
    if (size > cap.available_bytes) {
      return absl::ResourceExhaustedError(
          strCat(what, ": ", size, " bytes requested but only ", cap.available_bytes,
                 " of the ", cap.pool_bytes, "-byte pool at \"", options_.base_dir,
                 "\" are free; delete volumes or grow the pool"));
    }
    v.id = newObjectId();
    v.name = p.name;
    v.capacity_bytes = size;
    v.access_type = p.access_type;
    v.path = fs::join(volumesDir(), p.access_type == AccessType::kBlock ? v.id + ".img" : v.id);
    v.source_kind = p.source_kind;
    v.source_id = p.source_id;
    v.capacity_mode = mode_;
    if (quota_) {
      ASSIGN_OR_RETURN(v.project_id, nextProjectId());
    }
    v.state = RecordState::kCreating;
    v.created_unix_ns = nowUnixNs();
    RETURN_IF_ERROR_CTX(store_->insertVolume(v), what);  // step 1
  }

  Rollback rollback;
  rollback.add([this, v] {
    Status s = removeData(v);
    if (s.ok()) s = store_->deleteVolume(v.id);
    if (!s.ok()) logger()->warn("roll back volume {}: {}", v.id, s.ToString());
  });
  RETURN_IF_ERROR_CTX(materialize(v, source_path), what);   // steps 2 and 3
  RETURN_IF_ERROR_CTX(store_->setVolumeState(v.id, RecordState::kReady), what);  // step 4
  rollback.commit();
  v.state = RecordState::kReady;
  logger()->info("created {} volume {} (\"{}\", {} bytes, {})", accessTypeName(v.access_type),
                 v.id, v.name, v.capacity_bytes, v.capacity_mode);
  return v;
}

Status HostPathBackend::materialize(const VolumeRecord& v, const std::string& source_path) {
  if (v.access_type == AccessType::kBlock) {
    if (v.source_kind == "snapshot") {
      RETURN_IF_ERROR(extractArchive(source_path, v.path));
    } else if (v.source_kind == "volume") {
      RETURN_IF_ERROR(copyTree(source_path, v.path));
    } else {
      RETURN_IF_ERROR(makeBlockFile(v.path, v.capacity_bytes));
    }
    return applyCapacity(v);
  }
  if (::mkdir(v.path.c_str(), 0777) != 0) {
    return lastErrnoError(strCat("create volume directory \"", v.path, "\""));
  }
  if (::chmod(v.path.c_str(), 0777) != 0) {
    return lastErrnoError(strCat("chmod \"", v.path, "\""));
  }
  // The project id goes on first, so the restored/cloned files are charged to it.
  if (quota_) RETURN_IF_ERROR(setProjectId(v.path, v.project_id));
  RETURN_IF_ERROR(applyCapacity(v));
  if (v.source_kind == "snapshot") {
    RETURN_IF_ERROR(extractArchive(source_path, v.path));
  } else if (v.source_kind == "volume") {
    RETURN_IF_ERROR(copyTree(source_path, v.path));
  }
  return absl::OkStatus();
}

Status HostPathBackend::applyCapacity(const VolumeRecord& v) {
  if (v.access_type == AccessType::kBlock) {
    RETURN_IF_ERROR(growFile(v.path, v.capacity_bytes));
    ASSIGN_OR_RETURN(std::string loop, findLoop(v.path));
    if (!loop.empty()) RETURN_IF_ERROR(refreshLoopCapacity(loop));
    return absl::OkStatus();
  }
  if (v.capacity_mode == kCapacityQuota && v.project_id != 0) {
    return setProjectLimit(volumesDir(), v.project_id, v.capacity_bytes);
  }
  return absl::OkStatus();
}

Status HostPathBackend::removeData(const VolumeRecord& v) {
  RETURN_IF_ERROR(removePath(v.path));
  if (v.capacity_mode == kCapacityQuota && v.project_id != 0 && quota_) {
    Status s = setProjectLimit(volumesDir(), v.project_id, 0);
    if (!s.ok()) logger()->warn("clear quota of volume {}: {}", v.id, s.ToString());
  }
  return absl::OkStatus();
}

Status HostPathBackend::deleteVolume(const std::string& id) {
  ASSIGN_OR_RETURN(auto guard, in_flight_.claim(strCat("volume/", id), strCat("volume ", id)));
  std::string what = strCat("delete volume ", id);
  std::optional<VolumeRecord> v;
  {
    std::lock_guard<std::mutex> usage(usage_mu_);
    ASSIGN_OR_RETURN(v, store_->getVolume(id));
    if (!v) return absl::OkStatus();
    ASSIGN_OR_RETURN(auto pubs, store_->publications(id));
    ASSIGN_OR_RETURN(auto stages, store_->stagings(id));
    if (!pubs.empty() || !stages.empty()) {
      return failedPrecondition(what, ": it is still ",
                                !pubs.empty() ? strCat("published at \"", pubs[0].target_path, "\"")
                                              : strCat("staged at \"", stages[0].staging_path, "\""),
                                "; unpublish and unstage it first");
    }
    if (v->state != RecordState::kDeleting) {
      RETURN_IF_ERROR_CTX(store_->setVolumeState(id, RecordState::kDeleting), what);  // step 1
    }
  }
  RETURN_IF_ERROR_CTX(removeData(*v), what);       // step 2
  RETURN_IF_ERROR_CTX(store_->deleteVolume(id), what);  // step 3
  logger()->info("deleted volume {} (\"{}\")", id, v->name);
  return absl::OkStatus();
}

StatusOr<VolumeRecord> HostPathBackend::expandVolume(const std::string& id, int64_t required,
                                                     int64_t limit) {
  ASSIGN_OR_RETURN(auto guard, in_flight_.claim(strCat("volume/", id), strCat("volume ", id)));
  std::string what = strCat("expand volume ", id);
  if (required < 0 || limit < 0) {
    return absl::OutOfRangeError("capacity_range: bytes must not be negative");
  }
  if (limit > 0 && required > limit) {
    return absl::OutOfRangeError(strCat("capacity_range: required_bytes ", required,
                                        " is above limit_bytes ", limit));
  }
  std::lock_guard<std::mutex> lock(alloc_mu_);
  ASSIGN_OR_RETURN(auto v, store_->getVolume(id));
  if (!v || v->state != RecordState::kReady) return notFound("volume ", id, " does not exist");
  if (required <= v->capacity_bytes) {
    if (limit > 0 && v->capacity_bytes > limit) {
      return absl::OutOfRangeError(strCat(what, ": it already has ", v->capacity_bytes,
                                          " bytes, above limit_bytes ", limit,
                                          " (volumes do not shrink)"));
    }
    return *v;
  }
  if (options_.max_volume_bytes > 0 && required > options_.max_volume_bytes) {
    return absl::OutOfRangeError(strCat(what, ": ", required,
                                        " bytes is above the maximum volume size of ",
                                        options_.max_volume_bytes, " bytes"));
  }
  ASSIGN_OR_RETURN(CapacityInfo cap, capacityLocked());
  int64_t growth = required - v->capacity_bytes;
  if (growth > cap.available_bytes) {
    return absl::ResourceExhaustedError(strCat(what, ": ", growth, " more bytes needed but only ",
                                               cap.available_bytes, " are free in the pool"));
  }
  // Record first: an interrupted expansion is finished by recover()'s applyCapacity.
  RETURN_IF_ERROR_CTX(store_->setVolumeCapacity(id, required), what);
  v->capacity_bytes = required;
  RETURN_IF_ERROR_CTX(applyCapacity(*v), what);
  logger()->info("expanded volume {} to {} bytes", id, required);
  return *v;
}

Condition HostPathBackend::condition(const VolumeRecord& v) const {
  Condition c;
  struct stat st;
  if (::lstat(v.path.c_str(), &st) != 0) {
    c.abnormal = true;
    c.message = strCat("the volume's data at \"", v.path, "\" is missing");
    return c;
  }
  bool right = v.access_type == AccessType::kBlock ? S_ISREG(st.st_mode) : S_ISDIR(st.st_mode);
  if (!right) {
    c.abnormal = true;
    c.message = strCat("\"", v.path, "\" is not a ",
                       v.access_type == AccessType::kBlock ? "regular file" : "directory");
    return c;
  }
  c.message = "volume is healthy";
  return c;
}

// --- snapshots -------------------------------------------------------------------

StatusOr<SnapshotRecord> HostPathBackend::createSnapshot(const std::string& name,
                                                         const std::string& source_volume_id) {
  ASSIGN_OR_RETURN(auto name_guard, in_flight_.claim(strCat("snapshot-name/", name),
                                                     strCat("snapshot \"", name, "\"")));
  std::string what = strCat("create snapshot \"", name, "\"");
  ASSIGN_OR_RETURN(auto existing, store_->getSnapshotByName(name));
  if (existing) {
    if (existing->source_volume_id != source_volume_id) {
      return alreadyExists("snapshot \"", name, "\" already exists for volume ",
                           existing->source_volume_id, ", not ", source_volume_id,
                           "; use another name");
    }
    if (existing->state != RecordState::kReady) {
      return absl::AbortedError(strCat("snapshot \"", name, "\" is being created or deleted"));
    }
    return *existing;
  }
  ASSIGN_OR_RETURN(auto vol_guard, in_flight_.claim(strCat("volume/", source_volume_id),
                                                    strCat("volume ", source_volume_id)));
  ASSIGN_OR_RETURN(auto src, store_->getVolume(source_volume_id));
  if (!src || src->state != RecordState::kReady) {
    return notFound("source volume ", source_volume_id, " does not exist");
  }
  SnapshotRecord snap;
  snap.id = newObjectId();
  snap.name = name;
  snap.source_volume_id = src->id;
  snap.size_bytes = src->capacity_bytes;
  snap.access_type = src->access_type;
  snap.path = fs::join(snapshotsDir(), snap.id + ".tar");
  snap.state = RecordState::kCreating;
  snap.created_unix_ns = nowUnixNs();
  RETURN_IF_ERROR_CTX(store_->insertSnapshot(snap), what);
  Rollback rollback;
  rollback.add([this, snap] {
    (void)::unlink(snap.path.c_str());
    (void)::unlink((snap.path + ".tmp").c_str());
    Status s = store_->deleteSnapshot(snap.id);
    if (!s.ok()) logger()->warn("roll back snapshot {}: {}", snap.id, s.ToString());
  });
  auto archived = archiveTree(src->path, snap.path);
  if (!archived.ok()) {
    Status s = withContext(archived.status(), what);
    if (errnoOf(s) == ENOSPC) return absl::ResourceExhaustedError(s.message());
    return s;
  }
  RETURN_IF_ERROR_CTX(store_->markSnapshotReady(snap.id, snap.size_bytes), what);
  rollback.commit();
  snap.state = RecordState::kReady;
  snap.ready = true;
  logger()->info("snapshot {} (\"{}\") of volume {}: {} archive bytes", snap.id, name, src->id,
                 *archived);
  return snap;
}

Status HostPathBackend::deleteSnapshot(const std::string& id) {
  ASSIGN_OR_RETURN(auto guard, in_flight_.claim(strCat("snapshot/", id), strCat("snapshot ", id)));
  std::string what = strCat("delete snapshot ", id);
  ASSIGN_OR_RETURN(auto snap, store_->getSnapshot(id));
  if (!snap) return absl::OkStatus();
  RETURN_IF_ERROR_CTX(store_->setSnapshotState(id, RecordState::kDeleting), what);
  RETURN_IF_ERROR_CTX(removePath(snap->path), what);
  (void)::unlink((snap->path + ".tmp").c_str());
  RETURN_IF_ERROR_CTX(store_->deleteSnapshot(id), what);
  return absl::OkStatus();
}

// --- recovery --------------------------------------------------------------------

StatusOr<RecoveryReport> HostPathBackend::recover() {
  RecoveryReport report;
  std::set<std::string> known;
  ASSIGN_OR_RETURN(auto volumes, store_->listVolumes());
  for (const auto& v : volumes) {
    if (v.state == RecordState::kCreating || v.state == RecordState::kDeleting) {
      RETURN_IF_ERROR_CTX(removeData(v), "recover volume " + v.id);
      RETURN_IF_ERROR_CTX(store_->deleteVolume(v.id), "recover volume " + v.id);
      if (v.state == RecordState::kCreating) {
        ++report.volumes_rolled_back;
        logger()->warn("recovery: rolled back the interrupted creation of volume {} (\"{}\")",
                       v.id, v.name);
      } else {
        ++report.deletes_finished;
        logger()->warn("recovery: finished deleting volume {} (\"{}\")", v.id, v.name);
      }
      continue;
    }
    known.insert(v.path);
    if (condition(v).abnormal) {
      ++report.missing_data;
      logger()->error("recovery: volume {} (\"{}\"): {}; kept and reported abnormal", v.id,
                      v.name, condition(v).message);
      continue;
    }
    Status s = applyCapacity(v);
    if (!s.ok()) logger()->warn("recovery: re-apply capacity of volume {}: {}", v.id, s.ToString());
  }
  ASSIGN_OR_RETURN(auto snapshots, store_->listSnapshots());
  std::set<std::string> known_snapshots;
  for (const auto& snap : snapshots) {
    if (snap.state != RecordState::kReady) {
      RETURN_IF_ERROR(removePath(snap.path));
      RETURN_IF_ERROR(store_->deleteSnapshot(snap.id));
      ++report.snapshots_rolled_back;
      logger()->warn("recovery: removed unfinished snapshot {} (\"{}\")", snap.id, snap.name);
      continue;
    }
    known_snapshots.insert(snap.path);
  }
  // Orphans: data no record names.
  for (const auto& [dir, names] : {std::pair{volumesDir(), &known},
                                   std::pair{snapshotsDir(), &known_snapshots}}) {
    ASSIGN_OR_RETURN(auto entries, fs::listDir(dir));
    for (const std::string& entry : entries) {
      std::string path = fs::join(dir, entry);
      if (names->count(path) != 0) continue;
      Status s = removePath(path);
      if (!s.ok()) {
        logger()->error("recovery: remove orphan \"{}\": {}", path, s.ToString());
        continue;
      }
      ++report.orphans_removed;
      logger()->warn("recovery: removed \"{}\", which no volume or snapshot record names", path);
    }
  }
  last_recovery_ = report;
  return report;
}

}  // namespace berth::csi
