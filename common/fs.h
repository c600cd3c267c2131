// Filesystem helpers returning Status with the path in every error.
// Thread-safety: all functions are thread-safe (they share no state), but concurrent
// writers of the same path race as the underlying syscalls do.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace berth::fs {

// Reads a whole file. Errors: NotFound if missing, PermissionDenied, Internal.
StatusOr<std::string> readFile(const std::string& path);

// kDurable: fsync the file and its directory, so the new content survives a power
// loss (persistent state). kVolatile: skip the fsyncs for state that does not outlive
// a reboot anyway (the runtime's /run state): still atomic for readers and crashes of
// the process, and ~10 ms cheaper per write on a real disk.
enum class Durability { kDurable, kVolatile };

// Writes `data` to `path` atomically: a temp file in the same directory, (fsync),
// rename over `path`, (fsync of the directory). Readers see the old or the new
// content, never a torn one; a crash leaves at most a "<path>.tmp-*" file behind.
Status writeFileAtomic(const std::string& path, std::string_view data, mode_t mode = 0644,
                       Durability durability = Durability::kDurable);

// Writes `data` to an existing file with O_WRONLY|O_TRUNC (cgroupfs/procfs style
// single write). Errors carry the path and errno.
Status writeFile(const std::string& path, std::string_view data);

// mkdir -p with `mode` for created directories. OK if it already exists as a dir.
Status mkdirAll(const std::string& path, mode_t mode = 0755);

// rm -rf that never crosses into another filesystem (mount points are left alone and
// reported as an error). OK if `path` does not exist.
Status removeAll(const std::string& path);

// True if `path` exists (lstat succeeds).
bool exists(const std::string& path);

// Joins path components with single slashes ("a/" + "/b" -> "a/b").
std::string join(std::string_view a, std::string_view b);

// Resolves `unsafe` (an absolute or relative path inside a container) against `root`
// as if `root` were "/", following symlinks without ever leaving `root` (".." and
// absolute symlink targets are clamped at `root`). Missing trailing components are
// kept as written. Used to place mounts inside a rootfs safely.
StatusOr<std::string> secureJoin(const std::string& root, const std::string& unsafe);

// Lists the names in a directory (without "." and "..").
StatusOr<std::vector<std::string>> listDir(const std::string& path);

// Lists the names of the subdirectories of `path` (not following symlinks), using the
// directory entry types so no stat is needed on filesystems that report them.
StatusOr<std::vector<std::string>> listSubdirs(const std::string& path);

}  // namespace berth::fs
