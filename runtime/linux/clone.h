// Forking straight into a cgroup: clone3(2) with CLONE_INTO_CGROUP (Linux 5.7+) starts
// the child in the container's cgroup instead of moving it there afterwards through
// cgroup.procs, which costs a cgroup_threadgroup_rwsem write lock (an RCU grace
// period, ~10 ms here) per container.
// Thread-safety: call only from a single-threaded process (the child is a fork of it;
// raw clone3 skips glibc's fork handlers, which a single-threaded process doesn't need).
#pragma once

#include <sys/types.h>

#include "common/status.h"

namespace berth::linux_clone {

// Like fork(): returns 0 in the child and the child's pid in the parent. The child
// starts in the cgroup whose directory is open as `cgroup_fd` (O_RDONLY|O_DIRECTORY).
// Errors: Unimplemented when the kernel lacks clone3/CLONE_INTO_CGROUP (ENOSYS, E2BIG,
// EINVAL) — fall back to fork() plus a cgroup.procs write; others carry errno.
StatusOr<pid_t> forkIntoCgroup(int cgroup_fd);

}  // namespace berth::linux_clone
