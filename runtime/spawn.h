// Forking the first child of create/exec into the container's cgroup (internal to
// runtime/).
#pragma once

#include <sys/types.h>

#include "common/status.h"
#include "runtime/cgroups/manager.h"

namespace spdlog {
class logger;
}

namespace berth::runtime {

// Like fork(), but the child starts in `cgroup`: clone3(CLONE_INTO_CGROUP) when the
// kernel can (no cgroup.procs migration, which costs an RCU grace period), otherwise
// fork() and the parent moves the child through cgroup.procs. Either way the child must
// wait for the parent's go-ahead (the sync socket) before doing work to be accounted.
// Returns 0 in the child and its pid in the parent. Errors (parent only): the fork
// failed, or the move failed — the child is then killed and reaped.
// Thread-safety: single-threaded processes only (see runtime/linux/clone.h).
StatusOr<pid_t> forkInCgroup(cgroups::Manager& cgroup, spdlog::logger& logger);

}  // namespace berth::runtime
