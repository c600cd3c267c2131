// Container state documents (state.h): runc's `state` JSON and the runtime-spec hook
// state.
#include "runtime/oci/state.h"

#include <time.h>

#include <cstdio>
#include <limits>

namespace berth::oci {
namespace {

using OrderedJson = nlohmann::ordered_json;

constexpr std::pair<Status, const char*> kStatusNames[] = {
    {Status::kCreating, "creating"}, {Status::kCreated, "created"},
    {Status::kRunning, "running"},   {Status::kPaused, "paused"},
    {Status::kStopped, "stopped"}};

// Reads doc[key] as a string into `out` when present; "" when absent or null.
berth::Status readString(const nlohmann::json& doc, const char* key, std::string_view what,
                         std::string& out) {
  auto it = doc.find(key);
  if (it == doc.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_string()) {
    return invalidArgument(what, ": \"", key, "\": expected string, got ", it->type_name());
  }
  out = it->get<std::string>();
  return absl::OkStatus();
}

}  // namespace

const char* statusName(Status status) {
  for (const auto& [value, name] : kStatusNames) {
    if (value == status) return name;
  }
  return "unknown";
}

StatusOr<Status> parseStatus(const std::string& name) {
  for (const auto& [value, known] : kStatusNames) {
    if (name == known) return value;
  }
  return invalidArgument("unknown container status \"", name,
                         "\"; expected creating, created, running, paused or stopped");
}

nlohmann::ordered_json toJson(const State& state) {
  OrderedJson j = OrderedJson::object();
  j["ociVersion"] = state.ociVersion;
  j["id"] = state.id;
  j["pid"] = static_cast<int64_t>(state.pid);
  j["status"] = statusName(state.status);
  j["bundle"] = state.bundle;
  j["rootfs"] = state.rootfs;
  j["created"] = state.created;
  if (!state.annotations.empty()) {
    OrderedJson annotations = OrderedJson::object();
    for (const auto& [key, value] : state.annotations) annotations[key] = value;
    j["annotations"] = std::move(annotations);
  }
  j["owner"] = state.owner;
  return j;
}

StatusOr<State> stateFromJson(const nlohmann::json& doc, std::string_view what) {
  if (!doc.is_object()) {
    return invalidArgument(what, ": expected a JSON object, got ", doc.type_name());
  }
  State state;
  RETURN_IF_ERROR(readString(doc, "ociVersion", what, state.ociVersion));
  RETURN_IF_ERROR(readString(doc, "id", what, state.id));
  RETURN_IF_ERROR(readString(doc, "bundle", what, state.bundle));
  RETURN_IF_ERROR(readString(doc, "rootfs", what, state.rootfs));
  RETURN_IF_ERROR(readString(doc, "created", what, state.created));
  RETURN_IF_ERROR(readString(doc, "owner", what, state.owner));
  std::string status = "creating";
  RETURN_IF_ERROR(readString(doc, "status", what, status));
  ASSIGN_OR_RETURN(state.status, withContext(parseStatus(status), what));
  if (auto it = doc.find("pid"); it != doc.end() && !it->is_null()) {
    if (!it->is_number_integer() || it->get<int64_t>() < 0 ||
        it->get<int64_t>() > std::numeric_limits<pid_t>::max()) {
      return invalidArgument(what, ": \"pid\": expected a non-negative process id, got ",
                             it->dump());
    }
    state.pid = static_cast<pid_t>(it->get<int64_t>());
  }
  if (auto it = doc.find("annotations"); it != doc.end() && !it->is_null()) {
    if (!it->is_object()) {
      return invalidArgument(what, ": \"annotations\": expected object, got ",
                             it->type_name());
    }
    for (const auto& [key, value] : it->items()) {
      if (!value.is_string()) {
        return invalidArgument(what, ": \"annotations[\"", key,
                               "\"]\": expected string, got ", value.type_name());
      }
      state.annotations[key] = value.get<std::string>();
    }
  }
  return state;
}

nlohmann::ordered_json hookStateJson(const State& state) {
  OrderedJson j = OrderedJson::object();
  j["ociVersion"] = state.ociVersion;
  j["id"] = state.id;
  j["status"] = statusName(state.status);
  if (state.pid > 0) j["pid"] = static_cast<int64_t>(state.pid);
  j["bundle"] = state.bundle;
  if (!state.annotations.empty()) {
    OrderedJson annotations = OrderedJson::object();
    for (const auto& [key, value] : state.annotations) annotations[key] = value;
    j["annotations"] = std::move(annotations);
  }
  return j;
}

std::string rfc3339Now() {
  struct timespec ts {};
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm {};
  gmtime_r(&ts.tv_sec, &tm);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long>(ts.tv_nsec));
  return buf;
}

}  // namespace berth::oci
