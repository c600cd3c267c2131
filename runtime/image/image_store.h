// Image records in the daemon's SQLite database (component "images"): what CRI
// ImageService's ListImages / ImageStatus / RemoveImage serve (runtime.v1 api.proto
// message Image: id, repo_tags, repo_digests, size, uid/username, pinned).
//
// An image is identified by its config digest (the image ID, as in containerd's CRI
// plugin and Docker). A tag ("docker.io/library/busybox:1.36") names at most one
// image: recording an image with a tag another image holds moves the tag. A repo
// digest ("docker.io/library/busybox@sha256:<manifest or index digest>") is what the
// image was pulled or imported by.
//
// Thread-safety: an ImageStore is thread-safe (a mutex around its own transactions).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "common/sqlite.h"
#include "common/status.h"

namespace berth::image {

struct ImageRecord {
  std::string id;                          // config digest "sha256:<hex>"
  std::vector<std::string> repo_tags;      // normalised "domain/path:tag", sorted
  std::vector<std::string> repo_digests;   // normalised "domain/path@sha256:...", sorted
  std::string manifest_digest;             // the platform manifest the layers come from
  std::string manifest_media_type;
  std::string config_media_type;
  std::string platform;                    // "linux/amd64", "linux/arm/v7"
  std::vector<std::string> layer_digests;  // compressed blobs, base first
  std::vector<std::string> diff_ids;       // base first
  std::vector<std::string> chain_ids;      // base first (snapshots)
  // Every blob this image keeps alive in the content store: index(es), manifest,
  // config and layers. GC keeps the union over all images.
  std::vector<std::string> blobs;
  int64_t size = 0;   // bytes: config + compressed layers (what CRI Image.size reports)
  bool pinned = false;  // CRI Image.pinned: never garbage collected by kubelet
  std::chrono::system_clock::time_point created;  // when first recorded
  std::chrono::system_clock::time_point updated;  // last put()
};

class ImageStore {
 public:
  // Opens the store on `db` (migrating its tables; `db` must outlive the store).
  // Errors: database errors.
  static StatusOr<std::unique_ptr<ImageStore>> open(Database* db);

  // Inserts or updates the image `record.id` in one transaction: its fields are
  // replaced, except that repo_tags and repo_digests are merged with those already
  // recorded, and `created` is kept. Any of its tags held by another image is moved
  // to this one (the other image keeps its other names; an image left with no tags
  // and no digests stays, listed by ID, as containerd and CRI-O do).
  // Errors: InvalidArgument for an empty/malformed id or a malformed tag; database.
  Status put(const ImageRecord& record);

  // The image with this ID ("sha256:<hex>"). Errors: NotFound.
  StatusOr<ImageRecord> get(const std::string& id) const;

  // Finds an image by what a user or kubelet passes (CRI ImageSpec.image): an image
  // ID, an unambiguous ID prefix of at least 12 hex digits (with or without
  // "sha256:"), a normalised tag, or a normalised repo digest. Callers normalise
  // references first (reference.h). Errors: NotFound naming `name`;
  // FailedPrecondition for an ambiguous prefix.
  StatusOr<ImageRecord> resolve(const std::string& name) const;

  // Every image, sorted by ID.
  StatusOr<std::vector<ImageRecord>> list() const;

  // Removes one name (tag or repo digest) from the image that holds it; when that was
  // its last name the image record is removed too. Returns true when the image
  // record was removed. Errors: NotFound.
  StatusOr<bool> untag(const std::string& name);

  // Removes the image `id` and all its names. Errors: NotFound.
  Status remove(const std::string& id);

  // Sets CRI's pinned flag. Errors: NotFound.
  Status setPinned(const std::string& id, bool pinned);

  // The union of `blobs` / `chain_ids` over every image, for garbage collection.
  StatusOr<std::set<std::string>> referencedBlobs() const;
  StatusOr<std::set<std::string>> referencedChainIds() const;

  class Impl;

 private:
  explicit ImageStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;

 public:
  ~ImageStore();
};

}  // namespace berth::image
