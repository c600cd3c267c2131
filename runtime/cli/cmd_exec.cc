// exec, ps.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <set>
#include <sstream>

#include "common/fs.h"
#include "common/json.h"
#include "common/strings.h"
#include "runtime/cli/cli.h"

namespace berth::cli {
namespace {

struct ExecFlags {
  std::string id;
  std::vector<std::string> args;
  std::string process_file;
  std::string console_socket;
  std::string pid_file;
  std::string cwd;
  std::vector<std::string> env;
  std::string user;
  std::vector<uint32_t> additional_gids;
  std::vector<std::string> caps;
  bool tty = false;
  bool detach = false;
  bool no_new_privs = false;
  bool ignore_paused = false;
  int preserve_fds = 0;
  std::string process_label, apparmor, cgroup;
};

// Builds the process: from --process, or from the container's own process with the
// command-line overrides (what runc exec does).
StatusOr<oci::Process> buildProcess(const ExecFlags& f, runtime::Runtime& rt) {
  if (!f.process_file.empty()) {
    ASSIGN_OR_RETURN(std::string text, fs::readFile(f.process_file));
    auto p = oci::parseProcess(text);
    if (!p.ok()) return withContext(p.status(), strCat("--process \"", f.process_file, "\""));
    if (f.tty) p->terminal = true;
    return p;
  }
  if (f.args.empty()) {
    return invalidArgument("exec: give the command to run after the container id, or --process FILE");
  }
  ASSIGN_OR_RETURN(auto config, rt.store().loadConfig(f.id));
  ASSIGN_OR_RETURN(auto spec, oci::parseSpec(config.dump()));
  oci::Process p = spec.process.value_or(oci::Process{});
  p.args = f.args;
  p.terminal = f.tty;
  p.consoleSize.reset();
  for (const auto& e : f.env) p.env.push_back(e);
  if (!f.cwd.empty()) p.cwd = f.cwd;
  if (!f.user.empty()) {
    auto parts = split(f.user, ':');
    char* end = nullptr;
    p.user.uid = static_cast<uint32_t>(std::strtoul(parts[0].c_str(), &end, 10));
    if (end == nullptr || *end != '\0') {
      return invalidArgument("--user \"", f.user, "\": use numeric UID[:GID]");
    }
    if (parts.size() > 1) p.user.gid = static_cast<uint32_t>(std::strtoul(parts[1].c_str(), nullptr, 10));
  }
  for (uint32_t g : f.additional_gids) p.user.additionalGids.push_back(g);
  if (f.no_new_privs) p.noNewPrivileges = true;
  if (!f.caps.empty()) {
    if (!p.capabilities) p.capabilities = oci::Capabilities{};
    auto add = [](std::optional<std::vector<std::string>>& set, const std::string& c) {
      if (!set) set.emplace();
      set->push_back(c);
    };
    for (const auto& c : f.caps) {
      add(p.capabilities->bounding, c);
      add(p.capabilities->effective, c);
      add(p.capabilities->permitted, c);
    }
  }
  return p;
}

}  // namespace

void addExecCommands(CLI::App& app, Context& ctx) {
  {
    auto f = std::make_shared<ExecFlags>();
    auto* cmd = app.add_subcommand("exec", "run a new process inside a running container");
    cmd->add_option("id", f->id, "container id")->required();
    cmd->add_option("command", f->args, "command and arguments");
    cmd->add_option("-p,--process", f->process_file, "process.json describing the process");
    cmd->add_option("--console-socket", f->console_socket, "unix socket that receives the PTY master");
    cmd->add_option("--pid-file", f->pid_file, "file to write the process pid to");
    cmd->add_option("--cwd", f->cwd, "working directory in the container");
    cmd->add_option("-e,--env", f->env, "environment variable KEY=value (repeatable)");
    cmd->add_option("-u,--user", f->user, "UID[:GID]");
    cmd->add_option("-g,--additional-gids", f->additional_gids, "additional group id (repeatable)");
    cmd->add_option("-c,--cap", f->caps, "add a capability (repeatable)");
    cmd->add_flag("-t,--tty", f->tty, "allocate a terminal");
    cmd->add_flag("-d,--detach", f->detach, "do not wait for the process");
    cmd->add_flag("--no-new-privs", f->no_new_privs, "set no_new_privs");
    cmd->add_flag("--ignore-paused", f->ignore_paused, "allow exec in a paused container");
    cmd->add_option("--preserve-fds", f->preserve_fds, "extra fds (from 3) to pass");
    cmd->add_option("--process-label", f->process_label, "ignored (no SELinux support)");
    cmd->add_option("--apparmor", f->apparmor, "ignored (no AppArmor support)");
    cmd->add_option("--cgroup", f->cgroup, "not supported: sub-cgroups for exec");
    cmd->positionals_at_end(true);
    cmd->prefix_command(false);
    cmd->allow_extras(false);
    cmd->callback([&ctx, f] {
      auto rt = ctx.openRuntime();
      if (!rt.ok()) {
        ctx.outcome.status = rt.status();
        return;
      }
      auto process = buildProcess(*f, *rt);
      if (!process.ok()) {
        ctx.outcome.status = withContext(process.status(), strCat("exec in container \"", f->id, "\""));
        return;
      }
      runtime::ExecOptions o;
      o.id = f->id;
      o.process = std::move(*process);
      o.console_socket = f->console_socket;
      o.pid_file = f->pid_file;
      o.detach = f->detach;
      o.preserve_fds = f->preserve_fds;
      o.ignore_paused = f->ignore_paused;
      auto code = rt->exec(o);
      if (!code.ok()) {
        ctx.outcome.status = code.status();
        return;
      }
      if (!f->detach) ctx.outcome.exit_code = *code;
    });
  }
  {
    auto id = std::make_shared<std::string>();
    auto format = std::make_shared<std::string>("table");
    auto ps_args = std::make_shared<std::vector<std::string>>();
    auto* cmd = app.add_subcommand("ps", "list the processes running in a container");
    cmd->add_option("id", *id, "container id")->required();
    cmd->add_option("ps-options", *ps_args, "options for ps(1) (default -ef)");
    cmd->add_option("-f,--format", *format, "table or json")->check(CLI::IsMember({"table", "json"}));
    cmd->callback([&ctx, id, format, ps_args] {
      auto rt = ctx.openRuntime();
      if (!rt.ok()) {
        ctx.outcome.status = rt.status();
        return;
      }
      auto pids = rt->pids(*id);
      if (!pids.ok()) {
        ctx.outcome.status = pids.status();
        return;
      }
      if (*format == "json") {
        std::cout << nlohmann::json(*pids).dump() << std::endl;
        return;
      }
      std::set<pid_t> wanted(pids->begin(), pids->end());
      std::string cmdline = "ps";
      if (ps_args->empty()) ps_args->push_back("-ef");
      for (const auto& a : *ps_args) cmdline += " '" + a + "'";
      FILE* p = ::popen(cmdline.c_str(), "r");
      if (p == nullptr) {
        ctx.outcome.status = lastErrnoError("run ps");
        return;
      }
      char line[4096];
      int pid_col = -1;
      bool header = true;
      while (fgets(line, sizeof(line), p) != nullptr) {
        std::vector<std::string> cols = split(trim(line), ' ', true);
        if (header) {
          for (size_t i = 0; i < cols.size(); ++i) {
            if (cols[i] == "PID") pid_col = static_cast<int>(i);
          }
          std::cout << line;
          header = false;
          continue;
        }
        if (pid_col >= 0 && static_cast<size_t>(pid_col) < cols.size() &&
            wanted.count(std::atoi(cols[pid_col].c_str()))) {
          std::cout << line;
        }
      }
      int rc = ::pclose(p);
      if (pid_col < 0) {
        ctx.outcome.status = invalidArgument("ps output has no PID column; use -f json or ps options that print PID");
      } else if (rc != 0 && WIFEXITED(rc) && WEXITSTATUS(rc) == 127) {
        ctx.outcome.status = notFound("ps(1) is not installed; use --format json");
      }
    });
  }
}

}  // namespace berth::cli
