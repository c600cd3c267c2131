// The translation from a CRI container request to an OCI runtime spec (config.json):
// CRI v1 ContainerConfig + PodSandboxConfig + the image config + what berthd set up for
// the pod -> oci::Spec for berth-runtime (issue 6, "Containers"). Pure apart from
// reading host device nodes (ContainerConfig.devices, privileged containers' /dev) and
// Localhost seccomp profile files; it mounts, creates and writes nothing.
//
// The rules follow what kubelet expects from containerd's CRI plugin and CRI-O:
// - base: the default spec (oci::defaultSpec, like `runc spec`) without hostname and
//   rlimits, root read-write unless readonly_rootfs, no terminal unless tty;
// - process: args from mergeCommand, env = PATH default, HOSTNAME, TERM=xterm with a tty,
//   then the image Env and the CRI envs (mergeEnv), cwd from mergeWorkingDir, the
//   resolved user with the supplemental groups, the 14 default capabilities of the
//   field (CHOWN DAC_OVERRIDE FSETID FOWNER MKNOD NET_RAW SETGID SETUID SETFCAP SETPCAP
//   NET_BIND_SERVICE SYS_CHROOT KILL AUDIT_WRITE) with add/drop applied ("ALL" first,
//   then single names), no_new_privs, oom_score_adj;
// - mounts: the default /proc /dev /dev/pts /dev/mqueue /sys /sys/fs/cgroup, the pod's
//   /etc/hostname, /etc/hosts, /etc/resolv.conf and /dev/shm unless the CRI mounts
//   bring their own, then the CRI mounts (rbind, ro/rw, rprivate/rslave/rshared, rro),
//   parents before children; a CRI mount replaces a default mount at the same place
//   and a CRI /dev replaces everything under /dev;
// - namespaces: join the pod's network/IPC/UTS by path (none when the pod uses the
//   node's), PID per NamespaceOption.pid, a new mount namespace, a new cgroup namespace
//   on cgroup v2 hosts for unprivileged containers; no hostname (the pod's UTS has it);
// - privileged: every capability, every host device, all devices allowed, writable
//   /sys and /sys/fs/cgroup, no masked/read-only paths, no seccomp;
// - seccomp: RuntimeDefault -> defaultSeccompProfile(bounding caps), Unconfined or
//   unset -> none, Localhost -> the profile file; AppArmor and SELinux are not
//   available in berth and are ignored with a log line;
// - resources, sysctls (the pod's), devices, cgroupsPath and the io.kubernetes.cri.*
//   annotations containerd sets (container-type, sandbox-id, sandbox-name,
//   sandbox-namespace, sandbox-uid, container-name, image-name).
//
// Errors are InvalidArgument naming the CRI field, e.g.
// `ContainerConfig.linux.security_context.capabilities.add_capabilities[2]: unknown
// capability "CAP_FOO"; …`; FailedPrecondition when the pod lacks something the config
// asks for (a pinned namespace, rro support); Unimplemented for CRI features berth does
// not support yet (user namespaces, idmapped mounts, image volumes, CDI devices).
//
// Thread-safety: pure functions, thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "cri/proto/api.pb.h"
#include "runtime/image/image_config.h"
#include "runtime/oci/config.h"

namespace berth::cri {

// The pod's namespaces as berthd pinned them (bind mounts under
// <state>/ns/<pod-id>/, or /proc/<pause>/ns/pid). "" where the pod has none, e.g. the
// network and UTS of a host-network pod.
struct PodNamespacePaths {
  std::string network;
  std::string ipc;
  std::string uts;
  std::string pid;  // the pause process's PID namespace, only for a shared PID namespace
};

// The pod's files on the host (written by writeSandboxFiles, pod_files.h). "" leaves
// that file out of the container (the image's own is seen).
struct PodFilePaths {
  std::string hostname;     // -> /etc/hostname
  std::string hosts;        // -> /etc/hosts
  std::string resolv_conf;  // -> /etc/resolv.conf
  // -> /dev/shm: the pod's shm tmpfs. With IPC NamespaceMode NODE the host's /dev/shm
  // is bound instead (this field is ignored); "" keeps the default private tmpfs.
  std::string shm;
};

struct ContainerSpecInput {
  std::string container_id;             // berthd's container id
  std::string sandbox_id;               // berthd's pod id
  runtime::v1::ContainerConfig config;  // CreateContainerRequest.config
  runtime::v1::PodSandboxConfig sandbox_config;  // CreateContainerRequest.sandbox_config
  image::ImageConfig image;             // the resolved image's config
  std::string image_name;               // the image as named for the annotation
  // root.path: the container's root filesystem, absolute, or relative to the bundle
  // (the snapshot's MountSpecs are mounted there by the bundle's creator).
  std::string rootfs = "rootfs";
  PodNamespacePaths namespaces;
  // The PID namespace of NamespaceOption.target_id (PID mode TARGET).
  std::string target_pid_namespace;
  PodFilePaths files;
  // The pod's hostname (HOSTNAME in the environment); "" -> PodSandboxConfig.hostname,
  // else the node's hostname.
  std::string hostname;
  // linux.cgroupsPath (see containerCgroupsPath); "" lets the runtime choose.
  std::string cgroups_path;
  // The user the process runs as (resolveContainerUser).
  image::ResolvedUser user;
  // The host has a unified cgroup v2 hierarchy: unprivileged containers get a cgroup
  // namespace (as containerd does); on v1/hybrid hosts they do not.
  bool cgroup_v2 = false;
  // The runtime supports "rro" (recursive read-only) mount options.
  bool rro_supported = true;
  // A swap controller exists (memory.swap.max / memsw): memory limits also cap swap.
  bool swap_available = true;
  // The lowest oom_score_adj the runtime may set (berthd's own, when it cannot lower
  // it: restrict_oom_score_adj); requested values below are raised to it.
  std::optional<int> min_oom_score_adj;
  // Where host devices are found for privileged containers.
  std::string host_dev_dir = "/dev";
};

// Builds the OCI spec for one container (see the file comment for the rules).
// Errors: InvalidArgument naming the CRI field for bad input (unknown capability,
// relative container path, bad device permissions, malformed hugepage size, privileged
// container in an unprivileged pod, run_as_group without a user, …); NotFound for a
// missing device or Localhost profile; FailedPrecondition when a pinned namespace the
// config needs is missing from `input.namespaces` or rro is requested but unsupported;
// Unimplemented for user namespaces, idmapped mounts, image volumes and CDI devices.
StatusOr<oci::Spec> buildContainerSpec(const ContainerSpecInput& input);

// Resolves the user of the container's process in its root filesystem (`rootfs_dir`, a
// host directory such as the mounted snapshot), by the CRI rules: run_as_user (wins),
// else run_as_username, else the image's User; run_as_group replaces the group.
// Supplemental groups: with policy Merge the groups /etc/group lists for the user,
// then LinuxContainerSecurityContext.supplemental_groups; with Strict only the primary
// gid and the listed groups. No duplicates.
// Errors: InvalidArgument `...run_as_group: set without run_as_user or run_as_username`,
// negative ids; NotFound for a user or group missing from the image (resolveUser).
StatusOr<image::ResolvedUser> resolveContainerUser(const runtime::v1::ContainerConfig& config,
                                                   const image::ContainerDefaults& image,
                                                   const std::string& rootfs_dir,
                                                   std::string_view image_ref);

// The stop signal: ContainerConfig.stop_signal when set, else the image's StopSignal,
// else SIGTERM. Errors: InvalidArgument for an unknown image StopSignal.
StatusOr<int> containerStopSignal(const runtime::v1::ContainerConfig& config,
                                  const image::ContainerDefaults& image);

// linux.cgroupsPath for a container of a pod with `cgroup_parent`: with the systemd
// driver (a parent ending in ".slice") "<parent>:berth:<id>", else "<parent>/<id>".
// An empty parent gives "/berth/<id>" (cgroupfs) or "system.slice:berth:<id>".
// Validates CRI LinuxContainerResources and converts them into OCI linux.resources
// (cpu shares/quota/period/cpuset, memory limit and swap, hugepage limits, unified),
// on top of `base` (e.g. a spec's current resources, whose devices are kept).
// Memory without an explicit swap limit gets no swap when `swap_available`.
// oom_score_adj is a process setting and is not converted. Errors: InvalidArgument
// naming the field ("ContainerConfig.linux.resources.cpu_quota: ...").
StatusOr<oci::Resources> convertResources(const runtime::v1::LinuxContainerResources& r,
                                          bool swap_available, oci::Resources base = {});

std::string containerCgroupsPath(const std::string& cgroup_parent, const std::string& id,
                                 bool systemd);

// Every Linux capability name in number order (CAP_CHOWN … CAP_CHECKPOINT_RESTORE).
const std::vector<std::string>& allCapabilities();
// The default capability set of a CRI container (14 names, see the file comment).
const std::vector<std::string>& defaultCapabilities();

}  // namespace berth::cri
