// The state of a container as the runtime-spec (runtime.md "State") and runc report
// it, and as berth-runtime stores it in <root>/<id>/state.json.
// Thread-safety: value types and pure functions.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace berth::oci {

// runtime-spec statuses: creating, created, running, stopped; runc adds paused.
enum class Status { kCreating, kCreated, kRunning, kPaused, kStopped };

// The lowercase name ("created"). Never null.
const char* statusName(Status status);
// Inverse of statusName. Errors: InvalidArgument for an unknown name, listing the valid
// ones.
StatusOr<Status> parseStatus(const std::string& name);

// What `state` prints (runc's JSON keys and order, from runc's containerState struct):
// {"ociVersion","id","pid","status","bundle","rootfs","created","annotations","owner"}
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

// The `state` document, keys in runc's order (hence ordered_json; it converts to
// nlohmann::json implicitly when order does not matter). Dump it with
// .dump() (compact) or .dump(2) (as `runc state` prints).
nlohmann::ordered_json toJson(const State& state);

// Reads back a document written by toJson() (berth-runtime's state.json keeps it).
// Unknown keys are ignored. Errors: InvalidArgument naming the key and `what`.
StatusOr<State> stateFromJson(const nlohmann::json& doc, std::string_view what);

// The runtime-spec "state" object passed to hooks on stdin (runtime.md "State"):
// {"ociVersion","id","status","pid","bundle","annotations"}. As in runtime-spec
// specs-go (omitempty): "pid" only when state.pid > 0 (the spec requires it for created
// and running), "annotations" only when non-empty.
nlohmann::ordered_json hookStateJson(const State& state);

// Current time as RFC 3339 with nanoseconds in UTC ("2026-11-22T04:05:06.123456789Z").
std::string rfc3339Now();

}  // namespace berth::oci
