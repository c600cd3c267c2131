// The child side of `create` and `exec` (internal to runtime/): the namespace helper
// that joins/creates namespaces and forks the container process, and the container
// init that builds the rootfs and waits on the exec FIFO. Both report failures to the
// parent over the sync socket and never return.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include "runtime/linux/namespaces.h"
#include "runtime/oci/config.h"

namespace spdlog {
class logger;
}

namespace berth::runtime {

struct InitContext {
  const oci::Spec* spec = nullptr;
  std::string id;
  std::string bundle;
  std::string rootfs;
  int sync_fd = -1;          // child end of the sync socketpair
  int state_dir_fd = -1;     // <root>/<id>, to open exec.fifo after pivot_root
  int console_fd = -1;       // connected console socket, or -1
  bool no_pivot = false;
  bool no_new_keyring = false;
  int preserve_fds = 0;
  ns::Plan* plan = nullptr;
  spdlog::logger* logger = nullptr;
};

// Runs in the first child of `create`: joins namespaces by path, creates a user
// namespace (asking the parent to write the id maps), unshares the other namespaces,
// forks the init, reports its pid and exits.
[[noreturn]] void runCreateHelper(InitContext& ctx);

struct ExecContext {
  const oci::Process* process = nullptr;
  std::optional<oci::Seccomp> seccomp;
  std::string id;
  int sync_fd = -1;
  int console_fd = -1;
  int preserve_fds = 0;
  bool in_user_ns = false;
  ns::Plan* plan = nullptr;
  spdlog::logger* logger = nullptr;
};

// Runs in the first child of `exec`: joins the container's namespaces, forks the
// process that will exec, reports its pid and exits.
[[noreturn]] void runExecHelper(ExecContext& ctx);

}  // namespace berth::runtime
