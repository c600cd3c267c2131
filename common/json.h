// JSON helpers over nlohmann-json that turn its exceptions into Status.
// Thread-safety: pure functions, thread-safe.
#pragma once

#include <map>
#include <string>
#include <vector>
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

// Optional members of a JSON object, where a missing key and JSON null both mean
// "absent" (as Docker writes "Env": null): an empty value is returned. A member of
// another type is InvalidArgument naming the key ("\"Env\" must be an array of strings").
StatusOr<std::string> optString(const Json& obj, const char* key);
StatusOr<std::vector<std::string>> optStringArray(const Json& obj, const char* key);
StatusOr<std::map<std::string, std::string>> optStringMap(const Json& obj, const char* key);

// Serialises compactly (no spaces), as runc prints state.
std::string dump(const Json& value);

}  // namespace berth::json
