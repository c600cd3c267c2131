// berth-runtime: an OCI runtime (runtime-spec 1.1) with runc's command line.
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "common/log.h"
#include "runtime/cli/cli.h"

namespace berth::cli {

StatusOr<runtime::Runtime> Context::openRuntime() const {
  runtime::RuntimeOptions o;
  o.root = global.root;
  o.cgroup_strict = global.cgroup_strict;
  o.logger = log::get("runtime");
  return runtime::Runtime::open(std::move(o));
}

}  // namespace berth::cli

int main(int argc, char** argv) {
  using namespace berth;
  CLI::App app{"berth-runtime: an OCI runtime for Linux (runc-compatible command line)",
               "berth-runtime"};
  app.require_subcommand(1);
  app.set_version_flag("-v,--version", "berth-runtime version 0.1.0\nspec: 1.1.0");
  cli::Context ctx;
  auto& g = ctx.global;
  app.add_option("--root", g.root, "root directory for storage of container state")
      ->capture_default_str();
  app.add_option("--log", g.log, "log file path (default: stderr)");
  app.add_option("--log-format", g.log_format, "log format: text or json")
      ->check(CLI::IsMember({"text", "json"}));
  app.add_flag("--debug", g.debug, "enable debug logging");
  app.add_flag("--systemd-cgroup", g.systemd_cgroup,
               "use the systemd cgroup driver (not supported yet)");
  app.add_flag("--cgroup-strict", g.cgroup_strict,
               "refuse limits whose cgroup controller the host lacks instead of skipping them");
  app.add_option("--rootless", g.rootless, "ignored; accepted for runc compatibility");
  app.add_option("--criu", g.criu, "ignored; checkpoint/restore is not supported");

  cli::addLifecycleCommands(app, ctx);
  cli::addExecCommands(app, ctx);
  cli::addInfoCommands(app, ctx);
  cli::addEventsCommand(app, ctx);

  // Logging must be configured before any command callback runs.
  app.parse_complete_callback([&] {
    log::Options lo;
    lo.file = g.log;
    lo.format = g.log_format == "json" ? log::Format::kJson : log::Format::kText;
    lo.level = g.debug ? spdlog::level::debug : spdlog::level::info;
    if (Status st = log::init(lo); !st.ok()) {
      std::cerr << "berth-runtime: " << st.message() << "\n";
      std::exit(1);
    }
    if (g.systemd_cgroup) {
      ctx.outcome.status = unimplemented(
          "--systemd-cgroup: the systemd cgroup driver is not implemented yet; use the "
          "default cgroupfs driver");
      std::cerr << "berth-runtime: " << ctx.outcome.status.message() << "\n";
      std::exit(1);
    }
  });

  // Name an unknown command instead of CLI11's generic "A subcommand is required".
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("-", 0) == 0) {
      bool takes_value = arg == "--root" || arg == "--log" || arg == "--log-format" ||
                         arg == "--rootless" || arg == "--criu";
      if (takes_value) ++i;
      continue;
    }
    bool known = false;
    for (const auto* sub : app.get_subcommands({})) known = known || sub->check_name(arg);
    if (!known) {
      std::cerr << "berth-runtime: unknown command \"" << arg
                << "\"; run berth-runtime --help for the list of commands\n";
      return 1;
    }
    break;
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (!ctx.outcome.status.ok()) {
    std::string msg(ctx.outcome.status.message());
    if (!g.log.empty()) log::get("runtime")->error("{}", msg);
    std::cerr << "berth-runtime: " << msg << std::endl;
    return ctx.outcome.exit_code != 0 ? ctx.outcome.exit_code : 1;
  }
  return ctx.outcome.exit_code;
}
