// The container's root filesystem, built inside the container's new mount namespace
// (runtime-spec config.md "Root", "Mounts"; config-linux.md "Devices", "Default
// Devices", "Rootfs Mount Propagation", "Masked Paths", "Readonly Paths").
//
// Order of use by the container init (runc's order):
//   1. setupRootfs(): propagation of "/", bind rootfs onto itself, every mount of the
//      config in order, default devices + linux.devices (mknod, or bind from the host
//      inside a user namespace), /dev symlinks (fd, stdin, stdout, stderr, core,
//      ptmx -> pts/ptmx).
//   2. createContainer hooks run (not here).
//   3. pivotRoot(): pivot_root into the rootfs, detach the old root; chroot fallback
//      when the rootfs is on a ramfs/initramfs (pivot_root(2) EINVAL).
//   4. finishRootfs(): maskedPaths (bind /dev/null over files, read-only tmpfs over
//      dirs), readonlyPaths (bind + remount ro), rootfsPropagation re-applied,
//      root.readonly remount.
// All syscalls go through Syscalls so unit tests can record them.
// Thread-safety: run in the single-threaded container init only.
#pragma once

#include <string>

#include "common/status.h"
#include "common/syscalls.h"
#include "runtime/oci/config.h"

namespace berth::rootfs {

struct Context {
  Syscalls* sys = nullptr;
  // Absolute host path of the rootfs (root.path resolved against the bundle).
  std::string rootfs;
  // The bundle directory; relative bind-mount sources resolve against it.
  std::string bundle;
  // A new user namespace is in use: devices are bind-mounted from the host instead of
  // mknod (which needs CAP_MKNOD in the initial user namespace).
  bool in_user_ns = false;
  // A new cgroup namespace is in use (cgroup mounts show the container's cgroup).
  bool new_cgroup_ns = false;
};

// Parsed mount options: MS_* flags, propagation flags (applied with a second mount
// call), recursive-attribute flags, and the remaining filesystem data string.
struct MountOptions {
  unsigned long flags = 0;            // MS_RDONLY, MS_NOSUID, MS_BIND, MS_REC, …
  unsigned long propagation = 0;      // MS_SHARED|MS_SLAVE|MS_PRIVATE|MS_UNBINDABLE (+MS_REC)
  std::string data;                   // "mode=755,size=65536k"
};

// Translates OCI/fstab mount options ("ro", "nosuid", "rbind", "rprivate", "mode=755",
// …) into flags. Unknown options are passed to the filesystem as data (the kernel
// rejects the truly unknown with EINVAL, reported by setupRootfs with the mount named).
MountOptions parseMountOptions(const std::vector<std::string>& options);

// rootfsPropagation value -> MS_* flags (default MS_REC|MS_PRIVATE... runc uses rslave
// by default). Errors: InvalidArgument for an unknown value.
StatusOr<unsigned long> parsePropagation(const std::string& value);

Status setupRootfs(const Context& ctx, const oci::Spec& spec);
Status pivotRoot(const Context& ctx);
Status finishRootfs(const Context& ctx, const oci::Spec& spec);

}  // namespace berth::rootfs
