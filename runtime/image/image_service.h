// The image service: what CRI ImageService (runtime.v1 PullImage, ListImages,
// ImageStatus, RemoveImage, ImageFsInfo) and the image CLI stand on. It ties together
// the registry client, the content store, layer unpack, the snapshotter and the image
// records.
//
// On-disk layout under the image root (berthd's --root, default /var/lib/berth):
//   content/     ContentStore (blobs/sha256/..., ingest/)
//   snapshots/   Snapshotter (one directory per layer chain ID / container)
//   image.lock   flock: shared while a pull or import registers content, exclusive
//                while garbage is collected (berthd and the CLI may share a root)
// Image records and snapshot metadata live in the Database passed in (berth.db).
//
// Pull (OCI distribution-spec "Pull"): the reference is normalised as kubelet does
// ("busybox" -> "docker.io/library/busybox:latest"); registries.conf decides the
// endpoints (mirrors first, blocked registries refused, insecure ones allowed plain
// HTTP); the first endpoint that serves the manifest is used for the whole pull. An
// index is resolved to the service's platform (linux/amd64 by default). Config and
// layers are fetched into the content store, at most `max_concurrent_downloads` at a
// time across all pulls; a blob already being downloaded by another pull is waited for,
// not fetched twice. Layers are unpacked in order as their downloads finish, each once
// per chain ID. The image record is written last: until then nothing of the pull is
// visible; if the pull fails, blobs and snapshots it added that no image references are
// removed again.
//
// Thread-safety: an ImageService is thread-safe; pulls, imports, removals and GC may run
// concurrently from any threads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/sqlite.h"
#include "common/status.h"
#include "runtime/image/content_store.h"
#include "runtime/image/image_archive.h"
#include "runtime/image/image_config.h"
#include "runtime/image/image_store.h"
#include "runtime/image/manifest.h"
#include "runtime/image/registries_conf.h"
#include "runtime/image/registry_client.h"
#include "runtime/image/snapshotter.h"

namespace berth::image {

struct ImageServiceOptions {
  std::string root = "/var/lib/berth";  // content/ and snapshots/ go below
  // registries.conf(5) v2 file; "" reads /etc/containers/registries.conf when it
  // exists and uses no rules otherwise. A named file must exist.
  std::string registries_conf;
  std::string certs_dir = "/etc/containers/certs.d";
  // host[:port] of registries to reach over plain HTTP (or unverified TLS) in addition
  // to registries.conf's insecure entries, like containerd's --plain-http for one host
  // or CRI-O's --insecure-registry. Appended as [[registry]] entries with
  // insecure = true, so a conf entry for the same prefix takes precedence.
  std::vector<std::string> insecure_registries;
  Platform platform = defaultPlatform();
  int max_concurrent_downloads = 3;
  RegistryClientOptions client;
};

// Space used by images (for CRI ImageFsInfo).
struct ImageFsUsage {
  int64_t content_bytes = 0;    // blobs (compressed layers, manifests, configs)
  int64_t content_inodes = 0;
  int64_t snapshot_bytes = 0;   // unpacked layers and containers' writable layers
  int64_t snapshot_inodes = 0;
};

// What garbageCollect() removed.
struct ImageGcResult {
  std::vector<std::string> removed_blobs;
  std::vector<std::string> removed_snapshots;  // chain IDs
  int64_t freed_content_bytes = 0;
};

class ImageService {
 public:
  // Opens the stores under options.root with metadata in `db` (which must outlive
  // the service) and loads registries.conf. Errors: directory, database and
  // registries.conf errors (with file:line), each naming the path.
  static StatusOr<std::unique_ptr<ImageService>> open(const ImageServiceOptions& options,
                                                      Database* db);
  ~ImageService();

  // Pulls `reference` (CRI PullImageRequest.image.image) with `credentials` (CRI
  // AuthConfig) and returns the recorded image. Errors name the image, the registry
  // endpoint(s) tried, the object (manifest / config / layer digest and index) and the
  // cause: InvalidArgument for a malformed reference, PermissionDenied for a blocked
  // registry, NotFound / Unauthenticated / PermissionDenied / Unavailable /
  // ResourceExhausted from the registry (the last endpoint's code when all fail),
  // NotFound when no manifest matches the platform, InvalidArgument for an unknown
  // media type, DataLoss for content that does not match its digest or diff ID,
  // ResourceExhausted for a full disk.
  StatusOr<ImageRecord> pull(const std::string& reference, const Credentials& credentials = {});

  // The image named `name`: an ID, an ID prefix of >= 12 hex digits, or a reference
  // (normalised here, so "busybox:1.36" works). Errors: NotFound.
  StatusOr<ImageRecord> status(const std::string& name) const;

  // Every image, sorted by ID.
  StatusOr<std::vector<ImageRecord>> list() const;

  // The parsed config of an image (CRI ImageStatus verbose info, container defaults).
  // Errors: NotFound when the config blob is missing, parse errors.
  StatusOr<ImageConfig> config(const ImageRecord& image) const;

  // CRI RemoveImage: removes the image `name` resolves to, with all its names.
  // Idempotent: an unknown name is OK. Blobs and snapshots are freed by GC.
  Status remove(const std::string& name);

  // Removes one tag or repo digest; the image goes when it was its last name.
  // Errors: NotFound; InvalidArgument when `name` is an ID (use remove()).
  Status untag(const std::string& name);

  // Removes every blob and committed snapshot no image references (snapshots under a
  // container's active snapshot are kept). Errors: I/O and database errors.
  StatusOr<ImageGcResult> garbageCollect();

  // Space used under the root. Errors: directory read errors.
  StatusOr<ImageFsUsage> fsUsage() const;

  // Imports every image of an OCI layout (dir or tar) or docker save archive (see
  // image_archive.h) and records them as a pull would (unpacking layers). Unnamed
  // images are recorded by ID only. Errors: as importArchive(), plus unpack errors.
  StatusOr<std::vector<ImageRecord>> importArchive(const std::string& path);

  // Exports the images `names` (resolved as status() does) to `path`.
  // Errors: NotFound for an unknown name, as exportArchive().
  Status exportArchive(const std::vector<std::string>& names, const std::string& path,
                       ArchiveFormat format);

  ContentStore& content();
  Snapshotter& snapshotter();
  const ImageServiceOptions& options() const;

  class Impl;

 private:
  explicit ImageService(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace berth::image
