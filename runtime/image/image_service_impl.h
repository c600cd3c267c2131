// Internal to image_service*.cc: the state behind ImageService and the pieces the pull
// and import paths share. Not a public contract.
#pragma once

#include <condition_variable>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <semaphore>
#include <set>
#include <string>
#include <vector>

#include "common/unique_fd.h"
#include "runtime/image/image_service.h"
#include "runtime/image/reference.h"

namespace berth::image {

// flock(2) on <root>/image.lock through its own open file description, so that
// several holders in one process lock independently. Shared: pulls and imports
// registering content. Exclusive: garbage collection and a failed pull's cleanup.
class ImageLock {
 public:
  static StatusOr<ImageLock> acquire(const std::string& path, bool exclusive);
  ImageLock(ImageLock&&) = default;
  ImageLock& operator=(ImageLock&&) = default;

 private:
  explicit ImageLock(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;  // closing releases the lock
};

// Provides a blob to the content store: downloads it (pull) or checks that it is
// there (import). Errors name the blob.
using BlobEnsurer = std::function<Status(const Descriptor& blob, const std::string& what)>;
// Loads the bytes of a manifest referenced by digest from an index (pull: from the
// registry; import: from the content store).
using ManifestLoader =
    std::function<StatusOr<std::string>(const Descriptor& manifest, const std::string& what)>;

// What one registration (pull or import) produces before the record is written.
struct Registration {
  std::string display;                    // "pull image \"docker.io/library/busybox:1.36\""
  std::string image_name;                 // "docker.io/library/busybox:1.36" or a digest
  std::vector<std::string> repo_tags;
  std::vector<std::string> repo_digests;
  // The top-level document (index or manifest) as fetched/imported.
  std::string top_bytes;
  std::string top_media_type;
  std::string top_digest;
};

class ImageService::Impl {
 public:
  ImageServiceOptions options;
  Database* db = nullptr;
  RegistriesConf registries;
  std::unique_ptr<ContentStore> content;
  std::unique_ptr<Snapshotter> snapshotter;
  std::unique_ptr<ImageStore> store;
  std::unique_ptr<RegistryClient> client;
  std::string lock_path;

  explicit Impl(int max_downloads) : download_slots(max_downloads) {}
  ~Impl();

  // Registers the image described by `reg`: resolves an index to the platform,
  // stores index/manifest/config, ensures every layer blob (concurrently through
  // `ensure`), unpacks layers into snapshots in order and writes the record. On failure
  // removes what it added that nothing references. Holds the shared image lock.
  StatusOr<ImageRecord> registerImage(const Registration& reg, const ManifestLoader& load,
                                      const BlobEnsurer& ensure);

  // registerImage under the shared image lock; after a failure, removes (under the
  // exclusive lock) the blobs and snapshots that appeared meanwhile and nothing
  // references, so a failed pull or import leaves the store as it was.
  StatusOr<ImageRecord> registerGuarded(const Registration& reg, const ManifestLoader& load,
                                        const BlobEnsurer& ensure);

  // One pull attempt against one endpoint (a mirror or the primary location).
  StatusOr<ImageRecord> pullFrom(const PullSource& source, const Reference& wanted,
                                 const Credentials& credentials);

  // Downloads `blob` from the registry into the content store, unless present; a
  // download already running for the same digest (any pull) is joined instead.
  Status downloadShared(const RegistryEndpoint& endpoint, const std::string& repository,
                        const Credentials& credentials, const Descriptor& blob,
                        const std::string& what);

  // Starts `ensure` for every blob at once, bounded by download_slots inside `ensure`
  // for downloads; returns one future per blob, in order.
  std::vector<std::shared_future<Status>> ensureAll(const std::vector<Descriptor>& blobs,
                                                    const std::vector<std::string>& whats,
                                                    const BlobEnsurer& ensure);

 private:
  Status downloadOne(const RegistryEndpoint& endpoint, const std::string& repository,
                     const Credentials& credentials, const Descriptor& blob,
                     const std::string& what);
  // Removes blobs and committed snapshots that are not in the pre-existing sets and
  // that no image references (called after a failed registration).
  void cleanupAfterFailure(const std::set<std::string>& preexisting_blobs,
                           const std::set<std::string>& preexisting_chains);
  // Runs `fn` on a tracked worker thread; the destructor waits for all of them.
  void spawn(std::function<void()> fn);

  std::counting_semaphore<1024> download_slots;
  std::mutex mu;
  std::condition_variable idle;
  int workers = 0;                                           // guarded by mu
  std::map<std::string, std::shared_future<Status>> inflight;  // guarded by mu
};

}  // namespace berth::image
