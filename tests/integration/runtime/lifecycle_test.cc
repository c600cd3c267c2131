// Container lifecycle through the runtime CLI (OCI runtime-spec "Lifecycle" and
// "Operations"; runc's CLI conventions for run/list/ps): exit codes, state JSON,
// create/start/kill/delete transitions, list, ps, hooks and id collisions.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <csignal>

#include "common/fs.h"
#include "common/strings.h"
#include "tests/integration/runtime/bundle_fixture.h"

namespace berth::itest {
namespace {

using ::testing::AnyOf;
using ::testing::HasSubstr;

using LifecycleTest = RuntimeTest;

TEST_F(LifecycleTest, RunExitsZeroAndLeavesNoState) {
  bundle().setArgs({"touch", "/tmp/ran"});
  std::string id = newId("true");
  CmdResult r = run(bundle(), id);
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_TRUE(fs::exists(bundle().rootfs() + "/tmp/ran")) << "the process did not run";
  EXPECT_FALSE(stateEntryExists(id)) << "run without --detach must delete the container";
  EXPECT_TRUE(cgroupDirsFor(id).empty());
}

TEST_F(LifecycleTest, RunPropagatesExitCode) {
  CmdResult r = runArgs({"sh", "-c", "exit 3"});
  EXPECT_EQ(r.exit_code, 3) << r.describe();
}

TEST_F(LifecycleTest, RunCapturesStdoutAndStderr) {
  CmdResult r = runArgs({"sh", "-c", "echo to-out; echo to-err >&2"});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(r.out, "to-out\n");
  EXPECT_THAT(r.err, HasSubstr("to-err\n"));
}

TEST_F(LifecycleTest, RunKilledBySignalExits128PlusSignal) {
  // A pid-namespace init cannot kill itself with a signal, so share the host pid ns.
  auto& ns = bundle().config["linux"]["namespaces"];
  ns.erase(ns.begin());  // "pid" is first in the default
  ASSERT_EQ(bundle().config["linux"]["namespaces"][0]["type"], "network");
  CmdResult r = runArgs({"sh", "-c", "kill -KILL $$"});
  EXPECT_EQ(r.exit_code, 128 + SIGKILL) << r.describe();
}

TEST_F(LifecycleTest, CreateStartExitStateTransitions) {
  bundle().setArgs({"sh", "-c", "echo hello-from-init; exit 5"});
  std::string id = newId("life");
  CmdResult c = create(bundle(), id);
  ASSERT_EQ(c.exit_code, 0) << c.describe();

  auto st = state(id);
  ASSERT_TRUE(st.ok()) << st.status();
  const Json& s = *st;
  for (const char* key : {"ociVersion", "id", "pid", "status", "bundle"}) {
    EXPECT_TRUE(s.contains(key)) << "state lacks \"" << key << "\": " << s.dump();
  }
  // runc's additions that tools rely on.
  for (const char* key : {"rootfs", "created", "owner"}) {
    EXPECT_TRUE(s.contains(key)) << "state lacks \"" << key << "\": " << s.dump();
  }
  EXPECT_EQ(s.value("id", ""), id);
  EXPECT_EQ(s.value("status", ""), "created");
  EXPECT_EQ(s.value("bundle", ""), bundle().dir());
  EXPECT_EQ(s.value("rootfs", ""), bundle().rootfs());
  pid_t pid = s.value("pid", 0);
  ASSERT_GT(pid, 0);
  EXPECT_EQ(::kill(pid, 0), 0) << "init of a created container must exist";
  EXPECT_EQ(containerStdout(id), "") << "the user process must not run before start";
  EXPECT_TRUE(stateEntryExists(id));

  CmdResult r = start(id);
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  auto code = waitForExit(pid);
  ASSERT_TRUE(code.has_value()) << "container did not exit";
  EXPECT_EQ(*code, 5);
  EXPECT_EQ(containerStdout(id), "hello-from-init\n");
  EXPECT_EQ(waitForStatus(id, "stopped"), "stopped");

  r = del(id);
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_FALSE(state(id).ok());
  EXPECT_FALSE(stateEntryExists(id));
  EXPECT_TRUE(cgroupDirsFor(id).empty()) << "cgroup left behind after delete";
}

TEST_F(LifecycleTest, StartedContainerIsRunning) {
  bundle().setArgs({"sleep", "100"});
  std::string id = newId("run");
  pid_t pid = startOrFail(bundle(), id);
  ASSERT_GT(pid, 0);
  EXPECT_EQ(status(id), "running");
  auto st = state(id);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ((*st).value("pid", 0), pid);
}

TEST_F(LifecycleTest, KillSigkillStopsContainer) {
  bundle().setArgs({"sleep", "100"});
  std::string id = newId("kill9");
  pid_t pid = startOrFail(bundle(), id);
  ASSERT_GT(pid, 0);
  CmdResult r = kill(id, "KILL");
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  auto code = waitForExit(pid);
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 128 + SIGKILL);
  EXPECT_EQ(waitForStatus(id, "stopped"), "stopped");
  EXPECT_EQ(del(id).exit_code, 0);
  EXPECT_FALSE(stateEntryExists(id));
}

TEST_F(LifecycleTest, KillSigtermReachesTrapInInit) {
  // An init in a pid namespace only gets signals it has a handler for.
  bundle().setArgs({"sh", "-c", "trap 'exit 42' TERM; echo ready; sleep 100 & wait"});
  std::string id = newId("term");
  pid_t pid = startOrFail(bundle(), id);
  ASSERT_GT(pid, 0);
  // Wait for the trap to be installed.
  for (int i = 0; i < 200 && containerStdout(id).empty(); ++i) ::usleep(10000);
  ASSERT_EQ(containerStdout(id), "ready\n");
  CmdResult r = kill(id, "TERM");
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  auto code = waitForExit(pid);
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 42);
}

TEST_F(LifecycleTest, KillAcceptsNumericAndPrefixedSignals) {
  bundle().setArgs({"sleep", "100"});
  std::string id = newId("sig");
  pid_t pid = startOrFail(bundle(), id);
  ASSERT_GT(pid, 0);
  CmdResult r = kill(id, "SIGCONT");
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  r = kill(id, "9");
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  auto code = waitForExit(pid);
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 128 + SIGKILL);
}

TEST_F(LifecycleTest, DeleteCreatedContainerWithoutForce) {
  bundle().setArgs({"true"});
  std::string id = newId("delcreated");
  pid_t pid = createOrFail(bundle(), id);
  ASSERT_GT(pid, 0);
  CmdResult r = del(id);
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_FALSE(stateEntryExists(id));
  auto code = waitForExit(pid);
  EXPECT_TRUE(code.has_value()) << "init of a deleted container must be gone";
}

TEST_F(LifecycleTest, DeleteRunningNeedsForce) {
  bundle().setArgs({"sleep", "100"});
  std::string id = newId("delrun");
  pid_t pid = startOrFail(bundle(), id);
  ASSERT_GT(pid, 0);

  CmdResult r = del(id);
  EXPECT_NE(r.exit_code, 0) << r.describe();
  EXPECT_THAT(r.err, AnyOf(HasSubstr(id), HasSubstr("running"))) << r.describe();
  EXPECT_EQ(status(id), "running") << "a refused delete must leave the container running";
  EXPECT_EQ(::kill(pid, 0), 0);

  r = del(id, /*force=*/true);
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  auto code = waitForExit(pid);
  ASSERT_TRUE(code.has_value()) << "delete --force must kill the init";
  EXPECT_FALSE(stateEntryExists(id));
  EXPECT_FALSE(state(id).ok());
  EXPECT_TRUE(cgroupDirsFor(id).empty());
}

TEST_F(LifecycleTest, ListShowsContainers) {
  bundle().setArgs({"sleep", "100"});
  std::string id = newId("list");
  pid_t pid = startOrFail(bundle(), id);
  ASSERT_GT(pid, 0);

  CmdResult r = runtime({"list"});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_THAT(r.out, HasSubstr(id));
  EXPECT_THAT(r.out, HasSubstr("running"));

  r = runtime({"list", "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  Json list = Json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(list.is_array()) << r.out;
  ASSERT_EQ(list.size(), 1u) << r.out;
  EXPECT_EQ(list[0].value("id", ""), id);
  EXPECT_EQ(list[0].value("status", ""), "running");
  EXPECT_EQ(list[0].value("pid", 0), pid);
  EXPECT_EQ(list[0].value("bundle", ""), bundle().dir());

  r = runtime({"list", "-q"});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(r.out, id + "\n");
}

TEST_F(LifecycleTest, ListOfEmptyRootIsEmpty) {
  CmdResult r = runtime({"list", "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  Json list = Json::parse(r.out, nullptr, false);
  // runc prints "null" for no containers; an empty array is as good.
  EXPECT_TRUE(list.is_null() || (list.is_array() && list.empty())) << r.out;
}

TEST_F(LifecycleTest, PsListsContainerPids) {
  bundle().setArgs({"sh", "-c", "sleep 100 & echo started; wait"});
  std::string id = newId("ps");
  pid_t pid = startOrFail(bundle(), id);
  ASSERT_GT(pid, 0);
  for (int i = 0; i < 200 && containerStdout(id).empty(); ++i) ::usleep(10000);

  CmdResult r = runtime({"ps", "--format", "json", id});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  Json pids = Json::parse(r.out, nullptr, false);
  ASSERT_TRUE(pids.is_array()) << r.out;
  std::vector<int> got = pids.get<std::vector<int>>();
  EXPECT_THAT(got, ::testing::Contains(pid));
  EXPECT_EQ(got.size(), 2u) << "init sh and its sleep: " << r.out;
}

TEST_F(LifecycleTest, HooksRunInOrderWithState) {
  std::string order = tmp() + "/hooks.order";
  auto hook = [&](const std::string& name) {
    std::string file = tmp() + "/hook-" + name + ".json";
    return Json{{"path", "/bin/sh"},
                {"args", {"sh", "-c", strCat("cat > ", file, "; echo ", name, " >> ", order)}},
                {"timeout", 10}};
  };
  Json& hooks = bundle().config["hooks"];
  for (const char* name : {"prestart", "createRuntime", "poststart", "poststop"})
    hooks[name] = Json::array({hook(name)});
  bundle().setArgs({"sh", "-c", "exit 0"});
  std::string id = newId("hooks");

  pid_t pid = createOrFail(bundle(), id);
  ASSERT_GT(pid, 0);
  auto lines = [&] {
    auto text = fs::readFile(order);
    return text.ok() ? split(*text, '\n', true) : std::vector<std::string>{};
  };
  std::vector<std::string> after_create = lines();
  ASSERT_GE(after_create.size(), 2u);
  EXPECT_EQ(after_create[0], "prestart");
  EXPECT_EQ(after_create[1], "createRuntime");
  // runc 1.1 runs poststart hooks already during `create` (fixed in runc 1.2); the
  // spec says poststart runs after the user process started, which berth follows.
  if (testingBerthRuntime()) {
    EXPECT_EQ(after_create.size(), 2u) << "poststart must not run before start";
  }

  ASSERT_EQ(start(id).exit_code, 0);
  ASSERT_TRUE(waitForExit(pid).has_value());
  EXPECT_EQ(lines(), (std::vector<std::string>{"prestart", "createRuntime", "poststart"}));
  ASSERT_EQ(del(id).exit_code, 0);
  EXPECT_EQ(lines(), (std::vector<std::string>{"prestart", "createRuntime", "poststart",
                                               "poststop"}));

  for (const char* name : {"prestart", "createRuntime", "poststart", "poststop"}) {
    auto text = fs::readFile(tmp() + "/hook-" + name + ".json");
    ASSERT_TRUE(text.ok()) << name << " hook wrote nothing";
    Json s = Json::parse(*text, nullptr, false);
    ASSERT_TRUE(s.is_object()) << name << " hook got no state JSON: " << *text;
    EXPECT_EQ(s.value("id", ""), id) << name;
    EXPECT_EQ(s.value("bundle", ""), bundle().dir()) << name;
    EXPECT_TRUE(s.contains("ociVersion")) << name;
    if (std::string(name) != "poststop") {
      EXPECT_EQ(s.value("pid", 0), pid) << name;
    }
  }
}

TEST_F(LifecycleTest, FailingPrestartHookFailsCreateAndCleansUp) {
  bundle().config["hooks"]["prestart"] =
      Json::array({{{"path", "/bin/sh"}, {"args", {"sh", "-c", "exit 7"}}}});
  bundle().setArgs({"true"});
  std::string id = newId("badhook");
  CmdResult r = create(bundle(), id);
  EXPECT_NE(r.exit_code, 0) << r.describe();
  EXPECT_FALSE(r.err.empty());
  EXPECT_FALSE(stateEntryExists(id)) << "failed create must leave no state";
}

TEST_F(LifecycleTest, CreateWithExistingIdFails) {
  bundle().setArgs({"sleep", "100"});
  std::string id = newId("dup");
  pid_t pid = createOrFail(bundle(), id);
  ASSERT_GT(pid, 0);
  Bundle& other = newBundle();
  other.setArgs({"true"});
  CmdResult r = create(other, id);
  EXPECT_NE(r.exit_code, 0) << r.describe();
  EXPECT_THAT(r.err, AnyOf(HasSubstr(id), HasSubstr("exists"))) << r.describe();
  // The first container is untouched.
  auto st = state(id);
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ((*st).value("status", ""), "created");
  EXPECT_EQ((*st).value("pid", 0), pid);
  EXPECT_EQ((*st).value("bundle", ""), bundle().dir());
}

TEST_F(LifecycleTest, StartTwiceFails) {
  bundle().setArgs({"sleep", "100"});
  std::string id = newId("start2");
  pid_t pid = startOrFail(bundle(), id);
  ASSERT_GT(pid, 0);
  CmdResult r = start(id);
  EXPECT_NE(r.exit_code, 0) << r.describe();
  EXPECT_FALSE(r.err.empty());
  EXPECT_EQ(status(id), "running");
}

}  // namespace
}  // namespace berth::itest
