#include "cni/plugin_exec.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/cord.h"
#include "common/fs.h"
#include "common/unique_fd.h"

extern char** environ;

namespace berth::cni {

namespace {

using json::Json;

constexpr char kCniCodePayload[] = "type.berth.dev/cni-error-code";

void setNonBlocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

// The environment of the plugin: ours without CNI_* variables, plus the invocation's.
std::vector<std::string> buildEnv(const PluginEnv& env) {
  std::vector<std::string> out;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    if (std::strncmp(*e, "CNI_", 4) == 0) continue;
    out.emplace_back(*e);
  }
  out.push_back("CNI_COMMAND=" + env.command);
  if (!env.container_id.empty()) out.push_back("CNI_CONTAINERID=" + env.container_id);
  if (!env.netns.empty()) out.push_back("CNI_NETNS=" + env.netns);
  if (!env.ifname.empty()) out.push_back("CNI_IFNAME=" + env.ifname);
  if (!env.args.empty()) out.push_back("CNI_ARGS=" + env.args);
  out.push_back("CNI_PATH=" + joinStrings(env.bin_dirs, ":"));
  return out;
}

// write(2) that cannot raise SIGPIPE when the plugin closed its stdin: SIGPIPE is
// blocked on this thread for the call and a pending one is consumed.
ssize_t writeNoSigpipe(int fd, const char* data, size_t size) {
  sigset_t pipe_set, old_set;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
  ssize_t w = ::write(fd, data, size);
  int saved = errno;
  if (w < 0 && errno == EPIPE) {
    timespec zero{0, 0};
    while (sigtimedwait(&pipe_set, nullptr, &zero) < 0 && errno == EINTR) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old_set, nullptr);
  errno = saved;
  return w;
}

std::string describeExit(int wstatus) {
  if (WIFEXITED(wstatus)) return strCat("exit status ", WEXITSTATUS(wstatus));
  if (WIFSIGNALED(wstatus)) return strCat("killed by signal ", WTERMSIG(wstatus));
  return strCat("wait status ", wstatus);
}

std::string shorten(std::string_view text) {
  std::string t(trim(text));
  if (t.size() > 2000) t = t.substr(0, 2000) + "...";
  return t;
}

}  // namespace

int cniErrorCode(const Status& status) {
  auto payload = status.GetPayload(kCniCodePayload);
  if (!payload) return 0;
  return std::atoi(std::string(*payload).c_str());
}

Status withCniErrorCode(Status status, int code) {
  if (!status.ok()) status.SetPayload(kCniCodePayload, absl::Cord(std::to_string(code)));
  return status;
}

Status pluginError(std::string_view type, std::string_view command, int code,
                   std::string_view msg, std::string_view details) {
  std::string text = strCat("CNI plugin \"", type, "\" ", command, " failed (code ", code, "): ", msg);
  if (!details.empty()) text = strCat(text, ": ", details);
  absl::StatusCode sc;
  switch (code) {
    case kErrIncompatibleVersion: sc = absl::StatusCode::kFailedPrecondition; break;
    case kErrUnsupportedField:
    case kErrInvalidEnvironment:
    case kErrDecode:
    case kErrInvalidNetworkConfig: sc = absl::StatusCode::kInvalidArgument; break;
    case kErrUnknownContainer: sc = absl::StatusCode::kNotFound; break;
    case kErrIo: sc = absl::StatusCode::kInternal; break;
    case kErrTryAgainLater:
    case kErrPluginNotAvailable:
    case kErrPluginNotAvailableLimited: sc = absl::StatusCode::kUnavailable; break;
    default: sc = absl::StatusCode::kUnknown; break;
  }
  Status status(sc, text);
  status.SetPayload(kCniCodePayload, absl::Cord(std::to_string(code)));
  return status;
}

StatusOr<std::string> findPlugin(std::string_view type, const std::vector<std::string>& bin_dirs) {
  for (const std::string& dir : bin_dirs) {
    std::string path = fs::join(dir, type);
    struct stat st;
    if (::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0) {
      return path;
    }
  }
  return notFound("CNI plugin \"", type, "\" not found in ", joinStrings(bin_dirs, ":"),
                  "; install it there or pass the directory holding it with --cni-bin-dir");
}

Json pluginStdinConfig(const NetworkConfList& list, const PluginConf& plugin,
                       const CapabilityArgs& capability_args, const Json& prev_result) {
  Json conf = plugin.raw;
  conf["name"] = list.name;
  conf["cniVersion"] = list.cni_version;
  conf.erase("runtimeConfig");
  Json runtime_config = Json::object();
  for (const auto& [name, value] : capability_args) {
    if (plugin.wants(name)) runtime_config[name] = value;
  }
  if (!runtime_config.empty()) conf["runtimeConfig"] = runtime_config;
  if (!prev_result.is_null()) conf["prevResult"] = prev_result;
  return conf;
}

StatusOr<PluginOutput> execPlugin(const std::string& path, std::string_view type,
                                  const PluginEnv& env, std::string_view stdin_data,
                                  std::chrono::milliseconds timeout) {
  std::string what = strCat("CNI plugin \"", type, "\" ", env.command);
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) != 0) return lastErrnoError(what + ": pipe");
  UniqueFd in_r(in[0]), in_w(in[1]);
  if (::pipe2(out, O_CLOEXEC) != 0) return lastErrnoError(what + ": pipe");
  UniqueFd out_r(out[0]), out_w(out[1]);
  if (::pipe2(err, O_CLOEXEC) != 0) return lastErrnoError(what + ": pipe");
  UniqueFd err_r(err[0]), err_w(err[1]);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in_r.get(), 0);
  posix_spawn_file_actions_adddup2(&actions, out_w.get(), 1);
  posix_spawn_file_actions_adddup2(&actions, err_w.get(), 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<std::string> env_strings = buildEnv(env);
  std::vector<char*> envp;
  for (std::string& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string arg0 = path;
  char* argv[] = {arg0.data(), nullptr};

  pid_t pid = -1;
  int rc = posix_spawn(&pid, path.c_str(), &actions, &attr, argv, envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return errnoError(rc, strCat(what, ": spawn ", path));
  in_r.reset();
  out_w.reset();
  err_w.reset();

  setNonBlocking(in_w.get());
  setNonBlocking(out_r.get());
  setNonBlocking(err_r.get());
  std::string stdout_text, stderr_text;
  size_t written = 0;
  if (stdin_data.empty()) in_w.reset();
  auto deadline = std::chrono::steady_clock::now() + timeout;
  bool timed_out = false;
  while (out_r.valid() || err_r.valid()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd fds[3];
    int n = 0;
    if (in_w.valid()) fds[n++] = {in_w.get(), POLLOUT, 0};
    if (out_r.valid()) fds[n++] = {out_r.get(), POLLIN, 0};
    if (err_r.valid()) fds[n++] = {err_r.get(), POLLIN, 0};
    int ready = ::poll(fds, n, static_cast<int>(left.count()));
    if (ready < 0) {
      if (errno == EINTR) continue;
      Status s = lastErrnoError(what + ": poll");
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      return s;
    }
    for (int i = 0; i < n; ++i) {
      if (fds[i].revents == 0) continue;
      if (in_w.valid() && fds[i].fd == in_w.get()) {
        ssize_t w = writeNoSigpipe(in_w.get(), stdin_data.data() + written,
                                   stdin_data.size() - written);
        if (w > 0) written += static_cast<size_t>(w);
        if (w < 0 && errno != EAGAIN && errno != EINTR) in_w.reset();  // plugin closed stdin
        if (written == stdin_data.size()) in_w.reset();
        continue;
      }
      UniqueFd& src = (out_r.valid() && fds[i].fd == out_r.get()) ? out_r : err_r;
      std::string& dst = (&src == &out_r) ? stdout_text : stderr_text;
      char buf[8192];
      ssize_t r = ::read(src.get(), buf, sizeof(buf));
      if (r > 0) {
        dst.append(buf, static_cast<size_t>(r));
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        src.reset();
      }
    }
  }
  in_w.reset();
  if (timed_out) ::kill(pid, SIGKILL);
  int wstatus = 0;
  while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    return absl::DeadlineExceededError(
        strCat(what, ": no answer within ", timeout.count(), " ms; killed it",
               stderr_text.empty() ? "" : "; stderr: ", shorten(stderr_text)));
  }

  PluginOutput output;
  output.stderr_text = stderr_text;
  std::string_view body = trim(stdout_text);
  if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) {
    if (body.empty()) return output;
    auto parsed = json::parse(body, strCat("output of ", what));
    if (!parsed.ok()) return parsed.status();
    output.result = std::move(*parsed);
    return output;
  }
  // Failure: the spec puts an error object on stdout (some plugins use stderr).
  for (std::string_view text : {body, trim(stderr_text)}) {
    if (text.empty()) continue;
    auto parsed = json::parse(text, "error");
    if (!parsed.ok() || !parsed->is_object() || !parsed->contains("code")) continue;
    const Json& e = *parsed;
    int code = e["code"].is_number_integer() ? e["code"].get<int>() : 0;
    std::string msg = e.contains("msg") && e["msg"].is_string() ? e["msg"].get<std::string>() : "";
    std::string details =
        e.contains("details") && e["details"].is_string() ? e["details"].get<std::string>() : "";
    return pluginError(type, env.command, code, msg, details);
  }
  return absl::UnknownError(strCat(
      what, " failed with ", describeExit(wstatus), " and no error object",
      body.empty() ? "" : "; stdout: ", shorten(body),
      stderr_text.empty() ? "" : "; stderr: ", shorten(stderr_text)));
}

}  // namespace berth::cni
