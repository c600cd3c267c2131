#include "runtime/shim/protocol.h"

#include <ctime>

namespace berth::shim {
namespace {

struct CodeEntry {
  absl::StatusCode code;
  const char* name;
};
constexpr CodeEntry kCodes[] = {
    {absl::StatusCode::kOk, "OK"},
    {absl::StatusCode::kCancelled, "Cancelled"},
    {absl::StatusCode::kUnknown, "Unknown"},
    {absl::StatusCode::kInvalidArgument, "InvalidArgument"},
    {absl::StatusCode::kDeadlineExceeded, "DeadlineExceeded"},
    {absl::StatusCode::kNotFound, "NotFound"},
    {absl::StatusCode::kAlreadyExists, "AlreadyExists"},
    {absl::StatusCode::kPermissionDenied, "PermissionDenied"},
    {absl::StatusCode::kResourceExhausted, "ResourceExhausted"},
    {absl::StatusCode::kFailedPrecondition, "FailedPrecondition"},
    {absl::StatusCode::kAborted, "Aborted"},
    {absl::StatusCode::kOutOfRange, "OutOfRange"},
    {absl::StatusCode::kUnimplemented, "Unimplemented"},
    {absl::StatusCode::kInternal, "Internal"},
    {absl::StatusCode::kUnavailable, "Unavailable"},
    {absl::StatusCode::kDataLoss, "DataLoss"},
    {absl::StatusCode::kUnauthenticated, "Unauthenticated"},
};


// Field readers that report the field name instead of throwing.
Status wrongType(const char* key, const char* want) {
  return invalidArgument("\"", key, "\" must be ", want);
}

Status getString(const Json& j, const char* key, std::string& out, bool required) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) return invalidArgument("missing \"", key, "\"");
    return absl::OkStatus();
  }
  if (!it->is_string()) return wrongType(key, "a string");
  out = it->get<std::string>();
  return absl::OkStatus();
}

Status getBool(const Json& j, const char* key, bool& out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_boolean()) return wrongType(key, "true or false");
  out = it->get<bool>();
  return absl::OkStatus();
}

template <typename T>
Status getInt(const Json& j, const char* key, T& out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_number_integer()) return wrongType(key, "an integer");
  out = it->get<T>();
  return absl::OkStatus();
}

Status getStringArray(const Json& j, const char* key, std::vector<std::string>& out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_array()) return wrongType(key, "an array of strings");
  for (const auto& v : *it) {
    if (!v.is_string()) return wrongType(key, "an array of strings");
    out.push_back(v.get<std::string>());
  }
  return absl::OkStatus();
}

Status requireObject(const Json& j, const char* what) {
  if (!j.is_object()) return invalidArgument(what, ": params must be a JSON object");
  return absl::OkStatus();
}

}  // namespace

std::string dumpJson(const Json& value) {
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string encodeRequest(const Request& request) {
  Json j = {{"id", request.id}, {"method", request.method}, {"params", request.params}};
  return dumpJson(j) + "\n";
}

StatusOr<Request> decodeRequest(std::string_view line) {
  Json j = Json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return invalidArgument("request: not valid JSON");
  if (!j.is_object()) return invalidArgument("request: must be a JSON object");
  Request r;
  auto id = j.find("id");
  if (id == j.end() || !id->is_number_unsigned()) {
    return invalidArgument("request: \"id\" must be a non-negative integer");
  }
  r.id = id->get<uint64_t>();
  Status st = getString(j, "method", r.method, true);
  if (!st.ok()) return withContext(st, "request");
  auto params = j.find("params");
  if (params != j.end() && !params->is_null()) {
    if (!params->is_object()) return invalidArgument("request: \"params\" must be an object");
    r.params = *params;
  }
  return r;
}

std::string encodeResponse(uint64_t id, const StatusOr<Json>& result) {
  Json j = {{"id", id}};
  if (result.ok()) {
    j["result"] = *result;
  } else {
    j["error"] = {{"code", codeName(result.status().code())},
                  {"message", std::string(result.status().message())}};
  }
  return dumpJson(j) + "\n";
}

std::string encodeEvent(const Json& event) { return dumpJson(Json{{"event", event}}) + "\n"; }

StatusOr<Incoming> decodeIncoming(std::string_view line) {
  Json j = Json::parse(line.begin(), line.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return invalidArgument("shim reply: not a JSON object");
  Incoming in;
  if (auto ev = j.find("event"); ev != j.end()) {
    in.is_event = true;
    in.event = *ev;
    return in;
  }
  auto id = j.find("id");
  if (id == j.end() || !id->is_number_unsigned()) {
    return invalidArgument("shim reply: \"id\" missing");
  }
  in.response.id = id->get<uint64_t>();
  if (auto err = j.find("error"); err != j.end()) {
    if (!err->is_object()) return invalidArgument("shim reply: \"error\" must be an object");
    std::string code, message;
    RETURN_IF_ERROR_CTX(getString(*err, "code", code, true), "shim reply error");
    RETURN_IF_ERROR_CTX(getString(*err, "message", message, false), "shim reply error");
    absl::StatusCode c = codeFromName(code);
    if (c == absl::StatusCode::kOk) c = absl::StatusCode::kUnknown;
    in.response.status = Status(c, message);
    return in;
  }
  auto result = j.find("result");
  if (result == j.end()) return invalidArgument("shim reply: neither \"result\" nor \"error\"");
  in.response.result = *result;
  return in;
}

std::string codeName(absl::StatusCode code) {
  for (const auto& e : kCodes) {
    if (e.code == code) return e.name;
  }
  return "Unknown";
}

absl::StatusCode codeFromName(std::string_view name) {
  for (const auto& e : kCodes) {
    if (name == e.name) return e.code;
  }
  return absl::StatusCode::kUnknown;
}

std::string formatRfc3339Nano(int64_t unix_ns) {
  int64_t secs = unix_ns / 1000000000;
  int64_t nanos = unix_ns % 1000000000;
  if (nanos < 0) {
    nanos += 1000000000;
    --secs;
  }
  time_t t = static_cast<time_t>(secs);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[64];
  snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%09lldZ", tm.tm_year + 1900,
           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
           static_cast<long long>(nanos));
  return buf;
}

// ---------------------------------------------------------------------------

Json toJson(const SandboxSpec& s) {
  return {{"ns_dir", s.ns_dir},         {"hostname", s.hostname},
          {"share_pid", s.share_pid},   {"host_network", s.host_network},
          {"host_ipc", s.host_ipc},     {"host_uts", s.host_uts},
          {"sysctls", s.sysctls}};
}

StatusOr<SandboxSpec> sandboxSpecFromJson(const Json& j) {
  RETURN_IF_ERROR(requireObject(j, "createSandbox"));
  SandboxSpec s;
  RETURN_IF_ERROR(getString(j, "ns_dir", s.ns_dir, true));
  RETURN_IF_ERROR(getString(j, "hostname", s.hostname, false));
  RETURN_IF_ERROR(getBool(j, "share_pid", s.share_pid));
  RETURN_IF_ERROR(getBool(j, "host_network", s.host_network));
  RETURN_IF_ERROR(getBool(j, "host_ipc", s.host_ipc));
  RETURN_IF_ERROR(getBool(j, "host_uts", s.host_uts));
  if (auto it = j.find("sysctls"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) return wrongType("sysctls", "an object of strings");
    for (auto kv = it->begin(); kv != it->end(); ++kv) {
      if (!kv.value().is_string()) return wrongType("sysctls", "an object of strings");
      s.sysctls[kv.key()] = kv.value().get<std::string>();
    }
  }
  return s;
}

Json toJson(const SandboxNamespaces& n) {
  return {{"ns_dir", n.ns_dir}, {"net", n.net}, {"ipc", n.ipc}, {"uts", n.uts},
          {"pid", n.pid}, {"pause_pid", n.pause_pid}, {"pause_running", n.pause_running}};
}

StatusOr<SandboxNamespaces> sandboxNamespacesFromJson(const Json& j) {
  RETURN_IF_ERROR(requireObject(j, "sandbox namespaces"));
  SandboxNamespaces n;
  RETURN_IF_ERROR(getString(j, "ns_dir", n.ns_dir, false));
  RETURN_IF_ERROR(getString(j, "net", n.net, false));
  RETURN_IF_ERROR(getString(j, "ipc", n.ipc, false));
  RETURN_IF_ERROR(getString(j, "uts", n.uts, false));
  RETURN_IF_ERROR(getString(j, "pid", n.pid, false));
  RETURN_IF_ERROR(getInt(j, "pause_pid", n.pause_pid));
  RETURN_IF_ERROR(getBool(j, "pause_running", n.pause_running));
  return n;
}

Json toJson(const ContainerSpec& s) {
  return {{"id", s.id},   {"bundle", s.bundle}, {"log_path", s.log_path},
          {"tty", s.tty}, {"stdin", s.stdin},   {"stdin_once", s.stdin_once}};
}

StatusOr<ContainerSpec> containerSpecFromJson(const Json& j) {
  RETURN_IF_ERROR(requireObject(j, "createContainer"));
  ContainerSpec s;
  RETURN_IF_ERROR(getString(j, "id", s.id, true));
  RETURN_IF_ERROR(getString(j, "bundle", s.bundle, true));
  RETURN_IF_ERROR(getString(j, "log_path", s.log_path, false));
  RETURN_IF_ERROR(getBool(j, "tty", s.tty));
  RETURN_IF_ERROR(getBool(j, "stdin", s.stdin));
  RETURN_IF_ERROR(getBool(j, "stdin_once", s.stdin_once));
  return s;
}

std::string statusName(ContainerStatus status) {
  switch (status) {
    case ContainerStatus::kCreated: return "created";
    case ContainerStatus::kRunning: return "running";
    case ContainerStatus::kExited: return "exited";
    case ContainerStatus::kUnknown: break;
  }
  return "unknown";
}

ContainerStatus statusFromName(std::string_view name) {
  if (name == "created") return ContainerStatus::kCreated;
  if (name == "running") return ContainerStatus::kRunning;
  if (name == "exited") return ContainerStatus::kExited;
  return ContainerStatus::kUnknown;
}

Json toJson(const ContainerState& s) {
  Json j = {{"id", s.id},
            {"status", statusName(s.status)},
            {"pid", s.pid},
            {"exit_code", s.exit_code},
            {"created_at_ns", s.created_at_ns},
            {"started_at_ns", s.started_at_ns},
            {"finished_at_ns", s.finished_at_ns},
            {"reason", s.reason},
            {"oom_killed", s.oom_killed},
            {"log_path", s.log_path},
            {"bundle", s.bundle},
            {"tty", s.tty}};
  if (!s.oom_note.empty()) j["oom_note"] = s.oom_note;
  if (s.created_at_ns != 0) j["created_at"] = formatRfc3339Nano(s.created_at_ns);
  if (s.started_at_ns != 0) j["started_at"] = formatRfc3339Nano(s.started_at_ns);
  if (s.finished_at_ns != 0) j["finished_at"] = formatRfc3339Nano(s.finished_at_ns);
  return j;
}

StatusOr<ContainerState> containerStateFromJson(const Json& j) {
  RETURN_IF_ERROR(requireObject(j, "container state"));
  ContainerState s;
  std::string status;
  RETURN_IF_ERROR(getString(j, "id", s.id, true));
  RETURN_IF_ERROR(getString(j, "status", status, false));
  s.status = statusFromName(status);
  RETURN_IF_ERROR(getInt(j, "pid", s.pid));
  RETURN_IF_ERROR(getInt(j, "exit_code", s.exit_code));
  RETURN_IF_ERROR(getInt(j, "created_at_ns", s.created_at_ns));
  RETURN_IF_ERROR(getInt(j, "started_at_ns", s.started_at_ns));
  RETURN_IF_ERROR(getInt(j, "finished_at_ns", s.finished_at_ns));
  RETURN_IF_ERROR(getString(j, "reason", s.reason, false));
  RETURN_IF_ERROR(getBool(j, "oom_killed", s.oom_killed));
  RETURN_IF_ERROR(getString(j, "oom_note", s.oom_note, false));
  RETURN_IF_ERROR(getString(j, "log_path", s.log_path, false));
  RETURN_IF_ERROR(getString(j, "bundle", s.bundle, false));
  RETURN_IF_ERROR(getBool(j, "tty", s.tty));
  return s;
}

Json toJson(const ExecSpec& s) {
  return {{"id", s.id}, {"argv", s.argv}, {"timeout_s", s.timeout_s}, {"env", s.env}};
}

StatusOr<ExecSpec> execSpecFromJson(const Json& j) {
  RETURN_IF_ERROR(requireObject(j, "execSync"));
  ExecSpec s;
  RETURN_IF_ERROR(getString(j, "id", s.id, true));
  RETURN_IF_ERROR(getStringArray(j, "argv", s.argv));
  RETURN_IF_ERROR(getInt(j, "timeout_s", s.timeout_s));
  RETURN_IF_ERROR(getStringArray(j, "env", s.env));
  if (s.argv.empty()) return invalidArgument("execSync: \"argv\" must name the command to run");
  if (s.timeout_s < 0) return invalidArgument("execSync: \"timeout_s\" must be >= 0");
  return s;
}

Json toJson(const ExecStreamSpec& s) {
  return {{"id", s.id},   {"argv", s.argv},     {"env", s.env},      {"tty", s.tty},
          {"stdin", s.attach_stdin}, {"stdout", s.attach_stdout}, {"stderr", s.attach_stderr}};
}

StatusOr<ExecStreamSpec> execStreamSpecFromJson(const Json& j) {
  RETURN_IF_ERROR(requireObject(j, "execStream"));
  ExecStreamSpec s;
  RETURN_IF_ERROR(getString(j, "id", s.id, true));
  RETURN_IF_ERROR(getStringArray(j, "argv", s.argv));
  RETURN_IF_ERROR(getStringArray(j, "env", s.env));
  RETURN_IF_ERROR(getBool(j, "tty", s.tty));
  RETURN_IF_ERROR(getBool(j, "stdin", s.attach_stdin));
  RETURN_IF_ERROR(getBool(j, "stdout", s.attach_stdout));
  RETURN_IF_ERROR(getBool(j, "stderr", s.attach_stderr));
  if (s.argv.empty()) return invalidArgument("execStream: \"argv\" must name the command to run");
  if (!s.tty && !s.attach_stdin && !s.attach_stdout && !s.attach_stderr) {
    return invalidArgument("execStream: at least one of \"tty\", \"stdin\", \"stdout\", \"stderr\" "
                           "must be set (nothing would be attached)");
  }
  return s;
}

Json toJson(const ExecStreamReply& r) {
  return {{"exec_id", r.exec_id}, {"tty", r.tty}, {"fds", r.fds}};
}

StatusOr<ExecStreamReply> execStreamReplyFromJson(const Json& j) {
  RETURN_IF_ERROR(requireObject(j, "execStream reply"));
  ExecStreamReply r;
  int64_t id = 0;
  RETURN_IF_ERROR(getInt(j, "exec_id", id));
  r.exec_id = static_cast<uint64_t>(id);
  RETURN_IF_ERROR(getBool(j, "tty", r.tty));
  RETURN_IF_ERROR(getStringArray(j, "fds", r.fds));
  return r;
}

Json toJson(const AttachSpec& s) {
  return {{"id", s.id}, {"stdin", s.attach_stdin}, {"stdout", s.attach_stdout}, {"stderr", s.attach_stderr}};
}

StatusOr<AttachSpec> attachSpecFromJson(const Json& j) {
  RETURN_IF_ERROR(requireObject(j, "attach"));
  AttachSpec s;
  RETURN_IF_ERROR(getString(j, "id", s.id, true));
  RETURN_IF_ERROR(getBool(j, "stdin", s.attach_stdin));
  RETURN_IF_ERROR(getBool(j, "stdout", s.attach_stdout));
  RETURN_IF_ERROR(getBool(j, "stderr", s.attach_stderr));
  if (!s.attach_stdin && !s.attach_stdout && !s.attach_stderr) {
    return invalidArgument("attach: at least one of \"stdin\", \"stdout\", \"stderr\" must be set");
  }
  return s;
}

Json toJson(const AttachReply& r) {
  return {{"attach_id", r.attach_id}, {"tty", r.tty}, {"fds", r.fds}};
}

StatusOr<AttachReply> attachReplyFromJson(const Json& j) {
  RETURN_IF_ERROR(requireObject(j, "attach reply"));
  AttachReply r;
  int64_t id = 0;
  RETURN_IF_ERROR(getInt(j, "attach_id", id));
  r.attach_id = static_cast<uint64_t>(id);
  RETURN_IF_ERROR(getBool(j, "tty", r.tty));
  RETURN_IF_ERROR(getStringArray(j, "fds", r.fds));
  return r;
}

Json toJson(const ExecResult& r) {
  return {{"stdout_b64", base64Encode(r.stdout_data)},
          {"stderr_b64", base64Encode(r.stderr_data)},
          {"exit_code", r.exit_code},
          {"timed_out", r.timed_out},
          {"truncated", r.truncated}};
}

StatusOr<ExecResult> execResultFromJson(const Json& j) {
  RETURN_IF_ERROR(requireObject(j, "exec result"));
  ExecResult r;
  std::string out, err;
  RETURN_IF_ERROR(getString(j, "stdout_b64", out, false));
  RETURN_IF_ERROR(getString(j, "stderr_b64", err, false));
  ASSIGN_OR_RETURN(r.stdout_data, withContext(base64Decode(out), "exec result stdout"));
  ASSIGN_OR_RETURN(r.stderr_data, withContext(base64Decode(err), "exec result stderr"));
  RETURN_IF_ERROR(getInt(j, "exit_code", r.exit_code));
  RETURN_IF_ERROR(getBool(j, "timed_out", r.timed_out));
  RETURN_IF_ERROR(getBool(j, "truncated", r.truncated));
  return r;
}

}  // namespace berth::shim
