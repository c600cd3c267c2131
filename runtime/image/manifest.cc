#include "runtime/image/manifest.h"

#include <algorithm>
#include <cctype>
#include <limits>

#include "common/json.h"
#include "runtime/image/reference.h"

namespace berth::image {
namespace {

using json::Json;
using json::optString;
using json::optStringArray;
using json::optStringMap;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// "application/json; charset=utf-8" -> "application/json".
std::string bareContentType(std::string_view contentType) {
  size_t semi = contentType.find(';');
  return lower(trim(contentType.substr(0, semi)));
}

bool isGenericContentType(std::string_view t) {
  return t.empty() || t == "application/json" || t == "application/octet-stream" ||
         t == "text/plain" || t == "binary/octet-stream";
}

bool isSchema1(std::string_view t) {
  return t == media_type::kDockerSchema1 || t == media_type::kDockerSchema1Signed;
}

Status schema1Error() {
  return invalidArgument(
      "Docker schema 1 manifests are not supported (deprecated since Docker 1.10, removed "
      "from current registries and runtimes); push the image again with a current client "
      "to get a schema 2 or OCI manifest");
}

StatusOr<Platform> parsePlatformObject(const Json& obj) {
  if (!obj.is_object()) return invalidArgument("\"platform\" must be an object");
  Platform p;
  ASSIGN_OR_RETURN(p.architecture, optString(obj, "architecture"));
  ASSIGN_OR_RETURN(p.os, optString(obj, "os"));
  ASSIGN_OR_RETURN(p.variant, optString(obj, "variant"));
  ASSIGN_OR_RETURN(p.osVersion, optString(obj, "os.version"));
  ASSIGN_OR_RETURN(p.osFeatures, optStringArray(obj, "os.features"));
  if (p.architecture.empty() || p.os.empty()) {
    return invalidArgument("\"platform\" needs \"architecture\" and \"os\"");
  }
  return p;
}

StatusOr<Descriptor> parseDescriptor(const Json& obj) {
  if (!obj.is_object()) return invalidArgument("descriptor must be an object");
  Descriptor d;
  ASSIGN_OR_RETURN(d.mediaType, optString(obj, "mediaType"));
  if (d.mediaType.empty()) return invalidArgument("missing \"mediaType\"");
  ASSIGN_OR_RETURN(d.digest, optString(obj, "digest"));
  if (d.digest.empty()) return invalidArgument("missing \"digest\"");
  RETURN_IF_ERROR(validateDigest(d.digest));
  auto size = obj.find("size");
  if (size == obj.end()) return invalidArgument("digest ", d.digest, ": missing \"size\"");
  if (!size->is_number_integer() ||
      (size->is_number_unsigned() &&
       size->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) ||
      size->get<int64_t>() < 0) {
    return invalidArgument("digest ", d.digest, ": \"size\" must be a non-negative integer");
  }
  d.size = size->get<int64_t>();
  if (auto p = obj.find("platform"); p != obj.end() && !p->is_null()) {
    ASSIGN_OR_RETURN(d.platform, parsePlatformObject(*p));
  }
  ASSIGN_OR_RETURN(d.annotations, optStringMap(obj, "annotations"));
  ASSIGN_OR_RETURN(d.urls, optStringArray(obj, "urls"));
  ASSIGN_OR_RETURN(d.artifactType, optString(obj, "artifactType"));
  return d;
}

int schemaVersionOf(const Json& doc) {
  auto it = doc.find("schemaVersion");
  if (it == doc.end() || !it->is_number_integer()) return -1;
  return it->get<int>();
}

StatusOr<Manifest> parseManifestBody(const Json& doc, std::string mediaType) {
  Manifest m;
  m.mediaType = std::move(mediaType);
  m.schemaVersion = schemaVersionOf(doc);
  auto config = doc.find("config");
  if (config == doc.end()) return invalidArgument("manifest has no \"config\"");
  ASSIGN_OR_RETURN(m.config, withContext(parseDescriptor(*config), "config"));
  if (m.config.mediaType != media_type::kOciConfig &&
      m.config.mediaType != media_type::kDockerConfig) {
    return invalidArgument("config media type \"", m.config.mediaType,
                           "\" is not a container image config (an OCI artifact?); want ",
                           media_type::kOciConfig, " or ", media_type::kDockerConfig);
  }
  auto layers = doc.find("layers");
  if (layers == doc.end() || !layers->is_array()) {
    return invalidArgument("manifest has no \"layers\" array");
  }
  for (size_t i = 0; i < layers->size(); ++i) {
    std::string ctx = strCat("layer ", i);
    ASSIGN_OR_RETURN(Descriptor layer, withContext(parseDescriptor((*layers)[i]), ctx));
    Status kind = classifyLayer(layer.mediaType).status();
    if (!kind.ok()) return withContext(kind, strCat(ctx, " (", layer.digest, ")"));
    m.layers.push_back(std::move(layer));
  }
  if (auto s = doc.find("subject"); s != doc.end() && !s->is_null()) {
    ASSIGN_OR_RETURN(m.subject, withContext(parseDescriptor(*s), "subject"));
  }
  ASSIGN_OR_RETURN(m.annotations, optStringMap(doc, "annotations"));
  return m;
}

StatusOr<Index> parseIndexBody(const Json& doc, std::string mediaType) {
  Index idx;
  idx.mediaType = std::move(mediaType);
  idx.schemaVersion = schemaVersionOf(doc);
  auto manifests = doc.find("manifests");
  if (manifests == doc.end() || !manifests->is_array()) {
    return invalidArgument("index has no \"manifests\" array");
  }
  for (size_t i = 0; i < manifests->size(); ++i) {
    ASSIGN_OR_RETURN(Descriptor d,
                     withContext(parseDescriptor((*manifests)[i]), strCat("manifests[", i, "]")));
    idx.manifests.push_back(std::move(d));
  }
  ASSIGN_OR_RETURN(idx.annotations, optStringMap(doc, "annotations"));
  return idx;
}

StatusOr<ManifestDocument> parseDocument(std::string_view bytes, std::string_view contentType) {
  ASSIGN_OR_RETURN(Json doc, json::parse(bytes, "manifest"));
  if (!doc.is_object()) return invalidArgument("manifest is not a JSON object");
  ASSIGN_OR_RETURN(std::string field, optString(doc, "mediaType"));
  std::string type = field.empty() ? bareContentType(contentType) : field;
  if (isSchema1(type) || schemaVersionOf(doc) == 1 || doc.contains("fsLayers")) {
    return schema1Error();
  }
  if (isGenericContentType(type)) {
    if (doc.contains("manifests")) {
      type = media_type::kOciIndex;
    } else if (doc.contains("config") && doc.contains("layers")) {
      type = media_type::kOciManifest;
    } else {
      return invalidArgument(
          "document has no media type and neither \"manifests\" nor \"config\"/\"layers\"");
    }
  }
  bool isIndex = type == media_type::kOciIndex || type == media_type::kDockerManifestList;
  bool isManifest = type == media_type::kOciManifest || type == media_type::kDockerManifest;
  if (!isIndex && !isManifest) {
    return invalidArgument("unknown manifest media type \"", type, "\"; want one of ",
                           media_type::kOciManifest, ", ", media_type::kOciIndex, ", ",
                           media_type::kDockerManifest, ", ", media_type::kDockerManifestList);
  }
  if (schemaVersionOf(doc) != 2) {
    return invalidArgument("\"schemaVersion\" must be 2");
  }
  if (isIndex) {
    ASSIGN_OR_RETURN(Index idx, parseIndexBody(doc, type));
    return ManifestDocument(std::move(idx));
  }
  ASSIGN_OR_RETURN(Manifest m, parseManifestBody(doc, type));
  return ManifestDocument(std::move(m));
}

// Normalises os/architecture/variant the way containerd's platforms.Normalize does,
// except that arm64 without a variant is spelled "v8" and amd64 "v1" is spelled "".
Platform normalize(Platform p) {
  p.os = lower(p.os);
  p.architecture = lower(p.architecture);
  p.variant = lower(p.variant);
  const std::string& a = p.architecture;
  if (a == "x86_64" || a == "x86-64" || a == "amd64") {
    p.architecture = "amd64";
    if (p.variant == "v1") p.variant.clear();
  } else if (a == "i386" || a == "i486" || a == "i586" || a == "i686") {
    p.architecture = "386";
    p.variant.clear();
  } else if (a == "aarch64" || a == "arm64") {
    p.architecture = "arm64";
    if (p.variant.empty() || p.variant == "8" || p.variant == "v8.0") p.variant = "v8";
  } else if (a == "armhf") {
    p.architecture = "arm";
    p.variant = "v7";
  } else if (a == "armel") {
    p.architecture = "arm";
    p.variant = "v6";
  } else if (a == "arm") {
    if (p.variant.empty() || p.variant == "7") p.variant = "v7";
    if (p.variant == "5" || p.variant == "6" || p.variant == "8") p.variant = "v" + p.variant;
  }
  return p;
}

// Version number of "vN", or -1.
int variantNumber(std::string_view v) {
  if (v.size() < 2 || v[0] != 'v') return -1;
  int n = 0;
  for (char c : v.substr(1)) {
    if (c < '0' || c > '9') return -1;
    n = n * 10 + (c - '0');
  }
  return n;
}

struct Candidate {
  std::string architecture;
  std::string variant;  // "*" matches any variant
};

// The preference order of (architecture, variant) pairs for `want` (normalised).
std::vector<Candidate> preferenceVector(const Platform& want) {
  std::vector<Candidate> out;
  const std::string& arch = want.architecture;
  if (arch == "amd64") {
    if (want.variant.empty()) {
      out.push_back({"amd64", ""});
      out.push_back({"amd64", "*"});
    } else {
      out.push_back({"amd64", want.variant});
      for (int n = variantNumber(want.variant) - 1; n >= 2; --n) {
        out.push_back({"amd64", strCat("v", n)});
      }
      out.push_back({"amd64", ""});
    }
    out.push_back({"386", "*"});
  } else if (arch == "arm" || arch == "arm64") {
    out.push_back({arch, want.variant});
    int n = variantNumber(want.variant);
    if (arch == "arm64") out.push_back({"arm", want.variant});
    for (--n; n >= 5; --n) out.push_back({"arm", strCat("v", n)});
  } else {
    out.push_back({arch, want.variant.empty() ? "*" : want.variant});
  }
  return out;
}

bool isManifestMediaType(std::string_view t) {
  return t == media_type::kOciManifest || t == media_type::kDockerManifest;
}

}  // namespace

std::string manifestAcceptHeader() {
  return joinStrings({media_type::kOciIndex, media_type::kDockerManifestList,
                      media_type::kOciManifest, media_type::kDockerManifest},
                     ", ");
}

std::string Platform::string() const {
  std::string out = strCat(os, "/", architecture);
  if (!variant.empty()) out += strCat("/", variant);
  return out;
}

Platform defaultPlatform() {
  Platform p;
  p.os = "linux";
  p.architecture = "amd64";
  return p;
}

StatusOr<Platform> parsePlatform(std::string_view text) {
  std::vector<std::string> parts = split(text, '/');
  if (parts.size() < 2 || parts.size() > 3 || parts[0].empty() || parts[1].empty() ||
      (parts.size() == 3 && parts[2].empty())) {
    return invalidArgument("platform \"", text, "\": want \"os/arch[/variant]\"");
  }
  Platform p;
  p.os = parts[0];
  p.architecture = parts[1];
  if (parts.size() == 3) p.variant = parts[2];
  p = normalize(p);
  if (p.architecture == "arm64" && p.variant == "v8") p.variant.clear();  // as written
  return p;
}

StatusOr<LayerKind> classifyLayer(std::string_view t) {
  using namespace media_type;
  if (t == kOciLayer) return LayerKind{Compression::kNone, false};
  if (t == kOciLayerGzip || t == kDockerLayerGzip) return LayerKind{Compression::kGzip, false};
  if (t == kOciLayerZstd || t == kDockerLayerZstd) return LayerKind{Compression::kZstd, false};
  if (t == kOciLayerNondistributable) return LayerKind{Compression::kNone, true};
  if (t == kOciLayerNondistributableGzip || t == kDockerForeignLayerGzip) {
    return LayerKind{Compression::kGzip, true};
  }
  if (t == kOciLayerNondistributableZstd) return LayerKind{Compression::kZstd, true};
  return invalidArgument("unknown layer media type \"", t,
                         "\"; berth unpacks OCI tar, tar+gzip, tar+zstd and Docker "
                         "rootfs.diff.tar.gzip layers");
}

StatusOr<ManifestDocument> parseManifestDocument(std::string_view bytes,
                                                 std::string_view contentType,
                                                 std::string_view what) {
  return withContext(parseDocument(bytes, contentType), what);
}

StatusOr<Manifest> parseManifest(std::string_view bytes, std::string_view contentType,
                                 std::string_view what) {
  ASSIGN_OR_RETURN(ManifestDocument doc, parseManifestDocument(bytes, contentType, what));
  if (auto* m = std::get_if<Manifest>(&doc)) return std::move(*m);
  return invalidArgument(what, ": expected an image manifest, got an index (",
                         std::get<Index>(doc).mediaType, ")");
}

StatusOr<Index> parseIndex(std::string_view bytes, std::string_view contentType,
                           std::string_view what) {
  ASSIGN_OR_RETURN(ManifestDocument doc, parseManifestDocument(bytes, contentType, what));
  if (auto* idx = std::get_if<Index>(&doc)) return std::move(*idx);
  return invalidArgument(what, ": expected an index, got an image manifest (",
                         std::get<Manifest>(doc).mediaType, ")");
}

StatusOr<Descriptor> selectPlatform(const Index& index, const Platform& want,
                                    std::string_view imageRef) {
  Platform w = normalize(want);
  std::vector<Candidate> prefs = preferenceVector(w);
  const Descriptor* best = nullptr;
  size_t bestRank = std::numeric_limits<size_t>::max();
  const Descriptor* platformless = nullptr;
  std::vector<std::string> available;
  for (const Descriptor& d : index.manifests) {
    if (!isManifestMediaType(d.mediaType)) continue;
    if (!d.platform) {
      if (platformless == nullptr) platformless = &d;
      continue;
    }
    Platform p = normalize(*d.platform);
    if (p.os == "unknown" || p.architecture == "unknown") continue;  // attestations
    std::string name = d.platform->string();
    if (std::find(available.begin(), available.end(), name) == available.end()) {
      available.push_back(name);
    }
    if (p.os != w.os) continue;
    for (size_t rank = 0; rank < prefs.size() && rank < bestRank; ++rank) {
      const Candidate& c = prefs[rank];
      if (c.architecture == p.architecture && (c.variant == "*" || c.variant == p.variant)) {
        best = &d;
        bestRank = rank;
        break;
      }
    }
  }
  if (best != nullptr) return *best;
  if (platformless != nullptr) return *platformless;
  return notFound("image ", imageRef, " has no manifest for ", want.string(), "; available: ",
                  available.empty() ? std::string("none") : joinStrings(available, ", "));
}

}  // namespace berth::image
