// Helpers shared by the PodManager's files (pod_manager.cc, pod_sandbox.cc,
// pod_containers.cc). Not a public interface.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>

#include "common/status.h"
#include "cri/pod_store.h"

namespace berth::cri {

// Waits until process `pid` is gone (kill(pid, 0) fails with ESRCH), at most `timeout`.
// Returns false on timeout. Used for shims, which are not berthd's children.
bool waitGone(pid_t pid, std::chrono::milliseconds timeout);

// Unpins a pod's namespaces when its shim is gone, killing the pause process the
// shim recorded in <shim_dir>/sandbox.json (pid + start time, so a reused pid is
// never hit). Idempotent.
Status removeNamespacesWithoutShim(const std::string& ns_dir, const std::string& shim_dir);

// Unmounts `dir`/shm (if mounted) and removes the pod's files dir. Idempotent.
Status removePodDir(const std::string& dir);

// Unmounts whatever is mounted on `path` (lazily; "not mounted" is OK).
Status unmountIfMounted(const std::string& path);

// The filter selecting the containers of one pod.
inline ContainerFilter containersOf(const std::string& pod_id) {
  ContainerFilter f;
  f.pod_id_prefix = pod_id;
  return f;
}

// Now, in nanoseconds since the epoch.
int64_t nowNanos();

}  // namespace berth::cri
