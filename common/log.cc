#include "common/log.h"

#include <mutex>

#include <nlohmann/json.hpp>
#include <spdlog/details/fmt_helper.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

namespace berth::log {
namespace {

// Formats a message as one runc-style JSON line.
class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    using namespace std::chrono;
    auto t = msg.time;
    auto secs = time_point_cast<seconds>(t);
    auto nanos = duration_cast<nanoseconds>(t - secs).count();
    std::time_t tt = system_clock::to_time_t(t);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char ts[64];
    size_t n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof(ts) - n, ".%09lldZ", static_cast<long long>(nanos));
    const char* level = "info";
    switch (msg.level) {
      case spdlog::level::trace:
      case spdlog::level::debug: level = "debug"; break;
      case spdlog::level::warn: level = "warning"; break;
      case spdlog::level::err: level = "error"; break;
      case spdlog::level::critical: level = "fatal"; break;
      default: break;
    }
    nlohmann::json line = {{"level", level},
                           {"msg", std::string(msg.payload.data(), msg.payload.size())},
                           {"time", ts}};
    std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    text += '\n';
    dest.append(text.data(), text.data() + text.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

std::mutex g_mu;
spdlog::sink_ptr g_sink;
spdlog::level::level_enum g_level = spdlog::level::info;

spdlog::sink_ptr defaultSink() {
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  sink->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%n] %v");
  return sink;
}

}  // namespace

Status init(const Options& options) {
  std::lock_guard<std::mutex> lock(g_mu);
  spdlog::sink_ptr sink;
  if (options.file.empty()) {
    sink = defaultSink();
  } else {
    try {
      sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(options.file, false);
    } catch (const spdlog::spdlog_ex& e) {
      return absl::InvalidArgumentError(
          strCat("open log file \"", options.file, "\": ", e.what()));
    }
  }
  if (options.format == Format::kJson) {
    sink->set_formatter(std::make_unique<JsonFormatter>());
  } else if (!options.file.empty()) {
    sink->set_pattern("%Y-%m-%dT%H:%M:%S.%e %l [%n] %v");
  }
  g_sink = sink;
  g_level = options.level;
  spdlog::apply_all([&](std::shared_ptr<spdlog::logger> l) {
    l->sinks().clear();
    l->sinks().push_back(g_sink);
    l->set_level(g_level);
  });
  return absl::OkStatus();
}

std::shared_ptr<spdlog::logger> get(const std::string& component) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (auto existing = spdlog::get(component)) return existing;
  if (!g_sink) g_sink = defaultSink();
  auto logger = std::make_shared<spdlog::logger>(component, g_sink);
  logger->set_level(g_level);
  logger->flush_on(spdlog::level::trace);
  spdlog::register_logger(logger);
  return logger;
}

StatusOr<spdlog::level::level_enum> parseLevel(const std::string& level) {
  if (level == "trace") return spdlog::level::trace;
  if (level == "debug") return spdlog::level::debug;
  if (level == "info") return spdlog::level::info;
  if (level == "warn" || level == "warning") return spdlog::level::warn;
  if (level == "error") return spdlog::level::err;
  return invalidArgument("unknown log level \"", level,
                         "\": use one of trace, debug, info, warn, error");
}

}  // namespace berth::log
