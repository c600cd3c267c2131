// seccomp from the OCI profile (linux.seccomp) via libseccomp: defaultAction,
// architectures, syscall rules with argument comparisons, errnoRet, flags
// (runtime-spec config-linux.md "Seccomp").
// Thread-safety: a SeccompFilter is used by one thread; loading affects the calling
// thread (and with TSYNC, all threads).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/unique_fd.h"
#include "runtime/oci/config.h"

namespace berth::seccomp {

// Owns a libseccomp scmp_filter_ctx.
class SeccompFilter {
 public:
  ~SeccompFilter();
  SeccompFilter(SeccompFilter&&) noexcept;
  SeccompFilter& operator=(SeccompFilter&&) noexcept;
  SeccompFilter(const SeccompFilter&) = delete;
  SeccompFilter& operator=(const SeccompFilter&) = delete;

  // The scmp_filter_ctx (void*), owned here.
  void* ctx() const { return ctx_; }
  // True when some rule or the default uses SCMP_ACT_NOTIFY.
  bool usesNotify() const { return uses_notify_; }

 private:
  friend StatusOr<SeccompFilter> buildFilter(const oci::Seccomp& profile);
  SeccompFilter(void* ctx, bool notify) : ctx_(ctx), uses_notify_(notify) {}
  void* ctx_ = nullptr;
  bool uses_notify_ = false;
};

// Translates the profile into a filter without loading it. Syscall names unknown to
// libseccomp on this architecture are skipped (as runc does) ; unknown actions,
// operators, architectures or flags are InvalidArgument naming the value and listing
// what is accepted.
StatusOr<SeccompFilter> buildFilter(const oci::Seccomp& profile);

// Loads the filter into the calling thread (no_new_privs or CAP_SYS_ADMIN required).
// Applies profile flags (SECCOMP_FILTER_FLAG_TSYNC/LOG/SPEC_ALLOW). When the filter
// uses SCMP_ACT_NOTIFY, returns the notify listener fd, else an empty UniqueFd.
StatusOr<UniqueFd> loadFilter(SeccompFilter& filter, const oci::Seccomp& profile);

// Lists for `features`: the actions, operators, architectures and flags accepted.
std::vector<std::string> knownActions();
std::vector<std::string> knownOperators();
std::vector<std::string> knownArchitectures();
std::vector<std::string> knownFlags();
// Flags this kernel supports (subset of knownFlags()).
std::vector<std::string> supportedFlags();

// Validates names only (no libseccomp context): same errors as buildFilter.
Status validateProfile(const oci::Seccomp& profile);

}  // namespace berth::seccomp
