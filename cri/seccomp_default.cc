// defaultSeccompProfile and loadSeccompProfile (seccomp_default.h).
#include "cri/seccomp_default.h"

#include <algorithm>
#include <initializer_list>

#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "common/strings.h"

namespace berth::cri {
namespace {

constexpr char kAllow[] = "SCMP_ACT_ALLOW";
constexpr uint32_t kEnosys = 38;

// Syscalls every container may make: process, memory, file, socket, signal, timer,
// IPC and scheduling calls that act only on what the caller already owns.
constexpr const char* kAlwaysAllowed[] = {
    "_llseek", "_newselect", "accept", "accept4", "access", "adjtimex", "alarm",
    "bind", "brk", "cachestat", "capget", "capset", "chdir", "chmod", "chown", "chown32",
    "clock_getres", "clock_getres_time64", "clock_gettime", "clock_gettime64",
    "clock_nanosleep", "clock_nanosleep_time64", "close", "close_range", "connect",
    "copy_file_range", "creat", "dup", "dup2", "dup3", "epoll_create", "epoll_create1",
    "epoll_ctl", "epoll_ctl_old", "epoll_pwait", "epoll_pwait2", "epoll_wait",
    "epoll_wait_old", "eventfd", "eventfd2", "execve", "execveat", "exit", "exit_group",
    "faccessat", "faccessat2", "fadvise64", "fadvise64_64", "fallocate", "fanotify_mark",
    "fchdir", "fchmod", "fchmodat", "fchmodat2", "fchown", "fchown32", "fchownat",
    "fcntl", "fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock", "fork",
    "fremovexattr", "fsetxattr", "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64",
    "fsync", "ftruncate", "ftruncate64", "futex", "futex_requeue", "futex_time64",
    "futex_wait", "futex_waitv", "futex_wake", "futimesat", "get_robust_list",
    "get_thread_area", "getcpu", "getcwd", "getdents", "getdents64", "getegid",
    "getegid32", "geteuid", "geteuid32", "getgid", "getgid32", "getgroups", "getgroups32",
    "getitimer", "getpeername", "getpgid", "getpgrp", "getpid", "getppid", "getpriority",
    "getrandom", "getresgid", "getresgid32", "getresuid", "getresuid32", "getrlimit",
    "getrusage", "getsid", "getsockname", "getsockopt", "gettid", "gettimeofday",
    "getuid", "getuid32", "getxattr", "inotify_add_watch", "inotify_init",
    "inotify_init1", "inotify_rm_watch", "io_cancel", "io_destroy", "io_getevents",
    "io_pgetevents", "io_pgetevents_time64", "io_setup", "io_submit", "ioctl",
    "ioprio_get", "ioprio_set", "ipc", "kill", "landlock_add_rule",
    "landlock_create_ruleset", "landlock_restrict_self", "lchown", "lchown32",
    "lgetxattr", "link", "linkat", "listen", "listxattr", "llistxattr", "lremovexattr",
    "lseek", "lsetxattr", "lstat", "lstat64", "madvise", "map_shadow_stack", "membarrier",
    "memfd_create", "memfd_secret", "mincore", "mkdir", "mkdirat", "mknod", "mknodat",
    "mlock", "mlock2", "mlockall", "mmap", "mmap2", "mprotect", "mq_getsetattr",
    "mq_notify", "mq_open", "mq_timedreceive", "mq_timedreceive_time64", "mq_timedsend",
    "mq_timedsend_time64", "mq_unlink", "mremap", "msgctl", "msgget", "msgrcv", "msgsnd",
    "msync", "munlock", "munlockall", "munmap", "nanosleep", "newfstatat", "open",
    "openat", "openat2", "pause", "pidfd_open", "pidfd_send_signal", "pipe", "pipe2",
    "pkey_alloc", "pkey_free", "pkey_mprotect", "poll", "ppoll", "ppoll_time64", "prctl",
    "pread64", "preadv", "preadv2", "prlimit64", "process_mrelease", "process_vm_readv",
    "process_vm_writev", "pselect6", "pselect6_time64", "ptrace", "pwrite64", "pwritev",
    "pwritev2", "read", "readahead", "readlink", "readlinkat", "readv", "recv",
    "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg", "remap_file_pages",
    "removexattr", "rename", "renameat", "renameat2", "restart_syscall", "rmdir", "rseq",
    "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn",
    "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_tgsigqueueinfo",
    "sched_get_priority_max", "sched_get_priority_min", "sched_getaffinity",
    "sched_getattr", "sched_getparam", "sched_getscheduler", "sched_rr_get_interval",
    "sched_rr_get_interval_time64", "sched_setaffinity", "sched_setattr",
    "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp", "select", "semctl",
    "semget", "semop", "semtimedop", "semtimedop_time64", "send", "sendfile",
    "sendfile64", "sendmmsg", "sendmsg", "sendto", "set_robust_list", "set_thread_area",
    "set_tid_address", "setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid",
    "setgid32", "setgroups", "setgroups32", "setitimer", "setpgid", "setpriority",
    "setregid", "setregid32", "setresgid", "setresgid32", "setresuid", "setresuid32",
    "setreuid", "setreuid32", "setrlimit", "setsid", "setsockopt", "setuid", "setuid32",
    "setxattr", "shmat", "shmctl", "shmdt", "shmget", "shutdown", "sigaltstack",
    "signalfd", "signalfd4", "sigprocmask", "sigreturn", "socketcall", "socketpair",
    "splice", "stat", "stat64", "statfs", "statfs64", "statx", "symlink", "symlinkat",
    "sync", "sync_file_range", "syncfs", "sysinfo", "tee", "tgkill", "time",
    "timer_create", "timer_delete", "timer_getoverrun", "timer_gettime",
    "timer_gettime64", "timer_settime", "timer_settime64", "timerfd_create",
    "timerfd_gettime", "timerfd_gettime64", "timerfd_settime", "timerfd_settime64",
    "times", "tkill", "truncate", "truncate64", "ugetrlimit", "umask", "uname", "unlink",
    "unlinkat", "utime", "utimensat", "utimensat_time64", "utimes", "vfork", "vmsplice",
    "wait4", "waitid", "waitpid", "write", "writev",
#if defined(__x86_64__) || defined(__i386__)
    "arch_prctl",
#endif
#if defined(__aarch64__) || defined(__arm__)
    "arm_fadvise64_64", "arm_sync_file_range", "breakpoint", "cacheflush", "set_tls",
    "sync_file_range2",
#endif
};

// Syscalls allowed only with a capability; the kernel checks the capability too, the
// filter keeps the attack surface closed for containers that do not hold it.
struct CapabilityGated {
  const char* capability;
  std::initializer_list<const char*> syscalls;
};

const CapabilityGated kGated[] = {
    {"CAP_SYS_ADMIN",
     {"bpf", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
      "lookup_dcookie", "mount", "mount_setattr", "move_mount", "name_to_handle_at",
      "open_tree", "perf_event_open", "quotactl", "quotactl_fd", "setdomainname",
      "sethostname", "setns", "syslog", "umount", "umount2", "unshare"}},
    {"CAP_SYS_BOOT", {"reboot"}},
    {"CAP_SYS_CHROOT", {"chroot"}},
    {"CAP_SYS_MODULE", {"delete_module", "finit_module", "init_module"}},
    {"CAP_SYS_PACCT", {"acct"}},
    {"CAP_SYS_PTRACE", {"kcmp", "pidfd_getfd", "process_madvise"}},
    {"CAP_SYS_RAWIO", {"ioperm", "iopl"}},
    {"CAP_SYS_TIME",
     {"clock_adjtime", "clock_adjtime64", "clock_settime", "clock_settime64",
      "settimeofday", "stime"}},
    {"CAP_SYS_TTY_CONFIG", {"vhangup"}},
    {"CAP_SYS_NICE",
     {"get_mempolicy", "mbind", "move_pages", "set_mempolicy", "set_mempolicy_home_node"}},
    {"CAP_SYSLOG", {"syslog"}},
    {"CAP_BPF", {"bpf"}},
    {"CAP_PERFMON", {"perf_event_open"}},
    {"CAP_DAC_READ_SEARCH", {"open_by_handle_at"}},
};

// clone(2) flags that create namespaces.
constexpr uint64_t kCloneNamespaceFlags = 0x00020000ULL    // CLONE_NEWNS
                                          | 0x02000000ULL  // CLONE_NEWCGROUP
                                          | 0x04000000ULL  // CLONE_NEWUTS
                                          | 0x08000000ULL  // CLONE_NEWIPC
                                          | 0x10000000ULL  // CLONE_NEWUSER
                                          | 0x20000000ULL  // CLONE_NEWPID
                                          | 0x40000000ULL;  // CLONE_NEWNET

constexpr uint64_t kAfVsock = 40;

oci::SeccompSyscall allow(std::vector<std::string> names) {
  oci::SeccompSyscall rule;
  rule.names = std::move(names);
  rule.action = kAllow;
  return rule;
}

oci::SeccompArg arg(uint32_t index, const char* op, uint64_t value, uint64_t value_two = 0) {
  oci::SeccompArg a;
  a.index = index;
  a.op = op;
  a.value = value;
  a.valueTwo = value_two;
  return a;
}

std::vector<std::string> nativeArchitectures() {
#if defined(__x86_64__)
  return {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"};
#elif defined(__aarch64__)
  return {"SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"};
#else
  return {};
#endif
}

}  // namespace

oci::Seccomp defaultSeccompProfile(const std::vector<std::string>& capabilities) {
  auto has = [&](std::string_view cap) {
    return std::find(capabilities.begin(), capabilities.end(), cap) != capabilities.end();
  };
  oci::Seccomp profile;
  profile.defaultAction = "SCMP_ACT_ERRNO";
  profile.defaultErrnoRet = 1;  // EPERM
  profile.architectures = nativeArchitectures();

  profile.syscalls.push_back(
      allow(std::vector<std::string>(std::begin(kAlwaysAllowed), std::end(kAlwaysAllowed))));

  // personality(2): only the Linux personas (and the query), one rule each (OR'd).
  for (uint64_t persona : {0x0ULL, 0x8ULL, 0x20000ULL, 0x20008ULL, 0xffffffffULL}) {
    oci::SeccompSyscall rule = allow({"personality"});
    rule.args.push_back(arg(0, "SCMP_CMP_EQ", persona));
    profile.syscalls.push_back(std::move(rule));
  }

  // socket(2): every address family but AF_VSOCK (host/VM sockets).
  {
    oci::SeccompSyscall rule = allow({"socket"});
    rule.args.push_back(arg(0, "SCMP_CMP_NE", kAfVsock));
    profile.syscalls.push_back(std::move(rule));
  }

  std::vector<std::string> gated;
  for (const CapabilityGated& group : kGated) {
    if (!has(group.capability)) continue;
    for (const char* name : group.syscalls) {
      if (std::find(gated.begin(), gated.end(), name) == gated.end()) gated.push_back(name);
    }
  }

  if (has("CAP_SYS_ADMIN")) {
    gated.push_back("clone");
    gated.push_back("clone3");
  } else {
    // clone(2) without namespace flags (flags are argument 0 on x86 and arm).
    oci::SeccompSyscall rule = allow({"clone"});
    rule.args.push_back(arg(0, "SCMP_CMP_MASKED_EQ", kCloneNamespaceFlags, 0));
    profile.syscalls.push_back(std::move(rule));
    // clone3(2) passes its flags in memory a filter cannot read: answer ENOSYS so the
    // C library falls back to clone(2).
    oci::SeccompSyscall clone3;
    clone3.names = {"clone3"};
    clone3.action = "SCMP_ACT_ERRNO";
    clone3.errnoRet = kEnosys;
    profile.syscalls.push_back(std::move(clone3));
  }
  if (!gated.empty()) profile.syscalls.push_back(allow(std::move(gated)));
  return profile;
}

StatusOr<oci::Seccomp> loadSeccompProfile(const std::string& path, std::string_view field) {
  if (path.empty() || path.front() != '/') {
    return invalidArgument(field, ": seccomp profile path \"", path,
                           "\" must be absolute (a file on the node, e.g. "
                           "/var/lib/kubelet/seccomp/profile.json)");
  }
  auto text = fs::readFile(path);
  if (!text.ok()) {
    return withContext(text.status(), strCat(field, ": read seccomp profile"));
  }
  nlohmann::json profile = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (profile.is_discarded() || !profile.is_object()) {
    return invalidArgument(field, ": seccomp profile \"", path,
                           "\" is not a JSON object (expected an OCI linux.seccomp object "
                           "with defaultAction, architectures and syscalls)");
  }
  if (!profile.contains("defaultAction")) {
    return invalidArgument(field, ": seccomp profile \"", path,
                           "\" has no \"defaultAction\" (expected an OCI linux.seccomp "
                           "object)");
  }
  // Reuse the config.json parser for the type checks of every key.
  nlohmann::json wrapper = {{"ociVersion", oci::kOciVersion},
                            {"linux", {{"seccomp", std::move(profile)}}}};
  auto spec = oci::parseSpec(wrapper.dump());
  if (!spec.ok()) {
    return invalidArgument(field, ": seccomp profile \"", path, "\": ",
                           std::string(spec.status().message()));
  }
  if (!spec->linux || !spec->linux->seccomp) {
    return internalError(field, ": seccomp profile \"", path, "\" was parsed empty");
  }
  return std::move(*spec->linux->seccomp);
}

}  // namespace berth::cri
