// Logging: spdlog, one logger per component ("runtime", "cri", "cni", …). Output goes
// to stderr by default, or to a file in text or runc-compatible JSON lines
// ({"level":"info","msg":"…","time":"2026-01-02T03:04:05.123456789Z"}), which is what
// containerd and CRI-O parse from an OCI runtime's --log file.
//
// Thread-safety: init() must be called once, before other threads start; the loggers
// themselves are thread-safe (spdlog _mt sinks).
#pragma once

#include <memory>
#include <string>

#include <spdlog/spdlog.h>

#include "common/status.h"

namespace berth::log {

enum class Format { kText, kJson };

struct Options {
  std::string file;                 // empty: stderr
  Format format = Format::kText;
  spdlog::level::level_enum level = spdlog::level::info;
};

// Configures the sink shared by every component logger. Errors: the file cannot be
// opened for appending (path and errno in the message).
Status init(const Options& options);

// Returns the logger for `component`, creating it on the shared sink if needed.
std::shared_ptr<spdlog::logger> get(const std::string& component);

// Parses "debug", "info", "warn"/"warning", "error". Errors: InvalidArgument naming
// the accepted values.
StatusOr<spdlog::level::level_enum> parseLevel(const std::string& level);

}  // namespace berth::log
