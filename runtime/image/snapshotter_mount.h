// The filesystem side of the overlay snapshotter (snapshotter.h): performing a
// snapshot's mount, however long its layer chain, and measuring directory usage.
// Internal to runtime/image; callers use Snapshotter.
//
// Thread-safety: all functions are thread-safe; mounts affect the calling thread's
// mount namespace.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "runtime/image/snapshotter.h"

namespace berth::image::snapshotter_internal {

// An overlay mount of snapshots under `root` (open as `root_fd`): lower layers
// <root>/<id>/fs for each of `lowers` (top-most first), plus, when `upper_id` is not 0,
// the upper <root>/<upper_id>/fs and work <root>/<upper_id>/work directories.
struct OverlayLayers {
  std::string root;
  int root_fd = -1;
  std::vector<int64_t> lowers;
  int64_t upper_id = 0;
};

// The overlay options with absolute paths, as MountSpec carries them.
std::vector<std::string> overlayOptions(const OverlayLayers& layers);

// Mounts the overlay on `target`: with mount(2) when the options fit in a page (less
// a margin), else with the new mount API and one "lowerdir+" per layer (Linux 6.8+),
// else (the kernel refuses "lowerdir+" with EINVAL, or the environment variable
// BERTH_SNAPSHOTTER_NO_LOWERDIR_PLUS=1 is set) from a helper thread that
// unshare(CLONE_FS)s and fchdir()s to the root, with "<id>/fs" relative paths.
// `what` prefixes errors. Errors: the failing syscall's errno and the kernel's
// filesystem-context messages; ResourceExhausted when even relative paths overflow
// the page on a kernel without "lowerdir+".
Status mountOverlay(const OverlayLayers& layers, const std::string& target,
                    const std::string& what);

// Bind-mounts `source` on `target` recursively, read-only when `read_only`.
// Errors: the mount errno prefixed by `what`; nothing stays mounted on failure.
Status mountBind(const std::string& source, const std::string& target, bool read_only,
                 const std::string& what);

// Allocated bytes (st_blocks * 512) and inodes of `path` and everything below it,
// counting hard-linked inodes once and not crossing into other filesystems. Entries
// removed during the walk are skipped. Errors: stat/open errors with the path.
StatusOr<SnapshotUsage> dirUsage(const std::string& path);

}  // namespace berth::image::snapshotter_internal
