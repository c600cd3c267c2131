#include "runtime/shim/pod_namespaces.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/fs.h"
#include "common/proc.h"
#include "common/scope_guard.h"
#include "common/unique_fd.h"

#ifndef NSFS_MAGIC
#define NSFS_MAGIC 0x6e736673
#endif

namespace berth::shim {
namespace {

constexpr const char* kPinNames[] = {"net", "ipc", "uts", "pid"};

bool isIpcSysctl(const std::string& key) {
  return key == "kernel.shmmax" || key == "kernel.shmall" || key == "kernel.shmmni" ||
         key == "kernel.shm_rmid_forced" || key == "kernel.msgmax" || key == "kernel.msgmni" ||
         key == "kernel.msgmnb" || key == "kernel.sem" || key.rfind("fs.mqueue.", 0) == 0;
}

// Child side: report a failure to the parent and exit.
[[noreturn]] void childFail(int report_fd, const char* what) {
  int err = errno;
  char buf[512];
  int n = snprintf(buf, sizeof(buf), "E %d %s\n", err, what);
  if (n > 0) (void)!::write(report_fd, buf, static_cast<size_t>(std::min(n, 511)));
  _exit(1);
}

void resetSignalsForChild() {
  sigset_t all;
  sigemptyset(&all);
  sigprocmask(SIG_SETMASK, &all, nullptr);
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    signal(sig, SIG_DFL);
  }
}

// In the child, after unshare: hostname, sysctls, lo up.
void setupInChild(const SandboxSpec& spec, int report_fd) {
  if (!spec.host_uts && !spec.hostname.empty()) {
    if (::sethostname(spec.hostname.data(), spec.hostname.size()) != 0) {
      childFail(report_fd, ("sethostname \"" + spec.hostname + "\"").c_str());
    }
  }
  for (const auto& [key, value] : spec.sysctls) {
    std::string path = "/proc/sys/";
    for (char c : key) path += c == '.' ? '/' : c;
    int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) childFail(report_fd, ("sysctl \"" + key + "\": open " + path).c_str());
    if (::write(fd, value.data(), value.size()) < 0) {
      childFail(report_fd, ("sysctl \"" + key + "\" = \"" + value + "\"").c_str());
    }
    ::close(fd);
  }
  if (!spec.host_network) {
    int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) childFail(report_fd, "socket for lo");
    struct ifreq ifr {};
    strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    if (::ioctl(s, SIOCGIFFLAGS, &ifr) != 0) childFail(report_fd, "get flags of lo");
    ifr.ifr_flags |= IFF_UP;
    if (::ioctl(s, SIOCSIFFLAGS, &ifr) != 0) childFail(report_fd, "set lo up");
    ::close(s);
  }
}

Status bindPin(const std::string& source, const std::string& target) {
  UniqueFd fd(::open(target.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0444));
  if (!fd) return lastErrnoError(strCat("create pin file \"", target, "\""));
  fd.reset();
  if (::mount(source.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) != 0) {
    return lastErrnoError(strCat("bind mount \"", source, "\" on \"", target, "\""));
  }
  return absl::OkStatus();
}

// Makes `dir` its own private mount (binding it on itself when it is not a mount
// point yet).
Status makePrivateMount(const std::string& dir) {
  if (::mount(nullptr, dir.c_str(), nullptr, MS_PRIVATE, nullptr) == 0) return absl::OkStatus();
  if (errno != EINVAL) return lastErrnoError(strCat("make \"", dir, "\" a private mount"));
  if (::mount(dir.c_str(), dir.c_str(), nullptr, MS_BIND, nullptr) != 0) {
    return lastErrnoError(strCat("bind mount \"", dir, "\" on itself"));
  }
  if (::mount(nullptr, dir.c_str(), nullptr, MS_PRIVATE, nullptr) != 0) {
    return lastErrnoError(strCat("make \"", dir, "\" a private mount"));
  }
  return absl::OkStatus();
}

// Unmounts everything stacked on `path`. EINVAL (not a mount point) and ENOENT end it.
Status unmountAll(const std::string& path) {
  for (int i = 0; i < 16; ++i) {
    if (::umount2(path.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) == 0) continue;
    if (errno == EINVAL || errno == ENOENT) return absl::OkStatus();
    return lastErrnoError(strCat("unmount \"", path, "\""));
  }
  return internalError("unmount \"", path, "\": still mounted after 16 unmounts");
}

}  // namespace

Status checkSysctl(const std::string& key, const SandboxSpec& spec) {
  if (key.empty() || key.find('/') != std::string::npos || key.find("..") != std::string::npos) {
    return invalidArgument("sysctl \"", key, "\" is not a valid sysctl name");
  }
  if (key.rfind("net.", 0) == 0) {
    if (spec.host_network) {
      return invalidArgument("sysctl \"", key,
                             "\" would change the host's network namespace; pods with host "
                             "network cannot set net.* sysctls");
    }
    return absl::OkStatus();
  }
  if (isIpcSysctl(key)) {
    if (spec.host_ipc) {
      return invalidArgument("sysctl \"", key,
                             "\" would change the host's IPC namespace; pods with host IPC "
                             "cannot set it");
    }
    return absl::OkStatus();
  }
  return invalidArgument("sysctl \"", key,
                         "\" is not namespaced; pods may set only net.*, kernel.shm*, "
                         "kernel.msg*, kernel.sem and fs.mqueue.* sysctls");
}

StatusOr<SandboxNamespaces> createPodNamespaces(const SandboxSpec& spec,
                                                const std::string& pause_binary) {
  if (spec.ns_dir.empty() || spec.ns_dir[0] != '/') {
    return invalidArgument("createSandbox: \"ns_dir\" must be an absolute path, got \"",
                           spec.ns_dir, "\"");
  }
  for (const auto& [key, value] : spec.sysctls) RETURN_IF_ERROR(checkSysctl(key, spec));
  if (spec.share_pid && ::access(pause_binary.c_str(), X_OK) != 0) {
    return failedPrecondition("pod shares one PID namespace but the pause program \"",
                              pause_binary, "\" is not executable (", strerror(errno),
                              "); it is installed next to berth-shim: reinstall berth");
  }
  for (const char* name : kPinNames) {
    if (isNsfsMount(fs::join(spec.ns_dir, name))) {
      return alreadyExists("namespace dir \"", spec.ns_dir, "\" already pins a ", name,
                           " namespace; remove the sandbox first");
    }
  }

  int flags = 0;
  if (!spec.host_network) flags |= CLONE_NEWNET;
  if (!spec.host_ipc) flags |= CLONE_NEWIPC;
  if (!spec.host_uts) flags |= CLONE_NEWUTS;

  int report[2], go[2];
  if (::pipe2(report, O_CLOEXEC) != 0) return lastErrnoError("pipe");
  UniqueFd report_r(report[0]), report_w(report[1]);
  if (::pipe2(go, O_CLOEXEC) != 0) return lastErrnoError("pipe");
  UniqueFd go_r(go[0]), go_w(go[1]);

  pid_t child = ::fork();
  if (child < 0) return lastErrnoError("fork namespace holder");
  if (child == 0) {
    resetSignalsForChild();
    report_r.reset();
    go_w.reset();
    int rfd = report_w.get();
    if (flags != 0 && ::unshare(flags) != 0) childFail(rfd, "unshare pod namespaces");
    setupInChild(spec, rfd);
    pid_t pause = 0;
    if (spec.share_pid) {
      if (::unshare(CLONE_NEWPID) != 0) childFail(rfd, "unshare PID namespace");
      // The pause holds the write end of `exec_sync` (close-on-exec) until it has
      // exec'd berth-pause: EOF here means it runs; a byte means exec failed. So
      // containers never join a PID namespace whose PID 1 is not the pause.
      int exec_sync[2];
      if (::pipe2(exec_sync, O_CLOEXEC) != 0) childFail(rfd, "pipe");
      pause = ::fork();
      if (pause < 0) childFail(rfd, "fork pause process");
      if (pause == 0) {
        ::setsid();
        int devnull = ::open("/dev/null", O_RDWR);
        if (devnull >= 0) {
          ::dup2(devnull, 0);
          ::dup2(devnull, 1);
          ::dup2(devnull, 2);
        }
        // Everything else the shim had open closes at exec, exec_sync[1] included.
        ::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
        char* const argv[] = {const_cast<char*>("berth-pause"), nullptr};
        char* const envp[] = {nullptr};
        ::execve(pause_binary.c_str(), argv, envp);
        int err = errno;
        (void)!::write(exec_sync[1], &err, sizeof(err));
        _exit(127);
      }
      ::close(exec_sync[1]);
      int exec_err = 0;
      ssize_t got;
      while ((got = ::read(exec_sync[0], &exec_err, sizeof(exec_err))) < 0 && errno == EINTR) {
      }
      if (got > 0) {
        ::waitpid(pause, nullptr, 0);
        errno = exec_err;
        childFail(rfd, ("exec the pause process \"" + pause_binary + "\"").c_str());
      }
    }
    char buf[64];
    int n = snprintf(buf, sizeof(buf), "OK %d\n", static_cast<int>(pause));
    (void)!::write(rfd, buf, static_cast<size_t>(n));
    char c;
    while (::read(go_r.get(), &c, 1) < 0 && errno == EINTR) {
    }
    _exit(0);
  }
  report_w.reset();
  go_r.reset();
  // Always release and reap the holder, whatever happens below.
  ScopeGuard reap([&] {
    go_w.reset();
    int ws;
    while (::waitpid(child, &ws, 0) < 0 && errno == EINTR) {
    }
  });

  std::string msg;
  char buf[512];
  for (;;) {
    ssize_t n = ::read(report_r.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    msg.append(buf, static_cast<size_t>(n));
    if (msg.find('\n') != std::string::npos) break;
  }
  if (msg.rfind("OK ", 0) != 0) {
    if (msg.rfind("E ", 0) == 0) {
      char* end = nullptr;
      int err = static_cast<int>(std::strtol(msg.c_str() + 2, &end, 10));
      std::string what = std::string(trim(end != nullptr ? end : ""));
      return errnoError(err, strCat("create pod namespaces: ", what));
    }
    return internalError("create pod namespaces: the namespace holder died without a report");
  }
  pid_t pause = static_cast<pid_t>(std::atoi(msg.c_str() + 3));

  SandboxNamespaces out;
  out.ns_dir = spec.ns_dir;
  out.pause_pid = pause;
  Rollback rollback;
  rollback.add([&] { (void)removePodNamespaces(spec.ns_dir, pause); });
  RETURN_IF_ERROR_CTX(fs::mkdirAll(spec.ns_dir, 0755), "create pod namespaces");
  RETURN_IF_ERROR_CTX(makePrivateMount(spec.ns_dir), "create pod namespaces");
  std::string proc = strCat("/proc/", child, "/ns/");
  auto pin = [&](bool wanted, const char* name, std::string& field) -> Status {
    if (!wanted) return absl::OkStatus();
    field = fs::join(spec.ns_dir, name);
    return bindPin(proc + name, field);
  };
  RETURN_IF_ERROR_CTX(pin(!spec.host_network, "net", out.net), "create pod namespaces");
  RETURN_IF_ERROR_CTX(pin(!spec.host_ipc, "ipc", out.ipc), "create pod namespaces");
  RETURN_IF_ERROR_CTX(pin(!spec.host_uts, "uts", out.uts), "create pod namespaces");
  if (pause > 0) {
    out.pid = fs::join(spec.ns_dir, "pid");
    RETURN_IF_ERROR_CTX(bindPin(strCat("/proc/", pause, "/ns/pid"), out.pid),
                        "create pod namespaces: pin the pause process's PID namespace");
    out.pause_running = true;
  }
  rollback.commit();
  return out;
}

Status removePodNamespaces(const std::string& ns_dir, pid_t pause_pid, uint64_t pause_start_time) {
  if (pause_pid > 0 && proc::isAlive(pause_pid, pause_start_time)) {
    ::kill(pause_pid, SIGKILL);
  }
  if (ns_dir.empty()) return absl::OkStatus();
  Status first;
  for (const char* name : kPinNames) {
    std::string path = fs::join(ns_dir, name);
    Status st = unmountAll(path);
    if (st.ok() && ::unlink(path.c_str()) != 0 && errno != ENOENT) {
      st = lastErrnoError(strCat("remove \"", path, "\""));
    }
    if (first.ok() && !st.ok()) first = st;
  }
  if (!first.ok()) return withContext(first, "remove pod namespaces");
  RETURN_IF_ERROR_CTX(unmountAll(ns_dir), "remove pod namespaces");
  if (::rmdir(ns_dir.c_str()) != 0 && errno != ENOENT) {
    return lastErrnoError(strCat("remove pod namespaces: rmdir \"", ns_dir, "\""));
  }
  return absl::OkStatus();
}

std::string pauseBinaryNextTo(const std::string& program) {
  size_t slash = program.rfind('/');
  return (slash == std::string::npos ? std::string(".") : program.substr(0, slash)) +
         "/berth-pause";
}

bool isNsfsMount(const std::string& path) {
  struct statfs sfs {};
  if (::statfs(path.c_str(), &sfs) != 0) return false;
  return static_cast<unsigned long>(sfs.f_type) == NSFS_MAGIC;
}

}  // namespace berth::shim
