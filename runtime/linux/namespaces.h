// Linux namespaces for a container (runtime-spec config-linux.md "Namespaces",
// "User namespace mappings"): which ones to create, which to join by path, and the
// uid/gid maps of a new user namespace.
// Thread-safety: setns/unshare affect the calling thread; call only from the
// single-threaded runtime process.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "common/status.h"
#include "common/unique_fd.h"
#include "runtime/oci/config.h"

namespace berth::ns {

// A namespace to join: the opened fd and its CLONE_NEW* type.
struct JoinTarget {
  std::string type;    // OCI type ("network", …)
  std::string path;    // where it came from, for messages
  int flag = 0;        // CLONE_NEW*
  UniqueFd fd;
};

struct Plan {
  int create_flags = 0;             // CLONE_NEW* of namespaces to create (without USER)
  bool create_user = false;         // a new user namespace
  std::vector<JoinTarget> join;     // user first, mount last
};

// Builds the plan from linux.namespaces, opening every path now (before any setns
// changes what paths mean). Errors: InvalidArgument for unknown types; NotFound /
// PermissionDenied naming "linux.namespaces[i].path" when a path cannot be opened;
// InvalidArgument when a path is not a namespace of the stated type.
StatusOr<Plan> makePlan(const std::vector<oci::Namespace>& namespaces);

// Plan for joining every namespace of a running process (for exec): for each type in
// `types`, opens /proc/<pid>/ns/<name> when it differs from the caller's own.
StatusOr<Plan> planJoinProcess(pid_t pid, const std::vector<std::string>& types);

// setns() into every namespace of plan.join, in order. Errors name the namespace path.
Status joinAll(Plan& plan);

// Writes /proc/<pid>/uid_map and gid_map ("containerID hostID size" lines).
// Errors name the file and suggest checking the mappings against /etc/subuid.
Status writeIdMappings(pid_t pid, const std::vector<oci::IdMapping>& uid_mappings,
                       const std::vector<oci::IdMapping>& gid_mappings);

}  // namespace berth::ns
