// Cgroups as the runtime applies them (OCI runtime-spec config-linux.md "Control
// groups", "Device allowlist"; runc's pause/resume and kill --all). On this hybrid host
// runc uses the v1 hierarchies and berth-runtime the cgroup2 mount
// (/sys/fs/cgroup/unified, hugetlb only); placement is checked on whichever line of
// /proc/<pid>/cgroup carries the cgroupsPath, and on the "0::" line for berth.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <csignal>
#include <thread>

#include "common/fs.h"
#include "common/strings.h"
#include "tests/integration/runtime/bundle_fixture.h"

namespace berth::itest {
namespace {

using ::testing::AnyOf;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using namespace std::chrono_literals;

class CgroupsTest : public RuntimeTest {
 protected:
  std::vector<int> psPids(const std::string& id) {
    CmdResult r = runtime({"ps", "--format", "json", id});
    EXPECT_EQ(r.exit_code, 0) << r.describe();
    Json pids = Json::parse(r.out, nullptr, false);
    if (!pids.is_array()) return {};
    return pids.get<std::vector<int>>();
  }
  static bool unknownCommand(const CmdResult& r) {
    std::string text = r.err + r.out;
    return text.find("unknown command") != std::string::npos ||
           text.find("No help topic") != std::string::npos ||
           text.find("not implemented") != std::string::npos;
  }
  static off_t fileSize(const std::string& path) {
    auto data = fs::readFile(path);
    return data.ok() ? static_cast<off_t>(data->size()) : -1;
  }
};

TEST_F(CgroupsTest, ContainerIsPlacedInItsCgroup) {
  bundle().setArgs({"sleep", "100"});
  std::string id = newId("cg");
  pid_t pid = startOrFail(bundle(), id);
  ASSERT_GT(pid, 0);
  std::string path = cgroupsPathFor(id);

  auto host_view = fs::readFile(strCat("/proc/", pid, "/cgroup"));
  ASSERT_TRUE(host_view.ok());
  EXPECT_THAT(*host_view, HasSubstr(path));
  if (testingBerthRuntime()) {
    EXPECT_THAT(*host_view, HasSubstr("0::" + path + "\n")) << *host_view;
  }
  CmdResult r = exec(id, {"cat", "/proc/self/cgroup"});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_THAT(r.out, HasSubstr(path)) << "exec joins the container's cgroup";

  auto dirs = cgroupDirsFor(id);
  ASSERT_THAT(dirs, Not(IsEmpty()));
  for (auto& dir : dirs) {
    auto procs = fs::readFile(dir + "/cgroup.procs");
    ASSERT_TRUE(procs.ok()) << dir;
    EXPECT_THAT(split(*procs, '\n', true), ::testing::Contains(std::to_string(pid))) << dir;
  }
  ASSERT_EQ(del(id, true).exit_code, 0);
  EXPECT_THAT(cgroupDirsFor(id), IsEmpty()) << "delete must remove the cgroup";
}

TEST_F(CgroupsTest, PauseAndResume) {
  bundle().setArgs({"sh", "-c", "while true; do echo x >> /tmp/ticks; sleep 0.05; done"});
  std::string id = newId("pause");
  pid_t pid = startOrFail(bundle(), id);
  ASSERT_GT(pid, 0);
  std::string ticks = bundle().rootfs() + "/tmp/ticks";
  for (int i = 0; i < 100 && fileSize(ticks) <= 0; ++i) std::this_thread::sleep_for(10ms);
  ASSERT_GT(fileSize(ticks), 0);

  CmdResult r = runtime({"pause", id});
  if (r.exit_code != 0 && unknownCommand(r)) GTEST_SKIP() << "no pause: " << r.describe();
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(status(id), "paused");
  std::this_thread::sleep_for(100ms);  // let a write in flight land
  off_t frozen = fileSize(ticks);
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(fileSize(ticks), frozen) << "a paused container must not run";

  r = runtime({"resume", id});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(status(id), "running");
  for (int i = 0; i < 100 && fileSize(ticks) == frozen; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_GT(fileSize(ticks), frozen) << "a resumed container must run again";
}

TEST_F(CgroupsTest, KillAllSignalsEveryProcess) {
  // Without a pid namespace, killing the init does not take the other processes with
  // it: only kill --all (by cgroup) reaches them.
  auto& ns = bundle().config["linux"]["namespaces"];
  ns.erase(ns.begin());
  bundle().setArgs({"sh", "-c", "sleep 100 & sleep 100 & echo ready; wait"});
  std::string id = newId("killall");
  pid_t pid = startOrFail(bundle(), id);
  ASSERT_GT(pid, 0);
  for (int i = 0; i < 200 && containerStdout(id).empty(); ++i) std::this_thread::sleep_for(10ms);
  std::vector<int> pids = psPids(id);
  ASSERT_EQ(pids.size(), 3u) << "sh and two sleeps";

  CmdResult r = kill(id, "KILL", /*all=*/true);
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  for (int p : pids) {
    auto code = waitForExit(p, 5s);
    ASSERT_TRUE(code.has_value()) << "pid " << p << " survived kill --all";
    if (*code != -1) {
      EXPECT_EQ(*code, 128 + SIGKILL) << "pid " << p;
    }
  }
  EXPECT_EQ(waitForStatus(id, "stopped"), "stopped");
}

TEST_F(CgroupsTest, MissingControllerIsLoggedNotFatal) {
  SKIP_UNLESS_BERTH_RUNTIME();
  auto controllers = fs::readFile("/sys/fs/cgroup/unified/cgroup.controllers");
  if (!controllers.ok() || controllers->find("cpu") != std::string::npos)
    GTEST_SKIP() << "needs a hybrid host whose cgroup2 mount lacks the cpu controller";
  bundle().config["linux"]["resources"]["cpu"] = {{"shares", 512}};
  bundle().setArgs({"true"});
  std::string id = newId("nocpu");
  std::string log = tmp() + "/runtime.log";
  CmdResult c = create(bundle(), id, {}, {"--log", log});
  ASSERT_EQ(c.exit_code, 0) << c.describe();
  pid_t pid = state(id)->value("pid", 0);
  ASSERT_EQ(start(id).exit_code, 0);
  auto code = waitForExit(pid);
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0);
  auto text = fs::readFile(log);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_THAT(*text, HasSubstr("cpu")) << "the log must name the missing controller";
}

TEST_F(CgroupsTest, MissingControllerFailsWhenStrict) {
  SKIP_UNLESS_BERTH_RUNTIME();
  auto controllers = fs::readFile("/sys/fs/cgroup/unified/cgroup.controllers");
  if (!controllers.ok() || controllers->find("cpu") != std::string::npos)
    GTEST_SKIP() << "needs a hybrid host whose cgroup2 mount lacks the cpu controller";
  bundle().config["linux"]["resources"]["cpu"] = {{"shares", 512}};
  bundle().setArgs({"true"});
  std::string id = newId("strict");
  CmdResult c = create(bundle(), id, {}, {"--cgroup-strict"});
  EXPECT_NE(c.exit_code, 0) << c.describe();
  EXPECT_THAT(c.err, HasSubstr("cpu")) << c.describe();
  EXPECT_FALSE(stateEntryExists(id));
  EXPECT_THAT(cgroupDirsFor(id), IsEmpty());
}

TEST_F(CgroupsTest, DeviceCgroupDeniesUnlistedDevices) {
  // Default config: deny all, plus the runtime's default allow list (null, zero, …).
  bundle().config["process"]["capabilities"]["bounding"].push_back("CAP_MKNOD");
  bundle().config["process"]["capabilities"]["effective"].push_back("CAP_MKNOD");
  bundle().config["process"]["capabilities"]["permitted"].push_back("CAP_MKNOD");
  bundle().setArgs({"sh", "-c",
                    "head -c1 /dev/null; echo null=$?; head -c1 /dev/zero | wc -c; "
                    "mknod /dev/sda b 8 0; head -c1 /dev/sda; echo sda=$?"});
  CmdResult r = run(bundle(), newId("dev"));
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_THAT(r.out, HasSubstr("null=0\n1\n")) << r.describe();
  EXPECT_THAT(r.out, HasSubstr("sda=1\n")) << r.describe();
  EXPECT_THAT(r.err, HasSubstr("Operation not permitted")) << r.describe();
}

TEST_F(CgroupsTest, DeviceCgroupAllowRule) {
  Json caps = bundle().config["process"]["capabilities"]["bounding"];
  caps.push_back("CAP_MKNOD");
  for (const char* set : {"bounding", "effective", "permitted"})
    bundle().config["process"]["capabilities"][set] = caps;
  bundle().config["linux"]["resources"]["devices"].push_back(
      {{"allow", true}, {"type", "b"}, {"major", 8}, {"minor", 0}, {"access", "rwm"}});
  bundle().setArgs(
      {"sh", "-c", "mknod /dev/sda b 8 0 && echo made; head -c1 /dev/sda >/dev/null; echo done"});
  CmdResult r = run(bundle(), newId("devallow"));
  EXPECT_EQ(r.out, "made\ndone\n") << r.describe();
  // Whether or not the host has an 8:0 disk, the device cgroup must not refuse it.
  EXPECT_THAT(r.err, Not(HasSubstr("Operation not permitted"))) << r.describe();
}

}  // namespace
}  // namespace berth::itest
