#include "tests/unit/proxy/scenarios.h"

#include <gtest/gtest.h>

namespace berth::proxy::testing {
namespace {

constexpr const char* kHttp = R"([{"name": "http", "port": 8080, "protocol": "TCP"}])";

std::vector<Scenario> makeScenarios() {
  std::vector<Scenario> out;
  auto add = [&](std::string name, std::string description, std::vector<std::string> services,
                 std::vector<std::string> slices) {
    out.push_back({std::move(name), std::move(description), std::move(services), std::move(slices),
                   testNode()});
  };

  add("clusterip_one_endpoint", "ClusterIP Service with one ready endpoint on another node",
      {serviceJson("web", R"("clusterIP": "10.96.0.10", "ports": [{"name": "http", "port": 80, "targetPort": 8080}])")},
      {sliceJson("web-1", "web", {endpointJson("10.244.2.5", "node-b")}, kHttp)});

  add("clusterip_several_endpoints", "ClusterIP Service spread over three endpoints",
      {serviceJson("web", R"("clusterIP": "10.96.0.10", "ports": [{"name": "http", "port": 80, "targetPort": 8080}])")},
      {sliceJson("web-1", "web", {endpointJson("10.244.1.5", "node-a"), endpointJson("10.244.2.5", "node-b")}, kHttp),
       sliceJson("web-2", "web", {endpointJson("10.244.2.6", "node-b")}, kHttp)});

  add("named_target_ports", "Several ports, one with a named targetPort resolved per slice",
      {serviceJson("app", R"("clusterIP": "10.96.0.20", "ports": [
          {"name": "http", "port": 80, "targetPort": "web"},
          {"name": "metrics", "port": 9090, "targetPort": 9100},
          {"name": "dns", "protocol": "UDP", "port": 53, "targetPort": 5353}])")},
      {sliceJson("app-1", "app", {endpointJson("10.244.1.7", "node-a")},
                 R"([{"name": "http", "port": 8080}, {"name": "metrics", "port": 9100},
                     {"name": "dns", "port": 5353, "protocol": "UDP"}])"),
       sliceJson("app-2", "app", {endpointJson("10.244.2.7", "node-b")},
                 R"([{"name": "http", "port": 8081}, {"name": "metrics", "port": 9100},
                     {"name": "dns", "port": 5353, "protocol": "UDP"}])")});

  add("nodeport", "NodePort Service (externalTrafficPolicy Cluster)",
      {serviceJson("np", R"("type": "NodePort", "clusterIP": "10.96.0.30",
          "ports": [{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080}])")},
      {sliceJson("np-1", "np", {endpointJson("10.244.1.8", "node-a"), endpointJson("10.244.2.8", "node-b")}, kHttp)});

  add("loadbalancer_source_ranges", "LoadBalancer with ingress IP and loadBalancerSourceRanges",
      {serviceJson("lb", R"("type": "LoadBalancer", "clusterIP": "10.96.0.40",
          "ports": [{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30040}],
          "loadBalancerSourceRanges": ["203.0.113.0/24", "192.168.1.0/24"])",
                   R"("loadBalancer": {"ingress": [{"ip": "198.51.100.40"}]})")},
      {sliceJson("lb-1", "lb", {endpointJson("10.244.2.9", "node-b")}, kHttp)});

  add("external_ips", "ClusterIP Service with externalIPs",
      {serviceJson("ext", R"("clusterIP": "10.96.0.50", "externalIPs": ["192.0.2.50"],
          "ports": [{"name": "http", "port": 80, "targetPort": 8080}])")},
      {sliceJson("ext-1", "ext", {endpointJson("10.244.2.10", "node-b")}, kHttp)});

  add("session_affinity", "ClientIP session affinity with a 600 s timeout",
      {serviceJson("sticky", R"("clusterIP": "10.96.0.60", "sessionAffinity": "ClientIP",
          "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 600}},
          "ports": [{"name": "http", "port": 80, "targetPort": 8080}])")},
      {sliceJson("sticky-1", "sticky", {endpointJson("10.244.1.11", "node-a"), endpointJson("10.244.2.11", "node-b")}, kHttp)});

  add("etp_local_with_local", "NodePort, externalTrafficPolicy Local, one local and one remote endpoint",
      {serviceJson("loc", R"("type": "NodePort", "clusterIP": "10.96.0.70", "externalTrafficPolicy": "Local",
          "ports": [{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30070}])")},
      {sliceJson("loc-1", "loc", {endpointJson("10.244.1.12", "node-a"), endpointJson("10.244.2.12", "node-b")}, kHttp)});

  add("etp_local_without_local", "LoadBalancer, externalTrafficPolicy Local, endpoints only on other nodes",
      {serviceJson("far", R"("type": "LoadBalancer", "clusterIP": "10.96.0.80", "externalTrafficPolicy": "Local",
          "healthCheckNodePort": 32080,
          "ports": [{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30081}])",
                   R"("loadBalancer": {"ingress": [{"ip": "198.51.100.80"}]})")},
      {sliceJson("far-1", "far", {endpointJson("10.244.2.13", "node-b")}, kHttp)});

  add("itp_local", "internalTrafficPolicy Local: cluster IP traffic only to local endpoints",
      {serviceJson("itp", R"("clusterIP": "10.96.0.90", "internalTrafficPolicy": "Local",
          "ports": [{"name": "http", "port": 80, "targetPort": 8080}])"),
       serviceJson("itp-none", R"("clusterIP": "10.96.0.91", "internalTrafficPolicy": "Local",
          "ports": [{"name": "http", "port": 80, "targetPort": 8080}])")},
      {sliceJson("itp-1", "itp", {endpointJson("10.244.1.14", "node-a"), endpointJson("10.244.2.14", "node-b")}, kHttp),
       sliceJson("itp-none-1", "itp-none", {endpointJson("10.244.2.15", "node-b")}, kHttp)});

  add("no_endpoints_reject", "Services without usable endpoints are rejected (cluster IP, NodePort, external IP)",
      {serviceJson("empty", R"("type": "NodePort", "clusterIP": "10.96.0.100", "externalIPs": ["192.0.2.100"],
          "ports": [{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30100},
                    {"name": "dns", "protocol": "UDP", "port": 53, "nodePort": 30101}])")},
      {sliceJson("empty-1", "empty", {endpointJson("10.244.2.16", "node-b", false, false, false)}, kHttp)});

  add("terminating_fallback", "No ready endpoint: serving+terminating ones are used",
      {serviceJson("drain", R"("clusterIP": "10.96.0.110", "ports": [{"name": "http", "port": 80, "targetPort": 8080}])")},
      {sliceJson("drain-1", "drain",
                 {endpointJson("10.244.1.17", "node-a", false, true, true),
                  endpointJson("10.244.2.17", "node-b", false, false, true),
                  endpointJson("10.244.2.18", "node-b", false, true, true)},
                 kHttp)});

  add("dual_stack", "Dual-stack NodePort Service with IPv4 and IPv6 slices",
      {serviceJson("dual", R"("type": "NodePort", "clusterIP": "10.96.0.120",
          "clusterIPs": ["10.96.0.120", "fd00:96::120"], "ipFamilies": ["IPv4", "IPv6"],
          "ports": [{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30120}])")},
      {sliceJson("dual-4", "dual", {endpointJson("10.244.1.19", "node-a")}, kHttp),
       sliceJson("dual-6", "dual", {endpointJson("fd00:244::1:19", "node-a"), endpointJson("fd00:244::2:19", "node-b")},
                 kHttp, "IPv6")});

  add("ignored_services", "Headless and ExternalName Services (and an FQDN slice) program nothing",
      {serviceJson("headless", R"("clusterIP": "None", "clusterIPs": ["None"], "ports": [{"name": "http", "port": 80}])"),
       serviceJson("extname", R"("type": "ExternalName", "externalName": "db.example.com")")},
      {sliceJson("headless-1", "headless", {endpointJson("10.244.1.20", "node-a")}, kHttp),
       R"({"metadata": {"name": "extname-1", "namespace": "default",
           "labels": {"kubernetes.io/service-name": "extname"}}, "addressType": "FQDN",
           "endpoints": [{"addresses": ["db.example.com"]}], "ports": [{"port": 5432}]})"});

  // NodePorts only on the node's IPv4 address (--nodeport-addresses 192.168.1.0/24).
  add("nodeport_addresses", "NodePort restricted to --nodeport-addresses 192.168.1.0/24",
      {serviceJson("np", R"("type": "NodePort", "clusterIP": "10.96.0.130",
          "ports": [{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30130}])")},
      {sliceJson("np-1", "np", {endpointJson("10.244.2.21", "node-b")}, kHttp)});
  out.back().node.nodeport_addresses = {Cidr::parse("192.168.1.0/24").value()};
  out.back().node.service_cidrs = {Cidr::parse("10.96.0.0/16").value(),
                                   Cidr::parse("fd00:96::/112").value()};
  return out;
}

}  // namespace

NodeInfo testNode() {
  NodeInfo n;
  n.node_name = "node-a";
  n.node_ips = {IpAddress::parse("192.168.1.10").value(), IpAddress::parse("fd00:1::10").value()};
  n.cluster_cidrs = {Cidr::parse("10.244.0.0/16").value(), Cidr::parse("fd00:244::/64").value()};
  return n;
}

const std::vector<Scenario>& scenarios() {
  static const std::vector<Scenario> kAll = makeScenarios();
  return kAll;
}

const Scenario& scenario(const std::string& name) {
  for (const Scenario& s : scenarios()) {
    if (s.name == name) return s;
  }
  ADD_FAILURE() << "no scenario " << name;
  return scenarios().front();
}

void load(const Scenario& s, ChangeTracker& tracker) {
  for (const std::string& text : s.services) {
    auto svc = parseService(std::string_view(text));
    ASSERT_TRUE(svc.ok()) << s.name << ": " << svc.status();
    tracker.updateService(*svc);
  }
  for (const std::string& text : s.slices) {
    auto slice = parseEndpointSlice(std::string_view(text));
    ASSERT_TRUE(slice.ok()) << s.name << ": " << slice.status();
    tracker.updateEndpointSlice(*slice);
  }
}

ProxyState stateOf(const Scenario& s) {
  ChangeTracker tracker;
  load(s, tracker);
  return buildProxyState(tracker.map(), s.node);
}

std::string endpointJson(const std::string& addr, const std::string& node, bool ready,
                         bool serving, bool terminating) {
  auto b = [](bool v) { return v ? "true" : "false"; };
  std::string out = std::string(R"({"addresses": [")") + addr + R"("], "conditions": {"ready": )" +
                    b(ready) + R"(, "serving": )" + b(serving) + R"(, "terminating": )" +
                    b(terminating) + "}";
  if (!node.empty()) out += R"(, "nodeName": ")" + node + "\"";
  return out + "}";
}

std::string sliceJson(const std::string& name, const std::string& service,
                      const std::vector<std::string>& endpoints, const std::string& ports_json,
                      const std::string& address_type) {
  std::string eps;
  for (const auto& e : endpoints) eps += (eps.empty() ? "" : ", ") + e;
  return R"({"metadata": {"name": ")" + name + R"(", "namespace": "default", "labels": {"kubernetes.io/service-name": ")" +
         service + R"("}}, "addressType": ")" + address_type + R"(", "endpoints": [)" + eps +
         R"(], "ports": )" + ports_json + "}";
}

std::string serviceJson(const std::string& name, const std::string& spec_json,
                        const std::string& status_json) {
  std::string out = R"({"metadata": {"name": ")" + name + R"(", "namespace": "default"}, "spec": {)" +
                    spec_json + "}";
  if (!status_json.empty()) out += R"(, "status": {)" + status_json + "}";
  return out + "}";
}

}  // namespace berth::proxy::testing
