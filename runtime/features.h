// The runtime-spec "features" document (opencontainers/runtime-spec features.md,
// specs-go/features): what `berth-runtime features` prints so that callers (containerd,
// CRI-O, the shim) can discover which parts of config.json this runtime implements.
// Thread-safety: pure; may read kernel facts (seccomp flags, capabilities).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace berth::runtime {

// The version string berth-runtime reports (features annotations, --version).
inline constexpr char kRuntimeVersion[] = "0.1.0";

// The mount option strings berth-runtime's mount-option parser understands, sorted
// (features "mountOptions").
const std::vector<std::string>& knownMountOptions();

// The features document, keys in the order of specs-go/features: ociVersionMin,
// ociVersionMax, hooks, mountOptions, linux {namespaces, capabilities, cgroup,
// seccomp, apparmor, selinux, intelRdt, mountExtensions}, annotations. Capabilities
// come from caps::knownCapabilities(), seccomp lists from berth::seccomp (actions,
// operators, archs, knownFlags, supportedFlags).
nlohmann::ordered_json featuresJson();

}  // namespace berth::runtime
