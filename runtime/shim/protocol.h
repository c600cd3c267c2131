// The berth-shim wire protocol: newline-delimited JSON over a SOCK_STREAM unix socket
// (<state-dir>/shim.sock). Every line is one JSON object:
//
//   request   {"id":<uint>,"method":"<name>","params":{...}}
//   success   {"id":<uint>,"result":{...}}
//   failure   {"id":<uint>,"error":{"code":"<absl code name>","message":"..."}}
//   event     {"event":{"type":"exit"|"oom","container_id":"...","state":{...}}}
//
// The error code is the name of an absl::StatusCode ("NotFound", "FailedPrecondition",
// "InvalidArgument", …) so the client turns it back into the same Status. Replies can
// come out of order (stopContainer and execSync reply when the work is done, other
// requests on the same connection are answered meanwhile); match them by id. Events are
// sent only on connections that called `subscribe`. Several clients may be connected at
// once; a client disconnecting never affects containers.
//
// Methods (params -> result; see README.md for the full table):
//   createSandbox  SandboxSpec                 -> SandboxNamespaces
//   sandboxStatus  {}                          -> SandboxNamespaces (+ "created")
//   removeSandbox  {ns_dir?}                   -> {}
//   createContainer ContainerSpec              -> ContainerState
//   startContainer {id}                        -> ContainerState
//   state          {id}                        -> ContainerState
//   listContainers {}                          -> {"containers":[ContainerState...]}
//   kill           {id, signal}                -> {}
//   stopContainer  {id, timeout_s, stop_signal?} -> ContainerState (once exited)
//   deleteContainer {id, force?}               -> {}
//   reopenLog      {id}                        -> {}
//   execSync       ExecSpec                    -> ExecResult
//   execStream     ExecStreamSpec              -> ExecStreamReply + descriptors (SCM_RIGHTS
//                                                 on the reply line), later an "execExit"
//                                                 event on the same connection
//   attach         AttachSpec                  -> AttachReply + descriptors; the session
//                                                 lasts while the connection is open
//   subscribe      {}                          -> {"subscribed":true}, then events
//   shutdown       {force?}                    -> {} (the shim exits after replying)
//
// Byte strings that need not be UTF-8 (exec output) travel base64-encoded.
// Thread-safety: all functions are pure and thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/base64.h"
#include "common/status.h"

namespace berth::shim {

using Json = nlohmann::json;

// Longest accepted protocol line (requests and replies), in bytes. Exec output is
// capped well below this (kMaxExecOutput, base64 grows it by 4/3).
inline constexpr size_t kMaxLineBytes = 64u << 20;
// Cap on each of an execSync's stdout and stderr, in bytes; more is dropped and
// ExecResult::truncated is set.
inline constexpr size_t kMaxExecOutput = 16u << 20;

struct Request {
  uint64_t id = 0;
  std::string method;
  Json params = Json::object();
};

// One decoded reply line: `status` is OK and `result` set, or the error.
struct Response {
  uint64_t id = 0;
  Status status;
  Json result = Json::object();
};

// Serialises a request as one line (with the trailing '\n').
std::string encodeRequest(const Request& request);
// Parses one request line (without '\n'). Errors: InvalidArgument naming what is wrong
// ("request: missing \"method\"").
StatusOr<Request> decodeRequest(std::string_view line);

// Serialises a reply: {"id","result"} when `result` is OK, else {"id","error"}.
std::string encodeResponse(uint64_t id, const StatusOr<Json>& result);
// Serialises an event line {"event":...}.
std::string encodeEvent(const Json& event);

// What one line from the shim is: a reply or an event.
struct Incoming {
  bool is_event = false;
  Response response;  // when !is_event
  Json event;         // when is_event
};
// Parses one line from the shim. Errors: InvalidArgument for malformed lines.
StatusOr<Incoming> decodeIncoming(std::string_view line);

// "NotFound" for absl::StatusCode::kNotFound, etc.
std::string codeName(absl::StatusCode code);
// The inverse of codeName(); unknown names map to kUnknown.
absl::StatusCode codeFromName(std::string_view name);

// Byte strings are base64 (common/base64.h: berth::base64Encode / base64Decode).
using ::berth::base64Decode;
using ::berth::base64Encode;

// Serialises JSON compactly, replacing invalid UTF-8 instead of throwing.
std::string dumpJson(const Json& value);

// ---------------------------------------------------------------------------
// Typed params and results. to/from JSON never throws: from* return InvalidArgument
// naming the field.

// createSandbox params. host_* false means "a new namespace for the pod".
struct SandboxSpec {
  std::string ns_dir;                       // where to pin: <ns_dir>/{net,ipc,uts,pid}
  std::string hostname;                     // set in the new UTS namespace
  bool share_pid = false;                   // run the pause process, pin its PID ns
  bool host_network = false;
  bool host_ipc = false;
  bool host_uts = false;                    // absent in JSON means false
  std::map<std::string, std::string> sysctls;  // "net.ipv4.ip_forward" -> "1"
};
Json toJson(const SandboxSpec& spec);
StatusOr<SandboxSpec> sandboxSpecFromJson(const Json& j);

// createSandbox result: the pinned paths for config.json's linux.namespaces (empty
// when the pod uses the host's namespace of that type).
struct SandboxNamespaces {
  std::string ns_dir;
  std::string net;
  std::string ipc;
  std::string uts;
  std::string pid;                          // only with share_pid
  int pause_pid = 0;                        // host pid of the pause process, 0 if none
  bool pause_running = false;
};
Json toJson(const SandboxNamespaces& ns);
StatusOr<SandboxNamespaces> sandboxNamespacesFromJson(const Json& j);

// createContainer params.
struct ContainerSpec {
  std::string id;
  std::string bundle;                       // directory with config.json
  std::string log_path;                     // CRI log file; empty: output is discarded
  bool tty = false;                         // must match config.json process.terminal
  bool stdin = false;                       // keep a stdin pipe open (for attach)
  bool stdin_once = false;
};
Json toJson(const ContainerSpec& spec);
StatusOr<ContainerSpec> containerSpecFromJson(const Json& j);

// Container status as the shim sees it:
//
//   createContainer ──► created ──startContainer──► running ──(init exits)──► exited
//                          │                                                    ▲
//                          └────────────────(killed before start)───────────────┘
//   unknown: the shim lost track (never set by a live shim today; kept for clients).
enum class ContainerStatus { kCreated, kRunning, kExited, kUnknown };
std::string statusName(ContainerStatus status);
ContainerStatus statusFromName(std::string_view name);

struct ContainerState {
  std::string id;
  ContainerStatus status = ContainerStatus::kUnknown;
  int pid = 0;                              // host pid of the init (0 when unknown)
  int exit_code = 0;                        // exit status, 128+N for signal N
  int64_t created_at_ns = 0;                // unix time in nanoseconds, 0 = unset
  int64_t started_at_ns = 0;
  int64_t finished_at_ns = 0;
  std::string reason;                       // "Completed", "Error", "OOMKilled" once exited
  bool oom_killed = false;
  std::string oom_note;                     // why OOM detection is unavailable, if it is
  std::string log_path;
  std::string bundle;
  bool tty = false;
};
// Also writes started_at/finished_at/created_at as RFC3339Nano strings for humans.
Json toJson(const ContainerState& state);
StatusOr<ContainerState> containerStateFromJson(const Json& j);

// execSync params.
struct ExecSpec {
  std::string id;
  std::vector<std::string> argv;
  int64_t timeout_s = 0;                    // 0: no timeout
  std::vector<std::string> env;             // extra KEY=VALUE
};
Json toJson(const ExecSpec& spec);
StatusOr<ExecSpec> execSpecFromJson(const Json& j);

// execStream params: an interactive exec (kubectl exec -it), whose stdio the client
// drives itself through the descriptors the reply carries.
struct ExecStreamSpec {
  std::string id;
  std::vector<std::string> argv;
  std::vector<std::string> env;             // extra KEY=VALUE
  bool tty = false;                         // one pty: its master is the only descriptor
  bool attach_stdin = false;                // without a tty: a pipe's write end
  bool attach_stdout = true;                // without a tty: a pipe's read end
  bool attach_stderr = true;                // without a tty: a pipe's read end
};
Json toJson(const ExecStreamSpec& spec);
// Errors: InvalidArgument naming the field (no argv, tty with nothing attached).
StatusOr<ExecStreamSpec> execStreamSpecFromJson(const Json& j);

// execStream result. `fds` names the descriptors attached to the reply line, in order:
// "pty" (tty), else those of "stdin", "stdout", "stderr" that were asked for. The
// execExit event that follows: {"type":"execExit","exec_id":N,"exit_code":C}.
struct ExecStreamReply {
  uint64_t exec_id = 0;
  bool tty = false;
  std::vector<std::string> fds;
};
Json toJson(const ExecStreamReply& reply);
StatusOr<ExecStreamReply> execStreamReplyFromJson(const Json& j);

// attach params (kubectl attach): copies of the container's output from now on, and
// its stdin.
struct AttachSpec {
  std::string id;
  bool attach_stdin = false;   // needs a container created with stdin
  bool attach_stdout = true;
  bool attach_stderr = true;   // ignored with a tty (one output stream)
};
Json toJson(const AttachSpec& spec);
// Errors: InvalidArgument naming the field (no id, nothing attached).
StatusOr<AttachSpec> attachSpecFromJson(const Json& j);

// attach result. `fds` names the descriptors on the reply line, in order, among
// "stdin" (the container's stdin pipe, or with a tty the pty master, which also takes
// TIOCSWINSZ), "stdout" and "stderr" (sockets carrying output copies; EOF when the
// container exits). Output the client does not read fast enough is dropped for it,
// never for the log.
struct AttachReply {
  uint64_t attach_id = 0;
  bool tty = false;
  std::vector<std::string> fds;
};
Json toJson(const AttachReply& reply);
StatusOr<AttachReply> attachReplyFromJson(const Json& j);

struct ExecResult {
  std::string stdout_data;
  std::string stderr_data;
  int exit_code = 0;                        // 128+N when killed by signal N
  bool timed_out = false;
  bool truncated = false;                   // output beyond kMaxExecOutput was dropped
};
Json toJson(const ExecResult& result);
StatusOr<ExecResult> execResultFromJson(const Json& j);

// Formats unix nanoseconds as RFC3339 with 9 fractional digits in UTC
// ("2016-10-06T00:17:09.669794202Z"), as the CRI log format and CRI timestamps use.
std::string formatRfc3339Nano(int64_t unix_ns);

}  // namespace berth::shim
