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
// number order (index == capability number). Thread-safe.
std::vector<std::string> knownCapabilities();

// Capability number for "CAP_X" (case-insensitive, "CAP_" prefix required; bare numbers
// and "all" are refused). A name libcap knows but the running kernel lacks is accepted
// here; dropBounding()/applySets() then treat it as unavailable. Thread-safe.
// Errors: InvalidArgument "unknown capability \"CAP_FOO\"; use a name like CAP_CHOWN …".
StatusOr<int> fromName(const std::string& name);

// Validates every name in every set (runtime-spec config.md "process.capabilities").
// Errors: InvalidArgument naming the set, e.g.
// `process.capabilities.bounding: unknown capability "CAP_FOO"; …`. Thread-safe.
Status validate(const oci::Capabilities& caps);

// Drops from the bounding set every capability not in caps.bounding. Capabilities
// that this process's own bounding set lacks cannot be granted: they are removed from
// every set with one warning on `logger` naming them (e.g. CAP_SYS_RESOURCE on hosts
// whose runtime runs without it). Call while still uid 0, before setuid.
// Errors: InvalidArgument for unknown names; cap_drop_bound's errno (EPERM without
// CAP_SETPCAP) naming the capability.
Status dropBounding(const oci::Capabilities& caps, spdlog::logger& logger);

// Sets effective, permitted and inheritable, then clears and raises ambient. Call after
// setuid with PR_SET_KEEPCAPS (or as uid 0). Missing sets mean empty. Requested
// capabilities this process does not hold in its permitted set are dropped from every
// set (quietly when dropBounding() already warned because the bounding set lacks them,
// with a warning otherwise). An ambient capability not in both permitted and
// inheritable is skipped with a warning (as runc and crun do).
// Errors: InvalidArgument when effective is not within permitted, or inheritable names
// a capability outside the bounding set (the kernel would refuse with EPERM); capset's
// errno otherwise.
Status applySets(const oci::Capabilities& caps, spdlog::logger& logger);

}  // namespace berth::caps
