// The default config.json that `berth-runtime spec` writes: the same content as
// `runc spec` (runtime-spec 1.1 config.md / config-linux.md), with hostname "berth".
// Thread-safety: pure function (reads the effective uid/gid only).
#pragma once

#include <nlohmann/json.hpp>

namespace berth::oci {

// Returns the default spec as JSON, keys in runc's order (ordered_json converts to
// nlohmann::json implicitly; dump(2) gives what `spec` writes).
//
// The spec runs "sh" as uid 0 with a terminal in new pid, network, ipc, uts, mount
// and cgroup namespaces, rootfs "rootfs" read-only, the usual /proc, /dev, /dev/pts,
// /dev/shm, /dev/mqueue, /sys and /sys/fs/cgroup mounts, CAP_AUDIT_WRITE, CAP_KILL and
// CAP_NET_BIND_SERVICE, RLIMIT_NOFILE 1024, noNewPrivileges, a deny-all device cgroup
// rule, and runc's masked and read-only paths.
//
// `rootless` (like `runc spec --rootless`): adds a user namespace mapping container
// uid/gid 0 to the caller's effective uid/gid (size 1), drops the network namespace,
// bind-mounts the host's /sys read-only instead of a new sysfs, drops the cgroup mount
// and linux.resources, and removes uid=/gid= mount options (those ids are not mapped).
nlohmann::ordered_json defaultSpec(bool rootless);

}  // namespace berth::oci
