// Helpers shared by image_archive.cc (import) and image_archive_export.cc (export).
// Not part of the public contract (see image_archive.h).
//
// Thread-safety: pure functions and value types, thread-safe; callers own the fds and
// libarchive handles they create.
#pragma once

#include <archive.h>
#include <archive_entry.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "common/unique_fd.h"
#include "runtime/image/content_store.h"
#include "runtime/image/manifest.h"

namespace berth::image::archive_internal {

// Chunk size for streaming archive members and blobs.
inline constexpr size_t kCopyBlock = 128 * 1024;
// Largest JSON document (index.json, manifest.json, manifests, configs) read to memory.
inline constexpr int64_t kMaxDocumentSize = 16 << 20;
// OCI image layout annotation and file names (image-spec image-layout.md,
// annotations.md) and containerd's image name annotation.
inline constexpr char kRefNameAnnotation[] = "org.opencontainers.image.ref.name";
inline constexpr char kContainerdNameAnnotation[] = "io.containerd.image.name";
inline constexpr char kOciLayoutFile[] = "oci-layout";
inline constexpr char kIndexFile[] = "index.json";
inline constexpr char kDockerManifestFile[] = "manifest.json";
inline constexpr char kRepositoriesFile[] = "repositories";
inline constexpr char kBlobsPrefix[] = "blobs/sha256/";

struct ArchiveReadFree {
  void operator()(archive* a) const { archive_read_free(a); }
};
using ArchiveReadPtr = std::unique_ptr<archive, ArchiveReadFree>;
struct ArchiveWriteFree {
  void operator()(archive* a) const { archive_write_free(a); }
};
using ArchiveWritePtr = std::unique_ptr<archive, ArchiveWriteFree>;
struct EntryFree {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};
using EntryPtr = std::unique_ptr<archive_entry, EntryFree>;

// libarchive's last error message for `a` ("unknown libarchive error" when none).
std::string archiveError(archive* a);

// Normalises a path inside an archive: leading "./" and "/"-runs are collapsed, "."
// components dropped and ".." components resolved lexically. Returns nullopt for an
// absolute name or one whose ".." climbs above the archive root, and, when
// `allow_dotdot` is false, for any name with a ".." component at all.
std::optional<std::string> cleanArchivePath(std::string_view name, bool allow_dotdot);

// Opens an unnamed read-write temp file in `dir` (O_TMPFILE, falling back to a
// mkstemp file unlinked at once), so nothing is left behind even after a crash.
// Errors: open errors with the directory.
StatusOr<UniqueFd> openAnonymousTempFile(const std::string& dir);

// 16 random hex characters for temporary names.
std::string randomHex();

// The descriptor as OCI JSON (mediaType, digest, size and the optional fields).
json::Json descriptorToJson(const Descriptor& d);

// Classifies what kind of document a descriptor points at.
bool isIndexMediaType(std::string_view t);
bool isManifestMediaType(std::string_view t);

// Makes the blob of `d` available in the store for the walk: returns true when it is
// (already there or copied in), false when the source does not have it.
using EnsureBlob = std::function<StatusOr<bool>(const Descriptor& d)>;

// Walks the graph below `root` (index -> manifests -> config + layers), calling
// `ensure` on every descriptor and appending each blob once (by digest, in visit
// order) to `out`. Every blob must be present with its descriptor's size; only the
// manifests of an index may be missing (a partial multi-platform image, as
// `ctr export --platform` writes), but at least one must be present. Manifests and
// indexes are read from `store` and parsed leniently (artifact manifests are walked
// too). Errors: NotFound naming the missing blob, DataLoss for a size mismatch,
// InvalidArgument for a malformed document or an unsupported digest.
Status walkImage(ContentStore& store, const Descriptor& root, const EnsureBlob& ensure,
                 std::vector<Descriptor>* out, std::set<std::string>* seen);

// Copies everything from `fd` (from its current offset) into `writer` and commits.
// Errors: read errors naming `what`, the writer's write/commit errors.
Status copyFdToWriter(int fd, ContentStore::Writer& writer, std::string_view what);

}  // namespace berth::image::archive_internal
