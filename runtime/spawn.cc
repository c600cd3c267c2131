#include "runtime/spawn.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include <spdlog/spdlog.h>

#include "common/strings.h"
#include "common/unique_fd.h"
#include "runtime/linux/clone.h"

namespace berth::runtime {

StatusOr<pid_t> forkInCgroup(cgroups::Manager& cgroup, spdlog::logger& logger) {
  UniqueFd cg_fd(::open(cgroup.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (cg_fd) {
    auto cloned = linux_clone::forkIntoCgroup(cg_fd.get());
    if (cloned.ok()) return *cloned;
    logger.debug("{}; moving the process through cgroup.procs", std::string(cloned.status().message()));
  }
  pid_t pid = ::fork();
  if (pid < 0) return lastErrnoError("fork");
  if (pid == 0) return 0;
  if (Status st = cgroup.addProcess(pid); !st.ok()) {
    ::kill(pid, SIGKILL);
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    return withContext(st, "join cgroup");
  }
  return pid;
}

}  // namespace berth::runtime
