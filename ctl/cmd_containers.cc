// create, start, stop, rm, ps, inspect, exec (sync), stats: containers over the CRI
// RuntimeService.
#include <algorithm>
#include <cstdio>
#include <regex>

#include "ctl/commands.h"
#include "ctl/config_files.h"

namespace berth::ctl {
namespace {

namespace v1 = runtime::v1;

struct ContainerOptions {
  std::string pod_id, container_config, pod_config;
  std::vector<std::string> ids, labels;
  std::string id, name, state, image;
  bool quiet = false, latest = false, no_trunc = false, all = false, force = false;
  bool sync = false, interactive = false, tty = false;
  int last = 0;
  int64_t stop_timeout = 0;
  int64_t exec_timeout = 0;
  std::string ps_output, inspect_output, stats_output;
};
ContainerOptions& opts() {
  static ContainerOptions o;
  return o;
}

Status create(Context& ctx) {
  const ContainerOptions& o = opts();
  ASSIGN_OR_RETURN(v1::ContainerConfig config, loadContainerConfig(o.container_config));
  ASSIGN_OR_RETURN(v1::PodSandboxConfig pod, loadPodSandboxConfig(o.pod_config));
  ASSIGN_OR_RETURN(CriClient * client, ctx.client());
  v1::CreateContainerRequest req;
  req.set_pod_sandbox_id(o.pod_id);
  *req.mutable_config() = std::move(config);
  *req.mutable_sandbox_config() = std::move(pod);
  v1::CreateContainerResponse resp;
  auto timeout = ctx.workTimeout();
  auto rpc = client->context(timeout);
  grpc::Status st = client->runtime().CreateContainer(rpc.get(), req, &resp);
  if (!st.ok()) {
    return withContext(client->runtimeError(st, "CreateContainer", timeout),
                       strCat("create container \"", req.config().metadata().name(),
                              "\" in pod \"", o.pod_id, "\""));
  }
  std::printf("%s\n", resp.container_id().c_str());
  return absl::OkStatus();
}

StatusOr<std::vector<v1::Container>> listContainers(CriClient& client,
                                                    const v1::ContainerFilter& filter) {
  v1::ListContainersRequest req;
  *req.mutable_filter() = filter;
  v1::ListContainersResponse resp;
  auto rpc = client.context();
  grpc::Status st = client.runtime().ListContainers(rpc.get(), req, &resp);
  if (!st.ok()) return client.runtimeError(st, "ListContainers");
  return std::vector<v1::Container>(resp.containers().begin(), resp.containers().end());
}

StatusOr<std::vector<std::string>> targetIds(CriClient& client, const ContainerOptions& o) {
  std::vector<std::string> ids = o.ids;
  if (o.all) {
    ASSIGN_OR_RETURN(auto all, listContainers(client, v1::ContainerFilter()));
    for (const auto& c : all) ids.push_back(c.id());
  }
  if (ids.empty() && !o.all) return invalidArgument("name at least one container ID, or give --all");
  return ids;
}

StatusOr<v1::ContainerStatusResponse> containerStatus(CriClient& client, const std::string& id,
                                                      bool verbose) {
  v1::ContainerStatusRequest req;
  req.set_container_id(id);
  req.set_verbose(verbose);
  v1::ContainerStatusResponse resp;
  auto rpc = client.context();
  grpc::Status st = client.runtime().ContainerStatus(rpc.get(), req, &resp);
  if (!st.ok()) {
    return withContext(client.runtimeError(st, "ContainerStatus"),
                       strCat("container \"", id, "\""));
  }
  return resp;
}

Status start(Context& ctx) {
  ASSIGN_OR_RETURN(CriClient * client, ctx.client());
  for (const std::string& id : opts().ids) {
    v1::StartContainerRequest req;
    req.set_container_id(id);
    v1::StartContainerResponse resp;
    auto timeout = ctx.workTimeout();
    auto rpc = client->context(timeout);
    grpc::Status st = client->runtime().StartContainer(rpc.get(), req, &resp);
    if (!st.ok()) {
      return withContext(client->runtimeError(st, "StartContainer", timeout),
                         strCat("start container \"", id, "\""));
    }
    std::printf("%s\n", id.c_str());
  }
  return absl::OkStatus();
}

Status stopOne(Context& ctx, CriClient& client, const std::string& id, int64_t grace) {
  v1::StopContainerRequest req;
  req.set_container_id(id);
  req.set_timeout(grace);
  v1::StopContainerResponse resp;
  auto timeout = ctx.workTimeout(std::chrono::seconds(grace));
  auto rpc = client.context(timeout);
  grpc::Status st = client.runtime().StopContainer(rpc.get(), req, &resp);
  if (!st.ok()) {
    return withContext(client.runtimeError(st, "StopContainer", timeout),
                       strCat("stop container \"", id, "\""));
  }
  return absl::OkStatus();
}

Status stop(Context& ctx) {
  ASSIGN_OR_RETURN(CriClient * client, ctx.client());
  ASSIGN_OR_RETURN(auto ids, targetIds(*client, opts()));
  for (const std::string& id : ids) {
    RETURN_IF_ERROR(stopOne(ctx, *client, id, opts().stop_timeout));
    std::printf("%s\n", id.c_str());
  }
  return absl::OkStatus();
}

Status rm(Context& ctx) {
  const ContainerOptions& o = opts();
  ASSIGN_OR_RETURN(CriClient * client, ctx.client());
  ASSIGN_OR_RETURN(auto ids, targetIds(*client, o));
  for (const std::string& id : ids) {
    ASSIGN_OR_RETURN(auto status, containerStatus(*client, id, false));
    if (status.status().state() == v1::CONTAINER_RUNNING) {
      if (!o.force) {
        return failedPrecondition("container \"", id, "\" is running; stop it first or use "
                                  "rm --force");
      }
      RETURN_IF_ERROR(stopOne(ctx, *client, id, 0));
    }
    v1::RemoveContainerRequest req;
    req.set_container_id(id);
    v1::RemoveContainerResponse resp;
    auto timeout = ctx.workTimeout();
    auto rpc = client->context(timeout);
    grpc::Status st = client->runtime().RemoveContainer(rpc.get(), req, &resp);
    if (!st.ok()) {
      return withContext(client->runtimeError(st, "RemoveContainer", timeout),
                         strCat("remove container \"", id, "\""));
    }
    std::printf("%s\n", id.c_str());
  }
  return absl::OkStatus();
}

Status ps(Context& ctx) {
  const ContainerOptions& o = opts();
  ASSIGN_OR_RETURN(OutputFormat format, parseOutputFormat(o.ps_output));
  v1::ContainerFilter filter;
  filter.set_id(o.id);
  filter.set_pod_sandbox_id(o.pod_id);
  std::string state = o.state;
  std::transform(state.begin(), state.end(), state.begin(), ::tolower);
  if (state.empty() && !o.all) state = "running";
  if (!state.empty()) {
    v1::ContainerState s;
    if (state == "created" || state == "container_created") {
      s = v1::CONTAINER_CREATED;
    } else if (state == "running" || state == "container_running") {
      s = v1::CONTAINER_RUNNING;
    } else if (state == "exited" || state == "container_exited") {
      s = v1::CONTAINER_EXITED;
    } else if (state == "unknown" || state == "container_unknown") {
      s = v1::CONTAINER_UNKNOWN;
    } else {
      return invalidArgument("--state \"", o.state, "\": use created, running, exited or unknown");
    }
    filter.mutable_state()->set_state(s);
  }
  ASSIGN_OR_RETURN(auto labels, parseLabels(o.labels));
  for (const auto& [k, v] : labels) (*filter.mutable_label_selector())[k] = v;
  std::regex name_re;
  try {
    name_re = std::regex(o.name);
  } catch (const std::regex_error& e) {
    return invalidArgument("--name \"", o.name, "\": not a regular expression: ", e.what());
  }

  ASSIGN_OR_RETURN(CriClient * client, ctx.client());
  ASSIGN_OR_RETURN(auto all, listContainers(*client, filter));
  std::vector<v1::Container> containers;
  for (auto& c : all) {
    if (!o.name.empty() && !std::regex_search(c.metadata().name(), name_re)) continue;
    if (!o.image.empty() && c.image().image() != o.image && c.image_ref() != o.image &&
        c.image_id() != o.image) {
      continue;
    }
    containers.push_back(std::move(c));
  }
  std::stable_sort(containers.begin(), containers.end(), [](const auto& a, const auto& b) {
    return a.created_at() > b.created_at();
  });
  size_t keep = containers.size();
  if (o.latest) keep = std::min<size_t>(keep, 1);
  if (o.last > 0) keep = std::min<size_t>(keep, static_cast<size_t>(o.last));
  containers.resize(keep);

  if (o.quiet) {
    for (const auto& c : containers) std::printf("%s\n", c.id().c_str());
    return absl::OkStatus();
  }
  if (format == OutputFormat::kTable) {
    std::printf("%s", containersTable(containers, nowNs(), o.no_trunc).c_str());
    return absl::OkStatus();
  }
  v1::ListContainersResponse resp;
  for (const auto& c : containers) *resp.add_containers() = c;
  ASSIGN_OR_RETURN(OrderedJson json, messageToJson(resp));
  printDocument(json, format);
  return absl::OkStatus();
}

Status inspect(Context& ctx) {
  const ContainerOptions& o = opts();
  ASSIGN_OR_RETURN(OutputFormat format, parseOutputFormat(o.inspect_output, OutputFormat::kJson));
  ASSIGN_OR_RETURN(CriClient * client, ctx.client());
  OrderedJson all = OrderedJson::array();
  for (const std::string& id : o.ids) {
    ASSIGN_OR_RETURN(auto resp, containerStatus(*client, id, true));
    ASSIGN_OR_RETURN(OrderedJson json, statusWithInfo(resp.status(), resp.info()));
    all.push_back(std::move(json));
  }
  printDocument(all.size() == 1 ? all[0] : all, format);
  return absl::OkStatus();
}

Status exec(Context& ctx, const std::vector<std::string>& cmd) {
  const ContainerOptions& o = opts();
  if (o.interactive || o.tty) {
    return unimplemented("exec -i/-t needs CRI Exec streaming, which berthctl does not speak "
                         "yet; run the command without -i/-t (ExecSync)");
  }
  if (cmd.empty()) return invalidArgument("exec: give the command to run after the container ID");
  ASSIGN_OR_RETURN(CriClient * client, ctx.client());
  v1::ExecSyncRequest req;
  req.set_container_id(o.id);
  for (const std::string& a : cmd) req.add_cmd(a);
  req.set_timeout(o.exec_timeout);
  // The runtime enforces the command's timeout; the call itself gets that plus slack,
  // or no deadline when the command has none.
  std::chrono::seconds deadline(o.exec_timeout > 0 ? o.exec_timeout + 30 : 0);
  v1::ExecSyncResponse resp;
  auto rpc = client->context(deadline);
  grpc::Status st = client->runtime().ExecSync(rpc.get(), req, &resp);
  if (!st.ok()) {
    return withContext(client->runtimeError(st, "ExecSync", deadline),
                       strCat("exec in container \"", o.id, "\""));
  }
  std::fwrite(resp.stdout().data(), 1, resp.stdout().size(), stdout);
  std::fflush(stdout);
  std::fwrite(resp.stderr().data(), 1, resp.stderr().size(), stderr);
  ctx.exit_code = resp.exit_code();
  return absl::OkStatus();
}

Status stats(Context& ctx) {
  const ContainerOptions& o = opts();
  ASSIGN_OR_RETURN(OutputFormat format, parseOutputFormat(o.stats_output));
  v1::ListContainerStatsRequest req;
  req.mutable_filter()->set_id(o.ids.empty() ? o.id : o.ids[0]);
  req.mutable_filter()->set_pod_sandbox_id(o.pod_id);
  ASSIGN_OR_RETURN(auto labels, parseLabels(o.labels));
  for (const auto& [k, v] : labels) (*req.mutable_filter()->mutable_label_selector())[k] = v;
  ASSIGN_OR_RETURN(CriClient * client, ctx.client());
  v1::ListContainerStatsResponse resp;
  auto rpc = client->context();
  grpc::Status st = client->runtime().ListContainerStats(rpc.get(), req, &resp);
  if (!st.ok()) return client->runtimeError(st, "ListContainerStats");
  if (format == OutputFormat::kTable) {
    std::printf("%s", containerStatsTable(resp).c_str());
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(OrderedJson json, messageToJson(resp));
  printDocument(json, format);
  return absl::OkStatus();
}

}  // namespace

void addContainerCommands(CLI::App& app, Context& ctx) {
  ContainerOptions& o = opts();
  auto* create_cmd = app.add_subcommand("create", "create a container in a pod from crictl "
                                        "container and pod configs (CRI CreateContainer)");
  create_cmd->add_option("pod-id", o.pod_id, "the pod's ID")->required();
  create_cmd->add_option("container-config", o.container_config, "JSON or YAML")->required();
  create_cmd->add_option("pod-config", o.pod_config, "the pod's config, JSON or YAML")
      ->required();
  setAction(create_cmd, ctx, create);

  auto* start_cmd = app.add_subcommand("start", "start created containers (CRI StartContainer)");
  start_cmd->add_option("container-id", o.ids, "container IDs")->required();
  setAction(start_cmd, ctx, start);

  auto* stop_cmd = app.add_subcommand("stop", "stop containers (CRI StopContainer)");
  stop_cmd->add_option("container-id", o.ids, "container IDs");
  stop_cmd->add_option("-t,--timeout", o.stop_timeout,
                       "seconds between the stop signal and SIGKILL")->capture_default_str();
  stop_cmd->add_flag("-a,--all", o.all, "every container");
  setAction(stop_cmd, ctx, stop);

  auto* rm_cmd = app.add_subcommand("rm", "remove containers (CRI RemoveContainer)");
  rm_cmd->add_option("container-id", o.ids, "container IDs");
  rm_cmd->add_flag("-f,--force", o.force, "stop a running container first");
  rm_cmd->add_flag("-a,--all", o.all, "every container");
  setAction(rm_cmd, ctx, rm);

  auto* ps_cmd = app.add_subcommand("ps", "list containers (CRI ListContainers)");
  ps_cmd->add_flag("-a,--all", o.all, "all containers (default: running ones)");
  ps_cmd->add_option("--id", o.id, "only the container with this ID");
  ps_cmd->add_option("-p,--pod", o.pod_id, "only containers of this pod");
  ps_cmd->add_option("--name", o.name, "only containers whose name matches this regexp");
  ps_cmd->add_option("-s,--state", o.state, "created, running, exited or unknown");
  ps_cmd->add_option("--label", o.labels, "label selector key=value (repeatable)");
  ps_cmd->add_option("--image", o.image, "only containers of this image");
  ps_cmd->add_flag("-q,--quiet", o.quiet, "only container IDs");
  ps_cmd->add_flag("-l,--latest", o.latest, "only the most recently created container");
  ps_cmd->add_option("-n,--last", o.last, "only the N most recently created containers");
  ps_cmd->add_flag("--no-trunc", o.no_trunc, "do not truncate IDs");
  addOutputFlag(ps_cmd, o.ps_output, "table");
  setAction(ps_cmd, ctx, ps);

  auto* inspect_cmd = app.add_subcommand("inspect", "container status (CRI ContainerStatus, "
                                         "verbose)");
  inspect_cmd->add_option("container-id", o.ids, "container IDs")->required();
  addOutputFlag(inspect_cmd, o.inspect_output, "json");
  setAction(inspect_cmd, ctx, inspect);

  auto* exec_cmd = app.add_subcommand("exec", "run a command in a container and wait for it "
                                      "(CRI ExecSync); exits with its exit code");
  exec_cmd->add_option("container-id", o.id, "container ID")->required();
  exec_cmd->add_flag("-s,--sync", o.sync, "synchronous (the only mode berthctl has)");
  exec_cmd->add_option("--timeout", o.exec_timeout, "seconds the command may run (0: no limit)")
      ->capture_default_str();
  exec_cmd->add_flag("-i,--interactive", o.interactive, "not supported (needs CRI Exec)");
  exec_cmd->add_flag("-t,--tty", o.tty, "not supported (needs CRI Exec)");
  // Everything after the container ID is the command, kept here (not passed up to the
  // global flags).
  exec_cmd->prefix_command();
  exec_cmd->fallthrough(false);
  exec_cmd->callback([&ctx, exec_cmd] {
    std::vector<std::string> cmd = exec_cmd->remaining();
    if (!cmd.empty() && cmd.front() == "--") cmd.erase(cmd.begin());
    ctx.action = [&ctx, cmd] { return exec(ctx, cmd); };
  });

  auto* stats_cmd = app.add_subcommand("stats", "container resource usage (CRI "
                                       "ListContainerStats)");
  stats_cmd->add_option("container-id", o.ids, "only this container");
  stats_cmd->add_option("--id", o.id, "only this container");
  stats_cmd->add_option("-p,--pod", o.pod_id, "only containers of this pod");
  stats_cmd->add_option("--label", o.labels, "label selector key=value (repeatable)");
  addOutputFlag(stats_cmd, o.stats_output, "table");
  setAction(stats_cmd, ctx, stats);
}

}  // namespace berth::ctl
