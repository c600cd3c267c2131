// list, features, spec.
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "common/fs.h"
#include "common/json.h"
#include "common/strings.h"
#include "runtime/cli/cli.h"
#include "runtime/features.h"
#include "runtime/oci/default_spec.h"

namespace berth::cli {

void addInfoCommands(CLI::App& app, Context& ctx) {
  {
    auto format = std::make_shared<std::string>("table");
    auto quiet = std::make_shared<bool>(false);
    auto* cmd = app.add_subcommand("list", "list containers");
    cmd->add_option("-f,--format", *format, "table or json")->check(CLI::IsMember({"table", "json"}));
    cmd->add_flag("-q,--quiet", *quiet, "print only the container ids");
    cmd->callback([&ctx, format, quiet] {
      auto rt = ctx.openRuntime();
      if (!rt.ok()) {
        ctx.outcome.status = rt.status();
        return;
      }
      auto states = rt->list();
      if (!states.ok()) {
        ctx.outcome.status = states.status();
        return;
      }
      if (*quiet) {
        for (const auto& s : *states) std::cout << s.id << "\n";
        return;
      }
      if (*format == "json") {
        auto arr = nlohmann::ordered_json::array();
        for (const auto& s : *states) arr.push_back(oci::toJson(s));
        std::cout << arr.dump() << std::endl;
        return;
      }
      std::vector<std::vector<std::string>> rows = {{"ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"}};
      for (const auto& s : *states) {
        rows.push_back({s.id, std::to_string(s.pid), oci::statusName(s.status), s.bundle, s.created,
                        s.owner.empty() ? "root" : s.owner});
      }
      std::vector<size_t> width(6, 0);
      for (const auto& r : rows) {
        for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
      }
      for (const auto& r : rows) {
        std::string line;
        for (size_t i = 0; i < r.size(); ++i) {
          line += r[i];
          if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 3, ' ');
        }
        std::cout << line << "\n";
      }
    });
  }
  {
    auto* cmd = app.add_subcommand("features", "print the features this runtime supports (JSON)");
    cmd->callback([] { std::cout << runtime::featuresJson().dump(4) << std::endl; });
  }
  {
    auto bundle = std::make_shared<std::string>(".");
    auto rootless = std::make_shared<bool>(false);
    auto* cmd = app.add_subcommand("spec", "write a default config.json into the bundle directory");
    cmd->add_option("-b,--bundle", *bundle, "bundle directory");
    cmd->add_flag("--rootless", *rootless, "a config for running without root");
    cmd->callback([&ctx, bundle, rootless] {
      std::string path = fs::join(*bundle, "config.json");
      if (fs::exists(path)) {
        ctx.outcome.status = alreadyExists("spec: \"", path, "\" exists; remove it first");
        return;
      }
      ctx.outcome.status = fs::writeFileAtomic(path, oci::defaultSpec(*rootless).dump(4) + "\n");
    });
  }
}

}  // namespace berth::cli
