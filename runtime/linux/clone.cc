#include "runtime/linux/clone.h"

#include <linux/sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace berth::linux_clone {

StatusOr<pid_t> forkIntoCgroup(int cgroup_fd) {
  struct clone_args args;
  std::memset(&args, 0, sizeof(args));
  args.flags = CLONE_INTO_CGROUP;
  args.exit_signal = SIGCHLD;
  args.cgroup = static_cast<uint64_t>(cgroup_fd);
  long pid = ::syscall(SYS_clone3, &args, sizeof(args));
  if (pid < 0) {
    int err = errno;
    if (err == ENOSYS || err == E2BIG || err == EINVAL) {
      return unimplemented("clone3 with CLONE_INTO_CGROUP is not available on this kernel");
    }
    return errnoError(err, "clone3 into the container's cgroup");
  }
  return static_cast<pid_t>(pid);
}

}  // namespace berth::linux_clone
