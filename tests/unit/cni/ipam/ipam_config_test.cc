#include "cni/ipam/ipam_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/fs.h"
#include "common/strings.h"
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

TEST(IpamConfig, DefaultsForIpv6AndSmallSubnets) {
  auto c = parse(R"({"subnet": "fd00:10::/64"})");
  ASSERT_TRUE(c.ok()) << c.status();
  const IpRange& r = c->range_sets[0][0];
  EXPECT_EQ(r.range_start.toString(), "fd00:10::1");
  EXPECT_EQ(r.range_end.toString(), "fd00:10::ffff:ffff:ffff:ffff");  // no broadcast in v6
  EXPECT_EQ(r.gateway.toString(), "fd00:10::1");
  EXPECT_EQ(r.capacity(), UINT64_MAX);
  auto small = parse(R"({"subnet": "10.1.0.0/30"})");
  ASSERT_TRUE(small.ok()) << small.status();
  EXPECT_EQ(small->range_sets[0][0].capacity(), 1u);  // only .2: .0 net, .1 gw, .3 bcast
  EXPECT_EQ(small->range_sets[0][0].describeUsable(), "10.1.0.2-10.1.0.2");
  auto v6small = parse(R"({"subnet": "fd00::/126"})");
  ASSERT_TRUE(v6small.ok()) << v6small.status();
  EXPECT_EQ(v6small->range_sets[0][0].capacity(), 2u);  // ::2 and ::3
}

TEST(IpamConfig, RangeHelpers) {
  auto c = parse(R"({"subnet": "10.1.0.0/24"})");
  ASSERT_TRUE(c.ok());
  const IpRange& r = c->range_sets[0][0];
  EXPECT_EQ(r.capacity(), 253u);
  EXPECT_EQ(r.describeUsable(), "10.1.0.2-10.1.0.254");
  EXPECT_TRUE(r.isReserved(*IpAddress::parse("10.1.0.0")));
  EXPECT_TRUE(r.isReserved(*IpAddress::parse("10.1.0.1")));
  EXPECT_TRUE(r.isReserved(*IpAddress::parse("10.1.0.255")));
  EXPECT_FALSE(r.isReserved(*IpAddress::parse("10.1.0.2")));
  EXPECT_TRUE(r.inRange(*IpAddress::parse("10.1.0.254")));
  EXPECT_FALSE(r.inRange(*IpAddress::parse("10.1.0.255")));
  EXPECT_FALSE(r.inRange(*IpAddress::parse("::1")));
  // A gateway outside the range costs the range nothing.
  auto g = parse(R"({"subnet": "10.1.0.0/24", "rangeStart": "10.1.0.10", "rangeEnd": "10.1.0.20",
                     "gateway": "10.1.0.254"})");
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->range_sets[0][0].capacity(), 11u);
  EXPECT_EQ(g->range_sets[0][0].describeUsable(), "10.1.0.10-10.1.0.20");
}

TEST(IpamConfig, SplitRangesInOneSetAndTwoSetsOfOneFamily) {
  auto c = parse(R"({"ranges": [[{"subnet": "10.1.0.0/24", "rangeEnd": "10.1.0.99"},
                                  {"subnet": "10.1.0.0/24", "rangeStart": "10.1.0.100"},
                                  {"subnet": "10.2.0.0/24"}]],
                     "type": "berth-ipam"})");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->range_sets.size(), 1u);
  EXPECT_EQ(c->range_sets[0].size(), 3u);
  EXPECT_EQ(c->type, "berth-ipam");
  EXPECT_TRUE(c->routes.empty());
  EXPECT_TRUE(c->pod_cidr_file.empty());
}

TEST(IpamConfig, ErrorsNameTheKey) {
  struct Case {
    const char* ipam;
    const char* want;
  } cases[] = {
      {R"({"ranges": [[{"subnet": "10.1.0.0/24", "rangeStart": "10.2.0.5"}]]})",
       "ipam.ranges[0][0].rangeStart: \"10.2.0.5\" is outside subnet 10.1.0.0/24"},
      {R"({"ranges": [[{"subnet": "10.1.0.0/24"}, {"subnet": "10.2.0.0/24", "rangeEnd": "10.1.0.5"}]]})",
       "ipam.ranges[0][1].rangeEnd: \"10.1.0.5\" is outside subnet 10.2.0.0/24"},
      {R"({"subnet": "10.1.0.0/24", "gateway": "10.2.0.1"})",
       "ipam.gateway: \"10.2.0.1\" is outside subnet 10.1.0.0/24"},
      {R"({"subnet": "10.1.0.0/24", "rangeStart": "ten"})",
       "ipam.rangeStart: \"ten\" is not an IP address"},
      {R"({"subnet": "10.1.0.0/24", "rangeEnd": 5})", "ipam.rangeEnd must be a string, got 5"},
      {R"({"subnet": "10.1.0.5/24"})",
       "ipam.subnet: \"10.1.0.5/24\" has host bits set; did you mean 10.1.0.0/24?"},
      {R"({"subnet": "10.1.0.0"})", "ipam.subnet: \"10.1.0.0\" is not a CIDR"},
      {R"({"subnet": 24})", "ipam.subnet must be a string"},
      {R"({"subnet": "10.1.0.0/31"})",
       "ipam.subnet: subnet 10.1.0.0/31 is too small to allocate from; use at least a /30"},
      {R"({"subnet": "10.1.0.1/32"})", "too small"},
      {R"({"subnet": "fd00::/127"})", "use at least a /126"},
      {R"({"subnet": "10.1.0.0/24", "rangeStart": "10.1.0.9", "rangeEnd": "10.1.0.3"})",
       "ipam: rangeStart 10.1.0.9 is after rangeEnd 10.1.0.3"},
      {R"({"subnet": "10.1.0.0/24", "rangeStart": "10.1.0.1", "rangeEnd": "10.1.0.1"})",
       "ipam: range 10.1.0.1-10.1.0.1 has no address to hand out"},
      {R"({"ranges": [[{"subnet": "10.1.0.0/24"}], [{"subnet": "10.1.0.0/16"}]]})",
       "ipam.ranges[1][0]: range 10.1.0.1-10.1.255.254 (subnet 10.1.0.0/16) overlaps "
       "ipam.ranges[0][0] (10.1.0.1-10.1.0.254); range sets must not overlap"},
      {R"({"ranges": [[{"subnet": "10.1.0.0/24"}], [{"subnet": "10.1.0.0/24"}]]})",
       "range sets must not overlap"},
      {R"({"ranges": [[{"subnet": "10.1.0.0/24", "rangeEnd": "10.1.0.100"},
                       {"subnet": "10.1.0.0/24", "rangeStart": "10.1.0.100"}]]})",
       "ipam.ranges[0][1]: range 10.1.0.100-10.1.0.254 (subnet 10.1.0.0/24) overlaps ipam.ranges[0][0]"},
      {R"({"ranges": [[{"subnet": "10.1.0.0/24"}, {"subnet": "fd00::/64"}]]})",
       "ipam.ranges[0][1]: subnet fd00::/64 is of another IP family than ipam.ranges[0][0]"},
      {R"({"ranges": [[{"subnet": "10.1.0.0/24"}], []]})", "ipam.ranges[1] must be a non-empty list"},
      {R"({"ranges": [{"subnet": "10.1.0.0/24"}]})", "ipam.ranges[0] must be a non-empty list"},
      {R"({"ranges": []})", "ipam.ranges must be a non-empty list"},
      {R"({"ranges": [["10.1.0.0/24"]]})", "ipam.ranges[0][0] must be an object"},
      {R"({"ranges": [[{"rangeStart": "10.1.0.5"}]]})", "ipam.ranges[0][0].subnet is missing"},
      {R"({"subnet": "10.1.0.0/24", "podCIDRFile": "/x"})",
       "ipam: podCIDRFile and subnet are both set"},
      {R"({"ranges": [[{"subnet": "10.1.0.0/24"}]], "podCIDRFile": "/x"})",
       "ipam: podCIDRFile and ranges are both set"},
      {R"({"subnet": "10.1.0.0/24", "ranges": [[{"subnet": "10.2.0.0/24"}]]})",
       "ipam: subnet and ranges are both set"},
      {R"({"type": "berth-ipam"})", "ipam: no addresses to hand out"},
      {R"({"subnet": "10.1.0.0/24", "dataDir": "relative"})",
       "ipam.dataDir must be an absolute path, got \"relative\""},
      {R"({"subnet": "10.1.0.0/24", "dataDir": ""})", "ipam.dataDir must be an absolute path"},
      {R"({"subnet": "10.1.0.0/24", "dataDir": 7})", "ipam.dataDir must be a string"},
      {R"({"subnet": "10.1.0.0/24", "type": 7})", "ipam.type must be a string"},
      {R"({"subnet": "10.1.0.0/24", "routes": {"dst": "0.0.0.0/0"}})",
       "ipam.routes must be a list"},
      {R"({"subnet": "10.1.0.0/24", "routes": ["0.0.0.0/0"]})", "ipam.routes[0] must be an object"},
      {R"({"subnet": "10.1.0.0/24", "routes": [{"dst": "0.0.0.0/0"}, {"gw": "10.1.0.1"}]})",
       "ipam.routes[1].dst is missing"},
      {R"({"subnet": "10.1.0.0/24", "routes": [{"dst": "10.9.0.0"}]})",
       "ipam.routes[0].dst: \"10.9.0.0\" is not a CIDR"},
      {R"({"subnet": "10.1.0.0/24", "routes": [{"dst": "0.0.0.0/0", "gw": "10.1.0.x"}]})",
       "ipam.routes[0].gw: \"10.1.0.x\" is not an IP address"},
      {R"({"subnet": "10.1.0.0/24", "routes": [{"dst": "0.0.0.0/0", "gw": 1}]})",
       "ipam.routes[0].gw must be a string"},
      {R"({"subnet": "10.1.0.0/24", "routes": [{"dst": "::/0", "gw": "10.1.0.1"}]})",
       "ipam.routes[0].gw: 10.1.0.1 is of another IP family than dst ::/0"},
      {R"({"podCIDRFile": "relative/pod-cidr"})", "ipam.podCIDRFile must be an absolute path"},
      {R"({"podCIDRFile": "/run/x", "gateway": "10.1.0.1"})",
       "ipam.gateway cannot be combined with podCIDRFile"},
  };
  for (const Case& c : cases) {
    auto r = parse(c.ipam);
    ASSERT_FALSE(r.ok()) << c.ipam;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << c.ipam;
    EXPECT_THAT(r.status().message(), HasSubstr(c.want)) << c.ipam;
  }
  auto no_ipam = parseIpamConfig(Json::parse(R"({"name": "n"})"));
  ASSERT_FALSE(no_ipam.ok());
  EXPECT_THAT(no_ipam.status().message(), HasSubstr("\"ipam\" is missing"));
}

TEST(IpamConfig, RoutesAreCanonical) {
  auto c = parse(R"({"subnet": "10.1.0.0/24",
                     "routes": [{"dst": "10.9.3.4/16"}, {"dst": "FD00::/8", "gw": "FD00::1"}]})");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->routes.size(), 2u);
  EXPECT_EQ(c->routes[0].dst, "10.9.0.0/16");  // host bits are accepted in a route's dst
  EXPECT_EQ(c->routes[0].gw, "");
  EXPECT_EQ(c->routes[1].dst, "fd00::/8");
  EXPECT_EQ(c->routes[1].gw, "fd00::1");
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

  EXPECT_EQ(c->pod_cidr_file, path);
  EXPECT_EQ(c->range_sets[0][0].gateway.toString(), "10.244.3.1");
  EXPECT_EQ(c->range_sets[0][0].range_end.toString(), "10.244.3.254");

  testing::writeFile(path, "10.244.3.0/24\nnot-a-cidr\n");
  auto bad = parse(R"({"podCIDRFile": ")" + path + R"("})");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(),
              HasSubstr(strCat("ipam.podCIDRFile \"", path, "\" line 2: \"not-a-cidr\" is not a CIDR")));

  testing::writeFile(path, "  10.244.3.0/24   # node 3, IPv4\n10.244.0.0/16\n");
  auto overlap = parse(R"({"podCIDRFile": ")" + path + R"("})");
  ASSERT_FALSE(overlap.ok());
  EXPECT_THAT(overlap.status().message(), HasSubstr("line 2"));
  EXPECT_THAT(overlap.status().message(), HasSubstr("overlaps"));

  testing::writeFile(path, "# nothing yet\n\n");
  auto empty = parse(R"({"podCIDRFile": ")" + path + R"("})");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(empty.status().message(), HasSubstr("lists no pod CIDR yet"));

  // Unreadable for another reason than "missing": not "try again later".
  auto dir_instead = parse(R"({"podCIDRFile": ")" + dir.path() + R"("})");
  ASSERT_FALSE(dir_instead.ok());
  EXPECT_NE(dir_instead.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(dir_instead.status().message(), HasSubstr(dir.path()));
}

TEST(IpamConfig, MissingPodCidrFileSaysBerthdHasNotWrittenIt) {
  auto r = parse(R"({"podCIDRFile": "/nonexistent/berth/pod-cidr"})");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(r.status().message(),
              HasSubstr("ipam.podCIDRFile \"/nonexistent/berth/pod-cidr\" does not exist yet: "
                        "berthd has not yet written the node's pod CIDR"));
  EXPECT_THAT(r.status().message(), HasSubstr("retry later"));
}

}  // namespace
}  // namespace berth::cni::ipam
