#include "runtime/linux/seccomp.h"

#include <errno.h>
#include <fcntl.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/capability.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace berth::seccomp {
namespace {

using ::testing::AllOf;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;

oci::SeccompSyscall rule(std::vector<std::string> names, std::string action,
                         std::optional<uint32_t> errno_ret = std::nullopt,
                         std::vector<oci::SeccompArg> args = {}) {
  oci::SeccompSyscall call;
  call.names = std::move(names);
  call.action = std::move(action);
  call.errnoRet = errno_ret;
  call.args = std::move(args);
  return call;
}

oci::SeccompArg arg(uint32_t index, std::string op, uint64_t value, uint64_t value_two = 0) {
  oci::SeccompArg a;
  a.index = index;
  a.op = std::move(op);
  a.value = value;
  a.valueTwo = value_two;
  return a;
}

oci::Seccomp allowAllBut(std::vector<oci::SeccompSyscall> rules) {
  oci::Seccomp profile;
  profile.defaultAction = "SCMP_ACT_ALLOW";
  profile.syscalls = std::move(rules);
  return profile;
}

// The filter as libseccomp's pseudo filter code (PFC) text.
std::string pfc(const SeccompFilter& filter) {
  int fd = memfd_create("pfc", 0);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(seccomp_export_pfc(filter.ctx(), fd), 0);
  std::string text;
  lseek(fd, 0, SEEK_SET);
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) text.append(buf, n);
  close(fd);
  return text;
}

std::string errorOf(const oci::Seccomp& profile) {
  auto built = buildFilter(profile);
  EXPECT_FALSE(built.ok());
  Status validated = validateProfile(profile);
  EXPECT_FALSE(validated.ok());
  if (built.ok()) return "";
  // validateProfile and buildFilter agree on every name check.
  EXPECT_EQ(std::string(validated.message()), std::string(built.status().message()));
  EXPECT_EQ(built.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(built.status().message());
}

// Runs `body` in a forked child and returns its wait status. The child sets
// no_new_privs so it may load filters without privileges.
int inChild(const std::function<int()>& body) {
  pid_t pid = fork();
  if (pid == 0) {
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) _exit(100);
    // exit_group directly: sanitizer runtimes hook _exit with syscalls a tight filter denies.
    syscall(SYS_exit_group, body());
  }
  int status = 0;
  EXPECT_EQ(waitpid(pid, &status, 0), pid);
  return status;
}

// Child helper: builds and loads `profile`; exit code 101/102 on failure.
int loadOrExit(const oci::Seccomp& profile) {
  auto filter = buildFilter(profile);
  if (!filter.ok()) _exit(101);
  auto fd = loadFilter(*filter, profile);
  if (!fd.ok()) _exit(102);
  return fd->release();
}

std::string nr(const char* name) { return std::to_string(seccomp_syscall_resolve_name(name)); }

TEST(SeccompBuild, DefaultAllowWithOneErrnoRule) {
  auto filter = buildFilter(allowAllBut({rule({"mkdir"}, "SCMP_ACT_ERRNO", 42)}));
  ASSERT_TRUE(filter.ok()) << filter.status();
  EXPECT_FALSE(filter->usesNotify());
  std::string text = pfc(*filter);
  EXPECT_THAT(text, HasSubstr("if ($syscall == " + nr("mkdir") + ")"));
  EXPECT_THAT(text, HasSubstr("action ERRNO(42);"));
  EXPECT_THAT(text, HasSubstr("# default action\n  action ALLOW;"));
}

TEST(SeccompBuild, ErrnoDefaultsToEperm) {
  oci::Seccomp profile;
  profile.defaultAction = "SCMP_ACT_ERRNO";
  profile.syscalls = {rule({"read", "write"}, "SCMP_ACT_ALLOW"),
                      rule({"mkdir"}, "SCMP_ACT_TRACE")};
  auto filter = buildFilter(profile);
  ASSERT_TRUE(filter.ok()) << filter.status();
  std::string text = pfc(*filter);
  EXPECT_THAT(text, HasSubstr("action ERRNO(" + std::to_string(EPERM) + ");"));
  EXPECT_THAT(text, HasSubstr("action TRACE(" + std::to_string(EPERM) + ");"));

  profile.defaultErrnoRet = 38;
  filter = buildFilter(profile);
  ASSERT_TRUE(filter.ok()) << filter.status();
  EXPECT_THAT(pfc(*filter), HasSubstr("# default action\n  action ERRNO(38);"));
}

TEST(SeccompBuild, ArgumentComparisonsOnDistinctIndexesAreAnded) {
  auto filter = buildFilter(allowAllBut({rule(
      {"kill"}, "SCMP_ACT_ERRNO", 43,
      {arg(0, "SCMP_CMP_EQ", 5), arg(1, "SCMP_CMP_MASKED_EQ", 3, 2)})}));
  ASSERT_TRUE(filter.ok()) << filter.status();
  std::string text = pfc(*filter);
  // One nested rule: a0 == 5, then (a1 & 3) == 2 inside it.
  EXPECT_THAT(text, HasSubstr("if ($a0.lo32 == 5)\n        if ($a1.hi32 & 0x00000000 == 0)\n"
                              "          if ($a1.lo32 & 0x00000003 == 2)\n"
                              "            action ERRNO(43);"));
}

TEST(SeccompBuild, SameIndexComparisonsBecomeSeparateRules) {
  auto filter = buildFilter(allowAllBut({rule(
      {"tkill"}, "SCMP_ACT_ERRNO", 43,
      {arg(1, "SCMP_CMP_EQ", SIGUSR1), arg(1, "SCMP_CMP_EQ", SIGUSR2)})}));
  ASSERT_TRUE(filter.ok()) << filter.status();
  std::string text = pfc(*filter);
  // Siblings at the same depth (OR), not nested (AND).
  EXPECT_THAT(text, HasSubstr("      if ($a1.lo32 == " + std::to_string(SIGUSR1) + ")\n"));
  EXPECT_THAT(text, HasSubstr("      if ($a1.lo32 == " + std::to_string(SIGUSR2) + ")\n"));
}

TEST(SeccompBuild, OperatorsMapToLibseccomp) {
  auto filter = buildFilter(allowAllBut({
      rule({"dup"}, "SCMP_ACT_ERRNO", 1, {arg(0, "SCMP_CMP_NE", 7)}),
      rule({"dup2"}, "SCMP_ACT_ERRNO", 1, {arg(0, "SCMP_CMP_GT", 100)}),
      rule({"dup3"}, "SCMP_ACT_ERRNO", 1, {arg(0, "SCMP_CMP_GE", 200)}),
      rule({"close"}, "SCMP_ACT_ERRNO", 1, {arg(0, "SCMP_CMP_LT", 3)}),
      rule({"fchdir"}, "SCMP_ACT_ERRNO", 1, {arg(0, "SCMP_CMP_LE", 9)}),
  }));
  ASSERT_TRUE(filter.ok()) << filter.status();
  std::string text = pfc(*filter);
  EXPECT_THAT(text, HasSubstr("$a0.lo32 == 7"));   // NE: == 7 falls through to allow
  EXPECT_THAT(text, HasSubstr("$a0.lo32 > 100"));
  EXPECT_THAT(text, HasSubstr("$a0.lo32 >= 200"));
  EXPECT_THAT(text, HasSubstr("$a0.lo32 >= 3"));   // LT: >= 3 falls through
  EXPECT_THAT(text, HasSubstr("$a0.lo32 > 9"));    // LE: > 9 falls through
}

TEST(SeccompBuild, UnknownSyscallNamesAreSkipped) {
  auto filter = buildFilter(
      allowAllBut({rule({"no_such_syscall_berth", "mkdir"}, "SCMP_ACT_ERRNO", 42)}));
  ASSERT_TRUE(filter.ok()) << filter.status();
  EXPECT_THAT(pfc(*filter), HasSubstr("if ($syscall == " + nr("mkdir") + ")"));
  EXPECT_TRUE(validateProfile(allowAllBut({rule({"no_such_syscall_berth"}, "SCMP_ACT_KILL")}))
                  .ok());
}

TEST(SeccompBuild, RuleEqualToDefaultIsSkipped) {
  oci::Seccomp profile;
  profile.defaultAction = "SCMP_ACT_ERRNO";  // EPERM
  profile.syscalls = {rule({"mkdir"}, "SCMP_ACT_ERRNO"),  // same action and errno
                      rule({"rmdir"}, "SCMP_ACT_ERRNO", EPERM),
                      rule({"getpid"}, "SCMP_ACT_ALLOW")};
  auto filter = buildFilter(profile);
  ASSERT_TRUE(filter.ok()) << filter.status();
  std::string text = pfc(*filter);
  EXPECT_THAT(text, Not(HasSubstr("\"mkdir\"")));
  EXPECT_THAT(text, Not(HasSubstr("\"rmdir\"")));
  EXPECT_THAT(text, HasSubstr("\"getpid\""));

  auto allow = buildFilter(allowAllBut({rule({"getpid"}, "SCMP_ACT_ALLOW")}));
  EXPECT_TRUE(allow.ok()) << allow.status();
}

TEST(SeccompBuild, ArchitecturesAreAddedAndNativeDuplicateIsFine) {
  oci::Seccomp profile = allowAllBut({rule({"mkdir"}, "SCMP_ACT_ERRNO", 42)});
  profile.architectures = {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32",
                           "SCMP_ARCH_X86"};
  auto filter = buildFilter(profile);
  ASSERT_TRUE(filter.ok()) << filter.status();
  std::string text = pfc(*filter);
#if defined(__x86_64__)
  EXPECT_THAT(text, HasSubstr("filter for arch x86_64"));
  EXPECT_THAT(text, HasSubstr("filter for arch x86 "));
  EXPECT_THAT(text, HasSubstr("filter for arch x32"));
#endif
}

TEST(SeccompBuild, MultiArchProfileWithSyscallsMissingOnTheNativeArch) {
  // A Docker-style profile: default deny, allow list over three x86 ABIs, including
  // syscalls that exist only on i386 (socketcall, _llseek) and a clone flag check.
  oci::Seccomp profile;
  profile.defaultAction = "SCMP_ACT_ERRNO";
  profile.architectures = {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"};
  profile.syscalls = {
      rule({"accept4", "read", "write", "socketcall", "_llseek", "no_such_call"},
           "SCMP_ACT_ALLOW"),
      rule({"clone"}, "SCMP_ACT_ALLOW", std::nullopt,
           {arg(0, "SCMP_CMP_MASKED_EQ", 0x7E020000, 0)}),
      rule({"personality"}, "SCMP_ACT_ALLOW", std::nullopt, {arg(0, "SCMP_CMP_EQ", 0)}),
      rule({"personality"}, "SCMP_ACT_ALLOW", std::nullopt, {arg(0, "SCMP_CMP_EQ", 8)}),
  };
  auto filter = buildFilter(profile);
  ASSERT_TRUE(filter.ok()) << filter.status();
#if defined(__x86_64__)
  std::string text = pfc(*filter);
  EXPECT_THAT(text, HasSubstr("filter for syscall \"socketcall\" (102)"));  // i386 number
  EXPECT_THAT(text, HasSubstr("$a0.lo32 & 0x7e020000 == 0"));
#endif
}

TEST(SeccompBuild, FlagsAreAccepted) {
  oci::Seccomp profile = allowAllBut({rule({"mkdir"}, "SCMP_ACT_ERRNO", 42)});
  profile.flags = supportedFlags();
  auto filter = buildFilter(profile);
  ASSERT_TRUE(filter.ok()) << filter.status();
  for (const std::string& flag : supportedFlags()) {
    EXPECT_THAT(knownFlags(), Contains(flag));
  }
  if (seccomp_api_get() >= 2) {
    EXPECT_THAT(supportedFlags(), Contains("SECCOMP_FILTER_FLAG_TSYNC"));
    uint32_t tsync = 0;
    ASSERT_EQ(seccomp_attr_get(filter->ctx(), SCMP_FLTATR_CTL_TSYNC, &tsync), 0);
    EXPECT_EQ(tsync, 1u);
  }
  uint32_t nnp = 1;
  ASSERT_EQ(seccomp_attr_get(filter->ctx(), SCMP_FLTATR_CTL_NNP, &nnp), 0);
  EXPECT_EQ(nnp, 0u);  // the runtime sets no_new_privs itself
}

TEST(SeccompBuild, KnownListsMatchTheSpec) {
  EXPECT_THAT(knownActions(),
              AllOf(Contains("SCMP_ACT_KILL"), Contains("SCMP_ACT_KILL_PROCESS"),
                    Contains("SCMP_ACT_KILL_THREAD"), Contains("SCMP_ACT_TRAP"),
                    Contains("SCMP_ACT_ERRNO"), Contains("SCMP_ACT_TRACE"),
                    Contains("SCMP_ACT_ALLOW"), Contains("SCMP_ACT_LOG"),
                    Contains("SCMP_ACT_NOTIFY")));
  EXPECT_EQ(knownOperators().size(), 7u);
  EXPECT_THAT(knownOperators(), Contains("SCMP_CMP_MASKED_EQ"));
  EXPECT_THAT(knownArchitectures(),
              AllOf(Contains("SCMP_ARCH_X86_64"), Contains("SCMP_ARCH_AARCH64"),
                    Contains("SCMP_ARCH_RISCV64"), Contains("SCMP_ARCH_S390X")));
  EXPECT_THAT(knownFlags(), Contains("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"));
  EXPECT_THAT(supportedFlags(), Not(Contains("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV")));
}

TEST(SeccompErrors, NameTheFieldAndTheChoices) {
  EXPECT_THAT(errorOf(allowAllBut({rule({"a"}, "SCMP_ACT_ALLOW"), rule({"b"}, "SCMP_ACT_ALLOW"),
                                   rule({"c"}, "SCMP_ACT_ALLOW"),
                                   rule({"mkdir"}, "SCMP_ACT_FOO")})),
              AllOf(HasSubstr("linux.seccomp.syscalls[3].action: unknown action "
                              "\"SCMP_ACT_FOO\"; use one of SCMP_ACT_KILL, "),
                    HasSubstr("SCMP_ACT_NOTIFY")));

  oci::Seccomp bad_default;
  bad_default.defaultAction = "SCMP_ACT_NOPE";
  EXPECT_THAT(errorOf(bad_default),
              HasSubstr("linux.seccomp.defaultAction: unknown action \"SCMP_ACT_NOPE\""));
  bad_default.defaultAction = "";
  EXPECT_THAT(errorOf(bad_default), HasSubstr("linux.seccomp.defaultAction: missing"));

  EXPECT_THAT(errorOf(allowAllBut({rule({"kill"}, "SCMP_ACT_ERRNO", 1,
                                        {arg(0, "SCMP_CMP_EQ", 1), arg(1, "SCMP_CMP_XOR", 2)})})),
              AllOf(HasSubstr("linux.seccomp.syscalls[0].args[1].op: unknown operator "
                              "\"SCMP_CMP_XOR\"; use one of SCMP_CMP_NE"),
                    HasSubstr("SCMP_CMP_MASKED_EQ")));
  EXPECT_THAT(errorOf(allowAllBut({rule({"kill"}, "SCMP_ACT_ERRNO", 1,
                                        {arg(6, "SCMP_CMP_EQ", 1)})})),
              HasSubstr("linux.seccomp.syscalls[0].args[0].index: 6 is out of range"));

  oci::Seccomp arch = allowAllBut({});
  arch.architectures = {"SCMP_ARCH_X86_64", "SCMP_ARCH_VAX"};
  EXPECT_THAT(errorOf(arch),
              AllOf(HasSubstr("linux.seccomp.architectures[1]: unknown architecture "
                              "\"SCMP_ARCH_VAX\""),
                    HasSubstr("use one of SCMP_ARCH_X86, SCMP_ARCH_X86_64")));

  oci::Seccomp flag = allowAllBut({});
  flag.flags = {"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_BOGUS"};
  EXPECT_THAT(errorOf(flag),
              AllOf(HasSubstr("linux.seccomp.flags[1]: unknown flag "
                              "\"SECCOMP_FILTER_FLAG_BOGUS\"; use one of "),
                    HasSubstr("SECCOMP_FILTER_FLAG_SPEC_ALLOW")));
  flag.flags = {"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"};
  EXPECT_THAT(errorOf(flag),
              HasSubstr("linux.seccomp.flags[0]: flag \"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV\" "
                        "is not supported by libseccomp"));
}

TEST(SeccompErrors, ErrnoRetOnlyWithErrnoOrTrace) {
  EXPECT_THAT(errorOf(allowAllBut({rule({"mkdir"}, "SCMP_ACT_KILL", 1)})),
              HasSubstr("linux.seccomp.syscalls[0].errnoRet: only SCMP_ACT_ERRNO and "
                        "SCMP_ACT_TRACE take an errno, not \"SCMP_ACT_KILL\""));
  oci::Seccomp profile;
  profile.defaultAction = "SCMP_ACT_ALLOW";
  profile.defaultErrnoRet = 1;
  EXPECT_THAT(errorOf(profile), HasSubstr("linux.seccomp.defaultErrnoRet: only"));
  EXPECT_THAT(errorOf(allowAllBut({rule({"mkdir"}, "SCMP_ACT_ERRNO", 70000)})),
              HasSubstr("linux.seccomp.syscalls[0].errnoRet: 70000 does not fit"));
}

TEST(SeccompErrors, NamesAndNotifyRequirements) {
  EXPECT_THAT(errorOf(allowAllBut({rule({}, "SCMP_ACT_KILL")})),
              HasSubstr("linux.seccomp.syscalls[0].names: empty"));
  EXPECT_THAT(errorOf(allowAllBut({rule({"mkdir", ""}, "SCMP_ACT_KILL")})),
              HasSubstr("linux.seccomp.syscalls[0].names[1]: empty syscall name"));

  oci::Seccomp notify_default;
  notify_default.defaultAction = "SCMP_ACT_NOTIFY";
  notify_default.listenerPath = "/run/agent.sock";
  EXPECT_THAT(errorOf(notify_default),
              HasSubstr("linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default"));

  oci::Seccomp notify = allowAllBut({rule({"mkdir"}, "SCMP_ACT_NOTIFY")});
  EXPECT_THAT(errorOf(notify), HasSubstr("linux.seccomp.listenerPath: required"));
  notify.listenerPath = "/run/agent.sock";
  auto filter = buildFilter(notify);
  ASSERT_TRUE(filter.ok()) << filter.status();
  EXPECT_TRUE(filter->usesNotify());
}

TEST(SeccompFilterObject, MovesOwnership) {
  auto built = buildFilter(allowAllBut({}));
  ASSERT_TRUE(built.ok());
  SeccompFilter a = std::move(*built);
  void* ctx = a.ctx();
  ASSERT_NE(ctx, nullptr);
  SeccompFilter b = std::move(a);
  EXPECT_EQ(b.ctx(), ctx);
  EXPECT_EQ(a.ctx(), nullptr);  // NOLINT(bugprone-use-after-move): checking the moved-from state
  oci::Seccomp profile;
  auto loaded = loadFilter(a, profile);
  EXPECT_FALSE(loaded.ok());
}

// ---- enforcement in forked children -----------------------------------------------

TEST(SeccompEnforce, ErrnoRetIsReturnedByTheSyscall) {
  char dir[] = "/tmp/berth-seccomp-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string target = std::string(dir) + "/sub";
  int status = inChild([&] {
    loadOrExit(allowAllBut({rule({"mkdir", "mkdirat"}, "SCMP_ACT_ERRNO", 42)}));
    if (mkdir(target.c_str(), 0755) == 0) return 10;
    if (errno != 42) return 11;
    if (getpid() <= 0) return 12;  // other syscalls still allowed
    return 0;
  });
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
  struct stat st;
  EXPECT_NE(stat(target.c_str(), &st), 0);
  rmdir(dir);
}

TEST(SeccompEnforce, DistinctArgumentsAreAnded) {
  int status = inChild([] {
    signal(SIGUSR1, SIG_IGN);
    signal(SIGUSR2, SIG_IGN);
    pid_t self = getpid();
    loadOrExit(allowAllBut({rule({"kill"}, "SCMP_ACT_ERRNO", 42,
                                 {arg(0, "SCMP_CMP_EQ", static_cast<uint64_t>(self)),
                                  arg(1, "SCMP_CMP_EQ", SIGUSR1)})}));
    if (kill(self, SIGUSR1) == 0 || errno != 42) return 10;  // both match: denied
    if (kill(self, SIGUSR2) != 0) return 11;                 // arg1 differs: allowed
    if (kill(self, 0) != 0) return 12;
    return 0;
  });
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(SeccompEnforce, SameIndexArgumentsAreOred) {
  int status = inChild([] {
    signal(SIGUSR1, SIG_IGN);
    signal(SIGUSR2, SIG_IGN);
    loadOrExit(allowAllBut({rule({"kill"}, "SCMP_ACT_ERRNO", 42,
                                 {arg(1, "SCMP_CMP_EQ", SIGUSR1),
                                  arg(1, "SCMP_CMP_EQ", SIGUSR2)})}));
    pid_t self = getpid();
    if (kill(self, SIGUSR1) == 0 || errno != 42) return 10;
    if (kill(self, SIGUSR2) == 0 || errno != 42) return 11;
    if (kill(self, 0) != 0) return 12;
    return 0;
  });
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(SeccompEnforce, MaskedEqUsesValueAsMaskAndValueTwoAsDatum) {
  int status = inChild([] {
    signal(SIGUSR1, SIG_IGN);  // 10 = 0b1010: (10 & 3) == 2 -> denied
    signal(SIGUSR2, SIG_IGN);  // 12 = 0b1100: (12 & 3) == 0 -> allowed
    loadOrExit(allowAllBut(
        {rule({"kill"}, "SCMP_ACT_ERRNO", 42, {arg(1, "SCMP_CMP_MASKED_EQ", 3, 2)})}));
    pid_t self = getpid();
    if (kill(self, SIGUSR1) == 0 || errno != 42) return 10;
    if (kill(self, SIGUSR2) != 0) return 11;
    if (kill(self, 0) != 0) return 12;
    return 0;
  });
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(SeccompEnforce, KillProcessDeliversSigsys) {
  int status = inChild([] {
    loadOrExit(allowAllBut({rule({"getppid"}, "SCMP_ACT_KILL_PROCESS")}));
    syscall(SYS_getppid);
    return 0;
  });
  ASSERT_TRUE(WIFSIGNALED(status)) << status;
  EXPECT_EQ(WTERMSIG(status), SIGSYS);
}

TEST(SeccompEnforce, DefaultErrnoDeniesUnlistedSyscalls) {
  int status = inChild([] {
    oci::Seccomp profile;
    profile.defaultAction = "SCMP_ACT_ERRNO";
    profile.defaultErrnoRet = 38;  // ENOSYS
    // Allow everything this child still needs (memory management too: the sanitizer
    // runtimes' allocators unmap and advise freed memory), deny the rest.
    profile.syscalls = {rule({"exit", "exit_group", "getpid", "write", "mmap", "munmap",
                              "madvise", "brk", "futex", "rt_sigprocmask", "close"},
                             "SCMP_ACT_ALLOW")};
    loadOrExit(profile);
    if (getpid() <= 0) return 10;
    if (syscall(SYS_getppid) != -1 || errno != 38) return 11;
    return 0;
  });
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(SeccompEnforce, NotifyHandsBackAListener) {
  if (seccomp_api_get() < 5) GTEST_SKIP() << "libseccomp/kernel lack SCMP_ACT_NOTIFY";
  int status = inChild([] {
    oci::Seccomp profile = allowAllBut({rule({"getppid"}, "SCMP_ACT_NOTIFY")});
    profile.listenerPath = "/run/unused-agent.sock";
    int fd = loadOrExit(profile);
    if (fd < 0) return 10;
    if ((fcntl(fd, F_GETFD) & FD_CLOEXEC) == 0) return 11;
    pid_t worker = fork();
    if (worker == 0) {  // inherits the filter; blocks until the supervisor answers
      long rc = syscall(SYS_getppid);
      _exit(rc == -1 && errno == 77 ? 0 : 1);
    }
    struct seccomp_notif* req = nullptr;
    struct seccomp_notif_resp* resp = nullptr;
    if (seccomp_notify_alloc(&req, &resp) != 0) return 12;
    if (seccomp_notify_receive(fd, req) != 0) return 13;
    if (req->data.nr != SYS_getppid || static_cast<pid_t>(req->pid) != worker) return 14;
    resp->id = req->id;
    resp->error = -77;
    resp->val = 0;
    resp->flags = 0;
    if (seccomp_notify_respond(fd, resp) != 0) return 15;
    seccomp_notify_free(req, resp);
    int ws = 0;
    if (waitpid(worker, &ws, 0) != worker) return 16;
    return WIFEXITED(ws) && WEXITSTATUS(ws) == 0 ? 0 : 17;
  });
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(SeccompEnforce, LoadWithoutPrivilegesFailsWithErrno) {
  pid_t pid = fork();
  if (pid == 0) {
    // Without no_new_privs, loading needs CAP_SYS_ADMIN: drop it from the effective set.
    cap_t caps = cap_get_proc();
    cap_value_t admin = CAP_SYS_ADMIN;
    if (caps == nullptr || cap_set_flag(caps, CAP_EFFECTIVE, 1, &admin, CAP_CLEAR) != 0 ||
        cap_set_proc(caps) != 0) {
      _exit(3);
    }
    cap_free(caps);
    oci::Seccomp profile = allowAllBut({rule({"mkdir"}, "SCMP_ACT_ERRNO", 1)});
    auto filter = buildFilter(profile);
    if (!filter.ok()) _exit(1);
    auto fd = loadFilter(*filter, profile);
    _exit(!fd.ok() && errnoOf(fd.status()) == EACCES ? 0 : 2);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace berth::seccomp
