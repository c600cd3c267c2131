// ImageService::pull and the registration step it shares with import: resolve the
// platform manifest, fetch config and layers (bounded, shared between pulls), unpack
// layers into snapshots in order, write the image record last.
#include <chrono>
#include <thread>
#include <variant>

#include "common/log.h"
#include "runtime/image/image_service_impl.h"
#include "runtime/image/reference.h"
#include "runtime/image/unpack.h"

namespace berth::image {
namespace {

std::string platformOf(const ImageConfig& config) {
  std::string p = strCat(config.os, "/", config.architecture);
  if (!config.variant.empty()) p += strCat("/", config.variant);
  return p;
}

// Adds `value` to `list` if absent.
void addUnique(std::vector<std::string>& list, const std::string& value) {
  for (const std::string& v : list) {
    if (v == value) return;
  }
  list.push_back(value);
}

}  // namespace

ImageService::Impl::~Impl() {
  std::unique_lock<std::mutex> lock(mu);
  idle.wait(lock, [this] { return workers == 0; });
}

void ImageService::Impl::spawn(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(mu);
    ++workers;
  }
  std::thread([this, fn = std::move(fn)] {
    fn();
    std::lock_guard<std::mutex> lock(mu);
    if (--workers == 0) idle.notify_all();
  }).detach();
}

std::vector<std::shared_future<Status>> ImageService::Impl::ensureAll(
    const std::vector<Descriptor>& blobs, const std::vector<std::string>& whats,
    const BlobEnsurer& ensure) {
  std::vector<std::shared_future<Status>> futures;
  for (size_t i = 0; i < blobs.size(); ++i) {
    auto promise = std::make_shared<std::promise<Status>>();
    futures.push_back(promise->get_future().share());
    spawn([promise, blob = blobs[i], what = whats[i], ensure] {
      promise->set_value(ensure(blob, what));
    });
  }
  return futures;
}

Status ImageService::Impl::downloadShared(const RegistryEndpoint& endpoint,
                                          const std::string& repository,
                                          const Credentials& credentials,
                                          const Descriptor& blob, const std::string& what) {
  if (content->exists(blob.digest)) return absl::OkStatus();
  std::shared_future<Status> theirs;
  std::shared_ptr<std::promise<Status>> mine;
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = inflight.find(blob.digest);
    if (it != inflight.end()) {
      theirs = it->second;
    } else {
      mine = std::make_shared<std::promise<Status>>();
      inflight.emplace(blob.digest, mine->get_future().share());
    }
  }
  if (!mine) {
    Status st = theirs.get();
    if (!st.ok()) return withContext(st, strCat(what, " (shared download)"));
    return st;
  }
  Status st = downloadOne(endpoint, repository, credentials, blob, what);
  {
    std::lock_guard<std::mutex> lock(mu);
    inflight.erase(blob.digest);
  }
  mine->set_value(st);
  return st;
}

Status ImageService::Impl::downloadOne(const RegistryEndpoint& endpoint,
                                       const std::string& repository,
                                       const Credentials& credentials, const Descriptor& blob,
                                       const std::string& what) {
  download_slots.acquire();
  struct Release {
    std::counting_semaphore<1024>& s;
    ~Release() { s.release(); }
  } release{download_slots};
  if (content->exists(blob.digest)) return absl::OkStatus();
  auto started = std::chrono::steady_clock::now();
  ASSIGN_OR_RETURN(auto writer,
                   withContext(content->openWriter(blob.digest, blob.size), what));
  RETURN_IF_ERROR_CTX(
      client->fetchBlob(endpoint, repository, blob, credentials,
                        [&](std::string_view data) { return writer->write(data); }),
      what);
  RETURN_IF_ERROR_CTX(writer->commit(), what);
  log::get("image")->debug(
      "{}: {} bytes from {} in {} ms", what, blob.size, endpoint.host,
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                            started)
          .count());
  return absl::OkStatus();
}

StatusOr<ImageRecord> ImageService::Impl::registerImage(const Registration& reg,
                                                        const ManifestLoader& load,
                                                        const BlobEnsurer& ensure) {
  const std::string& d = reg.display;
  ASSIGN_OR_RETURN(ManifestDocument doc,
                   parseManifestDocument(reg.top_bytes, reg.top_media_type, d));
  std::vector<std::pair<std::string, std::string>> documents;  // digest, bytes
  documents.emplace_back(reg.top_digest, reg.top_bytes);
  Manifest manifest;
  std::string manifest_digest = reg.top_digest;
  std::string manifest_media_type = reg.top_media_type;
  if (auto* index = std::get_if<Index>(&doc)) {
    ASSIGN_OR_RETURN(Descriptor chosen,
                     selectPlatform(*index, options.platform, reg.image_name));
    std::string what = strCat(d, ": manifest ", chosen.digest, " for ",
                              chosen.platform ? chosen.platform->string() : "");
    ASSIGN_OR_RETURN(std::string bytes, load(chosen, what));
    ASSIGN_OR_RETURN(manifest, parseManifest(bytes, chosen.mediaType, what));
    documents.emplace_back(chosen.digest, std::move(bytes));
    manifest_digest = chosen.digest;
    manifest_media_type = manifest.mediaType;
  } else {
    manifest = std::get<Manifest>(doc);
    manifest_media_type = manifest.mediaType;
  }

  // Refuse layers we cannot unpack before fetching anything.
  const size_t n = manifest.layers.size();
  std::vector<std::string> layer_whats;
  for (size_t i = 0; i < n; ++i) {
    const Descriptor& layer = manifest.layers[i];
    layer_whats.push_back(strCat(d, ": layer ", i + 1, " of ", n, " (", layer.digest, ")"));
    RETURN_IF_ERROR_CTX(classifyLayer(layer.mediaType).status(), layer_whats.back());
  }

  for (const auto& [digest, bytes] : documents) {
    if (!content->exists(digest)) {
      RETURN_IF_ERROR_CTX(content->writeBlob(digest, bytes), strCat(d, ": store ", digest));
    }
  }

  // The config first (small), then every layer at once.
  const std::string config_what = strCat(d, ": config ", manifest.config.digest);
  RETURN_IF_ERROR(ensure(manifest.config, config_what));
  ASSIGN_OR_RETURN(std::string config_bytes,
                   withContext(content->readBlob(manifest.config.digest), config_what));
  ASSIGN_OR_RETURN(ImageConfig config, parseImageConfig(config_bytes, config_what));
  if (config.diffIds.size() != n) {
    return invalidArgument(config_what, ": rootfs.diff_ids lists ", config.diffIds.size(),
                           " layers but manifest ", manifest_digest, " has ", n,
                           "; the image is malformed, rebuild or re-push it");
  }
  std::vector<std::string> chains = chainIds(config.diffIds);

  std::vector<std::shared_future<Status>> downloads =
      ensureAll(manifest.layers, layer_whats, ensure);
  Status failure;
  for (size_t i = 0; i < n; ++i) {
    Status st = downloads[i].get();
    if (!st.ok()) {
      failure = st;
      break;
    }
    if (snapshotter->committed(chains[i]).ok()) continue;
    ASSIGN_OR_RETURN(std::string layer_path,
                     withContext(content->path(manifest.layers[i].digest), layer_whats[i]));
    UnpackOptions unpack;
    unpack.display_name = manifest.layers[i].digest;  // prepareLayer prefixes the rest
    unpack.expected_diff_id = config.diffIds[i];
    unpack.sync = false;  // prepareLayer syncs the snapshot before committing it
    auto snap = snapshotter->prepareLayer(
        chains[i], i == 0 ? "" : chains[i - 1], layer_whats[i],
        [&](const std::string& dir) -> Status {
          return unpackLayer(layer_path, dir, unpack).status();
        });
    if (!snap.ok()) {
      failure = snap.status();
      break;
    }
  }
  if (!failure.ok()) {
    // Let this pull's downloads finish (they are bounded by timeouts) so nothing keeps
    // writing into the store while the caller cleans up.
    for (auto& f : downloads) f.wait();
    return failure;
  }

  ImageRecord record;
  record.id = manifest.config.digest;
  record.repo_tags = reg.repo_tags;
  record.repo_digests = reg.repo_digests;
  record.manifest_digest = manifest_digest;
  record.manifest_media_type = manifest_media_type;
  record.config_media_type = manifest.config.mediaType;
  record.platform = platformOf(config);
  record.diff_ids = config.diffIds;
  record.chain_ids = chains;
  record.size = manifest.config.size;
  for (const auto& [digest, bytes] : documents) addUnique(record.blobs, digest);
  addUnique(record.blobs, manifest.config.digest);
  for (const Descriptor& layer : manifest.layers) {
    record.layer_digests.push_back(layer.digest);
    addUnique(record.blobs, layer.digest);
    record.size += layer.size;
  }
  RETURN_IF_ERROR_CTX(store->put(record), strCat(d, ": record image ", record.id));
  return store->get(record.id);
}

void ImageService::Impl::cleanupAfterFailure(const std::set<std::string>& preexisting_blobs,
                                             const std::set<std::string>& preexisting_chains) {
  auto logger = log::get("image");
  // Exclusive: every other pull and import (in any process) has finished, so anything
  // unreferenced that was not there before is a leftover of a failed registration.
  auto lock = ImageLock::acquire(lock_path, true);
  if (!lock.ok()) {
    logger->warn("clean up after a failed pull: {}; unreferenced content stays until the "
                 "next garbage collection", std::string(lock.status().message()));
    return;
  }
  auto referenced = store->referencedBlobs();
  auto blobs = content->list();
  if (referenced.ok() && blobs.ok()) {
    for (const BlobInfo& blob : *blobs) {
      if (preexisting_blobs.count(blob.digest) || referenced->count(blob.digest)) continue;
      Status st = content->remove(blob.digest);
      if (!st.ok() && !absl::IsNotFound(st)) {
        logger->warn("clean up after a failed pull: {}", std::string(st.message()));
      }
    }
  }
  auto chains = store->referencedChainIds();
  if (chains.ok()) {
    std::set<std::string> keep = *chains;
    keep.insert(preexisting_chains.begin(), preexisting_chains.end());
    auto removed = snapshotter->garbageCollect(keep);
    if (!removed.ok()) {
      logger->warn("clean up after a failed pull: {}", std::string(removed.status().message()));
    }
  }
}

StatusOr<ImageRecord> ImageService::Impl::registerGuarded(const Registration& reg,
                                                          const ManifestLoader& load,
                                                          const BlobEnsurer& ensure) {
  std::set<std::string> pre_blobs;
  std::set<std::string> pre_chains;
  StatusOr<ImageRecord> result;
  {
    ASSIGN_OR_RETURN(ImageLock lock, ImageLock::acquire(lock_path, false));
    ASSIGN_OR_RETURN(std::vector<BlobInfo> blobs, content->list());
    for (const BlobInfo& b : blobs) pre_blobs.insert(b.digest);
    ASSIGN_OR_RETURN(std::vector<SnapshotInfo> snaps, snapshotter->list());
    for (const SnapshotInfo& s : snaps) {
      if (s.kind == SnapshotKind::kCommitted) pre_chains.insert(s.chain_id);
    }
    result = registerImage(reg, load, ensure);
  }
  if (!result.ok()) cleanupAfterFailure(pre_blobs, pre_chains);
  return result;
}

StatusOr<ImageRecord> ImageService::Impl::pullFrom(const PullSource& source,
                                                   const Reference& wanted,
                                                   const Credentials& credentials) {
  ASSIGN_OR_RETURN(Reference src, parseReference(source.reference));
  RegistryEndpoint endpoint{src.registryHost(), source.insecure};
  ASSIGN_OR_RETURN(FetchedManifest top, client->fetchManifest(endpoint, src.path,
                                                              src.manifestReference(),
                                                              credentials));
  Registration reg;
  reg.display = strCat("pull image \"", wanted.string(), "\"");
  reg.image_name = wanted.string();
  if (source.mirror) reg.display += strCat(" from mirror ", source.registry);
  if (wanted.digest.empty()) reg.repo_tags.push_back(strCat(wanted.fullName(), ":", wanted.tag));
  reg.repo_digests.push_back(strCat(wanted.fullName(), "@", top.digest));
  reg.top_bytes = std::move(top.bytes);
  reg.top_media_type = top.media_type;
  reg.top_digest = top.digest;
  ManifestLoader load = [&](const Descriptor& desc, const std::string& what)
      -> StatusOr<std::string> {
    ASSIGN_OR_RETURN(FetchedManifest m,
                     withContext(client->fetchManifest(endpoint, src.path, desc.digest,
                                                       credentials),
                                 what));
    return std::move(m.bytes);
  };
  BlobEnsurer ensure = [this, endpoint, repo = src.path, credentials](
                           const Descriptor& blob, const std::string& what) {
    return downloadShared(endpoint, repo, credentials, blob, what);
  };
  return registerGuarded(reg, load, ensure);
}

StatusOr<ImageRecord> ImageService::pull(const std::string& reference,
                                         const Credentials& credentials) {
  const std::string what = strCat("pull image \"", reference, "\"");
  ASSIGN_OR_RETURN(Reference wanted, withContext(parseReference(reference), what));
  const std::string display = strCat("pull image \"", wanted.string(), "\"");
  ASSIGN_OR_RETURN(std::vector<PullSource> sources,
                   withContext(pullSources(impl_->registries, wanted.string()), display));
  auto started = std::chrono::steady_clock::now();
  std::vector<std::string> failures;
  Status last;
  for (const PullSource& source : sources) {
    StatusOr<ImageRecord> result = impl_->pullFrom(source, wanted, credentials);
    if (result.ok()) {
      log::get("image")->info(
          "pulled {} from {} ({} layers, {} bytes) in {} ms", wanted.string(), source.registry,
          result->layer_digests.size(), result->size,
          std::chrono::duration_cast<std::chrono::milliseconds>(
              std::chrono::steady_clock::now() - started)
              .count());
      return result;
    }
    last = result.status();
    failures.push_back(strCat(source.mirror ? "mirror " : "", source.registry, ": ",
                              std::string(last.message())));
    log::get("image")->warn("{} (endpoint {})", std::string(last.message()), source.registry);
  }
  if (failures.size() == 1) {
    std::string message(last.message());
    // Errors from registration already start with the display text.
    if (message.rfind(display, 0) == 0) return last;
    return withContext(last, display);
  }
  return Status(last.code(), strCat(display, ": every endpoint failed: ",
                                    joinStrings(failures, "; ")));
}

}  // namespace berth::image
