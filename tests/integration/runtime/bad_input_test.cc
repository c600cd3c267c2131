// Bad input to the runtime CLI: every case exits non-zero with a message on stderr
// naming the object at fault (the id, the file or the config field), and leaves no
// state behind (no entry under --root, nothing in `list`). The assertions accept any
// wording that names the object, not runc's exact text.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/fs.h"
#include "common/strings.h"
#include "tests/integration/runtime/bundle_fixture.h"

namespace berth::itest {
namespace {

using ::testing::AllOf;
using ::testing::AnyOf;
using ::testing::HasSubstr;
using ::testing::Not;

class BadInputTest : public RuntimeTest {
 protected:
  // Expects `create` of the default bundle (config already edited) to fail, with a
  // message matching `m`, and to leave nothing behind.
  template <typename M>
  void expectCreateFails(const M& m, bool write_config = true) {
    std::string id = newId("bad");
    CmdResult r;
    if (write_config) {
      r = create(bundle(), id);
    } else {
      r = runtime({"create", "--bundle", bundle().dir(), id});
    }
    EXPECT_NE(r.exit_code, 0) << r.describe();
    EXPECT_THAT(r.err, m) << r.describe();
    expectNoState(id);
  }
  void expectNoState(const std::string& id) {
    EXPECT_FALSE(stateEntryExists(id)) << "state left under " << stateRoot() << " for " << id;
    CmdResult list = runtime({"list", "-q"});
    EXPECT_EQ(list.exit_code, 0) << list.describe();
    EXPECT_THAT(list.out, Not(HasSubstr(id)));
    if (testingBerthRuntime()) {
      EXPECT_TRUE(cgroupDirsFor(id).empty()) << "cgroup left behind for " << id;
    }
  }
};

TEST_F(BadInputTest, MalformedConfigJson) {
  ASSERT_TRUE(fs::writeFileAtomic(bundle().dir() + "/config.json",
                                  "{\"ociVersion\": \"1.0.2\", \"process\": [}\n")
                  .ok());
  // runc 1.1 prints only the decoder's "invalid character ..."; berth must name the file.
  if (testingBerthRuntime()) {
    expectCreateFails(HasSubstr("config.json"), /*write_config=*/false);
  } else {
    expectCreateFails(AnyOf(HasSubstr("config.json"), HasSubstr("invalid character")),
                      /*write_config=*/false);
  }
}

TEST_F(BadInputTest, MissingConfigJson) {
  expectCreateFails(HasSubstr("config.json"), /*write_config=*/false);
}

TEST_F(BadInputTest, MissingRootfs) {
  bundle().config["root"]["path"] = "no-such-rootfs";
  expectCreateFails(HasSubstr("no-such-rootfs"));
}

TEST_F(BadInputTest, UnknownNamespaceType) {
  bundle().config["linux"]["namespaces"].push_back({{"type", "bogusns"}});
  expectCreateFails(HasSubstr("bogusns"));
}

TEST_F(BadInputTest, InvalidSeccompAction) {
  bundle().config["linux"]["seccomp"] = {
      {"defaultAction", "SCMP_ACT_ALLOW"},
      {"syscalls", {{{"names", {"mkdir"}}, {"action", "SCMP_ACT_BOGUS"}}}}};
  expectCreateFails(AnyOf(HasSubstr("SCMP_ACT_BOGUS"), HasSubstr("action")));
}

TEST_F(BadInputTest, InvalidRlimitType) {
  bundle().config["process"]["rlimits"] = {
      {{"type", "RLIMIT_BOGUS"}, {"soft", 1}, {"hard", 1}}};
  expectCreateFails(HasSubstr("RLIMIT_BOGUS"));
}

TEST_F(BadInputTest, MissingExecutable) {
  bundle().setArgs({"/bin/no-such-binary"});
  expectCreateFails(HasSubstr("no-such-binary"));
}

TEST_F(BadInputTest, EmptyProcessArgs) {
  bundle().config["process"]["args"] = Json::array();
  expectCreateFails(HasSubstr("args"));
}

TEST_F(BadInputTest, InvalidContainerId) {
  ASSERT_TRUE(bundle().writeConfig().ok());
  for (std::string bad : {"../escape", "a/b"}) {
    CmdResult r = runtime({"create", "--bundle", bundle().dir(), bad});
    EXPECT_NE(r.exit_code, 0) << bad << ": " << r.describe();
    EXPECT_THAT(r.err, AnyOf(HasSubstr(bad), HasSubstr("id"))) << r.describe();
  }
  EXPECT_FALSE(fs::exists(tmp() + "/escape"));
  auto entries = fs::listDir(stateRoot());
  ASSERT_TRUE(entries.ok());
  EXPECT_TRUE(entries->empty()) << joinStrings(*entries, ",");
}

TEST_F(BadInputTest, IdCollision) {
  bundle().setArgs({"sleep", "100"});
  std::string id = newId("taken");
  pid_t pid = createOrFail(bundle(), id);
  ASSERT_GT(pid, 0);
  CmdResult r = create(bundle(), id);
  EXPECT_NE(r.exit_code, 0) << r.describe();
  EXPECT_THAT(r.err, AnyOf(HasSubstr(id), HasSubstr("exists"))) << r.describe();
  EXPECT_EQ(state(id)->value("pid", 0), pid) << "the existing container must be untouched";
  EXPECT_EQ(::kill(pid, 0), 0);
}

TEST_F(BadInputTest, DeleteRunningWithoutForce) {
  bundle().setArgs({"sleep", "100"});
  std::string id = newId("busy");
  pid_t pid = startOrFail(bundle(), id);
  ASSERT_GT(pid, 0);
  CmdResult r = del(id);
  EXPECT_NE(r.exit_code, 0) << r.describe();
  EXPECT_THAT(r.err, AnyOf(HasSubstr(id), HasSubstr("running"))) << r.describe();
  EXPECT_EQ(status(id), "running");
  EXPECT_TRUE(stateEntryExists(id));
}

// Commands on a container that does not exist. runc says "container does not exist"
// without the id; naming the id is better and also accepted.
TEST_F(BadInputTest, NonexistentContainer) {
  std::string id = "no-such-container";
  const std::vector<std::vector<std::string>> commands = {
      {"state", id},  {"start", id},          {"kill", id, "KILL"}, {"delete", id},
      {"ps", id},     {"exec", id, "true"},
  };
  for (auto& cmd : commands) {
    CmdResult r = runtime(cmd);
    EXPECT_NE(r.exit_code, 0) << cmd[0] << ": " << r.describe();
    if (testingBerthRuntime()) {
      EXPECT_THAT(r.err, HasSubstr(id)) << cmd[0] << ": " << r.describe();
    } else {
      EXPECT_THAT(r.err, AnyOf(HasSubstr(id), HasSubstr("not exist"), HasSubstr("not found")))
          << cmd[0] << ": " << r.describe();
    }
    EXPECT_FALSE(stateEntryExists(id)) << cmd[0] << " created state for " << id;
  }
  // delete --force of a missing container is not an error (runc, crun).
  CmdResult r = runtime({"delete", "--force", id});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
}

TEST_F(BadInputTest, UnknownCommandFails) {
  CmdResult r = runtime({"no-such-command"});
  EXPECT_NE(r.exit_code, 0) << r.describe();
  EXPECT_THAT(r.err + r.out, HasSubstr("no-such-command")) << r.describe();
}

}  // namespace
}  // namespace berth::itest
