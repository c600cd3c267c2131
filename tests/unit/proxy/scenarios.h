// Service proxy test scenarios: small clusters (Services and EndpointSlices as the API
// server sends them, plus the node) shared by the golden-file tests, the rule-walker
// tests and the kernel check of rendered scripts.
//
// The node of every scenario: "node-a", IPs 192.168.1.10 and fd00:1::10, cluster (pod)
// CIDRs 10.244.0.0/16 and fd00:244::/64. Pods on node-a are 10.244.1.x / fd00:244::1:x,
// pods elsewhere 10.244.2.x / fd00:244::2:x.
#pragma once

#include <string>
#include <vector>

#include "proxy/change_tracker.h"
#include "proxy/service_map.h"

namespace berth::proxy::testing {

struct Scenario {
  std::string name;  // golden file: golden/<name>.nft
  std::string description;
  std::vector<std::string> services;  // v1 Service JSON
  std::vector<std::string> slices;    // EndpointSlice JSON
  NodeInfo node;
};

// The node described above.
NodeInfo testNode();

// Every golden scenario, in a fixed order.
const std::vector<Scenario>& scenarios();
const Scenario& scenario(const std::string& name);

// Parses the scenario's objects into a tracker (test failure on a parse error).
void load(const Scenario& s, ChangeTracker& tracker);
ProxyState stateOf(const Scenario& s);

// JSON builders for tests that make their own objects.
// An endpoint: {"addresses": [addr], "conditions": {...}, "nodeName": node}.
std::string endpointJson(const std::string& addr, const std::string& node, bool ready = true,
                         bool serving = true, bool terminating = false);
// A slice of Service default/<service>.
std::string sliceJson(const std::string& name, const std::string& service,
                      const std::vector<std::string>& endpoints, const std::string& ports_json,
                      const std::string& address_type = "IPv4");
// A Service default/<name>: `spec_json` is the body of "spec" without braces.
std::string serviceJson(const std::string& name, const std::string& spec_json,
                        const std::string& status_json = "");

}  // namespace berth::proxy::testing
