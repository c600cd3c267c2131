// Helpers for the CNI runtime tests: temp dirs and fake plugins. A fake plugin is a
// real /bin/sh executable speaking the CNI protocol: it records every call (sequence
// number, CNI_* environment, stdin) under a record dir and answers with the shell
// snippet given for the command.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/json.h"

namespace berth::cni::testing {

// A mkdtemp directory under /tmp, removed (recursively) on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Writes `content` to `path` (creating parent dirs) with `mode`.
void writeFile(const std::string& path, const std::string& content, int mode = 0644);

// Shell snippets for each command; empty means "exit 0 without output".
struct FakeBehavior {
  std::string add = {};
  std::string del = {};
  std::string check = {};
  std::string status = {};
  std::string gc = {};
};

// Snippet printing `doc` on stdout and exiting 0.
std::string printJson(const json::Json& doc);
// Snippet printing an error object and exiting 1.
std::string failWith(int code, const std::string& msg, const std::string& details = "");

// Writes the fake plugin `name` into `bin_dir`, recording into `record_dir`.
void writeFakePlugin(const std::string& bin_dir, const std::string& name,
                     const std::string& record_dir, const FakeBehavior& behavior);

struct RecordedCall {
  int seq = 0;
  std::string plugin;
  std::string command;
  json::Json stdin_conf;  // null when stdin was not JSON
  std::map<std::string, std::string> env;  // CNI_* variables
};

// Every recorded call, in order.
std::vector<RecordedCall> recordedCalls(const std::string& record_dir);

// "plugin:COMMAND" for each call, in order (for compact assertions).
std::vector<std::string> callSummary(const std::string& record_dir);

}  // namespace berth::cni::testing
