#include "cni/ipam/allocator.h"

#include <sys/wait.h>
#include <unistd.h>

#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/fs.h"
#include "tests/unit/cni/cni_test_util.h"

namespace berth::cni::ipam {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using json::Json;

class AllocatorTest : public ::testing::Test {
 protected:
  Allocator make(const std::string& ipam_json) {
    Json ipam = Json::parse(ipam_json);
    ipam["dataDir"] = dir_.path();
    auto config = parseIpamConfig(Json{{"name", "net"}, {"ipam", ipam}});
    EXPECT_TRUE(config.ok()) << config.status();
    auto a = Allocator::open(*config, "net");
    EXPECT_TRUE(a.ok()) << a.status();
    return std::move(*a);
  }
  IpAddress ip(const char* text) { return *IpAddress::parse(text); }
  testing::TempDir dir_;
};

TEST_F(AllocatorTest, AllocatesSkipsGatewayAndIsIdempotent) {
  Allocator a = make(R"({"subnet": "10.1.0.0/24"})");
  auto first = a.allocate("c1", "eth0");
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->size(), 1u);
  EXPECT_EQ((*first)[0].address, "10.1.0.2/24");  // .1 is the gateway
  EXPECT_EQ((*first)[0].gateway, "10.1.0.1");
  auto again = a.allocate("c1", "eth0");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)[0].address, "10.1.0.2/24");  // a retried ADD gets the same address
  auto second = a.allocate("c1", "net1");         // another interface of the same container
  ASSERT_TRUE(second.ok());
  EXPECT_EQ((*second)[0].address, "10.1.0.3/24");
  EXPECT_THAT(*a.allocated("c1", "eth0"), ElementsAre(ip("10.1.0.2")));
  EXPECT_TRUE(a.check("c1", "eth0", {ip("10.1.0.2")}).ok());
  EXPECT_EQ(a.check("c1", "eth0", {ip("10.1.0.9")}).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(a.check("c9", "eth0", {}).code(), absl::StatusCode::kNotFound);
}

TEST_F(AllocatorTest, RoundRobinDoesNotReuseAReleasedAddressAtOnce) {
  Allocator a = make(R"({"subnet": "10.1.0.0/24"})");
  ASSERT_EQ((*a.allocate("c1", "eth0"))[0].address, "10.1.0.2/24");
  ASSERT_TRUE(a.release("c1", "eth0").ok());
  ASSERT_TRUE(a.release("c1", "eth0").ok());  // idempotent
  EXPECT_EQ((*a.allocate("c2", "eth0"))[0].address, "10.1.0.3/24");
  EXPECT_TRUE(a.allocated("c1", "eth0")->empty());
}

TEST_F(AllocatorTest, ExhaustionNamesNetworkRangeAndCountsAndWrapsAround) {
  Allocator a = make(R"({"subnet": "10.1.0.0/29"})");  // .2 - .6 usable (5)
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(a.allocate(strCat("c", i), "eth0").ok()) << i;
  auto full = a.allocate("c9", "eth0");
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(full.status().message(), HasSubstr("network \"net\""));
  EXPECT_THAT(full.status().message(), HasSubstr("10.1.0.1-10.1.0.6"));
  EXPECT_THAT(full.status().message(), HasSubstr("5 of 5"));
  EXPECT_EQ(a.checkCapacity().code(), absl::StatusCode::kResourceExhausted);
  ASSERT_TRUE(a.release("c2", "eth0").ok());  // frees 10.1.0.4
  EXPECT_TRUE(a.checkCapacity().ok());
  EXPECT_EQ((*a.allocate("c9", "eth0"))[0].address, "10.1.0.4/29");  // found after wrapping
}

TEST_F(AllocatorTest, RequestedAddresses) {
  Allocator a = make(R"({"subnet": "10.1.0.0/24"})");
  auto got = a.allocate("c1", "eth0", {ip("10.1.0.77")});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ((*got)[0].address, "10.1.0.77/24");
  auto taken = a.allocate("c2", "eth0", {ip("10.1.0.77")});
  ASSERT_FALSE(taken.ok());
  EXPECT_THAT(taken.status().message(), HasSubstr("already allocated to c1/eth0"));
  auto outside = a.allocate("c3", "eth0", {ip("10.9.0.1")});
  ASSERT_FALSE(outside.ok());
  EXPECT_THAT(outside.status().message(), HasSubstr("outside the ranges"));
  EXPECT_FALSE(a.allocate("c4", "eth0", {ip("10.1.0.1")}).ok());  // the gateway
}

TEST_F(AllocatorTest, DualStackGivesOneAddressPerRangeSet) {
  Allocator a = make(R"({"ranges": [[{"subnet": "10.1.0.0/24"}], [{"subnet": "fd00:1::/64"}]]})");
  auto got = a.allocate("c1", "eth0");
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), 2u);
  EXPECT_EQ((*got)[0].address, "10.1.0.2/24");
  EXPECT_EQ((*got)[1].address, "fd00:1::2/64");
  EXPECT_EQ((*got)[1].gateway, "fd00:1::1");
}

TEST_F(AllocatorTest, GcKeepsOnlyValidAttachments) {
  Allocator a = make(R"({"subnet": "10.1.0.0/24"})");
  for (const char* c : {"a", "b", "c"}) ASSERT_TRUE(a.allocate(c, "eth0").ok());
  auto removed = a.gc({{"b", "eth0"}});
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(*removed, 2);
  auto left = a.list();
  ASSERT_TRUE(left.ok());
  ASSERT_EQ(left->size(), 1u);
  EXPECT_EQ((*left)[0].container_id, "b");
}

TEST_F(AllocatorTest, SurvivesALeftoverTempFileAndOddLines) {
  Allocator a = make(R"({"subnet": "10.1.0.0/24"})");
  ASSERT_TRUE(a.allocate("c1", "eth0").ok());
  // A plugin killed between writing the temp file and the rename leaves the temp file;
  // the state is the old one and the next write replaces the temp file.
  testing::writeFile(a.dir() + "/allocations.tmp", "garbage");
  std::string text = *fs::readFile(a.dir() + "/allocations");
  testing::writeFile(a.dir() + "/allocations", text + "not an allocation\n");
  auto list = a.list();
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->size(), 1u);
  ASSERT_TRUE(a.allocate("c2", "eth0").ok());
  EXPECT_EQ(a.list()->size(), 2u);
}

TEST_F(AllocatorTest, RejectsUnsafeNames) {
  auto config = parseIpamConfig(Json::parse(R"({"ipam": {"subnet": "10.1.0.0/24"}})"));
  ASSERT_TRUE(config.ok());
  EXPECT_FALSE(Allocator::open(*config, "../etc").ok());
  Allocator a = make(R"({"subnet": "10.1.0.0/24"})");
  EXPECT_FALSE(a.allocate("bad id", "eth0").ok());
  EXPECT_FALSE(a.allocate("c1", "a/b").ok());
}

TEST_F(AllocatorTest, EightProcessesAllocatingAtOnceNeverShareAnAddress) {
  constexpr int kProcs = 8, kEach = 20;
  std::string out_dir = dir_.sub("out");
  ASSERT_TRUE(fs::mkdirAll(out_dir, 0700).ok());
  std::vector<pid_t> children;
  for (int p = 0; p < kProcs; ++p) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      Allocator a = make(R"({"subnet": "10.1.0.0/24"})");
      std::string mine;
      for (int i = 0; i < kEach; ++i) {
        auto got = a.allocate(strCat("p", p, "-c", i), "eth0");
        if (!got.ok()) _exit(1);
        mine += (*got)[0].address + "\n";
      }
      _exit(fs::writeFileAtomic(strCat(out_dir, "/", p), mine).ok() ? 0 : 2);
    }
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int ws = 0;
    ASSERT_EQ(::waitpid(pid, &ws, 0), pid);
    EXPECT_TRUE(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
  }
  std::set<std::string> all;
  for (int p = 0; p < kProcs; ++p) {
    for (const std::string& line : split(*fs::readFile(strCat(out_dir, "/", p)), '\n', true)) {
      EXPECT_TRUE(all.insert(line).second) << line << " handed out twice";
    }
  }
  EXPECT_EQ(all.size(), static_cast<size_t>(kProcs * kEach));
  Allocator a = make(R"({"subnet": "10.1.0.0/24"})");
  EXPECT_EQ(a.list()->size(), static_cast<size_t>(kProcs * kEach));
}

}  // namespace
}  // namespace berth::cni::ipam
