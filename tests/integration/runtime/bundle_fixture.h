// Privileged integration-test fixture for OCI runtime CLIs (berth-runtime, runc, …).
//
// Every test gets a throwaway temp directory holding:
//   - a bundle whose rootfs is Debian's static busybox (/bin/busybox plus one symlink
//     per applet from `busybox --list`), /proc, /sys, /dev, /tmp and a minimal /etc;
//   - config.json generated from a default close to `runc spec` (terminal false), which
//     the test edits through Bundle::config before launching a container;
//   - a private runtime state directory passed as the global `--root`;
//   - files receiving the stdio of containers started with create + start.
// Each container gets a unique id and, unless the test sets its own, a unique
// cgroupsPath "/berth-itest/<id>". TearDown kills and force-deletes every container the
// test created (ignoring errors), reaps zombies, removes leftover cgroup directories of
// the "/berth-itest" subtree and deletes the temp directory, also after a failure.
//
// The runtime under test is $RUNTIME (a name looked up in PATH, or a path) or, when
// unset, the berth-runtime binary this suite was built with (BERTH_RUNTIME_BINARY).
// The test process makes itself a child subreaper so that container processes are
// reparented to it once `create` exits; waitForExit() then reports their exit status.
//
// Thread-safety: a fixture and its helpers are used by one test thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/status.h"
#include "common/unique_fd.h"

namespace berth::itest {

using Json = nlohmann::json;

// The result of one command run to completion (or killed at its timeout).
struct CmdResult {
  int exit_code = -1;        // exit status, or 128+signal when killed by a signal
  int term_signal = 0;       // signal that killed the command, 0 if it exited
  bool timed_out = false;    // the command was killed because it ran too long
  std::string out;           // captured stdout (empty when redirected to a file)
  std::string err;           // captured stderr
  // "exit 3, stdout: ..., stderr: ..." for assertion messages.
  std::string describe() const;
};

// How runCommand() connects and limits the command.
struct RunOptions {
  std::string stdin_data;                 // written to the command's stdin (pipe)
  int stdin_fd = -1;                      // or this fd as stdin (default /dev/null)
  int stdout_fd = -1;                     // if >= 0: stdout goes here, not captured
  int stderr_fd = -1;                     // if >= 0: stderr goes here, not captured
  std::chrono::milliseconds timeout{30000};
};

// Runs argv[0] (looked up in PATH) with argv, waits for it, captures stdout/stderr
// through pipes. Once the command has exited, only the output already in the pipes is
// read, so a detached grandchild holding the pipes open cannot block the caller.
CmdResult runCommand(const std::vector<std::string>& argv, const RunOptions& opts = {});

// The runtime binary under test: $RUNTIME or BERTH_RUNTIME_BINARY.
std::string runtimeBinary();
// True when $RUNTIME is unset, i.e. the berth-runtime built here is under test.
bool testingBerthRuntime();
// Capability mask (bit per CAP_* number) for names like "CAP_KILL". Unknown names abort
// the test via ADD_FAILURE and contribute no bit.
uint64_t capMask(const std::vector<std::string>& names);
// Inode number of a namespace link such as "/proc/self/ns/net" ("net:[4026531992]"),
// as the link text; empty when unreadable.
std::string nsLink(const std::string& path);

// One bundle directory: rootfs + config.json written on demand.
class Bundle {
 public:
  // Builds dir/rootfs from busybox and fills `config` with the default.
  // Errors: failing filesystem operations, busybox missing.
  static StatusOr<std::unique_ptr<Bundle>> create(const std::string& dir);

  // The default config.json (close to `runc spec`, terminal false) for `args`.
  static Json defaultConfig(const std::vector<std::string>& args);

  const std::string& dir() const { return dir_; }
  std::string rootfs() const { return dir_ + "/rootfs"; }
  // Sets process.args.
  void setArgs(const std::vector<std::string>& args) { config["process"]["args"] = args; }
  // Writes config.json (pretty printed).
  Status writeConfig() const;

  // The config written before each launch; tests edit it freely.
  Json config;
  // When true, linux.cgroupsPath is set to "/berth-itest/<id>" at each launch.
  bool auto_cgroups_path = true;

 private:
  explicit Bundle(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;
};

// Listens on a unix socket for a runtime's --console-socket and receives the pty
// master it sends (SCM_RIGHTS). The runtime's connect and send complete without us
// (listen backlog + socket buffer), so receiveMaster() may be called after the runtime
// command returned.
class ConsoleSocket {
 public:
  // Binds and listens at `path`. Errors: socket/bind/listen failures.
  static StatusOr<std::unique_ptr<ConsoleSocket>> listen(const std::string& path);
  ~ConsoleSocket();
  const std::string& path() const { return path_; }
  // Waits up to `timeout` for the runtime to connect and send the master fd.
  // Errors: DeadlineExceeded, or the message carried no fd.
  StatusOr<UniqueFd> receiveMaster(std::chrono::milliseconds timeout);

 private:
  ConsoleSocket(std::string path, UniqueFd fd) : path_(std::move(path)), fd_(std::move(fd)) {}
  std::string path_;
  UniqueFd fd_;
};

// Reads from a pty master until `until` appears in the accumulated output, EOF/EIO, or
// `timeout`. Returns what was read (with the terminal's \r\n line endings).
std::string readPty(int master, const std::string& until, std::chrono::milliseconds timeout);

// The fixture. Tests are TEST_F(RuntimeTest, …) or of a subclass.
class RuntimeTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // The default bundle made in SetUp.
  Bundle& bundle() { return *bundle_; }
  // Another bundle in the test's temp dir (e.g. for a second container).
  Bundle& newBundle();
  // The test's temp dir (mode 0755), removed in TearDown.
  const std::string& tmp() const { return tmp_; }
  // The runtime --root state directory.
  const std::string& stateRoot() const { return root_; }
  // A fresh container id "it<pid>-<n>-<hint>", registered for cleanup.
  std::string newId(const std::string& hint = "c");

  // Runs `<runtime> --root <root> <global...> <args...>` with captured stdio.
  CmdResult runtime(const std::vector<std::string>& args, const RunOptions& opts = {});
  // Like runtime() with extra global flags placed before the command.
  CmdResult runtimeWithGlobals(const std::vector<std::string>& globals,
                               const std::vector<std::string>& args,
                               const RunOptions& opts = {});

  // Writes b's config (with cgroupsPath for `id`) and runs `run --bundle <dir> <id>` in
  // the foreground, capturing the container's stdout/stderr with the runtime's.
  CmdResult run(Bundle& b, const std::string& id, const RunOptions& opts = {});
  // The same with the default bundle and `args` as process.args and a fresh id.
  CmdResult runArgs(const std::vector<std::string>& args);

  // Writes b's config and runs `create --bundle <dir> <id>` (plus `extra` flags before
  // the id) with the runtime's and the container's stdout/stderr redirected to files;
  // out/err of the result hold what the runtime itself wrote.
  CmdResult create(Bundle& b, const std::string& id,
                   const std::vector<std::string>& extra = {},
                   const std::vector<std::string>& globals = {});
  // create(), then ASSERT-style helper: fails the test and returns 0 if create failed;
  // otherwise returns the container pid from `state`.
  pid_t createOrFail(Bundle& b, const std::string& id);
  // create() + start(); returns the pid or 0 after a test failure.
  pid_t startOrFail(Bundle& b, const std::string& id);
  CmdResult start(const std::string& id) { return runtime({"start", id}); }
  CmdResult kill(const std::string& id, const std::string& sig, bool all = false);
  CmdResult del(const std::string& id, bool force = false);
  // `state <id>` parsed. Errors: the runtime failed (message = its stderr) or bad JSON.
  StatusOr<Json> state(const std::string& id);
  // The "status" field of `state`, or "" if state fails.
  std::string status(const std::string& id);
  // Polls `state` until status == want or timeout. Returns the last status seen.
  std::string waitForStatus(const std::string& id, const std::string& want,
                            std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // `exec <id> <args...>` in the foreground with `flags` before the id.
  CmdResult exec(const std::string& id, const std::vector<std::string>& args,
                 const std::vector<std::string>& flags = {}, const RunOptions& opts = {});

  // Waits for process `pid` (a container init reparented to us) to exit and reaps it.
  // Returns its wait status converted like a shell (code or 128+signal), or nullopt on
  // timeout. If `pid` is not our child, waits for it to vanish and returns -1.
  std::optional<int> waitForExit(pid_t pid,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // What a container created with create() wrote to stdout/stderr after `create`
  // returned.
  std::string containerStdout(const std::string& id);
  std::string containerStderr(const std::string& id);

  // True if the state root has an entry for `id`.
  bool stateEntryExists(const std::string& id) const;
  // Cgroup directories (across all hierarchies under /sys/fs/cgroup) named by the auto
  // cgroupsPath of `id` that exist now.
  std::vector<std::string> cgroupDirsFor(const std::string& id) const;
  // The auto cgroupsPath for `id`.
  static std::string cgroupsPathFor(const std::string& id) { return "/berth-itest/" + id; }

 private:
  void prepareConfig(Bundle& b, const std::string& id);
  void reapZombies(std::chrono::milliseconds budget);

  std::string tmp_;
  std::string root_;
  std::unique_ptr<Bundle> bundle_;
  std::vector<std::unique_ptr<Bundle>> extra_bundles_;
  std::vector<std::string> ids_;
  std::map<std::string, std::pair<off_t, off_t>> io_offsets_;  // id -> out/err offsets
  bool ready_ = false;
};

// Skips the current test (from a TEST_F body) unless the berth-runtime built here is
// under test.
#define SKIP_UNLESS_BERTH_RUNTIME()                                              \
  do {                                                                           \
    if (!::berth::itest::testingBerthRuntime())                                  \
      GTEST_SKIP() << "berth-runtime only (RUNTIME=" << ::getenv("RUNTIME") << ")"; \
  } while (0)

}  // namespace berth::itest
