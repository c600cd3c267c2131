// The Service proxy end to end in a throwaway node (service_topology.h): a Proxier
// with a real backend in the node namespace, Services and EndpointSlices as API JSON,
// real TCP/UDP traffic from pods, the node and an outside client. The same behaviour
// suite runs for every backend (TEST_P over the backend names).
#include <unistd.h>

#include <set>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/json.h"
#include "proxy/proxier.h"
#include "tests/integration/proxy/service_topology.h"

namespace berth::proxy {
namespace {

using namespace std::chrono_literals;
using json::Json;
using testing::inNetns;
using testing::Reply;
using testing::ServiceTopology;
using testing::tcpAsk;
using testing::udpAsk;

Json service(const std::string& name, const std::string& ip, int port, const std::string& proto = "TCP",
             Json spec_extra = Json::object()) {
  Json spec = {{"clusterIP", ip},
               {"clusterIPs", {ip}},
               {"ports", {{{"name", "p"}, {"port", port}, {"protocol", proto}}}}};
  for (auto& [k, v] : spec_extra.items()) {
    if (k == "nodePort") {
      spec["ports"][0]["nodePort"] = v;
    } else {
      spec[k] = v;
    }
  }
  return {{"apiVersion", "v1"}, {"kind", "Service"},
          {"metadata", {{"namespace", "default"}, {"name", name}}}, {"spec", spec}};
}

struct Ep {
  std::string ip;
  std::string node = "node-a";
  bool ready = true, serving = true, terminating = false;
};

Json slice(const std::string& service, const std::vector<Ep>& eps, int port, const std::string& proto = "TCP",
           const std::string& family = "IPv4") {
  Json list = Json::array();
  for (const Ep& e : eps) {
    list.push_back({{"addresses", {e.ip}},
                    {"nodeName", e.node},
                    {"conditions", {{"ready", e.ready}, {"serving", e.serving}, {"terminating", e.terminating}}}});
  }
  return {{"apiVersion", "discovery.k8s.io/v1"}, {"kind", "EndpointSlice"},
          {"metadata", {{"namespace", "default"}, {"name", service + "-x"},
                        {"labels", {{"kubernetes.io/service-name", service}}}}},
          {"addressType", family},
          {"endpoints", list},
          {"ports", {{{"name", "p"}, {"port", port}, {"protocol", proto}}}}};
}

StatusOr<std::unique_ptr<RuleBackend>> makeBackend(const std::string& name) {
  if (name == "iptables") return makeIptablesBackend(IptablesBackend::kDetect);
  return makeNftablesBackend();
}

class ProxyBehaviourPrivileged : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (network namespaces)";
    auto t = ServiceTopology::create(3);
    ASSERT_TRUE(t.ok()) << t.status();
    topo_ = std::move(*t);
    ASSERT_TRUE(topo_->startEchoServers(8080).ok());
    ASSERT_TRUE(ServiceTopology::exec(topo_->clientNs(), "ip route add 10.96.0.0/16 via 192.168.77.1").ok());
    Status st = inNetns(topo_->nodeNs(), [&] {
      StatusOr<std::unique_ptr<RuleBackend>> backend = makeBackend(GetParam());
      if (!backend.ok()) {
        setup_error_ = backend.status();
        return;
      }
      ProxierOptions o;
      o.node.node_name = "node-a";
      o.node.node_ips = {*IpAddress::parse(topo_->nodeIp())};
      o.node.cluster_cidrs = {*Cidr::parse("10.244.0.0/16")};
      o.runner.min_interval = 0ms;
      o.runner.sync_period = 60s;
      o.runner.retry_initial = 50ms;
      o.healthz_address = "127.0.0.1:0";
      o.metrics_address = "127.0.0.1:0";
      auto p = Proxier::create(o, std::move(*backend));
      if (!p.ok()) {
        setup_error_ = p.status();
        return;
      }
      proxier_ = std::move(*p);
      proxier_->start();  // from this thread: the sync thread lives in the node netns
    });
    ASSERT_TRUE(st.ok()) << st;
    ASSERT_TRUE(setup_error_.ok()) << setup_error_;
  }
  void TearDown() override {
    proxier_.reset();
    topo_.reset();
  }

  // Waits until every queued change is applied.
  void settle() {
    auto deadline = std::chrono::steady_clock::now() + 5s;
    int before = proxier_->runner().attempts();
    while (std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(20ms);
      if (proxier_->runner().attempts() > before && proxier_->health().healthy()) break;
    }
    std::this_thread::sleep_for(50ms);
    ASSERT_TRUE(proxier_->health().healthy());
  }

  std::set<std::string> podsAnswering(const std::string& from, const std::string& ip, uint16_t port, int n,
                                      std::string* last_peer = nullptr) {
    std::set<std::string> seen;
    for (int i = 0; i < n; ++i) {
      auto r = tcpAsk(from, ip, port);
      EXPECT_TRUE(r.ok()) << r.status();
      if (!r.ok()) break;
      seen.insert(r->pod);
      if (last_peer != nullptr) *last_peer = r->peer;
    }
    return seen;
  }

  Status setup_error_;
  std::unique_ptr<ServiceTopology> topo_;
  std::unique_ptr<Proxier> proxier_;
};

TEST_P(ProxyBehaviourPrivileged, ClusterIpSpreadsOverReadyEndpointsAndKeepsPodSource) {
  proxier_->serviceChanged(service("web", "10.96.0.10", 80));
  proxier_->endpointSliceChanged(slice("web", {{topo_->podIp(0)}, {topo_->podIp(1)}}, 8080));
  settle();
  std::string peer;
  auto seen = podsAnswering(topo_->podNs(2), "10.96.0.10", 80, 30, &peer);
  EXPECT_EQ(seen, (std::set<std::string>{"pod0", "pod1"}));
  EXPECT_EQ(peer, topo_->podIp(2)) << "pod-to-service traffic is not masqueraded";
  // From the node itself and from outside (routed to the cluster IP): masqueraded.
  EXPECT_FALSE(podsAnswering(topo_->nodeNs(), "10.96.0.10", 80, 3).empty());
  auto seen_outside = podsAnswering(topo_->clientNs(), "10.96.0.10", 80, 3, &peer);
  EXPECT_FALSE(seen_outside.empty());
  EXPECT_EQ(peer, "10.244.0.1") << "traffic from outside the cluster CIDR is masqueraded";
}

TEST_P(ProxyBehaviourPrivileged, ServiceWithoutEndpointsRejectsAtOnce) {
  proxier_->serviceChanged(service("empty", "10.96.0.11", 80));
  proxier_->serviceChanged(service("empty-udp", "10.96.0.11", 53, "UDP"));
  settle();
  auto t0 = std::chrono::steady_clock::now();
  auto r = tcpAsk(topo_->podNs(2), "10.96.0.11", 80, 3000);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s) << "rejected, not timed out";
  auto u = udpAsk(topo_->podNs(2), "10.96.0.11", 53, 3000);
  EXPECT_EQ(u.status().code(), absl::StatusCode::kUnavailable) << u.status();
  auto n = tcpAsk(topo_->nodeNs(), "10.96.0.11", 80, 3000);
  EXPECT_EQ(n.status().code(), absl::StatusCode::kUnavailable) << "from the node: " << n.status();
  auto nu = udpAsk(topo_->nodeNs(), "10.96.0.11", 53, 3000);
  EXPECT_EQ(nu.status().code(), absl::StatusCode::kUnavailable) << "from the node: " << nu.status();
}

TEST_P(ProxyBehaviourPrivileged, NodePortFromOutsideIsMasqueradedAndLocalPolicyKeepsTheClient) {
  proxier_->serviceChanged(service("np", "10.96.0.12", 80, "TCP", {{"type", "NodePort"}, {"nodePort", 30080}}));
  proxier_->endpointSliceChanged(slice("np", {{topo_->podIp(0)}}, 8080));
  proxier_->serviceChanged(service("local", "10.96.0.13", 80, "TCP",
                                   {{"type", "NodePort"}, {"nodePort", 30081}, {"externalTrafficPolicy", "Local"}}));
  proxier_->endpointSliceChanged(slice("local", {{topo_->podIp(1)}}, 8080));
  proxier_->serviceChanged(service("remote", "10.96.0.14", 80, "TCP",
                                   {{"type", "NodePort"}, {"nodePort", 30082}, {"externalTrafficPolicy", "Local"}}));
  proxier_->endpointSliceChanged(slice("remote", {{topo_->podIp(1), "node-b"}}, 8080));
  settle();
  auto r = tcpAsk(topo_->clientNs(), topo_->nodeIp(), 30080);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->pod, "pod0");
  EXPECT_EQ(r->peer, "10.244.0.1") << "eTP Cluster: masqueraded";
  auto l = tcpAsk(topo_->clientNs(), topo_->nodeIp(), 30081);
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_EQ(l->peer, topo_->clientIp()) << "eTP Local keeps the client address";
  auto d = tcpAsk(topo_->clientNs(), topo_->nodeIp(), 30082, 1000);
  EXPECT_EQ(d.status().code(), absl::StatusCode::kDeadlineExceeded)
      << "eTP Local without a local endpoint drops: " << d.status();
  // The cluster IP of that Service still reaches the remote endpoint.
  EXPECT_TRUE(tcpAsk(topo_->podNs(2), "10.96.0.14", 80).ok());
}

TEST_P(ProxyBehaviourPrivileged, HairpinAndSessionAffinity) {
  proxier_->serviceChanged(service("self", "10.96.0.15", 80));
  proxier_->endpointSliceChanged(slice("self", {{topo_->podIp(0)}}, 8080));
  proxier_->serviceChanged(service("sticky", "10.96.0.16", 80, "TCP", {{"sessionAffinity", "ClientIP"}}));
  proxier_->endpointSliceChanged(slice("sticky", {{topo_->podIp(0)}, {topo_->podIp(1)}}, 8080));
  settle();
  auto h = tcpAsk(topo_->podNs(0), "10.96.0.15", 80);
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->pod, "pod0");
  EXPECT_EQ(h->peer, "10.244.0.1") << "a pod reaching itself is masqueraded (hairpin)";
  auto seen = podsAnswering(topo_->podNs(2), "10.96.0.16", 80, 15);
  EXPECT_EQ(seen.size(), 1u) << "ClientIP affinity sticks to one endpoint";
}

TEST_P(ProxyBehaviourPrivileged, UdpFlowMovesToTheNewEndpointAtOnce) {
  proxier_->serviceChanged(service("dns", "10.96.0.17", 53, "UDP"));
  proxier_->endpointSliceChanged(slice("dns", {{topo_->podIp(0)}}, 8080, "UDP"));
  settle();
  auto a = udpAsk(topo_->podNs(2), "10.96.0.17", 53, 1000, 40000);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->pod, "pod0");
  proxier_->endpointSliceChanged(slice("dns", {{topo_->podIp(1)}}, 8080, "UDP"));
  settle();
  auto t0 = std::chrono::steady_clock::now();
  auto b = udpAsk(topo_->podNs(2), "10.96.0.17", 53, 1000, 40000);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->pod, "pod1") << "the same 5-tuple reaches the new endpoint (stale conntrack entry deleted)";
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
}

TEST_P(ProxyBehaviourPrivileged, TerminatingEndpointsServeWhenNoneIsReady) {
  proxier_->serviceChanged(service("drain", "10.96.0.18", 80));
  proxier_->endpointSliceChanged(slice("drain", {{topo_->podIp(0), "node-a", false, true, true},
                                                 {topo_->podIp(1), "node-a", false, false, true}},
                                       8080));
  settle();
  auto seen = podsAnswering(topo_->podNs(2), "10.96.0.18", 80, 10);
  EXPECT_EQ(seen, (std::set<std::string>{"pod0"})) << "serving+terminating only";
  proxier_->endpointSliceChanged(slice("drain", {{topo_->podIp(0), "node-a", true, true, false},
                                                 {topo_->podIp(1), "node-a", false, true, true}},
                                       8080));
  settle();
  EXPECT_EQ(podsAnswering(topo_->podNs(2), "10.96.0.18", 80, 10), (std::set<std::string>{"pod0"}))
      << "ready endpoints win over terminating ones";
}

TEST_P(ProxyBehaviourPrivileged, DeletedServiceStopsAndBadObjectsAreNamedAndSkipped) {
  proxier_->serviceChanged(service("gone", "10.96.0.19", 80));
  proxier_->endpointSliceChanged(slice("gone", {{topo_->podIp(0)}}, 8080));
  Json bad = service("bad", "10.96.0.300", 80);
  proxier_->serviceChanged(bad);
  Json zero = service("zero", "10.96.0.20", 0);
  proxier_->serviceChanged(zero);
  settle();
  EXPECT_TRUE(tcpAsk(topo_->podNs(2), "10.96.0.19", 80).ok());
  auto rejected = proxier_->rejectedObjects();
  EXPECT_THAT(rejected["service default/bad"], ::testing::HasSubstr("10.96.0.300"));
  EXPECT_THAT(rejected["service default/zero"], ::testing::HasSubstr("port"));
  proxier_->serviceDeleted(service("gone", "10.96.0.19", 80));
  settle();
  auto r = tcpAsk(topo_->podNs(2), "10.96.0.19", 80, 500);
  EXPECT_FALSE(r.ok()) << "no rules for a deleted Service";
}

TEST_P(ProxyBehaviourPrivileged, HealthzAndMetricsAnswerInTheNodeNamespace) {
  proxier_->serviceChanged(service("m", "10.96.0.21", 80));
  settle();
  auto curl = [&](uint16_t port, const std::string& path) {
    return ServiceTopology::exec(topo_->nodeNs(),
                                 "busybox wget -q -O - http://127.0.0.1:" + std::to_string(port) + path);
  };
  auto h = curl(proxier_->healthzPort(), "/healthz");
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_THAT(*h, ::testing::HasSubstr("\"lastUpdated\""));
  auto m = curl(proxier_->metricsPort(), "/metrics");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_THAT(*m, ::testing::HasSubstr("kubeproxy_sync_full_proxy_rules_duration_seconds_count"));
  EXPECT_THAT(*m, ::testing::HasSubstr("kubeproxy_network_programming_duration_seconds_count"));
}

TEST_P(ProxyBehaviourPrivileged, DualStackServiceAndInternalTrafficPolicyLocal) {
  Json v6 = service("six", "fd00:96::10", 80, "TCP", {{"ipFamilies", {"IPv6"}}});
  proxier_->serviceChanged(v6);
  Json eps = slice("six", {{topo_->podIp6(0)}, {topo_->podIp6(1)}}, 8080, "TCP", "IPv6");
  eps["metadata"]["name"] = "six-v6";
  proxier_->endpointSliceChanged(eps);
  proxier_->serviceChanged(service("itp", "10.96.0.23", 80, "TCP", {{"internalTrafficPolicy", "Local"}}));
  proxier_->endpointSliceChanged(slice("itp", {{topo_->podIp(0), "node-a"}, {topo_->podIp(1), "node-b"}}, 8080));
  proxier_->serviceChanged(service("itp-none", "10.96.0.24", 80, "TCP", {{"internalTrafficPolicy", "Local"}}));
  proxier_->endpointSliceChanged(slice("itp-none", {{topo_->podIp(1), "node-b"}}, 8080));
  settle();
  EXPECT_EQ(podsAnswering(topo_->podNs(2), "fd00:96::10", 80, 20), (std::set<std::string>{"pod0", "pod1"}))
      << "IPv6 cluster IP spreads over the IPv6 endpoints";
  EXPECT_EQ(podsAnswering(topo_->podNs(2), "10.96.0.23", 80, 10), (std::set<std::string>{"pod0"}))
      << "iTP Local uses only this node's endpoints";
  auto none = tcpAsk(topo_->podNs(2), "10.96.0.24", 80, 1000);
  EXPECT_EQ(none.status().code(), absl::StatusCode::kDeadlineExceeded)
      << "iTP Local without a local endpoint drops: " << none.status();
}

TEST_P(ProxyBehaviourPrivileged, LoadBalancerSourceRangesExternalIpsAndHealthCheckNodePort) {
  for (const char* net : {"203.0.113.0/24", "198.51.100.0/24"}) {
    ASSERT_TRUE(ServiceTopology::exec(topo_->clientNs(), strCat("ip route add ", net, " via 192.168.77.1")).ok());
  }
  auto lb = [&](const std::string& name, const std::string& cluster_ip, const std::string& ingress,
                Json ranges, Json extra = Json::object()) {
    Json extra_spec = {{"type", "LoadBalancer"}, {"loadBalancerSourceRanges", ranges}};
    for (auto& [k, v] : extra.items()) extra_spec[k] = v;
    Json svc = service(name, cluster_ip, 80, "TCP", extra_spec);
    svc["status"] = {{"loadBalancer", {{"ingress", {{{"ip", ingress}}}}}}};
    return svc;
  };
  // The client (192.168.77.2) is inside the first Service's ranges, outside the second's.
  proxier_->serviceChanged(lb("open", "10.96.0.30", "203.0.113.10", {topo_->clientIp() + "/32"}));
  proxier_->endpointSliceChanged(slice("open", {{topo_->podIp(0)}}, 8080));
  proxier_->serviceChanged(lb("closed", "10.96.0.31", "203.0.113.11", {"10.1.0.0/16"}));
  proxier_->endpointSliceChanged(slice("closed", {{topo_->podIp(0)}}, 8080));
  proxier_->serviceChanged(service("ext", "10.96.0.32", 80, "TCP", {{"externalIPs", {"198.51.100.10"}}}));
  proxier_->endpointSliceChanged(slice("ext", {{topo_->podIp(1)}}, 8080));
  // eTP Local LoadBalancers with a healthCheckNodePort: one with a local endpoint, one
  // whose only endpoint is on another node.
  proxier_->serviceChanged(lb("hc-local", "10.96.0.33", "203.0.113.12", Json::array(),
                              {{"externalTrafficPolicy", "Local"}, {"healthCheckNodePort", 32100}}));
  proxier_->endpointSliceChanged(slice("hc-local", {{topo_->podIp(1)}, {topo_->podIp(2), "node-b"}}, 8080));
  proxier_->serviceChanged(lb("hc-remote", "10.96.0.34", "203.0.113.13", Json::array(),
                              {{"externalTrafficPolicy", "Local"}, {"healthCheckNodePort", 32101}}));
  proxier_->endpointSliceChanged(slice("hc-remote", {{topo_->podIp(2), "node-b"}}, 8080));
  settle();

  auto open = tcpAsk(topo_->clientNs(), "203.0.113.10", 80);
  ASSERT_TRUE(open.ok()) << "a source inside loadBalancerSourceRanges: " << open.status();
  EXPECT_EQ(open->pod, "pod0");
  auto closed = tcpAsk(topo_->clientNs(), "203.0.113.11", 80, 1000);
  EXPECT_FALSE(closed.ok()) << "a source outside loadBalancerSourceRanges is dropped";
  EXPECT_TRUE(tcpAsk(topo_->podNs(2), "10.96.0.31", 80).ok()) << "the cluster IP is not filtered";
  auto ext = tcpAsk(topo_->clientNs(), "198.51.100.10", 80);
  ASSERT_TRUE(ext.ok()) << "externalIPs: " << ext.status();
  EXPECT_EQ(ext->pod, "pod1");
  EXPECT_EQ(ext->peer, "10.244.0.1") << "from outside the cluster CIDR: masqueraded";
  auto local = tcpAsk(topo_->clientNs(), "203.0.113.12", 80);
  ASSERT_TRUE(local.ok()) << local.status();
  EXPECT_EQ(local->pod, "pod1") << "eTP Local: only this node's endpoint";
  EXPECT_EQ(local->peer, topo_->clientIp()) << "eTP Local keeps the client address";

  // The load balancer's health check: 200 with the local endpoint count, 503 without.
  auto hc = ServiceTopology::exec(topo_->clientNs(),
                                  strCat("busybox wget -q -O - http://", topo_->nodeIp(), ":32100/"));
  ASSERT_TRUE(hc.ok()) << hc.status();
  EXPECT_THAT(*hc, ::testing::HasSubstr("\"localEndpoints\":1"));
  EXPECT_THAT(*hc, ::testing::HasSubstr("\"name\":\"hc-local\""));
  auto none = ServiceTopology::exec(topo_->clientNs(),
                                    strCat("busybox wget -S -O - http://", topo_->nodeIp(), ":32101/ 2>&1"));
  EXPECT_FALSE(none.ok()) << "no local endpoint: the health check fails";
  EXPECT_THAT(none.status().message(), ::testing::HasSubstr("503")) << none.status();
}

INSTANTIATE_TEST_SUITE_P(Backends, ProxyBehaviourPrivileged, ::testing::Values("nftables", "iptables"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace berth::proxy
