#include "common/json.h"

#include "common/fs.h"

namespace berth::json {

StatusOr<Json> parse(std::string_view text, std::string_view what) {
  try {
    return Json::parse(text.begin(), text.end());
  } catch (const Json::exception& e) {
    return invalidArgument("parse ", what, ": ", e.what());
  }
}

StatusOr<Json> parseFile(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, fs::readFile(path));
  return parse(text, strCat("\"", path, "\""));
}

StatusOr<std::string> optString(const Json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::string();
  if (!it->is_string()) return invalidArgument("\"", key, "\" must be a string");
  return it->get<std::string>();
}

StatusOr<std::vector<std::string>> optStringArray(const Json& obj, const char* key) {
  std::vector<std::string> out;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return out;
  if (!it->is_array()) return invalidArgument("\"", key, "\" must be an array of strings");
  for (const Json& v : *it) {
    if (!v.is_string()) return invalidArgument("\"", key, "\" must be an array of strings");
    out.push_back(v.get<std::string>());
  }
  return out;
}

StatusOr<std::map<std::string, std::string>> optStringMap(const Json& obj, const char* key) {
  std::map<std::string, std::string> out;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return out;
  if (!it->is_object()) return invalidArgument("\"", key, "\" must be an object of strings");
  for (auto& [k, v] : it->items()) {
    if (!v.is_string()) return invalidArgument("\"", key, "\".\"", k, "\" must be a string");
    out[k] = v.get<std::string>();
  }
  return out;
}

std::string dump(const Json& value) {
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace berth::json
