// Unit tests for cri/container_stats.h: cgroup discovery on unified, hybrid and legacy
// layouts (fake trees in a temp dir), counters, the CPU rate tracker, net/dev parsing
// and the CRI stats builders; one privileged test on a real cgroup.
#include "cri/container_stats.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "common/fs.h"
#include "common/scope_guard.h"
#include "common/strings.h"

namespace berth::cri {
namespace {

namespace v1 = ::runtime::v1;
using ::testing::HasSubstr;
using ::testing::Optional;

class CgroupTreeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/berth-stats-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_.mount_root = tmpl;
  }
  void TearDown() override { (void)fs::removeAll(root_.mount_root); }

  // Writes <mount_root>/<rel> (creating parents).
  void put(const std::string& rel, const std::string& content) {
    std::string path = fs::join(root_.mount_root, rel);
    ASSERT_TRUE(fs::mkdirAll(path.substr(0, path.rfind('/'))).ok());
    ASSERT_TRUE(fs::writeFileAtomic(path, content, 0644, fs::Durability::kVolatile).ok());
  }
  void mkdir(const std::string& rel) {
    ASSERT_TRUE(fs::mkdirAll(fs::join(root_.mount_root, rel)).ok());
  }
  std::string abs(const std::string& rel) const { return fs::join(root_.mount_root, rel); }

  // A pure cgroup v2 host.
  void unifiedHost() { put("cgroup.controllers", "cpuset cpu io memory pids\n"); }
  // A hybrid host like the build machine: v1 controllers, cgroup2 with hugetlb only.
  void hybridHost(const std::string& cpuacct_mount = "cpuacct") {
    put("unified/cgroup.controllers", "hugetlb\n");
    mkdir(cpuacct_mount);
    mkdir("memory");
    mkdir("pids");
  }

  CgroupRoot root_;
};

// --- hierarchy and paths ---

TEST_F(CgroupTreeTest, DetectsUnifiedHybridAndLegacyLayouts) {
  auto none = detectCgroupHierarchy(root_);
  ASSERT_FALSE(none.ok());
  EXPECT_TRUE(absl::IsNotFound(none.status()));
  EXPECT_THAT(std::string(none.status().message()), HasSubstr(root_.mount_root));

  mkdir("memory");
  EXPECT_EQ(detectCgroupHierarchy(root_).value(), CgroupHierarchy::kLegacy);
  put("unified/cgroup.controllers", "hugetlb\n");
  EXPECT_EQ(detectCgroupHierarchy(root_).value(), CgroupHierarchy::kHybrid);
  unifiedHost();
  EXPECT_EQ(detectCgroupHierarchy(root_).value(), CgroupHierarchy::kUnified);
}

// cgroupRelativePath's value, or "error: <message>".
std::string relPath(const std::string& cgroups_path, const std::string& id) {
  auto r = cgroupRelativePath(cgroups_path, id);
  return r.ok() ? *r : "error: " + std::string(r.status().message());
}

TEST(CgroupRelativePath, CgroupfsPaths) {
  EXPECT_EQ(relPath("", "c1"), "/berth/c1");
  EXPECT_EQ(relPath("/berth/c1", "c1"), "/berth/c1");
  EXPECT_EQ(relPath("kubepods/pod1/c1", "c1"), "/kubepods/pod1/c1");
  EXPECT_EQ(relPath("//kubepods///c1/", "c1"), "/kubepods/c1");
}

TEST(CgroupRelativePath, SystemdPathsExpandSlices) {
  EXPECT_EQ(relPath("system.slice:berth:c1", "c1"), "/system.slice/berth-c1.scope");
  EXPECT_EQ(relPath("kubepods-besteffort-pod12.slice:berth:c1", "c1"),
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod12.slice/"
            "berth-c1.scope");
  EXPECT_EQ(relPath("-.slice:berth:c1", "c1"), "/berth-c1.scope");
  EXPECT_EQ(relPath(":berth:c1", "c1"), "/system.slice/berth-c1.scope");
  EXPECT_EQ(relPath("system.slice::c1", "c1"), "/system.slice/c1.scope");
  EXPECT_EQ(relPath("system.slice:berth:sub.slice", "c1"), "/system.slice/sub.slice");
}

TEST(CgroupRelativePath, RejectsBadPaths) {
  for (const char* bad : {"/", "/a/../b", "a/./b", "system.slice:berth", "a:b:c:d",
                          "kubepods:berth:c1", "kube--pods.slice:berth:c1",
                          "-kubepods.slice:berth:c1", "system.slice:berth:", "a/b.slice:x:y"}) {
    auto r = cgroupRelativePath(bad, "c1");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << bad;
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(bad)) << bad;
  }
}

TEST_F(CgroupTreeTest, FindsTheUnifiedDir) {
  unifiedHost();
  mkdir("berth/c1");
  auto dirs = findCgroupDirs(root_, "/berth/c1", "c1");
  ASSERT_TRUE(dirs.ok()) << dirs.status();
  EXPECT_EQ(dirs->hierarchy, CgroupHierarchy::kUnified);
  EXPECT_EQ(dirs->relative_path, "/berth/c1");
  EXPECT_EQ(dirs->unified, abs("berth/c1"));
  EXPECT_EQ(dirs->cpuacct, "");
  EXPECT_EQ(dirs->memory, "");
  EXPECT_EQ(dirs->pids, "");
}

TEST_F(CgroupTreeTest, MissingCgroupIsNotFoundNamingThePath) {
  unifiedHost();
  auto dirs = findCgroupDirs(root_, "", "gone");
  ASSERT_FALSE(dirs.ok());
  EXPECT_TRUE(absl::IsNotFound(dirs.status()));
  EXPECT_THAT(std::string(dirs.status().message()), HasSubstr(abs("berth/gone")));

  auto usage = readContainerCgroupUsage(root_, "", "gone");
  EXPECT_TRUE(absl::IsNotFound(usage.status()));
}

TEST_F(CgroupTreeTest, HybridHostWhereOnlyCgroup2HasTheContainer) {
  // What berth-runtime does on hybrid hosts: the cgroup exists only in cgroup2.
  hybridHost();
  mkdir("unified/berth/c1");
  auto dirs = findCgroupDirs(root_, "/berth/c1", "c1");
  ASSERT_TRUE(dirs.ok()) << dirs.status();
  EXPECT_EQ(dirs->hierarchy, CgroupHierarchy::kHybrid);
  EXPECT_EQ(dirs->unified, abs("unified/berth/c1"));
  EXPECT_EQ(dirs->cpuacct, "");
  EXPECT_EQ(dirs->memory, "");
  EXPECT_EQ(dirs->pids, "");

  auto missing = findCgroupDirs(root_, "/berth/c2", "c2");
  ASSERT_FALSE(missing.ok());
  std::string msg(missing.status().message());
  EXPECT_THAT(msg, HasSubstr(abs("unified/berth/c2")));
  EXPECT_THAT(msg, HasSubstr(abs("memory/berth/c2")));
  EXPECT_THAT(msg, HasSubstr(abs("pids/berth/c2")));
}

TEST_F(CgroupTreeTest, HybridHostFindsV1DirsIncludingCoMountedCpuacct) {
  hybridHost("cpu,cpuacct");
  mkdir("cpu,cpuacct/kubepods/c1");
  mkdir("memory/kubepods/c1");
  mkdir("pids/kubepods/c1");
  auto dirs = findCgroupDirs(root_, "/kubepods/c1", "c1");
  ASSERT_TRUE(dirs.ok()) << dirs.status();
  EXPECT_EQ(dirs->unified, "");
  EXPECT_EQ(dirs->cpuacct, abs("cpu,cpuacct/kubepods/c1"));
  EXPECT_EQ(dirs->memory, abs("memory/kubepods/c1"));
  EXPECT_EQ(dirs->pids, abs("pids/kubepods/c1"));
}

TEST_F(CgroupTreeTest, LegacyHostHasNoUnifiedDir) {
  mkdir("cpuacct/berth/c1");
  mkdir("memory/berth/c1");
  auto dirs = findCgroupDirs(root_, "", "c1");
  ASSERT_TRUE(dirs.ok()) << dirs.status();
  EXPECT_EQ(dirs->hierarchy, CgroupHierarchy::kLegacy);
  EXPECT_EQ(dirs->unified, "");
  EXPECT_EQ(dirs->cpuacct, abs("cpuacct/berth/c1"));
  EXPECT_EQ(dirs->memory, abs("memory/berth/c1"));
  EXPECT_EQ(dirs->pids, "");  // no pids hierarchy mounted
}

// --- counters ---

TEST_F(CgroupTreeTest, ReadsCgroupV2Counters) {
  unifiedHost();
  put("berth/c1/cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n"
                           "core_sched.force_idle_usec 0\n");
  put("berth/c1/memory.current", "10000\n");
  put("berth/c1/memory.stat", "anon 5000\nfile 4000\ninactive_file 3000\nactive_file 1000\n"
                              "pgfault 70\npgmajfault 2\n");
  put("berth/c1/memory.max", "20000\n");
  put("berth/c1/pids.current", "4\n");
  put("berth/c1/cgroup.procs", "1\n2\n");
  auto u = readContainerCgroupUsage(root_, "/berth/c1", "c1");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_THAT(u->cpu_usage_ns, Optional(uint64_t{1500000}));
  EXPECT_THAT(u->memory_usage_bytes, Optional(uint64_t{10000}));
  EXPECT_THAT(u->working_set_bytes, Optional(uint64_t{7000}));
  EXPECT_THAT(u->rss_bytes, Optional(uint64_t{5000}));
  EXPECT_THAT(u->page_faults, Optional(uint64_t{70}));
  EXPECT_THAT(u->major_page_faults, Optional(uint64_t{2}));
  EXPECT_THAT(u->memory_limit_bytes, Optional(uint64_t{20000}));
  EXPECT_THAT(u->available_bytes, Optional(uint64_t{13000}));
  EXPECT_THAT(u->process_count, Optional(uint64_t{4}));  // pids.current wins
}

TEST_F(CgroupTreeTest, V2MaxLimitLeavesAvailableUnset) {
  unifiedHost();
  put("berth/c1/memory.current", "10000\n");
  put("berth/c1/memory.stat", "anon 5000\ninactive_file 3000\n");
  put("berth/c1/memory.max", "max\n");
  auto u = readContainerCgroupUsage(root_, "/berth/c1", "c1");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->memory_limit_bytes, std::nullopt);
  EXPECT_EQ(u->available_bytes, std::nullopt);
  EXPECT_THAT(u->working_set_bytes, Optional(uint64_t{7000}));
  EXPECT_EQ(u->page_faults, std::nullopt);  // not in memory.stat
}

TEST_F(CgroupTreeTest, MissingFilesLeaveCountersUnset) {
  unifiedHost();
  mkdir("berth/c1");
  auto u = readContainerCgroupUsage(root_, "/berth/c1", "c1");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->cpu_usage_ns, std::nullopt);
  EXPECT_EQ(u->memory_usage_bytes, std::nullopt);
  EXPECT_EQ(u->working_set_bytes, std::nullopt);
  EXPECT_EQ(u->rss_bytes, std::nullopt);
  EXPECT_EQ(u->memory_limit_bytes, std::nullopt);
  EXPECT_EQ(u->available_bytes, std::nullopt);
  EXPECT_EQ(u->process_count, std::nullopt);
}

TEST_F(CgroupTreeTest, HybridCgroup2WithoutControllersGivesCpuAndProcessesOnly) {
  // The build host: cpu.stat exists without the cpu controller, no memory/pids files;
  // processes are counted from cgroup.procs including child cgroups.
  hybridHost();
  put("unified/berth/c1/cpu.stat", "usage_usec 42\nuser_usec 40\nsystem_usec 2\n");
  put("unified/berth/c1/cgroup.procs", "100\n101\n");
  put("unified/berth/c1/sub/cgroup.procs", "102\n");
  put("unified/berth/c1/empty/cgroup.procs", "");
  auto u = readContainerCgroupUsage(root_, "/berth/c1", "c1");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_THAT(u->cpu_usage_ns, Optional(uint64_t{42000}));
  EXPECT_EQ(u->memory_usage_bytes, std::nullopt);
  EXPECT_EQ(u->working_set_bytes, std::nullopt);
  EXPECT_THAT(u->process_count, Optional(uint64_t{3}));
}

TEST_F(CgroupTreeTest, ReadsCgroupV1Counters) {
  hybridHost("cpu,cpuacct");
  put("cpu,cpuacct/k/c1/cpuacct.usage", "123456789\n");
  put("memory/k/c1/memory.usage_in_bytes", "50000\n");
  put("memory/k/c1/memory.stat",
      "cache 9000\nrss 100\ninactive_file 1\npgfault 1\npgmajfault 1\n"
      "total_cache 20000\ntotal_rss 25000\ntotal_inactive_file 15000\n"
      "total_pgfault 900\ntotal_pgmajfault 9\n");
  put("memory/k/c1/memory.limit_in_bytes", "9223372036854771712\n");  // unlimited
  put("pids/k/c1/pids.current", "3\n");
  auto u = readContainerCgroupUsage(root_, "/k/c1", "c1");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_THAT(u->cpu_usage_ns, Optional(uint64_t{123456789}));
  EXPECT_THAT(u->memory_usage_bytes, Optional(uint64_t{50000}));
  EXPECT_THAT(u->working_set_bytes, Optional(uint64_t{35000}));  // total_ counters
  EXPECT_THAT(u->rss_bytes, Optional(uint64_t{25000}));
  EXPECT_THAT(u->page_faults, Optional(uint64_t{900}));
  EXPECT_THAT(u->major_page_faults, Optional(uint64_t{9}));
  EXPECT_EQ(u->memory_limit_bytes, std::nullopt);
  EXPECT_EQ(u->available_bytes, std::nullopt);
  EXPECT_THAT(u->process_count, Optional(uint64_t{3}));

  put("memory/k/c1/memory.limit_in_bytes", "40000\n");
  u = readContainerCgroupUsage(root_, "/k/c1", "c1");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_THAT(u->memory_limit_bytes, Optional(uint64_t{40000}));
  EXPECT_THAT(u->available_bytes, Optional(uint64_t{5000}));
}

TEST_F(CgroupTreeTest, V1LocalCountersWhenTotalsAreAbsent) {
  mkdir("memory");  // legacy host
  put("memory/c1/memory.usage_in_bytes", "1000\n");
  put("memory/c1/memory.stat", "rss 300\ninactive_file 200\npgfault 5\npgmajfault 1\n");
  put("memory/c1/cgroup.procs", "7\n");
  auto u = readContainerCgroupUsage(root_, "/c1", "c1");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_THAT(u->working_set_bytes, Optional(uint64_t{800}));
  EXPECT_THAT(u->rss_bytes, Optional(uint64_t{300}));
  EXPECT_THAT(u->page_faults, Optional(uint64_t{5}));
  EXPECT_THAT(u->process_count, Optional(uint64_t{1}));  // from memory's cgroup.procs
  EXPECT_EQ(u->cpu_usage_ns, std::nullopt);
}

TEST_F(CgroupTreeTest, HybridPrefersCgroup2CpuAndReadsV1Memory) {
  hybridHost();
  put("unified/berth/c1/cpu.stat", "usage_usec 5\n");
  put("cpuacct/berth/c1/cpuacct.usage", "999999\n");
  put("memory/berth/c1/memory.usage_in_bytes", "4096\n");
  auto u = readContainerCgroupUsage(root_, "", "c1");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_THAT(u->cpu_usage_ns, Optional(uint64_t{5000}));
  EXPECT_THAT(u->memory_usage_bytes, Optional(uint64_t{4096}));
  EXPECT_THAT(u->working_set_bytes, Optional(uint64_t{4096}));  // no memory.stat
}

TEST_F(CgroupTreeTest, WorkingSetAndAvailableAreFlooredAtZero) {
  unifiedHost();
  put("c1/memory.current", "1000\n");
  put("c1/memory.stat", "inactive_file 5000\n");
  put("c1/memory.max", "0\n");
  auto u = readContainerCgroupUsage(root_, "/c1", "c1");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_THAT(u->working_set_bytes, Optional(uint64_t{0}));
  EXPECT_THAT(u->available_bytes, Optional(uint64_t{0}));

  put("c1/memory.stat", "inactive_file 0\n");
  u = readContainerCgroupUsage(root_, "/c1", "c1");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_THAT(u->available_bytes, Optional(uint64_t{0}));  // working set 1000 > limit 0
}

TEST_F(CgroupTreeTest, GarbageIsAnErrorNamingTheFile) {
  unifiedHost();
  put("c1/memory.current", "lots\n");
  auto u = readContainerCgroupUsage(root_, "/c1", "c1");
  ASSERT_FALSE(u.ok());
  EXPECT_TRUE(absl::IsInternal(u.status()));
  EXPECT_THAT(std::string(u.status().message()), HasSubstr(abs("c1/memory.current")));
  EXPECT_THAT(std::string(u.status().message()), HasSubstr("lots"));

  put("c1/memory.current", "10\n");
  put("c1/cpu.stat", "usage_usec twelve\nsome new line with words\n");
  u = readContainerCgroupUsage(root_, "/c1", "c1");
  ASSERT_FALSE(u.ok());
  EXPECT_THAT(std::string(u.status().message()), HasSubstr(abs("c1/cpu.stat")));

  // Lines of other shapes are ignored when the needed keys parse.
  put("c1/cpu.stat", "usage_usec 12\nsome new line with words\n");
  u = readContainerCgroupUsage(root_, "/c1", "c1");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_THAT(u->cpu_usage_ns, Optional(uint64_t{12000}));
}

TEST(SumCgroupUsage, SumsKnownCountersAndDropsLimits) {
  CgroupUsage a, b;
  a.cpu_usage_ns = 10;
  a.memory_usage_bytes = 100;
  a.working_set_bytes = 80;
  a.memory_limit_bytes = 1000;
  a.available_bytes = 920;
  a.process_count = 2;
  b.cpu_usage_ns = 5;
  b.process_count = 1;
  b.page_faults = 3;
  CgroupUsage t = sumCgroupUsage({a, b});
  EXPECT_THAT(t.cpu_usage_ns, Optional(uint64_t{15}));
  EXPECT_THAT(t.memory_usage_bytes, Optional(uint64_t{100}));
  EXPECT_THAT(t.working_set_bytes, Optional(uint64_t{80}));
  EXPECT_THAT(t.page_faults, Optional(uint64_t{3}));
  EXPECT_THAT(t.process_count, Optional(uint64_t{3}));
  EXPECT_EQ(t.rss_bytes, std::nullopt);
  EXPECT_EQ(t.memory_limit_bytes, std::nullopt);
  EXPECT_EQ(t.available_bytes, std::nullopt);
  EXPECT_EQ(sumCgroupUsage({}).cpu_usage_ns, std::nullopt);
}

// --- CPU rate ---

TEST(CpuRateTracker, RateFromSuccessiveSamples) {
  CpuRateTracker t;
  EXPECT_EQ(t.update("c1", 1'000'000'000, 10'000'000'000), std::nullopt);
  // 0.5 s of CPU in 1 s of wall time = half a core.
  EXPECT_THAT(t.update("c1", 1'500'000'000, 11'000'000'000), Optional(uint64_t{500'000'000}));
  // 2 cores over 0.5 s.
  EXPECT_THAT(t.update("c1", 2'500'000'000, 11'500'000'000),
              Optional(uint64_t{2'000'000'000}));
  // Keys are independent.
  EXPECT_EQ(t.update("pod/p1", 7, 11'500'000'000), std::nullopt);
  EXPECT_EQ(t.size(), 2u);
}

TEST(CpuRateTracker, SameTimestampKeepsLastRateAndResetStartsOver) {
  CpuRateTracker t;
  t.update("c1", 0, 1'000'000'000);
  EXPECT_THAT(t.update("c1", 250'000'000, 2'000'000'000), Optional(uint64_t{250'000'000}));
  EXPECT_THAT(t.update("c1", 900'000'000, 2'000'000'000), Optional(uint64_t{250'000'000}));
  EXPECT_THAT(t.update("c1", 900'000'000, 1'500'000'000), Optional(uint64_t{250'000'000}));
  // Baseline unchanged by those: 0.25 s more over 1 s.
  EXPECT_THAT(t.update("c1", 500'000'000, 3'000'000'000), Optional(uint64_t{250'000'000}));
  // Counter went down (cgroup recreated): new baseline.
  EXPECT_EQ(t.update("c1", 10, 4'000'000'000), std::nullopt);
  EXPECT_THAT(t.update("c1", 100'000'010, 5'000'000'000), Optional(uint64_t{100'000'000}));
  EXPECT_EQ(t.update("fresh", 5, 5'000'000'000), std::nullopt);
  EXPECT_EQ(t.update("fresh", 5, 5'000'000'000), std::nullopt);  // no rate yet
}

TEST(CpuRateTracker, LargeDeltasDoNotOverflow) {
  CpuRateTracker t;
  const uint64_t hour_ns = 3600ull * 1'000'000'000ull;
  t.update("c1", 0, 0 + 1);
  // 64 cores for an hour: delta * 1e9 exceeds 2^64.
  EXPECT_THAT(t.update("c1", 64 * hour_ns, static_cast<int64_t>(hour_ns) + 1),
              Optional(uint64_t{64'000'000'000}));
}

TEST(CpuRateTracker, ForgetAndRetainOnly) {
  CpuRateTracker t;
  t.update("a", 1, 1);
  t.update("b", 1, 1);
  t.update("c", 1, 1);
  t.forget("b");
  t.forget("unknown");
  EXPECT_EQ(t.size(), 2u);
  EXPECT_EQ(t.update("b", 2, 2), std::nullopt);  // forgotten: first sample again
  t.retainOnly({"a", "zzz"});
  EXPECT_EQ(t.size(), 1u);
  EXPECT_THAT(t.update("a", 1'000'000'001, 1'000'000'001), Optional(uint64_t{1'000'000'000}));
}

TEST(CpuRateTracker, ConcurrentUpdatesAreSafe) {
  CpuRateTracker t;
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&t, i] {
      for (int n = 1; n <= 2000; ++n) {
        t.update("shared", static_cast<uint64_t>(n) * 1000, n * 2000);
        t.update(strCat("own-", i), static_cast<uint64_t>(n) * 1000, n * 1000);
        if (n % 500 == 250) t.forget("shared");
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(t.size(), 5u);
  EXPECT_THAT(t.update("own-0", 2001 * 1000, 2001 * 1000), Optional(uint64_t{1'000'000'000}));
}

// --- network ---

constexpr const char kNetDev[] =
    "Inter-|   Receive                                                |  Transmit\n"
    " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets "
    "errs drop fifo colls carrier compressed\n"
    "    lo:     840      10    0    0    0     0          0         0      840      10    "
    "0    0    0     0       0          0\n"
    "  eth0: 1234567    900    3    1    0     0          0         5   765432     800    "
    "4    0    0     0       0          0\n"
    "  net1:      10      1    0    0    0     0          0         0       20       2    "
    "0    0    0     0       0          0\n";

TEST(ParseNetDev, InterfacesExceptLoWithDefault) {
  auto net = parseNetDev(kNetDev, 77);
  ASSERT_TRUE(net.ok()) << net.status();
  EXPECT_EQ(net->timestamp(), 77);
  ASSERT_EQ(net->interfaces_size(), 2);
  const auto& eth0 = net->interfaces(0);
  EXPECT_EQ(eth0.name(), "eth0");
  EXPECT_EQ(eth0.rx_bytes().value(), 1234567u);
  EXPECT_EQ(eth0.rx_errors().value(), 3u);
  EXPECT_EQ(eth0.tx_bytes().value(), 765432u);
  EXPECT_EQ(eth0.tx_errors().value(), 4u);
  EXPECT_EQ(net->interfaces(1).name(), "net1");
  EXPECT_EQ(net->interfaces(1).tx_bytes().value(), 20u);
  ASSERT_TRUE(net->has_default_interface());
  EXPECT_EQ(net->default_interface().name(), "eth0");
  EXPECT_EQ(net->default_interface().rx_bytes().value(), 1234567u);

  auto other = parseNetDev(kNetDev, 1, "net1");
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->default_interface().name(), "net1");
  auto none = parseNetDev(kNetDev, 1, "eth9");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_default_interface());
  EXPECT_EQ(none->interfaces_size(), 2);
}

TEST(ParseNetDev, MalformedLinesAreErrors) {
  auto shortLine = parseNetDev("Inter-|\n face |\n eth0: 1 2 3\n", 1);
  ASSERT_FALSE(shortLine.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(shortLine.status()));
  EXPECT_THAT(std::string(shortLine.status().message()), HasSubstr("eth0"));
  auto word = parseNetDev(" eth0: 1 2 x 4 5 6 7 8 9 10 11 12 13 14 15 16\n", 1);
  ASSERT_FALSE(word.ok());
  EXPECT_THAT(std::string(word.status().message()), HasSubstr("\"x\""));
  auto empty = parseNetDev("", 5);
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->interfaces_size(), 0);
}

TEST_F(CgroupTreeTest, ReadNetworkUsageFromAFakeProc) {
  put("proc/4242/net/dev", kNetDev);
  NetDevOptions opts;
  opts.proc_root = abs("proc");
  auto net = readNetworkUsage(4242, 9, opts);
  ASSERT_TRUE(net.ok()) << net.status();
  EXPECT_EQ(net->interfaces_size(), 2);
  EXPECT_EQ(net->default_interface().name(), "eth0");

  auto gone = readNetworkUsage(4243, 9, opts);
  ASSERT_FALSE(gone.ok());
  EXPECT_TRUE(absl::IsNotFound(gone.status()));
  EXPECT_THAT(std::string(gone.status().message()), HasSubstr("4243"));

  put("proc/4244/net/dev", " eth0: 1 2\n");
  auto bad = readNetworkUsage(4244, 9, opts);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr(abs("proc/4244/net/dev")));
}

TEST(ReadNetworkUsage, ParsesThisProcessesRealNetDev) {
  auto net = readNetworkUsage(::getpid(), 1);
  ASSERT_TRUE(net.ok()) << net.status();
  for (const auto& i : net->interfaces()) EXPECT_NE(i.name(), "lo");
}

// --- builders ---

TEST(BuildContainerStats, FillsCpuMemoryAndWritableLayer) {
  ContainerStatsInput in;
  in.attributes.set_id("c1");
  in.attributes.mutable_metadata()->set_name("web");
  (*in.attributes.mutable_labels())["app"] = "shop";
  CgroupUsage u;
  u.cpu_usage_ns = 123;
  u.memory_usage_bytes = 1000;
  u.working_set_bytes = 800;
  u.available_bytes = 200;
  u.page_faults = 4;
  in.usage = u;
  in.usage_nano_cores = 5000;
  in.writable_layer = WritableLayerUsage{"/var/lib/berth/snapshots", 4096, 12};
  in.timestamp_ns = 1'700'000'000'000'000'000;
  v1::ContainerStats s = buildContainerStats(in);
  EXPECT_EQ(s.attributes().id(), "c1");
  EXPECT_EQ(s.attributes().metadata().name(), "web");
  EXPECT_EQ(s.attributes().labels().at("app"), "shop");
  EXPECT_EQ(s.cpu().timestamp(), in.timestamp_ns);
  EXPECT_EQ(s.cpu().usage_core_nano_seconds().value(), 123u);
  EXPECT_EQ(s.cpu().usage_nano_cores().value(), 5000u);
  EXPECT_EQ(s.memory().timestamp(), in.timestamp_ns);
  EXPECT_EQ(s.memory().usage_bytes().value(), 1000u);
  EXPECT_EQ(s.memory().working_set_bytes().value(), 800u);
  EXPECT_EQ(s.memory().available_bytes().value(), 200u);
  EXPECT_EQ(s.memory().page_faults().value(), 4u);
  EXPECT_FALSE(s.memory().has_rss_bytes());  // unknown stays unset
  EXPECT_FALSE(s.memory().has_major_page_faults());
  EXPECT_EQ(s.writable_layer().timestamp(), in.timestamp_ns);
  EXPECT_EQ(s.writable_layer().fs_id().mountpoint(), "/var/lib/berth/snapshots");
  EXPECT_EQ(s.writable_layer().used_bytes().value(), 4096u);
  EXPECT_EQ(s.writable_layer().inodes_used().value(), 12u);
}

TEST(BuildContainerStats, StoppedContainerHasTimestampsOnly) {
  ContainerStatsInput in;
  in.attributes.set_id("c2");
  in.usage_nano_cores = 99;  // ignored without usage
  in.timestamp_ns = 5;
  v1::ContainerStats s = buildContainerStats(in);
  EXPECT_EQ(s.cpu().timestamp(), 5);
  EXPECT_FALSE(s.cpu().has_usage_core_nano_seconds());
  EXPECT_FALSE(s.cpu().has_usage_nano_cores());
  EXPECT_EQ(s.memory().timestamp(), 5);
  EXPECT_FALSE(s.memory().has_working_set_bytes());
  EXPECT_FALSE(s.has_writable_layer());

  in.writable_layer = WritableLayerUsage{"/snap", std::nullopt, std::nullopt};
  s = buildContainerStats(in);
  ASSERT_TRUE(s.has_writable_layer());
  EXPECT_EQ(s.writable_layer().fs_id().mountpoint(), "/snap");
  EXPECT_FALSE(s.writable_layer().has_used_bytes());
}

TEST(BuildPodSandboxStats, FillsLinuxPart) {
  PodSandboxStatsInput in;
  in.attributes.set_id("p1");
  in.attributes.mutable_metadata()->set_namespace_("shop");
  CgroupUsage u;
  u.cpu_usage_ns = 1000;
  u.working_set_bytes = 64;
  u.process_count = 3;
  in.usage = u;
  in.usage_nano_cores = 10;
  auto net = parseNetDev(kNetDev, 8);
  ASSERT_TRUE(net.ok());
  in.network = *net;
  v1::ContainerStats c;
  c.mutable_attributes()->set_id("c1");
  in.containers = {c, c};
  in.containers[1].mutable_attributes()->set_id("c2");
  in.timestamp_ns = 8;
  v1::PodSandboxStats s = buildPodSandboxStats(in);
  EXPECT_EQ(s.attributes().id(), "p1");
  EXPECT_EQ(s.attributes().metadata().namespace_(), "shop");
  ASSERT_TRUE(s.has_linux());
  const auto& lx = s.linux();
  EXPECT_EQ(lx.cpu().usage_core_nano_seconds().value(), 1000u);
  EXPECT_EQ(lx.cpu().usage_nano_cores().value(), 10u);
  EXPECT_EQ(lx.memory().working_set_bytes().value(), 64u);
  EXPECT_EQ(lx.process().timestamp(), 8);
  EXPECT_EQ(lx.process().process_count().value(), 3u);
  EXPECT_EQ(lx.network().default_interface().name(), "eth0");
  EXPECT_EQ(lx.network().interfaces_size(), 2);
  ASSERT_EQ(lx.containers_size(), 2);
  EXPECT_EQ(lx.containers(0).attributes().id(), "c1");
  EXPECT_EQ(lx.containers(1).attributes().id(), "c2");
  EXPECT_FALSE(s.has_windows());

  PodSandboxStatsInput empty;
  empty.attributes.set_id("p2");
  empty.timestamp_ns = 9;
  v1::PodSandboxStats e = buildPodSandboxStats(empty);
  EXPECT_EQ(e.linux().cpu().timestamp(), 9);
  EXPECT_FALSE(e.linux().has_network());
  EXPECT_FALSE(e.linux().process().has_process_count());
  EXPECT_EQ(e.linux().containers_size(), 0);
}

TEST(StatsTimestampNow, IsWallClockNanoseconds) {
  int64_t before = static_cast<int64_t>(::time(nullptr)) * 1'000'000'000;
  int64_t now = statsTimestampNow();
  int64_t after = (static_cast<int64_t>(::time(nullptr)) + 1) * 1'000'000'000;
  EXPECT_GE(now, before);
  EXPECT_LE(now, after);
}

// --- a real cgroup ---

TEST(ContainerStatsPrivileged, ReadsARealCgroupWithABusyChild) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to create a cgroup";
  CgroupRoot root;  // /sys/fs/cgroup
  auto hierarchy = detectCgroupHierarchy(root);
  if (!hierarchy.ok() || *hierarchy == CgroupHierarchy::kLegacy) {
    GTEST_SKIP() << "no cgroup2 hierarchy under /sys/fs/cgroup on this host";
  }
  const std::string base = *hierarchy == CgroupHierarchy::kHybrid ? "/sys/fs/cgroup/unified"
                                                                 : "/sys/fs/cgroup";
  const std::string rel = strCat("/berth-stats-test-", ::getpid());
  const std::string dir = base + rel;
  if (::mkdir(dir.c_str(), 0755) != 0) {
    GTEST_SKIP() << "cannot create " << dir << ": " << errnoName(errno);
  }
  pid_t child = -1;
  ScopeGuard cleanup([&] {
    if (child > 0) {
      ::kill(child, SIGKILL);
      ::waitpid(child, nullptr, 0);
    }
    for (int i = 0; i < 50 && ::rmdir(dir.c_str()) != 0 && errno == EBUSY; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });

  child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    volatile uint64_t spin = 0;
    for (;;) spin = spin + 1;  // burns CPU until killed
  }
  ASSERT_TRUE(fs::writeFile(dir + "/cgroup.procs", std::to_string(child)).ok());

  auto first = readContainerCgroupUsage(root, rel, "unused");
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_THAT(first->process_count, Optional(uint64_t{1}));
  ASSERT_TRUE(first->cpu_usage_ns.has_value()) << "cpu.stat usage_usec missing in " << dir;
  CpuRateTracker tracker;
  tracker.update("t", *first->cpu_usage_ns, statsTimestampNow());

  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto second = readContainerCgroupUsage(root, rel, "unused");
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_TRUE(second->cpu_usage_ns.has_value());
  // A busy loop gets at least a tenth of a core even on a loaded 2-core machine.
  EXPECT_GT(*second->cpu_usage_ns, *first->cpu_usage_ns + 30'000'000);
  auto rate = tracker.update("t", *second->cpu_usage_ns, statsTimestampNow());
  ASSERT_TRUE(rate.has_value());
  EXPECT_GT(*rate, 100'000'000u);      // > 0.1 core
  EXPECT_LT(*rate, 1'100'000'000u);    // one thread: at most about one core

  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  child = -1;
  auto after = readContainerCgroupUsage(root, rel, "unused");
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_THAT(after->process_count, Optional(uint64_t{0}));
}

}  // namespace
}  // namespace berth::cri
