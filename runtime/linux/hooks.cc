#include "runtime/linux/hooks.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "common/strings.h"
#include "common/unique_fd.h"

namespace berth::hooks {
namespace {

constexpr size_t kMaxOutput = 4096;

std::vector<char*> cstrings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

}  // namespace

Status runHook(const oci::Hook& hook, const std::string& state_json, const std::string& kind,
               size_t index) {
  std::string name = strCat(kind, " hook [", index, "] \"", hook.path, "\"");
  int in_pipe[2], out_pipe[2];
  if (::pipe2(in_pipe, O_CLOEXEC) != 0) return lastErrnoError(strCat(name, ": pipe"));
  UniqueFd in_r(in_pipe[0]), in_w(in_pipe[1]);
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return lastErrnoError(strCat(name, ": pipe"));
  UniqueFd out_r(out_pipe[0]), out_w(out_pipe[1]);

  std::vector<std::string> args = hook.args;
  if (args.empty()) args.push_back(hook.path);
  std::vector<std::string> env = hook.env;
  auto argv = cstrings(args);
  auto envp = cstrings(env);

  pid_t pid = ::fork();
  if (pid < 0) return lastErrnoError(strCat(name, ": fork"));
  if (pid == 0) {
    ::dup2(in_r.get(), 0);
    ::dup2(out_w.get(), 1);
    ::dup2(out_w.get(), 2);
    ::execve(hook.path.c_str(), argv.data(), envp.data());
    dprintf(2, "exec: %s\n", strerror(errno));
    _exit(127);
  }
  in_r.reset();
  out_w.reset();
  // The state is small (< pipe buffer), so this write does not block on a hook that
  // never reads its stdin; a hook that exited early gives EPIPE, which is fine.
  sighandler_t old = ::signal(SIGPIPE, SIG_IGN);
  ssize_t ignored = ::write(in_w.get(), state_json.data(), state_json.size());
  (void)ignored;
  ::signal(SIGPIPE, old);
  in_w.reset();

  std::string output;
  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::seconds(hook.timeout.value_or(0));
  bool timed_out = false;
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  UniqueFd pfd(pidfd);
  bool out_open = true;
  while (true) {
    int timeout_ms = -1;
    if (hook.timeout) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                      deadline - std::chrono::steady_clock::now())
                      .count();
      if (left <= 0) {
        timed_out = true;
        ::kill(pid, SIGKILL);
        break;
      }
      timeout_ms = static_cast<int>(left);
    }
    struct pollfd fds[2] = {{out_open ? out_r.get() : -1, POLLIN, 0}, {pfd.get(), POLLIN, 0}};
    int n = ::poll(fds, 2, timeout_ms);
    if (n < 0 && errno != EINTR) break;
    if (n <= 0) continue;
    if (fds[0].revents) {
      char buf[1024];
      ssize_t r = ::read(out_r.get(), buf, sizeof(buf));
      if (r <= 0) {
        out_open = false;
      } else if (output.size() < kMaxOutput) {
        output.append(buf, std::min(static_cast<size_t>(r), kMaxOutput - output.size()));
      }
    }
    if (fds[1].revents && !out_open) break;
    if (fds[1].revents && out_open) {
      // Process gone: drain what is left without blocking on grandchildren holding
      // the pipe open.
      ::fcntl(out_r.get(), F_SETFL, O_NONBLOCK);
      char buf[1024];
      ssize_t r;
      while ((r = ::read(out_r.get(), buf, sizeof(buf))) > 0 && output.size() < kMaxOutput) {
        output.append(buf, std::min(static_cast<size_t>(r), kMaxOutput - output.size()));
      }
      break;
    }
    if (!pfd && !out_open) break;
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  std::string printed = output.empty() ? "" : strCat("; it printed: ", trim(output));
  if (timed_out) {
    return absl::DeadlineExceededError(
        strCat(name, ": timed out after ", *hook.timeout, " s and was killed", printed));
  }
  if (WIFSIGNALED(status)) {
    return internalError(name, ": killed by signal ", WTERMSIG(status), printed);
  }
  if (WEXITSTATUS(status) != 0) {
    return internalError(name, ": exited with status ", WEXITSTATUS(status), printed);
  }
  return absl::OkStatus();
}

Status runHooks(const std::vector<oci::Hook>& list, const std::string& state_json,
                const std::string& kind) {
  for (size_t i = 0; i < list.size(); ++i) {
    RETURN_IF_ERROR(runHook(list[i], state_json, kind, i));
  }
  return absl::OkStatus();
}

}  // namespace berth::hooks
