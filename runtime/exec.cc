// exec: an extra process inside a running container (runc exec).
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include <spdlog/spdlog.h>

#include "common/fs.h"
#include "common/proc.h"
#include "common/strings.h"
#include "runtime/cgroups/manager.h"
#include "runtime/init.h"
#include "runtime/linux/capabilities.h"
#include "runtime/linux/console.h"
#include "runtime/linux/namespaces.h"
#include "runtime/linux/process_setup.h"
#include "runtime/linux/seccomp.h"
#include "runtime/runtime.h"
#include "runtime/spawn.h"
#include "runtime/sync.h"

namespace berth::runtime {

StatusOr<int> Runtime::exec(const ExecOptions& opts) {
  const std::string& id = opts.id;
  auto ctx = [&](const Status& st) { return withContext(st, strCat("exec in container \"", id, "\"")); };
  auto record = store_.load(id);
  if (!record.ok()) return ctx(record.status());
  oci::Status status = liveStatus(*record);
  if (status == oci::Status::kStopped) return ctx(failedPrecondition("container is stopped"));
  if (status == oci::Status::kPaused && !opts.ignore_paused) {
    return ctx(failedPrecondition("container is paused; resume it first or use --ignore-paused"));
  }
  if (Status st = oci::validateProcess(opts.process); !st.ok()) return ctx(st);
  if (opts.process.capabilities) {
    if (Status st = caps::validate(*opts.process.capabilities); !st.ok()) return ctx(st);
  }
  auto config = store_.loadConfig(id);
  if (!config.ok()) return ctx(config.status());
  auto spec = oci::parseSpec(config->dump());
  if (!spec.ok()) return ctx(spec.status());

  std::vector<std::string> types;
  bool in_user_ns = false;
  for (const auto& n : spec->linux->namespaces) {
    types.push_back(n.type);
    if (n.type == "user") in_user_ns = true;
  }
  auto plan = ns::planJoinProcess(record->state.pid, types);
  if (!plan.ok()) return ctx(plan.status());

  UniqueFd console_child, console_local;
  if (opts.process.terminal) {
    auto ends = console::openConsoleEnds(opts.console_socket, !opts.detach,
                                         "-t with --detach needs --console-socket");
    if (!ends.ok()) return ctx(ends.status());
    console_child = std::move(ends->child);
    console_local = std::move(ends->local);
  }

  int sp[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) != 0) {
    return ctx(lastErrnoError("sync socketpair"));
  }
  UniqueFd parent_end(sp[0]), child_end(sp[1]);
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  auto cgroup = cgroupOf(*record);
  auto forked = forkInCgroup(*cgroup, *logger_);
  if (!forked.ok()) return ctx(forked.status());
  pid_t helper = *forked;
  if (helper == 0) {
    parent_end.reset();
    ExecContext ec;
    ec.process = &opts.process;
    ec.seccomp = spec->linux->seccomp;
    ec.id = id;
    ec.sync_fd = child_end.get();
    ec.console_fd = console_child.get();
    ec.preserve_fds = opts.preserve_fds;
    ec.in_user_ns = in_user_ns;
    ec.plan = &*plan;
    ec.logger = logger_.get();
    runExecHelper(ec);
  }
  child_end.reset();
  console_child.reset();
  auto reap = [](pid_t pid) {
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
  };
  pid_t pid = 0;
  auto fail = [&](const Status& st) {
    ::kill(helper, SIGKILL);
    reap(helper);
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      reap(pid);
    }
    return ctx(st);
  };

  if (Status st = sync::send(parent_end.get(), sync::Msg::kGo); !st.ok()) return fail(st);
  auto p = sync::expect(parent_end.get(), sync::Msg::kChildPid);
  if (!p.ok()) return fail(p.status());
  pid = static_cast<pid_t>(p->value);
  reap(helper);
  if (opts.process.oomScoreAdj) {
    if (Status st = process::setOomScoreAdj(pid, *opts.process.oomScoreAdj, *logger_); !st.ok()) {
      return fail(st);
    }
  }
  if (Status st = sync::send(parent_end.get(), sync::Msg::kGo, pid); !st.ok()) return fail(st);
  // EOF means execve succeeded (the socket is close-on-exec); a packet is an error.
  auto result = sync::receive(parent_end.get());
  if (result.ok()) {
    Status st = result->type == sync::Msg::kError ? internalError(result->text)
                                                   : internalError("unexpected sync message");
    ::kill(pid, SIGKILL);
    reap(pid);
    return ctx(st);
  }
  int master = -1;
  if (console_local) {
    auto m = console::receiveFd(console_local.get());
    if (m.ok()) master = m->release();
  }
  if (!opts.pid_file.empty()) {
    if (Status st = fs::writeFileAtomic(opts.pid_file, std::to_string(pid), 0644,
                                               fs::Durability::kVolatile); !st.ok()) {
      return ctx(withContext(st, "write --pid-file"));
    }
  }
  if (opts.detach) return static_cast<int>(pid);
  int code = waitForeground(pid, master);
  if (master >= 0) ::close(master);
  return code;
}

}  // namespace berth::runtime
