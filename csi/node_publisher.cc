#include "csi/node_publisher.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <set>
#include <utility>

#include "common/fs.h"
#include "common/log.h"
#include "common/scope_guard.h"
#include "common/unique_fd.h"
#include "csi/driver_info.h"
#include "csi/loop_device.h"
#include "csi/mount_util.h"
#include "csi/project_quota.h"

namespace berth::csi {
namespace {

std::shared_ptr<spdlog::logger> logger() { return log::get("csi"); }

bool exclusiveMode(int mode) {
  return mode == kSingleNodeWriter || mode == kSingleNodeReaderOnly ||
         mode == kSingleNodeSingleWriter;
}

bool readerOnlyMode(int mode) {
  return mode == kSingleNodeReaderOnly || mode == kMultiNodeReaderOnly;
}

// Removes the directory or file at `path` that publish made (after it was unmounted).
Status removeTarget(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return lastErrnoError(strCat("stat \"", path, "\""));
  }
  int rc = S_ISDIR(st.st_mode) ? ::rmdir(path.c_str()) : ::unlink(path.c_str());
  if (rc != 0 && errno != ENOENT) {
    return lastErrnoError(strCat("remove target \"", path, "\""));
  }
  return absl::OkStatus();
}

Status makeTargetFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0640));
  if (!fd) return lastErrnoError(strCat("create block target \"", path, "\""));
  return absl::OkStatus();
}

struct TreeUsage {
  int64_t bytes = 0;
  int64_t inodes = 0;
};

// du: st_blocks of everything below `dirfd`, one device, hard links counted once.
void walkUsage(int dirfd, dev_t dev, std::set<std::pair<dev_t, ino_t>>& seen, TreeUsage& usage,
               int depth) {
  if (depth > 256) return;
  DIR* dir = ::fdopendir(dirfd);
  if (dir == nullptr) {
    ::close(dirfd);
    return;
  }
  while (dirent* e = ::readdir(dir)) {
    std::string_view name = e->d_name;
    if (name == "." || name == "..") continue;
    struct stat st;
    if (::fstatat(::dirfd(dir), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (st.st_dev != dev) continue;  // a mount point below the volume
    if (st.st_nlink > 1 && !S_ISDIR(st.st_mode) && !seen.insert({st.st_dev, st.st_ino}).second) {
      continue;
    }
    usage.bytes += static_cast<int64_t>(st.st_blocks) * 512;
    usage.inodes += 1;
    if (S_ISDIR(st.st_mode)) {
      int child = ::openat(::dirfd(dir), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (child >= 0) walkUsage(child, dev, seen, usage, depth + 1);
    }
  }
  ::closedir(dir);
}

StatusOr<TreeUsage> treeUsage(const std::string& root) {
  int fd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return lastErrnoError(strCat("open \"", root, "\""));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return lastErrnoError(strCat("stat \"", root, "\""));
  }
  TreeUsage usage;
  usage.bytes = static_cast<int64_t>(st.st_blocks) * 512;
  usage.inodes = 1;
  std::set<std::pair<dev_t, ino_t>> seen;
  walkUsage(fd, st.st_dev, seen, usage, 0);
  return usage;
}

}  // namespace

StatusOr<VolumeRecord> NodePublisher::readyVolume(const std::string& volume_id) {
  ASSIGN_OR_RETURN(auto v, backend_->store().getVolume(volume_id));
  if (!v || v->state != RecordState::kReady) {
    return notFound("volume ", volume_id, " does not exist on this node");
  }
  return *v;
}

// Detaches the shared loop device `device` of a block volume unless a staging or a
// publication still uses it. Caller holds the usage mutex.
Status NodePublisher::releaseLoopIfUnused(const VolumeRecord& v, const std::string& device) {
  if (device.empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(auto stages, backend_->store().stagings(v.id));
  for (const auto& s : stages) {
    if (s.loop_device == device) return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(auto pubs, backend_->store().publications(v.id));
  for (const auto& p : pubs) {
    if (p.loop_device == device) return absl::OkStatus();
  }
  return detachLoop(device);
}

// --- stage -----------------------------------------------------------------------

Status NodePublisher::stage(const StageRequest& r) {
  ASSIGN_OR_RETURN(auto guard, backend_->inFlight().claim(strCat("node/", r.volume_id),
                                                          strCat("volume ", r.volume_id)));
  std::string what = strCat("stage volume ", r.volume_id, " at \"", r.staging_path, "\"");
  std::lock_guard<std::mutex> usage(backend_->usageMutex());
  ASSIGN_OR_RETURN(VolumeRecord v, readyVolume(r.volume_id));
  if (v.access_type != r.access_type) {
    return failedPrecondition(what, ": it is a ", accessTypeName(v.access_type),
                              " volume, the capability asks for ", accessTypeName(r.access_type),
                              " access");
  }
  ASSIGN_OR_RETURN(auto stages, backend_->store().stagings(v.id));
  for (const auto& s : stages) {
    if (s.staging_path != r.staging_path) continue;
    if (s.access_mode != r.access_mode) {
      return alreadyExists(what, ": already staged there with access mode ", s.access_mode);
    }
    if (v.access_type == AccessType::kBlock) {
      ASSIGN_OR_RETURN(std::string bound, findLoop(v.path));
      if (!bound.empty() && bound == s.loop_device) return absl::OkStatus();
    } else {
      ASSIGN_OR_RETURN(bool mounted, isMountPoint(r.staging_path));
      if (mounted) return absl::OkStatus();
    }
    break;  // recorded but its mount or loop device is gone: set it up again
  }

  StagingRecord rec;
  rec.volume_id = v.id;
  rec.staging_path = r.staging_path;
  rec.access_mode = r.access_mode;
  Rollback rollback;
  if (v.access_type == AccessType::kBlock) {
    ASSIGN_OR_RETURN(std::string device, withContext(findLoop(v.path), what));
    if (device.empty()) {
      ASSIGN_OR_RETURN(device, withContext(attachLoop(v.path), what));
      rollback.add([device] { (void)detachLoop(device); });
    }
    rec.loop_device = device;
  } else {
    RETURN_IF_ERROR_CTX(fs::mkdirAll(r.staging_path, 0750), what);
    RETURN_IF_ERROR_CTX(unmountAll(sys_, r.staging_path), what);
    RETURN_IF_ERROR_CTX(bindMount(sys_, v.path, r.staging_path, 0), what);
    rollback.add([this, path = r.staging_path] { (void)unmountAll(sys_, path); });
  }
  RETURN_IF_ERROR_CTX(backend_->store().putStaging(rec), what);
  rollback.commit();
  return absl::OkStatus();
}

Status NodePublisher::unstage(const std::string& volume_id, const std::string& staging_path) {
  ASSIGN_OR_RETURN(auto guard, backend_->inFlight().claim(strCat("node/", volume_id),
                                                          strCat("volume ", volume_id)));
  std::string what = strCat("unstage volume ", volume_id, " from \"", staging_path, "\"");
  std::lock_guard<std::mutex> usage(backend_->usageMutex());
  ASSIGN_OR_RETURN(VolumeRecord v, readyVolume(volume_id));
  ASSIGN_OR_RETURN(auto stages, backend_->store().stagings(v.id));
  const StagingRecord* rec = nullptr;
  for (const auto& s : stages) {
    if (s.staging_path == staging_path) rec = &s;
  }
  if (rec == nullptr) return absl::OkStatus();
  if (v.access_type == AccessType::kBlock) {
    ASSIGN_OR_RETURN(auto pubs, backend_->store().publications(v.id));
    for (const auto& p : pubs) {
      if (p.staging_path == staging_path) {
        return failedPrecondition(what, ": still published at \"", p.target_path,
                                  "\"; unpublish it first");
      }
    }
    std::string device = rec->loop_device;
    RETURN_IF_ERROR_CTX(backend_->store().deleteStaging(v.id, staging_path), what);
    RETURN_IF_ERROR_CTX(releaseLoopIfUnused(v, device), what);
    return absl::OkStatus();
  }
  RETURN_IF_ERROR_CTX(unmountAll(sys_, staging_path), what);
  RETURN_IF_ERROR_CTX(backend_->store().deleteStaging(v.id, staging_path), what);
  return absl::OkStatus();
}

// --- publish ---------------------------------------------------------------------

Status NodePublisher::publish(const PublishRequest& r) {
  ASSIGN_OR_RETURN(auto guard, backend_->inFlight().claim(strCat("node/", r.volume_id),
                                                          strCat("volume ", r.volume_id)));
  std::string what = strCat("publish volume ", r.volume_id, " at \"", r.target_path, "\"");
  unsigned long flags = 0;
  if (r.access_type == AccessType::kMount) {
    ASSIGN_OR_RETURN(flags, parseMountFlags(r.mount_flags));
  }
  bool readonly = r.readonly || readerOnlyMode(r.access_mode) || (flags & MS_RDONLY) != 0;
  if (readonly) flags |= MS_RDONLY;
  std::string flags_text = joinStrings(r.mount_flags, ",");

  std::lock_guard<std::mutex> usage(backend_->usageMutex());
  ASSIGN_OR_RETURN(VolumeRecord v, readyVolume(r.volume_id));
  if (v.access_type != r.access_type) {
    return failedPrecondition(what, ": it is a ", accessTypeName(v.access_type),
                              " volume, the capability asks for ", accessTypeName(r.access_type),
                              " access");
  }
  if (r.staging_path.empty()) {
    return failedPrecondition(what, ": staging_target_path is not set; this driver stages "
                                    "volumes (STAGE_UNSTAGE_VOLUME): call NodeStageVolume first");
  }
  ASSIGN_OR_RETURN(auto stages, backend_->store().stagings(v.id));
  const StagingRecord* staged = nullptr;
  for (const auto& s : stages) {
    if (s.staging_path == r.staging_path) staged = &s;
  }
  if (staged == nullptr) {
    return failedPrecondition(what, ": the volume is not staged at \"", r.staging_path,
                              "\"; call NodeStageVolume first");
  }
  std::string shared_loop = staged->loop_device;

  ASSIGN_OR_RETURN(auto pubs, backend_->store().publications(v.id));
  std::optional<PublicationRecord> redo;
  for (const auto& p : pubs) {
    if (p.target_path == r.target_path) {
      if (p.readonly != readonly || p.access_mode != r.access_mode ||
          p.mount_flags != flags_text || p.staging_path != r.staging_path) {
        return alreadyExists(what, ": already published there with other options (readonly=",
                             p.readonly, ", mode ", p.access_mode, ", flags \"", p.mount_flags,
                             "\")");
      }
      ASSIGN_OR_RETURN(bool mounted, isMountPoint(r.target_path));
      if (mounted) return absl::OkStatus();
      redo = p;  // recorded but not mounted any more: mount again
    } else if (exclusiveMode(r.access_mode) || exclusiveMode(p.access_mode)) {
      return failedPrecondition(what, ": access mode ", r.access_mode,
                                " allows one publication and the volume is published at \"",
                                p.target_path, "\"");
    }
  }

  PublicationRecord rec;
  rec.volume_id = v.id;
  rec.target_path = r.target_path;
  rec.readonly = readonly;
  rec.staging_path = r.staging_path;
  rec.access_mode = r.access_mode;
  rec.mount_flags = flags_text;
  Rollback rollback;
  if (v.access_type == AccessType::kBlock) {
    std::string device = shared_loop;
    if (readonly) {
      if (redo && !redo->loop_device.empty()) (void)detachLoop(redo->loop_device);
      ASSIGN_OR_RETURN(device, withContext(attachLoop(v.path, true), what));
      rollback.add([device] { (void)detachLoop(device); });
      rec.loop_device = device;
    } else if (device.empty()) {
      return failedPrecondition(what, ": the staged block volume has no loop device; stage it again");
    }
    bool existed = fs::exists(r.target_path);
    RETURN_IF_ERROR_CTX(makeTargetFile(r.target_path), what);
    if (!existed) rollback.add([path = r.target_path] { (void)removeTarget(path); });
    RETURN_IF_ERROR_CTX(bindMount(sys_, device, r.target_path, readonly ? MS_RDONLY : 0), what);
  } else {
    bool existed = fs::exists(r.target_path);
    RETURN_IF_ERROR_CTX(fs::mkdirAll(r.target_path, 0750), what);
    if (!existed) rollback.add([path = r.target_path] { (void)removeTarget(path); });
    RETURN_IF_ERROR_CTX(bindMount(sys_, r.staging_path, r.target_path, flags), what);
  }
  rollback.add([this, path = r.target_path] { (void)unmountAll(sys_, path); });
  RETURN_IF_ERROR_CTX(backend_->store().putPublication(rec), what);
  rollback.commit();
  return absl::OkStatus();
}

Status NodePublisher::unpublish(const std::string& volume_id, const std::string& target_path) {
  ASSIGN_OR_RETURN(auto guard, backend_->inFlight().claim(strCat("node/", volume_id),
                                                          strCat("volume ", volume_id)));
  std::string what = strCat("unpublish volume ", volume_id, " from \"", target_path, "\"");
  std::lock_guard<std::mutex> usage(backend_->usageMutex());
  ASSIGN_OR_RETURN(VolumeRecord v, readyVolume(volume_id));
  ASSIGN_OR_RETURN(auto pubs, backend_->store().publications(v.id));
  std::optional<PublicationRecord> rec;
  for (const auto& p : pubs) {
    if (p.target_path == target_path) rec = p;
  }
  RETURN_IF_ERROR_CTX(unmountAll(sys_, target_path), what);
  RETURN_IF_ERROR_CTX(removeTarget(target_path), what);
  if (!rec) return absl::OkStatus();
  RETURN_IF_ERROR_CTX(backend_->store().deletePublication(v.id, target_path), what);
  if (!rec->loop_device.empty()) RETURN_IF_ERROR_CTX(detachLoop(rec->loop_device), what);
  return absl::OkStatus();
}

// --- stats and expansion ---------------------------------------------------------

StatusOr<VolumeStats> NodePublisher::stats(const std::string& volume_id,
                                           const std::string& volume_path) {
  ASSIGN_OR_RETURN(VolumeRecord v, readyVolume(volume_id));
  bool ours = volume_path == v.path;
  bool is_target = false;
  ASSIGN_OR_RETURN(auto pubs, backend_->store().publications(v.id));
  for (const auto& p : pubs) {
    if (p.target_path == volume_path) ours = is_target = true;
  }
  ASSIGN_OR_RETURN(auto stages, backend_->store().stagings(v.id));
  for (const auto& s : stages) {
    if (s.staging_path == volume_path) ours = true;
  }
  if (!ours || !fs::exists(volume_path)) {
    return notFound("volume ", volume_id, " is not published or staged at \"", volume_path, "\"");
  }
  VolumeStats out;
  out.condition = backend_->condition(v);
  if (!out.condition.abnormal && is_target && v.access_type == AccessType::kMount) {
    ASSIGN_OR_RETURN(bool mounted, isMountPoint(volume_path));
    if (!mounted) {
      out.condition.abnormal = true;
      out.condition.message = strCat("\"", volume_path, "\" is no longer mounted");
    }
  }
  out.bytes_total = v.capacity_bytes;
  if (out.condition.abnormal && !fs::exists(v.path)) return out;
  if (v.access_type == AccessType::kBlock) {
    struct stat st;
    if (::stat(v.path.c_str(), &st) != 0) return lastErrnoError(strCat("stat \"", v.path, "\""));
    out.bytes_used = static_cast<int64_t>(st.st_blocks) * 512;
    out.bytes_available = std::max<int64_t>(0, out.bytes_total - out.bytes_used);
    return out;
  }
  if (v.capacity_mode == kCapacityQuota && v.project_id != 0) {
    ASSIGN_OR_RETURN(ProjectUsage q, projectUsage(backend_->volumesDir(), v.project_id));
    out.bytes_used = q.used_bytes;
    out.inodes_used = q.used_inodes;
  } else {
    ASSIGN_OR_RETURN(TreeUsage u, treeUsage(v.path));
    out.bytes_used = u.bytes;
    out.inodes_used = u.inodes;
  }
  out.bytes_available = std::max<int64_t>(0, out.bytes_total - out.bytes_used);
  struct statvfs fs_st;
  if (::statvfs(v.path.c_str(), &fs_st) == 0 && fs_st.f_files > 0) {
    out.has_inodes = true;
    out.inodes_free = static_cast<int64_t>(fs_st.f_favail);
    out.inodes_total = out.inodes_used + out.inodes_free;
  }
  return out;
}

StatusOr<int64_t> NodePublisher::expand(const std::string& volume_id,
                                        const std::string& volume_path) {
  ASSIGN_OR_RETURN(auto guard, backend_->inFlight().claim(strCat("node/", volume_id),
                                                          strCat("volume ", volume_id)));
  ASSIGN_OR_RETURN(VolumeRecord v, readyVolume(volume_id));
  if (!fs::exists(volume_path)) {
    return notFound("volume ", volume_id, ": volume_path \"", volume_path, "\" does not exist");
  }
  if (v.access_type == AccessType::kBlock) {
    std::lock_guard<std::mutex> usage(backend_->usageMutex());
    std::set<std::string> devices;
    ASSIGN_OR_RETURN(auto stages, backend_->store().stagings(v.id));
    for (const auto& s : stages) devices.insert(s.loop_device);
    ASSIGN_OR_RETURN(auto pubs, backend_->store().publications(v.id));
    for (const auto& p : pubs) devices.insert(p.loop_device);
    for (const std::string& d : devices) {
      if (!d.empty()) RETURN_IF_ERROR_CTX(refreshLoopCapacity(d), "expand volume " + volume_id);
    }
  }
  return v.capacity_bytes;
}

// --- recovery --------------------------------------------------------------------

Status NodePublisher::recover() {
  std::lock_guard<std::mutex> usage(backend_->usageMutex());
  VolumeStore& store = backend_->store();
  ASSIGN_OR_RETURN(auto volumes, store.listVolumes());
  for (const auto& v : volumes) {
    ASSIGN_OR_RETURN(auto pubs, store.publications(v.id));
    for (const auto& p : pubs) {
      ASSIGN_OR_RETURN(bool mounted, isMountPoint(p.target_path));
      if (mounted) continue;
      logger()->warn("recovery: volume {} is no longer mounted at \"{}\"; forgetting it", v.id,
                     p.target_path);
      RETURN_IF_ERROR(store.deletePublication(v.id, p.target_path));
      if (!p.loop_device.empty()) (void)detachLoop(p.loop_device);
    }
    ASSIGN_OR_RETURN(auto stages, store.stagings(v.id));
    for (const auto& s : stages) {
      bool alive = false;
      if (v.access_type == AccessType::kBlock) {
        ASSIGN_OR_RETURN(std::string bound, findLoop(v.path));
        alive = !bound.empty() && bound == s.loop_device;
      } else {
        ASSIGN_OR_RETURN(alive, isMountPoint(s.staging_path));
      }
      if (alive) continue;
      logger()->warn("recovery: volume {} is no longer staged at \"{}\"; forgetting it", v.id,
                     s.staging_path);
      RETURN_IF_ERROR(store.deleteStaging(v.id, s.staging_path));
    }
  }
  return absl::OkStatus();
}

}  // namespace berth::csi
