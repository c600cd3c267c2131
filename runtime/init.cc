#include "runtime/init.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include <spdlog/spdlog.h>

#include "common/json.h"
#include "common/strings.h"
#include "common/syscalls.h"
#include "runtime/linux/console.h"
#include "runtime/linux/hooks.h"
#include "runtime/linux/process_setup.h"
#include "runtime/linux/rootfs.h"
#include "runtime/oci/state.h"
#include "runtime/sync.h"

namespace berth::runtime {
namespace {

[[noreturn]] void fail(int sync_fd, const Status& status) {
  std::string msg(status.message());
  if (sync::send(sync_fd, sync::Msg::kError, 0, msg).ok()) _exit(1);
  // The parent is gone (after kCreated): the container's stderr is all we have.
  dprintf(2, "berth-runtime: %s\n", msg.c_str());
  _exit(127);
}

#define INIT_TRY(fd, expr)                    \
  do {                                        \
    ::berth::Status st_ = (expr);             \
    if (!st_.ok()) fail((fd), st_);           \
  } while (0)

std::string hookState(const InitContext& ctx, pid_t pid, oci::Status status) {
  oci::State st;
  st.ociVersion = ctx.spec->ociVersion;
  st.id = ctx.id;
  st.pid = pid;
  st.status = status;
  st.bundle = ctx.bundle;
  st.annotations = ctx.spec->annotations;
  return oci::hookStateJson(st).dump();
}

void joinSessionKeyring(const std::string& id) {
  // KEYCTL_JOIN_SESSION_KEYRING = 1; failures (ENOSYS, EDQUOT) are harmless.
  std::string name = "_ses." + id;
  ::syscall(SYS_keyctl, 1, name.c_str(), 0, 0, 0);
}

// Marks every fd from 3 + preserve_fds on close-on-exec, so only stdio and the
// preserved fds reach the container process.
void closeExtraFds(int preserve_fds) {
  ::syscall(SYS_close_range, 3 + preserve_fds, ~0U, CLOSE_RANGE_CLOEXEC);
}

// Gives the process the terminal it asks for (a PTY whose master goes out over
// `console_fd`), or closes `console_fd` when it asks for none. `missing` is the error
// when a terminal is wanted but no console socket was given.
Status attachTerminal(const oci::Process& process, int console_fd, const char* missing) {
  if (!process.terminal) {
    if (console_fd >= 0) ::close(console_fd);
    return absl::OkStatus();
  }
  if (console_fd < 0) return invalidArgument(missing);
  unsigned rows = process.consoleSize ? process.consoleSize->height : 0;
  unsigned cols = process.consoleSize ? process.consoleSize->width : 0;
  return console::attachNewPty(console_fd, rows, cols);
}

[[noreturn]] void runInit(InitContext& ctx, pid_t self) {
  const oci::Spec& spec = *ctx.spec;
  const oci::Process& process = *spec.process;
  int sfd = ctx.sync_fd;
  auto& logger = *ctx.logger;
  bool new_mnt = (ctx.plan->create_flags & CLONE_NEWNS) != 0;
  bool new_uts = (ctx.plan->create_flags & CLONE_NEWUTS) != 0;

  rootfs::Context rctx;
  rctx.sys = &RealSyscalls::get();
  rctx.rootfs = ctx.rootfs;
  rctx.bundle = ctx.bundle;
  rctx.in_user_ns = ctx.plan->create_user;
  rctx.new_cgroup_ns = (ctx.plan->create_flags & CLONE_NEWCGROUP) != 0;

  if (new_mnt) INIT_TRY(sfd, withContext(rootfs::setupRootfs(rctx, spec), "set up rootfs"));
  if (new_uts && !spec.hostname.empty() && ::sethostname(spec.hostname.data(), spec.hostname.size()) != 0) {
    fail(sfd, lastErrnoError(strCat("set hostname \"", spec.hostname, "\"")));
  }
  if (new_uts && !spec.domainname.empty() &&
      ::setdomainname(spec.domainname.data(), spec.domainname.size()) != 0) {
    fail(sfd, lastErrnoError(strCat("set domainname \"", spec.domainname, "\"")));
  }

  INIT_TRY(sfd, sync::send(sfd, sync::Msg::kCreateRuntime));
  auto done = sync::expect(sfd, sync::Msg::kHooksDone);
  if (!done.ok()) _exit(1);  // the parent reports its own failure

  if (spec.hooks && !spec.hooks->createContainer.empty()) {
    INIT_TRY(sfd, hooks::runHooks(spec.hooks->createContainer,
                                  hookState(ctx, self, oci::Status::kCreating), "createContainer"));
  }
  if (new_mnt) {
    if (ctx.no_pivot) {
      if (::chdir(ctx.rootfs.c_str()) != 0 || ::mount(ctx.rootfs.c_str(), "/", nullptr, MS_MOVE, nullptr) != 0 ||
          ::chroot(".") != 0 || ::chdir("/") != 0) {
        fail(sfd, lastErrnoError(strCat("move into rootfs \"", ctx.rootfs, "\" (--no-pivot)")));
      }
    } else {
      INIT_TRY(sfd, withContext(rootfs::pivotRoot(rctx), "pivot_root"));
    }
  } else {
    if (::chroot(ctx.rootfs.c_str()) != 0 || ::chdir("/") != 0) {
      fail(sfd, lastErrnoError(strCat("chroot into \"", ctx.rootfs, "\"")));
    }
  }
  if (spec.linux && !spec.linux->sysctl.empty()) {
    INIT_TRY(sfd, process::writeSysctls(spec.linux->sysctl));
  }
  if (new_mnt) INIT_TRY(sfd, withContext(rootfs::finishRootfs(rctx, spec), "finish rootfs"));

  INIT_TRY(sfd, attachTerminal(process, ctx.console_fd, "process.terminal is true but no console socket was given; "
                                "pass --console-socket or set terminal to false"));

  INIT_TRY(sfd, process::setRlimits(process.rlimits, logger));
  if (!ctx.no_new_keyring) joinSessionKeyring(ctx.id);

  auto path = process::lookPath(process.args[0], process.env);
  if (!path.ok()) fail(sfd, path.status());

  std::optional<oci::Seccomp> seccomp;
  if (spec.linux) seccomp = spec.linux->seccomp;
  auto late = process::finalize(process, seccomp, ctx.plan->create_user, logger);
  if (!late.ok()) fail(sfd, late.status());

  INIT_TRY(sfd, sync::send(sfd, sync::Msg::kCreated));
  ::close(sfd);

  // Block until `start` opens the FIFO for reading; then signal it with one byte.
  int fifo = ::openat(ctx.state_dir_fd, "exec.fifo", O_WRONLY | O_CLOEXEC);
  if (fifo < 0) {
    dprintf(2, "berth-runtime: open exec.fifo: %s\n", strerror(errno));
    _exit(127);
  }
  if (::write(fifo, "0", 1) != 1) _exit(127);
  ::close(fifo);
  ::close(ctx.state_dir_fd);

  if (spec.hooks && !spec.hooks->startContainer.empty()) {
    Status st = hooks::runHooks(spec.hooks->startContainer,
                                hookState(ctx, self, oci::Status::kCreated), "startContainer");
    if (!st.ok()) {
      dprintf(2, "berth-runtime: %s\n", std::string(st.message()).c_str());
      _exit(127);
    }
  }
  if (*late) {
    auto fd = process::loadSeccomp(**late);
    if (!fd.ok()) {
      dprintf(2, "berth-runtime: load seccomp profile: %s\n", std::string(fd.status().message()).c_str());
      _exit(127);
    }
    fd->release();  // the notify fd stays open for an agent (listenerPath is not supported yet)
  }
  closeExtraFds(ctx.preserve_fds);
  Status st = process::exec(*path, process);
  dprintf(2, "berth-runtime: %s\n", std::string(st.message()).c_str());
  _exit(127);
}

}  // namespace

void runCreateHelper(InitContext& ctx) {
  int sfd = ctx.sync_fd;
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  auto go = sync::expect(sfd, sync::Msg::kGo);
  if (!go.ok()) _exit(1);

  INIT_TRY(sfd, ns::joinAll(*ctx.plan));
  if (ctx.plan->create_user) {
    if (::unshare(CLONE_NEWUSER) != 0) fail(sfd, lastErrnoError("create user namespace"));
    INIT_TRY(sfd, sync::send(sfd, sync::Msg::kUsernsReady));
    auto mapped = sync::expect(sfd, sync::Msg::kUsernsMapped);
    if (!mapped.ok()) _exit(1);
    if (::setresgid(0, 0, 0) != 0 || ::setresuid(0, 0, 0) != 0) {
      fail(sfd, lastErrnoError("become root in the new user namespace (is 0 mapped?)"));
    }
  }
  if (ctx.plan->create_flags != 0 && ::unshare(ctx.plan->create_flags) != 0) {
    fail(sfd, lastErrnoError(strCat("create namespaces (flags 0x", hex(ctx.plan->create_flags), ")")));
  }
  pid_t child = ::fork();
  if (child < 0) fail(sfd, lastErrnoError("fork container init"));
  if (child == 0) {
    ::prctl(PR_SET_PDEATHSIG, 0);
    auto go2 = sync::expect(sfd, sync::Msg::kGo);
    if (!go2.ok()) _exit(1);
    runInit(ctx, static_cast<pid_t>(go2->value));
  }
  INIT_TRY(sfd, sync::send(sfd, sync::Msg::kChildPid, child));
  _exit(0);
}

void runExecHelper(ExecContext& ctx) {
  int sfd = ctx.sync_fd;
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  auto go = sync::expect(sfd, sync::Msg::kGo);
  if (!go.ok()) _exit(1);
  INIT_TRY(sfd, ns::joinAll(*ctx.plan));
  pid_t child = ::fork();
  if (child < 0) fail(sfd, lastErrnoError("fork exec process"));
  if (child == 0) {
    ::prctl(PR_SET_PDEATHSIG, 0);
    auto go2 = sync::expect(sfd, sync::Msg::kGo);
    if (!go2.ok()) _exit(1);
    const oci::Process& process = *ctx.process;
    auto& logger = *ctx.logger;
    INIT_TRY(sfd, attachTerminal(process, ctx.console_fd, "a terminal was requested (-t) but no console socket was given"));
    INIT_TRY(sfd, process::setRlimits(process.rlimits, logger));
    auto path = process::lookPath(process.args.empty() ? "" : process.args[0], process.env);
    if (!path.ok()) fail(sfd, path.status());
    auto late = process::finalize(process, ctx.seccomp, ctx.in_user_ns, logger);
    if (!late.ok()) fail(sfd, late.status());
    if (*late) {
      auto fd = process::loadSeccomp(**late);
      if (!fd.ok()) fail(sfd, withContext(fd.status(), "load seccomp profile"));
      fd->release();
    }
    closeExtraFds(ctx.preserve_fds);
    // The sync socket is close-on-exec: the parent reads EOF once execve succeeded.
    Status st = process::exec(*path, process);
    fail(sfd, st);
  }
  INIT_TRY(sfd, sync::send(sfd, sync::Msg::kChildPid, child));
  _exit(0);
}

}  // namespace berth::runtime
