// Lifecycle hooks (runtime-spec config.md "POSIX-platform Hooks", runtime.md
// "Lifecycle"): each hook is executed with its args and env, the container state JSON
// on stdin, and an optional timeout in seconds after which it is killed.
// Thread-safety: forks; call only from the single-threaded runtime process.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "runtime/oci/config.h"

namespace berth::hooks {

// Runs one hook to completion. `kind` names the hook list for messages
// ("prestart"), `index` its position. Errors: the hook could not start, exited
// non-zero, was killed by a signal or timed out; the message names the hook, its
// path, and what it printed on stdout/stderr (up to 4 KiB).
Status runHook(const oci::Hook& hook, const std::string& state_json, const std::string& kind,
               size_t index);

// Runs `list` in order, stopping at the first failure.
Status runHooks(const std::vector<oci::Hook>& list, const std::string& state_json,
                const std::string& kind);

}  // namespace berth::hooks
