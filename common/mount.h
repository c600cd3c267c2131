// RAII for mounts: a MountGuard unmounts its target (MNT_DETACH) when it goes out of
// scope unless released, so a multi-step setup that fails half-way leaves no mount
// behind (e.g. a rootfs overlay mounted before the container init takes over).
// Thread-safety: a guard is used by one thread; mount(2) affects the caller's mount
// namespace.
#pragma once

#include <string>

#include "common/status.h"
#include "common/syscalls.h"

namespace berth {

class MountGuard {
 public:
  MountGuard() = default;
  // Takes responsibility for unmounting `target` (already mounted) through `sys`.
  MountGuard(Syscalls& sys, std::string target) : sys_(&sys), target_(std::move(target)) {}
  MountGuard(const MountGuard&) = delete;
  MountGuard& operator=(const MountGuard&) = delete;
  MountGuard(MountGuard&& other) noexcept
      : sys_(other.sys_), target_(std::move(other.target_)) {
    other.sys_ = nullptr;
  }
  MountGuard& operator=(MountGuard&& other) noexcept {
    if (this != &other) {
      (void)unmount();
      sys_ = other.sys_;
      target_ = std::move(other.target_);
      other.sys_ = nullptr;
    }
    return *this;
  }
  ~MountGuard() { (void)unmount(); }

  // Mounts and returns a guard for it. Errors: the mount(2) errno with source, target
  // and type named.
  static StatusOr<MountGuard> mount(Syscalls& sys, const std::string& source,
                                    const std::string& target, const std::string& fstype,
                                    unsigned long flags, const std::string& data) {
    auto r = sys.mount(source.c_str(), target.c_str(), fstype.empty() ? nullptr : fstype.c_str(),
                       flags, data.empty() ? nullptr : data.c_str());
    if (!r.ok()) {
      return errnoError(r.err, strCat("mount \"", source, "\" on \"", target, "\" (type ",
                                      fstype.empty() ? "none" : fstype, ")"));
    }
    return MountGuard(sys, target);
  }

  const std::string& target() const { return target_; }
  bool active() const { return sys_ != nullptr; }

  // Keeps the mount: the guard no longer unmounts it.
  void release() { sys_ = nullptr; }

  // Unmounts now (lazily, MNT_DETACH). OK if nothing is guarded.
  Status unmount() {
    if (sys_ == nullptr) return absl::OkStatus();
    auto r = sys_->umount2(target_.c_str(), MNT_DETACH_FLAG);
    sys_ = nullptr;
    if (!r.ok()) return errnoError(r.err, strCat("unmount \"", target_, "\""));
    return absl::OkStatus();
  }

 private:
  static constexpr int MNT_DETACH_FLAG = 2;  // MNT_DETACH from <sys/mount.h>
  Syscalls* sys_ = nullptr;
  std::string target_;
};

}  // namespace berth
