#include "csi/tree_archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include "common/fs.h"
#include "common/unique_fd.h"

namespace berth::csi {
namespace {

constexpr char kRoot[] = "data";
constexpr size_t kZeroChunk = 1 << 20;

struct ReadDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};
struct WriteDeleter {
  void operator()(archive* a) const { archive_write_free(a); }
};
struct EntryDeleter {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};
struct ResolverDeleter {
  void operator()(archive_entry_linkresolver* r) const { archive_entry_linkresolver_free(r); }
};
using ReadPtr = std::unique_ptr<archive, ReadDeleter>;
using WritePtr = std::unique_ptr<archive, WriteDeleter>;
using EntryPtr = std::unique_ptr<archive_entry, EntryDeleter>;

Status archiveError(archive* a, std::string_view what) {
  const char* msg = archive_error_string(a);
  int err = archive_errno(a);
  std::string text = strCat(what, ": ", msg != nullptr ? msg : "libarchive error");
  if (err > 0) return errnoError(err, text);
  return internalError(text);
}

// What extraction restores: everything the archive carries, safely.
constexpr int kExtractFlags = ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM |
                              ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_ACL |
                              ARCHIVE_EXTRACT_XATTR | ARCHIVE_EXTRACT_SPARSE |
                              ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT;

StatusOr<WritePtr> newDiskWriter() {
  WritePtr w(archive_write_disk_new());
  if (!w) return internalError("archive_write_disk_new: out of memory");
  archive_write_disk_set_options(w.get(), kExtractFlags);
  return w;
}

// Relative name of `path` under `root` ("" for the root itself).
std::string relativeTo(const std::string& root, const std::string& path) {
  if (path == root) return "";
  if (path.size() > root.size() && path.compare(0, root.size(), root) == 0 &&
      path[root.size()] == '/') {
    return path.substr(root.size() + 1);
  }
  return path;  // cannot happen for a tree walk below root
}

// Maps an archive name ("data" / "data/x") onto `dest`. Errors for anything else.
StatusOr<std::string> mapName(const char* name, const std::string& dest) {
  std::string n = name != nullptr ? name : "";
  while (n.size() > 1 && n.back() == '/') n.pop_back();
  if (n == kRoot) return dest;
  if (n.rfind(std::string(kRoot) + "/", 0) != 0) {
    return invalidArgument("archive entry \"", n, "\" is outside \"", kRoot,
                           "/\": not a berth volume snapshot");
  }
  std::string rel = n.substr(sizeof(kRoot));
  for (const std::string& part : split(rel, '/')) {
    if (part == "..") return invalidArgument("archive entry \"", n, "\" climbs out with \"..\"");
  }
  return fs::join(dest, rel);
}

// Copies one entry's data from a disk or archive reader to an archive writer
// (`to_disk` false: holes are written as zeros, which the pax writer drops again for
// sparse entries) or a disk writer (blocks written at their offsets, holes skipped).
Status copyData(archive* in, archive* out, bool to_disk, int64_t size, std::string_view what) {
  static const std::vector<char> zeros(kZeroChunk, 0);
  int64_t progress = 0;
  for (;;) {
    const void* buf = nullptr;
    size_t len = 0;
    la_int64_t offset = 0;
    int r = archive_read_data_block(in, &buf, &len, &offset);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) return archiveError(in, strCat("read ", what));
    if (to_disk) {
      if (archive_write_data_block(out, buf, len, offset) < ARCHIVE_WARN) {
        return archiveError(out, strCat("write ", what));
      }
      continue;
    }
    while (progress < offset) {
      size_t n = static_cast<size_t>(std::min<int64_t>(offset - progress, kZeroChunk));
      if (archive_write_data(out, zeros.data(), n) < 0) return archiveError(out, strCat("write ", what));
      progress += static_cast<int64_t>(n);
    }
    if (len > 0 && archive_write_data(out, buf, len) < 0) {
      return archiveError(out, strCat("write ", what));
    }
    progress = offset + static_cast<int64_t>(len);
  }
  if (!to_disk) {
    // A trailing hole.
    while (progress < size) {
      size_t n = static_cast<size_t>(std::min<int64_t>(size - progress, kZeroChunk));
      if (archive_write_data(out, zeros.data(), n) < 0) return archiveError(out, strCat("write ", what));
      progress += static_cast<int64_t>(n);
    }
  }
  return absl::OkStatus();
}

// Walks `source` with archive_read_disk and hands every entry, renamed by `rename`, to
// `out` (an archive writer or a disk writer).
template <typename Rename>
Status walkTree(const std::string& source, archive* out, bool to_disk, Rename rename) {
  ReadPtr disk(archive_read_disk_new());
  if (!disk) return internalError("archive_read_disk_new: out of memory");
  archive_read_disk_set_symlink_physical(disk.get());
  archive_read_disk_set_behavior(disk.get(), ARCHIVE_READDISK_NO_TRAVERSE_MOUNTS |
                                                 ARCHIVE_READDISK_NO_FFLAGS);
  if (archive_read_disk_open(disk.get(), source.c_str()) != ARCHIVE_OK) {
    return archiveError(disk.get(), strCat("open \"", source, "\""));
  }
  std::unique_ptr<archive_entry_linkresolver, ResolverDeleter> links(
      archive_entry_linkresolver_new());
  archive_entry_linkresolver_set_strategy(links.get(), ARCHIVE_FORMAT_TAR_PAX_RESTRICTED);
  for (;;) {
    EntryPtr entry(archive_entry_new());
    int r = archive_read_next_header2(disk.get(), entry.get());
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) return archiveError(disk.get(), strCat("walk \"", source, "\""));
    std::string path = archive_entry_sourcepath(entry.get()) != nullptr
                           ? archive_entry_sourcepath(entry.get())
                           : archive_entry_pathname(entry.get());
    archive_read_disk_descend(disk.get());
    archive_entry_set_pathname(entry.get(), rename(relativeTo(source, path)).c_str());
    archive_entry* e = entry.get();
    archive_entry* unused = nullptr;
    archive_entry_linkify(links.get(), &e, &unused);
    if (unused != nullptr) archive_entry_free(unused);
    if (e == nullptr) continue;  // deferred by the resolver (not with the tar strategy)
    if (e != entry.get()) {
      entry.release();
      entry.reset(e);
    }
    if (archive_write_header(out, e) < ARCHIVE_WARN) {
      return archiveError(out, strCat("write entry for \"", path, "\""));
    }
    if (archive_entry_filetype(e) == AE_IFREG && archive_entry_hardlink(e) == nullptr) {
      RETURN_IF_ERROR(copyData(disk.get(), out, to_disk, archive_entry_size(e),
                               strCat("\"", path, "\"")));
    }
    if (to_disk && archive_write_finish_entry(out) < ARCHIVE_WARN) {
      return archiveError(out, strCat("finish \"", path, "\""));
    }
  }
  return absl::OkStatus();
}

Status fsyncPath(const std::string& path, int flags) {
  UniqueFd fd(::open(path.c_str(), flags | O_CLOEXEC));
  if (!fd) return lastErrnoError(strCat("open \"", path, "\" for fsync"));
  if (::fsync(fd.get()) != 0) return lastErrnoError(strCat("fsync \"", path, "\""));
  return absl::OkStatus();
}

std::string dirName(const std::string& path) {
  auto pos = path.rfind('/');
  return pos == std::string::npos || pos == 0 ? "/" : path.substr(0, pos);
}

}  // namespace

StatusOr<int64_t> archiveTree(const std::string& source, const std::string& archive_path) {
  std::string what = strCat("archive \"", source, "\" to \"", archive_path, "\"");
  std::string tmp = archive_path + ".tmp";
  (void)::unlink(tmp.c_str());
  WritePtr w(archive_write_new());
  if (!w) return internalError(what, ": out of memory");
  archive_write_set_format_pax_restricted(w.get());
  if (archive_write_open_filename(w.get(), tmp.c_str()) != ARCHIVE_OK) {
    return withContext(archiveError(w.get(), strCat("create \"", tmp, "\"")), what);
  }
  Status walked = walkTree(source, w.get(), false, [](const std::string& rel) {
    return rel.empty() ? std::string(kRoot) : strCat(kRoot, "/", rel);
  });
  if (!walked.ok()) {
    (void)::unlink(tmp.c_str());
    return withContext(walked, what);
  }
  if (archive_write_close(w.get()) != ARCHIVE_OK) {
    Status s = archiveError(w.get(), strCat("close \"", tmp, "\""));
    (void)::unlink(tmp.c_str());
    return withContext(s, what);
  }
  RETURN_IF_ERROR_CTX(fsyncPath(tmp, O_RDONLY), what);
  if (::rename(tmp.c_str(), archive_path.c_str()) != 0) {
    Status s = lastErrnoError(strCat("rename \"", tmp, "\""));
    (void)::unlink(tmp.c_str());
    return withContext(s, what);
  }
  RETURN_IF_ERROR_CTX(fsyncPath(dirName(archive_path), O_RDONLY | O_DIRECTORY), what);
  struct stat st;
  if (::stat(archive_path.c_str(), &st) != 0) {
    return withContext(lastErrnoError(strCat("stat \"", archive_path, "\"")), what);
  }
  return static_cast<int64_t>(st.st_size);
}

Status extractArchive(const std::string& archive_path, const std::string& dest) {
  std::string what = strCat("restore \"", archive_path, "\" to \"", dest, "\"");
  ReadPtr r(archive_read_new());
  if (!r) return internalError(what, ": out of memory");
  archive_read_support_format_tar(r.get());
  if (archive_read_open_filename(r.get(), archive_path.c_str(), 1 << 16) != ARCHIVE_OK) {
    return withContext(archiveError(r.get(), "open"), what);
  }
  ASSIGN_OR_RETURN(WritePtr w, newDiskWriter());
  for (;;) {
    archive_entry* entry = nullptr;
    int rc = archive_read_next_header(r.get(), &entry);
    if (rc == ARCHIVE_EOF) break;
    if (rc < ARCHIVE_WARN) return withContext(archiveError(r.get(), "read entry"), what);
    ASSIGN_OR_RETURN(std::string target,
                     withContext(mapName(archive_entry_pathname(entry), dest), what));
    archive_entry_set_pathname(entry, target.c_str());
    if (const char* link = archive_entry_hardlink(entry); link != nullptr) {
      ASSIGN_OR_RETURN(std::string mapped, withContext(mapName(link, dest), what));
      archive_entry_set_hardlink(entry, mapped.c_str());
    }
    if (archive_write_header(w.get(), entry) < ARCHIVE_WARN) {
      return withContext(archiveError(w.get(), strCat("create \"", target, "\"")), what);
    }
    if (archive_entry_size(entry) > 0) {
      RETURN_IF_ERROR_CTX(copyData(r.get(), w.get(), true, archive_entry_size(entry),
                                   strCat("\"", target, "\"")),
                          what);
    }
    if (archive_write_finish_entry(w.get()) < ARCHIVE_WARN) {
      return withContext(archiveError(w.get(), strCat("finish \"", target, "\"")), what);
    }
  }
  if (archive_write_close(w.get()) != ARCHIVE_OK) {
    return withContext(archiveError(w.get(), "close"), what);
  }
  return absl::OkStatus();
}

Status copyTree(const std::string& source, const std::string& dest) {
  std::string what = strCat("copy \"", source, "\" to \"", dest, "\"");
  ASSIGN_OR_RETURN(WritePtr w, newDiskWriter());
  Status walked = walkTree(source, w.get(), true, [&](const std::string& rel) {
    return rel.empty() ? dest : fs::join(dest, rel);
  });
  if (!walked.ok()) return withContext(walked, what);
  if (archive_write_close(w.get()) != ARCHIVE_OK) {
    return withContext(archiveError(w.get(), "close"), what);
  }
  return absl::OkStatus();
}

}  // namespace berth::csi
