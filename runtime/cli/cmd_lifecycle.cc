// create, start, run, kill, delete, state, pause, resume.
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include "common/strings.h"
#include "runtime/cli/cli.h"
#include "runtime/oci/state.h"

namespace berth::cli {
namespace {

struct SignalName {
  const char* name;
  int number;
};
constexpr SignalName kSignals[] = {
    {"HUP", SIGHUP},   {"INT", SIGINT},     {"QUIT", SIGQUIT},   {"ILL", SIGILL},
    {"TRAP", SIGTRAP}, {"ABRT", SIGABRT},   {"IOT", SIGIOT},     {"BUS", SIGBUS},
    {"FPE", SIGFPE},   {"KILL", SIGKILL},   {"USR1", SIGUSR1},   {"SEGV", SIGSEGV},
    {"USR2", SIGUSR2}, {"PIPE", SIGPIPE},   {"ALRM", SIGALRM},   {"TERM", SIGTERM},
    {"STKFLT", SIGSTKFLT}, {"CHLD", SIGCHLD}, {"CONT", SIGCONT}, {"STOP", SIGSTOP},
    {"TSTP", SIGTSTP}, {"TTIN", SIGTTIN},   {"TTOU", SIGTTOU},   {"URG", SIGURG},
    {"XCPU", SIGXCPU}, {"XFSZ", SIGXFSZ},   {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF},
    {"WINCH", SIGWINCH}, {"IO", SIGIO},     {"POLL", SIGPOLL},   {"PWR", SIGPWR},
    {"SYS", SIGSYS},
};

struct CreateFlags {
  std::string id;
  std::string bundle = ".";
  std::string console_socket;
  std::string pid_file;
  int preserve_fds = 0;
  bool no_pivot = false;
  bool no_new_keyring = false;
};

void addCreateFlags(CLI::App* cmd, CreateFlags& f) {
  cmd->add_option("id", f.id, "container id")->required();
  cmd->add_option("-b,--bundle", f.bundle, "path to the bundle directory");
  cmd->add_option("--console-socket", f.console_socket,
                  "unix socket that receives the PTY master of the container's terminal");
  cmd->add_option("--pid-file", f.pid_file, "file to write the init process pid to");
  cmd->add_option("--preserve-fds", f.preserve_fds,
                  "number of extra fds (from 3) to pass to the container");
  cmd->add_flag("--no-pivot", f.no_pivot, "chroot instead of pivot_root (ramfs roots)");
  cmd->add_flag("--no-new-keyring", f.no_new_keyring, "keep the caller's session keyring");
}

runtime::CreateOptions toCreateOptions(const CreateFlags& f) {
  runtime::CreateOptions o;
  o.id = f.id;
  o.bundle = f.bundle;
  o.console_socket = f.console_socket;
  o.pid_file = f.pid_file;
  o.preserve_fds = f.preserve_fds;
  o.no_pivot = f.no_pivot;
  o.no_new_keyring = f.no_new_keyring;
  return o;
}

}  // namespace

StatusOr<int> parseSignal(const std::string& text) {
  if (text.empty()) return invalidArgument("empty signal");
  if (text.find_first_not_of("0123456789") == std::string::npos) {
    int n = std::atoi(text.c_str());
    if (n <= 0 || n > SIGRTMAX) return invalidArgument("invalid signal number ", text);
    return n;
  }
  std::string name = text;
  for (auto& c : name) c = static_cast<char>(toupper(static_cast<unsigned char>(c)));
  if (name.rfind("SIG", 0) == 0) name = name.substr(3);
  for (const auto& s : kSignals) {
    if (name == s.name) return s.number;
  }
  return invalidArgument("unknown signal \"", text, "\"; use a name like TERM or KILL, or a number");
}

void addLifecycleCommands(CLI::App& app, Context& ctx) {
  // create
  {
    auto flags = std::make_shared<CreateFlags>();
    auto* cmd = app.add_subcommand("create", "create a container (its process waits for start)");
    addCreateFlags(cmd, *flags);
    cmd->callback([&ctx, flags] {
      auto rt = ctx.openRuntime();
      if (!rt.ok()) {
        ctx.outcome.status = rt.status();
        return;
      }
      auto pid = rt->create(toCreateOptions(*flags));
      if (!pid.ok()) ctx.outcome.status = pid.status();
    });
  }
  // start
  {
    auto id = std::make_shared<std::string>();
    auto* cmd = app.add_subcommand("start", "start the user process of a created container");
    cmd->add_option("id", *id, "container id")->required();
    cmd->callback([&ctx, id] {
      auto rt = ctx.openRuntime();
      ctx.outcome.status = rt.ok() ? rt->start(*id) : rt.status();
    });
  }
  // run
  {
    auto flags = std::make_shared<CreateFlags>();
    auto detach = std::make_shared<bool>(false);
    auto keep = std::make_shared<bool>(false);
    auto no_subreaper = std::make_shared<bool>(false);
    auto* cmd = app.add_subcommand("run", "create and start a container, and wait for it");
    addCreateFlags(cmd, *flags);
    cmd->add_flag("-d,--detach", *detach, "return after start instead of waiting");
    cmd->add_flag("--keep", *keep, "do not delete the container after it exits");
    cmd->add_flag("--no-subreaper", *no_subreaper, "accepted for runc compatibility");
    cmd->callback([&ctx, flags, detach, keep] {
      auto rt = ctx.openRuntime();
      if (!rt.ok()) {
        ctx.outcome.status = rt.status();
        return;
      }
      auto opts = toCreateOptions(*flags);
      opts.want_local_console = !*detach && flags->console_socket.empty();
      int master = -1;
      auto pid = rt->create(opts, &master);
      if (!pid.ok()) {
        ctx.outcome.status = pid.status();
        return;
      }
      if (Status st = rt->start(flags->id); !st.ok()) {
        ctx.outcome.status = st;
        (void)rt->remove(flags->id, true);
        return;
      }
      if (*detach) return;
      ctx.outcome.exit_code = rt->waitForeground(*pid, master);
      if (master >= 0) ::close(master);
      if (!*keep) {
        Status st = rt->remove(flags->id, true);
        if (!st.ok()) ctx.outcome.status = st;
      }
    });
  }
  // kill
  {
    auto id = std::make_shared<std::string>();
    auto sig = std::make_shared<std::string>("SIGTERM");
    auto all = std::make_shared<bool>(false);
    auto* cmd = app.add_subcommand("kill", "send a signal to the container's init process");
    cmd->add_option("id", *id, "container id")->required();
    cmd->add_option("signal", *sig, "signal name or number (default SIGTERM)");
    cmd->add_flag("-a,--all", *all, "send the signal to every process in the container");
    cmd->callback([&ctx, id, sig, all] {
      auto signo = parseSignal(*sig);
      if (!signo.ok()) {
        ctx.outcome.status = signo.status();
        return;
      }
      auto rt = ctx.openRuntime();
      ctx.outcome.status = rt.ok() ? rt->kill(*id, *signo, *all) : rt.status();
    });
  }
  // delete
  {
    auto ids = std::make_shared<std::vector<std::string>>();
    auto force = std::make_shared<bool>(false);
    auto* cmd = app.add_subcommand("delete", "delete a container's resources");
    cmd->add_option("id", *ids, "container id(s)")->required();
    cmd->add_flag("-f,--force", *force, "kill the container first if it is still running");
    cmd->callback([&ctx, ids, force] {
      auto rt = ctx.openRuntime();
      if (!rt.ok()) {
        ctx.outcome.status = rt.status();
        return;
      }
      for (const auto& id : *ids) {
        Status st = rt->remove(id, *force);
        if (!st.ok() && ctx.outcome.status.ok()) ctx.outcome.status = st;
      }
    });
  }
  // state
  {
    auto id = std::make_shared<std::string>();
    auto* cmd = app.add_subcommand("state", "print the state of a container as JSON");
    cmd->add_option("id", *id, "container id")->required();
    cmd->callback([&ctx, id] {
      auto rt = ctx.openRuntime();
      if (!rt.ok()) {
        ctx.outcome.status = rt.status();
        return;
      }
      auto st = rt->state(*id);
      if (!st.ok()) {
        ctx.outcome.status = st.status();
        return;
      }
      std::cout << oci::toJson(*st).dump(2) << std::endl;
    });
  }
  // pause / resume
  for (const char* name : {"pause", "resume"}) {
    auto id = std::make_shared<std::string>();
    bool is_pause = std::string(name) == "pause";
    auto* cmd = app.add_subcommand(name, is_pause ? "freeze every process of a container"
                                                  : "thaw a paused container");
    cmd->add_option("id", *id, "container id")->required();
    cmd->callback([&ctx, id, is_pause] {
      auto rt = ctx.openRuntime();
      if (!rt.ok()) {
        ctx.outcome.status = rt.status();
        return;
      }
      ctx.outcome.status = is_pause ? rt->pause(*id) : rt->resume(*id);
    });
  }
}

}  // namespace berth::cli
