// JSON helpers over nlohmann-json that turn its exceptions into Status.
// Thread-safety: pure functions, thread-safe.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace berth::json {

using Json = nlohmann::json;

// Parses `text`; `what` names the document in errors ("config.json"). Errors:
// InvalidArgument "parse <what>: <parser message at byte N>".
StatusOr<Json> parse(std::string_view text, std::string_view what);

// Reads and parses a file. Errors: NotFound / PermissionDenied from the read,
// InvalidArgument from the parse; both name the path.
StatusOr<Json> parseFile(const std::string& path);

// Serialises compactly (no spaces), as runc prints state.
std::string dump(const Json& value);

}  // namespace berth::json
