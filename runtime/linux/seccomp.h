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

// Translates the profile into a filter without loading it (runtime-spec
// config-linux.md "Seccomp"):
// - defaultAction / syscalls[].action: SCMP_ACT_*; errnoRet / defaultErrnoRet only with
//   SCMP_ACT_ERRNO or SCMP_ACT_TRACE, default EPERM. SCMP_ACT_NOTIFY is refused as the
//   default action, and needs listenerPath.
// - architectures are added next to the native one; flags become libseccomp attributes
//   (TSYNC, LOG, SPEC_ALLOW; WAIT_KILLABLE_RECV is unsupported by libseccomp 2.5).
// - Syscall names unknown to libseccomp are skipped (debug log on the "seccomp" logger),
//   as runc does; a rule whose action equals the default is skipped too.
// - args: comparisons on distinct argument indexes are AND'd in one rule; when two
//   compare the same index, each becomes its own rule (OR'd), like runc. For
//   SCMP_CMP_MASKED_EQ, value is the mask and valueTwo the expected result.
// - The filter does not set no_new_privs itself (SCMP_FLTATR_CTL_NNP off).
// Errors: InvalidArgument naming the field and value and listing what is accepted,
// e.g. `linux.seccomp.syscalls[3].action: unknown action "SCMP_ACT_FOO"; use one of …`;
// a libseccomp failure keeps its errno and names the rule.
StatusOr<SeccompFilter> buildFilter(const oci::Seccomp& profile);

// Loads the filter into the calling thread (all threads with SECCOMP_FILTER_FLAG_TSYNC);
// needs no_new_privs or CAP_SYS_ADMIN. Profile flags were already applied by
// buildFilter; `profile` is the profile it was built from (for error context). When the
// filter uses SCMP_ACT_NOTIFY, returns the notify listener fd (close-on-exec; the caller
// owns it and sends it to listenerPath), else an empty UniqueFd.
// Errors: the kernel's errno from seccomp(2), e.g. EACCES without privileges.
StatusOr<UniqueFd> loadFilter(SeccompFilter& filter, const oci::Seccomp& profile);

// Lists for `features` (runtime-spec features.md "linux.seccomp"): the actions,
// operators, architectures (those libseccomp 2.5 knows) and flags accepted, spelled as
// in config.json. Thread-safe.
std::vector<std::string> knownActions();
std::vector<std::string> knownOperators();
std::vector<std::string> knownArchitectures();
std::vector<std::string> knownFlags();
// Flags this kernel and libseccomp support (subset of knownFlags()), from
// seccomp_api_get() levels. Thread-safe.
std::vector<std::string> supportedFlags();

// Validates the profile without building a filter: same InvalidArgument errors as
// buildFilter (unknown syscall names are not errors). Thread-safe.
Status validateProfile(const oci::Seccomp& profile);

}  // namespace berth::seccomp
