// berth-runtime as a library: the OCI runtime operations (runtime-spec runtime.md
// "Operations": state, create, start, kill, delete) plus runc's run, exec, ps,
// list, pause and resume. The CLI in runtime/cli is a thin layer over this class.
//
// Container state machine (runtime.md "Lifecycle"; status is derived each time from
// the state file, the init process and the exec FIFO, so a crash never leaves a lie):
//
//     create ──► creating ──► created ──start──► running ──(exit)──► stopped
//                   │            │                 │  ▲                │
//                   │ (failure)  │ kill            │  │ resume         │ delete
//                   ▼            ▼                 ▼  │                ▼
//               (nothing left) stopped           paused             (gone)
//
// Process tree: `create` forks a helper that joins/creates the namespaces and forks the
// container init; the helper exits, so the init is reparented to this process (a child
// subreaper) and, when `create` exits, to the caller's nearest subreaper (the shim).
// The init waits on <state>/exec.fifo until `start` opens it.
//
// Thread-safety: a Runtime is used by one thread; forking operations must run in a
// single-threaded process (the berth-runtime CLI), never inside the daemon.
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "runtime/cgroups/manager.h"
#include "runtime/container_store.h"
#include "runtime/oci/config.h"
#include "runtime/oci/state.h"

namespace spdlog {
class logger;
}

namespace berth::runtime {

struct RuntimeOptions {
  std::string root = "/run/berth-runtime";  // state directory (--root)
  bool cgroup_strict = false;               // --cgroup-strict
  std::shared_ptr<spdlog::logger> logger;   // defaults to log::get("runtime")
};

struct CreateOptions {
  std::string id;
  std::string bundle;            // directory holding config.json
  std::string console_socket;    // unix socket to send the PTY master to
  std::string pid_file;          // write the init pid here (atomically)
  int preserve_fds = 0;          // fds 3..3+N-1 stay open in the container
  bool no_pivot = false;         // chroot instead of pivot_root (ramfs roots)
  bool no_new_keyring = false;
  // Set by run: when the process wants a terminal and no console socket is given,
  // the PTY master comes back to the caller through this fd (filled in by create).
  bool want_local_console = false;
};

struct ExecOptions {
  std::string id;
  oci::Process process;          // complete process (from --process or built from flags)
  std::string console_socket;
  std::string pid_file;
  bool detach = false;
  int preserve_fds = 0;
  bool ignore_paused = false;
};

class Runtime {
 public:
  static StatusOr<Runtime> open(RuntimeOptions options);

  // create: validates the bundle, sets up namespaces, rootfs, cgroup and process,
  // leaving the init waiting for start. On any failure nothing is left: no state
  // directory, no cgroup, no process. Returns the init pid.
  // `local_console` receives the PTY master when options.want_local_console is set
  // and the process asks for a terminal.
  StatusOr<pid_t> create(const CreateOptions& options, int* local_console = nullptr);

  // start: runs the user process of a created container. Errors: NotFound (no such
  // container), FailedPrecondition (not in created state).
  Status start(const std::string& id);

  // state: the runtime-spec state with the live status.
  StatusOr<oci::State> state(const std::string& id);

  // kill: sends `signal` to the init (or every process in the container with `all`).
  // Errors: FailedPrecondition when the container is stopped.
  Status kill(const std::string& id, int signal, bool all);

  // delete: removes a stopped (or, with `force`, any) container: kills what is left,
  // removes the cgroup and state, runs poststop hooks. Errors: FailedPrecondition
  // "cannot delete container \"id\" that is not stopped: running; stop it first or
  // use --force".
  Status remove(const std::string& id, bool force);

  // pause / resume through the cgroup freezer.
  Status pause(const std::string& id);
  Status resume(const std::string& id);

  // All containers with live status.
  StatusOr<std::vector<oci::State>> list();

  // Resource usage and OOM counters of the container's cgroup (cgroup v2 files;
  // fields whose controller the host lacks are absent).
  StatusOr<cgroups::Stats> stats(const std::string& id);

  // Pids of every process in the container's cgroup.
  StatusOr<std::vector<pid_t>> pids(const std::string& id);

  // exec: runs an extra process in a running container. With detach, returns its pid;
  // otherwise waits and returns its exit status (128+N when killed by signal N).
  StatusOr<int> exec(const ExecOptions& options);

  // Waits for a child of this process (the init after create, an exec'd process),
  // forwarding SIGINT/SIGTERM/SIGHUP/SIGQUIT/SIGUSR1/SIGUSR2 to it and, with a PTY
  // master, copying between our stdio and the terminal. Returns the exit status as a
  // shell reports it (128+N for signal N).
  int waitForeground(pid_t pid, int console_master);

  const ContainerStore& store() const { return store_; }
  spdlog::logger& logger() const { return *logger_; }

 private:
  Runtime(RuntimeOptions options, ContainerStore store);
  oci::Status liveStatus(const ContainerRecord& record) const;
  // The cgroup manager of a stored container.
  std::unique_ptr<cgroups::Manager> cgroupOf(const ContainerRecord& record) const;

  RuntimeOptions options_;
  ContainerStore store_;
  std::shared_ptr<spdlog::logger> logger_;
};

}  // namespace berth::runtime
