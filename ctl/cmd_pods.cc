// runp, stopp, rmp, pods, inspectp, statsp: pod sandboxes over the CRI RuntimeService.
#include <algorithm>
#include <cstdio>
#include <regex>

#include "ctl/commands.h"
#include "ctl/config_files.h"

namespace berth::ctl {
namespace {

namespace v1 = runtime::v1;

struct PodOptions {
  std::string config_path, runtime_handler;
  std::vector<std::string> ids, labels;
  std::string id, name, ns, state;
  bool quiet = false, latest = false, no_trunc = false, all = false, force = false;
  int last = 0;
  std::string pods_output, inspect_output, stats_output;
};
PodOptions& opts() {
  static PodOptions o;
  return o;
}

Status runp(Context& ctx) {
  const PodOptions& o = opts();
  ASSIGN_OR_RETURN(v1::PodSandboxConfig config, loadPodSandboxConfig(o.config_path));
  ASSIGN_OR_RETURN(CriClient * client, ctx.client());
  v1::RunPodSandboxRequest req;
  *req.mutable_config() = std::move(config);
  req.set_runtime_handler(o.runtime_handler);
  v1::RunPodSandboxResponse resp;
  auto timeout = ctx.workTimeout();
  auto rpc = client->context(timeout);
  grpc::Status st = client->runtime().RunPodSandbox(rpc.get(), req, &resp);
  if (!st.ok()) {
    return withContext(client->runtimeError(st, "RunPodSandbox", timeout),
                       strCat("run pod sandbox \"", req.config().metadata().name(), "\""));
  }
  std::printf("%s\n", resp.pod_sandbox_id().c_str());
  return absl::OkStatus();
}

StatusOr<std::vector<v1::PodSandbox>> listPods(CriClient& client, const v1::PodSandboxFilter& f) {
  v1::ListPodSandboxRequest req;
  *req.mutable_filter() = f;
  v1::ListPodSandboxResponse resp;
  auto rpc = client.context();
  grpc::Status st = client.runtime().ListPodSandbox(rpc.get(), req, &resp);
  if (!st.ok()) return client.runtimeError(st, "ListPodSandbox");
  return std::vector<v1::PodSandbox>(resp.items().begin(), resp.items().end());
}

// The IDs named on the command line, or every pod with --all.
StatusOr<std::vector<std::string>> targetIds(CriClient& client, const PodOptions& o) {
  std::vector<std::string> ids = o.ids;
  if (o.all) {
    ASSIGN_OR_RETURN(auto pods, listPods(client, v1::PodSandboxFilter()));
    for (const auto& p : pods) ids.push_back(p.id());
  }
  if (ids.empty() && !o.all) return invalidArgument("name at least one pod ID, or give --all");
  return ids;
}

Status stopp(Context& ctx) {
  ASSIGN_OR_RETURN(CriClient * client, ctx.client());
  ASSIGN_OR_RETURN(auto ids, targetIds(*client, opts()));
  for (const std::string& id : ids) {
    v1::StopPodSandboxRequest req;
    req.set_pod_sandbox_id(id);
    v1::StopPodSandboxResponse resp;
    auto timeout = ctx.workTimeout();
    auto rpc = client->context(timeout);
    grpc::Status st = client->runtime().StopPodSandbox(rpc.get(), req, &resp);
    if (!st.ok()) {
      return withContext(client->runtimeError(st, "StopPodSandbox", timeout),
                         strCat("stop pod sandbox \"", id, "\""));
    }
    std::printf("Stopped sandbox %s\n", id.c_str());
  }
  return absl::OkStatus();
}

Status rmp(Context& ctx) {
  ASSIGN_OR_RETURN(CriClient * client, ctx.client());
  ASSIGN_OR_RETURN(auto ids, targetIds(*client, opts()));
  for (const std::string& id : ids) {
    auto timeout = ctx.workTimeout();
    if (opts().force) {
      v1::StopPodSandboxRequest stop;
      stop.set_pod_sandbox_id(id);
      v1::StopPodSandboxResponse stopped;
      auto rpc = client->context(timeout);
      grpc::Status st = client->runtime().StopPodSandbox(rpc.get(), stop, &stopped);
      if (!st.ok()) {
        return withContext(client->runtimeError(st, "StopPodSandbox", timeout),
                           strCat("stop pod sandbox \"", id, "\" before removing it"));
      }
    }
    v1::RemovePodSandboxRequest req;
    req.set_pod_sandbox_id(id);
    v1::RemovePodSandboxResponse resp;
    auto rpc = client->context(timeout);
    grpc::Status st = client->runtime().RemovePodSandbox(rpc.get(), req, &resp);
    if (!st.ok()) {
      return withContext(client->runtimeError(st, "RemovePodSandbox", timeout),
                         strCat("remove pod sandbox \"", id, "\""));
    }
    std::printf("Removed sandbox %s\n", id.c_str());
  }
  return absl::OkStatus();
}

StatusOr<std::regex> compile(const std::string& pattern, const char* flag) {
  try {
    return std::regex(pattern);
  } catch (const std::regex_error& e) {
    return invalidArgument(flag, " \"", pattern, "\": not a regular expression: ", e.what());
  }
}

Status pods(Context& ctx) {
  const PodOptions& o = opts();
  ASSIGN_OR_RETURN(OutputFormat format, parseOutputFormat(o.pods_output));
  v1::PodSandboxFilter filter;
  filter.set_id(o.id);
  if (!o.state.empty()) {
    std::string s = o.state;
    std::transform(s.begin(), s.end(), s.begin(), ::tolower);
    if (s == "ready" || s == "sandbox_ready") {
      filter.mutable_state()->set_state(v1::SANDBOX_READY);
    } else if (s == "notready" || s == "sandbox_notready") {
      filter.mutable_state()->set_state(v1::SANDBOX_NOTREADY);
    } else {
      return invalidArgument("--state \"", o.state, "\": use ready or notready");
    }
  }
  ASSIGN_OR_RETURN(auto labels, parseLabels(o.labels));
  for (const auto& [k, v] : labels) (*filter.mutable_label_selector())[k] = v;
  ASSIGN_OR_RETURN(std::regex name_re, compile(o.name, "--name"));
  ASSIGN_OR_RETURN(std::regex ns_re, compile(o.ns, "--namespace"));

  ASSIGN_OR_RETURN(CriClient * client, ctx.client());
  ASSIGN_OR_RETURN(auto all, listPods(*client, filter));
  std::vector<v1::PodSandbox> pods;
  for (auto& p : all) {
    if (!o.name.empty() && !std::regex_search(p.metadata().name(), name_re)) continue;
    if (!o.ns.empty() && !std::regex_search(p.metadata().namespace_(), ns_re)) continue;
    pods.push_back(std::move(p));
  }
  std::stable_sort(pods.begin(), pods.end(), [](const auto& a, const auto& b) {
    return a.created_at() > b.created_at();
  });
  size_t keep = pods.size();
  if (o.latest) keep = std::min<size_t>(keep, 1);
  if (o.last > 0) keep = std::min<size_t>(keep, static_cast<size_t>(o.last));
  pods.resize(keep);

  if (o.quiet) {
    for (const auto& p : pods) std::printf("%s\n", p.id().c_str());
    return absl::OkStatus();
  }
  if (format == OutputFormat::kTable) {
    std::printf("%s", podsTable(pods, nowNs(), o.no_trunc).c_str());
    return absl::OkStatus();
  }
  v1::ListPodSandboxResponse resp;
  for (const auto& p : pods) *resp.add_items() = p;
  ASSIGN_OR_RETURN(OrderedJson json, messageToJson(resp));
  printDocument(json, format);
  return absl::OkStatus();
}

Status inspectp(Context& ctx) {
  const PodOptions& o = opts();
  ASSIGN_OR_RETURN(OutputFormat format, parseOutputFormat(o.inspect_output, OutputFormat::kJson));
  ASSIGN_OR_RETURN(CriClient * client, ctx.client());
  OrderedJson all = OrderedJson::array();
  for (const std::string& id : o.ids) {
    v1::PodSandboxStatusRequest req;
    req.set_pod_sandbox_id(id);
    req.set_verbose(true);
    v1::PodSandboxStatusResponse resp;
    auto rpc = client->context();
    grpc::Status st = client->runtime().PodSandboxStatus(rpc.get(), req, &resp);
    if (!st.ok()) {
      return withContext(client->runtimeError(st, "PodSandboxStatus"),
                         strCat("inspect pod sandbox \"", id, "\""));
    }
    ASSIGN_OR_RETURN(OrderedJson json, statusWithInfo(resp.status(), resp.info()));
    all.push_back(std::move(json));
  }
  printDocument(all.size() == 1 ? all[0] : all, format);
  return absl::OkStatus();
}

Status statsp(Context& ctx) {
  const PodOptions& o = opts();
  ASSIGN_OR_RETURN(OutputFormat format, parseOutputFormat(o.stats_output));
  v1::ListPodSandboxStatsRequest req;
  req.mutable_filter()->set_id(o.ids.empty() ? o.id : o.ids[0]);
  ASSIGN_OR_RETURN(auto labels, parseLabels(o.labels));
  for (const auto& [k, v] : labels) (*req.mutable_filter()->mutable_label_selector())[k] = v;
  ASSIGN_OR_RETURN(CriClient * client, ctx.client());
  v1::ListPodSandboxStatsResponse resp;
  auto rpc = client->context();
  grpc::Status st = client->runtime().ListPodSandboxStats(rpc.get(), req, &resp);
  if (!st.ok()) return client->runtimeError(st, "ListPodSandboxStats");
  if (format == OutputFormat::kTable) {
    std::printf("%s", podStatsTable(resp).c_str());
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(OrderedJson json, messageToJson(resp));
  printDocument(json, format);
  return absl::OkStatus();
}

}  // namespace

void addPodCommands(CLI::App& app, Context& ctx) {
  PodOptions& o = opts();
  auto* runp_cmd = app.add_subcommand("runp", "run a pod sandbox from a crictl pod config "
                                      "(CRI RunPodSandbox); prints its ID");
  runp_cmd->add_option("pod-config", o.config_path, "pod config, JSON or YAML")->required();
  runp_cmd->add_option("--runtime", o.runtime_handler, "runtime handler (RuntimeClass)");
  setAction(runp_cmd, ctx, runp);

  auto* stopp_cmd = app.add_subcommand("stopp", "stop pod sandboxes (CRI StopPodSandbox)");
  stopp_cmd->add_option("pod-id", o.ids, "pod IDs");
  stopp_cmd->add_flag("-a,--all", o.all, "every pod");
  setAction(stopp_cmd, ctx, stopp);

  auto* rmp_cmd = app.add_subcommand("rmp", "remove pod sandboxes (CRI RemovePodSandbox)");
  rmp_cmd->add_option("pod-id", o.ids, "pod IDs");
  rmp_cmd->add_flag("-a,--all", o.all, "every pod");
  rmp_cmd->add_flag("-f,--force", o.force, "stop the pod first");
  setAction(rmp_cmd, ctx, rmp);

  auto* pods_cmd = app.add_subcommand("pods", "list pod sandboxes (CRI ListPodSandbox)");
  pods_cmd->add_option("--id", o.id, "only the pod with this ID");
  pods_cmd->add_option("--name", o.name, "only pods whose name matches this regexp");
  pods_cmd->add_option("--namespace", o.ns, "only pods whose namespace matches this regexp");
  pods_cmd->add_option("-s,--state", o.state, "ready or notready");
  pods_cmd->add_option("--label", o.labels, "label selector key=value (repeatable)");
  pods_cmd->add_flag("-q,--quiet", o.quiet, "only pod IDs");
  pods_cmd->add_flag("-l,--latest", o.latest, "only the most recently created pod");
  pods_cmd->add_option("-n,--last", o.last, "only the N most recently created pods");
  pods_cmd->add_flag("--no-trunc", o.no_trunc, "do not truncate IDs");
  addOutputFlag(pods_cmd, o.pods_output, "table");
  setAction(pods_cmd, ctx, pods);

  auto* inspectp_cmd = app.add_subcommand("inspectp", "pod sandbox status (CRI "
                                          "PodSandboxStatus, verbose)");
  inspectp_cmd->add_option("pod-id", o.ids, "pod IDs")->required();
  addOutputFlag(inspectp_cmd, o.inspect_output, "json");
  setAction(inspectp_cmd, ctx, inspectp);

  auto* statsp_cmd = app.add_subcommand("statsp", "pod resource usage (CRI ListPodSandboxStats)");
  statsp_cmd->add_option("pod-id", o.ids, "only this pod");
  statsp_cmd->add_option("--id", o.id, "only this pod");
  statsp_cmd->add_option("--label", o.labels, "label selector key=value (repeatable)");
  addOutputFlag(statsp_cmd, o.stats_output, "table");
  setAction(statsp_cmd, ctx, statsp);
}

}  // namespace berth::ctl
