// Process security settings (OCI runtime-spec config.md "Linux Process":
// capabilities, noNewPrivileges, oomScoreAdj; config-linux.md "Seccomp"): the kernel's
// view in /proc/self/status matches the config, seccomp rules act, and a bad seccomp
// profile fails `create` cleanly.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>

#include "common/fs.h"
#include "common/strings.h"
#include "tests/integration/runtime/bundle_fixture.h"

namespace berth::itest {
namespace {

using ::testing::AnyOf;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

class SecurityTest : public RuntimeTest {
 protected:
  // Runs `cat /proc/self/status` in a container and returns field -> value.
  std::map<std::string, std::string> procStatus() {
    bundle().setArgs({"cat", "/proc/self/status"});
    CmdResult r = run(bundle(), newId("status"));
    EXPECT_EQ(r.exit_code, 0) << r.describe();
    std::map<std::string, std::string> fields;
    for (auto& line : split(r.out, '\n', true)) {
      auto colon = line.find(':');
      if (colon == std::string::npos) continue;
      fields[line.substr(0, colon)] = std::string(trim(line.substr(colon + 1)));
    }
    EXPECT_TRUE(fields.count("CapEff") && fields.count("NoNewPrivs"))
        << "no /proc/self/status from the container: " << r.describe();
    return fields;
  }
  static uint64_t hexMask(const std::string& text) {
    return std::strtoull(text.c_str(), nullptr, 16);
  }
  void setCaps(const std::map<std::string, std::vector<std::string>>& sets) {
    Json caps = Json::object();
    for (auto& [set, names] : sets) caps[set] = names;
    bundle().config["process"]["capabilities"] = caps;
  }
};

TEST_F(SecurityTest, DefaultCapabilities) {
  auto st = procStatus();
  uint64_t want = capMask({"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"});
  EXPECT_EQ(hexMask(st["CapEff"]), want) << st["CapEff"];
  EXPECT_EQ(hexMask(st["CapPrm"]), want) << st["CapPrm"];
  EXPECT_EQ(hexMask(st["CapBnd"]), want) << st["CapBnd"];
  EXPECT_EQ(hexMask(st["CapInh"]), 0u) << st["CapInh"];
  EXPECT_EQ(hexMask(st["CapAmb"]), 0u) << st["CapAmb"];
}

TEST_F(SecurityTest, DistinctCapabilitySets) {
  setCaps({{"bounding", {"CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_SETUID"}},
           {"permitted", {"CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"}},
           {"effective", {"CAP_CHOWN", "CAP_KILL"}}});
  auto st = procStatus();
  EXPECT_EQ(hexMask(st["CapBnd"]),
            capMask({"CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_SETUID"}));
  EXPECT_EQ(hexMask(st["CapPrm"]), capMask({"CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"}));
  // For uid 0, execve(2) makes the effective set equal to the permitted set, whatever
  // the runtime put in the effective set before exec (capabilities(7)).
  EXPECT_EQ(hexMask(st["CapEff"]), capMask({"CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"}));
  EXPECT_EQ(hexMask(st["CapInh"]), 0u);
}

TEST_F(SecurityTest, NoCapabilitiesAtAll) {
  bundle().config["process"]["capabilities"] = Json::object();
  auto st = procStatus();
  EXPECT_EQ(hexMask(st["CapEff"]), 0u);
  EXPECT_EQ(hexMask(st["CapPrm"]), 0u);
  EXPECT_EQ(hexMask(st["CapBnd"]), 0u);
}

TEST_F(SecurityTest, AmbientCapabilitiesForNonRootUser) {
  std::vector<std::string> one = {"CAP_NET_BIND_SERVICE"};
  setCaps({{"bounding", one}, {"permitted", one}, {"effective", one}, {"inheritable", one},
           {"ambient", one}});
  bundle().config["process"]["user"] = {{"uid", 1000}, {"gid", 1000}};
  auto st = procStatus();
  uint64_t want = capMask(one);
  EXPECT_EQ(st["Uid"], "1000\t1000\t1000\t1000");
  EXPECT_EQ(hexMask(st["CapAmb"]), want) << st["CapAmb"];
  EXPECT_EQ(hexMask(st["CapEff"]), want) << "ambient caps survive exec as a non-root user";
  EXPECT_EQ(hexMask(st["CapInh"]), want);
}

TEST_F(SecurityTest, NonRootUserWithoutAmbientHasNoEffectiveCaps) {
  bundle().config["process"]["user"] = {{"uid", 1000}, {"gid", 1000}};
  auto st = procStatus();
  EXPECT_EQ(hexMask(st["CapEff"]), 0u) << st["CapEff"];
  EXPECT_EQ(hexMask(st["CapPrm"]), 0u) << st["CapPrm"];
  EXPECT_EQ(hexMask(st["CapBnd"]),
            capMask({"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}));
}

TEST_F(SecurityTest, NoNewPrivileges) {
  auto st = procStatus();
  EXPECT_EQ(st["NoNewPrivs"], "1");
}

TEST_F(SecurityTest, NoNewPrivilegesOff) {
  auto self = fs::readFile("/proc/self/status");
  ASSERT_TRUE(self.ok());
  if (self->find("NoNewPrivs:\t1") != std::string::npos)
    GTEST_SKIP() << "the test process itself runs with no_new_privs";
  bundle().config["process"]["noNewPrivileges"] = false;
  auto st = procStatus();
  EXPECT_EQ(st["NoNewPrivs"], "0");
}

TEST_F(SecurityTest, SeccompErrnoRuleDeniesMkdir) {
  bundle().config["linux"]["seccomp"] = {
      {"defaultAction", "SCMP_ACT_ALLOW"},
      {"syscalls",
       {{{"names", {"mkdir", "mkdirat"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", 42}}}}};
  bundle().setArgs({"sh", "-c", "mkdir /tmp/x; echo rc=$?; grep Seccomp: /proc/self/status"});
  CmdResult r = run(bundle(), newId("seccomp"));
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_THAT(r.out, HasSubstr("rc=1"));
  // errno 42 is ENOMSG.
  EXPECT_THAT(r.err, HasSubstr("No message of desired type")) << r.describe();
  EXPECT_THAT(r.out, HasSubstr("Seccomp:\t2"));
  EXPECT_FALSE(fs::exists(bundle().rootfs() + "/tmp/x"));
}

TEST_F(SecurityTest, SeccompDefaultErrnoWithoutErrnoRetIsEperm) {
  bundle().config["linux"]["seccomp"] = {
      {"defaultAction", "SCMP_ACT_ALLOW"},
      {"syscalls", {{{"names", {"mkdir", "mkdirat"}}, {"action", "SCMP_ACT_ERRNO"}}}}};
  bundle().setArgs({"mkdir", "/tmp/y"});
  CmdResult r = run(bundle(), newId("seccomp-eperm"));
  EXPECT_NE(r.exit_code, 0) << r.describe();
  EXPECT_THAT(r.err, HasSubstr("Operation not permitted")) << r.describe();
}

TEST_F(SecurityTest, SeccompDefaultAllowProfile) {
  bundle().config["linux"]["seccomp"] = {{"defaultAction", "SCMP_ACT_ALLOW"},
                                         {"architectures", {"SCMP_ARCH_X86_64"}}};
  bundle().setArgs({"sh", "-c", "mkdir /tmp/x && echo made; grep Seccomp: /proc/self/status"});
  CmdResult r = run(bundle(), newId("seccomp-allow"));
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_THAT(r.out, HasSubstr("made\n"));
}

TEST_F(SecurityTest, InvalidSeccompActionFailsCreateAndLeavesNothing) {
  bundle().config["linux"]["seccomp"] = {{"defaultAction", "SCMP_ACT_FOO"}};
  bundle().setArgs({"true"});
  std::string id = newId("badseccomp");
  CmdResult r = create(bundle(), id);
  EXPECT_NE(r.exit_code, 0) << r.describe();
  EXPECT_THAT(r.err, AnyOf(HasSubstr("SCMP_ACT_FOO"), HasSubstr("seccomp"))) << r.describe();
  EXPECT_FALSE(stateEntryExists(id));
  EXPECT_FALSE(state(id).ok());
  CmdResult list = runtime({"list", "-q"});
  EXPECT_EQ(list.exit_code, 0) << list.describe();
  EXPECT_EQ(list.out, "");
  if (testingBerthRuntime()) {
    EXPECT_THAT(cgroupDirsFor(id), IsEmpty()) << "cgroup left behind by a failed create";
  }
}

TEST_F(SecurityTest, OomScoreAdjRaised) {
  auto own = fs::readFile("/proc/self/oom_score_adj");
  ASSERT_TRUE(own.ok());
  int current = std::atoi(own->c_str());
  // Root here cannot lower oom_score_adj below its current value: only raise it.
  int want = std::min(current + 300, 1000);
  if (want == current) GTEST_SKIP() << "oom_score_adj already 1000";
  bundle().config["process"]["oomScoreAdj"] = want;
  bundle().setArgs({"cat", "/proc/self/oom_score_adj"});
  CmdResult r = run(bundle(), newId("oom"));
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(r.out, strCat(want, "\n"));
}

}  // namespace
}  // namespace berth::itest
