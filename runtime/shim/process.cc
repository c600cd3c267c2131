#include "runtime/shim/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>

#include "common/unique_fd.h"

namespace berth::shim {
namespace {

constexpr size_t kMaxRunOutput = 1u << 20;

int64_t monotonicMs() {
  struct timespec ts {};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

}  // namespace

int exitCodeFromWaitStatus(int ws) {
  if (WIFEXITED(ws)) return WEXITSTATUS(ws);
  if (WIFSIGNALED(ws)) return 128 + WTERMSIG(ws);
  return 255;
}

Status setNonBlocking(int fd) {
  int fl = ::fcntl(fd, F_GETFL);
  if (fl < 0 || ::fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) return lastErrnoError("fcntl O_NONBLOCK");
  return absl::OkStatus();
}

StatusOr<pid_t> spawnProcess(const std::vector<std::string>& argv, int in, int out, int err) {
  if (argv.empty()) return invalidArgument("spawn: empty argv");
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) return lastErrnoError(strCat("fork for \"", argv[0], "\""));
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    for (int sig = 1; sig < NSIG; ++sig) {
      if (sig != SIGKILL && sig != SIGSTOP) signal(sig, SIG_DFL);
    }
    sigprocmask(SIG_SETMASK, &none, nullptr);
    int devnull = ::open("/dev/null", O_RDWR);
    int fds[3] = {in < 0 ? devnull : in, out < 0 ? devnull : out, err < 0 ? devnull : err};
    // Move sources above 2 first so a dup2 never clobbers a later source.
    for (int i = 0; i < 3; ++i) {
      if (fds[i] >= 0 && fds[i] <= 2) fds[i] = ::fcntl(fds[i], F_DUPFD, 3);
    }
    for (int i = 0; i < 3; ++i) {
      if (fds[i] < 0 || ::dup2(fds[i], i) < 0) _exit(126);
    }
    ::close_range(3, ~0U, 0);
    ::execv(cargv[0], cargv.data());
    _exit(127);
  }
  return pid;
}

bool drainFd(int fd, std::string& buf, size_t cap, bool* truncated) {
  char chunk[65536];
  for (;;) {
    ssize_t n = ::read(fd, chunk, sizeof(chunk));
    if (n > 0) {
      size_t room = buf.size() < cap ? cap - buf.size() : 0;
      size_t take = std::min(room, static_cast<size_t>(n));
      buf.append(chunk, take);
      if (take < static_cast<size_t>(n) && truncated != nullptr) *truncated = true;
      continue;
    }
    if (n == 0) return false;
    if (errno == EINTR) continue;
    return errno == EAGAIN || errno == EWOULDBLOCK;
  }
}

StatusOr<RunResult> runProcess(const std::vector<std::string>& argv, int timeout_ms, int in,
                               int out, int err) {
  UniqueFd cap_r, cap_w;
  if (out < 0 || err < 0) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) return lastErrnoError("pipe");
    cap_r.reset(p[0]);
    cap_w.reset(p[1]);
    if (out < 0) out = cap_w.get();
    if (err < 0) err = cap_w.get();
  }
  ASSIGN_OR_RETURN(pid_t pid, spawnProcess(argv, in, out, err));
  cap_w.reset();
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  RunResult r;
  int64_t deadline = monotonicMs() + timeout_ms;
  bool exited = false;
  while (!exited) {
    struct pollfd p[2] = {{pidfd.get(), POLLIN, 0}, {cap_r.get(), POLLIN, 0}};
    int64_t left = deadline - monotonicMs();
    if (left <= 0) {
      ::kill(pid, SIGKILL);
      r.timed_out = true;
      break;
    }
    int nfds = cap_r ? 2 : 1;
    int rc = ::poll(p, static_cast<nfds_t>(nfds), pidfd ? static_cast<int>(std::min<int64_t>(left, 50)) : 10);
    if (rc < 0 && errno != EINTR) break;
    if (cap_r && (p[1].revents & (POLLIN | POLLHUP)) != 0) {
      if (!drainFd(cap_r.get(), r.output, kMaxRunOutput, nullptr)) cap_r.reset();
    }
    int ws;
    pid_t w = ::waitpid(pid, &ws, WNOHANG);
    if (w == pid) {
      r.exit_code = exitCodeFromWaitStatus(ws);
      exited = true;
    }
  }
  if (!exited) {
    int ws;
    while (::waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
    }
    r.exit_code = exitCodeFromWaitStatus(ws);
  }
  if (cap_r) drainFd(cap_r.get(), r.output, kMaxRunOutput, nullptr);
  return r;
}

}  // namespace berth::shim
