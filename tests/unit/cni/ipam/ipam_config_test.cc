#include "cni/ipam/ipam_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/fs.h"
#include "tests/unit/cni/cni_test_util.h"

namespace berth::cni::ipam {
namespace {

using ::testing::HasSubstr;
using json::Json;

StatusOr<IpamConfig> parse(const std::string& ipam) {
  return parseIpamConfig(Json::parse(R"({"name": "n", "ipam": )" + ipam + "}"));
}

TEST(IpamConfig, SubnetShorthandGetsHostLocalDefaults) {
  auto c = parse(R"({"type": "berth-ipam", "subnet": "10.244.0.0/24"})");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->range_sets.size(), 1u);
  const IpRange& r = c->range_sets[0][0];
  EXPECT_EQ(r.range_start.toString(), "10.244.0.1");
  EXPECT_EQ(r.range_end.toString(), "10.244.0.254");
  EXPECT_EQ(r.gateway.toString(), "10.244.0.1");
  EXPECT_EQ(r.describe(), "10.244.0.1-10.244.0.254");
  EXPECT_EQ(c->data_dir, kDefaultDataDir);
}

TEST(IpamConfig, RangesDualStackAndRoutes) {
  auto c = parse(R"({"ranges": [[{"subnet": "10.1.0.0/24", "rangeStart": "10.1.0.10", "rangeEnd": "10.1.0.20", "gateway": "10.1.0.254"}],
                                 [{"subnet": "fd00::/64"}]],
                     "routes": [{"dst": "0.0.0.0/0"}, {"dst": "192.168.0.0/16", "gw": "10.1.0.254"}],
                     "dataDir": "/tmp/x"})");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->range_sets.size(), 2u);
  EXPECT_EQ(c->range_sets[0][0].range_start.toString(), "10.1.0.10");
  EXPECT_EQ(c->range_sets[0][0].gateway.toString(), "10.1.0.254");
  EXPECT_EQ(c->range_sets[1][0].range_end.toString(), "fd00::ffff:ffff:ffff:ffff");
  ASSERT_EQ(c->routes.size(), 2u);
  EXPECT_EQ(c->routes[1].gw, "10.1.0.254");
  EXPECT_EQ(c->data_dir, "/tmp/x");
}

TEST(IpamConfig, ErrorsNameTheKey) {
  struct Case {
    const char* ipam;
    const char* want;
  } cases[] = {
      {R"({"ranges": [[{"subnet": "10.1.0.0/24", "rangeStart": "10.2.0.5"}]]})",
       "ipam.ranges[0][0].rangeStart: \"10.2.0.5\" is outside subnet 10.1.0.0/24"},
      {R"({"subnet": "10.1.0.5/24"})", "host bits"},
      {R"({"subnet": "10.1.0.0/31"})", "too small"},
      {R"({"ranges": [[{"subnet": "10.1.0.0/24"}], [{"subnet": "10.1.0.0/16"}]]})", "overlaps"},
      {R"({"ranges": [[{"subnet": "10.1.0.0/24"}, {"subnet": "fd00::/64"}]]})", "another IP family"},
      {R"({"subnet": "10.1.0.0/24", "podCIDRFile": "/x"})", "not both"},
      {R"({"type": "berth-ipam"})", "no addresses"},
      {R"({"subnet": "10.1.0.0/24", "rangeStart": "10.1.0.9", "rangeEnd": "10.1.0.3"})", "after rangeEnd"},
      {R"({"subnet": "10.1.0.0/24", "dataDir": "relative"})", "dataDir"},
      {R"({"subnet": "10.1.0.0/24", "routes": [{"gw": "10.1.0.1"}]})", "ipam.routes[0]"},
  };
  for (const Case& c : cases) {
    auto r = parse(c.ipam);
    ASSERT_FALSE(r.ok()) << c.ipam;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << c.ipam;
    EXPECT_THAT(r.status().message(), HasSubstr(c.want)) << c.ipam;
  }
}

TEST(IpamConfig, PodCidrFile) {
  testing::TempDir dir;
  std::string path = dir.sub("pod-cidr");
  auto missing = parse(R"({"podCIDRFile": ")" + path + R"("})");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(missing.status().message(), HasSubstr("retry later"));

  testing::writeFile(path, "# written by berthd\n10.244.3.0/24\n\nfd00:10:244:3::/64\n");
  auto c = parse(R"({"podCIDRFile": ")" + path + R"("})");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->range_sets.size(), 2u);
  EXPECT_EQ(c->range_sets[0][0].subnet.toString(), "10.244.3.0/24");
  EXPECT_FALSE(c->range_sets[1][0].subnet.isV4());

  testing::writeFile(path, "10.244.3.0/24\nnot-a-cidr\n");
  auto bad = parse(R"({"podCIDRFile": ")" + path + R"("})");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("line 2"));
}

}  // namespace
}  // namespace berth::cni::ipam
