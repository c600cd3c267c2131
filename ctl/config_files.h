// crictl's pod and container config files (`crictl runp pod-config.json`, `crictl
// create POD container-config.json pod-config.json`), accepted unchanged: JSON or YAML
// documents of CRI v1 PodSandboxConfig / ContainerConfig with the proto field names
// crictl's samples use (snake_case: "log_directory", "log_path", "namespace_options";
// the lowerCamelCase JSON names are accepted too). Enums may be names or numbers
// ("network": 2 or "NODE"). YAML is converted to JSON first (plain scalars that read as
// numbers, booleans or null become those; quoted scalars stay strings). Unknown fields
// are errors naming the field, so a typo is not silently dropped.
//
// As crictl does, a pod config must have metadata.name and metadata.namespace (a
// missing metadata.uid is filled with a random UUID), and a container config must have
// metadata.name and image.image.
//
// Thread-safety: pure functions (the UUID comes from /proc/sys/kernel/random/uuid).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "cri/proto/api.pb.h"

namespace berth::ctl {

// Converts one YAML document to JSON. `what` names it in errors. Errors:
// InvalidArgument "parse <what>: line N: <yaml-cpp message>".
StatusOr<nlohmann::json> yamlToJson(const std::string& text, const std::string& what);

// Parses a config document: JSON when its first non-blank character is '{', else
// YAML. `what` names it in errors. Errors: InvalidArgument naming `what` and the
// protobuf JSON parser's message (e.g. the unknown field); the checks above.
StatusOr<runtime::v1::PodSandboxConfig> parsePodSandboxConfig(const std::string& text,
                                                              const std::string& what);
StatusOr<runtime::v1::ContainerConfig> parseContainerConfig(const std::string& text,
                                                            const std::string& what);

// Reads and parses a config file. Errors: NotFound "pod config \"<path>\" not found";
// parse errors as above.
StatusOr<runtime::v1::PodSandboxConfig> loadPodSandboxConfig(const std::string& path);
StatusOr<runtime::v1::ContainerConfig> loadContainerConfig(const std::string& path);

}  // namespace berth::ctl
