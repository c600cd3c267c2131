// berth-shim: the per-pod monitor. See runtime/shim/README.md and shim.h.
//
//   berth-shim --pod-id ID --state-dir DIR --runtime PATH --runtime-root DIR
//              [--log-level debug|info|warn|error] [--foreground]
//
// Without --foreground the command daemonizes (fork, setsid, fork) and returns once the
// shim serves DIR/shim.sock, printing {"pid":N} on stdout; exit status 1 and a message
// on stderr otherwise.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "common/unix_socket.h"
#include "common/fs.h"
#include "common/proc.h"
#include "runtime/shim/pod_namespaces.h"
#include "runtime/shim/shim.h"

namespace berth::shim {
namespace {

constexpr const char* kUsage =
    "usage: berth-shim --pod-id ID --state-dir DIR --runtime PATH --runtime-root DIR "
    "[--log-level debug|info|warn|error] [--foreground]\n";

StatusOr<UniqueFd> listenUnix(const std::string& path) {
  return listenUnixSocket(path, 0600, 64, /*nonblocking=*/true);
}

Status checkNotRunning(const std::string& state_dir) {
  auto text = fs::readFile(fs::join(state_dir, "shim.pid"));
  if (!text.ok()) return absl::OkStatus();
  Json j = Json::parse(*text, nullptr, false);
  if (!j.is_object()) return absl::OkStatus();
  int pid = j.value("pid", 0);
  uint64_t start = j.value("start_time", uint64_t{0});
  if (pid > 0 && proc::isAlive(pid, start)) {
    return alreadyExists("a berth-shim (pid ", pid, ") already serves state dir \"", state_dir,
                         "\"; connect to ", fs::join(state_dir, "shim.sock"));
  }
  return absl::OkStatus();
}

// The daemon: sets up the shim, reports readiness on `ready_fd` ("OK\n" or "E msg\n").
int serve(ShimOptions options, UniqueFd listen_fd, int ready_fd) {
  auto report = [ready_fd](const std::string& msg) {
    if (ready_fd >= 0) (void)!::write(ready_fd, msg.data(), msg.size());
  };
  auto shim = Shim::create(options, std::move(listen_fd));
  if (!shim.ok()) {
    report(strCat("E ", shim.status().message(), "\n"));
    return 1;
  }
  auto start = proc::startTime(::getpid());
  Json pid = {{"pid", ::getpid()}, {"start_time", start.ok() ? *start : 0}};
  Status st = fs::writeFileAtomic(fs::join(options.state_dir, "shim.pid"), pid.dump(), 0644,
                                  fs::Durability::kVolatile);
  if (!st.ok()) {
    report(strCat("E ", st.message(), "\n"));
    return 1;
  }
  report("OK\n");
  if (ready_fd >= 0) ::close(ready_fd);
  return (*shim)->run();
}

int mainImpl(int argc, char** argv) {
  ShimOptions o;
  bool foreground = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](std::string& out) -> bool {
      if (i + 1 >= argc) return false;
      out = argv[++i];
      return true;
    };
    bool ok = true;
    if (a == "--pod-id") ok = value(o.pod_id);
    else if (a == "--state-dir") ok = value(o.state_dir);
    else if (a == "--runtime") ok = value(o.runtime);
    else if (a == "--runtime-root") ok = value(o.runtime_root);
    else if (a == "--log-level") ok = value(o.log_level);
    else if (a == "--foreground") foreground = true;
    else if (a == "-h" || a == "--help") {
      fputs(kUsage, stdout);
      return 0;
    } else {
      fprintf(stderr, "berth-shim: unknown argument \"%s\"\n%s", a.c_str(), kUsage);
      return 2;
    }
    if (!ok) {
      fprintf(stderr, "berth-shim: %s needs a value\n%s", a.c_str(), kUsage);
      return 2;
    }
  }
  if (o.pod_id.empty() || o.state_dir.empty() || o.runtime.empty() || o.runtime_root.empty()) {
    fprintf(stderr, "berth-shim: --pod-id, --state-dir, --runtime and --runtime-root are required\n%s",
            kUsage);
    return 2;
  }
  if (o.state_dir[0] != '/' || o.runtime[0] != '/' || o.runtime_root[0] != '/') {
    fprintf(stderr, "berth-shim: --state-dir, --runtime and --runtime-root must be absolute paths\n");
    return 2;
  }
  if (::access(o.runtime.c_str(), X_OK) != 0) {
    fprintf(stderr, "berth-shim: --runtime \"%s\" is not executable: %s\n", o.runtime.c_str(),
            strerror(errno));
    return 2;
  }
  char self[4096];
  ssize_t self_len = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (self_len > 0) {
    self[self_len] = '\0';
    o.pause_binary = pauseBinaryNextTo(self);
  }
  setShimLogLevel(o.log_level);
  Status st = fs::mkdirAll(o.state_dir, 0711);
  if (st.ok()) st = checkNotRunning(o.state_dir);
  if (!st.ok()) {
    fprintf(stderr, "berth-shim: %s\n", std::string(st.message()).c_str());
    return 1;
  }
  auto listen_fd = listenUnix(fs::join(o.state_dir, "shim.sock"));
  if (!listen_fd.ok()) {
    fprintf(stderr, "berth-shim: %s\n", std::string(listen_fd.status().message()).c_str());
    return 1;
  }
  if (foreground) return serve(std::move(o), std::move(*listen_fd), -1);

  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) {
    perror("berth-shim: pipe");
    return 1;
  }
  fflush(nullptr);
  pid_t child = ::fork();
  if (child < 0) {
    perror("berth-shim: fork");
    return 1;
  }
  if (child == 0) {
    ::close(ready[0]);
    ::setsid();
    pid_t daemon = ::fork();
    if (daemon != 0) _exit(daemon < 0 ? 1 : 0);
    // The daemon: no controlling terminal, stdio on /dev/null and shim.log.
    (void)!::chdir("/");
    int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    std::string log_path = fs::join(o.state_dir, "shim.log");
    int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    ::dup2(devnull, 0);
    ::dup2(devnull, 1);
    ::dup2(log >= 0 ? log : devnull, 2);
    if (devnull > 2) ::close(devnull);
    if (log > 2) ::close(log);
    _exit(serve(std::move(o), std::move(*listen_fd), ready[1]));
  }
  ::close(ready[1]);
  listen_fd->reset();
  int ws;
  while (::waitpid(child, &ws, 0) < 0 && errno == EINTR) {
  }
  std::string msg;
  char buf[1024];
  for (;;) {
    ssize_t n = ::read(ready[0], buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    msg.append(buf, static_cast<size_t>(n));
  }
  ::close(ready[0]);
  if (msg.rfind("OK", 0) != 0) {
    if (msg.rfind("E ", 0) == 0) msg = msg.substr(2);
    if (msg.empty()) msg = "the shim daemon exited before it was ready; see shim.log\n";
    fprintf(stderr, "berth-shim: %s", msg.c_str());
    return 1;
  }
  auto pid_text = fs::readFile(fs::join(o.state_dir, "shim.pid"));
  printf("%s\n", pid_text.ok() ? pid_text->c_str() : "{}");
  return 0;
}

}  // namespace
}  // namespace berth::shim

int main(int argc, char** argv) { return berth::shim::mainImpl(argc, argv); }
