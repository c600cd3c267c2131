// Containers: runtime invocations, stdio and logs, exit records, stop and exec.
#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/unix_socket.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/proc.h"
#include "common/scope_guard.h"
#include "runtime/shim/process.h"
#include "runtime/shim/shim.h"

namespace berth::shim {
namespace {

int64_t monotonicMs() {
  struct timespec ts {};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

bool isLive(const ContainerState& s) {
  return s.status == ContainerStatus::kCreated || s.status == ContainerStatus::kRunning;
}

Status validId(const std::string& id) {
  if (id.empty() || id.size() > 1024 || id == "." || id == "..") {
    return invalidArgument("container id \"", id, "\" is not valid");
  }
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.' || c == '+';
    if (!ok) {
      return invalidArgument("container id \"", id,
                             "\" may contain only letters, digits and _ - . +");
    }
  }
  return absl::OkStatus();
}

StatusOr<std::string> idParam(const Json& p) {
  if (!p.is_object() || !p.contains("id") || !p["id"].is_string()) {
    return invalidArgument("missing \"id\" (the container id)");
  }
  return p["id"].get<std::string>();
}

StatusOr<int> signalParam(const Json& p, const char* key, int fallback) {
  if (!p.is_object() || !p.contains(key) || p[key].is_null()) return fallback;
  const Json& v = p[key];
  if (v.is_number_integer()) {
    int n = v.get<int>();
    if (n <= 0 || n >= NSIG) return invalidArgument("\"", key, "\": invalid signal number ", n);
    return n;
  }
  if (!v.is_string()) return invalidArgument("\"", key, "\" must be a signal name or number");
  std::string name = v.get<std::string>();
  if (name.empty()) return fallback;
  if (name.rfind("SIG", 0) == 0) name = name.substr(3);
  static const std::pair<const char*, int> kNames[] = {
      {"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT}, {"KILL", SIGKILL},
      {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"TERM", SIGTERM}, {"STOP", SIGSTOP},
      {"CONT", SIGCONT}, {"WINCH", SIGWINCH}, {"PWR", SIGPWR}, {"ABRT", SIGABRT}};
  for (const auto& [n, s] : kNames) {
    if (name == n) return s;
  }
  int n = std::atoi(name.c_str());
  if (n > 0 && n < NSIG && name.find_first_not_of("0123456789") == std::string::npos) return n;
  return invalidArgument("\"", key, "\": unknown signal \"", v.get<std::string>(),
                         "\"; use a name like SIGTERM or a number");
}

// The cgroup file counting OOM kills of `pid`'s cgroup, or a note why there is none.
std::string findOomFile(pid_t pid, std::string* note) {
  auto text = fs::readFile(strCat("/proc/", pid, "/cgroup"));
  if (!text.ok()) {
    *note = strCat("OOM kills cannot be detected: ", text.status().message());
    return "";
  }
  std::string v2, v1;
  for (const auto& line : split(*text, '\n', true)) {
    auto f = split(line, ':');
    if (f.size() < 3) continue;
    std::string path = line.substr(f[0].size() + f[1].size() + 2);
    if (f[0] == "0" && f[1].empty()) v2 = path;
    for (const auto& ctl : split(f[1], ',')) {
      if (ctl == "memory") v1 = path;
    }
  }
  std::vector<std::string> candidates;
  if (!v2.empty()) {
    std::string base = fs::exists("/sys/fs/cgroup/cgroup.controllers") ? "/sys/fs/cgroup"
                                                                          : "/sys/fs/cgroup/unified";
    candidates.push_back(base + (v2 == "/" ? "" : v2) + "/memory.events");
  }
  if (!v1.empty()) candidates.push_back("/sys/fs/cgroup/memory" + (v1 == "/" ? "" : v1) + "/memory.oom_control");
  for (const auto& c : candidates) {
    if (fs::exists(c)) return c;
  }
  *note = strCat("OOM kills cannot be detected: the container's cgroup has no memory.events "
                 "(cgroup v2 memory controller) nor memory.oom_control (v1); looked for ",
                 candidates.empty() ? std::string("nothing (no cgroup found)")
                                    : joinStrings(candidates, ", "));
  return "";
}

uint64_t readOomKills(const std::string& file) {
  if (file.empty()) return 0;
  auto text = fs::readFile(file);
  if (!text.ok()) return 0;
  for (const auto& line : split(*text, '\n', true)) {
    if (line.rfind("oom_kill ", 0) == 0) return std::strtoull(line.c_str() + 9, nullptr, 10);
  }
  return 0;
}

StatusOr<UniqueFd> listenConsole(const std::string& path) {
  return withContext(listenUnixSocket(path, 0600, 4), "console socket");
}

// Accepts the runtime's connection and receives the pty master (SCM_RIGHTS).
StatusOr<UniqueFd> receiveConsole(int listen_fd, int timeout_ms) {
  struct pollfd p = {listen_fd, POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) <= 0) {
    return absl::DeadlineExceededError("the runtime did not send the terminal's master fd");
  }
  UniqueFd conn(::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC));
  if (!conn) return lastErrnoError("accept on console socket");
  char data[256];
  struct iovec iov = {data, sizeof(data)};
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  struct msghdr msg {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n;
  do {
    n = ::recvmsg(conn.get(), &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return lastErrnoError("receive the terminal's master fd");
  struct cmsghdr* cm = CMSG_FIRSTHDR(&msg);
  if (cm == nullptr || cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) {
    return internalError("the console socket message carried no fd");
  }
  int fd;
  memcpy(&fd, CMSG_DATA(cm), sizeof(int));
  return UniqueFd(fd);
}

// The process of an exec: the container's own (user, cwd, env, capabilities…) with the
// new argv and extra env, handed over with --process as containerd and CRI-O do (no
// command-line parsing of the user's arguments). Returns the file's path.
StatusOr<std::string> writeExecProcess(const std::string& container_dir, const std::string& bundle,
                                       uint64_t exec_id, const std::vector<std::string>& argv,
                                       const std::vector<std::string>& env, bool tty,
                                       const std::string& ctx) {
  ASSIGN_OR_RETURN(Json config, withContext(json::parseFile(fs::join(bundle, "config.json")), ctx));
  if (!config.is_object() || !config.contains("process") || !config["process"].is_object()) {
    return failedPrecondition(ctx, ": the bundle's config.json has no process");
  }
  Json process = config["process"];
  process["args"] = argv;
  process["terminal"] = tty;
  process.erase("consoleSize");
  if (!process.contains("env") || !process["env"].is_array()) process["env"] = Json::array();
  for (const auto& e : env) process["env"].push_back(e);
  std::string path = fs::join(container_dir, strCat("exec-", exec_id, ".json"));
  RETURN_IF_ERROR_CTX(fs::writeFileAtomic(path, dumpJson(process), 0600, fs::Durability::kVolatile), ctx);
  return path;
}

}  // namespace

std::string Shim::containerDir(const std::string& id) const {
  return fs::join(fs::join(options_.state_dir, "containers"), id);
}

std::vector<std::string> Shim::runtimeArgs(std::initializer_list<std::string> args) const {
  std::vector<std::string> out = {options_.runtime, "--root", options_.runtime_root};
  out.insert(out.end(), args.begin(), args.end());
  return out;
}

Status Shim::runRuntime(const std::vector<std::string>& argv, const std::string& what) {
  ASSIGN_OR_RETURN(RunResult r, withContext(runProcess(argv, options_.runtime_timeout_ms), what));
  if (r.timed_out) {
    return absl::DeadlineExceededError(strCat(what, ": ", options_.runtime, " did not finish in ",
                                              options_.runtime_timeout_ms, " ms"));
  }
  if (r.exit_code != 0) {
    return internalError(what, ": ", options_.runtime, " exited with ", r.exit_code, ": ",
                         trim(r.output));
  }
  return absl::OkStatus();
}

StatusOr<Shim::Container*> Shim::find(const std::string& id) {
  auto it = containers_.find(id);
  if (it == containers_.end()) {
    return notFound("container \"", id, "\" is not known to the shim of pod ", options_.pod_id);
  }
  return &it->second;
}

StatusOr<Json> Shim::createContainer(const Json& params) {
  ASSIGN_OR_RETURN(ContainerSpec spec, containerSpecFromJson(params));
  RETURN_IF_ERROR(validId(spec.id));
  if (containers_.count(spec.id) != 0) {
    return alreadyExists("container \"", spec.id, "\" already exists in pod ", options_.pod_id);
  }
  if (shutting_down_) return failedPrecondition("the shim is shutting down");
  std::string ctx = strCat("create container \"", spec.id, "\"");
  std::string dir = containerDir(spec.id);
  RETURN_IF_ERROR_CTX(fs::removeAll(dir), ctx);
  RETURN_IF_ERROR_CTX(fs::mkdirAll(dir, 0700), ctx);
  Rollback rollback;
  rollback.add([dir] { (void)fs::removeAll(dir); });

  Container c;
  c.stdin_once = spec.stdin_once;
  ASSIGN_OR_RETURN(c.log, withContext(CriLogWriter::open(spec.log_path), ctx));
  UniqueFd stdin_r;
  if (spec.stdin) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) return withContext(lastErrnoError("pipe"), ctx);
    stdin_r.reset(p[0]);
    c.stdin_w.reset(p[1]);
  }
  std::string pid_file = fs::join(dir, "init.pid");
  std::vector<std::string> argv = runtimeArgs({"--log", fs::join(dir, "runtime.log"),
                                               "--log-format", "json", "create", "--bundle",
                                               spec.bundle, "--pid-file", pid_file});
  RunResult r;
  if (spec.tty) {
    std::string sock_path = fs::join(dir, "console.sock");
    ASSIGN_OR_RETURN(UniqueFd console, withContext(listenConsole(sock_path), ctx));
    argv.push_back("--console-socket");
    argv.push_back(sock_path);
    argv.push_back(spec.id);
    ASSIGN_OR_RETURN(r, withContext(runProcess(argv, options_.runtime_timeout_ms, stdin_r.get()), ctx));
    if (r.exit_code == 0 && !r.timed_out) {
      auto master = receiveConsole(console.get(), 5000);
      if (!master.ok()) {
        (void)runRuntime(runtimeArgs({"delete", "--force", spec.id}), ctx);
        return withContext(master.status(), ctx);
      }
      c.out = std::move(*master);
    }
    ::unlink(sock_path.c_str());
  } else {
    int o[2], e[2];
    if (::pipe2(o, O_CLOEXEC) != 0) return withContext(lastErrnoError("pipe"), ctx);
    c.out.reset(o[0]);
    UniqueFd out_w(o[1]);
    if (::pipe2(e, O_CLOEXEC) != 0) return withContext(lastErrnoError("pipe"), ctx);
    c.err.reset(e[0]);
    UniqueFd err_w(e[1]);
    RETURN_IF_ERROR_CTX(setNonBlocking(c.out.get()), ctx);
    RETURN_IF_ERROR_CTX(setNonBlocking(c.err.get()), ctx);
    argv.push_back(spec.id);
    ASSIGN_OR_RETURN(r, withContext(runProcess(argv, options_.runtime_timeout_ms, stdin_r.get(),
                                               out_w.get(), err_w.get()), ctx));
    if (r.exit_code != 0 || r.timed_out) {
      // The runtime's message went to the stderr pipe (its own stdio is the container's).
      drainFd(c.err.get(), r.output, 1 << 20, nullptr);
      drainFd(c.out.get(), r.output, 1 << 20, nullptr);
    }
  }
  if (r.timed_out || r.exit_code != 0) {
    (void)runRuntime(runtimeArgs({"delete", "--force", spec.id}), ctx);
    std::string why = r.timed_out ? strCat("did not finish in ", options_.runtime_timeout_ms, " ms")
                                  : strCat("exited with ", r.exit_code);
    return internalError(ctx, ": ", options_.runtime, " create ", why, ": ", trim(r.output));
  }
  rollback.add([this, id = spec.id, ctx] {
    (void)runRuntime(runtimeArgs({"delete", "--force", id}), ctx);
  });
  ASSIGN_OR_RETURN(std::string pid_text, withContext(fs::readFile(pid_file), ctx));
  int pid = std::atoi(std::string(trim(pid_text)).c_str());
  if (pid <= 0) return internalError(ctx, ": bad pid file \"", pid_file, "\": ", pid_text);
  if (c.out) RETURN_IF_ERROR_CTX(setNonBlocking(c.out.get()), ctx);

  c.state.id = spec.id;
  c.state.status = ContainerStatus::kCreated;
  c.state.pid = pid;
  c.state.created_at_ns = realtimeNanos();
  c.state.log_path = spec.log_path;
  c.state.bundle = spec.bundle;
  c.state.tty = spec.tty;
  auto start_time = proc::startTime(pid);
  c.pid_start_time = start_time.ok() ? *start_time : 0;
  c.oom_file = findOomFile(pid, &c.state.oom_note);
  c.oom_base = readOomKills(c.oom_file);
  Json record = toJson(c.state);
  record["pid_start_time"] = c.pid_start_time;
  RETURN_IF_ERROR_CTX(fs::writeFileAtomic(fs::join(dir, "container.json"), dumpJson(record), 0644,
                                          fs::Durability::kVolatile),
                      ctx);
  if (c.out) {
    c.out_token = watch(c.out.get(), EPOLLIN, {WatchKind::kCtrOut, spec.id});
  }
  if (c.err) {
    c.err_token = watch(c.err.get(), EPOLLIN, {WatchKind::kCtrErr, spec.id});
  }
  rollback.commit();
  Json result = toJson(c.state);
  containers_.emplace(spec.id, std::move(c));
  shimLog(1, "container %s created (pid %d)", spec.id.c_str(), pid);
  return result;
}

StatusOr<Json> Shim::startContainer(const Json& params) {
  ASSIGN_OR_RETURN(std::string id, idParam(params));
  ASSIGN_OR_RETURN(Container * c, find(id));
  if (c->state.status != ContainerStatus::kCreated) {
    return failedPrecondition("start container \"", id, "\": it is ", statusName(c->state.status),
                              ", not created");
  }
  RETURN_IF_ERROR(runRuntime(runtimeArgs({"start", id}), strCat("start container \"", id, "\"")));
  // The init may already have exited; its SIGCHLD is handled after this request.
  c->state.status = ContainerStatus::kRunning;
  c->state.started_at_ns = realtimeNanos();
  shimLog(1, "container %s started", id.c_str());
  return toJson(c->state);
}

StatusOr<Json> Shim::containerState(const Json& params) {
  ASSIGN_OR_RETURN(std::string id, idParam(params));
  ASSIGN_OR_RETURN(Container * c, find(id));
  return toJson(c->state);
}

StatusOr<Json> Shim::listContainers() {
  Json list = Json::array();
  for (const auto& [id, c] : containers_) list.push_back(toJson(c.state));
  return Json{{"containers", list}};
}

StatusOr<Json> Shim::killContainer(const Json& params) {
  ASSIGN_OR_RETURN(std::string id, idParam(params));
  ASSIGN_OR_RETURN(int sig, signalParam(params, "signal", SIGTERM));
  ASSIGN_OR_RETURN(Container * c, find(id));
  if (!isLive(c->state)) {
    return failedPrecondition("kill container \"", id, "\": it has exited");
  }
  // The init is our child (we are its subreaper) until we reap it, so its pid cannot
  // have been reused.
  if (::kill(c->state.pid, sig) != 0) {
    return lastErrnoError(strCat("kill container \"", id, "\" (pid ", c->state.pid, ")"));
  }
  return Json::object();
}

Status Shim::stopContainer(const Json& params, const PendingReply& to) {
  ASSIGN_OR_RETURN(std::string id, idParam(params));
  ASSIGN_OR_RETURN(int sig, signalParam(params, "stop_signal", SIGTERM));
  int64_t timeout_s = 0;
  if (params.contains("timeout_s")) {
    if (!params["timeout_s"].is_number_integer()) return invalidArgument("\"timeout_s\" must be an integer");
    timeout_s = params["timeout_s"].get<int64_t>();
  }
  ASSIGN_OR_RETURN(Container * c, find(id));
  if (!isLive(c->state)) {
    reply(to, toJson(c->state));
    return absl::OkStatus();
  }
  c->stop_waiters.push_back(to);
  if (timeout_s <= 0) {
    ::kill(c->state.pid, SIGKILL);
    return absl::OkStatus();
  }
  ::kill(c->state.pid, sig);
  int64_t deadline = monotonicMs() + timeout_s * 1000;
  if (c->stop_deadline_ms == 0 || deadline < c->stop_deadline_ms) c->stop_deadline_ms = deadline;
  shimLog(1, "stopping container %s with signal %d, SIGKILL in %lld s", id.c_str(), sig,
          static_cast<long long>(timeout_s));
  return absl::OkStatus();
}

void Shim::closeContainerFd(Container& c, bool is_err) {
  UniqueFd& fd = is_err ? c.err : c.out;
  uint64_t& token = is_err ? c.err_token : c.out_token;
  if (!fd) return;
  unwatch(fd.get(), token);
  token = 0;
  fd.reset();
  if (c.log) (void)c.log->finish(is_err ? LogStream::kStderr : LogStream::kStdout);
  // Attached clients read EOF on that stream (with a tty, stdout carries everything).
  for (auto& [_, a] : c.attachers) (is_err ? a.err : a.out).reset();
}

StatusOr<Json> Shim::deleteContainer(const Json& params) {
  ASSIGN_OR_RETURN(std::string id, idParam(params));
  bool force = params.is_object() && params.value("force", false);
  ASSIGN_OR_RETURN(Container * c, find(id));
  std::string ctx = strCat("delete container \"", id, "\"");
  if (isLive(c->state) && !force) {
    return failedPrecondition(ctx, ": it is ", statusName(c->state.status),
                              "; stop it first or pass force");
  }
  std::vector<std::string> argv = force ? runtimeArgs({"delete", "--force", id})
                                        : runtimeArgs({"delete", id});
  Status st = runRuntime(argv, ctx);
  if (!st.ok()) {
    // Already gone from the runtime (e.g. deleted by hand) is fine.
    auto state = runProcess(runtimeArgs({"state", id}), options_.runtime_timeout_ms);
    if (!state.ok() || state->exit_code == 0) return st;
  }
  onContainerOutput(id, false);
  onContainerOutput(id, true);
  closeContainerFd(*c, false);
  closeContainerFd(*c, true);
  for (const auto& w : c->stop_waiters) reply(w, failedPrecondition(ctx, ": deleted while stopping"));
  containers_.erase(id);
  (void)fs::removeAll(containerDir(id));
  shimLog(1, "container %s deleted", id.c_str());
  maybeFinishShutdown();
  return Json::object();
}

StatusOr<Json> Shim::reopenLog(const Json& params) {
  ASSIGN_OR_RETURN(std::string id, idParam(params));
  ASSIGN_OR_RETURN(Container * c, find(id));
  if (!c->log) return failedPrecondition("container \"", id, "\" has no log");
  RETURN_IF_ERROR_CTX(c->log->reopen(), strCat("container \"", id, "\""));
  return Json::object();
}

void Shim::onContainerOutput(const std::string& id, bool is_err) {
  auto it = containers_.find(id);
  if (it == containers_.end()) return;
  Container& c = it->second;
  int fd = is_err ? c.err.get() : c.out.get();
  if (fd < 0) return;
  LogStream stream = is_err ? LogStream::kStderr : LogStream::kStdout;
  char buf[65536];
  // Bounded per wake-up so one chatty container cannot starve the loop.
  for (int i = 0; i < 16; ++i) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n > 0) {
      Status st = c.log->write(stream, std::string_view(buf, static_cast<size_t>(n)));
      if (!st.ok()) shimLog(2, "container %s: %s", id.c_str(), std::string(st.message()).c_str());
      if (!c.attachers.empty()) feedAttachers(c, is_err, std::string_view(buf, static_cast<size_t>(n)));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    // EOF, or EIO from a pty master whose slave side is closed.
    closeContainerFd(c, is_err);
    return;
  }
}

void Shim::onChildExit(pid_t pid, int ws) {
  for (auto& [id, c] : containers_) {
    if (c.state.pid == pid && isLive(c.state)) {
      containerExited(c, ws);
      maybeFinishShutdown();
      return;
    }
  }
  for (auto& [key, job] : execs_) {
    if (job.runtime_pid == pid) {
      finishExec(job, ws);
      execs_.erase(key);
      return;
    }
  }
  if (sandbox_.pause_pid == pid) {
    sandbox_.pause_running = false;
    if (sandbox_created_) shimLog(2, "the pause process %d exited (status %d)", pid, ws);
    return;
  }
  shimLog(0, "reaped process %d (status %d)", pid, ws);
}

void Shim::containerExited(Container& c, int ws) {
  const std::string& id = c.state.id;
  // Everything the container wrote before it died goes into the log first.
  for (int i = 0; i < 64 && (c.out || c.err); ++i) {
    struct pollfd p[2] = {{c.out.get(), POLLIN, 0}, {c.err.get(), POLLIN, 0}};
    if (::poll(p, 2, 0) <= 0) break;
    if (p[0].revents != 0) onContainerOutput(id, false);
    if (p[1].revents != 0) onContainerOutput(id, true);
  }
  c.state.status = ContainerStatus::kExited;
  c.state.exit_code = exitCodeFromWaitStatus(ws);
  c.state.finished_at_ns = realtimeNanos();
  c.state.oom_killed = !c.oom_file.empty() && readOomKills(c.oom_file) > c.oom_base;
  c.state.reason = c.state.oom_killed ? "OOMKilled" : c.state.exit_code == 0 ? "Completed" : "Error";
  c.stop_deadline_ms = 0;
  Status st = fs::writeFileAtomic(fs::join(containerDir(id), "exit.json"), dumpJson(toJson(c.state)),
                                  0644, fs::Durability::kVolatile);
  if (!st.ok()) shimLog(3, "container %s: %s", id.c_str(), std::string(st.message()).c_str());
  shimLog(1, "container %s exited with %d (%s)", id.c_str(), c.state.exit_code, c.state.reason.c_str());
  Json state = toJson(c.state);
  if (c.state.oom_killed) broadcastEvent({{"type", "oom"}, {"container_id", id}, {"state", state}});
  broadcastEvent({{"type", "exit"}, {"container_id", id}, {"state", state}});
  auto waiters = std::move(c.stop_waiters);
  c.stop_waiters.clear();
  for (const auto& w : waiters) reply(w, state);
}

Status Shim::execSync(const Json& params, const PendingReply& to) {
  ASSIGN_OR_RETURN(ExecSpec spec, execSpecFromJson(params));
  ASSIGN_OR_RETURN(Container * c, find(spec.id));
  std::string ctx = strCat("exec in container \"", spec.id, "\"");
  if (c->state.status != ContainerStatus::kRunning) {
    return failedPrecondition(ctx, ": it is ", statusName(c->state.status), ", not running");
  }
  ExecJob job;
  job.id = next_exec_++;
  job.container = spec.id;
  job.reply = to;
  job.pid_file = fs::join(containerDir(spec.id), strCat("exec-", job.id, ".pid"));
  int o[2], e[2];
  if (::pipe2(o, O_CLOEXEC | O_NONBLOCK) != 0) return withContext(lastErrnoError("pipe"), ctx);
  job.out.reset(o[0]);
  UniqueFd out_w(o[1]);
  if (::pipe2(e, O_CLOEXEC | O_NONBLOCK) != 0) return withContext(lastErrnoError("pipe"), ctx);
  job.err.reset(e[0]);
  UniqueFd err_w(e[1]);
  ASSIGN_OR_RETURN(job.process_file, writeExecProcess(containerDir(spec.id), c->state.bundle, job.id,
                                                     spec.argv, spec.env, false, ctx));
  // The runtime's own warnings go to the container's runtime.log, never into the exec'd
  // process's stderr (kubelet probes and critest compare it); a failure to exec is
  // still printed on stderr by the runtime as its final error.
  std::vector<std::string> argv = runtimeArgs(
      {"--log", fs::join(containerDir(spec.id), "runtime.log"), "--log-format", "json", "exec",
       "--pid-file", job.pid_file, "--process", job.process_file, spec.id});
  ASSIGN_OR_RETURN(job.runtime_pid, withContext(spawnProcess(argv, -1, out_w.get(), err_w.get()), ctx));
  out_w.reset();
  err_w.reset();
  if (spec.timeout_s > 0) job.deadline_ms = monotonicMs() + spec.timeout_s * 1000;
  job.out_token = watch(job.out.get(), EPOLLIN, {WatchKind::kExecOut, "", job.id});
  job.err_token = watch(job.err.get(), EPOLLIN, {WatchKind::kExecErr, "", job.id});
  execs_.emplace(job.id, std::move(job));
  return absl::OkStatus();
}

Status Shim::execStream(const Json& params, const PendingReply& to) {
  ASSIGN_OR_RETURN(ExecStreamSpec spec, execStreamSpecFromJson(params));
  ASSIGN_OR_RETURN(Container * c, find(spec.id));
  std::string ctx = strCat("interactive exec in container \"", spec.id, "\"");
  if (c->state.status != ContainerStatus::kRunning) {
    return failedPrecondition(ctx, ": it is ", statusName(c->state.status), ", not running");
  }
  auto conn = conns_.find(to.conn);
  if (conn == conns_.end()) return absl::OkStatus();  // the client is gone already
  if (!conn->second.out.empty()) {
    return failedPrecondition(ctx, ": the connection has unsent replies; use a connection of its own");
  }
  ExecJob job;
  job.id = next_exec_++;
  job.container = spec.id;
  job.reply = to;
  job.stream = true;
  job.stream_conn = to.conn;
  std::string dir = containerDir(spec.id);
  job.pid_file = fs::join(dir, strCat("exec-", job.id, ".pid"));
  ASSIGN_OR_RETURN(job.process_file,
                   writeExecProcess(dir, c->state.bundle, job.id, spec.argv, spec.env, spec.tty, ctx));
  ScopeGuard drop_files([&] {
    ::unlink(job.process_file.c_str());
    ::unlink(job.pid_file.c_str());
  });
  std::vector<std::string> extra = {"--log", fs::join(dir, "runtime.log"), "--log-format", "json", "exec",
                                    "--pid-file", job.pid_file, "--process", job.process_file};
  ExecStreamReply out;
  out.tty = spec.tty;
  std::vector<UniqueFd> theirs;  // the client's ends
  UniqueFd in_r, out_w, err_w;   // the process's ends
  UniqueFd console;
  std::string console_path = fs::join(dir, strCat("exec-", job.id, "-console.sock"));
  if (spec.tty) {
    ASSIGN_OR_RETURN(console, withContext(listenConsole(console_path), ctx));
    extra.insert(extra.end(), {"--tty", "--console-socket", console_path});
  } else {
    auto pipeFor = [&](const char* name, bool client_writes, UniqueFd& process_end) -> Status {
      int p[2];
      if (::pipe2(p, O_CLOEXEC) != 0) return withContext(lastErrnoError("pipe"), ctx);
      theirs.emplace_back(client_writes ? p[1] : p[0]);
      process_end.reset(client_writes ? p[0] : p[1]);
      out.fds.push_back(name);
      return absl::OkStatus();
    };
    if (spec.attach_stdin) RETURN_IF_ERROR(pipeFor("stdin", true, in_r));
    if (spec.attach_stdout) RETURN_IF_ERROR(pipeFor("stdout", false, out_w));
    if (spec.attach_stderr) RETURN_IF_ERROR(pipeFor("stderr", false, err_w));
  }
  extra.push_back(spec.id);
  std::vector<std::string> argv = runtimeArgs({});
  argv.insert(argv.end(), extra.begin(), extra.end());
  ASSIGN_OR_RETURN(job.runtime_pid,
                   withContext(spawnProcess(argv, in_r ? in_r.get() : -1, out_w ? out_w.get() : -1,
                                            err_w ? err_w.get() : -1),
                               ctx));
  in_r.reset();
  out_w.reset();
  err_w.reset();
  if (spec.tty) {
    // The runtime sends the master before it starts the process (bounded wait, as for
    // a tty container's create).
    auto master = receiveConsole(console.get(), 5000);
    console.reset();
    ::unlink(console_path.c_str());
    if (!master.ok()) {
      ::kill(job.runtime_pid, SIGKILL);
      job.stream_conn = 0;  // reaped by onChildExit, which removes the files; no event
      drop_files.dismiss();
      execs_.emplace(job.id, std::move(job));
      return withContext(master.status(), ctx);
    }
    theirs.push_back(std::move(*master));
    out.fds.push_back("pty");
  }
  out.exec_id = job.id;
  std::vector<int> raw;
  for (const auto& fd : theirs) raw.push_back(fd.get());
  Status sent = sendWithFds(conn->second.fd.get(), encodeResponse(to.request, toJson(out)), raw);
  if (!sent.ok()) {
    shimLog(2, "exec %llu in %s: the client went away before the descriptors were sent: %s",
            static_cast<unsigned long long>(job.id), spec.id.c_str(), std::string(sent.message()).c_str());
    job.stream_conn = 0;
  }
  drop_files.dismiss();
  execs_.emplace(job.id, std::move(job));
  return absl::OkStatus();  // our copies of the client's ends close here
}

void Shim::onExecOutput(uint64_t key, bool is_err) {
  auto it = execs_.find(key);
  if (it == execs_.end()) return;
  ExecJob& job = it->second;
  UniqueFd& fd = is_err ? job.err : job.out;
  if (!fd) return;
  if (!drainFd(fd.get(), is_err ? job.err_buf : job.out_buf, kMaxExecOutput, &job.truncated)) {
    unwatch(fd.get(), is_err ? job.err_token : job.out_token);
    fd.reset();
  }
}

void Shim::finishExec(ExecJob& job, int ws) {
  for (bool is_err : {false, true}) {
    UniqueFd& fd = is_err ? job.err : job.out;
    if (!fd) continue;
    drainFd(fd.get(), is_err ? job.err_buf : job.out_buf, kMaxExecOutput, &job.truncated);
    unwatch(fd.get(), is_err ? job.err_token : job.out_token);
    fd.reset();
  }
  ::unlink(job.pid_file.c_str());
  ::unlink(job.process_file.c_str());
  if (job.stream) {
    if (job.stream_conn != 0) {
      send(job.stream_conn, encodeEvent({{"type", "execExit"},
                                         {"exec_id", job.id},
                                         {"exit_code", exitCodeFromWaitStatus(ws)}}));
    }
    return;
  }
  ExecResult r;
  r.stdout_data = std::move(job.out_buf);
  r.stderr_data = std::move(job.err_buf);
  r.exit_code = exitCodeFromWaitStatus(ws);
  r.timed_out = job.timed_out;
  r.truncated = job.truncated;
  reply(job.reply, toJson(r));
}

}  // namespace berth::shim
