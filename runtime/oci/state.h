// The state of a container as the runtime-spec (runtime.md "State") and runc report
// it, and as berth-runtime stores it in <root>/<id>/state.json.
// Thread-safety: value types and pure functions.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace berth::oci {

// runtime-spec statuses: creating, created, running, stopped; runc adds paused.
enum class Status { kCreating, kCreated, kRunning, kPaused, kStopped };

const char* statusName(Status status);
StatusOr<Status> parseStatus(const std::string& name);

// What `state` prints (runc's JSON keys and order):
// {"ociVersion","id","pid","status","bundle","rootfs","created","owner","annotations"}
// "annotations" is omitted when empty; "created" is RFC 3339 with nanoseconds, UTC.
struct State {
  std::string ociVersion;
  std::string id;
  pid_t pid = 0;                 // 0 once stopped (runc prints 0 for stopped)
  Status status = Status::kCreating;
  std::string bundle;            // absolute bundle path
  std::string rootfs;            // absolute rootfs path
  std::string created;           // RFC 3339
  std::string owner;             // "" (rootless owner in runc)
  std::map<std::string, std::string> annotations;
};

nlohmann::json toJson(const State& state);

// The runtime-spec "state" object passed to hooks on stdin:
// {"ociVersion","id","status","pid","bundle","annotations"}.
nlohmann::json hookStateJson(const State& state);

// Current time as RFC 3339 with nanoseconds in UTC ("2026-11-22T04:05:06.123456789Z").
std::string rfc3339Now();

}  // namespace berth::oci
