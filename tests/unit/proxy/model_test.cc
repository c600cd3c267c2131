// proxy/model: parsing and validation of v1 Services and discovery.k8s.io/v1
// EndpointSlices from the API's JSON, and the IP/CIDR helpers.
#include "proxy/model.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace berth::proxy {
namespace {

using ::testing::HasSubstr;

IpAddress ip(const char* text) { return IpAddress::parse(text).value(); }

TEST(IpAddressTest, ParsesAndPrintsCanonically) {
  EXPECT_EQ(ip("10.0.0.1").str(), "10.0.0.1");
  EXPECT_EQ(ip("10.0.0.1").family, IpFamily::kIPv4);
  EXPECT_EQ(ip("FD00:0:0::01").str(), "fd00::1");
  EXPECT_EQ(ip("fd00::1").family, IpFamily::kIPv6);
  EXPECT_TRUE(ip("127.1.2.3").isLoopback());
  EXPECT_TRUE(ip("::1").isLoopback());
  EXPECT_FALSE(ip("10.0.0.1").isLoopback());
  for (const char* bad : {"", "10.0.0", "10.0.0.256", "fd00:::1", "[fd00::1]", "fe80::1%eth0", "x"}) {
    auto r = IpAddress::parse(bad);
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  }
  EXPECT_LT(ip("10.0.0.2"), ip("10.0.0.10"));  // numeric order, not text order
}

TEST(CidrTest, ParsesMasksAndContains) {
  Cidr c = Cidr::parse("10.1.2.3/16").value();
  EXPECT_EQ(c.str(), "10.1.0.0/16");
  EXPECT_TRUE(c.contains(ip("10.1.255.1")));
  EXPECT_FALSE(c.contains(ip("10.2.0.1")));
  EXPECT_FALSE(c.contains(ip("fd00::1")));
  Cidr v6 = Cidr::parse("fd00:1::5/64").value();
  EXPECT_EQ(v6.str(), "fd00:1::/64");
  EXPECT_TRUE(v6.contains(ip("fd00:1::abcd")));
  EXPECT_TRUE(Cidr::parse("0.0.0.0/0").value().contains(ip("1.2.3.4")));
  for (const char* bad : {"10.0.0.0", "10.0.0.0/33", "10.0.0.0/", "10.0.0.0/a", "fd00::/129", "x/8"}) {
    EXPECT_FALSE(Cidr::parse(bad).ok()) << bad;
  }
}

TEST(ServicePortNameTest, PrintsLikeKubeProxy) {
  ServicePortName named{{"default", "web"}, "http", Protocol::kTCP};
  ServicePortName unnamed{{"default", "web"}, "", Protocol::kUDP};
  EXPECT_EQ(named.str(), "default/web:http");
  EXPECT_EQ(unnamed.str(), "default/web");
}

constexpr const char* kFullService = R"({
  "apiVersion": "v1", "kind": "Service",
  "metadata": {"name": "web", "namespace": "shop"},
  "spec": {
    "type": "LoadBalancer",
    "clusterIP": "10.96.0.10",
    "clusterIPs": ["10.96.0.10", "fd00:96::10"],
    "ipFamilies": ["IPv4", "IPv6"],
    "ports": [
      {"name": "http", "protocol": "TCP", "port": 80, "targetPort": "web-http", "nodePort": 30080},
      {"name": "dns", "protocol": "UDP", "port": 53, "targetPort": 5353, "nodePort": 30053},
      {"name": "num", "port": 81, "targetPort": "8081"}
    ],
    "externalIPs": ["192.0.2.7"],
    "loadBalancerSourceRanges": [" 203.0.113.0/24 ", "2001:db8::/32"],
    "sessionAffinity": "ClientIP",
    "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 600}},
    "externalTrafficPolicy": "Local",
    "internalTrafficPolicy": "Cluster",
    "healthCheckNodePort": 32000
  },
  "status": {"loadBalancer": {"ingress": [
    {"ip": "198.51.100.1"}, {"hostname": "lb.example.com"},
    {"ip": "198.51.100.2", "ipMode": "Proxy"}, {"ip": "198.51.100.3", "ipMode": "VIP"}]}}
})";

TEST(ParseServiceTest, ReadsEveryFieldTheProxyUses) {
  auto svc = parseService(std::string_view(kFullService));
  ASSERT_TRUE(svc.ok()) << svc.status();
  EXPECT_EQ(svc->name, (NamespacedName{"shop", "web"}));
  EXPECT_EQ(svc->type, ServiceType::kLoadBalancer);
  EXPECT_EQ(svc->skipReason(), "");
  ASSERT_EQ(svc->cluster_ips.size(), 2u);
  EXPECT_EQ(svc->cluster_ips[0].str(), "10.96.0.10");
  EXPECT_EQ(svc->cluster_ips[1].str(), "fd00:96::10");
  EXPECT_EQ(svc->ip_families, (std::vector<IpFamily>{IpFamily::kIPv4, IpFamily::kIPv6}));
  ASSERT_EQ(svc->ports.size(), 3u);
  EXPECT_EQ(svc->ports[0].name, "http");
  EXPECT_EQ(svc->ports[0].port, 80);
  EXPECT_EQ(svc->ports[0].node_port, 30080);
  EXPECT_EQ(svc->ports[0].target_port.name, "web-http");
  EXPECT_EQ(svc->ports[1].protocol, Protocol::kUDP);
  EXPECT_EQ(svc->ports[1].target_port.number, 5353);
  EXPECT_EQ(svc->ports[2].protocol, Protocol::kTCP);  // default
  EXPECT_EQ(svc->ports[2].target_port.number, 8081);  // numeric string
  ASSERT_EQ(svc->external_ips.size(), 1u);
  EXPECT_EQ(svc->external_ips[0].str(), "192.0.2.7");
  ASSERT_EQ(svc->load_balancer_source_ranges.size(), 2u);
  EXPECT_EQ(svc->load_balancer_source_ranges[0].str(), "203.0.113.0/24");
  EXPECT_EQ(svc->load_balancer_source_ranges[1].str(), "2001:db8::/32");
  // hostname-only and ipMode Proxy ingress points are not VIPs.
  ASSERT_EQ(svc->load_balancer_ips.size(), 2u);
  EXPECT_EQ(svc->load_balancer_ips[0].str(), "198.51.100.1");
  EXPECT_EQ(svc->load_balancer_ips[1].str(), "198.51.100.3");
  EXPECT_EQ(svc->session_affinity, SessionAffinity::kClientIP);
  EXPECT_EQ(svc->affinity_timeout_seconds, 600);
  EXPECT_EQ(svc->external_traffic_policy, TrafficPolicy::kLocal);
  EXPECT_EQ(svc->internal_traffic_policy, TrafficPolicy::kCluster);
  EXPECT_EQ(svc->health_check_node_port, 32000);
}

TEST(ParseServiceTest, DefaultsForAMinimalService) {
  auto svc = parseService(std::string_view(R"({"metadata": {"name": "a"},
      "spec": {"clusterIP": "10.0.0.1", "ports": [{"port": 80}],
               "sessionAffinity": "ClientIP"}})"));
  ASSERT_TRUE(svc.ok()) << svc.status();
  EXPECT_EQ(svc->name.ns, "default");
  EXPECT_EQ(svc->type, ServiceType::kClusterIP);
  ASSERT_EQ(svc->cluster_ips.size(), 1u);  // from clusterIP alone (old objects)
  EXPECT_EQ(svc->ports[0].name, "");
  EXPECT_EQ(svc->ports[0].protocol, Protocol::kTCP);
  EXPECT_EQ(svc->ports[0].target_port, TargetPort{});
  EXPECT_EQ(svc->affinity_timeout_seconds, kDefaultAffinityTimeoutSeconds);
  EXPECT_EQ(svc->affinity_timeout_seconds, 10800);
  EXPECT_EQ(svc->external_traffic_policy, TrafficPolicy::kCluster);
  EXPECT_EQ(svc->internal_traffic_policy, TrafficPolicy::kCluster);
}

TEST(ParseServiceTest, SourceRangesFromTheAnnotationWhenTheFieldIsEmpty) {
  auto svc = parseService(std::string_view(R"({"metadata": {"name": "a", "namespace": "n",
      "annotations": {"service.beta.kubernetes.io/load-balancer-source-ranges": "10.0.0.0/8, 192.168.0.0/16"}},
      "spec": {"type": "LoadBalancer", "clusterIP": "10.0.0.1", "ports": [{"port": 80, "nodePort": 30000}]}})"));
  ASSERT_TRUE(svc.ok()) << svc.status();
  ASSERT_EQ(svc->load_balancer_source_ranges.size(), 2u);
  EXPECT_EQ(svc->load_balancer_source_ranges[1].str(), "192.168.0.0/16");
}

TEST(ParseServiceTest, IgnoredKindsParseWithoutErrors) {
  auto ext = parseService(std::string_view(R"({"metadata": {"name": "x"},
      "spec": {"type": "ExternalName", "externalName": "db.example.com", "ports": [{"port": 0}]}})"));
  ASSERT_TRUE(ext.ok()) << ext.status();
  EXPECT_EQ(ext->skipReason(), "type ExternalName");
  auto headless = parseService(std::string_view(R"({"metadata": {"name": "h"},
      "spec": {"clusterIP": "None", "clusterIPs": ["None"], "ports": [{"port": 80}]}})"));
  ASSERT_TRUE(headless.ok()) << headless.status();
  EXPECT_TRUE(headless->headless);
  EXPECT_EQ(headless->skipReason(), "headless (clusterIP None)");
  auto pending = parseService(std::string_view(R"({"metadata": {"name": "p"}, "spec": {"ports": [{"port": 80}]}})"));
  ASSERT_TRUE(pending.ok()) << pending.status();
  EXPECT_EQ(pending->skipReason(), "no cluster IP allocated");
}

struct BadService {
  const char* json;
  const char* message;
};

class ParseServiceErrorTest : public ::testing::TestWithParam<BadService> {};

TEST_P(ParseServiceErrorTest, RejectedWithTheObjectAndFieldNamed) {
  auto svc = parseService(std::string_view(GetParam().json));
  ASSERT_FALSE(svc.ok());
  EXPECT_EQ(svc.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(svc.status().message()), HasSubstr(GetParam().message));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ParseServiceErrorTest,
    ::testing::Values(
        BadService{R"({"metadata": {"name": "web", "namespace": "default"}, "spec": {"clusterIP": "10.0.0.1",
            "ports": [{"name": "a", "port": 80}, {"name": "b", "port": 0}]}})",
                   "service default/web: ports[1].port: 0 is not a valid port (1-65535)"},
        BadService{R"({"metadata": {"name": "web"}, "spec": {"clusterIP": "10.0.0.1", "ports": [{"port": 65536}]}})",
                   "service default/web: ports[0].port: 65536 is not a valid port (1-65535)"},
        BadService{R"({"metadata": {"name": "web"}, "spec": {"clusterIP": "10.0.0.1", "ports": [{"name": "x"}]}})",
                   "ports[0].port: missing"},
        BadService{R"({"metadata": {"name": "web"}, "spec": {"clusterIP": "10.0.0.1", "ports": [{"port": 80, "protocol": "ICMP"}]}})",
                   "service default/web: ports[0].protocol: \"ICMP\" is not a supported protocol (TCP, UDP, SCTP)"},
        BadService{R"({"metadata": {"name": "web"}, "spec": {"clusterIP": "10.0.0.300", "ports": [{"port": 80}]}})",
                   "service default/web: spec.clusterIPs[0]: \"10.0.0.300\" is not a valid IP address"},
        BadService{R"({"metadata": {"name": "web"}, "spec": {"clusterIP": "10.0.0.1", "externalIPs": ["bogus"], "ports": [{"port": 80}]}})",
                   "spec.externalIPs[0]: \"bogus\" is not a valid IP address"},
        BadService{R"({"metadata": {"name": "web"}, "spec": {"clusterIP": "10.0.0.1", "loadBalancerSourceRanges": ["10.0.0.0/40"], "ports": [{"port": 80}]}})",
                   "spec.loadBalancerSourceRanges[0]: \"10.0.0.0/40\" is not a valid CIDR"},
        BadService{R"({"metadata": {"name": "web"}, "spec": {"type": "LoadBalancer", "clusterIP": "10.0.0.1", "ports": [{"port": 80}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3"}]}}})",
                   "status.loadBalancer.ingress[0].ip: \"1.2.3\" is not a valid IP address"},
        BadService{R"({"metadata": {"name": "web"}, "spec": {"clusterIP": "10.0.0.1", "ports": [{"port": 80, "nodePort": 70000}]}})",
                   "ports[0].nodePort: 70000 is not a valid port"},
        BadService{R"({"metadata": {"name": "web"}, "spec": {"clusterIP": "10.0.0.1", "ports": [{"port": 80}, {"port": 81}]}})",
                   "ports[1].name: \"\" is used by two ports"},
        BadService{R"({"metadata": {"name": "web"}, "spec": {"type": "Magic", "clusterIP": "10.0.0.1"}})",
                   "spec.type: \"Magic\" is not a Service type"},
        BadService{R"({"metadata": {"name": "web"}, "spec": {"clusterIP": "10.0.0.1", "sessionAffinity": "ClientIP",
            "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 0}}}})",
                   "timeoutSeconds: 0 is out of range (1-86400)"},
        BadService{R"({"metadata": {"name": "web"}, "spec": {"clusterIP": "10.0.0.1", "externalTrafficPolicy": "Nearby"}})",
                   "spec.externalTrafficPolicy: \"Nearby\" is not a traffic policy"},
        BadService{R"({"metadata": {"name": "web"}, "spec": {"clusterIPs": ["10.0.0.1", "10.0.0.2"]}})",
                   "spec.clusterIPs[1]: a second IPv4 cluster IP"},
        BadService{R"({"metadata": {"name": "web"}, "spec": {"clusterIP": "10.0.0.1", "ports": [{"port": "80"}]}})",
                   "ports[0].port: must be an integer"},
        BadService{R"({"metadata": {"namespace": "x"}, "spec": {}})", "service: metadata.name: missing"},
        BadService{R"({"metadata": {"name": "Web"}, "spec": {}})",
                   "service default/Web: metadata.name: \"Web\" is not a valid name (a DNS label"},
        BadService{R"({"metadata": {"name": "web", "namespace": "a b"}, "spec": {}})",
                   "metadata.namespace: \"a b\" is not a valid name"},
        BadService{R"({"metadata": {"name": "web"}, "spec": {"clusterIP": "10.0.0.1", "ports": [{"name": "h;x", "port": 80}]}})",
                   "ports[0].name: \"h;x\" is not a valid name"},
        BadService{R"({"metadata": {"name": "web"}})", "service default/web: spec: missing"}));

TEST(ParseServiceTest, MalformedJsonIsInvalidArgument) {
  auto svc = parseService(std::string_view("{not json"));
  ASSERT_FALSE(svc.ok());
  EXPECT_EQ(svc.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(svc.status().message()), HasSubstr("parse service"));
}

constexpr const char* kSlice = R"({
  "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
  "metadata": {"name": "web-abc12", "namespace": "shop",
               "labels": {"kubernetes.io/service-name": "web"}},
  "addressType": "IPv4",
  "endpoints": [
    {"addresses": ["10.1.0.5"], "conditions": {"ready": true}, "nodeName": "node-a", "zone": "z1"},
    {"addresses": ["10.1.0.6", "10.1.0.60"], "conditions": {"ready": false, "serving": true, "terminating": true}},
    {"addresses": ["10.1.0.7"]},
    {"addresses": ["10.1.0.8"], "conditions": {}}
  ],
  "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}, {"name": "dns", "port": 5353, "protocol": "UDP"},
            {"name": "all"}]
})";

TEST(ParseEndpointSliceTest, ReadsEndpointsWithTheApiDefaults) {
  auto slice = parseEndpointSlice(std::string_view(kSlice));
  ASSERT_TRUE(slice.ok()) << slice.status();
  EXPECT_EQ(slice->name, (NamespacedName{"shop", "web-abc12"}));
  EXPECT_EQ(slice->service(), (NamespacedName{"shop", "web"}));
  EXPECT_EQ(slice->address_type, AddressType::kIPv4);
  EXPECT_FALSE(slice->ignored());
  ASSERT_EQ(slice->endpoints.size(), 4u);
  EXPECT_EQ(slice->endpoints[0].ip->str(), "10.1.0.5");
  EXPECT_EQ(slice->endpoints[0].node_name, "node-a");
  EXPECT_EQ(slice->endpoints[0].zone, "z1");
  EXPECT_EQ(slice->endpoints[1].ip->str(), "10.1.0.6");  // addresses[0] is the one used
  EXPECT_EQ(slice->endpoints[1].addresses.size(), 2u);
  EXPECT_EQ(slice->endpoints[1].conditions, (EndpointConditions{false, true, true}));
  // nil conditions: ready and serving true, terminating false.
  EXPECT_EQ(slice->endpoints[2].conditions, (EndpointConditions{true, true, false}));
  EXPECT_EQ(slice->endpoints[3].conditions, (EndpointConditions{true, true, false}));
  ASSERT_EQ(slice->ports.size(), 3u);
  EXPECT_EQ(slice->ports[0].name, "http");
  EXPECT_EQ(slice->ports[0].port, 8080);
  EXPECT_EQ(slice->ports[1].protocol, Protocol::kUDP);
  EXPECT_FALSE(slice->ports[2].port.has_value());
}

TEST(ParseEndpointSliceTest, FqdnSlicesAreIgnoredNotRejected) {
  auto slice = parseEndpointSlice(std::string_view(R"({"metadata": {"name": "s", "namespace": "n",
      "labels": {"kubernetes.io/service-name": "svc"}}, "addressType": "FQDN",
      "endpoints": [{"addresses": ["db.example.com"]}], "ports": [{"port": 5432}]})"));
  ASSERT_TRUE(slice.ok()) << slice.status();
  EXPECT_TRUE(slice->ignored());
  EXPECT_FALSE(slice->endpoints[0].ip.has_value());
}

class ParseSliceErrorTest : public ::testing::TestWithParam<BadService> {};

TEST_P(ParseSliceErrorTest, RejectedWithTheObjectAndFieldNamed) {
  auto slice = parseEndpointSlice(std::string_view(GetParam().json));
  ASSERT_FALSE(slice.ok());
  EXPECT_EQ(slice.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(slice.status().message()), HasSubstr(GetParam().message));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ParseSliceErrorTest,
    ::testing::Values(
        BadService{R"({"metadata": {"name": "s", "namespace": "n"}, "addressType": "IPv4"})",
                   "endpointslice n/s: metadata.labels: no kubernetes.io/service-name label"},
        BadService{R"({"metadata": {"name": "s", "labels": {"kubernetes.io/service-name": "a"}}, "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["nope"]}]})",
                   "endpointslice default/s: endpoints[1].addresses[0]: \"nope\" is not a valid IP address"},
        BadService{R"({"metadata": {"name": "s", "labels": {"kubernetes.io/service-name": "a"}}, "addressType": "IPv4",
            "endpoints": [{"addresses": ["fd00::1"]}]})",
                   "endpoints[0].addresses[0]: fd00::1 is not an IPv4 address"},
        BadService{R"({"metadata": {"name": "s", "labels": {"kubernetes.io/service-name": "a"}}, "addressType": "IPv6",
            "endpoints": [{"addresses": []}]})",
                   "endpoints[0].addresses: at least one address is required"},
        BadService{R"({"metadata": {"name": "s", "labels": {"kubernetes.io/service-name": "a"}}, "addressType": "IPv4",
            "ports": [{"port": 0}]})",
                   "endpointslice default/s: ports[0].port: 0 is not a valid port (1-65535)"},
        BadService{R"({"metadata": {"name": "s", "labels": {"kubernetes.io/service-name": "a"}}, "addressType": "IPv4",
            "ports": [{"port": 80, "protocol": "tcp"}]})",
                   "ports[0].protocol: \"tcp\" is not a supported protocol"},
        BadService{R"({"metadata": {"name": "s", "labels": {"kubernetes.io/service-name": "a/b"}}, "addressType": "IPv4"})",
                   "metadata.labels[kubernetes.io/service-name]: \"a/b\" is not a valid name"},
        BadService{R"({"metadata": {"name": "s", "labels": {"kubernetes.io/service-name": "a"}}, "addressType": "IPX"})",
                   "addressType: \"IPX\" is not an address type"},
        BadService{R"({"metadata": {"name": "s", "labels": {"kubernetes.io/service-name": "a"}}, "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": "yes"}}]})",
                   "endpoints[0].conditions.ready: must be a boolean"}));

}  // namespace
}  // namespace berth::proxy
