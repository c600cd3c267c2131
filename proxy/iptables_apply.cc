#include "proxy/iptables_apply.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <vector>

#include "common/unique_fd.h"

extern char** environ;

namespace berth::proxy {
namespace {

struct RunResult {
  int exit_status = -1;  // -1: killed by a signal (or timeout)
  bool timed_out = false;
  std::string out;
  std::string err;
};

// The first executable named `name` in PATH (absolute `name` is checked as is); "" when
// none.
std::string findInPath(std::string_view name) {
  auto executable = [](const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
  };
  if (name.find('/') != std::string_view::npos) {
    std::string path(name);
    return executable(path) ? path : std::string();
  }
  const char* env = std::getenv("PATH");
  std::string path_var = env != nullptr ? env : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (const std::string& dir : split(path_var, ':', true)) {
    std::string candidate = strCat(dir, "/", name);
    if (executable(candidate)) return candidate;
  }
  return std::string();
}

// Blocks SIGPIPE in the calling thread for the object's life; a SIGPIPE raised for this
// thread meanwhile (writing to a pipe whose reader exited) is consumed before the old
// mask comes back.
class SigpipeBlock {
 public:
  SigpipeBlock() {
    sigset_t pipe_only;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    sigset_t pending;
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe_only, &old_);
  }
  ~SigpipeBlock() {
    if (!was_pending_) {
      sigset_t pipe_only;
      sigemptyset(&pipe_only);
      sigaddset(&pipe_only, SIGPIPE);
      timespec zero{0, 0};
      while (sigtimedwait(&pipe_only, nullptr, &zero) == SIGPIPE) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeBlock(const SigpipeBlock&) = delete;
  SigpipeBlock& operator=(const SigpipeBlock&) = delete;

 private:
  sigset_t old_;
  bool was_pending_ = false;
};

// Runs `argv` (argv[0] an absolute path) with `input` on stdin and collects stdout and
// stderr, killing it after `timeout`. Errors: pipes or posix_spawn failing.
StatusOr<RunResult> runProcess(const std::vector<std::string>& argv, std::string_view input,
                               std::chrono::seconds timeout) {
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) != 0) return lastErrnoError("pipe");
  UniqueFd in_r(in[0]), in_w(in[1]);
  if (::pipe2(out, O_CLOEXEC) != 0) return lastErrnoError("pipe");
  UniqueFd out_r(out[0]), out_w(out[1]);
  if (::pipe2(err, O_CLOEXEC) != 0) return lastErrnoError("pipe");
  UniqueFd err_r(err[0]), err_w(err[1]);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in_r.get(), 0);
  posix_spawn_file_actions_adddup2(&fa, out_w.get(), 1);
  posix_spawn_file_actions_adddup2(&fa, err_w.get(), 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  int rc = ::posix_spawn(&pid, argv[0].c_str(), &fa, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return errnoError(rc, strCat("run ", argv[0]));
  in_r.reset();
  out_w.reset();
  err_w.reset();
  if (input.empty()) in_w.reset();
  if (in_w.valid()) ::fcntl(in_w.get(), F_SETFL, O_NONBLOCK);

  RunResult result;
  SigpipeBlock no_sigpipe;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  size_t written = 0;
  char buf[16384];
  while (out_r.valid() || err_r.valid() || in_w.valid()) {
    pollfd fds[3];
    nfds_t n = 0;
    int in_slot = -1, out_slot = -1, err_slot = -1;
    if (in_w.valid()) {
      in_slot = static_cast<int>(n);
      fds[n++] = {in_w.get(), POLLOUT, 0};
    }
    if (out_r.valid()) {
      out_slot = static_cast<int>(n);
      fds[n++] = {out_r.get(), POLLIN, 0};
    }
    if (err_r.valid()) {
      err_slot = static_cast<int>(n);
      fds[n++] = {err_r.get(), POLLIN, 0};
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline -
                                                                      std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      result.timed_out = true;
      ::kill(pid, SIGKILL);
      break;
    }
    int ready = ::poll(fds, n, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) {
      ::kill(pid, SIGKILL);
      break;
    }
    if (in_slot >= 0 && fds[in_slot].revents != 0) {
      ssize_t w = ::write(in_w.get(), input.data() + written, input.size() - written);
      if (w > 0) written += static_cast<size_t>(w);
      if ((w < 0 && errno != EAGAIN && errno != EINTR) || written == input.size()) in_w.reset();
    }
    auto drainOne = [&](int slot, UniqueFd& fd, std::string& sink) {
      if (slot < 0 || fds[slot].revents == 0) return;
      ssize_t r = ::read(fd.get(), buf, sizeof(buf));
      if (r > 0) {
        sink.append(buf, static_cast<size_t>(r));
      } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
        fd.reset();
      }
    };
    drainOne(out_slot, out_r, result.out);
    drainOne(err_slot, err_r, result.err);
  }
  int ws = 0;
  while (::waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
  }
  result.exit_status = WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
  return result;
}

std::string_view familyTool(IpFamily family) { return family == IpFamily::kIPv6 ? "ip6tables" : "iptables"; }

// A number following `marker` in `text`, or 0.
size_t numberAfter(std::string_view text, std::string_view marker) {
  size_t at = text.find(marker);
  if (at == std::string_view::npos) return 0;
  size_t n = 0;
  bool any = false;
  for (size_t i = at + marker.size(); i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
    n = n * 10 + static_cast<size_t>(text[i] - '0');
    any = true;
  }
  return any ? n : 0;
}

std::string_view lineOf(std::string_view text, size_t n) {
  size_t start = 0;
  for (size_t i = 1; i < n; ++i) {
    size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) return {};
    start = nl + 1;
  }
  size_t end = text.find('\n', start);
  return text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
}

}  // namespace

std::string_view backendName(IptablesBackend backend) {
  switch (backend) {
    case IptablesBackend::kNft:
      return "nf_tables";
    case IptablesBackend::kLegacy:
      return "legacy";
    case IptablesBackend::kDetect:
      break;
  }
  return "detect";
}

StatusOr<IptablesBackend> parseVersionBackend(std::string_view version_output) {
  if (version_output.find("(nf_tables)") != std::string_view::npos) return IptablesBackend::kNft;
  if (version_output.find("(legacy)") != std::string_view::npos) return IptablesBackend::kLegacy;
  return invalidArgument("iptables --version printed \"", trim(version_output),
                         "\", which names neither backend (nf_tables) nor (legacy); iptables 1.8 or "
                         "newer is needed, or force the backend in the proxy configuration");
}

StatusOr<IptablesBackend> detectBackend(IpFamily family) {
  std::string tool = findInPath(familyTool(family));
  if (tool.empty()) {
    return notFound(familyTool(family), " is not in PATH; install the iptables package");
  }
  ASSIGN_OR_RETURN(RunResult r, runProcess({tool, "--version"}, "", std::chrono::seconds(10)));
  if (r.exit_status != 0) {
    return internalError(tool, " --version failed (exit status ", r.exit_status, "): ", trim(r.err));
  }
  return parseVersionBackend(r.out);
}

Status restoreError(std::string_view tool, IptablesBackend backend, int exit_status,
                    std::string_view stderr_text, std::string_view input) {
  size_t line = numberAfter(stderr_text, "Error occurred at line: ");
  if (line == 0) line = numberAfter(stderr_text, ": line ");
  if (line == 0) line = numberAfter(stderr_text, "COMMIT expected at line ");
  // The reason: stderr without the usage hint and the line report.
  std::vector<std::string> reasons;
  for (const std::string& raw : split(stderr_text, '\n', true)) {
    std::string_view l = trim(raw);
    if (l.empty() || l.starts_with("Try `") || l.starts_with("Error occurred at line")) continue;
    // "iptables-restore v1.8.9 (legacy): Couldn't load target ..." -> the part after ": "
    if (l.find(" v1.") != std::string_view::npos || l.find(" v0.") != std::string_view::npos) {
      size_t colon = l.find("): ");
      if (colon != std::string_view::npos) l = l.substr(colon + 3);
    }
    // "iptables-nft-restore: line 2 failed: No chain..." -> "No chain..."
    size_t failed = l.find(" failed: ");
    if (l.find(": line ") != std::string_view::npos && failed != std::string_view::npos) {
      l = l.substr(failed + 9);
    } else if (l.find(": line ") != std::string_view::npos && l.ends_with(" failed")) {
      continue;
    }
    reasons.emplace_back(l);
  }
  std::string reason = joinStrings(reasons, "; ");
  if (reason.empty()) reason = "no reason given";
  if (line > 0) {
    return invalidArgument(tool, " (", backendName(backend), "): line ", line, " failed: ", reason, ": \"",
                           trim(lineOf(input, line)), "\"");
  }
  return internalError(tool, " (", backendName(backend), ") failed (exit status ", exit_status, "): ", reason);
}

StatusOr<IptablesApplier> IptablesApplier::create(IpFamily family, const Options& options) {
  IptablesBackend backend = options.backend;
  if (backend == IptablesBackend::kDetect) {
    ASSIGN_OR_RETURN(backend, withContext(detectBackend(family), "detect the iptables backend"));
  }
  std::string base(familyTool(family));
  std::string flavour = backend == IptablesBackend::kNft ? "nft" : "legacy";
  auto resolve = [&](std::string_view verb) -> StatusOr<std::string> {
    std::string path = findInPath(strCat(base, "-", flavour, "-", verb));
    if (!path.empty()) return path;
    // Older or other packagings name only the selected flavour: accept the plain name
    // when `iptables --version` says it is the wanted backend.
    StatusOr<IptablesBackend> plain = detectBackend(family);
    if (plain.ok() && *plain == backend) {
      path = findInPath(strCat(base, "-", verb));
      if (!path.empty()) return path;
    }
    return notFound(base, "-", flavour, "-", verb, " is not in PATH (the ", backendName(backend),
                    " backend of ", base, "); install the iptables package or choose the other backend");
  };
  ASSIGN_OR_RETURN(std::string restore, resolve("restore"));
  ASSIGN_OR_RETURN(std::string save, resolve("save"));
  return IptablesApplier(family, backend, std::move(restore), std::move(save), options);
}

Status IptablesApplier::restore(std::string_view input) const {
  std::vector<std::string> argv = {restore_, "--noflush", strCat("--wait=", options_.lock_wait.count())};
  ASSIGN_OR_RETURN(RunResult r, runProcess(argv, input, options_.timeout));
  std::string tool = restore_.substr(restore_.rfind('/') + 1);
  if (r.timed_out) {
    return internalError(tool, " (", backendName(backend_), ") did not finish within ",
                         options_.timeout.count(), " s and was killed");
  }
  if (r.exit_status == 0) return absl::OkStatus();
  return restoreError(tool, backend_, r.exit_status, r.err, input);
}

StatusOr<std::string> IptablesApplier::save(std::string_view table) const {
  if (table != "filter" && table != "nat" && table != "mangle" && table != "raw" && table != "security") {
    return invalidArgument("iptables table \"", table, "\" is not one of filter, nat, mangle, raw, security");
  }
  std::string tool = save_.substr(save_.rfind('/') + 1);
  ASSIGN_OR_RETURN(RunResult r, runProcess({save_, "-t", std::string(table)}, "", options_.timeout));
  if (r.timed_out) {
    return internalError(tool, " -t ", table, " did not finish within ", options_.timeout.count(),
                         " s and was killed");
  }
  if (r.exit_status != 0) {
    return internalError(tool, " -t ", table, " failed (exit status ", r.exit_status, "): ", trim(r.err));
  }
  return std::move(r.out);
}

}  // namespace berth::proxy
