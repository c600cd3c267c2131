// Layer unpack: applies one OCI image layer (a tar stream, uncompressed, gzip or
// zstd; detected by magic) to an empty directory in the layout overlayfs expects for
// a lower layer, and computes the layer's diffID.
//
// Implements OCI image-spec "layer.md" (Image Layer Filesystem Changeset):
//   - `.wh.<name>` (whiteout) becomes a character device 0:0 named <name>, and
//     `.wh..wh..opq` (opaque whiteout) sets `trusted.overlay.opaque=y` on its
//     directory: the overlayfs representation, so the unpacked directory can be a
//     lowerdir as is. Both need root (CAP_MKNOD, CAP_SYS_ADMIN); without it the
//     unpack fails with an error saying so. Other `.wh..wh.*` names (aufs metadata)
//     are skipped.
//   - regular files, directories, symlinks, hard links, character and block devices,
//     FIFOs, with mode, mtime, ownership (optional, optionally shifted for user
//     namespaces) and extended attributes (PAX SCHILY.xattr / LIBARCHIVE.xattr, e.g.
//     security.capability). Xattrs the filesystem or our privileges do not support
//     are skipped and counted. Directory mtimes are set after their contents.
//   - the diffID (image-spec "config.md": rootfs.diff_ids) is the sha256 of the
//     uncompressed tar stream, every byte of it including the end-of-archive padding.
//
// Safety against hostile archives: entry names are cleaned lexically; absolute names
// are layer-relative; a name climbing above the root is an error. Every entry is
// created relative to a directory fd opened below the layer root with
// RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, so symlinks in the layer (which may point
// anywhere; images have absolute symlinks) are created but never followed: `a ->
// /etc` followed by `a/passwd` fails naming the entry. Hard links must name an
// earlier entry inside the layer, and may not link to a symlink that leaves the layer.
// The layer is unpacked into `<target>.tmp-XXXXXX` next to the target and renamed
// into place only when everything (including the diffID check) succeeded, so a
// failed or interrupted unpack never leaves a half-filled target visible; on error
// the temporary directory is removed.
//
// Thread-safety: unpackLayer may run concurrently for different targets. It does not
// change the process umask (modes are set explicitly).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/status.h"

namespace berth::image {

// Added to the uid/gid of every entry when ownership is applied (user-namespaced
// snapshots: the container's 0 maps to `uid_offset` on the host).
struct IdShift {
  uint32_t uid_offset = 0;
  uint32_t gid_offset = 0;
};

struct UnpackOptions {
  // Names the layer in errors, e.g. "sha256:0a1b…" or "docker.io/library/busybox
  // layer 2/3". Defaults to the layer path (or "fd N").
  std::string display_name;
  // When set ("sha256:<hex>"), the computed diffID must equal it, else the unpack
  // fails with DataLoss and leaves no target.
  std::optional<std::string> expected_diff_id;
  // chown entries to their uid/gid from the tar (+ id_shift). Needs root unless every
  // owner is the caller. When false, entries belong to the caller.
  bool apply_ownership = true;
  std::optional<IdShift> id_shift;
  // syncfs(2) the layer before renaming it into place, so the target is on disk once
  // visible. Callers that sync the result themselves before publishing it (the
  // snapshotter commits with its own sync) set false to avoid syncing twice.
  bool sync = true;
};

struct UnpackResult {
  std::string diff_id;              // "sha256:<hex>" of the uncompressed tar stream
  uint64_t uncompressed_size = 0;   // bytes in the uncompressed tar stream
  uint64_t unpacked_size = 0;       // sum of the sizes of the regular files written
  uint64_t entries = 0;             // tar entries applied (whiteouts included)
  uint64_t skipped_xattrs = 0;      // xattrs not set (unsupported namespace/fs/privilege)
};

// Unpacks the layer blob at `layer_path` into `target_dir`, which must not exist or be
// an empty directory; its parent directory must exist. On success `target_dir` holds
// the layer (mode and mtime from the tar's "./" entry when present, else 0755).
// Errors (each message starts with `unpack layer "<display_name>": ` and names the
// entry path when one is involved):
//   InvalidArgument — corrupt/truncated stream, unsupported compression or format,
//     an entry path leaving the layer root, a hard link to a missing target;
//   DataLoss — diffID mismatch (the content is not the layer the config names);
//   FailedPrecondition — an entry placed through a symlink or a non-directory, a hard link to a symlink leaving the layer, target not empty;
//   PermissionDenied — whiteouts, device nodes or ownership without root;
//   errno-derived codes for filesystem failures (ENOSPC → ResourceExhausted).
// On any error nothing is left at target_dir (nor in its temporary sibling).
StatusOr<UnpackResult> unpackLayer(const std::string& layer_path,
                                   const std::string& target_dir,
                                   const UnpackOptions& options = {});

// Same, reading the layer blob from `fd` (from its current offset to EOF). The fd is
// not closed.
StatusOr<UnpackResult> unpackLayerFd(int fd, const std::string& target_dir,
                                     const UnpackOptions& options = {});

}  // namespace berth::image
