#include "runtime/shim/client.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "common/unix_socket.h"
#include "common/fs.h"
#include "common/proc.h"

namespace berth::shim {
namespace {

using Clock = std::chrono::steady_clock;

std::atomic<uint64_t> g_next_id{1};

int msLeft(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left < 0 ? 0 : static_cast<int>(std::min<int64_t>(left, 1 << 30));
}

Status writeAll(int fd, std::string_view data, Clock::time_point deadline) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      struct pollfd p = {fd, POLLOUT, 0};
      if (::poll(&p, 1, msLeft(deadline)) == 0) {
        return absl::DeadlineExceededError("shim: timed out sending the request");
      }
      continue;
    }
    return absl::UnavailableError(strCat("shim: send request: ", strerror(errno)));
  }
  return absl::OkStatus();
}

// Reads one line (without '\n') into `line`, keeping extra bytes in `buffer`.
Status readLine(int fd, std::string& buffer, std::string& line, Clock::time_point deadline) {
  for (;;) {
    size_t nl = buffer.find('\n');
    if (nl != std::string::npos) {
      line = buffer.substr(0, nl);
      buffer.erase(0, nl + 1);
      return absl::OkStatus();
    }
    if (buffer.size() > kMaxLineBytes) return absl::DataLossError("shim: reply line too long");
    struct pollfd p = {fd, POLLIN, 0};
    int rc = ::poll(&p, 1, msLeft(deadline));
    if (rc < 0 && errno == EINTR) continue;
    if (rc == 0) return absl::DeadlineExceededError("shim: timed out waiting for the reply");
    char buf[65536];
    ssize_t n = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n > 0) {
      buffer.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    return absl::UnavailableError("shim: connection closed (did the shim exit?)");
  }
}

template <typename T, typename F>
StatusOr<T> typed(StatusOr<Json> j, F from) {
  if (!j.ok()) return j.status();
  return from(*j);
}

}  // namespace

StatusOr<UniqueFd> ShimClient::connect() const {
  auto fd = connectUnixSocket(socket_path_);
  if (!fd.ok()) {
    return absl::UnavailableError(strCat("shim: ", std::string(fd.status().message())));
  }
  return fd;
}

StatusOr<Json> ShimClient::call(const std::string& method, const Json& params,
                                std::chrono::milliseconds timeout) const {
  auto deadline = Clock::now() + timeout;
  ASSIGN_OR_RETURN(UniqueFd fd, connect());
  Request req;
  req.id = g_next_id++;
  req.method = method;
  req.params = params;
  std::string ctx = strCat("shim ", method);
  RETURN_IF_ERROR_CTX(writeAll(fd.get(), encodeRequest(req), deadline), ctx);
  std::string buffer, line;
  for (;;) {
    RETURN_IF_ERROR_CTX(readLine(fd.get(), buffer, line, deadline), ctx);
    ASSIGN_OR_RETURN(Incoming in, decodeIncoming(line));
    if (in.is_event || in.response.id != req.id) continue;
    if (!in.response.status.ok()) return in.response.status;
    return in.response.result;
  }
}

StatusOr<SandboxNamespaces> ShimClient::createSandbox(const SandboxSpec& spec) const {
  return typed<SandboxNamespaces>(call("createSandbox", toJson(spec)), sandboxNamespacesFromJson);
}

StatusOr<SandboxNamespaces> ShimClient::sandboxStatus() const {
  return typed<SandboxNamespaces>(call("sandboxStatus", Json::object()), sandboxNamespacesFromJson);
}

Status ShimClient::removeSandbox(const std::string& ns_dir) const {
  Json p = Json::object();
  if (!ns_dir.empty()) p["ns_dir"] = ns_dir;
  return call("removeSandbox", p).status();
}

StatusOr<ContainerState> ShimClient::createContainer(const ContainerSpec& spec) const {
  return typed<ContainerState>(call("createContainer", toJson(spec)), containerStateFromJson);
}

StatusOr<ContainerState> ShimClient::startContainer(const std::string& id) const {
  return typed<ContainerState>(call("startContainer", {{"id", id}}), containerStateFromJson);
}

StatusOr<ContainerState> ShimClient::state(const std::string& id) const {
  return typed<ContainerState>(call("state", {{"id", id}}), containerStateFromJson);
}

StatusOr<std::vector<ContainerState>> ShimClient::listContainers() const {
  ASSIGN_OR_RETURN(Json j, call("listContainers", Json::object()));
  std::vector<ContainerState> out;
  if (!j.contains("containers") || !j["containers"].is_array()) {
    return invalidArgument("shim listContainers: reply has no \"containers\" array");
  }
  for (const auto& c : j["containers"]) {
    ASSIGN_OR_RETURN(ContainerState s, containerStateFromJson(c));
    out.push_back(std::move(s));
  }
  return out;
}

Status ShimClient::kill(const std::string& id, int signal) const {
  return call("kill", {{"id", id}, {"signal", signal}}).status();
}

StatusOr<ContainerState> ShimClient::stopContainer(const std::string& id, int64_t timeout_s,
                                                   int stop_signal) const {
  Json p = {{"id", id}, {"timeout_s", timeout_s}};
  if (stop_signal > 0) p["stop_signal"] = stop_signal;
  auto wait = std::chrono::seconds(std::max<int64_t>(timeout_s, 0) + 30);
  return typed<ContainerState>(call("stopContainer", p, wait), containerStateFromJson);
}

Status ShimClient::deleteContainer(const std::string& id, bool force) const {
  return call("deleteContainer", {{"id", id}, {"force", force}}).status();
}

Status ShimClient::reopenLog(const std::string& id) const {
  return call("reopenLog", {{"id", id}}).status();
}

StatusOr<ExecResult> ShimClient::execSync(const ExecSpec& spec) const {
  auto wait = spec.timeout_s > 0 ? std::chrono::seconds(spec.timeout_s + 30) : std::chrono::hours(24 * 365);
  return typed<ExecResult>(call("execSync", toJson(spec), wait), execResultFromJson);
}

StatusOr<Json> ShimClient::callWithFds(const std::string& method, const Json& params,
                                       std::chrono::milliseconds timeout, UniqueFd& conn,
                                       std::string& buffer, std::vector<UniqueFd>& fds) const {
  auto deadline = Clock::now() + timeout;
  std::string ctx = strCat("shim ", method);
  ASSIGN_OR_RETURN(conn, connect());
  Request req;
  req.id = g_next_id++;
  req.method = method;
  req.params = params;
  RETURN_IF_ERROR_CTX(writeAll(conn.get(), encodeRequest(req), deadline), ctx);
  // The descriptors ride on the reply line's first byte: read with recvmsg until the
  // line is complete.
  while (buffer.find('\n') == std::string::npos) {
    struct pollfd p = {conn.get(), POLLIN, 0};
    int rc = ::poll(&p, 1, msLeft(deadline));
    if (rc < 0 && errno == EINTR) continue;
    if (rc == 0) return absl::DeadlineExceededError(strCat(ctx, ": timed out waiting for the reply"));
    char buf[4096];
    auto n = recvWithFds(conn.get(), buf, sizeof(buf), &fds);
    if (!n.ok()) return withContext(n.status(), ctx);
    if (*n == 0) return absl::UnavailableError(strCat(ctx, ": connection closed (did the shim exit?)"));
    buffer.append(buf, *n);
  }
  size_t nl = buffer.find('\n');
  std::string line = buffer.substr(0, nl);
  buffer.erase(0, nl + 1);
  ASSIGN_OR_RETURN(Incoming in, decodeIncoming(line));
  if (in.is_event || in.response.id != req.id) {
    return absl::DataLossError(strCat(ctx, ": unexpected first line from the shim"));
  }
  if (!in.response.status.ok()) return in.response.status;
  return in.response.result;
}

namespace {

// Moves fds[i] into the slot reply_names[i] names. Errors: DataLoss on a mismatch.
Status assignFds(const std::string& what, const std::vector<std::string>& names, std::vector<UniqueFd>& fds,
                 const std::map<std::string, UniqueFd*>& slots) {
  if (names.size() != fds.size()) {
    return absl::DataLossError(strCat(what, ": the reply names ", names.size(), " descriptors but carried ",
                                      fds.size()));
  }
  for (size_t i = 0; i < fds.size(); ++i) {
    auto it = slots.find(names[i]);
    if (it == slots.end()) return absl::DataLossError(strCat(what, ": unknown descriptor \"", names[i], "\""));
    *it->second = std::move(fds[i]);
  }
  return absl::OkStatus();
}

}  // namespace

StatusOr<ExecStream> ShimClient::execStream(const ExecStreamSpec& spec,
                                            std::chrono::milliseconds timeout) const {
  ExecStream stream;
  std::vector<UniqueFd> fds;
  ASSIGN_OR_RETURN(Json result, callWithFds("execStream", toJson(spec), timeout, stream.conn_, stream.buffer_, fds));
  ASSIGN_OR_RETURN(ExecStreamReply reply, execStreamReplyFromJson(result));
  stream.exec_id = reply.exec_id;
  stream.tty = reply.tty;
  RETURN_IF_ERROR(assignFds("shim execStream", reply.fds, fds,
                            {{"pty", &stream.pty}, {"stdin", &stream.stdin_fd},
                             {"stdout", &stream.stdout_fd}, {"stderr", &stream.stderr_fd}}));
  return stream;
}

StatusOr<AttachStream> ShimClient::attach(const AttachSpec& spec, std::chrono::milliseconds timeout) const {
  AttachStream stream;
  std::vector<UniqueFd> fds;
  std::string buffer;
  ASSIGN_OR_RETURN(Json result, callWithFds("attach", toJson(spec), timeout, stream.conn, buffer, fds));
  ASSIGN_OR_RETURN(AttachReply reply, attachReplyFromJson(result));
  stream.attach_id = reply.attach_id;
  stream.tty = reply.tty;
  RETURN_IF_ERROR(assignFds("shim attach", reply.fds, fds,
                            {{"stdin", &stream.stdin_fd}, {"stdout", &stream.stdout_fd},
                             {"stderr", &stream.stderr_fd}}));
  return stream;
}

StatusOr<int> ExecStream::waitExit(std::chrono::milliseconds timeout) {
  if (!conn_) return absl::FailedPreconditionError("exec stream is not connected");
  auto deadline = Clock::now() + timeout;
  std::string line;
  for (;;) {
    RETURN_IF_ERROR_CTX(readLine(conn_.get(), buffer_, line, deadline), "wait for the exec's exit");
    ASSIGN_OR_RETURN(Incoming in, decodeIncoming(line));
    if (!in.is_event || in.event.value("type", "") != "execExit") continue;
    return in.event.value("exit_code", -1);
  }
}

UniqueFd ExecStream::releaseExitConnection(std::string* buffered) {
  *buffered = std::move(buffer_);
  buffer_.clear();
  return std::move(conn_);
}

std::optional<int> ExecStream::exitCodeFromLines(std::string& buffer) {
  for (;;) {
    size_t nl = buffer.find('\n');
    if (nl == std::string::npos) return std::nullopt;
    std::string line = buffer.substr(0, nl);
    buffer.erase(0, nl + 1);
    auto in = decodeIncoming(line);
    if (in.ok() && in->is_event && in->event.value("type", "") == "execExit") {
      return in->event.value("exit_code", -1);
    }
  }
}

Status ShimClient::shutdown(bool force) const {
  return call("shutdown", {{"force", force}}).status();
}

StatusOr<Subscription> ShimClient::subscribe(std::chrono::milliseconds timeout) const {
  auto deadline = Clock::now() + timeout;
  Subscription sub;
  ASSIGN_OR_RETURN(sub.fd_, connect());
  Request req;
  req.id = g_next_id++;
  req.method = "subscribe";
  RETURN_IF_ERROR_CTX(writeAll(sub.fd_.get(), encodeRequest(req), deadline), "shim subscribe");
  std::string line;
  for (;;) {
    RETURN_IF_ERROR_CTX(readLine(sub.fd_.get(), sub.buffer_, line, deadline), "shim subscribe");
    ASSIGN_OR_RETURN(Incoming in, decodeIncoming(line));
    if (in.is_event || in.response.id != req.id) continue;
    if (!in.response.status.ok()) return in.response.status;
    return sub;
  }
}

StatusOr<ShimEvent> Subscription::next(std::chrono::milliseconds timeout) {
  if (!fd_) return failedPrecondition("shim subscription is not connected");
  auto deadline = Clock::now() + timeout;
  std::string line;
  for (;;) {
    RETURN_IF_ERROR(readLine(fd_.get(), buffer_, line, deadline));
    ASSIGN_OR_RETURN(Incoming in, decodeIncoming(line));
    if (!in.is_event) continue;
    ShimEvent ev;
    if (!in.event.is_object()) return invalidArgument("shim event: not an object");
    ev.type = in.event.value("type", "");
    ev.container_id = in.event.value("container_id", "");
    if (in.event.contains("state")) {
      ASSIGN_OR_RETURN(ev.state, containerStateFromJson(in.event["state"]));
    }
    return ev;
  }
}

StatusOr<ShimProcess> startShim(const StartOptions& o) {
  std::vector<std::string> args = {o.shim_binary, "--pod-id", o.pod_id, "--state-dir", o.state_dir,
                                   "--runtime", o.runtime, "--runtime-root", o.runtime_root,
                                   "--log-level", o.log_level};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return lastErrnoError("pipe");
  UniqueFd out_r(p[0]), out_w(p[1]);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out_w.get(), 1);
  posix_spawn_file_actions_adddup2(&fa, out_w.get(), 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  sigdelset(&all, SIGKILL);
  sigdelset(&all, SIGSTOP);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, argv[0], &fa, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return errnoError(rc, strCat("start shim \"", o.shim_binary, "\""));
  out_w.reset();
  auto deadline = Clock::now() + o.timeout;
  std::string output;
  bool timed_out = false;
  for (;;) {
    struct pollfd pf = {out_r.get(), POLLIN, 0};
    int prc = ::poll(&pf, 1, msLeft(deadline));
    if (prc < 0 && errno == EINTR) continue;
    if (prc == 0) {
      timed_out = true;
      ::kill(pid, SIGKILL);
      break;
    }
    char buf[4096];
    ssize_t n = ::read(out_r.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    output.append(buf, static_cast<size_t>(n));
  }
  int ws = 0;
  while (::waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
  }
  std::string ctx = strCat("start shim for pod ", o.pod_id);
  if (timed_out) return absl::DeadlineExceededError(strCat(ctx, ": not ready after ", o.timeout.count(), " ms"));
  if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
    std::string msg(trim(output));
    if (msg.find("already serves") != std::string::npos) return alreadyExists(ctx, ": ", msg);
    return internalError(ctx, ": ", msg.empty() ? "exited with an error" : msg);
  }
  return withContext(findShim(o.state_dir), ctx);
}

StatusOr<ShimProcess> findShim(const std::string& state_dir) {
  std::string path = fs::join(state_dir, "shim.pid");
  auto text = fs::readFile(path);
  if (!text.ok()) return notFound("no shim for \"", state_dir, "\": ", text.status().message());
  Json j = Json::parse(*text, nullptr, false);
  if (!j.is_object()) return notFound("no shim for \"", state_dir, "\": ", path, " is not JSON");
  ShimProcess s;
  s.pid = j.value("pid", 0);
  s.start_time = j.value("start_time", uint64_t{0});
  s.socket = fs::join(state_dir, "shim.sock");
  if (s.pid <= 0 || !proc::isAlive(s.pid, s.start_time)) {
    return notFound("the shim of \"", state_dir, "\" (pid ", s.pid, ") is not running");
  }
  return s;
}

StatusOr<ContainerState> readExitRecord(const std::string& state_dir, const std::string& id) {
  std::string path = fs::join(fs::join(fs::join(state_dir, "containers"), id), "exit.json");
  auto text = fs::readFile(path);
  if (!text.ok()) return notFound("no exit record for container \"", id, "\" (", path, ")");
  Json j = Json::parse(*text, nullptr, false);
  if (j.is_discarded()) return absl::DataLossError(strCat("exit record ", path, " is not JSON"));
  return withContext(containerStateFromJson(j), path);
}

}  // namespace berth::shim
