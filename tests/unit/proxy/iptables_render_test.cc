// The iptables renderer on states built from API JSON: the chain layout, no-endpoint
// rejects, only changed chains rewritten, stale chains deleted, full sync after a
// failure, base jumps inserted first.
#include "proxy/iptables_render.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "proxy/change_tracker.h"

namespace berth::proxy {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

Service svc(const std::string& name, const std::string& ip, int port, const std::string& extra = "") {
  std::string text = "{\"metadata\":{\"namespace\":\"default\",\"name\":\"" + name +
                     "\"},\"spec\":{\"clusterIP\":\"" + ip + "\",\"ports\":[{\"name\":\"http\",\"port\":" +
                     std::to_string(port) + ",\"protocol\":\"TCP\"}]" + extra + "}}";
  auto s = parseService(std::string_view(text));
  EXPECT_TRUE(s.ok()) << s.status();
  return *s;
}

EndpointSlice slice(const std::string& service, const std::vector<std::string>& ips, int port,
                    const std::string& node = "node-a") {
  std::string eps;
  for (const auto& ip : ips) {
    if (!eps.empty()) eps += ",";
    eps += "{\"addresses\":[\"" + ip + "\"],\"nodeName\":\"" + node + "\"}";
  }
  std::string text = "{\"metadata\":{\"namespace\":\"default\",\"name\":\"" + service +
                     "-abc\",\"labels\":{\"kubernetes.io/service-name\":\"" + service +
                     "\"}},\"addressType\":\"IPv4\",\"endpoints\":[" + eps +
                     "],\"ports\":[{\"name\":\"http\",\"port\":" + std::to_string(port) +
                     ",\"protocol\":\"TCP\"}]}";
  auto s = parseEndpointSlice(std::string_view(text));
  EXPECT_TRUE(s.ok()) << s.status();
  return *s;
}

NodeInfo node() {
  NodeInfo n;
  n.node_name = "node-a";
  n.cluster_cidrs = {*Cidr::parse("10.244.0.0/16")};
  return n;
}

TEST(IptablesRender, ChainNamesAreStableAndFitIptablesLimit) {
  ServicePortName p{{"a-very-long-namespace-name", "a-very-long-service-name"}, "https", Protocol::kTCP};
  std::string svc = iptablesChainName("SVC", p);
  EXPECT_LE(svc.size(), 28u);
  EXPECT_EQ(svc, iptablesChainName("SVC", p));
  EXPECT_NE(iptablesChainName("SEP", p, "10.0.0.1:80"), iptablesChainName("SEP", p, "10.0.0.2:80"));
  EXPECT_LE(iptablesChainName("SEP", p, "[fd00::1]:8080").size(), 28u);
}

TEST(IptablesRender, ClusterIpSpreadsOverEndpointsAndEmptyServicesReject) {
  ChangeTracker t;
  t.updateService(svc("web", "10.96.0.10", 80));
  t.updateEndpointSlice(slice("web", {"10.244.0.2", "10.244.0.3", "10.244.0.4"}, 8080));
  t.updateService(svc("empty", "10.96.0.11", 80));
  IptablesRenderer r(IpFamily::kIPv4);
  auto out = r.render(buildProxyState(t.map(), node()), true);
  const std::string& in = out.restore_input;
  ServicePortName web{{"default", "web"}, "http", Protocol::kTCP};
  std::string svc_chain = iptablesChainName("SVC", web);
  EXPECT_THAT(in, HasSubstr("*nat\n"));
  EXPECT_THAT(in, HasSubstr("-d 10.96.0.10/32 -p tcp -m tcp --dport 80 -j " + svc_chain));
  EXPECT_THAT(in, HasSubstr("! -s 10.244.0.0/16 -d 10.96.0.10/32 -p tcp -m tcp --dport 80 -j BERTH-MARK-MASQ"));
  EXPECT_THAT(in, HasSubstr("--probability 0.3333333333 -j " + iptablesChainName("SEP", web, "10.244.0.2:8080")));
  EXPECT_THAT(in, HasSubstr("--probability 0.5000000000 -j " + iptablesChainName("SEP", web, "10.244.0.3:8080")));
  EXPECT_THAT(in, HasSubstr("-j DNAT --to-destination 10.244.0.4:8080"));
  EXPECT_THAT(in, HasSubstr("-s 10.244.0.4/32 -j BERTH-MARK-MASQ")) << "hairpin";
  EXPECT_THAT(in, HasSubstr("default/empty:http has no endpoints\" -d 10.96.0.11/32 -p tcp -m tcp --dport 80 -j REJECT"));
  EXPECT_THAT(in, HasSubstr("-j MASQUERADE --random-fully"));
  EXPECT_EQ(out.chains_deleted, 0);
}

TEST(IptablesRender, PartialSyncWritesOnlyChangedChainsAndDeletesStaleOnes) {
  ChangeTracker t;
  t.updateService(svc("web", "10.96.0.10", 80));
  t.updateEndpointSlice(slice("web", {"10.244.0.2", "10.244.0.3"}, 8080));
  t.updateService(svc("db", "10.96.0.20", 5432));
  t.updateEndpointSlice(slice("db", {"10.244.0.9"}, 5432));
  IptablesRenderer r(IpFamily::kIPv4);
  auto first = r.render(buildProxyState(t.map(), node()), false);
  r.committed();
  ServicePortName web{{"default", "web"}, "http", Protocol::kTCP};
  ServicePortName db{{"default", "db"}, "http", Protocol::kTCP};
  std::string gone = iptablesChainName("SEP", web, "10.244.0.3:8080");
  EXPECT_THAT(first.restore_input, HasSubstr(":" + gone + " - [0:0]"));

  t.updateEndpointSlice(slice("web", {"10.244.0.2"}, 8080));
  auto second = r.render(buildProxyState(t.map(), node()), false);
  const std::string& in = second.restore_input;
  EXPECT_THAT(in, HasSubstr(":" + iptablesChainName("SVC", web) + " - [0:0]")) << "changed";
  EXPECT_THAT(in, Not(HasSubstr(":" + iptablesChainName("SVC", db) + " "))) << "unchanged";
  EXPECT_THAT(in, Not(HasSubstr(":" + iptablesChainName("SEP", db, "10.244.0.9:5432") + " ")));
  EXPECT_THAT(in, Not(HasSubstr(":BERTH-SERVICES "))) << "the Service list did not change";
  EXPECT_THAT(in, HasSubstr("-X " + gone + "\n"));
  EXPECT_EQ(second.chains_deleted, 1);
  // The deletes come after the rules that stop jumping to them.
  EXPECT_LT(in.find("-A " + iptablesChainName("SVC", web)), in.find("-X " + gone));
  r.failed();
  auto third = r.render(buildProxyState(t.map(), node()), false);
  EXPECT_THAT(third.restore_input, HasSubstr(":" + iptablesChainName("SVC", db) + " - [0:0]"))
      << "after a failure every chain is written";
  r.committed();
  auto quiet = r.render(buildProxyState(t.map(), node()), false);
  EXPECT_EQ(quiet.restore_input, "") << "nothing changed";
}

TEST(IptablesRender, NodePortLocalPolicyAndFirewall) {
  ChangeTracker t;
  t.updateService(svc("lb", "10.96.0.30", 80,
                      ",\"type\":\"LoadBalancer\",\"externalTrafficPolicy\":\"Local\","
                      "\"loadBalancerSourceRanges\":[\"203.0.113.0/24\"],\"healthCheckNodePort\":30100"));
  // spec.ports has no nodePort in svc(); add one by re-parsing.
  auto s = parseService(std::string_view(
      "{\"metadata\":{\"namespace\":\"default\",\"name\":\"lb\"},\"spec\":{\"type\":\"LoadBalancer\","
      "\"clusterIP\":\"10.96.0.30\",\"externalTrafficPolicy\":\"Local\",\"healthCheckNodePort\":30100,"
      "\"loadBalancerSourceRanges\":[\"203.0.113.0/24\"],"
      "\"ports\":[{\"name\":\"http\",\"port\":80,\"nodePort\":30080}]},"
      "\"status\":{\"loadBalancer\":{\"ingress\":[{\"ip\":\"198.51.100.7\"}]}}}"));
  ASSERT_TRUE(s.ok()) << s.status();
  t.updateService(*s);
  t.updateEndpointSlice(slice("lb", {"10.244.0.2"}, 8080, "node-b"));  // not local
  IptablesRenderer r(IpFamily::kIPv4);
  const std::string in = r.render(buildProxyState(t.map(), node()), true).restore_input;
  ServicePortName lb{{"default", "lb"}, "http", Protocol::kTCP};
  EXPECT_THAT(in, HasSubstr("has no local endpoints\" -m addrtype --dst-type LOCAL -p tcp -m tcp --dport 30080 -j DROP"));
  EXPECT_THAT(in, HasSubstr("has no local endpoints\" -d 198.51.100.7/32 -p tcp -m tcp --dport 80 -j DROP"));
  EXPECT_THAT(in, HasSubstr("-d 10.96.0.30/32 -p tcp -m tcp --dport 80 -j " + iptablesChainName("SVC", lb)))
      << "cluster traffic still uses every endpoint";

  t.updateEndpointSlice(slice("lb", {"10.244.0.2"}, 8080, "node-a"));  // now local
  const std::string in2 = r.render(buildProxyState(t.map(), node()), true).restore_input;
  std::string ext = iptablesChainName("EXT", lb), fw = iptablesChainName("FW", lb);
  EXPECT_THAT(in2, HasSubstr("--dport 30080 -j " + ext));
  EXPECT_THAT(in2, HasSubstr("-d 198.51.100.7/32 -p tcp -m tcp --dport 80 -j " + fw));
  EXPECT_THAT(in2, HasSubstr("-s 203.0.113.0/24 -j " + ext));
  EXPECT_THAT(in2, HasSubstr("-A " + fw + " -m comment --comment \"default/lb:http loadbalancer IP\" -j BERTH-MARK-DROP"));
  EXPECT_THAT(in2, HasSubstr("-A " + ext + " -m comment --comment \"default/lb:http external traffic to local endpoints\" -j " +
                                 iptablesChainName("SVL", lb)));
}

TEST(IptablesRender, MissingBaseJumpsAreInsertedFirst) {
  ChangeTracker t;
  IptablesRenderer r(IpFamily::kIPv6);
  auto out = r.render(buildProxyState(t.map(), node()), true, IptablesRenderer::baseJumps());
  EXPECT_THAT(out.restore_input, HasSubstr("-I PREROUTING 1 -j BERTH-SERVICES\n"));
  EXPECT_THAT(out.restore_input, HasSubstr("-I INPUT 1 -m conntrack --ctstate NEW -j BERTH-EXTERNAL-SERVICES\n"));
  EXPECT_THAT(out.restore_input, HasSubstr("! -d ::1/128 -m addrtype --dst-type LOCAL -j BERTH-NODEPORTS"));
}

}  // namespace
}  // namespace berth::proxy
