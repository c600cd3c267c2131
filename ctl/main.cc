// berthctl: the crictl-like client of berthd's CRI socket (see ctl/README.md). This file
// holds the CLI11 app, the global flags and the dispatch; each command group lives in
// its own cmd_*.cc.
#include <cstdio>
#include <cstdlib>

#include "CLI/CLI.hpp"
#include "ctl/commands.h"

namespace berth::ctl {

constexpr char kVersion[] = "0.1.0";

namespace {

int run(int argc, char** argv) {
  CLI::App app{"berthctl: a crictl-like client for berthd's CRI v1 socket"};
  app.set_version_flag("--version", kVersion);
  app.require_subcommand(1);
  app.fallthrough();  // global flags may follow the command, as with crictl

  Context ctx;
  std::string runtime_endpoint, image_endpoint, config_file;
  int timeout = 0;
  app.add_option("-r,--runtime-endpoint", runtime_endpoint,
                 "CRI runtime socket (env CONTAINER_RUNTIME_ENDPOINT; default " +
                     std::string(kDefaultEndpoint) + ")")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.add_option("-i,--image-endpoint", image_endpoint,
                 "CRI image socket (env IMAGE_SERVICE_ENDPOINT; default: the runtime endpoint)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.add_option("-c,--config", config_file,
                 "crictl config file (env CRI_CONFIG_FILE; default /etc/crictl.yaml)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.add_option("-t,--timeout", timeout, "seconds per call (default 2; pulls use --pull-timeout)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.add_flag("-D,--debug", ctx.flags.debug, "print the resolved endpoints");

  addRuntimeCommands(app, ctx);
  addImageCommands(app, ctx);
  addPodCommands(app, ctx);
  addContainerCommands(app, ctx);
  addLogsCommand(app, ctx);

  CLI11_PARSE(app, argc, argv);
  if (app.count("--runtime-endpoint") > 0) ctx.flags.runtime_endpoint = runtime_endpoint;
  if (app.count("--image-endpoint") > 0) ctx.flags.image_endpoint = image_endpoint;
  if (app.count("--config") > 0) ctx.flags.config_file = config_file;
  if (app.count("--timeout") > 0) ctx.flags.timeout_seconds = timeout;

  if (!ctx.action) {
    std::fprintf(stderr, "berthctl: no command; see berthctl --help\n");
    return 1;
  }
  Status st = ctx.action();
  std::fflush(stdout);
  if (!st.ok()) {
    std::fprintf(stderr, "berthctl: %s\n", std::string(st.message()).c_str());
    return 1;
  }
  return ctx.exit_code;
}

}  // namespace
}  // namespace berth::ctl

int main(int argc, char** argv) { return berth::ctl::run(argc, argv); }
