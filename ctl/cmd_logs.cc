// logs: a container's CRI log file (its path from ContainerStatus.log_path), read
// directly, as crictl and kubelet do; berthctl must run on the node with read access
// to the file.
#include <iostream>

#include "ctl/commands.h"
#include "ctl/cri_log.h"

namespace berth::ctl {
namespace {

namespace v1 = runtime::v1;

struct LogsOptions {
  std::string id;
  bool follow = false, timestamps = false;
  int64_t tail = -1;
  std::string since;
};
LogsOptions& opts() {
  static LogsOptions o;
  return o;
}

StatusOr<v1::ContainerStatus> status(CriClient& client, const std::string& id) {
  v1::ContainerStatusRequest req;
  req.set_container_id(id);
  v1::ContainerStatusResponse resp;
  auto rpc = client.context();
  grpc::Status st = client.runtime().ContainerStatus(rpc.get(), req, &resp);
  if (!st.ok()) {
    return withContext(client.runtimeError(st, "ContainerStatus"),
                       strCat("logs of container \"", id, "\""));
  }
  return resp.status();
}

Status logs(Context& ctx) {
  const LogsOptions& o = opts();
  LogOptions options;
  options.timestamps = o.timestamps;
  options.tail = o.tail;
  if (!o.since.empty()) {
    ASSIGN_OR_RETURN(options.since_ns, parseSince(o.since, nowNs()));
  }
  ASSIGN_OR_RETURN(CriClient * client, ctx.client());
  ASSIGN_OR_RETURN(v1::ContainerStatus st, status(*client, o.id));
  if (st.log_path().empty()) {
    return failedPrecondition("container \"", o.id, "\" has no log file (its config set no "
                              "log_path)");
  }
  // Follow while the container may still write: created or running.
  auto keep_following = [&] {
    auto now = status(*client, o.id);
    if (!now.ok()) return false;
    return now->state() == v1::CONTAINER_RUNNING || now->state() == v1::CONTAINER_CREATED;
  };
  return printLogFile(st.log_path(), options, o.follow, keep_following, std::cout, std::cerr);
}

}  // namespace

void addLogsCommand(CLI::App& app, Context& ctx) {
  LogsOptions& o = opts();
  auto* cmd = app.add_subcommand("logs", "print a container's log (its CRI log file)");
  cmd->add_option("container-id", o.id, "container ID")->required();
  cmd->add_flag("-f,--follow", o.follow, "keep printing new lines while the container runs");
  cmd->add_flag("-t,--timestamps", o.timestamps, "prefix lines with their RFC3339Nano time");
  cmd->add_option("--tail", o.tail, "only the last N lines (-1: all)")->capture_default_str();
  cmd->add_option("--since", o.since,
                  "only lines since an RFC3339 time or a duration ago (10s, 5m, 1h)");
  setAction(cmd, ctx, logs);
}

}  // namespace berth::ctl
