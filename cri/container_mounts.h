// Mount and device helpers of buildContainerSpec (container_spec.h), split out to keep
// files small. Internal to cri/: not a public contract.
//
// Thread-safety: pure functions apart from reading host device nodes; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "cri/container_spec.h"
#include "runtime/oci/config.h"

namespace berth::cri::detail {

// Lexically cleaned absolute path: no "//", ".", ".." or trailing "/".
std::string cleanPath(std::string_view path);

// The mounts a container gets on top of the default spec's.
struct MountPlan {
  std::vector<oci::Mount> mounts;  // pod files + CRI mounts, unsorted
  std::string rootfs_propagation;  // "", "rslave" or "rshared" (linux.rootfsPropagation)
};

// Adds the pod's /etc/hostname, /etc/hosts, /etc/resolv.conf (read-only with
// readonly_rootfs) and /dev/shm (the host's with `host_ipc`) binds the CRI mounts do
// not replace.
void addPodFileMounts(const ContainerSpecInput& in, bool host_ipc, MountPlan& plan);

// Translates ContainerConfig.mounts (rbind, propagation, ro/rw, rro, mount_options).
// Errors: InvalidArgument naming `ContainerConfig.mounts[i].<field>`; FailedPrecondition
// for rro without runtime support; Unimplemented for image volumes and idmapped mounts.
Status addCriMounts(const ContainerSpecInput& in, MountPlan& plan);

// The default mounts not replaced by a planned one (same destination, or under /dev
// when /dev is replaced), then the planned mounts, parents before children.
std::vector<oci::Mount> mergeMounts(std::vector<oci::Mount> defaults,
                                    std::vector<oci::Mount> planned);

// Turns "ro" into "rw" in the options of the mount at `destination`.
void makeWritable(std::vector<oci::Mount>& mounts, const std::string& destination);

// Every character/block device under host directory `dir` (recursively, symlinks not
// followed) as it appears under `container_dir`. With `top_level_dev` (the host's
// /dev) pts, shm, fd, mqueue, .lxc, .lxd-mounts, .udev, console and ptmx are skipped.
void collectDevices(const std::string& dir, const std::string& container_dir,
                    bool top_level_dev, std::vector<oci::Device>& out);

// Translates ContainerConfig.devices into linux.devices and allow rules in
// linux.resources.devices (which must be set). Errors: InvalidArgument naming
// `ContainerConfig.devices[i].<field>`; NotFound for a missing host path.
Status addCriDevices(const runtime::v1::ContainerConfig& config, oci::Linux& linux);

}  // namespace berth::cri::detail
