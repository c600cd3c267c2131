// The cgroup manager interface (youki's libcgroups habit): one interface for
// placement, resources, freeze, kill, stats and teardown, with a cgroupfs v2
// implementation (Fs2Manager) now and a systemd implementation later
// (--cgroup-driver systemd). Each controller's settings are applied to a path that
// tests point at a temp directory standing in for cgroupfs.
//
// Thread-safety: a Manager is used by one thread at a time.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/syscalls.h"
#include "runtime/oci/config.h"

namespace spdlog {
class logger;
}

namespace berth::cgroups {

// OOM and memory counters read from memory.events (absent = controller missing).
struct MemoryEvents {
  uint64_t low = 0, high = 0, max = 0, oom = 0, oom_kill = 0;
};

struct Stats {
  std::optional<uint64_t> memory_current;   // bytes (memory.current)
  std::optional<uint64_t> memory_max;       // bytes, nullopt when "max"
  std::optional<uint64_t> cpu_usage_usec;   // cpu.stat usage_usec (always present)
  std::optional<uint64_t> cpu_user_usec;
  std::optional<uint64_t> cpu_system_usec;
  std::optional<uint64_t> pids_current;     // pids.current
  std::optional<MemoryEvents> memory_events;
};

struct Options {
  // The cgroup2 mount point ("/sys/fs/cgroup" on pure v2 hosts,
  // "/sys/fs/cgroup/unified" on hybrid ones; a temp dir in unit tests).
  std::string mount_root;
  // linux.cgroupsPath resolved to a path below mount_root, starting with "/".
  std::string path;
  // Container id, for log messages ("container \"web\": cpu controller missing…").
  std::string container_id;
  // Refuse (FailedPrecondition) instead of warning when a limit's controller is missing.
  bool strict = false;
  // Syscalls for bpf(2) (device program) and kill; RealSyscalls::get() by default.
  Syscalls* syscalls = nullptr;
  std::shared_ptr<spdlog::logger> logger;  // defaults to log::get("cgroups")
};

class Manager {
 public:
  virtual ~Manager() = default;

  // Absolute path of this cgroup in the filesystem.
  virtual std::string path() const = 0;

  // Creates the cgroup directory (and parents), enabling in each ancestor's
  // cgroup.subtree_control the controllers the host offers. Idempotent.
  virtual Status create() = 0;

  // Moves `pid` into the cgroup (cgroup.procs).
  virtual Status addProcess(pid_t pid) = 0;

  // Applies linux.resources. A limit whose controller the host lacks is skipped with a
  // warning naming the controller and the container, or fails with
  // FailedPrecondition in strict mode. Device rules always apply (BPF, no controller).
  virtual Status apply(const oci::Resources& resources) = 0;

  // Names of the controllers available to this cgroup (cgroup.controllers).
  virtual StatusOr<std::vector<std::string>> controllers() const = 0;

  // cgroup.freeze = 1 / 0, waiting until cgroup.events reports the new state.
  virtual Status freeze() = 0;
  virtual Status thaw() = 0;
  virtual StatusOr<bool> isFrozen() const = 0;

  // Sends `signal` to every process in the cgroup (cgroup.kill for SIGKILL when the
  // kernel has it, otherwise signals each pid in cgroup.procs).
  virtual Status killAll(int signal) = 0;

  // Pids in the cgroup and its descendants.
  virtual StatusOr<std::vector<pid_t>> pids() const = 0;

  virtual StatusOr<Stats> stats() const = 0;

  // True if the cgroup has no live process (cgroup.events populated 0).
  virtual StatusOr<bool> empty() const = 0;

  // Removes the cgroup (and empty child cgroups). NotFound is OK (idempotent). Fails
  // with FailedPrecondition if processes remain.
  virtual Status destroy() = 0;
};

// Where the cgroup2 hierarchy is mounted on this host ("/sys/fs/cgroup" on pure v2,
// "/sys/fs/cgroup/unified" on hybrid hosts). Errors: NotFound if no cgroup2 mount.
StatusOr<std::string> detectCgroup2Mount();

// Resolves linux.cgroupsPath: "" -> "/berth/<id>"; "/a/b" stays; "a/b" -> "/a/b";
// systemd-style "slice:prefix:name" is rejected (InvalidArgument) until the systemd
// driver exists.
StatusOr<std::string> resolveCgroupsPath(const std::string& cgroups_path,
                                         const std::string& container_id);

// Makes the cgroupfs v2 manager for `options`.
std::unique_ptr<Manager> newFs2Manager(Options options);

}  // namespace berth::cgroups
