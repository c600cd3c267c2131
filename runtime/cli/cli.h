// berth-runtime's command line (runc-compatible): each command registers itself on
// the CLI11 app; the logic lives in the runtime library (runtime/runtime.h).
#pragma once

#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "common/status.h"
#include "runtime/runtime.h"

namespace berth::cli {

struct GlobalOptions {
  std::string root = "/run/berth-runtime";
  std::string log;
  std::string log_format = "text";
  bool debug = false;
  bool systemd_cgroup = false;
  bool cgroup_strict = false;
  bool rootless_flag = false;
  std::string rootless = "auto";
  std::string criu;
};

// What a command's callback produced: the process exit code (the error, if any, is
// printed and logged by main).
struct Outcome {
  Status status;
  int exit_code = 0;
};

// Shared state handed to every command: global options, the result slot, and a
// factory for the Runtime (opened lazily so `spec`/`features` need no state dir).
struct Context {
  GlobalOptions global;
  Outcome outcome;
  StatusOr<runtime::Runtime> openRuntime() const;
};

void addLifecycleCommands(CLI::App& app, Context& ctx);  // create start run kill delete state pause resume
void addExecCommands(CLI::App& app, Context& ctx);       // exec ps
void addInfoCommands(CLI::App& app, Context& ctx);       // list features spec
void addEventsCommand(CLI::App& app, Context& ctx);      // events

// Parses "KILL", "SIGKILL", "9" into a signal number. Errors: InvalidArgument.
StatusOr<int> parseSignal(const std::string& text);

}  // namespace berth::cli
