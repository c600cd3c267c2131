// berthd's side of the berth-shim protocol (protocol.h): starting a shim, calling it,
// subscribing to its exit events, and reading the records it leaves on disk (which
// stay valid after the shim is gone).
//
// Thread-safety: ShimClient is thread-safe (each call uses its own connection, so
// calls from many threads run concurrently, and a slow stopContainer does not block
// other calls). A Subscription is used by one thread at a time. startShim forks via
// posix_spawn, which is safe in a multi-threaded process.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/unique_fd.h"
#include "runtime/shim/protocol.h"

namespace berth::shim {

struct StartOptions {
  std::string shim_binary;     // path of berth-shim
  std::string pod_id;
  std::string state_dir;       // per-pod shim state, e.g. /run/berth/shims/<pod-id>
  std::string runtime;         // OCI runtime binary path
  std::string runtime_root;    // the runtime's --root
  std::string log_level = "info";
  std::chrono::milliseconds timeout{10000};
};

struct ShimProcess {
  pid_t pid = 0;
  uint64_t start_time = 0;     // /proc/<pid>/stat field 22, pairs with pid
  std::string socket;          // <state_dir>/shim.sock
};

// Starts a daemonized shim and waits until it serves its socket. Errors: the shim's
// own message (e.g. AlreadyExists when one already serves the state dir), or
// DeadlineExceeded after `timeout`.
StatusOr<ShimProcess> startShim(const StartOptions& options);

// The shim recorded in <state_dir>/shim.pid, if that process is still alive.
// Errors: NotFound when there is no live shim for the state dir.
StatusOr<ShimProcess> findShim(const std::string& state_dir);

// The exit record the shim wrote for a container (<state_dir>/containers/<id>/exit.json).
// Errors: NotFound when the container has not exited (or is unknown).
StatusOr<ContainerState> readExitRecord(const std::string& state_dir, const std::string& id);

// Events from a subscribed connection.
struct ShimEvent {
  std::string type;            // "exit" or "oom"
  std::string container_id;
  ContainerState state;
};

class Subscription {
 public:
  Subscription() = default;
  Subscription(Subscription&&) = default;
  Subscription& operator=(Subscription&&) = default;

  // Waits up to `timeout` for the next event. Errors: DeadlineExceeded on timeout,
  // Unavailable when the shim closed the connection (it exited).
  StatusOr<ShimEvent> next(std::chrono::milliseconds timeout);
  // The socket, for callers that poll many subscriptions (readable = call next()).
  int fd() const { return fd_.get(); }

 private:
  friend class ShimClient;
  UniqueFd fd_;
  std::string buffer_;
};

// An interactive exec started by ShimClient::execStream: the descriptors of the
// process's stdio (the caller reads/writes them itself; closing `stdin_fd` is EOF for
// the process; a pty master also takes TIOCSWINSZ for resizes) and the connection the
// exit code arrives on.
class ExecStream {
 public:
  ExecStream() = default;
  ExecStream(ExecStream&&) = default;
  ExecStream& operator=(ExecStream&&) = default;

  uint64_t exec_id = 0;
  bool tty = false;
  UniqueFd pty;        // tty: the master (read output, write input)
  UniqueFd stdin_fd;   // no tty, stdin asked for: write end
  UniqueFd stdout_fd;  // no tty, stdout asked for: read end
  UniqueFd stderr_fd;  // no tty, stderr asked for: read end

  // Waits up to `timeout` for the process's exit code (128+N when killed by signal N).
  // Errors: DeadlineExceeded; Unavailable when the shim closed the connection first
  // (it exited or restarted: the exit code is lost).
  StatusOr<int> waitExit(std::chrono::milliseconds timeout);
  // The connection, for callers that poll (readable = call waitExit()).
  int exitFd() const { return conn_.get(); }
  // For callers with their own event loop: takes the connection and the bytes already
  // read from it; feed what arrives next to exitCodeFromLines(). The stream is then
  // not usable for waitExit().
  UniqueFd releaseExitConnection(std::string* buffered);
  // An ExecStream whose exit code arrives as an execExit event line on `exit_conn`
  // (for StreamingRuntime implementations other than the shim, and tests).
  static ExecStream fromExitConnection(uint64_t exec_id, bool tty, UniqueFd exit_conn) {
    ExecStream s;
    s.exec_id = exec_id;
    s.tty = tty;
    s.conn_ = std::move(exit_conn);
    return s;
  }
  // Consumes complete lines of `buffer` and returns the exit code once an execExit
  // event is among them (incomplete lines stay in the buffer).
  static std::optional<int> exitCodeFromLines(std::string& buffer);

 private:
  friend class ShimClient;
  UniqueFd conn_;
  std::string buffer_;
};

// An attach session started by ShimClient::attach. Output copies arrive on
// stdout_fd/stderr_fd from now on (EOF when the container exits); stdin_fd writes to the
// container's stdin (with a tty: the pty master, which also takes TIOCSWINSZ). The
// session lasts until `conn` is closed (stdin_once then closes the container's stdin).
struct AttachStream {
  uint64_t attach_id = 0;
  bool tty = false;
  UniqueFd stdin_fd, stdout_fd, stderr_fd;
  UniqueFd conn;
};

class ShimClient {
 public:
  // A client for the shim listening at `socket_path`. No connection is made yet.
  explicit ShimClient(std::string socket_path) : socket_path_(std::move(socket_path)) {}

  // Sends one request and waits up to `timeout` for its reply. Errors: Unavailable
  // when the shim cannot be reached or hangs up, DeadlineExceeded on timeout, else
  // the shim's error with its code.
  StatusOr<Json> call(const std::string& method, const Json& params,
                      std::chrono::milliseconds timeout = std::chrono::seconds(60)) const;

  // Typed wrappers (see protocol.h for semantics and errors).
  StatusOr<SandboxNamespaces> createSandbox(const SandboxSpec& spec) const;
  StatusOr<SandboxNamespaces> sandboxStatus() const;
  Status removeSandbox(const std::string& ns_dir = "") const;
  StatusOr<ContainerState> createContainer(const ContainerSpec& spec) const;
  StatusOr<ContainerState> startContainer(const std::string& id) const;
  StatusOr<ContainerState> state(const std::string& id) const;
  StatusOr<std::vector<ContainerState>> listContainers() const;
  Status kill(const std::string& id, int signal) const;
  // Sends `stop_signal` (0 = SIGTERM), waits `timeout_s`, then SIGKILL; returns the
  // final state once the container has exited.
  StatusOr<ContainerState> stopContainer(const std::string& id, int64_t timeout_s,
                                         int stop_signal = 0) const;
  Status deleteContainer(const std::string& id, bool force = false) const;
  Status reopenLog(const std::string& id) const;
  StatusOr<ExecResult> execSync(const ExecSpec& spec) const;
  // Starts an interactive exec (protocol.h execStream) and returns its descriptors.
  // Errors: the shim's (NotFound container, FailedPrecondition not running,
  // InvalidArgument spec), Unavailable/DeadlineExceeded talking to it, DataLoss when
  // the reply's descriptors do not match what it names.
  StatusOr<ExecStream> execStream(const ExecStreamSpec& spec,
                                  std::chrono::milliseconds timeout = std::chrono::seconds(30)) const;
  // Starts an attach session (protocol.h attach). Errors: as execStream; FailedPrecondition
  // for stdin on a container without one, or one that is not created/running.
  StatusOr<AttachStream> attach(const AttachSpec& spec,
                                std::chrono::milliseconds timeout = std::chrono::seconds(30)) const;
  // Asks the shim to exit (FailedPrecondition while containers run, unless `force`,
  // which kills them first).
  Status shutdown(bool force = false) const;
  // Opens a connection that receives exit/OOM events from now on.
  StatusOr<Subscription> subscribe(std::chrono::milliseconds timeout = std::chrono::seconds(5)) const;

  const std::string& socketPath() const { return socket_path_; }

 private:
  // One call whose reply line carries descriptors; `conn` stays open for what follows.
  StatusOr<Json> callWithFds(const std::string& method, const Json& params,
                             std::chrono::milliseconds timeout, UniqueFd& conn, std::string& buffer,
                             std::vector<UniqueFd>& fds) const;

  StatusOr<UniqueFd> connect() const;
  std::string socket_path_;
};

}  // namespace berth::shim
