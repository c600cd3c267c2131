// podNetworkFromNodes (cni/node_network.h) and parseNodeRoutes: the pod network as the
// Node objects describe it. No root, no netlink.
#include "cni/node_network.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace berth::cni {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

json::Json node(const std::string& name, json::Json pod_cidrs, json::Json addresses) {
  json::Json n = {{"metadata", {{"name", name}}}, {"spec", json::Json::object()},
                  {"status", {{"addresses", addresses}}}};
  if (!pod_cidrs.is_null()) n["spec"]["podCIDRs"] = pod_cidrs;
  return n;
}

json::Json addr(const std::string& type, const std::string& ip) {
  return {{"type", type}, {"address", ip}};
}

TEST(PodNetworkFromNodes, OwnCidrsAndRoutesToTheOthersThroughTheirInternalIps) {
  std::vector<json::Json> nodes = {
      node("b", {"10.244.2.0/24", "fd00:10:244:2::/64"},
           {addr("Hostname", "b"), addr("InternalIP", "192.168.0.3"), addr("InternalIP", "fd00::3")}),
      node("self", {"10.244.0.0/24"}, {addr("InternalIP", "192.168.0.1")}),
      node("a", {"10.244.1.0/24"}, {addr("ExternalIP", "203.0.113.9"), addr("InternalIP", "192.168.0.2")}),
  };
  NodesPodNetwork net = podNetworkFromNodes(nodes, "self");
  EXPECT_THAT(net.pod_cidrs, ElementsAre("10.244.0.0/24"));
  EXPECT_THAT(net.routes, ElementsAre(NodeRoute{"10.244.1.0/24", "192.168.0.2"},
                                      NodeRoute{"10.244.2.0/24", "192.168.0.3"},
                                      NodeRoute{"fd00:10:244:2::/64", "fd00::3"}));
  EXPECT_THAT(net.problems, IsEmpty());
}

TEST(PodNetworkFromNodes, OlderSinglePodCidrAndExternalIpFallback) {
  json::Json old = node("old", nullptr, {addr("ExternalIP", "198.51.100.7")});
  old["spec"]["podCIDR"] = "10.244.7.0/24";
  NodesPodNetwork net = podNetworkFromNodes({old}, "self");
  EXPECT_THAT(net.routes, ElementsAre(NodeRoute{"10.244.7.0/24", "198.51.100.7"}));
}

TEST(PodNetworkFromNodes, NodesWithoutCidrsAreSilentBadDataIsReported) {
  std::vector<json::Json> nodes = {
      node("fresh", nullptr, {addr("InternalIP", "192.168.0.5")}),  // not allocated yet
      node("bad", {"10.244.3.1/24", "nonsense"}, {addr("InternalIP", "192.168.0.6")}),
      node("v6only", {"10.244.4.0/24"}, {addr("InternalIP", "fd00::4")}),
      node("dup-a", {"10.244.5.0/24"}, {addr("InternalIP", "192.168.0.8")}),
      node("dup-b", {"10.244.5.0/24"}, {addr("InternalIP", "192.168.0.9")}),
  };
  NodesPodNetwork net = podNetworkFromNodes(nodes, "self");
  EXPECT_THAT(net.pod_cidrs, IsEmpty());
  EXPECT_THAT(net.routes, ElementsAre(NodeRoute{"10.244.5.0/24", "192.168.0.8"}));
  ASSERT_EQ(net.problems.size(), 4u) << ::testing::PrintToString(net.problems);
  std::string all = ::testing::PrintToString(net.problems);
  EXPECT_THAT(all, HasSubstr("node \\\"bad\\\": pod CIDR \\\"10.244.3.1/24\\\" skipped"));
  EXPECT_THAT(all, HasSubstr("\\\"nonsense\\\" skipped"));
  EXPECT_THAT(all, HasSubstr("has no IPv4 InternalIP or ExternalIP"));
  EXPECT_THAT(all, HasSubstr("is also node \\\"dup-a\\\"'s"));
}

TEST(ParseNodeRoutes, AcceptsCanonicalEntriesAndNamesBadOnes) {
  auto ok = parseNodeRoutes({"10.244.1.0/24 via 192.168.0.2", "fd00:1::/64  via  fd00::2"});
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_THAT(*ok, ElementsAre(NodeRoute{"10.244.1.0/24", "192.168.0.2"},
                               NodeRoute{"fd00:1::/64", "fd00::2"}));
  for (const char* bad : {"10.244.1.0/24 192.168.0.2", "10.244.1.0/24 via fd00::2",
                          "10.244.1.0/33 via 192.168.0.2"}) {
    auto st = parseNodeRoutes({bad});
    EXPECT_FALSE(st.ok()) << bad;
    EXPECT_THAT(std::string(st.status().message()), HasSubstr(bad));
  }
}

}  // namespace
}  // namespace berth::cni
