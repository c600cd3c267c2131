// berth's RuntimeDefault seccomp profile for CRI containers (SecurityProfile
// RuntimeDefault), and the loader for Localhost profiles.
//
// The default profile follows the shape the field's runtimes use (Docker's, containerd's
// and CRI-O's default profiles): the default action refuses with EPERM, a long list of
// ordinary syscalls is allowed, and the syscalls that reach outside the container
// (kernel modules, keyrings, clocks, mounts and namespaces, reboot, BPF, perf, NUMA
// policy, raw I/O ports…) are allowed only when the container holds the capability that
// governs them. The list is berth's own, derived from those facts; it is not a copy
// of any other project's file.
//
// Thread-safety: pure functions, thread-safe (loadSeccompProfile reads one file).
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "runtime/oci/config.h"

namespace berth::cri {

// The RuntimeDefault profile for a container whose bounding capability set is
// `capabilities` (names like "CAP_SYS_ADMIN"):
// - defaultAction SCMP_ACT_ERRNO with defaultErrnoRet EPERM (1);
// - architectures: the native one and its compat ABIs (x86_64: X86_64, X86, X32;
//   aarch64: AARCH64, ARM; others: none listed, the native one is implied);
// - SCMP_ACT_ALLOW for the ordinary syscalls; personality(2) only for the
//   PER_LINUX / PER_LINUX32 / UNAME26 personas and the query value 0xffffffff; socket(2)
//   for every family but AF_VSOCK (40);
// - clone(2) without namespace flags (CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|
//   NEWNET) and clone3(2) answered with ENOSYS (so libcs fall back to clone), unless
//   CAP_SYS_ADMIN is held, which also allows mount, umount2, setns, unshare, the new
//   mount API, sethostname, setdomainname, quotactl, bpf, perf_event_open, syslog,
//   fanotify_init, lookup_dcookie and name_to_handle_at;
// - per capability: CAP_SYS_BOOT reboot; CAP_SYS_CHROOT chroot; CAP_SYS_MODULE
//   init/finit/delete_module; CAP_SYS_PACCT acct; CAP_SYS_PTRACE kcmp, pidfd_getfd,
//   process_madvise; CAP_SYS_RAWIO iopl, ioperm; CAP_SYS_TIME settimeofday, stime,
//   clock_settime(64), clock_adjtime(64); CAP_SYS_TTY_CONFIG vhangup; CAP_SYS_NICE
//   get/set_mempolicy, mbind, set_mempolicy_home_node, move_pages; CAP_SYSLOG syslog;
//   CAP_BPF bpf; CAP_PERFMON perf_event_open; CAP_DAC_READ_SEARCH open_by_handle_at.
// ptrace, process_vm_readv and process_vm_writev are allowed to everyone (since Linux
// 4.8 seccomp is re-checked after a ptrace stop, so tracing cannot bypass the filter;
// berth needs a newer kernel anyway). keyctl, add_key, request_key, kexec_*, userfaultfd,
// uselib, ustat, sysfs, _sysctl, vm86 and the like stay refused.
// Names libseccomp does not know on this architecture are skipped by the runtime.
oci::Seccomp defaultSeccompProfile(const std::vector<std::string>& capabilities);

// Reads a Localhost profile: a JSON file holding an OCI runtime-spec linux.seccomp
// object (defaultAction, architectures, syscalls, …), as kubelet's
// `localhostProfile` files for containerd and CRI-O do. `field` names the CRI field in
// errors (e.g. "ContainerConfig.linux.security_context.seccomp.localhost_ref").
// Errors: InvalidArgument when `path` is not absolute, the file is not valid JSON, or a
// key has the wrong type (naming the file and key); NotFound when the file is missing;
// other read errors with errno. Every error names `field` and the path.
StatusOr<oci::Seccomp> loadSeccompProfile(const std::string& path, std::string_view field);

}  // namespace berth::cri
