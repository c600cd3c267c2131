// Packet traces through the rendered nftables rules of the scenarios (tests/unit/proxy/
// scenarios.cc), with the rule walker (nft_walker.h) as the kernel: where a connection
// is DNATed to, whether it is masqueraded, and when it is rejected or dropped. Plus the
// walker's own checks (the subset it parses, the kernel's reference rules).
#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "proxy/nftables_render.h"
#include "tests/unit/proxy/nft_walker.h"
#include "tests/unit/proxy/scenarios.h"

namespace berth::proxy {
namespace {

using testing::NftWalker;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;
using Origin = NftWalker::Origin;
using Verdict = NftWalker::Verdict;

IpAddress ip(const char* s) { return IpAddress::parse(s).value(); }

const std::vector<IpAddress>& nodeAddresses() {
  static const std::vector<IpAddress> kAddrs = {ip("192.168.1.10"), ip("fd00:1::10")};
  return kAddrs;
}

// The walker loaded with the first sync of a scenario.
NftWalker loaded(const std::string& scenario) {
  NftWalker w;
  NftablesRenderer r;
  std::string script = r.renderSync(testing::stateOf(testing::scenario(scenario)), {}, true);
  Status st = w.apply(script);
  EXPECT_TRUE(st.ok()) << st;
  return w;
}

std::vector<NftWalker::Path> trace(const NftWalker& w, const char* src, const char* dst, int port,
                                   Origin origin, Protocol proto = Protocol::kTCP) {
  NftWalker::Packet p{ip(src), ip(dst), proto, port, origin};
  auto paths = w.trace(p, nodeAddresses());
  EXPECT_TRUE(paths.ok()) << paths.status();
  return paths.ok() ? *paths : std::vector<NftWalker::Path>{};
}

std::set<std::string> targets(const std::vector<NftWalker::Path>& paths) {
  std::set<std::string> out;
  for (const auto& p : paths) out.insert(p.dnat);
  return out;
}

std::string dump(const std::vector<NftWalker::Path>& paths) {
  std::string out;
  for (const auto& p : paths) out += p.describe() + "\n";
  return out;
}

void expectAll(const std::vector<NftWalker::Path>& paths, Verdict verdict, bool masquerade) {
  ASSERT_FALSE(paths.empty());
  for (const auto& p : paths) {
    EXPECT_EQ(p.verdict, verdict) << dump(paths);
    EXPECT_EQ(p.masquerade, masquerade) << dump(paths);
  }
}

TEST(NftWalkerTraceTest, EveryGoldenScenarioAppliesToTheWalker) {
  for (const auto& s : testing::scenarios()) {
    NftWalker w;
    NftablesRenderer r;
    Status st = w.apply(r.renderSync(testing::stateOf(s), {}, true));
    EXPECT_TRUE(st.ok()) << s.name << ": " << st;
  }
}

TEST(NftWalkerTraceTest, ClusterIpSpreadsOverAllEndpointsWithoutMasqueradeForPods) {
  NftWalker w = loaded("clusterip_several_endpoints");
  auto paths = trace(w, "10.244.1.50", "10.96.0.10", 80, Origin::kPod);
  EXPECT_EQ(targets(paths), (std::set<std::string>{"10.244.1.5:8080", "10.244.2.5:8080", "10.244.2.6:8080"}))
      << dump(paths);
  EXPECT_EQ(paths.size(), 3u) << dump(paths);  // the random pick: each endpoint exactly once
  expectAll(paths, Verdict::kAccept, false);
  EXPECT_EQ(paths[0].hooks, "prerouting,forward,postrouting");
}

TEST(NftWalkerTraceTest, ClusterIpFromTheNodeIsMasqueraded) {
  NftWalker w = loaded("clusterip_one_endpoint");
  auto paths = trace(w, "192.168.1.10", "10.96.0.10", 80, Origin::kNode);
  EXPECT_EQ(targets(paths), (std::set<std::string>{"10.244.2.5:8080"}));
  expectAll(paths, Verdict::kAccept, true);  // source outside the cluster CIDR
  EXPECT_EQ(paths[0].hooks, "output,postrouting");
}

TEST(NftWalkerTraceTest, HairpinToItselfIsMasquerade) {
  NftWalker w = loaded("clusterip_several_endpoints");
  auto paths = trace(w, "10.244.1.5", "10.96.0.10", 80, Origin::kPod);
  ASSERT_EQ(paths.size(), 3u) << dump(paths);
  for (const auto& p : paths) {
    EXPECT_EQ(p.masquerade, p.dnat == "10.244.1.5:8080") << p.describe();
  }
}

TEST(NftWalkerTraceTest, UnknownPortOfAClusterIpIsRejected) {
  NftWalker w = loaded("clusterip_one_endpoint");
  auto paths = trace(w, "10.244.1.50", "10.96.0.10", 81, Origin::kPod);
  expectAll(paths, Verdict::kReject, false);
  EXPECT_THAT(targets(paths), ElementsAre(""));
}

TEST(NftWalkerTraceTest, UnallocatedServiceAddressIsDropped) {
  NftWalker w = loaded("nodeport_addresses");  // has service CIDRs
  expectAll(trace(w, "10.244.1.50", "10.96.5.5", 80, Origin::kPod), Verdict::kDrop, false);
  // Not a Service address at all: untouched.
  auto other = trace(w, "10.244.1.50", "10.244.2.99", 80, Origin::kPod);
  expectAll(other, Verdict::kAccept, false);
  EXPECT_THAT(targets(other), ElementsAre(""));
}

TEST(NftWalkerTraceTest, NamedTargetPortsReachEachPodsOwnPort) {
  NftWalker w = loaded("named_target_ports");
  EXPECT_EQ(targets(trace(w, "10.244.1.50", "10.96.0.20", 80, Origin::kPod)),
            (std::set<std::string>{"10.244.1.7:8080", "10.244.2.7:8081"}));
  EXPECT_EQ(targets(trace(w, "10.244.1.50", "10.96.0.20", 9090, Origin::kPod)),
            (std::set<std::string>{"10.244.1.7:9100", "10.244.2.7:9100"}));
  EXPECT_EQ(targets(trace(w, "10.244.1.50", "10.96.0.20", 53, Origin::kPod, Protocol::kUDP)),
            (std::set<std::string>{"10.244.1.7:5353", "10.244.2.7:5353"}));
  // TCP 53 is not a port of the Service.
  expectAll(trace(w, "10.244.1.50", "10.96.0.20", 53, Origin::kPod), Verdict::kReject, false);
}

TEST(NftWalkerTraceTest, NodePortFromOutsideIsMasqueraded) {
  NftWalker w = loaded("nodeport");
  auto paths = trace(w, "203.0.113.9", "192.168.1.10", 30080, Origin::kOutside);
  EXPECT_EQ(targets(paths), (std::set<std::string>{"10.244.1.8:8080", "10.244.2.8:8080"})) << dump(paths);
  expectAll(paths, Verdict::kAccept, true);
  // The cluster IP still works, and a port that is no NodePort is left alone.
  EXPECT_EQ(targets(trace(w, "10.244.1.50", "10.96.0.30", 80, Origin::kPod)).size(), 2u);
  auto other = trace(w, "203.0.113.9", "192.168.1.10", 30081, Origin::kOutside);
  expectAll(other, Verdict::kAccept, false);
  EXPECT_THAT(targets(other), ElementsAre(""));
  EXPECT_EQ(other[0].hooks, "prerouting,input");
}

TEST(NftWalkerTraceTest, NodePortOnLoopbackIsNotServed) {
  NftWalker w = loaded("nodeport");
  auto paths = trace(w, "127.0.0.1", "127.0.0.1", 30080, Origin::kNode);
  EXPECT_THAT(targets(paths), ElementsAre(""));
}

TEST(NftWalkerTraceTest, NodePortAddressesRestrictWhereNodePortsAnswer) {
  NftWalker w = loaded("nodeport_addresses");
  auto paths = trace(w, "203.0.113.9", "192.168.1.10", 30130, Origin::kOutside);
  EXPECT_EQ(targets(paths), (std::set<std::string>{"10.244.2.21:8080"}));
  // The node's IPv6 address is outside --nodeport-addresses.
  auto v6 = trace(w, "2001:db8::9", "fd00:1::10", 30130, Origin::kOutside);
  EXPECT_THAT(targets(v6), ElementsAre(""));
}

TEST(NftWalkerTraceTest, ExternalIpFromOutsideIsDnatedAndMasqueraded) {
  NftWalker w = loaded("external_ips");
  auto paths = trace(w, "203.0.113.9", "192.0.2.50", 80, Origin::kOutside);
  EXPECT_EQ(targets(paths), (std::set<std::string>{"10.244.2.10:8080"}));
  expectAll(paths, Verdict::kAccept, true);
}

TEST(NftWalkerTraceTest, LoadBalancerSourceRangesDropOthersButNotNodePorts) {
  NftWalker w = loaded("loadbalancer_source_ranges");
  auto allowed = trace(w, "203.0.113.7", "198.51.100.40", 80, Origin::kOutside);
  EXPECT_EQ(targets(allowed), (std::set<std::string>{"10.244.2.9:8080"}));
  expectAll(allowed, Verdict::kAccept, true);
  auto denied = trace(w, "8.8.8.8", "198.51.100.40", 80, Origin::kOutside);
  expectAll(denied, Verdict::kDrop, false);
  EXPECT_EQ(denied[0].hooks, "prerouting");  // before DNAT
  // The node is inside a source range: its own connections to the LB IP pass.
  EXPECT_EQ(targets(trace(w, "192.168.1.10", "198.51.100.40", 80, Origin::kNode)),
            (std::set<std::string>{"10.244.2.9:8080"}));
  // NodePorts are not subject to loadBalancerSourceRanges (as in kube-proxy).
  EXPECT_EQ(targets(trace(w, "8.8.8.8", "192.168.1.10", 30040, Origin::kOutside)),
            (std::set<std::string>{"10.244.2.9:8080"}));
}

TEST(NftWalkerTraceTest, ExternalPolicyLocalKeepsTheClientIpAndOnlyReachesLocalEndpoints) {
  NftWalker w = loaded("etp_local_with_local");
  auto outside = trace(w, "203.0.113.9", "192.168.1.10", 30070, Origin::kOutside);
  EXPECT_EQ(targets(outside), (std::set<std::string>{"10.244.1.12:8080"})) << dump(outside);
  expectAll(outside, Verdict::kAccept, false);
  // Pods and the node itself are short-circuited to all endpoints.
  auto pod = trace(w, "10.244.1.50", "192.168.1.10", 30070, Origin::kPod);
  EXPECT_EQ(targets(pod), (std::set<std::string>{"10.244.1.12:8080", "10.244.2.12:8080"}));
  expectAll(pod, Verdict::kAccept, false);
  auto node = trace(w, "192.168.1.10", "192.168.1.10", 30070, Origin::kNode);
  EXPECT_EQ(targets(node), (std::set<std::string>{"10.244.1.12:8080", "10.244.2.12:8080"}));
  expectAll(node, Verdict::kAccept, true);
  // The cluster IP uses every endpoint.
  EXPECT_EQ(targets(trace(w, "10.244.1.50", "10.96.0.70", 80, Origin::kPod)).size(), 2u);
}

TEST(NftWalkerTraceTest, ExternalPolicyLocalWithoutLocalEndpointsDropsOutsideTraffic) {
  NftWalker w = loaded("etp_local_without_local");
  auto lb = trace(w, "203.0.113.9", "198.51.100.80", 80, Origin::kOutside);
  expectAll(lb, Verdict::kDrop, false);
  EXPECT_THAT(targets(lb), ElementsAre(""));
  auto np = trace(w, "203.0.113.9", "192.168.1.10", 30081, Origin::kOutside);
  expectAll(np, Verdict::kDrop, false);
  // Pods and the node still reach the remote endpoint through the LB IP (kubernetes
  // #131765: not blackholed).
  auto pod = trace(w, "10.244.1.50", "198.51.100.80", 80, Origin::kPod);
  EXPECT_EQ(targets(pod), (std::set<std::string>{"10.244.2.13:8080"}));
  expectAll(pod, Verdict::kAccept, false);
  auto node = trace(w, "192.168.1.10", "198.51.100.80", 80, Origin::kNode);
  EXPECT_EQ(targets(node), (std::set<std::string>{"10.244.2.13:8080"}));
  expectAll(node, Verdict::kAccept, true);
  // Cluster IP traffic is unaffected by eTP.
  EXPECT_EQ(targets(trace(w, "10.244.1.50", "10.96.0.80", 80, Origin::kPod)),
            (std::set<std::string>{"10.244.2.13:8080"}));
}

TEST(NftWalkerTraceTest, InternalPolicyLocal) {
  NftWalker w = loaded("itp_local");
  EXPECT_EQ(targets(trace(w, "10.244.1.50", "10.96.0.90", 80, Origin::kPod)),
            (std::set<std::string>{"10.244.1.14:8080"}));
  // Endpoints exist, but none here: dropped, not rejected.
  expectAll(trace(w, "10.244.1.50", "10.96.0.91", 80, Origin::kPod), Verdict::kDrop, false);
}

TEST(NftWalkerTraceTest, ServiceWithoutEndpointsIsRejectedEverywhere) {
  NftWalker w = loaded("no_endpoints_reject");
  expectAll(trace(w, "10.244.1.50", "10.96.0.100", 80, Origin::kPod), Verdict::kReject, false);
  expectAll(trace(w, "10.244.1.50", "10.96.0.100", 53, Origin::kPod, Protocol::kUDP), Verdict::kReject, false);
  expectAll(trace(w, "192.168.1.10", "10.96.0.100", 80, Origin::kNode), Verdict::kReject, false);
  auto np = trace(w, "203.0.113.9", "192.168.1.10", 30100, Origin::kOutside);
  expectAll(np, Verdict::kReject, false);
  EXPECT_EQ(np[0].hooks, "prerouting,input");
  expectAll(trace(w, "203.0.113.9", "192.0.2.100", 80, Origin::kOutside), Verdict::kReject, false);
}

TEST(NftWalkerTraceTest, TerminatingEndpointsServeWhenNoneIsReady) {
  NftWalker w = loaded("terminating_fallback");
  EXPECT_EQ(targets(trace(w, "10.244.1.50", "10.96.0.110", 80, Origin::kPod)),
            (std::set<std::string>{"10.244.1.17:8080", "10.244.2.18:8080"}));
}

TEST(NftWalkerTraceTest, SessionAffinityLooksUpThenRemembersTheClient) {
  NftWalker w = loaded("session_affinity");
  auto first = trace(w, "10.244.1.50", "10.96.0.60", 80, Origin::kPod);
  ASSERT_EQ(first.size(), 2u) << dump(first);
  for (const auto& p : first) {
    // Both affinity sets are consulted before the random pick, and the chosen endpoint
    // records the client.
    size_t affinity_lookups = 0;
    for (const auto& set : p.lookups) affinity_lookups += set.rfind("affinity-", 0) == 0;
    EXPECT_EQ(affinity_lookups, 2u) << p.describe();
    ASSERT_EQ(p.updates.size(), 1u);
    EXPECT_EQ(p.updates[0].second, "10.244.1.50");
    EXPECT_THAT(p.updates[0].first, HasSubstr("affinity-"));
  }
  w.remember(first[1]);
  auto again = trace(w, "10.244.1.50", "10.96.0.60", 80, Origin::kPod);
  ASSERT_EQ(again.size(), 1u) << dump(again);
  EXPECT_EQ(again[0].dnat, first[1].dnat);
  // Another client is still spread.
  EXPECT_EQ(trace(w, "10.244.1.51", "10.96.0.60", 80, Origin::kPod).size(), 2u);
}

TEST(NftWalkerTraceTest, DualStackKeepsEachFamilyToItsEndpoints) {
  NftWalker w = loaded("dual_stack");
  EXPECT_EQ(targets(trace(w, "10.244.1.50", "10.96.0.120", 80, Origin::kPod)),
            (std::set<std::string>{"10.244.1.19:8080"}));
  auto v6 = trace(w, "fd00:244::1:50", "fd00:96::120", 80, Origin::kPod);
  EXPECT_EQ(targets(v6), (std::set<std::string>{"[fd00:244::1:19]:8080", "[fd00:244::2:19]:8080"}));
  expectAll(v6, Verdict::kAccept, false);
  auto np6 = trace(w, "2001:db8::9", "fd00:1::10", 30120, Origin::kOutside);
  EXPECT_EQ(targets(np6), (std::set<std::string>{"[fd00:244::1:19]:8080", "[fd00:244::2:19]:8080"}));
  expectAll(np6, Verdict::kAccept, true);
  auto np4 = trace(w, "203.0.113.9", "192.168.1.10", 30120, Origin::kOutside);
  EXPECT_EQ(targets(np4), (std::set<std::string>{"10.244.1.19:8080"}));
}

TEST(NftWalkerTraceTest, IgnoredServicesProgramNothing) {
  NftWalker w = loaded("ignored_services");
  for (const std::string& chain : w.chainNames()) {
    EXPECT_EQ(chain.find('/'), std::string::npos) << chain;
  }
  for (const std::string& c : w.containerNames()) {
    EXPECT_THAT(w.elements(c), IsEmpty()) << c;
  }
  auto paths = trace(w, "10.244.1.50", "10.244.1.20", 80, Origin::kPod);
  EXPECT_THAT(targets(paths), ElementsAre(""));
}

// ---------------------------------------------------------------------------
// The walker as a kernel stand-in.

TEST(NftWalkerTest, FailedTransactionChangesNothing) {
  NftWalker w;
  ASSERT_TRUE(w.apply("add table inet t\nadd chain inet t a\n").ok());
  Status st = w.apply("add chain inet t b\nadd rule inet t b jump missing\n");
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(st.message()), HasSubstr("line 2"));
  EXPECT_FALSE(w.hasChain("b"));
  EXPECT_TRUE(w.hasChain("a"));
}

TEST(NftWalkerTest, ReferencedChainsAndSetsCannotBeDeleted) {
  NftWalker w;
  ASSERT_TRUE(w.apply("add table inet t\nadd chain inet t a\nadd chain inet t b\n"
                      "add rule inet t a jump b\n"
                      "add map inet t m { type inet_proto . inet_service : verdict; }\n"
                      "add chain inet t c\nadd element inet t m { tcp . 80 : goto c }\n"
                      "add set inet t s { type ipv4_addr; }\nadd rule inet t a ip saddr @s drop\n")
                  .ok());
  EXPECT_EQ(w.apply("delete chain inet t b\n").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(w.apply("delete chain inet t c\n").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(w.apply("delete set inet t s\n").code(), absl::StatusCode::kFailedPrecondition);
  // Remove the references first, in the same transaction: fine.
  EXPECT_TRUE(w.apply("flush chain inet t a\ndelete chain inet t b\n"
                      "delete element inet t m { tcp . 80 }\ndelete chain inet t c\ndelete set inet t s\n")
                  .ok());
  EXPECT_FALSE(w.hasChain("b"));
  EXPECT_FALSE(w.hasContainer("s"));
}

TEST(NftWalkerTest, MapElementWithAnotherValueIsRefused) {
  NftWalker w;
  ASSERT_TRUE(w.apply("add table inet t\nadd map inet t m { type inet_proto . inet_service : verdict; }\n"
                      "add element inet t m { tcp . 80 : drop }\n")
                  .ok());
  EXPECT_TRUE(w.apply("add element inet t m { tcp . 80 : drop }\n").ok());
  EXPECT_EQ(w.apply("add element inet t m { tcp . 80 : accept }\n").code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(w.apply("delete element inet t m { tcp . 81 }\n").code(), absl::StatusCode::kNotFound);
}

TEST(NftWalkerTest, PriorityNamesOnlyWhereNftAcceptsThem) {
  NftWalker w;
  EXPECT_FALSE(w.apply("add table inet t\nadd chain inet t o { type nat hook output priority dstnat; }\n").ok());
  EXPECT_TRUE(w.apply("add table inet t\nadd chain inet t o { type nat hook output priority -100; }\n").ok());
}

TEST(NftWalkerTest, NumgenMatchForksIntoBothOutcomes) {
  NftWalker w;
  ASSERT_TRUE(w.apply("add table inet t\n"
                      "add chain inet t pre { type nat hook prerouting priority dstnat; }\n"
                      "add rule inet t pre numgen random mod 3 == 0 meta l4proto tcp dnat ip to 10.0.0.1:1\n"
                      "add rule inet t pre numgen random mod 2 == 0 meta l4proto tcp dnat ip to 10.0.0.2:2\n"
                      "add rule inet t pre numgen random mod 1 == 0 meta l4proto tcp dnat ip to 10.0.0.3:3\n")
                  .ok());
  auto paths = trace(w, "10.1.0.1", "10.2.0.1", 80, Origin::kPod);
  EXPECT_EQ(targets(paths), (std::set<std::string>{"10.0.0.1:1", "10.0.0.2:2", "10.0.0.3:3"})) << dump(paths);
  EXPECT_EQ(paths.size(), 3u) << dump(paths);
  EXPECT_FALSE(w.apply("add table inet t\nadd chain inet t a\nadd rule inet t a numgen random mod 2 == 2 drop\n").ok());
}

TEST(NftWalkerTest, UnsupportedSyntaxIsAParseError) {
  NftWalker w;
  Status st = w.apply("add table inet t\nadd chain inet t a\nadd rule inet t a counter accept\n");
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("counter"));
  EXPECT_FALSE(w.apply("add table inet t\nadd chain inet t a\nadd rule inet t a dnat to 10.0.0.1:80\n").ok());
}

}  // namespace
}  // namespace berth::proxy
