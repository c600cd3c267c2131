// The image configuration (OCI image-spec config.md, media type
// application/vnd.oci.image.config.v1+json, and Docker's
// application/vnd.docker.container.image.v1+json, which has the same fields), and the
// rules that turn it plus a CRI ContainerConfig into a container's process: command
// (Entrypoint/Cmd vs command/args), environment, working directory, user and stop
// signal, as kubelet expects and containerd's CRI plugin implements them.
//
// Thread-safety: value types and pure functions, thread-safe; resolveUser() reads
// files under the given rootfs and is safe to call concurrently.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace berth::image {

// config.md "config": the execution defaults.
struct ContainerDefaults {
  std::string user;                     // User: "", "name", "uid", "name:group", "uid:gid"
  std::vector<std::string> env;         // Env, "KEY=value"
  std::vector<std::string> entrypoint;  // Entrypoint
  std::vector<std::string> cmd;         // Cmd
  std::string workingDir;               // WorkingDir
  std::string stopSignal;               // StopSignal, e.g. "SIGQUIT"
  std::map<std::string, std::string> labels;  // Labels
  std::set<std::string> exposedPorts;   // ExposedPorts keys, "80/tcp"
  std::set<std::string> volumes;        // Volumes keys, "/data"
};

// config.md "history[]".
struct HistoryEntry {
  std::string created;    // RFC 3339
  std::string createdBy;  // created_by
  std::string author;
  std::string comment;
  bool emptyLayer = false;  // empty_layer: no entry in rootfs.diff_ids
};

struct ImageConfig {
  std::string architecture;  // required
  std::string os;            // required
  std::string variant;
  std::string osVersion;     // os.version
  std::string created;
  std::string author;
  ContainerDefaults config;
  std::vector<std::string> diffIds;  // rootfs.diff_ids, base layer first
  std::vector<HistoryEntry> history;
};

// Parses an image config blob. `what` names the image in errors.
// Errors: InvalidArgument "<what>: image config: ..." for malformed JSON, a missing
// architecture/os, rootfs.type other than "layers", a bad diff ID digest, or a field
// of the wrong JSON type (naming the field).
StatusOr<ImageConfig> parseImageConfig(std::string_view bytes, std::string_view what);

// The process command, by the CRI rule: when the container sets `command` it replaces
// the image Entrypoint and the image Cmd is dropped (args = command + container args);
// when it sets only `args`, they replace the image Cmd (image Entrypoint + args);
// when it sets neither, image Entrypoint + image Cmd.
// Errors: InvalidArgument `image <imageRef>: no command specified` when the result
// is empty.
StatusOr<std::vector<std::string>> mergeCommand(const ContainerDefaults& image,
                                                const std::vector<std::string>& command,
                                                const std::vector<std::string>& args,
                                                std::string_view imageRef);

// The process environment: the image Env first, then each container variable,
// replacing an image variable with the same key in place or appended otherwise
// (later container entries win over earlier ones). Image entries without "=" are kept
// as written.
std::vector<std::string> mergeEnv(const std::vector<std::string>& imageEnv,
                                  const std::vector<std::pair<std::string, std::string>>& containerEnv);

// The working directory: the container's, else the image's, else "/".
std::string mergeWorkingDir(std::string_view containerWorkingDir, const ContainerDefaults& image);

// The user a process runs as, with ids resolved in the image's root filesystem.
struct ResolvedUser {
  uint32_t uid = 0;
  uint32_t gid = 0;
  // The primary gid followed by the gids of every /etc/group entry listing the user
  // as a member (no duplicates), as `id` shows them inside the container.
  std::vector<uint32_t> additionalGids;
  std::string username;  // from /etc/passwd; empty when the uid has no entry
};

// Resolves an image User string ("", "name", "uid", "name:group", "uid:gid",
// "uid:group", "name:gid") through `<rootfs>/etc/passwd` and `<rootfs>/etc/group`,
// where `rootfs` is a directory on the host; symlinks are resolved with
// fs::secureJoin so they never lead out of `rootfs`. "" means root. A numeric uid
// without a passwd entry is allowed (gid 0 unless given); a numeric gid without a group
// entry is allowed. Missing passwd/group files count as empty.
// Errors: NotFound `user "<name>" not found in /etc/passwd of image <imageRef>` (and
// likewise for a group name); InvalidArgument for a malformed user string or an id
// out of range; errors reading the files, with their path.
StatusOr<ResolvedUser> resolveUser(const std::string& rootfs, std::string_view user,
                                   std::string_view imageRef);

// Parses a StopSignal: "" -> SIGTERM (15); "SIGQUIT", "QUIT", "sigquit", "3",
// "SIGRTMIN+3", "RTMAX-1". Returns the signal number (1..64).
// Errors: InvalidArgument `stop signal "<text>": unknown signal`.
StatusOr<int> parseStopSignal(std::string_view text);

}  // namespace berth::image
