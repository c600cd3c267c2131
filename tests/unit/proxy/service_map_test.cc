// proxy/change_tracker + proxy/service_map: folding Service and EndpointSlice events,
// the changed set, and the ProxyState with kube-proxy's endpoint categorisation.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "proxy/change_tracker.h"
#include "proxy/service_map.h"

namespace berth::proxy {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

Service svcFromJson(const std::string& text) {
  auto svc = parseService(std::string_view(text));
  EXPECT_TRUE(svc.ok()) << svc.status();
  return svc.value();
}

EndpointSlice sliceFromJson(const std::string& text) {
  auto slice = parseEndpointSlice(std::string_view(text));
  EXPECT_TRUE(slice.ok()) << slice.status();
  return slice.value();
}

// A ClusterIP Service default/<name> with the given spec fields merged in.
Service service(const std::string& name, const std::string& spec_extra = "",
                const std::string& ports = R"([{"name": "http", "port": 80, "targetPort": "web"}])") {
  return svcFromJson(R"({"metadata": {"name": ")" + name + R"(", "namespace": "default"},
      "spec": {"clusterIP": "10.96.0.1", "ports": )" + ports + spec_extra + "}}");
}

// One endpoint JSON: address, ready/serving/terminating, node.
std::string ep(const std::string& addr, const std::string& node = "", bool ready = true,
               bool serving = true, bool terminating = false) {
  std::string out = R"({"addresses": [")" + addr + R"("], "conditions": {"ready": )" +
                    (ready ? "true" : "false") + R"(, "serving": )" + (serving ? "true" : "false") +
                    R"(, "terminating": )" + (terminating ? "true" : "false") + "}";
  if (!node.empty()) out += R"(, "nodeName": ")" + node + R"(")";
  return out + "}";
}

EndpointSlice slice(const std::string& name, const std::string& service,
                    const std::vector<std::string>& endpoints,
                    const std::string& ports = R"([{"name": "http", "port": 8080}])",
                    const std::string& type = "IPv4") {
  std::string eps;
  for (const auto& e : endpoints) eps += (eps.empty() ? "" : ",") + e;
  return sliceFromJson(R"({"metadata": {"name": ")" + name + R"(", "namespace": "default",
      "labels": {"kubernetes.io/service-name": ")" + service + R"("}}, "addressType": ")" + type +
                       R"(", "endpoints": [)" + eps + R"(], "ports": )" + ports + "}");
}

NodeInfo node() {
  NodeInfo n;
  n.node_name = "node-a";
  n.node_ips = {IpAddress::parse("192.168.1.10").value()};
  n.cluster_cidrs = {Cidr::parse("10.244.0.0/16").value()};
  return n;
}

std::vector<std::string> strs(const std::vector<Endpoint>& eps) {
  std::vector<std::string> out;
  for (const auto& e : eps) out.push_back(e.str());
  return out;
}

ServicePortName spn(const std::string& svc, const std::string& port = "http",
                    Protocol proto = Protocol::kTCP) {
  return {{"default", svc}, port, proto};
}

// ---------------------------------------------------------------------------
// ChangeTracker

TEST(ChangeTrackerTest, RecordsAddUpdateDeleteOfServices) {
  ChangeTracker t;
  EXPECT_TRUE(t.updateService(service("a")));
  EXPECT_TRUE(t.updateService(service("b")));
  EXPECT_THAT(t.takeChanged(), ElementsAre(NamespacedName{"default", "a"}, NamespacedName{"default", "b"}));
  EXPECT_THAT(t.changed(), IsEmpty());

  // An identical update (informer resync) is not a change.
  EXPECT_FALSE(t.updateService(service("a")));
  EXPECT_THAT(t.changed(), IsEmpty());

  EXPECT_TRUE(t.updateService(service("a", R"(, "sessionAffinity": "ClientIP")")));
  EXPECT_TRUE(t.deleteService({"default", "b"}));
  EXPECT_FALSE(t.deleteService({"default", "nope"}));
  EXPECT_THAT(t.takeChanged(), ElementsAre(NamespacedName{"default", "a"}, NamespacedName{"default", "b"}));
  EXPECT_EQ(t.map().services.size(), 1u);
}

TEST(ChangeTrackerTest, SliceEventsMarkTheirServiceChanged) {
  ChangeTracker t;
  t.updateService(service("a"));
  t.takeChanged();
  EXPECT_TRUE(t.updateEndpointSlice(slice("a-1", "a", {ep("10.244.1.1")})));
  EXPECT_TRUE(t.updateEndpointSlice(slice("a-2", "a", {ep("10.244.1.2")})));
  EXPECT_THAT(t.takeChanged(), ElementsAre(NamespacedName{"default", "a"}));
  EXPECT_EQ(t.map().slices.at({"default", "a"}).size(), 2u);

  EXPECT_FALSE(t.updateEndpointSlice(slice("a-1", "a", {ep("10.244.1.1")})));
  EXPECT_THAT(t.changed(), IsEmpty());

  EXPECT_TRUE(t.deleteEndpointSlice({"default", "a-1"}));
  EXPECT_FALSE(t.deleteEndpointSlice({"default", "a-1"}));
  EXPECT_THAT(t.takeChanged(), ElementsAre(NamespacedName{"default", "a"}));
  EXPECT_EQ(t.map().slices.at({"default", "a"}).size(), 1u);
}

TEST(ChangeTrackerTest, SliceBeforeItsServiceIsUsedOnceTheServiceArrives) {
  ChangeTracker t;
  t.updateEndpointSlice(slice("a-1", "a", {ep("10.244.1.1")}));
  ProxyState before = buildProxyState(t.map(), node());
  EXPECT_THAT(before.ports, IsEmpty());
  t.updateService(service("a"));
  ProxyState after = buildProxyState(t.map(), node());
  ASSERT_EQ(after.ports.size(), 1u);
  EXPECT_THAT(strs(after.ports[0].endpoints), ElementsAre("10.244.1.1:8080"));
}

TEST(ChangeTrackerTest, RelabelledSliceMovesAndBothServicesChange) {
  ChangeTracker t;
  t.updateService(service("a"));
  t.updateService(service("b"));
  t.updateEndpointSlice(slice("s", "a", {ep("10.244.1.1")}));
  t.takeChanged();
  EXPECT_TRUE(t.updateEndpointSlice(slice("s", "b", {ep("10.244.1.1")})));
  EXPECT_THAT(t.takeChanged(), ElementsAre(NamespacedName{"default", "a"}, NamespacedName{"default", "b"}));
  EXPECT_EQ(t.map().slices.count({"default", "a"}), 0u);
  EXPECT_EQ(t.map().slices.at({"default", "b"}).size(), 1u);
}

TEST(ChangeTrackerTest, FqdnSlicesAreNotStored) {
  ChangeTracker t;
  EXPECT_FALSE(t.updateEndpointSlice(sliceFromJson(R"({"metadata": {"name": "f", "namespace": "default",
      "labels": {"kubernetes.io/service-name": "a"}}, "addressType": "FQDN",
      "endpoints": [{"addresses": ["x.example.com"]}]})")));
  EXPECT_THAT(t.map().slices, IsEmpty());
  EXPECT_THAT(t.changed(), IsEmpty());
}

TEST(ChangeTrackerTest, ReplaceAllDeletesWhatIsGone) {
  ChangeTracker t;
  t.updateService(service("a"));
  t.updateService(service("b"));
  t.updateEndpointSlice(slice("a-1", "a", {ep("10.244.1.1")}));
  t.updateEndpointSlice(slice("b-1", "b", {ep("10.244.1.2")}));
  t.takeChanged();
  t.replaceAll({service("a")}, {slice("a-1", "a", {ep("10.244.1.1")})});
  EXPECT_THAT(t.takeChanged(), ElementsAre(NamespacedName{"default", "b"}));
  EXPECT_EQ(t.map().services.size(), 1u);
  EXPECT_EQ(t.map().slices.count({"default", "b"}), 0u);
}

// ---------------------------------------------------------------------------
// Endpoints of a port

TEST(EndpointsForPortTest, NamedTargetPortsResolveThroughTheSlicePortName) {
  ChangeTracker t;
  t.updateService(service("a", "", R"([{"name": "http", "port": 80, "targetPort": "web"},
                                       {"name": "metrics", "port": 9090, "targetPort": 9100},
                                       {"name": "dns", "protocol": "UDP", "port": 53}])"));
  // Two slices, different pods exposing the named port on different numbers.
  t.updateEndpointSlice(slice("a-1", "a", {ep("10.244.1.1"), ep("10.244.1.2")},
                              R"([{"name": "http", "port": 8080}, {"name": "metrics", "port": 9100},
                                  {"name": "dns", "port": 5353, "protocol": "UDP"}])"));
  t.updateEndpointSlice(slice("a-2", "a", {ep("10.244.2.1")},
                              R"([{"name": "http", "port": 8081}, {"name": "metrics", "port": 9100},
                                  {"name": "dns", "port": 5353, "protocol": "TCP"}])"));
  ProxyState st = buildProxyState(t.map(), node());
  ASSERT_EQ(st.ports.size(), 3u);
  const auto* http = st.find(spn("a"), IpFamily::kIPv4);
  ASSERT_NE(http, nullptr);
  EXPECT_EQ(http->target_port.name, "web");
  EXPECT_THAT(strs(http->endpoints), ElementsAre("10.244.1.1:8080", "10.244.1.2:8080", "10.244.2.1:8081"));
  const auto* metrics = st.find(spn("a", "metrics"), IpFamily::kIPv4);
  EXPECT_THAT(strs(metrics->endpoints), ElementsAre("10.244.1.1:9100", "10.244.1.2:9100", "10.244.2.1:9100"));
  // Protocol must match too: the TCP "dns" port of slice a-2 is not the UDP Service port.
  const auto* dns = st.find(spn("a", "dns", Protocol::kUDP), IpFamily::kIPv4);
  ASSERT_NE(dns, nullptr);
  EXPECT_THAT(strs(dns->endpoints), ElementsAre("10.244.1.1:5353", "10.244.1.2:5353"));
}

TEST(EndpointsForPortTest, DuplicatesAcrossSlicesAreMergedPreferringTheLocalCopy) {
  ChangeTracker t;
  t.updateService(service("a"));
  t.updateEndpointSlice(slice("a-1", "a", {ep("10.244.1.1"), ep("10.244.1.2")}));
  t.updateEndpointSlice(slice("a-2", "a", {ep("10.244.1.1", "node-a"), ep("10.244.1.3")}));
  ProxyState st = buildProxyState(t.map(), node());
  ASSERT_EQ(st.ports.size(), 1u);
  EXPECT_THAT(strs(st.ports[0].endpoints), ElementsAre("10.244.1.1:8080", "10.244.1.2:8080", "10.244.1.3:8080"));
  EXPECT_TRUE(st.ports[0].endpoints[0].local);
  EXPECT_EQ(st.ports[0].endpoints[0].node_name, "node-a");
}

TEST(EndpointsForPortTest, SlicePortsWithoutANumberAreSkipped) {
  ChangeTracker t;
  t.updateService(service("a"));
  t.updateEndpointSlice(slice("a-1", "a", {ep("10.244.1.1")}, R"([{"name": "http"}])"));
  ProxyState st = buildProxyState(t.map(), node());
  ASSERT_EQ(st.ports.size(), 1u);
  EXPECT_THAT(st.ports[0].endpoints, IsEmpty());
  EXPECT_FALSE(st.ports[0].has_any_endpoints);
}

// ---------------------------------------------------------------------------
// ProxyState

TEST(BuildProxyStateTest, SkipsExternalNameHeadlessAndUnallocated) {
  ChangeTracker t;
  t.updateService(svcFromJson(R"({"metadata": {"name": "x"}, "spec": {"type": "ExternalName", "externalName": "a.b"}})"));
  t.updateService(svcFromJson(R"({"metadata": {"name": "h"}, "spec": {"clusterIP": "None", "ports": [{"port": 80}]}})"));
  t.updateService(svcFromJson(R"({"metadata": {"name": "p"}, "spec": {"ports": [{"port": 80}]}})"));
  t.updateEndpointSlice(slice("h-1", "h", {ep("10.244.1.1")}, R"([{"port": 80}])"));
  ProxyState st = buildProxyState(t.map(), node());
  EXPECT_THAT(st.ports, IsEmpty());
  EXPECT_EQ(st.skipped.at({"default", "x"}), "type ExternalName");
  EXPECT_EQ(st.skipped.at({"default", "h"}), "headless (clusterIP None)");
  EXPECT_EQ(st.skipped.at({"default", "p"}), "no cluster IP allocated");
}

TEST(BuildProxyStateTest, DualStackGivesOneEntryPerFamilyWithItsOwnAddresses) {
  ChangeTracker t;
  t.updateService(svcFromJson(R"({"metadata": {"name": "d", "namespace": "default"},
      "spec": {"type": "LoadBalancer", "clusterIPs": ["10.96.0.5", "fd00:96::5"], "ipFamilies": ["IPv4", "IPv6"],
               "ports": [{"name": "http", "port": 80, "nodePort": 30080}],
               "externalIPs": ["192.0.2.1", "2001:db8::1"],
               "loadBalancerSourceRanges": ["203.0.113.0/24"],
               "externalTrafficPolicy": "Local", "healthCheckNodePort": 31000},
      "status": {"loadBalancer": {"ingress": [{"ip": "198.51.100.9"}, {"ip": "2001:db8:1::9"}]}}})"));
  t.updateEndpointSlice(slice("d-4", "d", {ep("10.244.1.1", "node-a")}));
  t.updateEndpointSlice(slice("d-6", "d", {ep("fd00:244::1", "node-b")},
                              R"([{"name": "http", "port": 8080}])", "IPv6"));
  ProxyState st = buildProxyState(t.map(), node());
  ASSERT_EQ(st.ports.size(), 2u);
  const auto& v4 = st.ports[0];
  const auto& v6 = st.ports[1];
  EXPECT_EQ(v4.family, IpFamily::kIPv4);
  EXPECT_EQ(v6.family, IpFamily::kIPv6);
  EXPECT_EQ(v4.cluster_ip.str(), "10.96.0.5");
  EXPECT_EQ(v6.cluster_ip.str(), "fd00:96::5");
  EXPECT_EQ(v4.node_port, 30080);
  EXPECT_EQ(v6.node_port, 30080);
  ASSERT_EQ(v4.external_ips.size(), 1u);
  EXPECT_EQ(v4.external_ips[0].str(), "192.0.2.1");
  ASSERT_EQ(v6.external_ips.size(), 1u);
  EXPECT_EQ(v6.external_ips[0].str(), "2001:db8::1");
  EXPECT_EQ(v4.load_balancer_ips[0].str(), "198.51.100.9");
  EXPECT_EQ(v6.load_balancer_ips[0].str(), "2001:db8:1::9");
  EXPECT_EQ(v4.source_ranges.size(), 1u);
  EXPECT_THAT(v6.source_ranges, IsEmpty());  // filtered by family, like kube-proxy
  EXPECT_TRUE(v4.external_policy_local);
  EXPECT_EQ(v4.health_check_node_port, 31000);
  EXPECT_THAT(strs(v4.endpoints), ElementsAre("10.244.1.1:8080"));
  EXPECT_THAT(strs(v6.endpoints), ElementsAre("[fd00:244::1]:8080"));
  EXPECT_TRUE(v4.hasExternalEndpoints());   // local endpoint on node-a
  EXPECT_FALSE(v6.hasExternalEndpoints());  // the v6 one is on node-b
  EXPECT_TRUE(v6.has_any_endpoints);
}

TEST(BuildProxyStateTest, PolicyFieldsOnlyWhereTheyApply) {
  ChangeTracker t;
  // eTP Local on a plain ClusterIP Service without externalIPs means nothing.
  t.updateService(service("c", R"(, "externalTrafficPolicy": "Local", "healthCheckNodePort": 31000)"));
  // nodePort on a ClusterIP Service is ignored; NodePort with eTP Local has no health check port.
  t.updateService(service("n", R"(, "type": "NodePort", "externalTrafficPolicy": "Local", "healthCheckNodePort": 31001)",
                          R"([{"name": "http", "port": 80, "nodePort": 30001}])"));
  t.updateService(service("e", R"(, "externalIPs": ["192.0.2.1"], "externalTrafficPolicy": "Local")"));
  ProxyState st = buildProxyState(t.map(), node());
  const auto* c = st.find(spn("c"), IpFamily::kIPv4);
  const auto* n = st.find(spn("n"), IpFamily::kIPv4);
  const auto* e = st.find(spn("e"), IpFamily::kIPv4);
  EXPECT_FALSE(c->external_policy_local);
  EXPECT_EQ(c->health_check_node_port, 0);
  EXPECT_FALSE(c->externallyAccessible());
  EXPECT_TRUE(n->external_policy_local);
  EXPECT_EQ(n->node_port, 30001);
  EXPECT_EQ(n->health_check_node_port, 0);
  EXPECT_TRUE(e->external_policy_local);
  EXPECT_TRUE(e->externallyAccessible());
}

// ---------------------------------------------------------------------------
// categorizeEndpoints

ServicePortState portWith(std::vector<Endpoint> eps) {
  ServicePortState p;
  p.name = spn("a");
  p.cluster_ip = IpAddress::parse("10.96.0.1").value();
  p.port = 80;
  p.endpoints = std::move(eps);
  return p;
}

Endpoint mk(const char* ip, bool local, bool ready = true, bool serving = true, bool terminating = false) {
  Endpoint e;
  e.ip = IpAddress::parse(ip).value();
  e.port = 8080;
  e.local = local;
  e.ready = ready;
  e.serving = serving;
  e.terminating = terminating;
  return e;
}

TEST(CategorizeEndpointsTest, ClusterPolicyUsesReadyEndpoints) {
  auto p = portWith({mk("10.0.0.1", false), mk("10.0.0.2", true), mk("10.0.0.3", false, false),
                     mk("10.0.0.4", false, false, true, true)});
  categorizeEndpoints(p);
  EXPECT_THAT(strs(p.cluster_endpoints), ElementsAre("10.0.0.1:8080", "10.0.0.2:8080"));
  EXPECT_THAT(p.local_endpoints, IsEmpty());  // Local policy unused
  EXPECT_EQ(p.reachable_endpoints, p.cluster_endpoints);
  EXPECT_TRUE(p.has_any_endpoints);
  EXPECT_TRUE(p.hasInternalEndpoints());
}

TEST(CategorizeEndpointsTest, TerminatingServingEndpointsAreTheFallback) {
  auto p = portWith({mk("10.0.0.1", false, false, true, true), mk("10.0.0.2", false, false, false, true),
                     mk("10.0.0.3", false, false, false, false)});
  categorizeEndpoints(p);
  EXPECT_THAT(strs(p.cluster_endpoints), ElementsAre("10.0.0.1:8080"));
  EXPECT_TRUE(p.has_any_endpoints);
}

TEST(CategorizeEndpointsTest, NoUsableEndpointsMeansNoEndpoints) {
  auto p = portWith({mk("10.0.0.2", false, false, false, true), mk("10.0.0.3", false, false)});
  categorizeEndpoints(p);
  EXPECT_THAT(p.cluster_endpoints, IsEmpty());
  EXPECT_FALSE(p.has_any_endpoints);
  EXPECT_FALSE(p.hasInternalEndpoints());
  EXPECT_FALSE(p.hasExternalEndpoints());
}

TEST(CategorizeEndpointsTest, InternalPolicyLocalUsesOnlyLocalEndpoints) {
  auto p = portWith({mk("10.0.0.1", false), mk("10.0.0.2", true)});
  p.internal_policy_local = true;
  categorizeEndpoints(p);
  EXPECT_FALSE(p.usesClusterEndpoints());
  EXPECT_THAT(p.cluster_endpoints, IsEmpty());
  EXPECT_THAT(strs(p.local_endpoints), ElementsAre("10.0.0.2:8080"));
  EXPECT_THAT(strs(p.internalEndpoints()), ElementsAre("10.0.0.2:8080"));
  EXPECT_EQ(p.reachable_endpoints, p.local_endpoints);
  EXPECT_TRUE(p.hasInternalEndpoints());
}

TEST(CategorizeEndpointsTest, InternalPolicyLocalWithoutLocalEndpoints) {
  auto p = portWith({mk("10.0.0.1", false)});
  p.internal_policy_local = true;
  categorizeEndpoints(p);
  EXPECT_TRUE(p.has_any_endpoints);  // there are endpoints, elsewhere: drop, not reject
  EXPECT_FALSE(p.hasInternalEndpoints());
  EXPECT_THAT(p.reachable_endpoints, IsEmpty());
}

TEST(CategorizeEndpointsTest, ExternalPolicyLocalKeepsBothSets) {
  auto p = portWith({mk("10.0.0.1", false), mk("10.0.0.2", true), mk("10.0.0.3", true, false, true, true)});
  p.node_port = 30000;
  p.external_policy_local = true;
  categorizeEndpoints(p);
  EXPECT_TRUE(p.usesClusterEndpoints());
  EXPECT_TRUE(p.usesLocalEndpoints());
  EXPECT_THAT(strs(p.cluster_endpoints), ElementsAre("10.0.0.1:8080", "10.0.0.2:8080"));
  EXPECT_THAT(strs(p.local_endpoints), ElementsAre("10.0.0.2:8080"));  // ready preferred
  EXPECT_THAT(strs(p.externalEndpoints()), ElementsAre("10.0.0.2:8080"));
  EXPECT_THAT(strs(p.internalEndpoints()), ElementsAre("10.0.0.1:8080", "10.0.0.2:8080"));
  EXPECT_THAT(strs(p.reachable_endpoints), ElementsAre("10.0.0.1:8080", "10.0.0.2:8080"));
}

TEST(CategorizeEndpointsTest, ExternalPolicyLocalFallsBackToLocalTerminating) {
  auto p = portWith({mk("10.0.0.1", false), mk("10.0.0.3", true, false, true, true)});
  p.node_port = 30000;
  p.external_policy_local = true;
  categorizeEndpoints(p);
  EXPECT_THAT(strs(p.local_endpoints), ElementsAre("10.0.0.3:8080"));
  EXPECT_THAT(strs(p.reachable_endpoints), ElementsAre("10.0.0.1:8080", "10.0.0.3:8080"));
  EXPECT_TRUE(p.hasExternalEndpoints());
}

TEST(CategorizeEndpointsTest, ExternalPolicyLocalWithoutLocalEndpoints) {
  auto p = portWith({mk("10.0.0.1", false)});
  p.node_port = 30000;
  p.external_policy_local = true;
  categorizeEndpoints(p);
  EXPECT_TRUE(p.has_any_endpoints);
  EXPECT_TRUE(p.hasInternalEndpoints());
  EXPECT_FALSE(p.hasExternalEndpoints());  // outside traffic is dropped
}

}  // namespace
}  // namespace berth::proxy
