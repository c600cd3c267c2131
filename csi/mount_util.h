// Mount helpers for the CSI node service: mount-point checks, the bind-mount options
// a VolumeCapability.mount.mount_flags list may carry, and bind/unbind of a volume at
// a target path. All mount(2) calls go through berth::Syscalls (tests can record them).
//
// Thread-safety: thread-safe; mounts affect the calling thread's mount namespace.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "common/syscalls.h"

namespace berth::csi {

// True when `path` is the root of a mount (statx STATX_ATTR_MOUNT_ROOT, else
// /proc/self/mountinfo). False when it does not exist.
StatusOr<bool> isMountPoint(const std::string& path);

// MS_* flags for a bind mount from CSI mount_flags: "ro", "rw", "nosuid", "suid",
// "nodev", "dev", "noexec", "exec", "noatime", "atime", "relatime", "strictatime",
// "nodiratime", "diratime", "sync", "async", "defaults", "bind", "rbind". Errors:
// InvalidArgument naming the first other flag (a bind mount takes no filesystem
// options).
StatusOr<unsigned long> parseMountFlags(const std::vector<std::string>& flags);

// Bind-mounts `source` on `target` (which must exist), then, when `flags` (MS_RDONLY,
// MS_NOSUID, ...) is non-zero, remounts the bind with them (the kernel ignores
// per-mount flags on the first MS_BIND call). On a failed remount the bind is undone.
// Errors: the mount errno with both paths.
Status bindMount(Syscalls& sys, const std::string& source, const std::string& target,
                 unsigned long flags);

// Unmounts every mount stacked on `target` (up to a few levels). OK when nothing is
// mounted there or it does not exist.
Status unmountAll(Syscalls& sys, const std::string& target);

}  // namespace berth::csi
