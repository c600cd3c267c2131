// Content-addressed blob store (OCI image-spec "Content Descriptors" / digests):
// manifests, configs and layers stored once under their sha256 digest.
//
// On-disk layout under the store root (e.g. /var/lib/berth/content):
//   blobs/sha256/<64 hex>   committed blobs, read-only (0444), immutable
//   ingest/<hex12>-<rand>   blobs being written; never visible under blobs/
//
// Crash safety: a blob is written to ingest/, verified (size and sha256), fsynced,
// then renamed into blobs/ with RENAME_NOREPLACE and the directory fsynced. So a blob
// under blobs/ is always complete and correct; an interrupted pull leaves at most an
// ingest file, which garbageCollect() removes once it is old enough.
//
// Thread-safety: a ContentStore may be used from any number of threads and processes
// at once: writers of the same digest each use their own ingest file and both commits
// succeed (the first rename wins, the second finds the blob present). A Writer is used
// by one thread at a time. garbageCollect() removes every blob not in `keep`: callers
// must make sure no blob that should be kept is committed concurrently (the image
// store holds its lock across pull-commit and GC).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace berth::image {

// Checks that `digest` is a digest the store can hold: "sha256:" followed by 64
// lowercase hex digits (the only algorithm the store supports; reference.h's
// validateDigest also accepts sha512 for references). Errors: InvalidArgument naming the digest and, for
// another algorithm ("sha512:..."), saying it is unsupported.
Status validateBlobDigest(std::string_view digest);

// Size and modification time of a committed blob.
struct BlobInfo {
  std::string digest;
  int64_t size = 0;  // bytes
  std::chrono::system_clock::time_point modified;
};

// Space used by the store (for CRI ImageFsInfo).
struct StoreUsage {
  int64_t bytes = 0;       // sum of file sizes of blobs and ingest files
  int64_t disk_bytes = 0;  // allocated blocks (st_blocks * 512) of the same files
  int64_t inodes = 0;      // files and directories under the root, the root included
};

// What garbageCollect() removed.
struct GcResult {
  std::vector<std::string> removed_blobs;  // digests
  int removed_ingests = 0;
  int64_t freed_bytes = 0;
};

class ContentStore {
 public:
  // Streams one blob into the store. Created by openWriter(); if destroyed without a
  // successful commit() the ingest file is removed (abort).
  class Writer {
   public:
    virtual ~Writer() = default;
    // Appends `data`, hashing it as it goes. Errors: DataLoss when more bytes than the
    // expected size arrive (the writer is then failed and only abort is possible);
    // write errors (ENOSPC -> ResourceExhausted) with the ingest path.
    virtual Status write(std::string_view data) = 0;
    // Verifies size and digest, fsyncs and moves the blob into place. OK when the
    // blob was already present (idempotent). Errors: DataLoss naming the expected and
    // actual size or digest (the ingest file is removed); FailedPrecondition when
    // called twice or after a failed write; I/O errors with the path.
    virtual Status commit() = 0;
    // Removes the ingest file. Idempotent; implied by destruction without commit().
    virtual void abort() = 0;
    // Bytes written so far.
    virtual int64_t offset() const = 0;
    // The digest this writer was opened for.
    virtual const std::string& digest() const = 0;
  };

  // Opens (creating blobs/sha256 and ingest if needed) the store at `root`.
  // Errors: directory creation errors with the path.
  static StatusOr<std::unique_ptr<ContentStore>> open(const std::string& root);

  // Starts writing the blob `expected_digest` of `expected_size` bytes (-1 when the
  // size is unknown: only the digest is checked). Works whether or not the blob
  // already exists (callers skip downloads with exists()).
  // Errors: InvalidArgument for a malformed digest or a size below -1; file creation
  // errors with the ingest path.
  StatusOr<std::unique_ptr<Writer>> openWriter(const std::string& expected_digest,
                                               int64_t expected_size);

  // Convenience: writes `data` as blob `expected_digest` in one go (manifests,
  // configs). Same errors as openWriter/write/commit.
  Status writeBlob(const std::string& expected_digest, std::string_view data);

  // Size and mtime of a blob. Errors: InvalidArgument (digest), NotFound.
  StatusOr<BlobInfo> info(const std::string& digest) const;

  // The path of a committed blob, for streaming reads (layer unpack).
  // Errors: InvalidArgument (digest), NotFound when it is not in the store.
  StatusOr<std::string> path(const std::string& digest) const;

  // Reads a whole blob of at most `max_size` bytes (manifests, configs) and checks
  // its digest. Errors: InvalidArgument (digest), NotFound, FailedPrecondition when
  // larger than max_size, DataLoss when the content does not match its digest.
  StatusOr<std::string> readBlob(const std::string& digest,
                                 int64_t max_size = 16 << 20) const;

  // True when the blob is committed. A malformed digest is simply not present.
  bool exists(const std::string& digest) const;

  // Removes a blob. Errors: InvalidArgument (digest), NotFound, unlink errors.
  Status remove(const std::string& digest);

  // Every committed blob, sorted by digest. Files under blobs/sha256 that are not
  // digests are skipped. Errors: directory read errors.
  StatusOr<std::vector<BlobInfo>> list() const;

  // Space used by the store. Errors: directory read errors.
  StatusOr<StoreUsage> usage() const;

  // Removes every blob whose digest is not in `keep` and every ingest file last
  // modified more than `ingest_max_age` ago (younger ones may belong to running
  // pulls). Errors: the first unlink/read error (removal continues past none).
  StatusOr<GcResult> garbageCollect(
      const std::set<std::string>& keep,
      std::chrono::seconds ingest_max_age = std::chrono::hours(24));

  const std::string& root() const { return root_; }

 private:
  explicit ContentStore(std::string root);
  std::string blobPath(std::string_view digest) const;  // no existence check

  std::string root_;
  std::string blobs_dir_;   // <root>/blobs/sha256
  std::string ingest_dir_;  // <root>/ingest
};

}  // namespace berth::image
