// berth-shim's event loop: one per pod (DESIGN.md "Processes"). It is a child
// subreaper, the parent of every `berth-runtime` invocation for the pod, the owner of
// the containers' stdio (pipes or a pty master) and CRI log files, and the keeper of
// exit records (<state-dir>/containers/<id>/exit.json, written atomically so berthd can
// read them after a restart even if the shim is gone).
//
// Single-threaded: epoll over the listening socket, client connections, a signalfd
// (SIGCHLD, SIGTERM, SIGINT, SIGHUP) and the containers' output fds; deadlines (stop
// escalation, exec timeouts) are the epoll timeout. Forking is therefore safe. Runtime
// commands that finish quickly (create, start, delete) run synchronously with a
// timeout; execSync runs asynchronously and replies when done.
//
// Exit handling: on SIGCHLD every child is reaped (waitpid(-1)); a container init's
// status becomes its exit code (128+N for signal N), finished_at is taken, the OOM
// counter of its cgroup compared with the value at create (cgroup v2 memory.events
// "oom_kill", or v1 memory.oom_control; when neither exists the record says so in
// oom_note), the output fds are drained into the log, exit.json written, and an
// "exit" event (plus "oom" when OOM-killed) sent to subscribers.
//
// State directory layout:
//   shim.sock, shim.pid ({"pid","start_time"}), shim.log (the shim's own log),
//   sandbox.json (the pinned namespaces), containers/<id>/{container.json, exit.json,
//   init.pid, runtime.log, console.sock}
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "common/unique_fd.h"
#include "runtime/shim/cri_log.h"
#include "runtime/shim/protocol.h"

namespace berth::shim {

struct ShimOptions {
  std::string pod_id;
  std::string state_dir;
  std::string runtime;        // path of the OCI runtime binary
  std::string runtime_root;   // its --root
  std::string pause_binary;   // berth-pause, for pods sharing a PID namespace
  std::string log_level = "info";
  int runtime_timeout_ms = 60000;           // limit for create/start/delete/kill
};

// The shim's own log (stderr, which the daemon points at shim.log).
// Levels: 0 debug, 1 info, 2 warn, 3 error.
void shimLog(int level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void setShimLogLevel(const std::string& level);

class Shim {
 public:
  // Takes the listening socket (already bound at <state-dir>/shim.sock). Sets up
  // epoll, the signalfd (blocking the signals it handles) and the subreaper flag.
  // Errors: the failing syscall.
  static StatusOr<std::unique_ptr<Shim>> create(ShimOptions options, UniqueFd listen_fd);
  ~Shim();

  // Serves until shutdown. Returns the process exit code.
  int run();

 private:
  enum class WatchKind { kListen, kSignal, kConn, kCtrOut, kCtrErr, kExecOut, kExecErr };
  struct Watch {
    WatchKind kind;
    std::string container;  // kCtrOut/kCtrErr
    uint64_t key = 0;       // connection id or exec job id
  };
  struct Conn {
    uint64_t id = 0;
    UniqueFd fd;
    std::string in;
    std::string out;
    bool subscriber = false;
    bool want_write = false;
    uint64_t token = 0;
  };
  struct PendingReply {
    uint64_t conn = 0;
    uint64_t request = 0;
  };
  // One attach session: the shim's ends of the output sockets; it ends when its
  // connection closes or the container exits.
  struct Attacher {
    uint64_t conn = 0;
    UniqueFd out, err;
    bool has_stdin = false;
    uint64_t dropped = 0;  // output bytes the client was too slow for
  };
  struct Container {
    ContainerState state;
    std::unique_ptr<CriLogWriter> log;
    UniqueFd out;           // stdout pipe or pty master
    UniqueFd err;           // stderr pipe (none with a tty)
    UniqueFd stdin_w;       // kept open when the container asked for stdin
    uint64_t out_token = 0, err_token = 0;
    uint64_t pid_start_time = 0;
    std::string oom_file;   // memory.events or memory.oom_control, "" if none
    uint64_t oom_base = 0;
    int64_t stop_deadline_ms = 0;  // monotonic; 0 = no stop in progress
    std::vector<PendingReply> stop_waiters;
    bool stdin_once = false;       // close stdin when the first attach with stdin ends
    std::map<uint64_t, Attacher> attachers;  // by attach id
  };
  struct ExecJob {
    uint64_t id = 0;
    std::string container;
    pid_t runtime_pid = 0;
    UniqueFd out, err;
    uint64_t out_token = 0, err_token = 0;
    std::string out_buf, err_buf;
    bool truncated = false;
    bool timed_out = false;
    int64_t deadline_ms = 0;  // 0 = none
    std::string pid_file;
    std::string process_file;
    PendingReply reply;
    bool stream = false;       // execStream: stdio is the client's; exit as an event
    uint64_t stream_conn = 0;  // the connection that gets the execExit event
  };

  Shim(ShimOptions options, UniqueFd listen_fd);
  Status init();

  // Event loop plumbing (shim.cc).
  uint64_t watch(int fd, uint32_t events, Watch w);
  void unwatch(int fd, uint64_t token);
  void acceptClients();
  void onConnReadable(uint64_t conn_id);
  void onConnWritable(uint64_t conn_id);
  void closeConn(uint64_t conn_id);
  void send(uint64_t conn_id, const std::string& line);
  void reply(const PendingReply& to, const StatusOr<Json>& result);
  void broadcastEvent(const Json& event);
  void handleRequest(uint64_t conn_id, const Request& request);
  void onSignal();
  void onDeadlines();
  int nextTimeoutMs() const;
  void maybeFinishShutdown();
  void cleanupAndExit();

  // Sandbox (shim.cc).
  StatusOr<Json> createSandbox(const Json& params);
  StatusOr<Json> sandboxStatus();
  StatusOr<Json> removeSandbox(const Json& params);

  // Containers (shim_containers.cc).
  StatusOr<Json> createContainer(const Json& params);
  StatusOr<Json> startContainer(const Json& params);
  StatusOr<Json> containerState(const Json& params);
  StatusOr<Json> listContainers();
  StatusOr<Json> killContainer(const Json& params);
  // Returns true when the reply was sent (or will be, when the container exits).
  Status stopContainer(const Json& params, const PendingReply& to);
  StatusOr<Json> deleteContainer(const Json& params);
  StatusOr<Json> reopenLog(const Json& params);
  Status execSync(const Json& params, const PendingReply& to);
  // Replies itself (with the descriptors) on success.
  Status execStream(const Json& params, const PendingReply& to);
  // attach (shim_attach.cc): replies itself on success.
  Status attach(const Json& params, const PendingReply& to);
  // Copies output to the container's attachers (non-blocking).
  void feedAttachers(Container& c, bool is_err, std::string_view data);
  // Ends the attach sessions of a closed connection (stdin_once applies).
  void detachConn(uint64_t conn_id);
  void onContainerOutput(const std::string& id, bool is_err);
  void onExecOutput(uint64_t job, bool is_err);
  void onChildExit(pid_t pid, int wait_status);
  void containerExited(Container& c, int wait_status);
  void finishExec(ExecJob& job, int wait_status);
  void closeContainerFd(Container& c, bool is_err);
  StatusOr<Container*> find(const std::string& id);
  std::string containerDir(const std::string& id) const;
  std::vector<std::string> runtimeArgs(std::initializer_list<std::string> args) const;
  Status runRuntime(const std::vector<std::string>& argv, const std::string& what);

  ShimOptions options_;
  UniqueFd listen_fd_;
  UniqueFd epoll_fd_;
  UniqueFd signal_fd_;
  uint64_t next_token_ = 1;
  uint64_t next_conn_ = 1;
  uint64_t next_exec_ = 1;
  uint64_t next_attach_ = 1;
  std::unordered_map<uint64_t, Watch> watches_;
  std::map<uint64_t, Conn> conns_;
  std::map<std::string, Container> containers_;
  std::map<uint64_t, ExecJob> execs_;
  // Sandbox state.
  bool sandbox_created_ = false;
  SandboxNamespaces sandbox_;
  uint64_t pause_start_time_ = 0;
  // Shutdown state.
  bool shutting_down_ = false;
  bool exit_now_ = false;
  std::vector<PendingReply> shutdown_waiters_;
};

}  // namespace berth::shim
