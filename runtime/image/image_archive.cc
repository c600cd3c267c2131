// Import of OCI image layouts (directory or tar, optionally compressed) and docker
// save archives into the ContentStore; see image_archive.h. Tars are read in one pass
// and never extracted: blobs/sha256/<hex> members stream straight into store writers
// (verified against their names), the small JSON documents are kept in memory, and
// other regular members (docker save layer tars and configs, whose digests are not
// known up front) are spooled to anonymous temp files while being hashed, then copied
// into the store only when manifest.json names them.
#include "runtime/image/image_archive.h"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <map>

#include "common/fs.h"
#include "common/sha256.h"
#include "runtime/image/image_archive_internal.h"
#include "runtime/image/reference.h"

namespace berth::image {
namespace archive_internal {

std::string archiveError(archive* a) {
  const char* msg = archive_error_string(a);
  return msg != nullptr ? std::string(msg) : std::string("unknown libarchive error");
}

std::optional<std::string> cleanArchivePath(std::string_view name, bool allow_dotdot) {
  if (name.empty() || name.front() == '/') return std::nullopt;
  std::vector<std::string> parts;
  for (std::string& c : split(name, '/', true)) {
    if (c == ".") continue;
    if (c == "..") {
      if (!allow_dotdot || parts.empty()) return std::nullopt;
      parts.pop_back();
      continue;
    }
    parts.push_back(std::move(c));
  }
  if (parts.empty()) return std::nullopt;  // the archive root itself
  return joinStrings(parts, "/");
}

std::string randomHex() {
  unsigned char bytes[8] = {};
  size_t got = 0;
  while (got < sizeof(bytes)) {
    ssize_t n = ::getrandom(bytes + got, sizeof(bytes) - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    got += static_cast<size_t>(n);
  }
  std::string out;
  static const char kHex[] = "0123456789abcdef";
  for (unsigned char b : bytes) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 0xf]);
  }
  if (got < sizeof(bytes)) out += strCat("-", ::getpid());
  return out;
}

StatusOr<UniqueFd> openAnonymousTempFile(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
  if (fd) return fd;
  if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) {
    return lastErrnoError(strCat("create temp file in \"", dir, "\""));
  }
  std::string tmpl = fs::join(dir, ".berth-archive-XXXXXX");
  fd.reset(::mkostemp(tmpl.data(), O_CLOEXEC));
  if (!fd) return lastErrnoError(strCat("create temp file \"", tmpl, "\""));
  ::unlink(tmpl.c_str());
  return fd;
}

json::Json descriptorToJson(const Descriptor& d) {
  json::Json j = json::Json::object();
  j["mediaType"] = d.mediaType;
  j["digest"] = d.digest;
  j["size"] = d.size;
  if (d.platform) {
    json::Json p = {{"architecture", d.platform->architecture}, {"os", d.platform->os}};
    if (!d.platform->variant.empty()) p["variant"] = d.platform->variant;
    if (!d.platform->osVersion.empty()) p["os.version"] = d.platform->osVersion;
    if (!d.platform->osFeatures.empty()) p["os.features"] = d.platform->osFeatures;
    j["platform"] = std::move(p);
  }
  if (!d.annotations.empty()) j["annotations"] = d.annotations;
  if (!d.urls.empty()) j["urls"] = d.urls;
  if (!d.artifactType.empty()) j["artifactType"] = d.artifactType;
  return j;
}

bool isIndexMediaType(std::string_view t) {
  return t == media_type::kOciIndex || t == media_type::kDockerManifestList;
}

bool isManifestMediaType(std::string_view t) {
  return t == media_type::kOciManifest || t == media_type::kDockerManifest;
}

namespace {

// A child descriptor, read leniently (only what the walk needs).
StatusOr<Descriptor> childDescriptor(const json::Json& obj, std::string_view where) {
  if (!obj.is_object()) return invalidArgument(where, ": descriptor must be an object");
  Descriptor d;
  ASSIGN_OR_RETURN(d.mediaType, withContext(json::optString(obj, "mediaType"), where));
  ASSIGN_OR_RETURN(d.digest, withContext(json::optString(obj, "digest"), where));
  if (d.digest.empty()) return invalidArgument(where, ": missing \"digest\"");
  auto size = obj.find("size");
  if (size == obj.end() || !size->is_number_integer() || size->get<int64_t>() < 0) {
    return invalidArgument(where, " (", d.digest, "): \"size\" must be a non-negative integer");
  }
  d.size = size->get<int64_t>();
  return d;
}

Status walkNode(ContentStore& store, const Descriptor& d, const EnsureBlob& ensure,
                std::vector<Descriptor>* out, std::set<std::string>* seen, int depth) {
  if (depth > 8) return invalidArgument("blob ", d.digest, ": indexes nested too deeply");
  RETURN_IF_ERROR(validateBlobDigest(d.digest));
  if (seen->count(d.digest) != 0) return absl::OkStatus();
  ASSIGN_OR_RETURN(bool present, ensure(d));
  if (!present) {
    return notFound("blob ", d.digest, " (", d.mediaType.empty() ? "no media type" : d.mediaType,
                    ") is missing");
  }
  ASSIGN_OR_RETURN(BlobInfo info, store.info(d.digest));
  if (info.size != d.size) {
    return absl::DataLossError(strCat("blob ", d.digest, ": its size is ", info.size,
                                      " bytes but the descriptor says ", d.size));
  }
  seen->insert(d.digest);
  out->push_back(d);
  bool index = isIndexMediaType(d.mediaType);
  if (!index && !isManifestMediaType(d.mediaType)) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::string bytes, store.readBlob(d.digest, kMaxDocumentSize));
  std::string what = strCat(index ? "index " : "manifest ", d.digest);
  ASSIGN_OR_RETURN(json::Json doc, json::parse(bytes, what));
  if (!doc.is_object()) return invalidArgument(what, ": not a JSON object");
  if (index) {
    auto manifests = doc.find("manifests");
    if (manifests == doc.end() || !manifests->is_array()) {
      return invalidArgument(what, ": no \"manifests\" array");
    }
    int present_count = 0;
    std::string first_missing;
    for (size_t i = 0; i < manifests->size(); ++i) {
      ASSIGN_OR_RETURN(Descriptor child,
                       childDescriptor((*manifests)[i], strCat(what, ": manifests[", i, "]")));
      RETURN_IF_ERROR_CTX(validateBlobDigest(child.digest), what);
      ASSIGN_OR_RETURN(bool child_present, ensure(child));
      if (!child_present) {
        if (first_missing.empty()) first_missing = child.digest;
        continue;  // a platform left out of a partial export
      }
      ++present_count;
      RETURN_IF_ERROR(walkNode(store, child, ensure, out, seen, depth + 1));
    }
    if (present_count == 0 && !first_missing.empty()) {
      return notFound(what, ": none of its ", manifests->size(),
                      " manifests is present (blob ", first_missing, " is missing)");
    }
    return absl::OkStatus();
  }
  auto config = doc.find("config");
  if (config == doc.end()) return invalidArgument(what, ": no \"config\"");
  ASSIGN_OR_RETURN(Descriptor config_desc, childDescriptor(*config, strCat(what, ": config")));
  RETURN_IF_ERROR_CTX(walkNode(store, config_desc, ensure, out, seen, depth + 1),
                      strCat(what, ": config"));
  auto layers = doc.find("layers");
  if (layers == doc.end() || !layers->is_array()) {
    return invalidArgument(what, ": no \"layers\" array");
  }
  for (size_t i = 0; i < layers->size(); ++i) {
    std::string ctx = strCat(what, ": layer ", i);
    ASSIGN_OR_RETURN(Descriptor layer, childDescriptor((*layers)[i], ctx));
    RETURN_IF_ERROR_CTX(walkNode(store, layer, ensure, out, seen, depth + 1), ctx);
  }
  return absl::OkStatus();
}

}  // namespace

Status walkImage(ContentStore& store, const Descriptor& root, const EnsureBlob& ensure,
                 std::vector<Descriptor>* out, std::set<std::string>* seen) {
  return walkNode(store, root, ensure, out, seen, 0);
}

Status copyFdToWriter(int fd, ContentStore::Writer& writer, std::string_view what) {
  std::string buffer(kCopyBlock, '\0');
  for (;;) {
    ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return lastErrnoError(strCat("read ", what));
    }
    if (n == 0) break;
    RETURN_IF_ERROR(writer.write(std::string_view(buffer.data(), static_cast<size_t>(n))));
  }
  return writer.commit();
}

}  // namespace archive_internal

namespace {

using namespace archive_internal;
using json::Json;

// The name an OCI layout gives a descriptor: io.containerd.image.name, else
// org.opencontainers.image.ref.name when it is a full reference (a bare tag such as
// "1.36" names no repository), else "" (unnamed).
StatusOr<std::string> ociImageName(const Descriptor& d) {
  std::string candidate;
  std::string source;
  if (auto it = d.annotations.find(kContainerdNameAnnotation);
      it != d.annotations.end() && !it->second.empty()) {
    candidate = it->second;
    source = kContainerdNameAnnotation;
  } else if (auto ref = d.annotations.find(kRefNameAnnotation); ref != d.annotations.end()) {
    const std::string& v = ref->second;
    if (v.find_first_of("/:@") == std::string::npos) return std::string();  // a bare tag
    candidate = v;
    source = kRefNameAnnotation;
  } else {
    return std::string();
  }
  StatusOr<Reference> parsed = parseReference(candidate);
  if (!parsed.ok()) {
    return withContext(parsed.status(), strCat("annotation ", source, " of ", d.digest));
  }
  return parsed->string();
}

// Checks oci-layout and index.json and walks every image they name.
StatusOr<std::vector<ImportedImage>> importOciLayout(const std::string& path,
                                                     ContentStore& store,
                                                     std::string_view layout_bytes,
                                                     std::string_view index_bytes,
                                                     const EnsureBlob& ensure) {
  ASSIGN_OR_RETURN(Json layout, json::parse(layout_bytes, strCat(path, ": oci-layout")));
  if (!layout.is_object() || !layout.contains("imageLayoutVersion") ||
      !layout["imageLayoutVersion"].is_string()) {
    return invalidArgument(path, ": oci-layout: want {\"imageLayoutVersion\": \"1.0.0\"}");
  }
  ASSIGN_OR_RETURN(Index index, parseIndex(index_bytes, "", strCat(path, ": index.json")));
  if (index.manifests.empty()) {
    return invalidArgument(path, ": index.json lists no images");
  }
  std::vector<ImportedImage> images;
  std::vector<Descriptor> blobs;
  std::set<std::string> seen;
  for (size_t i = 0; i < index.manifests.size(); ++i) {
    const Descriptor& d = index.manifests[i];
    ASSIGN_OR_RETURN(std::string name,
                     withContext(ociImageName(d), strCat(path, ": index.json manifests[", i, "]")));
    RETURN_IF_ERROR_CTX(walkImage(store, d, ensure, &blobs, &seen),
                        strCat(path, ": image ", name.empty() ? d.digest : name));
    images.push_back(ImportedImage{std::move(name), d});
  }
  return images;
}

StatusOr<std::vector<ImportedImage>> importOciDirectory(const std::string& path,
                                                        ContentStore& store) {
  std::string layout_path = fs::join(path, kOciLayoutFile);
  if (!fs::exists(layout_path)) {
    return invalidArgument(path, ": a directory without an oci-layout file is not an OCI "
                                 "image layout; import a layout directory or a tar");
  }
  ASSIGN_OR_RETURN(std::string layout, fs::readFile(layout_path));
  StatusOr<std::string> index = fs::readFile(fs::join(path, kIndexFile));
  if (absl::IsNotFound(index.status())) {
    return invalidArgument(path, ": OCI image layout has no index.json");
  }
  if (!index.ok()) return index.status();
  EnsureBlob ensure = [&](const Descriptor& d) -> StatusOr<bool> {
    if (store.exists(d.digest)) return true;
    std::string file = fs::join(path, strCat(kBlobsPrefix, d.digest.substr(kSha256Prefix.size())));
    UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
      if (errno == ENOENT) return false;
      return lastErrnoError(strCat("open \"", file, "\""));
    }
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) return lastErrnoError(strCat("stat \"", file, "\""));
    if (!S_ISREG(st.st_mode)) return invalidArgument("\"", file, "\" is not a regular file");
    ASSIGN_OR_RETURN(auto writer, store.openWriter(d.digest, d.size));
    RETURN_IF_ERROR(copyFdToWriter(fd.get(), *writer, strCat("\"", file, "\"")));
    return true;
  };
  return importOciLayout(path, store, layout, *index, ensure);
}

// A regular member that is neither a blob nor a known document, kept until
// manifest.json says whether it is needed.
struct SpooledMember {
  std::string digest;
  int64_t size = 0;
  std::string head;  // the first bytes, for sniffing the compression
  std::string data;  // the content when small
  UniqueFd fd;       // else an anonymous temp file holding it
  bool committed = false;
};

// A member resolved to a committed blob.
struct MemberBlob {
  std::string digest;
  int64_t size = 0;
  std::string head;
};

constexpr int64_t kSpoolInMemory = 1 << 20;

class TarImporter {
 public:
  TarImporter(const std::string& path, ContentStore& store) : path_(path), store_(store) {}

  StatusOr<std::vector<ImportedImage>> run() {
    RETURN_IF_ERROR(scan());
    if (layout_ && index_) {
      EnsureBlob ensure = [this](const Descriptor& d) -> StatusOr<bool> {
        return store_.exists(d.digest);
      };
      return importOciLayout(path_, store_, *layout_, *index_, ensure);
    }
    if (docker_manifest_) return importDockerSave();
    if (layout_) return invalidArgument(path_, ": OCI image layout tar has no index.json");
    return invalidArgument(path_, ": neither an OCI image layout (no oci-layout) nor a docker "
                                  "save archive (no manifest.json)");
  }

 private:
  Status memberError(std::string_view name) {
    return absl::DataLossError(
        strCat(path_, ": read member \"", name, "\": ", archiveError(archive_.get())));
  }

  // Reads the current member's data, handing each chunk to `sink`.
  template <typename Sink>
  Status readData(std::string_view name, Sink&& sink) {
    std::string buffer(kCopyBlock, '\0');
    for (;;) {
      la_ssize_t n = archive_read_data(archive_.get(), buffer.data(), buffer.size());
      if (n < 0) return memberError(name);
      if (n == 0) return absl::OkStatus();
      RETURN_IF_ERROR(sink(std::string_view(buffer.data(), static_cast<size_t>(n))));
    }
  }

  StatusOr<std::string> readDocument(std::string_view name, archive_entry* entry) {
    if (archive_entry_size_is_set(entry) && archive_entry_size(entry) > kMaxDocumentSize) {
      return invalidArgument(path_, ": member \"", name, "\" is larger than ",
                             kMaxDocumentSize, " bytes");
    }
    std::string out;
    RETURN_IF_ERROR(readData(name, [&](std::string_view chunk) -> Status {
      if (static_cast<int64_t>(out.size() + chunk.size()) > kMaxDocumentSize) {
        return invalidArgument(path_, ": member \"", name, "\" is larger than ",
                               kMaxDocumentSize, " bytes");
      }
      out.append(chunk);
      return absl::OkStatus();
    }));
    return out;
  }

  Status streamBlob(const std::string& name, const std::string& digest, archive_entry* entry) {
    int64_t size = archive_entry_size_is_set(entry) ? archive_entry_size(entry) : -1;
    std::string ctx = strCat(path_, ": member \"", name, "\"");
    ASSIGN_OR_RETURN(auto writer, withContext(store_.openWriter(digest, size), ctx));
    RETURN_IF_ERROR(readData(name, [&](std::string_view chunk) {
      return withContext(writer->write(chunk), ctx);
    }));
    return withContext(writer->commit(), ctx);
  }

  Status spool(const std::string& name) {
    SpooledMember m;
    Sha256 hasher;
    RETURN_IF_ERROR(readData(name, [&](std::string_view chunk) -> Status {
      hasher.update(chunk);
      if (m.head.size() < 4) m.head.append(chunk.substr(0, 4 - m.head.size()));
      m.size += static_cast<int64_t>(chunk.size());
      if (!m.fd && m.size <= kSpoolInMemory) {
        m.data.append(chunk);
        return absl::OkStatus();
      }
      if (!m.fd) {
        ASSIGN_OR_RETURN(m.fd, openAnonymousTempFile(fs::join(store_.root(), "ingest")));
        std::string pending = std::move(m.data);
        m.data.clear();
        pending.append(chunk);
        return writeAll(m.fd.get(), pending, name);
      }
      return writeAll(m.fd.get(), chunk, name);
    }));
    m.digest = hasher.digest();
    spooled_[name] = std::move(m);
    return absl::OkStatus();
  }

  Status writeAll(int fd, std::string_view data, std::string_view name) {
    while (!data.empty()) {
      ssize_t n = ::write(fd, data.data(), data.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return lastErrnoError(strCat(path_, ": spool member \"", name, "\" to a temp file"));
      }
      data.remove_prefix(static_cast<size_t>(n));
    }
    return absl::OkStatus();
  }

  Status scan() {
    archive_.reset(archive_read_new());
    if (!archive_) return internalError("archive_read_new failed");
    archive_read_support_filter_all(archive_.get());
    archive_read_support_format_tar(archive_.get());
    archive_read_support_format_gnutar(archive_.get());
    if (archive_read_open_filename(archive_.get(), path_.c_str(), kCopyBlock) != ARCHIVE_OK) {
      return invalidArgument(path_, ": not an OCI image layout or docker save archive: ",
                             archiveError(archive_.get()));
    }
    bool first = true;
    for (;;) {
      archive_entry* entry = nullptr;
      int r = archive_read_next_header(archive_.get(), &entry);
      if (r == ARCHIVE_EOF) break;
      if (r < ARCHIVE_WARN) {
        if (first) {
          return invalidArgument(path_, ": not an OCI image layout or docker save archive "
                                        "(want a tar, optionally compressed): ",
                                 archiveError(archive_.get()));
        }
        return absl::DataLossError(
            strCat(path_, ": read archive: ", archiveError(archive_.get())));
      }
      first = false;
      RETURN_IF_ERROR(scanEntry(entry));
    }
    return absl::OkStatus();
  }

  Status scanEntry(archive_entry* entry) {
    const char* raw = archive_entry_pathname(entry);
    std::optional<std::string> name =
        raw != nullptr ? cleanArchivePath(raw, /*allow_dotdot=*/false) : std::nullopt;
    if (!name) return absl::OkStatus();  // the root, an absolute or a ".." name: never used
    if (const char* hard = archive_entry_hardlink(entry); hard != nullptr) {
      if (auto target = cleanArchivePath(hard, false)) links_[*name] = *target;
      return absl::OkStatus();
    }
    mode_t type = archive_entry_filetype(entry);
    if (type == AE_IFLNK) {
      const char* target = archive_entry_symlink(entry);
      if (target == nullptr || target[0] == '/') return absl::OkStatus();
      std::string_view dir = *name;
      size_t slash = dir.rfind('/');
      dir = slash == std::string_view::npos ? std::string_view() : dir.substr(0, slash);
      // Resolved inside the archive; a target escaping it is ignored.
      if (auto resolved = cleanArchivePath(strCat(dir, dir.empty() ? "" : "/", target), true)) {
        links_[*name] = *resolved;
      }
      return absl::OkStatus();
    }
    if (type != AE_IFREG) return absl::OkStatus();
    if (*name == kOciLayoutFile) {
      ASSIGN_OR_RETURN(layout_, readDocument(*name, entry));
    } else if (*name == kIndexFile) {
      ASSIGN_OR_RETURN(index_, readDocument(*name, entry));
    } else if (*name == kDockerManifestFile) {
      ASSIGN_OR_RETURN(docker_manifest_, readDocument(*name, entry));
    } else if (name->rfind(kBlobsPrefix, 0) == 0) {
      std::string hex = name->substr(std::string_view(kBlobsPrefix).size());
      // Blobs of other algorithms or with malformed names are not needed (a
      // reference to one fails the reachability check with its digest).
      if (isSha256Hex(hex)) return streamBlob(*name, strCat(kSha256Prefix, hex), entry);
    } else if (*name != kRepositoriesFile) {
      return spool(*name);
    }
    return absl::OkStatus();
  }

  // Finds the member `raw` named by manifest.json (following links) and commits it.
  StatusOr<MemberBlob> commitMember(const std::string& raw, std::string_view ctx) {
    std::optional<std::string> clean = cleanArchivePath(raw, /*allow_dotdot=*/false);
    if (!clean) {
      return invalidArgument(path_, ": manifest.json", ctx, " \"", raw,
                             "\" is not a relative path inside the archive");
    }
    std::string name = *clean;
    for (int hops = 0;; ++hops) {
      auto link = links_.find(name);
      if (link == links_.end()) break;
      if (hops >= 16) {
        return invalidArgument(path_, ": manifest.json", ctx, " \"", raw,
                               "\": too many levels of links");
      }
      name = link->second;
    }
    if (name.rfind(kBlobsPrefix, 0) == 0) {
      std::string digest =
          strCat(kSha256Prefix, name.substr(std::string_view(kBlobsPrefix).size()));
      if (isSha256Digest(digest) && store_.exists(digest)) {
        ASSIGN_OR_RETURN(BlobInfo info, store_.info(digest));
        ASSIGN_OR_RETURN(std::string file, store_.path(digest));
        MemberBlob out{digest, info.size, ""};
        UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
        char head[4];
        ssize_t n = fd ? ::read(fd.get(), head, sizeof(head)) : -1;
        if (n > 0) out.head.assign(head, static_cast<size_t>(n));
        return out;
      }
    }
    auto it = spooled_.find(name);
    if (it == spooled_.end()) {
      return notFound(path_, ": manifest.json", ctx, " \"", raw,
                      "\" is not a file in the archive");
    }
    SpooledMember& m = it->second;
    if (!m.committed) {
      std::string what = strCat(path_, ": member \"", name, "\"");
      ASSIGN_OR_RETURN(auto writer, withContext(store_.openWriter(m.digest, m.size), what));
      if (m.fd) {
        if (::lseek(m.fd.get(), 0, SEEK_SET) != 0) {
          return lastErrnoError(strCat(what, ": rewind temp file"));
        }
        RETURN_IF_ERROR_CTX(copyFdToWriter(m.fd.get(), *writer, "temp file"), what);
      } else {
        RETURN_IF_ERROR_CTX(writer->write(m.data), what);
        RETURN_IF_ERROR_CTX(writer->commit(), what);
      }
      m.committed = true;
    }
    return MemberBlob{m.digest, m.size, m.head};
  }

  static std::string sniffLayerType(std::string_view head) {
    if (head.size() >= 2 && head[0] == '\x1f' && head[1] == '\x8b') {
      return media_type::kDockerLayerGzip;
    }
    if (head.size() >= 4 && head.substr(0, 4) == std::string_view("\x28\xb5\x2f\xfd", 4)) {
      return media_type::kDockerLayerZstd;
    }
    return media_type::kOciLayer;
  }

  StatusOr<std::vector<ImportedImage>> importDockerSave() {
    ASSIGN_OR_RETURN(Json doc, json::parse(*docker_manifest_, strCat(path_, ": manifest.json")));
    if (!doc.is_array()) return invalidArgument(path_, ": manifest.json must be an array");
    std::vector<ImportedImage> images;
    for (size_t i = 0; i < doc.size(); ++i) {
      const Json& entry = doc[i];
      std::string ctx = strCat("[", i, "]");
      if (!entry.is_object()) {
        return invalidArgument(path_, ": manifest.json", ctx, " must be an object");
      }
      ASSIGN_OR_RETURN(std::string config_name,
                       withContext(json::optString(entry, "Config"),
                                   strCat(path_, ": manifest.json", ctx)));
      if (config_name.empty()) {
        return invalidArgument(path_, ": manifest.json", ctx, " has no \"Config\"");
      }
      auto layers_json = entry.find("Layers");
      if (layers_json == entry.end() || !layers_json->is_array()) {
        return invalidArgument(path_, ": manifest.json", ctx, " has no \"Layers\" array");
      }
      ASSIGN_OR_RETURN(std::vector<std::string> layer_names,
                       withContext(json::optStringArray(entry, "Layers"),
                                   strCat(path_, ": manifest.json", ctx)));
      ASSIGN_OR_RETURN(std::vector<std::string> tags,
                       withContext(json::optStringArray(entry, "RepoTags"),
                                   strCat(path_, ": manifest.json", ctx)));

      ASSIGN_OR_RETURN(MemberBlob config, commitMember(config_name, strCat(ctx, ".Config")));
      ASSIGN_OR_RETURN(std::string config_bytes, store_.readBlob(config.digest, kMaxDocumentSize));
      ASSIGN_OR_RETURN(Json config_doc,
                       json::parse(config_bytes, strCat(path_, ": config \"", config_name, "\"")));
      if (!config_doc.is_object()) {
        return invalidArgument(path_, ": config \"", config_name, "\" is not a JSON object");
      }
      Json manifest = {{"schemaVersion", 2},
                       {"mediaType", media_type::kDockerManifest},
                       {"config",
                        {{"mediaType", media_type::kDockerConfig},
                         {"digest", config.digest},
                         {"size", config.size}}},
                       {"layers", Json::array()}};
      for (size_t j = 0; j < layer_names.size(); ++j) {
        ASSIGN_OR_RETURN(MemberBlob layer,
                         commitMember(layer_names[j], strCat(ctx, ".Layers[", j, "]")));
        manifest["layers"].push_back({{"mediaType", sniffLayerType(layer.head)},
                                      {"digest", layer.digest},
                                      {"size", layer.size}});
      }
      std::string bytes = json::dump(manifest);
      Descriptor target;
      target.mediaType = media_type::kDockerManifest;
      target.digest = sha256Digest(bytes);
      target.size = static_cast<int64_t>(bytes.size());
      RETURN_IF_ERROR_CTX(store_.writeBlob(target.digest, bytes),
                          strCat(path_, ": store synthesised manifest"));
      if (tags.empty()) images.push_back(ImportedImage{"", target});
      for (const std::string& tag : tags) {
        StatusOr<Reference> ref = parseReference(tag);
        if (!ref.ok()) {
          return withContext(ref.status(), strCat(path_, ": manifest.json", ctx, ".RepoTags"));
        }
        images.push_back(ImportedImage{ref->string(), target});
      }
    }
    if (images.empty()) return invalidArgument(path_, ": manifest.json lists no images");
    return images;
  }

  std::string path_;
  ContentStore& store_;
  ArchiveReadPtr archive_;
  std::optional<std::string> layout_;
  std::optional<std::string> index_;
  std::optional<std::string> docker_manifest_;
  std::map<std::string, SpooledMember> spooled_;
  std::map<std::string, std::string> links_;  // member -> member it points at
};

}  // namespace

StatusOr<std::vector<ImportedImage>> importArchive(const std::string& path,
                                                   ContentStore& store) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return lastErrnoError(strCat("import \"", path, "\""));
  if (S_ISDIR(st.st_mode)) return importOciDirectory(path, store);
  if (!S_ISREG(st.st_mode)) {
    return invalidArgument(path, ": not a directory or a regular file; import an OCI image "
                                 "layout or a docker save tar");
  }
  TarImporter importer(path, store);
  return importer.run();
}

}  // namespace berth::image
