// berth-pause: PID 1 of a pod that shares one PID namespace among its containers.
//
// berth-shim forks it right after unshare(CLONE_NEWPID) and execs this binary, so it is
// PID 1 in the pod's PID namespace: orphaned processes of every container are
// reparented to it and it reaps them; SIGTERM, SIGINT or SIGHUP end it (exit 0), which
// tears the PID namespace down. Every other signal is ignored (signals sent to a PID
// namespace's init from inside it without a handler are dropped by the kernel anyway).
//
// It is built without the C library (-nostdlib -ffreestanding, raw system calls): the
// whole process is a few pages (about 12 KiB RSS instead of ~600 KiB for a forked copy
// of the shim or ~700 KiB for a glibc-static program), which matters because it runs
// once per pod. Supported architectures: x86_64 and aarch64 (CMake builds it only
// there; elsewhere the shim says the pause binary is missing).
//
// Arguments, environment and file descriptors are ignored; the shim sets stdio to
// /dev/null and closes the rest before exec.

#if !defined(__x86_64__) && !defined(__aarch64__)
#error "berth-pause supports x86_64 and aarch64 only"
#endif

namespace {

using Long = long;

#if defined(__x86_64__)
constexpr Long kSysRtSigprocmask = 14;
constexpr Long kSysWait4 = 61;
constexpr Long kSysRtSigtimedwait = 128;
constexpr Long kSysExitGroup = 231;

inline Long syscall4(Long nr, Long a, Long b, Long c, Long d) {
  Long ret;
  register Long r10 asm("r10") = d;
  asm volatile("syscall"
               : "=a"(ret)
               : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10)
               : "rcx", "r11", "memory");
  return ret;
}
#elif defined(__aarch64__)
constexpr Long kSysRtSigprocmask = 135;
constexpr Long kSysWait4 = 260;
constexpr Long kSysRtSigtimedwait = 137;
constexpr Long kSysExitGroup = 94;

inline Long syscall4(Long nr, Long a, Long b, Long c, Long d) {
  register Long x8 asm("x8") = nr;
  register Long x0 asm("x0") = a;
  register Long x1 asm("x1") = b;
  register Long x2 asm("x2") = c;
  register Long x3 asm("x3") = d;
  asm volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3) : "memory");
  return x0;
}
#endif

constexpr Long kSigBlock = 0;      // SIG_BLOCK
constexpr Long kWnohang = 1;       // WNOHANG
constexpr Long kSigsetBytes = 8;   // the kernel's sigset_t: 64 signals
constexpr int kSigHup = 1, kSigInt = 2, kSigTerm = 15;
constexpr Long kEintr = -4;

[[noreturn]] void exitGroup(int code) {
  for (;;) syscall4(kSysExitGroup, code, 0, 0, 0);
}

void reapAll() {
  while (syscall4(kSysWait4, -1, 0, kWnohang, 0) > 0) {
  }
}

}  // namespace

// Called from _start below with the stack as the kernel left it (unused).
extern "C" [[noreturn]] void berthPauseMain() {
  unsigned long all = ~0UL;
  syscall4(kSysRtSigprocmask, kSigBlock, reinterpret_cast<Long>(&all), 0, kSigsetBytes);
  // Children may have exited before the mask was set: reap them now.
  reapAll();
  for (;;) {
    // siginfo_t is 128 bytes; the contents are not needed.
    unsigned long info[16];
    Long sig = syscall4(kSysRtSigtimedwait, reinterpret_cast<Long>(&all),
                        reinterpret_cast<Long>(info), 0, kSigsetBytes);
    if (sig == kSigTerm || sig == kSigInt || sig == kSigHup) exitGroup(0);
    if (sig == kEintr || sig > 0) reapAll();  // SIGCHLD (or anything else): reap
  }
}

// The entry point: align the stack as the ABI wants for a call, then run.
#if defined(__x86_64__)
asm(".text\n"
    ".global _start\n"
    "_start:\n"
    "  xor %rbp, %rbp\n"
    "  and $-16, %rsp\n"
    "  call berthPauseMain\n"
    "  hlt\n");
#elif defined(__aarch64__)
asm(".text\n"
    ".global _start\n"
    "_start:\n"
    "  mov x29, #0\n"
    "  mov x30, #0\n"
    "  mov x0, sp\n"
    "  and x0, x0, #-16\n"
    "  mov sp, x0\n"
    "  bl berthPauseMain\n"
    "  brk #0\n");
#endif
