// The runtime's cgroup v2 limits checked by their effect, on a host with every
// controller (OCI runtime-spec config-linux.md "Control groups", kernel
// Documentation/admin-guide/cgroup-v2.rst). These tests run inside the VM harness
// (tests/vm/vm-run.sh, CTest label `vm`), whose guest mounts a pure cgroup2 hierarchy
// with cpuset cpu io memory hugetlb pids rdma misc and attaches a virtio disk
// (/dev/vda).
//
// Outside the VM (BERTH_VM unset) a test whose controllers the host's cgroup2 mount
// lacks is skipped and says why; inside the VM (BERTH_VM=1, set by the harness) a
// missing controller or disk is a failure, so a broken guest never passes silently.
//
// Containers use the bundle fixture of tests/integration/runtime (busybox bundle,
// cgroupsPath /berth-itest/<id>, cleanup in TearDown).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "common/fs.h"
#include "common/strings.h"
#include "tests/integration/runtime/bundle_fixture.h"

namespace berth::itest {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr uint64_t kMiB = 1024 * 1024;

// True inside the VM harness's guest.
bool inVm() { return std::getenv("BERTH_VM") != nullptr; }

// Mount point of the first cgroup2 filesystem in /proc/self/mountinfo, "" if none.
std::string cgroup2Mount() {
  auto info = fs::readFile("/proc/self/mountinfo");
  if (!info.ok()) return "";
  for (const auto& line : split(*info, '\n', true)) {
    // "<id> <parent> <maj:min> <root> <mount point> <opts> [optional...] - <fstype> ..."
    auto fields = split(line, ' ', true);
    for (size_t i = 0; i + 1 < fields.size(); ++i) {
      if (fields[i] == "-" && fields[i + 1] == "cgroup2" && fields.size() > 4) return fields[4];
    }
  }
  return "";
}

// The value of `key` in a flat-keyed file ("key value" lines: memory.events, cpu.stat,
// pids.events…), or -1 if absent.
int64_t keyedValue(const std::string& text, const std::string& key) {
  for (const auto& line : split(text, '\n', true)) {
    auto kv = split(line, ' ', true);
    if (kv.size() == 2 && kv[0] == key) return std::strtoll(kv[1].c_str(), nullptr, 10);
  }
  return -1;
}

// "MAJ:MIN" of the harness's scratch virtio disk, "" outside the VM (where /dev/vda
// may well be the host's root disk) or when the guest has none.
std::string diskDevice() {
  if (!inVm()) return "";
  auto dev = fs::readFile("/sys/block/vda/dev");
  return dev.ok() ? std::string(trim(*dev)) : "";
}

constexpr const char* kNoDisk =
    "needs the VM harness's scratch virtio disk (/dev/vda in the guest); run in the VM: "
    "tests/vm/vm-run.sh -- <this binary>";

// Why the required controllers cannot be tested here ("" if they can).
std::string missingControllers(const std::vector<std::string>& wanted) {
  std::string mount = cgroup2Mount();
  if (mount.empty()) return "no cgroup2 filesystem is mounted";
  auto have = fs::readFile(mount + "/cgroup.controllers");
  if (!have.ok()) return strCat("cannot read ", mount, "/cgroup.controllers");
  auto list = split(std::string(trim(*have)), ' ', true);
  std::string missing;
  for (const auto& c : wanted) {
    if (std::find(list.begin(), list.end(), c) == list.end()) missing += " " + c;
  }
  if (missing.empty()) return "";
  return strCat("cgroup2 at ", mount, " lacks controller(s)", missing, " (has: ",
                std::string(trim(*have)),
                "); run these tests in the VM: tests/vm/vm-run.sh -- <this binary>");
}

// Skips (host) or fails (VM) the current test when `why` is not empty.
#define REQUIRE_OR_SKIP(why)                                    \
  do {                                                          \
    std::string reason_ = (why);                                \
    if (!reason_.empty()) {                                     \
      if (inVm()) FAIL() << "in the VM: " << reason_;           \
      GTEST_SKIP() << reason_;                                  \
    }                                                           \
  } while (0)

#define REQUIRE_CONTROLLERS(...) REQUIRE_OR_SKIP(missingControllers({__VA_ARGS__}))

class CgroupsVmTest : public RuntimeTest {
 protected:
  Json& resources() { return bundle().config["linux"]["resources"]; }
  // The cgroup directory of container `id`.
  std::string cgroupDir(const std::string& id) { return cgroup2Mount() + cgroupsPathFor(id); }
  // Contents of interface file `name` of container `id`'s cgroup ("<missing>" if unreadable).
  std::string cgFile(const std::string& id, const std::string& name) {
    auto text = fs::readFile(cgroupDir(id) + "/" + name);
    return text.ok() ? std::string(trim(*text)) : "<missing " + name + ">";
  }
  // Polls `pred` every 20 ms until it holds or `timeout` passes (generous: TCG on a
  // loaded 2-core host is 20-30x slower than native).
  template <typename Pred>
  bool eventually(Pred pred, std::chrono::milliseconds timeout = 30s) {
    auto deadline = Clock::now() + timeout;
    while (!pred()) {
      if (Clock::now() >= deadline) return false;
      std::this_thread::sleep_for(20ms);
    }
    return true;
  }
  void addCaps(const std::vector<std::string>& caps) {
    for (const char* set : {"bounding", "effective", "permitted"}) {
      for (const auto& c : caps) bundle().config["process"]["capabilities"][set].push_back(c);
    }
  }
};

TEST_F(CgroupsVmTest, MemoryMaxOomKillIsReported) {
  REQUIRE_CONTROLLERS("memory");
  resources()["memory"] = {{"limit", 32 * kMiB}, {"swap", 32 * kMiB}};
  // tail keeps the whole "line" of /dev/zero in memory: it grows until the OOM killer
  // picks it (the container's init) inside the 32 MiB cgroup.
  bundle().setArgs({"tail", "/dev/zero"});
  std::string id = newId("oom");
  pid_t pid = startOrFail(bundle(), id);
  ASSERT_GT(pid, 0);
  auto code = waitForExit(pid, 60s);
  ASSERT_TRUE(code.has_value()) << "tail /dev/zero survived 60 s under memory.max";
  EXPECT_EQ(*code, 128 + SIGKILL) << "the OOM killer ends the process by SIGKILL";
  EXPECT_EQ(cgFile(id, "memory.max"), std::to_string(32 * kMiB));
  EXPECT_EQ(cgFile(id, "memory.swap.max"), "0") << "swap = limit means no swap";
  std::string events = cgFile(id, "memory.events");
  EXPECT_GE(keyedValue(events, "oom_kill"), 1) << events;
  EXPECT_GE(keyedValue(events, "max"), 1) << events;

  CmdResult stats = runtime({"events", "--stats", id});
  ASSERT_EQ(stats.exit_code, 0) << stats.describe();
  Json j = Json::parse(split(stats.out, '\n', true).front(), nullptr, false);
  ASSERT_TRUE(j.is_object()) << stats.out;
  EXPECT_GE(j["data"]["memory"]["events"].value("oom_kill", 0), 1) << stats.out;
}

TEST_F(CgroupsVmTest, MemoryReservationSetsMemoryLow) {
  REQUIRE_CONTROLLERS("memory");
  resources()["memory"] = {{"limit", 64 * kMiB}, {"reservation", 16 * kMiB}};
  bundle().setArgs({"sleep", "60"});
  std::string id = newId("low");
  ASSERT_GT(startOrFail(bundle(), id), 0);
  EXPECT_EQ(cgFile(id, "memory.low"), std::to_string(16 * kMiB));
  EXPECT_EQ(cgFile(id, "memory.max"), std::to_string(64 * kMiB));
}

TEST_F(CgroupsVmTest, CpuQuotaThrottles) {
  REQUIRE_CONTROLLERS("cpu");
  resources()["cpu"] = {{"quota", 10000}, {"period", 100000}, {"shares", 512}};
  bundle().setArgs({"sh", "-c", "while :; do :; done"});
  std::string id = newId("cpu");
  ASSERT_GT(startOrFail(bundle(), id), 0);
  EXPECT_EQ(cgFile(id, "cpu.max"), "10000 100000");
  // OCI shares 512 map to weight 1 + (512 - 2) * 9999 / 262142 = 20.
  EXPECT_EQ(cgFile(id, "cpu.weight"), "20");
  // A busy loop limited to 10 ms per 100 ms period is throttled in every period.
  bool throttled = eventually([&] { return keyedValue(cgFile(id, "cpu.stat"), "nr_throttled") >= 3; },
                              15s);
  std::string stat = cgFile(id, "cpu.stat");
  EXPECT_TRUE(throttled) << stat;
  EXPECT_GT(keyedValue(stat, "throttled_usec"), 0) << stat;
  // Usage stays near the quota: well under half of the wall time since it started.
  int64_t periods = keyedValue(stat, "nr_periods");
  int64_t usage = keyedValue(stat, "usage_usec");
  EXPECT_LT(usage, periods * 100000 / 2) << stat;
}

TEST_F(CgroupsVmTest, CpusetPinsTheContainer) {
  REQUIRE_CONTROLLERS("cpuset");
  if (sysconf(_SC_NPROCESSORS_ONLN) < 2) {
    REQUIRE_OR_SKIP("needs 2 CPUs to pin to the second one");
  }
  resources()["cpu"] = {{"cpus", "1"}, {"mems", "0"}};
  bundle().setArgs({"sh", "-c", "grep Cpus_allowed_list /proc/self/status; sleep 60"});
  std::string id = newId("cpuset");
  ASSERT_GT(startOrFail(bundle(), id), 0);
  EXPECT_EQ(cgFile(id, "cpuset.cpus"), "1");
  EXPECT_EQ(cgFile(id, "cpuset.mems"), "0");
  EXPECT_EQ(cgFile(id, "cpuset.cpus.effective"), "1");
  ASSERT_TRUE(eventually([&] { return !containerStdout(id).empty(); }));
  EXPECT_THAT(containerStdout(id), HasSubstr("Cpus_allowed_list:\t1\n"));
}

TEST_F(CgroupsVmTest, PidsMaxBlocksForks) {
  REQUIRE_CONTROLLERS("pids");
  resources()["pids"] = {{"limit", 8}};
  // The inner shell forks sleeps until fork fails (EAGAIN), which ends it; the outer
  // one then reports and execs (no fork needed) so that the cgroup stays populated.
  bundle().setArgs({"sh", "-c",
                    "sh -c 'for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 60 & done; wait'; "
                    "echo after; exec sleep 60"});
  std::string id = newId("pids");
  ASSERT_GT(startOrFail(bundle(), id), 0);
  EXPECT_EQ(cgFile(id, "pids.max"), "8");
  ASSERT_TRUE(eventually([&] { return containerStdout(id) == "after\n"; }, 30s))
      << containerStdout(id) << containerStderr(id);
  EXPECT_THAT(containerStderr(id), HasSubstr("can't fork"));
  std::string events = cgFile(id, "pids.events");
  EXPECT_GE(keyedValue(events, "max"), 1) << events;
  int current = std::atoi(cgFile(id, "pids.current").c_str());
  EXPECT_LE(current, 8);
  EXPECT_GE(current, 6) << "the sleeps forked before the limit keep running";
}

TEST_F(CgroupsVmTest, IoWeightAndIoMaxOnTheVirtioDisk) {
  REQUIRE_CONTROLLERS("io");
  std::string dev = diskDevice();
  REQUIRE_OR_SKIP(dev.empty() ? kNoDisk : "");
  auto mm = split(dev, ':', true);
  ASSERT_EQ(mm.size(), 2u) << dev;
  int major = std::atoi(mm[0].c_str()), minor = std::atoi(mm[1].c_str());
  Json rate = {{"major", major}, {"minor", minor}, {"rate", 1 * kMiB}};
  Json iops = {{"major", major}, {"minor", minor}, {"rate", 100}};
  resources()["blockIO"] = {{"weight", 500},
                            {"throttleReadBpsDevice", Json::array({rate})},
                            {"throttleWriteIOPSDevice", Json::array({iops})}};
  resources()["devices"].push_back(
      {{"allow", true}, {"type", "b"}, {"major", major}, {"minor", minor}, {"access", "rw"}});
  bundle().config["linux"]["devices"] = Json::array(
      {{{"path", "/dev/vda"}, {"type", "b"}, {"major", major}, {"minor", minor},
        {"fileMode", 0660}, {"uid", 0}, {"gid", 0}}});
  // 2 MiB of direct reads at 1 MiB/s: about two seconds.
  bundle().setArgs({"sh", "-c",
                    "dd if=/dev/vda of=/dev/null bs=64k count=32 iflag=direct 2>/dev/null; "
                    "echo dd=$?; sleep 60"});
  std::string id = newId("io");
  auto begin = Clock::now();
  ASSERT_GT(startOrFail(bundle(), id), 0);
  std::string io_max = cgFile(id, "io.max");
  EXPECT_EQ(io_max, strCat(dev, " rbps=", 1 * kMiB, " wbps=max riops=max wiops=100"));
  // blkio weight 500 is io.bfq.weight 500 under BFQ, else io.weight
  // 1 + (500 - 10) * 9999 / 990 = 4950.
  if (fs::exists(cgroupDir(id) + "/io.bfq.weight")) {
    EXPECT_THAT(cgFile(id, "io.bfq.weight"), HasSubstr("default 500"));
  } else {
    EXPECT_EQ(cgFile(id, "io.weight"), "default 4950");
  }
  ASSERT_TRUE(eventually([&] { return !containerStdout(id).empty(); }, 30s))
      << containerStderr(id);
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - begin);
  EXPECT_EQ(containerStdout(id), "dd=0\n") << containerStderr(id);
  EXPECT_GE(took.count(), 900) << "2 MiB at rbps=1MiB/s must take about 2 s";
  // io.stat counts the reads against the disk: "MAJ:MIN rbytes=… wbytes=… rios=…".
  int64_t rbytes = -1;
  for (const auto& line : split(cgFile(id, "io.stat"), '\n', true)) {
    auto fields = split(line, ' ', true);
    if (fields.empty() || fields[0] != dev) continue;
    for (const auto& f : fields) {
      if (f.rfind("rbytes=", 0) == 0) rbytes = std::strtoll(f.c_str() + 7, nullptr, 10);
    }
  }
  EXPECT_GE(rbytes, static_cast<int64_t>(2 * kMiB)) << cgFile(id, "io.stat");
}

TEST_F(CgroupsVmTest, HugetlbLimit) {
  REQUIRE_CONTROLLERS("hugetlb");
  resources()["hugepageLimits"] = Json::array({{{"pageSize", "2MB"}, {"limit", 4 * kMiB}}});
  bundle().setArgs({"sleep", "60"});
  std::string id = newId("huge");
  ASSERT_GT(startOrFail(bundle(), id), 0);
  EXPECT_EQ(cgFile(id, "hugetlb.2MB.max"), std::to_string(4 * kMiB));
}

TEST_F(CgroupsVmTest, DeviceProgramBlocksTheDiskUnlessAllowed) {
  std::string dev = diskDevice();
  REQUIRE_OR_SKIP(dev.empty() ? kNoDisk : "");
  auto mm = split(dev, ':', true);
  ASSERT_EQ(mm.size(), 2u) << dev;
  addCaps({"CAP_MKNOD"});
  std::string script = strCat("mknod /dev/disk b ", mm[0], " ", mm[1],
                              " && head -c 512 /dev/disk | wc -c; echo rc=$?");
  bundle().setArgs({"sh", "-c", script});
  CmdResult denied = run(bundle(), newId("devdeny"));
  EXPECT_EQ(denied.exit_code, 0) << denied.describe();
  EXPECT_THAT(denied.err, HasSubstr("Operation not permitted")) << denied.describe();
  EXPECT_THAT(denied.out, HasSubstr("0\n")) << denied.describe();

  resources()["devices"].push_back({{"allow", true},
                                    {"type", "b"},
                                    {"major", std::atoi(mm[0].c_str())},
                                    {"minor", std::atoi(mm[1].c_str())},
                                    {"access", "rwm"}});
  CmdResult allowed = run(bundle(), newId("devallow"));
  EXPECT_EQ(allowed.exit_code, 0) << allowed.describe();
  EXPECT_THAT(allowed.out, HasSubstr("512\n")) << "the allowed disk reads: " << allowed.describe();
  EXPECT_THAT(allowed.err, Not(HasSubstr("Operation not permitted"))) << allowed.describe();
}

TEST_F(CgroupsVmTest, PauseFreezesTheCgroup) {
  REQUIRE_CONTROLLERS();  // cgroup.freeze is a core file: any cgroup2 host will do
  bundle().setArgs({"sh", "-c", "while true; do echo x >> /tmp/ticks; sleep 0.05; done"});
  std::string id = newId("freeze");
  ASSERT_GT(startOrFail(bundle(), id), 0);
  ASSERT_EQ(runtime({"pause", id}).exit_code, 0);
  EXPECT_EQ(status(id), "paused");
  EXPECT_EQ(cgFile(id, "cgroup.freeze"), "1");
  EXPECT_TRUE(eventually([&] { return keyedValue(cgFile(id, "cgroup.events"), "frozen") == 1; }))
      << cgFile(id, "cgroup.events");
  ASSERT_EQ(runtime({"resume", id}).exit_code, 0);
  EXPECT_EQ(status(id), "running");
  EXPECT_EQ(cgFile(id, "cgroup.freeze"), "0");
  EXPECT_EQ(keyedValue(cgFile(id, "cgroup.events"), "frozen"), 0);
}

TEST_F(CgroupsVmTest, KillAllAndForceDeleteEmptyTheCgroup) {
  REQUIRE_CONTROLLERS("pids");
  // No pid namespace: the children survive their parent unless the cgroup is killed.
  auto& ns = bundle().config["linux"]["namespaces"];
  for (auto it = ns.begin(); it != ns.end(); ++it) {
    if ((*it)["type"] == "pid") {
      ns.erase(it);
      break;
    }
  }
  bundle().setArgs({"sh", "-c", "sleep 100 & sleep 100 & echo ready; wait"});
  std::string id = newId("kall");
  ASSERT_GT(startOrFail(bundle(), id), 0);
  ASSERT_TRUE(eventually([&] { return containerStdout(id) == "ready\n"; }));
  ASSERT_EQ(std::atoi(cgFile(id, "pids.current").c_str()), 3) << "sh and two sleeps";
  CmdResult k = kill(id, "KILL", /*all=*/true);
  ASSERT_EQ(k.exit_code, 0) << k.describe();
  EXPECT_TRUE(eventually([&] { return keyedValue(cgFile(id, "cgroup.events"), "populated") == 0; }))
      << cgFile(id, "cgroup.procs");
  EXPECT_EQ(waitForStatus(id, "stopped"), "stopped");

  bundle().setArgs({"sh", "-c", "sleep 100 & sleep 100 & echo ready; wait"});
  std::string id2 = newId("delf");
  ASSERT_GT(startOrFail(bundle(), id2), 0);
  ASSERT_TRUE(eventually([&] { return containerStdout(id2) == "ready\n"; }));
  std::string dir = cgroupDir(id2);
  CmdResult d = del(id2, /*force=*/true);
  ASSERT_EQ(d.exit_code, 0) << d.describe();
  EXPECT_FALSE(fs::exists(dir)) << "delete --force kills everything and removes " << dir;
}

TEST_F(CgroupsVmTest, StatsReadBack) {
  REQUIRE_CONTROLLERS("cpu", "memory", "pids");
  resources()["memory"] = {{"limit", 64 * kMiB}};
  resources()["pids"] = {{"limit", 32}};
  bundle().setArgs({"sh", "-c", "head -c 4000000 /dev/zero > /dev/shm/x; i=0; "
                                "while [ $i -lt 2000 ]; do i=$((i+1)); done; sleep 60 & echo ok; wait"});
  std::string id = newId("stats");
  ASSERT_GT(startOrFail(bundle(), id), 0);
  ASSERT_TRUE(eventually([&] { return containerStdout(id) == "ok\n"; }, 30s));
  CmdResult r = runtime({"events", "--stats", id});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  Json j = Json::parse(split(r.out, '\n', true).front(), nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.out;
  EXPECT_EQ(j["type"], "stats");
  EXPECT_EQ(j["id"], id);
  const Json& data = j["data"];
  EXPECT_GT(data["cpu"]["usage"].value("total", 0ull), 0ull) << r.out;
  EXPECT_EQ(data["memory"]["usage"].value("limit", 0ull), 64 * kMiB) << r.out;
  // The 4 MB shm file is charged to the container.
  EXPECT_GE(data["memory"]["usage"].value("usage", 0ull), 4000000ull) << r.out;
  EXPECT_EQ(data["pids"].value("current", 0), 2) << "sh and sleep: " << r.out;
}

}  // namespace
}  // namespace berth::itest
