// What berthctl's command files share: the global flags, the lazily built CRI client,
// and the registration functions that add each command group to the CLI11 app.
// A command's callback stores its action in Context::action; main.cc runs it after
// parsing, prints its error as "berthctl: <message>" and exits 1.
//
// Thread-safety: single-threaded CLI.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "common/status.h"
#include "ctl/client.h"
#include "ctl/output.h"

namespace berth::ctl {

class Context {
 public:
  GlobalFlags flags;
  std::function<Status()> action;
  int exit_code = 0;  // set by commands whose exit code is not just ok/error (exec)

  // The client for the resolved endpoints, built on first use. Errors: as
  // resolveEndpoints() and CriClient::create().
  StatusOr<CriClient*> client();

  // The deadline of calls that do work on the node (runp, create, start, stop, rm...):
  // --timeout when given on the command line, else at least 4 minutes (kubelet's
  // runtime request timeout), plus `extra` (a stop's grace period).
  std::chrono::seconds workTimeout(std::chrono::seconds extra = std::chrono::seconds(0));

 private:
  std::unique_ptr<CriClient> client_;
};

// Adds `-o/--output` to `cmd` storing into `value` ("json", "yaml" or "table").
void addOutputFlag(CLI::App* cmd, std::string& value, const std::string& default_value);

// The current time in ns since the epoch.
int64_t nowNs();

// Wraps a command function as the action of `cmd`.
void setAction(CLI::App* cmd, Context& ctx, Status (*fn)(Context&));

// Prints `value` as JSON or YAML per `format` (kTable prints JSON), with a newline.
void printDocument(const OrderedJson& value, OutputFormat format);

// Parses "key=value" label selectors. Errors: InvalidArgument naming the bad one.
StatusOr<std::map<std::string, std::string>> parseLabels(const std::vector<std::string>& labels);

// version, info, runtime-config (cmd_runtime.cc).
void addRuntimeCommands(CLI::App& app, Context& ctx);
// pull, images, inspecti, rmi, imagefsinfo, import (cmd_images.cc).
void addImageCommands(CLI::App& app, Context& ctx);
// runp, stopp, rmp, pods, inspectp, statsp (cmd_pods.cc).
void addPodCommands(CLI::App& app, Context& ctx);
// create, start, stop, rm, ps, inspect, exec, stats (cmd_containers.cc).
void addContainerCommands(CLI::App& app, Context& ctx);
// logs (cmd_logs.cc).
void addLogsCommand(CLI::App& app, Context& ctx);

}  // namespace berth::ctl
