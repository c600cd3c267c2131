// Import and export of images for air-gapped nodes:
//  - OCI image layout (image-spec image-layout.md): a directory or a tar of one with
//    `oci-layout` ({"imageLayoutVersion":"1.0.0"}), `index.json` and
//    `blobs/<alg>/<hex>`; image names in the index descriptors' annotations
//    `org.opencontainers.image.ref.name` (a tag like "1.36" or a full reference) or
//    `io.containerd.image.name` (a full reference, as `ctr images export` writes).
//  - `docker save` archives (Docker's image tarball format v1.2): `manifest.json`
//    ([{"Config":"<hex>.json","RepoTags":["busybox:1.36"],"Layers":["<dir>/layer.tar",...]}]),
//    optional `repositories`, layer tars (uncompressed, or gzip in newer Docker).
//
// Import writes every blob into the ContentStore (verified by digest, so a damaged
// archive fails cleanly and only complete blobs become visible); the caller then
// registers the images (unpack + image record) exactly as after a pull. For a docker
// save archive, which has no manifests, import synthesises a Docker schema2 manifest
// (application/vnd.docker.distribution.manifest.v2+json) whose layer descriptors use
// the archive's layer bytes as they are (media type tar or tar+gzip by sniffing).
//
// Export writes what the ContentStore holds for the given images as an OCI layout
// (directory or tar) with `org.opencontainers.image.ref.name` (the full reference) and
// `io.containerd.image.name` annotations, or as a docker save archive (layers
// decompressed to tar as docker load expects, "RepoTags" from the names).
//
// Thread-safety: the functions are thread-safe as far as the ContentStore is.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "runtime/image/content_store.h"
#include "runtime/image/manifest.h"

namespace berth::image {

enum class ArchiveFormat {
  kOciLayout,  // OCI image layout (directory, or tar when the path ends in .tar)
  kDockerSave, // docker save tar
};

// One image found in an archive.
struct ImportedImage {
  // The normalised reference it is named by ("docker.io/library/busybox:1.36"); ""
  // when the archive gives no name (the caller lists it by ID).
  std::string name;
  // The manifest or index descriptor the name points at (an index is resolved to a
  // platform by the caller with selectPlatform, as for a pull).
  Descriptor target;
};

// Detects the format of `path` (a directory with oci-layout, or a tar holding
// either oci-layout or manifest.json; gzip-compressed tars are accepted) and imports
// it into `store`. Every referenced blob reachable from the named descriptors is
// checked (present, size, digest); only the platform manifests of an index may be
// absent (a partial export, as `ctr export --platform` writes), as long as one is
// present. Unreferenced blobs of a layout directory are ignored; a tar is read in one
// pass, so every valid blobs/sha256/<hex> member is stored (garbage collection removes
// the unreferenced ones). When a tar holds both an OCI layout and manifest.json
// (Docker 25+ docker save), the OCI layout is used. Member names are never used as
// paths: absolute and ".." names are skipped, and a manifest.json path escaping the
// archive is InvalidArgument.
// Errors: InvalidArgument naming the archive for an unknown format or malformed
// index.json/manifest.json (with the field), DataLoss for a blob whose content does
// not match its digest, NotFound for a missing blob (naming it), I/O errors.
StatusOr<std::vector<ImportedImage>> importArchive(const std::string& path,
                                                   ContentStore& store);

// One image to export: its name (may be empty for OCI layouts) and the descriptor of
// its manifest (or index: every platform manifest present in the store is exported).
struct ExportItem {
  std::string name;  // normalised reference, e.g. "docker.io/library/busybox:1.36"
  Descriptor target;
};

// Writes `items` from `store` to `path` in `format`. An OCI layout goes to a
// directory when `path` does not end in ".tar", else to a tar; a docker save archive
// is always a tar. The output is written to a temporary name and renamed, so a
// failure leaves nothing at `path`. An OCI layout holds every blob reachable from the
// items (platform manifests of an index that are not in the store are left out, as
// `ctr export --platform` does). A docker save archive resolves an index to
// linux/amd64 (selectPlatform(defaultPlatform())), writes the config as "<hex>.json"
// and each layer decompressed as "<diff id hex>/layer.tar" (checked against the
// config's rootfs.diff_ids: DataLoss on a mismatch), lists the names as familiar
// RepoTags ("busybox:1.36"; digest-only names get no tag) and adds `repositories`.
// Errors: NotFound for a blob missing from the
// store (name the image), AlreadyExists when `path` exists, I/O errors.
Status exportArchive(const std::vector<ExportItem>& items, ContentStore& store,
                     const std::string& path, ArchiveFormat format);

}  // namespace berth::image
