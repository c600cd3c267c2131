// ImageService: opening the stores, lookups, removal, garbage collection, usage,
// import and export. The pull path is in image_pull.cc.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/log.h"
#include "runtime/image/image_service_impl.h"
#include "runtime/image/reference.h"

namespace berth::image {
namespace {

constexpr char kDefaultRegistriesConf[] = "/etc/containers/registries.conf";

bool looksLikeImageId(const std::string& name) {
  std::string hex = name.rfind("sha256:", 0) == 0 ? name.substr(7) : name;
  if (hex.size() < 12 || hex.size() > 64) return false;
  for (char c : hex) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

StatusOr<ImageLock> ImageLock::acquire(const std::string& path, bool exclusive) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return lastErrnoError(strCat("open image lock \"", path, "\""));
  UniqueFd owned(fd);
  while (::flock(fd, exclusive ? LOCK_EX : LOCK_SH) != 0) {
    if (errno != EINTR) return lastErrnoError(strCat("lock \"", path, "\""));
  }
  return ImageLock(std::move(owned));
}

StatusOr<std::unique_ptr<ImageService>> ImageService::open(const ImageServiceOptions& options,
                                                           Database* db) {
  const std::string what = strCat("open image store under \"", options.root, "\"");
  if (options.max_concurrent_downloads < 1 || options.max_concurrent_downloads > 1024) {
    return invalidArgument(what, ": max concurrent downloads ",
                           options.max_concurrent_downloads, " is outside 1..1024");
  }
  auto impl = std::make_unique<Impl>(options.max_concurrent_downloads);
  impl->options = options;
  impl->db = db;
  RETURN_IF_ERROR_CTX(fs::mkdirAll(options.root, 0711), what);
  impl->lock_path = fs::join(options.root, "image.lock");
  ASSIGN_OR_RETURN(impl->content,
                   withContext(ContentStore::open(fs::join(options.root, "content")), what));
  ASSIGN_OR_RETURN(impl->snapshotter,
                   withContext(Snapshotter::open(fs::join(options.root, "snapshots"), db), what));
  ASSIGN_OR_RETURN(impl->store, withContext(ImageStore::open(db), what));
  if (!options.registries_conf.empty()) {
    ASSIGN_OR_RETURN(impl->registries, loadRegistriesConf(options.registries_conf));
  } else if (fs::exists(kDefaultRegistriesConf)) {
    ASSIGN_OR_RETURN(impl->registries, loadRegistriesConf(kDefaultRegistriesConf));
  }
  for (const std::string& host : options.insecure_registries) {
    if (host.empty() || host.find('/') != std::string::npos) {
      return invalidArgument(what, ": insecure registry \"", host,
                             "\" is not a host[:port]; give e.g. 127.0.0.1:5000");
    }
    bool listed = false;
    for (const RegistryEntry& e : impl->registries.registries) listed |= e.prefix == host;
    if (listed) continue;
    RegistryEntry entry;
    entry.prefix = host;
    entry.location = host;
    entry.insecure = true;
    impl->registries.registries.push_back(entry);
  }
  for (const std::string& warning : impl->registries.warnings) {
    log::get("image")->warn("{}", warning);
  }
  RegistryClientOptions client = options.client;
  client.certs_dir = options.certs_dir;
  ASSIGN_OR_RETURN(impl->client, RegistryClient::create(client));
  return std::unique_ptr<ImageService>(new ImageService(std::move(impl)));
}

ImageService::ImageService(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ImageService::~ImageService() = default;

ContentStore& ImageService::content() { return *impl_->content; }
Snapshotter& ImageService::snapshotter() { return *impl_->snapshotter; }
const ImageServiceOptions& ImageService::options() const { return impl_->options; }

StatusOr<ImageRecord> ImageService::status(const std::string& name) const {
  if (name.empty()) return invalidArgument("image name is empty; give a reference or an ID");
  StatusOr<ImageRecord> found = impl_->store->resolve(name);
  if (found.ok() || !absl::IsNotFound(found.status())) return found;
  StatusOr<Reference> ref = parseReference(name);
  if (!ref.ok()) return found.status();
  StatusOr<ImageRecord> by_ref = impl_->store->resolve(ref->string());
  if (by_ref.ok() || !absl::IsNotFound(by_ref.status())) return by_ref;
  return notFound("image \"", name, "\" not found (as \"", ref->string(),
                  "\"); pull or import it first");
}

StatusOr<std::vector<ImageRecord>> ImageService::list() const { return impl_->store->list(); }

StatusOr<ImageConfig> ImageService::config(const ImageRecord& image) const {
  const std::string what = strCat("image ", image.id, ": config");
  ASSIGN_OR_RETURN(std::string bytes, withContext(impl_->content->readBlob(image.id), what));
  return parseImageConfig(bytes, what);
}

Status ImageService::remove(const std::string& name) {
  StatusOr<ImageRecord> image = status(name);
  if (absl::IsNotFound(image.status())) return absl::OkStatus();
  RETURN_IF_ERROR(image.status());
  Status st = impl_->store->remove(image->id);
  if (absl::IsNotFound(st)) return absl::OkStatus();  // removed meanwhile
  return st;
}

Status ImageService::untag(const std::string& name) {
  if (looksLikeImageId(name)) {
    return invalidArgument("\"", name, "\" is an image ID, not a name; remove the image by ID "
                           "(rm removes every name) or give a tag");
  }
  ASSIGN_OR_RETURN(Reference ref, withContext(parseReference(name), "untag"));
  return impl_->store->untag(ref.string()).status();
}

StatusOr<ImageGcResult> ImageService::garbageCollect() {
  ASSIGN_OR_RETURN(ImageLock lock, ImageLock::acquire(impl_->lock_path, true));
  ImageGcResult result;
  ASSIGN_OR_RETURN(std::set<std::string> blobs, impl_->store->referencedBlobs());
  ASSIGN_OR_RETURN(GcResult content, impl_->content->garbageCollect(blobs));
  result.removed_blobs = std::move(content.removed_blobs);
  result.freed_content_bytes = content.freed_bytes;
  ASSIGN_OR_RETURN(std::set<std::string> chains, impl_->store->referencedChainIds());
  ASSIGN_OR_RETURN(result.removed_snapshots, impl_->snapshotter->garbageCollect(chains));
  log::get("image")->info("garbage collection removed {} blobs ({} bytes) and {} snapshots",
                          result.removed_blobs.size(), result.freed_content_bytes,
                          result.removed_snapshots.size());
  return result;
}

StatusOr<ImageFsUsage> ImageService::fsUsage() const {
  ImageFsUsage usage;
  ASSIGN_OR_RETURN(StoreUsage content, impl_->content->usage());
  usage.content_bytes = content.disk_bytes;
  usage.content_inodes = content.inodes;
  ASSIGN_OR_RETURN(SnapshotUsage snaps, impl_->snapshotter->totalUsage());
  usage.snapshot_bytes = snaps.bytes;
  usage.snapshot_inodes = snaps.inodes;
  return usage;
}

StatusOr<std::vector<ImageRecord>> ImageService::importArchive(const std::string& path) {
  const std::string what = strCat("import \"", path, "\"");
  std::vector<ImageRecord> records;
  std::vector<ImportedImage> imported;
  {
    // Blobs land in the store now and are registered below; GC must not run between.
    ASSIGN_OR_RETURN(ImageLock lock, ImageLock::acquire(impl_->lock_path, false));
    ASSIGN_OR_RETURN(imported, withContext(image::importArchive(path, *impl_->content), what));
  }
  ContentStore& content = *impl_->content;
  ManifestLoader load = [&content](const Descriptor& desc,
                                   const std::string& w) -> StatusOr<std::string> {
    return withContext(content.readBlob(desc.digest), w);
  };
  BlobEnsurer ensure = [&content](const Descriptor& blob, const std::string& w) -> Status {
    if (content.exists(blob.digest)) return absl::OkStatus();
    return notFound(w, ": blob ", blob.digest, " is not in the archive");
  };
  for (const ImportedImage& image : imported) {
    Registration reg;
    reg.image_name = image.name.empty() ? image.target.digest : image.name;
    reg.display = strCat(what, ": image \"", reg.image_name, "\"");
    if (!image.name.empty()) {
      ASSIGN_OR_RETURN(Reference ref, withContext(parseReference(image.name), reg.display));
      if (!ref.tag.empty() && ref.digest.empty()) {
        reg.repo_tags.push_back(strCat(ref.fullName(), ":", ref.tag));
      }
      reg.repo_digests.push_back(strCat(ref.fullName(), "@", image.target.digest));
    }
    ASSIGN_OR_RETURN(reg.top_bytes,
                     withContext(content.readBlob(image.target.digest), reg.display));
    reg.top_media_type = image.target.mediaType;
    reg.top_digest = image.target.digest;
    ASSIGN_OR_RETURN(ImageRecord record, impl_->registerGuarded(reg, load, ensure));
    records.push_back(std::move(record));
  }
  return records;
}

Status ImageService::exportArchive(const std::vector<std::string>& names,
                                   const std::string& path, ArchiveFormat format) {
  std::vector<ExportItem> items;
  for (const std::string& name : names) {
    ASSIGN_OR_RETURN(ImageRecord image, status(name));
    ExportItem item;
    // Export under the name the user gave when it is a reference, else the first tag.
    StatusOr<Reference> ref = parseReference(name);
    if (ref.ok() && !looksLikeImageId(name)) {
      item.name = ref->string();
    } else if (!image.repo_tags.empty()) {
      item.name = image.repo_tags.front();
    }
    item.target.mediaType = image.manifest_media_type;
    item.target.digest = image.manifest_digest;
    ASSIGN_OR_RETURN(BlobInfo info, withContext(impl_->content->info(image.manifest_digest),
                                                strCat("export image \"", name, "\"")));
    item.target.size = info.size;
    items.push_back(std::move(item));
  }
  ASSIGN_OR_RETURN(ImageLock lock, ImageLock::acquire(impl_->lock_path, false));
  return image::exportArchive(items, *impl_->content, path, format);
}

}  // namespace berth::image
