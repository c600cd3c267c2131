// Running one CNI plugin (SPEC.md "Section 2: Execution Protocol", "Section 4: Plugin
// Delegation", "Section 5: Error"): the plugin binary is found in the bin dirs, run
// with the CNI_* environment and its per-plugin configuration on stdin; stdout carries
// the result (success) or an error object {cniVersion, code, msg, details}.
//
// Thread-safety: all functions are thread-safe. Plugins are started with posix_spawn
// (no code runs between fork and exec), so a multi-threaded daemon may call them from
// any thread; the plugin inherits the calling thread's network namespace.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cni/conflist.h"
#include "common/json.h"
#include "common/status.h"

namespace berth::cni {

// SPEC.md "Error" well-known codes.
enum ErrorCode : int {
  kErrIncompatibleVersion = 1,
  kErrUnsupportedField = 2,
  kErrUnknownContainer = 3,
  kErrInvalidEnvironment = 4,
  kErrIo = 5,
  kErrDecode = 6,
  kErrInvalidNetworkConfig = 7,
  kErrTryAgainLater = 11,
  kErrPluginNotAvailable = 50,
  kErrPluginNotAvailableLimited = 51,
};

// The CNI error code a plugin reported, carried by the Status made by execPlugin(), or
// 0 if the status carries none (OK, or the failure was not a plugin error object).
int cniErrorCode(const Status& status);

// Returns `status` carrying CNI error `code` (readable with cniErrorCode()); message and
// absl code are kept. Plugins (cni/plugin/skel.h) use it to choose the code they report.
Status withCniErrorCode(Status status, int code);

// Maps a plugin error to a Status: code 1 FailedPrecondition, 2/4/6/7 InvalidArgument,
// 3 NotFound, 5 Internal, 11/50/51 Unavailable, others Unknown. The message reads
// `CNI plugin "<type>" <COMMAND> failed (code N): <msg>[: <details>]` and the code is
// kept (cniErrorCode()).
Status pluginError(std::string_view type, std::string_view command, int code,
                   std::string_view msg, std::string_view details);

// Finds `type` in `bin_dirs` (first match, must be an executable regular file).
// Errors: NotFound `CNI plugin "bridge" not found in /opt/cni/bin; install it there or
// pass the directory holding it with --cni-bin-dir`.
StatusOr<std::string> findPlugin(std::string_view type, const std::vector<std::string>& bin_dirs);

// One invocation's environment (SPEC.md "Parameters").
struct PluginEnv {
  std::string command;       // ADD, DEL, CHECK, VERSION, STATUS, GC
  std::string container_id;  // CNI_CONTAINERID (omitted when empty)
  std::string netns;         // CNI_NETNS (omitted when empty: DEL of a vanished netns)
  std::string ifname;        // CNI_IFNAME (omitted when empty)
  std::string args;          // CNI_ARGS, "K=V;K=V" (omitted when empty)
  std::vector<std::string> bin_dirs;  // CNI_PATH, joined with ':'
};

// Capability arguments a runtime may pass (CONVENTIONS.md "Well-known capabilities").
// Keys are capability names ("portMappings", "bandwidth", "ips", "mac", "dns",
// "ipRanges", ...); values are the JSON the convention defines.
using CapabilityArgs = std::map<std::string, json::Json>;

// Builds the configuration a plugin reads on stdin (SPEC.md "Deriving execution
// configuration from plugin configuration"): the plugin object with the list's "name"
// and "cniVersion" injected, "runtimeConfig" holding the capability args the plugin
// declares (and only those; no key when none applies), and "prevResult" when given
// (JSON null means none).
json::Json pluginStdinConfig(const NetworkConfList& list, const PluginConf& plugin,
                             const CapabilityArgs& capability_args,
                             const json::Json& prev_result);

// What a finished plugin run gave.
struct PluginOutput {
  json::Json result;   // parsed stdout (null when stdout was empty)
  std::string stderr_text;
};

// Runs the plugin binary `path` (named `type` in errors) with `env` and `stdin_data`,
// killing it after `timeout`. On exit status 0 the stdout is parsed as JSON (empty
// stdout gives a null result). Errors: a plugin error object on stdout becomes
// pluginError(); a non-zero exit without one is Unknown with the exit status and
// stderr; a timeout is DeadlineExceeded; spawn failures carry errno.
StatusOr<PluginOutput> execPlugin(const std::string& path, std::string_view type,
                                  const PluginEnv& env, std::string_view stdin_data,
                                  std::chrono::milliseconds timeout);

}  // namespace berth::cni
