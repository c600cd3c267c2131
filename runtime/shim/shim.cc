// The event loop, client connections, request dispatch and the pod sandbox.
#include "runtime/shim/shim.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>

#include "common/fs.h"
#include "common/proc.h"
#include "runtime/shim/pod_namespaces.h"

namespace berth::shim {
namespace {

int g_log_level = 1;
constexpr size_t kMaxConnOut = 256u << 20;  // a client that stops reading is dropped

int64_t monotonicMs() {
  struct timespec ts {};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

}  // namespace

void setShimLogLevel(const std::string& level) {
  if (level == "debug") g_log_level = 0;
  else if (level == "warn" || level == "warning") g_log_level = 2;
  else if (level == "error") g_log_level = 3;
  else g_log_level = 1;
}

void shimLog(int level, const char* fmt, ...) {
  if (level < g_log_level) return;
  static const char* kNames[] = {"debug", "info", "warn", "error"};
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  std::string ts = formatRfc3339Nano(realtimeNanos());
  dprintf(2, "%s %s %s\n", ts.c_str(), kNames[level < 0 ? 0 : level > 3 ? 3 : level], msg);
}

Shim::Shim(ShimOptions options, UniqueFd listen_fd)
    : options_(std::move(options)), listen_fd_(std::move(listen_fd)) {}

Shim::~Shim() = default;

StatusOr<std::unique_ptr<Shim>> Shim::create(ShimOptions options, UniqueFd listen_fd) {
  std::unique_ptr<Shim> shim(new Shim(std::move(options), std::move(listen_fd)));
  RETURN_IF_ERROR(shim->init());
  return shim;
}

Status Shim::init() {
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) return lastErrnoError("prctl(PR_SET_CHILD_SUBREAPER)");
  ::signal(SIGPIPE, SIG_IGN);
  sigset_t mask;
  sigemptyset(&mask);
  for (int sig : {SIGCHLD, SIGTERM, SIGINT, SIGHUP}) sigaddset(&mask, sig);
  if (::sigprocmask(SIG_BLOCK, &mask, nullptr) != 0) return lastErrnoError("sigprocmask");
  signal_fd_.reset(::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!signal_fd_) return lastErrnoError("signalfd");
  epoll_fd_.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_fd_) return lastErrnoError("epoll_create1");
  RETURN_IF_ERROR(fs::mkdirAll(fs::join(options_.state_dir, "containers"), 0700));
  watch(listen_fd_.get(), EPOLLIN, {WatchKind::kListen, "", 0});
  watch(signal_fd_.get(), EPOLLIN, {WatchKind::kSignal, "", 0});
  return absl::OkStatus();
}

uint64_t Shim::watch(int fd, uint32_t events, Watch w) {
  uint64_t token = next_token_++;
  struct epoll_event ev {};
  ev.events = events;
  ev.data.u64 = token;
  if (::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
    shimLog(3, "epoll_ctl add fd %d: %s", fd, strerror(errno));
    return 0;
  }
  watches_[token] = std::move(w);
  return token;
}

void Shim::unwatch(int fd, uint64_t token) {
  if (fd >= 0) ::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_DEL, fd, nullptr);
  watches_.erase(token);
}

int Shim::nextTimeoutMs() const {
  int64_t earliest = 0;
  auto consider = [&](int64_t d) {
    if (d != 0 && (earliest == 0 || d < earliest)) earliest = d;
  };
  for (const auto& [id, c] : containers_) consider(c.stop_deadline_ms);
  for (const auto& [id, job] : execs_) consider(job.deadline_ms);
  if (earliest == 0) return -1;
  int64_t left = earliest - monotonicMs();
  return left < 0 ? 0 : static_cast<int>(std::min<int64_t>(left, 1 << 30));
}

int Shim::run() {
  shimLog(1, "berth-shim for pod %s serving on %s/shim.sock (pid %d)", options_.pod_id.c_str(),
          options_.state_dir.c_str(), ::getpid());
  struct epoll_event events[32];
  while (!exit_now_) {
    int n = ::epoll_wait(epoll_fd_.get(), events, 32, nextTimeoutMs());
    if (n < 0) {
      if (errno == EINTR) continue;
      shimLog(3, "epoll_wait: %s", strerror(errno));
      return 1;
    }
    for (int i = 0; i < n && !exit_now_; ++i) {
      auto it = watches_.find(events[i].data.u64);
      if (it == watches_.end()) continue;
      Watch w = it->second;  // copy: handlers may unwatch
      uint32_t ev = events[i].events;
      switch (w.kind) {
        case WatchKind::kListen: acceptClients(); break;
        case WatchKind::kSignal: onSignal(); break;
        case WatchKind::kConn:
          if (ev & EPOLLOUT) onConnWritable(w.key);
          if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) onConnReadable(w.key);
          break;
        case WatchKind::kCtrOut: onContainerOutput(w.container, false); break;
        case WatchKind::kCtrErr: onContainerOutput(w.container, true); break;
        case WatchKind::kExecOut: onExecOutput(w.key, false); break;
        case WatchKind::kExecErr: onExecOutput(w.key, true); break;
      }
    }
    onDeadlines();
  }
  cleanupAndExit();
  return 0;
}

void Shim::acceptClients() {
  for (;;) {
    int fd = ::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        shimLog(2, "accept: %s", strerror(errno));
      }
      return;
    }
    Conn c;
    c.id = next_conn_++;
    c.fd.reset(fd);
    c.token = watch(fd, EPOLLIN | EPOLLRDHUP, {WatchKind::kConn, "", c.id});
    shimLog(0, "client %llu connected", static_cast<unsigned long long>(c.id));
    conns_.emplace(c.id, std::move(c));
  }
}

void Shim::closeConn(uint64_t conn_id) {
  auto it = conns_.find(conn_id);
  if (it == conns_.end()) return;
  unwatch(it->second.fd.get(), it->second.token);
  shimLog(0, "client %llu disconnected", static_cast<unsigned long long>(conn_id));
  conns_.erase(it);
  detachConn(conn_id);
}

void Shim::onConnReadable(uint64_t conn_id) {
  auto it = conns_.find(conn_id);
  if (it == conns_.end()) return;
  char buf[65536];
  bool eof = false;
  for (;;) {
    ssize_t n = ::read(it->second.fd.get(), buf, sizeof(buf));
    if (n > 0) {
      it->second.in.append(buf, static_cast<size_t>(n));
      if (it->second.in.size() > kMaxLineBytes) {
        send(conn_id, encodeResponse(0, invalidArgument("request longer than ", kMaxLineBytes,
                                                        " bytes")));
        eof = true;
        break;
      }
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) eof = true;
    break;
  }
  // Handle complete lines; the map may change under us, so look the conn up each time.
  for (;;) {
    it = conns_.find(conn_id);
    if (it == conns_.end()) return;
    size_t nl = it->second.in.find('\n');
    if (nl == std::string::npos) break;
    std::string line = it->second.in.substr(0, nl);
    it->second.in.erase(0, nl + 1);
    if (trim(line).empty()) continue;
    auto req = decodeRequest(line);
    if (!req.ok()) {
      send(conn_id, encodeResponse(0, req.status()));
      continue;
    }
    handleRequest(conn_id, *req);
    if (exit_now_) return;
  }
  if (eof) closeConn(conn_id);
}

void Shim::onConnWritable(uint64_t conn_id) { send(conn_id, ""); }

void Shim::send(uint64_t conn_id, const std::string& line) {
  auto it = conns_.find(conn_id);
  if (it == conns_.end()) return;
  Conn& c = it->second;
  c.out += line;
  while (!c.out.empty()) {
    ssize_t n = ::send(c.fd.get(), c.out.data(), c.out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      c.out.erase(0, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    closeConn(conn_id);  // peer gone
    return;
  }
  if (c.out.size() > kMaxConnOut) {
    shimLog(2, "client %llu does not read its replies; dropping it",
            static_cast<unsigned long long>(conn_id));
    closeConn(conn_id);
    return;
  }
  bool want = !c.out.empty();
  if (want != c.want_write) {
    c.want_write = want;
    struct epoll_event ev {};
    ev.events = EPOLLIN | EPOLLRDHUP | (want ? uint32_t{EPOLLOUT} : 0u);
    ev.data.u64 = c.token;
    ::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_MOD, c.fd.get(), &ev);
  }
}

void Shim::reply(const PendingReply& to, const StatusOr<Json>& result) {
  send(to.conn, encodeResponse(to.request, result));
}

void Shim::broadcastEvent(const Json& event) {
  std::string line = encodeEvent(event);
  std::vector<uint64_t> subs;
  for (const auto& [id, c] : conns_) {
    if (c.subscriber) subs.push_back(id);
  }
  for (uint64_t id : subs) send(id, line);
}

void Shim::handleRequest(uint64_t conn_id, const Request& r) {
  PendingReply to{conn_id, r.id};
  const Json& p = r.params;
  shimLog(0, "request %llu: %s", static_cast<unsigned long long>(r.id), r.method.c_str());
  StatusOr<Json> result = Json::object();
  if (r.method == "createSandbox") {
    result = createSandbox(p);
  } else if (r.method == "sandboxStatus") {
    result = sandboxStatus();
  } else if (r.method == "removeSandbox") {
    result = removeSandbox(p);
  } else if (r.method == "createContainer") {
    result = createContainer(p);
  } else if (r.method == "startContainer") {
    result = startContainer(p);
  } else if (r.method == "state") {
    result = containerState(p);
  } else if (r.method == "listContainers") {
    result = listContainers();
  } else if (r.method == "kill") {
    result = killContainer(p);
  } else if (r.method == "stopContainer") {
    Status st = stopContainer(p, to);
    if (st.ok()) return;  // replied now or when the container exits
    result = st;
  } else if (r.method == "deleteContainer") {
    result = deleteContainer(p);
  } else if (r.method == "reopenLog") {
    result = reopenLog(p);
  } else if (r.method == "execSync") {
    Status st = execSync(p, to);
    if (st.ok()) return;
    result = st;
  } else if (r.method == "attach") {
    Status st = attach(p, to);
    if (st.ok()) return;
    result = st;
  } else if (r.method == "execStream") {
    Status st = execStream(p, to);
    if (st.ok()) return;
    result = st;
  } else if (r.method == "subscribe") {
    conns_[conn_id].subscriber = true;
    result = Json{{"subscribed", true}};
  } else if (r.method == "ping") {
    result = Json{{"pod_id", options_.pod_id}, {"pid", ::getpid()}};
  } else if (r.method == "shutdown") {
    bool force = p.is_object() && p.value("force", false);
    std::vector<std::string> live;
    for (const auto& [id, c] : containers_) {
      if (c.state.status == ContainerStatus::kCreated || c.state.status == ContainerStatus::kRunning) {
        live.push_back(id);
      }
    }
    if (!live.empty() && !force) {
      result = failedPrecondition("shutdown: containers ", joinStrings(live, ", "),
                                  " are still running; stop them first or pass force");
    } else {
      shutting_down_ = true;
      shutdown_waiters_.push_back(to);
      for (const auto& id : live) {
        auto& c = containers_[id];
        if (c.state.pid > 0) ::kill(c.state.pid, SIGKILL);
      }
      maybeFinishShutdown();
      return;
    }
  } else {
    result = unimplemented("unknown method \"", r.method,
                           "\"; see runtime/shim/protocol.h for the methods");
  }
  reply(to, result);
}

void Shim::maybeFinishShutdown() {
  if (!shutting_down_) return;
  for (const auto& [id, c] : containers_) {
    if (c.state.status == ContainerStatus::kCreated || c.state.status == ContainerStatus::kRunning) {
      return;
    }
  }
  // Forced shutdowns leave no runtime state behind.
  for (const auto& [id, c] : containers_) {
    (void)runRuntime(runtimeArgs({"delete", "--force", id}), strCat("delete container \"", id, "\""));
  }
  for (const auto& to : shutdown_waiters_) reply(to, Json::object());
  exit_now_ = true;
}

void Shim::cleanupAndExit() {
  // Best effort: flush replies (small), then remove our socket and pid file.
  for (auto& [id, c] : conns_) {
    if (!c.out.empty()) {
      int fl = fcntl(c.fd.get(), F_GETFL);
      fcntl(c.fd.get(), F_SETFL, fl & ~O_NONBLOCK);
      (void)!::send(c.fd.get(), c.out.data(), c.out.size(), MSG_NOSIGNAL);
    }
  }
  if (sandbox_created_ && sandbox_.pause_pid > 0) {
    ::kill(sandbox_.pause_pid, SIGKILL);
  }
  ::unlink(fs::join(options_.state_dir, "shim.sock").c_str());
  ::unlink(fs::join(options_.state_dir, "shim.pid").c_str());
  shimLog(1, "berth-shim for pod %s exiting", options_.pod_id.c_str());
}

void Shim::onSignal() {
  struct signalfd_siginfo si;
  bool child = false;
  while (::read(signal_fd_.get(), &si, sizeof(si)) == sizeof(si)) {
    if (si.ssi_signo == SIGCHLD) {
      child = true;
    } else if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
      size_t live = 0;
      for (const auto& [id, c] : containers_) {
        if (c.state.status == ContainerStatus::kCreated || c.state.status == ContainerStatus::kRunning) ++live;
      }
      if (live == 0) {
        shimLog(1, "signal %u and no running containers: exiting", si.ssi_signo);
        shutting_down_ = true;
        maybeFinishShutdown();
      } else {
        shimLog(2, "signal %u ignored: %zu containers still running (use the shutdown request)",
                si.ssi_signo, live);
      }
    }
  }
  if (!child) return;
  for (;;) {
    int ws;
    pid_t pid = ::waitpid(-1, &ws, WNOHANG);
    if (pid <= 0) break;
    onChildExit(pid, ws);
  }
  maybeFinishShutdown();
}

void Shim::onDeadlines() {
  int64_t now = monotonicMs();
  for (auto& [id, c] : containers_) {
    if (c.stop_deadline_ms != 0 && now >= c.stop_deadline_ms) {
      c.stop_deadline_ms = 0;
      if (c.state.status == ContainerStatus::kRunning || c.state.status == ContainerStatus::kCreated) {
        shimLog(1, "container %s did not stop in time: SIGKILL", id.c_str());
        ::kill(c.state.pid, SIGKILL);
      }
    }
  }
  for (auto& [key, job] : execs_) {
    if (job.deadline_ms != 0 && now >= job.deadline_ms) {
      job.deadline_ms = 0;
      job.timed_out = true;
      shimLog(1, "exec in container %s timed out: killing it", job.container.c_str());
      auto pid_text = fs::readFile(job.pid_file);
      if (pid_text.ok()) {
        int pid = std::atoi(std::string(trim(*pid_text)).c_str());
        if (pid > 0) ::kill(pid, SIGKILL);
      }
      ::kill(job.runtime_pid, SIGKILL);
    }
  }
}

// ---------------------------------------------------------------------------
// Sandbox

StatusOr<Json> Shim::createSandbox(const Json& params) {
  ASSIGN_OR_RETURN(SandboxSpec spec, sandboxSpecFromJson(params));
  if (sandbox_created_) {
    if (spec.ns_dir != sandbox_.ns_dir) {
      return alreadyExists("createSandbox: the pod's namespaces are already pinned under \"",
                           sandbox_.ns_dir, "\"");
    }
    return toJson(sandbox_);
  }
  ASSIGN_OR_RETURN(sandbox_, createPodNamespaces(spec, options_.pause_binary));
  sandbox_created_ = true;
  if (sandbox_.pause_pid > 0) {
    auto st = proc::startTime(sandbox_.pause_pid);
    pause_start_time_ = st.ok() ? *st : 0;
  }
  Json j = toJson(sandbox_);
  j["pause_start_time"] = pause_start_time_;
  Status w = fs::writeFileAtomic(fs::join(options_.state_dir, "sandbox.json"), dumpJson(j), 0644,
                                 fs::Durability::kVolatile);
  if (!w.ok()) shimLog(2, "%s", std::string(w.message()).c_str());
  shimLog(1, "pod namespaces pinned under %s (pause pid %d)", sandbox_.ns_dir.c_str(),
          sandbox_.pause_pid);
  return toJson(sandbox_);
}

StatusOr<Json> Shim::sandboxStatus() {
  if (!sandbox_created_) return notFound("no sandbox: createSandbox was not called on this shim");
  return toJson(sandbox_);
}

StatusOr<Json> Shim::removeSandbox(const Json& params) {
  std::string ns_dir = sandbox_.ns_dir;
  if (params.is_object() && params.contains("ns_dir") && params["ns_dir"].is_string()) {
    ns_dir = params["ns_dir"].get<std::string>();
  }
  pid_t pause = sandbox_created_ && sandbox_.pause_running ? sandbox_.pause_pid : 0;
  RETURN_IF_ERROR(removePodNamespaces(ns_dir, pause, pause_start_time_));
  sandbox_created_ = false;
  sandbox_ = SandboxNamespaces{};
  ::unlink(fs::join(options_.state_dir, "sandbox.json").c_str());
  return Json::object();
}

}  // namespace berth::shim
