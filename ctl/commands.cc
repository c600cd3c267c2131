#include "ctl/commands.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace berth::ctl {

StatusOr<CriClient*> Context::client() {
  if (client_) return client_.get();
  ASSIGN_OR_RETURN(Endpoints endpoints, resolveEndpoints(flags, [](const char* name) {
                     return static_cast<const char*>(std::getenv(name));
                   }));
  if (endpoints.debug) {
    std::fprintf(stderr, "berthctl: runtime endpoint %s, image endpoint %s, timeout %llds%s%s\n",
                 endpoints.runtime_endpoint.c_str(), endpoints.image_endpoint.c_str(),
                 static_cast<long long>(endpoints.timeout.count()),
                 endpoints.config_file.empty() ? "" : ", config ",
                 endpoints.config_file.c_str());
  }
  ASSIGN_OR_RETURN(client_, CriClient::create(endpoints));
  return client_.get();
}

std::chrono::seconds Context::workTimeout(std::chrono::seconds extra) {
  if (flags.timeout_seconds) return std::chrono::seconds(*flags.timeout_seconds) + extra;
  return std::chrono::seconds(240) + extra;
}

void setAction(CLI::App* cmd, Context& ctx, Status (*fn)(Context&)) {
  cmd->callback([&ctx, fn] { ctx.action = [&ctx, fn] { return fn(ctx); }; });
}

void printDocument(const OrderedJson& value, OutputFormat format) {
  std::printf("%s\n", render(value, format).c_str());
}

void addOutputFlag(CLI::App* cmd, std::string& value, const std::string& default_value) {
  value = default_value;
  cmd->add_option("-o,--output", value, "output format: json, yaml or table")
      ->check(CLI::IsMember({"json", "yaml", "table"}))
      ->capture_default_str();
}

int64_t nowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

StatusOr<std::map<std::string, std::string>> parseLabels(const std::vector<std::string>& labels) {
  std::map<std::string, std::string> out;
  for (const std::string& l : labels) {
    size_t eq = l.find('=');
    if (eq == std::string::npos || eq == 0) {
      return invalidArgument("--label \"", l, "\": want key=value");
    }
    out[l.substr(0, eq)] = l.substr(eq + 1);
  }
  return out;
}

}  // namespace berth::ctl
