#include "runtime/image/unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <map>
#include <memory>
#include <vector>

#include "common/fs.h"
#include "common/scope_guard.h"
#include "common/sha256.h"
#include "common/unique_fd.h"
#include "runtime/image/unpack_paths.h"

namespace berth::image {
namespace {

constexpr size_t kReadBlock = 128 * 1024;
constexpr std::string_view kWhiteoutPrefix = ".wh.";
constexpr std::string_view kWhiteoutMetaPrefix = ".wh..wh.";
constexpr std::string_view kOpaqueWhiteout = ".wh..wh..opq";
constexpr const char* kOpaqueXattr = "trusted.overlay.opaque";

struct ArchiveFree {
  void operator()(archive* a) const { archive_read_free(a); }
};
using ArchivePtr = std::unique_ptr<archive, ArchiveFree>;

std::string archiveError(archive* a) {
  const char* msg = archive_error_string(a);
  return msg != nullptr ? std::string(msg) : std::string("unknown libarchive error");
}

bool startsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// The decompression stage. libarchive's filters (gzip, zstd; chosen by magic bytes)
// under the "raw" format turn the blob into the uncompressed tar byte stream, which is
// hashed here exactly once as it is handed to the tar reader; drain() hashes whatever
// follows the end-of-archive marker, so the digest covers the whole stream.
class TarStream {
 public:
  Status open(int fd) {
    outer_.reset(archive_read_new());
    if (!outer_) return internalError("archive_read_new failed");
    archive_read_support_filter_gzip(outer_.get());
    archive_read_support_filter_zstd(outer_.get());
    archive_read_support_format_raw(outer_.get());
    archive_read_support_format_empty(outer_.get());  // a zero-byte blob
    if (archive_read_open_fd(outer_.get(), fd, kReadBlock) != ARCHIVE_OK) {
      return invalidArgument("open layer stream: ", archiveError(outer_.get()));
    }
    archive_entry* entry = nullptr;
    int r = archive_read_next_header(outer_.get(), &entry);
    if (r == ARCHIVE_EOF) {
      eof_ = true;
    } else if (r != ARCHIVE_OK) {
      return invalidArgument("open layer stream: ", archiveError(outer_.get()));
    }
    buffer_.resize(kReadBlock);
    return absl::OkStatus();
  }

  // Next chunk of uncompressed bytes: >0 bytes, 0 at end of stream, -1 on error.
  ssize_t read(const void** data) {
    if (eof_) return 0;
    la_ssize_t n = archive_read_data(outer_.get(), buffer_.data(), buffer_.size());
    if (n < 0) {
      error_ = archiveError(outer_.get());
      return -1;
    }
    if (n == 0) eof_ = true;
    hasher_.update(buffer_.data(), static_cast<size_t>(n));
    total_ += static_cast<uint64_t>(n);
    *data = buffer_.data();
    return n;
  }

  // Reads (and hashes) the rest of the stream after the tar reader stopped.
  Status drain() {
    const void* data = nullptr;
    for (;;) {
      ssize_t n = read(&data);
      if (n == 0) return absl::OkStatus();
      if (n < 0) return invalidArgument("read layer stream: ", error_);
    }
  }

  std::string digest() { return hasher_.digest(); }
  uint64_t total() const { return total_; }
  const std::string& error() const { return error_; }

 private:
  ArchivePtr outer_;
  std::vector<char> buffer_;
  Sha256 hasher_;
  uint64_t total_ = 0;
  bool eof_ = false;
  std::string error_;
};

la_ssize_t readCallback(archive* a, void* client, const void** data) {
  auto* stream = static_cast<TarStream*>(client);
  ssize_t n = stream->read(data);
  if (n < 0) archive_set_error(a, EIO, "%s", stream->error().c_str());
  return n;
}

// Applies tar entries below root_fd (see the header for the semantics).
class LayerWriter {
 public:
  LayerWriter(int root_fd, const UnpackOptions& options, UnpackResult& result)
      : root_fd_(root_fd), options_(options), result_(result) {}

  Status apply(archive* in, archive_entry* entry);
  // Sets directory modes and times, deepest first, after all contents exist.
  Status finish();
  bool rootEntrySeen() const { return dirs_.count(".") != 0; }

 private:
  struct DeferredDir {
    std::vector<std::string> components;
    mode_t mode;
    struct timespec times[2];
  };

  StatusOr<int> parentFd(const std::vector<std::string>& components);
  Status clearLeaf(int parent, const std::string& leaf, bool keep_dir, bool* kept);
  Status applyWhiteout(int parent, const std::string& leaf);
  Status writeRegular(archive* in, archive_entry* entry, int parent, const std::string& leaf);
  Status makeHardLink(archive_entry* entry, const std::vector<std::string>& components,
                      int parent);
  Status applyOwnership(archive_entry* entry, int parent, const std::string& leaf);
  Status applyXattrs(archive_entry* entry, int fd, int parent, const std::string& leaf);
  static void entryTimes(archive_entry* entry, struct timespec times[2]);

  int root_fd_;
  const UnpackOptions& options_;
  UnpackResult& result_;
  std::map<std::string, DeferredDir> dirs_;
  // The last parent directory opened, reused by the next entry in the same directory
  // (tar streams list a directory's files together). Dropped on every removal.
  std::string cached_parent_path_;
  UniqueFd cached_parent_;
};

StatusOr<int> LayerWriter::parentFd(const std::vector<std::string>& components) {
  std::string path = joinComponents(components, components.size() - 1);
  if (cached_parent_ && cached_parent_path_ == path) return cached_parent_.get();
  cached_parent_.reset();
  ASSIGN_OR_RETURN(UniqueFd fd,
                   openDirBeneath(root_fd_, components, components.size() - 1, true));
  cached_parent_ = std::move(fd);
  cached_parent_path_ = std::move(path);
  return cached_parent_.get();
}

Status LayerWriter::clearLeaf(int parent, const std::string& leaf, bool keep_dir, bool* kept) {
  *kept = false;
  struct stat st;
  if (::fstatat(parent, leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return lastErrnoError("stat existing entry");
  }
  if (keep_dir && S_ISDIR(st.st_mode)) {
    *kept = true;
    return absl::OkStatus();
  }
  // A later entry replaces an earlier one of the same name (tar semantics).
  if (S_ISDIR(st.st_mode)) cached_parent_.reset();
  return withContext(removeBeneath(parent, leaf), "replace existing entry");
}

Status LayerWriter::applyWhiteout(int parent, const std::string& leaf) {
  if (leaf == kOpaqueWhiteout) {
    if (::fsetxattr(parent, kOpaqueXattr, "y", 1, 0) != 0) {
      int err = errno;
      if (err == EPERM) {
        return absl::PermissionDeniedError(
            "opaque whiteout: setting trusted.overlay.opaque needs root (CAP_SYS_ADMIN); "
            "unpack layers with whiteouts as root");
      }
      return errnoError(err, "opaque whiteout: set trusted.overlay.opaque");
    }
    return absl::OkStatus();
  }
  if (startsWith(leaf, kWhiteoutMetaPrefix)) return absl::OkStatus();  // aufs metadata
  std::string name = leaf.substr(kWhiteoutPrefix.size());
  if (name.empty() || name == "." || name == "..") {
    return invalidArgument("whiteout \"", leaf, "\" names no file");
  }
  bool kept = false;
  RETURN_IF_ERROR(clearLeaf(parent, name, false, &kept));
  if (::mknodat(parent, name.c_str(), S_IFCHR | 0, makedev(0, 0)) != 0) {
    int err = errno;
    if (err == EPERM) {
      return absl::PermissionDeniedError(strCat(
          "whiteout for \"", name,
          "\": creating the overlay whiteout (character device 0:0) needs root "
          "(CAP_MKNOD); unpack layers with whiteouts as root"));
    }
    return errnoError(err, strCat("whiteout for \"", name, "\": mknod"));
  }
  return absl::OkStatus();
}

void LayerWriter::entryTimes(archive_entry* entry, struct timespec times[2]) {
  times[1].tv_sec = archive_entry_mtime(entry);
  times[1].tv_nsec = archive_entry_mtime_nsec(entry);
  if (!archive_entry_mtime_is_set(entry)) times[1].tv_nsec = UTIME_OMIT;
  if (archive_entry_atime_is_set(entry)) {
    times[0].tv_sec = archive_entry_atime(entry);
    times[0].tv_nsec = archive_entry_atime_nsec(entry);
  } else {
    times[0] = times[1];
  }
}

Status LayerWriter::applyOwnership(archive_entry* entry, int parent, const std::string& leaf) {
  if (!options_.apply_ownership) return absl::OkStatus();
  la_int64_t uid = archive_entry_uid(entry);
  la_int64_t gid = archive_entry_gid(entry);
  if (options_.id_shift) {
    uid += options_.id_shift->uid_offset;
    gid += options_.id_shift->gid_offset;
  }
  if (uid < 0 || gid < 0 || uid >= UINT32_MAX || gid >= UINT32_MAX) {
    return invalidArgument("owner ", uid, ":", gid, " (after the id shift) is out of range");
  }
  if (::fchownat(parent, leaf.c_str(), static_cast<uid_t>(uid), static_cast<gid_t>(gid),
                 AT_SYMLINK_NOFOLLOW) != 0) {
    int err = errno;
    Status st = errnoError(err, strCat("chown to ", uid, ":", gid));
    if (err == EPERM) {
      return withContext(st, "applying image ownership needs root (or unpack with "
                             "apply_ownership=false)");
    }
    return st;
  }
  return absl::OkStatus();
}

Status LayerWriter::applyXattrs(archive_entry* entry, int fd, int parent,
                                const std::string& leaf) {
  if (archive_entry_xattr_reset(entry) == 0) return absl::OkStatus();
  const char* name = nullptr;
  const void* value = nullptr;
  size_t size = 0;
  // Non-file, non-directory entries have no fd to write through: use the parent's
  // /proc fd path with lsetxattr, which does not follow the leaf.
  std::string path = strCat("/proc/self/fd/", parent, "/", leaf);
  while (archive_entry_xattr_next(entry, &name, &value, &size) == ARCHIVE_OK) {
    int rc = fd >= 0 ? ::fsetxattr(fd, name, value, size, 0)
                     : ::lsetxattr(path.c_str(), name, value, size, 0);
    if (rc == 0) continue;
    int err = errno;
    if (err == ENOTSUP || err == EPERM || err == EACCES || err == EINVAL) {
      ++result_.skipped_xattrs;  // namespace, filesystem or privilege does not allow it
      continue;
    }
    return errnoError(err, strCat("set xattr \"", name, "\""));
  }
  return absl::OkStatus();
}

Status LayerWriter::writeRegular(archive* in, archive_entry* entry, int parent,
                                 const std::string& leaf) {
  UniqueFd fd(::openat(parent, leaf.c_str(),
                       O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd) return lastErrnoError("create file");
  const void* block = nullptr;
  size_t size = 0;
  la_int64_t offset = 0;
  for (;;) {
    int r = archive_read_data_block(in, &block, &size, &offset);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) return invalidArgument("read file data: ", archiveError(in));
    const char* p = static_cast<const char*>(block);
    while (size > 0) {
      ssize_t n = ::pwrite(fd.get(), p, size, offset);
      if (n < 0) {
        if (errno == EINTR) continue;
        return lastErrnoError("write file");
      }
      p += n;
      offset += n;
      size -= static_cast<size_t>(n);
    }
  }
  la_int64_t length = archive_entry_size(entry);
  if (::ftruncate(fd.get(), length) != 0) return lastErrnoError("set file size");
  result_.unpacked_size += static_cast<uint64_t>(length);
  RETURN_IF_ERROR(applyOwnership(entry, parent, leaf));
  // chmod after chown: chown clears set-id bits.
  if (::fchmod(fd.get(), archive_entry_perm(entry) & 07777) != 0) {
    return lastErrnoError("chmod");
  }
  RETURN_IF_ERROR(applyXattrs(entry, fd.get(), parent, leaf));
  struct timespec times[2];
  entryTimes(entry, times);
  if (::futimens(fd.get(), times) != 0) return lastErrnoError("set times");
  return absl::OkStatus();
}

Status LayerWriter::makeHardLink(archive_entry* entry,
                                 const std::vector<std::string>& components, int parent) {
  const std::string& leaf = components.back();
  std::string target_name = archive_entry_hardlink(entry);
  auto target = cleanEntryPath(target_name);
  if (!target.ok()) return withContext(target.status(), "hard link target");
  if (target->empty()) return invalidArgument("hard link to the layer root");
  auto target_parent = openDirBeneath(root_fd_, *target, target->size() - 1, false);
  if (!target_parent.ok()) {
    return withContext(target_parent.status(), strCat("hard link target \"", target_name, "\""));
  }
  const std::string& target_leaf = target->back();
  struct stat st;
  if (::fstatat(target_parent->get(), target_leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) {
      return invalidArgument("hard link target \"", target_name,
                             "\" is not an earlier entry of the layer");
    }
    return lastErrnoError(strCat("stat hard link target \"", target_name, "\""));
  }
  if (S_ISDIR(st.st_mode)) {
    return invalidArgument("hard link target \"", target_name, "\" is a directory");
  }
  if (S_ISLNK(st.st_mode)) {
    std::string value(PATH_MAX, '\0');
    ssize_t n = ::readlinkat(target_parent->get(), target_leaf.c_str(), value.data(),
                             value.size());
    if (n < 0) return lastErrnoError(strCat("readlink \"", target_name, "\""));
    value.resize(static_cast<size_t>(n));
    if (symlinkLeavesLayer(*target, value)) {
      return failedPrecondition("hard link target \"", target_name,
                                "\" is a symlink pointing outside the layer (\"", value,
                                "\"); refusing to link it");
    }
  }
  if (*target == components) return absl::OkStatus();  // a link to itself: nothing to do
  bool kept = false;
  RETURN_IF_ERROR(clearLeaf(parent, leaf, false, &kept));
  // Flags 0: a symlink target is linked itself, never followed.
  if (::linkat(target_parent->get(), target_leaf.c_str(), parent, leaf.c_str(), 0) != 0) {
    return lastErrnoError(strCat("link to \"", target_name, "\""));
  }
  return absl::OkStatus();
}

Status LayerWriter::apply(archive* in, archive_entry* entry) {
  const char* raw_name = archive_entry_pathname(entry);
  if (raw_name == nullptr) return invalidArgument("entry without a name");
  ASSIGN_OR_RETURN(std::vector<std::string> components, cleanEntryPath(raw_name));
  ++result_.entries;
  mode_t type = archive_entry_filetype(entry);
  bool hardlink = archive_entry_hardlink(entry) != nullptr;
  struct timespec times[2];
  entryTimes(entry, times);

  if (components.empty()) {  // "./": the layer root's own metadata
    if (hardlink || type != AE_IFDIR) {
      return invalidArgument("the layer root entry is not a directory");
    }
    DeferredDir dir{{}, static_cast<mode_t>(archive_entry_perm(entry) & 07777), {times[0], times[1]}};
    dirs_["."] = dir;
    if (options_.apply_ownership) {
      RETURN_IF_ERROR(applyOwnership(entry, root_fd_, "."));
    }
    return applyXattrs(entry, root_fd_, root_fd_, ".");
  }

  ASSIGN_OR_RETURN(int parent, parentFd(components));
  const std::string& leaf = components.back();
  if (startsWith(leaf, kWhiteoutPrefix)) return applyWhiteout(parent, leaf);
  if (hardlink) return makeHardLink(entry, components, parent);

  bool kept = false;
  RETURN_IF_ERROR(clearLeaf(parent, leaf, type == AE_IFDIR, &kept));
  mode_t perm = archive_entry_perm(entry) & 07777;
  switch (type) {
    case AE_IFREG:
      return writeRegular(in, entry, parent, leaf);
    case AE_IFDIR: {
      if (!kept && ::mkdirat(parent, leaf.c_str(), 0700) != 0) {
        return lastErrnoError("create directory");
      }
      RETURN_IF_ERROR(applyOwnership(entry, parent, leaf));
      UniqueFd dir_fd(::openat(parent, leaf.c_str(),
                               O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!dir_fd) return lastErrnoError("open directory");
      RETURN_IF_ERROR(applyXattrs(entry, dir_fd.get(), parent, leaf));
      dirs_[joinComponents(components)] = DeferredDir{components, perm, {times[0], times[1]}};
      return absl::OkStatus();
    }
    case AE_IFLNK: {
      const char* value = archive_entry_symlink(entry);
      if (value == nullptr) return invalidArgument("symlink without a target");
      if (::symlinkat(value, parent, leaf.c_str()) != 0) return lastErrnoError("create symlink");
      RETURN_IF_ERROR(applyOwnership(entry, parent, leaf));
      RETURN_IF_ERROR(applyXattrs(entry, -1, parent, leaf));
      if (::utimensat(parent, leaf.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) {
        return lastErrnoError("set symlink times");
      }
      return absl::OkStatus();
    }
    case AE_IFCHR:
    case AE_IFBLK:
    case AE_IFIFO: {
      dev_t dev = type == AE_IFIFO ? 0 : archive_entry_rdev(entry);
      if (::mknodat(parent, leaf.c_str(), type | perm, dev) != 0) {
        int err = errno;
        if (err == EPERM) {
          return absl::PermissionDeniedError(
              "creating device nodes needs root (CAP_MKNOD); unpack this layer as root");
        }
        return errnoError(err, "mknod");
      }
      RETURN_IF_ERROR(applyOwnership(entry, parent, leaf));
      // The leaf was just created by us as a node in our private directory.
      if (::fchmodat(parent, leaf.c_str(), perm, 0) != 0) return lastErrnoError("chmod");
      RETURN_IF_ERROR(applyXattrs(entry, -1, parent, leaf));
      if (::utimensat(parent, leaf.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) {
        return lastErrnoError("set times");
      }
      return absl::OkStatus();
    }
    case AE_IFSOCK:
      return absl::OkStatus();  // sockets cannot be meaningfully restored
    default:
      return invalidArgument("unsupported entry type 0", std::to_string(type));
  }
}

Status LayerWriter::finish() {
  cached_parent_.reset();
  std::vector<const DeferredDir*> order;
  for (const auto& [path, dir] : dirs_) order.push_back(&dir);
  std::sort(order.begin(), order.end(), [](const DeferredDir* a, const DeferredDir* b) {
    return a->components.size() > b->components.size();
  });
  for (const DeferredDir* dir : order) {
    if (dir->components.empty()) {
      if (::fchmod(root_fd_, dir->mode) != 0) return lastErrnoError("chmod layer root");
      if (::futimens(root_fd_, dir->times) != 0) return lastErrnoError("set layer root times");
      continue;
    }
    // A directory later replaced or whited out is skipped.
    auto parent = openDirBeneath(root_fd_, dir->components, dir->components.size() - 1, false);
    if (!parent.ok()) continue;
    const std::string& leaf = dir->components.back();
    struct stat st;
    if (::fstatat(parent->get(), leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 ||
        !S_ISDIR(st.st_mode)) {
      continue;
    }
    std::string shown = joinComponents(dir->components);
    if (::fchmodat(parent->get(), leaf.c_str(), dir->mode, 0) != 0) {
      return lastErrnoError(strCat("chmod directory \"", shown, "\""));
    }
    if (::utimensat(parent->get(), leaf.c_str(), dir->times, AT_SYMLINK_NOFOLLOW) != 0) {
      return lastErrnoError(strCat("set times of directory \"", shown, "\""));
    }
  }
  return absl::OkStatus();
}

// Reads every entry of the tar stream into `writer`; the stream is fully hashed.
Status applyStream(TarStream& stream, LayerWriter& writer) {
  ArchivePtr in(archive_read_new());
  if (!in) return internalError("archive_read_new failed");
  archive_read_support_format_tar(in.get());
  archive_read_support_format_empty(in.get());
  if (archive_read_open(in.get(), &stream, nullptr, readCallback, nullptr) != ARCHIVE_OK) {
    std::string cause = stream.error().empty() ? archiveError(in.get()) : stream.error();
    return invalidArgument("read tar stream: ", cause);
  }
  for (;;) {
    archive_entry* entry = nullptr;
    int r = archive_read_next_header(in.get(), &entry);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) {
      std::string cause = stream.error().empty() ? archiveError(in.get()) : stream.error();
      return invalidArgument("read tar stream: ", cause);
    }
    const char* name = archive_entry_pathname(entry);
    RETURN_IF_ERROR_CTX(writer.apply(in.get(), entry),
                        strCat("entry \"", name != nullptr ? name : "", "\""));
  }
  return stream.drain();
}

// Fails unless `target` is missing or an empty directory.
Status checkTarget(const std::string& target) {
  struct stat st;
  if (::lstat(target.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return lastErrnoError(strCat("stat target \"", target, "\""));
  }
  if (!S_ISDIR(st.st_mode)) {
    return failedPrecondition("target \"", target, "\" exists and is not a directory");
  }
  ASSIGN_OR_RETURN(std::vector<std::string> names, fs::listDir(target));
  if (!names.empty()) {
    return failedPrecondition("target \"", target,
                              "\" is not empty; unpack into a new directory");
  }
  return absl::OkStatus();
}

StatusOr<UnpackResult> unpackInto(int fd, const std::string& tmp, const std::string& target,
                                  const UnpackOptions& options) {
  UniqueFd root(::open(tmp.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!root) return lastErrnoError(strCat("open \"", tmp, "\""));
  UnpackResult result;
  TarStream stream;
  RETURN_IF_ERROR(stream.open(fd));
  LayerWriter writer(root.get(), options, result);
  RETURN_IF_ERROR(applyStream(stream, writer));
  result.diff_id = stream.digest();
  result.uncompressed_size = stream.total();
  if (options.expected_diff_id && *options.expected_diff_id != result.diff_id) {
    return absl::DataLossError(strCat("diffID mismatch: the uncompressed layer has ",
                                      result.diff_id, " but ", *options.expected_diff_id,
                                      " was expected; the blob is corrupt or not this layer"));
  }
  if (!writer.rootEntrySeen() && ::fchmod(root.get(), 0755) != 0) {
    return lastErrnoError("chmod layer root");
  }
  RETURN_IF_ERROR(writer.finish());
  if (options.sync && ::syncfs(root.get()) != 0) return lastErrnoError("sync layer");
  if (::rename(tmp.c_str(), target.c_str()) != 0) {
    int err = errno;
    if (err == ENOTEMPTY || err == EEXIST) {
      return failedPrecondition("target \"", target,
                                "\" appeared concurrently and is not empty");
    }
    return errnoError(err, strCat("rename \"", tmp, "\" to \"", target, "\""));
  }
  return result;
}

}  // namespace

StatusOr<UnpackResult> unpackLayerFd(int fd, const std::string& target_dir,
                                     const UnpackOptions& options) {
  std::string display =
      options.display_name.empty() ? strCat("fd ", fd) : options.display_name;
  std::string context = strCat("unpack layer \"", display, "\"");
  if (options.expected_diff_id) {
    RETURN_IF_ERROR_CTX(parseSha256Digest(*options.expected_diff_id).status(),
                        strCat(context, ": expected diffID"));
  }
  std::string target = target_dir;
  while (target.size() > 1 && target.back() == '/') target.pop_back();
  if (target.empty() || target == "/") {
    return invalidArgument(context, ": target directory \"", target_dir, "\" is not usable");
  }
  RETURN_IF_ERROR_CTX(checkTarget(target), context);
  std::string tmp = target + ".tmp-XXXXXX";
  if (::mkdtemp(tmp.data()) == nullptr) {
    return withContext(lastErrnoError(strCat("create \"", tmp, "\"")), context);
  }
  ScopeGuard cleanup([&tmp] { (void)fs::removeAll(tmp); });
  auto result = unpackInto(fd, tmp, target, options);
  if (!result.ok()) return withContext(result.status(), context);
  cleanup.dismiss();
  return result;
}

StatusOr<UnpackResult> unpackLayer(const std::string& layer_path, const std::string& target_dir,
                                   const UnpackOptions& options) {
  UnpackOptions opts = options;
  if (opts.display_name.empty()) opts.display_name = layer_path;
  UniqueFd fd(::open(layer_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    return withContext(lastErrnoError(strCat("open \"", layer_path, "\"")),
                       strCat("unpack layer \"", opts.display_name, "\""));
  }
  return unpackLayerFd(fd.get(), target_dir, opts);
}

}  // namespace berth::image
