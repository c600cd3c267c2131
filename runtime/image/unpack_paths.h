// Path safety for layer unpack: cleaning tar entry names into layer-relative
// components, and opening/creating directories below a layer root without ever
// following a symlink or leaving the root (openat2 RESOLVE_BENEATH |
// RESOLVE_NO_SYMLINKS, with an O_NOFOLLOW walk as fallback and for precise errors).
//
// These are the guards behind the "unpack is safe against hostile archives":
// a tar may contain symlinks pointing anywhere (they are created, never followed),
// but no entry is ever created through one.
//
// Thread-safety: pure functions over the given fds; callers own the fds.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/unique_fd.h"

namespace berth::image {

// Cleans a tar entry name into components relative to the layer root: a leading "/"
// and "./" are dropped (absolute names are layer-relative, as in `docker save` and
// OCI layers), empty and "." components are removed and ".." pops the previous
// component. An empty result is the layer root itself.
// Errors: InvalidArgument when the name climbs above the root ("../x",
// "/a/../../x"), or contains a NUL byte.
StatusOr<std::vector<std::string>> cleanEntryPath(std::string_view name);

// Joins the first `count` components with "/" (all when count is npos); "." if none.
std::string joinComponents(const std::vector<std::string>& components,
                           size_t count = std::string::npos);

// Opens the directory made of the first `count` components below `root_fd`
// (O_RDONLY | O_DIRECTORY | O_CLOEXEC), never following a symlink and never leaving
// root_fd's tree or filesystem. With `create`, missing components are created as
// directories with mode 0755 (tar streams may omit parent directory entries).
// Errors: FailedPrecondition naming the offending component when it is a symlink or
// not a directory (e.g. `"a" is a symlink; refusing to create entries through it`),
// NotFound when missing and !create, errno errors otherwise.
StatusOr<UniqueFd> openDirBeneath(int root_fd, const std::vector<std::string>& components,
                                  size_t count, bool create);

// rm -rf of `name` in `dir_fd`, never following symlinks. OK if it does not exist.
Status removeBeneath(int dir_fd, const std::string& name);

// True when the symlink value `target`, stored at the layer path `link_components`,
// leaves the layer: it is absolute, or its ".." components climb above the root when
// resolved lexically from the link's directory.
bool symlinkLeavesLayer(const std::vector<std::string>& link_components,
                        std::string_view target);

}  // namespace berth::image
