// The plugin side of the CNI protocol (SPEC.md "Section 2: Execution Protocol",
// "Section 5: Result Types"): what every berth plugin executable (berth-bridge,
// berth-ipam) does before and after its own work. It reads the CNI_* environment and
// the configuration on stdin, validates them for the command, answers VERSION itself,
// calls the plugin's handler and writes the result or the error object on stdout.
//
// Thread-safety: runPlugin() is meant to be called once from main(); the helpers are
// pure functions.
#pragma once

#include <cstdio>
#include <functional>
#include <map>
#include <set>
#include <utility>
#include <string>
#include <string_view>
#include <vector>

#include "cni/result.h"
#include "common/json.h"
#include "common/status.h"

namespace berth::cni::plugin {

// One invocation, as the runtime described it.
struct Request {
  std::string command;       // ADD, DEL, CHECK, STATUS, GC (VERSION never reaches a handler)
  std::string container_id;  // CNI_CONTAINERID
  std::string netns;         // CNI_NETNS ("" when the runtime omitted it: DEL of a gone netns)
  std::string ifname;        // CNI_IFNAME
  std::string args;          // CNI_ARGS as given
  std::map<std::string, std::string> cni_args;  // CNI_ARGS parsed ("K=V;K=V")
  std::vector<std::string> bin_dirs;            // CNI_PATH split at ':'
  json::Json config;         // the configuration from stdin (an object)
  std::string stdin_data;    // the same, as read (handed on to delegated plugins)
  std::string cni_version;   // config["cniVersion"], checked to be supported
};

// What a plugin does per command. `add` returns the success result, written by
// runPlugin() in the request's cniVersion; the others return OK or an error. A handler
// left empty answers "command not supported" (code 4 names CNI_COMMAND).
struct Handlers {
  std::function<StatusOr<Result>(const Request&)> add;
  std::function<Status(const Request&)> del;
  std::function<Status(const Request&)> check;
  std::function<Status(const Request&)> status;
  std::function<Status(const Request&)> gc;
};

// The CNI error code to report for `status`: the code set with withCniErrorCode()
// (cni/plugin_exec.h) when there is one, else by absl code — InvalidArgument 7,
// NotFound 3, Unavailable 11, FailedPrecondition/ResourceExhausted/others 999 (a
// plugin-specific "failed" code; SPEC.md reserves 0–99).
int errorCodeFor(const Status& status);

// The error object SPEC.md "Error" defines: {cniVersion, code, msg, details}. `msg` is
// a short summary chosen from the code; `details` the full status message.
json::Json errorJson(const Status& status, std::string_view cni_version);

// Parses CNI_ARGS ("IgnoreUnknown=1;K8S_POD_NAME=web"). Errors: InvalidArgument with
// code 4 for an entry without '=' or with an empty key.
StatusOr<std::map<std::string, std::string>> parseCniArgs(std::string_view args);

// True if `id` is a valid CNI_CONTAINERID (SPEC.md "Parameters": an alphanumeric
// character, then alphanumerics, '_', '.' or '-').
bool isValidContainerId(std::string_view id);

// Validates CNI_IFNAME as a Linux interface name (1–15 bytes, not "." or "..", no '/',
// ':' or whitespace). Errors: InvalidArgument with code 4 naming CNI_IFNAME.
Status validateIfname(std::string_view ifname);

// Builds the Request from `env` (a getenv-like lookup) and `stdin_data`, checking what
// the command requires (ADD/CHECK: CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME; DEL:
// CNI_CONTAINERID, CNI_IFNAME; CHECK needs cniVersion >= 0.4.0, STATUS and GC >= 1.1.0).
// Errors carry their CNI code: 4 (environment, naming each bad variable), 6 (stdin is
// not a JSON object), 7 (no "cniVersion"/"name"), 1 (unsupported cniVersion, listing
// the supported ones).
StatusOr<Request> parseRequest(const std::function<const char*(const char*)>& env,
                               std::string stdin_data);

// One attachment (SPEC.md "Attachment Parameters"): (CNI_CONTAINERID, CNI_IFNAME).
using Attachment = std::pair<std::string, std::string>;

// The still-valid attachments a GC request lists in "cni.dev/valid-attachments"
// (SPEC.md "GC"). Errors: InvalidArgument (code 7) naming the entry when the key is
// not a list of {containerID, ifname} objects; a missing key is an empty set.
StatusOr<std::set<Attachment>> validAttachments(const Request& request);

// Runs one plugin invocation end to end: reads stdin, parses the environment
// (std::getenv), answers VERSION with {cniVersion, supportedVersions}, dispatches the
// other commands to `handlers`, and writes the ADD result (in the request's version)
// or the error object to `out`. Returns the process exit status (0 or 1). Messages for
// humans go to stderr only.
int runPlugin(const Handlers& handlers, FILE* in = stdin, FILE* out = stdout);

}  // namespace berth::cni::plugin
