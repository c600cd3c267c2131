// The cgroupfs driver for cgroup v2: a Manager that works directly on the files of a
// cgroup2 hierarchy (cgroup-v2.rst in the kernel's admin guide). Everything it touches
// lives below options.mount_root, so unit tests point mount_root at a temp directory
// whose "interface files" are plain files the test writes and reads.
//
// Missing controllers: hybrid hosts (and unprivileged delegations) often offer only a
// few controllers in cgroup v2. apply() reads the cgroup's own cgroup.controllers and,
// for each limit that is set but whose controller is not listed, either warns
//   container "web": cgroup controller "cpu" is not available on this host
//   (available: hugetlb); cpu.weight=79 not applied
// or, with options.strict, fails with FailedPrecondition before writing anything.
//
// Thread-safety: one thread at a time (see Manager).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "runtime/cgroups/manager.h"

namespace berth::cgroups {

class Fs2Manager final : public Manager {
 public:
  // Keeps `options`; fills in the default Syscalls and logger. Touches nothing.
  explicit Fs2Manager(Options options);

  std::string path() const override { return path_; }
  Status create() override;
  Status addProcess(pid_t pid) override;
  Status apply(const oci::Resources& resources) override;
  StatusOr<std::vector<std::string>> controllers() const override;
  Status freeze() override;
  Status thaw() override;
  StatusOr<bool> isFrozen() const override;
  Status killAll(int signal) override;
  StatusOr<std::vector<pid_t>> pids() const override;
  StatusOr<Stats> stats() const override;
  StatusOr<bool> empty() const override;
  Status destroy() override;

  // One value to write: `file` (relative to the cgroup) needs `controller`
  // ("" for core cgroup.* files that every cgroup has).
  struct Setting {
    std::string controller;
    std::string file;
    std::string value;
    bool from_unified = false;  // came from linux.resources.unified
  };

  // The writes apply() would make for `resources`, in order, without the device
  // program. Reads the cgroup only where a value depends on the current state
  // (cpu.max with a period but no quota keeps the quota; io.bfq.weight is preferred
  // to io.weight when the BFQ scheduler offers it). Errors: InvalidArgument for values
  // that cannot be converted, naming the field.
  StatusOr<std::vector<Setting>> settingsFor(const oci::Resources& resources) const;

 private:
  std::string file(std::string_view name) const;
  void enableControllers(const std::string& dir) const;
  Status setFrozen(bool frozen);
  Status removeCgroup(const std::string& dir) const;

  Options options_;
  std::string path_;
  Syscalls* sys_;
  std::shared_ptr<spdlog::logger> logger_;
};

}  // namespace berth::cgroups
