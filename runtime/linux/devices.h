// Device nodes in the container's /dev (runtime-spec config-linux.md "Devices" and
// "Default Devices"). Used by rootfs::setupRootfs() after the config's mounts, inside
// the container's mount namespace and before pivot_root; paths are host paths under
// the rootfs.
//
// Without a user namespace each device is made with mknod(2), then chmod'ed to its
// fileMode (default 0666: mknod's mode is masked by the umask) and chown'ed when the
// config gives a uid or gid. Inside a user namespace mknod needs CAP_MKNOD in the
// initial namespace, so an empty file is created instead and the host's device (the
// same path on the host) is bind-mounted over it.
// Thread-safety: run in the single-threaded container init only.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "common/syscalls.h"
#include "runtime/oci/config.h"

namespace berth::devices {

// The runtime-spec "Default Devices" every Linux container gets: /dev/null (1:3),
// /dev/zero (1:5), /dev/full (1:7), /dev/random (1:8), /dev/urandom (1:9) and
// /dev/tty (5:0), all character devices with mode 0666 owned by the container's root.
// (/dev/console and /dev/ptmx are set up by the console code and rootfs.h.)
const std::vector<oci::Device>& defaultDevices();

// `configured` followed by every default device whose path is not already in it, so a
// config can override e.g. /dev/null's mode. Paths compare after lexical cleaning
// ("/dev//null" == "/dev/null"). Pure; thread-safe.
std::vector<oci::Device> withDefaults(const std::vector<oci::Device>& configured);

// The S_IF* file type for an OCI device type: "c" and "u" -> S_IFCHR, "b" -> S_IFBLK,
// "p" -> S_IFIFO. Errors: InvalidArgument naming the device and the accepted types.
StatusOr<mode_t> fileType(const oci::Device& device);

// Creates one device under `rootfs` (device.path resolved with fs::secureJoin, missing
// parent directories created 0755). An existing node at the path is kept (mknod
// EEXIST). With `bind_from_host` an empty file is created and the host's device.path
// bind-mounted onto it (MS_BIND). Errors name the device and the failed call, e.g.
// `create device "/dev/fuse" (rootfs path "/b/rootfs/dev/fuse"): mknod: Operation not
// permitted (EPERM)`.
Status createDevice(Syscalls& sys, const std::string& rootfs, const oci::Device& device,
                    bool bind_from_host);

// createDevice() for every device of withDefaults(devices), in order; stops at the
// first error.
Status createDevices(Syscalls& sys, const std::string& rootfs,
                     const std::vector<oci::Device>& devices, bool bind_from_host);

}  // namespace berth::devices
