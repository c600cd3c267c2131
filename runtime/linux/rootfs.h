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
//      dirs), readonlyPaths (bind + remount ro), a read-only /dev remounted ro (it is
//      mounted rw first so devices can be created in it), rootfsPropagation
//      re-applied, root.readonly remount.
// All mount-related syscalls (mount, umount2, pivot_root, mkdir, mknod, symlink, open,
// chdir, fchdir, chroot) go through Syscalls so unit tests can record them; read-only
// inspection (stat, statvfs, readlink, /proc/self/mountinfo) and chmod/chown/unlink of
// nodes just created use libc directly.
// Thread-safety: run in the single-threaded container init only.
#pragma once

#include <string>
#include <vector>

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
  // mknod (which needs CAP_MKNOD in the initial user namespace), and an mqueue mount
  // refused with EPERM is skipped with a warning.
  bool in_user_ns = false;
  // A new cgroup namespace is in use (cgroup mounts show the container's cgroup).
  bool new_cgroup_ns = false;
  // Where the container's "/" is when finishRootfs() runs: "/" after pivotRoot() (the
  // default). Unit tests point it at a temporary directory.
  std::string container_root = "/";
};

// Parsed mount options: MS_* flags, propagation flags (applied with a second mount
// call) and the remaining filesystem data string. Recursive mount attributes ("rro",
// "rnosuid", … which need mount_setattr(2)) are approximated by their non-recursive
// flag on the top mount.
struct MountOptions {
  unsigned long flags = 0;            // MS_RDONLY, MS_NOSUID, MS_BIND, MS_REC, …
  unsigned long propagation = 0;      // MS_SHARED|MS_SLAVE|MS_PRIVATE|MS_UNBINDABLE (+MS_REC)
  std::string data;                   // "mode=755,size=65536k"
};

// Translates OCI/fstab mount options ("ro", "nosuid", "rbind", "rprivate", "mode=755",
// …) into flags, applied left to right ("ro,rw" is rw). "defaults" sets nothing;
// "tmpcopyup" is ignored (debug log). When several propagation options are given the
// last one wins. Unknown options are passed to the filesystem as data (the kernel
// rejects the truly unknown with EINVAL, reported by setupRootfs with the mount named).
// Pure; thread-safe.
MountOptions parseMountOptions(const std::vector<std::string>& options);

// linux.rootfsPropagation value -> MS_* flags for "/": "shared", "slave", "private",
// "unbindable" and their recursive "r…" forms; "" (absent) is MS_REC|MS_SLAVE, so
// container mounts never propagate to the host while host mounts still reach the
// container (runc's default). Errors: InvalidArgument naming the accepted values.
StatusOr<unsigned long> parsePropagation(const std::string& value);

// The flags of the mount holding `path` (statvfs(2)) that a bind remount must repeat
// or it is refused with EPERM inside a user namespace (the kernel locks them): ro
// (MS_RDONLY), nosuid, nodev, noexec, and the atime mode (MS_NOATIME, MS_NODIRATIME,
// or MS_STRICTATIME when neither noatime nor relatime is set; relatime is the kernel's
// default for a remount, so it adds nothing). 0 when statvfs fails.
unsigned long preservedMountFlags(const std::string& path);

// Lexically cleans an absolute container path: repeated slashes, "." and ".." (clamped
// at "/") removed, no trailing slash ("/dev//pts/" -> "/dev/pts"). A relative path is
// treated as relative to "/". Pure; thread-safe.
std::string cleanPath(const std::string& path);

// Creates the mount point `path` (an absolute host path already resolved inside the
// rootfs with fs::secureJoin): missing parent directories with mode 0755, then the
// last component as a directory, or as an empty regular file (mode 0644) when
// `is_file` (bind-mounting a file needs a file). An existing node is kept. All
// creation goes through `sys` (mkdir, open+close). Errors name the path and errno.
Status createMountPoint(Syscalls& sys, const std::string& path, bool is_file);

// Step 1 (see the order above), in the container's new mount namespace before
// pivotRoot(): sets the propagation of "/" (linux.rootfsPropagation, default rslave;
// for a shared one the mount holding the rootfs is made private so pivot_root(2)
// accepts it), bind-mounts ctx.rootfs onto itself (MS_BIND|MS_REC), performs
// spec.mounts in order (runtime-spec config.md "Mounts"): each destination is
// resolved inside the rootfs with fs::secureJoin, so symlinks in the image cannot
// place a mount outside it; bind sources relative to ctx.bundle; flags of a bind mount
// applied by a second MS_REMOUNT|MS_BIND call; propagation options by a third call;
// type "cgroup" mounted as cgroup2 (falling back to a read-only rbind of the host's
// cgroup2 mount on EPERM/EBUSY); sysfs refused with EPERM (user namespace without its
// own network namespace) falls back to an rbind of the host's /sys. Then, unless /dev
// is bind-mounted from the host, creates the default devices and linux.devices
// (runtime/linux/devices.h) and the /dev symlinks fd, stdin, stdout, stderr, core
// (when the host has /proc/kcore) and ptmx -> pts/ptmx (when a devpts is mounted at
// /dev/pts). Errors name the mount and its rootfs path, e.g.
// `mount "proc" on "/proc" (rootfs path "/b/rootfs/proc"): Operation not permitted
// (EPERM)`; FailedPrecondition when ctx.sys is null or ctx.rootfs is not absolute.
Status setupRootfs(const Context& ctx, const oci::Spec& spec);

// Step 3: makes ctx.rootfs the root: opens "/" and ctx.rootfs (O_DIRECTORY), fchdir to
// the rootfs, pivot_root(".", "."), fchdir to the old root, marks it MS_SLAVE|MS_REC so
// the detach cannot propagate to the host, umount2(".", MNT_DETACH), chdir("/"). When
// pivot_root(2) fails with EINVAL (rootfs on ramfs/initramfs) falls back to
// MS_MOVE of the rootfs onto "/" and chroot("."). Errors name the failed step.
Status pivotRoot(const Context& ctx);

// Step 4, after pivotRoot(), paths relative to ctx.container_root: linux.maskedPaths
// (config-linux.md "Masked Paths": /dev/null bound over files, a read-only tmpfs over
// directories; missing paths skipped), linux.readonlyPaths ("Readonly Paths": bind
// onto itself with MS_REC, then MS_REMOUNT|MS_BIND|MS_RDONLY keeping the locked
// flags, see preservedMountFlags(); missing paths skipped), a /dev tmpfs asked "ro"
// remounted read-only, linux.rootfsPropagation re-applied to "/" (unless private),
// and root.readonly (config.md "Root") as a read-only bind remount of "/". Errors name
// the path and the failed call.
Status finishRootfs(const Context& ctx, const oci::Spec& spec);

}  // namespace berth::rootfs
