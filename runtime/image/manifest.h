// Image manifests and indexes: OCI image-spec 1.1 (manifest.md, image-index.md,
// descriptor.md) and their Docker counterparts (Docker Image Manifest V2 Schema 2 and
// manifest lists), parsed from the bytes a registry returns plus its Content-Type,
// and platform selection from an index the way containerd's default matcher does.
//
// Thread-safety: value types and pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/status.h"

namespace berth::image {

namespace media_type {
inline constexpr char kOciManifest[] = "application/vnd.oci.image.manifest.v1+json";
inline constexpr char kOciIndex[] = "application/vnd.oci.image.index.v1+json";
inline constexpr char kOciConfig[] = "application/vnd.oci.image.config.v1+json";
inline constexpr char kOciLayer[] = "application/vnd.oci.image.layer.v1.tar";
inline constexpr char kOciLayerGzip[] = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr char kOciLayerZstd[] = "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr char kOciLayerNondistributable[] =
    "application/vnd.oci.image.layer.nondistributable.v1.tar";
inline constexpr char kOciLayerNondistributableGzip[] =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
inline constexpr char kOciLayerNondistributableZstd[] =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";
inline constexpr char kDockerManifest[] =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr char kDockerManifestList[] =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr char kDockerConfig[] = "application/vnd.docker.container.image.v1+json";
inline constexpr char kDockerLayerGzip[] = "application/vnd.docker.image.rootfs.diff.tar.gzip";
inline constexpr char kDockerLayerZstd[] = "application/vnd.docker.image.rootfs.diff.tar.zstd";
inline constexpr char kDockerForeignLayerGzip[] =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
inline constexpr char kDockerSchema1[] = "application/vnd.docker.distribution.manifest.v1+json";
inline constexpr char kDockerSchema1Signed[] =
    "application/vnd.docker.distribution.manifest.v1+prettyjws";
}  // namespace media_type

// The Accept header value a client sends for manifests this module can parse
// (indexes first so a registry returns the multi-arch form when it has one).
std::string manifestAcceptHeader();

// platform (image-index.md "platform"); "os.version"/"os.features" are Windows-only
// but kept for round trip.
struct Platform {
  std::string architecture;  // "amd64", "arm64", "arm", "ppc64le", "s390x", "386", ...
  std::string os;            // "linux"
  std::string variant;       // "v7", "v8", ...; empty when absent
  std::string osVersion;     // "os.version"
  std::vector<std::string> osFeatures;  // "os.features"

  // "os/architecture[/variant]", e.g. "linux/arm/v7".
  std::string string() const;
  bool operator==(const Platform&) const = default;
};

// The platform this node runs: linux/amd64 (berth targets amd64 nodes).
Platform defaultPlatform();

// Parses "os/arch[/variant]" ("linux/arm64/v8"), normalising architecture aliases
// (x86_64 -> amd64, aarch64 -> arm64, armhf -> arm/v7, armel -> arm/v6, i386 -> 386).
// Errors: InvalidArgument naming the text.
StatusOr<Platform> parsePlatform(std::string_view text);

// A content descriptor (descriptor.md).
struct Descriptor {
  std::string mediaType;
  std::string digest;  // validated "<alg>:<hex>"
  int64_t size = 0;    // bytes, >= 0
  std::optional<Platform> platform;
  std::map<std::string, std::string> annotations;
  std::vector<std::string> urls;
  std::string artifactType;  // OCI 1.1; empty when absent
};

enum class Compression { kNone, kGzip, kZstd };

// What a layer media type means for unpacking.
struct LayerKind {
  Compression compression = Compression::kNone;
  // A foreign / non-distributable layer: fetched from its descriptor's urls (when
  // present) rather than pushed to every registry.
  bool foreign = false;
};

// Classifies a layer media type (OCI tar, tar+gzip, tar+zstd and their
// non-distributable forms; Docker rootfs.diff.tar.gzip / .tar.zstd and the foreign
// rootfs layer). Errors: InvalidArgument `unknown layer media type "<type>"`.
StatusOr<LayerKind> classifyLayer(std::string_view mediaType);

// An image manifest: OCI image manifest or Docker schema 2.
struct Manifest {
  int schemaVersion = 2;
  std::string mediaType;  // kOciManifest or kDockerManifest (after detection)
  Descriptor config;      // its mediaType is kOciConfig or kDockerConfig
  std::vector<Descriptor> layers;  // base layer first
  std::optional<Descriptor> subject;
  std::map<std::string, std::string> annotations;
};

// An OCI image index or Docker manifest list.
struct Index {
  int schemaVersion = 2;
  std::string mediaType;  // kOciIndex or kDockerManifestList (after detection)
  std::vector<Descriptor> manifests;
  std::map<std::string, std::string> annotations;
};

using ManifestDocument = std::variant<Manifest, Index>;

// Parses a manifest or index. The kind comes from the document's "mediaType" field
// when present, else from `contentType` (the HTTP Content-Type, parameters such as
// "; charset=utf-8" ignored), else from the structure ("manifests" -> OCI index,
// "config" + "layers" -> OCI manifest). `what` names the document in errors (e.g.
// the image reference). Errors (all InvalidArgument, prefixed with "<what>: "):
// malformed JSON; schema 1 manifests (rejected with advice to re-push); an unknown
// document media type, naming it; schemaVersion other than 2; a descriptor with a bad
// digest or negative size; a config media type that is not a container image config;
// an unknown layer media type, naming it and the layer index.
StatusOr<ManifestDocument> parseManifestDocument(std::string_view bytes,
                                                 std::string_view contentType,
                                                 std::string_view what);

// parseManifestDocument() that requires an image manifest (InvalidArgument if it is
// an index).
StatusOr<Manifest> parseManifest(std::string_view bytes, std::string_view contentType,
                                 std::string_view what);

// parseManifestDocument() that requires an index (InvalidArgument if it is a manifest).
StatusOr<Index> parseIndex(std::string_view bytes, std::string_view contentType,
                           std::string_view what);

// Picks the manifest for `want` from an index, as containerd's platforms.Only does:
// os must match; architecture aliases are normalised; an arm64 entry without variant
// counts as v8; when `want` has no variant, amd64 entries match whatever their
// variant, arm means arm/v7; when `want` has a variant, older compatible variants are
// accepted as fallbacks (amd64 v3 -> v2 -> v1; arm v7 -> v6 -> v5); amd64 falls back
// to 386 and arm64 to arm/v8..v5 last. Entries that are not image manifests (e.g.
// BuildKit attestations, unknown/unknown) are skipped. Among equals, the first in
// index order wins. Errors: NotFound `image <imageRef> has no manifest for
// <platform>; available: linux/arm64, ...`.
StatusOr<Descriptor> selectPlatform(const Index& index, const Platform& want,
                                    std::string_view imageRef);

}  // namespace berth::image
