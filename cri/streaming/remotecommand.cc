#include "cri/streaming/remotecommand.h"

#include <nlohmann/json.hpp>

#include "common/strings.h"

namespace berth::streaming {

std::optional<std::string> chooseProtocol(std::string_view offered, const std::vector<std::string_view>& supported) {
  for (const std::string& p : split(std::string(offered), ',', true)) {
    std::string name(trim(p));
    for (std::string_view s : supported) {
      if (name == s) return name;
    }
  }
  return std::nullopt;
}

std::string exitStatusJson(int exit_code) {
  if (exit_code == 0) return R"({"metadata":{},"status":"Success"})";
  nlohmann::json j = {
      {"metadata", nlohmann::json::object()},
      {"status", "Failure"},
      {"message", strCat("command terminated with non-zero exit code: error executing command [], exit code ",
                         exit_code)},
      {"reason", "NonZeroExitCode"},
      {"details", {{"causes", {{{"reason", "ExitCode"}, {"message", std::to_string(exit_code)}}}}}}};
  return j.dump();
}

std::string errorStatusJson(std::string_view message) {
  nlohmann::json j = {{"metadata", nlohmann::json::object()},
                      {"status", "Failure"},
                      {"message", std::string(message)},
                      {"reason", "InternalError"},
                      {"code", 500}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

StatusOr<TerminalSize> parseTerminalSize(std::string_view text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return invalidArgument("resize message is not a JSON object");
  TerminalSize size;
  for (auto [key, field] : {std::pair{"Width", &size.width}, std::pair{"Height", &size.height}}) {
    auto it = j.find(key);
    if (it == j.end()) continue;
    if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() > 65535) {
      return invalidArgument("resize message: \"", key, "\" must be an integer 0..65535");
    }
    *field = static_cast<uint16_t>(it->get<int64_t>());
  }
  return size;
}

}  // namespace berth::streaming
