// events: resource usage and OOM notifications of a container (runc events).
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <thread>

#include "common/json.h"
#include "common/strings.h"
#include "runtime/cli/cli.h"

namespace berth::cli {
namespace {

template <typename T>
void setIf(nlohmann::ordered_json& j, const char* key, const std::optional<T>& v) {
  if (v) j[key] = *v;
}

// runc-style {"type":"stats","id":…,"data":{cpu, memory, pids}}, values from cgroup v2.
nlohmann::ordered_json statsEvent(const std::string& id, const cgroups::Stats& s) {
  nlohmann::ordered_json data = nlohmann::ordered_json::object();
  nlohmann::ordered_json cpu_usage = nlohmann::ordered_json::object();
  // runc reports nanoseconds; cgroup v2 counts microseconds.
  if (s.cpu_usage_usec) cpu_usage["total"] = *s.cpu_usage_usec * 1000;
  if (s.cpu_user_usec) cpu_usage["user"] = *s.cpu_user_usec * 1000;
  if (s.cpu_system_usec) cpu_usage["kernel"] = *s.cpu_system_usec * 1000;
  data["cpu"] = {{"usage", cpu_usage}};
  nlohmann::ordered_json usage = nlohmann::ordered_json::object();
  setIf(usage, "usage", s.memory_current);
  setIf(usage, "limit", s.memory_max);
  nlohmann::ordered_json memory = {{"usage", usage}};
  if (s.memory_events) {
    memory["events"] = {{"low", s.memory_events->low},   {"high", s.memory_events->high},
                        {"max", s.memory_events->max},   {"oom", s.memory_events->oom},
                        {"oom_kill", s.memory_events->oom_kill}};
  }
  data["memory"] = memory;
  nlohmann::ordered_json pids = nlohmann::ordered_json::object();
  setIf(pids, "current", s.pids_current);
  data["pids"] = pids;
  return {{"type", "stats"}, {"id", id}, {"data", data}};
}

}  // namespace

void addEventsCommand(CLI::App& app, Context& ctx) {
  auto id = std::make_shared<std::string>();
  auto once = std::make_shared<bool>(false);
  auto interval = std::make_shared<int>(5);
  auto* cmd = app.add_subcommand(
      "events", "print resource usage and OOM events of a container as JSON lines");
  cmd->add_option("id", *id, "container id")->required();
  cmd->add_flag("--stats", *once, "print the current stats once and exit");
  cmd->add_option("--interval", *interval, "seconds between stats lines (default 5)");
  cmd->callback([&ctx, id, once, interval] {
    auto rt = ctx.openRuntime();
    if (!rt.ok()) {
      ctx.outcome.status = rt.status();
      return;
    }
    uint64_t last_oom_kill = 0;
    bool first = true;
    while (true) {
      auto st = rt->state(*id);
      if (!st.ok()) {
        ctx.outcome.status = st.status();
        return;
      }
      auto stats = rt->stats(*id);
      if (!stats.ok()) {
        ctx.outcome.status = stats.status();
        return;
      }
      uint64_t oom_kill = stats->memory_events ? stats->memory_events->oom_kill : 0;
      if (!first && oom_kill > last_oom_kill) {
        std::cout << nlohmann::ordered_json{{"type", "oom"}, {"id", *id}}.dump() << std::endl;
      }
      last_oom_kill = oom_kill;
      first = false;
      std::cout << statsEvent(*id, *stats).dump() << std::endl;
      if (*once || st->status == oci::Status::kStopped) return;
      std::this_thread::sleep_for(std::chrono::seconds(std::max(1, *interval)));
    }
  });
}

}  // namespace berth::cli
