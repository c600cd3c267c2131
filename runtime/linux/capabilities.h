// Process capabilities via libcap: all five sets from process.capabilities
// (bounding, effective, inheritable, permitted, ambient).
// Thread-safety: apply* affect the calling thread only.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "runtime/oci/config.h"

namespace spdlog {
class logger;
}

namespace berth::caps {

// Every capability name libcap and the running kernel know ("CAP_CHOWN", …), in
// number order.
std::vector<std::string> knownCapabilities();

// Capability number for "CAP_X" (case-insensitive, "CAP_" prefix required).
// Errors: InvalidArgument "unknown capability \"CAP_FOO\"".
StatusOr<int> fromName(const std::string& name);

// Validates every name in every set.
Status validate(const oci::Capabilities& caps);

// Drops from the bounding set every capability not in caps.bounding. Capabilities
// that this process's own bounding set lacks cannot be granted: they are removed from
// every set with a warning on `logger` naming them (e.g. CAP_SYS_RESOURCE on hosts
// whose runtime runs without it). Call while still uid 0, before setuid.
Status dropBounding(const oci::Capabilities& caps, spdlog::logger& logger);

// Sets effective, permitted and inheritable, then raises ambient. Call after setuid
// with PR_SET_KEEPCAPS (or as uid 0). Missing sets mean empty.
Status applySets(const oci::Capabilities& caps, spdlog::logger& logger);

}  // namespace berth::caps
