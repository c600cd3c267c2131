// The last steps before a container process execs (runtime-spec config.md "Process",
// "POSIX process", "Linux Process"; config-linux.md "Sysctl"): rlimits,
// oom_score_adj, sysctls, user and groups, capabilities, no_new_privs, seccomp,
// umask, cwd, and finding the executable. Used by the container init and by exec.
//
// Ordering follows runc so profiles written for runc behave the same:
//   seccomp (when noNewPrivileges is false, while still privileged) -> bounding set ->
//   setgroups/setgid/setuid with keep-caps -> capability sets -> cwd -> umask ->
//   no_new_privs -> seccomp (when noNewPrivileges is true) -> execve.
// Thread-safety: acts on the calling (single-threaded) process.
#pragma once

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/unique_fd.h"
#include "runtime/oci/config.h"

namespace spdlog {
class logger;
}

namespace berth::process {

// setrlimit for each process.rlimits entry. This host's root may not raise a hard
// limit (CAP_SYS_RESOURCE missing): such a limit is clamped to the current hard limit
// with a warning naming it. Errors: unknown type (InvalidArgument), other failures.
Status setRlimits(const std::vector<oci::Rlimit>& rlimits, spdlog::logger& logger);

// Writes /proc/<pid>/oom_score_adj. When the kernel refuses a value below the current
// one (no CAP_SYS_RESOURCE), keeps the current value and logs a warning (containerd's
// restrict_oom_score_adj behaviour).
Status setOomScoreAdj(pid_t pid, int value, spdlog::logger& logger);

// Writes each linux.sysctl key ("net.ipv4.ip_forward") to /proc/sys/... inside the
// container. Errors name the key.
Status writeSysctls(const std::map<std::string, std::string>& sysctl);

// Resolves args[0] like execvp with the container's PATH (from `env`, else the
// default PATH). Errors: NotFound "executable file \"x\" not found in $PATH (…)".
StatusOr<std::string> lookPath(const std::string& file, const std::vector<std::string>& env);

// Applies user, capabilities, cwd, umask, no_new_privs and (when it must come early)
// seccomp. On success returns the seccomp profile still to load right before execve
// (when noNewPrivileges is true), else nullopt.
StatusOr<std::optional<oci::Seccomp>> finalize(const oci::Process& process,
                                               const std::optional<oci::Seccomp>& seccomp,
                                               bool in_user_ns, spdlog::logger& logger);

// Loads a seccomp profile now (the late case of finalize). Returns the notify fd, if any.
StatusOr<UniqueFd> loadSeccomp(const oci::Seccomp& profile);

// execve(path, process.args, process.env). Only returns on failure.
Status exec(const std::string& path, const oci::Process& process);

}  // namespace berth::process
