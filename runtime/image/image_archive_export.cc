// Export of images from the ContentStore as an OCI image layout (directory or tar) or
// a docker save archive; see image_archive.h. The output is built under a temporary
// name beside `path` and renamed into place with RENAME_NOREPLACE, so a failure (or a
// crash) never leaves a partial archive at `path`.
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <map>

#include "common/fs.h"
#include "common/scope_guard.h"
#include "common/sha256.h"
#include "runtime/image/image_archive.h"
#include "runtime/image/image_archive_internal.h"
#include "runtime/image/reference.h"

namespace berth::image {
namespace {

using namespace archive_internal;
using json::Json;

// Where the archive's members go: a directory tree or a tar stream.
class OutputWriter {
 public:
  virtual ~OutputWriter() = default;
  virtual Status addDir(const std::string& name) = 0;
  virtual Status addBytes(const std::string& name, std::string_view data) = 0;
  // Copies `size` bytes of `fd` from offset 0.
  virtual Status addFile(const std::string& name, int fd, int64_t size) = 0;
  // Flushes everything to disk.
  virtual Status finish() = 0;
};

Status writeAllFd(int fd, std::string_view data, const std::string& what) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return lastErrnoError(strCat("write ", what));
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

// Calls `sink` with `size` bytes of `fd` read from offset 0.
template <typename Sink>
Status readFdRange(int fd, int64_t size, const std::string& what, Sink&& sink) {
  std::string buffer(kCopyBlock, '\0');
  int64_t offset = 0;
  while (offset < size) {
    size_t want = static_cast<size_t>(std::min<int64_t>(size - offset, kCopyBlock));
    ssize_t n = ::pread(fd, buffer.data(), want, offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      return lastErrnoError(strCat("read ", what));
    }
    if (n == 0) return absl::DataLossError(strCat(what, ": file shrank while being copied"));
    RETURN_IF_ERROR(sink(std::string_view(buffer.data(), static_cast<size_t>(n))));
    offset += n;
  }
  return absl::OkStatus();
}

class DirOutput : public OutputWriter {
 public:
  explicit DirOutput(std::string root) : root_(std::move(root)) {}

  Status addDir(const std::string& name) override {
    return fs::mkdirAll(fs::join(root_, name), 0755);
  }

  Status addBytes(const std::string& name, std::string_view data) override {
    ASSIGN_OR_RETURN(UniqueFd fd, create(name));
    return writeAllFd(fd.get(), data, strCat("\"", fs::join(root_, name), "\""));
  }

  Status addFile(const std::string& name, int fd, int64_t size) override {
    ASSIGN_OR_RETURN(UniqueFd out, create(name));
    std::string what = strCat("\"", fs::join(root_, name), "\"");
    return readFdRange(fd, size, what, [&](std::string_view chunk) {
      return writeAllFd(out.get(), chunk, what);
    });
  }

  Status finish() override {
    // Files were written without fsync; one syncfs covers them all.
    UniqueFd fd(::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd || ::syncfs(fd.get()) != 0) return lastErrnoError(strCat("sync \"", root_, "\""));
    return absl::OkStatus();
  }

 private:
  StatusOr<UniqueFd> create(const std::string& name) {
    std::string file = fs::join(root_, name);
    UniqueFd fd(::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!fd) return lastErrnoError(strCat("create \"", file, "\""));
    return fd;
  }

  std::string root_;
};

class TarOutput : public OutputWriter {
 public:
  TarOutput(UniqueFd fd, std::string what) : fd_(std::move(fd)), what_(std::move(what)) {}

  Status open() {
    archive_.reset(archive_write_new());
    if (!archive_) return internalError("archive_write_new failed");
    if (archive_write_set_format_pax_restricted(archive_.get()) != ARCHIVE_OK ||
        archive_write_set_bytes_in_last_block(archive_.get(), 1) != ARCHIVE_OK ||
        archive_write_open_fd(archive_.get(), fd_.get()) != ARCHIVE_OK) {
      return error("open tar writer");
    }
    return absl::OkStatus();
  }

  Status addDir(const std::string& name) override {
    return header(name, AE_IFDIR, 0755, 0);
  }

  Status addBytes(const std::string& name, std::string_view data) override {
    RETURN_IF_ERROR(header(name, AE_IFREG, 0644, static_cast<int64_t>(data.size())));
    return writeData(name, data);
  }

  Status addFile(const std::string& name, int fd, int64_t size) override {
    RETURN_IF_ERROR(header(name, AE_IFREG, 0644, size));
    return readFdRange(fd, size, strCat("member \"", name, "\""),
                       [&](std::string_view chunk) { return writeData(name, chunk); });
  }

  Status finish() override {
    if (archive_write_close(archive_.get()) != ARCHIVE_OK) return error("finish tar");
    if (::fsync(fd_.get()) != 0) return lastErrnoError(strCat("fsync ", what_));
    return absl::OkStatus();
  }

 private:
  Status error(std::string_view action) {
    int err = archive_errno(archive_.get());
    std::string msg = strCat(action, " ", what_, ": ", archiveError(archive_.get()));
    return err > 0 ? errnoError(err, msg) : internalError(msg);
  }

  Status header(const std::string& name, mode_t type, mode_t perm, int64_t size) {
    EntryPtr entry(archive_entry_new());
    archive_entry_set_pathname(entry.get(), name.c_str());
    archive_entry_set_filetype(entry.get(), type);
    archive_entry_set_perm(entry.get(), perm);
    archive_entry_set_size(entry.get(), size);
    archive_entry_set_mtime(entry.get(), 0, 0);  // reproducible output
    if (archive_write_header(archive_.get(), entry.get()) != ARCHIVE_OK) {
      return error(strCat("write header of \"", name, "\" to"));
    }
    return absl::OkStatus();
  }

  Status writeData(const std::string& name, std::string_view data) {
    while (!data.empty()) {
      la_ssize_t n = archive_write_data(archive_.get(), data.data(), data.size());
      if (n <= 0) return error(strCat("write \"", name, "\" to"));
      data.remove_prefix(static_cast<size_t>(n));
    }
    return absl::OkStatus();
  }

  UniqueFd fd_;
  std::string what_;
  ArchiveWritePtr archive_;
};

StatusOr<UniqueFd> openBlob(ContentStore& store, const std::string& digest, int64_t* size) {
  ASSIGN_OR_RETURN(std::string file, store.path(digest));
  UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return lastErrnoError(strCat("open blob \"", file, "\""));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return lastErrnoError(strCat("stat blob \"", file, "\""));
  *size = st.st_size;
  return fd;
}

// The normalised form of an item's name, or "" for an unnamed item.
StatusOr<std::string> normalisedName(const ExportItem& item) {
  if (item.name.empty()) return std::string();
  ASSIGN_OR_RETURN(Reference ref, parseReference(item.name));
  return ref.string();
}

std::string labelOf(const ExportItem& item) {
  return item.name.empty() ? item.target.digest : item.name;
}

Status writeOciLayout(const std::vector<ExportItem>& items, ContentStore& store,
                      OutputWriter& out) {
  std::vector<Descriptor> blobs;
  std::set<std::string> seen;
  Json manifests = Json::array();
  EnsureBlob ensure = [&](const Descriptor& d) -> StatusOr<bool> {
    return store.exists(d.digest);
  };
  for (const ExportItem& item : items) {
    ASSIGN_OR_RETURN(std::string name, normalisedName(item));
    RETURN_IF_ERROR_CTX(walkImage(store, item.target, ensure, &blobs, &seen),
                        strCat("image ", labelOf(item)));
    Descriptor d = item.target;
    d.annotations.erase(kRefNameAnnotation);
    d.annotations.erase(kContainerdNameAnnotation);
    if (!name.empty()) {
      d.annotations[kRefNameAnnotation] = name;
      d.annotations[kContainerdNameAnnotation] = name;
    }
    manifests.push_back(descriptorToJson(d));
  }
  RETURN_IF_ERROR(out.addBytes(kOciLayoutFile, R"({"imageLayoutVersion":"1.0.0"})"));
  Json index = {{"schemaVersion", 2},
                {"mediaType", media_type::kOciIndex},
                {"manifests", std::move(manifests)}};
  RETURN_IF_ERROR(out.addBytes(kIndexFile, json::dump(index)));
  RETURN_IF_ERROR(out.addDir("blobs"));
  RETURN_IF_ERROR(out.addDir("blobs/sha256"));
  for (const Descriptor& d : blobs) {
    int64_t size = 0;
    ASSIGN_OR_RETURN(UniqueFd fd, openBlob(store, d.digest, &size));
    RETURN_IF_ERROR(out.addFile(strCat(kBlobsPrefix, d.digest.substr(kSha256Prefix.size())),
                                fd.get(), size));
  }
  return absl::OkStatus();
}

// Decompresses the gzip/zstd blob on `in` into the anonymous temp file `out`,
// returning the digest and size of the uncompressed bytes.
StatusOr<std::pair<std::string, int64_t>> decompressLayer(int in, int out,
                                                          const std::string& what) {
  ArchiveReadPtr a(archive_read_new());
  if (!a) return internalError("archive_read_new failed");
  archive_read_support_filter_all(a.get());
  archive_read_support_format_raw(a.get());
  archive_read_support_format_empty(a.get());
  if (archive_read_open_fd(a.get(), in, kCopyBlock) != ARCHIVE_OK) {
    return absl::DataLossError(strCat("decompress ", what, ": ", archiveError(a.get())));
  }
  Sha256 hasher;
  int64_t size = 0;
  archive_entry* entry = nullptr;
  int r = archive_read_next_header(a.get(), &entry);
  if (r != ARCHIVE_EOF) {
    if (r != ARCHIVE_OK) {
      return absl::DataLossError(strCat("decompress ", what, ": ", archiveError(a.get())));
    }
    std::string buffer(kCopyBlock, '\0');
    for (;;) {
      la_ssize_t n = archive_read_data(a.get(), buffer.data(), buffer.size());
      if (n < 0) {
        return absl::DataLossError(strCat("decompress ", what, ": ", archiveError(a.get())));
      }
      if (n == 0) break;
      std::string_view chunk(buffer.data(), static_cast<size_t>(n));
      hasher.update(chunk);
      size += n;
      RETURN_IF_ERROR(writeAllFd(out, chunk, strCat("decompressed ", what)));
    }
  }
  return std::make_pair(hasher.digest(), size);
}

// One manifest.json entry.
struct DockerEntry {
  std::string manifest_digest;
  std::string config_member;
  std::vector<std::string> layer_members;
  std::vector<Reference> tags;  // tag set, digest cleared
};

class DockerSaveWriter {
 public:
  DockerSaveWriter(ContentStore& store, OutputWriter& out, std::string temp_dir)
      : store_(store), out_(out), temp_dir_(std::move(temp_dir)) {}

  Status add(const ExportItem& item) {
    std::string label = labelOf(item);
    RETURN_IF_ERROR_CTX(addItem(item), strCat("image ", label));
    return absl::OkStatus();
  }

  Status finish() {
    Json manifest = Json::array();
    Json repositories = Json::object();
    for (const DockerEntry& e : entries_) {
      Json tags = e.tags.empty() ? Json(nullptr) : Json::array();
      for (const Reference& ref : e.tags) {
        tags.push_back(ref.familiarName());
        if (e.layer_members.empty()) continue;
        Reference repo = ref;
        repo.tag.clear();
        std::string top = e.layer_members.back();
        repositories[repo.familiarName()][ref.tag] = top.substr(0, top.find('/'));
      }
      manifest.push_back({{"Config", e.config_member},
                          {"RepoTags", std::move(tags)},
                          {"Layers", e.layer_members}});
    }
    RETURN_IF_ERROR(out_.addBytes(kDockerManifestFile, json::dump(manifest)));
    if (!repositories.empty()) {
      RETURN_IF_ERROR(out_.addBytes(kRepositoriesFile, json::dump(repositories)));
    }
    return absl::OkStatus();
  }

 private:
  StatusOr<std::string> readDocument(const Descriptor& d, std::string_view what) {
    RETURN_IF_ERROR(validateBlobDigest(d.digest));
    if (!store_.exists(d.digest)) return notFound(what, " blob ", d.digest, " is missing");
    return store_.readBlob(d.digest, kMaxDocumentSize);
  }

  Status addItem(const ExportItem& item) {
    std::optional<Reference> tag;
    if (!item.name.empty()) {
      ASSIGN_OR_RETURN(Reference ref, parseReference(item.name));
      ref.digest.clear();  // docker save names images by tag only
      if (!ref.tag.empty()) tag = ref;
    }
    Descriptor md = item.target;
    if (isIndexMediaType(md.mediaType)) {
      ASSIGN_OR_RETURN(std::string bytes, readDocument(md, "index"));
      ASSIGN_OR_RETURN(Index index, parseIndex(bytes, md.mediaType, labelOf(item)));
      ASSIGN_OR_RETURN(md, selectPlatform(index, defaultPlatform(), labelOf(item)));
    } else if (!isManifestMediaType(md.mediaType)) {
      return invalidArgument("media type \"", md.mediaType,
                             "\" is not an image manifest or index");
    }
    for (DockerEntry& e : entries_) {
      if (e.manifest_digest == md.digest) {
        if (tag && std::find(e.tags.begin(), e.tags.end(), *tag) == e.tags.end()) {
          e.tags.push_back(*tag);
        }
        return absl::OkStatus();
      }
    }
    ASSIGN_OR_RETURN(std::string bytes, readDocument(md, "manifest"));
    ASSIGN_OR_RETURN(Manifest manifest, parseManifest(bytes, md.mediaType, md.digest));
    DockerEntry entry;
    entry.manifest_digest = md.digest;
    if (tag) entry.tags.push_back(*tag);

    ASSIGN_OR_RETURN(std::string config, readDocument(manifest.config, "config"));
    ASSIGN_OR_RETURN(Json config_doc, json::parse(config, strCat("config ", manifest.config.digest)));
    std::vector<std::string> diff_ids;
    if (config_doc.is_object() && config_doc.contains("rootfs") &&
        config_doc["rootfs"].is_object()) {
      ASSIGN_OR_RETURN(diff_ids, withContext(json::optStringArray(config_doc["rootfs"], "diff_ids"),
                                             strCat("config ", manifest.config.digest)));
    }
    if (!diff_ids.empty() && diff_ids.size() != manifest.layers.size()) {
      return invalidArgument("config ", manifest.config.digest, " lists ", diff_ids.size(),
                             " diff_ids for ", manifest.layers.size(), " layers");
    }
    entry.config_member = strCat(manifest.config.digest.substr(kSha256Prefix.size()), ".json");
    if (written_.insert(entry.config_member).second) {
      RETURN_IF_ERROR(out_.addBytes(entry.config_member, config));
    }
    for (size_t i = 0; i < manifest.layers.size(); ++i) {
      ASSIGN_OR_RETURN(std::string member,
                       withContext(addLayer(manifest.layers[i],
                                            diff_ids.empty() ? "" : diff_ids[i]),
                                   strCat("layer ", i, " (", manifest.layers[i].digest, ")")));
      entry.layer_members.push_back(std::move(member));
    }
    entries_.push_back(std::move(entry));
    return absl::OkStatus();
  }

  // Writes the layer uncompressed as "<diff id hex>/layer.tar"; returns that name.
  StatusOr<std::string> addLayer(const Descriptor& layer, const std::string& diff_id) {
    if (auto it = layer_members_.find(layer.digest); it != layer_members_.end()) {
      return it->second;
    }
    ASSIGN_OR_RETURN(LayerKind kind, classifyLayer(layer.mediaType));
    RETURN_IF_ERROR(validateBlobDigest(layer.digest));
    if (!store_.exists(layer.digest)) return notFound("blob ", layer.digest, " is missing");
    int64_t size = 0;
    ASSIGN_OR_RETURN(UniqueFd blob, openBlob(store_, layer.digest, &size));
    UniqueFd plain;
    std::string digest = layer.digest;
    if (kind.compression == Compression::kNone) {
      plain = std::move(blob);
    } else {
      ASSIGN_OR_RETURN(plain, openAnonymousTempFile(temp_dir_));
      ASSIGN_OR_RETURN(auto result,
                       decompressLayer(blob.get(), plain.get(), strCat("blob ", layer.digest)));
      digest = result.first;
      size = result.second;
    }
    if (!diff_id.empty() && diff_id != digest) {
      return absl::DataLossError(strCat("uncompressed content is ", digest,
                                        " but the config's diff_id is ", diff_id));
    }
    std::string hex = digest.substr(kSha256Prefix.size());
    std::string member = strCat(hex, "/layer.tar");
    if (written_.insert(member).second) {
      RETURN_IF_ERROR(out_.addDir(hex));
      RETURN_IF_ERROR(out_.addFile(member, plain.get(), size));
    }
    layer_members_[layer.digest] = member;
    return member;
  }

  ContentStore& store_;
  OutputWriter& out_;
  std::string temp_dir_;
  std::vector<DockerEntry> entries_;
  std::set<std::string> written_;                     // member names
  std::map<std::string, std::string> layer_members_;  // blob digest -> member
};

std::string parentDir(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

bool endsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

Status writeArchive(const std::vector<ExportItem>& items, ContentStore& store,
                    ArchiveFormat format, const std::string& temp_dir, OutputWriter& out) {
  if (format == ArchiveFormat::kOciLayout) return writeOciLayout(items, store, out);
  DockerSaveWriter writer(store, out, temp_dir);
  for (const ExportItem& item : items) RETURN_IF_ERROR(writer.add(item));
  return writer.finish();
}

}  // namespace

Status exportArchive(const std::vector<ExportItem>& items, ContentStore& store,
                     const std::string& path, ArchiveFormat format) {
  std::string ctx = strCat("export \"", path, "\"");
  if (path.empty()) return invalidArgument("export: empty output path");
  if (items.empty()) return invalidArgument(ctx, ": no images to export");
  if (fs::exists(path)) {
    return alreadyExists(ctx, ": the path already exists; remove it or choose another");
  }
  bool tar = format == ArchiveFormat::kDockerSave || endsWith(path, ".tar");
  std::string temp = strCat(path, ".tmp-", randomHex());
  std::string dir = parentDir(path);
  ScopeGuard cleanup([&] {
    if (tar) {
      ::unlink(temp.c_str());
    } else {
      (void)fs::removeAll(temp);
    }
  });
  std::unique_ptr<OutputWriter> out;
  if (tar) {
    UniqueFd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!fd) return withContext(lastErrnoError(strCat("create \"", temp, "\"")), ctx);
    auto writer = std::make_unique<TarOutput>(std::move(fd), strCat("\"", temp, "\""));
    RETURN_IF_ERROR_CTX(writer->open(), ctx);
    out = std::move(writer);
  } else {
    if (::mkdir(temp.c_str(), 0755) != 0) {
      return withContext(lastErrnoError(strCat("create \"", temp, "\"")), ctx);
    }
    out = std::make_unique<DirOutput>(temp);
  }
  RETURN_IF_ERROR_CTX(writeArchive(items, store, format, dir, *out), ctx);
  RETURN_IF_ERROR_CTX(out->finish(), ctx);
  out.reset();
  if (::renameat2(AT_FDCWD, temp.c_str(), AT_FDCWD, path.c_str(), RENAME_NOREPLACE) != 0) {
    if (errno == EEXIST) {
      return alreadyExists(ctx, ": the path was created while exporting; remove it or "
                                "choose another");
    }
    return withContext(lastErrnoError(strCat("rename \"", temp, "\" to \"", path, "\"")), ctx);
  }
  cleanup.dismiss();
  return absl::OkStatus();
}

}  // namespace berth::image
