// The cgroup manager interface (youki's libcgroups habit): one interface for
// placement, resources, freeze, kill, stats and teardown, with a cgroupfs v2
// implementation (Fs2Manager) now and a systemd implementation later
// (--cgroup-driver systemd). Each controller's settings are applied to a path that
// tests point at a temp directory standing in for cgroupfs.
//
// Thread-safety: a Manager is used by one thread at a time.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string_view>
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
  // How long freeze()/thaw() wait for cgroup.events to report the new state.
  std::chrono::milliseconds freeze_timeout{5000};
  // How long destroy() retries rmdir while it fails with EBUSY (processes exiting).
  std::chrono::milliseconds destroy_timeout{2000};
};

class Manager {
 public:
  virtual ~Manager() = default;

  // Absolute path of this cgroup in the filesystem.
  virtual std::string path() const = 0;

  // Creates the cgroup directory (and parents), enabling in each ancestor's
  // cgroup.subtree_control (from mount_root down to the parent) the controllers that
  // ancestor offers in its cgroup.controllers. A controller the kernel refuses to
  // enable (EBUSY "no internal processes", ENOTSUP, …) is skipped with a debug log.
  // Idempotent. Errors: the mkdir that failed, with its path.
  virtual Status create() = 0;

  // Moves `pid` into the cgroup (cgroup.procs). Errors name the file and pid.
  virtual Status addProcess(pid_t pid) = 0;

  // Applies linux.resources. A limit whose controller the host lacks is skipped with a
  // warning naming the controller and the container, or fails with
  // FailedPrecondition in strict mode (nothing is written then). Only limits that are
  // set are checked. Device rules apply through a BPF program (no controller needed)
  // when `resources.devices` is non-empty; an empty list leaves device access as is.
  // unified keys are written last (they override the structured values); a key with
  // "/" or "..", or without a "<controller>." prefix, is InvalidArgument.
  // Errors: InvalidArgument for values that cannot be converted (e.g. swap < limit),
  // the failed write with file path and value, the bpf(2) failure.
  virtual Status apply(const oci::Resources& resources) = 0;

  // Names of the controllers available to this cgroup (cgroup.controllers).
  // Errors: reading the file (NotFound if the cgroup does not exist).
  virtual StatusOr<std::vector<std::string>> controllers() const = 0;

  // cgroup.freeze = 1 / 0, waiting (options.freeze_timeout) until cgroup.events reports
  // the new state. Errors: Unimplemented if the kernel has no cgroup.freeze (< 5.2);
  // DeadlineExceeded naming the cgroup when the state is not reached in time.
  virtual Status freeze() = 0;
  virtual Status thaw() = 0;
  virtual StatusOr<bool> isFrozen() const = 0;

  // Sends `signal` to every process in the cgroup (cgroup.kill for SIGKILL when the
  // kernel has it, otherwise signals each pid in cgroup.procs of the cgroup and its
  // descendants through Syscalls::kill; pids that already exited are ignored).
  virtual Status killAll(int signal) = 0;

  // Pids in the cgroup and its descendants (cgroup.procs of each), cgroup first.
  virtual StatusOr<std::vector<pid_t>> pids() const = 0;

  // Counters; each is nullopt when its file is absent (controller missing).
  // Errors: a file that exists but cannot be read or parsed (path in the message).
  virtual StatusOr<Stats> stats() const = 0;

  // True if the cgroup has no live process (cgroup.events populated 0), or if the
  // cgroup does not exist.
  virtual StatusOr<bool> empty() const = 0;

  // Removes the cgroup (and empty child cgroups, depth first). A missing cgroup is OK
  // (idempotent). rmdir failing with EBUSY is retried for options.destroy_timeout,
  // then FailedPrecondition naming the path and the remaining pids.
  virtual Status destroy() = 0;
};

// Where the cgroup2 hierarchy is mounted on this host ("/sys/fs/cgroup" on pure v2,
// "/sys/fs/cgroup/unified" on hybrid hosts), from /proc/self/mountinfo.
// Errors: NotFound if no cgroup2 mount; the read error of mountinfo.
StatusOr<std::string> detectCgroup2Mount();

// The cgroup2 mount point in `mountinfo` (proc(5) format): /sys/fs/cgroup if it is a
// cgroup2 mount, else /sys/fs/cgroup/unified, else the first cgroup2 mount. Octal
// escapes (\040) in the mount point are decoded. Errors: NotFound.
StatusOr<std::string> findCgroup2Mount(std::string_view mountinfo);

// Resolves linux.cgroupsPath: "" -> "/berth/<id>"; "/a/b" stays; "a/b" -> "/a/b";
// systemd-style "slice:prefix:name" is rejected (InvalidArgument) until the systemd
// driver exists; so are ".." components and the root cgroup itself. Repeated and
// trailing slashes are removed.
StatusOr<std::string> resolveCgroupsPath(const std::string& cgroups_path,
                                         const std::string& container_id);

// Makes the cgroupfs v2 manager for `options` (see fs2_manager.h). Does not touch the
// filesystem.
std::unique_ptr<Manager> newFs2Manager(Options options);

}  // namespace berth::cgroups
