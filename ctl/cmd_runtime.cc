// version, info, runtime-config: the runtime-wide RuntimeService calls.
#include <cstdio>

#include "ctl/commands.h"

namespace berth::ctl {
namespace {

namespace v1 = runtime::v1;

Status version(Context& ctx, const std::string& output) {
  ASSIGN_OR_RETURN(CriClient * client, ctx.client());
  v1::VersionRequest req;
  req.set_version("v1");
  v1::VersionResponse resp;
  auto rpc = client->context();
  grpc::Status st = client->runtime().Version(rpc.get(), req, &resp);
  if (!st.ok()) return client->runtimeError(st, "Version");
  ASSIGN_OR_RETURN(OutputFormat format, parseOutputFormat(output));
  if (format == OutputFormat::kTable) {
    std::printf("Version:  %s\nRuntimeName:  %s\nRuntimeVersion:  %s\nRuntimeApiVersion:  %s\n",
                resp.version().c_str(), resp.runtime_name().c_str(),
                resp.runtime_version().c_str(), resp.runtime_api_version().c_str());
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(OrderedJson json, messageToJson(resp));
  std::printf("%s\n", render(json, format).c_str());
  return absl::OkStatus();
}

// crictl's `info`: {"status": RuntimeStatus, "runtimeHandlers": [...], "features": {...},
// <verbose info keys>...}.
Status info(Context& ctx, const std::string& output) {
  ASSIGN_OR_RETURN(CriClient * client, ctx.client());
  v1::StatusRequest req;
  req.set_verbose(true);
  v1::StatusResponse resp;
  auto rpc = client->context();
  grpc::Status st = client->runtime().Status(rpc.get(), req, &resp);
  if (!st.ok()) return client->runtimeError(st, "Status");
  ASSIGN_OR_RETURN(OutputFormat format, parseOutputFormat(output, OutputFormat::kJson));
  ASSIGN_OR_RETURN(OrderedJson with_info, statusWithInfo(resp.status(), resp.info()));
  OrderedJson out = OrderedJson::object();
  out["status"] = with_info["status"];
  if (resp.runtime_handlers_size() > 0) {
    OrderedJson handlers = OrderedJson::array();
    for (const auto& h : resp.runtime_handlers()) {
      ASSIGN_OR_RETURN(OrderedJson j, messageToJson(h));
      handlers.push_back(std::move(j));
    }
    out["runtimeHandlers"] = std::move(handlers);
  }
  if (resp.has_features()) {
    ASSIGN_OR_RETURN(out["features"], messageToJson(resp.features()));
  }
  if (with_info.contains("info")) {
    for (auto& [k, v] : with_info["info"].items()) out[k] = v;
  }
  std::printf("%s\n", render(out, format).c_str());
  return absl::OkStatus();
}

Status runtimeConfig(Context& ctx, const std::string& output) {
  ASSIGN_OR_RETURN(CriClient * client, ctx.client());
  v1::RuntimeConfigResponse resp;
  auto rpc = client->context();
  grpc::Status st =
      client->runtime().RuntimeConfig(rpc.get(), v1::RuntimeConfigRequest(), &resp);
  if (!st.ok()) return client->runtimeError(st, "RuntimeConfig");
  ASSIGN_OR_RETURN(OutputFormat format, parseOutputFormat(output, OutputFormat::kJson));
  ASSIGN_OR_RETURN(OrderedJson json, messageToJson(resp));
  std::printf("%s\n", render(json, format).c_str());
  return absl::OkStatus();
}

}  // namespace

void addRuntimeCommands(CLI::App& app, Context& ctx) {
  static std::string version_output, info_output, config_output;
  auto* v = app.add_subcommand("version", "print the runtime's name and version");
  addOutputFlag(v, version_output, "table");
  v->callback([&ctx] { ctx.action = [&ctx] { return version(ctx, version_output); }; });

  auto* i = app.add_subcommand("info", "print the runtime's status (RuntimeReady, NetworkReady)");
  addOutputFlag(i, info_output, "json");
  i->callback([&ctx] { ctx.action = [&ctx] { return info(ctx, info_output); }; });

  auto* c = app.add_subcommand("runtime-config", "print the runtime's configuration "
                               "(cgroup driver)");
  addOutputFlag(c, config_output, "json");
  c->callback([&ctx] { ctx.action = [&ctx] { return runtimeConfig(ctx, config_output); }; });
}

}  // namespace berth::ctl
