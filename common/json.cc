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

std::string dump(const Json& value) {
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace berth::json
